/* MapStore, write side: safetensors checkpoints -> parallel HDF5 store (docs/design.md §2).
 * Every rank reads only the byte ranges of its shard [lo,hi) of the flat parameter vector,
 * computes the task vectors, checks them, and writes with collective hyperslab I/O. */
#include "storeimportimpl.h"
#include <libgen.h>
#include <sys/statvfs.h>
#include <math.h>

/* Reads flat elements [j0, j0+n) of the merged vector from checkpoint c as F32. */
static PetscErrorCode ImportReadRange(Import *im, int c, int64_t j0, int64_t n, float *out)
{
  int64_t j = j0;
  int     k;

  PetscFunctionBegin;
  if (n <= 0) PetscFunctionReturn(0);
  k = MapStoreTensorAt(im->ntensors, im->tensors, j0);
  while (j < j0 + n) {
    while (im->tensors[k].offset + im->tensors[k].numel <= j) k++;
    int64_t s = j - im->tensors[k].offset, cnt = PetscMin(im->tensors[k].numel - s, j0 + n - j);
    PetscCall(MapSafetensorsReadF32(im->ck[c].st, im->ck[c].info[k], s, cnt, out + (j - j0)));
    j += cnt;
    k++;
  }
  PetscFunctionReturn(0);
}

typedef enum {
  BAD_SOURCE,      /* a NaN/Inf in a checkpoint */
  BAD_TASK_VECTOR, /* theta_task - theta_pre overflows F32 */
  BAD_ROUND        /* a finite F32 value that rounds to Inf in the 16-bit storage dtype */
} BadValueKind;

/* Error text for a non-finite value at flat index j of checkpoint c (or of its task vector). */
static void BadValueMessage(Import *im, int c, int64_t j, float v, BadValueKind kind, char *msg, size_t len)
{
  int                   k = MapStoreTensorAt(im->ntensors, im->tensors, j);
  const MapStoreTensor *t = &im->tensors[k];
  while (t->offset + t->numel <= j) t++;
  if (kind == BAD_TASK_VECTOR)
    snprintf(msg, len, "%s %s: tensor %s element %lld (flat parameter index %lld): task vector (task - pretrained) overflows F32", im->ck[c].label,
             im->ck[c].path, t->name, (long long)(j - t->offset), (long long)j);
  else if (kind == BAD_ROUND)
    snprintf(msg, len, "%s %s: tensor %s element %lld (flat parameter index %lld): %s %.9g overflows %s (-map_store_dtype %s)",
             im->ck[c].label, im->ck[c].path, t->name, (long long)(j - t->offset), (long long)j, c ? "task vector" : "value", (double)v,
             MapDTypeName(im->dtype), MapStoreDTypeGetInfo(im->dtype)->mark);
  else
    snprintf(msg, len, "%s %s: tensor %s element %lld (flat parameter index %lld) is %s", im->ck[c].label,
             MapStoreImportFileOf_Private(&im->ck[c], im->ck[c].info[t - im->tensors]), t->name, (long long)(j - t->offset), (long long)j,
             isnan(v) ? "NaN" : "Inf");
}

/* Rounds x[n] to the 16-bit dtype `dt` (nearest even) into h and raises err[0] (max |h - x|) and
   err[1] (max |h - x| / |x|, x != 0), both exact in double. Returns the first index whose finite
   value rounded to Inf, or -1. */
static int64_t RoundMeasuredGeneric(const MapStoreDTypeInfo *dt, const float *x, int64_t n, uint16_t *h, double err[2])
{
  dt->round(x, n, h);
  for (int64_t j = 0; j < n; j++) {
    double d;
    if ((h[j] & dt->expmask) == dt->expmask) return j; /* exponent all ones: Inf (x is finite here) */
    d = fabs((double)dt->widen(h[j]) - (double)x[j]);
    if (d > err[0]) err[0] = d;
    if (x[j] != 0 && d / fabs((double)x[j]) > err[1]) err[1] = d / fabs((double)x[j]);
  }
  return -1;
}

#if defined(__x86_64__) && defined(__GNUC__)
  #include <immintrin.h>
/* The same for BF16, 16 values at a time (a BF16 store of an LLM spends most of its import here): the
   rounding is MapF32ToBF16's integer arithmetic (x is finite, so no NaN case), the errors the same
   double operations, and a maximum does not depend on the order it is taken in: the same bits as the
   generic loop, which also takes over at the first vector with an overflow, to find its index. */
