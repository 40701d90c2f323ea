/* test_surrogate: real MPI runs of MapSurrogate (docs/design.md §5.3), checked against known answers and
 * against LAPACK. Run with any -n; options such as -map_surrogate_grid 2,1 select the BLACS grid.
 *   (a) identity link, noise-free quadratic: parameters recovered to 1e-8
 *   (b) sigmoid and softplus links on g(known quadratic), including saturated (clipped) samples: 1e-6
 *   (c) MapSurrogateLeastSquares (PDGELS) against LAPACK dgels_: 1e-12 relative
 *   (d) "HASH" lines of the fitted bytes with the given options (compared across -n by check_hash.sh)
 *   (f) rank-deficient designs, too few samples, a grid larger than the job: clean errors
 *   (g) missing targets: each fitted on its observed samples, the same bits as a fit of those alone
 *   plus: gradients against finite differences, A/b/e against Predict, LOO against brute-force refits,
 *   fit times for T = 2, 5, 8 with n = (T+1)(T+2). */
#include <mapmerge/surrogate.h>
#include "scalapack_impl.h"

static int  nfail = 0;
static char errmsg[4096];

#define CHECK(cond, ...) \
  do { \
    if (!(cond)) { \
      nfail++; \
      PetscCall(PetscPrintf(PETSC_COMM_WORLD, "FAIL: " __VA_ARGS__)); \
      PetscCall(PetscPrintf(PETSC_COMM_WORLD, "\n")); \
    } \
  } while (0)

static PetscErrorCode capture_error(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n,
                                    PetscErrorType p, const char *mess, void *ctx)
{
  if (p == PETSC_ERROR_INITIAL && mess) snprintf(errmsg, sizeof(errmsg), "%s", mess);
  return n;
}

/* uniform design in [0,1]^T plus the one-hots (like the reference design), then a random true theta */
static void make_problem(int T, int n, uint64_t seed, double amp, double *C, double *theta)
{
  int F = (T + 1) * (T + 2) / 2;
  for (int i = 0; i < n; i++)
    for (int t = 0; t < T; t++) C[i * T + t] = i < T ? (t == i ? 1.0 : 0.0) : MapRngU01(seed, 1, (uint64_t)i * T + t);
  for (int j = 0; j < F; j++) theta[j] = amp * (2 * MapRngU01(seed, 2, j) - 1);
}

static double quad(int T, const double *c, const double *theta)
{
  double phi[1024], z = 0;
  int    F = (T + 1) * (T + 2) / 2;
  MapQuadraticFeatures(T, c, phi);
  for (int j = 0; j < F; j++) z += phi[j] * theta[j];
  return z;
}

static double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }
static double sigm(double z) { return 1 / (1 + exp(-z)); }

