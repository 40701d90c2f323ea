#!/usr/bin/python3
"""Independent check of a model zoo written by `mapmerge zoo` (numpy only, safetensors parsed by hand).

For every task it computes, on data/<task>_val.safetensors:
  pre    the pretrained model (pretrained encoder and head),
  ft     the task's fine-tuned model,
  merged task arithmetic at c for all tasks: encoder = pre + c * sum_i (ft_i - pre), the task's own head.
It checks file layout (state_dict names, shapes, dtypes), that the eval sets are the transformed
Fashion-MNIST test images (against numpy's own rot90/flip/roll of the raw IDX files), that ft beats
pre on every task by --margin, and with --log that the accuracies the C program printed agree with
numpy's to within --tol. Prints a table; prints FAIL and exits 1 on any failed check.

usage: check_zoo.py ZOODIR [--log LOG] [--coeff 0.3] [--margin 0.05] [--tol 0.002] [--markdown]
"""
import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg)


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    end_max = 0
    for name, t in header.items():
        b, e = t["data_offsets"]
        dt = np.dtype(DTYPES[t["dtype"]]).newbyteorder("<")
        arr = np.frombuffer(data[b:e], dtype=dt).reshape(t["shape"])
        out[name] = arr
        end_max = max(end_max, e)
    check(end_max == len(data), f"{path}: data section is {len(data)} bytes, tensors end at {end_max}")
    return out, meta


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def transform(name, imgs):
    """numpy's own version of the C transforms (None for 'permute': only checked as a permutation)"""
    x = imgs.astype(np.float32) / np.float32(255.0)
    if name in ("identity", "pretrained"):
        y = x
    elif name == "rot90":
        y = np.rot90(x, 1, axes=(1, 2))
    elif name == "rot180":
        y = np.rot90(x, 2, axes=(1, 2))
    elif name == "rot270":
        y = np.rot90(x, 3, axes=(1, 2))
    elif name == "flip_h":
        y = x[:, :, ::-1]
    elif name == "flip_v":
        y = x[:, ::-1, :]
    elif name == "transpose":
        y = np.transpose(x, (0, 2, 1))
    elif name == "invert":
        y = np.float32(1.0) - x
    elif name == "rot90_invert":
        y = np.float32(1.0) - np.rot90(x, 1, axes=(1, 2))
    elif name == "shift":
        y = np.roll(x, (6, 6), axis=(1, 2))
    else:
        return None
    return np.ascontiguousarray(y).reshape(len(imgs), -1)


def encoder_names(model):
    ks = sorted(int(k.split(".")[1]) for k in model if k.startswith("encoder.") and k.endswith(".weight"))
    return ks


def forward(enc, head, x):
    h = x.astype(np.float64)
    for W, b in enc:
        h = np.maximum(h @ W.astype(np.float64).T + b.astype(np.float64), 0.0)
    return h @ head[0].astype(np.float64).T + head[1].astype(np.float64)


def accuracy(enc, head, data):
    z = forward(enc, head, data["inputs"])
    return float(np.mean(np.argmax(z, axis=1) == data["labels"]))


