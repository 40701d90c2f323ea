#!/usr/bin/python3
"""Bayesian MAP and Nested MAP against plain MAP (docs/design.md §5, issue 6 "Bar" and "Performance").
Driven by bench/variants/run.sh; see there for usage.

Part 1 (--only bayes): on the T = 2 and 3 subsets of the embedded default, per seed and budget N
(= number of evaluated design samples):
  plain     `run -map_sample_type lhs -map_sample_n N`
  bayesian  `run -map_method bayesian -map_sample_type lhs -map_bayes_initial N0 -map_bayes_batch B
             -map_bayes_iterations (N - N0)/B` (its initial design is the plain LHS of size N0: the
             point N = N0 is shared, checked below)
  defaults  plain MAP's default design ((T+1)(T+2) samples, reference type) against Bayesian MAP
            with its default (reference-type) initial design and rounds up to the same total.
  experiments  at the largest budget, Bayesian MAP with one option changed from its default (EXPS):
            the reference's draw (-map_bayes_candidates 1 -map_bayes_explore 0), exploration only
            (-map_bayes_explore 1: maximin, no acquisition), the radius up to the box boundary (0.2,1) and
            the reference's per-task evaluation (-map_bayes_evaluate per_task, same B per task).
Every run re-evaluates the same number K of predicted front points (-map_reevaluate K, spread along
the front by mapmerge itself) and the pick. Measured against the dense grid of the subset: the
surrogate's RMSE (accuracy, all grid points, mean over tasks), IGD / HV ratio of the non-dominated
re-evaluated points (and of re-evaluated + samples: the evaluations a user already paid for).

Part 2 (--only nested): T = 8, for two preference vectors: nested MAP; plain MAP (LHS) with the
same number of evaluated models (samples + the pick, no re-evaluation); plain MAP's default design
(reference, (T+1)(T+2) samples + the pick). Per-task validation accuracy of the pick (/pick/real)
and test accuracy (/pick/test), wall time of each run.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "postprocess"))
import quality  # noqa: E402  (non_dominated, mean_nearest, hypervolume)
sys.path.insert(0, os.path.join(ROOT, "bench"))
import benchlib  # noqa: E402
from benchlib import features, log, ms, sh_timed, sigmoid  # noqa: E402
# subset, grid points per axis, N0, B, bayesian rounds of the curve, default-comparison (N0, rounds)
SUBSETS = [
    {"tasks": "rot90,invert", "n": 41, "N0": 8, "B": 2, "rounds": [2, 4, 8], "def": (8, 2)},
    {"tasks": "rot90,invert,shift", "n": 21, "N0": 12, "B": 3, "rounds": [2, 4, 8], "def": (11, 3)},
]
ALL8 = "rot90,rot180,rot270,flip_v,transpose,invert,permute,shift"
# experiments at the largest budget of the curve (not the defaults): (key, label, extra options)
EXPS = [("refdraw", "reference draw (no maximin, no exploration)", ["-map_bayes_candidates", "1", "-map_bayes_explore", "0"]),
        ("maximin", "exploration only (maximin, no acquisition)", ["-map_bayes_explore", "1"]),
        ("radius1", "radius 0.2,1 (up to the box boundary)", ["-map_bayes_radius", "0.2,1"]),
        ("pertask", "per-task evaluation (the reference's scheme: B points per task, each on its task; same forward passes, T x the merges)",
         ["-map_bayes_evaluate", "per_task"])]
PREFS = ["1,1,1,1,1,1,1,1", "3,1,1,1,1,1,1,1"]


class Ctx(benchlib.Ctx):
    def run(self, d, *args):
        """`mapmerge run` into the fresh folder d; returns the wall time"""
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        _, dt = sh_timed(self.mpi("run", "-options_file_yaml", self.yaml, "-map_output", d, *args), out=d + ".log")
        return dt

    def run_shared(self, d, src, *args):
        """`mapmerge run -map_resume` into the fresh folder d, its journal seeded with the design
        samples evaluated by the run folder src (same seed, sampler and budget: the same points, checked by
        mapmerge against the journal's coefficients); only what depends on the options given here (the
        pick for another preference) is evaluated. Returns the wall time of this run alone."""
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        with open(os.path.join(src, "journal.jsonl")) as f, open(os.path.join(d, "journal.jsonl"), "w") as g:
            g.writelines(line for line in f if line.startswith('{"kind":"sample"'))
        _, dt = sh_timed(self.mpi("run", "-options_file_yaml", self.yaml, "-map_output", d, "-map_resume", *args), out=d + ".log")
        return dt


def phases(d):
    """seconds per phase from the run summary in d.log ("time per phase: setup 0.1s evaluate ...")"""
    t = {}
    for line in open(d + ".log"):
        if line.startswith("time per phase:"):
            w = line.split(":", 1)[1].split()
            t = {w[i]: float(w[i + 1].rstrip("s")) for i in range(0, len(w) - 1, 2)}
    return t


def measure(d, g, dt):
    """metrics of the run folder d against the grid g"""
    with h5py.File(os.path.join(d, "results.h5"), "r") as f:
        P = f["surrogate/accuracy/params"][...]
        S = f["samples/coeffs"][...]
        Sa = f["samples/accuracy"][...]
        rnd = f["samples/round"][...]
        R = f["pareto/real"][...]
        kfront = f["pareto/coeffs"].shape[0]
    pred = sigmoid(features(g["C"]) @ P.T)
    rmse = np.sqrt(((pred - g["A"]) ** 2).mean(axis=0))
    R = R[~np.isnan(R).any(axis=1)]
    Sa = Sa[~np.isnan(Sa).any(axis=1)]  # per-task samples (one task evaluated) are not models on the real front

    def fm(F):
        nd = quality.non_dominated(F)
        return {"igd": quality.mean_nearest(g["truth"], nd), "gd": quality.mean_nearest(nd, g["truth"]),
                "hv": quality.hypervolume(nd, np.zeros(F.shape[1])) / g["hv0"]}

    return {"n": int(len(S)), "rounds": int(rnd.max()), "K": int(len(R)), "front": int(kfront), "rmse": float(rmse.mean()),
            "rmse_task": rmse.tolist(), "real": fm(R), "real_s": fm(np.vstack([R, Sa])), "wall": dt, "coeffs": S.tolist()}


def bayes_part(ctx):
    out = []
    K = str(ctx.a.reevaluate)
    for s in SUBSETS:
        tasks, T = s["tasks"], len(s["tasks"].split(","))
        Cg, Ag = benchlib.grid_truth(ctx, tasks, s["n"], ctx.a.grid_dir)
        truth = quality.non_dominated(Ag)
        g = {"C": Cg, "A": Ag, "truth": truth, "hv0": quality.hypervolume(truth, np.zeros(T))}
        base = os.path.join(ctx.work, "runs", tasks.replace(",", "_"))
        N0, B = s["N0"], s["B"]
        budgets = [N0] + [N0 + k * B for k in s["rounds"]]
        res = {"tasks": tasks, "T": T, "N0": N0, "B": B, "budgets": budgets, "grid_n": s["n"], "truth_points": len(truth),
               "plain": {}, "bayes": {}, "def": {}}
        for seed in range(ctx.a.seeds):
            common = ["-map_tasks", tasks, "-map_seed", str(seed), "-map_reevaluate", K]
            for N in budgets:
                d = os.path.join(base, "plain_n%d_s%d" % (N, seed))
                dt = ctx.run(d, *common, "-map_sample_type", "lhs", "-map_sample_n", str(N))
                res["plain"].setdefault(N, []).append(measure(d, g, dt))
            for k in s["rounds"]:
                N = N0 + k * B
                d = os.path.join(base, "bayes_n%d_s%d" % (N, seed))
                dt = ctx.run(d, *common, "-map_method", "bayesian", "-map_sample_type", "lhs", "-map_bayes_initial", str(N0),
                             "-map_bayes_batch", str(B), "-map_bayes_iterations", str(k), *ctx.a.bayes_args.split())
                m = measure(d, g, dt)
                # the Bayesian run starts from the plain LHS of size N0 (same seed): same points
                if not np.array_equal(np.array(m["coeffs"][:N0]), np.array(res["plain"][N0][-1]["coeffs"])):
                    sys.exit("bench: %s: the initial design differs from plain MAP's LHS of %d points" % (d, N0))
                res["bayes"].setdefault(N, []).append(m)
            # experiments (not the defaults) at the largest budget
            k = s["rounds"][-1]
            for key, _, args in EXPS:
                d = os.path.join(base, "bayes%s_n%d_s%d" % (key, N0 + k * B, seed))
                dt = ctx.run(d, *common, "-map_method", "bayesian", "-map_sample_type", "lhs", "-map_bayes_initial", str(N0),
                             "-map_bayes_batch", str(B), "-map_bayes_iterations", str(k), *ctx.a.bayes_args.split(), *args)
                res.setdefault("exp", {}).setdefault(key, []).append(measure(d, g, dt))
            # defaults: plain reference design vs Bayesian (reference-type initial design) at the same total
            nref = (T + 1) * (T + 2)
            d = os.path.join(base, "defplain_s%d" % seed)
            res["def"].setdefault("plain", []).append(measure(d, g, ctx.run(d, *common)))
            n0, k = s["def"]
            d = os.path.join(base, "defbayes_s%d" % seed)
            dt = ctx.run(d, *common, "-map_method", "bayesian", "-map_bayes_initial", str(n0), "-map_bayes_iterations", str(k),
                         *ctx.a.bayes_args.split())
            res["def"].setdefault("bayes", []).append(measure(d, g, dt))
            if res["def"]["bayes"][-1]["n"] != nref:
                sys.exit("bench: default Bayesian run has %d samples, expected %d" % (res["def"]["bayes"][-1]["n"], nref))
            p, b = res["plain"], res["bayes"]
            log("  %s seed %d: IGD plain %s | bayes %s" % (
                tasks, seed, " ".join("%d:%.4f" % (N, p[N][-1]["real"]["igd"]) for N in budgets),
                " ".join("%d:%.4f" % (N, b[N][-1]["real"]["igd"]) for N in budgets[1:])))
        res["bayes"][N0] = res["plain"][N0]  # shared point of the curve
        for v in list(res["plain"].values()) + list(res["bayes"].values()) + list(res["def"].values()) + list(res["exp"].values()):
            for m in v:
                m.pop("coeffs", None)
        out.append(res)
    return out


def nested_part(ctx):
    out = []
    base = os.path.join(ctx.work, "runs", "T8")
    for pref in PREFS:
        tag = pref.replace(",", "")
        row = {"pref": pref}
        d = os.path.join(base, "nested_%s" % tag)
        dt = ctx.run(d, "-map_method", "nested", "-map_preference", pref, "-map_seed", "0")
        with h5py.File(os.path.join(d, "results.h5"), "r") as f:
            n = f["samples/coeffs"].shape[0]
            tree = f["nested/tree"][...]
            row["nested"] = {"n": int(n), "wall": dt, "phases": phases(d), "val": f["pick/real"][0].tolist(), "test": f["pick/test"][0].tolist(),
                             "coeffs": f["nested/coeffs"][-1].tolist(), "pick_coeffs": f["pick/coeffs"][0].tolist(),
                             "single": tree[:8, 9].tolist(), "pair_pred": tree[8:, 5:7].tolist(),
                             "pair_real": tree[8:, 7:9].tolist(), "pair_c": tree[8:, 3:5].tolist()}
        # plain MAP, LHS: the same number of evaluated models (samples + the pick)
        variants = [("plain_lhs", ["-map_sample_type", "lhs", "-map_sample_n", str(n - 1)]), ("plain_ref", [])]
        if pref == PREFS[0]:  # the same LHS run with the linearised leave-one-out estimate (a diagnostic only)
            variants.append(("plain_lhs_linloo", variants[0][1] + ["-map_surrogate_loo_refit_max", "0"]))
        for key, args in variants:
            d = os.path.join(base, "%s_%s" % (key, tag))
            dt = ctx.run(d, *args, "-map_preference", pref, "-map_seed", "0", "-map_reevaluate", "0")
            with h5py.File(os.path.join(d, "results.h5"), "r") as f:
                row[key] = {"n": int(f["samples/coeffs"].shape[0]) + 1, "wall": dt, "phases": phases(d), "val": f["pick/real"][0].tolist(),
                            "test": f["pick/test"][0].tolist(), "pred": f["pick/predicted"][0].tolist(),
                            "coeffs": f["pick/coeffs"][0].tolist()}
        log("  T=8 pref %s: nested %d evals %.0f s val mean %.4f | plain lhs %d evals %.0f s val mean %.4f | plain ref %d evals "
            "%.0f s val mean %.4f" % (pref, row["nested"]["n"], row["nested"]["wall"], np.mean(row["nested"]["val"]),
                                       row["plain_lhs"]["n"], row["plain_lhs"]["wall"], np.mean(row["plain_lhs"]["val"]),
                                       row["plain_ref"]["n"], row["plain_ref"]["wall"], np.mean(row["plain_ref"]["val"])))
        out.append(row)
    return out


def pick(d, w):
    """the pick of run folder d: val / test accuracy per task, their mean and preference-w-weighted mean"""
    with h5py.File(os.path.join(d, "results.h5"), "r") as f:
        v, t, pr = f["pick/real"][0], f["pick/test"][0], f["pick/predicted"][0]
        S = f["samples/accuracy"][...]
        m = {"n": int(f["samples/coeffs"].shape[0]) + (0 if "nested/tree" in f else 1), "val": v.tolist(), "test": t.tolist(),
             "coeffs": f["pick/coeffs"][0].tolist(), "pred": f["pick/predicted"][0].tolist()}
    m.update(val_mean=float(v.mean()), val_w=float((w * v).sum() / w.sum()), test_mean=float(t.mean()), test_w=float((w * t).sum() / w.sum()),
             pred_w=float((w * pr).sum() / w.sum()),  # the surrogate's own prediction (nested: the last pair's)
             best_w=float((S @ w).max() / w.sum()))  # the best evaluated sample (val), a model the run already paid for
    return m


def ladder_part(ctx, budgets, seeds):
    """evaluations and wall time plain MAP (LHS, -map_reevaluate 0) needs to reach nested MAP's pick, T = 8:
    per seed, nested MAP for each preference, and plain MAP at each budget N (evaluated models = N - 1 samples +
    the pick) and at nested's own budget. Plain MAP's samples do not depend on the preference: the first
    preference's run evaluates them (its wall time is the measured one); the other preferences' runs reuse
    them through the journal (run_shared), and their wall time is that run plus the first run's evaluate phase."""
    base = os.path.join(ctx.work, "runs", "T8ladder")
    rows = []
    for seed in seeds:
        nested = {}
        for pref in PREFS:
            w = np.array([float(x) for x in pref.split(",")])
            d = os.path.join(base, "nested_%s_s%d" % (pref.replace(",", ""), seed))
            dt = ctx.run(d, "-map_method", "nested", "-map_preference", pref, "-map_seed", str(seed))
            nested[pref] = dict(pick(d, w), wall=dt)
        Ns = sorted(set(budgets) | {m["n"] for m in nested.values()})
        plain = {pref: [] for pref in PREFS}
        for N in Ns:
            common = ["-map_sample_type", "lhs", "-map_sample_n", str(N - 1), "-map_seed", str(seed), "-map_reevaluate", "0"]
            src = None
            for pref in PREFS:
                w = np.array([float(x) for x in pref.split(",")])
                d = os.path.join(base, "plain_n%d_%s_s%d" % (N, pref.replace(",", ""), seed))
                if src is None:
                    dt = ctx.run(d, *common, "-map_preference", pref)
                    src, ev = d, phases(d).get("evaluate", math.nan)
                    m = dict(pick(d, w), wall=dt, shared=False)
                else:
                    dt = ctx.run_shared(d, src, *common, "-map_preference", pref)
                    m = dict(pick(d, w), wall=dt + ev, shared=True)
                    if phases(d).get("evaluate", 0) > 0.5 * ev:
                        sys.exit("bench: %s re-evaluated the samples of %s" % (d, src))
                plain[pref].append(m)
            log("  T=8 seed %d plain N=%d: %s" % (seed, N, " | ".join("pref %s val w-mean %.4f (nested %.4f) %.0f s" % (
                pref, plain[pref][-1]["val_w"], nested[pref]["val_w"], plain[pref][-1]["wall"]) for pref in PREFS)))
        for pref in PREFS:
            rows.append({"seed": seed, "pref": pref, "nested": nested[pref], "plain": plain[pref]})
    return {"budgets": budgets, "seeds": list(seeds), "rows": rows}


