/* kernels/ref.h — double-precision CPU references for the built-in kernels (`tilec run --check`).
 *
 * Plain loops in double, independent of the IR interpreter, so a bug in the interpreter or in a
 * kernel cannot hide in the reference. All arrays are row-major doubles owned by the caller.
 */
#ifndef TILEC_KERNELS_REF_H
#define TILEC_KERNELS_REF_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/mask.h"

/* C[m][n] = sum_k A(m,k) * B(k,n) for an M x N x K problem, summed in k order in double.
 * A(m,k) = A[m * sam + k * sak] and B(k,n) = B[k * sbk + n * sbn] (element strides, so any
 * transposed operand works: row-major A is sam = K, sak = 1; B stored as [N][K] is sbk = 1,
 * sbn = K). C is contiguous [M][N]. */
void kn_ref_matmul(int64_t M, int64_t N, int64_t K, const double *A, int64_t sam, int64_t sak,
                   const double *B, int64_t sbk, int64_t sbn, double *C);

/* Attention forward: Q and O are [B][H][S][D], K and V [B][HKV][SKV][D], LSE [B][H][S] (may be
 * NULL). Query head h reads KV head h / (H / HKV) (grouped-query; H % HKV == 0). For each query
 * row, over the keys visible under mask (NULL: all; top-left aligned, see mask.h):
 *   s_k = scale * q.k,  O = sum_k softmax(s)_k v_k,  LSE = log(sum_k exp(s_k))  (natural log)
 * computed with the row maximum subtracted. A row with no visible key gets O = 0, LSE = -inf.
 * Returns 0, or nonzero with a message in err (bad shapes, mask not valid for S x SKV, out of
 * memory). */
int kn_ref_attention(int64_t B, int64_t H, int64_t HKV, int64_t S, int64_t SKV, int64_t D,
                     const double *Q, const double *K, const double *V, double scale,
                     const kn_mask *mask, double *O, double *LSE, char *err, size_t errcap);

/* Block-sparse matmul reference: Y[M][N] = X[M][K] . W[N][K]^T with W dense (a BSR weight is
 * expanded by kn_bsr_to_dense first). */
void kn_ref_bsmatmul(int64_t M, int64_t N, int64_t K, const double *X, const double *W, double *Y);

#endif
