/* bench_store_read: time of the collective read of a whole store (MapStoreReadShard of
 * /pretrained and every task vector, each rank its shard), split into what the first read of a
 * fresh buffer costs and what a re-read into the same buffer costs.
 *
 *   mpiexec -n N bench_store_read -store store.h5 [-reps 3] [-cold]
 *
 * rep 0 reads into freshly allocated (untouched) memory, as `mapmerge export/eval/run` do; reps 1..
 * read again into the same, already faulted-in memory. "touch" (after the reads, the read buffers
 * freed) is a memset of a fresh buffer of the same size: the page-fault cost alone. With -cold, rank 0 evicts the store's pages from the
 * page cache (posix_fadvise DONTNEED after fsync) before rep 0. Times are the maximum over ranks,
 * between barriers. Lines "RESULT <what> <seconds> <GB/s>" are machine-readable; bytes counted are
 * (T+1) x P x (4 or 2), the vectors read in the store's dtype (F32, or BF16/F16 kept 16-bit like
 * MapModel does). "merge" (best of -reps) is one merge of the read shards at c_i = 0.3
 * (MapMergeApply in the store's dtype), its GB/s counting the vectors read and
 * theta written. With -reference F32STORE (for a BF16 or F16 store imported from the same
 * checkpoints) the 16-bit values are first checked to be the round-to-nearest-even of the F32
 * store's: VALID or INVALID. */
#include <mapmerge/mapmerge.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static char help[] = "bench_store_read: collective HDF5 read of a mapmerge store (F32, BF16 or F16) and one merge of it.\n";

/* VALID when every 16-bit value of this shard is the round-to-nearest-even of the reference F32
   store's value (collective: the verdict is agreed on). */
static PetscErrorCode Validate(MapStore store, MapDType dt, const char *refpath, int T, const int *tasks, const uint16_t *pre,
                               const uint16_t *tau, int64_t n)
{
  MapStore ref;
  float   *rpre, *rtau;
  int64_t  bad = 0, allbad, P, Pr;
  int      Tr;
  uint16_t (*round)(float) = dt == MAP_DTYPE_BF16 ? MapF32ToBF16 : MapF32ToF16;

  PetscFunctionBegin;
  PetscCall(MapStoreOpen(PETSC_COMM_WORLD, refpath, &ref));
  PetscCall(MapStoreGetSizes(store, &P, NULL, NULL));
  PetscCall(MapStoreGetSizes(ref, &Pr, &Tr, NULL));
  PetscCheck(Pr == P && Tr == T, PETSC_COMM_WORLD, PETSC_ERR_ARG_SIZ, "bench_store_read: reference %s has P = %lld, T = %d; the store P = %lld, T = %d",
             refpath, (long long)Pr, Tr, (long long)P, T);
  PetscCall(PetscMalloc2(n + 1, &rpre, (size_t)T * (size_t)n + 1, &rtau));
  PetscCall(MapStoreReadShard(ref, MAP_DTYPE_F32, T, tasks, rpre, rtau));
  for (int64_t j = 0; j < n; j++) bad += round(rpre[j]) != pre[j];
  for (int64_t j = 0; j < (int64_t)T * n; j++) bad += round(rtau[j]) != tau[j];
  PetscCallMPI(MPI_Allreduce(&bad, &allbad, 1, MPI_INT64_T, MPI_SUM, PETSC_COMM_WORLD));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "%s: %lld of %lld %s values differ from RNE(%s)\n", allbad ? "INVALID" : "VALID",
                        (long long)allbad, (long long)(T + 1) * (long long)P, MapDTypeName(dt), refpath));
  PetscCall(PetscFree2(rpre, rtau));
  PetscCall(MapStoreDestroy(&ref));
  PetscFunctionReturn(0);
}

static PetscErrorCode Evict(const char *path)
{
  int fd;

  PetscFunctionBegin;
  fd = open(path, O_RDONLY);
  PetscCheck(fd >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "bench_store_read: cannot open %s to evict it: %s", path, strerror(errno));
  (void)fsync(fd);
  int err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
  PetscCheck(!err, PETSC_COMM_SELF, PETSC_ERR_SYS, "bench_store_read: posix_fadvise(%s) failed: %s", path, strerror(err));
  PetscFunctionReturn(0);
}

