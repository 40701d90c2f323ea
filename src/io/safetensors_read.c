/* safetensors reader: rank 0 reads the headers (and the shard index) and broadcasts their bytes;
 * every rank parses them the same way, then reads only the byte ranges it asks for with pread. */
#define _POSIX_C_SOURCE 200809L
#include "safetensorsimpl.h"
#include "safetensors_sniff.h"
#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>


#define MAP_ST_MAX_HEADER 100000000ull
#define MAP_ST_MSG_LEN    2048

struct _p_MapSafetensors {
  MPI_Comm               comm;
  char                   path[MAP_PATH_LEN];
  int                    nfiles;
  char                 **files;      /* full paths of the files, in order */
  uint64_t              *data_start; /* byte offset of each file's data section: 8 + header length */
  int                   *fds;        /* opened on first read, -1 before */
  int                    n;
  MapTensorInfo         *t;
  int                   *byname; /* tensor indices sorted by name, for MapSafetensorsFind */
  json_t                *meta;   /* __metadata__ of the first file, or NULL */
  MapSafetensorsReadHook hook;   /* sees every byte range read from a file, as read */
  void                  *hook_ctx;
};

/* What rank 0 read from disk; broadcast verbatim so that every rank parses the same bytes. */
typedef struct {
  char     *index; /* the index JSON text, or NULL for a single file */
  uint64_t  index_len;
  int       nfiles;
  char    **files;
  uint64_t *hlen, *dsize;
  char    **hdr;
} map_raw;

static PetscErrorCode map_raw_free(map_raw *r)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(r->index));
  for (int i = 0; i < r->nfiles; i++) {
    if (r->files) PetscCall(PetscFree(r->files[i]));
    if (r->hdr) PetscCall(PetscFree(r->hdr[i]));
  }
  PetscCall(PetscFree(r->files));
  PetscCall(PetscFree(r->hdr));
  PetscCall(PetscFree(r->hlen));
  PetscCall(PetscFree(r->dsize));
  memset(r, 0, sizeof(*r));
  PetscFunctionReturn(0);
}

static PetscErrorCode map_pread_full(int fd, void *buf, size_t len, uint64_t off, const char *path)
{
  char *p = (char *)buf;

  PetscFunctionBegin;
  while (len > 0) {
    ssize_t r = pread(fd, p, len > (1u << 30) ? (1u << 30) : len, (off_t)off);
    if (r < 0 && errno == EINTR) continue;
    PetscCheck(r >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "%s: read of %zu bytes at offset %llu failed: %s", path, len, (unsigned long long)off,
               strerror(errno));
    PetscCheck(r > 0, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "%s: unexpected end of file at offset %llu (%zu more bytes expected; file truncated?)",
               path, (unsigned long long)off, len);
    p += r;
    len -= (size_t)r;
    off += (uint64_t)r;
  }
  PetscFunctionReturn(0);
}

/* reads the 8-byte length and the header of one file (rank 0) */
static PetscErrorCode map_read_header(const char *path, uint64_t *hlen, uint64_t *dsize, char **hdr)
{
  struct stat   sb;
  unsigned char lenb[8];
  int           fd;

  PetscFunctionBegin;
  PetscCall(MapCheckInputFile(path, "safetensors file"));
  PetscCall(MapCheckpointSniff_Private(path)); /* e.g. a shard that is a pickle */
  fd = open(path, O_RDONLY | O_CLOEXEC);
  PetscCheck(fd >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot open safetensors file %s: %s", path, strerror(errno));
  if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
    close(fd);
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: not a regular file", path);
  }
  uint64_t size = (uint64_t)sb.st_size;
  if (size < 8) {
    close(fd);
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: file truncated: %llu bytes, shorter than the 8-byte header length", path,
            (unsigned long long)size);
  }
  PetscErrorCode ierr = map_pread_full(fd, lenb, 8, 0, path);
  if (ierr) close(fd);
  PetscCall(ierr);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | lenb[i];
  if (n > MAP_ST_MAX_HEADER || n > size - 8) close(fd);
  PetscCheck(n <= MAP_ST_MAX_HEADER, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: header length %llu exceeds the limit of %llu bytes", path,
             (unsigned long long)n, MAP_ST_MAX_HEADER);
  PetscCheck(n <= size - 8, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: file truncated: header length %llu runs past the end of the %llu-byte file",
             path, (unsigned long long)n, (unsigned long long)size);
  ierr = PetscMalloc1(n + 1, hdr);
  if (!ierr) ierr = map_pread_full(fd, *hdr, n, 8, path);
  close(fd);
  PetscCall(ierr);
  (*hdr)[n] = 0;
  *hlen     = n;
  *dsize    = size - 8 - n;
  PetscFunctionReturn(0);
}

