#!/usr/bin/python3
"""Publication figures of a mapmerge run (Debian's python3-h5py and python3-matplotlib).

usage: postprocess/plot_front.py RUN_DIR|RUN_DIR/results.h5 [--output front.png] [--formats png,pdf,svg]
                                 [--size page|column] [--truth grid-eval.csv] [--quality curve.csv] [--data]
       postprocess/plot_front.py --quality curve.csv [--output curve.png]

Figures (written as <stem>.<format> for each of --formats; <stem> is --output without its extension,
default front beside results.h5):
  T = 2   <stem>: the evaluated samples, the predicted front (a line: it is a curve at T = 2), the
          re-evaluated front points with predicted->real links, the real non-dominated front of ALL
          evaluated models, the fine-tuned and pretrained models, the pick and the best evaluated model.
  T = 3   <stem>: the three pairwise projections, points only, coloured by the third task's metric.
  T > 3   <stem>: a grid of ALL task pairs (points only); <stem>_parallel: parallel coordinates.
  nested  <stem>_tree: the merge tree (fine-tuned models at the bottom, the root on top).
  --quality FILE.csv   <stem>_quality (or <stem> without a run): hypervolume ratio / IGD against the
          number of evaluations; columns method,evaluations and hv_ratio and/or igd, optional seed and
          subset (docs/reports.md).
The baselines are the run's evaluated models at c = e_i (the fine-tuned model i) and c = 0 (the
pretrained model); runs whose design lacks those corners show none. A run of another metric
(-map_metric, docs/metrics.md) is drawn in its own units, labels and direction (an arrow marks the
better corner: down-left for a lower-is-better metric's front of minima). --size column draws 3.3 in wide
figures for a journal column. --data writes the plotted coordinates as <stem>.plotted.json.
"""
import argparse
import csv
import json
import os
import sys

import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runfolder import Run, RunError  # noqa: E402

WIDTH = {"page": 7.0, "column": 3.3, "wide": 10.0}  # wide: report.py's screen figures
FONT = {"page": 9, "column": 7, "wide": 10}
COLOR = {"truth": "0.85", "samples": "0.55", "predicted front": "tab:blue", "re-evaluated (real)": "tab:orange",
         "real front (all evaluated)": "tab:green", "links": "0.4", "fine-tuned": "black", "pretrained": "black",
         "pick (real)": "tab:red", "best evaluated": "tab:red"}


def _style(size):
    plt.rcParams.update({"font.size": FONT[size], "axes.titlesize": FONT[size], "axes.labelsize": FONT[size],
                         "legend.fontsize": FONT[size] - 1, "xtick.labelsize": FONT[size] - 1,
                         "ytick.labelsize": FONT[size] - 1, "savefig.bbox": "tight", "svg.fonttype": "none"})


def _scatter(ax, X, i, j, gid, **kw):
    if X is None or len(X) == 0:
        return
    kw.setdefault("color", COLOR.get(gid))
    sc = ax.scatter(X[:, i], X[:, j], label=gid, **kw)
    sc.set_gid(gid)
    return sc


def _points(run):
    """the series every pair panel shows, as (n, T) arrays of accuracies"""
    full = run.sample_task < 0
    out = {"samples": run.A[full & np.all(np.isfinite(run.A), axis=1)], "predicted front": run.P,
           "re-evaluated (real)": run.R, "real front (all evaluated)": run.real_front,
           "pick (real)": run.pick["real"].reshape(-1, run.T) if "real" in run.pick else None}
    best = run.pick.get("best_evaluated_real")
    if best is not None and not np.array_equal(best.reshape(-1), out["pick (real)"].reshape(-1)):
        out["best evaluated"] = best.reshape(-1, run.T)
    return out


def _baselines(ax, run, i, j, annotate):
    ft = [(k, v) for k, v in run.baselines.items() if k.startswith("fine-tuned ")]
    if ft:
        X = np.array([v for _, v in ft])
        _scatter(ax, X, i, j, "fine-tuned", marker="^", s=22, zorder=4)
        if annotate:
            for k, v in ft:
                name = k[len("fine-tuned "):]
                if name in (run.tasks[i], run.tasks[j]):
                    ax.annotate(name, (v[i], v[j]), textcoords="offset points", xytext=(4, 3), fontsize="small")
    if "pretrained" in run.baselines:
        _scatter(ax, run.baselines["pretrained"][None, :], i, j, "pretrained", marker="s", s=18, facecolor="white",
                 edgecolor="black", color=None, zorder=4)


