/* eval: the MapEvaluator object (type registry, life cycle, options, View, dispatch) and the analytic
   type. The other types: mlp in eval_mlp*.c, command in eval_command.c, worker in eval_worker.c, lm in
   eval_lm*.c (docs/design.md §4, docs/evaluators.md). */
#ifndef _GNU_SOURCE
  #define _GNU_SOURCE /* dladdr, realpath under -std=c17 */
#endif
#include "evalimpl.h"
#include <math.h>
#include <dlfcn.h>
#include <cblas.h>

static PetscErrorCode MapEvaluatorEvaluate_Analytic(MapEvaluator ev, const double *c, MapTaskMetrics *metrics)
{
  PetscFunctionBegin;
  PetscCall(MapAnalyticEvaluate(ev->problem, ev->T, c, metrics));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorSetUp_Analytic(MapEvaluator ev)
{
  MapTaskMetrics m[MAP_MAX_TASKS];
  double         c[MAP_MAX_TASKS];

  PetscFunctionBegin;
  PetscCheck(ev->T >= 1 && ev->T <= MAP_MAX_TASKS, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "analytic evaluator: %d tasks, expected 1..%d", ev->T,
             MAP_MAX_TASKS);
  PetscCheck(!ev->model || ev->Tc == ev->T, ev->comm, PETSC_ERR_ARG_SIZ,
             "analytic evaluator: the model has %d coefficients but %d tasks are evaluated", ev->Tc, ev->T);
  /* evaluate once so an unknown -map_analytic_problem fails here, before any work */
  for (int i = 0; i < ev->T; i++) c[i] = 0.5;
  PetscCall(MapAnalyticEvaluate(ev->problem, ev->T, c, m));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorView_Analytic(MapEvaluator ev, PetscViewer viewer)
{
  PetscFunctionBegin;
  PetscCall(PetscViewerASCIIPrintf(viewer, "problem: %s (-map_analytic_problem)\n", ev->problem));
  PetscFunctionReturn(0);
}

/* the analytic type: no data of its own; the problems are in eval_analytic.c */
static PetscErrorCode MapEvaluatorCreate_Analytic(MapEvaluator ev)
{
  PetscFunctionBegin;
  ev->ops.setup    = MapEvaluatorSetUp_Analytic;
  ev->ops.evaluate = MapEvaluatorEvaluate_Analytic;
  ev->ops.view     = MapEvaluatorView_Analytic;
  PetscFunctionReturn(0);
}

/* The evaluator types by name (PETSc's XxxRegister pattern): the built-in ones are registered by
   MapEvaluatorInitializePackage, a caller may add its own with MapEvaluatorRegister. */
static PetscFunctionList MapEvaluatorList           = NULL;
static PetscBool         MapEvaluatorPackageStarted = PETSC_FALSE;

static PetscErrorCode MapEvaluatorFinalizePackage(void)
{
  PetscFunctionBegin;
  PetscCall(PetscFunctionListDestroy(&MapEvaluatorList));
  MapEvaluatorPackageStarted = PETSC_FALSE;
  PetscFunctionReturn(0);
}

/*
  MapEvaluatorInitializePackage - registers the built-in evaluator types (mlp, command, analytic, lm,
  worker, in the order -help lists them) once per PetscInitialize; called by MapEvaluatorCreate and
  MapEvaluatorRegister. Not collective.
*/
PetscErrorCode MapEvaluatorInitializePackage(void)
{
  PetscFunctionBegin;
  if (MapEvaluatorPackageStarted) PetscFunctionReturn(0);
  MapEvaluatorPackageStarted = PETSC_TRUE;
  PetscCall(MapInitializePackage());
  PetscCall(PetscFunctionListAdd(&MapEvaluatorList, "mlp", MapEvaluatorCreate_MLP));
  PetscCall(PetscFunctionListAdd(&MapEvaluatorList, "command", MapEvaluatorCreate_Command));
  PetscCall(PetscFunctionListAdd(&MapEvaluatorList, "analytic", MapEvaluatorCreate_Analytic));
  PetscCall(PetscFunctionListAdd(&MapEvaluatorList, "lm", MapEvaluatorCreate_LM));
  PetscCall(PetscFunctionListAdd(&MapEvaluatorList, "worker", MapEvaluatorCreate_Worker));
  PetscCall(PetscRegisterFinalize(MapEvaluatorFinalizePackage));
  PetscFunctionReturn(0);
}

/*
  MapEvaluatorRegister - adds an evaluator type: create(ev) fills ev->ops and ev->data_impl (see
  evalimpl.h), and -map_eval_type name selects it. A name registered again replaces the constructor.
  Not collective.
*/
PetscErrorCode MapEvaluatorRegister(const char name[], PetscErrorCode (*create)(MapEvaluator))
{
  PetscFunctionBegin;
  PetscCall(MapEvaluatorInitializePackage());
  PetscCheck(name && name[0] && strlen(name) < MAP_EVAL_TYPE_LEN && create, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG,
             "MapEvaluatorRegister: need a name of 1..%d characters and a constructor", MAP_EVAL_TYPE_LEN - 1);
  PetscCall(PetscFunctionListAdd(&MapEvaluatorList, name, create));
  PetscFunctionReturn(0);
}

/* the registered type names as one comma-separated line, for error messages */
static PetscErrorCode MapEvaluatorTypeNames(char *buf, size_t len)
{
  const char **names;
  int          n;

  PetscFunctionBegin;
  PetscCall(PetscFunctionListGet(MapEvaluatorList, &names, &n));
  buf[0] = 0;
  for (int i = 0; i < n && names[i]; i++) { /* 3.18's array may end in a NULL counted in n */
    if (i) PetscCall(MapStrlcat(buf, ", ", len));
    PetscCall(MapStrlcat(buf, names[i], len));
  }
  PetscCall(PetscFree(names));
  PetscFunctionReturn(0);
}

/* the registered name that equals type ignoring case (-map_eval_type was matched that way before the
   registry), or type itself */
static PetscErrorCode MapEvaluatorCanonicalType(const char *type, char *canon, size_t len)
{
  const char **names;
  int          n;
  PetscBool    same;

  PetscFunctionBegin;
  PetscCall(PetscStrncpy(canon, type, len));
  PetscCall(PetscFunctionListGet(MapEvaluatorList, &names, &n));
  for (int i = 0; i < n && names[i]; i++) {
    PetscCall(PetscStrcasecmp(type, names[i], &same));
    if (same) PetscCall(PetscStrncpy(canon, names[i], len));
  }
  PetscCall(PetscFree(names));
  PetscFunctionReturn(0);
}

/*
  MapEvaluatorCreate - creates an evaluator of no type yet (SetType or SetFromOptions chooses).
  Collective on comm.
*/
PetscErrorCode MapEvaluatorCreate(MPI_Comm comm, MapEvaluator *ev)
{
  MapEvaluator e;

  PetscFunctionBegin;
  PetscCall(MapEvaluatorInitializePackage());
  PetscCall(PetscNew(&e));
  e->comm     = comm;
  e->batch    = 256;
  e->rowblock = 128;
  e->groups   = 0;
  e->timeout  = 600;
  e->block_mb = 64;
  e->group    = -1;
  PetscCall(PetscStrncpy(e->worker_mode, "model", sizeof(e->worker_mode)));
  PetscCall(PetscStrncpy(e->worker_dtype, "store", sizeof(e->worker_dtype)));
  PetscCall(PetscStrncpy(e->kernel, "blas", sizeof(e->kernel)));
  PetscCall(PetscStrncpy(e->problem, "quadratic", sizeof(e->problem)));
  PetscCall(MapMetricParse("accuracy:higher:0,1", &e->metric));
  *ev = e;
  PetscFunctionReturn(0);
}

/*
  MapEvaluatorCreateModel - the model this evaluator merges, of the store tasks tasks[ntask]: the
  shards read into memory (MapModelCreateFromStore), or with -map_eval_stream a streamed model
  (MapModelCreateStreamed) for the types that only write model files (command, worker); the others
  compute on the merged shards and refuse it. Collective on the store's communicator; call after
  MapEvaluatorSetFromOptions.
*/
PetscErrorCode MapEvaluatorCreateModel(MapEvaluator ev, MapStore store, int ntask, const int *tasks, MapModel *model)
{
  PetscFunctionBegin;
  if (ev->stream) {
    const char *type = ev->type[0] ? ev->type : "mlp";
    PetscCheck(!strcmp(type, "command") || !strcmp(type, "worker"), ev->comm, PETSC_ERR_ARG_INCOMP,
               "-map_eval_stream: the %s evaluator computes on the merged parameters in memory; streaming serves the evaluators that write a "
               "model file for a program (-map_eval_type command or worker)",
               type);
    PetscCall(MapModelCreateStreamed(store, ntask, tasks, model));
  } else PetscCall(MapModelCreateFromStore(store, ntask, tasks, model));
  PetscFunctionReturn(0);
}

/*
  MapEvaluatorSetType - one of the registered types (MapEvaluatorRegister; built in: mlp, command,
  analytic, lm, worker). Not allowed after SetUp. An unknown name is an error that lists the
  registered ones. Logically collective.
*/
PetscErrorCode MapEvaluatorSetType(MapEvaluator ev, const char *type)
{
  PetscErrorCode (*create)(MapEvaluator) = NULL;

  PetscFunctionBegin;
  PetscCheck(!ev->setupcalled, ev->comm, PETSC_ERR_ORDER, "MapEvaluatorSetType: the evaluator is already set up");
  PetscCall(PetscFunctionListFind(MapEvaluatorList, type, &create));
  if (!create) {
    char names[1024];
    PetscCall(MapEvaluatorTypeNames(names, sizeof(names)));
    SETERRQ(ev->comm, PETSC_ERR_ARG_UNKNOWN_TYPE, "-map_eval_type %s: unknown evaluator; one of %s", type, names);
  }
  if (ev->ops.destroy) PetscCall(ev->ops.destroy(ev));
  PetscCall(PetscMemzero(&ev->ops, sizeof(ev->ops)));
  PetscCall(PetscStrncpy(ev->type, type, sizeof(ev->type)));
  PetscCall(create(ev));
  PetscFunctionReturn(0);
}

PetscErrorCode MapEvaluatorGetType(MapEvaluator ev, const char **type)
{
  PetscFunctionBegin;
  *type = ev->type[0] ? ev->type : NULL;
  PetscFunctionReturn(0);
}

/*
  MapEvaluatorSetEvalData - sets the per-task eval-set files (safetensors with `inputs` and
  `labels`), in task order; replaces -map_eval_data. Before SetUp. Not collective.
*/
PetscErrorCode MapEvaluatorSetEvalData(MapEvaluator ev, int n, const char *const *eval_data)
{
  PetscFunctionBegin;
  PetscCheck(!ev->setupcalled, ev->comm, PETSC_ERR_ORDER, "MapEvaluatorSetEvalData: the evaluator is already set up");
  PetscCall(MapFreeList(ev->ndata, &ev->data));
  ev->ndata = 0;
  if (n > 0) {
    PetscCall(PetscCalloc1(n + 1, &ev->data));
    for (int i = 0; i < n; i++) PetscCall(PetscStrallocpy(eval_data[i], &ev->data[i]));
    ev->ndata = n;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapEvaluatorSetLogDir(MapEvaluator ev, const char *dir)
{
  PetscFunctionBegin;
  PetscCheck(!ev->setupcalled, ev->comm, PETSC_ERR_ORDER, "MapEvaluatorSetLogDir: the evaluator is already set up");
  PetscCheck(strlen(dir) + 32 < sizeof(ev->logdir), ev->comm, PETSC_ERR_ARG_SIZ, "evaluator log folder %.200s...: path too long", dir);
  PetscCall(PetscStrncpy(ev->logdir, dir, sizeof(ev->logdir)));
  PetscFunctionReturn(0);
}

PetscErrorCode MapEvaluatorSetGroup(MapEvaluator ev, int g)
{
  PetscFunctionBegin;
  PetscCheck(!ev->setupcalled, ev->comm, PETSC_ERR_ORDER, "MapEvaluatorSetGroup: the evaluator is already set up");
  ev->group = g;
  PetscFunctionReturn(0);
}


/* {group} and {rank} (this process's MPI_COMM_WORLD rank: the one that starts the program) in place */
static PetscErrorCode SubstituteGroupRank(MapEvaluator ev, char *tmpl, size_t len)
{
  char        out[MAP_EVAL_CMD_LEN], vals[2][32];
  const char *keys[2] = {"{group}", "{rank}"};
  int         wrank;
  size_t      o = 0;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(MPI_COMM_WORLD, &wrank));
  snprintf(vals[0], sizeof(vals[0]), "%d", ev->group < 0 ? 0 : ev->group);
  snprintf(vals[1], sizeof(vals[1]), "%d", wrank);
  for (const char *p = tmpl; *p;) {
    int hit = -1;
    for (int k = 0; k < 2; k++)
      if (!strncmp(p, keys[k], strlen(keys[k]))) hit = k;
    const char *v = hit >= 0 ? vals[hit] : p;
    size_t      n = hit >= 0 ? strlen(vals[hit]) : 1;
    PetscCheck(o + n < sizeof(out), ev->comm, PETSC_ERR_ARG_SIZ, "the evaluator command is too long after {group}/{rank}: %.200s...", tmpl);
    memcpy(out + o, v, n);
    o += n;
    p += hit >= 0 ? strlen(keys[hit]) : 1;
  }
  out[o] = 0;
  PetscCheck(o < len, ev->comm, PETSC_ERR_ARG_SIZ, "the evaluator command is too long after {group}/{rank}: %.200s...", tmpl);
  memcpy(tmpl, out, o + 1);
  PetscFunctionReturn(0);
}


/*
  MapEvaluatorSetFromOptions - reads -map_eval_type (one of the registered types, default mlp),
  -map_eval_view, -map_eval_data, -map_eval_groups, -map_eval_batch, -map_eval_kernel,
  -map_eval_command, -map_eval_timeout, -map_eval_tmpdir, -map_analytic_problem. Collective.
*/
PetscErrorCode MapEvaluatorSetFromOptions(MapEvaluator ev)
{
  char      type[MAP_EVAL_TYPE_LEN], canon[MAP_EVAL_TYPE_LEN];
  PetscBool set, view;
  char      data[65536] = "";

  PetscFunctionBegin;
  PetscCall(PetscStrncpy(type, ev->type[0] ? ev->type : "mlp", sizeof(type)));
  PetscOptionsBegin(ev->comm, NULL, "Evaluator options", "MapEvaluator");
  PetscCall(PetscOptionsFList("-map_eval_type", "evaluator: mlp (built-in model-parallel MLP), command (external program), "
                                                "analytic (closed-form test problems), lm (built-in tensor-parallel GPT-2/Llama language model), "
                                                "worker (persistent external program, JSON lines; docs/evaluators-external.md)",
                              "MapEvaluatorSetType", MapEvaluatorList,
                              ev->type[0] ? ev->type : "mlp", type, sizeof(type), &set));
  PetscCall(PetscOptionsName("-map_eval_view", "print the evaluator after its SetUp (MapEvaluatorView; -map_eval_view ascii:FILE for a file)",
                             "MapEvaluatorView", &view));
  PetscCall(PetscOptionsString("-map_eval_data", "per-task eval sets D1,D2,... (safetensors: inputs F32 [n,d], labels I64/I32 [n]), in task order",
                               "MapEvaluatorSetEvalData", data, data, sizeof(data), &set));
  if (set && data[0]) {
    int    n;
    char **list;
    PetscCall(MapSplitList(data, ',', &n, &list));
    PetscCall(MapEvaluatorSetEvalData(ev, n, (const char *const *)list));
    PetscCall(MapFreeList(n, &list));
  }
  PetscCall(PetscOptionsInt("-map_eval_groups", "mlp: number of sample groups (each group holds a whole model split by rows "
                                                "over its ranks); 0 = automatic (one group per rank for models up to 256 MiB, else 1). command, worker "
                                                "(mapmerge run): G rank groups evaluate G samples of a round at the same time, each with its own program; "
                                                "0 = 1",
                            "",
                            ev->groups, &ev->groups, NULL));
  PetscCall(PetscOptionsInt("-map_eval_batch", "mlp: samples per batch (fixed, so the metrics do not depend on the rank count)", "",
                            ev->batch, &ev->batch, NULL));
  PetscCall(PetscOptionsInt("-map_eval_row_block", "mlp: rows per matrix-kernel call; layers are split between ranks in whole blocks "
                                                   "(fixed, so the metrics do not depend on the rank count)",
                            "", ev->rowblock, &ev->rowblock, NULL));
  PetscCall(PetscOptionsString("-map_eval_kernel", "mlp: matrix kernel: blas (cblas_sgemm), ref (plain loops) or fixed (fixed-order tiled loops and exp/log: "
                                                   "the same bits on any machine and BLAS, see docs/reproducibility.md)",
                               "", ev->kernel, ev->kernel, sizeof(ev->kernel), NULL));
  PetscCall(PetscOptionsString("-map_eval_command", "command: argv template, e.g. 'prog --model {model} --task {task} --data {data}' "
                                                    "(no shell; '...' and \"...\" quote; also {group} and {rank})",
                               "", ev->command, ev->command, sizeof(ev->command), NULL));
  PetscCall(PetscOptionsString("-map_eval_worker", "worker: argv template of the persistent program, e.g. 'python3 examples/torch_worker.py' "
                                                   "(no shell; '...' and \"...\" quote; {group} and {rank} are replaced)",
                               "", ev->worker, ev->worker, sizeof(ev->worker), NULL));
  PetscCall(PetscOptionsString("-map_eval_worker_mode", "worker: model (a merged .safetensors per request) or coefficients (only the "
                                                        "coefficient vector; the worker merges from -map_store itself)",
                               "", ev->worker_mode, ev->worker_mode,
                               sizeof(ev->worker_mode), NULL));
  PetscCall(PetscOptionsString("-map_eval_worker_dtype", "worker: dtype of the merged model file: store (the store's), f32, bf16 or f16", "",
                               ev->worker_dtype, ev->worker_dtype, sizeof(ev->worker_dtype), NULL));
  PetscCall(PetscOptionsString("-map_eval_gpus", "command, worker: GPUs 0,1,...: the programs of evaluator group g (-map_eval_groups) get "
                                                 "CUDA_VISIBLE_DEVICES = entry g mod n (an entry may itself be a list: '0:1' gives \"0,1\")",
                               "", ev->gpus, ev->gpus,
                               sizeof(ev->gpus), NULL));
  PetscCall(PetscOptionsReal("-map_eval_timeout", "command, worker: seconds before the program (worker: one request, or its start) is killed", "", ev->timeout, &ev->timeout, NULL));
  PetscCall(PetscOptionsString("-map_eval_tmpdir", "command: folder in which a private per-run folder (mkdtemp) holds the temporary merged "
                                                   "models; must be seen by all ranks (default: $TMPDIR or /tmp when all ranks share rank 0's node, else the store's folder)",
                               "", ev->tmpdir, ev->tmpdir, sizeof(ev->tmpdir), NULL));
  PetscCall(PetscOptionsBool("-map_eval_stream", "command, worker: merge each model file straight from the store, block by block: memory per "
                                                 "rank O(-map_eval_block_mb) instead of (T+1)·P·e/n, one store read per file (models larger than memory)",
                             "MapEvaluatorCreateModel", ev->stream, &ev->stream, NULL));
  PetscCall(PetscOptionsReal("-map_eval_block_mb", "command, worker: MiB of merge buffers per rank while a model file is written", "", ev->block_mb,
                             &ev->block_mb, NULL));
  PetscCall(PetscOptionsString("-map_analytic_problem", "analytic: quadratic or nonconvex", "", ev->problem, ev->problem,
                               sizeof(ev->problem), NULL));
  {
    char spec[256];
    MapMetricFormat(&ev->metric, spec, sizeof(spec));
    PetscCall(PetscOptionsString("-map_metric", "what MAP fits and searches: NAME:higher|lower[:lo,hi] (accuracy and loss from mlp/lm; "
                                                "any key of a command/worker program's JSON; e.g. loss:lower:0, perplexity:lower:1, bleu:higher:0,100)",
                                 "MapEvaluatorGetMetric", spec, spec, sizeof(spec), NULL));
    PetscCall(MapMetricParse(spec, &ev->metric));
  }
  PetscOptionsEnd();
  PetscCheck(ev->batch >= 1, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_eval_batch %" PetscInt_FMT ": must be >= 1", ev->batch);
  PetscCheck(ev->rowblock >= 1, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_eval_row_block %" PetscInt_FMT ": must be >= 1", ev->rowblock);
  PetscCheck(ev->groups >= 0, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_eval_groups %" PetscInt_FMT ": must be >= 0", ev->groups);
  PetscCheck(ev->timeout > 0, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_eval_timeout %g: must be > 0", (double)ev->timeout);
  PetscCheck(ev->block_mb > 0 && ev->block_mb <= 1048576, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_eval_block_mb %g: expected > 0 and <= 1048576 MiB",
             (double)ev->block_mb);
  PetscCheck(!strcmp(ev->worker_mode, "model") || !strcmp(ev->worker_mode, "coefficients"), ev->comm, PETSC_ERR_ARG_UNKNOWN_TYPE,
             "-map_eval_worker_mode %s: one of model, coefficients", ev->worker_mode);
  PetscCheck(!strcmp(ev->kernel, "blas") || !strcmp(ev->kernel, "ref") || !strcmp(ev->kernel, "fixed"), ev->comm, PETSC_ERR_ARG_UNKNOWN_TYPE,
             "-map_eval_kernel %s: one of blas, ref, fixed", ev->kernel);
  PetscCall(MapEvaluatorCanonicalType(type, canon, sizeof(canon)));
  if (strcmp(ev->type, canon)) PetscCall(MapEvaluatorSetType(ev, canon));
  PetscFunctionReturn(0);
}

/* the list items[n] as "a, b, c" on one line of the viewer, after label */
static PetscErrorCode MapEvaluatorViewList(PetscViewer viewer, const char *label, int n, char *const *items)
{
  PetscFunctionBegin;
  PetscCall(PetscViewerASCIIPrintf(viewer, "%s (%d):", label, n));
  PetscCall(PetscViewerASCIIUseTabs(viewer, PETSC_FALSE));
  for (int i = 0; i < n; i++) PetscCall(PetscViewerASCIIPrintf(viewer, "%s %s", i ? "," : "", items[i]));
  PetscCall(PetscViewerASCIIPrintf(viewer, "\n"));
  PetscCall(PetscViewerASCIIUseTabs(viewer, PETSC_TRUE));
  PetscFunctionReturn(0);
}

/*
  MapEvaluatorView - prints the evaluator: its type, the tasks it evaluates and the length of the
  coefficient vector (after SetUp), the eval-set files, the rank groups, then the type's own lines
  (ops->view: the mlp's kernel and layers, the lm's architecture, the command or worker template,
  the analytic problem). viewer NULL: stdout of the evaluator's communicator. Collective.
*/
PetscErrorCode MapEvaluatorView(MapEvaluator ev, PetscViewer viewer)
{
  PetscBool ascii;

  PetscFunctionBegin;
  if (!viewer) viewer = PETSC_VIEWER_STDOUT_(ev->comm);
  PetscCall(PetscObjectTypeCompare((PetscObject)viewer, PETSCVIEWERASCII, &ascii));
  if (!ascii) PetscFunctionReturn(0);
  PetscCall(PetscViewerASCIIPrintf(viewer, "MapEvaluator: type %s%s\n", ev->type[0] ? ev->type : "(not set)", ev->setupcalled ? "" : " (not set up)"));
  PetscCall(PetscViewerASCIIPushTab(viewer));
  if (ev->setupcalled) {
    PetscCall(MapEvaluatorViewList(viewer, "tasks", ev->T, ev->tasks));
    PetscCall(PetscViewerASCIIPrintf(viewer, "coefficients: %d%s\n", ev->Tc, ev->model ? " (the model's basis)" : ""));
  }
  if (ev->ndata > 0) PetscCall(MapEvaluatorViewList(viewer, "eval data", ev->ndata, ev->data));
  {
    char spec[256];
    MapMetricFormat(&ev->metric, spec, sizeof(spec));
    PetscCall(PetscViewerASCIIPrintf(viewer, "metric: %s (-map_metric)\n", spec));
  }
  PetscCall(PetscViewerASCIIPrintf(viewer, "rank groups: %" PetscInt_FMT "%s (-map_eval_groups)\n", ev->groups, ev->groups ? "" : " = automatic"));
  if (ev->group >= 0) PetscCall(PetscViewerASCIIPrintf(viewer, "this evaluator: group %d\n", ev->group));
  if (ev->ops.view) PetscCall(ev->ops.view(ev, viewer));
  PetscCall(PetscViewerASCIIPopTab(viewer));
  PetscFunctionReturn(0);
}

/* -map_eval_view [ascii:FILE]: MapEvaluatorView after SetUp. Of G concurrent evaluator groups only
   group 0 prints: the groups share every option, and G copies would only interleave. */
static PetscErrorCode MapEvaluatorViewFromOptions(MapEvaluator ev)
{
  PetscViewer       viewer;
  PetscViewerFormat format;
  PetscBool         flg;

  PetscFunctionBegin;
  if (ev->group > 0) PetscFunctionReturn(0);
  PetscCall(PetscOptionsGetViewer(ev->comm, NULL, NULL, "-map_eval_view", &viewer, &format, &flg));
  if (!flg) PetscFunctionReturn(0);
  PetscCall(PetscViewerPushFormat(viewer, format));
  PetscCall(MapEvaluatorView(ev, viewer));
  PetscCall(PetscViewerPopFormat(viewer));
  PetscCall(PetscViewerDestroy(&viewer));
  PetscFunctionReturn(0);
}

/*
  MapEvaluatorSetUp - collective. model: the merge basis (NULL for analytic); T task names to
  evaluate, in the order of the metrics; eval_data: T eval-set files, or NULL to use those of
  -map_eval_data / MapEvaluatorSetEvalData. The coefficient vector has the model's basis length
  (usually T). Errors: eval-set count != T (naming both), and the type's own checks.
*/
PetscErrorCode MapEvaluatorSetUp(MapEvaluator ev, MapModel model, int T, const char *const *task_names, const char *const *eval_data)
{
  PetscFunctionBegin;
  PetscCheck(!ev->setupcalled, ev->comm, PETSC_ERR_ORDER, "MapEvaluatorSetUp called twice");
  PetscCheck(T >= 1, ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "MapEvaluatorSetUp: %d tasks, expected at least 1", T);
  if (!ev->type[0]) PetscCall(MapEvaluatorSetType(ev, "mlp"));
  if (eval_data) {
    /* lists from MapSplitList/MapOptionsGetList are NULL-terminated: a shorter one is caught here */
    int k = 0;
    while (k < T && eval_data[k]) k++;
    PetscCheck(k == T, ev->comm, PETSC_ERR_ARG_SIZ, "-map_eval_data gives %d eval set(s) but there are %d tasks: one per task, in task order", k, T);
    PetscCall(MapEvaluatorSetEvalData(ev, T, eval_data));
  }
  ev->model = model;
  ev->T     = T;
  ev->Tc    = T;
  if (model) PetscCall(MapModelGetNumCoefficients(model, &ev->Tc));
  PetscCall(PetscCalloc1(T + 1, &ev->tasks));
  for (int i = 0; i < T; i++) PetscCall(PetscStrallocpy(task_names[i], &ev->tasks[i]));
  if (ev->ndata > 0 || !strcmp(ev->type, "mlp") || !strcmp(ev->type, "lm")) {
    char list[1024] = "";
    for (int i = 0; i < T; i++) {
      size_t l = strlen(list);
      snprintf(list + l, sizeof(list) - l, "%s%s", i ? "," : "", task_names[i]);
    }
    PetscCheck(ev->ndata == T, ev->comm, PETSC_ERR_ARG_SIZ, "-map_eval_data gives %d eval set(s) but there are %d tasks (%s): one per task, in task order",
               ev->ndata, T, list);
  }
  PetscCall(SubstituteGroupRank(ev, ev->command, sizeof(ev->command)));
  PetscCall(SubstituteGroupRank(ev, ev->worker, sizeof(ev->worker)));
  if (ev->gpus[0]) {
    int    n;
    char **list;
    PetscCall(MapSplitList(ev->gpus, ',', &n, &list));
    PetscCheck(n > 0, ev->comm, PETSC_ERR_ARG_WRONG, "-map_eval_gpus %s: no GPU listed", ev->gpus);
    PetscCall(PetscStrncpy(ev->cuda, list[(ev->group < 0 ? 0 : ev->group) % n], sizeof(ev->cuda)));
    for (char *q = ev->cuda; *q; q++)
      if (*q == ':') *q = ','; /* several GPUs per group */
    PetscCall(MapFreeList(n, &list));
  }
  if (strcmp(ev->type, "command") && strcmp(ev->type, "worker")) { /* the built-in evaluators know what their two metrics mean */
    char spec[160];
    MapMetricFormat(&ev->metric, spec, sizeof(spec));
    PetscCheck(!strcmp(ev->metric.name, "accuracy") || !strcmp(ev->metric.name, "loss"), ev->comm, PETSC_ERR_ARG_WRONG,
               "-map_metric %s: the %s evaluator computes accuracy and loss only; other metrics come from -map_eval_type command or worker", spec, ev->type);
    PetscCheck(ev->metric.lower == (strcmp(ev->metric.name, "loss") ? PETSC_FALSE : PETSC_TRUE), ev->comm, PETSC_ERR_ARG_WRONG,
               "-map_metric %s: the %s evaluator's %s is better when %s: use -map_metric %s", spec, ev->type, ev->metric.name,
               ev->metric.lower ? "higher" : "lower", !strcmp(ev->metric.name, "loss") ? "loss:lower:0," : "accuracy:higher:0,1");
  }
  if (ev->ops.setup) PetscCall(ev->ops.setup(ev));
  ev->setupcalled = PETSC_TRUE;
  PetscCall(MapEvaluatorViewFromOptions(ev));
  PetscFunctionReturn(0);
}

/*
  MapEvaluatorEvaluate - collective: merges the model at c[Tc] and evaluates every task into
  metrics[T]. The metrics are identical on all ranks and the same bits for any rank count.
*/
PetscErrorCode MapEvaluatorEvaluate(MapEvaluator ev, const double *c, MapTaskMetrics *metrics)
{
  PetscFunctionBegin;
  PetscCall(MapEvaluatorEvaluateTasks(ev, c, NULL, metrics));
  PetscFunctionReturn(0);
}

/*
  MapEvaluatorEvaluateTasks - MapEvaluatorEvaluate for the wanted tasks only (Bayesian MAP's
  per-task rounds: one merge, one task's forward passes). Unwanted tasks: NaN metrics.
*/
PetscErrorCode MapEvaluatorEvaluateTasks(MapEvaluator ev, const double *c, const PetscBool *want, MapTaskMetrics *metrics)
{
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCheck(ev->setupcalled, ev->comm, PETSC_ERR_ORDER, "MapEvaluatorEvaluate: call MapEvaluatorSetUp first");
  for (int i = 0; i < ev->Tc; i++)
    PetscCheck(isfinite(c[i]), ev->comm, PETSC_ERR_FP, "MapEvaluatorEvaluate: coefficient %d is not finite (%g)", i, c[i]);
  PetscCall(PetscMemzero(metrics, sizeof(MapTaskMetrics) * (size_t)ev->T));
  ev->want = want;
  ierr     = ev->ops.evaluate(ev, c, metrics);
  ev->want = NULL;
  PetscCall(ierr);
  for (int t = 0; t < ev->T; t++)
    if (want && !want[t]) {
      metrics[t].accuracy = metrics[t].loss = NAN;
      metrics[t].correct = metrics[t].count = 0;
    }
  PetscCall(MapEvalCheckMetrics(ev, want, metrics));
  PetscFunctionReturn(0);
}

PetscErrorCode MapEvaluatorGetMetric(MapEvaluator ev, const MapMetric **metric)
{
  PetscFunctionBegin;
  *metric = &ev->metric;
  PetscFunctionReturn(0);
}

PetscErrorCode MapEvaluatorDestroy(MapEvaluator *ev)
{
  PetscFunctionBegin;
  if (!ev || !*ev) PetscFunctionReturn(0);
  if ((*ev)->ops.destroy) PetscCall((*ev)->ops.destroy(*ev));
  PetscCall(MapFreeList((*ev)->T, &(*ev)->tasks));
  PetscCall(MapFreeList((*ev)->ndata, &(*ev)->data));
  PetscCall(PetscFree(*ev));
  PetscFunctionReturn(0);
}

/*
  MapEvalBLASInfo - which BLAS the process really runs (for the run manifest): the shared object
  that provides cblas_sgemm (resolved through symlinks, e.g. Debian's libblas.so.3 alternative),
  plus OpenBLAS's build configuration and core name when it is OpenBLAS. Not collective.
*/
PetscErrorCode MapEvalBLASInfo(char *buf, size_t len)
{
  Dl_info info;
  char    real[MAP_PATH_LEN] = "unknown";

  PetscFunctionBegin;
  PetscCheck(buf && len > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "MapEvalBLASInfo: empty buffer");
  if (dladdr((void *)cblas_sgemm, &info) && info.dli_fname) {
    if (!realpath(info.dli_fname, real)) PetscCall(PetscStrncpy(real, info.dli_fname, sizeof(real)));
  }
  /* OpenBLAS exports these; other BLAS libraries do not (looked up at run time, not linked) */
  char *(*get_config)(void)   = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_config");
  char *(*get_corename)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
  int (*get_threads)(void)    = (int (*)(void))dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
  if (get_config)
    snprintf(buf, len, "%s (OpenBLAS: %s; core %s; %d thread(s))", real, get_config(), get_corename ? get_corename() : "?",
             get_threads ? get_threads() : -1);
  else snprintf(buf, len, "%s", real);
  PetscFunctionReturn(0);
}
