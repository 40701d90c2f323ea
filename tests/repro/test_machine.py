#!/usr/bin/python3
"""Bits that must not depend on the CPU, the BLAS kernels or the launcher (docs/reproducibility.md):
1. the small zoo (input/small.yaml) built under OPENBLAS_CORETYPE=Haswell, =Prescott and with glibc's
   FMA/AVX2 libm variants switched off (GLIBC_TUNABLES): the same sha256 for every file;
2. `eval -map_eval_kernel fixed` under both core types: the same bits (the blas kernel is reported);
3. a MAP run under `mpiexec --bind-to none` (OpenBLAS would use every core of the node) and with
   the default binding: every results.h5 dataset the same bits; the manifest records the BLAS pin and
   the sha256 of -map_test_data and of -map_eval_command's program and script.
OPENBLAS_NUM_THREADS is removed from the environment: mapmerge pins its BLAS threads itself.
usage: test_machine.py   (env: MAPMERGE, MAP_BINARY_DIR, MAP_SOURCE_DIR)"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import map_digest  # noqa: E402  (the store's source digest: docs/storage.md)

SRC = os.environ["MAP_SOURCE_DIR"]
MAPMERGE = os.environ["MAPMERGE"]
SMALL = os.path.join(SRC, "input", "small.yaml")
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
failures = []


def check(cond, msg):
    print(("ok: " if cond else "FAIL: ") + msg, flush=True)
    if not cond:
        failures.append(msg)


def mpi(n, args, cwd, env=None, launcher=()):
    e = dict(BASE_ENV, **(env or {}))
    fwd = [x for k in (env or {}) for x in ("-x", k)]
    p = subprocess.run(["mpiexec", "-n", str(n), "--oversubscribe", *launcher, *fwd, MAPMERGE] + args, cwd=cwd, env=e,
                       capture_output=True, text=True, timeout=300)
    if p.returncode:
        print(p.stdout[-3000:], p.stderr[-3000:])
        print(f"FAIL: mapmerge {' '.join(args[:1])} ({env}, {launcher}) exited {p.returncode}")
        sys.exit(1)
    return p.stdout


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def tree_sha(d):
    return {os.path.relpath(os.path.join(r, f), d): sha(os.path.join(r, f))
            for r, _, fs in os.walk(d) for f in fs if f.endswith(".safetensors")}


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[...].tobytes() if obj.dtype != object else list(obj[...].ravel()))
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def main():
    with tempfile.TemporaryDirectory(dir=os.environ.get("MAP_BINARY_DIR")) as d:
        # 1. the zoo on different BLAS kernels and libm variants
        envs = {"Haswell": {"OPENBLAS_CORETYPE": "Haswell"}, "Prescott": {"OPENBLAS_CORETYPE": "Prescott"},
                "no-FMA libm": {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-AVX512F"}}
        zoos = {}
        for name, env in envs.items():
            zd = os.path.join(d, "zoo-" + name.replace(" ", "_"))
            mpi(2, ["zoo", "-options_file_yaml", SMALL, "-map_output", zd], d, env)
            zoos[name] = tree_sha(zd)
        first = zoos["Haswell"]
        print(f"zoo: {len(first)} files, pretrained.safetensors sha256 {first['pretrained.safetensors']}")
        for name, z in zoos.items():
            check(z == first and len(z) >= 5, f"zoo built under {name}: the same sha256 for all {len(z)} files as under Haswell")

        # 2. the evaluator: fixed kernel machine-independent; blas reported
        zd = os.path.join(d, "zoo-Haswell")
        os.symlink(zd, os.path.join(d, "zoo-small"))
        mpi(2, ["import", "-options_file_yaml", SMALL], d)
        with open(os.path.join(d, "c.csv"), "w") as f:
            f.write("rot90,flip_v,permute,shift\n1,0,0,0\n0.3,0.2,0.4,0.1\n0.5,0.5,0.5,0.5\n")
        for kernel in ("fixed", "blas"):
            outs = []
            for ct in ("Haswell", "Prescott"):
                o = os.path.join(d, f"eval-{kernel}-{ct}.csv")
                mpi(2, ["eval", "-options_file_yaml", SMALL, "-map_eval_kernel", kernel, "-map_coeffs", "c.csv", "-map_output", o], d,
                    {"OPENBLAS_CORETYPE": ct})
                outs.append(open(o).read())
            if kernel == "fixed":
                check(outs[0] == outs[1], "eval -map_eval_kernel fixed: the same bits under OPENBLAS_CORETYPE Haswell and Prescott")
            else:
                print(f"info: eval -map_eval_kernel blas under Haswell and Prescott: {'same' if outs[0] == outs[1] else 'other'} bits")

        # 3. the launcher's binding, and the manifest
        script = os.path.join(d, "evalprog.py")
        with open(script, "w") as f:
            f.write("print('{\"accuracy\": 0.5, \"loss\": 1.0}')\n")
        runs = []
        for tag, launcher in (("bound", ()), ("unbound", ("--bind-to", "none"))):
            run = os.path.join(d, "run-" + tag)
            mpi(2, ["run", "-options_file_yaml", SMALL, "-map_tasks", "rot90,flip_v,shift", "-map_sample_n", "12",
                    "-map_reevaluate", "2", "-map_output", run], d, launcher=launcher)
            runs.append(run)
        a, b = (datasets(os.path.join(r, "results.h5")) for r in runs)
        check(a == b and len(a) > 5, f"run under mpiexec --bind-to none: all {len(a)} results.h5 datasets the same bits as with default binding")
        man = json.load(open(os.path.join(runs[0], "manifest.json")))
        rep = man.get("reproducibility", {})
        check("openblas_set_num_threads(1)" in rep.get("blas_threads", ""), f"manifest: BLAS threads pinned ({rep.get('blas_threads')})")
        check("1 thread(s)" in man["versions"]["blas"], f"manifest: the loaded BLAS runs 1 thread ({man['versions']['blas'][-40:]})")
        tests = [os.path.join(d, f"zoo-small/data/{t}_test.safetensors") for t in ("rot90", "flip_v", "permute", "shift")]
        ins = man["inputs_sha256"]
        check(all(ins.get(os.path.relpath(t, d)) == sha(t) or ins.get(t) == sha(t) for t in tests),
              "manifest: sha256 of the -map_test_data files")
        srcs = rep.get("store_sources_digest", {})
        check(srcs.get("pretrained", "").startswith(map_digest.digest(os.path.join(zd, "pretrained.safetensors")))
              and srcs.get("definition") == "sha256-ranges-%d" % map_digest.DEFAULT_RANGE,
              "manifest: digest of the zoo's pretrained.safetensors (the store's source)")
        # the command evaluator's program and script
        run = os.path.join(d, "run-command")
        mpi(1, ["run", "-map_store", "zoo-small/store.h5", "-map_tasks", "rot90,flip_v", "-map_eval_type", "command",
                "-map_eval_command", f"python3 {script} {{model}} {{task}}", "-map_sample_n", "6", "-map_reevaluate", "1",
                "-map_output", run], d)
        ins = json.load(open(os.path.join(run, "manifest.json")))["inputs_sha256"]
        py = os.path.realpath(shutil.which("python3"))
        check(ins.get(os.path.realpath(script)) == sha(script), "manifest: sha256 of -map_eval_command's script")
        check(ins.get(py) == sha(py), f"manifest: sha256 of -map_eval_command's program ({py})")
    if failures:
        print(f"FAIL: {len(failures)} check(s) failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
