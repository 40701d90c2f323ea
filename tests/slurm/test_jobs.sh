#!/bin/bash
# test_jobs.sh - the batch scripts in jobs/ on a real (private, single-node) SLURM:
#   1. map.sbatch (srun, 2 ranks) on a small zoo problem: COMPLETED, ExitCode 0:0, results written;
#   2. map.sbatch (LAUNCHER=mpirun) interrupted by `scancel --signal=USR1 --batch` mid-run:
#      checkpoint (status 85) -> scontrol requeue -> resumes from the journal -> COMPLETED, and
#      its front.csv and result datasets are identical to those of the uninterrupted run 1;
#   3. sweep.sbatch as a 2-task array (%2 throttle) and a job with --dependency=afterok on it;
#   4. nested_chain.sh --dry-run prints one chained sbatch line per tree level;
#   5. a real nested chain (nested_chain.sh, 4 tasks: level 1 = array of 2 pairs, level 2 = 1
#      pair, afterok): pair 0 is checkpointed mid-run and requeued (resumes with -map_resume, the
#      first-time jobs do not), every job COMPLETED 0:0, level 2 started after level 1 ended, and
#      the chain's results.h5 datasets equal those of one `mpiexec -n 2 mapmerge run -map_method
#      nested`; a level-2 job in a folder without level 1 fails ("run that level's jobs first").
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
# 120 Latin-hypercube samples: enough evaluations that a signal lands mid-run (once fit and search took
# milliseconds, the 30-sample default design could finish before the signal arrived)
run_opts=(-map_reevaluate 2 -map_sample_type lhs -map_sample_n 120)
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
# the reference run also goes through the environment hook (a site's `module load` file)
printf 'echo "env hook ran in job $SLURM_JOB_ID"\n' > env-hook.sh
J1=$(MAPMERGE_ENV=$PWD/env-hook.sh submit -n 2 --job-name=ref "$src/jobs/map.sbatch" "$config" "${run_opts[@]}")
[ -n "$J1" ] && [ -n "$J2" ] || die "sbatch of jobs/map.sbatch failed"
log "submitted signalled run $J2 and reference run $J1"

signal_mid_run() { # signal_mid_run JOB JOURNAL [N]: SIGUSR1 to the batch shell once N (2) evaluations are journaled
  local limit=$(($(date +%s) + 90)) n=0
  while :; do
    n=$({ wc -l < "$2"; } 2>/dev/null || echo 0)
    [ "$n" -ge "${3:-2}" ] && break
    [ "$(date +%s)" -lt $limit ] || die "job $1 journaled no evaluations within 90 s"
    [ -n "$(squeue -h -j "$1")" ] || die "job $1 ended before it could be signalled"
    sleep 0.1
  done
  scancel --signal=USR1 --batch "$1" || fail "scancel --signal=USR1 --batch $1"
  log "sent SIGUSR1 to job $1 after $n journaled evaluations"
}
signal_mid_run "$J2" runs/signalled/journal.jsonl

# ---- 3: the sweep array and a job that depends on all its tasks -----------------------------
# task 0 repeats the reference run on 1 rank (srun) and is signalled too: same results expected
# line 1 quotes its values as a user would; unquoted they would be unknown sample types
printf '# test sweep\n-map_seed 0 -map_reevaluate 2 -map_sample_type lhs -map_sample_n 120\n\n-map_seed 2 -map_reevaluate "1" -map_sample_type '"'"'lhs'"'"' -map_sample_n 20\n' > sweep.txt
JS=$(submit -n 1 --array=0-1%2 "$src/jobs/sweep.sbatch" "$config" sweep.txt)
JD=$(submit -n 1 --job-name=after --dependency=afterok:"$JS" \
     --wrap "test -s runs/${JS}_0/front.csv && test -s runs/${JS}_1/front.csv && echo both-sweep-fronts-present")
[ -n "$JS" ] && [ -n "$JD" ] || die "sbatch of the sweep or the dependent job failed"
log "submitted sweep array $JS and dependent job $JD"
signal_mid_run "${JS}_0" "runs/${JS}_0/journal.jsonl"

# ---- 5: a real nested chain; 1 rank per job, so both pairs of level 1 run at once -------------
# the task count (4) comes from the config's "map: tasks:" line
# 300 samples per pair (~3 s a pair): the signal below must land while pair 0 runs, and on a
# loaded machine the poll can lag by a second or two (12 samples took ~1 s: a CI run signalled
# pair 0 as it finished)
nested_opts=(-map_preference "1,2,1,1" -map_nested_samples 300)
chain=$("$src/jobs/nested_chain.sh" --run-dir runs/chain --sbatch "-n 1" "$config" "${nested_opts[@]}") ||
  { echo "$chain"; die "jobs/nested_chain.sh failed"; }
echo "$chain"
JN1=$(awk '/^level 1: job array/ { print $5 }' <<< "$chain" | tr -d ,)
JN2=$(awk '/^level 2: job array/ { print $5 }' <<< "$chain" | tr -d ,)
if [ -z "$JN1" ] || [ -z "$JN2" ] || grep -q '^level 3' <<< "$chain" || ! grep -q "2 pair(s) of 4 models" <<< "$chain"; then
  die "nested_chain.sh for input/small.yaml: expected level 1 (2 pairs of 4 models) and level 2 only"
