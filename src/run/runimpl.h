/* Private to the run module: the journal, results writing and the run manifest. */
#ifndef MAPMERGE_RUNIMPL_H
#define MAPMERGE_RUNIMPL_H

#include <mapmerge/run.h>
#include <mapmerge/core_h5.h>
#include <jansson.h>

PetscErrorCode MapRunReadManifest(MPI_Comm comm, const char *path, const char *who, json_t **manifest, json_t **map_options);

/* Journal: one line per finished evaluation, "<json>\t<sha256(json)>\n", appended and fsync'ed by
   rank 0 before the next evaluation starts. A torn last line (crash mid-write) fails its checksum
   and is dropped on resume; every other mismatch is an error. */
typedef struct {
  char   kind[16]; /* "sample", "reeval", "pick" */
  int    index;
  int    T;
  double c[MAP_MAX_TASKS];
  double acc[MAP_MAX_TASKS], loss[MAP_MAX_TASKS];
  int    failed; /* a metric of an evaluated task was not finite (journaled as null) */
} MapJournalEntry;

typedef struct {
  char             path[MAP_PATH_LEN];
  int              n, cap;
  MapJournalEntry *entries;
  int              lockfd;      /* rank 0: the flock on "<path>.lock", held while the journal is open */
  int              T;           /* metrics per entry */
  char           **tasks;       /* their names, for messages (borrowed) */
  PetscBool        replay_only; /* evaluations must come from the journals (earlier levels of a chain) */
  char             folder[MAP_PATH_LEN];
  char             metric[64]; /* the name of the value in acc (-map_metric; "accuracy" by default), for messages */
  PetscBool        with_loss;  /* the loss must be finite too (the default metric fits it beside the accuracy) */
} MapJournal;

PetscErrorCode MapJournalOpen(MPI_Comm comm, const char *path, PetscBool resume, MapJournal *j);
/* MapJournalOpenWithOthers - also loads the entries of other journal files (a nested-MAP chain's
   jobs each append to their own file in the shared run folder). Collective.
   binding (JSON text, or NULL): what produced the journal (store hash, tasks, evaluator, design),
   written as its first line and compared on resume; a mismatch is an error that says what differs.
   Rank 0 holds an advisory lock on "<path>.lock" until MapJournalClose: a second run is refused. */
PetscErrorCode MapJournalOpenWithOthers(MPI_Comm comm, const char *path, PetscBool resume, int nothers, char **others, const char *binding,
                                        MapJournal *j);
/* MapJournalFind - the entry for (kind, index) whose c matches bit for bit, or NULL; an entry with
   that key but other coefficients is an error (the run's design changed). Not collective. */
PetscErrorCode MapJournalFind(MapJournal *j, const char *kind, int index, int T, const double *c, const MapJournalEntry **e);
/* MapJournalAppend - collective; rank 0 appends and fsyncs; failed marks a non-finite metric. */
PetscErrorCode MapJournalAppend(MPI_Comm comm, MapJournal *j, const char *kind, int index, int T, const double *c,
                                const double *acc, const double *loss, PetscBool failed);
PetscErrorCode MapJournalClose(MapJournal *j);
/* MapJournalSetTasks - what MapJournalEvaluate records: T metrics per entry, named tasks (borrowed), for the run folder */
void MapJournalSetTasks(MapJournal *j, int T, char **tasks, const char *folder);
/* MapJournalSetMetric - the value the evaluator's metrics[].metric holds (-map_metric's name) and
   whether its loss must be finite too */
void MapJournalSetMetric(MapJournal *j, const char *name, PetscBool with_loss);
/* MapJournalEvaluate - the metrics at c: from the journal when it has them, else evaluated by ev on
   comm and journaled at once (rank 0 of comm appends). want (NULL: all tasks): the tasks evaluated;
   the others are NaN in acc/loss and null in the journal. acc holds -map_metric's values.
   A non-finite or missing metric is journaled as failed; failed == NULL: then an error; else *failed
   is set, acc is NaN and the caller leaves the point out (a resume reads it as done, not retried).
   Collective on comm. */
