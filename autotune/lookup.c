/* autotune/lookup.c — a problem's tuned config from the database (see lookup.h). */
#include "autotune/lookup.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/bucket.h"
#include "autotune/compile.h"

static int by_ms(const void *a, const void *b) {
  const at_result *x = a, *y = b;
  return (x->median_ms > y->median_ms) - (x->median_ms < y->median_ms);
}

at_status at_lookup_best(at_db *db, const ir_kernel *k, const kn_shape *shape, const char *dtype,
                         const char *device, const char *toolchain, at_lookup *out, at_err *e) {
  memset(out, 0, sizeof *out);
  if (!db || !k || !shape)
    return at_fail(e, AT_ERR_ARG, "at_lookup_best: database, kernel and shape are required");
  char hash[65];
  at_status s = at_kernel_hash(k, hash, e);
  if (s || (s = at_bucket_key(k, shape, dtype, &out->bucket, e)))
    return s;
  at_key pat = {.device = device,
                .toolchain = toolchain,
                .kernel = k->name,
                .ir_hash = hash,
                .bucket = out->bucket};
  if ((s = at_db_winners(db, &pat, &out->rows, e)) && s != AT_MISS)
    return s;
  if (out->rows.n == 0) { /* no winner in the problem's bucket: the nearest tuned bucket */
    at_rows all = {0};
    pat.bucket = NULL;
    if ((s = at_db_winners(db, &pat, &all, e)) && s != AT_MISS)
      return s;
    const char *best_bucket = NULL;
    double best = INFINITY;
    for (int i = 0; i < all.n; i++) { /* ties: the smaller bucket text */
      double d = at_bucket_distance(out->bucket, all.r[i].key.bucket);
      if (d < best || (d == best && best_bucket && strcmp(all.r[i].key.bucket, best_bucket) < 0)) {
        best = d;
        best_bucket = all.r[i].key.bucket;
      }
    }
    if (!best_bucket) {
      at_rows_free(&all);
      return at_fail(e, AT_MISS, "no tuned config of kernel %s%s%s in any bucket", k->name,
                     device ? " for device " : "", device ? device : "");
    }
    pat.bucket = best_bucket;
    s = at_db_winners(db, &pat, &out->rows, e);
    at_rows_free(&all);
    if (s)
      return s;
    out->nearest = true;
  }
  qsort(out->rows.r, (size_t)out->rows.n, sizeof *out->rows.r, by_ms);
  return AT_OK;
}

void at_lookup_free(at_lookup *l) {
  if (!l)
    return;
  free(l->bucket);
  at_rows_free(&l->rows);
  memset(l, 0, sizeof *l);
}
