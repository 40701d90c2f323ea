#!/usr/bin/python3
"""Tests of `mapmerge import`, `info` and `export` against an independent numpy computation.

    store_test.py roundtrip WORKDIR MPIEXEC      import at -n 1/2/4, h5py checks, info, exports
    store_test.py tiny WORKDIR MPIEXEC           P < 2*64: ranks without parameters at -n 4
    store_test.py bad CASE WORKDIR MPIEXEC       one bad input: non-zero exit, message, no output left

Checkpoints are written by hand (tests/stio.py: 8-byte little-endian header length, JSON header, raw data),
so the test does not share code with the C reader. The binary is $MAPMERGE.
"""
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import stio  # noqa: E402  (tests/stio.py: the hand-written safetensors reader/writer of the tests)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import map_digest  # noqa: E402  (the source digest, computed independently: docs/storage.md)

MAPMERGE = os.environ.get("MAPMERGE", "mapmerge")


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def read_ckpt(path):
    """a single file or a folder with model.safetensors.index.json"""
    if os.path.isdir(path):
        idx = json.load(open(os.path.join(path, "model.safetensors.index.json")))
        out = {}
        for f in sorted(set(idx["weight_map"].values())):
            out.update(stio.read(os.path.join(path, f))[0])
        return out
    return stio.read(path)[0]


# ---- the model family ----
SHAPES = [("encoder.0.weight", [40, 25]), ("encoder.0.bias", [40]), ("encoder.1.weight", [7, 11]), ("encoder.1.bias", [7]),
          ("norm.scale", []), ("norm.weight", [33])]
TASKS = ["alpha", "beta", "gamma"]


def make_family(d, tweak=None):
    """pretrained.safetensors (F32 + one F16 tensor + a head), alpha.safetensors (F32),
    beta.safetensors (mixed F32/BF16), gamma/ (sharded: index json + 2 files, one F16 tensor).
    tweak(name, tensors) may modify a checkpoint's tensor list before writing (bad-input tests)."""
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(1234)
    pre = {n: rng.standard_normal(s).astype(np.float32) for n, s in SHAPES}
    pre_t = [(n, "F16" if n == "norm.weight" else "F32", pre[n].astype(np.float16) if n == "norm.weight" else pre[n]) for n, _ in SHAPES]
    pre_t += [("head.weight", "F32", rng.standard_normal((10, 7)).astype(np.float32))]
    ckpts = {"pretrained": pre_t}
    for k, task in enumerate(TASKS):
        base = {n: (pre[n].astype(np.float16).astype(np.float32) if n == "norm.weight" else pre[n]) for n, _ in SHAPES}
        tl = []
        for n, s in SHAPES:
            v = (base[n] + 0.05 * (k + 1) * rng.standard_normal(s)).astype(np.float32)
            if task == "beta" and n in ("encoder.0.weight", "encoder.1.bias"):
                tl.append((n, "BF16", stio.to_bf16(v).reshape(s)))
            elif task == "gamma" and n == "encoder.1.weight":
                tl.append((n, "F16", v.astype(np.float16)))
            else:
                tl.append((n, "F32", v))
        ncls = 5 if task == "gamma" else 10
        tl.append(("head.weight", "F32", rng.standard_normal((ncls, 7)).astype(np.float32)))
        tl.append(("head.bias", "F32", rng.standard_normal(ncls).astype(np.float32)))
        ckpts[task] = tl
    paths = {}
    for name, tl in ckpts.items():
        if tweak:
            tl = tweak(name, tl)
        if name == "gamma":
            g = os.path.join(d, "gamma")
            os.makedirs(g, exist_ok=True)
            parts = [tl[:3], tl[3:]]
            wm = {}
            for i, part in enumerate(parts):
                fn = "model-%05d-of-%05d.safetensors" % (i + 1, len(parts))
                stio.write(os.path.join(g, fn), part)
                wm.update({n: fn for n, _, _ in part})
            json.dump({"metadata": {}, "weight_map": wm}, open(os.path.join(g, "model.safetensors.index.json"), "w"))
            paths[name] = g
        else:
            paths[name] = os.path.join(d, name + ".safetensors")
            stio.write(paths[name], tl)
    return paths


def run(mpiexec, np_, args, expect_ok=True):
    cmd = [mpiexec, "-n", str(np_), MAPMERGE] + args
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    if expect_ok and p.returncode != 0:
        print(p.stdout)
        fail("command failed (%d): %s" % (p.returncode, " ".join(cmd)))
    return p


