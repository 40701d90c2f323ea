/* MapSurrogate - per-target quadratic surrogates M(c) ~ g(1/2 c^T A c + b^T c + e) (DESIGN.md §5.3).
 * Features in a fixed order: [1, c_1..c_T, c_i c_j (i<=j)], F = (T+1)(T+2)/2. Linear least squares
 * with ScaLAPACK PDGELS on a BLACS grid of fixed shape (independent of the rank count, so the same
 * bits at any -n); nonlinear links by Levenberg-Marquardt, each step a PDGELS solve. */
#ifndef MAPMERGE_SURROGATE_H
#define MAPMERGE_SURROGATE_H

#include <mapmerge/core.h>

typedef enum { MAP_LINK_IDENTITY, MAP_LINK_SIGMOID, MAP_LINK_SOFTPLUS } MapLink;

typedef struct {
  double r2, rmse, loo_rmse, cond; /* on the training data; leave-one-out RMSE; condition estimate */
  int    iterations;               /* LM iterations */
} MapFitDiagnostics;

typedef struct _p_MapSurrogate *MapSurrogate;

PetscErrorCode MapSurrogateCreate(MPI_Comm comm, MapSurrogate *s);
/* options: -map_surrogate_grid_rows/-cols (fixed BLACS grid), -map_surrogate_block, -map_surrogate_lm_maxit,
   -map_surrogate_ridge (default 0) */
PetscErrorCode MapSurrogateSetFromOptions(MapSurrogate s);
/* MapSurrogateFit - collective: fits ntarget targets on n samples C[n*T]; Y[n*ntarget] (column k is
   target k) with link[k]. Warns when n < 1.5 F. Same result on every rank. */
PetscErrorCode MapSurrogateFit(MapSurrogate s, int T, PetscInt n, const double *C, int ntarget, const double *Y,
                               const MapLink *link);
PetscErrorCode MapSurrogateGetSizes(MapSurrogate s, int *T, int *ntarget, int *F);
/* parameters of target k: F values in feature order */
PetscErrorCode MapSurrogateGetParams(MapSurrogate s, int k, const double **theta);
PetscErrorCode MapSurrogateGetDiagnostics(MapSurrogate s, int k, MapFitDiagnostics *d);
/* MapSurrogatePredict - value of target k at c, and its gradient grad[T] if grad != NULL. Not collective. */
PetscErrorCode MapSurrogatePredict(MapSurrogate s, int k, const double *c, double *value, double *grad);
PetscErrorCode MapSurrogateView(MapSurrogate s, PetscViewer viewer);
PetscErrorCode MapSurrogateDestroy(MapSurrogate *s);

/* MapQuadraticFeatures - phi[F] for c[T] (the fixed feature order). */
void MapQuadraticFeatures(int T, const double *c, double *phi);

#endif
