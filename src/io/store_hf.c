/* MapStore, the parts of a Hugging Face checkpoint that are not merged (mapmerge/store_hf.h):
 * integer/bool buffers kept as the pretrained model has them, the report of tensors whose shapes
 * differ between the models (heads), and the folder's config/tokenizer files. */
#define _POSIX_C_SOURCE 200809L
#include "storeimportimpl.h"
#include "store_hf_impl.h"
#include <mapmerge/store_hf.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files of an HF model folder that a loader needs besides the weights (transformers' from_pretrained). */
static const char *const hf_file_names[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                            "special_tokens_map.json", "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt",
                                            "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "chat_template.json",
                                            "chat_template.jinja", "preprocessor_config.json"};
#define HF_NFILES   ((int)(sizeof(hf_file_names) / sizeof(hf_file_names[0])))
#define HF_MAX_FILE (512ull << 20) /* a tokenizer.json is tens of MB; anything this large is not one */

const char *const *MapStoreHFFileNames(int *n)
{
  *n = HF_NFILES;
  return hf_file_names;
}

PetscErrorCode MapStoreBufferH5Type_Private(MapDType dt, hid_t *type)
{
  PetscFunctionBegin;
  switch (dt) {
  case MAP_DTYPE_I64:
    *type = H5T_STD_I64LE;
    break;
  case MAP_DTYPE_I32:
    *type = H5T_STD_I32LE;
    break;
  case MAP_DTYPE_I16:
    *type = H5T_STD_I16LE;
    break;
  case MAP_DTYPE_I8:
    *type = H5T_STD_I8LE;
    break;
  default:
    *type = H5T_STD_U8LE; /* U8 and BOOL (one byte, 0 or 1) */
  }
  PetscFunctionReturn(0);
}

void MapStoreShapeText_Private(int ndim, const int64_t *shape, char *buf, size_t len)
{
  size_t l = (size_t)snprintf(buf, len, "[");
  for (int d = 0; d < ndim && l < len; d++) l += (size_t)snprintf(buf + l, len - l, "%s%lld", d ? "," : "", (long long)shape[d]);
  if (l < len) snprintf(buf + l, len - l, "]");
}

static PetscBool SameShape(const MapTensorInfo *a, const MapTensorInfo *b)
{
  if (a->ndim != b->ndim) return PETSC_FALSE;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return PETSC_FALSE;
  return PETSC_TRUE;
}

PetscErrorCode MapStoreImportIsBuffer_Private(Import *im, int c, const MapTensorInfo *t, PetscBool *is)
{
  Ckpt                *ck = &im->ck[c];
  const MapTensorInfo *p  = NULL;
  char                 s1[256], s2[256];

  PetscFunctionBegin;
  *is = (PetscBool)(!MapDTypeIsFloat(t->dtype) && t->dtype != MAP_DTYPE_OTHER);
  if (!*is) PetscFunctionReturn(0);
  PetscCheck(!strchr(t->name, '/') && strcmp(t->name, ".") && strcmp(t->name, ".."), im->comm, PETSC_ERR_ARG_WRONG,
             "%s %s: %s tensor name \"%s\" cannot be an HDF5 dataset name", ck->label, ck->path, MapDTypeName(t->dtype), t->name);
  if (c == 0) {
    if (!im->buf) PetscCall(PetscCalloc1(64, &im->buf));
    else if (im->nbuf % 64 == 0) PetscCall(PetscRealloc(sizeof(*im->buf) * (size_t)(im->nbuf + 64), &im->buf));
    im->buf[im->nbuf++] = t;
    PetscFunctionReturn(0);
  }
  PetscCall(MapSafetensorsFind(im->ck[0].st, t->name, &p));
  PetscCheck(p, im->comm, PETSC_ERR_ARG_WRONG,
             "%s %s: %s tensor %s is not in the pretrained model %s; integer and bool tensors are kept from the pretrained model, never merged",
             ck->label, ck->path, MapDTypeName(t->dtype), t->name, im->ck[0].path);
  MapStoreShapeText_Private(t->ndim, t->shape, s1, sizeof(s1));
  MapStoreShapeText_Private(p->ndim, p->shape, s2, sizeof(s2));
  PetscCheck(p->dtype == t->dtype && SameShape(p, t), im->comm, PETSC_ERR_ARG_WRONG,
             "%s %s: tensor %s is %s %s, but in the pretrained model %s it is %s %s (integer and bool tensors are kept from the pretrained model)",
             ck->label, ck->path, t->name, MapDTypeName(t->dtype), s1, im->ck[0].path, MapDTypeName(p->dtype), s2);
  PetscFunctionReturn(0);
}