def import_args(paths, store, extra=()):
    return ["import", "-map_pretrained", paths["pretrained"], "-map_tasks", ",".join(TASKS), "-map_task_models",
            ",".join(paths[t] for t in TASKS), "-map_store", store] + list(extra)


def expected(paths, coeff, tasks):
    pre = read_ckpt(paths["pretrained"])
    out = {}
    for n, _ in SHAPES:
        p = pre[n][1].astype(np.float32)
        acc, scale = p.astype(np.float64), np.abs(p).astype(np.float64)
        for c, t in zip(coeff, tasks):
            tau = read_ckpt(paths[t])[n][1].astype(np.float32) - p  # F32 subtraction, as the store
            acc = acc + c * tau.astype(np.float64)
            scale = scale + np.abs(c * tau.astype(np.float64))
        out[n] = (acc, scale)
    return out


def check_export(path, paths, coeff, tasks, dtype="F32", tol=1e-6):
    got, meta = stio.read(path)
    if meta.get("format") != "pt":
        fail("%s: metadata format = %r, expected pt" % (path, meta.get("format")))
    if meta.get("tasks") != ",".join(tasks):
        fail("%s: metadata tasks = %r" % (path, meta.get("tasks")))
    if [float(v) for v in meta.get("coefficients", "").split(",")] != list(coeff):
        fail("%s: metadata coefficients = %r" % (path, meta.get("coefficients")))
    if "mapmerge_version" not in meta:
        fail("%s: no mapmerge_version in metadata" % path)
    exp = expected(paths, coeff, tasks)
    worst = 0.0
    for n, s in SHAPES:
        if n not in got:
            fail("%s: tensor %s missing" % (path, n))
        dt, a = got[n]
        if dt != dtype or list(a.shape) != s:
            fail("%s: tensor %s is %s %s, expected %s %s" % (path, n, dt, list(a.shape), dtype, s))
        e, scale = exp[n]
        err = np.abs(a.astype(np.float64) - e) / np.maximum(scale, 1e-30)
        worst = max(worst, float(err.max()) if err.size else 0.0)
    if worst > tol:
        fail("%s: max relative error %.3g > %.1g" % (path, worst, tol))
    print("ok %s: %d tensors, max relative error vs numpy %.3g" % (os.path.basename(path), len(got), worst))
    return got


def check_store_h5(store, paths):
    import h5py

    pre = read_ckpt(paths["pretrained"])
    with h5py.File(store, "r") as f:
        names = [x.decode() if isinstance(x, bytes) else x for x in f["tensors/name"][:]]
        if names != [n for n, _ in SHAPES]:
            fail("store tensors %s" % names)
        tasks = [x.decode() if isinstance(x, bytes) else x for x in f["tasks"][:]]
        if tasks != TASKS:
            fail("store tasks %s" % tasks)
        P = sum(int(np.prod(s)) for _, s in SHAPES)
        if f["pretrained"].shape != (P,) or f["task_vectors"].shape != (len(TASKS), P):
            fail("store shapes %s %s, P = %d" % (f["pretrained"].shape, f["task_vectors"].shape, P))
        if f["pretrained"].dtype != np.float32 or f["task_vectors"].dtype != np.float32:
            fail("store dtypes")
        off = f["tensors/offset"][:]
        flat_pre = np.concatenate([pre[n][1].astype(np.float32).ravel() for n, _ in SHAPES])
        if not np.array_equal(f["pretrained"][:], flat_pre):
            fail("/pretrained differs from the pretrained checkpoint")
        for t, task in enumerate(TASKS):
            ck = read_ckpt(paths[task])
            flat = np.concatenate([ck[n][1].astype(np.float32).ravel() for n, _ in SHAPES]) - flat_pre
            if not np.array_equal(f["task_vectors"][t, :], flat):
                fail("/task_vectors[%d] differs from %s - pretrained" % (t, task))
            for h in ("head.weight", "head.bias"):
                if not np.array_equal(f["private/%s/%s" % (task, h)][()], ck[h][1]):
                    fail("/private/%s/%s differs" % (task, h))
        if list(off) != list(np.cumsum([0] + [int(np.prod(s)) for _, s in SHAPES])[:-1]):
            fail("offsets %s" % list(off))
        if [int(x) for x in f["tensors/ndim"][:]] != [len(s) for _, s in SHAPES]:
            fail("ndim")
        dts = [x.decode() if isinstance(x, bytes) else x for x in f["tensors/dtype"][:]]
        if dts != ["F16" if n == "norm.weight" else "F32" for n, _ in SHAPES]:
            fail("dtypes %s" % dts)
        a = f.attrs
        for key in ("mapmerge_version", "git_commit", "creation_time", "pretrained.digest", "task.gamma.digest", "source_digest"):
            if key not in a:
                fail("store attribute %s missing (have %s)" % (key, list(a.keys())))
        if a["source_digest"] != "sha256-ranges-%d" % map_digest.DEFAULT_RANGE:
            fail("source_digest %r" % a["source_digest"])
        shas = a["task.gamma.digest"].splitlines()
        want = sorted(glob.glob(os.path.join(paths["gamma"], "*.safetensors")))
        if len(shas) != len(want):
            fail("gamma sha256 lines %s, files %s" % (shas, want))
        for line, fn in zip(sorted(shas, key=lambda l: l.split()[1]), want):
            h, p = line.split("  ", 1)
            if h != map_digest.digest(fn) or os.path.realpath(fn) != p:
                fail("digest line %r for %s" % (line, fn))
        if a["task.beta.dtypes"] != "F32,BF16":
            fail("beta dtypes %r" % a["task.beta.dtypes"])
    print("ok store %s: h5py contents equal the checkpoints" % os.path.basename(store))


