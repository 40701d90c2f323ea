/* safetensors parallel writer (MapSafetensorsWriter): MPI-IO into one file or a staged folder,
 * optionally sharded with a model.safetensors.index.json, switched into place by Close only once
 * complete (the serial writer and the header: safetensors_write.c). */
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
#include <dirent.h>
#include <fnmatch.h>
#include <linux/fs.h> /* RENAME_EXCHANGE */

/* ---- parallel writer ---- */
struct _p_MapSafetensorsWriter {
  MPI_Comm  comm;
  int       rank;
  char      path[MAP_PATH_LEN];
  char      stage[MAP_PATH_LEN]; /* folder: the fresh folder the export is written into, switched in by Close */
  PetscBool folder;              /* path is a folder: staged and switched in whole (sharded, or MapSafetensorsWriterCreateFolder) */
  PetscBool sharded;             /* model-0000k-of-0000n.safetensors + index; else one file (model.safetensors in a folder) */
  int       nextra;              /* rank 0: files added to the staging folder (MapSafetensorsWriterAddFile) */
  char (*extra)[MAP_PATH_LEN];
  int                nreplaced; /* names of an old export's files never carried over (MapSafetensorsWriterReplaces) */
  const char *const *replaced;
  int                n;
  MapTensorInfo     *t; /* begin/end relative to the data section of file t[i].file */
  int                nfiles;
  char (*final)[MAP_PATH_LEN];
  char (*tmp)[MAP_PATH_LEN];
  char     *fname; /* shard base names, MAP_NAME_LEN each */
  MPI_File *fh;
  uint64_t *data_start, *data_size;
  uint64_t  written; /* data bytes this rank wrote */
  int       ok;      /* 0 after a local I/O failure; reported collectively by Close */
  char      msg[1024];
};

static void map_mpi_err(int rc, char *buf, size_t len)
{
  char s[MPI_MAX_ERROR_STRING];
  int  l = 0;
  MPI_Error_string(rc, s, &l);
  map_fmt(buf, len, "%s", s);
}

static PetscErrorCode map_writer_free(MapSafetensorsWriter w)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(w->t));
  PetscCall(PetscFree(w->final));
  PetscCall(PetscFree(w->tmp));
  PetscCall(PetscFree(w->fname));
  PetscCall(PetscFree(w->fh));
  PetscCall(PetscFree(w->data_start));
  PetscCall(PetscFree(w->data_size));
  PetscCall(PetscFree(w->extra));
  PetscCall(PetscFree(w));
  PetscFunctionReturn(0);
}

/* assigns tensors to shards: a new shard starts when the next tensor would overflow a non-empty one */
static PetscErrorCode map_writer_shard(MapSafetensorsWriter w, uint64_t max_shard_bytes)
{
  uint64_t cur = 0;
  int      f   = 0;

  PetscFunctionBegin;
  for (int i = 0; i < w->n; i++) {
    uint64_t b = w->t[i].end - w->t[i].begin;
    if (max_shard_bytes > 0 && cur > 0 && cur + b > max_shard_bytes) {
      f++;
      cur = 0;
    }
    w->t[i].file = f;
    cur += b;
  }
  w->nfiles = w->n ? f + 1 : 1;
  PetscFunctionReturn(0);
}

/* a folder: rank 0 makes a fresh staging folder beside the output; Close switches it in whole, so
   an existing export is replaced by the new one or kept, never mixed. Everybody learns whether
   that worked. */
