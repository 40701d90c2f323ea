#!/usr/bin/python3
"""Hostile inputs (issue 12, sections B and C), each a real mapmerge command under mpiexec that must
end with a clear error (naming the file or option), a non-zero exit, no output written, and every
rank gone within seconds.

usage: test_hostile_inputs.py CASE   (env: MAPMERGE, MAP_BINARY_DIR)
  results   crafted results.h5: other ranks and shapes, non-numeric, huge claimed sizes, very long
            and odd task names (info -map_results, export -map_run)          [B12]
  fifo      a FIFO (and a directory, a device) as each input                 [B13]
  options   out-of-range and overflowing options, checked before the first evaluation [B17, C19]
  messages  what happened, said plainly                                      [B18, C20]
"""
import os
import stat
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "eval"))
import stio  # noqa: E402  (tests/stio.py)

MAPMERGE = os.environ["MAPMERGE"]
MPIEXEC = os.environ.get("MPIEXEC", "mpiexec")
PY = "/usr/bin/python3"
fails = 0


def check(cond, what):
    global fails
    if not cond:
        fails += 1
        print("FAIL:", what)
    return cond


def mm(n, *args, timeout=60, env=None):
    t0 = time.time()
    try:
        p = subprocess.run([MPIEXEC, "-n", str(n), "--oversubscribe", MAPMERGE] + list(args), capture_output=True, text=True,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, time.time() - t0
    return p, time.time() - t0


def expect_error(tag, n, args, needles, outputs=(), limit=30, env=None):
    """a clean failure: non-zero exit (not a crash), every needle in the message, no output, quick"""
    p, dt = mm(n, *args, timeout=limit + 30, env=env)
    if not check(p is not None, f"{tag}: still running after {limit + 30} s (a rank hangs)"):
        return
    text = p.stdout + p.stderr
    ok = check(p.returncode not in (0, -11, 139, 134, -6), f"{tag}: exit status {p.returncode}:\n{text[-2000:]}")
    ok &= check("Segmentation" not in text and "AddressSanitizer" not in text and "runtime error" not in text,
                f"{tag}: crashed:\n{text[-2000:]}")
    for s in needles:
        ok &= check(s in text, f'{tag}: message lacks "{s}":\n{text[-2000:]}')
    for o in outputs:
        ok &= check(not os.path.exists(o), f"{tag}: left {o}")
    ok &= check(dt < limit, f"{tag}: took {dt:.1f} s")
    line = next((l for l in text.splitlines() if "error" in l), text.strip()[:200])
    print(f"{tag}: {'ok' if ok else 'BAD'} ({dt:.1f} s): {line.strip()[:220]}")


def small_store(d, ntask=3):
    subprocess.run([PY, os.path.join(HERE, "..", "eval", "gen_mlp.py"), d, "--dims", "12,8,4", "--classes", ",".join(["3"] * ntask),
                    "--samples", ",".join(["40"] * ntask), "--seed", "2"], check=True, capture_output=True)
    tasks = [f"task{t}" for t in range(ntask)]
    p, _ = mm(1, "import", "-map_pretrained", f"{d}/pretrained.safetensors", "-map_tasks", ",".join(tasks),
              "-map_task_models", ",".join(f"{d}/{t}.safetensors" for t in tasks), "-map_store", f"{d}/store.h5")
    if not check(p.returncode == 0, "import failed:\n" + p.stdout + p.stderr):
        sys.exit(1)
    return f"{d}/store.h5", tasks


def analytic_run(d, tasks, name="run"):
    run = f"{d}/{name}"
    p, _ = mm(1, "run", "-map_eval_type", "analytic", "-map_analytic_problem", "quadratic", "-map_tasks", ",".join(tasks),
              "-map_output", run, "-map_preference", ",".join(["1"] * len(tasks)))
    if not check(p.returncode == 0, "analytic run failed:\n" + p.stdout + p.stderr):
        sys.exit(1)
    return run


def case_results(d):
    store, tasks = small_store(d)
    run = analytic_run(d, tasks)
    p, _ = mm(2, "info", "-map_results", run)
    check(p.returncode == 0 and "task0" in p.stdout, "info of a good run failed:\n" + p.stdout + p.stderr)

    def crafted(tag, change):
        bad = f"{d}/bad-{tag}"
        shutil.rmtree(bad, ignore_errors=True)
        shutil.copytree(run, bad)
        with h5py.File(f"{bad}/results.h5", "r+") as f:
            change(f)
        return bad

    def replace(name, data, **kw):
        def change(f):
            del f[name]
            f.create_dataset(name, data=data, **kw)
        return change

    T = len(tasks)
    cases = [
        ("accuracy-3d", replace("samples/accuracy", np.zeros((4, T, 2))), ["samples/accuracy", "more than 2 dimensions"], "info"),
        ("accuracy-strings", replace("samples/accuracy", np.array([b"a", b"b"])), ["samples/accuracy", "not numeric"], "info"),
        ("accuracy-wide", replace("samples/accuracy", np.zeros((4, 200))), ["samples/accuracy", "200 columns"], "info"),
        ("coeffs-shape", replace("samples/coeffs", np.zeros((1, 1))), ["samples/coeffs", "[1, 1]", "expected ["], "info"),
        ("diag-shape", replace("surrogate/accuracy/diagnostics", np.zeros((1, 2))), ["diagnostics", "[1, 2]"], "info"),
        ("pick-short", replace("pick/coeffs", np.zeros((1, 1))), ["pick/coeffs", "[1, 1]", f"[1, {T}]"], "info"),
        ("pick-value", replace("pick/real_value", np.zeros((3, 3))), ["pick/real_value", "[3, 3]"], "info"),
        ("params-F", replace("surrogate/accuracy/params", np.zeros((T, 5))), ["surrogate/accuracy/params", f"[{T}, 5]"], "export"),
        ("params-4d", replace("surrogate/accuracy/params", np.zeros((T, 2, 2, 2))), ["surrogate/accuracy/params", "more than 2"], "export"),
        ("params-huge", replace("surrogate/accuracy/params", data=None, shape=(2**31, 10), dtype="f8", chunks=(1, 10)),
         ["surrogate/accuracy/params", "more than 2^28"], "export"),
        ("front-shape", replace("pareto/real_front_coeffs", np.zeros((2, 1))), ["pareto/real_front_coeffs", "[2, 1]"], "export"),
        ("tasks-short", replace("tasks", np.array([b"x"])), ["tasks", "1 entries"], "both"),
    ]
    long_names = [("%d" % t) * 70000 for t in range(T)]
    cases.append(("tasks-long", replace("tasks", np.array(long_names, dtype=h5py.string_dtype())), ["characters"], "export"))
    cases.append(("tasks-comma", replace("tasks", np.array(["a,b"] + tasks[1:], dtype=h5py.string_dtype())), ["comma"], "export"))
    for tag, change, needles, where in cases:
        bad = crafted(tag, change)
        out = f"{d}/merged-{tag}.safetensors"
        args = ["export", "-map_store", store, "-map_run", bad, "-map_output", out]
        if tag == "front-shape":
            args += ["-map_export_model", "best_evaluated"]
        if where != "info":
            expect_error(f"export {tag}", 2, args, needles, [out])
        if where != "export":
            expect_error(f"info {tag}", 2, ["info", "-map_results", bad], needles)
    # very long task names are not an error for info: printed whole, no overflow
    bad = crafted("tasks-long-info", replace("tasks", np.array(long_names, dtype=h5py.string_dtype())))
    p, _ = mm(2, "info", "-map_results", bad)
    check(p.returncode == 0 and long_names[1] in p.stdout, f"info with 70000-character task names: exit {p.returncode}\n{p.stderr[-1000:]}")
    print("info with 70000-character task names: ok")


def case_fifo(d):
    store, tasks = small_store(d)
    fifo = f"{d}/pipe"
    os.mkfifo(fifo)
    os.makedirs(f"{d}/adir")
    run = analytic_run(d, tasks)
    with open(f"{d}/c.csv", "w") as f:
        f.write("task0,task1,task2\n0.3,0.3,0.3\n")
    out = f"{d}/out"
    pre, tm = f"{d}/pretrained.safetensors", [f"{d}/{t}.safetensors" for t in tasks]
    for bad, kind in ((fifo, "FIFO"), (f"{d}/adir", "directory"), ("/dev/zero", "character device")):
        cases = [
            ("store", ["info", "-map_store", bad], []),
            ("eval store", ["eval", "-map_store", bad, "-map_coeffs", f"{d}/c.csv", "-map_output", out + ".csv"], [out + ".csv"]),
            ("coeffs", ["eval", "-map_store", store, "-map_coeffs", bad, "-map_output", out + ".csv", "-map_eval_data",
                        ",".join(f"{d}/{t}_val.safetensors" for t in tasks)], [out + ".csv"]),
            ("eval data", ["eval", "-map_store", store, "-map_coeffs", f"{d}/c.csv", "-map_eval_data",
                           ",".join([bad] + [f"{d}/{t}_val.safetensors" for t in tasks[1:]]), "-map_output", out + ".csv"], [out + ".csv"]),
            ("pretrained", ["import", "-map_pretrained", bad, "-map_tasks", ",".join(tasks), "-map_task_models", ",".join(tm),
                            "-map_store", out + ".h5"], [out + ".h5"]),
            ("task model", ["import", "-map_pretrained", pre, "-map_tasks", ",".join(tasks), "-map_task_models", ",".join([bad] + tm[1:]),
                            "-map_store", out + ".h5"], [out + ".h5"]),
            ("sample file", ["run", "-map_eval_type", "analytic", "-map_tasks", "a,b", "-map_sample_type", "file", "-map_sample_file", bad,
                             "-map_output", out + "-run"], [out + "-run/results.h5"]),
            ("options file", ["info", "-map_store", store, "-options_file", bad], []),
            ("yaml options", ["info", "-map_store", store, "-options_file_yaml", bad], []),
            ("replay", ["run", "-map_replay", bad, "-map_output", out + "-run"], [out + "-run/results.h5"]),
        ]
        if kind != "directory":  # a folder is a valid -map_results / -map_run (its results.h5 is read)
            cases.append(("results", ["info", "-map_results", bad], []))
        for tag, args, outs in cases:
            if kind != "FIFO" and tag not in ("store", "coeffs", "eval data", "options file", "results"):
                continue  # the other kinds take the same path as the FIFO: a few suffice
            needle = kind
            if kind == "character device" and tag in ("options file", "yaml options"):
                needle = "not a regular file"
            if kind == "directory" and tag in ("eval data", "pretrained", "task model"):
                needle = "checkpoint folder"  # a folder is a sharded checkpoint: it names what it lacks
            expect_error(f"{kind} as {tag}", 2, args, [needle], outs, limit=20)
        # a results.h5 or journal inside a run folder that is a FIFO
        fr = f"{d}/fiforun-{kind[:3]}"
        shutil.rmtree(fr, ignore_errors=True)
        shutil.copytree(run, fr)
        os.remove(f"{fr}/results.h5")
        if kind == "FIFO":
            os.mkfifo(f"{fr}/results.h5")
            expect_error("FIFO results.h5 in -map_results", 2, ["info", "-map_results", fr], ["FIFO"], limit=20)
            expect_error("FIFO results.h5 in -map_run", 2, ["export", "-map_store", store, "-map_run", fr, "-map_output", out + ".st"],
                         ["FIFO"], [out + ".st"], limit=20)
            os.remove(f"{fr}/results.h5")
            os.remove(f"{fr}/journal.jsonl")
            os.mkfifo(f"{fr}/journal.jsonl")
            expect_error("FIFO journal", 2, ["run", "-map_eval_type", "analytic", "-map_tasks", ",".join(tasks), "-map_output", fr,
                                             "-map_resume"], ["FIFO", "journal"], [f"{fr}/results.h5"], limit=20)


def case_options(d):
    """every option refused before the first evaluation: the run folder is never made"""
    run = f"{d}/run"
    base = ["run", "-map_eval_type", "analytic", "-map_tasks", "a,b,c", "-map_output", run]
    cases = [
        (["-map_refine", "200000000"], ["-map_refine 200000000"]),
        (["-map_refine", "900000", "-map_refine_points", "900000"], ["-map_refine 900000", "-map_refine_points 900000", "limit"]),
        (["-map_sample_type", "lhs", "-map_sample_n", "2147483647"], ["-map_sample_n 2147483647"]),
        (["-map_reevaluate", "-5"], ["-map_reevaluate -5"]),
        (["-map_preference", "1,-1,1"], ["-map_preference", "weight 2"]),
        (["-map_preference", "0,0,0"], ["-map_preference", "sum to 0"]),
        (["-map_preference", "1,nan,1"], ["-map_preference", "weight 2"]),
        (["-map_surrogate_grid", "3,3"], ["-map_surrogate_grid 3,3", "2 MPI ranks"]),
        (["-map_surrogate_grid", "2147483647,1"], ["-map_surrogate_grid 2147483647,1"]),
        (["-map_pareto_divisions", "100000"], ["-map_pareto_divisions 100000", "limit 1e7"]),
        (["-map_surrogate_lm_maxit", "-1"], ["-map_surrogate_lm_maxit -1"]),
        (["-map_surrogate_lm_maxit", "0"], ["-map_surrogate_lm_maxit 0"]),
        (["-map_method", "bayesian", "-map_bayes_batch", "-3"], ["-map_bayes_batch -3"]),
        (["-map_method", "bayesian", "-map_bayes_iterations", "1000000", "-map_bayes_batch", "1000000"], ["-map_bayes_iterations x -map_bayes_batch"]),
        (["-map_method", "nested", "-map_nested_samples", "-2"], ["-map_nested_samples -2"]),
    ]
    for extra, needles in cases:
        shutil.rmtree(run, ignore_errors=True)
        expect_error("options " + " ".join(extra), 2, base + extra, needles, [run], limit=20)


def raw_safetensors(path, entries):
    """entries: (name, dtype tag, shape, raw bytes) written as they are (dtypes stio does not know)"""
    import json
    import struct
    header, off, blob = {}, 0, b""
    for name, tag, shape, b in entries:
        header[name] = {"dtype": tag, "shape": list(shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blob += b
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)


def case_messages(d):
    store, tasks = small_store(d, 2)
    pre, tm = f"{d}/pretrained.safetensors", [f"{d}/{t}.safetensors" for t in tasks]
    out = f"{d}/out"
    imp = ["import", "-map_tasks", ",".join(tasks), "-map_store", out + ".h5"]
    base = stio.load(pre)
    # dtypes mapmerge cannot merge are named as the file names them (not "OTHER") [C20]
    for tag, size in (("F8_E4M3", 1), ("U16", 2), ("C64", 8)):
        entries = [(k, "F32", v.shape, v.astype("<f4").tobytes()) for k, v in base.items() if k != "encoder.2.bias"]
        entries.append(("encoder.2.bias", tag, base["encoder.2.bias"].shape, b"\0" * (size * base["encoder.2.bias"].size)))
        raw_safetensors(f"{d}/pre-{tag}.safetensors", entries)
        expect_error(f"dtype {tag}", 2, imp + ["-map_pretrained", f"{d}/pre-{tag}.safetensors", "-map_task_models", ",".join(tm)],
                     [f"dtype {tag}", "encoder.2.bias"], [out + ".h5"])
    # an empty tensor name: refused by import as by export [B18]
    for t in tasks:
        m = stio.load(f"{d}/{t}.safetensors")
        m[""] = np.zeros(2, np.float32)
        stio.save(f"{d}/{t}-empty.safetensors", m)
    pe = dict(base)
    pe[""] = np.zeros(2, np.float32)
    stio.save(f"{d}/pre-empty.safetensors", pe)
    expect_error("empty tensor name", 2, imp + ["-map_pretrained", f"{d}/pre-empty.safetensors", "-map_task_models",
                                                ",".join(f"{d}/{t}-empty.safetensors" for t in tasks)], ["empty name"], [out + ".h5"])
    # a zero-size private tensor: stored, described and exported with its shape [B18]
    for t in tasks:
        m = stio.load(f"{d}/{t}.safetensors")
        m["head.empty"] = np.zeros((0, 3), np.float32)
        stio.save(f"{d}/{t}-zero.safetensors", m)
    p, _ = mm(2, "import", "-map_pretrained", pre, "-map_tasks", ",".join(tasks), "-map_task_models",
              ",".join(f"{d}/{t}-zero.safetensors" for t in tasks), "-map_store", f"{d}/zero.h5")
    if check(p.returncode == 0, "import with a zero-size private tensor:\n" + p.stdout + p.stderr[-2000:]):
        p, _ = mm(3, "export", "-map_store", f"{d}/zero.h5", "-map_coeff", "0.5,0.5", "-map_export_private", "task1",
                  "-map_output", f"{d}/zero.safetensors")
        if check(p.returncode == 0, "export of a zero-size private tensor:\n" + p.stdout + p.stderr[-2000:]):
            z = stio.load(f"{d}/zero.safetensors")
            check(z["head.empty"].shape == (0, 3), f"zero-size tensor exported as {z['head.empty'].shape}")
            print("zero-size private tensor: imported, exported with shape (0, 3)")
    # CSV: underflow and overflow named; a UTF-8 BOM before the header is not part of the first name [C20]
    data = ",".join(f"{d}/{t}_val.safetensors" for t in tasks)
    ev = ["eval", "-map_store", store, "-map_eval_data", data, "-map_output", out + ".csv"]
    for val, why in (("1e-400", "underflow"), ("1e400", "overflow"), ("nan", "not a finite number"), ("0.5x", "not a number")):
        with open(f"{d}/c.csv", "w") as f:
            f.write(f"task0,task1\n0.5,{val}\n")
        expect_error(f"csv {val}", 1, ev + ["-map_coeffs", f"{d}/c.csv"], ["line 2", "task1", why], [out + ".csv"])
    with open(f"{d}/bom.csv", "wb") as f:
        f.write(b"\xef\xbb\xbftask0,task1\n0.5,0.5\n")
    p, _ = mm(1, *ev, "-map_coeffs", f"{d}/bom.csv")
    check(p.returncode == 0 and os.path.exists(out + ".csv"), "CSV with a UTF-8 BOM:\n" + p.stderr[-1500:])
    for o in (out + ".csv", out + ".h5"):  # eval writes both
        if os.path.exists(o):
            os.remove(o)
    print("csv with a UTF-8 BOM: read")
    # YAML: a key twice, and a value of the wrong type, name the key / option [C20]
    with open(f"{d}/dup.yaml", "w") as f:
        f.write("map:\n  reevaluate: 3\n  eval:\n    type: mlp\n  reevaluate: 4\n")
    expect_error("yaml duplicate key", 2, ["info", "-map_store", store, "-options_file_yaml", f"{d}/dup.yaml"],
                 ["map.reevaluate", "line 5", "line 2"])
    with open(f"{d}/type.yaml", "w") as f:
        f.write("map:\n  reevaluate: [1, 2]\n")
    expect_error("yaml type", 2, ["run", "-map_eval_type", "analytic", "-map_tasks", "a,b", "-map_output", f"{d}/r",
                                  "-options_file_yaml", f"{d}/type.yaml"], ["-map_reevaluate", "no integer value"], [f"{d}/r"])
    # a path longer than the buffers is refused, not truncated [C20]
    longp = d + "/" + "x" * 5000
    expect_error("long path", 2, ["info", "-map_store", store, "-map_output", longp], ["-map_output", "5", "limit of 4095"])
    expect_error("long list item", 2, ["eval", "-map_store", store, "-map_coeffs", f"{d}/bom.csv", "-map_eval_data",
                                       data + "," + longp, "-map_output", out + ".csv"], ["-map_eval_data", "limit of 4095"], [out + ".csv"])
    # shard names: judged by where they resolve, not by their text [C20]
    shard = f"{d}/sharded"
    os.makedirs(f"{shard}/sub")
    names = list(base)
    stio.save(f"{shard}/part1.safetensors", {k: base[k] for k in names[:3]})
    stio.save(f"{shard}/part2.safetensors", {k: base[k] for k in names[3:]})
    import json
    with open(f"{shard}/model.safetensors.index.json", "w") as f:
        json.dump({"weight_map": {**{k: "part1.safetensors" for k in names[:3]}, **{k: "sub/../part2.safetensors" for k in names[3:]}}}, f)
    p, _ = mm(2, "import", "-map_pretrained", shard, "-map_tasks", ",".join(tasks), "-map_task_models", ",".join(tm),
              "-map_store", f"{d}/sharded.h5")
    check(p.returncode == 0, 'a shard named "sub/../part2.safetensors" (inside the folder) refused:\n' + p.stderr[-1500:])
    os.makedirs(f"{d}/elsewhere")
    os.rename(f"{shard}/part2.safetensors", f"{d}/elsewhere/part2.safetensors")
    os.symlink(f"{d}/elsewhere/part2.safetensors", f"{shard}/part2.safetensors")
    expect_error("shard symlink outside", 2, ["import", "-map_pretrained", shard, "-map_tasks", ",".join(tasks), "-map_task_models",
                                              ",".join(tm), "-map_store", out + ".h5"], ["outside the checkpoint folder", "part2"], [out + ".h5"])
    # an evaluator's accuracy outside [0, 1] [C20]
    with open(f"{d}/c.csv", "w") as f:
        f.write("task0,task1\n0.5,0.5\n")
    prog = f"{PY} -c 'print(\"{{\\\"accuracy\\\": 1.5, \\\"loss\\\": 0.1}}\")' {{model}}"
    expect_error("accuracy 1.5", 2, ["eval", "-map_store", store, "-map_coeffs", f"{d}/c.csv", "-map_eval_type", "command",
                                     "-map_eval_command", prog, "-map_eval_tmpdir", d, "-map_output", out + ".csv"],
                 ["accuracy 1.5", "[0, 1]"], [out + ".csv"])
    # out of memory (an address-space limit the model's evaluation does not fit): what the node and the limit allow [C20]
    import resource
    big = f"{d}/big"
    subprocess.run([PY, os.path.join(HERE, "..", "eval", "gen_mlp.py"), big, "--dims", "3000,3000,10", "--classes", "3,3",
                    "--samples", "10,10"], check=True, capture_output=True)
    p, _ = mm(1, "import", "-map_pretrained", f"{big}/pretrained.safetensors", "-map_tasks", "task0,task1", "-map_task_models",
              f"{big}/task0.safetensors,{big}/task1.safetensors", "-map_store", f"{big}/store.h5")
    # 440 MiB: below what this model's evaluation needs since it merges straight into the row blocks (at 500 MiB the
    # set-up now fits and OpenBLAS, short of address space for its buffers, hangs instead of failing)
    lim = 440 << 20
    q = subprocess.run([MPIEXEC, "-n", "1", MAPMERGE, "eval", "-map_store", f"{big}/store.h5", "-map_coeffs", f"{d}/c.csv", "-map_eval_data",
                        f"{big}/task0_val.safetensors,{big}/task1_val.safetensors", "-map_output", out + "-oom.csv"], capture_output=True, text=True,
                       timeout=60, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (lim, lim)))
    if "out of memory" in q.stderr and "Sanitizer" not in q.stderr:  # ASan needs more address space than the limit
        check(q.returncode != 0 and "GiB available" in q.stderr and "ulimit -v" in q.stderr and not os.path.exists(out + "-oom.csv"),
              f"out of memory: exit {q.returncode}:\n{q.stderr[-1500:]}")
        print("out of memory: " + next(l for l in q.stderr.splitlines() if "out of memory" in l)[:200])
    else:
        print(f"out of memory: skipped (under a 500 MiB address-space limit the run ended otherwise: exit {q.returncode})")
    # a full disk: the import says so, and where [C20]
    mnt = f"{d}/tiny"
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode:
        print(f"full disk: skipped (cannot mount a small tmpfs: {r.stderr.strip()})")
        return
    try:
        expect_error("full disk import", 2, ["import", "-map_pretrained", pre, "-map_tasks", ",".join(tasks), "-map_task_models", ",".join(tm),
                                             "-map_store", f"{mnt}/store.h5", "-map_import_chunk", "1024"],
                     ["no space left on device", f"{mnt}/store.h5", "MB free"], [f"{mnt}/store.h5"])
        check(not os.listdir(mnt), f"full disk import left {os.listdir(mnt)}")
    finally:
        subprocess.run(["umount", mnt], capture_output=True)


CASES = {"results": case_results, "fifo": case_fifo, "options": case_options, "messages": case_messages}

if __name__ == "__main__":
    with tempfile.TemporaryDirectory(dir=os.environ.get("MAP_BINARY_DIR")) as d:
        CASES[sys.argv[1]](d)
    print("FAILED" if fails else "OK")
    sys.exit(1 if fails else 0)
