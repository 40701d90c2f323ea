/* The run journal (append-only, checksummed, fsync'ed), signal handling for checkpoint/requeue, and
   the journaled evaluation step every MAP method uses. */
#include "runimpl.h"
#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sys/file.h>
#include <sys/stat.h>
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

/* One checksummed line "<json>\t<sha256(json)>\n": 0 and the JSON text cut out of line, or -1 with
   why set when the line is incomplete or its checksum does not match. */
static int MapJournalLineCheck(char *line, ssize_t len, const char **why)
{
  char *tab = strrchr(line, '\t');
  char  hex[65];

  if (line[len - 1] != '\n') {
    *why = "no end of line";
    return -1;
  }
  if (!tab) {
    *why = "no checksum";
    return -1;
  }
  *tab = 0;
  MapSha256(line, strlen(line), hex);
  if (strncmp(hex, tab + 1, 64) || (tab[65] != '\n')) {
    *why = "checksum mismatch";
    return -1;
  }
  return 0;
}

/* Parse a journal on rank 0. *valid_len: the byte length of the valid prefix. Only the LAST line
   may be bad (a write torn by a crash: no end of line or a checksum mismatch); it is left out. A bad
   line with valid lines after it is damage or an edit, not a torn write: an error naming the line,
   before anything is changed on disk. *header: the binding object of its header line (json_decref),
   NULL when it has none. */
static PetscErrorCode MapJournalParse(MapJournal *j, const char *path, long *valid_len, json_t **header)
{
  FILE       *f    = fopen(path, "r");
  char       *line = NULL;
  size_t      cap  = 0;
  ssize_t     len;
  int         lineno = 0;
  struct stat sb;

  PetscFunctionBegin;
  *valid_len = 0;
  *header    = NULL;
  if (!f) PetscFunctionReturn(0);
  PetscCheck(fstat(fileno(f), &sb) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "journal %s: cannot stat: %s", path, strerror(errno));
  while ((len = getline(&line, &cap, f)) > 0) {
    const char *why;
    lineno++;
    if (MapJournalLineCheck(line, len, &why)) {
      if (ftell(f) >= (long)sb.st_size) { /* the last line: a torn write, dropped */
        PetscCall(PetscPrintf(PETSC_COMM_SELF, "journal %s: dropping torn last line %d (%s)\n", path, lineno, why));
        break;
      }
      free(line);
      fclose(f);
      if (*header) json_decref(*header);
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
              "journal %s line %d: %s, and valid lines follow it, so it is not a torn write but damage or an edit; nothing was "
              "changed: restore the line, delete it (and resume), or start a new -map_output",
              path, lineno, why);
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
    if (!strcmp(kind, "header")) { /* what produced the journal (MapJournalOpenBound) */
      json_t *b = json_object_get(obj, "binding");
      PetscCheck(lineno == 1 && json_is_object(b), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
                 "journal %s line %d: a header must be the first line and hold a \"binding\" object", path, lineno);
      *header = json_incref(b);
      json_decref(obj);
      *valid_len = ftell(f);
      continue;
    }
    strcpy(e.kind, kind);
    e.index  = (int)json_integer_value(json_object_get(obj, "index"));
    e.T      = (int)json_integer_value(json_object_get(obj, "T"));
    e.failed = json_is_true(json_object_get(obj, "failed")) ? 1 : 0;
    PetscCheck(e.T > 0 && e.T <= MAP_MAX_TASKS, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "journal %s line %d: bad T %d", path,
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

/* Where two bindings differ, as "key: journal X, this run Y" (the first few differences, nested
   objects by their dotted key). */
static void MapBindingDiff(json_t *old, json_t *now, const char *prefix, char *buf, size_t cap)
{
  const char *key;
  json_t     *v;
  void       *tmp;

  json_object_foreach_safe(now, tmp, key, v)
  {
    json_t *o = json_object_get(old, key);
    size_t  l = strlen(buf);
    char    name[256];
    if (json_equal(o, v) || l + 64 > cap) continue;
    snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", key);
    if (json_is_object(o) && json_is_object(v)) {
      MapBindingDiff(o, v, name, buf, cap);
      continue;
    }
    char *so = o ? json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY) : NULL, *sn = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf + l, cap - l, "\n  %s: journal %.300s, this run %.300s", name, so ? so : "(absent)", sn ? sn : "?");
    free(so);
    free(sn);
  }
  json_object_foreach_safe(old, tmp, key, v)
  {
    size_t l = strlen(buf);
    if (json_object_get(now, key) || l + 64 > cap) continue;
    char *so = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf + l, cap - l, "\n  %s%s%s: journal %.300s, this run (absent)", prefix, prefix[0] ? "." : "", key, so ? so : "?");
    free(so);
  }
}

