/* The MAP loop of `mapmerge run` (MapRunSolve): evaluate the design (journaled), Bayesian and refinement
   rounds, fit the surrogates, search the Pareto front, re-evaluate it and the pick (docs/design.md §5-6). */
#include "runimpl.h"

/* Evaluate samples [i0, i1) (journaled; skipped when the journal has them). */
static PetscErrorCode MapRunEvaluateSamples(MapRunCtx *r, PetscInt i0, PetscInt i1, PetscBool *stop)
{
  PetscFunctionBegin;
  PetscCall(MapRunEvaluateSampleRange(r, i0, i1, stop)); /* G at a time with command/worker groups (run_groups.c) */
  PetscFunctionReturn(0);
}

/* One Bayesian round. Default (-map_bayes_evaluate all): squared accuracy residuals of the current fit
   at every point so far, summed over tasks; B new points drawn where they are largest, evaluated on
   every task (the merge is the expensive part). per_task (the reference's scheme): each task t scores
   the bins with its own residuals at the points evaluated on it and draws B points (keyed on seed, t
   and the iteration), evaluated on task t only: T x B merges, as many forward passes as B points on
   every task. */
static PetscErrorCode MapRunBayesRound(MapRunCtx *r, int it, int round_id, PetscBool *stop)
{
  int      T = r->T, ndraw = r->opt.bayes_per_task ? T : 1;
  double  *sqres, *Ct, *Cnew;
  PetscInt B = r->opt.bayes_batch, n0 = r->samples.n; /* every draw scores the points before this round */

  PetscFunctionBegin;
  PetscCall(PetscMalloc3(n0, &sqres, n0 * T, &Ct, B * T, &Cnew));
  for (int d = 0; d < ndraw; d++) {
    PetscInt nt = 0;
    for (PetscInt i = 0; i < n0; i++) {
      double sq = 0;
      if (r->opt.bayes_per_task && isnan(r->samples.acc[i * T + d])) continue; /* task d was not evaluated here */
      if (MapRunSampleFailed(r, i)) continue;
      for (int t = 0; t < T; t++) {
        double pred;
        if (r->opt.bayes_per_task && t != d) continue;
        PetscCall(MapSurrogatePredict(r->sur, t, &r->samples.C[i * T], &pred, NULL));
        sq += (pred - r->samples.acc[i * T + t]) * (pred - r->samples.acc[i * T + t]);
      }
      PetscCall(PetscArraycpy(&Ct[nt * T], &r->samples.C[i * T], T));
      sqres[nt++] = sq;
    }
    PetscCall(MapSamplerPropose(r->sampler, nt, Ct, sqres, r->opt.bayes_per_task ? d : -1, it, B, Cnew));
    for (PetscInt i = 0; i < B; i++) PetscCall(MapSampleSetAppend(&r->samples, &Cnew[i * T], NULL, NULL, round_id, r->opt.bayes_per_task ? d : -1));
  }
  PetscCall(PetscFree3(sqres, Ct, Cnew));
  if (r->opt.bayes_per_task)
    PetscCall(PetscPrintf(r->comm, "bayesian round %d: %" PetscInt_FMT " new samples per task, each evaluated on its task (%" PetscInt_FMT " so far)\n",
                          it, B, r->samples.n));
  else PetscCall(PetscPrintf(r->comm, "bayesian round %d: %" PetscInt_FMT " new samples (%" PetscInt_FMT " so far)\n", it, B, r->samples.n));
  PetscCall(MapRunEvaluateSamples(r, n0, r->samples.n, stop));
  PetscFunctionReturn(0);
}

/* Refinement round `it` (-map_refine): up to -map_refine_points points spread along the predicted front
   of the current fit (in preference order, as the re-evaluation picks them), skipping points already
   sampled, become samples and are evaluated. The fit's error is largest where it matters least (far
   from the front, where most of a space-filling design lies); these points put data where the front
   is, and the next fit follows the real front there. Deterministic: same points at any rank count
   and on resume. */
