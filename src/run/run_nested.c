/* Nested MAP (docs/design.md §5): repeatedly pair the two models whose metrics are closest, run 2-task
   MAP on the pair, merge the pair at the user's preference into a new model, until one remains.
   Each side's objective is the preference-weighted mean metric (-map_metric, accuracy by default; in
   its orientation: minimised when lower is better) of the tasks it carries; a merged
   pair's task vector c_a tau_a + c_b tau_b is kept as coefficients over the original T vectors, so
   every evaluation is an ordinary merge of the store's task vectors (and is journaled as such). */
#include "runimpl.h"

typedef struct {
  MapSurrogate        sur;
  const MapRunMetric *M;
} MapPairCtx;

/* the two sides' objectives in the search's orientation: sign * (off + scale * g(q(c))) of -map_metric
   (the default: the fitted accuracy means as they are) */
static PetscErrorCode MapPairObjective(void *ctx, const double *c, double *f, double *J)
{
  MapPairCtx         *p = (MapPairCtx *)ctx;
  const MapRunMetric *M = p->M;

  PetscFunctionBegin;
  for (int k = 0; k < 2; k++) {
    PetscCall(MapSurrogatePredict(p->sur, k, c, &f[k], J ? &J[2 * k] : NULL));
    if (M->is_default) continue;
    f[k] = M->sign * (M->off + M->scale * f[k]);
    if (J)
      for (int j = 0; j < 2; j++) J[2 * k + j] *= M->sign * M->scale;
  }
  PetscFunctionReturn(0);
}

/* preference-weighted mean metric (accuracy by default, in -map_metric's units) of the tasks a node carries */
static double MapNodeObjective(MapRunCtx *r, const MapNestedNode *n, const double *acc)
{
  double num = 0, den = 0;
  for (int i = 0; i < n->ntask; i++) {
    num += r->opt.pref[n->tasks[i]] * acc[n->tasks[i]];
    den += r->opt.pref[n->tasks[i]];
  }
  return den > 0 ? num / den : 0;
}

static double MapNodePreference(MapRunCtx *r, const MapNestedNode *n)
{
  double w = 0;
  for (int i = 0; i < n->ntask; i++) w += r->opt.pref[n->tasks[i]];
  return w;
}

/* evaluate the model with coefficients c over the original tasks (a leaf, on every rank); record it */
static PetscErrorCode MapNestedEvaluate(MapRunCtx *r, int *counter, const double *c, double *acc, double *loss, PetscBool *stop)
{
  PetscBool fresh;

  PetscFunctionBegin;
  PetscCall(MapRunCheckSignal(r, stop));
  if (*stop) PetscFunctionReturn(0);
  PetscCall(MapJournalEvaluate(&r->journal, r->comm, r->ev, "nested", *counter, c, NULL, acc, loss, &fresh, NULL));
  (*counter)++;
  PetscCall(MapSampleSetAppend(&r->samples, c, acc, loss, r->tree.nnodes, -1)); /* round: the tree node being built */
  PetscFunctionReturn(0);
}

/* The ranks that work on one pair: a sub-communicator with its own store handle, model shards and
   evaluator (its own shard layout), or the whole run when there is one group. */
typedef struct {
  MPI_Comm     comm;
  MapStore     store;
  MapModel     model;
  MapEvaluator ev;
  PetscBool    own;
} MapNestedGroup;

/* need[t]: whether a pair of this group merges task t. A group of its own reads only those task
   vectors from the store (at level 1 with T = 8 and 4 groups: 2 of 8 each). */
