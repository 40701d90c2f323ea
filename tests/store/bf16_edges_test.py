"""BF16 storage at the edges of the format (`import -map_store_dtype bf16`): the vectorised rounding
(16 values at a time) and the BF16 reader (8 at a time) against numpy, on values a trained model rarely
has: zeros of both signs, subnormals, the smallest normal, exact ties (to even, both ways), the largest
finite BF16 and the first F32 value that rounds to Inf, at offsets that are not multiples of the vector
width, in a parameter count (4,099) no rank count divides.

usage: bf16_edges_test.py WORKDIR MPIEXEC MAPMERGE
  - F32 checkpoints and BF16 checkpoints: the store's /pretrained and /task_vectors bits equal numpy's
    round-to-nearest-even of the F32 values (task vectors subtracted in F32), at -n 1, 2 and 3, and the
    recorded bf16_max_abs_error / bf16_max_rel_error equal numpy's float64 errors exactly;
  - a pretrained value that rounds to Inf at flat index 2051 (mid-vector): the import fails naming the
    index and BF16, and leaves no store behind."""
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import stio  # noqa: E402  (tests/stio.py: the tests' own safetensors writer)

N = 4099


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def bits(u):
    return np.array(u, dtype=np.uint32).view(np.float32)


def values(rng):
    x = rng.normal(0, 0.02, N).astype(np.float32)
    edges = {3: 0.0, 17: -0.0, 18: bits(0x00000001), 19: bits(0x80000003), 31: bits(0x00400000), 33: bits(0x00800000),
             47: bits(0x3F808000),   # a tie, 1.0 + half a BF16 ulp: to even (down)
             48: bits(0x3F818000),   # a tie with an odd BF16 neighbour below: up
             49: bits(0x3F817FFF), 50: bits(0x3F818001),
             63: bits(0x7F7F0000),   # the largest finite BF16
             64: bits(0x7F7F7FFF),   # the largest F32 that still rounds to it
             65: -bits(0x7F7F7FFF), 100: 1e-38, 101: -1e-38, 4098: 7.0}
    for j, v in edges.items():
        x[j] = v
    return x


def errors(x, h):
    w = stio.from_bf16(h).astype(np.float64)
    d = np.abs(w - x.astype(np.float64))
    nz = x != 0
    return float(d.max()), float((d[nz] / np.abs(x[nz].astype(np.float64))).max())


def run(cmd, ok=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    if ok and p.returncode != 0:
        print(p.stdout)
        fail("command failed: " + " ".join(cmd))
    return p


def write_family(d, pre, tasks, tag):
    os.makedirs(d, exist_ok=True)
    conv = (lambda a: stio.to_bf16(a)) if tag == "BF16" else (lambda a: a)
    paths = [os.path.join(d, "pretrained.safetensors")] + [os.path.join(d, "task%d.safetensors" % t) for t in range(len(tasks))]
    # two tensors, split at an odd offset, so the shards and tensors cross at odd places
    for path, a in zip(paths, [pre] + tasks):
        stio.write(path, [("w.weight", tag, conv(a[:1030]).reshape(10, 103)), ("w.bias", tag, conv(a[1030:]))])
    return paths


def import_store(paths, store, n, expect_ok=True):
    if os.path.exists(store):
        os.remove(store)
    return run([MPI, "-n", str(n), MM, "import", "-map_pretrained", paths[0], "-map_tasks", ",".join("t%d" % t for t in range(len(paths) - 1)),
                "-map_task_models", ",".join(paths[1:]), "-map_store", store, "-map_store_dtype", "bf16"], expect_ok)


def main():
    rng = np.random.default_rng(17)
    pre = values(rng)
    tasks = [pre + rng.uniform(-1e-3, 1e-3, N).astype(np.float32) for _ in range(2)]
    tasks[0][63], tasks[0][64] = bits(0x7F7F0000), bits(0x7F7F7FFF)  # task vectors 0 there, and the largest values stay finite
    tasks[1][18], tasks[1][47] = bits(0x80000001), -0.0
    checked = 0
    for tag in ("F32", "BF16"):
        d = os.path.join(WORK, tag)
        paths = write_family(d, pre, tasks, tag)
        # what the import sees: F32 values (a BF16 checkpoint widened exactly)
        p32 = stio.from_bf16(stio.to_bf16(pre)) if tag == "BF16" else pre
        t32 = [stio.from_bf16(stio.to_bf16(t)) if tag == "BF16" else t for t in tasks]
        tv = np.stack([(t - p32).astype(np.float32) for t in t32])
        want_pre, want_tv = stio.to_bf16(p32), stio.to_bf16(tv.ravel()).reshape(tv.shape)
        want_err = {"pretrained": errors(p32, want_pre), "task_vectors": errors(tv.ravel(), want_tv.ravel())}
        for n in (1, 2, 3):
            store = os.path.join(d, "store-%d.h5" % n)
            import_store(paths, store, n)
            with h5py.File(store, "r") as f:
                for name, want in (("pretrained", want_pre), ("task_vectors", want_tv)):
                    got = f[name][...].view(np.uint16)
                    if got.shape != want.shape or not np.array_equal(got, want):
                        j = np.argwhere(got != want)[0] if got.shape == want.shape else None
                        fail("%s checkpoints, -n %d: /%s differs from numpy's rounding at %s: %s vs %s" %
                             (tag, n, name, j, got[tuple(j)] if j is not None else got.shape, want[tuple(j)] if j is not None else want.shape))
                    rec = (float(f[name].attrs["bf16_max_abs_error"]), float(f[name].attrs["bf16_max_rel_error"]))
                    if rec != want_err[name]:
                        fail("%s checkpoints, -n %d: /%s records errors %r, numpy computes %r" % (tag, n, name, rec, want_err[name]))
            checked += 1
    # a value that rounds to Inf, mid-vector: named, nothing left behind
    bad = pre.copy()
    bad[2051] = bits(0x7F7F8000)
    paths = write_family(os.path.join(WORK, "inf"), bad, tasks, "F32")
    store = os.path.join(WORK, "inf", "store.h5")
    for n in (1, 3):
        p = import_store(paths, store, n, expect_ok=False)
        if p.returncode == 0 or "flat parameter index 2051" not in p.stdout or "overflows BF16" not in p.stdout:
            print(p.stdout)
            fail("-n %d: a pretrained value rounding to Inf at index 2051 was not reported by index" % n)
        if os.path.exists(store):
            fail("-n %d: a failed import left %s behind" % (n, store))
    print("bf16 edges: %d stores equal numpy's rounding and errors (F32 and BF16 checkpoints, -n 1..3); Inf at index 2051 reported" % checked)


if __name__ == "__main__":
    WORK, MPI, MM = sys.argv[1:4]
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    main()
    shutil.rmtree(WORK, ignore_errors=True)