static PetscBool Covered(const Import *im, const char *name)
{
  for (int i = 0; i < im->npat; i++)
    if (fnmatch(im->pat[i], name, 0) == 0) return PETSC_TRUE;
  return PETSC_FALSE;
}

/* the glob of a tensor's module: "classifier.out_proj.weight" -> "classifier.out_proj.*" */
static void ModuleGlob(const char *name, char *glob, size_t len)
{
  const char *dot = strrchr(name, '.');
  if (dot && dot != name) snprintf(glob, len, "%.*s.*", (int)(dot - name), name);
  else snprintf(glob, len, "%s", name);
}

PetscErrorCode MapStoreImportReportShapes_Private(Import *im)
{
  char list[2048] = "", pats[4096] = "", glob[MAP_NAME_LEN + 2];
  int  nfound = 0;

  PetscFunctionBegin;
  for (int i = 0; i < im->npat; i++) {
    PetscCall(MapStrlcat(pats, i ? "," : "", sizeof(pats)));
    PetscCall(MapStrlcat(pats, im->pat[i], sizeof(pats)));
  }
  for (int c = 0; c < im->nck; c++) {
    int n;
    PetscCall(MapSafetensorsGetNumTensors(im->ck[c].st, &n));
    for (int i = 0; i < n; i++) {
      const MapTensorInfo *t, *u;
      PetscBool            seen = PETSC_FALSE, differs = PETSC_FALSE, missing = PETSC_FALSE;
      char                 why[512] = "", s[256];
      PetscCall(MapSafetensorsGetTensor(im->ck[c].st, i, &t));
      if (!MapDTypeIsFloat(t->dtype) || Covered(im, t->name)) continue;
      for (int e = 0; e < c && !seen; e++) {
        PetscCall(MapSafetensorsFind(im->ck[e].st, t->name, &u));
        seen = (PetscBool)(u != NULL);
      }
      if (seen) continue; /* reported with the first checkpoint that has it */
      for (int e = 0; e < im->nck; e++) {
        PetscCall(MapSafetensorsFind(im->ck[e].st, t->name, &u));
        if (!u) missing = PETSC_TRUE;
        else if (!SameShape(t, u)) differs = PETSC_TRUE;
        size_t l = strlen(why);
        if (u) MapStoreShapeText_Private(u->ndim, u->shape, s, sizeof(s));
        snprintf(why + l, sizeof(why) - l, "%s%s %s", e ? ", " : "", e ? im->tasks[e - 1] : "pretrained", u ? s : "absent");
      }
      if (!differs && !missing) continue;
      if (nfound < 8) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof(list) - l, "\n  %s: %s", t->name, why);
      }
      nfound++;
      ModuleGlob(t->name, glob, sizeof(glob));
      if (!Covered(im, glob) && !strstr(pats, glob)) {
        PetscCall(MapStrlcat(pats, ",", sizeof(pats)));
        PetscCall(MapStrlcat(pats, glob, sizeof(pats)));
      }
    }
  }
  if (nfound)
    PetscCall(PetscPrintf(im->comm,
                          "import: %d tensor%s differ in shape between the models or exist only in some (heads?), and no private pattern "
                          "covers them:%s%s\nimport: suggested: -map_private_patterns '%s'\n",
                          nfound, nfound > 1 ? "s" : "", list, nfound > 8 ? "\n  ..." : "", pats));
  PetscFunctionReturn(0);
}

