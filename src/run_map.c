/* `mapmerge run`: MAP end to end — sample, evaluate (journaled), fit surrogates, search the Pareto
   front, re-evaluate part of it on the real models, pick, write results (docs/design.md §5-6). */
#include "runimpl.h"
#include <errno.h>
#include <glob.h>

const char *const MapRunPhaseNames[MAP_RUN_NPHASE] = {"setup", "evaluate", "fit", "search", "reevaluate", "write"};

PetscErrorCode MapRunPhaseBegin(MapRunCtx *r, MapRunPhase p)
{
  PetscFunctionBegin;
  PetscCall(PetscLogStagePush(r->stages[p]));
  r->phase_t0 = MapWallTime();
  PetscFunctionReturn(0);
}

PetscErrorCode MapRunPhaseEnd(MapRunCtx *r, MapRunPhase p)
{
  PetscFunctionBegin;
  PetscCall(PetscLogStagePop());
  r->t_phase[p] += MapWallTime() - r->phase_t0;
  PetscFunctionReturn(0);
}
static PetscErrorCode MapObjectiveAccuracy(void *ctx, const double *c, double *f, double *J)
{
  MapRunCtx *r = (MapRunCtx *)ctx;

  PetscFunctionBegin;
  for (int t = 0; t < r->T; t++) PetscCall(MapSurrogatePredict(r->sur, t, c, &f[t], J ? &J[t * r->T] : NULL));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapObjectiveAccuracyHessian(void *ctx, const double *c, const double *coef, double *H)
{
  MapRunCtx *r = (MapRunCtx *)ctx;

  PetscFunctionBegin;
  PetscCall(PetscArrayzero(H, r->T * r->T));
  for (int t = 0; t < r->T; t++)
    if (coef[t] != 0) PetscCall(MapSurrogateHessianAdd(r->sur, t, c, coef[t], H));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapRunDestroy(MapRunCtx *r)
{
  PetscFunctionBegin;
  PetscCall(MapParetoDestroy(&r->pareto));
  PetscCall(MapSurrogateDestroy(&r->sur));
  PetscCall(MapRunEvalGroupsDestroy(r));
  PetscCall(MapEvaluatorDestroy(&r->ev));
  PetscCall(MapEvaluatorDestroy(&r->ev_test));
  PetscCall(MapModelDestroy(&r->model));
  PetscCall(MapStoreDestroy(&r->store));
  PetscCall(MapJournalClose(&r->journal));
  if (r->inputs_sha256) json_decref(r->inputs_sha256);
  r->inputs_sha256 = NULL;
  PetscCall(MapFreeList(r->T, &r->tasks));
  PetscCall(MapFreeList(r->neval_data, &r->eval_data));
  PetscCall(PetscFree3(r->C, r->acc, r->loss));
  PetscCall(PetscFree(r->round));
  PetscCall(PetscFree(r->sample_task));
  PetscCall(PetscFree2(r->all_c, r->all_acc));
  PetscCall(PetscFree3(r->real_index, r->real_acc, r->real_loss));
  PetscFunctionReturn(0);
}

/* Evaluate samples [i0, i1) (journaled; skipped when the journal has them). */
static PetscErrorCode MapRunEvaluateSamples(MapRunCtx *r, PetscInt i0, PetscInt i1, PetscBool *stop)
{
  PetscBool fresh;
  double    t0 = MapWallTime();

  PetscFunctionBegin;
  PetscBool grouped;
  PetscCall(MapRunEvaluateSamplesGrouped(r, i0, i1, stop, &grouped)); /* concurrent command/worker groups, if asked */
  if (grouped) PetscFunctionReturn(0);
  for (PetscInt i = i0; i < i1; i++) {
    PetscBool want[MAP_MAX_TASKS];
    int       task = (int)r->sample_task[i];
    PetscCall(MapRunCheckSignal(r, stop));
    if (*stop) break;
    for (int t = 0; t < r->T; t++) want[t] = task < 0 || task == t ? PETSC_TRUE : PETSC_FALSE;
    PetscCall(MapRunEvaluateOn(r, r->comm, r->ev, "sample", (int)i, &r->C[i * r->T], task < 0 ? NULL : want, &r->acc[i * r->T],
                               &r->loss[i * r->T], &fresh));
    if (fresh) PetscCall(MapProgress(r->comm, "evaluate samples", i + 1 - i0, i1 - i0, t0));
  }
  PetscFunctionReturn(0);
}

/* Fit accuracy (sigmoid link) and loss (softplus link) surrogates to all samples so far. */
static PetscErrorCode MapRunFit(MapRunCtx *r)
{
  double  *Y;
  MapLink *links;
  int      T = r->T;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(r->n * 2 * T, &Y, 2 * T, &links));
  for (PetscInt i = 0; i < r->n; i++)
    for (int t = 0; t < T; t++) {
      Y[i * 2 * T + t]     = r->acc[i * T + t];
      Y[i * 2 * T + T + t] = r->loss[i * T + t];
    }
  for (int t = 0; t < T; t++) {
    links[t]     = MAP_LINK_SIGMOID;
    links[T + t] = MAP_LINK_SOFTPLUS;
  }
  PetscCall(MapSurrogateFit(r->sur, T, r->n, r->C, 2 * T, Y, links));
  PetscCall(PetscFree2(Y, links));
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
  int      T = r->T, ndraw = r->bayes_per_task ? T : 1;
  double  *sqres, *Ct;
  PetscInt B = r->bayes_batch, added = 0;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(r->n, &sqres, r->n * T, &Ct));
  for (int d = 0; d < ndraw; d++) {
    PetscInt nt   = 0;
    uint64_t seed = (uint64_t)r->seed;
    for (PetscInt i = 0; i < r->n; i++) {
      double sq = 0;
      if (r->bayes_per_task && isnan(r->acc[i * T + d])) continue; /* task d was not evaluated here */
      for (int t = 0; t < T; t++) {
        double pred;
        if (r->bayes_per_task && t != d) continue;
        PetscCall(MapSurrogatePredict(r->sur, t, &r->C[i * T], &pred, NULL));
        sq += (pred - r->acc[i * T + t]) * (pred - r->acc[i * T + t]);
      }
      PetscCall(PetscArraycpy(&Ct[nt * T], &r->C[i * T], T));
      sqres[nt++] = sq;
    }
    /* task d's draws: their own stream (task 0 does not reuse the all-task mode's draws) */
    if (r->bayes_per_task) seed = MapRngU64((uint64_t)r->seed, 0x7461736b /* "task" */, (uint64_t)d);
    PetscCall(MapBayesPropose(T, nt, Ct, sqres, r->lo, r->hi, seed, it, B, &r->bayes, &r->C[(r->n + added) * T], NULL));
    for (PetscInt i = r->n + added; i < r->n + added + B; i++) {
      r->round[i]       = round_id;
      r->sample_task[i] = r->bayes_per_task ? d : -1;
    }
    added += B;
  }
  PetscCall(PetscFree2(sqres, Ct));
  if (r->bayes_per_task)
    PetscCall(PetscPrintf(r->comm, "bayesian round %d: %" PetscInt_FMT " new samples per task, each evaluated on its task (%" PetscInt_FMT " so far)\n",
                          it, B, r->n + added));
  else PetscCall(PetscPrintf(r->comm, "bayesian round %d: %" PetscInt_FMT " new samples (%" PetscInt_FMT " so far)\n", it, B, r->n + added));
  PetscCall(MapRunEvaluateSamples(r, r->n, r->n + added, stop));
  if (!*stop) r->n += added;
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
  const int T = r->T;
  PetscInt  kf, K, added = 0;
  const double *Cf;

  PetscFunctionBegin;
  PetscCall(MapParetoSetObjectives(r->pareto, T, T, MapObjectiveAccuracy, r));
  PetscCall(MapParetoSetObjectiveHessian(r->pareto, MapObjectiveAccuracyHessian));
  if (r->refine_pick) { /* one point: the current fit's pick for the preference */
    double fpick[MAP_MAX_TASKS];
    PetscCall(MapParetoPick(r->pareto, r->pref, r->pick_c, fpick));
    kf = 1;
    Cf = r->pick_c;
  } else {
    PetscCall(MapParetoSolve(r->pareto));
    PetscCall(MapParetoGetFront(r->pareto, &kf, &Cf, NULL, NULL));
  }
  K = PetscMin(r->refine_points, kf);
  for (PetscInt k = 0; k < K; k++) {
    PetscInt      q = K == 1 ? 0 : (k * (kf - 1) + (K - 1) / 2) / (K - 1);
    const double *c = Cf + q * T;
    PetscBool     seen = PETSC_FALSE;
    for (PetscInt i = 0; i < r->n + added && !seen; i++) {
      double d = 0;
      for (int j = 0; j < T; j++) d = PetscMax(d, PetscAbsReal(r->C[i * T + j] - c[j]));
      seen = d <= 1e-6 * (r->hi - r->lo) ? PETSC_TRUE : PETSC_FALSE;
    }
    if (seen) continue;
    PetscCall(PetscArraycpy(&r->C[(r->n + added) * T], c, T));
    r->round[r->n + added] = round_id;
    added++;
  }
  PetscCall(PetscPrintf(r->comm, "refine round %d: %" PetscInt_FMT " front points as new samples (%" PetscInt_FMT " so far)\n", it, added,
                        r->n + added));
  PetscCall(MapRunEvaluateSamples(r, r->n, r->n + added, stop));
  if (!*stop) r->n += added;
  PetscFunctionReturn(0);
}

