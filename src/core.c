/* core: package registration, temp-file registry, option helpers, layout, RNG, sha256. */
#include <mapmerge/core.h>
#include "fixedimpl.h"
#include <openssl/evp.h>
#include <errno.h>
#include <libgen.h>
#include <unistd.h>
#include <sys/stat.h>

PetscLogEvent MAP_EVENT_StoreRead, MAP_EVENT_StoreWrite, MAP_EVENT_Import, MAP_EVENT_Export, MAP_EVENT_MergeApply,
  MAP_EVENT_EvalLoss, MAP_EVENT_EvalComm, MAP_EVENT_SurrogateFit, MAP_EVENT_ParetoSolve, MAP_EVENT_Journal, MAP_EVENT_SurrogateSolve;
PetscClassId MAP_CLASSID;
int          MapExitStatus = 0;
static PetscBool map_package_initialized = PETSC_FALSE;

PetscErrorCode MapInitializePackage(void)
{
  PetscFunctionBegin;
  if (map_package_initialized) PetscFunctionReturn(0);
  map_package_initialized = PETSC_TRUE;
  MapPinBLASThreads(); /* before any BLAS call: a threaded sgemm's bits follow the cores it may use */
  PetscCall(PetscClassIdRegister("mapmerge", &MAP_CLASSID));
  PetscCall(PetscLogEventRegister("MapStoreRead", MAP_CLASSID, &MAP_EVENT_StoreRead));
  PetscCall(PetscLogEventRegister("MapStoreWrite", MAP_CLASSID, &MAP_EVENT_StoreWrite));
  PetscCall(PetscLogEventRegister("MapImport", MAP_CLASSID, &MAP_EVENT_Import));
  PetscCall(PetscLogEventRegister("MapExport", MAP_CLASSID, &MAP_EVENT_Export));
  PetscCall(PetscLogEventRegister("MapMergeApply", MAP_CLASSID, &MAP_EVENT_MergeApply));
  PetscCall(PetscLogEventRegister("MapEvalLoss", MAP_CLASSID, &MAP_EVENT_EvalLoss));
  PetscCall(PetscLogEventRegister("MapEvalComm", MAP_CLASSID, &MAP_EVENT_EvalComm));
  PetscCall(PetscLogEventRegister("MapSurrogateFit", MAP_CLASSID, &MAP_EVENT_SurrogateFit));
  PetscCall(PetscLogEventRegister("MapParetoSolve", MAP_CLASSID, &MAP_EVENT_ParetoSolve));
  PetscCall(PetscLogEventRegister("MapSurrogateSolve", MAP_CLASSID, &MAP_EVENT_SurrogateSolve));
  PetscCall(PetscLogEventRegister("MapJournal", MAP_CLASSID, &MAP_EVENT_Journal));
  PetscFunctionReturn(0);
}

/* ---- temporary files ---- */
#define MAP_MAX_TEMP 1024
static char map_temp[MAP_MAX_TEMP][MAP_PATH_LEN];

PetscErrorCode MapTempRegister(const char *path)
{
  PetscFunctionBegin;
  for (int i = 0; i < MAP_MAX_TEMP; i++) {
    if (!map_temp[i][0]) {
      PetscCall(PetscStrncpy(map_temp[i], path, sizeof(map_temp[i])));
      PetscFunctionReturn(0);
    }
  }
  SETERRQ(PETSC_COMM_SELF, PETSC_ERR_MEM, "too many temporary files open (%d)", MAP_MAX_TEMP);
}

PetscErrorCode MapTempUnregister(const char *path)
{
  PetscFunctionBegin;
  for (int i = 0; i < MAP_MAX_TEMP; i++)
    if (map_temp[i][0] && !strcmp(map_temp[i], path)) map_temp[i][0] = 0;
  PetscFunctionReturn(0);
}

void MapTempCleanup(void)
{
  /* files first, then the (private, temporary or staging) folders that held them, the last
     registered first so that a folder inside another goes before it */
  for (int i = 0; i < MAP_MAX_TEMP; i++)
    if (map_temp[i][0] && unlink(map_temp[i]) == 0) map_temp[i][0] = 0;
  for (int i = MAP_MAX_TEMP - 1; i >= 0; i--) {
    if (map_temp[i][0]) {
      (void)rmdir(map_temp[i]);
      map_temp[i][0] = 0;
    }
  }
}

PetscErrorCode MapStrlcat(char *dst, const char *src, size_t size)
{
  size_t have, add;

  PetscFunctionBegin;
  PetscCheck(size > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_SIZ, "MapStrlcat: destination of size 0");
  have = strnlen(dst, size);
  PetscCheck(have < size, PETSC_COMM_SELF, PETSC_ERR_ARG_CORRUPT, "MapStrlcat: destination is not terminated within its %zu bytes", size);
  add = strlen(src);
  if (add > size - have - 1) add = size - have - 1;
  memcpy(dst + have, src, add);
  dst[have + add] = 0;
  PetscFunctionReturn(0);
}

