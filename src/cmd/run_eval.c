/* `mapmerge eval`: evaluates given coefficient vectors on every task (docs/design.md §1).
   In:  -map_coeffs FILE.csv (header: task names, optionally c_ prefixed; one row per vector).
   Out: -map_output OUT: a CSV and an HDF5 file with the same content. OUT ending in .csv names
        the CSV and the HDF5 file is OUT with .h5 instead; OUT ending in .h5 names the HDF5 file
        and the CSV is OUT with .csv instead; any other OUT gets OUT.csv and OUT.h5.
        CSV columns: c_<task>..., acc_<task>..., loss_<task>... (%.17g, exact round trip).
        HDF5: /coeffs, /accuracy, /loss [n,T] float64, /correct, /count [n,T] int64, /tasks.
        With -map_metric NAME:... (not the default): also NAME_<task> columns and /metric (attribute
        "metric"); accuracy and loss are NaN where the program gave none.
   Both are written to temporary names and renamed when complete.
   -map_eval_data lists one eval set per -map_tasks entry, or one per store task (then the
   selected tasks' entries are used). */
#include <math.h>
#include <mapmerge/run.h>
#include <mapmerge/core_h5.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

static PetscErrorCode OutputNames(const char *out, char *csv, char *h5, size_t len)
{
  size_t l = strlen(out);

  PetscFunctionBegin;
  PetscCheck(l + 5 < len, PETSC_COMM_SELF, PETSC_ERR_ARG_SIZ, "-map_output %s: path too long", out);
  if (l > 4 && !strcmp(out + l - 4, ".csv")) {
    snprintf(csv, len, "%s", out);
    snprintf(h5, len, "%.*s.h5", (int)(l - 4), out);
  } else if (l > 3 && !strcmp(out + l - 3, ".h5")) {
    snprintf(h5, len, "%s", out);
    snprintf(csv, len, "%.*s.csv", (int)(l - 3), out);
  } else {
    snprintf(csv, len, "%s.csv", out);
    snprintf(h5, len, "%s.h5", out);
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode WriteCSV(const char *path, int T, char **tasks, PetscInt n, const double *C, const MapTaskMetrics *M, const MapMetric *mt)
{
  FILE *f;

  PetscFunctionBegin;
  f = fopen(path, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot create %s: %s", path, strerror(errno));
  for (int t = 0; t < T; t++) fprintf(f, "%sc_%s", t ? "," : "", tasks[t]);
  for (int t = 0; t < T; t++) fprintf(f, ",acc_%s", tasks[t]);
  for (int t = 0; t < T; t++) fprintf(f, ",loss_%s", tasks[t]);
  if (!MapMetricIsDefault(mt)) /* -map_metric: its values too (accuracy and loss NaN when the program gave none) */
    for (int t = 0; t < T; t++) fprintf(f, ",%s_%s", mt->name, tasks[t]);
  fprintf(f, "\n");
  for (PetscInt i = 0; i < n; i++) {
    for (int t = 0; t < T; t++) fprintf(f, "%s%.17g", t ? "," : "", C[i * T + t]);
    for (int t = 0; t < T; t++) fprintf(f, ",%.17g", M[i * T + t].accuracy);
    for (int t = 0; t < T; t++) fprintf(f, ",%.17g", M[i * T + t].loss);
    if (!MapMetricIsDefault(mt))
      for (int t = 0; t < T; t++) fprintf(f, ",%.17g", M[i * T + t].metric);
    fprintf(f, "\n");
  }
  int err = ferror(f);
  err |= fflush(f);
  err |= fsync(fileno(f));
  err |= fclose(f);
  PetscCheck(!err, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "error writing %s", path);
  PetscFunctionReturn(0);
}

static PetscErrorCode WriteDataset(hid_t file, const char *name, hid_t type, PetscInt n, int T, const void *data)
{
  hsize_t dims[2] = {(hsize_t)n, (hsize_t)T};
  hid_t   space, d;

  PetscFunctionBegin;
  MapCallHDF5(space = H5Screate_simple(2, dims, NULL));
  MapCallHDF5(d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (n > 0) MapCallHDF5(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  MapCallHDF5(H5Dclose(d));
  MapCallHDF5(H5Sclose(space));
  PetscFunctionReturn(0);
}


/* serial HDF5 on rank 0 (the output is small); the parallel library works serially too */
static PetscErrorCode WriteH5(const char *path, int T, char **tasks, PetscInt n, const double *C, const MapTaskMetrics *M, const char *evtype,
                              const char *store, const char *coeffs, const MapMetric *mt)
{
  hid_t    f, type, space, d;
  double  *acc, *loss;
  int64_t *corr, *cnt;
  size_t   maxl = 1;
  char    *names;
  hsize_t  nt = (hsize_t)T;
  char     blas[1024];

  PetscFunctionBegin;
  MapCallHDF5(f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  PetscCall(PetscMalloc4(n * T + 1, &acc, n * T + 1, &loss, n * T + 1, &corr, n * T + 1, &cnt));
  for (PetscInt i = 0; i < n * T; i++) {
    acc[i]  = M[i].accuracy;
    loss[i] = M[i].loss;
    corr[i] = M[i].correct;
    cnt[i]  = M[i].count;
  }
  PetscCall(WriteDataset(f, "/coeffs", H5T_NATIVE_DOUBLE, n, T, C));
  PetscCall(WriteDataset(f, "/accuracy", H5T_NATIVE_DOUBLE, n, T, acc));
  PetscCall(WriteDataset(f, "/loss", H5T_NATIVE_DOUBLE, n, T, loss));
  if (!MapMetricIsDefault(mt)) {
    char spec[160];
    for (PetscInt i = 0; i < n * T; i++) acc[i] = M[i].metric;
    PetscCall(WriteDataset(f, "/metric", H5T_NATIVE_DOUBLE, n, T, acc));
    MapMetricFormat(mt, spec, sizeof(spec));
    PetscCall(MapH5WriteStringAttr(f, "metric", spec));
  }
  PetscCall(WriteDataset(f, "/correct", H5T_NATIVE_INT64, n, T, corr));
  PetscCall(WriteDataset(f, "/count", H5T_NATIVE_INT64, n, T, cnt));
  PetscCall(PetscFree4(acc, loss, corr, cnt));
  for (int t = 0; t < T; t++) maxl = PetscMax(maxl, strlen(tasks[t]) + 1);
  PetscCall(PetscCalloc1(maxl * T, &names));
  for (int t = 0; t < T; t++) memcpy(names + maxl * t, tasks[t], strlen(tasks[t]));
  MapCallHDF5(type = H5Tcopy(H5T_C_S1));
  MapCallHDF5(H5Tset_size(type, maxl));
  MapCallHDF5(space = H5Screate_simple(1, &nt, NULL));
  MapCallHDF5(d = H5Dcreate2(f, "/tasks", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  MapCallHDF5(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, names));
  MapCallHDF5(H5Dclose(d));
  MapCallHDF5(H5Sclose(space));
  MapCallHDF5(H5Tclose(type));
  PetscCall(PetscFree(names));
  PetscCall(MapH5WriteStringAttr(f, "eval_type", evtype));
  PetscCall(MapH5WriteStringAttr(f, "store", store ? store : ""));
  PetscCall(MapH5WriteStringAttr(f, "coeffs", coeffs));
  PetscCall(MapH5WriteStringAttr(f, "mapmerge_version", MAPMERGE_VERSION));
  PetscCall(MapEvalBLASInfo(blas, sizeof(blas)));
  PetscCall(MapH5WriteStringAttr(f, "blas", blas));
  MapCallHDF5(H5Fclose(f));
  PetscFunctionReturn(0);
}

/* neither output may be an input (the store when there is one, an eval set, the coefficients) */
static PetscErrorCode EvalCheckOutputs(MPI_Comm comm, const char *storepath, const char *coeffs, const char *csv, const char *h5)
{
  int         nd, nin = 0;
  char      **ed;
  const char *in[258];

  PetscFunctionBegin;
  PetscCall(MapOptionsGetList("-map_eval_data", &nd, &ed, NULL));
  if (storepath) in[nin++] = storepath;
  in[nin++] = coeffs;
  for (int i = 0; i < nd && nin < 258; i++) in[nin++] = ed[i];
  PetscCall(MapCheckNotInput(comm, csv, "-map_output", nin, in));
  PetscCall(MapCheckNotInput(comm, h5, "-map_output", nin, in));
  PetscCall(MapFreeList(nd, &ed));
  PetscFunctionReturn(0);
}

/* opens the store, defaults the tasks to all of its tasks, and makes the model of the selected ones */
static PetscErrorCode EvalOpenStore(MPI_Comm comm, MapEvaluator ev, const char *storepath, MapStore *pstore, int *pT, char ***ptasks, MapModel *model)
{
  int64_t  P;
  int      ST, nt, *idx;
  MapStore store;
  int      T     = *pT;
  char   **tasks = *ptasks;

  PetscFunctionBegin;
  PetscCall(MapStoreOpen(comm, storepath, &store));
  PetscCall(MapStoreGetSizes(store, &P, &ST, &nt));
  if (!tasks) {
    T = ST;
    PetscCall(PetscCalloc1(T + 1, &tasks));
    for (int t = 0; t < T; t++) {
      const char *nm;
      PetscCall(MapStoreGetTaskName(store, t, &nm));
      PetscCall(PetscStrallocpy(nm, &tasks[t]));
    }
  }
  PetscCall(PetscMalloc1(T, &idx));
  for (int t = 0; t < T; t++) {
    PetscCall(MapStoreFindTask(store, tasks[t], &idx[t]));
    for (int u = 0; u < t; u++)
      PetscCheck(idx[u] != idx[t], comm, PETSC_ERR_ARG_WRONG, "-map_tasks names task %s twice", tasks[t]);
  }
  PetscCall(MapEvaluatorCreateModel(ev, store, T, idx, model));
  PetscCall(PetscFree(idx));
  *pstore = store;
  *pT     = T;
  *ptasks = tasks;
  PetscFunctionReturn(0);
}

/* eval sets: one per selected task, or one per store task (then picked by the task names, as
   `mapmerge run` does, so one zoo.yaml serves any -map_tasks subset) */
static PetscErrorCode EvalSetUpEvaluator(MapEvaluator ev, MapStore store, MapModel model, int T, char **tasks)
{
  int    nd;
  char **ed;

  PetscFunctionBegin;
  PetscCall(MapOptionsGetList("-map_eval_data", &nd, &ed, NULL));
  if (store) PetscCall(MapStoreSelectPerTask(store, T, (const char *const *)tasks, "-map_eval_data", &nd, &ed));
  /* any other count: the evaluator's own list (from the same option) fails SetUp's count check */
  PetscCall(MapEvaluatorSetUp(ev, model, T, (const char *const *)tasks, nd == T ? (const char *const *)ed : NULL));
  PetscCall(MapFreeList(nd, &ed));
  PetscFunctionReturn(0);
}

/* rank 0: both outputs under temporary names, renamed into place once complete */
static PetscErrorCode EvalWriteResults(const char *csv, const char *h5, int T, char **tasks, PetscInt n, const double *C, const MapTaskMetrics *M,
                                       const char *type, const char *storepath, const char *coeffs, const MapMetric *mt)
{
  char tcsv[MAP_PATH_LEN], th5[MAP_PATH_LEN];

  PetscFunctionBegin;
  PetscCall(MapTempName(csv, tcsv, sizeof(tcsv)));
  PetscCall(MapTempName(h5, th5, sizeof(th5)));
  PetscCall(MapTempRegister(tcsv));
  PetscCall(MapTempRegister(th5));
  PetscCall(WriteCSV(tcsv, T, tasks, n, C, M, mt));
  PetscCall(WriteH5(th5, T, tasks, n, C, M, type, storepath, coeffs, mt));
  PetscCheck(!rename(th5, h5), PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot rename %s to %s: %s", th5, h5, strerror(errno));
  PetscCall(MapTempUnregister(th5));
  PetscCheck(!rename(tcsv, csv), PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot rename %s to %s: %s", tcsv, csv, strerror(errno));
  PetscCall(MapTempUnregister(tcsv));
  PetscFunctionReturn(0);
}

/*
  MapCommandEval - `mapmerge eval`: reads -map_store, -map_tasks (default: all store tasks),
  -map_coeffs, -map_output and the evaluator's options; evaluates every vector on every task;
  writes the CSV and HDF5 results. The analytic evaluator needs no store (-map_tasks only).
  Collective.
*/
PetscErrorCode MapCommandEval(MPI_Comm comm)
{
  char            storepath[MAP_PATH_LEN] = "", coeffs[MAP_PATH_LEN] = "", output[MAP_PATH_LEN] = "", tlist[65536] = "";
  PetscBool       hasstore, hascoeffs, hasout, hastasks;
  int             T     = 0;
  char          **tasks = NULL;
  MapStore        store = NULL;
  MapModel        model = NULL;
  MapEvaluator    ev;
  const char     *type;
  PetscInt        n;
  double         *C;
  MapTaskMetrics *M;
  int             rank;
  char            csv[MAP_PATH_LEN], h5[MAP_PATH_LEN];

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscOptionsBegin(comm, NULL, "mapmerge eval: evaluate coefficient vectors", NULL);
  PetscCall(PetscOptionsString("-map_store", "HDF5 store written by `mapmerge import` (not needed for -map_eval_type analytic)", NULL, storepath,
                               storepath, sizeof(storepath), &hasstore));
  PetscCall(PetscOptionsString("-map_tasks", "tasks to evaluate, in order (default: all tasks of the store)", NULL, tlist, tlist, sizeof(tlist),
                               &hastasks));
  PetscCall(PetscOptionsString("-map_coeffs", "CSV of coefficient vectors (header: task names or c_<task>; one row per vector)", NULL, coeffs,
                               coeffs, sizeof(coeffs), &hascoeffs));
  PetscCall(PetscOptionsString("-map_output", "results: OUT.csv + OUT.h5 (OUT may end in .csv or .h5)", NULL, output, output, sizeof(output),
                               &hasout));
  PetscOptionsEnd();
  PetscCall(MapEvaluatorCreate(comm, &ev));
  PetscCall(MapEvaluatorSetFromOptions(ev));
  PetscCall(MapEvaluatorGetType(ev, &type));
  const MapMetric *mt;
  PetscCall(MapEvaluatorGetMetric(ev, &mt));
  {
    PetscBool help;
    PetscCall(PetscOptionsHasHelp(NULL, &help));
    if (help) { /* the options are listed; nothing to evaluate */
      PetscCall(MapEvaluatorDestroy(&ev));
      PetscFunctionReturn(0);
    }
  }
  PetscCheck(hascoeffs && coeffs[0], comm, PETSC_ERR_ARG_WRONG, "mapmerge eval needs -map_coeffs FILE.csv");
  PetscCheck(hasout && output[0], comm, PETSC_ERR_ARG_WRONG, "mapmerge eval needs -map_output OUT");
  PetscCheck(hasstore || !strcmp(type, "analytic"), comm, PETSC_ERR_ARG_WRONG, "mapmerge eval needs -map_store for -map_eval_type %s", type);
  PetscCheck(hasstore || (hastasks && tlist[0]), comm, PETSC_ERR_ARG_WRONG, "mapmerge eval -map_eval_type analytic without a store needs -map_tasks");
  if (hastasks && tlist[0]) PetscCall(MapSplitList(tlist, ',', &T, &tasks));
  PetscCall(OutputNames(output, csv, h5, sizeof(csv)));
  PetscCall(MapCheckWritable(csv, "-map_output"));
  PetscCall(MapCheckOptionsLeft(comm));
  PetscCall(EvalCheckOutputs(comm, hasstore ? storepath : NULL, coeffs, csv, h5));

  if (hasstore) PetscCall(EvalOpenStore(comm, ev, storepath, &store, &T, &tasks, &model));
  PetscCall(EvalSetUpEvaluator(ev, store, model, T, tasks));
  /* every rank reads the (small) CSV itself, so a bad file fails everywhere at once */
  PetscCall(MapReadCoeffCSV(coeffs, T, (const char *const *)tasks, &n, &C));
  PetscCall(PetscMalloc1(n * T + 1, &M));
  double t0 = MapWallTime();
  for (PetscInt i = 0; i < n; i++) {
    PetscCall(MapEvaluatorEvaluate(ev, C + i * T, M + i * T));
    for (int t = 0; t < T; t++) /* a NaN metric is no result (the metrics are the same on every rank) */
      PetscCheck(isfinite(M[i * T + t].metric) && (strcmp(mt->name, "accuracy") || isfinite(M[i * T + t].loss)), comm, PETSC_ERR_FP,
                 "eval: row %" PetscInt_FMT " of %s, task %s: %s %g, loss %g is not finite (coefficients too large?); nothing written", i + 1,
                 coeffs, tasks[t], mt->name, M[i * T + t].metric, M[i * T + t].loss);
    PetscCall(MapProgress(comm, "eval", i + 1, n, t0));
  }
  if (!rank) PetscCall(EvalWriteResults(csv, h5, T, tasks, n, C, M, type, hasstore ? storepath : NULL, coeffs, mt));
  PetscCallMPI(MPI_Barrier(comm));
  PetscCall(PetscPrintf(comm, "wrote %s and %s (%" PetscInt_FMT " vectors x %d tasks, evaluator %s)\n", csv, h5, n, T, type));
  PetscCall(PetscFree(M));
  PetscCall(PetscFree(C));
  PetscCall(MapEvaluatorDestroy(&ev));
  PetscCall(MapModelDestroy(&model));
  PetscCall(MapStoreDestroy(&store));
  PetscCall(MapFreeList(T, &tasks));
  PetscFunctionReturn(0);
}
