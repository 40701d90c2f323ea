/* eval_mlp_setup: the mlp evaluator's set-up (eval_mlp.c has the design): the encoder layers found
   in the store, the plan that merges each rank's flat shard straight into the row blocks that use it
   and moves the rest with one MPI_Alltoallw of hindexed datatypes, and the per-task heads and eval
   sets with their checks. */
#include "evalmlpimpl.h"
#include <math.h>

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
PetscErrorCode MapMLPFindLayers(MapEvaluator ev, MapStore store, MapEval_MLP *m)
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
             "(or use -map_eval_type command)",
             path);
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
  MapMLPRowBlockRange(L->out, m->rb, gs, gr, &r0, &r1);
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

/* what MapMLPBuildPlan knows of every rank: its shard, group and rank in the group, and the sorted,
   coalesced ranges [iv[2i], iv[2i+1]) of my shard that others need, at sendbuf + pos[i] */
typedef struct {
  int      R, rank;
  int64_t *lohi;
  int     *color, *grank, *gsize;
  int64_t *iv, *pos, nu;
} MLPPlanCtx;

/* every rank's shard, group (as MapEvaluatorSetUp_MLP's split), rank in it and group size */
static PetscErrorCode PlanPeers(MapEvaluator ev, MapEval_MLP *m, MLPPlanCtx *pc)
{
  int64_t   me[2] = {m->lo, m->hi};
  const int R     = pc->R;

  PetscFunctionBegin;
  PetscCall(PetscMalloc4(2 * R, &pc->lohi, R, &pc->color, R, &pc->grank, R, &pc->gsize));
  PetscCallMPI(MPI_Allgather(me, 2, MPI_INT64_T, pc->lohi, 2, MPI_INT64_T, ev->comm));
  for (int d = 0; d < R; d++) {
    pc->color[d] = (int)((int64_t)d * m->G / R);
    pc->gsize[d] = 0;
  }
  for (int d = 0; d < R; d++) {
    int first = d;
    while (first > 0 && pc->color[first - 1] == pc->color[d]) first--;
    pc->grank[d] = d - first;
  }
  for (int d = 0; d < R; d++) pc->gsize[pc->color[d]]++;
  PetscFunctionReturn(0);
}

/* pieces of my shard that other ranks need outside my own rows, as sorted, coalesced ranges; sendbuf
   holds them */
