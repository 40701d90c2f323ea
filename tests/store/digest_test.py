"""Source digests of `mapmerge import` (docs/storage.md, "Source digests") and the store checksum,
both against independent Python computations: a sharded BF16 HF family (bench/store/gen_hf.py, shards
of ~300 KB) and a single-file F32 family (bench/store/gen_model.py), imported at -n 1 to 4 with
64 KiB ranges (several ranges per file, rank boundaries inside them): every store records the same
digests, equal to scripts/map_digest.py's, and /pretrained's and each /task_vectors row's "map64"
checksum equals numpy's evaluation of its definition (MapChecksum64) over the stored bits.
usage: digest_test.py WORKDIR MPIEXEC MAPMERGE"""
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import map_digest  # noqa: E402

BENCH = os.path.join(HERE, "..", "..", "bench", "store")
RANGE = 65536
C1, C2, C3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def fail(msg):
    print("FAIL", msg, flush=True)
    sys.exit(1)


def map64(bits, first=0):
    """MapChecksum64 (src/core/core_digest.c) in numpy: uint64 arithmetic wraps mod 2^64 as C's does"""
    j = np.arange(first, first + bits.size, dtype=np.uint64)
    b = bits.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = j * C1
        z = (z ^ (z >> np.uint64(30))) * C2
        z = (z ^ (z >> np.uint64(27))) * C3
        z = (z ^ (z >> np.uint64(31))) ^ (b * C1)
        z = (z ^ (z >> np.uint64(30))) * C2
        z = (z ^ (z >> np.uint64(27))) * C3
        z = z ^ (z >> np.uint64(31))
    return "map64:%016x" % (int(z.sum(dtype=np.uint64)) & (2**64 - 1))


def check_store(store, models, tasks):
    with h5py.File(store, "r") as f:
        a = f.attrs
        if a["source_digest"] != "sha256-ranges-%d" % RANGE:
            fail(f"{store}: source_digest {a['source_digest']!r}")
        for key, model in zip(["pretrained.digest"] + [f"task.{t}.digest" for t in tasks], models):
            lines = a[key].splitlines()
            files = sorted(l.split("  ", 1)[1] for l in lines)
            want = sorted(os.path.realpath(os.path.join(model, x)) for x in os.listdir(model) if x.endswith(".safetensors")) \
                if os.path.isdir(model) else [os.path.realpath(model)]
            if files != want:
                fail(f"{store}: {key} lists {files}, the checkpoint has {want}")
            for line in lines:
                h, p = line.split("  ", 1)
                if h != map_digest.digest(p, RANGE):
                    fail(f"{store}: {key}: {p}: recorded {h}, map_digest.py {map_digest.digest(p, RANGE)}")
        for name in ("pretrained", "task_vectors"):
            d = f[name]
            raw = d[...].view(np.uint16 if d.dtype.itemsize == 2 else np.uint32)
            got = d.attrs["checksum"]
            want = ",".join(map64(row) for row in raw) if raw.ndim == 2 else map64(raw)
            if got != want:
                fail(f"{store}: /{name} checksum {got}, numpy {want}")
        return {k: v for k, v in a.items() if k.endswith(".digest")}


def main():
    work, mpiexec, mapmerge = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    subprocess.run([sys.executable, os.path.join(BENCH, "gen_hf.py"), os.path.join(work, "hf"), "--P", "3e5", "--T", "2",
                    "--dtype", "BF16", "--writers", "1", "--shard-size", "300K", "--seed", "3"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, os.path.join(BENCH, "gen_model.py"), os.path.join(work, "st"), "--P", "200000", "--T", "2"],
                   check=True, stdout=subprocess.DEVNULL)
    fams = {"hf": ([os.path.join(work, "hf", x) for x in ("pretrained", "task0", "task1")], ["bf16"]),
            "st": ([os.path.join(work, "st", x + ".safetensors") for x in ("pretrained", "task0", "task1")], ["f32"])}
    for fam, (models, dts) in fams.items():
        seen = None
        for n in (1, 2, 3, 4):
            store = os.path.join(work, f"{fam}{n}.h5")
            cmd = [mpiexec, "-n", str(n), mapmerge, "import", "-map_pretrained", models[0], "-map_tasks", "a,b",
                   "-map_task_models", ",".join(models[1:]), "-map_store", store, "-map_store_dtype", dts[0],
                   "-map_import_digest_range", str(RANGE), "-map_private_patterns", "nothing.*"]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode:
                fail(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
            got = check_store(store, models, ["a", "b"])
            if seen is not None and got != seen:
                fail(f"{fam}: the digests at -n {n} differ from -n 1")
            seen = got
        print(f"ok {fam}: digests at -n 1..4 equal map_digest.py's ({sum(len(v.splitlines()) for v in seen.values())} files), checksums equal numpy's", flush=True)
    p = subprocess.run([mpiexec, "-n", "1", mapmerge, "import", "-map_pretrained", fams["st"][0][0], "-map_tasks", "a",
                        "-map_task_models", fams["st"][0][1], "-map_store", os.path.join(work, "bad.h5"), "-map_import_digest_range", "5000"],
                       capture_output=True, text=True)
    if p.returncode == 0 or "-map_import_digest_range 5000 must be a positive multiple of 4096" not in p.stdout + p.stderr:
        fail(f"-map_import_digest_range 5000 accepted or unclear:\n{p.stdout[-1500:]}{p.stderr[-1500:]}")
    if os.path.exists(os.path.join(work, "bad.h5")):
        fail("bad.h5 written")
    print("ok -map_import_digest_range 5000 refused")


if __name__ == "__main__":
    main()
