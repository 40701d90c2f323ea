/* Merging: theta(c) = theta_pre + sum_i c_i tau_i on each rank's shard (docs/design.md §3). */
#ifndef MAPMERGE_MERGE_H
#define MAPMERGE_MERGE_H

#include <mapmerge/store.h>
#include <mapmerge/safetensors.h>

/* MapMergeApply - theta[j] = pre[j] + sum_i c[i] * tau[i*ld + j] for j < n, accumulated in F32 in
   task order (so the bits equal MapMergeApply_Ref's and do not depend on the sharding). pre and tau
   hold dtype values: MAP_DTYPE_F32 (float), MAP_DTYPE_BF16 or MAP_DTYPE_F16 (uint16_t bit patterns,
   widened exactly); theta is F32. Blocked and vectorised; memory-bound. Not collective. */
PetscErrorCode MapMergeApply(MapDType dtype, int64_t n, const void *pre, int T, const void *tau, int64_t ld, const double *c, float *theta);
/* MapMergeApply_Ref - the plain loop, for tests and benchmarks (src/merge/merge_ref.c). */
PetscErrorCode MapMergeApply_Ref(MapDType dtype, int64_t n, const void *pre, int T, const void *tau, int64_t ld, const double *c,
                                 float *theta);

/* MapModel - the sharded model basis a merge works on: this rank's shard of theta_pre and of T
   task vectors, the tensor index, and each task's private tensors (read on demand from the store). */
typedef struct _p_MapModel *MapModel;

/* MapModelCreateFromStore - collective: reads the shards of the given store tasks. */
PetscErrorCode MapModelCreateFromStore(MapStore store, int ntask, const int *tasks, MapModel *model);
/* MapModelCreateStreamed - collective, reads nothing: a model that holds no shards; each
   MapModelWriteMerged reads the store block by block (memory per rank O(block) instead of
   (T+1)·P·e/n). The in-memory merges (MapModelMerge, MapModelMergeRange, MapModelGetShards,
   MapModelCreateCombined) refuse it: it serves evaluators that hand a model file to a program. */
PetscErrorCode MapModelCreateStreamed(MapStore store, int ntask, const int *tasks, MapModel *model);
/* MapModelWriteMerged - collective: the merge at c[ncoef] written through w (tensor i of w = store
   tensor i) in blocks of about block_mb MiB per rank (0: one block), checked finite on all ranks
   before it returns (on an error the caller aborts w). Same bits as MapModelMerge. */
PetscErrorCode MapModelWriteMerged(MapModel model, const double *c, double block_mb, MapSafetensorsWriter w);
/* MapMergeWriteStreamed - collective: the same straight from a store's tasks tasks[ntask] at c[ntask]
   (`mapmerge export`); the store's checksums are verified over the blocks read. */
PetscErrorCode MapMergeWriteStreamed(MapStore store, int ntask, const int *tasks, const double *c, double block_mb, MapSafetensorsWriter w);
/* MapModelCreateCombined - collective: a new basis whose task vector k is
   sum_i W[k*T+i] tau_i of `base` (Nested MAP's merged pairs); private tensors stay with `base`. */
PetscErrorCode MapModelCreateCombined(MapModel base, int nk, const double *W, MapModel *model);
/* MapModelSetCoefficientMap - row k is weighted by c[coef[k]] of a coefficient vector of ncoef
   entries (coef ascending): a basis read from part of the tasks still takes the whole coefficient
   vector, and merging it at c equals merging the whole basis at c when c_i = 0 outside the part
   (the same terms in the same order: the same bits, up to the sign of a zero). Nested MAP's rank
   groups read only the task vectors their pairs merge. Not collective. */
PetscErrorCode MapModelSetCoefficientMap(MapModel model, int ncoef, const int *coef);
/* MapModelGetNumCoefficients - the length of the coefficient vector MapModelMerge takes. */
PetscErrorCode MapModelGetNumCoefficients(MapModel model, int *ncoef);
PetscErrorCode MapModelDestroy(MapModel *model);
PetscErrorCode MapModelGetLayout(MapModel model, MapLayout *layout);
PetscErrorCode MapModelGetNumTasks(MapModel model, int *T);
PetscErrorCode MapModelGetStore(MapModel model, MapStore *store);
/* MapModelMerge - theta_shard[hi-lo] = merged parameters of this rank's shard for coefficients
   c[ncoef] (MapModelGetNumCoefficients; = the number of task vectors unless mapped). */
PetscErrorCode MapModelMerge(MapModel model, const double *c, float *theta_shard);
/* MapModelMergeRange - out[j1-j0] = merged parameters of the shard's elements [j0, j1) (offsets from
   lo): the same bits as MapModelMerge gives them. Not collective. */
PetscErrorCode MapModelMergeRange(MapModel model, const double *c, int64_t j0, int64_t j1, float *out);
/* MapModelCheckFiniteSegments - MapModelCheckFinite over merged pieces: piece s holds the flat
   parameters [off[s], off[s]+len[s]) at ptr[s]. Collective on comm. */
PetscErrorCode MapModelCheckFiniteSegments(MapModel model, MPI_Comm comm, const double *c, int64_t nseg, const int64_t *off, const int64_t *len,
                                           const float *const *ptr);
/* MapModelCheckFinite - every value of the merged shards theta_shard (MapModelMerge at c) over comm
   (the ranks that share the model) is finite; else an error on every rank naming the tensor, the
   element and c (a coefficient too large, or non-finite values in the store). One pass over the
   shard. Collective on comm. */
PetscErrorCode MapModelCheckFinite(MapModel model, MPI_Comm comm, const double *c, const float *theta_shard);
/* MapModelReportNonFinite - collective: the error of MapModelCheckFinite for a merge done piece by
   piece; j = this rank's first non-finite element (shard offset; -1 for none), isnan_value its kind. */
PetscErrorCode MapModelReportNonFinite(MapModel model, MPI_Comm comm, const double *c, int64_t j, PetscBool isnan_value);
/* MapMergeFirstNonFinite - 2*(first+j) + (1 if NaN) of the first non-finite theta[j] (global index
   first+j), INT64_MAX if all are finite; MapMergeCheckFiniteAgreed - the MPI_MIN of the ranks' keys,
   an error on every rank of comm naming the tensor of `store`, the element and c[ncoef] if any. For
   passes that merge block by block (export). */
int64_t        MapMergeFirstNonFinite(const float *theta, int64_t n, int64_t first);
PetscErrorCode MapMergeCheckFiniteAgreed(MapStore store, MPI_Comm comm, int ncoef, const double *c, int64_t key);
/* MapModelGetStoreTask - the store task index of basis vector k, or -1 for a combined vector. */
PetscErrorCode MapModelGetStoreTask(MapModel model, int k, int *t);
/* MapModelGetShards - read-only: pre[n] and tau[k*n + j] of this rank's F32 shard (n = hi - lo);
   an error for BF16 or F16 shards. */
PetscErrorCode MapModelGetShards(MapModel model, int64_t *n, const float **pre, const float **tau);
/* MapModelGetDType - the dtype of the shards: the store's, or F32 for a combined basis. */
PetscErrorCode MapModelGetDType(MapModel model, MapDType *dtype);

#endif
