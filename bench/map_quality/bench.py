#!/usr/bin/python3
"""MAP front quality and fit + search time: mapmerge against the reference pipeline (DESIGN.md §5-6,
issue 4 "Quality bar" and "Performance"). Driven by bench/map_quality/run.sh; see there for usage.

Quality, per subset of the embedded default's tasks:
  1. ground truth: a dense grid in [0,1]^T (41^2, 21^3) evaluated with `mapmerge eval` (cached in the
     work dir, keyed on the store's size and mtime), reduced to its non-dominated set;
  2. per seed: `mapmerge run` (reference design, (T+1)(T+2) samples, -map_reevaluate large: the whole
     predicted front is re-evaluated), then reference_pipeline.py on the SAME samples (the run's
     results.h5). The two re-evaluated sets get the SAME size K = min(front sizes): a pipeline whose
     front is larger keeps K points picked by the same rule for both (greedy farthest-point in the
     predicted-objective space, starting from the per-objective best points; it uses predictions only);
     the reference's K points are re-evaluated with `mapmerge eval`;
  3. IGD / GD of the re-evaluated non-dominated set to the grid front, hypervolume with reference
     point 0 (the run summary's) and with the grid front's nadir (stricter), as ratios to the grid
     front's; surrogate R^2 per task on all grid points (mapmerge's /surrogate/accuracy/params and the
     reference's fit).
Time: `mapmerge run` for T = 2, 5, 8 with -log_view ("MAP fit" + "MAP search" stages), and the
reference pipeline on the same results.h5 right after.
"""
import argparse
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "postprocess"))
import quality  # noqa: E402  (postprocess/quality.py: non_dominated, mean_nearest, hypervolume)
from reference_pipeline import features, sigmoid  # noqa: E402

PY = "/usr/bin/python3"
SUBSETS = [("rot90,invert", 41), ("flip_v,shift", 41), ("rot90,invert,shift", 21)]
TIMING = [("T2", "rot90,invert"), ("T5", "rot90,rot180,rot270,flip_v,transpose"),
          ("T8", "rot90,rot180,rot270,flip_v,transpose,invert,permute,shift")]


def log(msg):
    print(msg, flush=True)


def sh(cmd, out=None):
    """run cmd (list); on failure print its output and stop"""
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if out:
        with open(out, "w") as f:
            f.write(p.stdout)
    if p.returncode:
        sys.stderr.write(p.stdout[-4000:])
        sys.exit("bench: command failed (%d): %s" % (p.returncode, " ".join(cmd)))
    return p.stdout


class Ctx:
    def __init__(self, a):
        self.a = a
        self.bin = os.path.abspath(a.mapmerge)
        self.work = os.path.abspath(a.work)
        self.yaml = a.yaml
        with open(os.path.join(ROOT, a.yaml)) as f:
            import yaml
            y = yaml.safe_load(f)["map"]
        tasks = y["tasks"].split(",")
        self.val = dict(zip(tasks, y["eval"]["data"].split(",")))
        self.store = y["store"]

    def mpi(self, *args):
        return ["mpiexec", "-n", str(self.a.np), self.bin] + list(args)

    def eval(self, tasks, coeffs, out):
        data = ",".join(self.val[t] for t in tasks.split(","))
        sh(self.mpi("eval", "-options_file_yaml", self.yaml, "-map_tasks", tasks, "-map_eval_data", data,
                    "-map_coeffs", coeffs, "-map_output", out))


