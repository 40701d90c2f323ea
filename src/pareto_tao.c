/* pareto_tao: one scalarised problem solved with PETSc/TAO on PETSC_COMM_SELF.
 *
 * With a_i(c) = (u_i - f_i(c)) / r_i (u = utopia, r = objective ranges, so a_i >= 0 on the box):
 *   Chebyshev (augmented):  min_c  max_{w_i>0} w_i a_i  +  rho sum_i w_i a_i
 *   weighted sum:           min_c  sum_i w_i a_i
 * Chebyshev's max is non-smooth; two ways to solve it:
 *   smoothmax  (the default) tau log sum_{w_i>0} exp(w_i a_i / tau), tau decreased 10x per stage
 *              from tau_start to tau_final, each stage a bound-constrained solve warm-started from
 *              the last: by default a dense projected Newton method inside a TAOSHELL (below), or
 *              any TAO type via -map_pareto_tao_type (e.g. blmvm). The smoothed objective is
 *              strictly increasing in every a_i with w_i > 0, so its minimiser is Pareto optimal
 *              whatever tau is: tau only moves the point along the front.
 *   epigraph   min_{c,t} t + rho sum w_i a_i  s.t.  t - w_i a_i >= 0,  c in the box, by TAOALMM
 *              with a BLMVM subsolver.
 * Measured on the analytic problems (T = 2): the epigraph form solves the Chebyshev problem to a gap
 * of ~1e-11 (gatol 1e-10) and ~1e-7 (the default 1e-7), the smooth max to ~tau log m (2.8e-6 at
 * tau = 1e-5) with its points on the exact Pareto set (distance 0 with Newton, 1.7e-7 with BLMVM).
 * Time per solve on the T = 5 surrogates of bench/map_quality (one rank): epigraph/ALMM ~2.5 ms
 * (~170 objective evaluations), smooth max with BLMVM ~0.85 ms (~80), with the projected Newton
 * ~0.07 ms (~15 gradients + Hessians): TAO's per-iteration cost (~10 us) dominated on 2-20
 * variables, not the arithmetic. The surrogates' own error (~3e-2) dwarfs either gap.
 * ALMM asks for the objective, the constraints and the Jacobian at the same point in turn: one
 * evaluation of the objectives serves all three (3x fewer calls, the same bits).
 */
#include "paretoimpl.h"
#include <petsctao.h>
#include <petscblaslapack.h>
#include <math.h>

double MapParetoScalarValueF(MapPareto p, const double *w, const double *f)
{
  double mx = 0, sum = 0, v;

  for (int i = 0; i < p->m; i++) {
    if (w[i] <= 0) continue;
    double wa = w[i] * (p->utopia[i] - f[i]) / p->range[i];
    mx        = PetscMax(mx, wa);
    sum += wa;
  }
  v = p->scal == MAP_PARETO_CHEBYSHEV ? mx + p->rho * sum : sum;
  return isfinite(v) ? v : PETSC_MAX_REAL;
}

PetscErrorCode MapParetoScalarValue(MapPareto p, const double *w, const double *c, double *value, double *f)
{
  PetscFunctionBegin;
  PetscCall(p->fn(p->ctx, c, f, NULL));
  *value = MapParetoScalarValueF(p, w, f);
  PetscFunctionReturn(0);
}

/* f (and J when wantJ) at x[T] into s->f, s->J; ALMM asks for the objective, the constraints and
   their Jacobian at the same point one after the other, so the last evaluation is reused */
static PetscErrorCode MapParetoEvalCached(MapParetoScalarCtx *s, const PetscScalar *x, PetscBool wantJ)
{
  MapPareto p = s->p;
  const int T = p->T;

  PetscFunctionBegin;
  if (s->have_f && (s->have_J || !wantJ) && !memcmp(s->xc, x, sizeof(double) * T)) PetscFunctionReturn(0);
  PetscCall(PetscArraycpy(s->xc, x, T));
  s->have_f = s->have_J = PETSC_FALSE;
  PetscCall(p->fn(p->ctx, s->xc, s->f, wantJ ? s->J : NULL));
  s->have_f = PETSC_TRUE;
  s->have_J = wantJ;
  PetscFunctionReturn(0);
}

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
    d             = sqrt(d);
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
  MapPareto    p = s->p;
  const int    T = p->T;
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
  double    eps = PetscMin(1e-8 * (p->hi - p->lo), pg);
  int       nfree = 0, free_idx[MAP_NAME_LEN];
  PetscBool ok = PETSC_FALSE;

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

