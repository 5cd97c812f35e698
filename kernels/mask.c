/* kernels/mask.c — mask specs, the element predicate, exact block classification, layouts.
 *
 * Host side of the block-sparse attention kernels: `tilec run/tune` parse a mask spec, the
 * reference uses kn_mask_visible, and the kernels get a kn_layout (per query block, the FULL and
 * PARTIAL key blocks, in CSR form). Classification never enumerates elements: each component is a
 * box test on intervals (key range, q - k range, document-id range), and the build touches only
 * the memory its entries need, so a causal layout for 128k tokens takes a few milliseconds.
 */
#include "kernels/mask.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/fail.h"

#include "kernels/rng.h"

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* ---- spec parsing ------------------------------------------------------------------------- */

/* Parses the decimal integer s[0..n) (digits only) into *v. */
static bool parse_i64(const char *s, size_t n, int64_t *v) {
  if (n == 0)
    return false;
  int64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9' || x > (INT64_MAX - (s[i] - '0')) / 10)
      return false;
    x = x * 10 + (s[i] - '0');
  }
  *v = x;
  return true;
}

static bool parse_prob(const char *s, size_t n, double *v) {
  char buf[64];
  if (n == 0 || n >= sizeof buf)
    return false;
  memcpy(buf, s, n);
  buf[n] = 0;
  char *end;
  *v = strtod(buf, &end);
  return *end == 0 && (buf[0] == '.' || (buf[0] >= '0' && buf[0] <= '9')) && *v > 0 && *v <= 1;
}

/* `L1+L2+...` (the argument of document:) */
static int parse_documents(kn_mask *m, const char *arg, size_t n, int64_t S, int64_t SKV, char *err,
                           size_t cap) {
  if (S != SKV)
    return kn_fail(err, cap, "document masks need S == SKV (S=%lld, SKV=%lld)", (long long)S,
                   (long long)SKV);
  size_t ndocs = 1;
  for (size_t i = 0; i < n; i++)
    ndocs += arg[i] == '+';
  if (ndocs > INT32_MAX)
    return kn_fail(err, cap, "too many documents");
  int64_t *len = malloc(ndocs * sizeof *len);
  if (!len)
    return kn_fail(err, cap, "out of memory");
  int64_t sum = 0;
  size_t d = 0, start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && arg[i] != '+')
      continue;
    if (!parse_i64(arg + start, i - start, &len[d]) || len[d] < 1) {
      free(len);
      return kn_fail(err, cap, "document:%.*s: document %zu needs a length >= 1", (int)n, arg,
                     d + 1);
    }
    sum = len[d] > INT64_MAX - sum ? INT64_MAX : sum + len[d];
    d++;
    start = i + 1;
  }
  int rc = 0;
  if (sum != S)
    rc =
        kn_fail(err, cap, "document lengths sum to %lld, not S=%lld", (long long)sum, (long long)S);
  else
    rc = kn_mask_set_documents(m, len, (int32_t)ndocs, err, cap);
  free(len);
  return rc;
}

/* `P[:BM[xBN]]` (the argument of random:) */
static int parse_random(kn_mask *m, const char *arg, size_t n, char *err, size_t cap) {
  const char *colon = memchr(arg, ':', n);
  size_t np = colon ? (size_t)(colon - arg) : n;
  if (!parse_prob(arg, np, &m->density))
    return kn_fail(err, cap, "random:%.*s: the density must be a number in (0, 1]", (int)n, arg);
  int64_t bm = KN_MASK_RANDOM_BLOCK, bn = KN_MASK_RANDOM_BLOCK;
  if (colon) {
    const char *g = colon + 1;
    size_t ng = n - np - 1;
    const char *x = memchr(g, 'x', ng);
    size_t nm = x ? (size_t)(x - g) : ng;
    bool ok = parse_i64(g, nm, &bm);
    bn = bm;
    if (x)
      ok = ok && parse_i64(x + 1, ng - nm - 1, &bn);
    if (!ok || bm < 1 || bn < 1 || bm > INT32_MAX || bn > INT32_MAX)
      return kn_fail(err, cap, "random:%.*s: the block must be BM or BMxBN with positive integers",
                     (int)n, arg);
  }
  m->rblock_m = (int32_t)bm;
  m->rblock_n = (int32_t)bn;
  return 0;
}

