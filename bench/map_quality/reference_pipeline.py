#!/usr/bin/python3
"""The reference MAP pipeline's choices (luli-git/MAP), reproduced as a baseline for bench/map_quality:
per task, accuracy ~ sigmoid(quadratic in c) fitted by unregularised least squares (scipy) from an
all-ones start; then NSGA-III (DEAP; population 100, 25 generations) on the fitted surrogates inside
[-3, 3]^T. Reads the samples a mapmerge run evaluated (its results.h5), so both pipelines see the same
data; writes the predicted front (c_<task>, pred_acc_<task>) as CSV. Prints the fit and search time.

usage: reference_pipeline.py RESULTS.h5 OUT.csv [--seed S] [--bound 3]
"""
import argparse, random, sys, time
import numpy as np
import h5py
from scipy.optimize import least_squares
from deap import base, creator, tools, algorithms


def features(C):
    n, T = C.shape
    cols = [np.ones(n)] + [C[:, i] for i in range(T)]
    for i in range(T):
        for j in range(i, T):
            cols.append(C[:, i] * C[:, j])
    return np.stack(cols, axis=1)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bound", type=float, default=3.0)
    ap.add_argument("--pop", type=int, default=100)
    ap.add_argument("--gen", type=int, default=25)
    a = ap.parse_args()
    with h5py.File(a.results, "r") as f:
        C = f["samples/coeffs"][...]
        A = f["samples/accuracy"][...]
        tasks = [t.decode() if isinstance(t, bytes) else t for t in f["tasks"][...]]
    T = C.shape[1]
    t0 = time.perf_counter()
    Phi = features(C)
    params = []
    for t in range(T):
        res = least_squares(lambda th: sigmoid(Phi @ th) - A[:, t], np.ones(Phi.shape[1]))
        params.append(res.x)
    params = np.array(params)
    t_fit = time.perf_counter() - t0

    random.seed(a.seed)
    np.random.seed(a.seed)
    t0 = time.perf_counter()
    if not hasattr(creator, "FitnessMax"):
        creator.create("FitnessMax", base.Fitness, weights=(1.0,) * T)
        creator.create("Individual", list, fitness=creator.FitnessMax)
    ref_points = tools.uniform_reference_points(T, 12 if T <= 3 else 4)
    tb = base.Toolbox()
    lo, hi = -a.bound, a.bound
    tb.register("attr", random.uniform, lo, hi)
    tb.register("individual", tools.initRepeat, creator.Individual, tb.attr, n=T)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("evaluate", lambda ind: tuple(sigmoid(features(np.array([ind])) @ params.T)[0]))
    tb.register("mate", tools.cxSimulatedBinaryBounded, low=lo, up=hi, eta=30.0)
    tb.register("mutate", tools.mutPolynomialBounded, low=lo, up=hi, eta=20.0, indpb=1.0 / T)
    tb.register("select", tools.selNSGA3, ref_points=ref_points)
    pop = tb.population(n=a.pop)
    for ind in pop:
        ind.fitness.values = tb.evaluate(ind)
    for _ in range(a.gen):
        off = algorithms.varAnd(pop, tb, cxpb=1.0, mutpb=1.0)
        for ind in off:
            ind.fitness.values = tb.evaluate(ind)
        pop = tb.select(pop + off, a.pop)
    front = tools.sortNondominated(pop, len(pop), first_front_only=True)[0]
    t_search = time.perf_counter() - t0
    Cf = np.array([list(ind) for ind in front])
    Ff = np.array([ind.fitness.values for ind in front])
    # de-duplicate identical individuals
    _, keep = np.unique(np.round(Cf, 12), axis=0, return_index=True)
    keep.sort()
    Cf, Ff = Cf[keep], Ff[keep]
    with open(a.out, "w") as f:
        f.write(",".join([f"c_{t}" for t in tasks] + [f"pred_acc_{t}" for t in tasks]) + "\n")
        for c, y in zip(Cf, Ff):
            f.write(",".join(f"{v:.17g}" for v in list(c) + list(y)) + "\n")
    print(f"reference pipeline: T={T} n={len(C)} fit {t_fit:.4f}s search {t_search:.4f}s front {len(Cf)} points")


if __name__ == "__main__":
    sys.exit(main())
