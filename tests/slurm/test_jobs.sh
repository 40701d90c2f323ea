#!/bin/bash
# test_jobs.sh - the batch scripts in jobs/ on a real (private, single-node) SLURM:
#   1. map.sbatch (srun, 2 ranks) on a small zoo problem: COMPLETED, ExitCode 0:0, results written;
#   2. map.sbatch (LAUNCHER=mpirun) interrupted by `scancel --signal=USR1 --batch` mid-run:
#      checkpoint (status 85) -> scontrol requeue -> resumes from the journal -> COMPLETED, and
#      its front.csv and result datasets are identical to those of the uninterrupted run 1;
#   3. sweep.sbatch as a 2-task array (%2 throttle) and a job with --dependency=afterok on it;
#   4. nested_chain.sh --dry-run prints one chained sbatch line per tree level.
# SLURM is brought up under a temporary folder by tests/slurm/up.sh and always torn down.
# Exit 77 (skipped) when SLURM/munge are missing or cannot start. Set MAP_KEEP=1 to keep the
# temporary folder (its path is printed).
set -u
t_start=$(date +%s)
here=$(cd "$(dirname "$0")" && pwd)
src=${MAP_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
MAPMERGE=${MAPMERGE:-$src/build/mapmerge}
export MAPMERGE MAP_JOBS_DIR=$src/jobs OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
W=$(mktemp -d "${TMPDIR:-/tmp}/mapmerge-slurm.XXXXXX") && chmod 755 "$W" || exit 1 # munged wants o+x on the path
R=$W/slurm
fails=0
cleanup() {
  "$here/down.sh" "$R"
  if [ "${MAP_KEEP:-0}" = 1 ] || [ $fails -gt 0 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM # run cleanup on ctest's timeout too

log() { echo "[$(($(date +%s) - t_start))s] $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
die() { fail "$*"; show_logs; exit 1; }
show_logs() {
  for f in "$W"/work/*.out; do [ -f "$f" ] && { echo "---- $f"; tail -n 30 "$f"; }; done
  echo "---- slurmctld.log"; tail -n 15 "$R/log/slurmctld.log" 2>/dev/null
}

[ -x "$MAPMERGE" ] || { echo "FAIL: MAPMERGE=$MAPMERGE is not an executable"; exit 1; }
"$here/up.sh" "$R"
rc=$?
[ $rc = 77 ] && exit 77
[ $rc = 0 ] || { echo "FAIL: up.sh exited with $rc"; exit 1; }
# shellcheck source=/dev/null
source "$R/env.sh"
log "SLURM up"

# ---- a small problem: input/small.yaml (4 tasks, a small MLP), paths relative to the work dir --
mkdir -p "$W/work" && cd "$W/work" || exit 1
config=$src/input/small.yaml
[ -r "$config" ] || die "$config is missing"
mpiexec -n 2 "$MAPMERGE" zoo -options_file_yaml "$config" -map_output zoo-small > zoo.log 2>&1 || { cat zoo.log; die "mapmerge zoo"; }
mpiexec -n 2 "$MAPMERGE" import -options_file_yaml "$config" > import.log 2>&1 || { cat import.log; die "mapmerge import"; }
run_opts=(-map_reevaluate 2)
log "zoo and store ready"

# ---- helpers --------------------------------------------------------------------------------
submit() { # submit ARGS...: sbatch --parsable, prints the job id
  local out
  out=$(sbatch --parsable "$@") || { die "sbatch $*"; }
  echo "${out%%;*}"
}
field() { scontrol -o show job "$1" 2>/dev/null | grep -o " $2=[^ ]*" | cut -d= -f2 | sort -u | tr '\n' ' ' | sed 's/ $//'; }
wait_jobs() { # wait_jobs TIMEOUT ID...: until none of the jobs is pending or running
  local limit=$(($(date +%s) + $1))
  shift
  local ids
  ids=$(IFS=,; echo "$*")
  while [ -n "$(squeue -h -j "$ids" 2>/dev/null)" ]; do
    [ "$(date +%s)" -lt $limit ] || { fail "jobs $ids still queued after the time limit"; squeue -j "$ids"; return 1; }
    sleep 0.5
  done
}
check_done() { # check_done ID NAME: every task COMPLETED with ExitCode 0:0
  local st ec
  st=$(field "$1" JobState)
  ec=$(field "$1" ExitCode)
  if [ "$st" = COMPLETED ] && [ "$ec" = 0:0 ]; then log "ok: $2 (job $1) COMPLETED, ExitCode 0:0"
  else fail "$2 (job $1): JobState=$st ExitCode=$ec, expected COMPLETED 0:0"; fi
}
check_run() { # check_run DIR NAME: the run folder holds the results
  local f
  for f in results.h5 front.csv manifest.json journal.jsonl; do
    [ -s "$1/$f" ] || fail "$2: $1/$f is missing or empty"
  done
}

# ---- 2 (submitted first, so it is running when we signal it) and 1 --------------------------
# the signalled run uses mpirun inside the allocation; the reference run uses srun
J2=$(LAUNCHER=mpirun RUN_DIR=runs/signalled submit -n 2 --job-name=sig "$src/jobs/map.sbatch" "$config" "${run_opts[@]}")
J1=$(submit -n 2 --job-name=ref "$src/jobs/map.sbatch" "$config" "${run_opts[@]}")
[ -n "$J1" ] && [ -n "$J2" ] || die "sbatch of jobs/map.sbatch failed"
log "submitted signalled run $J2 and reference run $J1"

signal_mid_run() { # signal_mid_run JOB RUNDIR: SIGUSR1 to the batch shell once 2 evaluations are journaled
  local limit=$(($(date +%s) + 90)) n=0
  while :; do
    n=$({ wc -l < "$2/journal.jsonl"; } 2>/dev/null || echo 0)
    [ "$n" -ge 2 ] && break
    [ "$(date +%s)" -lt $limit ] || die "job $1 journaled no evaluations within 90 s"
    [ -n "$(squeue -h -j "$1")" ] || die "job $1 ended before it could be signalled"
    sleep 0.1
  done
  scancel --signal=USR1 --batch "$1" || fail "scancel --signal=USR1 --batch $1"
  log "sent SIGUSR1 to job $1 after $n journaled evaluations"
}
signal_mid_run "$J2" runs/signalled

# ---- 3: the sweep array and a job that depends on all its tasks -----------------------------
# task 0 repeats the reference run on 1 rank (srun) and is signalled too: same results expected
printf '# test sweep\n-map_seed 0 -map_reevaluate 2\n\n-map_seed 2 -map_reevaluate 1 -map_sample_type lhs -map_sample_n 20\n' > sweep.txt
JS=$(submit -n 1 --array=0-1%2 "$src/jobs/sweep.sbatch" "$config" sweep.txt)
JD=$(submit -n 1 --job-name=after --dependency=afterok:"$JS" \
     --wrap "test -s runs/${JS}_0/front.csv && test -s runs/${JS}_1/front.csv && echo both-sweep-fronts-present")
[ -n "$JS" ] && [ -n "$JD" ] || die "sbatch of the sweep or the dependent job failed"
log "submitted sweep array $JS and dependent job $JD"
signal_mid_run "${JS}_0" "runs/${JS}_0"

wait_jobs 150 "$J1" "$J2" "$JS" "$JD" || { show_logs; exit 1; }
log "all jobs ended"

check_done "$J1" "reference run"
check_run "runs/$J1" "reference run"
check_done "$J2" "signalled run"
check_run runs/signalled "signalled run"
restarts=$(field "$J2" Restarts)
[ "$restarts" = 1 ] && log "ok: signalled run was requeued once" || fail "signalled run: Restarts=$restarts, expected 1"
out2=sig-$J2.out
grep -q "SIGUSR1 received" "$out2" || fail "$out2: the batch script did not report the SIGUSR1"
grep -q "requeueing job $J2" "$out2" || fail "$out2: no requeue after the checkpoint"
grep -q -- "-map_resume" "$out2" || fail "$out2: the restart did not pass -map_resume"
grep -q "restart 1" "$out2" || fail "$out2: no header of restart 1"
grep -q "exiting with status 85" "$out2" || fail "$out2: mapmerge did not report its checkpoint"
grep -q "resuming runs/signalled with" "$out2" || fail "$out2: mapmerge did not report the resume"
# an interrupted and resumed run gives the same results as an uninterrupted one
if cmp -s "runs/$J1/front.csv" runs/signalled/front.csv; then log "ok: front.csv identical after interrupt + requeue"
else fail "front.csv differs between the reference run and the signalled run"; diff "runs/$J1/front.csv" runs/signalled/front.csv | head; fi
for d in /samples/coeffs /pareto/coeffs /pareto/predicted; do
  h5diff "runs/$J1/results.h5" runs/signalled/results.h5 "$d" "$d" > /dev/null 2>&1 ||
    fail "results.h5 $d differs between the reference run and the signalled run"
done
# the resumed run journaled each sample once: as many journal lines as the reference run
n1=$(wc -l < "runs/$J1/journal.jsonl")
n2=$(wc -l < runs/signalled/journal.jsonl)
[ "$n1" = "$n2" ] && log "ok: journals have $n1 entries each" || fail "journal lines: reference $n1, signalled $n2"

check_done "$JS" "sweep array"
out0=mapmerge-sweep-${JS}_0.out
restarts=$(scontrol -o show job "${JS}_0" | grep -o " Restarts=[^ ]*" | cut -d= -f2)
[ "$restarts" = 1 ] && log "ok: sweep task 0 was requeued once" || fail "sweep task 0: Restarts=$restarts, expected 1"
grep -q "resuming runs/${JS}_0 with" "$out0" || fail "$out0: sweep task 0 did not resume after its checkpoint"
# 1 rank through srun, interrupted, against 2 ranks uninterrupted: the same bits
if cmp -s "runs/$J1/front.csv" "runs/${JS}_0/front.csv"; then log "ok: front.csv of sweep task 0 (1 rank, interrupted) identical to the reference (2 ranks)"
else fail "front.csv differs between the reference run (2 ranks) and sweep task 0 (1 rank, interrupted)"; fi
for t in 0 1; do check_run "runs/${JS}_$t" "sweep task $t"; done
grep -q "task 1 of 2: -map_seed 2" mapmerge-sweep-"${JS}"_1.out || fail "sweep task 1 did not get line 1 of the sweep file"
cmp -s "runs/${JS}_0/front.csv" "runs/${JS}_1/front.csv" && fail "sweep tasks 0 and 1 gave the same front (options not applied?)"
check_done "$JD" "afterok job"
grep -q both-sweep-fronts-present "slurm-$JD.out" || fail "afterok job did not see the sweep results"

# ---- 4: nested chain, dry run ---------------------------------------------------------------
chain=$("$src/jobs/nested_chain.sh" --dry-run --tasks 8 "$config" -map_seed 1)
nlines=$(grep -c '^sbatch ' <<< "$chain")
ndeps=$(grep -c -- '--dependency=afterok:\$JOB_L' <<< "$chain")
if [ "$nlines" = 3 ] && [ "$ndeps" = 2 ] && grep -q -- '--array=0-3 ' <<< "$chain"; then log "ok: nested_chain.sh --dry-run: 3 levels, 2 dependencies"
else fail "nested_chain.sh --dry-run for 8 tasks: $nlines sbatch lines, $ndeps dependencies"; echo "$chain"; fi

[ $fails = 0 ] || show_logs
log "done: $fails failure(s)"
[ $fails = 0 ]
