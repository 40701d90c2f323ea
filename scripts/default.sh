#!/usr/bin/env bash
# The main job on the embedded default problem, on NP ranks (default 2):
#   1. build the Fashion-MNIST model zoo into zoo/ (once; ~1-2 min),
#   2. import it into the parallel HDF5 store zoo/store.h5 (once),
#   3. run MAP into runs/default (a new run each time: the old folder is moved aside),
#   4. write runs/default/report.html (postprocess/report.py) and print its path.
# The run's printed summary is also kept as runs/default/run.log (the report's phase times).
set -euo pipefail
cd "$(dirname "$0")/.."
NP=${NP:-2}
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}   # one BLAS thread per MPI rank
MPIEXEC=(mpiexec -n "$NP" --oversubscribe)
MAPMERGE=build/mapmerge
RUN=${RUN:-runs/default}

if [[ ! -f zoo/pretrained.safetensors ]]; then
  "${MPIEXEC[@]}" $MAPMERGE zoo -map_output zoo
fi
if [[ ! -f zoo/store.h5 ]]; then
  "${MPIEXEC[@]}" $MAPMERGE import -options_file_yaml input/default.yaml
fi
if [[ -d "$RUN" ]]; then mv "$RUN" "$RUN.old.$(date +%Y%m%d-%H%M%S)"; fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"${MPIEXEC[@]}" $MAPMERGE run -options_file_yaml input/default.yaml -map_output "$RUN" "$@" | tee "$log"
mv "$log" "$RUN/run.log" && chmod 0644 "$RUN/run.log"
/usr/bin/python3 postprocess/report.py "$RUN" | sed 's/^report: wrote /report: /'
