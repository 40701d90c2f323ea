/* The one writer of a run's outputs: manifest.json, results.h5 and front.csv, written together or not
   at all (their one reader: run_results_read.c). */
#include "runimpl.h"
#include <hdf5.h>
#include <jansson.h>
#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void MapRunNow(char *buf, size_t len)
{
  time_t    t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* the process grids the results depend on (the surrogate's BLACS grid is fixed, not the job's) */
static PetscErrorCode MapManifestProcessGrids(json_t *m)
{
  char      grid[64] = "1,1", groups[64] = "auto (one sample group per rank for models <= 256 MiB)";
  PetscBool set;
  json_t   *g = json_object();

  PetscFunctionBegin;
  PetscCall(PetscOptionsGetString(NULL, NULL, "-map_surrogate_grid", grid, sizeof(grid), &set));
  json_object_set_new(g, "surrogate_blacs_grid", json_string(grid));
  PetscCall(PetscOptionsGetString(NULL, NULL, "-map_eval_groups", groups, sizeof(groups), &set));
  json_object_set_new(g, "eval_groups", json_string(groups));
  json_object_set_new(g, "pareto", json_string("preference vectors in contiguous blocks over the ranks, one TAO solve per vector on PETSC_COMM_SELF"));
  json_object_set_new(m, "process_grids", g);
  PetscFunctionReturn(0);
}

/* every option in the database, as given; and the mapmerge options one by one (values may hold
   spaces), for -map_replay */
static PetscErrorCode MapManifestOptions(json_t *m)
{
  char              *all;
  json_t            *mo    = json_object();
  const char *const *names = MapKnownOptionNames();
  static char        val[65536];

  PetscFunctionBegin;
  PetscCall(PetscOptionsGetAll(NULL, &all));
  json_object_set_new(m, "options", json_string(all));
  PetscCall(PetscFree(all));
  for (int i = 0; names[i]; i++) {
    PetscBool set;
    if (!strcmp(names[i], "-map_replay") || !strcmp(names[i], "-map_resume") || !strcmp(names[i], "-map_output")) continue;
    PetscCall(PetscOptionsGetString(NULL, NULL, names[i], val, sizeof(val), &set));
    if (set) json_object_set_new(mo, names[i], json_string(val));
  }
  json_object_set_new(m, "map_options", mo);
  PetscFunctionReturn(0);
}

/* the versions of everything the results depend on */
static PetscErrorCode MapManifestVersions(json_t *m)
{
  json_t  *v = json_object();
  char     buf[1024], mpiv[MPI_MAX_LIBRARY_VERSION_STRING], *nl;
  unsigned maj, min, rel;
  int      len;

  PetscFunctionBegin;
  PetscCall(PetscGetVersion(buf, sizeof(buf)));
  json_object_set_new(v, "petsc", json_string(buf));
  H5get_libversion(&maj, &min, &rel);
  snprintf(buf, sizeof(buf), "%u.%u.%u", maj, min, rel);
  json_object_set_new(v, "hdf5", json_string(buf));
  MPI_Get_library_version(mpiv, &len);
  nl = strchr(mpiv, ',');
  if (nl) *nl = 0;
  json_object_set_new(v, "mpi", json_string(mpiv));
#ifdef MAPMERGE_SCALAPACK_VERSION
  json_object_set_new(v, "scalapack", json_string(MAPMERGE_SCALAPACK_VERSION));
#endif
  json_object_set_new(v, "compiler", json_string(MAPMERGE_COMPILER));
  json_object_set_new(v, "c_flags", json_string(MAPMERGE_C_FLAGS));
  PetscCall(MapEvalBLASInfo(buf, sizeof(buf)));
  json_object_set_new(v, "blas", json_string(buf));
  json_object_set_new(m, "versions", v);
  PetscFunctionReturn(0);
}

/* where it ran: the distinct host names of the ranks (rank 0 holds them), and the SLURM job */
static PetscErrorCode MapManifestWhere(MapRunCtx *r, json_t *m)
{
  char        host[MPI_MAX_PROCESSOR_NAME] = "", *all_hosts = NULL;
  int         hl;
  json_t     *env          = json_object();
  const char *slurm_vars[] = {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT", "SLURM_JOB_NAME",
                              "SLURM_NTASKS", "SLURM_JOB_NODELIST", NULL};

  PetscFunctionBegin;
  MPI_Get_processor_name(host, &hl);
  PetscCall(PetscMalloc1((size_t)r->size * MPI_MAX_PROCESSOR_NAME, &all_hosts));
  PetscCallMPI(MPI_Gather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all_hosts, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, r->comm));
  if (!r->rank) {
    json_t *h = json_array();
    for (int i = 0; i < r->size; i++) {
      const char *hn  = all_hosts + (size_t)i * MPI_MAX_PROCESSOR_NAME;
      int         dup = 0;
      for (size_t k = 0; k < json_array_size(h); k++)
        if (!strcmp(json_string_value(json_array_get(h, k)), hn)) dup = 1;
      if (!dup) json_array_append_new(h, json_string(hn));
    }
    json_object_set_new(m, "hosts", h);
  }
  PetscCall(PetscFree(all_hosts));
  for (int i = 0; slurm_vars[i]; i++)
    if (getenv(slurm_vars[i])) json_object_set_new(env, slurm_vars[i], json_string(getenv(slurm_vars[i])));
  json_object_set_new(m, "slurm", env);
  PetscFunctionReturn(0);
}

