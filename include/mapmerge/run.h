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

/* MapRunCatchSignals - from now on SIGUSR1/SIGTERM ask `run` to checkpoint (exit 85) instead of
   ending the process. Plain C, no PETSc: the driver calls it before PetscInitialize, so a signal
   that comes during MPI start-up or a long setup is not lost. Returns 0, or -1 with errno set. */
int MapRunCatchSignals(void);
/* MapRunSignalCaught - the signal number MapRunCatchSignals' handler has seen, or 0. Not collective. */
int MapRunSignalCaught(void);

#endif
