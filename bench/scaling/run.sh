#!/bin/sh
# Scaling study (issue 17, item 4): measures this machine (measure.py) and prints the calibrated
# projection to 1..1000 nodes and the check of the model against the measurements (model.py).
#   bench/scaling/run.sh BUILD_DIR WORK_DIR [measure.py options, e.g. --P 1e6,1e7 --ranks 1,2 --reps 3]
# Builds the targets mapmerge, bench_store_read, bench_merge in BUILD_DIR and allreduce.c with mpicc
# into WORK_DIR. Disk: about 2 x (T+1) x P x 2 bytes for the largest P (5 GB at P = 2.5e8, T = 4) plus
# --dd-mb (1 GiB); deleted at the end unless KEEP=1. The output goes to WORK_DIR/report.md too.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 BUILD_DIR WORK_DIR [measure.py options]" >&2; exit 2; }
BUILD=$1
WORK=$2
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
cmake --build "$BUILD" --target mapmerge bench_store_read bench_merge -j2 >/dev/null
mkdir -p "$WORK"
mpicc -O2 -Wall -o "$WORK/allreduce" "$HERE/allreduce.c"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); load: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; disk: $(df -h "$WORK" | tail -1)"
/usr/bin/python3 "$HERE/measure.py" "$BUILD" "$WORK" "$@" | tee "$WORK/measure.log"
/usr/bin/python3 "$HERE/model.py" --measured "$WORK/measure.json" | tee "$WORK/report.md"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${KEEP:-0}" != 1 ]; then
  rm -rf "$WORK"/model_P* "$WORK"/store_P*.h5 "$WORK"/export_P*
fi
