/* Private to the eval module: the MapEvaluator object and the per-type implementations. */
#ifndef MAPMERGE_EVALIMPL_H
#define MAPMERGE_EVALIMPL_H

#include <mapmerge/eval.h>
#include <petscviewer.h>
#include <sys/types.h>

#define MAP_EVAL_TYPE_LEN 32
#define MAP_EVAL_CMD_LEN  4096

typedef struct {
  PetscErrorCode (*setup)(MapEvaluator);
  PetscErrorCode (*evaluate)(MapEvaluator, const double *, MapTaskMetrics *);
  PetscErrorCode (*destroy)(MapEvaluator);
  PetscErrorCode (*view)(MapEvaluator, PetscViewer); /* the type's own lines of MapEvaluatorView; may be NULL */
} MapEvaluatorOps;

struct _p_MapEvaluator {
  MPI_Comm         comm;
  char             type[MAP_EVAL_TYPE_LEN];
  MapEvaluatorOps  ops;
  PetscBool        setupcalled;
  MapModel         model; /* referenced, not owned; NULL for analytic */
  int              T;     /* evaluation tasks (metrics[T]) */
  int              Tc;    /* length of the coefficient vector (the model's basis size; T for analytic) */
  char           **tasks; /* [T] names */
  int              ndata;
  char           **data;                      /* [ndata] eval-set files, ndata == T after SetUp (mlp) */
  PetscInt         groups;                    /* -map_eval_groups, 0 = automatic */
  PetscInt         batch;                     /* -map_eval_batch: samples per batch (fixed => same bits) */
  PetscInt         rowblock;                  /* -map_eval_row_block: rows per BLAS call (fixed => same bits) */
  char             kernel[16];                /* -map_eval_kernel blas|ref|fixed */
  char             command[MAP_EVAL_CMD_LEN]; /* -map_eval_command template */
  PetscReal        timeout;                   /* -map_eval_timeout seconds */
  char             tmpdir[MAP_PATH_LEN];      /* -map_eval_tmpdir for the command evaluator's model file */
  PetscBool        stream;                    /* -map_eval_stream: model files merged from the store block by block */
  PetscReal        block_mb;                  /* -map_eval_block_mb: MiB of merge buffers per rank for a model file */
  char             problem[64];               /* -map_analytic_problem */
  char             worker[MAP_EVAL_CMD_LEN];  /* -map_eval_worker argv template (worker type) */
  char             worker_mode[16];           /* -map_eval_worker_mode model|coefficients */
  char             worker_dtype[16];          /* -map_eval_worker_dtype store|f32|bf16|f16 */
  char             gpus[1024];                /* -map_eval_gpus 0,1,...: CUDA_VISIBLE_DEVICES of group g is entry g mod n */
  int              group;                     /* MapEvaluatorSetGroup: concurrent evaluator group, -1 = none */
  char             cuda[64];                  /* the CUDA_VISIBLE_DEVICES its programs get ("" = inherited) */
  char             logdir[MAP_PATH_LEN];      /* MapEvaluatorSetLogDir: where the program's stderr log goes ("" = the private folder) */
  MapMetric        metric;                    /* -map_metric: what every evaluation must report (command/worker: its JSON key) */
  PetscInt         nevaluated;                /* evaluations done: the first one checks that the metric is reported at all */
  void            *data_impl;                 /* type-specific */
  const PetscBool *want;                      /* during MapEvaluatorEvaluateTasks: the wanted tasks (NULL: all) */
};

/* MapEvalWanted - whether task t is evaluated by the current call */
static inline PetscBool MapEvalWanted(MapEvaluator ev, int t) { return !ev->want || ev->want[t] ? PETSC_TRUE : PETSC_FALSE; }

/* The external program's process tree (eval_proctree.c). MapEvalBecomeSubreaper: orphaned
   descendants (setsid, double fork) are re-parented to this process, so they stay findable.
   MapEvalChildrenNow: this process's children now (to leave alone later). MapEvalKillTree: SIGKILL
   the group pgid and every live descendant not under one of old[], reaping them; returns how many
   were still alive after 5 s. Rank-local, plain C. */
void MapEvalBecomeSubreaper(void);
int  MapEvalChildrenNow(pid_t *kids, int max);
int  MapEvalKillTree(pid_t pgid, const pid_t *old, int nold);

/* the query set by MapEvalSetInterruptQuery (0 when none is set) */
int MapEvalInterrupted(void);

/* the built-in types' constructors, registered by MapEvaluatorInitializePackage (eval.c) */
PetscErrorCode MapEvaluatorCreate_MLP(MapEvaluator ev);
PetscErrorCode MapEvaluatorCreate_Command(MapEvaluator ev);
PetscErrorCode MapEvaluatorCreate_LM(MapEvaluator ev);
PetscErrorCode MapEvaluatorCreate_Worker(MapEvaluator ev);