__attribute__((target("avx2"))) static int64_t RoundMeasuredBF16_AVX2(const MapStoreDTypeInfo *dt, const float *x, int64_t n, uint16_t *h,
                                                                      double err[2])
{
  const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1), expo = _mm256_set1_epi32(0x7f800000);
  const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
  const __m256d absm = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL)), zero = _mm256_setzero_pd();
  __m256d       emax = _mm256_set1_pd(err[0]), rmax = _mm256_set1_pd(err[1]);
  int64_t       j = 0, bad = -1;
  double        lanes[4];

  for (; j + 16 <= n; j += 16) {
    __m256i r[2], over = _mm256_setzero_si256();
    __m256  xv[2], wv[2];
    for (int q = 0; q < 2; q++) {
      __m256i u  = _mm256_castps_si256(xv[q] = _mm256_loadu_ps(x + j + 8 * q));
      __m256i ru = _mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(u, 16), one)));
      over       = _mm256_or_si256(over, _mm256_cmpeq_epi32(_mm256_and_si256(ru, expo), expo));
      wv[q]      = _mm256_castsi256_ps(_mm256_and_si256(ru, high));
      r[q]       = _mm256_srli_epi32(ru, 16);
    }
    if (!_mm256_testz_si256(over, over)) break; /* the generic loop finds which */
    for (int q = 0; q < 4; q++) {
      __m128  xs = (q & 1) ? _mm256_extractf128_ps(xv[q / 2], 1) : _mm256_castps256_ps128(xv[q / 2]);
      __m128  ws = (q & 1) ? _mm256_extractf128_ps(wv[q / 2], 1) : _mm256_castps256_ps128(wv[q / 2]);
      __m256d xd = _mm256_cvtps_pd(xs), ax = _mm256_and_pd(xd, absm);
      __m256d d = _mm256_and_pd(_mm256_sub_pd(_mm256_cvtps_pd(ws), xd), absm);
      emax      = _mm256_max_pd(emax, d);
      /* x == 0 rounds to 0: its 0/0 is masked to 0, as the generic loop skips it */
      rmax = _mm256_max_pd(rmax, _mm256_and_pd(_mm256_div_pd(d, ax), _mm256_cmp_pd(ax, zero, _CMP_NEQ_OQ)));
    }
    _mm256_storeu_si256((__m256i *)(h + j), _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xD8));
  }
  _mm256_storeu_pd(lanes, emax);
  for (int q = 0; q < 4; q++) err[0] = lanes[q] > err[0] ? lanes[q] : err[0];
  _mm256_storeu_pd(lanes, rmax);
  for (int q = 0; q < 4; q++) err[1] = lanes[q] > err[1] ? lanes[q] : err[1];
  if (j < n) {
    bad = RoundMeasuredGeneric(dt, x + j, n - j, h + j, err);
    if (bad >= 0) bad += j;
  }
  return bad;
}
#endif

static int64_t RoundMeasured(MapDType dtype, const float *x, int64_t n, uint16_t *h, double err[2])
{
  const MapStoreDTypeInfo *dt = MapStoreDTypeGetInfo(dtype);
#if defined(__x86_64__) && defined(__GNUC__)
  static int have = -1;
  if (have < 0) have = __builtin_cpu_supports("avx2") ? 1 : 0;
  if (dtype == MAP_DTYPE_BF16 && have) return RoundMeasuredBF16_AVX2(dt, x, n, h, err);
#endif
  return RoundMeasuredGeneric(dt, x, n, h, err);
}

/* /pretrained [P] and /task_vectors [T,P] (chunks [T, chunk]) in the storage dtype; BF16 is
   uint16 marked dtype = "bf16" (HDF5 1.10 has no bfloat16 type), F16 an IEEE binary16 type marked
   dtype = "f16" (the mark makes the intent explicit, as for BF16). */