def ladder_tables(lad):
    """the table "Evaluations and wall time to reach nested MAP's quality" and its summary lines"""
    seeds = lad["seeds"]
    L = ["### Evaluations and wall time to reach nested MAP's quality (T = 8)", "",
         "Per preference and seed %s: nested MAP, and plain MAP (LHS, `-map_reevaluate 0`) with N evaluated models (N - 1 "
         "samples + the pick). val/test: accuracy of the pick on the validation/test sets, mean over the 8 tasks and "
         "preference-weighted mean; mean ± sd over the seeds (per seed in the last column). Wall time: mean over seeds; plain "
         "MAP's samples do not depend on the preference, so for %s they were evaluated once (in the %s run) and the wall "
         "time given is that run's evaluate phase + the %s run itself." % (
             ",".join(map(str, seeds)), ", ".join(PREFS[1:]), PREFS[0], ", ".join(PREFS[1:])), "",
         "| preference | method | evaluated models | wall s | val mean | val pref-weighted | test mean | test pref-weighted | "
         "val pref-weighted per seed | predicted pref-weighted (surrogate) | best evaluated sample, val pref-weighted |",
         "|---|---|---:|---:|---|---|---|---|---|---|---|"]
    summ = []
    for pref in PREFS:
        rs = [r for r in lad["rows"] if r["pref"] == pref]
        nest = [r["nested"] for r in rs]

        def line(name, ms_):
            return "| %s | %s | %s | %.1f | %s | %s | %s | %s | %s | %s | %s |" % (
                pref, name, "/".join(sorted({str(m["n"]) for m in ms_})), np.mean([m["wall"] for m in ms_]),
                ms([m["val_mean"] for m in ms_]), ms([m["val_w"] for m in ms_]), ms([m["test_mean"] for m in ms_]),
                ms([m["test_w"] for m in ms_]), " ".join("%.4f" % m["val_w"] for m in ms_),
                "-" if name.startswith("**") else ms([m.get("pred_w", math.nan) for m in ms_]), ms([m.get("best_w", math.nan) for m in ms_]))
        L.append(line("**nested**", nest))
        # budgets common to every seed (nested's own budget is in each seed's list)
        Ns = sorted(set.intersection(*[{m["n"] for m in r["plain"]} for r in rs]))
        at = {N: [next(m for m in r["plain"] if m["n"] == N) for r in rs] for N in Ns}
        for N in Ns:
            L.append(line("plain, LHS", at[N]))
        for key, lab in (("val_w", "val"), ("test_w", "test")):
            tgt = np.mean([m[key] for m in nest])
            hit = next((N for N in Ns if np.mean([m[key] for m in at[N]]) >= tgt), None)
            best = max(Ns, key=lambda N: np.mean([m[key] for m in at[N]]))
            per = []
            for r in rs:
                h = next((m for m in r["plain"] if m[key] >= r["nested"][key]), None)
                per.append("seed %d: %s" % (r["seed"], "%d (%.0f s)" % (h["n"], h["wall"]) if h else "not reached up to %d" % r["plain"][-1]["n"]))
            summ.append("- preference %s, %s pref-weighted accuracy: nested MAP %.4f with %s evaluated models in %.1f s; plain MAP: "
                        "%s (best %.4f at %d); per seed: %s." % (
                            pref, lab, tgt, "/".join(sorted({str(m["n"]) for m in nest})), np.mean([m["wall"] for m in nest]),
                            "reached at %d evaluated models, %.1f s" % (hit, np.mean([m["wall"] for m in at[hit]])) if hit else
                            "**not reached up to %d** evaluated models (%.1f s)" % (Ns[-1], np.mean([m["wall"] for m in at[Ns[-1]]])),
                            np.mean([m[key] for m in at[best]]), best, "; ".join(per)))
        tgt = np.mean([m["val_w"] for m in nest])
        hit = next((N for N in Ns if np.mean([m.get("best_w", -1) for m in at[N]]) >= tgt), None)
        summ.append("- preference %s, the best *evaluated sample* of plain MAP (val pref-weighted; not what plain MAP returns): %s; "
                    "per seed: %s." % (pref, "reaches nested's %.4f at %d evaluated models, %.1f s" % (
                        tgt, hit, np.mean([m["wall"] for m in at[hit]])) if hit else "does not reach nested's %.4f up to %d" % (tgt, Ns[-1]),
                        "; ".join("seed %d: %s" % (r["seed"], next(("%d" % m["n"] for m in r["plain"] if m.get("best_w", -1) >= r["nested"]["val_w"]),
                                                                   "not reached up to %d" % r["plain"][-1]["n"])) for r in rs)))
    L += ["", "Evaluations to reach nested MAP's mean over seeds (first budget whose seed-mean is >= nested's):", ""] + summ + [""]
    return L


