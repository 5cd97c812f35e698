/* interp.c - the CPU interpreter (ir/interp.c) on kernels built with the irb_* builder.
 *
 * Each kernel is compared with a C reference: axpy with an out-of-bounds tail; a bf16 matmul
 * with a loop over K and odd shapes (bit-exact against a replica of the documented dot rule,
 * and within f32 tolerance of a double reference); masked pointer loads and stores; reductions,
 * a row softmax, transposes and leading-index block loads; casts to bf16 (RNE ties); loops with
 * zero trips and swapped carried values; if/else; integer wrap-around; located runtime errors;
 * and a flash-attention kernel whose multi-threaded output equals the single-threaded one bit
 * for bit. TILEC_BENCH=1 prints timings.
 */
#include "ir/ir.h"
#include "tests/unit/check.h"

#include <math.h>
#include <stdint.h>
#include <time.h>

/* ---- building kernels ------------------------------------------------------------------ */

static ir_builder *bld;
static ir_arena *ar;
static ir_op *last;

static void begin(const char *name) {
  bld = irb_new(name, "test.tile");
  ar = irb_arena(bld);
}

static ir_kernel *finish(void) {
  ir_kernel *k = NULL;
  ir_diag d = {0};
  ir_status s = irb_finish(bld, &k, &d);
  if (s != IR_OK)
    fprintf(stderr, "builder: %s\n", d.msg);
  REQUIRE(s == IR_OK);
  k->specialized = true;
  return k;
}

static const ir_type *S(ir_kind k) { return ir_scalar_type(k); }

static const ir_type *tile(ir_kind k, int64_t d0, int64_t d1) {
  ir_expr *dims[2] = {ir_expr_int(ar, d0), ir_expr_int(ar, d1)};
  return ir_type_tile(ar, S(k), d1 ? 2 : 1, dims);
}

static const ir_type *ptile(ir_kind k, int64_t d0) {
  ir_expr *dims[1] = {ir_expr_int(ar, d0)};
  return ir_type_tile(ar, ir_type_ptr(ar, S(k)), 1, dims);
}

static ir_value *emit(ir_opcode c, const ir_type *t, int n, ir_value *const *ops) {
  last = irb_op(bld, c, ops, n, t ? &t : NULL, t ? 1 : 0);
  return last && t ? last->results[0] : NULL;
}

#define NV(...) (int)(sizeof((ir_value *[]){__VA_ARGS__}) / sizeof(ir_value *))
#define E(code, t, ...) emit(IR_OP_##code, t, NV(__VA_ARGS__), (ir_value *[]){__VA_ARGS__})

static ir_value *none[1]; /* operands of ops without any (irb_op copies from it) */

static ir_value *E0(ir_opcode c, const ir_type *t) { return emit(c, t, 0, none); }

static ir_value *pid(int axis) {
  ir_value *v = E0(IR_OP_PROGRAM_ID, S(IR_I32));
  last->attr[0] = axis;
  return v;
}

static ir_value *cexpr(ir_expr *e, const ir_type *t) {
  ir_value *v = E0(IR_OP_CONST, t);
  last->ex[0] = e;
  return v;
}

static ir_value *ci(int64_t v, ir_kind k) { return cexpr(ir_expr_int(ar, v), S(k)); }
static ir_value *cf(double v, ir_kind k) { return cexpr(ir_expr_float(ar, v), S(k)); }
static ir_value *arange(int64_t lo, int64_t hi) {
  ir_value *v = E0(IR_OP_ARANGE, tile(IR_I32, hi - lo, 0));
  last->ex[0] = ir_expr_int(ar, lo);
  last->ex[1] = ir_expr_int(ar, hi);
  return v;
}

static ir_value *cmp(int pred, const ir_type *t, ir_value *a, ir_value *b) {
  ir_value *v = E(CMP, t, a, b);
  last->sub = pred;
  return v;
}

static ir_value *reduce(int kind, int axis, const ir_type *t, ir_value *a) {
  ir_value *v = E(REDUCE, t, a);
  last->sub = kind;
  last->attr[0] = axis;
  return v;
}

static ir_value *expand(ir_value *a, int axis, const ir_type *t) {
  ir_value *v = E(EXPAND_DIMS, t, a);
  last->attr[0] = axis;
  return v;
}

static void grid1(ir_expr *e) { irb_grid(bld, 1, &e); }
static void grid2(ir_expr *a, ir_expr *b) {
  ir_expr *g[2] = {a, b};
  irb_grid(bld, 2, g);
}

/* ---- launching ------------------------------------------------------------------------- */

static ir_argval tensor(void *data, int64_t count, int rank, int64_t d0, int64_t d1, int64_t d2,
                        int64_t d3) {
  ir_argval a = {.kind = ARG_TENSOR, .data = data, .count = count, .rank = rank};
  int64_t dims[4] = {d0, d1, d2, d3}, st = 1;
  for (int i = rank - 1; i >= 0; i--) {
    a.shape[i] = dims[i];
    a.stride[i] = st;
    st *= dims[i];
  }
  return a;
}

static ir_argval ptrarg(void *data, int64_t count) {
  return (ir_argval){.kind = ARG_PTR, .data = data, .count = count};
}
static ir_argval iscalar(int64_t v) { return (ir_argval){.kind = ARG_SCALAR, .scalar = {.i = v}}; }
static ir_argval fscalar(double v) {
  return (ir_argval){.kind = ARG_SCALAR, .scalar = {.isf = true, .f = v}};
}

static ir_diag diag;

static ir_status run(const ir_kernel *k, ir_argval *args, int nargs, int nthreads) {
  ir_interp_opts o = {.nthreads = nthreads};
  memset(&diag, 0, sizeof diag);
  ir_status s = ir_interp_run(k, args, nargs, &o, &diag);
  if (s != IR_OK && getenv("TILEC_VERBOSE"))
    fprintf(stderr, "interp: %s\n", diag.msg);
  return s;
}

