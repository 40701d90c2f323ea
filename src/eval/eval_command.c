/* eval_command: the external-program evaluator (docs/design.md §4). Per task, the merged model plus
   that task's private tensors (under their own names, so it loads as a plain state_dict) is
   written rank-parallel to a temporary .safetensors; rank 0 runs the program through
   posix_spawnp (never a shell) with {model}, {task} and {data} substituted into the argv
   template, with a timeout; the last non-empty stdout line must be a JSON object with the metric
   of -map_metric (default "accuracy", then with "loss"; null or NaN: a failed point). The outcome (metrics or an error message) is broadcast, so every rank
   fails or succeeds together. The temporary model is always removed. */
#ifndef _GNU_SOURCE
  #define _GNU_SOURCE /* posix_spawn, strsignal, usleep under -std=c17 */
#endif
#include "evalimpl.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

extern char **environ;

typedef struct {
  int            argc;
  char         **argv;              /* the split template */
  int            nmerged;           /* store tensors */
  int            n;                 /* writer tensors per task (merged + private) */
  MapTensorInfo *infos;             /* [T][n] */
  float       ***priv;              /* [T][npriv] data */
  int           *npriv;             /* [T] */
  char           dir[MAP_PATH_LEN]; /* rank 0's private folder (mkdtemp) for the temporary models */
  char           log[MAP_PATH_LEN]; /* eval-command.log: every run's stderr (the run folder, else dir) */
  int            logfd;             /* rank 0 */
} MapEval_Command;

/* ---- argv template ---- */

PetscErrorCode MapEvalCommandSplit(const char *tmpl, int *argc, char ***argv)
{
  size_t len = strlen(tmpl);
  char  *item;
  int    cap = 8, n = 0;
  char **list;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(len + 1, &item));
  PetscCall(PetscCalloc1(cap + 1, &list));
  const char *p = tmpl;
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (!*p) break;
    size_t    k      = 0;
    PetscBool quoted = PETSC_FALSE;
    while (*p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
      if (*p == '\'' || *p == '"') {
        char q = *p++;
        quoted = PETSC_TRUE;
        while (*p && *p != q) {
          if (q == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\')) p++;
          item[k++] = *p++;
        }
        if (!*p) {
          PetscCall(PetscFree(item));
          PetscCall(MapFreeList(n, &list));
          SETERRQ(PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "-map_eval_command \"%s\": unterminated %c quote", tmpl, q);
        }
        p++;
      } else item[k++] = *p++;
    }
    (void)quoted; /* '' gives an empty item, as in a shell */
    item[k] = 0;
    if (n == cap) {
      char **nl;
      PetscCall(PetscCalloc1(2 * cap + 1, &nl));
      memcpy(nl, list, sizeof(char *) * (size_t)n);
      PetscCall(PetscFree(list));
      list = nl;
      cap *= 2;
    }
    PetscCall(PetscStrallocpy(item, &list[n++]));
  }
  PetscCall(PetscFree(item));
  *argc = n;
  *argv = list;
  PetscFunctionReturn(0);
}

PetscErrorCode MapEvalCommandSubstitute(const char *item, const char *model, const char *task, const char *data, char **out)
{
  const char *keys[3] = {"{model}", "{task}", "{data}"};
  const char *vals[3] = {model, task, data ? data : ""};
  size_t      len     = strlen(item) + 1;

  PetscFunctionBegin;
  for (const char *p = item; *p;) { /* size first */
    int hit = -1;
    for (int k = 0; k < 3; k++)
      if (!strncmp(p, keys[k], strlen(keys[k]))) hit = k;
    if (hit >= 0) {
      len += strlen(vals[hit]);
      p += strlen(keys[hit]);
    } else p++;
  }
  PetscCall(PetscMalloc1(len, out));
  char *o = *out;
  for (const char *p = item; *p;) {
    int hit = -1;
    for (int k = 0; k < 3; k++)
      if (!strncmp(p, keys[k], strlen(keys[k]))) hit = k;
    if (hit >= 0) {
      size_t l = strlen(vals[hit]);
      memcpy(o, vals[hit], l);
      o += l;
      p += strlen(keys[hit]);
    } else *o++ = *p++;
  }
  *o = 0;
  PetscFunctionReturn(0);
}

