/* test_merge_model: MapModel end to end on a real store, driven by test_merge_model.py.
 *
 *   test_merge_model -import -map_pretrained P -map_tasks a,b -map_task_models A,B -map_store S [-map_store_dtype bf16|f16]
 *       writes the store with MapStoreImport (the code behind `mapmerge import`).
 *   test_merge_model -map_store S -map_tasks b,a -map_coeff c1,c2 -map_output theta.bin
 *                    [-test_combine w11,..,wkT -test_coeff2 d1,..,dk -test_output2 theta2.bin]
 *       builds a MapModel of the named tasks (in that order), merges at c, gathers the full theta
 *       on rank 0 and writes it as raw little-endian F32; optionally also a combined basis
 *       (MapModelCreateCombined with W [k,T]) merged at d. Prints the sha256 of each vector. */
#include <mapmerge/mapmerge.h>

static char help[] = "test_merge_model: MapModel from a store, merged and gathered.\n";

static PetscErrorCode Import(MPI_Comm comm)
{
  char                  pre[MAP_PATH_LEN], store[MAP_PATH_LEN];
  char                **tasks, **models, **pats;
  int                   T, Tm, np;
  PetscBool             flg;
  PetscInt              idtype   = 0;
  const char           *dtypes[] = {"f32", "bf16", "f16"}; /* MapStoreDTypeFromOption order */
  MapStoreImportOptions opts     = {0, 0, MAP_DTYPE_F32, PETSC_FALSE, 0};

  PetscFunctionBegin;
  PetscCall(PetscOptionsGetString(NULL, NULL, "-map_pretrained", pre, sizeof(pre), &flg));
  PetscCheck(flg, comm, PETSC_ERR_ARG_WRONG, "-map_pretrained is required");
  PetscCall(PetscOptionsGetString(NULL, NULL, "-map_store", store, sizeof(store), &flg));
  PetscCheck(flg, comm, PETSC_ERR_ARG_WRONG, "-map_store is required");
  PetscCall(MapOptionsGetList("-map_tasks", &T, &tasks, NULL));
  PetscCall(MapOptionsGetList("-map_task_models", &Tm, &models, NULL));
  PetscCall(MapOptionsGetList("-map_private_patterns", &np, &pats, NULL));
  PetscCall(PetscOptionsGetEList(NULL, NULL, "-map_store_dtype", dtypes, MAP_STORE_NUM_DTYPES, &idtype, NULL));
  opts.dtype = MapStoreDTypeFromOption(idtype);
  PetscCheck(T > 0 && T == Tm, comm, PETSC_ERR_ARG_WRONG, "-map_tasks has %d names but -map_task_models %d paths", T, Tm);
  PetscCall(MapStoreImport(comm, pre, T, (const char *const *)tasks, (const char *const *)models, np,
                           (const char *const *)pats, store, &opts));
  PetscCall(MapFreeList(T, &tasks));
  PetscCall(MapFreeList(Tm, &models));
  PetscCall(MapFreeList(np, &pats));
  PetscFunctionReturn(0);
}

/* Gathers the shards on rank 0 and writes them (temporary name, then rename). */
static PetscErrorCode GatherWrite(MPI_Comm comm, MapLayout *L, const float *shard, const char *path)
{
  int    *counts = NULL, *displs = NULL, n = (int)(L->hi - L->lo);
  float  *full   = NULL;
  char    hex[65], tmp[MAP_PATH_LEN];

  PetscFunctionBegin;
  PetscCheck(L->P < INT32_MAX, comm, PETSC_ERR_SUP, "test gathers at most 2^31 elements, P = %" PRId64, L->P);
  if (L->rank == 0) {
    PetscCall(PetscMalloc3(L->size, &counts, L->size, &displs, L->P + 1, &full));
    for (int r = 0; r < L->size; r++) {
      int64_t lo, hi;
      MapLayoutRange(L->P, L->size, r, &lo, &hi);
      counts[r] = (int)(hi - lo);
      displs[r] = (int)lo;
    }
  }
  PetscCallMPI(MPI_Gatherv(shard, n, MPI_FLOAT, full, counts, displs, MPI_FLOAT, 0, comm));
  if (L->rank == 0) {
    MapSha256(full, (size_t)L->P * sizeof(float), hex);
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "%s: P = %" PRId64 ", ranks = %d, sha256 %s\n", path, L->P, L->size, hex));
    PetscCall(MapTempName(path, tmp, sizeof(tmp)));
    PetscCall(MapTempRegister(tmp));
    FILE *f = fopen(tmp, "wb");
    PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot create %s", tmp);
    size_t w = fwrite(full, sizeof(float), (size_t)L->P, f);
    PetscCheck(fclose(f) == 0 && w == (size_t)L->P, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "short write to %s", tmp);
    PetscCheck(rename(tmp, path) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot rename %s to %s", tmp, path);
    PetscCall(MapTempUnregister(tmp));
    PetscCall(PetscFree3(counts, displs, full));
  }
  PetscFunctionReturn(0);
}

