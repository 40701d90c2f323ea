/* MapModel: this rank's shard of theta_pre and of a basis of task vectors, the thing a merge
 * works on. Made from a store (plain task vectors) or from another model (Nested MAP's combined
 * pairs). All arithmetic is element-wise on the shard, so nothing depends on the rank count. */
#include "mergeimpl.h"
#include <stdio.h>

/* MemAvailable of /proc/meminfo in bytes (0 when unknown) */
static double MapMemAvailable(void)
{
  FILE  *f = fopen("/proc/meminfo", "r");
  char   line[256];
  double kb = 0;
  if (!f) return 0;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
  fclose(f);
  return kb * 1024;
}

/* a model of T basis vectors of `store` in dtype, its shards not yet allocated (tasks[] to be filled) */
static PetscErrorCode ModelInit(MapStore store, int T, MapDType dtype, MapModel *model)
{
  MapModel m;

  PetscFunctionBegin;
  PetscCall(PetscNew(&m));
  m->store = store;
  m->T     = T;
  m->ncoef = T;
  m->dtype = dtype;
  PetscCall(MapStoreGetLayout(store, &m->layout));
  m->n = m->layout.hi - m->layout.lo;
  PetscCall(PetscMalloc1(T > 0 ? T : 1, &m->tasks));
  *model = m;
  PetscFunctionReturn(0);
}

static PetscErrorCode ModelAlloc(MapStore store, int T, MapDType dtype, MapModel *model)
{
  MapModel m;
  size_t   esize = dtype == MAP_DTYPE_F32 ? sizeof(float) : sizeof(uint16_t);

  PetscFunctionBegin;
  PetscCall(ModelInit(store, T, dtype, &m));
  {
    /* the largest allocation of a run: when it cannot be had, say how much and what the node has,
       on every rank together (one rank short of memory must not leave the others waiting) */
    size_t      want  = ((size_t)T * (size_t)m->n + (size_t)m->n + 2) * esize;
    void       *probe = malloc(want);
    const char *path;
    MPI_Comm    comm;
    double      avail = MapMemAvailable();
    free(probe);
    PetscCall(MapStoreGetPath(store, &path));
    PetscCall(MapStoreGetComm(store, &comm));
    MapCheckAll(comm, probe != NULL, PETSC_ERR_MEM,
                "store %s: out of memory: this rank's shard of theta_pre and %d task vectors (%lld elements each, %s) needs %.3g GiB, but the "
                "allocation failed (%.3g GiB available on this node). Use more ranks or nodes, fewer tasks, a 16-bit store (import "
                "-map_store_dtype bf16), or, for the command and worker evaluators, -map_eval_stream",
                path, T, (long long)m->n, esize == 4 ? "F32" : "16-bit", (double)want / (1 << 30), avail / (1 << 30));
  }
  /* +1: a rank that owns no elements still gets valid (unused) pointers */
  PetscCall(PetscMalloc((size_t)(m->n + 1) * esize, &m->pre));
  PetscCall(PetscMalloc(((size_t)T * (size_t)m->n + 1) * esize, &m->tau));
  *model = m;
  PetscFunctionReturn(0);
}

/* ntask store task indices tasks[] (NULL: 0..ntask-1) of a store of T tasks */
static PetscErrorCode CheckTasks(const char *path, int T, int ntask, const int *tasks)
{
  PetscFunctionBegin;
  PetscCheck(ntask >= 1 && ntask <= T, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "store %s: a model needs 1 to %d tasks (the store's task count), got %d", path, T, ntask);
  for (int k = 0; k < ntask; k++) {
    int t = tasks ? tasks[k] : k;
    PetscCheck(t >= 0 && t < T, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "store %s: task index %d (entry %d) not in [0, %d)", path,
               t, k, T);
  }
  PetscFunctionReturn(0);
}

/* the model of the store tasks tasks[ntask] (NULL: 0..ntask-1): its shards read and verified, or
   (streamed) none */
