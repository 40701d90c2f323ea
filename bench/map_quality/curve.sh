#!/bin/sh
# Front quality per evaluation (issue 18): mapmerge -map_budget, Bayesian MAP, the shipped reference
# pipeline, the in-box linearised-start pipeline and plain LHS at the same numbers of evaluations
# (results in bench/map_quality/RESULTS.md, "Quality per evaluation").
#
#   bench/map_quality/curve.sh [BUILD_DIR] [WORK_DIR] [curve.py options, e.g. --budgets 20,40 --seeds 2]
#
# Needs what run.sh needs (the embedded default in zoo/, Debian's python3 with numpy, scipy, h5py, deap,
# yaml); shares run.sh's WORK_DIR grid cache. One MPI rank (MAP_BENCH_NP to change): the evaluations are
# ~0.05 s each, so process start-up dominates and a second rank buys little on a shared machine.
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/bench_env.sh"
exec /usr/bin/python3 "$here/curve.py" --mapmerge "$build/mapmerge" --work "$work" --np "${MAP_BENCH_NP:-1}" "$@"
