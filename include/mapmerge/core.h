/* mapmerge core: package initialisation, profiling events, collective error checks, option helpers,
 * the layout of a sharded vector, timing. Every other module builds on this one. Errors are PETSc error
 * codes throughout. By concern, also: core_io.h (temporary outputs, input/output path checks, sha256 and
 * the store checksum) and core_rng.h (counter-based random numbers), both included here because most
 * callers need them; core_h5.h (MapCallHDF5 and the HDF5 helpers) only where HDF5 is used. */
#ifndef MAPMERGE_CORE_H
#define MAPMERGE_CORE_H

#include <petscsys.h>
#include <errno.h>
#include <string.h>
#include <stdint.h>

#define MAP_MAX_NDIM 8
#define MAP_NAME_LEN 256
#define MAP_PATH_LEN 4096
/* The most tasks (and so Pareto objectives and merge coefficients) a run handles: fixed-size arrays
   of per-task values are this long. */
#define MAP_MAX_TASKS 64

/* Exit status of a run that was interrupted by a signal after checkpointing (SLURM requeues on it). */
#define MAP_EXIT_CHECKPOINTED 85
/* the process exit status a command asks for when it returns without error (e.g. MAP_EXIT_CHECKPOINTED) */
extern int MapExitStatus;

/* Profiling events, registered once by MapInitializePackage(); see -log_view. */
extern PetscLogEvent MAP_EVENT_StoreRead, MAP_EVENT_StoreWrite, MAP_EVENT_Import, MAP_EVENT_Export,
  MAP_EVENT_MergeApply, MAP_EVENT_EvalLoss, MAP_EVENT_EvalComm, MAP_EVENT_SurrogateFit,
  MAP_EVENT_ParetoSolve, MAP_EVENT_Journal, MAP_EVENT_SurrogateSolve;
extern PetscClassId MAP_CLASSID;

/* MapInitializePackage - registers the class id and log events. Not collective; idempotent. */
PetscErrorCode MapInitializePackage(void);

/* MapCheckAll - collective check: every rank passes its local condition; if it fails on any rank,
   all ranks raise an error together (so none waits in a later collective). The failing rank's
   message is printed with its rank; the others report which rank failed. */
#define MapCheckAll(comm, cond, code, ...) \
  do { \
    int map_ok_ = (cond) ? 1 : 0, map_allok_ = 0; \
    PetscCallMPI(MPI_Allreduce(&map_ok_, &map_allok_, 1, MPI_INT, MPI_MIN, (comm))); \
    if (PetscUnlikely(!map_allok_)) { \
      if (!map_ok_) SETERRQ(PETSC_COMM_SELF, (code), __VA_ARGS__); \
      SETERRQ(PETSC_COMM_SELF, (code), "another rank reported an error (see its message)"); \
    } \
  } while (0)

/* MapStrlcat - appends src to the NUL-terminated dst of `size` bytes (BSD strlcat: at most
   size - strlen(dst) - 1 characters, always terminated). PETSc 3.18's PetscStrlcat bounds the copy by
   size - strlen(src) instead, which truncates long names and can write past dst: do not use it. */
PetscErrorCode MapStrlcat(char *dst, const char *src, size_t size);
/* MapCheckOptionsLeft - makes an unused option (usually a typo) an error that lists it.
   Call after every object has read its options and before the expensive work. Collective. */
PetscErrorCode MapCheckOptionsLeft(MPI_Comm comm);
/* MapKnownOptionNames - NULL-terminated list of every "-map_*" option some command reads. */
const char *const *MapKnownOptionNames(void);

/* MapOptionsGetList - reads a comma-separated option into a NULL-terminated array of strings
   (free with MapFreeList). *n = 0 and *list = NULL when the option is absent. */
PetscErrorCode MapOptionsGetList(const char *name, int *n, char ***list, PetscBool *set);
PetscErrorCode MapSplitList(const char *s, char sep, int *n, char ***list);
PetscErrorCode MapFreeList(int n, char ***list);
/* MapOptionsGetRealList - comma-separated reals, at most max; *n set to the count read. */
PetscErrorCode MapOptionsGetRealList(const char *name, int max, double *vals, int *n, PetscBool *set);

/* MapLayout - the contiguous, balanced shard [lo, hi) of a vector of length P that rank `rank`
   of `size` owns; boundaries are multiples of 64 elements (the last rank takes the tail). */
typedef struct {
  int64_t P, lo, hi;
  int     rank, size;
} MapLayout;
PetscErrorCode MapLayoutCreate(MPI_Comm comm, int64_t P, MapLayout *layout);
void           MapLayoutRange(int64_t P, int size, int rank, int64_t *lo, int64_t *hi);

/* MapWallTime - seconds since an arbitrary origin (MPI_Wtime). */
double MapWallTime(void);

/* MapWaitPolitely - MPI_Wait that sleeps between tests (up to 2 ms): ranks that wait for an external
   program (a worker, a command) leave the cores to it instead of spinning in the MPI library. */
PetscErrorCode MapWaitPolitely(MPI_Request *req);
/* MapBcastPolitely - MPI_Bcast of count bytes, waited for with MapWaitPolitely. Collective. */
PetscErrorCode MapBcastPolitely(void *buf, int count, int root, MPI_Comm comm);

/* MapProgress - rank-0 progress line "label: i/n, elapsed Xs, ETA Ys". */
PetscErrorCode MapProgress(MPI_Comm comm, const char *label, PetscInt done, PetscInt total, double t0);

#include <mapmerge/core_io.h>
#include <mapmerge/core_rng.h>

#endif
