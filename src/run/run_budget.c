/* -map_budget N: the total number of model evaluations a run may spend (design + adaptive rounds +
   re-evaluation of front points + the pick), allocated by mapmerge. Measured in bench/map_quality
   (curve.py, RESULTS.md "Quality per evaluation"): the allocation below is what won there. */
#include "runimpl.h"
#include <math.h>

/* Das-Dennis lattice size C(H + m - 1, m - 1), in double (no overflow) */
static double MapBudgetLatticeCount(int m, PetscInt H)
{
  double c = 1;
  for (int k = 1; k < m; k++) c = c * (double)(H + k) / k;
  return c;
}

/* -map_budget is read with the run's options; the plan waits for T (MapRunBudgetPlan) */
PetscErrorCode MapRunBudgetSetFromOptions(MapRunCtx *r)
{
  MapRunBudget *b = &r->budget;

  PetscFunctionBegin;
  b->reeval_fraction   = 0.25;
  b->spread_objectives = PETSC_TRUE; /* bench/map_quality/RESULTS.md: ahead of coefficients at T = 3 */
  PetscOptionsBegin(r->comm, NULL, "Evaluation budget", NULL);
  PetscCall(PetscOptionsInt("-map_budget",
                            "total model evaluations (design + adaptive rounds + re-evaluated front points + pick), allocated by mapmerge "
                            "(0: none, the design, -map_refine and -map_reevaluate as given)",
                            NULL, b->total, &b->total, NULL));
  PetscCall(PetscOptionsInt("-map_budget_design", "with -map_budget: design size (0: 1.5x the (T+1)(T+2)/2 surrogate unknowns, "
                                                  "or all but 2 evaluations when the budget is under 3x them)",
                            NULL, b->design_n, &b->design_n, NULL));
  PetscCall(PetscOptionsReal("-map_budget_reevaluate", "with -map_budget: fraction of what the design leaves kept for re-evaluating front points after the last fit",
                             NULL, b->reeval_fraction, &b->reeval_fraction, NULL));
  {
    const char *spreads[] = {"coefficients", "objectives"};
    PetscInt    sp        = b->spread_objectives;
    PetscCall(PetscOptionsEList("-map_budget_spread", "with -map_budget: front points are chosen farthest from the evaluated ones in "
                                                      "coefficients or in predicted accuracies",
                                NULL, spreads, 2, spreads[sp], &sp, NULL));
    b->spread_objectives = sp == 1 ? PETSC_TRUE : PETSC_FALSE;
  }
  PetscOptionsEnd();
  PetscCheck(b->total >= 0 && b->total <= 1000000, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_budget %" PetscInt_FMT ": need 0 (none) to 1000000 evaluations",
             b->total);
  PetscCheck(b->design_n >= 0 && b->design_n <= 1000000 && b->reeval_fraction >= 0 && b->reeval_fraction <= 1, r->comm,
             PETSC_ERR_ARG_OUTOFRANGE, "-map_budget_design %" PetscInt_FMT " must be 0 to 1000000 and -map_budget_reevaluate %g in [0,1]",
             b->design_n, b->reeval_fraction);
  if (b->total) {
    /* the budget decides these sizes: one given too would be silently overridden */
    const char *owned[] = {"-map_sample_n", "-map_refine", "-map_refine_points", "-map_reevaluate", "-map_bayes_initial", "-map_bayes_iterations",
                           "-map_bayes_batch", "-map_refine_target", NULL};
    for (int i = 0; owned[i]; i++) {
      PetscBool given;
      PetscCall(PetscOptionsHasName(NULL, NULL, owned[i], &given));
      PetscCheck(!given, r->comm, PETSC_ERR_ARG_INCOMP, "-map_budget %" PetscInt_FMT " allocates the evaluations itself; drop %s (or drop -map_budget)",
                 b->total, owned[i]);
    }
    const char *design;
    PetscCall(MapSamplerGetDesign(r->sampler, &design, NULL, NULL));
    PetscCheck(strcmp(r->opt.method, "nested"), r->comm, PETSC_ERR_ARG_INCOMP,
               "-map_budget applies to -map_method map and bayesian; nested MAP sizes each pair with -map_nested_samples");
    PetscCheck(strcmp(design, MAPSAMPLER_FILE), r->comm, PETSC_ERR_ARG_INCOMP,
               "-map_budget chooses the design size; -map_sample_type file fixes it: use reference or lhs with a budget");
  }
  PetscFunctionReturn(0);
}

