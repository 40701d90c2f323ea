/* eval_lm_weights: the lm evaluator's weights (docs/lm.md). Which columns of every linear layer,
   which attention heads and which vocabulary ids each rank of a group computes with; the tensors
   found by name in the store (GPT-2 and Llama layouts); the redistribution plan from the flat shard
   a rank merges to those slices, and the exchange itself (one MPI_Alltoallv per round). */
#include "evallmimpl.h"
#include <math.h>

/* appends a piece, or extends the last one when both the source and the destination continue it
   (a Conv1D slice of all columns is one piece, not K) */
static PetscErrorCode SegPush(LMSegList *l, int64_t off, int64_t len, float *dst, const void *tr, int64_t tidx)
{
  PetscFunctionBegin;
  if (len <= 0) PetscFunctionReturn(0);
  if (l->n) {
    LMSeg *q = &l->s[l->n - 1];
    if (q->round == l->round && q->off + q->len == off && q->tr == tr &&
        (tr ? q->tidx + q->len == tidx : (!q->dst && !dst) || (q->dst && dst && q->dst + q->len == dst))) {
      q->len += len;
      PetscFunctionReturn(0);
    }
  }
  if (l->n == l->cap) {
    LMSeg *s;
    l->cap = 2 * l->cap + 256;
    PetscCall(PetscMalloc1(l->cap, &s));
    if (l->n) PetscCall(PetscMemcpy(s, l->s, (size_t)l->n * sizeof(LMSeg)));
    PetscCall(PetscFree(l->s));
    l->s = s;
  }
  l->s[l->n].off = off, l->s[l->n].len = len, l->s[l->n].dst = dst, l->s[l->n].tr = tr, l->s[l->n].tidx = tidx, l->s[l->n].round = l->round, l->n++;
  PetscFunctionReturn(0);
}

