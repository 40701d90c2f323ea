#!/usr/bin/python3
"""The `lm` evaluator (issue 13) on the LM zoo, with real MPI runs and real files:

  ref     >= 50 merges x every task against tests/lm/lm_ref.py (independent float64 PyTorch):
          loss within 1e-5 relative, accuracy exact; GPT-2 and Llama, .bin windows and .mc.jsonl
  ranks   `mapmerge eval` CSV bitwise identical at -n 1, 2, 3, 4, 8 and with -map_eval_groups
  run     `mapmerge run` (map, bayesian, nested) at -n 1 and 3: identical results.h5; the pick
          exported and scored by lm_ref.py as the run reported
  errors  bad inputs fail with messages that name the file / tensor and the values
  worker  examples/torch_lm_worker.py (-map_eval_type worker) against -map_eval_type lm: loss within
          1e-5 relative, accuracy exact; GPT-2 in model mode, Llama (BF16 store) in coefficients mode

usage: test_lm.py CASE   (env: MAPMERGE, MAP_BINARY_DIR; LM_ZOO overrides BIN/lm-zoo)
"""
import csv, json, os, shutil, subprocess, sys
import numpy as np
import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_ref  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "slurm"))
import same_results as same_results_py  # noqa: E402

MAPMERGE = os.environ["MAPMERGE"]
BIN = os.environ["MAP_BINARY_DIR"]
ZOO = os.environ.get("LM_ZOO", os.path.join(BIN, "lm-zoo"))
WORK = os.path.join(BIN, "lm-tests")
WINDOWS = 4  # windows per .bin task: enough targets, a test of seconds


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def mpi(n, *args, check=True):
    cmd = ["mpiexec", "-n", str(n), "--oversubscribe", MAPMERGE] + [str(a) for a in args]
    p = subprocess.run(cmd, cwd=WORK, capture_output=True, text=True)
    if check and p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
        fail(f"{' '.join(cmd)} exited {p.returncode}")
    return p


def domains(arch):
    d = sorted(x for x in os.listdir(os.path.join(ZOO, arch)) if x != "pretrained")
    if len(d) < 2:
        fail(f"{ZOO}/{arch}: fewer than two fine-tuned models")
    return d


_imported = set()


def store(arch, T):
    """the store of the first T domains of arch, imported afresh (a rebuilt zoo must not meet an old store)"""
    os.makedirs(WORK, exist_ok=True)
    tasks = domains(arch)[:T]
    path = os.path.join(WORK, f"{arch}-{T}.h5")
    if path not in _imported:
        _imported.add(path)
        mpi(2, "import", "-map_pretrained", os.path.join(ZOO, arch, "pretrained"), "-map_tasks", ",".join(tasks),
            "-map_task_models", ",".join(os.path.join(ZOO, arch, t) for t in tasks), "-map_store", path)
    return path, tasks


MC_ITEMS = 8  # questions per multiple-choice task (one forward pass per choice: keep it small)


def task_file(task, kind):
    """the zoo's data file; a multiple-choice file is cut to its first MC_ITEMS questions"""
    path = os.path.join(ZOO, "data", f"{task}.{kind}")
    if kind != "mc.jsonl":
        return path
    os.makedirs(WORK, exist_ok=True)
    cut = os.path.join(WORK, f"{task}.{MC_ITEMS}.mc.jsonl")
    with open(path) as f:
        lines = [l for l in f if l.strip()][:MC_ITEMS]
    with open(cut, "w") as f:
        f.writelines(lines)
    return cut


def data(tasks, kind):
    return ",".join(task_file(t, kind) for t in tasks)


def write_coeffs(path, tasks, C):
    with open(path, "w") as f:
        f.write(",".join(tasks) + "\n")
        for c in C:
            f.write(",".join(repr(float(x)) for x in c) + "\n")


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def eval_csv(n, st, tasks, files, C, name, extra=()):
    cpath = os.path.join(WORK, name + ".coeffs.csv")
    write_coeffs(cpath, tasks, C)
    out = os.path.join(WORK, name)
    mpi(n, "eval", "-map_store", st, "-map_eval_type", "lm", "-map_eval_data", files, "-map_coeffs", cpath, "-map_output", out,
        "-map_lm_max_windows", WINDOWS, *extra)
    return out + ".csv"