def _colour_range(run):
    """vmin/vmax of the colour scale: the metric's range (accuracy: 0, 1); the values' own where it is open"""
    m = run.metric
    if m["lo"] is not None and m["hi"] is not None:
        return {"vmin": float(m["lo"]), "vmax": float(m["hi"])}
    return {}


def _better(ax, run):
    """an arrow towards the better corner: up-right for maxima, down-left for a lower-is-better metric's minima"""
    if run.default_metric:
        return  # the default figures as before -map_metric existed
    a, b = ((0.93, 0.93), (0.78, 0.78)) if run.sign > 0 else ((0.07, 0.07), (0.22, 0.22))
    ax.annotate("better", xy=a, xytext=b, xycoords="axes fraction", textcoords="axes fraction", fontsize="x-small",
                ha="center", va="center", arrowprops=dict(arrowstyle="->", color="0.3", lw=0.8))


def _pair_panel(ax, run, i, j, truth, colour_by=None, small=False):
    """one pair of tasks; points only unless T = 2, where the predicted front is a curve"""
    ax.set_label(f"pair {i} {j}")
    S = _points(run)
    if truth is not None:
        _scatter(ax, truth, i, j, "truth", s=2, zorder=0)
    _scatter(ax, S["samples"], i, j, "samples", s=4 if small else 8, zorder=1)
    if not small:
        _better(ax, run)
    P = S["predicted front"]
    if P is not None and len(P):
        if run.T == 2:
            o = np.argsort(P[:, i], kind="stable")
            ln, = ax.plot(P[o, i], P[o, j], "-", color=COLOR["predicted front"], lw=1.2, label="predicted front", zorder=2)
            ln.set_gid("predicted front")
        elif colour_by is not None:
            _scatter(ax, P, i, j, "predicted front", s=10, c=P[:, colour_by], cmap="viridis", color=None, zorder=2,
                     **_colour_range(run))
            ax.set_title(f"colour: {run.tasks[colour_by]}", fontsize="small")
        else:
            _scatter(ax, P, i, j, "predicted front", s=3 if small else 8, zorder=2)
    RF = S["real front (all evaluated)"]
    if colour_by is not None and RF is not None:
        _scatter(ax, RF, i, j, "real front (all evaluated)", s=18, marker="o", c=RF[:, colour_by], cmap="viridis",
                 color=None, **_colour_range(run), edgecolor="tab:green", linewidths=1.0, zorder=3)
    else:
        _scatter(ax, RF, i, j, "real front (all evaluated)", s=6 if small else 14, marker="o", facecolor="none",
                 edgecolor=COLOR["real front (all evaluated)"], color=None, linewidths=0.9, zorder=3)
    R = S["re-evaluated (real)"]
    if R is not None and len(R) and run.real_index is not None and not small:
        seg = np.stack([P[run.real_index][:, [i, j]], R[:, [i, j]]], axis=1)
        lc = LineCollection(seg, colors=COLOR["links"], linewidths=0.7, linestyles=":", label="predicted -> real", zorder=3)
        lc.set_gid("links")
        ax.add_collection(lc)
    _scatter(ax, R, i, j, "re-evaluated (real)", marker="D", s=8 if small else 16, zorder=4)
    _baselines(ax, run, i, j, annotate=not small)
    _scatter(ax, S["pick (real)"], i, j, "pick (real)", marker="*", s=40 if small else 90, zorder=5)
    if "best evaluated" in S:
        _scatter(ax, S["best evaluated"], i, j, "best evaluated", marker="o", s=40 if small else 70, facecolor="none",
                 color=None, edgecolor=COLOR["best evaluated"], linewidths=1.0, zorder=5)
    ax.grid(alpha=0.3)


def _legend(fig, axes, ncol):
    """one legend for all panels, below them"""
    seen = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        fig.legend(list(seen.values()), list(seen.keys()), loc="upper center", ncol=ncol, frameon=False,
                   bbox_to_anchor=(0.5, 0.0), markerscale=0.9)


