/* The summary of a live run, printed when it finishes: fit quality, front, pick, best evaluated
   model, time per phase. */
#include "runimpl.h"

PetscErrorCode MapRunSummary(MapRunCtx *r)
{
  PetscFunctionBegin;
  int T = r->T;
  PetscCall(PetscPrintf(r->comm, "\n== mapmerge run summary (%s, %d tasks, %d ranks) ==\n", r->out, T, r->size));
  PetscCall(PetscPrintf(r->comm, "models evaluated: %" PetscInt_FMT "%s (+%" PetscInt_FMT " re-evaluations%s)\n", r->n,
                        r->nnodes ? " in the merge tree" : " samples", r->kreal, r->npref && !r->nnodes ? " + 1 pick" : ""));
  if (r->bayes_per_task) {
    PetscInt one = 0;
    for (PetscInt i = 0; i < r->n; i++) one += r->sample_task[i] >= 0;
    PetscCall(PetscPrintf(r->comm, "  per-task rounds: %" PetscInt_FMT " samples evaluated on every task, %" PetscInt_FMT " on one task each\n",
                          r->n - one, one));
  }
  if (r->nnodes) PetscCall(MapRunNestedSummary(r));
  if (r->fitted) {
  PetscCall(PetscPrintf(r->comm, "%-16s %10s %10s %10s %10s\n", "task", "R2(acc)", "RMSE(acc)", "LOO(acc)", "R2(loss)"));
  for (int t = 0; t < T; t++) {
    MapFitDiagnostics da, dl;
    PetscCall(MapSurrogateGetDiagnostics(r->sur, t, &da));
    PetscCall(MapSurrogateGetDiagnostics(r->sur, T + t, &dl));
    PetscCall(PetscPrintf(r->comm, "%-16s %10.4f %10.4g %10.4g %10.4f\n", r->tasks[t], da.r2, da.rmse, da.loo_rmse, dl.r2));
  }
  double ref[MAP_MAX_TASKS] = {0};
  double hvp = MapFrontHypervolume(T, r->kfront, r->Ff, ref);
  double hvr = r->kreal ? MapFrontHypervolume(T, r->kreal, r->real_acc, ref) : 0;
  PetscCall(PetscPrintf(r->comm, "front: %" PetscInt_FMT " points; hypervolume (accuracy, ref 0): predicted %.6f, real (%" PetscInt_FMT
                                 " re-evaluated) %.6f\n", r->kfront, hvp, r->kreal, hvr));
  PetscCall(PetscPrintf(r->comm, "real front (non-dominated among all %" PetscInt_FMT " evaluated models): %" PetscInt_FMT " points, hypervolume %.6f\n",
                        r->n + r->kreal + (r->npref ? 1 : 0), r->kall, MapFrontHypervolume(T, r->kall, r->all_acc, ref)));
  }
  char pref[MAP_MAX_TASKS * 24] = "";
  for (int t = 0; t < r->npref; t++) { /* plain %g: PetscPrintf would print "1." */
    size_t len = strlen(pref);
    snprintf(pref + len, sizeof(pref) - len, "%s%g", t ? "," : "", r->pref[t]);
  }
  if (r->npref) {
    PetscCall(PetscPrintf(r->comm, "pick for preference %s: c =", pref));
    for (int t = 0; t < T; t++) PetscCall(PetscPrintf(r->comm, " %.4f", r->pick_c[t]));
    PetscCall(PetscPrintf(r->comm, "\n  %-16s %10s %10s %10s\n", "task", "predicted", "real(val)", r->ev_test ? "test" : ""));
    for (int t = 0; t < T; t++) {
      PetscCall(PetscPrintf(r->comm, "  %-16s %10.4f %10.4f", r->tasks[t], r->pick_pred[t], r->pick_acc[t]));
      if (r->ev_test) PetscCall(PetscPrintf(r->comm, " %10.4f", r->pick_test_acc[t]));
      PetscCall(PetscPrintf(r->comm, "\n"));
    }
    double off = 0;
    for (int t = 0; t < T; t++) off = PetscMax(off, PetscAbsReal(r->pick_pred[t] - r->pick_acc[t]));
    /* a surrogate far off at its own pick steered the search there on wrong values: say what helps
       (bench/README.md, "Refining the pick at T = 8": 0.12-0.34 -> <= 0.06 with 4 rounds) */
    if (off > 0.05 && !(r->refine && r->refine_pick))
      PetscCall(PetscPrintf(r->comm, "  the surrogates are off by up to %.3f at the pick: -map_refine 4 -map_refine_target pick re-fits there with 4 more evaluations\n", off));
  }
  if (r->best_found) {
    PetscCall(PetscPrintf(r->comm, "best evaluated model by the pick's criterion (the scalarised real accuracies, lower is better: %.4f; the pick's %.4f): c =",
                          r->best_score, r->pick_score));
    for (int t = 0; t < T; t++) PetscCall(PetscPrintf(r->comm, " %.4f", r->best_c[t]));
    PetscCall(PetscPrintf(r->comm, "\n"));
    if (r->best_score < r->pick_score) {
      PetscCall(PetscPrintf(r->comm, "  to write it: mapmerge export -map_store %s -map_run %s -map_export_model best_evaluated -map_preference %s -map_output merged.safetensors\n",
                            r->store_path, r->out, pref));
    }
  }
  PetscCall(PetscPrintf(r->comm, "time per phase:"));
  for (int i = 0; i < MAP_RUN_NPHASE; i++) PetscCall(PetscPrintf(r->comm, " %s %.2fs", MapRunPhaseNames[i], r->t_phase[i]));
  PetscCall(PetscPrintf(r->comm, "\nresults: %s/results.h5, %s/front.csv, %s/manifest.json\n", r->out, r->out, r->out));
  PetscFunctionReturn(0);
}
