/* eval_lm_kernel: the lm evaluator's compute kernels. Every output element of the matrix kernel is
   one chain of fused multiply-adds in k order, computed by exactly one rank, so splitting the
   columns over any number of ranks (or taking the AVX2 or the portable path) gives the same bits.
   Norms, activations, RoPE and attention work on one token or one head at a time, in double, in a
   fixed order: they do not depend on the rank count either. */
#include "evallmimpl.h"
#include <math.h>
#include <immintrin.h>

static PetscBool force_generic = PETSC_FALSE;

void MapLMForceGeneric(PetscBool flg) { force_generic = flg; }

static PetscBool UseAVX2(void)
{
  static int have = -1;
  if (have < 0) have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
  return have && !force_generic ? PETSC_TRUE : PETSC_FALSE;
}

/* exp in float: Cody-Waite reduction x = n ln2 + r, a degree-7 polynomial for e^r (Cephes' expf
   coefficients, ~1 ulp), times 2^n. ExpF and ExpF8 perform the same correctly rounded operations
   (fmaf = vfmadd, rintf = round-to-nearest-even), so a value has the same bits on either path and
   in any lane. Below -87 the result is 0; above 88 it is clamped (e^88 ~ 1.7e38); NaN stays NaN. */
#define EXP_LOG2E 1.44269504088896341f
#define EXP_C1    0.693359375f
#define EXP_C2    -2.12194440e-4f
static const float exp_p[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

static inline float ExpF(float x)
{
  if (x != x) return x;
  if (x < -87.0f) return 0.0f;
  if (x > 88.0f) x = 88.0f;
  const float n = rintf(x * EXP_LOG2E);
  float       r = fmaf(n, -EXP_C1, x), p = exp_p[0];
  r = fmaf(n, -EXP_C2, r);
  for (int i = 1; i < 6; i++) p = fmaf(p, r, exp_p[i]);
  const float z = r * r;
  float       y = fmaf(p, z, r);
  y             = y + 1.0f;
  union {
    int32_t i;
    float   f;
  } e;
  e.i = ((int32_t)n + 127) << 23;
  return y * e.f;
}

__attribute__((target("avx2,fma"))) static inline __m256 ExpF8(__m256 x)
{
  const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
  x                  = _mm256_min_ps(_mm256_set1_ps(88.0f), x); /* min(a, NaN) = NaN */
  const __m256 n     = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256       r = _mm256_fmadd_ps(n, _mm256_set1_ps(-EXP_C1), x), p = _mm256_set1_ps(exp_p[0]);
  r = _mm256_fmadd_ps(n, _mm256_set1_ps(-EXP_C2), r);
  for (int i = 1; i < 6; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(exp_p[i]));
  const __m256 z  = _mm256_mul_ps(r, r);
  __m256       y  = _mm256_fmadd_ps(p, z, r);
  y               = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  y               = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  return _mm256_andnot_ps(under, y);
}

__attribute__((target("avx2,fma"))) static void Exp_AVX2(int64_t n, const float *x, float shift, float *y)
{
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, ExpF8(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(shift))));
  for (; i < n; i++) y[i] = ExpF(x[i] - shift);
}

void MapLMExp(int64_t n, const float *x, float shift, float *y)
{
  if (UseAVX2()) Exp_AVX2(n, x, shift, y);
  else
    for (int64_t i = 0; i < n; i++) y[i] = ExpF(x[i] - shift);
}

/* the first index of the largest non-NaN value (-1 if none exceeds -Inf), and whether a NaN occurs:
   what the scalar scan "if (z[j] > mx) mx = z[j], arg = j" gives */
__attribute__((target("avx2,fma"))) static float Max_AVX2(int64_t n, const float *z, int *nan)
{
  __m256  acc = _mm256_set1_ps(-INFINITY), bad = _mm256_setzero_ps();
  int64_t j = 0;
  float   mx, lane[8];
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_loadu_ps(z + j);
    bad            = _mm256_or_ps(bad, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    acc            = _mm256_max_ps(v, acc); /* acc where v is NaN */
  }
  _mm256_storeu_ps(lane, acc);
  mx   = lane[0];
  *nan = _mm256_movemask_ps(bad) != 0;
  for (int i = 1; i < 8; i++) mx = lane[i] > mx ? lane[i] : mx;
  for (; j < n; j++) {
    if (isnan(z[j])) *nan = 1;
    else if (z[j] > mx) mx = z[j];
  }
  return mx;
}