/* The journal must have been written for this binding (store, tasks and order, evaluator and its
   data, design): a mismatch is an error that says what differs. Rank 0. */
static PetscErrorCode MapJournalCheckBinding(const char *path, json_t *header, const char *binding, int nentries)
{
  json_error_t jerr;
  json_t      *now;
  char         diff[4096] = "";

  PetscFunctionBegin;
  if (!binding) PetscFunctionReturn(0);
  PetscCheck(header || !nentries, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "journal %s has %d evaluations but no header line saying which store, tasks, evaluator and design produced them (an older "
             "mapmerge, or edited); -map_resume cannot tell whether they belong to this run: start a new -map_output",
             path, nentries);
  if (!header) PetscFunctionReturn(0);
  now = json_loads(binding, 0, &jerr);
  PetscCheck(now, PETSC_COMM_SELF, PETSC_ERR_PLIB, "journal binding is not JSON: %s", jerr.text);
  if (!json_equal(header, now)) MapBindingDiff(header, now, "", diff, sizeof(diff));
  json_decref(now);
  PetscCheck(!diff[0], PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "journal %s was written by another run than this one; its evaluations cannot be resumed here. What differs:%s\n"
             "Resume with the original store, tasks (in their order), evaluator, eval data and design, or choose a new -map_output",
             path, diff);
  PetscFunctionReturn(0);
}

/* Appends one checksummed line and fsyncs; 0, or -1 with err set (a partial write is cut back). */
static int MapJournalWriteLine(const char *path, const char *line, char *err, size_t errlen)
{
  char    hex[65], *out;
  size_t  need = strlen(line) + 67;
  int     fd, ok = 1;
  ssize_t w;

  MapSha256(line, strlen(line), hex);
  out = malloc(need);
  if (!out) {
    snprintf(err, errlen, "cannot write journal %s: out of memory", path);
    return -1;
  }
  int len = snprintf(out, need, "%s\t%s\n", line, hex);
  fd      = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open journal %s: %s", path, strerror(errno));
    free(out);
    return -1;
  }
  w = write(fd, out, (size_t)len);
  if (w != len || fsync(fd) != 0) {
    ok = 0;
    snprintf(err, errlen, "cannot write journal %s: %s (disk full?)", path, w < 0 ? strerror(errno) : "short write");
    /* leave no torn line behind: cut back to the previous end */
    if (w > 0) {
      off_t end = lseek(fd, 0, SEEK_END);
      if (end >= w && ftruncate(fd, end - w) != 0) { /* nothing more we can do; resume drops it by checksum */
      }
    }
  }
  close(fd);
  free(out);
  return ok ? 0 : -1;
}

/* An advisory lock on "<journal>.lock", held until MapJournalClose (or the process ends): a second
   run on the same journal (same folder, or the same pair of a nested chain) is refused, not mixed
   in. flock, not fcntl: closing the journal's own descriptors after each append must not drop it. */