/* epigraph: x = (c, t); objective t + rho sum w_i a_i */
static PetscErrorCode MapParetoFormEpigraph(Tao tao, Vec X, PetscReal *obj, Vec G, void *vctx)
{
  MapParetoScalarCtx *s = (MapParetoScalarCtx *)vctx;
  MapPareto           p = s->p;
  const PetscScalar  *x;
  PetscScalar        *g;
  const int           T = p->T, m = p->m;

  PetscFunctionBegin;
  PetscCall(VecGetArrayRead(X, &x));
  PetscCall(PetscArraycpy(s->x, x, T + 1));
  PetscCall(VecRestoreArrayRead(X, &x));
  PetscCall(MapParetoEvalCached(s, s->x, PETSC_TRUE));
  *obj = s->x[T];
  PetscCall(VecGetArray(G, &g));
  for (int j = 0; j < T; j++) g[j] = 0;
  g[T] = 1;
  for (int i = 0; i < m; i++) {
    if (s->w[i] <= 0) continue;
    *obj += p->rho * s->w[i] * (p->utopia[i] - s->f[i]) / p->range[i];
    for (int j = 0; j < T; j++) g[j] -= p->rho * s->w[i] / p->range[i] * s->J[i * T + j];
  }
  PetscCall(VecRestoreArray(G, &g));
  PetscFunctionReturn(0);
}