static PetscErrorCode ModelOfStore(MapStore store, int ntask, const int *tasks, PetscBool streamed, MapModel *model)
{
  MapModel    m;
  MapDType    dtype;
  int         T, ntensors;
  const char *path;

  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 4);
  *model = NULL;
  PetscCall(MapStoreGetSizes(store, NULL, &T, &ntensors));
  PetscCall(MapStoreGetPath(store, &path));
  PetscCall(CheckTasks(path, T, ntask, tasks));
  PetscCall(MapStoreGetDType(store, &dtype));
  if (streamed) PetscCall(ModelInit(store, ntask, dtype, &m));
  else PetscCall(ModelAlloc(store, ntask, dtype, &m));
  m->streamed = streamed;
  for (int k = 0; k < ntask; k++) m->tasks[k] = tasks ? tasks[k] : k;
  if (!streamed) {
    PetscCall(MapStoreReadShard(store, dtype, ntask, m->tasks, m->pre, m->tau));
    /* what was read is what was imported (a flipped bit would change every result silently) */
    PetscCall(MapStoreVerifyShard(store, ntask, m->tasks, m->pre, m->tau, NULL));
  }
  *model = m;
  PetscFunctionReturn(0);
}

/*@
  MapModelCreateFromStore - reads this rank's shard of theta_pre and of the task vectors of the
  store tasks `tasks[0..ntask-1]` (store task indices, in the order the coefficient vector uses;
  tasks == NULL means 0..ntask-1). Collective on the store's communicator. The shards keep the
  store's dtype (F32, BF16 or F16); merges widen 16-bit values exactly and compute in F32.

  The model references the store (for private tensors and the index): destroy the model first.
  Errors: ntask < 1 or a task index outside [0, T) of the store, naming the store and its T.
@*/
PetscErrorCode MapModelCreateFromStore(MapStore store, int ntask, const int *tasks, MapModel *model)
{
  PetscFunctionBegin;
  PetscCall(ModelOfStore(store, ntask, tasks, PETSC_FALSE, model));
  PetscFunctionReturn(0);
}

/*@
  MapModelCreateStreamed - a model of the store tasks `tasks[0..ntask-1]` (as MapModelCreateFromStore)
  that reads nothing now and holds no shards: MapModelWriteMerged reads the store block by block at
  each merge, so a model of any size is merged in O(block) memory per rank, at the price of one
  read of (T+1)·P·e bytes per merge. The in-memory merges refuse it. Collective (no communication).
@*/
PetscErrorCode MapModelCreateStreamed(MapStore store, int ntask, const int *tasks, MapModel *model)
{
  PetscFunctionBegin;
  PetscCall(ModelOfStore(store, ntask, tasks, PETSC_TRUE, model));
  PetscFunctionReturn(0);
}

/* the in-memory operations on a streamed model: an error naming the operation and the way out */
static PetscErrorCode CheckInMemory(MapModel model, const char *op)
{
  const char *path = "";

  PetscFunctionBegin;
  if (PetscLikely(!model->streamed)) PetscFunctionReturn(0);
  PetscCall(MapStoreGetPath(model->store, &path));
  SETERRQ(PETSC_COMM_SELF, PETSC_ERR_SUP,
          "%s: the model of store %s is streamed (-map_eval_stream): it holds no shards in memory; only evaluators that hand a model file "
          "to a program (command, worker) and export stream",
          op, path);
}

