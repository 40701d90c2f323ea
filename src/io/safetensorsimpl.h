/* Private to the safetensors module (reader and writers). */
#ifndef MAPMERGE_SAFETENSORSIMPL_H
#define MAPMERGE_SAFETENSORSIMPL_H

#include <mapmerge/safetensors.h>
#include <stdarg.h>
#include <stdio.h>

/* vsnprintf that the compiler does not second-guess: messages may be cut, paths are checked */
static inline int map_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int map_fmt(char *buf, size_t len, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int r = vsnprintf(buf, len, fmt, ap);
  va_end(ap);
  return r;
}

/* Shared by the serial writer (safetensors_write.c) and the parallel one (safetensors_writer.c). */
/* checks the tensor list and lays the tensors out contiguously, in order */
PetscErrorCode MapSafetensorsLayout_Private(int n, MapTensorInfo *t);
/* writes bytes to path through a temporary file, fsync and rename; returns 0, or -1 with msg set */
int MapSafetensorsWriteFileMsg_Private(const char *path, int nparts, const void *const *parts, const size_t *lens, char *msg, size_t mlen);
/* the same, raising the message as a PETSc error */
PetscErrorCode MapSafetensorsWriteFileAtomic_Private(const char *path, int nparts, const void *const *parts, const size_t *lens);

#endif