void MapLMArgMax(int64_t n, const float *z, float *mx, int64_t *arg, int *nan)
{
  float m = -INFINITY;
  *nan = 0, *arg = -1;
  if (UseAVX2()) m = Max_AVX2(n, z, nan);
  else
    for (int64_t j = 0; j < n; j++) {
      if (isnan(z[j])) *nan = 1;
      else if (z[j] > m) m = z[j];
    }
  if (m > -INFINITY)
    for (int64_t j = 0; j < n; j++)
      if (z[j] == m) {
        *arg = j, m = z[j]; /* the first one's sign of zero */
        break;
      }
  *mx = m;
}

/* GELU, tanh form in float: 0.5 v (1 + tanh(y)) = v e / (e + 1) with e = e^2y, which does not
   cancel for negative v as 1 + tanh(y) does */
#define GELU_C 0.7978845608028654f /* sqrt(2 / pi) */
static inline float GeluF(float v)
{
  const float u = 2.0f * GELU_C * (v + 0.044715f * v * v * v), e = ExpF(u);
  return v * (e / (e + 1.0f));
}

__attribute__((target("avx2,fma"))) static void Gelu_AVX2(int64_t n, float *x)
{
  const __m256 c2 = _mm256_set1_ps(2.0f * GELU_C), a = _mm256_set1_ps(0.044715f), one = _mm256_set1_ps(1.0f);
  int64_t      i = 0;
  for (; i + 8 <= n; i += 8) { /* the operations of GeluF, in its order */
    const __m256 v  = _mm256_loadu_ps(x + i);
    const __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(a, v), v), v);
    const __m256 e  = ExpF8(_mm256_mul_ps(c2, _mm256_add_ps(v, v3)));
    _mm256_storeu_ps(x + i, _mm256_mul_ps(v, _mm256_div_ps(e, _mm256_add_ps(e, one))));
  }
  for (; i < n; i++) x[i] = GeluF(x[i]);
}

/* silu(g) u = g / (1 + e^-g) u in float */
__attribute__((target("avx2,fma"))) static void SwiGLU_AVX2(int64_t n, const float *g, const float *u, float *y)
{
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t      i   = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gv = _mm256_loadu_ps(g + i);
    const __m256 e  = ExpF8(_mm256_sub_ps(_mm256_setzero_ps(), gv));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
  }
  for (; i < n; i++) y[i] = g[i] / (1.0f + ExpF(0.0f - g[i])) * u[i];
}

/* the portable path: fmaf is correctly rounded, as _mm256_fmadd_ps is lane by lane */
static void Gemm_Generic(int64_t L, int64_t K, int64_t n, const float *X, int64_t ldx, const float *W, int64_t ldw, const float *b, float *Y, int64_t ldy)
{
  for (int64_t t = 0; t < L; t++)
    for (int64_t j = 0; j < n; j++) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; k++) acc = fmaf(X[t * ldx + k], W[k * ldw + j], acc);
      Y[t * ldy + j] = b ? acc + b[j] : acc;
    }
}

/* One block of MR <= 6 tokens x (NV = 1 or 2) x 8 columns in registers: 2 loads of W and MR
   broadcasts feed 2 MR FMAs per k. MASKED: the last vector of the block holds only the columns of
   mask m (the matrix edge; masked lanes load zeros and are not stored). Every element is one FMA
   chain in k order from 0, then + b: the bits do not depend on MR, NV or the mask. always_inline
   with constant MR, NV, MASKED: each variant compiles to straight-line register code. */
