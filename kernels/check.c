/* kernels/check.c — output vs reference comparison and per-dtype tolerances.
 *
 * The last step of `tilec run --check` and of every autotuner candidate: a wrong answer must
 * fail, including the cheap ways of being wrong (all zeros, sign flips, a 5 % scale error, NaN
 * poisoning), while honest rounding of the output dtype passes.
 */
#include "kernels/check.h"

#include <math.h>

void kn_compare(const double *out, const double *ref, int64_t n, double tol, kn_cmp_result *r) {
  *r = (kn_cmp_result){.tol = tol, .worst = -1, .first_nonfinite = -1};
  for (int64_t i = 0; i < n; i++) {
    double o = out[i], x = ref[i];
    if (!isfinite(o) || !isfinite(x)) {
      if (!(isinf(o) && o == x)) {
        if (r->n_nonfinite++ == 0)
          r->first_nonfinite = i;
      }
      continue;
    }
    double e = fabs(o - x);
    if (r->worst < 0 || e > r->max_abs_err) {
      r->max_abs_err = e;
      r->worst = i;
    }
    if (fabs(x) > r->max_abs_ref)
      r->max_abs_ref = fabs(x);
  }
  r->err = r->max_abs_err / (r->max_abs_ref > 1e-30 ? r->max_abs_ref : 1e-30);
  r->pass = r->err <= tol && r->n_nonfinite == 0;
}

double kn_tolerance(int mantissa_bits) {
  double t = ldexp(4.0, -(mantissa_bits + 1));
  return t > 1e-5 ? t : 1e-5;
}
