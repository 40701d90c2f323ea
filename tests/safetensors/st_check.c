/* st_check FILE [-dump OUT]: opens a safetensors checkpoint (file, folder or index), reads every
 * floating tensor in full (and every other tensor raw) and prints a summary. With -dump, rank 0
 * writes "name dtype shape..." and then one value per line (%.9g) for each floating tensor.
 * Exits non-zero with PETSc's error message (naming the file and tensor) on bad input. */
#include <mapmerge/safetensors.h>

int main(int argc, char **argv)
{
  MapSafetensors st;
  char           dump[MAP_PATH_LEN] = "";
  PetscBool      has_dump           = PETSC_FALSE;
  int            n, rank;
  FILE          *fd = NULL;

  PetscCall(PetscInitialize(&argc, &argv, NULL, "st_check FILE [-dump OUT]: reads a safetensors checkpoint"));
  PetscCheck(argc > 1 && argv[1][0] != '-', PETSC_COMM_WORLD, PETSC_ERR_ARG_WRONG, "usage: st_check FILE [-dump OUT]");
  PetscCall(PetscOptionsGetString(NULL, NULL, "-dump", dump, sizeof(dump), &has_dump));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCall(MapSafetensorsOpen(PETSC_COMM_WORLD, argv[1], &st));
  PetscCall(MapSafetensorsGetNumTensors(st, &n));
  if (has_dump && !rank) {
    fd = fopen(dump, "w");
    PetscCheck(fd, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "-dump %s: cannot open", dump);
  }
  uint64_t bytes = 0;
  for (int i = 0; i < n; i++) {
    const MapTensorInfo *t;
    PetscCall(MapSafetensorsGetTensor(st, i, &t));
    bytes += t->end - t->begin;
    if (MapDTypeIsFloat(t->dtype)) {
      float *v;
      PetscCall(PetscMalloc1(t->numel + 1, &v));
      PetscCall(MapSafetensorsReadF32(st, t, 0, t->numel, v));
      if (fd) {
        fprintf(fd, "%s %s", t->name, MapDTypeName(t->dtype));
        for (int d = 0; d < t->ndim; d++) fprintf(fd, " %lld", (long long)t->shape[d]);
        fprintf(fd, "\n");
        for (int64_t k = 0; k < t->numel; k++) fprintf(fd, "%.9g\n", (double)v[k]);
      }
      PetscCall(PetscFree(v));
    } else {
      char *raw;
      PetscCall(PetscMalloc1(t->end - t->begin + 1, &raw));
      PetscCall(MapSafetensorsReadRaw(st, t, raw));
      PetscCall(PetscFree(raw));
    }
  }
  if (fd) fclose(fd);
  int nfiles;
  const char *const *files;
  PetscCall(MapSafetensorsGetFiles(st, &nfiles, &files));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "st_check: %s: OK, %d tensors, %llu data bytes, %d file(s)\n", argv[1], n, (unsigned long long)bytes, nfiles));
  PetscCall(MapSafetensorsDestroy(&st));
  PetscCall(PetscFinalize());
  return 0;
}
