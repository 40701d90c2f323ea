/* `mapmerge export` to a model folder (docs/hf-checkpoints.md): besides the merged tensors, the
 * private tensors of one task or of every task, the integer/bool buffers as the pretrained model
 * has them, the config/tokenizer files recorded at import (byte for byte) and a model card. */
#define _POSIX_C_SOURCE 200809L
#include "run_export_hf.h"

static PetscBool EndsWith(const char *s, const char *suffix)
{
  size_t a = strlen(s), b = strlen(suffix);
  return (PetscBool)(a >= b && !strcmp(s + a - b, suffix));
}

static PetscErrorCode AddPrivates(MapStore store, int t, PetscBool prefix, MapExportExtras *ex, PetscMPIInt rank)
{
  int         n;
  char      **names;
  const char *tname;

  PetscFunctionBegin;
  PetscCall(MapStoreGetTaskName(store, t, &tname));
  PetscCall(MapStoreGetPrivateNames(store, t, &n, &names));
  PetscCall(PetscRealloc(sizeof(char *) * (size_t)(ex->npriv + n + 1), &ex->privname));
  PetscCall(PetscRealloc(sizeof(char *) * (size_t)(ex->npriv + n + 1), &ex->privsrc));
  PetscCall(PetscRealloc(sizeof(int) * (size_t)(ex->npriv + n + 1), &ex->privtask));
  PetscCall(PetscRealloc(sizeof(float *) * (size_t)(ex->npriv + n + 1), &ex->privdata));
  PetscCall(PetscRealloc(sizeof(MapStoreBuffer) * (size_t)(ex->npriv + n + 1), &ex->privint));
  for (int k = 0; k < n; k++) {
    char out[2 * MAP_NAME_LEN];
    PetscCall(PetscSNPrintf(out, sizeof(out), "%s%s%s", prefix ? tname : "", prefix ? "." : "", names[k]));
    PetscCheck(strlen(out) < MAP_NAME_LEN, PETSC_COMM_SELF, PETSC_ERR_ARG_SIZ, "export: private tensor name %s is too long", out);
    PetscCall(PetscStrallocpy(out, &ex->privname[ex->npriv]));
    ex->privsrc[ex->npriv]  = names[k];
    ex->privtask[ex->npriv] = t;
    ex->privdata[ex->npriv] = NULL;
    PetscCall(PetscMemzero(&ex->privint[ex->npriv], sizeof(MapStoreBuffer)));
    ex->npriv++;
  }
  PetscCall(PetscFree(names)); /* the strings now belong to ex->privsrc */
  (void)rank;
  PetscFunctionReturn(0);
}

/* with one task's head, that task's config.json (num_labels, id2label) replaces the pretrained one's */
static PetscErrorCode TaskConfig(MapStore store, MapExportExtras *ex)
{
  MapStoreHFFile f;
  PetscBool      found;
  int            at = -1;

  PetscFunctionBegin;
  PetscCall(MapStoreReadTaskConfig(store, ex->privtask[0], &f, &found));
  if (!found) PetscFunctionReturn(0);
  for (int i = 0; i < ex->nfiles; i++)
    if (!strcmp(ex->files[i].name, "config.json")) at = i;
  if (at < 0) {
    PetscCall(PetscRealloc(sizeof(MapStoreHFFile) * (size_t)(ex->nfiles + 1), &ex->files));
    at = ex->nfiles++;
  } else PetscCall(PetscFree(ex->files[at].data));
  ex->files[at]   = f;
  ex->config_task = ex->privtask[0];
  PetscFunctionReturn(0);
}