/* The allocation, before anything is evaluated. F = (T+1)(T+2)/2 surrogate unknowns per task; the
   smallest budget is F design points (the fit needs them) plus the pick. The design gets 1.5 F points
   (below it the fit interpolates): the rest goes where the front is. A budget under 3 F leaves too
   little for that, and a fit on 1.5 F points steers badly: then the design takes all but 2 evaluations
   (at most 2 F, the default design's size). Measured (bench/map_quality/RESULTS.md): at T = 3 and
   N = 20, 18 design points beat 15 (median HV ratio 0.517 vs 0.510); at N = 40 and 160, 15 beat 20.
   Of the rest, reeval_fraction is kept for front points after the last fit, and the remainder goes to
   refinement (map) or Bayesian (bayesian) rounds of about F/2 points (fewer, larger rounds when the
   budget is large). */
PetscErrorCode MapRunBudgetPlan(MapRunCtx *r)
{
  MapRunBudget *b     = &r->budget;
  PetscBool     bayes = strcmp(r->opt.method, "bayesian") ? PETSC_FALSE : PETSC_TRUE;
  PetscInt      N = b->total, F = (PetscInt)(r->T + 1) * (r->T + 2) / 2;

  PetscFunctionBegin;
  if (!N) PetscFunctionReturn(0);
  PetscCheck(N >= F + 1, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_budget %" PetscInt_FMT " is too small for %d tasks: the quadratic surrogates need a design of at least %" PetscInt_FMT
             " points ((T+1)(T+2)/2 unknowns) plus the pick; give at least %" PetscInt_FMT,
             N, r->T, F, F + 1);
  PetscInt d    = b->design_n ? b->design_n : N < 3 * F ? PetscMin(N - 2, 2 * F)
                                                        : (3 * F + 1) / 2;
  d             = PetscMax(F, PetscMin(d, N - 1));
  b->design     = d;
  PetscInt left = N - 1 - d;
  /* a finer preference lattice than the default (at most 150 vectors, H <= 40): the rounds and the
     re-evaluation choose among the predicted front's points, and a front of fewer than a few times the
     points to place runs out of new ones (T = 3, N = 80: HV ratio 0.792 with the default 136 vectors,
     0.816 with 276) */
  PetscBool given;
  PetscInt  Hd = 40, H;
  PetscCall(PetscOptionsHasName(NULL, NULL, "-map_pareto_divisions", &given));
  while (Hd > 1 && MapBudgetLatticeCount(r->T, Hd) > 150) Hd--;
  for (H = Hd; !given && MapBudgetLatticeCount(r->T, H) < PetscMin(4.0 * (double)(N - d), 3000.0) && H < 4000; H++) {}
  if (H > Hd) PetscCall(MapParetoSetDivisions(r->pareto, H));
  /* the re-evaluation reserve: at most half the lattice (the last front has about that many points) */
  b->reserve = PetscMin((PetscInt)floor(b->reeval_fraction * (double)left), (PetscInt)(MapBudgetLatticeCount(r->T, H) / 2));
  /* rounds of about F/2 points, more when the budget is large: at most ~12 fits and searches */
  b->round_points   = PetscMax(PetscMax((PetscInt)r->T + 1, F / 2), (left - b->reserve + 11) / 12);
  b->planned_rounds = (left - b->reserve + b->round_points - 1) / b->round_points;
  PetscCall(MapSamplerSetSize(r->sampler, d)); /* Bayesian MAP: its initial design */
  if (bayes) r->opt.bayes_iterations = 0;      /* the budget's rounds run instead (MapRunBudgetRounds) */
  r->opt.refine = 0;
  PetscFunctionReturn(0);
}

