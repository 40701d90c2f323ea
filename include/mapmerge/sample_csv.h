/* Coefficient vectors from a CSV file (src/map/sample_csv.c): the file design of MapSampler and the
   coefficients of `mapmerge eval`. Below sample.h, which includes it. */
#ifndef MAPMERGE_SAMPLE_CSV_H
#define MAPMERGE_SAMPLE_CSV_H

#include <mapmerge/core.h>

/* MapReadCoeffCSV - reads a coefficient CSV (header: task names, optionally c_ prefixed, in any
   order; one row per vector) mapping columns onto task_names; errors name the file and line. */
PetscErrorCode MapReadCoeffCSV(const char *file, int T, const char *const *task_names, PetscInt *n, double **C);

#endif
