/* Private to the worker evaluator (eval_worker.c: processes and the evaluator; eval_worker_json.c:
   the protocol's JSON lines). */
#ifndef MAPMERGE_EVALWORKER_H
#define MAPMERGE_EVALWORKER_H

#include "evalimpl.h"

#define MAP_WORKER_PROTOCOL 1
#define MAP_WORKER_MSG      8192

typedef struct {
  int            argc;
  char         **argv; /* the split -map_eval_worker template */
  PetscBool      coefmode;
  MapDType       dtype;               /* of the merged model file */
  int            nmerged;             /* store tensors */
  MapTensorInfo *infos;               /* [nmerged] */
  char           dir[MAP_PATH_LEN];   /* private folder (mkdtemp) */
  char           model[MAP_PATH_LEN]; /* dir/model.safetensors, rewritten per request */
  char         **priv;                /* [T] dir/private-<t>.safetensors ("" when the task has none) */
  char         **coef_tasks;          /* coefficients mode: the store task of each coefficient */
  int            ncoef;
  char           log[MAP_PATH_LEN];
  int64_t        nreq;
  /* rank 0: the running program */
  pid_t  pid;              /* 0 once reaped */
  int    data_per_request; /* its hello said it scores the data file each request names */
  pid_t  pgid;             /* its process group (= its first pid) until the whole tree is ended */
  int    in, out, logfd, nold;
  pid_t  old[64];
  char  *buf; /* unread stdout bytes */
  size_t len, cap;
} MapEval_Worker;

/* MapWorkerHelloLine, MapWorkerRequestLine - the protocol lines (malloc'ed, '\n'-terminated; NULL when out of memory) */
char *MapWorkerHelloLine(MapEvaluator ev, MapEval_Worker *m);
char *MapWorkerRequestLine(MapEvaluator ev, MapEval_Worker *m, const double *c);
/* MapWorkerParseAnswer - the metrics of the wanted tasks from the answer to request id; 1 with msg on
   garbage or an "error" answer */
int MapWorkerParseAnswer(MapEvaluator ev, const char *line, int64_t id, MapTaskMetrics *met, char *msg, size_t mlen);
/* MapWorkerCheckHello - 0 when the worker's hello line speaks our protocol, else 1 with msg;
   *data_per_request: it said it scores the data file each request names (optional key) */
int MapWorkerCheckHello(const char *line, int *data_per_request, char *msg, size_t mlen);

#endif
