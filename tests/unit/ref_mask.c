/* tests/unit/ref_mask.c — unit tests of the host side of the built-in kernels (kernels/).
 *
 * CPU references (matmul, attention, bsmatmul), mask specs and the exactness of block layouts
 * (every FULL/EMPTY/PARTIAL claim checked by brute force over all elements), the causal 128k
 * layout build time, BSR weights, .npy files, the numeric checker and its tolerances.
 * Standalone: its own CHECK macros, exit status 0 when every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernels/bsr.h"
#include "kernels/check.h"
#include "kernels/mask.h"
#include "kernels/npy.h"
#include "kernels/ref.h"
#include "kernels/rng.h"

static int n_checks, n_failed;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    n_checks++;                                                                                    \
    if (!(cond)) {                                                                                 \
      n_failed++;                                                                                  \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                     \
    }                                                                                              \
  } while (0)

#define CHECK_INT(expected, actual)                                                                \
  do {                                                                                             \
    long long e_ = (long long)(expected), a_ = (long long)(actual);                                \
    n_checks++;                                                                                    \
    if (e_ != a_) {                                                                                \
      n_failed++;                                                                                  \
      fprintf(stderr, "%s:%d: %s: expected %lld, got %lld\n", __FILE__, __LINE__, #actual, e_,     \
              a_);                                                                                 \
    }                                                                                              \
  } while (0)

#define CHECK_NEAR(expected, actual, tol)                                                          \
  do {                                                                                             \
    double e_ = (expected), a_ = (actual);                                                         \
    n_checks++;                                                                                    \
    if (!(fabs(e_ - a_) <= (tol))) {                                                               \
      n_failed++;                                                                                  \
      fprintf(stderr, "%s:%d: %s: expected %.17g, got %.17g\n", __FILE__, __LINE__, #actual, e_,   \
              a_);                                                                                 \
    }                                                                                              \
  } while (0)

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static double *alloc_normal(int64_t n, kn_rng *r) {
  double *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
  for (int64_t i = 0; i < n; i++)
    p[i] = kn_rng_normal(r);
  return p;
}

/* ---- references ----------------------------------------------------------------------------- */

static void test_matmul(void) {
  const double A[6] = {1, 2, 3, 4, 5, 6};     /* [2][3] */
  const double At[6] = {1, 4, 2, 5, 3, 6};    /* A stored [3][2] */
  const double B[6] = {7, 8, 9, 10, 11, 12};  /* [3][2] */
  const double Bt[6] = {7, 9, 11, 8, 10, 12}; /* B stored [2][3] */
  const double want[4] = {58, 64, 139, 154};
  double C[4];
  kn_ref_matmul(2, 2, 3, A, 3, 1, B, 2, 1, C);
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(want[i], C[i], 0);
  kn_ref_matmul(2, 2, 3, At, 1, 2, Bt, 1, 3, C);
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(want[i], C[i], 0);
  kn_ref_bsmatmul(2, 2, 3, A, Bt, C);
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(want[i], C[i], 0);
  kn_ref_matmul(2, 2, 0, A, 3, 1, B, 2, 1, C); /* K = 0: zeros */
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(0, C[i], 0);
}

/* One attention row the naive way (no max subtraction), for small well-scaled inputs. */
static void naive_row(const double *q, const double *K, const double *V, int64_t SKV, int64_t D,
                      double scale, double *o, double *lse) {
  double l = 0;
  for (int64_t d = 0; d < D; d++)
    o[d] = 0;
  for (int64_t k = 0; k < SKV; k++) {
    double s = 0;
    for (int64_t d = 0; d < D; d++)
      s += q[d] * K[k * D + d];
    double p = exp(scale * s);
    l += p;
    for (int64_t d = 0; d < D; d++)
      o[d] += p * V[k * D + d];
  }
  for (int64_t d = 0; d < D; d++)
    o[d] /= l;
  *lse = log(l);
}

