/* Front-quality measures: non-dominated filter, IGD/GD, hypervolume (exact 2-D and 3-D against
 * hand-computed volumes and a brute-force grid count, Monte Carlo above 3-D), the preference
 * lattice. Prints "FAIL ..." on a failed check and "ALL OK" at the end. */
#include <mapmerge/pareto.h>
#include <math.h>

#include "../maptest.h"

/* hypervolume by counting the cells of a G^m grid on [ref, 1]^m dominated by some point; exact
   when every coordinate is a multiple of 1/G */
static double GridHV(int m, PetscInt n, const double *F, int G)
{
  long cells = 1, hits = 0;
  for (int k = 0; k < m; k++) cells *= G;
  for (long cell = 0; cell < cells; cell++) {
    double y[8];
    long   r = cell;
    for (int k = 0; k < m; k++) {
      y[k] = ((double)(r % G) + 0.5) / G;
      r /= G;
    }
    for (PetscInt i = 0; i < n; i++) {
      int dom = 1;
      for (int k = 0; k < m; k++)
        if (F[i * m + k] < y[k]) dom = 0;
      if (dom) {
        hits++;
        break;
      }
    }
  }
  return (double)hits / cells;
}

int main(int argc, char **argv)
{
  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  {
    /* non-dominated: (1,2) (2,1) (1,1) dominated, (2,1) twice both kept, (0,3) kept */
    const double F[] = {1, 2, 2, 1, 1, 1, 2, 1, 0, 3};
    int          keep[5];
    PetscInt     cnt = MapNonDominated(2, 5, F, keep);
    CHECK(cnt == 4 && keep[0] && keep[1] && !keep[2] && keep[3] && keep[4], "non-dominated: cnt %d keep %d%d%d%d%d", (int)cnt, keep[0], keep[1],
          keep[2], keep[3], keep[4]);
  }
  {
    const double T[] = {0, 0, 1, 0}, Fd[] = {0, 1};
    CHECK(PetscAbsReal(MapFrontIGD(2, 2, T, 1, Fd) - 0.5 * (1 + sqrt(2))) < 1e-15, "IGD");
    CHECK(PetscAbsReal(MapFrontIGD(2, 1, Fd, 2, T) - 1) < 1e-15, "GD");
    CHECK(isinf(MapFrontIGD(2, 2, T, 0, Fd)), "IGD with nothing found must be inf");
  }
  {
    const double ref2[] = {0, 0}, F2[] = {1, 2, 2, 1, 0.5, 0.5, -1, 5};
    CHECK(MapFrontHypervolume(2, 4, F2, ref2) == 3, "2-D HV = %g, want 3", MapFrontHypervolume(2, 4, F2, ref2));
    const double ref3[] = {0, 0, 0}, F3[] = {2, 1, 1, 1, 2, 1, 1, 1, 2};
    CHECK(MapFrontHypervolume(3, 3, F3, ref3) == 4, "3-D HV = %g, want 4", MapFrontHypervolume(3, 3, F3, ref3));
    const double ref4[] = {0, 0, 0, 0}, F4[] = {1, 1, 1, 1};
    CHECK(MapFrontHypervolume(4, 1, F4, ref4) == 1, "4-D HV of one box = %g", MapFrontHypervolume(4, 1, F4, ref4));
  }
  /* random points on a grid of 1/G: exact 2-D and 3-D against cell counting; 4-D Monte Carlo within 1% */
  for (int m = 2; m <= 4; m++) {
    const int G = m == 4 ? 12 : 20;
    double    F[40 * 4], ref[4] = {0, 0, 0, 0};
    for (int i = 0; i < 40; i++)
      for (int k = 0; k < m; k++) F[i * m + k] = floor(G * MapRngU01(11, (uint64_t)k, (uint64_t)i) + 1) / G;
    double hv = MapFrontHypervolume(m, 40, F, ref), grid = GridHV(m, 40, F, G);
    if (m < 4) CHECK(PetscAbsReal(hv - grid) < 1e-12, "%d-D HV %.15g vs grid count %.15g", m, hv, grid);
    else CHECK(PetscAbsReal(hv - grid) < 0.01 * grid, "4-D Monte Carlo HV %.6g vs grid count %.6g", hv, grid);
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "HV m=%d: %.12g (grid count %.12g)\n", m, hv, grid));
  }
  {
    double  *W;
    PetscInt n;
    PetscCall(MapParetoPreferences(3, 4, &n, &W));
    CHECK(n == 15, "lattice m=3 H=4: %d vectors", (int)n);
    CHECK(W[0] == 1 && W[1] == 0 && W[2] == 0 && W[3 * (n - 1) + 2] == 1, "lattice corners first/last");
    for (PetscInt i = 0; i < n; i++) CHECK(PetscAbsReal(W[3 * i] + W[3 * i + 1] + W[3 * i + 2] - 1) < 1e-15, "lattice vector %d sum", (int)i);
    for (PetscInt i = 0; i < n; i++)
      for (PetscInt j = 0; j < i; j++) CHECK(memcmp(W + 3 * i, W + 3 * j, 3 * sizeof(double)), "lattice vectors %d and %d equal", (int)i, (int)j);
    PetscCall(PetscFree(W));
  }
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "%s: %d failures\n", nfail ? "SOME FAILED" : "ALL OK", nfail));
  PetscCall(PetscFinalize());
  return nfail ? 1 : 0;
}
