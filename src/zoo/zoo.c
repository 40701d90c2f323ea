/* zoo: builds the embedded default problem (docs/design.md §4) — pretrain an MLP on Fashion-MNIST,
 * fine-tune it per task on a transform of the images, write models and eval sets. */
#ifndef _GNU_SOURCE
  #define _GNU_SOURCE /* RTLD_DEFAULT */
#endif
#include "zooimpl.h"
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const map_zoo_default_tasks[] = {"rot90", "rot180", "rot270", "flip_v", "transpose", "invert", "permute", "shift", NULL};

PetscErrorCode MapZooConfigSetFromOptions(MPI_Comm comm, MapZooConfig *cfg)
{
  char      tasks[MAP_ZOO_MAX_TASKS * 64] = "", widths[256] = "784,256,128";
  PetscInt  w[MAP_ZOO_MAX_LAYERS + 2], nw                   = MAP_ZOO_MAX_LAYERS + 2;
  PetscInt  train_n = 60000, epochs = 4, ft_epochs = 2, batch = 128, val_n = 2000;
  PetscBool set;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(cfg, sizeof(*cfg)));
  PetscCall(PetscStrncpy(cfg->datadir, "/usr/share/datasets/fashion-mnist", sizeof(cfg->datadir)));
  for (int i = 0; map_zoo_default_tasks[i]; i++) {
    size_t l = strlen(tasks);
    snprintf(tasks + l, sizeof(tasks) - l, "%s%s", i ? "," : "", map_zoo_default_tasks[i]);
  }
  cfg->seed        = 0;
  cfg->lr          = 1e-3;
  cfg->finetune_lr = 5e-4;
  PetscOptionsBegin(comm, NULL, "mapmerge zoo: the embedded default model zoo (Fashion-MNIST MLP)", NULL);
  PetscCall(PetscOptionsString("-map_zoo_data", "folder with Fashion-MNIST's {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz",
                               NULL, cfg->datadir, cfg->datadir, sizeof(cfg->datadir), NULL));
  PetscCall(PetscOptionsInt("-map_seed", "the seed every random draw is derived from", NULL, cfg->seed, &cfg->seed, NULL));
  PetscCall(PetscOptionsString("-map_zoo_widths", "MLP widths: input (784), then one per encoder layer", NULL, widths, widths,
                               sizeof(widths), NULL));
  PetscCall(PetscOptionsString("-map_zoo_tasks", "comma-separated tasks (image transforms): identity rot90 rot180 rot270 flip_h "
                                                 "flip_v transpose invert permute shift rot90_invert",
                               NULL, tasks, tasks, sizeof(tasks), NULL));
  PetscCall(PetscOptionsInt("-map_zoo_train_n", "training images used (the first n of 60000)", NULL, train_n, &train_n, NULL));
  PetscCall(PetscOptionsInt("-map_zoo_epochs", "pretraining epochs", NULL, epochs, &epochs, NULL));
  PetscCall(PetscOptionsInt("-map_zoo_finetune_epochs", "fine-tuning epochs per task", NULL, ft_epochs, &ft_epochs, NULL));
  PetscCall(PetscOptionsInt("-map_zoo_batch", "minibatch size", NULL, batch, &batch, NULL));
  PetscCall(PetscOptionsReal("-map_zoo_lr", "Adam step size for pretraining", NULL, cfg->lr, &cfg->lr, NULL));
  PetscCall(PetscOptionsReal("-map_zoo_finetune_lr", "Adam step size for fine-tuning", NULL, cfg->finetune_lr, &cfg->finetune_lr, NULL));
  PetscCall(PetscOptionsInt("-map_zoo_val_n", "the first n test images form the val sets, the rest the test sets", NULL, val_n, &val_n,
                            NULL));
  PetscOptionsEnd();

  PetscCall(PetscOptionsGetIntArray(NULL, NULL, "-map_zoo_widths", w, &nw, &set));
  if (!set) { /* the default */
    nw   = 3;
    w[0] = 784, w[1] = 256, w[2] = 128;
  }
  PetscCheck(nw >= 2 && nw <= MAP_ZOO_MAX_LAYERS + 1, comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_zoo_widths %s: expected 2..%d comma-separated widths (input first), got %" PetscInt_FMT, widths, MAP_ZOO_MAX_LAYERS + 1,
             nw);
  PetscCheck(w[0] == 784, comm, PETSC_ERR_ARG_WRONG, "-map_zoo_widths %s: the input width must be 784 (28x28 images), got %" PetscInt_FMT,
             widths, w[0]);
  cfg->L = (int)nw - 1;
  for (PetscInt k = 0; k < nw; k++) {
    PetscCheck(w[k] >= 1 && w[k] <= 65536, comm, PETSC_ERR_ARG_OUTOFRANGE,
               "-map_zoo_widths %s: width %" PetscInt_FMT " is %" PetscInt_FMT ", expected 1..65536", widths, k, w[k]);
    cfg->widths[k] = (int)w[k];
  }
  PetscCheck(train_n >= 1 && train_n <= 60000, comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_zoo_train_n: expected 1..60000, got %" PetscInt_FMT,
             train_n);
  PetscCheck(epochs >= 0 && epochs <= 1000, comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_zoo_epochs: expected 0..1000, got %" PetscInt_FMT, epochs);
  PetscCheck(ft_epochs >= 1 && ft_epochs <= 1000, comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_zoo_finetune_epochs: expected 1..1000, got %" PetscInt_FMT, ft_epochs);
  PetscCheck(batch >= 1 && batch <= 4096, comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_zoo_batch: expected 1..4096, got %" PetscInt_FMT, batch);
  PetscCheck(val_n >= 1 && val_n <= 9999, comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_zoo_val_n: expected 1..9999, got %" PetscInt_FMT, val_n);
  PetscCheck(cfg->lr > 0 && cfg->lr < 1, comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_zoo_lr: expected in (0, 1), got %g", cfg->lr);
  PetscCheck(cfg->finetune_lr > 0 && cfg->finetune_lr < 1, comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_zoo_finetune_lr: expected in (0, 1), got %g",
             cfg->finetune_lr);
  cfg->train_n         = (int)train_n;
  cfg->epochs          = (int)epochs;
  cfg->finetune_epochs = (int)ft_epochs;
  cfg->batch           = (int)batch;
  cfg->val_n           = (int)val_n;

  int    n;
  char **list;
  PetscCall(MapSplitList(tasks, ',', &n, &list));
  PetscCheck(n >= 1 && n <= MAP_ZOO_MAX_TASKS, comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_zoo_tasks: expected 1..%d tasks, got %d",
             MAP_ZOO_MAX_TASKS, n);
  for (int i = 0; i < n; i++) {
    MapZooTransform tf;
    PetscCheck(list[i][0], comm, PETSC_ERR_ARG_WRONG, "-map_zoo_tasks %s: task %d is empty", tasks, i + 1);
    PetscCall(MapZooTransformSetUp(list[i], 0, &tf)); /* checks the name */
    for (int j = 0; j < i; j++)
      PetscCheck(strcmp(list[i], list[j]), comm, PETSC_ERR_ARG_WRONG, "-map_zoo_tasks: task \"%s\" appears twice", list[i]);
    PetscCall(PetscStrncpy(cfg->tasks[i], list[i], sizeof(cfg->tasks[i])));
  }
  cfg->ntasks = n;
  PetscCall(MapFreeList(n, &list));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapZooMkdir(const char *path)
{
  struct stat sb;

  PetscFunctionBegin;
  if (stat(path, &sb) == 0) {
    PetscCheck(S_ISDIR(sb.st_mode), PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "-map_output %s: exists and is not a folder", path);
    PetscFunctionReturn(0);
  }
  PetscCheck(mkdir(path, 0777) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "-map_output: cannot create folder %s: %s", path, strerror(errno));
  PetscFunctionReturn(0);
}

/* writes the model as safetensors with state_dict names */
static PetscErrorCode MapZooWriteModel(const MapZooMLP *m, const char *path, const char *task, const MapZooConfig *cfg)
{
  MapTensorData t[2 * (MAP_ZOO_MAX_LAYERS + 1)];
  char          names[2 * (MAP_ZOO_MAX_LAYERS + 1)][64], seed[32], widths[256] = "";
  const char   *keys[4] = {"mapmerge_zoo_task", "mapmerge_zoo_seed", "mapmerge_zoo_widths", "mapmerge_version"};
  const char   *vals[4];

  PetscFunctionBegin;
  for (int k = 0; k <= m->L; k++) {
    if (k < m->L) {
      PetscCall(PetscSNPrintf(names[2 * k], sizeof(names[0]), "encoder.%d.weight", 2 * k));
      PetscCall(PetscSNPrintf(names[2 * k + 1], sizeof(names[0]), "encoder.%d.bias", 2 * k));
    } else {
      PetscCall(PetscStrncpy(names[2 * k], "head.weight", sizeof(names[0])));
      PetscCall(PetscStrncpy(names[2 * k + 1], "head.bias", sizeof(names[0])));
    }
    t[2 * k]              = (MapTensorData){.name = names[2 * k], .dtype = MAP_DTYPE_F32, .ndim = 2, .data = m->p + m->offW[k]};
    t[2 * k].shape[0]     = m->w[k + 1];
    t[2 * k].shape[1]     = m->w[k];
    t[2 * k + 1]          = (MapTensorData){.name = names[2 * k + 1], .dtype = MAP_DTYPE_F32, .ndim = 1, .data = m->p + m->offb[k]};
    t[2 * k + 1].shape[0] = m->w[k + 1];
  }
  for (int k = 0; k <= cfg->L; k++) {
    size_t l = strlen(widths);
    snprintf(widths + l, sizeof(widths) - l, "%s%d", k ? "," : "", cfg->widths[k]);
  }
  PetscCall(PetscSNPrintf(seed, sizeof(seed), "%" PetscInt_FMT, cfg->seed));
  vals[0] = task, vals[1] = seed, vals[2] = widths, vals[3] = MAPMERGE_VERSION;
  PetscCall(MapSafetensorsWrite(path, 2 * (m->L + 1), t, 4, keys, vals));
  PetscFunctionReturn(0);
}

/* writes images [first, first+n) of the split, transformed: inputs F32 [n,784], labels I64 [n] */
static PetscErrorCode MapZooWriteData(const MapZooTransform *tf, const MapZooSplit *s, int first, int n, const char *path)
{
  float        *x;
  int64_t      *y;
  int          *idx;
  MapTensorData t[2];
  const char   *keys[1] = {"mapmerge_zoo_task"}, *vals[1] = {tf->name};

  PetscFunctionBegin;
  PetscCall(PetscMalloc1((size_t)n * MAP_ZOO_PIXELS, &x));
  PetscCall(PetscMalloc1(n, &y));
  PetscCall(PetscMalloc1(n, &idx));
  for (int i = 0; i < n; i++) {
    idx[i] = first + i;
    y[i]   = s->labels[first + i];
  }
  MapZooTransformApply(tf, s, idx, n, x);
  t[0] = (MapTensorData){.name = "inputs", .dtype = MAP_DTYPE_F32, .ndim = 2, .shape = {n, MAP_ZOO_PIXELS}, .data = x};
  t[1] = (MapTensorData){.name = "labels", .dtype = MAP_DTYPE_I64, .ndim = 1, .shape = {n}, .data = y};
  PetscCall(MapSafetensorsWrite(path, 2, t, 1, keys, vals));
  PetscCall(PetscFree(idx));
  PetscCall(PetscFree(y));
  PetscCall(PetscFree(x));
  PetscFunctionReturn(0);
}

typedef struct {
  MPI_Comm    comm;
  const char *phase;
  int         epochs;
  double      t0;    /* start of the build */
  double      done;  /* work units done before this phase (1 unit = one epoch over train_n) */
  double      total; /* work units of this rank */
  PetscBool   all;   /* print from every rank (fine-tuning) or rank 0 only */
} MapZooProgress;

static PetscErrorCode MapZooProgressPrint(void *ctx, int epoch, double loss, double acc)
{
  MapZooProgress *p = (MapZooProgress *)ctx;
  int             rank;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(p->comm, &rank));
  double el = MapWallTime() - p->t0, done = p->done + epoch;
  double eta = el / done * (p->total - done);
  if (p->all || rank == 0) {
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "zoo[%d]: %s epoch %d/%d: train loss %.4f acc %.4f, elapsed %.1fs, ETA %.1fs\n", rank, p->phase,
                          epoch, p->epochs, loss, acc, el, eta));
    fflush(stdout);
  }
  PetscFunctionReturn(0);
}

/* writes zoo.yaml: the options that point import/eval/run at this zoo (paths as given in outdir) */
static PetscErrorCode MapZooWriteYAML(const MapZooConfig *cfg, const char *outdir)
{
  char  path[MAP_PATH_LEN], tmp[MAP_PATH_LEN];
  FILE *f;

  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/zoo.yaml", outdir));
  PetscCall(MapTempName(path, tmp, sizeof(tmp)));
  PetscCall(MapTempRegister(tmp));
  f = fopen(tmp, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot write %s: %s", tmp, strerror(errno));
  fprintf(f, "# written by `mapmerge zoo`: use with -options_file_yaml %s\nmap:\n", path);
  fprintf(f, "  pretrained: %s/pretrained.safetensors\n  tasks: ", outdir);
  for (int i = 0; i < cfg->ntasks; i++) fprintf(f, "%s%s", i ? "," : "", cfg->tasks[i]);
  fprintf(f, "\n  task_models: ");
  for (int i = 0; i < cfg->ntasks; i++) fprintf(f, "%s%s/%s.safetensors", i ? "," : "", outdir, cfg->tasks[i]);
  fprintf(f, "\n  store: %s/store.h5\n  eval:\n    type: mlp\n    data: ", outdir);
  for (int i = 0; i < cfg->ntasks; i++) fprintf(f, "%s%s/data/%s_val.safetensors", i ? "," : "", outdir, cfg->tasks[i]);
  fprintf(f, "\n  test:\n    data: ");
  for (int i = 0; i < cfg->ntasks; i++) fprintf(f, "%s%s/data/%s_test.safetensors", i ? "," : "", outdir, cfg->tasks[i]);
  fprintf(f, "\n");
  int err = ferror(f);
  PetscCheck(fclose(f) == 0 && !err, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "write error on %s", tmp);
  PetscCheck(rename(tmp, path) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
  PetscCall(MapTempUnregister(tmp));
  PetscFunctionReturn(0);
}

/* reads Fashion-MNIST (with a clear message when it is missing, before any work), then creates the output folders */
static PetscErrorCode MapZooLoadAndPrepare(MPI_Comm comm, const MapZooConfig *cfg, const char *outdir, double t0, MapZooSplit *train, MapZooSplit *test)
{
  int            rank, size, T = cfg->ntasks;
  char           path[MAP_PATH_LEN];
  PetscErrorCode ierr = 0;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));

  /* a clear message when the data set is missing, before any work */
  if (rank == 0) {
    char probe[MAP_PATH_LEN];
    PetscCall(PetscSNPrintf(probe, sizeof(probe), "%s/train-images-idx3-ubyte.gz", cfg->datadir));
    if (access(probe, R_OK) != 0)
      ierr = PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, PETSC_ERR_FILE_OPEN, PETSC_ERROR_INITIAL,
                        "Fashion-MNIST not found: cannot read %s (%s). Install it with `apt-get install dataset-fashion-mnist`, "
                        "or point -map_zoo_data at a folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz",
                        probe, strerror(errno));
  }
  MapCheckAll(comm, ierr == 0, PETSC_ERR_FILE_OPEN, "zoo: Fashion-MNIST not found (see above)");
  PetscCall(MapZooSplitLoad(cfg->datadir, "train", 60000, train));
  PetscCall(MapZooSplitLoad(cfg->datadir, "t10k", 10000, test));
  /* the output folders only once the input is known to be good */
  if (rank == 0) {
    ierr = MapZooMkdir(outdir);
    if (!ierr) {
      PetscCall(PetscSNPrintf(path, sizeof(path), "%s/data", outdir));
      ierr = MapZooMkdir(path);
    }
  }
  MapCheckAll(comm, ierr == 0, PETSC_ERR_FILE_OPEN, "zoo: cannot create the output folder %s (see above)", outdir);
  PetscCall(PetscPrintf(comm, "zoo: Fashion-MNIST read from %s in %.1fs; %d tasks on %d rank(s), widths", cfg->datadir, MapWallTime() - t0, T,
                        size));
  for (int k = 0; k <= cfg->L; k++) PetscCall(PetscPrintf(comm, "%s%d", k ? "-" : " ", cfg->widths[k]));
  PetscCall(PetscPrintf(comm, ", seed %" PetscInt_FMT "\n", cfg->seed));
  PetscFunctionReturn(0);
}

/* pretraining on every rank (same bits, cheaper than a broadcast to wait for); rank 0 evaluates it and writes the
   pretrained model and its val/test data; *ntest is set on rank 0 only */
static PetscErrorCode MapZooPretrain(MPI_Comm comm, const MapZooConfig *cfg, const char *outdir, double t0, double units_total, MapZooSplit *train,
                                     MapZooSplit *test, MapZooTransform *id, MapZooMLP *pre, double *ntest)
{
  int  rank;
  char path[MAP_PATH_LEN];

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(MapZooTransformSetUp("identity", (uint64_t)cfg->seed, id));
  PetscCall(MapZooMLPCreate(cfg->L, cfg->widths, pre));
  MapZooMLPInit(pre, (uint64_t)cfg->seed, MapZooStream("init", "pretrained", 0));
  {
    MapZooTrainConfig tc = {.n = cfg->train_n, .epochs = cfg->epochs, .batch = cfg->batch, .lr = cfg->lr, .seed = (uint64_t)cfg->seed, .stream = MapZooStream("shuffle", "pretrained", 0)};
    MapZooProgress    pg = {.comm = comm, .phase = "pretrain", .epochs = cfg->epochs, .t0 = t0, .done = 0, .total = units_total, .all = PETSC_FALSE};
    PetscCall(MapZooTrain(pre, id, train, &tc, MapZooProgressPrint, &pg));
  }
  if (rank == 0) {
    double a, l;
    PetscCall(MapZooEvaluate(pre, id, test, cfg->val_n, test->n - cfg->val_n, &a, &l));
    *ntest = a;
    PetscCall(PetscSNPrintf(path, sizeof(path), "%s/pretrained.safetensors", outdir));
    PetscCall(MapZooWriteModel(pre, path, "pretrained", cfg));
    PetscCall(PetscSNPrintf(path, sizeof(path), "%s/data/pretrained_val.safetensors", outdir));
    PetscCall(MapZooWriteData(id, test, 0, cfg->val_n, path));
    PetscCall(PetscSNPrintf(path, sizeof(path), "%s/data/pretrained_test.safetensors", outdir));
    PetscCall(MapZooWriteData(id, test, cfg->val_n, test->n - cfg->val_n, path));
  }
  PetscFunctionReturn(0);
}

/* fine-tunes task t (everything it draws is keyed on its name), sets acc[0..3][t] and writes its model and val/test data;
   done = work units before it, for the ETA */
static PetscErrorCode MapZooFinetuneTask(MPI_Comm comm, const MapZooConfig *cfg, const char *outdir, int t, double t0, double done, double units_total,
                                         const MapZooMLP *pre, MapZooSplit *train, MapZooSplit *test, double acc[4][MAP_ZOO_MAX_TASKS])
{
  int             T = cfg->ntasks;
  MapZooTransform tf;
  MapZooMLP       ft;
  double          l;
  const char     *name = cfg->tasks[t];
  char            path[MAP_PATH_LEN];

  PetscFunctionBegin;
  PetscCall(MapZooTransformSetUp(name, (uint64_t)cfg->seed, &tf));
  PetscCall(MapZooEvaluate(pre, &tf, test, 0, cfg->val_n, &acc[0][t], &l));
  PetscCall(MapZooMLPCopy(pre, &ft));
  {
    char              phase[MAP_NAME_LEN + 32];
    MapZooTrainConfig tc = {.n = cfg->train_n, .epochs = cfg->finetune_epochs, .batch = cfg->batch, .lr = cfg->finetune_lr, .seed = (uint64_t)cfg->seed, .stream = MapZooStream("shuffle", name, 0)};
    MapZooProgress    pg = {.comm = comm, .phase = phase, .epochs = cfg->finetune_epochs, .t0 = t0, .done = done, .total = units_total, .all = PETSC_TRUE};
    PetscCall(PetscSNPrintf(phase, sizeof(phase), "task %s (%d/%d)", name, t + 1, T));
    PetscCall(MapZooTrain(&ft, &tf, train, &tc, MapZooProgressPrint, &pg));
  }
  PetscCall(MapZooEvaluate(&ft, &tf, test, 0, cfg->val_n, &acc[1][t], &l));
  PetscCall(MapZooEvaluate(pre, &tf, test, cfg->val_n, test->n - cfg->val_n, &acc[2][t], &l));
  PetscCall(MapZooEvaluate(&ft, &tf, test, cfg->val_n, test->n - cfg->val_n, &acc[3][t], &l));
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/%s.safetensors", outdir, name));
  PetscCall(MapZooWriteModel(&ft, path, name, cfg));
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/data/%s_val.safetensors", outdir, name));
  PetscCall(MapZooWriteData(&tf, test, 0, cfg->val_n, path));
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/data/%s_test.safetensors", outdir, name));
  PetscCall(MapZooWriteData(&tf, test, cfg->val_n, test->n - cfg->val_n, path));
  PetscCall(MapZooMLPDestroy(&ft));
  PetscFunctionReturn(0);
}

/* rank 0 writes zoo.yaml; every rank prints the accuracy table (accsum is the same on all) */
static PetscErrorCode MapZooReport(MPI_Comm comm, const MapZooConfig *cfg, const char *outdir, double t0, const MapZooSplit *test, double ntest,
                                   double accsum[4][MAP_ZOO_MAX_TASKS])
{
  int rank, T = cfg->ntasks;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (rank == 0) PetscCall(MapZooWriteYAML(cfg, outdir));
  PetscCall(PetscPrintf(comm, "zoo: pretrained model on its own (untransformed) test set: acc %.4f\n", ntest));
  PetscCall(PetscPrintf(comm, "zoo: accuracy (val = first %d test images, test = the other %d)\n", cfg->val_n, test->n - cfg->val_n));
  PetscCall(PetscPrintf(comm, "zoo: %-14s %12s %12s %12s %12s\n", "task", "pre_val", "finetune_val", "pre_test", "finetune_test"));
  for (int t = 0; t < T; t++)
    PetscCall(PetscPrintf(comm, "zoo: %-14s %12.4f %12.4f %12.4f %12.4f\n", cfg->tasks[t], accsum[0][t], accsum[1][t], accsum[2][t],
                          accsum[3][t]));
  PetscCall(PetscPrintf(comm, "zoo: wrote %s (use: -options_file_yaml %s/zoo.yaml) in %.1fs\n", outdir, outdir, MapWallTime() - t0));
  PetscFunctionReturn(0);
}

PetscErrorCode MapZooBuildWithConfig(MPI_Comm comm, const MapZooConfig *cfg, const char *outdir, double *acc_pre_out, double *acc_ft_out)
{
  int             rank, size, T = cfg->ntasks;
  MapZooSplit     train, test;
  MapZooTransform id;
  MapZooMLP       pre;
  double          t0 = MapWallTime();
  double          acc[4][MAP_ZOO_MAX_TASKS], accsum[4][MAP_ZOO_MAX_TASKS], ntest = 0;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCall(MapZooLoadAndPrepare(comm, cfg, outdir, t0, &train, &test));

  /* work units of this rank, for the ETA: pretraining, then its tasks */
  int mytasks = 0;
  for (int t = 0; t < T; t++)
    if (t % size == rank) mytasks++;
  double units_pre = (double)cfg->epochs, units_total = units_pre + (double)mytasks * cfg->finetune_epochs;

  PetscCall(MapZooPretrain(comm, cfg, outdir, t0, units_total, &train, &test, &id, &pre, &ntest));

  /* fine-tuning: task t on rank t % size */
  PetscCall(PetscArrayzero(&acc[0][0], 4 * MAP_ZOO_MAX_TASKS));
  int mine = 0;
  for (int t = 0; t < T; t++) {
    if (t % size != rank) continue;
    PetscCall(MapZooFinetuneTask(comm, cfg, outdir, t, t0, units_pre + (double)mine * cfg->finetune_epochs, units_total, &pre, &train, &test, acc));
    mine++;
  }
  /* each entry is set by exactly one rank and zero elsewhere, so the sum is exact */
  PetscCallMPI(MPI_Allreduce(&acc[0][0], &accsum[0][0], 4 * MAP_ZOO_MAX_TASKS, MPI_DOUBLE, MPI_SUM, comm));
  PetscCallMPI(MPI_Bcast(&ntest, 1, MPI_DOUBLE, 0, comm));

  PetscCall(MapZooReport(comm, cfg, outdir, t0, &test, ntest, accsum));
  if (acc_pre_out)
    for (int t = 0; t < T; t++) acc_pre_out[t] = accsum[0][t];
  if (acc_ft_out)
    for (int t = 0; t < T; t++) acc_ft_out[t] = accsum[1][t];
  PetscCall(MapZooMLPDestroy(&pre));
  PetscCall(MapZooSplitFree(&train));
  PetscCall(MapZooSplitFree(&test));
  PetscFunctionReturn(0);
}

PetscErrorCode MapZooBuild(MPI_Comm comm, const char *outdir)
{
  MapZooConfig cfg;

  PetscFunctionBegin;
  PetscCall(MapZooConfigSetFromOptions(comm, &cfg));
  PetscCall(MapZooBuildWithConfig(comm, &cfg, outdir, NULL, NULL));
  PetscFunctionReturn(0);
}
