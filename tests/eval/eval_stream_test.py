"""Streamed evaluation (-map_eval_stream, issue 17): the command evaluator's model files merged straight
from the store block by block are byte-identical to those merged from the shards in memory, at any
rank count and block size, and an evaluation fits under a memory limit the in-memory model exceeds.

usage: eval_stream_test.py identical|memlimit WORKDIR MPIEXEC MAPMERGE
  identical: F32 and BF16 stores of odd-sized tensors (gen_model.py, P = 200,003, T = 3): `mapmerge
             eval` of three coefficient vectors with the in-memory model at -n 1 (the reference) and
             with -map_eval_stream at -n 1, 2, 3 and 4 (blocks of 0.05 MiB: many blocks, crossing
             tensor boundaries), plus the in-memory model in small blocks at -n 3: every model file the
             program was handed is kept and compared byte for byte, and the metrics CSVs are equal;
             the merged values equal an independent float64 merge rounded to F32 within 1 ulp-ish;
             a MAP run (`mapmerge run`, -n 3, streamed) gives the same results.h5 datasets as the
             in-memory run at -n 1; -map_eval_stream with the mlp evaluator is refused by name.
  memlimit:  P = 3e7, T = 3 (F32 store, 480 MB of shards): under `ulimit -v` the in-memory evaluation
             fails for lack of memory and writes no result; the streamed one succeeds with the same
             metrics as an unlimited in-memory evaluation."""
import filecmp
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "slurm"))
sys.path.insert(0, os.path.join(HERE, "..", "export"))
import export_stream_test as base  # noqa: E402  (its store maker and command runner; MPI and MM set below)
from export_stream_test import fail, run  # noqa: E402

# The program the command evaluator runs: keeps a copy of the model it was handed (identical mode),
# reads the first tensor's first values with the standard library only (no numpy: it runs under the
# memory limit too) and reports a metric derived from them.
SCORER = r'''
import json, os, shutil, struct, sys
model, task, keep = sys.argv[1:4]
with open(model, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
    first = sorted((v["data_offsets"][0], k) for k, v in hdr.items() if k != "__metadata__")[0][1]
    a, b = hdr[first]["data_offsets"]
    f.seek(8 + n + a)
    vals = struct.unpack("<%df" % min(1000, (b - a) // 4), f.read(min(4000, b - a)))
if keep != "-":
    k = 0
    while os.path.exists(os.path.join(keep, "%s-%d.safetensors" % (task, k))):
        k += 1
    shutil.copyfile(model, os.path.join(keep, "%s-%d.safetensors" % (task, k)))
s = sum(abs(v) for v in vals) / len(vals)
print(json.dumps({"accuracy": 1.0 / (1.0 + s), "loss": s}))
'''