static void test_attention(void) {
  enum { B = 2, H = 4, HKV = 2, S = 5, SKV = 7, D = 3 };
  kn_rng r;
  kn_rng_seed(&r, 1);
  double *Q = alloc_normal(B * H * S * D, &r), *K = alloc_normal(B * HKV * SKV * D, &r);
  double *V = alloc_normal(B * HKV * SKV * D, &r);
  double O1[B * H * S * D], O2[B * H * S * D], L1[B * H * S], L2[B * H * S];
  char err[256];
  double scale = 0.5;
  CHECK_INT(0, kn_ref_attention(B, H, HKV, S, SKV, D, Q, K, V, scale, NULL, O1, L1, err, 256));

  /* the zero mask and an all-visible prefix mask are dense */
  kn_mask dense = {0}, all = {.causal = true, .prefix = SKV};
  CHECK_INT(0, kn_ref_attention(B, H, HKV, S, SKV, D, Q, K, V, scale, &dense, O2, L2, err, 256));
  CHECK(memcmp(O1, O2, sizeof O1) == 0 && memcmp(L1, L2, sizeof L1) == 0);
  CHECK_INT(0, kn_ref_attention(B, H, HKV, S, SKV, D, Q, K, V, scale, &all, O2, L2, err, 256));
  CHECK(memcmp(O1, O2, sizeof O1) == 0 && memcmp(L1, L2, sizeof L1) == 0);

  /* every row against the naive formula; head h reads KV head h / 2 */
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int q = 0; q < S; q++) {
        double o[D], lse;
        int64_t kv = (int64_t)(b * HKV + h / 2) * SKV * D, row = (b * H + h) * S + q;
        naive_row(Q + row * D, K + kv, V + kv, SKV, D, scale, o, &lse);
        CHECK_NEAR(lse, L1[row], 1e-12);
        for (int d = 0; d < D; d++)
          CHECK_NEAR(o[d], O1[row * D + d], 1e-12);
      }

  /* causal: row q equals dense attention over keys 0..q */
  kn_mask causal = {.causal = true};
  CHECK_INT(0, kn_ref_attention(B, H, HKV, S, SKV, D, Q, K, V, scale, &causal, O2, L2, err, 256));
  for (int q = 0; q < S; q++) {
    double o[D], lse;
    naive_row(Q + q * D, K, V, q + 1, D, scale, o, &lse);
    CHECK_NEAR(lse, L2[q], 1e-12);
    for (int d = 0; d < D; d++)
      CHECK_NEAR(o[d], O2[q * D + d], 1e-12);
  }

  /* large scores stay finite (max subtracted) */
  CHECK_INT(0, kn_ref_attention(B, H, HKV, S, SKV, D, Q, K, V, 1e4, NULL, O2, L2, err, 256));
  bool finite = true;
  for (int i = 0; i < B * H * S * D; i++)
    finite = finite && isfinite(O2[i]);
  CHECK(finite);

  /* S > SKV with sliding:2: queries q >= 3 see no key (k <= q, q - k < 2, k < 2) */
  enum { S2 = 6, SKV2 = 2 };
  kn_mask win = {.causal = true, .window = 2};
  double O3[S2 * D], L3[S2];
  CHECK_INT(0, kn_ref_attention(1, 1, 1, S2, SKV2, D, Q, K, V, scale, &win, O3, L3, err, 256));
  for (int q = 0; q < S2; q++) {
    if (q >= 3) {
      CHECK(L3[q] == -INFINITY);
      for (int d = 0; d < D; d++)
        CHECK(O3[q * D + d] == 0);
    } else {
      CHECK(isfinite(L3[q]));
    }
  }
  /* a fully masked row equals the reference's -inf in the checker */
  kn_cmp_result cr;
  kn_compare(L3, L3, S2, kn_tolerance(23), &cr);
  CHECK(cr.pass);

  CHECK(kn_ref_attention(1, 3, 2, S, SKV, D, Q, K, V, scale, NULL, O2, L2, err, 256) != 0);
  CHECK(strstr(err, "bad shape") != NULL);
  free(Q);
  free(K);
  free(V);
}

/* ---- mask specs ------------------------------------------------------------------------------ */