/* (a), (b), (d) and the gradient/quadratic checks for one T */
static PetscErrorCode test_recovery(int T)
{
  int          n = (T + 1) * (T + 2), F = (T + 1) * (T + 2) / 2, K = 3;
  double      *C, *Y, *th[3];
  MapLink      link[3] = {MAP_LINK_IDENTITY, MAP_LINK_SIGMOID, MAP_LINK_SOFTPLUS};
  const char  *names[3] = {"identity", "sigmoid", "softplus"};
  double       amp[3]   = {1.0, 1.5, 1.5};
  MapSurrogate s;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(n * T, &C, n * K, &Y));
  for (int k = 0; k < K; k++) {
    PetscCall(PetscMalloc1(F, &th[k]));
    make_problem(T, n, 1000 + T, amp[k], C, th[k]);
    /* make LM work: near the one-hot e_0 the samples saturate beyond the clipping of the linearised
       start (sigmoid: z > 9.2, y > 1-1e-4; softplus: z < -18.4, y < 1e-8), so the start is wrong there */
    if (k == 1) th[k][1 + T] = 12.0; /* coefficient of c_0^2 */
    if (k == 2) th[k][1 + T] = -25.0;
  }
  for (int i = 0; i < n; i++) {
    Y[i * K + 0] = quad(T, C + i * T, th[0]);
    Y[i * K + 1] = sigm(quad(T, C + i * T, th[1]));
    Y[i * K + 2] = softplus(quad(T, C + i * T, th[2]));
  }
  PetscCall(MapSurrogateCreate(PETSC_COMM_WORLD, &s));
  PetscCall(MapSurrogateSetFromOptions(s));
  PetscCall(MapSurrogateSetTargetNames(s, K, names));
  double t0 = MPI_Wtime();
  PetscCall(MapSurrogateFit(s, T, n, C, K, Y, link));
  double t1 = MPI_Wtime();
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "TIME T=%d n=%d F=%d noise-free fit of 3 targets: %.4f s\n", T, n, F, t1 - t0));
  PetscCall(MapSurrogateView(s, NULL));
  double tol[3] = {1e-8, 1e-6, 1e-6};
  for (int k = 0; k < K; k++) {
    const double     *p;
    double            err = 0, nrm = 0;
    MapFitDiagnostics d;
    PetscCall(MapSurrogateGetParams(s, k, &p));
    PetscCall(MapSurrogateGetDiagnostics(s, k, &d));
    for (int j = 0; j < F; j++) {
      err = PetscMax(err, fabs(p[j] - th[k][j]));
      nrm = PetscMax(nrm, fabs(th[k][j]));
    }
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "T=%d %s: max|theta-theta_true|/max|theta_true| = %.3e (tol %.0e), LM its %d, R^2 %.12f\n",
                          T, names[k], err / nrm, tol[k], d.iterations, d.r2));
    CHECK(k == 0 || d.iterations > 0, "T=%d %s: the clipped start should need LM steps", T, names[k]);
    CHECK(err / nrm <= tol[k], "T=%d %s: parameters off by %.3e > %.0e", T, names[k], err / nrm, tol[k]);
    CHECK(d.r2 > 1 - 1e-12 && d.rmse < 1e-9 && d.loo_rmse < 1e-7, "T=%d %s: diagnostics of an exact fit: R^2 %.15f rmse %g loo %g",
          T, names[k], d.r2, d.rmse, d.loo_rmse);
    /* gradient vs central differences, and A/b/e vs Predict, at an interior point */
    double c[16], g[16], v, A[256], b[16], e, maxg = 0;
    for (int t = 0; t < T; t++) c[t] = 0.3 + 0.05 * t;
    PetscCall(MapSurrogatePredict(s, k, c, &v, g));
    for (int t = 0; t < T; t++) {
      double cp[16], cm[16], vp, vm, h = 1e-6;
      PetscCall(PetscArraycpy(cp, c, T));
      PetscCall(PetscArraycpy(cm, c, T));
      cp[t] += h;
      cm[t] -= h;
      PetscCall(MapSurrogatePredict(s, k, cp, &vp, NULL));
      PetscCall(MapSurrogatePredict(s, k, cm, &vm, NULL));
      maxg = PetscMax(maxg, fabs((vp - vm) / (2 * h) - g[t]) / PetscMax(1, fabs(g[t])));
    }
    CHECK(maxg < 1e-7, "T=%d %s: gradient vs finite differences off by %.3e", T, names[k], maxg);
    /* the Hessian (the Pareto search's Newton method) against central differences of the gradient,
       scaled by 2 and added to a non-zero H to check the accumulation */
    {
      double H[256], maxh = 0, hmax = 0;
      for (int q = 0; q < T * T; q++) H[q] = 1;
      PetscCall(MapSurrogateHessianAdd(s, k, c, 2.0, H));
      for (int t = 0; t < T; t++) {
        double cp[16], cm[16], gp[16], gm[16], vp, vm, h = 1e-5;
        PetscCall(PetscArraycpy(cp, c, T));
        PetscCall(PetscArraycpy(cm, c, T));
        cp[t] += h;
        cm[t] -= h;
        PetscCall(MapSurrogatePredict(s, k, cp, &vp, gp));
        PetscCall(MapSurrogatePredict(s, k, cm, &vm, gm));
        for (int i = 0; i < T; i++) {
          double fd = 1 + 2 * (gp[i] - gm[i]) / (2 * h);
          maxh      = PetscMax(maxh, fabs(fd - H[i + t * T]));
          hmax      = PetscMax(hmax, fabs(fd));
        }
      }
      CHECK(maxh < 1e-6 * PetscMax(1, hmax), "T=%d %s: Hessian vs finite differences of the gradient off by %.3e (scale %.3e)", T, names[k], maxh,
            hmax);
    }
    PetscCall(MapSurrogateGetQuadratic(s, k, A, b, &e));
    double z = e;
    for (int i = 0; i < T; i++) {
      z += b[i] * c[i];
      for (int j = 0; j < T; j++) z += 0.5 * c[i] * A[i * T + j] * c[j];
    }
    double vz = k == 0 ? z : k == 1 ? sigm(z) : softplus(z);
    CHECK(fabs(vz - v) < 1e-12 * PetscMax(1, fabs(v)), "T=%d %s: 1/2 c'Ac + b'c + e gives %.17g, Predict %.17g", T, names[k], vz, v);
  }
  /* (d) the bits of every parameter and diagnostic */
  {
    double *buf;
    char    hex[65];
    PetscCall(PetscMalloc1(K * (F + 5), &buf));
    for (int k = 0; k < K; k++) {
      const double     *p;
      MapFitDiagnostics d;
      PetscCall(MapSurrogateGetParams(s, k, &p));
      PetscCall(MapSurrogateGetDiagnostics(s, k, &d));
      PetscCall(PetscArraycpy(buf + k * (F + 5), p, F));
      buf[k * (F + 5) + F]     = d.r2;
      buf[k * (F + 5) + F + 1] = d.rmse;
      buf[k * (F + 5) + F + 2] = d.loo_rmse;
      buf[k * (F + 5) + F + 3] = d.cond;
      buf[k * (F + 5) + F + 4] = d.iterations;
    }
    MapSha256(buf, sizeof(double) * K * (F + 5), hex);
    /* every rank must hold the same bits */
    char all[65 * 8];
    int  size, same = 1;
    MPI_Comm_size(PETSC_COMM_WORLD, &size);
    if (size <= 8) {
      MPI_Allgather(hex, 65, MPI_CHAR, all, 65, MPI_CHAR, PETSC_COMM_WORLD);
      for (int r = 1; r < size; r++) same = same && !strcmp(all, all + 65 * r);
      CHECK(same, "T=%d: ranks hold different parameter bits", T);
    }
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "HASH T=%d %s\n", T, hex));
    PetscCall(PetscFree(buf));
  }
  PetscCall(MapSurrogateDestroy(&s));
  for (int k = 0; k < K; k++) PetscCall(PetscFree(th[k]));
  PetscCall(PetscFree2(C, Y));
  PetscFunctionReturn(0);
}