static double now(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_state = 0x2545f4914f6cdd1du;
static double urand(void) { /* in [-1, 1) */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (double)(rng_state >> 11) * 0x1p-52 - 1;
}

static uint16_t bf16(double x) { return ir_f32_to_bf16_bits((float)ir_round_to(IR_BF16, x)); }
static double unbf16(uint16_t b) { return ir_bf16_bits_to_f32(b); }

/* ---- kernels --------------------------------------------------------------------------- */

/* Y = alpha * X + Y over N with BLOCK = 256 (the last block runs past N). */
static void test_axpy(void) {
  begin("axpy");
  ir_value *X = irb_tensor_arg(bld, "X", ARG_IN, S(IR_F32), 1, (const char *[]){"N"});
  ir_value *Y = irb_tensor_arg(bld, "Y", ARG_INOUT, S(IR_F32), 1, (const char *[]){"N"});
  int alpha = irb_param(bld, "alpha", IR_F32, false, NULL);
  grid1(ir_expr_bin(ar, EXO_CDIV, ir_expr_sym(ar, 0), ir_expr_int(ar, 256)));
  ir_value *off = E(MUL, S(IR_I32), pid(0), ci(256, IR_I32));
  ir_value *x = E(LOAD, tile(IR_F32, 256, 0), X, off);
  ir_value *y = E(LOAD, tile(IR_F32, 256, 0), Y, off);
  ir_value *a = cexpr(ir_expr_sym(ar, alpha), S(IR_F32));
  ir_value *ax = E(MUL, tile(IR_F32, 256, 0), x, a);
  ir_value *r = E(ADD, tile(IR_F32, 256, 0), ax, y);
  E(STORE, NULL, Y, off, r);
  ir_kernel *k = finish();

  enum { N = 1000 };
  static float xs[N], ys[1024], want[1024];
  for (int i = 0; i < 1024; i++) {
    xs[i % N] = (float)urand();
    ys[i] = want[i] = (float)urand();
  }
  float al = 0.3f;
  for (int i = 0; i < N; i++)
    want[i] = al * xs[i] + want[i];
  ir_argval args[3] = {tensor(xs, N, 1, N, 0, 0, 0), tensor(ys, N, 1, N, 0, 0, 0), fscalar(0.3)};
  CHECK_EQ_INT(IR_OK, run(k, args, 3, 1));
  CHECK_EQ_INT(0, memcmp(want, ys, sizeof ys)); /* bit-exact, tail past N untouched */
  ir_kernel_free(k);
}

/* C[M,N] (f32) = A[M,K] (bf16) . B[K,N] (bf16), tiles T x T x T, a loop over K. */
static ir_kernel *matmul_kernel(int T, bool bias_fill) {
  begin("matmul");
  ir_value *A = irb_tensor_arg(bld, "A", ARG_IN, S(IR_BF16), 2, (const char *[]){"M", "K"});
  ir_value *Bt = irb_tensor_arg(bld, "B", ARG_IN, S(IR_BF16), 2, (const char *[]){"K", "N"});
  ir_value *C = irb_tensor_arg(bld, "C", ARG_OUT, S(IR_F32), 2, (const char *[]){"M", "N"});
  int K = 1, N = 2; /* dim symbols in order of first use: M = 0, K, N */
  grid2(ir_expr_bin(ar, EXO_CDIV, ir_expr_sym(ar, 0), ir_expr_int(ar, T)),
        ir_expr_bin(ar, EXO_CDIV, ir_expr_sym(ar, N), ir_expr_int(ar, T)));
  ir_value *cT = ci(T, IR_I32);
  ir_value *m0 = E(MUL, S(IR_I32), pid(0), cT);
  ir_value *n0 = E(MUL, S(IR_I32), pid(1), cT);
  ir_value *z = E0(IR_OP_ZEROS, tile(IR_F32, T, T));
  ir_value *lo = ci(0, IR_I32), *hi = cexpr(ir_expr_sym(ar, K), S(IR_I32));
  const ir_type *acct = tile(IR_F32, T, T);
  ir_op *loop = irb_for(bld, lo, hi, cT, &z, 1, &acct);
  ir_value *kk = loop->regions[0]->args[0], *acc = loop->regions[0]->args[1];
  ir_value *ta = E(LOAD, tile(IR_BF16, T, T), A, m0, kk);
  if (bias_fill)
    last->ex[1] = ir_expr_float(ar, 0.0);
  ir_value *tb = E(LOAD, tile(IR_BF16, T, T), Bt, kk, n0);
  ir_value *d = E(DOT, acct, ta, tb, acc);
  E(YIELD, NULL, d);
  irb_end(bld);
  E(STORE, NULL, C, m0, n0, loop->results[0]);
  return finish();
}

/* The documented dot rule, replayed in C: per K tile, sum the exact products in double in k
 * order, add the accumulator, round to f32. */
static void matmul_replica(int T, int M, int N, int K, const uint16_t *a, const uint16_t *b,
                           float *c) {
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      float acc = 0;
      for (int k0 = 0; k0 < K; k0 += T) {
        double s = 0;
        for (int k = k0; k < k0 + T; k++)
          s += k < K ? unbf16(a[m * K + k]) * unbf16(b[k * N + n]) : 0.0 * 0.0;
        acc = (float)((double)acc + s);
      }
      c[m * N + n] = acc;
    }
}

