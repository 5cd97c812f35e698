/* fp.c - exact rounding and encodings of the narrow float formats (ir/fp.c).
 *
 * Exhaustive decode/encode round trips of every bf16, f16 and f8 pattern; ties to even at
 * every midpoint between neighbouring values; subnormals, overflow, saturation and NaN; and
 * millions of random values against independent references: the classic bf16 bit trick,
 * gcc's _Float16 conversions, and a nearest-value search over the 256 f8 values.
 */
#include "ir/ir.h"
#include "tests/unit/check.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

/* A random double with a random sign, 52 random mantissa bits and an exponent in [lo, hi]. */
static double rand_double(int lo, int hi) {
  double m = 1.0 + (double)(rng() >> 12) * 0x1p-52;
  int e = lo + (int)(rng() % (uint64_t)(hi - lo + 1));
  return (rng() & 1 ? -1 : 1) * ldexp(m, e);
}

static int same(double a, double b) {
  return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b));
}

static uint16_t bf16_ref(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

static void test_bf16_exhaustive(void) {
  int bad = 0;
  for (uint32_t b = 0; b < 65536; b++) {
    float v = ir_bf16_bits_to_f32((uint16_t)b);
    uint32_t u;
    memcpy(&u, &v, 4);
    bad += u != b << 16;
    if (isnan(v)) {
      bad += !isnan(ir_round_to(IR_BF16, v));
      bad += (ir_f32_to_bf16_bits(v) & 0x7fc0) != 0x7fc0;
      continue;
    }
    bad += ir_f32_to_bf16_bits(v) != b;
    bad += !same(ir_round_to(IR_BF16, v), v);
    uint16_t w;
    ir_buf_set(IR_BF16, &w, 0, v);
    bad += w != b || !same(ir_buf_get(IR_BF16, &w, 0), v);
  }
  CHECK_EQ_INT(0, bad);
}

static void test_f16_exhaustive(void) {
  int bad = 0, nans = 0;
  for (uint32_t b = 0; b < 65536; b++) {
    double v = ir_f16_bits_to_f64((uint16_t)b);
#if defined(__FLT16_MAX__)
    __extension__ _Float16 h;
    uint16_t hb = (uint16_t)b;
    memcpy(&h, &hb, 2);
    bad += !same((double)h, v);
#endif
    if (isnan(v)) {
      nans++;
      continue;
    }
    bad += ir_f64_to_f16_bits(v) != b;
    bad += !same(ir_round_to(IR_F16, v), v);
  }
  CHECK_EQ_INT(0, bad);
  CHECK_EQ_INT(2 * 1023, nans);
  CHECK_EQ_INT(65504, ir_f16_bits_to_f64(0x7bff));
  CHECK(ir_f16_bits_to_f64(0x0001) == 0x1p-24);
  CHECK(ir_f16_bits_to_f64(0x0400) == 0x1p-14);
  CHECK(isinf(ir_f16_bits_to_f64(0x7c00)));
}

static void test_f8_exhaustive(void) {
  for (int ki = 0; ki < 2; ki++) {
    ir_kind k = ki ? IR_F8E5M2 : IR_F8E4M3;
    int bad = 0, nans = 0;
    for (int b = 0; b < 256; b++) {
      double v = ir_f8_bits_to_f64(k, (uint8_t)b);
      /* independent decode */
      int mb = ki ? 2 : 3, eb = ki ? 5 : 4, bias = ki ? 15 : 7;
      int field = (b >> mb) & ((1 << eb) - 1), mant = b & ((1 << mb) - 1);
      double ref = field ? ldexp(1.0 + mant / (double)(1 << mb), field - bias)
                         : ldexp(mant / (double)(1 << mb), 1 - bias);
      if (ki == 0 && field == 15 && mant == 7)
        ref = NAN;
      if (ki == 1 && field == 31)
        ref = mant ? NAN : INFINITY;
      if (b & 0x80)
        ref = -ref;
      bad += !same(v, ref);
      if (isnan(v)) {
        nans++;
        bad += !isnan(ir_round_to(k, v));
        continue;
      }
      if (isinf(v)) /* e5m2 infinities saturate (cvt.rn.satfinite) */
        bad += ir_f64_to_f8_bits(k, v) != (b & 0x80 ? 0xfb : 0x7b);
      else
        bad += ir_f64_to_f8_bits(k, v) != b || !same(ir_round_to(k, v), v);
      uint8_t w;
      ir_buf_set(k, &w, 0, v);
      bad += !isinf(v) && w != b;
    }
    CHECK_EQ_INT(0, bad);
    CHECK_EQ_INT(ki ? 6 : 2, nans);
  }
  CHECK(ir_f8_bits_to_f64(IR_F8E4M3, 0x7e) == 448);
  CHECK(ir_f8_bits_to_f64(IR_F8E4M3, 0x01) == 0x1p-9);
  CHECK(ir_f8_bits_to_f64(IR_F8E4M3, 0x08) == 0x1p-6);
  CHECK(ir_f8_bits_to_f64(IR_F8E5M2, 0x7b) == 57344);
  CHECK(ir_f8_bits_to_f64(IR_F8E5M2, 0x01) == 0x1p-16);
  CHECK(isinf(ir_f8_bits_to_f64(IR_F8E5M2, 0x7c)));
}

/* For every pair of neighbouring finite values lo < hi of a format: the midpoint rounds to the
 * one with the even pattern, and anything strictly closer to one side rounds to it. */
static int check_midpoints(ir_kind k, int nbits, double (*decode)(ir_kind, uint32_t)) {
  int bad = 0;
  uint32_t top = 1u << (nbits - 1);
  for (uint32_t b = 0; b + 1 < top; b++) {
    double lo = decode(k, b), hi = decode(k, b + 1);
    if (isnan(hi) || isinf(hi) || isnan(lo))
      continue;
    double mid = (lo + hi) / 2;
    double even = (b & 1) ? hi : lo;
    for (int s = 0; s < 2; s++) {
      double sg = s ? -1 : 1;
      bad += !same(ir_round_to(k, sg * mid), sg * even);
      bad += !same(ir_round_to(k, sg * nextafter(mid, 0)), sg * lo);
      bad += !same(ir_round_to(k, sg * nextafter(mid, INFINITY)), sg * hi);
      bad += !same(ir_round_to(k, sg * nextafter(hi, 0)), sg * hi);
    }
  }
  return bad;
}

static double dec_any(ir_kind k, uint32_t b) {
  switch (k) {
  case IR_BF16:
    return ir_bf16_bits_to_f32((uint16_t)b);
  case IR_F16:
    return ir_f16_bits_to_f64((uint16_t)b);
  default:
    return ir_f8_bits_to_f64(k, (uint8_t)b);
  }
}

static void test_ties(void) {
  CHECK_EQ_INT(0, check_midpoints(IR_BF16, 16, dec_any));
  CHECK_EQ_INT(0, check_midpoints(IR_F16, 16, dec_any));
  CHECK_EQ_INT(0, check_midpoints(IR_F8E4M3, 8, dec_any));
  CHECK_EQ_INT(0, check_midpoints(IR_F8E5M2, 8, dec_any));
  /* named cases */
  CHECK(ir_round_to(IR_BF16, 1 + 0x1p-8) == 1.0);
  CHECK(ir_round_to(IR_BF16, 1 + 3 * 0x1p-8) == 1 + 0x1p-6);
  CHECK(ir_round_to(IR_BF16, 1 + 0x1p-8 + 0x1p-40) == 1 + 0x1p-7); /* no double rounding */
  CHECK(ir_round_to(IR_F16, 1 + 0x1p-11) == 1.0);
  CHECK(ir_round_to(IR_F16, 1 + 3 * 0x1p-11) == 1 + 0x1p-9);
  CHECK(ir_round_to(IR_F32, 1 + 0x1p-24) == 1.0);
  CHECK(ir_round_to(IR_F32, 1 + 0x1p-24 + 0x1p-50) == 1 + 0x1p-23);
  CHECK(ir_round_to(IR_F8E4M3, 1.0625) == 1.0);  /* tie between 1 and 1.125 */
  CHECK(ir_round_to(IR_F8E4M3, 1.1875) == 1.25); /* tie between 1.125 and 1.25 */
  CHECK(ir_round_to(IR_F8E5M2, 1.125) == 1.0);
  CHECK(ir_round_to(IR_F8E5M2, 1.375) == 1.5);
}

static void test_subnormals(void) {
  CHECK(ir_round_to(IR_BF16, 0x1p-133) == 0x1p-133);
  CHECK(ir_round_to(IR_BF16, 0x1p-134) == 0); /* tie between 0 and the min subnormal */
  CHECK(ir_round_to(IR_BF16, 0x1.8p-134) == 0x1p-133);
  CHECK(ir_round_to(IR_BF16, 0x1p-134 * 0.99) == 0);   /* below the tie: zero */
  CHECK(ir_round_to(IR_BF16, 0x1.8p-133) == 0x1p-132); /* 1.5 ulp -> 2 (even) */
  CHECK(ir_round_to(IR_F16, 0x1p-25) == 0);            /* tie with 0: even */
  CHECK(ir_round_to(IR_F16, 0x1.000001p-25) == 0x1p-24);
  CHECK(ir_round_to(IR_F16, 3 * 0x1p-25) == 2 * 0x1p-24);
  CHECK(ir_round_to(IR_F16, 0x1.ff8p-15) == 0x1.ff8p-15); /* the largest subnormal */
  CHECK(ir_round_to(IR_F16, 0x1.ffcp-15) == 0x1p-14);     /* tie: up to the smallest normal */
  CHECK(ir_round_to(IR_F8E4M3, 0x1p-10) == 0);
  CHECK(ir_round_to(IR_F8E4M3, 0x1.8p-10) == 0x1p-9);
  CHECK(ir_round_to(IR_F8E5M2, 0x1p-17) == 0);
  CHECK(ir_round_to(IR_F8E5M2, 0x1.8p-17) == 0x1p-16);
  CHECK(signbit(ir_round_to(IR_BF16, -0x1p-140)) && ir_round_to(IR_BF16, -0x1p-140) == 0);
  CHECK(ir_round_to(IR_F32, 0x1p-149) == 0x1p-149);
  CHECK(ir_round_to(IR_F32, 0x1p-150) == 0);
  CHECK(ir_round_to(IR_F32, 0x1.1p-150) == 0x1p-149);
  CHECK(ir_round_to(IR_BF16, 0x1p-1070) == 0); /* double subnormal input */
  CHECK(ir_f64_to_f16_bits(0x1p-24) == 0x0001);
  CHECK(ir_f64_to_f16_bits(-0x1p-24) == 0x8001);
  CHECK(ir_f64_to_f16_bits(-0.0) == 0x8000);
}

static void test_overflow_nan(void) {
  CHECK(isinf(ir_round_to(IR_F16, 65520))); /* tie above max rounds to even: 2^16 -> inf */
  CHECK(ir_round_to(IR_F16, 65519.99) == 65504);
  CHECK(isinf(ir_round_to(IR_F16, -1e6)) && ir_round_to(IR_F16, -1e6) < 0);
  CHECK(ir_f64_to_f16_bits(1e6) == 0x7c00);
  CHECK(ir_f64_to_f16_bits(INFINITY) == 0x7c00);
  CHECK(isinf(ir_round_to(IR_BF16, 0x1.ffp127)));
  CHECK(ir_round_to(IR_BF16, 0x1.fefffp127) == 0x1.fep127);
  CHECK(isinf(ir_round_to(IR_F32, 1e39)));
  CHECK(isinf(ir_round_to(IR_BF16, INFINITY)));
  CHECK(ir_round_to(IR_F8E4M3, 1e9) == 448);
  CHECK(ir_round_to(IR_F8E4M3, -500) == -448);
  CHECK(ir_round_to(IR_F8E4M3, INFINITY) == 448);
  CHECK(ir_round_to(IR_F8E4M3, -INFINITY) == -448);
  CHECK(ir_f64_to_f8_bits(IR_F8E4M3, 1e9) == 0x7e);
  CHECK(ir_f64_to_f8_bits(IR_F8E4M3, -INFINITY) == 0xfe);
  CHECK(ir_round_to(IR_F8E5M2, 1e9) == 57344);
  CHECK(ir_round_to(IR_F8E5M2, INFINITY) == 57344);
  CHECK(ir_round_to(IR_F8E5M2, -INFINITY) == -57344);
  CHECK(ir_f64_to_f8_bits(IR_F8E5M2, 1e9) == 0x7b);
  ir_kind fl[] = {IR_F16, IR_BF16, IR_F32, IR_F64, IR_F8E4M3, IR_F8E5M2};
  for (int i = 0; i < 6; i++)
    CHECK(isnan(ir_round_to(fl[i], NAN)));
  CHECK(ir_f64_to_f8_bits(IR_F8E4M3, NAN) == 0x7f);
  CHECK(ir_f64_to_f8_bits(IR_F8E5M2, NAN) == 0x7e);
  CHECK((ir_f64_to_f16_bits(NAN) & 0x7e00) == 0x7e00);
  CHECK((ir_f32_to_bf16_bits(NAN) & 0x7fc0) == 0x7fc0);
}

static void test_integers(void) {
  CHECK(ir_round_to(IR_I32, 2.9) == 2);
  CHECK(ir_round_to(IR_I32, -2.9) == -2);
  CHECK(ir_round_to(IR_I32, NAN) == 0);
  CHECK(ir_round_to(IR_I8, 200) == -56);
  CHECK(ir_round_to(IR_I8, -129) == 127);
  CHECK(ir_round_to(IR_I16, 65537) == 1);
  CHECK(ir_round_to(IR_I32, 0x1p31) == -0x1p31);
  CHECK(ir_round_to(IR_I32, 1e300) == -1); /* saturates to INT64_MAX, then wraps */
  CHECK(ir_round_to(IR_I64, -1e300) == -0x1p63);
  CHECK(ir_round_to(IR_I64, INFINITY) == 0x1p63); /* INT64_MAX as a double */
  CHECK(ir_round_to(IR_I1, 0.25) == 1);
  CHECK(ir_round_to(IR_I1, 0) == 0);
  CHECK(ir_round_to(IR_I1, NAN) == 0);
  unsigned char buf[16];
  ir_buf_set(IR_I1, buf, 0, 3);
  CHECK_EQ_INT(1, buf[0]);
  ir_buf_set(IR_I8, buf, 1, -3.7);
  CHECK(ir_buf_get(IR_I8, buf, 1) == -3);
  ir_buf_set(IR_I16, buf, 1, 40000);
  CHECK(ir_buf_get(IR_I16, buf, 1) == 40000 - 65536);
  ir_buf_set(IR_I32, buf, 1, -123456789);
  CHECK(ir_buf_get(IR_I32, buf, 1) == -123456789);
  ir_buf_set(IR_I64, buf, 1, -0x1p50);
  CHECK(ir_buf_get(IR_I64, buf, 1) == -0x1p50);
  ir_buf_set(IR_F32, buf, 1, 0.1);
  CHECK(ir_buf_get(IR_F32, buf, 1) == (double)0.1f);
  ir_buf_set(IR_F64, buf, 1, 0.1);
  CHECK(ir_buf_get(IR_F64, buf, 1) == 0.1);
  ir_buf_set(IR_F16, buf, 3, 0.1);
  CHECK(ir_buf_get(IR_F16, buf, 3) == ir_round_to(IR_F16, 0.1));
  ir_buf_set(IR_BF16, buf, 3, 0.1);
  CHECK(ir_buf_get(IR_BF16, buf, 3) == ir_round_to(IR_BF16, 0.1));
}

static void test_random_bf16(void) {
  int bad = 0;
  for (int i = 0; i < 4000000; i++) {
    uint32_t u = (uint32_t)rng();
    float x;
    memcpy(&x, &u, 4);
    if (isnan(x))
      continue;
    uint16_t want = bf16_ref(x);
    bad += ir_f32_to_bf16_bits(x) != want;
    bad += !same(ir_round_to(IR_BF16, x), ir_bf16_bits_to_f32(want));
  }
  CHECK_EQ_INT(0, bad);
  /* f64 -> bf16 directly (no double rounding through f32): r is the nearest bf16 value,
   * compared with both neighbours of its pattern; ties go to the even pattern */
  int direct = 0;
  for (int i = 0; i < 1000000; i++) {
    double x = i % 2 ? rand_double(-140, 127) : rand_double(-3, 3);
    if (i % 4 == 1) /* just off a tie: a tie of the f32 rounding, not of the bf16 one */
      x = ir_bf16_bits_to_f32((uint16_t)(rng() & 0x7f7e)) * (1 + 0x1p-8 + 0x1p-30);
    double r = ir_round_to(IR_BF16, x);
    if (isinf(r)) { /* overflow: at or beyond the midpoint between max and 2^128 */
      direct += fabs(x) < 0x1.ffp127;
      continue;
    }
    uint16_t b = ir_f32_to_bf16_bits((float)r);
    double up = ir_bf16_bits_to_f32((uint16_t)(b + 1)),
           down = ir_bf16_bits_to_f32((uint16_t)(b - 1));
    if ((b & 0x7fff) == 0)
      down = -ir_bf16_bits_to_f32((uint16_t)(b + 1));
    double d = fabs(x - r), du = fabs(x - up), dd = fabs(x - down);
    direct += ir_bf16_bits_to_f32(b) != r || d > du || d > dd || ((d == du || d == dd) && (b & 1));
  }
  CHECK_EQ_INT(0, direct);
}

static void test_random_f32(void) {
  int bad = 0;
  for (int i = 0; i < 2000000; i++) {
    double x = i & 1 ? rand_double(-160, 130) : rand_double(-30, 30);
    bad += !same(ir_round_to(IR_F32, x), (double)(float)x);
  }
  CHECK_EQ_INT(0, bad);
}

static void test_random_f16(void) {
#if defined(__FLT16_MAX__)
  int bad = 0;
  for (int i = 0; i < 4000000; i++) {
    double x;
    if (i % 4 == 3) { /* an exact tie between neighbours, or one ulp of a double off it */
      uint16_t b = (uint16_t)(rng() & 0x7bfe);
      x = (ir_f16_bits_to_f64(b) + ir_f16_bits_to_f64((uint16_t)(b + 1))) / 2;
      if (i % 8 == 7)
        x = nextafter(x, rng() & 1 ? 0 : INFINITY);
    } else {
      x = rand_double(-28, 17);
    }
    __extension__ _Float16 h = (_Float16)x;
    uint16_t hb;
    memcpy(&hb, &h, 2);
    bad += ir_f64_to_f16_bits(x) != hb;
    bad += !same(ir_round_to(IR_F16, x), (double)h);
  }
  CHECK_EQ_INT(0, bad);
#endif
}

/* Reference for f8: the nearest of all finite values; ties go to the even pattern; beyond
 * the largest finite value, saturate. */
static double f8_ref(ir_kind k, const double *vals, double x) {
  double a = fabs(x), best = 0;
  int bestb = 0;
  double maxv = k == IR_F8E4M3 ? 448 : 57344;
  if (a >= maxv)
    return copysign(maxv, x);
  for (int b = 0; b < 128; b++) {
    double v = vals[b];
    if (isnan(v) || isinf(v))
      continue;
    double d = fabs(a - v), db = fabs(a - best);
    if (d < db || (d == db && !(b & 1) && (bestb & 1))) {
      best = v;
      bestb = b;
    }
  }
  return copysign(best, x);
}

static void test_random_f8(void) {
  for (int ki = 0; ki < 2; ki++) {
    ir_kind k = ki ? IR_F8E5M2 : IR_F8E4M3;
    double vals[128];
    for (int b = 0; b < 128; b++)
      vals[b] = ir_f8_bits_to_f64(k, (uint8_t)b);
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
      double x = ki ? rand_double(-18, 17) : rand_double(-11, 9);
      if (i % 3 == 0) { /* exact midpoints */
        int b = (int)(rng() % (ki ? 123 : 126));
        x = (vals[b] + vals[b + 1]) / 2 * (rng() & 1 ? -1 : 1);
      }
      bad += !same(ir_round_to(k, x), f8_ref(k, vals, x));
    }
    CHECK_EQ_INT(0, bad);
  }
}

int main(void) {
  test_bf16_exhaustive();
  test_f16_exhaustive();
  test_f8_exhaustive();
  test_ties();
  test_subnormals();
  test_overflow_nan();
  test_integers();
  test_random_bf16();
  test_random_f32();
  test_random_f16();
  test_random_f8();
  TEST_MAIN_END();
}
