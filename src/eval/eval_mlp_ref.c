/* eval_mlp_ref: the plain double-precision, unsharded forward pass of the mlp evaluator, the
   reference its tests compare the parallel evaluator with (tests/eval/test_mlp.c). */
#include "evalmlpimpl.h"
#include <math.h>

/* the whole merged vector full[P] on every rank (PetscFree) */
static PetscErrorCode GatherMerged(MapEvaluator ev, MapEval_MLP *m, const double *c, float **fullout)
{
  int     R;
  int    *cnt, *dsp;
  float  *full, *theta;
  int64_t range[2];

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(ev->comm, &R));
  PetscCall(PetscMalloc1(m->hi - m->lo + 1, &theta));
  PetscCall(MapModelMerge(ev->model, c, theta));
  PetscCall(MapModelCheckFinite(ev->model, ev->comm, c, theta));
  PetscCall(PetscMalloc2(R, &cnt, R, &dsp));
  PetscCall(PetscMalloc1(m->P + 1, &full));
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
  PetscCall(PetscFree2(cnt, dsp));
  *fullout = full;
  PetscFunctionReturn(0);
}

/* task t over every sample of its eval set, in double, from the merged vector full */
static PetscErrorCode EvaluateTaskRef(MapEvaluator ev, MapEval_MLP *m, const float *full, int t, double *hbuf0, double *hbuf1, MapTaskMetrics *metric)
{
  PetscFunctionBegin;
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
  metric->loss     = loss / (double)tk->n;
  metric->correct  = corr;
  metric->count    = tk->n;
  metric->accuracy = (double)corr / (double)tk->n;
  PetscCall(PetscFree2(X, raw));
  PetscCall(MapSafetensorsDestroy(&sf));
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
  float       *full;
  double      *hbuf0, *hbuf1;

  PetscFunctionBegin;
  PetscCheck(ev->setupcalled && !strcmp(ev->type, "mlp"), ev->comm, PETSC_ERR_ORDER, "MapEvaluatorEvaluate_MLPRef needs a set-up mlp evaluator");
  PetscCheck(m->P < INT_MAX, ev->comm, PETSC_ERR_SUP, "MLPRef: model too large to gather");
  PetscCall(GatherMerged(ev, m, c, &full));
  PetscCall(PetscMalloc2(m->maxw, &hbuf0, m->maxw, &hbuf1));
  for (int t = 0; t < ev->T; t++) PetscCall(EvaluateTaskRef(ev, m, full, t, hbuf0, hbuf1, &metrics[t]));
  PetscCall(PetscFree2(hbuf0, hbuf1));
  PetscCall(PetscFree(full));
  PetscFunctionReturn(0);
}