static void test_mask_parse(void) {
  char err[256];
  kn_mask m;
  CHECK_INT(0, kn_mask_parse("none", 8, 8, 0, &m, err, sizeof err));
  CHECK(!m.causal && m.window == 0 && m.prefix == 0 && m.density == 0 && m.ndoc_tokens == 0);
  CHECK_INT(0, kn_mask_parse("sliding:3", 8, 8, 0, &m, err, sizeof err));
  CHECK(m.causal && m.window == 3);
  CHECK(kn_mask_visible(&m, 0, 0, 5, 3) && kn_mask_visible(&m, 0, 0, 5, 5));
  CHECK(!kn_mask_visible(&m, 0, 0, 5, 2) && !kn_mask_visible(&m, 0, 0, 5, 6));
  CHECK_INT(0, kn_mask_parse("prefix:3", 8, 10, 0, &m, err, sizeof err));
  CHECK(m.causal && m.prefix == 3);
  CHECK(kn_mask_visible(&m, 0, 0, 0, 2) && !kn_mask_visible(&m, 0, 0, 0, 3));
  CHECK(kn_mask_visible(&m, 0, 0, 5, 5) && !kn_mask_visible(&m, 0, 0, 5, 6));
  CHECK_INT(0, kn_mask_parse("causal,document:3+5", 8, 8, 0, &m, err, sizeof err));
  CHECK(m.causal && m.ndocs == 2 && m.doc[2] == 0 && m.doc[3] == 1 && m.doc_start[2] == 8);
  CHECK(kn_mask_visible(&m, 0, 0, 2, 0) && !kn_mask_visible(&m, 0, 0, 3, 2));
  CHECK(kn_mask_visible(&m, 0, 0, 7, 3) && !kn_mask_visible(&m, 0, 0, 3, 4));
  kn_mask_free(&m);
  CHECK_INT(0, kn_mask_parse("document:3+5", 8, 8, 0, &m, err, sizeof err));
  CHECK(!m.causal && kn_mask_visible(&m, 0, 0, 3, 7));
  kn_mask_free(&m);
  CHECK(m.doc == NULL && m.ndoc_tokens == 0);
  CHECK_INT(0, kn_mask_parse("random:0.25", 8, 8, 7, &m, err, sizeof err));
  CHECK(m.density == 0.25 && m.seed == 7 && m.rblock_m == 128 && m.rblock_n == 128);
  CHECK_INT(0, kn_mask_parse("random:1:16", 8, 8, 7, &m, err, sizeof err));
  CHECK(m.rblock_m == 16 && m.rblock_n == 16 && kn_mask_visible(&m, 1, 1, 7, 7));
  CHECK_INT(0, kn_mask_parse("random:.5:16x32,causal", 8, 8, 7, &m, err, sizeof err));
  CHECK(m.rblock_m == 16 && m.rblock_n == 32 && m.causal && m.density == 0.5);

  static const struct {
    const char *spec;
    int64_t S, SKV;
    const char *msg;
  } bad[] = {
      {"", 8, 8, "empty"},
      {"bogus", 8, 8, "unknown mask"},
      {"causal:3", 8, 8, "no argument"},
      {"sliding", 8, 8, "needs an argument"},
      {"sliding:0", 8, 8, "positive integer"},
      {"sliding:-1", 8, 8, "positive integer"},
      {"sliding:3x", 8, 8, "positive integer"},
      {"prefix:", 8, 8, "positive integer"},
      {"document:3+4", 8, 8, "sum to 7, not S=8"},
      {"document:3+5", 8, 9, "S == SKV"},
      {"document:0+8", 8, 8, "length >= 1"},
      {"document:3++5", 8, 8, "length >= 1"},
      {"random:0", 8, 8, "(0, 1]"},
      {"random:1.5", 8, 8, "(0, 1]"},
      {"random:nan", 8, 8, "(0, 1]"},
      {"random:0.5:0", 8, 8, "positive integers"},
      {"random:0.5:16x", 8, 8, "positive integers"},
      {"causal,causal", 8, 8, "given twice"},
      {"none,causal", 8, 8, "unknown mask"},
      {"causal,", 8, 8, "unknown mask"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = 0;
    int rc = kn_mask_parse(bad[i].spec, bad[i].S, bad[i].SKV, 0, &m, err, sizeof err);
    kn_mask_free(&m);
    CHECK(rc != 0 && strstr(err, bad[i].msg) != NULL);
    if (rc == 0 || !strstr(err, bad[i].msg))
      fprintf(stderr, "  spec '%s': rc %d, message '%s'\n", bad[i].spec, rc, err);
  }
}

/* ---- layout exactness ------------------------------------------------------------------------ */

/* A mask family; the document ones get lengths cut from DOC_LENS to sum to S. */
typedef struct {
  const char *spec; /* without the document part */
  bool doc;
  bool causal;
  int64_t window, prefix;
  double density;
  int rbm, rbn;
} mask_case;

static const mask_case cases[] = {
    {"none", false, false, 0, 0, 0, 0, 0},
    {"causal", false, true, 0, 0, 0, 0, 0},
    {"sliding:1", false, true, 1, 0, 0, 0, 0},
    {"sliding:5", false, true, 5, 0, 0, 0, 0},
    {"sliding:40", false, true, 40, 0, 0, 0, 0},
    {"prefix:1", false, true, 0, 1, 0, 0, 0},
    {"prefix:9", false, true, 0, 9, 0, 0, 0},
    {"prefix:100", false, true, 0, 100, 0, 0, 0},
    {"prefix:3,sliding:4", false, true, 4, 3, 0, 0, 0},
    {"prefix:20,sliding:17", false, true, 17, 20, 0, 0, 0},
    {"", true, false, 0, 0, 0, 0, 0},
    {"causal", true, true, 0, 0, 0, 0, 0},
    {"sliding:6", true, true, 6, 0, 0, 0, 0},
    {"prefix:5", true, true, 0, 5, 0, 0, 0},
    {"random:0.5", false, false, 0, 0, 0.5, 128, 128},
    {"random:0.3:16", false, false, 0, 0, 0.3, 16, 16},
    {"random:0.6:24x40", false, false, 0, 0, 0.6, 24, 40},
    {"random:0.5:32,causal", false, true, 0, 0, 0.5, 32, 32},
    {"random:1:8", false, false, 0, 0, 1, 8, 8},
    {"random:0.7:16,causal", true, true, 0, 0, 0.7, 16, 16},
};

static const int64_t DOC_LENS[] = {1, 5, 2, 17, 3, 40, 8, 1, 1, 70, 4, 33};

static int make_docs(int64_t S, int32_t *docid, char *spec, size_t cap, const char *base) {
  size_t len = (size_t)snprintf(spec, cap, "%s%sdocument:", base, *base ? "," : "");
  int64_t t = 0;
  for (int d = 0; t < S; d++) {
    int64_t n = DOC_LENS[d % 12];
    if (n > S - t)
      n = S - t;
    len += (size_t)snprintf(spec + len, cap - len, "%s%lld", d ? "+" : "", (long long)n);
    for (int64_t i = 0; i < n; i++)
      docid[t++] = d;
  }
  return len < cap ? 0 : 1;
}

/* The mask semantics restated independently of mask.c's data structures. */
static bool oracle(const mask_case *c, const int32_t *docid, uint64_t seed, int b, int h, int64_t q,
                   int64_t k) {
  if (c->density > 0) {
    uint64_t x = kn_mix64(kn_mix64(kn_mix64(kn_mix64(kn_mix64(seed) ^ (uint64_t)b) ^ (uint64_t)h) ^
                                   (uint64_t)(q / c->rbm)) ^
                          (uint64_t)(k / c->rbn));
    if ((double)(x >> 11) / 9007199254740992.0 >= c->density)
      return false;
  }
  if (c->doc && docid[q] != docid[k])
    return false;
  bool diag = (!c->causal || k <= q) && (c->window == 0 || q - k < c->window);
  return k < c->prefix || diag;
}

/* 2-D prefix sums of visibility for (b, h): ps[q * (SKV + 1) + k] counts the visible elements
 * in [0, q) x [0, k). Also checks kn_mask_visible against the oracle. Caller frees. */
static int32_t *visible_sums(const kn_mask *m, const mask_case *c, const int32_t *docid,
                             uint64_t seed, int b, int h, int64_t S, int64_t SKV) {
  int64_t W = SKV + 1;
  int32_t *ps = calloc((size_t)((S + 1) * W), sizeof *ps);
  int bad_oracle = 0;
  for (int64_t q = 0; q < S; q++)
    for (int64_t k = 0; k < SKV; k++) {
      bool v = kn_mask_visible(m, b, h, q, k);
      bad_oracle += v != oracle(c, docid, seed, b, h, q, k);
      ps[(q + 1) * W + k + 1] = ps[q * W + k + 1] + ps[(q + 1) * W + k] - ps[q * W + k] + v;
    }
  CHECK_INT(0, bad_oracle);
  return ps;
}

/* Checks the CSR structure of lay: both row pointer arrays start at 0, never decrease and end
 * at the totals, which the index arrays hold (at least one element, 0, when empty). */
static void check_layout_csr(const kn_layout *lay) {
  int64_t rows = (int64_t)lay->L * lay->n_qblocks;
  int nbad = 0;
  for (int pass = 0; pass < 2; pass++) {
    const int32_t *ptr = pass ? lay->part_ptr : lay->full_ptr;
    int64_t total = pass ? lay->n_part : lay->n_full;
    CHECK_INT(0, ptr[0]);
    CHECK_INT(total, ptr[rows]);
    for (int64_t r = 0; r < rows; r++)
      nbad += ptr[r + 1] < ptr[r];
    if (total == 0)
      CHECK_INT(0, (pass ? lay->part_idx : lay->full_idx)[0]);
  }
  CHECK_INT(0, nbad);
}

/* Checks every claim of lay for (b, h) against the visibility sums ps: the FULL and PARTIAL
 * lists are ascending, disjoint and in range, and every block's class is exact. */
static void check_layout(const kn_layout *lay, const kn_mask *m, const int32_t *ps, int b, int h,
                         const char *what) {
  int64_t S = lay->S, SKV = lay->SKV, W = SKV + 1;
  int64_t l = (int64_t)(b * lay->H + h) % lay->L;
  int nbad = 0;
  int8_t *cls = malloc((size_t)lay->n_kvblocks + 1);
  for (int64_t qb = 0; qb < lay->n_qblocks; qb++) {
    int64_t r = l * lay->n_qblocks + qb;
    int64_t q0 = qb * lay->block_m, q1 = q0 + lay->block_m < S ? q0 + lay->block_m : S;
    memset(cls, 0, (size_t)lay->n_kvblocks);
    for (int pass = 0; pass < 2; pass++) {
      const int32_t *ptr = pass ? lay->part_ptr : lay->full_ptr;
      int64_t n = (int64_t)ptr[r + 1] - ptr[r];
      if (ptr[r] < 0 || ptr[r + 1] > (pass ? lay->n_part : lay->n_full) || n < 0 ||
          n > lay->n_kvblocks) {
        nbad++;
        continue;
      }
      const int32_t *idx = (pass ? lay->part_idx : lay->full_idx) + ptr[r];
      for (int64_t j = 0; j < n; j++) {
        bool ok = idx[j] >= 0 && idx[j] < lay->n_kvblocks && (j == 0 || idx[j] > idx[j - 1]);
        nbad += !ok || cls[idx[j]] != 0;
        if (ok)
          cls[idx[j]] = (int8_t)(pass ? KN_BLOCK_PARTIAL : KN_BLOCK_FULL);
      }
    }
    for (int64_t kb = 0; kb < lay->n_kvblocks; kb++) {
      int64_t k0 = kb * lay->block_n, k1 = k0 + lay->block_n < SKV ? k0 + lay->block_n : SKV;
      int64_t cnt = ps[q1 * W + k1] - ps[q0 * W + k1] - ps[q1 * W + k0] + ps[q0 * W + k0];
      int want = cnt == 0                       ? KN_BLOCK_EMPTY
                 : cnt == (q1 - q0) * (k1 - k0) ? KN_BLOCK_FULL
                                                : KN_BLOCK_PARTIAL;
      if (cls[kb] != want || (int)kn_mask_classify(m, b, h, q0, q1 - 1, k0, k1 - 1) != want) {
        if (nbad < 3)
          fprintf(stderr, "  %s b%d h%d: block (%lld,%lld) claimed %d, really %d (%lld visible)\n",
                  what, b, h, (long long)qb, (long long)kb, cls[kb], want, (long long)cnt);
        nbad++;
      }
    }
  }
  CHECK_INT(0, nbad);
  free(cls);
}

static void test_layout_exact(void) {
  static const int64_t Ss[] = {1, 7, 33, 257};
  static const int32_t blocks[][2] = {{16, 16}, {32, 32}, {64, 64}, {16, 64},
                                      {64, 32}, {1, 1},   {3, 5},   {7, 2}};
  enum { B = 2, H = 3 };
  char spec[4096], err[256], what[4200];
  int32_t *docid = malloc(600 * sizeof *docid);
  int nlayouts = 0;
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    const mask_case *c = &cases[ci];
    for (size_t si = 0; si < 4; si++) {
      int64_t S = Ss[si];
      int64_t skvs[5] = {S, S + 1, S / 2 + 1, 2 * S + 3, S > 1 ? S - 1 : 1};
      for (int vi = 0; vi < (c->doc ? 1 : 5); vi++) {
        int64_t SKV = skvs[vi];
        uint64_t seed = 1000 + ci;
        if (c->doc)
          CHECK_INT(0, make_docs(S, docid, spec, sizeof spec, c->spec));
        else
          snprintf(spec, sizeof spec, "%s", c->spec);
        kn_mask m;
        int rc = kn_mask_parse(spec, S, SKV, seed, &m, err, sizeof err);
        CHECK_INT(0, rc);
        if (rc) {
          fprintf(stderr, "  %s: %s\n", spec, err);
          continue;
        }
        /* rows to check: all (b, h) for random masks, else the first and the last */
        int rows[B * H][2], nrows = 0;
        for (int bh = 0; bh < B * H; bh++)
          if (c->density > 0 || bh == 0 || bh == B * H - 1) {
            rows[nrows][0] = bh / H;
            rows[nrows++][1] = bh % H;
          }
        int32_t *ps[B * H];
        for (int i = 0; i < nrows; i++)
          ps[i] = visible_sums(&m, c, docid, seed, rows[i][0], rows[i][1], S, SKV);
        for (size_t bi = 0; bi < sizeof blocks / sizeof blocks[0]; bi++) {
          kn_layout lay;
          rc = kn_layout_build(&m, B, H, S, SKV, blocks[bi][0], blocks[bi][1], &lay, err,
                               sizeof err);
          CHECK_INT(0, rc);
          if (rc)
            continue;
          CHECK_INT(c->density > 0 ? B * H : 1, lay.L);
          snprintf(what, sizeof what, "'%s' S=%lld SKV=%lld %dx%d", spec, (long long)S,
                   (long long)SKV, (int)blocks[bi][0], (int)blocks[bi][1]);
          check_layout_csr(&lay);
          for (int i = 0; i < nrows; i++)
            check_layout(&lay, &m, ps[i], rows[i][0], rows[i][1], what);
          nlayouts++;
          kn_layout_free(&lay);
        }
        for (int i = 0; i < nrows; i++)
          free(ps[i]);
        kn_mask_free(&m);
      }
    }
  }
  printf("layout exactness: %d layouts checked element by element\n", nlayouts);

  /* random patterns at their own granularity give no PARTIAL blocks; density is about right */
  kn_mask m;
  kn_layout lay;
  CHECK_INT(0, kn_mask_parse("random:0.25:64", 4096, 4096, 3, &m, err, sizeof err));
  CHECK_INT(0, kn_layout_build(&m, 2, 4, 4096, 4096, 64, 64, &lay, err, sizeof err));
  double frac = (double)lay.n_full / (8.0 * 64 * 64);
  printf("random:0.25:64 at 64x64: %lld full, %lld partial blocks (%.4f of all)\n",
         (long long)lay.n_full, (long long)lay.n_part, frac);
  CHECK_INT(0, lay.n_part);
  CHECK(fabs(frac - 0.25) < 0.02);
  kn_layout_free(&lay);

  kn_mask none = {0};
  CHECK(kn_layout_build(&none, 1, 1, 100, 100, 0, 16, &lay, err, sizeof err) != 0);
  CHECK(kn_layout_build(&none, 1, 1, (int64_t)1 << 40, 1 << 20, 16, 16, &lay, err, sizeof err));
  CHECK(strstr(err, "2^31") != NULL);
  /* the CSR layout is bounded by its entries, not rows x key blocks (2^20 x 2^20 here) */
  kn_mask band = {.causal = true, .window = 16};
  CHECK_INT(0, kn_layout_build(&band, 1, 1, 1 << 24, 1 << 24, 16, 16, &lay, err, sizeof err));
  CHECK_INT(0, lay.n_full);
  CHECK_INT(2 * (1 << 20) - 1, lay.n_part);
  kn_layout_free(&lay);
  free(docid);
}

