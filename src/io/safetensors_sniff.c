/* What a checkpoint path is when it is not safetensors, so the user reads "a PyTorch pickle; convert
 * it with ..." instead of "header length 578712552184433488 exceeds the limit". */
#define _POSIX_C_SOURCE 200809L
#include "safetensors_sniff.h"
#include "safetensorsimpl.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* torch.load with weights_only (no code runs), the bytes of each tensor written by hand in the
   safetensors layout: works with Debian's python3-torch, which has no safetensors module */
void MapCheckpointConvertCommand_Private(const char *in, const char *out, char *buf, size_t len)
{
  map_fmt(buf, len,
          "python3 -c \"import torch,json,struct,sys,itertools as I;d=torch.load(sys.argv[1],map_location='cpu',weights_only=True);"
          "d=d.get('state_dict',d);T={torch.float32:'F32',torch.float16:'F16',torch.bfloat16:'BF16',torch.float64:'F64',"
          "torch.int64:'I64',torch.int32:'I32',torch.int16:'I16',torch.int8:'I8',torch.uint8:'U8',torch.bool:'BOOL'};"
          "B=[v.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() for v in d.values()];"
          "E=[0,*I.accumulate(map(len,B))];h=json.dumps({'__metadata__':{'format':'pt'},**{k:{'dtype':T[v.dtype],'shape':list(v.shape),"
          "'data_offsets':E[i:i+2]} for i,(k,v) in enumerate(d.items())}}).encode();h+=b' '*(-len(h)%%8);"
          "open(sys.argv[2],'wb').write(struct.pack('<Q',len(h))+h+b''.join(B))\" %s %s",
          in, out);
}

static PetscBool EndsWith(const char *s, const char *suffix)
{
  size_t a = strlen(s), b = strlen(suffix);
  return (PetscBool)(a >= b && !strcmp(s + a - b, suffix));
}

/* "org/name" or "name" as the hub spells them: letters, digits, '-', '_', '.', at most one '/',
   not a relative path (./, ../) and without a checkpoint file extension */
static PetscBool LooksLikeHubId(const char *p)
{
  int         slashes = 0;
  const char *exts[]  = {".safetensors", ".json", ".bin", ".pt", ".pth", ".gguf", ".onnx", ".h5"};

  if (!p[0] || p[0] == '/' || p[0] == '.' || p[strlen(p) - 1] == '/' || strstr(p, "//") || strstr(p, "..")) return PETSC_FALSE;
  for (const char *c = p; *c; c++) {
    if (*c == '/') slashes++;
    else if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.') return PETSC_FALSE;
  }
  for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
    if (EndsWith(p, exts[i])) return PETSC_FALSE;
  return (PetscBool)(slashes <= 1);
}

/* what the first bytes say; NULL when they say nothing (or look like safetensors) */
static const char *KindOfBytes(const unsigned char *b, size_t n, uint64_t size)
{
  if (n >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4) return "pickle-zip";
  if (n >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5) return "pickle";
  if (n >= 4 && !memcmp(b, "GGUF", 4)) return "gguf";
  if (n >= 8) {
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | b[i];
    /* ONNX ModelProto: field 1 ir_version (tag 0x08, a small varint), then another field tag;
       only trusted when the bytes cannot be a safetensors header length anyway */
    if ((size < 8 || hl > size - 8 || n < 9 || b[8] != '{') && b[0] == 0x08 && b[1] >= 1 && b[1] <= 30 && (b[2] & 7) == 2) return "onnx";
  }
  return NULL;
}