/* Reads a whole tensor's bytes (rank 0). */
static PetscErrorCode ReadBufferBytes(Ckpt *ck, const MapTensorInfo *t, unsigned char **bytes)
{
  PetscFunctionBegin;
  PetscCall(PetscMalloc1(t->end - t->begin + 1, bytes));
  PetscCall(MapSafetensorsReadRaw(ck->st, t, *bytes));
  PetscFunctionReturn(0);
}

/* MapH5WriteSmall, or for zero elements only the dataset (a collective write of nothing fails in HDF5 1.10) */
static PetscErrorCode WriteSmall(MPI_Comm comm, hid_t loc, const char *name, hid_t type, int ndim, const hsize_t *dims, const void *data)
{
  hsize_t n = 1;
  hid_t   space, d;

  PetscFunctionBegin;
  for (int k = 0; k < ndim; k++) n *= dims[k];
  if (n) {
    PetscCall(MapH5WriteSmall(comm, loc, name, type, ndim, dims, data));
    PetscFunctionReturn(0);
  }
  MapCallHDF5(space = H5Screate_simple(ndim, dims, NULL));
  MapCallHDF5(d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  MapCallHDF5(H5Dclose(d));
  MapCallHDF5(H5Sclose(space));
  PetscFunctionReturn(0);
}

/* /private/<task>/<name>: a task's own copy of a buffer (-map_import_buffer_differs private), as in /buffers */
static PetscErrorCode WriteIntDataset(Import *im, hid_t loc, const MapTensorInfo *p, const unsigned char *bytes)
{
  hsize_t       dims[MAP_MAX_NDIM];
  hid_t         type, d;
  unsigned char one = 0;

  PetscFunctionBegin;
  for (int k = 0; k < p->ndim; k++) dims[k] = (hsize_t)p->shape[k];
  PetscCall(MapStoreBufferH5Type_Private(p->dtype, &type));
  PetscCall(WriteSmall(im->comm, loc, p->name, type, p->ndim, dims, bytes ? (const void *)bytes : (const void *)&one));
  MapCallHDF5(d = H5Dopen2(loc, p->name, H5P_DEFAULT));
  PetscCall(MapH5WriteStringAttr(d, MAP_STORE_ATTR_DTYPE, MapDTypeName(p->dtype)));
  MapCallHDF5(H5Dclose(d));
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreImportWriteBuffers_Private(Import *im, hid_t file)
{
  hid_t           gcpl, g;
  int            *differs, nprivate = 0;
  unsigned char **own;

  PetscFunctionBegin;
  if (!im->nbuf) PetscFunctionReturn(0);
  MapCallHDF5(gcpl = H5Pcreate(H5P_GROUP_CREATE));
  MapCallHDF5(H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED));
  MapCallHDF5(g = H5Gcreate2(file, "buffers", H5P_DEFAULT, gcpl, H5P_DEFAULT));
  MapCallHDF5(H5Pclose(gcpl));
  PetscCall(PetscCalloc2(im->nck, &differs, im->nck, &own));
  for (int b = 0; b < im->nbuf; b++) {
    const MapTensorInfo *p         = im->buf[b];
    unsigned char       *pre       = NULL;
    char                 msg[1024] = "";
    int                  ok        = 1;

    /* rank 0 compares every task's copy with the pretrained one: buffers are small */
    if (!im->rank) {
      PetscCall(ReadBufferBytes(&im->ck[0], p, &pre));
      for (int c = 1; c < im->nck && ok; c++) {
        const MapTensorInfo *u;
        PetscCall(MapSafetensorsFind(im->ck[c].st, p->name, &u));
        differs[c] = 0;
        if (!u) continue; /* a task without it keeps the pretrained one */
        PetscCall(ReadBufferBytes(&im->ck[c], u, &own[c]));
        if (!memcmp(pre, own[c], p->end - p->begin)) {
          PetscCall(PetscFree(own[c]));
          continue;
        }
        differs[c] = 1;
        if (!im->buffers_private) {
          uint64_t isz = MapDTypeSize(p->dtype), k = 0;
          while (k < p->end - p->begin && pre[k] == own[c][k]) k++;
          snprintf(msg, sizeof(msg),
                   "%s %s: %s tensor %s differs from the pretrained model's (first at element %llu); integer and bool tensors are not "
                   "merged but kept from the pretrained model, so a task must have the same values (or keep its own copy as a private "
                   "tensor: -map_import_buffer_differs private)",
                   im->ck[c].label, im->ck[c].path, MapDTypeName(p->dtype), p->name, (unsigned long long)(k / (isz ? isz : 1)));
          ok = 0;
        }
      }
    }
    MapCheckAll(im->comm, ok, PETSC_ERR_ARG_WRONG, "%s", msg);
    PetscCallMPI(MPI_Bcast(differs, im->nck, MPI_INT, 0, im->comm));
    PetscCall(WriteIntDataset(im, g, p, pre));
    for (int c = 1; c < im->nck; c++) {
      hid_t tg;
      char  gname[MAP_NAME_LEN + 16];
      if (!differs[c]) continue;
      PetscCall(PetscSNPrintf(gname, sizeof(gname), "/private/%s", im->tasks[c - 1]));
      MapCallHDF5(tg = H5Gopen2(file, gname, H5P_DEFAULT));
      PetscCall(WriteIntDataset(im, tg, p, own[c]));
      MapCallHDF5(H5Gclose(tg));
      PetscCall(PetscFree(own[c]));
      PetscCall(PetscPrintf(im->comm, "import: task %s: its %s tensor %s differs from the pretrained model's; kept as a private tensor of the task\n",
                            im->tasks[c - 1], MapDTypeName(p->dtype), p->name));
      nprivate++;
    }
    PetscCall(PetscFree(pre));
  }
  PetscCall(PetscFree2(differs, own));
  MapCallHDF5(H5Gclose(g));
  PetscCall(PetscPrintf(im->comm, "import: %d integer/bool tensor%s kept as the pretrained model has %s, not merged (/buffers; first: %s %s)\n", im->nbuf,
                        im->nbuf > 1 ? "s" : "", im->nbuf > 1 ? "them" : "it", im->buf[0]->name, MapDTypeName(im->buf[0]->dtype)));
  PetscFunctionReturn(0);
}

/* rank 0: the bytes of folder/name if it is a regular file (*data = NULL when absent) */
static PetscErrorCode ReadWholeFile(const char *path, unsigned char **data, uint64_t *len, char *msg, size_t mlen)
{
  struct stat sb;
  int         fd;

  PetscFunctionBegin;
  *data = NULL;
  *len  = 0;
  if (stat(path, &sb)) PetscFunctionReturn(0);
  if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > HF_MAX_FILE) {
    snprintf(msg, mlen, "import: %s is not a regular file of at most %llu bytes", path, HF_MAX_FILE);
    PetscFunctionReturn(0);
  }
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(msg, mlen, "import: cannot open %s: %s", path, strerror(errno));
    PetscFunctionReturn(0);
  }
  PetscCall(PetscMalloc1((size_t)sb.st_size + 1, data));
  for (uint64_t off = 0; off < (uint64_t)sb.st_size;) {
    ssize_t r = pread(fd, *data + off, (size_t)sb.st_size - off, (off_t)off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      snprintf(msg, mlen, "import: cannot read %s: %s", path, r < 0 ? strerror(errno) : "file shrank while read");
      break;
    }
    off += (uint64_t)r;
  }
  close(fd);
  *len = (uint64_t)sb.st_size;
  PetscFunctionReturn(0);
}