PetscErrorCode MapJournalEvaluate(MapJournal *j, MPI_Comm comm, MapEvaluator ev, const char *kind, int index, const double *c,
                                  const PetscBool *want, double *acc, double *loss, PetscBool *fresh, PetscBool *failed);
/* MapJournalMetricValues - acc[T], loss[T] from the evaluator's metrics; the first wanted task whose
   value is unusable (a failed point), or -1 */
int MapJournalMetricValues(const MapJournal *j, const PetscBool *want, const MapTaskMetrics *m, double *acc, double *loss);
/* MapJournalFirstUnusable - the first task (all tasks, or only `task` when >= 0) whose metric, or loss
   where the metric needs it, is not finite: a failed point; -1 when none */
int MapJournalFirstUnusable(const MapJournal *j, int task, const double *acc, const double *loss);

/* Signals: SIGUSR1/SIGTERM set a flag (MapRunCatchSignals, run.h); MapSignalPending agrees on it
   across ranks (collective). */
PetscErrorCode MapSignalPending(MPI_Comm comm, PetscBool *pending);

/* A node of Nested MAP's merge tree: a model given by coefficients W[T] over the original task
   vectors, carrying the tasks in its mask. */
typedef struct {
  int    left, right, level; /* children (-1 for a leaf) */
  int    ntask;
  int    tasks[MAP_MAX_TASKS]; /* the original tasks it carries */
  double W[MAP_MAX_TASKS];     /* coefficients over the original T task vectors */
  double c[2];                 /* chosen pair coefficients (c_left, c_right) */
  double pred[2], real[2];     /* predicted and real side objectives at the pick */
  double metric;               /* preference-weighted mean accuracy over its tasks (real) */
  int    front_size, evaluations;
  int    from_sample; /* 1 when an evaluated sample of the pair beat the surrogate's pick */
} MapNestedNode;

/* the run's phases: a PETSc log stage each (-log_view) and a wall-clock total for the summary */
typedef enum { MAP_RUN_SETUP,
               MAP_RUN_EVALUATE,
               MAP_RUN_FIT,
               MAP_RUN_SEARCH,
               MAP_RUN_REEVALUATE,
               MAP_RUN_WRITE,
               MAP_RUN_NPHASE } MapRunPhase;
extern const char *const MapRunPhaseNames[MAP_RUN_NPHASE];

/* the most models one run may evaluate: sizes beyond it are typos, and products of them overflow */
#define MAP_RUN_MAX_EVALS 1000000

#include <mapmerge/surrogate.h>

/* run_metric.c: the metric MAP fits and searches (-map_metric): metric = off + scale * g(z) */
typedef struct {
  MapMetric metric;
  PetscBool is_default;       /* accuracy:higher:0,1: nothing is transformed (today's bits) */
  PetscBool with_loss;        /* accuracy: the loss surrogates are fitted beside it */
  MapLink   link;             /* sigmoid (bounded range), softplus (one bound), identity (none) */
  double    off, scale, sign; /* sign = -1: lower is better, the search maximises -metric */
  double   *front;            /* lower is better: the predicted front in the metric's units (report.Ff points here) */
} MapRunMetric;

/* -map_budget N (run_budget.c): the allocation and what was spent */
typedef struct {
  PetscInt  total;    /* N; 0: no budget */
  PetscInt  design_n; /* -map_budget_design (0: automatic) */
  double    reeval_fraction;
  PetscBool spread_objectives; /* spread front points in predicted accuracies, not coefficients */
  PetscInt  design, reserve, round_points, planned_rounds;
  PetscInt  rounds, refined;        /* adaptive rounds done and the points they evaluated */
  PetscInt  round_now, round_added; /* the current round's share and what it evaluated */
} MapRunBudget;

