/* What keeps a run honest about its inputs (issue 12): the inputs hashed when they are read (for the
   manifest and the journal), the journal's binding to what produced it, and outputs that are never
   one of the inputs. */
#include "runimpl.h"
#include <jansson.h>
#include <sys/stat.h>

/* sha256 of one file on rank 0, the same hex on every rank */
static PetscErrorCode MapRunHashFile(MPI_Comm comm, PetscMPIInt rank, const char *path, char hex[65])
{
  PetscErrorCode ierr = 0;
  int            ok;
  char          *why = NULL;

  PetscFunctionBegin;
  memset(hex, 0, 65);
  if (!rank) {
    PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
    ierr = MapSha256File(path, hex);
    PetscCall(PetscPopErrorHandler());
    if (ierr) PetscCall(PetscErrorMessage(ierr, NULL, &why));
  }
  ok = !ierr;
  MapCheckAll(comm, ok, PETSC_ERR_FILE_READ, "cannot hash the input %s: %s", path, why ? why : "read error");
  PetscCallMPI(MPI_Bcast(hex, 65, MPI_CHAR, 0, comm));
  PetscFunctionReturn(0);
}

/* The store's range digest (docs/storage.md: sha256 of the sha256 of each 16 MiB range), the ranges
   hashed by all ranks round robin: a 100 GB store costs each of 1,000 ranks 100 MB instead of one rank
   the whole file. out: "sha256-ranges-16777216:<hex>" on every rank. Collective. */
static PetscErrorCode MapRunDigestStore(MapRunCtx *r, char *out, size_t len)
{
  MapFileDigest        d      = NULL;
  const unsigned char *mine   = NULL;
  int64_t              nrange = 0, nmax = 0;
  PetscBool           *which = NULL;
  PetscErrorCode       ierr;
  char                 hex[65], *why = NULL;

  PetscFunctionBegin;
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  ierr = MapFileDigestCreate(r->opt.store_path, MAP_STORE_DIGEST_RANGE, &d);
  if (!ierr) ierr = MapFileDigestGetRanges(d, NULL, &nrange);
  if (!ierr) ierr = PetscCalloc1(nrange, &which);
  if (!ierr) {
    for (int64_t k = 0; k < nrange; k++) which[k] = k % r->size == r->rank ? PETSC_TRUE : PETSC_FALSE;
    ierr = MapFileDigestSetMine(d, which);
  }
  if (!ierr) ierr = MapFileDigestFinish(d, &mine, NULL, NULL);
  PetscCall(PetscPopErrorHandler());
  if (ierr) {
    PetscCall(PetscErrorMessage(ierr, NULL, &why));
    PetscCall(PetscFree(which));
    PetscCall(MapFileDigestDestroy(&d));
  }
  MapCheckAll(r->comm, !ierr, PETSC_ERR_FILE_READ, "cannot hash the store %s: %s", r->opt.store_path, why ? why : "read error");
  /* the same file on every rank: the same range count (a store replaced between the ranks' opens is caught here) */
  PetscCallMPI(MPI_Allreduce(&nrange, &nmax, 1, MPI_INT64_T, MPI_MAX, r->comm));
  MapCheckAll(r->comm, nmax == nrange, PETSC_ERR_FILE_UNEXPECTED, "the store %s changed size while it was hashed", r->opt.store_path);
  PetscCall(MapFileDigestCombine(r->comm, mine, nrange, hex));
  snprintf(out, len, "sha256-ranges-%llu:%s", (unsigned long long)MAP_STORE_DIGEST_RANGE, hex);
  PetscCall(PetscFree(which));
  PetscCall(MapFileDigestDestroy(&d));
  PetscFunctionReturn(0);
}

