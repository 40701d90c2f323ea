/* eval_worker: the persistent external evaluator (-map_eval_type worker; issue 16, protocol in
   docs/evaluators-external.md). Rank 0 starts the program once (posix_spawnp, no shell, own
   process group), greets it with a hello line and then sends one JSON line per merged model
   (all wanted tasks at once); the program answers one JSON line per request. In `model` mode
   the ranks first write the merged tensors together to one reused file in the private folder
   (the store's dtype or -map_eval_worker_dtype); each task's private tensors are written once
   at set-up. In `coefficients` mode only the coefficient vector travels. The program's stderr
   is appended to eval-worker.log (the run folder, else the private folder). A worker that
   exits, hangs past -map_eval_timeout or answers garbage is killed (its whole tree), started
   again and asked once more; a second failure is an error naming the request, with the log's
   last lines. The outcome is broadcast from rank 0, so all ranks fail or succeed together. */
#ifndef _GNU_SOURCE
  #define _GNU_SOURCE /* posix_spawn, pipe2, strsignal under -std=c17 */
#endif
#include "evalworker.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;


/* ---- rank-local process handling (no PETSc errors: the caller agrees collectively) ---- */

/* the workers this process runs now (the run's, each group's, the test set's evaluator): ending one
   worker's tree must spare the others, which are our children too */
static pid_t map_live_workers[64];
static int   map_nlive;

static void TreeEnd(MapEval_Worker *m)
{
  pid_t spare[128];
  int   n = 0;

  if (m->pgid <= 0) return;
  for (int k = 0; k < m->nold; k++) spare[n++] = m->old[k];
  for (int k = 0; k < map_nlive && n < 128; k++)
    if (map_live_workers[k] != m->pgid) spare[n++] = map_live_workers[k];
  (void)MapEvalKillTree(m->pgid, spare, n);
  for (int k = 0; k < map_nlive; k++)
    if (map_live_workers[k] == m->pgid) map_live_workers[k--] = map_live_workers[--map_nlive];
  m->pgid = m->pid = 0;
}

static void WorkerKill(MapEval_Worker *m, int *status)
{
  if (m->in >= 0) close(m->in);
  m->in = -1;
  /* a polite end first: stdin closed; then the whole tree is killed */
  for (int k = 0; k < 100 && m->pid > 0; k++) {
    if (waitpid(m->pid, status, WNOHANG) == m->pid) m->pid = 0;
    else usleep(20000);
  }
  TreeEnd(m);
  if (m->out >= 0) close(m->out);
  m->out = -1;
  m->len = 0;
}

