/* The summary of a live run, printed when it finishes: fit quality, front, pick, best evaluated
   model, time per phase. */
#include "runimpl.h"

/*@
  MapRunView - the summary of a finished run (fit quality, front, pick, best evaluated model, time per
  phase); nothing before MapRunSolve has completed. Collective.
@*/
PetscErrorCode MapRunView(MapRun r, PetscViewer viewer)
{
  PetscFunctionBegin;
  if (r->status != MAP_RUN_COMPLETED) PetscFunctionReturn(0);
  int T = r->T;
  PetscCall(PetscViewerASCIIPrintf(viewer, "\n== mapmerge run summary (%s, %d tasks, %d ranks) ==\n", r->opt.out, T, r->size));
  PetscCall(PetscViewerASCIIPrintf(viewer, "models evaluated: %" PetscInt_FMT "%s (+%" PetscInt_FMT " re-evaluations%s)\n", r->samples.n,
                                   r->tree.nnodes ? " in the merge tree" : " samples", r->report.kreal, r->opt.npref && !r->tree.nnodes ? " + 1 pick" : ""));
  if (r->opt.bayes_per_task) {
    PetscInt one = 0;
    for (PetscInt i = 0; i < r->samples.n; i++) one += r->samples.task[i] >= 0;
    PetscCall(PetscViewerASCIIPrintf(viewer, "  per-task rounds: %" PetscInt_FMT " samples evaluated on every task, %" PetscInt_FMT " on one task each\n",
                                     r->samples.n - one, one));
  }
  if (r->tree.nnodes) PetscCall(MapRunNestedView(r, viewer));
  PetscCall(MapRunBudgetView(r, viewer));    /* -map_budget: how the evaluations were spent */
  PetscCall(MapRunMetricSummary(r, viewer)); /* fit, fronts and failed evaluations in the metric's units */
  char pref[MAP_MAX_TASKS * 24] = "";
  for (int t = 0; t < r->opt.npref; t++) { /* plain %g: PetscPrintf would print "1." */
    size_t len = strlen(pref);
    snprintf(pref + len, sizeof(pref) - len, "%s%g", t ? "," : "", r->opt.pref[t]);
  }
  if (r->opt.npref) {
    PetscCall(PetscViewerASCIIPrintf(viewer, "pick for preference %s: c =", pref));
    for (int t = 0; t < T; t++) PetscCall(PetscViewerASCIIPrintf(viewer, " %.4f", r->report.pick_c[t]));
    PetscCall(PetscViewerASCIIPrintf(viewer, "\n  %-16s %10s %10s %10s\n", "task", "predicted", "real(val)", r->ev_test ? "test" : ""));
    for (int t = 0; t < T; t++) {
      PetscCall(PetscViewerASCIIPrintf(viewer, "  %-16s %10.4f %10.4f", r->tasks[t], r->report.pick_pred[t], r->report.pick_acc[t]));
      if (r->ev_test) PetscCall(PetscViewerASCIIPrintf(viewer, " %10.4f", r->report.pick_test_acc[t]));
      PetscCall(PetscViewerASCIIPrintf(viewer, "\n"));
    }
    double off = 0;
    for (int t = 0; t < T; t++) off = PetscMax(off, PetscAbsReal(r->report.pick_pred[t] - r->report.pick_acc[t]));
    /* a surrogate far off at its own pick steered the search there on wrong values: say what helps
       (bench/README.md, "Refining the pick at T = 8": 0.12-0.34 -> <= 0.06 with 4 rounds) */
    if (off > 0.05 && !(r->opt.refine && r->opt.refine_pick))
      PetscCall(PetscViewerASCIIPrintf(viewer, "  the surrogates are off by up to %.3f at the pick: -map_refine 4 -map_refine_target pick re-fits there with 4 more evaluations\n", off));
  }
  if (r->report.best_found) {
    PetscCall(PetscViewerASCIIPrintf(viewer, "best evaluated model by the pick's criterion (the scalarised real accuracies, lower is better: %.4f; the pick's %.4f): c =",
                                     r->report.best_score, r->report.pick_score));
    for (int t = 0; t < T; t++) PetscCall(PetscViewerASCIIPrintf(viewer, " %.4f", r->report.best_c[t]));
    PetscCall(PetscViewerASCIIPrintf(viewer, "\n"));
    if (r->report.best_score < r->report.pick_score) {
      PetscCall(PetscViewerASCIIPrintf(viewer, "  to write it: mapmerge export -map_store %s -map_run %s -map_export_model best_evaluated -map_preference %s -map_output merged.safetensors\n",
                                       r->opt.store_path, r->opt.out, pref));
    }
  }
  PetscCall(PetscViewerASCIIPrintf(viewer, "time per phase:"));
  for (int i = 0; i < MAP_RUN_NPHASE; i++) PetscCall(PetscViewerASCIIPrintf(viewer, " %s %.2fs", MapRunPhaseNames[i], r->t_phase[i]));
  PetscCall(PetscViewerASCIIPrintf(viewer, "\nresults: %s/results.h5, %s/front.csv, %s/manifest.json\n", r->opt.out, r->opt.out, r->opt.out));
  PetscFunctionReturn(0);
}