static PetscErrorCode MapRunRefineRound(MapRunCtx *r, int it, int round_id, PetscBool *stop)
{
  const int     T = r->T;
  PetscInt      kf, K, n0 = r->samples.n;
  const double *Cf;

  PetscFunctionBegin;
  PetscCall(MapParetoSetObjectives(r->pareto, T, T, MapRunObjectiveMetric, r));
  PetscCall(MapParetoSetObjectiveHessian(r->pareto, MapRunObjectiveMetricHessian));
  if (r->opt.refine_pick) { /* one point: the current fit's pick for the preference */
    double fpick[MAP_MAX_TASKS];
    PetscCall(MapParetoPick(r->pareto, r->opt.pref, r->report.pick_c, fpick));
    kf = 1;
    Cf = r->report.pick_c;
  } else {
    PetscCall(MapParetoSolve(r->pareto));
    PetscCall(MapParetoGetFront(r->pareto, &kf, &Cf, NULL, NULL));
  }
  K = PetscMin(r->opt.refine_points, kf);
  for (PetscInt k = 0; k < K; k++) {
    PetscInt      q    = K == 1 ? 0 : (k * (kf - 1) + (K - 1) / 2) / (K - 1);
    const double *c    = Cf + q * T;
    PetscBool     seen = PETSC_FALSE;
    for (PetscInt i = 0; i < r->samples.n && !seen; i++) {
      double d = 0;
      for (int j = 0; j < T; j++) d = PetscMax(d, PetscAbsReal(r->samples.C[i * T + j] - c[j]));
      seen = d <= 1e-6 * (r->opt.hi - r->opt.lo) ? PETSC_TRUE : PETSC_FALSE;
    }
    if (seen) continue;
    PetscCall(MapSampleSetAppend(&r->samples, c, NULL, NULL, round_id, -1));
  }
  PetscCall(PetscPrintf(r->comm, "refine round %d: %" PetscInt_FMT " front points as new samples (%" PetscInt_FMT " so far)\n", it,
                        r->samples.n - n0, r->samples.n));
  PetscCall(MapRunEvaluateSamples(r, n0, r->samples.n, stop));
  PetscFunctionReturn(0);
}

/* one adaptive round (Bayesian or refinement): fit on every point so far, then the round's new samples,
   each phase timed into its stage */
static PetscErrorCode MapRunAdaptiveRound(MapRunCtx *r, PetscErrorCode (*round)(MapRunCtx *, int, int, PetscBool *), int it, int round_id, PetscBool *stop)
{
  PetscFunctionBegin;
  PetscCall(MapRunPhaseBegin(r, MAP_RUN_FIT));
  PetscCall(MapRunFitMetric(r));
  PetscCall(MapRunPhaseEnd(r, MAP_RUN_FIT));
  PetscCall(MapRunPhaseBegin(r, MAP_RUN_EVALUATE));
  PetscCall(round(r, it, round_id, stop));
  PetscCall(MapRunPhaseEnd(r, MAP_RUN_EVALUATE));
  PetscFunctionReturn(0);
}

/* The real front: every model evaluated on the real tasks (the samples are paid for too), filtered
   to the non-dominated set of their accuracies, in evaluation order. */