/*@
  MapModelCreateCombined - a new basis of nk task vectors, tau'_k = sum_i W[k*T+i] tau_i over the
  T vectors of `base` (Nested MAP: a merged pair's task vector is c_a tau_a + c_b tau_b).
  Arithmetic: acc = 0; acc = acc + (float)W[k*T+i] * tau_i[j] for i = 0..T-1, each step rounded to
  F32 (the merge kernel with a zero base), so the bits do not depend on the sharding.
  theta_pre is copied. The new basis is F32 whatever the dtype of `base` (a BF16 or F16 base is
  widened exactly: combinations of 16-bit vectors are not 16-bit). Private tensors stay in the store;
  MapModelGetStoreTask() returns -1 for combined vectors. Collective in the sense that every rank
  must call it (no communication).

  Errors: nk < 1, non-finite weights.
@*/
PetscErrorCode MapModelCreateCombined(MapModel base, int nk, const double *W, MapModel *model)
{
  MapModel m;
  float   *wf;

  PetscFunctionBegin;
  PetscCheck(base, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (base) must not be NULL", 1);
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 4);
  *model = NULL;
  PetscCall(CheckInMemory(base, "MapModelCreateCombined"));
  PetscCheck(nk >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "MapModelCreateCombined: need >= 1 combined task vectors, got %d", nk);
  for (int q = 0; q < nk * base->T; q++)
    PetscCheck(!PetscIsInfOrNanReal(W[q]), PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
               "MapModelCreateCombined: weight W[%d][%d] = %g is not finite", q / base->T, q % base->T, W[q]);
  PetscCall(ModelAlloc(base->store, nk, MAP_DTYPE_F32, &m));
  PetscCheck(m->n == base->n, PETSC_COMM_SELF, PETSC_ERR_PLIB, "MapModelCreateCombined: store layout %" PRId64 " != model shard %" PRId64,
             m->n, base->n);
  MapMergeKernelStored_Private(base->dtype, base->n, base->pre, 0, NULL, 0, NULL, (float *)m->pre); /* T = 0: pre, widened */
  PetscCall(PetscMalloc1(base->T, &wf));
  PetscCall(MapInitializePackage());
  PetscCall(PetscLogEventBegin(MAP_EVENT_MergeApply, 0, 0, 0, 0));
  for (int k = 0; k < nk; k++) {
    float *tk   = (float *)m->tau + (size_t)k * (size_t)m->n;
    m->tasks[k] = -1;
    for (int i = 0; i < base->T; i++) wf[i] = (float)W[k * base->T + i];
    MapMergeKernelStored_Private(base->dtype, base->n, NULL, base->T, base->tau, base->n, wf, tk);
  }
  PetscCall(PetscLogFlops(2.0 * nk * base->T * (PetscLogDouble)base->n));
  PetscCall(PetscLogEventEnd(MAP_EVENT_MergeApply, 0, 0, 0, 0));
  PetscCall(PetscFree(wf));
  *model = m;
  PetscFunctionReturn(0);
}

PetscErrorCode MapModelSetCoefficientMap(MapModel model, int ncoef, const int *coef)
{
  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 1);
  for (int k = 0; k < model->T; k++)
    PetscCheck(coef[k] >= 0 && coef[k] < ncoef && (!k || coef[k] > coef[k - 1]), PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
               "MapModelSetCoefficientMap: entries must ascend within [0, %d); entry %d is %d", ncoef, k, coef[k]);
  if (!model->coef) PetscCall(PetscMalloc1(model->T, &model->coef));
  PetscCall(PetscArraycpy(model->coef, coef, model->T));
  model->ncoef = ncoef;
  PetscFunctionReturn(0);
}

PetscErrorCode MapModelGetNumCoefficients(MapModel model, int *ncoef)
{
  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 1);
  *ncoef = model->ncoef;
  PetscFunctionReturn(0);
}

/*@
  MapModelDestroy - frees the shards; NULL-safe, sets *model = NULL. The store is not destroyed.
@*/
PetscErrorCode MapModelDestroy(MapModel *model)
{
  PetscFunctionBegin;
  if (!model || !*model) PetscFunctionReturn(0);
  PetscCall(PetscFree((*model)->tasks));
  PetscCall(PetscFree((*model)->coef));
  PetscCall(PetscFree((*model)->pre));
  PetscCall(PetscFree((*model)->tau));
  PetscCall(PetscFree(*model));
  PetscFunctionReturn(0);
}

/* MapModelGetLayout - this rank's shard [lo, hi) of the P parameters. Not collective. */
PetscErrorCode MapModelGetLayout(MapModel model, MapLayout *layout)
{
  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 1);
  *layout = model->layout;
  PetscFunctionReturn(0);
}

/* MapModelGetNumTasks - the number of task vectors (rows of the basis). */
PetscErrorCode MapModelGetNumTasks(MapModel model, int *T)
{
  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 1);
  *T = model->T;
  PetscFunctionReturn(0);
}

/* MapModelGetStore - the store the model was read from (not a new reference). */
PetscErrorCode MapModelGetStore(MapModel model, MapStore *store)
{
  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 1);
  *store = model->store;
  PetscFunctionReturn(0);
}

/* MapModelGetStoreTask - the store task index of basis vector k, or -1 for a combined vector. */
PetscErrorCode MapModelGetStoreTask(MapModel model, int k, int *t)
{
  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 1);
  PetscCheck(k >= 0 && k < model->T, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "task vector %d not in [0, %d)", k, model->T);
  *t = model->tasks[k];
  PetscFunctionReturn(0);
}

