#!/usr/bin/python3
"""-map_metric and failed points (issue 16 item 3), real MPI runs on the small zoo:
  nan         a worker that answers NaN at an extreme coefficient: the run completes, the summary and
              results.h5 list the failed samples, a resume re-runs nothing (not even them)
  percent     a percentage scorer with the default metric: an error at the first evaluation that names
              the value, the task and -map_metric; nothing journaled
  loss_mlp    -map_metric loss:lower:0, with the mlp evaluator: a front of minima (no evaluated model
              dominates a front point when smaller is better), in the loss's own units
  perplexity  a command scorer that prints only {"perplexity": p}: softplus link, the front >= the bound,
              the metric in manifest.json; a resume with another -map_metric is refused
  nested      nested MAP with loss:lower:0, (each node the pair's minimum), a failed pair sample left out
              of the pair's fit, a failed fine-tuned leaf an error

usage: test_metric.py CASE   (env: MAPMERGE, MAP_SOURCE_DIR, MAP_BINARY_DIR)
"""
import csv, json, os, sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_run as tr  # noqa: E402  (the shared zoo, store and MPI helpers)

SCORER = os.path.join(tr.SRC, "tests", "run", "metric_scorer.py")
FAST = ["-map_tasks", "rot90,flip_v", "-map_sample_type", "lhs", "-map_sample_n", "16", "-map_reevaluate", "2", "-map_pareto_divisions", "6"]


def run(n, *args, check=True):
    return tr.mpi(n, "run", "-options_file_yaml", tr.SMALL, *args, check=check)


def front_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], np.array([[float(x) if x else np.nan for x in r] for r in rows[1:]])


def journal(path):
    return [json.loads(line.split("\t")[0]) for line in open(path)]


def case_nan():
    store = tr.setup_zoo()
    out = tr.fresh("metric-nan")
    args = ["-map_store", store, "-map_output", out, *FAST, "-map_eval_type", "worker", "-map_eval_worker_mode", "coefficients",
            "-map_eval_worker", f"/usr/bin/python3 {SCORER} worker"]
    p = run(2, *args)
    with h5py.File(os.path.join(out, "results.h5"), "r") as f:
        C, A = f["samples/coeffs"][...], f["samples/accuracy"][...]
        failed = sorted(int(i) for i in f["samples/failed"][...])
        listed = f.attrs["failed_evaluations"]
        listed = listed.decode() if isinstance(listed, bytes) else listed
    want = sorted(int(i) for i in np.nonzero(C[:, 0] > 0.85)[0])
    if not want:
        tr.fail("the design has no sample with c_1 > 0.85: the test checks nothing")
    if failed != want:
        tr.fail(f"samples/failed {failed}, expected the samples with c_1 > 0.85: {want}")
    if not np.all(np.isnan(A[want])) or np.isnan(np.delete(A, want, axis=0)).any():
        tr.fail("failed samples must hold NaN metrics and the others none")
    for i in want:
        if f"sample #{i}" not in listed or f"sample #{i}" not in p.stdout:
            tr.fail(f"sample #{i} is not listed as failed in results.h5 ({listed}) or the summary:\n{p.stdout[-2000:]}")
    if f"failed evaluations (a non-finite or missing accuracy" not in p.stdout:
        tr.fail("the summary does not report the failed evaluations:\n" + p.stdout[-2000:])
    entries = journal(os.path.join(out, "journal.jsonl"))
    bad = sorted(e["index"] for e in entries if e.get("failed") and e["kind"] == "sample")
    if bad != want:
        tr.fail(f"journal marks samples {bad} as failed, expected {want}")
    # a resume reads every line as done, the failed ones included: nothing evaluated, nothing appended
    n0 = len(entries)
    p = run(2, *args, "-map_resume")
    if len(journal(os.path.join(out, "journal.jsonl"))) != n0 or f"resuming {out} with {n0 - 1} journaled evaluations" not in p.stdout:
        tr.fail(f"the resume evaluated again ({n0} lines before):\n{p.stdout[-1500:]}")
    # two concurrent worker groups: the same failed samples, the same bits
    out2 = tr.fresh("metric-nan-g2")
    run(2, *[out2 if a == out else a for a in args], "-map_eval_groups", "2")
    tr.same_results(os.path.join(out, "results.h5"), os.path.join(out2, "results.h5"))
    print(f"PASS nan: samples {want} failed, journaled, listed, left out of the fit; the resume re-ran nothing; the same bits with 2 worker groups")


