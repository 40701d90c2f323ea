#!/usr/bin/python3
"""postprocess/quality.py on synthetic fronts: IGD/GD against brute-force loops, hypervolume against
exact cell counting on a grid (2-D and 3-D), the truth's non-dominated filter, front.csv columns
(pred_acc_/real_acc_ with rows not re-evaluated), errors, and the grid writer.
Usage: test_quality.py <quality.py> <scratch dir>"""
import csv
import math
import os
import random
import subprocess
import sys

QUALITY, DIR = sys.argv[1], sys.argv[2]
os.makedirs(DIR, exist_ok=True)
failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)


def run(*args, ok=True):
    p = subprocess.run(["/usr/bin/python3", QUALITY] + list(args), capture_output=True, text=True)
    check((p.returncode == 0) == ok, "quality.py %s: rc %d, stderr %s" % (" ".join(args), p.returncode, p.stderr))
    out = {}
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out, p


def write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow(r)


def dist(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def brute_mean_nearest(A, B):
    return sum(min(dist(a, b) for b in B) for a in A) / len(A)


def dominated(p, S):
    return any(all(q[k] >= p[k] for k in range(len(p))) and any(q[k] > p[k] for k in range(len(p))) for q in S)


def grid_hv(P, G):
    """exact volume for points whose coordinates are multiples of 1/G, reference 0"""
    m = len(P[0])
    cnt = 0
    for cell in range(G ** m):
        y, r = [], cell
        for _ in range(m):
            y.append((r % G + 0.5) / G)
            r //= G
        if any(all(p[k] >= y[k] for k in range(m)) for p in P):
            cnt += 1
    return cnt / G ** m


random.seed(7)
# ---- 2 tasks: truth = quarter circle (400) + dominated points; front in front.csv layout
circle = [(0.95 - 0.7 * math.cos(t), 0.95 - 0.7 * math.sin(t)) for t in [i * math.pi / 2 / 399 for i in range(400)]]
inner = [(a - 0.01 - 0.1 * random.random(), b - 0.01 - 0.1 * random.random()) for a, b in random.sample(circle, 50)]
truth = circle + inner
write(os.path.join(DIR, "truth.csv"), ["c_a", "c_b", "acc_b", "acc_a", "loss_a", "loss_b"],
      [[0, 0, repr(b), repr(a), 1 - a, 1 - b] for a, b in truth])
found = [circle[i] for i in range(0, 400, 23)]
pert = [(a - 0.01 * random.random(), b - 0.01 * random.random()) for a, b in found]
rows = []
for i, (a, b) in enumerate(found):
    real = ["", ""] if i % 4 == 1 else [repr(pert[i][0]), repr(pert[i][1])]
    rows.append([0.1, 0.2, repr(a), repr(b)] + real)
write(os.path.join(DIR, "front.csv"), ["c_a", "c_b", "pred_acc_a", "pred_acc_b", "real_acc_a", "real_acc_b"], rows)

nd_truth = [p for p in truth if not dominated(p, truth)]
check(len(nd_truth) == 400, "non-dominated truth has %d points, want 400" % len(nd_truth))
real_found = [pert[i] for i in range(len(found)) if i % 4 != 1]
for prefix, F in (("pred_acc_", found), ("real_acc_", real_found)):
    out, _ = run("all", "--front", os.path.join(DIR, "front.csv"), "--truth", os.path.join(DIR, "truth.csv"),
                 "--front-columns", prefix, "--truth-columns", "acc_")
    igd, gd = brute_mean_nearest(nd_truth, F), brute_mean_nearest(F, nd_truth)
    check(abs(out.get("igd", -1) - igd) < 1e-12, "%s igd %s vs brute force %r" % (prefix, out.get("igd"), igd))
    check(abs(out.get("gd", -1) - gd) < 1e-12, "%s gd %s vs brute force %r" % (prefix, out.get("gd"), gd))
    check(0.9 < out.get("hv_ratio", 0) < 1.0, "%s hv ratio %s" % (prefix, out.get("hv_ratio")))
    print("%-10s igd %.6g gd %.6g hv_ratio %.6f (found %d points)" % (prefix, igd, gd, out.get("hv_ratio", -1), len(F)))
out, _ = run("igd", "--front", os.path.join(DIR, "truth.csv"), "--truth", os.path.join(DIR, "truth.csv"))
check(out.get("igd") == 0 and out.get("gd") is None, "igd of the truth against itself: %s" % out.get("igd"))

# ---- hypervolume on grid points, 2-D and 3-D, against exact cell counting
for m, G, n in ((2, 40, 30), (3, 16, 25)):
    P = [tuple(random.randint(1, G) / G for _ in range(m)) for _ in range(n)]
    names = ["t%d" % k for k in range(m)]
    write(os.path.join(DIR, "hv%d.csv" % m), ["acc_" + t for t in names], [[repr(x) for x in p] for p in P])
    out, _ = run("hv", "--front", os.path.join(DIR, "hv%d.csv" % m), "--truth", os.path.join(DIR, "hv%d.csv" % m))
    exact = grid_hv(P, G)
    check(abs(out.get("hv_found", -1) - exact) < 1e-12, "%d-D hv %s vs cell count %r" % (m, out.get("hv_found"), exact))
    out, _ = run("hv", "--front", os.path.join(DIR, "hv%d.csv" % m), "--truth", os.path.join(DIR, "hv%d.csv" % m), "--ref", "0.5")
    Pr = [tuple((x - 0.5) * 2 for x in p) for p in P if all(x > 0.5 for x in p)]
    exact_r = grid_hv(Pr, G // 2) / 2 ** m if Pr else 0
    check(abs(out.get("hv_found", -1) - exact_r) < 1e-12, "%d-D hv ref 0.5: %s vs %r" % (m, out.get("hv_found"), exact_r))

# ---- errors: missing column, bad number
write(os.path.join(DIR, "bad.csv"), ["acc_a", "acc_c"], [[0.1, 0.2]])
_, p = run("igd", "--front", os.path.join(DIR, "bad.csv"), "--truth", os.path.join(DIR, "truth.csv"), ok=False)
check("no column acc_b" in p.stderr, "missing column message: %s" % p.stderr)
write(os.path.join(DIR, "bad2.csv"), ["acc_a", "acc_b"], [[0.1, "x"]])
_, p = run("igd", "--front", os.path.join(DIR, "bad2.csv"), "--truth", os.path.join(DIR, "truth.csv"), ok=False)
check("line 2" in p.stderr, "bad number message: %s" % p.stderr)

# ---- grid
g = os.path.join(DIR, "grid.csv")
_, p = run("grid", "--tasks", "a,b,c", "--n", "5", "--box=-1,1", "--output", g)
with open(g) as f:
    rows = list(csv.reader(f))
check(rows[0] == ["c_a", "c_b", "c_c"], "grid header %s" % rows[0])
pts = {tuple(float(v) for v in r) for r in rows[1:]}
want = {(x, y, z) for x in (-1, -0.5, 0, 0.5, 1) for y in (-1, -0.5, 0, 0.5, 1) for z in (-1, -0.5, 0, 0.5, 1)}
check(len(rows) == 126 and pts == want, "grid has %d rows / wrong points" % (len(rows) - 1))
_, p = run("grid", "--tasks", "a,b", "--n", "1", "--output", g, ok=False)

print("%s: %d failures" % ("ALL OK" if failures == 0 else "SOME FAILED", failures))
sys.exit(1 if failures else 0)
