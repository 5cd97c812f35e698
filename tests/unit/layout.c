/* tests/unit/layout.c — distributed layouts: coverage, register lookups, PTX fragment maps.
 *
 * Every layout must cover its tile; ly_find must invert ly_coord; the MMA and operand layouts
 * of a single warp must match the mma.m16n8k16 fragment tables, restated here from the PTX ISA
 * ("Matrix Fragments for mma.m16n8k16 with floating point type"); a slice of an MMA layout
 * holds rows groupID and groupID + 8.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "compiler/layout.h"

static void covers(const ly_layout *l, int64_t a, int64_t b) {
  int64_t shape[2] = {a, b};
  char msg[128], desc[256];
  if (!CHECK(ly_covers(l, shape, msg, sizeof msg))) {
    ly_print(l, desc, sizeof desc);
    fprintf(stderr, "  %s over [%lld, %lld]: %s\n", desc, (long long)a, (long long)b, msg);
  }
  /* the affine form reproduces every coordinate */
  ly_affine af;
  if (CHECK(ly_linear(l, shape, &af))) {
    int threads0 = ly_warps(l) * LY_WARP, bad0 = 0;
    for (int t = 0; t < threads0; t += 3)
      for (int r = 0; r < af.nregs; r++) {
        int64_t c[2];
        ly_coord(l, shape, t, r, c);
        for (int d = 0; d < l->rank; d++) {
          int64_t v = af.reg[r * IR_MAX_RANK + d];
          for (int bit = 0; bit < af.nbits; bit++)
            v += (t >> bit & 1) ? af.bit[bit][d] : 0;
          bad0 += v % shape[d] != c[d];
        }
      }
    CHECK_EQ_INT(0, bad0);
    ly_affine_free(&af);
  }
  /* ly_find inverts ly_coord for every thread */
  int n = ly_nregs(l, shape), threads = ly_warps(l) * LY_WARP, bad = 0;
  for (int t = 0; t < threads; t += 7)
    for (int r = 0; r < n; r++) {
      int64_t c[2], c2[2];
      ly_coord(l, shape, t, r, c);
      int f = ly_find(l, shape, t, c);
      ly_coord(l, shape, t, f, c2);
      bad += f < 0 || c2[0] != c[0] || c2[1] != c[1];
    }
  CHECK(bad == 0);
}

static void blocked_cases(void) {
  int64_t shapes[][2] = {{1, 1}, {16, 16}, {64, 64}, {128, 32}, {7, 33}, {1, 128}, {256, 64}};
  int bits[] = {16, 32, 8};
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
    for (int w = 1; w <= 8; w *= 2)
      for (size_t b = 0; b < 3; b++) {
        ly_layout l = ly_blocked(2, shapes[s], bits[b], w);
        int lanes = 1, warps = 1;
        for (int d = 0; d < 2; d++) {
          lanes *= l.tpw[d];
          warps *= l.wpc[d];
        }
        CHECK_EQ_INT(32, lanes);
        CHECK_EQ_INT(w, warps);
        covers(&l, shapes[s][0], shapes[s][1]);
      }
  /* a 16-bit 64x64 tile over 4 warps: 8-element (16-byte) vectors along the fast dim */
  int64_t sh[2] = {64, 64};
  ly_layout l = ly_blocked(2, sh, 16, 4);
  CHECK_EQ_INT(8, l.spt[1]);
  CHECK_EQ_INT(1, l.order[0]);
  int64_t c[2];
  ly_coord(&l, sh, 1, 0, c); /* lane 1 starts 8 elements to the right of lane 0 */
  CHECK(c[0] == 0 && c[1] == 8);
  /* 1-D layouts */
  int64_t one[1] = {100};
  ly_layout l1 = ly_blocked(1, one, 32, 4);
  char msg[128];
  CHECK(ly_covers(&l1, one, msg, sizeof msg));
}

/* The fragment tables of mma.m16n8k16 (.f16/.bf16 inputs, .f32 accumulator), per the PTX ISA:
 * groupID = lane >> 2, threadID_in_group = lane % 4. */
static void ptx_fragments(void) {
  int64_t cs[2] = {16, 8}, as[2] = {16, 16}, bs[2] = {16, 8};
  ly_layout m = ly_mma(1, cs), a = ly_dotop(&m, 0, 2), b = ly_dotop(&m, 1, 2);
  CHECK_EQ_INT(4, ly_nregs(&m, cs));
  CHECK_EQ_INT(8, ly_nregs(&a, as));
  CHECK_EQ_INT(4, ly_nregs(&b, bs));
  int bad = 0;
  for (int lane = 0; lane < 32; lane++) {
    int g = lane >> 2, t = lane % 4;
    for (int i = 0; i < 4; i++) { /* c0..c3 */
      int64_t c[2];
      ly_coord(&m, cs, lane, i, c);
      bad += c[0] != (i < 2 ? g : g + 8) || c[1] != t * 2 + (i & 1);
    }
    for (int i = 0; i < 8; i++) { /* a0..a7 */
      int64_t c[2];
      ly_coord(&a, as, lane, i, c);
      int row = (i == 0 || i == 1 || i == 4 || i == 5) ? g : g + 8;
      int col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
      bad += c[0] != row || c[1] != col;
    }
    for (int i = 0; i < 4; i++) { /* b0..b3 */
      int64_t c[2];
      ly_coord(&b, bs, lane, i, c);
      bad += c[0] != t * 2 + (i & 1) + (i >= 2 ? 8 : 0) || c[1] != g;
    }
  }
  CHECK_EQ_INT(0, bad);
}