/* the flat pieces of a linear layer's columns [c0,c1) (dst only when mine) */
static PetscErrorCode LinearSegs(const LMLinear *lin, int64_t c0, int64_t c1, PetscBool mine, LMSegList *l)
{
  int64_t base = 0, nloc = c1 - c0;

  PetscFunctionBegin;
  for (int s = 0; s < lin->nsrc; s++) {
    const LMSrc *src = &lin->src[s];
    int64_t      a = PetscMax(c0, base), e = PetscMin(c1, base + src->n);
    if (a < e) {
      if (lin->linear) PetscCall(SegPush(l, src->off + (a - base) * lin->K, (e - a) * lin->K, NULL, lin, (a - c0) * lin->K));
      else
        for (int64_t k = 0; k < lin->K; k++)
          PetscCall(SegPush(l, src->off + k * src->n + (a - base), e - a, mine ? lin->W + k * nloc + (a - c0) : NULL, NULL, 0));
      if (src->bias >= 0) PetscCall(SegPush(l, src->bias + (a - base), e - a, mine ? lin->b + (a - c0) : NULL, NULL, 0));
    }
    base += src->n;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapLMAllLinears(MapEval_LM *m, LMLinear ***list, int *n)
{
  PetscFunctionBegin;
  PetscCall(PetscMalloc1(5 * m->cfg.nlayer + 1, list));
  *n = 0;
  for (int64_t i = 0; i < m->cfg.nlayer; i++) {
    LMBlock *B      = &m->blk[i];
    (*list)[(*n)++] = &B->qkv, (*list)[(*n)++] = &B->proj, (*list)[(*n)++] = &B->fc;
    if (m->cfg.arch == MAP_LM_LLAMA) (*list)[(*n)++] = &B->up;
    (*list)[(*n)++] = &B->down;
  }
  (*list)[(*n)++] = &m->head;
  PetscFunctionReturn(0);
}

/* Every piece group rank gr of gs needs, in a fixed order: the replicated tensors, the embedding
   rows of its vocabulary slice, then the column slices of every linear layer. */
static PetscErrorCode RankSegs(MapEval_LM *m, int gs, int gr, LMSegList *l)
{
  PetscBool  mine = gs == m->gsize && gr == m->grank ? PETSC_TRUE : PETSC_FALSE;
  LMLinear **lins;
  int        nl;
  int64_t    v0, v1, E = m->cfg.E;

  PetscFunctionBegin;
  l->n = 0, l->round = 0;
  for (int64_t i = 0; i < m->nrepseg; i++) PetscCall(SegPush(l, m->repseg[i].off, m->repseg[i].len, mine ? m->repseg[i].dst : NULL, NULL, 0));
  MapLMPart(m->cfg.V, LM_VOCAB_UNIT, gs, gr, &v0, &v1);
  if (!m->tied_head) PetscCall(SegPush(l, m->embsrc + v0 * E, (v1 - v0) * E, mine ? m->emb : NULL, NULL, 0));
  PetscCall(MapLMAllLinears(m, &lins, &nl));
  for (int i = 0; i < nl; i++) {
    int64_t c0, c1;
    l->round = i + 1;
    MapLMPart(lins[i]->N, lins[i]->unit, gs, gr, &c0, &c1);
    PetscCall(LinearSegs(lins[i], c0, c1, mine, l));
  }
  PetscCall(PetscFree(lins));
  PetscFunctionReturn(0);
}

/* a merged tensor of the store by name, or NULL (MapStoreFindTensor raises an error when absent) */
static PetscErrorCode FindOptional(MapStore store, const char *name, const MapStoreTensor **t)
{
  int     nt, T;
  int64_t P;

  PetscFunctionBegin;
  *t = NULL;
  PetscCall(MapStoreGetSizes(store, &P, &T, &nt));
  for (int i = 0; i < nt && !*t; i++) {
    const MapStoreTensor *x;
    PetscCall(MapStoreGetTensor(store, i, &x));
    if (!strcmp(x->name, name)) *t = x;
  }
  PetscFunctionReturn(0);
}

/* a merged tensor of the store with its shape checked; d1 < 0 for a vector */
static PetscErrorCode Tensor(MapEvaluator ev, MapStore store, const char *prefix, const char *name, int64_t d0, int64_t d1, int64_t *off)
{
  MapEval_LM           *m = (MapEval_LM *)ev->data_impl;
  char                  full[MAP_NAME_LEN];
  const MapStoreTensor *t;
  const char           *path;

  PetscFunctionBegin;
  snprintf(full, sizeof(full), "%s%s", prefix, name);
  PetscCall(MapStoreGetPath(store, &path));
  PetscCall(FindOptional(store, full, &t));
  PetscCheck(t, ev->comm, PETSC_ERR_ARG_WRONG, "store %s: tensor %s not found (the %s model of %s needs it)", path, full,
             m->cfg.arch == MAP_LM_GPT2 ? "gpt2" : "llama", m->cfg.path);
  const int ndim = d1 < 0 ? 1 : 2;
  PetscCheck(t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1), ev->comm, PETSC_ERR_ARG_SIZ,
             "store %s: tensor %s has shape [%" PetscInt64_FMT "%s%" PetscInt64_FMT "%s], expected [%" PetscInt64_FMT "%s%" PetscInt64_FMT "] from %s", path, full,
             t->shape[0], t->ndim > 1 ? "," : "", t->ndim > 1 ? t->shape[1] : (int64_t)0, t->ndim > 2 ? ",..." : "", d0, ndim > 1 ? "," : "",
             ndim > 1 ? d1 : (int64_t)0, m->cfg.path);
  *off = t->offset;
  PetscFunctionReturn(0);
}

/* a replicated tensor (norm weights, positions): every rank holds it whole (small) */
static PetscErrorCode Replicated(MapEvaluator ev, MapStore store, const char *prefix, const char *name, int64_t d0, int64_t d1, float **buf)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;
  int64_t     off, n = d0 * (d1 < 0 ? 1 : d1);

  PetscFunctionBegin;
  PetscCall(Tensor(ev, store, prefix, name, d0, d1, &off));
  PetscCall(PetscMalloc1(n, buf));
  PetscCall(PetscRealloc(sizeof(LMSeg) * (size_t)(m->nrepseg + 1), &m->repseg));
  m->repseg[m->nrepseg].off = off, m->repseg[m->nrepseg].len = n, m->repseg[m->nrepseg].dst = *buf, m->nrepseg++;
  PetscFunctionReturn(0);
}

