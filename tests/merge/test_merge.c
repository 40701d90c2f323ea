/* test_merge: the vectorised merge kernels give the same bits as the reference loops, and both
   agree with an independent double-precision evaluation of the same rounding sequence.
   Random data from MapRngU01 over many shard lengths (including ones that are not multiples of
   the vector width or unroll), T = 0..9, leading dimensions > n, F32, BF16 and F16 storage, and
   in-place use (theta == pre). Prints "FAIL" lines on mismatch; exit code != 0 on failure. */
#include <mapmerge/mapmerge.h>
#include "mergeimpl.h" /* MapMergeForceGeneric_Private: test the portable kernels too */
#include <math.h>

static char help[] = "test_merge: fast merge kernels == reference kernels, bitwise.\n";

static int nfail = 0;

/* Local conversions, independent of the library's: round to nearest even; widening is exact. */
static uint16_t ToBF16(float f)
{
  uint32_t u;
  memcpy(&u, &f, sizeof(u));
  u += 0x7FFFu + ((u >> 16) & 1u); /* test data is finite: no NaN handling needed */
  return (uint16_t)(u >> 16);
}

static float FromBF16(uint16_t b)
{
  uint32_t u = (uint32_t)b << 16;
  float    f;
  memcpy(&f, &u, sizeof(f));
  return f;
}

/* IEEE half through the compiler's _Float16 (GCC >= 12 on x86-64: IEEE conversions, nearest even);
   a compiler without it uses the library's (tested against tables in test_safetensors) */
#ifdef __FLT16_MAX__
static uint16_t ToF16(float f)
{
  _Float16 h = (_Float16)f;
  uint16_t b;
  memcpy(&b, &h, sizeof(b));
  return b;
}

static float FromF16(uint16_t b)
{
  _Float16 h;
  memcpy(&h, &b, sizeof(h));
  return (float)h;
}
#else
  #define ToF16   MapF32ToF16
  #define FromF16 MapF16ToF32
#endif

/* The 16-bit storage formats: name, dtype, conversions. */
static const struct {
  const char *name;
  MapDType    dtype;
  uint16_t (*to)(float);
  float (*from)(uint16_t);
} Formats16[] = {
  {"BF16", MAP_DTYPE_BF16, ToBF16, FromBF16},
  {"F16",  MAP_DTYPE_F16,  ToF16,  FromF16 },
};

/* An independent evaluation: each step rounded to float through double arithmetic
   (double holds the exact product and sum of two floats' products up to one rounding). */
static float Expected(const float *pre, int T, const float *tau, int64_t ld, const float *cf, int64_t j, int zero)
{
  float acc = zero ? 0.0f : pre[j];
  for (int i = 0; i < T; i++) {
    float prod = (float)((double)cf[i] * (double)tau[i * ld + j]);
    acc        = (float)((double)acc + (double)prod);
  }
  return acc;
}

static float RandValue(uint64_t seed, uint64_t stream, uint64_t k)
{
  /* mixed magnitudes and signs, so that rounding actually happens in the adds */
  double u = MapRngU01(seed, stream, 2 * k), v = MapRngU01(seed, stream, 2 * k + 1);
  return (float)((2 * u - 1) * pow(2.0, (int)(v * 20) - 10));
}

