/* HDF5 helpers shared by the store, the eval command and the run results (serial or collective
   as each says). */
#include <mapmerge/core_h5.h>


PetscErrorCode MapH5StringType(size_t len, hid_t *type)
{
  PetscFunctionBegin;
  *type = H5Tcopy(H5T_C_S1);
  MapCallHDF5(*type);
  MapCallHDF5(H5Tset_size(*type, len));
  MapCallHDF5(H5Tset_strpad(*type, H5T_STR_NULLTERM));
  MapCallHDF5(H5Tset_cset(*type, H5T_CSET_UTF8));
  PetscFunctionReturn(0);
}

PetscErrorCode MapH5WriteStringAttr(hid_t loc, const char *key, const char *value)
{
  hid_t type, space, attr;

  PetscFunctionBegin;
  /* variable length so h5py shows a str, not bytes padded to a fixed size */
  type = H5Tcopy(H5T_C_S1);
  MapCallHDF5(type);
  MapCallHDF5(H5Tset_size(type, H5T_VARIABLE));
  MapCallHDF5(H5Tset_cset(type, H5T_CSET_UTF8));
  MapCallHDF5(space = H5Screate(H5S_SCALAR));
  MapCallHDF5(attr = H5Acreate2(loc, key, type, space, H5P_DEFAULT, H5P_DEFAULT));
  MapCallHDF5(H5Awrite(attr, type, &value));
  MapCallHDF5(H5Aclose(attr));
  MapCallHDF5(H5Sclose(space));
  MapCallHDF5(H5Tclose(type));
  PetscFunctionReturn(0);
}

PetscErrorCode MapH5ReadStringAttr(hid_t loc, const char *key, char **value)
{
  hid_t  attr, ftype, mtype;
  htri_t exists, isvar;

  PetscFunctionBegin;
  *value = NULL;
  MapCallHDF5(exists = H5Aexists(loc, key));
  if (!exists) PetscFunctionReturn(0);
  MapCallHDF5(attr = H5Aopen(loc, key, H5P_DEFAULT));
  MapCallHDF5(ftype = H5Aget_type(attr));
  if (H5Tget_class(ftype) != H5T_STRING) { /* not a string: report it as absent rather than misread it */
    MapCallHDF5(H5Tclose(ftype));
    MapCallHDF5(H5Aclose(attr));
    PetscFunctionReturn(0);
  }
  MapCallHDF5(isvar = H5Tis_variable_str(ftype));
  if (isvar) {
    char *s = NULL;
    MapCallHDF5(mtype = H5Tcopy(H5T_C_S1));
    MapCallHDF5(H5Tset_size(mtype, H5T_VARIABLE));
    MapCallHDF5(H5Tset_cset(mtype, H5Tget_cset(ftype))); /* HDF5 does not convert between ASCII and UTF-8 */
    MapCallHDF5(H5Aread(attr, mtype, &s));
    PetscCall(PetscStrallocpy(s ? s : "", value));
    if (s) H5free_memory(s);
    MapCallHDF5(H5Tclose(mtype));
  } else {
    size_t len = H5Tget_size(ftype);
    PetscCall(PetscCalloc1(len + 1, value));
    PetscCall(MapH5StringType(len, &mtype));
    MapCallHDF5(H5Tset_cset(mtype, H5Tget_cset(ftype)));
    MapCallHDF5(H5Aread(attr, mtype, *value));
    MapCallHDF5(H5Tclose(mtype));
  }
  MapCallHDF5(H5Tclose(ftype));
  MapCallHDF5(H5Aclose(attr));
  PetscFunctionReturn(0);
}

PetscErrorCode MapH5WriteDoubleAttr(hid_t loc, const char *key, double value)
{
  hid_t space, attr;

  PetscFunctionBegin;
  MapCallHDF5(space = H5Screate(H5S_SCALAR));
  MapCallHDF5(attr = H5Acreate2(loc, key, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT));
  MapCallHDF5(H5Awrite(attr, H5T_NATIVE_DOUBLE, &value));
  MapCallHDF5(H5Aclose(attr));
  MapCallHDF5(H5Sclose(space));
  PetscFunctionReturn(0);
}

PetscErrorCode MapH5ReadDoubleAttr(hid_t loc, const char *key, double *value, PetscBool *found)
{
  hid_t  attr, space;
  htri_t exists;

  PetscFunctionBegin;
  *found = PETSC_FALSE;
  MapCallHDF5(exists = H5Aexists(loc, key));
  if (!exists) PetscFunctionReturn(0);
  MapCallHDF5(attr = H5Aopen(loc, key, H5P_DEFAULT));
  MapCallHDF5(space = H5Aget_space(attr));
  /* a scalar number only: anything else is reported as absent rather than misread */
  hssize_t npoints;
  MapCallHDF5(npoints = H5Sget_simple_extent_npoints(space));
  if (npoints == 1) {
    hid_t       ftype;
    H5T_class_t cls;
    MapCallHDF5(ftype = H5Aget_type(attr));
    MapCallHDF5(cls = H5Tget_class(ftype));
    MapCallHDF5(H5Tclose(ftype));
    if (cls == H5T_FLOAT || cls == H5T_INTEGER) {
      MapCallHDF5(H5Aread(attr, H5T_NATIVE_DOUBLE, value));
      *found = PETSC_TRUE;
    }
  }
  MapCallHDF5(H5Sclose(space));
  MapCallHDF5(H5Aclose(attr));
  PetscFunctionReturn(0);
}

