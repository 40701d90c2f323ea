#!/bin/sh
# The pick of plain MAP at T = 8 with and without refinement (bench/variants/RESULTS.md, "Refining the pick at T = 8").
#
#   bench/variants/run_refine.sh [BUILD_DIR] [WORK_DIR] [--seeds 3] [--rounds 4]
#
# Needs the embedded default built and imported (the README's first command); ~10 s per run on 2 ranks,
# 3 variants x --seeds runs (~1.5 min).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/bench_env.sh"
exec /usr/bin/python3 "$here/refine_pick.py" --mapmerge "$build/mapmerge" --work "$work" --np "${MAP_BENCH_NP:-2}" "$@"
