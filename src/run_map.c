/* `mapmerge run`: MAP end to end — sample, evaluate (journaled), fit surrogates, search the Pareto
   front, re-evaluate part of it on the real models, pick, write results (docs/design.md §5-6). */
#include "runimpl.h"
#include <hdf5.h>
#include <jansson.h>
#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <glob.h>


/* the most models one run may evaluate: sizes beyond it are typos, and products of them overflow */
#define MAP_RUN_MAX_EVALS 1000000

static const char *map_phase_names[] = {"setup", "evaluate", "fit", "search", "reevaluate", "write"};

static void MapNow(char *buf, size_t len)
{
  time_t    t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* MapRunReadManifest - a finished run's manifest.json, read by rank 0 and parsed on every rank;
   *map_options is its "map_options" object (the mapmerge options as given, borrowed from *manifest,
   json_decref it). Collective; `who` prefixes the errors. */
PetscErrorCode MapRunReadManifest(MPI_Comm comm, const char *path, const char *who, json_t **manifest, json_t **map_options)
{
  PetscMPIInt rank;
  char       *text = NULL;
  long        len  = 0;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (!rank) {
    PetscCall(MapCheckInputFile(path, who));
    FILE *f = fopen(path, "rb");
    if (f) {
      fseek(f, 0, SEEK_END);
      len = ftell(f);
      fseek(f, 0, SEEK_SET);
      text = malloc((size_t)len + 1);
      if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) len = -1;
      else text[len] = 0;
      fclose(f);
    } else len = -1;
  }
  PetscCallMPI(MPI_Bcast(&len, 1, MPI_LONG, 0, comm));
  PetscCheck(len >= 0, comm, PETSC_ERR_FILE_OPEN, "%s %s: cannot read the manifest", who, path);
  if (rank) text = malloc((size_t)len + 1);
  PetscCallMPI(MPI_Bcast(text, (int)len + 1, MPI_CHAR, 0, comm));
  json_error_t jerr;
  *manifest = json_loads(text, 0, &jerr);
  free(text);
  PetscCheck(*manifest, comm, PETSC_ERR_FILE_UNEXPECTED, "%s %s: not JSON (line %d: %s)", who, path, jerr.line, jerr.text);
  *map_options = json_object_get(*manifest, "map_options");
  if (!json_is_object(*map_options)) json_decref(*manifest);
  PetscCheck(json_is_object(*map_options), comm, PETSC_ERR_FILE_UNEXPECTED, "%s %s: no \"map_options\" (not a mapmerge run manifest?)", who, path);
  PetscFunctionReturn(0);
}

/* -map_replay MANIFEST: put the options of a finished run back into the database (the mapmerge
   options exactly, the others best effort), so this run repeats it into a new -map_output. */
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