def no_leftovers(d, what):
    left = [x for x in os.listdir(d) if ".tmp." in x]
    if left:
        fail("%s: temporary files left behind: %s" % (what, left))


def roundtrip(work, mpiexec):
    shutil.rmtree(work, ignore_errors=True)
    paths = make_family(os.path.join(work, "models"))
    stores = {}
    for n in (1, 2, 4):
        stores[n] = os.path.join(work, "store_np%d.h5" % n)
        extra = ["-map_import_block", "64", "-map_import_chunk", "100"] if n == 2 else []  # many blocks, odd chunks
        p = run(mpiexec, n, import_args(paths, stores[n], extra))
        if "beta" not in p.stdout or "converted to F32" not in p.stdout:
            fail("import did not log the BF16 -> F32 conversion of task beta:\n" + p.stdout)
        check_store_h5(stores[n], paths)
    no_leftovers(work, "import")

    p = run(mpiexec, 2, ["info", "-map_store", stores[4]])
    for s in ["alpha", "beta", "gamma", "encoder.1.weight", "[7,11]", "P = 1158", "head.bias", "sha256", "creation_time"]:
        if s not in p.stdout:
            fail("info output lacks %r:\n%s" % (s, p.stdout))
    print("ok info")

    coeff = [0.3, 0.2, 0.5]
    outs = {}
    for n in (1, 2, 4):
        outs[n] = os.path.join(work, "merged_np%d.safetensors" % n)
        run(mpiexec, n, ["export", "-map_store", stores[n], "-map_coeff", "0.3,0.2,0.5", "-map_output", outs[n]])
        check_export(outs[n], paths, coeff, TASKS)
    b1 = open(outs[1], "rb").read()
    for n in (2, 4):
        if open(outs[n], "rb").read() != b1:
            fail("export at -n %d differs from -n 1 (bytes)" % n)
    print("ok export bytes identical at -n 1, 2, 4 (%d bytes)" % len(b1))

    # a subset of tasks in another order, with gamma's private head, in bf16
    sub = os.path.join(work, "merged_sub.safetensors")
    run(mpiexec, 3, ["export", "-map_store", stores[1], "-map_tasks", "gamma,alpha", "-map_coeff", "0.7,-0.4", "-map_output", sub,
                     "-map_export_private", "gamma", "-map_export_dtype", "bf16"])
    got = check_export(sub, paths, [0.7, -0.4], ["gamma", "alpha"], dtype="BF16", tol=8e-3)
    gh = read_ckpt(paths["gamma"])["head.weight"][1]
    if "head.weight" not in got or not np.array_equal(got["head.weight"][1], stio.from_bf16(stio.to_bf16(gh)).reshape(gh.shape)):
        fail("private head of gamma not exported (or wrong)")

    # sharded output: a folder with an index, same tensors as the single file
    shd = os.path.join(work, "merged_sharded")
    run(mpiexec, 2, ["export", "-map_store", stores[2], "-map_coeff", "0.3,0.2,0.5", "-map_output", shd, "-map_export_shard_size", "2000"])
    idx = json.load(open(os.path.join(shd, "model.safetensors.index.json")))
    files = sorted(set(idx["weight_map"].values()))
    if len(files) < 2:
        fail("sharded export wrote %d files" % len(files))
    single = stio.read(outs[1])[0]
    both = read_ckpt(shd)
    for n, _ in SHAPES:
        if not np.array_equal(both[n][1], single[n][1]):
            fail("sharded export: %s differs from the single-file export" % n)
    print("ok sharded export: %d files, equal to the single file" % len(files))
    no_leftovers(work, "export")
    print("PASS roundtrip")


