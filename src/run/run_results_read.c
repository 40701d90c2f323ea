/* The one reader of a finished run's outputs (their writer: run_results.c): manifest.json
   (-map_replay, export's search options), results.h5 opened quietly, viewed by `info` and read by
   `export -map_run`. */
#include "runimpl.h"

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

/* MapRunResultsOpen - rank 0: results.h5 at path opened read-only, with HDF5's error stack silenced
   until MapRunResultsClose (a missing, foreign or damaged file is our error to report, not HDF5's
   stack); res->file < 0 when it cannot be opened. Any other kind of file (FIFO, device) is refused
   before it is opened, with `who` in the message. Not collective. */
PetscErrorCode MapRunResultsOpen(const char *path, const char *who, MapRunResults *res)
{
  PetscFunctionBegin;
  H5Eget_auto2(H5E_DEFAULT, &res->efunc, &res->edata);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  res->file = -1;
  PetscCall(MapCheckInputFile(path, who));
  res->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  PetscFunctionReturn(0);
}

/* MapRunResultsClose - closes the file and restores HDF5's error reporting */
void MapRunResultsClose(MapRunResults *res)
{
  if (res->file >= 0) H5Fclose(res->file);
  res->file = -1;
  H5Eset_auto2(H5E_DEFAULT, res->efunc, res->edata);
}

/* the pick of a finished run: coefficients, predicted/real/test accuracy, weights, best evaluated */
static PetscErrorCode MapRunResultsViewPick(hid_t f, const char *path, int T, char **tasks, const double *pc, const double *pr)
{
  hsize_t dims[2];
  double *pw, *pp, *pt, *bc, *bv, *rv;

  PetscFunctionBegin;
  PetscCall(MapH5ReadMatrixShaped(f, path, "pick/preference", 1, T, PETSC_FALSE, dims, &pw));
  PetscCall(MapH5ReadMatrixShaped(f, path, "pick/predicted", 1, T, PETSC_FALSE, dims, &pp));
  PetscCall(MapH5ReadMatrixShaped(f, path, "pick/test", 1, T, PETSC_FALSE, dims, &pt));
  PetscCall(MapH5ReadMatrixShaped(f, path, "pick/best_evaluated_coeffs", 1, T, PETSC_FALSE, dims, &bc));
  PetscCall(MapH5ReadMatrixShaped(f, path, "pick/best_evaluated_value", 1, 1, PETSC_FALSE, dims, &bv));
  PetscCall(MapH5ReadMatrixShaped(f, path, "pick/real_value", 1, 1, PETSC_FALSE, dims, &rv));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "  pick%s\n  %-16s %8s %10s %10s %10s\n", pw ? " for the preference:" : ":", "task", "c", "predicted",
                        "real(val)", pt ? "test" : ""));
  for (int t = 0; t < T; t++) {
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "  %-16s %8.4f %10.4f %10.4f", tasks[t], pc[t], pp ? pp[t] : NAN, pr[t]));
    if (pt) PetscCall(PetscPrintf(PETSC_COMM_SELF, " %10.4f", pt[t]));
    if (pw) {
      char wt[32];
      snprintf(wt, sizeof(wt), "%g", pw[t]); /* C's %g: PetscPrintf's prints 1 as "1." */
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "   (weight %s)", wt));
    }
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "\n"));
  }
  if (bc && bv && rv) {
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "  best evaluated model by the pick's criterion (lower is better: %.4f; the pick's %.4f): c =", bv[0], rv[0]));
    for (int t = 0; t < T; t++) PetscCall(PetscPrintf(PETSC_COMM_SELF, " %.4f", bc[t]));
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "\n"));
  }
  PetscCall(PetscFree(pw));
  PetscCall(PetscFree(pp));
  PetscCall(PetscFree(pt));
  PetscCall(PetscFree(bc));
  PetscCall(PetscFree(bv));
  PetscCall(PetscFree(rv));
  PetscFunctionReturn(0);
}

