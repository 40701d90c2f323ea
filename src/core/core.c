/* core: package registration, option helpers, layout, timing (temporary files, paths, sha256: core_io.c; RNG: core_rng.c). */
#include <mapmerge/core.h>
#include "fixedimpl.h"
#include <time.h>

PetscLogEvent MAP_EVENT_StoreRead, MAP_EVENT_StoreWrite, MAP_EVENT_Import, MAP_EVENT_Export, MAP_EVENT_MergeApply,
  MAP_EVENT_EvalLoss, MAP_EVENT_EvalComm, MAP_EVENT_SurrogateFit, MAP_EVENT_ParetoSolve, MAP_EVENT_Journal, MAP_EVENT_SurrogateSolve;
PetscClassId     MAP_CLASSID;
int              MapExitStatus           = 0;
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
  *n                = 0;
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

/* ---- layout ---- */
void MapLayoutRange(int64_t P, int size, int rank, int64_t *lo, int64_t *hi)
{
  const int64_t align  = 64;
  int64_t       blocks = (P + align - 1) / align;
  int64_t       q = blocks / size, r = blocks % size;
  int64_t       b0 = rank * q + (rank < r ? rank : r);
  int64_t       b1 = b0 + q + (rank < r ? 1 : 0);
  *lo              = b0 * align < P ? b0 * align : P;
  *hi              = b1 * align < P ? b1 * align : P;
}

PetscErrorCode MapLayoutCreate(MPI_Comm comm, int64_t P, MapLayout *layout)
{
  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &layout->rank));
  PetscCallMPI(MPI_Comm_size(comm, &layout->size));
  layout->P = P;
  MapLayoutRange(P, layout->size, layout->rank, &layout->lo, &layout->hi);
  PetscFunctionReturn(0);
}

double MapWallTime(void) { return MPI_Wtime(); }

PetscErrorCode MapWaitPolitely(MPI_Request *req)
{
  int             done = 0;
  struct timespec nap  = {0, 50000};

  PetscFunctionBegin;
  for (;;) {
    PetscCallMPI(MPI_Test(req, &done, MPI_STATUS_IGNORE));
    if (done) break;
    nanosleep(&nap, NULL);
    if (nap.tv_nsec < 2000000) nap.tv_nsec *= 2;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapBcastPolitely(void *buf, int count, int root, MPI_Comm comm)
{
  MPI_Request req;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Ibcast(buf, count, MPI_BYTE, root, comm, &req));
  PetscCall(MapWaitPolitely(&req));
  PetscFunctionReturn(0);
}

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
