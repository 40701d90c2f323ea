/* Nested MAP (DESIGN.md §5): repeatedly pair the two models whose metrics are closest, run 2-task
   MAP on the pair, merge the pair at the user's preference into a new model, until one remains.
   Each side's objective is the preference-weighted mean accuracy of the tasks it carries; a merged
   pair's task vector c_a tau_a + c_b tau_b is kept as coefficients over the original T vectors, so
   every evaluation is an ordinary merge of the store's task vectors (and is journaled as such). */
#include "runimpl.h"

typedef struct {
  MapSurrogate sur;
} MapPairCtx;

static PetscErrorCode MapPairObjective(void *ctx, const double *c, double *f, double *J)
{
  MapPairCtx *p = (MapPairCtx *)ctx;

  PetscFunctionBegin;
  for (int k = 0; k < 2; k++) PetscCall(MapSurrogatePredict(p->sur, k, c, &f[k], J ? &J[2 * k] : NULL));
  PetscFunctionReturn(0);
}

/* preference-weighted mean accuracy of the tasks a node carries */
static double MapNodeObjective(MapRunCtx *r, const MapNestedNode *n, const double *acc)
{
  double num = 0, den = 0;
  for (int i = 0; i < n->ntask; i++) {
    num += r->pref[n->tasks[i]] * acc[n->tasks[i]];
    den += r->pref[n->tasks[i]];
  }
  return den > 0 ? num / den : 0;
}

static double MapNodePreference(MapRunCtx *r, const MapNestedNode *n)
{
  double w = 0;
  for (int i = 0; i < n->ntask; i++) w += r->pref[n->tasks[i]];
  return w;
}

/* evaluate the model with coefficients c over the original tasks; record it as a sample */
static PetscErrorCode MapNestedEvaluate(MapRunCtx *r, int *counter, const double *c, double *acc, double *loss, PetscBool *stop)
{
  PetscBool fresh;

  PetscFunctionBegin;
  PetscCall(MapRunCheckSignal(r, stop));
  if (*stop) PetscFunctionReturn(0);
  PetscCall(MapRunEvaluate(r, "nested", *counter, c, acc, loss, &fresh));
  (*counter)++;
  PetscCall(PetscArraycpy(&r->C[r->n * r->T], c, r->T));
  PetscCall(PetscArraycpy(&r->acc[r->n * r->T], acc, r->T));
  PetscCall(PetscArraycpy(&r->loss[r->n * r->T], loss, r->T));
  r->round[r->n] = r->nnodes; /* the tree node being built */
  r->n++;
  PetscFunctionReturn(0);
}

/* 2-task MAP on nodes a and b; appends the merged node */
/* mode: 0 compute (journal first), 1 skip (another job of this level computes it: only keep the
   numbering of nodes and evaluations) */
