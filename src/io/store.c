/* MapStore, read side: open a store written by MapStoreImport (F32, BF16 or F16), its index, dtype,
 * checksums and metadata (store_view.c describes it; shard, private and attribute reads: store_read.c). */
#include "storeimpl.h"

int MapStoreTensorAt(int n, const MapStoreTensor *t, int64_t j)
{
  int a = 0, b = n - 1;
  while (a < b) { /* last tensor with offset <= j */
    int m = (a + b + 1) / 2;
    if (t[m].offset <= j) a = m;
    else b = m - 1;
  }
  return a;
}

/* ---- open ---- */

/* Reads a 1-D numeric dataset of n entries of the given memory type. */
static PetscErrorCode StoreReadIndexArray(MapStore s, hid_t g, const char *name, hid_t mtype, int ndim, const hsize_t *expect,
                                          void *buf)
{
  hid_t   dset, space;
  hsize_t dims[2] = {0, 0};
  htri_t  ex;

  PetscFunctionBegin;
  MapCallHDF5(ex = H5Lexists(g, name, H5P_DEFAULT));
  PetscCheck(ex > 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: dataset /tensors/%s is missing (corrupt or not a mapmerge store)",
             s->path, name);
  MapCallHDF5(dset = H5Dopen2(g, name, H5P_DEFAULT));
  MapCallHDF5(space = H5Dget_space(dset));
  PetscCheck(H5Sget_simple_extent_ndims(space) == ndim, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "store %s: /tensors/%s has %d dimensions, expected %d", s->path, name, H5Sget_simple_extent_ndims(space), ndim);
  MapCallHDF5(H5Sget_simple_extent_dims(space, dims, NULL));
  for (int d = 0; d < ndim; d++)
    PetscCheck(dims[d] == expect[d], PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: /tensors/%s dimension %d is %llu, expected %llu",
               s->path, name, d, (unsigned long long)dims[d], (unsigned long long)expect[d]);
  if (expect[0]) MapCallHDF5(H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
  MapCallHDF5(H5Sclose(space));
  MapCallHDF5(H5Dclose(dset));
  PetscFunctionReturn(0);
}

static PetscErrorCode StoreRequire(MapStore s, const char *name)
{
  htri_t ex;

  PetscFunctionBegin;
  MapCallHDF5(ex = H5Lexists(s->file, name, H5P_DEFAULT));
  PetscCheck(ex > 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: %s is missing (corrupt or not a mapmerge store)", s->path,
             name);
  PetscFunctionReturn(0);
}

static void MapF32ToBF16Array(const float *x, int64_t n, uint16_t *h)
{
  for (int64_t j = 0; j < n; j++) h[j] = MapF32ToBF16(x[j]);
}

static const MapStoreDTypeInfo map_store_dtypes[MAP_DTYPE_BF16 + 1] = {
  [MAP_DTYPE_F32]  = {"F32", NULL, "IEEE F32", NULL, NULL, NULL, sizeof(float), 0, NULL, NULL},
  [MAP_DTYPE_BF16] = {"BF16", "bf16", "uint16 datasets with attribute dtype = bf16", "bf16_max_abs_error", "bf16_max_rel_error",
                      "2^-8/(1+2^-8) = 1/257", sizeof(uint16_t), 0x7f80u, MapF32ToBF16Array, MapBF16ToF32},
  [MAP_DTYPE_F16]  = {"F16", "f16", "IEEE binary16 datasets (h5py: float16) with attribute dtype = f16", "f16_max_abs_error",
                      "f16_max_rel_error", "2^-11/(1+2^-11) = 1/2049; values below 2^-14 become subnormal or 0 and lose more",
                      sizeof(uint16_t), 0x7c00u, MapF32ToF16Array, MapF16ToF32},
};

/* The storage dtypes in -map_store_dtype's order (f32, bf16, f16). */
static const MapDType map_store_dtype_order[MAP_STORE_NUM_DTYPES] = {MAP_DTYPE_F32, MAP_DTYPE_BF16, MAP_DTYPE_F16};

MapDType MapStoreDTypeFromOption(PetscInt i) { return i >= 0 && i < MAP_STORE_NUM_DTYPES ? map_store_dtype_order[i] : MAP_DTYPE_OTHER; }

const MapStoreDTypeInfo *MapStoreDTypeGetInfo(MapDType dt)
{
  return dt == MAP_DTYPE_F32 || dt == MAP_DTYPE_BF16 || dt == MAP_DTYPE_F16 ? &map_store_dtypes[dt] : NULL;
}

PetscErrorCode MapStoreDTypeH5Type(MapDType dt, PetscBool file, hid_t *type)
{
  PetscFunctionBegin;
  switch (dt) {
  case MAP_DTYPE_F32:
    MapCallHDF5(*type = H5Tcopy(file ? H5T_IEEE_F32LE : H5T_NATIVE_FLOAT));
    break;
  case MAP_DTYPE_BF16:
    MapCallHDF5(*type = H5Tcopy(file ? H5T_STD_U16LE : H5T_NATIVE_UINT16));
    break;
  case MAP_DTYPE_F16:
    /* HDF5 1.10 predefines no half type: binary16 is F32 narrowed to sign bit 15, exponent bits
       10-14 (bias 15), mantissa bits 0-9, exactly h5py's float16, so numpy reads it natively */
    MapCallHDF5(*type = H5Tcopy(file ? H5T_IEEE_F32LE : H5T_NATIVE_FLOAT));
    MapCallHDF5(H5Tset_fields(*type, 15, 10, 5, 0, 10));
    MapCallHDF5(H5Tset_size(*type, 2));
    MapCallHDF5(H5Tset_ebias(*type, 15));
    break;
  default:
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "storage dtype %d is not one of F32 (%d), BF16 (%d), F16 (%d)", (int)dt,
            (int)MAP_DTYPE_F32, (int)MAP_DTYPE_BF16, (int)MAP_DTYPE_F16);
  }
  PetscFunctionReturn(0);
}