static void test_matmul(void) {
  enum { T = 16, M = 33, N = 17, K = 45 };
  ir_kernel *k = matmul_kernel(T, true);
  static uint16_t a[M * K], b[K * N];
  static float c[M * N + 8], want[M * N];
  for (int i = 0; i < M * K; i++)
    a[i] = bf16(urand());
  for (int i = 0; i < K * N; i++)
    b[i] = bf16(urand());
  for (int i = 0; i < M * N + 8; i++)
    c[i] = -7;
  ir_argval args[3] = {tensor(a, M * K, 2, M, K, 0, 0), tensor(b, K * N, 2, K, N, 0, 0),
                       tensor(c, M * N, 2, M, N, 0, 0)};
  double t0 = now();
  CHECK_EQ_INT(IR_OK, run(k, args, 3, 1));
  double t1 = now();
  if (getenv("TILEC_BENCH"))
    fprintf(stderr, "bench: matmul 33x17x45, 16x16x16 tiles: %.3f ms\n", (t1 - t0) * 1e3);
  matmul_replica(T, M, N, K, a, b, want);
  CHECK_EQ_INT(0, memcmp(want, c, sizeof want));
  CHECK(c[M * N] == -7); /* nothing past the output */
  int bad = 0;
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double ref = 0, mag = 0;
      for (int kk = 0; kk < K; kk++) {
        ref += unbf16(a[m * K + kk]) * unbf16(b[kk * N + n]);
        mag += fabs(unbf16(a[m * K + kk]) * unbf16(b[kk * N + n]));
      }
      bad += fabs(ref - c[m * N + n]) > 4 * 0x1p-24 * mag + 1e-30;
    }
  CHECK_EQ_INT(0, bad);
  /* a wrong oracle must fail: the all-zero output differs from the reference */
  CHECK(c[0] != 0 || c[1] != 0);

  /* B given column-major (strides 1, K): the same product */
  static uint16_t bcol[K * N];
  for (int kk = 0; kk < K; kk++)
    for (int n = 0; n < N; n++)
      bcol[n * K + kk] = b[kk * N + n];
  static float c2[M * N];
  args[1] = tensor(bcol, K * N, 2, K, N, 0, 0);
  args[1].stride[0] = 1;
  args[1].stride[1] = K;
  args[2] = tensor(c2, M * N, 2, M, N, 0, 0);
  CHECK_EQ_INT(IR_OK, run(k, args, 3, 1));
  CHECK_EQ_INT(0, memcmp(want, c2, sizeof want));

  /* dims must agree: B has 33 rows but A says K = 45 */
  args[1] = tensor(b, K * N, 2, 33, N, 0, 0);
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, args, 3, 1));
  CHECK_CONTAINS(diag.msg, "tensor 'B' dim 0 is 33 but K = 45");
  /* a buffer smaller than the shape says */
  args[1] = tensor(b, K * N - 1, 2, K, N, 0, 0);
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, args, 3, 1));
  CHECK_CONTAINS(diag.msg, "tensor 'B' reaches elements 0..764 but its buffer has 764");
  /* wrong argument count */
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, args, 2, 1));
  CHECK_CONTAINS(diag.msg, "takes 3 arguments, got 2");
  ir_kernel_free(k);
}

/* Bigger matmul with 64x64x64 tiles: single vs multi-threaded runs agree bit for bit. */
static void test_matmul_threads(void) {
  enum { T = 64, M = 256, N = 256, K = 512 };
  ir_kernel *k = matmul_kernel(T, false);
  uint16_t *a = malloc(sizeof *a * M * K), *b = malloc(sizeof *b * K * N);
  float *c1 = malloc(sizeof *c1 * M * N), *c4 = malloc(sizeof *c4 * M * N);
  for (int i = 0; i < M * K; i++)
    a[i] = bf16(urand());
  for (int i = 0; i < K * N; i++)
    b[i] = bf16(urand());
  ir_argval args[3] = {tensor(a, M * K, 2, M, K, 0, 0), tensor(b, K * N, 2, K, N, 0, 0),
                       tensor(c1, M * N, 2, M, N, 0, 0)};
  double t0 = now();
  CHECK_EQ_INT(IR_OK, run(k, args, 3, 1));
  double t1 = now();
  args[2].data = c4;
  CHECK_EQ_INT(IR_OK, run(k, args, 3, 4));
  double t2 = now();
  if (getenv("TILEC_BENCH"))
    fprintf(stderr,
            "bench: matmul 256x256x512, 64x64x64 tiles (128 dots): %.1f ms, 4 threads %.1f ms\n",
            (t1 - t0) * 1e3, (t2 - t1) * 1e3);
  CHECK_EQ_INT(0, memcmp(c1, c4, sizeof *c1 * M * N));
  double ref = 0;
  for (int kk = 0; kk < K; kk++)
    ref += unbf16(a[5 * K + kk]) * unbf16(b[kk * N + 7]);
  CHECK_NEAR(ref, c1[5 * N + 7], 1e-4);
  free(a);
  free(b);
  free(c1);
  free(c4);
  ir_kernel_free(k);
}

/* Q[i] = P[i]^2 for i < n through pointer tiles with a mask; masked lanes read `other`. */
static void test_masked_pointers(void) {
  begin("masked");
  ir_value *Pp = irb_ptr_arg(bld, "P", S(IR_F32));
  ir_value *Qp = irb_ptr_arg(bld, "Q", S(IR_F32));
  int n = irb_param(bld, "n", IR_I32, false, NULL);
  grid1(ir_expr_int(ar, 1));
  ir_value *offs = arange(0, 64);
  ir_value *nn = E(FULL, tile(IR_I32, 64, 0), cexpr(ir_expr_sym(ar, n), S(IR_I32)));
  ir_value *mask = cmp(IR_CMP_LT, tile(IR_I1, 64, 0), offs, nn);
  ir_value *p = E(ADDPTR, ptile(IR_F32, 64), Pp, offs);
  ir_value *x = E(LOAD_PTR, tile(IR_F32, 64, 0), p, mask, cf(-1.5, IR_F32));
  ir_value *x2 = E(MUL, tile(IR_F32, 64, 0), x, x);
  ir_value *q = E(ADDPTR, ptile(IR_F32, 64), Qp, offs);
  E(STORE_PTR, NULL, q, x2); /* all 64 lanes: masked-off ones hold 2.25 */
  ir_value *q2 = E(ADDPTR, ptile(IR_F32, 64), q, ci(64, IR_I32));
  E(STORE_PTR, NULL, q2, x, mask); /* Q[64 + i] = P[i] for i < n */
  ir_kernel *k = finish();
  float P[50], Q[130];
  for (int i = 0; i < 50; i++)
    P[i] = (float)urand();
  for (int i = 0; i < 130; i++)
    Q[i] = 99;
  ir_argval args[3] = {ptrarg(P, 50), ptrarg(Q, 128), iscalar(50)};
  CHECK_EQ_INT(IR_OK, run(k, args, 3, 1));
  int bad = 0;
  for (int i = 0; i < 64; i++)
    bad += Q[i] != (i < 50 ? P[i] * P[i] : 2.25f);
  for (int i = 64; i < 130; i++)
    bad += Q[i] != (i < 114 ? P[i - 64] : 99);
  CHECK_EQ_INT(0, bad);
  /* n = 51 reads P[50]: out of bounds */
  args[2] = iscalar(51);
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, args, 3, 1));
  CHECK_CONTAINS(diag.msg, "out-of-bounds load through '%P' at element 50 (buffer has 50)");
  /* Q too small for the unmasked store */
  args[2] = iscalar(50);
  args[1] = ptrarg(Q, 60);
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, args, 3, 1));
  CHECK_CONTAINS(diag.msg, "out-of-bounds store through '%Q' at element 60 (buffer has 60)");
  /* a parameter that does not fit i32 */
  args[1] = ptrarg(Q, 128);
  args[2] = iscalar(INT64_C(1) << 40);
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, args, 3, 1));
  CHECK_CONTAINS(diag.msg, "does not fit i32");
  ir_kernel_free(k);
}

