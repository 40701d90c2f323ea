/* Private to the merge module: the MapModel object and the kernel entry used by it. */
#ifndef MAPMERGE_MERGEIMPL_H
#define MAPMERGE_MERGEIMPL_H

#include <mapmerge/merge.h>

struct _p_MapModel {
  MapStore  store;  /* referenced, not owned: the caller keeps it alive (private tensors live there) */
  MapLayout layout; /* this rank's shard [lo, hi) of the parameter vector */
  int       T;      /* number of task vectors in this basis */
  int      *tasks;  /* store task index of each basis vector, or -1 for a combined vector */
  int64_t   n;      /* hi - lo */
  float    *pre;    /* [n] theta_pre shard */
  float    *tau;    /* [T*n] task vector shards, row k at tau + k*n */
};

/* MapMergeKernel_Private - the fast kernel without logging; pre == NULL means a zero base (used to
   form combined task vectors). Same arithmetic as MapMergeApply_Ref. */
void MapMergeKernel_Private(int64_t n, const float *pre, int T, const float *tau, int64_t ld, const float *cf, float *theta);

/* MapMergeForceGeneric_Private - tests: use the portable kernels even where AVX2 is available. */
void MapMergeForceGeneric_Private(PetscBool flg);

#endif
