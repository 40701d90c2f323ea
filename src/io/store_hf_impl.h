/* Private to store_hf.c and store_hf_read.c. */
#ifndef MAPMERGE_STORE_HF_IMPL_H
#define MAPMERGE_STORE_HF_IMPL_H

#include "storeimpl.h"

/* The HDF5 type of an integer/bool dtype as stored (little-endian; BOOL and U8 as uint8). */
PetscErrorCode MapStoreBufferH5Type_Private(MapDType dt, hid_t *type);
/* "[a,b,c]" */
void MapStoreShapeText_Private(int ndim, const int64_t *shape, char *buf, size_t len);

#endif
