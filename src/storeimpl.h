/* Private part of MapStore: the object and the HDF5 helpers shared by the writer (store_import.c)
 * and the reader (store.c). */
#ifndef MAPMERGE_STOREIMPL_H
#define MAPMERGE_STOREIMPL_H

#include <mapmerge/store.h>
#include <hdf5.h>
#include <petscviewer.h>
#include <errno.h>
#include <string.h>

/* Root attribute "format" marks a file as a store; "format_version" changes when the layout does. */
#define MAP_STORE_FORMAT         "mapmerge-store"
#define MAP_STORE_FORMAT_VERSION "1"

struct _p_MapStore {
  MPI_Comm        comm; /* duplicate of the user's communicator */
  char            path[MAP_PATH_LEN];
  hid_t           file, pretrained, task_vectors;
  int64_t         P;
  int             T, ntensors;
  MapStoreTensor *tensors;
  char          **tasks;
  MapLayout       layout;
};

/* Fixed-length, NUL-terminated UTF-8 string type of `len` bytes (H5Tclose it). */
PetscErrorCode MapH5StringType(size_t len, hid_t *type);
/* Collective: a root/group string attribute, written identically by every rank (variable-length UTF-8). */
PetscErrorCode MapH5WriteStringAttr(hid_t loc, const char *key, const char *value);
/* A string attribute (fixed or variable length); *value = NULL when absent. Not collective. */
PetscErrorCode MapH5ReadStringAttr(hid_t loc, const char *key, char **value);
/* Collective: creates dataset `name` of `ndim` dims and writes `data` (identical on every rank) from rank 0. */
PetscErrorCode MapH5WriteSmall(MPI_Comm comm, hid_t loc, const char *name, hid_t type, int ndim, const hsize_t *dims,
                               const void *data);
/* Reads a 1-D string dataset of n entries into a list (MapFreeList). Not collective. */
PetscErrorCode MapH5ReadStrings(hid_t loc, const char *name, const char *what, int64_t n, char ***list);

/* Binary search: the store tensor holding flat index j (tensors sorted by offset). */
int MapStoreTensorAt(int n, const MapStoreTensor *t, int64_t j);

#endif
