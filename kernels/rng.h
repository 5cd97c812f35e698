/* kernels/rng.h — a small seeded random number generator for test inputs and random masks.
 *
 * xoshiro256** seeded through splitmix64, as published by Blackman and Vigna; the same seed gives
 * the same stream on every platform, so a run is reproducible from `--seed N`.
 */
#ifndef TILEC_KERNELS_RNG_H
#define TILEC_KERNELS_RNG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct kn_rng {
  uint64_t s[4];
  double spare; /* second value of the last Box-Muller pair */
  bool has_spare;
} kn_rng;

/* The splitmix64 output function of x + 0x9e3779b97f4a7c15: a stateless 64-bit mixer. Random
 * block masks hash their block coordinates with it (mask.h documents the exact recipe). */
uint64_t kn_mix64(uint64_t x);

/* Seeds r from one 64-bit seed: the four state words are successive splitmix64 outputs. */
void kn_rng_seed(kn_rng *r, uint64_t seed);

/* The next 64 uniformly random bits (xoshiro256**). */
uint64_t kn_rng_u64(kn_rng *r);

/* A uniform double in [0, 1) with 53 random bits. */
double kn_rng_uniform(kn_rng *r);

/* A standard normal deviate (Box-Muller; the second value of each pair is kept for the next
 * call). */
double kn_rng_normal(kn_rng *r);

#endif
