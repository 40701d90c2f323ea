/* pareto_tao: one scalarised problem solved with PETSc/TAO on PETSC_COMM_SELF.
 *
 * With a_i(c) = (u_i - f_i(c)) / r_i (u = utopia, r = objective ranges, so a_i >= 0 on the box):
 *   Chebyshev (augmented):  min_c  max_{w_i>0} w_i a_i  +  rho sum_i w_i a_i
 *   weighted sum:           min_c  sum_i w_i a_i
 * Chebyshev's max is non-smooth; two ways to solve it:
 *   smoothmax  tau log sum_{w_i>0} exp(w_i a_i / tau), tau decreased 10x per stage from tau_start to
 *              tau_final, each stage a bound-constrained TAOBLMVM solve warm-started from the last.
 *              The smoothed objective is strictly increasing in every a_i with w_i > 0, so its
 *              minimiser is Pareto optimal whatever tau is: tau only moves the point along the front.
 *   epigraph   min_{c,t} t + rho sum w_i a_i  s.t.  t - w_i a_i >= 0,  c in the box, by TAOALMM
 *              with a BLMVM subsolver (the default).
 * Measured on the analytic problems (T = 2): at -map_pareto_gatol 1e-10 both put every point on
 * the exact Pareto set to < 1e-10, the epigraph form solves the Chebyshev problem to a gap of
 * ~1e-11, the smooth max to ~tau log m (2.8e-6 at tau = 1e-5). The default gatol 1e-7 gives
 * points within ~1.5e-7 of the Pareto set and gaps ~1e-7 at 1.6x fewer evaluations; on the
 * sigmoid-quadratic surrogates of a T = 8 run the front and the pick are unchanged to 1e-6.
 * ALMM asks for the objective, the constraints and the Jacobian at the same point in turn: one
 * evaluation of the objectives serves all three (3x fewer calls, the same bits).
 */
#include "paretoimpl.h"
#include <petsctao.h>
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

/* smooth (or single-objective / weighted-sum) objective and gradient in c */
static PetscErrorCode MapParetoFormSmooth(Tao tao, Vec X, PetscReal *obj, Vec G, void *vctx)
{
  MapParetoScalarCtx *s = (MapParetoScalarCtx *)vctx;
  MapPareto           p = s->p;
  const PetscScalar  *x;
  PetscScalar        *g;
  const int           T = p->T, m = p->m;
  double              coef[64];

  PetscFunctionBegin;
  PetscCall(VecGetArrayRead(X, &x));
  PetscCall(PetscArraycpy(s->x, x, T));
  PetscCall(VecRestoreArrayRead(X, &x));
  PetscCall(p->fn(p->ctx, s->x, s->f, s->J));
  /* obj = phi(a), coef_i = d phi / d f_i */
  if (s->objective >= 0) {
    for (int i = 0; i < m; i++) coef[i] = 0;
    *obj              = -s->f[s->objective];
    coef[s->objective] = -1;
  } else if (p->scal == MAP_PARETO_WEIGHTED_SUM) {
    *obj = 0;
    for (int i = 0; i < m; i++) {
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
    for (int i = 0; i < m; i++) coef[i] = s->w[i] > 0 ? -(coef[i] / z + p->rho) * s->w[i] / p->range[i] : 0;
  }
  PetscCall(VecGetArray(G, &g));
  for (int j = 0; j < T; j++) {
    double d = 0;
    for (int i = 0; i < m; i++) d += coef[i] * s->J[i * T + j];
    g[j] = d;
  }
  PetscCall(VecRestoreArray(G, &g));
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

/* one bound-constrained smooth solve from X (updated in place) */
static PetscErrorCode MapParetoSolveSmoothStage(MapPareto p, MapParetoScalarCtx *s, Vec X, Vec lb, Vec ub, PetscBool *ok)
{
  Tao tao;

  PetscFunctionBegin;
  PetscCall(MapParetoTaoCreate(p, TAOBLMVM, &tao));
  PetscCall(TaoSetSolution(tao, X));
  PetscCall(TaoSetVariableBounds(tao, lb, ub));
  PetscCall(TaoSetObjectiveAndGradient(tao, NULL, MapParetoFormSmooth, s));
  PetscCall(TaoSetFromOptions(tao));
  PetscCall(MapParetoTaoSolveTrapped(tao, ok));
  PetscCall(TaoDestroy(&tao));
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
  MapParetoScalarCtx s;
  const int          T = p->T;

  PetscFunctionBegin;
  PetscCheck(p->m <= 64 && T + 1 <= MAP_NAME_LEN, PETSC_COMM_SELF, PETSC_ERR_SUP,
             "Pareto search supports at most 64 objectives and %d coefficients, got %d and %d", MAP_NAME_LEN - 1, p->m, T);
  s.p         = p;
  s.w         = w;
  s.objective = objective;
  s.tau       = 1;
  s.have_f = s.have_J = PETSC_FALSE;
  PetscCall(PetscMalloc4(p->m, &s.f, p->m * T, &s.J, T + 1, &s.x, T, &s.xc));
  if (objective < 0 && p->scal == MAP_PARETO_CHEBYSHEV && p->solver == MAP_PARETO_EPIGRAPH) {
    PetscCall(MapParetoSolveEpigraph(p, &s, x0, c, ok));
  } else {
    Vec          X, lb, ub;
    PetscScalar *x;
    PetscCall(VecCreateSeq(PETSC_COMM_SELF, T, &X));
    PetscCall(VecDuplicate(X, &lb));
    PetscCall(VecDuplicate(X, &ub));
    PetscCall(VecSet(lb, p->lo));
    PetscCall(VecSet(ub, p->hi));
    PetscCall(VecGetArray(X, &x));
    for (int j = 0; j < T; j++) x[j] = x0[j];
    PetscCall(VecRestoreArray(X, &x));
    *ok = PETSC_TRUE;
    if (objective < 0 && p->scal == MAP_PARETO_CHEBYSHEV) {
      /* continuation: tau = tau_start, tau_start/10, ... down to tau_final */
      for (s.tau = p->tau_start; *ok; s.tau *= 0.1) {
        if (s.tau < p->tau_final * (1 + 1e-9)) s.tau = p->tau_final;
        PetscCall(MapParetoSolveSmoothStage(p, &s, X, lb, ub, ok));
        if (s.tau == p->tau_final) break;
      }
    } else PetscCall(MapParetoSolveSmoothStage(p, &s, X, lb, ub, ok));
    PetscCall(VecGetArray(X, &x));
    for (int j = 0; j < T; j++) c[j] = x[j];
    PetscCall(VecRestoreArray(X, &x));
    PetscCall(VecDestroy(&ub));
    PetscCall(VecDestroy(&lb));
    PetscCall(VecDestroy(&X));
  }
  PetscCall(PetscFree4(s.f, s.J, s.x, s.xc));
  PetscFunctionReturn(0);
}
