/* The run manifest's reproducibility record (docs/reproducibility.md): what the bits depend on
   beyond the options, and the sha256 of the inputs that are not the store or the eval sets. */
#include "runimpl.h"
#include "fixedimpl.h"
#include <sys/stat.h>

static int IsRegularFile(const char *path)
{
  struct stat st;
  return !stat(path, &st) && S_ISREG(st.st_mode);
}

/* the program of a command template's first word: as given when it has a '/', else found on PATH */
static int FindProgram(const char *word, char *path, size_t len)
{
  if (strchr(word, '/')) {
    snprintf(path, len, "%s", word);
    return IsRegularFile(path);
  }
  const char *env = getenv("PATH");
  char        dirs[8192];
  snprintf(dirs, sizeof(dirs), "%s", env ? env : "/usr/bin:/bin");
  for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    snprintf(path, len, "%s/%s", d, word);
    if (IsRegularFile(path)) return 1;
  }
  return 0;
}

/* -map_eval_command: its program, and every other word of the template that names an existing file
   (an interpreter's script, a config), each hashed under its path */
static PetscErrorCode HashEvalCommand(json_t *in)
{
  char      cmd[4096], path[MAP_PATH_LEN], hex[65];
  PetscBool set;

  PetscFunctionBegin;
  PetscCall(PetscOptionsGetString(NULL, NULL, "-map_eval_command", cmd, sizeof(cmd), &set));
  if (!set) PetscFunctionReturn(0);
  int first = 1;
  for (char *save = NULL, *w = strtok_r(cmd, " \t", &save); w; w = strtok_r(NULL, " \t", &save), first = 0) {
    size_t n = strlen(w);
    if (n >= 2 && (w[0] == '\'' || w[0] == '"') && w[n - 1] == w[0]) { /* a quoted word without spaces */
      w[n - 1] = 0;
      w++;
    }
    if (strchr(w, '{')) continue; /* {model}, {task}, {data}: per call, hashed elsewhere or temporary */
    if (first ? !FindProgram(w, path, sizeof(path)) : !IsRegularFile(w)) continue;
    if (!first) snprintf(path, sizeof(path), "%s", w);
    char real[MAP_PATH_LEN];
    if (!realpath(path, real)) snprintf(real, sizeof(real), "%s", path);
    PetscCall(MapSha256File(real, hex));
    json_object_set_new(in, real, json_string(hex));
  }
  PetscFunctionReturn(0);
}

/*
  MapRunManifestRepro - adds to the manifest m: in "inputs_sha256" (in) the -map_eval_command program
  and script (the test sets are hashed when read, MapRunHashInputs); "reproducibility": the BLAS thread pin, the evaluator's
  kernel and what its bits are independent of, and the digests of the checkpoints the store was
  imported from ("store_sources_digest", its "definition" the store's source_digest; "store_sources_sha256" for older stores) (for the embedded default: the zoo's files). Collective (reads store attributes).
*/
PetscErrorCode MapRunManifestRepro(MapRunCtx *r, json_t *m, json_t *in)
{
  json_t *rep = json_object(), *src = json_object();
  char    kernel[32] = "blas";

  PetscFunctionBegin;
  PetscCall(HashEvalCommand(in)); /* the test sets were hashed when read (MapRunHashInputs) */

  json_object_set_new(rep, "blas_threads", json_string(MapBLASThreadsPinned()));
  PetscCall(PetscOptionsGetString(NULL, NULL, "-map_eval_kernel", kernel, sizeof(kernel), NULL));
  json_object_set_new(rep, "mlp_eval_kernel", json_string(kernel));
  json_object_set_new(rep, "mlp_eval_bits",
                      json_string(!strcmp(kernel, "fixed") ? "independent of rank count, launcher, CPU model and BLAS"
                                                           : "independent of rank count and launcher; depend on the CPU's BLAS kernels (versions.blas)"));
  if (r->store) {
    char *kind = NULL;
    /* the source digests (docs/storage.md); a store imported before them has the plain sha256 */
    PetscCall(MapStoreGetAttribute(r->store, "source_digest", &kind));
    for (int t = -1; t < r->T; t++) {
      char key[MAP_NAME_LEN + 32], *v = NULL;
      if (t < 0) snprintf(key, sizeof(key), "pretrained.%s", kind ? "digest" : "sha256");
      else snprintf(key, sizeof(key), "task.%s.%s", r->tasks[t], kind ? "digest" : "sha256");
      PetscCall(MapStoreGetAttribute(r->store, key, &v));
      if (v) json_object_set_new(src, t < 0 ? "pretrained" : r->tasks[t], json_string(v));
      PetscCall(PetscFree(v));
    }
    if (kind) json_object_set_new(src, "definition", json_string(kind));
    json_object_set_new(rep, kind ? "store_sources_digest" : "store_sources_sha256", src);
    PetscCall(PetscFree(kind));
  } else json_decref(src);
  json_object_set_new(m, "reproducibility", rep);
  PetscFunctionReturn(0);
}
