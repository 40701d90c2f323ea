"""Helpers shared by the MAP benchmarks (bench/map_quality, bench/variants): running commands, the
embedded default's configuration, the dense ground-truth grids, CSV columns, the surrogate model's
features, and table cells. Debian's /usr/bin/python3 with numpy (and yaml for Ctx)."""
import csv
import math
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
PY = "/usr/bin/python3"


def log(msg):
    print(msg, flush=True)


def sh_timed(cmd, out=None):
    """run cmd (list) from the repository root, stdout and stderr together (also written to out);
    exits the benchmark on failure; returns (output, wall seconds)"""
    t0 = time.time()
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    dt = time.time() - t0
    if out:
        with open(out, "w") as f:
            f.write(p.stdout)
    if p.returncode:
        sys.stderr.write(p.stdout[-4000:])
        sys.exit("bench: command failed (%d): %s" % (p.returncode, " ".join(cmd)))
    return p.stdout, dt


def sh(cmd, out=None):
    """sh_timed without the time"""
    return sh_timed(cmd, out)[0]


def features(C):
    """[1, c_1..c_T, c_i c_j (i <= j)]: mapmerge's feature order (results.h5 /surrogate/*/params)"""
    C = np.atleast_2d(C)
    n, T = C.shape
    cols_ = [np.ones(n)] + [C[:, i] for i in range(T)]
    for i in range(T):
        for j in range(i, T):
            cols_.append(C[:, i] * C[:, j])
    return np.stack(cols_, axis=1)


def sigmoid(z):
    z = np.clip(z, -500.0, 500.0)  # as the reference: no overflow warning in exp
    return 1.0 / (1.0 + np.exp(-z))


def read_csv(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        head = next(r)
        rows = [row for row in r if row]
    return head, rows


def cols(head, rows, prefix, tasks):
    """the columns prefix+task as floats (empty cells: NaN), one row per CSV row"""
    idx = [head.index(prefix + t) for t in tasks]
    out = []
    for row in rows:
        v = [row[i] for i in idx]
        out.append([float(x) if x.strip() else math.nan for x in v])
    return np.array(out, dtype=float).reshape(-1, len(tasks))


def ms(v, fmt="%.4f"):
    """mean ± sample standard deviation"""
    v = np.asarray(v, dtype=float)
    return (fmt + " ± " + fmt) % (v.mean(), v.std(ddof=1) if len(v) > 1 else 0.0)


class Ctx:
    """the mapmerge binary, the work folder and the embedded default's configuration (a.mapmerge,
    a.work, a.yaml, a.np)"""

    def __init__(self, a):
        import yaml
        self.a = a
        self.bin = os.path.abspath(a.mapmerge)
        self.work = os.path.abspath(a.work)
        self.yaml = a.yaml
        with open(os.path.join(ROOT, a.yaml)) as f:
            y = yaml.safe_load(f)["map"]
        self.val = dict(zip(y["tasks"].split(","), y["eval"]["data"].split(",")))
        self.store = y["store"]

    def mpi(self, *args):
        return ["mpiexec", "-n", str(self.a.np), self.bin] + list(args)

    def eval(self, tasks, coeffs, out):
        """`mapmerge eval` of the coefficient CSV on the validation sets of tasks; returns the wall time"""
        data = ",".join(self.val[t] for t in tasks.split(","))
        return sh_timed(self.mpi("eval", "-options_file_yaml", self.yaml, "-map_tasks", tasks, "-map_eval_data", data,
                                 "-map_coeffs", coeffs, "-map_output", out))[1]


def grid_truth(ctx, tasks, n, cache_dirs=()):
    """(C, acc) of the dense n^T grid in [0,1]^T: a cached file stamped for the current store (its size
    and mtime) from cache_dirs (read only) or <work>/grid, else evaluated into <work>/grid"""
    tl = tasks.split(",")
    T = len(tl)
    name = "%s_n%d.csv" % (tasks.replace(",", "_"), n)
    st = os.stat(os.path.join(ROOT, ctx.store))
    stamp = "%s size %d mtime %d" % (ctx.store, st.st_size, int(st.st_mtime))
    own = os.path.join(ctx.work, "grid")
    path = None
    for g in list(cache_dirs) + [own]:
        p = os.path.join(g, name)
        if os.path.exists(p) and os.path.exists(p + ".stamp") and open(p + ".stamp").read() == stamp:
            path = p
            log("grid %s: cached (%s)" % (tasks, p))
            break
    if path is None:
        os.makedirs(own, exist_ok=True)
        path = os.path.join(own, name)
        coeffs = path.replace(".csv", "_coeffs.csv")
        sh([PY, os.path.join(ROOT, "postprocess", "quality.py"), "grid", "--tasks", tasks, "--n", str(n), "--output", coeffs])
        dt = ctx.eval(tasks, coeffs, path)
        with open(path + ".stamp", "w") as f:
            f.write(stamp)
        log("grid %s: %d points evaluated in %.0f s -> %s" % (tasks, n ** T, dt, path))
    head, rows = read_csv(path)
    C, A = cols(head, rows, "c_", tl), cols(head, rows, "acc_", tl)
    if len(C) != n ** T:
        sys.exit("bench: %s has %d rows, expected %d: delete it and rerun" % (path, len(C), n ** T))
    return C, A


def dd(work, nbytes, writers):
    """the baseline of the store benches: `writers` concurrent `dd bs=16M conv=fdatasync` of about nbytes
    in all into work/; returns (seconds, bytes written)"""
    count = max(1, (nbytes // writers + (16 << 20) - 1) // (16 << 20))
    t0 = time.time()
    ps = [subprocess.Popen(["dd", "if=/dev/zero", f"of={work}/dd{w}.bin", "bs=16M", f"count={count}", "conv=fdatasync", "status=none"])
          for w in range(writers)]
    for p in ps:
        p.wait()
    el = time.time() - t0
    for w in range(writers):
        os.remove(f"{work}/dd{w}.bin")
    return el, count * (16 << 20) * writers


def dd_read(path):
    """`dd if=path of=/dev/null bs=16M` (a store already in the page cache: its warm read rate); returns
    (seconds, bytes read)"""
    t0 = time.time()
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=16M", "status=none"], check=True)
    return time.time() - t0, os.path.getsize(path)