static PetscErrorCode MapRunSetFromOptions(MapRunCtx *r)
{
  char      taskbuf[8192] = "", boxbuf[128] = "", prefbuf[2048] = "";
  PetscBool flg;
  int       nbox = 0;
  double    box[2];

  PetscFunctionBegin;
  PetscCall(MapRunReplay(r));
  PetscCall(PetscStrncpy(r->method, "map", sizeof(r->method)));
  PetscCall(PetscStrncpy(r->sample_type, "reference", sizeof(r->sample_type)));
  r->seed = 0; r->sample_n = 0; r->reevaluate = 8; r->lo = 0; r->hi = 1;
  PetscOptionsBegin(r->comm, NULL, "mapmerge run: MAP end to end", NULL);
  PetscCall(PetscOptionsString("-map_store", "HDF5 store written by `mapmerge import`", NULL, r->store_path, r->store_path,
                               sizeof(r->store_path), NULL));
  PetscCall(PetscOptionsString("-map_tasks", "tasks to merge, in order (default: all tasks of the store)", NULL, taskbuf,
                               taskbuf, sizeof(taskbuf), NULL));
  PetscCall(PetscOptionsString("-map_output", "run folder (default runs/<UTC time>)", NULL, r->out, r->out, sizeof(r->out), NULL));
  PetscCall(PetscOptionsString("-map_method", "MAP variant: map, bayesian (adaptive sampling) or nested (pairwise merge tree)", NULL, r->method, r->method,
                               sizeof(r->method), NULL));
  PetscCall(PetscOptionsString("-map_sample_type", "design: reference, lhs or file", NULL, r->sample_type, r->sample_type,
                               sizeof(r->sample_type), NULL));
  PetscCall(PetscOptionsInt("-map_sample_n", "number of samples (lhs; reference: 0 = (T+1)(T+2))", NULL, r->sample_n, &r->sample_n, NULL));
  PetscCall(PetscOptionsString("-map_sample_file", "CSV of coefficient vectors for -map_sample_type file", NULL, r->sample_file,
                               r->sample_file, sizeof(r->sample_file), NULL));
  PetscCall(PetscOptionsInt("-map_seed", "the one seed everything is derived from", NULL, r->seed, &r->seed, NULL));
  PetscCall(PetscOptionsInt("-map_reevaluate", "re-evaluate up to K front points on the real models", NULL, r->reevaluate,
                            &r->reevaluate, NULL));
  PetscCall(PetscOptionsInt("-map_refine", "refinement rounds: fit, search, evaluate points spread along the predicted front as new samples",
                            NULL, r->refine, &r->refine, NULL));
  PetscCall(PetscOptionsInt("-map_refine_points", "points per refinement round (0: (T+1)(T+2)/2, the surrogate's unknowns)", NULL,
                            r->refine_points, &r->refine_points, NULL));
  {
    const char *targets[] = {"front", "pick"};
    PetscInt    itarget   = 0;
    PetscCall(PetscOptionsEList("-map_refine_target",
                                "where refinement rounds add samples: front (points spread along the predicted front) or pick (the current "
                                "pick for -map_preference, one per round)",
                                NULL, targets, 2, targets[0], &itarget, NULL));
    r->refine_pick = itarget == 1 ? PETSC_TRUE : PETSC_FALSE;
  }
  PetscCall(PetscOptionsString("-map_test_data", "held-out eval sets (one per task) on which the pick is also reported", NULL,
                               r->test_data, r->test_data, sizeof(r->test_data), NULL));
  {
    char replay[MAP_PATH_LEN] = "";
    PetscCall(PetscOptionsString("-map_replay", "re-run the run of this manifest.json exactly (into -map_output or <folder>-replay)", NULL,
                                 replay, replay, sizeof(replay), NULL));
  }
  PetscCall(PetscOptionsBool("-map_resume", "continue the run folder from its journal", NULL, r->resume, &r->resume, NULL));
  PetscCall(PetscOptionsString("-map_box", "box lo,hi for sampling and search", NULL, boxbuf, boxbuf, sizeof(boxbuf), NULL));
  PetscCall(PetscOptionsString("-map_preference", "preference weights w_1,...,w_T of the pick (default: equal)", NULL, prefbuf,
                               prefbuf, sizeof(prefbuf), NULL));
  PetscOptionsEnd();
  PetscCall(MapRunBudgetSetFromOptions(r));
  PetscCall(MapOptionsGetRealList("-map_box", 2, box, &nbox, &flg));
  if (flg) {
    PetscCheck(nbox == 2 && box[0] < box[1], r->comm, PETSC_ERR_ARG_WRONG, "-map_box: expected lo,hi with lo < hi, got \"%s\"", boxbuf);
    r->lo = box[0];
    r->hi = box[1];
  }
  PetscCall(MapOptionsGetRealList("-map_preference", MAP_MAX_TASKS, r->pref, &r->npref, NULL));
  PetscCheck(r->refine >= 0 && r->refine_points >= 0, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_refine and -map_refine_points must be >= 0, got %" PetscInt_FMT " and %" PetscInt_FMT, r->refine, r->refine_points);
  /* sizes that size arrays: ranges first, so no product below can overflow (the total is checked
     once the design is known, MapRunCheckBudget) */
  PetscCheck(r->reevaluate >= 0 && r->reevaluate <= MAP_RUN_MAX_EVALS, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_reevaluate %" PetscInt_FMT ": need 0 to %d front points", r->reevaluate, MAP_RUN_MAX_EVALS);
  PetscCheck(r->sample_n >= 0 && r->sample_n <= MAP_RUN_MAX_EVALS, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_sample_n %" PetscInt_FMT ": need 0 to %d samples", r->sample_n, MAP_RUN_MAX_EVALS);
  PetscCheck(r->refine <= MAP_RUN_MAX_EVALS && r->refine_points <= MAP_RUN_MAX_EVALS, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_refine %" PetscInt_FMT " and -map_refine_points %" PetscInt_FMT ": each at most %d", r->refine, r->refine_points, MAP_RUN_MAX_EVALS);
  for (int t = 0; t < r->npref; t++)
    PetscCheck(isfinite(r->pref[t]) && r->pref[t] >= 0, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
               "-map_preference: weight %d is %g; weights must be finite and >= 0", t + 1, r->pref[t]);
  if (r->npref) {
    double sum = 0;
    for (int t = 0; t < r->npref; t++) sum += r->pref[t];
    PetscCheck(sum > 0, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_preference: the %d weights sum to 0; give at least one positive weight", r->npref);
  }
  PetscCheck(r->refine || !r->refine_pick, r->comm, PETSC_ERR_ARG_INCOMP,
             "-map_refine_target pick says where refinement rounds evaluate, but there are none: add -map_refine R (e.g. 4)");
  PetscCheck(!r->refine || strcmp(r->method, "nested"), r->comm, PETSC_ERR_ARG_INCOMP,
             "-map_refine applies to -map_method map and bayesian; nested MAP refines nothing (each pair runs its own 2-task MAP)");
  PetscBool help;
  PetscCall(PetscOptionsHasHelp(NULL, &help));
  PetscCheck(!strcmp(r->method, "map") || !strcmp(r->method, "bayesian") || !strcmp(r->method, "nested"), r->comm,
             PETSC_ERR_ARG_UNKNOWN_TYPE, "-map_method %s: expected map, bayesian or nested", r->method);
  if (!strcmp(r->method, "nested") || help) {
    PetscOptionsBegin(r->comm, NULL, "Nested MAP (-map_method nested)", NULL);
    PetscCall(PetscOptionsInt("-map_nested_level", "SLURM chain: compute only level L of the merge tree (earlier levels from the journals; 0: all)",
                              NULL, r->nested_level, &r->nested_level, NULL));
    PetscCall(PetscOptionsInt("-map_nested_pair", "SLURM chain: the pair of -map_nested_level this job computes", NULL, r->nested_pair,
                              &r->nested_pair, NULL));
    PetscCall(PetscOptionsInt("-map_nested_samples", "evaluated samples per pair (0: the 2-task reference design, 12)", NULL,
                              r->nested_samples, &r->nested_samples, NULL));
    PetscOptionsEnd();
    PetscCheck(r->nested_samples >= 0 && r->nested_samples <= 100000, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
               "-map_nested_samples %" PetscInt_FMT ": need 0 to 100000", r->nested_samples);
    PetscCheck(r->nested_level >= 0 && r->nested_pair >= 0, r->comm, PETSC_ERR_ARG_OUTOFRANGE,
               "-map_nested_level %" PetscInt_FMT " and -map_nested_pair %" PetscInt_FMT ": need >= 0", r->nested_level, r->nested_pair);
  }
  MapBayesOptionsDefault(&r->bayes);
  if (!strcmp(r->method, "bayesian") || help) {
    r->bayes_initial = 0; r->bayes_iterations = 2; r->bayes_batch = 0;
    PetscOptionsBegin(r->comm, NULL, "Bayesian MAP (-map_method bayesian)", NULL);
    PetscCall(PetscOptionsInt("-map_bayes_initial", "initial design size (0: 1.5 x the (T+1)(T+2)/2 surrogate unknowns)", NULL, r->bayes_initial, &r->bayes_initial, NULL));
    PetscCall(PetscOptionsInt("-map_bayes_iterations", "adaptive rounds", NULL, r->bayes_iterations, &r->bayes_iterations, NULL));
    PetscCall(PetscOptionsInt("-map_bayes_batch", "new samples per round (0: up to the plain design's (T+1)(T+2) evaluations in all)", NULL, r->bayes_batch, &r->bayes_batch, NULL));
    {
      const char *modes[] = {"all", "per_task"};
      PetscInt    mode    = 0;
      PetscCall(PetscOptionsEList("-map_bayes_evaluate",
                                  "new points evaluated on all tasks (one merge serves every task) or per_task (as the reference: each task draws "
                                  "-map_bayes_batch points from its own residuals, evaluated on that task only)",
                                  NULL, modes, 2, modes[0], &mode, NULL));
      r->bayes_per_task = mode == 1 ? PETSC_TRUE : PETSC_FALSE;
    }
    PetscOptionsEnd();
    PetscCheck(r->bayes_initial >= 0 && r->bayes_initial <= MAP_RUN_MAX_EVALS && r->bayes_iterations >= 0 && r->bayes_iterations <= MAP_RUN_MAX_EVALS &&
                 r->bayes_batch >= 0 && r->bayes_batch <= MAP_RUN_MAX_EVALS,
               r->comm, PETSC_ERR_ARG_OUTOFRANGE,
               "-map_bayes_initial %" PetscInt_FMT ", -map_bayes_iterations %" PetscInt_FMT " and -map_bayes_batch %" PetscInt_FMT ": each 0 to %d",
               r->bayes_initial, r->bayes_iterations, r->bayes_batch, MAP_RUN_MAX_EVALS);
    PetscCall(MapBayesOptionsSetFromOptions(r->comm, &r->bayes));
  }

  PetscCall(MapEvaluatorCreate(r->comm, &r->ev));
  PetscCall(MapEvaluatorSetFromOptions(r->ev));
  const char *evtype;
  PetscCall(MapEvaluatorGetType(r->ev, &evtype));
  PetscBool analytic = strcmp(evtype, "analytic") ? PETSC_FALSE : PETSC_TRUE;
  if (help) { /* -help lists the fit's and the search's options too, with or without a store */
    PetscCall(MapSurrogateCreate(r->comm, &r->sur));
    PetscCall(MapSurrogateSetFromOptions(r->sur));
    PetscCall(MapParetoCreate(r->comm, &r->pareto));
    PetscCall(MapParetoSetFromOptions(r->pareto));
    PetscFunctionReturn(0);
  }

  /* the store and the task selection (analytic problems need no store: -map_tasks names the objectives) */
  int Tstore = 0;
  if (!analytic || r->store_path[0]) {
    int64_t P;
    int     ntens;
    PetscCheck(r->store_path[0], r->comm, PETSC_ERR_ARG_WRONG, "-map_store is required (a store written by `mapmerge import`)");
    PetscCall(MapStoreOpen(r->comm, r->store_path, &r->store));
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
  PetscCheck(r->T >= 2 && r->T <= MAP_MAX_TASKS, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_tasks: MAP needs 2 to %d tasks, got %d", MAP_MAX_TASKS,
             r->T);
  for (int t = 0; t < r->T; t++) /* a repeated task would get another task's metrics */
    for (int u = 0; u < t; u++)
      PetscCheck(strcmp(r->tasks[t], r->tasks[u]), r->comm, PETSC_ERR_ARG_WRONG, "-map_tasks names task %s twice (entries %d and %d)", r->tasks[t], u + 1, t + 1);
  if (r->npref) PetscCheck(r->npref == r->T, r->comm, PETSC_ERR_ARG_SIZ, "-map_preference has %d weights but there are %d tasks",
                             r->npref, r->T);
  if (!r->npref) { /* the pick defaults to equal preference for every task */
    r->npref = r->T;
    for (int t = 0; t < r->T; t++) r->pref[t] = 1.0;
  }
  int idx[MAP_MAX_TASKS];
  if (r->store)
    for (int t = 0; t < r->T; t++) PetscCall(MapStoreFindTask(r->store, r->tasks[t], &idx[t]));
  if (!analytic) PetscCall(MapModelCreateFromStore(r->store, r->T, idx, &r->model));
  PetscCall(MapSurrogateCreate(r->comm, &r->sur));
  PetscCall(MapSurrogateSetFromOptions(r->sur));
  PetscCall(MapParetoCreate(r->comm, &r->pareto));
  PetscCall(MapParetoSetFromOptions(r->pareto));
  PetscCall(MapParetoCheckDivisions(r->pareto, r->T));
  PetscCall(MapParetoSetBox(r->pareto, r->lo, r->hi));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapRunMakeFolder(MapRunCtx *r)
{
  int  ok = 1;
  char err[512] = "";

  PetscFunctionBegin;
  if (!r->out[0]) {
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
    PetscCall(PetscStrncpy(r->out, now, sizeof(r->out)));
  }
  if (!r->rank) {
    char tmp[MAP_PATH_LEN];
    PetscCall(PetscStrncpy(tmp, r->out, sizeof(tmp)));
    for (char *p = tmp + 1; *p; p++) /* mkdir -p */
      if (*p == '/') {
        *p = 0;
        (void)mkdir(tmp, 0755);
        *p = '/';
      }
    if (mkdir(r->out, 0755) != 0 && errno != EEXIST) {
      ok = 0;
      snprintf(err, sizeof(err), "-map_output %s: cannot create the run folder: %s", r->out, strerror(errno));
    } else if (access(r->out, W_OK) != 0) {
      ok = 0;
      snprintf(err, sizeof(err), "-map_output %s: run folder is not writable: %s", r->out, strerror(errno));
    }
  }
  MapCheckAll(r->comm, ok, PETSC_ERR_FILE_OPEN, "%s", err);
  PetscFunctionReturn(0);
}

/* ---- results ---- */



/* The manifest: everything needed to know what ran and to run it again. */
static PetscErrorCode MapRunManifest(MapRunCtx *r, json_t **manifest)
{
  json_t *m = json_object(), *o = json_object(), *v = json_object(), *in = json_object(), *env = json_object();
  char   *all, buf[1024];

  PetscFunctionBegin;
  json_object_set_new(m, "mapmerge_version", json_string(MAPMERGE_VERSION));
  json_object_set_new(m, "git_commit", json_string(MAPMERGE_GIT_COMMIT));
  json_object_set_new(m, "method", json_string(r->method));
  json_object_set_new(m, "run_folder", json_string(r->out));
  json_object_set_new(m, "exit_status", json_string("completed"));
  json_object_set_new(m, "seed", json_integer(r->seed));
  {
    json_t *b;
    PetscCall(MapRunBudgetJSON(r, &b));
    if (b) json_object_set_new(m, "budget", b);
  }
  json_object_set_new(m, "ranks", json_integer(r->size));
  {
    /* the process grids the results depend on (the surrogate's BLACS grid is fixed, not the job's) */
    char      grid[64] = "1,1", groups[64] = "auto (one sample group per rank for models <= 256 MiB)";
    PetscBool set;
    json_t   *g = json_object();
    PetscCall(PetscOptionsGetString(NULL, NULL, "-map_surrogate_grid", grid, sizeof(grid), &set));
    json_object_set_new(g, "surrogate_blacs_grid", json_string(grid));
    PetscCall(PetscOptionsGetString(NULL, NULL, "-map_eval_groups", groups, sizeof(groups), &set));
    json_object_set_new(g, "eval_groups", json_string(groups));
    json_object_set_new(g, "pareto", json_string("preference vectors in contiguous blocks over the ranks, one TAO solve per vector on PETSC_COMM_SELF"));
    json_object_set_new(m, "process_grids", g);
  }
  {
    /* what was fitted and searched (-map_metric) */
    char    spec[160];
    json_t *mt = json_object();
    MapMetricFormat(&r->metric.metric, spec, sizeof(spec));
    json_object_set_new(mt, "spec", json_string(spec));
    json_object_set_new(mt, "name", json_string(r->metric.metric.name));
    json_object_set_new(mt, "direction", json_string(r->metric.metric.lower ? "lower" : "higher"));
    json_object_set_new(mt, "lo", isfinite(r->metric.metric.lo) ? json_real(r->metric.metric.lo) : json_null());
    json_object_set_new(mt, "hi", isfinite(r->metric.metric.hi) ? json_real(r->metric.metric.hi) : json_null());
    json_object_set_new(mt, "link", json_string(MapLinkName(r->metric.link)));
    json_object_set_new(m, "metric", mt);
  }
  json_object_set_new(m, "start_time", json_string(r->start_time));
  json_object_set_new(m, "end_time", json_string(r->end_time));
  /* every option in the database, as given */
  PetscCall(PetscOptionsGetAll(NULL, &all));
  json_object_set_new(m, "options", json_string(all));
  PetscCall(PetscFree(all));
  {
    /* the mapmerge options one by one (values may hold spaces), for -map_replay */
    json_t            *mo    = json_object();
    const char *const *names = MapKnownOptionNames();
    char               val[65536];
    for (int i = 0; names[i]; i++) {
      PetscBool set;
      if (!strcmp(names[i], "-map_replay") || !strcmp(names[i], "-map_resume") || !strcmp(names[i], "-map_output")) continue;
      PetscCall(PetscOptionsGetString(NULL, NULL, names[i], val, sizeof(val), &set));
      if (set) json_object_set_new(mo, names[i], json_string(val));
    }
    json_object_set_new(m, "map_options", mo);
  }
  {
    json_t *t = json_array();
    for (int i = 0; i < r->T; i++) json_array_append_new(t, json_string(r->tasks[i]));
    json_object_set_new(m, "tasks", t);
  }
  (void)o;
  json_decref(o);
  /* versions */
  PetscCall(PetscGetVersion(buf, sizeof(buf)));
  json_object_set_new(v, "petsc", json_string(buf));
  unsigned maj, min, rel;
  H5get_libversion(&maj, &min, &rel);
  snprintf(buf, sizeof(buf), "%u.%u.%u", maj, min, rel);
  json_object_set_new(v, "hdf5", json_string(buf));
  int len;
  char mpiv[MPI_MAX_LIBRARY_VERSION_STRING];
  MPI_Get_library_version(mpiv, &len);
  char *nl = strchr(mpiv, ',');
  if (nl) *nl = 0;
  json_object_set_new(v, "mpi", json_string(mpiv));
#ifdef MAPMERGE_SCALAPACK_VERSION
  json_object_set_new(v, "scalapack", json_string(MAPMERGE_SCALAPACK_VERSION));
#endif
  json_object_set_new(v, "compiler", json_string(MAPMERGE_COMPILER));
  json_object_set_new(v, "c_flags", json_string(MAPMERGE_C_FLAGS));
  PetscCall(MapEvalBLASInfo(buf, sizeof(buf)));
  json_object_set_new(v, "blas", json_string(buf));
  json_object_set_new(m, "versions", v);
  /* inputs: hashed when they were read (MapRunHashInputs), not now */
  if (r->inputs_sha256) json_object_update(in, r->inputs_sha256);
  PetscCall(MapRunManifestRepro(r, m, in)); /* evaluator program, BLAS threads, zoo sha256 */
  json_object_set_new(m, "inputs_sha256", in);
  /* where it ran */
  {
    char      host[MPI_MAX_PROCESSOR_NAME] = "", *all_hosts = NULL;
    int       hl;
    MPI_Get_processor_name(host, &hl);
    PetscCall(PetscMalloc1((size_t)r->size * MPI_MAX_PROCESSOR_NAME, &all_hosts));
    PetscCallMPI(MPI_Gather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all_hosts, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, r->comm));
    if (!r->rank) {
      json_t *h = json_array();
      for (int i = 0; i < r->size; i++) {
        const char *hn = all_hosts + (size_t)i * MPI_MAX_PROCESSOR_NAME;
        int         dup = 0;
        for (size_t k = 0; k < json_array_size(h); k++)
          if (!strcmp(json_string_value(json_array_get(h, k)), hn)) dup = 1;
        if (!dup) json_array_append_new(h, json_string(hn));
      }
      json_object_set_new(m, "hosts", h);
    }
    PetscCall(PetscFree(all_hosts));
  }
  const char *slurm_vars[] = {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT", "SLURM_JOB_NAME",
                              "SLURM_NTASKS", "SLURM_JOB_NODELIST", NULL};
  for (int i = 0; slurm_vars[i]; i++)
    if (getenv(slurm_vars[i])) json_object_set_new(env, slurm_vars[i], json_string(getenv(slurm_vars[i])));
  json_object_set_new(m, "slurm", env);
  *manifest = m;
  PetscFunctionReturn(0);
}

static PetscErrorCode MapRunWriteResults(MapRunCtx *r)
{
  int     ok = 1;
  char    err[512] = "";
  json_t *manifest = NULL;

  PetscFunctionBegin;
  MapNow(r->end_time, sizeof(r->end_time));
  PetscCall(MapRunManifest(r, &manifest));
  if (!r->rank) {
    char  path[MAP_PATH_LEN], tmp[MAP_PATH_LEN], final[3][MAP_PATH_LEN], staged[3][MAP_PATH_LEN];
    int   T = r->T;
    hid_t f, g, g2;
    /* results.h5 */
    snprintf(path, sizeof(path), "%s/results.h5", r->out);
    PetscCall(MapTempName(path, tmp, sizeof(tmp)));
    PetscCall(MapTempRegister(tmp));
    MapCallHDF5(f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    PetscCall(MapH5WriteStrings(f, "tasks", T, r->tasks));
    MapCallHDF5(g = H5Gcreate2(f, "samples", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    PetscCall(MapH5WriteMatrix(g, "coeffs", r->n, T, r->C));
    PetscCall(MapH5WriteMatrix(g, MapRunMetricGroup(r), r->n, T, r->acc));
    PetscCall(MapH5WriteMatrix(g, "loss", r->n, T, r->loss));
    PetscCall(MapH5WriteMatrix(g, "round", r->n, 0, r->round));
    PetscCall(MapH5WriteMatrix(g, "task", r->n, 0, r->sample_task));
    PetscCall(MapH5WriteStringAttr(g, "task_meaning", "-1 = evaluated on every task; t = on task t only (accuracy and loss NaN for the others)"));
    PetscCall(MapH5WriteStringAttr(g, "origin", r->sample_type));
    PetscCall(MapH5WriteStringAttr(g, "round_meaning", "0 = initial design; k = Bayesian MAP round k"));
    MapCallHDF5(H5Gclose(g));
    if (r->fitted) {
    MapCallHDF5(g = H5Gcreate2(f, "surrogate", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    for (int which = 0; which < (r->metric.with_loss ? 2 : 1); which++) {
      int     Ts, nt, F;
      double *params, *diag;
      PetscCall(MapSurrogateGetSizes(r->sur, &Ts, &nt, &F));
      PetscCall(PetscMalloc2(T * F, &params, T * 5, &diag));
      for (int t = 0; t < T; t++) {
        const double     *th;
        MapFitDiagnostics d;
        PetscCall(MapSurrogateGetParams(r->sur, which * T + t, &th));
        PetscCall(PetscArraycpy(&params[t * F], th, F));
        PetscCall(MapSurrogateGetDiagnostics(r->sur, which * T + t, &d));
        diag[t * 5 + 0] = d.r2;
        diag[t * 5 + 1] = d.rmse;
        diag[t * 5 + 2] = d.loo_rmse;
        diag[t * 5 + 3] = d.cond;
        diag[t * 5 + 4] = d.iterations;
      }
      MapCallHDF5(g2 = H5Gcreate2(g, which ? "loss" : MapRunMetricGroup(r), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      PetscCall(MapH5WriteMatrix(g2, "params", T, F, params));
      PetscCall(MapH5WriteMatrix(g2, "diagnostics", T, 5, diag));
      PetscCall(MapH5WriteStringAttr(g2, "diagnostics_columns", "r2,rmse,loo_rmse,cond,iterations"));
      PetscCall(MapH5WriteStringAttr(g2, "link", which ? "softplus" : MapLinkName(r->metric.link)));
      if (!which && !r->metric.is_default) { /* metric = offset + scale * link(phi(c) . params) */
        PetscCall(MapH5WriteMatrix(g2, "offset_scale", 1, 2, (double[2]){r->metric.off, r->metric.scale}));
        PetscCall(MapH5WriteStringAttr(g2, "meaning", "metric = offset + scale * link(features . params); the search maximises the metric (higher) or minimises it (lower)"));
      }
      PetscCall(MapH5WriteStringAttr(g2, "features", "1, c_1..c_T, c_i*c_j (i<=j) in row-major order"));
      MapCallHDF5(H5Gclose(g2));
      PetscCall(PetscFree2(params, diag));
    }
    MapCallHDF5(H5Gclose(g));
    MapCallHDF5(g = H5Gcreate2(f, "pareto", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    PetscCall(MapH5WriteMatrix(g, "coeffs", r->kfront, T, r->Cf));
    PetscCall(MapH5WriteMatrix(g, "predicted", r->kfront, T, r->Ff));
    PetscCall(MapH5WriteMatrix(g, "weights", r->kfront, T, r->Wf));
    {
      double *ridx;
      PetscCall(PetscMalloc1(r->kreal + 1, &ridx));
      for (PetscInt i = 0; i < r->kreal; i++) ridx[i] = r->real_index[i];
      PetscCall(MapH5WriteMatrix(g, "real_index", r->kreal, 0, ridx));
      PetscCall(PetscFree(ridx));
    }
    PetscCall(MapH5WriteMatrix(g, "real", r->kreal, T, r->real_acc));
    PetscCall(MapH5WriteMatrix(g, "real_loss", r->kreal, T, r->real_loss));
    PetscCall(MapH5WriteMatrix(g, "real_front_coeffs", r->kall, T, r->all_c));
    PetscCall(MapH5WriteMatrix(g, "real_front", r->kall, T, r->all_acc));
    PetscCall(MapH5WriteStringAttr(g, "real_front_meaning", "non-dominated set of every model evaluated on the real tasks: samples, re-evaluations, pick"));
    MapCallHDF5(H5Gclose(g));
    } /* fitted */
    if (r->nnodes) PetscCall(MapRunNestedWrite(r, f));
    PetscCall(MapRunBudgetWrite(r, f));
    PetscCall(MapRunMetricWrite(r, f)); /* the metric, and which evaluations failed */
    if (r->npref) {
      MapCallHDF5(g = H5Gcreate2(f, "pick", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      PetscCall(MapH5WriteMatrix(g, "preference", 1, T, r->pref));
      PetscCall(MapH5WriteMatrix(g, "coeffs", 1, T, r->pick_c));
      PetscCall(MapH5WriteMatrix(g, "predicted", 1, T, r->pick_pred));
      PetscCall(MapH5WriteMatrix(g, "real", 1, T, r->pick_acc));
      PetscCall(MapH5WriteMatrix(g, "real_loss", 1, T, r->pick_loss));
      if (r->ev_test) {
        PetscCall(MapH5WriteMatrix(g, "test", 1, T, r->pick_test_acc));
        PetscCall(MapH5WriteMatrix(g, "test_loss", 1, T, r->pick_test_loss));
      }
      if (r->best_found) {
        PetscCall(MapH5WriteMatrix(g, "best_evaluated_coeffs", 1, T, r->best_c));
        PetscCall(MapH5WriteMatrix(g, "best_evaluated_real", 1, T, r->best_acc));
        PetscCall(MapH5WriteMatrix(g, "best_evaluated_value", 1, 1, &r->best_score));
        PetscCall(MapH5WriteMatrix(g, "real_value", 1, 1, &r->pick_score));
        PetscCall(MapH5WriteStringAttr(g, "best_evaluated_meaning",
                                       "of every model evaluated on all tasks (samples, re-evaluations, pick), the one the pick's criterion ranks "
                                       "best: the scalarised value of its real accuracies for the preference (the search's scalarisation, ideal and "
                                       "nadir; smaller is better; first on ties). real_value: the pick's own"));
      }
      MapCallHDF5(H5Gclose(g));
    }
    {
      char box[128];
      snprintf(box, sizeof(box), "%.17g,%.17g", r->lo, r->hi);
      PetscCall(MapH5WriteStringAttr(f, "box", box));
    }
    /* the manifest as root attributes (flat: key -> JSON text) */
    const char *key;
    json_t     *val;
    json_object_foreach(manifest, key, val)
    {
      char *s = json_is_string(val) ? strdup(json_string_value(val)) : (char *)json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
      PetscCall(MapH5WriteStringAttr(f, key, s));
      free(s);
    }
    MapCallHDF5(H5Fclose(f));
    PetscCall(PetscStrncpy(final[0], path, sizeof(final[0])));
    PetscCall(PetscStrncpy(staged[0], tmp, sizeof(staged[0])));

    /* front.csv */
    snprintf(path, sizeof(path), "%s/front.csv", r->out);
    PetscCall(MapTempName(path, tmp, sizeof(tmp)));
    PetscCall(MapTempRegister(tmp));
    FILE *fp = fopen(tmp, "w");
    if (!fp) {
      ok = 0;
      snprintf(err, sizeof(err), "cannot write %s: %s", tmp, strerror(errno));
    } else {
      for (int t = 0; t < T; t++) fprintf(fp, "c_%s,", r->tasks[t]);
      for (int t = 0; t < T; t++) fprintf(fp, "pred_%s_%s,", MapRunMetricShort(r), r->tasks[t]);
      for (int t = 0; t < T; t++) fprintf(fp, "real_%s_%s%s", MapRunMetricShort(r), r->tasks[t], t + 1 < T ? "," : "\n");
      if (!r->fitted) { /* nested MAP: the final merged model */
        for (int t = 0; t < T; t++) fprintf(fp, "%.17g,", r->pick_c[t]);
        for (int t = 0; t < T; t++) fprintf(fp, ",");
        for (int t = 0; t < T; t++) fprintf(fp, "%.17g%s", r->pick_acc[t], t + 1 < T ? "," : "\n");
      }
      for (PetscInt i = 0; i < r->kfront; i++) {
        int ri = -1;
        for (PetscInt k = 0; k < r->kreal; k++)
          if (r->real_index[k] == i) ri = (int)k;
        for (int t = 0; t < T; t++) fprintf(fp, "%.17g,", r->Cf[i * T + t]);
        for (int t = 0; t < T; t++) fprintf(fp, "%.17g,", r->Ff[i * T + t]);
        for (int t = 0; t < T; t++) {
          if (ri >= 0) fprintf(fp, "%.17g", r->real_acc[ri * T + t]);
          fprintf(fp, "%s", t + 1 < T ? "," : "\n");
        }
      }
      if (ferror(fp) | fflush(fp) | fsync(fileno(fp)) | fclose(fp)) {
        ok = 0;
        snprintf(err, sizeof(err), "cannot write %s: %s", tmp, strerror(errno));
      }
      PetscCall(PetscStrncpy(final[1], path, sizeof(final[1])));
      PetscCall(PetscStrncpy(staged[1], tmp, sizeof(staged[1])));
    }
    /* manifest.json */
    if (ok) {
      snprintf(path, sizeof(path), "%s/manifest.json", r->out);
      PetscCall(MapTempName(path, tmp, sizeof(tmp)));
      PetscCall(MapTempRegister(tmp));
      if (json_dump_file(manifest, tmp, JSON_INDENT(2))) {
        ok = 0;
        snprintf(err, sizeof(err), "cannot write %s: %s", path, strerror(errno));
      }
      PetscCall(PetscStrncpy(final[2], path, sizeof(final[2])));
      PetscCall(PetscStrncpy(staged[2], tmp, sizeof(staged[2])));
    }
    /* published together or not at all: everything was written under temporary names (removed on
       error); now the renames, results.h5 last, so a folder with results.h5 has all three */
    for (int k = 2; ok && k >= 0; k--) {
      if (rename(staged[k], final[k])) {
        ok = 0;
        snprintf(err, sizeof(err), "cannot rename %s to %s: %s", staged[k], final[k], strerror(errno));
        for (int q = k + 1; q <= 2; q++) (void)unlink(final[q]); /* withdraw what was published */
      } else PetscCall(MapTempUnregister(staged[k]));
    }
    if (!ok) MapTempCleanup();
  }
  json_decref(manifest);
  MapCheckAll(r->comm, ok, PETSC_ERR_FILE_WRITE, "%s", err);
  PetscFunctionReturn(0);
}

static PetscErrorCode MapRunSummary(MapRunCtx *r)
{
  PetscFunctionBegin;
  int T = r->T;
  PetscCall(PetscPrintf(r->comm, "\n== mapmerge run summary (%s, %d tasks, %d ranks) ==\n", r->out, T, r->size));
  PetscCall(PetscPrintf(r->comm, "models evaluated: %" PetscInt_FMT "%s (+%" PetscInt_FMT " re-evaluations%s)\n", r->n,
                        r->nnodes ? " in the merge tree" : " samples", r->kreal, r->npref && !r->nnodes ? " + 1 pick" : ""));
  if (r->bayes_per_task) {
    PetscInt one = 0;
    for (PetscInt i = 0; i < r->n; i++) one += r->sample_task[i] >= 0;
    PetscCall(PetscPrintf(r->comm, "  per-task rounds: %" PetscInt_FMT " samples evaluated on every task, %" PetscInt_FMT " on one task each\n",
                          r->n - one, one));
  }
  if (r->nnodes) PetscCall(MapRunNestedSummary(r));
  PetscCall(MapRunBudgetSummary(r));
  PetscCall(MapRunMetricSummary(r)); /* fit, fronts and failed evaluations in the metric's units */
  char pref[MAP_MAX_TASKS * 24] = "";
  for (int t = 0; t < r->npref; t++) { /* plain %g: PetscPrintf would print "1." */
    size_t len = strlen(pref);
    snprintf(pref + len, sizeof(pref) - len, "%s%g", t ? "," : "", r->pref[t]);
  }
  if (r->npref) {
    PetscCall(PetscPrintf(r->comm, "pick for preference %s: c =", pref));
    for (int t = 0; t < T; t++) PetscCall(PetscPrintf(r->comm, " %.4f", r->pick_c[t]));
    PetscCall(PetscPrintf(r->comm, "\n  %-16s %10s %10s %10s\n", "task", "predicted", "real(val)", r->ev_test ? "test" : ""));
    for (int t = 0; t < T; t++) {
      PetscCall(PetscPrintf(r->comm, "  %-16s %10.4f %10.4f", r->tasks[t], r->pick_pred[t], r->pick_acc[t]));
      if (r->ev_test) PetscCall(PetscPrintf(r->comm, " %10.4f", r->pick_test_acc[t]));
      PetscCall(PetscPrintf(r->comm, "\n"));
    }
    double off = 0;
    for (int t = 0; t < T; t++) off = PetscMax(off, PetscAbsReal(r->pick_pred[t] - r->pick_acc[t]));
    /* a surrogate far off at its own pick steered the search there on wrong values: say what helps
       (bench/README.md, "Refining the pick at T = 8": 0.12-0.34 -> <= 0.06 with 4 rounds) */
    if (off > 0.05 && !(r->refine && r->refine_pick))
      PetscCall(PetscPrintf(r->comm, "  the surrogates are off by up to %.3f at the pick: -map_refine 4 -map_refine_target pick re-fits there with 4 more evaluations\n", off));
  }
  if (r->best_found) {
    PetscCall(PetscPrintf(r->comm, "best evaluated model by the pick's criterion (the scalarised real accuracies, lower is better: %.4f; the pick's %.4f): c =",
                          r->best_score, r->pick_score));
    for (int t = 0; t < T; t++) PetscCall(PetscPrintf(r->comm, " %.4f", r->best_c[t]));
    PetscCall(PetscPrintf(r->comm, "\n"));
    if (r->best_score < r->pick_score) {
      PetscCall(PetscPrintf(r->comm, "  to write it: mapmerge export -map_store %s -map_run %s -map_export_model best_evaluated -map_preference %s -map_output merged.safetensors\n",
                            r->store_path, r->out, pref));
    }
  }
  PetscCall(PetscPrintf(r->comm, "time per phase:"));
  for (int i = 0; i < 6; i++) PetscCall(PetscPrintf(r->comm, " %s %.2fs", map_phase_names[i], r->t_phase[i]));
  PetscCall(PetscPrintf(r->comm, "\nresults: %s/results.h5, %s/front.csv, %s/manifest.json\n", r->out, r->out, r->out));
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
  PetscCall(MapRunMetricDestroy(r));
  PetscCall(PetscFree(r->round));
  PetscCall(PetscFree(r->sample_task));
  PetscCall(PetscFree2(r->all_c, r->all_acc));
  PetscCall(PetscFree3(r->real_index, r->real_acc, r->real_loss));
  PetscFunctionReturn(0);
}

/* Evaluate samples [i0, i1) (journaled; skipped when the journal has them). */
PetscErrorCode MapRunEvaluateSamples(MapRunCtx *r, PetscInt i0, PetscInt i1, PetscBool *stop)
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
                               &r->loss[i * r->T], &fresh, &r->failed[i]));
    if (fresh) PetscCall(MapProgress(r->comm, "evaluate samples", i + 1 - i0, i1 - i0, t0));
  }
  PetscFunctionReturn(0);
}

/* One Bayesian round. Default (-map_bayes_evaluate all): squared accuracy residuals of the current fit
   at every point so far, summed over tasks; B new points drawn where they are largest, evaluated on
   every task (the merge is the expensive part). per_task (the reference's scheme): each task t scores
   the bins with its own residuals at the points evaluated on it and draws B points (keyed on seed, t
   and the iteration), evaluated on task t only: T x B merges, as many forward passes as B points on
   every task. */
PetscErrorCode MapRunBayesRound(MapRunCtx *r, int it, int round_id, PetscBool *stop)
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
      if (MapRunSampleFailed(r, i)) continue;
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
  PetscCall(MapParetoSetObjectives(r->pareto, T, T, MapRunObjectiveMetric, r));
  PetscCall(MapParetoSetObjectiveHessian(r->pareto, MapRunObjectiveMetricHessian));
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
PetscErrorCode MapRunAdaptiveRound(MapRunCtx *r, const PetscLogStage *stages, PetscErrorCode (*round)(MapRunCtx *, int, int, PetscBool *), int it,
                                   int round_id, PetscBool *stop)
{
  double t0 = MapWallTime();

  PetscFunctionBegin;
  PetscCall(PetscLogStagePush(stages[2]));
  PetscCall(MapRunFitMetric(r));
  PetscCall(PetscLogStagePop());
  r->t_phase[2] += MapWallTime() - t0;
  t0 = MapWallTime();
  PetscCall(PetscLogStagePush(stages[1]));
  PetscCall(round(r, it, round_id, stop));
  PetscCall(PetscLogStagePop());
  r->t_phase[1] += MapWallTime() - t0;
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
  /* A: the metric as the search sees it (larger is better); failed evaluations are left out */
  for (PetscInt i = 0; i < r->n; i++) {
    if (r->sample_task[i] >= 0) continue; /* evaluated on one task only (per-task Bayesian rounds) */
    PetscCall(PetscArraycpy(&C[n * T], &r->C[i * T], T));
    n += MapRunMetricOriented(r, &r->acc[i * T], &A[n * T]);
  }
  for (PetscInt i = 0; i < r->kreal; i++) {
    PetscCall(PetscArraycpy(&C[n * T], &r->Cf[r->real_index[i] * T], T));
    n += MapRunMetricOriented(r, &r->real_acc[i * T], &A[n * T]);
  }
  if (r->npref) {
    double pick[MAP_MAX_TASKS];
    PetscCall(PetscArraycpy(&C[n * T], r->pick_c, T));
    n += MapRunMetricOriented(r, r->pick_acc, &A[n * T]);
    r->pick_score = NAN; /* a failed pick has no score */
    if (MapRunMetricOriented(r, r->pick_acc, pick)) PetscCall(MapParetoPreferenceValue(r->pareto, r->pref, pick, &r->pick_score));
  }
  /* the best model evaluated so far for the preference, ranked by the pick's own criterion (the
     scalarised value of its real accuracies): a model the run already paid for, reported beside the
     surrogate's pick, which can be worse where the quadratics are off (at T = 8 they over-predict
     small coefficients) */
  if (r->npref) {
    r->best_found = PETSC_FALSE;
    for (PetscInt i = 0; i < n; i++) {
      double sc;
      PetscCall(MapParetoPreferenceValue(r->pareto, r->pref, &A[i * T], &sc));
      if (!r->best_found || sc < r->best_score) {
        r->best_found = PETSC_TRUE;
        r->best_score = sc;
        PetscCall(PetscArraycpy(r->best_c, &C[i * T], T));
        for (int t = 0; t < T; t++) r->best_acc[t] = r->metric.sign * A[i * T + t]; /* back in the metric's units */
      }
    }
  }
  r->kall = MapNonDominated(T, n, A, keep);
  PetscCall(PetscMalloc2(r->kall * T + 1, &r->all_c, r->kall * T + 1, &r->all_acc));
  for (PetscInt i = 0; i < n; i++)
    if (keep[i]) {
      PetscCall(PetscArraycpy(&r->all_c[k * T], &C[i * T], T));
      for (int t = 0; t < T; t++) r->all_acc[k * T + t] = r->metric.sign * A[i * T + t];
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
    r->pick_test_acc[t]  = m[t].metric; /* -map_metric's values (the accuracy by default) */
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
  PetscBool   help, stop = PETSC_FALSE, fresh, failed; /* failed: NaN metrics mark a failed re-evaluation or pick */
  double      t0;
  PetscLogStage stages[6];

  PetscFunctionBegin;
  memset(&r, 0, sizeof(r));
  r.comm = comm;
  PetscCallMPI(MPI_Comm_rank(comm, &r.rank));
  PetscCallMPI(MPI_Comm_size(comm, &r.size));
  for (int i = 0; i < 6; i++) {
    char name[64];
    snprintf(name, sizeof(name), "MAP %s", map_phase_names[i]);
    PetscCall(PetscLogStageRegister(name, &stages[i]));
  }
  /* the driver did this before PetscInitialize; again for callers of the library. PetscFinalize
     resets SIGTERM but leaves SIGUSR1, the signal the job scripts forward. */
  PetscCheck(MapRunCatchSignals() == 0, comm, PETSC_ERR_SYS, "sigaction failed: %s", strerror(errno));
  MapEvalSetInterruptQuery(MapRunSignalCaught); /* a signalled job step stops the command evaluator's program too */
  MapNow(r.start_time, sizeof(r.start_time));
  t0 = MapWallTime();
  PetscCall(PetscLogStagePush(stages[0]));
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
  PetscCall(MapRunBudgetPlan(&r, bayes));
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
    if (r.budget.total) nmax = PetscMax(nmax, r.budget.total);
  }
  PetscCall(PetscMalloc3(nmax * r.T, &r.C, nmax * r.T, &r.acc, nmax * r.T, &r.loss));
  PetscCall(PetscCalloc1(nmax, &r.round));
  PetscCall(PetscCalloc1(nmax, &r.failed));
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
    PetscCall(MapRunMetricSetUp(&r));
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
  PetscCall(PetscLogStagePop());
  r.t_phase[0] = MapWallTime() - t0;

  if (nested) {
    t0 = MapWallTime();
    PetscCall(PetscLogStagePush(stages[1]));
    PetscCall(MapRunNested(&r, &stop));
    PetscCall(PetscLogStagePop());
    r.t_phase[1] = MapWallTime() - t0;
    if (!stop && r.nested_partial) {
      PetscCall(PetscPrintf(comm, "nested MAP: level %d pair %d done in %s; the next level's jobs continue from the journals\n",
                            (int)r.nested_level, (int)r.nested_pair, r.out));
      PetscCall(MapRunDestroy(&r));
      PetscFunctionReturn(0);
    }
    if (!stop && r.ev_test) PetscCall(MapRunPickTest(&r));
    if (stop) PetscCall(MapRunCheckpointExit(&r));
    if (stop) PetscFunctionReturn(0);
    t0 = MapWallTime();
    PetscCall(MapRunWriteResults(&r));
    r.t_phase[5] = MapWallTime() - t0;
    PetscCall(MapRunSummary(&r));
    PetscCall(MapRunDestroy(&r));
    PetscFunctionReturn(0);
  }

  /* evaluate the design; Bayesian MAP then adds rounds where the surrogate fits worst */
  t0 = MapWallTime();
  PetscCall(PetscLogStagePush(stages[1]));
  PetscCall(MapRunEvaluateSamples(&r, 0, r.n, &stop));
  PetscCall(PetscLogStagePop());
  r.t_phase[1] += MapWallTime() - t0;
  for (PetscInt it = 1; bayes && !stop && it <= r.bayes_iterations; it++)
    PetscCall(MapRunAdaptiveRound(&r, stages, MapRunBayesRound, (int)it, (int)it, &stop));
  for (PetscInt it = 1; !stop && it <= r.refine; it++)
    PetscCall(MapRunAdaptiveRound(&r, stages, MapRunRefineRound, (int)it, (int)((bayes ? r.bayes_iterations : 0) + it), &stop));
  if (!stop && r.budget.total) PetscCall(MapRunBudgetRounds(&r, stages, bayes, &stop));
  if (stop) PetscCall(MapRunCheckpointExit(&r));
  if (stop) PetscFunctionReturn(0);

  /* the final fit uses every evaluated point (the reference code leaves its last batch out) */
  t0 = MapWallTime();
  PetscCall(PetscLogStagePush(stages[2]));
  PetscCall(MapRunFitMetric(&r));
  PetscCall(PetscLogStagePop());
  r.t_phase[2] += MapWallTime() - t0;
  r.fitted = PETSC_TRUE;

  /* search the accuracy surrogates for the front */
  t0 = MapWallTime();
  PetscCall(PetscLogStagePush(stages[3]));
  PetscCall(MapParetoSetObjectives(r.pareto, r.T, r.T, MapRunObjectiveMetric, &r));
  PetscCall(MapParetoSetObjectiveHessian(r.pareto, MapRunObjectiveMetricHessian));
  PetscCall(MapParetoSolve(r.pareto));
  PetscCall(MapParetoGetFront(r.pareto, &r.kfront, &r.Cf, &r.Ff, &r.Wf));
  if (r.npref) {
    PetscCall(MapParetoPick(r.pareto, r.pref, r.pick_c, r.pick_pred));
  }
  PetscCall(MapRunMetricFront(&r)); /* the front and the pick's prediction in the metric's own units */
  PetscCall(PetscLogStagePop());
  r.t_phase[3] = MapWallTime() - t0;

  /* re-evaluate up to K front points, spread along the front (in preference order) */
  t0 = MapWallTime();
  PetscCall(PetscLogStagePush(stages[4]));
  r.kreal = PetscMin(r.budget.total ? MapRunBudgetReevaluateCap(&r) : r.reevaluate, r.kfront);
  PetscCall(PetscMalloc3(r.kreal + 1, &r.real_index, (r.kreal + 1) * r.T, &r.real_acc, (r.kreal + 1) * r.T, &r.real_loss));
  if (r.budget.total) PetscCall(MapRunBudgetChooseReevaluations(&r)); /* spread away from the samples */
  for (PetscInt k = 0; k < r.kreal; k++) {
    if (!r.budget.total) r.real_index[k] = r.kreal == 1 ? 0 : (int)((k * (r.kfront - 1) + (r.kreal - 1) / 2) / (r.kreal - 1));
    PetscCall(MapRunCheckSignal(&r, &stop));
    if (stop) break;
    PetscCall(MapRunEvaluate(&r, "reeval", (int)k, &r.Cf[r.real_index[k] * r.T], &r.real_acc[k * r.T], &r.real_loss[k * r.T], &fresh, &failed));
    if (fresh) PetscCall(MapProgress(comm, "re-evaluate front", k + 1, r.kreal, t0));
  }
  if (!stop && r.npref) {
    PetscCall(MapRunCheckSignal(&r, &stop));
    if (!stop) PetscCall(MapRunEvaluate(&r, "pick", 0, r.pick_c, r.pick_acc, r.pick_loss, &fresh, &failed));
    if (!stop && r.ev_test) PetscCall(MapRunPickTest(&r));
  }
  PetscCall(PetscLogStagePop());
  r.t_phase[4] = MapWallTime() - t0;
  if (stop) PetscCall(MapRunCheckpointExit(&r));
  if (stop) PetscFunctionReturn(0);

  PetscCall(MapRunRealFront(&r));
  t0 = MapWallTime();
  PetscCall(PetscLogStagePush(stages[5]));
  PetscCall(MapRunWriteResults(&r));
  PetscCall(PetscLogStagePop());
  r.t_phase[5] = MapWallTime() - t0;
  PetscCall(MapRunSummary(&r));
  PetscCall(MapRunDestroy(&r));
  PetscFunctionReturn(0);
}