/* a linear layer of nsrc tensors concatenated along the output, split by columns in units */
static PetscErrorCode InitLinear(MapEvaluator ev, MapStore store, LMLinear *lin, const char *prefix, int nsrc, const char *const *wname,
                                 const char *const *bname, const int64_t *n, int64_t K, PetscBool linear, int64_t unit)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;

  PetscFunctionBegin;
  snprintf(lin->name, sizeof(lin->name), "%s%s", prefix, wname[0]);
  lin->K = K, lin->N = 0, lin->unit = unit, lin->linear = linear, lin->nsrc = nsrc;
  for (int s = 0; s < nsrc; s++) {
    PetscCall(Tensor(ev, store, prefix, wname[s], linear ? n[s] : K, linear ? K : n[s], &lin->src[s].off));
    lin->src[s].n    = n[s];
    lin->src[s].bias = -1;
    if (bname && bname[s]) PetscCall(Tensor(ev, store, prefix, bname[s], n[s], -1, &lin->src[s].bias));
    lin->N += n[s];
  }
  MapLMPart(lin->N, unit, m->gsize, m->grank, &lin->c0, &lin->c1);
  const int64_t nloc = lin->c1 - lin->c0;
  PetscCall(PetscMalloc1(K * nloc + 1, &lin->W));
  if (bname && bname[0]) PetscCall(PetscMalloc1(nloc + 1, &lin->b));
  PetscCall(PetscMalloc2(m->gsize, &lin->cnt, m->gsize, &lin->col0));
  for (int r = 0; r < m->gsize; r++) {
    int64_t a, e;
    MapLMPart(lin->N, unit, m->gsize, r, &a, &e);
    lin->cnt[r] = (int)(e - a), lin->col0[r] = (int)a;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapLMFreeLinear(LMLinear *lin)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(lin->W));
  PetscCall(PetscFree(lin->b));
  PetscCall(PetscFree2(lin->cnt, lin->col0));
  PetscFunctionReturn(0);
}

/* GPT-2's tensors (transformer.* or bare names; Conv1D layout [K, N]) */
static PetscErrorCode InitGPT2(MapEvaluator ev, MapStore store)
{
  MapEval_LM   *m = (MapEval_LM *)ev->data_impl;
  MapLMConfig  *c = &m->cfg;
  const int64_t E = c->E, F = c->F, V = c->V;
  char          nm[5][MAP_NAME_LEN], bn[3][MAP_NAME_LEN];
  const char   *w[3], *b[3];

  PetscFunctionBegin;
  const MapStoreTensor *t;
  PetscCall(FindOptional(store, "transformer.wte.weight", &t));
  const char *pre = t ? "transformer." : "";
  PetscCall(Tensor(ev, store, pre, "wte.weight", V, E, &m->embsrc));
  PetscCall(Replicated(ev, store, pre, "wpe.weight", c->npos, E, &m->wpe));
  for (int64_t i = 0; i < c->nlayer; i++) {
    LMBlock *B = &m->blk[i];
    int64_t  n1[1];
    char     p[64];
    snprintf(p, sizeof(p), "h.%lld.", (long long)i);
    snprintf(nm[0], sizeof(nm[0]), "%sln_1.weight", p), snprintf(nm[1], sizeof(nm[1]), "%sln_1.bias", p);
    PetscCall(Replicated(ev, store, pre, nm[0], E, -1, &B->ln1w));
    PetscCall(Replicated(ev, store, pre, nm[1], E, -1, &B->ln1b));
    snprintf(nm[0], sizeof(nm[0]), "%sln_2.weight", p), snprintf(nm[1], sizeof(nm[1]), "%sln_2.bias", p);
    PetscCall(Replicated(ev, store, pre, nm[0], E, -1, &B->ln2w));
    PetscCall(Replicated(ev, store, pre, nm[1], E, -1, &B->ln2b));
    const char *lname[4] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};
    LMLinear   *lins[4]  = {&B->qkv, &B->proj, &B->fc, &B->down};
    int64_t     K[4] = {E, E, E, F}, N[4] = {3 * E, E, F, E};
    for (int k = 0; k < 4; k++) {
      snprintf(nm[0], sizeof(nm[0]), "%s%s.weight", p, lname[k]), snprintf(bn[0], sizeof(bn[0]), "%s%s.bias", p, lname[k]);
      w[0] = nm[0], b[0] = bn[0], n1[0] = N[k];
      PetscCall(InitLinear(ev, store, lins[k], pre, 1, w, b, n1, K[k], PETSC_FALSE, LM_COL_UNIT));
    }
  }
  PetscCall(Replicated(ev, store, pre, "ln_f.weight", E, -1, &m->lnfw));
  PetscCall(Replicated(ev, store, pre, "ln_f.bias", E, -1, &m->lnfb));
  w[0] = "wte.weight";
  PetscCall(InitLinear(ev, store, &m->head, pre, 1, w, NULL, &V, E, PETSC_TRUE, LM_VOCAB_UNIT));
  PetscFunctionReturn(0);
}

