/* MapStore, description: `mapmerge info -map_store` (sizes, storage dtype and its rounding errors,
 * tensor table, private tensors, provenance). */
#include "storeimpl.h"

typedef struct {
  PetscViewer viewer;
  PetscBool   err;
} AttrCtx;

static herr_t ViewAttribute(hid_t loc, const char *key, const H5A_info_t *info, void *ctx)
{
  AttrCtx *a = (AttrCtx *)ctx;
  char    *v = NULL;
  if (!strcmp(key, "format")) return 0;
  if (MapH5ReadStringAttr(loc, key, &v)) a->err = PETSC_TRUE;
  else if (v && strchr(v, '\n')) { /* one line per source file (sha256sum format) */
    char *line = v, *nl;
    if (PetscViewerASCIIPrintf(a->viewer, "%s:\n", key)) a->err = PETSC_TRUE;
    for (; line && !a->err; line = nl ? nl + 1 : NULL) {
      nl = strchr(line, '\n');
      if (nl) *nl = 0;
      if (PetscViewerASCIIPrintf(a->viewer, "  %s\n", line)) a->err = PETSC_TRUE;
    }
  } else if (PetscViewerASCIIPrintf(a->viewer, "%s: %s\n", key, v ? v : "(not a string)")) a->err = PETSC_TRUE;
  PetscFree(v);
  return a->err ? -1 : 0;
}

static PetscErrorCode ShapeString(int ndim, const int64_t *shape, char *buf, size_t len)
{
  PetscFunctionBegin;
  buf[0] = 0;
  PetscCall(MapStrlcat(buf, "[", len));
  for (int d = 0; d < ndim; d++) {
    char e[32];
    PetscCall(PetscSNPrintf(e, sizeof(e), "%s%lld", d ? "," : "", (long long)shape[d]));
    PetscCall(MapStrlcat(buf, e, len));
  }
  PetscCall(MapStrlcat(buf, "]", len));
  PetscFunctionReturn(0);
}

/* The largest F32 -> 16-bit rounding errors the import recorded on each vector dataset. */
static PetscErrorCode StoreViewRoundingErrors(MapStore s, PetscViewer viewer)
{
  const hid_t              dsets[] = {s->pretrained, s->task_vectors};
  const char *const        names[] = {"pretrained", "task vectors"};
  const MapStoreDTypeInfo *dt      = MapStoreDTypeGetInfo(s->dtype);

  PetscFunctionBegin;
  PetscCall(PetscViewerASCIIPrintf(viewer, "storage: %s (%s), rounded to nearest even from F32\n", dt->name, dt->layout));
  for (int k = 0; k < 2; k++) {
    double    abserr, relerr;
    PetscBool fa, fr;
    PetscCall(MapH5ReadDoubleAttr(dsets[k], dt->maxabs, &abserr, &fa));
    PetscCall(MapH5ReadDoubleAttr(dsets[k], dt->maxrel, &relerr, &fr));
    if (fa && fr)
      PetscCall(PetscViewerASCIIPrintf(viewer, "%s rounding error of the %s: max abs %.9g, max rel %.9g\n", dt->name, names[k], abserr, relerr));
    else PetscCall(PetscViewerASCIIPrintf(viewer, "%s rounding error of the %s: not recorded\n", dt->name, names[k]));
  }
  PetscFunctionReturn(0);
}

