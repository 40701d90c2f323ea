/* MapStore, write side: the range digests of the source files (docs/storage.md, "Source digests"),
 * hashed over the bytes the data pass reads: each range of a file is hashed by the rank that reads
 * most of it, and the few bytes no rank's data pass reads (headers, private tensors, gaps) are read
 * by that rank alone. One pass over the inputs, shared by the ranks, same digest at any rank count. */
#include "storeimportimpl.h"
#include <limits.h>
#include <stdlib.h>

static PetscErrorCode DigestHook(void *ctx, int file, uint64_t off, size_t len, const void *bytes)
{
  Ckpt *ck = (Ckpt *)ctx;
  return MapFileDigestFeed(ck->dig[file], off, len, bytes);
}

/* bytes[k * size + r] += the bytes of [a, b) in range k read by rank r */
static void CountBytes(int64_t *bytes, int size, int r, uint64_t range, uint64_t a, uint64_t b)
{
  while (a < b) {
    uint64_t k = a / range, e = PetscMin(b, (k + 1) * range);
    bytes[k * (uint64_t)size + (uint64_t)r] += (int64_t)(e - a);
    a = e;
  }
}

/* mine[k]: range k of file f of checkpoint ck is hashed here: by the rank whose data pass reads most of
   its bytes (the lowest such rank on a tie), or, when none does, by rank k mod size */
static PetscErrorCode DigestOwners(Import *im, Ckpt *ck, int f, int64_t nrange, uint64_t range, PetscBool *mine)
{
  int64_t *bytes;
  uint64_t ds;

  PetscFunctionBegin;
  PetscCall(MapSafetensorsGetDataStart(ck->st, f, &ds));
  PetscCall(PetscCalloc1((size_t)nrange * (size_t)im->size, &bytes));
  for (int r = 0; r < im->size; r++) {
    int64_t lo, hi;
    MapLayoutRange(im->P, im->size, r, &lo, &hi);
    for (int i = 0; i < im->ntensors; i++) {
      const MapTensorInfo *t = ck->info[i];
      int64_t              o = im->tensors[i].offset, a = PetscMax(lo, o), b = PetscMin(hi, o + t->numel);
      size_t               isize = MapDTypeSize(t->dtype);
      if (t->file != f || a >= b) continue;
      CountBytes(bytes, im->size, r, range, ds + t->begin + (uint64_t)(a - o) * isize, ds + t->begin + (uint64_t)(b - o) * isize);
    }
  }
  for (int64_t k = 0; k < nrange; k++) {
    int best = (int)(k % im->size);
    for (int r = 0; r < im->size; r++)
      if (bytes[k * im->size + r] > bytes[k * im->size + best] || (bytes[k * im->size + r] == bytes[k * im->size + best] && bytes[k * im->size + r] > 0 && r < best)) best = r;
    mine[k] = (PetscBool)(best == im->rank);
  }
  PetscCall(PetscFree(bytes));
  PetscFunctionReturn(0);
}

