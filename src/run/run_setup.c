/* The MapRun object: Create, SetUp (the design, the run folder, the evaluators, the journal) and
   Destroy; `mapmerge run` as a driver of the object. Options: run_options.c; the
   MAP loop: run_map.c; results: run_results.c; the summary: run_view.c. */
#include "runimpl.h"
#include <errno.h>
#include <glob.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*@
  MapRunCreate - an empty run on comm: the log stages of its phases registered, SIGUSR1/SIGTERM
  caught (a signal asks for a checkpoint), its start time taken. Collective.
@*/
PetscErrorCode MapRunCreate(MPI_Comm comm, MapRun *run)
{
  MapRun r;

  PetscFunctionBegin;
  PetscCall(PetscNew(&r)); /* ~200 KiB of fixed-size arrays (options, tree): on the heap, not the stack */
  r->comm  = comm;
  r->phase = -1;
  PetscCallMPI(MPI_Comm_rank(comm, &r->rank));
  PetscCallMPI(MPI_Comm_size(comm, &r->size));
  for (int i = 0; i < MAP_RUN_NPHASE; i++) {
    char name[64];
    snprintf(name, sizeof(name), "MAP %s", MapRunPhaseNames[i]);
    PetscCall(PetscLogStageRegister(name, &r->stages[i]));
  }
  /* the driver did this before PetscInitialize; again for callers of the library. PetscFinalize
     resets SIGTERM but leaves SIGUSR1, the signal the job scripts forward. */
  PetscCheck(MapRunCatchSignals() == 0, comm, PETSC_ERR_SYS, "sigaction failed: %s", strerror(errno));
  MapEvalSetInterruptQuery(MapRunSignalCaught); /* a signalled job step stops the command evaluator's program too */
  MapRunNow(r->start_time, sizeof(r->start_time));
  *run = r;
  PetscFunctionReturn(0);
}

/* the design: same points for any rank count (counter-based draws); Nested MAP appends its tree's
   evaluations as they happen */
static PetscErrorCode MapRunSetUpDesign(MapRunCtx *r)
{
  double   *C0 = NULL;
  PetscInt  n = 0, F = (PetscInt)(r->T + 1) * (r->T + 2) / 2;
  PetscBool bayes = strcmp(r->opt.method, "bayesian") ? PETSC_FALSE : PETSC_TRUE;

  PetscFunctionBegin;
  r->samples.T = r->T;
  PetscCall(MapSurrogateSetAllowMissing(r->sur, r->opt.bayes_per_task));
  if (!strcmp(r->opt.method, "nested")) PetscFunctionReturn(0);
  if (bayes && !r->opt.bayes_batch) {
    /* rounds up to the plain design's budget of 2 F = (T+1)(T+2) evaluations after the initial design */
    PetscInt initial;
    PetscCall(MapSamplerGetInitial(r->sampler, &initial));
    r->opt.bayes_batch = PetscMax(2, (2 * F - initial + r->opt.bayes_iterations - 1) / PetscMax(1, r->opt.bayes_iterations));
  }
  PetscCall(MapSamplerGenerate(r->sampler, &n, &C0));
  PetscCall(MapSampleCheckIdentifiable(r->T, n, C0));
  if (!r->opt.refine_points) r->opt.refine_points = F;
  /* in double: the options are each in range, but their products need not fit a PetscInt */
  double total = (double)n + (bayes ? (double)r->opt.bayes_iterations * (double)r->opt.bayes_batch * (r->opt.bayes_per_task ? r->T : 1) : 0) +
                 (double)r->opt.refine * (double)r->opt.refine_points;
  PetscCheck(total <= MAP_RUN_MAX_EVALS, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "the run would evaluate up to %.4g models (%" PetscInt_FMT " samples + -map_refine %" PetscInt_FMT " x -map_refine_points %" PetscInt_FMT
             "%s), more than the limit of %d",
             total, n, r->opt.refine, r->opt.refine_points, bayes ? " + -map_bayes_iterations x -map_bayes_batch" : "", MAP_RUN_MAX_EVALS);
  for (PetscInt i = 0; i < n; i++) PetscCall(MapSampleSetAppend(&r->samples, &C0[i * r->T], NULL, NULL, 0, -1));
  PetscCall(PetscFree(C0));
  PetscFunctionReturn(0);
}

