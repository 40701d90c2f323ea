#!/usr/bin/env bash
# The whole test suite: installs what the tests need, builds, runs ctest (real MPI, HDF5, SLURM).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
cd build
ctest --output-on-failure -j2 "$@"