__attribute__((always_inline, target("avx2,fma"))) static inline void Block(const int MR, const int NV, const int MASKED, __m256i m, int64_t K,
                                                                            const float *X, int64_t ldx, const float *W, int64_t ldw,
                                                                            const float *b, float *Y, int64_t ldy)
{
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k++, W += ldw) {
    __m256 w0, w1 = _mm256_setzero_ps();
    if (NV == 1) w0 = MASKED ? _mm256_maskload_ps(W, m) : _mm256_loadu_ps(W);
    else w0 = _mm256_loadu_ps(W), w1 = MASKED ? _mm256_maskload_ps(W + 8, m) : _mm256_loadu_ps(W + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      const __m256 s = _mm256_broadcast_ss(X + i * ldx + k);
      acc[i][0]      = _mm256_fmadd_ps(s, w0, acc[i][0]);
      if (NV == 2) acc[i][1] = _mm256_fmadd_ps(s, w1, acc[i][1]);
    }
  }
  if (b) {
    __m256 b0, b1 = _mm256_setzero_ps();
    if (NV == 1) b0 = MASKED ? _mm256_maskload_ps(b, m) : _mm256_loadu_ps(b);
    else b0 = _mm256_loadu_ps(b), b1 = MASKED ? _mm256_maskload_ps(b + 8, m) : _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      acc[i][0] = _mm256_add_ps(acc[i][0], b0);
      if (NV == 2) acc[i][1] = _mm256_add_ps(acc[i][1], b1);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) {
    float *y = Y + i * ldy;
    if (NV == 1) {
      if (MASKED) _mm256_maskstore_ps(y, m, acc[i][0]);
      else _mm256_storeu_ps(y, acc[i][0]);
    } else {
      _mm256_storeu_ps(y, acc[i][0]);
      if (MASKED) _mm256_maskstore_ps(y + 8, m, acc[i][1]);
      else _mm256_storeu_ps(y + 8, acc[i][1]);
    }
  }
}

#define LM_BLOCK_VARIANTS(MR) \
  do { \
    if (nv == 1 && !msk) Block(MR, 1, 0, m, K, x, ldx, w, ldw, bj, y, ldy); \
    else if (nv == 1) Block(MR, 1, 1, m, K, x, ldx, w, ldw, bj, y, ldy); \
    else if (!msk) Block(MR, 2, 0, m, K, x, ldx, w, ldw, bj, y, ldy); \
    else Block(MR, 2, 1, m, K, x, ldx, w, ldw, bj, y, ldy); \
  } while (0)

/* Column panels of 16 outermost (the panel's K x 16 floats stay in cache while every block of 6
   tokens passes), the last panel and the last L % 6 tokens by the narrower variants of Block. */
__attribute__((target("avx2,fma"))) static void Gemm_AVX2(int64_t L, int64_t K, int64_t n, const float *X, int64_t ldx, const float *W,
                                                          int64_t ldw, const float *b, float *Y, int64_t ldy)
{
  for (int64_t j = 0; j < n; j += 16) {
    const int64_t c = PetscMin((int64_t)16, n - j), last = c > 8 ? c - 8 : c;
    const int     nv = c > 8 ? 2 : 1, msk = last < 8;
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)last), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const float  *w = W + j, *bj = b ? b + j : NULL;
    int64_t       t = 0;
    for (; t + 6 <= L; t += 6) {
      const float *x = X + t * ldx;
      float       *y = Y + t * ldy + j;
      LM_BLOCK_VARIANTS(6);
    }
    const float *x = X + t * ldx;
    float       *y = Y + t * ldy + j;
    switch (L - t) {
    case 5:
      LM_BLOCK_VARIANTS(5);
      break;
    case 4:
      LM_BLOCK_VARIANTS(4);
      break;
    case 3:
      LM_BLOCK_VARIANTS(3);
      break;
    case 2:
      LM_BLOCK_VARIANTS(2);
      break;
    case 1:
      LM_BLOCK_VARIANTS(1);
      break;
    default:
      break;
    }
  }
}

/* The AVX-512 variant of Block (CPUs with full-width 512-bit FMA units do twice the work per
   instruction): MR <= 8 tokens x (NV = 1 or 2) x 16 columns, the same chains, hence the same bits. */
