/* MapStore, write side: which tensors are merged and which are task-private (the index built from
 * the checkpoints' headers), and the private tensors' datasets /private/<task>/<tensor>. */
#include "storeimportimpl.h"
#include <fnmatch.h>
#include <math.h>

static PetscBool MatchesPrivate(const Import *im, const char *name)
{
  for (int i = 0; i < im->npat; i++)
    if (fnmatch(im->pat[i], name, 0) == 0) return PETSC_TRUE;
  return PETSC_FALSE;
}

static void ShapeStr(int ndim, const int64_t *shape, char *buf, size_t len)
{
  size_t l = 0;
  l += (size_t)snprintf(buf, len, "[");
  for (int d = 0; d < ndim && l < len; d++) l += (size_t)snprintf(buf + l, len - l, "%s%lld", d ? "," : "", (long long)shape[d]);
  if (l < len) snprintf(buf + l, len - l, "]");
}

const char *MapStoreImportFileOf_Private(const Ckpt *c, const MapTensorInfo *t)
{
  int                nf;
  const char *const *files;
  if (MapSafetensorsGetFiles(c->st, &nf, &files) || t->file < 0 || t->file >= nf) return c->path;
  return files[t->file];
}

/* The index: merged tensors (floating tensors of the pretrained model not matching a private
   pattern, in file order) and each task's private tensors. Headers are replicated, so every rank
   takes the same decisions and errors are raised on comm. */