/* Llama's tensors (model.*, nn.Linear layout [N, K]; q, k and v one column-split layer; lm_head or
   the tied embedding) */
static PetscErrorCode InitLlama(MapEvaluator ev, MapStore store)
{
  MapEval_LM   *m = (MapEval_LM *)ev->data_impl;
  MapLMConfig  *c = &m->cfg;
  const int64_t E = c->E, F = c->F, D = c->D, H = c->H, Hkv = c->Hkv, V = c->V;
  char          nm[5][MAP_NAME_LEN];
  const char   *w[3];

  PetscFunctionBegin;
  const char *pre = "model.";
  PetscCall(Tensor(ev, store, pre, "embed_tokens.weight", V, E, &m->embsrc));
  for (int64_t i = 0; i < c->nlayer; i++) {
    LMBlock *B = &m->blk[i];
    char     p[64];
    int64_t  n3[3] = {H * D, Hkv * D, Hkv * D}, n1;
    snprintf(p, sizeof(p), "layers.%lld.", (long long)i);
    snprintf(nm[0], sizeof(nm[0]), "%sinput_layernorm.weight", p);
    PetscCall(Replicated(ev, store, pre, nm[0], E, -1, &B->ln1w));
    snprintf(nm[0], sizeof(nm[0]), "%spost_attention_layernorm.weight", p);
    PetscCall(Replicated(ev, store, pre, nm[0], E, -1, &B->ln2w));
    for (int k = 0; k < 3; k++) snprintf(nm[k], sizeof(nm[k]), "%sself_attn.%c_proj.weight", p, "qkv"[k]), w[k] = nm[k];
    PetscCall(InitLinear(ev, store, &B->qkv, pre, 3, w, NULL, n3, E, PETSC_TRUE, LM_COL_UNIT));
    snprintf(nm[0], sizeof(nm[0]), "%sself_attn.o_proj.weight", p), w[0] = nm[0], n1 = E;
    PetscCall(InitLinear(ev, store, &B->proj, pre, 1, w, NULL, &n1, H * D, PETSC_TRUE, LM_COL_UNIT));
    snprintf(nm[0], sizeof(nm[0]), "%smlp.gate_proj.weight", p), w[0] = nm[0], n1 = F;
    PetscCall(InitLinear(ev, store, &B->fc, pre, 1, w, NULL, &n1, E, PETSC_TRUE, LM_COL_UNIT));
    snprintf(nm[0], sizeof(nm[0]), "%smlp.up_proj.weight", p), w[0] = nm[0];
    PetscCall(InitLinear(ev, store, &B->up, pre, 1, w, NULL, &n1, E, PETSC_TRUE, LM_COL_UNIT));
    snprintf(nm[0], sizeof(nm[0]), "%smlp.down_proj.weight", p), w[0] = nm[0], n1 = E;
    PetscCall(InitLinear(ev, store, &B->down, pre, 1, w, NULL, &n1, F, PETSC_TRUE, LM_COL_UNIT));
  }
  PetscCall(Replicated(ev, store, pre, "norm.weight", E, -1, &m->lnfw));
  const MapStoreTensor *t;
  PetscCall(FindOptional(store, "lm_head.weight", &t));
  if (t && !c->tied) {
    w[0] = "lm_head.weight";
    PetscCall(InitLinear(ev, store, &m->head, "", 1, w, NULL, &V, E, PETSC_TRUE, LM_VOCAB_UNIT));
  } else {
    const char *path;
    PetscCall(MapStoreGetPath(store, &path));
    PetscCheck(c->tied, ev->comm, PETSC_ERR_ARG_WRONG, "store %s: tensor lm_head.weight not found and %s has tie_word_embeddings false", path, c->path);
    w[0] = "embed_tokens.weight";
    PetscCall(InitLinear(ev, store, &m->head, pre, 1, w, NULL, &V, E, PETSC_TRUE, LM_VOCAB_UNIT));
  }
  PetscFunctionReturn(0);
}