def figure_front(run, size="page", truth=None):
    """the front figure for the run's number of tasks (pairs, projections or the all-pairs grid)"""
    T, w = run.T, WIDTH[size]
    if T == 2:
        fig, ax = plt.subplots(figsize=(min(w, 4.6), min(w, 4.6) * 0.85))
        _pair_panel(ax, run, 0, 1, truth)
        ax.set_xlabel(run.label(run.tasks[0]))
        ax.set_ylabel(run.label(run.tasks[1]))
        ax.legend(loc="best", fontsize=FONT[size] - 1, framealpha=0.8)
        ax.set_title(run.title())
        return fig
    if T == 3:
        pairs = [(0, 1, 2), (0, 2, 1), (1, 2, 0)]
        shape = (3, 1) if size == "column" else (1, 3)
        fig, axes = plt.subplots(*shape, figsize=(w, w * 2.6) if size == "column" else (w, w * 0.36), layout="constrained")
        for ax, (i, j, k) in zip(np.ravel(axes), pairs):
            _pair_panel(ax, run, i, j, truth, colour_by=k)
            ax.set_xlabel(run.label(run.tasks[i]))
            ax.set_ylabel(run.label(run.tasks[j]))
        cr = _colour_range(run)
        if not cr:  # an open range: the scale of the values drawn
            S = _points(run)
            seen = np.concatenate([X.ravel() for X in (S["predicted front"], S["real front (all evaluated)"]) if X is not None])
            cr = {"vmin": float(np.nanmin(seen)), "vmax": float(np.nanmax(seen))}
        sm = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(cr["vmin"], cr["vmax"]), cmap="viridis")
        fig.colorbar(sm, ax=np.ravel(axes).tolist(), shrink=0.9, pad=0.01, fraction=0.04, aspect=50 if size == "column" else 20).set_label(f"{run.metric['name']} of the task in the panel title")
        _legend(fig, np.ravel(axes), 2 if size == "column" else 4)
        fig.suptitle(run.title())
        return fig
    n = T - 1
    fig, axes = plt.subplots(n, n, figsize=(w, w), squeeze=False, sharex="col", sharey="row")
    for r in range(n):
        for c in range(n):
            ax, i, j = axes[r][c], c, r + 1
            if i >= j:
                ax.set_visible(False)
                continue
            _pair_panel(ax, run, i, j, truth, small=True)
            ax.tick_params(labelsize=FONT[size] - 2 - (T > 5))
            if r == n - 1:
                ax.set_xlabel(run.tasks[i], fontsize=FONT[size] - (T > 5))
            if c == 0:
                ax.set_ylabel(run.tasks[j], fontsize=FONT[size] - (T > 5))
    _legend(fig, [a for a in axes.ravel() if a.get_visible()], 2 if size == "column" else 4)
    fig.suptitle(run.title() + f" ({run.label()}, all pairs)", y=0.93)
    fig.subplots_adjust(hspace=0.08, wspace=0.08, bottom=0.07)
    return fig


def figure_parallel(run, size="page"):
    """parallel coordinates: one polyline per model, one vertical axis per task (the metric, shared scale)"""
    w = WIDTH[size]
    fig, ax = plt.subplots(figsize=(w, w * (0.75 if size == "column" else 0.42)))
    ax.set_label("parallel")
    x = np.arange(run.T)
    S = _points(run)
    for gid, lw, alpha in (("predicted front", 0.6, 0.25), ("real front (all evaluated)", 0.9, 0.6), ("pick (real)", 2.2, 1.0)):
        Y = S.get(gid)
        if Y is None or len(Y) == 0:
            continue
        lines = [np.column_stack([x, y]) for y in Y]
        lc = LineCollection(lines, colors=COLOR[gid], linewidths=lw, alpha=alpha, label=gid)
        lc.set_gid(gid)
        ax.add_collection(lc)
    if "pretrained" in run.baselines:
        ln, = ax.plot(x, run.baselines["pretrained"], "--", color="black", lw=1, label="pretrained")
        ln.set_gid("pretrained")
    for t in x:
        ax.axvline(t, color="0.7", lw=0.6, zorder=0)
    ax.set_xticks(x)
    ax.set_xticklabels(run.tasks, rotation=30 if run.T > 4 or size == "column" else 0, ha="right" if run.T > 4 or size == "column" else "center")
    ax.set_xlim(-0.2, run.T - 0.8)
    if run.metric["lo"] is not None and run.metric["hi"] is not None:
        ax.set_ylim(float(run.metric["lo"]), float(run.metric["hi"]))
    else:
        ax.autoscale_view(scalex=False)
    ax.set_ylabel(run.label())
    ax.set_title(run.title() + " (parallel coordinates)")
    ax.legend(loc="upper right", fontsize=FONT[size] - 2, framealpha=0.8)
    return fig


def tree_layout(tree, T):
    """(x, y) of each merge-tree node: leaves in the order a depth-first walk from the root meets them"""
    root = len(tree) - 1
    order, stack = [], [root]
    while stack:
        k = stack.pop()
        if k < T:
            order.append(k)
        else:
            stack += [int(tree[k, 1]), int(tree[k, 0])]
    pos = {k: (float(order.index(k)), 0.0) for k in range(T)}
    for k in range(T, len(tree)):
        l, r = int(tree[k, 0]), int(tree[k, 1])
        pos[k] = ((pos[l][0] + pos[r][0]) / 2, float(tree[k, 2]))
    return pos


