/* surrogate_fit: the fitting core of MapSurrogate, run redundantly on the ranks of the BLACS grid.
 * Every grid rank holds the same inputs and gets the same bits from each PDGELS solve, so all
 * decisions (step accepted, converged, rank deficient) agree without extra communication.
 *
 * Scaling: the features are divided by their column 2-norms before any solve (theta~_j = s_j theta_j);
 * at T = 8 on [0,1]^T this takes the condition number of the design from ~1e3-1e4 to ~1e1-1e2, and
 * makes the LM damping and the ridge act on comparable columns. */
#include "surrogateimpl.h"
#include "scalapack_impl.h"
#include <float.h>

/* S = sum_i (y_i - g(Xs_i theta))^2 + ridge sum_{j>=1} theta_j^2; z and r (may be NULL) receive
   the linear predictor and the residuals. */
static double map_objective(MapLink link, int n, int F, const double *Xs, const double *y, const double *theta, double ridge,
                            double *z, double *r)
{
  double S = 0;
  for (int i = 0; i < n; i++) {
    double zi = 0;
    for (int j = 0; j < F; j++) zi += Xs[i + (size_t)j * n] * theta[j];
    double ri = y[i] - MapLinkEval(link, zi);
    if (z) z[i] = zi;
    if (r) r[i] = ri;
    S += ri * ri;
  }
  for (int j = 1; j < F; j++) S += ridge * theta[j] * theta[j];
  return S;
}

/* sum_j w_j^2 with R^T w = v (forward substitution): the leverage of row v for upper-triangular R */
static double map_leverage(int F, const double *R, const double *v, size_t stride)
{
  double w[4096], *wp = w, h = 0;
  if (F > 4096 && PetscMalloc1(F, &wp)) return NAN;
  for (int j = 0; j < F; j++) {
    double t = v[(size_t)j * stride];
    for (int k = 0; k < j; k++) t -= R[k + (size_t)j * F] * wp[k];
    wp[j] = t / R[j + (size_t)j * F];
    h += wp[j] * wp[j];
  }
  if (wp != w) (void)PetscFree(wp);
  return h;
}

/* numerical rank of Xs[n*F] by pivoted QR (LAPACK dgeqp3): |R_jj| > 1e-10 |R_00| */
static PetscErrorCode map_numerical_rank(int n, int F, const double *Xs, int *rank)
{
  double *a, *tau, *work, wq;
  int    *jpvt, info, lwork = -1;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2((size_t)n * F, &a, F, &tau));
  PetscCall(PetscCalloc1(F, &jpvt));
  PetscCall(PetscArraycpy(a, Xs, (size_t)n * F));
  dgeqp3_(&n, &F, a, &n, jpvt, tau, &wq, &lwork, &info);
  lwork = (int)wq + 1;
  PetscCall(PetscMalloc1(lwork, &work));
  dgeqp3_(&n, &F, a, &n, jpvt, tau, work, &lwork, &info);
  PetscCheck(!info, PETSC_COMM_SELF, PETSC_ERR_LIB, "dgeqp3_ (%d x %d) failed: info %d", n, F, info);
  int kmax = PetscMin(n, F);
  *rank    = 0;
  for (int j = 0; j < kmax; j++)
    if (fabs(a[j + (size_t)j * n]) > 1e-10 * fabs(a[0])) (*rank)++;
  PetscCall(PetscFree(work));
  PetscCall(PetscFree(jpvt));
  PetscCall(PetscFree2(a, tau));
  PetscFunctionReturn(0);
}

/* Levenberg-Marquardt on S(theta) (scaled space). Each trial step solves
     [J; sqrt(ridge) E; sqrt(lambda) D] dx = [r; -sqrt(ridge) E theta; 0]
   by PDGELS, with D_j = running max of the column norms of J (More's scaling, so the method is
   invariant to the column scaling). Stops on: an exact fit; residual orthogonal to the columns of J
   (cosine <= gtol, MINPACK's test); a relative step ||D dx|| <= xtol ||D theta||; an accepted step that
   lowers S by <= ftol S (near the optimum of a non-zero-residual fit LM converges only linearly,
   ~0.45 per step here: the last 20 of 42 steps at T = 8 moved S by < 1e-10 relative); no descent found;
   lm_maxit iterations. *iters = accepted steps. */
