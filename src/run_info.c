/* `mapmerge info`: describe a store. */
#include <mapmerge/run.h>
#include <petscviewer.h>

/*@
  MapCommandInfo - reads -map_store, rejects unused options, opens the store and prints
  MapStoreView() (tasks, tensor table, P, dtypes, private tensors, provenance). Collective.
@*/
PetscErrorCode MapCommandInfo(MPI_Comm comm)
{
  char      path[MAP_PATH_LEN] = "";
  PetscBool help;
  MapStore  store;

  PetscFunctionBegin;
  PetscOptionsBegin(comm, NULL, "mapmerge info: describe a store", NULL);
  PetscCall(PetscOptionsString("-map_store", "the HDF5 store written by mapmerge import", NULL, path, path, sizeof(path), NULL));
  PetscOptionsEnd();
  PetscCall(PetscOptionsHasHelp(NULL, &help));
  if (help) PetscFunctionReturn(0);
  PetscCall(MapCheckOptionsLeft(comm));
  PetscCheck(path[0], comm, PETSC_ERR_ARG_WRONG, "info: -map_store PATH is required");
  PetscCall(MapStoreOpen(comm, path, &store));
  PetscCall(MapStoreView(store, PETSC_VIEWER_STDOUT_(comm)));
  PetscCall(MapStoreDestroy(&store));
  PetscFunctionReturn(0);
}