/* LOO on noisy data against brute-force refits with MapSurrogateFit itself; and the linearised estimate */
static PetscErrorCode test_loo(int T, const char *ridge)
{
  int          n = (T + 1) * (T + 2), F = (T + 1) * (T + 2) / 2, K = 2;
  double      *C, *Y, *th, *Cm, *Ym, brute[2] = {0, 0};
  MapLink      link[2] = {MAP_LINK_IDENTITY, MAP_LINK_SIGMOID};
  MapSurrogate s, sm;

  PetscFunctionBegin;
  PetscCall(PetscMalloc5(n * T, &C, n * K, &Y, F, &th, n * T, &Cm, n * K, &Ym));
  make_problem(T, n, 77, 1.0, C, th);
  for (int i = 0; i < n; i++) {
    double z     = quad(T, C + i * T, th), noise = 0.05 * (2 * MapRngU01(77, 3, i) - 1);
    Y[i * K + 0] = z + noise;
    Y[i * K + 1] = PetscMin(1, PetscMax(0, sigm(z) + noise));
  }
  if (ridge) PetscCall(PetscOptionsSetValue(NULL, "-map_surrogate_ridge", ridge));
  PetscCall(MapSurrogateCreate(PETSC_COMM_WORLD, &s));
  PetscCall(MapSurrogateSetFromOptions(s));
  PetscCall(MapSurrogateFit(s, T, n, C, K, Y, link));
  /* the brute-force refits need only parameters: the cheap linearised LOO keeps them fast on big grids */
  PetscCall(MapSurrogateCreate(PETSC_COMM_WORLD, &sm));
  PetscCall(PetscOptionsSetValue(NULL, "-map_surrogate_loo_refit_max", "0"));
  PetscCall(MapSurrogateSetFromOptions(sm));
  PetscCall(PetscOptionsClearValue(NULL, "-map_surrogate_loo_refit_max"));
  for (int i = 0; i < n; i++) {
    for (int q = 0, p = 0; q < n; q++)
      if (q != i) {
        PetscCall(PetscArraycpy(Cm + p * T, C + q * T, T));
        PetscCall(PetscArraycpy(Ym + p * K, Y + q * K, K));
        p++;
      }
    PetscCall(MapSurrogateFit(sm, T, n - 1, Cm, K, Ym, link));
    for (int k = 0; k < K; k++) {
      double v;
      PetscCall(MapSurrogatePredict(sm, k, C + i * T, &v, NULL));
      brute[k] += (Y[i * K + k] - v) * (Y[i * K + k] - v);
    }
  }
  for (int k = 0; k < K; k++) {
    MapFitDiagnostics d;
    PetscCall(MapSurrogateGetDiagnostics(s, k, &d));
    brute[k] = sqrt(brute[k] / n);
    double rel = fabs(d.loo_rmse - brute[k]) / brute[k];
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "T=%d ridge %s LOO %s: reported %.10e, brute-force refits %.10e (rel %.2e), RMSE %.4e\n", T,
                          ridge ? ridge : "0", MapLinkName(link[k]), d.loo_rmse, brute[k], rel, d.rmse));
    CHECK(rel < 1e-6, "T=%d LOO %s: %.10e vs brute force %.10e", T, MapLinkName(link[k]), d.loo_rmse, brute[k]);
  }
  /* linearised LOO (sm has -map_surrogate_loo_refit_max 0): first-order, so only roughly equal */
  PetscCall(MapSurrogateFit(sm, T, n, C, K, Y, link));
  {
    MapFitDiagnostics d;
    PetscCall(MapSurrogateGetDiagnostics(sm, 1, &d));
    double rel = fabs(d.loo_rmse - brute[1]) / brute[1];
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "T=%d LOO sigmoid linearised: %.6e vs refits %.6e (rel %.2e)\n", T, d.loo_rmse, brute[1], rel));
    CHECK(rel < 0.25, "T=%d linearised LOO %.6e too far from refits %.6e", T, d.loo_rmse, brute[1]);
  }
  PetscCall(MapSurrogateDestroy(&sm));
  PetscCall(MapSurrogateDestroy(&s));
  PetscCall(PetscFree5(C, Y, th, Cm, Ym));
  PetscFunctionReturn(0);
}