static PetscErrorCode ImportCreateVectors(Import *im, hid_t file, int64_t chunk, hid_t *dpre, hid_t *dtv)
{
  hid_t       space, dcpl, ftype;
  hsize_t     dims[2], cdims[2];
  const char *mark = MapStoreDTypeGetInfo(im->dtype)->mark;

  PetscFunctionBegin;
  PetscCall(MapStoreDTypeH5Type(im->dtype, PETSC_TRUE, &ftype));
  dims[0] = (hsize_t)im->P;
  MapCallHDF5(space = H5Screate_simple(1, dims, NULL));
  MapCallHDF5(*dpre = H5Dcreate2(file, "pretrained", ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  MapCallHDF5(H5Sclose(space));
  dims[0]  = (hsize_t)im->T;
  dims[1]  = (hsize_t)im->P;
  cdims[0] = (hsize_t)im->T;
  cdims[1] = (hsize_t)PetscMin(im->P, chunk);
  MapCallHDF5(space = H5Screate_simple(2, dims, NULL));
  MapCallHDF5(dcpl = H5Pcreate(H5P_DATASET_CREATE));
  MapCallHDF5(H5Pset_chunk(dcpl, 2, cdims));
  /* every element is written below: no zero fill first (parallel HDF5 would write the whole [T,P] twice) */
  MapCallHDF5(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER));
  MapCallHDF5(*dtv = H5Dcreate2(file, "task_vectors", ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
  MapCallHDF5(H5Pclose(dcpl));
  MapCallHDF5(H5Sclose(space));
  MapCallHDF5(H5Tclose(ftype));
  if (mark) {
    PetscCall(MapH5WriteStringAttr(*dpre, MAP_STORE_ATTR_DTYPE, mark));
    PetscCall(MapH5WriteStringAttr(*dtv, MAP_STORE_ATTR_DTYPE, mark));
  }
  PetscFunctionReturn(0);
}

/* 16-bit storage: rounds a checked block (pre[n], tv[T*n]) into pre16/tv16 and raises im->err.
   Returns 0 with msg set when a value overflows the storage dtype. */
static int ImportRoundBlock(Import *im, int64_t j0, int64_t n, const float *pre, const float *tv, uint16_t *pre16, uint16_t *tv16,
                            char *msg, size_t len)
{
  for (int c = 0; c <= im->T; c++) {
    const float *x   = c ? tv + (size_t)(c - 1) * (size_t)n : pre;
    uint16_t    *h   = c ? tv16 + (size_t)(c - 1) * (size_t)n : pre16;
    int64_t      bad = RoundMeasured(im->dtype, x, n, h, im->err[c ? 1 : 0]);
    if (bad >= 0) {
      BadValueMessage(im, c, j0 + bad, x[bad], BAD_ROUND, msg, len);
      return 0;
    }
  }
  return 1;
}

/* 16-bit storage: the largest rounding errors over all ranks, as attributes of the two datasets. */
static PetscErrorCode ImportRecordErrors(Import *im, hid_t dpre, hid_t dtv)
{
  double                   all[2][2];
  const MapStoreDTypeInfo *dt = MapStoreDTypeGetInfo(im->dtype);

  PetscFunctionBegin;
  PetscCallMPI(MPI_Allreduce(im->err, all, 4, MPI_DOUBLE, MPI_MAX, im->comm));
  PetscCall(PetscArraycpy(&im->err[0][0], &all[0][0], 4));
  PetscCall(MapH5WriteDoubleAttr(dpre, dt->maxabs, im->err[0][0]));
  PetscCall(MapH5WriteDoubleAttr(dpre, dt->maxrel, im->err[0][1]));
  PetscCall(MapH5WriteDoubleAttr(dtv, dt->maxabs, im->err[1][0]));
  PetscCall(MapH5WriteDoubleAttr(dtv, dt->maxrel, im->err[1][1]));
  PetscFunctionReturn(0);
}

/* the checksums of /pretrained and of each /task_vectors row, summed over the ranks, as attributes */
static PetscErrorCode ImportRecordChecksums(Import *im, hid_t dpre, hid_t dtv)
{
  char *text, one[24];

  PetscFunctionBegin;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, im->csum, im->T + 1, MPI_UINT64_T, MPI_SUM, im->comm));
  MapChecksumFormat(im->csum[0], one);
  PetscCall(MapH5WriteStringAttr(dpre, MAP_STORE_ATTR_CHECKSUM, one));
  PetscCall(PetscCalloc1((size_t)im->T * 24 + 1, &text));
  for (int t = 0; t < im->T; t++) {
    MapChecksumFormat(im->csum[t + 1], one);
    if (t) strcat(text, ",");
    strcat(text, one);
  }
  PetscCall(MapH5WriteStringAttr(dtv, MAP_STORE_ATTR_CHECKSUM, text));
  PetscCall(PetscFree(text));
  PetscFunctionReturn(0);
}

/* One block [j0, j0+n) of this rank: the pretrained values and the T task vectors (read, checked for
   NaN/Inf, subtracted in F32, checked for overflow), rounded to pre16/tv16 for 16-bit storage (pre16
   NULL: F32). *ok = 0 with msg set on the first bad value. */
static PetscErrorCode ImportReadBlock(Import *im, int64_t j0, int64_t n, float *pre, float *tv, uint16_t *pre16, uint16_t *tv16, int *ok,
                                      char *msg, size_t len)
{
  int64_t bad;

  PetscFunctionBegin;
  *ok = 1;
  PetscCall(ImportReadRange(im, 0, j0, n, pre));
  bad = MapFirstNonFiniteF32(pre, n);
  if (bad >= 0) {
    *ok = 0;
    BadValueMessage(im, 0, j0 + bad, pre[bad], BAD_SOURCE, msg, len);
  }
  for (int t = 0; *ok && t < im->T; t++) {
    float *x = tv + (size_t)t * (size_t)n;
    int    overflow;
    PetscCall(ImportReadRange(im, t + 1, j0, n, x));
    bad = MapSubtractFiniteF32(x, pre, n, &overflow); /* the task's values, then theta_task - theta_pre */
    if (bad >= 0) {
      *ok = 0;
      BadValueMessage(im, t + 1, j0 + bad, x[bad], overflow ? BAD_TASK_VECTOR : BAD_SOURCE, msg, len);
    }
  }
  if (*ok && pre16) *ok = ImportRoundBlock(im, j0, n, pre, tv, pre16, tv16, msg, len);
  PetscFunctionReturn(0);
}

/* /pretrained and /task_vectors, block by block: read, check, subtract (in F32), round to the
   storage dtype, write collectively. */
static PetscErrorCode ImportWriteVectors(Import *im, hid_t file, hid_t dxpl, int64_t block, int64_t chunk)
{
  MapLayout lay;
  hid_t     dpre = -1, dtv = -1, fpre, ftv, mpre, mtv; /* set by ImportCreateVectors (GCC cannot see it through PetscCall) */
  float    *pre, *tv;
  uint16_t *pre16 = NULL, *tv16 = NULL;
  PetscBool half  = im->dtype != MAP_DTYPE_F32 ? PETSC_TRUE : PETSC_FALSE;
  size_t    esize = MapStoreDTypeGetInfo(im->dtype)->size;
  hid_t     mtype;
  int64_t   nloc, nblk, maxblk, nbuf;
  char      msg[1024] = "";

  PetscFunctionBegin;
  PetscCall(MapLayoutCreate(im->comm, im->P, &lay));
  PetscCall(ImportCreateVectors(im, file, chunk, &dpre, &dtv));
  PetscCall(MapStoreDTypeH5Type(im->dtype, PETSC_FALSE, &mtype));
  nloc = lay.hi - lay.lo;
  nblk = (nloc + block - 1) / block;
  nbuf = PetscMin(nloc, block);
  PetscCallMPI(MPI_Allreduce(&nblk, &maxblk, 1, MPI_INT64_T, MPI_MAX, im->comm));
  PetscCall(PetscMalloc2(nbuf + 1, &pre, (size_t)im->T * (size_t)nbuf + 1, &tv));
  if (half) PetscCall(PetscMalloc2(nbuf + 1, &pre16, (size_t)im->T * (size_t)nbuf + 1, &tv16));
  MapCallHDF5(fpre = H5Dget_space(dpre));
  MapCallHDF5(ftv = H5Dget_space(dtv));
  double t0 = MapWallTime();
  for (int64_t b = 0; b < maxblk; b++) {
    int64_t j0 = lay.lo + b * block, n = PetscMax(0, PetscMin(lay.hi, j0 + block) - j0);
    int     ok;
    PetscCall(PetscLogEventBegin(MAP_EVENT_StoreRead, 0, 0, 0, 0));
    PetscCall(ImportReadBlock(im, j0, n, pre, tv, pre16, tv16, &ok, msg, sizeof(msg)));
    PetscCall(PetscLogEventEnd(MAP_EVENT_StoreRead, 0, 0, 0, 0));
    MapCheckAll(im->comm, ok, PETSC_ERR_FP, "%s", msg);

    PetscCall(PetscLogEventBegin(MAP_EVENT_StoreWrite, 0, 0, 0, 0));
    {
      hsize_t md1 = (hsize_t)PetscMax(n, 1), md2[2] = {(hsize_t)im->T, (hsize_t)PetscMax(n, 1)};
      MapCallHDF5(mpre = H5Screate_simple(1, &md1, NULL));
      MapCallHDF5(mtv = H5Screate_simple(2, md2, NULL));
    }
    if (n == 0) { /* ranks without data still take part in the collective call */
      MapCallHDF5(H5Sselect_none(fpre));
      MapCallHDF5(H5Sselect_none(ftv));
      MapCallHDF5(H5Sselect_none(mpre));
      MapCallHDF5(H5Sselect_none(mtv));
    } else {
      hsize_t s1 = (hsize_t)j0, c1 = (hsize_t)n, s2[2] = {0, (hsize_t)j0}, c2[2] = {(hsize_t)im->T, (hsize_t)n};
      MapCallHDF5(H5Sselect_hyperslab(fpre, H5S_SELECT_SET, &s1, NULL, &c1, NULL));
      MapCallHDF5(H5Sselect_hyperslab(ftv, H5S_SELECT_SET, s2, NULL, c2, NULL));
    }
    /* the checksums of what is written, as stored (MapStoreVerifyShard checks them on every read) */
    im->csum[0] += MapChecksum64(half ? (const void *)pre16 : (const void *)pre, esize, n, j0);
    for (int t = 0; t < im->T; t++)
      im->csum[t + 1] += MapChecksum64(half ? (const void *)(tv16 + (size_t)t * (size_t)n) : (const void *)(tv + (size_t)t * (size_t)n), esize, n, j0);
    MapCallHDF5(H5Dwrite(dpre, mtype, mpre, fpre, dxpl, half ? (const void *)pre16 : (const void *)pre));
    MapCallHDF5(H5Dwrite(dtv, mtype, mtv, ftv, dxpl, half ? (const void *)tv16 : (const void *)tv));
    if (b == 0) { /* evidence for -info that HDF5 really did collective I/O (0 would mean it fell back) */
      H5D_mpio_actual_io_mode_t mode;
      MapCallHDF5(H5Pget_mpio_actual_io_mode(dxpl, &mode));
      PetscCall(PetscInfo(NULL, "import: /task_vectors block 0: HDF5 actual MPI-IO mode %d (0 none, 1 chunk-independent, 2 chunk-collective, 4 contiguous-collective)\n", (int)mode));
    }
    MapCallHDF5(H5Sclose(mpre));
    MapCallHDF5(H5Sclose(mtv));
    PetscCall(PetscLogEventEnd(MAP_EVENT_StoreWrite, 0, 0, 0, 0));
    /* a large model takes minutes to hours here: say how far (at most a line a second) */
    if (maxblk > 1) PetscCall(MapProgress(im->comm, "import: parameter blocks per rank", (PetscInt)(b + 1), (PetscInt)maxblk, t0));
  }
  if (half) PetscCall(ImportRecordErrors(im, dpre, dtv));
  PetscCall(ImportRecordChecksums(im, dpre, dtv));
  MapCallHDF5(H5Tclose(mtype));
  PetscCall(PetscFree2(pre, tv));
  PetscCall(PetscFree2(pre16, tv16));
  MapCallHDF5(H5Sclose(fpre));
  MapCallHDF5(H5Sclose(ftv));
  MapCallHDF5(H5Dclose(dpre));
  MapCallHDF5(H5Dclose(dtv));
  PetscFunctionReturn(0);
}

/* Room for the store before it is written: when a parallel HDF5 write meets a full disk, the ranks
   can end up in different collectives inside H5Fclose and wait forever. So the free space of the
   store's file system is checked up front against the data plus a margin for HDF5's metadata and
   alignment (a disk that fills up during the import is still caught, less gracefully). */
static PetscErrorCode ImportCheckSpace(Import *im, const char *path)
{
  char           d[MAP_PATH_LEN];
  struct statvfs vfs;
  double         need = (double)im->P * (im->T + 1) * (double)MapStoreDTypeGetInfo(im->dtype)->size, avail = -1;
  int            ok = 1;

  PetscFunctionBegin;
  for (int c = 1; c < im->nck; c++)
    for (int i = 0; i < im->ck[c].npriv; i++) need += 4.0 * (double)im->ck[c].priv[i]->numel;
  need = need * 1.01 + (double)(4 << 20) + 65536.0 * (im->ntensors + im->T);
  if (!im->rank) {
    PetscCall(PetscStrncpy(d, path, sizeof(d)));
    if (!statvfs(dirname(d), &vfs)) {
      avail = (double)vfs.f_bavail * (double)vfs.f_frsize;
      ok    = avail >= need;
    }
  }
  MapCheckAll(im->comm, ok, PETSC_ERR_FILE_WRITE,
              "import: -map_store %s: no space left on device: the store needs about %.3g MB (data plus HDF5 metadata), the file system of %s has %.3g MB free",
              path, need / 1e6, d, avail / 1e6);
  PetscFunctionReturn(0);
}

static PetscErrorCode ImportCheckArgs(MPI_Comm comm, const char *pretrained, int T, const char *const *task_names,
                                      const char *const *task_models, const char *path)
{
  PetscFunctionBegin;
  PetscCheck(pretrained && pretrained[0], comm, PETSC_ERR_ARG_NULL, "import: no pretrained model given (-map_pretrained)");
  PetscCheck(path && path[0], comm, PETSC_ERR_ARG_NULL, "import: no output store given (-map_store)");
  PetscCheck(T >= 1, comm, PETSC_ERR_ARG_OUTOFRANGE, "import: at least one task is needed (-map_tasks), got %d", T);
  for (int t = 0; t < T; t++) {
    PetscCheck(task_names[t] && task_names[t][0], comm, PETSC_ERR_ARG_WRONG, "import: task %d has an empty name (-map_tasks)", t);
    PetscCheck(task_models[t] && task_models[t][0], comm, PETSC_ERR_ARG_WRONG, "import: task %s has an empty model path (-map_task_models)",
               task_names[t]);
    PetscCheck(!strchr(task_names[t], '/') && strcmp(task_names[t], ".") && strcmp(task_names[t], ".."), comm, PETSC_ERR_ARG_WRONG,
               "import: task name \"%s\" may not contain '/' or be . or .. (-map_tasks)", task_names[t]);
    for (int u = 0; u < t; u++)
      PetscCheck(strcmp(task_names[t], task_names[u]), comm, PETSC_ERR_ARG_WRONG, "import: task name %s appears twice in -map_tasks",
                 task_names[t]);
  }
  PetscFunctionReturn(0);
}

/* Opens the T+1 checkpoints (headers only) and checks that the store is none of them nor of their files. */
static PetscErrorCode ImportOpenCheckpoints(Import *im, const char *pretrained, const char *const *task_models, const char *path)
{
  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(im->comm, &im->rank));
  PetscCallMPI(MPI_Comm_size(im->comm, &im->size));
  PetscCall(PetscCalloc1(im->nck, &im->ck));
  for (int c = 0; c < im->nck; c++) {
    im->ck[c].path = c ? task_models[c - 1] : pretrained;
    if (c) PetscCall(PetscSNPrintf(im->ck[c].label, sizeof(im->ck[c].label), "task %s model", im->tasks[c - 1]));
    else PetscCall(PetscStrncpy(im->ck[c].label, "pretrained model", sizeof(im->ck[c].label)));
    PetscCall(MapSafetensorsOpen(im->comm, im->ck[c].path, &im->ck[c].st));
  }
  {
    /* the store may not be one of the checkpoints it is made from (nor one of their files) */
    int          nin = 0;
    const char **in;
    for (int c = 0; c < im->nck; c++) {
      int                nf;
      const char *const *files;
      PetscCall(MapSafetensorsGetFiles(im->ck[c].st, &nf, &files));
      nin += nf + 1;
    }
    PetscCall(PetscMalloc1(nin, &in));
    nin = 0;
    for (int c = 0; c < im->nck; c++) {
      int                nf;
      const char *const *files;
      PetscCall(MapSafetensorsGetFiles(im->ck[c].st, &nf, &files));
      in[nin++] = im->ck[c].path;
      for (int f = 0; f < nf; f++) in[nin++] = files[f];
    }
    PetscCall(MapCheckNotInput(im->comm, path, "-map_store", nin, in));
    PetscCall(PetscFree(in));
  }
  PetscFunctionReturn(0);
}

