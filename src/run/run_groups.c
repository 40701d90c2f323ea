/* Concurrent evaluator groups for external evaluators (-map_eval_groups G with -map_eval_type
   command or worker; issue 16). The samples of a design or a round are independent, and so are the
   re-evaluations of the front and the pick, so the ranks split into G groups (contiguous blocks, as
   Nested MAP's rank groups), each with its own store handle, model shards and evaluator, hence its
   own program (and GPU, -map_eval_gpus). Evaluations go in chunks of G: item i0 + kG + g is group
   g's, a fixed assignment, so no result depends on timing. After each chunk every rank has every
   result, and rank 0 journals the chunk in item order: the journal and every result are the same
   bits whatever G is. */
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
  PetscCall(MapStoreOpen(g->comm, r->opt.store_path, &g->store));
  for (int t = 0; t < r->T; t++) PetscCall(MapStoreFindTask(g->store, r->tasks[t], &idx[t]));
  PetscCall(MapEvaluatorCreate(g->comm, &g->ev));
  PetscCall(MapEvaluatorSetFromOptions(g->ev));
  PetscCall(MapEvaluatorCreateModel(g->ev, g->store, r->T, idx, &g->model));
  PetscCall(MapEvaluatorSetGroup(g->ev, g->color));
  PetscCall(MapEvaluatorSetLogDir(g->ev, r->opt.out));
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

