/* Private HDF5 helpers (core module): string types and attributes, small datasets. */
#ifndef MAPMERGE_H5IMPL_H
#define MAPMERGE_H5IMPL_H

#include <mapmerge/core.h>
#include <hdf5.h>

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
