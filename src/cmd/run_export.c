/* `mapmerge export`: write the merged model theta_pre + sum_i c_i tau_i as safetensors, each rank
 * its own element ranges (MPI-IO), with the original tensor names and shapes. */
#include "runimpl.h"
#include "run_export_hf.h"
#include <mapmerge/core_h5.h>
#include <errno.h>
#include <stdlib.h>
#include <math.h>

typedef struct {
  char      store[MAP_PATH_LEN], output[MAP_PATH_LEN], shard[64], priv[MAP_NAME_LEN];
  char      tasks[65536];
  char      run[MAP_PATH_LEN]; /* -map_run: take c from a finished run's surrogates and -map_preference */
  PetscBool best;              /* -map_export_model best_evaluated: the run's best evaluated model instead of its pick */
  double    c[1024];
  int       nc;
  PetscBool cset;
  MapDType  dtype;
  PetscReal block_mb; /* -map_io_block_mb */
} ExportOptions;

/* "0", "2000000", "500M", "5G" (powers of 1000, as Hugging Face's max_shard_size) */
static PetscErrorCode ParseBytes(MPI_Comm comm, const char *s, uint64_t *bytes)
{
  char              *end;
  unsigned long long v;

  PetscFunctionBegin;
  errno = 0;
  v     = strtoull(s, &end, 10);
  PetscCheck(end != s && !errno && s[0] != '-', comm, PETSC_ERR_ARG_WRONG, "-map_export_shard_size: expected a byte count like 5000000000 or 5G, got \"%s\"", s);
  if (*end == 'k' || *end == 'K') v *= 1000ULL, end++;
  else if (*end == 'M') v *= 1000000ULL, end++;
  else if (*end == 'G') v *= 1000000000ULL, end++;
  if (*end == 'B') end++;
  PetscCheck(!*end, comm, PETSC_ERR_ARG_WRONG, "-map_export_shard_size: expected a byte count like 5000000000 or 5G, got \"%s\"", s);
  *bytes = v;
  PetscFunctionReturn(0);
}

