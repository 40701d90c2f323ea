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

/* the portable path: fmaf is correctly rounded, as _mm256_fmadd_ps is lane by lane */
static void Gemm_Generic(int64_t L, int64_t K, int64_t n, const float *X, int64_t ldx, const float *W, const float *b, float *Y, int64_t ldy)
{
  for (int64_t t = 0; t < L; t++)
    for (int64_t j = 0; j < n; j++) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; k++) acc = fmaf(X[t * ldx + k], W[k * n + j], acc);
      Y[t * ldy + j] = b ? acc + b[j] : acc;
    }
}

/* 4 tokens x 16 columns in registers; tails of 8 columns, then single columns (fmaf compiles to
   the scalar FMA instruction here) */
__attribute__((target("avx2,fma"))) static void Gemm_AVX2(int64_t L, int64_t K, int64_t n, const float *X, int64_t ldx, const float *W,
                                                          const float *b, float *Y, int64_t ldy)
{
  int64_t t = 0;
  for (; t + 4 <= L; t += 4) {
    const float *x0 = X + t * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
    float       *y0 = Y + t * ldy, *y1 = y0 + ldy, *y2 = y1 + ldy, *y3 = y2 + ldy;
    int64_t      j = 0;
    for (; j + 16 <= n; j += 16) {
      __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
      for (int64_t k = 0; k < K; k++) {
        const __m256 w0 = _mm256_loadu_ps(W + k * n + j), w1 = _mm256_loadu_ps(W + k * n + j + 8);
        __m256       s  = _mm256_broadcast_ss(x0 + k);
        a00 = _mm256_fmadd_ps(s, w0, a00), a01 = _mm256_fmadd_ps(s, w1, a01);
        s   = _mm256_broadcast_ss(x1 + k);
        a10 = _mm256_fmadd_ps(s, w0, a10), a11 = _mm256_fmadd_ps(s, w1, a11);
        s   = _mm256_broadcast_ss(x2 + k);
        a20 = _mm256_fmadd_ps(s, w0, a20), a21 = _mm256_fmadd_ps(s, w1, a21);
        s   = _mm256_broadcast_ss(x3 + k);
        a30 = _mm256_fmadd_ps(s, w0, a30), a31 = _mm256_fmadd_ps(s, w1, a31);
      }
      if (b) {
        const __m256 b0 = _mm256_loadu_ps(b + j), b1 = _mm256_loadu_ps(b + j + 8);
        a00 = _mm256_add_ps(a00, b0), a01 = _mm256_add_ps(a01, b1), a10 = _mm256_add_ps(a10, b0), a11 = _mm256_add_ps(a11, b1);
        a20 = _mm256_add_ps(a20, b0), a21 = _mm256_add_ps(a21, b1), a30 = _mm256_add_ps(a30, b0), a31 = _mm256_add_ps(a31, b1);
      }
      _mm256_storeu_ps(y0 + j, a00), _mm256_storeu_ps(y0 + j + 8, a01), _mm256_storeu_ps(y1 + j, a10), _mm256_storeu_ps(y1 + j + 8, a11);
      _mm256_storeu_ps(y2 + j, a20), _mm256_storeu_ps(y2 + j + 8, a21), _mm256_storeu_ps(y3 + j, a30), _mm256_storeu_ps(y3 + j + 8, a31);
    }
    for (; j + 8 <= n; j += 8) {
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int64_t k = 0; k < K; k++) {
        const __m256 w = _mm256_loadu_ps(W + k * n + j);
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(x0 + k), w, a0), a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(x1 + k), w, a1);
        a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(x2 + k), w, a2), a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(x3 + k), w, a3);
      }
      if (b) {
        const __m256 bb = _mm256_loadu_ps(b + j);
        a0 = _mm256_add_ps(a0, bb), a1 = _mm256_add_ps(a1, bb), a2 = _mm256_add_ps(a2, bb), a3 = _mm256_add_ps(a3, bb);
      }
      _mm256_storeu_ps(y0 + j, a0), _mm256_storeu_ps(y1 + j, a1), _mm256_storeu_ps(y2 + j, a2), _mm256_storeu_ps(y3 + j, a3);
    }
    for (; j < n; j++) {
      float c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f;
      for (int64_t k = 0; k < K; k++) {
        const float w = W[k * n + j];
        c0 = fmaf(x0[k], w, c0), c1 = fmaf(x1[k], w, c1), c2 = fmaf(x2[k], w, c2), c3 = fmaf(x3[k], w, c3);
      }
      if (b) c0 += b[j], c1 += b[j], c2 += b[j], c3 += b[j];
      y0[j] = c0, y1[j] = c1, y2[j] = c2, y3[j] = c3;
    }
  }
  for (; t < L; t++) {
    const float *x = X + t * ldx;
    float       *y = Y + t * ldy;
    int64_t      j = 0;
    for (; j + 8 <= n; j += 8) {
      __m256 a = _mm256_setzero_ps();
      for (int64_t k = 0; k < K; k++) a = _mm256_fmadd_ps(_mm256_broadcast_ss(x + k), _mm256_loadu_ps(W + k * n + j), a);
      if (b) a = _mm256_add_ps(a, _mm256_loadu_ps(b + j));
      _mm256_storeu_ps(y + j, a);
    }
    for (; j < n; j++) {
      float c = 0.0f;
      for (int64_t k = 0; k < K; k++) c = fmaf(x[k], W[k * n + j], c);
      y[j] = b ? c + b[j] : c;
    }
  }
}

