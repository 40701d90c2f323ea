#!/usr/bin/python3
"""Front quality per evaluation (issue 18): hypervolume ratio (reference point 0) and IGD to the
dense-grid front of the REAL non-dominated front of ALL models a method evaluated, against the number
of evaluations it spent, on the embedded default's subsets (bench.py's SUBSETS), per seed.

Methods (each given the same number N of evaluations):
  mapmerge     `mapmerge run -map_budget N` (its /pareto/real_front: samples, rounds, re-evaluations, pick)
  bayesian     `mapmerge run -map_method bayesian -map_budget N`
  reference    the shipped reference pipeline (reference_pipeline.py: curve_fit from ones, NSGA-III in
               [-3,3]^T) on mapmerge's reference design ((T+1)(T+2) points, seed s), then its hall of fame
               re-evaluated up to N: N - design points chosen by greedy farthest-point spread in
               predicted-objective space (from the per-objective best points); real front of design +
               re-evaluations
  inbox        the same with curve_fit started from the linear least-squares solution and NSGA-III kept
               in the sampled box [0,1]^T (reference_pipeline.py --start linear --box 0,1)
  lhs          the floor: a Latin hypercube of N points in [0,1]^T (numpy, seed s), all evaluated; its
               real front is the best of what was evaluated
Every `mapmerge eval` result is cached in WORK/curve/cache/<subset>.jsonl (keyed on the coefficients'
bits), so baselines are evaluated once whatever is re-run; mapmerge runs are kept per (tag, N, seed)
in WORK/curve/runs and re-used when their results.h5 exists (--fresh to redo them).

Writes WORK/curve/curve.csv (method,subset,seed,evaluations,hv_ratio,igd,spent) for
postprocess/plot_front.py --quality, and prints the table of medians over seeds.

usage: bench/map_quality/curve.sh [BUILD_DIR] [WORK_DIR] [--budgets 20,40,80,160,320] [--seeds 5]
       [--methods mapmerge,bayesian,reference,inbox,lhs] [--subsets 'rot90,invert;...'] [--tag T --map-opts '...']
"""
import argparse
import csv
import json
import os
import shutil
import sys
import time

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import bench  # noqa: E402  (SUBSETS, spread order, metrics)
import reference_pipeline as refp  # noqa: E402
from benchlib import Ctx, cols, grid_truth, log, read_csv, sh  # noqa: E402
import quality  # noqa: E402  (postprocess/quality.py, on bench.py's path)

METHODS = ["mapmerge", "bayesian", "inbox", "reference", "lhs"]


def key(c):
    return ",".join(repr(float(v)) for v in c)


class EvalCache:
    """accuracies of coefficient vectors on one subset's validation sets, evaluated once"""

    def __init__(self, ctx, tasks, folder):
        self.ctx, self.tasks, self.tl = ctx, tasks, tasks.split(",")
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, tasks.replace(",", "_") + ".jsonl")
        self.d = {}
        self.fresh = 0
        if os.path.exists(self.path):
            with open(self.path) as f:
                for line in f:
                    k, a = json.loads(line)
                    self.d[k] = a

    def add(self, C, A):
        with open(self.path, "a") as f:
            for c, a in zip(C, A):
                k = key(c)
                if k not in self.d:
                    self.d[k] = [float(x) for x in a]
                    f.write(json.dumps([k, self.d[k]]) + "\n")

    def get(self, C):
        C = np.atleast_2d(C)
        miss = [c for c in C if key(c) not in self.d]
        if miss:
            tmp = self.path + ".eval"
            bench.write_coeffs(tmp + "_coeffs.csv", self.tl, miss)
            self.ctx.eval(self.tasks, tmp + "_coeffs.csv", tmp + ".csv")
            head, rows = read_csv(tmp + ".csv")
            self.add(miss, cols(head, rows, "acc_", self.tl))
            self.fresh += len(miss)
        return np.array([self.d[key(c)] for c in C], dtype=float).reshape(len(C), len(self.tl))


def spread_order(F):
    """bench.spread_pick's greedy farthest-point order (per-objective best points first), all of F"""
    n, m = F.shape
    span = F.max(axis=0) - F.min(axis=0)
    G = (F - F.min(axis=0)) / np.where(span > 0, span, 1.0)
    order = []
    for j in range(m):
        i = int(np.argmax(F[:, j]))
        if i not in order:
            order.append(i)
    d = np.full(n, np.inf)
    for i in order:
        d = np.minimum(d, np.sqrt(((G - G[i]) ** 2).sum(axis=1)))
    while len(order) < n:
        i = int(np.argmax(d))
        if d[i] <= 0:
            break  # the rest repeat chosen points
        order.append(i)
        d = np.minimum(d, np.sqrt(((G - G[i]) ** 2).sum(axis=1)))
    return order


