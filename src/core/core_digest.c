/* core_digest: the store checksum (MapChecksum64, with an AVX-512 path of the same definition) and the
 * range digest of files (MapFileDigest), hashed by several ranks over the bytes they read anyway. */
#define _POSIX_C_SOURCE 200809L
#include <mapmerge/core.h>
#include <openssl/evp.h>
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the store checksum ---- */
#define MAP_C1 0x9e3779b97f4a7c15ULL
#define MAP_C2 0xbf58476d1ce4e5b9ULL
#define MAP_C3 0x94d049bb133111ebULL

static uint64_t Checksum64Generic(const void *data, size_t esize, int64_t n, int64_t first)
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
    uint64_t z = (uint64_t)(first + j) * MAP_C1;
    z          = (z ^ (z >> 30)) * MAP_C2;
    z          = (z ^ (z >> 27)) * MAP_C3;
    z          = (z ^ (z >> 31)) ^ (bits * MAP_C1);
    z          = (z ^ (z >> 30)) * MAP_C2;
    z          = (z ^ (z >> 27)) * MAP_C3;
    sum += z ^ (z >> 31);
  }
  return sum;
}

#if defined(__x86_64__) && defined(__GNUC__)
  #include <immintrin.h>
  #define MAP_MIX(z, s, c) _mm512_mullo_epi64(_mm512_xor_si512((z), _mm512_srli_epi64((z), (s))), (c))
/* The same arithmetic 8 elements at a time: vpmullq is the wrapping 64-bit multiply, and a sum mod
   2^64 does not depend on the order of its terms, so the result is the generic one bit for bit. */
__attribute__((target("avx512f,avx512dq"))) static uint64_t Checksum64AVX512(const void *data, size_t esize, int64_t n, int64_t first)
{
  const __m512i c1 = _mm512_set1_epi64((long long)MAP_C1), c2 = _mm512_set1_epi64((long long)MAP_C2), c3 = _mm512_set1_epi64((long long)MAP_C3);
  const __m512i step = _mm512_set1_epi64(8);
  __m512i       idx  = _mm512_add_epi64(_mm512_set1_epi64(first), _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
  __m512i       acc  = _mm512_setzero_si512();
  int64_t       j    = 0;

  for (; j + 8 <= n; j += 8) {
    __m512i bits = esize == 2 ? _mm512_cvtepu16_epi64(_mm_loadu_si128((const __m128i *)((const uint16_t *)data + j)))
                              : _mm512_cvtepu32_epi64(_mm256_loadu_si256((const __m256i *)((const uint32_t *)data + j)));
    __m512i z    = _mm512_mullo_epi64(idx, c1);
    z            = MAP_MIX(z, 30, c2);
    z            = MAP_MIX(z, 27, c3);
    z            = _mm512_xor_si512(_mm512_xor_si512(z, _mm512_srli_epi64(z, 31)), _mm512_mullo_epi64(bits, c1));
    z            = MAP_MIX(z, 30, c2);
    z            = MAP_MIX(z, 27, c3);
    acc          = _mm512_add_epi64(acc, _mm512_xor_si512(z, _mm512_srli_epi64(z, 31)));
    idx          = _mm512_add_epi64(idx, step);
  }
  uint64_t lane[8], sum = 0;
  _mm512_storeu_si512(lane, acc);
  for (int l = 0; l < 8; l++) sum += lane[l];
  return sum + Checksum64Generic((const char *)data + (size_t)j * esize, esize, n - j, first + j);
}

static int HaveAVX512DQ(void)
{
  static int have = -1;
  if (have < 0) {
    __builtin_cpu_init();
    have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && !getenv("MAPMERGE_CHECKSUM_GENERIC");
  }
  return have;
}
#endif

uint64_t MapChecksum64(const void *data, size_t esize, int64_t n, int64_t first)
{
#if defined(__x86_64__) && defined(__GNUC__)
  if (HaveAVX512DQ()) return Checksum64AVX512(data, esize, n, first);
#endif
  return Checksum64Generic(data, esize, n, first);
}

/* ---- the range digest of a file ---- */
struct _p_MapFileDigest {
  char           path[MAP_PATH_LEN];
  int            fd;
  uint64_t       size, range, pos; /* pos: the next byte to hash (in one of this rank's ranges), or size when done */
  int64_t        nrange;
  unsigned char *mine;      /* [nrange]: 1 for the ranges this rank hashes */
  unsigned char *leaves;    /* [nrange * 32]: sha256 of each range this rank hashed, zeros elsewhere */
  EVP_MD_CTX    *ctx;       /* the range at pos, when pos is inside one */
  int            open;      /* ctx holds a started range */
  uint64_t       fed, read; /* bytes hashed from the caller's buffers / read here */
  unsigned char *scratch;
};

PetscErrorCode MapFileDigestCreate(const char *path, uint64_t range, MapFileDigest *d)
{
  struct stat   sb;
  MapFileDigest g;

  PetscFunctionBegin;
  PetscCheck(range >= 4096 && range % 4096 == 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "digest of %s: range size %llu is not a positive multiple of 4096",
             path, (unsigned long long)range);
  PetscCall(MapCheckInputFile(path, "input"));
  PetscCall(PetscNew(&g));
  PetscCall(PetscStrncpy(g->path, path, sizeof(g->path)));
  g->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (g->fd < 0 || fstat(g->fd, &sb)) {
    int e = errno;
    if (g->fd >= 0) close(g->fd);
    PetscCall(PetscFree(g));
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot open %s to hash it: %s", path, strerror(e));
  }
  g->size   = (uint64_t)sb.st_size;
  g->range  = range;
  g->nrange = g->size ? (int64_t)((g->size + range - 1) / range) : 1;
  g->pos    = g->size;
  g->ctx    = EVP_MD_CTX_new();
  PetscCall(PetscCalloc2(g->nrange, &g->mine, 32 * g->nrange, &g->leaves));
  *d = g;
  PetscFunctionReturn(0);
}

PetscErrorCode MapFileDigestGetRanges(MapFileDigest d, uint64_t *size, int64_t *nrange)
{
  PetscFunctionBegin;
  if (size) *size = d->size;
  if (nrange) *nrange = d->nrange;
  PetscFunctionReturn(0);
}

/* pos = the start of the first of this rank's ranges from range k on (or the end) */
static void DigestSkipTo(MapFileDigest d, int64_t k)
{
  while (k < d->nrange && !d->mine[k]) k++;
  d->pos = k < d->nrange ? (uint64_t)k * d->range : d->size;
}

PetscErrorCode MapFileDigestSetMine(MapFileDigest d, const PetscBool *mine)
{
  PetscFunctionBegin;
  for (int64_t k = 0; k < d->nrange; k++) d->mine[k] = mine[k] ? 1 : 0;
  DigestSkipTo(d, 0);
  /* an empty file is one empty range */
  if (d->size == 0 && d->mine[0]) EVP_Digest("", 0, d->leaves, NULL, EVP_sha256(), NULL);
  PetscFunctionReturn(0);
}

/* hashes bytes [pos, pos + len) (within one range), finishing the range at its end */
static void DigestUpdate(MapFileDigest d, const void *bytes, size_t len)
{
  int64_t  k   = (int64_t)(d->pos / d->range);
  uint64_t end = PetscMin(d->size, (uint64_t)(k + 1) * d->range);
  if (!d->open) {
    EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL);
    d->open = 1;
  }
  EVP_DigestUpdate(d->ctx, bytes, len);
  d->pos += len;
  if (d->pos == end) {
    EVP_DigestFinal_ex(d->ctx, d->leaves + 32 * k, NULL);
    d->open = 0;
    DigestSkipTo(d, k + 1);
  }
}