PetscErrorCode MapStoreImportBuildIndex_Private(Import *im)
{
  Ckpt   *pre = &im->ck[0];
  int     npre;
  int64_t off = 0;
  char    s1[256], s2[256];

  PetscFunctionBegin;
  PetscCall(MapStoreImportReportShapes_Private(im)); /* heads found, not guessed: before any shape error */
  PetscCall(MapSafetensorsGetNumTensors(pre->st, &npre));
  PetscCall(PetscCalloc1(npre + 1, &im->tensors));
  for (int c = 0; c < im->nck; c++) PetscCall(PetscCalloc1(npre + 1, &im->ck[c].info));
  for (int i = 0; i < npre; i++) {
    const MapTensorInfo *t;
    PetscBool            isbuf;
    PetscCall(MapSafetensorsGetTensor(pre->st, i, &t));
    PetscCall(MapStoreImportIsBuffer_Private(im, 0, t, &isbuf)); /* integer/bool: kept as it is, never merged */
    if (isbuf) continue;
    if (MatchesPrivate(im, t->name)) continue; /* the pretrained model's own head is not used */
    PetscCheck(MapDTypeIsFloat(t->dtype), im->comm, PETSC_ERR_ARG_WRONG,
               "%s %s: tensor %s has dtype %s; only floating tensors (F32, F16, BF16, F64) can be merged", pre->label, MapStoreImportFileOf_Private(pre, t),
               t->name, MapTensorDTypeName(t));
    PetscCheck(!strchr(t->name, '\n'), im->comm, PETSC_ERR_ARG_WRONG, "%s %s: tensor name with a newline", pre->label, pre->path);
    MapStoreTensor *s = &im->tensors[im->ntensors];
    PetscCall(PetscStrncpy(s->name, t->name, sizeof(s->name)));
    PetscCall(PetscStrncpy(s->dtype, MapDTypeName(t->dtype), sizeof(s->dtype)));
    s->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) s->shape[d] = t->shape[d];
    s->offset = off;
    s->numel  = t->numel;
    off += t->numel;
    pre->info[im->ntensors] = t;
    for (int c = 1; c < im->nck; c++) {
      Ckpt                *ck = &im->ck[c];
      const MapTensorInfo *u;
      PetscCall(MapSafetensorsFind(ck->st, t->name, &u));
      PetscCheck(u, im->comm, PETSC_ERR_ARG_WRONG, "%s %s: tensor %s of the pretrained model %s is missing", ck->label, ck->path, t->name,
                 pre->path);
      PetscBool same = (PetscBool)(u->ndim == t->ndim);
      for (int d = 0; same && d < t->ndim; d++) same = (PetscBool)(u->shape[d] == t->shape[d]);
      ShapeStr(u->ndim, u->shape, s1, sizeof(s1));
      ShapeStr(t->ndim, t->shape, s2, sizeof(s2));
      PetscCheck(same, im->comm, PETSC_ERR_ARG_SIZ, "%s %s: tensor %s has shape %s, but in the pretrained model %s it has shape %s",
                 ck->label, MapStoreImportFileOf_Private(ck, u), t->name, s1, pre->path, s2);
      PetscCheck(MapDTypeIsFloat(u->dtype), im->comm, PETSC_ERR_ARG_WRONG,
                 "%s %s: tensor %s has dtype %s; only floating tensors (F32, F16, BF16, F64) can be merged", ck->label, MapStoreImportFileOf_Private(ck, u),
                 t->name, MapTensorDTypeName(u));
      ck->info[im->ntensors] = u;
    }
    im->ntensors++;
  }
  im->P = off;
  PetscCheck(im->ntensors > 0 && im->P > 0, im->comm, PETSC_ERR_ARG_WRONG,
             "%s %s: no tensor to merge (%d tensors, all private or empty; private patterns decide)", pre->label, pre->path, npre);

  /* task tensors outside the merged set must be private: anything else would silently vanish */
  for (int c = 1; c < im->nck; c++) {
    Ckpt *ck = &im->ck[c];
    int   n;
    PetscCall(MapSafetensorsGetNumTensors(ck->st, &n));
    PetscCall(PetscCalloc1(n + 1, &ck->priv));
    for (int i = 0; i < n; i++) {
      const MapTensorInfo *u, *p;
      PetscBool            isbuf;
      PetscCall(MapSafetensorsGetTensor(ck->st, i, &u));
      PetscCall(MapStoreImportIsBuffer_Private(im, c, u, &isbuf));
      if (isbuf) continue;
      if (MatchesPrivate(im, u->name)) {
        PetscCheck(MapDTypeIsFloat(u->dtype), im->comm, PETSC_ERR_ARG_WRONG,
                   "%s %s: private tensor %s has dtype %s; only floating tensors (F32, F16, BF16, F64) are supported", ck->label,
                   MapStoreImportFileOf_Private(ck, u), u->name, MapTensorDTypeName(u));
        PetscCheck(!strchr(u->name, '/') && strcmp(u->name, ".") && strcmp(u->name, ".."), im->comm, PETSC_ERR_ARG_WRONG,
                   "%s %s: private tensor name \"%s\" cannot be an HDF5 dataset name", ck->label, ck->path, u->name);
        ck->priv[ck->npriv++] = u;
        continue;
      }
      PetscCall(MapSafetensorsFind(pre->st, u->name, &p));
      PetscCheck(p, im->comm, PETSC_ERR_ARG_WRONG,
                 "%s %s: tensor %s is not in the pretrained model %s and matches no private pattern (-map_private_patterns)", ck->label,
                 MapStoreImportFileOf_Private(ck, u), u->name, pre->path);
    }
  }
  PetscFunctionReturn(0);
}

/* One log line per checkpoint whose tensor dtypes differ from the pretrained model's. */
PetscErrorCode MapStoreImportLogDtypes_Private(Import *im)
{
  PetscFunctionBegin;
  for (int c = 1; c < im->nck; c++) {
    Ckpt *ck    = &im->ck[c];
    int   ndiff = 0, first = -1;
    for (int i = 0; i < im->ntensors; i++)
      if (ck->info[i]->dtype != im->ck[0].info[i]->dtype) {
        if (first < 0) first = i;
        ndiff++;
      }
    if (ndiff)
      PetscCall(PetscPrintf(im->comm, "import: %s %s: %d tensors have a different dtype than in the pretrained model (first: %s is %s, pretrained %s); all are converted to F32\n",
                            ck->label, ck->path, ndiff, im->tensors[first].name, MapTensorDTypeName(ck->info[first]),
                            MapTensorDTypeName(im->ck[0].info[first])));
  }
  PetscFunctionReturn(0);
}