def read_csv(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        head = next(r)
        rows = [row for row in r if row]
    return head, rows


def cols(head, rows, prefix, tasks):
    idx = [head.index(prefix + t) for t in tasks]
    out = []
    for row in rows:
        v = [row[i] for i in idx]
        out.append([float(x) if x.strip() else math.nan for x in v])
    return np.array(out, dtype=float).reshape(-1, len(tasks))


def write_coeffs(path, tasks, C):
    with open(path, "w") as f:
        f.write(",".join("c_" + t for t in tasks) + "\n")
        for c in C:
            f.write(",".join(repr(float(v)) for v in c) + "\n")


def spread_pick(F, K):
    """K row indices of F chosen by greedy farthest-point in objective space (normalised by the
    ranges), starting from the best point of each objective; deterministic; all when K >= len(F)"""
    n, m = F.shape
    if K >= n:
        return list(range(n))
    span = F.max(axis=0) - F.min(axis=0)
    G = (F - F.min(axis=0)) / np.where(span > 0, span, 1.0)
    chosen = []
    for j in range(m):
        i = int(np.argmax(F[:, j]))
        if i not in chosen and len(chosen) < K:
            chosen.append(i)
    d = np.full(n, np.inf)
    for i in chosen:
        d = np.minimum(d, np.sqrt(((G - G[i]) ** 2).sum(axis=1)))
    while len(chosen) < K:
        i = int(np.argmax(d))
        chosen.append(i)
        d = np.minimum(d, np.sqrt(((G - G[i]) ** 2).sum(axis=1)))
    return sorted(chosen)


def grid_truth(ctx, tasks, n):
    """(C, acc) of the evaluated grid, cached"""
    T = len(tasks.split(","))
    gdir = os.path.join(ctx.work, "grid")
    os.makedirs(gdir, exist_ok=True)
    name = tasks.replace(",", "_")
    out = os.path.join(gdir, "%s_n%d.csv" % (name, n))
    st = os.stat(os.path.join(ROOT, ctx.store))
    stamp = "%s size %d mtime %d" % (ctx.store, st.st_size, int(st.st_mtime))
    if os.path.exists(out) and os.path.exists(out + ".stamp") and open(out + ".stamp").read() == stamp:
        log("grid %s: cached (%s)" % (tasks, out))
    else:
        coeffs = os.path.join(gdir, "%s_n%d_coeffs.csv" % (name, n))
        sh([PY, os.path.join(ROOT, "postprocess", "quality.py"), "grid", "--tasks", tasks, "--n", str(n), "--output", coeffs])
        t0 = time.time()
        ctx.eval(tasks, coeffs, out)
        with open(out + ".stamp", "w") as f:
            f.write(stamp)
        log("grid %s: %d points evaluated in %.0f s" % (tasks, n ** T, time.time() - t0))
    head, rows = read_csv(out)
    tl = tasks.split(",")
    C, A = cols(head, rows, "c_", tl), cols(head, rows, "acc_", tl)
    if len(C) != n ** T:
        sys.exit("bench: %s has %d rows, expected %d: delete it and rerun" % (out, len(C), n ** T))
    return C, A


def stage_times(logtext):
    """seconds of the -log_view stages "MAP <phase>" (average over ranks)"""
    t = {}
    for m in re.finditer(r"^\s*\d+:\s+MAP (\w+):\s+([0-9.eE+-]+)", logtext, re.M):
        t[m.group(1)] = float(m.group(2))
    return t


def r2(pred, truth):
    ss = ((truth - pred) ** 2).sum(axis=0)
    st = ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
    return 1 - ss / st


def front_metrics(Freal, truth_nd, hv_truth0, nadir, hv_truth_nadir):
    nd = quality.non_dominated(Freal)
    return {
        "igd": quality.mean_nearest(truth_nd, nd),
        "gd": quality.mean_nearest(nd, truth_nd),
        "hv0": quality.hypervolume(nd, np.zeros(nd.shape[1])) / hv_truth0,
        "hvn": quality.hypervolume(nd, nadir) / hv_truth_nadir,
    }


def corner_design(C, lo=0.0, hi=1.0):
    """the default reference design with its pair points moved from the centre to the far corner
    (c_i = c_j = hi): at T = 2 the pair point is the centre again (a duplicate sample) and no sample
    is near (1, 1); everything else (one-hots, origin, centre, Latin-hypercube fill) is kept"""
    C = C.copy()
    mid = 0.5 * (lo + hi)
    seen = set()
    for i, c in enumerate(C):
        key = tuple(np.round(c, 12))
        pair = np.sum(np.isclose(c, mid)) == 2 and np.all(np.isclose(c, mid) | np.isclose(c, lo))
        if key in seen or (pair and len(c) > 2):
            C[i] = np.where(np.isclose(c, mid), hi, c)
        seen.add(key)
    return C


def one_seed(ctx, tasks, seed, d, extra, g):
    """one mapmerge run + the reference pipeline on its samples; metrics against the grid g"""
    tl = tasks.split(",")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.dirname(d), exist_ok=True)
    t0 = time.time()
    out = sh(ctx.mpi("run", "-options_file_yaml", ctx.yaml, "-map_tasks", tasks, "-map_output", d, "-map_seed", str(seed),
                     "-map_reevaluate", "1000000", "-log_view", *extra), out=d + ".log")
    st = stage_times(out)
    h5 = os.path.join(d, "results.h5")
    ref_pred = os.path.join(d, "ref_front.csv")
    rj = json.loads(sh([PY, os.path.join(HERE, "reference_pipeline.py"), h5, ref_pred, "--seed", str(seed), "--params",
                        os.path.join(d, "ref_params.npy")]).strip().splitlines()[-1])
    # mapmerge's re-evaluated front, the reference's predicted front
    head, rows = read_csv(os.path.join(d, "front.csv"))
    Mc, Mp, Mr = cols(head, rows, "c_", tl), cols(head, rows, "pred_acc_", tl), cols(head, rows, "real_acc_", tl)
    ok = ~np.isnan(Mr).any(axis=1)
    Mc, Mp, Mr = Mc[ok], Mp[ok], Mr[ok]
    head, rows = read_csv(ref_pred)
    Rc, Rp = cols(head, rows, "c_", tl), cols(head, rows, "pred_acc_", tl)
    # budget: mapmerge's whole front; the reference gets as many (fewer only if its front is smaller)
    K = len(Mr)
    ri = spread_pick(Rp, K)
    Rc, Rp = Rc[ri], Rp[ri]
    rc = os.path.join(d, "ref_reeval_coeffs.csv")
    write_coeffs(rc, tl, Rc)
    ctx.eval(tasks, rc, os.path.join(d, "ref_reeval.csv"))
    head, rows = read_csv(os.path.join(d, "ref_reeval.csv"))
    Rr = cols(head, rows, "acc_", tl)
    with h5py.File(h5, "r") as f:
        Pm = f["surrogate/accuracy/params"][...]
        Sa = f["samples/accuracy"][...]
        Sc = f["samples/coeffs"][...]
    Pr = np.load(os.path.join(d, "ref_params.npy"))
    Phi = features(g["C"])
    fm = lambda F: front_metrics(F, g["truth"], g["hv0"], g["nadir"], g["hvn"])
    r = {
        "seed": seed, "K": K, "K_ref": len(Rr), "front_map": int(ok.sum()), "front_ref": rj["front"],
        "map": fm(Mr), "ref": fm(Rr),
        # the samples are real evaluations both pipelines already paid for: the front a user would keep
        "map_s": fm(np.vstack([Mr, Sa])), "ref_s": fm(np.vstack([Rr, Sa])), "samples_only": fm(Sa),
        "r2_map": list(r2(sigmoid(Phi @ Pm.T), g["A"])), "r2_ref": list(r2(sigmoid(Phi @ Pr.T), g["A"])),
        "ref_outside_box": float(np.mean(np.any((Rc < 0) | (Rc > 1), axis=1))),
        "pred_err_map": float(np.mean(np.abs(Mp - Mr))), "pred_err_ref": float(np.mean(np.abs(Rp - Rr))),
        "t_map": st.get("fit", math.nan) + st.get("search", math.nan), "t_ref": rj["fit_s"] + rj["search_s"],
        "ref_fit_failed": rj["fit_failed"], "samples": Sc.tolist(),
    }
    log("  %s seed %d%s: K %d/%d (fronts %d/%d) IGD map %.4f ref %.4f | HV0 %.4f/%.4f | HVnadir %.4f/%.4f | %.0f s" % (
        tasks, seed, " (corner design)" if extra else "", K, r["K_ref"], r["front_map"], r["front_ref"], r["map"]["igd"],
        r["ref"]["igd"], r["map"]["hv0"], r["ref"]["hv0"], r["map"]["hvn"], r["ref"]["hvn"], time.time() - t0))
    return r


