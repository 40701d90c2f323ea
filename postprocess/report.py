#!/usr/bin/python3
"""One self-contained HTML report of a mapmerge run folder: RUN_DIR/report.html.

usage: postprocess/report.py RUN_DIR [--output FILE.html] [--quality curve.csv]

Sections: summary, figures (plot_front.py's, embedded as base64 PNG), surrogate diagnostics (fit R^2,
RMSE, leave-one-out RMSE per task; predicted vs real at the pick and at the re-evaluated points), the
pick and the best evaluated model, the front table (front.csv), the real front, the merge tree (nested
runs), timings, failed points, the manifest and the datasets of results.h5. Anything the run did not
record reads "none recorded". No external resources: one file to mail or archive. Every string from
the run (task names, options, paths) is HTML-escaped.
"""
import argparse
import base64
import html
import io
import json
import os
import sys

import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot_front  # noqa: E402
from quality import hypervolume  # noqa: E402
from runfolder import Run, RunError  # noqa: E402

NONE = '<p class="none">none recorded</p>'
CSS = """body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.none{color:#888;font-style:italic}
.scroll{max-height:420px;overflow:auto;border:1px solid #eee}pre{background:#f7f7f7;padding:0.6em;overflow:auto;font-size:0.8em}
img{max-width:100%;display:block;margin:0.5em 0}.warn{color:#a40}dl.kv dt{float:left;clear:left;width:16em;font-weight:bold}dl.kv dd{margin-left:16.5em}"""


def esc(x):
    return html.escape(str(x), quote=True)


def num(x, fmt="%.4f"):
    x = float(x)
    return "nan" if not np.isfinite(x) else fmt % x


def table(header, rows, left=1, cls=""):
    """rows of already formatted cells; the first `left` columns are text (escaped here too)"""
    h = "".join(f'<th class="{"l" if k < left else ""}">{esc(c)}</th>' for k, c in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if k < left else ""}">{esc(c)}</td>' for k, c in enumerate(r)) + "</tr>"
                   for r in rows)
    t = f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{t}</div>' if cls == "scroll" else t


def kv(pairs):
    return '<dl class="kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs) + "</dl>"


def png_tag(fig, alt):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def section_summary(run):
    C, A = run.evaluated()
    n_full = int((run.sample_task < 0).sum())
    m = run.manifest or {}
    pairs = [("tasks", ", ".join(run.tasks)), ("method", run.method)]
    if not run.default_metric:  # a default run's report reads as before -map_metric existed
        pairs.append(("metric", run.label() + (f" (-map_metric {run.metric['spec']})" if run.metric.get("spec") else "")))
    pairs += [("seed", run.attrs.get("seed", "none recorded")),
             ("ranks", run.attrs.get("ranks", "none recorded")), ("run folder", run.dir),
             ("models evaluated", f"{len(run.A)} samples ({n_full} on every task)"
              + (f", {len(run.R)} re-evaluations" if run.R is not None else "") + (", 1 pick" if "real" in run.pick else "")),
             ("status", m.get("exit_status", run.attrs.get("exit_status", "none recorded"))),
             ("mapmerge", f"{run.attrs.get('mapmerge_version', '?')} (git {run.attrs.get('git_commit', '?')})")]
    hv = _hypervolumes(run)
    if run.P is not None:
        pairs.append(("predicted front", f"{len(run.P)} points, hypervolume {hv['predicted']}"))
    if run.R is not None:
        pairs.append(("re-evaluated front points", f"{len(run.R)}, hypervolume {hv['real']}"))
    pairs.append(("real front (all evaluated)", f"{len(run.real_front)} points of {len(A)} models, hypervolume "
                  f"{hv['real front']} ({run.real_front_source})"))
    ref = run.hypervolume_ref()
    note = (f"<p>Hypervolumes: {esc(run.metric['name'])}, reference point {num(ref[0], '%g')} (the worst end of its range)"
            if ref is not None else f"<p>Hypervolumes: none, {esc(run.metric['name'])} has no bounded range")
    note += "; exact (quality.py) up to 3 tasks; above, the run's own Monte Carlo estimates from its summary in run.log.</p>"
    if run.default_metric:
        note = ("<p>Hypervolumes: accuracy, reference point 0; exact (quality.py) up to 3 tasks; above, the run's own "
                "Monte Carlo estimates from its summary in run.log.</p>")
    return "<h2>Summary</h2>" + kv(pairs) + note


