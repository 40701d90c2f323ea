/* The run's phases: each a PETSc log stage (-log_view) and a wall-clock total (the summary's
   "time per phase"), begun and ended in one place instead of a push/pop and two clock reads each. */
#include "runimpl.h"

const char *const MapRunPhaseNames[MAP_RUN_NPHASE] = {"setup", "evaluate", "fit", "search", "reevaluate", "write"};

PetscErrorCode MapRunPhaseBegin(MapRunCtx *r, MapRunPhase p)
{
  PetscFunctionBegin;
  PetscCall(PetscLogStagePush(r->stages[p]));
  r->phase    = (int)p;
  r->phase_t0 = MapWallTime();
  PetscFunctionReturn(0);
}

PetscErrorCode MapRunPhaseEnd(MapRunCtx *r, MapRunPhase p)
{
  PetscFunctionBegin;
  PetscCall(PetscLogStagePop());
  r->phase = -1;
  r->t_phase[p] += MapWallTime() - r->phase_t0;
  PetscFunctionReturn(0);
}
