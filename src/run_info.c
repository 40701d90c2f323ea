/* `mapmerge info`: describe a store (-map_store) or the results of a run (-map_results). */
#include <mapmerge/run.h>
#include <mapmerge/core_h5.h>
#include <petscviewer.h>

/* A run's results.h5 (or its folder): what ran, on what, and what came out. Rank 0 reads and prints. */
static PetscErrorCode InfoResults(MPI_Comm comm, const char *where)
{
  char        path[MAP_PATH_LEN];
  PetscMPIInt rank;
  int         ok = 1;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  /* a run folder, or its results.h5 (any other kind of file is refused before it is opened) */
  if (MapNonRegularKind(where) && !strcmp(MapNonRegularKind(where), "a directory")) snprintf(path, sizeof(path), "%s/results.h5", where);
  else snprintf(path, sizeof(path), "%s", where);
  if (!rank) {
    H5E_auto2_t efunc;
    void       *edata;
    H5Eget_auto2(H5E_DEFAULT, &efunc, &edata);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* a missing or foreign file is our error to report, not HDF5's stack */
    PetscCall(MapCheckInputFile(path, "info: -map_results"));
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ok      = f >= 0 && MapH5Exists(f, "samples") && MapH5Exists(f, "tasks");
    H5Eset_auto2(H5E_DEFAULT, efunc, edata);
    if (ok) {
      const char *keys[] = {"method", "seed", "ranks", "git_commit", "mapmerge_version", "start_time", "end_time", "box", "metric", "failed_evaluations", NULL};
      /* a run of another -map_metric names its samples and surrogates "metric" (docs/metrics.md) */
      const char *mg = MapH5Exists(f, "samples/metric") ? "metric" : "accuracy";
      char        spath[64], dpath[64];
      snprintf(spath, sizeof(spath), "samples/%s", mg);
      snprintf(dpath, sizeof(dpath), "surrogate/%s/diagnostics", mg);
      hsize_t     dims[2];
      double     *S, *A, *diag, *P, *pc, *pr;
      char      **tasks = NULL;
      /* a crafted file can hold any shape: every dataset is checked against T and n before use */
      PetscCall(MapH5ReadMatrixShaped(f, path, spath, -1, -1, PETSC_TRUE, dims, &A));
      PetscCheck(dims[1] >= 1 && dims[1] <= MAP_MAX_TASKS, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
                 "%s: dataset /%s has %llu columns (tasks), expected 1 to %d (not written by mapmerge run, or damaged)", path, spath,
                 (unsigned long long)dims[1], MAP_MAX_TASKS);
      int T = (int)dims[1];
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
      if (pc && pr) {
        double *pw, *pp, *pt, *bc, *bv, *rv;
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
      }
      if (H5Lexists(f, "nested", H5P_DEFAULT) > 0) PetscCall(PetscPrintf(PETSC_COMM_SELF, "  nested merge tree in /nested\n"));
      PetscCall(MapFreeList(T, &tasks));
      PetscCall(PetscFree(A));
      PetscCall(PetscFree(S));
      PetscCall(PetscFree(diag));
      PetscCall(PetscFree(P));
      PetscCall(PetscFree(pc));
      PetscCall(PetscFree(pr));
    }
    if (f >= 0) H5Fclose(f);
  }
  PetscCallMPI(MPI_Bcast(&ok, 1, MPI_INT, 0, comm));
  PetscCheck(ok, comm, PETSC_ERR_FILE_UNEXPECTED, "info: -map_results %s: %s is not the results.h5 of a mapmerge run", where, path);
  PetscFunctionReturn(0);
}

/*@
  MapCommandInfo - reads -map_store or -map_results, rejects unused options, and prints either
  MapStoreView() (tasks, tensor table, P, dtypes, private tensors, provenance) or a run's summary
  (options, versions, samples, fit, front, pick). Collective.
@*/
PetscErrorCode MapCommandInfo(MPI_Comm comm)
{
  char      path[MAP_PATH_LEN] = "", results[MAP_PATH_LEN] = "";
  PetscBool help, check = PETSC_FALSE;
  MapStore  store;

  PetscFunctionBegin;
  PetscOptionsBegin(comm, NULL, "mapmerge info: describe a store or a run's results", NULL);
  PetscCall(PetscOptionsString("-map_store", "the HDF5 store written by mapmerge import", NULL, path, path, sizeof(path), NULL));
  PetscCall(PetscOptionsString("-map_results", "a run folder (or its results.h5) written by mapmerge run", NULL, results, results,
                               sizeof(results), NULL));
  PetscCall(PetscOptionsBool("-map_check", "with -map_store: read every dataset and verify its checksum (recorded at import) and that every value is finite",
                             NULL, check, &check, NULL));
  PetscOptionsEnd();
  PetscCall(PetscOptionsHasHelp(NULL, &help));
  if (help) PetscFunctionReturn(0);
  PetscCall(MapCheckOptionsLeft(comm));
  PetscCheck(path[0] || results[0], comm, PETSC_ERR_ARG_WRONG, "info: -map_store PATH or -map_results RUNDIR is required");
  if (results[0]) {
    PetscCall(InfoResults(comm, results));
    PetscFunctionReturn(0);
  }
  PetscCall(MapStoreOpen(comm, path, &store));
  PetscCall(MapStoreView(store, PETSC_VIEWER_STDOUT_(comm)));
  if (check) PetscCall(MapStoreCheck(store));
  PetscCall(MapStoreDestroy(&store));
  PetscFunctionReturn(0);
}