def _hypervolumes(run):
    """exact up to T = 3; above, a few thousand draws would be noise (the dominated share of the box is
    ~1e-4 at T = 8), so the run's own estimates, printed in its summary, if its stdout was kept"""
    ref = run.hypervolume_ref()
    if ref is None:
        return {k: "none (no bounded range)" for k in ("predicted", "real", "real front")}
    if run.T <= 3:  # sign * value: quality.py's hypervolume is of maxima above the reference point
        fin = lambda X: X[np.all(np.isfinite(X), axis=1)]  # noqa: E731
        return {k: num(hypervolume(run.sign * fin(X), run.sign * ref), "%.6g") if X is not None else "" for k, X in
                (("predicted", run.P), ("real", run.R), ("real front", run.real_front))}
    got = run.summary_hypervolumes or {}
    return {k: got.get(k, "not computed above 3 tasks (no run.log)") for k in ("predicted", "real", "real front")}


def section_diagnostics(run):
    out = "<h2>Surrogate diagnostics</h2>"
    if not run.diag:
        out += "<h3>Fit per task</h3>" + NONE
    for kind, (cols, D, link) in run.diag.items():
        out += f"<h3>{esc(kind)} surrogate ({esc(link)} link)</h3>"
        out += table(["task"] + cols, [[run.tasks[t]] + [num(v, "%.4g") for v in D[t]] for t in range(run.T)])
    out += "<h3>Predicted vs real at the pick</h3>"
    p = run.pick
    if "predicted" in p and "real" in p and np.all(np.isfinite(p["predicted"])):
        pr, re = p["predicted"].ravel(), p["real"].ravel()
        out += table(["task", "predicted", "real (val)", "real - predicted"],
                     [[run.tasks[t], num(pr[t]), num(re[t]), num(re[t] - pr[t], "%+.4f")] for t in range(run.T)])
        off = np.abs(re - pr).max()
        out += f"<p>largest |real - predicted| at the pick: {num(off)}</p>"
    else:
        out += NONE
    out += "<h3>Predicted vs real at the re-evaluated front points</h3>"
    if run.R is not None and run.P is not None and run.real_index is not None and len(run.R):
        d = run.R - run.P[run.real_index]
        rows = [[run.tasks[t], num(np.abs(d[:, t]).mean()), num(np.abs(d[:, t]).max()), num(d[:, t].mean(), "%+.4f")]
                for t in range(run.T)]
        out += table(["task", "mean |real - predicted|", "max |real - predicted|", "mean real - predicted"], rows)
    else:
        out += NONE
    return out


def section_pick(run):
    p = run.pick
    out = "<h2>Pick and best evaluated model</h2>"
    if "coeffs" not in p:
        return out + NONE
    pref = ",".join("%g" % w for w in p["preference"].ravel()) if "preference" in p else "none recorded"
    cols = [("c", p["coeffs"]), ("predicted", p.get("predicted")), ("real (val)", p.get("real")), ("test", p.get("test"))]
    if "best_evaluated_coeffs" in p:
        cols += [("best evaluated c", p["best_evaluated_coeffs"]), ("best evaluated real", p["best_evaluated_real"])]
    cols = [(n, v.ravel()) for n, v in cols if v is not None]
    out += f"<p>preference {esc(pref)}; coefficients c = <span id=\"pick-c\">{esc(' '.join('%.4f' % c for c in p['coeffs'].ravel()))}</span></p>"
    out += table(["task"] + [n for n, _ in cols], [[run.tasks[t]] + [num(v[t]) for _, v in cols] for t in range(run.T)])
    if "best_evaluated_value" in p and "real_value" in p:
        b, r = float(p["best_evaluated_value"].ravel()[0]), float(p["real_value"].ravel()[0])
        same = np.array_equal(p["best_evaluated_coeffs"], p["coeffs"])
        out += (f"<p>scalarised real value (lower is better): pick {num(r)}, best evaluated {num(b)}"
                f"{' (the pick itself)' if same else ''}.</p>")
    else:
        out += "<p>best evaluated model: none recorded</p>"
    if run.baselines:
        out += "<h3>Baselines (the evaluated models at c = e_i and c = 0)</h3>"
        out += table(["model"] + run.tasks, [[k] + [num(x) for x in v] for k, v in run.baselines.items()])
    return out


