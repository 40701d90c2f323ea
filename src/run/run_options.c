/* `mapmerge run`'s options: the database read once into the run (MapRunSetFromOptions), the range
   checks, and -map_replay (the options of a finished run put back into the database). */
#include "runimpl.h"

static PetscErrorCode MapRunReplay(MapRunCtx *r)
{
  char        path[MAP_PATH_LEN], out[MAP_PATH_LEN];
  PetscBool   set, outset;
  json_t     *m, *mo, *val;
  const char *key;

  PetscFunctionBegin;
  PetscCall(PetscOptionsGetString(NULL, NULL, "-map_replay", path, sizeof(path), &set));
  if (!set) PetscFunctionReturn(0);
  PetscCall(PetscOptionsGetString(NULL, NULL, "-map_output", out, sizeof(out), &outset));
  PetscCall(MapRunReadManifest(r->comm, path, "-map_replay", &m, &mo));
  json_object_foreach(mo, key, val) PetscCall(PetscOptionsSetValue(NULL, key, json_string_value(val)));
  if (!outset) {
    const char *orig = NULL;
    json_t     *o    = json_object_get(m, "run_folder");
    orig             = json_is_string(o) ? json_string_value(o) : "runs/run";
    snprintf(out, sizeof(out), "%s-replay", orig);
  }
  PetscCall(PetscOptionsSetValue(NULL, "-map_output", out));
  PetscCall(PetscOptionsClearValue(NULL, "-map_resume"));
  PetscCall(PetscPrintf(r->comm, "mapmerge run: replaying %s into %s\n", path, out));
  json_decref(m);
  PetscFunctionReturn(0);
}

/* the run's own options (the design's are the sampler's, the fit's the surrogate's, the search's
   the Pareto object's); taskbuf and prefbuf: -map_tasks and -map_preference as given */
static PetscErrorCode MapRunOptionsMain(MapRunCtx *r, char *taskbuf, size_t tasklen, char *prefbuf, size_t preflen)
{
  const char *targets[]            = {"front", "pick"};
  PetscInt    itarget              = 0;
  char        replay[MAP_PATH_LEN] = "";

  PetscFunctionBegin;
  PetscCall(PetscStrncpy(r->opt.method, "map", sizeof(r->opt.method)));
  r->opt.reevaluate = 8;
  PetscOptionsBegin(r->comm, NULL, "mapmerge run: MAP end to end", NULL);
  PetscCall(PetscOptionsString("-map_store", "HDF5 store written by `mapmerge import`", NULL, r->opt.store_path, r->opt.store_path,
                               sizeof(r->opt.store_path), NULL));
  PetscCall(PetscOptionsString("-map_tasks", "tasks to merge, in order (default: all tasks of the store)", NULL, taskbuf, taskbuf, tasklen, NULL));
  PetscCall(PetscOptionsString("-map_output", "run folder (default runs/<UTC time>)", NULL, r->opt.out, r->opt.out, sizeof(r->opt.out), NULL));
  PetscCall(PetscOptionsString("-map_method", "MAP variant: map, bayesian (adaptive sampling) or nested (pairwise merge tree)", NULL, r->opt.method,
                               r->opt.method, sizeof(r->opt.method), NULL));
  PetscCall(PetscOptionsInt("-map_reevaluate", "re-evaluate up to K front points on the real models", NULL, r->opt.reevaluate, &r->opt.reevaluate, NULL));
  PetscCall(PetscOptionsInt("-map_refine", "refinement rounds: fit, search, evaluate points spread along the predicted front as new samples", NULL,
                            r->opt.refine, &r->opt.refine, NULL));
  PetscCall(PetscOptionsInt("-map_refine_points", "points per refinement round (0: (T+1)(T+2)/2, the surrogate's unknowns)", NULL, r->opt.refine_points,
                            &r->opt.refine_points, NULL));
  PetscCall(PetscOptionsEList("-map_refine_target",
                              "where refinement rounds add samples: front (points spread along the predicted front) or pick (the current "
                              "pick for -map_preference, one per round)",
                              NULL, targets, 2, targets[0], &itarget, NULL));
  r->opt.refine_pick = itarget == 1 ? PETSC_TRUE : PETSC_FALSE;
  PetscCall(PetscOptionsString("-map_test_data", "held-out eval sets (one per task) on which the pick is also reported", NULL, r->opt.test_data,
                               r->opt.test_data, sizeof(r->opt.test_data), NULL));
  PetscCall(PetscOptionsString("-map_replay", "re-run the run of this manifest.json exactly (into -map_output or <folder>-replay)", NULL, replay, replay,
                               sizeof(replay), NULL));
  PetscCall(PetscOptionsBool("-map_resume", "continue the run folder from its journal", NULL, r->opt.resume, &r->opt.resume, NULL));
  PetscCall(PetscOptionsString("-map_preference", "preference weights w_1,...,w_T of the pick (default: equal)", NULL, prefbuf, prefbuf, preflen, NULL));
  PetscOptionsEnd();
  PetscCall(MapOptionsGetRealList("-map_preference", MAP_MAX_TASKS, r->opt.pref, &r->opt.npref, NULL));
  PetscFunctionReturn(0);
}

