/* Subcommands of the `mapmerge` driver; each reads its options, checks for unused ones, then works. */
#ifndef MAPMERGE_RUN_H
#define MAPMERGE_RUN_H

#include <mapmerge/eval.h>
#include <mapmerge/sample.h>
#include <mapmerge/surrogate.h>
#include <mapmerge/pareto.h>
#include <mapmerge/zoo.h>

PetscErrorCode MapCommandImport(MPI_Comm comm);
PetscErrorCode MapCommandExport(MPI_Comm comm);
PetscErrorCode MapCommandInfo(MPI_Comm comm);
PetscErrorCode MapCommandEval(MPI_Comm comm);
PetscErrorCode MapCommandRun(MPI_Comm comm);
PetscErrorCode MapCommandZoo(MPI_Comm comm);

#endif