/* constraints t - w_i a_i >= 0 for the objectives with w_i > 0, in objective order */
static PetscErrorCode MapParetoFormConstraints(Tao tao, Vec X, Vec Ci, void *vctx)
{
  MapParetoScalarCtx *s = (MapParetoScalarCtx *)vctx;
  MapPareto           p = s->p;
  const PetscScalar  *x;
  PetscScalar        *ci;
  int                 k = 0;

  PetscFunctionBegin;
  PetscCall(VecGetArrayRead(X, &x));
  PetscCall(PetscArraycpy(s->x, x, p->T + 1));
  PetscCall(VecRestoreArrayRead(X, &x));
  PetscCall(MapParetoEvalCached(s, s->x, PETSC_FALSE));
  PetscCall(VecGetArray(Ci, &ci));
  for (int i = 0; i < p->m; i++)
    if (s->w[i] > 0) ci[k++] = s->x[p->T] - s->w[i] * (p->utopia[i] - s->f[i]) / p->range[i];
  PetscCall(VecRestoreArray(Ci, &ci));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapParetoFormJacobian(Tao tao, Vec X, Mat J, Mat Jpre, void *vctx)
{
  MapParetoScalarCtx *s = (MapParetoScalarCtx *)vctx;
  MapPareto           p = s->p;
  const PetscScalar  *x;
  const int           T = p->T;
  PetscInt            k = 0, cols[MAP_NAME_LEN];
  PetscScalar         vals[MAP_NAME_LEN];

  PetscFunctionBegin;
  PetscCall(VecGetArrayRead(X, &x));
  PetscCall(PetscArraycpy(s->x, x, T + 1));
  PetscCall(VecRestoreArrayRead(X, &x));
  PetscCall(MapParetoEvalCached(s, s->x, PETSC_TRUE));
  for (int j = 0; j <= T; j++) cols[j] = j;
  for (int i = 0; i < p->m; i++) {
    if (s->w[i] <= 0) continue;
    for (int j = 0; j < T; j++) vals[j] = s->w[i] / p->range[i] * s->J[i * T + j];
    vals[T] = 1;
    PetscCall(MatSetValues(J, 1, &k, T + 1, cols, vals, INSERT_VALUES));
    k++;
  }
  PetscCall(MatAssemblyBegin(J, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(J, MAT_FINAL_ASSEMBLY));
  PetscFunctionReturn(0);
}

/* TaoSolve with errors trapped: a failed solve is reported back (*ok = 0), never aborts the run */
static PetscErrorCode MapParetoTaoSolveTrapped(Tao tao, PetscBool *ok)
{
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  ierr = TaoSolve(tao);
  PetscCall(PetscPopErrorHandler());
  *ok = ierr ? PETSC_FALSE : PETSC_TRUE;
  if (ierr) PetscCall(PetscInfo(NULL, "MapPareto: TaoSolve failed with error %d; start skipped\n", (int)ierr));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapParetoTaoCreate(MapPareto p, TaoType type, Tao *tao)
{
  PetscFunctionBegin;
  PetscCall(TaoCreate(PETSC_COMM_SELF, tao));
  PetscCall(TaoSetType(*tao, type));
  PetscCall(TaoSetOptionsPrefix(*tao, "map_pareto_"));
  PetscCall(TaoSetTolerances(*tao, p->gatol, 0, 0));
  PetscCall(TaoSetMaximumIterations(*tao, p->maxit));
  PetscCall(TaoSetMaximumFunctionEvaluations(*tao, 10 * p->maxit));
  PetscFunctionReturn(0);
}

/* The solvers kept by a MapPareto for all its solves (one set per rank): the work arrays of the
   scalarised problem and the bound-constrained TAOBLMVM solve of the smooth forms. TaoSolve resets
   its statistics and BLMVM its quasi-Newton matrix at every solve, so a solve depends only on its
   own start and problem, never on the solves before it on this rank (checked: the same fronts,
   bit for bit, at any rank count). After a trapped TAO error the solver is rebuilt. */
struct _MapParetoTaoCache {
  MapParetoScalarCtx s;
  Tao                smooth;
  Vec                X, lb, ub;
  Mat                H; /* dense T x T, for TAO's own Newton types (-map_pareto_tao_type bnls, bntr, ...) */
};

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

PetscErrorCode MapParetoTaoCacheDestroy(MapPareto p)
{
  struct _MapParetoTaoCache *c = p->cache;

  PetscFunctionBegin;
  if (!c) PetscFunctionReturn(0);
  PetscCall(TaoDestroy(&c->smooth));
  PetscCall(MatDestroy(&c->H));
  PetscCall(PetscFree4(c->s.hwork, c->s.nwork, c->s.coef, c->s.prob));
  PetscCall(VecDestroy(&c->X));
  PetscCall(VecDestroy(&c->lb));
  PetscCall(VecDestroy(&c->ub));
  PetscCall(PetscFree4(c->s.f, c->s.J, c->s.x, c->s.xc));
  PetscCall(PetscFree(p->cache));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapParetoTaoCacheGet(MapPareto p, struct _MapParetoTaoCache **cache)
{
  struct _MapParetoTaoCache *c = p->cache;
  const int                  T = p->T;

  PetscFunctionBegin;
  if (!c) {
    PetscCall(PetscNew(&c));
    c->s.p = p;
    PetscCall(PetscMalloc4(p->m, &c->s.f, p->m * T, &c->s.J, T + 1, &c->s.x, T, &c->s.xc));
    PetscCall(VecCreateSeq(PETSC_COMM_SELF, T, &c->X));
    PetscCall(VecDuplicate(c->X, &c->lb));
    PetscCall(VecDuplicate(c->X, &c->ub));
    PetscCall(MatCreateSeqDense(PETSC_COMM_SELF, T, T, NULL, &c->H));
    PetscCall(PetscMalloc4(3 * T + p->m + 2 * p->m * T, &c->s.hwork, 5 * T + 2 * T * T, &c->s.nwork, p->m, &c->s.coef, p->m, &c->s.prob));
    p->cache = c;
  }
  if (!c->smooth) {
    /* default: the dense projected Newton above inside a TAOSHELL; -map_pareto_tao_type blmvm (or any
       bound-constrained TAO type using gradients) replaces it */
    PetscCall(MapParetoTaoCreate(p, TAOSHELL, &c->smooth));
    PetscCall(TaoShellSetSolve(c->smooth, MapParetoNewtonSolve));
    PetscCall(TaoShellSetContext(c->smooth, &c->s));
    PetscCall(TaoSetSolution(c->smooth, c->X));
    PetscCall(TaoSetVariableBounds(c->smooth, c->lb, c->ub));
    PetscCall(TaoSetObjectiveAndGradient(c->smooth, NULL, MapParetoFormSmooth, &c->s));
    PetscCall(TaoSetHessian(c->smooth, c->H, c->H, MapParetoFormSmoothHessian, &c->s));
    PetscCall(TaoSetFromOptions(c->smooth));
  }
  /* the box may change between searches (MapParetoSetBox) */
  PetscCall(VecSet(c->lb, p->lo));
  PetscCall(VecSet(c->ub, p->hi));
  c->s.have_f = c->s.have_J = PETSC_FALSE;
  *cache = c;
  PetscFunctionReturn(0);
}

/* one bound-constrained smooth solve of the cached problem from c->X (updated in place) */
static PetscErrorCode MapParetoSolveSmoothStage(MapPareto p, struct _MapParetoTaoCache *c, PetscBool *ok)
{
  PetscFunctionBegin;
  PetscCall(MapParetoTaoSolveTrapped(c->smooth, ok));
  if (!*ok) PetscCall(TaoDestroy(&c->smooth)); /* rebuilt by the next MapParetoTaoCacheGet */
  PetscFunctionReturn(0);
}

static PetscErrorCode MapParetoSolveEpigraph(MapPareto p, MapParetoScalarCtx *s, const double *x0, double *c, PetscBool *ok)
{
  Tao          tao, sub;
  Vec          X, lb, ub, Ci;
  Mat          J;
  PetscScalar *x;
  const int    T = p->T;
  int          nc = 0;
  double       t0 = 0;

  PetscFunctionBegin;
  for (int i = 0; i < p->m; i++) nc += s->w[i] > 0;
  PetscCall(VecCreateSeq(PETSC_COMM_SELF, T + 1, &X));
  PetscCall(VecDuplicate(X, &lb));
  PetscCall(VecDuplicate(X, &ub));
  PetscCall(VecCreateSeq(PETSC_COMM_SELF, nc, &Ci));
  PetscCall(MatCreateSeqAIJ(PETSC_COMM_SELF, nc, T + 1, T + 1, NULL, &J));
  PetscCall(MatSetOption(J, MAT_NEW_NONZERO_ALLOCATION_ERR, PETSC_FALSE));
  /* start on the constraint boundary: t0 = max_i w_i a_i(x0) */
  PetscCall(MapParetoEvalCached(s, x0, PETSC_FALSE));
  for (int i = 0; i < p->m; i++)
    if (s->w[i] > 0) t0 = PetscMax(t0, s->w[i] * (p->utopia[i] - s->f[i]) / p->range[i]);
  PetscCall(VecGetArray(X, &x));
  for (int j = 0; j < T; j++) x[j] = x0[j];
  x[T] = t0;
  PetscCall(VecRestoreArray(X, &x));
  PetscCall(VecSet(lb, p->lo));
  PetscCall(VecSet(ub, p->hi));
  PetscCall(VecSetValue(lb, T, PETSC_NINFINITY, INSERT_VALUES));
  PetscCall(VecSetValue(ub, T, PETSC_INFINITY, INSERT_VALUES));
  PetscCall(VecAssemblyBegin(lb));
  PetscCall(VecAssemblyEnd(lb));
  PetscCall(VecAssemblyBegin(ub));
  PetscCall(VecAssemblyEnd(ub));

  PetscCall(MapParetoTaoCreate(p, TAOALMM, &tao));
  PetscCall(TaoSetConstraintTolerances(tao, p->gatol, 0));
  /* BLMVM inner solver: the default BQNLS can be 20x slower (toolchain.md §6) */
  PetscCall(TaoALMMGetSubsolver(tao, &sub));
  PetscCall(TaoSetType(sub, TAOBLMVM));
  PetscCall(TaoSetSolution(tao, X));
  PetscCall(TaoSetVariableBounds(tao, lb, ub));
  PetscCall(TaoSetObjectiveAndGradient(tao, NULL, MapParetoFormEpigraph, s));
  PetscCall(TaoSetInequalityConstraintsRoutine(tao, Ci, MapParetoFormConstraints, s));
  PetscCall(TaoSetJacobianInequalityRoutine(tao, J, J, MapParetoFormJacobian, s));
  PetscCall(TaoSetFromOptions(tao));
  PetscCall(MapParetoTaoSolveTrapped(tao, ok));
  PetscCall(VecGetArray(X, &x));
  for (int j = 0; j < T; j++) c[j] = PetscMin(p->hi, PetscMax(p->lo, x[j]));
  PetscCall(VecRestoreArray(X, &x));
  PetscCall(TaoDestroy(&tao));
  PetscCall(MatDestroy(&J));
  PetscCall(VecDestroy(&Ci));
  PetscCall(VecDestroy(&ub));
  PetscCall(VecDestroy(&lb));
  PetscCall(VecDestroy(&X));
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoSolveScalar(MapPareto p, const double *w, int objective, const double *x0, double *c, PetscBool *ok)
{
  struct _MapParetoTaoCache *cache = NULL;
  MapParetoScalarCtx        *s;
  const int                  T = p->T;

  PetscFunctionBegin;
  PetscCheck(p->m <= MAP_MAX_TASKS && T + 1 <= MAP_NAME_LEN, PETSC_COMM_SELF, PETSC_ERR_SUP,
             "Pareto search supports at most %d objectives and %d coefficients, got %d and %d", MAP_MAX_TASKS, MAP_NAME_LEN - 1, p->m,
             T);
  PetscCall(MapParetoTaoCacheGet(p, &cache));
  s            = &cache->s;
  s->w         = w;
  s->objective = objective;
  s->tau       = 1;
  if (objective < 0 && p->scal == MAP_PARETO_CHEBYSHEV && p->solver == MAP_PARETO_EPIGRAPH) {
    PetscCall(MapParetoSolveEpigraph(p, s, x0, c, ok));
  } else {
    PetscScalar *x;
    PetscCall(VecGetArray(cache->X, &x));
    for (int j = 0; j < T; j++) x[j] = x0[j];
    PetscCall(VecRestoreArray(cache->X, &x));
    *ok = PETSC_TRUE;
    PetscBool shell;
    PetscCall(PetscObjectTypeCompare((PetscObject)cache->smooth, TAOSHELL, &shell));
    s->continuation = shell && objective < 0 && p->scal == MAP_PARETO_CHEBYSHEV ? PETSC_TRUE : PETSC_FALSE;
    if (s->continuation) PetscCall(MapParetoSolveSmoothStage(p, cache, ok)); /* the stages run inside */
    else if (objective < 0 && p->scal == MAP_PARETO_CHEBYSHEV) {
      /* continuation: tau = tau_start, tau_start/10, ... down to tau_final */
      for (s->tau = p->tau_start; *ok; s->tau *= 0.1) {
        if (s->tau < p->tau_final * (1 + 1e-9)) s->tau = p->tau_final;
        PetscCall(MapParetoSolveSmoothStage(p, cache, ok));
        if (s->tau == p->tau_final) break;
      }
    } else PetscCall(MapParetoSolveSmoothStage(p, cache, ok));
    PetscCall(VecGetArray(cache->X, &x));
    for (int j = 0; j < T; j++) c[j] = x[j];
    PetscCall(VecRestoreArray(cache->X, &x));
  }
  PetscFunctionReturn(0);
}
