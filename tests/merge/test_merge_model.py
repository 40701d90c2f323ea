"""MapModel end to end: safetensors checkpoints -> store (MapStoreImport, 2 ranks) -> merge at
1, 2 and 4 ranks. Checks: the gathered theta has the same bits at every rank count, and equals an
independent numpy F32 computation from the store's datasets read with h5py (same rounding
sequence: theta = pre; theta = theta + f32(c_i) * tau_i). Also a combined basis (Nested MAP).
Four stores: P = 4983 (tensors of several shapes, F32/BF16/F16 task checkpoints), P = 150
(at 4 ranks one rank owns no elements), and the first family imported with BF16 and with F16
storage (-map_store_dtype bf16|f16): the uint16 datasets (BF16) and the float16 datasets (F16) are
widened exactly ((u16 << 16) as F32, numpy's float16 -> float32) and the merge, and the combined
basis (F32, built from 16-bit vectors), follow the same F32 rounding sequence, so the bits must
equal numpy's too.

usage: test_merge_model.py <test_merge_model exe> <mpiexec> <work dir>"""
import os
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import stio  # noqa: E402  (tests/stio.py)

exe, mpiexec, work = sys.argv[1], sys.argv[2], sys.argv[3]
failures = []


def make_models(d, shapes, dtypes, seed):
    rng = np.random.default_rng(seed)
    pre = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes}
    head = {"head.weight": (10, shapes[-1][1][0]), "head.bias": (10,)}
    files = []
    for k, dt in enumerate(["F32"] + dtypes):
        ts = []
        for n, s in shapes:
            v = pre[n] if k == 0 else pre[n] + 0.05 * rng.standard_normal(s).astype(np.float32)
            if dt == "F32":
                ts.append((n, "F32", v.astype(np.float32)))
            elif dt == "F16":
                ts.append((n, "F16", v.astype(np.float16)))
            else:
                ts.append((n, "BF16", stio.to_bf16(v).reshape(s)))
        for n, s in head.items():
            ts.append((n, "F32", rng.standard_normal(s).astype(np.float32)))
        p = os.path.join(d, "pre.safetensors" if k == 0 else "task%d.safetensors" % k)
        stio.write(p, ts)
        files.append(p)
    return files


def run(np_, args):
    cmd = [mpiexec, "-n", str(np_), exe] + args
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.stdout.write(r.stderr)
        failures.append("exit %d: %s" % (r.returncode, " ".join(cmd)))
    return r


STORED = {"f32": "float32", "bf16": "uint16", "f16": "float16"}  # -map_store_dtype -> h5py's dtype


def stored_f32(dset):
    """a store vector dataset as F32: F32 as it is, BF16 (uint16 marked dtype = bf16) and F16 (float16
    marked dtype = f16) widened exactly"""
    a = dset[...]
    if a.dtype == np.float32:
        return a
    mark = dset.attrs.get("dtype")
    if mark not in ("bf16", "f16") or str(a.dtype) != STORED[mark]:
        failures.append("%s: dtype %s, attribute dtype %r" % (dset.name, a.dtype, mark))
    return (a.astype(np.uint32) << 16).view(np.float32) if mark == "bf16" else a.astype(np.float32)


def reference(store, order, c, W=None, d=None):
    with h5py.File(store, "r") as f:
        names = [x.decode() if isinstance(x, bytes) else str(x) for x in f["tasks"][...]]
        pre = stored_f32(f["pretrained"])
        tv = stored_f32(f["task_vectors"])
    idx = [names.index(t) for t in order]
    th = pre.copy()
    for i, t in enumerate(idx):
        th = th + np.float32(c[i]) * tv[t]
    th2 = None
    if W is not None:
        T = len(order)
        th2 = pre.copy()
        for k in range(len(d)):
            tk = np.zeros_like(pre)
            for i, t in enumerate(idx):
                tk = tk + np.float32(W[k * T + i]) * tv[t]
            th2 = th2 + np.float32(d[k]) * tk
    return th, th2


