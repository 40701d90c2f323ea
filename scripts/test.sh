#!/usr/bin/env bash
# The whole test suite: installs what the tests need, builds, runs ctest (real MPI, HDF5, SLURM).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
(cd build && ctest --output-on-failure -j2 "$@")

# The hostile-input tests once more on an AddressSanitizer + UndefinedBehaviorSanitizer build (issue 12):
# an out-of-bounds access, a use after free or an overflow on crafted input fails the suite even where
# the release build happens to survive it. Its own build folder, the driver only; about 2 minutes.
# MAPMERGE_NO_SANITIZE=1 skips it.
if [ -z "${MAPMERGE_NO_SANITIZE:-}" ]; then
  san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" >/dev/null
  cmake --build build-asan -j2 --target mapmerge >/dev/null
  # Open MPI's own allocations at exit are not ours to report: leaks off, everything else fatal
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export MAPMERGE="$PWD/build-asan/mapmerge" MAP_BINARY_DIR="$PWD/build-asan" MAP_SOURCE_DIR="$PWD"
  export OMPI_MCA_rmaps_base_oversubscribe=1
  for t in "run/test_hostile_inputs.py results" "run/test_hostile_inputs.py options" "run/test_hostile_inputs.py messages" \
           "eval/test_hostile_command.py"; do
    log="build-asan/$(echo "$t" | tr ' /' '__').log"
    if /usr/bin/python3 tests/$t >"$log" 2>&1; then echo "sanitizer build: tests/$t: OK"
    else echo "sanitizer build: tests/$t FAILED (log: $log):"; grep -E "FAIL|Sanitizer|runtime error" "$log" | head -20; exit 1; fi
  done
fi