def figure_tree(run, size="page"):
    """nested MAP's merge tree; each edge carries the coefficient its child gets in the parent"""
    w, T, tree = WIDTH[size], run.T, run.tree
    col = {name: c for c, name in enumerate(run.tree_columns)}
    pos = tree_layout(tree, T)
    fig, ax = plt.subplots(figsize=(w, w * (0.8 if size == "column" else 0.45)))
    ax.set_label("tree")
    seg, labels = [], []
    for k in range(T, len(tree)):
        for side in ("left", "right"):
            child = int(tree[k, col[side]])
            seg.append([pos[child], pos[k]])
            labels.append(tree[k, col["c_" + side]])
    lc = LineCollection(seg, colors="0.3", linewidths=1.0)
    lc.set_gid("edges")
    ax.add_collection(lc)
    for (a, b), c in zip(seg, labels):
        ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, f"{c:.2f}", fontsize="x-small", ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none"))
    xy = np.array([pos[k] for k in range(len(tree))])
    sc = ax.scatter(xy[:, 0], xy[:, 1], s=40, c=["tab:blue"] * T + ["tab:orange"] * (len(tree) - T), zorder=3)
    sc.set_gid("nodes")
    for k in range(len(tree)):
        name = run.tasks[k] if k < T else f"node {k}"
        metric = tree[k, col["metric"]]
        ax.annotate(f"{name}\n{metric:.3f}", pos[k], textcoords="offset points", xytext=(0, -9 if k < T else 7),
                    ha="center", va="top" if k < T else "bottom", fontsize="x-small")
    ax.set_ylim(-0.9, tree[:, col["level"]].max() + 0.8)
    ax.set_xlim(-0.6, T - 0.4)
    ax.set_yticks(range(int(tree[:, col["level"]].max()) + 1))
    ax.set_ylabel("level")
    ax.set_xticks([])
    for s in ("top", "right", "bottom"):
        ax.spines[s].set_visible(False)
    ax.set_title(run.title() + " (merge tree; edge: coefficient, node: metric)")
    return fig


def read_quality(path):
    """curve CSV -> {subset: {metric: {method: (evaluations, median, lo, hi)}}}"""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as e:
        raise RunError(f"cannot read {path}: {e.strerror}")
    if not rows or "method" not in rows[0] or "evaluations" not in rows[0]:
        raise RunError(f"{path}: expected columns method,evaluations and hv_ratio and/or igd")
    metrics = [m for m in ("hv_ratio", "igd") if m in rows[0]]
    if not metrics:
        raise RunError(f"{path}: no hv_ratio or igd column (header: {','.join(rows[0])})")
    raw = {}
    for n, r in enumerate(rows, start=2):
        for m in metrics:
            if r[m] in ("", None):
                continue
            try:
                key = (r.get("subset") or "", m, r["method"], int(r["evaluations"]))
                raw.setdefault(key, []).append(float(r[m]))
            except ValueError:
                raise RunError(f"{path} line {n}: not a number in evaluations={r['evaluations']!r} {m}={r[m]!r}")
    out = {}
    for (subset, m, method, ev), v in sorted(raw.items()):
        d = out.setdefault(subset, {}).setdefault(m, {}).setdefault(method, ([], [], [], []))
        for lst, val in zip(d, (ev, np.median(v), min(v), max(v))):
            lst.append(val)
    return out


def figure_quality(path, size="page"):
    Q = read_quality(path)
    subsets = list(Q)
    metrics = sorted({m for s in Q.values() for m in s}, key=["hv_ratio", "igd"].index)
    w = WIDTH[size]
    fig, axes = plt.subplots(len(subsets), len(metrics), squeeze=False,
                             figsize=(w, w * 0.4 * len(subsets) * (1.6 if size == "column" else 1) / max(1, len(metrics) / 2)))
    for r, s in enumerate(subsets):
        for c, m in enumerate(metrics):
            ax = axes[r][c]
            ax.set_label(f"quality {s} {m}")
            for method, (ev, med, lo, hi) in Q[s].get(m, {}).items():
                ln, = ax.plot(ev, med, "o-", ms=3, lw=1.2, label=method)
                ln.set_gid(method)
                if any(a != b for a, b in zip(lo, hi)):
                    ax.fill_between(ev, lo, hi, alpha=0.15, color=ln.get_color(), lw=0)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("evaluations")
            ax.set_ylabel({"hv_ratio": "hypervolume ratio", "igd": "IGD"}[m])
            ax.set_title(s or m.replace("_", " "), fontsize="small")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="x-small")
    fig.suptitle("front quality per evaluation (median, band: min-max over seeds)")
    fig.tight_layout()
    return fig


