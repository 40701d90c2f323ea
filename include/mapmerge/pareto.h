/* MapPareto - the Pareto set of m objectives over the box [lo,hi]^T by scalarisation with
 * PETSc/TAO (docs/design.md §5.4). Objectives are MAXIMISED (accuracies, or negated losses). */
#ifndef MAPMERGE_PARETO_H
#define MAPMERGE_PARETO_H

#include <mapmerge/core.h>

/* f[m] at c[T]; J[m*T] row-major gradient (row i = d f_i / d c) when J != NULL. Not collective. */
typedef PetscErrorCode (*MapObjectiveFn)(void *ctx, const double *c, double *f, double *J);
/* optional: H[T*T] (column-major) = sum_i coef[i] Hess f_i(c); without it the search's Newton method
   takes the objectives' curvature from central differences of J (2T more calls per iteration) */
typedef PetscErrorCode (*MapObjectiveHessianFn)(void *ctx, const double *c, const double *coef, double *H);

typedef struct _p_MapPareto *MapPareto;

/* Scalarisations (-map_pareto_scalarization): augmented Chebyshev (default; finds non-convex parts
   of the front) or weighted sum. Objectives are normalised by their ranges (ideal - nadir). */
typedef enum { MAP_PARETO_CHEBYSHEV,
               MAP_PARETO_WEIGHTED_SUM } MapParetoScalarization;
/* How Chebyshev's max is solved (-map_pareto_solver): a smooth max (default: log-sum-exp with
   continuation in the temperature, each stage a bound-constrained projected Newton solve in a
   TAOSHELL, or any TAO type with -map_pareto_tao_type; its points are exactly Pareto optimal but sit
   O(tau log m) off the exact Chebyshev point; ~40x faster than the epigraph form) or the epigraph
   form with TAOALMM (solves the Chebyshev problem itself to ~1e-7 at the default -map_pareto_gatol
   1e-7; 1e-10 gives ~1e-11 at 2x the time). */
typedef enum { MAP_PARETO_SMOOTHMAX,
               MAP_PARETO_EPIGRAPH } MapParetoSolverType;

PetscErrorCode MapParetoCreate(MPI_Comm comm, MapPareto *p);
/* options: -map_pareto_divisions H, -map_pareto_scalarization chebyshev|weighted_sum,
   -map_pareto_solver smoothmax|epigraph, -map_pareto_starts K (default 2: the weighted mix of the
   single-objective optima, then the best points of a seeded pool for the preference),
   -map_pareto_pool P (pool size, default 128), -map_pareto_polish R (rounds of re-solving a
   preference from a better solution found for another, default 2), -map_pareto_chain L
   (consecutive preferences solved as a warm-started chain; default 1: each from its own starts), -map_pareto_rho, -map_pareto_gatol,
   -map_seed, -map_box lo,hi, -map_pareto_view; TAO options with prefix -map_pareto_ (e.g. -map_pareto_tao_monitor) */
PetscErrorCode MapParetoSetFromOptions(MapPareto p);
PetscErrorCode MapParetoSetObjectives(MapPareto p, int T, int m, MapObjectiveFn fn, void *ctx);
/* after MapParetoSetObjectives (which clears it): the objectives' weighted Hessian, same ctx */
PetscErrorCode MapParetoSetObjectiveHessian(MapPareto p, MapObjectiveHessianFn hfn);
PetscErrorCode MapParetoSetBox(MapPareto p, double lo, double hi);
/* MapParetoSolve - collective: preference vectors (Das-Dennis + corners) spread over ranks, one
   TAO solve each from several starts on PETSC_COMM_SELF; gathered in preference order, polished
   (re-solved from a better gathered solution of another preference), non-dominated filter,
   duplicates merged. Same result on all ranks, for any rank count. */
PetscErrorCode MapParetoSolve(MapPareto p);
/* the front: k points; C[k*T], F[k*m] predicted objectives, W[k*m] preference weights (borrowed) */
PetscErrorCode MapParetoGetFront(MapPareto p, PetscInt *k, const double **C, const double **F, const double **W);
/* MapParetoPick - solution of the scalarised problem for preference w[m] (normalised inside), from at
   least 8 starts and the best front point for w. Collective. */
PetscErrorCode MapParetoPick(MapPareto p, const double *w, double *c, double *f);
/* MapParetoView - the search's settings and, after Solve, its statistics, front size, ideal and nadir
   (viewer NULL: stdout). -map_pareto_view [ascii:FILE] prints it after each Solve. Collective. */
PetscErrorCode MapParetoView(MapPareto p, PetscViewer viewer);
PetscErrorCode MapParetoDestroy(MapPareto *p);
/* programmatic equivalents of the options (call after SetFromOptions to override) */
PetscErrorCode MapParetoSetScalarization(MapPareto p, MapParetoScalarization s);
PetscErrorCode MapParetoSetSolverType(MapPareto p, MapParetoSolverType t);
PetscErrorCode MapParetoSetDivisions(MapPareto p, PetscInt H);
/* MapParetoCheckDivisions - error naming -map_pareto_divisions when its lattice for m objectives is too
   large (over 1e7 vectors); lets a caller refuse it before any expensive work. Collective. */
PetscErrorCode MapParetoCheckDivisions(MapPareto p, int m);
PetscErrorCode MapParetoSetStarts(MapPareto p, PetscInt starts);
PetscErrorCode MapParetoSetSeed(MapPareto p, uint64_t seed);
/* after Solve: number of preference vectors, TAO solves run, and solves that raised an error
   (trapped and skipped), summed over the ranks */
PetscErrorCode MapParetoGetStatistics(MapPareto p, PetscInt *npref, PetscInt *nsolves, PetscInt *nfailed);
/* the ideal point (max of each objective over the box) and the nadir estimate (min over the
   single-objective optima), m values each (borrowed); computed by Solve or Pick */
PetscErrorCode MapParetoGetIdealNadir(MapPareto p, const double **ideal, const double **nadir);
/* MapParetoPreferenceValue - the pick's criterion applied to objective values f[m] (e.g. measured
   accuracies): the scalarised value for preference w (any positive scale), normalised by the
   ideal and nadir of the objectives; smaller is better. Compares evaluated models with the pick
   on the pick's own terms. Needs the ideal point (Solve or Pick first). Not collective. */
PetscErrorCode MapParetoPreferenceValue(MapPareto p, const double *w, const double *f, double *value);
/* MapParetoPreferences - the Das-Dennis lattice of m-vectors with H divisions (lexicographic,
   corners included): *W[n*m] (PetscFree). Not collective. */
PetscErrorCode MapParetoPreferences(int m, PetscInt H, PetscInt *n, double **W);

/* Front quality (objectives maximised): IGD = mean distance from each true point to the nearest
   found one; GD = the reverse; hypervolume w.r.t. reference point ref[m] (exact for m <= 3, Monte
   Carlo with a fixed seed above). */
double MapFrontIGD(int m, PetscInt ntrue, const double *Ftrue, PetscInt nfound, const double *Ffound);
double MapFrontHypervolume(int m, PetscInt n, const double *F, const double *ref);
/* MapDominates - 1 if a[m] dominates b[m] (maximisation: >= everywhere, > somewhere) */
int MapDominates(int m, const double *a, const double *b);
/* MapNonDominated - keep[i] = 1 if point i is not dominated (maximisation); returns the count. */
PetscInt MapNonDominated(int m, PetscInt n, const double *F, int *keep);

#endif
