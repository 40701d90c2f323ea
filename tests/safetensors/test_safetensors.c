/* test_safetensors DIR: conversions, serial writer round trip, parallel writer (one file and
 * sharded) round trip, collective errors. Leaves its files in DIR for check_ours.py.
 * Prints "FAIL ..." on a mismatch (ctest fails on it) and returns non-zero. */
#include <mapmerge/safetensors.h>
#include <float.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int nfail = 0;
#define EXPECT(cond, ...) \
  do { \
    if (!(cond)) { \
      nfail++; \
      printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__); \
      printf("\n"); \
    } \
  } while (0)

static uint32_t f2u(float f)
{
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float u2f(uint32_t u)
{
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* the test pattern; check_ours.py computes the same values with numpy float32 arithmetic */
static float pattern(int t, int64_t k)
{
  static const float scale[] = {0.0123f, 7.5f, 0.001f, 1e-6f};
  return (float)(((k * 7919 + t * 104729) % 20001) - 10000) * scale[t % 4];
}

static float through(MapDType dt, float x)
{
  if (dt == MAP_DTYPE_F16) return MapF16ToF32(MapF32ToF16(x));
  if (dt == MAP_DTYPE_BF16) return MapBF16ToF32(MapF32ToBF16(x));
  return x;
}

static int same(float a, float b) { return (isnan(a) && isnan(b)) || f2u(a) == f2u(b); }

static PetscErrorCode TestConversions(void)
{
  PetscFunctionBegin;
  /* F16: known encodings, including ties (round to even), overflow and subnormals */
  struct {
    float    x;
    uint16_t h;
  } f16[] = {
    {1.0f, 0x3c00},
    {-2.0f, 0xc000},
    {65504.0f, 0x7bff},
    {65519.99f, 0x7bff},
    {65520.0f, 0x7c00},
    {1e10f, 0x7c00},
    {0x1p-14f, 0x0400},
    {0x1p-24f, 0x0001},
    {0x1p-25f, 0x0000},
    {u2f(f2u(0x1p-25f) + 1), 0x0001},
    {0x1.8p-24f, 0x0002},
    {0x1.4p-24f, 0x0001},
    {0x1.ffcp-15f, 0x0400}, /* rounds up from the largest subnormal into the smallest normal */
    {1.0f + 0x1p-11f, 0x3c00},
    {1.0f + 0x3p-11f, 0x3c02},
    {-0.0f, 0x8000},
    {INFINITY, 0x7c00},
    {-INFINITY, 0xfc00},
  };
  for (size_t i = 0; i < sizeof(f16) / sizeof(f16[0]); i++)
    EXPECT(MapF32ToF16(f16[i].x) == f16[i].h, "F32ToF16(%a) = 0x%04x, expected 0x%04x", (double)f16[i].x, MapF32ToF16(f16[i].x), f16[i].h);
  EXPECT(isnan(MapF16ToF32(MapF32ToF16(NAN))), "F16 NaN lost");
  EXPECT((MapF32ToF16(-NAN) & 0x8000) && (MapF32ToF16(-NAN) & 0x7c00) == 0x7c00 && (MapF32ToF16(-NAN) & 0x3ff), "F16 -NaN encoding 0x%04x",
         MapF32ToF16(-NAN));
  /* every half value widens exactly and narrows back to itself */
  for (uint32_t h = 0; h < 65536; h++) {
    float x = MapF16ToF32((uint16_t)h);
    if (((h & 0x7c00) == 0x7c00) && (h & 0x3ff)) EXPECT(isnan(x), "F16 0x%04x should be NaN", h);
    else EXPECT(MapF32ToF16(x) == h, "F16 0x%04x -> %a -> 0x%04x", h, (double)x, MapF32ToF16(x));
  }
  /* BF16 */
  struct {
    float    x;
    uint16_t b;
  } bf[] = {
    {1.0f, 0x3f80}, {1.0f + 0x1p-8f, 0x3f80}, {1.0f + 0x3p-8f, 0x3f82}, {-1.0f, 0xbf80}, {3.0e38f, 0x7f62}, {FLT_MAX, 0x7f80}, {INFINITY, 0x7f80},
    {-0.0f, 0x8000}, {0x1p-133f, 0x0001},
  };
  for (size_t i = 0; i < sizeof(bf) / sizeof(bf[0]); i++)
    EXPECT(MapF32ToBF16(bf[i].x) == bf[i].b, "F32ToBF16(%a) = 0x%04x, expected 0x%04x", (double)bf[i].x, MapF32ToBF16(bf[i].x), bf[i].b);
  EXPECT(isnan(MapBF16ToF32(MapF32ToBF16(NAN))) && isnan(MapBF16ToF32(MapF32ToBF16(u2f(0x7f800001u)))), "BF16 NaN lost");
  for (uint32_t b = 0; b < 65536; b++) {
    float x = MapBF16ToF32((uint16_t)b);
    if (!isnan(x)) EXPECT(MapF32ToBF16(x) == b, "BF16 0x%04x round trip", b);
  }
  /* random finite floats: the result is the nearest representable value, ties to even (checked
     against both neighbours in double arithmetic, independent of the bit tricks) */
  for (uint64_t k = 0; k < 200000; k++) {
    float x = u2f((uint32_t)MapRngU64(7, 1, k));
    if (!isfinite(x)) continue;
    for (int kind = 0; kind < 2; kind++) {
      uint16_t r  = kind ? MapF32ToBF16(x) : MapF32ToF16(x);
      float    fr = kind ? MapBF16ToF32(r) : MapF16ToF32(r);
      if (isinf(fr)) continue; /* overflow: checked by the table above */
      double err = fabs((double)fr - (double)x);
      for (int d = -1; d <= 1; d += 2) {
        uint16_t nb = (uint16_t)(r + d);
        float    fn = kind ? MapBF16ToF32(nb) : MapF16ToF32(nb);
        if (isnan(fn) || isinf(fn) || ((nb ^ r) & 0x8000)) continue;
        double en = fabs((double)fn - (double)x);
        EXPECT(err < en || (err == en && !(r & 1)), "%s(%a): 0x%04x is not the nearest-even (neighbour 0x%04x)", kind ? "BF16" : "F16", (double)x, r,
               nb);
      }
    }
  }
#ifdef __FLT16_MAX__
  /* and against the compiler's own _Float16 conversion */
  for (uint64_t k = 0; k < 200000; k++) {
    float    x = u2f((uint32_t)MapRngU64(8, 1, k));
    _Float16 h = (_Float16)x;
    uint16_t hb;
    memcpy(&hb, &h, 2);
    if (!isnan(x)) EXPECT(MapF32ToF16(x) == hb, "F32ToF16(%a) = 0x%04x, _Float16 gives 0x%04x", (double)x, MapF32ToF16(x), hb);
  }
#endif
  /* MapF32ToF16Array (F16C where the CPU has it) = MapF32ToF16, NaN payloads included: a sweep of
     the whole u32 range (every exponent, many mantissas, both signs) of a length that is not a
     multiple of 8, so the scalar tail runs too */
  {
    enum { NSWEEP = 65555 };
    static float    xs[NSWEEP];
    static uint16_t hs[NSWEEP];
    for (uint32_t k = 0; k < NSWEEP; k++) xs[k] = u2f(k * 65519u + (k % 7));
    MapF32ToF16Array(xs, NSWEEP, hs);
    for (uint32_t k = 0; k < NSWEEP; k++)
      EXPECT(hs[k] == MapF32ToF16(xs[k]), "F32ToF16Array(%a) = 0x%04x, MapF32ToF16 gives 0x%04x", (double)xs[k], hs[k], MapF32ToF16(xs[k]));
    for (size_t i = 0; i < sizeof(f16) / sizeof(f16[0]); i++) xs[i] = f16[i].x;
    MapF32ToF16Array(xs, (int64_t)(sizeof(f16) / sizeof(f16[0])), hs); /* the table: vector path and tail */
    for (size_t i = 0; i < sizeof(f16) / sizeof(f16[0]); i++)
      EXPECT(hs[i] == f16[i].h, "F32ToF16Array(%a) = 0x%04x, expected 0x%04x", (double)f16[i].x, hs[i], f16[i].h);
  }
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "conversions: checked\n"));
  PetscFunctionReturn(0);
}

