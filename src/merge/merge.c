/* merge: the merge kernel theta = pre + sum_i c_i tau_i (docs/design.md §3).
 *
 * Bit-reproducibility contract: for every element j the result is
 *   acc = pre[j]; for i = 0..T-1: acc = acc + (float)c[i] * tau[i][j]
 * with each multiply and each add rounded to F32 separately (the build uses -ffp-contract=off,
 * and no FMA is used). Vector lanes compute exactly this sequence for their element, so the
 * vectorised kernel, the reference loop and any sharding of j give the same bits.
 *
 * Speed: the kernel is memory-bound ((T+1) reads and 1 write per element, 2T flops). It keeps the
 * accumulators in registers over the whole task loop, so every input byte is read once and theta
 * is written once; an AVX2 build of the same code is chosen at run time when the CPU has it. */
#include "mergeimpl.h"

typedef float    map_v8f __attribute__((vector_size(32)));
typedef uint32_t map_v8u __attribute__((vector_size(32)));
typedef uint16_t map_v8h __attribute__((vector_size(16)));

/* These helpers are always inlined, so no vector ever crosses a call: the ABI note GCC gives for
   32-byte vectors in a non-AVX build does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

/* Unaligned vector loads/stores: memcpy compiles to a single vmovups/movups. */
static inline __attribute__((always_inline)) map_v8f LoadF32(const float *p)
{
  map_v8f v;
  memcpy(&v, p, sizeof(v));
  return v;
}

/* bfloat16 is the upper half of an F32: widening is exact, (u32)b << 16. */
static inline __attribute__((always_inline)) map_v8f LoadBF16(const uint16_t *p)
{
  map_v8h h;
  memcpy(&h, p, sizeof(h));
  map_v8u u = __builtin_convertvector(h, map_v8u) << 16;
  map_v8f v;
  memcpy(&v, &u, sizeof(v));
  return v;
}

/* IEEE half without F16C: the tested scalar widening (exact), lane by lane. */
static inline __attribute__((always_inline)) map_v8f LoadF16(const uint16_t *p)
{
  map_v8f v;
  for (int k = 0; k < 8; k++) v[k] = MapF16ToF32(p[k]);
  return v;
}

#define StoreF32(p, v) memcpy((p), &(v), sizeof(map_v8f))

static inline float WidenBF16(uint16_t b)
{
  uint32_t u = (uint32_t)b << 16;
  float    f;
  memcpy(&f, &u, sizeof(f));
  return f;
}

/* One pass: theta[j] = base[j] + sum_{i<T} cf[i] * tau[i*ld + j], for j < n, where the base is
   baseb (storage type), else basef (F32, e.g. theta itself from an earlier pass), else 0.
   One body for all storage types and both instruction sets; UNROLL vectors of 8 per step keep
   enough independent adds in flight to hide the add latency behind the loads. */
#define MAP_MERGE_UNROLL 4
#define MAP_MERGE_BODY(TYPE, LOADV, LOADS) \
  do { \
    int64_t j = 0; \
    for (; j + 8 * MAP_MERGE_UNROLL <= n; j += 8 * MAP_MERGE_UNROLL) { \
      map_v8f a0, a1, a2, a3; \
      if (baseb) { \
        a0 = LOADV(baseb + j); \
        a1 = LOADV(baseb + j + 8); \
        a2 = LOADV(baseb + j + 16); \
        a3 = LOADV(baseb + j + 24); \
      } else if (basef) { \
        a0 = LoadF32(basef + j); \
        a1 = LoadF32(basef + j + 8); \
        a2 = LoadF32(basef + j + 16); \
        a3 = LoadF32(basef + j + 24); \
      } else { \
        a0 = a1 = a2 = a3 = (map_v8f){0}; \
      } \
      for (int i = 0; i < T; i++) { \
        const TYPE *t  = tau + (int64_t)i * ld + j; \
        const float ci = cf[i]; \
        a0             = a0 + ci * LOADV(t); \
        a1             = a1 + ci * LOADV(t + 8); \
        a2             = a2 + ci * LOADV(t + 16); \
        a3             = a3 + ci * LOADV(t + 24); \
      } \
      StoreF32(theta + j, a0); \
      StoreF32(theta + j + 8, a1); \
      StoreF32(theta + j + 16, a2); \
      StoreF32(theta + j + 24, a3); \
    } \
    for (; j < n; j++) { \
      float acc = baseb ? LOADS(baseb[j]) : basef ? basef[j] \
                                                  : 0.0f; \
      for (int i = 0; i < T; i++) acc = acc + cf[i] * LOADS(tau[(int64_t)i * ld + j]); \
      theta[j] = acc; \
    } \
  } while (0)