__attribute__((always_inline, target("avx512f"))) static inline void Block512(const int MR, const int NV, const int MASKED, __mmask16 m, int64_t K,
                                                                              const float *X, int64_t ldx, const float *W, int64_t ldw,
                                                                              const float *b, float *Y, int64_t ldy)
{
  __m512 acc[8][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k++, W += ldw) {
    __m512 w0, w1 = _mm512_setzero_ps();
    if (NV == 1) w0 = MASKED ? _mm512_maskz_loadu_ps(m, W) : _mm512_loadu_ps(W);
    else w0 = _mm512_loadu_ps(W), w1 = MASKED ? _mm512_maskz_loadu_ps(m, W + 16) : _mm512_loadu_ps(W + 16);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      const __m512 s = _mm512_set1_ps(X[i * ldx + k]);
      acc[i][0]      = _mm512_fmadd_ps(s, w0, acc[i][0]);
      if (NV == 2) acc[i][1] = _mm512_fmadd_ps(s, w1, acc[i][1]);
    }
  }
  if (b) {
    __m512 b0, b1 = _mm512_setzero_ps();
    if (NV == 1) b0 = MASKED ? _mm512_maskz_loadu_ps(m, b) : _mm512_loadu_ps(b);
    else b0 = _mm512_loadu_ps(b), b1 = MASKED ? _mm512_maskz_loadu_ps(m, b + 16) : _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      acc[i][0] = _mm512_add_ps(acc[i][0], b0);
      if (NV == 2) acc[i][1] = _mm512_add_ps(acc[i][1], b1);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++) {
    float *y = Y + i * ldy;
    if (NV == 1) {
      if (MASKED) _mm512_mask_storeu_ps(y, m, acc[i][0]);
      else _mm512_storeu_ps(y, acc[i][0]);
    } else {
      _mm512_storeu_ps(y, acc[i][0]);
      if (MASKED) _mm512_mask_storeu_ps(y + 16, m, acc[i][1]);
      else _mm512_storeu_ps(y + 16, acc[i][1]);
    }
  }
}

#define LM_BLOCK512_VARIANTS(MR) \
  do { \
    if (nv == 1 && !msk) Block512(MR, 1, 0, m, K, x, ldx, w, ldw, bj, y, ldy); \
    else if (nv == 1) Block512(MR, 1, 1, m, K, x, ldx, w, ldw, bj, y, ldy); \
    else if (!msk) Block512(MR, 2, 0, m, K, x, ldx, w, ldw, bj, y, ldy); \
    else Block512(MR, 2, 1, m, K, x, ldx, w, ldw, bj, y, ldy); \
  } while (0)

__attribute__((target("avx512f"))) static void Gemm_AVX512(int64_t L, int64_t K, int64_t n, const float *X, int64_t ldx, const float *W, int64_t ldw,
                                                           const float *b, float *Y, int64_t ldy)
{
  for (int64_t j = 0; j < n; j += 32) {
    const int64_t   c = PetscMin((int64_t)32, n - j), last = c > 16 ? c - 16 : c;
    const int       nv = c > 16 ? 2 : 1, msk = last < 16;
    const __mmask16 m = (__mmask16)((1u << last) - 1u);
    const float    *w = W + j, *bj = b ? b + j : NULL;
    int64_t         t = 0;
    for (; t + 8 <= L; t += 8) {
      const float *x = X + t * ldx;
      float       *y = Y + t * ldy + j;
      LM_BLOCK512_VARIANTS(8);
    }
    const float *x = X + t * ldx;
    float       *y = Y + t * ldy + j;
    switch (L - t) {
    case 7:
      LM_BLOCK512_VARIANTS(7);
      break;
    case 6:
      LM_BLOCK512_VARIANTS(6);
      break;
    case 5:
      LM_BLOCK512_VARIANTS(5);
      break;
    case 4:
      LM_BLOCK512_VARIANTS(4);
      break;
    case 3:
      LM_BLOCK512_VARIANTS(3);
      break;
    case 2:
      LM_BLOCK512_VARIANTS(2);
      break;
    case 1:
      LM_BLOCK512_VARIANTS(1);
      break;
    default:
      break;
    }
  }
}

