/* The run journal (append-only, checksummed, fsync'ed), signal handling for checkpoint/requeue, and
   the journaled evaluation step every MAP method uses. */
#include "runimpl.h"
#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

static volatile sig_atomic_t map_signal_caught = 0;

static void MapSignalHandler(int sig) { map_signal_caught = sig; }

int MapRunSignalCaught(void) { return (int)map_signal_caught; }

int MapRunCatchSignals(void)
{
  struct sigaction sa;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = MapSignalHandler;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) return -1;
  return 0;
}

PetscErrorCode MapSignalPending(MPI_Comm comm, PetscBool *pending)
{
  int mine = map_signal_caught ? 1 : 0, any = 0;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm));
  *pending = any ? PETSC_TRUE : PETSC_FALSE;
  PetscFunctionReturn(0);
}

static PetscErrorCode MapJournalPush(MapJournal *j, const MapJournalEntry *e)
{
  PetscFunctionBegin;
  if (j->n == j->cap) {
    MapJournalEntry *tmp;
    j->cap = j->cap ? 2 * j->cap : 64;
    PetscCall(PetscMalloc1(j->cap, &tmp));
    if (j->n) PetscCall(PetscArraycpy(tmp, j->entries, j->n));
    PetscCall(PetscFree(j->entries));
    j->entries = tmp;
  }
  j->entries[j->n++] = *e;
  PetscFunctionReturn(0);
}

static PetscErrorCode MapJournalReadArray(json_t *obj, const char *key, int T, double *v, PetscBool nulls, const char *path, int line)
{
  json_t *a = json_object_get(obj, key);

  PetscFunctionBegin;
  PetscCheck(json_is_array(a) && (int)json_array_size(a) == T, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "journal %s line %d: \"%s\" is not an array of %d numbers", path, line, key, T);
  for (int i = 0; i < T; i++) {
    json_t *x = json_array_get(a, i);
    if (nulls && json_is_null(x)) { /* a metric not evaluated at this point */
      v[i] = NAN;
      continue;
    }
    PetscCheck(json_is_number(x), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "journal %s line %d: %s[%d] is not a number",
               path, line, key, i);
    v[i] = json_number_value(x);
  }
  PetscFunctionReturn(0);
}

/* Parse the journal on rank 0; returns the byte length of the valid prefix (a torn tail is cut). */
static PetscErrorCode MapJournalParse(MapJournal *j, const char *path, long *valid_len)
{
  FILE  *f = fopen(path, "r");
  char  *line = NULL;
  size_t cap  = 0;
  ssize_t len;
  int    lineno = 0;

  PetscFunctionBegin;
  *valid_len = 0;
  if (!f) PetscFunctionReturn(0);
  while ((len = getline(&line, &cap, f)) > 0) {
    lineno++;
    char *tab = strrchr(line, '\t');
    if (!tab || line[len - 1] != '\n') {
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "journal %s: dropping torn line %d (no checksum)\n", path, lineno));
      break;
    }
    *tab = 0;
    char hex[65], got[65];
    PetscCall(PetscStrncpy(got, tab + 1, sizeof(got)));
    MapSha256(line, strlen(line), hex);
    if (strncmp(hex, got, 64)) {
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "journal %s: dropping line %d (checksum mismatch, torn write)\n", path, lineno));
      break;
    }
    json_error_t    jerr;
    json_t         *obj = json_loads(line, 0, &jerr);
    MapJournalEntry e;
    PetscCheck(obj && json_is_object(obj), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "journal %s line %d: bad JSON: %s",
               path, lineno, jerr.text);
    memset(&e, 0, sizeof(e));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    PetscCheck(kind && strlen(kind) < sizeof(e.kind), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "journal %s line %d: no kind",
               path, lineno);
    strcpy(e.kind, kind);
    e.index = (int)json_integer_value(json_object_get(obj, "index"));
    e.T     = (int)json_integer_value(json_object_get(obj, "T"));
    PetscCheck(e.T > 0 && e.T <= 64, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "journal %s line %d: bad T %d", path,
               lineno, e.T);
    PetscCall(MapJournalReadArray(obj, "c", e.T, e.c, PETSC_FALSE, path, lineno));
    PetscCall(MapJournalReadArray(obj, "acc", e.T, e.acc, PETSC_TRUE, path, lineno));
    PetscCall(MapJournalReadArray(obj, "loss", e.T, e.loss, PETSC_TRUE, path, lineno));
    json_decref(obj);
    PetscCall(MapJournalPush(j, &e));
    *valid_len = ftell(f);
  }
  free(line);
  fclose(f);
  PetscFunctionReturn(0);
}

