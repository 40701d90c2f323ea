/* eval_lm: the built-in decoder-only transformer evaluator (-map_eval_type lm; docs/lm.md).

   Ranks:  G groups (-map_eval_groups) split the windows; inside a group every linear layer is split
           by OUTPUT columns (in blocks of 8; the vocabulary in blocks of 64), attention by query
           heads. After each split step the (small) activations are all-gathered, so every output
           element is one full-K chain of FMAs computed by one rank (eval_lm_kernel.c).
   Weights: each rank reads and merges its flat shard of theta_pre and the task vectors (MapModel);
           one MPI_Alltoallv per Evaluate moves the merged values to the column slices each rank
           computes with. No rank ever holds the whole model.
   Bits:   log-softmax over the split vocabulary: the max by gathering per-rank maxima, the sum of
           exponentials over fixed 64-wide vocabulary blocks summed in block order; argmax with the
           lowest index on ties. Per-window sums are reduced in window order. */
#include "evallmimpl.h"
#include <math.h>
#include <sys/stat.h>

#define LM_COL_UNIT   8  /* columns per unit of the output split (one AVX register) */
#define LM_VOCAB_UNIT 64 /* vocabulary ids per block of the distributed softmax */

static int MapDTypeGetSize(MapDType dt) { return dt == MAP_DTYPE_F32 ? 4 : 2; }

static PetscLogEvent EV_Redistribute = 0, EV_Forward = 0, EV_Reduce = 0;

typedef struct {
  int64_t off, n, bias; /* flat offset, columns, flat offset of the bias or -1 */
} LMSrc;

typedef struct {
  char      name[MAP_NAME_LEN];
  int64_t   K, N, unit;
  PetscBool linear; /* sources laid out [N_s, K] (nn.Linear) rather than [K, N_s] (GPT-2 Conv1D) */
  int       nsrc;
  LMSrc     src[3];
  int64_t   c0, c1;        /* my columns */
  float    *W, *b;         /* W [K, c1-c0], b [c1-c0] or NULL */
  int      *cnt, *col0;    /* columns of every group rank */
} LMLinear;

typedef struct {
  float   *ln1w, *ln1b, *ln2w, *ln2b;
  LMLinear qkv, proj, fc, up, down; /* up: llama only */
} LMBlock;

typedef struct {
  int64_t         off, len;
  float          *dst;  /* where the values go, or NULL when transposed into tr->W */
  const void     *tr;   /* an nn.Linear slice [c1-c0, K]: element tidx + e is row (tidx+e)/K, column (tidx+e)%K */
  int64_t         tidx;
  int             round; /* which MPI_Alltoallv of Redistribute moves it */
} LMSeg;

typedef struct {
  int64_t n, cap;
  int     round; /* of the pieces pushed next */
  LMSeg  *s;
} LMSegList;

typedef struct {
  MapLMConfig cfg;
  int         G, color, grank, gsize;
  MPI_Comm    gcomm;
  int64_t     lo, hi, P;
  int64_t     nrepseg;       /* replicated tensors (wpe, norms): each its own buffer */
  LMSeg      *repseg;
  float      *wpe, *lnfw, *lnfb;
  float      *emb;           /* my vocabulary rows of the input embedding [v1-v0, E], unless tied_head */
  PetscBool   tied_head;     /* the logits' weights are the embedding: its rows are head.W's columns */
  int64_t     embsrc;        /* its flat offset */
  LMBlock    *blk;
  LMLinear    head;          /* logits: columns = my vocabulary ids [v0, v1) */
  int        *hcnt, *hcol0;  /* heads of every group rank */
  int64_t     h0, h1;
  double     *rope;          /* [npos, D]: cos then sin per position (llama) */
  /* redistribution: one MPI_Alltoallv per round (round 0: replicated tensors and embedding rows,
     round i + 1: linear layer i), so the buffers hold one layer's slices, not the model */
  int         nround;
  int        *scount, *rcount;                   /* [nround * size]: values to / from each rank per round */
  int64_t    *sseg_a, *sseg_b, *rseg_a, *rseg_b; /* [nround * size]: the segments of each (round, rank) */
  int64_t    *sseg_off, *sseg_len;
  LMSeg      *rseg;
  int64_t     sendmax, recvmax;
  PetscBool   fused;                             /* F32 basis: merged straight into the send buffer */
  const float *pre, *tau;
  int64_t     nshard;
  int         T;
  float      *theta, *sendbuf, *recvbuf;         /* theta: the merged shard, only when not fused */
  /* activations for sequences of up to Lmax tokens */
  int64_t     Lmax, maxN;
  float      *x, *h, *full, *loc, *loc2, *gbuf, *scratch;
  double     *r1, *r1all, *bsum, *bsumall;
  int        *gcnt, *gdsp;
  int32_t    *seq;
  float      *erow;          /* exp of one row of my logits */
  double     *logp;
  int        *hit;
  MapLMTask  *tasks;
  PetscInt    context, maxwin, batch;
  char        config[MAP_PATH_LEN];
} MapEval_LM;

