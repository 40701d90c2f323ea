/* eval_mlp: the built-in MLP evaluator (docs/design.md §4) and its plain reference.

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
#include "evalimpl.h"
#include "fixedimpl.h"
#include <math.h>
#include <cblas.h>

/* 4 lanes: native SSE2 on every x86-64 (8 lanes without -mavx compile to slow scalar spills) */
typedef float   MapV4F __attribute__((vector_size(16)));
typedef int32_t MapV4I __attribute__((vector_size(16)));

/* blas: cblas_sgemm (bits depend on the CPU's kernels); ref: plain loops; fixed: MapFixedGemm and
   MapFixedExp/Log, the same bits as ref's products on every machine */
typedef enum { MLP_KERNEL_BLAS, MLP_KERNEL_REF, MLP_KERNEL_FIXED } MLPKernel;

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
  int64_t       nmseg;
  int64_t      *moff, *mlen;
  float       **mdst;
  float        *sendbuf; /* merged pieces that only other ranks use */
  /* exchange plan: per peer, one hindexed datatype over absolute addresses (MPI_BOTTOM) */
  int          *scount, *rcount, *zdispl;
  MPI_Datatype *stype, *rtype;
  MLPTask  *tasks;
  int64_t   maxw;          /* widest layer (or input, or head) */
  float    *a0, *a1, *yl; /* [maxw*batch] */
  int      *gcount, *gdispl; /* per-call Allgatherv counts */
  MLPKernel kernel;
  float    *xt; /* fixed kernel: one batch of the eval set transposed, [d, batch] */
  int64_t   rb; /* row block: BLAS calls always cover the same global blocks of rows */
} MapEval_MLP;

/* items [r0,r1) of n that rank r of s owns: balanced, first ranks get the remainder */
static void RowRange(int64_t n, int s, int r, int64_t *r0, int64_t *r1)
{
  int64_t q = n / s, m = n % s;
  *r0 = r * q + (r < m ? r : m);
  *r1 = *r0 + q + (r < m ? 1 : 0);
}

/* rows [r0,r1) of a layer with n rows for rank r of s: whole blocks of rb rows (global block
   boundaries), balanced by blocks */
static void RowBlockRange(int64_t n, int64_t rb, int s, int r, int64_t *r0, int64_t *r1)
{
  int64_t b0, b1;
  RowRange((n + rb - 1) / rb, s, r, &b0, &b1);
  *r0 = PetscMin(b0 * rb, n);
  *r1 = PetscMin(b1 * rb, n);
}

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

/* "encoder.<k>.weight" / "encoder.<k>.bias": *k and *isbias; returns 0 when the name is neither */
static int ParseEncoderName(const char *name, long *k, int *isbias)
{
  const char *p = name;
  if (strncmp(p, "encoder.", 8)) return 0;
  p += 8;
  if (*p < '0' || *p > '9') return 0;
  char *e;
  *k = strtol(p, &e, 10);
  if (!strcmp(e, ".weight")) *isbias = 0;
  else if (!strcmp(e, ".bias")) *isbias = 1;
  else return 0;
  return 1;
}