/* the summary lines of a finished import */
static PetscErrorCode ImportReport(Import *im, const char *path, double el)
{
  int    npriv = 0;
  double esize = (double)MapStoreDTypeGetInfo(im->dtype)->size;

  PetscFunctionBegin;
  for (int c = 1; c < im->nck; c++) npriv += im->ck[c].npriv;
  PetscCall(PetscPrintf(im->comm, "import: wrote %s: P = %lld parameters in %d merged tensors, T = %d tasks, %d private tensors; %.2f s (%.1f MB/s of %s written)\n",
                        path, (long long)im->P, im->ntensors, im->T, npriv, el, esize * (double)im->P * (im->T + 1) / 1e6 / PetscMax(el, 1e-9),
                        MapDTypeName(im->dtype)));
  PetscCall(PetscPrintf(im->comm, "import: source digests (%s%llu, docs/storage.md) hashed from the data pass's reads; %.1f MB of the inputs read for them alone\n",
                        MAP_STORE_DIGEST_KIND, (unsigned long long)im->digest_range, (double)im->digest_bytes[1] / 1e6));
  if (im->dtype != MAP_DTYPE_F32)
    PetscCall(PetscPrintf(im->comm, "import: %s storage (round to nearest even; private tensors stay F32): task vectors max abs error %.9g, max rel error %.9g (bound for normal values %s); pretrained max abs error %.9g, max rel error %.9g\n",
                          MapDTypeName(im->dtype), im->err[1][0], im->err[1][1], MapStoreDTypeGetInfo(im->dtype)->relbound, im->err[0][0], im->err[0][1]));
  PetscFunctionReturn(0);
}

