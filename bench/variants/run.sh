#!/bin/sh
# Bayesian MAP and Nested MAP against plain MAP (issue 6 "Bar" and "Performance"; bench/variants/RESULTS.md).
#
#   bench/variants/run.sh [BUILD_DIR] [WORK_DIR] [extra bench.py options, e.g. --only nested --seeds 2]
#
# Run from anywhere; BUILD_DIR (default: build) holds the mapmerge binary, WORK_DIR (default:
# bench/variants/work) receives the runs, results.json and tables.md; the plot goes to
# bench/variants/igd_vs_evaluations.png. Needs the embedded default built and imported (zoo/,
# zoo/store.h5: the README's first command) and Debian's python3 with numpy, h5py, yaml, matplotlib.
# Ground truths: the dense grids of bench/map_quality (rot90_invert_n41.csv,
# rot90_invert_shift_n21.csv) are read, never written, from $MAP_GRID_DIR and
# bench/map_quality/work/grid when present and stamped for the current store; otherwise they are
# built into WORK_DIR/grid (~1 + ~7 min on 2 cores, once).
# Time on 2 busy cores: ~9 min for part 1 (2 subsets x 5 seeds x 9 runs), ~2 min for part 2, and
# ~9 min for its budget ladder (plain MAP at --nested-budgets 60,99,150,200,300,450 evaluated models, seeds
# 0..--nested-seeds-1 = 0..2; ~0.12 s per evaluated model; --nested-budgets '' skips it).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/bench_env.sh"
set -- --grid-dir "$root/bench/map_quality/work/grid" "$@"
[ -n "${MAP_GRID_DIR:-}" ] && set -- --grid-dir "$MAP_GRID_DIR" "$@"
exec /usr/bin/python3 "$here/bench.py" --mapmerge "$build/mapmerge" --work "$work" --np "${MAP_BENCH_NP:-2}" "$@"
