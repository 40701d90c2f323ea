#!/bin/bash
# test_srun.sh - a MAP run launched by srun in a SLURM job, without CPU binding (--cpu-bind=none,
# so OpenBLAS would see every core of the node) and with OPENBLAS_NUM_THREADS unset, gives every
# results.h5 dataset the same bits as `mpiexec -n 2` with its default binding: mapmerge pins its BLAS
# threads itself (docs/reproducibility.md). SLURM comes up under a temporary folder (tests/slurm/up.sh)
# and is always torn down; exit 77 (skipped) when SLURM/munge are missing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${MAP_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
MAPMERGE=${MAPMERGE:-$src/build/mapmerge}
unset OPENBLAS_NUM_THREADS
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
W=$(mktemp -d "${TMPDIR:-/tmp}/mapmerge-srun.XXXXXX") && chmod 755 "$W" || exit 1
R=$W/slurm
trap '"$here/../slurm/down.sh" "$R"; rm -rf "$W"' EXIT
trap 'exit 1' INT TERM

"$here/../slurm/up.sh" "$R"
rc=$?
[ $rc = 77 ] && exit 77
[ $rc = 0 ] || { echo "FAIL: up.sh exited with $rc"; exit 1; }
# shellcheck source=/dev/null
source "$R/env.sh"
mkdir -p "$W/work" && cd "$W/work" || exit 1
config=$src/input/small.yaml
mpiexec -n 2 "$MAPMERGE" zoo -options_file_yaml "$config" -map_output zoo-small > zoo.log 2>&1 || { cat zoo.log; echo "FAIL: zoo"; exit 1; }
mpiexec -n 2 "$MAPMERGE" import -options_file_yaml "$config" > import.log 2>&1 || { cat import.log; echo "FAIL: import"; exit 1; }
opts=(run -options_file_yaml "$config" -map_tasks rot90,flip_v,shift -map_sample_n 16 -map_reevaluate 2)
mpiexec -n 2 "$MAPMERGE" "${opts[@]}" -map_output run-mpiexec > mpiexec.log 2>&1 || { cat mpiexec.log; echo "FAIL: mpiexec run"; exit 1; }
sbatch --parsable --wait -N 1 -n 2 -o srun.out --wrap "srun --cpu-bind=none $MAPMERGE ${opts[*]} -map_output run-srun" > job.id ||
  { cat srun.out; echo "FAIL: sbatch/srun run"; exit 1; }
[ -s run-srun/results.h5 ] || { cat srun.out; echo "FAIL: srun run wrote no results.h5"; exit 1; }
grep -q '"blas_threads": "1 thread' run-srun/manifest.json || { echo "FAIL: the srun run's manifest lacks the BLAS pin"; exit 1; }
grep -q '"SLURM_JOB_ID"' run-srun/manifest.json || { echo "FAIL: the srun run's manifest has no SLURM job id (not run by SLURM?)"; exit 1; }
/usr/bin/python3 - run-mpiexec/results.h5 run-srun/results.h5 <<'EOF'
import sys
import h5py
def ds(p):
    out = {}
    with h5py.File(p, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[...].tobytes() if o.dtype != object else list(o[...].ravel()))
                     if isinstance(o, h5py.Dataset) else None)
    return out
a, b = ds(sys.argv[1]), ds(sys.argv[2])
diff = sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))
print(("FAIL: datasets differ between mpiexec and srun --cpu-bind=none: %s" % diff) if diff else
      "ok: srun --cpu-bind=none (SLURM job) and mpiexec with default binding: all %d results.h5 datasets the same bits" % len(a))
EOF