def lhs(T, n, seed):
    rng = np.random.default_rng([seed, n, 0x4c4853])
    C = np.empty((n, T))
    for j in range(T):
        C[:, j] = (rng.permutation(n) + rng.random(n)) / n
    return C


class Subset:
    def __init__(self, ctx, a, tasks, n):
        self.ctx, self.a, self.tasks, self.tl = ctx, a, tasks, tasks.split(",")
        self.T, self.n, self.g = len(self.tl), n, None
        self.cache = EvalCache(ctx, tasks, os.path.join(ctx.curve, "cache"))
        self.runs = os.path.join(ctx.curve, "runs", tasks.replace(",", "_"))
        self.hof = {}

    def metrics(self, A):
        if self.a.prepare:
            return {"hv_ratio": float("nan"), "igd": float("nan")}
        if self.g is None:  # the grid when first needed: --prepare runs need none
            Cg, Ag = grid_truth(self.ctx, self.tasks, self.n)
            truth = quality.non_dominated(Ag)
            self.g = {"truth": truth, "hv0": quality.hypervolume(truth, np.zeros(self.T))}
        nd = quality.non_dominated(A)
        return {"hv_ratio": quality.hypervolume(nd, np.zeros(self.T)) / self.g["hv0"],
                "igd": quality.mean_nearest(self.g["truth"], nd)}

    def mapmerge_run(self, name, seed, opts):
        d = os.path.join(self.runs, "%s_s%d" % (name, seed))
        h5 = os.path.join(d, "results.h5")
        if self.a.fresh or not os.path.exists(h5):
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(os.path.dirname(d), exist_ok=True)
            data = ",".join(self.ctx.val[t] for t in self.tl)
            sh(self.ctx.mpi("run", "-options_file_yaml", self.ctx.yaml, "-map_tasks", self.tasks, "-map_eval_data", data,
                            "-map_output", d, "-map_seed", str(seed), *opts), out=d + ".log")
        with h5py.File(h5, "r") as f:
            out = {k: f[k][...] for k in ("pareto/real_front", "samples/coeffs", "samples/accuracy")}
        with open(os.path.join(d, "journal.jsonl")) as f:
            out["spent"] = sum(1 for line in f if line.startswith(('{"kind":"sample"', '{"kind":"reeval"', '{"kind":"pick"')))
        return out

    def design(self, seed):
        """mapmerge's reference design for the seed, evaluated (a default run without re-evaluations)"""
        r = self.mapmerge_run("design", seed, ["-map_reevaluate", "0"])
        C, A = r["samples/coeffs"], r["samples/accuracy"]
        self.cache.add(C, A)
        return C, A

    def hall_of_fame(self, method, seed):
        if (method, seed) not in self.hof:
            C, A = self.design(seed)
            inbox = method == "inbox"
            params, _ = refp.fit(C, A, "linear" if inbox else "ones")
            Cf, Ff = refp.nsga3(params, 3.0, 100, 25, seed, (0.0, 1.0) if inbox else None)
            self.hof[(method, seed)] = (C, A, Cf[spread_order(Ff)])
        return self.hof[(method, seed)]

    def point(self, method, seed, N):
        """(metrics, evaluations spent) of method at budget N"""
        if method in ("mapmerge", "bayesian"):
            opts = ["-map_budget", str(N)] + (["-map_method", "bayesian"] if method == "bayesian" else [])
            tag = method if not self.a.tag else "%s-%s" % (method, self.a.tag)
            r = self.mapmerge_run("%s_N%d" % (tag, N), seed, opts + self.a.map_opts.split())
            return self.metrics(r["pareto/real_front"]), r["spent"]
        if method == "lhs":
            A = self.cache.get(lhs(self.T, N, seed))
            return self.metrics(A), N
        C, A, order = self.hall_of_fame(method, seed)
        K = max(0, N - len(C))
        R = self.cache.get(order[:K]) if K else np.zeros((0, self.T))
        return self.metrics(np.vstack([A, R])), len(C) + len(R)


