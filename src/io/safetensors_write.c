/* safetensors writers: the header (MapSafetensorsBuildHeader) and the serial writer from memory
 * (MapSafetensorsWrite), written under a temporary name and renamed into place only once complete
 * (the parallel MPI-IO writer: safetensors_writer.c). */
#define _POSIX_C_SOURCE 200809L
#include "safetensorsimpl.h"
#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>

static int map_cmp_name(const void *a, const void *b)
{
  return strcmp((*(const MapTensorInfo *const *)a)->name, (*(const MapTensorInfo *const *)b)->name);
}

/* checks the tensor list and lays the tensors out contiguously, in order */
PetscErrorCode MapSafetensorsLayout_Private(int n, MapTensorInfo *t)
{
  const MapTensorInfo **s;
  uint64_t              pos = 0;

  PetscFunctionBegin;
  PetscCheck(n >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "number of tensors must be >= 0, got %d", n);
  for (int i = 0; i < n; i++) {
    size_t isize = MapDTypeSize(t[i].dtype);
    PetscCheck(strnlen(t[i].name, MAP_NAME_LEN) < MAP_NAME_LEN && t[i].name[0], PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG,
               "tensor %d: name is empty or longer than %d bytes", i, MAP_NAME_LEN - 1);
    PetscCheck(strcmp(t[i].name, "__metadata__"), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "tensor %d: \"__metadata__\" is reserved", i);
    PetscCheck(isize > 0, PETSC_COMM_SELF, PETSC_ERR_SUP, "tensor \"%s\": cannot write dtype %s", t[i].name, MapDTypeName(t[i].dtype));
    PetscCheck(t[i].ndim >= 0 && t[i].ndim <= MAP_MAX_NDIM, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "tensor \"%s\": ndim %d not in [0, %d]",
               t[i].name, t[i].ndim, MAP_MAX_NDIM);
    uint64_t numel = 1, bytes;
    for (int d = 0; d < t[i].ndim; d++) {
      PetscCheck(t[i].shape[d] >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "tensor \"%s\": shape[%d] = %lld < 0", t[i].name, d,
                 (long long)t[i].shape[d]);
      PetscCheck(!__builtin_mul_overflow(numel, (uint64_t)t[i].shape[d], &numel), PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
                 "tensor \"%s\": size overflows", t[i].name);
    }
    PetscCheck(!__builtin_mul_overflow(numel, (uint64_t)isize, &bytes) && bytes <= (uint64_t)INT64_MAX - pos, PETSC_COMM_SELF,
               PETSC_ERR_ARG_OUTOFRANGE, "tensor \"%s\": size overflows", t[i].name);
    t[i].numel = (int64_t)numel;
    t[i].begin = pos;
    t[i].end   = pos + bytes;
    t[i].file  = 0;
    pos += bytes;
  }
  PetscCall(PetscMalloc1(n + 1, &s));
  for (int i = 0; i < n; i++) s[i] = &t[i];
  qsort(s, (size_t)n, sizeof(*s), map_cmp_name);
  PetscErrorCode ierr = 0;
  int            dup  = -1;
  for (int i = 1; i < n && dup < 0; i++)
    if (!strcmp(s[i - 1]->name, s[i]->name)) dup = i;
  if (dup >= 0) ierr = PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, PETSC_ERR_ARG_WRONG, PETSC_ERROR_INITIAL,
                                  "tensor \"%s\" is listed twice", s[dup]->name);
  PetscCall(PetscFree(s));
  PetscCall(ierr);
  PetscFunctionReturn(0);
}