def case_percent():
    store = tr.setup_zoo()
    out = tr.fresh("metric-percent")
    p = run(2, "-map_store", store, "-map_output", out, *FAST, "-map_eval_type", "command", "-map_eval_command",
            f"/usr/bin/python3 {SCORER} percent {{model}} {{task}}", check=False)
    text = p.stdout + p.stderr
    for needle in ["task rot90", "accuracy 85 is outside [0, 1]", "-map_metric accuracy:higher:0,1", "-map_metric accuracy:higher:0,100"]:
        if needle not in text:
            tr.fail(f"the percentage error lacks '{needle}':\n{text[-2500:]}")
    if p.returncode == 0:
        tr.fail("a percentage scorer ran to the end")
    lines = journal(os.path.join(out, "journal.jsonl"))
    if len(lines) != 1:
        tr.fail(f"the error came after {len(lines) - 1} evaluations, not at the first")
    print("PASS percent: refused at the first evaluation, naming the value, the task and -map_metric")


def nested_tasks(tree, T):
    """the leaves (tasks) under each node of /nested/tree (columns left, right, ...)"""
    under = [[k] for k in range(T)]
    for k in range(T, len(tree)):
        under.append(under[int(tree[k, 0])] + under[int(tree[k, 1])])
    return under


def case_nested():
    """nested MAP with -map_metric loss:lower:0,: every merged node keeps the pair's LOWEST mean loss over
    its tasks (the metric's orientation), the same bits at -n 1 and 2; a failed evaluation inside a pair
    (a worker that answers NaN where every c_i > 0.85) is left out of the pair's fit and listed, while a
    fine-tuned leaf that fails is still an error that names it"""
    store = tr.setup_zoo()
    got = {}
    for n in (1, 2):
        out = tr.fresh(f"metric-nested-{n}")
        run(n, "-map_store", store, "-map_output", out, "-map_method", "nested", "-map_metric", "loss:lower:0,")
        with h5py.File(os.path.join(out, "results.h5"), "r") as f:
            got[n] = {k: f[k][...] for k in ("nested/tree", "samples/metric", "samples/round", "samples/coeffs", "pick/real")}
            cols = (f["nested"].attrs["tree_columns"].decode() if isinstance(f["nested"].attrs["tree_columns"], bytes)
                    else f["nested"].attrs["tree_columns"]).split(",")
    for k in got[1]:
        if not np.array_equal(got[1][k], got[2][k], equal_nan=True):
            tr.fail(f"nested loss run: /{k} differs between -n 1 and -n 2")
    tree, L, rnd = got[1]["nested/tree"], got[1]["samples/metric"], got[1]["samples/round"]
    T = (len(tree) + 1) // 2
    under, metric = nested_tasks(tree, T), cols.index("metric")
    for k in range(T, len(tree)):
        means = L[rnd == k][:, under[k]].mean(axis=1)
        if len(means) < 7 or not np.isclose(tree[k, metric], means.min(), rtol=1e-12, atol=0):
            tr.fail(f"node {k}: metric {tree[k, metric]}, the lowest mean loss of its {len(means)} evaluations is "
                    f"{means.min()} (highest {means.max()}): not the minimum")
    out = tr.fresh("metric-nested-nan")
    run(2, "-map_store", store, "-map_output", out, "-map_method", "nested", "-map_tasks", "rot90,flip_v", "-map_eval_type",
        "worker", "-map_eval_worker_mode", "coefficients", "-map_eval_worker", f"/usr/bin/python3 {SCORER} worker both")
    with h5py.File(os.path.join(out, "results.h5"), "r") as f:
        C, tree2 = f["samples/coeffs"][...], f["nested/tree"][...]
        failed = sorted(int(i) for i in f["samples/failed"][...])
    want = sorted(int(i) for i in np.flatnonzero(np.all(C > 0.85, axis=1)))
    if not want or failed != want:
        tr.fail(f"nested /samples/failed {failed}, expected the samples with every c_i > 0.85: {want}")
    if not np.all(np.isfinite(tree2[:, metric])):
        tr.fail(f"nested tree with a failed evaluation has a non-finite metric: {tree2[:, metric]}")
    out = tr.fresh("metric-nested-leaf")
    p = run(2, "-map_store", store, "-map_output", out, "-map_method", "nested", "-map_tasks", "rot90,flip_v", "-map_eval_type",
            "worker", "-map_eval_worker_mode", "coefficients", "-map_eval_worker", f"/usr/bin/python3 {SCORER} worker", check=False)
    text = p.stdout + p.stderr
    if p.returncode == 0 or not all(n in text for n in ("evaluation nested #", "(not finite); journaled as failed in")):
        tr.fail(f"nested MAP whose fine-tuned leaf fails exited {p.returncode} without naming the evaluation:\n{text[-2500:]}")
    print(f"PASS nested: loss nodes keep the pair's minimum, same bits at -n 1 and 2; failed pair samples {failed} left out "
          "and listed; a failing leaf is an error")