PetscErrorCode MapExportExtrasCreate(MPI_Comm comm, MapStore store, const char *priv, const char *output, MapExportExtras *ex)
{
  PetscMPIInt rank;
  int         T;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(ex, sizeof(*ex)));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(MapStoreGetSizes(store, NULL, &T, NULL));
  PetscCall(PetscOptionsHasName(NULL, NULL, "-map_export_dtype", &ex->dtype_set));
  ex->all = (PetscBool)!strcmp(priv, "all");
  if (ex->all)
    for (int t = 0; t < T; t++) PetscCall(AddPrivates(store, t, PETSC_TRUE, ex, rank));
  else if (priv[0]) {
    int t;
    PetscCall(MapStoreFindTask(store, priv, &t));
    PetscCall(AddPrivates(store, t, PETSC_FALSE, ex, rank));
  }
  PetscCall(MapStoreReadBuffers(store, &ex->nbuf, &ex->buf));
  if (!ex->all) { /* the task's own copy of a buffer (import -map_import_buffer_differs private) replaces the pretrained one */
    int keep = 0;
    for (int b = 0; b < ex->nbuf; b++) {
      PetscBool mine = PETSC_FALSE;
      for (int k = 0; k < ex->npriv && !mine; k++) mine = (PetscBool)!strcmp(ex->buf[b].name, ex->privname[k]);
      if (mine) PetscCall(PetscFree(ex->buf[b].data));
      else ex->buf[keep++] = ex->buf[b];
    }
    ex->nbuf = keep;
  }
  { /* only rank 0 copies the files and writes the card: the others learn only whether there are files */
    int            has[2] = {0, 0};
    PetscErrorCode ierr   = 0;
    ex->config_task       = -1;
    if (!rank) { /* an error is printed here by the error handler, then agreed below so no rank waits */
      ierr = MapStoreReadHFFiles(store, &ex->nfiles, &ex->files, &ex->source);
      if (!ierr && ex->npriv && !ex->all) ierr = TaskConfig(store, ex);
      has[0] = ex->nfiles;
      has[1] = ex->source != NULL;
    }
    MapCheckAll(comm, !ierr, PETSC_ERR_FILE_UNEXPECTED, "export: the store's recorded model-folder files cannot be read (see the message above)");
    PetscCallMPI(MPI_Bcast(has, 2, MPI_INT, 0, comm));
    ex->folder = (PetscBool)(has[1] && has[0] > 0 && !EndsWith(output, ".safetensors"));
  }
  PetscFunctionReturn(0);
}

/* the dtype that holds most of the pretrained model's merged parameters (for its private tensors) */
static MapDType MainDType(MapStore store, int ntensors)
{
  int64_t  cnt[MAP_DTYPE_OTHER + 1] = {0};
  MapDType best                     = MAP_DTYPE_F32;
  for (int i = 0; i < ntensors; i++) {
    const MapStoreTensor *t;
    MapDType              dt;
    size_t                sz;
    PetscBool             found;
    if (MapStoreGetTensor(store, i, &t) || MapDTypeFromName(t->dtype, &dt, &sz, &found) || !found || !MapDTypeIsFloat(dt)) continue;
    cnt[dt] += t->numel;
    if (cnt[dt] > cnt[best]) best = dt;
  }
  return best;
}