static void Part(int64_t N, int64_t unit, int gs, int gr, int64_t *c0, int64_t *c1)
{
  const int64_t nu = (N + unit - 1) / unit;
  *c0 = PetscMin(N, nu * gr / gs * unit);
  *c1 = PetscMin(N, nu * (gr + 1) / gs * unit);
}

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

static PetscErrorCode AllLinears(MapEval_LM *m, LMLinear ***list, int *n)
{
  PetscFunctionBegin;
  PetscCall(PetscMalloc1(5 * m->cfg.nlayer + 1, list));
  *n = 0;
  for (int64_t i = 0; i < m->cfg.nlayer; i++) {
    LMBlock *B = &m->blk[i];
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
  Part(m->cfg.V, LM_VOCAB_UNIT, gs, gr, &v0, &v1);
  if (!m->tied_head) PetscCall(SegPush(l, m->embsrc + v0 * E, (v1 - v0) * E, mine ? m->emb : NULL, NULL, 0));
  PetscCall(AllLinears(m, &lins, &nl));
  for (int i = 0; i < nl; i++) {
    int64_t c0, c1;
    l->round = i + 1;
    Part(lins[i]->N, lins[i]->unit, gs, gr, &c0, &c1);
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
  Part(lin->N, unit, m->gsize, m->grank, &lin->c0, &lin->c1);
  const int64_t nloc = lin->c1 - lin->c0;
  PetscCall(PetscMalloc1(K * nloc + 1, &lin->W));
  if (bname && bname[0]) PetscCall(PetscMalloc1(nloc + 1, &lin->b));
  PetscCall(PetscMalloc2(m->gsize, &lin->cnt, m->gsize, &lin->col0));
  for (int r = 0; r < m->gsize; r++) {
    int64_t a, e;
    Part(lin->N, unit, m->gsize, r, &a, &e);
    lin->cnt[r] = (int)(e - a), lin->col0[r] = (int)a;
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode FreeLinear(LMLinear *lin)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(lin->W));
  PetscCall(PetscFree(lin->b));
  PetscCall(PetscFree2(lin->cnt, lin->col0));
  PetscFunctionReturn(0);
}

static PetscErrorCode InitModel(MapEvaluator ev, MapStore store)
{
  MapEval_LM  *m = (MapEval_LM *)ev->data_impl;
  MapLMConfig *c = &m->cfg;
  const int64_t E = c->E, F = c->F, D = c->D, H = c->H, Hkv = c->Hkv, V = c->V;
  char         nm[5][MAP_NAME_LEN], bn[3][MAP_NAME_LEN];
  const char  *w[3], *b[3];

  PetscFunctionBegin;
  PetscCall(PetscCalloc1(c->nlayer, &m->blk));
  if (c->arch == MAP_LM_GPT2) {
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
  } else {
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
  }
  int64_t v0, v1;
  Part(V, LM_VOCAB_UNIT, m->gsize, m->grank, &v0, &v1);
  /* a tied head holds the same vocabulary slice (both split in LM_VOCAB_UNIT blocks): the lookup
     reads its columns instead of a second copy */
  m->tied_head = m->head.src[0].off == m->embsrc ? PETSC_TRUE : PETSC_FALSE;
  if (!m->tied_head) PetscCall(PetscMalloc1((v1 - v0) * E + 1, &m->emb));
  Part(H, 1, m->gsize, m->grank, &m->h0, &m->h1);
  PetscCall(PetscMalloc2(m->gsize, &m->hcnt, m->gsize, &m->hcol0));
  for (int r = 0; r < m->gsize; r++) {
    int64_t a, e;
    Part(H, 1, m->gsize, r, &a, &e);
    m->hcnt[r] = (int)((e - a) * D), m->hcol0[r] = (int)(a * D);
  }
  if (c->arch == MAP_LM_LLAMA) { /* HF: inv_freq_i = theta^(-2i/D), angle = position * inv_freq */
    PetscCall(PetscMalloc1(c->npos * D, &m->rope));
    for (int64_t t = 0; t < c->npos; t++)
      for (int64_t i = 0; i < D / 2; i++) {
        const double a = (double)t * pow(c->rope_theta, -2.0 * (double)i / (double)D);
        m->rope[t * D + i] = cos(a), m->rope[t * D + D / 2 + i] = sin(a);
      }
  }
  PetscFunctionReturn(0);
}

/* The redistribution plan: my flat shard [lo,hi) -> the pieces every rank computes with, in rounds
   (round 0: the replicated tensors and the embedding rows; round i + 1: linear layer i) and within a
   round one exchange per pair of ranks, so that the buffers hold one layer's piece for one rank,
   not the model. Segments are ordered by round, then rank (the destination when sending, the
   source when receiving), then the order of RankSegs. */
static PetscErrorCode BuildPlan(MapEvaluator ev)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;
  int         R, nl;
  int64_t    *lohi, me[2] = {m->lo, m->hi}, ns = 0, nr = 0;
  LMSegList   other = {0, 0, 0, NULL}, mine = {0, 0, 0, NULL};
  LMLinear  **lins;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(ev->comm, &R));
  PetscCall(AllLinears(m, &lins, &nl));
  PetscCall(PetscFree(lins));
  m->nround = nl + 1;
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
        int64_t cnt = 0;
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
static PetscErrorCode Redistribute(MapEvaluator ev, const double *c)
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
  PetscCall(PetscLogEventBegin(EV_Redistribute, 0, 0, 0, 0));
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
        }
        else PetscCall(PetscMemcpy(p, m->theta + o, (size_t)n * sizeof(float)));
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
  PetscCall(PetscLogEventEnd(EV_Redistribute, 0, 0, 0, 0));
  if (m->fused) PetscCall(MapModelReportNonFinite(ev->model, ev->comm, c, bad, badnan)); /* never score a NaN model */
  PetscFunctionReturn(0);
}