/* fit time with noisy targets (LM and exact LOO refits do real work), n = (T+1)(T+2) */
static PetscErrorCode test_timing(int T)
{
  int          n = (T + 1) * (T + 2), F = (T + 1) * (T + 2) / 2, K = 3;
  double      *C, *Y, *th;
  MapLink      link[3] = {MAP_LINK_IDENTITY, MAP_LINK_SIGMOID, MAP_LINK_SOFTPLUS};
  MapSurrogate s;

  PetscFunctionBegin;
  PetscCall(PetscMalloc3(n * T, &C, n * K, &Y, F, &th));
  make_problem(T, n, 31, 1.0, C, th);
  for (int i = 0; i < n; i++) {
    double z = quad(T, C + i * T, th), noise = 0.02 * (2 * MapRngU01(31, 3, i) - 1);
    Y[i * K + 0] = z + noise;
    Y[i * K + 1] = PetscMin(1, PetscMax(0, sigm(z) + noise));
    Y[i * K + 2] = PetscMax(0, softplus(z) + noise);
  }
  PetscCall(MapSurrogateCreate(PETSC_COMM_WORLD, &s));
  PetscCall(MapSurrogateSetFromOptions(s));
  double t0 = MPI_Wtime();
  PetscCall(MapSurrogateFit(s, T, n, C, K, Y, link)); /* includes the BLACS grid set-up */
  double t1 = MPI_Wtime();
  PetscCall(MapSurrogateFit(s, T, n, C, K, Y, link));
  double t2 = MPI_Wtime();
  MapFitDiagnostics d1, d2;
  PetscCall(MapSurrogateGetDiagnostics(s, 1, &d1));
  PetscCall(MapSurrogateGetDiagnostics(s, 2, &d2));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "TIME T=%d n=%d F=%d noisy, identity+sigmoid+softplus (LOO %s): first fit "
                        "(with grid set-up) %.4f s, second %.4f s (LM its %d, %d)\n", T, n, F, n <= 200 ? "exact refits" : "linearised", t1 - t0, t2 - t1, d1.iterations, d2.iterations));
  PetscCall(MapSurrogateDestroy(&s));
  PetscCall(PetscFree3(C, Y, th));
  PetscFunctionReturn(0);
}