def plotted_arrays(fig):
    """{axes label: {series: coordinates}} read back from the drawn artists: what the figure shows"""
    out = {}
    for ax in fig.axes:
        lab = ax.get_label()
        if not lab or lab.startswith("<"):
            continue
        d = out.setdefault(lab, {})
        for a in list(ax.collections) + list(ax.lines):
            gid = a.get_gid()
            if not gid:
                continue
            if isinstance(a, LineCollection):
                d[gid] = [np.asarray(s) for s in a.get_segments()]
            elif hasattr(a, "get_offsets"):
                d[gid] = np.asarray(a.get_offsets())
                if a.get_array() is not None:
                    d[gid + " colour"] = np.asarray(a.get_array())
            else:
                d[gid] = np.asarray(a.get_xydata())
    return out


def run_figures(run, size="page", truth=None):
    """[(suffix, figure)] for a run: '' is the front, then _parallel (T > 3) and _tree (nested)"""
    _style(size)
    figs = [("", figure_front(run, size, truth))]
    if run.T > 3:
        figs.append(("_parallel", figure_parallel(run, size)))
    if run.tree is not None:
        figs.append(("_tree", figure_tree(run, size)))
    return figs


def save(fig, stem, formats):
    written = []
    for fmt in formats:
        out = f"{stem}.{fmt}"
        tmp = f"{out}.tmp.{os.getpid()}"
        try:
            fig.savefig(tmp, format=fmt, dpi=200)
            os.replace(tmp, out)
        except OSError as e:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise RunError(f"cannot write {out}: {e.strerror}")
        written.append(out)
    return written


def _jsonable(d):
    return {k: (_jsonable(v) if isinstance(v, dict) else [np.asarray(x).tolist() for x in v] if isinstance(v, list)
                else np.asarray(v).tolist()) for k, v in d.items()}


def read_truth(path, tasks):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = [f"acc_{t}" for t in tasks if rows and f"acc_{t}" not in rows[0]]
    if not rows or missing:
        raise RunError(f"{path}: no column {', '.join(missing) or 'rows'} (a `mapmerge eval` CSV of the run's tasks)")
    return np.array([[float(r[f"acc_{t}"]) for t in tasks] for r in rows])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?", help="a run folder or its results.h5")
    ap.add_argument("--output", help="main figure; its name without the extension is the stem of all figures")
    ap.add_argument("--formats", default=None, help="comma-separated png,pdf,svg (default: --output's extension, or png)")
    ap.add_argument("--size", choices=["page", "column"], default="page", help="7 in wide (page) or 3.3 in (column)")
    ap.add_argument("--truth", help="optional `mapmerge eval` CSV of a dense grid (acc_<task> columns)")
    ap.add_argument("--quality", help="CSV of front quality per evaluation (method,evaluations,hv_ratio|igd[,seed][,subset])")
    ap.add_argument("--data", action="store_true", help="also write the plotted coordinates to <stem>.plotted.json")
    a = ap.parse_args()
    if not a.results and not a.quality:
        ap.error("give a run folder (or its results.h5), --quality FILE.csv, or both")
    out = a.output
    if not out:
        src = a.results or a.quality
        folder = src if os.path.isdir(src) else os.path.dirname(os.path.abspath(src))
        out = os.path.join(folder, "front.png" if a.results else "quality.png")
    stem, ext = os.path.splitext(out)
    formats = [f.strip().lower() for f in (a.formats or ext.lstrip(".") or "png").split(",") if f.strip()]
    bad = [f for f in formats if f not in ("png", "pdf", "svg")]
    if bad:
        ap.error(f"--formats: {','.join(bad)} is not one of png, pdf, svg")
    try:
        figs = []
        if a.results:
            run = Run(a.results)
            truth = read_truth(a.truth, run.tasks) if a.truth else None
            figs = run_figures(run, a.size, truth)
        if a.quality:
            _style(a.size)
            figs.append(("_quality" if a.results else "", figure_quality(a.quality, a.size)))
        for suffix, fig in figs:
            for path in save(fig, stem + suffix, formats):
                print(f"plot_front: wrote {path}")
            if a.data:
                with open(stem + suffix + ".plotted.json", "w") as fh:
                    json.dump(_jsonable(plotted_arrays(fig)), fh)
            plt.close(fig)
    except RunError as e:
        sys.exit(f"plot_front: error: {e}")


if __name__ == "__main__":
    main()