static void test_layout_causal_128k(void) {
  enum { S = 131072, BLK = 128, NB = S / BLK };
  kn_mask m = {.causal = true};
  kn_layout lay;
  char err[256];
  double best = 1e9;
  for (int rep = 0; rep < 5; rep++) {
    double t0 = now_ms();
    int rc = kn_layout_build(&m, 1, 1, S, S, BLK, BLK, &lay, err, sizeof err);
    double t = now_ms() - t0;
    CHECK_INT(0, rc);
    best = t < best ? t : best;
    printf("causal layout S=131072 block 128: build %.3f ms\n", t);
    if (rep < 4)
      kn_layout_free(&lay);
  }
  CHECK(best < 50);
  int nbad = 0;
  for (int qb = 0; qb <= NB; qb++)
    nbad += lay.full_ptr[qb] != qb * (qb - 1) / 2 || lay.part_ptr[qb] != qb;
  for (int qb = 0; qb < NB; qb++) {
    nbad += lay.part_idx[qb] != qb;
    for (int j = 0; j < qb; j++)
      nbad += lay.full_idx[lay.full_ptr[qb] + j] != j;
  }
  CHECK_INT(0, nbad);
  CHECK_INT((int64_t)NB * (NB - 1) / 2, lay.n_full);
  CHECK_INT(NB, lay.n_part);
  kn_layout_free(&lay);

  const char *more[] = {"sliding:4096", "causal,document:65536+32768+32768", "prefix:1000"};
  for (int i = 0; i < 3; i++) {
    CHECK_INT(0, kn_mask_parse(more[i], S, S, 0, &m, err, sizeof err));
    double t0 = now_ms();
    CHECK_INT(0, kn_layout_build(&m, 1, 1, S, S, BLK, BLK, &lay, err, sizeof err));
    printf("%s layout S=131072 block 128: build %.3f ms (%lld full, %lld partial)\n", more[i],
           now_ms() - t0, (long long)lay.n_full, (long long)lay.n_part);
    kn_layout_free(&lay);
    kn_mask_free(&m);
  }
}