/* ridge: the identity fit must equal an independent LAPACK solve of the scaled, augmented system
   [Xs; sqrt(ridge) E] theta~ = [y; 0] with Xs = X diag(1/||X_j||), E = identity minus its first row */
static PetscErrorCode test_ridge(int T, double ridge)
{
  int          n = (T + 1) * (T + 2), F = (T + 1) * (T + 2) / 2, m = n + F - 1, info, lwork = -1;
  double      *C, *Y, *th, *A, *b, *sc, wq, *work, phi[64], err = 0, nrm = 0;
  char         val[32];
  MapLink      link = MAP_LINK_IDENTITY;
  MapSurrogate s;
  const double *p;

  PetscFunctionBegin;
  PetscCall(PetscMalloc6(n * T, &C, n, &Y, F, &th, m * F, &A, m, &b, F, &sc));
  make_problem(T, n, 55, 1.0, C, th);
  for (int i = 0; i < n; i++) Y[i] = quad(T, C + i * T, th) + 0.05 * (2 * MapRngU01(55, 3, i) - 1);
  snprintf(val, sizeof(val), "%.17g", ridge);
  PetscCall(PetscOptionsSetValue(NULL, "-map_surrogate_ridge", val));
  PetscCall(MapSurrogateCreate(PETSC_COMM_WORLD, &s));
  PetscCall(MapSurrogateSetFromOptions(s));
  PetscCall(PetscOptionsClearValue(NULL, "-map_surrogate_ridge"));
  PetscCall(MapSurrogateFit(s, T, n, C, 1, Y, &link));
  PetscCall(MapSurrogateGetParams(s, 0, &p));
  PetscCall(PetscArrayzero(A, m * F));
  PetscCall(PetscArrayzero(b, m));
  for (int i = 0; i < n; i++) {
    MapQuadraticFeatures(T, C + i * T, phi);
    for (int j = 0; j < F; j++) A[i + j * m] = phi[j];
    b[i] = Y[i];
  }
  for (int j = 0; j < F; j++) {
    double q = 0;
    for (int i = 0; i < n; i++) q += A[i + j * m] * A[i + j * m];
    sc[j] = sqrt(q);
    for (int i = 0; i < n; i++) A[i + j * m] /= sc[j];
    if (j) A[n + j - 1 + j * m] = sqrt(ridge);
  }
  int     one = 1;
  double *A0c;
  PetscCall(PetscMalloc1(m * F, &A0c));
  PetscCall(PetscArraycpy(A0c, A, m * F));
#define A0(q, j) A0c[(q) + (j) * m]
  dgels_("N", &m, &F, &one, A, &m, b, &m, &wq, &lwork, &info, 1);
  lwork = (int)wq + 1;
  PetscCall(PetscMalloc1(lwork, &work));
  dgels_("N", &m, &F, &one, A, &m, b, &m, work, &lwork, &info, 1);
  PetscCall(PetscFree(work));
  for (int j = 0; j < F; j++) {
    err = PetscMax(err, fabs(p[j] - b[j] / sc[j]));
    nrm = PetscMax(nrm, fabs(b[j] / sc[j]));
  }
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "T=%d ridge %g: fit vs LAPACK on the augmented system: rel %.3e (tol 1e-10)\n", T, ridge, err / nrm));
  CHECK(info == 0 && err / nrm < 1e-10, "T=%d ridge %g: fit differs from LAPACK by %.3e", T, ridge, err / nrm);
  /* LOO under ridge: the penalty (on the full-data scaled columns) stays fixed in every fold, so the
     reference drops row i from that same augmented system and re-solves with LAPACK */
  {
    double *Am, *bm, loo = 0;
    int     mm = m - 1;
    MapFitDiagnostics d;
    PetscCall(PetscMalloc2(mm * F, &Am, mm, &bm));
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < F; j++)
        for (int q = 0, r = 0; q < m; q++)
          if (q != i) Am[r++ + j * mm] = A0(q, j);
      for (int q = 0, r = 0; q < m; q++)
        if (q != i) bm[r++] = q < n ? Y[q] : 0.0;
      lwork = -1;
      dgels_("N", &mm, &F, &one, Am, &mm, bm, &mm, &wq, &lwork, &info, 1);
      lwork = (int)wq + 1;
      PetscCall(PetscMalloc1(lwork, &work));
      dgels_("N", &mm, &F, &one, Am, &mm, bm, &mm, work, &lwork, &info, 1);
      PetscCall(PetscFree(work));
      double zi = 0;
      for (int j = 0; j < F; j++) zi += A0(i, j) * bm[j];
      loo += (Y[i] - zi) * (Y[i] - zi);
    }
    loo = sqrt(loo / n);
    PetscCall(MapSurrogateGetDiagnostics(s, 0, &d));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "T=%d ridge %g: LOO %.10e vs LAPACK refits %.10e\n", T, ridge, d.loo_rmse, loo));
    CHECK(fabs(d.loo_rmse - loo) <= 1e-10 * loo, "T=%d ridge %g: LOO %.10e vs LAPACK refits %.10e", T, ridge, d.loo_rmse, loo);
    PetscCall(PetscFree2(Am, bm));
  }