static PetscErrorCode ExportReadOptions(MPI_Comm comm, ExportOptions *o, PetscBool *help)
{
  const char *dtypes[] = {"f32", "bf16", "f16"};
  PetscInt    idt      = 0;
  PetscInt    nc       = 1024;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(o, sizeof(*o)));
  PetscCall(PetscStrncpy(o->shard, "0", sizeof(o->shard)));
  PetscOptionsBegin(comm, NULL, "mapmerge export: write a merged model as safetensors", NULL);
  PetscCall(PetscOptionsString("-map_store", "the HDF5 store written by mapmerge import", NULL, o->store, o->store, sizeof(o->store), NULL));
  PetscCall(PetscOptionsRealArray("-map_coeff", "coefficients c_i, one per task (store order, or the order of -map_tasks)", NULL, o->c, &nc,
                                  &o->cset));
  PetscCall(PetscOptionsString("-map_run", "a run folder of `mapmerge run`: the coefficients are its pick for -map_preference (instead of -map_coeff)",
                               NULL, o->run, o->run, sizeof(o->run), NULL));
  {
    char        pref[2048] = "";
    const char *models[]   = {"pick", "best_evaluated"};
    PetscInt    imodel     = 0;
    PetscCall(PetscOptionsString("-map_preference", "with -map_run: preference weights w_1,...,w_T (default: equal)", NULL, pref, pref,
                                 sizeof(pref), NULL));
    PetscCall(PetscOptionsEList("-map_export_model",
                                "with -map_run: pick (the surrogates' solution for -map_preference) or best_evaluated (of the models the run "
                                "evaluated on every task, the best by the pick's criterion applied to their real accuracies)",
                                NULL, models, 2, models[0], &imodel, NULL));
    o->best = imodel == 1 ? PETSC_TRUE : PETSC_FALSE;
  }
  PetscCall(PetscOptionsString("-map_tasks", "subset of the store's tasks the coefficients refer to (default: all, in store order)", NULL,
                               o->tasks, o->tasks, sizeof(o->tasks), NULL));
  PetscCall(PetscOptionsString("-map_output", "output: a .safetensors file, or a folder when -map_export_shard_size > 0 or when the store was imported from a model folder (then with its config/tokenizer files and a model card)", NULL, o->output,
                               o->output, sizeof(o->output), NULL));
  PetscCall(PetscOptionsString("-map_export_shard_size", "maximum bytes per shard file (0 = one file; else a folder with model.safetensors.index.json); suffixes k, M, G",
                               NULL, o->shard, o->shard, sizeof(o->shard), NULL));
  PetscCall(PetscOptionsString("-map_export_private", "also write this task's private tensors (e.g. its head) under their own names; all: every task's, prefixed <task>.", NULL,
                               o->priv, o->priv, sizeof(o->priv), NULL));
  PetscCall(PetscOptionsEList("-map_export_dtype", "dtype of the written tensors (default f32; for a model folder, the pretrained checkpoint's dtypes)", NULL, dtypes, 3, dtypes[0], &idt, NULL));
  o->block_mb = 64;
  PetscCall(PetscOptionsReal("-map_io_block_mb", "MiB of read/merge buffers per rank: the merged tensors are read, merged and written block by block "
                                                 "(0 = each rank's whole shard at once, (T+2)*P*4/ranks bytes)",
                             NULL, o->block_mb, &o->block_mb, NULL));
  PetscOptionsEnd();
  PetscCheck(o->block_mb >= 0 && o->block_mb <= 1048576, comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_io_block_mb: expected 0 (whole shard) to 1048576 MiB, got %g",
             (double)o->block_mb);
  o->nc    = o->cset ? (int)nc : 0;
  o->dtype = idt == 1 ? MAP_DTYPE_BF16 : idt == 2 ? MAP_DTYPE_F16
                                                  : MAP_DTYPE_F32;
  PetscCall(PetscOptionsHasHelp(NULL, help));
  PetscFunctionReturn(0);
}

/* Store task indices of the coefficients: all tasks, or the -map_tasks subset in its order. */
static PetscErrorCode ExportTasks(MPI_Comm comm, MapStore store, const ExportOptions *o, int *ntask, int **tasks)
{
  int    T, n = 0;
  char **names = NULL, all[4096] = "";

  PetscFunctionBegin;
  PetscCall(MapStoreGetSizes(store, NULL, &T, NULL));
  for (int t = 0; t < T; t++) {
    const char *nm;
    PetscCall(MapStoreGetTaskName(store, t, &nm));
    PetscCall(MapStrlcat(all, t ? "," : "", sizeof(all)));
    PetscCall(MapStrlcat(all, nm, sizeof(all)));
  }
  if (o->tasks[0]) PetscCall(MapSplitList(o->tasks, ',', &n, &names));
  else n = T;
  PetscCall(PetscMalloc1(n, tasks));
  for (int k = 0; k < n; k++) {
    if (names) PetscCall(MapStoreFindTask(store, names[k], &(*tasks)[k]));
    else (*tasks)[k] = k;
    for (int q = 0; q < k; q++)
      PetscCheck((*tasks)[q] != (*tasks)[k], comm, PETSC_ERR_ARG_WRONG, "export: task %s appears twice in -map_tasks", names[k]);
  }
  PetscCheck(o->nc == n, comm, PETSC_ERR_ARG_SIZ, "export: -map_coeff has %d values but %s %d tasks (%s)", o->nc,
             names ? "-map_tasks lists" : "the store has", n, names ? o->tasks : all);
  for (int k = 0; k < n; k++)
    PetscCheck(!PetscIsInfOrNanReal(o->c[k]), comm, PETSC_ERR_ARG_WRONG, "export: -map_coeff value %d is %g", k, o->c[k]);
  PetscCall(MapFreeList(n, &names));
  *ntask = n;
  PetscFunctionReturn(0);
}