def run_subset(ctx, tasks, n):
    tl = tasks.split(",")
    T = len(tl)
    Cg, Ag = grid_truth(ctx, tasks, n)
    truth = quality.non_dominated(Ag)
    g = {"C": Cg, "A": Ag, "truth": truth, "nadir": truth.min(axis=0), "hv0": quality.hypervolume(truth, np.zeros(T))}
    g["hvn"] = quality.hypervolume(truth, g["nadir"])
    res, res_c = [], []
    base = os.path.join(ctx.work, "runs", tasks.replace(",", "_"))
    for seed in range(ctx.a.seeds):
        r = one_seed(ctx, tasks, seed, os.path.join(base, "s%d" % seed), [], g)
        res.append(r)
        if ctx.a.design_experiment:
            dc = os.path.join(base, "corner_s%d" % seed)
            os.makedirs(base, exist_ok=True)
            f = os.path.join(base, "corner_s%d_design.csv" % seed)
            write_coeffs(f, tl, corner_design(np.array(r["samples"])))
            res_c.append(one_seed(ctx, tasks, seed, dc, ["-map_sample_type", "file", "-map_sample_file", f], g))
    return {"tasks": tasks, "n": n, "truth_points": len(truth), "hv_truth0": g["hv0"], "hv_truth_nadir": g["hvn"],
            "nadir": list(g["nadir"]), "seeds": res, "corner": res_c}