def section_front(run):
    out = "<h2>Front (front.csv)</h2>"
    if run.front_csv is None:
        out += NONE
    else:
        header, rows = run.front_csv
        fmt = [["%.4f" % float(v) if v != "" else "" for v in r] for r in rows]
        out += f"<p>{len(rows)} points; real_{esc(run.short)}_ columns are empty where a point was not re-evaluated.</p>"
        out += table(header, fmt, left=0, cls="scroll")
    out += f"<h3>Real front: non-dominated among all evaluated models ({esc(run.real_front_source)})</h3>"
    rows = [["%.4f" % c for c in cr] + ["%.4f" % a for a in ar] for cr, ar in zip(run.real_front_coeffs, run.real_front)]
    out += table(["c_" + t for t in run.tasks] + [run.short + "_" + t for t in run.tasks], rows, left=0, cls="scroll")
    return out


def section_tree(run):
    if run.tree is None:
        return ""
    col = {n: k for k, n in enumerate(run.tree_columns)}
    rows = []
    for k, r in enumerate(run.tree):
        name = run.tasks[k] if k < run.T else f"node {k}"
        kids = "" if k < run.T else f"{int(r[col['left']])} + {int(r[col['right']])}"
        rows.append([name, int(r[col["level"]]), kids, num(r[col["c_left"]]), num(r[col["c_right"]]), num(r[col["metric"]]),
                     int(r[col["evaluations"]])])
    return "<h2>Merge tree</h2>" + table(["node", "level", "children", "c_left", "c_right", "metric", "evaluations"], rows)


def section_timings(run):
    m = run.manifest or {}
    out = "<h2>Timings</h2>" + kv([("start", m.get("start_time", run.attrs.get("start_time", "none recorded"))),
                                    ("end", m.get("end_time", run.attrs.get("end_time", "none recorded")))])
    out += "<h3>Time per phase</h3>"
    if run.phase_times:
        out += table(list(run.phase_times) + ["total"], [["%.2f s" % v for v in run.phase_times.values()]
                                                          + ["%.2f s" % sum(run.phase_times.values())]], left=0)
    else:
        out += NONE.replace("none recorded", "none recorded (results.h5 keeps no phase times; the run's stdout, saved as "
                            "run.log in the run folder, has them: scripts/default.sh keeps it)")
    return out


def section_failed(run):
    bad = run.failed_points()
    out = "<h2>Failed points</h2>"
    if not bad:
        return out + NONE + ("<p>(samples meant for every task with a non-finite metric; a failing evaluator stops the run)</p>"
                             if run.default_metric else "<p>(failed evaluations: /samples/failed)</p>")
    if run.failed_samples:
        out += f"<p>{len(run.failed_samples)} failed evaluations (/samples/failed), left out of the fit and the fronts.</p>"
    return out + table(["sample"] + ["c_" + t for t in run.tasks], [[i] + ["%.4f" % x for x in c] for i, c in bad])


def section_manifest(run):
    out = "<h2>Manifest</h2>"
    out += f"<pre>{esc(json.dumps(run.manifest, indent=2))}</pre>" if run.manifest is not None else NONE
    out += "<h3>Datasets in results.h5</h3>" + table(["dataset", "shape", "dtype"],
                                                     [[n, "x".join(map(str, s)) or "scalar", d] for n, s, d in run.datasets])
    return out


def render(run, quality=None):
    figs = ""
    for suffix, fig in plot_front.run_figures(run, "wide"):
        figs += png_tag(fig, f"{run.title()} {suffix.strip('_') or 'front'}")
    if quality:
        figs += png_tag(plot_front.figure_quality(quality), "front quality per evaluation")
    title = f"mapmerge report: {run.title()}"
    body = (f"<h1>{esc(title)}</h1>" + section_summary(run) + "<h2>Figures</h2>" + figs + section_diagnostics(run)
            + section_pick(run) + section_front(run) + section_tree(run) + section_timings(run) + section_failed(run)
            + section_manifest(run))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head><body>{body}</body></html>\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", help="a mapmerge run folder (results.h5, front.csv, manifest.json)")
    ap.add_argument("--output", help="HTML file (default RUN_DIR/report.html)")
    ap.add_argument("--quality", help="also plot this quality-per-evaluation CSV (see plot_front.py)")
    a = ap.parse_args()
    out = a.output or os.path.join(a.run_dir, "report.html")
    try:
        run = Run(a.run_dir)
        text = render(run, a.quality)
    except RunError as e:
        sys.exit(f"report: error: {e}")
    tmp = f"{out}.tmp.{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        sys.exit(f"report: error: cannot write {out}: {e.strerror}")
    print(f"report: wrote {out}")


if __name__ == "__main__":
    main()
