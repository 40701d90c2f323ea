/* mapmerge core, HDF5: the checked-call macro MapCallHDF5 and small helpers (string types and
 * attributes, small datasets, matrices). For the modules that use HDF5; core.h does not include it. */
#ifndef MAPMERGE_CORE_H5_H
#define MAPMERGE_CORE_H5_H

#include <mapmerge/core.h>
#include <hdf5.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* MapCallHDF5 - checks an HDF5 return value (herr_t or hid_t); a negative value becomes a PETSc
   error that names the call, after HDF5's own error stack has been printed. */
#define MapCallHDF5(call) \
  do { \
    errno                 = 0; /* what the file system said, if anything: "No space left on device" beats the call's text */ \
    long long map_h5_ret_ = (long long)(call); \
    if (PetscUnlikely(map_h5_ret_ < 0)) { \
      int map_h5_errno_ = errno; \
      H5Eprint2(H5E_DEFAULT, stderr); \
      if (map_h5_errno_ == ENOSPC || map_h5_errno_ == EDQUOT || map_h5_errno_ == EIO || map_h5_errno_ == EROFS || map_h5_errno_ == EFBIG) \
        SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s (HDF5 call failed: %s)", strerror(map_h5_errno_), #call); \
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_LIB, "HDF5 call failed: %s", #call); \
    } \
  } while (0)

/* Fixed-length, NUL-terminated UTF-8 string type of `len` bytes (H5Tclose it). */
PetscErrorCode MapH5StringType(size_t len, hid_t *type);
/* A root/group string attribute (variable-length UTF-8); collective when the file is open collectively
   (every rank writes the same value). */
PetscErrorCode MapH5WriteStringAttr(hid_t loc, const char *key, const char *value);
/* A string attribute (fixed or variable length); *value = NULL when absent. Not collective. */
PetscErrorCode MapH5ReadStringAttr(hid_t loc, const char *key, char **value);
/* A scalar double attribute; collective like MapH5WriteStringAttr. */
PetscErrorCode MapH5WriteDoubleAttr(hid_t loc, const char *key, double value);
/* A scalar numeric attribute read as double; *found = PETSC_FALSE when absent. Not collective. */
PetscErrorCode MapH5ReadDoubleAttr(hid_t loc, const char *key, double *value, PetscBool *found);
/* Collective: creates dataset `name` of `ndim` dims and writes `data` (identical on every rank) from rank 0. */
PetscErrorCode MapH5WriteSmall(MPI_Comm comm, hid_t loc, const char *name, hid_t type, int ndim, const hsize_t *dims,
                               const void *data);
/* Reads a 1-D string dataset of n entries into a list (MapFreeList). Not collective. */
PetscErrorCode MapH5ReadStrings(hid_t loc, const char *name, const char *what, int64_t n, char ***list);
/* A double dataset [rows, cols] (cols = 0: 1-D [rows]). Serial file. */
PetscErrorCode MapH5WriteMatrix(hid_t loc, const char *name, PetscInt rows, int cols, const double *data);
/* A 1-D variable-length string dataset. Serial file. */
PetscErrorCode MapH5WriteStrings(hid_t loc, const char *name, int n, char **s);
/* Whether every component of a path a/b/c exists (H5Lexists needs the parents to exist). */
PetscBool MapH5Exists(hid_t f, const char *name);
/* A double dataset, whole (dims[1] = 1 for 1-D; PetscFree *data); *data = NULL and dims 0 when it is
   absent. Not collective. */
PetscErrorCode MapH5ReadMatrix(hid_t f, const char *name, hsize_t dims[2], double **data);
/* The same, refusing any other shape: rows/cols the expected sizes (-1: any; a 1-D [n] is [n, 1]),
   required: absence is an error too. Errors name the file (`file`), the dataset and both shapes. */
PetscErrorCode MapH5ReadMatrixShaped(hid_t f, const char *file, const char *name, int64_t rows, int64_t cols, PetscBool required,
                                     hsize_t dims[2], double **data);

#endif
