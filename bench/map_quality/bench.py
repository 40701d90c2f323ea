#!/usr/bin/python3
"""MAP front quality and fit + search time: mapmerge against the reference pipeline (docs/design.md §5-6,
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
     Also the product's real front (results.h5 /pareto/real_front: non-dominated set of every evaluated
     model, samples + re-evaluations + pick) against the reference's re-evaluated points plus the samples.
Time: `mapmerge run` for T = 2, 5, 8 with -log_view ("MAP fit" + "MAP search" stages), repeated by resuming
the same samples (best of --reps), and the reference pipeline on the same results.h5 (best of --reps).
Scaling: weak scaling of MapParetoSolve (-log_view event) on the analytic problem, preference vectors per
rank fixed (m = 2: H = P x nranks - 1, i.e. P = --scaling-per-rank vectors per rank, default 800), nranks 1, 2, 4.
End to end: `mapmerge run` on the embedded default (all 8 tasks, and rot90,invert) at -n 1 and 2:
wall time, the summary's time per phase, and the -log_view events (max over ranks, summed over stages).
Each part writes WORK/results_<part>.json and WORK/tables_<part>.md.
"""
import argparse
import json
import math
import os
import re
import shutil
import sys
import time

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "postprocess"))
import quality  # noqa: E402  (postprocess/quality.py: non_dominated, mean_nearest, hypervolume)
sys.path.insert(0, os.path.join(ROOT, "bench"))
from benchlib import PY, Ctx, cols, features, grid_truth, log, ms, read_csv, sh, sigmoid  # noqa: E402
SUBSETS = [("rot90,invert", 41), ("flip_v,shift", 41), ("rot90,invert,shift", 21)]
TIMING = [("T2", "rot90,invert"), ("T5", "rot90,rot180,rot270,flip_v,transpose"),
          ("T8", "rot90,rot180,rot270,flip_v,transpose,invert,permute,shift")]


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



def one_seed(ctx, tasks, seed, d, g):
    """one mapmerge run + the reference pipeline on its samples; metrics against the grid g"""
    tl = tasks.split(",")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.dirname(d), exist_ok=True)
    t0 = time.time()
    out = sh(ctx.mpi("run", "-options_file_yaml", ctx.yaml, "-map_tasks", tasks, "-map_output", d, "-map_seed", str(seed),
                     "-map_reevaluate", "1000000", "-log_view", *ctx.a.map_opts.split()), out=d + ".log")
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
        RF = f["pareto/real_front"][...]
    Pr = np.load(os.path.join(d, "ref_params.npy"))
    Phi = features(g["C"])
    fm = lambda F: front_metrics(F, g["truth"], g["hv0"], g["nadir"], g["hvn"])
    r = {
        "seed": seed, "K": K, "K_ref": len(Rr), "front_map": int(ok.sum()), "front_ref": rj["front"],
        "map": fm(Mr), "ref": fm(Rr),
        # the samples are real evaluations both pipelines already paid for: the front a user would keep
        "map_s": fm(np.vstack([Mr, Sa])), "ref_s": fm(np.vstack([Rr, Sa])), "samples_only": fm(Sa),
        "map_rf": fm(RF), "real_front_points": int(len(RF)),
        "r2_map": list(r2(sigmoid(Phi @ Pm.T), g["A"])), "r2_ref": list(r2(sigmoid(Phi @ Pr.T), g["A"])),
        "ref_outside_box": float(np.mean(np.any((Rc < 0) | (Rc > 1), axis=1))),
        "pred_err_map": float(np.mean(np.abs(Mp - Mr))), "pred_err_ref": float(np.mean(np.abs(Rp - Rr))),
        "t_map": st.get("fit", math.nan) + st.get("search", math.nan), "t_ref": rj["fit_s"] + rj["search_s"],
        "ref_fit_failed": rj["fit_failed"], "samples": Sc.tolist(),
    }
    log("  %s seed %d: K %d/%d (fronts %d/%d) IGD map %.4f ref %.4f | HV0 %.4f/%.4f | HVnadir %.4f/%.4f | real front HV0 %.4f"
        " | %.0f s" % (tasks, seed, K, r["K_ref"], r["front_map"], r["front_ref"], r["map"]["igd"], r["ref"]["igd"],
                       r["map"]["hv0"], r["ref"]["hv0"], r["map"]["hvn"], r["ref"]["hvn"], r["map_rf"]["hv0"], time.time() - t0))
    return r