static PetscErrorCode map_writer_stage(MPI_Comm comm, const char *path, MapSafetensorsWriter w)
{
  int ok = 1;

  PetscFunctionBegin;
  if (w->folder && !w->rank) {
    struct stat sb;
    if (!stat(path, &sb) && !S_ISDIR(sb.st_mode)) ok = 0, map_fmt(w->msg, sizeof(w->msg), "output %s exists and is not a folder", path);
    else if (!stat(path, &sb)) { /* an existing folder: its other files are carried over (Close), folders inside it are not */
      DIR           *d = opendir(path);
      struct dirent *e;
      if (!d) ok = 0, map_fmt(w->msg, sizeof(w->msg), "cannot read output folder %s: %s", path, strerror(errno));
      while (ok && (e = readdir(d))) {
        char        sub[MAP_PATH_LEN + MAP_NAME_LEN];
        struct stat se;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        map_fmt(sub, sizeof(sub), "%s/%s", path, e->d_name);
        if (!lstat(sub, &se) && S_ISDIR(se.st_mode))
          ok = 0, map_fmt(w->msg, sizeof(w->msg), "output folder %s holds a folder %s: a folder export replaces the folder as a whole; "
                                                  "move it, or export into a new folder",
                          path, e->d_name);
      }
      if (d) closedir(d);
    }
    if (ok) PetscCall(MapTempName(path, w->stage, sizeof(w->stage)));
    if (ok && mkdir(w->stage, 0777)) ok = 0, map_fmt(w->msg, sizeof(w->msg), "cannot create the staging folder %s (for %s): %s", w->stage, path, strerror(errno));
    if (ok) PetscCall(MapTempRegister(w->stage)); /* before its files: cleanup removes them first */
  }
  PetscCallMPI(MPI_Bcast(&ok, 1, MPI_INT, 0, comm));
  if (!ok) {
    PetscCallMPI(MPI_Bcast(w->msg, sizeof(w->msg), MPI_CHAR, 0, comm));
    SETERRQ(comm, PETSC_ERR_FILE_OPEN, "%s", w->msg);
  }
  if (w->folder) PetscCallMPI(MPI_Bcast(w->stage, MAP_PATH_LEN, MPI_CHAR, 0, comm));
  PetscFunctionReturn(0);
}

/* file f: its header, built identically on every rank, and the file created at its final size by all
   ranks with the header written by rank 0; on any rank's failure the writer is aborted on all */
static PetscErrorCode map_writer_open_file(MPI_Comm comm, MapSafetensorsWriter w, int f, int n, int nmeta, const char *const *keys,
                                           const char *const *values)
{
  int            i0 = 0, nf = 0;
  MapTensorInfo *sub;
  char          *hdr;
  size_t         hlen;

  PetscFunctionBegin;
  while (i0 < n && w->t[i0].file < f) i0++;
  while (i0 + nf < n && w->t[i0 + nf].file == f) nf++;
  PetscCall(PetscMalloc1(nf + 1, &sub));
  if (nf) PetscCall(PetscArraycpy(sub, w->t + i0, nf));
  PetscCall(MapSafetensorsBuildHeader(nf, sub, nmeta, keys, values, &hdr, &hlen));
  for (int i = 0; i < nf; i++) { /* offsets relative to this shard's data section */
    w->t[i0 + i].begin = sub[i].begin;
    w->t[i0 + i].end   = sub[i].end;
  }
  w->data_start[f] = hlen;
  w->data_size[f]  = nf ? sub[nf - 1].end : 0;
  PetscCall(PetscFree(sub));

  PetscCall(MapTempRegister(w->tmp[f]));
  int rc = MPI_File_open(comm, w->tmp[f], MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &w->fh[f]);
  if (rc != MPI_SUCCESS) {
    char e[512];
    map_mpi_err(rc, e, sizeof(e));
    map_fmt(w->msg, sizeof(w->msg), "cannot create %s (for %s): %s", w->tmp[f], w->final[f], e);
    w->fh[f] = MPI_FILE_NULL;
  }
  PetscErrorCode ierr = 0;
  /* agree before the next collective call on the file handle */
  int lok = rc == MPI_SUCCESS, allok;
  PetscCallMPI(MPI_Allreduce(&lok, &allok, 1, MPI_INT, MPI_MIN, comm));
  if (allok) {
    /* set_size truncates anything at that name and makes the file its final length */
    rc = MPI_File_set_size(w->fh[f], (MPI_Offset)(hlen + w->data_size[f]));
    if (rc == MPI_SUCCESS && !w->rank) {
      MPI_Status st;
      int        cnt = 0;
      rc             = MPI_File_write_at(w->fh[f], 0, hdr, (int)hlen, MPI_BYTE, &st);
      if (rc == MPI_SUCCESS) MPI_Get_count(&st, MPI_BYTE, &cnt);
      if (rc == MPI_SUCCESS && cnt != (int)hlen) rc = MPI_ERR_IO;
    }
    if (rc != MPI_SUCCESS) {
      char e[512];
      map_mpi_err(rc, e, sizeof(e));
      map_fmt(w->msg, sizeof(w->msg), "cannot write the header of %s: %s", w->tmp[f], e);
    }
    lok = rc == MPI_SUCCESS;
    PetscCallMPI(MPI_Allreduce(&lok, &allok, 1, MPI_INT, MPI_MIN, comm));
  }
  PetscCall(PetscFree(hdr));
  if (!allok) {
    MapSafetensorsWriter ww = w;
    ierr                    = PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, PETSC_ERR_FILE_WRITE, PETSC_ERROR_INITIAL, "%s",
                      lok ? "another rank failed to create the output (see its message)" : w->msg);
    PetscCall(MapSafetensorsWriterAbort(&ww));
  }
  PetscCall(ierr);
  PetscFunctionReturn(0);
}