static PetscErrorCode CheckCase(int64_t n, int T, int64_t pad, uint64_t seed)
{
  int64_t   ld = n + pad;
  float    *pre, *tau, *th, *thr, *cf, *prew, *tauw;
  uint16_t *preb, *taub;
  double   *c;

  PetscFunctionBegin;
  PetscCall(PetscMalloc4(n + 1, &pre, (size_t)T * ld + 1, &tau, n + 1, &th, n + 1, &thr));
  PetscCall(PetscMalloc4(n + 1, &preb, (size_t)T * ld + 1, &taub, T + 1, &c, T + 1, &cf));
  PetscCall(PetscMalloc2(n + 1, &prew, (size_t)T * ld + 1, &tauw));
  for (int64_t j = 0; j < n; j++) pre[j] = RandValue(seed, 1000, j);
  for (int64_t k = 0; k < T * ld; k++) tau[k] = RandValue(seed, 2000, k);
  for (int i = 0; i < T; i++) c[i] = 4 * MapRngU01(seed, 3000, i) - 1.5; /* not representable in F32: rounding of c too */
  for (int i = 0; i < T; i++) cf[i] = (float)c[i];

  /* F32: fast vs ref vs independent */
  memset(th, 0xAB, (n + 1) * sizeof(float));
  memset(thr, 0xCD, (n + 1) * sizeof(float));
  PetscCall(MapMergeApply(MAP_DTYPE_F32, n, pre, T, tau, ld, c, th));
  PetscCall(MapMergeApply_Ref(MAP_DTYPE_F32, n, pre, T, tau, ld, c, thr));
  if (n && memcmp(th, thr, n * sizeof(float))) {
    nfail++;
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "FAIL F32 n=%" PRId64 " T=%d pad=%" PRId64 ": fast != ref\n", n, T, pad));
  }
  {
    uint32_t guard;
    memcpy(&guard, th + n, sizeof(guard));
    if (guard != 0xABABABABu) {
      nfail++;
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "FAIL F32 n=%" PRId64 " T=%d: wrote past the end\n", n, T));
    }
  }
  for (int64_t j = 0; j < n; j++) {
    float e = Expected(pre, T, tau, ld, cf, j, 0);
    if (memcmp(&e, &thr[j], sizeof(float))) {
      nfail++;
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "FAIL F32 n=%" PRId64 " T=%d j=%" PRId64 ": ref %.9g != expected %.9g\n", n, T, j,
                            (double)thr[j], (double)e));
      break;
    }
  }
  /* in place: theta aliases pre */
  if (n) {
    float *inpl;
    PetscCall(PetscMalloc1(n, &inpl));
    memcpy(inpl, pre, n * sizeof(float));
    PetscCall(MapMergeApply(MAP_DTYPE_F32, n, inpl, T, tau, ld, c, inpl));
    if (memcmp(inpl, thr, n * sizeof(float))) {
      nfail++;
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "FAIL F32 in-place n=%" PRId64 " T=%d\n", n, T));
    }
    PetscCall(PetscFree(inpl));
  }

  /* 16-bit storage (the F32 data rounded; |x| < 2^10, so F16 sees subnormals but no overflow): fast
     vs ref; the ref vs the independent evaluation on the widened values */
  for (size_t f = 0; f < sizeof(Formats16) / sizeof(Formats16[0]); f++) {
    const char *name = Formats16[f].name;
    for (int64_t j = 0; j < n; j++) preb[j] = Formats16[f].to(pre[j]);
    for (int64_t k = 0; k < T * ld; k++) taub[k] = Formats16[f].to(tau[k]);
    PetscCall(MapMergeApply(Formats16[f].dtype, n, preb, T, taub, ld, c, th));
    PetscCall(MapMergeApply_Ref(Formats16[f].dtype, n, preb, T, taub, ld, c, thr));
    if (n && memcmp(th, thr, n * sizeof(float))) {
      nfail++;
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "FAIL %s n=%" PRId64 " T=%d pad=%" PRId64 ": fast != ref\n", name, n, T, pad));
    }
    for (int64_t j = 0; j < n; j++) prew[j] = Formats16[f].from(preb[j]);
    for (int64_t k = 0; k < T * ld; k++) tauw[k] = Formats16[f].from(taub[k]);
    for (int64_t j = 0; j < n; j++) {
      float e = Expected(prew, T, tauw, ld, cf, j, 0);
      if (memcmp(&e, &thr[j], sizeof(float))) {
        nfail++;
        PetscCall(PetscPrintf(PETSC_COMM_SELF, "FAIL %s n=%" PRId64 " T=%d j=%" PRId64 ": ref %.9g != expected %.9g\n", name, n, T, j,
                              (double)thr[j], (double)e));
        break;
      }
    }
  }
  PetscCall(PetscFree4(pre, tau, th, thr));
  PetscCall(PetscFree4(preb, taub, c, cf));
  PetscCall(PetscFree2(prew, tauw));
  PetscFunctionReturn(0);
}