static PetscErrorCode map_lm(MapSurrogate s, MapLink link, int n, int F, const double *Xs, const double *y, double *theta, double xtol,
                             double ftol, int *iters)
{
  double  ridge = s->ridge, sr = sqrt(ridge);
  int     nr = ridge > 0 ? F - 1 : 0, m = n + nr + F;
  double *z, *r, *zt, *rt, *A, *rhs, *dx, *D, *trial, *cn;
  double  S, lambda = 1e-3, Sy = 0;

  PetscFunctionBegin;
  PetscCall(PetscMalloc4(n, &z, n, &r, n, &zt, n, &rt));
  PetscCall(PetscMalloc4(F, &dx, F, &D, F, &trial, F, &cn));
  PetscCall(PetscCalloc2((size_t)m * F, &A, m, &rhs));
  for (int i = 0; i < n; i++) Sy += y[i] * y[i];
  for (int j = 0; j < F; j++) D[j] = 0;
  S      = map_objective(link, n, F, Xs, y, theta, ridge, z, r);
  *iters = 0;
  while (*iters < s->lm_maxit) {
    if (S <= 1e-30 * PetscMax(Sy, 1e-300)) break;
    PetscCall(PetscArrayzero(A, (size_t)m * F));
    for (int i = 0; i < n; i++) rhs[i] = r[i];
    for (int j = 0; j < F; j++) {
      for (int i = 0; i < n; i++) A[i + (size_t)j * m] = MapLinkDeriv(link, z[i]) * Xs[i + (size_t)j * n];
      if (j >= 1 && nr) {
        A[n + j - 1 + (size_t)j * m] = sr;
        rhs[n + j - 1]               = -sr * theta[j];
      }
    }
    for (int i = n + nr; i < m; i++) rhs[i] = 0;
    double rn = 0, gmax = 0;
    for (int i = 0; i < n + nr; i++) rn += rhs[i] * rhs[i];
    rn = sqrt(rn);
    for (int j = 0; j < F; j++) {
      double g = 0, c = 0;
      for (int i = 0; i < n + nr; i++) {
        g += A[i + (size_t)j * m] * rhs[i];
        c += A[i + (size_t)j * m] * A[i + (size_t)j * m];
      }
      cn[j] = sqrt(c);
      if (cn[j] > 0 && rn > 0) gmax = PetscMax(gmax, fabs(g) / (cn[j] * rn));
      D[j] = PetscMax(D[j], cn[j]);
      if (D[j] == 0) D[j] = 1;
    }
    if (gmax <= s->gtol) break;
    PetscBool accepted = PETSC_FALSE;
    double    St       = S;
    for (int inner = 0; inner < 24 && !accepted; inner++) {
      double sl = sqrt(lambda);
      for (int j = 0; j < F; j++) A[n + nr + j + (size_t)j * m] = sl * D[j];
      PetscCall(MapSurrogateGridSolve(s, m, F, 1, A, rhs, dx, NULL));
      for (int j = 0; j < F; j++) trial[j] = theta[j] + dx[j];
      St = map_objective(link, n, F, Xs, y, trial, ridge, zt, rt);
      if (St < S) accepted = PETSC_TRUE;
      else lambda *= 10;
    }
    if (!accepted) break;
    (*iters)++;
    double dxn = 0, thn = 0;
    for (int j = 0; j < F; j++) {
      dxn += D[j] * D[j] * dx[j] * dx[j];
      thn += D[j] * D[j] * trial[j] * trial[j];
    }
    PetscCall(PetscArraycpy(theta, trial, F));
    PetscCall(PetscArraycpy(z, zt, n));
    PetscCall(PetscArraycpy(r, rt, n));
    PetscBool small_gain = S - St <= ftol * S ? PETSC_TRUE : PETSC_FALSE;
    S                    = St;
    lambda               = PetscMax(lambda * 0.1, 1e-16);
    if (sqrt(dxn) <= xtol * (sqrt(thn) + xtol) || small_gain) break;
  }
  PetscCall(PetscFree2(A, rhs));
  PetscCall(PetscFree4(dx, D, trial, cn));
  PetscCall(PetscFree4(z, r, zt, rt));
  PetscFunctionReturn(0);
}

/* Leave-one-out residuals. With a ridge, every fold keeps the full-data feature scaling, so the
   penalty is the same problem in every fold (and the hat-matrix formula is exact for the identity
   link). Nonlinear target: exact refits (warm-started at the full fit) when
   n <= loo_refit_max; otherwise the linearisation at the optimum, e_i / (1 - h_i) with h_i the
   leverage of row i of the Gauss-Newton Jacobian [J; sqrt(ridge) E] -- exact for the identity
   link, first-order accurate for the others. Returns the LOO RMSE. */