/* The storage dtype of one vector dataset: the HDF5 type of one of the dtypes, with that dtype's
   mark (none for F32). Anything else, e.g. a uint16 dataset with another or no mark, or a half
   float marked bf16, is refused. */
static PetscErrorCode StoreDatasetDType(MapStore s, hid_t dset, const char *name, MapDType *dt)
{
  hid_t     type;
  char     *mark  = NULL;
  PetscBool found = PETSC_FALSE;

  PetscFunctionBegin;
  MapCallHDF5(type = H5Dget_type(dset));
  PetscCall(MapH5ReadStringAttr(dset, MAP_STORE_ATTR_DTYPE, &mark));
  for (int d = 0; d < MAP_STORE_NUM_DTYPES && !found; d++) {
    const MapStoreDTypeInfo *info = &map_store_dtypes[map_store_dtype_order[d]];
    hid_t                    want;
    htri_t                   eq;
    if (info->mark ? !mark || strcmp(mark, info->mark) : mark != NULL) continue;
    PetscCall(MapStoreDTypeH5Type(map_store_dtype_order[d], PETSC_TRUE, &want));
    MapCallHDF5(eq = H5Tequal(type, want));
    MapCallHDF5(H5Tclose(want));
    if (eq > 0) {
      *dt   = map_store_dtype_order[d];
      found = PETSC_TRUE;
    }
  }
  if (!found) {
    H5T_class_t cls  = H5Tget_class(type);
    size_t      size = H5Tget_size(type); /* 0 on failure: only used in the message */
    char        got[64];
    PetscCall(PetscSNPrintf(got, sizeof(got), "%s of %zu bytes", cls == H5T_FLOAT ? "floats" : cls == H5T_INTEGER ? "integers"
                                                                                                                  : "values",
                            size));
    MapCallHDF5(H5Tclose(type));
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
            "store %s: %s holds %s with attribute %s = %s%s%s; expected F32 without it, uint16 with %s = \"%s\", or IEEE binary16 with %s = \"%s\" (corrupt, or not written by mapmerge)",
            s->path, name, got, MAP_STORE_ATTR_DTYPE, mark ? "\"" : "", mark ? mark : "(none)", mark ? "\"" : "",
            MAP_STORE_ATTR_DTYPE, map_store_dtypes[MAP_DTYPE_BF16].mark, MAP_STORE_ATTR_DTYPE, map_store_dtypes[MAP_DTYPE_F16].mark);
  }
  MapCallHDF5(H5Tclose(type));
  PetscCall(PetscFree(mark));
  PetscFunctionReturn(0);
}