/* One component `name[:arg]` of a spec; seen collects the names already used. */
static int parse_component(kn_mask *m, const char *c, size_t n, int64_t S, int64_t SKV,
                           unsigned *seen, char *err, size_t cap) {
  static const char *const names[] = {"causal", "sliding", "prefix", "document", "random"};
  const char *colon = memchr(c, ':', n);
  size_t nn = colon ? (size_t)(colon - c) : n;
  const char *arg = colon ? colon + 1 : c + n;
  size_t na = colon ? n - nn - 1 : 0;
  int kind = -1;
  for (int i = 0; i < 5; i++)
    if (strlen(names[i]) == nn && memcmp(c, names[i], nn) == 0)
      kind = i;
  if (kind < 0)
    return kn_fail(err, cap,
                   "unknown mask '%.*s' (expected none, causal, sliding:W, prefix:P, "
                   "document:L1+L2+..., random:P[:BM[xBN]])",
                   (int)n, c);
  if (*seen & (1u << kind))
    return kn_fail(err, cap, "mask component '%s' given twice", names[kind]);
  *seen |= 1u << kind;
  if (kind == 0 && colon)
    return kn_fail(err, cap, "causal takes no argument");
  if (kind != 0 && !colon)
    return kn_fail(err, cap, "%s needs an argument", names[kind]);
  int64_t v = 0;
  switch (kind) {
  case 0:
    m->causal = true;
    return 0;
  case 1:
  case 2:
    if (!parse_i64(arg, na, &v) || v < 1)
      return kn_fail(err, cap, "%.*s: expected a positive integer", (int)n, c);
    m->causal = true;
    *(kind == 1 ? &m->window : &m->prefix) = v;
    return 0;
  case 3:
    return parse_documents(m, arg, na, S, SKV, err, cap);
  default:
    return parse_random(m, arg, na, err, cap);
  }
}

int kn_mask_parse(const char *spec, int64_t S, int64_t SKV, uint64_t seed, kn_mask *out, char *err,
                  size_t errcap) {
  *out = (kn_mask){0};
  out->seed = seed;
  if (!spec || !*spec)
    return kn_fail(err, errcap, "empty mask spec");
  if (strcmp(spec, "none") == 0)
    return kn_mask_check(out, S, SKV, err, errcap);
  unsigned seen = 0;
  for (const char *c = spec;;) {
    const char *end = strchr(c, ',');
    size_t n = end ? (size_t)(end - c) : strlen(c);
    if (parse_component(out, c, n, S, SKV, &seen, err, errcap))
      return 1;
    if (!end)
      break;
    c = end + 1;
  }
  return kn_mask_check(out, S, SKV, err, errcap);
}

/* ---- the mask ----------------------------------------------------------------------------- */

int kn_mask_set_documents(kn_mask *m, const int64_t *lengths, int32_t n, char *err, size_t errcap) {
  if (n < 1)
    return kn_fail(err, errcap, "a document mask needs at least one document");
  int64_t ntok = 0;
  for (int32_t d = 0; d < n; d++) {
    if (lengths[d] < 1)
      return kn_fail(err, errcap, "document %d has length %lld (must be >= 1)", (int)d,
                     (long long)lengths[d]);
    if (lengths[d] > INT32_MAX - ntok)
      return kn_fail(err, errcap, "documents hold more than 2^31 tokens");
    ntok += lengths[d];
  }
  int32_t *doc = malloc((size_t)ntok * sizeof *doc);
  int64_t *start = malloc(((size_t)n + 1) * sizeof *start);
  if (!doc || !start) {
    free(doc);
    free(start);
    return kn_fail(err, errcap, "out of memory");
  }
  int64_t t = 0;
  for (int32_t d = 0; d < n; d++) {
    start[d] = t;
    for (int64_t i = 0; i < lengths[d]; i++)
      doc[t++] = d;
  }
  start[n] = t;
  free(m->doc);
  free(m->doc_start);
  m->doc = doc;
  m->doc_start = start;
  m->ndocs = n;
  m->ndoc_tokens = ntok;
  return 0;
}

