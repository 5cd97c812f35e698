/* kernels/ref.c — the double-precision references of matmul, attention and bsmatmul.
 *
 * Used by `tilec run --check` and the numeric tests to judge the interpreter and the GPU
 * kernels. Written for obviousness over speed: straight loops, double accumulation, the mask
 * applied through kn_mask_visible one element at a time.
 */
#include "kernels/ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void kn_ref_matmul(int64_t M, int64_t N, int64_t K, const double *A, int64_t sam, int64_t sak,
                   const double *B, int64_t sbk, int64_t sbn, double *C) {
  for (int64_t m = 0; m < M; m++) {
    double *c = C + m * N;
    for (int64_t n = 0; n < N; n++)
      c[n] = 0;
    for (int64_t k = 0; k < K; k++) {
      double a = A[m * sam + k * sak];
      const double *b = B + k * sbk;
      for (int64_t n = 0; n < N; n++)
        c[n] += a * b[n * sbn];
    }
  }
}

int kn_ref_attention(int64_t B, int64_t H, int64_t HKV, int64_t S, int64_t SKV, int64_t D,
                     const double *Q, const double *K, const double *V, double scale,
                     const kn_mask *mask, double *O, double *LSE, char *err, size_t errcap) {
  if (B < 0 || H < 1 || HKV < 1 || S < 0 || SKV < 0 || D < 1 || H % HKV != 0) {
    if (err && errcap)
      snprintf(err, errcap,
               "attention reference: bad shape B=%lld H=%lld HKV=%lld S=%lld SKV=%lld D=%lld",
               (long long)B, (long long)H, (long long)HKV, (long long)S, (long long)SKV,
               (long long)D);
    return 1;
  }
  if (mask && kn_mask_check(mask, S, SKV, err, errcap))
    return 1;
  double *s = malloc((size_t)(SKV > 0 ? SKV : 1) * sizeof *s);
  if (!s) {
    if (err && errcap)
      snprintf(err, errcap, "attention reference: out of memory");
    return 1;
  }
  int64_t group = H / HKV;
  for (int64_t b = 0; b < B; b++) {
    for (int64_t h = 0; h < H; h++) {
      int64_t kvh = h / group;
      const double *k_bh = K + (b * HKV + kvh) * SKV * D, *v_bh = V + (b * HKV + kvh) * SKV * D;
      for (int64_t q = 0; q < S; q++) {
        const double *qrow = Q + ((b * H + h) * S + q) * D;
        double *o = O + ((b * H + h) * S + q) * D;
        double mx = -INFINITY;
        for (int64_t k = 0; k < SKV; k++) {
          s[k] = -INFINITY;
          if (mask && !kn_mask_visible(mask, (int)b, (int)h, q, k))
            continue;
          double dot = 0;
          for (int64_t d = 0; d < D; d++)
            dot += qrow[d] * k_bh[k * D + d];
          s[k] = scale * dot;
          mx = s[k] > mx ? s[k] : mx;
        }
        for (int64_t d = 0; d < D; d++)
          o[d] = 0;
        double sum = 0;
        if (mx > -INFINITY) {
          for (int64_t k = 0; k < SKV; k++) {
            if (s[k] == -INFINITY)
              continue;
            double p = exp(s[k] - mx);
            sum += p;
            for (int64_t d = 0; d < D; d++)
              o[d] += p * v_bh[k * D + d];
          }
          for (int64_t d = 0; d < D; d++)
            o[d] /= sum;
        }
        if (LSE)
          LSE[(b * H + h) * S + q] = mx > -INFINITY ? mx + log(sum) : -INFINITY;
      }
    }
  }
  free(s);
  return 0;
}

void kn_ref_bsmatmul(int64_t M, int64_t N, int64_t K, const double *X, const double *W, double *Y) {
  kn_ref_matmul(M, N, K, X, K, 1, W, 1, K, Y);
}