static PetscErrorCode map_build_json(int n, const MapTensorInfo *t, int nmeta, const char *const *keys, const char *const *values, json_t *root)
{
  json_t *meta = json_object();

  PetscFunctionBegin;
  PetscCheck(meta && !json_object_set_new(root, "__metadata__", meta), PETSC_COMM_SELF, PETSC_ERR_MEM, "out of memory building the header");
  PetscCheck(!json_object_set_new(meta, "format", json_string("pt")), PETSC_COMM_SELF, PETSC_ERR_MEM, "out of memory building the header");
  for (int i = 0; i < nmeta; i++) {
    PetscCheck(keys[i] && values[i], PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "metadata entry %d has a NULL key or value", i);
    PetscCheck(strcmp(keys[i], "format") || !strcmp(values[i], "pt"), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG,
               "metadata \"format\" must be \"pt\" (PyTorch's loaders require it), got \"%s\"", values[i]);
    PetscCheck(!json_object_set_new(meta, keys[i], json_string(values[i])), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG,
               "metadata key \"%s\" or its value is not valid UTF-8", keys[i]);
  }
  for (int i = 0; i < n; i++) {
    json_t *shape = json_array(), *e = json_object();
    PetscCheck(shape && e, PETSC_COMM_SELF, PETSC_ERR_MEM, "out of memory building the header");
    for (int d = 0; d < t[i].ndim; d++) json_array_append_new(shape, json_integer((json_int_t)t[i].shape[d]));
    json_t *offs = json_pack("[II]", (json_int_t)t[i].begin, (json_int_t)t[i].end);
    json_object_set_new(e, "dtype", json_string(MapDTypeName(t[i].dtype)));
    json_object_set_new(e, "shape", shape);
    json_object_set_new(e, "data_offsets", offs);
    PetscCheck(offs && !json_object_set_new(root, t[i].name, e), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG,
               "tensor name \"%s\" is not valid UTF-8", t[i].name);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsBuildHeader(int n, MapTensorInfo *tensors, int nmeta, const char *const *keys, const char *const *values,
                                         char **header, size_t *len)
{
  json_t *root = json_object();
  char   *s    = NULL;

  PetscFunctionBegin;
  *header = NULL;
  *len    = 0;
  PetscCheck(root, PETSC_COMM_SELF, PETSC_ERR_MEM, "out of memory building the header");
  PetscErrorCode ierr = MapSafetensorsLayout_Private(n, tensors);
  if (!ierr) ierr = map_build_json(n, tensors, nmeta, keys, values, root);
  if (!ierr) s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
  json_decref(root);
  PetscCall(ierr);
  PetscCheck(s, PETSC_COMM_SELF, PETSC_ERR_MEM, "cannot serialise the header");
  /* pad with spaces so the data section starts 8-byte aligned, as the reference writer does */
  size_t l = strlen(s), hl = (l + 7) / 8 * 8;
  ierr = PetscMalloc1(8 + hl, header);
  if (!ierr) {
    for (int i = 0; i < 8; i++) (*header)[i] = (char)((uint64_t)hl >> (8 * i));
    memcpy(*header + 8, s, l);
    memset(*header + 8 + l, ' ', hl - l);
    *len = 8 + hl;
  }
  free(s);
  PetscCall(ierr);
  PetscFunctionReturn(0);
}

/* writes bytes to path through a temporary file, fsync and rename; returns 0, or -1 with msg set */
int MapSafetensorsWriteFileMsg_Private(const char *path, int nparts, const void *const *parts, const size_t *lens, char *msg, size_t mlen)
{
  char tmp[MAP_PATH_LEN];

  if (MapTempName(path, tmp, sizeof(tmp))) return map_fmt(msg, mlen, "path too long: %s", path), -1;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return map_fmt(msg, mlen, "cannot create %s (for %s): %s", tmp, path, strerror(errno)), -1;
  if (MapTempRegister(tmp)) {
    map_fmt(msg, mlen, "cannot register the temporary file %s", tmp);
    (void)close(fd);
    (void)unlink(tmp);
    return -1;
  }
  msg[0] = 0;
  for (int i = 0; i < nparts && !msg[0]; i++) {
    const char *p = (const char *)parts[i];
    for (size_t len = lens[i]; len > 0 && !msg[0];) {
      ssize_t w = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) map_fmt(msg, mlen, "write to %s failed: %s", tmp, w < 0 ? strerror(errno) : "no progress");
      else p += w, len -= (size_t)w;
    }
  }
  if (!msg[0] && fsync(fd)) map_fmt(msg, mlen, "fsync of %s failed: %s", tmp, strerror(errno));
  if (close(fd) && !msg[0]) map_fmt(msg, mlen, "close of %s failed: %s", tmp, strerror(errno));
  if (!msg[0] && rename(tmp, path)) map_fmt(msg, mlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
  if (msg[0]) (void)unlink(tmp);
  (void)MapTempUnregister(tmp);
  return msg[0] ? -1 : 0;
}

PetscErrorCode MapSafetensorsWriteFileAtomic_Private(const char *path, int nparts, const void *const *parts, const size_t *lens)
{
  char msg[2 * MAP_PATH_LEN + 64];

  PetscFunctionBegin;
  PetscCheck(!MapSafetensorsWriteFileMsg_Private(path, nparts, parts, lens, msg, sizeof(msg)), PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s", msg);
  PetscFunctionReturn(0);
}

/*
  MapSafetensorsWrite - see safetensors.h. Not collective: call it on one rank.
*/
PetscErrorCode MapSafetensorsWrite(const char *path, int n, const MapTensorData *tensors, int nmeta, const char *const *keys,
                                   const char *const *values)
{
  MapTensorInfo *t;
  const void   **parts;
  size_t        *lens;
  char          *hdr = NULL;
  size_t         hlen;

  PetscFunctionBegin;
  PetscCheck(n >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: number of tensors must be >= 0, got %d", path, n);
  PetscCall(PetscCalloc1(n + 1, &t));
  PetscCall(PetscMalloc2(n + 1, &parts, n + 1, &lens));
  for (int i = 0; i < n; i++) {
    PetscCheck(tensors[i].name && strlen(tensors[i].name) < MAP_NAME_LEN, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "%s: tensor %d: name missing or too long",
               path, i);
    strcpy(t[i].name, tensors[i].name);
    t[i].dtype = tensors[i].dtype;
    t[i].ndim  = tensors[i].ndim;
    for (int d = 0; d < MAP_MAX_NDIM; d++) t[i].shape[d] = tensors[i].shape[d];
  }
  PetscCall(MapSafetensorsBuildHeader(n, t, nmeta, keys, values, &hdr, &hlen));
  parts[0] = hdr;
  lens[0]  = hlen;
  for (int i = 0; i < n; i++) {
    lens[i + 1] = (size_t)(t[i].end - t[i].begin);
    PetscCheck(tensors[i].data || !lens[i + 1], PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "%s: tensor \"%s\": data is NULL", path, t[i].name);
    parts[i + 1] = tensors[i].data;
  }
  PetscCall(MapSafetensorsWriteFileAtomic_Private(path, n + 1, parts, lens));
  PetscCall(PetscFree(hdr));
  PetscCall(PetscFree2(parts, lens));
  PetscCall(PetscFree(t));
  PetscFunctionReturn(0);
}
