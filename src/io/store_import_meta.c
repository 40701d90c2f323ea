/* MapStore, write side: the store's metadata, i.e. the provenance attributes (versions, dtypes,
 * paths; the source digests: store_import_digest.c) and the index (/tasks, /tensors/...). */
#include "storeimportimpl.h"
#include <limits.h>
#include <stdlib.h>
#include <time.h>

/* the root attributes but the source digests (written after the data pass, which hashes them) */
PetscErrorCode MapStoreImportWriteProvenance_Private(Import *im, hid_t file)
{
  char buf[64];

  PetscFunctionBegin;
  /* identical strings on every rank: attribute writes are collective */
  PetscCall(MapH5WriteStringAttr(file, "format", MAP_STORE_FORMAT));
  PetscCall(MapH5WriteStringAttr(file, "format_version", MAP_STORE_FORMAT_VERSION));
  PetscCall(MapH5WriteStringAttr(file, "mapmerge_version", MAPMERGE_VERSION));
  PetscCall(MapH5WriteStringAttr(file, "git_commit", MAPMERGE_GIT_COMMIT));
  PetscCall(MapH5WriteStringAttr(file, "storage_dtype", MapDTypeName(im->dtype)));
  {
    time_t    now = time(NULL);
    long long tl  = (long long)now;
    struct tm tm;
    PetscCallMPI(MPI_Bcast(&tl, 1, MPI_LONG_LONG, 0, im->comm));
    now = (time_t)tl;
    gmtime_r(&now, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    PetscCall(MapH5WriteStringAttr(file, "creation_time", buf));
  }
  {
    char pats[4096] = "";
    for (int i = 0; i < im->npat; i++) {
      PetscCall(MapStrlcat(pats, i ? "," : "", sizeof(pats)));
      PetscCall(MapStrlcat(pats, im->pat[i], sizeof(pats)));
    }
    PetscCall(MapH5WriteStringAttr(file, "private_patterns", pats));
  }
  for (int c = 0; c < im->nck; c++) {
    Ckpt     *ck = &im->ck[c];
    char      key[MAP_NAME_LEN + 32], real[PATH_MAX], dts[128] = "";
    PetscBool seen[MAP_DTYPE_OTHER + 1] = {PETSC_FALSE};

    for (int i = 0; i < im->ntensors; i++) seen[ck->info[i]->dtype] = PETSC_TRUE;
    for (int i = 0; i < ck->npriv; i++) seen[ck->priv[i]->dtype] = PETSC_TRUE;
    for (int d = 0; d <= MAP_DTYPE_OTHER; d++)
      if (seen[d]) {
        PetscCall(MapStrlcat(dts, dts[0] ? "," : "", sizeof(dts)));
        PetscCall(MapStrlcat(dts, MapDTypeName((MapDType)d), sizeof(dts)));
      }
    const char *prefix = c ? "task." : "pretrained";
    const char *tname  = c ? im->tasks[c - 1] : "";
    PetscCall(PetscSNPrintf(key, sizeof(key), "%s%s.model", prefix, tname));
    PetscCall(MapH5WriteStringAttr(file, key, realpath(ck->path, real) ? real : ck->path));
    PetscCall(PetscSNPrintf(key, sizeof(key), "%s%s.dtypes", prefix, tname));
    PetscCall(MapH5WriteStringAttr(file, key, dts));
  }
  PetscFunctionReturn(0);
}

/* /tasks and /tensors/{name,dtype,ndim,shape,offset,numel}: small, written from rank 0. */
PetscErrorCode MapStoreImportWriteIndex_Private(Import *im, hid_t file)
{
  size_t   maxlen = 1;
  char    *buf;
  hid_t    stype, g;
  hsize_t  dims[2];
  int     *ndim;
  int64_t *shape, *offset, *numel, n = im->ntensors;

  PetscFunctionBegin;
  for (int t = 0; t < im->T; t++) maxlen = PetscMax(maxlen, strlen(im->tasks[t]) + 1);
  PetscCall(PetscCalloc1(maxlen * im->T, &buf));
  for (int t = 0; t < im->T; t++) memcpy(buf + maxlen * t, im->tasks[t], strlen(im->tasks[t]));
  PetscCall(MapH5StringType(maxlen, &stype));
  dims[0] = (hsize_t)im->T;
  PetscCall(MapH5WriteSmall(im->comm, file, "tasks", stype, 1, dims, buf));
  MapCallHDF5(H5Tclose(stype));
  PetscCall(PetscFree(buf));

  MapCallHDF5(g = H5Gcreate2(file, "tensors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  maxlen = 1;
  for (int64_t i = 0; i < n; i++) maxlen = PetscMax(maxlen, strlen(im->tensors[i].name) + 1);
  PetscCall(PetscCalloc1(maxlen * n, &buf));
  for (int64_t i = 0; i < n; i++) memcpy(buf + maxlen * i, im->tensors[i].name, strlen(im->tensors[i].name));
  PetscCall(MapH5StringType(maxlen, &stype));
  dims[0] = (hsize_t)n;
  PetscCall(MapH5WriteSmall(im->comm, g, "name", stype, 1, dims, buf));
  MapCallHDF5(H5Tclose(stype));
  PetscCall(PetscFree(buf));
  PetscCall(PetscCalloc1(16 * n, &buf));
  for (int64_t i = 0; i < n; i++) PetscCall(PetscStrncpy(buf + 16 * i, im->tensors[i].dtype, 16));
  PetscCall(MapH5StringType(16, &stype));
  PetscCall(MapH5WriteSmall(im->comm, g, "dtype", stype, 1, dims, buf));
  MapCallHDF5(H5Tclose(stype));
  PetscCall(PetscFree(buf));

  PetscCall(PetscCalloc4(n, &ndim, n * MAP_MAX_NDIM, &shape, n, &offset, n, &numel));
  for (int64_t i = 0; i < n; i++) {
    ndim[i] = im->tensors[i].ndim;
    for (int d = 0; d < ndim[i]; d++) shape[i * MAP_MAX_NDIM + d] = im->tensors[i].shape[d];
    offset[i] = im->tensors[i].offset;
    numel[i]  = im->tensors[i].numel;
  }
  PetscCall(MapH5WriteSmall(im->comm, g, "ndim", H5T_NATIVE_INT, 1, dims, ndim));
  PetscCall(MapH5WriteSmall(im->comm, g, "offset", H5T_NATIVE_INT64, 1, dims, offset));
  PetscCall(MapH5WriteSmall(im->comm, g, "numel", H5T_NATIVE_INT64, 1, dims, numel));
  dims[1] = MAP_MAX_NDIM;
  PetscCall(MapH5WriteSmall(im->comm, g, "shape", H5T_NATIVE_INT64, 2, dims, shape));
  PetscCall(PetscFree4(ndim, shape, offset, numel));
  MapCallHDF5(H5Gclose(g));
  PetscFunctionReturn(0);
}