/* /pretrained and /task_vectors share one storage dtype, which the root attribute storage_dtype
   (when present: stores before 16-bit support lack it) names. */
static PetscErrorCode StoreReadDType(MapStore s)
{
  MapDType dtv;
  char    *root = NULL;

  PetscFunctionBegin;
  PetscCall(StoreDatasetDType(s, s->pretrained, "/pretrained", &s->dtype));
  PetscCall(StoreDatasetDType(s, s->task_vectors, "/task_vectors", &dtv));
  PetscCheck(dtv == s->dtype, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: /pretrained is %s but /task_vectors is %s (corrupt)", s->path,
             MapDTypeName(s->dtype), MapDTypeName(dtv));
  PetscCall(MapH5ReadStringAttr(s->file, "storage_dtype", &root));
  PetscCheck(!root || !strcmp(root, MapDTypeName(s->dtype)), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "store %s: root attribute storage_dtype is \"%s\" but /pretrained and /task_vectors are %s (corrupt)", s->path, root,
             MapDTypeName(s->dtype));
  PetscCall(PetscFree(root));
  PetscFunctionReturn(0);
}

static PetscErrorCode StoreParseChecksum(MapStore s, const char *dset, const char *text, uint64_t *sum)
{
  char *end;

  PetscFunctionBegin;
  PetscCheck(!strncmp(text, "map64:", 6) && strlen(text) >= 22, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "store %s: %s attribute %s is \"%.40s\", expected map64:<16 hex digits>", s->path, dset, MAP_STORE_ATTR_CHECKSUM, text);
  *sum = strtoull(text + 6, &end, 16);
  PetscCheck(end == text + 22, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: %s attribute %s is \"%.40s\", expected map64:<16 hex digits>",
             s->path, dset, MAP_STORE_ATTR_CHECKSUM, text);
  PetscFunctionReturn(0);
}

/* the checksums recorded at import (none in older stores; both datasets or neither) */
static PetscErrorCode StoreReadChecksums(MapStore s)
{
  char *pre = NULL, *tv = NULL, *p;

  PetscFunctionBegin;
  PetscCall(MapH5ReadStringAttr(s->pretrained, MAP_STORE_ATTR_CHECKSUM, &pre));
  PetscCall(MapH5ReadStringAttr(s->task_vectors, MAP_STORE_ATTR_CHECKSUM, &tv));
  PetscCheck(!pre == !tv, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: %s has a checksum but %s has none (corrupt)", s->path,
             pre ? "/pretrained" : "/task_vectors", pre ? "/task_vectors" : "/pretrained");
  if (pre) {
    s->has_checksums = PETSC_TRUE;
    PetscCall(StoreParseChecksum(s, "/pretrained", pre, &s->csum_pre));
    PetscCall(PetscMalloc1(s->T, &s->csum_tv));
    p = tv;
    for (int t = 0; t < s->T; t++) {
      char *comma = strchr(p, ',');
      PetscCheck(!comma == (t == s->T - 1), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: /task_vectors attribute %s does not hold %d checksums",
                 s->path, MAP_STORE_ATTR_CHECKSUM, s->T);
      if (comma) *comma = 0;
      PetscCall(StoreParseChecksum(s, "/task_vectors", p, &s->csum_tv[t]));
      p = comma + 1;
    }
  }
  PetscCall(PetscFree(pre));
  PetscCall(PetscFree(tv));
  PetscFunctionReturn(0);
}

