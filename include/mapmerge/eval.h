/* Evaluators: merged model -> per-task metrics (docs/design.md §4). Types:
 *   mlp      built-in model-parallel MLP forward pass over the sharded parameters
 *   command  an external program receives the merged model as safetensors (argv, no shell)
 *   worker   a persistent external program answers one JSON request per model (docs/evaluators-external.md)
 *   analytic closed-form test problems in c with known Pareto fronts
 *   lm       built-in tensor-parallel GPT-2/Llama language model (docs/lm.md)
 * and any type added with MapEvaluatorRegister. */
#ifndef MAPMERGE_EVAL_H
#define MAPMERGE_EVAL_H

#include <mapmerge/merge.h>

typedef struct {
  double  accuracy; /* fraction in [0,1] */
  double  loss;     /* mean loss */
  int64_t correct;  /* exact count of correct predictions (mlp; command: its "correct" key, else 0) */
  int64_t count;    /* number of samples (mlp; command: its "count" key, else 0) */
  double  metric;   /* the value of the evaluator's metric (-map_metric, default accuracy); NaN when not reported or not finite */
  int     missing;  /* command/worker: the program's output had no value for the metric (or, for accuracy, for the loss) */
} MapTaskMetrics;

/* MapMetric - what MAP fits and searches (-map_metric NAME:higher|lower[:lo,hi], default
   accuracy:higher:0,1): a name (accuracy and loss for the built-in evaluators; any key of the
   command/worker program's JSON), a direction and a declared range (lo or hi may be open: -inf/inf). */
typedef struct {
  char      name[64];
  PetscBool lower; /* lower is better (loss, perplexity); the search minimises */
  double    lo, hi;
} MapMetric;

/* MapMetricParse - "NAME:higher|lower[:lo,hi]" (lo or hi may be empty: "perplexity:lower:0,"); errors
   name -map_metric and the text. Not collective (call with the same text on every rank). */
PetscErrorCode MapMetricParse(const char *spec, MapMetric *m);
/* MapMetricFormat - the canonical text of m ("loss:lower:0,"), as recorded in the manifest and journal */
void MapMetricFormat(const MapMetric *m, char *buf, size_t len);
/* MapMetricIsDefault - accuracy:higher:0,1, today's behaviour bit for bit */
PetscBool MapMetricIsDefault(const MapMetric *m);

typedef struct _p_MapEvaluator *MapEvaluator;

/* Life cycle: Create, SetType or SetFromOptions (-map_eval_type, -map_eval_view, -map_eval_data, -map_eval_groups,
   -map_eval_batch, -map_eval_row_block, -map_eval_kernel blas|ref, -map_eval_command,
   -map_eval_worker, -map_eval_worker_mode, -map_eval_worker_dtype, -map_eval_gpus,
   -map_eval_timeout, -map_eval_tmpdir, -map_analytic_problem), SetUp, Evaluate*, Destroy.
   mlp metrics are the same bits for any rank count and -map_eval_groups, given the same
   -map_eval_batch, -map_eval_row_block and -map_eval_kernel. */
PetscErrorCode MapEvaluatorCreate(MPI_Comm comm, MapEvaluator *ev);
/* MapEvaluatorRegister - adds a type by name (PETSc's XxxRegister): create(ev) fills the evaluator's
   ops and data (src/eval/evalimpl.h); -map_eval_type name selects it. The built-in types are registered
   by MapEvaluatorInitializePackage (called by Create and Register). Not collective. */
PetscErrorCode MapEvaluatorRegister(const char name[], PetscErrorCode (*create)(MapEvaluator));
PetscErrorCode MapEvaluatorInitializePackage(void);
/* MapEvaluatorSetType - a registered type; an unknown name is an error listing the registered ones */
PetscErrorCode MapEvaluatorSetType(MapEvaluator ev, const char *type);
PetscErrorCode MapEvaluatorSetFromOptions(MapEvaluator ev);
/* MapEvaluatorCreateModel - collective: the model of the store tasks tasks[ntask] this evaluator
   merges: in memory, or streamed from the store with -map_eval_stream (command and worker only). */
PetscErrorCode MapEvaluatorCreateModel(MapEvaluator ev, MapStore store, int ntask, const int *tasks, MapModel *model);
/* MapEvaluatorSetUp - collective. T task names (the order of metrics[]) and, for mlp, T eval-set
   files (NULL: those of -map_eval_data / MapEvaluatorSetEvalData; their count must be T). The
   coefficient vector has the model's length (MapModelGetNumCoefficients; usually T, with the same
   order); model may be NULL for analytic. Task heads are the store's private head.weight/head.bias
   of the task of that name. */