/* evaluations still free for rounds and front points (the pick's one is held back) */
PetscInt MapRunBudgetLeft(MapRunCtx *r)
{
  return r->budget.total - 1 - r->samples.n;
}

/* distance of two points for the spread: max norm in coefficients, or in the surrogates' predicted
   accuracies scaled by the candidates' ranges (-map_budget_spread objectives) */
static double MapBudgetDistance(int T, const double *x, const double *y, const double *scale)
{
  double d = 0;
  for (int j = 0; j < T; j++) d = PetscMax(d, PetscAbsReal(x[j] - y[j]) * scale[j]);
  return d;
}

/* Greedy max-min choice: up to K of the m candidates X[m*T], each the one farthest from every
   evaluated sample and every point chosen before it; candidates within tol (coefficients, max norm) of
   one are never chosen (a second evaluation of the same model adds nothing to the front).
   Deterministic: ties go to the lower index. Returns the count chosen, indices in sel. */
PetscErrorCode MapRunBudgetSpread(MapRunCtx *r, PetscInt m, const double *X, PetscInt K, PetscInt *sel, PetscInt *nsel)
{
  const int T   = r->T;
  PetscBool obj = r->budget.spread_objectives;
  double    tol = 1e-3 * (r->opt.hi - r->opt.lo), *dmin, *cmin, *PX, *PS, one[MAP_MAX_TASKS], scale[MAP_MAX_TASKS];
  PetscInt  ns  = 0;

  PetscFunctionBegin;
  PetscCall(PetscMalloc4(m + 1, &dmin, m + 1, &cmin, (m + 1) * T, &PX, (r->samples.n + 1) * T, &PS));
  for (int j = 0; j < T; j++) one[j] = 1;
  /* the spread's coordinates: the coefficients, or the predicted accuracies */
  PetscCall(PetscArraycpy(PX, X, m * T));
  for (PetscInt i = 0; i < r->samples.n; i++)
    if (r->samples.task[i] < 0) PetscCall(PetscArraycpy(&PS[ns++ * T], &r->samples.C[i * T], T));
  if (obj) {
    /* the search's own objectives (the metric's surrogates, higher is better) */
    for (PetscInt q = 0; q < m; q++) PetscCall(MapRunObjectiveMetric(r, &X[q * T], &PX[q * T], NULL));
    for (PetscInt i = 0; i < ns; i++) {
      double c[MAP_MAX_TASKS];
      PetscCall(PetscArraycpy(c, &PS[i * T], T));
      PetscCall(MapRunObjectiveMetric(r, c, &PS[i * T], NULL));
    }
  }
  for (int j = 0; j < T; j++) {
    double lo = PETSC_MAX_REAL, hi = -PETSC_MAX_REAL;
    for (PetscInt q = 0; q < m; q++) {
      lo = PetscMin(lo, PX[q * T + j]);
      hi = PetscMax(hi, PX[q * T + j]);
    }
    scale[j] = obj && hi > lo ? 1 / (hi - lo) : 1;
  }
  for (PetscInt q = 0; q < m; q++) {
    dmin[q] = cmin[q] = PETSC_MAX_REAL;
    PetscInt i        = 0;
    for (PetscInt k = 0; k < r->samples.n; k++) {
      if (r->samples.task[k] >= 0) continue;
      cmin[q] = PetscMin(cmin[q], MapBudgetDistance(T, &r->samples.C[k * T], &X[q * T], one));
      dmin[q] = PetscMin(dmin[q], MapBudgetDistance(T, &PS[i * T], &PX[q * T], scale));
      i++;
    }
  }
  *nsel = 0;
  while (*nsel < K) {
    PetscInt best = -1;
    for (PetscInt q = 0; q < m; q++)
      if (cmin[q] > tol && (best < 0 || dmin[q] > dmin[best])) best = q;
    if (best < 0) break;
    sel[(*nsel)++] = best;
    for (PetscInt q = 0; q < m; q++) {
      cmin[q] = PetscMin(cmin[q], MapBudgetDistance(T, &X[best * T], &X[q * T], one));
      dmin[q] = PetscMin(dmin[q], MapBudgetDistance(T, &PX[best * T], &PX[q * T], scale));
    }
  }
  PetscCall(PetscFree4(dmin, cmin, PX, PS));
  PetscFunctionReturn(0);
}

