#!/bin/bash
# nested_chain.sh - submit a nested-MAP run as a chain of SLURM jobs, one per level of the
# merge tree. Nested MAP merges T models pairwise: a level with m models has floor(m/2)
# independent pairs (an odd model waits for the next level), leaving ceil(m/2) models; so there
# are ceil(log2 T) levels, numbered 1, 2, ... Each level L is one job array
# (jobs/nested_level.sbatch; array task P runs `mapmerge run -map_method nested
# -map_nested_level L -map_nested_pair P`) that starts only when every pair of the level before
# has COMPLETED (--dependency=afterok); a failed pair cancels the rest of the chain
# (--kill-on-invalid-dep=yes). All levels share one run folder: each job journals into
# RUN_DIR/journal-L<L>-P<P>.jsonl, a level-L job replays the levels before it from those
# journals, and the job of the last level writes results.h5, front.csv and manifest.json
# (the same results as one whole `mapmerge run -map_method nested`).
#
#   jobs/nested_chain.sh [--dry-run] [--tasks T] [--run-dir DIR] [--throttle K] \
#                        [--sbatch "ARGS"] CONFIG.yaml [options for every pair]
#
#   --dry-run     print the sbatch commands instead of running them
#   --tasks T     number of tasks (models to merge); default: counted from a -map_tasks a,b,...
#                 option among the options, else from the config's "map: tasks: a,b,..." line
#   --run-dir D   the shared run folder (default runs/nested-<date>-<time>)
#   --throttle K  at most K pairs of a level run at once (sbatch --array=...%K)
#   --sbatch "A"  extra sbatch arguments for every level, e.g. "-n 8 --time=01:00:00"
#                 (SBATCH_ACCOUNT / SBATCH_PARTITION in the environment work too)
#
# Example: jobs/nested_chain.sh --dry-run --tasks 8 input/default.yaml -map_seed 1
# prints three sbatch lines (4, 2 and 1 pairs). Run it from the repository root; the level jobs
# use jobs/map.sbatch, so LAUNCHER and MAPMERGE work as there.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dry=0 T='' run_dir='' throttle='' extra=''
usage() { sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry=1 ;;
    --tasks) T=${2:?--tasks needs a number}; shift ;;
    --run-dir) run_dir=${2:?--run-dir needs a folder}; shift ;;
    --throttle) throttle=${2:?--throttle needs a number}; shift ;;
    --sbatch) extra=${2?--sbatch needs arguments}; shift ;;
    -h | --help) usage ;;
    --*) echo "nested_chain.sh: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
  shift
done
[ $# -ge 1 ] || usage
config=$1
shift
count() { echo $(($(tr -cd , <<< "$1" | wc -c) + 1)); } # names in a comma-separated list
if [ -z "$T" ]; then # the last -map_tasks option wins, as in mapmerge
  prev=
  for a in "$@"; do
    [ "$prev" = -map_tasks ] && T=$(count "$a")
    prev=$a
  done
fi
if [ -z "$T" ] && [ "$config" != - ] && [ -r "$config" ]; then
  # else the config's "map: tasks: a,b,..." (2-space indent: not the "map: zoo: tasks:" of mapmerge zoo)
  list=$(awk '/^[^[:space:]#]/ { inmap = ($0 ~ /^map:/) }
              inmap && /^  tasks:/ { sub(/^  tasks:[[:space:]]*/, ""); sub(/[[:space:]]+#.*$/, ""); gsub(/[][[:space:]]/, ""); print; exit }' "$config")
  [ -n "$list" ] && T=$(count "$list")
fi
case $T in '' | *[!0-9]*) echo "nested_chain.sh: give the number of tasks with --tasks T (or -map_tasks a,b,..., or map: tasks: in the config)" >&2; exit 2 ;; esac
[ "$T" -ge 2 ] || { echo "nested_chain.sh: nested MAP needs at least 2 tasks, got $T" >&2; exit 2; }
case $throttle in '' | [0-9]*) ;; *) echo "nested_chain.sh: --throttle $throttle is not a number" >&2; exit 2 ;; esac
[ "$config" = - ] || [ -r "$config" ] || [ $dry = 1 ] || { echo "nested_chain.sh: config '$config' not found" >&2; exit 2; }
run_dir=${run_dir:-runs/nested-$(date +%Y%m%d-%H%M%S)}

q() { # a command line that can be pasted back into a shell ($JOB_Ln stands for a job id)
  local a out=
  for a in "$@"; do
    if [[ $a =~ ^[][A-Za-z0-9_./,=:%+@-]+$ || $a =~ ^--dependency=afterok:\$JOB_L[0-9]+$ ]]; then out+="$a "
    else out+="'${a//\'/\'\\\'\'}' "; fi
  done
  printf '%s' "${out% }"
}
m=$T level=1 prev= # levels are numbered from 1, as -map_nested_level counts them
echo "nested MAP: $T tasks, run folder $run_dir"
while [ "$m" -gt 1 ]; do
  pairs=$((m / 2))
  # shellcheck disable=SC2206 # extra holds several sbatch arguments
  args=(--parsable --job-name="mapmerge-nested-L$level" --array="0-$((pairs - 1))${throttle:+%$throttle}"
        --export="ALL,RUN_DIR=$run_dir,MAP_JOBS_DIR=$here" $extra)
  if [ -n "$prev" ]; then args+=(--dependency="afterok:$prev" --kill-on-invalid-dep=yes); fi
  cmd=(sbatch "${args[@]}" "$here/nested_level.sbatch" "$config" "$level" "$@")
  if [ $dry = 1 ]; then
    echo "$(q "${cmd[@]}")  # level $level: $pairs pair(s) of $m models"
    prev="\$JOB_L$level"
  else
    out=$("${cmd[@]}") || { echo "nested_chain.sh: sbatch failed for level $level${prev:+ (levels before it stay queued: scancel them)}" >&2; exit 1; }
    prev=${out%%;*} # --parsable prints "jobid[;cluster]"
    echo "level $level: job array $prev, $pairs pair(s) of $m models"
  fi
  m=$(((m + 1) / 2))
  level=$((level + 1))
done
[ $dry = 1 ] || echo "last level: job $prev; watch with: squeue -j $prev   (results in $run_dir)"