/* the options of a run, read once (MapRunSetFromOptions, run_options.c) */
typedef struct {
  char      store_path[MAP_PATH_LEN], out[MAP_PATH_LEN], method[32];
  PetscInt  reevaluate;
  PetscInt  seed; /* the sampler's -map_seed and -map_box, copied */
  double    lo, hi;
  double    pref[MAP_MAX_TASKS];
  int       npref;
  PetscBool resume;
  PetscInt  bayes_iterations, bayes_batch; /* Bayesian MAP's rounds */
  PetscInt  refine, refine_points;         /* refinement rounds along the predicted front */
  PetscBool refine_pick;                   /* -map_refine_target pick: each round evaluates the pick */
  PetscBool bayes_per_task;                /* -map_bayes_evaluate per_task: each round's points are evaluated on the task that drew them */
  char      test_data[65536];
  PetscInt  nested_samples;            /* design size per pair (0: the 2-task reference design) */
  PetscInt  nested_level, nested_pair; /* SLURM chain: compute only this pair of this level (0: all) */
} MapRunOptions;

/* MapSampleSet - every evaluated model of a run in evaluation order (the design, then each round's
   points; Nested MAP: every pair's samples). Grows on append. */
typedef struct {
  int        T;
  PetscInt   n, cap;
  double    *C, *acc, *loss; /* [n*T]; accuracy and loss NaN where not evaluated */
  double    *round;          /* [n]: 0 = initial design, k = Bayesian/refinement round k (nested: the tree node) */
  double    *task;           /* [n]: -1 = evaluated on every task, t = on task t only (per-task rounds) */
  PetscBool *failed;         /* [n]: the evaluation failed (non-finite or missing metric): out of the fit and the fronts */
} MapSampleSet;
/* MapSampleSetAppend - one more point c[T] (acc, loss: its metrics, or NULL for NaN until evaluated) */
PetscErrorCode MapSampleSetAppend(MapSampleSet *s, const double *c, const double *acc, const double *loss, int round, int task);
PetscErrorCode MapSampleSetDestroy(MapSampleSet *s);

/* what the run reports: the predicted front, its re-evaluated points, the real front, the pick and
   the best evaluated model */
typedef struct {
  PetscInt      kfront, kreal;
  const double *Cf, *Ff, *Wf;         /* front (borrowed from pareto) */
  int          *real_index;           /* [kreal] indices into the front */
  double       *real_acc, *real_loss; /* [kreal*T] */
  PetscInt      kall;                 /* "MAP real": non-dominated set of every evaluated model (samples + re-evaluations) */
  double       *all_c, *all_acc;      /* [kall*T] */
  double        pick_c[MAP_MAX_TASKS], pick_pred[MAP_MAX_TASKS], pick_acc[MAP_MAX_TASKS], pick_loss[MAP_MAX_TASKS];
  double        pick_test_acc[MAP_MAX_TASKS], pick_test_loss[MAP_MAX_TASKS];
  PetscBool     best_found;                                                             /* the best evaluated model for the preference, by the pick's criterion */
  double        best_c[MAP_MAX_TASKS], best_acc[MAP_MAX_TASKS], best_score, pick_score; /* scores: MapParetoPreferenceValue of real accuracies */
} MapRunReport;

/* Nested MAP's merge tree; node k < T is task k's fine-tuned model */
typedef struct {
  int           nnodes, root;
  MapNestedNode nodes[128];
} MapNestedTree;

/* how MapRunSolve ended */
typedef enum { MAP_RUN_SOLVING,
               MAP_RUN_COMPLETED,
               MAP_RUN_LEVEL_DONE,
               MAP_RUN_CHECKPOINTED } MapRunStatus;

