#!/bin/sh
# Runs the fuzzer for SECONDS (default 600) on a scratch corpus seeded from tests/fuzz/corpus.
#   tests/fuzz/run.sh [SECONDS] [OUTDIR]
# leak_check_at_exit=0: Open MPI's own allocations at MPI_Init are never freed and would be
# reported at exit; libFuzzer still checks every input for leaks of its own.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-600}
out=${2:-$root/build-fuzz}
[ -x "$out/fuzz_safetensors" ] || "$here/build.sh" "$out"
mkdir -p "$out/work_corpus" "$out/artifacts"
cd "$out"
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS=leak_check_at_exit=0:detect_leaks=1 \
  ./fuzz_safetensors -max_total_time="$secs" -max_len=8192 -print_final_stats=1 -dict="$here/safetensors.dict" \
  -artifact_prefix="$out/artifacts/" work_corpus "$here/corpus"
