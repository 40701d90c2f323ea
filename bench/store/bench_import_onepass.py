#!/usr/bin/python3
"""One-pass import (issue 17, item 2): `mapmerge import` of a gen_model.py family, BEFORE binary (e.g. main
before the change: a separate sha256 pass) against AFTER (range digests hashed over the data pass's reads),
interleaved, at 1 and 2 ranks, inputs cold (dropped from the page cache with posix_fadvise DONTNEED, i.e.
`dd iflag=nocache count=0`) or warm; against `dd if=/dev/zero bs=16M conv=fdatasync` of the store's byte
count, 1 writer and 2 concurrent writers of half each, measured right before each import.
Per row: mpiexec's wall (with its start-up); the import's own time (its last line) + `sync` of the store (the import does not fsync; dd does), MB/s
of store written, ratio to dd (same writers as ranks) as throughputs, rchar of every rank summed over the
input bytes (/proc/<pid>/io of a shell that reaped the rank, so its children count: 1.00 = each byte read
once), peak RSS per rank, load.
usage: bench_import_onepass.py AFTER_BIN BEFORE_BIN WORK [--P 2.5e8] [--T 4] [--reps 2] [--cache cold,warm]
       [--store-dtype f32] [--keep]"""
import argparse
import glob
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import dd  # noqa: E402  (the dd baseline shared by the store benches)

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
           OPENBLAS_NUM_THREADS="1")
WRAP = 'exec 3>"$0/io.$OMPI_COMM_WORLD_RANK"; /usr/bin/time -f "%M" -o "$0/rss.$OMPI_COMM_WORLD_RANK" "$@"; rc=$?; cat /proc/$$/io >&3; exit $rc'


def load():
    return open("/proc/loadavg").read().split()[0]


def drop(paths):
    for p in paths:
        subprocess.run(["dd", f"if={p}", "iflag=nocache", "count=0", "status=none"], check=True)


def warm(paths):
    for p in paths:
        subprocess.run(["cat", p], stdout=subprocess.DEVNULL, check=True)


def run_import(binary, n, work, models, tasks, store, dtype):
    for f in glob.glob(f"{work}/io.*") + glob.glob(f"{work}/rss.*"):
        os.remove(f)
    cmd = ["mpiexec", "-n", str(n), "sh", "-c", WRAP, work, binary, "import", "-map_pretrained", models[0], "-map_tasks", ",".join(tasks),
           "-map_task_models", ",".join(models[1:]), "-map_store", store, "-map_store_dtype", dtype]
    t0 = time.time()
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    t1 = time.time()
    if p.returncode:
        sys.exit(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    subprocess.run(["sync", "-d", store], check=True)
    t2 = time.time()
    own = [l for l in p.stdout.splitlines() if l.startswith("import: wrote")][0]
    own = float(own.split("; ")[-1].split(" s ")[0])
    rchar = 0
    for f in glob.glob(f"{work}/io.*"):
        rchar += int([l.split()[1] for l in open(f) if l.startswith("rchar")][0])
    rss = "/".join(str(int(open(f).read().split()[-1]) // 1024) for f in sorted(glob.glob(f"{work}/rss.*")))
    return t1 - t0, own, t2 - t1, rchar, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("after")
    ap.add_argument("before")
    ap.add_argument("work")
    ap.add_argument("--P", type=float, default=2.5e8)
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--cache", default="cold,warm")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--store-dtype", default="f32")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    mdir = os.path.join(a.work, "model")
    models = [os.path.join(mdir, "pretrained.safetensors")] + [os.path.join(mdir, f"task{t}.safetensors") for t in range(a.T)]
    if not all(os.path.exists(m) for m in models):
        subprocess.run([sys.executable, os.path.join(HERE, "gen_model.py"), mdir, "--P", str(int(a.P)), "--T", str(a.T)], check=True)
    tasks = [f"t{t}" for t in range(a.T)]
    inbytes = sum(os.path.getsize(m) for m in models)
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), f"P = {int(a.P)}, T = {a.T}, inputs {inbytes / 1e9:.2f} GB;",
          subprocess.run(["df", "-h", a.work], capture_output=True, text=True).stdout.splitlines()[-1])
    print("variant ranks cache rep load store_GB wall_s import_s sync_s MBps dd_s dd_MBps ratio_dd rchar_over_input peak_rss_MB", flush=True)
    for rep in range(1, a.reps + 1):
        for cache in a.cache.split(","):
            for n in [int(x) for x in a.ranks.split(",")]:
                for variant, binary in (("before", a.before), ("after", a.after)):
                    store = os.path.join(a.work, f"store_{variant}.h5")
                    if os.path.exists(store):
                        os.remove(store)
                    ld = load()
                    sbytes = int(a.P * (a.T + 1) * (4 if a.store_dtype == "f32" else 2))
                    dd_s, dd_bytes = dd(a.work, sbytes, n)
                    (drop if cache == "cold" else warm)(models)
                    wall, imp, syn, rchar, rss = run_import(binary, n, a.work, models, tasks, store, a.store_dtype)
                    sb = os.path.getsize(store)
                    mbps, ddmbps = sb / 1e6 / (imp + syn), dd_bytes / 1e6 / dd_s
                    print(f"{variant} {n} {cache} {rep} {ld} {sb / 1e9:.2f} {wall:.2f} {imp:.2f} {syn:.2f} {mbps:.0f} {dd_s:.2f} {ddmbps:.0f} "
                          f"{mbps / ddmbps:.2f} {rchar / inbytes:.2f} {rss}", flush=True)
                    os.remove(store)
    if not a.keep:
        subprocess.run(["rm", "-rf", mdir])


if __name__ == "__main__":
    main()