def case_loss_mlp():
    store = tr.setup_zoo()
    out = tr.fresh("metric-loss")
    run(2, "-map_store", store, "-map_output", out, *FAST, "-map_metric", "loss:lower:0,")
    one = tr.fresh("metric-loss-n1")
    run(1, "-map_store", store, "-map_output", one, *FAST, "-map_metric", "loss:lower:0,")
    tr.same_results(os.path.join(out, "results.h5"), os.path.join(one, "results.h5"))  # any rank count, the same bits
    head, F = front_csv(os.path.join(out, "front.csv"))
    T = 2
    if head[T:2 * T] != ["pred_loss_rot90", "pred_loss_flip_v"]:
        tr.fail(f"front.csv header {head}")
    pred, real = F[:, T:2 * T], F[:, 2 * T:]
    with h5py.File(os.path.join(out, "results.h5"), "r") as f:
        C, S, L = f["samples/coeffs"][...], f["samples/metric"][...], f["samples/loss"][...]
        g = f["surrogate/metric"]
        link, theta, (off, scale) = g.attrs["link"], g["params"][...], g["offset_scale"][...].ravel()
        if "surrogate/loss" in f or "surrogate/accuracy" in f:
            tr.fail("a loss run fits the metric only")
    if (link.decode() if isinstance(link, bytes) else link) != "softplus":
        tr.fail(f"loss:lower:0, fitted with link {link}, expected softplus")
    if not np.array_equal(S, L):
        tr.fail("samples/metric of a loss run differs from samples/loss")

    def surrogate(c):  # the fitted model of the loss, independently: off + scale * softplus(phi(c) . theta)
        phi = [1.0, *c] + [c[i] * c[j] for i in range(T) for j in range(i, T)]
        return off + scale * np.logaddexp(0.0, theta @ np.array(phi))

    def dominated(p, Q, tol):  # smaller is better
        return [q for q in Q if np.all(q <= p + tol) and np.any(q < p - tol)]
    # the search minimised: no front point is dominated by another, nor by the surrogate at any sample
    at_samples = np.array([surrogate(c) for c in C])
    for i, p in enumerate(pred):
        if not np.allclose(surrogate(F[i, :T]), p, rtol=1e-9):
            tr.fail(f"front point {i}: pred {p} is not the surrogate's value {surrogate(F[i, :T])} there")
        d = dominated(p, np.vstack([np.delete(pred, i, axis=0), at_samples]), 1e-6 * np.abs(p))
        if d:
            tr.fail(f"front point {i} {p} is dominated (minimisation) by {d[0]}: not a front of minima")
    # the real re-evaluated front points: no evaluated sample has a lower loss on every task
    for r in real[~np.isnan(real[:, 0])]:
        if dominated(r, S, 0):
            tr.fail(f"re-evaluated front point {r} is dominated by a sample's real losses {dominated(r, S, 0)[0]}")
    # a maximisation would sit above every sample; minima reach below the best sampled loss per task
    if not np.all(pred.min(axis=0) <= S.min(axis=0)):
        tr.fail(f"the predicted front's minima {pred.min(axis=0)} are above the best sampled losses {S.min(axis=0)}")
    ideal = S.min(axis=0)
    # export -map_run re-solves the run's search with its metric: the run's own pick, and the best
    # evaluated model for a corner preference is the one of lowest loss on that task
    merged = os.path.join(out, "merged.safetensors")
    tr.mpi(2, "export", "-map_store", store, "-map_run", out, "-map_output", merged)
    with h5py.File(os.path.join(out, "results.h5"), "r") as f:
        pick, RC, RF = f["pick/coeffs"][...].ravel(), f["pareto/real_front_coeffs"][...], f["pareto/real_front"][...]
    # for the run's own preference export takes the pick the run evaluated (a re-solve from the surrogate
    # as stored stopped 2e-10 away within TAO's tolerance, when export re-solved it)
    if not np.array_equal(tr.exported_coeffs(merged), pick):
        tr.fail(f"export -map_run picked {tr.exported_coeffs(merged)}, the run picked {pick}")
    tr.mpi(2, "export", "-map_store", store, "-map_run", out, "-map_preference", "1,0", "-map_export_model", "best_evaluated", "-map_output", merged)
    if not np.array_equal(tr.exported_coeffs(merged), RC[np.argmin(RF[:, 0])]):
        tr.fail(f"export best_evaluated for 1,0: c = {tr.exported_coeffs(merged)}, the lowest rot90 loss is at {RC[np.argmin(RF[:, 0])]}")
    print(f"PASS loss_mlp: {len(pred)} front points, minima {pred.min(axis=0)} <= best sampled {ideal}; none dominated")