/* Whether -map_eval_groups G > 1 applies (command or worker, not a chain job that reads journals only); *G = 0 if not. */
static PetscErrorCode GroupsWanted(MapRunCtx *r, PetscInt *G)
{
  PetscBool   set;
  const char *type;

  PetscFunctionBegin;
  *G = 0;
  PetscCall(MapEvaluatorGetType(r->ev, &type));
  PetscCall(PetscOptionsGetInt(NULL, NULL, "-map_eval_groups", G, &set));
  if (*G <= 1 || !type || (strcmp(type, "command") && strcmp(type, "worker")) || r->journal.replay_only) {
    *G = 0;
    PetscFunctionReturn(0);
  }
  PetscCheck(*G <= 64, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_eval_groups %" PetscInt_FMT ": at most 64 evaluator groups", *G);
  PetscCheck(*G <= r->size, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_eval_groups %" PetscInt_FMT ": more evaluator groups than the %d ranks", *G,
             (int)r->size);
  PetscFunctionReturn(0);
}

/* items [i, i + n) in chunks of G: item i + g is group g's; every rank gets every result, rank 0
   journals them in item order */
static PetscErrorCode EvaluateItemsGrouped(MapRunCtx *r, PetscInt nitem, const MapRunEvalItem *items, const char *label, PetscBool *stop)
{
  MapEvalGroups *g;
  double         t0 = MapWallTime(), buf[2 * MAP_MAX_TASKS + 1];
  const int      T  = r->T;

  PetscFunctionBegin;
  g = (MapEvalGroups *)r->evgroups;
  for (PetscInt i = 0; i < nitem; i += g->G) {
    const MapJournalEntry *e[64];
    int                    n = (int)PetscMin(g->G, nitem - i), fresh = 0;
    PetscErrorCode         ierr = 0, worst;
    PetscCall(MapRunCheckSignal(r, stop));
    if (*stop) break;
    for (int j = 0; j < n; j++) {
      const MapRunEvalItem *it = &items[i + j];
      e[j]                     = NULL;
      if (!it->done) PetscCall(MapJournalFind(&r->journal, it->kind, it->index, T, it->c, &e[j]));
      if (e[j]) {
        PetscCall(PetscArraycpy(it->acc, e[j]->acc, T));
        PetscCall(PetscArraycpy(it->loss, e[j]->loss, T));
        if (e[j]->failed) { /* done: a failed point is not retried (run_metric.c) */
          if (it->failed) *it->failed = PETSC_TRUE;
          for (int t = 0; t < T; t++) it->acc[t] = NAN;
        }
      } else fresh++;
    }
    if (!fresh) continue;
    if (g->color < n && !e[g->color]) { /* my group's item of this chunk */
      const MapRunEvalItem *it = &items[i + g->color];
      PetscBool             want[MAP_MAX_TASKS];
      MapTaskMetrics        m[MAP_MAX_TASKS];
      for (int t = 0; t < T; t++) want[t] = it->task < 0 || it->task == t ? PETSC_TRUE : PETSC_FALSE;
      /* not PetscCall: the other groups must hear of a failure before they wait for this result */
      if (it->done) ierr = MapEvaluatorEvaluateOnDataOf(g->ev, r->ev_test, it->c, m, it->done);
      else ierr = MapEvaluatorEvaluateTasks(g->ev, it->c, it->task < 0 ? NULL : want, m);
      if (!ierr && (!it->done || *it->done)) (void)MapJournalMetricValues(&r->journal, it->task < 0 || it->done ? NULL : want, m, it->acc, it->loss);
    }
    { /* a group done early sleeps while the others' programs compute */
      MPI_Request req;
      PetscCallMPI(MPI_Iallreduce(&ierr, &worst, 1, MPI_INT, MPI_MAX, r->comm, &req));
      PetscCall(MapWaitPolitely(&req));
    }
    if (worst) {
      int sig = ierr == PETSC_ERR_SIG, anysig;
      PetscCallMPI(MPI_Allreduce(&sig, &anysig, 1, MPI_INT, MPI_MAX, r->comm));
      SETERRQ(r->comm, anysig ? PETSC_ERR_SIG : PETSC_ERR_LIB, "an evaluator group failed on %s #%d..%s #%d (its message is above); every earlier evaluation is journaled: resume with -map_resume",
              items[i].kind, items[i].index, items[i + n - 1].kind, items[i + n - 1].index);
    }
    for (int j = 0; j < n; j++) {
      const MapRunEvalItem *it = &items[i + j];
      if (e[j]) continue;
      if (r->rank == g->root[j]) {
        PetscCall(PetscArraycpy(buf, it->acc, T));
        PetscCall(PetscArraycpy(buf + T, it->loss, T));
        buf[2 * T] = it->done && *it->done ? 1 : 0;
      }
      PetscCallMPI(MPI_Bcast(buf, 2 * T + 1, MPI_DOUBLE, g->root[j], r->comm));
      PetscCall(PetscArraycpy(it->acc, buf, T));
      PetscCall(PetscArraycpy(it->loss, buf + T, T));
      if (it->done) { /* held-out metrics are reported, never journaled or fitted */
        *it->done = buf[2 * T] != 0 ? PETSC_TRUE : PETSC_FALSE;
        continue;
      }
      /* as MapJournalEvaluate: a non-finite metric of an evaluated task is journaled as failed, and the point left out */
      int bad = MapJournalFirstUnusable(&r->journal, it->task, it->acc, it->loss);
      PetscCall(MapJournalAppend(r->comm, &r->journal, it->kind, it->index, T, it->c, it->acc, it->loss, bad >= 0 ? PETSC_TRUE : PETSC_FALSE));
      if (bad >= 0) {
        PetscCall(PetscPrintf(r->comm, "evaluation %s #%d failed: task %s gave %s %g, loss %g; journaled as failed, left out of the fit\n", it->kind,
                              it->index, r->tasks[bad], r->metric.metric.name, it->acc[bad], it->loss[bad]));
        if (it->failed) *it->failed = PETSC_TRUE;
        for (int t = 0; t < T; t++) it->acc[t] = NAN;
      }
    }
    PetscCall(MapProgress(r->comm, label, i + n, nitem, t0));
  }
  PetscFunctionReturn(0);
}

/*
  MapRunEvaluateItems - evaluates (or takes from the journal) every item, journaled in item order.
  With -map_eval_groups G > 1 (command, worker) G at a time, one per evaluator group; otherwise one
  after the other on the run's evaluator. Same journal and results for every G. Collective.
*/
PetscErrorCode MapRunEvaluateItems(MapRunCtx *r, PetscInt nitem, const MapRunEvalItem *items, const char *label, PetscBool *stop)
{
  PetscInt G;
  double   t0 = MapWallTime();

  PetscFunctionBegin;
  PetscCall(GroupsWanted(r, &G));
  if (G > 1) {
    if (!r->evgroups) {
      MapEvalGroups *g = NULL;
      PetscCall(GroupsCreate(r, (int)G, &g));
      r->evgroups = g;
    }
    PetscCall(EvaluateItemsGrouped(r, nitem, items, label, stop));
    PetscFunctionReturn(0);
  }
  for (PetscInt i = 0; i < nitem; i++) {
    const MapRunEvalItem *it = &items[i];
    PetscBool             want[MAP_MAX_TASKS], fresh, failed;
    PetscCall(MapRunCheckSignal(r, stop));
    if (*stop) break;
    if (it->done) continue; /* held-out items go to groups only; *done stays false */
    for (int t = 0; t < r->T; t++) want[t] = it->task < 0 || it->task == t ? PETSC_TRUE : PETSC_FALSE;
    PetscCall(MapJournalEvaluate(&r->journal, r->comm, r->ev, it->kind, it->index, it->c, it->task < 0 ? NULL : want, it->acc, it->loss, &fresh, &failed));
    if (it->failed) *it->failed = failed;
    if (fresh) PetscCall(MapProgress(r->comm, label, i + 1, nitem, t0));
  }
  PetscFunctionReturn(0);
}

/*
  MapRunEvaluateSampleRange - samples [i0, i1) (journaled; skipped when the journal has them). Collective.
*/
PetscErrorCode MapRunEvaluateSampleRange(MapRunCtx *r, PetscInt i0, PetscInt i1, PetscBool *stop)
{
  MapRunEvalItem *items;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(i1 - i0 + 1, &items));
  for (PetscInt i = i0; i < i1; i++)
    items[i - i0] = (MapRunEvalItem){"sample", (int)i, &r->samples.C[i * r->T], (int)r->samples.task[i], &r->samples.acc[i * r->T], &r->samples.loss[i * r->T], &r->samples.failed[i], NULL};
  PetscCall(MapRunEvaluateItems(r, i1 - i0, items, "evaluate samples", stop));
  PetscCall(PetscFree(items));
  PetscFunctionReturn(0);
}