static int MapJournalLock(MapJournal *j, char *err, size_t errlen)
{
  char lpath[MAP_PATH_LEN + 8], pid[32];
  int  fd;

  snprintf(lpath, sizeof(lpath), "%s.lock", j->path);
  fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    snprintf(err, errlen, "-map_output: cannot create the lock file %s: %s", lpath, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB)) {
    ssize_t n               = pread(fd, pid, sizeof(pid) - 1, 0);
    pid[n > 0 ? n : 0]      = 0;
    pid[strcspn(pid, "\n")] = 0;
    if (errno == EWOULDBLOCK)
      snprintf(err, errlen, "run folder in use: another mapmerge run (%s%s) holds the lock %s; two runs in one folder would overwrite each "
                            "other: wait for it, or choose another -map_output",
               n > 0 ? "pid " : "pid unknown", pid, lpath);
    else snprintf(err, errlen, "cannot lock %s: %s", lpath, strerror(errno));
    close(fd);
    return -1;
  }
  snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) || pwrite(fd, pid, strlen(pid), 0) < 0) { /* the pid only helps the message above */
  }
  j->lockfd = fd;
  return 0;
}

PetscErrorCode MapJournalOpen(MPI_Comm comm, const char *path, PetscBool resume, MapJournal *j)
{
  PetscFunctionBegin;
  PetscCall(MapJournalOpenWithOthers(comm, path, resume, 0, NULL, NULL, j));
  PetscFunctionReturn(0);
}

