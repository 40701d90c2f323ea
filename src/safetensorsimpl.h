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

#endif