#undef A0
  PetscCall(PetscFree(A0c));
  PetscCall(MapSurrogateDestroy(&s));
  PetscCall(PetscFree6(C, Y, th, A, b, sc));
  PetscFunctionReturn(0);
}

/* (c)/(e) PDGELS on the configured grid vs LAPACK dgels_ on every rank */
static PetscErrorCode test_vs_lapack(int m, int nc, int nrhs)
{
  double      *A, *B, *X, *a, *b, wq, *work;
  int          info, lwork = -1;
  MapSurrogate s;

  PetscFunctionBegin;
  PetscCall(PetscMalloc5(m * nc, &A, m * nrhs, &B, nc * nrhs, &X, m * nc, &a, m * nrhs, &b));
  for (int i = 0; i < m * nc; i++) A[i] = 2 * MapRngU01(5, 1, i) - 1;
  for (int i = 0; i < m * nrhs; i++) B[i] = 2 * MapRngU01(5, 2, i) - 1;
  PetscCall(MapSurrogateCreate(PETSC_COMM_WORLD, &s));
  PetscCall(MapSurrogateSetFromOptions(s));
  PetscCall(MapSurrogateLeastSquares(s, m, nc, nrhs, A, B, X));
  PetscCall(PetscArraycpy(a, A, m * nc));
  PetscCall(PetscArraycpy(b, B, m * nrhs));
  dgels_("N", &m, &nc, &nrhs, a, &m, b, &m, &wq, &lwork, &info, 1);
  lwork = (int)wq + 1;
  PetscCall(PetscMalloc1(lwork, &work));
  dgels_("N", &m, &nc, &nrhs, a, &m, b, &m, work, &lwork, &info, 1);
  PetscCall(PetscFree(work));
  CHECK(info == 0, "dgels_ info %d", info);
  double err = 0, nrm = 0;
  for (int r = 0; r < nrhs; r++)
    for (int j = 0; j < nc; j++) {
      err = PetscMax(err, fabs(X[r * nc + j] - b[r * m + j]));
      nrm = PetscMax(nrm, fabs(b[r * m + j]));
    }
  double gerr;
  MPI_Allreduce(&err, &gerr, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD);
  PetscCall(MapSurrogateView(s, NULL));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "PDGELS vs dgels_ %dx%d, %d rhs: max rel diff %.3e (tol 1e-12)\n", m, nc, nrhs, gerr / nrm));
  CHECK(gerr / nrm <= 1e-12, "PDGELS vs dgels_: %.3e", gerr / nrm);
  PetscCall(MapSurrogateDestroy(&s));
  PetscCall(PetscFree5(A, B, X, a, b));
  PetscFunctionReturn(0);
}

