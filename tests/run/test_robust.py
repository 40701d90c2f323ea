#!/usr/bin/python3
"""Nothing silently wrong, nothing lost (issue 12, section A and B16): one case per class of defect
an adversarial audit found. Each hostile input must give a clear error, a non-zero exit, nothing
half-written, no earlier result lost, and every rank must end within seconds.

usage: test_robust.py CASE   (env: MAPMERGE, MAP_SOURCE_DIR, MAP_BINARY_DIR)
"""
import hashlib, json, os, shutil, signal, subprocess, sys, time
import numpy as np
import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_run import MAPMERGE, SMALL, WORK, fail, mpi, setup_zoo, fresh, journal_lines, expect_error  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import map_digest  # noqa: E402  (the range digest, written independently of the C code)

FAST = ["-map_tasks", "rot90,flip_v", "-map_sample_type", "lhs", "-map_sample_n", "12", "-map_reevaluate", "2"]


def fresh_store():
    """the small zoo imported by this build (a store cached by an older build may lack checksums)"""
    setup_zoo()
    store = os.path.join(WORK, "store-robust.h5")
    if os.path.exists(store):
        os.remove(store)
    mpi(2, "import", "-options_file_yaml", SMALL, "-map_store", store)
    return store


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def timed_error(args, pattern, n=2, limit=60, run=None):
    """expect_error, and the job (every rank) ended within `limit` seconds"""
    t0 = time.time()
    expect_error(args, pattern, n=n, run=run)
    if time.time() - t0 > limit:
        fail(f"{args[0]} took {time.time() - t0:.0f} s to fail")


def snapshot(folder):
    """sha256 of every file but the lock (which holds the pid of the last run that took it)"""
    return {f: sha(os.path.join(folder, f)) for f in sorted(os.listdir(folder)) if os.path.isfile(os.path.join(folder, f)) and not f.endswith(".lock")}


def run_line(line):
    return line + "\t" + hashlib.sha256(line.encode()).hexdigest() + "\n"