PetscErrorCode MapEvaluatorSetUp(MapEvaluator ev, MapModel model, int T, const char *const *task_names,
                                 const char *const *eval_data);
/* MapEvalSetInterruptQuery - fn() returns the signal that asked the process to stop, or 0 (run sets
   MapRunSignalCaught). The command evaluator asks it when its program dies of a signal: an
   interrupted job step ends with PETSC_ERR_SIG (exit 85), not a failed evaluation. Not collective. */
void MapEvalSetInterruptQuery(int (*fn)(void));
/* MapEvaluatorSetLogDir - before SetUp: the folder (the run folder) where the command and worker
   evaluators append their program's stderr (eval-command.log, eval-worker.log); default: the
   evaluator's private temporary folder. Not collective. */
PetscErrorCode MapEvaluatorSetLogDir(MapEvaluator ev, const char *dir);
/* MapEvaluatorSetGroup - before SetUp: this evaluator is concurrent group g (of -map_eval_groups):
   {group} in -map_eval_command/-map_eval_worker becomes g, its programs get CUDA_VISIBLE_DEVICES from
   entry g of -map_eval_gpus, its log is eval-<type>-<g>.log. Not collective. */
PetscErrorCode MapEvaluatorSetGroup(MapEvaluator ev, int g);
/* MapEvaluatorSetEvalData - override the eval-set files (e.g. val vs test) before SetUp */
PetscErrorCode MapEvaluatorSetEvalData(MapEvaluator ev, int T, const char *const *eval_data);
/* MapEvaluatorEvaluate - collective: merges at c[T] and fills metrics[T]; identical on all ranks
   and the same bits for any rank count. */
PetscErrorCode MapEvaluatorEvaluate(MapEvaluator ev, const double *c, MapTaskMetrics *metrics);
/* MapEvaluatorEvaluateTasks - the same for the tasks with want[t] true only (want == NULL: all):
   the merge is done once, forward passes (or commands) run for the wanted tasks only, and the
   others get accuracy = loss = NaN, correct = count = 0. A wanted task's metrics are the same bits
   as MapEvaluatorEvaluate's. Collective; want[] must be the same on every rank. */
PetscErrorCode MapEvaluatorEvaluateTasks(MapEvaluator ev, const double *c, const PetscBool *want, MapTaskMetrics *metrics);
PetscErrorCode MapEvaluatorGetType(MapEvaluator ev, const char **type);
/* MapEvaluatorEvaluateOnDataOf - c scored by ev's running worker on other's eval sets (-map_eval_type
   worker whose worker said "data_per_request"); *done false when it cannot: evaluate with other. */
PetscErrorCode MapEvaluatorEvaluateOnDataOf(MapEvaluator ev, MapEvaluator other, const double *c, MapTaskMetrics *metrics, PetscBool *done);
/* MapEvaluatorView - type, tasks, coefficient count, eval-set files, rank groups and the type's own
   lines (viewer NULL: stdout). -map_eval_view [ascii:FILE] prints it after SetUp. Collective. */
PetscErrorCode MapEvaluatorView(MapEvaluator ev, PetscViewer viewer);
/* MapEvaluatorGetMetric - the metric read from -map_metric (borrowed). Every evaluation fills
   metrics[t].metric with it, and a finite value outside its range is an error that names the task,
   the value and -map_metric (a percentage scored against the default 0,1 fails at the first
   evaluation). A missing value at an evaluator's first evaluation is an error too (the program does
   not print that key); later it is a failed point (NaN). Not collective. */
PetscErrorCode MapEvaluatorGetMetric(MapEvaluator ev, const MapMetric **metric);
PetscErrorCode MapEvaluatorDestroy(MapEvaluator *ev);

/* Reference evaluator: plain double-precision, unsharded forward pass of the mlp (for tests). */
PetscErrorCode MapEvaluatorEvaluate_MLPRef(MapEvaluator ev, const double *c, MapTaskMetrics *metrics);

/* MapEvalBLASInfo - the BLAS library really linked at run time (path after symlinks, OpenBLAS
   config, core and threads when it is OpenBLAS), for the run manifest. Not collective. */
PetscErrorCode MapEvalBLASInfo(char *buf, size_t len);

/* Analytic problems (no model): metrics as functions of c, and their true Pareto fronts.
   problem: "quadratic" (concave quadratics, convex front), "nonconvex" (non-convex front). */
PetscErrorCode MapAnalyticEvaluate(const char *problem, int T, const double *c, MapTaskMetrics *metrics);
/* MapAnalyticTrueFront - n points of the true front in objective space (accuracy-like, maximised)
   *F [n*T] (PetscFree) */
PetscErrorCode MapAnalyticTrueFront(const char *problem, int T, int n, double **F);

#endif
