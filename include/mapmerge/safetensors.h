/* safetensors reader and writer (the checkpoint format of PyTorch / Hugging Face).
 * Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
 * data_offsets:[begin,end]}, "__metadata__": {str: str}}, then the raw little-endian data.
 * Also the sharded form: a folder or a model.safetensors.index.json {"weight_map": {name: file}}.
 * The parser is an attack surface: every field is bounds-checked (see MapSafetensorsParseHeader). */
#ifndef MAPMERGE_SAFETENSORS_H
#define MAPMERGE_SAFETENSORS_H

#include <mapmerge/core.h>

typedef enum {
  MAP_DTYPE_F32,
  MAP_DTYPE_F16,
  MAP_DTYPE_BF16,
  MAP_DTYPE_F64,
  MAP_DTYPE_I64,
  MAP_DTYPE_I32,
  MAP_DTYPE_I16,
  MAP_DTYPE_I8,
  MAP_DTYPE_U8,
  MAP_DTYPE_BOOL,
  MAP_DTYPE_OTHER /* a dtype name we recognise but do not convert (F8_*, U16, ...) */
} MapDType;

const char *MapDTypeName(MapDType dt);
size_t      MapDTypeSize(MapDType dt);
PetscBool   MapDTypeIsFloat(MapDType dt); /* F32/F16/BF16/F64 */
/* MapDTypeFromName - the dtype of a safetensors dtype name ("F32", ...) and its item size in bytes;
   *found = PETSC_FALSE for an unknown name. Not collective. */
PetscErrorCode MapDTypeFromName(const char *name, MapDType *dt, size_t *size, PetscBool *found);

typedef struct {
  char     name[MAP_NAME_LEN];
  MapDType dtype;
  int      ndim;
  int64_t  shape[MAP_MAX_NDIM];
  int64_t  numel;
  uint64_t begin, end;     /* byte offsets relative to the start of the data section */
  int      file;           /* index of the shard file that holds it (0 for a single file) */
  char     dtype_name[16]; /* the file's own dtype name ("F8_E4M3", "U16", ...); MapTensorDTypeName */
} MapTensorInfo;

/* MapTensorDTypeName - the dtype as the file names it (also for dtypes mapmerge reads as OTHER) */
const char *MapTensorDTypeName(const MapTensorInfo *t);

typedef struct _p_MapSafetensors *MapSafetensors;

/* MapSafetensorsParseHeader - parses and validates a header already in memory (the JSON bytes,
   without the 8-byte length) for a file whose data section is data_size bytes long. Checks: JSON
   object, no duplicate keys, known dtype, shape >= 0, numel*size == end-begin, offsets
   contiguous from 0 with no hole or overlap, last end == data_size. On success *ntensors and
   *tensors (PetscFree) are set in file order (by begin offset); *metadata is the __metadata__
   JSON text or NULL (PetscFree). `what` names the file in error messages. Not collective. */
PetscErrorCode MapSafetensorsParseHeader(const char *what, const char *json, size_t json_len, uint64_t data_size,
                                         int *ntensors, MapTensorInfo **tensors, char **metadata);

/* MapSafetensorsOpen - opens a checkpoint: a .safetensors file, a folder holding one
   (model.safetensors or a model.safetensors.index.json), or an index .json. Collective on comm:
   rank 0 reads headers and broadcasts them; every rank later reads only the byte ranges it asks for. */
PetscErrorCode MapSafetensorsOpen(MPI_Comm comm, const char *path, MapSafetensors *st);
PetscErrorCode MapSafetensorsDestroy(MapSafetensors *st);
PetscErrorCode MapSafetensorsGetNumTensors(MapSafetensors st, int *n);
/* tensors in order: shard file order, then byte offset (the order of the state_dict on save) */
PetscErrorCode MapSafetensorsGetTensor(MapSafetensors st, int i, const MapTensorInfo **t);
/* MapSafetensorsFind - *t = NULL when absent (no error) */
PetscErrorCode MapSafetensorsFind(MapSafetensors st, const char *name, const MapTensorInfo **t);
/* the value of a __metadata__ key, or NULL */
PetscErrorCode MapSafetensorsGetMetadata(MapSafetensors st, const char *key, const char **value);
PetscErrorCode MapSafetensorsGetPath(MapSafetensors st, const char **path);
/* the list of files (1 for a single file, the shards otherwise) */
PetscErrorCode MapSafetensorsGetFiles(MapSafetensors st, int *nfiles, const char *const **files);

/* MapSafetensorsReadF32 - reads elements [start, start+count) of a floating tensor, converted to
   F32 (F16 and BF16 widened exactly; F64 rounded). Reads only those bytes (pread). Not collective. */
PetscErrorCode MapSafetensorsReadF32(MapSafetensors st, const MapTensorInfo *t, int64_t start, int64_t count, float *out);
/* MapSafetensorsReadRaw - the raw bytes of a whole tensor (e.g. I64 labels); buf holds end-begin bytes. */
PetscErrorCode MapSafetensorsReadRaw(MapSafetensors st, const MapTensorInfo *t, void *buf);
/* MapSafetensorsSetReadHook - hook(ctx, file, offset, len, bytes) is called with every byte range
   that MapSafetensorsReadF32/ReadRaw read from file `file` (absolute offset), as read, before any
   conversion (the import hashes the inputs over the bytes its data pass reads). NULL removes it. */
typedef PetscErrorCode (*MapSafetensorsReadHook)(void *ctx, int file, uint64_t offset, size_t len, const void *bytes);
PetscErrorCode MapSafetensorsSetReadHook(MapSafetensors st, MapSafetensorsReadHook hook, void *ctx);
/* MapSafetensorsGetDataStart - byte offset of file `file`'s data section (8 + its header length) */
PetscErrorCode MapSafetensorsGetDataStart(MapSafetensors st, int file, uint64_t *start);