static PetscErrorCode MapNestedGroupCreate(MapRunCtx *r, int ngroup, int color, const PetscBool *need, MapNestedGroup *g)
{
  PetscFunctionBegin;
  memset(g, 0, sizeof(*g));
  if (ngroup == 1) {
    g->comm = r->comm;
    g->ev   = r->ev;
    PetscFunctionReturn(0);
  }
  g->own = PETSC_TRUE;
  PetscCallMPI(MPI_Comm_split(r->comm, color, r->rank, &g->comm));
  const char *evtype;
  PetscCall(MapEvaluatorGetType(r->ev, &evtype));
  PetscCall(MapEvaluatorCreate(g->comm, &g->ev));
  PetscCall(MapEvaluatorSetFromOptions(g->ev));
  if (strcmp(evtype, "analytic")) {
    int idx[MAP_MAX_TASKS], coef[MAP_MAX_TASKS], k = 0;
    PetscCall(MapStoreOpen(g->comm, r->opt.store_path, &g->store));
    for (int t = 0; t < r->T; t++)
      if (need[t]) {
        PetscCall(MapStoreFindTask(g->store, r->tasks[t], &idx[k]));
        coef[k++] = t;
      }
    PetscCall(MapEvaluatorCreateModel(g->ev, g->store, k, idx, &g->model));
    PetscCall(MapModelSetCoefficientMap(g->model, r->T, coef));
  }
  PetscCall(MapEvaluatorSetUp(g->ev, g->model, r->T, (const char *const *)r->tasks,
                              r->neval_data ? (const char *const *)r->eval_data : NULL));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapNestedGroupDestroy(MapNestedGroup *g)
{
  PetscFunctionBegin;
  if (g->own) { /* (a group of all ranks borrows the run's evaluator) */
    PetscCall(MapEvaluatorDestroy(&g->ev));
    PetscCall(MapModelDestroy(&g->model));
    PetscCall(MapStoreDestroy(&g->store));
    PetscCallMPI(MPI_Comm_free(&g->comm));
  }
  memset(g, 0, sizeof(*g));
  PetscFunctionReturn(0);
}

/* What a pair hands back to every rank: the merged node and every model it evaluated (in order). */
typedef struct {
  MapNestedNode node;
  double        chosen_acc[MAP_MAX_TASKS], chosen_loss[MAP_MAX_TASKS];
  int           nevals;
  PetscBool     stop;
} MapPairResult;

/* the pair's 2-objective front on its fitted surrogates (pc) and the pick for the preference of
   the two sides' tasks: N->c, N->pred, N->front_size */
static PetscErrorCode MapNestedPairPick(MapRunCtx *r, MPI_Comm comm, MapPairCtx *pc, const MapNestedNode *A, const MapNestedNode *B, MapNestedNode *N)
{
  MapPareto     pareto;
  PetscInt      k;
  const double *Cf, *Ff, *Wf;
  double        w[2] = {MapNodePreference(r, A), MapNodePreference(r, B)};

  PetscFunctionBegin;
  PetscCall(MapParetoCreate(comm, &pareto));
  PetscCall(MapParetoSetFromOptions(pareto));
  PetscCall(MapParetoSetBox(pareto, r->opt.lo, r->opt.hi));
  PetscCall(MapParetoSetObjectives(pareto, 2, 2, MapPairObjective, pc));
  PetscCall(MapParetoSolve(pareto));
  PetscCall(MapParetoGetFront(pareto, &k, &Cf, &Ff, &Wf));
  N->front_size = (int)k;
  PetscCall(MapParetoPick(pareto, w, N->c, N->pred));
  for (int k = 0; k < 2; k++) N->pred[k] *= pc->M->sign; /* back to the metric's units (sign 1 by default) */
  PetscCall(MapParetoDestroy(&pareto));
  PetscFunctionReturn(0);
}

/* Evaluates the pair's n2 design points C2 (weights of A and B) from evaluation `counter` on, into
   Cs/accs/losss; the good ones become the fit's rows Cfit/Y (*nfit of them) and the best of them *best
   (*best_score = sign * objective). Stops early, with res->stop set, on a pending signal. */
static PetscErrorCode MapNestedPairSample(MapRunCtx *r, MapNestedGroup *g, const MapNestedNode *A, const MapNestedNode *B, const MapNestedNode *N,
                                          int counter, PetscInt n2, const double *C2, MapPairResult *res, double *Cs, double *accs,
                                          double *losss, double *Cfit, double *Y, PetscInt *nfit, PetscInt *best, double *best_score)
{
  int       T = r->T;
  double    acc[MAP_MAX_TASKS], loss[MAP_MAX_TASKS], c[MAP_MAX_TASKS];
  PetscBool fresh, failed;
  double    sign = r->metric.sign; /* lower is better: the best sample has the lowest objective */

  PetscFunctionBegin;
  for (PetscInt i = 0; i < n2; i++) {
    int stop_local = 0;
    PetscCall(MapSignalPending(g->comm, &res->stop));
    stop_local = res->stop;
    if (stop_local) break;
    for (int t = 0; t < T; t++) c[t] = C2[2 * i] * A->W[t] + C2[2 * i + 1] * B->W[t];
    PetscCall(MapJournalEvaluate(&r->journal, g->comm, g->ev, "nested", counter + (int)i, c, NULL, acc, loss, &fresh, &failed));
    PetscCall(PetscArraycpy(&Cs[i * T], c, T));
    PetscCall(PetscArraycpy(&accs[i * T], acc, T));
    PetscCall(PetscArraycpy(&losss[i * T], loss, T));
    res->nevals++;
    if (failed) continue; /* journaled and listed (NaN in the samples); out of the pair's fit and its best */
    Cfit[2 * *nfit]     = C2[2 * i];
    Cfit[2 * *nfit + 1] = C2[2 * i + 1];
    Y[2 * *nfit]        = MapNodeObjective(r, A, acc);
    Y[2 * *nfit + 1]    = MapNodeObjective(r, B, acc);
    if (!r->metric.is_default) /* the surrogate's target: (metric - off) / scale under the metric's link */
      for (int k = 0; k < 2; k++) Y[2 * *nfit + k] = (Y[2 * *nfit + k] - r->metric.off) / r->metric.scale;
    (*nfit)++;
    double score = sign * MapNodeObjective(r, N, acc);
    if (score > *best_score) { /* first best wins ties: deterministic */
      *best_score = score;
      *best       = i;
    }
  }
  PetscFunctionReturn(0);
}

/* Evaluates the surrogate's pick N->W as evaluation counter + n2 (unless a signal is pending); a design
   sample (best) that beats it on the real models, or a failed pick, replaces it. Sets N's real
   objectives and res->chosen_acc/loss. */
static PetscErrorCode MapNestedPairEvaluatePick(MapRunCtx *r, MapNestedGroup *g, const MapNestedNode *A, const MapNestedNode *B, MapNestedNode *N,
                                                MapSurrogate sur, int counter, PetscInt n2, const double *C2, PetscInt best, double best_score,
                                                MapPairResult *res, double *Cs, double *accs, double *losss)
{
  int       T = r->T;
  double    acc[MAP_MAX_TASKS], loss[MAP_MAX_TASKS];
  PetscBool fresh, failed;
  double    sign = r->metric.sign;

  PetscFunctionBegin;
  PetscCall(MapSignalPending(g->comm, &res->stop));
  if (!res->stop) {
    PetscCall(MapJournalEvaluate(&r->journal, g->comm, g->ev, "nested", counter + (int)n2, N->W, NULL, acc, loss, &fresh, &failed));
    PetscCall(PetscArraycpy(&Cs[n2 * T], N->W, T));
    PetscCall(PetscArraycpy(&accs[n2 * T], acc, T));
    PetscCall(PetscArraycpy(&losss[n2 * T], loss, T));
    res->nevals++;
    PetscCall(PetscArraycpy(res->chosen_acc, acc, T));
    PetscCall(PetscArraycpy(res->chosen_loss, loss, T));
    if (best >= 0 && (failed || best_score > sign * MapNodeObjective(r, N, acc))) {
      /* a sample the pair already paid for beats the surrogate's pick on the real models (or the pick
         failed): keep it (the surrogate of 12 points can be far off where the task vectors conflict) */
      N->from_sample = 1;
      N->c[0]        = C2[2 * best];
      N->c[1]        = C2[2 * best + 1];
      for (int t = 0; t < T; t++) N->W[t] = N->c[0] * A->W[t] + N->c[1] * B->W[t];
      for (int k = 0; k < 2; k++) PetscCall(MapSurrogatePredict(sur, k, N->c, &N->pred[k], NULL));
      PetscCall(PetscArraycpy(res->chosen_acc, &accs[best * T], T));
      PetscCall(PetscArraycpy(res->chosen_loss, &losss[best * T], T));
    }
    N->real[0]     = MapNodeObjective(r, A, res->chosen_acc);
    N->real[1]     = MapNodeObjective(r, B, res->chosen_acc);
    N->metric      = MapNodeObjective(r, N, res->chosen_acc);
    N->evaluations = (int)n2 + 1;
  }
  PetscFunctionReturn(0);
}

/* 2-task MAP on nodes a and b on group g, as node `id`; evaluations are numbered from `counter`.
   Fills res and the evaluated models C/acc/loss [(n2+1) x T]. */
static PetscErrorCode MapNestedPair(MapRunCtx *r, MapNestedGroup *g, int a, int b, int id, int level, int counter,
                                    MapPairResult *res, double *Cs, double *accs, double *losss)
{
  int            T = r->T;
  MapNestedNode *A = &r->tree.nodes[a], *B = &r->tree.nodes[b], *N = &res->node;
  PetscInt       n2;
  double        *C2, *Y;
  MapPairCtx     pc       = {.M = &r->metric};
  MapLink        links[2] = {MAP_LINK_SIGMOID, MAP_LINK_SIGMOID};
  const char    *names[2] = {"left", "right"};
  PetscInt       nfit     = 0; /* the pair's samples that did not fail: the fit's rows */

  PetscFunctionBegin;
  memset(res, 0, sizeof(*res));
  N->left  = a;
  N->right = b;
  N->level = level;
  /* the pair's design: keyed on (seed, node) so a resumed or re-ranked run draws the same points */
  PetscCall(MapSampleGenerate(MAP_SAMPLE_REFERENCE, 2, names, r->opt.nested_samples, r->opt.lo, r->opt.hi,
                              (uint64_t)r->opt.seed * 1000003ULL + (uint64_t)id, NULL, &n2, &C2));
  N->ntask = A->ntask + B->ntask;
  for (int i = 0; i < A->ntask; i++) N->tasks[i] = A->tasks[i];
  for (int i = 0; i < B->ntask; i++) N->tasks[A->ntask + i] = B->tasks[i];
  PetscInt best       = -1;
  double   best_score = -PETSC_MAX_REAL; /* sign * objective */
  double  *Cfit;
  PetscCall(PetscMalloc2(2 * n2, &Y, 2 * n2, &Cfit));
  if (!r->metric.is_default) links[0] = links[1] = r->metric.link;
  PetscCall(MapNestedPairSample(r, g, A, B, N, counter, n2, C2, res, Cs, accs, losss, Cfit, Y, &nfit, &best, &best_score));
  if (res->stop) {
    PetscCall(PetscFree(C2));
    PetscCall(PetscFree2(Y, Cfit));
    PetscFunctionReturn(0);
  }
  /* a 2-D quadratic has 6 parameters: with fewer good samples the pair's fit is not determined */
  PetscCheck(nfit >= 6, g->comm, PETSC_ERR_FP,
             "nested MAP: pair (%d, %d) (node %d): %" PetscInt_FMT " of its %" PetscInt_FMT " evaluations failed, %" PetscInt_FMT
             " remain, too few to fit its 2-task surrogate (6 parameters); see the failed evaluations above and the journal %s",
             a, b, id, n2 - nfit, n2, nfit, r->journal.path);
  PetscCall(MapSurrogateCreate(g->comm, &pc.sur));
  PetscCall(MapSurrogateFit(pc.sur, 2, nfit, Cfit, 2, Y, links));
  PetscCall(MapNestedPairPick(r, g->comm, &pc, A, B, N));
  for (int t = 0; t < T; t++) N->W[t] = N->c[0] * A->W[t] + N->c[1] * B->W[t];
  PetscCall(MapNestedPairEvaluatePick(r, g, A, B, N, pc.sur, counter, n2, C2, best, best_score, res, Cs, accs, losss));
  PetscCall(MapSurrogateDestroy(&pc.sur));
  PetscCall(PetscFree(C2));
  PetscCall(PetscFree2(Y, Cfit));
  PetscFunctionReturn(0);
}

/* One level of the tree: its pairs run concurrently on rank groups (pair p on group p % G); the
   results are then broadcast from each group's first rank and appended in pair order, so the tree,
   the samples and the journal indices are those of a one-rank run. */
static PetscErrorCode MapNestedLevel(MapRunCtx *r, int level, int npair, const int *pa, const int *pb, int *counter, PetscBool *stop)
{
  int            T = r->T, ngroup, color, base = r->tree.nnodes;
  PetscInt       n2;
  MapNestedGroup g;
  MapPairResult *res;
  double        *Cs, *accs, *losss, *tmp;
  const char    *names[2] = {"left", "right"};

  PetscFunctionBegin;
  PetscCheck(r->tree.nnodes + npair <= 128, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "nested MAP: too many tree nodes");
  PetscCall(MapSampleGenerate(MAP_SAMPLE_REFERENCE, 2, names, r->opt.nested_samples, r->opt.lo, r->opt.hi, 0, NULL, &n2, &tmp));
  PetscCall(PetscFree(tmp));
  PetscInt per = (n2 + 1) * T; /* evaluated models of one pair */
  /* a SLURM chain job computes one pair of its level and only keeps the numbering of the others */
  PetscBool chain        = (r->opt.nested_level > 0 && level == r->opt.nested_level) ? PETSC_TRUE : PETSC_FALSE;
  r->journal.replay_only = (r->opt.nested_level > 0 && level < r->opt.nested_level) ? PETSC_TRUE : PETSC_FALSE;
  ngroup                 = chain ? 1 : PetscMin(npair, r->size);
  PetscCall(PetscCalloc1(npair, &res));
  PetscCall(PetscCalloc3(npair * per, &Cs, npair * per, &accs, npair * per, &losss));
  color = (int)(((int64_t)r->rank * ngroup) / r->size);
  {
    /* the tasks this rank's group merges: those carried by the pairs it computes */
    PetscBool need[MAP_MAX_TASKS] = {PETSC_FALSE};
    for (int p = 0; p < npair; p++) {
      if (chain ? p != r->opt.nested_pair : p % ngroup != color) continue;
      for (int i = 0; i < r->tree.nodes[pa[p]].ntask; i++) need[r->tree.nodes[pa[p]].tasks[i]] = PETSC_TRUE;
      for (int i = 0; i < r->tree.nodes[pb[p]].ntask; i++) need[r->tree.nodes[pb[p]].tasks[i]] = PETSC_TRUE;
    }
    PetscCall(MapNestedGroupCreate(r, ngroup, color, need, &g));
  }
  for (int p = 0; p < npair; p++) {
    if (chain && p != r->opt.nested_pair) continue;
    if (!chain && p % ngroup != color) continue;
    PetscCall(MapNestedPair(r, &g, pa[p], pb[p], base + p, level, *counter + p * (int)(n2 + 1), &res[p], &Cs[p * per], &accs[p * per],
                            &losss[p * per]));
    if (res[p].stop) break;
  }
  PetscCall(MapNestedGroupDestroy(&g));
  r->journal.replay_only = PETSC_FALSE;
  /* every pair's result from the first rank of its group */
  for (int p = 0; p < npair; p++) {
    if (chain && p != r->opt.nested_pair) continue;
    int gk = chain ? 0 : p % ngroup, root = 0;
    while ((int)(((int64_t)root * ngroup) / r->size) != gk) root++;
    PetscCallMPI(MPI_Bcast(&res[p], (int)sizeof(MapPairResult), MPI_BYTE, root, r->comm));
    PetscCallMPI(MPI_Bcast(&Cs[p * per], (int)per, MPI_DOUBLE, root, r->comm));
    PetscCallMPI(MPI_Bcast(&accs[p * per], (int)per, MPI_DOUBLE, root, r->comm));
    PetscCallMPI(MPI_Bcast(&losss[p * per], (int)per, MPI_DOUBLE, root, r->comm));
  }
  int anystop = 0;
  for (int p = 0; p < npair; p++) anystop |= res[p].stop ? 1 : 0;
  *stop = anystop ? PETSC_TRUE : PETSC_FALSE;
  for (int p = 0; p < npair && !*stop; p++) {
    MapNestedNode *N = &r->tree.nodes[base + p];
    if (chain && p != r->opt.nested_pair) { /* computed by another job of this level */
      memset(N, 0, sizeof(*N));
      N->left   = pa[p];
      N->right  = pb[p];
      N->level  = level;
      N->metric = NAN;
      continue;
    }
    *N = res[p].node;
    for (int i = 0; i < res[p].nevals; i++) {
      PetscCall(MapSampleSetAppend(&r->samples, &Cs[p * per + i * T], &accs[p * per + i * T], &losss[p * per + i * T], base + p, -1));
      r->samples.failed[r->samples.n - 1] = PetscIsNanReal(accs[p * per + i * T]) ? PETSC_TRUE : PETSC_FALSE; /* NaN: journaled as failed */
    }
    PetscCall(PetscArraycpy(r->report.pick_acc, res[p].chosen_acc, T));
    PetscCall(PetscArraycpy(r->report.pick_loss, res[p].chosen_loss, T));
    PetscCall(PetscPrintf(r->comm, "nested level %d: node %d = (%d, %d) at c = (%.4f, %.4f)%s: objectives predicted (%.4f, %.4f), real (%.4f, %.4f)\n",
                          level, base + p, pa[p], pb[p], N->c[0], N->c[1], N->from_sample ? " (an evaluated sample beat the pick)" : "",
                          N->pred[0], N->pred[1], N->real[0], N->real[1]));
  }
  if (!*stop) r->tree.nnodes += npair;
  *counter += npair * (int)(n2 + 1);
  PetscCall(PetscFree(res));
  PetscCall(PetscFree3(Cs, accs, losss));
  PetscFunctionReturn(0);
}

PetscErrorCode MapRunNested(MapRunCtx *r, PetscBool *stop)
{
  int    T = r->T, counter = 0, active[MAP_MAX_TASKS] = {0}, nactive = 0, level = 0;
  double acc[MAP_MAX_TASKS], loss[MAP_MAX_TASKS], c[MAP_MAX_TASKS];

  PetscFunctionBegin;
  *stop          = PETSC_FALSE;
  r->tree.nnodes = 0;
  /* leaves: each fine-tuned model on its own task (evaluated, not assumed) */
  for (int t = 0; t < T; t++) {
    MapNestedNode *L = &r->tree.nodes[r->tree.nnodes];
    memset(L, 0, sizeof(*L));
    for (int k = 0; k < T; k++) c[k] = (k == t) ? 1.0 : 0.0;
    PetscCall(MapNestedEvaluate(r, &counter, c, acc, loss, stop));
    if (*stop) PetscFunctionReturn(0);
    L->left = L->right = -1;
    L->ntask           = 1;
    L->tasks[0]        = t;
    PetscCall(PetscArraycpy(L->W, c, T));
    L->metric         = acc[t];
    L->evaluations    = 1;
    active[nactive++] = r->tree.nnodes++;
  }
  while (nactive > 1) {
    int paired[MAP_MAX_TASKS] = {0}, next[MAP_MAX_TASKS], nnext = 0, npair = 0, pa[MAP_MAX_TASKS / 2], pb[MAP_MAX_TASKS / 2];
    level++;
    /* greedy: the closest pair by metric first (ties: lower indices), until fewer than two remain */
    for (;;) {
      int    bi = -1, bj = -1;
      double best = PETSC_MAX_REAL;
      for (int i = 0; i < nactive; i++)
        for (int j = i + 1; j < nactive; j++) {
          if (paired[i] || paired[j]) continue;
          double d = PetscAbsReal(r->tree.nodes[active[i]].metric - r->tree.nodes[active[j]].metric);
          if (d < best) {
            best = d;
            bi   = i;
            bj   = j;
          }
        }
      if (bi < 0) break;
      paired[bi] = paired[bj] = 1;
      pa[npair]               = active[bi];
      pb[npair]               = active[bj];
      next[nnext++]           = r->tree.nnodes + npair;
      npair++;
    }
    if (r->opt.nested_level > 0 && level == r->opt.nested_level)
      PetscCheck(r->opt.nested_pair < npair, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_nested_pair %d: level %d has %d pair(s)",
                 (int)r->opt.nested_pair, level, npair);
    PetscCall(MapNestedLevel(r, level, npair, pa, pb, &counter, stop));
    if (*stop) PetscFunctionReturn(0);
    for (int i = 0; i < nactive; i++)
      if (!paired[i]) next[nnext++] = active[i]; /* the odd one out waits for the next level */
    for (int i = 0; i < nnext; i++) active[i] = next[i];
    nactive = nnext;
    if (r->opt.nested_level > 0 && level == r->opt.nested_level && nactive > 1) { /* the next level's jobs take it from here */
      r->nested_partial = PETSC_TRUE;
      PetscFunctionReturn(0);
    }
  }
  PetscCheck(r->opt.nested_level <= level, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_nested_level %d: the merge tree of %d tasks has %d level(s)",
             (int)r->opt.nested_level, T, level);
  r->tree.root = active[0];
  PetscCall(PetscArraycpy(r->report.pick_c, r->tree.nodes[r->tree.root].W, T));
  for (int t = 0; t < T; t++) r->report.pick_pred[t] = NAN; /* nested MAP predicts side objectives, not per-task metrics */
  PetscFunctionReturn(0);
}

PetscErrorCode MapRunNestedWrite(MapRunCtx *r, hid_t file)
{
  int     T = r->T, n = r->tree.nnodes;
  double *tree, *W;
  hid_t   g;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(n * 12, &tree, n * T, &W));
  for (int k = 0; k < n; k++) {
    MapNestedNode *N       = &r->tree.nodes[k];
    double         row[12] = {N->left, N->right, N->level, N->c[0], N->c[1], N->pred[0], N->pred[1], N->real[0], N->real[1], N->metric, N->evaluations, N->from_sample};
    PetscCall(PetscArraycpy(&tree[k * 12], row, 12));
    PetscCall(PetscArraycpy(&W[k * T], N->W, T));
  }
  MapCallHDF5(g = H5Gcreate2(file, "nested", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  PetscCall(MapH5WriteMatrix(g, "tree", n, 12, tree));
  PetscCall(MapH5WriteStringAttr(g, "tree_columns", "left,right,level,c_left,c_right,pred_left,pred_right,real_left,real_right,metric,evaluations,from_sample"));
  PetscCall(MapH5WriteMatrix(g, "coeffs", n, T, W));
  PetscCall(MapH5WriteStringAttr(g, "coeffs_meaning", "each node's model as coefficients over the original task vectors; nodes < T are the fine-tuned models; the last is the root"));
  MapCallHDF5(H5Gclose(g));
  PetscCall(PetscFree2(tree, W));
  PetscFunctionReturn(0);
}

PetscErrorCode MapRunNestedView(MapRunCtx *r, PetscViewer viewer)
{
  PetscFunctionBegin;
  PetscCall(PetscViewerASCIIPrintf(viewer, "merge tree (%d nodes, root %d):\n", r->tree.nnodes, r->tree.root));
  for (int k = r->T; k < r->tree.nnodes; k++) {
    MapNestedNode *N = &r->tree.nodes[k];
    PetscCall(PetscViewerASCIIPrintf(viewer, "  level %d node %d = %.4f x node %d + %.4f x node %d; objectives real (%.4f, %.4f); %d evaluations\n",
                                     N->level, k, N->c[0], N->left, N->c[1], N->right, N->real[0], N->real[1], N->evaluations));
  }
  PetscFunctionReturn(0);
}
