/* MapStore, read side of the parts of a Hugging Face checkpoint that are not merged
 * (mapmerge/store_hf.h): buffers, a task's own integer tensors, the recorded files, `info`. */
#include "storeimpl.h"
#include "store_hf_impl.h"
#include <mapmerge/store_hf.h>

/* ---- read side ---- */

/* names of a group's datasets in creation order (MapFreeList); n = 0 when the group is absent */
static PetscErrorCode GroupNames(MapStore s, const char *group, int *n, char ***names, hid_t *g)
{
  H5G_info_t info;
  htri_t     ex;

  PetscFunctionBegin;
  *n     = 0;
  *names = NULL;
  *g     = -1;
  MapCallHDF5(ex = H5Lexists(s->file, group, H5P_DEFAULT));
  if (ex <= 0) PetscFunctionReturn(0);
  MapCallHDF5(*g = H5Gopen2(s->file, group, H5P_DEFAULT));
  MapCallHDF5(H5Gget_info(*g, &info));
  PetscCall(PetscCalloc1(info.nlinks + 1, names));
  for (hsize_t i = 0; i < info.nlinks; i++) {
    ssize_t l;
    MapCallHDF5(l = H5Lget_name_by_idx(*g, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT));
    PetscCall(PetscMalloc1((size_t)l + 1, &(*names)[i]));
    MapCallHDF5(H5Lget_name_by_idx(*g, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, i, (*names)[i], (size_t)l + 1, H5P_DEFAULT));
  }
  *n = (int)info.nlinks;
  PetscFunctionReturn(0);
}