static PetscErrorCode MapNestedPair(MapRunCtx *r, int a, int b, int level, int mode, int *counter, PetscBool *stop)
{
  int            T = r->T;
  MapNestedNode *A = &r->nodes[a], *B = &r->nodes[b], *N = &r->nodes[r->nnodes];
  PetscInt       n2;
  double        *C2, *Y, acc[64], loss[64], c[64];
  MapPairCtx     pc;
  MapPareto      pareto;
  MapLink        links[2] = {MAP_LINK_SIGMOID, MAP_LINK_SIGMOID};
  const char    *names[2] = {"left", "right"};

  PetscFunctionBegin;
  PetscCheck(r->nnodes < 128, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "nested MAP: too many tree nodes");
  memset(N, 0, sizeof(*N));
  N->left  = a;
  N->right = b;
  N->level = level;
  /* the pair's design: keyed on (seed, node) so a resumed or re-ranked run draws the same points */
  PetscCall(MapSampleGenerate(MAP_SAMPLE_REFERENCE, 2, names, r->nested_samples, r->lo, r->hi,
                              (uint64_t)r->seed * 1000003ULL + (uint64_t)r->nnodes, NULL, &n2, &C2));
  if (mode == 1) {
    *counter += (int)n2 + 1;
    N->metric = NAN;
    r->nnodes++;
    PetscCall(PetscFree(C2));
    PetscFunctionReturn(0);
  }
  N->ntask = A->ntask + B->ntask;
  for (int i = 0; i < A->ntask; i++) N->tasks[i] = A->tasks[i];
  for (int i = 0; i < B->ntask; i++) N->tasks[A->ntask + i] = B->tasks[i];
  PetscInt best = -1;
  double   best_score = -PETSC_MAX_REAL, best_acc[64], best_loss[64];
  PetscCall(PetscMalloc1(2 * n2, &Y));
  for (PetscInt i = 0; i < n2; i++) {
    for (int t = 0; t < T; t++) c[t] = C2[2 * i] * A->W[t] + C2[2 * i + 1] * B->W[t];
    PetscCall(MapNestedEvaluate(r, counter, c, acc, loss, stop));
    if (*stop) break;
    Y[2 * i]     = MapNodeObjective(r, A, acc);
    Y[2 * i + 1] = MapNodeObjective(r, B, acc);
    double score = MapNodeObjective(r, N, acc);
    if (score > best_score) { /* first best wins ties: deterministic */
      best_score = score;
      best       = i;
      PetscCall(PetscArraycpy(best_acc, acc, T));
      PetscCall(PetscArraycpy(best_loss, loss, T));
    }
  }
  if (*stop) {
    PetscCall(PetscFree(C2));
    PetscCall(PetscFree(Y));
    PetscFunctionReturn(0);
  }
  PetscCall(MapSurrogateCreate(r->comm, &pc.sur));
  PetscCall(MapSurrogateFit(pc.sur, 2, n2, C2, 2, Y, links));
  PetscCall(MapParetoCreate(r->comm, &pareto));
  PetscCall(MapParetoSetFromOptions(pareto));
  PetscCall(MapParetoSetBox(pareto, r->lo, r->hi));
  PetscCall(MapParetoSetObjectives(pareto, 2, 2, MapPairObjective, &pc));
  PetscCall(MapParetoSolve(pareto));
  {
    PetscInt      k;
    const double *Cf, *Ff, *Wf;
    PetscCall(MapParetoGetFront(pareto, &k, &Cf, &Ff, &Wf));
    N->front_size = (int)k;
  }
  double w[2] = {MapNodePreference(r, A), MapNodePreference(r, B)};
  PetscCall(MapParetoPick(pareto, w, N->c, N->pred));
  PetscCall(MapParetoDestroy(&pareto));
  for (int t = 0; t < T; t++) N->W[t] = N->c[0] * A->W[t] + N->c[1] * B->W[t];
  PetscCall(MapNestedEvaluate(r, counter, N->W, acc, loss, stop));
  if (!*stop && best >= 0 && best_score > MapNodeObjective(r, N, acc)) {
    /* a sample the pair already paid for beats the surrogate's pick on the real models: keep it
       (the surrogate of 12 points can be far off where the task vectors conflict) */
    N->from_sample = 1;
    N->c[0]        = C2[2 * best];
    N->c[1]        = C2[2 * best + 1];
    for (int t = 0; t < T; t++) N->W[t] = N->c[0] * A->W[t] + N->c[1] * B->W[t];
    for (int k = 0; k < 2; k++) PetscCall(MapSurrogatePredict(pc.sur, k, N->c, &N->pred[k], NULL));
    PetscCall(PetscArraycpy(acc, best_acc, T));
    PetscCall(PetscArraycpy(loss, best_loss, T));
  }
  if (!*stop) {
    N->real[0]     = MapNodeObjective(r, A, acc);
    N->real[1]     = MapNodeObjective(r, B, acc);
    N->metric      = MapNodeObjective(r, N, acc);
    N->evaluations = (int)n2 + 1;
    PetscCall(PetscArraycpy(r->pick_acc, acc, T));
    PetscCall(PetscArraycpy(r->pick_loss, loss, T));
    PetscCall(PetscPrintf(r->comm, "nested level %d: node %d = (%d, %d) at c = (%.4f, %.4f)%s: objectives predicted (%.4f, %.4f), real (%.4f, %.4f)\n",
                          level, r->nnodes, a, b, N->c[0], N->c[1], N->from_sample ? " (an evaluated sample beat the pick)" : "",
                          N->pred[0], N->pred[1], N->real[0], N->real[1]));
    r->nnodes++;
  }
  PetscCall(MapSurrogateDestroy(&pc.sur));
  PetscCall(PetscFree(C2));
  PetscCall(PetscFree(Y));
  PetscFunctionReturn(0);
}

