/* kernels/bsr.h — block compressed sparse row (BSR) weights for the block-sparse matmul.
 *
 * W is N x K (bsmatmul computes Y = X . W^T), cut into block x block tiles; only present tiles are
 * stored. Tile j of block row r has block column col_idx[j] for row_ptr[r] <= j < row_ptr[r+1]
 * (ascending), and its values at values[j * block * block], row-major [block][block], zero past
 * the N and K edges.
 */
#ifndef TILEC_KERNELS_BSR_H
#define TILEC_KERNELS_BSR_H

#include <stddef.h>
#include <stdint.h>

typedef struct kn_bsr {
  int64_t N, K;
  int32_t block;
  int32_t nbrows, nbcols; /* cdiv(N, block), cdiv(K, block) */
  int32_t nnzb;           /* stored tiles */
  int32_t *row_ptr;       /* [nbrows + 1] */
  int32_t *col_idx;       /* [nnzb] */
  double *values;         /* [nnzb * block * block] */
} kn_bsr;

/* A random N x K BSR matrix: exactly round(density * nbrows * nbcols) tiles, chosen uniformly
 * (selection sampling, so every subset of that size is equally likely; rows may be empty),
 * values standard normal; both drawn from seed. out is overwritten and owned by the caller
 * (kn_bsr_free). Returns 0, or nonzero with a message in err. */
int kn_bsr_random(int64_t N, int64_t K, int32_t block, double density, uint64_t seed, kn_bsr *out,
                  char *err, size_t errcap);

/* Converts a dense row-major W[N][K] to BSR, storing every tile with a nonzero (or NaN) element.
 * out is overwritten and owned by the caller (kn_bsr_free). Returns 0, or nonzero with
 * a message in err. */
int kn_bsr_from_dense(int64_t N, int64_t K, int32_t block, const double *W, kn_bsr *out, char *err,
                      size_t errcap);

/* Expands a to the dense row-major W[N][K] (caller's buffer of N * K doubles). */
void kn_bsr_to_dense(const kn_bsr *a, double *W);

/* Frees the arrays and zeroes a. NULL is a no-op. */
void kn_bsr_free(kn_bsr *a);

#endif