PetscErrorCode MapExportExtrasFillInfo(MapExportExtras *ex, MapStore store, MapDType dtype, int ntensors, MapTensorInfo *info)
{
  MPI_Comm    comm;
  PetscMPIInt rank;
  MapDType    privdt = dtype;

  PetscFunctionBegin;
  PetscCall(MapStoreGetComm(store, &comm));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (ex->folder && !ex->dtype_set) { /* the model as people load it: in the dtype it came in */
    for (int i = 0; i < ntensors; i++) {
      const MapStoreTensor *t;
      size_t                sz;
      PetscBool             found;
      MapDType              dt;
      PetscCall(MapStoreGetTensor(store, i, &t));
      PetscCall(MapDTypeFromName(t->dtype, &dt, &sz, &found));
      info[i].dtype = found && MapDTypeIsFloat(dt) ? dt : MAP_DTYPE_F32;
    }
    privdt = MainDType(store, ntensors);
  }
  for (int k = 0; k < ex->npriv; k++) {
    MapTensorInfo *u = &info[ntensors + k];
    int            nd;
    for (int i = 0; i < ntensors; i++)
      PetscCheck(strcmp(info[i].name, ex->privname[k]), comm, PETSC_ERR_ARG_WRONG,
                 "export: private tensor %s (task %d of the store) has the name of a merged tensor", ex->privname[k], ex->privtask[k]);
    PetscBool isint;
    PetscCall(PetscStrncpy(u->name, ex->privname[k], sizeof(u->name)));
    PetscCall(MapStoreReadPrivateBuffer(store, ex->privtask[k], ex->privsrc[k], &ex->privint[k], &isint));
    if (isint) { /* a task's own integer/bool tensor: written as it was */
      u->dtype = ex->privint[k].dtype;
      u->ndim  = ex->privint[k].ndim;
      u->numel = 1;
      for (int d = 0; d < u->ndim; d++) u->numel *= (u->shape[d] = ex->privint[k].shape[d]);
      continue;
    }
    /* every rank needs the shape for the header; only rank 0 keeps the data to write */
    PetscCall(MapStoreReadPrivate(store, ex->privtask[k], ex->privsrc[k], &nd, u->shape, &ex->privdata[k]));
    u->dtype = privdt;
    u->ndim  = nd;
    u->numel = 1;
    for (int d = 0; d < nd; d++) u->numel *= u->shape[d];
    if (rank) PetscCall(PetscFree(ex->privdata[k]));
  }
  for (int b = 0; b < ex->nbuf; b++) {
    MapTensorInfo *u = &info[ntensors + ex->npriv + b];
    for (int k = 0; k < ex->npriv; k++)
      PetscCheck(strcmp(ex->buf[b].name, ex->privname[k]), comm, PETSC_ERR_ARG_WRONG, "export: private tensor %s has the name of a buffer",
                 ex->privname[k]);
    PetscCall(PetscStrncpy(u->name, ex->buf[b].name, sizeof(u->name)));
    u->dtype = ex->buf[b].dtype;
    u->ndim  = ex->buf[b].ndim;
    u->numel = 1;
    for (int d = 0; d < u->ndim; d++) u->numel *= (u->shape[d] = ex->buf[b].shape[d]);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapExportExtrasWrite(MapExportExtras *ex, MapSafetensorsWriter w, const MapTensorInfo *info, int ntensors, PetscMPIInt rank)
{
  PetscFunctionBegin;
  if (rank) PetscFunctionReturn(0);
  for (int k = 0; k < ex->npriv; k++) {
    if (ex->privint[k].data) PetscCall(MapSafetensorsWriterWriteRaw(w, ntensors + k, ex->privint[k].data));
    else if (info[ntensors + k].numel) PetscCall(MapSafetensorsWriterWriteF32(w, ntensors + k, 0, info[ntensors + k].numel, ex->privdata[k]));
  }
  for (int b = 0; b < ex->nbuf; b++) PetscCall(MapSafetensorsWriterWriteRaw(w, ntensors + ex->npriv + b, ex->buf[b].data));
  PetscFunctionReturn(0);
}

/* appends printf-style text to a growing buffer */
typedef struct {
  char  *s;
  size_t len, cap;
} Text;

static PetscErrorCode TextAdd(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static PetscErrorCode TextAdd(Text *t, const char *fmt, ...)
{
  va_list ap;
  int     n;

  PetscFunctionBegin;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (t->len + (size_t)n + 1 > t->cap) {
    t->cap = 2 * (t->len + (size_t)n + 1);
    PetscCall(PetscRealloc(t->cap, &t->s));
  }
  va_start(ap, fmt);
  vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
  PetscFunctionReturn(0);
}

/* the model card's task table and the task checkpoints' digests (kind: the store's source_digest, or NULL for sha256) */
static PetscErrorCode ModelCardTasks(MapStore store, int ntask, const int *tasks, const double *c, const char *kind, Text *t)
{
  char key[MAP_NAME_LEN + 32];

  PetscFunctionBegin;
  PetscCall(TextAdd(t, "| task | coefficient c_i | checkpoint |\n|---|---|---|\n"));
  for (int k = 0; k < ntask; k++) {
    const char *nm;
    char       *model = NULL;
    PetscCall(MapStoreGetTaskName(store, tasks[k], &nm));
    PetscCall(PetscSNPrintf(key, sizeof(key), "task.%s.model", nm));
    PetscCall(MapStoreGetAttribute(store, key, &model));
    PetscCall(TextAdd(t, "| %s | %.17g | `%s` |\n", nm, c[k], model ? model : "?"));
    PetscCall(PetscFree(model));
  }
  PetscCall(TextAdd(t, "\n%s of the task checkpoints (%s):\n\n```\n", kind ? kind : "sha256",
                    kind ? "sha256 of the concatenated sha256 of each range of that many bytes; scripts/map_digest.py" : "sha256sum"));
  for (int k = 0; k < ntask; k++) {
    const char *nm;
    char       *sha = NULL;
    PetscCall(MapStoreGetTaskName(store, tasks[k], &nm));
    PetscCall(PetscSNPrintf(key, sizeof(key), "task.%s.%s", nm, kind ? "digest" : "sha256"));
    PetscCall(MapStoreGetAttribute(store, key, &sha));
    PetscCall(TextAdd(t, "# %s\n%s\n", nm, sha ? sha : "(none recorded)"));
    PetscCall(PetscFree(sha));
  }
  PetscCall(TextAdd(t, "```\n\n"));
  PetscFunctionReturn(0);
}

/* the model card's line on where the coefficients came from: the run (its manifest's sha256), or by hand */
static PetscErrorCode ModelCardRun(const char *run, Text *t)
{
  PetscFunctionBegin;
  if (run && run[0]) {
    char      path[MAP_PATH_LEN + 32], hex[65] = "?", pref[2048] = "", model[64] = "pick";
    PetscBool set;
    json_t   *m = NULL;
    snprintf(path, sizeof(path), "%s/manifest.json", run);
    if (MapSha256File(path, hex)) PetscCall(PetscStrncpy(hex, "? (manifest.json unreadable)", sizeof(hex)));
    m = json_load_file(path, 0, NULL);
    PetscCall(PetscOptionsGetString(NULL, NULL, "-map_preference", pref, sizeof(pref), &set));
    PetscCall(PetscOptionsGetString(NULL, NULL, "-map_export_model", model, sizeof(model), &set));
    PetscCall(TextAdd(t, "- coefficients: run `%s` (%s, started %s), its %s for the preference %s\n- manifest.json sha256: `%s`\n", run,
                      m && json_is_string(json_object_get(m, "method")) ? json_string_value(json_object_get(m, "method")) : "?",
                      m && json_is_string(json_object_get(m, "start_time")) ? json_string_value(json_object_get(m, "start_time")) : "?", model,
                      pref[0] ? pref : "equal weights (default)", hex));
    json_decref(m);
  } else PetscCall(TextAdd(t, "- coefficients: given by hand (-map_coeff)\n"));
  PetscFunctionReturn(0);
}

/* the model card's section on what the folder holds: merged tensors, buffers, private tensors, copied files */
static PetscErrorCode ModelCardFolder(MapExportExtras *ex, MapStore store, int ntensors, int64_t P, uint64_t shard, Text *t)
{
  PetscFunctionBegin;
  PetscCall(TextAdd(t, "## What this folder holds\n\n- merged: %d tensors, %lld parameters, %s%s\n", ntensors, (long long)P,
                    shard ? "sharded safetensors with model.safetensors.index.json" : "model.safetensors",
                    ex->dtype_set ? " in the dtype asked for (-map_export_dtype)" : " in the pretrained checkpoint's dtypes"));
  if (ex->nbuf) {
    PetscCall(TextAdd(t, "- kept unchanged from the pretrained model (integer/bool tensors, never merged):"));
    for (int b = 0; b < ex->nbuf; b++) PetscCall(TextAdd(t, "%s `%s` (%s)", b ? "," : "", ex->buf[b].name, MapDTypeName(ex->buf[b].dtype)));
    PetscCall(TextAdd(t, "\n"));
  }
  if (ex->npriv && ex->all)
    PetscCall(TextAdd(t, "- private tensors (heads) of every task, not merged, each under the prefix `<task>.` (e.g. `%s`): rename one "
                         "task's to their original names to load the model with that task's head\n",
                      ex->privname[0]));
  else if (ex->npriv) {
    const char *nm;
    PetscCall(MapStoreGetTaskName(store, ex->privtask[0], &nm));
    PetscCall(TextAdd(t, "- private tensors (head) of task %s under their own names, not merged: `%s`%s\n", nm, ex->privname[0],
                      ex->npriv > 1 ? " and more" : ""));
  } else PetscCall(TextAdd(t, "- no private tensors (heads): export with -map_export_private TASK or all to include them\n"));
  PetscCall(TextAdd(t, "- copied byte for byte from `%s` (recorded in the store at import):\n\n```\n", ex->source));
  if (ex->config_task >= 0) {
    const char *nm;
    PetscCall(MapStoreGetTaskName(store, ex->config_task, &nm));
    PetscCall(TextAdd(t, "# config.json is task %s's (its head: num_labels, id2label), recorded from its folder\n", nm));
  }
  for (int f = 0; f < ex->nfiles; f++) PetscCall(TextAdd(t, "%s  %s\n", ex->files[f].sha256, ex->files[f].name));
  PetscCall(TextAdd(t, "```\n"));
  PetscFunctionReturn(0);
}

/* the recipe, like mergekit's cards: base model, tasks with their checkpoints' sha256 and coefficients,
   the run and preference the coefficients came from, the version; then what the folder holds */
static PetscErrorCode ModelCard(MapExportExtras *ex, MapStore store, const char *run, int ntask, const int *tasks, const double *c,
                                const MapTensorInfo *info, int ntensors, uint64_t shard, Text *t)
{
  char       *pre = NULL, *presha = NULL, *kind = NULL;
  const char *base = strrchr(ex->source, '/') ? strrchr(ex->source, '/') + 1 : ex->source;
  int64_t     P;
  int         nmerged;

  PetscFunctionBegin;
  PetscCall(MapStoreGetSizes(store, &P, NULL, &nmerged));
  PetscCall(MapStoreGetAttribute(store, "pretrained.model", &pre));
  PetscCall(MapStoreGetAttribute(store, "source_digest", &kind));
  PetscCall(MapStoreGetAttribute(store, kind ? "pretrained.digest" : "pretrained.sha256", &presha));
  PetscCall(TextAdd(t, "---\nbase_model: %s\nlibrary_name: transformers\ntags:\n- merge\n- mapmerge\n---\n\n", base));
  PetscCall(TextAdd(t, "# %s, merged with mapmerge\n\nThis model is theta = theta_pretrained + sum_i c_i (theta_i - theta_pretrained), computed by "
                       "mapmerge %s (git %s) with MAP (model merging by amortized Pareto fronts).\n\n",
                    base, MAPMERGE_VERSION, MAPMERGE_GIT_COMMIT));
  PetscCall(TextAdd(t, "## Recipe\n\n- base model: `%s`\n\n%s of its files:\n\n```\n%s\n```\n\n", pre ? pre : ex->source, kind ? kind : "sha256",
                    presha ? presha : "(none recorded)"));
  PetscCall(ModelCardTasks(store, ntask, tasks, c, kind, t));
  PetscCall(ModelCardRun(run, t));
  {
    const char *st;
    PetscCall(MapStoreGetPath(store, &st));
    PetscCall(TextAdd(t, "- store: `%s`\n- mapmerge version: %s (git %s)\n\n", st, MAPMERGE_VERSION, MAPMERGE_GIT_COMMIT));
  }
  PetscCall(ModelCardFolder(ex, store, ntensors, P, shard, t));
  PetscCall(PetscFree(pre));
  PetscCall(PetscFree(presha));
  PetscCall(PetscFree(kind));
  PetscFunctionReturn(0);
}

PetscErrorCode MapExportExtrasStage(MPI_Comm comm, MapExportExtras *ex, MapSafetensorsWriter w, MapStore store, const char *run, int ntask,
                                    const int *tasks, const double *c, const MapTensorInfo *info, int ntensors, uint64_t shard)
{
  PetscMPIInt    rank;
  Text           card = {NULL, 0, 0};
  PetscErrorCode ierr = 0;
  int            nown;

  PetscFunctionBegin;
  if (!ex->folder) PetscFunctionReturn(0);
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  /* an old export's config/tokenizer files are the old model's: the new folder has the new export's or none */
  const char *const *own = MapStoreHFFileNames(&nown);
  PetscCall(MapSafetensorsWriterReplaces(w, nown, own));
  if (!rank) ierr = ModelCard(ex, store, run, ntask, tasks, c, info, ntensors, shard, &card); /* printed by the handler; agreed below */
  if (ierr) PetscCall(PetscFree(card.s));
  MapCheckAll(comm, !ierr, PETSC_ERR_LIB, "export: cannot compose the model card README.md (see the message above)");
  for (int f = 0; f < ex->nfiles; f++) PetscCall(MapSafetensorsWriterAddFile(w, ex->files[f].name, ex->files[f].data, ex->files[f].size));
  PetscCall(MapSafetensorsWriterAddFile(w, "README.md", card.s, card.len));
  PetscCall(PetscFree(card.s));
  PetscFunctionReturn(0);
}

PetscErrorCode MapExportExtrasReport(MPI_Comm comm, const MapExportExtras *ex, const char *output)
{
  PetscFunctionBegin;
  if (!ex->folder) PetscFunctionReturn(0);
  PetscCall(PetscPrintf(comm, "export: model folder %s: %d files copied from %s, README.md (model card), %d buffers kept, %d private tensors%s\n", output,
                        ex->nfiles, ex->source, ex->nbuf, ex->npriv, ex->all ? " (every task's, prefixed <task>.)" : ""));
  PetscFunctionReturn(0);
}

PetscErrorCode MapExportExtrasDestroy(MapExportExtras *ex)
{
  PetscFunctionBegin;
  for (int k = 0; k < ex->npriv; k++) {
    PetscCall(PetscFree(ex->privname[k]));
    PetscCall(PetscFree(ex->privsrc[k]));
    PetscCall(PetscFree(ex->privdata[k]));
    PetscCall(PetscFree(ex->privint[k].data));
  }
  PetscCall(PetscFree(ex->privint));
  PetscCall(PetscFree(ex->privname));
  PetscCall(PetscFree(ex->privsrc));
  PetscCall(PetscFree(ex->privtask));
  PetscCall(PetscFree(ex->privdata));
  PetscCall(MapStoreBuffersFree(ex->nbuf, &ex->buf));
  PetscCall(MapStoreHFFilesFree(ex->nfiles, &ex->files));
  PetscCall(PetscFree(ex->source));
  PetscFunctionReturn(0);
}