#define MAP_IDENT(x) (x)

typedef void (*PassF32Fn)(int64_t, const float *, const float *, int, const float *, int64_t, const float *, float *);
typedef void (*Pass16Fn)(int64_t, const uint16_t *, const float *, int, const uint16_t *, int64_t, const float *, float *);

static void PassF32_Generic(int64_t n, const float *baseb, const float *basef, int T, const float *tau, int64_t ld,
                            const float *cf, float *theta)
{
  MAP_MERGE_BODY(float, LoadF32, MAP_IDENT);
}

static void PassBF16_Generic(int64_t n, const uint16_t *baseb, const float *basef, int T, const uint16_t *tau, int64_t ld,
                             const float *cf, float *theta)
{
  MAP_MERGE_BODY(uint16_t, LoadBF16, WidenBF16);
}

static void PassF16_Generic(int64_t n, const uint16_t *baseb, const float *basef, int T, const uint16_t *tau, int64_t ld,
                            const float *cf, float *theta)
{
  MAP_MERGE_BODY(uint16_t, LoadF16, MapF16ToF32);
}

#if defined(__x86_64__) && defined(__GNUC__)
  #define MAP_HAVE_AVX2_DISPATCH 1
  #include <immintrin.h>
/* The same source compiled for AVX2 (no FMA: target "avx2" does not enable it, and contraction is
   off anyway), so the bits are those of the generic build. */
__attribute__((target("avx2"))) static void PassF32_AVX2(int64_t n, const float *baseb, const float *basef, int T,
                                                         const float *tau, int64_t ld, const float *cf, float *theta)
{
  MAP_MERGE_BODY(float, LoadF32, MAP_IDENT);
}

/* BF16 with AVX2 intrinsics: interleaving 16 bf16 values with zeros (vpunpck{l,h}wd) widens them
   in one instruction per 8, but in the lane order [0-3, 8-11] and [4-7, 12-15]. Accumulating in
   that order and restoring it once at the store (vperm2f128) keeps the element-wise arithmetic,
   hence the bits, of the generic kernel, at a fraction of its widening cost. */
__attribute__((target("avx2"))) static void PassBF16_AVX2(int64_t n, const uint16_t *baseb, const float *basef, int T,
                                                          const uint16_t *tau, int64_t ld, const float *cf, float *theta)
{
  const __m256i zero = _mm256_setzero_si256();
  int64_t       j    = 0;

  for (; j + 32 <= n; j += 32) {
    __m256 a0, a1, a2, a3; /* a0: [0-3,8-11], a1: [4-7,12-15], a2/a3: the same for elements 16..31 */
    if (baseb) {
      __m256i p0 = _mm256_loadu_si256((const __m256i *)(baseb + j)), p1 = _mm256_loadu_si256((const __m256i *)(baseb + j + 16));
      a0 = _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, p0));
      a1 = _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, p0));
      a2 = _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, p1));
      a3 = _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, p1));
    } else if (basef) { /* the same lane order from F32 */
      __m256 f0 = _mm256_loadu_ps(basef + j), f1 = _mm256_loadu_ps(basef + j + 8);
      __m256 f2 = _mm256_loadu_ps(basef + j + 16), f3 = _mm256_loadu_ps(basef + j + 24);
      a0 = _mm256_permute2f128_ps(f0, f1, 0x20);
      a1 = _mm256_permute2f128_ps(f0, f1, 0x31);
      a2 = _mm256_permute2f128_ps(f2, f3, 0x20);
      a3 = _mm256_permute2f128_ps(f2, f3, 0x31);
    } else {
      a0 = a1 = a2 = a3 = _mm256_setzero_ps();
    }
    for (int i = 0; i < T; i++) {
      const uint16_t *t  = tau + (int64_t)i * ld + j;
      const __m256    ci = _mm256_set1_ps(cf[i]);
      __m256i         x0 = _mm256_loadu_si256((const __m256i *)t), x1 = _mm256_loadu_si256((const __m256i *)(t + 16));
      a0 = _mm256_add_ps(a0, _mm256_mul_ps(ci, _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, x0))));
      a1 = _mm256_add_ps(a1, _mm256_mul_ps(ci, _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, x0))));
      a2 = _mm256_add_ps(a2, _mm256_mul_ps(ci, _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, x1))));
      a3 = _mm256_add_ps(a3, _mm256_mul_ps(ci, _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, x1))));
    }
    _mm256_storeu_ps(theta + j, _mm256_permute2f128_ps(a0, a1, 0x20));
    _mm256_storeu_ps(theta + j + 8, _mm256_permute2f128_ps(a0, a1, 0x31));
    _mm256_storeu_ps(theta + j + 16, _mm256_permute2f128_ps(a2, a3, 0x20));
    _mm256_storeu_ps(theta + j + 24, _mm256_permute2f128_ps(a2, a3, 0x31));
  }
  if (j < n) PassBF16_Generic(n - j, baseb ? baseb + j : NULL, basef ? basef + j : NULL, T, tau ? tau + j : NULL, ld, cf, theta + j);
}

