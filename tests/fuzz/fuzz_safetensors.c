/* libFuzzer harness for the safetensors header parser, the attack surface of every import.
 * Each input is tried two ways: as a whole file (u64 little-endian length, header, data) and as a
 * bare JSON header with an empty data section. A successful parse must satisfy the format's
 * invariants, and writing the parsed tensor list back out must parse again to the same list;
 * a violation abort()s, which the fuzzer reports as a crash. */
#include <mapmerge/safetensors.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  PetscBool init;
  if (PetscInitialized(&init) || !init) {
    if (PetscInitializeNoArguments()) abort();
  }
  /* parse errors are the expected outcome: return them quietly */
  if (PetscPushErrorHandler(PetscReturnErrorHandler, NULL)) abort();
  return 0;
}

static void check_invariants(int n, const MapTensorInfo *t, uint64_t data_size)
{
  uint64_t pos = 0;
  for (int i = 0; i < n; i++) {
    size_t isize = MapDTypeSize(t[i].dtype);
    if (t[i].begin != pos || t[i].end < t[i].begin || t[i].end > data_size) abort();
    if (t[i].ndim < 0 || t[i].ndim > MAP_MAX_NDIM || t[i].numel < 0 || t[i].file != 0) abort();
    if (strnlen(t[i].name, MAP_NAME_LEN) >= MAP_NAME_LEN) abort();
    int64_t numel = 1;
    for (int d = 0; d < t[i].ndim; d++) {
      if (t[i].shape[d] < 0) abort();
      numel *= t[i].shape[d];
    }
    if (numel != t[i].numel) abort();
    if (isize && (uint64_t)t[i].numel * isize != t[i].end - t[i].begin) abort();
    pos = t[i].end;
  }
  if (pos != data_size) abort();
}

/* writes the list back with the writer's header builder and parses that again */
static void check_roundtrip(int n, const MapTensorInfo *t, uint64_t data_size)
{
  MapTensorInfo *copy, *back = NULL;
  char          *hdr = NULL, *meta = NULL;
  size_t         len;
  int            nb = 0;

  for (int i = 0; i < n; i++)
    if (!t[i].name[0] || t[i].dtype == MAP_DTYPE_OTHER) return; /* the writer refuses these */
  if (PetscMalloc1(n + 1, &copy)) abort();
  memcpy(copy, t, sizeof(*t) * (size_t)n);
  if (MapSafetensorsBuildHeader(n, copy, 0, NULL, NULL, &hdr, &len)) abort();
  if (len < 8 || len % 8) abort();
  if (MapSafetensorsParseHeader("roundtrip", hdr + 8, len - 8, data_size, &nb, &back, &meta)) abort();
  if (nb != n) abort();
  for (int i = 0; i < n; i++) {
    if (strcmp(back[i].name, t[i].name) || back[i].dtype != t[i].dtype || back[i].ndim != t[i].ndim) abort();
    if (back[i].begin != t[i].begin || back[i].end != t[i].end || back[i].numel != t[i].numel) abort();
    for (int d = 0; d < t[i].ndim; d++)
      if (back[i].shape[d] != t[i].shape[d]) abort();
  }
  if (!meta || !strstr(meta, "\"format\":\"pt\"")) abort();
  PetscFree(meta);
  PetscFree(back);
  PetscFree(hdr);
  PetscFree(copy);
}

static void try_parse(const char *json, size_t len, uint64_t data_size)
{
  MapTensorInfo *t    = NULL;
  char          *meta = NULL;
  int            n    = -1;

  if (MapSafetensorsParseHeader("fuzz", json, len, data_size, &n, &t, &meta)) {
    if (t || meta || n != 0) abort(); /* a failed parse hands nothing back */
    return;
  }
  check_invariants(n, t, data_size);
  check_roundtrip(n, t, data_size);
  PetscFree(meta);
  PetscFree(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size >= 8) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | data[i];
    if (n <= size - 8) try_parse((const char *)data + 8, (size_t)n, size - 8 - n);
  }
  try_parse((const char *)data, size, 0);
  return 0;
}
