/* ir/fp.c — exact conversions between doubles and the narrow storage formats of the tile IR.
 *
 * Every format is described by one row of `fmts` (mantissa bits, smallest normal exponent,
 * largest finite value, infinity, saturation) and one routine, `rnd`, rounds a double to it
 * directly (never through f32, which would round twice): round to nearest, ties to even, for
 * normals and subnormals alike, independent of the FPU's rounding mode. Encoders take values
 * that are already representable, so they only repack bits. The interpreter (ir/interp.c) keeps
 * every float as a double holding an exactly rounded value of its kind and uses these routines
 * after every op and for every buffer access.
 */
#include "ir.h"

#include <math.h>
#include <string.h>

/* One binary floating-point format. */
typedef struct fmt {
  int mbits;    /* stored mantissa bits */
  int ebits;    /* exponent field bits */
  int bias;     /* exponent bias */
  int emin;     /* exponent of the smallest normal value */
  double max;   /* largest finite value */
  bool inf;     /* has infinities (E4M3FN has none) */
  bool sat;     /* overflow and infinities saturate to +-max (cvt.rn.satfinite) */
  uint32_t nan; /* the canonical quiet NaN, sign bit clear */
} fmt;

static const fmt f_bf16 = {7, 8, 127, -126, 0x1.fep127, true, false, 0x7fc0};
static const fmt f_f16 = {10, 5, 15, -14, 65504.0, true, false, 0x7e00};
static const fmt f_f32 = {23, 8, 127, -126, 0x1.fffffep127, true, false, 0x7fc00000};
static const fmt f_e4m3 = {3, 4, 7, -6, 448.0, false, true, 0x7f};
static const fmt f_e5m2 = {2, 5, 15, -14, 57344.0, true, true, 0x7e};

static const fmt *format(ir_kind k) {
  switch (k) {
  case IR_BF16:
    return &f_bf16;
  case IR_F16:
    return &f_f16;
  case IR_F32:
    return &f_f32;
  case IR_F8E4M3:
    return &f_e4m3;
  case IR_F8E5M2:
    return &f_e5m2;
  default:
    return NULL;
  }
}

/* 2^e for exponents in the normal double range. */
static double pow2(int e) {
  uint64_t u = (uint64_t)(e + 1023) << 52;
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

/* Rounds x to format f: nearest, ties to even; overflow to inf or, when saturating, to max. */
static double rnd(const fmt *f, double x) {
  if (isnan(x) || x == 0)
    return x;
  if (isinf(x))
    return f->sat || !f->inf ? copysign(f->max, x) : x;
  double a = fabs(x);
  uint64_t u;
  memcpy(&u, &a, sizeof u);
  int e = (int)(u >> 52) - 1023;
  if (e < -1022) /* a double subnormal: far below half of any format's smallest subnormal */
    return copysign(0.0, x);
  uint64_t m = (u & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52); /* a = m * 2^(e-52) */
  int qe = (e > f->emin ? e : f->emin) - f->mbits; /* exponent of one unit in the last place */
  int sh = qe - (e - 52);                          /* >= 52 - mbits >= 29 */
  if (sh >= 54)                                    /* a < 2^(qe-1): rounds to zero */
    return copysign(0.0, x);
  uint64_t q = m >> sh, rem = m & ((UINT64_C(1) << sh) - 1), half = UINT64_C(1) << (sh - 1);
  if (rem > half || (rem == half && (q & 1)))
    q++;
  double r = (double)q * pow2(qe);
  if (r > f->max)
    r = f->sat || !f->inf ? f->max : INFINITY;
  return copysign(r, x);
}

/* Packs a value already representable in f (or NaN/inf) into its bits. */
static uint32_t enc(const fmt *f, double r) {
  uint32_t sign = signbit(r) ? UINT32_C(1) << (f->ebits + f->mbits) : 0;
  if (isnan(r))
    return sign | f->nan;
  double a = fabs(r);
  if (isinf(a))
    return f->inf ? sign | (((UINT32_C(1) << f->ebits) - 1) << f->mbits) : sign | f->nan;
  if (a == 0)
    return sign;
  uint64_t u;
  memcpy(&u, &a, sizeof u);
  int e = (int)(u >> 52) - 1023;
  if (e < f->emin)
    return sign | (uint32_t)(a * pow2(f->mbits - f->emin)); /* subnormal: exact integer */
  uint32_t mant = (uint32_t)((u >> (52 - f->mbits)) & ((UINT64_C(1) << f->mbits) - 1));
  return sign | ((uint32_t)(e + f->bias) << f->mbits) | mant;
}

/* Unpacks bits of format f. */
static double dec(const fmt *f, uint32_t b) {
  uint32_t field = (b >> f->mbits) & ((UINT32_C(1) << f->ebits) - 1);
  uint32_t mant = b & ((UINT32_C(1) << f->mbits) - 1);
  bool neg = (b >> (f->ebits + f->mbits)) & 1;
  double v;
  if (field == (UINT32_C(1) << f->ebits) - 1 && (f->inf || mant == (UINT32_C(1) << f->mbits) - 1))
    v = f->inf && mant == 0 ? INFINITY : NAN;
  else if (field == 0)
    v = (double)mant * pow2(f->emin - f->mbits);
  else
    v = (double)(mant | (UINT32_C(1) << f->mbits)) * pow2((int)field - f->bias - f->mbits);
  return neg ? -v : v;
}

/* Truncates toward zero and wraps to the width of integer kind k (i1: x != 0). */
static int64_t to_int(ir_kind k, double x) {
  if (isnan(x))
    return 0;
  if (k == IR_I1)
    return x != 0;
  double t = trunc(x);
  int64_t v = t >= 0x1p63 ? INT64_MAX : t < -0x1p63 ? INT64_MIN : (int64_t)t;
  int bits = ir_kind_bits(k);
  if (bits >= 64)
    return v;
  uint64_t mask = (UINT64_C(1) << bits) - 1, w = (uint64_t)v & mask;
  if (w >> (bits - 1))
    w |= ~mask;
  return (int64_t)w; /* two's complement (gcc and clang define the conversion) */
}

/* Rounds x to kind k as the GPU's conversions do (see ir.h); integers come back as doubles. */
double ir_round_to(ir_kind k, double x) {
  switch (k) {
  case IR_F64:
    return x;
  case IR_F32:
    return rnd(&f_f32, x);
  case IR_F16:
  case IR_BF16:
  case IR_F8E4M3:
  case IR_F8E5M2:
    return rnd(format(k), x);
  case IR_I1:
  case IR_I8:
  case IR_I16:
  case IR_I32:
  case IR_I64:
    return (double)to_int(k, x);
  default:
    return x;
  }
}

/* Storage bits of bf16/f16/f8 values, and back: RNE from the wide value, NaN stays NaN. */
uint16_t ir_f32_to_bf16_bits(float x) {
  if (isnan(x)) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (uint16_t)((u >> 16) | 0x40); /* keep sign and payload, make it quiet */
  }
  return (uint16_t)enc(&f_bf16, rnd(&f_bf16, x));
}