static PetscErrorCode PlanSendRanges(MapEval_MLP *m, MLPPlanCtx *pc)
{
  const int nl2 = 2 * m->nlayer, R = pc->R;
  int64_t   niv = 0, nu = 0, tot = 0, *iv, *pos;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(4 * (size_t)nl2 * R + 2, &pc->iv, 2 * (size_t)nl2 * R + 1, &pc->pos));
  iv = pc->iv, pos = pc->pos;
  for (int d = 0; d < R; d++) {
    if (d == pc->rank) continue;
    for (int l = 0; l < m->nlayer; l++)
      for (int k = 0; k < 2; k++) {
        int64_t a, e, am, em;
        NeededRange(m, &m->layers[l], pc->gsize[pc->color[d]], pc->grank[d], k, &a, &e);
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
  pc->nu = nu;
  PetscCall(PetscMalloc1(tot + 1, &m->sendbuf));
  PetscFunctionReturn(0);
}

/* merge pieces: my rows cut to my shard, then the send ranges */
static PetscErrorCode PlanMergePieces(MapEval_MLP *m, const MLPPlanCtx *pc)
{
  const int nl2 = 2 * m->nlayer;

  PetscFunctionBegin;
  PetscCall(PetscMalloc3(nl2 + pc->nu, &m->moff, nl2 + pc->nu, &m->mlen, nl2 + pc->nu, &m->mdst));
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
  for (int64_t i = 0; i < pc->nu; i++) {
    m->moff[m->nmseg]   = pc->iv[2 * i];
    m->mlen[m->nmseg]   = pc->iv[2 * i + 1] - pc->iv[2 * i];
    m->mdst[m->nmseg++] = m->sendbuf + pc->pos[i];
  }
  PetscFunctionReturn(0);
}

/* the datatype of what I send peer d: d's rows cut to my shard, split at my own rows (those come
   from my row blocks, the rest from the coalesced range of sendbuf that holds it) */
static PetscErrorCode PlanSendType(MapEval_MLP *m, const MLPPlanCtx *pc, int d, int *blen, MPI_Aint *addr)
{
  int     nb = 0;
  int64_t cs = 0;

  PetscFunctionBegin;
  for (int l = 0; l < m->nlayer; l++)
    for (int k = 0; k < 2; k++) {
      int64_t a, e, am, em;
      float  *mine = k ? m->layers[l].b : m->layers[l].W;
      NeededRange(m, &m->layers[l], pc->gsize[pc->color[d]], pc->grank[d], k, &a, &e);
      NeededRange(m, &m->layers[l], m->gsize, m->grank, k, &am, &em);
      int64_t x0 = PetscMax(a, m->lo), x1 = PetscMin(e, m->hi);
      int64_t cut[4] = {x0, PetscMax(x0, PetscMin(x1, am)), PetscMax(x0, PetscMin(x1, em)), x1};
      for (int q = 0; q < 3; q++) {
        int64_t y0 = cut[q], y1 = cut[q + 1];
        float  *src;
        if (y1 <= y0) continue;
        if (q == 1) src = mine + (y0 - am);
        else { /* in sendbuf: the coalesced range that holds it */
          int64_t lo = 0, hi = pc->nu - 1;
          while (lo < hi) {
            int64_t mid = (lo + hi + 1) / 2;
            if (pc->iv[2 * mid] <= y0) lo = mid;
            else hi = mid - 1;
          }
          src = m->sendbuf + pc->pos[lo] + (y0 - pc->iv[2 * lo]);
        }
        blen[nb] = (int)(y1 - y0);
        PetscCallMPI(MPI_Get_address(src, &addr[nb]));
        nb++;
        cs += y1 - y0;
      }
    }
  PetscCheck(cs < INT_MAX, PETSC_COMM_SELF, PETSC_ERR_SUP, "mlp evaluator: more than 2^31 parameters sent to one rank");
  PetscCall(BlocksType(nb, blen, addr, &m->scount[d], &m->stype[d]));
  PetscFunctionReturn(0);
}

/* the datatype of what I receive from peer d: my rows cut to d's shard */
static PetscErrorCode PlanRecvType(MapEval_MLP *m, const MLPPlanCtx *pc, int d, int *blen, MPI_Aint *addr)
{
  int     nb = 0;
  int64_t cr = 0;

  PetscFunctionBegin;
  for (int l = 0; l < m->nlayer; l++)
    for (int k = 0; k < 2; k++) {
      int64_t am, em;
      NeededRange(m, &m->layers[l], m->gsize, m->grank, k, &am, &em);
      int64_t x0 = PetscMax(am, pc->lohi[2 * d]), x1 = PetscMin(em, pc->lohi[2 * d + 1]);
      if (x1 <= x0) continue;
      blen[nb] = (int)(x1 - x0);
      PetscCallMPI(MPI_Get_address((k ? m->layers[l].b : m->layers[l].W) + (x0 - am), &addr[nb]));
      nb++;
      cr += x1 - x0;
    }
  PetscCheck(cr < INT_MAX, PETSC_COMM_SELF, PETSC_ERR_SUP, "mlp evaluator: more than 2^31 parameters received by one rank");
  PetscCall(BlocksType(nb, blen, addr, &m->rcount[d], &m->rtype[d]));
  PetscFunctionReturn(0);
}

/* The merge and exchange plan. My shard's pieces that my own row blocks use are merged into them;
   pieces of it that only other ranks use are merged into sendbuf, each once (sorted, coalesced);
   each peer gets one hindexed datatype for what I send it (from my row blocks or sendbuf) and one
   for what I receive from it (into my row blocks). */
PetscErrorCode MapMLPBuildPlan(MapEvaluator ev, MapEval_MLP *m)
{
  MLPPlanCtx pc;
  const int  nl2 = 2 * m->nlayer;
  int       *blen;
  MPI_Aint  *addr;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(ev->comm, &pc.R));
  PetscCallMPI(MPI_Comm_rank(ev->comm, &pc.rank));
  PetscCall(PlanPeers(ev, m, &pc));
  PetscCall(PlanSendRanges(m, &pc));
  PetscCall(PlanMergePieces(m, &pc));
  /* datatypes: per peer, the blocks in (layer, weight/bias) order on both sides */
  PetscCall(PetscCalloc5(pc.R, &m->scount, pc.R, &m->rcount, pc.R, &m->zdispl, pc.R, &m->stype, pc.R, &m->rtype));
  for (int d = 0; d < pc.R; d++) m->stype[d] = m->rtype[d] = MPI_FLOAT; /* = nothing to free */
  PetscCall(PetscMalloc2(3 * (size_t)nl2 + 1, &blen, 3 * (size_t)nl2 + 1, &addr));
  for (int d = 0; d < pc.R; d++) {
    if (d == pc.rank) continue;
    PetscCall(PlanSendType(m, &pc, d, blen, addr));
    PetscCall(PlanRecvType(m, &pc, d, blen, addr));
  }
  PetscCall(PetscFree2(blen, addr));
  PetscCall(PetscFree2(pc.iv, pc.pos));
  PetscCall(PetscFree4(pc.lohi, pc.color, pc.grank, pc.gsize));
  PetscFunctionReturn(0);
}