static PetscErrorCode map_loo_nonlinear(MapSurrogate s, MapLink link, int n, int F, const double *Xs, const double *y,
                                        const double *theta, double *loo)
{
  double sum = 0;

  PetscFunctionBegin;
  if (n <= s->loo_refit_max) {
    double *Xm, *ym, *th;
    int     it;
    PetscCall(PetscMalloc3((size_t)(n - 1) * F, &Xm, n - 1, &ym, F, &th));
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < F; j++) {
        for (int q = 0, p = 0; q < n; q++)
          if (q != i) Xm[p++ + (size_t)j * (n - 1)] = Xs[q + (size_t)j * n];
      }
      for (int q = 0, p = 0; q < n; q++)
        if (q != i) ym[p++] = y[q];
      PetscCall(PetscArraycpy(th, theta, F));
      /* a diagnostic: looser stops than the fit itself (still within 1e-6 of exact refits), fewer steps */
      PetscCall(map_lm(s, link, n - 1, F, Xm, ym, th, PetscMax(s->xtol, 1e-7), PetscMax(s->ftol, 1e-9), &it));
      double zi = 0;
      for (int j = 0; j < F; j++) zi += Xs[i + (size_t)j * n] * th[j];
      double e = y[i] - MapLinkEval(link, zi);
      sum += e * e;
    }
    PetscCall(PetscFree3(Xm, ym, th));
  } else {
    int     nr = s->ridge > 0 ? F - 1 : 0, m = n + nr;
    double *A, *rhs, *x, *R, *z, *r;
    PetscCall(PetscCalloc3((size_t)m * F, &A, m, &rhs, F, &x));
    PetscCall(PetscMalloc3((size_t)F * F, &R, n, &z, n, &r));
    (void)map_objective(link, n, F, Xs, y, theta, s->ridge, z, r);
    for (int j = 0; j < F; j++) {
      for (int i = 0; i < n; i++) A[i + (size_t)j * m] = MapLinkDeriv(link, z[i]) * Xs[i + (size_t)j * n];
      if (j >= 1 && nr) A[n + j - 1 + (size_t)j * m] = sqrt(s->ridge);
    }
    for (int i = 0; i < n; i++) rhs[i] = r[i];
    PetscCall(MapSurrogateGridSolve(s, m, F, 1, A, rhs, x, R));
    for (int i = 0; i < n; i++) {
      double h = map_leverage(F, R, A + i, (size_t)m);
      double e = 1 - h > 1e-12 ? r[i] / (1 - h) : INFINITY;
      sum += e * e;
    }
    PetscCall(PetscFree3(R, z, r));
    PetscCall(PetscFree3(A, rhs, x));
  }
  *loo = sqrt(sum / n);
  PetscFunctionReturn(0);
}

static PetscErrorCode map_rank_message(MapSurrogate s, int n, const double *Xs, double rcond, int *status, char *msg)
{
  int rank = 0;

  PetscFunctionBegin;
  char detail[160];

  if (n > 0) PetscCall(map_numerical_rank(n, s->F, Xs, &rank));
  if (n < s->F) snprintf(detail, sizeof(detail), "fewer samples than unknowns");
  else snprintf(detail, sizeof(detail), "reciprocal condition estimate %.3g < -map_surrogate_rcond_min %.3g", rcond, (double)s->rcond_min);
  *status = 1;
  snprintf(msg, MAP_SURROGATE_MSG_LEN,
           "surrogate design is rank deficient: T = %d tasks, n = %d samples, F = %d quadratic features, numerical rank %d "
           "(needs %d; %s). Use more or different samples (e.g. a lattice on {0,1}^T has c_i^2 = c_i, so the quadratic is "
           "not identifiable)",
           s->T, n, s->F, rank, s->F, detail);
  PetscFunctionReturn(0);
}

/* the quadratic design X[n*F] (column-major) of the samples C[n*T], and Xs = X with each column scaled to unit norm
   (scale[F]); phi[F] is scratch */
static void map_fit_design(int T, int F, int n, const double *C, double *X, double *Xs, double *scale, double *phi)
{
  for (int i = 0; i < n; i++) {
    MapQuadraticFeatures(T, C + (size_t)i * T, phi);
    for (int j = 0; j < F; j++) X[i + (size_t)j * n] = phi[j];
  }
  for (int j = 0; j < F; j++) {
    double q = 0;
    for (int i = 0; i < n; i++) q += X[i + (size_t)j * n] * X[i + (size_t)j * n];
    scale[j] = q > 0 ? sqrt(q) : 1.0;
    for (int i = 0; i < n; i++) Xs[i + (size_t)j * n] = X[i + (size_t)j * n] / scale[j];
  }
}