float ir_bf16_bits_to_f32(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

uint16_t ir_f64_to_f16_bits(double x) { return (uint16_t)enc(&f_f16, rnd(&f_f16, x)); }

double ir_f16_bits_to_f64(uint16_t b) { return dec(&f_f16, b); }

uint8_t ir_f64_to_f8_bits(ir_kind k, double x) {
  const fmt *f = k == IR_F8E5M2 ? &f_e5m2 : &f_e4m3;
  return (uint8_t)enc(f, rnd(f, x));
}

double ir_f8_bits_to_f64(ir_kind k, uint8_t b) {
  return dec(k == IR_F8E5M2 ? &f_e5m2 : &f_e4m3, b);
}

int64_t ir_buf_get_int(ir_kind k, const void *base, int64_t i) {
  const unsigned char *p = base;
  switch (k) {
  case IR_I1:
    return p[i] != 0;
  case IR_I8:
    return (int8_t)p[i];
  case IR_I16: {
    int16_t v;
    memcpy(&v, p + 2 * i, 2);
    return v;
  }
  case IR_I32: {
    int32_t v;
    memcpy(&v, p + 4 * i, 4);
    return v;
  }
  default: {
    int64_t v;
    memcpy(&v, p + 8 * i, 8);
    return v;
  }
  }
}

/* Element i of a host buffer in the storage form of kind k (docs/ir.md, "Buffers"). Integers
 * beyond 2^53 lose precision as doubles; the interpreter reads them as int64 itself. */
double ir_buf_get(ir_kind k, const void *base, int64_t i) {
  const unsigned char *p = base;
  switch (k) {
  case IR_I1:
  case IR_I8:
  case IR_I16:
  case IR_I32:
  case IR_I64:
    return (double)ir_buf_get_int(k, base, i);
  case IR_F16: {
    uint16_t v;
    memcpy(&v, p + 2 * i, 2);
    return dec(&f_f16, v);
  }
  case IR_BF16: {
    uint16_t v;
    memcpy(&v, p + 2 * i, 2);
    return ir_bf16_bits_to_f32(v);
  }
  case IR_F32: {
    float v;
    memcpy(&v, p + 4 * i, 4);
    return v;
  }
  case IR_F64: {
    double v;
    memcpy(&v, p + 8 * i, 8);
    return v;
  }
  case IR_F8E4M3:
    return dec(&f_e4m3, p[i]);
  case IR_F8E5M2:
    return dec(&f_e5m2, p[i]);
  default:
    return NAN;
  }
}

/* Stores v, rounded (floats) or truncated and wrapped (integers) to kind k, as element i. */
void ir_buf_set(ir_kind k, void *base, int64_t i, double v) {
  unsigned char *p = base;
  switch (k) {
  case IR_I1:
  case IR_I8:
    p[i] = (unsigned char)to_int(k, v);
    break;
  case IR_I16: {
    int16_t w = (int16_t)to_int(k, v);
    memcpy(p + 2 * i, &w, 2);
    break;
  }
  case IR_I32: {
    int32_t w = (int32_t)to_int(k, v);
    memcpy(p + 4 * i, &w, 4);
    break;
  }
  case IR_I64: {
    int64_t w = to_int(k, v);
    memcpy(p + 8 * i, &w, 8);
    break;
  }
  case IR_F16: {
    uint16_t w = ir_f64_to_f16_bits(v);
    memcpy(p + 2 * i, &w, 2);
    break;
  }
  case IR_BF16: {
    uint16_t w = (uint16_t)enc(&f_bf16, rnd(&f_bf16, v));
    memcpy(p + 2 * i, &w, 2);
    break;
  }
  case IR_F32: {
    float w = (float)rnd(&f_f32, v);
    memcpy(p + 4 * i, &w, 4);
    break;
  }
  case IR_F64:
    memcpy(p + 8 * i, &v, 8);
    break;
  case IR_F8E4M3:
  case IR_F8E5M2:
    p[i] = ir_f64_to_f8_bits(k, v);
    break;
  default:
    break;
  }
}
