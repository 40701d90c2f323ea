#!/usr/bin/python3
"""make_bad.py DIR: writes corrupt safetensors inputs (and one good control) into DIR, one per
case; tests/safetensors.cmake runs st_check on each and expects a named, specific error."""
import json
import os
import shutil
import struct
import sys

out = sys.argv[1]
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)


def raw(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def framed(header, data=b"", length=None):
    hb = header if isinstance(header, bytes) else header.encode()
    return struct.pack("<Q", len(hb) if length is None else length) + hb + data


def st(name, tensors, data, meta=None, extra=b""):
    """a file from a dict of tensors {name: (dtype, shape, [b, e])}, written as given"""
    h = {}
    if meta is not None:
        h["__metadata__"] = meta
    for k, (dt, shape, offs) in tensors.items():
        h[k] = {"dtype": dt, "shape": shape, "data_offsets": offs}
    raw(name, framed(json.dumps(h), data + extra))


def st_bytes(tensors, data):
    h = {k: {"dtype": dt, "shape": s, "data_offsets": o} for k, (dt, s, o) in tensors.items()}
    return framed(json.dumps(h), data)


raw("empty_file", b"")
raw("truncated_4bytes", b"\x10\x00\x00\x00")
raw("header_past_eof", framed(b'{"a":1}' + b" " * 13, length=1000))
raw("header_too_large", framed(b"{}      ", length=200000000))
raw("not_json", framed(b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]', bytes(4)))
raw("not_brace", framed(b'xyz{"a":1}', b""))
raw("json_array", framed(b"[1, 2, 3]", b""))
raw("duplicate_name", framed(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                             b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', bytes(8)))
st("overlap", {"a": ("F32", [4], [0, 16]), "b": ("F32", [4], [8, 24])}, bytes(24))
st("gap", {"a": ("F32", [4], [0, 16]), "b": ("F32", [3], [20, 32])}, bytes(32))
st("trailing_bytes", {"a": ("F32", [4], [0, 16])}, bytes(16), extra=b"junk")
st("data_truncated", {"a": ("F32", [4], [0, 16]), "b": ("F32", [4], [16, 32])}, bytes(24))
st("bad_dtype", {"w": ("F128", [1], [0, 16])}, bytes(16))
st("shape_mismatch", {"w": ("F32", [2, 3], [0, 16])}, bytes(16))
st("negative_shape", {"w": ("F32", [-2, 3], [0, 16])}, bytes(16))
st("float_offset", {"w": ("F32", [4], [0, 16.0])}, bytes(16))
raw("missing_dtype", framed(json.dumps({"w": {"shape": [4], "data_offsets": [0, 16]}}), bytes(16)))
st("end_before_begin", {"w": ("F32", [2], [16, 8])}, bytes(16))
st("offsets_three", {"w": ("F32", [4], [0, 8, 16])}, bytes(16))
st("metadata_not_string", {"w": ("F32", [4], [0, 16])}, bytes(16), meta={"format": "pt", "epoch": 3})
st("numel_overflow", {"w": ("F32", [4294967296, 4294967296, 2], [0, 16])}, bytes(16))
st("huge_offset", {"w": ("F32", [4], [0, 18446744073709551615])}, bytes(16))
raw("bad_utf8", framed(b'{"w\xff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', bytes(4)))
raw("nul_in_name", framed(b'{"w\\u0000x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', bytes(4)))
raw("deep_nesting", framed(b'{"__metadata__":' + b"[" * 5000 + b"]" * 5000 + b"}", b""))


def folder(name, index, shards):
    d = os.path.join(out, name)
    os.makedirs(d)
    if index is not None:
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": index}, f)
    for fn, data in shards.items():
        with open(os.path.join(d, fn), "wb") as f:
            f.write(data)


one = {"a": ("F32", [2], [0, 8])}
folder("index_missing_shard", {"a": "shard-missing.safetensors"}, {})
folder("index_wrong_map", {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"},
       {"s1.safetensors": st_bytes(one, bytes(8)),
        "s2.safetensors": st_bytes({"b": ("F32", [2], [0, 8]), "c": ("F32", [1], [8, 12])}, bytes(12))})
folder("index_unlisted", {"a": "s1.safetensors", "b": "s1.safetensors"},
       {"s1.safetensors": st_bytes({"a": ("F32", [2], [0, 8]), "b": ("F32", [1], [8, 12]),
                                    "c": ("F32", [1], [12, 16])}, bytes(16))})
folder("index_escape", {"a": "../escape.safetensors"}, {})
folder("folder_empty", None, {})

# the control: a good file, header keys out of offset order, with metadata
st("good", {"b": ("F16", [3], [16, 22]), "a": ("F32", [2, 2], [0, 16]), "labels": ("I64", [1], [22, 30])},
   struct.pack("<4f", 1, 2, 3, 4) + struct.pack("<3e", 0.5, -1, 65504) + struct.pack("<q", 7),
   meta={"format": "pt"})
print("wrote", len(os.listdir(out)), "cases to", out)
