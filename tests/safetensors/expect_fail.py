#!/usr/bin/python3
"""expect_fail.py [--ok] MPIEXEC ST_CHECK PATH REGEX: runs st_check on PATH at 2 ranks; without
--ok it must fail (non-zero exit, within the timeout: a hang means the ranks did not fail
together), and its output must match REGEX and name the input."""
import os
import re
import subprocess
import sys

args = sys.argv[1:]
ok = args[0] == "--ok"
if ok:
    args = args[1:]
mpiexec, st_check, path, regex = args
try:
    p = subprocess.run([mpiexec, "-n", "2", st_check, path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60, text=True, errors="replace")
except subprocess.TimeoutExpired:
    print("FAIL: st_check hung on", path)
    sys.exit(1)
out = p.stdout
print(out)
errors = []
if ok and p.returncode != 0:
    errors.append("exit code %d on a good file" % p.returncode)
if not ok and p.returncode == 0:
    errors.append("exit code 0 on a bad file")
if not re.search(regex, out):
    errors.append("output does not match /%s/" % regex)
if not ok and os.path.basename(path) not in out:
    errors.append("the message does not name the input %s" % os.path.basename(path))
if "Segmentation fault" in out or "Caught signal" in out:
    errors.append("crashed")
for e in errors:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