/* Collective: dataset `dsname` of g with the bytes of file `path` (rank 0 reads it) and its sha256;
   *have = 0 when the file does not exist. */
static PetscErrorCode RecordFile(Import *im, hid_t g, const char *dsname, const char *path, int *have)
{
  char           msg[1024] = "", hex[65] = "";
  unsigned char *data = NULL, one = 0;
  uint64_t       len = 0;
  hid_t          d;
  hsize_t        dims[1];

  PetscFunctionBegin;
  *have = 0;
  if (!im->rank) {
    PetscCall(ReadWholeFile(path, &data, &len, msg, sizeof(msg)));
    *have = data != NULL && !msg[0];
    if (*have) MapSha256(data, len, hex);
  }
  MapCheckAll(im->comm, !msg[0], PETSC_ERR_FILE_READ, "%s", msg);
  PetscCallMPI(MPI_Bcast(have, 1, MPI_INT, 0, im->comm));
  if (!*have) PetscFunctionReturn(0);
  PetscCallMPI(MPI_Bcast(&len, 1, MPI_UINT64_T, 0, im->comm));
  PetscCallMPI(MPI_Bcast(hex, sizeof(hex), MPI_CHAR, 0, im->comm));
  dims[0] = (hsize_t)len;
  PetscCall(WriteSmall(im->comm, g, dsname, H5T_STD_U8LE, 1, dims, data ? (const void *)data : (const void *)&one));
  MapCallHDF5(d = H5Dopen2(g, dsname, H5P_DEFAULT));
  PetscCall(MapH5WriteStringAttr(d, "sha256", hex));
  MapCallHDF5(H5Dclose(d));
  PetscCall(PetscFree(data));
  PetscFunctionReturn(0);
}