/* reciprocal 1-norm condition estimate of the upper triangular R[F*F] */
static PetscErrorCode map_fit_rcond(int F, const double *R, double *rcond)
{
  double *work;
  int    *iwork, info;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(3 * F, &work, F, &iwork));
  dtrcon_("1", "U", "N", &F, R, &F, rcond, work, iwork, &info, 1, 1, 1);
  PetscCall(PetscFree2(work, iwork));
  PetscCheck(!info, PETSC_COMM_SELF, PETSC_ERR_LIB, "dtrcon_ (%d x %d) failed: info %d", F, F, info);
  PetscFunctionReturn(0);
}

/* Finishes target k of map_fit_targets from its linear(ised) fit Th[:,k]: the nonlinear fit for a non-identity
   link, the leave-one-out error, s->theta and s->diag at tg[k]; yk[n] and th[F] are scratch. */
static PetscErrorCode map_fit_one_target(MapSurrogate s, int n, int m, int K, int k, const int *tg, const double *Y, const double *X,
                                         const double *Xs, const double *scale, const double *A, const double *R, const double *Th,
                                         double rcond, double *yk, double *th, int *status, char *msg)
{
  int                F    = s->F;
  MapLink            link = s->link[tg[k]];
  MapFitDiagnostics *d    = &s->diag[tg[k]];
  double             loo = 0, ss = 0, st = 0, mean = 0;

  PetscFunctionBegin;
  for (int i = 0; i < n; i++) yk[i] = Y[(size_t)i * K + k];
  PetscCall(PetscArraycpy(th, Th + (size_t)k * F, F));
  d->iterations = 0;
  if (link == MAP_LINK_IDENTITY) {
    for (int i = 0; i < n; i++) {
      double zi = 0;
      for (int j = 0; j < F; j++) zi += Xs[i + (size_t)j * n] * th[j];
      double h = map_leverage(F, R, A + i, (size_t)m);
      double e = 1 - h > 1e-12 ? (yk[i] - zi) / (1 - h) : INFINITY;
      loo += e * e;
    }
    loo = sqrt(loo / n);
  } else {
    PetscCall(map_lm(s, link, n, F, Xs, yk, th, s->xtol, s->ftol, &d->iterations));
    PetscCall(map_loo_nonlinear(s, link, n, F, Xs, yk, th, &loo));
  }
  for (int j = 0; j < F; j++) s->theta[(size_t)tg[k] * F + j] = th[j] / scale[j];
  /* diagnostics in metric space with the unscaled parameters, as MapSurrogatePredict sees them */
  for (int i = 0; i < n; i++) mean += yk[i];
  mean /= n;
  for (int i = 0; i < n; i++) {
    double zi = 0;
    for (int j = 0; j < F; j++) zi += X[i + (size_t)j * n] * s->theta[(size_t)tg[k] * F + j];
    double e = yk[i] - MapLinkEval(link, zi);
    ss += e * e;
    st += (yk[i] - mean) * (yk[i] - mean);
  }
  d->rmse          = sqrt(ss / n);
  d->r2            = st > 0 ? 1 - ss / st : (ss == 0 ? 1.0 : 0.0); /* constant target: 1 iff reproduced exactly */
  d->loo_rmse      = loo;
  d->cond          = 1.0 / rcond;
  PetscBool finite = PETSC_TRUE;
  for (int j = 0; j < F; j++) finite = finite && isfinite(s->theta[(size_t)tg[k] * F + j]);
  if (!finite && !*status) {
    *status = 2;
    snprintf(msg, MAP_SURROGATE_MSG_LEN, "surrogate fit of target %d (link %s) diverged: non-finite parameters", tg[k], MapLinkName(link));
  }
  PetscFunctionReturn(0);
}

/* Fits the K targets tg[] on the n samples C[n*T], Y[n*K] (column k is target tg[k]) into s->theta
   and s->diag at those targets. */