static PetscErrorCode TestSerial(const char *dir)
{
  char           path[MAP_PATH_LEN];
  float          a[12], s0 = 3.25f;
  uint16_t       h[5], b[6];
  int64_t        lab[4] = {0, -1, 9, 1LL << 40};
  double         d[2]   = {0.1, -1e40};
  MapSafetensors st;
  int            rank, n;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/serial.safetensors", dir));
  for (int i = 0; i < 12; i++) a[i] = pattern(0, i);
  for (int i = 0; i < 5; i++) h[i] = MapF32ToF16(pattern(1, i));
  for (int i = 0; i < 6; i++) b[i] = MapF32ToBF16(pattern(2, i));
  MapTensorData td[] = {
    {"encoder.0.weight", MAP_DTYPE_F32, 2, {3, 4}, a},
    {"encoder.0.bias", MAP_DTYPE_F16, 1, {5}, h},
    {"z.bf", MAP_DTYPE_BF16, 2, {2, 3}, b},
    {"labels", MAP_DTYPE_I64, 1, {4}, lab},
    {"dbl", MAP_DTYPE_F64, 1, {2}, d},
    {"scalar", MAP_DTYPE_F32, 0, {0}, &s0},
    {"empty", MAP_DTYPE_F32, 2, {0, 3}, NULL},
  };
  const char *keys[] = {"name"}, *vals[] = {"serial test"};
  if (!rank) PetscCall(MapSafetensorsWrite(path, 7, td, 1, keys, vals));
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  PetscCall(MapSafetensorsOpen(PETSC_COMM_WORLD, path, &st));
  PetscCall(MapSafetensorsGetNumTensors(st, &n));
  EXPECT(n == 7, "serial: %d tensors, expected 7", n);
  for (int i = 0; i < n && i < 7; i++) {
    const MapTensorInfo *t;
    PetscCall(MapSafetensorsGetTensor(st, i, &t));
    EXPECT(!strcmp(t->name, td[i].name), "serial: tensor %d is %s, expected %s (file order)", i, t->name, td[i].name);
    EXPECT(t->dtype == td[i].dtype && t->ndim == td[i].ndim, "serial: tensor %s dtype/ndim", t->name);
    for (int k = 0; k < t->ndim; k++) EXPECT(t->shape[k] == td[i].shape[k], "serial: tensor %s shape[%d]", t->name, k);
  }
  const char *v;
  PetscCall(MapSafetensorsGetMetadata(st, "format", &v));
  EXPECT(v && !strcmp(v, "pt"), "serial: metadata format is %s", v ? v : "(none)");
  PetscCall(MapSafetensorsGetMetadata(st, "name", &v));
  EXPECT(v && !strcmp(v, "serial test"), "serial: metadata name is %s", v ? v : "(none)");
  PetscCall(MapSafetensorsGetMetadata(st, "nope", &v));
  EXPECT(!v, "serial: absent metadata key found");

  const MapTensorInfo *t;
  float                out[12];
  PetscCall(MapSafetensorsFind(st, "encoder.0.weight", &t));
  PetscCall(MapSafetensorsReadF32(st, t, 5, 6, out));
  for (int i = 0; i < 6; i++) EXPECT(same(out[i], a[5 + i]), "serial: F32 element %d", 5 + i);
  PetscCall(MapSafetensorsFind(st, "encoder.0.bias", &t));
  PetscCall(MapSafetensorsReadF32(st, t, 0, 5, out));
  for (int i = 0; i < 5; i++) EXPECT(same(out[i], through(MAP_DTYPE_F16, pattern(1, i))), "serial: F16 element %d", i);
  PetscCall(MapSafetensorsFind(st, "z.bf", &t));
  PetscCall(MapSafetensorsReadF32(st, t, 1, 5, out));
  for (int i = 0; i < 5; i++) EXPECT(same(out[i], through(MAP_DTYPE_BF16, pattern(2, 1 + i))), "serial: BF16 element %d", 1 + i);
  PetscCall(MapSafetensorsFind(st, "dbl", &t));
  PetscCall(MapSafetensorsReadF32(st, t, 0, 2, out));
  EXPECT(out[0] == 0.1f && isinf(out[1]) && out[1] < 0, "serial: F64 -> F32 gives %g %g", (double)out[0], (double)out[1]);
  PetscCall(MapSafetensorsFind(st, "scalar", &t));
  EXPECT(t && t->numel == 1 && t->ndim == 0, "serial: scalar");
  PetscCall(MapSafetensorsReadF32(st, t, 0, 1, out));
  EXPECT(out[0] == s0, "serial: scalar value %g", (double)out[0]);
  PetscCall(MapSafetensorsFind(st, "empty", &t));
  EXPECT(t && t->numel == 0 && t->begin == t->end, "serial: empty tensor");
  PetscCall(MapSafetensorsFind(st, "labels", &t));
  int64_t labr[4];
  PetscCall(MapSafetensorsReadRaw(st, t, labr));
  EXPECT(!memcmp(labr, lab, sizeof(lab)), "serial: I64 labels differ");
  PetscCall(MapSafetensorsFind(st, "missing", &t));
  EXPECT(!t, "serial: Find of an absent tensor returned one");
  /* reading a non-float tensor as F32, or out of range, is an error, not garbage */
  PetscCall(MapSafetensorsFind(st, "labels", &t));
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  PetscErrorCode e1 = MapSafetensorsReadF32(st, t, 0, 1, out);
  PetscCall(MapSafetensorsFind(st, "encoder.0.weight", &t));
  PetscErrorCode e2 = MapSafetensorsReadF32(st, t, 10, 3, out);
  PetscCall(PetscPopErrorHandler());
  EXPECT(e1 && e2, "serial: bad reads accepted (%d %d)", (int)e1, (int)e2);
  PetscCall(MapSafetensorsDestroy(&st));
  EXPECT(!st, "Destroy did not null the pointer");
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "serial round trip: checked\n"));
  PetscFunctionReturn(0);
}

