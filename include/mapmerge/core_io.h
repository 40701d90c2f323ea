/* mapmerge core, files: temporary outputs (never a half-written file), checks of input and output
 * paths, sha256 of files (provenance) and the store's order-independent checksum. Included by core.h. */
#ifndef MAPMERGE_CORE_IO_H
#define MAPMERGE_CORE_IO_H

#include <petscsys.h>
#include <stdint.h>

/* Temporary output files: registered when created, removed by MapTempCleanup() on any error
   path, so a failed command never leaves a half-written file behind. Outputs are written to a
   temporary name and renamed into place only when complete. */
PetscErrorCode MapTempRegister(const char *path);
PetscErrorCode MapTempUnregister(const char *path);
void           MapTempCleanup(void);
/* MapTempName - "<dir>/.<base>.tmp.<pid>" beside path (same filesystem, so rename is atomic). */
PetscErrorCode MapTempName(const char *path, char *tmp, size_t len);
/* MapCheckInputFile - error (naming `what`, e.g. the option, and the kind of file) when path exists
   but is not a regular file: a FIFO would block the reading rank forever, a device never ends.
   Does not open the file; a missing file passes (the caller's open reports it). Not collective. */
PetscErrorCode MapCheckInputFile(const char *path, const char *what);
/* MapNonRegularKind - "a FIFO (named pipe)", "a directory", ... for an existing non-regular path, else NULL */
const char *MapNonRegularKind(const char *path);
/* MapCheckWritable - error naming the option when the directory of path cannot be written. */
PetscErrorCode MapCheckWritable(const char *path, const char *option);

/* MapCheckNotInput - error naming `option` when `output` exists and is the same file (same device and
   inode, whatever the path: links, "./", symlinks) as one of the n inputs: writing it would destroy
   that input. Collective (rank 0 looks, every rank raises). */
PetscErrorCode MapCheckNotInput(MPI_Comm comm, const char *output, const char *option, int n, const char *const *inputs);

/* MapSha256File - hex sha256 of a whole file. Not collective. */
PetscErrorCode MapSha256File(const char *path, char hex[65]);
void           MapSha256(const void *data, size_t len, char hex[65]);

/* MapChecksum64 - the store's dataset checksum of n elements of esize bytes (4 or 2) whose first has
   flat index `first`: the sum mod 2^64 of a 64-bit hash of (index, bit pattern) per element. A sum,
   so the partial sums of any split of the data (ranks, blocks) add up to the same value: the same
   checksum at any rank count. A changed element changes it with probability 1 - 2^-64. Text form
   (MapChecksumFormat): "map64:" and 16 hex digits. Not collective. */
uint64_t MapChecksum64(const void *data, size_t esize, int64_t n, int64_t first);
void     MapChecksumFormat(uint64_t sum, char text[24]);
/* MapFirstNonFiniteF32 - the index of the first NaN or Inf among x[0..n), or -1. Scans fixed chunks
   with a branch-free exponent test the compiler vectorises, then the one chunk that has one
   element by element. Not collective. */
int64_t MapFirstNonFiniteF32(const float *x, int64_t n);
/* MapSubtractFiniteF32 - x[j] -= pre[j] (pre finite), checked in the same pass: -1 when every x and
   every difference is finite; else the first j with a NaN/Inf x (*overflow = 0; x may be partly
   subtracted) or, when every x is finite, the first difference that overflowed (*overflow = 1). */
int64_t MapSubtractFiniteF32(float *x, const float *pre, int64_t n, int *overflow);

/* MapFileDigest - the range digest of a file (docs/storage.md, "Source digests"): the file is cut
   into ranges of `range` bytes (the last shorter; an empty file is one empty range), each range is
   hashed with sha256, and the digest is the sha256 of the concatenated 32-byte range hashes. Each
   range is hashed by one rank, so the ranks share a large file, and the value does not depend on
   which rank hashed what. The caller marks this rank's ranges (SetMine), feeds the bytes it reads
   anyway in increasing offset order (Feed: bytes outside its ranges or hashed already are skipped; a
   gap before them is read here), and Finish reads what was never fed. Not collective: the caller
   combines the leaves of all ranks (a bitwise OR of the zero-initialised arrays) and takes
   MapFileDigestRoot. */
typedef struct _p_MapFileDigest *MapFileDigest;
PetscErrorCode                   MapFileDigestCreate(const char *path, uint64_t range, MapFileDigest *d);
PetscErrorCode                   MapFileDigestGetRanges(MapFileDigest d, uint64_t *size, int64_t *nrange);
PetscErrorCode                   MapFileDigestSetMine(MapFileDigest d, const PetscBool *mine);
PetscErrorCode                   MapFileDigestFeed(MapFileDigest d, uint64_t off, size_t len, const void *bytes);
/* *leaves: [nrange * 32], zeros for the ranges of other ranks; *fed / *read: bytes hashed from the
   caller's buffers / read by the digest itself */
PetscErrorCode MapFileDigestFinish(MapFileDigest d, const unsigned char **leaves, uint64_t *fed, uint64_t *read);
void           MapFileDigestRoot(const unsigned char *leaves, int64_t nrange, char hex[65]);
/* MapFileDigestCombine - collective on comm: the OR of every rank's leaves (each range hashed by one of
   them) and its root, the same hex on every rank */
PetscErrorCode MapFileDigestCombine(MPI_Comm comm, const unsigned char *leaves, int64_t nrange, char hex[65]);
PetscErrorCode MapFileDigestDestroy(MapFileDigest *d);

#endif