/* A tensor to write, with its data in memory (serial writer). */
typedef struct {
  const char *name;
  MapDType    dtype;
  int         ndim;
  int64_t     shape[MAP_MAX_NDIM];
  const void *data; /* numel * MapDTypeSize(dtype) bytes, little-endian */
} MapTensorData;

/* MapSafetensorsWrite - writes one file from memory: to a temporary name, fsync, then rename.
   Metadata: nmeta key/value pairs ("format": "pt" is always added). Not collective. */
PetscErrorCode MapSafetensorsWrite(const char *path, int n, const MapTensorData *tensors, int nmeta, const char *const *keys,
                                   const char *const *values);

/* Parallel writer: every rank holds the same list of tensors (name, dtype, shape) and writes
   element ranges of them with MPI-IO. With max_shard_bytes > 0 the tensors are split over files
   model-0000k-of-0000n.safetensors in a folder `path`, plus model.safetensors.index.json;
   otherwise `path` is one file. Everything is written under temporary names and renamed on
   MapSafetensorsWriterClose() (collective). Data written is converted from F32 to the tensor's dtype. */
typedef struct _p_MapSafetensorsWriter *MapSafetensorsWriter;
PetscErrorCode                          MapSafetensorsWriterCreate(MPI_Comm comm, const char *path, int n, const MapTensorInfo *tensors, int nmeta,
                                                                   const char *const *keys, const char *const *values, uint64_t max_shard_bytes,
                                                                   MapSafetensorsWriter *w);
/* MapSafetensorsWriterCreateFolder - the same, but `dir` is always a model folder: model.safetensors
   (max_shard_bytes 0) or the shards and index. The folder is written as a fresh staging folder
   beside `dir` and switched in whole by Close (renameat2 RENAME_EXCHANGE over an existing folder):
   a crash at any point leaves the old folder or the new one, never a mix (docs/robustness.md). A
   sharded writer from MapSafetensorsWriterCreate does the same. */
PetscErrorCode MapSafetensorsWriterCreateFolder(MPI_Comm comm, const char *dir, int n, const MapTensorInfo *tensors, int nmeta,
                                                const char *const *keys, const char *const *values, uint64_t max_shard_bytes,
                                                MapSafetensorsWriter *w);
/* MapSafetensorsWriterAddFile - a folder writer: puts `name` (no '/', not a weight file's name) with
   these bytes into the staging folder, so it appears with the weights in the one switch. Call it on
   every rank (only rank 0 writes); a failure is reported by Close on every rank. */
PetscErrorCode MapSafetensorsWriterAddFile(MapSafetensorsWriter w, const char *name, const void *data, size_t len);
/* MapSafetensorsWriterReplaces - names of files the export owns although it may not write them (a
   tokenizer file the new model lacks): an old export's file of such a name is not carried over into
   the new folder. Other files of an existing folder are, except the old weights. `names` must stay
   valid until Close. Not collective (it matters on rank 0). */
PetscErrorCode MapSafetensorsWriterReplaces(MapSafetensorsWriter w, int n, const char *const *names);
/* MapSafetensorsWriterWriteF32 - writes elements [start, start+count) of tensor i. Not collective. */
PetscErrorCode MapSafetensorsWriterWriteF32(MapSafetensorsWriter w, int i, int64_t start, int64_t count, const float *data);
/* MapSafetensorsWriterWriteRaw - writes tensor i (any dtype but OTHER) whole from its raw little-endian
   bytes, e.g. an I64 or BOOL buffer kept exactly. Not collective: one rank calls it. */
PetscErrorCode MapSafetensorsWriterWriteRaw(MapSafetensorsWriter w, int i, const void *bytes);
/* MapSafetensorsWriterClose - collective: closes, checks every rank succeeded, renames into place. */
PetscErrorCode MapSafetensorsWriterClose(MapSafetensorsWriter *w);
/* MapSafetensorsWriterAbort - removes the temporary files (error paths). */
PetscErrorCode MapSafetensorsWriterAbort(MapSafetensorsWriter *w);

/* MapSafetensorsBuildHeader - the bytes a writer puts before the data: the u64 length and the JSON
   header {"__metadata__": {"format": "pt", keys...}, tensors in the given order}, padded with
   spaces to a multiple of 8 bytes. tensors[i].name/dtype/ndim/shape are inputs; numel, begin, end
   and file (0) are set (contiguous, in order). *header (PetscFree) holds *len bytes. Not collective. */
PetscErrorCode MapSafetensorsBuildHeader(int n, MapTensorInfo *tensors, int nmeta, const char *const *keys, const char *const *values,
                                         char **header, size_t *len);

/* IEEE half and bfloat16 conversions (round to nearest even). */
float    MapF16ToF32(uint16_t h);
float    MapBF16ToF32(uint16_t b);
uint16_t MapF32ToF16(float f);
uint16_t MapF32ToBF16(float f);
/* MapBF16ToF32Array - out[j] = MapBF16ToF32 of the j-th little-endian BF16 value at bf16 (any alignment), exactly. */
void MapBF16ToF32Array(const void *bf16, int64_t n, float *out);
/* MapF32ToF16Array - h[j] = MapF32ToF16(x[j]) for j < n, bit for bit; with F16C (vcvtps2ph, round to
   nearest even) when the CPU has it: the scalar routine's subnormal branch makes it ~4x slower. */
void MapF32ToF16Array(const float *x, int64_t n, uint16_t *h);

#endif
