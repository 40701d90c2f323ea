/* Private: the MapPareto object and its scalarised TAO solves. */
#ifndef MAPMERGE_PARETOIMPL_H
#define MAPMERGE_PARETOIMPL_H

#include <mapmerge/pareto.h>
#include <petscviewer.h>
#include <petsctao.h>

struct _p_MapPareto {
  MPI_Comm               comm;
  int                    T, m;
  MapObjectiveFn         fn;
  MapObjectiveHessianFn  hfn; /* may be NULL: finite differences of fn's Jacobian */
  void                  *ctx;
  double                 lo, hi;
  PetscInt               divisions; /* 0: default for m */
  MapParetoScalarization scal;
  MapParetoSolverType    solver;
  PetscInt               starts;
  uint64_t               seed;
  double                 rho;                  /* augmentation weight of Chebyshev */
  double                 utopia_eps;           /* utopia = ideal + eps * range */
  double                 tau_start, tau_final; /* smooth-max temperatures (normalised objective units) */
  double                 gatol;                /* TAO gradient tolerance */
  PetscInt               maxit;
  PetscInt               npool;  /* candidate start points scored per preference (seeded, shared by all) */
  PetscInt               polish; /* rounds of re-solving from better solutions of other preferences */
  PetscInt               chain;  /* preferences per warm-started chain (consecutive lattice vectors) */
  /* reference points, computed once (rank 0, broadcast) */
  PetscBool have_ideal;
  double   *ideal, *nadir, *range, *utopia, *anchors; /* m, m, m, m, m*T */
  /* the start pool: npool points (box centre, anchors, seeded uniform draws) and f there */
  PetscInt kpool;
  double  *poolC, *poolF; /* kpool*T, kpool*m */
  /* the front */
  PetscInt k;
  double  *C, *F, *W;
  /* statistics (summed over ranks by Solve) */
  PetscInt npref, nsolves, nfailed, npolished;
  /* TAO solvers kept for the whole search (pareto_tao.c): creating a Tao and reading its options per
     solve cost more than the solve itself on these 2-20 variable problems */
  struct _MapParetoTaoCache *cache;
};

/* one scalarised problem: preference w[m] */
typedef struct {
  MapPareto     p;
  const double *w;
  double        tau;          /* smooth max temperature */
  PetscBool     continuation; /* the Newton shell runs the tau continuation itself */
  int           objective;    /* >= 0: single-objective max of this objective (for the ideal point) */
  double       *f, *J, *x;    /* work: m, m*T, T+1 */
  double       *xc;           /* T: the point f (and J when have_J) were last evaluated at */
  PetscBool     have_f, have_J;
  double       *hwork;       /* 3T + m + 2mT: Hessian work */
  double       *nwork;       /* 5T + 2T^2: Newton work */
  double       *coef, *prob; /* m: d phi / d f_i and the softmax weights at the last MapParetoSmoothAt */
} MapParetoScalarCtx;

/* default Das-Dennis divisions for m objectives (pareto.c) */
PetscInt MapParetoDefaultDivisions(int m);
/* -map_pareto_view [ascii:FILE]: MapParetoView after Solve, as -tao_view after TaoSolve (pareto.c) */
PetscErrorCode MapParetoViewFromOptions(MapPareto p);

/* f (and J when wantJ) at x[T] into s->f, s->J, reusing the last evaluation at the same point
   (pareto_tao.c) */
PetscErrorCode MapParetoEvalCached(MapParetoScalarCtx *s, const PetscScalar *x, PetscBool wantJ);
/* MapParetoSmoothTaoSetUp - puts the smooth form on tao: objective and gradient, Hessian (for TAO's
   Newton types), and the projected Newton solve when tao is a TAOSHELL (pareto_smooth.c) */
PetscErrorCode MapParetoSmoothTaoSetUp(Tao tao, MapParetoScalarCtx *s, Vec X, Vec lb, Vec ub, Mat H);

/* releases the cached TAO solvers (MapParetoDestroy, and whenever T changes) */
PetscErrorCode MapParetoTaoCacheDestroy(MapPareto p);

/* the same from the objectives f[m] (PETSC_MAX_REAL when not finite) */
double MapParetoScalarValueF(MapPareto p, const double *w, const double *f);
/* scalar value of the exact scalarisation at c (the quantity minimised); used to rank starts */
PetscErrorCode MapParetoScalarValue(MapPareto p, const double *w, const double *c, double *value, double *f);
/* MapParetoSolveScalar - minimises the scalarisation for w (or maximises objective `objective` when
   >= 0) from x0[T]; c[T] the result, *ok = 0 when TAO raised an error (trapped). Not collective. */
PetscErrorCode MapParetoSolveScalar(MapPareto p, const double *w, int objective, const double *x0, double *c, PetscBool *ok);

#endif