/* MapModelGetShards - read-only access to this rank's F32 shards: pre[n], tau[k*n + j] (k < T).
   For methods that transform task vectors (TIES, DARE) and for tests. Not collective.
   Errors: a model of BF16 or F16 shards (MapModelGetDType), which has no F32 copy to give. */
PetscErrorCode MapModelGetShards(MapModel model, int64_t *n, const float **pre, const float **tau)
{
  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 1);
  PetscCall(CheckInMemory(model, "MapModelGetShards"));
  PetscCheck(model->dtype == MAP_DTYPE_F32, PETSC_COMM_SELF, PETSC_ERR_SUP,
             "MapModelGetShards: the model holds %s shards, not F32 (MapModelMerge merges them)", MapDTypeName(model->dtype));
  if (n) *n = model->n;
  if (pre) *pre = (const float *)model->pre;
  if (tau) *tau = (const float *)model->tau;
  PetscFunctionReturn(0);
}

/* MapModelGetDType - the dtype of the model's shards (that of its store; F32 for a combined basis). */
PetscErrorCode MapModelGetDType(MapModel model, MapDType *dtype)
{
  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 1);
  *dtype = model->dtype;
  PetscFunctionReturn(0);
}

/*@
  MapModelMerge - theta_shard[0 .. hi-lo) = the merged parameters of this rank's shard at
  coefficients c[T] (MapMergeApply in the shards' dtype). Not collective; the
  same bits for any rank count.
@*/
PetscErrorCode MapModelMerge(MapModel model, const double *c, float *theta_shard)
{
  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 1);
  PetscCall(MapModelMergeRange(model, c, 0, model->n, theta_shard));
  PetscFunctionReturn(0);
}

/* c[ncoef] checked finite (errors naming fn), then the coefficient of each basis row: c itself, or for
   a mapped basis the rows' own entries, in row order, in csub[MAP_MAX_TASKS]; *rowc points at them */
PetscErrorCode MapModelRowCoefficients_Private(MapModel model, const char *fn, const double *c, double *csub, const double **rowc)
{
  PetscFunctionBegin;
  for (int i = 0; i < model->ncoef; i++)
    PetscCheck(!PetscIsInfOrNanReal(c[i]), PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: coefficient c[%d] = %g is not finite", fn, i, c[i]);
  *rowc = c;
  if (model->coef) {
    PetscCheck(model->T <= MAP_MAX_TASKS, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: a mapped basis of at most %d rows", fn, MAP_MAX_TASKS);
    for (int k = 0; k < model->T; k++) csub[k] = c[model->coef[k]];
    *rowc = csub;
  }
  PetscFunctionReturn(0);
}

/*@
  MapModelMergeRange - out[0 .. j1-j0) = the merged parameters of the shard's elements [j0, j1)
  (offsets from lo) at coefficients c[ncoef]: the same kernel and per-element arithmetic as
  MapModelMerge, so each element gets the same bits wherever it is merged (lets an evaluator merge
  straight into the buffers its forward pass uses). Not collective.
  Errors: a range outside [0, hi-lo), non-finite coefficients.
@*/
PetscErrorCode MapModelMergeRange(MapModel model, const double *c, int64_t j0, int64_t j1, float *out)
{
  size_t esize;

  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 1);
  PetscCall(CheckInMemory(model, "MapModelMerge"));
  PetscCheck(0 <= j0 && j0 <= j1 && j1 <= model->n, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "MapModelMergeRange: range [%" PRId64 ", %" PRId64 ") is not inside the shard [0, %" PRId64 ")", j0, j1, model->n);
  double csub[MAP_MAX_TASKS];
  PetscCall(MapModelRowCoefficients_Private(model, "MapModelMerge", c, csub, &c));
  esize = model->dtype == MAP_DTYPE_F32 ? sizeof(float) : sizeof(uint16_t);
  PetscCall(MapMergeApplyStored_Private("MapModelMerge", model->dtype, j1 - j0, (const char *)model->pre + (size_t)j0 * esize, model->T,
                                        (const char *)model->tau + (size_t)j0 * esize, model->n, c, out));
  PetscFunctionReturn(0);
}

/* 2 * (first + j) + (1 for NaN, 0 for Inf) of the first non-finite theta[j], else INT64_MAX */
int64_t MapMergeFirstNonFinite(const float *theta, int64_t n, int64_t first)
{
  int64_t j = MapFirstNonFiniteF32(theta, n);
  return j < 0 ? INT64_MAX : 2 * (first + j) + (isnan(theta[j]) ? 1 : 0);
}

PetscErrorCode MapModelCheckFinite(MapModel model, MPI_Comm comm, const double *c, const float *theta_shard)
{
  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 1);
  PetscCall(MapMergeCheckFiniteAgreed(model->store, comm, model->ncoef, c, MapMergeFirstNonFinite(theta_shard, model->n, model->layout.lo)));
  PetscFunctionReturn(0);
}