/* what ran, on what, and what came out; rank 0 prints */
static PetscErrorCode MapRunResultsViewFile(hid_t f, const char *path)
{
  const char *keys[] = {"method", "seed", "ranks", "git_commit", "mapmerge_version", "start_time", "end_time", "box", "metric", "failed_evaluations", NULL};
  hsize_t     dims[2];
  double     *S, *A, *diag, *P, *pc, *pr;
  char      **tasks = NULL;
  /* a run of another -map_metric names its samples and surrogates "metric" (docs/metrics.md) */
  const char *mg = MapH5Exists(f, "samples/metric") ? "metric" : "accuracy";
  char        spath[64], dpath[64];

  PetscFunctionBegin;
  snprintf(spath, sizeof(spath), "samples/%s", mg);
  snprintf(dpath, sizeof(dpath), "surrogate/%s/diagnostics", mg);
  /* a crafted file can hold any shape: every dataset is checked against T and n before use */
  PetscCall(MapH5ReadMatrixShaped(f, path, spath, -1, -1, PETSC_TRUE, dims, &A));
  PetscCheck(dims[1] >= 1 && dims[1] <= MAP_MAX_TASKS, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "%s: dataset /%s has %llu columns (tasks), expected 1 to %d (not written by mapmerge run, or damaged)", path, spath,
             (unsigned long long)dims[1], MAP_MAX_TASKS);
  int      T = (int)dims[1];
  PetscInt n = (PetscInt)dims[0];
  PetscCall(MapH5ReadStrings(f, "tasks", path, T, &tasks));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "results %s\n", path));
  for (int k = 0; keys[k]; k++) {
    char *v = NULL;
    PetscCall(MapH5ReadStringAttr(f, keys[k], &v));
    if (v) PetscCall(PetscPrintf(PETSC_COMM_SELF, "  %-16s %s\n", keys[k], v));
    PetscCall(PetscFree(v));
  }
  PetscCall(MapH5ReadMatrixShaped(f, path, "samples/coeffs", n, T, PETSC_FALSE, dims, &S));
  PetscCall(MapH5ReadMatrixShaped(f, path, dpath, T, 5, PETSC_FALSE, dims, &diag));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "  %" PetscInt_FMT " evaluated models, %d tasks\n  %-16s %10s\n", n, T, "task",
                        diag ? (strcmp(mg, "metric") ? "R2(acc)" : "R2(metric)") : ""));
  for (int t = 0; t < T; t++) {
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "  %-16s", tasks[t]));
    if (diag) PetscCall(PetscPrintf(PETSC_COMM_SELF, " %10.4f", diag[t * 5]));
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "\n"));
  }
  PetscCall(MapH5ReadMatrixShaped(f, path, "pareto/coeffs", -1, T, PETSC_FALSE, dims, &P));
  if (P) PetscCall(PetscPrintf(PETSC_COMM_SELF, "  front: %d predicted points\n", (int)dims[0]));
  PetscCall(MapH5ReadMatrixShaped(f, path, "pick/coeffs", 1, T, PETSC_FALSE, dims, &pc));
  PetscCall(MapH5ReadMatrixShaped(f, path, "pick/real", 1, T, PETSC_FALSE, dims, &pr));
  if (pc && pr) PetscCall(MapRunResultsViewPick(f, path, T, tasks, pc, pr));
  if (H5Lexists(f, "nested", H5P_DEFAULT) > 0) PetscCall(PetscPrintf(PETSC_COMM_SELF, "  nested merge tree in /nested\n"));
  PetscCall(MapFreeList(T, &tasks));
  PetscCall(PetscFree(A));
  PetscCall(PetscFree(S));
  PetscCall(PetscFree(diag));
  PetscCall(PetscFree(P));
  PetscCall(PetscFree(pc));
  PetscCall(PetscFree(pr));
  PetscFunctionReturn(0);
}

/* MapRunResultsView - a finished run (its folder, or its results.h5): what ran, on what, and what
   came out. Rank 0 reads and prints; an unreadable or foreign file is an error on every rank. Collective. */
PetscErrorCode MapRunResultsView(MPI_Comm comm, const char *where)
{
  char          path[MAP_PATH_LEN];
  PetscMPIInt   rank;
  int           ok = 1;
  MapRunResults res;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  /* a run folder, or its results.h5 (any other kind of file is refused before it is opened) */
  if (MapNonRegularKind(where) && !strcmp(MapNonRegularKind(where), "a directory")) snprintf(path, sizeof(path), "%s/results.h5", where);
  else snprintf(path, sizeof(path), "%s", where);
  if (!rank) {
    PetscCall(MapRunResultsOpen(path, "info: -map_results", &res));
    ok = res.file >= 0 && MapH5Exists(res.file, "samples") && MapH5Exists(res.file, "tasks");
    if (ok) PetscCall(MapRunResultsViewFile(res.file, path));
    MapRunResultsClose(&res);
  }
  PetscCallMPI(MPI_Bcast(&ok, 1, MPI_INT, 0, comm));
  PetscCheck(ok, comm, PETSC_ERR_FILE_UNEXPECTED, "info: -map_results %s: %s is not the results.h5 of a mapmerge run", where, path);
  PetscFunctionReturn(0);
}

/* MapRunResultsReadForExport - rank 0: what `export -map_run` takes from the finished run `run`'s
   results.h5 at path: the accuracy surrogates (or a nested run's tree coefficients), the tasks, the
   box and method, and with front the real front. *ok = 0 when the file cannot be read; a file of
   the wrong shapes is an error that names the dataset. Not collective. */
