/* MapStore - the parallel HDF5 store written by `mapmerge import` (docs/design.md §2):
 *   /tensors/{name,dtype,shape,ndim,offset,numel}  index of the merged tensors (file order)
 *   /pretrained [P], /task_vectors [T,P] chunked along P, F32, BF16 or F16 (MapDType)
 *   /private/<task>/<tensor>                       task-private tensors (e.g. heads)
 *   /tasks                                         task names; provenance attributes at the root */
#ifndef MAPMERGE_STORE_H
#define MAPMERGE_STORE_H

#include <mapmerge/safetensors.h>

typedef struct {
  char    name[MAP_NAME_LEN];
  char    dtype[16]; /* dtype of the pretrained source tensor */
  int     ndim;
  int64_t shape[MAP_MAX_NDIM];
  int64_t offset, numel; /* position in the flat parameter vector */
} MapStoreTensor;

typedef struct _p_MapStore *MapStore;

/* Storage dtype of /pretrained and /task_vectors: MAP_DTYPE_F32, MAP_DTYPE_BF16 or MAP_DTYPE_F16 (root
   attribute storage_dtype = MapDTypeName; -map_store_dtype takes them in lower case); arithmetic is always
   F32. HDF5 1.10 has no bfloat16 type: BF16 is stored as H5T_STD_U16LE with the dataset attribute
   dtype = "bf16". F16 is an HDF5 IEEE binary16 float type (what h5py writes for numpy float16) marked
   dtype = "f16". */
#define MAP_STORE_NUM_DTYPES 3
/* MapStoreDTypeFromOption - the storage dtype of the i-th value of -map_store_dtype {f32, bf16, f16}
   (MAP_STORE_NUM_DTYPES of them); MAP_DTYPE_OTHER outside. */
MapDType MapStoreDTypeFromOption(PetscInt i);

/* Tuning of an import; 0 means the default. */
typedef struct {
  int64_t   block;           /* parameters per rank converted and written per collective step (default ~4M/(T+1), so
                    a rank holds at most its buffer of (T+1) x block floats besides the headers) */
  int64_t   chunk;           /* columns per HDF5 chunk of /task_vectors (chunks are [T, chunk]; default min(P, 1M)) */
  MapDType  dtype;           /* storage dtype (0 = MAP_DTYPE_F32, the default); BF16 and F16 round to nearest even and
                      record the largest rounding errors as attributes of the datasets */
  PetscBool buffers_private; /* a task's integer/bool tensor that differs from the pretrained one becomes a
                                private tensor of that task (default: an error) */
  int64_t   digest_range;    /* bytes per range of the source files' digests (default MAP_STORE_DIGEST_RANGE; a
                           multiple of 4096, recorded in the store: part of the digest's definition) */
} MapStoreImportOptions;
/* the default range of the source digests: 16 MiB (docs/storage.md, "Source digests") */
#define MAP_STORE_DIGEST_RANGE (16 << 20)

/* MapStoreImport - collective: validates the checkpoints (every merged tensor in every task with
   the same shape; floating dtypes only, converted; no NaN/Inf) and writes the store to `path`
   (temporary name, renamed when complete). Tensors matching one of the glob `patterns` are
   task-private. opts may be NULL (the defaults). */
PetscErrorCode MapStoreImport(MPI_Comm comm, const char *pretrained, int T, const char *const *task_names,
                              const char *const *task_models, int npatterns, const char *const *patterns, const char *path,
                              const MapStoreImportOptions *opts);

/* MapStoreOpen - collective: opens a store read-only and reads its index and storage dtype (a
   dtype mark that is missing, unknown or contradicts the datasets is an error naming the file). */
