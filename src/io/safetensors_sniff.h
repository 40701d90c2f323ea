/* Private to the safetensors reader: clear words for a checkpoint that is not safetensors. */
#ifndef MAPMERGE_SAFETENSORS_SNIFF_H
#define MAPMERGE_SAFETENSORS_SNIFF_H

#include <mapmerge/safetensors.h>

/* MapCheckpointSniff_Private - an error that says what `path` is when it is recognisably not a
   safetensors checkpoint: a PyTorch pickle (zip or legacy pickle protocol 2-5), a GGUF or ONNX
   file, a folder holding only one of those, or a missing path that looks like a Hugging Face hub id.
   Returns 0 for anything else (the reader's own checks follow). Not collective (rank 0 reads). */
PetscErrorCode MapCheckpointSniff_Private(const char *path);

/* The shell command that converts a PyTorch pickle IN to OUT.safetensors with torch alone (no
   safetensors package, as on Debian), written into buf. Exposed for the documentation test. */
void MapCheckpointConvertCommand_Private(const char *in, const char *out, char *buf, size_t len);

#endif