def run_subset(ctx, tasks, n):
    T = len(tasks.split(","))
    Cg, Ag = grid_truth(ctx, tasks, n)
    truth = quality.non_dominated(Ag)
    g = {"C": Cg, "A": Ag, "truth": truth, "nadir": truth.min(axis=0), "hv0": quality.hypervolume(truth, np.zeros(T))}
    g["hvn"] = quality.hypervolume(truth, g["nadir"])
    res = []
    base = os.path.join(ctx.work, "runs", tasks.replace(",", "_"))
    for seed in range(ctx.a.seeds):
        res.append(one_seed(ctx, tasks, seed, os.path.join(base, "s%d" % seed), g))
    return {"tasks": tasks, "n": n, "truth_points": len(truth), "hv_truth0": g["hv0"], "hv_truth_nadir": g["hvn"],
            "nadir": list(g["nadir"]), "seeds": res}


def timing(ctx):
    """fit + search: one run evaluates the samples; then --reps rounds, each a resume of its sample journal
    (the fit and the search again on the same samples) and right after it the reference pipeline on the
    same results.h5, so both see the same machine load; best of the rounds for each"""
    out = []
    for label, tasks in TIMING:
        T = len(tasks.split(","))
        d = os.path.join(ctx.work, "timing", label)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        base = ["run", "-options_file_yaml", ctx.yaml, "-map_tasks", tasks, "-map_output", d, "-map_seed", "0",
                "-map_reevaluate", "0", "-log_view"]
        st = stage_times(sh(ctx.mpi(*base), out=d + ".log"))
        fits, searches, rfit, rsearch, loads = [st["fit"]], [st["search"]], [], [], []
        for k in range(ctx.a.reps):
            d2 = "%s_rep%d" % (d, k)
            shutil.rmtree(d2, ignore_errors=True)
            os.makedirs(d2)
            with open(os.path.join(d, "journal.jsonl")) as f, open(os.path.join(d2, "journal.jsonl"), "w") as g:
                g.writelines(l for l in f if l.startswith('{"kind":"sample"'))
            loads.append(os.getloadavg()[0])
            st2 = stage_times(sh(ctx.mpi(*[x if x != d else d2 for x in base], "-map_resume"), out=d2 + ".log"))
            fits.append(st2["fit"])
            searches.append(st2["search"])
            rj = json.loads(sh([PY, os.path.join(HERE, "reference_pipeline.py"), os.path.join(d, "results.h5"),
                                os.path.join(d2, "ref_front.csv"), "--seed", "0"]).strip().splitlines()[-1])
            rfit.append(rj["fit_s"])
            rsearch.append(rj["search_s"])
        tot = [a + b for a, b in zip(fits, searches)]
        rtot = [a + b for a, b in zip(rfit, rsearch)]
        row = {"T": T, "n": rj["n"], "map_fit": min(fits), "map_search": min(searches), "map_total": min(tot),
               "ref_fit": min(rfit), "ref_search": min(rsearch), "ref_total": min(rtot), "map_all": tot, "ref_all": rtot,
               "ref_fit_failed": rj["fit_failed"], "loads": loads}
        out.append(row)
        log("  T=%d n=%d: mapmerge fit %.3f s search %.3f s (fit+search %s) | reference fit %.3f s search %.3f s (%s) | load %s" % (
            T, row["n"], row["map_fit"], row["map_search"], " ".join("%.3f" % x for x in tot), row["ref_fit"], row["ref_search"],
            " ".join("%.3f" % x for x in rtot), " ".join("%.1f" % x for x in loads)))
    return out