/* the range checks of the run's options: sizes that size arrays first, so no product below can
   overflow (the total is checked once the design is known, MapRunSetUp) */
static PetscErrorCode MapRunOptionsCheck(MapRunCtx *r)
{
  PetscFunctionBegin;
  PetscCheck(r->opt.refine >= 0 && r->opt.refine_points >= 0, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_refine and -map_refine_points must be >= 0, got %" PetscInt_FMT " and %" PetscInt_FMT, r->opt.refine, r->opt.refine_points);
  PetscCheck(r->opt.reevaluate >= 0 && r->opt.reevaluate <= MAP_RUN_MAX_EVALS, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_reevaluate %" PetscInt_FMT ": need 0 to %d front points", r->opt.reevaluate, MAP_RUN_MAX_EVALS);
  PetscCheck(r->opt.refine <= MAP_RUN_MAX_EVALS && r->opt.refine_points <= MAP_RUN_MAX_EVALS, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_refine %" PetscInt_FMT " and -map_refine_points %" PetscInt_FMT ": each at most %d", r->opt.refine, r->opt.refine_points,
             MAP_RUN_MAX_EVALS);
  for (int t = 0; t < r->opt.npref; t++)
    PetscCheck(isfinite(r->opt.pref[t]) && r->opt.pref[t] >= 0, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
               "-map_preference: weight %d is %g; weights must be finite and >= 0", t + 1, r->opt.pref[t]);
  if (r->opt.npref) {
    double sum = 0;
    for (int t = 0; t < r->opt.npref; t++) sum += r->opt.pref[t];
    PetscCheck(sum > 0, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_preference: the %d weights sum to 0; give at least one positive weight", r->opt.npref);
  }
  PetscCheck(r->opt.refine || !r->opt.refine_pick, r->comm, PETSC_ERR_ARG_INCOMP,
             "-map_refine_target pick says where refinement rounds evaluate, but there are none: add -map_refine R (e.g. 4)");
  PetscCheck(!r->opt.refine || strcmp(r->opt.method, "nested"), r->comm, PETSC_ERR_ARG_INCOMP,
             "-map_refine applies to -map_method map and bayesian; nested MAP refines nothing (each pair runs its own 2-task MAP)");
  PetscCheck(!strcmp(r->opt.method, "map") || !strcmp(r->opt.method, "bayesian") || !strcmp(r->opt.method, "nested"), r->comm,
             PETSC_ERR_ARG_UNKNOWN_TYPE, "-map_method %s: expected map, bayesian or nested", r->opt.method);
  PetscFunctionReturn(0);
}

static PetscErrorCode MapRunOptionsNested(MapRunCtx *r)
{
  PetscFunctionBegin;
  PetscOptionsBegin(r->comm, NULL, "Nested MAP (-map_method nested)", NULL);
  PetscCall(PetscOptionsInt("-map_nested_level", "SLURM chain: compute only level L of the merge tree (earlier levels from the journals; 0: all)", NULL,
                            r->opt.nested_level, &r->opt.nested_level, NULL));
  PetscCall(PetscOptionsInt("-map_nested_pair", "SLURM chain: the pair of -map_nested_level this job computes", NULL, r->opt.nested_pair,
                            &r->opt.nested_pair, NULL));
  PetscCall(PetscOptionsInt("-map_nested_samples", "evaluated samples per pair (0: the 2-task reference design, 12)", NULL, r->opt.nested_samples,
                            &r->opt.nested_samples, NULL));
  PetscOptionsEnd();
  PetscCheck(r->opt.nested_samples >= 0 && r->opt.nested_samples <= 100000, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_nested_samples %" PetscInt_FMT ": need 0 to 100000", r->opt.nested_samples);
  PetscCheck(r->opt.nested_level >= 0 && r->opt.nested_pair >= 0, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_nested_level %" PetscInt_FMT " and -map_nested_pair %" PetscInt_FMT ": need >= 0", r->opt.nested_level, r->opt.nested_pair);
  PetscFunctionReturn(0);
}

/* Bayesian MAP's rounds (the initial design and where new points go are the sampler's) */
static PetscErrorCode MapRunOptionsBayes(MapRunCtx *r)
{
  const char *modes[] = {"all", "per_task"};
  PetscInt    mode    = 0;

  PetscFunctionBegin;
  r->opt.bayes_iterations = 2;
  r->opt.bayes_batch      = 0;
  PetscOptionsBegin(r->comm, NULL, "Bayesian MAP (-map_method bayesian)", NULL);
  PetscCall(PetscOptionsInt("-map_bayes_iterations", "adaptive rounds", NULL, r->opt.bayes_iterations, &r->opt.bayes_iterations, NULL));
  PetscCall(PetscOptionsInt("-map_bayes_batch", "new samples per round (0: up to the plain design's (T+1)(T+2) evaluations in all)", NULL,
                            r->opt.bayes_batch, &r->opt.bayes_batch, NULL));
  PetscCall(PetscOptionsEList("-map_bayes_evaluate",
                              "new points evaluated on all tasks (one merge serves every task) or per_task (as the reference: each task draws "
                              "-map_bayes_batch points from its own residuals, evaluated on that task only)",
                              NULL, modes, 2, modes[0], &mode, NULL));
  r->opt.bayes_per_task = mode == 1 ? PETSC_TRUE : PETSC_FALSE;
  PetscOptionsEnd();
  PetscCheck(r->opt.bayes_iterations >= 0 && r->opt.bayes_iterations <= MAP_RUN_MAX_EVALS && r->opt.bayes_batch >= 0 && r->opt.bayes_batch <= MAP_RUN_MAX_EVALS,
             r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_bayes_iterations %" PetscInt_FMT " and -map_bayes_batch %" PetscInt_FMT ": each 0 to %d",
             r->opt.bayes_iterations, r->opt.bayes_batch, MAP_RUN_MAX_EVALS);
  PetscFunctionReturn(0);
}

/* the store and the task selection (analytic problems need no store: -map_tasks names the objectives),
   the preference checked against them */
static PetscErrorCode MapRunSetUpTasks(MapRunCtx *r, const char *taskbuf, PetscBool analytic)
{
  int Tstore = 0;

  PetscFunctionBegin;
  if (!analytic || r->opt.store_path[0]) {
    int64_t P;
    int     ntens;
    PetscCheck(r->opt.store_path[0], r->comm, PETSC_ERR_ARG_WRONG, "-map_store is required (a store written by `mapmerge import`)");
    PetscCall(MapStoreOpen(r->comm, r->opt.store_path, &r->store));
    PetscCall(MapStoreGetSizes(r->store, &P, &Tstore, &ntens));
  }
  if (taskbuf[0]) PetscCall(MapSplitList(taskbuf, ',', &r->T, &r->tasks));
  else {
    PetscCheck(r->store, r->comm, PETSC_ERR_ARG_WRONG, "-map_tasks is required with -map_eval_type analytic and no -map_store");
    r->T = Tstore;
    PetscCall(PetscCalloc1(Tstore + 1, &r->tasks));
    for (int t = 0; t < Tstore; t++) {
      const char *nm;
      PetscCall(MapStoreGetTaskName(r->store, t, &nm));
      PetscCall(PetscStrallocpy(nm, &r->tasks[t]));
    }
  }
  PetscCheck(r->T >= 2 && r->T <= MAP_MAX_TASKS, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_tasks: MAP needs 2 to %d tasks, got %d", MAP_MAX_TASKS, r->T);
  for (int t = 0; t < r->T; t++) /* a repeated task would get another task's metrics */
    for (int u = 0; u < t; u++)
      PetscCheck(strcmp(r->tasks[t], r->tasks[u]), r->comm, PETSC_ERR_ARG_WRONG, "-map_tasks names task %s twice (entries %d and %d)", r->tasks[t], u + 1,
                 t + 1);
  if (r->opt.npref)
    PetscCheck(r->opt.npref == r->T, r->comm, PETSC_ERR_ARG_SIZ, "-map_preference has %d weights but there are %d tasks", r->opt.npref, r->T);
  if (!r->opt.npref) { /* the pick defaults to equal preference for every task */
    r->opt.npref = r->T;
    for (int t = 0; t < r->T; t++) r->opt.pref[t] = 1.0;
  }
  int idx[MAP_MAX_TASKS];
  if (r->store)
    for (int t = 0; t < r->T; t++) PetscCall(MapStoreFindTask(r->store, r->tasks[t], &idx[t]));
  if (!analytic) PetscCall(MapEvaluatorCreateModel(r->ev, r->store, r->T, idx, &r->model));
  PetscFunctionReturn(0);
}

/*@
  MapRunSetFromOptions - begins the setup phase and reads the run's options (-map_replay first); the
  sampler, the evaluator, the surrogate and the Pareto search read theirs; then the store and the
  task selection. With -help it lists every option and reads no store. Collective.
@*/
PetscErrorCode MapRunSetFromOptions(MapRun r)
{
  char        taskbuf[8192] = "", prefbuf[2048] = "";
  PetscBool   help;
  const char *evtype;

  PetscFunctionBegin;
  PetscCall(MapRunPhaseBegin(r, MAP_RUN_SETUP));
  PetscCall(MapRunReplay(r));
  PetscCall(MapRunOptionsMain(r, taskbuf, sizeof(taskbuf), prefbuf, sizeof(prefbuf)));
  PetscCall(MapRunOptionsCheck(r));
  PetscCall(PetscOptionsHasHelp(NULL, &help));
  if (!strcmp(r->opt.method, "nested") || help) PetscCall(MapRunOptionsNested(r));
  if (!strcmp(r->opt.method, "bayesian") || help) PetscCall(MapRunOptionsBayes(r));
  PetscCall(MapSamplerCreate(r->comm, &r->sampler));
  if (!strcmp(r->opt.method, "bayesian")) PetscCall(MapSamplerSetType(r->sampler, MAPSAMPLER_BAYES));
  PetscCall(MapSamplerSetFromOptions(r->sampler));
  PetscCall(MapSamplerGetBox(r->sampler, &r->opt.lo, &r->opt.hi));
  PetscCall(MapSamplerGetSeed(r->sampler, &r->opt.seed));
  PetscCall(MapRunBudgetSetFromOptions(r)); /* -map_budget: read and checked up front (run_budget.c) */
  PetscCall(MapEvaluatorCreate(r->comm, &r->ev));
  PetscCall(MapEvaluatorSetFromOptions(r->ev));
  PetscCall(MapSurrogateCreate(r->comm, &r->sur));
  PetscCall(MapSurrogateSetFromOptions(r->sur));
  PetscCall(MapParetoCreate(r->comm, &r->pareto));
  PetscCall(MapParetoSetFromOptions(r->pareto));
  if (help) PetscFunctionReturn(0); /* -help lists every option, with or without a store */
  PetscCall(MapEvaluatorGetType(r->ev, &evtype));
  PetscCall(MapRunSetUpTasks(r, taskbuf, strcmp(evtype, "analytic") ? PETSC_FALSE : PETSC_TRUE));
  PetscCall(MapSamplerSetTasks(r->sampler, r->T, (const char *const *)r->tasks));
  PetscCall(MapParetoCheckDivisions(r->pareto, r->T));
  PetscCall(MapParetoSetBox(r->pareto, r->opt.lo, r->opt.hi));
  PetscCall(MapRunBudgetPlan(r)); /* the design size and the lattice, before the design is drawn */
  PetscFunctionReturn(0);
}