struct _p_MapRun {
  MPI_Comm      comm;
  PetscMPIInt   rank, size;
  MapRunOptions opt;
  int           T;
  char        **tasks;
  /* objects */
  MapSampler    sampler; /* the design and Bayesian MAP's new points */
  MapStore      store;
  MapModel      model;
  MapEvaluator  ev, ev_test; /* selection on the val sets; held-out report on -map_test_data */
  MapSurrogate  sur;
  MapPareto     pareto;
  MapJournal    journal;
  MapSampleSet  samples;
  MapRunReport  report;
  MapRunMetric  metric;
  MapRunBudget  budget; /* -map_budget (run_budget.c) */
  MapNestedTree tree;
  MapRunStatus  status;
  double        t_phase[MAP_RUN_NPHASE], phase_t0; /* wall clock per phase; phase_t0: when the current one began */
  PetscLogStage stages[MAP_RUN_NPHASE];
  int           phase;          /* the phase begun and not ended, or -1 */
  PetscBool     nested_partial; /* this job stopped after its level: no results to write */
  int           neval_data;     /* the eval sets of the run's tasks (Nested MAP sets up one evaluator per rank group) */
  char        **eval_data;
  PetscBool     fitted;   /* surrogates and front exist (not for nested) */
  void         *evgroups; /* concurrent evaluator groups of command/worker (run_groups.c), NULL until used */
  char          start_time[64], end_time[64];
  char          store_digest[128]; /* "sha256-ranges-R:<hex>", taken by all ranks when the store was read (MapRunHashInputs) */
  char          store_sha256[65];  /* the plain sha256, only to resume a journal an older binary bound to it */
  json_t       *inputs_sha256;     /* path -> sha256 of every input file, for the manifest */
};
typedef struct _p_MapRun MapRunCtx;

/* run_phase.c: a phase's stage pushed and its clock started; popped and its time added */
PetscErrorCode MapRunPhaseBegin(MapRunCtx *r, MapRunPhase p);
PetscErrorCode MapRunPhaseEnd(MapRunCtx *r, MapRunPhase p);
/* run_options.c */
/* run_results.c: results.h5, front.csv and manifest.json; run_results_read.c: reading them back */
void           MapRunNow(char *buf, size_t len);
PetscErrorCode MapRunWriteResults(MapRunCtx *r);
/* a finished run's results.h5, read by rank 0 (info, export) */
typedef struct {
  hid_t       file;
  H5E_auto2_t efunc; /* HDF5's error reporting, silenced while the file is open */
  void       *edata;
} MapRunResults;
PetscErrorCode MapRunResultsOpen(const char *path, const char *who, MapRunResults *res);
void           MapRunResultsClose(MapRunResults *res);
PetscErrorCode MapRunResultsView(MPI_Comm comm, const char *where);
/* what `export -map_run` takes from a finished run's results.h5 (rank 0 reads, export broadcasts) */
typedef struct {
  int     T, F, K, nested;     /* nested: F = tree nodes */
  double *params;              /* [T*F] accuracy surrogates, or nested: [F*T] the tree's coefficients */
  double *front_acc, *front_c; /* [K*T] the real front, when asked for */
  char   *box, *method;        /* root attributes (PetscFree) */
  char    metric_spec[256];    /* -map_metric of the run (accuracy:higher:0,1 for runs without one) */
  char    tasks[65536];        /* comma-separated */
  int     has_pick;            /* /pick/preference and /pick/coeffs read: the run's own pick */
  double  pick_w[MAP_MAX_TASKS], pick_c[MAP_MAX_TASKS];
} MapRunResultsForExport;
PetscErrorCode MapRunResultsReadForExport(const char *run, const char *path, PetscBool front, MapRunResultsForExport *x, int *ok);

/* run_guard.c: inputs hashed when read, the journal's binding, outputs that are not inputs */
PetscErrorCode MapRunHashInputs(MapRunCtx *r);
PetscErrorCode MapRunBinding(MapRunCtx *r, char **binding);
PetscErrorCode MapRunBindLegacyStore(MapRunCtx *r, const char *journal);
PetscErrorCode MapRunCheckOutputsNotInputs(MapRunCtx *r);

/* run_groups.c: evaluations journaled in a fixed order; with -map_eval_groups G > 1 for command/worker
   evaluators, G at a time (one per evaluator group) */
