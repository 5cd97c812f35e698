/* autotune/bucket.h — problem buckets: the key a tuned config is stored and looked up under.
 *
 * A kernel's `buckets { }` section (docs/ir.md) says which problem values share a tuned config
 * (M = pow2: every M in (2048, 4096] is the bucket pow2:4096); values it does not list are exact.
 * at_bucket_key turns a problem (--shape keys and dtype) into a canonical text, the database key,
 * so a lookup for an unseen shape finds the winner of its bucket. at_bucket_nearest ranks the
 * tuned buckets of a kernel by their distance to a problem's bucket, for the warm start.
 */
#ifndef TILEC_AUTOTUNE_BUCKET_H
#define TILEC_AUTOTUNE_BUCKET_H

#include "autotune/at.h"
#include "ir/ir.h"
#include "kernels/problem.h"

/* The canonical bucket text of a problem: one item per --shape key plus `dtype=` (when dtype is
 * not NULL), sorted by key (strcmp), comma-separated. A key that names a bucketed dim or parameter
 * of k reads `M=pow2:4096`, `K=multiple(256):3072` or `scale=any`; every other key keeps its value
 * as given (`N=14336`, `mask=causal`), a ',' in it written ';' (`mask=causal;document:3+5`).
 * Example: `K=multiple(256):4096,M=pow2:16,N=14336,dtype=bf16`. The caller frees *out. Errors:
 * AT_ERR_ARG (NULL k, shape or out; a pow2/multiple key whose value is not an integer; a --shape
 * key named dtype when dtype is given), AT_ERR_OOM. */
at_status at_bucket_key(const ir_kernel *k, const kn_shape *shape, const char *dtype, char **out,
                        at_err *e);

/* The distance between two bucket texts: over the keys of both, |log2 a - log2 b| for two
 * positive numbers (the bucket values: 4096 for pow2:4096), 8 for two different non-numeric
 * values, and 8 for a key only one of them has. 0 for equal texts; INFINITY when either text is
 * not a bucket text (an item without '='). */
double at_bucket_distance(const char *a, const char *b);

/* One tuned bucket and one of its winning configs (a database row), as the caller holds them. */
typedef struct at_bucket_winner {
  const char *bucket;
  const char *config;
} at_bucket_winner;

/* Picks the warm-start configs for the problem whose bucket text is `bucket`: the pairs of list
 * ranked by the distance of their bucket (ties: bucket text, then list order), and up to max
 * distinct configs taken in that order, so the nearest bucket's winners come first. Pairs with a
 * malformed bucket are skipped. out[0..*nout) point into list (the caller keeps list alive).
 * Errors: AT_ERR_ARG (NULL bucket, out or nout, n or max negative, a malformed bucket), AT_ERR_OOM.
 */
at_status at_bucket_nearest(const char *bucket, const at_bucket_winner *list, int n, int max,
                            const char **out, int *nout, at_err *e);

#endif
