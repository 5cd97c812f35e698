/* ir/diag.c — formatting of located diagnostics.
 *
 * Every user-facing error of the IR library is "file:line:col: error: message", then the
 * source line and a caret under the column (as chibicc and clang print them).
 */
#include "ir.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

ir_status ir_error(ir_diag *d, ir_status status, ir_loc loc, const char *src, const char *fmt,
                   ...) {
  if (!d)
    return status;
  d->status = status;
  char body[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  const char *file = loc.file ? loc.file : "<input>";
  if (loc.line <= 0) {
    snprintf(d->msg, sizeof d->msg, "%s: error: %s", file, body);
    return status;
  }
  int n = snprintf(d->msg, sizeof d->msg, "%s:%d:%d: error: %s", file, loc.line, loc.col, body);
  if (!src || n < 0 || (size_t)n >= sizeof d->msg)
    return status;
  const char *p = src;
  for (int l = 1; l < loc.line && p; l++) {
    p = strchr(p, '\n');
    if (p)
      p++;
  }
  if (!p)
    return status;
  size_t len = strcspn(p, "\n");
  if (len > 200)
    len = 200;
  int col = loc.col > 0 && (size_t)loc.col <= len + 1 ? loc.col : 1;
  size_t left = sizeof d->msg - (size_t)n;
  int m = snprintf(d->msg + n, left, "\n%.*s\n%*s^", (int)len, p, col - 1, "");
  (void)m;
  return status;
}