/* the run folder: -map_output, or a new runs/<UTC time>.<us>-<pid> no other run takes */
static PetscErrorCode MapRunMakeFolder(MapRunCtx *r)
{
  int  ok       = 1;
  char err[512] = "";

  PetscFunctionBegin;
  if (!r->opt.out[0]) {
    /* a name no other run takes: microseconds and the pid, and mkdir (not EEXIST) claims it */
    char now[96] = "";
    if (!r->rank) {
      struct timespec ts;
      struct tm       tm;
      char            sec[32];
      clock_gettime(CLOCK_REALTIME, &ts);
      gmtime_r(&ts.tv_sec, &tm);
      strftime(sec, sizeof(sec), "%Y%m%d-%H%M%S", &tm);
      (void)mkdir("runs", 0755);
      for (int k = 0; k < 100; k++) {
        snprintf(now, sizeof(now), "runs/%s.%06ld-%ld%s%.0d", sec, (long)(ts.tv_nsec / 1000), (long)getpid(), k ? "-" : "", k);
        if (mkdir(now, 0755) == 0 || errno != EEXIST) break;
      }
    }
    PetscCallMPI(MPI_Bcast(now, sizeof(now), MPI_CHAR, 0, r->comm));
    PetscCall(PetscStrncpy(r->opt.out, now, sizeof(r->opt.out)));
  }
  if (!r->rank) {
    char tmp[MAP_PATH_LEN];
    PetscCall(PetscStrncpy(tmp, r->opt.out, sizeof(tmp)));
    for (char *p = tmp + 1; *p; p++) /* mkdir -p */
      if (*p == '/') {
        *p = 0;
        (void)mkdir(tmp, 0755);
        *p = '/';
      }
    if (mkdir(r->opt.out, 0755) != 0 && errno != EEXIST) {
      ok = 0;
      snprintf(err, sizeof(err), "-map_output %s: cannot create the run folder: %s", r->opt.out, strerror(errno));
    } else if (access(r->opt.out, W_OK) != 0) {
      ok = 0;
      snprintf(err, sizeof(err), "-map_output %s: run folder is not writable: %s", r->opt.out, strerror(errno));
    }
  }
  MapCheckAll(r->comm, ok, PETSC_ERR_FILE_OPEN, "%s", err);
  PetscFunctionReturn(0);
}

/* the evaluator on the val sets (one per selected task, or one per store task, then picked by the
   task names), and the held-out one on -map_test_data */
static PetscErrorCode MapRunSetUpEvaluators(MapRunCtx *r)
{
  int    nd;
  char **ed;

  PetscFunctionBegin;
  PetscCall(MapOptionsGetList("-map_eval_data", &nd, &ed, NULL));
  if (r->store) PetscCall(MapStoreSelectPerTask(r->store, r->T, (const char *const *)r->tasks, "-map_eval_data", &nd, &ed));
  PetscCheck(nd == 0 || nd == r->T, r->comm, PETSC_ERR_ARG_SIZ,
             "-map_eval_data gives %d eval set(s) but there are %d tasks (one per task, or one per store task)", nd, r->T);
  PetscCall(MapEvaluatorSetLogDir(r->ev, r->opt.out)); /* the external program's stderr log lives with the journal */
  PetscCall(MapEvaluatorSetUp(r->ev, r->model, r->T, (const char *const *)r->tasks, nd ? (const char *const *)ed : NULL));
  PetscCall(MapRunMetricSetUp(r)); /* what the evaluator's values are (-map_metric) */
  r->neval_data = nd;
  r->eval_data  = ed;
  if (r->opt.test_data[0] && r->opt.npref) {
    char **td;
    PetscCall(MapSplitList(r->opt.test_data, ',', &nd, &td));
    if (r->store) PetscCall(MapStoreSelectPerTask(r->store, r->T, (const char *const *)r->tasks, "-map_test_data", &nd, &td));
    PetscCheck(nd == r->T, r->comm, PETSC_ERR_ARG_SIZ, "-map_test_data gives %d eval set(s) but there are %d tasks", nd, r->T);
    PetscCall(MapEvaluatorCreate(r->comm, &r->ev_test));
    PetscCall(MapEvaluatorSetFromOptions(r->ev_test));
    PetscCall(MapEvaluatorSetUp(r->ev_test, r->model, r->T, (const char *const *)r->tasks, (const char *const *)td));
    PetscCall(MapFreeList(nd, &td));
  }
  PetscFunctionReturn(0);
}

/* the journal, bound to the inputs as read; a nested chain's jobs share the run folder, each
   journaling into its own file, and read them all */
