#!/usr/bin/python3
"""check_ours.py TEST_SAFETENSORS MPIEXEC DIR: runs test_safetensors at 2 ranks (serial writer,
parallel MPI-IO writer, sharded writer), then parses the files it wrote independently with numpy
and checks the format (8-byte length, space-padded header a multiple of 8, __metadata__ with
format pt first, header key order = data order, contiguous offsets, exact file length, a valid
Hugging Face index) and every value against the test pattern converted by numpy / torch."""
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import torch

prog, mpiexec, out = sys.argv[1:4]
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
p = subprocess.run([mpiexec, "-n", "2", prog, out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
print(p.stdout.strip())
if p.returncode != 0:
    print("FAIL: test_safetensors failed")
    sys.exit(1)

fails = []
SCALE = [np.float32(0.0123), np.float32(7.5), np.float32(0.001), np.float32(1e-6)]


def pattern(t, n):
    k = np.arange(n, dtype=np.int64)
    return ((k * 7919 + t * 104729) % 20001 - 10000).astype(np.float32) * SCALE[t % 4]


def as_dtype(x32, dt):
    """the bytes our writer must produce for float32 values x32"""
    if dt == "F32":
        return x32.astype("<f4").tobytes()
    if dt == "F16":
        with np.errstate(over="ignore"):  # values past 65504 become Inf, on purpose
            return x32.astype("<f2").tobytes()
    if dt == "BF16":
        return torch.from_numpy(x32).to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
    if dt == "F64":
        return x32.astype("<f8").tobytes()
    raise ValueError(dt)


def parse(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    text = raw[8:8 + n].decode("utf-8")
    if (8 + n) % 8:
        fails.append("%s: header length %d leaves the data unaligned" % (path, n))
    if text.rstrip(" ") != text.rstrip() or len(text) - len(text.rstrip(" ")) >= 8:
        fails.append("%s: header padding is not 0-7 spaces" % path)
    hdr = json.loads(text, object_pairs_hook=lambda kv: dict(kv))
    keys = list(hdr.keys())
    if keys[0] != "__metadata__" or hdr["__metadata__"].get("format") != "pt":
        fails.append("%s: __metadata__ with format pt is not first: %s" % (path, keys[:2]))
    tensors = [(k, v) for k, v in hdr.items() if k != "__metadata__"]
    pos = 0
    for k, v in tensors:
        b, e = v["data_offsets"]
        if b != pos:
            fails.append("%s: %s begins at %d, expected %d (header order must be data order)" % (path, k, b, pos))
        pos = e
    if len(raw) != 8 + n + pos:
        fails.append("%s: file is %d bytes, expected %d" % (path, len(raw), 8 + n + pos))
    data = raw[8 + n:]
    return hdr, {k: (v, data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in tensors}


PAR = [("a.weight", "F32", [40, 25]), ("b.f16", "F16", [37, 5]), ("c.bf16", "BF16", [300]), ("d.tiny", "F16", [129])]


def check_values(path, got, names):
    for name in names:
        t = [i for i, x in enumerate(PAR) if x[0] == name][0]
        _, dt, shape = PAR[t]
        v, b = got[name]
        if v["dtype"] != dt or v["shape"] != shape:
            fails.append("%s: %s is %s %s, expected %s %s" % (path, name, v["dtype"], v["shape"], dt, shape))
            continue
        want = as_dtype(pattern(t, int(np.prod(shape))), dt)
        if b != want:
            nb = sum(x != y for x, y in zip(b, want))
            fails.append("%s: %s: %d of %d bytes differ from numpy's conversion" % (path, name, nb, len(want)))
        else:
            print("ok: %s %s %s bit-identical to numpy/torch" % (os.path.basename(path), name, dt))


# parallel writer, one file
hdr, got = parse(os.path.join(out, "parallel.safetensors"))
if hdr["__metadata__"].get("producer") != "test_safetensors":
    fails.append("parallel: metadata %s" % hdr["__metadata__"])
check_values("parallel.safetensors", got, [x[0] for x in PAR])

# parallel writer, sharded, with the index
idx = json.load(open(os.path.join(out, "sharded", "model.safetensors.index.json")))
wm = idx["weight_map"]
if list(wm.keys()) != [x[0] for x in PAR]:
    fails.append("index: weight_map keys %s" % list(wm.keys()))
total = 0
for f in sorted(set(wm.values())):
    hdr, got = parse(os.path.join(out, "sharded", f))
    mine = [k for k, v in wm.items() if v == f]
    if list(got.keys()) != mine:
        fails.append("%s holds %s, the index says %s" % (f, list(got.keys()), mine))
    total += sum(len(b) for _, b in got.values())
    check_values(f, got, mine)
if idx["metadata"]["total_size"] != total:
    fails.append("index total_size %d, shards hold %d" % (idx["metadata"]["total_size"], total))

# serial writer
hdr, got = parse(os.path.join(out, "serial.safetensors"))
if list(got.keys()) != ["encoder.0.weight", "encoder.0.bias", "z.bf", "labels", "dbl", "scalar", "empty"]:
    fails.append("serial: order %s" % list(got.keys()))
w = np.frombuffer(got["encoder.0.weight"][1], "<f4")
if not np.array_equal(w.view(np.uint32), pattern(0, 12).view(np.uint32)) or got["encoder.0.weight"][0]["shape"] != [3, 4]:
    fails.append("serial: encoder.0.weight differs")
if np.frombuffer(got["labels"][1], "<i8").tolist() != [0, -1, 9, 1 << 40]:
    fails.append("serial: labels differ")
if got["scalar"][0]["shape"] != [] or np.frombuffer(got["scalar"][1], "<f4").tolist() != [3.25]:
    fails.append("serial: scalar differs")
if got["empty"][0]["shape"] != [0, 3] or got["empty"][1] != b"":
    fails.append("serial: empty tensor differs")
if hdr["__metadata__"] != {"format": "pt", "name": "serial test"}:
    fails.append("serial: metadata %s" % hdr["__metadata__"])

for f in fails:
    print("FAIL:", f)
print("FAILED" if fails else "ALL OK", len(fails))
sys.exit(1 if fails else 0)
