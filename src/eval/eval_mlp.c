/* eval_mlp: the built-in MLP evaluator (docs/design.md §4): set-up, forward pass, object. The plans
   and data loading are in eval_mlp_setup.c, the plain reference in eval_mlp_ref.c.

   Model:  encoder.<k>.weight [out,in] / encoder.<k>.bias [out] (k sorted numerically), ReLU after
           each; per-task private head.weight [C,H] / head.bias [C]; softmax cross-entropy.
   Ranks:  G sample groups (MPI_Comm_split); inside a group every layer is split by OUTPUT ROWS.
           Each rank merges its shard [lo,hi) of the flat vector piece by piece straight into the
           row blocks that use it (its own, or a send buffer for pieces only other ranks use), and
           one MPI_Alltoallw with hindexed datatypes moves the rest into the peers' row blocks (no
           merged-shard copy, no pack/unpack buffers; nothing moves at -n 1). Activations are kept feature-major [features, batch], so
           a row block of a layer's output is one contiguous piece and MPI_Allgatherv assembles
           the next layer's input directly.
   Bits:   samples go in batches of a fixed size (-map_eval_batch), so every matrix product has
           the same shape whatever the rank count; each output element is computed by the same
           K loop however the rows are split (the BLAS runs on one thread, MapPinBLASThreads:
           threads would split the rows by the cores a rank may use; -map_eval_kernel ref and
           fixed guarantee it by construction, and fixed on any machine). Per-batch loss sums and
           correct counts are combined in batch order, never by a reduction whose order depends on
           the rank count. Tested on random shapes at -n 1..5: tests/repro/test_property.py. */
#include "evalmlpimpl.h"
#include "fixedimpl.h"
#include <math.h>
#include <cblas.h>

/* 4 lanes: native SSE2 on every x86-64 (8 lanes without -mavx compile to slow scalar spills) */
typedef float   MapV4F __attribute__((vector_size(16)));
typedef int32_t MapV4I __attribute__((vector_size(16)));

static double SoftmaxCE(PetscBool fixedmath, int C, const float *z, int64_t stride, int64_t y, int *pred)
{
  double mx = (double)z[0];
  int    am = 0;
  for (int c = 1; c < C; c++) {
    double v = (double)z[c * stride];
    if (v > mx) { /* strict: the first maximum wins, as torch.argmax */
      mx = v;
      am = c;
    }
  }
  double s = 0;
  for (int c = 0; c < C; c++) s += fixedmath ? MapFixedExp((double)z[c * stride] - mx) : exp((double)z[c * stride] - mx);
  *pred = am;
  return mx + (fixedmath ? MapFixedLog(s) : log(s)) - (double)z[y * stride];
}

double MapEvalSoftmaxCE(int C, const float *z, int64_t stride, int64_t y, int *pred) { return SoftmaxCE(PETSC_FALSE, C, z, stride, y, pred); }

