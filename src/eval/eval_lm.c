/* eval_lm: the built-in decoder-only transformer evaluator (-map_eval_type lm; docs/lm.md): the
   object (set-up, options, view, destroy). The weights are in eval_lm_weights.c, the forward pass in
   eval_lm_forward.c, the kernels in eval_lm_kernel.c, config and data in eval_lm_config.c/_data.c.

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

PetscLogEvent MAP_LM_EVENT_Redistribute = 0, MAP_LM_EVENT_Forward = 0, MAP_LM_EVENT_Reduce = 0;

static int MapDTypeGetSize(MapDType dt) { return dt == MAP_DTYPE_F32 ? 4 : 2; }

static PetscErrorCode MapEvaluatorEvaluate_LM(MapEvaluator ev, const double *c, MapTaskMetrics *metrics)
{
  PetscFunctionBegin;
  PetscCall(MapLMRedistribute(ev, c));
  for (int t = 0; t < ev->T; t++)
    if (MapEvalWanted(ev, t)) PetscCall(MapLMEvaluateTask(ev, t, &metrics[t]));
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

/* an F32 basis of T task vectors taking c whole is merged piece by piece (Redistribute) */
static PetscErrorCode SetUpMerge(MapEvaluator ev)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;
  MapDType    dt;
  int         ncoef;

  PetscFunctionBegin;
  PetscCall(MapModelGetDType(ev->model, &dt));
  PetscCall(MapModelGetNumTasks(ev->model, &m->T));
  PetscCall(MapModelGetNumCoefficients(ev->model, &ncoef));
  m->fused = dt == MAP_DTYPE_F32 && ncoef == m->T ? PETSC_TRUE : PETSC_FALSE;
  if (m->fused) PetscCall(MapModelGetShards(ev->model, &m->nshard, &m->pre, &m->tau));
  else PetscCall(PetscMalloc1(m->hi - m->lo + 1, &m->theta));
  PetscFunctionReturn(0);
}

/* every task's items of this group; *L the window length, *Lseq the longest sequence (a
   multiple-choice context and choice may exceed L) */
static PetscErrorCode LoadTasks(MapEvaluator ev, int *Lout, int64_t *Lseqout)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;

  PetscFunctionBegin;
  const int L = m->context ? (int)m->context : (int)m->cfg.npos;
  PetscCheck(L >= 1, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_lm_context %d: must be >= 1", L);
  PetscCall(PetscCalloc1(ev->T, &m->tasks));
  m->Lmax      = (int64_t)L * m->batch;
  int64_t Lseq = L;
  for (int t = 0; t < ev->T; t++) {
    MapLMTask *k = &m->tasks[t];
    PetscCall(MapLMTaskLoad(ev->comm, ev->data[t], m->cfg.V, m->cfg.npos, L, m->maxwin, m->G, m->color, k));
    if (k->mc)
      for (int64_t i = 0; i < k->nitem; i++)
        for (int ch = 0; ch < k->nch[i]; ch++) Lseq = PetscMax(Lseq, k->nctx[i] + k->chlen[k->choff[i] + ch]);
  }
  *Lout    = L;
  *Lseqout = Lseq;
  PetscFunctionReturn(0);
}

/* the activation buffers for sequences of up to max(batch x L, Lseq) tokens; *maxloc the widest
   column slice of a linear layer on this rank */
static PetscErrorCode AllocActivations(MapEvaluator ev, int64_t Lseq, int64_t *maxlocout)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;

  PetscFunctionBegin;
  LMLinear **lins;
  int        nl;
  int64_t    maxN = PetscMax(m->cfg.E, m->cfg.H * m->cfg.D), maxloc = maxN;
  PetscCall(MapLMAllLinears(m, &lins, &nl));
  for (int i = 0; i < nl; i++) {
    if (lins[i] != &m->head) maxN = PetscMax(maxN, lins[i]->N);
    maxloc = PetscMax(maxloc, lins[i]->c1 - lins[i]->c0);
  }
  PetscCall(PetscFree(lins));
  m->Lmax          = PetscMax(m->Lmax, Lseq);
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
  *maxlocout = maxloc;
  PetscFunctionReturn(0);
}

