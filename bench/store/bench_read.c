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
 * (T+1) x P x 4, the vectors read. */
#include <mapmerge/mapmerge.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static char help[] = "bench_store_read: collective HDF5 read of a mapmerge store.\n";

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
  char        path[MAP_PATH_LEN] = "";
  PetscInt    reps = 3;
  PetscBool   cold = PETSC_FALSE;
  MapStore    store;
  MapLayout   lay;
  int64_t     P, n;
  int         T, ntensors, *tasks;
  float      *pre, *tau, *junk;
  double      t0, t, bytes;
  PetscMPIInt rank, size;

  PetscCall(PetscInitialize(&argc, &argv, NULL, help));
  PetscCall(MapInitializePackage());
  PetscOptionsBegin(PETSC_COMM_WORLD, NULL, "bench_store_read options", NULL);
  PetscCall(PetscOptionsString("-store", "store to read", NULL, path, path, sizeof(path), NULL));
  PetscCall(PetscOptionsInt("-reps", "reads (the first into fresh memory)", NULL, reps, &reps, NULL));
  PetscCall(PetscOptionsBool("-cold", "evict the store from the page cache before the first read", NULL, cold, &cold, NULL));
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
  n     = lay.hi - lay.lo;
  bytes = 4.0 * (double)P * (double)(T + 1);
  PetscCall(PetscMalloc1(T, &tasks));
  for (int k = 0; k < T; k++) tasks[k] = k;
  PetscCall(PetscMalloc2(n + 1, &pre, (size_t)T * (size_t)n + 1, &tau));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "store %s: P = %lld, T = %d, %d ranks, %.3f GB of vectors\n", path, (long long)P, T, size, bytes / 1e9));

  for (PetscInt r = 0; r < reps; r++) {
    t0 = MPI_Wtime();
    PetscCall(MapStoreReadShard(store, T, tasks, pre, tau));
    PetscCall(Stop(t0, &t));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "RESULT %s %.4f %.3f\n", r ? "reread" : (cold ? "read_fresh_cold" : "read_fresh"), t, bytes / t / 1e9));
  }
  PetscCall(PetscFree2(pre, tau));
  /* after the reads, so that the reads see memory as fresh as mapmerge's commands do */
  PetscCall(PetscMalloc1((size_t)(T + 1) * (size_t)n + 1, &junk));
  t0 = MPI_Wtime();
  memset(junk, 1, (size_t)(T + 1) * (size_t)n * sizeof(float));
  PetscCall(Stop(t0, &t));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "RESULT touch %.4f %.3f\n", t, bytes / t / 1e9));
  PetscCall(PetscFree(junk));
  PetscCall(PetscFree(tasks));
  PetscCall(MapStoreDestroy(&store));
  PetscCall(PetscFinalize());
  return 0;
}