/* one integer/bool dataset of group g (its dtype attribute names the safetensors dtype) */
static PetscErrorCode ReadIntDataset(MapStore s, hid_t g, const char *gname, const char *name, MapStoreBuffer *b)
{
  char     *dt = NULL;
  size_t    isz;
  PetscBool found;
  hid_t     d, space, type;
  hsize_t   dims[MAP_MAX_NDIM];
  int       nd;

  PetscFunctionBegin;
  PetscCall(PetscStrncpy(b->name, name, sizeof(b->name)));
  MapCallHDF5(d = H5Dopen2(g, name, H5P_DEFAULT));
  PetscCall(MapH5ReadStringAttr(d, MAP_STORE_ATTR_DTYPE, &dt));
  PetscCheck(dt, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: %s/%s has no dtype attribute", s->path, gname, name);
  PetscCall(MapDTypeFromName(dt, &b->dtype, &isz, &found));
  PetscCheck(found && !MapDTypeIsFloat(b->dtype) && b->dtype != MAP_DTYPE_OTHER, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "store %s: %s/%s has dtype \"%s\", not an integer or bool dtype", s->path, gname, name, dt);
  PetscCall(PetscFree(dt));
  MapCallHDF5(space = H5Dget_space(d));
  MapCallHDF5(nd = H5Sget_simple_extent_ndims(space));
  PetscCheck(nd <= MAP_MAX_NDIM, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: %s/%s has %d dimensions", s->path, gname, name, nd);
  MapCallHDF5(H5Sget_simple_extent_dims(space, dims, NULL));
  b->ndim   = nd;
  b->nbytes = isz;
  for (int k = 0; k < nd; k++) b->nbytes *= (size_t)(b->shape[k] = (int64_t)dims[k]);
  PetscCall(MapStoreBufferH5Type_Private(b->dtype, &type));
  PetscCall(PetscMalloc1(b->nbytes + 1, (unsigned char **)&b->data));
  if (b->nbytes) MapCallHDF5(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, b->data));
  MapCallHDF5(H5Sclose(space));
  MapCallHDF5(H5Dclose(d));
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreReadBuffers(MapStore s, int *n, MapStoreBuffer **bufs)
{
  char **names;
  hid_t  g;

  PetscFunctionBegin;
  PetscCall(GroupNames(s, "buffers", n, &names, &g));
  PetscCall(PetscCalloc1(*n + 1, bufs));
  for (int i = 0; i < *n; i++) PetscCall(ReadIntDataset(s, g, "/buffers", names[i], &(*bufs)[i]));
  if (g >= 0) MapCallHDF5(H5Gclose(g));
  PetscCall(MapFreeList(*n, &names));
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreReadPrivateBuffer(MapStore s, int t, const char *name, MapStoreBuffer *buf, PetscBool *found)
{
  char   gname[MAP_NAME_LEN + 16];
  hid_t  g, d;
  htri_t has;

  PetscFunctionBegin;
  *found = PETSC_FALSE;
  PetscCall(PetscMemzero(buf, sizeof(*buf)));
  PetscCheck(t >= 0 && t < s->T, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "store %s: task index %d out of range [0,%d)", s->path, t, s->T);
  PetscCall(PetscSNPrintf(gname, sizeof(gname), "private/%s", s->tasks[t]));
  if (!MapH5Exists(s->file, gname)) PetscFunctionReturn(0);
  MapCallHDF5(g = H5Gopen2(s->file, gname, H5P_DEFAULT));
  MapCallHDF5(has = H5Lexists(g, name, H5P_DEFAULT));
  if (has > 0) {
    MapCallHDF5(d = H5Dopen2(g, name, H5P_DEFAULT));
    MapCallHDF5(has = H5Aexists(d, MAP_STORE_ATTR_DTYPE));
    MapCallHDF5(H5Dclose(d));
    if (has > 0) {
      PetscCall(ReadIntDataset(s, g, gname, name, buf));
      *found = PETSC_TRUE;
    }
  }
  MapCallHDF5(H5Gclose(g));
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreBuffersFree(int n, MapStoreBuffer **bufs)
{
  PetscFunctionBegin;
  for (int i = 0; *bufs && i < n; i++) PetscCall(PetscFree((*bufs)[i].data));
  PetscCall(PetscFree(*bufs));
  PetscFunctionReturn(0);
}

/* one recorded file: dataset `path` (e.g. "hf_files/config.json") as bytes, its sha256 checked */
static PetscErrorCode ReadFileDataset(MapStore s, const char *path, const char *name, MapStoreHFFile *f)
{
  char    *sha = NULL, hex[65];
  hid_t    d, space;
  hssize_t np;

  PetscFunctionBegin;
  PetscCheck(strlen(name) < sizeof(f->name) && !strchr(name, '/'), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "store %s: /%s: %s is not a plain file name", s->path, path, name);
  PetscCall(PetscStrncpy(f->name, name, sizeof(f->name)));
  MapCallHDF5(d = H5Dopen2(s->file, path, H5P_DEFAULT));
  MapCallHDF5(space = H5Dget_space(d));
  MapCallHDF5(np = H5Sget_simple_extent_npoints(space));
  f->size = (size_t)np;
  PetscCall(PetscMalloc1(f->size + 1, &f->data));
  if (f->size) MapCallHDF5(H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->data));
  PetscCall(MapH5ReadStringAttr(d, "sha256", &sha));
  MapSha256(f->data, f->size, hex);
  PetscCheck(sha && !strcmp(sha, hex), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: /%s: sha256 of the bytes %s, recorded %s (damaged store)",
             s->path, path, hex, sha ? sha : "none");
  PetscCall(PetscStrncpy(f->sha256, hex, sizeof(f->sha256)));
  PetscCall(PetscFree(sha));
  MapCallHDF5(H5Sclose(space));
  MapCallHDF5(H5Dclose(d));
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreReadHFFiles(MapStore s, int *n, MapStoreHFFile **files, char **source)
{
  char **names;
  hid_t  g;

  PetscFunctionBegin;
  *source = NULL;
  PetscCall(GroupNames(s, "hf_files", n, &names, &g));
  PetscCall(PetscCalloc1(*n + 1, files));
  if (g >= 0) PetscCall(MapH5ReadStringAttr(g, "source", source));
  for (int i = 0; i < *n; i++) {
    char path[512];
    PetscCall(PetscSNPrintf(path, sizeof(path), "hf_files/%s", names[i]));
    PetscCall(ReadFileDataset(s, path, names[i], &(*files)[i]));
  }
  if (g >= 0) MapCallHDF5(H5Gclose(g));
  PetscCall(MapFreeList(*n, &names));
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreHFFilesFree(int n, MapStoreHFFile **files)
{
  PetscFunctionBegin;
  for (int i = 0; *files && i < n; i++) PetscCall(PetscFree((*files)[i].data));
  PetscCall(PetscFree(*files));
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreViewHF_Private(MapStore s, PetscViewer viewer)
{
  int             nb, nf;
  MapStoreBuffer *b;
  MapStoreHFFile *f;
  char           *source, shp[256];

  PetscFunctionBegin;
  PetscCall(MapStoreReadBuffers(s, &nb, &b));
  PetscCall(PetscViewerASCIIPrintf(viewer, "integer/bool tensors kept from the pretrained model (not merged): %d\n", nb));
  PetscCall(PetscViewerASCIIPushTab(viewer));
  for (int i = 0; i < nb; i++) {
    MapStoreShapeText_Private(b[i].ndim, b[i].shape, shp, sizeof(shp));
    PetscCall(PetscViewerASCIIPrintf(viewer, "%-40s %-5s %s\n", b[i].name, MapDTypeName(b[i].dtype), shp));
  }
  PetscCall(PetscViewerASCIIPopTab(viewer));
  PetscCall(MapStoreBuffersFree(nb, &b));
  PetscCall(MapStoreReadHFFiles(s, &nf, &f, &source));
  if (source) {
    PetscCall(PetscViewerASCIIPrintf(viewer, "files of the model folder %s (copied by export -map_output DIR): %d\n", source, nf));
    PetscCall(PetscViewerASCIIPushTab(viewer));
    for (int i = 0; i < nf; i++) PetscCall(PetscViewerASCIIPrintf(viewer, "%s  %s (%zu bytes)\n", f[i].sha256, f[i].name, f[i].size));
    PetscCall(PetscViewerASCIIPopTab(viewer));
  }
  PetscCall(MapStoreHFFilesFree(nf, &f));
  PetscCall(PetscFree(source));
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreReadTaskConfig(MapStore s, int t, MapStoreHFFile *f, PetscBool *found)
{
  char name[MAP_NAME_LEN + 32];

  PetscFunctionBegin;
  *found = PETSC_FALSE;
  PetscCall(PetscMemzero(f, sizeof(*f)));
  PetscCheck(t >= 0 && t < s->T, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "store %s: task index %d out of range [0,%d)", s->path, t, s->T);
  PetscCall(PetscSNPrintf(name, sizeof(name), "hf_task_configs/%s", s->tasks[t]));
  if (!MapH5Exists(s->file, name)) PetscFunctionReturn(0);
  PetscCall(ReadFileDataset(s, name, "config.json", f));
  *found = PETSC_TRUE;
  PetscFunctionReturn(0);
}