/* rank 0's part of the open: lock, parse, check the binding, cut a torn tail, write the header */
static PetscErrorCode MapJournalOpenRoot(MapJournal *j, PetscBool resume, int nothers, char **others, const char *binding)
{
  long    valid     = 0;
  json_t *header    = NULL;
  char    err[1024] = "";

  PetscFunctionBegin;
  PetscCheck(MapJournalLock(j, err, sizeof(err)) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s", err);
  if (resume) {
    PetscCall(MapJournalParse(j, j->path, &valid, &header));
    PetscErrorCode ierr = MapJournalCheckBinding(j->path, header, binding, j->n);
    if (header) json_decref(header);
    PetscCall(ierr);
    /* cut a torn tail so appends continue from a clean line */
    if (access(j->path, F_OK) == 0) PetscCheck(truncate(j->path, valid) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot truncate %s: %s", j->path, strerror(errno));
  } else {
    PetscCheck(access(j->path, F_OK) != 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN,
               "run folder already has a journal %s: pass -map_resume to continue it, or choose another -map_output", j->path);
  }
  /* journals of the other jobs of a chain (read only; their torn tails are theirs to cut) */
  for (int i = 0; i < nothers; i++) {
    long ignored;
    int  n0 = j->n;
    if (!strcmp(others[i], j->path)) continue;
    PetscCall(MapJournalParse(j, others[i], &ignored, &header));
    PetscErrorCode ierr = MapJournalCheckBinding(others[i], header, binding, j->n - n0);
    if (header) json_decref(header);
    PetscCall(ierr);
  }
  if (binding && valid == 0) { /* a new (or empty) journal starts with what it is bound to */
    char  *line;
    size_t need = strlen(binding) + 64;
    PetscCall(PetscMalloc1(need, &line));
    snprintf(line, need, "{\"kind\":\"header\",\"format\":1,\"binding\":%s}", binding);
    int rc = MapJournalWriteLine(j->path, line, err, sizeof(err));
    PetscCall(PetscFree(line));
    PetscCheck(rc == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s", err);
  }
  PetscFunctionReturn(0);
}

/*
  MapJournalOpenWithOthers - collective. Rank 0 locks the journal (a second run on it is refused),
  parses it on resume (binding == NULL: no header written or checked), also loads the entries of the
  other journal files (a nested-MAP chain's jobs each append to their own file in the shared run
  folder), and every rank gets the entries. An error on rank 0 is raised on every rank.
*/
PetscErrorCode MapJournalOpenWithOthers(MPI_Comm comm, const char *path, PetscBool resume, int nothers, char **others, const char *binding,
                                        MapJournal *j)
{
  PetscMPIInt rank;
  int         ok  = 1;
  char       *why = NULL;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  memset(j, 0, sizeof(*j));
  j->lockfd = -1;
  PetscCall(PetscStrncpy(j->path, path, sizeof(j->path)));
  if (!rank) {
    PetscErrorCode ierr;
    PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
    ierr = MapJournalOpenRoot(j, resume, nothers, others, binding);
    PetscCall(PetscPopErrorHandler());
    if (ierr) {
      ok = 0;
      PetscCall(PetscErrorMessage(ierr, NULL, &why));
    }
  }
  MapCheckAll(comm, ok, PETSC_ERR_FILE_UNEXPECTED, "%s", why ? why : "cannot open the journal");
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
    /* JSON has no NaN or Inf: an unevaluated metric (per-task Bayesian rounds) and a failed one
       (the entry's "failed" marks it) are written as null */
    if (!isfinite(v[i])) snprintf(buf + l, cap - l, "%snull", i ? "," : "");
    else snprintf(buf + l, cap - l, "%s%.17g", i ? "," : "", v[i]);
  }
  l = strlen(buf);
  snprintf(buf + l, cap - l, "]");
}

/* MapJournalAppend - collective; rank 0 appends and fsyncs. failed: a metric of an evaluated task
   was not finite (written as null; resume reports it instead of re-evaluating). */
PetscErrorCode MapJournalAppend(MPI_Comm comm, MapJournal *j, const char *kind, int index, int T, const double *c,
                                const double *acc, const double *loss, PetscBool failed)
{
  PetscMPIInt     rank;
  MapJournalEntry e;
  int             ok       = 1;
  char            err[512] = "";

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(MAP_EVENT_Journal, 0, 0, 0, 0));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  memset(&e, 0, sizeof(e));
  PetscCall(PetscStrncpy(e.kind, kind, sizeof(e.kind)));
  e.index  = index;
  e.T      = T;
  e.failed = failed ? 1 : 0;
  PetscCall(PetscArraycpy(e.c, c, T));
  PetscCall(PetscArraycpy(e.acc, acc, T));
  PetscCall(PetscArraycpy(e.loss, loss, T));
  if (!rank) {
    char line[16384];
    snprintf(line, sizeof(line), "{\"kind\":\"%s\",\"index\":%d,\"T\":%d,%s\"c\":", kind, index, T, failed ? "\"failed\":true," : "");
    MapJsonArray(line, sizeof(line), T, c);
    strcat(line, ",\"acc\":");
    MapJsonArray(line, sizeof(line), T, acc);
    strcat(line, ",\"loss\":");
    MapJsonArray(line, sizeof(line), T, loss);
    strcat(line, "}");
    ok = MapJournalWriteLine(j->path, line, err, sizeof(err)) == 0;
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
  if (j->lockfd > 2) (void)close(j->lockfd); /* releases the run folder's lock */
  j->lockfd = -1;
  PetscFunctionReturn(0);
}

/* ---- the evaluation step of every method: journal first, evaluate what is not there ---- */

void MapJournalSetTasks(MapJournal *j, int T, char **tasks, const char *folder)
{
  j->T     = T;
  j->tasks = tasks;
  snprintf(j->folder, sizeof(j->folder), "%s", folder);
  if (!j->metric[0]) MapJournalSetMetric(j, "accuracy", PETSC_TRUE);
}

void MapJournalSetMetric(MapJournal *j, const char *name, PetscBool with_loss)
{
  snprintf(j->metric, sizeof(j->metric), "%s", name);
  j->with_loss = with_loss;
}

int MapJournalFirstUnusable(const MapJournal *j, int task, const double *acc, const double *loss)
{
  for (int t = 0; t < j->T; t++)
    /* the default metric is fitted with the loss beside it: both must be finite */
    if ((task < 0 || task == t) && !(isfinite(acc[t]) && (!j->with_loss || isfinite(loss[t])))) return t;
  return -1;
}

int MapJournalMetricValues(const MapJournal *j, const PetscBool *want, const MapTaskMetrics *m, double *acc, double *loss)
{
  int bad = -1;
  for (int t = 0; t < j->T; t++) {
    acc[t]  = m[t].metric;
    loss[t] = m[t].loss;
  }
  for (int t = 0; t < j->T && bad < 0; t++) /* want[] names the evaluated tasks: the first unusable one among them */
    if (!want || want[t]) bad = MapJournalFirstUnusable(j, t, acc, loss) == t ? t : -1;
  return bad;
}

PetscErrorCode MapJournalEvaluate(MapJournal *j, MPI_Comm comm, MapEvaluator ev, const char *kind, int index, const double *c,
                                  const PetscBool *want, double *acc, double *loss, PetscBool *fresh, PetscBool *failed)
{
  const MapJournalEntry *e;
  MapTaskMetrics         m[MAP_MAX_TASKS];

  PetscFunctionBegin;
  if (failed) *failed = PETSC_FALSE;
  PetscCall(MapJournalFind(j, kind, index, j->T, c, &e));
  *fresh = e ? PETSC_FALSE : PETSC_TRUE;
  PetscCheck(e || !j->replay_only, comm, PETSC_ERR_ARG_WRONGSTATE,
             "run folder %s: evaluation %s #%d of an earlier level is in none of its journals: run that level's jobs first "
             "(jobs/nested_chain.sh chains them with afterok)",
             j->folder, kind, index);
  if (e) {
    PetscCall(PetscArraycpy(acc, e->acc, j->T));
    PetscCall(PetscArraycpy(loss, e->loss, j->T));
    PetscCheck(!e->failed || failed, comm, PETSC_ERR_FP,
               "journal %s: evaluation %s #%d failed in an earlier run (a metric was not finite) and is not retried; see that run's "
               "message, fix the evaluator or its data, and start a new -map_output",
               j->path, kind, index);
    if (e->failed) { /* done: a failed point is not retried */
      *failed = PETSC_TRUE;
      for (int t = 0; t < j->T; t++) acc[t] = NAN;
    }
    PetscFunctionReturn(0);
  }
  PetscCall(MapEvaluatorEvaluateTasks(ev, c, want, m));
  int bad = MapJournalMetricValues(j, want, m, acc, loss);
  /* a non-finite metric is never fitted or reported: journaled as failed (valid JSON) */
  PetscCall(MapJournalAppend(comm, j, kind, index, j->T, c, acc, loss, bad >= 0 ? PETSC_TRUE : PETSC_FALSE));
  if (bad >= 0) {
    char cs[1024] = "";
    for (int t = 0; t < j->T; t++) {
      size_t l = strlen(cs);
      snprintf(cs + l, sizeof(cs) - l, "%s%.6g", t ? "," : "", c[t]);
    }
    PetscCheck(failed, comm, PETSC_ERR_FP, "evaluation %s #%d at c = %s: task %s gave %s %g, loss %g (not finite); journaled as failed in %s", kind,
               index, cs, j->tasks[bad], j->metric, acc[bad], loss[bad], j->path);
    PetscCall(PetscPrintf(comm, "evaluation %s #%d at c = %s failed: task %s gave %s %g%s, loss %g; journaled as failed, left out of the fit\n", kind, index,
                          cs, j->tasks[bad], j->metric, acc[bad], m[bad].missing ? " (missing)" : "", loss[bad]));
    *failed = PETSC_TRUE;
    for (int t = 0; t < j->T; t++) acc[t] = NAN;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapRunCheckSignal(MapRunCtx *r, PetscBool *stop)
{
  PetscFunctionBegin;
  PetscCall(MapSignalPending(r->comm, stop));
  if (*stop)
    PetscCall(PetscPrintf(r->comm, "mapmerge run: signal received; %d evaluations are journaled in %s; exiting with status %d "
                                   "(resume with -map_resume)\n",
                          r->journal.n, r->journal.path, MAP_EXIT_CHECKPOINTED));
  PetscFunctionReturn(0);
}