/* one adaptive round (Bayesian or refinement): fit on every point so far, then the round's new samples,
   each phase timed into its stage */
static PetscErrorCode MapRunAdaptiveRound(MapRunCtx *r, PetscErrorCode (*round)(MapRunCtx *, int, int, PetscBool *), int it, int round_id, PetscBool *stop)
{
  PetscFunctionBegin;
  PetscCall(MapRunPhaseBegin(r, MAP_RUN_FIT));
  PetscCall(MapRunFit(r));
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
  PetscInt n = r->n + r->kreal + (r->npref ? 1 : 0), k = 0;
  double  *C, *A;
  int     *keep;

  PetscFunctionBegin;
  PetscCall(PetscMalloc3(n * T, &C, n * T, &A, n, &keep));
  n = 0;
  for (PetscInt i = 0; i < r->n; i++) {
    if (r->sample_task[i] >= 0) continue; /* evaluated on one task only (per-task Bayesian rounds) */
    PetscCall(PetscArraycpy(&C[n * T], &r->C[i * T], T));
    PetscCall(PetscArraycpy(&A[n * T], &r->acc[i * T], T));
    n++;
  }
  for (PetscInt i = 0; i < r->kreal; i++, n++) {
    PetscCall(PetscArraycpy(&C[n * T], &r->Cf[r->real_index[i] * T], T));
    PetscCall(PetscArraycpy(&A[n * T], &r->real_acc[i * T], T));
  }
  if (r->npref) {
    PetscCall(PetscArraycpy(&C[n * T], r->pick_c, T));
    PetscCall(PetscArraycpy(&A[n * T], r->pick_acc, T));
    n++;
  }
  /* the best model evaluated so far for the preference, ranked by the pick's own criterion (the
     scalarised value of its real accuracies): a model the run already paid for, reported beside the
     surrogate's pick, which can be worse where the quadratics are off (at T = 8 they over-predict
     small coefficients) */
  if (r->npref) {
    r->best_found = PETSC_FALSE;
    PetscCall(MapParetoPreferenceValue(r->pareto, r->pref, r->pick_acc, &r->pick_score));
    for (PetscInt i = 0; i < n; i++) {
      double sc;
      PetscCall(MapParetoPreferenceValue(r->pareto, r->pref, &A[i * T], &sc));
      if (!r->best_found || sc < r->best_score) {
        r->best_found = PETSC_TRUE;
        r->best_score = sc;
        PetscCall(PetscArraycpy(r->best_c, &C[i * T], T));
        PetscCall(PetscArraycpy(r->best_acc, &A[i * T], T));
      }
    }
  }
  r->kall = MapNonDominated(T, n, A, keep);
  PetscCall(PetscMalloc2(r->kall * T + 1, &r->all_c, r->kall * T + 1, &r->all_acc));
  for (PetscInt i = 0; i < n; i++)
    if (keep[i]) {
      PetscCall(PetscArraycpy(&r->all_c[k * T], &C[i * T], T));
      PetscCall(PetscArraycpy(&r->all_acc[k * T], &A[i * T], T));
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
  PetscCall(MapEvaluatorEvaluate(r->ev_test, r->pick_c, m));
  for (int t = 0; t < r->T; t++) {
    r->pick_test_acc[t]  = m[t].accuracy;
    r->pick_test_loss[t] = m[t].loss;
  }
  PetscFunctionReturn(0);
}

/* interrupted by a signal with every finished evaluation journaled: exit 85 for requeue/resume */
static PetscErrorCode MapRunCheckpointExit(MapRunCtx *r)
{
  PetscFunctionBegin;
  PetscCall(MapRunDestroy(r));
  MapExitStatus = MAP_EXIT_CHECKPOINTED;
  PetscFunctionReturn(0);
}

PetscErrorCode MapCommandRun(MPI_Comm comm)
{
  MapRunCtx   r;
  PetscBool   help, stop = PETSC_FALSE, fresh;

  PetscFunctionBegin;
  memset(&r, 0, sizeof(r));
  r.comm = comm;
  PetscCallMPI(MPI_Comm_rank(comm, &r.rank));
  PetscCallMPI(MPI_Comm_size(comm, &r.size));
  for (int i = 0; i < MAP_RUN_NPHASE; i++) {
    char name[64];
    snprintf(name, sizeof(name), "MAP %s", MapRunPhaseNames[i]);
    PetscCall(PetscLogStageRegister(name, &r.stages[i]));
  }
  /* the driver did this before PetscInitialize; again for callers of the library. PetscFinalize
     resets SIGTERM but leaves SIGUSR1, the signal the job scripts forward. */
  PetscCheck(MapRunCatchSignals() == 0, comm, PETSC_ERR_SYS, "sigaction failed: %s", strerror(errno));
  MapEvalSetInterruptQuery(MapRunSignalCaught); /* a signalled job step stops the command evaluator's program too */
  MapRunNow(r.start_time, sizeof(r.start_time));
  PetscCall(MapRunPhaseBegin(&r, MAP_RUN_SETUP));
  PetscCall(MapRunSetFromOptions(&r));
  PetscCall(PetscOptionsHasHelp(NULL, &help));
  if (help) {
    PetscCall(PetscLogStagePop());
    PetscCall(MapRunDestroy(&r));
    PetscFunctionReturn(0);
  }
  PetscCall(MapCheckOptionsLeft(comm));

  /* the design: same points for any rank count (counter-based draws) */
  MapSampleType st = MAP_SAMPLE_REFERENCE;
  if (!strcmp(r.sample_type, "lhs")) st = MAP_SAMPLE_LHS;
  else if (!strcmp(r.sample_type, "file")) st = MAP_SAMPLE_FILE;
  else PetscCheck(!strcmp(r.sample_type, "reference"), comm, PETSC_ERR_ARG_UNKNOWN_TYPE,
                  "-map_sample_type %s: expected reference, lhs or file", r.sample_type);
  double  *C0 = NULL;
  PetscBool bayes  = strcmp(r.method, "bayesian") ? PETSC_FALSE : PETSC_TRUE;
  PetscBool nested = strcmp(r.method, "nested") ? PETSC_FALSE : PETSC_TRUE;
  PetscInt  F     = (PetscInt)(r.T + 1) * (r.T + 2) / 2, nmax;
  if (bayes) {
    /* defaults: an initial fit that does not interpolate (1.5 F, the fit's own warning threshold),
       then rounds up to the plain design's budget of 2 F = (T+1)(T+2) evaluations */
    if (!r.bayes_initial) r.bayes_initial = (3 * F + 1) / 2;
    if (!r.bayes_batch) r.bayes_batch = PetscMax(2, (2 * F - r.bayes_initial + r.bayes_iterations - 1) / PetscMax(1, r.bayes_iterations));
    if (st != MAP_SAMPLE_FILE) r.sample_n = r.bayes_initial;
  }
  if (nested) { /* the tree's evaluations are appended as they happen */
    r.n  = 0;
    nmax = r.T + (r.T - 1) * (PetscMax(r.nested_samples, 12) + 1);
  } else {
    PetscCall(MapSampleGenerate(st, r.T, (const char *const *)r.tasks, r.sample_n, r.lo, r.hi, (uint64_t)r.seed, r.sample_file,
                                &r.n, &C0));
    PetscCall(MapSampleCheckIdentifiable(r.T, r.n, C0));
    if (!r.refine_points) r.refine_points = F;
    /* in double: the options are each in range, but their products need not fit a PetscInt */
    double total = (double)r.n + (bayes ? (double)r.bayes_iterations * (double)r.bayes_batch * (r.bayes_per_task ? r.T : 1) : 0) +
                   (double)r.refine * (double)r.refine_points;
    PetscCheck(total <= MAP_RUN_MAX_EVALS, comm, PETSC_ERR_ARG_OUTOFRANGE,
               "the run would evaluate up to %.4g models (%" PetscInt_FMT " samples + -map_refine %" PetscInt_FMT " x -map_refine_points %" PetscInt_FMT
               "%s), more than the limit of %d",
               total, r.n, r.refine, r.refine_points, bayes ? " + -map_bayes_iterations x -map_bayes_batch" : "", MAP_RUN_MAX_EVALS);
    nmax = r.n + (bayes ? r.bayes_iterations * r.bayes_batch * (r.bayes_per_task ? r.T : 1) : 0) + r.refine * r.refine_points;
  }
  PetscCall(PetscMalloc3(nmax * r.T, &r.C, nmax * r.T, &r.acc, nmax * r.T, &r.loss));
  PetscCall(PetscCalloc1(nmax, &r.round));
  PetscCall(PetscMalloc1(nmax, &r.sample_task));
  for (PetscInt i = 0; i < nmax; i++) r.sample_task[i] = -1;
  PetscCall(MapSurrogateSetAllowMissing(r.sur, r.bayes_per_task));
  if (r.n) PetscCall(PetscArraycpy(r.C, C0, r.n * r.T));
  PetscCall(PetscFree(C0));

  PetscCall(MapRunMakeFolder(&r));
  {
    /* eval sets: one per selected task, or one per store task (then picked by the task names) */
    int    nd;
    char **ed;
    PetscCall(MapOptionsGetList("-map_eval_data", &nd, &ed, NULL));
    if (r.store) PetscCall(MapStoreSelectPerTask(r.store, r.T, (const char *const *)r.tasks, "-map_eval_data", &nd, &ed));
    PetscCheck(nd == 0 || nd == r.T, comm, PETSC_ERR_ARG_SIZ,
               "-map_eval_data gives %d eval set(s) but there are %d tasks (one per task, or one per store task)", nd, r.T);
    PetscCall(MapEvaluatorSetLogDir(r.ev, r.out)); /* the external program's stderr log lives with the journal */
    PetscCall(MapEvaluatorSetUp(r.ev, r.model, r.T, (const char *const *)r.tasks, nd ? (const char *const *)ed : NULL));
    r.neval_data = nd;
    r.eval_data  = ed;
  }
  if (r.test_data[0] && r.npref) {
    int    nd;
    char **td;
    PetscCall(MapSplitList(r.test_data, ',', &nd, &td));
    if (r.store) PetscCall(MapStoreSelectPerTask(r.store, r.T, (const char *const *)r.tasks, "-map_test_data", &nd, &td));
    PetscCheck(nd == r.T, comm, PETSC_ERR_ARG_SIZ, "-map_test_data gives %d eval set(s) but there are %d tasks", nd, r.T);
    PetscCall(MapEvaluatorCreate(comm, &r.ev_test));
    PetscCall(MapEvaluatorSetFromOptions(r.ev_test));
    PetscCall(MapEvaluatorSetUp(r.ev_test, r.model, r.T, (const char *const *)r.tasks, (const char *const *)td));
    PetscCall(MapFreeList(nd, &td));
  }
  /* the inputs as read, and a journal bound to them (opened after the evaluator read its data) */
  PetscCall(MapRunHashInputs(&r));
  PetscCall(MapRunCheckOutputsNotInputs(&r));
  {
    char jpath[MAP_PATH_LEN];
    if (r.nested_level > 0) snprintf(jpath, sizeof(jpath), "%s/journal-L%d-P%d.jsonl", r.out, (int)r.nested_level, (int)r.nested_pair);
    else snprintf(jpath, sizeof(jpath), "%s/journal.jsonl", r.out);
    /* a nested chain's jobs share the run folder, each journaling into its own file; read them all */
    char   pattern[MAP_PATH_LEN];
    glob_t gl;
    memset(&gl, 0, sizeof(gl));
    snprintf(pattern, sizeof(pattern), "%s/journal*.jsonl", r.out);
    if (!r.rank && nested) (void)glob(pattern, 0, NULL, &gl);
    char  *binding;
    PetscCall(MapCheckInputFile(jpath, "the run's journal")); /* every rank: a FIFO there fails them together */
    PetscCall(MapRunBinding(&r, &binding));
    PetscCall(MapJournalOpenWithOthers(comm, jpath, r.resume, (int)gl.gl_pathc, gl.gl_pathv, binding, &r.journal));
    PetscCall(PetscFree(binding));
    if (!r.rank && nested) globfree(&gl);
    if (r.resume) PetscCall(PetscPrintf(comm, "mapmerge run: resuming %s with %d journaled evaluations\n", r.out, r.journal.n));
  }
  PetscCall(MapRunPhaseEnd(&r, MAP_RUN_SETUP));

  if (nested) {
    PetscCall(MapRunPhaseBegin(&r, MAP_RUN_EVALUATE));
    PetscCall(MapRunNested(&r, &stop));
    PetscCall(MapRunPhaseEnd(&r, MAP_RUN_EVALUATE));
    if (!stop && r.nested_partial) {
      PetscCall(PetscPrintf(comm, "nested MAP: level %d pair %d done in %s; the next level's jobs continue from the journals\n",
                            (int)r.nested_level, (int)r.nested_pair, r.out));
      PetscCall(MapRunDestroy(&r));
      PetscFunctionReturn(0);
    }
    if (!stop && r.ev_test) PetscCall(MapRunPickTest(&r));
    if (stop) PetscCall(MapRunCheckpointExit(&r));
    if (stop) PetscFunctionReturn(0);
    PetscCall(MapRunPhaseBegin(&r, MAP_RUN_WRITE));
    PetscCall(MapRunWriteResults(&r));
    PetscCall(MapRunPhaseEnd(&r, MAP_RUN_WRITE));
    PetscCall(MapRunSummary(&r));
    PetscCall(MapRunDestroy(&r));
    PetscFunctionReturn(0);
  }

  /* evaluate the design; Bayesian MAP then adds rounds where the surrogate fits worst */
  PetscCall(MapRunPhaseBegin(&r, MAP_RUN_EVALUATE));
  PetscCall(MapRunEvaluateSamples(&r, 0, r.n, &stop));
  PetscCall(MapRunPhaseEnd(&r, MAP_RUN_EVALUATE));
  for (PetscInt it = 1; bayes && !stop && it <= r.bayes_iterations; it++)
    PetscCall(MapRunAdaptiveRound(&r, MapRunBayesRound, (int)it, (int)it, &stop));
  for (PetscInt it = 1; !stop && it <= r.refine; it++)
    PetscCall(MapRunAdaptiveRound(&r, MapRunRefineRound, (int)it, (int)((bayes ? r.bayes_iterations : 0) + it), &stop));
  if (stop) PetscCall(MapRunCheckpointExit(&r));
  if (stop) PetscFunctionReturn(0);

  /* the final fit uses every evaluated point (the reference code leaves its last batch out) */
  PetscCall(MapRunPhaseBegin(&r, MAP_RUN_FIT));
  PetscCall(MapRunFit(&r));
  PetscCall(MapRunPhaseEnd(&r, MAP_RUN_FIT));
  r.fitted = PETSC_TRUE;

  /* search the accuracy surrogates for the front */
  PetscCall(MapRunPhaseBegin(&r, MAP_RUN_SEARCH));
  PetscCall(MapParetoSetObjectives(r.pareto, r.T, r.T, MapObjectiveAccuracy, &r));
  PetscCall(MapParetoSetObjectiveHessian(r.pareto, MapObjectiveAccuracyHessian));
  PetscCall(MapParetoSolve(r.pareto));
  PetscCall(MapParetoGetFront(r.pareto, &r.kfront, &r.Cf, &r.Ff, &r.Wf));
  if (r.npref) {
    PetscCall(MapParetoPick(r.pareto, r.pref, r.pick_c, r.pick_pred));
  }
  PetscCall(MapRunPhaseEnd(&r, MAP_RUN_SEARCH));

  /* re-evaluate up to K front points, spread along the front (in preference order) */
  PetscCall(MapRunPhaseBegin(&r, MAP_RUN_REEVALUATE));
  r.kreal = PetscMin(r.reevaluate, r.kfront);
  PetscCall(PetscMalloc3(r.kreal + 1, &r.real_index, (r.kreal + 1) * r.T, &r.real_acc, (r.kreal + 1) * r.T, &r.real_loss));
  for (PetscInt k = 0; k < r.kreal; k++) {
    r.real_index[k] = r.kreal == 1 ? 0 : (int)((k * (r.kfront - 1) + (r.kreal - 1) / 2) / (r.kreal - 1));
    PetscCall(MapRunCheckSignal(&r, &stop));
    if (stop) break;
    PetscCall(MapRunEvaluate(&r, "reeval", (int)k, &r.Cf[r.real_index[k] * r.T], &r.real_acc[k * r.T], &r.real_loss[k * r.T], &fresh));
    if (fresh) PetscCall(MapProgress(comm, "re-evaluate front", k + 1, r.kreal, r.phase_t0));
  }
  if (!stop && r.npref) {
    PetscCall(MapRunCheckSignal(&r, &stop));
    if (!stop) PetscCall(MapRunEvaluate(&r, "pick", 0, r.pick_c, r.pick_acc, r.pick_loss, &fresh));
    if (!stop && r.ev_test) PetscCall(MapRunPickTest(&r));
  }
  PetscCall(MapRunPhaseEnd(&r, MAP_RUN_REEVALUATE));
  if (stop) PetscCall(MapRunCheckpointExit(&r));
  if (stop) PetscFunctionReturn(0);

  PetscCall(MapRunRealFront(&r));
  PetscCall(MapRunPhaseBegin(&r, MAP_RUN_WRITE));
  PetscCall(MapRunWriteResults(&r));
  PetscCall(MapRunPhaseEnd(&r, MAP_RUN_WRITE));
  PetscCall(MapRunSummary(&r));
  PetscCall(MapRunDestroy(&r));
  PetscFunctionReturn(0);
}