void MapLMGemm(int64_t L, int64_t K, int64_t n, const float *X, int64_t ldx, const float *W, const float *b, float *Y, int64_t ldy)
{
  static int have = -1;
  if (have < 0) have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
  if (n <= 0 || L <= 0) return;
  if (have && !force_generic) Gemm_AVX2(L, K, n, X, ldx, W, b, Y, ldy);
  else Gemm_Generic(L, K, n, X, ldx, W, b, Y, ldy);
}

void MapLMLayerNorm(int64_t L, int64_t E, const float *x, const float *w, const float *b, double eps, float *y)
{
  for (int64_t t = 0; t < L; t++) {
    const float *xt = x + t * E;
    double       mean = 0, var = 0;
    for (int64_t i = 0; i < E; i++) mean += xt[i];
    mean /= (double)E;
    for (int64_t i = 0; i < E; i++) var += (xt[i] - mean) * (xt[i] - mean);
    const double r = 1.0 / sqrt(var / (double)E + eps);
    for (int64_t i = 0; i < E; i++) y[t * E + i] = (float)((xt[i] - mean) * r * w[i] + b[i]);
  }
}

void MapLMRMSNorm(int64_t L, int64_t E, const float *x, const float *w, double eps, float *y)
{
  for (int64_t t = 0; t < L; t++) {
    const float *xt = x + t * E;
    double       ms = 0;
    for (int64_t i = 0; i < E; i++) ms += (double)xt[i] * xt[i];
    const double r = 1.0 / sqrt(ms / (double)E + eps);
    for (int64_t i = 0; i < E; i++) y[t * E + i] = (float)(w[i] * (xt[i] * r));
  }
}

void MapLMGelu(int64_t n, float *x, PetscBool erf_form)
{
  const double c = sqrt(2.0 / M_PI);
  for (int64_t i = 0; i < n; i++) {
    const double v = x[i];
    /* tanh(y) = 1 - 2 / (exp(2y) + 1): exp is several times faster than tanh, and exact enough in
       double for a float result (exp overflowing to Inf gives tanh = 1) */
    x[i] = (float)(erf_form ? 0.5 * v * (1.0 + erf(v / M_SQRT2)) : 0.5 * v * (2.0 - 2.0 / (exp(2.0 * c * (v + 0.044715 * v * v * v)) + 1.0)));
  }
}

void MapLMSwiGLU(int64_t n, const float *g, const float *u, float *y)
{
  for (int64_t i = 0; i < n; i++) y[i] = (float)((double)g[i] / (1.0 + exp(-(double)g[i])) * u[i]);
}

/* per head: S = Q K^T and O = P V by the matrix kernel (each element one FMA chain: the same bits on
   every rank that computes the head), the causal softmax in double per row */
void MapLMAttention(int64_t L, int64_t D, int64_t H, int64_t Hkv, int64_t h0, int64_t h1, const float *qkv, int64_t ldq, int64_t qoff,
                    int64_t koff, int64_t voff, float *out, float *scratch)
{
  const double  scale = 1.0 / sqrt((double)D);
  const int64_t nloc  = (h1 - h0) * D;
  float        *Kt = scratch, *Vc = Kt + L * D, *S = Vc + L * D;
  for (int64_t h = h0; h < h1; h++) {
    const int64_t kvh = h / (H / Hkv);
    for (int64_t u = 0; u < L; u++)
      for (int64_t i = 0; i < D; i++) {
        Kt[i * L + u] = qkv[u * ldq + koff + kvh * D + i];
        Vc[u * D + i] = qkv[u * ldq + voff + kvh * D + i];
      }
    MapLMGemm(L, D, L, qkv + qoff + h * D, ldq, Kt, NULL, S, L);
    for (int64_t t = 0; t < L; t++) {
      float *st = S + t * L;
      double m  = -INFINITY, sum = 0;
      for (int64_t u = 0; u <= t; u++) m = PetscMax(m, st[u] * scale);
      for (int64_t u = 0; u <= t; u++) sum += exp(st[u] * scale - m);
      for (int64_t u = 0; u <= t; u++) st[u] = (float)(exp(st[u] * scale - m) / sum);
      for (int64_t u = t + 1; u < L; u++) st[u] = 0.0f; /* masked: adds exact zeros below */
    }
    MapLMGemm(L, L, D, S, L, Vc, NULL, out + (h - h0) * D, nloc);
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