static PetscErrorCode map_read_text(const char *path, char **text, uint64_t *len)
{
  struct stat sb;
  int         fd;

  PetscFunctionBegin;
  PetscCall(MapCheckInputFile(path, "file"));
  fd = open(path, O_RDONLY | O_CLOEXEC);
  PetscCheck(fd >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot open %s: %s", path, strerror(errno));
  if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > MAP_ST_MAX_HEADER) {
    close(fd);
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: not a regular file of at most %llu bytes", path, MAP_ST_MAX_HEADER);
  }
  *len                = (uint64_t)sb.st_size;
  PetscErrorCode ierr = PetscMalloc1(*len + 1, text);
  if (!ierr) ierr = map_pread_full(fd, *text, *len, 0, path);
  close(fd);
  PetscCall(ierr);
  (*text)[*len] = 0;
  PetscFunctionReturn(0);
}

static int map_cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* parses an index {"weight_map": {tensor: file}}: *root (json_decref) and the distinct file names
   (relative to the index's folder), sorted. Deterministic, so every rank gets the same answer. */
static PetscErrorCode map_parse_index(const char *what, const char *text, uint64_t len, json_t **root, int *nrel, char ***rel)
{
  json_error_t jerr;
  const char  *k;
  json_t      *v, *wm;
  int          cnt = 0;

  PetscFunctionBegin;
  *nrel = 0;
  *rel  = NULL;
  *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  PetscCheck(*root, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: not valid JSON: %s (line %d)", what, jerr.text, jerr.line);
  wm = json_object_get(*root, "weight_map");
  PetscCheck(json_is_object(wm), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: no \"weight_map\" object (not a safetensors index?)", what);
  PetscCheck(json_object_size(wm) > 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: \"weight_map\" is empty", what);
  PetscCall(PetscCalloc1(json_object_size(wm), rel));
  json_object_foreach(wm, k, v)
  {
    PetscCheck(json_is_string(v), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: weight_map: tensor \"%s\": file name is not a string", what, k);
    const char *f = json_string_value(v);
    /* the index is input too: it may only name files in its folder; where a name lands (after
       "..", symlinks) is checked once it is resolved, in map_collect */
    PetscCheck(f[0] && f[0] != '/' && strlen(f) < 1024, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
               "%s: weight_map: tensor \"%s\": file name \"%.64s\" must be a non-empty relative name", what, k, f);
    PetscBool seen = PETSC_FALSE;
    for (int i = 0; i < cnt && !seen; i++)
      if (!strcmp((*rel)[i], f)) seen = PETSC_TRUE;
    if (!seen) {
      PetscCall(PetscStrallocpy(f, &(*rel)[cnt++]));
      *nrel = cnt; /* kept current, so the caller frees them even after a later error */
    }
  }
  qsort(*rel, (size_t)cnt, sizeof(char *), map_cmp_str);
  *nrel = cnt;
  PetscFunctionReturn(0);
}

/* realpath of path into out[PATH_MAX]; for a file that does not exist, its folder's realpath plus
   its name (so a missing "../x" is still seen to lie outside). 0 when not even the folder resolves. */
static int map_resolve(const char *path, char *out)
{
  char d[PATH_MAX], b[PATH_MAX], rd[PATH_MAX];
  if (realpath(path, out)) return 1;
  if (strlen(path) >= sizeof(d)) return 0;
  strcpy(d, path);
  strcpy(b, path);
  const char *base = basename(b);
  if (!realpath(dirname(d), rd) || !strcmp(base, "..") || !strcmp(base, ".")) return 0;
  return snprintf(out, PATH_MAX, "%s/%s", rd, base) < PATH_MAX;
}

/* rank 0: resolve the path (file, folder or index) and read the raw header bytes */
static PetscErrorCode map_collect(const char *path, map_raw *r)
{
  struct stat sb;
  char        file[MAP_PATH_LEN], dir[MAP_PATH_LEN], tmp[MAP_PATH_LEN];
  PetscBool   is_index = PETSC_FALSE;
  size_t      plen     = strlen(path);

  PetscFunctionBegin;
  PetscCheck(plen > 0 && plen < MAP_PATH_LEN - 64, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "checkpoint path is empty or too long");
  PetscCall(MapCheckpointSniff_Private(path)); /* a pickle, GGUF, ONNX or hub id: say so */
  PetscCheck(stat(path, &sb) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot open checkpoint %s: %s", path, strerror(errno));
  if (S_ISDIR(sb.st_mode)) {
    map_fmt(file, sizeof(file), "%s/model.safetensors", path);
    if (access(file, F_OK)) {
      map_fmt(file, sizeof(file), "%s/model.safetensors.index.json", path);
      PetscCheck(access(file, F_OK) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN,
                 "checkpoint folder %s holds neither model.safetensors nor model.safetensors.index.json", path);
      is_index = PETSC_TRUE;
    }
  } else {
    PetscCall(PetscStrncpy(file, path, sizeof(file)));
    is_index = (plen >= 5 && !strcmp(path + plen - 5, ".json")) ? PETSC_TRUE : PETSC_FALSE;
  }
  if (is_index) {
    json_t *root = NULL;
    char  **rel  = NULL;
    int     nrel = 0;

    PetscCall(map_read_text(file, &r->index, &r->index_len));
    PetscErrorCode ierr = map_parse_index(file, r->index, r->index_len, &root, &nrel, &rel);
    json_decref(root);
    if (!ierr) {
      PetscCall(PetscStrncpy(tmp, file, sizeof(tmp)));
      PetscCall(PetscStrncpy(dir, dirname(tmp), sizeof(dir)));
      ierr = PetscCalloc1(nrel, &r->files);
      if (!ierr) r->nfiles = nrel; /* so that map_raw_free releases them on any later error */
      for (int i = 0; i < nrel && !ierr; i++) {
        char   rdir[PATH_MAX], rfile[PATH_MAX];
        size_t rl;
        if (map_fmt(tmp, sizeof(tmp), "%s/%s", dir, rel[i]) >= (int)sizeof(tmp))
          ierr = PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, PETSC_ERR_ARG_SIZ, PETSC_ERROR_INITIAL, "%s: shard path too long", file);
        else if (realpath(dir, rdir) && map_resolve(tmp, rfile) && (rl = strlen(rdir), strncmp(rfile, rdir, rl) || rfile[rl] != '/'))
          /* where the name lands, "..", symlinks and all, must be inside the folder */
          ierr = PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, PETSC_ERR_FILE_UNEXPECTED, PETSC_ERROR_INITIAL,
                            "%s: shard \"%s\" resolves to %s, outside the checkpoint folder %s", file, rel[i], rfile, rdir);
        else ierr = PetscStrallocpy(tmp, &r->files[i]);
      }
    }
    PetscCall(MapFreeList(nrel, &rel));
    PetscCall(ierr);
    r->nfiles = nrel;
  } else {
    PetscCall(PetscCalloc1(1, &r->files));
    PetscCall(PetscStrallocpy(file, &r->files[0]));
    r->nfiles = 1;
  }
  PetscCall(PetscCalloc1(r->nfiles, &r->hdr));
  PetscCall(PetscCalloc1(r->nfiles, &r->hlen));
  PetscCall(PetscCalloc1(r->nfiles, &r->dsize));
  for (int i = 0; i < r->nfiles; i++) PetscCall(map_read_header(r->files[i], &r->hlen[i], &r->dsize[i], &r->hdr[i]));
  PetscFunctionReturn(0);
}

/* keeps the first error message raised on rank 0 while it reads, to broadcast it */
static PetscErrorCode map_capture_handler(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n, PetscErrorType p,
                                          const char *mess, void *ctx)
{
  char *buf = (char *)ctx;
  if (p == PETSC_ERROR_INITIAL && mess && !buf[0]) map_fmt(buf, MAP_ST_MSG_LEN, "%s", mess);
  return n;
}

static PetscErrorCode map_bcast_bytes(MPI_Comm comm, void *buf, uint64_t len)
{
  char *p = (char *)buf;

  PetscFunctionBegin;
  while (len > 0) {
    int c = len > (1u << 30) ? (1 << 30) : (int)len;
    PetscCallMPI(MPI_Bcast(p, c, MPI_BYTE, 0, comm));
    p += c;
    len -= (uint64_t)c;
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode map_bcast_raw(MPI_Comm comm, int rank, map_raw *r)
{
  uint64_t cnt[2] = {r->index_len, (uint64_t)r->nfiles};
  int      has    = r->index != NULL;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Bcast(&has, 1, MPI_INT, 0, comm));
  PetscCallMPI(MPI_Bcast(cnt, 2, MPI_UINT64_T, 0, comm));
  if (rank) {
    r->index_len = cnt[0];
    r->nfiles    = (int)cnt[1];
    if (has) PetscCall(PetscMalloc1(r->index_len + 1, &r->index));
    PetscCall(PetscCalloc1(r->nfiles, &r->files));
    PetscCall(PetscCalloc1(r->nfiles, &r->hdr));
    PetscCall(PetscCalloc1(r->nfiles, &r->hlen));
    PetscCall(PetscCalloc1(r->nfiles, &r->dsize));
  }
  if (has) PetscCall(map_bcast_bytes(comm, r->index, r->index_len + 1));
  PetscCall(map_bcast_bytes(comm, r->hlen, sizeof(uint64_t) * r->nfiles));
  PetscCall(map_bcast_bytes(comm, r->dsize, sizeof(uint64_t) * r->nfiles));
  for (int i = 0; i < r->nfiles; i++) {
    uint64_t fl = rank ? 0 : strlen(r->files[i]) + 1;
    PetscCallMPI(MPI_Bcast(&fl, 1, MPI_UINT64_T, 0, comm));
    if (rank) {
      PetscCall(PetscMalloc1(fl, &r->files[i]));
      PetscCall(PetscMalloc1(r->hlen[i] + 1, &r->hdr[i]));
    }
    PetscCall(map_bcast_bytes(comm, r->files[i], fl));
    PetscCall(map_bcast_bytes(comm, r->hdr[i], r->hlen[i] + 1));
  }
  PetscFunctionReturn(0);
}

static MapSafetensors map_sort_ctx; /* qsort has no context argument */
static int            map_cmp_byname(const void *a, const void *b)
{
  return strcmp(map_sort_ctx->t[*(const int *)a].name, map_sort_ctx->t[*(const int *)b].name);
}

/* every rank: parse the shard headers into st, checking them against the index's weight_map */
static PetscErrorCode map_build_shards(MapSafetensors st, map_raw *r, json_t *wm, char **rel)
{
  PetscFunctionBegin;
  st->nfiles = r->nfiles;
  st->files  = r->files;
  r->files   = NULL;
  PetscCall(PetscMalloc1(st->nfiles, &st->data_start));
  PetscCall(PetscMalloc1(st->nfiles, &st->fds));
  for (int f = 0; f < st->nfiles; f++) st->fds[f] = -1;
  for (int f = 0; f < st->nfiles; f++) {
    MapTensorInfo *ft, *all;
    char          *meta = NULL;
    int            fn;

    st->data_start[f] = 8 + r->hlen[f];
    PetscCall(MapSafetensorsParseHeader(st->files[f], r->hdr[f], r->hlen[f], r->dsize[f], &fn, &ft, f == 0 ? &meta : NULL));
    if (meta) {
      st->meta = json_loads(meta, 0, NULL);
      PetscCall(PetscFree(meta));
    }
    for (int i = 0; i < fn && wm; i++) {
      json_t *v = json_object_get(wm, ft[i].name);
      if (!v || strcmp(json_string_value(v), rel[f])) {
        char msg[MAP_ST_MSG_LEN];
        map_fmt(msg, sizeof(msg), "%s: tensor \"%s\" is in shard %s but the index %s%s", st->path, ft[i].name, rel[f],
                v ? "maps it to " : "does not list it", v ? json_string_value(v) : "");
        PetscCall(PetscFree(ft));
        SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s", msg);
      }
    }
    PetscCall(PetscMalloc1(st->n + fn + 1, &all));
    if (st->n) PetscCall(PetscArraycpy(all, st->t, st->n));
    for (int i = 0; i < fn; i++) {
      ft[i].file     = f;
      all[st->n + i] = ft[i];
    }
    PetscCall(PetscFree(st->t));
    PetscCall(PetscFree(ft));
    st->t = all;
    st->n += fn;
  }
  if (wm)
    PetscCheck((size_t)st->n == json_object_size(wm), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
               "%s: the index lists %zu tensors but its shards hold %d", st->path, json_object_size(wm), st->n);
  PetscCall(PetscMalloc1(st->n + 1, &st->byname));
  for (int i = 0; i < st->n; i++) st->byname[i] = i;
  map_sort_ctx = st;
  qsort(st->byname, (size_t)st->n, sizeof(int), map_cmp_byname);
  for (int i = 1; i < st->n; i++) {
    const MapTensorInfo *a = &st->t[st->byname[i - 1]], *b = &st->t[st->byname[i]];
    PetscCheck(strcmp(a->name, b->name), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor \"%s\" appears twice (in %s and %s)", st->path,
               a->name, st->files[a->file], st->files[b->file]);
  }
  PetscFunctionReturn(0);
}

/* every rank: parse the broadcast bytes into st */
static PetscErrorCode map_build(MapSafetensors st, map_raw *r)
{
  json_t        *index = NULL;
  char         **rel   = NULL;
  int            nrel  = 0;
  PetscErrorCode ierr  = 0;

  PetscFunctionBegin;
  if (r->index) {
    ierr = map_parse_index(st->path, r->index, r->index_len, &index, &nrel, &rel);
    if (!ierr && nrel != r->nfiles)
      ierr = PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, PETSC_ERR_PLIB, PETSC_ERROR_INITIAL,
                        "%s: the index parses differently on this rank", st->path);
  }
  if (!ierr) ierr = map_build_shards(st, r, index ? json_object_get(index, "weight_map") : NULL, rel);
  json_decref(index);
  PetscCall(MapFreeList(nrel, &rel));
  PetscCall(ierr);
  PetscFunctionReturn(0);
}

/*
  MapSafetensorsOpen - see safetensors.h. Collective: rank 0 reads, every rank parses; an error on
  rank 0 (missing or truncated file, bad index) is broadcast so that all ranks fail together with
  the same message, and the parse errors are the same on every rank because the bytes are.
*/
PetscErrorCode MapSafetensorsOpen(MPI_Comm comm, const char *path, MapSafetensors *st)
{
  map_raw        raw;
  int            rank;
  int            code                = 0;
  char           msg[MAP_ST_MSG_LEN] = "";
  PetscErrorCode ierr;

  PetscFunctionBegin;
  *st = NULL;
  memset(&raw, 0, sizeof(raw));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (!rank) {
    PetscCall(PetscPushErrorHandler(map_capture_handler, msg));
    code = (int)map_collect(path, &raw);
    PetscCall(PetscPopErrorHandler());
  }
  PetscCallMPI(MPI_Bcast(&code, 1, MPI_INT, 0, comm));
  if (code) {
    PetscCallMPI(MPI_Bcast(msg, sizeof(msg), MPI_CHAR, 0, comm));
    PetscCall(map_raw_free(&raw));
    SETERRQ(comm, (PetscErrorCode)code, "%s", msg);
  }
  PetscCall(map_bcast_raw(comm, rank, &raw));
  PetscCall(PetscNew(st));
  (*st)->comm = comm;
  PetscCall(PetscStrncpy((*st)->path, path, sizeof((*st)->path)));
  /* the bytes are the same everywhere, so is the outcome: report it once, on comm */
  PetscCall(PetscPushErrorHandler(map_capture_handler, msg));
  ierr = map_build(*st, &raw);
  PetscCall(PetscPopErrorHandler());
  PetscCall(map_raw_free(&raw));
  if (ierr) {
    PetscCall(MapSafetensorsDestroy(st));
    SETERRQ(comm, ierr, "%s", msg);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsDestroy(MapSafetensors *st)
{
  PetscFunctionBegin;
  if (!st || !*st) PetscFunctionReturn(0);
  MapSafetensors s = *st;
  for (int i = 0; i < s->nfiles; i++) {
    if (s->fds && s->fds[i] >= 0) close(s->fds[i]);
    if (s->files) PetscCall(PetscFree(s->files[i]));
  }
  PetscCall(PetscFree(s->files));
  PetscCall(PetscFree(s->fds));
  PetscCall(PetscFree(s->data_start));
  PetscCall(PetscFree(s->t));
  PetscCall(PetscFree(s->byname));
  json_decref(s->meta);
  PetscCall(PetscFree(*st));
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsGetNumTensors(MapSafetensors st, int *n)
{
  PetscFunctionBegin;
  *n = st->n;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsGetTensor(MapSafetensors st, int i, const MapTensorInfo **t)
{
  PetscFunctionBegin;
  PetscCheck(i >= 0 && i < st->n, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: tensor index %d out of range [0, %d)", st->path, i, st->n);
  *t = &st->t[i];
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsFind(MapSafetensors st, const char *name, const MapTensorInfo **t)
{
  int lo = 0, hi = st->n;

  PetscFunctionBegin;
  *t = NULL;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2, c = strcmp(st->t[st->byname[mid]].name, name);
    if (!c) {
      *t = &st->t[st->byname[mid]];
      break;
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsGetMetadata(MapSafetensors st, const char *key, const char **value)
{
  PetscFunctionBegin;
  *value = st->meta ? json_string_value(json_object_get(st->meta, key)) : NULL;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsGetPath(MapSafetensors st, const char **path)
{
  PetscFunctionBegin;
  *path = st->path;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsGetFiles(MapSafetensors st, int *nfiles, const char *const **files)
{
  PetscFunctionBegin;
  *nfiles = st->nfiles;
  *files  = (const char *const *)st->files;
  PetscFunctionReturn(0);
}

static PetscErrorCode map_check_tensor(MapSafetensors st, const MapTensorInfo *t)
{
  PetscFunctionBegin;
  PetscCheck(t >= st->t && t < st->t + st->n, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "%s: tensor \"%s\" does not belong to this checkpoint", st->path,
             t->name);
  if (st->fds[t->file] < 0) {
    PetscCall(MapCheckInputFile(st->files[t->file], "safetensors file")); /* it may have been replaced since the header was read */
    st->fds[t->file] = open(st->files[t->file], O_RDONLY | O_CLOEXEC);
    PetscCheck(st->fds[t->file] >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot open %s: %s", st->files[t->file], strerror(errno));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsReadF32(MapSafetensors st, const MapTensorInfo *t, int64_t start, int64_t count, float *out)
{
  const size_t   isize = MapDTypeSize(t->dtype);
  const int64_t  chunk = 1 << 16;
  unsigned char *buf   = NULL;

  PetscFunctionBegin;
  PetscCall(map_check_tensor(st, t));
  const char *fname = st->files[t->file];
  PetscCheck(MapDTypeIsFloat(t->dtype), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "%s: tensor \"%s\" has dtype %s, not a floating type", fname, t->name,
             MapTensorDTypeName(t));
  PetscCheck(start >= 0 && count >= 0 && start <= t->numel && count <= t->numel - start, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "%s: tensor \"%s\": elements [%lld, %lld+%lld) out of range [0, %lld)", fname, t->name, (long long)start, (long long)start,
             (long long)count, (long long)t->numel);
  uint64_t off = st->data_start[t->file] + t->begin + (uint64_t)start * isize;
  if (t->dtype == MAP_DTYPE_F32) {
    PetscCall(map_pread_full(st->fds[t->file], out, (size_t)count * 4, off, fname));
    if (st->hook) PetscCall(st->hook(st->hook_ctx, t->file, off, (size_t)count * 4, out));
    PetscFunctionReturn(0);
  }
  PetscCall(PetscMalloc1((size_t)PetscMin(count, chunk) * isize + 1, &buf));
  for (int64_t done = 0; done < count;) {
    int64_t        c    = PetscMin(count - done, chunk);
    PetscErrorCode ierr = map_pread_full(st->fds[t->file], buf, (size_t)c * isize, off + (uint64_t)done * isize, fname);
    if (!ierr && st->hook) ierr = st->hook(st->hook_ctx, t->file, off + (uint64_t)done * isize, (size_t)c * isize, buf);
    if (ierr) PetscCall(PetscFree(buf));
    PetscCall(ierr);
    float *o = out + done;
    if (t->dtype == MAP_DTYPE_BF16) MapBF16ToF32Array(buf, c, o);
    else
      for (int64_t k = 0; k < c; k++) {
        if (t->dtype == MAP_DTYPE_F16) {
          uint16_t h;
          memcpy(&h, buf + 2 * k, 2);
          o[k] = MapF16ToF32(h);
        } else {
          double d;
          memcpy(&d, buf + 8 * k, 8);
          o[k] = (float)d;
        }
      }
    done += c;
  }
  PetscCall(PetscFree(buf));
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsReadRaw(MapSafetensors st, const MapTensorInfo *t, void *buf)
{
  PetscFunctionBegin;
  PetscCall(map_check_tensor(st, t));
  PetscCall(map_pread_full(st->fds[t->file], buf, (size_t)(t->end - t->begin), st->data_start[t->file] + t->begin, st->files[t->file]));
  if (st->hook) PetscCall(st->hook(st->hook_ctx, t->file, st->data_start[t->file] + t->begin, (size_t)(t->end - t->begin), buf));
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsSetReadHook(MapSafetensors st, MapSafetensorsReadHook hook, void *ctx)
{
  PetscFunctionBegin;
  st->hook     = hook;
  st->hook_ctx = ctx;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsGetDataStart(MapSafetensors st, int file, uint64_t *start)
{
  PetscFunctionBegin;
  PetscCheck(file >= 0 && file < st->nfiles, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: file index %d of %d", st->path, file, st->nfiles);
  *start = st->data_start[file];
  PetscFunctionReturn(0);
}