const char *MapNonRegularKind(const char *path)
{
  struct stat sb;

  /* stat, not open: opening a FIFO for reading blocks until someone writes to it */
  if (stat(path, &sb) || S_ISREG(sb.st_mode)) return NULL; /* missing or unreadable: the caller's open says why */
  return S_ISFIFO(sb.st_mode) ? "a FIFO (named pipe)"
       : S_ISDIR(sb.st_mode)  ? "a directory"
       : S_ISCHR(sb.st_mode)  ? "a character device"
       : S_ISBLK(sb.st_mode)  ? "a block device"
       : S_ISSOCK(sb.st_mode) ? "a socket"
                              : "not a regular file";
}

PetscErrorCode MapCheckInputFile(const char *path, const char *what)
{
  const char *kind = MapNonRegularKind(path);

  PetscFunctionBegin;
  PetscCheck(!kind, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s %s is %s; mapmerge reads only regular files", what, path, kind);
  PetscFunctionReturn(0);
}

PetscErrorCode MapTempName(const char *path, char *tmp, size_t len)
{
  char d[MAP_PATH_LEN], b[MAP_PATH_LEN];

  PetscFunctionBegin;
  PetscCall(PetscStrncpy(d, path, sizeof(d)));
  PetscCall(PetscStrncpy(b, path, sizeof(b)));
  PetscCheck((size_t)snprintf(tmp, len, "%s/.%s.tmp.%ld", dirname(d), basename(b), (long)getpid()) < len, PETSC_COMM_SELF,
             PETSC_ERR_ARG_SIZ, "path too long: %s", path);
  PetscFunctionReturn(0);
}

PetscErrorCode MapCheckNotInput(MPI_Comm comm, const char *output, const char *option, int n, const char *const *inputs)
{
  PetscMPIInt rank;
  int         same = -1;
  struct stat so, si;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (!rank && output && output[0] && stat(output, &so) == 0)
    for (int i = 0; i < n && same < 0; i++)
      if (inputs[i] && inputs[i][0] && stat(inputs[i], &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino) same = i;
  PetscCallMPI(MPI_Bcast(&same, 1, MPI_INT, 0, comm));
  PetscCheck(same < 0, comm, PETSC_ERR_ARG_IDN, "%s %s is the input %s (the same file): writing it would destroy that input; choose another %s",
             option, output, inputs[same], option);
  PetscFunctionReturn(0);
}

PetscErrorCode MapCheckWritable(const char *path, const char *option)
{
  char d[MAP_PATH_LEN];

  PetscFunctionBegin;
  PetscCall(PetscStrncpy(d, path, sizeof(d)));
  const char *dir = dirname(d);
  struct stat sb;
  PetscCheck(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode), PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN,
             "%s %s: directory %s does not exist", option, path, dir);
  PetscCheck(access(dir, W_OK | X_OK) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s %s: directory %s is not writable (%s)",
             option, path, dir, strerror(errno));
  PetscFunctionReturn(0);
}

/* ---- options ---- */
/* Options that some mapmerge command reads. One YAML file describes an experiment for all commands
   (import, eval, run, export), so a command tolerates these when it does not use them itself;
   anything else left unused is a typo and an error. */
static const char *map_known_options[] = {
#include "map_known_options.h"
  NULL};

const char *const *MapKnownOptionNames(void) { return map_known_options; }

static PetscBool MapOptionIsKnown(const char *name)
{
  for (int i = 0; map_known_options[i]; i++)
    if (!strcmp(name, map_known_options[i] + 1)) return PETSC_TRUE; /* entries carry the leading '-' */
  return PETSC_FALSE;
}

/* The path options are read into MAP_PATH_LEN buffers, which truncate silently: a longer path (or
   list item) would name another file. Looked up again here, whole, and refused. */
static PetscErrorCode MapCheckPathLengths(MPI_Comm comm)
{
  static const char *paths[] = {"-map_store", "-map_output", "-map_results", "-map_run", "-map_sample_file", "-map_eval_tmpdir", "-map_pretrained",
                                "-map_replay", "-map_coeffs", "-map_zoo_data", "-map_task_models", "-map_eval_data", "-map_test_data", NULL};
  const size_t       big     = (size_t)1 << 20;
  char              *v;
  PetscBool          set;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(big, &v));
  for (int i = 0; paths[i]; i++) {
    PetscCall(PetscOptionsGetString(NULL, NULL, paths[i], v, big, &set));
    if (!set) continue;
    size_t item = 0, longest = 0;
    for (const char *p = v;; p++) { /* lists: each comma-separated item is a path */
      if (*p == ',' || !*p) {
        longest = PetscMax(longest, item);
        item    = 0;
        if (!*p) break;
      } else item++;
    }
    if (longest >= MAP_PATH_LEN) {
      PetscCall(PetscFree(v));
      SETERRQ(comm, PETSC_ERR_ARG_SIZ, "%s: a path of %zu characters is longer than the limit of %d", paths[i], longest, MAP_PATH_LEN - 1);
    }
  }
  PetscCall(PetscFree(v));
  PetscFunctionReturn(0);
}

