/* Private to the lm evaluator (eval_lm*.c): a decoder-only transformer (GPT-2 or Llama family),
   tensor-parallel over a rank group. See docs/lm.md for the design and why it gives the same bits
   at every rank count. */
#ifndef MAPMERGE_EVALLMIMPL_H
#define MAPMERGE_EVALLMIMPL_H

#include "evalimpl.h"

typedef enum { MAP_LM_GPT2  = 0,
               MAP_LM_LLAMA = 1 } MapLMArch;

/* The architecture, from the checkpoint's Hugging Face config.json. */
typedef struct {
  MapLMArch arch;
  int64_t   V, E, nlayer, H, Hkv, D, F, npos; /* vocab, width, layers, heads, kv heads, head dim, MLP width, positions */
  double    eps;                              /* LayerNorm / RMSNorm epsilon */
  double    rope_theta;                       /* llama */
  PetscBool tied;                             /* llama: lm_head is embed_tokens */
  PetscBool gelu_erf;                         /* gpt2: exact GELU ("gelu") instead of the tanh form */
  char      path[MAP_PATH_LEN];               /* config.json */
} MapLMConfig;

/* MapLMConfigRead - parses config.json (path: the file or its folder); an unknown model_type or a
   missing/invalid key is an error naming the file. Collective (every rank reads the small file). */
PetscErrorCode MapLMConfigRead(MPI_Comm comm, const char *path, MapLMConfig *cfg);

/* One task's evaluation data: token windows (llm.c .bin) or multiple-choice items (.jsonl). */
typedef struct {
  PetscBool mc;
  int64_t   nitem;   /* windows or questions */
  int64_t   i0, i1;  /* my group's items */
  int       L;       /* window length (bin) */
  int32_t  *tok;     /* bin: my group's tokens [(i1-i0)*L + 1]; mc: all items' tokens */
  int64_t  *ctxoff;  /* mc: per item: offset of the context in tok, then per choice offsets */
  int      *nctx;    /* mc: context length per item */
  int      *nch;     /* mc: choices per item */
  int64_t  *choff;   /* mc: start of item i's choice table in chlen/chstart ([sum nch]) */
  int64_t  *chstart; /* mc: offset of each choice's tokens in tok */
  int      *chlen;   /* mc: tokens per choice */
  int      *answer;  /* mc: right choice per item */
} MapLMTask;

/* MapLMTaskLoad - reads a task file for the items [i0,i1) of group g of G (.bin: windows of L
   tokens, at most maxwin; .jsonl: multiple choice); ids >= V, empty files, bad headers and
   sequences longer than npos + 1 are errors naming the file and the values. Collective. */
PetscErrorCode MapLMTaskLoad(MPI_Comm comm, const char *file, int64_t V, int64_t npos, int L, int64_t maxwin, int G, int g,
                             MapLMTask *task);
PetscErrorCode MapLMTaskDestroy(MapLMTask *task);

/* ---- kernels (eval_lm_kernel.c): the same bits on every path ---- */

/* MapLMGemm - Y[t][j] = b[j] + sum_k X[t][k] W[k][j] (b may be NULL) for t < L, j < n, each element
   accumulated by fused multiply-adds in k order from 0, whatever n: the bits of one element do not
   depend on how many columns a rank holds. AVX-512F or AVX2+FMA when the CPU has it, else fmaf (the same
   correctly rounded operation). */
void MapLMGemm(int64_t L, int64_t K, int64_t n, const float *X, int64_t ldx, const float *W, const float *b, float *Y, int64_t ldy);
/* MapLMForceGeneric - tests: the portable fmaf kernels even where AVX-512/AVX2+FMA is available */
void MapLMForceGeneric(PetscBool flg);

void MapLMLayerNorm(int64_t L, int64_t E, const float *x, const float *w, const float *b, double eps, float *y);
void MapLMRMSNorm(int64_t L, int64_t E, const float *x, const float *w, double eps, float *y);
void MapLMGelu(int64_t n, float *x, PetscBool erf_form);
/* y[i] = exp(x[i] - shift) in float (y may be x); the same bits on the AVX2 and the portable path */
void MapLMExp(int64_t n, const float *x, float shift, float *y);
/* the largest non-NaN z[j] and its first index (-1, -Inf when none exceeds -Inf), and whether
   any z[j] is NaN */
void MapLMArgMax(int64_t n, const float *z, float *mx, int64_t *arg, int *nan);
/* y[i] = silu(g[i]) * u[i] */
void MapLMSwiGLU(int64_t n, const float *g, const float *u, float *y);
/* causal attention of query heads [h0,h1) over L positions; qkv rows of width ldq: q of head h at
   qoff + h*D, k and v of its kv head at koff/voff + (h/(H/Hkv))*D; out [L, (h1-h0)*D];
   scratch: L*L + 2*L*D floats */
void MapLMAttention(int64_t L, int64_t D, int64_t H, int64_t Hkv, int64_t h0, int64_t h1, const float *qkv, int64_t ldq, int64_t qoff,
                    int64_t koff, int64_t voff, float *out, float *scratch);
/* HF rotate_half RoPE on nh heads of width D starting at column off of rows of width ld */
void MapLMRope(int64_t L, int64_t D, int64_t nh, float *x, int64_t ld, int64_t off, const double *cs);

/* ---- the evaluator object (eval_lm.c) and its parts ---- */