def log_events(text, names):
    """-log_view events: per name, (count, max time over ranks, max/min time ratio, max/min flop ratio) summed over
    the stages (the ratios: the largest over the stages)"""
    ev = {}
    num = r"([0-9.eE+-]+)"
    for m in re.finditer(r"^(Map\w+)\s+(\d+)\s+\S+\s+%s\s+%s\s+%s\s+%s" % (num, num, num, num), text, re.M):
        if m.group(1) in names:
            c, t, r, fr = ev.get(m.group(1), (0, 0.0, 0.0, 0.0))
            ev[m.group(1)] = (c + int(m.group(2)), t + float(m.group(3)), max(r, float(m.group(4))), max(fr, float(m.group(6))))
    return ev


def phases(text):
    m = re.search(r"^time per phase:(.*)$", text, re.M)
    return {k: float(v) for k, v in re.findall(r"(\w+) ([0-9.]+)s", m.group(1))} if m else {}


def scaling_run(ctx, np_, H, tag):
    """one analytic run: MapParetoSolve (max over ranks), best of --reps"""
    ts = []
    for k in range(ctx.a.scaling_reps):
        d = os.path.join(ctx.work, "scaling", "%s_n%d_H%d_r%d" % (tag, np_, H, k))
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        t0 = time.time()
        text = sh(["mpiexec", "-n", str(np_), ctx.bin, "run", "-map_eval_type", "analytic", "-map_analytic_problem",
                   ctx.a.scaling_problem, "-map_tasks", "a,b", "-map_output", d, "-map_reevaluate", "0",
                   "-map_pareto_divisions", str(H), "-log_view"], out=d + ".log")
        wall = time.time() - t0
        c, t, r, fr = log_events(text, {"MapParetoSolve"})["MapParetoSolve"]
        front = re.search(r"^front: (\d+) points", text, re.M)
        ts.append({"solve": t, "ratio": r, "flop_ratio": fr, "search": stage_times(text)["search"], "wall": wall,
                   "front": int(front.group(1)) if front else -1, "load": os.getloadavg()[0]})
    return min(ts, key=lambda x: x["solve"]), ts


def scaling(ctx):
    """weak scaling of MapParetoSolve: analytic problem, m = 2, P preference vectors per rank (H = P n - 1);
    control: the same H on 1 rank (the strong-scaling speed-up tells the machine's share from the code's)"""
    out = []
    for np_ in (1, 2, 4):
        H = ctx.a.scaling_per_rank * np_ - 1
        best, ts = scaling_run(ctx, np_, H, "weak")
        row = {"np": np_, "H": H, "prefs": H + 1, "per_rank": (H + 1) / np_, "best": best, "all": ts}
        if np_ > 1:
            row["serial"], row["serial_all"] = scaling_run(ctx, 1, H, "serial")
        out.append(row)
        log("  n=%d H=%d: MapParetoSolve %s s (flops max/min over ranks %.2f), front %d%s" % (
            np_, H, " ".join("%.3f" % x["solve"] for x in ts), best["flop_ratio"], best["front"],
            "; same H on 1 rank %.3f s" % row["serial"]["solve"] if np_ > 1 else ""))
    return out


E2E_EVENTS = ["MapMergeApply", "MapEvalComm", "MapEvalLoss", "MapSurrogateFit", "MapParetoSolve", "MapJournal"]


def e2e(ctx):
    """`mapmerge run` on the embedded default with its defaults (reference design, K = 8 re-evaluations, pick);
    --e2e-reps rounds of (-n 1, -n 2), the fastest (wall) kept per configuration"""
    out = []
    for tasks in ("rot90,rot180,rot270,flip_v,transpose,invert,permute,shift", "rot90,invert"):
        T = len(tasks.split(","))
        data = ",".join(ctx.val[t] for t in tasks.split(","))
        rows = {1: [], 2: []}
        for k in range(ctx.a.e2e_reps):
            for np_ in (1, 2):
                d = os.path.join(ctx.work, "e2e", "T%d_n%d_r%d" % (T, np_, k))
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(os.path.dirname(d), exist_ok=True)
                load = os.getloadavg()[0]
                t0 = time.time()
                text = sh(["mpiexec", "-n", str(np_), ctx.bin, "run", "-options_file_yaml", ctx.yaml, "-map_tasks", tasks,
                           "-map_eval_data", data, "-map_output", d, "-log_view"], out=d + ".log")
                wall = time.time() - t0
                m = re.search(r"^Time \(sec\):\s+([0-9.eE+-]+)", text, re.M)
                ns = re.search(r"evaluated: (\d+) samples \(\+(\d+) re-evaluations \+ (\d+) pick", text)
                row = {"T": T, "tasks": tasks, "np": np_, "wall": wall, "petsc_time": float(m.group(1)) if m else math.nan,
                       "phases": phases(text), "events": log_events(text, set(E2E_EVENTS)),
                       "evals": [int(x) for x in ns.groups()] if ns else [], "load": load}
                rows[np_].append(row)
                log("  T=%d n=%d: wall %.1f s (load %.1f); phases %s" % (T, np_, wall, load, row["phases"]))
        for np_ in (1, 2):
            best = dict(min(rows[np_], key=lambda r: r["wall"]))
            best["walls"] = [r["wall"] for r in rows[np_]]
            out.append(best)
    return out


