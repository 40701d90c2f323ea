#!/usr/bin/python3
"""The reference MAP pipeline's choices (luli-git/MAP, MAP.py + run_MAP.py), re-implemented as the
baseline of bench/map_quality. Reads the samples a mapmerge run evaluated (its results.h5), so both
pipelines see exactly the same data, and writes the reference's predicted front as CSV
(c_<task>, pred_acc_<task>). Prints one JSON line with the fit and search times.

What the reference does, and what this script does the same way:
  fit     per task, accuracy ~ sigmoid(quadratic in c) (argument clipped to [-500, 500]), all
          (T+1)(T+2)/2 coefficients by scipy.optimize.curve_fit (unbounded: MINPACK
          Levenberg-Marquardt) from an all-ones start, no regularisation. The parameter order differs
          from the reference's, which does not matter: from an all-ones start it is the same model
          and the same iteration up to the column order.
  search  DEAP NSGA-III: individuals uniform in [-3, 3]^T (np.random.uniform), simulated binary
          crossover and polynomial mutation (both bounded to [-3, 3], eta 20, indpb 1/T), reference
          points = uniform_reference_points(T, 2) united with uniform_reference_points(T, 1, 0.5),
          eaMuPlusLambda with mu = lambda = 100, cxpb 0.7, mutpb 0.3, 25 generations; the front is
          the ParetoFront hall of fame (every non-dominated individual seen in any generation).
Differences (each one makes the reference faster, never slower, so the speed comparison is
conservative): the surrogates are evaluated with numpy rather than the reference's per-coefficient
Python loop, and the per-generation statistics the reference logs are not computed.

The in-box, linearised-start variant (issue 18; --start linear --box 0,1): the same fit started from
the linear least-squares solution of logit(accuracy) ~ quadratic features (accuracies clipped to
[1e-3, 1 - 1e-3]), and the same NSGA-III kept in the sampled box [0,1]^T. bench/map_quality/curve.py
re-evaluates its hall of fame up to a budget, subsampled by farthest-point spread in predicted space.

When curve_fit raises (the reference then prints the error and drops the task), this script falls
back to scipy.optimize.least_squares from the same start and reports the failure in the JSON.

usage: reference_pipeline.py RESULTS.h5 OUT.csv [--seed S] [--bound 3 | --box LO,HI] [--start ones|linear]
                             [--pop 100] [--gen 25] [--params OUT_params.npy]
"""
import argparse
import json
import os
import random
import sys
import time
import warnings

import h5py
import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit, least_squares
from deap import algorithms, base, creator, tools

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import features, sigmoid  # noqa: E402  (mapmerge's feature order)


def linear_start(Phi, a):
    """least-squares solution of logit(a) ~ Phi (a clipped away from 0 and 1): the linearised start"""
    y = np.clip(a, 1e-3, 1 - 1e-3)
    return np.linalg.lstsq(Phi, np.log(y / (1 - y)), rcond=None)[0]


def fit(C, A, start="ones"):
    """per-task parameters [T, F] (mapmerge's feature order), and the tasks whose curve_fit failed;
    start: "ones" (the reference) or "linear" (linear_start)"""
    Phi = features(C)
    F = Phi.shape[1]
    params, failed = [], []
    for t in range(A.shape[1]):
        p0 = np.ones(F) if start == "ones" else linear_start(Phi, A[:, t])
        def model(X, *th):
            return sigmoid(X @ np.asarray(th))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)  # "covariance could not be estimated"
                th, _ = curve_fit(model, Phi, A[:, t], p0=p0)
        except (RuntimeError, ValueError) as e:
            failed.append({"task": t, "error": str(e)})
            th = least_squares(lambda x: sigmoid(Phi @ x) - A[:, t], p0).x
        params.append(th)
    return np.array(params), failed