def tiny(work, mpiexec):
    """P = 77 + 7 + 1 = 85 parameters: at -n 4 ranks 2 and 3 own nothing (64-aligned shards)."""
    global SHAPES
    shutil.rmtree(work, ignore_errors=True)
    SHAPES = [("encoder.1.weight", [7, 11]), ("encoder.1.bias", [7]), ("norm.scale", [])]
    paths = make_family(os.path.join(work, "models"))
    store = os.path.join(work, "tiny.h5")
    run(mpiexec, 4, import_args(paths, store))
    out4, out1 = os.path.join(work, "tiny4.safetensors"), os.path.join(work, "tiny1.safetensors")
    run(mpiexec, 4, ["export", "-map_store", store, "-map_coeff", "1,0.5,0.25", "-map_output", out4])
    run(mpiexec, 1, ["export", "-map_store", store, "-map_coeff", "1,0.5,0.25", "-map_output", out1])
    check_export(out4, paths, [1, 0.5, 0.25], TASKS)
    if open(out4, "rb").read() != open(out1, "rb").read():
        fail("tiny export differs between -n 4 and -n 1")
    print("PASS tiny")


# ---- bad input: (np, how to make the models, args builder, expected message fragments) ----
def tw_shape(name, tl):
    return [(n, d, a.reshape(11, 7) if (name == "beta" and n == "encoder.1.weight") else a) for n, d, a in tl]


def tw_missing(name, tl):
    return [t for t in tl if not (name == "alpha" and t[0] == "encoder.0.bias")]


def tw_nan(name, tl):
    out = []
    for n, d, a in tl:
        if name == "beta" and n == "encoder.0.weight":
            a = a.copy()
            a[3, 4] = stio.to_bf16(np.float32(np.nan))  # BF16 storage
        out.append((n, d, a))
    return out


def tw_inf(name, tl):
    out = []
    for n, d, a in tl:
        if name == "pretrained" and n == "encoder.1.bias":
            a = a.copy()
            a[2] = np.inf
        out.append((n, d, a))
    return out


def tw_big(value):
    """a value finite in F32 that rounds to Inf in a 16-bit storage dtype: only -map_store_dtype bf16
    (3.4e38) or f16 (65520, the smallest F32 above 65504 + half an F16 ulp) refuses it"""
    def tweak(name, tl):
        out = []
        for n, d, a in tl:
            if name == "pretrained" and n == "encoder.1.bias":
                a = a.copy()
                a[2] = np.float32(value)
            out.append((n, d, a))
        return out
    return tweak


STORE16 = ("bf16", "f16")  # the 16-bit storage dtypes; a bad-input case named <dtype>_... imports with it


def tw_int(name, tl):
    # integer tensors are kept from the pretrained model (/buffers); a task with other values is an error
    if name not in ("pretrained", "beta"):
        return tl
    return tl[:2] + [("encoder.0.steps", "I64", np.arange(6, dtype=np.int64) * (2 if name == "beta" else 1))] + tl[2:]


def tw_extra(name, tl):
    return tl + [("adapter.weight", "F32", np.ones(4, np.float32))] if name == "gamma" else tl


def tw_tv_overflow(name, tl):
    """finite values whose task vector (alpha - pretrained) overflows F32"""
    out = []
    for n, d, a in tl:
        if name in ("pretrained", "alpha") and n == "encoder.1.bias":
            a = a.copy()
            v = np.float32(-3e38 if name == "pretrained" else 3e38)
            a[2] = stio.to_bf16(v) if a.dtype == np.uint16 else v
        out.append((n, d, a))
    return out


