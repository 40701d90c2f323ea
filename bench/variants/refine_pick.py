"""The pick of plain MAP at T = 8 (the embedded default) without refinement, with R rounds of
`-map_refine_target pick` (one evaluation each) and with one front-refinement round of R points, at
equal extra budgets; per seed: the pick's worst-task and mean accuracy (validation and test), how far
its prediction is from the real model, and the evaluated models. bench/variants/RESULTS.md, "Refining the pick
at T = 8".

    bench/variants/run_refine.sh [BUILD_DIR] [WORK_DIR] [--seeds 3] [--rounds 4]
"""
import argparse
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import Ctx, log, sh_timed  # noqa: E402


def pick_stats(run):
    with h5py.File(os.path.join(run, "results.h5"), "r") as f:
        real, pred, test = f["pick/real"][0], f["pick/predicted"][0], f["pick/test"][0]
        n = f["samples/coeffs"].shape[0]
    return dict(n=n, val_min=real.min(), val_mean=real.mean(), test_min=test.min(), test_mean=test.mean(),
                err=np.abs(pred - real).max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mapmerge", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--yaml", default="input/default.yaml")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=4)
    a = ap.parse_args()
    ctx = Ctx(a)
    R = a.rounds
    variants = [("none", []),
                (f"pick x{R}", ["-map_refine", str(R), "-map_refine_target", "pick"]),
                (f"front 1x{R}", ["-map_refine", "1", "-map_refine_points", str(R)])]
    rows = []
    for name, extra in variants:
        for s in range(a.seeds):
            run = os.path.join(ctx.work, "refine", f"{name.split()[0]}-{s}")
            if os.path.exists(run):
                os.rename(run, run + ".old.%d" % os.getpid())
            out, wall = sh_timed(ctx.mpi("run", "-options_file_yaml", ctx.yaml, "-map_seed", str(s), "-map_output", run, *extra))
            st = pick_stats(run)
            # "time per phase: setup 0.11s evaluate 4.78s fit 0.26s ...": the refinement rounds' fits and
            # searches are timed into fit and evaluate
            phase = dict(zip(*[iter(next(l for l in out.splitlines() if l.startswith("time per phase:")).split()[3:])] * 2))
            st["evaluate"], st["fit"] = float(phase["evaluate"].rstrip("s")), float(phase["fit"].rstrip("s"))
            rows.append((name, s, st, wall))
            log(f"{name:10s} seed {s}: {st['n']} samples, pick val min {st['val_min']:.4f} mean {st['val_mean']:.4f}, "
                f"test min {st['test_min']:.4f} mean {st['test_mean']:.4f}, max |predicted - real| {st['err']:.4f}, "
                f"evaluate {st['evaluate']:.2f} s, fit {st['fit']:.2f} s, wall {wall:.1f} s")
    print("\n| variant | samples | pick val worst task | pick val mean | pick test worst task | pick test mean | max abs(predicted - real) "
          "| evaluate phase s | fit phase s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, _ in variants:
        sel = [r for r in rows if r[0] == name]
        col = lambda k: " / ".join("%.4f" % r[2][k] for r in sel)  # noqa: E731
        print(f"| {name} | {'/'.join(str(r[2]['n']) for r in sel)} | {col('val_min')} | {col('val_mean')} | {col('test_min')} | "
              f"{col('test_mean')} | {col('err')} | {' / '.join('%.2f' % r[2]['evaluate'] for r in sel)} | "
              f"{' / '.join('%.2f' % r[2]['fit'] for r in sel)} |")


if __name__ == "__main__":
    main()