/*@
  MapCommandExport - writes theta_pre + sum_k c_k tau_{tasks[k]} of a store as safetensors
  (-map_store, -map_coeff, -map_tasks, -map_output, -map_export_shard_size, -map_export_private,
  -map_export_dtype), metadata format=pt, mapmerge_version, tasks, coefficients.

  Collective: each rank reads, merges and writes its shard block by block (MapMergeWriteStreamed,
  -map_io_block_mb), each tensor's intersecting element ranges; the bytes do not depend on the
  rank count or the block size.
@*/
/* The accuracy surrogates of a finished run, to solve its scalarised problem for a new preference. */
typedef struct {
  int           T, F;
  const double *params; /* [T, F] */
  MapRunMetric  metric; /* the run's -map_metric: link, units and direction */
} ExportSurrogates;

static PetscErrorCode ExportObjective(void *ctx, const double *c, double *f, double *J)
{
  ExportSurrogates *e = (ExportSurrogates *)ctx;

  PetscFunctionBegin;
  for (int t = 0; t < e->T; t++) PetscCall(MapRunMetricPredict(&e->metric, e->T, &e->params[t * e->F], c, &f[t], J ? &J[t * e->T] : NULL));
  PetscFunctionReturn(0);
}

/* -map_export_model best_evaluated: c = the evaluated model of the run's real front (K models, rank 0's
   front_acc/front_c, broadcast here) ranked by the pick's criterion, as the run's summary does: it is
   minimised on the non-dominated set, so the real front holds the best of all evaluations; first on ties */
static PetscErrorCode ExportPickBestEvaluated(MPI_Comm comm, PetscMPIInt rank, MapPareto pareto, const ExportSurrogates *es, const double *w, int K,
                                              double **front_acc, double **front_c, ExportOptions *o)
{
  double best  = 0, v;
  int    ibest = 0;
  int    T     = es->T;

  PetscFunctionBegin;
  if (rank) {
    PetscCall(PetscMalloc1(K * T, front_acc));
    PetscCall(PetscMalloc1(K * T, front_c));
  }
  PetscCallMPI(MPI_Bcast(*front_acc, K * T, MPI_DOUBLE, 0, comm));
  PetscCallMPI(MPI_Bcast(*front_c, K * T, MPI_DOUBLE, 0, comm));
  for (int k = 0; k < K; k++) {
    double fo[MAP_MAX_TASKS]; /* the search's orientation: larger is better */
    for (int t = 0; t < T; t++) fo[t] = es->metric.sign * (*front_acc)[k * T + t];
    PetscCall(MapParetoPreferenceValue(pareto, w, fo, &v));
    if (!k || v < best) best = v, ibest = k;
  }
  for (int t = 0; t < T; t++) o->c[t] = (*front_c)[ibest * T + t];
  PetscCall(PetscPrintf(comm, "export: best evaluated model of run %s for the preference (the pick's criterion: %.4f, lower is better; %d models on its real front):",
                        o->run, best, K));
  for (int t = 0; t < T; t++) PetscCall(PetscPrintf(comm, " c=%.6f (accuracy %.4f)", o->c[t], (*front_acc)[ibest * T + t]));
  PetscFunctionReturn(0);
}

/* -map_run DIR -map_preference w: c = the run's pick for w (its box, its surrogates, the same
   Pareto solver options), or with -map_export_model best_evaluated the evaluated model of highest
   value of the pick's criterion (scalarised real accuracies); for a nested run, the root of its merge tree. */