def read_safetensors(path):
    """name -> list of float values (F32 only), by hand"""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        if v["dtype"] != "F32":
            fail("%s: tensor %s is %s, expected F32" % (path, k, v["dtype"]))
        a, b = v["data_offsets"]
        out[k] = struct.unpack("<%df" % ((b - a) // 4), data[a:b])
    return out


def evaluate(work, n, store, T, coeffs, tag, extra=(), limit_kb=None, keep=True):
    keepdir = os.path.join(work, "keep-" + tag)
    shutil.rmtree(keepdir, ignore_errors=True)
    os.makedirs(keepdir)
    out = os.path.join(work, "eval-%s.csv" % tag)
    cmd = [MPI, "-n", str(n), MM, "eval", "-map_store", store, "-map_coeffs", coeffs, "-map_output", out, "-map_eval_type", "command",
           "-map_eval_command", "%s %s {model} {task} %s" % (sys.executable, SCORER_PATH, keepdir if keep else "-")] + list(extra)
    if limit_kb:
        return run("ulimit -v %d && %s" % (limit_kb, " ".join("'%s'" % c for c in cmd)), expect_ok=False, shell=True), out, keepdir
    return run(cmd), out, keepdir


def identical(work):
    T = 3
    stores, models = base.make_store(work, 200_003, T, ["f32", "bf16"], keep_model=True)
    coeffs = os.path.join(work, "coeffs.csv")
    with open(coeffs, "w") as f:
        f.write("t0,t1,t2\n0.7,-0.4,1.3\n0.25,0.5,0.125\n1e-3,0,2\n")
    files = 0
    for dt, store in stores.items():
        _, ref_csv, ref_keep = evaluate(work, 1, store, T, coeffs, dt + "-ref")
        names = sorted(os.listdir(ref_keep))
        if len(names) != 3 * T:
            fail("%s: the program was handed %d models, expected %d" % (dt, len(names), 3 * T))
        variants = [(k, ["-map_eval_stream", "-map_eval_block_mb", "0.05"]) for k in (1, 2, 3, 4)]
        variants.append((3, ["-map_eval_block_mb", "0.05"]))
        for n, extra in variants:
            tag = "%s-%d-%s" % (dt, n, "stream" if "-map_eval_stream" in extra else "memory")
            _, csv, keep = evaluate(work, n, store, T, coeffs, tag, extra)
            if sorted(os.listdir(keep)) != names:
                fail("%s: model files %s vs the reference's %s" % (tag, sorted(os.listdir(keep)), names))
            for nm in names:
                if not filecmp.cmp(os.path.join(ref_keep, nm), os.path.join(keep, nm), shallow=False):
                    fail("%s: model file %s differs from the in-memory one at -n 1" % (tag, nm))
                files += 1
            if open(csv).read() != open(ref_csv).read():
                fail("%s: metrics differ:\n%s\nvs\n%s" % (tag, open(csv).read(), open(ref_csv).read()))
        if dt == "f32":  # the merged values against a float64 merge written here, from the checkpoints themselves
            pre = read_safetensors(os.path.join(models, "pretrained.safetensors"))
            tv = [read_safetensors(os.path.join(models, "task%d.safetensors" % t)) for t in range(T)]
            got = read_safetensors(os.path.join(ref_keep, "t0-0.safetensors"))
            c = (0.7, -0.4, 1.3)
            worst = 0.0
            for name in ("layers.0.weight", "layers.1.weight", "layers.1.bias"):
                for j in range(0, len(pre[name]), 97):
                    want = pre[name][j] + sum(c[t] * (tv[t][name][j] - pre[name][j]) for t in range(T))
                    worst = max(worst, abs(got[name][j] - want) / max(1e-30, abs(want)))
            if worst > 1e-5:
                fail("merged model differs from the float64 merge: worst relative error %g" % worst)
            print("f32: merged values within %.2g of a float64 merge of the checkpoints" % worst)
    # a whole MAP run: streamed at -n 3 against in memory at -n 1
    from same_results import differences
    store = stores["f32"]
    res = {}
    for n, extra, tag in ((1, [], "mem"), (3, ["-map_eval_stream", "-map_eval_block_mb", "0.05"], "stream")):
        out = os.path.join(work, "run-" + tag)
        run([MPI, "-n", str(n), MM, "run", "-map_store", store, "-map_eval_type", "command", "-map_eval_command",
             "%s %s {model} {task} -" % (sys.executable, SCORER_PATH), "-map_output", out, "-map_sample_n", "12", "-map_seed", "3"] + extra)
        res[tag] = os.path.join(out, "results.h5")
    bad = differences(res["mem"], res["stream"])
    if bad:
        fail("streamed run at -n 3 differs from the in-memory run at -n 1:\n" + "\n".join(bad[:10]))
    p = run([MPI, "-n", "1", MM, "eval", "-map_store", store, "-map_coeffs", coeffs, "-map_output", os.path.join(work, "mlp.csv"),
             "-map_eval_stream"], expect_ok=False)
    if p.returncode == 0 or "-map_eval_stream" not in p.stdout or "mlp" not in p.stdout:
        print(p.stdout)
        fail("-map_eval_stream with the mlp evaluator was not refused by name")
    print("identical: %d streamed/blocked model files equal the in-memory ones at -n 1; run results equal at -n 3" % files)


def memlimit(work):
    T = 3
    stores = base.make_store(work, 30_000_000, T, ["f32"])
    store = stores["f32"]
    coeffs = os.path.join(work, "coeffs.csv")
    with open(coeffs, "w") as f:
        f.write("t0,t1,t2\n0.5,0.25,0.125\n")
    limit_kb = 600_000  # in memory: (T+1)*P*4 = 480 MB of shards on top of ~250 MB of MPI/PETSc/HDF5 address space
    p, out, _ = evaluate(work, 1, store, T, coeffs, "big", (), limit_kb, keep=False)
    if p.returncode == 0:
        fail("the in-memory evaluation succeeded under ulimit -v %d kB: the limit does not test anything" % limit_kb)
    if "memory" not in p.stdout:
        print(p.stdout)
        fail("the in-memory evaluation under ulimit -v %d kB failed, but not for lack of memory" % limit_kb)
    if os.path.exists(out):
        fail("a failed evaluation left %s behind" % out)
    p, out, _ = evaluate(work, 1, store, T, coeffs, "stream", ["-map_eval_stream", "-map_eval_block_mb", "16"], limit_kb, keep=False)
    if p.returncode != 0:
        print(p.stdout)
        fail("streamed evaluation failed under ulimit -v %d kB" % limit_kb)
    _, ref, _ = evaluate(work, 1, store, T, coeffs, "ref", (), None, keep=False)
    if open(out).read() != open(ref).read():
        fail("streamed metrics differ from the in-memory ones:\n%s\nvs\n%s" % (open(out).read(), open(ref).read()))
    print("memlimit: in-memory evaluation fails under ulimit -v %d kB, streamed one succeeds with the same metrics" % limit_kb)


if __name__ == "__main__":
    mode, work, MPI, MM = sys.argv[1:5]
    base.MPI, base.MM = MPI, MM
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    SCORER_PATH = os.path.join(work, "scorer.py")
    with open(SCORER_PATH, "w") as f:
        f.write(SCORER)
    {"identical": identical, "memlimit": memlimit}[mode](work)
    shutil.rmtree(work, ignore_errors=True)
