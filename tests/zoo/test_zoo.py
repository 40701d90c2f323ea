#!/usr/bin/python3
"""Builds the small zoo (input/small.yaml) at 1 and 2 ranks and checks it; then bad input.

usage: test_zoo.py ZOO_BUILD MPIEXEC WORKDIR SOURCEDIR
Prints FAIL lines and exits 1 on any failed check.
"""
import filecmp
import gzip
import os
import shutil
import subprocess
import sys
import time

import yaml

build, mpiexec, work, src = sys.argv[1:5]
os.chdir(work)
small = os.path.join(src, "input", "small.yaml")
check_zoo = os.path.join(src, "tests", "zoo", "check_zoo.py")
failures = []


def check(cond, msg):
    print(("ok: " if cond else "FAIL: ") + msg)
    if not cond:
        failures.append(msg)


def run(np, args, log=None):
    t0 = time.time()
    p = subprocess.run([mpiexec, "-n", str(np), build] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if log:
        with open(log, "w") as f:
            f.write(p.stdout)
    return p.returncode, p.stdout, time.time() - t0


def files(d):
    out = []
    for root, _, fs in os.walk(d):
        out += [os.path.relpath(os.path.join(root, f), d) for f in fs]
    return sorted(out)


# 1. the small zoo at 1 and 2 ranks: same bytes
dirs = {1: "zoo-small", 2: "zoo-small-np2"}
for np, d in dirs.items():
    shutil.rmtree(d, ignore_errors=True)
    rc, out, dt = run(np, ["-options_file_yaml", small, "-map_output", d], log=d + ".log")
    print(out)
    check(rc == 0, f"np {np}: zoo build exit code {rc} ({dt:.1f}s)")
    if rc:
        sys.exit(1)
f1, f2 = files(dirs[1]), files(dirs[2])
check(f1 == f2, f"same file list at np 1 and 2: {f1}")
check(not any(".tmp." in f for f in f1), "no temporary files left")
expect = ["pretrained.safetensors", "zoo.yaml"] + [f"{t}.safetensors" for t in ("rot90", "flip_v", "permute", "shift")]
check(all(f in f1 for f in expect), "models and zoo.yaml present")
for f in f1:
    if f == "zoo.yaml":
        continue
    check(filecmp.cmp(os.path.join(dirs[1], f), os.path.join(dirs[2], f), shallow=False), f"{f}: same bytes at np 1 and np 2")

# a task's model depends on its name only: a 2-task zoo in another order, at 3 ranks (one idle),
# holds the same bytes for those tasks
d3 = "zoo-small-np3"
shutil.rmtree(d3, ignore_errors=True)
rc, out, dt = run(3, ["-options_file_yaml", small, "-map_output", d3, "-map_zoo_tasks", "shift,rot90"])
check(rc == 0, f"np 3, tasks shift,rot90: exit code {rc} ({dt:.1f}s)")
for f in ("pretrained.safetensors", "shift.safetensors", "rot90.safetensors", "data/rot90_val.safetensors", "data/shift_test.safetensors"):
    check(rc == 0 and filecmp.cmp(os.path.join(dirs[1], f), os.path.join(d3, f), shallow=False),
          f"{f}: same bytes in a 2-task zoo at np 3 as in the 4-task zoo at np 1")
shutil.rmtree(d3, ignore_errors=True)

# 2. zoo.yaml: as input/small.yaml says (minus the zoo's own options); np 2 differs only in the folder
with open(small) as f:
    want = yaml.safe_load(f)["map"]
want.pop("zoo")
with open(os.path.join(dirs[1], "zoo.yaml")) as f:
    got = yaml.safe_load(f)["map"]
check(got == want, f"zoo-small/zoo.yaml matches input/small.yaml: {got}")
with open(os.path.join(dirs[1], "zoo.yaml")) as f1y, open(os.path.join(dirs[2], "zoo.yaml")) as f2y:
    check(f1y.read().replace(dirs[1] + "/", dirs[2] + "/") == f2y.read(), "zoo.yaml at np 2 differs only in the folder name")

# 3. numpy recomputes the accuracies from the files: fine-tuned beats pretrained on every task,
#    and agrees with what the C code printed; the eval sets are numpy's transforms of the raw images
for np, d in dirs.items():
    p = subprocess.run([sys.executable, check_zoo, d, "--log", d + ".log", "--margin", "0.2"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    print(p.stdout)
    check(p.returncode == 0, f"check_zoo.py {d} (np {np})")

# 4. bad input: clear errors, nothing left behind
base = ["-options_file_yaml", small]
rc, out, _ = run(1, base + ["-map_output", "zoo-bad1", "-map_zoo_data", "/nonexistent/fashion"])
check(rc != 0 and "install dataset-fashion-mnist" in out and not os.path.exists("zoo-bad1"),
      f"missing data set: rc {rc}, message names the package, no output folder")
rc, out, _ = run(1, base + ["-map_output", "zoo-bad2", "-map_zoo_tasks", "rot90,rot45"])
check(rc != 0 and 'unknown task "rot45"' in out and "rot180" in out and not os.path.exists("zoo-bad2"),
      f"unknown task: rc {rc}, message lists the known ones")
rc, out, _ = run(1, base + ["-map_output", "zoo-bad3", "-map_zoo_epoch", "3"])
check(rc != 0 and "map_zoo_epoch" in out and "unused option" in out and not os.path.exists("zoo-bad3"), f"typo in an option: rc {rc}")
rc, out, _ = run(1, base + ["-map_output", "zoo-bad4", "-map_zoo_widths", "100,10"])
check(rc != 0 and "input width must be 784" in out, f"bad widths: rc {rc}")
# a truncated and a wrong-magic IDX file
bad = "zoo-badidx"
shutil.rmtree(bad, ignore_errors=True)
os.makedirs(bad)
srcdir = "/usr/share/datasets/fashion-mnist"
for f in os.listdir(srcdir):
    shutil.copy(os.path.join(srcdir, f), bad)
with gzip.open(os.path.join(srcdir, "t10k-labels-idx1-ubyte.gz")) as f:
    raw = f.read()
with gzip.open(os.path.join(bad, "t10k-labels-idx1-ubyte.gz"), "wb") as f:
    f.write(raw[:5000])
rc, out, _ = run(2, base + ["-map_output", "zoo-bad5", "-map_zoo_data", bad])
check(rc != 0 and "truncated" in out and "t10k-labels" in out, f"truncated labels file: rc {rc}")
with gzip.open(os.path.join(bad, "t10k-labels-idx1-ubyte.gz"), "wb") as f:
    f.write(b"\x00\x00\x08\x03" + raw[4:])
rc, out, _ = run(1, base + ["-map_output", "zoo-bad6", "-map_zoo_data", bad])
check(rc != 0 and "magic 0x00000803, expected 0x00000801" in out, f"wrong magic: rc {rc}")
for d in ("zoo-bad5", "zoo-bad6"):
    left = [f for f in files(d)] if os.path.exists(d) else []
    check(not any(".tmp." in f for f in left), f"{d}: no temporary files left ({left})")
shutil.rmtree(bad, ignore_errors=True)

if failures:
    print(f"FAIL: {len(failures)} check(s) failed")
    sys.exit(1)
print("test_zoo: all checks passed")
