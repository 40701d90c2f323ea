/* test_mlp: the mlp evaluator against its double-precision reference, and its exact bits for the
   np 1/2/4 comparison (tests/eval/test_forward.py); each task evaluated alone (MapEvaluatorEvaluateTasks)
   gives the same bits as in the all-task evaluation.
   Options: -map_store S [-import -map_pretrained P -map_task_models M1,M2 ... -map_private_patterns head.*]
            -map_tasks a,b,c -map_eval_data ... [-map_eval_groups G -map_eval_kernel ...]
            -coeffs "c11,c12,c13;c21,..." -out FILE (rank 0 writes "vector task acc loss correct count"
            with the doubles in %a) -ref (also compare with MapEvaluatorEvaluate_MLPRef) */
#include <mapmerge/mapmerge.h>
#include <math.h>

int main(int argc, char **argv)
{
  char         store[MAP_PATH_LEN] = "", pre[MAP_PATH_LEN] = "", coeffs[4096] = "", out[MAP_PATH_LEN] = "";
  int          T, nm = 0, np = 0, rank, nvec, fails = 0;
  char       **tasks, **models = NULL, **pats = NULL, **vecs;
  PetscBool    imp = PETSC_FALSE, ref = PETSC_FALSE, flg;
  MapStore     st;
  MapModel     model;
  MapEvaluator ev;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCall(MapInitializePackage());
  MPI_Comm comm = PETSC_COMM_WORLD;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(PetscOptionsGetString(NULL, NULL, "-map_store", store, sizeof(store), &flg));
  PetscCall(PetscOptionsGetBool(NULL, NULL, "-import", &imp, NULL));
  PetscCall(PetscOptionsGetBool(NULL, NULL, "-ref", &ref, NULL));
  PetscCall(PetscOptionsGetString(NULL, NULL, "-coeffs", coeffs, sizeof(coeffs), &flg));
  PetscCall(PetscOptionsGetString(NULL, NULL, "-out", out, sizeof(out), &flg));
  PetscCall(MapOptionsGetList("-map_tasks", &T, &tasks, &flg));
  if (imp) {
    PetscCall(PetscOptionsGetString(NULL, NULL, "-map_pretrained", pre, sizeof(pre), &flg));
    PetscCall(MapOptionsGetList("-map_task_models", &nm, &models, &flg));
    PetscCall(MapOptionsGetList("-map_private_patterns", &np, &pats, &flg));
    PetscCall(MapStoreImport(comm, pre, T, (const char *const *)tasks, (const char *const *)models, np, (const char *const *)pats, store, NULL));
  }
  PetscCall(MapStoreOpen(comm, store, &st));
  int *idx;
  PetscCall(PetscMalloc1(T, &idx));
  for (int t = 0; t < T; t++) PetscCall(MapStoreFindTask(st, tasks[t], &idx[t]));
  PetscCall(MapModelCreateFromStore(st, T, idx, &model));
  PetscCall(MapEvaluatorCreate(comm, &ev));
  PetscCall(MapEvaluatorSetFromOptions(ev));
  PetscCall(MapEvaluatorSetUp(ev, model, T, (const char *const *)tasks, NULL));

  FILE *f = NULL;
  if (!rank && out[0]) f = fopen(out, "w");
  PetscCall(MapSplitList(coeffs, ';', &nvec, &vecs));
  double         c[MAP_MAX_TASKS];
  MapTaskMetrics m[MAP_MAX_TASKS], r[MAP_MAX_TASKS];
  double         maxrel = 0;
  for (int v = 0; v < nvec; v++) {
    int    nc;
    char **cs;
    PetscCall(MapSplitList(vecs[v], ',', &nc, &cs));
    if (nc != T) SETERRQ(comm, PETSC_ERR_ARG_SIZ, "vector %d has %d coefficients, expected %d", v, nc, T);
    for (int t = 0; t < T; t++) c[t] = atof(cs[t]);
    PetscCall(MapFreeList(nc, &cs));
    PetscCall(MapEvaluatorEvaluate(ev, c, m));
    double tEval = MPI_Wtime();
    PetscCall(MapEvaluatorEvaluate(ev, c, r)); /* twice: the result must not change */
    tEval = MPI_Wtime() - tEval;
    for (int t = 0; t < T; t++)
      if (memcmp(&m[t], &r[t], sizeof(m[t]))) {
        PetscCall(PetscPrintf(comm, "FAIL vector %d task %s: a second Evaluate gave other bits\n", v, tasks[t]));
        fails++;
      }
    /* one task at a time (Bayesian MAP's per-task rounds): the same bits for it, NaN for the others */
    for (int w = 0; w < T; w++) {
      PetscBool want[MAP_MAX_TASKS];
      for (int t = 0; t < T; t++) want[t] = t == w ? PETSC_TRUE : PETSC_FALSE;
      PetscCall(MapEvaluatorEvaluateTasks(ev, c, want, r));
      for (int t = 0; t < T; t++) {
        PetscBool ok = t == w ? (PetscBool)!memcmp(&m[t], &r[t], sizeof(m[t]))
                              : (PetscBool)(isnan(r[t].accuracy) && isnan(r[t].loss) && r[t].count == 0);
        if (!ok) {
          PetscCall(PetscPrintf(comm, "FAIL vector %d task %s: evaluated alone (want = task %d) it gave acc %.17g loss %.17g\n", v, tasks[t], w,
                                r[t].accuracy, r[t].loss));
          fails++;
        }
      }
    }
    if (f)
      for (int t = 0; t < T; t++)
        fprintf(f, "%d %s %a %a %lld %lld\n", v, tasks[t], m[t].accuracy, m[t].loss, (long long)m[t].correct, (long long)m[t].count);
    if (ref) {
      PetscCall(MapEvaluatorEvaluate_MLPRef(ev, c, r));
      for (int t = 0; t < T; t++) {
        double rel = fabs(m[t].loss - r[t].loss) / fabs(r[t].loss);
        maxrel     = fmax(maxrel, rel);
        if (!(rel <= 1e-6) || m[t].correct != r[t].correct || m[t].count != r[t].count) {
          PetscCall(PetscPrintf(comm, "FAIL vector %d task %s: mlp loss %.17g correct %lld, reference loss %.17g correct %lld (rel %.3g)\n", v,
                                tasks[t], m[t].loss, (long long)m[t].correct, r[t].loss, (long long)r[t].correct, rel));
          fails++;
        }
      }
    }
    PetscCall(PetscPrintf(comm, "vector %d: %s acc %.6f loss %.9f ... (%.3f ms per Evaluate)\n", v, tasks[0], m[0].accuracy, m[0].loss,
                          1e3 * tEval));
  }
  if (ref) PetscCall(PetscPrintf(comm, "max relative loss difference vs reference: %.3g\n", maxrel));
  if (f) fclose(f);
  PetscCall(PetscPrintf(comm, "%s\n", fails ? "FAILED" : "OK"));
  PetscCall(MapFreeList(nvec, &vecs));
  PetscCall(PetscFree(idx));
  PetscCall(MapEvaluatorDestroy(&ev));
  PetscCall(MapModelDestroy(&model));
  PetscCall(MapStoreDestroy(&st));
  PetscCall(MapFreeList(T, &tasks));
  PetscCall(MapFreeList(nm, &models));
  PetscCall(MapFreeList(np, &pats));
  PetscCall(PetscFinalize());
  return fails ? 1 : 0;
}