/* Row softmax of a 4x8 tile, max and sum reductions, a transpose, a leading-index load. */
static void test_reduce_softmax(void) {
  begin("softmax");
  ir_value *X = irb_tensor_arg(bld, "X", ARG_IN, S(IR_F32), 3, (const char *[]){"2", "4", "8"});
  ir_value *Y = irb_tensor_arg(bld, "Y", ARG_OUT, S(IR_F32), 2, (const char *[]){"4", "8"});
  ir_value *R = irb_tensor_arg(bld, "R", ARG_OUT, S(IR_F32), 1, (const char *[]){"4"});
  ir_value *Cm = irb_tensor_arg(bld, "Cm", ARG_OUT, S(IR_F32), 1, (const char *[]){"8"});
  ir_value *Tr = irb_tensor_arg(bld, "Tr", ARG_OUT, S(IR_F32), 2, (const char *[]){"8", "4"});
  ir_value *F = irb_tensor_arg(bld, "F", ARG_OUT, S(IR_F32), 2, (const char *[]){"3", "3"});
  grid1(ir_expr_int(ar, 1));
  ir_value *z = ci(0, IR_I32), *one = ci(1, IR_I32);
  const ir_type *t48 = tile(IR_F32, 4, 8), *t4 = tile(IR_F32, 4, 0);
  ir_value *x = E(LOAD, t48, X, one, z, z);
  ir_value *m = reduce(IR_RED_MAX, 1, t4, x);
  ir_value *mb = E(BROADCAST, t48, expand(m, 1, tile(IR_F32, 4, 1)));
  ir_value *e = E(EXP, t48, E(SUB, t48, x, mb));
  ir_value *s = reduce(IR_RED_SUM, 1, t4, e);
  ir_value *sb = E(BROADCAST, t48, expand(s, 1, tile(IR_F32, 4, 1)));
  E(STORE, NULL, Y, z, z, E(DIV, t48, e, sb));
  E(STORE, NULL, R, z, s);
  E(STORE, NULL, Cm, z, reduce(IR_RED_MAX, 0, tile(IR_F32, 8, 0), x));
  E(STORE, NULL, Tr, z, z, E(TRANS, tile(IR_F32, 8, 4), x));
  /* X[1, 2.., 6..] as a 3x3 tile: rows 2..3 and cols 6..7 exist, the rest is the fill */
  ir_value *f = E(LOAD, tile(IR_F32, 3, 3), X, one, ci(2, IR_I32), ci(6, IR_I32));
  last->ex[1] = ir_expr_float(ar, -2.0);
  E(STORE, NULL, F, z, z, f);
  ir_kernel *k = finish();

  float xs[2 * 4 * 8], y[32], r[4], cm[8], tr[32], fv[9];
  for (int i = 0; i < 64; i++)
    xs[i] = (float)(3 * urand());
  xs[32 + 8 + 5] = NAN; /* row 1, col 5 */
  ir_argval args[6] = {tensor(xs, 64, 3, 2, 4, 8, 0), tensor(y, 32, 2, 4, 8, 0, 0),
                       tensor(r, 4, 1, 4, 0, 0, 0),   tensor(cm, 8, 1, 8, 0, 0, 0),
                       tensor(tr, 32, 2, 8, 4, 0, 0), tensor(fv, 9, 2, 3, 3, 0, 0)};
  CHECK_EQ_INT(IR_OK, run(k, args, 6, 1));
  const float *x1 = xs + 32;
  int bad = 0;
  for (int i = 0; i < 4; i++) {
    float mx = x1[i * 8];
    for (int j = 1; j < 8; j++)
      mx = isnan(x1[i * 8 + j]) || isnan(mx) ? NAN : fmaxf(mx, x1[i * 8 + j]);
    float ev[8];
    double sum = 0;
    for (int j = 0; j < 8; j++) {
      ev[j] = (float)exp((double)(float)((double)x1[i * 8 + j] - mx));
      sum += ev[j];
    }
    float sf = (float)sum;
    bad += !(r[i] == sf || (isnan(r[i]) && isnan(sf)));
    for (int j = 0; j < 8; j++) {
      float want = (float)((double)ev[j] / sf);
      bad += !(y[i * 8 + j] == want || (isnan(want) && isnan(y[i * 8 + j])));
    }
  }
  CHECK_EQ_INT(0, bad);
  CHECK(isnan(r[1]) && !isnan(r[0]) && !isnan(r[2]));
  for (int j = 0; j < 8; j++) {
    float mx = x1[j];
    for (int i = 1; i < 4; i++)
      mx = isnan(x1[i * 8 + j]) || isnan(mx) ? NAN : fmaxf(mx, x1[i * 8 + j]);
    bad += !(cm[j] == mx || (isnan(mx) && isnan(cm[j])));
  }
  CHECK(isnan(cm[5]));
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 8; j++)
      bad += !(tr[j * 4 + i] == x1[i * 8 + j] || (isnan(x1[i * 8 + j]) && isnan(tr[j * 4 + i])));
  CHECK_EQ_INT(0, bad);
  float fwant[9] = {x1[2 * 8 + 6], x1[2 * 8 + 7], -2, x1[3 * 8 + 6], x1[3 * 8 + 7], -2, -2, -2, -2};
  CHECK_EQ_INT(0, memcmp(fwant, fv, sizeof fv));
  ir_kernel_free(k);
}