/* the tuning of opts (NULL: the defaults) into im and the block and chunk lengths of the task vectors */
static PetscErrorCode ImportApplyOptions(Import *im, const MapStoreImportOptions *opts, int64_t *block, int64_t *chunk)
{
  int T = im->T;

  PetscFunctionBegin;
  im->dtype           = opts ? opts->dtype : MAP_DTYPE_F32;
  im->buffers_private = opts ? opts->buffers_private : PETSC_FALSE;
  PetscCheck(MapStoreDTypeGetInfo(im->dtype), im->comm, PETSC_ERR_ARG_OUTOFRANGE, "import: storage dtype %d is not one of F32 (%d), BF16 (%d), F16 (%d)",
             (int)im->dtype, (int)MAP_DTYPE_F32, (int)MAP_DTYPE_BF16, (int)MAP_DTYPE_F16);
  *block           = opts && opts->block > 0 ? opts->block : PetscMax(65536, (4 << 20) / (T + 1));
  im->digest_range = opts && opts->digest_range > 0 ? (uint64_t)opts->digest_range : MAP_STORE_DIGEST_RANGE;
  *chunk           = opts && opts->chunk > 0 ? opts->chunk : (1 << 20);
  PetscFunctionReturn(0);
}

/* creates the temporary file tmp (collectively, parallel HDF5) and writes the whole store into it; on an
   error every rank fails naming tmp and path */