/* ---- BSR ---------------------------------------------------------------------------------------
 */

static void test_bsr(void) {
  char err[256];
  kn_bsr a, b;
  CHECK_INT(0, kn_bsr_random(100, 70, 16, 0.4, 5, &a, err, sizeof err));
  CHECK_INT(7, a.nbrows);
  CHECK_INT(5, a.nbcols);
  CHECK_INT(14, a.nnzb);
  CHECK_INT(0, a.row_ptr[0]);
  CHECK_INT(a.nnzb, a.row_ptr[a.nbrows]);
  int nbad = 0;
  for (int r = 0; r < a.nbrows; r++)
    for (int j = a.row_ptr[r]; j < a.row_ptr[r + 1]; j++)
      nbad += a.col_idx[j] < 0 || a.col_idx[j] >= a.nbcols ||
              (j > a.row_ptr[r] && a.col_idx[j] <= a.col_idx[j - 1]);
  CHECK_INT(0, nbad);
  /* tiles are zero past the N and K edges (row 6 covers n 96..111, col 4 covers k 64..79) */
  for (int r = 0; r < a.nbrows; r++)
    for (int j = a.row_ptr[r]; j < a.row_ptr[r + 1]; j++)
      for (int i = 0; i < 16; i++)
        for (int c = 0; c < 16; c++)
          if (r * 16 + i >= 100 || a.col_idx[j] * 16 + c >= 70)
            nbad += a.values[(size_t)j * 256 + (size_t)(i * 16 + c)] != 0;
  CHECK_INT(0, nbad);

  double *W = malloc(100 * 70 * sizeof *W), *W2 = malloc(100 * 70 * sizeof *W2);
  kn_bsr_to_dense(&a, W);
  CHECK_INT(0, kn_bsr_from_dense(100, 70, 16, W, &b, err, sizeof err));
  CHECK_INT(a.nnzb, b.nnzb);
  CHECK(memcmp(a.row_ptr, b.row_ptr, (size_t)(a.nbrows + 1) * sizeof(int32_t)) == 0);
  CHECK(memcmp(a.col_idx, b.col_idx, (size_t)a.nnzb * sizeof(int32_t)) == 0);
  CHECK(memcmp(a.values, b.values, (size_t)a.nnzb * 256 * sizeof(double)) == 0);
  kn_bsr_to_dense(&b, W2);
  CHECK(memcmp(W, W2, 100 * 70 * sizeof *W) == 0);

  /* the bsmatmul reference on the dense expansion against a tile-by-tile product */
  kn_rng r;
  kn_rng_seed(&r, 9);
  double *X = alloc_normal(3 * 70, &r), Y[3 * 100], Y2[3 * 100] = {0};
  kn_ref_bsmatmul(3, 100, 70, X, W, Y);
  for (int m = 0; m < 3; m++)
    for (int rb = 0; rb < a.nbrows; rb++)
      for (int j = a.row_ptr[rb]; j < a.row_ptr[rb + 1]; j++)
        for (int i = 0; i < 16 && rb * 16 + i < 100; i++)
          for (int c = 0; c < 16 && a.col_idx[j] * 16 + c < 70; c++)
            Y2[m * 100 + rb * 16 + i] += X[m * 70 + a.col_idx[j] * 16 + c] *
                                         a.values[(size_t)j * 256 + (size_t)(i * 16 + c)];
  kn_cmp_result cr;
  kn_compare(Y, Y2, 300, 1e-12, &cr);
  CHECK(cr.pass);
  free(X);
  kn_bsr_free(&a);
  kn_bsr_free(&b);

  /* exact density, seeds differ, empty and full extremes */
  CHECK_INT(0, kn_bsr_random(1024, 1024, 32, 0.25, 1, &a, err, sizeof err));
  CHECK_INT(256, a.nnzb);
  CHECK_INT(0, kn_bsr_random(1024, 1024, 32, 0.25, 2, &b, err, sizeof err));
  CHECK(memcmp(a.col_idx, b.col_idx, 256 * sizeof(int32_t)) != 0);
  int empty_rows = 0;
  for (int i = 0; i < a.nbrows; i++)
    empty_rows += a.row_ptr[i + 1] == a.row_ptr[i];
  printf("bsr 1024x1024/32 at 0.25: %d tiles, %d empty block rows\n", a.nnzb, empty_rows);
  kn_bsr_free(&a);
  kn_bsr_free(&b);
  CHECK_INT(0, kn_bsr_random(50, 50, 16, 0, 1, &a, err, sizeof err));
  CHECK_INT(0, a.nnzb);
  kn_bsr_to_dense(&a, W);
  CHECK(W[0] == 0 && W[50 * 50 - 1] == 0);
  kn_bsr_free(&a);
  CHECK_INT(0, kn_bsr_random(50, 50, 16, 1, 1, &a, err, sizeof err));
  CHECK_INT(16, a.nnzb);
  kn_bsr_free(&a);
  CHECK(kn_bsr_random(50, 50, 16, 1.5, 1, &a, err, sizeof err) != 0);
  CHECK(kn_bsr_random(50, 50, 0, 0.5, 1, &a, err, sizeof err) != 0);
  kn_bsr_free(&a);
  free(W);
  free(W2);
}

