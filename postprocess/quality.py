#!/usr/bin/python3
"""Front quality against a ground truth (docs/design.md §6), and dense coefficient grids to make one.

  quality.py igd|gd|hv|all --front found.csv --truth truth.csv [--columns acc_]
             [--front-columns pred_acc_] [--truth-columns acc_] [--ref 0 | --ref r1,r2,...]
  quality.py grid --tasks a,b,c --n 41 [--box=0,1] --output grid.csv   (--box=-1,1: '=' for negatives)

Objectives are MAXIMISED (accuracies). The objective columns are picked by prefix: with prefix
"acc_", the truth's columns acc_<task> define the tasks, and the front must have <prefix><task> for
each of them (matched by name, any order). `mapmerge eval` writes c_<task>, acc_<task>, loss_<task>;
`mapmerge run` writes front.csv with c_<task>, pred_acc_<task>, real_acc_<task> (real_ empty where
not re-evaluated: such rows are skipped). The truth is reduced to its non-dominated points first.

  IGD = mean over the truth points of the distance to the nearest found point
  GD  = mean over the found points of the distance to the nearest truth point
  HV  = volume dominated by the points above the reference point (default 0 in every objective):
        exact for 2 and 3 objectives, Monte Carlo (2^20 draws, fixed seed) above; reported for
        both sets and as the ratio found / truth.

Typical use: `quality.py grid --tasks a,b --n 201 --output grid.csv`, then
`mapmerge eval -map_coeffs grid.csv -map_output truth.csv ...`, then
`quality.py all --front runs/<id>/front.csv --truth truth.csv`. Without --front-columns the front's
columns are <--columns><task> when it has them, else front.csv's own real_acc_<task> (the real,
re-evaluated points); --front-columns pred_acc_ measures the predicted front instead.
"""
import argparse
import csv
import itertools
import math
import os
import sys

import numpy as np


def fail(msg):
    sys.stderr.write("quality.py: error: %s\n" % msg)
    sys.exit(2)


def read_objectives(path, prefix, tasks=None):
    """rows of the <prefix><task> columns as an (n, m) array, and the task names"""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    except OSError as e:
        fail("cannot read %s: %s" % (path, e.strerror))
    if not rows:
        fail("%s: empty file" % path)
    header = [h.strip() for h in rows[0]]
    if tasks is None:
        tasks = [h[len(prefix):] for h in header if h.startswith(prefix)]
        if not tasks:
            fail("%s: no column starts with %r (header: %s)" % (path, prefix, ",".join(header)))
    cols = []
    for t in tasks:
        name = prefix + t
        if name not in header:
            fail("%s: no column %s (tasks from the truth: %s)" % (path, name, ",".join(tasks)))
        cols.append(header.index(name))
    data = []
    for lineno, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            fail("%s line %d: expected %d fields as in the header, got %d" % (path, lineno, len(header), len(r)))
        vals = [r[c].strip() for c in cols]
        if any(v == "" or v.lower() == "nan" for v in vals):
            continue  # not evaluated (e.g. real_acc_ of a point that was not re-evaluated)
        try:
            x = [float(v) for v in vals]
        except ValueError:
            fail("%s line %d: not a number in %s" % (path, lineno, ",".join(vals)))
        if not all(math.isfinite(v) for v in x):
            fail("%s line %d: non-finite value in %s" % (path, lineno, ",".join(vals)))
        data.append(x)
    return np.array(data, dtype=float).reshape(-1, len(tasks)), tasks


def non_dominated(F):
    """the non-dominated rows of F (maximisation); equal rows are all kept"""
    if len(F) == 0:
        return F
    order = np.lexsort(F.T[::-1])[::-1]  # lexicographically decreasing: dominators come first
    kept = []
    K = np.empty((0, F.shape[1]))
    for i in order:
        x = F[i]
        if len(K) and np.any(np.all(K >= x, axis=1) & np.any(K > x, axis=1)):
            continue
        kept.append(i)
        K = F[kept]
    return F[sorted(kept)]