def timing(ctx):
    out = []
    for label, tasks in TIMING:
        T = len(tasks.split(","))
        d = os.path.join(ctx.work, "timing", label)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        base = ["run", "-options_file_yaml", ctx.yaml, "-map_tasks", tasks, "-map_output", d, "-map_seed", "0",
                "-map_reevaluate", "0", "-log_view"]
        st = stage_times(sh(ctx.mpi(*base), out=d + ".log"))
        rj = json.loads(sh([PY, os.path.join(HERE, "reference_pipeline.py"), os.path.join(d, "results.h5"),
                            os.path.join(d, "ref_front.csv"), "--seed", "0"]).strip().splitlines()[-1])
        # the same samples again (journal without the pick), with the linearised leave-one-out estimate
        d2 = d + "_lin"
        shutil.rmtree(d2, ignore_errors=True)
        os.makedirs(d2)
        with open(os.path.join(d, "journal.jsonl")) as f, open(os.path.join(d2, "journal.jsonl"), "w") as g:
            g.writelines(l for l in f if l.startswith('{"kind":"sample"'))
        b2 = [x if x != d else d2 for x in base] + ["-map_resume", "-map_surrogate_loo_refit_max", "0"]
        st2 = stage_times(sh(ctx.mpi(*b2), out=d2 + ".log"))
        row = {"T": T, "n": rj["n"], "map_fit": st["fit"], "map_search": st["search"], "map_fit_linloo": st2["fit"],
               "map_search_2": st2["search"], "ref_fit": rj["fit_s"], "ref_search": rj["search_s"],
               "ref_fit_failed": rj["fit_failed"]}
        out.append(row)
        log("  T=%d n=%d: mapmerge fit %.3f s search %.3f s (linearised LOO: fit %.3f s search %.3f s) | reference fit %.3f s "
            "search %.3f s" % (T, row["n"], row["map_fit"], row["map_search"], row["map_fit_linloo"], row["map_search_2"],
                               row["ref_fit"], row["ref_search"]))
    return out


def ms(v, fmt="%.4f"):
    v = np.asarray(v, dtype=float)
    return (fmt + " ± " + fmt) % (v.mean(), v.std(ddof=1) if len(v) > 1 else 0.0)