static int CmpLong(const void *a, const void *b)
{
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

/* the encoder layers of the store, in numeric order of k, with their shapes checked */
static PetscErrorCode FindLayers(MapEvaluator ev, MapStore store, MapEval_MLP *m)
{
  int         nt;
  int64_t     P;
  int         T;
  long       *ks;
  int         nk = 0;
  const char *path;

  PetscFunctionBegin;
  PetscCall(MapStoreGetSizes(store, &P, &T, &nt));
  PetscCall(MapStoreGetPath(store, &path));
  PetscCall(PetscMalloc1(nt + 1, &ks));
  for (int i = 0; i < nt; i++) {
    const MapStoreTensor *t;
    long                  k;
    int                   isb;
    PetscCall(MapStoreGetTensor(store, i, &t));
    if (ParseEncoderName(t->name, &k, &isb) && !isb) ks[nk++] = k;
  }
  PetscCheck(nk > 0, ev->comm, PETSC_ERR_ARG_WRONG,
             "store %s has no merged tensor named encoder.<k>.weight: the mlp evaluator needs Linear layers encoder.<k>.weight/bias "
             "(or use -map_eval_type command)", path);
  qsort(ks, (size_t)nk, sizeof(long), CmpLong);
  m->P      = P;
  m->nlayer = nk;
  PetscCall(PetscCalloc1(nk, &m->layers));
  for (int l = 0; l < nk; l++) {
    MLPLayer             *L = &m->layers[l];
    const MapStoreTensor *w, *b;
    snprintf(L->wname, sizeof(L->wname), "encoder.%ld.weight", ks[l]);
    snprintf(L->bname, sizeof(L->bname), "encoder.%ld.bias", ks[l]);
    PetscCall(MapStoreFindTensor(store, L->wname, &w));
    PetscCall(MapStoreFindTensor(store, L->bname, &b));
    PetscCheck(w, ev->comm, PETSC_ERR_ARG_WRONG, "store %s: tensor %s not found", path, L->wname);
    PetscCheck(b, ev->comm, PETSC_ERR_ARG_WRONG, "store %s: %s has no bias %s (the mlp evaluator needs Linear layers with bias)", path,
               L->wname, L->bname);
    PetscCheck(w->ndim == 2, ev->comm, PETSC_ERR_ARG_SIZ, "store %s: %s has %d dimensions, expected 2 [out,in]", path, L->wname, w->ndim);
    PetscCheck(b->ndim == 1 && b->shape[0] == w->shape[0], ev->comm, PETSC_ERR_ARG_SIZ,
               "store %s: %s has %" PetscInt64_FMT " elements, expected [%" PetscInt64_FMT "] (the rows of %s)", path, L->bname, b->numel,
               w->shape[0], L->wname);
    L->out  = w->shape[0];
    L->in   = w->shape[1];
    L->woff = w->offset;
    L->boff = b->offset;
    if (l > 0)
      PetscCheck(L->in == m->layers[l - 1].out, ev->comm, PETSC_ERR_ARG_SIZ,
                 "store %s: %s takes %" PetscInt64_FMT " inputs but the previous layer %s gives %" PetscInt64_FMT, path, L->wname, L->in,
                 m->layers[l - 1].wname, m->layers[l - 1].out);
  }
  PetscCall(PetscFree(ks));
  PetscFunctionReturn(0);
}

/* rows [a,e) of layer L, part k (0: weight, 1: bias) as a flat range, for rank gr of a group of gs */
static void NeededRange(const MapEval_MLP *m, const MLPLayer *L, int gs, int gr, int k, int64_t *a, int64_t *e)
{
  int64_t r0, r1;
  RowBlockRange(L->out, m->rb, gs, gr, &r0, &r1);
  *a = k ? L->boff + r0 : L->woff + r0 * L->in;
  *e = k ? L->boff + r1 : L->woff + r1 * L->in;
}

static int CmpRange(const void *x, const void *y)
{
  int64_t a = ((const int64_t *)x)[0], b = ((const int64_t *)y)[0];
  return (a > b) - (a < b);
}

/* a datatype over the blocks (address, length) or an empty send/receive */
static PetscErrorCode BlocksType(int nb, const int *len, const MPI_Aint *addr, int *count, MPI_Datatype *type)
{
  PetscFunctionBegin;
  *count = nb > 0;
  *type  = MPI_FLOAT;
  if (!nb) PetscFunctionReturn(0);
  PetscCallMPI(MPI_Type_create_hindexed(nb, len, addr, MPI_FLOAT, type));
  PetscCallMPI(MPI_Type_commit(type));
  PetscFunctionReturn(0);
}

/* The merge and exchange plan. My shard's pieces that my own row blocks use are merged into them;
   pieces of it that only other ranks use are merged into sendbuf, each once (sorted, coalesced);
   each peer gets one hindexed datatype for what I send it (from my row blocks or sendbuf) and one
   for what I receive from it (into my row blocks). */
static PetscErrorCode BuildPlan(MapEvaluator ev, MapEval_MLP *m)
{
  int       R, rank, nl2 = 2 * m->nlayer;
  int64_t  *lohi, me[2] = {m->lo, m->hi}, *iv, niv = 0, nu = 0, tot = 0;
  int      *color, *grank, *gsize, *blen;
  int64_t  *pos;
  MPI_Aint *addr;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(ev->comm, &R));
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  PetscCall(PetscMalloc4(2 * R, &lohi, R, &color, R, &grank, R, &gsize));
  PetscCallMPI(MPI_Allgather(me, 2, MPI_INT64_T, lohi, 2, MPI_INT64_T, ev->comm));
  for (int d = 0; d < R; d++) {
    color[d] = (int)((int64_t)d * m->G / R);
    gsize[d] = 0;
  }
  for (int d = 0; d < R; d++) {
    int first = d;
    while (first > 0 && color[first - 1] == color[d]) first--;
    grank[d] = d - first;
  }
  for (int d = 0; d < R; d++) gsize[color[d]]++;

  /* pieces of my shard that other ranks need outside my own rows, as sorted, coalesced ranges */
  PetscCall(PetscMalloc2(4 * (size_t)nl2 * R + 2, &iv, 2 * (size_t)nl2 * R + 1, &pos));
  for (int d = 0; d < R; d++) {
    if (d == rank) continue;
    for (int l = 0; l < m->nlayer; l++)
      for (int k = 0; k < 2; k++) {
        int64_t a, e, am, em;
        NeededRange(m, &m->layers[l], gsize[color[d]], grank[d], k, &a, &e);
        NeededRange(m, &m->layers[l], m->gsize, m->grank, k, &am, &em);
        int64_t x0 = PetscMax(a, m->lo), x1 = PetscMin(e, m->hi);
        int64_t part[2][2] = {{x0, PetscMin(x1, am)}, {PetscMax(x0, em), x1}}; /* before and after my rows */
        for (int q = 0; q < 2; q++)
          if (part[q][1] > part[q][0]) {
            iv[2 * niv]     = part[q][0];
            iv[2 * niv + 1] = part[q][1];
            niv++;
          }
      }
  }
  qsort(iv, (size_t)niv, 2 * sizeof(int64_t), CmpRange);
  for (int64_t i = 0; i < niv; i++) {
    if (nu && iv[2 * i] <= iv[2 * (nu - 1) + 1]) iv[2 * (nu - 1) + 1] = PetscMax(iv[2 * (nu - 1) + 1], iv[2 * i + 1]);
    else {
      iv[2 * nu]     = iv[2 * i];
      iv[2 * nu + 1] = iv[2 * i + 1];
      nu++;
    }
  }
  for (int64_t i = 0; i < nu; i++) {
    pos[i] = tot;
    tot += iv[2 * i + 1] - iv[2 * i];
  }
  PetscCall(PetscMalloc1(tot + 1, &m->sendbuf));

  /* merge pieces: my rows cut to my shard, then the send ranges */
  PetscCall(PetscMalloc3(nl2 + nu, &m->moff, nl2 + nu, &m->mlen, nl2 + nu, &m->mdst));
  m->nmseg = 0;
  for (int l = 0; l < m->nlayer; l++)
    for (int k = 0; k < 2; k++) {
      int64_t am, em;
      NeededRange(m, &m->layers[l], m->gsize, m->grank, k, &am, &em);
      int64_t x0 = PetscMax(am, m->lo), x1 = PetscMin(em, m->hi);
      if (x1 <= x0) continue;
      m->moff[m->nmseg]   = x0;
      m->mlen[m->nmseg]   = x1 - x0;
      m->mdst[m->nmseg++] = (k ? m->layers[l].b : m->layers[l].W) + (x0 - am);
    }
  for (int64_t i = 0; i < nu; i++) {
    m->moff[m->nmseg]   = iv[2 * i];
    m->mlen[m->nmseg]   = iv[2 * i + 1] - iv[2 * i];
    m->mdst[m->nmseg++] = m->sendbuf + pos[i];
  }

  /* datatypes: per peer, the blocks in (layer, weight/bias) order on both sides */
  PetscCall(PetscCalloc5(R, &m->scount, R, &m->rcount, R, &m->zdispl, R, &m->stype, R, &m->rtype));
  for (int d = 0; d < R; d++) m->stype[d] = m->rtype[d] = MPI_FLOAT; /* = nothing to free */
  PetscCall(PetscMalloc2(3 * (size_t)nl2 + 1, &blen, 3 * (size_t)nl2 + 1, &addr));
  for (int d = 0; d < R; d++) {
    int     nb = 0;
    int64_t cs = 0, cr = 0;
    if (d == rank) continue;
    for (int l = 0; l < m->nlayer; l++) /* send: d's rows cut to my shard, split at my own rows */
      for (int k = 0; k < 2; k++) {
        int64_t a, e, am, em;
        float  *mine = k ? m->layers[l].b : m->layers[l].W;
        NeededRange(m, &m->layers[l], gsize[color[d]], grank[d], k, &a, &e);
        NeededRange(m, &m->layers[l], m->gsize, m->grank, k, &am, &em);
        int64_t x0 = PetscMax(a, m->lo), x1 = PetscMin(e, m->hi);
        int64_t cut[4] = {x0, PetscMax(x0, PetscMin(x1, am)), PetscMax(x0, PetscMin(x1, em)), x1};
        for (int q = 0; q < 3; q++) {
          int64_t y0 = cut[q], y1 = cut[q + 1];
          float  *src;
          if (y1 <= y0) continue;
          if (q == 1) src = mine + (y0 - am);
          else { /* in sendbuf: the coalesced range that holds it */
            int64_t lo = 0, hi = nu - 1;
            while (lo < hi) {
              int64_t mid = (lo + hi + 1) / 2;
              if (iv[2 * mid] <= y0) lo = mid;
              else hi = mid - 1;
            }
            src = m->sendbuf + pos[lo] + (y0 - iv[2 * lo]);
          }
          blen[nb] = (int)(y1 - y0);
          PetscCallMPI(MPI_Get_address(src, &addr[nb]));
          nb++;
          cs += y1 - y0;
        }
      }
    PetscCheck(cs < INT_MAX, PETSC_COMM_SELF, PETSC_ERR_SUP, "mlp evaluator: more than 2^31 parameters sent to one rank");
    PetscCall(BlocksType(nb, blen, addr, &m->scount[d], &m->stype[d]));
    nb = 0;
    for (int l = 0; l < m->nlayer; l++) /* receive: my rows cut to d's shard */
      for (int k = 0; k < 2; k++) {
        int64_t am, em;
        NeededRange(m, &m->layers[l], m->gsize, m->grank, k, &am, &em);
        int64_t x0 = PetscMax(am, lohi[2 * d]), x1 = PetscMin(em, lohi[2 * d + 1]);
        if (x1 <= x0) continue;
        blen[nb] = (int)(x1 - x0);
        PetscCallMPI(MPI_Get_address((k ? m->layers[l].b : m->layers[l].W) + (x0 - am), &addr[nb]));
        nb++;
        cr += x1 - x0;
      }
    PetscCheck(cr < INT_MAX, PETSC_COMM_SELF, PETSC_ERR_SUP, "mlp evaluator: more than 2^31 parameters received by one rank");
    PetscCall(BlocksType(nb, blen, addr, &m->rcount[d], &m->rtype[d]));
  }
  PetscCall(PetscFree2(blen, addr));
  PetscCall(PetscFree2(iv, pos));
  PetscCall(PetscFree4(lohi, color, grank, gsize));
  PetscFunctionReturn(0);
}