def table(rows, methods, budgets):
    """markdown: per subset and budget, the median over seeds of hv_ratio / igd per method"""
    L = []
    for subset in dict.fromkeys(r["subset"] for r in rows):
        L += ["**%s** (median over seeds: HV ratio / IGD; evaluations spent if not N)" % subset, "",
              "| N | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for N in budgets:
            cells = []
            for m in methods:
                S = [r for r in rows if r["subset"] == subset and r["method"] == m and r["evaluations"] == N]
                if not S:
                    cells.append("-")
                    continue
                sp = sorted({r["spent"] for r in S})
                cells.append("%.3f / %.4f%s" % (np.median([r["hv_ratio"] for r in S]), np.median([r["igd"] for r in S]),
                                                "" if sp == [N] else " (spent %d-%d)" % (sp[0], sp[-1])))
            L.append("| %d | %s |" % (N, " | ".join(cells)))
        L.append("")
    return "\n".join(L)


def write_csv(out, old, rows, fields):
    """old rows of other methods/tags/budgets kept, this run's rows replacing theirs"""
    mine = {(r["method"], r["subset"], str(r["seed"]), str(r["evaluations"])) for r in rows}
    keep = [r for r in old if (r["method"], r["subset"], r["seed"], r["evaluations"]) not in mine]
    with open(out + ".tmp", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in keep + rows:
            w.writerow({k: r[k] for k in fields})
    os.replace(out + ".tmp", out)
    return keep


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mapmerge", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--yaml", default="input/default.yaml")
    ap.add_argument("--np", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budgets", default="20,40,80,160,320")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--subsets", default="", help="';'-separated task lists (default: bench.py's three)")
    ap.add_argument("--tag", default="", help="name of a mapmerge variant (its runs and rows: method-tag)")
    ap.add_argument("--map-opts", default="", help="extra options of the mapmerge/bayesian runs (a variant, with --tag)")
    ap.add_argument("--fresh", action="store_true", help="redo mapmerge runs that exist")
    ap.add_argument("--prepare", action="store_true",
                    help="only run and evaluate (fills the caches; no grid, no CSV): a later run without it measures")
    ap.add_argument("--output", default="", help="CSV (default WORK/curve/curve.csv; rows of other methods/tags kept)")
    a = ap.parse_args()
    ctx = Ctx(a)
    ctx.curve = os.path.join(ctx.work, "curve")
    os.makedirs(ctx.curve, exist_ok=True)
    out = a.output or os.path.join(ctx.curve, "curve.csv")
    budgets = [int(x) for x in a.budgets.split(",")]
    methods = a.methods.split(",")
    names = [m if not (a.tag and m in ("mapmerge", "bayesian")) else "%s-%s" % (m, a.tag) for m in methods]
    fields = ["method", "subset", "seed", "evaluations", "hv_ratio", "igd", "spent"]
    old = []
    if os.path.exists(out):
        with open(out, newline="") as f:
            old = [r for r in csv.DictReader(f)]
    rows = []
    t0 = time.time()
    for tasks, n in bench.SUBSETS:
        if a.subsets and tasks not in a.subsets.split(";"):
            continue
        S = Subset(ctx, a, tasks, n)
        for N in budgets:  # smaller budgets first: a short run still has a full table for them
            for seed in range(a.seeds):
                for m, name in zip(methods, names):
                    met, spent = S.point(m, seed, N)
                    rows.append({"method": name, "subset": tasks, "seed": seed, "evaluations": N, "spent": spent, **met})
            log("  %s N=%d: %s | %d fresh evaluations so far, %.0f s, load %.1f" % (
                tasks, N, " ".join("%s %.3f" % (nm, np.median([r["hv_ratio"] for r in rows if r["method"] == nm and r["subset"] == tasks
                                                                and r["evaluations"] == N])) for nm in names),
                S.cache.fresh, time.time() - t0, os.getloadavg()[0]))
            if not a.prepare:
                write_csv(out, old, rows, fields)  # after every step: a cut-short run keeps what it measured
    if a.prepare:
        log("curve: prepared (%.0f s)" % (time.time() - t0))
        return
    keep = write_csv(out, old, rows, fields)
    allrows = [{**r, "seed": int(r["seed"]), "evaluations": int(r["evaluations"]), "spent": int(r["spent"]),
                "hv_ratio": float(r["hv_ratio"]), "igd": float(r["igd"])} for r in keep + rows]
    allm = list(dict.fromkeys(r["method"] for r in allrows))
    text = table(allrows, allm, sorted({r["evaluations"] for r in allrows}))
    with open(os.path.splitext(out)[0] + ".md", "w") as f:
        f.write(text)
    print(text)
    log("curve: %s (%.0f s, load %.1f)" % (out, time.time() - t0, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