/* this rank's vocabulary rows and attention heads, and the rotary table (llama) */
static PetscErrorCode InitSlices(MapEval_LM *m)
{
  MapLMConfig  *c = &m->cfg;
  const int64_t E = c->E, D = c->D, H = c->H, V = c->V;

  PetscFunctionBegin;
  int64_t v0, v1;
  MapLMPart(V, LM_VOCAB_UNIT, m->gsize, m->grank, &v0, &v1);
  /* a tied head holds the same vocabulary slice (both split in LM_VOCAB_UNIT blocks): the lookup
     reads its columns instead of a second copy */
  m->tied_head = m->head.src[0].off == m->embsrc ? PETSC_TRUE : PETSC_FALSE;
  if (!m->tied_head) PetscCall(PetscMalloc1((v1 - v0) * E + 1, &m->emb));
  MapLMPart(H, 1, m->gsize, m->grank, &m->h0, &m->h1);
  PetscCall(PetscMalloc2(m->gsize, &m->hcnt, m->gsize, &m->hcol0));
  for (int r = 0; r < m->gsize; r++) {
    int64_t a, e;
    MapLMPart(H, 1, m->gsize, r, &a, &e);
    m->hcnt[r] = (int)((e - a) * D), m->hcol0[r] = (int)(a * D);
  }
  if (c->arch == MAP_LM_LLAMA) { /* HF: inv_freq_i = theta^(-2i/D), angle = position * inv_freq */
    PetscCall(PetscMalloc1(c->npos * D, &m->rope));
    for (int64_t t = 0; t < c->npos; t++)
      for (int64_t i = 0; i < D / 2; i++) {
        const double a     = (double)t * pow(c->rope_theta, -2.0 * (double)i / (double)D);
        m->rope[t * D + i] = cos(a), m->rope[t * D + D / 2 + i] = sin(a);
      }
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapLMInitModel(MapEvaluator ev, MapStore store)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;

  PetscFunctionBegin;
  PetscCall(PetscCalloc1(m->cfg.nlayer, &m->blk));
  if (m->cfg.arch == MAP_LM_GPT2) PetscCall(InitGPT2(ev, store));
  else PetscCall(InitLlama(ev, store));
  PetscCall(InitSlices(m));
  PetscFunctionReturn(0);
}

/* The redistribution plan: my flat shard [lo,hi) -> the pieces every rank computes with, in rounds
   (round 0: the replicated tensors and the embedding rows; round i + 1: linear layer i) and within a
   round one exchange per pair of ranks, so that the buffers hold one layer's piece for one rank,
   not the model. Segments are ordered by round, then rank (the destination when sending, the
   source when receiving), then the order of RankSegs. */
PetscErrorCode MapLMBuildPlan(MapEvaluator ev)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;
  int         R, nl;
  int64_t    *lohi, me[2] = {m->lo, m->hi}, ns = 0, nr = 0;
  LMSegList   other = {0, 0, 0, NULL}, mine = {0, 0, 0, NULL};
  LMLinear  **lins;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(ev->comm, &R));
  PetscCall(MapLMAllLinears(m, &lins, &nl));
  PetscCall(PetscFree(lins));
  m->nround   = nl + 1;
  const int Q = m->nround;
  PetscCall(PetscMalloc1(2 * R, &lohi));
  PetscCallMPI(MPI_Allgather(me, 2, MPI_INT64_T, lohi, 2, MPI_INT64_T, ev->comm));
  PetscCall(PetscCalloc2(Q * R, &m->scount, Q * R, &m->rcount));
  PetscCall(PetscCalloc4(Q * R, &m->sseg_a, Q * R, &m->sseg_b, Q * R, &m->rseg_a, Q * R, &m->rseg_b));
  PetscCall(RankSegs(m, m->gsize, m->grank, &mine));
  for (int pass = 0; pass < 2; pass++) {
    int64_t is = 0, ir = 0;
    for (int q = 0; q < Q; q++) {
      for (int d = 0; d < R; d++) { /* what d needs from my shard in round q, in d's order */
        const int G = m->G, g = (int)((int64_t)d * G / R);
        int       first = 0, size = 0;
        int64_t   cnt = 0;
        for (int x = 0; x < R; x++)
          if ((int)((int64_t)x * G / R) == g) {
            if (!size) first = x;
            size++;
          }
        PetscCall(RankSegs(m, size, d - first, &other));
        m->sseg_a[q * R + d] = is;
        for (int64_t i = 0; i < other.n; i++) {
          int64_t a = PetscMax(other.s[i].off, m->lo), e = PetscMin(other.s[i].off + other.s[i].len, m->hi);
          if (other.s[i].round != q || a >= e) continue;
          if (pass) m->sseg_off[is] = a - m->lo, m->sseg_len[is] = e - a;
          is++, cnt += e - a;
        }
        m->sseg_b[q * R + d] = is;
        PetscCheck(cnt < INT_MAX, PETSC_COMM_SELF, PETSC_ERR_SUP, "lm evaluator: more than 2^31 parameters of one layer for one rank");
        m->scount[q * R + d] = (int)cnt;
      }
      for (int src = 0; src < R; src++) { /* what I need from src's shard in round q, in my order */
        int64_t cnt            = 0;
        m->rseg_a[q * R + src] = ir;
        for (int64_t i = 0; i < mine.n; i++) {
          int64_t a = PetscMax(mine.s[i].off, lohi[2 * src]), e = PetscMin(mine.s[i].off + mine.s[i].len, lohi[2 * src + 1]);
          if (mine.s[i].round != q || a >= e) continue;
          if (pass) {
            LMSeg *r = &m->rseg[ir];
            *r       = mine.s[i];
            r->len   = e - a;
            if (mine.s[i].dst) r->dst = mine.s[i].dst + (a - mine.s[i].off);
            else r->tidx = mine.s[i].tidx + (a - mine.s[i].off);
          }
          ir++, cnt += e - a;
        }
        m->rseg_b[q * R + src] = ir;
        m->rcount[q * R + src] = (int)cnt;
      }
    }
    if (!pass) {
      ns = is, nr = ir, m->sendmax = m->recvmax = 0;
      for (int i = 0; i < Q * R; i++) m->sendmax = PetscMax(m->sendmax, m->scount[i]), m->recvmax = PetscMax(m->recvmax, m->rcount[i]);
      PetscCall(PetscMalloc3(ns + 1, &m->sseg_off, ns + 1, &m->sseg_len, nr + 1, &m->rseg));
      PetscCall(PetscMalloc2(m->sendmax + 1, &m->sendbuf, m->recvmax + 1, &m->recvbuf));
    }
  }
  PetscCall(PetscFree(other.s));
  PetscCall(PetscFree(mine.s));
  PetscCall(PetscFree(lohi));
  PetscFunctionReturn(0);
}