/* /private/<task>/<tensor>: each rank reads and writes a balanced slice of the first dimension. */
PetscErrorCode MapStoreImportWritePrivate_Private(Import *im, hid_t file, hid_t dxpl)
{
  hid_t gp, gcpl;

  PetscFunctionBegin;
  MapCallHDF5(gp = H5Gcreate2(file, "private", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  MapCallHDF5(gcpl = H5Pcreate(H5P_GROUP_CREATE));
  /* keep the file order of the tensors for MapStoreGetPrivateNames */
  MapCallHDF5(H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED));
  for (int t = 0; t < im->T; t++) {
    Ckpt *ck = &im->ck[t + 1];
    hid_t g;
    MapCallHDF5(g = H5Gcreate2(gp, im->tasks[t], H5P_DEFAULT, gcpl, H5P_DEFAULT));
    for (int i = 0; i < ck->npriv; i++) {
      const MapTensorInfo *u = ck->priv[i];
      hsize_t              dims[MAP_MAX_NDIM], start[MAP_MAX_NDIM] = {0}, count[MAP_MAX_NDIM];
      int64_t              rows = u->ndim ? u->shape[0] : 1, rowsize = rows ? u->numel / rows : 0;
      int64_t              r0 = rows * im->rank / im->size, r1 = rows * (im->rank + 1) / im->size, n = (r1 - r0) * rowsize;
      hid_t                fs, ms, d;
      float               *buf;
      char                 msg[1024] = "";

      for (int k = 0; k < u->ndim; k++) dims[k] = count[k] = (hsize_t)u->shape[k];
      MapCallHDF5(fs = u->ndim ? H5Screate_simple(u->ndim, dims, NULL) : H5Screate(H5S_SCALAR));
      MapCallHDF5(d = H5Dcreate2(g, u->name, H5T_IEEE_F32LE, fs, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      PetscCall(PetscMalloc1(n + 1, &buf));
      PetscCall(MapSafetensorsReadF32(ck->st, u, r0 * rowsize, n, buf));
      int64_t bad = MapFirstNonFiniteF32(buf, n);
      if (bad >= 0)
        snprintf(msg, sizeof(msg), "%s %s: private tensor %s element %lld is %s", ck->label, MapStoreImportFileOf_Private(ck, u), u->name,
                 (long long)(r0 * rowsize + bad), isnan(buf[bad]) ? "NaN" : "Inf");
      MapCheckAll(im->comm, bad < 0, PETSC_ERR_FP, "%s", msg);
      hsize_t mn = (hsize_t)PetscMax(n, 1);
      MapCallHDF5(ms = H5Screate_simple(1, &mn, NULL));
      if (n == 0) {
        MapCallHDF5(H5Sselect_none(fs));
        MapCallHDF5(H5Sselect_none(ms));
      } else if (u->ndim) {
        start[0] = (hsize_t)r0;
        count[0] = (hsize_t)(r1 - r0);
        MapCallHDF5(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL));
      }
      /* a zero-size tensor (a dimension of 0) is stored as its empty dataset: a collective write of
         nothing fails in MPI-IO, and there is nothing to write */
      if (u->numel > 0) MapCallHDF5(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, dxpl, buf));
      {
        uint64_t sum = MapChecksum64(buf, sizeof(float), n, r0 * rowsize);
        char     text[24];
        PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_UINT64_T, MPI_SUM, im->comm));
        MapChecksumFormat(sum, text);
        PetscCall(MapH5WriteStringAttr(d, MAP_STORE_ATTR_CHECKSUM, text));
      }
      PetscCall(PetscFree(buf));
      MapCallHDF5(H5Sclose(ms));
      MapCallHDF5(H5Sclose(fs));
      MapCallHDF5(H5Dclose(d));
    }
    MapCallHDF5(H5Gclose(g));
  }
  MapCallHDF5(H5Pclose(gcpl));
  MapCallHDF5(H5Gclose(gp));
  PetscFunctionReturn(0);
}