/*@
  MapStoreView - prints the store: P, tasks, the merged-tensor table (name, source dtype, shape,
  flat offset, numel), each task's private tensors, and the provenance attributes.

  Collective on the viewer's communicator (output from its first rank).
@*/
PetscErrorCode MapStoreView(MapStore s, PetscViewer viewer)
{
  char    shp[256];
  AttrCtx ctx = {viewer, PETSC_FALSE};
  hsize_t idx = 0;

  PetscFunctionBegin;
  PetscCall(PetscViewerASCIIPrintf(viewer, "mapmerge store %s\n", s->path));
  PetscCall(PetscViewerASCIIPushTab(viewer));
  PetscCall(PetscViewerASCIIPrintf(viewer, "parameters P = %lld (%s), %.3f MB per vector\n", (long long)s->P, MapDTypeName(s->dtype),
                                   (double)MapStoreDTypeGetInfo(s->dtype)->size * (double)s->P / 1e6));
  if (s->dtype != MAP_DTYPE_F32) PetscCall(StoreViewRoundingErrors(s, viewer));
  {
    size_t len = 1;
    char  *line;
    for (int t = 0; t < s->T; t++) len += strlen(s->tasks[t]) + 1;
    PetscCall(PetscCalloc1(len, &line));
    for (int t = 0; t < s->T; t++) {
      PetscCall(MapStrlcat(line, " ", len));
      PetscCall(MapStrlcat(line, s->tasks[t], len));
    }
    PetscCall(PetscViewerASCIIPrintf(viewer, "tasks T = %d:%s\n", s->T, line));
    PetscCall(PetscFree(line));
  }
  PetscCall(PetscViewerASCIIPrintf(viewer, "merged tensors: %d\n", s->ntensors));
  PetscCall(PetscViewerASCIIPushTab(viewer));
  PetscCall(PetscViewerASCIIPrintf(viewer, "%-40s %-5s %-20s %12s %12s\n", "name", "dtype", "shape", "offset", "numel"));
  for (int i = 0; i < s->ntensors; i++) {
    const MapStoreTensor *t = &s->tensors[i];
    PetscCall(ShapeString(t->ndim, t->shape, shp, sizeof(shp)));
    PetscCall(PetscViewerASCIIPrintf(viewer, "%-40s %-5s %-20s %12lld %12lld\n", t->name, t->dtype, shp, (long long)t->offset,
                                     (long long)t->numel));
  }
  PetscCall(PetscViewerASCIIPopTab(viewer));
  for (int t = 0; t < s->T; t++) {
    int    n;
    char **names;
    PetscCall(MapStoreGetPrivateNames(s, t, &n, &names));
    PetscCall(PetscViewerASCIIPrintf(viewer, "private tensors of %s: %d\n", s->tasks[t], n));
    PetscCall(PetscViewerASCIIPushTab(viewer));
    for (int k = 0; k < n; k++) {
      char    dname[2 * MAP_NAME_LEN + 16];
      hid_t   d, space;
      hsize_t dims[MAP_MAX_NDIM];
      int64_t sh[MAP_MAX_NDIM];
      int     nd;
      PetscCall(PetscSNPrintf(dname, sizeof(dname), "/private/%s/%s", s->tasks[t], names[k]));
      MapCallHDF5(d = H5Dopen2(s->file, dname, H5P_DEFAULT));
      MapCallHDF5(space = H5Dget_space(d));
      MapCallHDF5(nd = H5Sget_simple_extent_ndims(space));
      PetscCheck(nd <= MAP_MAX_NDIM, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "store %s: %s has %d dimensions", s->path, dname, nd);
      MapCallHDF5(H5Sget_simple_extent_dims(space, dims, NULL));
      for (int q = 0; q < nd; q++) sh[q] = (int64_t)dims[q];
      PetscCall(ShapeString(nd, sh, shp, sizeof(shp)));
      {
        char *dt = NULL; /* an integer/bool private tensor (import -map_import_buffer_differs private) names its dtype */
        PetscCall(MapH5ReadStringAttr(d, MAP_STORE_ATTR_DTYPE, &dt));
        PetscCall(PetscViewerASCIIPrintf(viewer, "%-40s %-5s %s\n", names[k], dt ? dt : "F32", shp));
        PetscCall(PetscFree(dt));
      }
      MapCallHDF5(H5Sclose(space));
      MapCallHDF5(H5Dclose(d));
    }
    PetscCall(PetscViewerASCIIPopTab(viewer));
    PetscCall(MapFreeList(n, &names));
  }
  PetscCall(MapStoreViewHF_Private(s, viewer)); /* buffers and recorded files */
  PetscCall(PetscViewerASCIIPrintf(viewer, "provenance:\n"));
  PetscCall(PetscViewerASCIIPushTab(viewer));
  herr_t err = H5Aiterate2(s->file, H5_INDEX_NAME, H5_ITER_INC, &idx, ViewAttribute, &ctx);
  PetscCheck(err >= 0 && !ctx.err, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "store %s: cannot read its attributes", s->path);
  PetscCall(PetscViewerASCIIPopTab(viewer));
  PetscCall(PetscViewerASCIIPopTab(viewer));
  PetscFunctionReturn(0);
}