/* The front points re-evaluated after the last fit: all that is left of the budget but the pick,
   spread farthest from the evaluated samples (max-min, as the rounds); fills report.real_index. */
PetscErrorCode MapRunBudgetChooseReevaluations(MapRunCtx *r)
{
  PetscInt K = PetscMax(0, MapRunBudgetLeft(r)), nsel, *sel;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(K + 1, &sel));
  PetscCall(MapRunBudgetSpread(r, r->report.kfront, r->report.Cf, K, sel, &nsel));
  for (PetscInt k = 0; k < nsel; k++) r->report.real_index[k] = (int)sel[k];
  r->report.kreal = nsel;
  PetscCall(PetscFree(sel));
  PetscFunctionReturn(0);
}

/* how many re-evaluations to allocate room for (at least what MapRunBudgetChooseReevaluations takes) */
PetscInt MapRunBudgetReevaluateCap(MapRunCtx *r)
{
  return PetscMax(0, MapRunBudgetLeft(r));
}

PetscErrorCode MapRunBudgetView(MapRunCtx *r, PetscViewer viewer)
{
  MapRunBudget *b     = &r->budget;
  PetscInt      spent = r->samples.n + r->report.kreal + 1;

  PetscFunctionBegin;
  if (!b->total) PetscFunctionReturn(0);
  PetscCall(PetscViewerASCIIPrintf(viewer,
                                   "budget %" PetscInt_FMT " evaluations, spent %" PetscInt_FMT ": design %" PetscInt_FMT " + %" PetscInt_FMT
                                   " %s rounds (%" PetscInt_FMT " points) + %" PetscInt_FMT " front points re-evaluated + 1 pick\n",
                                   b->total, spent, b->design, b->rounds, strcmp(r->opt.method, "bayesian") ? "refinement" : "Bayesian", b->refined, r->report.kreal));
  if (spent < b->total)
    PetscCall(PetscViewerASCIIPrintf(viewer, "  %" PetscInt_FMT " left unspent: the predicted front had no other point away from the evaluated ones\n",
                                     b->total - spent));
  PetscFunctionReturn(0);
}

/* the allocation as spent, for results.h5 (/budget) and the manifest ("budget") */
PetscErrorCode MapRunBudgetJSON(MapRunCtx *r, json_t **o)
{
  MapRunBudget *b = &r->budget;

  PetscFunctionBegin;
  *o = NULL;
  if (!b->total) PetscFunctionReturn(0);
  *o = json_pack("{sI sI sI sI sI sI sI sI}", "budget", (json_int_t)b->total, "spent", (json_int_t)(r->samples.n + r->report.kreal + 1), "design",
                 (json_int_t)b->design, "rounds", (json_int_t)b->rounds, "round_points", (json_int_t)b->refined, "reevaluated",
                 (json_int_t)r->report.kreal, "pick", (json_int_t)1, "planned_rounds", (json_int_t)b->planned_rounds);
  PetscCheck(*o, PETSC_COMM_SELF, PETSC_ERR_MEM, "cannot build the budget's JSON");
  PetscFunctionReturn(0);
}

PetscErrorCode MapRunBudgetWrite(MapRunCtx *r, hid_t file)
{
  json_t *o;

  PetscFunctionBegin;
  PetscCall(MapRunBudgetJSON(r, &o));
  if (!o) PetscFunctionReturn(0);
  hid_t       g;
  const char *key;
  json_t     *val;
  MapCallHDF5(g = H5Gcreate2(file, "budget", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  json_object_foreach(o, key, val)
  {
    double v = (double)json_integer_value(val);
    PetscCall(MapH5WriteMatrix(g, key, 1, 0, &v));
  }
  PetscCall(MapH5WriteStringAttr(g, "meaning", "-map_budget: evaluations allowed, spent, and how (design + rounds' points + re-evaluated + pick = spent)"));
  MapCallHDF5(H5Gclose(g));
  json_decref(o);
  PetscFunctionReturn(0);
}
