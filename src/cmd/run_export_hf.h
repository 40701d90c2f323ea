/* Private to `mapmerge export`: what a model folder needs besides the merged tensors
 * (docs/hf-checkpoints.md): private tensors of one task or of all, the integer/bool buffers,
 * the recorded config/tokenizer files and the model card. */
#ifndef MAPMERGE_RUN_EXPORT_HF_H
#define MAPMERGE_RUN_EXPORT_HF_H

#include "runimpl.h"
#include <mapmerge/store_hf.h>

typedef struct {
  /* private tensors to write: output name, store task and name; data on rank 0 only */
  int             npriv;
  char          **privname, **privsrc;
  int            *privtask;
  float         **privdata;
  MapStoreBuffer *privint; /* a task's own integer/bool tensor (data NULL for a floating one) */
  PetscBool       all;     /* -map_export_private all: every task's, under "<task>." */
  int             nbuf;
  MapStoreBuffer *buf;
  int             nfiles;
  MapStoreHFFile *files;
  char           *source;
  int             config_task; /* >= 0: config.json is this task's (its head's labels), not the pretrained one's */
  PetscBool       folder;      /* a model folder: the store came from one and -map_output is not a .safetensors file */
  PetscBool       dtype_set;   /* -map_export_dtype given; otherwise a folder export takes the pretrained dtypes */
} MapExportExtras;

/* Collective: reads the private tensors of task `priv` ("" none, "all" every task), the buffers and
   the recorded files; decides whether `output` is a model folder (ex->folder). */
PetscErrorCode MapExportExtrasCreate(MPI_Comm comm, MapStore store, const char *priv, const char *output, MapExportExtras *ex);
/* info[0..ntensors) hold the merged tensors (dtype = -map_export_dtype); sets their dtypes for a folder
   export without -map_export_dtype, and fills info[ntensors..) with the private tensors, then the buffers. */
PetscErrorCode MapExportExtrasFillInfo(MapExportExtras *ex, MapStore store, MapDType dtype, int ntensors, MapTensorInfo *info);
/* rank 0 writes the private tensors and buffers (tensor indices from ntensors on). */
PetscErrorCode MapExportExtrasWrite(MapExportExtras *ex, MapSafetensorsWriter w, const MapTensorInfo *info, int ntensors, PetscMPIInt rank);
/* Collective, before MapSafetensorsWriterClose of a folder writer: the recorded files byte for byte
   and README.md go into the writer's staging folder, to be switched in with the weights at once. */
PetscErrorCode MapExportExtrasStage(MPI_Comm comm, MapExportExtras *ex, MapSafetensorsWriter w, MapStore store, const char *run, int ntask,
                                    const int *tasks, const double *c, const MapTensorInfo *info, int ntensors, uint64_t shard);
/* Collective: says what the model folder holds (after the switch). */
PetscErrorCode MapExportExtrasReport(MPI_Comm comm, const MapExportExtras *ex, const char *output);
PetscErrorCode MapExportExtrasDestroy(MapExportExtras *ex);

#endif