/* Heads of task t (store private tensors) and its eval set (only my group's samples). */
static PetscErrorCode LoadTask(MapEvaluator ev, MapEval_MLP *m, MapStore store, int t)
{
  MLPTask             *tk = &m->tasks[t];
  const char          *file = ev->data[t], *spath;
  int                  st, npriv, ndim;
  char               **priv;
  int64_t              shape[MAP_MAX_NDIM];
  int64_t              H = m->layers[m->nlayer - 1].out;
  MapSafetensors       sf;
  const MapTensorInfo *in, *lab;

  PetscFunctionBegin;
  PetscCall(MapStoreGetPath(store, &spath));
  PetscCall(MapStoreFindTask(store, ev->tasks[t], &st));
  PetscCall(MapStoreGetPrivateNames(store, st, &npriv, &priv));
  PetscBool hasw = PETSC_FALSE, hasb = PETSC_FALSE;
  for (int i = 0; i < npriv; i++) {
    if (!strcmp(priv[i], "head.weight")) hasw = PETSC_TRUE;
    if (!strcmp(priv[i], "head.bias")) hasb = PETSC_TRUE;
  }
  PetscCall(MapFreeList(npriv, &priv));
  PetscCheck(hasw && hasb, ev->comm, PETSC_ERR_ARG_WRONG,
             "task %s: store %s has no private %s for it (the mlp evaluator needs a per-task head.weight and head.bias; import with "
             "-map_private_patterns 'head.*')", ev->tasks[t], spath, hasw ? "head.bias" : "head.weight");
  PetscCall(MapStoreReadPrivate(store, st, "head.weight", &ndim, shape, &tk->hw));
  PetscCheck(ndim == 2 && shape[1] == H && shape[0] >= 1, ev->comm, PETSC_ERR_ARG_SIZ,
             "task %s: head.weight has shape [%" PetscInt64_FMT ",%" PetscInt64_FMT "] (%d dims), expected [classes,%" PetscInt64_FMT "] "
             "(%" PetscInt64_FMT " = the outputs of %s)", ev->tasks[t], shape[0], ndim > 1 ? shape[1] : -1, ndim, H, H, m->layers[m->nlayer - 1].wname);
  PetscCheck(shape[0] < INT_MAX, ev->comm, PETSC_ERR_ARG_SIZ, "task %s: too many classes", ev->tasks[t]);
  tk->C = (int)shape[0];
  PetscCall(MapStoreReadPrivate(store, st, "head.bias", &ndim, shape, &tk->hb));
  PetscCheck(ndim == 1 && shape[0] == tk->C, ev->comm, PETSC_ERR_ARG_SIZ,
             "task %s: head.bias has %" PetscInt64_FMT " elements (%d dims), expected [%d] (the rows of head.weight)", ev->tasks[t], shape[0],
             ndim, tk->C);

  /* eval set */
  PetscCall(MapSafetensorsOpen(ev->comm, file, &sf));
  PetscCall(MapSafetensorsFind(sf, "inputs", &in));
  PetscCall(MapSafetensorsFind(sf, "labels", &lab));
  PetscCheck(in, ev->comm, PETSC_ERR_ARG_WRONG, "eval set %s (task %s): no tensor \"inputs\"", file, ev->tasks[t]);
  PetscCheck(lab, ev->comm, PETSC_ERR_ARG_WRONG, "eval set %s (task %s): no tensor \"labels\"", file, ev->tasks[t]);
  PetscCheck(MapDTypeIsFloat(in->dtype), ev->comm, PETSC_ERR_ARG_WRONG, "eval set %s: inputs has dtype %s, expected F32 (or F16/BF16/F64)",
             file, MapTensorDTypeName(in));
  PetscCheck(in->ndim == 2, ev->comm, PETSC_ERR_ARG_SIZ, "eval set %s: inputs has %d dimensions, expected 2 [samples,features]", file, in->ndim);
  PetscCheck(lab->dtype == MAP_DTYPE_I64 || lab->dtype == MAP_DTYPE_I32, ev->comm, PETSC_ERR_ARG_WRONG,
             "eval set %s: labels has dtype %s, expected I64 or I32", file, MapTensorDTypeName(lab));
  PetscCheck(lab->ndim == 1, ev->comm, PETSC_ERR_ARG_SIZ, "eval set %s: labels has %d dimensions, expected 1 [samples]", file, lab->ndim);
  tk->n = in->shape[0];
  tk->d = in->shape[1];
  PetscCheck(lab->shape[0] == tk->n, ev->comm, PETSC_ERR_ARG_SIZ, "eval set %s: %" PetscInt64_FMT " labels for %" PetscInt64_FMT " inputs", file,
             lab->shape[0], tk->n);
  PetscCheck(tk->n > 0, ev->comm, PETSC_ERR_ARG_SIZ, "eval set %s: no samples", file);
  PetscCheck(tk->d == m->layers[0].in, ev->comm, PETSC_ERR_ARG_SIZ,
             "eval set %s: inputs has %" PetscInt64_FMT " features per sample, but the first layer %s takes %" PetscInt64_FMT, file, tk->d,
             m->layers[0].wname, m->layers[0].in);

  /* my group's batches: contiguous, balanced */
  tk->nbatch = (tk->n + ev->batch - 1) / ev->batch;
  RowRange(tk->nbatch, m->G, m->color, &tk->b0, &tk->b1);
  tk->s0 = PetscMin(tk->b0 * ev->batch, tk->n);
  tk->s1 = PetscMin(tk->b1 * ev->batch, tk->n);
  int64_t ns = tk->s1 - tk->s0;
  PetscCall(PetscMalloc2(ns * tk->d + 1, &tk->X, ns + 1, &tk->labels));
  if (ns > 0) PetscCall(MapSafetensorsReadF32(sf, in, tk->s0 * tk->d, ns * tk->d, tk->X));
  int64_t bad = -1;
  for (int64_t i = 0; i < ns * tk->d; i++)
    if (!isfinite(tk->X[i])) {
      bad = i;
      break;
    }
  MapCheckAll(ev->comm, bad < 0, PETSC_ERR_FP, "eval set %s: inputs[%" PetscInt64_FMT "][%" PetscInt64_FMT "] is %s (NaN/Inf in the inputs)", file,
              tk->s0 + (bad < 0 ? 0 : bad / tk->d), bad < 0 ? 0 : bad % tk->d, bad < 0 ? "" : (isnan(tk->X[bad]) ? "NaN" : "Inf"));

  /* labels: small, read whole, checked on every rank (same verdict everywhere) */
  void *raw;
  PetscCall(PetscMalloc(lab->end - lab->begin + 1, &raw));
  PetscCall(MapSafetensorsReadRaw(sf, lab, raw));
  int64_t badi = -1, badv = 0;
  for (int64_t i = 0; i < tk->n; i++) {
    int64_t v;
    if (lab->dtype == MAP_DTYPE_I64) memcpy(&v, (char *)raw + 8 * i, 8);
    else {
      int32_t v32;
      memcpy(&v32, (char *)raw + 4 * i, 4);
      v = v32;
    }
    if ((v < 0 || v >= tk->C) && badi < 0) {
      badi = i;
      badv = v;
    }
    if (i >= tk->s0 && i < tk->s1) tk->labels[i - tk->s0] = v;
  }
  PetscCall(PetscFree(raw));
  MapCheckAll(ev->comm, badi < 0, PETSC_ERR_ARG_OUTOFRANGE,
              "eval set %s: labels[%" PetscInt64_FMT "] = %" PetscInt64_FMT " is outside [0, %d) (task %s's head has %d classes)", file, badi, badv,
              tk->C, ev->tasks[t], tk->C);
  PetscCall(MapSafetensorsDestroy(&sf));
  m->maxw = PetscMax(m->maxw, tk->d);
  m->maxw = PetscMax(m->maxw, tk->C);
  PetscFunctionReturn(0);
}

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
  PetscCall(FindLayers(ev, store, m));
  PetscCheck(layout.P == m->P, ev->comm, PETSC_ERR_ARG_INCOMP, "mlp evaluator: model has %" PetscInt64_FMT " parameters, store %" PetscInt64_FMT,
             layout.P, m->P);
  m->kernel = !strcmp(ev->kernel, "blas") ? MLP_KERNEL_BLAS : !strcmp(ev->kernel, "fixed") ? MLP_KERNEL_FIXED : MLP_KERNEL_REF;
  m->rb      = ev->rowblock;

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
    RowBlockRange(L->out, m->rb, m->gsize, m->grank, &L->r0, &L->r1);
    PetscCall(PetscMalloc2((L->r1 - L->r0) * L->in + 1, &L->W, (L->r1 - L->r0) + 1, &L->b));
    PetscCall(PetscMalloc2(m->gsize, &L->rcount, m->gsize, &L->rdispl));
    for (int s = 0; s < m->gsize; s++) {
      int64_t a, e;
      RowBlockRange(L->out, m->rb, m->gsize, s, &a, &e);
      PetscCheck(L->out * ev->batch < INT_MAX, PETSC_COMM_SELF, PETSC_ERR_SUP, "mlp evaluator: layer %s x batch too large", L->wname);
      L->rcount[s] = (int)(e - a);
      L->rdispl[s] = (int)a;
    }
    m->maxw = PetscMax(m->maxw, PetscMax(L->in, L->out));
  }
  PetscCall(BuildPlan(ev, m));
  PetscCall(PetscCalloc1(ev->T, &m->tasks));
  for (int t = 0; t < ev->T; t++) PetscCall(LoadTask(ev, m, store, t));
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
    const float     b = bias[i];
    int64_t         j = 0;
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

