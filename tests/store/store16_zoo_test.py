#!/usr/bin/python3
"""16-bit storage (`import -map_store_dtype bf16|f16`) on the small Fashion-MNIST zoo, checked against
numpy (and torch for the rounding), with real MPI runs. DT is bf16 or f16.

    store16_zoo_test.py import DT   bits of the DT store = round-to-nearest-even of the F32 store's values
                                    (numpy and torch agree); recorded and printed errors = numpy's; the
                                    same store at -n 1, 2, 4; private tensors F32; `info`
    store16_zoo_test.py export DT   export from the DT store at -n 1, 2, 4: the same bytes; F32 tensors equal
                                    numpy's widen-then-accumulate-in-F32 bit for bit; bf16/f16 exports equal
                                    the rounding of the F32 one
    store16_zoo_test.py eval DT     `eval` on the DT store: the same bits at -n 1, 2, 4; accuracies within
                                    0.01 of the F32 store's (prints the measured difference)
    store16_zoo_test.py nested DT   `run -map_method nested` on the DT store (combined F32 bases built from
                                    16-bit task vectors): the same bits at -n 1 and 3

Needs the small zoo in $MAP_BINARY_DIR/zoo-small (fixture zoo_small); the binary is $MAPMERGE.
"""
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import stio  # noqa: E402  (tests/stio.py: the tests' own safetensors reader)

MAPMERGE = os.environ["MAPMERGE"]
SRC = os.environ["MAP_SOURCE_DIR"]
BIN = os.environ["MAP_BINARY_DIR"]  # the yaml's zoo-small/... paths are relative to it
SMALL = os.path.join(SRC, "input", "small.yaml")
TASKS = ["rot90", "flip_v", "permute", "shift"]


class DType:
    """A 16-bit storage dtype as the test sees it: the HDF5 dataset's numpy dtype, numpy's rounding of
    F32 (to the stored representation), the exact widening back, torch's type, and the relative
    rounding bound for normal values (p significant bits: 2^-p/(1+2^-p)) with the smallest normal."""

    def __init__(self, mark, stored, to, widen, torch_name, bits, tiny):
        self.mark, self.name, self.stored, self.to, self.widen = mark, mark.upper(), stored, to, widen
        self.torch_name, self.rel_bound, self.tiny = torch_name, 2.0 ** -bits / (1 + 2.0 ** -bits), tiny


DTYPES = {"bf16": DType("bf16", np.uint16, stio.to_bf16, stio.from_bf16, "bfloat16", 8, 2.0 ** -126),
          "f16": DType("f16", np.float16, lambda x: x.astype(np.float16), lambda h: h.astype(np.float32), "float16", 11, 2.0 ** -14)}