static PetscErrorCode ErrorForKind(const char *path, const char *kind)
{
  char cmd[1400];

  PetscFunctionBegin;
  if (!strncmp(kind, "pickle", 6)) {
    MapCheckpointConvertCommand_Private(path, "model.safetensors", cmd, sizeof(cmd));
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
            "%s is a PyTorch pickle (torch.save, %s), not a safetensors checkpoint; mapmerge does not unpickle (unpickling can run code). "
            "Convert it to safetensors once, with the safetensors package: python3 -c \"import torch; from safetensors.torch import save_file; "
            "save_file(torch.load('%s', weights_only=True), 'model.safetensors')\" or with torch alone (e.g. Debian's python3-torch): %s",
            path, strcmp(kind, "pickle-zip") ? "legacy pickle format" : "zip format", path, cmd);
  }
  if (!strcmp(kind, "gguf"))
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
            "%s is a GGUF file (llama.cpp; magic \"GGUF\"), not a safetensors checkpoint; merge the Hugging Face safetensors model it "
            "was made from (GGUF weights are usually quantized), then convert the merged model with llama.cpp if you need GGUF",
            path);
  SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
          "%s is an ONNX model (protobuf), not a safetensors checkpoint; merge the PyTorch / Hugging Face safetensors checkpoint it was exported from",
          path);
}

/* a folder without model.safetensors[.index.json]: name what it holds instead */
static PetscErrorCode SniffFolder(const char *path)
{
  char        f[MAP_PATH_LEN];
  const char *pickles[] = {"pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth"};
  const char *others[]  = {"model.onnx", "model.gguf"};

  PetscFunctionBegin;
  map_fmt(f, sizeof(f), "%s/model.safetensors", path);
  if (!access(f, F_OK)) PetscFunctionReturn(0);
  map_fmt(f, sizeof(f), "%s/model.safetensors.index.json", path);
  if (!access(f, F_OK)) PetscFunctionReturn(0);
  for (size_t i = 0; i < sizeof(pickles) / sizeof(pickles[0]); i++) {
    map_fmt(f, sizeof(f), "%s/%s", path, pickles[i]);
    if (!access(f, F_OK)) {
      char cmd[1400];
      MapCheckpointConvertCommand_Private(f, "MODEL_DIR/model.safetensors", cmd, sizeof(cmd));
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN,
              "checkpoint folder %s holds %s (PyTorch pickle) but no model.safetensors; convert it to safetensors first%s%s", path,
              pickles[i], strstr(pickles[i], "index") ? " (each shard; then write model.safetensors.index.json)" : ", e.g. with torch alone: ",
              strstr(pickles[i], "index") ? "" : cmd);
    }
  }
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
    map_fmt(f, sizeof(f), "%s/%s", path, others[i]);
    if (!access(f, F_OK)) PetscCall(ErrorForKind(f, strstr(others[i], "onnx") ? "onnx" : "gguf"));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapCheckpointSniff_Private(const char *path)
{
  struct stat   sb;
  unsigned char b[16];
  ssize_t       n;
  int           fd;

  PetscFunctionBegin;
  if (stat(path, &sb)) {
    int err = errno;
    PetscCheck(!(err == ENOENT && LooksLikeHubId(path)), PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN,
               "cannot open checkpoint %s: no such file or folder. If it is a Hugging Face hub id, download it first, e.g. "
               "`huggingface-cli download %s --local-dir DIR` (or `hf download %s --local-dir DIR`), and give the folder DIR",
               path, path, path);
    PetscFunctionReturn(0); /* the reader says why */
  }
  if (S_ISDIR(sb.st_mode)) {
    PetscCall(SniffFolder(path));
    PetscFunctionReturn(0);
  }
  if (!S_ISREG(sb.st_mode)) PetscFunctionReturn(0); /* FIFOs and devices: never opened here (a FIFO open blocks) */
  if (EndsWith(path, ".onnx")) PetscCall(ErrorForKind(path, "onnx"));
  if (EndsWith(path, ".gguf")) PetscCall(ErrorForKind(path, "gguf"));
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) PetscFunctionReturn(0);
  do n = pread(fd, b, sizeof(b), 0);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) PetscFunctionReturn(0);
  const char *kind = KindOfBytes(b, (size_t)n, (uint64_t)sb.st_size);
  if (kind) PetscCall(ErrorForKind(path, kind));
  PetscFunctionReturn(0);
}
