#!/usr/bin/python3
"""Plot a mapmerge run: the evaluated samples, the predicted Pareto front, the re-evaluated ("MAP
real") points and the pick, for every pair of tasks. Debian's python3-h5py and python3-matplotlib.

usage: postprocess/plot_front.py runs/<id>/results.h5 [--output front.png] [--truth grid-eval.csv]
"""
import argparse, os, sys
import numpy as np
import h5py
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("--output", help="PNG file (default: front.png beside results.h5)")
    ap.add_argument("--truth", help="optional `mapmerge eval` CSV of a dense grid (acc_<task> columns)")
    a = ap.parse_args()
    try:
        f = h5py.File(a.results, "r")
    except OSError as e:
        sys.exit(f"plot_front: cannot open {a.results}: {e}")
    tasks = [t.decode() if isinstance(t, bytes) else str(t) for t in f["tasks"][...]]
    T = len(tasks)
    S = f["samples/accuracy"][...]
    P = f["pareto/predicted"][...] if "pareto/predicted" in f else np.zeros((0, T))
    R = f["pareto/real"][...] if "pareto/real" in f else np.zeros((0, T))
    pick = f["pick/real"][...].reshape(-1, T) if "pick/real" in f else np.zeros((0, T))
    truth = None
    if a.truth:
        import csv
        with open(a.truth) as fh:
            rows = list(csv.DictReader(fh))
        truth = np.array([[float(r[f"acc_{t}"]) for t in tasks] for r in rows])
    pairs = [(i, j) for i in range(T) for j in range(i + 1, T)][:6]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4.5), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        if truth is not None:
            ax.scatter(truth[:, i], truth[:, j], s=3, c="0.85", label="grid (eval)")
        ax.scatter(S[:, i], S[:, j], s=14, c="tab:gray", label="samples")
        if len(P):
            o = np.argsort(P[:, i])
            ax.plot(P[o, i], P[o, j], "-", c="tab:blue", lw=1.5, label="predicted front")
        if len(R):
            ax.scatter(R[:, i], R[:, j], s=30, c="tab:orange", marker="D", label="re-evaluated (real)")
        if len(pick):
            ax.scatter(pick[:, i], pick[:, j], s=120, c="tab:red", marker="*", label="pick (real)")
        ax.set_xlabel(f"accuracy {tasks[i]}")
        ax.set_ylabel(f"accuracy {tasks[j]}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(os.path.dirname(os.path.abspath(a.results)))
    fig.tight_layout()
    out = a.output or os.path.join(os.path.dirname(os.path.abspath(a.results)), "front.png")
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, out)
    print(f"plot_front: wrote {out}")


if __name__ == "__main__":
    main()
