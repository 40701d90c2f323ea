/* The embedded default problem (`mapmerge zoo`): an MLP pretrained on Fashion-MNIST and fine-tuned
 * per task on deterministic image transforms, written as safetensors with PyTorch state_dict
 * names, plus per-task eval sets (docs/design.md §4).
 *
 * Model: encoder.<2k>.weight [w(k+1), w(k)], encoder.<2k>.bias (Linear layers with a ReLU after
 * each, numbered like torch.nn.Sequential), head.weight [10, w(L)], head.bias [10].
 * Every random draw is keyed on (seed, purpose, task name, index) with MapRngU64, and each task is
 * trained start to end by one rank, so the files are the same bits for any rank count. */
#ifndef MAPMERGE_ZOO_H
#define MAPMERGE_ZOO_H

#include <mapmerge/safetensors.h>

#define MAP_ZOO_MAX_LAYERS 8
#define MAP_ZOO_MAX_TASKS  64

/* What to build; filled by MapZooConfigSetFromOptions (defaults: the README's default zoo). */
typedef struct {
  char     datadir[MAP_PATH_LEN];          /* -map_zoo_data: folder of the Fashion-MNIST *-ubyte.gz files */
  PetscInt seed;                           /* -map_seed */
  int      L;                              /* number of encoder layers */
  int      widths[MAP_ZOO_MAX_LAYERS + 1]; /* -map_zoo_widths: 784,w1,...,wL */
  int      ntasks;
  char     tasks[MAP_ZOO_MAX_TASKS][MAP_NAME_LEN]; /* -map_zoo_tasks */
  int      train_n;                                /* -map_zoo_train_n: first n training images */
  int      epochs;                                 /* -map_zoo_epochs: pretraining epochs */
  int      finetune_epochs;                        /* -map_zoo_finetune_epochs */
  int      batch;                                  /* -map_zoo_batch */
  double   lr, finetune_lr;                        /* -map_zoo_lr, -map_zoo_finetune_lr (Adam step sizes) */
  int      val_n;                                  /* -map_zoo_val_n: the first val_n test images are the val set */
} MapZooConfig;

/* MapZooConfigSetFromOptions - collective: defaults, then -map_zoo_* and -map_seed. Checks ranges,
   task names (known transforms, no duplicates) and widths (input 784). */
PetscErrorCode MapZooConfigSetFromOptions(MPI_Comm comm, MapZooConfig *cfg);

/* MapZooBuildWithConfig - collective: builds the zoo into folder `outdir` (created if needed):
   pretrained.safetensors, <task>.safetensors, data/<task>_{val,test}.safetensors,
   data/pretrained_{val,test}.safetensors and zoo.yaml (a -options_file_yaml for import/run that
   points at these files). Every rank pretrains (the same bits); the tasks are then spread over the
   ranks round-robin. Prints a progress line per epoch and the accuracy table at the end.
   If acc_pre/acc_ft are not NULL they receive [ntasks] val accuracies of the pretrained model and
   of the fine-tuned model of each task (same on all ranks). */
PetscErrorCode MapZooBuildWithConfig(MPI_Comm comm, const MapZooConfig *cfg, const char *outdir, double *acc_pre, double *acc_ft);

/* MapZooBuild - collective: MapZooConfigSetFromOptions, then MapZooBuildWithConfig. */
PetscErrorCode MapZooBuild(MPI_Comm comm, const char *outdir);

#endif
