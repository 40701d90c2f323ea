/* run_metric: the metric MAP fits and searches (-map_metric NAME:higher|lower[:lo,hi], issue 16
   item 3) and the failed points.
   The surrogate of task t models metric_t(c) = off + scale * g(phi(c).theta), the link g chosen from
   the declared range: sigmoid for a bounded [lo,hi] (off = lo, scale = hi - lo: today's accuracy fit
   when 0,1), softplus for one bound (lo only: off = lo, scale = 1; hi only: off = hi, scale = -1),
   identity for none. The search maximises sign * metric (sign = -1 for lower is better), so a loss
   gives a front of minima; everything written (front.csv, results.h5, the summary) is in the metric's
   own units. For the default accuracy:higher:0,1, off = 0, scale = sign = 1 and nothing is
   transformed: the same bits as before.
   A failed evaluation (a non-finite or missing value) is journaled as such, left out of the fit and
   the fronts, and listed in the summary and results.h5; a resume reads it as done. */
#include "runimpl.h"
#include <math.h>

/* the link, offset, scale and sign of a metric (also for export -map_run, which re-solves a run's search) */
void MapRunMetricFrom(const MapMetric *mt, MapRunMetric *M)
{
  memset(M, 0, sizeof(*M));
  M->metric     = *mt;
  M->is_default = MapMetricIsDefault(mt);
  M->with_loss  = strcmp(mt->name, "accuracy") ? PETSC_FALSE : PETSC_TRUE;
  M->sign       = mt->lower ? -1 : 1;
  if (isfinite(mt->lo) && isfinite(mt->hi)) M->link = MAP_LINK_SIGMOID, M->off = mt->lo, M->scale = mt->hi - mt->lo;
  else if (isfinite(mt->lo)) M->link = MAP_LINK_SOFTPLUS, M->off = mt->lo, M->scale = 1;
  else if (isfinite(mt->hi)) M->link = MAP_LINK_SOFTPLUS, M->off = mt->hi, M->scale = -1;
  else M->link = MAP_LINK_IDENTITY, M->off = 0, M->scale = 1;
}

/* sign * (off + scale * g(q(c))) for one task's parameters, and its gradient (J may be NULL) */
PetscErrorCode MapRunMetricPredict(const MapRunMetric *M, int T, const double *theta, const double *c, double *f, double *J)
{
  PetscFunctionBegin;
  PetscCall(MapQuadraticPredict(T, M->link, theta, c, f, J));
  if (M->is_default) PetscFunctionReturn(0);
  *f = M->sign * (M->off + M->scale * *f);
  if (J)
    for (int j = 0; j < T; j++) J[j] *= M->sign * M->scale;
  PetscFunctionReturn(0);
}

PetscErrorCode MapRunMetricSetUp(MapRunCtx *r)
{
  const MapMetric *mt;
  MapRunMetric    *M = &r->metric;

  PetscFunctionBegin;
  PetscCall(MapEvaluatorGetMetric(r->ev, &mt));
  MapRunMetricFrom(mt, M); /* nested MAP too: its side objectives are preference-weighted means of the metric */
  PetscFunctionReturn(0);
}

/* the surrogate's target for a metric value, and back */
static inline double MapMetricToTarget(const MapRunMetric *M, double y) { return M->is_default ? y : (y - M->off) / M->scale; }

