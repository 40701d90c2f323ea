/* MapSampler - designs of coefficient vectors in a box [lo,hi]^T (DESIGN.md §5.1). */
#ifndef MAPMERGE_SAMPLE_H
#define MAPMERGE_SAMPLE_H

#include <mapmerge/core.h>

typedef enum { MAP_SAMPLE_REFERENCE, MAP_SAMPLE_LHS, MAP_SAMPLE_FILE } MapSampleType;

/* MapSampleGenerate - *C [n*T] row-major (PetscFree). reference: T one-hots plus a lattice,
   (T+1)(T+2) points in all when n <= 0, identifiable for every T; lhs: n Latin-hypercube points;
   file: the rows of a CSV whose header names the tasks (c_<task> or <task>), in task order.
   Draws are keyed on (seed, point, coordinate) only. Not collective (every rank gets the same). */
PetscErrorCode MapSampleGenerate(MapSampleType type, int T, const char *const *task_names, PetscInt n, double lo, double hi,
                                 uint64_t seed, const char *file, PetscInt *nout, double **C);

/* MapSampleDesignRank - numerical rank of the quadratic design matrix [1, c, c_i c_j] of the n
   points (F = (T+1)(T+2)/2 columns), by SVD-free pivoted QR in double. */
PetscErrorCode MapSampleDesignRank(int T, PetscInt n, const double *C, int *rank, int *F);

/* MapSampleCheckIdentifiable - error (with the rank found and needed) when the quadratic surrogate
   cannot be identified from the design. */
PetscErrorCode MapSampleCheckIdentifiable(int T, PetscInt n, const double *C);

/* MapReadCoeffCSV - reads a coefficient CSV (header: task names, optionally c_ prefixed, in any
   order; one row per vector) mapping columns onto task_names; errors name the file and line. */
PetscErrorCode MapReadCoeffCSV(const char *file, int T, const char *const *task_names, PetscInt *n, double **C);

#endif
