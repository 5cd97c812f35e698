/* kernels/bsr.c — random BSR weights, dense <-> BSR conversion.
 *
 * Host side of the bsmatmul kernel: `tilec run bsmatmul` makes a random weight at a density,
 * uploads row_ptr/col_idx/values, and checks the result against kn_ref_bsmatmul on the dense
 * expansion. Tiles are stored whole (block x block, zero padded), as the kernel loads them.
 */
#include "kernels/bsr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/fail.h"

#include "kernels/rng.h"

/* Validates the shape, fills the geometry of out and allocates row_ptr. */
static int init_shape(int64_t N, int64_t K, int32_t block, kn_bsr *out, char *err, size_t cap) {
  *out = (kn_bsr){0};
  if (N < 0 || K < 0 || block < 1)
    return kn_fail(err, cap, "bsr: bad shape N=%lld K=%lld block=%d", (long long)N, (long long)K,
                   (int)block);
  int64_t nbr = N / block + (N % block != 0), nbc = K / block + (K % block != 0);
  if (nbr > INT32_MAX || nbc > INT32_MAX || nbr * nbc > INT32_MAX / ((int64_t)block * block))
    return kn_fail(err, cap, "bsr: %lld x %lld at block %d is too large", (long long)N,
                   (long long)K, (int)block);
  out->N = N;
  out->K = K;
  out->block = block;
  out->nbrows = (int32_t)nbr;
  out->nbcols = (int32_t)nbc;
  out->row_ptr = calloc((size_t)nbr + 1, sizeof(int32_t));
  return out->row_ptr ? 0 : kn_fail(err, cap, "bsr: out of memory");
}

/* Allocates col_idx and values for nnzb tiles (values zeroed). */
static int alloc_tiles(kn_bsr *a, int64_t nnzb, char *err, size_t cap) {
  size_t bb = (size_t)a->block * (size_t)a->block;
  a->nnzb = (int32_t)nnzb;
  a->col_idx = malloc(((size_t)nnzb + 1) * sizeof(int32_t));
  a->values = calloc((size_t)nnzb * bb + 1, sizeof(double));
  if (a->col_idx && a->values)
    return 0;
  kn_bsr_free(a);
  return kn_fail(err, cap, "bsr: out of memory for %lld tiles", (long long)nnzb);
}

int kn_bsr_random(int64_t N, int64_t K, int32_t block, double density, uint64_t seed, kn_bsr *out,
                  char *err, size_t errcap) {
  *out = (kn_bsr){0};
  if (!(density >= 0 && density <= 1))
    return kn_fail(err, errcap, "bsr: density %g is not in [0, 1]", density);
  if (init_shape(N, K, block, out, err, errcap))
    return 1;
  int64_t total = (int64_t)out->nbrows * out->nbcols;
  int64_t want = (int64_t)(density * (double)total + 0.5);
  if (alloc_tiles(out, want, err, errcap))
    return 1;
  kn_rng rng;
  kn_rng_seed(&rng, seed);
  /* Knuth's selection sampling (TAOCP 3.4.2, Algorithm S): visits the tiles in order and takes
   * each with probability (still wanted) / (still left), which yields exactly `want` tiles. */
  int64_t taken = 0;
  for (int64_t t = 0; t < total; t++) {
    if ((double)(total - t) * kn_rng_uniform(&rng) < (double)(want - taken)) {
      out->col_idx[taken++] = (int32_t)(t % out->nbcols);
      out->row_ptr[t / out->nbcols + 1]++;
    }
  }
  for (int32_t r = 0; r < out->nbrows; r++)
    out->row_ptr[r + 1] += out->row_ptr[r];
  int32_t bs = block;
  for (int32_t r = 0; r < out->nbrows; r++) {
    for (int32_t j = out->row_ptr[r]; j < out->row_ptr[r + 1]; j++) {
      double *tile = out->values + (size_t)j * bs * bs;
      for (int32_t i = 0; i < bs; i++)
        for (int32_t c = 0; c < bs; c++)
          if ((int64_t)r * bs + i < N && (int64_t)out->col_idx[j] * bs + c < K)
            tile[i * bs + c] = kn_rng_normal(&rng);
    }
  }
  return 0;
}

/* Whether tile (r, c) of the dense W has a nonzero element (NaN counts as nonzero). */
static int tile_used(const double *W, int64_t N, int64_t K, int32_t bs, int64_t r, int64_t c) {
  for (int64_t i = r * bs; i < N && i < (r + 1) * bs; i++)
    for (int64_t j = c * bs; j < K && j < (c + 1) * bs; j++)
      if (W[i * K + j] != 0 || W[i * K + j] != W[i * K + j])
        return 1;
  return 0;
}

int kn_bsr_from_dense(int64_t N, int64_t K, int32_t block, const double *W, kn_bsr *out, char *err,
                      size_t errcap) {
  if (init_shape(N, K, block, out, err, errcap))
    return 1;
  for (int32_t r = 0; r < out->nbrows; r++)
    for (int32_t c = 0; c < out->nbcols; c++)
      out->row_ptr[r + 1] += tile_used(W, N, K, block, r, c);
  for (int32_t r = 0; r < out->nbrows; r++)
    out->row_ptr[r + 1] += out->row_ptr[r];
  if (alloc_tiles(out, out->row_ptr[out->nbrows], err, errcap))
    return 1;
  int32_t j = 0, bs = block;
  for (int32_t r = 0; r < out->nbrows; r++) {
    for (int32_t c = 0; c < out->nbcols; c++) {
      if (!tile_used(W, N, K, bs, r, c))
        continue;
      out->col_idx[j] = c;
      double *tile = out->values + (size_t)j * bs * bs;
      for (int64_t i = 0; i < bs && (int64_t)r * bs + i < N; i++)
        for (int64_t k = 0; k < bs && (int64_t)c * bs + k < K; k++)
          tile[i * bs + k] = W[((int64_t)r * bs + i) * K + (int64_t)c * bs + k];
      j++;
    }
  }
  return 0;
}

void kn_bsr_to_dense(const kn_bsr *a, double *W) {
  int32_t bs = a->block;
  memset(W, 0, (size_t)(a->N * a->K) * sizeof *W);
  for (int32_t r = 0; r < a->nbrows; r++) {
    for (int32_t j = a->row_ptr[r]; j < a->row_ptr[r + 1]; j++) {
      const double *tile = a->values + (size_t)j * bs * bs;
      int64_t n0 = (int64_t)r * bs, k0 = (int64_t)a->col_idx[j] * bs;
      for (int64_t i = 0; i < bs && n0 + i < a->N; i++)
        for (int64_t k = 0; k < bs && k0 + k < a->K; k++)
          W[(n0 + i) * a->K + k0 + k] = tile[i * bs + k];
    }
  }
}

void kn_bsr_free(kn_bsr *a) {
  if (!a)
    return;
  free(a->row_ptr);
  free(a->col_idx);
  free(a->values);
  *a = (kn_bsr){0};
}
