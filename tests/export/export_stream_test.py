"""Streaming export (issue 17, item 1): `mapmerge export` reads, merges and writes block by block
(-map_io_block_mb). Checked here against the whole-shard export (-map_io_block_mb 0, the former
in-memory path) byte for byte, and that an export fits under a memory limit the whole-shard one
cannot.

usage: export_stream_test.py identical|memlimit WORKDIR MPIEXEC MAPMERGE
  identical: F32 and BF16 stores; blocks of 0.05 MiB (many blocks, crossing tensor boundaries)
             at -n 1..4, output f32 and bf16, single file (with a private head) and sharded,
             against -map_io_block_mb 0 at -n 1; and the merge against numpy for the F32 store.
  memlimit:  P = 3e7, T = 2 (F32 store, 240 MB per vector): under `ulimit -v` the whole-shard
             export fails (out of memory, no output left), the streaming one succeeds with the
             same bytes as an unlimited whole-shard export."""
import filecmp
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "..", "bench", "store", "gen_model.py")


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(cmd, expect_ok=True, shell=False):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300, shell=shell)
    if expect_ok and p.returncode != 0:
        print(p.stdout)
        fail("command failed (%d): %s" % (p.returncode, cmd if shell else " ".join(cmd)))
    return p


def make_store(work, P, T, dtypes, keep_model=False):
    """stores of a gen_model.py family in the given dtypes; keep_model: also the family's folder"""
    m = os.path.join(work, "model")
    run([sys.executable, GEN, m, "--P", str(P), "--T", str(T)])
    stores = {}
    for dt in dtypes:
        s = os.path.join(work, "store_%s.h5" % dt)
        run([MPI, "-n", "1", MM, "import", "-map_pretrained", os.path.join(m, "pretrained.safetensors"), "-map_tasks",
             ",".join("t%d" % t for t in range(T)), "-map_task_models", ",".join(os.path.join(m, "task%d.safetensors" % t) for t in range(T)),
             "-map_store", s, "-map_store_dtype", dt])
        stores[dt] = s
    if keep_model:
        return stores, m
    shutil.rmtree(m)
    return stores


def export(n, store, out, block, extra=()):
    return [MPI, "-n", str(n), MM, "export", "-map_store", store, "-map_coeff", "0.7,-0.4,1.3", "-map_output", out,
            "-map_io_block_mb", str(block)] + list(extra)


def same(a, b):
    if os.path.isdir(a):
        names = sorted(os.listdir(a))
        if names != sorted(os.listdir(b)):
            fail("%s and %s hold different files: %s vs %s" % (a, b, names, sorted(os.listdir(b))))
        for f in names:
            same(os.path.join(a, f), os.path.join(b, f))
        return
    if not filecmp.cmp(a, b, shallow=False):
        fail("%s and %s differ" % (a, b))


def read_f32(path):
    with open(path, "rb") as f:
        hl = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(hl))
        data = f.read()
    return {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], dtype="<f4") for k, v in h.items() if k != "__metadata__"}


def identical(work):
    stores = make_store(work, 300_000, 3, ["f32", "bf16"])
    checked = 0
    for sdt, store in stores.items():
        # (output, options, rank counts): every case against the whole-shard export at -n 1
        cases = [("sharded", ["-map_export_dtype", "bf16", "-map_export_shard_size", "200000", "-map_export_private", "t1"], (1, 2, 3, 4)),
                 ("f32.safetensors", ["-map_export_dtype", "f32", "-map_export_private", "t1"], (2, 3)),
                 ("bf16.safetensors", ["-map_export_dtype", "bf16"], (4,))]
        for name, extra, ranks in cases:
            ref = os.path.join(work, "ref_%s_%s" % (sdt, name))
            run(export(1, store, ref, 0, extra))
            for n in ranks:
                out = os.path.join(work, "stream_%s_%d_%s" % (sdt, n, name))
                run(export(n, store, out, 0.05, extra))
                same(ref, out)
                checked += 1
        if sdt == "f32":  # the merge itself, independently: F32 store, F32 output
            got = read_f32(os.path.join(work, "stream_f32_3_f32.safetensors"))
            import h5py
            with h5py.File(store, "r") as f:
                pre, tv = f["pretrained"][:], f["task_vectors"][:]
            c = np.array([0.7, -0.4, 1.3], dtype=np.float32)
            want = pre.copy()
            for t in range(3):
                want = (want + c[t] * tv[t]).astype(np.float32)
            flat = np.concatenate([got[k] for k in ("layers.0.weight", "layers.1.weight", "layers.1.bias")])
            err = np.max(np.abs(flat - want)) / max(1e-30, np.max(np.abs(want)))
            if flat.shape != want.shape or err > 1e-6:
                fail("streamed merge differs from numpy: shape %s vs %s, max relative error %g" % (flat.shape, want.shape, err))
            if "head.weight" not in got:
                fail("private head of t1 missing from the export: %s" % sorted(got))
    print("identical: %d streamed exports equal the whole-shard ones" % checked)


def memlimit(work):
    store = make_store(work, 30_000_000, 2, ["f32"])["f32"]
    limit_kb = 600_000  # whole shard: (T+2)*P*4 = 480 MB of buffers on top of ~250 MB of MPI/PETSc/HDF5 address space
    ref = os.path.join(work, "ref.safetensors")
    out = os.path.join(work, "stream.safetensors")
    big = os.path.join(work, "big.safetensors")
    coeff = ["-map_coeff", "0.5,0.25"]

    def limited(path, block):
        return run("ulimit -v %d && %s -n 1 %s export -map_store %s %s -map_output %s -map_io_block_mb %s" %
                   (limit_kb, MPI, MM, store, " ".join(coeff), path, block), expect_ok=False, shell=True)
    p = limited(big, 0)
    if p.returncode == 0:
        fail("the whole-shard export succeeded under ulimit -v %d kB: the limit does not test anything" % limit_kb)
    if os.path.exists(big) or any(f.startswith("big.safetensors") for f in os.listdir(work)):
        fail("a failed export left output behind: %s" % os.listdir(work))
    if "memory" not in p.stdout:
        print(p.stdout)
        fail("the whole-shard export under ulimit -v %d kB failed, but not for lack of memory" % limit_kb)
    p = limited(out, 16)
    if p.returncode != 0:
        print(p.stdout)
        fail("streaming export failed under ulimit -v %d kB" % limit_kb)
    run([MPI, "-n", "1", MM, "export", "-map_store", store] + coeff + ["-map_output", ref, "-map_io_block_mb", "0"])
    same(ref, out)
    print("memlimit: whole-shard export fails under ulimit -v %d kB, streaming export succeeds with the same bytes" % limit_kb)


if __name__ == "__main__":
    mode, work, MPI, MM = sys.argv[1:5]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    {"identical": identical, "memlimit": memlimit}[mode](work)
    shutil.rmtree(work, ignore_errors=True)
