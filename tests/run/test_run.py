#!/usr/bin/python3
"""`mapmerge run` end to end with real MPI processes, real HDF5 files and the small Fashion-MNIST zoo:
bitwise-identical results across rank counts, interrupt (SIGUSR1) and resume, kill -9 and resume,
bad input that must fail cleanly and keep the journal intact.

usage: test_run.py CASE   (env: MAPMERGE, MAP_SOURCE_DIR, MAP_BINARY_DIR)
"""
import os, shutil, signal, subprocess, sys, time
import numpy as np
import h5py

MAPMERGE = os.environ["MAPMERGE"]
SRC = os.environ["MAP_SOURCE_DIR"]
BIN = os.environ["MAP_BINARY_DIR"]
WORK = os.path.join(BIN, "run-tests")
SMALL = os.path.join(SRC, "input", "small.yaml")


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def mpi(n, *args, check=True, **kw):
    cmd = ["mpiexec", "-n", str(n), "--oversubscribe", MAPMERGE] + list(args)
    p = subprocess.run(cmd, cwd=WORK, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
        fail(f"{' '.join(args[:1])} exited {p.returncode}")
    return p


def setup_zoo():
    """The small zoo (built by the zoo_small fixture in BIN/zoo-small) imported into our own store."""
    os.makedirs(WORK, exist_ok=True)
    link = os.path.join(WORK, "zoo-small")
    if not os.path.exists(link):
        try:
            os.symlink(os.path.join(BIN, "zoo-small"), link)
        except FileExistsError:
            pass
    if not os.path.exists(os.path.join(BIN, "zoo-small", "pretrained.safetensors")):
        mpi(2, "zoo", "-options_file_yaml", SMALL, "-map_output", os.path.join(BIN, "zoo-small"))
    store = os.path.join(WORK, "store-small.h5")
    if not os.path.exists(store):
        mpi(2, "import", "-options_file_yaml", SMALL, "-map_store", store)
    return store


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[...]
        f.visititems(visit)
    return out


def same_results(a, b):
    """Every dataset of two results.h5 files equal to the bit (attributes hold times and rank counts)."""
    da, db = datasets(a), datasets(b)
    if sorted(da) != sorted(db):
        fail(f"{a} and {b} hold different datasets: {sorted(da)} vs {sorted(db)}")
    for k in da:
        x, y = da[k], db[k]
        if x.dtype == object:  # variable-length strings: compare the values, not the pointers
            same = x.shape == y.shape and list(x.ravel()) == list(y.ravel())
        else:
            same = x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes()
        if not same:
            fail(f"dataset {k} differs between {a} and {b}")
    print(f"same bits: {len(da)} datasets of {a} and {b}")


def fresh(name):
    d = os.path.join(WORK, name)
    shutil.rmtree(d, ignore_errors=True)
    return d


def check_outputs(run, T):
    for f in ("results.h5", "front.csv", "manifest.json", "journal.jsonl"):
        if not os.path.exists(os.path.join(run, f)):
            fail(f"{run}/{f} missing")
    leftovers = [f for f in os.listdir(run) if ".tmp." in f]
    if leftovers:
        fail(f"temporary files left in {run}: {leftovers}")
    d = datasets(os.path.join(run, "results.h5"))
    n = d["samples/coeffs"].shape[0]
    acc = d["samples/accuracy"]
    task = d["samples/task"][:, None]
    seen = (task < 0) | (task == np.arange(T)[None, :])  # per-task Bayesian samples: one task evaluated
    if acc.shape != (n, T) or not np.all(seen == ~np.isnan(acc)) or not np.all((acc[seen] >= 0) & (acc[seen] <= 1)):
        fail("samples/accuracy malformed")
    if "pick/preference" in d:
        # the best evaluated model by the pick's criterion: one of the all-task evaluations, on the real
        # front (the criterion is minimised there), scoring no worse than the pick itself
        models = [acc[~np.isnan(acc).any(axis=1)], d["pick/real"]]
        if "pareto/real" in d:
            R = d["pareto/real"]
            models.append(R[~np.isnan(R).any(axis=1)])
        best = d["pick/best_evaluated_real"][0]
        if not any(np.array_equal(best, m) for M in models for m in M):
            fail(f"pick/best_evaluated_real {best} is none of the run's evaluations")
        if not any(np.array_equal(best, m) for m in d["pareto/real_front"]):
            fail(f"pick/best_evaluated_real {best} is not on the real front")
        if not d["pick/best_evaluated_value"][0, 0] <= d["pick/real_value"][0, 0]:
            fail(f"best evaluated value {d['pick/best_evaluated_value']} above the pick's {d['pick/real_value']}")
    k = d["pareto/coeffs"].shape[0]
    if k < 2 or d["pareto/predicted"].shape != (k, T):
        fail(f"front has {k} points")
    with open(os.path.join(run, "front.csv")) as f:
        header = f.readline().strip().split(",")
        rows = f.read().strip().splitlines()
    if len(header) != 3 * T or not header[0].startswith("c_") or len(rows) != k:
        fail(f"front.csv header {header} / {len(rows)} rows vs {k}")
    import json
    m = json.load(open(os.path.join(run, "manifest.json")))
    for key in ("options", "seed", "ranks", "versions", "inputs_sha256", "git_commit", "start_time", "end_time"):
        if key not in m:
            fail(f"manifest lacks {key}")
    print(f"outputs of {run}: {n} samples, front {k} points, manifest ok")


def case_ranks_analytic():
    os.makedirs(WORK, exist_ok=True)
    runs = []
    for n in (1, 2, 4):
        run = fresh(f"analytic-n{n}")
        mpi(n, "run", "-map_eval_type", "analytic", "-map_analytic_problem", "quadratic", "-map_tasks", "a,b,c",
            "-map_output", run, "-map_seed", "7")
        runs.append(run)
    check_outputs(runs[0], 3)
    for r in runs[1:]:
        same_results(os.path.join(runs[0], "results.h5"), os.path.join(r, "results.h5"))
    # TAO's own quasi-Newton method in place of the projected Newton: accepted, same bits at -n 1 and 2
    tao = []
    for n in (1, 2):
        run = fresh(f"analytic-blmvm-n{n}")
        mpi(n, "run", "-map_eval_type", "analytic", "-map_analytic_problem", "quadratic", "-map_tasks", "a,b,c",
            "-map_output", run, "-map_seed", "7", "-map_pareto_tao_type", "blmvm")
        tao.append(run)
    check_outputs(tao[0], 3)
    same_results(os.path.join(tao[0], "results.h5"), os.path.join(tao[1], "results.h5"))


def case_ranks_zoo():
    store = setup_zoo()
    runs = []
    for n in (1, 2, 3, 4):
        run = fresh(f"zoo-n{n}")
        mpi(n, "run", "-options_file_yaml", SMALL, "-map_store", store, "-map_tasks", "rot90,flip_v,shift",
            "-map_output", run, "-map_reevaluate", "4")
        runs.append(run)
    check_outputs(runs[0], 3)
    for r in runs[1:]:
        same_results(os.path.join(runs[0], "results.h5"), os.path.join(r, "results.h5"))
    # info describes a run folder
    p = mpi(2, "info", "-map_results", runs[0])
    for want in ("20 evaluated models, 3 tasks", "rot90", "front:", "pick for the preference:", "real(val)", "seed",
                 "best evaluated model by the pick's criterion"):
        if want not in p.stdout:
            print(p.stdout)
            fail(f"info -map_results lacks '{want}'")
    expect_error(["info", "-map_results", WORK], "is not the results.h5 of a mapmerge run")
    # the postprocess plot reads the results (pairs of tasks: 3 panels)
    png = os.path.join(runs[0], "front.png")
    p = subprocess.run(["/usr/bin/python3", os.path.join(SRC, "postprocess", "plot_front.py"), os.path.join(runs[0], "results.h5"),
                        "--output", png], capture_output=True, text=True)
    if p.returncode != 0 or open(png, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
        fail(f"plot_front.py failed: {p.stderr}")
    print(f"plot_front.py wrote {png} ({os.path.getsize(png)} bytes)")


RUN_ARGS = ["-map_tasks", "rot90,flip_v", "-map_sample_type", "lhs", "-map_sample_n", "150", "-map_reevaluate", "4"]


def journal_lines(run):
    """Journaled evaluations (whole lines after the header that binds the journal to its run)."""
    try:
        with open(os.path.join(run, "journal.jsonl")) as f:
            return sum(1 for l in f.read().split("\n")[:-1] if '"kind":"header"' not in l)
    except FileNotFoundError:
        return 0


def start_and_wait(run, store, n, lines):
    cmd = ["mpiexec", "-n", str(n), "--oversubscribe", MAPMERGE, "run", "-options_file_yaml", SMALL, "-map_store", store,
           "-map_output", run] + RUN_ARGS
    p = subprocess.Popen(cmd, cwd=WORK, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    t0 = time.time()
    while journal_lines(run) < lines:
        if p.poll() is not None:
            print(p.stdout.read()[-3000:])
            fail("run ended before it could be interrupted")
        if time.time() - t0 > 120:
            p.kill()
            fail("run made no progress")
        time.sleep(0.01)
    return p


def reference_run(store, n):
    ref = fresh(f"uninterrupted-n{n}")
    mpi(n, "run", "-options_file_yaml", SMALL, "-map_store", store, "-map_output", ref, *RUN_ARGS)
    return ref


def case_signal_resume(n):
    store = setup_zoo()
    ref = reference_run(store, n)
    run = fresh(f"signal-n{n}")
    p = start_and_wait(run, store, n, 10)
    os.kill(p.pid, signal.SIGUSR1)  # mpiexec forwards SIGUSR1 to every rank
    out, _ = p.communicate(timeout=120)
    if p.returncode != 85:
        print(out[-3000:])
        fail(f"interrupted run exited {p.returncode}, expected 85 (checkpointed)")
    done = journal_lines(run)
    if os.path.exists(os.path.join(run, "results.h5")):
        fail("an interrupted run wrote results.h5")
    print(f"interrupted after {done} journaled evaluations, exit 85")
    p2 = mpi(n, "run", "-options_file_yaml", SMALL, "-map_store", store, "-map_output", run, "-map_resume", *RUN_ARGS)
    if f"resuming {run} with {done} journaled" not in p2.stdout:
        print(p2.stdout[-2000:])
        fail("resume did not report the journaled evaluations")
    same_results(os.path.join(ref, "results.h5"), os.path.join(run, "results.h5"))


def case_kill_resume(n):
    store = setup_zoo()
    ref = reference_run(store, n)
    run = fresh(f"kill-n{n}")
    p = start_and_wait(run, store, n, 10)
    ranks = subprocess.run(["pgrep", "-f", "-P", str(p.pid), "mapmerge"], capture_output=True, text=True).stdout.split()
    if not ranks:
        fail("no rank processes found under mpiexec")
    os.kill(int(ranks[-1]), signal.SIGKILL)  # one rank dies with no chance to clean up
    out, _ = p.communicate(timeout=120)
    if p.returncode == 0:
        fail("the job survived kill -9 of a rank")
    if os.path.exists(os.path.join(run, "results.h5")):
        fail("a killed run left results.h5")
    done = journal_lines(run)
    print(f"killed a rank after {done} journaled evaluations; job exit {p.returncode}")
    p2 = mpi(n, "run", "-options_file_yaml", SMALL, "-map_store", store, "-map_output", run, "-map_resume", *RUN_ARGS)
    if "resuming" not in p2.stdout:
        fail("resume did not say so")
    same_results(os.path.join(ref, "results.h5"), os.path.join(run, "results.h5"))


def expect_error(args, pattern, n=2, run=None):
    p = mpi(n, *args, check=False)
    text = p.stdout + p.stderr
    if p.returncode == 0:
        fail(f"expected failure for {args}")
    if pattern not in text:
        print(text[-3000:])
        fail(f"message lacks '{pattern}'")
    if run and os.path.exists(os.path.join(run, "results.h5")):
        fail("a failed run left results.h5")
    print(f"ok: {pattern!r} (exit {p.returncode})")


def case_bad_input():
    store = setup_zoo()
    base = ["run", "-options_file_yaml", SMALL, "-map_store", store]
    run = fresh("bad")
    expect_error(base + ["-map_tasks", "rot90,nosuch", "-map_output", run], "nosuch", run=run)
    expect_error(base + ["-map_tasks", "rot90,flip_v", "-map_output", run, "-map_sampel_type", "lhs"], "-map_sampel_type", run=run)
    expect_error(base + ["-map_tasks", "rot90", "-map_output", run], "2 to 64 tasks", run=run)
    expect_error(base + ["-map_tasks", "rot90,flip_v", "-map_output", run, "-map_method", "nested", "-map_refine", "1"], "-map_refine applies", run=run)
    # the options added with the Newton search and the refinement rounds: out-of-range values are errors
    expect_error(base + ["-map_tasks", "rot90,flip_v", "-map_output", run, "-map_refine", "-1"], "-map_refine", run=run)
    expect_error(base + ["-map_tasks", "rot90,flip_v", "-map_output", run, "-map_pareto_chain", "0"], "-map_pareto_chain", run=run)
    expect_error(base + ["-map_tasks", "rot90,flip_v", "-map_output", run, "-map_surrogate_lm_ftol", "-1"], "-map_surrogate_lm_xtol, _gtol and _ftol",
                 run=run)
    # a typo in a TAO option of the search is caught up front, like any other
    expect_error(base + ["-map_tasks", "rot90,flip_v", "-map_output", run, "-map_pareto_tao_tpye", "blmvm"], "-map_pareto_tao_tpye", run=run)
    expect_error(base + ["-map_tasks", "rot90,flip_v", "-map_preference", "1,2,3", "-map_output", run], "-map_preference", run=run)
    # per-task Bayesian rounds: an unknown mode; a journal line (valid checksum) with null where a coefficient
    # belongs (null marks an unevaluated metric only)
    expect_error(base + ["-map_tasks", "rot90,flip_v", "-map_method", "bayesian", "-map_bayes_evaluate", "pertask", "-map_output", run],
                 "pertask for -map_bayes_evaluate", run=run)
    import hashlib
    os.makedirs(run, exist_ok=True)
    line = '{"kind":"sample","index":0,"T":2,"c":[null,1],"acc":[0.5,null],"loss":[1,null]}'
    with open(os.path.join(run, "journal.jsonl"), "w") as f:
        f.write(line + "\t" + hashlib.sha256(line.encode()).hexdigest() + "\n")
    expect_error(base + ["-map_tasks", "rot90,flip_v", "-map_output", run, "-map_resume"], "c[0] is not a number", run=run)
    shutil.rmtree(run)
    expect_error(base + ["-map_tasks", "rot90,flip_v", "-map_output", "/proc/nonexistent/run"], "-map_output", run=run)
    expect_error(base + ["-map_tasks", "rot90,flip_v", "-map_sample_type", "lhs", "-map_sample_n", "3", "-map_output", run],
                 "rank", run=run)
    # a failing external evaluator: journaled evaluations before it stay intact
    run = fresh("bad-eval")
    script = os.path.join(WORK, "flaky_eval.py")
    with open(script, "w") as f:
        f.write("import json, os, sys\n"
                "n = int(open(sys.argv[1]).read()) if os.path.exists(sys.argv[1]) else 0\n"
                "open(sys.argv[1], 'w').write(str(n + 1))\n"
                "if n >= 7: sys.exit('evaluator crashed on purpose')\n"
                "print(json.dumps({'accuracy': 0.5 + 0.01 * n, 'loss': 1.0}))\n")
    counter = os.path.join(WORK, "flaky.count")
    if os.path.exists(counter):
        os.remove(counter)
    expect_error(["run", "-map_store", store, "-map_tasks", "rot90,flip_v", "-map_eval_type", "command",
                  "-map_eval_command", f"/usr/bin/python3 {script} {counter} {{model}} {{task}}", "-map_output", run],
                 "evaluator crashed on purpose", run=run)
    lines = journal_lines(run)
    if lines != 3:  # 7 task evaluations succeeded = 3 full coefficient vectors (2 tasks each)
        fail(f"journal has {lines} lines after the evaluator failed, expected 3")
    # resuming with another design is refused, not silently mixed
    run = fresh("mismatch")
    mpi(2, *base, "-map_tasks", "rot90,flip_v", "-map_output", run, "-map_sample_type", "lhs", "-map_sample_n", "12")
    expect_error(base + ["-map_tasks", "rot90,flip_v", "-map_output", run, "-map_resume", "-map_sample_type", "lhs",
                         "-map_sample_n", "12", "-map_seed", "5"], "design.seed")
    expect_error(base + ["-map_tasks", "rot90,flip_v", "-map_output", run], "-map_resume")
    # a replay of something that is not a run manifest, an export from a folder that is not a run
    notjson = os.path.join(WORK, "not-a-manifest.json")
    with open(notjson, "w") as f:
        f.write("{ this is not json")
    out = fresh("replay-bad")
    expect_error(["run", "-map_replay", notjson, "-map_output", out], "not JSON", run=out)
    with open(notjson, "w") as f:
        f.write('{"tasks": ["a"]}')
    expect_error(["run", "-map_replay", notjson, "-map_output", out], "not a mapmerge run manifest", run=out)
    expect_error(["run", "-map_replay", os.path.join(WORK, "nonexistent.json"), "-map_output", out], "cannot read the manifest", run=out)
    merged = os.path.join(WORK, "from-nothing.safetensors")
    expect_error(["export", "-map_store", store, "-map_run", WORK, "-map_output", merged], "cannot read")
    if os.path.exists(merged):
        fail("export from a non-run folder left a file")
    print("PASS bad input")


def case_disk_full():
    store = setup_zoo()
    mnt = os.path.join(WORK, "tiny-fs")
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["umount", mnt], capture_output=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"SKIP: cannot mount a small tmpfs here ({r.stderr.strip()})")
        sys.exit(77)
    try:
        run = os.path.join(mnt, "run")
        expect_error(["run", "-options_file_yaml", SMALL, "-map_store", store, "-map_output", run] + RUN_ARGS,
                     "disk full", run=run)
        # every journal line that made it to disk is whole and checksummed
        with open(os.path.join(run, "journal.jsonl")) as f:
            data = f.read()
        if data and not data.endswith("\n"):
            fail("torn journal line left on a full disk")
        print(f"disk full: journal keeps {data.count(chr(10))} whole lines")
    finally:
        subprocess.run(["umount", mnt], capture_output=True)


def runs_agree(name, args, T, nps=(1, 2)):
    """`mapmerge` args run at each rank count of nps into fresh folders <name>-n<np>: the first run's
    outputs checked, every other run the same bits; returns the first folder and its output"""
    runs = [(fresh(f"{name}-n{n}"), n) for n in nps]
    first = None
    for run, n in runs:
        p = mpi(n, *args, "-map_output", run)
        first = first or p
    check_outputs(runs[0][0], T)
    for run, _ in runs[1:]:
        same_results(os.path.join(runs[0][0], "results.h5"), os.path.join(run, "results.h5"))
    return runs[0][0], first.stdout


def case_bayes_replay():
    """Bayesian MAP gives the same bits at -n 1 and 3; -map_replay of its manifest repeats it exactly."""
    store = setup_zoo()
    args = ["run", "-options_file_yaml", SMALL, "-map_store", store, "-map_tasks", "rot90,shift", "-map_method", "bayesian",
            "-map_bayes_iterations", "2", "-map_seed", "11", "-map_reevaluate", "4"]
    a, _ = runs_agree("bayes", args, 2, (1, 3))
    c = fresh("bayes-replay")
    with h5py.File(os.path.join(a, "results.h5"), "r") as f:
        rounds = f["samples/round"][...]
    if rounds.max() != 2 or (rounds == 0).sum() == 0:
        fail(f"samples/round does not show 2 Bayesian rounds: {rounds}")
    p = mpi(2, "run", "-map_replay", os.path.join(a, "manifest.json"), "-map_output", c)
    if "replaying" not in p.stdout:
        fail("replay did not say so")
    same_results(os.path.join(a, "results.h5"), os.path.join(c, "results.h5"))


def resume_from_cut(a, c, args, drop):
    """a run folder c holding run a's sample evaluations but the last `drop` (an interruption), resumed at
    -n 2, ends with the same bits as a"""
    os.makedirs(c)
    lines = open(os.path.join(a, "journal.jsonl")).read().splitlines(True)
    samples = [l for l in lines if l.startswith('{"kind":"sample"')]
    header = [l for l in lines if l.startswith('{"kind":"header"')]  # binds the journal to its run
    with open(os.path.join(c, "journal.jsonl"), "w") as f:
        f.writelines(header + samples[:-drop])
    mpi(2, *args, "-map_output", c, "-map_resume")
    same_results(os.path.join(a, "results.h5"), os.path.join(c, "results.h5"))


def case_bayes_per_task():
    """-map_bayes_evaluate per_task: each round draws 2 points per task, evaluated on that task only
    (samples/task, NaN elsewhere, null in the journal); each such metric is the same bits as a full
    `mapmerge eval` of that point; the same bits at -n 1 and 2 and after a resume cut inside round 2."""
    store = setup_zoo()
    tasks = ["rot90", "shift"]
    args = ["run", "-options_file_yaml", SMALL, "-map_store", store, "-map_tasks", ",".join(tasks), "-map_method", "bayesian",
            "-map_bayes_evaluate", "per_task", "-map_bayes_iterations", "2", "-map_bayes_batch", "2", "-map_seed", "7",
            "-map_reevaluate", "3"]
    a, out = runs_agree("bayes-pt", args, 2)
    c = fresh("bayes-pt-resume")
    if "on one task each" not in out:
        fail("the summary does not count the one-task samples")
    with h5py.File(os.path.join(a, "results.h5"), "r") as f:
        task = f["samples/task"][...]
        rounds = f["samples/round"][...]
        C = f["samples/coeffs"][...]
        A = f["samples/accuracy"][...]
    n0 = int((rounds == 0).sum())
    if np.any(task[:n0] != -1) or np.any(np.isnan(A[:n0])):
        fail("the initial design is not evaluated on every task")
    late = np.arange(n0, len(task))
    if len(late) != 2 * 2 * 2 or sorted(task[late].tolist()) != [0] * 4 + [1] * 4:
        fail(f"expected 2 rounds x 2 tasks x 2 points after the design, got tasks {task[late]}")
    for i in late:
        t = int(task[i])
        if np.isnan(A[i, t]) or not np.isnan(A[i, 1 - t]):
            fail(f"sample {i} (task {t}): accuracies {A[i]}, expected task {t} only")
    journal = open(os.path.join(a, "journal.jsonl")).read()
    if "null" not in journal:
        fail("no null metric in the journal")
    # the one-task metrics are those of a full evaluation of the same points
    csv = os.path.join(a, "late.csv")
    with open(csv, "w") as f:
        f.write(",".join(tasks) + "\n")
        for i in late:
            f.write(",".join(repr(float(x)) for x in C[i]) + "\n")
    mpi(2, "eval", "-options_file_yaml", SMALL, "-map_store", store, "-map_tasks", ",".join(tasks), "-map_coeffs", csv,
        "-map_output", os.path.join(a, "late_eval.h5"))
    with h5py.File(os.path.join(a, "late_eval.h5"), "r") as f:
        full = f["accuracy"][...]
    for k, i in enumerate(late):
        t = int(task[i])
        if full[k, t].tobytes() != A[i, t].tobytes():
            fail(f"sample {i}: one-task accuracy {A[i, t]!r} vs full evaluation {full[k, t]!r}")
    print(f"{len(late)} one-task samples match full evaluations bit for bit")
    resume_from_cut(a, c, args, 3)  # interrupted inside round 2


def case_refine():
    """-map_refine: 2 rounds of 4 predicted-front points join the design (samples/round 1 and 2, on the
    box), the same bits at -n 1 and 2, and a run resumed from a journal cut inside round 2 ends with the
    same bits too."""
    store = setup_zoo()
    args = ["run", "-options_file_yaml", SMALL, "-map_store", store, "-map_tasks", "rot90,shift", "-map_refine", "2",
            "-map_refine_points", "4", "-map_seed", "5", "-map_reevaluate", "3"]
    a, out = runs_agree("refine", args, 2)
    c = fresh("refine-resume")
    if "refine round 2" not in out:
        fail("no refine round 2 in the output")
    with h5py.File(os.path.join(a, "results.h5"), "r") as f:
        rounds = f["samples/round"][...]
        C = f["samples/coeffs"][...]
    n0 = int((rounds == 0).sum())
    if n0 != 12 or (rounds == 1).sum() == 0 or (rounds == 2).sum() == 0 or len(rounds) > n0 + 8:
        fail(f"samples/round {rounds}: expected the 12-point design, then up to 4 points in each of rounds 1 and 2")
    if np.any(C < 0) or np.any(C > 1) or len(np.unique(C, axis=0)) != len(C):
        fail("refine points off the box or repeated")
    resume_from_cut(a, c, args, 2)  # interrupted inside round 2


def case_refine_pick():
    """-map_refine_target pick: each of 3 rounds evaluates the current fit's pick as one new sample (none
    when the pick is a point already sampled); the same bits at -n 1 and 2 and after a resume that lost
    the last two rounds' samples."""
    store = setup_zoo()
    args = ["run", "-options_file_yaml", SMALL, "-map_store", store, "-map_refine", "3", "-map_refine_target", "pick",
            "-map_sample_type", "lhs", "-map_sample_n", "30", "-map_preference", "2,1,1,1", "-map_seed", "3", "-map_reevaluate", "2"]
    a, _ = runs_agree("refine-pick", args, 4)
    c = fresh("refine-pick-resume")
    with h5py.File(os.path.join(a, "results.h5"), "r") as f:
        rounds = f["samples/round"][...]
        pick_pred, pick_real = f["pick/predicted"][0], f["pick/real"][0]
    later = list(rounds[30:])
    if (rounds[:30] != 0).any() or not later or later[0] != 1 or later != sorted(set(later)) or later[-1] > 3:
        fail(f"samples/round {rounds}: expected 30 design points, then at most one pick per round 1..3")
    # the final fit has seen the last rounds' picks: its prediction at the pick is close to the real model
    err = float(np.abs(pick_pred - pick_real).max())
    print(f"pick prediction error after 3 pick rounds: {err:.4f}")
    resume_from_cut(a, c, args, 2)
    expect_error(args[:-2] + ["-map_refine_target", "knee", "-map_output", fresh("refine-pick-bad")], "knee")
    expect_error(["run", "-options_file_yaml", SMALL, "-map_store", store, "-map_refine_target", "pick", "-map_output",
                  fresh("refine-pick-none")], "add -map_refine R")


def case_nested():
    """Nested MAP on the 4-task small zoo: a full merge tree, the same bits at -n 1 and 3."""
    store = setup_zoo()
    args = ["run", "-options_file_yaml", SMALL, "-map_store", store, "-map_method", "nested", "-map_preference", "1,2,1,1"]
    a, b, d = fresh("nested-n1"), fresh("nested-n3"), fresh("nested-n4")
    p = mpi(1, *args, "-map_output", a)
    mpi(3, *args, "-map_output", b)  # level 1: its 2 pairs run concurrently on groups of 1 and 2 ranks
    mpi(4, *args, "-map_output", d)  # ... on 2 groups of 2 ranks
    same_results(os.path.join(a, "results.h5"), os.path.join(b, "results.h5"))
    same_results(os.path.join(a, "results.h5"), os.path.join(d, "results.h5"))
    with h5py.File(os.path.join(a, "results.h5"), "r") as f:
        tree = f["nested/tree"][...]
        W = f["nested/coeffs"][...]
        n = f["samples/coeffs"].shape[0]
    T = 4
    if tree.shape[0] != 2 * T - 1:
        fail(f"merge tree has {tree.shape[0]} nodes, expected {2 * T - 1}")
    if n != T + (T - 1) * 13:
        fail(f"{n} evaluated models, expected {T + (T - 1) * 13}")
    # each internal node's coefficients are c_left * W_left + c_right * W_right over the original tasks
    for k in range(T, 2 * T - 1):
        l, r, c0, c1 = int(tree[k, 0]), int(tree[k, 1]), tree[k, 3], tree[k, 4]
        if not np.allclose(W[k], c0 * W[l] + c1 * W[r], rtol=0, atol=1e-15):
            fail(f"node {k}: coefficients are not the merge of its children")
    if "merge tree (7 nodes" not in p.stdout:
        fail("summary lacks the merge tree")
    print(f"nested: {tree.shape[0]} nodes, {n} evaluations, root coefficients {W[-1]}")
    # a nested run's model is its tree's root: asking export for its best evaluated model is an error
    out = os.path.join(a, "best.safetensors")
    expect_error(["export", "-map_store", store, "-map_run", a, "-map_export_model", "best_evaluated", "-map_output", out],
                 "is nested MAP")
    if os.path.exists(out):
        fail("a failed export left its output")


def case_nested_chain():
    """A nested-MAP chain as SLURM runs it: each (level, pair) a separate job in one run folder; the
    last job writes the same results as one uninterrupted nested run; a level started too early fails."""
    store = setup_zoo()
    args = ["run", "-options_file_yaml", SMALL, "-map_store", store, "-map_method", "nested", "-map_preference", "1,2,1,1"]
    whole, chain = fresh("chain-whole"), fresh("chain")
    mpi(2, *args, "-map_output", whole)
    early = fresh("chain-early")
    expect_error(args + ["-map_output", early, "-map_nested_level", "2", "-map_nested_pair", "0"], "run that level's jobs first")
    # level 1: its two pairs run concurrently, as an array job would
    cmds = [["mpiexec", "-n", "1", "--oversubscribe", MAPMERGE] + args + ["-map_output", chain, "-map_nested_level", "1",
            "-map_nested_pair", str(p)] for p in (0, 1)]
    procs = [subprocess.Popen(c, cwd=WORK, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in cmds]
    for pr in procs:
        out, _ = pr.communicate(timeout=300)
        if pr.returncode != 0 or "done" not in out:
            print(out[-2000:])
            fail("a level-1 pair job failed")
    if os.path.exists(os.path.join(chain, "results.h5")):
        fail("a level-1 job wrote results")
    mpi(2, *args, "-map_output", chain, "-map_nested_level", "2", "-map_nested_pair", "0")
    expect_error(args + ["-map_output", chain, "-map_nested_level", "1", "-map_nested_pair", "5", "-map_resume"], "has 2 pair(s)")
    same_results(os.path.join(whole, "results.h5"), os.path.join(chain, "results.h5"))


def exported_coeffs(path):
    """The coefficients in an exported safetensors file's metadata."""
    import json, struct
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(n))["__metadata__"]
    if "coefficients" not in meta:
        fail(f"{path}: exported metadata lacks the coefficients: {json.dumps(meta)}")
    return np.array([float(x) for x in meta["coefficients"].split(",")])


def case_export_pick():
    """export -map_run DIR -map_preference w writes the run's pick for w (the same coefficients); with
    -map_export_model best_evaluated, the evaluated model of highest w-weighted mean accuracy."""
    store = setup_zoo()
    run = fresh("export-pick")
    mpi(2, "run", "-options_file_yaml", SMALL, "-map_store", store, "-map_tasks", "rot90,shift", "-map_preference", "3,1",
        "-map_output", run, "-map_reevaluate", "2")
    out = os.path.join(run, "merged.safetensors")
    mpi(2, "export", "-map_store", store, "-map_run", run, "-map_preference", "3,1", "-map_output", out)
    d = datasets(os.path.join(run, "results.h5"))
    got, pick = exported_coeffs(out), d["pick/coeffs"].ravel()
    if not np.array_equal(got, pick):  # the run's own preference: its pick itself, not a re-solve near it
        fail(f"export picked {got}, the run picked {pick}")
    print(f"export -map_run: c = {got} equals the run's pick {pick}")
    # best evaluated, ranked by the pick's criterion: for the run's preference (at any scale) the run's own
    # /pick/best_evaluated_coeffs; for a corner preference (1,0 / 0,1) the criterion is that task's
    # accuracy alone: the real front's first model of top accuracy on it
    C, A = d["pareto/real_front_coeffs"], d["pareto/real_front"]
    for pref, want in (("3,1", d["pick/best_evaluated_coeffs"].ravel()), ("6,2", d["pick/best_evaluated_coeffs"].ravel()),
                       ("1,0", C[np.argmax(A[:, 0])]), ("0,1", C[np.argmax(A[:, 1])])):
        best = os.path.join(run, f"best-{pref.replace(',', '_')}.safetensors")
        mpi(2, "export", "-map_store", store, "-map_run", run, "-map_preference", pref, "-map_export_model", "best_evaluated",
            "-map_output", best)
        got = exported_coeffs(best)  # written with %.17g: the same doubles
        if not np.array_equal(got, want):
            fail(f"export -map_export_model best_evaluated for {pref}: c = {got}, the best evaluated model is {want}")
        print(f"export best_evaluated for preference {pref}: c = {got}")
    # a run searched with non-default options: export searches its surrogates with the same ones (from its
    # manifest) and so returns the run's own pick
    ws = fresh("export-pick-ws")
    mpi(2, "run", "-options_file_yaml", SMALL, "-map_store", store, "-map_tasks", "rot90,flip_v,shift", "-map_preference", "1,2,1",
        "-map_output", ws, "-map_reevaluate", "1", "-map_pareto_scalarization", "weighted_sum", "-map_pareto_starts", "3")
    p = mpi(2, "export", "-map_store", store, "-map_run", ws, "-map_preference", "1,2,1", "-map_output", out + "-ws")
    if "-map_pareto_scalarization weighted_sum" not in p.stdout:
        fail(f"export does not say it took the run's search options: {p.stdout}")
    with h5py.File(os.path.join(ws, "results.h5"), "r") as f:
        pick_ws = f["pick/coeffs"][...].ravel()
    if not np.allclose(exported_coeffs(out + "-ws"), pick_ws, rtol=0, atol=1e-6):  # the solver's tolerance: the run also starts from its front
        fail(f"export of a weighted-sum run: c = {exported_coeffs(out + '-ws') - pick_ws} off the run's pick {pick_ws}")
    expect_error(["export", "-map_store", store, "-map_run", run, "-map_preference", "1,1,1", "-map_output", out + "2"],
                 "-map_preference has 3 weights")
    expect_error(["export", "-map_store", store, "-map_coeff", "1,1", "-map_export_model", "best_evaluated", "-map_output", out + "3"],
                 "it needs -map_run")
    expect_error(["export", "-map_store", store, "-map_run", run, "-map_export_model", "best", "-map_output", out + "4"],
                 "best")
    # a run folder whose manifest.json is not JSON: export names it and writes nothing
    bad = fresh("export-pick-badmanifest")
    shutil.copytree(run, bad, dirs_exist_ok=True)
    with open(os.path.join(bad, "manifest.json"), "w") as f:
        f.write("{not json")
    expect_error(["export", "-map_store", store, "-map_run", bad, "-map_output", out + "5"], "manifest.json: not JSON")
    for o in (out + "2", out + "3", out + "4", out + "5"):
        if os.path.exists(o):
            fail(f"a failed export left {o}")


CASES = {
    "export_pick": case_export_pick,
    "nested_chain": case_nested_chain,
    "nested": case_nested,
    "bayes_replay": case_bayes_replay,
    "bayes_per_task": case_bayes_per_task,
    "refine": case_refine,
    "refine_pick": case_refine_pick,
    "ranks_analytic": case_ranks_analytic,
    "ranks_zoo": case_ranks_zoo,
    "signal_resume_2": lambda: case_signal_resume(2),
    "signal_resume_4": lambda: case_signal_resume(4),
    "kill_resume_2": lambda: case_kill_resume(2),
    "kill_resume_4": lambda: case_kill_resume(4),
    "bad_input": case_bad_input,
    "disk_full": case_disk_full,
}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("PASS", sys.argv[1])
