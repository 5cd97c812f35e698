/* autotune/lookup.h — the tuned config of a problem: its bucket's winner, else the winner of the
 * nearest tuned bucket, from the tuning database.
 *
 * A problem never tuned exactly still finds a config: its bucket (autotune/bucket.h) groups it
 * with the tuned shapes that share bucketed values (M=4000 and M=4096 are both M=pow2:4096), and
 * when even the bucket is new the nearest tuned bucket of the same kernel and device answers
 * (flagged, so a caller can decide to tune). Used by `tilec db best` and the public API.
 */
#ifndef TILEC_AUTOTUNE_LOOKUP_H
#define TILEC_AUTOTUNE_LOOKUP_H

#include <stdbool.h>

#include "autotune/db.h"
#include "ir/ir.h"
#include "kernels/problem.h"

typedef struct at_lookup {
  char *bucket; /* the problem's bucket text (malloc'd) */
  bool nearest; /* rows answer the nearest tuned bucket, not the problem's own */
  at_rows rows; /* winners: one per matching (device, toolchain) key, best first */
} at_lookup;

/* Looks up the winners for kernel k (parsed, unspecialized) and the problem (shape keys, dtype
 * or NULL). device and toolchain restrict the keys (NULL: any). AT_MISS when no ok row of the
 * kernel exists for the device in any bucket. The caller frees out with at_lookup_free. */
at_status at_lookup_best(at_db *db, const ir_kernel *k, const kn_shape *shape, const char *dtype,
                         const char *device, const char *toolchain, at_lookup *out, at_err *e);

void at_lookup_free(at_lookup *l); /* NULL-safe; leaves l zeroed */

#endif