PetscErrorCode MapCheckOptionsLeft(MPI_Comm comm)
{
  PetscInt nleft;
  char   **names, **values;
  char     msg[4096] = "";

  PetscFunctionBegin;
  PetscCall(PetscOptionsLeftGet(NULL, &nleft, &names, &values));
  PetscInt nbad = 0;
  for (PetscInt i = 0; i < nleft; i++) {
    if (MapOptionIsKnown(names[i])) continue;
    nbad++;
    size_t l = strlen(msg);
    snprintf(msg + l, sizeof(msg) - l, " -%s%s%s", names[i], values[i] ? " " : "", values[i] ? values[i] : "");
  }
  PetscCall(PetscOptionsLeftRestore(NULL, &nleft, &names, &values));
  PetscCheck(nbad == 0, comm, PETSC_ERR_ARG_WRONG,
             "unknown or unused option(s):%s (a typo? `mapmerge <command> -help` lists the options)", msg);
  PetscCall(MapCheckPathLengths(comm));
  PetscFunctionReturn(0);
}

PetscErrorCode MapSplitList(const char *s, char sep, int *n, char ***list)
{
  int cnt = 1;

  PetscFunctionBegin;
  for (const char *p = s; *p; p++)
    if (*p == sep) cnt++;
  PetscCall(PetscCalloc1(cnt + 1, list));
  *n = 0;
  const char *start = s;
  for (const char *p = s;; p++) {
    if (*p == sep || *p == 0) {
      size_t len = (size_t)(p - start);
      while (len && (*start == ' ')) start++, len--;
      while (len && start[len - 1] == ' ') len--;
      PetscCall(PetscMalloc1(len + 1, &(*list)[*n]));
      memcpy((*list)[*n], start, len);
      (*list)[*n][len] = 0;
      (*n)++;
      if (!*p) break;
      start = p + 1;
    }
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapFreeList(int n, char ***list)
{
  PetscFunctionBegin;
  if (!*list) PetscFunctionReturn(0);
  for (int i = 0; i < n; i++) PetscCall(PetscFree((*list)[i]));
  PetscCall(PetscFree(*list));
  PetscFunctionReturn(0);
}

PetscErrorCode MapOptionsGetList(const char *name, int *n, char ***list, PetscBool *set)
{
  char      buf[65536];
  PetscBool flg;

  PetscFunctionBegin;
  *n    = 0;
  *list = NULL;
  PetscCall(PetscOptionsGetString(NULL, NULL, name, buf, sizeof(buf), &flg));
  if (set) *set = flg;
  if (flg && buf[0]) PetscCall(MapSplitList(buf, ',', n, list));
  PetscFunctionReturn(0);
}

PetscErrorCode MapOptionsGetRealList(const char *name, int max, double *vals, int *n, PetscBool *set)
{
  PetscInt  cnt = max;
  PetscReal tmp[1024];
  PetscBool flg;

  PetscFunctionBegin;
  PetscCheck(max <= 1024, PETSC_COMM_SELF, PETSC_ERR_ARG_SIZ, "too many values requested");
  PetscCall(PetscOptionsGetRealArray(NULL, NULL, name, tmp, &cnt, &flg));
  for (PetscInt i = 0; i < cnt; i++) vals[i] = tmp[i];
  *n = flg ? (int)cnt : 0;
  if (set) *set = flg;
  PetscFunctionReturn(0);
}

/* ---- sha256 ---- */
static void map_hex(const unsigned char *d, unsigned len, char *hex)
{
  for (unsigned i = 0; i < len; i++) sprintf(hex + 2 * i, "%02x", d[i]);
  hex[2 * len] = 0;
}

void MapSha256(const void *data, size_t len, char hex[65])
{
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned      dl = 0;
  EVP_Digest(data, len, d, &dl, EVP_sha256(), NULL);
  map_hex(d, dl, hex);
}

PetscErrorCode MapSha256File(const char *path, char hex[65])
{
  FILE         *f;
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned      dl = 0;
  static char   buf[1 << 20];
  size_t        r;

  PetscFunctionBegin;
  PetscCall(MapCheckInputFile(path, "input"));
  f = fopen(path, "rb");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot open %s: %s", path, strerror(errno));
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  while ((r = fread(buf, 1, sizeof(buf), f)) > 0) EVP_DigestUpdate(ctx, buf, r);
  int err = ferror(f);
  fclose(f);
  EVP_DigestFinal_ex(ctx, d, &dl);
  EVP_MD_CTX_free(ctx);
  PetscCheck(!err, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "read error on %s", path);
  map_hex(d, dl, hex);
  PetscFunctionReturn(0);
}

/* ---- layout ---- */
void MapLayoutRange(int64_t P, int size, int rank, int64_t *lo, int64_t *hi)
{
  const int64_t align  = 64;
  int64_t       blocks = (P + align - 1) / align;
  int64_t       q = blocks / size, r = blocks % size;
  int64_t       b0 = rank * q + (rank < r ? rank : r);
  int64_t       b1 = b0 + q + (rank < r ? 1 : 0);
  *lo = b0 * align < P ? b0 * align : P;
  *hi = b1 * align < P ? b1 * align : P;
}

uint64_t MapChecksum64(const void *data, size_t esize, int64_t n, int64_t first)
{
  uint64_t sum = 0;

  for (int64_t j = 0; j < n; j++) {
    uint64_t bits;
    if (esize == 2) {
      uint16_t h;
      memcpy(&h, (const char *)data + 2 * (size_t)j, 2);
      bits = h;
    } else {
      uint32_t w;
      memcpy(&w, (const char *)data + 4 * (size_t)j, 4);
      bits = w;
    }
    /* splitmix64's finaliser twice: of the index, then of it xor the bits */
    uint64_t z = (uint64_t)(first + j) * 0x9e3779b97f4a7c15ULL;
    z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z          = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z          = (z ^ (z >> 31)) ^ (bits * 0x9e3779b97f4a7c15ULL);
    z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z          = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    sum += z ^ (z >> 31);
  }
  return sum;
}

/* one chunk's test: any element with all exponent bits set (NaN or Inf); no early exit, so it vectorises */
#define MAP_FINITE_CHUNK 512
static int ChunkHasNonFinite(const float *x)
{
  uint32_t bad = 0;
  for (int j = 0; j < MAP_FINITE_CHUNK; j++) {
    uint32_t w;
    memcpy(&w, x + j, sizeof(w));
    bad |= (w & 0x7f800000u) == 0x7f800000u;
  }
  return bad != 0;
}

int64_t MapFirstNonFiniteF32(const float *x, int64_t n)
{
  int64_t i0 = 0;
  for (; i0 + MAP_FINITE_CHUNK <= n; i0 += MAP_FINITE_CHUNK)
    if (ChunkHasNonFinite(x + i0)) break;
  for (int64_t i = i0; i < n; i++)
    if (!isfinite(x[i])) return i;
  return -1;
}

void MapChecksumFormat(uint64_t sum, char text[24]) { snprintf(text, 24, "map64:%016llx", (unsigned long long)sum); }

PetscErrorCode MapLayoutCreate(MPI_Comm comm, int64_t P, MapLayout *layout)
{
  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &layout->rank));
  PetscCallMPI(MPI_Comm_size(comm, &layout->size));
  layout->P = P;
  MapLayoutRange(P, layout->size, layout->rank, &layout->lo, &layout->hi);
  PetscFunctionReturn(0);
}

