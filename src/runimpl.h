/* Private to the run module: the journal, results writing and the run manifest. */
#ifndef MAPMERGE_RUNIMPL_H
#define MAPMERGE_RUNIMPL_H

#include <mapmerge/run.h>
#include <jansson.h>

/* MapExportWriteMerged - export's merged tensors through w, read-merge-write in blocks of about
   block_mb MiB per rank (0: whole shard); checksums and finiteness agreed at the end (run_export_stream.c). */
PetscErrorCode MapExportWriteMerged(MapStore store, int ntask, const int *tasks, const double *c, double block_mb, MapSafetensorsWriter w);

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
  int              lockfd; /* rank 0: the flock on "<path>.lock", held while the journal is open */
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
  double c[2];               /* chosen pair coefficients (c_left, c_right) */
  double pred[2], real[2];   /* predicted and real side objectives at the pick */
  double metric;             /* preference-weighted mean accuracy over its tasks (real) */
  int    front_size, evaluations;
  int    from_sample;        /* 1 when an evaluated sample of the pair beat the surrogate's pick */
} MapNestedNode;

/* -map_budget N (run_budget.c): the allocation and what was spent */
typedef struct {
  PetscInt total;                    /* N; 0: no budget */
  PetscInt design_n;                 /* -map_budget_design (0: automatic) */
  double   reeval_fraction;
  PetscBool spread_objectives;       /* spread front points in predicted accuracies, not coefficients */
  PetscInt design, reserve, round_points, planned_rounds;
  PetscInt rounds, refined;          /* adaptive rounds done and the points they evaluated */
  PetscInt round_now, round_added;   /* the current round's share and what it evaluated */
} MapRunBudget;

#include <mapmerge/surrogate.h>

/* run_metric.c: the metric MAP fits and searches (-map_metric): metric = off + scale * g(z) */
typedef struct {
  MapMetric metric;
  PetscBool is_default; /* accuracy:higher:0,1: nothing is transformed (today's bits) */
  PetscBool with_loss;  /* accuracy: the loss surrogates are fitted beside it */
  MapLink   link;       /* sigmoid (bounded range), softplus (one bound), identity (none) */
  double    off, scale, sign; /* sign = -1: lower is better, the search maximises -metric */
  double   *front;      /* lower is better: the predicted front in the metric's units (r->Ff points here) */
} MapRunMetric;

typedef struct {
  MPI_Comm      comm;
  PetscMPIInt   rank, size;
  /* options */
  char          store_path[MAP_PATH_LEN], out[MAP_PATH_LEN], method[32], sample_type[32], sample_file[MAP_PATH_LEN];
  PetscInt      sample_n, reevaluate;
  PetscInt      seed;
  double        lo, hi, pref[MAP_MAX_TASKS];
  int           npref;
  PetscBool     resume;
  PetscInt      bayes_initial, bayes_iterations, bayes_batch; /* Bayesian MAP */
  PetscInt      refine, refine_points;                        /* refinement rounds along the predicted front */
  PetscBool     refine_pick;                                  /* -map_refine_target pick: each round evaluates the pick */
  MapBayesOptions bayes;
  PetscBool     bayes_per_task;      /* -map_bayes_evaluate per_task: each round's points are evaluated on the task that drew them */
  double       *round;               /* [n]: 0 = initial design, k = Bayesian round k */
  double       *sample_task;         /* [n]: -1 = evaluated on every task, t = on task t only (per-task rounds) */
  int           T;
  char        **tasks;
  /* objects */
  MapStore      store;
  MapModel      model;
  MapEvaluator  ev, ev_test;       /* selection on the val sets; held-out report on -map_test_data */
  char          test_data[65536];
  double        pick_test_acc[MAP_MAX_TASKS], pick_test_loss[MAP_MAX_TASKS];
  MapSurrogate  sur;
  MapPareto     pareto;
  MapJournal    journal;
  /* data */
  PetscInt      n;                 /* samples */
  double       *C, *acc, *loss;    /* [n*T]; acc holds the values of -map_metric (accuracy by default) */
  PetscBool    *failed;            /* [n] the sample's evaluation failed (non-finite or missing metric) */
  MapRunMetric  metric;
  PetscInt      kfront, kreal;
  const double *Cf, *Ff, *Wf;        /* front (borrowed from pareto) */
  int          *real_index;          /* [kreal] indices into the front */
  double       *real_acc, *real_loss; /* [kreal*T] */
  double        pick_c[MAP_MAX_TASKS], pick_pred[MAP_MAX_TASKS], pick_acc[MAP_MAX_TASKS], pick_loss[MAP_MAX_TASKS];
  double        t_phase[6];
  PetscInt      nested_samples;    /* design size per pair (0: the 2-task reference design) */
  PetscInt      nested_level, nested_pair; /* SLURM chain: compute only this pair of this level (0: all) */
  PetscBool     nested_partial;
  PetscBool     journal_only;
  int           neval_data;        /* the eval sets of the run's tasks (Nested MAP sets up one evaluator per rank group) */
  char        **eval_data;      /* evaluations must come from the journals (earlier levels of a chain) */    /* this job stopped after its level: no results to write */
  PetscBool     fitted;            /* surrogates and front exist (not for nested) */
  PetscInt      kall;              /* "MAP real": non-dominated set of every evaluated model (samples + re-evaluations) */
  double       *all_c, *all_acc;   /* [kall*T] */
  PetscBool     best_found;        /* the best evaluated model for the preference, by the pick's criterion */
  double        best_c[MAP_MAX_TASKS], best_acc[MAP_MAX_TASKS], best_score, pick_score; /* scores: MapParetoPreferenceValue of real accuracies */
  /* Nested MAP: the merge tree; node k < T is task k's fine-tuned model */
  int           nnodes, root;
  MapNestedNode nodes[128];
  void         *evgroups;          /* concurrent evaluator groups of command/worker (run_groups.c), NULL until used */
  char          start_time[64], end_time[64];
  char          store_sha256[65];  /* taken when the store was read (MapRunHashInputs) */
  json_t       *inputs_sha256;     /* path -> sha256 of every input file, for the manifest */
  MapRunBudget  budget;
} MapRunCtx;