def case_journal():
    """A1 a journal is bound to what produced it; A5 only a torn LAST line is a torn write; B16 a
    non-finite metric is journaled as valid JSON, marked failed."""
    store = fresh_store()
    base = ["run", "-options_file_yaml", SMALL, "-map_store", store]
    run = fresh("robust-journal")
    mpi(2, *base, *FAST, "-map_output", run)
    before = snapshot(run)
    header = json.loads(open(os.path.join(run, "journal.jsonl")).readline().split("\t")[0])
    if header.get("kind") != "header" or header["binding"]["tasks"] != ["rot90", "flip_v"]:
        fail(f"journal does not start with its binding: {header}")
    # A1: other task order, other eval data, another store (one byte more), another seed
    swapped = FAST[:]
    swapped[1] = "flip_v,rot90"
    timed_error(base + swapped + ["-map_output", run, "-map_resume"], "tasks: journal [\"rot90\",\"flip_v\"], this run [\"flip_v\",\"rot90\"]")
    data = "zoo-small/data/flip_v_val.safetensors,zoo-small/data/rot90_val.safetensors"
    timed_error(base + FAST + ["-map_output", run, "-map_resume", "-map_eval_data", data], "evaluator.data_sha256")
    other = os.path.join(WORK, "store-other.h5")
    shutil.copy(store, other)
    with open(other, "ab") as f:
        f.write(b"\0" * 8)  # HDF5 still opens it; its content hash differs
    timed_error(["run", "-options_file_yaml", SMALL, "-map_store", other] + FAST + ["-map_output", run, "-map_resume"], "store_digest")
    timed_error(base + FAST + ["-map_output", run, "-map_resume", "-map_seed", "3"], "design.seed: journal 0, this run 3")
    if snapshot(run) != before:
        fail("a refused resume changed the run folder")
    # the store is bound by its range digest, hashed by all ranks; a journal an older mapmerge bound to the
    # plain sha256 of the store still resumes (the store hashed the old way for it), and another store's
    # sha256 there is refused
    want = "sha256-ranges-%d:%s" % (map_digest.DEFAULT_RANGE, map_digest.digest(store))
    if header["binding"].get("store_digest") != want:
        fail(f"journal binds the store as {header['binding'].get('store_digest')}, scripts/map_digest.py computes {want}")
    for tag, digest in (("legacy", sha(store)), ("legacy-other", sha(other))):
        old_run = fresh("robust-journal-" + tag)
        os.makedirs(old_run)
        lines = open(os.path.join(run, "journal.jsonl")).read().splitlines(True)
        h = json.loads(lines[0].split("\t")[0])
        h["binding"] = {("store_sha256" if k == "store_digest" else k): (digest if k == "store_digest" else v) for k, v in h["binding"].items()}
        open(os.path.join(old_run, "journal.jsonl"), "w").writelines([run_line(json.dumps(h, separators=(",", ":")))] + lines[1:])
        if tag == "legacy":
            out = mpi(2, *base, *FAST, "-map_output", old_run, "-map_resume").stdout
            if "resuming" not in out:
                fail("a journal bound to the store's plain sha256 did not resume: " + out[-1500:])
        else:
            timed_error(base + FAST + ["-map_output", old_run, "-map_resume"], "store_sha256")
    # a journal without a header (older mapmerge, or stripped) is not trusted either
    bare = fresh("robust-journal-bare")
    os.makedirs(bare)
    lines = open(os.path.join(run, "journal.jsonl")).read().splitlines(True)
    open(os.path.join(bare, "journal.jsonl"), "w").writelines(lines[1:])
    timed_error(base + FAST + ["-map_output", bare, "-map_resume"], "no header line")

    # A5: one edited value in the middle: an error naming the line, the file unchanged
    mid = fresh("robust-journal-mid")
    os.makedirs(mid)
    edited = lines[:]
    edited[3] = edited[3].replace('"index":2', '"index":7', 1)
    open(os.path.join(mid, "journal.jsonl"), "w").writelines(edited)
    j0 = sha(os.path.join(mid, "journal.jsonl"))
    timed_error(base + FAST + ["-map_output", mid, "-map_resume"], "line 4: checksum mismatch, and valid lines follow it")
    if sha(os.path.join(mid, "journal.jsonl")) != j0:
        fail("the refused resume changed the journal")
    # a torn last line is dropped and the run completes with the rest
    torn = fresh("robust-journal-torn")
    os.makedirs(torn)
    open(os.path.join(torn, "journal.jsonl"), "w").writelines(lines[:6] + [lines[6][:40]])
    p = mpi(2, *base, *FAST, "-map_output", torn, "-map_resume")
    if "dropping torn last line 7" not in p.stdout + p.stderr or "resuming" not in p.stdout:
        fail("the torn last line was not reported: " + p.stdout[-1500:])
    with h5py.File(os.path.join(run, "results.h5"), "r") as a, h5py.File(os.path.join(torn, "results.h5"), "r") as b:
        if a["pick/coeffs"][...].tobytes() != b["pick/coeffs"][...].tobytes():
            fail("resume after a torn line picked another model")

    # B16: an infinite loss (analytic quadratic far outside its range) is journaled as valid JSON, failed;
    # issue 16: failed points are left out of the fit, and with too few left the error says so
    inf = fresh("robust-journal-inf")
    args = ["run", "-map_eval_type", "analytic", "-map_analytic_problem", "quadratic", "-map_tasks", "a,b", "-map_box", "0,1e200",
            "-map_output", inf]
    timed_error(args, "samples were evaluated without failure", run=inf)
    for line in open(os.path.join(inf, "journal.jsonl")):
        obj = json.loads(line.split("\t")[0])  # strict JSON: no bare inf/nan
    if not obj.get("failed") or obj["loss"] != [None, None]:
        fail(f"last journal line {obj} is not a failed entry with null metrics")
    n0 = journal_lines(inf)
    timed_error(args + ["-map_resume"], "samples were evaluated without failure", run=inf)  # read as done, not retried
    if journal_lines(inf) != n0:
        fail("the resume evaluated the failed points again")
    print("PASS journal")


