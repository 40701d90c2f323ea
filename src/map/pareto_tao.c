/* pareto_tao: one scalarised problem solved with PETSc/TAO on PETSC_COMM_SELF.
 *
 * With a_i(c) = (u_i - f_i(c)) / r_i (u = utopia, r = objective ranges, so a_i >= 0 on the box):
 *   Chebyshev (augmented):  min_c  max_{w_i>0} w_i a_i  +  rho sum_i w_i a_i
 *   weighted sum:           min_c  sum_i w_i a_i
 * Chebyshev's max is non-smooth; two ways to solve it:
 *   smoothmax  (the default) tau log sum_{w_i>0} exp(w_i a_i / tau), tau decreased 10x per stage
 *              from tau_start to tau_final, each stage a bound-constrained solve warm-started from
 *              the last: by default a dense projected Newton method inside a TAOSHELL (pareto_smooth.c), or
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
PetscErrorCode MapParetoEvalCached(MapParetoScalarCtx *s, const PetscScalar *x, PetscBool wantJ)
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
    /* default: the dense projected Newton (pareto_smooth.c) inside a TAOSHELL; -map_pareto_tao_type blmvm (or any
       bound-constrained TAO type using gradients) replaces it */
    PetscCall(MapParetoTaoCreate(p, TAOSHELL, &c->smooth));
    PetscCall(MapParetoSmoothTaoSetUp(c->smooth, &c->s, c->X, c->lb, c->ub, c->H));
    PetscCall(TaoSetFromOptions(c->smooth));
  }
  /* the box may change between searches (MapParetoSetBox) */
  PetscCall(VecSet(c->lb, p->lo));
  PetscCall(VecSet(c->ub, p->hi));
  c->s.have_f = c->s.have_J = PETSC_FALSE;
  *cache                    = c;
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
  const int    T  = p->T;
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
