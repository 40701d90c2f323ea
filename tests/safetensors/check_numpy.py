#!/usr/bin/python3
"""check_numpy.py ST_CHECK MPIEXEC DIR: writes safetensors files the way other tools do, with
numpy and a hand-built header (header keys out of offset order, __metadata__ in the middle,
space padding, an empty tensor, F16 specials, BF16 from torch, a sharded folder with an index),
then reads them with our reader at 2 ranks (st_check -dump) and compares every value."""
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import torch

st_check, mpiexec, out = sys.argv[1:4]
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
rng = np.random.default_rng(1234)


def bf16_bytes(a32):
    return torch.from_numpy(a32).to(torch.bfloat16).view(torch.int16).numpy().tobytes()


def bf16_values(a32):
    return torch.from_numpy(a32).to(torch.bfloat16).to(torch.float32).numpy()


def write(path, tensors, meta, order):
    """tensors: list of (name, dtype, shape, bytes, expected float32 or None), laid out in list
    order; the header lists them in `order` with __metadata__ second, padded like the reference"""
    header, data, pos = {}, b"", 0
    offs = {}
    for name, dt, shape, b, _ in tensors:
        offs[name] = (dt, shape, [pos, pos + len(b)])
        data += b
        pos += len(b)
    for i, name in enumerate(order):
        dt, shape, o = offs[name]
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": o}
        if i == 0 and meta is not None:
            header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


a = rng.standard_normal((3, 5)).astype(np.float32)
h = np.array([0.5, -2.0, 65504, np.inf, -np.inf, 6e-8, -0.0], dtype=np.float16)
hn = np.array([np.nan], dtype=np.float16)
b32 = (rng.standard_normal((4, 2)) * 1e3).astype(np.float32)
d = np.array([0.1, 1e-50, -3.5], dtype=np.float64)
lab = np.array([3, 1, 4, 1], dtype=np.int64)
u8 = np.arange(5, dtype=np.uint8)
tensors = [
    ("enc.weight", "F32", [3, 5], a.tobytes(), a),
    ("enc.half", "F16", [7], h.tobytes(), h.astype(np.float32)),
    ("nan16", "F16", [1], hn.tobytes(), hn.astype(np.float32)),
    ("z.bf16", "BF16", [4, 2], bf16_bytes(b32), bf16_values(b32)),
    ("dbl", "F64", [3], d.tobytes(), d.astype(np.float32)),
    ("empty", "F32", [2, 0], b"", np.zeros(0, np.float32)),
    ("labels", "I64", [4], lab.tobytes(), None),
    ("bytes", "U8", [5], u8.tobytes(), None),
]
order = ["labels", "dbl", "enc.weight", "bytes", "z.bf16", "empty", "nan16", "enc.half"]
write(os.path.join(out, "numpy.safetensors"), tensors, {"format": "pt", "source": "numpy"}, order)

# a sharded checkpoint in a folder, with the Hugging Face index
s1 = tensors[:3]
s2 = tensors[3:5]
os.makedirs(os.path.join(out, "sharded"))
write(os.path.join(out, "sharded", "model-00001-of-00002.safetensors"), s1, {"format": "pt"}, [t[0] for t in s1][::-1])
write(os.path.join(out, "sharded", "model-00002-of-00002.safetensors"), s2, None, [t[0] for t in s2])
wm = {t[0]: "model-00001-of-00002.safetensors" for t in s1}
wm.update({t[0]: "model-00002-of-00002.safetensors" for t in s2})
with open(os.path.join(out, "sharded", "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": 0}, "weight_map": dict(sorted(wm.items()))}, f, indent=2)

fails = 0


def check(path, expect):
    global fails
    dump = os.path.join(out, "dump.txt")
    p = subprocess.run([mpiexec, "-n", "2", st_check, path, "-dump", dump], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    print(p.stdout.strip())
    if p.returncode != 0:
        print("FAIL: st_check failed on", path)
        fails += 1
        return
    lines = open(dump).read().split("\n")
    got, i = [], 0
    while i < len(lines) and lines[i]:
        parts = lines[i].split()
        shape = [int(x) for x in parts[2:]]
        n = int(np.prod(shape)) if shape else 1
        vals = np.array([float(x) for x in lines[i + 1:i + 1 + n]], dtype=np.float64).astype(np.float32)
        got.append((parts[0], parts[1], shape, vals))
        i += 1 + n
    names = [g[0] for g in got]
    want = [t for t in expect if t[4] is not None]
    if names != [t[0] for t in want]:
        print("FAIL: %s: tensors in order %s, expected file order %s" % (path, names, [t[0] for t in want]))
        fails += 1
        return
    for (name, dt, shape, vals), t in zip(got, want):
        e = t[4].reshape(-1)
        if dt != t[1] or shape != t[2]:
            print("FAIL: %s: %s is %s %s, expected %s %s" % (path, name, dt, shape, t[1], t[2]))
            fails += 1
        same = (vals.view(np.uint32) == e.view(np.uint32)) | (np.isnan(vals) & np.isnan(e))
        if vals.shape != e.shape or not same.all():
            print("FAIL: %s: %s values differ: got %s expected %s" % (path, name, vals[:8], e[:8]))
            fails += 1
        else:
            print("ok: %s %s %s: %d values bit-identical" % (os.path.basename(path), name, dt, e.size))


check(os.path.join(out, "numpy.safetensors"), tensors)
check(os.path.join(out, "sharded"), s1 + s2)
check(os.path.join(out, "sharded", "model.safetensors.index.json"), s1 + s2)
print("FAILED" if fails else "ALL OK", fails)
sys.exit(1 if fails else 0)
