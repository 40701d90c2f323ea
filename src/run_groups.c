/* Concurrent evaluator groups for external evaluators (-map_eval_groups G with -map_eval_type
   command or worker; issue 16). The samples of a design or a round are independent, so the ranks
   split into G groups (contiguous blocks, as Nested MAP's rank groups), each with its own store
   handle, model shards and evaluator, hence its own program (and GPU, -map_eval_gpus). Samples go
   in chunks of G: sample i0 + kG + g is group g's, a fixed assignment, so no result depends on
   timing. After each chunk every rank has every result, and rank 0 journals the chunk in sample
   order: the journal and every result are the same bits whatever G is. */
#include <math.h>
#include <mapmerge/run.h>
#include "runimpl.h"

typedef struct {
  int          G, color;
  MPI_Comm     comm;
  MapStore     store;
  MapModel     model;
  MapEvaluator ev;
  int         *root; /* [G] rank in r->comm of each group's rank 0 */
} MapEvalGroups;

static PetscErrorCode GroupsCreate(MapRunCtx *r, int G, MapEvalGroups **out)
{
  MapEvalGroups *g;
  int            idx[64];

  PetscFunctionBegin;
  PetscCall(PetscNew(&g));
  g->G     = G;
  g->color = (int)((int64_t)r->rank * G / r->size);
  PetscCall(PetscMalloc1(G, &g->root));
  for (int k = 0; k < G; k++) g->root[k] = -1;
  for (int q = r->size - 1; q >= 0; q--) g->root[(int64_t)q * G / r->size] = q; /* the smallest rank of each color */
  PetscCallMPI(MPI_Comm_split(r->comm, g->color, r->rank, &g->comm));
  PetscCall(MapStoreOpen(g->comm, r->store_path, &g->store));
  for (int t = 0; t < r->T; t++) PetscCall(MapStoreFindTask(g->store, r->tasks[t], &idx[t]));
  PetscCall(MapModelCreateFromStore(g->store, r->T, idx, &g->model));
  PetscCall(MapEvaluatorCreate(g->comm, &g->ev));
  PetscCall(MapEvaluatorSetFromOptions(g->ev));
  PetscCall(MapEvaluatorSetGroup(g->ev, g->color));
  PetscCall(MapEvaluatorSetLogDir(g->ev, r->out));
  PetscCall(MapEvaluatorSetUp(g->ev, g->model, r->T, (const char *const *)r->tasks, r->neval_data ? (const char *const *)r->eval_data : NULL));
  *out = g;
  PetscFunctionReturn(0);
}

/*
  MapRunEvalGroupsDestroy - ends the groups' programs and frees them (collective on the run).
*/
PetscErrorCode MapRunEvalGroupsDestroy(MapRunCtx *r)
{
  MapEvalGroups *g = (MapEvalGroups *)r->evgroups;

  PetscFunctionBegin;
  if (!g) PetscFunctionReturn(0);
  PetscCall(MapEvaluatorDestroy(&g->ev));
  PetscCall(MapModelDestroy(&g->model));
  PetscCall(MapStoreDestroy(&g->store));
  PetscCallMPI(MPI_Comm_free(&g->comm));
  PetscCall(PetscFree(g->root));
  PetscCall(PetscFree(g));
  r->evgroups = NULL;
  PetscFunctionReturn(0);
}