/* what this rank holds, for docs/lm.md's memory model (-info): the basis shards belong to the MapModel */
static PetscErrorCode InfoMemory(MapEvaluator ev, int64_t maxloc)
{
  MapEval_LM   *m  = (MapEval_LM *)ev->data_impl;
  const int64_t Lm = m->Lmax, maxN = m->maxN;
  LMLinear    **lins;
  int           nl, rank;
  MapDType      dt;
  int           Tm;
  int64_t       w = 0, sent = 0, recv = 0, acts;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  PetscCall(MapModelGetDType(ev->model, &dt));
  PetscCall(MapModelGetNumTasks(ev->model, &Tm));
  PetscCall(MapLMAllLinears(m, &lins, &nl));
  for (int i = 0; i < nl; i++) w += lins[i]->K * (lins[i]->c1 - lins[i]->c0) * 1 + (lins[i]->b ? lins[i]->c1 - lins[i]->c0 : 0);
  PetscCall(PetscFree(lins));
  for (int64_t i = 0; i < m->nrepseg; i++) w += m->repseg[i].len;
  if (!m->tied_head) w += (m->head.c1 - m->head.c0) * m->cfg.E; /* embedding rows */
  sent = m->sendmax, recv = m->recvmax;
  acts = Lm * (m->cfg.E + 2 * maxN + 2 * maxloc + PetscMax(maxN, m->cfg.E));
  PetscCall(PetscInfo(NULL, "lm evaluator memory [rank %d]: basis shards %lld B ((T+1) x %lld x %d B), merged shard %lld B, send/recv %lld/%lld B, "
                            "tensor-parallel weights %lld B, activations %lld B\n",
                      rank, (long long)((Tm + 1) * (m->hi - m->lo) * (int64_t)MapDTypeGetSize(dt)),
                      (long long)(m->hi - m->lo), (int)MapDTypeGetSize(dt), (long long)(m->theta ? 4 * (m->hi - m->lo) : 0), (long long)(4 * sent), (long long)(4 * recv),
                      (long long)(4 * w), (long long)(4 * acts)));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorSetUp_LM(MapEvaluator ev)
{
  MapEval_LM *m = (MapEval_LM *)ev->data_impl;
  MapStore    store;
  MapLayout   layout;
  int         R, rank, L;
  int64_t     Lseq, maxloc = 0;
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
  PetscCall(MapLMInitModel(ev, store));
  PetscCall(MapLMBuildPlan(ev));
  PetscCall(SetUpMerge(ev));
  PetscCall(LoadTasks(ev, &L, &Lseq));
  PetscCall(AllocActivations(ev, Lseq, &maxloc));
  PetscCall(InfoMemory(ev, maxloc));
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
    PetscCall(MapLMAllLinears(m, &lins, &nl));
    for (int i = 0; i < nl; i++) PetscCall(MapLMFreeLinear(lins[i]));
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
  PetscCall(PetscViewerASCIIPrintf(viewer, "windows: context %" PetscInt_FMT " (-map_lm_context, 0 = the model's positions), at most %" PetscInt_FMT " per task (-map_lm_max_windows, 0 = all), %" PetscInt_FMT " per forward pass (-map_lm_batch)\n",
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
  if (!MAP_LM_EVENT_Forward) {
    PetscCall(PetscLogEventRegister("MapLMRedistrib", MAP_CLASSID, &MAP_LM_EVENT_Redistribute));
    PetscCall(PetscLogEventRegister("MapLMForward", MAP_CLASSID, &MAP_LM_EVENT_Forward));
    PetscCall(PetscLogEventRegister("MapLMReduce", MAP_CLASSID, &MAP_LM_EVENT_Reduce));
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