/* The manifest: everything needed to know what ran and to run it again. Collective (the hosts). */
static PetscErrorCode MapRunManifest(MapRunCtx *r, json_t **manifest)
{
  json_t *m = json_object(), *in = json_object(), *t = json_array();

  PetscFunctionBegin;
  json_object_set_new(m, "mapmerge_version", json_string(MAPMERGE_VERSION));
  json_object_set_new(m, "git_commit", json_string(MAPMERGE_GIT_COMMIT));
  json_object_set_new(m, "method", json_string(r->opt.method));
  json_object_set_new(m, "run_folder", json_string(r->opt.out));
  json_object_set_new(m, "exit_status", json_string("completed"));
  json_object_set_new(m, "seed", json_integer(r->opt.seed));
  {
    json_t *b;
    PetscCall(MapRunBudgetJSON(r, &b)); /* -map_budget: the allocation as spent */
    if (b) json_object_set_new(m, "budget", b);
  }
  json_object_set_new(m, "ranks", json_integer(r->size));
  PetscCall(MapManifestProcessGrids(m));
  PetscCall(MapRunMetricManifest(r, m));
  json_object_set_new(m, "start_time", json_string(r->start_time));
  json_object_set_new(m, "end_time", json_string(r->end_time));
  PetscCall(MapManifestOptions(m));
  for (int i = 0; i < r->T; i++) json_array_append_new(t, json_string(r->tasks[i]));
  json_object_set_new(m, "tasks", t);
  PetscCall(MapManifestVersions(m));
  /* inputs: hashed when they were read (MapRunHashInputs), not now */
  if (r->inputs_sha256) json_object_update(in, r->inputs_sha256);
  PetscCall(MapRunManifestRepro(r, m, in)); /* evaluator program, BLAS threads, zoo sha256 */
  json_object_set_new(m, "inputs_sha256", in);
  PetscCall(MapManifestWhere(r, m));
  *manifest = m;
  PetscFunctionReturn(0);
}

