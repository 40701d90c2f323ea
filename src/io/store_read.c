/* MapStore, read side: shards and ranges of the parameter vector with collective hyperslab I/O,
 * private tensors, root attributes (the object, its index and metadata: store.c). */
#include "storeimpl.h"

/* ---- shard reads ---- */

/* Largest number of columns one collective call moves per rank: keeps each MPI-IO request
   well under 2 GiB whatever the shard size. */
#define MAP_STORE_READ_BLOCK ((int64_t)1 << 26)

/* Collective: reads rows [r0, r0+nr) of /task_vectors (or /pretrained when nr == 0), columns
   [lo,hi), into memory rows [m0, m0+nr) of buf[mrows][hi-lo] of memory type mtype. Each rank may
   have a different (or empty) column range; the number of collective calls is agreed on. */
static PetscErrorCode StoreReadBlock(MapStore s, hid_t mtype, int r0, int nr, int m0, int mrows, int64_t lo, int64_t hi, void *buf)
{
  int64_t n = hi - lo, nblk = (n + MAP_STORE_READ_BLOCK - 1) / MAP_STORE_READ_BLOCK, maxblk;
  hid_t   dset = nr ? s->task_vectors : s->pretrained, fspace, mspace, dxpl;
  int     rows = nr ? nr : 1;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Allreduce(&nblk, &maxblk, 1, MPI_INT64_T, MPI_MAX, s->comm));
  MapCallHDF5(dxpl = H5Pcreate(H5P_DATASET_XFER));
  MapCallHDF5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
  MapCallHDF5(fspace = H5Dget_space(dset));
  {
    hsize_t mdims[2] = {(hsize_t)mrows, (hsize_t)(n > 0 ? n : 1)};
    MapCallHDF5(mspace = H5Screate_simple(2, mdims, NULL));
  }
  for (int64_t b = 0; b < maxblk; b++) {
    int64_t j0 = b * MAP_STORE_READ_BLOCK, j1 = PetscMin(n, j0 + MAP_STORE_READ_BLOCK);
    if (j1 <= j0) { /* ranks without columns still take part */
      MapCallHDF5(H5Sselect_none(fspace));
      MapCallHDF5(H5Sselect_none(mspace));
    } else {
      hsize_t mstart[2] = {(hsize_t)m0, (hsize_t)j0}, mcount[2] = {(hsize_t)rows, (hsize_t)(j1 - j0)};
      MapCallHDF5(H5Sselect_hyperslab(mspace, H5S_SELECT_SET, mstart, NULL, mcount, NULL));
      if (!nr) {
        hsize_t start = (hsize_t)(lo + j0), count = (hsize_t)(j1 - j0);
        MapCallHDF5(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &count, NULL));
      } else {
        hsize_t start[2] = {(hsize_t)r0, (hsize_t)(lo + j0)}, count[2] = {(hsize_t)nr, (hsize_t)(j1 - j0)};
        MapCallHDF5(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL));
      }
    }
    MapCallHDF5(H5Dread(dset, mtype, mspace, fspace, dxpl, buf));
  }
  MapCallHDF5(H5Sclose(mspace));
  MapCallHDF5(H5Sclose(fspace));
  MapCallHDF5(H5Pclose(dxpl));
  PetscFunctionReturn(0);
}

/* Collective: rows rows[0..nrow) (sorted, distinct) into buf[k*(hi-lo) + j]. A run of consecutive
   rows is one plain [rows, n] hyperslab read; unions of hyperslabs (H5S_SELECT_OR) made the read
   six times slower in HDF5 1.10. */
static PetscErrorCode StoreReadColumns(MapStore s, hid_t mtype, int nrow, const int *rows, int64_t lo, int64_t hi, void *buf)
{
  PetscFunctionBegin;
  if (!nrow) {
    PetscCall(StoreReadBlock(s, mtype, 0, 0, 0, 1, lo, hi, buf));
    PetscFunctionReturn(0);
  }
  for (int k = 0; k < nrow;) {
    int r = k;
    while (r + 1 < nrow && rows[r + 1] == rows[r] + 1) r++;
    PetscCall(StoreReadBlock(s, mtype, rows[k], r - k + 1, k, nrow, lo, hi, buf));
    k = r + 1;
  }
  PetscFunctionReturn(0);
}