/* the tensors of the parallel tests; shapes chosen so the 64-aligned layout splits inside tensors */
#define NPAR 4
static const struct {
  const char *name;
  MapDType    dt;
  int         ndim;
  int64_t     shape[2];
} par[NPAR] = {
  {"a.weight", MAP_DTYPE_F32, 2, {40, 25}},
  {"b.f16", MAP_DTYPE_F16, 2, {37, 5}},
  {"c.bf16", MAP_DTYPE_BF16, 1, {300}},
  {"d.tiny", MAP_DTYPE_F16, 1, {129}},
};

static PetscErrorCode WriteParallel(const char *path, uint64_t max_shard, int overlap)
{
  MapTensorInfo        ti[NPAR];
  MapSafetensorsWriter w;
  int                  rank, size;
  const char          *keys[] = {"producer"}, *vals[] = {"test_safetensors"};

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  memset(ti, 0, sizeof(ti));
  int64_t P = 0;
  for (int i = 0; i < NPAR; i++) {
    PetscCall(PetscStrncpy(ti[i].name, par[i].name, MAP_NAME_LEN));
    ti[i].dtype = par[i].dt;
    ti[i].ndim  = par[i].ndim;
    ti[i].numel = 1;
    for (int d = 0; d < par[i].ndim; d++) ti[i].shape[d] = par[i].shape[d], ti[i].numel *= par[i].shape[d];
    P += ti[i].numel;
  }
  PetscCall(MapSafetensorsWriterCreate(PETSC_COMM_WORLD, path, NPAR, ti, 1, keys, vals, max_shard, &w));
  /* each rank writes its slice [lo, hi) of the flattened parameter vector, as export does */
  int64_t lo, hi, off = 0;
  MapLayoutRange(P, size, rank, &lo, &hi);
  for (int i = 0; i < NPAR; i++) {
    int64_t a = PetscMax(lo, off) - off, b = PetscMin(hi, off + ti[i].numel) - off;
    if (b > a) {
      float *buf;
      PetscCall(PetscMalloc1(b - a, &buf));
      for (int64_t k = a; k < b; k++) buf[k - a] = pattern(i, k);
      PetscCall(MapSafetensorsWriterWriteF32(w, i, a, b - a, buf));
      PetscCall(PetscFree(buf));
    }
    off += ti[i].numel;
  }
  if (overlap && rank == size - 1) {
    /* a range written twice: the byte count check in Close must catch it */
    float again[10];
    for (int k = 0; k < 10; k++) again[k] = pattern(0, k);
    PetscCall(MapSafetensorsWriterWriteF32(w, 0, 0, 10, again));
  }
  PetscCall(MapSafetensorsWriterClose(&w));
  PetscFunctionReturn(0);
}

