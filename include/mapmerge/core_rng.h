/* mapmerge core, random numbers: counter-based, so every value depends only on its key (seed, stream,
 * counter), never on the rank count or on the order of the draws. Included by core.h. */
#ifndef MAPMERGE_CORE_RNG_H
#define MAPMERGE_CORE_RNG_H

#include <stdint.h>

/* splitmix64-style hashing of (seed, stream, counter). */
uint64_t MapRngU64(uint64_t seed, uint64_t stream, uint64_t counter);
double   MapRngU01(uint64_t seed, uint64_t stream, uint64_t counter); /* in [0,1) */

#endif
