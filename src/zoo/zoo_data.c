/* zoo: the Fashion-MNIST reader (IDX files, gzip) and the deterministic image transforms. */
#include "zooimpl.h"
#include <zlib.h>
#include <errno.h>
#include <sys/stat.h>

uint64_t MapZooStream(const char *purpose, const char *name, uint64_t index)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char *p = purpose; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
  h = (h ^ 0xff) * 0x100000001b3ULL; /* separator, so ("ab","c") != ("a","bc") */
  for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
  return MapRngU64(h, index, 0);
}

/* reads exactly len bytes or fails naming the file */
static PetscErrorCode MapZooGzRead(gzFile f, const char *path, void *buf, size_t len)
{
  PetscFunctionBegin;
  size_t got = 0;
  while (got < len) {
    unsigned chunk = (unsigned)PetscMin(len - got, (size_t)1 << 30);
    int      r     = gzread(f, (char *)buf + got, chunk);
    if (r <= 0) {
      int         zerr;
      const char *msg = gzerror(f, &zerr);
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "%s: truncated or corrupt: expected %zu bytes, got %zu (%s)", path, len, got,
              r < 0 ? msg : "end of file");
    }
    got += (size_t)r;
  }
  PetscFunctionReturn(0);
}

static uint32_t MapZooBE32(const unsigned char *b)
{
  return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | (uint32_t)b[3];
}

/* reads one IDX file of unsigned bytes: magic 0x0000080<ndim>, ndim big-endian u32 sizes, data */
static PetscErrorCode MapZooReadIDX(const char *path, int ndim, const uint32_t *dims, unsigned char *data)
{
  gzFile        f;
  unsigned char hdr[16];
  size_t        total = 1;
  struct stat   sb;

  PetscFunctionBegin;
  PetscCheck(stat(path, &sb) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN,
             "cannot open the Fashion-MNIST file %s (%s): install dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
             "or point -map_zoo_data at a folder holding the four *-ubyte.gz files",
             path, strerror(errno));
  PetscCall(MapCheckInputFile(path, "Fashion-MNIST file"));
  f = gzopen(path, "rb");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot open %s: %s", path, strerror(errno));
  PetscErrorCode ierr = MapZooGzRead(f, path, hdr, 4 + 4 * (size_t)ndim);
  if (ierr) {
    gzclose(f);
    PetscCall(ierr);
  }
  uint32_t magic = MapZooBE32(hdr);
  if (magic != (uint32_t)(0x800 + ndim)) {
    gzclose(f);
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: not an IDX file of %d-d unsigned bytes: magic 0x%08x, expected 0x%08x",
            path, ndim, magic, 0x800 + ndim);
  }
  for (int d = 0; d < ndim; d++) {
    uint32_t got = MapZooBE32(hdr + 4 + 4 * d);
    if (got != dims[d]) {
      gzclose(f);
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: dimension %d is %u, expected %u", path, d, got, dims[d]);
    }
    total *= dims[d];
  }
  ierr = MapZooGzRead(f, path, data, total);
  gzclose(f);
  PetscCall(ierr);
  PetscFunctionReturn(0);
}

PetscErrorCode MapZooSplitLoad(const char *dir, const char *prefix, int expect_n, MapZooSplit *s)
{
  char     path[MAP_PATH_LEN];
  uint32_t idims[3] = {(uint32_t)expect_n, MAP_ZOO_SIDE, MAP_ZOO_SIDE}, ldims[1] = {(uint32_t)expect_n};

  PetscFunctionBegin;
  s->n = expect_n;
  PetscCall(PetscMalloc1((size_t)expect_n * MAP_ZOO_PIXELS, &s->pixels));
  PetscCall(PetscMalloc1(expect_n, &s->labels));
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/%s-images-idx3-ubyte.gz", dir, prefix));
  PetscCall(MapZooReadIDX(path, 3, idims, s->pixels));
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/%s-labels-idx1-ubyte.gz", dir, prefix));
  PetscCall(MapZooReadIDX(path, 1, ldims, s->labels));
  for (int i = 0; i < expect_n; i++)
    PetscCheck(s->labels[i] < MAP_ZOO_CLASSES, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: label %d of image %d, expected 0..9",
               path, s->labels[i], i);
  PetscFunctionReturn(0);
}