def case_lock():
    """A2: a second run on a folder in use is refused at once; the first completes; default folder
    names of runs started together differ."""
    store = fresh_store()
    run = fresh("robust-lock")
    args = ["run", "-options_file_yaml", SMALL, "-map_store", store, "-map_output", run] + FAST[:-4] + ["-map_sample_n", "20000",
                                                                                                      "-map_reevaluate", "2"]
    cmd = ["mpiexec", "-n", "2", "--oversubscribe", MAPMERGE] + args
    p = subprocess.Popen(cmd, cwd=WORK, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.time()
    while journal_lines(run) < 2:
        if p.poll() is not None or time.time() - t0 > 120:
            fail("the first run ended or stalled before the second started: " + (p.stdout.read()[-2000:] if p.poll() is not None else ""))
        time.sleep(0.05)
    for extra in ([], ["-map_resume"]):  # the same options: only the lock can refuse them
        timed_error(args + extra, "run folder in use", limit=30)
    if p.poll() is not None:
        fail("the first run ended before the second was refused: the test proves nothing (make it longer)")
    # the first run (far too long to finish) is checkpointed: SIGUSR1, which mpiexec passes on to the ranks
    p.send_signal(signal.SIGUSR1)
    out, _ = p.communicate(timeout=120)
    if p.returncode != 85:
        fail(f"the first run did not checkpoint (exit {p.returncode}, expected 85) after the second was refused: " + out[-2000:])
    lines = open(os.path.join(run, "journal.jsonl")).read().splitlines()
    idx = [json.loads(l.split("\t")[0]).get("index") for l in lines[1:] if '"kind":"sample"' in l]
    if len(idx) < 2 or idx != list(range(len(idx))):
        fail(f"journal of the first run is not its own samples in order: {idx[:10]}...")
    # default names: two analytic runs started together in one folder land in two run folders
    cwd = fresh("robust-default-names")
    os.makedirs(cwd)
    a = ["mpiexec", "-n", "1", "--oversubscribe", MAPMERGE, "run", "-map_eval_type", "analytic", "-map_analytic_problem", "quadratic",
         "-map_tasks", "a,b"]
    ps = [subprocess.Popen(a, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    for q in ps:
        out, _ = q.communicate(timeout=120)
        if q.returncode != 0:
            fail("a run with a default folder failed: " + out[-2000:])
    folders = os.listdir(os.path.join(cwd, "runs"))
    if len(folders) != 3 or not all(os.path.exists(os.path.join(cwd, "runs", f, "results.h5")) for f in folders):
        fail(f"three runs started together made {folders}")
    print("PASS lock", folders)


def tamper(src, name, edit):
    """a copy of the store `src` changed by edit(h5py.File)"""
    dst = os.path.join(WORK, name)
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def case_store():
    """A6 duplicate tasks, A7 non-finite values and checksums, A9 outputs that are inputs, A11
    format_version."""
    store = fresh_store()
    run = fresh("robust-store")
    base = ["-options_file_yaml", SMALL]
    # A6
    timed_error(["run", *base, "-map_store", store, "-map_tasks", "rot90,rot90", "-map_output", run], "names task rot90 twice", run=run)

    def dup(f):
        names = f["tasks"][...]
        names[1] = names[0]
        f["tasks"][...] = names
    dstore = tamper(store, "store-dup.h5", dup)
    timed_error(["run", *base, "-map_store", dstore, "-map_output", run], "twice", run=run)
    timed_error(["info", "-map_store", dstore], "/tasks names task rot90 twice")
    timed_error(["export", "-map_store", dstore, "-map_coeff", "0.3,0.3,0.3,0.3", "-map_output", os.path.join(WORK, "dup.safetensors")], "twice")
    # A11
    for v in ("2", "999"):
        vstore = tamper(store, f"store-v{v}.h5", lambda f: f.attrs.__setitem__("format_version", v))
        timed_error(["info", "-map_store", vstore], f"format_version is \"{v}\"")
        timed_error(["run", *base, "-map_store", vstore, "-map_output", run], "reads version 1 only", run=run)
    # A7: a flipped exponent bit in /task_vectors: info -map_check and every run refuse it
    def flip(f):
        tv = f["task_vectors"]
        x = tv[1, 100:101].view(np.uint32)
        tv[1, 100:101] = (x ^ np.uint32(1 << 27)).view(np.float32)
    fstore = tamper(store, "store-flip.h5", flip)
    p = mpi(2, "info", "-map_store", store, "-map_check")
    if "match their checksums" not in p.stdout:
        fail("info -map_check on a good store: " + p.stdout[-1000:])
    print(p.stdout.strip().splitlines()[-1])
    timed_error(["info", "-map_store", fstore, "-map_check"], "/task_vectors row of task flip_v does not match its checksum")
    timed_error(["run", *base, "-map_store", fstore, "-map_output", run] + FAST, "does not match its checksum", run=run)
    merged = os.path.join(WORK, "robust-merged.safetensors")
    for f in (merged, os.path.join(WORK, "robust-big.h5"), os.path.join(WORK, "robust-big.csv")):
        if os.path.exists(f):
            os.remove(f)
    timed_error(["export", "-map_store", fstore, "-map_coeff", "0.3,0.3,0.3,0.3", "-map_output", merged], "does not match its checksum")
    # NaN in a store without checksums (older, or crafted): caught on the merged model, no metric, no file
    def nan(f):
        f["task_vectors"][0, 7] = np.nan
        for d in ("pretrained", "task_vectors"):
            del f[d].attrs["checksum"]
    nstore = tamper(store, "store-nan.h5", nan)
    timed_error(["run", *base, "-map_store", nstore, "-map_output", run] + FAST, "is NaN; nothing evaluated or written", run=run)
    timed_error(["export", "-map_store", nstore, "-map_coeff", "0.3,0.3,0.3,0.3", "-map_output", merged], "is NaN")
    timed_error(["info", "-map_store", nstore, "-map_check"], "1 non-finite values")
    # a coefficient beyond F32 gives Inf weights; 1e30 gives finite weights but a NaN loss: errors, not
    # accuracy 0.1 and exit 0
    timed_error(["export", "-map_store", store, "-map_coeff", "1e39,0,0,0", "-map_output", merged], "is Inf")
    csv = os.path.join(WORK, "robust-big-coeffs.csv")
    open(csv, "w").write("rot90,flip_v\n1e30,0\n")
    timed_error(["eval", *base, "-map_store", store, "-map_tasks", "rot90,flip_v", "-map_coeffs", csv, "-map_output",
                 os.path.join(WORK, "robust-big.h5")], "is not finite")
    for f in (merged, os.path.join(WORK, "robust-big.h5"), os.path.join(WORK, "robust-big.csv")):
        if os.path.exists(f):
            fail(f"a refused command wrote {f}")
    # A9: an output that is an input (also through another path to it) is refused; the input is intact
    zoo = os.path.join(WORK, "zoo-small")
    pre = os.path.join(zoo, "pretrained.safetensors")
    h_pre, h_store = sha(pre), sha(store)
    timed_error(["import", *base, "-map_store", os.path.join(zoo, ".", "pretrained.safetensors")], "is the input")
    timed_error(["import", *base, "-map_store", os.path.join(zoo, "rot90.safetensors")], "is the input")
    link = os.path.join(WORK, "store-link.h5")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(store, link)
    timed_error(["export", "-map_store", store, "-map_coeff", "0.3,0.3,0.3,0.3", "-map_output", link], "is the input")
    hard = os.path.join(WORK, "store-hardlink.h5")
    if os.path.lexists(hard):
        os.remove(hard)
    os.link(store, hard)
    timed_error(["export", "-map_store", store, "-map_coeff", "0.3,0.3,0.3,0.3", "-map_output", hard], "is the input")
    timed_error(["eval", *base, "-map_store", store, "-map_tasks", "rot90,flip_v", "-map_coeffs", csv, "-map_output", store], "is the input")
    if sha(pre) != h_pre or sha(store) != h_store:
        fail("a refused command changed an input")
    print("PASS store")


def case_outputs():
    """A10 a run's outputs are published together; A8 the manifest records the store that was read;
    A3 a sharded export over an existing one is switched in whole."""
    store = fresh_store()
    base = ["run", "-options_file_yaml", SMALL, "-map_store", store]
    # A10: front.csv cannot be published (a folder holds its name): no results.h5, no manifest
    run = fresh("robust-publish")
    os.makedirs(os.path.join(run, "front.csv"))
    timed_error(base + FAST + ["-map_output", run], "front.csv", run=run)
    left = sorted(os.listdir(run))
    if "manifest.json" in left or "results.h5" in left or any(".tmp." in f for f in left):
        fail(f"a run that could not publish front.csv left {left}")
    # A8: the store replaced while the run works: the manifest names the one that was read
    s2 = os.path.join(WORK, "store-swapped.h5")
    shutil.copy(store, s2)
    h_read = "sha256-ranges-%d:%s" % (map_digest.DEFAULT_RANGE, map_digest.digest(s2))  # the store's range digest
    run = fresh("robust-manifest")
    cmd = ["mpiexec", "-n", "2", "--oversubscribe", MAPMERGE, "run", "-options_file_yaml", SMALL, "-map_store", s2, "-map_output", run,
           "-map_tasks", "rot90,flip_v", "-map_sample_type", "lhs", "-map_sample_n", "40"]
    p = subprocess.Popen(cmd, cwd=WORK, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.time()
    while journal_lines(run) < 2 and p.poll() is None and time.time() - t0 < 120:
        time.sleep(0.02)
    with open(s2 + ".new", "wb") as f:
        f.write(open(store, "rb").read() + b"\0" * 16)
    os.replace(s2 + ".new", s2)
    out, _ = p.communicate(timeout=300)
    if p.returncode != 0:
        fail("run failed: " + out[-2000:])
    m = json.load(open(os.path.join(run, "manifest.json")))
    if m["inputs_sha256"].get(s2) != h_read:
        fail(f"manifest records {m['inputs_sha256'].get(s2)} for the store, but {h_read} was read (now {map_digest.digest(s2)})")
    # A3: a sharded export into a folder with an older export (more shards) and a user's file
    out = fresh("robust-sharded")
    mpi(2, "export", "-map_store", store, "-map_coeff", "0.3,0.3,0.3,0.3", "-map_output", out, "-map_export_shard_size", "1k")
    old = sorted(f for f in os.listdir(out) if f.endswith(".safetensors"))
    open(os.path.join(out, "README.md"), "w").write("mine\n")
    mpi(2, "export", "-map_store", store, "-map_coeff", "0.5,0.1,0.1,0.1", "-map_output", out, "-map_export_shard_size", "300k")
    new = sorted(f for f in os.listdir(out) if f.endswith(".safetensors"))
    idx = json.load(open(os.path.join(out, "model.safetensors.index.json")))
    if len(new) >= len(old) or sorted(set(idx["weight_map"].values())) != new:
        fail(f"after re-export: shards {new} (before {old}); the index names {sorted(set(idx['weight_map'].values()))}")
    if open(os.path.join(out, "README.md")).read() != "mine\n":
        fail("the user's file in the export folder was lost")
    if any(".tmp." in f for f in os.listdir(WORK)):
        fail(f"staging left behind: {[f for f in os.listdir(WORK) if '.tmp.' in f]}")
    # a failing export (coefficient overflow) leaves the existing export as it was
    before = snapshot(out)
    timed_error(["export", "-map_store", store, "-map_coeff", "1e39,0,0,0", "-map_output", out, "-map_export_shard_size", "1k"], "is Inf")
    if snapshot(out) != before:
        fail("a failed export changed the existing one")
    print("PASS outputs")


CASES = {"journal": case_journal, "lock": case_lock, "store": case_store, "outputs": case_outputs}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("PASS", sys.argv[1])