#define LM_COL_UNIT   8  /* columns per unit of the output split (one AVX register) */
#define LM_VOCAB_UNIT 64 /* vocabulary ids per block of the distributed softmax */

/* profiling events of the lm evaluator (registered by MapEvaluatorCreate_LM) */
extern PetscLogEvent MAP_LM_EVENT_Redistribute, MAP_LM_EVENT_Forward, MAP_LM_EVENT_Reduce;

typedef struct {
  int64_t off, n, bias; /* flat offset, columns, flat offset of the bias or -1 */
} LMSrc;

typedef struct {
  char      name[MAP_NAME_LEN];
  int64_t   K, N, unit;
  PetscBool linear; /* sources laid out [N_s, K] (nn.Linear) rather than [K, N_s] (GPT-2 Conv1D) */
  int       nsrc;
  LMSrc     src[3];
  int64_t   c0, c1;     /* my columns */
  float    *W, *b;      /* W [K, c1-c0], b [c1-c0] or NULL */
  int      *cnt, *col0; /* columns of every group rank */
} LMLinear;

typedef struct {
  float   *ln1w, *ln1b, *ln2w, *ln2b;
  LMLinear qkv, proj, fc, up, down; /* up: llama only */
} LMBlock;

typedef struct {
  int64_t     off, len;
  float      *dst; /* where the values go, or NULL when transposed into tr->W */
  const void *tr;  /* an nn.Linear slice [c1-c0, K]: element tidx + e is row (tidx+e)/K, column (tidx+e)%K */
  int64_t     tidx;
  int         round; /* which MPI_Alltoallv of Redistribute moves it */
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
  int64_t     nrepseg; /* replicated tensors (wpe, norms): each its own buffer */
  LMSeg      *repseg;
  float      *wpe, *lnfw, *lnfb;
  float      *emb;       /* my vocabulary rows of the input embedding [v1-v0, E], unless tied_head */
  PetscBool   tied_head; /* the logits' weights are the embedding: its rows are head.W's columns */
  int64_t     embsrc;    /* its flat offset */
  LMBlock    *blk;
  LMLinear    head;         /* logits: columns = my vocabulary ids [v0, v1) */
  int        *hcnt, *hcol0; /* heads of every group rank */
  int64_t     h0, h1;
  double     *rope; /* [npos, D]: cos then sin per position (llama) */
  /* redistribution: one MPI_Alltoallv per round (round 0: replicated tensors and embedding rows,
     round i + 1: linear layer i), so the buffers hold one layer's slices, not the model */
  int          nround;
  int         *scount, *rcount;                   /* [nround * size]: values to / from each rank per round */
  int64_t     *sseg_a, *sseg_b, *rseg_a, *rseg_b; /* [nround * size]: the segments of each (round, rank) */
  int64_t     *sseg_off, *sseg_len;
  LMSeg       *rseg;
  int64_t      sendmax, recvmax;
  PetscBool    fused; /* F32 basis: merged straight into the send buffer */
  const float *pre, *tau;
  int64_t      nshard;
  int          T;
  float       *theta, *sendbuf, *recvbuf; /* theta: the merged shard, only when not fused */
  /* activations for sequences of up to Lmax tokens */
  int64_t    Lmax, maxN;
  float     *x, *h, *full, *loc, *loc2, *gbuf, *scratch;
  double    *r1, *r1all, *bsum, *bsumall;
  int       *gcnt, *gdsp;
  int32_t   *seq;
  float     *erow; /* exp of one row of my logits */
  double    *logp;
  int       *hit;
  MapLMTask *tasks;
  PetscInt   context, maxwin, batch;
  char       config[MAP_PATH_LEN];
} MapEval_LM;

/* the units [c0, c1) of N items (in blocks of unit) that group rank gr of gs owns: balanced */
static inline void MapLMPart(int64_t N, int64_t unit, int gs, int gr, int64_t *c0, int64_t *c1)
{
  const int64_t nu = (N + unit - 1) / unit;
  *c0              = PetscMin(N, nu * gr / gs * unit);
  *c1              = PetscMin(N, nu * (gr + 1) / gs * unit);
}

/* ---- weights (eval_lm_weights.c) ---- */

/* MapLMInitModel - finds every tensor of the architecture in the store, reads the replicated ones and
   lays out this rank's column slices of the linear layers, heads and vocabulary. Collective. */
PetscErrorCode MapLMInitModel(MapEvaluator ev, MapStore store);
/* MapLMBuildPlan - the redistribution plan from this rank's flat shard to the slices every rank
   computes with (one MPI_Alltoallv per round). Collective. */
PetscErrorCode MapLMBuildPlan(MapEvaluator ev);
/* MapLMRedistribute - merges at c and moves the merged values to the slices (the plan's exchanges).
   Collective. */
PetscErrorCode MapLMRedistribute(MapEvaluator ev, const double *c);
/* every linear layer of the model (PetscFree the array) */
PetscErrorCode MapLMAllLinears(MapEval_LM *m, LMLinear ***list, int *n);
PetscErrorCode MapLMFreeLinear(LMLinear *lin);

/* ---- forward pass (eval_lm_forward.c) ---- */

/* MapLMEvaluateTask - loss and accuracy of task ti at the merged weights, summed in item order.
   Collective. */
PetscErrorCode MapLMEvaluateTask(MapEvaluator ev, int ti, MapTaskMetrics *metric);

#endif