/* (f) clean, collective errors */
static PetscErrorCode expect_fit_error(const char *what, int T, int n, const double *C, const double *Y, const char *needle)
{
  MapSurrogate   s;
  MapLink        link = MAP_LINK_IDENTITY;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCall(MapSurrogateCreate(PETSC_COMM_WORLD, &s));
  PetscCall(MapSurrogateSetFromOptions(s));
  errmsg[0] = 0;
  PetscCall(PetscPushErrorHandler(capture_error, NULL));
  ierr = MapSurrogateFit(s, T, n, C, 1, Y, &link);
  PetscCall(PetscPopErrorHandler());
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "%s: error %d: %s\n", what, (int)ierr, errmsg));
  CHECK(ierr != 0, "%s: expected an error", what);
  CHECK(strstr(errmsg, needle) != NULL, "%s: message lacks \"%s\"", what, needle);
  PetscCall(MapSurrogateDestroy(&s));
  PetscFunctionReturn(0);
}

static PetscErrorCode test_errors(void)
{
  int     T = 8, n = 90;
  double *C, *Y;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(n * T, &C, n, &Y));
  /* the reference lattice's failure mode at T >= 8: points in {0,1}^T, where c_i^2 = c_i */
  for (int i = 0; i < n; i++) {
    for (int t = 0; t < T; t++) C[i * T + t] = MapRngU01(9, 1, i * T + t) < 0.5 ? 0.0 : 1.0;
    Y[i] = 0.5 + 0.1 * C[i * T];
  }
  PetscCall(expect_fit_error("rank-deficient {0,1}^8 design", T, n, C, Y, "numerical rank 37"));
  PetscCall(expect_fit_error("too few samples", 3, 6, C, Y, "n = 6 samples, F = 10"));
  Y[3] = NAN;
  PetscCall(expect_fit_error("NaN target", 2, 12, C, Y, "sample 3, target 0"));
  {
    MapSurrogate   s;
    PetscErrorCode ierr;
    int            size;
    double         X[2];
    MPI_Comm_size(PETSC_COMM_WORLD, &size);
    PetscCall(MapSurrogateCreate(PETSC_COMM_WORLD, &s));
    PetscCall(MapSurrogateSetGrid(s, size + 1, 1, 0));
    errmsg[0] = 0;
    PetscCall(PetscPushErrorHandler(capture_error, NULL));
    ierr = MapSurrogateLeastSquares(s, 4, 2, 1, C, Y, X);
    PetscCall(PetscPopErrorHandler());
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "grid larger than the job: error %d: %s\n", (int)ierr, errmsg));
    CHECK(ierr != 0 && strstr(errmsg, "needs"), "grid larger than the job: expected an error");
    PetscCall(MapSurrogateDestroy(&s));
  }
  PetscCall(PetscFree2(C, Y));
  PetscFunctionReturn(0);
}

/* (g) missing targets (MapSurrogateSetAllowMissing): targets 1 and 2 are unobserved at the same third
   of the samples, target 3 at another third. Each must be the same bits as a fit on its observed
   samples alone (1 and 2 together, as they share a QR); target 0 (complete) the same bits as a fit of
   the complete data; too few observed samples name the target. */