/* cast f32 -> bf16 rounds to nearest even, exactly as the bit trick does. */
static void test_cast_bf16(void) {
  enum { N = 1024 };
  begin("cast");
  ir_value *X = irb_tensor_arg(bld, "X", ARG_IN, S(IR_F32), 1, (const char *[]){"1024"});
  ir_value *Y = irb_tensor_arg(bld, "Y", ARG_OUT, S(IR_BF16), 1, (const char *[]){"1024"});
  ir_value *Z = irb_tensor_arg(bld, "Z", ARG_OUT, S(IR_I8), 1, (const char *[]){"1024"});
  ir_value *W = irb_tensor_arg(bld, "W", ARG_OUT, S(IR_F32), 1, (const char *[]){"1024"});
  grid1(ir_expr_int(ar, 1));
  ir_value *z = ci(0, IR_I32);
  ir_value *x = E(LOAD, tile(IR_F32, N, 0), X, z);
  ir_value *xb = E(CAST, tile(IR_BF16, N, 0), x);
  E(STORE, NULL, Y, z, xb);
  E(STORE, NULL, W, z, E(CAST, tile(IR_F32, N, 0), xb)); /* the value inside the interpreter */
  E(STORE, NULL, Z, z, E(CAST, tile(IR_I8, N, 0), x));
  ir_kernel *k = finish();
  static float xs[N];
  static uint16_t ys[N];
  static int8_t zs[N];
  for (int i = 0; i < N; i++) {
    if (i % 4 == 0) { /* exact ties: a bf16 value plus half an ulp */
      float base = ir_bf16_bits_to_f32(bf16(urand() * 100));
      uint32_t u;
      memcpy(&u, &base, 4);
      u |= 0x8000;
      memcpy(&xs[i], &u, 4);
    } else {
      xs[i] = (float)(urand() * 300);
    }
  }
  xs[1] = 1.0f + 0x1p-8f;     /* tie -> 1.0 */
  xs[2] = 1.0f + 3 * 0x1p-8f; /* tie -> 1 + 2^-6 */
  static float ws[N];
  ir_argval args[4] = {tensor(xs, N, 1, N, 0, 0, 0), tensor(ys, N, 1, N, 0, 0, 0),
                       tensor(zs, N, 1, N, 0, 0, 0), tensor(ws, N, 1, N, 0, 0, 0)};
  CHECK_EQ_INT(IR_OK, run(k, args, 4, 1));
  int bad = 0;
  for (int i = 0; i < N; i++) {
    uint32_t u;
    memcpy(&u, &xs[i], 4);
    bad += ys[i] != (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
    bad += zs[i] != (int8_t)(int64_t)xs[i]; /* wraps */
    bad += ws[i] != ir_bf16_bits_to_f32(ys[i]);
  }
  CHECK_EQ_INT(0, bad);
  CHECK(unbf16(ys[1]) == 1.0);
  CHECK(unbf16(ys[2]) == 1 + 0x1p-6);
  ir_kernel_free(k);
}

/* Loops: zero trips return the inits; carried values swapped every iteration; the induction
 * variable; if/else with results; integer wrap-around and shifts. Results go through a
 * scalar pointer. */
static void test_control(void) {
  begin("control");
  ir_value *O = irb_ptr_arg(bld, "O", S(IR_I32));
  int lo = irb_param(bld, "lo", IR_I32, false, NULL);
  int hi = irb_param(bld, "hi", IR_I32, false, NULL);
  int st = irb_param(bld, "st", IR_I32, false, NULL);
  grid1(ir_expr_int(ar, 3));
  ir_value *vlo = cexpr(ir_expr_sym(ar, lo), S(IR_I32));
  ir_value *vhi = cexpr(ir_expr_sym(ar, hi), S(IR_I32));
  ir_value *vst = cexpr(ir_expr_sym(ar, st), S(IR_I32));
  ir_value *p = pid(0);
  ir_value *base = E(MUL, S(IR_I32), p, ci(8, IR_I32));
  ir_value *out = E(ADDPTR, ir_type_ptr(ar, S(IR_I32)), O, base);
  ir_value *init[3] = {ci(7, IR_I32), ci(100, IR_I32), ci(200, IR_I32)};
  const ir_type *ts[3] = {S(IR_I32), S(IR_I32), S(IR_I32)};
  ir_op *loop = irb_for(bld, vlo, vhi, vst, init, 3, ts);
  ir_value **ba = loop->regions[0]->args;
  ir_value *s2 = E(ADD, S(IR_I32), ba[1], ba[0]); /* sum of induction values */
  E(YIELD, NULL, s2, ba[3], ba[2]);               /* swap the other two */
  irb_end(bld);
  E(STORE_PTR, NULL, out, loop->results[0]);
  E(STORE_PTR, NULL, E(ADDPTR, ir_type_ptr(ar, S(IR_I32)), out, ci(1, IR_I32)), loop->results[1]);
  /* if pid > 0: 10 * pid else -1 */
  ir_value *c = cmp(IR_CMP_GT, S(IR_I1), p, ci(0, IR_I32));
  const ir_type *ti = S(IR_I32);
  ir_op *iff = irb_if(bld, c, &ti, 1);
  E(YIELD, NULL, E(MUL, S(IR_I32), p, ci(10, IR_I32)));
  irb_else(bld);
  E(YIELD, NULL, ci(-1, IR_I32));
  irb_end(bld);
  E(STORE_PTR, NULL, E(ADDPTR, ir_type_ptr(ar, S(IR_I32)), out, ci(2, IR_I32)), iff->results[0]);
  /* an if without results or else */
  ir_op *if2 = irb_if(bld, cmp(IR_CMP_EQ, S(IR_I1), p, ci(2, IR_I32)), NULL, 0);
  E(STORE_PTR, NULL, E(ADDPTR, ir_type_ptr(ar, S(IR_I32)), out, ci(3, IR_I32)), ci(42, IR_I32));
  emit(IR_OP_YIELD, NULL, 0, none);
  (void)if2;
  irb_end(bld);
  /* i8 wrap-around, arithmetic shift right, i32 multiply wrap, cdiv/rem of negatives */
  ir_value *w = E(ADD, S(IR_I8), ci(100, IR_I8), ci(100, IR_I8));
  E(STORE_PTR, NULL, E(ADDPTR, ir_type_ptr(ar, S(IR_I32)), out, ci(4, IR_I32)),
    E(CAST, S(IR_I32), w));
  E(STORE_PTR, NULL, E(ADDPTR, ir_type_ptr(ar, S(IR_I32)), out, ci(5, IR_I32)),
    E(SHR, S(IR_I32), ci(-20, IR_I32), ci(2, IR_I32)));
  /* each program writes its own two i64 elements: programs never store to one element */
  ir_value *O64 = irb_ptr_arg(bld, "O64", S(IR_I64));
  ir_value *out64 = E(ADDPTR, ir_type_ptr(ar, S(IR_I64)), O64, E(MUL, S(IR_I32), p, ci(2, IR_I32)));
  E(STORE_PTR, NULL, out64, E(SHR, S(IR_I64), ci(-20, IR_I64), ci(2, IR_I64)));
  E(STORE_PTR, NULL, E(ADDPTR, ir_type_ptr(ar, S(IR_I64)), out64, ci(1, IR_I32)),
    E(SHL, S(IR_I64), ci(3, IR_I64), ci(62, IR_I64)));
  E(STORE_PTR, NULL, E(ADDPTR, ir_type_ptr(ar, S(IR_I32)), out, ci(6, IR_I32)),
    E(MUL, S(IR_I32), ci(65536, IR_I32), ci(65537, IR_I32)));
  E(STORE_PTR, NULL, E(ADDPTR, ir_type_ptr(ar, S(IR_I32)), out, ci(7, IR_I32)),
    E(ADD, S(IR_I32), E(CDIV, S(IR_I32), ci(7, IR_I32), ci(2, IR_I32)),
      E(MUL, S(IR_I32), ci(10, IR_I32), E(REM, S(IR_I32), ci(-7, IR_I32), ci(2, IR_I32)))));
  ir_kernel *k = finish();

  int32_t o[24];
  for (int i = 0; i < 24; i++)
    o[i] = -99;
  int64_t o64[6] = {0};
  ir_argval args[5] = {ptrarg(o, 24), iscalar(0), iscalar(10), iscalar(3), ptrarg(o64, 6)};
  CHECK_EQ_INT(IR_OK, run(k, args, 5, 1));
  for (int i = 0; i < 6; i += 2) {
    CHECK_EQ_INT(-5, o64[i]);
    CHECK_EQ_INT(INT64_MIN + (INT64_C(1) << 62), o64[i + 1]); /* 3 << 62 wraps */
  }
  CHECK_EQ_INT(7 + 0 + 3 + 6 + 9, o[0]);
  CHECK_EQ_INT(100, o[1]); /* 4 trips: swapped an even number of times */
  CHECK_EQ_INT(-1, o[2]);
  CHECK_EQ_INT(10, o[8 + 2]);
  CHECK_EQ_INT(20, o[16 + 2]);
  CHECK_EQ_INT(-99, o[3]);
  CHECK_EQ_INT(-99, o[8 + 3]);
  CHECK_EQ_INT(42, o[16 + 3]);
  CHECK_EQ_INT(-56, o[4]);
  CHECK_EQ_INT(-5, o[5]);
  CHECK_EQ_INT(65536, o[6]); /* 2^32 + 2^16 wraps to 2^16 */
  CHECK_EQ_INT(4 - 10, o[7]);
  /* 2 threads write the same as 1 (each program its own elements, so no data race) */
  int32_t o1[24];
  int64_t o64_1[6];
  memcpy(o1, o, sizeof o);
  memcpy(o64_1, o64, sizeof o64);
  for (int i = 0; i < 24; i++)
    o[i] = -99;
  memset(o64, 0, sizeof o64);
  CHECK_EQ_INT(IR_OK, run(k, args, 5, 2));
  CHECK_EQ_INT(0, memcmp(o1, o, sizeof o));
  CHECK_EQ_INT(0, memcmp(o64_1, o64, sizeof o64));
  /* 3 trips: odd number of swaps */
  args[2] = iscalar(9);
  CHECK_EQ_INT(IR_OK, run(k, args, 5, 1));
  CHECK_EQ_INT(7 + 0 + 3 + 6, o[0]);
  CHECK_EQ_INT(200, o[1]);
  /* zero trips: the inits */
  args[1] = iscalar(5);
  args[2] = iscalar(5);
  CHECK_EQ_INT(IR_OK, run(k, args, 5, 1));
  CHECK_EQ_INT(7, o[0]);
  CHECK_EQ_INT(100, o[1]);
  args[2] = iscalar(-5);
  for (int i = 0; i < 24; i++)
    o[i] = -99;
  CHECK_EQ_INT(IR_OK, run(k, args, 5, 2));
  for (int pr = 0; pr < 3; pr++) {
    CHECK_EQ_INT(7, o[8 * pr]);
    CHECK_EQ_INT(100, o[8 * pr + 1]);
  }
  /* a non-positive step is an error */
  args[3] = iscalar(0);
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, args, 5, 1));
  CHECK_CONTAINS(diag.msg, "loop step must be positive, got 0");
  ir_kernel_free(k);
}