int kn_mask_check(const kn_mask *m, int64_t S, int64_t SKV, char *err, size_t errcap) {
  if (S < 0 || SKV < 0)
    return kn_fail(err, errcap, "negative sequence length (S=%lld, SKV=%lld)", (long long)S,
                   (long long)SKV);
  if (m->window < 0 || m->prefix < 0)
    return kn_fail(err, errcap, "negative window or prefix");
  if (!(m->density >= 0 && m->density <= 1))
    return kn_fail(err, errcap, "random mask density %g is not in (0, 1]", m->density);
  if (m->density > 0 && (m->rblock_m < 1 || m->rblock_n < 1))
    return kn_fail(err, errcap, "random mask block %dx%d is not positive", (int)m->rblock_m,
                   (int)m->rblock_n);
  if (m->ndoc_tokens > 0 && (!m->doc || !m->doc_start || m->ndocs < 1))
    return kn_fail(err, errcap, "document mask without document arrays");
  if (m->ndoc_tokens > 0 && (S != m->ndoc_tokens || SKV != m->ndoc_tokens))
    return kn_fail(err, errcap, "document mask covers %lld tokens, but S=%lld and SKV=%lld",
                   (long long)m->ndoc_tokens, (long long)S, (long long)SKV);
  return 0;
}

void kn_mask_free(kn_mask *m) {
  if (!m)
    return;
  free(m->doc);
  free(m->doc_start);
  *m = (kn_mask){0};
}

bool kn_mask_block_present(const kn_mask *m, int b, int h, int64_t qb, int64_t kb) {
  if (m->density <= 0)
    return true;
  uint64_t x = kn_mix64(m->seed);
  x = kn_mix64(x ^ (uint64_t)b);
  x = kn_mix64(x ^ (uint64_t)h);
  x = kn_mix64(x ^ (uint64_t)qb);
  x = kn_mix64(x ^ (uint64_t)kb);
  return (double)(x >> 11) * 0x1p-53 < m->density;
}

bool kn_mask_visible(const kn_mask *m, int b, int h, int64_t q, int64_t k) {
  if (m->density > 0 && !kn_mask_block_present(m, b, h, q / m->rblock_m, k / m->rblock_n))
    return false;
  if (m->ndoc_tokens > 0 && m->doc[q] != m->doc[k])
    return false;
  if (k < m->prefix)
    return true;
  if (m->causal && k > q)
    return false;
  return m->window <= 0 || q - k < m->window;
}

/* ---- block classification ----------------------------------------------------------------- */

/* The class of a box split into two disjoint parts of classes a and b. */
static inline kn_block_class join(kn_block_class a, kn_block_class b) {
  return a == b ? a : KN_BLOCK_PARTIAL;
}

/* C && W on a box: q - k takes every value in [q0 - k1, q1 - k0]; the allowed values are
 * [0 if causal, window - 1 if windowed]. */
static inline kn_block_class classify_diag(const kn_mask *m, int64_t q0, int64_t q1, int64_t k0,
                                           int64_t k1) {
  int64_t dmin = q0 - k1, dmax = q1 - k0;
  int64_t amin = m->causal ? 0 : INT64_MIN;
  int64_t amax = m->window > 0 ? m->window - 1 : INT64_MAX;
  if (dmax < amin || dmin > amax)
    return KN_BLOCK_EMPTY;
  if (dmin >= amin && dmax <= amax)
    return KN_BLOCK_FULL;
  return KN_BLOCK_PARTIAL;
}