static PetscErrorCode MapRunWriteSamples(MapRunCtx *r, hid_t f)
{
  hid_t g;

  PetscFunctionBegin;
  MapCallHDF5(g = H5Gcreate2(f, "samples", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  PetscCall(MapH5WriteMatrix(g, "coeffs", r->samples.n, r->T, r->samples.C));
  PetscCall(MapH5WriteMatrix(g, MapRunMetricGroup(r), r->samples.n, r->T, r->samples.acc));
  PetscCall(MapH5WriteMatrix(g, "loss", r->samples.n, r->T, r->samples.loss));
  PetscCall(MapH5WriteMatrix(g, "round", r->samples.n, 0, r->samples.round));
  PetscCall(MapH5WriteMatrix(g, "task", r->samples.n, 0, r->samples.task));
  PetscCall(MapH5WriteStringAttr(g, "task_meaning", "-1 = evaluated on every task; t = on task t only (accuracy and loss NaN for the others)"));
  {
    const char *design;
    PetscCall(MapSamplerGetDesign(r->sampler, &design, NULL, NULL));
    PetscCall(MapH5WriteStringAttr(g, "origin", design));
  }
  PetscCall(MapH5WriteStringAttr(g, "round_meaning", "0 = initial design; k = Bayesian MAP round k"));
  MapCallHDF5(H5Gclose(g));
  PetscFunctionReturn(0);
}

/* /surrogate/accuracy and /surrogate/loss: parameters and fit diagnostics per task */
static PetscErrorCode MapRunWriteSurrogate(MapRunCtx *r, hid_t f)
{
  int   T = r->T;
  hid_t g, g2;

  PetscFunctionBegin;
  MapCallHDF5(g = H5Gcreate2(f, "surrogate", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  for (int which = 0; which < (r->metric.with_loss ? 2 : 1); which++) {
    int     Ts, nt, F;
    double *params, *diag;
    PetscCall(MapSurrogateGetSizes(r->sur, &Ts, &nt, &F));
    PetscCall(PetscMalloc2(T * F, &params, T * 5, &diag));
    for (int t = 0; t < T; t++) {
      const double     *th;
      MapFitDiagnostics d;
      PetscCall(MapSurrogateGetParams(r->sur, which * T + t, &th));
      PetscCall(PetscArraycpy(&params[t * F], th, F));
      PetscCall(MapSurrogateGetDiagnostics(r->sur, which * T + t, &d));
      diag[t * 5 + 0] = d.r2;
      diag[t * 5 + 1] = d.rmse;
      diag[t * 5 + 2] = d.loo_rmse;
      diag[t * 5 + 3] = d.cond;
      diag[t * 5 + 4] = d.iterations;
    }
    MapCallHDF5(g2 = H5Gcreate2(g, which ? "loss" : MapRunMetricGroup(r), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    PetscCall(MapH5WriteMatrix(g2, "params", T, F, params));
    PetscCall(MapH5WriteMatrix(g2, "diagnostics", T, 5, diag));
    PetscCall(MapH5WriteStringAttr(g2, "diagnostics_columns", "r2,rmse,loo_rmse,cond,iterations"));
    PetscCall(MapH5WriteStringAttr(g2, "link", which ? "softplus" : MapLinkName(r->metric.link)));
    if (!which && !r->metric.is_default) { /* metric = offset + scale * link(phi(c) . params) */
      PetscCall(MapH5WriteMatrix(g2, "offset_scale", 1, 2, (double[2]){r->metric.off, r->metric.scale}));
      PetscCall(MapH5WriteStringAttr(g2, "meaning", "metric = offset + scale * link(features . params); the search maximises the metric (higher) or minimises it (lower)"));
    }
    PetscCall(MapH5WriteStringAttr(g2, "features", "1, c_1..c_T, c_i*c_j (i<=j) in row-major order"));
    MapCallHDF5(H5Gclose(g2));
    PetscCall(PetscFree2(params, diag));
  }
  MapCallHDF5(H5Gclose(g));
  PetscFunctionReturn(0);
}

/* /pareto: the predicted front, its re-evaluated points and the real front */
static PetscErrorCode MapRunWritePareto(MapRunCtx *r, hid_t f)
{
  int     T = r->T;
  hid_t   g;
  double *ridx;

  PetscFunctionBegin;
  MapCallHDF5(g = H5Gcreate2(f, "pareto", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  PetscCall(MapH5WriteMatrix(g, "coeffs", r->report.kfront, T, r->report.Cf));
  PetscCall(MapH5WriteMatrix(g, "predicted", r->report.kfront, T, r->report.Ff));
  PetscCall(MapH5WriteMatrix(g, "weights", r->report.kfront, T, r->report.Wf));
  PetscCall(PetscMalloc1(r->report.kreal + 1, &ridx));
  for (PetscInt i = 0; i < r->report.kreal; i++) ridx[i] = r->report.real_index[i];
  PetscCall(MapH5WriteMatrix(g, "real_index", r->report.kreal, 0, ridx));
  PetscCall(PetscFree(ridx));
  PetscCall(MapH5WriteMatrix(g, "real", r->report.kreal, T, r->report.real_acc));
  PetscCall(MapH5WriteMatrix(g, "real_loss", r->report.kreal, T, r->report.real_loss));
  PetscCall(MapH5WriteMatrix(g, "real_front_coeffs", r->report.kall, T, r->report.all_c));
  PetscCall(MapH5WriteMatrix(g, "real_front", r->report.kall, T, r->report.all_acc));
  PetscCall(MapH5WriteStringAttr(g, "real_front_meaning", "non-dominated set of every model evaluated on the real tasks: samples, re-evaluations, pick"));
  MapCallHDF5(H5Gclose(g));
  PetscFunctionReturn(0);
}

/* /pick: the preference, the pick's coefficients and metrics, and the best evaluated model */
static PetscErrorCode MapRunWritePick(MapRunCtx *r, hid_t f)
{
  int   T = r->T;
  hid_t g;

  PetscFunctionBegin;
  MapCallHDF5(g = H5Gcreate2(f, "pick", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  PetscCall(MapH5WriteMatrix(g, "preference", 1, T, r->opt.pref));
  PetscCall(MapH5WriteMatrix(g, "coeffs", 1, T, r->report.pick_c));
  PetscCall(MapH5WriteMatrix(g, "predicted", 1, T, r->report.pick_pred));
  PetscCall(MapH5WriteMatrix(g, "real", 1, T, r->report.pick_acc));
  PetscCall(MapH5WriteMatrix(g, "real_loss", 1, T, r->report.pick_loss));
  if (r->ev_test) {
    PetscCall(MapH5WriteMatrix(g, "test", 1, T, r->report.pick_test_acc));
    PetscCall(MapH5WriteMatrix(g, "test_loss", 1, T, r->report.pick_test_loss));
  }
  if (r->report.best_found) {
    PetscCall(MapH5WriteMatrix(g, "best_evaluated_coeffs", 1, T, r->report.best_c));
    PetscCall(MapH5WriteMatrix(g, "best_evaluated_real", 1, T, r->report.best_acc));
    PetscCall(MapH5WriteMatrix(g, "best_evaluated_value", 1, 1, &r->report.best_score));
    PetscCall(MapH5WriteMatrix(g, "real_value", 1, 1, &r->report.pick_score));
    PetscCall(MapH5WriteStringAttr(g, "best_evaluated_meaning",
                                   "of every model evaluated on all tasks (samples, re-evaluations, pick), the one the pick's criterion ranks "
                                   "best: the scalarised value of its real accuracies for the preference (the search's scalarisation, ideal and "
                                   "nadir; smaller is better; first on ties). real_value: the pick's own"));
  }
  MapCallHDF5(H5Gclose(g));
  PetscFunctionReturn(0);
}

/* results.h5 under the temporary name tmp: every group, then the box and the manifest as root
   attributes (flat: key -> JSON text). Rank 0. */
static PetscErrorCode MapRunWriteH5(MapRunCtx *r, json_t *manifest, const char *tmp)
{
  hid_t       f;
  char        box[128];
  const char *key;
  json_t     *val;

  PetscFunctionBegin;
  MapCallHDF5(f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  PetscCall(MapH5WriteStrings(f, "tasks", r->T, r->tasks));
  PetscCall(MapRunWriteSamples(r, f));
  if (r->fitted) {
    PetscCall(MapRunWriteSurrogate(r, f));
    PetscCall(MapRunWritePareto(r, f));
  }
  if (r->tree.nnodes) PetscCall(MapRunNestedWrite(r, f));
  PetscCall(MapRunBudgetWrite(r, f));
  PetscCall(MapRunMetricWrite(r, f)); /* the metric, and which evaluations failed */
  if (r->opt.npref) PetscCall(MapRunWritePick(r, f));
  snprintf(box, sizeof(box), "%.17g,%.17g", r->opt.lo, r->opt.hi);
  PetscCall(MapH5WriteStringAttr(f, "box", box));
  json_object_foreach(manifest, key, val)
  {
    char *s = json_is_string(val) ? strdup(json_string_value(val)) : (char *)json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
    PetscCall(MapH5WriteStringAttr(f, key, s));
    free(s);
  }
  MapCallHDF5(H5Fclose(f));
  PetscFunctionReturn(0);
}

/* front.csv rows: nested MAP's final model, or the predicted front with the re-evaluated accuracies */
static void MapRunWriteFrontRows(MapRunCtx *r, FILE *fp)
{
  int T = r->T;

  for (int t = 0; t < T; t++) fprintf(fp, "c_%s,", r->tasks[t]);
  for (int t = 0; t < T; t++) fprintf(fp, "pred_%s_%s,", MapRunMetricShort(r), r->tasks[t]);
  for (int t = 0; t < T; t++) fprintf(fp, "real_%s_%s%s", MapRunMetricShort(r), r->tasks[t], t + 1 < T ? "," : "\n");
  if (!r->fitted) { /* nested MAP: the final merged model */
    for (int t = 0; t < T; t++) fprintf(fp, "%.17g,", r->report.pick_c[t]);
    for (int t = 0; t < T; t++) fprintf(fp, ",");
    for (int t = 0; t < T; t++) fprintf(fp, "%.17g%s", r->report.pick_acc[t], t + 1 < T ? "," : "\n");
  }
  for (PetscInt i = 0; i < r->report.kfront; i++) {
    int ri = -1;
    for (PetscInt k = 0; k < r->report.kreal; k++)
      if (r->report.real_index[k] == i) ri = (int)k;
    for (int t = 0; t < T; t++) fprintf(fp, "%.17g,", r->report.Cf[i * T + t]);
    for (int t = 0; t < T; t++) fprintf(fp, "%.17g,", r->report.Ff[i * T + t]);
    for (int t = 0; t < T; t++) {
      if (ri >= 0) fprintf(fp, "%.17g", r->report.real_acc[ri * T + t]);
      fprintf(fp, "%s", t + 1 < T ? "," : "\n");
    }
  }
}

/* front.csv under the temporary name tmp; 0 and err on failure. Rank 0. */
static int MapRunWriteFrontCSV(MapRunCtx *r, const char *tmp, char *err, size_t errlen)
{
  FILE *fp = fopen(tmp, "w");

  if (!fp) {
    snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    return 0;
  }
  MapRunWriteFrontRows(r, fp);
  if (ferror(fp) | fflush(fp) | fsync(fileno(fp)) | fclose(fp)) {
    snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    return 0;
  }
  return 1;
}

/* "<out>/<name>" and a registered temporary name beside it */
static PetscErrorCode MapRunStagePath(MapRunCtx *r, const char *name, char *final, char *staged)
{
  PetscFunctionBegin;
  snprintf(final, MAP_PATH_LEN, "%s/%s", r->opt.out, name);
  PetscCall(MapTempName(final, staged, MAP_PATH_LEN));
  PetscCall(MapTempRegister(staged));
  PetscFunctionReturn(0);
}

/* published together or not at all: everything was written under temporary names (removed on
   error); now the renames, results.h5 (k = 0) last, so a folder with results.h5 has all three */
static PetscErrorCode MapRunPublish(int n, char final[][MAP_PATH_LEN], char staged[][MAP_PATH_LEN], int *ok, char *err, size_t errlen)
{
  PetscFunctionBegin;
  for (int k = n - 1; *ok && k >= 0; k--) {
    if (rename(staged[k], final[k])) {
      *ok = 0;
      snprintf(err, errlen, "cannot rename %s to %s: %s", staged[k], final[k], strerror(errno));
      for (int q = k + 1; q < n; q++) (void)unlink(final[q]); /* withdraw what was published */
    } else PetscCall(MapTempUnregister(staged[k]));
  }
  if (!*ok) MapTempCleanup();
  PetscFunctionReturn(0);
}

/* MapRunWriteResults - results.h5, front.csv and manifest.json of the finished run, written by rank 0
   and published together (MapRunPublish); a failure on rank 0 is everyone's error. Collective. */
PetscErrorCode MapRunWriteResults(MapRunCtx *r)
{
  int     ok       = 1;
  char    err[512] = "";
  json_t *manifest = NULL;

  PetscFunctionBegin;
  MapRunNow(r->end_time, sizeof(r->end_time));
  PetscCall(MapRunManifest(r, &manifest));
  if (!r->rank) {
    char final[3][MAP_PATH_LEN], staged[3][MAP_PATH_LEN];
    PetscCall(MapRunStagePath(r, "results.h5", final[0], staged[0]));
    PetscCall(MapRunWriteH5(r, manifest, staged[0]));
    PetscCall(MapRunStagePath(r, "front.csv", final[1], staged[1]));
    ok = MapRunWriteFrontCSV(r, staged[1], err, sizeof(err));
    if (ok) {
      PetscCall(MapRunStagePath(r, "manifest.json", final[2], staged[2]));
      if (json_dump_file(manifest, staged[2], JSON_INDENT(2))) {
        ok = 0;
        snprintf(err, sizeof(err), "cannot write %s: %s", final[2], strerror(errno));
      }
    }
    PetscCall(MapRunPublish(3, final, staged, &ok, err, sizeof(err)));
  }
  json_decref(manifest);
  MapCheckAll(r->comm, ok, PETSC_ERR_FILE_WRITE, "%s", err);
  PetscFunctionReturn(0);
}