static PetscErrorCode CheckParallel(const char *path, const char *label, int expect_files)
{
  MapSafetensors st;
  int            n, nfiles;
  const char *const *files;

  PetscFunctionBegin;
  PetscCall(MapSafetensorsOpen(PETSC_COMM_WORLD, path, &st));
  PetscCall(MapSafetensorsGetNumTensors(st, &n));
  PetscCall(MapSafetensorsGetFiles(st, &nfiles, &files));
  EXPECT(n == NPAR, "%s: %d tensors", label, n);
  EXPECT(nfiles == expect_files, "%s: %d files, expected %d", label, nfiles, expect_files);
  for (int i = 0; i < n && i < NPAR; i++) {
    const MapTensorInfo *t;
    float               *buf;
    PetscCall(MapSafetensorsGetTensor(st, i, &t));
    EXPECT(!strcmp(t->name, par[i].name) && t->dtype == par[i].dt, "%s: tensor %d is %s", label, i, t->name);
    PetscCall(PetscMalloc1(t->numel, &buf));
    PetscCall(MapSafetensorsReadF32(st, t, 0, t->numel, buf));
    int bad = 0;
    for (int64_t k = 0; k < t->numel; k++)
      if (!same(buf[k], through(t->dtype, pattern(i, k)))) bad++;
    EXPECT(!bad, "%s: tensor %s: %d of %lld elements differ", label, t->name, bad, (long long)t->numel);
    PetscCall(PetscFree(buf));
  }
  const char *v;
  PetscCall(MapSafetensorsGetMetadata(st, "producer", &v));
  EXPECT(v && !strcmp(v, "test_safetensors"), "%s: metadata", label);
  PetscCall(MapSafetensorsDestroy(&st));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "%s: checked (%d files)\n", label, nfiles));
  PetscFunctionReturn(0);
}