static void test_div_by_zero(void) {
  begin("divzero");
  ir_value *O = irb_ptr_arg(bld, "O", S(IR_I32));
  int a = irb_param(bld, "a", IR_I32, false, NULL);
  int b = irb_param(bld, "b", IR_I32, false, NULL);
  grid1(ir_expr_int(ar, 1));
  ir_value *q =
      E(DIV, S(IR_I32), cexpr(ir_expr_sym(ar, a), S(IR_I32)), cexpr(ir_expr_sym(ar, b), S(IR_I32)));
  E(STORE_PTR, NULL, O, q);
  ir_kernel *k = finish();
  int32_t o = 0;
  ir_argval args[3] = {ptrarg(&o, 1), iscalar(-7), iscalar(2)};
  CHECK_EQ_INT(IR_OK, run(k, args, 3, 1));
  CHECK_EQ_INT(-3, o);
  args[1] = iscalar(INT32_MIN);
  args[2] = iscalar(-1);
  CHECK_EQ_INT(IR_OK, run(k, args, 3, 1));
  CHECK_EQ_INT(INT32_MIN, o); /* wraps, no trap */
  args[2] = iscalar(0);
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, args, 3, 1));
  CHECK_CONTAINS(diag.msg, "integer division by zero");
  ir_kernel_free(k);
}