/* rank 0 decides, every rank learns: is path a folder */
static PetscErrorCode IsFolder(Import *im, const char *path, int *isdir)
{
  struct stat sb;

  PetscFunctionBegin;
  *isdir = 0;
  if (!im->rank) *isdir = !stat(path, &sb) && S_ISDIR(sb.st_mode);
  PetscCallMPI(MPI_Bcast(isdir, 1, MPI_INT, 0, im->comm));
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreImportWriteHFFiles_Private(Import *im, hid_t file)
{
  int   isdir = 0, ntc = 0;
  hid_t g, gcpl;
  char  real[PATH_MAX], names[1024] = "", path[MAP_PATH_LEN + 64];

  PetscFunctionBegin;
  PetscCall(IsFolder(im, im->ck[0].path, &isdir));
  if (!isdir) PetscFunctionReturn(0);
  MapCallHDF5(gcpl = H5Pcreate(H5P_GROUP_CREATE));
  MapCallHDF5(H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED));
  MapCallHDF5(g = H5Gcreate2(file, "hf_files", H5P_DEFAULT, gcpl, H5P_DEFAULT));
  MapCallHDF5(H5Pclose(gcpl));
  if (im->rank || !realpath(im->ck[0].path, real)) PetscCall(PetscStrncpy(real, im->ck[0].path, sizeof(real)));
  PetscCallMPI(MPI_Bcast(real, sizeof(real), MPI_CHAR, 0, im->comm));
  PetscCall(MapH5WriteStringAttr(g, "source", real));
  for (int f = 0; f < HF_NFILES; f++) {
    int have;
    snprintf(path, sizeof(path), "%s/%s", im->ck[0].path, hf_file_names[f]);
    PetscCall(RecordFile(im, g, hf_file_names[f], path, &have));
    if (!have) continue;
    PetscCall(MapStrlcat(names, " ", sizeof(names)));
    PetscCall(MapStrlcat(names, hf_file_names[f], sizeof(names)));
  }
  MapCallHDF5(H5Gclose(g));
  /* each task folder's config.json: its head's labels (num_labels, id2label) for export -map_export_private TASK */
  MapCallHDF5(g = H5Gcreate2(file, "hf_task_configs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  for (int c = 1; c < im->nck; c++) {
    int have;
    PetscCall(IsFolder(im, im->ck[c].path, &isdir));
    if (!isdir) continue;
    snprintf(path, sizeof(path), "%s/config.json", im->ck[c].path);
    PetscCall(RecordFile(im, g, im->tasks[c - 1], path, &have));
    ntc += have;
  }
  MapCallHDF5(H5Gclose(g));
  PetscCall(PetscPrintf(im->comm, "import: recorded the files of folder %s for export (/hf_files):%s; config.json of %d task folder%s (/hf_task_configs)\n",
                        real, names[0] ? names : " none", ntc, ntc == 1 ? "" : "s"));
  PetscFunctionReturn(0);
}
