/* MapChecksum64 per-core throughput, measured in thread CPU time (so a loaded machine still measures the
 * kernel, not the scheduler): the AVX-512 path, or the generic loop with MAPMERGE_CHECKSUM_GENERIC=1. The
 * printed sums must be the same for both. Target bench_checksum (tests/benchstore.cmake).
 * usage: bench_checksum [elements = 2^25] [repetitions = 5] */
#include <mapmerge/core.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double CpuNow(void)
{
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
  int64_t   n    = argc > 1 ? atoll(argv[1]) : (int64_t)1 << 25;
  int       reps = argc > 2 ? atoi(argv[2]) : 5;
  uint32_t *x    = malloc(4 * (size_t)n);
  double    best[2] = {0, 0};
  uint64_t  sum[2]  = {0, 0};

  if (!x) return 1;
  for (int64_t i = 0; i < n; i++) x[i] = (uint32_t)((uint64_t)i * 2654435761u);
  for (int r = 0; r < reps; r++)
    for (int k = 0; k < 2; k++) { /* k = 0: 4-byte elements, 1: 2-byte elements (the same bytes) */
      double t0 = CpuNow();
      sum[k]    = MapChecksum64(x, k ? 2 : 4, k ? 2 * n : n, 123);
      double gb = 4.0 * (double)n / 1e9 / (CpuNow() - t0);
      if (gb > best[k]) best[k] = gb;
    }
  printf("%s: F32 %.2f GB/s per core (sum %016llx), 16-bit %.2f GB/s per core (sum %016llx), best of %d, %lld bytes\n",
         getenv("MAPMERGE_CHECKSUM_GENERIC") ? "generic" : "dispatched (AVX-512 if the CPU has it)", best[0], (unsigned long long)sum[0], best[1],
         (unsigned long long)sum[1], reps, (long long)(4 * n));
  free(x);
  return 0;
}
