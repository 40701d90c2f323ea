#!/usr/bin/python3
"""bench/worker: one MAP run on the small zoo scored four ways -- the built-in mlp evaluator, the
persistent PyTorch worker (model and coefficients mode) and today's command path with the same
PyTorch code started per (model, task) -- then a slow (sleep) scorer at -map_eval_groups 1 and 2.
Wall times and ratios go to stdout (copy them into README.md).

usage: bench/worker/run.py BUILD_DIR [SLEEP_SECONDS [PARTS]]   (needs BUILD_DIR/zoo-small: ctest -R zoo_small)
PARTS: comma list of compare (the four evaluators), amortize (mlp vs torch worker on a 5x longer run),
sleep (the slow scorer at G = 1, 2, -n 2), sleep4 (G = 1, 2, 4 at -n 4); default compare,amortize,sleep."""
import os, shutil, subprocess, sys, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
SLEEP = sys.argv[2] if len(sys.argv) > 2 else "2"
PARTS = (sys.argv[3] if len(sys.argv) > 3 else "compare,amortize,sleep").split(",")
WORK = os.path.join(BUILD, "bench-worker")
PY = "/usr/bin/python3"
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
           OPENBLAS_NUM_THREADS="1")
SMALL = os.path.join(ROOT, "input", "small.yaml")
MAP = ["-map_tasks", "rot90,flip_v", "-map_sample_type", "lhs", "-map_sample_n", "12", "-map_reevaluate", "2"]


def mapmerge(n, *args):
    t0 = time.time()
    p = subprocess.run(["mpiexec", "-n", str(n), os.path.join(BUILD, "mapmerge")] + list(args), cwd=WORK, env=ENV,
                       capture_output=True, text=True)
    if p.returncode:
        sys.exit(p.stdout[-3000:] + p.stderr[-3000:])
    mapmerge.phases = next((l.split(":", 1)[1].strip() for l in p.stdout.splitlines() if l.startswith("time per phase:")), "")
    return time.time() - t0


def run(name, n, *extra, samples="12"):
    out = os.path.join(WORK, name)
    shutil.rmtree(out, ignore_errors=True)
    args = [a if a != "12" else samples for a in MAP]
    dt = mapmerge(n, "run", "-options_file_yaml", SMALL, "-map_store", "store.h5", "-map_output", out, *args, *extra)
    with open(os.path.join(out, "journal.jsonl")) as f:
        nev = sum('"kind":"header"' not in line for line in f)
    return dt, nev


def main():
    os.makedirs(WORK, exist_ok=True)
    if not os.path.exists(os.path.join(WORK, "zoo-small")):
        os.symlink(os.path.join(BUILD, "zoo-small"), os.path.join(WORK, "zoo-small"))
    if not os.path.exists(os.path.join(WORK, "store.h5")):
        mapmerge(2, "import", "-options_file_yaml", SMALL, "-map_store", "store.h5")
    print(f"load: {os.getloadavg()} on {os.cpu_count()} cores (shared with other jobs)")
    torch_worker = f"{PY} {ROOT}/examples/torch_worker.py"
    if "compare" in PARTS:
        compare(torch_worker)
    if "amortize" in PARTS:
        print("\nlonger MAP run (60 samples, 2 tasks), mpiexec -n 2: the worker's start is paid once")
        print("| evaluator | wall s | evaluations | vs mlp |")
        print("|---|---|---|---|")
        b, nev = run("mlp-60", 2, samples="60")
        print(f"| mlp | {b:.1f} | {nev} | 1.0x |")
        for name, extra in (("worker, model mode", []), ("worker, coefficients mode", ["-map_eval_worker_mode", "coefficients"])):
            dt, nev = run("worker-60", 2, "-map_eval_type", "worker", "-map_eval_worker", torch_worker, *extra, samples="60")
            print(f"| {name} | {dt:.1f} | {nev} | {dt / b:.1f}x |")
    if "sleep" in PARTS:
        sleep()
    if "sleep4" in PARTS:
        sleep(n=4, groups=(1, 2, 4))
    print(f"load after: {os.getloadavg()}")


def compare(torch_worker):
    rows = [("mlp (in-process)", run("mlp", 2)),
            ("worker, torch, model mode", run("worker", 2, "-map_eval_type", "worker", "-map_eval_worker", torch_worker)),
            ("worker, torch, coefficients mode", run("worker-coef", 2, "-map_eval_type", "worker", "-map_eval_worker", torch_worker,
                                                      "-map_eval_worker_mode", "coefficients")),
            ("command, torch per (model, task)", run("command", 2, "-map_eval_type", "command", "-map_eval_command",
                                                     f"{PY} {ROOT}/bench/worker/torch_once.py --model {{model}} --task {{task}} --data {{data}}"))]
    base, cmd = rows[0][1][0], rows[3][1][0]
    print(f"\nMAP run, small zoo, 2 tasks, {rows[0][1][1]} evaluations, mpiexec -n 2")
    print("| evaluator | wall s | vs mlp | command / this |")
    print("|---|---|---|---|")
    for name, (dt, nev) in rows:
        print(f"| {name} | {dt:.1f} | {dt / base:.1f}x | {cmd / dt:.1f}x |")


def sleep(n=2, groups=(1, 2)):
    slow = f"{PY} {ROOT}/tests/worker/np_worker.py --sleep {SLEEP}"
    print(f"\nslow scorer: np_worker --sleep {SLEEP} s per request, mpiexec -n {n}")
    print("| -map_eval_groups | wall s | evaluations | mapmerge's time per phase |")
    print("|---|---|---|---|")
    for G in groups:
        dt, nev = run(f"sleep-g{G}", n, "-map_eval_type", "worker", "-map_eval_worker", slow, "-map_eval_groups", str(G))
        print(f"| {G} | {dt:.1f} | {nev} | {mapmerge.phases} |")


if __name__ == "__main__":
    main()