/* W [K, n] with leading dimension ldw */
static void GemmLd(int64_t L, int64_t K, int64_t n, const float *X, int64_t ldx, const float *W, int64_t ldw, const float *b, float *Y, int64_t ldy)
{
  static int avx512 = -1;
  if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
  if (n <= 0 || L <= 0) return;
  if (avx512 && UseAVX2()) Gemm_AVX512(L, K, n, X, ldx, W, ldw, b, Y, ldy);
  else if (UseAVX2()) Gemm_AVX2(L, K, n, X, ldx, W, ldw, b, Y, ldy);
  else Gemm_Generic(L, K, n, X, ldx, W, ldw, b, Y, ldy);
}

void MapLMGemm(int64_t L, int64_t K, int64_t n, const float *X, int64_t ldx, const float *W, const float *b, float *Y, int64_t ldy)
{
  GemmLd(L, K, n, X, ldx, W, n, b, Y, ldy);
}

/* Norms in double, the sums in 4 interleaved partial sums (lane l takes i = l mod 4 of the first
   E - E % 4 elements) added as (s0 + s1) + (s2 + s3), then the rest in order: the AVX2 path (4
   double lanes) and the portable loop do the same operations. */
static double Sum4(const double *s) { return (s[0] + s[1]) + (s[2] + s[3]); }

__attribute__((target("avx2,fma"))) static void LayerNorm_AVX2(int64_t L, int64_t E, const float *x, const float *w, const float *b, double eps, float *y)
{
  const int64_t E4 = E - E % 4;
  double        s[4];
  for (int64_t t = 0; t < L; t++) {
    const float *xt = x + t * E;
    float       *yt = y + t * E;
    __m256d      a  = _mm256_setzero_pd();
    for (int64_t i = 0; i < E4; i += 4) a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm_loadu_ps(xt + i)));
    _mm256_storeu_pd(s, a);
    double mean = Sum4(s);
    for (int64_t i = E4; i < E; i++) mean += xt[i];
    mean /= (double)E;
    const __m256d mv = _mm256_set1_pd(mean);
    a                = _mm256_setzero_pd();
    for (int64_t i = 0; i < E4; i += 4) {
      const __m256d d = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(xt + i)), mv);
      a               = _mm256_add_pd(a, _mm256_mul_pd(d, d));
    }
    _mm256_storeu_pd(s, a);
    double var = Sum4(s);
    for (int64_t i = E4; i < E; i++) var += (xt[i] - mean) * (xt[i] - mean);
    const double  r  = 1.0 / sqrt(var / (double)E + eps);
    const __m256d rv = _mm256_set1_pd(r);
    for (int64_t i = 0; i < E4; i += 4) {
      const __m256d d = _mm256_mul_pd(_mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(xt + i)), mv), rv), _mm256_cvtps_pd(_mm_loadu_ps(w + i)));
      _mm_storeu_ps(yt + i, _mm256_cvtpd_ps(_mm256_add_pd(d, _mm256_cvtps_pd(_mm_loadu_ps(b + i)))));
    }
    for (int64_t i = E4; i < E; i++) yt[i] = (float)((xt[i] - mean) * r * w[i] + b[i]);
  }
}

__attribute__((target("avx2,fma"))) static void RMSNorm_AVX2(int64_t L, int64_t E, const float *x, const float *w, double eps, float *y)
{
  const int64_t E4 = E - E % 4;
  double        s[4];
  for (int64_t t = 0; t < L; t++) {
    const float *xt = x + t * E;
    float       *yt = y + t * E;
    __m256d      a  = _mm256_setzero_pd();
    for (int64_t i = 0; i < E4; i += 4) {
      const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(xt + i));
      a               = _mm256_add_pd(a, _mm256_mul_pd(v, v));
    }
    _mm256_storeu_pd(s, a);
    double ms = Sum4(s);
    for (int64_t i = E4; i < E; i++) ms += (double)xt[i] * xt[i];
    const double  r  = 1.0 / sqrt(ms / (double)E + eps);
    const __m256d rv = _mm256_set1_pd(r);
    for (int64_t i = 0; i < E4; i += 4)
      _mm_storeu_ps(yt + i, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(w + i)), _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(xt + i)), rv))));
    for (int64_t i = E4; i < E; i++) yt[i] = (float)(w[i] * (xt[i] * r));
  }
}

