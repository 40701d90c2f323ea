/* MapFixedGemm against the plain triple loop (the same bits for random shapes, strides and
   transposes: its tiling must not change an element's order of operations), and MapFixedExp/Log
   against libm (relative error < 1e-15). Prints FAIL lines. */
#include "fixedimpl.h"
#include <math.h>

static float Rand(uint64_t *s)
{
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (float)((double)(*s >> 11) / 9007199254740992.0 * 2 - 1);
}

int main(int argc, char **argv)
{
  uint64_t s = 12345;
  int      fails = 0;
  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  for (int trial = 0; trial < 200; trial++) {
    int64_t M = 1 + (int64_t)((Rand(&s) + 1) * 40), N = 1 + (int64_t)((Rand(&s) + 1) * 40), K = 1 + (int64_t)((Rand(&s) + 1) * 150);
    int     tr = trial % 2; /* A given transposed: A[i,k] at A[k*M + i] */
    float  *A, *B, *C;
    PetscCall(PetscMalloc3(M * K, &A, K * N, &B, M * N, &C));
    for (int64_t i = 0; i < M * K; i++) A[i] = Rand(&s);
    for (int64_t i = 0; i < K * N; i++) B[i] = Rand(&s);
    MapFixedGemm(M, N, K, A, tr ? 1 : K, tr ? M : 1, B, N, C, N);
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        float acc = 0.0f;
        for (int64_t k = 0; k < K; k++) acc += A[tr ? k * M + i : i * K + k] * B[k * N + j];
        if (memcmp(&acc, &C[i * N + j], sizeof(float))) {
          if (fails++ < 5) printf("FAIL: MapFixedGemm M %d N %d K %d: C[%d,%d] = %.9g, plain loop %.9g\n", (int)M, (int)N, (int)K, (int)i, (int)j,
                                  (double)C[i * N + j], (double)acc);
        }
      }
    PetscCall(PetscFree3(A, B, C));
  }
  double maxe = 0, maxl = 0;
  for (double x = -700; x <= 700; x += 0.0137) maxe = fmax(maxe, fabs(MapFixedExp(x) - exp(x)) / exp(x));
  for (double x = 1e-300; x < 1e300; x *= 1.37) {
    double l = log(x);
    if (fabs(l) > 1e-3) maxl = fmax(maxl, fabs(MapFixedLog(x) - l) / fabs(l));
  }
  for (double x = 0.5; x <= 20; x += 0.00123) maxl = fmax(maxl, fabs(MapFixedLog(x) - log(x)) / fmax(fabs(log(x)), 1e-300));
  printf("MapFixedGemm: 200 random shapes %s; max relative error: MapFixedExp %.3g, MapFixedLog %.3g\n", fails ? "DIFFER" : "bitwise equal to the plain loop", maxe, maxl);
  if (maxe > 1e-15 || maxl > 1e-15) printf("FAIL: fixed exp/log error above 1e-15\n");
  if (MapFixedExp(0) != 1 || MapFixedLog(1) != 0 || MapFixedExp(-1000) != 0 || !isinf(MapFixedLog(0))) printf("FAIL: exp(0), log(1), exp(-1000), log(0)\n");
  PetscCall(PetscFinalize());
  return 0;
}