/* k < prefix || (C && W): keys below the prefix form a FULL part of the box, the rest is C && W. */
static inline kn_block_class classify_geom(const kn_mask *m, int64_t q0, int64_t q1, int64_t k0,
                                           int64_t k1) {
  if (k0 >= m->prefix)
    return classify_diag(m, q0, q1, k0, k1);
  if (k1 < m->prefix)
    return KN_BLOCK_FULL;
  return join(KN_BLOCK_FULL, classify_diag(m, q0, q1, m->prefix, k1));
}

/* D && geometry. Document ids are consecutive, so the documents met by both ranges are the ids
 * in the intersection of the two id ranges; the box is the union of one sub-box per such
 * document (where D holds) and of cells where D fails. */
static inline kn_block_class classify_doc(const kn_mask *m, int64_t q0, int64_t q1, int64_t k0,
                                          int64_t k1) {
  if (m->ndoc_tokens <= 0)
    return classify_geom(m, q0, q1, k0, k1);
  int32_t dq0 = m->doc[q0], dq1 = m->doc[q1], dk0 = m->doc[k0], dk1 = m->doc[k1];
  int32_t dlo = dq0 > dk0 ? dq0 : dk0, dhi = dq1 < dk1 ? dq1 : dk1;
  if (dlo > dhi)
    return KN_BLOCK_EMPTY;
  if (dq0 == dq1 && dk0 == dk1 && dq0 == dk0)
    return classify_geom(m, q0, q1, k0, k1);
  /* Several documents: some cells fail D, so the box is PARTIAL unless every sub-box is EMPTY. */
  for (int32_t d = dlo; d <= dhi; d++) {
    int64_t s = m->doc_start[d], e = m->doc_start[d + 1] - 1;
    if (classify_geom(m, max64(q0, s), min64(q1, e), max64(k0, s), min64(k1, e)) != KN_BLOCK_EMPTY)
      return KN_BLOCK_PARTIAL;
  }
  return KN_BLOCK_EMPTY;
}

/* R && the rest: splits the box along the random pattern's blocks, absent ones are EMPTY. */
static kn_block_class classify_random(const kn_mask *m, int b, int h, int64_t q0, int64_t q1,
                                      int64_t k0, int64_t k1) {
  kn_block_class c = KN_BLOCK_EMPTY;
  bool first = true;
  for (int64_t rq = q0 / m->rblock_m; rq <= q1 / m->rblock_m; rq++) {
    int64_t a0 = max64(q0, rq * m->rblock_m), a1 = min64(q1, (rq + 1) * m->rblock_m - 1);
    for (int64_t rk = k0 / m->rblock_n; rk <= k1 / m->rblock_n; rk++) {
      int64_t c0 = max64(k0, rk * m->rblock_n), c1 = min64(k1, (rk + 1) * m->rblock_n - 1);
      kn_block_class part =
          kn_mask_block_present(m, b, h, rq, rk) ? classify_doc(m, a0, a1, c0, c1) : KN_BLOCK_EMPTY;
      c = first ? part : join(c, part);
      first = false;
      if (c == KN_BLOCK_PARTIAL)
        return c;
    }
  }
  return c;
}

kn_block_class kn_mask_classify(const kn_mask *m, int b, int h, int64_t q0, int64_t q1, int64_t k0,
                                int64_t k1) {
  if (m->density > 0)
    return classify_random(m, b, h, q0, q1, k0, k1);
  return classify_doc(m, q0, q1, k0, k1);
}

/* ---- layouts ------------------------------------------------------------------------------ */

/* Keys that any query in [q0, q1] may see lie in [*klo, *khi] (a superset; empty if klo > khi).
 * Blocks outside it are EMPTY without being classified. */
static void key_bounds(const kn_mask *m, int64_t q0, int64_t q1, int64_t SKV, int64_t *klo,
                       int64_t *khi) {
  int64_t lo = 0, hi = SKV - 1;
  if (m->causal)
    hi = min64(hi, max64(q1, m->prefix - 1));
  if (m->window > 0 && m->prefix <= 0)
    lo = max64(lo, q0 - m->window + 1);
  if (m->ndoc_tokens > 0) {
    lo = max64(lo, m->doc_start[m->doc[q0]]);
    hi = min64(hi, m->doc_start[m->doc[q1] + 1] - 1);
  }
  *klo = lo;
  *khi = hi;
}

