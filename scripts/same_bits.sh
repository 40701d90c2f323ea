#!/usr/bin/env bash
# Same bits before and after a change: the embedded default, a Bayesian and a nested run of two
# mapmerge binaries at -n 2 (zoo/ and zoo/store.h5 from scripts/default.sh), every results.h5 dataset
# compared with tests/slurm/same_results.py and front.csv byte for byte.
#   scripts/same_bits.sh OLD/mapmerge NEW/mapmerge WORKDIR
set -u
[[ $# -eq 3 ]] || { echo "usage: $0 OLD_BINARY NEW_BINARY WORKDIR" >&2; exit 2; }
A=$(realpath "$1"); B=$(realpath "$2"); O=$(realpath -m "$3")
cd "$(dirname "$0")/.."
[[ -f zoo/store.h5 ]] || { echo "no zoo/store.h5: run scripts/default.sh first" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1
rm -rf "$O" && mkdir -p "$O"
declare -A opts=(
  [default]=""
  [bayes]="-map_tasks rot90,shift,invert -map_method bayesian -map_bayes_iterations 2 -map_seed 11 -map_reevaluate 4"
  [nested]="-map_tasks rot90,rot180,rot270,flip_v -map_method nested -map_preference 1,2,1,1")
status=0
for k in default bayes nested; do
  for tag in old new; do
    bin=$A; [[ $tag == new ]] && bin=$B
    # shellcheck disable=SC2086  # the options are words
    mpiexec -n 2 --oversubscribe "$bin" run -options_file_yaml input/default.yaml -map_output "$O/$k-$tag" ${opts[$k]} \
      > "$O/$k-$tag.log" 2>&1 || { echo "$k: the $tag run failed, see $O/$k-$tag.log"; status=1; }
  done
  /usr/bin/python3 -c "
import sys; sys.path.insert(0, 'tests/slurm'); from same_results import differences
d = differences('$O/$k-old/results.h5', '$O/$k-new/results.h5')
print('$k: results.h5', 'same bits' if not d else 'DIFFERS: ' + '; '.join(d)); sys.exit(1 if d else 0)" || status=1
  if cmp -s "$O/$k-old/front.csv" "$O/$k-new/front.csv"; then echo "$k: front.csv same"; else echo "$k: front.csv DIFFERS"; status=1; fi
done
exit $status