/* ---- counter-based RNG ---- */
static inline uint64_t map_mix64(uint64_t z)
{
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t MapRngU64(uint64_t seed, uint64_t stream, uint64_t counter)
{
  uint64_t h = map_mix64(seed + 0x9e3779b97f4a7c15ULL);
  h          = map_mix64(h ^ (stream + 0x632be59bd9b4e019ULL));
  return map_mix64(h ^ (counter * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL));
}

double MapRngU01(uint64_t seed, uint64_t stream, uint64_t counter)
{
  return (double)(MapRngU64(seed, stream, counter) >> 11) * 0x1.0p-53;
}

double MapWallTime(void) { return MPI_Wtime(); }

PetscErrorCode MapProgress(MPI_Comm comm, const char *label, PetscInt done, PetscInt total, double t0)
{
  static double last = 0;

  PetscFunctionBegin;
  /* at most one line a second (and always the last one), so fast loops do not flood the log */
  if (done < total && MapWallTime() - last < 1.0) PetscFunctionReturn(0);
  last       = MapWallTime();
  double el  = MapWallTime() - t0;
  double eta = done > 0 ? el / done * (total - done) : 0;
  PetscCall(PetscPrintf(comm, "%s: %" PetscInt_FMT "/%" PetscInt_FMT ", elapsed %.1fs, ETA %.1fs\n", label, done, total, el, eta));
  PetscFunctionReturn(0);
}
