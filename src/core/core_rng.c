/* core_rng: counter-based random numbers (core_rng.h). */
#include <mapmerge/core_rng.h>

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
