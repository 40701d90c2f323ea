/* `mapmerge export`'s merged tensors, streamed: each rank reads its shard of theta_pre and of the
 * task vectors block by block (collective hyperslab reads), merges a block with the merge kernels,
 * writes it (the writer converts to the output dtype) and reuses the buffers, so memory per rank is
 * O(block) instead of (T+2)·P·4/n bytes, and no page is touched for the first time more than once. */
#include "runimpl.h"

/* Elements per block for `block_mb` MiB of buffers (pre, T rows of tau in the store's dtype, theta
   in F32); a multiple of 64 so the blocks start where the shards' 64-element alignment puts them.
   block_mb == 0: one block per shard (the memory of the former in-memory export). */
static int64_t BlockElements(double block_mb, int ntask, size_t esize, int64_t n)
{
  double  per = (double)(ntask + 1) * (double)esize + sizeof(float);
  int64_t B;

  if (block_mb <= 0) return n > 0 ? n : 1;
  B = (int64_t)(block_mb * 1048576.0 / per) / 64 * 64;
  return B < 64 ? 64 : B;
}

/* The index of the tensor holding element j (tensors are contiguous, in store order). */
static PetscErrorCode TensorAt(MapStore store, int ntensors, int64_t j, int *i)
{
  int                   a = 0, b = ntensors - 1;
  const MapStoreTensor *t;

  PetscFunctionBegin;
  while (a < b) {
    int m = (a + b + 1) / 2;
    PetscCall(MapStoreGetTensor(store, m, &t));
    if (t->offset <= j) a = m;
    else b = m - 1;
  }
  *i = a;
  PetscFunctionReturn(0);
}

static PetscErrorCode MergeBlock(MapDType dt, int64_t m, const void *pre, int ntask, const void *tau, const double *c, float *theta)
{
  PetscFunctionBegin;
  PetscCall(MapMergeApply(dt, m, pre, ntask, tau, m, c, theta));
  PetscFunctionReturn(0);
}

/*@
  MapExportWriteMerged - writes tensors 0..ntensors-1 of the store, merged at c over the store tasks
  tasks[0..ntask), through w (tensor i of w is tensor i of the store), reading and merging this
  rank's shard in blocks of about block_mb MiB (0: the whole shard at once). The same kernels as
  MapModelMerge on the same elements, so the same bits for any block size and rank count.

  The store's checksums are summed over the blocks read and every merged value is checked finite;
  both are agreed on all ranks after the last block and fail before the writer is closed (the
  caller aborts it), so a damaged store or an overflow never publishes an export.

  Collective on the store's communicator.
@*/
PetscErrorCode MapExportWriteMerged(MapStore store, int ntask, const int *tasks, const double *c, double block_mb, MapSafetensorsWriter w)
{
  MapLayout lay;
  MapDType  dt;
  MPI_Comm  comm;
  size_t    esize;
  int64_t   n, B, nblk, maxblk, key = INT64_MAX;
  int       ntensors;
  uint64_t *sum;
  char     *pre, *tau;
  float    *theta;

  PetscFunctionBegin;
  PetscCall(MapStoreGetLayout(store, &lay));
  PetscCall(MapStoreGetDType(store, &dt));
  PetscCall(MapStoreGetComm(store, &comm));
  PetscCall(MapStoreGetSizes(store, NULL, NULL, &ntensors));
  esize = dt == MAP_DTYPE_F32 ? sizeof(float) : sizeof(uint16_t);
  n     = lay.hi - lay.lo;
  B     = BlockElements(block_mb, ntask, esize, n);
  if (block_mb <= 0) PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &B, 1, MPI_INT64_T, MPI_MAX, comm));
  nblk = (n + B - 1) / B;
  PetscCallMPI(MPI_Allreduce(&nblk, &maxblk, 1, MPI_INT64_T, MPI_MAX, comm));
  PetscCall(PetscCalloc1(ntask + 1, &sum));
  {
    /* the buffers are the export's only large allocation: a rank short of memory fails with the others */
    PetscErrorCode ierr;
    PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
    ierr = PetscMalloc3((size_t)B * esize, &pre, (size_t)ntask * (size_t)B * esize, &tau, B, &theta);
    PetscCall(PetscPopErrorHandler());
    MapCheckAll(comm, !ierr, PETSC_ERR_MEM, "export: out of memory for the read/merge buffers of %lld elements x (%d tasks + pre + merged) (%.3g MiB): lower -map_io_block_mb",
                (long long)B, ntask, (double)B * ((ntask + 1) * esize + sizeof(float)) / 1048576.0);
  }
  /* every rank takes part in every block's collective reads, with an empty range past its shard */
  for (int64_t b = 0; b < maxblk; b++) {
    int64_t a0 = PetscMin(lay.hi, lay.lo + b * B), a1 = PetscMin(lay.hi, a0 + B), m = a1 - a0;
    PetscCall(MapStoreReadRange(store, ntask, tasks, a0, a1, pre, tau));
    if (!m) continue;
    sum[0] += MapChecksum64(pre, esize, m, a0);
    for (int k = 0; k < ntask; k++) sum[k + 1] += MapChecksum64(tau + (size_t)k * (size_t)m * esize, esize, m, a0);
    PetscCall(MergeBlock(dt, m, pre, ntask, tau, c, theta));
    if (key == INT64_MAX) key = MapMergeFirstNonFinite(theta, m, a0); /* blocks ascend: the first found is this rank's first */
    int i = 0;
    PetscCall(TensorAt(store, ntensors, a0, &i));
    for (; i < ntensors; i++) {
      const MapStoreTensor *t;
      PetscCall(MapStoreGetTensor(store, i, &t));
      if (t->offset >= a1) break;
      int64_t s0 = PetscMax(a0, t->offset), s1 = PetscMin(a1, t->offset + t->numel);
      if (s1 > s0) PetscCall(MapSafetensorsWriterWriteF32(w, i, s0 - t->offset, s1 - s0, theta + (s0 - a0)));
    }
  }
  PetscCall(PetscFree3(pre, tau, theta));
  /* what was read is what was imported (a flipped bit would change every result silently) */
  PetscCall(MapStoreVerifySums(store, ntask, tasks, PETSC_TRUE, PETSC_TRUE, sum));
  PetscCall(PetscFree(sum));
  PetscCall(MapMergeCheckFiniteAgreed(store, comm, ntask, c, key));
  PetscFunctionReturn(0);
}
