#!/bin/sh
# Store I/O benchmark (issue 2): import time and peak memory per rank, collective HDF5 read of the
# store vs dd (cold/warm), export time and memory, on a synthetic P-parameter, T-task family.
# usage: bench/store/run.sh [BUILD_DIR=build] [WORK_DIR=/tmp/mapmerge-bench-store] [P=100000000] [T=8] [--keep]
# Needs ~(T+1)*P*4 bytes twice on WORK_DIR's disk (inputs + store; 7.2 GB at the defaults) and
# ~(T+2)*P*4 bytes of memory (export at 1 rank). Build the targets mapmerge and bench_store_read first. Deletes WORK_DIR's big files at the end unless --keep.
set -eu
BUILD=${1:-build}
WORK=${2:-/tmp/mapmerge-bench-store}
P=${3:-100000000}
T=${4:-8}
KEEP=${5:-}
HERE=$(cd "$(dirname "$0")" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
[ -x "$BUILD/mapmerge" ] || { echo "run.sh: $BUILD/mapmerge not found; build it first (cmake --build $BUILD --target mapmerge)" >&2; exit 1; }
mkdir -p "$WORK"
date -u '+%Y-%m-%d %H:%M UTC'
echo "load average: $(cat /proc/loadavg)"
df -h "$WORK" | tail -1
/usr/bin/python3 "$HERE/bench_store.py" "$(cd "$BUILD" && pwd)/mapmerge" "$WORK" --P "$P" --T "$T" | tee "$WORK/report.txt"
if [ "$KEEP" != "--keep" ]; then
  rm -rf "$WORK/model" "$WORK/tiny" "$WORK/store.h5" "$WORK/tiny_store.h5" "$WORK/merged.safetensors"
fi