def bad(case, work, mpiexec):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    store = os.path.join(work, "out.h5")
    tweaks = {"shape_mismatch": tw_shape, "missing_tensor": tw_missing, "nan": tw_nan, "inf": tw_inf, "int_dtype": tw_int,
              "extra_tensor": tw_extra, "tv_overflow": tw_tv_overflow, "bf16_overflow": tw_big(3.4e38), "f16_overflow": tw_big(65520.0)}
    paths = make_family(os.path.join(work, "models"), tweaks.get(case))
    out = store
    dt = case.split("_")[0]
    if case in tweaks:
        args = import_args(paths, store, ["-map_store_dtype", dt] if dt in STORE16 else [])
        want = {"bf16_overflow": ["pretrained model", "encoder.1.bias element 2", "flat parameter index 1119", "overflows BF16"],
                "f16_overflow": ["pretrained model", "encoder.1.bias element 2", "flat parameter index 1119", "value 65520 overflows F16",
                                 "-map_store_dtype f16"],
                "shape_mismatch": ["task beta model", "encoder.1.weight", "shape [11,7]", "shape [7,11]"],
                "missing_tensor": ["task alpha model", "alpha.safetensors", "encoder.0.bias", "is missing"],
                "nan": ["beta.safetensors", "encoder.0.weight element 79", "is NaN"],
                "inf": ["pretrained.safetensors", "encoder.1.bias element 2", "flat parameter index 1119", "is Inf"],
                "tv_overflow": ["task alpha model", "encoder.1.bias element 2", "flat parameter index 1119", "task vector (task - pretrained) overflows F32"],
                "int_dtype": ["task beta model", "beta.safetensors", "I64 tensor encoder.0.steps differs from the pretrained", "element 1"],
                "extra_tensor": ["gamma", "adapter.weight", "not in the pretrained model", "-map_private_patterns"]}[case]
    elif case == "option_typo":
        args, want = import_args(paths, store)[:-2] + ["-map_stor", store], ["unknown or unused option", "map_stor"]
    elif case == "bf16_unknown_dtype":
        args, want = import_args(paths, store, ["-map_store_dtype", "fp8"]), ["fp8", "-map_store_dtype", "f32 bf16 f16"]
    elif dt in STORE16 and case.split("_")[1] in ("mark", "root"):
        # a BF16 or F16 store damaged after the fact: the reader must refuse it and name the file
        import h5py

        kind, cmd = case[len(dt) + 1:].rsplit("_", 1)
        bad_store = os.path.join(work, "bad.h5")
        run(mpiexec, 1, import_args(paths, bad_store, ["-map_store_dtype", dt]))
        held = {"bf16": "integers of 2 bytes", "f16": "floats of 2 bytes"}[dt]
        with h5py.File(bad_store, "a") as f:
            if kind == "mark_unknown":
                f["task_vectors"].attrs["dtype"] = "fp8"
                want = ["bad.h5", "/task_vectors", held, "dtype = \"fp8\"", "expected F32"]
            elif kind == "mark_swapped":  # the other 16-bit mark: the bits would be misread
                other = "f16" if dt == "bf16" else "bf16"
                f["task_vectors"].attrs["dtype"] = other
                want = ["bad.h5", "/task_vectors", held, "dtype = \"%s\"" % other]
            elif kind == "mark_missing":
                del f["pretrained"].attrs["dtype"]
                want = ["bad.h5", "/pretrained", "dtype = (none)", {"bf16": "uint16 with dtype = \"bf16\"",
                                                                     "f16": "IEEE binary16 with dtype = \"f16\""}[dt]]
            elif kind == "root":
                f.attrs["storage_dtype"] = "F32"
                want = ["bad.h5", "root attribute storage_dtype is \"F32\"", "are " + dt.upper()]
            else:
                fail("unknown case " + case)
        if cmd == "info":
            args, out = ["info", "-map_store", bad_store], None
        else:
            out = os.path.join(work, "merged.safetensors")
            args = ["export", "-map_store", bad_store, "-map_coeff", "0.1,0.2,0.3", "-map_output", out]
    elif case == "count_mismatch":
        args = import_args(paths, store)
        args[args.index("-map_task_models") + 1] = ",".join(paths[t] for t in TASKS[:2])
        want = ["-map_tasks lists 3", "-map_task_models lists 2"]
    elif case == "dir_missing":
        out = os.path.join(work, "nonexistent", "sub", "s.h5")
        args, want = import_args(paths, out), ["-map_store", "nonexistent/sub", "does not exist"]
    elif case == "dir_readonly":
        if os.geteuid() == 0:  # root writes anywhere permissions allow; /proc/sys refuses even root
            ro = "/proc/sys"
            if os.access(ro, os.W_OK):
                print("SKIP: no read-only directory for root here")
                return
        else:
            ro = os.path.join(work, "ro")
            os.makedirs(ro)
            os.chmod(ro, 0o555)
        out = os.path.join(ro, "s.h5")
        args, want = import_args(paths, out), ["-map_store", "is not writable"]
    elif case.startswith("corrupt_"):
        good = os.path.join(work, "good.h5")
        run(mpiexec, 1, import_args(paths, good))
        kind, cmd = case.split("_")[1], case.split("_")[2]
        bad_store = os.path.join(work, "bad.h5")
        if kind == "text":
            open(bad_store, "w").write("this is not a store\n")
            want = ["not an HDF5 file"]
        elif kind == "truncated":
            data = open(good, "rb").read()
            open(bad_store, "wb").write(data[: len(data) // 2])
            want = ["bad.h5", "truncated or corrupt"]
        else:  # an HDF5 file that is not a store
            import h5py

            with h5py.File(bad_store, "w") as f:
                f["pretrained"] = np.zeros(4, np.float32)
            want = ["bad.h5", "not a mapmerge store"]
        if cmd == "info":
            args, out = ["info", "-map_store", bad_store], None
        else:
            out = os.path.join(work, "merged.safetensors")
            args = ["export", "-map_store", bad_store, "-map_coeff", "0.1,0.2,0.3", "-map_output", out]
    elif case == "coeff_count":
        good = os.path.join(work, "good.h5")
        run(mpiexec, 1, import_args(paths, good))
        out = os.path.join(work, "merged.safetensors")
        args = ["export", "-map_store", good, "-map_coeff", "0.1,0.2", "-map_output", out]
        want = ["-map_coeff has 2 values", "the store has 3 tasks", "alpha,beta,gamma"]
    elif case == "unknown_task":
        good = os.path.join(work, "good.h5")
        run(mpiexec, 1, import_args(paths, good))
        out = os.path.join(work, "merged.safetensors")
        args = ["export", "-map_store", good, "-map_tasks", "alpha,delta", "-map_coeff", "0.1,0.2", "-map_output", out]
        want = ["no task \"delta\"", "alpha,beta,gamma"]
    else:
        fail("unknown case " + case)
    p = run(mpiexec, 2, args, expect_ok=False)
    if p.returncode == 0:
        fail("%s: exit code 0, expected an error\n%s" % (case, p.stdout))
    if "Segmentation" in p.stdout or "signal 11" in p.stdout:
        fail("%s: crashed\n%s" % (case, p.stdout))
    for w in want:
        if w not in p.stdout:
            fail("%s: message lacks %r:\n%s" % (case, w, p.stdout))
    if out and os.path.exists(out):
        fail("%s: output %s was left behind" % (case, out))
    if out and os.path.isdir(os.path.dirname(out)):
        no_leftovers(os.path.dirname(out), case)
    no_leftovers(work, case)
    first = [l for l in p.stdout.splitlines() if "PETSC ERROR" in l and ("import:" in l or "store" in l or "model" in l or "option" in l or "export" in l)]
    print("ok %s: exit %d, %s" % (case, p.returncode, first[0].strip() if first else ""))
    print("PASS bad " + case)


def helptext(work, mpiexec):
    """-help documents each command's options and does nothing else (exit 0)."""
    for cmd, opts in (("import", ["-map_pretrained", "-map_tasks", "-map_task_models", "-map_private_patterns", "-map_store", "-map_import_block",
                                  "-map_store_dtype"]),
                      ("info", ["-map_store"]),
                      ("export", ["-map_store", "-map_coeff", "-map_tasks", "-map_output", "-map_export_shard_size", "-map_export_private",
                                  "-map_export_dtype"])):
        p = run(mpiexec, 1, [cmd, "-help"])
        for o in opts:
            if o not in p.stdout:
                fail("%s -help does not document %s:\n%s" % (cmd, o, p.stdout))
    print("PASS help")


if __name__ == "__main__":
    if sys.argv[1] == "help":
        helptext(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "roundtrip":
        roundtrip(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "tiny":
        tiny(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "bad":
        bad(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        fail("usage: store_test.py roundtrip|tiny|bad ...")
