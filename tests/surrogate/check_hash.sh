#!/bin/sh
# check_hash.sh MPIEXEC TEST_BINARY "NP LIST" [OPTIONS...]: the fitted surrogate bits (HASH lines of
# test_surrogate run with OPTIONS) must be identical at every -n in NP LIST.
set -eu
mpiexec=$1
bin=$2
nps=$3
shift 3
ref=""
for np in $nps; do
  out=$("$mpiexec" -n $np "$bin" "$@" 2>&1) || { echo "$out"; echo "FAIL: test_surrogate at -n $np exited non-zero"; exit 1; }
  h=$(echo "$out" | grep '^HASH' || true)
  nh=$(echo "$h" | grep -c '^HASH' || true)
  [ "$nh" -eq 3 ] || { echo "$out"; echo "FAIL: expected 3 HASH lines at -n $np, got $nh"; exit 1; }
  echo "np=$np:"; echo "$h"
  if [ -z "$ref" ]; then ref=$h; elif [ "$h" != "$ref" ]; then echo "FAIL: hashes at -n $np differ from the first run"; exit 1; fi
done
echo "PASS: identical surrogate bits at -n $nps (options: $*)"