static PetscErrorCode map_writer_create(MPI_Comm comm, const char *path, PetscBool folder, int n, const MapTensorInfo *tensors, int nmeta,
                                        const char *const *keys, const char *const *values, uint64_t max_shard_bytes, MapSafetensorsWriter *wout)
{
  MapSafetensorsWriter w;
  int                  size;

  PetscFunctionBegin;
  *wout = NULL;
  PetscCall(PetscNew(&w));
  w->comm    = comm;
  w->ok      = 1;
  w->sharded = max_shard_bytes > 0 ? PETSC_TRUE : PETSC_FALSE;
  w->folder  = (PetscBool)(folder || w->sharded);
  PetscCallMPI(MPI_Comm_rank(comm, &w->rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCheck(strlen(path) < MAP_PATH_LEN - 64, PETSC_COMM_SELF, PETSC_ERR_ARG_SIZ, "output path too long: %s", path);
  PetscCall(PetscStrncpy(w->path, path, sizeof(w->path)));
  w->n = n;
  PetscCall(PetscMalloc1(n + 1, &w->t));
  if (n) PetscCall(PetscArraycpy(w->t, tensors, n));
  /* the same deterministic checks on every rank, so they fail together */
  PetscCall(MapSafetensorsLayout_Private(n, w->t));
  for (int i = 0; i < n; i++)
    PetscCheck(w->t[i].dtype != MAP_DTYPE_OTHER, comm, PETSC_ERR_SUP, "%s: tensor \"%s\": the parallel writer writes F32/F16/BF16/F64 (and integer/bool tensors as raw bytes), not %s", path,
               w->t[i].name, MapDTypeName(w->t[i].dtype));
  PetscCall(map_writer_shard(w, max_shard_bytes));
  PetscCall(PetscCalloc1(w->nfiles, &w->final));
  PetscCall(PetscCalloc1(w->nfiles, &w->tmp));
  PetscCall(PetscCalloc1((size_t)w->nfiles * MAP_NAME_LEN, &w->fname));
  PetscCall(PetscCalloc1(w->nfiles, &w->fh));
  PetscCall(PetscCalloc1(w->nfiles, &w->data_start));
  PetscCall(PetscCalloc1(w->nfiles, &w->data_size));
  for (int f = 0; f < w->nfiles; f++) w->fh[f] = MPI_FILE_NULL;

  PetscCall(map_writer_stage(comm, path, w));
  for (int f = 0; f < w->nfiles; f++) {
    if (w->folder) {
      if (w->sharded) map_fmt(w->fname + (size_t)f * MAP_NAME_LEN, MAP_NAME_LEN, "model-%05d-of-%05d.safetensors", f + 1, w->nfiles);
      else map_fmt(w->fname, MAP_NAME_LEN, "model.safetensors");
      map_fmt(w->final[f], MAP_PATH_LEN, "%s/%s", path, w->fname + (size_t)f * MAP_NAME_LEN);
      map_fmt(w->tmp[f], MAP_PATH_LEN, "%s/%s", w->stage, w->fname + (size_t)f * MAP_NAME_LEN);
    } else {
      PetscCall(PetscStrncpy(w->final[f], path, MAP_PATH_LEN));
      /* all ranks open the same temporary name: rank 0's pid names it */
      if (!w->rank) PetscCall(MapTempName(w->final[f], w->tmp[f], MAP_PATH_LEN));
      PetscCallMPI(MPI_Bcast(w->tmp[f], MAP_PATH_LEN, MPI_CHAR, 0, comm));
    }
  }
  /* headers, built identically on every rank; rank 0 writes them */
  for (int f = 0; f < w->nfiles; f++) PetscCall(map_writer_open_file(comm, w, f, n, nmeta, keys, values));
  *wout = w;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsWriterCreate(MPI_Comm comm, const char *path, int n, const MapTensorInfo *tensors, int nmeta, const char *const *keys,
                                          const char *const *values, uint64_t max_shard_bytes, MapSafetensorsWriter *wout)
{
  PetscFunctionBegin;
  PetscCall(map_writer_create(comm, path, PETSC_FALSE, n, tensors, nmeta, keys, values, max_shard_bytes, wout));
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsWriterCreateFolder(MPI_Comm comm, const char *dir, int n, const MapTensorInfo *tensors, int nmeta,
                                                const char *const *keys, const char *const *values, uint64_t max_shard_bytes,
                                                MapSafetensorsWriter *wout)
{
  PetscFunctionBegin;
  PetscCall(map_writer_create(comm, dir, PETSC_TRUE, n, tensors, nmeta, keys, values, max_shard_bytes, wout));
  PetscFunctionReturn(0);
}

/* the weights of an export: never carried over from an old one, never written by AddFile */
static PetscBool map_is_weight_file(const char *name)
{
  return (PetscBool)(!strcmp(name, "model.safetensors") || !strcmp(name, "model.safetensors.index.json") ||
                     !fnmatch("model-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].safetensors", name, 0));
}

/*
  MapSafetensorsWriterAddFile - see safetensors.h. Rank 0 only; a failure is recorded, not raised,
  and reported by Close on every rank (as a failed tensor write is).
*/
PetscErrorCode MapSafetensorsWriterAddFile(MapSafetensorsWriter w, const char *name, const void *data, size_t len)
{
  char path[MAP_PATH_LEN];

  PetscFunctionBegin;
  PetscCheck(w->folder, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONGSTATE, "%s: only a folder export holds other files (adding %s)", w->path, name);
  if (!w->ok || w->rank) PetscFunctionReturn(0);
  if (!name[0] || name[0] == '.' || strchr(name, '/') || map_is_weight_file(name) || (size_t)snprintf(path, sizeof(path), "%s/%s", w->stage, name) >= sizeof(path)) {
    map_fmt(w->msg, sizeof(w->msg), "cannot add a file named \"%s\" to the export (a hidden, weight or too long name, or one with a '/')", name);
    w->ok = 0;
    PetscFunctionReturn(0);
  }
  PetscCall(PetscRealloc(sizeof(*w->extra) * (size_t)(w->nextra + 1), &w->extra));
  PetscCall(PetscStrncpy(w->extra[w->nextra++], path, MAP_PATH_LEN));
  PetscCall(MapTempRegister(path)); /* a signal before the switch removes it with the staging folder */
  const void *parts[1] = {data};
  size_t      lens[1]  = {len};
  if (MapSafetensorsWriteFileMsg_Private(path, 1, parts, lens, w->msg, sizeof(w->msg))) w->ok = 0;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsWriterReplaces(MapSafetensorsWriter w, int n, const char *const *names)
{
  PetscFunctionBegin;
  w->nreplaced = n;
  w->replaced  = names;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSafetensorsWriterWriteF32(MapSafetensorsWriter w, int i, int64_t start, int64_t count, const float *data)
{
  unsigned char *buf = NULL;

  PetscFunctionBegin;
  PetscCheck(i >= 0 && i < w->n, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: tensor index %d out of range [0, %d)", w->path, i, w->n);
  const MapTensorInfo *t = &w->t[i];
  PetscCheck(start >= 0 && count >= 0 && start <= t->numel && count <= t->numel - start, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "%s: tensor \"%s\": elements [%lld, %lld+%lld) out of range [0, %lld)", w->path, t->name, (long long)start, (long long)start,
             (long long)count, (long long)t->numel);
  PetscCheck(MapDTypeIsFloat(t->dtype), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "%s: tensor \"%s\" is %s: write it with MapSafetensorsWriterWriteRaw", w->path,
             t->name, MapDTypeName(t->dtype));
  if (!w->ok || !count) PetscFunctionReturn(0);
  const size_t isize = MapDTypeSize(t->dtype);
  /* F32 goes out straight from the caller's buffer; other dtypes through a conversion buffer */
  const int64_t chunk = t->dtype == MAP_DTYPE_F32 ? (1 << 28) : (1 << 20);
  if (t->dtype != MAP_DTYPE_F32) PetscCall(PetscMalloc1((size_t)PetscMin(count, chunk) * isize, &buf));
  for (int64_t done = 0; done < count && w->ok;) {
    int64_t     c = PetscMin(count - done, chunk);
    const void *src;
    switch (t->dtype) {
    case MAP_DTYPE_F32:
      src = data + done;
      break;
    case MAP_DTYPE_F16:
      for (int64_t k = 0; k < c; k++) ((uint16_t *)buf)[k] = MapF32ToF16(data[done + k]);
      src = buf;
      break;
    case MAP_DTYPE_BF16:
      for (int64_t k = 0; k < c; k++) ((uint16_t *)buf)[k] = MapF32ToBF16(data[done + k]);
      src = buf;
      break;
    default:
      for (int64_t k = 0; k < c; k++) ((double *)buf)[k] = (double)data[done + k];
      src = buf;
    }
    MPI_Offset off = (MPI_Offset)(w->data_start[t->file] + t->begin + (uint64_t)(start + done) * isize);
    MPI_Status st;
    int        cnt = 0, nb = (int)((size_t)c * isize);
    int        rc = MPI_File_write_at(w->fh[t->file], off, src, nb, MPI_BYTE, &st);
    if (rc == MPI_SUCCESS) MPI_Get_count(&st, MPI_BYTE, &cnt);
    if (rc != MPI_SUCCESS || cnt != nb) {
      char e[512] = "short write";
      if (rc != MPI_SUCCESS) map_mpi_err(rc, e, sizeof(e));
      /* recorded, not raised: Close reports it on every rank, so no rank waits alone */
      map_fmt(w->msg, sizeof(w->msg), "%s: tensor \"%s\": write of %d bytes at offset %lld failed: %s", w->tmp[t->file], t->name, nb,
              (long long)off, e);
      w->ok = 0;
    }
    w->written += (uint64_t)cnt;
    done += c;
  }
  PetscCall(PetscFree(buf));
  PetscFunctionReturn(0);
}

static PetscErrorCode map_writer_index(MapSafetensorsWriter w)
{
  char     p[MAP_PATH_LEN];
  uint64_t total = 0;
  json_t  *root = json_object(), *meta = json_object(), *wm = json_object();

  PetscFunctionBegin;
  for (int f = 0; f < w->nfiles; f++) total += w->data_size[f];
  json_object_set_new(meta, "total_size", json_integer((json_int_t)total));
  json_object_set_new(root, "metadata", meta);
  for (int i = 0; i < w->n; i++) json_object_set_new(wm, w->t[i].name, json_string(w->fname + (size_t)w->t[i].file * MAP_NAME_LEN));
  json_object_set_new(root, "weight_map", wm);
  char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(root);
  PetscCheck(s, PETSC_COMM_SELF, PETSC_ERR_MEM, "cannot serialise the index of %s", w->path);
  map_fmt(p, sizeof(p), "%s/model.safetensors.index.json", w->stage);
  const void    *parts[2] = {s, "\n"};
  size_t         lens[2]  = {strlen(s), 1};
  PetscErrorCode ierr     = MapSafetensorsWriteFileAtomic_Private(p, 2, parts, lens);
  free(s);
  PetscCall(ierr);
  PetscFunctionReturn(0);
}

/* the files of a folder, then the folder (a replaced export: plain files only) */
static void map_remove_tree(const char *dir)
{
  DIR           *d = opendir(dir);
  struct dirent *e;
  char           sub[MAP_PATH_LEN + MAP_NAME_LEN];

  if (!d) return;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    map_fmt(sub, sizeof(sub), "%s/%s", dir, e->d_name);
    (void)unlink(sub);
  }
  closedir(d);
  (void)rmdir(dir);
}

/* whether an old export's file `name` stays in the folder: not its weights, not a file the new
   export writes (already in the staging folder), not a name the new export owns (Replaces) */
static PetscBool map_carry_over(MapSafetensorsWriter w, const char *name)
{
  char        p[MAP_PATH_LEN + MAP_NAME_LEN];
  struct stat sb;

  if (map_is_weight_file(name)) return PETSC_FALSE;
  for (int i = 0; i < w->nreplaced; i++)
    if (!strcmp(name, w->replaced[i])) return PETSC_FALSE;
  map_fmt(p, sizeof(p), "%s/%s", w->stage, name);
  return (PetscBool)(lstat(p, &sb) != 0);
}

/* Rank 0: the staging folder, which already holds the new weights and every file the export adds
   (AddFile), becomes the output in one step. The other files of an existing output folder (a
   user's notes, a config.json next to a bare export) are hard-linked into it first; the old
   weights, the files the new export writes and the names it owns (Replaces) are not. Then
   renameat2(RENAME_EXCHANGE) swaps the two folders atomically, and the old one (now under the
   staging name) is removed. Every crash point leaves the old export or the new one at the path,
   never a mix. File systems without RENAME_EXCHANGE: two renames (a crash between them leaves the
   old export whole under .<name>.tmp.<pid>.old). Returns 0, or -1 with w->msg set. */
static int map_writer_switch(MapSafetensorsWriter w)
{
  struct stat sb;
  char        old[MAP_PATH_LEN + 16];

  if (stat(w->path, &sb)) { /* no output yet */
    if (rename(w->stage, w->path) == 0) return 0;
    map_fmt(w->msg, sizeof(w->msg), "cannot rename %s to %s: %s", w->stage, w->path, strerror(errno));
    return -1;
  }
  DIR           *d = opendir(w->path);
  struct dirent *e;
  if (!d) {
    map_fmt(w->msg, sizeof(w->msg), "cannot read output folder %s: %s", w->path, strerror(errno));
    return -1;
  }
  while ((e = readdir(d))) {
    char from[MAP_PATH_LEN + MAP_NAME_LEN], to[MAP_PATH_LEN + MAP_NAME_LEN];
    if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]) || strstr(e->d_name, ".tmp."))) continue;
    if (!map_carry_over(w, e->d_name)) continue;
    map_fmt(from, sizeof(from), "%s/%s", w->path, e->d_name);
    map_fmt(to, sizeof(to), "%s/%s", w->stage, e->d_name);
    if (link(from, to)) {
      map_fmt(w->msg, sizeof(w->msg), "cannot carry %s over into the new export (link to %s: %s); nothing was replaced", from, to, strerror(errno));
      closedir(d);
      return -1;
    }
  }
  closedir(d);
  if (renameat2(AT_FDCWD, w->stage, AT_FDCWD, w->path, RENAME_EXCHANGE) == 0) {
    map_remove_tree(w->stage); /* the old export */
    return 0;
  }
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
    map_fmt(w->msg, sizeof(w->msg), "cannot switch %s in for %s: %s; the old export is unchanged", w->stage, w->path, strerror(errno));
    return -1;
  }
  map_fmt(old, sizeof(old), "%s.old", w->stage);
  if (rename(w->path, old)) {
    map_fmt(w->msg, sizeof(w->msg), "cannot move the old export %s aside: %s; it is unchanged", w->path, strerror(errno));
    return -1;
  }
  if (rename(w->stage, w->path)) {
    map_fmt(w->msg, sizeof(w->msg), "cannot rename %s to %s: %s", w->stage, w->path, strerror(errno));
    (void)rename(old, w->path); /* put the old one back */
    return -1;
  }
  map_remove_tree(old);
  return 0;
}

/*
  MapSafetensorsWriterClose - collective. Closes the files, checks that every rank's writes
  succeeded and that together they covered every data byte exactly once (by count), then rank 0
  renames the files into place and writes the index. On failure the temporaries are removed and
  every rank returns the same error.
*/
PetscErrorCode MapSafetensorsWriterClose(MapSafetensorsWriter *wp)
{
  MapSafetensorsWriter w;
  uint64_t             expect = 0, in[2], out[2];

  PetscFunctionBegin;
  if (!wp || !*wp) PetscFunctionReturn(0);
  w = *wp;
  for (int f = 0; f < w->nfiles; f++) {
    expect += w->data_size[f];
    if (w->fh[f] != MPI_FILE_NULL) {
      int rc = MPI_File_close(&w->fh[f]);
      if (rc != MPI_SUCCESS && w->ok) {
        char e[512];
        map_mpi_err(rc, e, sizeof(e));
        map_fmt(w->msg, sizeof(w->msg), "closing %s failed: %s", w->tmp[f], e);
        w->ok = 0;
      }
      w->fh[f] = MPI_FILE_NULL;
    }
  }
  in[0] = w->ok ? 0 : 1;
  in[1] = w->written;
  PetscCallMPI(MPI_Allreduce(in, out, 2, MPI_UINT64_T, MPI_SUM, w->comm));
  int ok = out[0] == 0 && out[1] == expect;
  if (ok && !w->rank && !w->folder && rename(w->tmp[0], w->final[0])) {
    ok = 0;
    map_fmt(w->msg, sizeof(w->msg), "cannot rename %s to %s: %s", w->tmp[0], w->final[0], strerror(errno));
  }
  if (ok && !w->rank && w->folder) {
    if (w->sharded) {
      PetscErrorCode ierr;
      PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
      ierr = map_writer_index(w);
      PetscCall(PetscPopErrorHandler());
      if (ierr) ok = 0, map_fmt(w->msg, sizeof(w->msg), "cannot write %s/model.safetensors.index.json", w->stage);
    }
    if (ok) ok = map_writer_switch(w) == 0;
  }
  int okall = ok;
  PetscCallMPI(MPI_Bcast(&okall, 1, MPI_INT, 0, w->comm));
  for (int f = 0; f < w->nfiles; f++) {
    if (!okall && !w->rank) (void)unlink(w->tmp[f]);
    PetscCall(MapTempUnregister(w->tmp[f]));
  }
  for (int k = 0; k < w->nextra; k++) PetscCall(MapTempUnregister(w->extra[k]));
  if (w->folder && !w->rank) {
    if (!okall) map_remove_tree(w->stage); /* the new export's files only: the old folder was never touched */
    PetscCall(MapTempUnregister(w->stage));
  }
  char path[MAP_PATH_LEN], msg[1024];
  PetscCall(PetscStrncpy(path, w->path, sizeof(path)));
  PetscCall(PetscStrncpy(msg, w->msg, sizeof(msg)));
  int mine = w->ok, rank = w->rank;
  PetscCall(map_writer_free(w));
  *wp = NULL;
  PetscCheck(out[0] == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: %s", path,
             mine ? "another rank failed to write its part (see its message)" : msg);
  PetscCheck(out[1] == expect, PETSC_COMM_SELF, PETSC_ERR_PLIB,
             "%s: the ranks wrote %llu data bytes in total, but the tensors hold %llu: some element ranges were %s", path,
             (unsigned long long)out[1], (unsigned long long)expect, out[1] < expect ? "never written" : "written more than once");
  PetscCheck(okall, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: %s", path, rank ? "rank 0 could not rename the output into place" : msg);
  PetscFunctionReturn(0);
}

/*
  MapSafetensorsWriterAbort - removes the temporary files and frees the writer. Not collective
  (for error paths, where the ranks may not be in step); MPI-IO handles still open are released
  by MPI_Finalize.
*/
PetscErrorCode MapSafetensorsWriterAbort(MapSafetensorsWriter *wp)
{
  PetscFunctionBegin;
  if (!wp || !*wp) PetscFunctionReturn(0);
  MapSafetensorsWriter w = *wp;
  for (int f = 0; f < w->nfiles; f++) {
    if (w->tmp[f][0]) {
      (void)unlink(w->tmp[f]);
      PetscCall(MapTempUnregister(w->tmp[f]));
    }
  }
  for (int k = 0; k < w->nextra; k++) {
    (void)unlink(w->extra[k]);
    PetscCall(MapTempUnregister(w->extra[k]));
  }
  if (w->stage[0] && !w->rank) {
    (void)rmdir(w->stage);
    PetscCall(MapTempUnregister(w->stage));
  }
  PetscCall(map_writer_free(w));
  *wp = NULL;
  PetscFunctionReturn(0);
}

/* MapSafetensorsWriterWriteRaw - writes tensor i whole from its little-endian bytes (integer and
   bool tensors, kept exactly). Not collective: one rank writes it. */
PetscErrorCode MapSafetensorsWriterWriteRaw(MapSafetensorsWriter w, int i, const void *bytes)
{
  PetscFunctionBegin;
  PetscCheck(i >= 0 && i < w->n, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: tensor index %d out of range [0, %d)", w->path, i, w->n);
  const MapTensorInfo *t  = &w->t[i];
  uint64_t             nb = t->end - t->begin;
  if (!w->ok || !nb) PetscFunctionReturn(0);
  PetscCheck(nb < (1ull << 31), PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: tensor \"%s\": %llu bytes; raw tensors of 2 GiB and more are not supported", w->path,
             t->name, (unsigned long long)nb);
  MPI_Status st;
  int        cnt = 0;
  int        rc  = MPI_File_write_at(w->fh[t->file], (MPI_Offset)(w->data_start[t->file] + t->begin), bytes, (int)nb, MPI_BYTE, &st);
  if (rc == MPI_SUCCESS) MPI_Get_count(&st, MPI_BYTE, &cnt);
  if (rc != MPI_SUCCESS || (uint64_t)cnt != nb) {
    char e[512] = "short write";
    if (rc != MPI_SUCCESS) map_mpi_err(rc, e, sizeof(e));
    map_fmt(w->msg, sizeof(w->msg), "%s: tensor \"%s\": write of %llu bytes failed: %s", w->tmp[t->file], t->name, (unsigned long long)nb, e);
    w->ok = 0;
  }
  w->written += (uint64_t)cnt;
  PetscFunctionReturn(0);
}