/* Key blocks [*fa, *fb] that are surely FULL for queries [q0, q1] of a mask without a random
 * pattern: keys in one document with all the queries, at or below q0 if causal, and within the
 * window of q1. Sufficient, not necessary: the build classifies the blocks outside it. */
static void full_run(const kn_mask *m, int64_t q0, int64_t q1, int64_t SKV, int64_t bn, int64_t *fa,
                     int64_t *fb) {
  int64_t lo = 0, hi = SKV - 1;
  if (m->causal)
    hi = min64(hi, q0);
  if (m->window > 0)
    lo = max64(lo, q1 - m->window + 1);
  if (m->ndoc_tokens > 0) {
    int32_t d = m->doc[q0];
    if (d != m->doc[q1])
      hi = -1;
    lo = max64(lo, m->doc_start[d]);
    hi = min64(hi, m->doc_start[d + 1] - 1);
  }
  *fa = lo / bn + (lo % bn != 0);
  *fb = hi == SKV - 1 ? (SKV - 1) / bn : (hi + 1) / bn - 1;
  if (lo > hi)
    *fb = *fa - 1;
}

/* The FULL or PARTIAL entries of a layout while it is built: grown geometrically, so that only
 * the pages the entries land on are touched (the list is much shorter than L x nqb x nkb). */
typedef struct idx_list {
  int32_t *v;
  int64_t n, cap;
} idx_list;

/* Makes room for `more` entries. Returns 0, 1 when the list would pass 2^31 - 1 entries, 2 when
 * out of memory. */
static int reserve(idx_list *a, int64_t more) {
  if (a->n + more <= a->cap)
    return 0;
  if (a->n + more > INT32_MAX)
    return 1;
  int64_t cap = a->cap;
  while (cap < a->n + more)
    cap = cap > INT32_MAX / 2 ? INT32_MAX : 2 * cap;
  int32_t *v = realloc(a->v, (size_t)cap * sizeof *v);
  if (!v)
    return 2;
  a->v = v;
  a->cap = cap;
  return 0;
}

/* Appends the key blocks kb0, kb0 + 1, ..., kb1 (none if kb1 < kb0). */
static int append_run(idx_list *a, int64_t kb0, int64_t kb1) {
  if (kb1 < kb0)
    return 0;
  int rc = reserve(a, kb1 - kb0 + 1);
  if (rc)
    return rc;
  int32_t *p = a->v + a->n;
  for (int64_t kb = kb0; kb <= kb1; kb++)
    *p++ = (int32_t)kb;
  a->n += kb1 - kb0 + 1;
  return 0;
}

/* Appends the entries of row r = l * nqb + qb: the blocks in the key bounds, those in the surely
 * FULL run without classifying them. */
static int build_row(const kn_mask *m, int b, int h, int64_t qb, const kn_layout *out,
                     idx_list *full, idx_list *part) {
  int64_t bn = out->block_n;
  int64_t q0 = qb * out->block_m, q1 = min64(q0 + out->block_m, out->S) - 1;
  int64_t klo, khi;
  key_bounds(m, q0, q1, out->SKV, &klo, &khi);
  if (klo > khi)
    return 0;
  int64_t fa = 0, fb = -1;
  if (m->density <= 0)
    full_run(m, q0, q1, out->SKV, bn, &fa, &fb);
  int rc = 0;
  for (int64_t kb = klo / bn; kb <= khi / bn && rc == 0; kb++) {
    if (kb >= fa && kb <= fb) {
      int64_t end = min64(fb, khi / bn);
      rc = append_run(full, kb, end);
      kb = end;
      continue;
    }
    int64_t k0 = kb * bn, k1 = min64(k0 + bn, out->SKV) - 1;
    kn_block_class c =
        m->density > 0 ? classify_random(m, b, h, q0, q1, k0, k1) : classify_doc(m, q0, q1, k0, k1);
    if (c != KN_BLOCK_EMPTY)
      rc = append_run(c == KN_BLOCK_FULL ? full : part, kb, kb);
  }
  return rc;
}

