/* Pareto search tests on the analytic problems with the exact objectives (no surrogate).
 *
 * The objectives are restated here in closed form with their gradients, independently of
 * src/eval/eval_analytic.c, and checked against MapAnalyticEvaluate. For each problem the Pareto SET is
 * known exactly, so every found point is checked to lie in it (distance <= tol), and the corner
 * preferences must reproduce the single-objective optima (the front's extreme points). IGD and
 * hypervolume ratio against a dense sampling of the true front are reported.
 *
 * Usage: test_pareto [-problem quadratic|nonconvex] [-T n] [-scal chebyshev|weighted_sum]
 *                    [-solver smoothmax|epigraph] [-tol 1e-6] [-expect_interior 0|1] [-serial_check 1]
 * plus any -map_pareto_* option. Prints "FAIL ..." on a failed check, "ALL OK" at the end. */
#include <mapmerge/pareto.h>
#include <mapmerge/eval.h>
#include <math.h>

#include "../maptest.h"

typedef struct {
  int  T;
  char problem[32];
  long nevals;
} Problem;

/* quadratic: acc_i = 0.95 - (0.9/0.64) ||c - p_i||^2 / T, p_i = 0.2 + 0.6 e_i
   nonconvex: DTLZ2, acc_i = 0.95 - 0.7 f_i (see eval_analytic.c's header) */
static PetscErrorCode Objectives(void *vctx, const double *c, double *f, double *J)
{
  Problem  *P = (Problem *)vctx;
  const int T = P->T;

  PetscFunctionBegin;
  P->nevals++;
  if (!strcmp(P->problem, "quadratic")) {
    const double K = 0.9 / 0.64;
    for (int i = 0; i < T; i++) {
      double d2 = 0;
      for (int k = 0; k < T; k++) {
        double e = c[k] - 0.2 - (k == i ? 0.6 : 0);
        d2 += e * e;
        if (J) J[i * T + k] = -2 * K * e / T;
      }
      f[i] = 0.95 - K * d2 / T;
    }
  } else {
    double g = (c[T - 1] - 0.5) * (c[T - 1] - 0.5), rest = 1;
    for (int i = 0; i < T; i++) {
      double lam = i < T - 1 ? c[i] / (T - 1) : rest;
      if (i < T - 1) rest -= lam;
      double phi = 1.5 * lam - 0.5 * lam * lam, dphi = 1.5 - lam;
      f[i]       = 0.95 - 0.7 * (1 + g) * phi;
      if (!J) continue;
      for (int k = 0; k < T - 1; k++) {
        double dlam  = i < T - 1 ? (k == i ? 1.0 / (T - 1) : 0) : -1.0 / (T - 1);
        J[i * T + k] = -0.7 * (1 + g) * dphi * dlam;
      }
      J[i * T + T - 1] = -0.7 * 2 * (c[T - 1] - 0.5) * phi;
    }
  }
  PetscFunctionReturn(0);
}

/* Euclidean distance from v[T] to the unit simplex (sort-based projection) */
static double DistToSimplex(int T, const double *v)
{
  double u[MAP_MAX_TASKS], x[MAP_MAX_TASKS], cum = 0, theta = 0, d = 0;
  for (int i = 0; i < T; i++) u[i] = v[i];
  for (int i = 1; i < T; i++) /* descending insertion sort */
    for (int j = i; j > 0 && u[j] > u[j - 1]; j--) {
      double t = u[j];
      u[j]     = u[j - 1];
      u[j - 1] = t;
    }
  for (int i = 0; i < T; i++) {
    cum += u[i];
    double t = (cum - 1) / (i + 1);
    if (u[i] - t > 0) theta = t;
  }
  for (int i = 0; i < T; i++) {
    x[i] = PetscMax(v[i] - theta, 0);
    d += (x[i] - v[i]) * (x[i] - v[i]);
  }
  return sqrt(d);
}

