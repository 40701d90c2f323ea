/* MapStore integrity: the checksums recorded at import, verified on what was read (every run, eval
   and export: MapModelCreateFromStore) or on the whole store (`mapmerge info -map_check`). */
#include "storeimpl.h"
#include <math.h>

/*@
  MapStoreVerifyShard - the checksums of this rank's shards as read, summed over the ranks, against
  those recorded at import: /pretrained and the /task_vectors rows of `tasks`. Cost: one pass over
  the shards in memory (no I/O).

  Collective. Errors: a mismatch, naming the store, the dataset and the task.
@*/
PetscErrorCode MapStoreVerifyShard(MapStore s, int ntask, const int *tasks, const void *pre, const void *tau, PetscBool *checked)
{
  int64_t   n     = s->layout.hi - s->layout.lo;
  size_t    esize = MapStoreDTypeGetInfo(s->dtype)->size;
  uint64_t *sum;

  PetscFunctionBegin;
  if (checked) *checked = s->has_checksums;
  if (!s->has_checksums) PetscFunctionReturn(0);
  PetscCall(PetscCalloc1(ntask + 1, &sum));
  if (pre) sum[0] = MapChecksum64(pre, esize, n, s->layout.lo);
  for (int k = 0; tau && k < ntask; k++) sum[k + 1] = MapChecksum64((const char *)tau + (size_t)k * (size_t)n * esize, esize, n, s->layout.lo);
  PetscCall(MapStoreVerifySums(s, ntask, tasks, pre != NULL, tau != NULL, sum));
  PetscCall(PetscFree(sum));
  PetscFunctionReturn(0);
}

/*@
  MapStoreVerifySums - the checksums (MapChecksum64, by global element index) of what this rank read,
  sum[0] of /pretrained and sum[1+k] of the row of task tasks[k], summed over the ranks and compared
  with those recorded at import; the ranks' parts may have been read in any number of blocks (the
  checksum is a sum over elements). Nothing is checked when the store records no checksums.

  Collective. Errors: a mismatch, naming the store, the dataset and the task.
@*/
PetscErrorCode MapStoreVerifySums(MapStore s, int ntask, const int *tasks, PetscBool haspre, PetscBool hastau, const uint64_t *local)
{
  uint64_t *sum;

  PetscFunctionBegin;
  if (!s->has_checksums) PetscFunctionReturn(0);
  PetscCall(PetscMalloc1(ntask + 1, &sum));
  PetscCall(PetscArraycpy(sum, local, ntask + 1));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, sum, ntask + 1, MPI_UINT64_T, MPI_SUM, s->comm));
  for (int k = -1; k < ntask; k++) {
    uint64_t want = k < 0 ? s->csum_pre : s->csum_tv[tasks ? tasks[k] : k];
    char     a[24], b[24];
    if (k < 0 ? !haspre : !hastau) continue;
    if (sum[k + 1] == want) continue;
    MapChecksumFormat(want, a);
    MapChecksumFormat(sum[k + 1], b);
    PetscCall(PetscFree(sum));
    SETERRQ(s->comm, PETSC_ERR_FILE_UNEXPECTED,
            "store %s: %s%s%s does not match its checksum (recorded at import %s, read %s): the store was changed or damaged after import; "
            "import it again",
            s->path, k < 0 ? "/pretrained" : "/task_vectors row of task ", k < 0 ? "" : s->tasks[tasks ? tasks[k] : k], "", a, b);
  }
  PetscCall(PetscFree(sum));
  PetscFunctionReturn(0);
}

/* non-finite values among n stored elements (16-bit: exponent field all ones) */
static int64_t CountNonFinite(MapDType dt, const void *x, int64_t n)
{
  int64_t bad = 0;
  if (dt == MAP_DTYPE_F32) {
    for (int64_t j = 0; j < n; j++) bad += !isfinite(((const float *)x)[j]);
  } else {
    uint16_t m = MapStoreDTypeGetInfo(dt)->expmask;
    for (int64_t j = 0; j < n; j++) bad += (((const uint16_t *)x)[j] & m) == m;
  }
  return bad;
}

PetscErrorCode MapStoreCheck(MapStore s)
{
  int64_t   n = s->layout.hi - s->layout.lo, bad[2] = {0, 0};
  size_t    esize = MapStoreDTypeGetInfo(s->dtype)->size;
  char     *buf;
  double    t0    = MapWallTime();
  int       npriv = 0;
  PetscBool checked;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1((size_t)(n + 1) * esize, &buf));
  /* one row at a time: memory is one shard of P, whatever T */
  for (int t = -1; t < s->T; t++) {
    PetscCall(MapStoreReadShard(s, s->dtype, t < 0 ? 0 : 1, t < 0 ? NULL : &t, t < 0 ? buf : NULL, t < 0 ? NULL : buf));
    PetscCall(MapStoreVerifyShard(s, t < 0 ? 0 : 1, t < 0 ? NULL : &t, t < 0 ? buf : NULL, t < 0 ? NULL : buf, &checked));
    bad[0] += CountNonFinite(s->dtype, buf, n);
  }
  PetscCall(PetscFree(buf));
  /* private tensors: every rank reads them whole (ReadPrivate verifies each checksum) */
  for (int t = 0; t < s->T; t++) {
    int    np;
    char **names;
    PetscCall(MapStoreGetPrivateNames(s, t, &np, &names));
    for (int i = 0; i < np; i++) {
      int     nd;
      int64_t shape[MAP_MAX_NDIM], numel = 1;
      float  *x;
      PetscCall(MapStoreReadPrivate(s, t, names[i], &nd, shape, &x));
      for (int d = 0; d < nd; d++) numel *= shape[d];
      if (s->layout.rank == 0) bad[1] += CountNonFinite(MAP_DTYPE_F32, x, numel);
      PetscCall(PetscFree(x));
      npriv++;
    }
    PetscCall(MapFreeList(np, &names));
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, bad, 2, MPI_INT64_T, MPI_SUM, s->comm));
  PetscCheck(!bad[0] && !bad[1], s->comm, PETSC_ERR_FP, "store %s: %lld non-finite values (NaN or Inf) in /pretrained and /task_vectors, %lld in private tensors",
             s->path, (long long)bad[0], (long long)bad[1]);
  {
    double el = MapWallTime() - t0, mb = (double)esize * (double)s->P * (s->T + 1) / 1e6;
    PetscCall(PetscPrintf(s->comm, "check: %s: /pretrained, %d task vectors and %d private tensors %s, every value finite; %.1f MB read in %.2f s (%.0f MB/s)\n",
                          s->path, s->T, npriv, checked ? "match their checksums" : "read (the store records no checksums: imported before they existed)",
                          mb, el, mb / PetscMax(el, 1e-9)));
  }
  PetscFunctionReturn(0);
}