def parse_log(path):
    acc = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 6 and p[0] == "zoo:" and p[1] != "task":
                try:
                    acc[p[1]] = tuple(float(v) for v in p[2:])
                except ValueError:
                    pass
    return acc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("zoo")
    ap.add_argument("--log")
    ap.add_argument("--coeff", type=float, default=0.3)
    ap.add_argument("--margin", type=float, default=0.05)
    ap.add_argument("--tol", type=float, default=0.002)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()

    tasks = None
    with open(os.path.join(a.zoo, "zoo.yaml")) as f:
        for line in f:
            s = line.strip()
            if s.startswith("tasks:"):
                tasks = s.split(":", 1)[1].strip().split(",")
    check(tasks, f"{a.zoo}/zoo.yaml: no tasks line")
    if not tasks:
        return 1

    pre, meta = load_safetensors(os.path.join(a.zoo, "pretrained.safetensors"))
    ks = encoder_names(pre)
    check(ks == list(range(0, 2 * len(ks), 2)), f"pretrained: encoder layers numbered {ks}, expected 0,2,4,...")
    names = [f"encoder.{k}.{s}" for k in ks for s in ("weight", "bias")] + ["head.weight", "head.bias"]
    check(list(pre.keys()) == names, f"pretrained: tensors {list(pre.keys())}, expected {names} in file order")
    width = 784
    for k in ks:
        W, b = pre[f"encoder.{k}.weight"], pre[f"encoder.{k}.bias"]
        check(W.shape[1] == width and b.shape == (W.shape[0],), f"encoder.{k}: shapes {W.shape} {b.shape}")
        width = W.shape[0]
    check(pre["head.weight"].shape == (10, width) and pre["head.bias"].shape == (10,), "head shapes")
    enc_pre = [(pre[f"encoder.{k}.weight"], pre[f"encoder.{k}.bias"]) for k in ks]
    head_pre = (pre["head.weight"], pre["head.bias"])

    raw_imgs = read_idx(os.path.join(a.data, "t10k-images-idx3-ubyte.gz"))
    raw_lbls = read_idx(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)

    models, vals = {}, {}
    for t in tasks:
        m, meta = load_safetensors(os.path.join(a.zoo, f"{t}.safetensors"))
        check(list(m.keys()) == names, f"{t}: tensors {list(m.keys())}")
        check(meta.get("mapmerge_zoo_task") == t, f"{t}: metadata task {meta.get('mapmerge_zoo_task')}")
        for n in names:
            check(m[n].shape == pre[n].shape and m[n].dtype == np.float32, f"{t}: {n} shape/dtype")
        models[t] = m
        v, _ = load_safetensors(os.path.join(a.zoo, "data", f"{t}_val.safetensors"))
        te, _ = load_safetensors(os.path.join(a.zoo, "data", f"{t}_test.safetensors"))
        nv = v["inputs"].shape[0]
        check(v["inputs"].dtype == np.float32 and v["inputs"].shape[1] == 784, f"{t}_val: inputs {v['inputs'].dtype} {v['inputs'].shape}")
        check(v["labels"].dtype == np.int64 and v["labels"].shape == (nv,), f"{t}_val: labels {v['labels'].dtype} {v['labels'].shape}")
        check(te["inputs"].shape == (10000 - nv, 784), f"{t}_test: inputs {te['inputs'].shape}")
        check(np.array_equal(v["labels"], raw_lbls[:nv]) and np.array_equal(te["labels"], raw_lbls[nv:]), f"{t}: labels differ from t10k")
        ref = transform(t, raw_imgs)
        both = np.concatenate([v["inputs"], te["inputs"]])
        if ref is not None:
            check(np.array_equal(both, ref), f"{t}: eval inputs are not numpy's {t} of the t10k images")
        else:  # a pixel permutation: the same multiset of values in every row
            check(np.array_equal(np.sort(both, axis=1), np.sort(transform("identity", raw_imgs), axis=1)),
                  f"{t}: eval inputs are not a pixel permutation of the t10k images")
        vals[t] = v

    # task arithmetic at c for every task: pre + c * sum_i (ft_i - pre), computed in float64
    enc_merged = []
    for k in ks:
        Wm, bm = pre[f"encoder.{k}.weight"].astype(np.float64), pre[f"encoder.{k}.bias"].astype(np.float64)
        Wd, bd = np.zeros_like(Wm), np.zeros_like(bm)
        for t in tasks:
            Wd += models[t][f"encoder.{k}.weight"] - Wm
            bd += models[t][f"encoder.{k}.bias"] - bm
        enc_merged.append((Wm + a.coeff * Wd, bm + a.coeff * bd))

    logged = parse_log(a.log) if a.log else {}
    rows = []
    for t in tasks:
        m = models[t]
        enc_ft = [(m[f"encoder.{k}.weight"], m[f"encoder.{k}.bias"]) for k in ks]
        head_ft = (m["head.weight"], m["head.bias"])
        acc_pre = accuracy(enc_pre, head_pre, vals[t])
        acc_ft = accuracy(enc_ft, head_ft, vals[t])
        acc_mg = accuracy(enc_merged, head_ft, vals[t])
        rows.append((t, acc_pre, acc_ft, acc_mg))
        check(acc_ft > acc_pre + a.margin, f"{t}: fine-tuned val acc {acc_ft:.4f} does not beat pretrained {acc_pre:.4f} by {a.margin}")
        if a.log:
            check(t in logged, f"{t}: no accuracy line in {a.log}")
            if t in logged:
                check(abs(logged[t][0] - acc_pre) <= a.tol, f"{t}: C printed pretrained val acc {logged[t][0]}, numpy {acc_pre:.4f}")
                check(abs(logged[t][1] - acc_ft) <= a.tol, f"{t}: C printed fine-tuned val acc {logged[t][1]}, numpy {acc_ft:.4f}")

    c = a.coeff
    if a.markdown:
        print(f"| task | pretrained | fine-tuned | merged (c = {c:g} for all) |")
        print("|---|---|---|---|")
        for t, p, f, g in rows:
            print(f"| {t} | {p:.3f} | {f:.3f} | {g:.3f} |")
        mean = np.mean(np.array([r[1:] for r in rows]), axis=0)
        print(f"| mean | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} |")
    else:
        print(f"{'task':14s} {'pre_val':>8s} {'ft_val':>8s} {'merged':>8s}  (merged: c = {c:g} for all {len(tasks)} tasks)")
        for t, p, f, g in rows:
            print(f"{t:14s} {p:8.4f} {f:8.4f} {g:8.4f}")
    if failures:
        print(f"FAIL: {len(failures)} check(s) failed")
        return 1
    print("check_zoo: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