/* distance of c to the exact Pareto set */
static double DistToParetoSet(const Problem *P, const double *c)
{
  if (!strcmp(P->problem, "quadratic")) {
    double lam[MAP_MAX_TASKS];
    for (int k = 0; k < P->T; k++) lam[k] = (c[k] - 0.2) / 0.6;
    return 0.6 * DistToSimplex(P->T, lam);
  }
  return PetscAbsReal(c[P->T - 1] - 0.5); /* the distance variable at 1/2 */
}

/* point of the Pareto set at parameter s in [0,1] (T = 2): the segment p_1 -> p_2, or c_2 = 1/2 */
static void ParetoSetPoint2(const Problem *P, double s, double *c)
{
  if (!strcmp(P->problem, "quadratic")) {
    c[0] = 0.8 - 0.6 * s;
    c[1] = 0.2 + 0.6 * s;
  } else {
    c[0] = s;
    c[1] = 0.5;
  }
}

/* augmented Chebyshev value (the library's scalarisation, defaults rho = 1e-4, utopia = ideal + 1e-3 range) */
static double ChebValue(const Problem *P, const double *w, const double *ideal, const double *nadir, const double *c)
{
  double f[MAP_MAX_TASKS], mx = 0, sum = 0;
  Objectives((void *)P, c, f, NULL);
  for (int i = 0; i < P->T; i++) {
    double r = ideal[i] - nadir[i], a = w[i] * (ideal[i] + 1e-3 * r - f[i]) / r;
    if (w[i] <= 0) continue;
    mx = PetscMax(mx, a);
    sum += a;
  }
  return mx + 1e-4 * sum;
}

/* quadratic: the single-objective optimum of objective i is p_i (an extreme point of the Pareto set) */
static void Anchor(int T, int i, double *c)
{
  for (int k = 0; k < T; k++) c[k] = 0.2 + (k == i ? 0.6 : 0);
}

