/* Subcommands of the `mapmerge` driver; each reads its options, checks for unused ones, then works. */
#ifndef MAPMERGE_RUN_H
#define MAPMERGE_RUN_H

#include <mapmerge/eval.h>
#include <mapmerge/sample.h>
#include <mapmerge/surrogate.h>
#include <mapmerge/pareto.h>
#include <mapmerge/zoo.h>
#include <petscviewer.h>

/* MapRun - one MAP run (docs/methods.md): options, the design and its evaluations (journaled), the
   surrogates, the Pareto front, the pick and the results in the run folder. The driver:
     MapRunCreate(comm, &run); MapRunSetFromOptions(run); MapRunSetUp(run); MapRunSolve(run);
     MapRunView(run, PETSC_VIEWER_STDOUT_(comm)); MapRunDestroy(&run);
   (src/run/run_setup.c; options run_options.c, loop run_map.c and run_nested.c, outputs run_results.c and
   run_results_read.c, summary run_view.c, phases run_phase.c, samples run_samples.c) */
typedef struct _p_MapRun *MapRun;
PetscErrorCode            MapRunCreate(MPI_Comm comm, MapRun *run);
PetscErrorCode            MapRunSetFromOptions(MapRun run);
PetscErrorCode            MapRunSetUp(MapRun run);
PetscErrorCode            MapRunSolve(MapRun run);
PetscErrorCode            MapRunView(MapRun run, PetscViewer viewer);
PetscErrorCode            MapRunDestroy(MapRun *run);

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