static PetscErrorCode ImportWriteFile(Import *im, const char *tmp, const char *path, int64_t block, int64_t chunk)
{
  MPI_Comm       comm = im->comm;
  hid_t          fapl, file, dxpl;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  MapCallHDF5(fapl = H5Pcreate(H5P_FILE_ACCESS));
  MapCallHDF5(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL));
  MapCallHDF5(H5Pset_all_coll_metadata_ops(fapl, 1));
  MapCallHDF5(H5Pset_coll_metadata_write(fapl, 1));
  MapCallHDF5(H5Pset_alignment(fapl, 1 << 20, 1 << 20)); /* big datasets start on 1 MiB boundaries (striped file systems) */
  file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  MapCallHDF5(H5Pclose(fapl));
  MapCheckAll(comm, file >= 0, PETSC_ERR_FILE_OPEN, "import: cannot create %s (for -map_store %s)", tmp, path);
  MapCallHDF5(dxpl = H5Pcreate(H5P_DATASET_XFER));
  MapCallHDF5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));

  ierr = MapStoreImportWriteProvenance_Private(im, file);
  if (!ierr) ierr = MapStoreImportWriteIndex_Private(im, file);
  if (!ierr) ierr = MapStoreImportDigestBegin_Private(im);
  if (!ierr) ierr = ImportWriteVectors(im, file, dxpl, block, chunk);
  if (!ierr) ierr = MapStoreImportWritePrivate_Private(im, file, dxpl);
  if (!ierr) ierr = MapStoreImportWriteBuffers_Private(im, file);
  if (!ierr) ierr = MapStoreImportWriteHFFiles_Private(im, file);
  if (!ierr) ierr = MapStoreImportDigestEnd_Private(im, file);
  if (!ierr) ierr = H5Pclose(dxpl) < 0 ? PETSC_ERR_LIB : 0;
  if (!ierr) ierr = H5Fclose(file) < 0 ? PETSC_ERR_FILE_WRITE : 0; /* the last metadata is flushed here: a full disk shows up here too */
  /* the HDF5 call is named above; here the file, so a full disk says where (the temporary file is removed) */
  PetscCheck(!ierr, PETSC_COMM_SELF, ierr, "import: writing %s (the temporary file of -map_store %s) failed%s%s", tmp, path,
             errno == ENOSPC ? ": No space left on device" : "", errno == EDQUOT ? ": Disk quota exceeded" : "");
  PetscFunctionReturn(0);
}