/* Bad arguments give errors, not crashes. */
static PetscErrorCode CheckErrors(void)
{
  float          x[4] = {0}, y[4];
  uint16_t       h[4] = {0};
  double         c[2] = {1, 1};
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  ierr = MapMergeApply(MAP_DTYPE_F32, -1, x, 1, x, 4, c, y);
  if (!ierr) nfail++, printf("FAIL negative n accepted\n");
  ierr = MapMergeApply(MAP_DTYPE_F32, 4, x, 2, x, 2, c, y);
  if (!ierr) nfail++, printf("FAIL ld < n accepted\n");
  ierr = MapMergeApply(MAP_DTYPE_F32, 4, NULL, 1, x, 4, c, y);
  if (!ierr) nfail++, printf("FAIL NULL pre accepted\n");
  ierr = MapMergeApply(MAP_DTYPE_F32, 4, x, -2, x, 4, c, y);
  if (!ierr) nfail++, printf("FAIL negative T accepted\n");
  ierr = MapMergeApply(MAP_DTYPE_F16, 4, NULL, 1, h, 4, c, y);
  if (!ierr) nfail++, printf("FAIL F16 NULL pre accepted\n");
  ierr = MapMergeApply_Ref(MAP_DTYPE_F16, 4, h, 2, h, 2, c, y);
  if (!ierr) nfail++, printf("FAIL F16 ref ld < n accepted\n");
  ierr = MapMergeApply(MAP_DTYPE_F64, 4, x, 1, x, 4, c, y);
  if (!ierr) nfail++, printf("FAIL F64 accepted\n");
  ierr = MapMergeApply_Ref(MAP_DTYPE_I32, 4, x, 1, x, 4, c, y);
  if (!ierr) nfail++, printf("FAIL ref I32 accepted\n");
  PetscCall(PetscPopErrorHandler());
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  const int64_t ns[] = {0, 1, 2, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 127, 129, 1000, 4097, 100003};
  int           ncase = 0;

  PetscCall(PetscInitialize(&argc, &argv, NULL, help));
  PetscCall(MapInitializePackage());
  for (int generic = 0; generic < 2; generic++) {
    MapMergeForceGeneric_Private(generic ? PETSC_TRUE : PETSC_FALSE);
    for (size_t a = 0; a < sizeof(ns) / sizeof(ns[0]); a++) {
      for (int T = 0; T <= 9; T++) {
        int64_t pad = (a + T) % 3 == 0 ? 0 : (int64_t)((a * 7 + T) % 13);
        PetscCall(CheckCase(ns[a], T, pad, 42 + 100 * a + T + 7919 * generic));
        ncase++;
      }
    }
  }
  MapMergeForceGeneric_Private(PETSC_FALSE);
  /* T > 8 over several 32768-element blocks (grouped passes), and a large T that takes the heap
     path for the coefficients; both instruction-set paths */
  for (int generic = 0; generic < 2; generic++) {
    MapMergeForceGeneric_Private(generic ? PETSC_TRUE : PETSC_FALSE);
    PetscCall(CheckCase(2 * 32768 + 37, 17, 3, 5 + generic));
    PetscCall(CheckCase(32768, 16, 0, 9 + generic));
    PetscCall(CheckCase(1001, 70, 5, 7 + generic));
    ncase += 3;
  }
  MapMergeForceGeneric_Private(PETSC_FALSE);
  PetscCall(CheckErrors());
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "test_merge: %d cases, %d failures: %s\n", ncase, nfail, nfail ? "FAIL" : "OK"));
  PetscCall(PetscFinalize());
  return nfail ? 1 : 0;
}