/* the root attributes format and format_version, /pretrained and /task_vectors (dtype, P, T), the task
   names and the checksums */
static PetscErrorCode StoreReadVectors(MapStore s)
{
  hid_t   space;
  hsize_t dims[2];
  char   *fmt = NULL;

  PetscFunctionBegin;
  PetscCall(MapH5ReadStringAttr(s->file, "format", &fmt));
  PetscCheck(fmt && !strcmp(fmt, MAP_STORE_FORMAT), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "store %s: root attribute format is %s%s%s, expected \"%s\" (not a mapmerge store)", s->path, fmt ? "\"" : "",
             fmt ? fmt : "missing", fmt ? "\"" : "", MAP_STORE_FORMAT);
  PetscCall(PetscFree(fmt));
  PetscCall(MapH5ReadStringAttr(s->file, "format_version", &fmt));
  PetscCheck(fmt && !strcmp(fmt, MAP_STORE_FORMAT_VERSIONS_READ), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "store %s: format_version is %s%s%s, but this mapmerge (%s) reads version %s only: %s", s->path, fmt ? "\"" : "",
             fmt ? fmt : "missing", fmt ? "\"" : "", MAPMERGE_VERSION, MAP_STORE_FORMAT_VERSIONS_READ,
             fmt ? "written by a newer mapmerge? import it again with this one" : "not a complete mapmerge store");
  PetscCall(PetscFree(fmt));
  PetscCall(StoreRequire(s, "/pretrained"));
  PetscCall(StoreRequire(s, "/task_vectors"));
  PetscCall(StoreRequire(s, "/tasks"));
  PetscCall(StoreRequire(s, "/tensors"));
  MapCallHDF5(s->pretrained = H5Dopen2(s->file, "/pretrained", H5P_DEFAULT));
  MapCallHDF5(s->task_vectors = H5Dopen2(s->file, "/task_vectors", H5P_DEFAULT));
  PetscCall(StoreReadDType(s));
  MapCallHDF5(space = H5Dget_space(s->pretrained));
  PetscCheck(H5Sget_simple_extent_ndims(space) == 1, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: /pretrained must be 1-D",
             s->path);
  MapCallHDF5(H5Sget_simple_extent_dims(space, dims, NULL));
  MapCallHDF5(H5Sclose(space));
  s->P = (int64_t)dims[0];
  MapCallHDF5(space = H5Dget_space(s->task_vectors));
  PetscCheck(H5Sget_simple_extent_ndims(space) == 2, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: /task_vectors must be 2-D [T,P]",
             s->path);
  MapCallHDF5(H5Sget_simple_extent_dims(space, dims, NULL));
  MapCallHDF5(H5Sclose(space));
  PetscCheck((int64_t)dims[1] == s->P, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "store %s: /task_vectors has %llu columns but /pretrained has P = %lld", s->path, (unsigned long long)dims[1],
             (long long)s->P);
  PetscCheck(dims[0] >= 1 && dims[0] < 100000, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: /task_vectors has %llu rows (tasks)",
             s->path, (unsigned long long)dims[0]);
  s->T = (int)dims[0];
  PetscCall(MapH5ReadStrings(s->file, "/tasks", s->path, s->T, &s->tasks));
  for (int t = 0; t < s->T; t++) /* a repeated name would give one task's metrics to another */
    for (int u = 0; u < t; u++)
      PetscCheck(strcmp(s->tasks[t], s->tasks[u]), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
                 "store %s: /tasks names task %s twice (rows %d and %d): corrupt, or not written by mapmerge import", s->path, s->tasks[t], u, t);
  PetscCall(StoreReadChecksums(s));
  PetscFunctionReturn(0);
}

