#!/usr/bin/python3
"""`mapmerge run -map_budget N` (issue 18) on the small zoo: the run spends exactly N evaluations (its
journal), says so in the summary, results.h5 (/budget) and the manifest, gives the same bits at -n 1
and 2, and refuses a budget too small for a fit (naming the minimum) or one combined with the sizes
it allocates itself.

usage: test_budget.py CASE   (env: MAPMERGE, MAP_SOURCE_DIR, MAP_BINARY_DIR)
"""
import json
import os
import sys

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_run import SMALL, fail, fresh, mpi, runs_agree, setup_zoo  # noqa: E402


def journal_evaluations(run):
    with open(os.path.join(run, "journal.jsonl")) as f:
        return [json.loads(line.split("\t")[0])["kind"] for line in f if not line.startswith('{"kind":"header"')]


def case_spend():
    """-map_budget 31 on 2 tasks: design + refinement rounds + re-evaluations + pick = 31 journal lines"""
    store = setup_zoo()
    N = 31
    args = ["run", "-options_file_yaml", SMALL, "-map_store", store, "-map_tasks", "rot90,shift", "-map_seed", "2", "-map_budget", str(N)]
    a, out = runs_agree("budget", args, 2)
    kinds = journal_evaluations(a)
    if len(kinds) != N or kinds.count("pick") != 1:
        fail(f"journal of {a}: {len(kinds)} evaluations ({kinds.count('sample')} samples, {kinds.count('reeval')} re-evaluations, "
             f"{kinds.count('pick')} picks), expected {N} with one pick")
    with h5py.File(os.path.join(a, "results.h5"), "r") as f:
        b = {k: int(f["budget"][k][0]) for k in f["budget"]}
        n, rounds = f["samples/coeffs"].shape[0], f["samples/round"][...]
        kreal = f["pareto/real"].shape[0]
    if b["budget"] != N or b["spent"] != N or b["design"] + b["round_points"] + b["reevaluated"] + b["pick"] != N:
        fail(f"/budget {b} does not add up to {N}")
    if n != b["design"] + b["round_points"] or kreal != b["reevaluated"] or (rounds == 0).sum() != b["design"] or b["rounds"] < 1:
        fail(f"/budget {b} disagrees with the {n} samples (rounds {rounds}) and {kreal} re-evaluations")
    line = [l for l in out.splitlines() if l.startswith("budget %d evaluations, spent %d:" % (N, N))]
    if not line:
        fail("no budget line in the summary")
    m = json.load(open(os.path.join(a, "manifest.json")))
    if m.get("budget", {}).get("spent") != N:
        fail(f"manifest budget {m.get('budget')}")
    print(line[0])


def case_invalid():
    """too small for 2 tasks (F = 6 unknowns: at least 7), negative, or with sizes it allocates: clear errors"""
    store = setup_zoo()
    base = ["run", "-options_file_yaml", SMALL, "-map_store", store, "-map_tasks", "rot90,shift"]
    for extra, want in [(["-map_budget", "6"], "-map_budget 6 is too small for 2 tasks"),
                        (["-map_budget", "6"], "give at least 7"),
                        (["-map_budget", "-3"], "-map_budget -3: need 0"),
                        (["-map_budget", "40", "-map_refine", "2"], "drop -map_refine"),
                        (["-map_budget", "40", "-map_method", "nested"], "nested MAP"),
                        (["-map_budget", "40", "-map_budget_design", "-2"], "-map_budget_design -2")]:
        d = fresh("budget-bad")
        p = mpi(1, *base, *extra, "-map_output", d, check=False)
        text = p.stdout + p.stderr
        if p.returncode == 0 or want not in text or "Segmentation" in text:
            fail(f"{' '.join(extra)}: exit {p.returncode}, expected an error with {want!r}:\n{text[-1500:]}")
        if os.path.exists(os.path.join(d, "journal.jsonl")):
            fail(f"{' '.join(extra)}: a journal was started before the option was refused")
    print("every invalid budget refused up front")


CASES = {"spend": case_spend, "invalid": case_invalid}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("PASS", sys.argv[1])