static PetscErrorCode MapEvaluatorSetUp_MLP(MapEvaluator ev)
{
  MapEval_MLP *m = (MapEval_MLP *)ev->data_impl;
  MapStore     store;
  MapLayout    layout;
  int          R, rank;

  PetscFunctionBegin;
  PetscCheck(ev->model, ev->comm, PETSC_ERR_ARG_NULL, "the mlp evaluator needs a model (-map_store)");
  PetscCall(MapModelGetStore(ev->model, &store));
  PetscCall(MapModelGetLayout(ev->model, &layout));
  PetscCallMPI(MPI_Comm_size(ev->comm, &R));
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  PetscCheck(layout.size == R, ev->comm, PETSC_ERR_ARG_INCOMP, "mlp evaluator: the model is sharded over %d ranks, the evaluator has %d",
             layout.size, R);
  m->lo = layout.lo;
  m->hi = layout.hi;
  PetscCall(MapMLPFindLayers(ev, store, m));
  PetscCheck(layout.P == m->P, ev->comm, PETSC_ERR_ARG_INCOMP, "mlp evaluator: model has %" PetscInt64_FMT " parameters, store %" PetscInt64_FMT,
             layout.P, m->P);
  m->kernel = !strcmp(ev->kernel, "blas") ? MLP_KERNEL_BLAS : !strcmp(ev->kernel, "fixed") ? MLP_KERNEL_FIXED
                                                                                           : MLP_KERNEL_REF;
  m->rb     = ev->rowblock;

  /* groups: automatic = one group per rank (pure data parallel) unless the encoder is large */
  int64_t nparam = 0;
  for (int l = 0; l < m->nlayer; l++) nparam += m->layers[l].out * (m->layers[l].in + 1);
  m->G = (int)ev->groups;
  if (m->G == 0) m->G = nparam * 4 <= ((int64_t)256 << 20) ? R : 1;
  PetscCheck(m->G >= 1 && m->G <= R, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_eval_groups %d: must be between 1 and the %d ranks", m->G, R);
  m->color = (int)((int64_t)rank * m->G / R);
  PetscCallMPI(MPI_Comm_split(ev->comm, m->color, rank, &m->gcomm));
  PetscCallMPI(MPI_Comm_rank(m->gcomm, &m->grank));
  PetscCallMPI(MPI_Comm_size(m->gcomm, &m->gsize));
  m->maxw = 1;
  for (int l = 0; l < m->nlayer; l++) {
    MLPLayer *L = &m->layers[l];
    MapMLPRowBlockRange(L->out, m->rb, m->gsize, m->grank, &L->r0, &L->r1);
    PetscCall(PetscMalloc2((L->r1 - L->r0) * L->in + 1, &L->W, (L->r1 - L->r0) + 1, &L->b));
    PetscCall(PetscMalloc2(m->gsize, &L->rcount, m->gsize, &L->rdispl));
    for (int s = 0; s < m->gsize; s++) {
      int64_t a, e;
      MapMLPRowBlockRange(L->out, m->rb, m->gsize, s, &a, &e);
      PetscCheck(L->out * ev->batch < INT_MAX, PETSC_COMM_SELF, PETSC_ERR_SUP, "mlp evaluator: layer %s x batch too large", L->wname);
      L->rcount[s] = (int)(e - a);
      L->rdispl[s] = (int)a;
    }
    m->maxw = PetscMax(m->maxw, PetscMax(L->in, L->out));
  }
  PetscCall(MapMLPBuildPlan(ev, m));
  PetscCall(PetscCalloc1(ev->T, &m->tasks));
  for (int t = 0; t < ev->T; t++) PetscCall(MapMLPLoadTask(ev, m, store, t));
  PetscCall(PetscMalloc3(m->maxw * ev->batch, &m->a0, m->maxw * ev->batch, &m->a1, m->maxw * ev->batch, &m->yl));
  PetscCall(PetscMalloc1(m->kernel == MLP_KERNEL_FIXED ? m->layers[0].in * ev->batch : 1, &m->xt));
  PetscCall(PetscMalloc2(m->gsize, &m->gcount, m->gsize, &m->gdispl));
  PetscCall(PetscInfo(NULL, "mlp evaluator: %d layers, %" PetscInt64_FMT " encoder parameters, %d group(s) of %d rank(s), batch %" PetscInt_FMT ", kernel %s\n",
                      m->nlayer, nparam, m->G, m->gsize, ev->batch, ev->kernel));
  PetscFunctionReturn(0);
}

/* Y[m,nb] = W[m,K] * A[K,nb] (+ bias, ReLU); with xmajor, A is given sample-major as X[nb,K]
   (the eval set's own layout, so the first layer needs no transpose). The rows start at a
   multiple of rb (globally).
   blas: OpenBLAS's sgemm gives an element other bits depending on where its row falls in the
   call's M range (edge kernels), so it is called once per global block of rb rows: the calls,
   and so the bits, are the same however a group splits the layer. ref: accumulates each Y
   element over k in order, vectorised across the batch; its bits never depend on the split.
   fixed: the same order (so the same bits as ref), register-tiled; xt: scratch [K, nb]. */
static void MatMulRows(MLPKernel kernel, int64_t rb, int64_t mrows, int64_t nb, int64_t K, const float *W, const float *A, PetscBool xmajor,
                       const float *bias, PetscBool relu, float *Y, float *xt)
{
  if (mrows == 0) return;
  if (kernel == MLP_KERNEL_FIXED) {
    if (xmajor) { /* the kernel's lanes run over the batch: X[nb,K] -> [K,nb] */
      for (int64_t j = 0; j < nb; j++)
        for (int64_t k = 0; k < K; k++) xt[k * nb + j] = A[j * K + k];
      A = xt;
    }
    MapFixedGemm(mrows, nb, K, W, K, 1, A, nb, Y, nb);
  } else if (kernel == MLP_KERNEL_BLAS) {
    for (int64_t i = 0; i < mrows; i += rb) {
      int64_t mb = PetscMin(rb, mrows - i);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, xmajor ? CblasTrans : CblasNoTrans, (int)mb, (int)nb, (int)K, 1.0f, W + i * K, (int)K, A,
                  xmajor ? (int)K : (int)nb, 0.0f, Y + i * nb, (int)nb);
    }
  } else {
    for (int64_t i = 0; i < mrows; i++) {
      float *restrict y = Y + i * nb;
      for (int64_t j = 0; j < nb; j++) y[j] = 0;
      for (int64_t k = 0; k < K; k++) {
        const float w = W[i * K + k];
        if (xmajor)
          for (int64_t j = 0; j < nb; j++) y[j] += w * A[j * K + k];
        else {
          const float *restrict a = A + k * nb;
          for (int64_t j = 0; j < nb; j++) y[j] += w * a[j];
        }
      }
    }
  }
  for (int64_t i = 0; i < mrows; i++) {
    float *restrict y = Y + i * nb;
    const float b     = bias[i];
    int64_t     j     = 0;
    if (relu) {
      /* 4 lanes at a time (GCC vector extension; -O2 does not vectorise this loop by itself) */
      const MapV4F vb = {b, b, b, b};
      for (; j + 4 <= nb; j += 4) {
        MapV4F v;
        memcpy(&v, y + j, sizeof(v));
        v += vb;
        MapV4I neg = v < (MapV4F){0};
        v          = (MapV4F)((MapV4I)v & ~neg); /* keeps NaN (NaN < 0 is false), as torch.relu */
        memcpy(y + j, &v, sizeof(v));
      }
      for (; j < nb; j++) {
        float v = y[j] + b;
        y[j]    = v < 0 ? 0.0f : v;
      }
    } else
      for (; j < nb; j++) y[j] += b;
  }
}