def bayes_tables(q, K):
    L = []
    for s in q:
        L += ["**%s** (T = %d; grid %d^%d, %d non-dominated grid points; N0 = %d, B = %d; every run also re-evaluates "
              "K = %d front points and the pick; mean ± sd over %d seeds; 'wins' = seeds where Bayesian <= plain)" % (
                  s["tasks"], s["T"], s["grid_n"], s["T"], s["truth_points"], s["N0"], s["B"], K, len(s["plain"][s["N0"]])), "",
              "| samples N | rounds | IGD plain | IGD bayes | wins | RMSE plain | RMSE bayes | wins | HV/HV_grid plain | "
              "HV/HV_grid bayes | GD plain | GD bayes | IGD incl. samples plain | bayes | wall s plain | bayes |",
              "|---:|---:|---|---|---|---|---|---|---|---|---|---|---|---|---:|---:|"]
        for N in s["budgets"]:
            p, b = s["plain"][N], s["bayes"][N]
            shared = N == s["N0"]
            L.append("| %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %.1f |" % (
                N, b[0]["rounds"], ms([m["real"]["igd"] for m in p]), "(same)" if shared else ms([m["real"]["igd"] for m in b]),
                "-" if shared else "%d/%d" % (sum(x["real"]["igd"] <= y["real"]["igd"] for x, y in zip(b, p)), len(p)),
                ms([m["rmse"] for m in p]), "(same)" if shared else ms([m["rmse"] for m in b]),
                "-" if shared else "%d/%d" % (sum(x["rmse"] <= y["rmse"] for x, y in zip(b, p)), len(p)),
                ms([m["real"]["hv"] for m in p]), "(same)" if shared else ms([m["real"]["hv"] for m in b]),
                ms([m["real"]["gd"] for m in p]), "(same)" if shared else ms([m["real"]["gd"] for m in b]),
                ms([m["real_s"]["igd"] for m in p]), "(same)" if shared else ms([m["real_s"]["igd"] for m in b]),
                np.mean([m["wall"] for m in p]), np.mean([m["wall"] for m in b])))
        p, b = s["def"]["plain"], s["def"]["bayes"]
        Nx = s["budgets"][-1]
        n0, k = SUBS_DEF[s["tasks"]]
        L += ["", "Defaults, and an experiment with other Bayesian options:", "",
              "| run | samples | IGD | wins vs plain | RMSE | wins vs plain | HV/HV_grid | GD | IGD incl. samples | wall s |",
              "|---|---:|---|---|---|---|---|---|---|---:|"]
        for name, v, ref in (("plain MAP, default (reference) design", p, None),
                             ("bayesian, reference-type initial %d + %d rounds of %d" % (n0, k, s["B"]), b, p),
                             ("plain MAP, LHS", s["plain"][Nx], None),
                             ("bayesian, LHS initial %d + %d rounds (as in the curve)" % (s["N0"], (Nx - s["N0"]) // s["B"]),
                              s["bayes"][Nx], s["plain"][Nx]),
                             *(("bayesian, same, %s: %s" % (lab, " ".join(args)), s["exp"][key], s["plain"][Nx])
                               for key, lab, args in EXPS if key in s["exp"])):
            wi = lambda key: "-" if ref is None else "%d/%d" % (sum(x[key] <= y[key] for x, y in zip(
                [m["real"] if key != "rmse" else m for m in v], [m["real"] if key != "rmse" else m for m in ref])), len(v))
            L.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %.1f |" % (
                name, v[0]["n"], ms([m["real"]["igd"] for m in v]), wi("igd"), ms([m["rmse"] for m in v]), wi("rmse"),
                ms([m["real"]["hv"] for m in v]), ms([m["real"]["gd"] for m in v]), ms([m["real_s"]["igd"] for m in v]),
                np.mean([m["wall"] for m in v])))
        L.append("")
        tgt = np.mean([m["real"]["igd"] for m in p])
        reach = {}
        for meth in ("plain", "bayes"):
            reach[meth] = next((N for N in s["budgets"] if np.mean([m["real"]["igd"] for m in s[meth][N]]) <= tgt), None)
        def rs(meth):
            N = reach[meth]
            if N is None:
                return "not within %d" % s["budgets"][-1]
            return "%d (%d evaluated models with the %d re-evaluations and the pick; %.1f s wall)" % (
                N, N + s["plain"][N][0]["K"] + 1, s["plain"][N][0]["K"], np.mean([m["wall"] for m in s[meth][N]]))
        L += ["Samples to reach mean IGD <= %.4f (plain MAP default design's, %.1f s wall): plain LHS %s, Bayesian %s" % (
            tgt, np.mean([m["wall"] for m in p]), rs("plain"), rs("bayes")), ""]
    return L