/* ---- the evaluator ---- */


static PetscErrorCode MapEvaluatorSetUp_Command(MapEvaluator ev)
{
  MapEval_Command *m = (MapEval_Command *)ev->data_impl;
  MapStore         store;
  int              nt, T;
  int64_t          P;
  int              rank;

  PetscFunctionBegin;
  PetscCheck(ev->command[0], ev->comm, PETSC_ERR_ARG_WRONG, "-map_eval_type command needs -map_eval_command 'prog ... {model} ... {task}'");
  PetscCheck(ev->model, ev->comm, PETSC_ERR_ARG_NULL, "the command evaluator needs a model (-map_store)");
  PetscCall(MapEvalCommandSplit(ev->command, &m->argc, &m->argv));
  PetscCheck(m->argc > 0, ev->comm, PETSC_ERR_ARG_WRONG, "-map_eval_command is empty");
  PetscCheck(strstr(ev->command, "{model}"), ev->comm, PETSC_ERR_ARG_WRONG,
             "-map_eval_command \"%s\" has no {model}: the program would not know which model to evaluate", ev->command);
  PetscCheck(!strstr(ev->command, "{data}") || ev->ndata == ev->T, ev->comm, PETSC_ERR_ARG_WRONG,
             "-map_eval_command uses {data} but -map_eval_data gives %d eval set(s) for %d tasks", ev->ndata, ev->T);
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  PetscCall(MapModelGetStore(ev->model, &store));
  PetscCall(MapStoreGetSizes(store, &P, &T, &nt));
  PetscCall(MapEvalMakePrivateDir(ev, store, m->dir, sizeof(m->dir)));
  MapEvalLogName(ev, ev->logdir[0] ? ev->logdir : m->dir, "eval-command", m->log, sizeof(m->log));
  if (!rank) {
    m->logfd = open(m->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (m->logfd < 0) PetscCall(PetscInfo(NULL, "cannot open the command log %s: %s\n", m->log, strerror(errno)));
    else if (!ev->logdir[0]) PetscCall(MapTempRegister(m->log));
  }
  /* tensor lists: the store's merged tensors, then the task's private tensors */
  m->nmerged = nt;
  PetscCall(PetscCalloc2(ev->T, &m->priv, ev->T, &m->npriv));
  int     maxpriv = 0;
  char ***pnames;
  PetscCall(PetscCalloc1(ev->T, &pnames));
  for (int t = 0; t < ev->T; t++) {
    int st;
    PetscCall(MapStoreFindTask(store, ev->tasks[t], &st));
    PetscCall(MapStoreGetPrivateNames(store, st, &m->npriv[t], &pnames[t]));
    maxpriv = PetscMax(maxpriv, m->npriv[t]);
  }
  m->n = nt + maxpriv;
  PetscCall(PetscCalloc1((size_t)ev->T * m->n + 1, &m->infos));
  for (int t = 0; t < ev->T; t++) {
    MapTensorInfo *inf = m->infos + (size_t)t * m->n;
    int            st;
    PetscCall(MapStoreFindTask(store, ev->tasks[t], &st));
    for (int i = 0; i < nt; i++) {
      const MapStoreTensor *s;
      PetscCall(MapStoreGetTensor(store, i, &s));
      PetscCall(PetscStrncpy(inf[i].name, s->name, sizeof(inf[i].name)));
      inf[i].dtype = MAP_DTYPE_F32; /* the merge is computed in F32; the external program may cast */
      inf[i].ndim  = s->ndim;
      for (int k = 0; k < s->ndim; k++) inf[i].shape[k] = s->shape[k];
      inf[i].numel = s->numel;
    }
    PetscCall(PetscCalloc1(m->npriv[t] + 1, &m->priv[t]));
    for (int j = 0; j < m->npriv[t]; j++) {
      MapTensorInfo *x     = &inf[nt + j];
      int64_t        numel = 1;
      PetscCall(MapStoreReadPrivate(store, st, pnames[t][j], &x->ndim, x->shape, &m->priv[t][j]));
      for (int k = 0; k < x->ndim; k++) numel *= x->shape[k];
      PetscCall(PetscStrncpy(x->name, pnames[t][j], sizeof(x->name)));
      x->dtype        = MAP_DTYPE_F32;
      x->numel        = numel;
      PetscBool clash = PETSC_FALSE;
      for (int i = 0; i < nt; i++)
        if (!strcmp(inf[i].name, x->name)) clash = PETSC_TRUE;
      PetscCheck(!clash, ev->comm, PETSC_ERR_ARG_WRONG, "task %s: private tensor %s has the name of a merged tensor", ev->tasks[t], x->name);
    }
    PetscCall(MapFreeList(m->npriv[t], &pnames[t]));
  }
  PetscCall(PetscFree(pnames));
  PetscFunctionReturn(0);
}

/* the merged model at c plus task t's private tensors to path, every rank its own shard, block by
   block (MapModelWriteMerged: from memory, or from the store with -map_eval_stream); a non-finite
   merge fails on every rank before the file is complete, and the file is removed */
static PetscErrorCode WriteModel(MapEvaluator ev, MapEval_Command *m, int t, const double *c, const char *path)
{
  MapSafetensorsWriter w;
  MapTensorInfo       *inf     = m->infos + (size_t)t * m->n;
  const char          *keys[2] = {"mapmerge_task", "mapmerge_version"}, *vals[2] = {ev->tasks[t], MAPMERGE_VERSION};
  int                  rank;
  PetscErrorCode       ierr;

  PetscFunctionBegin;
  PetscCheck(!strstr(ev->command, "{data}") || ev->ndata == ev->T, ev->comm, PETSC_ERR_ARG_WRONG,
             "-map_eval_command uses {data} but -map_eval_data gives %d eval set(s) for %d tasks", ev->ndata, ev->T);
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  PetscCall(MapSafetensorsWriterCreate(ev->comm, path, m->nmerged + m->npriv[t], inf, 2, keys, vals, 0, &w));
  ierr = MapModelWriteMerged(ev->model, c, ev->block_mb, w); /* never score or hand out a NaN model */
  if (ierr) {
    PetscCall(MapSafetensorsWriterAbort(&w));
    PetscCall(ierr);
  }
  if (!rank)
    for (int j = 0; j < m->npriv[t]; j++) PetscCall(MapSafetensorsWriterWriteF32(w, m->nmerged + j, 0, inf[m->nmerged + j].numel, m->priv[t][j]));
  PetscCall(MapSafetensorsWriterClose(&w));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorEvaluate_Command(MapEvaluator ev, const double *c, MapTaskMetrics *metrics)
{
  MapEval_Command *m = (MapEval_Command *)ev->data_impl;
  int              rank;
  char             path[MAP_PATH_LEN];
  struct {
    int            status;
    MapTaskMetrics met;
    char           msg[8192];
  } * res;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  PetscCall(PetscNew(&res));
  for (int t = 0; t < ev->T; t++) {
    if (!MapEvalWanted(ev, t)) continue;
    {
      /* a fresh unique name per evaluation, made on rank 0 and shared: the ranks write it together */
      int fd = -1;
      if (!rank) {
        snprintf(path, sizeof(path), "%s/model-%d-XXXXXX.safetensors", m->dir, t);
        fd = mkstemps(path, (int)strlen(".safetensors"));
        if (fd >= 0) close(fd);
        else snprintf(res->msg, sizeof(res->msg), "cannot create the evaluator's model file in %s: %s", m->dir, strerror(errno));
      }
      PetscCallMPI(MPI_Bcast(&fd, 1, MPI_INT, 0, ev->comm));
      PetscCallMPI(MPI_Bcast(path, (int)sizeof(path), MPI_CHAR, 0, ev->comm));
      if (fd < 0) {
        PetscCallMPI(MPI_Bcast(res->msg, (int)sizeof(res->msg), MPI_CHAR, 0, ev->comm));
        SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s", res->msg);
      }
      if (!rank) PetscCall(MapTempRegister(path)); /* removed on any error path */
    }
    {
      PetscErrorCode ierr = WriteModel(ev, m, t, c, path);
      if (ierr) { /* a non-finite merge or a write error: no model file is left behind */
        if (!rank) {
          (void)unlink(path);
          PetscCall(MapTempUnregister(path));
        }
        PetscCall(PetscFree(res));
        PetscCall(ierr);
      }
    }
    PetscCall(PetscLogEventBegin(MAP_EVENT_EvalLoss, 0, 0, 0, 0));
    if (!rank) {
      char **argv;
      PetscCall(PetscCalloc1(m->argc + 1, &argv));
      for (int k = 0; k < m->argc; k++)
        PetscCall(MapEvalCommandSubstitute(m->argv[k], path, ev->tasks[t], ev->ndata ? ev->data[t] : NULL, &argv[k]));
      PetscCall(PetscMemzero(res, sizeof(*res)));
      MapEvalApplyGPU(ev);
      res->status = MapEvalRunCommand(argv, ev->timeout, ev->tasks[t], ev->metric.name, m->logfd, &res->met, res->msg, sizeof(res->msg));
      for (int k = 0; k < m->argc; k++) PetscCall(PetscFree(argv[k]));
      PetscCall(PetscFree(argv));
      (void)unlink(path);
      PetscCall(MapTempUnregister(path));
    }
    PetscCall(MapBcastPolitely(res, (int)sizeof(*res), 0, ev->comm)); /* the other ranks sleep while the program runs */
    PetscCall(PetscLogEventEnd(MAP_EVENT_EvalLoss, 0, 0, 0, 0));
    if (res->status == 2) PetscCall(MapEvalCheckInterrupted(ev, res->msg));
    if (res->status) {
      char msg[8192];
      PetscCall(PetscStrncpy(msg, res->msg, sizeof(msg)));
      PetscCall(PetscFree(res));
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_LIB, "%s", rank ? "the evaluation command failed (see rank 0's message)" : msg);
    }
    metrics[t] = res->met;
  }
  PetscCall(PetscFree(res));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorDestroy_Command(MapEvaluator ev)
{
  MapEval_Command *m = (MapEval_Command *)ev->data_impl;

  PetscFunctionBegin;
  if (!m) PetscFunctionReturn(0);
  if (m->logfd >= 0) {
    close(m->logfd);
    if (!ev->logdir[0]) {
      (void)unlink(m->log);
      PetscCall(MapTempUnregister(m->log));
    }
  }
  if (m->dir[0]) {
    int rank;
    PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
    if (!rank) {
      (void)rmdir(m->dir);
      PetscCall(MapTempUnregister(m->dir));
    }
  }
  PetscCall(MapFreeList(m->argc, &m->argv));
  if (m->priv)
    for (int t = 0; t < ev->T; t++) {
      if (!m->priv[t]) continue;
      for (int j = 0; j < m->npriv[t]; j++) PetscCall(PetscFree(m->priv[t][j]));
      PetscCall(PetscFree(m->priv[t]));
    }
  PetscCall(PetscFree2(m->priv, m->npriv));
  PetscCall(PetscFree(m->infos));
  PetscCall(PetscFree(ev->data_impl));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapEvaluatorView_Command(MapEvaluator ev, PetscViewer viewer)
{
  MapEval_Command *m = (MapEval_Command *)ev->data_impl;

  PetscFunctionBegin;
  PetscCall(MapEvalViewExternal(ev, viewer, "-map_eval_command", ev->command, m->log));
  PetscFunctionReturn(0);
}

PetscErrorCode MapEvaluatorCreate_Command(MapEvaluator ev)
{
  MapEval_Command *m;

  PetscFunctionBegin;
  PetscCall(PetscNew(&m));
  m->logfd         = -1;
  ev->data_impl    = m;
  ev->ops.setup    = MapEvaluatorSetUp_Command;
  ev->ops.evaluate = MapEvaluatorEvaluate_Command;
  ev->ops.destroy  = MapEvaluatorDestroy_Command;
  ev->ops.view     = MapEvaluatorView_Command;
  PetscFunctionReturn(0);
}