def quality_rows(q, key, title):
    L = ["**%s**" % title, "",
         "| subset | re-evaluated K map / ref (front sizes map / ref) | IGD mapmerge | IGD reference | IGD map <= ref | "
         "HV/HV_grid mapmerge (ref 0) | reference (ref 0) | HV/HV_grid mapmerge (ref nadir) | reference (ref nadir) | "
         "with the samples: IGD map / ref | HV/HV_grid (ref 0) map / ref |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in q:
        S = s[key]
        if not S:
            continue
        wins = sum(1 for r in S if r["map"]["igd"] <= r["ref"]["igd"])
        L.append("| %s | %s / %s (%s / %s) | %s | %s | %d/%d | %s | %s | %s | %s | %s / %s | %s / %s |" % (
            s["tasks"], ms([r["K"] for r in S], "%.0f"), ms([r["K_ref"] for r in S], "%.0f"),
            ms([r["front_map"] for r in S], "%.0f"), ms([r["front_ref"] for r in S], "%.0f"),
            ms([r["map"]["igd"] for r in S]), ms([r["ref"]["igd"] for r in S]), wins, len(S),
            ms([r["map"]["hv0"] for r in S]), ms([r["ref"]["hv0"] for r in S]), ms([r["map"]["hvn"] for r in S]),
            ms([r["ref"]["hvn"] for r in S]), ms([r["map_s"]["igd"] for r in S]), ms([r["ref_s"]["igd"] for r in S]),
            ms([r["map_s"]["hv0"] for r in S]), ms([r["ref_s"]["hv0"] for r in S])))
    L.append("")
    L.append("| subset | task | R² mapmerge (grid) | R² reference (grid) | mean \\|pred−real\\| on the re-evaluated points: "
             "mapmerge | reference | reference points outside [0,1]^T |")
    L.append("|---|---|---|---|---|---|---|")
    for s in q:
        S = s[key]
        if not S:
            continue
        for j, task in enumerate(s["tasks"].split(",")):
            L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                s["tasks"] if j == 0 else "", task, ms([r["r2_map"][j] for r in S]), ms([r["r2_ref"][j] for r in S]),
                ms([r["pred_err_map"] for r in S]) if j == 0 else "", ms([r["pred_err_ref"] for r in S]) if j == 0 else "",
                ms([r["ref_outside_box"] for r in S], "%.2f") if j == 0 else ""))
    L.append("")
    return L


def report(q, t, path):
    L = []
    if q:
        L += quality_rows(q, "seeds", "Default reference design")
        if any(s["corner"] for s in q):
            L += quality_rows(q, "corner", "Experiment: the same designs with the pair points at c_i = c_j = 1 (not in the product)")
    if t:
        L.append("| T | samples | mapmerge fit | mapmerge search | mapmerge fit+search | fit with linearised LOO | "
                 "fit+search (lin. LOO) | reference fit | reference search | reference fit+search | speed-up | "
                 "speed-up (lin. LOO) |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in t:
            m1 = r["map_fit"] + r["map_search"]
            m2 = r["map_fit_linloo"] + r["map_search_2"]
            rf = r["ref_fit"] + r["ref_search"]
            L.append("| %d | %d | %.3f s | %.3f s | %.3f s | %.3f s | %.3f s | %.3f s | %.3f s | %.3f s | %.2fx | %.2fx |" % (
                r["T"], r["n"], r["map_fit"], r["map_search"], m1, r["map_fit_linloo"], m2, r["ref_fit"], r["ref_search"], rf,
                rf / m1, rf / m2))
    text = "\n".join(L) + "\n"
    with open(path, "w") as f:
        f.write(text)
    print(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mapmerge", required=True, help="the mapmerge binary")
    ap.add_argument("--work", required=True, help="work dir (grid cache, runs, results)")
    ap.add_argument("--yaml", default="input/default.yaml", help="options file of the embedded default (repo-relative)")
    ap.add_argument("--np", type=int, default=2, help="MPI ranks")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", choices=["quality", "time", "all"], default="all")
    ap.add_argument("--no-design-experiment", dest="design_experiment", action="store_false",
                    help="skip the second set of runs on the corner design (pairs at c_i = c_j = 1)")
    a = ap.parse_args()
    ctx = Ctx(a)
    os.makedirs(ctx.work, exist_ok=True)
    t0 = time.time()
    q, t = [], []
    if a.only in ("quality", "all"):
        for tasks, n in SUBSETS:
            log("quality: %s (grid %d^%d, %d seeds)" % (tasks, n, len(tasks.split(",")), a.seeds))
            q.append(run_subset(ctx, tasks, n))
    if a.only in ("time", "all"):
        log("time: fit + search, T = 2, 5, 8")
        t = timing(ctx)
    with open(os.path.join(ctx.work, "results.json"), "w") as f:
        json.dump({"quality": q, "time": t, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "np": a.np}, f, indent=1)
    report(q, t, os.path.join(ctx.work, "tables.md"))
    log("bench: done in %.0f s; %s/results.json, %s/tables.md" % (time.time() - t0, ctx.work, ctx.work))


if __name__ == "__main__":
    main()
