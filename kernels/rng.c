/* kernels/rng.c — seeded RNG (splitmix64 seeding, xoshiro256** stream, Box-Muller normals).
 *
 * Host side of the built-in kernels: fills random inputs for `tilec run` and backs the random
 * block masks of mask.c. Pure integer arithmetic, so streams are identical across platforms.
 */
#include "kernels/rng.h"

#include <math.h>

uint64_t kn_mix64(uint64_t x) {
  uint64_t z = x + 0x9e3779b97f4a7c15u;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

void kn_rng_seed(kn_rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) {
    r->s[i] = kn_mix64(seed);
    seed += 0x9e3779b97f4a7c15u;
  }
  r->spare = 0;
  r->has_spare = false;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t kn_rng_u64(kn_rng *r) {
  uint64_t *s = r->s;
  uint64_t out = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

double kn_rng_uniform(kn_rng *r) { return (double)(kn_rng_u64(r) >> 11) * 0x1p-53; }

double kn_rng_normal(kn_rng *r) {
  if (r->has_spare) {
    r->has_spare = false;
    return r->spare;
  }
  double u = 1.0 - kn_rng_uniform(r); /* (0, 1]: log(u) is finite */
  double v = kn_rng_uniform(r);
  double rad = sqrt(-2.0 * log(u));
  double ang = 6.283185307179586476925 * v;
  r->spare = rad * sin(ang);
  r->has_spare = true;
  return rad * cos(ang);
}
