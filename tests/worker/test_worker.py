#!/usr/bin/python3
"""The persistent worker evaluator (-map_eval_type worker, issue 16) with real MPI runs on the small
zoo: examples/torch_worker.py against the built-in mlp evaluator (model and coefficients mode),
restart-once on every kind of worker failure, a clear error after the second failure, and a MAP run
whose worker is killed mid-run ending with the same results as an undisturbed run.

usage: test_worker.py CASE   (env: MAPMERGE, MAP_SOURCE_DIR, MAP_BINARY_DIR)"""
import csv, glob, os, shutil, signal, subprocess, sys, time

import h5py

MAPMERGE = os.environ["MAPMERGE"]
SRC = os.environ["MAP_SOURCE_DIR"]
BIN = os.environ["MAP_BINARY_DIR"]
WORK = os.path.join(BIN, "worker-tests")
SMALL = os.path.join(SRC, "input", "small.yaml")
PY = "/usr/bin/python3"
TORCH_WORKER = f"{PY} {SRC}/examples/torch_worker.py"
NP_WORKER = f"{PY} {SRC}/tests/worker/np_worker.py"
TMP = os.path.join(WORK, "tmp")  # TMPDIR of the runs: nothing may be left in it


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def mpi(n, *args, check=True, timeout=300):
    env = dict(os.environ, TMPDIR=TMP)
    p = subprocess.run(["mpiexec", "-n", str(n), "--oversubscribe", MAPMERGE] + list(args), cwd=WORK, env=env,
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
        fail(f"{args[0]} exited {p.returncode}")
    return p


def setup():
    shutil.rmtree(TMP, ignore_errors=True)  # leftovers of an earlier, killed test run
    os.makedirs(TMP, exist_ok=True)
    link = os.path.join(WORK, "zoo-small")
    if not os.path.exists(link):
        os.symlink(os.path.join(BIN, "zoo-small"), link)
    store = os.path.join(WORK, "store-small.h5")
    if not os.path.exists(store):
        mpi(2, "import", "-options_file_yaml", SMALL, "-map_store", store)
    coeffs = os.path.join(WORK, "coeffs.csv")
    with open(coeffs, "w") as f:
        f.write("rot90,flip_v,permute,shift\n0.3,0.3,0.3,0.3\n1,0,0,0\n0.5,0.2,0.7,0.1\n0,0,0,0\n1.2,-0.1,0.4,0.9\n")
    return store, coeffs


def read_csv(path):
    with open(path) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def no_temporaries():
    left = [f for f in glob.glob(os.path.join(TMP, "*")) if not os.path.basename(f).startswith("ompi.")]  # Open MPI's session folder
    if left:
        fail(f"temporary files left in TMPDIR: {left}")


def evaluate(store, coeffs, out, *extra, n=2):
    mpi(n, "eval", "-options_file_yaml", SMALL, "-map_store", store, "-map_coeffs", coeffs, "-map_output", out, *extra)
    no_temporaries()
    return read_csv(out + ".csv")


def close(a, b, tag, tol=1e-5):
    worst = 0.0
    for ra, rb in zip(a, b):
        for k in ra:
            if k.startswith(("acc_", "loss_")):
                worst = max(worst, abs(ra[k] - rb[k]))
    if len(a) != len(b) or worst > tol:
        fail(f"{tag}: metrics differ from mlp's by {worst:g} (> {tol:g}) or in count ({len(a)} vs {len(b)})")
    print(f"{tag}: {len(a)} vectors x {sum(k.startswith('acc_') for k in a[0])} tasks within {worst:.2g} of mlp")


def case_torch_vs_mlp():
    store, coeffs = setup()
    ref = evaluate(store, coeffs, os.path.join(WORK, "mlp"))
    close(evaluate(store, coeffs, os.path.join(WORK, "torch-model"), "-map_eval_type", "worker", "-map_eval_worker", TORCH_WORKER),
          ref, "torch worker, model mode")
    close(evaluate(store, coeffs, os.path.join(WORK, "torch-coef"), "-map_eval_type", "worker", "-map_eval_worker", TORCH_WORKER,
                   "-map_eval_worker_mode", "coefficients"), ref, "torch worker, coefficients mode")
    # a BF16 model file is a different model: close to, not equal to, the F32 merge
    bf = evaluate(store, coeffs, os.path.join(WORK, "torch-bf16"), "-map_eval_type", "worker", "-map_eval_worker", TORCH_WORKER,
                  "-map_eval_worker_dtype", "bf16", n=1)
    close(bf, ref, "torch worker, BF16 model file", tol=0.05)
    # a MAP run: the worker ("data_per_request") also scores the pick on the -map_test_data sets, so one
    # worker starts, and the run's evaluations and the pick's test metrics are mlp's
    args = ["run", "-options_file_yaml", SMALL, "-map_store", store, "-map_tasks", "rot90,flip_v", "-map_sample_type", "lhs",
            "-map_sample_n", "6", "-map_reevaluate", "1"]
    runs = {}
    for name, extra in (("mlp", []), ("torch", ["-map_eval_type", "worker", "-map_eval_worker", TORCH_WORKER, "-map_eval_worker_mode", "coefficients"])):
        runs[name] = os.path.join(WORK, f"run-test-{name}")
        shutil.rmtree(runs[name], ignore_errors=True)
        mpi(2, *args, "-map_output", runs[name], *extra)
    with h5py.File(os.path.join(runs["mlp"], "results.h5")) as a, h5py.File(os.path.join(runs["torch"], "results.h5")) as b:
        worst = max(abs(float(x) - float(y)) for key in ("pick/real", "pick/real_loss", "pick/test", "pick/test_loss", "samples/accuracy")
                    for x, y in zip(a[key][...].ravel(), b[key][...].ravel()))
    if worst > 1e-5:
        fail(f"MAP run with the torch worker: the pick's metrics (val and test) differ from mlp's by {worst:g}")
    with open(os.path.join(runs["torch"], "eval-worker.log")) as f:
        log = f.read()
    if log.count("ready on") != 1 or "rot90_test.safetensors" not in log:
        fail(f"MAP run with the torch worker: the run's worker did not score the held-out sets itself:\n{log[-1500:]}")
    print(f"MAP run: samples, pick and its test metrics within {worst:.2g} of mlp's, one worker start")


def case_failures():
    store, coeffs = setup()
    ref = evaluate(store, coeffs, os.path.join(WORK, "mlp"))
    for mode in ["exit", "hang", "garbage", "badjson", "wrongid", "error", "die"]:
        state = os.path.join(WORK, f"state-{mode}")
        if os.path.exists(state):
            os.remove(state)
        t0 = time.time()
        got = evaluate(store, coeffs, os.path.join(WORK, f"np-{mode}"), "-map_eval_type", "worker", "-map_eval_timeout", "4",
                       "-map_eval_worker", f"{NP_WORKER} --fail {mode} --at 3 --state {state}")
        if not os.path.exists(state):
            fail(f"{mode}: the failure was never injected")
        close(got, ref, f"np worker, {mode} at request 3, restarted ({time.time() - t0:.1f} s)")
    # a worker that always fails: the second failure is an error naming the request, with its stderr
    p = mpi(2, "eval", "-options_file_yaml", SMALL, "-map_store", store, "-map_coeffs", coeffs, "-map_output",
            os.path.join(WORK, "np-always"), "-map_eval_type", "worker", "-map_eval_worker", f"{NP_WORKER} --fail always --at 1",
            check=False)
    text = p.stdout + p.stderr
    for needle in ["worker request 1 failed twice", "exited with status 3", "injected failure always at request 1", "eval-worker.log"]:
        if needle not in text:
            fail(f"always-failing worker: the message lacks '{needle}':\n{text[-3000:]}")
    if p.returncode == 0 or os.path.exists(os.path.join(WORK, "np-always.csv")):
        fail("always-failing worker: exit status 0 or an output written")
    no_temporaries()
    p = mpi(1, "eval", "-options_file_yaml", SMALL, "-map_store", store, "-map_coeffs", coeffs, "-map_output",
            os.path.join(WORK, "np-proto"), "-map_eval_type", "worker", "-map_eval_worker", f"{NP_WORKER} --protocol 7", check=False)
    if p.returncode == 0 or "another protocol version" not in p.stdout + p.stderr:
        fail(f"protocol 7 worker: expected an error about the protocol version:\n{(p.stdout + p.stderr)[-2000:]}")
    p = mpi(1, "eval", "-options_file_yaml", SMALL, "-map_store", store, "-map_coeffs", coeffs, "-map_output",
            os.path.join(WORK, "np-missing"), "-map_eval_type", "worker", "-map_eval_worker", "/nonexistent/worker --x", check=False)
    if p.returncode == 0 or "cannot run \"/nonexistent/worker\"" not in p.stdout + p.stderr:
        fail(f"missing worker program: expected 'cannot run':\n{(p.stdout + p.stderr)[-2000:]}")
    no_temporaries()
    print("failures: every injected failure recovered; permanent failures are clear errors")


RUN_ARGS = ["-map_tasks", "rot90,flip_v,shift", "-map_sample_type", "lhs", "-map_sample_n", "24", "-map_reevaluate", "3",
            "-map_eval_type", "worker", "-map_eval_worker", TORCH_WORKER]


def journal_lines(run):
    try:
        with open(os.path.join(run, "journal.jsonl")) as f:
            return f.read().count("\n")
    except FileNotFoundError:
        return 0


def worker_pids(marker):
    """pids of the torch workers whose environment holds our marker (ours only, never another test's)"""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        argv = cmd.split(b"\0")
        if argv[0].endswith(b"python3") and len(argv) > 1 and argv[1].endswith(b"torch_worker.py") and marker.encode() in env:
            pids.append(int(d))
    return pids


def same_results(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names = []
        fa.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            x, y = fa[n][...], fb[n][...]
            if x.dtype == object:
                same = list(x.ravel()) == list(y.ravel())
            else:
                same = x.shape == y.shape and x.tobytes() == y.tobytes()
            if not same:
                fail(f"dataset {n} differs between {a} and {b}")
    print(f"same bits: {len(names)} datasets of {a} and {b}")


def case_kill_run():
    store, _ = setup()
    ref = os.path.join(WORK, "run-ref")
    shutil.rmtree(ref, ignore_errors=True)
    mpi(2, "run", "-options_file_yaml", SMALL, "-map_store", store, "-map_output", ref, *RUN_ARGS)
    if not os.path.exists(os.path.join(ref, "eval-worker.log")):
        fail("no eval-worker.log in the run folder")
    run = os.path.join(WORK, "run-killed")
    shutil.rmtree(run, ignore_errors=True)
    marker = f"MAP_WORKER_TEST_{os.getpid()}"
    env = dict(os.environ, TMPDIR=TMP, MAP_WORKER_TEST_MARK=marker)
    p = subprocess.Popen(["mpiexec", "-n", "2", "--oversubscribe", MAPMERGE, "run", "-options_file_yaml", SMALL, "-map_store", store,
                          "-map_output", run] + RUN_ARGS, cwd=WORK, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.time()
    while journal_lines(run) < 8:
        if p.poll() is not None or time.time() - t0 > 200:
            p.kill()
            fail("the run ended or stalled before its worker could be killed:\n" + p.stdout.read()[-3000:])
        time.sleep(0.02)
    pids = worker_pids(marker)
    if len(pids) != 1:
        p.kill()
        fail(f"expected one running torch worker, found {pids}")
    os.kill(pids[0], signal.SIGKILL)
    at = journal_lines(run)
    out, _ = p.communicate(timeout=300)
    if p.returncode != 0:
        fail(f"the run did not survive the killed worker:\n{out[-3000:]}")
    with open(os.path.join(run, "eval-worker.log")) as f:
        log = f.read()
    if "restarting the worker" not in log or log.count("ready on") < 2:
        fail(f"the log does not show a restart:\n{log[-2000:]}")
    print(f"worker {pids[0]} killed after {at} of {journal_lines(run)} journal lines; the run restarted it")
    same_results(os.path.join(ref, "results.h5"), os.path.join(run, "results.h5"))
    no_temporaries()


def case_groups():
    """-map_eval_groups 1, 2, 3 at -n 3: the same journal and results bits (the samples, the re-evaluations
    and the pick all go G at a time); {group}, logs and GPUs per group"""
    store, _ = setup()
    base = ["-map_tasks", "rot90,flip_v", "-map_sample_type", "lhs", "-map_sample_n", "9", "-map_reevaluate", "2",
            "-map_eval_type", "worker", "-map_eval_worker", NP_WORKER + " --tag g{group}-r{rank}", "-map_eval_gpus", "3,5:6"]
    runs = {}
    for G in (1, 2, 3):
        run = os.path.join(WORK, f"run-groups-{G}")
        shutil.rmtree(run, ignore_errors=True)
        mpi(3, "run", "-options_file_yaml", SMALL, "-map_store", store, "-map_output", run, "-map_eval_groups", str(G), *base)
        with open(os.path.join(run, "journal.jsonl")) as f:
            runs[G] = (run, f.read())
    for G in (2, 3):
        if runs[1][1] != runs[G][1]:
            fail(f"the journals of -map_eval_groups 1 and {G} differ")
        same_results(os.path.join(runs[1][0], "results.h5"), os.path.join(runs[G][0], "results.h5"))
        # every evaluation went to the groups' workers: the run's own worker was never started
        own = os.path.join(runs[G][0], "eval-worker.log")
        if os.path.exists(own) and "starting" in open(own).read():
            fail(f"-map_eval_groups {G}: the run's own worker was started (eval-worker.log); the re-evaluations and the pick belong to the groups")
        for g in range(G):
            with open(os.path.join(runs[G][0], f"eval-worker-{g}.log")) as f:
                if "[worker stdout] chatter" not in f.read():
                    fail(f"-map_eval_groups {G}: eval-worker-{g}.log shows no request: group {g} evaluated nothing")
    # Bayesian MAP with per-task rounds: the rounds' samples (each on one task) go G at a time too
    bayes = [a if a != "9" else "8" for a in base] + ["-map_method", "bayesian", "-map_bayes_iterations", "1", "-map_bayes_batch", "2",
                                                     "-map_bayes_evaluate", "per_task"]
    bj = []
    for G in (1, 3):
        run = os.path.join(WORK, f"run-groups-bayes-{G}")
        shutil.rmtree(run, ignore_errors=True)
        mpi(3, "run", "-options_file_yaml", SMALL, "-map_store", store, "-map_output", run, "-map_eval_groups", str(G), *bayes)
        with open(os.path.join(run, "journal.jsonl")) as f:
            bj.append(f.read())
    if bj[0] != bj[1] or bj[0].count('"kind":"sample"') < 12:
        fail("Bayesian MAP (per-task rounds): the journals of -map_eval_groups 1 and 3 differ or miss the rounds' samples")
    same_results(os.path.join(WORK, "run-groups-bayes-1", "results.h5"), os.path.join(WORK, "run-groups-bayes-3", "results.h5"))
    print(f"Bayesian MAP, per-task rounds: same journal ({bj[0].count(chr(10))} lines) and results.h5 at G = 1 and 3")
    # every request, the pick's held-out test request included, went to a worker of the run (its own at
    # G = 1, the groups' otherwise): np_worker prints one chatter line per request
    for G in (1, 2, 3):
        nreq = sum(open(f).read().count("[worker stdout] chatter") for f in glob.glob(os.path.join(runs[G][0], "eval-worker*.log")))
        nev = runs[G][1].count('"kind":"') - runs[G][1].count('"kind":"header"')
        if nreq != nev + 1:
            fail(f"-map_eval_groups {G}: {nreq} worker requests for {nev} evaluations and the held-out test (expected {nev + 1})")
    kinds = [line.split('"kind"')[1][:10] for line in runs[1][1].splitlines() if '"kind"' in line]
    print(f"same journal ({runs[1][1].count(chr(10))} lines, {sum('reeval' in k or 'pick' in k for k in kinds)} re-evaluations and pick) "
          "and results.h5 at -map_eval_groups 1, 2 and 3")
    for g, rank, gpu in ((0, 0, "3"), (1, 1, "5,6"), (2, 2, "3")):
        path = os.path.join(runs[3][0], f"eval-worker-{g}.log")
        with open(path) as f:
            log = f.read()
        if f"tag g{g}-r{rank}" not in log or f"CUDA_VISIBLE_DEVICES={gpu}\n" not in log:
            fail(f"{path}: expected the worker of group {g} on rank {rank} with CUDA_VISIBLE_DEVICES={gpu}:\n{log[-1500:]}")
    print("group logs, {group}/{rank} and CUDA_VISIBLE_DEVICES per group as asked")
    # the command evaluator in groups: the same journal too, one stderr log per group
    cmd = ["-map_tasks", "rot90,flip_v", "-map_sample_type", "lhs", "-map_sample_n", "7", "-map_reevaluate", "1",
           "-map_eval_type", "command", "-map_eval_command", f"{PY} {SRC}/tests/eval/np_eval.py --model {{model}} --task {{task}} --data {{data}}"]
    journals = []
    for G in (1, 2):
        run = os.path.join(WORK, f"run-cmd-groups-{G}")
        shutil.rmtree(run, ignore_errors=True)
        mpi(2, "run", "-options_file_yaml", SMALL, "-map_store", store, "-map_output", run, "-map_eval_groups", str(G), *cmd)
        with open(os.path.join(run, "journal.jsonl")) as f:
            journals.append(f.read())
    if journals[0] != journals[1]:
        fail("command evaluator: the journals of -map_eval_groups 1 and 2 differ")
    for g in (0, 1):
        with open(os.path.join(WORK, "run-cmd-groups-2", f"eval-command-{g}.log")) as f:
            if "== task rot90: /usr/bin/python3 ==" not in f.read():
                fail(f"eval-command-{g}.log lacks the header of a program run")
    print(f"command evaluator: same journal ({journals[0].count(chr(10))} lines) at G = 1 and 2, a stderr log per group")
    # one group's worker fails for good: every rank ends with the error, none waits for the lost result
    run = os.path.join(WORK, "run-groups-fail")
    shutil.rmtree(run, ignore_errors=True)
    bad = [a if a != NP_WORKER + " --tag g{group}-r{rank}" else NP_WORKER + " --fail always --tag g{group}" for a in base]
    p = mpi(2, "run", "-options_file_yaml", SMALL, "-map_store", store, "-map_output", run, "-map_eval_groups", "2", *bad, check=False,
            timeout=120)
    if p.returncode == 0 or "an evaluator group failed" not in p.stdout + p.stderr:
        fail(f"a failing group: expected a clear collective error:\n{(p.stdout + p.stderr)[-2000:]}")
    print("a group whose worker always fails ends the run cleanly")
    no_temporaries()


def case_signal():
    """SIGTERM to the whole job step (ranks and worker, as SLURM does) while the worker runs: exit 85, not a
    restart; -map_resume then finishes the run"""
    store, _ = setup()
    run = os.path.join(WORK, "run-signal")
    shutil.rmtree(run, ignore_errors=True)
    mark = f"SIGTEST{os.getpid()}"
    args = ["run", "-options_file_yaml", SMALL, "-map_store", store, "-map_output", run, "-map_tasks", "rot90,flip_v",
            "-map_sample_n", "10", "-map_sample_type", "lhs", "-map_reevaluate", "1", "-map_eval_type", "worker",
            "-map_eval_worker", f"{NP_WORKER} --sleep 0.3 --tag {mark}"]
    p = subprocess.Popen(["mpiexec", "-n", "2", "--oversubscribe", MAPMERGE] + args, cwd=WORK, env=dict(os.environ, TMPDIR=TMP),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.time()
    while journal_lines(run) < 3:
        if p.poll() is not None or time.time() - t0 > 120:
            p.kill()
            fail("the run ended or stalled before the signal:\n" + p.stdout.read()[-2000:])
        time.sleep(0.05)
    pids = []
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if (argv[0].endswith(b"mapmerge") and run.encode() in argv) or (argv[0].endswith(b"python3") and mark.encode() in b" ".join(argv)):
            pids.append(int(d))
    for q in pids:
        os.kill(q, signal.SIGTERM)
    out, _ = p.communicate(timeout=120)
    if p.returncode != 85 or "interrupted by signal 15" not in out:
        fail(f"SIGTERM to {pids}: exit {p.returncode}, expected 85 with 'interrupted by signal 15':\n{out[-2000:]}")
    n = journal_lines(run)
    mpi(2, *args, "-map_resume")
    print(f"SIGTERM to ranks and worker {pids}: exit 85 with {n} evaluations journaled; -map_resume finished "
          f"({journal_lines(run)} evaluations)")
    no_temporaries()


if __name__ == "__main__":
    {"torch_vs_mlp": case_torch_vs_mlp, "failures": case_failures, "kill_run": case_kill_run, "groups": case_groups, "signal": case_signal}[sys.argv[1]]()