/* reads and hashes this rank's bytes from pos up to `target` (not the caller's: a gap, or the rest) */
static PetscErrorCode DigestReadTo(MapFileDigest d, uint64_t target)
{
  const size_t chunk = 1 << 20;

  PetscFunctionBegin;
  if (!d->scratch && d->pos < PetscMin(target, d->size)) PetscCall(PetscMalloc1(chunk, &d->scratch));
  while (d->pos < target && d->pos < d->size) {
    uint64_t rend = PetscMin(d->size, (d->pos / d->range + 1) * d->range);
    size_t   len  = (size_t)PetscMin(PetscMin(rend, target) - d->pos, (uint64_t)chunk);
    ssize_t  r    = pread(d->fd, d->scratch, len, (off_t)d->pos);
    PetscCheck(r > 0, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "hashing %s: read at byte %llu failed: %s", d->path, (unsigned long long)d->pos,
               r < 0 ? strerror(errno) : "end of file (the file shrank while it was read)");
    d->read += (uint64_t)r;
    DigestUpdate(d, d->scratch, (size_t)r);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapFileDigestFeed(MapFileDigest d, uint64_t off, size_t len, const void *bytes)
{
  const unsigned char *b   = (const unsigned char *)bytes;
  uint64_t             end = off + len;

  PetscFunctionBegin;
  while (off < end && d->pos < d->size) {
    if (d->pos > off) { /* hashed already, or not this rank's */
      b += PetscMin(d->pos, end) - off;
      off = PetscMin(d->pos, end);
      continue;
    }
    if (d->pos < off) { /* a gap (a header, a private tensor, another rank's bytes): read it here */
      PetscCall(DigestReadTo(d, off));
      continue;
    }
    uint64_t rend = PetscMin(d->size, (d->pos / d->range + 1) * d->range);
    size_t   n    = (size_t)(PetscMin(rend, end) - off);
    DigestUpdate(d, b, n);
    d->fed += n;
    b += n;
    off += n;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapFileDigestFinish(MapFileDigest d, const unsigned char **leaves, uint64_t *fed, uint64_t *read)
{
  PetscFunctionBegin;
  PetscCall(DigestReadTo(d, d->size));
  if (leaves) *leaves = d->leaves;
  if (fed) *fed = d->fed;
  if (read) *read = d->read;
  PetscFunctionReturn(0);
}

void MapFileDigestRoot(const unsigned char *leaves, int64_t nrange, char hex[65])
{
  MapSha256(leaves, 32 * (size_t)nrange, hex);
}

PetscErrorCode MapFileDigestCombine(MPI_Comm comm, const unsigned char *leaves, int64_t nrange, char hex[65])
{
  unsigned char *all;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(32 * (size_t)nrange, &all));
  PetscCallMPI(MPI_Allreduce(leaves, all, (int)(32 * nrange), MPI_UNSIGNED_CHAR, MPI_BOR, comm));
  MapFileDigestRoot(all, nrange, hex);
  PetscCall(PetscFree(all));
  PetscFunctionReturn(0);
}

PetscErrorCode MapFileDigestDestroy(MapFileDigest *d)
{
  PetscFunctionBegin;
  if (!*d) PetscFunctionReturn(0);
  if ((*d)->fd >= 0) close((*d)->fd);
  EVP_MD_CTX_free((*d)->ctx);
  PetscCall(PetscFree2((*d)->mine, (*d)->leaves));
  PetscCall(PetscFree((*d)->scratch));
  PetscCall(PetscFree(*d));
  PetscFunctionReturn(0);
}