/* The model's theta equals MapMergeApply_Ref on the shard read as F32 by MapStoreReadShard: for a
   BF16 or F16 store this checks the exact widening of that read (tasks in any order) and that the
   16-bit kernel does the F32 arithmetic of the reference. */
static PetscErrorCode CheckF32Read(MPI_Comm comm, MapStore store, int T, const int *tasks, const double *c, const MapLayout *L,
                                   const float *theta)
{
  int64_t       n = L->hi - L->lo;
  int           bad, anybad;
  float        *pre, *tau, *ref;
  MapDType      dt;

  PetscFunctionBegin;
  PetscCall(MapStoreGetDType(store, &dt));
  PetscCall(PetscMalloc3(n + 1, &pre, (size_t)T * (size_t)n + 1, &tau, n + 1, &ref));
  PetscCall(MapStoreReadShard(store, MAP_DTYPE_F32, T, tasks, pre, tau));
  PetscCall(MapMergeApply_Ref(MAP_DTYPE_F32, n, pre, T, tau, n, c, ref));
  bad = n && memcmp(ref, theta, (size_t)n * sizeof(float)) != 0;
  PetscCallMPI(MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_LOR, comm));
  PetscCheck(!anybad, comm, PETSC_ERR_PLIB, "%s store: the model's theta differs from MapMergeApply_Ref on the shard read as F32",
             MapDTypeName(dt));
  PetscCall(PetscPrintf(comm, "%s store: theta = MapMergeApply_Ref on the F32 read of the store, bit for bit\n", MapDTypeName(dt)));
  PetscCall(PetscFree3(pre, tau, ref));
  PetscFunctionReturn(0);
}

/* A basis read from part of the tasks (every other one) with a coefficient map takes the whole
   coefficient vector and merges like the whole basis with zeros outside the part (nested MAP's rank
   groups): equal values (a zero's sign may differ), at any rank count. */
static PetscErrorCode CheckMappedPart(MPI_Comm comm, MapStore store, int T, const int *tasks, const double *c, MapModel whole, const MapLayout *L)
{
  int      k = 0, part[MAP_MAX_TASKS], coef[MAP_MAX_TASKS], nc, bad = 0, anybad;
  double   cz[MAP_MAX_TASKS];
  float   *a, *b;
  int64_t  n = L->hi - L->lo;
  MapModel sub;

  PetscFunctionBegin;
  for (int t = 0; t < T; t++) {
    cz[t] = t % 2 ? 0 : c[t];
    if (t % 2 == 0) part[k] = tasks[t], coef[k++] = t;
  }
  PetscCall(MapModelCreateFromStore(store, k, part, &sub));
  PetscCall(MapModelSetCoefficientMap(sub, T, coef));
  PetscCall(MapModelGetNumCoefficients(sub, &nc));
  PetscCheck(nc == T, comm, PETSC_ERR_PLIB, "mapped part: %d coefficients, expected %d", nc, T);
  PetscCall(PetscMalloc2(n + 1, &a, n + 1, &b));
  PetscCall(MapModelMerge(whole, cz, a));
  PetscCall(MapModelMerge(sub, cz, b));
  for (int64_t j = 0; j < n; j++) bad |= a[j] != b[j];
  PetscCallMPI(MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_LOR, comm));
  PetscCheck(!anybad, comm, PETSC_ERR_PLIB, "a mapped part of %d of %d tasks merges differently from the whole basis with zeros outside it", k, T);
  PetscCall(PetscPrintf(comm, "mapped part (%d of %d tasks): the same merge as the whole basis with zeros outside it\n", k, T));
  PetscCall(PetscFree2(a, b));
  PetscCall(MapModelDestroy(&sub));
  PetscFunctionReturn(0);
}

