/* surrogate_ls: the fixed BLACS grid and the PDGELS least-squares solve behind MapSurrogate.
 *
 * Grid choice (docs/design.md §5.3: same bits at any -n). ScaLAPACK's floating-point result depends on the
 * grid shape and the block size, because they decide how the Householder reductions are split and
 * summed. So neither may depend on the job's rank count: the grid is a FIXED nprow x npcol on the
 * first nprow*npcol ranks of the communicator, with a fixed block size, and the other ranks receive
 * the result by MPI_Bcast. The default is 1 x 1: it is the only shape every job (even -n 1) can
 * host, so it is the only default that gives identical bits at -n 1, 2, 3, 4; at model-level sizes
 * (F = 45 at T = 8, a 90 x 45 solve in ~1 ms) a bigger grid would only add communication. The
 * distributed solve earns its place at large F (1,326 unknowns at T = 50, more with per-layer
 * coefficients), where the user sets -map_surrogate_grid R,C; results are then the same bits for any
 * job with at least R*C ranks, and a job with fewer ranks stops with an error instead of silently
 * changing the grid (and the bits). */
#include "surrogateimpl.h"
#include "scalapack_impl.h"

PetscErrorCode MapSurrogateGridSetUp(MapSurrogate s)
{
  int need = s->nprow * s->npcol;

  PetscFunctionBegin;
  if (s->grid_ready) PetscFunctionReturn(0);
  PetscCheck(need <= s->size, s->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_surrogate_grid %d,%d needs %d MPI ranks, but the job has %d (use a smaller grid, or more ranks)",
             s->nprow, s->npcol, need, s->size);
  PetscCallMPI(MPI_Comm_split(s->comm, s->rank < need ? 0 : MPI_UNDEFINED, s->rank, &s->gcomm));
  if (s->gcomm != MPI_COMM_NULL) {
    int handle = Csys2blacs_handle(s->gcomm);
    int nr, nc;
    s->ctxt = handle;
    Cblacs_gridinit(&s->ctxt, "Row", s->nprow, s->npcol);
    Cfree_blacs_system_handle(handle);
    Cblacs_gridinfo(s->ctxt, &nr, &nc, &s->myrow, &s->mycol);
    PetscCheck(nr == s->nprow && nc == s->npcol && s->myrow >= 0, PETSC_COMM_SELF, PETSC_ERR_LIB,
               "BLACS grid set-up failed: asked for %d x %d, got %d x %d (my position %d,%d)", s->nprow, s->npcol, nr, nc,
               s->myrow, s->mycol);
  }
  s->grid_ready = PETSC_TRUE;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSurrogateGridDestroy(MapSurrogate s)
{
  PetscFunctionBegin;
  if (!s->grid_ready) PetscFunctionReturn(0);
  if (s->gcomm != MPI_COMM_NULL) {
    Cblacs_gridexit(s->ctxt);
    PetscCallMPI(MPI_Comm_free(&s->gcomm));
  }
  s->grid_ready = PETSC_FALSE;
  PetscFunctionReturn(0);
}

/* 0-based global index of 0-based local index il in a block-cyclic distribution starting on process 0 */
static inline int map_l2g(int il, int nb, int iproc, int nprocs) { return ((il / nb) * nprocs + iproc) * nb + il % nb; }

PetscErrorCode MapSurrogateGridSolve(MapSurrogate s, int m, int nc, int nrhs, const double *A, const double *B, double *X,
                                     double *R)
{
  const int izero = 0, ione = 1;
  int       desca[9], descb[9], info, lwork;
  int       mb_rows = m > nc ? m : nc;
  double   *a, *b, *work, wq;

  PetscFunctionBegin;
  PetscCheck(s->gcomm != MPI_COMM_NULL, PETSC_COMM_SELF, PETSC_ERR_ORDER, "MapSurrogateGridSolve called off the grid");
  PetscCheck(m >= nc && nc > 0 && nrhs > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_SIZ,
             "least squares needs m >= n > 0 and nrhs > 0, got m=%d n=%d nrhs=%d", m, nc, nrhs);
  PetscCall(PetscLogEventBegin(MAP_EVENT_SurrogateSolve, 0, 0, 0, 0));
  int nb   = s->nb;
  int mloc = numroc_(&m, &nb, &s->myrow, &izero, &s->nprow);
  int nloc = numroc_(&nc, &nb, &s->mycol, &izero, &s->npcol);
  int bloc = numroc_(&mb_rows, &nb, &s->myrow, &izero, &s->nprow);
  int rloc = numroc_(&nrhs, &nb, &s->mycol, &izero, &s->npcol);
  int llda = mloc > 1 ? mloc : 1;
  int lldb = bloc > 1 ? bloc : 1;
  descinit_(desca, &m, &nc, &nb, &nb, &izero, &izero, &s->ctxt, &llda, &info);
  PetscCheck(!info, PETSC_COMM_SELF, PETSC_ERR_LIB, "descinit_ for A (%d x %d, nb %d) failed: info %d", m, nc, nb, info);
  descinit_(descb, &mb_rows, &nrhs, &nb, &nb, &izero, &izero, &s->ctxt, &lldb, &info);
  PetscCheck(!info, PETSC_COMM_SELF, PETSC_ERR_LIB, "descinit_ for B (%d x %d, nb %d) failed: info %d", mb_rows, nrhs, nb, info);
  PetscCall(PetscCalloc1((size_t)llda * (nloc > 0 ? nloc : 1), &a));
  PetscCall(PetscCalloc1((size_t)lldb * (rloc > 0 ? rloc : 1), &b));
  for (int jl = 0; jl < nloc; jl++) {
    int jg = map_l2g(jl, nb, s->mycol, s->npcol);
    for (int il = 0; il < mloc; il++) a[il + (size_t)jl * llda] = A[map_l2g(il, nb, s->myrow, s->nprow) + (size_t)jg * m];
  }
  for (int jl = 0; jl < rloc; jl++) {
    int jg = map_l2g(jl, nb, s->mycol, s->npcol);
    for (int il = 0; il < bloc; il++) {
      int ig = map_l2g(il, nb, s->myrow, s->nprow);
      if (ig < m) b[il + (size_t)jl * lldb] = B[ig + (size_t)jg * m];
    }
  }
  lwork = -1;
  pdgels_("N", &m, &nc, &nrhs, a, &ione, &ione, desca, b, &ione, &ione, descb, &wq, &lwork, &info, 1);
  PetscCheck(!info, PETSC_COMM_SELF, PETSC_ERR_LIB, "pdgels_ workspace query (%d x %d) failed: info %d", m, nc, info);
  lwork = (int)wq + 1;
  PetscCall(PetscMalloc1(lwork, &work));
  pdgels_("N", &m, &nc, &nrhs, a, &ione, &ione, desca, b, &ione, &ione, descb, work, &lwork, &info, 1);
  PetscCall(PetscFree(work));
  PetscCheck(!info, PETSC_COMM_SELF, PETSC_ERR_LIB, "pdgels_ (%d x %d, %d rhs, grid %d x %d, nb %d) failed: info %d", m, nc,
             nrhs, s->nprow, s->npcol, nb, info);

  /* Gather: every entry of X and R is owned by exactly one grid rank; the others add exact zeros, so
     the sum is the owner's value, bit for bit, on every grid rank. */
  size_t  nx = (size_t)nc * nrhs, nr = R ? (size_t)nc * nc : 0;
  double *buf;
  PetscCall(PetscCalloc1(nx + nr, &buf));
  for (int jl = 0; jl < rloc; jl++) {
    int jg = map_l2g(jl, nb, s->mycol, s->npcol);
    for (int il = 0; il < bloc; il++) {
      int ig = map_l2g(il, nb, s->myrow, s->nprow);
      if (ig < nc) buf[ig + (size_t)jg * nc] = b[il + (size_t)jl * lldb];
    }
  }
  if (R) {
    for (int jl = 0; jl < nloc; jl++) {
      int jg = map_l2g(jl, nb, s->mycol, s->npcol);
      for (int il = 0; il < mloc; il++) {
        int ig = map_l2g(il, nb, s->myrow, s->nprow);
        if (ig <= jg) buf[nx + ig + (size_t)jg * nc] = a[il + (size_t)jl * llda];
      }
    }
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, buf, (int)(nx + nr), MPI_DOUBLE, MPI_SUM, s->gcomm));
  PetscCall(PetscArraycpy(X, buf, nx));
  if (R) PetscCall(PetscArraycpy(R, buf + nx, nr));
  PetscCall(PetscFree(buf));
  PetscCall(PetscFree(a));
  PetscCall(PetscFree(b));
  PetscCall(PetscLogEventEnd(MAP_EVENT_SurrogateSolve, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

/*
  MapSurrogateLeastSquares - solves min ||A X - B||_2 with PDGELS on the surrogate's fixed BLACS grid.

  Collective on the surrogate's communicator.

  Input: m >= nc > 0, nrhs > 0; A[m*nc] and B[m*nrhs] column-major (rank 0's copies are used).
  Output: X[nc*nrhs] column-major, the same bits on every rank.
  Errors: sizes; a grid larger than the job.
*/
PetscErrorCode MapSurrogateLeastSquares(MapSurrogate s, int m, int nc, int nrhs, const double *A, const double *B, double *X)
{
  double *a = NULL, *b = NULL;

  PetscFunctionBegin;
  PetscCheck(m >= nc && nc > 0 && nrhs > 0, s->comm, PETSC_ERR_ARG_SIZ,
             "MapSurrogateLeastSquares needs m >= n > 0 and nrhs > 0, got m=%d n=%d nrhs=%d", m, nc, nrhs);
  PetscCall(MapSurrogateGridSetUp(s));
  if (s->gcomm != MPI_COMM_NULL) {
    PetscCall(PetscMalloc2((size_t)m * nc, &a, (size_t)m * nrhs, &b));
    if (s->rank == 0) {
      PetscCall(PetscArraycpy(a, A, (size_t)m * nc));
      PetscCall(PetscArraycpy(b, B, (size_t)m * nrhs));
    }
    PetscCallMPI(MPI_Bcast(a, m * nc, MPI_DOUBLE, 0, s->gcomm));
    PetscCallMPI(MPI_Bcast(b, m * nrhs, MPI_DOUBLE, 0, s->gcomm));
    PetscCall(MapSurrogateGridSolve(s, m, nc, nrhs, a, b, X, NULL));
    PetscCall(PetscFree2(a, b));
  }
  PetscCallMPI(MPI_Bcast(X, nc * nrhs, MPI_DOUBLE, 0, s->comm));
  PetscFunctionReturn(0);
}
