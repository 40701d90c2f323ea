#!/usr/bin/python3
"""postprocess/ on real runs of the small zoo: the plotted coordinates are front.csv's columns and
results.h5's datasets (read back from the drawn artists), report.html renders in headless Chromium
(not blank, every task name and the pick's coefficients in the page, task names escaped), and
quality.py reads front.csv's own columns by default.

usage: test_postprocess.py plot|report|quality|metric   (env: MAPMERGE, MAP_SOURCE_DIR, MAP_BINARY_DIR)
"""
import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import h5py

SRC = os.environ["MAP_SOURCE_DIR"]
BIN = os.environ["MAP_BINARY_DIR"]
MAPMERGE = os.environ["MAPMERGE"]
WORK = os.path.join(BIN, "postprocess-tests")
SMALL = os.path.join(SRC, "input", "small.yaml")
POST = os.path.join(SRC, "postprocess")
PY = "/usr/bin/python3"
sys.path.insert(0, POST)


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def sh(cmd, **kw):
    p = subprocess.run(cmd, cwd=WORK, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
        fail(f"{' '.join(cmd[:4])} exited {p.returncode}")
    return p


def mapmerge(*args, n=2):
    return sh(["mpiexec", "-n", str(n), "--oversubscribe", MAPMERGE] + list(args))


def store():
    """the small zoo (fixture zoo_small) imported into this test's own store"""
    os.makedirs(WORK, exist_ok=True)
    link = os.path.join(WORK, "zoo-small")
    if not os.path.exists(link):
        os.symlink(os.path.join(BIN, "zoo-small"), link)
    path = os.path.join(WORK, "store-small.h5")
    if not os.path.exists(path):
        mapmerge("import", "-options_file_yaml", SMALL, "-map_store", path)
    return path


def run(name, *args):
    """a fresh run folder of the small zoo; returns (folder, stdout)"""
    d = os.path.join(WORK, name)
    shutil.rmtree(d, ignore_errors=True)
    p = mapmerge("run", "-options_file_yaml", SMALL, "-map_store", store(), "-map_output", d, *args)
    return d, p.stdout


def front_csv(d):
    """front.csv by the csv module: {column: float array, NaN where empty}"""
    with open(os.path.join(d, "front.csv"), newline="") as f:
        rows = list(csv.reader(f))
    return {h: np.array([float(r[k]) if r[k] else np.nan for r in rows[1:]]) for k, h in enumerate(rows[0])}


def same_rows(got, want, what):
    """the same set of points (rows), in any order; exact: the figure holds the file's doubles"""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        fail(f"{what}: {got.shape} plotted, {want.shape} in the file")
    key = lambda X: X[np.lexsort(X.T[::-1])]  # noqa: E731
    if not np.array_equal(key(got), key(want)):
        fail(f"{what}: plotted points differ from the file:\n{key(got)}\n{key(want)}")


# ---------------------------------------------------------------- plot
def check_pairs(d, panels, tasks, small_grid, stem="acc"):
    F = front_csv(d)
    with h5py.File(os.path.join(d, "results.h5"), "r") as f:
        real_front = f["pareto/real_front"][...]
        pick = f["pick/real"][...].reshape(-1, len(tasks))
    pred = np.column_stack([F[f"pred_{stem}_" + t] for t in tasks])
    real = np.column_stack([F[f"real_{stem}_" + t] for t in tasks])
    reeval = ~np.isnan(real).any(axis=1)
    T, n = len(tasks), 0
    for i in range(T):
        for j in range(i + 1, T):
            p = panels[f"pair {i} {j}"]
            same_rows(p["predicted front"], pred[:, [i, j]], f"T={T} pair {i},{j} predicted front vs front.csv pred_{stem}_")
            same_rows(p["re-evaluated (real)"], real[reeval][:, [i, j]], f"T={T} pair {i},{j} re-evaluated vs front.csv real_{stem}_")
            same_rows(p["real front (all evaluated)"], real_front[:, [i, j]], f"T={T} pair {i},{j} real front vs /pareto/real_front")
            same_rows(p["pick (real)"], pick[:, [i, j]], f"T={T} pair {i},{j} pick vs /pick/real")
            if T == 3:  # coloured by the third task, and points only: no line through projected points
                k = 3 - i - j
                if not np.array_equal(np.sort(p["predicted front colour"]), np.sort(pred[:, k])):
                    fail(f"T=3 pair {i},{j}: colours are not front.csv's pred_acc_{tasks[k]}")
            if not small_grid:
                links = p["links"]  # predicted -> real: from each re-evaluated row's pred_acc_ to its real_acc_
                same_rows([np.concatenate(s) for s in links], np.column_stack([pred[reeval][:, [i, j]], real[reeval][:, [i, j]]]),
                          f"T={T} pair {i},{j} predicted->real links vs front.csv")
            n += 1
    return n


def case_plot():
    import matplotlib
    matplotlib.use("Agg")
    import plot_front
    from runfolder import Run
    cases = [("p-t2", ["rot90", "shift"], []), ("p-t3", ["rot90", "flip_v", "shift"], []),
             ("p-t4", ["rot90", "flip_v", "permute", "shift"], ["-map_sample_type", "lhs", "-map_sample_n", "24"])]
    for name, tasks, extra in cases:
        d, _ = run(name, "-map_tasks", ",".join(tasks), "-map_reevaluate", "4", *extra)
        r = Run(d)
        figs = dict(plot_front.run_figures(r, "page"))
        panels = plot_front.plotted_arrays(figs[""])
        npairs = check_pairs(d, panels, tasks, small_grid=len(tasks) > 3)
        if npairs != len(tasks) * (len(tasks) - 1) // 2:
            fail(f"T={len(tasks)}: {npairs} pair panels, expected all {len(tasks) * (len(tasks) - 1) // 2}")
        if len(tasks) == 3:
            lines = [ln for ax in figs[""].axes if ax.get_label().startswith("pair") for ln in ax.lines]
            if lines:
                fail(f"T=3: {len(lines)} lines drawn through projected points")
        if len(tasks) > 3:
            par = plot_front.plotted_arrays(figs["_parallel"])["parallel"]
            F = front_csv(d)
            pred = np.column_stack([F["pred_acc_" + t] for t in tasks])
            same_rows([s[:, 1] for s in par["predicted front"]], pred, "parallel coordinates vs front.csv pred_acc_")
            if not all(np.array_equal(s[:, 0], np.arange(len(tasks))) for s in par["predicted front"]):
                fail("parallel coordinates: a polyline is not on the task axes 0..T-1")
        # baselines: the run's evaluations at c = e_i and c = 0 (the reference design has them at T <= 3)
        with h5py.File(os.path.join(d, "results.h5"), "r") as f:
            C, A = f["samples/coeffs"][...], f["samples/accuracy"][...]
        want = [A[k] for k in range(len(C)) if np.count_nonzero(C[k]) == 1 and C[k].max() == 1]
        if want:
            same_rows(panels["pair 0 1"]["fine-tuned"], np.array(want)[:, [0, 1]], f"T={len(tasks)} fine-tuned baselines vs samples at c = e_i")
        elif len(tasks) <= 3:
            fail(f"T={len(tasks)}: the reference design has no corner c = e_i")
        for fig in figs.values():
            matplotlib.pyplot.close(fig)
        print(f"T={len(tasks)}: {npairs} pair panels equal front.csv / results.h5")
        if len(tasks) != 3:
            continue
        # the command line (once: a Python start-up costs seconds on a busy machine): three formats at
        # column width, and the written coordinates equal the drawn ones
        stem = os.path.join(d, "fig")
        sh([PY, os.path.join(POST, "plot_front.py"), d, "--output", stem + ".png", "--formats", "png,pdf,svg", "--size", "column", "--data"])
        for ext, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<?xml")):
            with open(f"{stem}.{ext}", "rb") as f:
                if f.read(len(magic)) != magic:
                    fail(f"{stem}.{ext} is not a {ext} file")
        with open(stem + ".plotted.json") as f:
            written = json.load(f)
        F = front_csv(d)
        same_rows(written["pair 0 1"]["predicted front"], np.column_stack([F["pred_acc_" + t] for t in tasks[:2]]),
                  f"{stem}.plotted.json predicted front")
        with open(stem + ".svg") as f:
            svg = f.read()
        for t in tasks:
            if t not in svg:
                fail(f"{stem}.svg does not name task {t}")
        if d in svg:
            fail(f"{stem}.svg carries the run's path in its title")
        print(f"{stem}.png, .pdf, .svg and .plotted.json written")
    # nested: the merge tree's edges are results.h5's /nested/tree
    d, _ = run("p-nested", "-map_method", "nested")
    r = Run(d)
    figs = dict(plot_front.run_figures(r, "page"))
    tree = plot_front.plotted_arrays(figs["_tree"])["tree"]
    with h5py.File(os.path.join(d, "results.h5"), "r") as f:
        t = f["nested/tree"][...]
    nodes, T = tree["nodes"], 4
    want = [np.concatenate([nodes[int(t[k, side])], nodes[k]]) for k in range(T, len(t)) for side in (0, 1)]
    same_rows([np.concatenate(s) for s in tree["edges"]], want, "merge tree edges vs /nested/tree")
    if not np.array_equal(nodes[:, 1], np.concatenate([np.zeros(T), t[T:, 2]])):
        fail("merge tree: node heights are not the levels of /nested/tree")
    print(f"nested: {len(tree['edges'])} tree edges equal /nested/tree")
    # the quality curve: the plotted medians are the CSV's medians over seeds
    rng = np.random.default_rng(3)
    q = os.path.join(WORK, "curve.csv")
    rows = [(m, ev, s, rng.random(), rng.random()) for m in ("mapmerge", "in-box") for ev in (20, 40, 80) for s in range(5)]
    with open(q, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "evaluations", "seed", "hv_ratio", "igd"])
        w.writerows(rows)
    fig = plot_front.figure_quality(q)
    got = plot_front.plotted_arrays(fig)
    for col, metric in ((3, "hv_ratio"), (4, "igd")):
        for m in ("mapmerge", "in-box"):
            line = got[f"quality  {metric}"][m]
            want = [[ev, np.median([r[col] for r in rows if r[0] == m and r[1] == ev])] for ev in (20, 40, 80)]
            if not np.allclose(line, want, rtol=0, atol=0):
                fail(f"quality curve {metric} {m}: plotted {line}, medians {want}")
    sh([PY, os.path.join(POST, "plot_front.py"), "--quality", q, "--formats", "png,svg"])
    print("quality curve: plotted medians equal the CSV's")


