/* MapSampleSet: every evaluated model of a run, appended in evaluation order; the arrays grow on
   append, so no caller sizes them in advance. */
#include "runimpl.h"

PetscErrorCode MapSampleSetAppend(MapSampleSet *s, const double *c, const double *acc, const double *loss, int round, int task)
{
  const int T = s->T;

  PetscFunctionBegin;
  if (s->n == s->cap) { /* grow by doubling: the arrays are copied, never indexed past their end */
    PetscInt   cap = PetscMax(16, 2 * s->cap);
    double    *C, *A, *L, *R, *K;
    PetscBool *Fl;
    PetscCheck(cap <= MAP_RUN_MAX_EVALS, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "a run evaluates at most %d models", MAP_RUN_MAX_EVALS);
    PetscCall(PetscMalloc5(cap * T, &C, cap * T, &A, cap * T, &L, cap, &R, cap, &K));
    PetscCall(PetscCalloc1(cap, &Fl));
    PetscCall(PetscArraycpy(C, s->C, s->n * T));
    PetscCall(PetscArraycpy(A, s->acc, s->n * T));
    PetscCall(PetscArraycpy(L, s->loss, s->n * T));
    PetscCall(PetscArraycpy(R, s->round, s->n));
    PetscCall(PetscArraycpy(K, s->task, s->n));
    PetscCall(PetscArraycpy(Fl, s->failed, s->n));
    PetscCall(PetscFree5(s->C, s->acc, s->loss, s->round, s->task));
    PetscCall(PetscFree(s->failed));
    s->C = C, s->acc = A, s->loss = L, s->round = R, s->task = K, s->failed = Fl;
    s->cap = cap;
  }
  PetscCall(PetscArraycpy(&s->C[s->n * T], c, T));
  for (int t = 0; t < T; t++) {
    s->acc[s->n * T + t]  = acc ? acc[t] : NAN;
    s->loss[s->n * T + t] = loss ? loss[t] : NAN;
  }
  s->round[s->n]  = round;
  s->task[s->n]   = task;
  s->failed[s->n] = PETSC_FALSE;
  s->n++;
  PetscFunctionReturn(0);
}

PetscErrorCode MapSampleSetDestroy(MapSampleSet *s)
{
  PetscFunctionBegin;
  PetscCall(PetscFree5(s->C, s->acc, s->loss, s->round, s->task));
  PetscCall(PetscFree(s->failed));
  s->n = s->cap = 0;
  PetscFunctionReturn(0);
}