/* /tensors: the name, dtype, shape, offset and numel of each tensor, checked to tile [0, P) in order */
static PetscErrorCode StoreReadTensors(MapStore s)
{
  hid_t    space, g;
  hsize_t  dims[2];
  char   **names = NULL, **dtypes = NULL;
  int     *ndim;
  int64_t *shape, *offset, *numel, n;

  PetscFunctionBegin;
  MapCallHDF5(g = H5Gopen2(s->file, "/tensors", H5P_DEFAULT));
  {
    hid_t d;
    PetscCall(StoreRequire(s, "/tensors/name"));
    MapCallHDF5(d = H5Dopen2(g, "name", H5P_DEFAULT));
    MapCallHDF5(space = H5Dget_space(d));
    PetscCheck(H5Sget_simple_extent_ndims(space) == 1, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: /tensors/name must be 1-D",
               s->path);
    MapCallHDF5(H5Sget_simple_extent_dims(space, dims, NULL));
    MapCallHDF5(H5Sclose(space));
    MapCallHDF5(H5Dclose(d));
  }
  n = (int64_t)dims[0];
  PetscCheck(n >= 1 && n < (1 << 30), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: /tensors/name has %lld entries", s->path,
             (long long)n);
  s->ntensors = (int)n;
  PetscCall(MapH5ReadStrings(g, "name", s->path, n, &names));
  PetscCall(StoreRequire(s, "/tensors/dtype"));
  PetscCall(MapH5ReadStrings(g, "dtype", s->path, n, &dtypes));
  PetscCall(PetscMalloc4(n, &ndim, n * MAP_MAX_NDIM, &shape, n, &offset, n, &numel));
  dims[0] = (hsize_t)n;
  dims[1] = MAP_MAX_NDIM;
  PetscCall(StoreReadIndexArray(s, g, "ndim", H5T_NATIVE_INT, 1, dims, ndim));
  PetscCall(StoreReadIndexArray(s, g, "shape", H5T_NATIVE_INT64, 2, dims, shape));
  PetscCall(StoreReadIndexArray(s, g, "offset", H5T_NATIVE_INT64, 1, dims, offset));
  PetscCall(StoreReadIndexArray(s, g, "numel", H5T_NATIVE_INT64, 1, dims, numel));
  MapCallHDF5(H5Gclose(g));

  PetscCall(PetscCalloc1(n, &s->tensors));
  int64_t next = 0;
  for (int64_t i = 0; i < n; i++) {
    MapStoreTensor *t  = &s->tensors[i];
    int64_t         ne = 1;
    PetscCheck(strlen(names[i]) < MAP_NAME_LEN && strlen(dtypes[i]) < sizeof(t->dtype), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
               "store %s: tensor %lld: name or dtype too long", s->path, (long long)i);
    PetscCall(PetscStrncpy(t->name, names[i], sizeof(t->name)));
    PetscCall(PetscStrncpy(t->dtype, dtypes[i], sizeof(t->dtype)));
    PetscCheck(ndim[i] >= 0 && ndim[i] <= MAP_MAX_NDIM, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
               "store %s: tensor %s has ndim %d (0..%d allowed)", s->path, t->name, ndim[i], MAP_MAX_NDIM);
    t->ndim = ndim[i];
    for (int d = 0; d < t->ndim; d++) {
      t->shape[d] = shape[i * MAP_MAX_NDIM + d];
      PetscCheck(t->shape[d] >= 0 && (t->shape[d] == 0 || ne <= INT64_MAX / t->shape[d]), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
                 "store %s: tensor %s has invalid shape entry %lld", s->path, t->name, (long long)t->shape[d]);
      ne *= t->shape[d];
    }
    t->offset = offset[i];
    t->numel  = numel[i];
    PetscCheck(t->numel == ne && t->offset == next, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
               "store %s: tensor %s: offset %lld and numel %lld, expected offset %lld and numel %lld (product of its shape)", s->path,
               t->name, (long long)t->offset, (long long)t->numel, (long long)next, (long long)ne);
    next += ne;
  }
  PetscCheck(next == s->P, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: the tensors hold %lld parameters but /pretrained has P = %lld",
             s->path, (long long)next, (long long)s->P);
  PetscCall(PetscFree4(ndim, shape, offset, numel));
  PetscCall(MapFreeList((int)n, &names));
  PetscCall(MapFreeList((int)n, &dtypes));
  PetscFunctionReturn(0);
}

