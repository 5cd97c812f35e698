/* kernels/mask.h — attention masks and the block-sparse layouts built from them (DESIGN §4).
 *
 * A kn_mask is an element predicate over (batch b, head h, query q, key k). Queries and keys are
 * aligned top-left: query q and key k are the q-th and k-th tokens of the same sequence, also
 * when S != SKV (so "causal" means k <= q, never k <= q + SKV - S). The predicate is
 *
 *   visible(b,h,q,k) = R(b,h,q,k) && D(q,k) && (k < prefix || (C(q,k) && W(q,k)))
 *
 *   R  random block pattern (density > 0): block (q / rblock_m, k / rblock_n) is present
 *   D  document (ndoc_tokens > 0): doc[q] == doc[k]
 *   C  causal: k <= q
 *   W  sliding window (window > 0): q - k < window
 *   prefix (> 0): prefix-LM, keys k < prefix are visible to every query (D still applies)
 *
 * Components whose field is zero/false are true, so a zero-initialized kn_mask is the dense
 * mask. Only document masks own memory (kn_mask_free).
 */
#ifndef TILEC_KERNELS_MASK_H
#define TILEC_KERNELS_MASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Granularity of a random block pattern when the spec does not give one. */
#define KN_MASK_RANDOM_BLOCK 128

typedef struct kn_mask {
  bool causal;    /* k <= q */
  int64_t window; /* > 0: also q - k < window (the `sliding:W` spec sets causal too) */
  int64_t prefix; /* > 0: keys k < prefix always visible; ORed with causal && window */

  /* Document mask: token t (query or key) belongs to document doc[t]. Ids are 0, 1, ..., ndocs-1,
   * non-decreasing in t, every id used; document d spans tokens [doc_start[d], doc_start[d+1]).
   * Needs S == SKV == ndoc_tokens. Both arrays are owned by the mask. */
  int64_t ndoc_tokens; /* 0: no document mask */
  int32_t ndocs;
  int32_t *doc;       /* [ndoc_tokens] */
  int64_t *doc_start; /* [ndocs + 1] */

  /* Random block pattern: block (qb, kb) = (q / rblock_m, k / rblock_n) of head (b, h) is
   * present iff (x >> 11) * 2^-53 < density, where (operands as uint64_t)
   *   x = kn_mix64(kn_mix64(kn_mix64(kn_mix64(kn_mix64(seed) ^ b) ^ h) ^ qb) ^ kb).
   * The pattern is fixed by its own block size, whatever block size a layout uses: layout blocks
   * that divide rblock_m x rblock_n are all FULL or EMPTY, others may be PARTIAL. */
  double density; /* 0: no random pattern; else in (0, 1] */
  uint64_t seed;
  int32_t rblock_m, rblock_n;
} kn_mask;

/* Parses a CLI mask spec into out (overwritten; free it with kn_mask_free even on error).
 * A spec is `none` or a comma-separated list of distinct components:
 *   causal            k <= q
 *   sliding:W         k <= q && q - k < W                      (W >= 1)
 *   prefix:P          k < P || k <= q                          (P >= 1)
 *   document:L1+L2+.. documents of lengths Li (>= 1) summing to S; needs S == SKV
 *   random:P[:BM[xBN]] random blocks of BM x BN (default 128 x 128) present with probability P
 *                     in (0, 1], drawn from seed
 * e.g. `causal,document:100+28` is causal attention within packed documents. Returns 0, or
 * nonzero with a message in err. */
int kn_mask_parse(const char *spec, int64_t S, int64_t SKV, uint64_t seed, kn_mask *out, char *err,
                  size_t errcap);

/* Makes m a document mask over the given lengths (n >= 1, each >= 1), keeping its other fields;
 * replaces any previous document arrays. Returns 0, or nonzero with a message in err. */
int kn_mask_set_documents(kn_mask *m, const int64_t *lengths, int32_t n, char *err, size_t errcap);

/* Checks that m is usable for an S x SKV problem (document length, field ranges). Returns 0, or
 * nonzero with a message in err. */
int kn_mask_check(const kn_mask *m, int64_t S, int64_t SKV, char *err, size_t errcap);

/* Frees the document arrays and resets m to the dense mask. NULL is a no-op. */
void kn_mask_free(kn_mask *m);

/* The element predicate (formula at the top of this file), for 0 <= q < S, 0 <= k < SKV of a
 * problem kn_mask_check accepted. */
bool kn_mask_visible(const kn_mask *m, int b, int h, int64_t q, int64_t k);

/* Whether block (qb, kb) of the random pattern of (b, h) is present (true without a pattern). */
bool kn_mask_block_present(const kn_mask *m, int b, int h, int64_t qb, int64_t kb);

typedef enum { KN_BLOCK_EMPTY = 0, KN_BLOCK_PARTIAL = 1, KN_BLOCK_FULL = 2 } kn_block_class;

/* Classifies the box q in [q0, q1] x k in [k0, k1] (inclusive, inside the problem) for (b, h):
 * FULL when every element is visible, EMPTY when none is, PARTIAL otherwise. Exact: computed by
 * interval reasoning on the components, in time independent of the box size (except across
 * random-pattern blocks and documents that the box spans, each visited at most once). */
kn_block_class kn_mask_classify(const kn_mask *m, int b, int h, int64_t q0, int64_t q1, int64_t k0,
                                int64_t k1);

/* A block-sparse attention layout: for each layout row l and query block qb, the key blocks
 * that are FULL (no element mask needed) and PARTIAL (element mask needed), each list ascending;
 * every other key block is EMPTY and skipped. Both lists are in CSR form over the rows
 * r = l * n_qblocks + qb: row r's FULL key blocks are
 *   full_idx[full_ptr[r]], ..., full_idx[full_ptr[r + 1] - 1]
 * and its PARTIAL ones part_idx[part_ptr[r] .. part_ptr[r + 1]) alike. full_ptr[0] = 0 and
 * full_ptr[L * n_qblocks] = n_full (part_ptr the same with n_part). Each idx array holds exactly
 * its entries, but at least one element (0 when there are no entries).
 * L is 1 when the mask is the same for every (b, h) (all masks but random), else B * H with
 * l = b * H + h; a kernel finds its row as l = (b * H + h) % L. The last query/key block may be
 * shorter than block_m/block_n; it is classified on its real range. */
typedef struct kn_layout {
  int32_t B, H, L;
  int64_t S, SKV;
  int32_t block_m, block_n;
  int32_t n_qblocks, n_kvblocks;
  int32_t *full_ptr;      /* [L * n_qblocks + 1] */
  int32_t *full_idx;      /* [max(n_full, 1)] */
  int32_t *part_ptr;      /* [L * n_qblocks + 1] */
  int32_t *part_idx;      /* [max(n_part, 1)] */
  int64_t n_full, n_part; /* totals over all rows, each below 2^31 */
} kn_layout;

/* Builds the layout of mask m for a B x H x S x SKV problem at block_m x block_n into out (which
 * the caller then owns; free with kn_layout_free). Returns 0, or nonzero with a message in err
 * (invalid mask or sizes, 2^31 or more rows or FULL or PARTIAL entries, out of memory), leaving
 * out empty. Takes time linear in the entries plus the blocks it has to classify (those near a
 * mask boundary; every block in the key range for random masks). */
int kn_layout_build(const kn_mask *m, int32_t B, int32_t H, int64_t S, int64_t SKV, int32_t block_m,
                    int32_t block_n, kn_layout *out, char *err, size_t errcap);

/* Frees the arrays of a layout and zeroes it. NULL is a no-op. */
void kn_layout_free(kn_layout *l);

#endif