PetscErrorCode MapRunResultsReadForExport(const char *run, const char *path, PetscBool front, MapRunResultsForExport *x, int *ok)
{
  MapRunResults res;

  PetscFunctionBegin;
  PetscCall(MapRunResultsOpen(path, "export: -map_run", &res));
  hid_t f = res.file;
  snprintf(x->metric_spec, sizeof(x->metric_spec), "accuracy:higher:0,1");
  if (f < 0) *ok = 0;
  else {
    hsize_t     dims[2]     = {0, 0};
    const char *params_path = "surrogate/accuracy/params";
    x->nested               = H5Lexists(f, "nested", H5P_DEFAULT) > 0;
    /* a run of another -map_metric: its surrogates, and the metric from the manifest's attribute */
    if (!x->nested && H5Lexists(f, "surrogate", H5P_DEFAULT) > 0 && H5Lexists(f, "surrogate/metric", H5P_DEFAULT) > 0) {
      char   *mjson = NULL;
      json_t *mj;
      params_path = "surrogate/metric/params";
      MapH5ReadStringAttr(f, "metric", &mjson);
      mj = mjson ? json_loads(mjson, 0, NULL) : NULL;
      if (mj && json_is_string(json_object_get(mj, "spec"))) snprintf(x->metric_spec, sizeof(x->metric_spec), "%s", json_string_value(json_object_get(mj, "spec")));
      else *ok = 0; /* /surrogate/metric without the "metric" attribute that names it: damaged */
      if (mj) json_decref(mj);
      PetscCall(PetscFree(mjson));
    }
    /* a crafted file can hold any shape: T and F are checked before anything is indexed by them */
    PetscCall(MapH5ReadMatrixShaped(f, path, x->nested ? "nested/coeffs" : params_path, -1, -1, PETSC_TRUE, dims, &x->params));
    x->T = x->nested ? (int)dims[1] : (int)dims[0];
    x->F = x->nested ? (int)dims[0] : (int)dims[1]; /* nested: F = number of tree nodes */
    PetscCheck(dims[0] <= 4096 && dims[1] <= 4096 && x->T >= 1 && x->T <= MAP_MAX_TASKS && x->F >= 1 &&
                 (x->nested || x->F == (x->T + 1) * (x->T + 2) / 2),
               PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "export: -map_run %s: dataset /%s has shape [%llu, %llu]; expected %s (not written by mapmerge run, or damaged)",
               run, x->nested ? "nested/coeffs" : params_path, (unsigned long long)dims[0], (unsigned long long)dims[1],
               x->nested ? "[nodes, T] with 1 <= T <= 64" : "[T, (T+1)(T+2)/2] with 1 <= T <= 64");
    if (*ok && front && !x->nested) { /* every model the run evaluated on all tasks that no other one dominates */
      hsize_t dc[2] = {0, 0};
      PetscCall(MapH5ReadMatrixShaped(f, path, "pareto/real_front", -1, x->T, PETSC_FALSE, dims, &x->front_acc));
      PetscCall(MapH5ReadMatrixShaped(f, path, "pareto/real_front_coeffs", (int64_t)dims[0], x->T, PETSC_FALSE, dc, &x->front_c));
      if (!x->front_acc || !x->front_c) *ok = 0;
      x->K = (int)dims[0];
    }
    if (*ok) {
      char **names = NULL;
      size_t len   = 0;
      if (MapH5ReadStrings(f, "tasks", path, x->T, &names)) *ok = 0;
      for (int t = 0; *ok && t < x->T; t++) {
        PetscCheck(names[t][0] && !strchr(names[t], ','), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
                   "export: -map_run %s: task %d of /tasks is %s (not written by mapmerge run, or damaged)", path, t,
                   names[t][0] ? "a name with a comma" : "empty");
        len += strlen(names[t]) + 1;
      }
      PetscCheck(!*ok || len <= sizeof(x->tasks), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
                 "export: -map_run %s: the task names of /tasks take %zu characters, more than the %zu of -map_tasks", path, len, sizeof(x->tasks));
      for (int t = 0; *ok && t < x->T; t++) {
        if (t) PetscCall(MapStrlcat(x->tasks, ",", sizeof(x->tasks)));
        PetscCall(MapStrlcat(x->tasks, names[t], sizeof(x->tasks)));
      }
      MapFreeList(x->T, &names);
      MapH5ReadStringAttr(f, "box", &x->box);
      MapH5ReadStringAttr(f, "method", &x->method);
    }
    if (*ok && !x->nested && H5Lexists(f, "pick", H5P_DEFAULT) > 0) { /* the pick the run evaluated, for its own preference */
      double *pw = NULL, *pc = NULL;
      PetscCall(MapH5ReadMatrixShaped(f, path, "pick/preference", 1, x->T, PETSC_FALSE, dims, &pw));
      PetscCall(MapH5ReadMatrixShaped(f, path, "pick/coeffs", 1, x->T, PETSC_FALSE, dims, &pc));
      if (pw && pc) {
        x->has_pick = 1;
        for (int t = 0; t < x->T; t++) x->pick_w[t] = pw[t], x->pick_c[t] = pc[t];
      }
      PetscCall(PetscFree(pw));
      PetscCall(PetscFree(pc));
    }
  }
  MapRunResultsClose(&res);
  PetscFunctionReturn(0);
}