PetscErrorCode MapStoreOpen(MPI_Comm comm, const char *path, MapStore *store);
PetscErrorCode MapStoreDestroy(MapStore *store);
PetscErrorCode MapStoreGetSizes(MapStore store, int64_t *P, int *T, int *ntensors);
PetscErrorCode MapStoreGetTaskName(MapStore store, int t, const char **name);
/* MapStoreFindTask - index of a task by name; error naming the store and listing tasks if absent */
PetscErrorCode MapStoreFindTask(MapStore store, const char *name, int *t);
PetscErrorCode MapStoreGetTensor(MapStore store, int i, const MapStoreTensor **t);
PetscErrorCode MapStoreFindTensor(MapStore store, const char *name, const MapStoreTensor **t);
PetscErrorCode MapStoreGetPath(MapStore store, const char **path);
PetscErrorCode MapStoreGetComm(MapStore store, MPI_Comm *comm);
/* MapStoreGetLayout - this rank's shard of the parameter vector over the store's communicator */
PetscErrorCode MapStoreGetLayout(MapStore store, MapLayout *layout);

/* MapStoreGetDType - the storage dtype of /pretrained and /task_vectors (not collective). */
PetscErrorCode MapStoreGetDType(MapStore store, MapDType *dtype);

/* MapStoreReadShard - collective hyperslab reads of this rank's shard [lo,hi): pre[hi-lo] and
   tau[k*(hi-lo) + j] for the ntask tasks in `tasks` (store task indices), in memory dtype `dtype`:
   MAP_DTYPE_F32 (float; a BF16 or F16 store is widened, exactly) or the store's own dtype (for a
   BF16 or F16 store the 16-bit patterns as uint16_t: half the memory). Either array may be NULL. */
PetscErrorCode MapStoreReadShard(MapStore store, MapDType dtype, int ntask, const int *tasks, void *pre, void *tau);
/* MapStoreReadRange - collective reads of elements [lo,hi) (each rank its own range, possibly empty)
   of pre and of the tasks' rows, in the store's dtype: pre[hi-lo], tau[k*(hi-lo) + j]. One block of
   a streaming pass (verify it with MapChecksum64 sums and MapStoreVerifySums). */
PetscErrorCode MapStoreReadRange(MapStore store, int ntask, const int *tasks, int64_t lo, int64_t hi, void *pre, void *tau);

/* Task-private tensors of a task: names, and one tensor read whole (every rank; small). */
PetscErrorCode MapStoreGetPrivateNames(MapStore store, int t, int *n, char ***names); /* MapFreeList */
PetscErrorCode MapStoreReadPrivate(MapStore store, int t, const char *name, int *ndim, int64_t shape[MAP_MAX_NDIM],
                                   float **data /* PetscFree */);
/* MapStoreSelectPerTask - a per-task option list (e.g. -map_eval_data) given for every task of the
   store while T tasks are selected: replaced by the entries of the selected tasks, in their order,
   so one YAML serves any -map_tasks subset. Lists of any other length are left as they are (the
   caller's count check reports them). Not collective. */
PetscErrorCode MapStoreSelectPerTask(MapStore store, int T, const char *const *tasks, const char *option, int *n, char ***list);
/* MapStoreGetAttribute - a root string attribute (provenance), or NULL */
PetscErrorCode MapStoreGetAttribute(MapStore store, const char *key, char **value /* PetscFree */);

/* MapStoreVerifyShard - compares the checksums of this rank's shards as read (in the store's dtype:
   pre[n], tau[k*n + j] of the store tasks `tasks`) with those recorded at import; a mismatch is an
   error naming the store and the dataset (and task). *checked: PETSC_FALSE when the store records
   no checksums (written before they existed). Collective. */
PetscErrorCode MapStoreVerifyShard(MapStore store, int ntask, const int *tasks, const void *pre, const void *tau, PetscBool *checked);
/* MapStoreVerifySums - the same from checksums this rank accumulated itself (MapChecksum64 by global
   element index over the blocks it read): local[0] of /pretrained (if haspre), local[1+k] of task
   tasks[k] (if hastau). Collective. */
PetscErrorCode MapStoreVerifySums(MapStore store, int ntask, const int *tasks, PetscBool haspre, PetscBool hastau, const uint64_t *local);
/* MapStoreCheck - reads every dataset of the store and verifies its checksum and that every value is
   finite (`mapmerge info -map_check`); prints what it checked and how long it took. Memory: the
   store's vectors / ranks. Collective. */
PetscErrorCode MapStoreCheck(MapStore store);

/* MapStoreView - tasks, tensors, P, dtypes, provenance (`mapmerge info`). */
PetscErrorCode MapStoreView(MapStore store, PetscViewer viewer);

#endif
