/* Fixed-order arithmetic (src/core/core_fixed.c): kernels and elementary functions whose bits depend
   only on IEEE-754 binary32/64 + - * / and sqrt, never on the CPU model, the BLAS build, its thread
   count or the libm variant glibc picks for the CPU (FMA or not). Used where the bits must be the
   same on every machine: the zoo's training and the mlp evaluator's -map_eval_kernel fixed. */
#ifndef MAPMERGE_FIXEDIMPL_H
#define MAPMERGE_FIXEDIMPL_H

#include <mapmerge/core.h>

/* MapFixedGemm - C[i*ldc + j] = sum_{k=0..K-1} A[i*ai + k*ak] * B[k*ldb + j], i < M, j < N, each
   element accumulated from 0.0f in ascending k with one rounding per multiply and per add (no FMA):
   the bits of an element never depend on M, N, the tiling or where the row lies in the call. */
void MapFixedGemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t ai, int64_t ak, const float *B, int64_t ldb, float *C, int64_t ldc);

/* MapFixedExp, MapFixedLog - exp and log in double from + - * / only (relative error below 1e-15),
   the same bits on every machine (glibc's exp/log pick FMA variants by CPU). */
double MapFixedExp(double x);
double MapFixedLog(double x);

/* MapPinBLASThreads - makes the loaded BLAS run on one thread (OpenBLAS, BLIS or MKL, found at run
   time), because a multi-threaded sgemm splits its rows by the cores the process may use, and the
   bits follow the split. Called once by MapInitializePackage. MapBLASThreadsPinned: what was done,
   for the run manifest. */
void        MapPinBLASThreads(void);
const char *MapBLASThreadsPinned(void);

#endif