static PetscErrorCode MapRunOpenJournal(MapRunCtx *r)
{
  char      jpath[MAP_PATH_LEN], pattern[MAP_PATH_LEN], *binding;
  glob_t    gl;
  PetscBool nested = strcmp(r->opt.method, "nested") ? PETSC_FALSE : PETSC_TRUE;

  PetscFunctionBegin;
  if (r->opt.nested_level > 0)
    snprintf(jpath, sizeof(jpath), "%s/journal-L%d-P%d.jsonl", r->opt.out, (int)r->opt.nested_level, (int)r->opt.nested_pair);
  else snprintf(jpath, sizeof(jpath), "%s/journal.jsonl", r->opt.out);
  memset(&gl, 0, sizeof(gl));
  snprintf(pattern, sizeof(pattern), "%s/journal*.jsonl", r->opt.out);
  if (!r->rank && nested) (void)glob(pattern, 0, NULL, &gl);
  PetscCall(MapCheckInputFile(jpath, "the run's journal")); /* every rank: a FIFO there fails them together */
  PetscCall(MapRunBindLegacyStore(r, jpath));
  PetscCall(MapRunBinding(r, &binding));
  PetscCall(MapJournalOpenWithOthers(r->comm, jpath, r->opt.resume, (int)gl.gl_pathc, gl.gl_pathv, binding, &r->journal));
  MapJournalSetTasks(&r->journal, r->T, r->tasks, r->opt.out);
  MapJournalSetMetric(&r->journal, r->metric.metric.name, r->metric.with_loss);
  PetscCall(PetscFree(binding));
  if (!r->rank && nested) globfree(&gl);
  if (r->opt.resume) PetscCall(PetscPrintf(r->comm, "mapmerge run: resuming %s with %d journaled evaluations\n", r->opt.out, r->journal.n));
  PetscFunctionReturn(0);
}

/*@
  MapRunSetUp - after MapRunSetFromOptions: the design, the run folder, the evaluators, the inputs
  hashed as read and the journal bound to them (opened after the evaluator read its data). Ends the
  setup phase. Collective.
@*/
PetscErrorCode MapRunSetUp(MapRun r)
{
  PetscFunctionBegin;
  PetscCall(MapRunSetUpDesign(r));
  PetscCall(MapRunMakeFolder(r));
  PetscCall(MapRunSetUpEvaluators(r));
  PetscCall(MapRunHashInputs(r));
  PetscCall(MapRunCheckOutputsNotInputs(r));
  PetscCall(MapRunOpenJournal(r));
  PetscCall(MapRunPhaseEnd(r, MAP_RUN_SETUP));
  PetscFunctionReturn(0);
}

PetscErrorCode MapRunDestroy(MapRun *run)
{
  MapRun r = *run;

  PetscFunctionBegin;
  if (!r) PetscFunctionReturn(0);
  if (r->phase >= 0) PetscCall(PetscLogStagePop()); /* -help: the setup phase was begun */
  PetscCall(MapSamplerDestroy(&r->sampler));
  PetscCall(MapParetoDestroy(&r->pareto));
  PetscCall(MapSurrogateDestroy(&r->sur));
  PetscCall(MapRunEvalGroupsDestroy(r));
  PetscCall(MapEvaluatorDestroy(&r->ev));
  PetscCall(MapEvaluatorDestroy(&r->ev_test));
  PetscCall(MapModelDestroy(&r->model));
  PetscCall(MapStoreDestroy(&r->store));
  PetscCall(MapJournalClose(&r->journal));
  if (r->inputs_sha256) json_decref(r->inputs_sha256);
  PetscCall(MapFreeList(r->T, &r->tasks));
  PetscCall(MapFreeList(r->neval_data, &r->eval_data));
  PetscCall(MapSampleSetDestroy(&r->samples));
  PetscCall(MapRunMetricDestroy(r));
  PetscCall(PetscFree2(r->report.all_c, r->report.all_acc));
  PetscCall(PetscFree3(r->report.real_index, r->report.real_acc, r->report.real_loss));
  PetscCall(PetscFree(*run));
  PetscFunctionReturn(0);
}

/*@
  MapCommandRun - `mapmerge run`: MAP end to end on the options database (docs/usage.md). Collective.
@*/
PetscErrorCode MapCommandRun(MPI_Comm comm)
{
  MapRun    run;
  PetscBool help;

  PetscFunctionBegin;
  PetscCall(MapRunCreate(comm, &run));
  PetscCall(MapRunSetFromOptions(run));
  PetscCall(PetscOptionsHasHelp(NULL, &help));
  if (!help) {
    PetscCall(MapCheckOptionsLeft(comm));
    PetscCall(MapRunSetUp(run));
    PetscCall(MapRunSolve(run));
    PetscCall(MapRunView(run, PETSC_VIEWER_STDOUT_(comm)));
  }
  PetscCall(MapRunDestroy(&run));
  PetscFunctionReturn(0);
}
