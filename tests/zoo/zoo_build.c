/* zoo_build: the `mapmerge zoo` command (MapCommandZoo) on its own, so the zoo module's tests need
   only map_zoo. Usage: mpiexec -n N zoo_build [options of `mapmerge zoo`] */
#include <mapmerge/run.h>

int main(int argc, char **argv)
{
  PetscErrorCode ierr;

  PetscCall(PetscInitialize(&argc, &argv, NULL, "zoo_build: the `mapmerge zoo` command\n"));
  PetscCall(MapInitializePackage());
  ierr = MapCommandZoo(PETSC_COMM_WORLD);
  if (ierr) { /* as the driver does: no half-written output, and no rank left waiting */
    MapTempCleanup();
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  PetscCall(PetscFinalize());
  return 0;
}
