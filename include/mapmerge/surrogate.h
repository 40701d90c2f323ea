/* MapSurrogate - per-target quadratic surrogates M(c) ~ g(1/2 c^T A c + b^T c + e) (docs/design.md §5.3).
 * Features in a fixed order: [1, c_1..c_T, c_i c_j (i<=j, i outer)], F = (T+1)(T+2)/2. Linear least squares
 * with ScaLAPACK PDGELS on a BLACS grid of fixed shape (independent of the rank count, so the same
 * bits at any -n); nonlinear links by Levenberg-Marquardt, each step a PDGELS solve. */
#ifndef MAPMERGE_SURROGATE_H
#define MAPMERGE_SURROGATE_H

#include <mapmerge/core.h>

typedef enum { MAP_LINK_IDENTITY,
               MAP_LINK_SIGMOID,
               MAP_LINK_SOFTPLUS } MapLink;

typedef struct {
  double r2, rmse, loo_rmse, cond; /* on the training data; leave-one-out RMSE; condition estimate */
  int    iterations;               /* LM iterations */
} MapFitDiagnostics;

typedef struct _p_MapSurrogate *MapSurrogate;

PetscErrorCode MapSurrogateCreate(MPI_Comm comm, MapSurrogate *s);
/* options: -map_surrogate_grid R,C (fixed BLACS grid on the first R*C ranks, default 1,1),
   -map_surrogate_block NB (default 64), -map_surrogate_lm_maxit, -map_surrogate_ridge (default 0),
   -map_surrogate_loo_refit_max, -map_surrogate_rcond_min */
PetscErrorCode MapSurrogateSetFromOptions(MapSurrogate s);
/* MapSurrogateSetGrid - fixed nprow x npcol BLACS grid on the first nprow*npcol ranks of the
   communicator, block size nb (<= 0 keeps the current one). Errors at fit time when the job has
   fewer ranks than the grid needs. Call with the same values on every rank; collective when it replaces
   a grid already set up by a fit. */
PetscErrorCode MapSurrogateSetGrid(MapSurrogate s, int nprow, int npcol, int nb);
/* MapSurrogateSetTargetNames - names shown by MapSurrogateView (copied); optional. */
PetscErrorCode MapSurrogateSetTargetNames(MapSurrogate s, int ntarget, const char *const *names);
/* MapSurrogateFit - collective: fits ntarget targets on n samples C[n*T]; Y[n*ntarget] (column k is
   target k) with link[k]. Warns when n < 1.5 F. Same result on every rank (rank 0's inputs are used). */
PetscErrorCode MapSurrogateFit(MapSurrogate s, int T, PetscInt n, const double *C, int ntarget, const double *Y,
                               const MapLink *link);
/* MapSurrogateSetAllowMissing - allow NaN entries of Y: a NaN means the target was not observed at
   that sample, and each target is fitted on the samples where it is observed (targets observed at
   the same samples share one QR). With complete data the fit is the same bits either way. */
PetscErrorCode MapSurrogateSetAllowMissing(MapSurrogate s, PetscBool allow);
PetscErrorCode MapSurrogateGetSizes(MapSurrogate s, int *T, int *ntarget, int *F);
/* parameters of target k: F values in feature order */
PetscErrorCode MapSurrogateGetParams(MapSurrogate s, int k, const double **theta);
/* MapSurrogateGetQuadratic - the same parameters as the paper's A[T*T] (symmetric, row-major), b[T], e:
   phi(c).theta = 1/2 c^T A c + b^T c + e. Any output may be NULL. Not collective. */
PetscErrorCode MapSurrogateGetQuadratic(MapSurrogate s, int k, double *A, double *b, double *e);
PetscErrorCode MapSurrogateGetLink(MapSurrogate s, int k, MapLink *link);
PetscErrorCode MapSurrogateGetDiagnostics(MapSurrogate s, int k, MapFitDiagnostics *d);
/* MapSurrogatePredict - value of target k at c, and its gradient grad[T] if grad != NULL. Not collective. */
PetscErrorCode MapSurrogatePredict(MapSurrogate s, int k, const double *c, double *value, double *grad);
/* MapSurrogateHessianAdd - H[T*T] (column-major) += scale * the Hessian of target k at c. Not collective. */
PetscErrorCode MapSurrogateHessianAdd(MapSurrogate s, int k, const double *c, double scale, double *H);
PetscErrorCode MapSurrogateView(MapSurrogate s, PetscViewer viewer);
PetscErrorCode MapSurrogateDestroy(MapSurrogate *s);

/* MapSurrogateLeastSquares - collective: min ||A X - B||_2 for a full-rank A[m*nc] (column-major,
   m >= nc) and B[m*nrhs] (column-major) on the surrogate's BLACS grid with PDGELS; X[nc*nrhs] on
   every rank. The building block of MapSurrogateFit, public for tests and benchmarks. */
PetscErrorCode MapSurrogateLeastSquares(MapSurrogate s, int m, int nc, int nrhs, const double *A, const double *B, double *X);

/* MapQuadraticPredict - g(phi(c) . theta) for parameters theta[F] and link g, and its gradient in c
   (grad may be NULL): what MapSurrogatePredict computes, for parameters read back from results.h5. */
PetscErrorCode MapQuadraticPredict(int T, MapLink link, const double *theta, const double *c, double *value, double *grad);
/* MapQuadraticHessianAdd - H[T*T] (column-major) += scale * Hess_c g(phi(c) . theta):
   g''(z) grad z grad z^T + g'(z) A, with A the quadratic's (constant) Hessian. */
PetscErrorCode MapQuadraticHessianAdd(int T, MapLink link, const double *theta, const double *c, double scale, double *H);
/* MapQuadraticFeatures - phi[F] for c[T] (the fixed feature order). */
void MapQuadraticFeatures(int T, const double *c, double *phi);
/* MapLinkName - "identity", "sigmoid", "softplus" */
const char *MapLinkName(MapLink link);

#endif