PetscErrorCode MapRunObjectiveMetric(void *ctx, const double *c, double *f, double *J)
{
  MapRunCtx    *r = (MapRunCtx *)ctx;
  MapRunMetric *M = &r->metric;

  PetscFunctionBegin;
  for (int t = 0; t < r->T; t++) {
    PetscCall(MapSurrogatePredict(r->sur, t, c, &f[t], J ? &J[t * r->T] : NULL));
    if (M->is_default) continue;
    f[t] = M->sign * (M->off + M->scale * f[t]);
    if (J)
      for (int j = 0; j < r->T; j++) J[t * r->T + j] *= M->sign * M->scale;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapRunObjectiveMetricHessian(void *ctx, const double *c, const double *coef, double *H)
{
  MapRunCtx    *r = (MapRunCtx *)ctx;
  MapRunMetric *M = &r->metric;

  PetscFunctionBegin;
  PetscCall(PetscArrayzero(H, r->T * r->T));
  for (int t = 0; t < r->T; t++)
    if (coef[t] != 0) PetscCall(MapSurrogateHessianAdd(r->sur, t, c, M->is_default ? coef[t] : coef[t] * M->sign * M->scale, H));
  PetscFunctionReturn(0);
}

/* sample i failed (its evaluated tasks gave no usable metric): out of the fit and the fronts */
PetscBool MapRunSampleFailed(MapRunCtx *r, PetscInt i) { return r->samples.failed && r->samples.failed[i] ? PETSC_TRUE : PETSC_FALSE; }

/* Fit the metric surrogates (and, for accuracy, the loss ones with a softplus link, as always) to
   every sample so far that did not fail. Too few left for the quadratic: an error naming them. */
PetscErrorCode MapRunFitMetric(MapRunCtx *r)
{
  MapRunMetric *M = &r->metric;
  int           T = r->T, nt = M->with_loss ? 2 * T : T;
  PetscInt      n = 0, F = (PetscInt)(T + 1) * (T + 2) / 2, nfail = 0;
  double       *Y, *C;
  MapLink      *links;

  PetscFunctionBegin;
  PetscCall(PetscMalloc3(r->samples.n * nt + 1, &Y, r->samples.n * T + 1, &C, nt, &links));
  for (PetscInt i = 0; i < r->samples.n; i++) {
    if (MapRunSampleFailed(r, i)) {
      nfail++;
      continue;
    }
    for (int t = 0; t < T; t++) {
      Y[n * nt + t] = MapMetricToTarget(M, r->samples.acc[i * T + t]);
      if (M->with_loss) Y[n * nt + T + t] = r->samples.loss[i * T + t];
    }
    PetscCall(PetscArraycpy(&C[n * T], &r->samples.C[i * T], T));
    n++;
  }
  if (n < F) {
    char list[1024] = "";
    PetscCall(PetscFree3(Y, C, links));
    for (PetscInt i = 0; i < r->samples.n; i++) {
      size_t l = strlen(list);
      if (MapRunSampleFailed(r, i) && l + 24 < sizeof(list)) snprintf(list + l, sizeof(list) - l, "%s#%" PetscInt_FMT, l ? ", " : "", i);
    }
    SETERRQ(r->comm, PETSC_ERR_NOT_CONVERGED,
            "only %" PetscInt_FMT " of %" PetscInt_FMT " samples were evaluated without failure (failed: %s; see %s), fewer than the %" PetscInt_FMT
            " unknowns of a quadratic surrogate in %d tasks: the evaluator fails on much of the box -map_box %g,%g; narrow the box, or fix the evaluator "
            "and start a new -map_output",
            n, r->samples.n, list, r->journal.path, F, T, r->opt.lo, r->opt.hi);
  }
  if (nfail) PetscCall(PetscInfo(NULL, "fit: %" PetscInt_FMT " failed samples left out\n", nfail));
  for (int t = 0; t < T; t++) {
    links[t] = M->link;
    if (M->with_loss) links[T + t] = MAP_LINK_SOFTPLUS;
  }
  /* no failure: C is r->samples.C itself, so the default run fits the very same arrays as before */
  PetscCall(MapSurrogateFit(r->sur, T, n, nfail ? C : r->samples.C, nt, Y, links));
  PetscCall(PetscFree3(Y, C, links));
  PetscFunctionReturn(0);
}

/* After the search: the front and the pick's prediction in the metric's units (the search's values
   are sign * metric) */
PetscErrorCode MapRunMetricFront(MapRunCtx *r)
{
  MapRunMetric *M = &r->metric;

  PetscFunctionBegin;
  if (M->sign > 0) PetscFunctionReturn(0);
  PetscCall(PetscFree(M->front));
  PetscCall(PetscMalloc1(r->report.kfront * r->T + 1, &M->front));
  for (PetscInt i = 0; i < r->report.kfront * r->T; i++) M->front[i] = -r->report.Ff[i];
  r->report.Ff = M->front;
  for (int t = 0; t < r->T; t++) r->report.pick_pred[t] = -r->report.pick_pred[t];
  PetscFunctionReturn(0);
}

/* f[T] = sign * y[T] (the search's orientation: larger is better); 0 when a value is not finite */
int MapRunMetricOriented(MapRunCtx *r, const double *y, double *f)
{
  for (int t = 0; t < r->T; t++) {
    if (!isfinite(y[t])) return 0;
    f[t] = r->metric.sign > 0 ? y[t] : -y[t];
  }
  return 1;
}

/* the names results use for the metric: "accuracy"/"acc" for the default, else "metric"/its name */
const char *MapRunMetricGroup(MapRunCtx *r) { return r->metric.is_default ? "accuracy" : "metric"; }
const char *MapRunMetricShort(MapRunCtx *r) { return r->metric.is_default ? "acc" : r->metric.metric.name; }

/* the failed evaluations: samples (r->samples.failed), re-evaluations and the pick (a NaN metric) */
static void MapRunFailedList(MapRunCtx *r, char *buf, size_t len, PetscInt *count)
{
  *count = 0;
  buf[0] = 0;
  for (PetscInt i = 0; i < r->samples.n + r->report.kreal + 1; i++) {
    const char *kind = i < r->samples.n ? "sample" : i < r->samples.n + r->report.kreal ? "reeval"
                                                                                        : "pick";
    PetscInt    k    = i < r->samples.n ? i : i - r->samples.n;
    int         bad  = 0;
    if (i < r->samples.n) bad = MapRunSampleFailed(r, i);
    else if (i < r->samples.n + r->report.kreal) bad = r->report.real_acc && isnan(r->report.real_acc[k * r->T]);
    else bad = r->opt.npref && r->fitted && isnan(r->report.pick_acc[0]);
    if (!bad) continue;
    size_t l = strlen(buf);
    (*count)++;
    if (l + 32 < len) snprintf(buf + l, len - l, "%s%s #%" PetscInt_FMT, l ? ", " : "", kind, k);
  }
}

/* results.h5: which evaluations failed (a dataset only when one did, so a run without failures
   holds the same datasets as before); the metric itself is the manifest's "metric" attribute */
PetscErrorCode MapRunMetricWrite(MapRunCtx *r, hid_t f)
{
  char     list[4096];
  PetscInt count, nf = 0;
  double  *idx;

  PetscFunctionBegin;
  MapRunFailedList(r, list, sizeof(list), &count);
  PetscCall(MapH5WriteStringAttr(f, "failed_evaluations", list));
  for (PetscInt i = 0; i < r->samples.n; i++) nf += MapRunSampleFailed(r, i);
  if (!nf) PetscFunctionReturn(0);
  PetscCall(PetscMalloc1(nf, &idx));
  nf = 0;
  for (PetscInt i = 0; i < r->samples.n; i++)
    if (MapRunSampleFailed(r, i)) idx[nf++] = (double)i;
  hid_t g;
  MapCallHDF5(g = H5Gopen2(f, "samples", H5P_DEFAULT));
  PetscCall(MapH5WriteMatrix(g, "failed", nf, 0, idx));
  PetscCall(MapH5WriteStringAttr(g, "failed_meaning", "indices of the samples whose evaluation failed (a non-finite or missing metric): journaled, "
                                                      "left out of the fit and the fronts, their metrics NaN"));
  MapCallHDF5(H5Gclose(g));
  PetscCall(PetscFree(idx));
  PetscFunctionReturn(0);
}

/* The summary's fit table and fronts, in the metric's units and direction; the failed evaluations. */
PetscErrorCode MapRunMetricSummary(MapRunCtx *r, PetscViewer viewer)
{
  MapRunMetric *M = &r->metric;
  int           T = r->T;
  char          list[4096], h[3][48];
  PetscInt      count;

  PetscFunctionBegin;
  MapRunFailedList(r, list, sizeof(list), &count);
  if (count) PetscCall(PetscViewerASCIIPrintf(viewer, "failed evaluations (a non-finite or missing %s; journaled, left out of the fit and the fronts): %" PetscInt_FMT ": %s\n",
                                              M->metric.name, count, list));
  if (!r->fitted) PetscFunctionReturn(0);
  snprintf(h[0], sizeof(h[0]), "R2(%s)", MapRunMetricShort(r));
  snprintf(h[1], sizeof(h[1]), "RMSE(%s)", MapRunMetricShort(r));
  snprintf(h[2], sizeof(h[2]), "LOO(%s)", MapRunMetricShort(r));
  PetscCall(PetscViewerASCIIPrintf(viewer, "%-16s %10s %10s %10s %10s\n", "task", h[0], h[1], h[2], M->with_loss ? "R2(loss)" : ""));
  for (int t = 0; t < T; t++) {
    MapFitDiagnostics da, dl = {0};
    PetscCall(MapSurrogateGetDiagnostics(r->sur, t, &da));
    if (M->with_loss) PetscCall(MapSurrogateGetDiagnostics(r->sur, T + t, &dl));
    /* RMSE in the metric's units (the fit's target is scaled by 1/scale) */
    double s = M->is_default ? 1 : PetscAbsReal(M->scale);
    PetscCall(PetscViewerASCIIPrintf(viewer, "%-16s %10.4f %10.4g %10.4g", r->tasks[t], da.r2, da.rmse * s, da.loo_rmse * s));
    if (M->with_loss) PetscCall(PetscViewerASCIIPrintf(viewer, " %10.4f", dl.r2));
    PetscCall(PetscViewerASCIIPrintf(viewer, "\n"));
  }
  /* hypervolumes need a reference point: the worst end of a bounded range (0 for accuracy) */
  if (!isfinite(M->metric.lo) || !isfinite(M->metric.hi)) {
    PetscCall(PetscViewerASCIIPrintf(viewer, "front: %" PetscInt_FMT " points (%s is %s is better; no hypervolume without a bounded range)\n", r->report.kfront,
                                     M->metric.name, M->metric.lower ? "lower" : "higher"));
    PetscCall(PetscViewerASCIIPrintf(viewer, "real front (non-dominated among all %" PetscInt_FMT " evaluated models): %" PetscInt_FMT " points\n",
                                     r->samples.n + r->report.kreal + (r->opt.npref ? 1 : 0), r->report.kall));
    PetscFunctionReturn(0);
  }
  double   ref[MAP_MAX_TASKS], *F;
  PetscInt nmax = PetscMax(r->report.kfront, PetscMax(r->report.kreal, r->report.kall)), k;
  for (int t = 0; t < T; t++) ref[t] = M->metric.lower ? -M->metric.hi : M->metric.lo;
  PetscCall(PetscMalloc1(nmax * T + 1, &F));
  const double *sets[3]  = {r->report.Ff, r->report.real_acc, r->report.all_acc};
  PetscInt      sizes[3] = {r->report.kfront, r->report.kreal, r->report.kall};
  double        hv[3];
  for (int s = 0; s < 3; s++) {
    k = 0;
    for (PetscInt i = 0; i < sizes[s]; i++) k += MapRunMetricOriented(r, &sets[s][i * T], &F[k * T]);
    hv[s] = MapFrontHypervolume(T, k, F, ref);
  }
  PetscCall(PetscFree(F));
  char refs[64];
  if (M->is_default) snprintf(refs, sizeof(refs), "accuracy, ref 0");
  else snprintf(refs, sizeof(refs), "%s, ref %g", M->metric.name, M->metric.lower ? M->metric.hi : M->metric.lo);
  PetscCall(PetscViewerASCIIPrintf(viewer, "front: %" PetscInt_FMT " points; hypervolume (%s): predicted %.6f, real (%" PetscInt_FMT " re-evaluated) %.6f\n",
                                   r->report.kfront, refs, hv[0], r->report.kreal, hv[1]));
  PetscCall(PetscViewerASCIIPrintf(viewer, "real front (non-dominated among all %" PetscInt_FMT " evaluated models): %" PetscInt_FMT " points, hypervolume %.6f\n",
                                   r->samples.n + r->report.kreal + (r->opt.npref ? 1 : 0), r->report.kall, hv[2]));
  PetscFunctionReturn(0);
}

/* manifest.json's "metric": what was fitted and searched */
PetscErrorCode MapRunMetricManifest(MapRunCtx *r, json_t *m)
{
  char    spec[160];
  json_t *mt = json_object();

  PetscFunctionBegin;
  MapMetricFormat(&r->metric.metric, spec, sizeof(spec));
  json_object_set_new(mt, "spec", json_string(spec));
  json_object_set_new(mt, "name", json_string(r->metric.metric.name));
  json_object_set_new(mt, "direction", json_string(r->metric.metric.lower ? "lower" : "higher"));
  json_object_set_new(mt, "lo", isfinite(r->metric.metric.lo) ? json_real(r->metric.metric.lo) : json_null());
  json_object_set_new(mt, "hi", isfinite(r->metric.metric.hi) ? json_real(r->metric.metric.hi) : json_null());
  json_object_set_new(mt, "link", json_string(MapLinkName(r->metric.link)));
  json_object_set_new(m, "metric", mt);
  PetscFunctionReturn(0);
}

PetscErrorCode MapRunMetricDestroy(MapRunCtx *r)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(r->metric.front));
  PetscFunctionReturn(0);
}
