/* Private to the mlp evaluator (eval_mlp*.c): its object, the layers split by output rows, the
   per-task eval sets, the merge and exchange plans. See eval_mlp.c for the design. */
#ifndef MAPMERGE_EVALMLPIMPL_H
#define MAPMERGE_EVALMLPIMPL_H

#include "evalimpl.h"

/* blas: cblas_sgemm (bits depend on the CPU's kernels); ref: plain loops; fixed: MapFixedGemm and
   MapFixedExp/Log, the same bits as ref's products on every machine */
typedef enum { MLP_KERNEL_BLAS,
               MLP_KERNEL_REF,
               MLP_KERNEL_FIXED } MLPKernel;

typedef struct {
  int64_t in, out;    /* features */
  int64_t woff, boff; /* flat offsets of weight and bias */
  int64_t r0, r1;     /* my output rows (in my group) */
  float  *W, *b;      /* [r1-r0, in], [r1-r0] */
  int    *rcount;     /* rows of each group rank */
  int    *rdispl;
  char    wname[MAP_NAME_LEN], bname[MAP_NAME_LEN];
} MLPLayer;

typedef struct {
  int64_t  n, d;    /* samples, input width */
  int      C;       /* classes */
  int64_t  nbatch;  /* batches over the whole set */
  int64_t  b0, b1;  /* my group's batches */
  int64_t  s0, s1;  /* my group's samples */
  float   *X;       /* [(s1-s0), d] sample-major, as in the file */
  int64_t *labels;  /* [(s1-s0)] */
  float   *hw, *hb; /* head [C,H], [C] */
} MLPTask;

typedef struct {
  int       nlayer;
  MLPLayer *layers;
  int       G, color, grank, gsize;
  MPI_Comm  gcomm;
  int64_t   P, lo, hi;
  /* merge plan: flat parameters [moff[s], moff[s] + mlen[s]) of my shard are merged to mdst[s] */
  int64_t  nmseg;
  int64_t *moff, *mlen;
  float  **mdst;
  float   *sendbuf; /* merged pieces that only other ranks use */
  /* exchange plan: per peer, one hindexed datatype over absolute addresses (MPI_BOTTOM) */
  int          *scount, *rcount, *zdispl;
  MPI_Datatype *stype, *rtype;
  MLPTask      *tasks;
  int64_t       maxw;            /* widest layer (or input, or head) */
  float        *a0, *a1, *yl;    /* [maxw*batch] */
  int          *gcount, *gdispl; /* per-call Allgatherv counts */
  MLPKernel     kernel;
  float        *xt; /* fixed kernel: one batch of the eval set transposed, [d, batch] */
  int64_t       rb; /* row block: BLAS calls always cover the same global blocks of rows */
} MapEval_MLP;

/* items [r0,r1) of n that rank r of s owns: balanced, first ranks get the remainder */
static inline void MapMLPRowRange(int64_t n, int s, int r, int64_t *r0, int64_t *r1)
{
  int64_t q = n / s, m = n % s;
  *r0 = r * q + (r < m ? r : m);
  *r1 = *r0 + q + (r < m ? 1 : 0);
}

/* rows [r0,r1) of a layer with n rows for rank r of s: whole blocks of rb rows (global block
   boundaries), balanced by blocks */
static inline void MapMLPRowBlockRange(int64_t n, int64_t rb, int s, int r, int64_t *r0, int64_t *r1)
{
  int64_t b0, b1;
  MapMLPRowRange((n + rb - 1) / rb, s, r, &b0, &b1);
  *r0 = PetscMin(b0 * rb, n);
  *r1 = PetscMin(b1 * rb, n);
}

/* ---- set-up (eval_mlp_setup.c) ---- */

/* MapMLPFindLayers - the store's encoder.<k>.weight/bias layers in numeric order of k, shapes checked;
   sets m->layers, m->nlayer, m->P. Collective. */
PetscErrorCode MapMLPFindLayers(MapEvaluator ev, MapStore store, MapEval_MLP *m);
/* MapMLPBuildPlan - the merge plan (my shard's pieces -> my row blocks or the send buffer) and one
   hindexed datatype per peer for the MPI_Alltoallw that moves the rest. Collective. */
PetscErrorCode MapMLPBuildPlan(MapEvaluator ev, MapEval_MLP *m);
/* MapMLPLoadTask - task t's private head and its eval set (my group's samples), checked. Collective. */
PetscErrorCode MapMLPLoadTask(MapEvaluator ev, MapEval_MLP *m, MapStore store, int t);

#endif