/* one batch of nb samples X[nb,d] (sample-major) -> logits [C,nb] in *out (one of m's buffers) */
static PetscErrorCode ForwardBatch(MapEval_MLP *m, MLPTask *tk, int64_t nb, const float *X, float **out)
{
  float    *cur = m->a0, *nxt = m->a1;
  PetscBool xmajor = PETSC_TRUE;

  PetscFunctionBegin;
  const float *A = X;
  for (int l = 0; l < m->nlayer; l++) {
    MLPLayer *L  = &m->layers[l];
    int64_t   mr = L->r1 - L->r0;
    if (m->gsize == 1) MatMulRows(m->kernel, m->rb, mr, nb, L->in, L->W, A, xmajor, L->b, PETSC_TRUE, cur, m->xt);
    else {
      /* my rows into yl, then the group assembles the whole [out,nb] in cur */
      MatMulRows(m->kernel, m->rb, mr, nb, L->in, L->W, A, xmajor, L->b, PETSC_TRUE, m->yl, m->xt);
      for (int s = 0; s < m->gsize; s++) {
        m->gcount[s] = L->rcount[s] * (int)nb;
        m->gdispl[s] = L->rdispl[s] * (int)nb;
      }
      PetscCallMPI(MPI_Allgatherv(m->yl, (int)(mr * nb), MPI_FLOAT, cur, m->gcount, m->gdispl, MPI_FLOAT, m->gcomm));
    }
    A          = cur;
    xmajor     = PETSC_FALSE;
    float *tmp = cur;
    cur        = nxt;
    nxt        = tmp;
  }
  /* head: small, computed whole on every rank of the group (same bits on each) */
  MatMulRows(m->kernel, m->rb, tk->C, nb, m->layers[m->nlayer - 1].out, tk->hw, A, PETSC_FALSE, tk->hb, PETSC_FALSE, cur, m->xt);
  *out = cur;
  PetscFunctionReturn(0);
}

/* theta(c) straight into the row blocks: my shard's pieces merged where they are used, then one
   MPI_Alltoallw from those buffers into the peers' row blocks */
