/* Private state of MapSurrogate (src/surrogate*.c). */
#ifndef MAPMERGE_SURROGATEIMPL_H
#define MAPMERGE_SURROGATEIMPL_H

#include <mapmerge/surrogate.h>

#define MAP_SURROGATE_MSG_LEN 1024

struct _p_MapSurrogate {
  MPI_Comm comm;
  int      rank, size;
  /* BLACS grid: nprow x npcol on the first nprow*npcol ranks of comm (gcomm); MPI_COMM_NULL elsewhere */
  int       nprow, npcol, nb;
  PetscBool grid_ready;
  MPI_Comm  gcomm;
  int       ctxt, myrow, mycol;
  /* options */
  PetscInt  lm_maxit, loo_refit_max;
  PetscReal ridge, rcond_min, xtol, gtol, ftol;
  PetscBool allow_missing; /* NaN targets are unobserved (MapSurrogateSetAllowMissing) */
  /* results */
  int                T, ntarget, F;
  PetscInt           n;
  PetscBool          fitted;
  MapLink           *link;
  double            *theta; /* [ntarget*F], unscaled feature order */
  MapFitDiagnostics *diag;
  char             **names; /* [ntarget] or NULL */
  int                nnames;
};

/* Grid (surrogate_ls.c) */
PetscErrorCode MapSurrogateGridSetUp(MapSurrogate s);
PetscErrorCode MapSurrogateGridDestroy(MapSurrogate s);
/* On grid ranks only: X[nc*nrhs] = argmin ||A X - B|| for replicated A[m*nc], B[m*nrhs] (column-major);
   R[nc*nc] (column-major upper triangle, optional) is the R factor of A. Same bits on every grid rank. */
PetscErrorCode MapSurrogateGridSolve(MapSurrogate s, int m, int nc, int nrhs, const double *A, const double *B, double *X,
                                     double *R);

/* Fitting core on grid ranks (surrogate_fit.c). A data error (rank deficiency, bad target) is
   returned in *status/msg (identical on every grid rank) rather than raised, so that rank 0 can
   broadcast it and every rank of comm raises it together. */
PetscErrorCode MapSurrogateFitOnGrid(MapSurrogate s, const double *C, const double *Y, int *status, char *msg);

/* link g, its derivative, and the clipped inverse used for the linearised start */
double MapLinkEval(MapLink link, double z);
double MapLinkDeriv(MapLink link, double z);
double MapLinkDeriv2(MapLink link, double z);
double MapLinkInverseClipped(MapLink link, double y);

#endif