/*
  MapRunHashInputs - the store's range digest, the sha256 of the eval and test sets and a sample file, taken right after they
  were read (not at the end of the run, when a replaced file would be recorded instead of the one
  used): r->inputs_sha256 (path -> hex, for the manifest) and r->store_digest. Collective.
*/
PetscErrorCode MapRunHashInputs(MapRunCtx *r)
{
  char hex[65];

  PetscFunctionBegin;
  const char *stype, *sfile; /* the sampler's design: a file design's CSV is an input */
  PetscCall(MapSamplerGetDesign(r->sampler, &stype, NULL, &sfile));
  r->inputs_sha256 = json_object();
  if (r->opt.store_path[0]) {
    PetscCall(MapRunDigestStore(r, r->store_digest, sizeof(r->store_digest)));
    json_object_set_new(r->inputs_sha256, r->opt.store_path, json_string(r->store_digest));
  }
  for (int i = 0; i < r->neval_data; i++) {
    PetscCall(MapRunHashFile(r->comm, r->rank, r->eval_data[i], hex));
    json_object_set_new(r->inputs_sha256, r->eval_data[i], json_string(hex));
  }
  if (!strcmp(stype, "file") && sfile[0]) {
    PetscCall(MapRunHashFile(r->comm, r->rank, sfile, hex));
    json_object_set_new(r->inputs_sha256, sfile, json_string(hex));
  }
  { /* the held-out test sets too (the manifest promises every input) */
    int    nd;
    char **data;
    PetscCall(MapOptionsGetList("-map_test_data", &nd, &data, NULL));
    for (int i = 0; i < nd; i++) {
      PetscCall(MapRunHashFile(r->comm, r->rank, data[i], hex));
      json_object_set_new(r->inputs_sha256, data[i], json_string(hex));
    }
    PetscCall(MapFreeList(nd, &data));
  }
  PetscFunctionReturn(0);
}

/* the options under a prefix as given (not the resolved values), minus those that change no result */
static PetscErrorCode MapRunBindOptions(json_t *obj, const char *prefix, const char *const *skip)
{
  const char *const *names = MapKnownOptionNames();
  char               val[4096];

  PetscFunctionBegin;
  for (int i = 0; names[i]; i++) {
    PetscBool set, skipped = PETSC_FALSE;
    if (strncmp(names[i], prefix, strlen(prefix))) continue;
    for (int k = 0; skip && skip[k]; k++)
      if (!strcmp(names[i], skip[k])) skipped = PETSC_TRUE;
    if (skipped) continue;
    PetscCall(PetscOptionsGetString(NULL, NULL, names[i], val, sizeof(val), &set));
    if (set) json_object_set_new(obj, names[i], json_string(val));
  }
  PetscFunctionReturn(0);
}

/*
  MapRunBinding - what a journal's evaluations depend on besides their coefficients, as compact JSON
  (PetscFree): the store's digest, the tasks in their order, the evaluator (type, options, sha256 of
  each eval set in task order) and the design (method, sampler, seed, box, rounds). Not the options
  that only decide the process layout (-map_eval_groups, the surrogate's grid) or the file names
  (-map_output, -map_nested_level/-pair: a chain's jobs share one binding). Call after
  MapRunHashInputs. Not collective (the same on every rank).
*/
PetscErrorCode MapRunBinding(MapRunCtx *r, char **binding)
{
  json_t     *b = json_object(), *ev = json_object(), *evo = json_object(), *data = json_array(), *d = json_object(), *t = json_array();
  const char *evtype;
  const char *evskip[] = {"-map_eval_data", "-map_eval_groups", "-map_eval_timeout", "-map_eval_tmpdir", "-map_eval_stream", "-map_eval_block_mb", NULL};
  char       *s;

  PetscFunctionBegin;
  const char *stype, *sfile; /* the sampler's design: a file design's CSV is an input */
  PetscInt    sn;
  PetscCall(MapSamplerGetDesign(r->sampler, &stype, &sn, &sfile));
  if (r->store_sha256[0]) json_object_set_new(b, "store_sha256", json_string(r->store_sha256)); /* an older journal's binding */
  else json_object_set_new(b, "store_digest", r->opt.store_path[0] ? json_string(r->store_digest) : json_null());
  for (int i = 0; i < r->T; i++) json_array_append_new(t, json_string(r->tasks[i]));
  json_object_set_new(b, "tasks", t);
  PetscCall(MapEvaluatorGetType(r->ev, &evtype));
  json_object_set_new(ev, "type", json_string(evtype));
  PetscCall(MapRunBindOptions(evo, "-map_eval_", evskip));
  PetscCall(MapRunBindOptions(evo, "-map_analytic_", NULL));
  json_object_set_new(ev, "options", evo);
  for (int i = 0; i < r->neval_data; i++) json_array_append(data, json_object_get(r->inputs_sha256, r->eval_data[i]));
  json_object_set_new(ev, "data_sha256", data);
  json_object_set_new(b, "evaluator", ev);
  if (!r->metric.is_default) { /* what the journal's values are (the default is left out: journals from before -map_metric resume) */
    char spec[160];
    MapMetricFormat(&r->metric.metric, spec, sizeof(spec));
    json_object_set_new(b, "metric", json_string(spec));
  }
  json_object_set_new(d, "method", json_string(r->opt.method));
  json_object_set_new(d, "sample_type", json_string(stype));
  json_object_set_new(d, "sample_n", json_integer(sn));
  if (!strcmp(stype, "file")) json_object_set(d, "sample_file_sha256", json_object_get(r->inputs_sha256, sfile));
  json_object_set_new(d, "seed", json_integer(r->opt.seed));
  json_object_set_new(d, "box", json_pack("[f,f]", r->opt.lo, r->opt.hi));
  json_object_set_new(d, "refine", json_integer(r->opt.refine));
  json_object_set_new(d, "refine_points", json_integer(r->opt.refine_points));
  json_object_set_new(d, "refine_target", json_string(r->opt.refine_pick ? "pick" : "front"));
  json_object_set_new(d, "nested_samples", json_integer(r->opt.nested_samples));
  PetscCall(MapRunBindOptions(d, "-map_bayes_", NULL));
  json_object_set_new(b, "design", d);
  s = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(b);
  PetscCheck(s, PETSC_COMM_SELF, PETSC_ERR_MEM, "cannot serialise the journal binding");
  PetscCall(PetscStrallocpy(s, binding));
  free(s);
  PetscFunctionReturn(0);
}