/* max over ranks of the time between two barriers */
static PetscErrorCode Stop(double t0, double *t)
{
  double l;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  l = MPI_Wtime() - t0;
  PetscCallMPI(MPI_Allreduce(&l, t, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  char          path[MAP_PATH_LEN] = "", refpath[MAP_PATH_LEN] = "";
  PetscInt      reps = 3;
  PetscBool     cold = PETSC_FALSE;
  MapStore      store;
  MapLayout     lay;
  int64_t       P, n;
  int           T, ntensors, *tasks;
  void         *pre, *tau;
  float        *junk, *theta;
  double        t0, t, bytes, tmerge = 0, *c;
  size_t        esize;
  MapDType      dt;
  PetscMPIInt   rank, size;

  PetscCall(PetscInitialize(&argc, &argv, NULL, help));
  PetscCall(MapInitializePackage());
  PetscOptionsBegin(PETSC_COMM_WORLD, NULL, "bench_store_read options", NULL);
  PetscCall(PetscOptionsString("-store", "store to read", NULL, path, path, sizeof(path), NULL));
  PetscCall(PetscOptionsInt("-reps", "reads (the first into fresh memory)", NULL, reps, &reps, NULL));
  PetscCall(PetscOptionsBool("-cold", "evict the store from the page cache before the first read", NULL, cold, &cold, NULL));
  PetscCall(PetscOptionsString("-reference", "F32 store of the same checkpoints: check a BF16 store against it first", NULL, refpath, refpath,
                               sizeof(refpath), NULL));
  PetscOptionsEnd();
  PetscCheck(path[0], PETSC_COMM_WORLD, PETSC_ERR_ARG_WRONG, "bench_store_read: -store PATH is required");
  PetscCheck(reps >= 1, PETSC_COMM_WORLD, PETSC_ERR_ARG_OUTOFRANGE, "bench_store_read: -reps %" PetscInt_FMT " must be >= 1", reps);
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  if (cold && !rank) PetscCall(Evict(path));
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));

  t0 = MPI_Wtime();
  PetscCall(MapStoreOpen(PETSC_COMM_WORLD, path, &store));
  PetscCall(Stop(t0, &t));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "RESULT open %.4f -\n", t));
  PetscCall(MapStoreGetSizes(store, &P, &T, &ntensors));
  PetscCall(MapStoreGetLayout(store, &lay));
  PetscCall(MapStoreGetDType(store, &dt));
  n     = lay.hi - lay.lo;
  esize = dt == MAP_DTYPE_F32 ? sizeof(float) : sizeof(uint16_t);
  bytes = (double)esize * (double)P * (double)(T + 1);
  PetscCall(PetscMalloc2(T, &tasks, T, &c));
  for (int k = 0; k < T; k++) {
    tasks[k] = k;
    c[k]     = 0.3;
  }
  PetscCall(PetscMalloc((size_t)(n + 1) * esize, &pre));
  PetscCall(PetscMalloc(((size_t)T * (size_t)n + 1) * esize, &tau));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "store %s: P = %lld, T = %d, dtype %s, %d ranks, %.3f GB of vectors\n", path, (long long)P, T,
                        MapDTypeName(dt), size, bytes / 1e9));

  for (PetscInt r = 0; r < reps; r++) {
    t0 = MPI_Wtime();
    PetscCall(MapStoreReadShard(store, dt, T, tasks, pre, tau)); /* in the store's own dtype */
    PetscCall(Stop(t0, &t));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "RESULT %s %.4f %.3f\n", r ? "reread" : (cold ? "read_fresh_cold" : "read_fresh"), t, bytes / t / 1e9));
    if (!r && refpath[0]) {
      PetscCheck(dt != MAP_DTYPE_F32, PETSC_COMM_WORLD, PETSC_ERR_ARG_WRONG,
                 "bench_store_read: -reference checks a BF16 or F16 store; %s is %s", path, MapDTypeName(dt));
      PetscCall(Validate(store, dt, refpath, T, tasks, (const uint16_t *)pre, (const uint16_t *)tau, n));
    }
  }
  PetscCall(PetscMalloc1(n + 1, &theta));
  for (PetscInt r = 0; r < reps; r++) {
    t0 = MPI_Wtime();
    PetscCall(MapMergeApply(dt, n, pre, T, tau, n, c, theta));
    PetscCall(Stop(t0, &t));
    tmerge = r ? PetscMin(tmerge, t) : t;
  }
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "RESULT merge %.4f %.3f\n", tmerge, (bytes + 4.0 * (double)P) / tmerge / 1e9));
  PetscCall(PetscFree(theta));
  PetscCall(PetscFree(pre));
  PetscCall(PetscFree(tau));
  /* after the reads, so that the reads see memory as fresh as mapmerge's commands do */
  PetscCall(PetscMalloc((size_t)(T + 1) * (size_t)n * esize + 1, &junk));
  t0 = MPI_Wtime();
  memset(junk, 1, (size_t)(T + 1) * (size_t)n * esize);
  PetscCall(Stop(t0, &t));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "RESULT touch %.4f %.3f\n", t, bytes / t / 1e9));
  PetscCall(PetscFree(junk));
  PetscCall(PetscFree2(tasks, c));
  PetscCall(MapStoreDestroy(&store));
  PetscCall(PetscFinalize());
  return 0;
}
