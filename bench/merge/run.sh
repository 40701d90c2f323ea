#!/bin/sh
# Merge-kernel benchmark driver: bench_merge (C: fast, ref, STREAM triad) and bench_merge_py.py
# (numpy, PyTorch single thread) at the same P and T; prints one table with ratios to the triad.
#   bench/merge/run.sh [build dir] [P] [T] [reps]      (defaults: build, 100000000, 8, 5)
# Needs ~6 GB for the C run and ~6 GB for the Python one (run one after the other). Leave the
# machine quiet: the figures are memory-bandwidth bound. OPENBLAS_* in the environment are kept.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
P=${2:-100000000}
T=${3:-8}
reps=${4:-5}
exe=$build/bench_merge
[ -x "$exe" ] || { echo "run.sh: $exe not found; build it: cmake --build $build --target bench_merge" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); host: $(uname -n), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); P = $P, T = $T, reps = $reps; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
"$exe" -P "$P" -T "$T" -reps "$reps" | tee "$out/c.txt" | grep -v '^RESULT'
/usr/bin/python3 "$here/bench_merge_py.py" --P "$P" --T "$T" --reps "$reps" | tee "$out/py.txt" | grep -v '^RESULT'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
awk -v T="$T" '
  FNR == 1 { file++ }
  $1 == "RESULT" {
    n++; name[n] = $2; gbs[n] = $3; sec[n] = $4; bits[n] = (file == 1) ? (($2 ~ /ref|triad/) ? "-" : "same-bits (checked)") : $5
    if ($2 == "triad") triad = $3
  }
  END {
    printf "| implementation | storage | GB/s | vs triad | time (s) | bits vs mapmerge ref |\n|---|---|---:|---:|---:|---|\n"
    for (i = 1; i <= n; i++) {
      st = (name[i] ~ /bf16/) ? "BF16" : (name[i] ~ /f16/) ? "F16" : "F32"
      printf "| %s | %s | %.2f | %.3f | %.4f | %s |\n", name[i], st, gbs[i], gbs[i] / triad, sec[i], bits[i]
    }
  }' "$out/c.txt" "$out/py.txt"