/* run_guard.c: inputs hashed when read, the journal's binding, outputs that are not inputs */
PetscErrorCode MapRunHashInputs(MapRunCtx *r);
PetscErrorCode MapRunBinding(MapRunCtx *r, char **binding);
PetscErrorCode MapRunCheckOutputsNotInputs(MapRunCtx *r);

/* run_groups.c: -map_eval_groups G > 1 for command/worker evaluators: G samples at a time */
PetscErrorCode MapRunEvaluateSamplesGrouped(MapRunCtx *r, PetscInt i0, PetscInt i1, PetscBool *stop, PetscBool *grouped);
PetscErrorCode MapRunEvalGroupsDestroy(MapRunCtx *r);
/* failed == NULL: a failed evaluation (non-finite or missing metric) is journaled, then an error;
   else *failed is set, acc is NaN, and the caller leaves the point out (a resume reads it as done) */
PetscErrorCode MapRunEvaluate(MapRunCtx *r, const char *kind, int index, const double *c, double *acc, double *loss, PetscBool *fresh,
                              PetscBool *failed);
PetscErrorCode MapRunEvaluateOn(MapRunCtx *r, MPI_Comm comm, MapEvaluator ev, const char *kind, int index, const double *c,
                                const PetscBool *want, double *acc, double *loss, PetscBool *fresh, PetscBool *failed);
/* MapRunMetricValues - acc[T] from the evaluator's metrics (the values of -map_metric) and loss[T];
   returns the first wanted task whose value is unusable (failed), or -1 */
int MapRunMetricValues(MapRunCtx *r, const PetscBool *want, const MapTaskMetrics *m, double *acc, double *loss);

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
PetscErrorCode MapRunMetricSummary(MapRunCtx *r);
PetscErrorCode MapRunMetricDestroy(MapRunCtx *r);
PetscErrorCode MapRunCheckSignal(MapRunCtx *r, PetscBool *stop);
PetscErrorCode MapRunManifestRepro(MapRunCtx *r, json_t *manifest, json_t *inputs_sha256); /* run_repro.c */
PetscErrorCode MapRunNested(MapRunCtx *r, PetscBool *stop);
PetscErrorCode MapRunNestedSummary(MapRunCtx *r);

#include <mapmerge/core_h5.h>
PetscErrorCode MapRunNestedWrite(MapRunCtx *r, hid_t file);
PetscErrorCode MapRunMetricWrite(MapRunCtx *r, hid_t file);

/* run_map.c, for the budget's rounds */
PetscErrorCode MapRunEvaluateSamples(MapRunCtx *r, PetscInt i0, PetscInt i1, PetscBool *stop);
PetscErrorCode MapRunBayesRound(MapRunCtx *r, int it, int round_id, PetscBool *stop);
PetscErrorCode MapRunAdaptiveRound(MapRunCtx *r, const PetscLogStage *stages, PetscErrorCode (*round)(MapRunCtx *, int, int, PetscBool *), int it,
                                   int round_id, PetscBool *stop);

/* run_budget.c: -map_budget N */
PetscErrorCode MapRunBudgetSetFromOptions(MapRunCtx *r);
PetscErrorCode MapRunBudgetPlan(MapRunCtx *r, PetscBool bayes);
PetscErrorCode MapRunBudgetRounds(MapRunCtx *r, const PetscLogStage *stages, PetscBool bayes, PetscBool *stop);
PetscInt       MapRunBudgetReevaluateCap(MapRunCtx *r);
PetscErrorCode MapRunBudgetChooseReevaluations(MapRunCtx *r);
PetscErrorCode MapRunBudgetSummary(MapRunCtx *r);
PetscErrorCode MapRunBudgetJSON(MapRunCtx *r, json_t **o);
PetscErrorCode MapRunBudgetWrite(MapRunCtx *r, hid_t file);

#endif