/* Collective: the shard of pre and of the tasks' rows in the store's own dtype (F32, or the 16-bit
   patterns): reading BF16 as F32 would make HDF5 convert the integers numerically, and an F16 read
   as F32 would take HDF5's (slow, non-collective) conversion path. */
static PetscErrorCode StoreReadShardStored(MapStore s, int ntask, const int *tasks, int64_t lo, int64_t hi, void *pre, void *tau)
{
  int64_t   n = hi - lo;
  hid_t     mtype;
  size_t    esize = MapStoreDTypeGetInfo(s->dtype)->size;
  PetscInt  nrow  = ntask;
  PetscInt *rows;
  int      *irows;
  PetscBool direct = PETSC_TRUE;
  char     *buf;

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(MAP_EVENT_StoreRead, 0, 0, 0, 0));
  PetscCall(MapStoreDTypeH5Type(s->dtype, PETSC_FALSE, &mtype));
  if (pre) PetscCall(StoreReadColumns(s, mtype, 0, NULL, lo, hi, pre));
  if (tau && ntask > 0) {
    PetscCall(PetscMalloc2(ntask, &rows, ntask, &irows));
    for (int k = 0; k < ntask; k++) {
      PetscCheck(tasks[k] >= 0 && tasks[k] < s->T, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "store %s: task index %d out of range [0,%d)",
                 s->path, tasks[k], s->T);
      rows[k] = tasks[k];
    }
    /* HDF5 fills memory in file order: read the distinct rows sorted, then permute if needed */
    PetscCall(PetscSortRemoveDupsInt(&nrow, rows));
    for (PetscInt k = 0; k < nrow; k++) irows[k] = (int)rows[k];
    if (nrow != ntask) direct = PETSC_FALSE;
    for (PetscInt k = 0; direct && k < nrow; k++)
      if (irows[k] != tasks[k]) direct = PETSC_FALSE;
    if (direct) PetscCall(StoreReadColumns(s, mtype, (int)nrow, irows, lo, hi, tau));
    else {
      PetscCall(PetscMalloc1((size_t)nrow * (size_t)n * esize + 1, &buf));
      PetscCall(StoreReadColumns(s, mtype, (int)nrow, irows, lo, hi, buf));
      for (int k = 0; k < ntask; k++) {
        PetscInt r;
        PetscCall(PetscFindInt(tasks[k], nrow, rows, &r));
        if (n) PetscCall(PetscMemcpy((char *)tau + (size_t)k * (size_t)n * esize, buf + (size_t)r * (size_t)n * esize, (size_t)n * esize));
      }
      PetscCall(PetscFree(buf));
    }
    PetscCall(PetscFree2(rows, irows));
  }
  MapCallHDF5(H5Tclose(mtype));
  PetscCall(PetscLogEventEnd(MAP_EVENT_StoreRead, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

/* Widens n 16-bit values held at the start of x to F32 in place. From the last one down, so each
   value is read before its bytes are overwritten; memcpy, because the bytes change type. */
static void Widen16InPlace(float *x, int64_t n, float (*widen)(uint16_t))
{
  for (int64_t j = n - 1; j >= 0; j--) {
    uint16_t h;
    float    f;
    memcpy(&h, (const char *)x + (size_t)j * sizeof(h), sizeof(h));
    f = widen(h);
    memcpy(&x[j], &f, sizeof(f));
  }
}

/*@
  MapStoreReadShard - reads this rank's shard [lo,hi) (MapStoreGetLayout) of theta_pre and of the
  task vectors of the `ntask` store tasks `tasks` (any order, repeats allowed), in memory dtype
  `dtype`: MAP_DTYPE_F32 (float; a BF16 or F16 store is read as stored and widened, exactly, in the
  caller's arrays) or the store's own 16-bit dtype (uint16_t bit patterns: half the memory;
  MapMergeApply merges them).

  Collective (every rank calls it with the same tasks and dtype). pre[hi-lo] and tau[k*(hi-lo) + j]
  may be NULL. Errors: any other dtype (naming the store and both dtypes).
@*/
PetscErrorCode MapStoreReadShard(MapStore s, MapDType dtype, int ntask, const int *tasks, void *pre, void *tau)
{
  int64_t n                = s->layout.hi - s->layout.lo;
  float (*widen)(uint16_t) = MapStoreDTypeGetInfo(s->dtype)->widen;

  PetscFunctionBegin;
  PetscCheck(dtype == MAP_DTYPE_F32 || dtype == s->dtype, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG,
             "store %s holds %s: it reads as F32 or as %s, not as %s", s->path, MapDTypeName(s->dtype), MapDTypeName(s->dtype),
             MapDTypeName(dtype));
  PetscCall(StoreReadShardStored(s, ntask, tasks, s->layout.lo, s->layout.hi, pre, tau));
  if (widen && dtype == MAP_DTYPE_F32) {
    if (pre) Widen16InPlace((float *)pre, n, widen);
    if (tau) Widen16InPlace((float *)tau, (int64_t)ntask * n, widen);
  }
  PetscFunctionReturn(0);
}

/*@
  MapStoreReadRange - reads elements [lo,hi) of theta_pre and of the task vectors of the `ntask` store
  tasks `tasks` (any order, repeats allowed) in the store's own dtype (F32 or the 16-bit patterns):
  pre[hi-lo], tau[k*(hi-lo) + j]; either may be NULL. A block of a shard, for streaming passes whose
  memory must not grow with P (export).

  Collective: every rank calls it the same number of times with the same tasks; each rank's range
  is its own (it may be empty, hi == lo). Errors: a range outside [0, P).
@*/
PetscErrorCode MapStoreReadRange(MapStore s, int ntask, const int *tasks, int64_t lo, int64_t hi, void *pre, void *tau)
{
  PetscFunctionBegin;
  PetscCheck(lo >= 0 && lo <= hi && hi <= s->P, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "store %s: element range [%lld, %lld) not within [0, %lld)",
             s->path, (long long)lo, (long long)hi, (long long)s->P);
  PetscCall(StoreReadShardStored(s, ntask, tasks, lo, hi, pre, tau));
  PetscFunctionReturn(0);
}

/* ---- private tensors ---- */

typedef struct {
  int    n, cap;
  char **names;
} NameList;

static herr_t CollectName(hid_t g, const char *name, const H5L_info_t *info, void *ctx)
{
  NameList *l = (NameList *)ctx;
  if (l->n + 1 >= l->cap) {
    int    cap = l->cap ? 2 * l->cap : 16;
    char **nn  = (char **)realloc(l->names, (size_t)cap * sizeof(char *));
    if (!nn) return -1;
    l->names = nn;
    l->cap   = cap;
  }
  l->names[l->n] = strdup(name);
  if (!l->names[l->n]) return -1;
  l->n++;
  return 0;
}

/*@
  MapStoreGetPrivateNames - the names of task t's private tensors, in the order they were imported.

  Not collective. Free with MapFreeList(n, names).
@*/
PetscErrorCode MapStoreGetPrivateNames(MapStore s, int t, int *n, char ***names)
{
  char     gname[MAP_NAME_LEN + 16];
  hid_t    g, gcpl;
  htri_t   ex;
  unsigned flags = 0;
  NameList l     = {0, 0, NULL};

  PetscFunctionBegin;
  PetscCheck(t >= 0 && t < s->T, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "store %s: task index %d out of range [0,%d)", s->path, t, s->T);
  *n     = 0;
  *names = NULL;
  PetscCall(PetscSNPrintf(gname, sizeof(gname), "/private/%s", s->tasks[t]));
  MapCallHDF5(ex = H5Lexists(s->file, "/private", H5P_DEFAULT));
  if (ex > 0) MapCallHDF5(ex = H5Lexists(s->file, gname, H5P_DEFAULT));
  if (ex <= 0) PetscFunctionReturn(0);
  MapCallHDF5(g = H5Gopen2(s->file, gname, H5P_DEFAULT));
  MapCallHDF5(gcpl = H5Gget_create_plist(g));
  MapCallHDF5(H5Pget_link_creation_order(gcpl, &flags));
  MapCallHDF5(H5Pclose(gcpl));
  herr_t err = H5Literate(g, (flags & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME, H5_ITER_INC, NULL, CollectName, &l);
  MapCallHDF5(H5Gclose(g));
  if (err >= 0) {
    PetscCall(PetscCalloc1(l.n + 1, names));
    for (int i = 0; i < l.n; i++) PetscCall(PetscStrallocpy(l.names[i], &(*names)[i]));
    *n = l.n;
  }
  for (int i = 0; i < l.n; i++) free(l.names[i]);
  free(l.names);
  MapCallHDF5(err);
  PetscFunctionReturn(0);
}

/*@
  MapStoreReadPrivate - reads one private tensor of task t whole, as F32, with its shape.

  Not collective (independent I/O): any rank may call it. *data is PetscFree'd by the caller.
@*/
PetscErrorCode MapStoreReadPrivate(MapStore s, int t, const char *name, int *ndim, int64_t shape[MAP_MAX_NDIM], float **data)
{
  char    dname[2 * MAP_NAME_LEN + 16];
  hid_t   d, space;
  htri_t  ex;
  hsize_t dims[MAP_MAX_NDIM];
  int     nd;
  int64_t numel = 1;

  PetscFunctionBegin;
  PetscCheck(t >= 0 && t < s->T, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "store %s: task index %d out of range [0,%d)", s->path, t, s->T);
  PetscCall(PetscLogEventBegin(MAP_EVENT_StoreRead, 0, 0, 0, 0));
  PetscCall(PetscSNPrintf(dname, sizeof(dname), "/private/%s/%s", s->tasks[t], name));
  MapCallHDF5(ex = H5Lexists(s->file, "/private", H5P_DEFAULT));
  if (ex > 0) {
    PetscCall(PetscSNPrintf(dname, sizeof(dname), "/private/%s", s->tasks[t]));
    MapCallHDF5(ex = H5Lexists(s->file, dname, H5P_DEFAULT));
    PetscCall(PetscSNPrintf(dname, sizeof(dname), "/private/%s/%s", s->tasks[t], name));
    if (ex > 0) MapCallHDF5(ex = H5Lexists(s->file, dname, H5P_DEFAULT));
  }
  PetscCheck(ex > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "store %s: task %s has no private tensor %s (dataset %s)", s->path, s->tasks[t],
             name, dname);
  MapCallHDF5(d = H5Dopen2(s->file, dname, H5P_DEFAULT));
  MapCallHDF5(space = H5Dget_space(d));
  MapCallHDF5(nd = H5Sget_simple_extent_ndims(space));
  PetscCheck(nd <= MAP_MAX_NDIM, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: %s has %d dimensions (at most %d)", s->path, dname, nd,
             MAP_MAX_NDIM);
  MapCallHDF5(H5Sget_simple_extent_dims(space, dims, NULL));
  for (int k = 0; k < nd; k++) {
    shape[k] = (int64_t)dims[k];
    numel *= shape[k];
  }
  *ndim = nd;
  PetscCall(PetscMalloc1(numel + 1, data));
  if (numel) MapCallHDF5(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *data));
  {
    char *want = NULL, got[24];
    PetscCall(MapH5ReadStringAttr(d, MAP_STORE_ATTR_CHECKSUM, &want));
    MapChecksumFormat(MapChecksum64(*data, sizeof(float), numel, 0), got);
    if (want && strcmp(want, got)) {
      MapCallHDF5(H5Sclose(space));
      MapCallHDF5(H5Dclose(d));
      PetscCall(PetscFree(*data));
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: %s does not match its checksum (recorded %s, read %s): the store was changed or damaged after import",
              s->path, dname, want, got);
    }
    PetscCall(PetscFree(want));
  }
  MapCallHDF5(H5Sclose(space));
  MapCallHDF5(H5Dclose(d));
  PetscCall(PetscLogEventEnd(MAP_EVENT_StoreRead, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

/*@
  MapStoreGetAttribute - a root string attribute (provenance, e.g. "mapmerge_version",
  "creation_time", "pretrained.sha256"), or *value = NULL when absent.

  Not collective. Free with PetscFree.
@*/
PetscErrorCode MapStoreGetAttribute(MapStore s, const char *key, char **value)
{
  PetscFunctionBegin;
  PetscCall(MapH5ReadStringAttr(s->file, key, value));
  PetscFunctionReturn(0);
}