PetscErrorCode MapRunNested(MapRunCtx *r, PetscBool *stop)
{
  int    T = r->T, counter = 0, active[64] = {0}, nactive = 0, level = 0;
  double acc[64], loss[64], c[64];

  PetscFunctionBegin;
  *stop     = PETSC_FALSE;
  r->nnodes = 0;
  /* leaves: each fine-tuned model on its own task (evaluated, not assumed) */
  for (int t = 0; t < T; t++) {
    MapNestedNode *L = &r->nodes[r->nnodes];
    memset(L, 0, sizeof(*L));
    for (int k = 0; k < T; k++) c[k] = (k == t) ? 1.0 : 0.0;
    PetscCall(MapNestedEvaluate(r, &counter, c, acc, loss, stop));
    if (*stop) PetscFunctionReturn(0);
    L->left = L->right = -1;
    L->ntask           = 1;
    L->tasks[0]        = t;
    PetscCall(PetscArraycpy(L->W, c, T));
    L->metric      = acc[t];
    L->evaluations = 1;
    active[nactive++] = r->nnodes++;
  }
  while (nactive > 1) {
    int paired[64] = {0}, next[64], nnext = 0, npair = 0;
    level++;
    /* greedy: the closest pair by metric first (ties: lower indices), until fewer than two remain */
    for (;;) {
      int    bi = -1, bj = -1;
      double best = PETSC_MAX_REAL;
      for (int i = 0; i < nactive; i++)
        for (int j = i + 1; j < nactive; j++) {
          if (paired[i] || paired[j]) continue;
          double d = PetscAbsReal(r->nodes[active[i]].metric - r->nodes[active[j]].metric);
          if (d < best) {
            best = d;
            bi   = i;
            bj   = j;
          }
        }
      if (bi < 0) break;
      paired[bi] = paired[bj] = 1;
      /* in a SLURM chain, earlier levels come from the journals and only this job's pair is computed */
      int mode = 0;
      r->journal_only = (r->nested_level > 0 && level < r->nested_level) ? PETSC_TRUE : PETSC_FALSE;
      if (r->nested_level > 0 && level == r->nested_level && npair != r->nested_pair) mode = 1;
      npair++;
      PetscCall(MapNestedPair(r, active[bi], active[bj], level, mode, &counter, stop));
      r->journal_only = PETSC_FALSE;
      if (*stop) PetscFunctionReturn(0);
      next[nnext++] = r->nnodes - 1;
    }
    for (int i = 0; i < nactive; i++)
      if (!paired[i]) next[nnext++] = active[i]; /* the odd one out waits for the next level */
    for (int i = 0; i < nnext; i++) active[i] = next[i];
    nactive = nnext;
    if (r->nested_level > 0 && level == r->nested_level) {
      PetscCheck(r->nested_pair < npair, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_nested_pair %d: level %d has %d pair(s)",
                 (int)r->nested_pair, level, npair);
      if (nactive > 1) { /* the next level's jobs take it from here */
        r->nested_partial = PETSC_TRUE;
        PetscFunctionReturn(0);
      }
    }
  }
  PetscCheck(r->nested_level <= level, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_nested_level %d: the merge tree of %d tasks has %d level(s)",
             (int)r->nested_level, T, level);
  r->root = active[0];
  PetscCall(PetscArraycpy(r->pick_c, r->nodes[r->root].W, T));
  for (int t = 0; t < T; t++) r->pick_pred[t] = NAN; /* nested MAP predicts side objectives, not per-task metrics */
  PetscFunctionReturn(0);
}

PetscErrorCode MapRunNestedWrite(MapRunCtx *r, hid_t file)
{
  int     T = r->T, n = r->nnodes;
  double *tree, *W;
  hid_t   g;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(n * 12, &tree, n * T, &W));
  for (int k = 0; k < n; k++) {
    MapNestedNode *N = &r->nodes[k];
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

PetscErrorCode MapRunNestedSummary(MapRunCtx *r)
{
  PetscFunctionBegin;
  PetscCall(PetscPrintf(r->comm, "merge tree (%d nodes, root %d):\n", r->nnodes, r->root));
  for (int k = r->T; k < r->nnodes; k++) {
    MapNestedNode *N = &r->nodes[k];
    PetscCall(PetscPrintf(r->comm, "  level %d node %d = %.4f x node %d + %.4f x node %d; objectives real (%.4f, %.4f); %d evaluations\n",
                          N->level, k, N->c[0], N->left, N->c[1], N->right, N->real[0], N->real[1], N->evaluations));
  }
  PetscFunctionReturn(0);
}