PetscErrorCode MapJournalOpen(MPI_Comm comm, const char *path, PetscBool resume, MapJournal *j)
{
  PetscFunctionBegin;
  PetscCall(MapJournalOpenWithOthers(comm, path, resume, 0, NULL, j));
  PetscFunctionReturn(0);
}

PetscErrorCode MapJournalOpenWithOthers(MPI_Comm comm, const char *path, PetscBool resume, int nothers, char **others, MapJournal *j)
{
  PetscMPIInt rank;
  long        valid = 0;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  memset(j, 0, sizeof(*j));
  PetscCall(PetscStrncpy(j->path, path, sizeof(j->path)));
  if (!rank) {
    if (resume) {
      PetscCall(MapJournalParse(j, path, &valid));
      /* cut a torn tail so appends continue from a clean line */
      if (access(path, F_OK) == 0) PetscCheck(truncate(path, valid) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot truncate %s: %s", path, strerror(errno));
    } else {
      PetscCheck(access(path, F_OK) != 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN,
                 "run folder already has a journal %s: pass -map_resume to continue it, or choose another -map_output", path);
    }
  }
  if (!rank) {
    /* journals of the other jobs of a chain (read only; their torn tails are theirs to cut) */
    for (int i = 0; i < nothers; i++) {
      long ignored;
      if (strcmp(others[i], path)) PetscCall(MapJournalParse(j, others[i], &ignored));
    }
  }
  /* every rank needs the journal to skip the same evaluations */
  PetscCallMPI(MPI_Bcast(&j->n, 1, MPI_INT, 0, comm));
  if (rank) {
    j->cap = j->n;
    if (j->n) PetscCall(PetscMalloc1(j->n, &j->entries));
  }
  if (j->n) PetscCallMPI(MPI_Bcast(j->entries, (int)(j->n * sizeof(MapJournalEntry)), MPI_BYTE, 0, comm));
  PetscFunctionReturn(0);
}

PetscErrorCode MapJournalFind(MapJournal *j, const char *kind, int index, int T, const double *c, const MapJournalEntry **e)
{
  PetscFunctionBegin;
  *e = NULL;
  for (int i = 0; i < j->n; i++) {
    MapJournalEntry *x = &j->entries[i];
    if (strcmp(x->kind, kind) || x->index != index) continue;
    PetscCheck(x->T == T && !memcmp(x->c, c, sizeof(double) * T), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
               "journal %s: entry %s #%d was evaluated at other coefficients than this run's; the design changed "
               "(seed, sampler or tasks?) — resume with the original options or use a new -map_output",
               j->path, kind, index);
    *e = x;
  }
  PetscFunctionReturn(0);
}

static void MapJsonArray(char *buf, size_t cap, int T, const double *v)
{
  size_t l = strlen(buf);
  snprintf(buf + l, cap - l, "[");
  for (int i = 0; i < T; i++) {
    l = strlen(buf);
    /* JSON has no NaN: an unevaluated metric (per-task Bayesian rounds) is written as null */
    if (isnan(v[i])) snprintf(buf + l, cap - l, "%snull", i ? "," : "");
    else snprintf(buf + l, cap - l, "%s%.17g", i ? "," : "", v[i]);
  }
  l = strlen(buf);
  snprintf(buf + l, cap - l, "]");
}

PetscErrorCode MapJournalAppend(MPI_Comm comm, MapJournal *j, const char *kind, int index, int T, const double *c,
                                const double *acc, const double *loss)
{
  PetscMPIInt     rank;
  MapJournalEntry e;
  int             ok = 1;
  char            err[256] = "";

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(MAP_EVENT_Journal, 0, 0, 0, 0));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  memset(&e, 0, sizeof(e));
  PetscCall(PetscStrncpy(e.kind, kind, sizeof(e.kind)));
  e.index = index;
  e.T     = T;
  PetscCall(PetscArraycpy(e.c, c, T));
  PetscCall(PetscArraycpy(e.acc, acc, T));
  PetscCall(PetscArraycpy(e.loss, loss, T));
  if (!rank) {
    char line[16384], hex[65];
    snprintf(line, sizeof(line), "{\"kind\":\"%s\",\"index\":%d,\"T\":%d,\"c\":", kind, index, T);
    MapJsonArray(line, sizeof(line), T, c);
    strcat(line, ",\"acc\":");
    MapJsonArray(line, sizeof(line), T, acc);
    strcat(line, ",\"loss\":");
    MapJsonArray(line, sizeof(line), T, loss);
    strcat(line, "}");
    MapSha256(line, strlen(line), hex);
    int fd = open(j->path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
      ok = 0;
      snprintf(err, sizeof(err), "cannot open journal %s: %s", j->path, strerror(errno));
    } else {
      char   out[16512];
      int    len = snprintf(out, sizeof(out), "%s\t%s\n", line, hex);
      ssize_t w  = write(fd, out, (size_t)len);
      if (w != len || fsync(fd) != 0) {
        ok = 0;
        snprintf(err, sizeof(err), "cannot write journal %s: %s (disk full?)", j->path, w < 0 ? strerror(errno) : "short write");
        /* leave no torn line behind: cut back to the previous end */
        if (w > 0) {
          off_t end = lseek(fd, 0, SEEK_END);
          if (end >= w && ftruncate(fd, end - w) != 0) { /* nothing more we can do; resume drops it by checksum */
          }
        }
      }
      close(fd);
    }
  }
  MapCheckAll(comm, ok, PETSC_ERR_FILE_WRITE, "%s", err);
  PetscCall(MapJournalPush(j, &e));
  PetscCall(PetscLogEventEnd(MAP_EVENT_Journal, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

PetscErrorCode MapJournalClose(MapJournal *j)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(j->entries));
  j->n = j->cap = 0;
  PetscFunctionReturn(0);
}

/* ---- the evaluation step of every method: journal first, evaluate what is not there ---- */

/* Evaluate at c unless the journal has it; journal it at once. */
PetscErrorCode MapRunEvaluate(MapRunCtx *r, const char *kind, int index, const double *c, double *acc, double *loss,
                                     PetscBool *fresh)
{
  PetscFunctionBegin;
  PetscCall(MapRunEvaluateOn(r, r->comm, r->ev, kind, index, c, NULL, acc, loss, fresh));
  PetscFunctionReturn(0);
}

/* The same on a sub-communicator with its own evaluator (Nested MAP's concurrent pairs): rank 0 of
   comm appends to the shared journal (one whole-line O_APPEND write each). want (NULL: all tasks):
   the tasks evaluated; the others are NaN in acc/loss and null in the journal. */
PetscErrorCode MapRunEvaluateOn(MapRunCtx *r, MPI_Comm comm, MapEvaluator ev, const char *kind, int index, const double *c,
                                const PetscBool *want, double *acc, double *loss, PetscBool *fresh)
{
  const MapJournalEntry *e;
  MapTaskMetrics         m[64];

  PetscFunctionBegin;
  PetscCall(MapJournalFind(&r->journal, kind, index, r->T, c, &e));
  *fresh = e ? PETSC_FALSE : PETSC_TRUE;
  PetscCheck(e || !r->journal_only, comm, PETSC_ERR_ARG_WRONGSTATE,
             "run folder %s: evaluation %s #%d of an earlier level is in none of its journals: run that level's jobs first "
             "(jobs/nested_chain.sh chains them with afterok)", r->out, kind, index);
  if (e) {
    PetscCall(PetscArraycpy(acc, e->acc, r->T));
    PetscCall(PetscArraycpy(loss, e->loss, r->T));
    PetscFunctionReturn(0);
  }
  PetscCall(MapEvaluatorEvaluateTasks(ev, c, want, m));
  for (int t = 0; t < r->T; t++) {
    acc[t]  = m[t].accuracy;
    loss[t] = m[t].loss;
  }
  PetscCall(MapJournalAppend(comm, &r->journal, kind, index, r->T, c, acc, loss));
  PetscFunctionReturn(0);
}


PetscErrorCode MapRunCheckSignal(MapRunCtx *r, PetscBool *stop)
{
  PetscFunctionBegin;
  PetscCall(MapSignalPending(r->comm, stop));
  if (*stop)
    PetscCall(PetscPrintf(r->comm, "mapmerge run: signal received; %d evaluations are journaled in %s; exiting with status %d "
                                   "(resume with -map_resume)\n", r->journal.n, r->journal.path, MAP_EXIT_CHECKPOINTED));
  PetscFunctionReturn(0);
}