void MapLMLayerNorm(int64_t L, int64_t E, const float *x, const float *w, const float *b, double eps, float *y)
{
  const int64_t E4 = E - E % 4;
  if (UseAVX2()) {
    LayerNorm_AVX2(L, E, x, w, b, eps, y);
    return;
  }
  for (int64_t t = 0; t < L; t++) {
    const float *xt   = x + t * E;
    double       s[4] = {0, 0, 0, 0}, mean, var;
    for (int64_t i = 0; i < E4; i++) s[i % 4] += xt[i];
    mean = Sum4(s);
    for (int64_t i = E4; i < E; i++) mean += xt[i];
    mean /= (double)E;
    s[0] = s[1] = s[2] = s[3] = 0;
    for (int64_t i = 0; i < E4; i++) s[i % 4] += (xt[i] - mean) * (xt[i] - mean);
    var = Sum4(s);
    for (int64_t i = E4; i < E; i++) var += (xt[i] - mean) * (xt[i] - mean);
    const double r = 1.0 / sqrt(var / (double)E + eps);
    for (int64_t i = 0; i < E; i++) y[t * E + i] = (float)((xt[i] - mean) * r * w[i] + b[i]);
  }
}

void MapLMRMSNorm(int64_t L, int64_t E, const float *x, const float *w, double eps, float *y)
{
  const int64_t E4 = E - E % 4;
  if (UseAVX2()) {
    RMSNorm_AVX2(L, E, x, w, eps, y);
    return;
  }
  for (int64_t t = 0; t < L; t++) {
    const float *xt   = x + t * E;
    double       s[4] = {0, 0, 0, 0}, ms;
    for (int64_t i = 0; i < E4; i++) s[i % 4] += (double)xt[i] * xt[i];
    ms = Sum4(s);
    for (int64_t i = E4; i < E; i++) ms += (double)xt[i] * xt[i];
    const double r = 1.0 / sqrt(ms / (double)E + eps);
    for (int64_t i = 0; i < E; i++) y[t * E + i] = (float)(w[i] * (xt[i] * r));
  }
}

void MapLMGelu(int64_t n, float *x, PetscBool erf_form)
{
  if (erf_form)
    for (int64_t i = 0; i < n; i++) x[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] / M_SQRT2)));
  else if (UseAVX2()) Gelu_AVX2(n, x);
  else
    for (int64_t i = 0; i < n; i++) x[i] = GeluF(x[i]);
}

void MapLMSwiGLU(int64_t n, const float *g, const float *u, float *y)
{
  if (UseAVX2()) SwiGLU_AVX2(n, g, u, y);
  else
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + ExpF(0.0f - g[i])) * u[i];
}

/* st[0..n) = softmax(scale st): the max (exact in any order; NaN ignored as by PetscMax), exp in
   float, the sum in double in 4 interleaved partial sums as the norms, the division in double */
__attribute__((target("avx2,fma"))) static void Softmax_AVX2(int64_t n, float *st, float scale)
{
  const int64_t n8 = n - n % 8, n4 = n - n % 4;
  __m256        mv = _mm256_set1_ps(-INFINITY);
  float         lane[8], m;
  double        s[4];
  for (int64_t u = 0; u < n8; u += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(st + u), _mm256_set1_ps(scale));
    _mm256_storeu_ps(st + u, v);
    mv = _mm256_max_ps(v, mv);
  }
  _mm256_storeu_ps(lane, mv);
  m = lane[0];
  for (int i = 1; i < 8; i++) m = PetscMax(m, lane[i]);
  for (int64_t u = n8; u < n; u++) st[u] *= scale, m = PetscMax(m, st[u]);
  Exp_AVX2(n, st, m, st);
  __m256d a = _mm256_setzero_pd();
  for (int64_t u = 0; u < n4; u += 4) a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm_loadu_ps(st + u)));
  _mm256_storeu_pd(s, a);
  double sum = Sum4(s);
  for (int64_t u = n4; u < n; u++) sum += st[u];
  const __m256d sv = _mm256_set1_pd(sum);
  for (int64_t u = 0; u < n4; u += 4) _mm_storeu_ps(st + u, _mm256_cvtpd_ps(_mm256_div_pd(_mm256_cvtps_pd(_mm_loadu_ps(st + u)), sv)));
  for (int64_t u = n4; u < n; u++) st[u] = (float)(st[u] / sum);
}

