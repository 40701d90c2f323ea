/* Merges written block by block through a safetensors writer: `mapmerge export` and the external
 * evaluators' model files. A streamed pass reads each rank's shard of theta_pre and of the task
 * vectors block by block (collective hyperslab reads), merges a block with the merge kernels,
 * writes it (the writer converts to the output dtype) and reuses the buffers, so memory per rank is
 * O(block) instead of (T+2)·P·e/n bytes, and no page is touched for the first time more than once.
 * A model whose shards are in memory is merged into one reused block buffer the same way (no
 * P·4/n merged copy). Either way the same kernels on the same elements: the same bits for any block
 * size and rank count. */
#include "mergeimpl.h"

/* Elements per block for `block_mb` MiB of buffers (pre, ntask rows of tau in the store's dtype,
   theta in F32; ntask = 0 and esize = 0: theta only); a multiple of 64 so the blocks start where the
   shards' 64-element alignment puts them. block_mb == 0: one block per shard. */
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

/* theta[0 .. a1-a0) holds the merged flat elements [a0, a1): each tensor's part of it through w */
static PetscErrorCode WriteBlock(MapStore store, int ntensors, int64_t a0, int64_t a1, const float *theta, MapSafetensorsWriter w)
{
  int i = 0;

  PetscFunctionBegin;
  PetscCall(TensorAt(store, ntensors, a0, &i));
  for (; i < ntensors; i++) {
    const MapStoreTensor *t;
    PetscCall(MapStoreGetTensor(store, i, &t));
    if (t->offset >= a1) break;
    int64_t s0 = PetscMax(a0, t->offset), s1 = PetscMin(a1, t->offset + t->numel);
    if (s1 > s0) PetscCall(MapSafetensorsWriterWriteF32(w, i, s0 - t->offset, s1 - s0, theta + (s0 - a0)));
  }
  PetscFunctionReturn(0);
}

/* the block buffers are a pass's only large allocation: a rank short of memory fails with the others */
static PetscErrorCode AllocBlocks(MPI_Comm comm, int64_t B, int ntask, size_t esize, char **pre, char **tau, float **theta)
{
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  ierr = PetscMalloc3((size_t)B * esize + 1, pre, (size_t)ntask * (size_t)B * esize + 1, tau, B, theta);
  PetscCall(PetscPopErrorHandler());
  MapCheckAll(comm, !ierr, PETSC_ERR_MEM,
              "merge: out of memory for the read/merge buffers of %lld elements x (%d tasks + pre + merged) (%.3g MiB): lower -map_io_block_mb",
              (long long)B, ntask, (double)B * ((ntask + 1) * esize + sizeof(float)) / 1048576.0);
  PetscFunctionReturn(0);
}

/*@
  MapMergeWriteStreamed - writes tensors 0..ntensors-1 of the store, merged at c over the store tasks
  tasks[0..ntask), through w (tensor i of w is tensor i of the store), reading and merging this
  rank's shard in blocks of about block_mb MiB (0: the whole shard at once). The same kernels as
  MapModelMerge on the same elements, so the same bits for any block size and rank count.

  The store's checksums are summed over the blocks read and every merged value is checked finite;
  both are agreed on all ranks after the last block and fail before the writer is closed (the
  caller aborts it), so a damaged store or an overflow never publishes a model.

  Collective on the store's communicator.
@*/
PetscErrorCode MapMergeWriteStreamed(MapStore store, int ntask, const int *tasks, const double *c, double block_mb, MapSafetensorsWriter w)
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
  PetscCall(AllocBlocks(comm, B, ntask, esize, &pre, &tau, &theta));
  /* every rank takes part in every block's collective reads, with an empty range past its shard */
  for (int64_t b = 0; b < maxblk; b++) {
    int64_t a0 = PetscMin(lay.hi, lay.lo + b * B), a1 = PetscMin(lay.hi, a0 + B), m = a1 - a0;
    PetscCall(MapStoreReadRange(store, ntask, tasks, a0, a1, pre, tau));
    if (!m) continue;
    sum[0] += MapChecksum64(pre, esize, m, a0);
    for (int k = 0; k < ntask; k++) sum[k + 1] += MapChecksum64(tau + (size_t)k * (size_t)m * esize, esize, m, a0);
    PetscCall(MapMergeApply(dt, m, pre, ntask, tau, m, c, theta));
    if (key == INT64_MAX) key = MapMergeFirstNonFinite(theta, m, a0); /* blocks ascend: the first found is this rank's first */
    PetscCall(WriteBlock(store, ntensors, a0, a1, theta, w));
  }
  PetscCall(PetscFree3(pre, tau, theta));
  /* what was read is what was imported (a flipped bit would change every result silently) */
  PetscCall(MapStoreVerifySums(store, ntask, tasks, PETSC_TRUE, PETSC_TRUE, sum));
  PetscCall(PetscFree(sum));
  PetscCall(MapMergeCheckFiniteAgreed(store, comm, ntask, c, key));
  PetscFunctionReturn(0);
}

/*@
  MapModelWriteMerged - writes the model's merge at c[ncoef] (MapModelGetNumCoefficients) through w,
  tensor i of w being tensor i of the model's store, in blocks of about block_mb MiB per rank: a
  streamed model (MapModelCreateStreamed) reads each block from the store (MapMergeWriteStreamed),
  a model in memory merges each block from its shards (MapModelMergeRange) into one reused buffer.
  Same bits as MapModelMerge. Every merged value is checked finite, agreed on all ranks, before it
  returns: on an error the caller aborts w, so a non-finite model is never handed out.

  Collective on the store's communicator.
@*/
PetscErrorCode MapModelWriteMerged(MapModel model, const double *c, double block_mb, MapSafetensorsWriter w)
{
  MPI_Comm comm;
  int64_t  B, nblk, key = INT64_MAX;
  int      ntensors;
  float   *theta;
  char    *unused0, *unused1;

  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 1);
  if (model->streamed) {
    double        csub[MAP_MAX_TASKS];
    const double *rowc;
    PetscCall(MapModelRowCoefficients_Private(model, "MapModelWriteMerged", c, csub, &rowc));
    PetscCall(MapMergeWriteStreamed(model->store, model->T, model->tasks, rowc, block_mb, w));
    PetscFunctionReturn(0);
  }
  PetscCall(MapStoreGetComm(model->store, &comm));
  PetscCall(MapStoreGetSizes(model->store, NULL, NULL, &ntensors));
  B    = BlockElements(block_mb, 0, 0, model->n);
  nblk = (model->n + B - 1) / B;
  PetscCall(AllocBlocks(comm, B, 0, 0, &unused0, &unused1, &theta));
  for (int64_t b = 0; b < nblk; b++) { /* not collective: each rank merges and writes its own blocks */
    int64_t j0 = b * B, j1 = PetscMin(model->n, j0 + B);
    PetscCall(MapModelMergeRange(model, c, j0, j1, theta));
    if (key == INT64_MAX) key = MapMergeFirstNonFinite(theta, j1 - j0, model->layout.lo + j0);
    PetscCall(WriteBlock(model->store, ntensors, model->layout.lo + j0, model->layout.lo + j1, theta, w));
  }
  PetscCall(PetscFree3(unused0, unused1, theta));
  PetscCall(MapMergeCheckFiniteAgreed(model->store, comm, model->ncoef, c, key));
  PetscFunctionReturn(0);
}
