"""The merge theta = pre + sum_i c_i tau_i in numpy and PyTorch (single thread), for comparison
with bench_merge (same P, T, byte counting: (T+1) reads of the storage type + one F32 write).

usage: /usr/bin/python3 bench_merge_py.py [--P 100000000] [--T 8] [--reps 5] [--block 16384]

Prints "RESULT <name> <GB/s> <best seconds> <bits>" where bits says whether the result has the
same bits as mapmerge's kernel (F32 products and sums rounded separately, in task order)."""
import argparse
import time

import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--P", type=int, default=100_000_000)
ap.add_argument("--T", type=int, default=8)
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--block", type=int, default=16384)
a = ap.parse_args()
P, T, B = a.P, a.T, a.block
torch.set_num_threads(1)

# data like bench_merge's: finite, varied; BF16 by truncation of the F32 values
j = np.arange(P, dtype=np.uint64)
pre = ((j * np.uint64(2654435761)) % np.uint64(1 << 20)).astype(np.float32) * np.float32(2.0 ** -20) - np.float32(0.5)
tau = np.empty((T, P), dtype=np.float32)
for i in range(T):
    tau[i] = ((j * np.uint64(40503) + np.uint64(i * 7919)) % np.uint64(1 << 20)).astype(np.float32) * np.float32(2.0 ** -21)
del j
preb = (pre.view(np.uint32) >> 16).astype(np.uint16)
taub = (tau.view(np.uint32) >> 16).astype(np.uint16)
c = [0.1 + 0.37 * i for i in range(T)]
cf = [np.float32(x) for x in c]


def widen(u16):
    return (u16.astype(np.uint32) << 16).view(np.float32)


def numpy_f32_naive():
    th = pre.copy()
    for i in range(T):
        th += cf[i] * tau[i]
    return th


def numpy_f32_blocked():
    th = np.empty(P, dtype=np.float32)
    tmp = np.empty(B, dtype=np.float32)
    for s in range(0, P, B):
        e = min(P, s + B)
        o, t = th[s:e], tmp[: e - s]
        o[...] = pre[s:e]
        for i in range(T):
            np.multiply(tau[i, s:e], cf[i], out=t)
            np.add(o, t, out=o)
    return th


def numpy_bf16_blocked():
    th = np.empty(P, dtype=np.float32)
    tmp = np.empty(B, dtype=np.float32)
    for s in range(0, P, B):
        e = min(P, s + B)
        o, t = th[s:e], tmp[: e - s]
        o[...] = widen(preb[s:e])
        for i in range(T):
            np.multiply(widen(taub[i, s:e]), cf[i], out=t)
            np.add(o, t, out=o)
    return th


pre_t, tau_t = torch.from_numpy(pre), torch.from_numpy(tau)
preb_t = torch.from_numpy(preb.view(np.int16)).view(torch.bfloat16)
taub_t = torch.from_numpy(taub.view(np.int16)).view(torch.bfloat16)


def torch_f32_add_():
    th = pre_t.clone()
    for i in range(T):
        th.add_(tau_t[i], alpha=c[i])
    return th.numpy()


def torch_bf16_add_():
    th = preb_t.float()
    for i in range(T):
        th.add_(taub_t[i], alpha=c[i])
    return th.numpy()


ref32 = numpy_f32_blocked()
refbf = numpy_bf16_blocked()
print("bench_merge_py: P = %d, T = %d, best of %d, numpy %s, torch %s (threads %d)"
      % (P, T, a.reps, np.__version__, torch.__version__, torch.get_num_threads()))
for name, fn, ref, elem in (("numpy_f32_naive", numpy_f32_naive, ref32, 4), ("numpy_f32_blocked", numpy_f32_blocked, ref32, 4),
                            ("torch_f32_add_", torch_f32_add_, ref32, 4), ("numpy_bf16_blocked", numpy_bf16_blocked, refbf, 2),
                            ("torch_bf16_add_", torch_bf16_add_, refbf, 2)):
    best, out = 1e300, None
    for _ in range(a.reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    gbs = ((T + 1) * elem + 4) * P / best / 1e9
    same = "same-bits" if out.tobytes() == ref.tobytes() else \
        "differs(max-abs=%.3g)" % float(np.max(np.abs(out.astype(np.float64) - ref.astype(np.float64))))
    print("RESULT %s %.3f %.6f %s" % (name, gbs, best, same), flush=True)
    del out