/* IEEE half with F16C: vcvtph2ps widens 8 halves exactly, in element order. */
__attribute__((target("avx2,f16c"))) static inline __attribute__((always_inline)) map_v8f LoadF16_F16C(const uint16_t *p)
{
  return (map_v8f)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

__attribute__((target("avx2,f16c"))) static void PassF16_AVX2(int64_t n, const uint16_t *baseb, const float *basef, int T,
                                                              const uint16_t *tau, int64_t ld, const float *cf, float *theta)
{
  MAP_MERGE_BODY(uint16_t, LoadF16_F16C, MapF16ToF32);
}

static int map_force_generic = 0;

static int HaveAVX2(void)
{
  static int have = -1;
  if (map_force_generic) return 0;
  if (have < 0) {
    __builtin_cpu_init();
    have = __builtin_cpu_supports("avx2") ? 1 : 0;
  }
  return have;
}

static int HaveF16C(void)
{
  static int have = -1;
  if (!HaveAVX2()) return 0;
  if (have < 0) have = __builtin_cpu_supports("f16c") ? 1 : 0;
  return have;
}
#endif

void MapMergeForceGeneric_Private(PetscBool flg)
{
#if defined(MAP_HAVE_AVX2_DISPATCH)
  map_force_generic = flg ? 1 : 0;
#endif
}

/* Many task vectors at once means many concurrent memory streams, which the hardware prefetchers
   cannot follow (T = 32 ran at a quarter of the triad's bandwidth). So for T > GROUP the vector
   is cut into blocks of BLOCK elements (theta block: 128 KB, stays in L2), and each block takes ceil(T/GROUP) passes
   of at most GROUP tasks, the later ones starting from theta. The per-element sequence of
   roundings is unchanged (acc lives in theta as the same F32 value between passes). */
#ifndef MAP_MERGE_GROUP /* overridable for tuning runs */
  #define MAP_MERGE_GROUP 8
#endif
#ifndef MAP_MERGE_BLOCK
  #define MAP_MERGE_BLOCK 32768
#endif

#define MAP_MERGE_DRIVE(pass, pre) \
  do { \
    if (T <= MAP_MERGE_GROUP) { \
      pass(n, pre, NULL, T, tau, ld, cf, theta); \
      break; \
    } \
    for (int64_t jb = 0; jb < n; jb += MAP_MERGE_BLOCK) { \
      int64_t nb = n - jb < MAP_MERGE_BLOCK ? n - jb : MAP_MERGE_BLOCK; \
      for (int g = 0; g < T; g += MAP_MERGE_GROUP) { \
        int ng = T - g < MAP_MERGE_GROUP ? T - g : MAP_MERGE_GROUP; \
        if (g == 0) pass(nb, pre ? pre + jb : NULL, NULL, ng, tau + jb, ld, cf, theta + jb); \
        else pass(nb, NULL, theta + jb, ng, tau + (int64_t)g * ld + jb, ld, cf + g, theta + jb); \
      } \
    } \
  } while (0)

void MapMergeKernel_Private(int64_t n, const float *pre, int T, const float *tau, int64_t ld, const float *cf, float *theta)
{
  PassF32Fn pass = PassF32_Generic;
#if defined(MAP_HAVE_AVX2_DISPATCH)
  if (HaveAVX2()) pass = PassF32_AVX2;
#endif
  MAP_MERGE_DRIVE(pass, pre);
}

static void Kernel16(Pass16Fn pass, int64_t n, const uint16_t *pre, int T, const uint16_t *tau, int64_t ld, const float *cf, float *theta)
{
  MAP_MERGE_DRIVE(pass, pre);
}

void MapMergeKernelStored_Private(MapDType dt, int64_t n, const void *pre, int T, const void *tau, int64_t ld, const float *cf,
                                  float *theta)
{
  Pass16Fn pass = dt == MAP_DTYPE_BF16 ? PassBF16_Generic : PassF16_Generic;

  if (dt == MAP_DTYPE_F32) {
    MapMergeKernel_Private(n, (const float *)pre, T, (const float *)tau, ld, cf, theta);
    return;
  }
#if defined(MAP_HAVE_AVX2_DISPATCH)
  if (dt == MAP_DTYPE_BF16 && HaveAVX2()) pass = PassBF16_AVX2;
  if (dt == MAP_DTYPE_F16 && HaveF16C()) pass = PassF16_AVX2;
#endif
  Kernel16(pass, n, (const uint16_t *)pre, T, (const uint16_t *)tau, ld, cf, theta);
}

/* Arguments shared by the fast and the reference merge. */
PetscErrorCode MapMergeCheckArgs_Private(const char *fn, MapDType dt, int64_t n, const void *pre, int T, const void *tau, int64_t ld,
                                         const double *c, const float *theta)
{
  PetscFunctionBegin;
  PetscCheck(dt == MAP_DTYPE_F32 || dt == MAP_DTYPE_BF16 || dt == MAP_DTYPE_F16, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "%s: storage dtype %d is not one of F32 (%d), BF16 (%d), F16 (%d)", fn, (int)dt, (int)MAP_DTYPE_F32,
             (int)MAP_DTYPE_BF16, (int)MAP_DTYPE_F16);
  PetscCheck(n >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: shard length n must be >= 0, got %" PRId64, fn, n);
  PetscCheck(T >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: number of tasks T must be >= 0, got %d", fn, T);
  PetscCheck(T <= 1 || ld >= n, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "%s: leading dimension of the task vectors must be >= n = %" PRId64 ", got %" PRId64, fn, n, ld);
  if (n > 0) {
    PetscCheck(pre && theta, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "%s: pre and theta must not be NULL when n = %" PRId64 " > 0",
               fn, n);
    PetscCheck(T == 0 || (tau && c), PETSC_COMM_SELF, PETSC_ERR_ARG_NULL,
               "%s: tau and c must not be NULL when T = %d > 0 and n = %" PRId64 " > 0", fn, T, n);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapMergeCoeffsF32_Private(int T, const double *c, float *stack, float **cf)
{
  PetscFunctionBegin;
  *cf = stack;
  if (T > MAP_MERGE_STACK_T) PetscCall(PetscMalloc1(T, cf));
  for (int i = 0; i < T; i++) (*cf)[i] = (float)c[i];
  PetscFunctionReturn(0);
}

PetscErrorCode MapMergeCoeffsFree_Private(float *stack, float **cf)
{
  PetscFunctionBegin;
  if (*cf != stack) PetscCall(PetscFree(*cf));
  *cf = NULL;
  PetscFunctionReturn(0);
}

/* Checks, logs and runs the fast kernel on pre and tau held in storage dtype dt (the one body of
   MapMergeApply and MapModelMerge). */
PetscErrorCode MapMergeApplyStored_Private(const char *fn, MapDType dt, int64_t n, const void *pre, int T, const void *tau, int64_t ld,
                                           const double *c, float *theta)
{
  float stack[MAP_MERGE_STACK_T], *cf;

  PetscFunctionBegin;
  PetscCall(MapMergeCheckArgs_Private(fn, dt, n, pre, T, tau, ld, c, theta));
  if (n == 0) PetscFunctionReturn(0);
  PetscCall(MapInitializePackage());
  PetscCall(PetscLogEventBegin(MAP_EVENT_MergeApply, 0, 0, 0, 0));
  PetscCall(MapMergeCoeffsF32_Private(T, c, stack, &cf));
  MapMergeKernelStored_Private(dt, n, pre, T, tau, ld, cf, theta);
  PetscCall(MapMergeCoeffsFree_Private(stack, &cf));
  PetscCall(PetscLogFlops(2.0 * T * (PetscLogDouble)n));
  PetscCall(PetscLogEventEnd(MAP_EVENT_MergeApply, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

/*@
  MapMergeApply - theta[j] = pre[j] + sum_i c[i] * tau[i*ld + j], j < n, accumulated in F32 in task
  order; pre and tau are held in dtype (F32, or BF16 / F16 bit patterns in uint16_t, widened
  exactly; F16C vcvtph2ps when the CPU has AVX2 and F16C). The accumulators of 32 elements stay in
  registers over the task loop, so each input is read once and theta written once (AVX2 when the
  CPU has it). Not collective.

  Input: dtype, n (shard length, >= 0), pre[n], T (>= 0), tau (T rows with leading dimension ld >= n),
  c[T] (rounded to F32 once). Output: theta[n] F32 (may alias an F32 pre, but not tau).
  Errors: a dtype other than F32, BF16, F16; negative n or T, ld < n, NULL arrays with n > 0.
@*/
PetscErrorCode MapMergeApply(MapDType dtype, int64_t n, const void *pre, int T, const void *tau, int64_t ld, const double *c, float *theta)
{
  PetscFunctionBegin;
  PetscCall(MapMergeApplyStored_Private("MapMergeApply", dtype, n, pre, T, tau, ld, c, theta));
  PetscFunctionReturn(0);
}
