/* Private prototypes for BLACS, ScaLAPACK and the few LAPACK routines mapmerge calls.
 * Debian ships no C header for them (toolchain.md §5). Fortran CHARACTER arguments carry a hidden
 * length argument (size_t with gfortran >= 8) after all the regular arguments. */
#ifndef MAPMERGE_SCALAPACK_IMPL_H
#define MAPMERGE_SCALAPACK_IMPL_H

#include <mpi.h>
#include <stddef.h>

/* BLACS C interface (inside libscalapack-openmpi.so) */
void Cblacs_pinfo(int *mypnum, int *nprocs);
void Cblacs_get(int icontxt, int what, int *val);
void Cblacs_gridinit(int *icontxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int icontxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int icontxt);
int  Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);

/* ScaLAPACK tools and driver */
int  numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb, const int *irsrc, const int *icsrc,
               const int *ictxt, const int *lld, int *info);
void pdgels_(const char *trans, const int *m, const int *n, const int *nrhs, double *a, const int *ia, const int *ja,
             const int *desca, double *b, const int *ib, const int *jb, const int *descb, double *work, const int *lwork,
             int *info, size_t trans_len);

/* LAPACK */
void dgels_(const char *trans, const int *m, const int *n, const int *nrhs, double *a, const int *lda, double *b,
            const int *ldb, double *work, const int *lwork, int *info, size_t trans_len);
void dtrcon_(const char *norm, const char *uplo, const char *diag, const int *n, const double *a, const int *lda,
             double *rcond, double *work, int *iwork, int *info, size_t norm_len, size_t uplo_len, size_t diag_len);
void dgeqp3_(const int *m, const int *n, double *a, const int *lda, int *jpvt, double *tau, double *work, const int *lwork,
             int *info);

#endif