static PetscErrorCode map_fit_targets(MapSurrogate s, int n, const double *C, int K, const int *tg, const double *Y, int *status, char *msg)
{
  int     T = s->T, F = s->F;
  int     nr = s->ridge > 0 ? F - 1 : 0, m = n + nr;
  double *X, *Xs, *scale, *A, *Z, *Th, *R, *phi, rcond = 0;

  PetscFunctionBegin;
  *status = 0;
  msg[0]  = 0;
  PetscCall(PetscMalloc4((size_t)n * F, &X, (size_t)n * F, &Xs, F, &scale, F, &phi));
  map_fit_design(T, F, n, C, X, Xs, scale, phi);
  if (n < F) {
    PetscCall(map_rank_message(s, n, Xs, 0.0, status, msg));
    goto done;
  }

  /* linear(ised) fit of all targets at once: one QR, K right-hand sides */
  PetscCall(PetscCalloc2((size_t)m * F, &A, (size_t)m * K, &Z));
  PetscCall(PetscMalloc2((size_t)F * K, &Th, (size_t)F * F, &R));
  for (int j = 0; j < F; j++) {
    for (int i = 0; i < n; i++) A[i + (size_t)j * m] = Xs[i + (size_t)j * n];
    if (j >= 1 && nr) A[n + j - 1 + (size_t)j * m] = sqrt(s->ridge);
  }
  for (int k = 0; k < K; k++)
    for (int i = 0; i < n; i++) Z[i + (size_t)k * m] = MapLinkInverseClipped(s->link[tg[k]], Y[(size_t)i * K + k]);
  PetscCall(MapSurrogateGridSolve(s, m, F, K, A, Z, Th, R));
  PetscCall(map_fit_rcond(F, R, &rcond));
  if (!(rcond >= s->rcond_min)) {
    PetscCall(map_rank_message(s, n, Xs, rcond, status, msg));
  } else {
    double *yk, *th;
    PetscCall(PetscMalloc2(n, &yk, F, &th));
    for (int k = 0; k < K; k++) PetscCall(map_fit_one_target(s, n, m, K, k, tg, Y, X, Xs, scale, A, R, Th, rcond, yk, th, status, msg));
    PetscCall(PetscFree2(yk, th));
  }
  PetscCall(PetscFree2(Th, R));
  PetscCall(PetscFree2(A, Z));
done:
  PetscCall(PetscFree4(X, Xs, scale, phi));
  PetscFunctionReturn(0);
}

/* Targets observed at the same samples are fitted together (one QR, as many right-hand sides);
   with complete data that is one group of every target on every sample. */
PetscErrorCode MapSurrogateFitOnGrid(MapSurrogate s, const double *C, const double *Y, int *status, char *msg)
{
  int        T = s->T, n = (int)s->n, K = s->ntarget, *tg;
  PetscBool *done, *rows;
  double    *Cg, *Yg;

  PetscFunctionBegin;
  *status = 0;
  msg[0]  = 0;
  PetscCall(PetscCalloc3(K, &done, (size_t)n * K, &rows, K, &tg));
  PetscCall(PetscMalloc2((size_t)n * T, &Cg, (size_t)n * K, &Yg));
  for (int k = 0; k < K; k++)
    for (int i = 0; i < n; i++) rows[(size_t)k * n + i] = isnan(Y[(size_t)i * K + k]) ? PETSC_FALSE : PETSC_TRUE;
  for (int k0 = 0; k0 < K && !*status; k0++) {
    int        Kg = 0, ng = 0;
    PetscBool *mine = rows + (size_t)k0 * n;
    if (done[k0]) continue;
    for (int k = k0; k < K; k++) {
      PetscBool same = !done[k] ? PETSC_TRUE : PETSC_FALSE;
      for (int i = 0; i < n && same; i++) same = rows[(size_t)k * n + i] == mine[i] ? PETSC_TRUE : PETSC_FALSE;
      if (same) {
        done[k]  = PETSC_TRUE;
        tg[Kg++] = k;
      }
    }
    for (int i = 0; i < n; i++) {
      if (!mine[i]) continue;
      for (int t = 0; t < T; t++) Cg[(size_t)ng * T + t] = C[(size_t)i * T + t];
      for (int k = 0; k < Kg; k++) Yg[(size_t)ng * Kg + k] = Y[(size_t)i * K + tg[k]];
      ng++;
    }
    PetscCall(map_fit_targets(s, ng, Cg, Kg, tg, Yg, status, msg));
    if (*status && ng < n) {
      char inner[MAP_SURROGATE_MSG_LEN];
      PetscCall(PetscStrncpy(inner, msg, sizeof(inner)));
      snprintf(msg, MAP_SURROGATE_MSG_LEN, "target %d (observed at %d of %d samples): %s", tg[0], ng, n, inner);
    }
  }
  PetscCall(PetscFree2(Cg, Yg));
  PetscCall(PetscFree3(done, rows, tg));
  PetscFunctionReturn(0);
}