PetscErrorCode MapH5WriteSmall(MPI_Comm comm, hid_t loc, const char *name, hid_t type, int ndim, const hsize_t *dims,
                               const void *data)
{
  hid_t       space, mspace, dset, dxpl;
  PetscMPIInt rank;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  MapCallHDF5(space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR));
  MapCallHDF5(mspace = H5Scopy(space));
  MapCallHDF5(dset = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  /* every rank holds the same data; rank 0 writes it, the others take part with empty selections */
  if (rank) {
    MapCallHDF5(H5Sselect_none(space));
    MapCallHDF5(H5Sselect_none(mspace));
  }
  MapCallHDF5(dxpl = H5Pcreate(H5P_DATASET_XFER));
  MapCallHDF5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
  MapCallHDF5(H5Dwrite(dset, type, mspace, space, dxpl, data));
  MapCallHDF5(H5Pclose(dxpl));
  MapCallHDF5(H5Dclose(dset));
  MapCallHDF5(H5Sclose(mspace));
  MapCallHDF5(H5Sclose(space));
  PetscFunctionReturn(0);
}

PetscErrorCode MapH5ReadStrings(hid_t loc, const char *name, const char *what, int64_t n, char ***list)
{
  hid_t   dset, ftype, space, mtype;
  hsize_t dims[1];

  PetscFunctionBegin;
  MapCallHDF5(dset = H5Dopen2(loc, name, H5P_DEFAULT));
  MapCallHDF5(space = H5Dget_space(dset));
  PetscCheck(H5Sget_simple_extent_ndims(space) == 1, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "%s: dataset %s must be 1-D, it has %d dimensions", what, name, H5Sget_simple_extent_ndims(space));
  MapCallHDF5(H5Sget_simple_extent_dims(space, dims, NULL));
  PetscCheck((int64_t)dims[0] == n, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: dataset %s has %llu entries, expected %lld",
             what, name, (unsigned long long)dims[0], (long long)n);
  MapCallHDF5(ftype = H5Dget_type(dset));
  PetscCheck(H5Tget_class(ftype) == H5T_STRING, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: dataset %s is not a string dataset",
             what, name);
  PetscCall(PetscCalloc1(n + 1, list));
  if (H5Tis_variable_str(ftype) > 0) {
    char **s;
    PetscCall(PetscCalloc1(n + 1, &s));
    MapCallHDF5(mtype = H5Tcopy(H5T_C_S1));
    MapCallHDF5(H5Tset_size(mtype, H5T_VARIABLE));
    MapCallHDF5(H5Tset_cset(mtype, H5Tget_cset(ftype)));
    if (n) MapCallHDF5(H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, s));
    for (int64_t i = 0; i < n; i++) PetscCall(PetscStrallocpy(s[i] ? s[i] : "", &(*list)[i]));
    if (n) MapCallHDF5(H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, s));
    PetscCall(PetscFree(s));
  } else {
    size_t len = H5Tget_size(ftype);
    char  *buf;
    PetscCall(PetscCalloc1(n * len + 1, &buf));
    PetscCall(MapH5StringType(len, &mtype));
    MapCallHDF5(H5Tset_cset(mtype, H5Tget_cset(ftype)));
    if (n) MapCallHDF5(H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    for (int64_t i = 0; i < n; i++) {
      PetscCall(PetscCalloc1(len + 1, &(*list)[i]));
      memcpy((*list)[i], buf + i * len, len);
    }
    PetscCall(PetscFree(buf));
  }
  MapCallHDF5(H5Tclose(mtype));
  MapCallHDF5(H5Tclose(ftype));
  MapCallHDF5(H5Sclose(space));
  MapCallHDF5(H5Dclose(dset));
  PetscFunctionReturn(0);
}
PetscErrorCode MapH5WriteMatrix(hid_t loc, const char *name, PetscInt rows, int cols, const double *data)
{
  hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
  hid_t   sp, ds;

  PetscFunctionBegin;
  MapCallHDF5(sp = H5Screate_simple(cols > 0 ? 2 : 1, dims, NULL));
  MapCallHDF5(ds = H5Dcreate2(loc, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (rows > 0) MapCallHDF5(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  MapCallHDF5(H5Dclose(ds));
  MapCallHDF5(H5Sclose(sp));
  PetscFunctionReturn(0);
}

PetscErrorCode MapH5WriteStrings(hid_t loc, const char *name, int n, char **s)
{
  hsize_t dims[1] = {(hsize_t)n};
  hid_t   sp, ds, ty;

  PetscFunctionBegin;
  MapCallHDF5(ty = H5Tcopy(H5T_C_S1));
  MapCallHDF5(H5Tset_size(ty, H5T_VARIABLE));
  MapCallHDF5(sp = H5Screate_simple(1, dims, NULL));
  MapCallHDF5(ds = H5Dcreate2(loc, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  MapCallHDF5(H5Dwrite(ds, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, s));
  MapCallHDF5(H5Dclose(ds));
  MapCallHDF5(H5Sclose(sp));
  MapCallHDF5(H5Tclose(ty));
  PetscFunctionReturn(0);
}

/* whether every component of a path a/b/c exists (H5Lexists needs the parents to exist) */
PetscBool MapH5Exists(hid_t f, const char *name)
{
  char part[MAP_PATH_LEN];
  for (const char *p = name;; p++) {
    if (*p == '/' || *p == 0) {
      size_t l = (size_t)(p - name);
      if (l >= sizeof(part)) return PETSC_FALSE;
      memcpy(part, name, l);
      part[l] = 0;
      if (H5Lexists(f, part, H5P_DEFAULT) <= 0) return PETSC_FALSE;
      if (!*p) return PETSC_TRUE;
    }
  }
}

PetscErrorCode MapH5ReadMatrix(hid_t f, const char *name, hsize_t dims[2], double **data)
{
  PetscFunctionBegin;
  dims[0] = dims[1] = 0;
  *data             = NULL;
  if (!MapH5Exists(f, name)) PetscFunctionReturn(0);
  hid_t       d, sp, ty;
  H5T_class_t cls;
  MapCallHDF5(d = H5Dopen2(f, name, H5P_DEFAULT));
  MapCallHDF5(ty = H5Dget_type(d));
  cls = H5Tget_class(ty);
  MapCallHDF5(H5Tclose(ty));
  MapCallHDF5(sp = H5Dget_space(d));
  int nd = H5Sget_simple_extent_ndims(sp);
  MapCallHDF5(nd);
  /* a crafted file can hold any rank: look before H5Sget_simple_extent_dims writes nd values */
  if (nd > 2 || (cls != H5T_FLOAT && cls != H5T_INTEGER)) {
    MapCallHDF5(H5Sclose(sp));
    MapCallHDF5(H5Dclose(d));
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "dataset /%s %s; mapmerge writes a numeric matrix or vector (not written by mapmerge, or damaged)",
            name, nd > 2 ? "has more than 2 dimensions" : "is not numeric");
  }
  if (nd == 0) dims[0] = dims[1] = 1; /* scalar */
  else MapCallHDF5(H5Sget_simple_extent_dims(sp, dims, NULL));
  if (nd == 1) dims[1] = 1;
  /* a sparse chunked dataset can claim any size: refuse what no run writes before allocating it */
  if (dims[0] > ((hsize_t)1 << 28) || dims[1] > ((hsize_t)1 << 28) || dims[0] * dims[1] > ((hsize_t)1 << 28)) {
    MapCallHDF5(H5Sclose(sp));
    MapCallHDF5(H5Dclose(d));
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "dataset /%s claims %llu x %llu values, more than 2^28 (not written by mapmerge, or damaged)",
            name, (unsigned long long)dims[0], (unsigned long long)dims[1]);
  }
  PetscCall(PetscMalloc1(dims[0] * dims[1] + 1, data));
  if (dims[0] * dims[1] > 0) MapCallHDF5(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *data));
  MapCallHDF5(H5Sclose(sp));
  MapCallHDF5(H5Dclose(d));
  PetscFunctionReturn(0);
}

PetscErrorCode MapH5ReadMatrixShaped(hid_t f, const char *file, const char *name, int64_t rows, int64_t cols, PetscBool required,
                                     hsize_t dims[2], double **data)
{
  char want[64];

  PetscFunctionBegin;
  PetscCall(MapH5ReadMatrix(f, name, dims, data));
  PetscCheck(*data || !required, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: dataset /%s is missing (not the results of a mapmerge run, or damaged)",
             file, name);
  if (!*data) PetscFunctionReturn(0);
  if ((rows < 0 || (int64_t)dims[0] == rows) && (cols < 0 || (int64_t)dims[1] == cols)) PetscFunctionReturn(0);
  PetscCall(PetscFree(*data));
  if (rows < 0) snprintf(want, sizeof(want), "[any, %lld]", (long long)cols);
  else if (cols < 0) snprintf(want, sizeof(want), "[%lld, any]", (long long)rows);
  else snprintf(want, sizeof(want), "[%lld, %lld]", (long long)rows, (long long)cols);
  SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: dataset /%s has shape [%llu, %llu], expected %s (not written by mapmerge run, or damaged)", file,
          name, (unsigned long long)dims[0], (unsigned long long)dims[1], want);
}