/* writes one line; EPIPE (the worker is gone) is an error, not a SIGPIPE that kills the run */
static int WriteLine(MapEval_Worker *m, const char *line, double deadline, char *msg, size_t mlen)
{
  sigset_t pipe_set, old;
  size_t   n = strlen(line), done = 0;
  int      rc = 0;

  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  while (done < n) {
    ssize_t w = write(m->in, line + done, n - done);
    if (w > 0) {
      done += (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN && MapEvalNow() < deadline) {
      struct pollfd pf = {m->in, POLLOUT, 0};
      (void)poll(&pf, 1, 50);
      continue;
    }
    snprintf(msg, mlen, "cannot send the request to the worker: %s", w < 0 && errno != EAGAIN ? strerror(errno) : "timed out (-map_eval_timeout)");
    rc = 1;
    break;
  }
  if (rc) {
    struct timespec zero = {0, 0};
    (void)sigtimedwait(&pipe_set, NULL, &zero); /* consume the SIGPIPE, if one is pending */
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

/* reads the next protocol line (one starting with '{'; other stdout lines are chatter and go to
   the log) into *line (malloc'ed). Returns 0, 1 at the deadline, 2 when stdout closed. */
static int ReadLine(MapEval_Worker *m, double deadline, char **line)
{
  *line = NULL;
  for (;;) {
    char *nl = m->len ? memchr(m->buf, '\n', m->len) : NULL;
    if (nl) {
      size_t k = (size_t)(nl - m->buf);
      char  *s = malloc(k + 1);
      if (!s) return 2;
      memcpy(s, m->buf, k);
      s[k] = 0;
      memmove(m->buf, nl + 1, m->len - k - 1);
      m->len -= k + 1;
      const char *p = s;
      while (*p == ' ' || *p == '\t') p++;
      if (*p == '{') {
        *line = s;
        return 0;
      }
      if (m->logfd >= 0 && *p) {
        dprintf(m->logfd, "[worker stdout] %s\n", s);
      }
      free(s);
      continue;
    }
    double left = deadline - MapEvalNow();
    if (left <= 0) return 1;
    struct pollfd pf = {m->out, POLLIN, 0};
    (void)poll(&pf, 1, left > 0.1 ? 100 : (int)(left * 1000) + 1);
    if (m->len + 65536 + 1 > m->cap) {
      if (m->len > ((size_t)64 << 20)) return 2; /* a 64 MiB line is not an answer */
      size_t nc = 2 * m->cap + 65536 + 1;
      char  *nb = realloc(m->buf, nc);
      if (!nb) return 2;
      m->buf = nb, m->cap = nc;
    }
    ssize_t r = read(m->out, m->buf + m->len, 65536);
    if (r > 0) m->len += (size_t)r;
    else if (r == 0) return 2;
    else if (errno != EAGAIN && errno != EINTR) return 2;
  }
}

/* after stdout closed or a timeout: why the worker is gone; 2 when a signal not sent by us ended it */
static int WorkerGone(MapEval_Worker *m, int timedout, double timeout, char *msg, size_t mlen)
{
  int status = 0, rc = 1;
  if (!timedout) {
    for (int k = 0; k < 100 && m->pid > 0; k++) { /* stdout closed: it is exiting */
      if (waitpid(m->pid, &status, WNOHANG) == m->pid) {
        m->pid = 0;
        break;
      }
      usleep(20000);
    }
  }
  if (timedout) snprintf(msg, mlen, "the worker did not answer within %g s (-map_eval_timeout) and was killed", timeout);
  else if (m->pid == 0 && WIFSIGNALED(status)) {
    snprintf(msg, mlen, "the worker was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    rc = 2;
  } else if (m->pid == 0) snprintf(msg, mlen, "the worker exited with status %d", WEXITSTATUS(status));
  else snprintf(msg, mlen, "the worker closed its stdout");
  TreeEnd(m); /* what it started may outlive it */
  WorkerKill(m, &status);
  return rc;
}

static int WorkerStart(MapEvaluator ev, MapEval_Worker *m, const char *hello, char *msg, size_t mlen)
{
  int                        in[2] = {-1, -1}, out[2] = {-1, -1}, e;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t          at;
  sigset_t                   none, all;
  char                      *line = NULL;

  (void)prctl(PR_SET_CHILD_SUBREAPER, 1); /* descendants that leave the process group stay findable */
  m->nold = MapEvalChildrenNow(m->old, 64);
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) {
    snprintf(msg, mlen, "pipe() failed: %s", strerror(errno));
    for (int k = 0; k < 2; k++) {
      if (in[k] >= 0) close(in[k]);
      if (out[k] >= 0) close(out[k]);
    }
    return 1;
  }
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  if (m->logfd >= 0) posix_spawn_file_actions_adddup2(&fa, m->logfd, 2);
  else posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_init(&at);
  posix_spawnattr_setpgroup(&at, 0);
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  MapEvalApplyGPU(ev);
  e = posix_spawnp(&m->pid, m->argv[0], &fa, &at, m->argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(in[0]);
  close(out[1]);
  m->in = in[1], m->out = out[0], m->len = 0;
  if (e) {
    m->pid = 0;
    WorkerKill(m, &e);
    snprintf(msg, mlen, "cannot run \"%s\" (-map_eval_worker): %s", m->argv[0], strerror(e));
    return 1;
  }
  m->pgid = m->pid;
  if (map_nlive < 64) map_live_workers[map_nlive++] = m->pgid;
  fcntl(m->in, F_SETFL, fcntl(m->in, F_GETFL) | O_NONBLOCK);
  fcntl(m->out, F_SETFL, fcntl(m->out, F_GETFL) | O_NONBLOCK);
  double deadline = MapEvalNow() + ev->timeout;
  if (WriteLine(m, hello, deadline, msg, mlen)) return WorkerGone(m, 0, ev->timeout, msg, mlen);
  int r = ReadLine(m, deadline, &line);
  if (r) return WorkerGone(m, r == 1, ev->timeout, msg, mlen);
  r = MapWorkerCheckHello(line, &m->data_per_request, msg, mlen);
  free(line);
  if (r) WorkerKill(m, &e);
  return r;
}

/* one request, the worker started first if needed; 2 when a signal not sent by us ended it */
static int RequestOnce(MapEvaluator ev, MapEval_Worker *m, const char *hello, const char *req, MapTaskMetrics *met, char *msg, size_t mlen)
{
  char *line = NULL;
  int   r;

  if (m->pid <= 0 && (r = WorkerStart(ev, m, hello, msg, mlen))) return r;
  double deadline = MapEvalNow() + ev->timeout;
  if (WriteLine(m, req, deadline, msg, mlen)) return WorkerGone(m, 0, ev->timeout, msg, mlen);
  r = ReadLine(m, deadline, &line);
  if (r) return WorkerGone(m, r == 1, ev->timeout, msg, mlen);
  r = MapWorkerParseAnswer(ev, line, m->nreq, met, msg, mlen);
  free(line);
  if (r) WorkerKill(m, &r), r = 1; /* after garbage its state is unknown: a fresh start */
  return r;
}

/* ---- the evaluator ---- */

static PetscErrorCode WritePrivate(MapEvaluator ev, MapEval_Worker *m, MapStore store)
{
  int rank;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  PetscCall(PetscCalloc1(ev->T + 1, &m->priv));
  for (int t = 0; t < ev->T; t++) {
    int            st, np;
    char         **names;
    MapTensorData *td;
    float        **data;
    PetscCall(PetscCalloc1(MAP_PATH_LEN, &m->priv[t]));
    PetscCall(MapStoreFindTask(store, ev->tasks[t], &st));
    PetscCall(MapStoreGetPrivateNames(store, st, &np, &names));
    if (np > 0) {
      snprintf(m->priv[t], MAP_PATH_LEN, "%s/private-%d.safetensors", m->dir, t);
      PetscCall(PetscCalloc2(np, &td, np, &data));
      for (int j = 0; j < np; j++) {
        PetscCall(MapStoreReadPrivate(store, st, names[j], &td[j].ndim, td[j].shape, &data[j]));
        td[j].name  = names[j];
        td[j].dtype = MAP_DTYPE_F32;
        td[j].data  = data[j];
      }
      if (!rank) {
        const char *keys[1] = {"mapmerge_task"}, *vals[1] = {ev->tasks[t]};
        PetscCall(MapTempRegister(m->priv[t]));
        PetscCall(MapSafetensorsWrite(m->priv[t], np, td, 1, keys, vals));
      }
      for (int j = 0; j < np; j++) PetscCall(PetscFree(data[j]));
      PetscCall(PetscFree2(td, data));
    }
    PetscCall(MapFreeList(np, &names));
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorSetUp_Worker(MapEvaluator ev)
{
  MapEval_Worker *m = (MapEval_Worker *)ev->data_impl;
  MapStore        store;
  MapDType        sdt;
  int             T, rank;
  int64_t         P;

  PetscFunctionBegin;
  PetscCheck(ev->worker[0], ev->comm, PETSC_ERR_ARG_WRONG, "-map_eval_type worker needs -map_eval_worker 'prog args...' (docs/evaluators-external.md)");
  PetscCheck(ev->model, ev->comm, PETSC_ERR_ARG_NULL, "the worker evaluator needs a model (-map_store)");
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  PetscCall(MapEvalCommandSplit(ev->worker, &m->argc, &m->argv));
  PetscCheck(m->argc > 0, ev->comm, PETSC_ERR_ARG_WRONG, "-map_eval_worker is empty");
  m->coefmode = !strcmp(ev->worker_mode, "coefficients") ? PETSC_TRUE : PETSC_FALSE;
  PetscCall(MapModelGetStore(ev->model, &store));
  PetscCall(MapStoreGetSizes(store, &P, &T, &m->nmerged));
  PetscCall(MapModelGetDType(ev->model, &sdt));
  if (!strcmp(ev->worker_dtype, "store")) m->dtype = sdt; /* the store's own dtype: F32, BF16 or F16 */
  else if (!strcmp(ev->worker_dtype, "f32")) m->dtype = MAP_DTYPE_F32;
  else if (!strcmp(ev->worker_dtype, "bf16")) m->dtype = MAP_DTYPE_BF16;
  else if (!strcmp(ev->worker_dtype, "f16")) m->dtype = MAP_DTYPE_F16;
  else SETERRQ(ev->comm, PETSC_ERR_ARG_UNKNOWN_TYPE, "-map_eval_worker_dtype %s: one of store, f32, bf16, f16", ev->worker_dtype);
  if (m->coefmode) { /* the worker merges theta_pre + sum_k c_k tau_k from the store: a plain store basis only */
    int nb;
    PetscCall(MapModelGetNumTasks(ev->model, &nb));
    PetscCheck(nb == ev->Tc, ev->comm, PETSC_ERR_SUP, "-map_eval_worker_mode coefficients: this run maps %d coefficients onto %d task vectors; "
                                                      "use -map_eval_worker_mode model",
               ev->Tc, nb);
    m->ncoef = ev->Tc;
    PetscCall(PetscCalloc1(m->ncoef + 1, &m->coef_tasks));
    for (int k = 0; k < m->ncoef; k++) {
      int         st;
      const char *nm;
      PetscCall(MapModelGetStoreTask(ev->model, k, &st));
      PetscCheck(st >= 0, ev->comm, PETSC_ERR_SUP, "-map_eval_worker_mode coefficients: basis vector %d is a combination of task vectors "
                                                   "(Nested MAP); use -map_eval_worker_mode model",
                 k);
      PetscCall(MapStoreGetTaskName(store, st, &nm));
      PetscCall(PetscStrallocpy(nm, &m->coef_tasks[k]));
    }
  } else {
    PetscCall(PetscCalloc1(m->nmerged + 1, &m->infos));
    for (int i = 0; i < m->nmerged; i++) {
      const MapStoreTensor *s;
      PetscCall(MapStoreGetTensor(store, i, &s));
      PetscCall(PetscStrncpy(m->infos[i].name, s->name, sizeof(m->infos[i].name)));
      m->infos[i].dtype = m->dtype;
      m->infos[i].ndim  = s->ndim;
      for (int k = 0; k < s->ndim; k++) m->infos[i].shape[k] = s->shape[k];
      m->infos[i].numel = s->numel;
    }
  }
  PetscCall(MapEvalMakePrivateDir(ev, store, m->dir, sizeof(m->dir)));
  snprintf(m->model, sizeof(m->model), "%s/model.safetensors", m->dir);
  if (!rank && !m->coefmode) PetscCall(MapTempRegister(m->model));
  PetscCall(WritePrivate(ev, m, store));
  MapEvalLogName(ev, ev->logdir[0] ? ev->logdir : m->dir, "eval-worker", m->log, sizeof(m->log));
  if (!rank) {
    m->logfd = open(m->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (m->logfd < 0) PetscCall(PetscInfo(NULL, "cannot open the worker log %s: %s; its stderr is dropped\n", m->log, strerror(errno)));
    else if (!ev->logdir[0]) PetscCall(MapTempRegister(m->log));
  }
  PetscFunctionReturn(0);
}

/* the merged model at c into the request's model file, block by block (MapModelWriteMerged: from
   memory, or from the store with -map_eval_stream); a non-finite merge fails on every rank and the
   file is not replaced */
static PetscErrorCode WriteModel(MapEvaluator ev, MapEval_Worker *m, const double *c)
{
  MapSafetensorsWriter w;
  const char          *keys[1] = {"mapmerge_version"}, *vals[1] = {MAPMERGE_VERSION};
  PetscErrorCode       ierr;

  PetscFunctionBegin;
  PetscCall(MapSafetensorsWriterCreate(ev->comm, m->model, m->nmerged, m->infos, 1, keys, vals, 0, &w));
  ierr = MapModelWriteMerged(ev->model, c, ev->block_mb, w); /* never score or hand out a NaN model */
  if (ierr) {
    PetscCall(MapSafetensorsWriterAbort(&w));
    PetscCall(ierr);
  }
  PetscCall(MapSafetensorsWriterClose(&w));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorEvaluate_Worker(MapEvaluator ev, const double *c, MapTaskMetrics *metrics)
{
  MapEval_Worker *m = (MapEval_Worker *)ev->data_impl;
  int             rank;
  struct {
    int  status;
    char msg[MAP_WORKER_MSG];
  } * res;
  MapTaskMetrics *met;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  PetscCall(PetscNew(&res));
  PetscCall(PetscCalloc1(ev->T, &met));
  if (!m->coefmode) {
    PetscErrorCode ierr = WriteModel(ev, m, c);
    if (ierr) {
      PetscCall(PetscFree(res));
      PetscCall(PetscFree(met));
      PetscCall(ierr);
    }
  }
  m->nreq++;
  PetscCall(PetscLogEventBegin(MAP_EVENT_EvalLoss, 0, 0, 0, 0));
  if (!rank) {
    char *hello = MapWorkerHelloLine(ev, m), *req = MapWorkerRequestLine(ev, m, c), first[MAP_WORKER_MSG / 2] = "";
    if (!hello || !req) res->status = 1, snprintf(res->msg, sizeof(res->msg), "out of memory building the worker request");
    else {
      res->status = RequestOnce(ev, m, hello, req, met, res->msg, sizeof(res->msg));
      if (res->status == 2) { /* killed by a signal: the job step's, or a lone crash? */
        for (int k = 0; k < 50 && !MapEvalInterrupted(); k++) usleep(20000);
        if (!MapEvalInterrupted()) res->status = 1;
      }
      if (res->status == 1) { /* once more with a fresh worker */
        PetscCall(PetscStrncpy(first, res->msg, sizeof(first)));
        if (m->logfd >= 0) dprintf(m->logfd, "mapmerge: request %lld failed (%s); restarting the worker\n", (long long)m->nreq, first);
        if (m->pid > 0) WorkerKill(m, &res->status);
        res->status = RequestOnce(ev, m, hello, req, met, res->msg, sizeof(res->msg));
        if (res->status) {
          char tail[4096], again[MAP_WORKER_MSG / 2];
          PetscCall(PetscStrncpy(again, res->msg, sizeof(again)));
          MapEvalLogTail(m->log, 20, tail, sizeof(tail));
          snprintf(res->msg, sizeof(res->msg),
                   "worker request %lld failed twice: %s; after a restart: %s. The request: %.400s. Last lines of %s:\n%s", (long long)m->nreq,
                   first, again, req, m->log, tail);
          res->status = 1;
        }
      }
    }
    free(hello);
    free(req);
  }
  PetscCall(MapBcastPolitely(res, (int)sizeof(*res), 0, ev->comm)); /* the other ranks sleep while the worker computes */
  PetscCallMPI(MPI_Bcast(met, (int)(sizeof(MapTaskMetrics) * (size_t)ev->T), MPI_BYTE, 0, ev->comm));
  PetscCall(PetscLogEventEnd(MAP_EVENT_EvalLoss, 0, 0, 0, 0));
  if (res->status == 2) PetscCall(MapEvalCheckInterrupted(ev, res->msg));
  if (res->status) {
    char msg[MAP_WORKER_MSG];
    PetscCall(PetscStrncpy(msg, res->msg, sizeof(msg)));
    PetscCall(PetscFree(res));
    PetscCall(PetscFree(met));
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_LIB, "%s", rank ? "the evaluation worker failed (see rank 0's message)" : msg);
  }
  for (int t = 0; t < ev->T; t++)
    if (MapEvalWanted(ev, t)) metrics[t] = met[t];
  PetscCall(PetscFree(res));
  PetscCall(PetscFree(met));
  PetscFunctionReturn(0);
}

/*
  MapEvaluatorEvaluateOnDataOf - scores c with ev's running worker on the eval sets of `other` (e.g.
  the held-out test sets), when ev is a worker evaluator whose worker is up and said
  "data_per_request": no second program start. *done = PETSC_FALSE (nothing done) otherwise: use
  `other` itself. Collective on ev.
*/
PetscErrorCode MapEvaluatorEvaluateOnDataOf(MapEvaluator ev, MapEvaluator other, const double *c, MapTaskMetrics *metrics, PetscBool *done)
{
  int    can = 0, rank;
  char **data;

  PetscFunctionBegin;
  *done = PETSC_FALSE;
  if (!ev || !other || strcmp(ev->type, "worker") || other->ndata != ev->T || ev->ndata != ev->T) PetscFunctionReturn(0);
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  if (!rank) {
    MapEval_Worker *m = (MapEval_Worker *)ev->data_impl;
    can               = m->pid > 0 && m->data_per_request;
  }
  PetscCallMPI(MPI_Bcast(&can, 1, MPI_INT, 0, ev->comm));
  if (!can) PetscFunctionReturn(0);
  data                = ev->data; /* the requests name other's files for this one evaluation */
  ev->data            = other->data;
  PetscErrorCode ierr = MapEvaluatorEvaluate(ev, c, metrics);
  ev->data            = data;
  PetscCall(ierr);
  *done = PETSC_TRUE;
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorDestroy_Worker(MapEvaluator ev)
{
  MapEval_Worker *m = (MapEval_Worker *)ev->data_impl;
  int             rank;

  PetscFunctionBegin;
  if (!m) PetscFunctionReturn(0);
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  if (!rank) {
    int st = 0;
    if (m->pid > 0) {
      char msg[256];
      (void)WriteLine(m, "{\"mapmerge\":\"shutdown\"}\n", MapEvalNow() + 1.0, msg, sizeof(msg));
    }
    WorkerKill(m, &st);
    free(m->buf);
    if (m->logfd >= 0) close(m->logfd);
    if (m->logfd >= 0 && !ev->logdir[0]) {
      (void)unlink(m->log);
      PetscCall(MapTempUnregister(m->log));
    }
    if (m->priv)
      for (int t = 0; t < ev->T; t++)
        if (m->priv[t] && m->priv[t][0]) {
          (void)unlink(m->priv[t]);
          PetscCall(MapTempUnregister(m->priv[t]));
        }
    if (m->dir[0]) {
      if (!m->coefmode) {
        (void)unlink(m->model);
        PetscCall(MapTempUnregister(m->model));
      }
      (void)rmdir(m->dir);
      PetscCall(MapTempUnregister(m->dir));
    }
  }
  if (m->priv)
    for (int t = 0; t < ev->T; t++) PetscCall(PetscFree(m->priv[t]));
  PetscCall(PetscFree(m->priv));
  PetscCall(MapFreeList(m->argc, &m->argv));
  PetscCall(MapFreeList(m->ncoef, &m->coef_tasks));
  PetscCall(PetscFree(m->infos));
  PetscCall(PetscFree(ev->data_impl));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorView_Worker(MapEvaluator ev, PetscViewer viewer)
{
  MapEval_Worker *m = (MapEval_Worker *)ev->data_impl;

  PetscFunctionBegin;
  PetscCall(MapEvalViewExternal(ev, viewer, "-map_eval_worker", ev->worker, m->log));
  PetscCall(PetscViewerASCIIPrintf(viewer, "requests: %s (-map_eval_worker_mode), merged model dtype %s (-map_eval_worker_dtype)\n", ev->worker_mode,
                                   ev->worker_dtype));
  PetscFunctionReturn(0);
}

PetscErrorCode MapEvaluatorCreate_Worker(MapEvaluator ev)
{
  MapEval_Worker *m;

  PetscFunctionBegin;
  PetscCall(PetscNew(&m));
  m->in = m->out = m->logfd = -1;
  ev->data_impl             = m;
  ev->ops.setup             = MapEvaluatorSetUp_Worker;
  ev->ops.evaluate          = MapEvaluatorEvaluate_Worker;
  ev->ops.destroy           = MapEvaluatorDestroy_Worker;
  ev->ops.view              = MapEvaluatorView_Worker;
  PetscFunctionReturn(0);
}
