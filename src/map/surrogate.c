/* MapSurrogate: per-target quadratic surrogates of the metrics (docs/design.md §5.3).
 *
 * Model. phi(c) = [1, c_1..c_T, c_i c_j (i <= j, i outer)], F = (T+1)(T+2)/2, and
 * M_k(c) ~ g_k(phi(c).theta_k). This is the paper's g(1/2 c^T A c + b^T c + e) with
 *   e = theta_0,  b_i = theta_{1+i},  A_ii = 2 theta_(ii),  A_ij = A_ji = theta_(ij) (i < j),
 * since 1/2 c^T A c = sum_i 1/2 A_ii c_i^2 + sum_{i<j} A_ij c_i c_j (MapSurrogateGetQuadratic).
 *
 * Parallelism: the solves run on a fixed BLACS grid (see surrogate_ls.c for why the default is 1x1);
 * the grid ranks run the fit redundantly and rank 0 broadcasts parameters, diagnostics and any data
 * error to the whole communicator, so every rank returns the same bits or the same error. */
#include "surrogateimpl.h"
#include <petscviewer.h>

/*
  MapSurrogateCreate - an empty surrogate on comm with default options (grid 1x1, block 64, no ridge).

  Collective.
*/
PetscErrorCode MapSurrogateCreate(MPI_Comm comm, MapSurrogate *s)
{
  MapSurrogate x;

  PetscFunctionBegin;
  PetscCall(MapInitializePackage());
  PetscCall(PetscNew(&x));
  x->comm = comm;
  PetscCallMPI(MPI_Comm_rank(comm, &x->rank));
  PetscCallMPI(MPI_Comm_size(comm, &x->size));
  x->nprow         = 1;
  x->npcol         = 1;
  x->nb            = 64;
  x->gcomm         = MPI_COMM_NULL;
  x->lm_maxit      = 100;
  x->loo_refit_max = 40; /* exact refits cost n LM fits per target: 21 s of 21.3 at T = 8 (bench/map_quality) */
  x->ridge         = 0;
  x->rcond_min     = 1e-12;
  x->xtol          = 1e-8; /* MINPACK's default (sqrt of machine epsilon) */
  x->gtol          = 1e-8;
  x->ftol          = 1e-10;
  *s               = x;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSurrogateSetGrid(MapSurrogate s, int nprow, int npcol, int nb)
{
  PetscFunctionBegin;
  PetscCheck(nprow >= 1 && npcol >= 1, s->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "surrogate BLACS grid must be at least 1 x 1, got %d x %d", nprow, npcol);
  PetscCall(MapSurrogateGridDestroy(s));
  s->nprow = nprow;
  s->npcol = npcol;
  if (nb > 0) s->nb = nb;
  PetscFunctionReturn(0);
}

/*
  MapSurrogateSetFromOptions - reads -map_surrogate_grid R,C, -map_surrogate_block, -map_surrogate_lm_maxit,
  -map_surrogate_ridge, -map_surrogate_loo_refit_max, -map_surrogate_rcond_min.

  Collective.
*/
PetscErrorCode MapSurrogateSetFromOptions(MapSurrogate s)
{
  PetscInt  grid[2] = {s->nprow, s->npcol}, ng = 2, nb = s->nb;
  PetscBool set;

  PetscFunctionBegin;
  PetscOptionsBegin(s->comm, NULL, "Surrogate fit (MapSurrogate)", NULL);
  PetscCall(PetscOptionsIntArray("-map_surrogate_grid", "BLACS grid R,C for the PDGELS solves, on the first R*C ranks "
                                                        "(fixed, so results do not depend on the job size)",
                                 "MapSurrogateSetGrid", grid, &ng, &set));
  PetscCheck(!set || ng == 2, s->comm, PETSC_ERR_ARG_WRONG, "-map_surrogate_grid expects R,C (two integers), got %" PetscInt_FMT " value(s)", ng);
  PetscCall(PetscOptionsInt("-map_surrogate_block", "ScaLAPACK block size", "MapSurrogateSetGrid", nb, &nb, NULL));
  PetscCheck(nb >= 1, s->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_surrogate_block must be >= 1, got %" PetscInt_FMT, nb);
  PetscCall(PetscOptionsInt("-map_surrogate_lm_maxit", "maximum Levenberg-Marquardt iterations (sigmoid/softplus links)",
                            NULL, s->lm_maxit, &s->lm_maxit, NULL));
  PetscCall(PetscOptionsReal("-map_surrogate_lm_xtol", "Levenberg-Marquardt stops when a step changes the scaled parameters by less than this (relative)",
                             NULL, s->xtol, &s->xtol, NULL));
  PetscCall(PetscOptionsReal("-map_surrogate_lm_gtol", "Levenberg-Marquardt stops when the residual's cosine with every column of the Jacobian is below this",
                             NULL, s->gtol, &s->gtol, NULL));
  PetscCall(PetscOptionsReal("-map_surrogate_lm_ftol", "Levenberg-Marquardt stops when an accepted step lowers the squared residual by at most this (relative)",
                             NULL, s->ftol, &s->ftol, NULL));
  PetscCheck(s->xtol >= 0 && s->gtol >= 0 && s->ftol >= 0, s->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_surrogate_lm_xtol, _gtol and _ftol must be >= 0, got %g, %g and %g",
             (double)s->xtol, (double)s->gtol, (double)s->ftol);
  PetscCall(PetscOptionsReal("-map_surrogate_ridge", "ridge penalty on the scaled non-constant parameters", NULL, s->ridge,
                             &s->ridge, NULL));
  PetscCheck(s->ridge >= 0, s->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_surrogate_ridge must be >= 0, got %g", (double)s->ridge);
  PetscCall(PetscOptionsInt("-map_surrogate_loo_refit_max", "exact leave-one-out refits for nonlinear links up to this many "
                                                            "samples; beyond, the linearised estimate",
                            NULL, s->loo_refit_max, &s->loo_refit_max, NULL));
  PetscCall(PetscOptionsReal("-map_surrogate_rcond_min", "reciprocal condition (scaled design) below which the design counts "
                                                         "as rank deficient",
                             NULL, s->rcond_min, &s->rcond_min, NULL));
  PetscOptionsEnd();
  {
    /* checked here, not at the first fit: a run evaluates its whole design before it fits */
    PetscMPIInt size;
    PetscCallMPI(MPI_Comm_size(s->comm, &size));
    PetscCheck(grid[0] >= 1 && grid[1] >= 1 && grid[0] <= size && grid[1] <= size && grid[0] * grid[1] <= size, s->comm, PETSC_ERR_ARG_OUTOFRANGE,
               "-map_surrogate_grid %" PetscInt_FMT ",%" PetscInt_FMT ": needs R,C >= 1 and R*C <= the job's %d MPI ranks", grid[0], grid[1], size);
    PetscCheck(nb <= 1 << 20, s->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_surrogate_block %" PetscInt_FMT ": at most 2^20", nb);
    PetscCheck(s->lm_maxit >= 1, s->comm, PETSC_ERR_ARG_OUTOFRANGE,
               "-map_surrogate_lm_maxit %" PetscInt_FMT ": need >= 1 (the sigmoid and softplus fits are Levenberg-Marquardt iterations)", s->lm_maxit);
    PetscCheck(s->loo_refit_max >= 0, s->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_surrogate_loo_refit_max %" PetscInt_FMT ": need >= 0", s->loo_refit_max);
    PetscCheck(s->rcond_min >= 0 && s->rcond_min < 1, s->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_surrogate_rcond_min %g: need 0 <= value < 1",
               (double)s->rcond_min);
  }
  PetscCall(MapSurrogateSetGrid(s, (int)grid[0], (int)grid[1], (int)nb));
  PetscFunctionReturn(0);
}

PetscErrorCode MapSurrogateSetTargetNames(MapSurrogate s, int ntarget, const char *const *names)
{
  PetscFunctionBegin;
  PetscCall(MapFreeList(s->nnames, &s->names));
  PetscCall(PetscCalloc1(ntarget + 1, &s->names));
  for (int k = 0; k < ntarget; k++) PetscCall(PetscStrallocpy(names[k], &s->names[k]));
  s->nnames = ntarget;
  PetscFunctionReturn(0);
}

/*
  MapSurrogateSetAllowMissing - with allow, a NaN target value means "not observed at this sample"
  (Bayesian MAP's per-task rounds evaluate one task per new point): each target is fitted on the
  samples where it is observed. Default: NaN is an error. Not collective (call on every rank).
*/
PetscErrorCode MapSurrogateSetAllowMissing(MapSurrogate s, PetscBool allow)
{
  PetscFunctionBegin;
  s->allow_missing = allow;
  PetscFunctionReturn(0);
}

/* every rank checks its own inputs (they must be the same everywhere) */
static PetscErrorCode map_check_inputs(MapSurrogate s, int T, PetscInt n, const double *C, int K, const double *Y,
                                       const MapLink *link)
{
  char msg[256] = "";

  PetscFunctionBegin;
  for (PetscInt i = 0; i < n && !msg[0]; i++) {
    for (int t = 0; t < T && !msg[0]; t++)
      if (!isfinite(C[i * T + t])) snprintf(msg, sizeof(msg), "sample %" PetscInt_FMT ": coefficient %d is %g", i, t, C[i * T + t]);
    for (int k = 0; k < K && !msg[0]; k++) {
      double y = Y[i * K + k];
      if (isnan(y) && s->allow_missing) continue; /* not observed */
      if (!isfinite(y))
        snprintf(msg, sizeof(msg), "sample %" PetscInt_FMT ", target %d: value is %g%s", i, k, y,
                 isnan(y) ? " (NaN marks a missing value only after MapSurrogateSetAllowMissing)" : "");
      else if (link[k] == MAP_LINK_SIGMOID && (y < 0 || y > 1))
        snprintf(msg, sizeof(msg), "sample %" PetscInt_FMT ", target %d (sigmoid link): expected an accuracy in [0,1], got %g (a percentage?)", i, k, y);
      else if (link[k] == MAP_LINK_SOFTPLUS && y < 0)
        snprintf(msg, sizeof(msg), "sample %" PetscInt_FMT ", target %d (softplus link): expected a loss >= 0, got %g", i, k, y);
    }
  }
  MapCheckAll(s->comm, !msg[0], PETSC_ERR_ARG_OUTOFRANGE, "MapSurrogateFit: %s", msg);
  PetscFunctionReturn(0);
}

/*
  MapSurrogateFit - fits one quadratic surrogate per target.

  Collective. Input: T >= 1 coefficients, n samples C[n*T] (row-major), ntarget targets Y[n*ntarget]
  (row i = sample i) with link[ntarget]. Rank 0's C and Y are used; the result is the same bits on every
  rank and for every job size (for a fixed -map_surrogate_grid and -map_surrogate_block).
  Errors: non-finite data, accuracies outside [0,1], negative losses, a rank-deficient design (naming
  T, n, F and the numerical rank), a grid larger than the job.
  Prints a warning when n < 1.5 F.
*/
PetscErrorCode MapSurrogateFit(MapSurrogate s, int T, PetscInt n, const double *C, int ntarget, const double *Y,
                               const MapLink *link)
{
  int    status = 0;
  char   msg[MAP_SURROGATE_MSG_LEN];
  double t0 = MapWallTime();

  PetscFunctionBegin;
  PetscCheck(T >= 1 && n >= 1 && ntarget >= 1, s->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "MapSurrogateFit needs T >= 1, n >= 1 and ntarget >= 1, got T=%d n=%" PetscInt_FMT " ntarget=%d", T, n, ntarget);
  PetscCheck(n < 1000000000 / (T + 1), s->comm, PETSC_ERR_ARG_OUTOFRANGE, "MapSurrogateFit: n=%" PetscInt_FMT " too large", n);
  PetscCall(map_check_inputs(s, T, n, C, ntarget, Y, link));
  PetscCall(MapSurrogateGridSetUp(s));
  PetscCall(PetscLogEventBegin(MAP_EVENT_SurrogateFit, 0, 0, 0, 0));
  PetscCall(PetscFree3(s->link, s->theta, s->diag));
  s->fitted  = PETSC_FALSE;
  s->T       = T;
  s->n       = n;
  s->ntarget = ntarget;
  s->F       = (T + 1) * (T + 2) / 2;
  PetscCall(PetscCalloc3(ntarget, &s->link, (size_t)ntarget * s->F, &s->theta, ntarget, &s->diag));
  PetscCall(PetscArraycpy(s->link, link, ntarget));
  if (n < 1.5 * s->F)
    PetscCall(PetscPrintf(s->comm,
                          "WARNING: surrogate fit with n = %" PetscInt_FMT " samples for F = %d unknowns (T = %d): fewer than "
                          "1.5 F = %.1f, the fit may interpolate noise (see the leave-one-out error)\n",
                          n, s->F, T, 1.5 * s->F));
  if (s->gcomm != MPI_COMM_NULL) {
    double *c, *y;
    PetscCall(PetscMalloc2((size_t)n * T, &c, (size_t)n * ntarget, &y));
    if (s->rank == 0) {
      PetscCall(PetscArraycpy(c, C, (size_t)n * T));
      PetscCall(PetscArraycpy(y, Y, (size_t)n * ntarget));
    }
    PetscCallMPI(MPI_Bcast(c, (int)(n * T), MPI_DOUBLE, 0, s->gcomm));
    PetscCallMPI(MPI_Bcast(y, (int)(n * ntarget), MPI_DOUBLE, 0, s->gcomm));
    PetscCall(MapSurrogateFitOnGrid(s, c, y, &status, msg));
    PetscCall(PetscFree2(c, y));
  }
  PetscCallMPI(MPI_Bcast(&status, 1, MPI_INT, 0, s->comm));
  if (status) {
    PetscCallMPI(MPI_Bcast(msg, MAP_SURROGATE_MSG_LEN, MPI_CHAR, 0, s->comm));
    PetscCall(PetscLogEventEnd(MAP_EVENT_SurrogateFit, 0, 0, 0, 0));
    SETERRQ(s->comm, PETSC_ERR_NOT_CONVERGED, "%s", msg);
  }
  PetscCallMPI(MPI_Bcast(s->theta, ntarget * s->F, MPI_DOUBLE, 0, s->comm));
  PetscCallMPI(MPI_Bcast(s->diag, (int)(ntarget * sizeof(MapFitDiagnostics)), MPI_BYTE, 0, s->comm));
  s->fitted = PETSC_TRUE;
  PetscCall(PetscLogEventEnd(MAP_EVENT_SurrogateFit, 0, 0, 0, 0));
  PetscCall(PetscInfo(NULL, "surrogate fit: T=%d n=%" PetscInt_FMT " F=%d targets=%d in %.3f s\n", T, n, s->F, ntarget,
                      MapWallTime() - t0));
  PetscFunctionReturn(0);
}

#define MAP_CHECK_TARGET(s, k) \
  do { \
    PetscCheck((s)->fitted, PETSC_COMM_SELF, PETSC_ERR_ORDER, "MapSurrogate: call MapSurrogateFit first"); \
    PetscCheck((k) >= 0 && (k) < (s)->ntarget, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, \
               "MapSurrogate: target %d out of range [0,%d)", (k), (s)->ntarget); \
  } while (0)

PetscErrorCode MapSurrogateGetSizes(MapSurrogate s, int *T, int *ntarget, int *F)
{
  PetscFunctionBegin;
  if (T) *T = s->T;
  if (ntarget) *ntarget = s->ntarget;
  if (F) *F = s->F;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSurrogateGetParams(MapSurrogate s, int k, const double **theta)
{
  PetscFunctionBegin;
  MAP_CHECK_TARGET(s, k);
  *theta = s->theta + (size_t)k * s->F;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSurrogateGetLink(MapSurrogate s, int k, MapLink *link)
{
  PetscFunctionBegin;
  MAP_CHECK_TARGET(s, k);
  *link = s->link[k];
  PetscFunctionReturn(0);
}

PetscErrorCode MapSurrogateGetDiagnostics(MapSurrogate s, int k, MapFitDiagnostics *d)
{
  PetscFunctionBegin;
  MAP_CHECK_TARGET(s, k);
  *d = s->diag[k];
  PetscFunctionReturn(0);
}

PetscErrorCode MapSurrogateGetQuadratic(MapSurrogate s, int k, double *A, double *b, double *e)
{
  int           T = s->T;
  const double *th;

  PetscFunctionBegin;
  MAP_CHECK_TARGET(s, k);
  th = s->theta + (size_t)k * s->F;
  if (e) *e = th[0];
  if (b)
    for (int i = 0; i < T; i++) b[i] = th[1 + i];
  if (A) {
    int q = 1 + T;
    for (int i = 0; i < T; i++)
      for (int j = i; j < T; j++, q++) {
        A[i * T + j] = i == j ? 2 * th[q] : th[q];
        A[j * T + i] = A[i * T + j];
      }
  }
  PetscFunctionReturn(0);
}

/*
  MapSurrogatePredict - value g(phi(c).theta_k) and, if grad != NULL, its gradient in c:
  g'(z) (b + A c) in the notation of MapSurrogateGetQuadratic.

  Not collective.
*/
PetscErrorCode MapSurrogatePredict(MapSurrogate s, int k, const double *c, double *value, double *grad)
{
  PetscFunctionBegin;
  MAP_CHECK_TARGET(s, k);
  PetscCall(MapQuadraticPredict(s->T, s->link[k], s->theta + (size_t)k * s->F, c, value, grad));
  PetscFunctionReturn(0);
}

PetscErrorCode MapSurrogateHessianAdd(MapSurrogate s, int k, const double *c, double scale, double *H)
{
  PetscFunctionBegin;
  MAP_CHECK_TARGET(s, k);
  PetscCall(MapQuadraticHessianAdd(s->T, s->link[k], s->theta + (size_t)k * s->F, c, scale, H));
  PetscFunctionReturn(0);
}

/*
  MapSurrogateView - a table of the targets with link, R^2, RMSE, leave-one-out RMSE, condition
  estimate of the scaled design and LM iterations. Collective on the viewer.
*/
PetscErrorCode MapSurrogateView(MapSurrogate s, PetscViewer viewer)
{
  PetscBool isascii;

  PetscFunctionBegin;
  if (!viewer) PetscCall(PetscViewerASCIIGetStdout(s->comm, &viewer));
  PetscCall(PetscObjectTypeCompare((PetscObject)viewer, PETSCVIEWERASCII, &isascii));
  if (!isascii) PetscFunctionReturn(0);
  PetscCall(PetscViewerASCIIPrintf(viewer, "MapSurrogate: quadratic, BLACS grid %d x %d (block %d), ridge %.4g\n", s->nprow,
                                   s->npcol, s->nb, (double)s->ridge));
  if (!s->fitted) {
    PetscCall(PetscViewerASCIIPrintf(viewer, "  (not fitted)\n"));
    PetscFunctionReturn(0);
  }
  PetscCall(PetscViewerASCIIPrintf(viewer, "  T = %d, F = %d unknowns, n = %" PetscInt_FMT " samples\n", s->T, s->F, s->n));
  PetscCall(PetscViewerASCIIPrintf(viewer, "  %-24s %-9s %10s %11s %11s %10s %6s\n", "target", "link", "R^2", "RMSE", "LOO-RMSE",
                                   "cond", "LM-its"));
  for (int k = 0; k < s->ntarget; k++) {
    char               name[32];
    MapFitDiagnostics *d = &s->diag[k];
    if (s->names && k < s->nnames) snprintf(name, sizeof(name), "%s", s->names[k]);
    else snprintf(name, sizeof(name), "%d", k);
    PetscCall(PetscViewerASCIIPrintf(viewer, "  %-24s %-9s %10.6f %11.4e %11.4e %10.3e %6d\n", name, MapLinkName(s->link[k]),
                                     d->r2, d->rmse, d->loo_rmse, d->cond, d->iterations));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapSurrogateDestroy(MapSurrogate *s)
{
  PetscFunctionBegin;
  if (!s || !*s) PetscFunctionReturn(0);
  PetscCall(MapSurrogateGridDestroy(*s));
  PetscCall(PetscFree3((*s)->link, (*s)->theta, (*s)->diag));
  PetscCall(MapFreeList((*s)->nnames, &(*s)->names));
  PetscCall(PetscFree(*s));
  PetscFunctionReturn(0);
}