static PetscErrorCode MapRunRealFront(MapRunCtx *r)
{
  int      T = r->T;
  PetscInt n = r->samples.n + r->report.kreal + (r->opt.npref ? 1 : 0), k = 0;
  double  *C, *A;
  int     *keep;

  PetscFunctionBegin;
  PetscCall(PetscMalloc3(n * T, &C, n * T, &A, n, &keep));
  n = 0;
  /* A: the metric as the search sees it (larger is better); failed evaluations are left out */
  for (PetscInt i = 0; i < r->samples.n; i++) {
    if (r->samples.task[i] >= 0) continue; /* evaluated on one task only (per-task Bayesian rounds) */
    PetscCall(PetscArraycpy(&C[n * T], &r->samples.C[i * T], T));
    n += MapRunMetricOriented(r, &r->samples.acc[i * T], &A[n * T]);
  }
  for (PetscInt i = 0; i < r->report.kreal; i++) {
    PetscCall(PetscArraycpy(&C[n * T], &r->report.Cf[r->report.real_index[i] * T], T));
    n += MapRunMetricOriented(r, &r->report.real_acc[i * T], &A[n * T]);
  }
  if (r->opt.npref) {
    double pick[MAP_MAX_TASKS];
    PetscCall(PetscArraycpy(&C[n * T], r->report.pick_c, T));
    n += MapRunMetricOriented(r, r->report.pick_acc, &A[n * T]);
    r->report.pick_score = NAN; /* a failed pick has no score */
    if (MapRunMetricOriented(r, r->report.pick_acc, pick)) PetscCall(MapParetoPreferenceValue(r->pareto, r->opt.pref, pick, &r->report.pick_score));
  }
  /* the best model evaluated so far for the preference, ranked by the pick's own criterion (the
     scalarised value of its real accuracies): a model the run already paid for, reported beside the
     surrogate's pick, which can be worse where the quadratics are off (at T = 8 they over-predict
     small coefficients) */
  if (r->opt.npref) {
    r->report.best_found = PETSC_FALSE;
    for (PetscInt i = 0; i < n; i++) {
      double sc;
      PetscCall(MapParetoPreferenceValue(r->pareto, r->opt.pref, &A[i * T], &sc));
      if (!r->report.best_found || sc < r->report.best_score) {
        r->report.best_found = PETSC_TRUE;
        r->report.best_score = sc;
        PetscCall(PetscArraycpy(r->report.best_c, &C[i * T], T));
        for (int t = 0; t < T; t++) r->report.best_acc[t] = r->metric.sign * A[i * T + t]; /* back in the metric's units */
      }
    }
  }
  r->report.kall = MapNonDominated(T, n, A, keep);
  PetscCall(PetscMalloc2(r->report.kall * T + 1, &r->report.all_c, r->report.kall * T + 1, &r->report.all_acc));
  for (PetscInt i = 0; i < n; i++)
    if (keep[i]) {
      PetscCall(PetscArraycpy(&r->report.all_c[k * T], &C[i * T], T));
      for (int t = 0; t < T; t++) r->report.all_acc[k * T + t] = r->metric.sign * A[i * T + t];
      k++;
    }
  PetscCall(PetscFree3(C, A, keep));
  PetscFunctionReturn(0);
}

/* the pick's accuracy and loss on the held-out test sets (-map_test_data) */
static PetscErrorCode MapRunPickTest(MapRunCtx *r)
{
  MapTaskMetrics m[MAP_MAX_TASKS];

  PetscFunctionBegin;
  PetscCall(MapRunEvaluateHeldOut(r, r->report.pick_c, m)); /* by the run's worker when it can (run_groups.c) */
  for (int t = 0; t < r->T; t++) {
    r->report.pick_test_acc[t]  = m[t].metric; /* -map_metric's values (the accuracy by default) */
    r->report.pick_test_loss[t] = m[t].loss;
  }
  PetscFunctionReturn(0);
}

/* One refinement round under a budget: the current fit's predicted front, and of its points the
   round's share spread farthest from everything evaluated so far (MapRunBudgetSpread) become samples. */
