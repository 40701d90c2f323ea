/* eval_lm_forward: the lm evaluator's forward pass (docs/lm.md): column-split linear layers with
   all-gathers, attention by query heads, the log-softmax over the split vocabulary (maxima gathered,
   sums of exponentials over fixed 64-wide blocks summed in block order, argmax with the lowest index
   on ties) and the per-item sums in item order: the same bits at every rank count. */
#include "evallmimpl.h"
#include <math.h>

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
  PetscCall(PetscLogEventBegin(MAP_LM_EVENT_Reduce, 0, 0, 0, 0));
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
    for (int64_t b = 0; b < nb; b++) {              /* exp-sums over fixed 64-id blocks */
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
  PetscCall(PetscLogEventEnd(MAP_LM_EVENT_Reduce, 0, 0, 0, 0));
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
  PetscCall(PetscLogEventBegin(MAP_LM_EVENT_Forward, 0, 0, 0, 0));
  /* embedding rows live with the rank of their vocabulary slice: gathered in token order */
  MapLMPart(c->V, LM_VOCAB_UNIT, m->gsize, m->grank, &v0, &v1);
  for (int64_t t = 0; t < R; t++)
    if (ids[t] >= v0 && ids[t] < v1) {
      if (m->tied_head)
        for (int64_t i = 0, nv = v1 - v0; i < E; i++) loc[k * E + i] = m->head.W[i * nv + ids[t] - v0];
      else PetscCall(PetscMemcpy(loc + k * E, m->emb + (ids[t] - v0) * E, (size_t)E * sizeof(float)));
      k++;
    }
  for (int r = 0; r < m->gsize; r++) {
    int64_t a, e, n = 0;
    MapLMPart(c->V, LM_VOCAB_UNIT, m->gsize, r, &a, &e);
    for (int64_t t = 0; t < R; t++) n += ids[t] >= a && ids[t] < e;
    m->gcnt[r] = (int)(n * E), m->gdsp[r] = r ? m->gdsp[r - 1] + m->gcnt[r - 1] : 0;
  }
  PetscCallMPI(MPI_Allgatherv(loc, (int)(k * E), MPI_FLOAT, m->gbuf, m->gcnt, m->gdsp, MPI_FLOAT, m->gcomm));
  for (int r = 0; r < m->gsize; r++) {
    int64_t a, e, j = 0;
    MapLMPart(c->V, LM_VOCAB_UNIT, m->gsize, r, &a, &e);
    for (int64_t t = 0; t < R; t++)
      if (ids[t] >= a && ids[t] < e) PetscCall(PetscMemcpy(x + t * E, m->gbuf + m->gdsp[r] + (j++) * E, (size_t)E * sizeof(float)));
  }
  if (gpt2)
    for (int64_t q = 0; q < nseq; q++)
      for (int64_t i = 0; i < L * E; i++) x[q * L * E + i] += m->wpe[i];
  for (int64_t l = 0; l < c->nlayer; l++) {
    const LMBlock *B  = &m->blk[l];
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
  PetscCall(PetscLogEventEnd(MAP_LM_EVENT_Forward, 0, 0, 0, 0));
  PetscCall(LogSoftmax(m, R, r0, target, logp, hit));
  PetscFunctionReturn(0);
}

/* per-item (window or question) loss and correct count, summed in item order */
PetscErrorCode MapLMEvaluateTask(MapEvaluator ev, int ti, MapTaskMetrics *metric)
{
  MapEval_LM *m    = (MapEval_LM *)ev->data_impl;
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
  PetscCall(PetscLogEventBegin(MAP_LM_EVENT_Reduce, 0, 0, 0, 0));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, res, (int)(2 * task->nitem), MPI_DOUBLE, MPI_SUM, ev->comm));
  PetscCall(PetscLogEventEnd(MAP_LM_EVENT_Reduce, 0, 0, 0, 0));
  for (int64_t i = 0; i < task->nitem; i++) loss += res[2 * i], correct += res[2 * i + 1];
  const int64_t count = task->mc ? task->nitem : task->nitem * task->L;
  metric->loss        = loss / (double)count;
  metric->correct     = (int64_t)correct;
  metric->count       = count;
  metric->accuracy    = correct / (double)count;
  PetscCall(PetscFree(res));
  PetscFunctionReturn(0);
}
