/* mapmerge core: package initialisation, profiling events, error helpers, layout, RNG.
 * Every other module builds on this one. Errors are PETSc error codes throughout. */
#ifndef MAPMERGE_CORE_H
#define MAPMERGE_CORE_H

#include <petscsys.h>
#include <errno.h>
#include <string.h>
#include <stdint.h>

#define MAP_MAX_NDIM 8
#define MAP_NAME_LEN 256
#define MAP_PATH_LEN 4096

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

/* MapCallHDF5 - checks an HDF5 return value (herr_t or hid_t); a negative value becomes a PETSc
   error that names the call, after HDF5's own error stack has been printed. */
#define MapCallHDF5(call) \
  do { \
    errno                 = 0; /* what the file system said, if anything: "No space left on device" beats the call's text */ \
    long long map_h5_ret_ = (long long)(call); \
    if (PetscUnlikely(map_h5_ret_ < 0)) { \
      int map_h5_errno_ = errno; \
      H5Eprint2(H5E_DEFAULT, stderr); \
      if (map_h5_errno_ == ENOSPC || map_h5_errno_ == EDQUOT || map_h5_errno_ == EIO || map_h5_errno_ == EROFS || map_h5_errno_ == EFBIG) \
        SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s (HDF5 call failed: %s)", strerror(map_h5_errno_), #call); \
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_LIB, "HDF5 call failed: %s", #call); \
    } \
  } while (0)

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

/* Temporary output files: registered when created, removed by MapTempCleanup() on any error
   path, so a failed command never leaves a half-written file behind. Outputs are written to a
   temporary name and renamed into place only when complete. */
PetscErrorCode MapTempRegister(const char *path);
PetscErrorCode MapTempUnregister(const char *path);
void           MapTempCleanup(void);
/* MapTempName - "<dir>/.<base>.tmp.<pid>" beside path (same filesystem, so rename is atomic). */
PetscErrorCode MapTempName(const char *path, char *tmp, size_t len);
/* MapStrlcat - appends src to the NUL-terminated dst of `size` bytes (BSD strlcat: at most
   size - strlen(dst) - 1 characters, always terminated). PETSc 3.18's PetscStrlcat bounds the copy by
   size - strlen(src) instead, which truncates long names and can write past dst: do not use it. */
PetscErrorCode MapStrlcat(char *dst, const char *src, size_t size);
/* MapCheckInputFile - error (naming `what`, e.g. the option, and the kind of file) when path exists
   but is not a regular file: a FIFO would block the reading rank forever, a device never ends.
   Does not open the file; a missing file passes (the caller's open reports it). Not collective. */
PetscErrorCode MapCheckInputFile(const char *path, const char *what);
/* MapNonRegularKind - "a FIFO (named pipe)", "a directory", ... for an existing non-regular path, else NULL */
const char *MapNonRegularKind(const char *path);
/* MapCheckWritable - error naming the option when the directory of path cannot be written. */
PetscErrorCode MapCheckWritable(const char *path, const char *option);

/* MapCheckNotInput - error naming `option` when `output` exists and is the same file (same device and
   inode, whatever the path: links, "./", symlinks) as one of the n inputs: writing it would destroy
   that input. Collective (rank 0 looks, every rank raises). */
PetscErrorCode MapCheckNotInput(MPI_Comm comm, const char *output, const char *option, int n, const char *const *inputs);

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

/* MapSha256File - hex sha256 of a whole file. Not collective. */
PetscErrorCode MapSha256File(const char *path, char hex[65]);
void           MapSha256(const void *data, size_t len, char hex[65]);

/* MapChecksum64 - the store's dataset checksum of n elements of esize bytes (4 or 2) whose first has
   flat index `first`: the sum mod 2^64 of a 64-bit hash of (index, bit pattern) per element. A sum,
   so the partial sums of any split of the data (ranks, blocks) add up to the same value: the same
   checksum at any rank count. A changed element changes it with probability 1 - 2^-64. Text form
   (MapChecksumFormat): "map64:" and 16 hex digits. Not collective. */
uint64_t MapChecksum64(const void *data, size_t esize, int64_t n, int64_t first);
void     MapChecksumFormat(uint64_t sum, char text[24]);
/* MapFirstNonFiniteF32 - the index of the first NaN or Inf among x[0..n), or -1. Scans fixed chunks
   with a branch-free exponent test the compiler vectorises, then the one chunk that has one
   element by element. Not collective. */
int64_t MapFirstNonFiniteF32(const float *x, int64_t n);

/* MapLayout - the contiguous, balanced shard [lo, hi) of a vector of length P that rank `rank`
   of `size` owns; boundaries are multiples of 64 elements (the last rank takes the tail). */
typedef struct {
  int64_t P, lo, hi;
  int     rank, size;
} MapLayout;
PetscErrorCode MapLayoutCreate(MPI_Comm comm, int64_t P, MapLayout *layout);
void           MapLayoutRange(int64_t P, int size, int rank, int64_t *lo, int64_t *hi);

/* Counter-based random numbers (splitmix64-style hashing of (seed, stream, counter)): the value
   depends only on its key, never on the rank count or on the order of the draws. */
uint64_t MapRngU64(uint64_t seed, uint64_t stream, uint64_t counter);
double   MapRngU01(uint64_t seed, uint64_t stream, uint64_t counter); /* in [0,1) */

/* MapWallTime - seconds since an arbitrary origin (MPI_Wtime). */
double MapWallTime(void);

/* MapProgress - rank-0 progress line "label: i/n, elapsed Xs, ETA Ys". */
PetscErrorCode MapProgress(MPI_Comm comm, const char *label, PetscInt done, PetscInt total, double t0);

#endif