/* ---- helpers shared by the command and worker evaluators (eval_command.c) ---- */

/* MapEvalTailLines - the last `lines` lines of text (a pointer into it; "" for NULL) */
const char *MapEvalTailLines(const char *text, int lines);
/* MapEvalNow - monotonic seconds */
double MapEvalNow(void);
/* MapEvalMakePrivateDir - collective: rank 0 makes a private folder (mkdtemp) for temporary models
   (see -map_eval_tmpdir), registered for removal; every rank gets its name */
PetscErrorCode MapEvalMakePrivateDir(MapEvaluator ev, MapStore store, char *dir, size_t dirlen);
/* MapEvalCheckInterrupted - collective: PETSC_ERR_SIG when the run itself was signalled (a program
   killed by the job step's signal is an interruption, not a failed evaluation) */
PetscErrorCode MapEvalCheckInterrupted(MapEvaluator ev, const char *msg);
/* MapEvalApplyGPU - rank-local, just before a program starts: sets CUDA_VISIBLE_DEVICES for the group */
void MapEvalApplyGPU(MapEvaluator ev);
/* MapEvalLogName - the log file of this evaluator's program: <dir>/<base>.log, or <base>-<group>.log in a group */
void MapEvalLogName(MapEvaluator ev, const char *dir, const char *base, char *path, size_t len);
/* MapEvalViewExternal - the lines of MapEvaluatorView the command and worker types share: the
   program template (named by its option), timeout, GPUs, temporary folder and log file */
PetscErrorCode MapEvalViewExternal(MapEvaluator ev, PetscViewer viewer, const char *option, const char *tmpl, const char *log);
/* MapEvalLogTail - the last `lines` lines of the log file at path, into buf (rank-local) */
void MapEvalLogTail(const char *path, int lines, char *buf, size_t len);

/* ---- helpers shared by the mlp and reference evaluators (eval_mlp.c) ---- */

/* MapEvalSoftmaxCE - stable softmax cross-entropy in double of one sample's logits z[C] (stride
   `stride` between classes) with label y; *pred = first index of the maximum (torch.argmax). */
double MapEvalSoftmaxCE(int C, const float *z, int64_t stride, int64_t y, int *pred);

/* MapEvalCommandSplit - splits a command template into argv items on unquoted whitespace;
   '...' and "..." group (quotes removed; no escapes inside '...', \" and \\ inside "...").
   Free with MapFreeList(*argc, argv). */
PetscErrorCode MapEvalCommandSplit(const char *tmpl, int *argc, char ***argv);
/* MapEvalCommandSubstitute - replaces {model}, {task}, {data} inside one item (new string, PetscFree). */
PetscErrorCode MapEvalCommandSubstitute(const char *item, const char *model, const char *task, const char *data, char **out);
/* MapEvalRunCommand - rank-local: runs argv (posix_spawnp, no shell) with a timeout, captures
   stdout/stderr and parses the metrics from the last non-empty stdout line. On failure returns a
   non-zero status and a message in msg (no PETSc error: the caller agrees on it collectively): 2 when
   the program died of a signal it was not sent (exit status > 128 included), else 1.
   logfd >= 0: the program's stderr is appended there (eval-command.log), after a line naming the task. */
int MapEvalRunCommand(char *const *argv, double timeout, const char *task, const char *metric, int logfd, MapTaskMetrics *m, char *msg, size_t msglen);
/* MapEvalReadMetrics - rank-local: fills m from a program's JSON object o for the metric named metric:
   accuracy and loss when present (NaN otherwise), metric = o[metric], missing when the metric (or,
   for accuracy, the loss) is absent. A value may be a number or null (NaN: a failed point). 1 with
   msg when a present value is neither. */
int MapEvalReadMetrics(void *o, const char *metric, const char *task, MapTaskMetrics *m, char *msg, size_t msglen);
/* MapEvalJsonNonFinite - a copy of text (free) with the bare tokens NaN, Infinity and -Infinity
   (Python's json.dumps of a diverged model) outside strings replaced by null, so a strict JSON
   parser reads them as "no value"; NULL when out of memory */
char *MapEvalJsonNonFinite(const char *text);
/* MapEvalCheckMetrics - after each evaluation (collective): fills metric for the built-in types and
   checks range and presence (eval_metric.c) */
PetscErrorCode MapEvalCheckMetrics(MapEvaluator ev, const PetscBool *want, MapTaskMetrics *metrics);

#endif