def case_ref():
    rng = np.random.default_rng(13)
    worst, flips, checked = 0.0, [], 0
    for arch in ("gpt2", "llama"):
        st, tasks = store(arch, min(4, len(domains(arch))))
        T = len(tasks)
        # 50 merges: the pretrained model, each fine-tuned one, and random mixtures (also negative and > 1)
        C = [np.zeros(T)] + [np.eye(T)[i] for i in range(T)]
        C += list(rng.uniform(-0.3, 1.2, size=(50 - len(C), T)))
        cfg, pre = lm_ref.load_folder(os.path.join(ZOO, arch, "pretrained"))
        fts = [lm_ref.load_folder(os.path.join(ZOO, arch, t))[1] for t in tasks]
        for kind, nmerge in (("val.bin", 50), ("mc.jsonl", 12)):
            rows = read_csv(eval_csv(2, st, tasks, data(tasks, kind), C[:nmerge], f"ref-{arch}-{kind}"))
            for k in range(nmerge):
                w = lm_ref.merge(pre, fts, list(C[k]))
                for t, task in enumerate(tasks):
                    path = task_file(task, kind)
                    ref = lm_ref.evaluate(cfg, w, path, None, WINDOWS)
                    got_loss, got_acc = float(rows[k]["loss_" + task]), float(rows[k]["acc_" + task])
                    rel = abs(got_loss - ref["loss"]) / abs(ref["loss"])
                    worst = max(worst, rel)
                    checked += 1
                    if rel > 1e-5:
                        fail(f"{arch} {kind} merge {k} task {task}: loss {got_loss!r} vs reference {ref['loss']!r} (relative {rel:.2e})")
                    if got_acc != ref["accuracy"]:
                        flips.append(f"{arch} {kind} merge {k} task {task}: accuracy {got_acc} vs reference {ref['accuracy']}")
    print(f"ref: {checked} (merge, task) pairs, worst relative loss error {worst:.2e}, {len(flips)} accuracy differences")
    if flips:
        fail("accuracy differs from the float64 reference:\n  " + "\n  ".join(flips))


def case_ranks():
    rng = np.random.default_rng(7)
    for arch, groups in (("gpt2", (4, ("-map_eval_groups", 2))), ("llama", (3, ("-map_eval_groups", 3, "-map_lm_kernel_generic")))):
        st, tasks = store(arch, min(4, len(domains(arch))))
        T = len(tasks)
        C = list(rng.uniform(-0.2, 1.0, size=(4, T)))
        # one multiple-choice task, one uint32 file, the others uint16 windows
        files = [task_file(tasks[0], "mc.jsonl"), task_file(tasks[1], "val32.bin")]
        files += [os.path.join(ZOO, "data", f"{t}.val.bin") for t in tasks[2:]]
        base = None
        for n, extra in ((1, ()), (2, ()), (3, ()), (4, ()), (8, ()), groups):
            out = eval_csv(n, st, tasks, ",".join(files), C, f"ranks-{arch}-{n}-{len(extra)}", extra)
            with open(out, "rb") as f:
                got = f.read()
            if base is None:
                base = got
            elif got != base:
                fail(f"{arch}: eval CSV at -n {n} {' '.join(map(str, extra))} differs from -n 1")
        print(f"ranks: {arch} eval CSV identical at -n 1, 2, 3, 4, 8 and with rank groups ({' '.join(map(str, groups[1]))} at -n {groups[0]})")


def same_results(a, b):
    for m in same_results_py.differences(a, b):  # tests/slurm/same_results.py: every dataset to the bit
        fail(f"{a} vs {b}: {m}")