def mean_nearest(A, B):
    """mean over the rows of A of the Euclidean distance to the nearest row of B"""
    if len(A) == 0:
        return 0.0
    if len(B) == 0:
        return math.inf
    total = 0.0
    step = max(1, 4_000_000 // (len(B) * A.shape[1]))  # chunks of A: bounded memory
    for s in range(0, len(A), step):
        a = A[s:s + step]
        d2 = ((a[:, None, :] - B[None, :, :]) ** 2).sum(axis=2)  # exact differences, no cancellation
        total += np.sqrt(d2.min(axis=1)).sum()
    return total / len(A)


def hv2(P, ref):
    P = P[np.lexsort((-P[:, 1], -P[:, 0]))]  # x decreasing, then y decreasing
    area, best = 0.0, ref[1]
    for x, y in P:
        if y > best:
            area += (x - ref[0]) * (y - best)
            best = y
    return area


def hypervolume(F, ref):
    F = F[np.all(F > ref, axis=1)]
    if len(F) == 0:
        return 0.0
    m = F.shape[1]
    if m == 1:
        return float(F.max() - ref[0])
    F = non_dominated(F)
    if m == 2:
        return hv2(F, ref)
    if m == 3:
        z = np.unique(F[:, 2])[::-1]
        vol = 0.0
        for k, zk in enumerate(z):
            below = z[k + 1] if k + 1 < len(z) else ref[2]
            vol += (zk - below) * hv2(F[F[:, 2] >= zk][:, :2], ref[:2])
        return vol
    rng = np.random.default_rng(0x48595045)
    hi = F.max(axis=0)
    box = float(np.prod(hi - ref))
    n, hits = 1 << 20, 0
    for s in range(0, n, 1 << 14):
        Y = ref + (hi - ref) * rng.random((1 << 14, m))
        dom = np.zeros(len(Y), dtype=bool)
        for f in F:
            dom |= np.all(f >= Y, axis=1)
        hits += int(dom.sum())
    return box * hits / n


def front_prefix(path, prefix, tasks):
    """without --front-columns: <prefix><task> if the front has those columns, else front.csv's own
    real_acc_<task> (the re-evaluated points of a run); else prefix, so the error names its column"""
    try:
        with open(path, newline="") as f:
            header = next((r for r in csv.reader(f) if r and not r[0].startswith("#")), [])
    except OSError as e:
        fail("cannot read %s: %s" % (path, e.strerror))
    header = [h.strip() for h in header]
    for p in (prefix, "real_acc_"):
        if all(p + t in header for t in tasks):
            return p
    return prefix


def cmd_quality(args):
    tprefix = args.truth_columns or args.columns
    truth, tasks = read_objectives(args.truth, tprefix)
    fprefix = args.front_columns or front_prefix(args.front, args.columns, tasks)
    front, _ = read_objectives(args.front, fprefix, tasks)
    truth = non_dominated(truth)
    m = len(tasks)
    if args.ref is None:
        ref = np.zeros(m)
    else:
        try:
            r = [float(v) for v in args.ref.split(",")]
        except ValueError:
            fail("--ref: expected one number or %d comma-separated numbers, got %r" % (m, args.ref))
        if len(r) not in (1, m):
            fail("--ref: expected one number or %d comma-separated numbers, got %d" % (m, len(r)))
        ref = np.array(r * m if len(r) == 1 else r)
    print("tasks %s" % ",".join(tasks))
    print("front columns %s<task>" % fprefix)
    print("points found %d truth %d (non-dominated)" % (len(front), len(truth)))
    if args.measure in ("igd", "all"):
        print("igd %.17g" % mean_nearest(truth, front))
    if args.measure in ("gd", "all"):
        print("gd %.17g" % mean_nearest(front, truth))
    if args.measure in ("hv", "all"):
        hf, ht = hypervolume(front, ref), hypervolume(truth, ref)
        print("hv_found %.17g" % hf)
        print("hv_truth %.17g" % ht)
        print("hv_ratio %.17g" % (hf / ht if ht > 0 else math.nan))


def cmd_grid(args):
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks:
        fail("--tasks: give the task names, comma-separated")
    try:
        lo, hi = [float(v) for v in args.box.split(",")]
    except ValueError:
        fail("--box: expected lo,hi, got %r" % args.box)
    if not lo < hi:
        fail("--box: need lo < hi, got %g,%g" % (lo, hi))
    if args.n < 2:
        fail("--n: need at least 2 points per axis, got %d" % args.n)
    total = args.n ** len(tasks)
    if total > 10_000_000:
        fail("--n %d with %d tasks gives %d points (limit 1e7)" % (args.n, len(tasks), total))
    levels = [lo + (hi - lo) * k / (args.n - 1) for k in range(args.n)]
    tmp = os.path.join(os.path.dirname(os.path.abspath(args.output)), ".%s.tmp.%d" % (os.path.basename(args.output), os.getpid()))
    try:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["c_" + t for t in tasks])
            for point in itertools.product(levels, repeat=len(tasks)):
                w.writerow([repr(v) for v in point])
        os.replace(tmp, args.output)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        fail("cannot write %s: %s" % (args.output, e.strerror))
    print("wrote %d points (%d tasks, %d levels in [%g,%g]) to %s" % (total, len(tasks), args.n, lo, hi, args.output))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("measure", choices=["igd", "gd", "hv", "all", "grid"])
    ap.add_argument("--front", help="found front CSV (e.g. front.csv of a run)")
    ap.add_argument("--truth", help="ground-truth CSV (e.g. mapmerge eval output on a dense grid)")
    ap.add_argument("--columns", default="acc_", help="objective column prefix for both files (default acc_)")
    ap.add_argument("--front-columns", help="prefix in the front file (default: --columns if present, else real_acc_ as in "
                    "front.csv; pred_acc_ for the predicted front)")
    ap.add_argument("--truth-columns", help="prefix in the truth file")
    ap.add_argument("--ref", help="hypervolume reference point: one value or one per objective (default 0)")
    ap.add_argument("--tasks", help="grid: task names, comma-separated")
    ap.add_argument("--n", type=int, default=41, help="grid: points per axis (default 41)")
    ap.add_argument("--box", default="0,1", help="grid: lo,hi (default 0,1)")
    ap.add_argument("--output", help="grid: output CSV")
    args = ap.parse_args()
    if args.measure == "grid":
        if not args.tasks or not args.output:
            fail("grid needs --tasks and --output")
        cmd_grid(args)
    else:
        if not args.front or not args.truth:
            fail("%s needs --front and --truth" % args.measure)
        cmd_quality(args)


if __name__ == "__main__":
    main()