/*
  MapRunEvaluateSamplesGrouped - MapRunEvaluateSamples with G concurrent evaluator groups. *grouped
  = PETSC_FALSE (nothing done) unless -map_eval_groups G > 1 and the evaluator is command or worker.
  Collective.
*/
PetscErrorCode MapRunEvaluateSamplesGrouped(MapRunCtx *r, PetscInt i0, PetscInt i1, PetscBool *stop, PetscBool *grouped)
{
  PetscInt       G = 0;
  PetscBool      set;
  const char    *type;
  MapEvalGroups *g = NULL;
  double         t0 = MapWallTime(), *buf;
  const int      T = r->T;

  PetscFunctionBegin;
  *grouped = PETSC_FALSE;
  PetscCall(MapEvaluatorGetType(r->ev, &type));
  PetscCall(PetscOptionsGetInt(NULL, NULL, "-map_eval_groups", &G, &set));
  if (G <= 1 || !type || (strcmp(type, "command") && strcmp(type, "worker")) || r->journal_only) PetscFunctionReturn(0);
  PetscCheck(G <= 64, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_eval_groups %" PetscInt_FMT ": at most 64 evaluator groups", G);
  PetscCheck(G <= r->size, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_eval_groups %" PetscInt_FMT ": more evaluator groups than the %d ranks", G,
             (int)r->size);
  *grouped = PETSC_TRUE;
  if (!r->evgroups) {
    PetscCall(GroupsCreate(r, (int)G, &g));
    r->evgroups = g;
  }
  g = (MapEvalGroups *)r->evgroups;
  PetscCall(PetscMalloc1(2 * T, &buf));
  for (PetscInt i = i0; i < i1; i += g->G) {
    const MapJournalEntry *e[64];
    int                    n = (int)PetscMin(g->G, i1 - i), fresh = 0;
    PetscErrorCode         ierr = 0, worst;
    PetscCall(MapRunCheckSignal(r, stop));
    if (*stop) break;
    for (int j = 0; j < n; j++) {
      PetscCall(MapJournalFind(&r->journal, "sample", (int)(i + j), T, &r->C[(i + j) * T], &e[j]));
      if (e[j]) {
        PetscCall(PetscArraycpy(&r->acc[(i + j) * T], e[j]->acc, T));
        PetscCall(PetscArraycpy(&r->loss[(i + j) * T], e[j]->loss, T));
        if (e[j]->failed) { /* done: a failed point is not retried (run_metric.c) */
          r->failed[i + j] = PETSC_TRUE;
          for (int t = 0; t < T; t++) r->acc[(i + j) * T + t] = NAN;
        }
      } else fresh++;
    }
    if (!fresh) continue;
    if (g->color < n && !e[g->color]) { /* my group's sample of this chunk */
      PetscInt       s    = i + g->color;
      int            task = (int)r->sample_task[s];
      PetscBool      want[MAP_MAX_TASKS];
      MapTaskMetrics m[MAP_MAX_TASKS];
      for (int t = 0; t < T; t++) want[t] = task < 0 || task == t ? PETSC_TRUE : PETSC_FALSE;
      /* not PetscCall: the other groups must hear of a failure before they wait for this result */
      ierr = MapEvaluatorEvaluateTasks(g->ev, &r->C[s * T], task < 0 ? NULL : want, m);
      if (!ierr) (void)MapRunMetricValues(r, task < 0 ? NULL : want, m, &r->acc[s * T], &r->loss[s * T]);
    }
    PetscCallMPI(MPI_Allreduce(&ierr, &worst, 1, MPI_INT, MPI_MAX, r->comm));
    if (worst) {
      int sig = ierr == PETSC_ERR_SIG, anysig;
      PetscCallMPI(MPI_Allreduce(&sig, &anysig, 1, MPI_INT, MPI_MAX, r->comm));
      PetscCall(PetscFree(buf));
      SETERRQ(r->comm, anysig ? PETSC_ERR_SIG : PETSC_ERR_LIB, "an evaluator group failed on samples %" PetscInt_FMT "..%" PetscInt_FMT
              " (its message is above); every earlier sample is journaled: resume with -map_resume", i, i + n - 1);
    }
    for (int j = 0; j < n; j++) {
      if (e[j]) continue;
      if (r->rank == g->root[j]) {
        PetscCall(PetscArraycpy(buf, &r->acc[(i + j) * T], T));
        PetscCall(PetscArraycpy(buf + T, &r->loss[(i + j) * T], T));
      }
      PetscCallMPI(MPI_Bcast(buf, 2 * T, MPI_DOUBLE, g->root[j], r->comm));
      PetscCall(PetscArraycpy(&r->acc[(i + j) * T], buf, T));
      PetscCall(PetscArraycpy(&r->loss[(i + j) * T], buf + T, T));
      /* as MapRunEvaluateOn: a non-finite metric of an evaluated task is journaled as failed, and the point left out */
      int task = (int)r->sample_task[i + j], bad = -1;
      for (int t = 0; t < T && bad < 0; t++)
        if ((task < 0 || task == t) && !(isfinite(r->acc[(i + j) * T + t]) && (!r->metric.with_loss || isfinite(r->loss[(i + j) * T + t])))) bad = t;
      PetscCall(MapJournalAppend(r->comm, &r->journal, "sample", (int)(i + j), T, &r->C[(i + j) * T], &r->acc[(i + j) * T], &r->loss[(i + j) * T],
                                 bad >= 0 ? PETSC_TRUE : PETSC_FALSE));
      if (bad >= 0) {
        PetscCall(PetscPrintf(r->comm, "evaluation sample #%d failed: task %s gave %s %g, loss %g; journaled as failed, left out of the fit\n", (int)(i + j),
                              r->tasks[bad], r->metric.metric.name, r->acc[(i + j) * T + bad], r->loss[(i + j) * T + bad]));
        r->failed[i + j] = PETSC_TRUE;
        for (int t = 0; t < T; t++) r->acc[(i + j) * T + t] = NAN;
      }
    }
    PetscCall(MapProgress(r->comm, "evaluate samples", i + n - i0, i1 - i0, t0));
  }
  PetscCall(PetscFree(buf));
  PetscFunctionReturn(0);
}