def case_perplexity():
    store = tr.setup_zoo()
    out = tr.fresh("metric-ppl")
    args = ["-map_store", store, "-map_output", out, *FAST, "-map_eval_type", "command", "-map_eval_command",
            f"/usr/bin/python3 {SCORER} perplexity {{model}} {{task}}", "-map_metric", "perplexity:lower:1,"]
    run(2, *args)
    head, F = front_csv(os.path.join(out, "front.csv"))
    if head[2] != "pred_perplexity_rot90" or head[4] != "real_perplexity_rot90":
        tr.fail(f"front.csv header {head}")
    if not np.all(F[:, 2:4] >= 1):
        tr.fail(f"predicted perplexities below the declared bound 1: {F[:, 2:4].min()}")
    m = json.load(open(os.path.join(out, "manifest.json")))["metric"]
    if m["spec"] != "perplexity:lower:1," or m["link"] != "softplus" or m["direction"] != "lower":
        tr.fail(f"manifest metric {m}")
    hdr = journal(os.path.join(out, "journal.jsonl"))[0]
    if hdr["binding"].get("metric") != "perplexity:lower:1,":
        tr.fail(f"the journal binding lacks the metric: {hdr}")
    p = run(1, *args[:-1], "ppl:lower:1,", "-map_resume", check=False)
    if p.returncode == 0 or 'metric: journal "perplexity:lower:1,", this run "ppl:lower:1,"' not in p.stdout + p.stderr:
        tr.fail("a resume with another -map_metric was not refused:\n" + (p.stdout + p.stderr)[-2000:])
    print(f"PASS perplexity: {len(F)} front points >= 1, softplus link, recorded; another metric on resume refused")


if __name__ == "__main__":
    globals()["case_" + sys.argv[1]]()
