/* pareto_smooth: the smooth max of the Chebyshev scalarisation (and the single-objective and
 * weighted-sum forms) with its gradient and Hessian, and the dense projected Newton method that
 * minimises it inside a TAOSHELL. pareto_tao.c opens with the algorithm and the measured costs that
 * chose it. */
#include "paretoimpl.h"
#include <petsctao.h>
#include <petscblaslapack.h>
#include <math.h>

/* smooth (or single-objective / weighted-sum) objective and gradient at c[T] (uses s->f, s->J) */
static PetscErrorCode MapParetoSmoothAt(MapParetoScalarCtx *s, const double *c, double *obj, double *g)
{
  MapPareto p = s->p;
  const int T = p->T, m = p->m;
  double    coef[MAP_MAX_TASKS];

  PetscFunctionBegin;
  PetscCall(p->fn(p->ctx, c, s->f, s->J));
  /* obj = phi(a), coef_i = d phi / d f_i */
  if (s->objective >= 0) {
    for (int i = 0; i < m; i++) coef[i] = s->prob[i] = 0;
    *obj               = -s->f[s->objective];
    coef[s->objective] = -1;
  } else if (p->scal == MAP_PARETO_WEIGHTED_SUM) {
    *obj = 0;
    for (int i = 0; i < m; i++) {
      s->prob[i] = 0;
      *obj += s->w[i] * (p->utopia[i] - s->f[i]) / p->range[i];
      coef[i] = -s->w[i] / p->range[i];
    }
  } else {
    double mx = -PETSC_MAX_REAL, z = 0, sum = 0;
    for (int i = 0; i < m; i++)
      if (s->w[i] > 0) mx = PetscMax(mx, s->w[i] * (p->utopia[i] - s->f[i]) / p->range[i]);
    for (int i = 0; i < m; i++) {
      coef[i] = 0;
      if (s->w[i] <= 0) continue;
      double wa = s->w[i] * (p->utopia[i] - s->f[i]) / p->range[i];
      coef[i]   = exp((wa - mx) / s->tau); /* softmax numerators, shifted for overflow */
      z += coef[i];
      sum += wa;
    }
    *obj = mx + s->tau * log(z) + p->rho * sum;
    for (int i = 0; i < m; i++) {
      s->prob[i] = coef[i] / z;
      coef[i]    = s->w[i] > 0 ? -(s->prob[i] + p->rho) * s->w[i] / p->range[i] : 0;
    }
  }
  for (int i = 0; i < m; i++) s->coef[i] = coef[i];
  for (int j = 0; j < T; j++) {
    double d = 0;
    for (int i = 0; i < m; i++) d += coef[i] * s->J[i * T + j];
    g[j] = d;
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode MapParetoFormSmooth(Tao tao, Vec X, PetscReal *obj, Vec G, void *vctx)
{
  MapParetoScalarCtx *s = (MapParetoScalarCtx *)vctx;
  const PetscScalar  *x;
  PetscScalar        *g;

  PetscFunctionBegin;
  PetscCall(VecGetArrayRead(X, &x));
  PetscCall(PetscArraycpy(s->x, x, s->p->T));
  PetscCall(VecRestoreArrayRead(X, &x));
  PetscCall(VecGetArray(G, &g));
  PetscCall(MapParetoSmoothAt(s, s->x, obj, g));
  PetscCall(VecRestoreArray(G, &g));
  PetscFunctionReturn(0);
}

/* sum_i coef_i Hess f_i at c by central differences of the objectives' Jacobians (when no
   MapObjectiveHessianFn is set): the surrogates are smooth on the scale of the box, so h = 1e-5
   gives ~1e-10; symmetrised. Hd[T*T] column-major. */
static PetscErrorCode MapParetoObjectiveHessianFD(MapParetoScalarCtx *s, const double *c, double *Hd)
{
  MapPareto p = s->p;
  const int T = p->T, m = p->m;
  double   *xh = s->hwork, *fh = xh + T, *Jp = fh + m, *Jm = Jp + m * T;

  PetscFunctionBegin;
  PetscCall(PetscArraycpy(xh, c, T));
  for (int j = 0; j < T; j++) {
    double xj = xh[j], h = 1e-5 * (1 + PetscAbsReal(xj));
    xh[j] = xj + h;
    PetscCall(p->fn(p->ctx, xh, fh, Jp));
    xh[j] = xj - h;
    PetscCall(p->fn(p->ctx, xh, fh, Jm));
    xh[j] = xj;
    for (int k = 0; k < T; k++) {
      double dd = 0;
      for (int i = 0; i < m; i++) dd += s->coef[i] * (Jp[i * T + k] - Jm[i * T + k]);
      Hd[k + j * T] = dd / (2 * h);
    }
  }
  for (int j = 0; j < T; j++)
    for (int k = 0; k < j; k++) Hd[k + j * T] = Hd[j + k * T] = 0.5 * (Hd[k + j * T] + Hd[j + k * T]);
  PetscFunctionReturn(0);
}

/* Hessian of the smooth form at c, after MapParetoSmoothAt(c) (which left f, J, coef, prob in s):
     H = sum_i coef_i Hess f_i + (1/tau) [sum_i p_i v_i v_i^T - (sum_i p_i v_i)(sum_i p_i v_i)^T],
   v_i = -(w_i/r_i) grad f_i, p_i the softmax weights (the second term: smooth max only). The
   objectives' own curvature from MapObjectiveHessianFn (analytic) or finite differences; the softmax
   term, which varies on the scale of tau, is exact. Hd[T*T] column-major. */
static PetscErrorCode MapParetoSmoothHessianAt(MapParetoScalarCtx *s, const double *c, double *Hd)
{
  MapPareto p = s->p;
  const int T = p->T, m = p->m;
  double   *v = s->hwork + T + m + 2 * m * T, *vbar = v + T;

  PetscFunctionBegin;
  if (p->hfn) PetscCall(p->hfn(p->ctx, c, s->coef, Hd));
  else PetscCall(MapParetoObjectiveHessianFD(s, c, Hd));
  if (s->objective < 0 && p->scal == MAP_PARETO_CHEBYSHEV) {
    for (int k = 0; k < T; k++) vbar[k] = 0;
    for (int i = 0; i < m; i++) {
      if (s->w[i] <= 0) continue;
      for (int k = 0; k < T; k++) vbar[k] -= s->prob[i] * s->w[i] / p->range[i] * s->J[i * T + k];
    }
    for (int i = 0; i < m; i++) {
      if (s->w[i] <= 0 || s->prob[i] == 0) continue;
      for (int k = 0; k < T; k++) v[k] = -s->w[i] / p->range[i] * s->J[i * T + k];
      for (int j = 0; j < T; j++)
        for (int k = 0; k < T; k++) Hd[k + j * T] += s->prob[i] / s->tau * v[k] * v[j];
    }
    for (int j = 0; j < T; j++)
      for (int k = 0; k < T; k++) Hd[k + j * T] -= vbar[k] * vbar[j] / s->tau;
  }
  PetscFunctionReturn(0);
}

/* Cholesky of the free block of H (n x n, column-major in A) shifted by mu I, in place; *ok = 0 when
   not positive definite */
static void MapCholesky(int n, double *A, double mu, PetscBool *ok)
{
  *ok = PETSC_TRUE;
  for (int j = 0; j < n; j++) {
    double d = A[j + j * n] + mu;
    for (int k = 0; k < j; k++) d -= A[j + k * n] * A[j + k * n];
    if (!(d > 0)) {
      *ok = PETSC_FALSE;
      return;
    }
    d            = sqrt(d);
    A[j + j * n] = d;
    for (int i = j + 1; i < n; i++) {
      double t = A[i + j * n];
      for (int k = 0; k < j; k++) t -= A[i + k * n] * A[j + k * n];
      A[i + j * n] = t / d;
    }
  }
}

/* At a stationary point x (gradient g, value f, and s holding the evaluation at x): if the Hessian's
   block on the variables not held at a bound has an eigenvalue lambda < -1e-8 max|lambda|, try steps
   t v along its eigenvector v (sign: downhill or, with g ~ 0, either), t = 1, 1/2, ..., projected on
   the box, and accept the first that lowers f by 1e-4 |lambda| t^2 / 2. *moved reports success. */
static PetscErrorCode MapParetoNegativeCurvatureStep(MapParetoScalarCtx *s, const double *x, const double *g, double f, double *xt, double *gt,
                                                     double *ft, PetscBool *moved)
{
  MapPareto    p     = s->p;
  const int    T     = p->T;
  int          nfree = 0, free_idx[MAP_NAME_LEN];
  double      *H = s->nwork + 5 * T, *L = H + T * T; /* the Newton direction's work space, free here */
  double       eig[MAP_NAME_LEN], work[8 * MAP_NAME_LEN], lmax = 0, v[MAP_NAME_LEN];
  PetscBLASInt bn, lwork = 8 * MAP_NAME_LEN, info;

  PetscFunctionBegin;
  *moved = PETSC_FALSE;
  for (int j = 0; j < T; j++) {
    double eps = 1e-8 * (p->hi - p->lo);
    if (!((x[j] <= p->lo + eps && g[j] >= 0) || (x[j] >= p->hi - eps && g[j] <= 0))) free_idx[nfree++] = j;
  }
  if (!nfree) PetscFunctionReturn(0);
  PetscCall(MapParetoSmoothHessianAt(s, x, H));
  for (int a = 0; a < nfree; a++)
    for (int b = 0; b < nfree; b++) L[a + b * nfree] = H[free_idx[a] + free_idx[b] * T];
  bn = (PetscBLASInt)nfree;
  LAPACKsyev_("V", "U", &bn, L, &bn, eig, work, &lwork, &info); /* eigenvalues ascending */
  if (info) PetscFunctionReturn(0);
  for (int k = 0; k < nfree; k++) lmax = PetscMax(lmax, PetscAbsReal(eig[k]));
  if (!(eig[0] < -1e-8 * lmax)) PetscFunctionReturn(0);
  double gv = 0;
  for (int j = 0; j < T; j++) v[j] = 0;
  for (int a = 0; a < nfree; a++) {
    v[free_idx[a]] = L[a];
    gv += g[free_idx[a]] * L[a];
  }
  if (gv > 0)
    for (int j = 0; j < T; j++) v[j] = -v[j];
  for (double t = 1; t > 1e-6 && !*moved; t *= 0.5) {
    for (int j = 0; j < T; j++) xt[j] = PetscMin(p->hi, PetscMax(p->lo, x[j] + t * v[j]));
    PetscCall(MapParetoSmoothAt(s, xt, ft, gt));
    if (*ft < f - 1e-4 * 0.5 * PetscAbsReal(eig[0]) * t * t) *moved = PETSC_TRUE;
  }
  if (!*moved) PetscCall(MapParetoSmoothAt(s, x, &f, gt)); /* leave s at x */
  PetscFunctionReturn(0);
}

/*
  MapParetoNewtonSolve - the solve routine of the TAOSHELL solver of the smooth forms: projected
  Newton (Bertsekas 1982) on the box, dense. Per iteration: the variables at a bound whose gradient
  pushes outward are held (with the tolerance eps = min(1e-8 (hi - lo), ||projected gradient||)); on
  the others a Newton step with the Hessian above (shifted to positive definite when needed); then
  Armijo backtracking along the projection arc. Stops when the infinity norm of the projected
  gradient is <= the Tao's gatol (TAO_CONVERGED_GATOL), after its maximum iterations, or when no step
  decreases the objective (TAO_DIVERGED_LS_FAILURE; the point is still the best seen). Monitors and
  the converged reason go through TAO as for its own solvers.

  Why not TAOBNLS: TAO's Newton methods build index sets, submatrices and a KSP each iteration
  (~280 us per iteration on a 5-variable problem, measured); BLMVM needs ~60 gradients per solve on
  the ill-conditioned smooth max. This iteration costs a few microseconds and converges in ~5-10.
*/
/* the projected Newton direction d[T] at x (gradient g, projected-gradient norm pg): held variables
   (at a bound, gradient pushing outward) get -g, which the projection cancels; the others solve the
   Newton system of their Hessian block, shifted until its Cholesky factorisation exists */
static PetscErrorCode MapParetoNewtonDirection(MapParetoScalarCtx *s, const double *x, const double *g, double pg, double *d)
{
  MapPareto p = s->p;
  const int T = p->T;
  double   *H = s->nwork + 5 * T, *L = H + T * T, mu = 0, dmax = 0, y[MAP_NAME_LEN];
  double    eps   = PetscMin(1e-8 * (p->hi - p->lo), pg);
  int       nfree = 0, free_idx[MAP_NAME_LEN];
  PetscBool ok    = PETSC_FALSE;

  PetscFunctionBegin;
  for (int j = 0; j < T; j++) {
    PetscBool held = (x[j] <= p->lo + eps && g[j] > 0) || (x[j] >= p->hi - eps && g[j] < 0);
    if (!held) free_idx[nfree++] = j;
    d[j] = held ? -g[j] : 0;
  }
  if (!nfree) PetscFunctionReturn(0);
  PetscCall(MapParetoSmoothHessianAt(s, x, H));
  for (int a = 0; a < nfree; a++) dmax = PetscMax(dmax, PetscAbsReal(H[free_idx[a] + free_idx[a] * T]));
  for (int tries = 0; tries < 60 && !ok; tries++) {
    for (int a = 0; a < nfree; a++)
      for (int b = 0; b < nfree; b++) L[a + b * nfree] = H[free_idx[a] + free_idx[b] * T];
    MapCholesky(nfree, L, mu, &ok);
    if (!ok) mu = mu > 0 ? 4 * mu : 1e-10 * (dmax > 0 ? dmax : 1);
  }
  if (!ok) { /* no usable curvature: a gradient step */
    for (int a = 0; a < nfree; a++) d[free_idx[a]] = -g[free_idx[a]];
    PetscFunctionReturn(0);
  }
  for (int a = 0; a < nfree; a++) { /* L y = -g_F, then L^T d_F = y */
    double t = -g[free_idx[a]];
    for (int b = 0; b < a; b++) t -= L[a + b * nfree] * y[b];
    y[a] = t / L[a + a * nfree];
  }
  for (int a = nfree - 1; a >= 0; a--) {
    double t = y[a];
    for (int b = a + 1; b < nfree; b++) t -= L[b + a * nfree] * d[free_idx[b]];
    d[free_idx[a]] = t / L[a + a * nfree];
  }
  PetscFunctionReturn(0);
}

/* Armijo along the projection arc from x in direction d: the first step t with
   f(P(x + t d)) <= f + 1e-4 g.(P(x + t d) - x); a rejected t is cut to the minimiser of the quadratic
   through f, the slope and the trial value, within [0.1, 0.5] of it. xt, gt, *ft the accepted point. */
static PetscErrorCode MapParetoArcSearch(MapParetoScalarCtx *s, const double *x, const double *g, double f, const double *d, double *xt, double *gt,
                                         double *ft, double *step, PetscBool *accepted)
{
  MapPareto p = s->p;
  const int T = p->T;

  PetscFunctionBegin;
  *accepted = PETSC_FALSE;
  *step     = 1;
  for (int ls = 0; ls < 60 && !*accepted; ls++) {
    double slope = 0;
    for (int j = 0; j < T; j++) {
      xt[j] = PetscMin(p->hi, PetscMax(p->lo, x[j] + *step * d[j]));
      slope += g[j] * (xt[j] - x[j]);
    }
    if (!(slope < 0)) {
      *step *= 0.5;
      continue;
    }
    PetscCall(MapParetoSmoothAt(s, xt, ft, gt));
    if (*ft <= f + 1e-4 * slope) *accepted = PETSC_TRUE;
    else {
      double curv = *ft - f - slope, cut = isfinite(*ft) && curv > 0 ? -slope / (2 * curv) : 0.1;
      *step *= PetscMin(0.5, PetscMax(0.1, cut));
    }
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode MapParetoNewtonSolve(Tao tao)
{
  MapParetoScalarCtx *s;
  MapPareto           p;
  Vec                 X;
  PetscScalar        *xv;
  PetscReal           gatol, grtol, gttol, f, ft = 0, step = 0;
  PetscInt            maxit, escapes = 0, it = 0;
  int                 T;
  double             *x, *g, *xt, *gt, *d, tau_final;
  TaoConvergedReason  reason = TAO_CONTINUE_ITERATING;

  PetscFunctionBegin;
  PetscCall(TaoShellGetContext(tao, &s));
  p = s->p;
  T = p->T;
  PetscCall(TaoGetTolerances(tao, &gatol, &grtol, &gttol));
  PetscCall(TaoGetMaximumIterations(tao, &maxit));
  x  = s->nwork;
  g  = x + T;
  xt = g + T;
  gt = xt + T;
  d  = gt + T;
  PetscCall(TaoGetSolution(tao, &X));
  PetscCall(VecGetArray(X, &xv));
  for (int j = 0; j < T; j++) x[j] = PetscMin(p->hi, PetscMax(p->lo, xv[j]));
  /* the temperature continuation runs inside this one TaoSolve (s->continuation), saving TAO's
     per-solve overhead twice per preference; without it, one stage at s->tau */
  tau_final = s->continuation ? p->tau_final : s->tau;
  if (s->continuation) s->tau = PetscMax(p->tau_start, p->tau_final);
  for (;; s->tau = PetscMax(0.1 * s->tau, tau_final)) {
    if (s->tau < tau_final * (1 + 1e-9)) s->tau = tau_final;
    PetscCall(MapParetoSmoothAt(s, x, &f, g));
    reason = TAO_CONTINUE_ITERATING;
    for (;; it++) {
      double    pg = 0;
      PetscBool accepted;
      for (int j = 0; j < T; j++) pg = PetscMax(pg, PetscAbsReal(PetscMin(p->hi, PetscMax(p->lo, x[j] - g[j])) - x[j]));
      PetscCall(TaoMonitor(tao, it, f, pg, 0.0, step));
      if (!(pg > gatol) && isfinite(pg) && it < maxit && escapes < 8 && s->tau == tau_final) {
        /* stationary at the last temperature: a Newton method also stops at saddle points, which
           the smooth max of non-convex surrogates can have; step along negative curvature if any */
        PetscBool moved = PETSC_FALSE;
        PetscCall(MapParetoNegativeCurvatureStep(s, x, g, f, xt, gt, &ft, &moved));
        if (moved) {
          escapes++;
          PetscCall(PetscArraycpy(x, xt, T));
          PetscCall(PetscArraycpy(g, gt, T));
          f = ft;
          continue;
        }
      }
      if (!(pg > gatol)) {
        reason = isfinite(pg) ? TAO_CONVERGED_GATOL : TAO_DIVERGED_NAN;
        break;
      }
      if (it >= maxit) {
        reason = TAO_DIVERGED_MAXITS;
        break;
      }
      PetscCall(MapParetoNewtonDirection(s, x, g, pg, d));
      PetscCall(MapParetoArcSearch(s, x, g, f, d, xt, gt, &ft, &step, &accepted));
      if (!accepted) { /* no descent along the arc: x is the best point seen */
        reason = TAO_DIVERGED_LS_FAILURE;
        break;
      }
      PetscCall(PetscArraycpy(x, xt, T));
      PetscCall(PetscArraycpy(g, gt, T));
      f = ft;
    }
    if (s->tau == tau_final || reason == TAO_DIVERGED_NAN || reason == TAO_DIVERGED_MAXITS) break;
  }
  PetscCall(TaoSetConvergedReason(tao, reason));
  for (int j = 0; j < T; j++) xv[j] = x[j];
  PetscCall(VecRestoreArray(X, &xv));
  PetscFunctionReturn(0);
}

/* the Hessian of the smooth form for TAO's Newton types */
static PetscErrorCode MapParetoFormSmoothHessian(Tao tao, Vec X, Mat H, Mat Hpre, void *vctx)
{
  MapParetoScalarCtx *s = (MapParetoScalarCtx *)vctx;
  const int           T = s->p->T;
  const PetscScalar  *x;
  double             *Hd, obj, *g = s->nwork + T, *xc = s->nwork;

  PetscFunctionBegin;
  PetscCall(VecGetArrayRead(X, &x));
  PetscCall(PetscArraycpy(xc, x, T));
  PetscCall(VecRestoreArrayRead(X, &x));
  PetscCall(MapParetoSmoothAt(s, xc, &obj, g));
  PetscCall(MatDenseGetArrayWrite(H, &Hd));
  PetscCall(MapParetoSmoothHessianAt(s, xc, Hd));
  PetscCall(MatDenseRestoreArrayWrite(H, &Hd));
  PetscCall(MatAssemblyBegin(H, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(H, MAT_FINAL_ASSEMBLY));
  (void)tao;
  (void)Hpre;
  PetscFunctionReturn(0);
}

/* MapParetoSmoothTaoSetUp - the smooth form's problem on tao (a TAOSHELL runs the projected Newton
   solve; another type set by -map_pareto_tao_type uses the objective, gradient and Hessian) */
PetscErrorCode MapParetoSmoothTaoSetUp(Tao tao, MapParetoScalarCtx *s, Vec X, Vec lb, Vec ub, Mat H)
{
  PetscFunctionBegin;
  PetscCall(TaoShellSetSolve(tao, MapParetoNewtonSolve));
  PetscCall(TaoShellSetContext(tao, s));
  PetscCall(TaoSetSolution(tao, X));
  PetscCall(TaoSetVariableBounds(tao, lb, ub));
  PetscCall(TaoSetObjectiveAndGradient(tao, NULL, MapParetoFormSmooth, s));
  PetscCall(TaoSetHessian(tao, H, H, MapParetoFormSmoothHessian, s));
  PetscFunctionReturn(0);
}