typedef struct {
  const char   *kind;       /* journal kind: "sample", "reeval", "pick" */
  int           index;      /* journal index */
  const double *c;          /* [T] coefficients */
  int           task;       /* -1: every task; t: task t only */
  double       *acc, *loss; /* [T] out: -map_metric's values (NaN when failed) and the loss */
  PetscBool    *failed;     /* out, or NULL: the evaluation failed (journaled as such, left out of the fit) */
  PetscBool    *done;       /* non-NULL: the pick on the held-out sets (ev_test's), by a group's worker that can
                          (MapEvaluatorEvaluateOnDataOf), not journaled; *done says whether it could */
} MapRunEvalItem;
PetscErrorCode MapRunEvaluateItems(MapRunCtx *r, PetscInt nitem, const MapRunEvalItem *items, const char *label, PetscBool *stop);
PetscErrorCode MapRunEvaluateSampleRange(MapRunCtx *r, PetscInt i0, PetscInt i1, PetscBool *stop);
PetscErrorCode MapRunEvaluateFront(MapRunCtx *r, PetscBool *stop, PetscBool *tested);
PetscErrorCode MapRunEvaluateHeldOut(MapRunCtx *r, const double *c, MapTaskMetrics *m);
PetscErrorCode MapRunEvalGroupsDestroy(MapRunCtx *r);
PetscErrorCode MapRunCheckSignal(MapRunCtx *r, PetscBool *stop);
PetscErrorCode MapRunManifestRepro(MapRunCtx *r, json_t *manifest, json_t *inputs_sha256); /* run_repro.c */
PetscErrorCode MapRunNested(MapRunCtx *r, PetscBool *stop);
PetscErrorCode MapRunNestedView(MapRunCtx *r, PetscViewer viewer);
PetscErrorCode MapRunNestedWrite(MapRunCtx *r, hid_t file);

/* run_budget.c: -map_budget N. SetFromOptions after the sampler's options (run_options.c); Plan once
   T is known, before the design is drawn: the design size (MapSamplerSetSize), the rounds, the lattice */
PetscErrorCode MapRunBudgetSetFromOptions(MapRunCtx *r);
PetscErrorCode MapRunBudgetPlan(MapRunCtx *r);
PetscInt       MapRunBudgetLeft(MapRunCtx *r); /* evaluations not yet spent */
/* MapRunBudgetSpread - up to K of the m points X[m*T] whose predicted metrics lie farthest from every evaluated sample */
PetscErrorCode MapRunBudgetSpread(MapRunCtx *r, PetscInt m, const double *X, PetscInt K, PetscInt *sel, PetscInt *nsel);
PetscInt       MapRunBudgetReevaluateCap(MapRunCtx *r);
PetscErrorCode MapRunBudgetChooseReevaluations(MapRunCtx *r);
PetscErrorCode MapRunBudgetView(MapRunCtx *r, PetscViewer viewer);
PetscErrorCode MapRunBudgetJSON(MapRunCtx *r, json_t **o);
PetscErrorCode MapRunBudgetWrite(MapRunCtx *r, hid_t file);

/* run_metric.c */
void           MapRunMetricFrom(const MapMetric *mt, MapRunMetric *M);
PetscErrorCode MapRunMetricPredict(const MapRunMetric *M, int T, const double *theta, const double *c, double *f, double *J);
PetscErrorCode MapRunMetricSetUp(MapRunCtx *r);
PetscErrorCode MapRunObjectiveMetric(void *ctx, const double *c, double *f, double *J);
PetscErrorCode MapRunObjectiveMetricHessian(void *ctx, const double *c, const double *coef, double *H);
PetscBool      MapRunSampleFailed(MapRunCtx *r, PetscInt i);
PetscErrorCode MapRunFitMetric(MapRunCtx *r);
PetscErrorCode MapRunMetricFront(MapRunCtx *r);
int            MapRunMetricOriented(MapRunCtx *r, const double *y, double *f);
const char    *MapRunMetricGroup(MapRunCtx *r);
const char    *MapRunMetricShort(MapRunCtx *r);
PetscErrorCode MapRunMetricSummary(MapRunCtx *r, PetscViewer viewer);
PetscErrorCode MapRunMetricWrite(MapRunCtx *r, hid_t file);
PetscErrorCode MapRunMetricManifest(MapRunCtx *r, json_t *manifest);
PetscErrorCode MapRunMetricDestroy(MapRunCtx *r);

#endif