fi
# a level-2 job whose level 1 never ran
JE=$(RUN_DIR=runs/early submit -n 1 --array=0 "$src/jobs/nested_level.sbatch" "$config" 2 "${nested_opts[@]}")
log "submitted nested chain: level 1 array $JN1, level 2 array $JN2 (afterok); early level-2 job $JE"
# pair 0 evaluates the 4 leaves, then its 300 samples and the pick: signal it among its samples
signal_mid_run "${JN1}_0" runs/chain/journal-L1-P0.jsonl 5
# the same nested MAP in one run, outside SLURM, on 2 ranks (the chain's jobs have 1)
mpiexec -n 2 "$MAPMERGE" run -options_file_yaml "$config" -map_method nested "${nested_opts[@]}" -map_output runs/nested-whole \
  > nested-whole.log 2>&1 || { tail -n 30 nested-whole.log; fail "mpiexec -n 2 mapmerge run -map_method nested"; }
log "reference nested run done"

wait_jobs 150 "$J1" "$J2" "$JS" "$JD" "$JN1" "$JN2" "$JE" || { show_logs; exit 1; }
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

grep -q "env hook ran in job $J1" "ref-$J1.out" && log "ok: MAPMERGE_ENV was sourced in job $J1" || fail "ref-$J1.out: MAPMERGE_ENV was not sourced"
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

# ---- 5: the nested chain ---------------------------------------------------------------------
check_done "$JN1" "nested level 1 (2 pairs)"
check_done "$JN2" "nested level 2"
restarts=$(field "${JN1}_0" Restarts)
[ "$restarts" = 1 ] && log "ok: nested pair L1-P0 was requeued once" || fail "nested pair L1-P0: Restarts=$restarts, expected 1"
restarts=$(field "${JN1}_1" Restarts)
[ "$restarts" = 0 ] || fail "nested pair L1-P1: Restarts=$restarts, expected 0 (only pair 0 was signalled)"
# RESUME: only the restarted pair passes -map_resume
outp0=mapmerge-nested-L1-${JN1}_0.out outp1=mapmerge-nested-L1-${JN1}_1.out outl2=mapmerge-nested-L2-${JN2}_0.out
for f in "$outp0" "$outp1" "$outl2"; do [ -s "$f" ] || fail "nested chain log $f is missing"; done
[ "$(grep -c '^==== command: .* -map_resume' "$outp0")" = 1 ] || fail "$outp0: expected exactly one command line with -map_resume (the restart)"
grep '^==== command:' "$outp0" | head -n 1 | grep -q -- -map_resume && fail "$outp0: the first run of pair 0 passed -map_resume"
grep -q "requeueing job" "$outp0" || fail "$outp0: no requeue after the checkpoint"
grep -q "resuming runs/chain with" "$outp0" || fail "$outp0: the restarted pair did not resume its journal"
for f in "$outp1" "$outl2"; do
  grep -q -- -map_resume "$f" && fail "$f: a first-time job passed -map_resume"
done
for p in 0 1; do
  f=mapmerge-nested-L1-${JN1}_$p.out
  grep -q -- "-map_nested_level 1 -map_nested_pair $p" "$f" || fail "$f: not run with -map_nested_level 1 -map_nested_pair $p"
  grep -q "the next level's jobs continue" "$f" || fail "$f: level-1 pair $p did not stop after its level"
done
grep -q -- "-map_nested_level 2 -map_nested_pair 0" "$outl2" || fail "$outl2: not run with -map_nested_level 2 -map_nested_pair 0"
# afterok: level 2 started only when every pair of level 1 had ended
l1_end=$(field "$JN1" EndTime | tr ' ' '\n' | sort | tail -n 1)
l2_start=$(field "$JN2" StartTime)
if [[ -n $l1_end && ! $l2_start < $l1_end ]]; then log "ok: level 2 started at $l2_start, after level 1 ended at $l1_end"
else fail "level 2 started at $l2_start, before level 1 ended at $l1_end"; fi
for f in journal-L1-P0.jsonl journal-L1-P1.jsonl journal-L2-P0.jsonl results.h5 front.csv manifest.json; do
  [ -s "runs/chain/$f" ] || fail "nested chain: runs/chain/$f is missing or empty"
done
if /usr/bin/python3 "$here/same_results.py" runs/nested-whole/results.h5 runs/chain/results.h5; then
  log "ok: the chain's results.h5 datasets are identical to one mpiexec -n 2 nested run"
else fail "the chain's results.h5 differs from one mpiexec -n 2 nested run"; fi
cmp -s runs/nested-whole/front.csv runs/chain/front.csv || fail "front.csv differs between the chain and the whole nested run"
# the early level-2 job fails with a clear message
st=$(field "$JE" JobState)
[ "$st" = FAILED ] && log "ok: level-2 job without level 1 FAILED ($(field "$JE" ExitCode))" || fail "early level-2 job $JE: JobState=$st, expected FAILED"
grep -q "run that level's jobs first" "mapmerge-nested-${JE}_0.out" || fail "early level-2 job: no \"run that level's jobs first\" in its log"
[ -e runs/early/results.h5 ] && fail "early level-2 job wrote runs/early/results.h5"

[ $fails = 0 ] || show_logs
log "done: $fails failure(s)"
[ $fails = 0 ]