SUBS_DEF = {s["tasks"]: s["def"] for s in SUBSETS}


def bayes_group_table(q):
    """with 10+ seeds: the curve's means per group of 5 seeds (0..4: the seeds options were chosen on;
    5..9 and later: held out), so a choice that only wins on the first group shows"""
    nseed = len(q[0]["plain"][q[0]["N0"]])
    if nseed < 10:
        return []
    groups = [range(g, min(g + 5, nseed)) for g in range(0, nseed, 5)]
    L = ["Per group of seeds (mean; 'ok' = Bayesian <= plain on both RMSE and IGD):", "",
         "| T | samples N | seeds | RMSE plain | RMSE bayes | IGD plain | IGD bayes | ok |", "|---|---:|---|---|---|---|---|---|"]
    for s in q:
        for N in s["budgets"][1:]:
            for g in groups:
                p, b = [s["plain"][N][i] for i in g], [s["bayes"][N][i] for i in g]
                rp, rb = np.mean([m["rmse"] for m in p]), np.mean([m["rmse"] for m in b])
                ip, ib = np.mean([m["real"]["igd"] for m in p]), np.mean([m["real"]["igd"] for m in b])
                L.append("| %d | %d | %d..%d | %.4f | %.4f | %.4f | %.4f | %s |" % (
                    s["T"], N, g[0], g[-1], rp, rb, ip, ib, "yes" if rb <= rp and ib <= ip else "**no**"))
    return L + [""]