/*
  MapEvaluatorEvaluate_MLPRef - the reference for the mlp evaluator (tests): gathers the whole
  merged vector on every rank and runs a plain double-precision forward pass over every sample of
  every eval set, unsharded. Needs an evaluator of type mlp that is set up. Collective.
*/
PetscErrorCode MapEvaluatorEvaluate_MLPRef(MapEvaluator ev, const double *c, MapTaskMetrics *metrics)
{
  MapEval_MLP *m = (MapEval_MLP *)ev->data_impl;
  int          R;
  int         *cnt, *dsp;
  float       *full;
  int64_t      range[2];
  float       *theta;

  PetscFunctionBegin;
  PetscCheck(ev->setupcalled && !strcmp(ev->type, "mlp"), ev->comm, PETSC_ERR_ORDER, "MapEvaluatorEvaluate_MLPRef needs a set-up mlp evaluator");
  PetscCallMPI(MPI_Comm_size(ev->comm, &R));
  PetscCheck(m->P < INT_MAX, ev->comm, PETSC_ERR_SUP, "MLPRef: model too large to gather");
  PetscCall(PetscMalloc1(m->hi - m->lo + 1, &theta));
  PetscCall(MapModelMerge(ev->model, c, theta));
  PetscCall(MapModelCheckFinite(ev->model, ev->comm, c, theta));
  PetscCall(PetscMalloc3(R, &cnt, R, &dsp, m->P + 1, &full));
  range[0] = m->lo;
  range[1] = m->hi;
  int64_t *all;
  PetscCall(PetscMalloc1(2 * R, &all));
  PetscCallMPI(MPI_Allgather(range, 2, MPI_INT64_T, all, 2, MPI_INT64_T, ev->comm));
  for (int r = 0; r < R; r++) {
    cnt[r] = (int)(all[2 * r + 1] - all[2 * r]);
    dsp[r] = (int)all[2 * r];
  }
  PetscCallMPI(MPI_Allgatherv(theta, (int)(m->hi - m->lo), MPI_FLOAT, full, cnt, dsp, MPI_FLOAT, ev->comm));
  PetscCall(PetscFree(all));
  PetscCall(PetscFree(theta));

  double *hbuf0, *hbuf1;
  PetscCall(PetscMalloc2(m->maxw, &hbuf0, m->maxw, &hbuf1));
  for (int t = 0; t < ev->T; t++) {
    MLPTask             *tk = &m->tasks[t];
    MapSafetensors       sf;
    const MapTensorInfo *in, *lab;
    float               *X;
    void                *raw;
    PetscCall(MapSafetensorsOpen(ev->comm, ev->data[t], &sf));
    PetscCall(MapSafetensorsFind(sf, "inputs", &in));
    PetscCall(MapSafetensorsFind(sf, "labels", &lab));
    PetscCall(PetscMalloc2(tk->n * tk->d, &X, lab->end - lab->begin, &raw));
    PetscCall(MapSafetensorsReadF32(sf, in, 0, tk->n * tk->d, X));
    PetscCall(MapSafetensorsReadRaw(sf, lab, raw));
    double  loss = 0;
    int64_t corr = 0;
    for (int64_t s = 0; s < tk->n; s++) {
      int64_t y;
      if (lab->dtype == MAP_DTYPE_I64) memcpy(&y, (char *)raw + 8 * s, 8);
      else {
        int32_t v;
        memcpy(&v, (char *)raw + 4 * s, 4);
        y = v;
      }
      double *h0 = hbuf0, *h1 = hbuf1;
      for (int64_t k = 0; k < tk->d; k++) h0[k] = X[s * tk->d + k];
      for (int l = 0; l < m->nlayer; l++) {
        MLPLayer *L = &m->layers[l];
        for (int64_t i = 0; i < L->out; i++) {
          double acc = full[L->boff + i];
          for (int64_t k = 0; k < L->in; k++) acc += (double)full[L->woff + i * L->in + k] * h0[k];
          h1[i] = acc > 0 ? acc : 0;
        }
        double *tmp = h0;
        h0          = h1;
        h1          = tmp;
      }
      int64_t H  = m->layers[m->nlayer - 1].out;
      double  mx = -INFINITY;
      int     am = 0;
      for (int cl = 0; cl < tk->C; cl++) {
        double acc = tk->hb[cl];
        for (int64_t k = 0; k < H; k++) acc += (double)tk->hw[cl * H + k] * h0[k];
        h1[cl] = acc;
        if (acc > mx) {
          mx = acc;
          am = cl;
        }
      }
      double se = 0;
      for (int cl = 0; cl < tk->C; cl++) se += exp(h1[cl] - mx);
      loss += mx + log(se) - h1[y];
      corr += (am == y);
    }
    metrics[t].loss     = loss / (double)tk->n;
    metrics[t].correct  = corr;
    metrics[t].count    = tk->n;
    metrics[t].accuracy = (double)corr / (double)tk->n;
    PetscCall(PetscFree2(X, raw));
    PetscCall(MapSafetensorsDestroy(&sf));
  }
  PetscCall(PetscFree2(hbuf0, hbuf1));
  PetscCall(PetscFree3(cnt, dsp, full));
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
  PetscCall(PetscViewerASCIIPrintf(viewer, "kernel %s (-map_eval_kernel), batch %" PetscInt_FMT " (-map_eval_batch), row block %" PetscInt_FMT
                                   " (-map_eval_row_block)\n", ev->kernel, ev->batch, ev->rowblock));
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