# ---------------------------------------------------------------- report
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(page, *args):
    with tempfile.TemporaryDirectory() as profile:
        p = subprocess.run(CHROMIUM + [f"--user-data-dir={profile}"] + list(args) + ["file://" + os.path.abspath(page)],
                           cwd=WORK, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        print(p.stderr[-2000:])
        fail(f"chromium exited {p.returncode} on {page}")
    return p.stdout


def check_report(d, tasks, screenshot=True):
    sh([PY, os.path.join(POST, "report.py"), d])
    page = os.path.join(d, "report.html")
    with open(page) as f:
        raw = f.read()
    if re.search(r"""(src|href)\s*=\s*["'](?!data:)""", raw):
        fail(f"{page} loads an external resource")
    var = None
    if screenshot:
        shot = os.path.join(d, "report.png")
        chromium(page, f"--screenshot={shot}", "--window-size=1200,2000")
        import matplotlib.image
        img = matplotlib.image.imread(shot)[..., :3]
        var = float(img.var())
        if img.shape[:2] != (2000, 1200) or var < 1e-3:
            fail(f"screenshot {img.shape} pixel variance {var}: blank")
    dom = chromium(page, "--dump-dom")
    text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", dom, flags=re.S)))
    for t in tasks:
        if t not in text:
            fail(f"the rendered page lacks task {t!r}")
    with h5py.File(os.path.join(d, "results.h5"), "r") as f:
        c = f["pick/coeffs"][...].ravel()
    want = " ".join("%.4f" % x for x in c)
    if want not in text:
        fail(f"the rendered page lacks the pick's coefficients {want}")
    print(f"{page}: {len(raw)} bytes, screenshot variance {var}, tasks and pick c = {want} in the page")
    return dom, text


def case_report():
    if not shutil.which("chromium"):
        print("SKIP: Debian's chromium is not installed (scripts/setup.sh --tests installs it)")
        sys.exit(77)
    d, out = run("r-t3", "-map_tasks", "rot90,flip_v,shift", "-map_reevaluate", "3")
    with open(os.path.join(d, "run.log"), "w") as f:
        f.write(out)  # as scripts/default.sh keeps it: the report shows the phase times
    _, text = check_report(d, ["rot90", "flip_v", "shift"])
    phases = re.search(r"time per phase:(.*)", out).group(1)
    for name, sec in re.findall(r"(\w+) ([0-9.]+)s", phases):
        if f"{float(sec):.2f} s" not in text:
            fail(f"the report lacks the phase time {name} {sec}s of the run's summary")
    d, _ = run("r-nested", "-map_method", "nested")
    _, text = check_report(d, ["rot90", "flip_v", "permute", "shift"], screenshot=False)
    if "Merge tree" not in text or "none recorded" not in text:
        fail("the nested run's report lacks its merge tree or a 'none recorded' field")
    # task names are user input: markup in them is shown as text, never parsed
    d = os.path.join(WORK, "r-escape")
    shutil.rmtree(d, ignore_errors=True)
    names = ['<b id="inj">x&y</b>', 'q"<i>']
    mapmerge("run", "-map_eval_type", "analytic", "-map_analytic_problem", "quadratic", "-map_tasks", ",".join(names), "-map_output", d)
    dom, _ = check_report(d, names, screenshot=False)
    if re.search(r"<b[\s>]", dom) or "<i>" in dom:  # the serialised DOM escapes < in text: a raw one is an element
        fail("a task name's markup was parsed into the page")


# ---------------------------------------------------------------- metric
def case_metric():
    """a -map_metric loss:lower:0, run: drawn in loss units against front.csv's pred_loss_/real_loss_, the real
    front and the baselines are minima / the evaluated corners, and the labels and the report name the metric"""
    import matplotlib
    matplotlib.use("Agg")
    import plot_front
    from runfolder import Run
    tasks = ["rot90", "shift"]
    d, _ = run("m-t2", "-map_tasks", ",".join(tasks), "-map_reevaluate", "4", "-map_metric", "loss:lower:0,")
    r = Run(d)
    if r.metric["name"] != "loss" or r.sign != -1 or r.default_metric:
        fail(f"Run read the metric {r.metric} (sign {r.sign}), not loss, lower")
    figs = dict(plot_front.run_figures(r, "page"))
    panels = plot_front.plotted_arrays(figs[""])
    check_pairs(d, panels, tasks, small_grid=False, stem="loss")
    ax = [a for a in figs[""].axes if a.get_label() == "pair 0 1"][0]
    for got, t in ((ax.get_xlabel(), tasks[0]), (ax.get_ylabel(), tasks[1])):
        if got != f"loss {t} (lower is better)":
            fail(f"axis label {got!r}, expected 'loss {t} (lower is better)'")
    with h5py.File(os.path.join(d, "results.h5"), "r") as f:
        C, L = f["samples/coeffs"][...], f["samples/metric"][...]
        if "samples/accuracy" in f:
            fail("a loss run holds /samples/accuracy: the test does not exercise /samples/metric")
    # minima: no evaluated sample is at least as low on both tasks and lower on one than a real front point
    RF = panels["pair 0 1"]["real front (all evaluated)"]
    ok = np.all(np.isfinite(L), axis=1)
    for p in RF:
        if np.any(np.all(L[ok] <= p, axis=1) & np.any(L[ok] < p, axis=1)):
            fail(f"plotted real front point {p} is dominated (lower is better) by a sample")
    if RF[:, 0].min() > L[ok][:, 0].min():
        fail(f"the real front misses the lowest {tasks[0]} loss {L[ok][:, 0].min()} (a front of maxima?)")
    want = [L[k] for k in range(len(C)) if np.count_nonzero(C[k]) == 1 and C[k].max() == 1]
    if not want:
        fail("the reference design has no corner c = e_i")
    same_rows(panels["pair 0 1"]["fine-tuned"], np.array(want), "fine-tuned baselines vs /samples/metric at c = e_i")
    for fig in figs.values():
        matplotlib.pyplot.close(fig)
    print(f"loss:lower:0,: pair panel equals front.csv pred_loss_/real_loss_, {len(RF)} real front points are minima")
    sh([PY, os.path.join(POST, "report.py"), d])
    with open(os.path.join(d, "report.html")) as f:
        raw = f.read()
    text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(style|img)[^>]*>.*?(</style>|>)", "", raw, flags=re.S)))
    summary = text[text.index("Summary"):text.index("Figures")]
    if "loss (lower is better) (-map_metric loss:lower:0,)" not in summary:
        fail("the report's summary does not name the metric: " + summary[:600])
    for want in ("loss (lower is better)", "loss_rot90", "real_loss_ columns",
                 "no bounded range"):
        if want not in text:
            fail(f"the report lacks {want!r}")
    if re.search(r"accuracy", text):
        fail("the loss run's report speaks of accuracy: " + text[text.index("accuracy") - 80:][:160])
    if shutil.which("chromium"):
        check_report(d, tasks, screenshot=False)
    print("report names the metric, its direction and its columns")
    # failed evaluations (a worker that answers NaN at c_1 > 0.85, tests/run/metric_scorer.py): the report
    # lists each of /samples/failed with its coefficients; the plots leave them out
    scorer = os.path.join(SRC, "tests", "run", "metric_scorer.py")
    d, _ = run("m-failed", "-map_tasks", "rot90,flip_v", "-map_sample_type", "lhs", "-map_sample_n", "16", "-map_reevaluate", "2",
               "-map_eval_type", "worker", "-map_eval_worker_mode", "coefficients", "-map_eval_worker", f"{PY} {scorer} worker")
    with h5py.File(os.path.join(d, "results.h5"), "r") as f:
        C, failed = f["samples/coeffs"][...], sorted(int(i) for i in f["samples/failed"][...])
    if not failed:
        fail("the NaN worker's run records no failed evaluation: the test checks nothing")
    r = Run(d)
    figs = dict(plot_front.run_figures(r, "page"))
    drawn = plot_front.plotted_arrays(figs[""])["pair 0 1"]["samples"]
    if len(drawn) != int((r.sample_task < 0).sum()) - len(failed) or not np.all(np.isfinite(drawn)):
        fail(f"{len(drawn)} samples drawn of {len(C)} with {len(failed)} failed")
    sh([PY, os.path.join(POST, "report.py"), d])
    with open(os.path.join(d, "report.html")) as f:
        page = f.read()
    sec = page[page.index("<h2>Failed points</h2>"):]
    sec = sec[:sec.index("<h2>", 5)]
    rows = re.findall(r"<tr><td[^>]*>(\d+)</td>((?:<td[^>]*>[^<]*</td>)+)</tr>", sec)
    got = {int(i): [float(x) for x in re.findall(r">([^<]*)</td>", cells)] for i, cells in rows}
    if sorted(got) != failed:
        fail(f"the report lists failed samples {sorted(got)}, /samples/failed holds {failed}")
    for i in failed:
        if not np.allclose(got[i], C[i], rtol=0, atol=5e-5):
            fail(f"failed sample {i}: the report shows c = {got[i]}, results.h5 {C[i]}")
    if f"{len(failed)} failed evaluations" not in sec:
        fail("the report does not count the failed evaluations")
    print(f"report lists the {len(failed)} failed evaluations {failed} of /samples/failed with their coefficients")


# ---------------------------------------------------------------- quality
def hv2(P):
    """2-D hypervolume above 0 by sweeping (independent of quality.py's)"""
    P = P[np.argsort(-P[:, 0], kind="stable")]
    area, top = 0.0, 0.0
    for x, y in P:
        if y > top:
            area += x * (y - top)
            top = y
    return area


def case_quality():
    tasks = ["rot90", "shift"]
    d, out = run("q-t2", "-map_tasks", ",".join(tasks), "-map_reevaluate", "5")
    grid, truth = os.path.join(WORK, "q-grid.csv"), os.path.join(WORK, "q-grid-eval.csv")
    sh([PY, os.path.join(POST, "quality.py"), "grid", "--tasks", ",".join(tasks), "--n", "6", "--output", grid])
    mapmerge("eval", "-options_file_yaml", SMALL, "-map_store", store(), "-map_tasks", ",".join(tasks), "-map_coeffs", grid,
             "-map_output", truth)
    quality = [PY, os.path.join(POST, "quality.py"), "all", "--front", os.path.join(d, "front.csv"), "--truth", truth]
    default = sh(quality).stdout  # the README's example: no --front-columns
    explicit = sh(quality + ["--front-columns", "real_acc_", "--truth-columns", "acc_"]).stdout
    if default != explicit:
        fail(f"default columns differ from --front-columns real_acc_:\n{default}\n{explicit}")
    vals = dict(line.split()[:2] for line in default.splitlines() if len(line.split()) == 2)
    F = front_csv(d)
    real = np.column_stack([F["real_acc_" + t] for t in tasks])
    real = real[~np.isnan(real).any(axis=1)]
    if int(default.split("points found ")[1].split()[0]) != len(real):
        fail(f"quality.py counted other points than front.csv's {len(real)} re-evaluated ones:\n{default}")
    if abs(float(vals["hv_found"]) - hv2(real)) > 1e-12:
        fail(f"hv_found {vals['hv_found']} vs {hv2(real)} from front.csv's real_acc_ columns")
    printed = re.search(r"real \(\d+ re-evaluated\) ([0-9.]+)", out).group(1)
    if "%.6f" % float(vals["hv_found"]) != printed:
        fail(f"hv_found {vals['hv_found']} vs the run's summary {printed}")
    pred = sh(quality + ["--front-columns", "pred_acc_"]).stdout
    if "front columns pred_acc_" not in pred:
        fail("--front-columns pred_acc_ was not used")
    print(f"quality.py on front.csv without --front-columns: real_acc_, hv_found {vals['hv_found']} "
          f"(front.csv by hand {hv2(real):.17g}, the run's summary {printed})")


if __name__ == "__main__":
    {"plot": case_plot, "report": case_report, "quality": case_quality, "metric": case_metric}[sys.argv[1]]()
    print("PASS", sys.argv[1])