/* An out-of-bounds access in some programs: the error of the lowest failing program is the
 * one reported, whatever the thread count. */
static void test_error_order(void) {
  begin("oob");
  ir_value *Pp = irb_ptr_arg(bld, "P", S(IR_F32));
  grid1(ir_expr_int(ar, 64));
  ir_value *off = E(MUL, S(IR_I32), pid(0), ci(16, IR_I32));
  ir_value *p = E(ADDPTR, ptile(IR_F32, 16), Pp, E(ADD, tile(IR_I32, 16, 0), arange(0, 16), off));
  ir_value *x = E(LOAD_PTR, tile(IR_F32, 16, 0), p);
  E(STORE_PTR, NULL, p, E(ADD, tile(IR_F32, 16, 0), x, cf(1, IR_F32)));
  ir_kernel *k = finish();
  static float buf[1000];
  ir_argval args[1] = {ptrarg(buf, 1000)};
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, args, 1, 1));
  CHECK_CONTAINS(diag.msg, "out-of-bounds load through '%P' at element 1000 (buffer has 1000)");
  char msg1[sizeof diag.msg];
  memcpy(msg1, diag.msg, sizeof msg1);
  CHECK(buf[0] == 1 && buf[991] == 1 && buf[992] == 0); /* program 62 failed before storing */
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, args, 1, 4));
  CHECK_EQ_STR(msg1, diag.msg);
  ir_kernel_free(k);
}

/* Flash attention (B, H, S, D) with 64x64 tiles: online softmax, two dots per iteration. */
static ir_kernel *attention_kernel(void) {
  enum { BM = 64, BN = 64, D = 64 };
  begin("attention");
  const char *dims[4] = {"B", "H", "S", "64"};
  ir_value *Q = irb_tensor_arg(bld, "Q", ARG_IN, S(IR_BF16), 4, dims);
  ir_value *K = irb_tensor_arg(bld, "K", ARG_IN, S(IR_BF16), 4, dims);
  ir_value *V = irb_tensor_arg(bld, "V", ARG_IN, S(IR_BF16), 4, dims);
  ir_value *O = irb_tensor_arg(bld, "O", ARG_OUT, S(IR_BF16), 4, dims);
  int scale = irb_param(bld, "scale", IR_F32, false, NULL);
  int sB = 0, sH = 1, sS = 2;
  grid2(ir_expr_bin(ar, EXO_CDIV, ir_expr_sym(ar, sS), ir_expr_int(ar, BM)),
        ir_expr_bin(ar, '*', ir_expr_sym(ar, sB), ir_expr_sym(ar, sH)));
  ir_value *H = cexpr(ir_expr_sym(ar, sH), S(IR_I32));
  ir_value *pbh = pid(1);
  ir_value *b = E(DIV, S(IR_I32), pbh, H), *h = E(REM, S(IR_I32), pbh, H);
  ir_value *m0 = E(MUL, S(IR_I32), pid(0), ci(BM, IR_I32));
  ir_value *z = ci(0, IR_I32);
  const ir_type *tq = tile(IR_BF16, BM, D), *tk = tile(IR_BF16, BN, D);
  const ir_type *ts = tile(IR_F32, BM, BN), *tr = tile(IR_F32, BM, 0);
  const ir_type *tacc = tile(IR_F32, BM, D), *tr1 = tile(IR_F32, BM, 1);
  ir_value *q = E(LOAD, tq, Q, b, h, m0, z);
  ir_value *qk =
      cexpr(ir_expr_bin(ar, '*', ir_expr_sym(ar, scale), ir_expr_float(ar, 1.4426950408889634)),
            S(IR_F32));
  ir_value *init[3] = {E0(IR_OP_ZEROS, tacc), E(FULL, tr, cf(-INFINITY, IR_F32)),
                       E0(IR_OP_ZEROS, tr)};
  const ir_type *rt[3] = {tacc, tr, tr};
  ir_op *loop = irb_for(bld, z, cexpr(ir_expr_sym(ar, sS), S(IR_I32)), ci(BN, IR_I32), init, 3, rt);
  ir_value **a = loop->regions[0]->args;
  ir_value *k = E(LOAD, tk, K, b, h, a[0], z);
  ir_value *s = E(DOT, ts, q, E(TRANS, tile(IR_BF16, D, BN), k), E0(IR_OP_ZEROS, ts));
  ir_value *s2 = E(MUL, ts, s, qk);
  ir_value *mnew = E(MAX, tr, a[2], reduce(IR_RED_MAX, 1, tr, s2));
  ir_value *p = E(EXP2, ts, E(SUB, ts, s2, E(BROADCAST, ts, expand(mnew, 1, tr1))));
  ir_value *alpha = E(EXP2, tr, E(SUB, tr, a[2], mnew));
  ir_value *l2 = E(ADD, tr, E(MUL, tr, a[3], alpha), reduce(IR_RED_SUM, 1, tr, p));
  ir_value *acc = E(MUL, tacc, a[1], E(BROADCAST, tacc, expand(alpha, 1, tr1)));
  ir_value *v = E(LOAD, tk, V, b, h, a[0], z);
  ir_value *acc2 = E(DOT, tacc, E(CAST, tile(IR_BF16, BM, BN), p), v, acc);
  E(YIELD, NULL, acc2, mnew, l2);
  irb_end(bld);
  ir_value *o =
      E(DIV, tacc, loop->results[0], E(BROADCAST, tacc, expand(loop->results[2], 1, tr1)));
  E(STORE, NULL, O, b, h, m0, z, E(CAST, tq, o));
  return finish();
}