/* a search on comm with the test's scalarisation and solver (options from the database first), solved */
static PetscErrorCode SearchOn(MPI_Comm comm, Problem *P, const char *scal, const char *solver, MapPareto *p)
{
  PetscFunctionBegin;
  PetscCall(MapParetoCreate(comm, p));
  PetscCall(MapParetoSetFromOptions(*p));
  PetscCall(MapParetoSetScalarization(*p, strcmp(scal, "weighted_sum") ? MAP_PARETO_CHEBYSHEV : MAP_PARETO_WEIGHTED_SUM));
  PetscCall(MapParetoSetSolverType(*p, strcmp(solver, "epigraph") ? MAP_PARETO_SMOOTHMAX : MAP_PARETO_EPIGRAPH));
  PetscCall(MapParetoSetObjectives(*p, P->T, P->T, Objectives, P));
  PetscCall(MapParetoSolve(*p));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  Problem     P = {.T = 2, .problem = "quadratic"};
  char        scal[32] = "chebyshev", solver[32] = "smoothmax";
  PetscReal   tol = 1e-6;
  PetscBool   expect_interior = PETSC_FALSE, serial_check = PETSC_TRUE, flg;
  PetscInt    T = 2, k, npref, nsolves, nfailed;
  const double *C, *F, *W;
  MapPareto   pareto;
  PetscMPIInt rank, size;
  int         total;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  PetscCall(PetscOptionsGetString(NULL, NULL, "-problem", P.problem, sizeof(P.problem), NULL));
  PetscCall(PetscOptionsGetInt(NULL, NULL, "-T", &T, NULL));
  PetscCall(PetscOptionsGetString(NULL, NULL, "-scal", scal, sizeof(scal), NULL));
  PetscCall(PetscOptionsGetString(NULL, NULL, "-solver", solver, sizeof(solver), NULL));
  PetscCall(PetscOptionsGetReal(NULL, NULL, "-tol", &tol, NULL));
  PetscCall(PetscOptionsGetBool(NULL, NULL, "-expect_interior", &expect_interior, &flg));
  if (!flg) expect_interior = strcmp(scal, "weighted_sum") || strcmp(P.problem, "nonconvex") ? PETSC_TRUE : PETSC_FALSE;
  PetscCall(PetscOptionsGetBool(NULL, NULL, "-serial_check", &serial_check, NULL));
  P.T = (int)T;

  /* our closed forms agree with the library's analytic evaluator */
  {
    MapTaskMetrics met[MAP_MAX_TASKS];
    double         c[MAP_MAX_TASKS], f[MAP_MAX_TASKS];
    for (int t = 0; t < 20; t++) {
      for (int j = 0; j < P.T; j++) c[j] = MapRngU01(99, (uint64_t)j, (uint64_t)t);
      PetscCall(MapAnalyticEvaluate(P.problem, P.T, c, met));
      PetscCall(Objectives(&P, c, f, NULL));
      for (int i = 0; i < P.T; i++) {
        CHECK(PetscAbsReal(met[i].accuracy - f[i]) < 1e-14, "analytic accuracy %d: %.17g vs %.17g", i, met[i].accuracy, f[i]);
        CHECK(PetscAbsReal(met[i].loss - (1 - f[i])) < 1e-14, "analytic loss %d", i);
        CHECK(met[i].accuracy > 0 && met[i].accuracy < 1, "accuracy %g outside (0,1)", met[i].accuracy);
      }
    }
    /* gradients: central differences */
    double J[MAP_MAX_TASKS * MAP_MAX_TASKS], fp[MAP_MAX_TASKS], fm[MAP_MAX_TASKS], h = 1e-6, maxerr = 0;
    for (int j = 0; j < P.T; j++) c[j] = 0.1 + 0.8 * MapRngU01(5, (uint64_t)j, 0);
    PetscCall(Objectives(&P, c, f, J));
    for (int j = 0; j < P.T; j++) {
      double cj = c[j];
      c[j]      = cj + h;
      PetscCall(Objectives(&P, c, fp, NULL));
      c[j] = cj - h;
      PetscCall(Objectives(&P, c, fm, NULL));
      c[j] = cj;
      for (int i = 0; i < P.T; i++) maxerr = PetscMax(maxerr, PetscAbsReal((fp[i] - fm[i]) / (2 * h) - J[i * P.T + j]));
    }
    CHECK(maxerr < 1e-8, "gradient check: max error %g", maxerr);
  }

  double t0 = MPI_Wtime();
  PetscCall(SearchOn(PETSC_COMM_WORLD, &P, scal, solver, &pareto));
  double elapsed = MPI_Wtime() - t0;
  PetscCall(MapParetoGetFront(pareto, &k, &C, &F, &W));
  PetscCall(MapParetoGetStatistics(pareto, &npref, &nsolves, &nfailed));
  CHECK(nfailed == 0, "%d TAO solves failed", (int)nfailed);

  /* every point in the Pareto set; objectives consistent with c */
  double maxdist = 0;
  for (PetscInt u = 0; u < k; u++) {
    double f[MAP_MAX_TASKS], wsum = 0;
    maxdist = PetscMax(maxdist, DistToParetoSet(&P, C + u * P.T));
    PetscCall(Objectives(&P, C + u * P.T, f, NULL));
    for (int i = 0; i < P.T; i++) CHECK(f[i] == F[u * P.T + i], "point %d objective %d not f(c)", (int)u, i);
    for (int i = 0; i < P.T; i++) wsum += W[u * P.T + i];
    CHECK(PetscAbsReal(wsum - 1) < 1e-12, "weights of point %d sum to %g", (int)u, wsum);
    for (int j = 0; j < P.T; j++) CHECK(C[u * P.T + j] >= 0 && C[u * P.T + j] <= 1, "point %d outside the box", (int)u);
  }
  CHECK(maxdist <= tol, "max distance to the Pareto set %.3e > %.1e", maxdist, tol);

  /* extreme points: each objective's maximum over the box is attained by some front point */
  double maxext = 0;
  for (int i = 0; i < P.T; i++) {
    double best = INFINITY, a[MAP_MAX_TASKS];
    Anchor(P.T, i, a);
    for (PetscInt u = 0; u < k; u++) {
      double d = 0;
      if (!strcmp(P.problem, "quadratic")) {
        for (int j = 0; j < P.T; j++) d += (C[u * P.T + j] - a[j]) * (C[u * P.T + j] - a[j]);
        d = sqrt(d);
      } else d = PetscAbsReal(F[u * P.T + i] - 0.95); /* nonconvex: max accuracy_i is 0.95 exactly */
      best = PetscMin(best, d);
    }
    maxext = PetscMax(maxext, best);
  }
  CHECK(maxext <= tol, "extreme points missed by %.3e > %.1e", maxext, tol);

  /* IGD and hypervolume ratio against a dense sampling of the true front */
  double   *Ft, ref[MAP_MAX_TASKS], igd, gd, hvf, hvt;
  const int ntrue = P.T == 2 ? 2001 : 5000;
  PetscCall(MapAnalyticTrueFront(P.problem, P.T, ntrue, &Ft));
  for (int i = 0; i < P.T; i++) ref[i] = 0;
  igd = MapFrontIGD(P.T, ntrue, Ft, k, F);
  gd  = MapFrontIGD(P.T, k, F, ntrue, Ft);
  hvf = MapFrontHypervolume(P.T, k, F, ref);
  hvt = MapFrontHypervolume(P.T, ntrue, Ft, ref);
  PetscCall(PetscFree(Ft));

  /* interior coverage: points away from every extreme (normalised distance from the ideal corner) */
  int ninterior = 0;
  for (PetscInt u = 0; u < k; u++) {
    int interior = 1;
    for (int i = 0; i < P.T; i++) {
      double lo = !strcmp(P.problem, "quadratic") ? 0.95 - (0.9 / 0.64) * 0.72 / P.T : 0.25;
      double s  = (0.95 - F[u * P.T + i]) / (0.95 - lo); /* 0 at objective i's maximum */
      if (s < 0.05) interior = 0;
    }
    ninterior += interior;
  }
  if (expect_interior) CHECK(ninterior >= k / 2 && ninterior >= 3, "only %d of %d front points are interior", ninterior, (int)k);
  else CHECK(ninterior == 0, "weighted sum found %d interior points of a non-convex front (should find only corners)", ninterior);

  /* T = 2 Chebyshev: how well each scalarised problem was solved — the gap between the value at the
     found point and the true minimum, found by a fine search along the (known) Pareto set */
  double maxgap = 0;
  if (P.T == 2 && strcmp(scal, "weighted_sum")) {
    const double *ideal, *nadir;
    PetscCall(MapParetoGetIdealNadir(pareto, &ideal, &nadir));
    for (PetscInt u = 0; u < k; u++) {
      const double *w = W + u * 2;
      double        best = INFINITY, bs = 0, c[2], h = 1.0 / 4000;
      for (int t = 0; t <= 4000; t++) {
        ParetoSetPoint2(&P, t * h, c);
        double v = ChebValue(&P, w, ideal, nadir, c);
        if (v < best) best = v, bs = t * h;
      }
      double a = PetscMax(0, bs - h), b = PetscMin(1, bs + h); /* golden section on the bracket */
      for (int it = 0; it < 200; it++) {
        double m1 = b - 0.618033988749895 * (b - a), m2 = a + 0.618033988749895 * (b - a), c1[2], c2[2];
        ParetoSetPoint2(&P, m1, c1);
        ParetoSetPoint2(&P, m2, c2);
        if (ChebValue(&P, w, ideal, nadir, c1) < ChebValue(&P, w, ideal, nadir, c2)) b = m2;
        else a = m1;
      }
      ParetoSetPoint2(&P, 0.5 * (a + b), c);
      best    = PetscMin(best, ChebValue(&P, w, ideal, nadir, c));
      maxgap  = PetscMax(maxgap, ChebValue(&P, w, ideal, nadir, C + u * 2) - best);
    }
    CHECK(maxgap <= 1e-4, "Chebyshev optimality gap %.3e", maxgap);
  }

  /* bitwise the same front as a one-rank search (the partition must not matter) */
  char hex[65];
  {
    size_t nb = (size_t)k * P.T * 2 * sizeof(double);
    double *buf;
    PetscCall(PetscMalloc1(k * P.T * 2, &buf));
    PetscCall(PetscArraycpy(buf, C, k * P.T));
    PetscCall(PetscArraycpy(buf + k * P.T, F, k * P.T));
    MapSha256(buf, nb, hex);
    PetscCall(PetscFree(buf));
  }
  if (serial_check && size > 1) {
    MapPareto    ps;
    PetscInt     ks;
    const double *Cs, *Fs;
    PetscCall(SearchOn(PETSC_COMM_SELF, &P, scal, solver, &ps));
    PetscCall(MapParetoGetFront(ps, &ks, &Cs, &Fs, NULL));
    CHECK(ks == k && !memcmp(Cs, C, sizeof(double) * k * P.T) && !memcmp(Fs, F, sizeof(double) * k * P.T),
          "rank %d: front on %d ranks differs from the one-rank front (%d vs %d points)", (int)rank, (int)size, (int)k, (int)ks);
    PetscCall(MapParetoDestroy(&ps));
  }

  /* pick: equal weights; the quadratic problem is symmetric, so the pick is the centre of the hull */
  {
    double w[MAP_MAX_TASKS], c[MAP_MAX_TASKS], f[MAP_MAX_TASKS], c0[MAP_MAX_TASKS];
    for (int i = 0; i < P.T; i++) w[i] = 2;
    PetscCall(MapParetoPick(pareto, w, c, f));
    CHECK(DistToParetoSet(&P, c) <= tol, "pick not in the Pareto set: %.3e", DistToParetoSet(&P, c));
    if (!strcmp(P.problem, "quadratic"))
      for (int j = 0; j < P.T; j++) CHECK(PetscAbsReal(c[j] - (0.2 + 0.6 / P.T)) <= tol, "pick c[%d] = %.10g", j, c[j]);
    /* Chebyshev with equal weights on a symmetric problem: equal objectives */
    if (strcmp(scal, "weighted_sum") && (!strcmp(P.problem, "quadratic") || P.T == 2))
      for (int i = 1; i < P.T; i++) CHECK(PetscAbsReal(f[i] - f[0]) <= 1e-5, "pick objectives %g %g not balanced", f[0], f[i]);
    PetscCall(PetscArraycpy(c0, c, P.T));
    PetscCallMPI(MPI_Bcast(c0, P.T, MPI_DOUBLE, 0, PETSC_COMM_WORLD));
    CHECK(!memcmp(c0, c, sizeof(double) * P.T), "pick differs between ranks");
  }

  PetscCall(PetscPrintf(PETSC_COMM_WORLD,
                        "problem %s T=%d scal %s solver %s: %d preferences, %d front points (%d interior), %d solves, %d failed, "
                        "%.2fs on %d ranks\n",
                        P.problem, P.T, scal, solver, (int)npref, (int)k, ninterior, (int)nsolves, (int)nfailed, elapsed, (int)size));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  max dist to Pareto set %.3e, extreme-point error %.3e, IGD %.3e, GD %.3e, HV ratio %.6f\n", maxdist,
                        maxext, igd, gd, hvf / hvt));
  if (P.T == 2 && strcmp(scal, "weighted_sum")) PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  max Chebyshev optimality gap %.3e\n", maxgap));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  front sha256 %s\n", hex));
  PetscCall(PetscOptionsHasName(NULL, NULL, "-print_front", &flg));
  for (PetscInt u = 0; flg && u < k; u++) {
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  w"));
    for (int i = 0; i < P.T; i++) PetscCall(PetscPrintf(PETSC_COMM_WORLD, " %.4f", W[u * P.T + i]));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  c"));
    for (int i = 0; i < P.T; i++) PetscCall(PetscPrintf(PETSC_COMM_WORLD, " %.8f", C[u * P.T + i]));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  f"));
    for (int i = 0; i < P.T; i++) PetscCall(PetscPrintf(PETSC_COMM_WORLD, " %.8f", F[u * P.T + i]));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "\n"));
  }
  PetscCall(MapParetoDestroy(&pareto));
  PetscCallMPI(MPI_Allreduce(&nfail, &total, 1, MPI_INT, MPI_SUM, PETSC_COMM_WORLD));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "%s: %d failures\n", total ? "SOME FAILED" : "ALL OK", total));
  PetscCall(PetscFinalize());
  return total ? 1 : 0;
}