DT = None  # the DType under test (argv[2])


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def mpi(n, *args):
    cmd = ["mpiexec", "-n", str(n), "--oversubscribe", MAPMERGE] + list(args)
    p = subprocess.run(cmd, cwd=BIN, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
        fail("exit %d: %s" % (p.returncode, " ".join(cmd)))
    return p.stdout


def workdir(case):
    d = os.path.join(BIN, "store-%s-tests" % DT.mark, case)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if not os.path.exists(os.path.join(BIN, "zoo-small", "pretrained.safetensors")):
        fail("the small zoo is missing in %s/zoo-small (the zoo_small test builds it)" % BIN)
    return d


def import_store(d, dtype, n=2, extra=()):
    store = os.path.join(d, "%s_np%d.h5" % (dtype, n))
    out = mpi(n, "import", "-options_file_yaml", SMALL, "-map_store", store, "-map_store_dtype", dtype, *extra)
    return store, out


def rel_errors(x, h):
    """|h - x| and |h - x| / |x| (x != 0) in double, the same operations as the import, with x"""
    x64 = x.astype(np.float64).ravel()
    d = np.abs(DT.widen(h).astype(np.float64).ravel() - x64)
    nz = x64 != 0
    return d, d[nz] / np.abs(x64[nz]), x64[nz]


def max_errors(x, h):
    """max |h - x| and max |h - x| / |x| (x != 0)"""
    d, r, _ = rel_errors(x, h)
    return float(d.max()), float(r.max())


def case_import():
    import torch

    d = workdir("import")
    f32, _ = import_store(d, "f32")
    stores = {}
    for n in (1, 2, 4):
        extra = ("-map_import_block", "5000", "-map_import_chunk", "7000") if n == 2 else ()  # many blocks, odd chunks
        stores[n], out = import_store(d, DT.mark, n, extra)
    with h5py.File(f32, "r") as f:
        pre, tv = f["pretrained"][...], f["task_vectors"][...]
        priv = {(t, k): f["private"][t][k][...] for t in TASKS for k in f["private"][t]}
    want = {"pretrained": DT.to(pre), "task_vectors": DT.to(tv)}
    for name, x in (("pretrained", pre), ("task_vectors", tv)):
        by_torch = torch.from_numpy(x).to(getattr(torch, DT.torch_name)).view(torch.int16).numpy().view(np.uint16)
        if not np.array_equal(by_torch, want[name].view(np.uint16)):
            fail("numpy's and torch's round-to-nearest-even disagree on %s: test reference broken" % name)
    errs = {"pretrained": max_errors(pre, want["pretrained"]), "task_vectors": max_errors(tv, want["task_vectors"])}
    for n, store in stores.items():
        with h5py.File(store, "r") as f:
            if f.attrs["storage_dtype"] != DT.name:
                fail("%s: root storage_dtype %r" % (store, f.attrs["storage_dtype"]))
            for name in ("pretrained", "task_vectors"):
                ds = f[name]
                if ds.dtype != DT.stored or ds.attrs["dtype"] != DT.mark:
                    fail("%s: /%s is %s with dtype attribute %r" % (store, name, ds.dtype, ds.attrs.get("dtype")))
                got = ds[...]
                gb, wb = got.view(np.uint16), want[name].view(np.uint16)
                if not np.array_equal(gb, wb):
                    bad = np.argwhere(gb != wb)[0]
                    fail("%s: /%s differs from RNE(F32 store) at %s: %#06x vs %#06x" % (store, name, bad, gb[tuple(bad)], wb[tuple(bad)]))
                if DT.stored != np.uint16 and ds.astype(np.float32)[...].tobytes() != DT.widen(want[name]).tobytes():
                    fail("%s: HDF5's own conversion of /%s to float32 is not the exact widening" % (store, name))
                rec = (float(ds.attrs[DT.mark + "_max_abs_error"]), float(ds.attrs[DT.mark + "_max_rel_error"]))
                if rec != errs[name]:
                    fail("%s: /%s records errors %r, numpy computes %r" % (store, name, rec, errs[name]))
            for (t, k), a in priv.items():
                b = f["private"][t][k]
                if b.dtype != np.float32 or not np.array_equal(b[...], a):
                    fail("%s: private %s/%s is %s and differs from the F32 store's" % (store, t, k, b.dtype))
            if sorted(priv) != sorted((t, k) for t in TASKS for k in f["private"][t]):
                fail("%s: private tensors %s" % (store, sorted(f["private"][TASKS[0]])))
    line = [s for s in out.splitlines() if DT.name + " storage" in s]
    want_line = "task vectors max abs error %.9g, max rel error %.9g" % errs["task_vectors"]
    if not line or want_line not in line[0] or ("pretrained max abs error %.9g, max rel error %.9g" % errs["pretrained"]) not in line[0]:
        fail("import's report %r lacks numpy's %r" % (line, want_line))
    # the relative bound holds where the result is normal; below DT.tiny the result is subnormal (F16:
    # entries of |tau| < 2^-14 ~ 6.1e-5 are common) and keeps fewer bits
    _, rel, x = rel_errors(tv, want["task_vectors"])
    normal = np.abs(x) >= DT.tiny
    if not rel[normal].max() <= DT.rel_bound:
        fail("max relative rounding error of the normal task-vector entries %.9g above 2^-p/(1+2^-p) = %.9g" % (rel[normal].max(), DT.rel_bound))
    info = mpi(2, "info", "-map_store", stores[4])
    for s in ["P = 52320 (%s)" % DT.name, "0.105 MB per vector", "task vectors: max abs %.9g, max rel %.9g" % errs["task_vectors"],
              "pretrained: max abs %.9g, max rel %.9g" % errs["pretrained"], "storage_dtype: " + DT.name]:
        if s not in info:
            fail("info output lacks %r:\n%s" % (s, info))
    print("ok import: %s stores at -n 1, 2, 4 = RNE of the F32 store (numpy = torch), bit for bit; "
          "task vectors max abs error %.9g, max rel %.9g; normal entries max rel %.9g (bound %.9g); %d of %d nonzero entries "
          "below %.3g (subnormal range); pretrained %.9g, %.9g; info ok"
          % ((DT.name,) + errs["task_vectors"] + (rel[normal].max(), DT.rel_bound, int((~normal).sum()), x.size, DT.tiny)
             + errs["pretrained"]))
    print("PASS import")


def read_flat(path, names):
    t = stio.read(path)[0]
    return t, np.concatenate([t[n][1].astype(np.float32).ravel() for n in names])


def case_export():
    d = workdir("export")
    store, _ = import_store(d, DT.mark)
    coeff = [0.3, -0.2, 0.55, 0.4]
    with h5py.File(store, "r") as f:
        names = [x.decode() if isinstance(x, bytes) else x for x in f["tensors/name"][...]]
        pre, tv = DT.widen(f["pretrained"][...]), DT.widen(f["task_vectors"][...])
    ref = pre.copy()  # the kernel's order: acc = pre; acc = acc + f32(c_i) * tau_i, each step rounded to F32
    for i in range(len(TASKS)):
        ref = ref + np.float32(coeff[i]) * tv[i]
    outs = {}
    for n in (1, 2, 4):
        outs[n] = os.path.join(d, "merged_np%d.safetensors" % n)
        mpi(n, "export", "-map_store", store, "-map_coeff", ",".join(map(repr, coeff)), "-map_output", outs[n])
    b1 = open(outs[1], "rb").read()
    for n in (2, 4):
        if open(outs[n], "rb").read() != b1:
            fail("export from the %s store at -n %d differs from -n 1" % (DT.name, n))
    tensors, flat = read_flat(outs[1], names)
    if any(tensors[n][0] != "F32" for n in names) or flat.tobytes() != ref.tobytes():
        bad = np.nonzero(flat.view(np.uint32) != ref.view(np.uint32))[0]
        fail("F32 export differs from numpy at %d elements (first %s)" % (bad.size, bad[:1]))
    # stio.load gives the stored values: BF16 as its uint16 bits, F16 as float16
    for dt, rnd in (("bf16", stio.to_bf16), ("f16", lambda x: x.astype(np.float16))):
        o = os.path.join(d, "merged_%s.safetensors" % dt)
        mpi(2, "export", "-map_store", store, "-map_coeff", ",".join(map(repr, coeff)), "-map_output", o, "-map_export_dtype", dt)
        t = stio.load(o)
        for n in names:
            want, got = rnd(tensors[n][1].ravel()), t[n].ravel()
            if got.dtype != want.dtype or got.tobytes() != want.tobytes():
                fail("%s export: tensor %s (%s) is not the rounding of the F32 export" % (dt, n, got.dtype))
    print("ok export from %s: the same %d bytes at -n 1, 2, 4; F32 = numpy (widen, F32 accumulation in task order) bit for bit; "
          "bf16 and f16 exports = the rounding of the F32 one" % (DT.name, len(b1)))
    print("PASS export")


def eval_store(d, store, n, csv, tag):
    out = os.path.join(d, "eval_%s_np%d.h5" % (tag, n))
    mpi(n, "eval", "-options_file_yaml", SMALL, "-map_store", store, "-map_coeffs", csv, "-map_output", out)
    with h5py.File(out, "r") as f:
        return f["accuracy"][...], f["loss"][...]


def case_eval():
    d = workdir("eval")
    f32, _ = import_store(d, "f32")
    s16, _ = import_store(d, DT.mark)
    rng = np.random.default_rng(7)
    C = np.vstack([np.eye(4), np.full((1, 4), 0.3), rng.uniform(0, 1, (5, 4))])
    csv = os.path.join(d, "coeffs.csv")
    with open(csv, "w") as f:
        f.write(",".join(TASKS) + "\n")
        for c in C:
            f.write(",".join(repr(float(x)) for x in c) + "\n")
    acc1, loss1 = eval_store(d, s16, 1, csv, DT.mark)
    for n in (2, 4):
        acc, loss = eval_store(d, s16, n, csv, DT.mark)
        if acc.tobytes() != acc1.tobytes() or loss.tobytes() != loss1.tobytes():
            fail("eval on the %s store: -n %d differs from -n 1" % (DT.name, n))
    accf, lossf = eval_store(d, f32, 2, csv, "f32")
    dacc = np.abs(acc1 - accf)
    if not np.all(np.isfinite(acc1)) or dacc.max() > 0.01:
        fail("%s accuracies differ from F32 by up to %.4f (> 0.01):\n%s\n%s" % (DT.name, dacc.max(), acc1, accf))
    if np.array_equal(acc1, accf) and np.array_equal(loss1, lossf):
        fail("%s and F32 results are identical: the %s store was not used" % (DT.name, DT.name))
    print("ok eval: %d vectors x 4 tasks, the same bits at -n 1, 2, 4; |acc(%s) - acc(F32)| max %.4f, mean %.5f; "
          "|loss difference| max %.4g; single-task models: %s %s vs F32 %s"
          % (len(C), DT.name, dacc.max(), dacc.mean(), np.abs(loss1 - lossf).max(), DT.name, np.round(np.diag(acc1[:4]), 4),
             np.round(np.diag(accf[:4]), 4)))
    print("PASS eval")


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[...]) if isinstance(obj, h5py.Dataset) else None)
    return out