/* The index: sizes, task names, tensor table; validated (every rank reads the same small datasets). */
static PetscErrorCode StoreReadIndex(MapStore s)
{
  PetscFunctionBegin;
  PetscCall(StoreReadVectors(s));
  PetscCall(StoreReadTensors(s));
  PetscFunctionReturn(0);
}

/*@
  MapStoreOpen - opens a store read-only and reads its index (tasks, tensor table, P) and the
  storage dtype of its vectors (F32; BF16: uint16 datasets marked dtype = "bf16"; F16: IEEE binary16
  datasets marked dtype = "f16").

  Collective on comm. Errors name the file and what is missing or inconsistent when the file is
  not a store, is truncated or corrupt (including a dtype mark that is missing, unknown, or
  contradicts the root attribute storage_dtype).
@*/
PetscErrorCode MapStoreOpen(MPI_Comm comm, const char *path, MapStore *store)
{
  MapStore       s;
  hid_t          fapl;
  htri_t         ish5;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCheck(path && path[0], comm, PETSC_ERR_ARG_NULL, "no store given (-map_store PATH)");
  MapCallHDF5(H5Eset_auto2(H5E_DEFAULT, NULL, NULL)); /* MapCallHDF5 prints the stack when it matters */
  PetscCall(PetscLogEventBegin(MAP_EVENT_StoreRead, 0, 0, 0, 0));
  PetscCall(PetscNew(&s));
  s->file = s->pretrained = s->task_vectors = -1;
  PetscCallMPI(MPI_Comm_dup(comm, &s->comm));
  PetscCall(PetscStrncpy(s->path, path, sizeof(s->path)));
  {
    const char *kind = MapNonRegularKind(path); /* a FIFO would block fopen (and H5Fopen) on every rank */
    MapCheckAll(comm, !kind, PETSC_ERR_FILE_OPEN, "store %s is %s; mapmerge reads only regular files", path, kind);
    FILE *f  = fopen(path, "rb");
    int   ok = f != NULL;
    if (f) fclose(f);
    MapCheckAll(comm, ok, PETSC_ERR_FILE_OPEN, "store %s: cannot open: %s", path, strerror(errno));
  }
  ish5 = H5Fis_hdf5(path);
  MapCheckAll(comm, ish5 > 0, PETSC_ERR_FILE_UNEXPECTED, "store %s: not an HDF5 file (not a mapmerge store, or corrupt)", path);
  MapCallHDF5(fapl = H5Pcreate(H5P_FILE_ACCESS));
  MapCallHDF5(H5Pset_fapl_mpio(fapl, s->comm, MPI_INFO_NULL));
  s->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  MapCallHDF5(H5Pclose(fapl));
  MapCheckAll(comm, s->file >= 0, PETSC_ERR_FILE_UNEXPECTED, "store %s: HDF5 cannot open it (truncated or corrupt?)", path);
  /* a corrupt index must fail on all ranks together, so catch the error and agree on it */
  ierr = StoreReadIndex(s);
  MapCheckAll(comm, ierr == 0, PETSC_ERR_FILE_UNEXPECTED, "store %s: the index could not be read (see the message above)", path);
  PetscCall(MapLayoutCreate(s->comm, s->P, &s->layout));
  PetscCall(PetscLogEventEnd(MAP_EVENT_StoreRead, 0, 0, 0, 0));
  *store = s;
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreDestroy(MapStore *store)
{
  MapStore s;

  PetscFunctionBegin;
  if (!store || !*store) PetscFunctionReturn(0);
  s = *store;
  if (s->pretrained >= 0) MapCallHDF5(H5Dclose(s->pretrained));
  if (s->task_vectors >= 0) MapCallHDF5(H5Dclose(s->task_vectors));
  if (s->file >= 0) MapCallHDF5(H5Fclose(s->file));
  PetscCall(MapFreeList(s->T, &s->tasks));
  PetscCall(PetscFree(s->tensors));
  PetscCall(PetscFree(s->csum_tv));
  PetscCallMPI(MPI_Comm_free(&s->comm));
  PetscCall(PetscFree(*store));
  PetscFunctionReturn(0);
}

/* ---- accessors (not collective) ---- */

PetscErrorCode MapStoreGetSizes(MapStore s, int64_t *P, int *T, int *ntensors)
{
  PetscFunctionBegin;
  if (P) *P = s->P;
  if (T) *T = s->T;
  if (ntensors) *ntensors = s->ntensors;
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreGetTaskName(MapStore s, int t, const char **name)
{
  PetscFunctionBegin;
  PetscCheck(t >= 0 && t < s->T, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "store %s: task index %d out of range [0,%d)", s->path, t, s->T);
  *name = s->tasks[t];
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreSelectPerTask(MapStore s, int T, const char *const *tasks, const char *option, int *n, char ***list)
{
  char **sel;

  PetscFunctionBegin;
  if (!*n || *n == T || *n != s->T) PetscFunctionReturn(0);
  PetscCall(PetscCalloc1(T + 1, &sel));
  for (int t = 0; t < T; t++) {
    int k;
    PetscCall(MapStoreFindTask(s, tasks[t], &k));
    PetscCall(PetscStrallocpy((*list)[k], &sel[t]));
  }
  PetscCall(PetscInfo(NULL, "%s: took the entries of the %d selected tasks from the %d store tasks\n", option, T, s->T));
  PetscCall(MapFreeList(*n, list));
  *list = sel;
  *n    = T;
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreFindTask(MapStore s, const char *name, int *t)
{
  char list[4096] = "";

  PetscFunctionBegin;
  for (int i = 0; i < s->T; i++) {
    if (!strcmp(s->tasks[i], name)) {
      *t = i;
      PetscFunctionReturn(0);
    }
    size_t l = strlen(list);
    snprintf(list + l, sizeof(list) - l, "%s%s", i ? "," : "", s->tasks[i]);
  }
  SETERRQ(PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "store %s has no task \"%s\"; its tasks are: %s", s->path, name, list);
}

PetscErrorCode MapStoreGetTensor(MapStore s, int i, const MapStoreTensor **t)
{
  PetscFunctionBegin;
  PetscCheck(i >= 0 && i < s->ntensors, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "store %s: tensor index %d out of range [0,%d)", s->path,
             i, s->ntensors);
  *t = &s->tensors[i];
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreFindTensor(MapStore s, const char *name, const MapStoreTensor **t)
{
  PetscFunctionBegin;
  for (int i = 0; i < s->ntensors; i++) {
    if (!strcmp(s->tensors[i].name, name)) {
      *t = &s->tensors[i];
      PetscFunctionReturn(0);
    }
  }
  SETERRQ(PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "store %s has no merged tensor \"%s\"", s->path, name);
}

PetscErrorCode MapStoreGetPath(MapStore s, const char **path)
{
  PetscFunctionBegin;
  *path = s->path;
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreGetComm(MapStore s, MPI_Comm *comm)
{
  PetscFunctionBegin;
  *comm = s->comm;
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreGetLayout(MapStore s, MapLayout *layout)
{
  PetscFunctionBegin;
  *layout = s->layout;
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreGetDType(MapStore s, MapDType *dtype)
{
  PetscFunctionBegin;
  *dtype = s->dtype;
  PetscFunctionReturn(0);
}
