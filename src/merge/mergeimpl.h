/* Private to the merge module: the MapModel object and the kernel entry used by it. */
#ifndef MAPMERGE_MERGEIMPL_H
#define MAPMERGE_MERGEIMPL_H

#include <mapmerge/merge.h>

struct _p_MapModel {
  MapStore  store;    /* referenced, not owned: the caller keeps it alive (private tensors live there) */
  MapLayout layout;   /* this rank's shard [lo, hi) of the parameter vector */
  int       T;        /* number of task vectors in this basis */
  int      *tasks;    /* store task index of each basis vector, or -1 for a combined vector */
  int64_t   n;        /* hi - lo */
  MapDType  dtype;    /* of pre and tau: a BF16 or F16 store's shards stay 16-bit (half the memory) */
  void     *pre;      /* [n] theta_pre shard (float, or uint16 holding bfloat16 or IEEE half) */
  void     *tau;      /* [T*n] task vector shards, row k at element k*n */
  int       ncoef;    /* length of the coefficient vector a merge takes (T unless mapped) */
  int      *coef;     /* row k is weighted by c[coef[k]]; NULL: by c[k] (a basis of part of a larger one) */
  PetscBool streamed; /* no shards in memory (pre = tau = NULL): every merge reads the store (merge_stream.c) */
};

/* MapModelRowCoefficients_Private - c[ncoef] checked finite (errors naming fn); *rowc = the coefficient of
   each basis row (c, or for a mapped basis its rows' entries in csub[MAP_MAX_TASKS]) (merge_model.c) */
PetscErrorCode MapModelRowCoefficients_Private(MapModel model, const char *fn, const double *c, double *csub, const double **rowc);

/* MapMergeKernel_Private - the fast kernel without logging; pre == NULL means a zero base (used to
   form combined task vectors). Same arithmetic as MapMergeApply_Ref. */
void MapMergeKernel_Private(int64_t n, const float *pre, int T, const float *tau, int64_t ld, const float *cf, float *theta);

/* MapMergeKernelStored_Private - the same for pre and tau in storage dtype dt (16-bit values are
   widened exactly); pre == NULL means a zero base, T = 0 widens pre into theta. Same arithmetic as
   the _Ref loops. */
void MapMergeKernelStored_Private(MapDType dt, int64_t n, const void *pre, int T, const void *tau, int64_t ld, const float *cf,
                                  float *theta);

/* MapMergeApplyStored_Private - MapMergeApply with errors naming fn. */
PetscErrorCode MapMergeApplyStored_Private(const char *fn, MapDType dt, int64_t n, const void *pre, int T, const void *tau, int64_t ld,
                                           const double *c, float *theta);

/* Shared by MapMergeApply and MapMergeApply_Ref (merge_ref.c): the argument checks (errors naming fn),
   and the coefficients rounded to F32 once, as the contract says (on `stack` up to MAP_MERGE_STACK_T of
   them, else allocated; MapMergeCoeffsFree_Private releases them). */
#define MAP_MERGE_STACK_T 64 /* tasks whose F32 coefficients live on the stack */
PetscErrorCode MapMergeCheckArgs_Private(const char *fn, MapDType dt, int64_t n, const void *pre, int T, const void *tau, int64_t ld,
                                         const double *c, const float *theta);
PetscErrorCode MapMergeCoeffsF32_Private(int T, const double *c, float *stack, float **cf);
PetscErrorCode MapMergeCoeffsFree_Private(float *stack, float **cf);

/* MapMergeForceGeneric_Private - tests: use the portable kernels even where AVX2 is available. */
void MapMergeForceGeneric_Private(PetscBool flg);

#endif
