/* Kept for code written against the former private header: the HDF5 helpers are <mapmerge/core_h5.h>. */
#ifndef MAPMERGE_H5IMPL_H
#define MAPMERGE_H5IMPL_H
#include <mapmerge/core_h5.h>
#endif