def case_nested():
    d = workdir("nested")
    store, _ = import_store(d, DT.mark)
    res = {}
    for n in (1, 3):  # at 3 ranks level 1's two pairs run on groups of 1 and 2 ranks
        out = os.path.join(d, "nested_np%d" % n)
        mpi(n, "run", "-options_file_yaml", SMALL, "-map_store", store, "-map_method", "nested", "-map_preference", "1,2,1,1",
            "-map_output", out)
        res[n] = datasets(os.path.join(out, "results.h5"))
    if sorted(res[1]) != sorted(res[3]):
        fail("nested results hold different datasets at -n 1 and 3")
    for k, x in res[1].items():
        y = res[3][k]
        same = list(x.ravel()) == list(y.ravel()) if x.dtype == object else x.tobytes() == y.tobytes()
        if not same:
            fail("nested on the %s store: dataset %s differs between -n 1 and 3" % (DT.name, k))
    A = res[1]["samples/accuracy"]
    if not np.isfinite(A).any():
        fail("nested run evaluated nothing")
    print("ok nested on %s: %d datasets equal to the bit at -n 1 and 3; %d evaluated models" % (DT.name, len(res[1]), A.shape[0]))
    print("PASS nested")


if __name__ == "__main__":
    cases = {"import": case_import, "export": case_export, "eval": case_eval, "nested": case_nested}
    if len(sys.argv) != 3 or sys.argv[1] not in cases or sys.argv[2] not in DTYPES:
        fail("usage: store16_zoo_test.py %s %s" % ("|".join(cases), "|".join(DTYPES)))
    DT = DTYPES[sys.argv[2]]
    cases[sys.argv[1]]()