static PetscErrorCode TestErrors(const char *dir)
{
  char           path[MAP_PATH_LEN];
  MapSafetensors st = NULL;
  struct stat    sb;

  PetscFunctionBegin;
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  /* a missing file: every rank must fail (a hang here is the bug being tested) */
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/does-not-exist.safetensors", dir));
  PetscErrorCode e = MapSafetensorsOpen(PETSC_COMM_WORLD, path, &st);
  EXPECT(e && !st, "opening a missing file succeeded");
  /* overlapping writes are caught by Close on every rank and leave no file behind */
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/overlap.safetensors", dir));
  (void)unlink(path); /* a leftover of an earlier run would hide the check below */
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  e = WriteParallel(path, 0, 1);
  EXPECT(e, "overlapping parallel writes were not detected");
  PetscCall(PetscPopErrorHandler());
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  EXPECT(stat(path, &sb) != 0, "a failed write left %s behind", path);
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "collective errors: checked\n"));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  char path[MAP_PATH_LEN];
  int  allfail;

  PetscCall(PetscInitialize(&argc, &argv, NULL, "safetensors tests: test_safetensors DIR"));
  PetscCheck(argc > 1, PETSC_COMM_WORLD, PETSC_ERR_ARG_WRONG, "usage: test_safetensors DIR");
  const char *dir = argv[1];
  PetscCall(TestConversions());
  PetscCall(TestSerial(dir));
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/parallel.safetensors", dir));
  PetscCall(WriteParallel(path, 0, 0));
  PetscCall(CheckParallel(path, "parallel single file", 1));
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/sharded", dir));
  PetscCall(WriteParallel(path, 1000, 0));
  PetscCall(CheckParallel(path, "parallel sharded (folder)", 3));
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/sharded/model.safetensors.index.json", dir));
  PetscCall(CheckParallel(path, "parallel sharded (index)", 3));
  PetscCall(TestErrors(dir));
  PetscCallMPI(MPI_Allreduce(&nfail, &allfail, 1, MPI_INT, MPI_SUM, PETSC_COMM_WORLD));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "%s: %d failures\n", allfail ? "FAILED" : "ALL OK", allfail));
  PetscCall(PetscFinalize());
  return allfail ? 1 : 0;
}