/*
  MapRunBindLegacyStore - resuming a journal written before the store's range digest (its binding holds
  "store_sha256", the plain sha256 of the store, hashed by rank 0): this run binds the same way, so such
  journals resume. Only then is the store hashed serially. Collective; call before MapRunBinding.
*/
PetscErrorCode MapRunBindLegacyStore(MapRunCtx *r, const char *journal)
{
  int legacy = 0;

  PetscFunctionBegin;
  if (!r->opt.resume || !r->opt.store_path[0]) PetscFunctionReturn(0);
  if (!r->rank) {
    FILE *f = fopen(journal, "r");
    char  head[65536];
    if (f) {
      if (fgets(head, sizeof(head), f) && strstr(head, "\"kind\":\"header\"") && strstr(head, "\"store_sha256\":")) legacy = 1;
      fclose(f);
    }
  }
  PetscCallMPI(MPI_Bcast(&legacy, 1, MPI_INT, 0, r->comm));
  if (legacy) PetscCall(MapRunHashFile(r->comm, r->rank, r->opt.store_path, r->store_sha256));
  PetscFunctionReturn(0);
}

/*
  MapRunCheckOutputsNotInputs - none of the run's output files (results.h5, front.csv,
  manifest.json, the journal) may be the store, an eval set or the sample file (same device and
  inode): writing it would destroy the input. Collective.
*/
PetscErrorCode MapRunCheckOutputsNotInputs(MapRunCtx *r)
{
  const char *outs[] = {"results.h5", "front.csv", "manifest.json", "journal.jsonl"};
  const char *in[130];
  int         nin = 0;

  PetscFunctionBegin;
  const char *stype, *sfile; /* the sampler's design: a file design's CSV is an input */
  PetscCall(MapSamplerGetDesign(r->sampler, &stype, NULL, &sfile));
  if (r->opt.store_path[0]) in[nin++] = r->opt.store_path;
  for (int i = 0; i < r->neval_data && nin < 128; i++) in[nin++] = r->eval_data[i];
  if (!strcmp(stype, "file") && sfile[0]) in[nin++] = sfile;
  for (int k = 0; k < 4; k++) {
    char path[MAP_PATH_LEN + 32];
    snprintf(path, sizeof(path), "%s/%s", r->opt.out, outs[k]);
    PetscCall(MapCheckNotInput(r->comm, path, "-map_output", nin, in));
  }
  PetscFunctionReturn(0);
}
