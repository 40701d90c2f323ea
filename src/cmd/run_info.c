/* `mapmerge info`: describe a store (-map_store) or the results of a run (-map_results). */
#include "runimpl.h"
#include <petscviewer.h>

/*@
  MapCommandInfo - reads -map_store or -map_results, rejects unused options, and prints either
  MapStoreView() (tasks, tensor table, P, dtypes, private tensors, provenance) or a run's summary
  (options, versions, samples, fit, front, pick). Collective.
@*/
PetscErrorCode MapCommandInfo(MPI_Comm comm)
{
  char      path[MAP_PATH_LEN] = "", results[MAP_PATH_LEN] = "";
  PetscBool help, check                                    = PETSC_FALSE;
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
    PetscCall(MapRunResultsView(comm, results));
    PetscFunctionReturn(0);
  }
  PetscCall(MapStoreOpen(comm, path, &store));
  PetscCall(MapStoreView(store, PETSC_VIEWER_STDOUT_(comm)));
  if (check) PetscCall(MapStoreCheck(store));
  PetscCall(MapStoreDestroy(&store));
  PetscFunctionReturn(0);
}