/* The list's storage shrunk to its length, for the layout to own; an empty list keeps one
 * element, 0. */
static int32_t *finish(idx_list *a) {
  if (a->n == 0)
    a->v[0] = 0;
  int32_t *v = realloc(a->v, (size_t)(a->n > 0 ? a->n : 1) * sizeof *v);
  return v ? v : a->v;
}

int kn_layout_build(const kn_mask *m, int32_t B, int32_t H, int64_t S, int64_t SKV, int32_t block_m,
                    int32_t block_n, kn_layout *out, char *err, size_t errcap) {
  *out = (kn_layout){0};
  if (kn_mask_check(m, S, SKV, err, errcap))
    return 1;
  if (B < 1 || H < 1 || block_m < 1 || block_n < 1)
    return kn_fail(err, errcap, "layout needs B, H, block_m, block_n >= 1 (got %d, %d, %d, %d)",
                   (int)B, (int)H, (int)block_m, (int)block_n);
  int64_t nqb = S / block_m + (S % block_m != 0), nkb = SKV / block_n + (SKV % block_n != 0);
  int64_t L = m->density > 0 ? (int64_t)B * H : 1;
  if (nqb > INT32_MAX || nkb > INT32_MAX || L > INT32_MAX || L * nqb > INT32_MAX - 1)
    return kn_fail(err, errcap, "layout of %lld x %lld x %lld blocks has 2^31 or more rows",
                   (long long)L, (long long)nqb, (long long)nkb);
  int64_t rows = L * nqb;
  out->B = B;
  out->H = H;
  out->L = (int32_t)L;
  out->S = S;
  out->SKV = SKV;
  out->block_m = block_m;
  out->block_n = block_n;
  out->n_qblocks = (int32_t)nqb;
  out->n_kvblocks = (int32_t)nkb;
  int64_t cap0 = rows > 16 ? rows : 16;
  idx_list full = {malloc((size_t)cap0 * sizeof(int32_t)), 0, cap0};
  idx_list part = {malloc((size_t)cap0 * sizeof(int32_t)), 0, cap0};
  out->full_ptr = malloc((size_t)(rows + 1) * sizeof(int32_t));
  out->part_ptr = malloc((size_t)(rows + 1) * sizeof(int32_t));
  int rc = full.v && part.v && out->full_ptr && out->part_ptr ? 0 : 2;
  if (rc == 0)
    out->full_ptr[0] = out->part_ptr[0] = 0;
  for (int64_t r = 0; r < rows && rc == 0; r++) {
    int64_t l = r / nqb;
    rc = build_row(m, (int)(l / H), (int)(l % H), r % nqb, out, &full, &part);
    out->full_ptr[r + 1] = (int32_t)full.n;
    out->part_ptr[r + 1] = (int32_t)part.n;
  }
  if (rc) {
    free(full.v);
    free(part.v);
    kn_layout_free(out);
    if (rc == 1)
      return kn_fail(err, errcap, "layout of %lld x %lld x %lld blocks has 2^31 or more entries",
                     (long long)L, (long long)nqb, (long long)nkb);
    return kn_fail(err, errcap, "out of memory for a layout of %lld x %lld x %lld blocks",
                   (long long)L, (long long)nqb, (long long)nkb);
  }
  out->full_idx = finish(&full);
  out->part_idx = finish(&part);
  out->n_full = full.n;
  out->n_part = part.n;
  return 0;
}

void kn_layout_free(kn_layout *l) {
  if (!l)
    return;
  free(l->full_ptr);
  free(l->full_idx);
  free(l->part_ptr);
  free(l->part_idx);
  *l = (kn_layout){0};
}