/* merge at c and move the merged values to my pieces: per round, in step k I send to rank + k and
   receive from rank - k (every receive is posted by the rank the matching send waits for, so no
   step can deadlock); nn.Linear slices [n, K] are transposed to [K, n] for the kernel. With an F32
   basis each piece is merged straight into the send buffer (MapMergeApply is elementwise: the same
   bits as merging the whole shard), so no rank holds a merged copy of its shard. */
PetscErrorCode MapLMRedistribute(MapEvaluator ev, const double *c)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;
  int         R, rank;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(ev->comm, &R));
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  if (m->fused)
    for (int i = 0; i < m->T; i++)
      PetscCheck(!PetscIsInfOrNanReal(c[i]), PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "lm evaluator: coefficient c[%d] = %g is not finite", i, c[i]);
  else {
    PetscCall(MapModelMerge(ev->model, c, m->theta));
    PetscCall(MapModelCheckFinite(ev->model, ev->comm, c, m->theta)); /* never score a NaN model */
  }
  int64_t   bad    = -1; /* fused: the first non-finite merged element of my shard (shard offset) */
  PetscBool badnan = PETSC_FALSE;
  PetscCall(PetscLogEventBegin(MAP_LM_EVENT_Redistribute, 0, 0, 0, 0));
  for (int q = 0; q < m->nround; q++)
    for (int k = 0; k < R; k++) {
      const int d = (rank + k) % R, src = (rank - k + R) % R;
      float    *p = m->sendbuf;
      for (int64_t i = m->sseg_a[q * R + d]; i < m->sseg_b[q * R + d]; i++) {
        const int64_t o = m->sseg_off[i], n = m->sseg_len[i];
        if (m->fused) {
          PetscCall(MapMergeApply(MAP_DTYPE_F32, n, m->pre + o, m->T, m->tau + o, m->nshard, c, p));
          for (int64_t e = 0; e < n; e++)
            if (PetscUnlikely(!isfinite(p[e]))) {
              if (bad < 0 || o + e < bad) bad = o + e, badnan = isnan(p[e]) ? PETSC_TRUE : PETSC_FALSE;
              break;
            }
        } else PetscCall(PetscMemcpy(p, m->theta + o, (size_t)n * sizeof(float)));
        p += n;
      }
      PetscCallMPI(MPI_Sendrecv(m->sendbuf, m->scount[q * R + d], MPI_FLOAT, d, q, m->recvbuf, m->rcount[q * R + src], MPI_FLOAT, src, q, ev->comm,
                                MPI_STATUS_IGNORE));
      p = m->recvbuf;
      for (int64_t i = m->rseg_a[q * R + src]; i < m->rseg_b[q * R + src]; i++) {
        const LMSeg *g = &m->rseg[i];
        if (g->dst) PetscCall(PetscMemcpy(g->dst, p, (size_t)g->len * sizeof(float)));
        else { /* nn.Linear [out, in] rows -> the kernel's [in, out] columns */
          const LMLinear *lin = (const LMLinear *)g->tr;
          const int64_t   n = lin->c1 - lin->c0, K = lin->K;
          int64_t         j = g->tidx / K, kk = g->tidx % K;
          for (int64_t e = 0; e < g->len; e++) {
            lin->W[kk * n + j] = p[e];
            if (++kk == K) kk = 0, j++;
          }
        }
        p += g->len;
      }
    }
  PetscCall(PetscLogEventEnd(MAP_LM_EVENT_Redistribute, 0, 0, 0, 0));
  if (m->fused) PetscCall(MapModelReportNonFinite(ev->model, ev->comm, c, bad, badnan)); /* never score a NaN model */
  PetscFunctionReturn(0);
}
