#!/bin/sh
# Builds the libFuzzer harness for the safetensors header parser with Debian's clang-14, and runs it.
#   tests/fuzz/build.sh [OUTDIR]            -> OUTDIR/fuzz_safetensors (default build-fuzz)
#   OUTDIR/fuzz_safetensors -max_total_time=600 -dict=tests/fuzz/safetensors.dict CORPUS tests/fuzz/corpus
# A crash leaves crash-<sha1>: copy it into tests/fuzz/regressions/, which ctest replays
# (safetensors_fuzz_replay) through the same harness without libFuzzer.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build-fuzz}
mkdir -p "$out/generated"
# core.c includes CMake's generated list of known options; the harness reads no options
[ -f "$out/generated/map_known_options.h" ] || echo "/* none: fuzz build */" > "$out/generated/map_known_options.h"
CC=${CC:-clang-14}
cflags="$(pkg-config --cflags PETSc jansson) $(mpicc -showme:compile)"
libs="$(pkg-config --libs PETSc jansson) $(mpicc -showme:link) -lcrypto -lm"
$CC -std=c17 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -D_POSIX_C_SOURCE=200809L -DMAPMERGE_VERSION='"fuzz"' -DMAPMERGE_GIT_COMMIT='"fuzz"' -DMAPMERGE_C_FLAGS='"fuzz"' -DMAPMERGE_COMPILER='"clang"' \
  -I"$root/include" -I"$root/src" -I"$root/src/core" -I"$root/src/io" -I"$out/generated" $cflags \
  "$here/fuzz_safetensors.c" "$root/src/io/safetensors.c" "$root/src/io/safetensors_write.c" "$root/src/core/core.c" \
  $libs -o "$out/fuzz_safetensors"
echo "built $out/fuzz_safetensors"