static PetscErrorCode ExportCoeffsFromRun(MPI_Comm comm, MapPareto pareto, ExportOptions *o)
{
  static MapRunResultsForExport x; /* 64 KiB of task names: not on the stack */
  char                         *tasks = x.tasks, path[MAP_PATH_LEN], *boxs = NULL, *method = NULL;
  int                           T = 0, F = 0, K = 0, ok = 1, nested = 0;
  double                       *params = NULL, *front_acc = NULL, *front_c = NULL, lo = 0, hi = 1;
  PetscMPIInt                   rank;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&x, sizeof(x)));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  snprintf(path, sizeof(path), "%s/results.h5", o->run);
  if (!rank) {
    PetscCall(MapRunResultsReadForExport(o->run, path, o->best, &x, &ok));
    T = x.T, F = x.F, K = x.K, nested = x.nested;
    params = x.params, front_acc = x.front_acc, front_c = x.front_c, boxs = x.box, method = x.method;
  }
  PetscCallMPI(MPI_Bcast(&ok, 1, MPI_INT, 0, comm));
  PetscCheck(ok, comm, PETSC_ERR_FILE_OPEN, "export: -map_run %s: cannot read %s (surrogates or merge tree, tasks%s)", o->run, path,
             o->best ? ", /pareto/real_front and real_front_coeffs" : "");
  PetscCallMPI(MPI_Bcast(&T, 1, MPI_INT, 0, comm));
  PetscCallMPI(MPI_Bcast(&F, 1, MPI_INT, 0, comm));
  PetscCallMPI(MPI_Bcast(&K, 1, MPI_INT, 0, comm));
  PetscCallMPI(MPI_Bcast(&nested, 1, MPI_INT, 0, comm));
  PetscCallMPI(MPI_Bcast(&x.has_pick, 1, MPI_INT, 0, comm));
  PetscCallMPI(MPI_Bcast(x.pick_w, MAP_MAX_TASKS, MPI_DOUBLE, 0, comm));
  PetscCallMPI(MPI_Bcast(x.pick_c, MAP_MAX_TASKS, MPI_DOUBLE, 0, comm));
  PetscCheck(!(o->best && nested), comm, PETSC_ERR_ARG_INCOMP,
             "export: -map_export_model best_evaluated: run %s is nested MAP, whose pairs already let evaluated samples compete with "
             "each pick; its model is the root of the merge tree (drop -map_export_model)",
             o->run);
  PetscCheck(!o->best || K > 0, comm, PETSC_ERR_FILE_UNEXPECTED, "export: -map_run %s: /pareto/real_front is empty (no model was evaluated on every task)", o->run);
  PetscCallMPI(MPI_Bcast(tasks, sizeof(x.tasks), MPI_CHAR, 0, comm));
  PetscCallMPI(MPI_Bcast(x.metric_spec, sizeof(x.metric_spec), MPI_CHAR, 0, comm));
  if (rank) PetscCall(PetscMalloc1(T * F, &params));
  PetscCallMPI(MPI_Bcast(params, T * F, MPI_DOUBLE, 0, comm));
  if (!rank && boxs) sscanf(boxs, "%lf,%lf", &lo, &hi);
  PetscCallMPI(MPI_Bcast(&lo, 1, MPI_DOUBLE, 0, comm));
  PetscCallMPI(MPI_Bcast(&hi, 1, MPI_DOUBLE, 0, comm));
  PetscCall(PetscFree(boxs));
  PetscCall(PetscFree(method));
  PetscCall(PetscStrncpy(o->tasks, tasks, sizeof(o->tasks)));
  o->nc   = T;
  o->cset = PETSC_TRUE;
  if (nested) { /* the root of the tree: the last node's coefficients over the original tasks */
    for (int t = 0; t < T; t++) o->c[t] = params[(F - 1) * T + t];
    PetscCall(PetscPrintf(comm, "export: the final model of nested run %s (its tree was built for the run's preference)\n", o->run));
  } else {
    double w[1024], fpick[1024];
    int    nw = 0;
    PetscCall(MapOptionsGetRealList("-map_preference", 1024, w, &nw, NULL));
    if (!nw)
      for (nw = 0; nw < T; nw++) w[nw] = 1;
    PetscCheck(nw == T, comm, PETSC_ERR_ARG_SIZ, "export: -map_preference has %d weights but run %s has %d tasks (%s)", nw, o->run, T, tasks);
    ExportSurrogates es;
    MapMetric        mt;
    es.T      = T;
    es.F      = F;
    es.params = params;
    PetscCall(MapMetricParse(x.metric_spec, &mt));
    MapRunMetricFrom(&mt, &es.metric);
    PetscCall(MapParetoSetBox(pareto, lo, hi));
    PetscCall(MapParetoSetObjectives(pareto, T, T, ExportObjective, &es));
    PetscCall(MapParetoPick(pareto, w, o->c, fpick)); /* also the ideal and nadir the criterion is normalised by */
    if (o->best) PetscCall(ExportPickBestEvaluated(comm, rank, pareto, &es, w, K, &front_acc, &front_c, o));
    else {
      PetscBool own = x.has_pick ? PETSC_TRUE : PETSC_FALSE;
      for (int t = 0; own && t < T; t++)
        if (w[t] != x.pick_w[t]) own = PETSC_FALSE;
      if (own) { /* the run's preference: the very coefficients the run evaluated, not a re-solve that stops within TAO's tolerance of them */
        for (int t = 0; t < T; t++) o->c[t] = x.pick_c[t];
        PetscCall(PetscPrintf(comm, "export: pick of run %s for its own preference (results.h5 /pick/coeffs, the model it evaluated):", o->run));
        for (int t = 0; t < T; t++) PetscCall(PetscPrintf(comm, " c=%.6f", o->c[t]));
      } else {
        PetscCall(PetscPrintf(comm, "export: pick of run %s for the preference:", o->run));
        for (int t = 0; t < T; t++) PetscCall(PetscPrintf(comm, " c=%.6f (predicted accuracy %.4f)", o->c[t], fpick[t]));
      }
    }
    PetscCall(PetscPrintf(comm, "\n"));
  }
  PetscCall(PetscFree(params));
  PetscCall(PetscFree(front_acc));
  PetscCall(PetscFree(front_c));
  PetscFunctionReturn(0);
}