static PetscErrorCode test_missing(int T)
{
  int          n = 3 * (T + 1) * (T + 2), F = (T + 1) * (T + 2) / 2, K = 4;
  double      *C, *Y, *Cs, *Ys, th[1024];
  MapLink      link[4] = {MAP_LINK_SIGMOID, MAP_LINK_SIGMOID, MAP_LINK_SOFTPLUS, MAP_LINK_SIGMOID};
  MapSurrogate s, t;

  PetscFunctionBegin;
  PetscCall(PetscMalloc4(n * T, &C, n * K, &Y, n * T, &Cs, n * K, &Ys));
  make_problem(T, n, 31, 1.0, C, th);
  for (int i = 0; i < n; i++)
    for (int k = 0; k < K; k++) {
      double z = quad(T, &C[i * T], th) * (1 + 0.3 * k) + 0.05 * sin(7.0 * i + k);
      Y[i * K + k] = link[k] == MAP_LINK_SOFTPLUS ? softplus(z) : sigm(z);
      if ((k == 1 || k == 2) && i >= T && i % 3 == 1) Y[i * K + k] = NAN;
      if (k == 3 && i >= T && i % 3 == 2) Y[i * K + k] = NAN;
    }
  PetscCall(MapSurrogateCreate(PETSC_COMM_WORLD, &s));
  PetscCall(MapSurrogateSetFromOptions(s));
  PetscCall(MapSurrogateSetAllowMissing(s, PETSC_TRUE));
  PetscCall(MapSurrogateFit(s, T, n, C, K, Y, link));
  /* each mask group refitted alone on its observed rows */
  int groups[3][2] = {{0, -1}, {1, 2}, {3, -1}};
  for (int g = 0; g < 3; g++) {
    int Kg = groups[g][1] < 0 ? 1 : 2, ng = 0;
    MapLink lg[2];
    for (int i = 0; i < n; i++) {
      if (isnan(Y[i * K + groups[g][0]])) continue;
      for (int u = 0; u < T; u++) Cs[ng * T + u] = C[i * T + u];
      for (int k = 0; k < Kg; k++) Ys[ng * Kg + k] = Y[i * K + groups[g][k]];
      ng++;
    }
    for (int k = 0; k < Kg; k++) lg[k] = link[groups[g][k]];
    PetscCall(MapSurrogateCreate(PETSC_COMM_WORLD, &t));
    PetscCall(MapSurrogateSetFromOptions(t));
    PetscCall(MapSurrogateFit(t, T, ng, Cs, Kg, Ys, lg));
    for (int k = 0; k < Kg; k++) {
      const double *a, *b;
      PetscCall(MapSurrogateGetParams(s, groups[g][k], &a));
      PetscCall(MapSurrogateGetParams(t, k, &b));
      CHECK(!memcmp(a, b, sizeof(double) * F), "T=%d missing: target %d differs from its fit on its %d observed samples", T, groups[g][k], ng);
    }
    PetscCall(MapSurrogateDestroy(&t));
  }
  PetscCall(MapSurrogateDestroy(&s));
  /* a target observed at fewer samples than unknowns: the error names it */
  for (int i = F - 1; i < n; i++) Y[i * K + 3] = NAN;
  PetscCall(MapSurrogateCreate(PETSC_COMM_WORLD, &s));
  PetscCall(MapSurrogateSetFromOptions(s));
  PetscCall(MapSurrogateSetAllowMissing(s, PETSC_TRUE));
  errmsg[0] = 0;
  PetscCall(PetscPushErrorHandler(capture_error, NULL));
  PetscErrorCode ierr = MapSurrogateFit(s, T, n, C, K, Y, link);
  PetscCall(PetscPopErrorHandler());
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "target observed at fewer samples than unknowns: error %d: %s\n", (int)ierr, errmsg));
  CHECK(ierr != 0 && strstr(errmsg, "target 3 (observed at"), "T=%d missing: expected an error naming target 3", T);
  PetscCall(MapSurrogateDestroy(&s));
  PetscCall(PetscFree4(C, Y, Cs, Ys));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "missing targets T=%d: done\n", T));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  PetscBool timing = PETSC_FALSE;

  PetscCall(PetscInitialize(&argc, &argv, NULL, "MapSurrogate tests"));
  PetscCall(PetscOptionsGetBool(NULL, NULL, "-test_timing", &timing, NULL));
  PetscCall(test_vs_lapack(90, 45, 3));
  PetscCall(test_vs_lapack(300, 120, 2));
  PetscCall(test_recovery(2));
  PetscCall(test_recovery(3));
  PetscCall(test_recovery(8));
  if (timing)
    for (int T = 2; T <= 8; T += 3) PetscCall(test_timing(T));
  {
    PetscInt Tbig = 0;
    PetscCall(PetscOptionsGetInt(NULL, NULL, "-test_timing_T", &Tbig, NULL));
    if (Tbig > 0) PetscCall(test_timing((int)Tbig));
  }
  PetscCall(test_loo(2, NULL));
  PetscCall(test_loo(3, NULL));
  PetscCall(test_ridge(3, 1e-2));
  PetscCall(test_errors());
  PetscCall(test_missing(2));
  PetscCall(test_missing(3));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "%s: %d failure(s)\n", nfail ? "FAILED" : "PASSED", nfail));
  PetscCall(PetscFinalize());
  return nfail ? 1 : 0;
}
