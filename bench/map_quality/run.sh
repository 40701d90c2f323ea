#!/bin/sh
# MAP front quality, fit + search time against the reference pipeline, Pareto search weak scaling and the
# end-to-end run (issue 4; results in bench/map_quality/RESULTS.md, the end-to-end run in
# bench/eval/RESULTS.md).
#
#   bench/map_quality/run.sh [BUILD_DIR] [WORK_DIR] [extra bench.py options, e.g. --only time --only e2e --reps 3]
#
# Run from anywhere; BUILD_DIR (default: build) holds the mapmerge binary, WORK_DIR (default:
# bench/map_quality/work) receives the grid cache, the runs and results.json / tables.md. Needs the
# embedded default built and imported (zoo/, zoo/store.h5: the README's first command) and Debian's
# python3 with numpy, scipy, h5py, deap, yaml. Runs on 2 MPI ranks (MAP_BENCH_NP to change).
# Time on 2 cores: ~10 min for the ground-truth grids the first time (cached afterwards, keyed on
# the store's size and mtime), then ~5 min for 3 subsets x 5 seeds, ~3 min for the T = 2, 5, 8 timing
# rounds, ~1.5 min for the scaling runs (1, 2, 4 ranks: 4 oversubscribe 2 cores) and ~2 min end to end.
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/bench_env.sh"
exec /usr/bin/python3 "$here/bench.py" --mapmerge "$build/mapmerge" --work "$work" --np "${MAP_BENCH_NP:-2}" "$@"