/* -map_run: the run's search options (-map_pareto_*, from its manifest.json) unless given here, so
   its surrogates are searched the same way and the pick for its preference is the run's own */
static PetscErrorCode ExportInheritSearchOptions(MPI_Comm comm, const char *run)
{
  char        path[MAP_PATH_LEN], used[4096] = "";
  json_t     *m, *mo, *val;
  const char *key;

  PetscFunctionBegin;
  snprintf(path, sizeof(path), "%s/manifest.json", run);
  PetscCall(MapRunReadManifest(comm, path, "export: -map_run", &m, &mo));
  json_object_foreach(mo, key, val)
  {
    PetscBool given;
    if (strncmp(key, "-map_pareto_", 12) || !json_is_string(val)) continue;
    PetscCall(PetscOptionsHasName(NULL, NULL, key, &given));
    if (given) continue;
    PetscCall(PetscOptionsSetValue(NULL, key, json_string_value(val)));
    snprintf(used + strlen(used), sizeof(used) - strlen(used), " %s %s", key, json_string_value(val));
  }
  if (used[0]) PetscCall(PetscPrintf(comm, "export: the search options of run %s:%s\n", run, used));
  json_decref(m);
  PetscFunctionReturn(0);
}

/* the tensor list: merged tensors in store order, then the private ones, then the buffers (PetscFree) */
static PetscErrorCode ExportTensorList(MapStore store, MapDType dtype, int ntensors, MapExportExtras *ex, MapTensorInfo **list)
{
  MapTensorInfo *info;

  PetscFunctionBegin;
  PetscCall(PetscCalloc1(ntensors + ex->npriv + ex->nbuf + 1, &info));
  for (int i = 0; i < ntensors; i++) {
    const MapStoreTensor *t;
    PetscCall(MapStoreGetTensor(store, i, &t));
    PetscCall(PetscStrncpy(info[i].name, t->name, sizeof(info[i].name)));
    info[i].dtype = dtype;
    info[i].ndim  = t->ndim;
    for (int d = 0; d < t->ndim; d++) info[i].shape[d] = t->shape[d];
    info[i].numel = t->numel;
  }
  PetscCall(MapExportExtrasFillInfo(ex, store, dtype, ntensors, info));
  *list = info;
  PetscFunctionReturn(0);
}