static PetscErrorCode DigestBeginFile(Import *im, Ckpt *ck, int f, const char *path)
{
  int64_t    nrange;
  PetscBool *mine;

  PetscFunctionBegin;
  PetscCall(MapFileDigestCreate(path, im->digest_range, &ck->dig[f]));
  PetscCall(MapFileDigestGetRanges(ck->dig[f], NULL, &nrange));
  PetscCall(PetscMalloc1(nrange, &mine));
  PetscCall(DigestOwners(im, ck, f, nrange, im->digest_range, mine));
  PetscCall(MapFileDigestSetMine(ck->dig[f], mine));
  PetscCall(PetscFree(mine));
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreImportDigestBegin_Private(Import *im)
{
  int ok = 1;

  PetscFunctionBegin;
  for (int c = 0; c < im->nck; c++) {
    Ckpt              *ck = &im->ck[c];
    int                nf;
    const char *const *files;
    PetscCall(MapSafetensorsGetFiles(ck->st, &nf, &files));
    PetscCall(PetscCalloc1(nf, &ck->dig));
    for (int f = 0; f < nf; f++) {
      PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
      PetscErrorCode e = DigestBeginFile(im, ck, f, files[f]);
      PetscCall(PetscPopErrorHandler());
      if (e) ok = 0;
    }
    PetscCall(MapSafetensorsSetReadHook(ck->st, DigestHook, ck));
  }
  MapCheckAll(im->comm, ok, PETSC_ERR_FILE_READ, "import: cannot open a source file to hash it");
  PetscFunctionReturn(0);
}

/* the digest of file f of ck from every rank's leaves; bytes[0..1] += this rank's fed / read bytes */
static PetscErrorCode DigestEndFile(Import *im, Ckpt *ck, int f, char hex[65], uint64_t bytes[2])
{
  const unsigned char *leaves;
  int64_t              nrange;
  uint64_t             fed = 0, rd = 0;
  int                  ok = 1;

  PetscFunctionBegin;
  PetscCall(MapFileDigestGetRanges(ck->dig[f], NULL, &nrange));
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  PetscErrorCode e = MapFileDigestFinish(ck->dig[f], &leaves, &fed, &rd);
  PetscCall(PetscPopErrorHandler());
  if (e) ok = 0;
  MapCheckAll(im->comm, ok, PETSC_ERR_FILE_READ, "import: cannot read a source file of the %s to hash it", ck->label);
  PetscCall(MapFileDigestCombine(im->comm, leaves, nrange, hex));
  bytes[0] += fed;
  bytes[1] += rd;
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreImportDigestEnd_Private(Import *im, hid_t file)
{
  char     key[MAP_NAME_LEN + 32], real[PATH_MAX], hex[65], kind[64];
  uint64_t bytes[2] = {0, 0};

  PetscFunctionBegin;
  snprintf(kind, sizeof(kind), "%s%llu", MAP_STORE_DIGEST_KIND, (unsigned long long)im->digest_range);
  PetscCall(MapH5WriteStringAttr(file, "source_digest", kind));
  for (int c = 0; c < im->nck; c++) {
    Ckpt              *ck = &im->ck[c];
    int                nf;
    const char *const *files;
    size_t             len = 1;
    char              *text;
    PetscCall(MapSafetensorsGetFiles(ck->st, &nf, &files));
    PetscCall(MapSafetensorsSetReadHook(ck->st, NULL, NULL));
    for (int f = 0; f < nf; f++) len += 65 + 2 + strlen(files[f]) + PATH_MAX + 1;
    PetscCall(PetscCalloc1(len, &text));
    for (int f = 0; f < nf; f++) { /* sha256sum's format: "<hex>  <path>" per line */
      const char *p = realpath(files[f], real) ? real : files[f];
      size_t      l = strlen(text);
      PetscCall(DigestEndFile(im, ck, f, hex, bytes));
      snprintf(text + l, len - l, "%s%s  %s", f ? "\n" : "", hex, p);
    }
    PetscCall(PetscSNPrintf(key, sizeof(key), "%s%s.digest", c ? "task." : "pretrained", c ? im->tasks[c - 1] : ""));
    PetscCall(MapH5WriteStringAttr(file, key, text));
    PetscCall(PetscFree(text));
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, bytes, 2, MPI_UINT64_T, MPI_SUM, im->comm));
  PetscCall(PetscInfo(NULL, "import: source digests (%s): %llu bytes hashed as the data pass read them, %llu read for the hash alone\n", kind,
                      (unsigned long long)bytes[0], (unsigned long long)bytes[1]));
  im->digest_bytes[0] = bytes[0];
  im->digest_bytes[1] = bytes[1];
  PetscFunctionReturn(0);
}

PetscErrorCode MapStoreImportDigestDestroy_Private(Import *im)
{
  PetscFunctionBegin;
  for (int c = 0; c < im->nck; c++) {
    int                nf;
    const char *const *files;
    if (!im->ck[c].dig) continue;
    PetscCall(MapSafetensorsGetFiles(im->ck[c].st, &nf, &files));
    for (int f = 0; f < nf; f++) PetscCall(MapFileDigestDestroy(&im->ck[c].dig[f]));
    PetscCall(PetscFree(im->ck[c].dig));
  }
  PetscFunctionReturn(0);
}
