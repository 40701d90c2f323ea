/* What a store keeps of a Hugging Face checkpoint besides the merged vector (docs/hf-checkpoints.md):
 *   /buffers/<tensor>   integer and bool tensors of the pretrained model (position_ids,
 *                       num_batches_tracked, attention-mask buffers), unchanged: HDF5 integer
 *                       datasets of their shape, attribute dtype = the safetensors dtype name
 *   /hf_files/<file>    config.json, tokenizer files, generation_config.json, chat template of a
 *                       pretrained folder, as opaque uint8 bytes, attribute sha256; group attribute
 *                       source = the folder
 *   /hf_task_configs/<task>  config.json of each task folder (its head's num_labels, id2label), same form */
#ifndef MAPMERGE_STORE_HF_H
#define MAPMERGE_STORE_HF_H

#include <mapmerge/store.h>

typedef struct {
  char     name[MAP_NAME_LEN];
  MapDType dtype;
  int      ndim;
  int64_t  shape[MAP_MAX_NDIM];
  size_t   nbytes;
  void    *data; /* little-endian bytes */
} MapStoreBuffer;

typedef struct {
  char           name[256];
  char           sha256[65];
  size_t         size;
  unsigned char *data;
} MapStoreHFFile;

/* MapStoreReadBuffers - the store's buffers, in the pretrained file's order (none for an older store).
   Not collective (independent reads; small). Free with MapStoreBuffersFree. */
PetscErrorCode MapStoreReadBuffers(MapStore store, int *n, MapStoreBuffer **bufs);
PetscErrorCode MapStoreBuffersFree(int n, MapStoreBuffer **bufs);
/* MapStoreReadPrivateBuffer - private tensor `name` of task t when it is an integer/bool tensor (a
   task's own buffer, import -map_import_buffer_differs private): *found and *buf (PetscFree buf->data);
   *found = PETSC_FALSE for a floating private tensor. Not collective. */
PetscErrorCode MapStoreReadPrivateBuffer(MapStore store, int t, const char *name, MapStoreBuffer *buf, PetscBool *found);
/* MapStoreReadHFFiles - the recorded files, sha256 checked against the bytes; *source = the folder
   (PetscFree; NULL and n = 0 when the store has none). Not collective. Free with MapStoreHFFilesFree. */
PetscErrorCode MapStoreReadHFFiles(MapStore store, int *n, MapStoreHFFile **files, char **source);
PetscErrorCode MapStoreHFFilesFree(int n, MapStoreHFFile **files);
/* MapStoreReadTaskConfig - the config.json of task t's folder (/hf_task_configs/<task>, recorded when
   the task model was a folder), sha256 checked; *found = PETSC_FALSE when none. PetscFree f->data. */
PetscErrorCode MapStoreReadTaskConfig(MapStore store, int t, MapStoreHFFile *f, PetscBool *found);
/* MapStoreHFFileNames - the names of the model-folder files import records (config.json, tokenizer
   files, ...): static, *n of them. */
const char *const *MapStoreHFFileNames(int *n);

#endif