/* the metadata's "tasks" and "coefficients": comma-separated names and %.17g values */
static PetscErrorCode ExportNamesAndCoeffs(MapStore store, int ntask, const int *tasks, const double *c, char *tnames, size_t tlen, char *coeffs, size_t clen)
{
  PetscFunctionBegin;
  for (int k = 0; k < ntask; k++) {
    const char *nm;
    char        v[64];
    PetscCall(MapStoreGetTaskName(store, tasks[k], &nm));
    PetscCall(MapStrlcat(tnames, k ? "," : "", tlen));
    PetscCall(MapStrlcat(tnames, nm, tlen));
    PetscCall(PetscSNPrintf(v, sizeof(v), "%s%.17g", k ? "," : "", c[k]));
    PetscCall(MapStrlcat(coeffs, v, clen));
  }
  PetscFunctionReturn(0);
}

/* -map_output writable, its message prefixed by export: on every rank */
static PetscErrorCode ExportCheckWritable(MPI_Comm comm, const char *output)
{
  PetscErrorCode ierr;
  char          *why = NULL;

  PetscFunctionBegin;
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  ierr = MapCheckWritable(output, "-map_output");
  PetscCall(PetscPopErrorHandler());
  if (ierr) PetscCall(PetscErrorMessage(ierr, NULL, &why));
  PetscCheck(!ierr, comm, PETSC_ERR_FILE_OPEN, "export: %s", why ? why : "-map_output: folder not writable");
  PetscFunctionReturn(0);
}

/* the merged model and the extras into a new writer, published by its Close; on a failure aborted, so no
   output is published */
static PetscErrorCode ExportWrite(MPI_Comm comm, MapStore store, const ExportOptions *o, int ntask, const int *tasks, MapExportExtras *ex,
                                  MapTensorInfo *info, int ntensors, uint64_t shard, const char *tnames, const char *coeffs, PetscMPIInt rank)
{
  MapSafetensorsWriter w;
  int                  nextra = ex->npriv + ex->nbuf;

  PetscFunctionBegin;
  {
    const char *keys[]   = {"mapmerge_version", "mapmerge_git_commit", "tasks", "coefficients", "private_task"};
    const char *values[] = {MAPMERGE_VERSION, MAPMERGE_GIT_COMMIT, tnames, coeffs, o->priv};
    /* a model folder is staged and switched in whole, weights and files together */
    if (ex->folder) PetscCall(MapSafetensorsWriterCreateFolder(comm, o->output, ntensors + nextra, info, o->priv[0] ? 5 : 4, keys, values, shard, &w));
    else PetscCall(MapSafetensorsWriterCreate(comm, o->output, ntensors + nextra, info, o->priv[0] ? 5 : 4, keys, values, shard, &w));
  }
  {
    /* a damaged store or a non-finite merge fails here, on every rank: no output is published */
    PetscErrorCode ierr = MapMergeWriteStreamed(store, ntask, tasks, o->c, o->block_mb, w);
    if (ierr) {
      PetscCall(MapSafetensorsWriterAbort(&w));
      PetscCall(ierr);
    }
  }
  PetscCall(MapExportExtrasWrite(ex, w, info, ntensors, rank));
  {
    PetscErrorCode ierr = MapExportExtrasStage(comm, ex, w, store, o->run, ntask, tasks, o->c, info, ntensors, shard);
    if (ierr) {
      PetscCall(MapSafetensorsWriterAbort(&w));
      PetscCall(ierr);
    }
  }
  PetscCall(MapSafetensorsWriterClose(&w));
  PetscFunctionReturn(0);
}