static PetscErrorCode MapRunBudgetRefineRound(MapRunCtx *r, int it, int round_id, PetscBool *stop)
{
  const int     T = r->T;
  PetscInt      kf, P = r->budget.round_now, nsel, n0 = r->samples.n;
  const double *Cf;
  PetscInt     *sel;

  PetscFunctionBegin;
  PetscCall(MapParetoSetObjectives(r->pareto, T, T, MapRunObjectiveMetric, r));
  PetscCall(MapParetoSetObjectiveHessian(r->pareto, MapRunObjectiveMetricHessian));
  PetscCall(MapParetoSolve(r->pareto));
  PetscCall(MapParetoGetFront(r->pareto, &kf, &Cf, NULL, NULL));
  PetscCall(PetscMalloc1(P + 1, &sel));
  PetscCall(MapRunBudgetSpread(r, kf, Cf, P, sel, &nsel));
  for (PetscInt k = 0; k < nsel; k++) PetscCall(MapSampleSetAppend(&r->samples, &Cf[sel[k] * T], NULL, NULL, round_id, -1));
  PetscCall(PetscFree(sel));
  r->budget.round_added = nsel;
  PetscCall(PetscPrintf(r->comm, "budget round %d: %" PetscInt_FMT " front points as new samples (%" PetscInt_FMT " of %" PetscInt_FMT " evaluations so far)\n",
                        it, nsel, n0 + nsel, r->budget.total));
  PetscCall(MapRunEvaluateSampleRange(r, n0, n0 + nsel, stop));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapRunBudgetBayesRound(MapRunCtx *r, int it, int round_id, PetscBool *stop)
{
  PetscInt n0 = r->samples.n;

  PetscFunctionBegin;
  r->opt.bayes_batch = r->budget.round_now;
  PetscCall(MapRunBayesRound(r, it, round_id, stop));
  r->budget.round_added = r->samples.n - n0;
  PetscFunctionReturn(0);
}

/* -map_budget's adaptive rounds (the plan and the spread: run_budget.c): until only the re-evaluation reserve is left, or a round finds nothing new */
static PetscErrorCode MapRunBudgetRounds(MapRunCtx *r, PetscBool bayes, PetscBool *stop)
{
  MapRunBudget *b = &r->budget;

  PetscFunctionBegin;
  for (int it = 1; !*stop && MapRunBudgetLeft(r) > b->reserve; it++) {
    b->round_now = PetscMin(b->round_points, MapRunBudgetLeft(r) - b->reserve);
    PetscCall(MapRunAdaptiveRound(r, bayes ? MapRunBudgetBayesRound : MapRunBudgetRefineRound, it, it, stop));
    if (*stop) break;
    b->rounds++;
    b->refined += b->round_added;
    if (!b->round_added) break; /* the front has no point left that was not evaluated */
  }
  PetscFunctionReturn(0);
}

/* the design, then Bayesian rounds where the surrogate fits worst, then refinement rounds (or -map_budget's) */
static PetscErrorCode MapRunSample(MapRunCtx *r, PetscBool *stop)
{
  PetscBool bayes = strcmp(r->opt.method, "bayesian") ? PETSC_FALSE : PETSC_TRUE;

  PetscFunctionBegin;
  PetscCall(MapRunPhaseBegin(r, MAP_RUN_EVALUATE));
  PetscCall(MapRunEvaluateSamples(r, 0, r->samples.n, stop));
  PetscCall(MapRunPhaseEnd(r, MAP_RUN_EVALUATE));
  for (PetscInt it = 1; bayes && !*stop && it <= r->opt.bayes_iterations; it++)
    PetscCall(MapRunAdaptiveRound(r, MapRunBayesRound, (int)it, (int)it, stop));
  for (PetscInt it = 1; !*stop && it <= r->opt.refine; it++)
    PetscCall(MapRunAdaptiveRound(r, MapRunRefineRound, (int)it, (int)((bayes ? r->opt.bayes_iterations : 0) + it), stop));
  if (!*stop && r->budget.total) PetscCall(MapRunBudgetRounds(r, bayes, stop)); /* -map_budget's rounds (run_budget.c) */
  PetscFunctionReturn(0);
}

/* the final fit on every evaluated point (the reference code leaves its last batch out), then the
   front of the accuracy surrogates and the pick for the preference */
static PetscErrorCode MapRunFitAndSearch(MapRunCtx *r)
{
  MapRunReport *rep = &r->report;

  PetscFunctionBegin;
  PetscCall(MapRunPhaseBegin(r, MAP_RUN_FIT));
  PetscCall(MapRunFitMetric(r));
  PetscCall(MapRunPhaseEnd(r, MAP_RUN_FIT));
  r->fitted = PETSC_TRUE;
  PetscCall(MapRunPhaseBegin(r, MAP_RUN_SEARCH));
  PetscCall(MapParetoSetObjectives(r->pareto, r->T, r->T, MapRunObjectiveMetric, r));
  PetscCall(MapParetoSetObjectiveHessian(r->pareto, MapRunObjectiveMetricHessian));
  PetscCall(MapParetoSolve(r->pareto));
  PetscCall(MapParetoGetFront(r->pareto, &rep->kfront, &rep->Cf, &rep->Ff, &rep->Wf));
  if (r->opt.npref) PetscCall(MapParetoPick(r->pareto, r->opt.pref, rep->pick_c, rep->pick_pred));
  PetscCall(MapRunMetricFront(r)); /* the front and the pick's prediction in the metric's own units */
  PetscCall(MapRunPhaseEnd(r, MAP_RUN_SEARCH));
  PetscFunctionReturn(0);
}

/* the front points to re-evaluate: up to -map_reevaluate spread evenly along the front (in preference
   order), or with -map_budget all that is left of it but the pick, spread farthest from the samples */
static PetscErrorCode MapRunChooseReevaluations(MapRunCtx *r)
{
  MapRunReport *rep = &r->report;

  PetscFunctionBegin;
  rep->kreal = PetscMin(r->budget.total ? MapRunBudgetReevaluateCap(r) : r->opt.reevaluate, rep->kfront);
  PetscCall(PetscMalloc3(rep->kreal + 1, &rep->real_index, (rep->kreal + 1) * r->T, &rep->real_acc, (rep->kreal + 1) * r->T, &rep->real_loss));
  if (r->budget.total) PetscCall(MapRunBudgetChooseReevaluations(r));
  else
    for (PetscInt k = 0; k < rep->kreal; k++) rep->real_index[k] = rep->kreal == 1 ? 0 : (int)((k * (rep->kfront - 1) + (rep->kreal - 1) / 2) / (rep->kreal - 1));
  PetscFunctionReturn(0);
}

/* up to -map_reevaluate front points, spread along the front (in preference order), and the pick,
   evaluated on the real models */
static PetscErrorCode MapRunReevaluate(MapRunCtx *r, PetscBool *stop)
{
  PetscBool tested; /* the pick's held-out report was made with the re-evaluations */

  PetscFunctionBegin;
  PetscCall(MapRunPhaseBegin(r, MAP_RUN_REEVALUATE));
  PetscCall(MapRunChooseReevaluations(r));
  PetscCall(MapRunEvaluateFront(r, stop, &tested)); /* the re-evaluations and the pick, G at a time with evaluator groups */
  if (!*stop && r->opt.npref && r->ev_test && !tested) PetscCall(MapRunPickTest(r));
  PetscCall(MapRunPhaseEnd(r, MAP_RUN_REEVALUATE));
  PetscFunctionReturn(0);
}

/* Nested MAP: the merge tree, level by level; a chain job stops after its level */
static PetscErrorCode MapRunSolveNested(MapRunCtx *r, PetscBool *stop)
{
  PetscFunctionBegin;
  PetscCall(MapRunPhaseBegin(r, MAP_RUN_EVALUATE));
  PetscCall(MapRunNested(r, stop));
  PetscCall(MapRunPhaseEnd(r, MAP_RUN_EVALUATE));
  if (!*stop && r->nested_partial) {
    PetscCall(PetscPrintf(r->comm, "nested MAP: level %d pair %d done in %s; the next level's jobs continue from the journals\n",
                          (int)r->opt.nested_level, (int)r->opt.nested_pair, r->opt.out));
    r->status = MAP_RUN_LEVEL_DONE;
  }
  if (!*stop && !r->nested_partial && r->ev_test) PetscCall(MapRunPickTest(r));
  PetscFunctionReturn(0);
}

/*@
  MapRunSolve - runs MAP after MapRunSetUp: evaluate the design (journaled), Bayesian and refinement
  rounds, fit, search the front, re-evaluate it and the pick; or Nested MAP's merge tree. Then the
  results (MapRunWriteResults). Interrupted by SIGUSR1/SIGTERM, it leaves every finished evaluation
  journaled and sets exit status 85 (resume with -map_resume). Collective.
@*/
PetscErrorCode MapRunSolve(MapRun r)
{
  PetscBool stop = PETSC_FALSE;

  PetscFunctionBegin;
  if (!strcmp(r->opt.method, "nested")) PetscCall(MapRunSolveNested(r, &stop));
  else {
    PetscCall(MapRunSample(r, &stop));
    if (!stop) PetscCall(MapRunFitAndSearch(r));
    if (!stop) PetscCall(MapRunReevaluate(r, &stop));
    if (!stop) PetscCall(MapRunRealFront(r));
  }
  if (stop) { /* every finished evaluation is journaled: exit 85 for requeue/resume */
    r->status     = MAP_RUN_CHECKPOINTED;
    MapExitStatus = MAP_EXIT_CHECKPOINTED;
  }
  if (r->status != MAP_RUN_SOLVING) PetscFunctionReturn(0);
  PetscCall(MapRunPhaseBegin(r, MAP_RUN_WRITE));
  PetscCall(MapRunWriteResults(r));
  PetscCall(MapRunPhaseEnd(r, MAP_RUN_WRITE));
  r->status = MAP_RUN_COMPLETED;
  PetscFunctionReturn(0);
}