static void SoftmaxRow(int64_t n, float *st, float scale)
{
  const int64_t n4   = n - n % 4;
  float         m    = -INFINITY;
  double        s[4] = {0, 0, 0, 0}, sum;
  if (UseAVX2()) {
    Softmax_AVX2(n, st, scale);
    return;
  }
  for (int64_t u = 0; u < n; u++) st[u] *= scale, m = PetscMax(m, st[u]);
  for (int64_t u = 0; u < n; u++) st[u] = ExpF(st[u] - m);
  for (int64_t u = 0; u < n4; u++) s[u % 4] += st[u];
  sum = Sum4(s);
  for (int64_t u = n4; u < n; u++) sum += st[u];
  for (int64_t u = 0; u < n; u++) st[u] = (float)(st[u] / sum);
}

/* per head: S = Q K^T and O = P V by the matrix kernel (each element one FMA chain: the same bits on
   every rank that computes the head), the causal softmax in double per row */
void MapLMAttention(int64_t L, int64_t D, int64_t H, int64_t Hkv, int64_t h0, int64_t h1, const float *qkv, int64_t ldq, int64_t qoff,
                    int64_t koff, int64_t voff, float *out, float *scratch)
{
  const float   scale = (float)(1.0 / sqrt((double)D));
  const int64_t nloc  = (h1 - h0) * D;
  float        *Kt = scratch, *Vc = Kt + L * D, *S = Vc + L * D;
  for (int64_t h = h0; h < h1; h++) {
    const int64_t kvh = h / (H / Hkv);
    for (int64_t u = 0; u < L; u++)
      for (int64_t i = 0; i < D; i++) {
        Kt[i * L + u] = qkv[u * ldq + koff + kvh * D + i];
        Vc[u * D + i] = qkv[u * ldq + voff + kvh * D + i];
      }
    /* causal: a block of 6 query rows (the kernel's block) needs keys u < t0 + 6 only; the fixed
       blocking keeps the bits independent of everything but L */
    for (int64_t t0 = 0; t0 < L; t0 += 6) {
      const int64_t nr = PetscMin((int64_t)6, L - t0), nu = t0 + nr;
      GemmLd(nr, D, nu, qkv + t0 * ldq + qoff + h * D, ldq, Kt, L, NULL, S + t0 * L, L);
    }
    for (int64_t t = 0; t < L; t++) {
      float *st = S + t * L;
      SoftmaxRow(t + 1, st, scale);
      for (int64_t u = t + 1; u < PetscMin(L, (t / 6 + 1) * 6); u++) st[u] = 0.0f; /* masked keys of the block: exact zeros below */
    }
    for (int64_t t0 = 0; t0 < L; t0 += 6) { /* P V over the keys u < t0 + 6 (P is 0 beyond t) */
      const int64_t nr = PetscMin((int64_t)6, L - t0), nu = t0 + nr;
      MapLMGemm(nr, nu, D, S + t0 * L, L, Vc, NULL, out + t0 * nloc + (h - h0) * D, nloc);
    }
  }
}

void MapLMRope(int64_t L, int64_t D, int64_t nh, float *x, int64_t ld, int64_t off, const double *cs)
{
  const int64_t half = D / 2;
  for (int64_t t = 0; t < L; t++)
    for (int64_t h = 0; h < nh; h++) {
      float        *v = x + t * ld + off + h * D;
      const double *c = cs + t * D; /* cos[half], sin[half] of position t */
      for (int64_t i = 0; i < half; i++) {
        const double a = v[i], b = v[i + half];
        v[i]        = (float)(a * c[i] - b * c[half + i]);
        v[i + half] = (float)(b * c[i] + a * c[half + i]);
      }
    }
}