/* frees what the import holds (the checkpoints, the index, the buffers, the digests) */
static PetscErrorCode ImportDestroy(Import *im)
{
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCall(MapStoreImportDigestDestroy_Private(im));
  for (int c = 0; c < im->nck; c++) {
    PetscCall(PetscFree(im->ck[c].info));
    PetscCall(PetscFree(im->ck[c].priv));
    ierr = MapSafetensorsDestroy(&im->ck[c].st);
    PetscCall(ierr);
  }
  PetscCall(PetscFree(im->ck));
  PetscCall(PetscFree(im->csum));
  PetscCall(PetscFree(im->tensors));
  PetscCall(PetscFree(im->buf));
  PetscFunctionReturn(0);
}

/*@
  MapStoreImport - reads a pretrained checkpoint and T task checkpoints and writes the
  store `path` (docs/design.md §2): /pretrained [P], /task_vectors [T,P] = theta_task - theta_pre
  (computed in F32, stored as F32 or, with opts->dtype BF16 or F16, rounded to nearest even with
  the largest rounding errors recorded as dataset attributes and printed; opts NULL: the default tuning, F32),
  the tensor index, /tasks, /private/<task>/<tensor> for tensors matching one of the fnmatch
  `patterns` (default "head.*" when npatterns == 0), and provenance attributes.

  Collective. Errors (on every rank, before anything is renamed into place) name the file and the
  tensor: a merged tensor missing from a task or of another shape, a non-floating dtype, NaN/Inf
  (with the flat index), a value that overflows BF16 or F16, or a task tensor that is neither merged nor private. Memory per rank: the
  headers plus (T+1) x block floats.
@*/
PetscErrorCode MapStoreImport(MPI_Comm comm, const char *pretrained, int T, const char *const *task_names, const char *const *task_models,
                              int npatterns, const char *const *patterns, const char *path, const MapStoreImportOptions *opts)
{
  Import      im;
  const char *defpat[] = {"head.*"};
  char        tmp[MAP_PATH_LEN];
  int64_t     block, chunk;
  double      t0 = MapWallTime();
  int         ok;

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(MAP_EVENT_Import, 0, 0, 0, 0));
  PetscCall(ImportCheckArgs(comm, pretrained, T, task_names, task_models, path));
  MapCallHDF5(H5Eset_auto2(H5E_DEFAULT, NULL, NULL)); /* MapCallHDF5 prints the stack itself */
  PetscCall(PetscMemzero(&im, sizeof(im)));
  im.comm  = comm;
  im.T     = T;
  im.nck   = T + 1;
  im.tasks = task_names;
  im.npat  = npatterns > 0 ? npatterns : 1;
  im.pat   = npatterns > 0 ? patterns : defpat;
  PetscCall(ImportOpenCheckpoints(&im, pretrained, task_models, path));
  PetscCall(MapStoreImportBuildIndex_Private(&im));
  PetscCall(PetscCalloc1(T + 1, &im.csum));
  PetscCall(MapStoreImportLogDtypes_Private(&im));

  PetscCall(ImportApplyOptions(&im, opts, &block, &chunk));

  PetscCall(ImportCheckSpace(&im, path));
  /* one temporary name for all ranks (MapTempName includes the pid of rank 0) */
  if (!im.rank) PetscCall(MapTempName(path, tmp, sizeof(tmp)));
  PetscCallMPI(MPI_Bcast(tmp, sizeof(tmp), MPI_CHAR, 0, comm));
  PetscCall(MapTempRegister(tmp));

  PetscCall(ImportWriteFile(&im, tmp, path, block, chunk));

  ok = 1;
  if (!im.rank && rename(tmp, path)) ok = 0;
  MapCheckAll(comm, ok, PETSC_ERR_FILE_WRITE, "import: cannot rename %s to %s: %s", tmp, path, strerror(errno));
  PetscCall(MapTempUnregister(tmp));

  PetscCall(ImportReport(&im, path, MapWallTime() - t0));
  PetscCall(ImportDestroy(&im));
  PetscCall(PetscLogEventEnd(MAP_EVENT_Import, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}
