/* Private to the store's writer (store_import.c, store_import_meta.c): the state of one import. */
#ifndef MAPMERGE_STOREIMPORTIMPL_H
#define MAPMERGE_STOREIMPORTIMPL_H

#include "storeimpl.h"

/* One checkpoint (the pretrained one is index 0), and where each merged tensor sits in it. */
typedef struct {
  MapSafetensors        st;
  const char           *path; /* as the user gave it */
  char                  label[MAP_NAME_LEN + 32];
  const MapTensorInfo **info;  /* [ntensors] for the merged tensors */
  int                   npriv; /* private tensors (tasks only) */
  const MapTensorInfo **priv;
  MapFileDigest        *dig; /* [nfiles]: the range digest of each file, fed by the reads (store_import_digest.c) */
} Ckpt;

typedef struct {
  MPI_Comm              comm;
  PetscMPIInt           rank, size;
  int                   T, nck; /* nck = T + 1 */
  Ckpt                 *ck;
  const char *const    *tasks;
  int                   npat;
  const char *const    *pat;
  int                   ntensors;
  MapStoreTensor       *tensors;
  int64_t               P;
  MapDType              dtype;     /* of /pretrained and /task_vectors */
  double                err[2][2]; /* BF16/F16 only: max abs and max rel rounding error of [0] pretrained, [1] task vectors */
  uint64_t             *csum;      /* [T+1]: this rank's part of the checksums of /pretrained and the /task_vectors rows */
  int                   nbuf;      /* integer/bool tensors of the pretrained model, kept unchanged (store_hf.c) */
  const MapTensorInfo **buf;
  PetscBool             buffers_private; /* differing task copies become private tensors of that task */
  uint64_t              digest_range;    /* bytes per range of the source digests */
  uint64_t              digest_bytes[2]; /* all ranks: bytes hashed from the data pass's reads / read for the hash alone */
} Import;

/* Root attributes: format, versions, storage dtype, creation time, private patterns, and per
   checkpoint its path, the sha256 of its files and its dtypes. Collective. */
PetscErrorCode MapStoreImportWriteProvenance_Private(Import *im, hid_t file);
/* store_import_index.c: the index (merged tensors: floating tensors of the pretrained model not
   matching a private pattern, in file order; each task's private tensors), built from the replicated
   headers so every rank takes the same decisions; a log line per task whose dtypes differ; the
   private tensors' datasets. Collective. */
PetscErrorCode MapStoreImportBuildIndex_Private(Import *im);
PetscErrorCode MapStoreImportLogDtypes_Private(Import *im);
PetscErrorCode MapStoreImportWritePrivate_Private(Import *im, hid_t file, hid_t dxpl);
/* the shard file of checkpoint c that holds tensor t (for messages) */
const char *MapStoreImportFileOf_Private(const Ckpt *c, const MapTensorInfo *t);

/* store_import_digest.c: the source files' range digests, hashed while the data pass reads them.
   Begin (before the first read): creates them and hooks them to the readers; End (after the last
   read): hashes what no read covered, combines the ranks' range hashes and writes the attributes
   "source_digest" and "<pretrained|task.NAME>.digest". Collective. */
PetscErrorCode MapStoreImportDigestBegin_Private(Import *im);
PetscErrorCode MapStoreImportDigestEnd_Private(Import *im, hid_t file);
PetscErrorCode MapStoreImportDigestDestroy_Private(Import *im);
/* /tasks and /tensors/{name,dtype,ndim,shape,offset,numel}. Collective. */
PetscErrorCode MapStoreImportWriteIndex_Private(Import *im, hid_t file);

/* store_hf.c: integer/bool tensors ("buffers"), shape report, the HF folder's files. */
/* *is = whether tensor t of checkpoint c is an integer/bool tensor: of the pretrained model (c = 0) it
   is recorded as a buffer; of a task it must be one of those, with its dtype and shape. Collective. */
PetscErrorCode MapStoreImportIsBuffer_Private(Import *im, int c, const MapTensorInfo *t, PetscBool *is);
/* Tensors whose shapes differ between the checkpoints, or that some lack, and that no private
   pattern covers: one report with the -map_private_patterns that would keep them. Collective. */
PetscErrorCode MapStoreImportReportShapes_Private(Import *im);
/* /buffers/<name>: each buffer as the pretrained model has it, after checking every task's equals it. */
PetscErrorCode MapStoreImportWriteBuffers_Private(Import *im, hid_t file);
/* /hf_files/<name>: config, tokenizer, generation config, chat template of a pretrained folder. */
PetscErrorCode MapStoreImportWriteHFFiles_Private(Import *im, hid_t file);

#endif
