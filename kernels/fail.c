/* kernels/fail.c — kn_fail, the one error formatter of kernels/ (see fail.h). */
#include "kernels/fail.h"

#include <stdarg.h>
#include <stdio.h>

int kn_fail(char *err, size_t cap, const char *fmt, ...) {
  if (err && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
  }
  return -1;
}
