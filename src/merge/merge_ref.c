/* merge_ref: the reference merge, the plain element-by-element loop of the contract in merge.c
 * (for tests and benchmarks: the fast kernel must give its bits). */
#include "mergeimpl.h"

/*@
  MapMergeApply_Ref - the plain loop with the same arithmetic as MapMergeApply: each 16-bit value
  widened exactly, then acc = acc + (float)c[i] * tau[i][j] in task order. Not collective. Same
  arguments and errors as MapMergeApply.
@*/
PetscErrorCode MapMergeApply_Ref(MapDType dtype, int64_t n, const void *pre, int T, const void *tau, int64_t ld, const double *c, float *theta)
{
  float stack[MAP_MERGE_STACK_T], *cf;
  float (*widen)(uint16_t) = dtype == MAP_DTYPE_BF16 ? MapBF16ToF32 : MapF16ToF32;

  PetscFunctionBegin;
  PetscCall(MapMergeCheckArgs_Private("MapMergeApply_Ref", dtype, n, pre, T, tau, ld, c, theta));
  if (n == 0) PetscFunctionReturn(0);
  PetscCall(MapMergeCoeffsF32_Private(T, c, stack, &cf));
  if (dtype == MAP_DTYPE_F32) {
    const float *p = (const float *)pre, *t = (const float *)tau;
    for (int64_t j = 0; j < n; j++) {
      float acc = p[j];
      for (int i = 0; i < T; i++) {
        float prod = cf[i] * t[(int64_t)i * ld + j];
        acc        = acc + prod;
      }
      theta[j] = acc;
    }
  } else {
    const uint16_t *p = (const uint16_t *)pre, *t = (const uint16_t *)tau;
    for (int64_t j = 0; j < n; j++) {
      float acc = widen(p[j]);
      for (int i = 0; i < T; i++) {
        float prod = cf[i] * widen(t[(int64_t)i * ld + j]);
        acc        = acc + prod;
      }
      theta[j] = acc;
    }
  }
  PetscCall(MapMergeCoeffsFree_Private(stack, &cf));
  PetscFunctionReturn(0);
}
