/* core_io: temporary outputs, input/output path checks, sha256 (OpenSSL), the store checksum's text form and the
 * finiteness scan (core_io.h; the checksum itself and the range digest of files: core_digest.c). */
#include <math.h>
#include <mapmerge/core.h>
#include <openssl/evp.h>
#include <errno.h>
#include <libgen.h>
#include <unistd.h>
#include <sys/stat.h>

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

const char *MapNonRegularKind(const char *path)
{
  struct stat sb;

  /* stat, not open: opening a FIFO for reading blocks until someone writes to it */
  if (stat(path, &sb) || S_ISREG(sb.st_mode)) return NULL; /* missing or unreadable: the caller's open says why */
  return S_ISFIFO(sb.st_mode)   ? "a FIFO (named pipe)"
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

void MapChecksumFormat(uint64_t sum, char text[24]) { snprintf(text, 24, "map64:%016llx", (unsigned long long)sum); }

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

/* one chunk of x - pre: any NaN/Inf among the x or among the differences (branch-free, vectorises) */
static int ChunkSubtractHasNonFinite(const float *x, const float *pre)
{
  uint32_t bad = 0;
  for (int j = 0; j < MAP_FINITE_CHUNK; j++) {
    float    d = x[j] - pre[j];
    uint32_t w, v;
    memcpy(&w, x + j, sizeof(w));
    memcpy(&v, &d, sizeof(v));
    bad |= ((w & 0x7f800000u) == 0x7f800000u) | ((v & 0x7f800000u) == 0x7f800000u);
  }
  return bad != 0;
}

static void ChunkSubtract(float *restrict x, const float *restrict pre) /* restrict: so it vectorises */
{
  for (int j = 0; j < MAP_FINITE_CHUNK; j++) x[j] -= pre[j];
}

int64_t MapSubtractFiniteF32(float *x, const float *pre, int64_t n, int *overflow)
{
  int64_t i0 = 0, bad;

  *overflow = 0;
  /* clean chunks: checked and subtracted while in cache, one pass over memory */
  for (; i0 + MAP_FINITE_CHUNK <= n; i0 += MAP_FINITE_CHUNK) {
    if (ChunkSubtractHasNonFinite(x + i0, pre + i0)) break;
    ChunkSubtract(x + i0, pre + i0);
  }
  /* the tail, or from the first chunk with a bad value on: a non-finite x anywhere comes first */
  bad = MapFirstNonFiniteF32(x + i0, n - i0);
  if (bad >= 0) return i0 + bad;
  for (int64_t j = i0; j < n; j++) x[j] -= pre[j];
  bad = MapFirstNonFiniteF32(x + i0, n - i0);
  if (bad >= 0) *overflow = 1;
  return bad >= 0 ? i0 + bad : -1;
}
