# Sourced by bench/*/run.sh with the caller's arguments [BUILD_DIR] [WORK_DIR] [...]: sets here, root,
# build (absolute) and work, shifts the two off, checks that the binary and the embedded default's
# store exist, and sets the MPI/BLAS environment of the MAP benchmarks.
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-build}
work=${2:-$here/work}
[ $# -ge 1 ] && shift
[ $# -ge 1 ] && shift
case $build in /*) ;; *) build=$root/$build ;; esac
[ -x "$build/mapmerge" ] || { echo "run.sh: no $build/mapmerge (build it: cmake --build $build --target mapmerge)" >&2; exit 2; }
[ -f "$root/zoo/store.h5" ] || { echo "run.sh: no zoo/store.h5 (build the embedded default first: see README)" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