def case(label, shapes, dtypes, seed, store_dtype="f32"):
    d = os.path.join(work, label)
    os.makedirs(d, exist_ok=True)
    files = make_models(d, shapes, dtypes, seed)
    tasks = ["t%d" % k for k in range(1, len(files))]
    store = os.path.join(d, "store.h5")
    if os.path.exists(store):
        os.remove(store)
    run(2, ["-import", "-map_pretrained", files[0], "-map_tasks", ",".join(tasks),
            "-map_task_models", ",".join(files[1:]), "-map_private_patterns", "head.*", "-map_store", store,
            "-map_store_dtype", store_dtype])
    if not os.path.exists(store):
        failures.append("%s: import wrote no store" % label)
        return
    order = list(reversed(tasks))  # the model's basis order differs from the store's
    c = [0.3, -0.7, 1.25, 0.1][: len(order)]
    T = len(order)
    W = [0.5, 0.5] + [0.0] * (T - 2) + [0.0, 0.2, 0.9] + [0.0] * (T - 3)
    dd = [0.8, 0.4]
    ref, ref2 = reference(store, order, c, W, dd)
    outs = {}
    for np_ in (1, 2, 4):
        o1 = os.path.join(d, "theta_np%d.bin" % np_)
        o2 = os.path.join(d, "theta2_np%d.bin" % np_)
        for o in (o1, o2):
            if os.path.exists(o):
                os.remove(o)
        r = run(np_, ["-map_store", store, "-map_tasks", ",".join(order), "-map_coeff", ",".join(map(repr, c)),
                  "-map_output", o1, "-test_combine", ",".join(map(repr, W)), "-test_coeff2", ",".join(map(repr, dd)),
                  "-test_output2", o2])
        if not (os.path.exists(o1) and os.path.exists(o2)):
            failures.append("%s np=%d: no output" % (label, np_))
            continue
        if "theta = MapMergeApply_Ref on the F32 read of the store" not in r.stdout:
            failures.append("%s np=%d: no check of the F32 read of the store" % (label, np_))
        outs[np_] = (open(o1, "rb").read(), open(o2, "rb").read())
        for got, want, what in ((outs[np_][0], ref, "theta"), (outs[np_][1], ref2, "combined theta")):
            g = np.frombuffer(got, dtype=np.float32)
            if g.shape != want.shape:
                failures.append("%s np=%d %s: %d elements, expected %d" % (label, np_, what, g.size, want.size))
            elif g.tobytes() != want.tobytes():
                bad = np.nonzero(g.view(np.uint32) != want.view(np.uint32))[0]
                failures.append("%s np=%d %s: %d elements differ from numpy, first at %d: %r vs %r"
                                % (label, np_, what, bad.size, bad[0], g[bad[0]], want[bad[0]]))
    for np_ in outs:
        if outs[np_] != outs[1]:
            failures.append("%s: np=%d bits differ from np=1" % (label, np_))
    with h5py.File(store, "r") as f:
        got_dtype = str(f["task_vectors"].dtype)
    if got_dtype != STORED[store_dtype]:
        failures.append("%s: -map_store_dtype %s wrote /task_vectors as %s" % (label, store_dtype, got_dtype))
    print("%s: P = %d, T = %d, storage %s, compared at np = %s" % (label, ref.size, T, store_dtype, sorted(outs)))


os.makedirs(work, exist_ok=True)
case("mlp", [("encoder.0.weight", (40, 100)), ("encoder.0.bias", (40,)), ("encoder.1.weight", (23, 40)),
             ("encoder.1.bias", (23,))], ["F32", "BF16", "F16"], 1)
case("tiny", [("encoder.0.weight", (10, 14)), ("encoder.0.bias", (10,))], ["F32", "F32", "F32"], 2)
for dt in ("bf16", "f16"):
    case("mlp_" + dt, [("encoder.0.weight", (40, 100)), ("encoder.0.bias", (40,)), ("encoder.1.weight", (23, 40)),
                       ("encoder.1.bias", (23,))], ["F32", "BF16", "F16"], 1, dt)
for f in failures:
    print("FAIL", f)
print("merge_model_ranks:", "FAIL" if failures else "OK")
sys.exit(1 if failures else 0)
