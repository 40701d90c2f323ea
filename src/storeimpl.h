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

/* Binary search: the store tensor holding flat index j (tensors sorted by offset). */
int MapStoreTensorAt(int n, const MapStoreTensor *t, int64_t j);

#endif