def quality_rows(q, key, title):
    L = ["**%s**" % title, "",
         "| subset | re-evaluated K map / ref (front sizes map / ref) | IGD mapmerge | IGD reference | IGD map <= ref | "
         "HV/HV_grid mapmerge (ref 0) | reference (ref 0) | HV/HV_grid mapmerge (ref nadir) | reference (ref nadir) | "
         "real front: IGD map (/pareto/real_front) / ref (re-evaluated ∪ samples) | "
         "real front HV/HV_grid (ref 0) map / ref | real front HV/HV_grid (ref nadir) map / ref |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in q:
        S = s[key]
        if not S:
            continue
        wins = sum(1 for r in S if r["map"]["igd"] <= r["ref"]["igd"])
        L.append("| %s | %s / %s (%s / %s) | %s | %s | %d/%d | %s | %s | %s | %s | %s / %s | %s / %s | %s / %s |" % (
            s["tasks"], ms([r["K"] for r in S], "%.0f"), ms([r["K_ref"] for r in S], "%.0f"),
            ms([r["front_map"] for r in S], "%.0f"), ms([r["front_ref"] for r in S], "%.0f"),
            ms([r["map"]["igd"] for r in S]), ms([r["ref"]["igd"] for r in S]), wins, len(S),
            ms([r["map"]["hv0"] for r in S]), ms([r["ref"]["hv0"] for r in S]), ms([r["map"]["hvn"] for r in S]),
            ms([r["ref"]["hvn"] for r in S]), ms([r["map_rf"]["igd"] for r in S]), ms([r["ref_s"]["igd"] for r in S]),
            ms([r["map_rf"]["hv0"] for r in S]), ms([r["ref_s"]["hv0"] for r in S]),
            ms([r["map_rf"]["hvn"] for r in S]), ms([r["ref_s"]["hvn"] for r in S])))
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


def report(part, data, path):
    L = []
    if part == "quality":
        L += quality_rows(data, "seeds", "Default reference design")
    elif part == "time":
        L.append("| T | samples | mapmerge fit | mapmerge search | mapmerge fit+search | reference fit | reference search | "
                 "reference fit+search | speed-up |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for r in data:
            L.append("| %d | %d | %.3f s | %.3f s | %.3f s | %.3f s | %.3f s | %.3f s | %.2fx |" % (
                r["T"], r["n"], r["map_fit"], r["map_search"], r["map_total"], r["ref_fit"], r["ref_search"], r["ref_total"],
                r["ref_total"] / r["map_total"]))
    elif part == "scaling":
        L.append("| ranks | H | preference vectors (per rank) | MapParetoSolve (max over ranks) | flops max/min over ranks | "
                 "weak-scaling efficiency t(1)/t(n) | same H on 1 rank | speed-up vs 1 rank (same H) | front points | load avg |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        t1 = data[0]["best"]["solve"]
        for r in data:
            b = r["best"]
            s1 = r.get("serial")
            L.append("| %d | %d | %d (%d) | %.3f s | %.2f | %.2f | %s | %s | %d | %.1f |" % (
                r["np"], r["H"], r["prefs"], r["per_rank"], b["solve"], b["flop_ratio"], t1 / b["solve"],
                "%.3f s" % s1["solve"] if s1 else "-", "%.2fx" % (s1["solve"] / b["solve"]) if s1 else "-", b["front"], b["load"]))
    elif part == "e2e":
        ph = ["setup", "evaluate", "fit", "search", "reevaluate", "write"]
        L.append("| tasks | ranks | evaluations (samples + re-eval. + pick) | wall (mpiexec; all rounds) | PETSc Time | load avg | " + " | ".join(ph) + " | " +
                 " | ".join(E2E_EVENTS) + " |")
        L.append("|" + "---|" * (6 + len(ph) + len(E2E_EVENTS)))
        for r in data:
            L.append("| %s | %d | %s | %.1f s (%s) | %.1f s | %.1f | %s | %s |" % (
                "all 8" if r["T"] == 8 else r["tasks"], r["np"], " + ".join(str(x) for x in r["evals"]), r["wall"],
                " ".join("%.1f" % w for w in r["walls"]), r["petsc_time"], r["load"], " | ".join("%.2f s" % r["phases"].get(k, math.nan) for k in ph),
                " | ".join("%.2f s (%d)" % (r["events"][k][1], r["events"][k][0]) if k in r["events"] else "-"
                           for k in E2E_EVENTS)))
    text = "\n".join(L) + "\n"
    with open(path, "w") as f:
        f.write(text)
    print(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mapmerge", required=True, help="the mapmerge binary")
    ap.add_argument("--work", required=True, help="work dir (grid cache, runs, results)")
    ap.add_argument("--yaml", default="input/default.yaml", help="options file of the embedded default (repo-relative)")
    ap.add_argument("--np", type=int, default=2, help="MPI ranks (quality and time)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5, help="rounds of the time runs (best kept)")
    ap.add_argument("--e2e-reps", type=int, default=2, help="rounds of the end-to-end runs (fastest kept)")
    ap.add_argument("--scaling-reps", type=int, default=5, help="repetitions of each scaling run (best kept)")
    ap.add_argument("--scaling-per-rank", type=int, default=800, help="preference vectors per rank of the weak-scaling runs")
    ap.add_argument("--scaling-problem", default="quadratic", help="analytic problem of the scaling runs")
    ap.add_argument("--map-opts", default="", help="extra mapmerge run options of the quality runs (e.g. '-map_refine 1')")
    ap.add_argument("--subsets", default="", help="quality: only these subsets (';'-separated task lists, e.g. 'flip_v,shift')")
    ap.add_argument("--only", choices=["quality", "time", "scaling", "e2e", "all"], action="append",
                    help="parts to run (repeatable; default all)")
    a = ap.parse_args()
    parts = ["quality", "time", "scaling", "e2e"] if not a.only or "all" in a.only else a.only
    ctx = Ctx(a)
    os.makedirs(ctx.work, exist_ok=True)
    t0 = time.time()
    for part in ["quality", "time", "scaling", "e2e"]:
        if part not in parts:
            continue
        t1 = time.time()
        if part == "quality":
            data = []
            for tasks, n in SUBSETS:
                if a.subsets and tasks not in a.subsets.split(";"):
                    continue
                log("quality: %s (grid %d^%d, %d seeds)" % (tasks, n, len(tasks.split(",")), a.seeds))
                data.append(run_subset(ctx, tasks, n))
        elif part == "time":
            log("time: fit + search, T = 2, 5, 8")
            data = timing(ctx)
        elif part == "scaling":
            log("scaling: MapParetoSolve, %d preference vectors per rank, 1, 2, 4 ranks" % a.scaling_per_rank)
            data = scaling(ctx)
        else:
            log("e2e: mapmerge run on the embedded default, -n 1 and 2")
            data = e2e(ctx)
        with open(os.path.join(ctx.work, "results_%s.json" % part), "w") as f:
            json.dump({part: data, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "np": a.np,
                       "loadavg": os.getloadavg(), "seconds": time.time() - t1}, f, indent=1)
        report(part, data, os.path.join(ctx.work, "tables_%s.md" % part))
    log("bench: done in %.0f s; %s/results_<part>.json, tables_<part>.md" % (time.time() - t0, ctx.work))


if __name__ == "__main__":
    main()