/* ---- npy ------------------------------------------------------------------------------------- */

/* Reads path and checks the .npy v1.0 framing, the header text and the data bytes. */
static void check_npy_file(const char *path, const char *dict, const void *data, size_t nbytes) {
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  if (!f)
    return;
  unsigned char buf[4096];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  CHECK(n >= 10 && memcmp(buf, "\x93NUMPY\x01\x00", 8) == 0);
  size_t hl = buf[8] | (size_t)buf[9] << 8;
  CHECK_INT(0, (10 + hl) % 64);
  CHECK_INT(10 + hl + nbytes, n);
  size_t dl = strlen(dict);
  CHECK(hl > dl && memcmp(buf + 10, dict, dl) == 0 && buf[10 + hl - 1] == '\n');
  for (size_t i = 10 + dl; i + 1 < 10 + hl; i++)
    CHECK(buf[i] == ' ');
  CHECK(n == 10 + hl + nbytes && memcmp(buf + 10 + hl, data, nbytes) == 0);
}

static void test_npy(void) {
  char a[64], b[64], c[64], err[256], cmd[1024];
  snprintf(a, sizeof a, "/tmp/tilec_ref_mask_%d_a.npy", (int)getpid());
  snprintf(b, sizeof b, "/tmp/tilec_ref_mask_%d_b.npy", (int)getpid());
  snprintf(c, sizeof c, "/tmp/tilec_ref_mask_%d_c.npy", (int)getpid());
  const float f[6] = {1.5f, -2, 0.25f, 3, 1e-3f, -7};
  const int32_t iv[4] = {0, -1, 7, 2147483647};
  const double d[8] = {1, 2, 3, 4.5, -5, 6, 7, 8};
  const int64_t s23[2] = {2, 3}, s4[1] = {4}, s222[3] = {2, 2, 2};
  CHECK_INT(0, kn_npy_write_f32(a, f, 2, s23, err, sizeof err));
  CHECK_INT(0, kn_npy_write_i32(b, iv, 1, s4, err, sizeof err));
  CHECK_INT(0, kn_npy_write(c, d, KN_NPY_F64, 3, s222, err, sizeof err));
  /* the byte checks assume a little-endian host, as every supported one is */
  check_npy_file(a, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof f);
  check_npy_file(b, "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", iv, sizeof iv);
  check_npy_file(c, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2, 2), }", d, sizeof d);
  float fd[8];
  for (int i = 0; i < 8; i++)
    fd[i] = (float)d[i];
  CHECK_INT(0, kn_npy_write_f64_as_f32(c, d, 3, s222, err, sizeof err));
  check_npy_file(c, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }", fd,
                 sizeof fd);

  if (system("python3 -c 'import numpy' >/dev/null 2>&1") == 0) {
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import numpy as np; a = np.load('%s'); b = np.load('%s'); "
             "c = np.load('%s'); "
             "assert a.dtype == np.float32 and a.shape == (2, 3) and a[1, 2] == -7 and "
             "a[0, 2] == 0.25; "
             "assert b.dtype == np.int32 and b.tolist() == [0, -1, 7, 2147483647]; "
             "assert c.shape == (2, 2, 2) and c[1, 0, 0] == -5 and c[0, 1, 1] == 4.5\"",
             a, b, c);
    CHECK_INT(0, system(cmd));
    printf("npy: read back with numpy\n");
  } else {
    printf("npy: python3 with numpy not available, numpy read-back skipped\n");
  }
  remove(a);
  remove(b);
  remove(c);

  err[0] = 0;
  CHECK(kn_npy_write_f32("/nonexistent-dir/x.npy", f, 2, s23, err, sizeof err) != 0);
  CHECK(strstr(err, "No such file") != NULL);
  const int64_t neg[1] = {-1};
  CHECK(kn_npy_write_f32(a, f, 1, neg, err, sizeof err) != 0);
}