def nested_tables(nq):
    tasks = ALL8.split(",")
    L = ["| preference | method | evaluated models | wall s | " + " | ".join(tasks) + " | mean | pref-weighted mean |",
         "|---|---|---:|---:|" + "---|" * (len(tasks) + 2)]
    for r in nq:
        w = np.array([float(x) for x in r["pref"].split(",")])
        for key, name in (("nested", "nested"), ("plain_lhs", "plain, LHS (same budget)"), ("plain_ref", "plain, reference design")):
            m = r[key]
            for split in ("val", "test"):
                v = np.array(m[split])
                L.append("| %s | %s (%s) | %d | %.1f | %s | %.4f | %.4f |" % (
                    r["pref"], name, split, m["n"], m["wall"], " | ".join("%.4f" % x for x in v), v.mean(), (w * v).sum() / w.sum()))
    L += ["", "Where the time goes (seconds per phase from the run summaries; nested MAP's pair fits and searches are "
          "inside its evaluate phase):", "", "| preference | run | wall | setup | evaluate | fit | search | reevaluate + pick | write |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in nq:
        for key in ("nested", "plain_lhs", "plain_ref", "plain_lhs_linloo"):
            if key not in r:
                continue
            ph = r[key]["phases"]
            L.append("| %s | %s | %.1f | %s |" % (r["pref"], key.replace("plain_lhs_linloo", "plain_lhs, -map_surrogate_loo_refit_max 0"),
                                                 r[key]["wall"], " | ".join("%.1f" % ph.get(k, math.nan) for k in
                                                                            ("setup", "evaluate", "fit", "search", "reevaluate", "write"))))
    if "plain_lhs_linloo" in nq[0]:
        a, b = nq[0]["plain_lhs"], nq[0]["plain_lhs_linloo"]
        L.append("")
        L.append("The linearised-LOO run picks the same point: %s (val accuracies equal: %s)." % (
            "yes" if np.allclose(a["coeffs"], b["coeffs"]) else "NO", "yes" if np.allclose(a["val"], b["val"]) else "NO"))
    L.append("")
    single = nq[0]["nested"]["single"]
    L.append("Fine-tuned models on their own task (val, from the nested tree's leaves): " +
             ", ".join("%s %.4f" % (t, a) for t, a in zip(tasks, single)))
    L.append("")
    for r in nq:
        L.append("Final coefficients over the 8 task vectors, preference %s: nested %s; plain LHS %s; plain reference %s" % (
            r["pref"], " ".join("%.3f" % x for x in r["nested"]["coeffs"]), " ".join("%.3f" % x for x in r["plain_lhs"]["coeffs"]),
            " ".join("%.3f" % x for x in r["plain_ref"]["coeffs"])))
        L.append("")
        L.append("Nested pairs (pref %s): chosen c, predicted vs real side objectives: " % r["pref"] + "; ".join(
            "(%.2f,%.2f) pred (%.3f,%.3f) real (%.3f,%.3f)" % (c[0], c[1], p[0], p[1], q[0], q[1])
            for c, p, q in zip(r["nested"]["pair_c"], r["nested"]["pair_pred"], r["nested"]["pair_real"])))
        L.append("")
    return L


def plot(q, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(2, len(q), figsize=(4.2 * len(q), 5.6), squeeze=False)
    for j, s in enumerate(q):
        for i, (key, lab) in enumerate((("igd", "IGD of re-evaluated front"), ("rmse", "surrogate RMSE on grid"))):
            a = ax[i][j]
            for meth, col in (("plain", "tab:blue"), ("bayes", "tab:red")):
                N = s["budgets"]
                v = [[m["real"]["igd"] if key == "igd" else m["rmse"] for m in s[meth][n]] for n in N]
                a.errorbar(N, [np.mean(x) for x in v], yerr=[np.std(x, ddof=1) if len(x) > 1 else 0.0 for x in v], marker="o", capsize=3, color=col,
                           label="plain MAP (LHS)" if meth == "plain" else "Bayesian MAP")
            for meth, mk in (("plain", "s"), ("bayes", "^")):
                v = [m["real"]["igd"] if key == "igd" else m["rmse"] for m in s["def"][meth]]
                a.plot([s["def"][meth][0]["n"]], [np.mean(v)], mk, color="k", mfc="none",
                       label="default design, " + ("plain" if meth == "plain" else "bayesian"))
            for (ek, elab, _), mk, col in zip(EXPS, "xD+v", ("tab:green", "tab:purple", "tab:orange", "tab:brown")):
                if ek in s["exp"]:
                    v = [m["real"]["igd"] if key == "igd" else m["rmse"] for m in s["exp"][ek]]
                    a.plot([s["budgets"][-1]], [np.mean(v)], mk, color=col, mfc="none", label="Bayesian, " + elab.split(" (")[0])
            a.set_title("%s: %s" % (s["tasks"], lab), fontsize=9)
            a.set_xlabel("evaluated samples (+%d re-evaluations + pick)" % s["plain"][s["N0"]][0]["K"], fontsize=8)
            a.tick_params(labelsize=8)
            if i == 0 and j == 0:
                a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mapmerge", default="build/mapmerge")
    ap.add_argument("--work", required=True, help="work dir (runs, own grids, results.json, tables.md)")
    ap.add_argument("--yaml", default="input/default.yaml")
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--reevaluate", type=int, default=8, help="re-evaluated front points per run (same for every run)")
    ap.add_argument("--grid-dir", action="append", default=[], help="directory with cached grid truths (read only; repeatable)")
    ap.add_argument("--only", choices=["bayes", "nested", "all"], default="all")
    ap.add_argument("--nested-budgets", default="60,99,150,200,300,450",
                    help="part 2: plain MAP at these numbers of evaluated models (and at nested MAP's), to find the budget that "
                         "reaches nested MAP's pick; empty: skip")
    ap.add_argument("--nested-seeds", type=int, default=3, help="part 2: seeds 0..S-1 of that comparison")
    ap.add_argument("--plot", default=os.path.join(HERE, "igd_vs_evaluations.png"))
    ap.add_argument("--bayes-args", default="", help="extra options for every Bayesian run of part 1 (one string, e.g. "
                    "'-map_bayes_residual loo'); later options of the experiments override them")
    ap.add_argument("--report", action="store_true", help="only rewrite tables.md and the plot from <work>/results.json")
    a = ap.parse_args()
    if a.report:
        with open(os.path.join(a.work, "results.json")) as f:
            r = json.load(f)
        for s in r["bayes"]:  # JSON made the budget keys strings
            for meth in ("plain", "bayes"):
                s[meth] = {int(k): v for k, v in s[meth].items()}
        report(r["bayes"], r["nested"], r["date"], r["np"], r["load"], r.get("total", math.nan), a, r.get("ladder"))
        return
    ctx = Ctx(a)
    os.makedirs(ctx.work, exist_ok=True)
    t0 = time.time()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = os.getloadavg()
    q, nq, lad = [], [], None
    if a.only in ("bayes", "all"):
        log("part 1: Bayesian vs plain MAP, T = 2 and 3, %d seeds" % a.seeds)
        q = bayes_part(ctx)
    if a.only in ("nested", "all"):
        log("part 2: nested vs plain MAP, T = 8")
        nq = nested_part(ctx)
        if a.nested_budgets.strip():
            log("part 2b: evaluations for plain MAP to reach nested MAP, T = 8, %d seed(s)" % a.nested_seeds)
            lad = ladder_part(ctx, [int(x) for x in a.nested_budgets.split(",")], range(a.nested_seeds))
    load1 = os.getloadavg()
    total = time.time() - t0
    prev = os.path.join(ctx.work, "results.json")
    if a.only != "all" and os.path.exists(prev):  # keep the part not rerun
        with open(prev) as f:
            old = json.load(f)
        if a.only == "nested":
            q = old.get("bayes", [])
            for s in q:
                for meth in ("plain", "bayes"):
                    s[meth] = {int(k): v for k, v in s[meth].items()}
        else:
            nq, lad = old.get("nested", []), old.get("ladder")
        date = "%s (part %s); other part: %s" % (date, a.only, old.get("date"))
    with open(os.path.join(ctx.work, "results.json"), "w") as f:
        json.dump({"bayes": q, "nested": nq, "date": date, "np": a.np, "load": [load0, load1], "total": total,
                   "ladder": lad}, f, indent=1)
    report(q, nq, date, a.np, [load0, load1], total, a, lad)


def report(q, nq, date, np_, load, total, a, lad=None):
    L = ["Date %s, %d MPI ranks, load average (1 min) at start %.1f, at end %.1f; total %.0f s." % (
        date, np_, load[0][0], load[1][0], total), ""]
    if q:
        L += bayes_tables(q, q[0]["plain"][q[0]["N0"]][0]["K"])
        L += bayes_group_table(q)
        plot(q, a.plot)
    if nq:
        L += nested_tables(nq)
    if lad:
        L += ladder_tables(lad)
    text = "\n".join(L) + "\n"
    with open(os.path.join(a.work, "tables.md"), "w") as f:
        f.write(text)
    print(text)
    log("bench: %s/results.json, %s/tables.md%s" % (a.work, a.work, ", " + a.plot if q else ""))


if __name__ == "__main__":
    main()