static PetscErrorCode MergeIntoRowBlocks(MapEvaluator ev, MapEval_MLP *m, const double *c)
{
  int R;

  PetscFunctionBegin;
  for (int64_t s = 0; s < m->nmseg; s++) PetscCall(MapModelMergeRange(ev->model, c, m->moff[s] - m->lo, m->moff[s] - m->lo + m->mlen[s], m->mdst[s]));
  PetscCall(MapModelCheckFiniteSegments(ev->model, ev->comm, c, m->nmseg, m->moff, m->mlen, (const float *const *)m->mdst));
  PetscCallMPI(MPI_Comm_size(ev->comm, &R));
  if (R == 1) PetscFunctionReturn(0);
  PetscCall(PetscLogEventBegin(MAP_EVENT_EvalComm, 0, 0, 0, 0));
  PetscCallMPI(MPI_Alltoallw(MPI_BOTTOM, m->scount, m->zdispl, m->stype, MPI_BOTTOM, m->rcount, m->zdispl, m->rtype, ev->comm));
  PetscCall(PetscLogEventEnd(MAP_EVENT_EvalComm, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorEvaluate_MLP(MapEvaluator ev, const double *c, MapTaskMetrics *metrics)
{
  MapEval_MLP *m  = (MapEval_MLP *)ev->data_impl;
  int64_t      nb = 0;
  double      *bl;
  int64_t     *bc;

  PetscFunctionBegin;
  PetscCall(MergeIntoRowBlocks(ev, m, c));
  PetscCall(PetscLogEventBegin(MAP_EVENT_EvalLoss, 0, 0, 0, 0));
  for (int t = 0; t < ev->T; t++) nb += m->tasks[t].nbatch;
  PetscCall(PetscCalloc2(nb, &bl, nb, &bc));
  int64_t base = 0;
  for (int t = 0; t < ev->T; t++) {
    MLPTask *tk = &m->tasks[t];
    if (!MapEvalWanted(ev, t)) { /* its batches stay 0; the caller sets its metrics to NaN */
      base += tk->nbatch;
      continue;
    }
    for (int64_t b = tk->b0; b < tk->b1; b++) {
      int64_t s0 = b * ev->batch, s1 = PetscMin(s0 + ev->batch, tk->n), n = s1 - s0;
      float  *z = NULL;
      PetscCall(ForwardBatch(m, tk, n, tk->X + (s0 - tk->s0) * tk->d, &z));
      if (m->grank) continue; /* one contribution per batch */
      double  loss = 0;
      int64_t corr = 0;
      for (int64_t j = 0; j < n; j++) {
        int     pred;
        int64_t y = tk->labels[s0 - tk->s0 + j];
        loss += SoftmaxCE(m->kernel == MLP_KERNEL_FIXED, tk->C, z + j, n, y, &pred);
        corr += (pred == y);
      }
      bl[base + b] = loss;
      bc[base + b] = corr;
    }
    base += tk->nbatch;
  }
  /* every batch has exactly one non-zero contributor, so these sums are exact (x + 0 = x);
     the order-dependent sum over batches is done below, sequentially, in batch order */
  PetscCheck(nb < INT_MAX, PETSC_COMM_SELF, PETSC_ERR_SUP, "too many batches");
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, bl, (int)nb, MPI_DOUBLE, MPI_SUM, ev->comm));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, bc, (int)nb, MPI_INT64_T, MPI_SUM, ev->comm));
  base = 0;
  for (int t = 0; t < ev->T; t++) {
    MLPTask *tk   = &m->tasks[t];
    double   loss = 0;
    int64_t  corr = 0;
    for (int64_t b = 0; b < tk->nbatch; b++) {
      loss += bl[base + b];
      corr += bc[base + b];
    }
    base += tk->nbatch;
    metrics[t].loss     = loss / (double)tk->n;
    metrics[t].correct  = corr;
    metrics[t].count    = tk->n;
    metrics[t].accuracy = (double)corr / (double)tk->n;
  }
  PetscCall(PetscFree2(bl, bc));
  PetscCall(PetscLogEventEnd(MAP_EVENT_EvalLoss, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorDestroy_MLP(MapEvaluator ev)
{
  MapEval_MLP *m = (MapEval_MLP *)ev->data_impl;

  PetscFunctionBegin;
  if (!m) PetscFunctionReturn(0);
  for (int l = 0; l < m->nlayer; l++) {
    PetscCall(PetscFree2(m->layers[l].W, m->layers[l].b));
    PetscCall(PetscFree2(m->layers[l].rcount, m->layers[l].rdispl));
  }
  PetscCall(PetscFree(m->layers));
  if (m->tasks)
    for (int t = 0; t < ev->T; t++) {
      PetscCall(PetscFree2(m->tasks[t].X, m->tasks[t].labels));
      PetscCall(PetscFree(m->tasks[t].hw));
      PetscCall(PetscFree(m->tasks[t].hb));
    }
  PetscCall(PetscFree(m->tasks));
  if (m->stype) {
    int R;
    PetscCallMPI(MPI_Comm_size(ev->comm, &R));
    for (int d = 0; d < R; d++) {
      if (m->stype[d] != MPI_FLOAT) PetscCallMPI(MPI_Type_free(&m->stype[d]));
      if (m->rtype[d] != MPI_FLOAT) PetscCallMPI(MPI_Type_free(&m->rtype[d]));
    }
  }
  PetscCall(PetscFree5(m->scount, m->rcount, m->zdispl, m->stype, m->rtype));
  PetscCall(PetscFree3(m->moff, m->mlen, m->mdst));
  PetscCall(PetscFree(m->sendbuf));
  PetscCall(PetscFree3(m->a0, m->a1, m->yl));
  PetscCall(PetscFree(m->xt));
  PetscCall(PetscFree2(m->gcount, m->gdispl));
  if (m->gcomm != MPI_COMM_NULL && m->gcomm) PetscCallMPI(MPI_Comm_free(&m->gcomm));
  PetscCall(PetscFree(ev->data_impl));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorView_MLP(MapEvaluator ev, PetscViewer viewer)
{
  MapEval_MLP *m = (MapEval_MLP *)ev->data_impl;

  PetscFunctionBegin;
  PetscCall(PetscViewerASCIIPrintf(viewer, "kernel %s (-map_eval_kernel), batch %" PetscInt_FMT " (-map_eval_batch), row block %" PetscInt_FMT " (-map_eval_row_block)\n", ev->kernel, ev->batch, ev->rowblock));
  if (!ev->setupcalled) PetscFunctionReturn(0);
  PetscCall(PetscViewerASCIIPrintf(viewer, "sample groups: %d of %d rank(s) each; every group holds the whole model split by rows\n", m->G, m->gsize));
  PetscCall(PetscViewerASCIIPrintf(viewer, "shared layers: %d, widths %lld", m->nlayer, m->nlayer ? (long long)m->layers[0].in : 0LL));
  PetscCall(PetscViewerASCIIUseTabs(viewer, PETSC_FALSE));
  for (int l = 0; l < m->nlayer; l++) PetscCall(PetscViewerASCIIPrintf(viewer, " -> %lld", (long long)m->layers[l].out));
  PetscCall(PetscViewerASCIIPrintf(viewer, ", then each task's head\n"));
  PetscCall(PetscViewerASCIIUseTabs(viewer, PETSC_TRUE));
  for (int t = 0; t < ev->T; t++)
    PetscCall(PetscViewerASCIIPrintf(viewer, "task %s: %lld samples of %lld features, %d classes, %lld batches\n", ev->tasks[t], (long long)m->tasks[t].n,
                                     (long long)m->tasks[t].d, m->tasks[t].C, (long long)m->tasks[t].nbatch));
  PetscFunctionReturn(0);
}

PetscErrorCode MapEvaluatorCreate_MLP(MapEvaluator ev)
{
  MapEval_MLP *m;

  PetscFunctionBegin;
  PetscCall(PetscNew(&m));
  m->gcomm         = MPI_COMM_NULL;
  ev->data_impl    = m;
  ev->ops.setup    = MapEvaluatorSetUp_MLP;
  ev->ops.evaluate = MapEvaluatorEvaluate_MLP;
  ev->ops.destroy  = MapEvaluatorDestroy_MLP;
  ev->ops.view     = MapEvaluatorView_MLP;
  PetscFunctionReturn(0);
}