/* out[L, N] from every group rank's columns loc[L, cnt[r]] starting at column col0[r] */
static PetscErrorCode Gather(MapEval_LM *m, int64_t L, int64_t N, const int *cnt, const int *col0, const float *loc, float *out)
{
  PetscFunctionBegin;
  if (m->gsize == 1) { /* one rank holds every column: no communication, no reordering */
    if (out != loc) PetscCall(PetscMemcpy(out, loc, (size_t)(L * N) * sizeof(float)));
    PetscFunctionReturn(0);
  }
  PetscCall(PetscLogEventBegin(MAP_EVENT_EvalComm, 0, 0, 0, 0));
  for (int r = 0; r < m->gsize; r++) m->gcnt[r] = (int)(L * cnt[r]), m->gdsp[r] = (int)(L * col0[r]);
  PetscCallMPI(MPI_Allgatherv(loc, m->gcnt[m->grank], MPI_FLOAT, m->gbuf, m->gcnt, m->gdsp, MPI_FLOAT, m->gcomm));
  for (int r = 0; r < m->gsize; r++)
    for (int64_t t = 0; t < L; t++) PetscCall(PetscMemcpy(out + t * N + col0[r], m->gbuf + m->gdsp[r] + t * cnt[r], (size_t)cnt[r] * sizeof(float)));
  PetscCall(PetscLogEventEnd(MAP_EVENT_EvalComm, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

/* out[L, N] = in[L, K] W (+ b), split by columns over the group */
static PetscErrorCode Linear(MapEval_LM *m, const LMLinear *lin, int64_t L, const float *in, float *out)
{
  PetscFunctionBegin;
  float *y = m->gsize == 1 ? out : m->loc; /* one rank: straight into the output */
  MapLMGemm(L, lin->K, lin->c1 - lin->c0, in, lin->K, lin->W, lin->b, y, lin->c1 - lin->c0);
  PetscCall(Gather(m, L, lin->N, lin->cnt, lin->col0, y, out));
  PetscFunctionReturn(0);
}

/* log p(target) and whether it is the argmax, for rows [r0, L) of logits split by vocabulary */
static PetscErrorCode LogSoftmax(MapEval_LM *m, int64_t L, int64_t r0, const int32_t *target, double *logp, int *hit)
{
  const LMLinear *hd = &m->head;
  const int64_t   n = hd->c1 - hd->c0, nr = L - r0, gs = m->gsize;
  const int64_t   nb = (n + LM_VOCAB_UNIT - 1) / LM_VOCAB_UNIT;

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(EV_Reduce, 0, 0, 0, 0));
  for (int64_t t = 0; t < nr; t++) { /* local max (lowest index), my target logit, NaN flag */
    const float *z = m->loc + t * n;
    float        mx;
    int64_t      j;
    int          nan;
    double       zt = 0;
    MapLMArgMax(n, z, &mx, &j, &nan);
    if (target[r0 + t] >= hd->c0 && target[r0 + t] < hd->c1) zt = z[target[r0 + t] - hd->c0];
    m->r1[4 * t] = mx, m->r1[4 * t + 1] = j < 0 ? -1.0 : (double)(hd->c0 + j), m->r1[4 * t + 2] = zt, m->r1[4 * t + 3] = nan;
  }
  PetscCallMPI(MPI_Allgather(m->r1, (int)(4 * nr), MPI_DOUBLE, m->r1all, (int)(4 * nr), MPI_DOUBLE, m->gcomm));
  for (int64_t t = 0; t < nr; t++) {
    double M = -INFINITY, arg = -1, zt = 0, nan = 0;
    for (int r = 0; r < gs; r++) { /* ranks hold increasing vocabulary ranges: the first maximum is the lowest index */
      const double *q = m->r1all + (int64_t)r * 4 * nr + 4 * t;
      if (q[0] > M) M = q[0], arg = q[1];
      if (target[r0 + t] >= hd->col0[r] && target[r0 + t] < hd->col0[r] + hd->cnt[r]) zt = q[2];
      nan += q[3];
    }
    m->r1[4 * t] = nan ? NAN : M, m->r1[4 * t + 1] = arg, m->r1[4 * t + 2] = zt;
    MapLMExp(n, m->loc + t * n, (float)M, m->erow); /* M is one of the float logits (or NaN) */
    for (int64_t b = 0; b < nb; b++) { /* exp-sums over fixed 64-id blocks */
      double s = 0;
      for (int64_t j = b * LM_VOCAB_UNIT; j < PetscMin(n, (b + 1) * LM_VOCAB_UNIT); j++) s += m->erow[j];
      m->bsum[t * nb + b] = s;
    }
  }
  for (int r = 0; r < gs; r++) {
    m->gcnt[r] = (int)(nr * ((hd->cnt[r] + LM_VOCAB_UNIT - 1) / LM_VOCAB_UNIT));
    m->gdsp[r] = (int)(nr * (hd->col0[r] / LM_VOCAB_UNIT));
  }
  PetscCallMPI(MPI_Allgatherv(m->bsum, (int)(nr * nb), MPI_DOUBLE, m->bsumall, m->gcnt, m->gdsp, MPI_DOUBLE, m->gcomm));
  for (int64_t t = 0; t < nr; t++) {
    double S = 0;
    for (int r = 0; r < gs; r++) {
      const int64_t nbr = (hd->cnt[r] + LM_VOCAB_UNIT - 1) / LM_VOCAB_UNIT;
      for (int64_t b = 0; b < nbr; b++) S += m->bsumall[m->gdsp[r] + t * nbr + b];
    }
    logp[r0 + t] = m->r1[4 * t + 2] - (m->r1[4 * t] + log(S));
    hit[r0 + t]  = (int64_t)m->r1[4 * t + 1] == target[r0 + t];
  }
  PetscCall(PetscLogEventEnd(EV_Reduce, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

/* nseq sequences of L ids each (positions 0..L-1 in each): logp/hit of target[r] for rows r >= r0
   (r0 > 0 only with one sequence). Rows are independent in every kernel, so how many windows go
   through together (-map_lm_batch) changes no bit. */
static PetscErrorCode Forward(MapEval_LM *m, int64_t nseq, int64_t L, const int32_t *ids, int64_t r0, const int32_t *target, double *logp, int *hit)
{
  const MapLMConfig *c = &m->cfg;
  const int64_t      E = c->E, D = c->D, H = c->H, Hkv = c->Hkv, F = c->F, R = nseq * L;
  const PetscBool    gpt2 = c->arch == MAP_LM_GPT2 ? PETSC_TRUE : PETSC_FALSE;
  float             *x = m->x, *h = m->h, *full = m->full, *loc = m->loc;
  int64_t            v0, v1, k = 0;

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(EV_Forward, 0, 0, 0, 0));
  /* embedding rows live with the rank of their vocabulary slice: gathered in token order */
  Part(c->V, LM_VOCAB_UNIT, m->gsize, m->grank, &v0, &v1);
  for (int64_t t = 0; t < R; t++)
    if (ids[t] >= v0 && ids[t] < v1) {
      if (m->tied_head)
        for (int64_t i = 0, nv = v1 - v0; i < E; i++) loc[k * E + i] = m->head.W[i * nv + ids[t] - v0];
      else PetscCall(PetscMemcpy(loc + k * E, m->emb + (ids[t] - v0) * E, (size_t)E * sizeof(float)));
      k++;
    }
  for (int r = 0; r < m->gsize; r++) {
    int64_t a, e, n = 0;
    Part(c->V, LM_VOCAB_UNIT, m->gsize, r, &a, &e);
    for (int64_t t = 0; t < R; t++) n += ids[t] >= a && ids[t] < e;
    m->gcnt[r] = (int)(n * E), m->gdsp[r] = r ? m->gdsp[r - 1] + m->gcnt[r - 1] : 0;
  }
  PetscCallMPI(MPI_Allgatherv(loc, (int)(k * E), MPI_FLOAT, m->gbuf, m->gcnt, m->gdsp, MPI_FLOAT, m->gcomm));
  for (int r = 0; r < m->gsize; r++) {
    int64_t a, e, j = 0;
    Part(c->V, LM_VOCAB_UNIT, m->gsize, r, &a, &e);
    for (int64_t t = 0; t < R; t++)
      if (ids[t] >= a && ids[t] < e) PetscCall(PetscMemcpy(x + t * E, m->gbuf + m->gdsp[r] + (j++) * E, (size_t)E * sizeof(float)));
  }
  if (gpt2)
    for (int64_t q = 0; q < nseq; q++)
      for (int64_t i = 0; i < L * E; i++) x[q * L * E + i] += m->wpe[i];
  for (int64_t l = 0; l < c->nlayer; l++) {
    const LMBlock *B = &m->blk[l];
    const int64_t  Nq = B->qkv.N, na = (m->h1 - m->h0) * D;
    if (gpt2) MapLMLayerNorm(R, E, x, B->ln1w, B->ln1b, c->eps, h);
    else MapLMRMSNorm(R, E, x, B->ln1w, c->eps, h);
    PetscCall(Linear(m, &B->qkv, R, h, full));
    for (int64_t q = 0; q < nseq; q++) {
      float *fq = full + q * L * Nq;
      if (!gpt2) {
        MapLMRope(L, D, H, fq, Nq, 0, m->rope);
        MapLMRope(L, D, Hkv, fq, Nq, H * D, m->rope);
      }
      MapLMAttention(L, D, H, Hkv, m->h0, m->h1, fq, Nq, 0, H * D, (H + Hkv) * D, loc + q * L * na, m->scratch);
    }
    PetscCall(Gather(m, R, H * D, m->hcnt, m->hcol0, loc, h));
    PetscCall(Linear(m, &B->proj, R, h, full));
    for (int64_t i = 0; i < R * E; i++) x[i] += full[i];
    if (gpt2) MapLMLayerNorm(R, E, x, B->ln2w, B->ln2b, c->eps, h);
    else MapLMRMSNorm(R, E, x, B->ln2w, c->eps, h);
    const int64_t nf = B->fc.c1 - B->fc.c0;
    MapLMGemm(R, E, nf, h, E, B->fc.W, B->fc.b, loc, nf);
    if (gpt2) MapLMGelu(R * nf, loc, c->gelu_erf);
    else {
      MapLMGemm(R, E, nf, h, E, B->up.W, NULL, m->loc2, nf);
      MapLMSwiGLU(R * nf, loc, m->loc2, loc);
    }
    PetscCall(Gather(m, R, F, B->fc.cnt, B->fc.col0, loc, full));
    PetscCall(Linear(m, &B->down, R, full, h));
    for (int64_t i = 0; i < R * E; i++) x[i] += h[i];
  }
  if (gpt2) MapLMLayerNorm(R - r0, E, x + r0 * E, m->lnfw, m->lnfb, c->eps, h);
  else MapLMRMSNorm(R - r0, E, x + r0 * E, m->lnfw, c->eps, h);
  MapLMGemm(R - r0, E, m->head.c1 - m->head.c0, h, E, m->head.W, NULL, loc, m->head.c1 - m->head.c0);
  PetscCall(PetscLogEventEnd(EV_Forward, 0, 0, 0, 0));
  PetscCall(LogSoftmax(m, R, r0, target, logp, hit));
  PetscFunctionReturn(0);
}

/* per-item (window or question) loss and correct count, summed in item order */
static PetscErrorCode EvaluateTask(MapEvaluator ev, int ti, MapTaskMetrics *metric)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;
  MapLMTask  *task = &m->tasks[ti];
  double     *res;
  double      loss = 0, correct = 0;

  PetscFunctionBegin;
  PetscCall(PetscCalloc1(2 * task->nitem, &res));
  for (int64_t i0 = task->i0; !task->mc && i0 < task->i1; i0 += m->batch) { /* windows, m->batch at a time */
    const int64_t  nw = PetscMin((int64_t)m->batch, task->i1 - i0), L = task->L;
    const int32_t *ids = task->tok + (i0 - task->i0) * L;
    /* window w's targets are ids[wL+1 .. wL+L]: the next window's first id is the last target */
    PetscCall(PetscMemcpy(m->seq, ids + 1, (size_t)(nw * L) * sizeof(int32_t)));
    PetscCall(Forward(m, nw, L, ids, 0, m->seq, m->logp, m->hit));
    for (int64_t w = 0; w < nw && !m->grank; w++) {
      double nll = 0, hits = 0;
      for (int64_t t = 0; t < L; t++) nll -= m->logp[w * L + t], hits += m->hit[w * L + t];
      res[2 * (i0 + w)] = nll, res[2 * (i0 + w) + 1] = hits;
    }
  }
  for (int64_t i = task->i0; task->mc && i < task->i1; i++) {
    double nll = 0, hits = 0;
    {
      double best = -INFINITY, right = 0;
      int    pick = -1;
      for (int ch = 0; ch < task->nch[i]; ch++) {
        const int64_t j = task->choff[i] + ch, nc = task->nctx[i], n = nc + task->chlen[j];
        double        ll = 0;
        PetscCall(PetscMemcpy(m->seq, task->tok + task->ctxoff[i], (size_t)nc * sizeof(int32_t)));
        PetscCall(PetscMemcpy(m->seq + nc, task->tok + task->chstart[j], (size_t)task->chlen[j] * sizeof(int32_t)));
        PetscCall(Forward(m, 1, n - 1, m->seq, nc - 1, m->seq + 1, m->logp, m->hit));
        for (int64_t t = nc - 1; t < n - 1; t++) ll += m->logp[t];
        if (ll > best || pick < 0) best = ll, pick = ch;
        if (ch == task->answer[i]) right = ll;
      }
      nll = -right, hits = pick == task->answer[i];
    }
    if (!m->grank) res[2 * i] = nll, res[2 * i + 1] = hits;
  }
  /* one non-zero contribution per entry: the sum is exact in any order */
  PetscCall(PetscLogEventBegin(EV_Reduce, 0, 0, 0, 0));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, res, (int)(2 * task->nitem), MPI_DOUBLE, MPI_SUM, ev->comm));
  PetscCall(PetscLogEventEnd(EV_Reduce, 0, 0, 0, 0));
  for (int64_t i = 0; i < task->nitem; i++) loss += res[2 * i], correct += res[2 * i + 1];
  const int64_t count = task->mc ? task->nitem : task->nitem * task->L;
  metric->loss     = loss / (double)count;
  metric->correct  = (int64_t)correct;
  metric->count    = count;
  metric->accuracy = correct / (double)count;
  PetscCall(PetscFree(res));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorEvaluate_LM(MapEvaluator ev, const double *c, MapTaskMetrics *metrics)
{
  PetscFunctionBegin;
  PetscCall(Redistribute(ev, c));
  for (int t = 0; t < ev->T; t++)
    if (MapEvalWanted(ev, t)) PetscCall(EvaluateTask(ev, t, &metrics[t]));
  PetscFunctionReturn(0);
}

/* the config.json beside the store's pretrained checkpoint, if recorded and present */
static PetscErrorCode DefaultConfig(MapStore store, char *path, size_t len)
{
  char       *model = NULL;
  struct stat st;

  PetscFunctionBegin;
  path[0] = 0;
  PetscCall(MapStoreGetAttribute(store, "pretrained.model", &model));
  if (!model) PetscFunctionReturn(0);
  if (!stat(model, &st) && S_ISDIR(st.st_mode)) snprintf(path, len, "%s/config.json", model);
  else {
    char *slash = strrchr(model, '/');
    if (slash) *slash = 0;
    snprintf(path, len, "%s/config.json", slash ? model : ".");
  }
  if (stat(path, &st)) path[0] = 0;
  PetscCall(PetscFree(model));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorSetUp_LM(MapEvaluator ev)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;
  MapStore    store;
  MapLayout   layout;
  int         R, rank;
  const char *spath;

  PetscFunctionBegin;
  PetscCheck(ev->model, ev->comm, PETSC_ERR_ARG_NULL, "the lm evaluator needs a model (-map_store)");
  PetscCall(MapModelGetStore(ev->model, &store));
  PetscCall(MapStoreGetPath(store, &spath));
  PetscCall(MapModelGetLayout(ev->model, &layout));
  PetscCallMPI(MPI_Comm_size(ev->comm, &R));
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  PetscCheck(layout.size == R, ev->comm, PETSC_ERR_ARG_INCOMP, "lm evaluator: the model is sharded over %d ranks, the evaluator has %d", layout.size, R);
  m->lo = layout.lo, m->hi = layout.hi, m->P = layout.P;
  if (!m->config[0]) PetscCall(DefaultConfig(store, m->config, sizeof(m->config)));
  PetscCheck(m->config[0], ev->comm, PETSC_ERR_ARG_WRONG,
             "lm evaluator: give -map_lm_config (the checkpoint folder or its config.json): store %s records no pretrained folder with a config.json", spath);
  PetscCall(MapLMConfigRead(ev->comm, m->config, &m->cfg));
  m->G = ev->groups ? (int)ev->groups : 1;
  PetscCheck(m->G >= 1 && m->G <= R, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_eval_groups %d: must be between 1 and the %d ranks", m->G, R);
  m->color = (int)((int64_t)rank * m->G / R);
  PetscCallMPI(MPI_Comm_split(ev->comm, m->color, rank, &m->gcomm));
  PetscCallMPI(MPI_Comm_rank(m->gcomm, &m->grank));
  PetscCallMPI(MPI_Comm_size(m->gcomm, &m->gsize));
  PetscCall(InitModel(ev, store));
  PetscCall(BuildPlan(ev));
  { /* an F32 basis of T task vectors taking c whole is merged piece by piece (Redistribute) */
    MapDType dt;
    int           ncoef;
    PetscCall(MapModelGetDType(ev->model, &dt));
    PetscCall(MapModelGetNumTasks(ev->model, &m->T));
    PetscCall(MapModelGetNumCoefficients(ev->model, &ncoef));
    m->fused = dt == MAP_DTYPE_F32 && ncoef == m->T ? PETSC_TRUE : PETSC_FALSE;
    if (m->fused) PetscCall(MapModelGetShards(ev->model, &m->nshard, &m->pre, &m->tau));
    else PetscCall(PetscMalloc1(m->hi - m->lo + 1, &m->theta));
  }

  const int L = m->context ? (int)m->context : (int)m->cfg.npos;
  PetscCheck(L >= 1, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_lm_context %d: must be >= 1", L);
  PetscCall(PetscCalloc1(ev->T, &m->tasks));
  m->Lmax = (int64_t)L * m->batch;
  int64_t Lseq = L;
  for (int t = 0; t < ev->T; t++) {
    MapLMTask *k = &m->tasks[t];
    PetscCall(MapLMTaskLoad(ev->comm, ev->data[t], m->cfg.V, m->cfg.npos, L, m->maxwin, m->G, m->color, k));
    if (k->mc)
      for (int64_t i = 0; i < k->nitem; i++)
        for (int ch = 0; ch < k->nch[i]; ch++) Lseq = PetscMax(Lseq, k->nctx[i] + k->chlen[k->choff[i] + ch]);
  }
  /* activation buffers */
  LMLinear **lins;
  int        nl;
  int64_t    maxN = PetscMax(m->cfg.E, m->cfg.H * m->cfg.D), maxloc = maxN;
  PetscCall(AllLinears(m, &lins, &nl));
  for (int i = 0; i < nl; i++) {
    if (lins[i] != &m->head) maxN = PetscMax(maxN, lins[i]->N);
    maxloc = PetscMax(maxloc, lins[i]->c1 - lins[i]->c0);
  }
  PetscCall(PetscFree(lins));
  m->Lmax         = PetscMax(m->Lmax, Lseq);
  const int64_t Lm = m->Lmax, nb = (m->head.c1 - m->head.c0 + LM_VOCAB_UNIT - 1) / LM_VOCAB_UNIT + 1;
  const int64_t nball = (m->cfg.V + LM_VOCAB_UNIT - 1) / LM_VOCAB_UNIT + 1;
  PetscCheck(Lm * PetscMax(maxN, m->cfg.V) < INT_MAX, ev->comm, PETSC_ERR_SUP, "lm evaluator: %" PetscInt64_FMT " tokens x width %" PetscInt64_FMT " exceeds 2^31", Lm, maxN);
  m->maxN = maxN;
  PetscCall(PetscMalloc6(Lm * m->cfg.E, &m->x, Lm * maxN, &m->h, Lm * maxN, &m->full, Lm * maxloc, &m->loc, Lm * maxloc, &m->loc2,
                         Lm * PetscMax(maxN, m->cfg.E), &m->gbuf));
  PetscCall(PetscMalloc1(Lseq * Lseq + 2 * Lseq * m->cfg.D + 1, &m->scratch));
  PetscCall(PetscMalloc1(m->head.c1 - m->head.c0 + 1, &m->erow));
  PetscCall(PetscMalloc4(4 * Lm, &m->r1, 4 * Lm * m->gsize, &m->r1all, Lm * nb, &m->bsum, Lm * nball, &m->bsumall));
  PetscCall(PetscMalloc5(m->gsize, &m->gcnt, m->gsize, &m->gdsp, Lm + 1, &m->seq, Lm + 1, &m->logp, Lm + 1, &m->hit));
  { /* what this rank holds, for docs/lm.md's memory model (-info): the basis shards belong to the MapModel */
    MapDType      dt;
    int           Tm;
    int64_t       w = 0, sent = 0, recv = 0, acts;
    PetscCall(MapModelGetDType(ev->model, &dt));
    PetscCall(MapModelGetNumTasks(ev->model, &Tm));
    PetscCall(AllLinears(m, &lins, &nl));
    for (int i = 0; i < nl; i++) w += lins[i]->K * (lins[i]->c1 - lins[i]->c0) * 1 + (lins[i]->b ? lins[i]->c1 - lins[i]->c0 : 0);
    PetscCall(PetscFree(lins));
    for (int64_t i = 0; i < m->nrepseg; i++) w += m->repseg[i].len;
    if (!m->tied_head) w += (m->head.c1 - m->head.c0) * m->cfg.E; /* embedding rows */
    sent = m->sendmax, recv = m->recvmax;
    acts = Lm * (m->cfg.E + 2 * maxN + 2 * maxloc + PetscMax(maxN, m->cfg.E));
    PetscCall(PetscInfo(NULL, "lm evaluator memory [rank %d]: basis shards %lld B ((T+1) x %lld x %d B), merged shard %lld B, send/recv %lld/%lld B, "
                        "tensor-parallel weights %lld B, activations %lld B\n", rank, (long long)((Tm + 1) * (m->hi - m->lo) * (int64_t)MapDTypeGetSize(dt)),
                        (long long)(m->hi - m->lo), (int)MapDTypeGetSize(dt), (long long)(m->theta ? 4 * (m->hi - m->lo) : 0), (long long)(4 * sent), (long long)(4 * recv),
                        (long long)(4 * w), (long long)(4 * acts)));
  }
  PetscCall(PetscInfo(NULL, "lm evaluator: %s, %lld layers, width %lld, %lld heads (%lld kv), vocab %lld; %d group(s) of %d rank(s); context %d\n",
                      m->cfg.arch == MAP_LM_GPT2 ? "gpt2" : "llama", (long long)m->cfg.nlayer, (long long)m->cfg.E, (long long)m->cfg.H,
                      (long long)m->cfg.Hkv, (long long)m->cfg.V, m->G, m->gsize, L));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorDestroy_LM(MapEvaluator ev)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;

  PetscFunctionBegin;
  if (!m) PetscFunctionReturn(0);
  if (m->blk) {
    LMLinear **lins;
    int        nl;
    PetscCall(AllLinears(m, &lins, &nl));
    for (int i = 0; i < nl; i++) PetscCall(FreeLinear(lins[i]));
    PetscCall(PetscFree(lins));
  }
  for (int64_t i = 0; i < m->nrepseg; i++) PetscCall(PetscFree(m->repseg[i].dst));
  PetscCall(PetscFree(m->repseg));
  PetscCall(PetscFree(m->blk));
  PetscCall(PetscFree(m->emb));
  PetscCall(PetscFree2(m->hcnt, m->hcol0));
  PetscCall(PetscFree(m->rope));
  PetscCall(PetscFree2(m->scount, m->rcount));
  PetscCall(PetscFree4(m->sseg_a, m->sseg_b, m->rseg_a, m->rseg_b));
  PetscCall(PetscFree3(m->sseg_off, m->sseg_len, m->rseg));
  PetscCall(PetscFree2(m->sendbuf, m->recvbuf));
  PetscCall(PetscFree(m->theta));
  if (m->tasks)
    for (int t = 0; t < ev->T; t++) PetscCall(MapLMTaskDestroy(&m->tasks[t]));
  PetscCall(PetscFree(m->tasks));
  PetscCall(PetscFree6(m->x, m->h, m->full, m->loc, m->loc2, m->gbuf));
  PetscCall(PetscFree(m->scratch));
  PetscCall(PetscFree(m->erow));
  PetscCall(PetscFree4(m->r1, m->r1all, m->bsum, m->bsumall));
  PetscCall(PetscFree5(m->gcnt, m->gdsp, m->seq, m->logp, m->hit));
  if (m->gcomm != MPI_COMM_NULL && m->gcomm) PetscCallMPI(MPI_Comm_free(&m->gcomm));
  PetscCall(PetscFree(ev->data_impl));
  PetscFunctionReturn(0);
}

/* -map_lm_config, -map_lm_context, -map_lm_max_windows */
static PetscErrorCode MapEvaluatorSetFromOptions_LM(MapEvaluator ev)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;

  PetscFunctionBegin;
  PetscOptionsBegin(ev->comm, NULL, "Language-model evaluator options", "MapEvaluator");
  PetscCall(PetscOptionsString("-map_lm_config", "lm: Hugging Face checkpoint folder or its config.json (default: the store's pretrained folder)", "",
                               m->config, m->config, sizeof(m->config), NULL));
  PetscCall(PetscOptionsInt("-map_lm_context", "lm: tokens per window L of .bin task files (default: the model's positions)", "", m->context,
                            &m->context, NULL));
  PetscCall(PetscOptionsInt("-map_lm_max_windows", "lm: score at most this many windows per .bin task file, the first ones (0 = all)", "",
                            m->maxwin, &m->maxwin, NULL));
  PetscCall(PetscOptionsInt("-map_lm_batch", "lm: windows per forward pass (throughput only: the metrics are the same bits for any value)", "",
                            m->batch, &m->batch, NULL));
  PetscBool generic = PETSC_FALSE;
  PetscCall(PetscOptionsBool("-map_lm_kernel_generic", "lm: the portable fmaf kernels instead of AVX-512/AVX2+FMA (tests: the same bits, slower)", "",
                             generic, &generic, NULL));
  MapLMForceGeneric(generic);
  PetscOptionsEnd();
  PetscCheck(m->context >= 0, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_lm_context %" PetscInt_FMT ": must be >= 1 (0: the model's positions)", m->context);
  PetscCheck(m->batch >= 1, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_lm_batch %" PetscInt_FMT ": must be >= 1", m->batch);
  PetscCheck(m->maxwin >= 0, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_lm_max_windows %" PetscInt_FMT ": must be >= 0", m->maxwin);
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorView_LM(MapEvaluator ev, PetscViewer viewer)
{
  MapEval_LM        *m = (MapEval_LM *)ev->data_impl;
  const MapLMConfig *c = &m->cfg;

  PetscFunctionBegin;
  PetscCall(PetscViewerASCIIPrintf(viewer, "windows: context %" PetscInt_FMT " (-map_lm_context, 0 = the model's positions), at most %" PetscInt_FMT
                                   " per task (-map_lm_max_windows, 0 = all), %" PetscInt_FMT " per forward pass (-map_lm_batch)\n",
                                   m->context, m->maxwin, m->batch));
  if (!ev->setupcalled) PetscFunctionReturn(0);
  PetscCall(PetscViewerASCIIPrintf(viewer, "model: %s (%s): vocabulary %lld, width %lld, %lld layers, %lld heads (%lld key/value), MLP %lld, %lld positions\n",
                                   c->arch == MAP_LM_GPT2 ? "gpt2" : "llama", c->path, (long long)c->V, (long long)c->E, (long long)c->nlayer,
                                   (long long)c->H, (long long)c->Hkv, (long long)c->F, (long long)c->npos));
  PetscCall(PetscViewerASCIIPrintf(viewer, "rank groups: %d of %d rank(s) each; each splits every layer by output columns\n", m->G, m->gsize));
  for (int t = 0; t < ev->T; t++)
    PetscCall(PetscViewerASCIIPrintf(viewer, "task %s: %lld %s\n", ev->tasks[t], (long long)m->tasks[t].nitem,
                                     m->tasks[t].mc ? "multiple-choice questions" : "windows"));
  PetscFunctionReturn(0);
}

PetscErrorCode MapEvaluatorCreate_LM(MapEvaluator ev)
{
  MapEval_LM *m;

  PetscFunctionBegin;
  if (!EV_Forward) {
    PetscCall(PetscLogEventRegister("MapLMRedistrib", MAP_CLASSID, &EV_Redistribute));
    PetscCall(PetscLogEventRegister("MapLMForward", MAP_CLASSID, &EV_Forward));
    PetscCall(PetscLogEventRegister("MapLMReduce", MAP_CLASSID, &EV_Reduce));
  }
  PetscCall(PetscNew(&m));
  m->gcomm         = MPI_COMM_NULL;
  m->batch         = 8;
  ev->data_impl    = m;
  ev->ops.setup    = MapEvaluatorSetUp_LM;
  ev->ops.evaluate = MapEvaluatorEvaluate_LM;
  ev->ops.destroy  = MapEvaluatorDestroy_LM;
  ev->ops.view     = MapEvaluatorView_LM;
  PetscCall(MapEvaluatorSetFromOptions_LM(ev));
  PetscFunctionReturn(0);
}
