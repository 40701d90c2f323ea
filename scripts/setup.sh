#!/usr/bin/env bash
# Installs the Debian 12 packages mapmerge needs (only the missing ones; quiet when all are present),
# then configures and builds into build/. Run as root (or with sudo). Idempotent.
#   scripts/setup.sh            runtime + build packages, then build
#   scripts/setup.sh --tests    also what the test suite and benchmarks use (Python, SLURM, clang)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PKGS="build-essential cmake pkg-config git libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools
  libscalapack-openmpi-dev petsc-dev liblapack-dev libblas-dev libopenblas0-pthread libjansson-dev zlib1g-dev
  libssl-dev libyaml-dev dataset-fashion-mnist"
TEST_PKGS="python3 python3-numpy python3-yaml python3-h5py python3-scipy python3-deap python3-matplotlib python3-torch
  bible-kjv bible-kjv-text fortunes
  slurm-wlm munge clang libclang-rt-14-dev procps util-linux time chromium strace clang-format"

pkgs="$BUILD_PKGS"
[[ "${1:-}" == "--tests" ]] && pkgs="$pkgs $TEST_PKGS"

missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [[ -n "$missing" ]]; then
  echo "setup: installing:$missing"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  # policy-rc.d-free machines would start munge/slurm services on install; we run our own daemons.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Debian's alternatives pick OpenBLAS once it is installed; say which BLAS the build will use.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
case "$blas" in *openblas*) ;; *) echo "setup: warning: libblas.so.3 -> $blas is not OpenBLAS (slow reference BLAS)";; esac

# MAP_WERROR=ON (set by .ci/run) turns warnings into errors; passed every time, so the cache never
# keeps a value from an earlier run.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAP_WERROR="${MAP_WERROR:-OFF}" >/dev/null
# The full log goes to build/build.log; a failed build prints its errors and stops here (an old
# build/mapmerge from an earlier build must not pass for a new one).
log=build/build.log
if ! cmake --build build -j"$(nproc)" >"$log" 2>&1; then
  { grep -E -A3 "error|Error" "$log" || tail -40 "$log"; } | head -80 || true
  echo "setup: build FAILED (full log: $log)" >&2
  exit 1
fi
grep -E -A3 "warning:" "$log" || true
echo "setup: built build/mapmerge"