def case_run():
    arch = "llama"
    st, tasks = store(arch, min(4, len(domains(arch))))
    common = ["-map_store", st, "-map_eval_type", "lm", "-map_eval_data", data(tasks, "val.bin"), "-map_lm_max_windows", WINDOWS,
              "-map_reevaluate", 2]
    for method, extra in (("map", []), ("bayesian", ["-map_bayes_iterations", 1]), ("nested", [])):
        runs = []
        for n in (1, 3):
            out = os.path.join(WORK, f"run-{method}-{n}")
            shutil.rmtree(out, ignore_errors=True)
            mpi(n, "run", "-map_method", method, "-map_output", out, *common, *extra)
            runs.append(out)
        same_results(os.path.join(runs[0], "results.h5"), os.path.join(runs[1], "results.h5"))
        print(f"run: {method} results.h5 identical at -n 1 and 3")
    # the MAP pick, exported, loaded and scored by the float64 reference as the run reported it
    run = os.path.join(WORK, "run-map-1")
    model = os.path.join(WORK, "pick")
    shutil.rmtree(model, ignore_errors=True)
    # a model folder, as people load it: the store recorded the pretrained folder's config.json at import
    # (F32 weights, the run's own arithmetic; the default would be the checkpoint's BF16)
    mpi(2, "export", "-map_store", st, "-map_run", run, "-map_output", model, "-map_export_dtype", "f32")
    src_cfg = os.path.join(ZOO, arch, "pretrained", "config.json")
    if open(os.path.join(model, "config.json"), "rb").read() != open(src_cfg, "rb").read():
        fail("exported folder: config.json differs from the pretrained checkpoint's")
    if "c = " not in open(os.path.join(model, "README.md")).read() and "coefficient" not in open(os.path.join(model, "README.md")).read():
        fail("exported folder: the model card names no coefficients")
    with h5py.File(os.path.join(run, "results.h5"), "r") as f:
        real, real_loss = f["pick/real"][0], f["pick/real_loss"][0]
    cfg, w = lm_ref.load_folder(model)
    for t, task in enumerate(tasks):
        ref = lm_ref.evaluate(cfg, w, os.path.join(ZOO, "data", f"{task}.val.bin"), None, WINDOWS)
        rel = abs(ref["loss"] - real_loss[t]) / abs(ref["loss"])
        if rel > 1e-5 or ref["accuracy"] != real[t]:
            fail(f"exported pick, task {task}: reference loss {ref['loss']!r} accuracy {ref['accuracy']} vs the run's {real_loss[t]!r} {real[t]}")
    print(f"run: the exported pick scores as the run reported on {len(tasks)} tasks (loss within 1e-5, accuracy exact)")


def expect_error(args, pattern, n=2):
    p = mpi(n, *args, check=False)
    if p.returncode == 0 or pattern not in p.stdout + p.stderr:
        print(p.stdout[-2000:], p.stderr[-2000:])
        fail(f"expected an error containing {pattern!r} from {' '.join(map(str, args))}")
    if "Segmentation" in p.stderr or "signal" in p.stderr.lower():
        fail(f"crash instead of an error: {p.stderr[-500:]}")


