/* Private part of MapStore: the object and the HDF5 helpers shared by the writer (store_import.c)
 * and the reader (store.c). */
#ifndef MAPMERGE_STOREIMPL_H
#define MAPMERGE_STOREIMPL_H

#include <mapmerge/store.h>
#include "h5impl.h"
#include <petscviewer.h>
#include <errno.h>
#include <string.h>

/* Root attribute "format" marks a file as a store; "format_version" changes when the layout does. */
#define MAP_STORE_FORMAT         "mapmerge-store"
#define MAP_STORE_FORMAT_VERSION "1"

/* A BF16 store marks /pretrained and /task_vectors (H5T_STD_U16LE) with the string attribute
   dtype = "bf16" and records on each the largest rounding errors of the import. */
#define MAP_STORE_ATTR_DTYPE       "dtype"
#define MAP_STORE_ATTR_BF16        "bf16"
#define MAP_STORE_ATTR_BF16_MAXABS "bf16_max_abs_error"
#define MAP_STORE_ATTR_BF16_MAXREL "bf16_max_rel_error"

struct _p_MapStore {
  MPI_Comm        comm; /* duplicate of the user's communicator */
  char            path[MAP_PATH_LEN];
  hid_t           file, pretrained, task_vectors;
  int64_t         P;
  int             T, ntensors;
  MapStoreTensor *tensors;
  char          **tasks;
  MapLayout       layout;
  MapStoreDType   dtype; /* of /pretrained and /task_vectors */
};

/* Binary search: the store tensor holding flat index j (tensors sorted by offset). */
int MapStoreTensorAt(int n, const MapStoreTensor *t, int64_t j);

#endif
