/* core_fixed: fixed-order kernels and elementary functions (see fixedimpl.h), and the BLAS thread pin. */
#include "fixedimpl.h"
#include <dlfcn.h>
#include <math.h>

/* 4 lanes: SSE2, present on every x86-64; the lanes run across j, so each element's sum over k
   is the same chain of roundings as the scalar loop (built with -ffp-contract=off: no FMA) */
typedef float MapFixedV4 __attribute__((vector_size(16)));

static inline MapFixedV4 LoadV4(const float *p)
{
  MapFixedV4 v;
  memcpy(&v, p, sizeof(v));
  return v;
}

/* rows [i0, i0+4) x columns [j0, j0+8): 8 accumulators in registers, k ascending */
static void Tile4x8(int64_t K, const float *A, int64_t ai, int64_t ak, const float *B, int64_t ldb, float *C, int64_t ldc)
{
  MapFixedV4   c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
  const float *a0 = A, *a1 = A + ai, *a2 = A + 2 * ai, *a3 = A + 3 * ai;
  for (int64_t k = 0; k < K; k++, B += ldb) {
    const MapFixedV4 b0 = LoadV4(B), b1 = LoadV4(B + 4);
    const int64_t    o = k * ak;
    MapFixedV4       v;
    v = (MapFixedV4){a0[o], a0[o], a0[o], a0[o]};
    c00 += v * b0;
    c01 += v * b1;
    v = (MapFixedV4){a1[o], a1[o], a1[o], a1[o]};
    c10 += v * b0;
    c11 += v * b1;
    v = (MapFixedV4){a2[o], a2[o], a2[o], a2[o]};
    c20 += v * b0;
    c21 += v * b1;
    v = (MapFixedV4){a3[o], a3[o], a3[o], a3[o]};
    c30 += v * b0;
    c31 += v * b1;
  }
  const MapFixedV4 *out[8] = {&c00, &c01, &c10, &c11, &c20, &c21, &c30, &c31};
  for (int r = 0; r < 4; r++) {
    memcpy(C + r * ldc, out[2 * r], sizeof(MapFixedV4));
    memcpy(C + r * ldc + 4, out[2 * r + 1], sizeof(MapFixedV4));
  }
}

/* one row x columns [j0, j0+8) */
static void Tile1x8(int64_t K, const float *A, int64_t ak, const float *B, int64_t ldb, float *C)
{
  MapFixedV4 c0 = {0}, c1 = {0};
  for (int64_t k = 0; k < K; k++, B += ldb) {
    const MapFixedV4 v = {A[k * ak], A[k * ak], A[k * ak], A[k * ak]};
    c0 += v * LoadV4(B);
    c1 += v * LoadV4(B + 4);
  }
  memcpy(C, &c0, sizeof(c0));
  memcpy(C + 4, &c1, sizeof(c1));
}

void MapFixedGemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t ai, int64_t ak, const float *B, int64_t ldb, float *C, int64_t ldc)
{
  int64_t j0 = 0;
  for (; j0 + 8 <= N; j0 += 8) {
    int64_t i0 = 0;
    for (; i0 + 4 <= M; i0 += 4) Tile4x8(K, A + i0 * ai, ai, ak, B + j0, ldb, C + i0 * ldc + j0, ldc);
    for (; i0 < M; i0++) Tile1x8(K, A + i0 * ai, ak, B + j0, ldb, C + i0 * ldc + j0);
  }
  for (int64_t i = 0; i < M; i++) /* the last N % 8 columns: the same order, one element at a time */
    for (int64_t j = j0; j < N; j++) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; k++) acc += A[i * ai + k * ak] * B[k * ldb + j];
      C[i * ldc + j] = acc;
    }
}

/* exp: x = n ln2 + r (Cody-Waite, |r| <= ln2/2), exp(r) by its Taylor series to r^17/17! (terms
   below 2^-60 of the sum), then the exact scaling by 2^n */
double MapFixedExp(double x)
{
  const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10, inv_ln2 = 1.44269504088896338700e+00;
  if (x != x) return x;
  if (x > 709.0) return INFINITY;
  if (x < -745.2) return 0.0;
  double n = x * inv_ln2;
  n        = n < 0 ? (double)(int64_t)(n - 0.5) : (double)(int64_t)(n + 0.5);
  double r = (x - n * ln2_hi) - n * ln2_lo, s = 1.0;
  for (int k = 17; k >= 1; k--) s = 1.0 + s * r / k;
  return ldexp(s, (int)n);
}

/* log: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(f), f = (m-1)/(m+1), |f| < 0.172,
   by its series to f^41 */
double MapFixedLog(double x)
{
  const double ln2 = 6.93147180559945286227e-01;
  if (x != x || x < 0) return NAN;
  if (x == 0) return -INFINITY;
  if (isinf(x)) return x;
  int    e;
  double m = frexp(x, &e); /* exact: [0.5, 1) */
  if (m < 0.70710678118654752440) {
    m *= 2;
    e--;
  }
  double f = (m - 1) / (m + 1), f2 = f * f, s = 0;
  for (int k = 41; k >= 1; k -= 2) s = 1.0 / k + f2 * s;
  return e * ln2 + 2 * f * s;
}

static char map_blas_pinned[160] = "not pinned (MapInitializePackage not called)";

void MapPinBLASThreads(void)
{
  /* looked up at run time: whichever BLAS the Debian alternative (or LD_LIBRARY_PATH) loaded */
  void (*openblas)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
  void (*blis)(long)    = (void (*)(long))dlsym(RTLD_DEFAULT, "bli_thread_set_num_threads");
  void (*mkl)(int)      = (void (*)(int))dlsym(RTLD_DEFAULT, "MKL_Set_Num_Threads");
  if (openblas) openblas(1);
  if (blis) blis(1);
  if (mkl) mkl(1);
  snprintf(map_blas_pinned, sizeof(map_blas_pinned), "1 thread (set at start: %s%s%s%s)", openblas ? "openblas_set_num_threads(1) " : "",
           blis ? "bli_thread_set_num_threads(1) " : "", mkl ? "MKL_Set_Num_Threads(1) " : "",
           openblas || blis || mkl ? "" : "no threaded BLAS found");
}

const char *MapBLASThreadsPinned(void) { return map_blas_pinned; }