PetscErrorCode MapZooSplitFree(MapZooSplit *s)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(s->pixels));
  PetscCall(PetscFree(s->labels));
  s->n = 0;
  PetscFunctionReturn(0);
}

const char *const MapZooTaskNames[] = {"identity", "rot90", "rot180", "rot270", "flip_h", "flip_v", "transpose",
                                       "invert", "permute", "shift", "rot90_invert", NULL};

PetscErrorCode MapZooTransformSetUp(const char *name, uint64_t seed, MapZooTransform *tf)
{
  const int n = MAP_ZOO_SIDE, S = 6; /* shift: 6 pixels down and right, wrapping around */
  PetscBool known = PETSC_FALSE;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(tf, sizeof(*tf)));
  PetscCall(PetscStrncpy(tf->name, name, sizeof(tf->name)));
  for (int i = 0; MapZooTaskNames[i]; i++)
    if (!strcmp(name, MapZooTaskNames[i])) known = PETSC_TRUE;
  if (!known) {
    char list[1024] = "";
    for (int i = 0; MapZooTaskNames[i]; i++) {
      size_t l = strlen(list);
      snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "", MapZooTaskNames[i]);
    }
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "-map_zoo_tasks: unknown task \"%s\"; known transforms: %s", name, list);
  }
  /* out(r, c) = in(sr, sc): each transform is a map from output pixel to source pixel */
  for (int r = 0; r < n; r++) {
    for (int c = 0; c < n; c++) {
      int sr = r, sc = c;
      if (!strcmp(name, "rot90") || !strcmp(name, "rot90_invert")) sr = c, sc = n - 1 - r; /* numpy rot90(k=1) */
      else if (!strcmp(name, "rot180")) sr = n - 1 - r, sc = n - 1 - c;
      else if (!strcmp(name, "rot270")) sr = n - 1 - c, sc = r;
      else if (!strcmp(name, "flip_h")) sc = n - 1 - c;
      else if (!strcmp(name, "flip_v")) sr = n - 1 - r;
      else if (!strcmp(name, "transpose")) sr = c, sc = r;
      else if (!strcmp(name, "shift")) sr = (r - S + n) % n, sc = (c - S + n) % n;
      tf->src[r * n + c] = sr * n + sc;
    }
  }
  if (!strcmp(name, "permute")) { /* a fixed random pixel permutation, keyed on the seed */
    uint64_t stream = MapZooStream("permute", name, 0);
    for (int i = MAP_ZOO_PIXELS - 1; i > 0; i--) {
      int j      = (int)(MapRngU64(seed, stream, (uint64_t)i) % (uint64_t)(i + 1));
      int t      = tf->src[i];
      tf->src[i] = tf->src[j];
      tf->src[j] = t;
    }
  }
  tf->invert = !strcmp(name, "invert") || !strcmp(name, "rot90_invert");
  PetscFunctionReturn(0);
}

void MapZooTransformApply(const MapZooTransform *tf, const MapZooSplit *s, const int *idx, int b, float *x)
{
  for (int r = 0; r < b; r++) {
    const unsigned char *img = s->pixels + (size_t)idx[r] * MAP_ZOO_PIXELS;
    float               *out = x + (size_t)r * MAP_ZOO_PIXELS;
    for (int p = 0; p < MAP_ZOO_PIXELS; p++) {
      float v = (float)img[tf->src[p]] / 255.0f;
      out[p]  = tf->invert ? 1.0f - v : v;
    }
  }
}