PetscErrorCode MapCommandExport(MPI_Comm comm)
{
  ExportOptions   o;
  PetscBool       help;
  MapPareto       pareto;
  MapStore        store;
  MapExportExtras ex;
  MapTensorInfo  *info  = NULL;
  uint64_t        shard = 0;
  int             ntask = 0, *tasks = NULL, T, ntensors, nextra;
  char            coeffs[32768] = "", tnames[32768] = "";
  int64_t         P;
  PetscMPIInt     rank;
  double          t0 = MapWallTime();

  PetscFunctionBegin;
  PetscCall(ExportReadOptions(comm, &o, &help));
  if (o.run[0] && !help) PetscCall(ExportInheritSearchOptions(comm, o.run));
  /* the search of -map_run's pick: its options (-map_pareto_*, its TAO options) are listed by -help and
     read before the unused-option check */
  PetscCall(MapParetoCreate(comm, &pareto));
  PetscCall(MapParetoSetFromOptions(pareto));
  if (help) {
    PetscCall(MapParetoDestroy(&pareto));
    PetscFunctionReturn(0);
  }
  PetscCall(MapCheckOptionsLeft(comm)); /* first, so a mistyped required option is reported as a typo */
  PetscCheck(o.store[0], comm, PETSC_ERR_ARG_WRONG, "export: -map_store PATH is required");
  PetscCheck(o.output[0], comm, PETSC_ERR_ARG_WRONG, "export: -map_output PATH is required");
  PetscCheck(!(o.cset && o.run[0]), comm, PETSC_ERR_ARG_INCOMP, "export: give -map_coeff or -map_run (with -map_preference), not both");
  PetscCheck(!o.best || o.run[0], comm, PETSC_ERR_ARG_INCOMP, "export: -map_export_model best_evaluated chooses among a run's models: it needs -map_run RUNDIR");
  if (o.run[0]) PetscCall(ExportCoeffsFromRun(comm, pareto, &o));
  PetscCall(MapParetoDestroy(&pareto));
  PetscCheck(o.cset, comm, PETSC_ERR_ARG_WRONG,
             "export: -map_coeff c1,c2,... (one coefficient per task) or -map_run RUNDIR [-map_preference w1,w2,...] is required");
  PetscCall(ParseBytes(comm, o.shard, &shard));
  PetscCall(ExportCheckWritable(comm, o.output));

  PetscCall(PetscLogEventBegin(MAP_EVENT_Export, 0, 0, 0, 0));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  {
    const char *in[1] = {o.store};
    PetscCall(MapCheckNotInput(comm, o.output, "-map_output", 1, in));
  }
  PetscCall(MapStoreOpen(comm, o.store, &store));
  PetscCall(MapStoreGetSizes(store, &P, &T, &ntensors));
  PetscCall(ExportTasks(comm, store, &o, &ntask, &tasks));
  /* private tensors (one task's or all), integer/bool buffers, a model folder's files */
  PetscCall(MapExportExtrasCreate(comm, store, o.priv, o.output, &ex));
  nextra = ex.npriv + ex.nbuf;

  PetscCall(ExportTensorList(store, o.dtype, ntensors, &ex, &info));
  PetscCall(ExportNamesAndCoeffs(store, ntask, tasks, o.c, tnames, sizeof(tnames), coeffs, sizeof(coeffs)));
  PetscCall(ExportWrite(comm, store, &o, ntask, tasks, &ex, info, ntensors, shard, tnames, coeffs, rank));
  PetscCall(MapExportExtrasReport(comm, &ex, o.output));

  PetscCall(PetscPrintf(comm, "export: wrote %s: %d tensors (%d merged, %d private of %s, %d buffers), P = %lld, dtype %s, tasks %s, c = %s; %.2f s\n",
                        o.output, ntensors + nextra, ntensors, ex.npriv, o.priv[0] ? o.priv : "-", ex.nbuf, (long long)P,
                        ex.folder && !ex.dtype_set ? "of the pretrained model" : MapDTypeName(o.dtype), tnames, coeffs, MapWallTime() - t0));
  PetscCall(MapExportExtrasDestroy(&ex));
  PetscCall(PetscFree(info));
  PetscCall(PetscFree(tasks));
  PetscCall(MapStoreDestroy(&store));
  PetscCall(PetscLogEventEnd(MAP_EVENT_Export, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}
