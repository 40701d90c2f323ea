#!/bin/bash
# test_local.sh - jobs/local.sh (the workstation runner) on the small zoo problem, with real
# signals mid-run:
#   1. SIGUSR1 to local.sh     -> checkpoint (status 85) -> resumed at once;
#   2. SIGUSR1 to one rank     -> checkpoint that local.sh did not ask for -> resumed too;
#   3. SIGTERM to local.sh     -> checkpoint and stop with status 85;
#   4. local.sh again with the same RUN_DIR -> -map_resume -> completes with status 0,
# and the results equal those of an uninterrupted `mpiexec -n 2 mapmerge run`, bit for bit.
# MAP_KEEP=1 keeps the temporary folder.
set -u
t_start=$(date +%s)
here=$(cd "$(dirname "$0")" && pwd)
src=${MAP_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
export MAPMERGE=${MAPMERGE:-$src/build/mapmerge} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
W=$(mktemp -d "${TMPDIR:-/tmp}/mapmerge-local.XXXXXX") || exit 1
fails=0 lpid=''
cleanup() {
  [ -n "$lpid" ] && kill -0 "$lpid" 2>/dev/null && kill -TERM "$lpid"
  if [ "${MAP_KEEP:-0}" = 1 ] || [ $fails -gt 0 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
log() { echo "[$(($(date +%s) - t_start))s] $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
die() { fail "$*"; [ -f "$W/local.log" ] && tail -n 40 "$W/local.log"; exit 1; }

[ -x "$MAPMERGE" ] || die "MAPMERGE=$MAPMERGE is not an executable"
cd "$W" || exit 1
config=$src/input/small.yaml
# 120 Latin-hypercube samples: enough evaluations that the signals below land mid-run (with the 30-sample
# default design a fast machine finished the run before the SIGTERM arrived)
opts=(-map_reevaluate 2 -map_sample_type lhs -map_sample_n 120)
mpiexec -n 2 "$MAPMERGE" zoo -options_file_yaml "$config" -map_output zoo-small > zoo.log 2>&1 || { cat zoo.log; die "mapmerge zoo"; }
mpiexec -n 2 "$MAPMERGE" import -options_file_yaml "$config" > import.log 2>&1 || { cat import.log; die "mapmerge import"; }
mpiexec -n 2 "$MAPMERGE" run -options_file_yaml "$config" "${opts[@]}" -map_output runs/ref > ref.log 2>&1 ||
  { cat ref.log; die "reference run"; }
log "zoo, store and reference run ready"

journaled() { { wc -l < runs/loc/journal.jsonl; } 2>/dev/null || echo 0; }
wait_journal() { # wait_journal N: until the journal has at least N entries (local.sh still running)
  local limit=$(($(date +%s) + 60))
  until [ "$(journaled)" -ge "$1" ]; do
    kill -0 "$lpid" 2>/dev/null || die "local.sh ended before the journal reached $1 entries"
    [ "$(date +%s)" -lt $limit ] || die "the journal did not reach $1 entries within 60 s"
    sleep 0.1
  done
}
rank_pid() { # a mapmerge rank started by local.sh's mpiexec
  local m
  m=$(pgrep -P "$lpid" -x mpiexec | head -n 1)
  [ -n "$m" ] && pgrep -P "$m" -x mapmerge | head -n 1
}

RUN_DIR=runs/loc "$src/jobs/local.sh" -n 2 -k 3 "$config" "${opts[@]}" > local.log 2>&1 &
lpid=$!
wait_journal 2
kill -USR1 "$lpid"
log "SIGUSR1 to local.sh at $(journaled) journaled evaluations"
wait_journal $(($(journaled) + 3))
r=$(rank_pid)
[ -n "$r" ] || die "no mapmerge rank found under local.sh"
kill -USR1 "$r"
log "SIGUSR1 to rank pid $r at $(journaled) journaled evaluations"
wait_journal $(($(journaled) + 3))
kill -TERM "$lpid"
log "SIGTERM to local.sh at $(journaled) journaled evaluations"
wait "$lpid"
rc=$?
lpid=
[ $rc = 85 ] && log "ok: local.sh stopped with status 85 after SIGTERM" || fail "local.sh after SIGTERM: status $rc, expected 85"
n=$(grep -c "checkpointed; resuming" local.log)
[ "$n" = 2 ] && log "ok: local.sh resumed twice (after its own SIGUSR1 and after a rank's)" || fail "local.sh resumed $n times, expected 2"
[ -s runs/loc/front.csv ] && fail "runs/loc/front.csv exists although the run was stopped"

RUN_DIR=runs/loc "$src/jobs/local.sh" -n 2 "$config" "${opts[@]}" > local2.log 2>&1
rc=$?
[ $rc = 0 ] || { cat local2.log; die "local.sh continuing runs/loc: status $rc"; }
grep -q -- "-map_resume" local2.log || fail "local.sh did not pass -map_resume to continue runs/loc"
if cmp -s runs/ref/front.csv runs/loc/front.csv; then log "ok: front.csv identical to the uninterrupted run"
else fail "front.csv of the interrupted local.sh run differs from the uninterrupted run"; fi
for d in /samples/coeffs /pareto/coeffs /pareto/predicted; do
  h5diff runs/ref/results.h5 runs/loc/results.h5 "$d" "$d" > /dev/null 2>&1 || fail "results.h5 $d differs from the uninterrupted run"
done
n1=$(wc -l < runs/ref/journal.jsonl)
n2=$(wc -l < runs/loc/journal.jsonl)
[ "$n1" = "$n2" ] && log "ok: journals have $n1 entries each" || fail "journal lines: reference $n1, local.sh $n2"
[ $fails = 0 ] || { echo "---- local.log"; cat local.log; }
log "done: $fails failure(s)"
[ $fails = 0 ]
