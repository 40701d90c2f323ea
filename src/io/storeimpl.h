/* Private part of MapStore: the object and the HDF5 helpers shared by the writer (store_import.c)
 * and the reader (store.c, store_read.c). */
#ifndef MAPMERGE_STOREIMPL_H
#define MAPMERGE_STOREIMPL_H

#include <mapmerge/store.h>
#include <mapmerge/core_h5.h>
#include <petscviewer.h>
#include <errno.h>
#include <string.h>

/* Root attribute "format" marks a file as a store; "format_version" changes when the layout does. */
#define MAP_STORE_FORMAT         "mapmerge-store"
#define MAP_STORE_FORMAT_VERSION "1"
/* the source digests' definition, followed by the range size in bytes (attribute "source_digest") */
#define MAP_STORE_DIGEST_KIND "sha256-ranges-"
/* the format versions this reader understands (a store's format_version must be one of them) */
#define MAP_STORE_FORMAT_VERSIONS_READ "1"

/* A 16-bit store marks /pretrained and /task_vectors with the string attribute dtype = "bf16"
   (H5T_STD_U16LE) or "f16" (an IEEE binary16 float type) and records on each the largest rounding
   errors of the import. */
#define MAP_STORE_ATTR_DTYPE "dtype"

/* What the writer, the reader and the description need to know of a storage dtype. */
typedef struct {
  const char *name;   /* root attribute storage_dtype: "F32", "BF16", "F16" */
  const char *mark;   /* dataset attribute dtype; NULL for F32 (no mark) */
  const char *layout; /* how the datasets hold it, for `info` */
  const char *maxabs; /* dataset attributes with the largest rounding errors (NULL for F32) */
  const char *maxrel;
  const char *relbound;                              /* the relative rounding bound for normal values, for the import summary */
  size_t      size;                                  /* bytes per element */
  uint16_t    expmask;                               /* exponent field of the 16-bit format: all ones is Inf or NaN */
  void (*round)(const float *, int64_t, uint16_t *); /* F32 -> 16 bits, nearest even, n at once (NULL for F32) */
  float (*widen)(uint16_t);                          /* exact (NULL for F32) */
} MapStoreDTypeInfo;

/* The description of dt; NULL for a value outside the enum. */
const MapStoreDTypeInfo *MapStoreDTypeGetInfo(MapDType dt);
/* A new HDF5 type for dt (H5Tclose it): the little-endian file type, or the native memory type.
   The F16 memory type equals the file type on little-endian hosts, so HDF5 converts nothing and
   parallel I/O stays collective. */
PetscErrorCode MapStoreDTypeH5Type(MapDType dt, PetscBool file, hid_t *type);

struct _p_MapStore {
  MPI_Comm        comm; /* duplicate of the user's communicator */
  char            path[MAP_PATH_LEN];
  hid_t           file, pretrained, task_vectors;
  int64_t         P;
  int             T, ntensors;
  MapStoreTensor *tensors;
  char          **tasks;
  MapLayout       layout;
  MapDType        dtype;              /* of /pretrained and /task_vectors */
  PetscBool       has_checksums;      /* written at import (MAP_STORE_ATTR_CHECKSUM); older stores have none */
  uint64_t        csum_pre, *csum_tv; /* /pretrained, and /task_vectors row by row */
};

/* Integrity: string attribute "checksum" (MapChecksum64, "map64:<hex>") on /pretrained, on each
   private tensor, and on /task_vectors one per row, comma-separated. */
#define MAP_STORE_ATTR_CHECKSUM "checksum"

/* `info`: the integer/bool buffers and the recorded HF files (store_hf.c). */
PetscErrorCode MapStoreViewHF_Private(MapStore store, PetscViewer viewer);

/* Binary search: the store tensor holding flat index j (tensors sorted by offset). */
int MapStoreTensorAt(int n, const MapStoreTensor *t, int64_t j);

#endif