static void test_attention(void) {
  enum { B = 1, H = 2, SQ = 512, D = 64 };
  ir_kernel *k = attention_kernel();
  size_t n = (size_t)B * H * SQ * D;
  uint16_t *q = malloc(2 * n), *kk = malloc(2 * n), *v = malloc(2 * n);
  uint16_t *o1 = malloc(2 * n), *o2 = malloc(2 * n);
  for (size_t i = 0; i < n; i++) {
    q[i] = bf16(urand());
    kk[i] = bf16(urand());
    v[i] = bf16(urand());
  }
  double scale = 1 / sqrt(D);
  ir_argval args[5] = {tensor(q, (int64_t)n, 4, B, H, SQ, D),
                       tensor(kk, (int64_t)n, 4, B, H, SQ, D),
                       tensor(v, (int64_t)n, 4, B, H, SQ, D),
                       tensor(o1, (int64_t)n, 4, B, H, SQ, D), fscalar(scale)};
  double t0 = now();
  CHECK_EQ_INT(IR_OK, run(k, args, 5, 1));
  double t1 = now();
  args[3].data = o2;
  CHECK_EQ_INT(IR_OK, run(k, args, 5, 2));
  double t2 = now();
  if (getenv("TILEC_BENCH"))
    fprintf(stderr, "bench: attention B=1,H=2,S=512,D=64: %.1f ms, 2 threads %.1f ms\n",
            (t1 - t0) * 1e3, (t2 - t1) * 1e3);
  CHECK_EQ_INT(0, memcmp(o1, o2, 2 * n));
  /* double reference for a few rows of each head */
  int bad = 0;
  double maxerr = 0;
  for (int h = 0; h < H; h++)
    for (int r = 0; r < SQ; r += 37) {
      const uint16_t *qr = q + ((size_t)h * SQ + r) * D;
      double sc[SQ], mx = -INFINITY, sum = 0;
      for (int j = 0; j < SQ; j++) {
        const uint16_t *kr = kk + ((size_t)h * SQ + j) * D;
        double dot = 0;
        for (int d = 0; d < D; d++)
          dot += unbf16(qr[d]) * unbf16(kr[d]);
        sc[j] = dot * scale;
        mx = fmax(mx, sc[j]);
      }
      for (int j = 0; j < SQ; j++)
        sum += sc[j] = exp(sc[j] - mx);
      for (int d = 0; d < D; d++) {
        double ref = 0;
        for (int j = 0; j < SQ; j++)
          ref += sc[j] * unbf16(v[((size_t)h * SQ + j) * D + d]);
        ref /= sum;
        double got = unbf16(o1[((size_t)h * SQ + r) * D + d]);
        double err = fabs(got - ref);
        maxerr = fmax(maxerr, err);
        bad += err > 0.01 * fabs(ref) + 2e-3;
      }
    }
  CHECK_EQ_INT(0, bad);
  CHECK(maxerr > 0); /* the comparison is not vacuous */
  free(q);
  free(kk);
  free(v);
  free(o1);
  free(o2);
  ir_kernel_free(k);
}

/* Kernels the verifier would reject still give errors, not crashes. */
static void test_malformed(void) {
  ir_expr *sym_dim[1];
  begin("symbolic");
  int bs = irb_tunable(bld, "BS", 16, (int64_t[]){16}, 1);
  grid1(ir_expr_int(ar, 1));
  sym_dim[0] = ir_expr_sym(ar, bs);
  E0(IR_OP_ZEROS, ir_type_tile(ar, S(IR_F32), 1, sym_dim));
  ir_kernel *k = finish();
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, NULL, 0, 1));
  CHECK_CONTAINS(diag.msg, "not specialized");
  ir_kernel_free(k);

  begin("shapes");
  grid1(ir_expr_int(ar, 1));
  E(ADD, tile(IR_F32, 8, 0), E0(IR_OP_ZEROS, tile(IR_F32, 4, 0)),
    E0(IR_OP_ZEROS, tile(IR_F32, 8, 0)));
  k = finish();
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, NULL, 0, 1));
  CHECK_CONTAINS(diag.msg, "operand shapes do not match the result in 'add'");
  ir_kernel_free(k);

  begin("indices");
  ir_value *X = irb_tensor_arg(bld, "X", ARG_IN, S(IR_F32), 2, (const char *[]){"4", "4"});
  grid1(ir_expr_int(ar, 1));
  E(LOAD, tile(IR_F32, 4, 4), X, ci(0, IR_I32));
  k = finish();
  float xs[20] = {0};
  ir_argval args[1] = {tensor(xs, 16, 2, 4, 4, 0, 0)};
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, args, 1, 1));
  CHECK_CONTAINS(diag.msg, "needs 2 indices");
  args[0] = tensor(xs, 20, 2, 4, 5, 0, 0);
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, args, 1, 1));
  CHECK_CONTAINS(diag.msg, "tensor 'X' dim 1 is 5 but the kernel expects 4");
  ir_kernel_free(k);

  begin("scope");
  grid1(ir_expr_int(ar, 1));
  ir_value *z = ci(0, IR_I32);
  irb_for(bld, z, ci(4, IR_I32), ci(1, IR_I32), NULL, 0, NULL);
  ir_value *inner = E(ADD, S(IR_I32), z, z);
  emit(IR_OP_YIELD, NULL, 0, none);
  irb_end(bld);
  E(ADD, S(IR_I32), inner, z); /* a body value used after the loop */
  k = finish();
  CHECK_EQ_INT(IR_ERR_RUNTIME, run(k, NULL, 0, 1));
  CHECK_CONTAINS(diag.msg, "outside its scope");
  ir_kernel_free(k);
}

int main(void) {
  test_axpy();
  test_matmul();
  test_matmul_threads();
  test_masked_pointers();
  test_reduce_softmax();
  test_cast_bf16();
  test_control();
  test_div_by_zero();
  test_error_order();
  test_attention();
  test_malformed();
  TEST_MAIN_END();
}
