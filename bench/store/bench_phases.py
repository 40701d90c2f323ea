#!/usr/bin/python3
"""Export and evaluation of an existing store, BEFORE binary against AFTER, interleaved, at 1 and 2 ranks,
each against `dd if=/dev/zero bs=16M conv=fdatasync` of the bytes the phase writes (as many concurrent
writers as ranks), measured right before it:
  export: `mapmerge export -map_coeff 0.1,0.2,...` to one .safetensors in the store's dtype (streamed, 64 MiB
          blocks), + `sync` of the output (dd syncs, the export does not);
  eval:   `mapmerge eval` of one coefficient vector with the worker evaluator bench/store/header_worker.py
          (-map_eval_worker_mode model, -map_eval_worker_dtype store): mapmerge reads its shard of the store,
          merges and writes the merged model file; the worker only checks the file is complete.
Per row: wall (mpiexec to exit, with its start-up), own (the program's own clock, PetscInitialize to
PetscFinalize, from -log_view, + the sync for export), MB/s of bytes written per own second, ratio to dd, peak RSS per rank, CPU s (user+sys of
all ranks), load; and the copy bound: a phase reads the whole store ((T+1)·P·e bytes) and writes its output, so
bound_s = store bytes / (warm `dd if=STORE of=/dev/null bs=16M`, measured right before) + output bytes / dd's write
rate, and bound_over_own = bound_s / own (1 = as fast as dd reading its input and writing its output).
usage: bench_phases.py AFTER_BIN BEFORE_BIN STORE WORK [--reps 2] [--ranks 1,2] [--phases export,eval]"""
import argparse
import glob
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import dd, dd_read  # noqa: E402  (the dd baselines shared by the store benches)

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
           OPENBLAS_NUM_THREADS="1")
WRAP = '/usr/bin/time -f "%M %U %S" -o "$0/rss.$OMPI_COMM_WORLD_RANK" "$@"'


def run(cmd, work):
    for f in glob.glob(f"{work}/rss.*"):
        os.remove(f)
    cmd = cmd + ["-log_view", ":" + os.path.join(work, "log.txt")]
    t0 = time.time()
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    el = time.time() - t0
    if p.returncode:
        sys.exit(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    rss, cpu = [], 0.0
    for f in sorted(glob.glob(f"{work}/rss.*")):
        m, u, s = open(f).read().split()[-3:]
        rss.append(str(int(m) // 1024))
        cpu += float(u) + float(s)
    # the program's own clock, PetscInitialize to PetscFinalize (-log_view's "Time (sec):", the slowest rank)
    own = [float(l.split()[2]) for l in open(os.path.join(work, "log.txt")) if l.startswith("Time (sec):")][0]
    return el, own, "/".join(rss), cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("after")
    ap.add_argument("before")
    ap.add_argument("store")
    ap.add_argument("work")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--phases", default="export,eval")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    import h5py
    with h5py.File(a.store, "r") as f:
        T, P = f["task_vectors"].shape
        names = [x.decode() if isinstance(x, bytes) else str(x) for x in f["tasks"][:]]
        esize = f["pretrained"].dtype.itemsize
        dtype = {4: "f32", 2: "bf16"}[esize] if f["pretrained"].attrs.get("dtype", "") != "f16" else "f16"
    coeff = ",".join(f"0.{t + 1}" for t in range(T))
    with open(os.path.join(a.work, "coeffs.csv"), "w") as f:
        f.write(",".join(f"c_{t}" for t in names) + "\n" + coeff + "\n")
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), f"store {a.store}: P = {P}, T = {T}, {dtype}, "
          f"{os.path.getsize(a.store) / 1e9:.2f} GB;", subprocess.run(["df", "-h", a.work], capture_output=True, text=True).stdout.splitlines()[-1])
    print("phase variant ranks rep load wall_s own_s out_MB MBps dd_s dd_MBps ratio_dd peak_rss_MB cpu_s ddread_MBps bound_s bound_over_own", flush=True)
    for rep in range(1, a.reps + 1):
        for phase in a.phases.split(","):
            for n in [int(x) for x in a.ranks.split(",")]:
                for variant, binary in (("before", a.before), ("after", a.after)):
                    out = os.path.join(a.work, f"out_{variant}.safetensors")
                    if os.path.exists(out):
                        os.remove(out)
                    ld = open("/proc/loadavg").read().split()[0]
                    dd_s, dd_bytes = dd(a.work, P * esize, n)
                    rd_s, rd_bytes = dd_read(a.store)
                    pre = ["mpiexec", "-n", str(n), "sh", "-c", WRAP, a.work, binary]
                    if phase == "export":
                        el, own, rss, cpu = run(pre + ["export", "-map_store", a.store, "-map_coeff", coeff, "-map_output", out,
                                                  "-map_export_dtype", dtype], a.work)
                        t0 = time.time()
                        subprocess.run(["sync", "-d", out], check=True)
                        el += time.time() - t0
                        own += time.time() - t0
                        nbytes = os.path.getsize(out)
                        os.remove(out)
                    else:
                        tmp = os.path.join(a.work, f"evaltmp_{variant}")
                        os.makedirs(tmp, exist_ok=True)
                        el, own, rss, cpu = run(pre + ["eval", "-map_store", a.store, "-map_coeffs", os.path.join(a.work, "coeffs.csv"),
                                                  "-map_output", os.path.join(a.work, f"eval_{variant}.csv"), "-map_eval_type", "worker",
                                                  "-map_eval_worker", f"/usr/bin/python3 {HERE}/header_worker.py", "-map_eval_worker_dtype",
                                                  "store", "-map_eval_tmpdir", tmp], a.work)
                        nbytes = P * esize
                    mbps, ddm = nbytes / 1e6 / own, dd_bytes / 1e6 / dd_s
                    bound = (T + 1) * P * esize / (rd_bytes / rd_s) + nbytes / (dd_bytes / dd_s)
                    print(f"{phase} {variant} {n} {rep} {ld} {el:.2f} {own:.2f} {nbytes / 1e6:.0f} {mbps:.0f} {dd_s:.2f} {ddm:.0f} {mbps / ddm:.2f} {rss} {cpu:.1f} "
                          f"{rd_bytes / 1e6 / rd_s:.0f} {bound:.2f} {bound / own:.2f}", flush=True)


if __name__ == "__main__":
    main()