/*
  MapRunEvaluateFront - up to -map_reevaluate front points, spread along the front (in preference
  order), and the pick: independent evaluations, so with evaluator groups they run G at a time
  (journaled as before: reeval 0..K-1, then the pick). With groups, the pick on the held-out sets
  (-map_test_data) joins them when a group's worker can score other data (*tested: it did; else the
  caller evaluates it). The points are report.kreal and real_index (chosen by the MAP loop). Collective.
*/
PetscErrorCode MapRunEvaluateFront(MapRunCtx *r, PetscBool *stop, PetscBool *tested)
{
  MapRunEvalItem *items;
  PetscInt        n = 0, G;

  PetscFunctionBegin;
  *tested = PETSC_FALSE;
  PetscCall(GroupsWanted(r, &G));
  PetscCall(PetscMalloc1(r->report.kreal + 2, &items));
  for (PetscInt k = 0; k < r->report.kreal; k++) {
    items[n++] = (MapRunEvalItem){"reeval", (int)k, &r->report.Cf[r->report.real_index[k] * r->T], -1, &r->report.real_acc[k * r->T], &r->report.real_loss[k * r->T], NULL, NULL};
  }
  if (r->opt.npref) items[n++] = (MapRunEvalItem){"pick", 0, r->report.pick_c, -1, r->report.pick_acc, r->report.pick_loss, NULL, NULL};
  if (r->opt.npref && r->ev_test && G > 1) items[n++] = (MapRunEvalItem){"test", 0, r->report.pick_c, -1, r->report.pick_test_acc, r->report.pick_test_loss, NULL, tested};
  PetscCall(MapRunEvaluateItems(r, n, items, "re-evaluate front and pick", stop));
  PetscCall(PetscFree(items));
  PetscFunctionReturn(0);
}

/*
  MapRunEvaluateHeldOut - c on the held-out sets of r->ev_test (-map_test_data). A worker that scores
  the data file each request names ("data_per_request") does it, the run's or group 0's, already up:
  no second program start. Otherwise ev_test's own evaluator. Collective.
*/
PetscErrorCode MapRunEvaluateHeldOut(MapRunCtx *r, const double *c, MapTaskMetrics *m)
{
  MapEvalGroups *g    = (MapEvalGroups *)r->evgroups;
  PetscBool      done = PETSC_FALSE;

  PetscFunctionBegin;
  if (g) { /* group 0's ranks ask its worker; its first rank (rank 0) shares the outcome */
    int res[2] = {0, 0};
    if (!g->color) {
      res[0] = (int)MapEvaluatorEvaluateOnDataOf(g->ev, r->ev_test, c, m, &done); /* not PetscCall: the others wait for res */
      res[1] = (int)done;
    }
    PetscCallMPI(MPI_Bcast(res, 2, MPI_INT, g->root[0], r->comm));
    PetscCheck(!res[0], r->comm, PETSC_ERR_LIB, "evaluator group 0 failed on the held-out sets (its message is above)");
    if (res[1]) PetscCallMPI(MPI_Bcast(m, (int)(sizeof(MapTaskMetrics) * (size_t)r->T), MPI_BYTE, g->root[0], r->comm));
    done = res[1] ? PETSC_TRUE : PETSC_FALSE;
  } else PetscCall(MapEvaluatorEvaluateOnDataOf(r->ev, r->ev_test, c, m, &done));
  if (!done) PetscCall(MapEvaluatorEvaluate(r->ev_test, c, m));
  PetscFunctionReturn(0);
}