/* The fragment tables of mma.m16n8k32 with .e4m3/.e5m2 inputs (PTX ISA, "Matrix Fragments for
 * mma.m16n8k32"): A 16x32, a0..a15, row groupID for a0..a3 and a8..a11 (+8 otherwise), column
 * threadID_in_group * 4 + (i % 4), +16 for a8..a15; B 32x8, b0..b7, row threadID_in_group * 4 +
 * (i % 4), +16 for b4..b7, column groupID. */
static void ptx_fragments_f8(void) {
  int64_t cs[2] = {16, 8}, as[2] = {16, 32}, bs[2] = {32, 8};
  ly_layout m = ly_mma(1, cs), a = ly_dotop(&m, 0, 4), b = ly_dotop(&m, 1, 4);
  CHECK_EQ_INT(16, ly_nregs(&a, as));
  CHECK_EQ_INT(8, ly_nregs(&b, bs));
  int bad = 0;
  for (int lane = 0; lane < 32; lane++) {
    int g = lane >> 2, t = lane % 4;
    for (int i = 0; i < 16; i++) {
      int64_t c[2];
      ly_coord(&a, as, lane, i, c);
      int row = (i < 4 || (i >= 8 && i < 12)) ? g : g + 8;
      bad += c[0] != row || c[1] != t * 4 + (i % 4) + (i >= 8 ? 16 : 0);
    }
    for (int i = 0; i < 8; i++) {
      int64_t c[2];
      ly_coord(&b, bs, lane, i, c);
      bad += c[0] != t * 4 + (i % 4) + (i >= 4 ? 16 : 0) || c[1] != g;
    }
  }
  CHECK_EQ_INT(0, bad);
  char buf[160];
  ly_print(&a, buf, sizeof buf);
  CHECK_CONTAINS(buf, "kw=4");
  ly_layout a2 = ly_dotop(&m, 0, 2);
  CHECK(!ly_equal(&a, &a2));
}

static void mma_cases(void) {
  int64_t shapes[][2] = {{16, 8}, {64, 64}, {128, 128}, {16, 64}, {128, 16}, {32, 256}};
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
    for (int w = 1; w <= 8; w *= 2) {
      ly_layout m = ly_mma(w, shapes[s]);
      CHECK_EQ_INT(w, ly_warps(&m));
      covers(&m, shapes[s][0], shapes[s][1]);
      ly_layout a = ly_dotop(&m, 0, 2), b = ly_dotop(&m, 1, 2);
      covers(&a, shapes[s][0], 32);
      covers(&b, 32, shapes[s][1]);
      ly_layout a8 = ly_dotop(&m, 0, 4), b8 = ly_dotop(&m, 1, 4);
      covers(&a8, shapes[s][0], 64);
      covers(&b8, 64, shapes[s][1]);
      covers(&a8, shapes[s][0], 32);
    }
}

static void slice_cases(void) {
  int64_t s2[2] = {64, 64}, s1[1] = {64};
  ly_layout m = ly_mma(4, s2), rows = ly_slice(&m, 1);
  /* each thread of warp w holds rows 16w + g and 16w + g + 8 */
  CHECK_EQ_INT(2, ly_nregs(&rows, s1));
  for (int tid = 0; tid < 128; tid += 5) {
    int64_t c0, c1;
    ly_coord(&rows, s1, tid, 0, &c0);
    ly_coord(&rows, s1, tid, 1, &c1);
    int g = (tid % 32) >> 2, w = tid / 32;
    CHECK(c0 == 16 * w + g && c1 == 16 * w + g + 8);
  }
  char msg[128];
  CHECK(ly_covers(&rows, s1, msg, sizeof msg));
  ly_layout bl = ly_blocked(2, s2, 32, 4), cols = ly_slice(&bl, 0);
  CHECK(ly_covers(&cols, s1, msg, sizeof msg));
}

/* 6 warps split 3 x 2: warp 3 is (0, 1), not the sum of warps 1 and 2's (1, 0) + (2, 0), so no
 * affine form exists and ly_linear must say so (it checks every thread on a few registers). */
static void nonaffine_case(void) {
  int64_t shape[2] = {96, 64};
  ly_layout l = ly_blocked(2, shape, 16, 2);
  l.wpc[l.order[0]] = 3, l.wpc[l.order[1]] = 2;
  ly_affine af;
  CHECK(!ly_linear(&l, shape, &af));
  l.wpc[l.order[0]] = 2, l.wpc[l.order[1]] = 2; /* 4 warps: affine again */
  if (CHECK(ly_linear(&l, shape, &af)))
    ly_affine_free(&af);
}

int main(void) {
  blocked_cases();
  nonaffine_case();
  ptx_fragments();
  ptx_fragments_f8();
  mma_cases();
  slice_cases();
  return TEST_MAIN_END();
}
