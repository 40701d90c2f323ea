#!/usr/bin/python3
"""A model-folder export killed at every crash point leaves exactly the old folder or exactly the new
one, never a mix (issue 12 A3, issue 14; docs/robustness.md "Exports"):

    hf_crash_test.py sharded WORKDIR MPIEXEC    an unsharded export replaced by a sharded one, and a
                                                sharded export into a fresh path
    hf_crash_test.py unsharded WORKDIR MPIEXEC  a sharded export replaced by an unsharded one, and an
                                                unsharded export into a fresh path

The old export comes from store A (its pretrained folder has vocab.txt), the new one from store B (no
vocab.txt, another config.json, other coefficients); the old folder also holds a user's notes.txt.
Crash points: the renames/links/unlinks/mkdirs/rmdirs rank 0 makes under WORKDIR, found by tracing a
clean export with strace; each is then injected with strace (-e inject=SYSCALL:signal=KILL:when=N:
SIGKILL on entering the N-th call, before it runs). Of a run of calls of one kind in one folder only
the first and the last are killed (to keep the test short); MAP_CRASH_ALL=1 kills before every call. After each kill the folder's files (names and
sha256) must equal a clean old or a clean new export's, and the killed call must be the one aimed at.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_test as hf  # noqa: E402

SYSCALLS = "rename,renameat,renameat2,link,linkat,unlink,unlinkat,mkdir,mkdirat,rmdir"


def snapshot(d):
    """name -> sha256 of every entry of folder d (None when d does not exist)"""
    if not os.path.lexists(d):
        return None
    out = {}
    for f in sorted(os.listdir(d)):
        p = os.path.join(d, f)
        out[f] = hashlib.sha256(open(p, "rb").read()).hexdigest() if os.path.isfile(p) else "<not a file>"
    return out


def calls(log):
    """the traced calls of an strace log, in order, the pids in names replaced (they differ per run)"""
    lines = [ln for ln in open(log).read().splitlines() if ln and not ln.startswith(("---", "+++"))]
    return [re.sub(r"\.tmp\.?\d+", ".tmp.PID", ln.split(" = ")[0]) for ln in lines]


def traced(args, log, inject=None):
    """one export under strace, a singleton MPI process (rank 0 is the one that publishes; a killed
    singleton ends in a second less than one under mpiexec)"""
    st = ["strace", "-o", log, "-e", "trace=" + SYSCALLS]  # no -f: rank 0's main thread publishes (and --seccomp-bpf drops signal injection)
    if inject:
        st += ["-e", "inject=%s:signal=KILL:when=%d" % inject]
    return subprocess.run(st + [hf.MAPMERGE] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120)


def stores(work, mpiexec):
    """stores A and B from two pretrained folders that differ in their files"""
    fam = hf.make(work, ncls=(2, 2), dtype="BF16")
    files_b = {k: v for k, v in hf.FILES.items() if k != "vocab.txt"}
    files_b["config.json"] = b'{"architectures": ["TinyForSequenceClassification"], "hidden_size": 8, "note": "B"}\n'
    hf.write_folder(os.path.join(work, "pretrained_b"), fam["pretrained"], files_b)
    a, b = os.path.join(work, "a.h5"), os.path.join(work, "b.h5")
    hf.run(mpiexec, 2, hf.import_args(work, a, ["-map_private_patterns", "classifier.*"]))
    args = hf.import_args(work, b, ["-map_private_patterns", "classifier.*"])
    args[args.index("-map_pretrained") + 1] = os.path.join(work, "pretrained_b")
    hf.run(mpiexec, 2, args)
    return a, b


def export_args(store, c, out, shard):
    return ["export", "-map_store", store, "-map_coeff", c, "-map_output", out, "-map_export_shard_size", shard]


def crash_every_point(work, mpiexec, args, out, setup, states):
    """kills `args` before each of its calls under `work`; the folder `out` must be one of `states`"""
    setup()
    log = os.path.join(work, "trace.log")
    p = traced(args, log)
    if p.returncode:
        print(p.stdout)
        hf.fail("the traced export failed")
    seq = calls(log)
    if snapshot(out) != states["new"]:
        hf.fail("the traced export left %s, not the clean new export %s" % (snapshot(out), states["new"]))
    points = [i for i, c in enumerate(seq) if work + "/" in c]
    if not os.environ.get("MAP_CRASH_ALL"):
        # a run of calls of one kind in one folder (the staged files' renames, the old folder's unlinks)
        # leaves states of one kind: its first and last call stand for it (MAP_CRASH_ALL=1: every call)
        def kind(i):
            return seq[i].split("(")[0], os.path.dirname(seq[i].split('"')[1]) if '"' in seq[i] else ""
        points = [i for k, i in enumerate(points) if k in (0, len(points) - 1) or kind(points[k - 1]) != kind(i) or kind(points[k + 1]) != kind(i)]
    if not any(c.startswith(("renameat2(", "rename(")) and '"%s"' % out in c for c in seq):
        hf.fail("the traced export never switched a staging folder in for %s: %s" % (out, seq))
    seen = {}
    for i in points:
        setup()
        name = seq[i].split("(")[0]
        nth = sum(1 for c in seq[:i + 1] if c.split("(")[0] == name)
        p = traced(args, log, (name, nth))
        got = calls(log)
        if p.returncode == 0 or not got or got[-1] != seq[i]:
            print(p.stdout[-3000:])
            hf.fail("the export was to be killed at %s (call %d), but %s" %
                    (seq[i], i + 1, "it finished" if p.returncode == 0 else "the last call was %s" % (got[-1] if got else "none")))
        snap = snapshot(out)
        which = [k for k, v in states.items() if v == snap]
        if not which:
            hf.fail("killed before %s: %s holds %s, neither of %s" % (seq[i], out, snap, states))
        seen[which[0]] = seen.get(which[0], 0) + 1
        for f in os.listdir(work):  # what a SIGKILL leaves behind: the hidden staging folder beside the output
            if ".tmp." in f:
                shutil.rmtree(os.path.join(work, f))
    print("%s: %d crash points: %s" % (out, len(points), seen))
    return seen


def case(work, mpiexec, old_shard, new_shard):
    a, b = stores(work, mpiexec)
    old, new, out = os.path.join(work, "old"), os.path.join(work, "new_clean"), os.path.join(work, "out")
    hf.run(mpiexec, 2, export_args(a, "0.625,0.3", old, old_shard))
    open(os.path.join(old, "notes.txt"), "w").write("a user's notes\n")
    # the clean new export over a copy of the old folder: what an export that is not killed leaves
    shutil.copytree(old, new)
    hf.run(mpiexec, 2, export_args(b, "0.25,0.5", new, new_shard))
    s_old, s_new = snapshot(old), snapshot(new)
    weights = [f for f in s_new if f.endswith(".safetensors")]
    stale = [f for f in s_old if f.endswith(".safetensors") and f not in weights]
    if not stale or any(f in s_new for f in stale) or "vocab.txt" in s_new or s_new.get("notes.txt") != s_old["notes.txt"]:
        hf.fail("the new export over the old one holds %s (old: %s): the old weights %s and vocab.txt must be gone, notes.txt kept" %
                (sorted(s_new), sorted(s_old), stale))
    if s_new["config.json"] == s_old["config.json"] or s_new["README.md"] == s_old["README.md"]:
        hf.fail("the new export's config.json or model card is the old one's")

    def over_old():
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(old, out)

    seen = crash_every_point(work, mpiexec, export_args(b, "0.25,0.5", out, new_shard), out, over_old, {"old": s_old, "new": s_new})
    if len(seen) < 2:  # the old folder until the exchange, the new one from it on (removing the old one)
        hf.fail("every crash left the same state %s: the crash points did not cover the switch" % seen)
    # into a fresh path: nothing, or the whole new export
    fresh = os.path.join(work, "fresh_clean")
    hf.run(mpiexec, 2, export_args(b, "0.25,0.5", fresh, new_shard))
    # (the rename of the staging folder is the last call: every crash before it leaves no folder)
    crash_every_point(work, mpiexec, export_args(b, "0.25,0.5", out, new_shard), out, lambda: shutil.rmtree(out, ignore_errors=True),
                      {"absent": None, "new": snapshot(fresh)})


def case_sharded(work, mpiexec):
    case(work, mpiexec, "0", "300")
    print("sharded: OK")


def case_unsharded(work, mpiexec):
    case(work, mpiexec, "300", "0")
    print("unsharded: OK")


if __name__ == "__main__":
    hf.MAPMERGE = os.environ.get("MAPMERGE", "mapmerge")
    c, w, m = sys.argv[1], sys.argv[2], sys.argv[3]
    globals()["case_" + c](os.path.abspath(w), m)