def nsga3(params, bound, pop_size, ngen, seed, box=None):
    """the reference's NSGA-III search on the fitted surrogates in [-bound, bound]^T (or box = (lo, hi)):
    (decision vectors, objectives) of its hall of fame"""
    T = params.shape[0]
    random.seed(seed)
    np.random.seed(seed)
    fit_name, ind_name = "MapRefFitness%d" % T, "MapRefIndividual%d" % T  # one class per T: a driver may mix subsets
    if not hasattr(creator, fit_name):
        creator.create(fit_name, base.Fitness, weights=(1.0,) * T)
        creator.create(ind_name, list, fitness=getattr(creator, fit_name))
    Individual = getattr(creator, ind_name)
    lo, hi = box if box else (-bound, bound)
    refs = np.concatenate([tools.uniform_reference_points(T, 2, 1.0), tools.uniform_reference_points(T, 1, 0.5)])
    _, first = np.unique(refs, axis=0, return_index=True)
    refs = refs[np.sort(first)]
    tb = base.Toolbox()
    tb.register("attr", np.random.uniform, lo, hi)
    tb.register("individual", tools.initRepeat, Individual, tb.attr, n=T)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("evaluate", lambda ind: tuple(sigmoid(features(np.asarray(ind, dtype=float)) @ params.T)[0]))
    tb.register("mate", tools.cxSimulatedBinaryBounded, low=lo, up=hi, eta=20.0)
    tb.register("mutate", tools.mutPolynomialBounded, low=lo, up=hi, eta=20.0, indpb=1.0 / T)
    tb.register("select", tools.selNSGA3, ref_points=refs)
    pop = tb.population(n=pop_size)
    hof = tools.ParetoFront()
    algorithms.eaMuPlusLambda(pop, tb, mu=pop_size, lambda_=pop_size, cxpb=0.7, mutpb=0.3, ngen=ngen, halloffame=hof,
                              verbose=False)
    Cf = np.array([list(ind) for ind in hof], dtype=float).reshape(-1, T)
    Ff = np.array([ind.fitness.values for ind in hof], dtype=float).reshape(-1, T)
    return Cf, Ff


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="results.h5 of a mapmerge run (its /samples are used)")
    ap.add_argument("out", help="predicted front CSV to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bound", type=float, default=3.0, help="search box [-bound, bound]^T (reference: 3)")
    ap.add_argument("--box", help="search box LO,HI instead of [-bound, bound] (the in-box variant: 0,1)")
    ap.add_argument("--start", choices=["ones", "linear"], default="ones", help="curve_fit's start (reference: ones)")
    ap.add_argument("--pop", type=int, default=100)
    ap.add_argument("--gen", type=int, default=25)
    ap.add_argument("--params", help="also save the fitted parameters [T, F] (mapmerge's feature order) as .npy")
    a = ap.parse_args()
    with h5py.File(a.results, "r") as f:
        C = f["samples/coeffs"][...]
        A = f["samples/accuracy"][...]
        tasks = [t.decode() if isinstance(t, bytes) else str(t) for t in f["tasks"][...]]
    t0 = time.perf_counter()
    params, failed = fit(C, A, a.start)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    box = tuple(float(x) for x in a.box.split(",")) if a.box else None
    Cf, Ff = nsga3(params, a.bound, a.pop, a.gen, a.seed, box)
    t_search = time.perf_counter() - t0
    with open(a.out, "w") as f:
        f.write(",".join([f"c_{t}" for t in tasks] + [f"pred_acc_{t}" for t in tasks]) + "\n")
        for c, y in zip(Cf, Ff):
            f.write(",".join(f"{v:.17g}" for v in list(c) + list(y)) + "\n")
    if a.params:
        np.save(a.params, params)
    print(json.dumps({"T": len(tasks), "n": int(len(C)), "fit_s": t_fit, "search_s": t_search, "front": int(len(Cf)),
                      "fit_failed": failed}))


if __name__ == "__main__":
    sys.exit(main())