def case_errors():
    os.makedirs(WORK, exist_ok=True)
    st, tasks = store("gpt2", 2)
    good = data(tasks, "val.bin")
    cpath = os.path.join(WORK, "err.coeffs.csv")
    write_coeffs(cpath, tasks, [np.full(len(tasks), 0.5)])
    base = ["eval", "-map_store", st, "-map_eval_type", "lm", "-map_coeffs", cpath, "-map_output", os.path.join(WORK, "err")]
    cfgdir = os.path.join(WORK, "badcfg")
    os.makedirs(cfgdir, exist_ok=True)
    cfg = json.load(open(os.path.join(ZOO, "gpt2", "pretrained", "config.json")))
    json.dump(dict(cfg, model_type="mamba"), open(os.path.join(cfgdir, "config.json"), "w"))
    expect_error(base + ["-map_eval_data", good, "-map_lm_config", cfgdir], 'model_type "mamba" is not supported')
    json.dump(dict(cfg, n_embd=cfg["n_embd"] + cfg["n_head"]), open(os.path.join(cfgdir, "config.json"), "w"))
    expect_error(base + ["-map_eval_data", good, "-map_lm_config", cfgdir], "wte.weight has shape")
    json.dump(dict(cfg, n_layer=cfg["n_layer"] + 1), open(os.path.join(cfgdir, "config.json"), "w"))
    expect_error(base + ["-map_eval_data", good, "-map_lm_config", cfgdir], f"h.{cfg['n_layer']}.ln_1.weight not found")
    # token files: id >= vocab, empty, bad magic, context too long
    bad = os.path.join(WORK, "bad.bin")
    hdr = np.zeros(256, np.int32)
    hdr[:3] = (20240520, 1, 200)
    ids = np.arange(200, dtype=np.uint16)
    ids[150] = cfg["vocab_size"] + 4
    open(bad, "wb").write(hdr.tobytes() + ids.tobytes())
    other = os.path.join(ZOO, "data", f"{tasks[1]}.val.bin")
    expect_error(base + ["-map_eval_data", bad + "," + other, "-map_lm_context", 16, "-map_lm_max_windows", 0],
                 f"token 150 is id {cfg['vocab_size'] + 4}, outside the model's vocabulary of {cfg['vocab_size']}")
    empty = os.path.join(WORK, "empty.bin")
    open(empty, "wb").close()
    expect_error(base + ["-map_eval_data", empty + "," + other], "empty.bin is empty")
    hdr[:2] = (12345, 1)
    open(bad, "wb").write(hdr.tobytes() + np.arange(200, dtype=np.uint16).tobytes())
    expect_error(base + ["-map_eval_data", bad + "," + other], "header magic 12345 version 1")
    expect_error(base + ["-map_eval_data", good, "-map_lm_context", cfg["n_positions"] + 1],
                 f"-map_lm_context {cfg['n_positions'] + 1} is longer than the model's {cfg['n_positions']} positions")
    mc = os.path.join(WORK, "bad.mc.jsonl")
    with open(mc, "w") as f:
        f.write(json.dumps({"context": [1, 2], "choices": [[3], [4]], "answer": 0}) + "\n")
        f.write(json.dumps({"context": [1, 2], "choices": [[3], [cfg["vocab_size"]]], "answer": 0}) + "\n")
    expect_error(base + ["-map_eval_data", mc + "," + other], "line 2: choice 1: token id")
    print("errors: unknown model_type, wrong shape, missing tensor, id >= vocab, empty file, bad magic, context too long, bad jsonl")


def case_worker():
    worker = f"/usr/bin/python3 {os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'examples', 'torch_lm_worker.py')} --max-windows {WINDOWS}"
    C = [[0.3, 0.5], [1.0, 0.0], [-0.2, 1.1]]
    for arch, mode in (("gpt2", ["-map_eval_worker_dtype", "f32"]), ("llama", ["-map_eval_worker_mode", "coefficients"])):
        st, tasks = store(arch, 2)
        files = f"{task_file(tasks[0], 'val.bin')},{task_file(tasks[1], 'mc.jsonl')}"  # both kinds of task file
        ref = read_csv(eval_csv(2, st, tasks, files, C, f"worker-ref-{arch}"))
        cpath = os.path.join(WORK, f"worker-ref-{arch}.coeffs.csv")
        out = os.path.join(WORK, f"worker-{arch}")
        mpi(2, "eval", "-map_store", st, "-map_eval_type", "worker", "-map_eval_worker", worker, *mode, "-map_eval_data", files,
            "-map_coeffs", cpath, "-map_output", out)
        got, worst = read_csv(out + ".csv"), 0.0
        for k, (a, b) in enumerate(zip(ref, got)):
            for t in tasks:
                rel = abs(float(a["loss_" + t]) - float(b["loss_" + t])) / abs(float(a["loss_" + t]))
                worst = max(worst, rel)
                if rel > 1e-5 or a["acc_" + t] != b["acc_" + t]:
                    fail(f"{arch} merge {k} task {t}: worker loss {b['loss_' + t]} accuracy {b['acc_' + t]}, "
                         f"lm loss {a['loss_' + t]} accuracy {a['acc_' + t]} (relative loss difference {rel:.2e})")
        if len(got) != len(C):
            fail(f"{arch}: the worker scored {len(got)} merges, expected {len(C)}")
        print(f"worker {arch} ({' '.join(mode)}): {len(C)} merges x {len(tasks)} tasks (.bin and .mc.jsonl) as lm's: "
              f"worst relative loss difference {worst:.1e}, accuracy equal")


if __name__ == "__main__":
    cases = {"ref": case_ref, "ranks": case_ranks, "run": case_run, "errors": case_errors, "worker": case_worker}
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        sys.exit("usage: test_lm.py " + "|".join(cases))
    cases[sys.argv[1]]()