/* ---- checker --------------------------------------------------------------------------------- */

/* x rounded to a float with `bits` significant bits (round to nearest even). */
static double round_bits(double x, int bits) {
  int e;
  double m = frexp(x, &e);
  return ldexp(nearbyint(ldexp(m, bits)), e - bits);
}

static void test_checker(void) {
  enum { N = 1000 };
  kn_rng r;
  kn_rng_seed(&r, 4);
  double ref[N], out[N];
  for (int i = 0; i < N; i++)
    ref[i] = kn_rng_normal(&r);
  kn_cmp_result cr;
  CHECK_NEAR(1.5625e-2, kn_tolerance(7), 1e-9);
  CHECK_NEAR(1.953125e-3, kn_tolerance(10), 1e-9);
  CHECK_NEAR(1e-5, kn_tolerance(23), 1e-12);
  const int mbits[3] = {7, 10, 23};
  for (int t = 0; t < 3; t++) {
    double tol = kn_tolerance(mbits[t]);
    for (int i = 0; i < N; i++)
      out[i] = round_bits(ref[i], mbits[t] + 1); /* honest rounding to the dtype passes */
    kn_compare(out, ref, N, tol, &cr);
    CHECK(cr.pass);
    kn_compare(ref, ref, N, tol, &cr);
    CHECK(cr.pass && cr.err == 0);
    for (int i = 0; i < N; i++)
      out[i] = 0;
    kn_compare(out, ref, N, tol, &cr);
    CHECK(!cr.pass && cr.err == 1);
    for (int i = 0; i < N; i++)
      out[i] = -ref[i];
    kn_compare(out, ref, N, tol, &cr);
    CHECK(!cr.pass);
    for (int i = 0; i < N; i++)
      out[i] = 1.05 * ref[i];
    kn_compare(out, ref, N, tol, &cr);
    CHECK(!cr.pass && fabs(cr.err - 0.05) < 1e-9);
    memcpy(out, ref, sizeof out);
    out[123] = NAN;
    kn_compare(out, ref, N, tol, &cr);
    CHECK(!cr.pass && cr.n_nonfinite == 1 && cr.first_nonfinite == 123);
    out[123] = INFINITY;
    kn_compare(out, ref, N, tol, &cr);
    CHECK(!cr.pass);
  }
  /* -inf in both places is equal; -inf in one only is not */
  double lr[3] = {-INFINITY, 1, 2}, lo[3] = {-INFINITY, 1, 2};
  kn_compare(lo, lr, 3, 1e-5, &cr);
  CHECK(cr.pass && cr.n_nonfinite == 0);
  lo[0] = -1e30;
  kn_compare(lo, lr, 3, 1e-5, &cr);
  CHECK(!cr.pass && cr.n_nonfinite == 1);
  lo[0] = INFINITY;
  kn_compare(lo, lr, 3, 1e-5, &cr);
  CHECK(!cr.pass);
  /* the worst element is reported */
  memcpy(out, ref, sizeof out);
  out[77] += 0.5;
  kn_compare(out, ref, N, 1e-5, &cr);
  CHECK(!cr.pass && cr.worst == 77 && fabs(cr.max_abs_err - 0.5) < 1e-12);
}

static void test_rng(void) {
  kn_rng a, b;
  kn_rng_seed(&a, 42);
  kn_rng_seed(&b, 42);
  bool same = true;
  double sum = 0, sq = 0, umin = 1, umax = 0;
  for (int i = 0; i < 1000; i++)
    same = same && kn_rng_u64(&a) == kn_rng_u64(&b);
  for (int i = 0; i < 100000; i++) {
    double u = kn_rng_uniform(&a), z = kn_rng_normal(&b);
    umin = u < umin ? u : umin;
    umax = u > umax ? u : umax;
    sum += z;
    sq += z * z;
  }
  CHECK(same);
  CHECK(umin >= 0 && umax < 1 && umin < 1e-3 && umax > 0.999);
  CHECK(fabs(sum / 1e5) < 0.02 && fabs(sq / 1e5 - 1) < 0.03);
}

int main(void) {
  test_rng();
  test_matmul();
  test_attention();
  test_mask_parse();
  test_layout_exact();
  test_layout_causal_128k();
  test_bsr();
  test_npy();
  test_checker();
  printf("ref_mask: %d checks, %d failed\n", n_checks, n_failed);
  return n_failed ? 1 : 0;
}
