#!/bin/bash
# local.sh - the run of jobs/map.sbatch on a workstation, through mpiexec instead of SLURM.
#
#   jobs/local.sh [-n N] [-k K] CONFIG.yaml [extra -map_... options]
#
#   -n N   MPI ranks (default 2)
#   -k K   resume automatically at most K times after a checkpoint (default 3)
# Environment: MPIEXEC (default "mpiexec"; e.g. "mpiexec --oversubscribe"), MAPMERGE (default
# build/mapmerge), RUN_DIR (default runs/local-<date>-<time>; give an existing run folder to
# continue it: -map_resume is added whenever the folder has a journal).
#
# Signals, as under SLURM:
#   kill -USR1 <pid of local.sh>   checkpoint now and resume at once (as a requeue would)
#   kill -TERM <pid of local.sh>   checkpoint and stop (exit status 85); run again with the same
#                                  RUN_DIR to continue
# A checkpoint (exit status 85 of `mapmerge run`) that this script did not ask for, e.g. after a
# SIGUSR1 sent straight to the ranks, is resumed too, up to K times. Ctrl-C aborts the ranks; the
# journal keeps every finished evaluation, so RUN_DIR=<folder> jobs/local.sh ... continues it.
set -u
np=2 max_resumes=3
while getopts "n:k:h" o; do
  case $o in
    n) np=$OPTARG ;;
    k) max_resumes=$OPTARG ;;
    *) sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -lt 1 ]; then echo "usage: jobs/local.sh [-n N] [-k K] CONFIG.yaml [options]  (CONFIG may be '-')" >&2; exit 2; fi
config=$1
shift
base=()
if [ "$config" != - ]; then
  [ -r "$config" ] || { echo "local.sh: config file '$config' not found (relative to $PWD)" >&2; exit 2; }
  base+=(-options_file_yaml "$config")
fi
MPIEXEC=${MPIEXEC:-mpiexec}
MAPMERGE=${MAPMERGE:-build/mapmerge}
RUN_DIR=${RUN_DIR:-runs/local-$(date +%Y%m%d-%H%M%S)}
[ -x "$MAPMERGE" ] || { echo "local.sh: MAPMERGE=$MAPMERGE is not an executable (build it, or set MAPMERGE)" >&2; exit 2; }
mkdir -p "$(dirname "$RUN_DIR")" || exit 1

step_pid='' stop='' resumes=0
forward() { # $1: the signal; TERM (and INT) also mean "do not resume"
  [ "$1" != USR1 ] && stop=$1
  echo "==== local.sh: SIG$1: asking the ranks to checkpoint${stop:+ and stop}"
  [ -n "$step_pid" ] && kill -USR1 "$step_pid" 2>/dev/null
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM
while :; do
  opts=("${base[@]}")
  [ -s "$RUN_DIR/journal.jsonl" ] && opts+=(-map_resume)
  # shellcheck disable=SC2206 # MPIEXEC is split into words on purpose
  cmd=($MPIEXEC -n "$np" "$MAPMERGE" run "${opts[@]}" -map_output "$RUN_DIR" "$@")
  echo "==== local.sh $(date '+%F %T'): ${cmd[*]}"
  "${cmd[@]}" &
  step_pid=$!
  # as in map.sbatch: wait out trap interruptions, then take the step's own status
  while kill -0 "$step_pid" 2>/dev/null; do wait "$step_pid"; done
  wait "$step_pid"
  rc=$?
  step_pid=
  if [ $rc -ne 85 ]; then
    echo "==== local.sh: mapmerge run exited with status $rc (run folder $RUN_DIR)"
    exit $rc
  fi
  if [ -n "$stop" ]; then
    echo "==== local.sh: checkpointed in $RUN_DIR; continue with: RUN_DIR=$RUN_DIR $0 -n $np $config ..."
    exit 85
  fi
  if [ "$resumes" -ge "$max_resumes" ]; then
    echo "==== local.sh: checkpointed again after $resumes resumes (-k $max_resumes): giving up; RUN_DIR=$RUN_DIR continues it" >&2
    exit 85
  fi
  resumes=$((resumes + 1))
  echo "==== local.sh: checkpointed; resuming ($resumes of at most $max_resumes)"
done