static PetscErrorCode Merge(MPI_Comm comm)
{
  char      path[MAP_PATH_LEN], out[MAP_PATH_LEN], out2[MAP_PATH_LEN];
  char    **names;
  int       T, nc, nw, nd, *tasks, Tm;
  double    c[MAP_MAX_TASKS], W[1024], d[MAP_MAX_TASKS];
  PetscBool flg, comb;
  MapStore  store;
  MapModel  model, cmodel = NULL;
  MapLayout L;
  float    *theta;

  PetscFunctionBegin;
  PetscCall(PetscOptionsGetString(NULL, NULL, "-map_store", path, sizeof(path), &flg));
  PetscCheck(flg, comm, PETSC_ERR_ARG_WRONG, "-map_store is required");
  PetscCall(PetscOptionsGetString(NULL, NULL, "-map_output", out, sizeof(out), &flg));
  PetscCheck(flg, comm, PETSC_ERR_ARG_WRONG, "-map_output is required");
  PetscCall(MapStoreOpen(comm, path, &store));
  PetscCall(MapOptionsGetList("-map_tasks", &T, &names, NULL));
  PetscCheck(T > 0 && T <= MAP_MAX_TASKS, comm, PETSC_ERR_ARG_WRONG, "-map_tasks: 1..%d names needed, got %d", MAP_MAX_TASKS, T);
  PetscCall(PetscMalloc1(T, &tasks));
  for (int k = 0; k < T; k++) PetscCall(MapStoreFindTask(store, names[k], &tasks[k]));
  PetscCall(MapOptionsGetRealList("-map_coeff", 64, c, &nc, NULL));
  PetscCheck(nc == T, comm, PETSC_ERR_ARG_WRONG, "-map_coeff: expected %d values (one per task), got %d", T, nc);

  PetscCall(MapModelCreateFromStore(store, T, tasks, &model));
  PetscCall(MapModelGetNumTasks(model, &Tm));
  PetscCheck(Tm == T, comm, PETSC_ERR_PLIB, "model has %d tasks, expected %d", Tm, T);
  for (int k = 0; k < T; k++) {
    int t;
    PetscCall(MapModelGetStoreTask(model, k, &t));
    PetscCheck(t == tasks[k], comm, PETSC_ERR_PLIB, "basis vector %d: store task %d, expected %d", k, t, tasks[k]);
  }
  PetscCall(MapModelGetLayout(model, &L));
  PetscCall(PetscMalloc1(L.hi - L.lo + 1, &theta));
  PetscCall(MapModelMerge(model, c, theta));
  PetscCall(CheckF32Read(comm, store, T, tasks, c, &L, theta));
  PetscCall(GatherWrite(comm, &L, theta, out));
  PetscCall(CheckMappedPart(comm, store, T, tasks, c, model, &L));

  PetscCall(MapOptionsGetRealList("-test_combine", 1024, W, &nw, &comb));
  if (comb) {
    PetscCheck(nw % T == 0, comm, PETSC_ERR_ARG_WRONG, "-test_combine: a multiple of T = %d values needed, got %d", T, nw);
    PetscCall(MapOptionsGetRealList("-test_coeff2", 64, d, &nd, NULL));
    PetscCheck(nd == nw / T, comm, PETSC_ERR_ARG_WRONG, "-test_coeff2: expected %d values, got %d", nw / T, nd);
    PetscCall(PetscOptionsGetString(NULL, NULL, "-test_output2", out2, sizeof(out2), &flg));
    PetscCheck(flg, comm, PETSC_ERR_ARG_WRONG, "-test_output2 is required with -test_combine");
    PetscCall(MapModelCreateCombined(model, nd, W, &cmodel));
    int t;
    PetscCall(MapModelGetStoreTask(cmodel, 0, &t));
    PetscCheck(t == -1, comm, PETSC_ERR_PLIB, "combined vector reports store task %d, expected -1", t);
    PetscCall(MapModelMerge(cmodel, d, theta));
    PetscCall(GatherWrite(comm, &L, theta, out2));
    PetscCall(MapModelDestroy(&cmodel));
  }
  PetscCall(MapModelDestroy(&model));
  PetscCall(MapModelDestroy(&model)); /* NULL-safe */
  PetscCall(PetscFree(theta));
  PetscCall(PetscFree(tasks));
  PetscCall(MapFreeList(T, &names));
  PetscCall(MapStoreDestroy(&store));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  PetscBool imp = PETSC_FALSE;

  PetscCall(PetscInitialize(&argc, &argv, NULL, help));
  PetscCall(MapInitializePackage());
  PetscCall(PetscOptionsGetBool(NULL, NULL, "-import", &imp, NULL));
  if (imp) PetscCall(Import(PETSC_COMM_WORLD));
  else PetscCall(Merge(PETSC_COMM_WORLD));
  PetscCall(PetscFinalize());
  return 0;
}