/* task t's private head.weight [C,H] and head.bias [C] from the store */
static PetscErrorCode LoadHead(MapEvaluator ev, MapEval_MLP *m, MapStore store, int t)
{
  MLPTask    *tk = &m->tasks[t];
  const char *spath;
  int         st, npriv, ndim;
  char      **priv;
  int64_t     shape[MAP_MAX_NDIM];
  int64_t     H = m->layers[m->nlayer - 1].out;

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
             "-map_private_patterns 'head.*')",
             ev->tasks[t], spath, hasw ? "head.bias" : "head.weight");
  PetscCall(MapStoreReadPrivate(store, st, "head.weight", &ndim, shape, &tk->hw));
  PetscCheck(ndim == 2 && shape[1] == H && shape[0] >= 1, ev->comm, PETSC_ERR_ARG_SIZ,
             "task %s: head.weight has shape [%" PetscInt64_FMT ",%" PetscInt64_FMT "] (%d dims), expected [classes,%" PetscInt64_FMT "] "
             "(%" PetscInt64_FMT " = the outputs of %s)",
             ev->tasks[t], shape[0], ndim > 1 ? shape[1] : -1, ndim, H, H, m->layers[m->nlayer - 1].wname);
  PetscCheck(shape[0] < INT_MAX, ev->comm, PETSC_ERR_ARG_SIZ, "task %s: too many classes", ev->tasks[t]);
  tk->C = (int)shape[0];
  PetscCall(MapStoreReadPrivate(store, st, "head.bias", &ndim, shape, &tk->hb));
  PetscCheck(ndim == 1 && shape[0] == tk->C, ev->comm, PETSC_ERR_ARG_SIZ,
             "task %s: head.bias has %" PetscInt64_FMT " elements (%d dims), expected [%d] (the rows of head.weight)", ev->tasks[t], shape[0],
             ndim, tk->C);
  PetscFunctionReturn(0);
}

/* the eval set's inputs (my group's samples, checked finite everywhere) and the labels' entry */
static PetscErrorCode LoadInputs(MapEvaluator ev, MapEval_MLP *m, int t, MapSafetensors sf, const MapTensorInfo **labout)
{
  MLPTask             *tk   = &m->tasks[t];
  const char          *file = ev->data[t];
  const MapTensorInfo *in, *lab;

  PetscFunctionBegin;
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
  MapMLPRowRange(tk->nbatch, m->G, m->color, &tk->b0, &tk->b1);
  tk->s0     = PetscMin(tk->b0 * ev->batch, tk->n);
  tk->s1     = PetscMin(tk->b1 * ev->batch, tk->n);
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
  *labout = lab;
  PetscFunctionReturn(0);
}

/* labels: small, read whole, checked on every rank (same verdict everywhere); my group's kept */
static PetscErrorCode LoadLabels(MapEvaluator ev, MapEval_MLP *m, int t, MapSafetensors sf, const MapTensorInfo *lab)
{
  MLPTask    *tk   = &m->tasks[t];
  const char *file = ev->data[t];

  PetscFunctionBegin;
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
  PetscFunctionReturn(0);
}

/* Heads of task t (store private tensors) and its eval set (only my group's samples). */
PetscErrorCode MapMLPLoadTask(MapEvaluator ev, MapEval_MLP *m, MapStore store, int t)
{
  MLPTask             *tk = &m->tasks[t];
  MapSafetensors       sf;
  const MapTensorInfo *lab;

  PetscFunctionBegin;
  PetscCall(LoadHead(ev, m, store, t));
  PetscCall(MapSafetensorsOpen(ev->comm, ev->data[t], &sf));
  PetscCall(LoadInputs(ev, m, t, sf, &lab));
  PetscCall(LoadLabels(ev, m, t, sf, lab));
  PetscCall(MapSafetensorsDestroy(&sf));
  m->maxw = PetscMax(m->maxw, tk->d);
  m->maxw = PetscMax(m->maxw, tk->C);
  PetscFunctionReturn(0);
}
