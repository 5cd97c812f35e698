/* kernels/check.h — the numeric verdict of `tilec run --check` and of candidate validation in
 * the autotuner: an output against its double-precision reference, under a dtype's tolerance.
 */
#ifndef TILEC_KERNELS_CHECK_H
#define TILEC_KERNELS_CHECK_H

#include <stdbool.h>
#include <stdint.h>

typedef struct kn_cmp_result {
  double max_abs_err;      /* max |out - ref| over elements where both are finite */
  double max_abs_ref;      /* max |ref| over finite ref elements */
  double err;              /* max_abs_err / max(max_abs_ref, 1e-30) */
  double tol;              /* the tolerance the verdict used */
  int64_t worst;           /* index of the largest |out - ref| (-1 when no finite pair) */
  int64_t n_nonfinite;     /* elements where out and ref are not both finite and not the same
                              infinity: a NaN or inf output against a finite ref, or the reverse */
  int64_t first_nonfinite; /* index of the first of those (-1 if none) */
  bool pass;               /* err <= tol && n_nonfinite == 0 */
} kn_cmp_result;

/* Compares out[0..n) with ref[0..n) into *r. The error is normalized by the largest reference
 * magnitude (not per element), so tiny reference values do not dominate; the same infinity in
 * both (e.g. LSE = -inf of a fully masked row) is equal, anything else non-finite fails. */
void kn_compare(const double *out, const double *ref, int64_t n, double tol, kn_cmp_result *r);

/* The tolerance for an output dtype with mantissa_bits explicit mantissa bits: 4 * 2^-(bits+1),
 * four half-ulps relative to the largest value, but at least 1e-5 because every kernel
 * accumulates in f32 in an order the reference does not share. bf16 (7) -> 1.56e-2, f16 and tf32
 * (10) -> 1.95e-3, f32 (23) -> 1e-5; a 5 % scale error fails all of these. The reference must be
 * computed from the inputs as rounded to their dtype, so that input rounding (e.g. fp8 operands
 * with a bf16 output) is not counted as error. */
double kn_tolerance(int mantissa_bits);

#endif
