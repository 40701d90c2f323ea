/* `mapmerge zoo`: build the embedded default model zoo (docs/design.md §4). */
#include <mapmerge/run.h>

/* MapCommandZoo - collective: reads -map_output (the folder, default "zoo") and the zoo options
   (MapZooConfigSetFromOptions), rejects unused options, then builds the zoo. */
PetscErrorCode MapCommandZoo(MPI_Comm comm)
{
  char         outdir[MAP_PATH_LEN] = "zoo";
  MapZooConfig cfg;

  PetscFunctionBegin;
  PetscOptionsBegin(comm, NULL, "mapmerge zoo: output", NULL);
  PetscCall(PetscOptionsString("-map_output", "folder to write the zoo into (created if needed)", NULL, outdir, outdir, sizeof(outdir), NULL));
  PetscOptionsEnd();
  PetscCheck(outdir[0], comm, PETSC_ERR_ARG_WRONG, "-map_output: expected a folder name, got an empty string");
  PetscCall(MapZooConfigSetFromOptions(comm, &cfg));
  PetscBool help;
  PetscCall(PetscOptionsHasHelp(NULL, &help));
  if (help) PetscFunctionReturn(0); /* -help: the options are listed, nothing to build */
  PetscCall(MapCheckOptionsLeft(comm));
  PetscCall(MapZooBuildWithConfig(comm, &cfg, outdir, NULL, NULL));
  PetscFunctionReturn(0);
}