PetscErrorCode MapModelReportNonFinite(MapModel model, MPI_Comm comm, const double *c, int64_t j, PetscBool isnan_value)
{
  PetscFunctionBegin;
  PetscCall(MapMergeCheckFiniteAgreed(model->store, comm, model->ncoef, c, j >= 0 ? 2 * (model->layout.lo + j) + (isnan_value ? 1 : 0) : INT64_MAX));
  PetscFunctionReturn(0);
}

/*@
  MapMergeCheckFiniteAgreed - the ranks of comm agree on the first non-finite merged value (key of
  MapMergeFirstNonFinite, INT64_MAX for none) and, if there is one, fail together naming its tensor
  of `store`, the element and c[ncoef]. Collective on comm.
@*/
PetscErrorCode MapMergeCheckFiniteAgreed(MapStore store, MPI_Comm comm, int ncoef, const double *c, int64_t key)
{
  int64_t first;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Allreduce(&key, &first, 1, MPI_INT64_T, MPI_MIN, comm));
  if (PetscLikely(first == INT64_MAX)) PetscFunctionReturn(0);
  {
    int                   a   = 0, b;
    int64_t               idx = first / 2;
    const MapStoreTensor *t;
    const char           *path;
    char                  cs[1024] = "";
    PetscCall(MapStoreGetPath(store, &path));
    PetscCall(MapStoreGetSizes(store, NULL, NULL, &b));
    for (b = b - 1; a < b;) { /* the last tensor whose offset <= idx */
      int m = (a + b + 1) / 2;
      PetscCall(MapStoreGetTensor(store, m, &t));
      if (t->offset <= idx) a = m;
      else b = m - 1;
    }
    PetscCall(MapStoreGetTensor(store, a, &t));
    for (int i = 0; i < ncoef && i < MAP_MAX_TASKS; i++) {
      size_t l = strlen(cs);
      snprintf(cs + l, sizeof(cs) - l, "%s%g", i ? "," : "", c[i]);
    }
    SETERRQ(comm, PETSC_ERR_FP,
            "merged model at c = %s: tensor %s element %lld is %s; nothing evaluated or written (a coefficient too large for F32, or "
            "non-finite values in store %s: `mapmerge info -map_store %s -map_check` checks it)",
            cs, t->name, (long long)(idx - t->offset), first % 2 ? "NaN" : "Inf", path, path);
  }
}

/*@
  MapModelCheckFiniteSegments - MapModelCheckFinite for merged values held in pieces: piece s holds
  the flat parameters [off[s], off[s] + len[s]) at ptr[s] (MapModelMergeRange). The error names the
  lowest flat index that is not finite over all pieces of all ranks of comm. Collective on comm.
@*/
PetscErrorCode MapModelCheckFiniteSegments(MapModel model, MPI_Comm comm, const double *c, int64_t nseg, const int64_t *off, const int64_t *len,
                                           const float *const *ptr)
{
  int64_t key = INT64_MAX;

  PetscFunctionBegin;
  PetscCheck(model, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "argument %d (model) must not be NULL", 1);
  for (int64_t s = 0; s < nseg; s++) key = PetscMin(key, MapMergeFirstNonFinite(ptr[s], len[s], off[s]));
  PetscCall(MapMergeCheckFiniteAgreed(model->store, comm, model->ncoef, c, key));
  PetscFunctionReturn(0);
}
