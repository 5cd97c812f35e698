/* tests/unit/parse_roundtrip.c — print(parse(text)) is canonical and a fixed point.
 *
 * For every .tile under kernels/, examples/, tests/ir/ and tests/ptx/ (recursively, when they
 * exist): parse, print, parse the print, print again; both prints must be equal. Inline kernels
 * cover every op and syntax form and must print exactly as written (they are canonical), loose
 * formatting must print canonically, expressions must keep their trees with minimal
 * parentheses, floats must read back bit for bit, and a kernel built through irb_* (unnamed
 * values) must print names that do not collide.
 * Usage: unit_parse_roundtrip [SOURCE_ROOT] (default: $TILEC_SOURCE_DIR, then TILEC_SOURCE_DIR).
 */
#define _POSIX_C_SOURCE 200809L
#include "ir.h"
#include "check.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef TILEC_SOURCE_DIR
#define TILEC_SOURCE_DIR "."
#endif

/* Parses text, failing the check with the diagnostic when it does not parse. */
static ir_kernel *parse(const char *text, size_t len, const char *file) {
  ir_kernel *k = NULL;
  ir_diag d;
  ir_status s = ir_parse(text, len, file, &k, &d);
  if (!CHECK(s == IR_OK))
    fprintf(stderr, "  %s\n", d.msg);
  return k;
}

/* Parses, prints, re-parses, re-prints; returns the first print (caller frees) or NULL. */
static char *roundtrip(const char *text, size_t len, const char *file) {
  ir_kernel *k = parse(text, len, file);
  if (!k)
    return NULL;
  char *p1 = ir_print(k);
  ir_kernel_free(k);
  if (!CHECK(p1 != NULL))
    return NULL;
  ir_kernel *k2 = parse(p1, strlen(p1), "printed");
  if (!k2) {
    fprintf(stderr, "  while re-parsing the print of %s:\n%s", file, p1);
    free(p1);
    return NULL;
  }
  char *p2 = ir_print(k2);
  ir_kernel_free(k2);
  if (!CHECK(p2 != NULL && strcmp(p1, p2) == 0))
    fprintf(stderr, "  %s: print is not a fixed point\n--- first\n%s--- second\n%s", file, p1,
            p2 ? p2 : "(null)");
  free(p2);
  return p1;
}

/* The text must be canonical: it prints exactly as written. */
static void canonical(const char *text) {
  char *p = roundtrip(text, strlen(text), "inline.tile");
  if (p)
    CHECK_EQ_STR(text, p);
  free(p);
}

/* Loose text prints as want. */
static void prints_as(const char *text, const char *want) {
  char *p = roundtrip(text, strlen(text), "inline.tile");
  if (p)
    CHECK_EQ_STR(want, p);
  free(p);
}

/* ---- files ---------------------------------------------------------------------------- */

static int nfiles;

static void one_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!CHECK(f != NULL))
    return;
  size_t cap = 1 << 16, n = 0, got;
  char *buf = malloc(cap);
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap)
      buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  REQUIRE(buf != NULL);
  free(roundtrip(buf, n, path));
  free(buf);
  nfiles++;
}

static void scan(const char *dir) {
  DIR *dp = opendir(dir);
  if (!dp)
    return;
  struct dirent *de;
  while ((de = readdir(dp)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    char path[4096];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path ||
        stat(path, &st) != 0)
      continue;
    size_t l = strlen(de->d_name);
    if (S_ISDIR(st.st_mode) && strcmp(de->d_name, "errors") != 0)
      scan(path);
    else if (S_ISREG(st.st_mode) && l > 5 && strcmp(de->d_name + l - 5, ".tile") == 0)
      one_file(path);
  }
  closedir(dp);
}

static void files(const char *root) {
  static const char *const dirs[] = {"kernels", "examples", "tests/ir", "tests/ptx"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s/%s", root, dirs[i]) < (int)sizeof dir)
      scan(dir);
  }
  fprintf(stderr, "parse_roundtrip: %d .tile files\n", nfiles);
}

/* ---- inline kernels ------------------------------------------------------------------- */

static const char *AXPY = "kernel axpy\n"
                          "tunables {\n"
                          "  BLOCK = 256 in [128, 256, 512]\n"
                          "}\n"
                          "constraints {\n"
                          "  BLOCK % 128 == 0\n"
                          "}\n"
                          "args (%X: tensor<f32>[N], %Y: inout tensor<f32>[N], alpha: f32)\n"
                          "grid (cdiv(N, BLOCK))\n"
                          "{\n"
                          "  %pid = program_id 0 : i32\n"
                          "  %bs = const BLOCK : i32\n"
                          "  %off = mul %pid, %bs : i32\n"
                          "  %x = load %X[%off] : tile<BLOCK, f32>\n"
                          "  %y = load %Y[%off] : tile<BLOCK, f32>\n"
                          "  %a = const alpha : f32\n"
                          "  %ax = mul %x, %a : tile<BLOCK, f32>\n"
                          "  %r = add %ax, %y : tile<BLOCK, f32>\n"
                          "  store %Y[%off], %r\n"
                          "}\n";

/* Every op, every header section, ptr args, const params with defaults, nested regions. */
static const char *SINK =
    "kernel sink\n"
    "types {\n"
    "  TA in [bf16, f16, f32]\n"
    "  TB in [f8e4m3, f8e5m2]\n"
    "}\n"
    "tunables {\n"
    "  BM = 64 in [32, 64, 128]\n"
    "  BN = 32 in [32, 64]\n"
    "  BK = 16 in [16, 32]\n"
    "  NEG = -1 in [-1, 0, 1]\n"
    "}\n"
    "constraints {\n"
    "  BM % BN == 0\n"
    "  causal == 0 || BM == BN\n"
    "  -BM < 0 && !(BK > 64)\n"
    "  min(BM, BN) >= 16 && max(BM, BK) <= 128\n"
    "  (BM + BN) * 2 - BK / (BN - BK) != 7 % BK\n"
    "  BM - (BN - BK) > -1\n"
    "}\n"
    "args (%A: tensor<TA>[M, K], %B: tensor<TA>[K, N], %C: out tensor<f32>[M, N], %idx: ptr<i32>, "
    "%D: inout tensor<f32>[B2, 4, M, N], %E: tensor<TB>[8], scale: f32, n: i64, "
    "causal: const i32 = 0, window: const i64)\n"
    "grid (cdiv(M, BM), cdiv(N, BN), 1)\n"
    "{\n"
    "  %pm = program_id 0 : i32\n"
    "  %pn = program_id 1 : i32\n"
    "  %np = num_programs 2 : i32\n"
    "  %bm = const BM : i32\n"
    "  %m0 = mul %pm, %bm : i32\n"
    "  %bn = const BN : i32\n"
    "  %n0 = mul %pn, %bn : i32\n"
    "  %z = zeros : tile<BM, BN, f32>\n"
    "  %zero = const 0 : i32\n"
    "  %kt = const K : i32\n"
    "  %bk = const BK : i32\n"
    "  %s = const scale * 1.4426950408889634 : f32\n"
    "  %ninf = const -inf : f32\n"
    "  %h = const 0.5 : TA\n"
    "  %acc, %mx = for %k = %zero to %kt step %bk iter(%a = %z, %m = %z) : tile<BM, BN, f32>, "
    "tile<BM, BN, f32> {\n"
    "    %ta = load %A[%m0, %k] : tile<BM, BK, TA>\n"
    "    %tb = load %B[%k, %n0] fill -inf : tile<BK, BN, TA>\n"
    "    %d = dot %ta, %tb, %a : tile<BM, BN, f32>\n"
    "    %mm = max %m, %d : tile<BM, BN, f32>\n"
    "    yield %d, %mm\n"
    "  }\n"
    "  %r = arange 0, BM : tile<BM, i32>\n"
    "  %r2 = arange BM * 2, BM * 3 : tile<(BM * 3 - BM * 2), i32>\n"
    "  %e = expand_dims %r, 1 : tile<BM, 1, i32>\n"
    "  %bc = broadcast %e : tile<BM, BN, i32>\n"
    "  %f = cast %bc : tile<BM, BN, f32>\n"
    "  %t1 = add %acc, %f : tile<BM, BN, f32>\n"
    "  %t2 = sub %t1, %mx : tile<BM, BN, f32>\n"
    "  %t3 = mul %t2, %s : tile<BM, BN, f32>\n"
    "  %t4 = div %t3, %s : tile<BM, BN, f32>\n"
    "  %t5 = exp2 %t4 : tile<BM, BN, f32>\n"
    "  %t6 = exp %t5 : tile<BM, BN, f32>\n"
    "  %t7 = log %t6 : tile<BM, BN, f32>\n"
    "  %t8 = log2 %t7 : tile<BM, BN, f32>\n"
    "  %t9 = sqrt %t8 : tile<BM, BN, f32>\n"
    "  %t10 = rsqrt %t9 : tile<BM, BN, f32>\n"
    "  %t11 = neg %t10 : tile<BM, BN, f32>\n"
    "  %t12 = abs %t11 : tile<BM, BN, f32>\n"
    "  %t13 = min %t12, %t1 : tile<BM, BN, f32>\n"
    "  %full = full %ninf : tile<BM, BN, f32>\n"
    "  %mask = cmp lt %t13, %full : tile<BM, BN, i1>\n"
    "  %sel = select %mask, %t13, %full : tile<BM, BN, f32>\n"
    "  %red = reduce sum %sel, 1 : tile<BM, f32>\n"
    "  %redm = reduce max %sel, 0 : tile<BN, f32>\n"
    "  %redn = reduce min %sel, 0 : tile<BN, f32>\n"
    "  %i1 = rem %bc, %bc : tile<BM, BN, i32>\n"
    "  %i2 = cdiv %i1, %bc : tile<BM, BN, i32>\n"
    "  %i3 = and %i2, %i1 : tile<BM, BN, i32>\n"
    "  %i4 = or %i3, %i1 : tile<BM, BN, i32>\n"
    "  %i5 = xor %i4, %i1 : tile<BM, BN, i32>\n"
    "  %i6 = shl %i5, %i1 : tile<BM, BN, i32>\n"
    "  %i7 = shr %i6, %i1 : tile<BM, BN, i32>\n"
    "  %rs = reshape %i7 : tile<BN, BM, i32>\n"
    "  %tr = trans %rs : tile<BM, BN, i32>\n"
    "  %p = addptr %idx, %r : tile<BM, ptr<i32>>\n"
    "  %pm1 = cmp ge %r, %r : tile<BM, i1>\n"
    "  %pm2 = cmp le %r, %r : tile<BM, i1>\n"
    "  %pm3 = cmp gt %r, %r : tile<BM, i1>\n"
    "  %lp = load_ptr %p : tile<BM, i32>\n"
    "  %lp2 = load_ptr %p, %pm1 : tile<BM, i32>\n"
    "  %lp3 = load_ptr %p, %pm1, %lp : tile<BM, i32>\n"
    "  %one = load_ptr %idx : i32\n"
    "  store_ptr %p, %lp3\n"
    "  store_ptr %p, %lp3, %pm1\n"
    "  %c = cmp eq %pm, %zero : i1\n"
    "  %v = if %c : i32 {\n"
    "    %w = add %pm, %one : i32\n"
    "    yield %w\n"
    "  } else {\n"
    "    yield %zero\n"
    "  }\n"
    "  if %c {\n"
    "    %x, %y = for %j = %zero to %v step %one iter(%xa = %zero, %ya = %one) : i32, i32 {\n"
    "      %xb = add %xa, %j : i32\n"
    "      %cc = cmp ne %xb, %ya : i1\n"
    "      %ys = if %cc : i32 {\n"
    "        yield %xb\n"
    "      } else {\n"
    "        yield %ya\n"
    "      }\n"
    "      yield %xb, %ys\n"
    "    }\n"
    "    for %jj = %zero to %x step %one {\n"
    "      if %c {\n"
    "        yield\n"
    "      } else {\n"
    "        yield\n"
    "      }\n"
    "      yield\n"
    "    }\n"
    "    store %C[%m0, %n0], %acc\n"
    "    yield\n"
    "  }\n"
    "  store %D[%zero, %zero, %m0, %n0], %t13\n"
    "}\n";

static const char *MINIMAL = "kernel nothing\n"
                             "args ()\n"
                             "grid (1)\n"
                             "{\n"
                             "}\n";

/* Comments, blank lines, CRLF, tabs, newlines inside brackets, "%128" as modulo, redundant
 * parentheses and float spellings are accepted and printed canonically. */
static const char *LOOSE = "# a comment before the kernel\n"
                           "\n"
                           "kernel   loose   # trailing comment\n"
                           "tunables {   # comment after a brace\n"
                           "\n"
                           "  B = 4 in [ 4 ,\n"
                           "            8 ]\n"
                           "}\n"
                           "constraints {\n"
                           "  (B%4) == ((0))\r\n"
                           "  B %4 == 0 && B%B == 0\n"
                           "}\n"
                           "args (\n"
                           "  %X : tensor< f32 >[ N ],\n"
                           "  n\t: i32\n"
                           ")\n"
                           "grid ( cdiv( N,\n"
                           "             B ) )\n"
                           "{\n"
                           "\n"
                           "  %i = program_id 0:i32   # comment\n"
                           "  %f = const 1e0 : f32\n"
                           "  %g = const 2.50E+01 : f32\n"
                           "  %h = const -(1) : i32\n"
                           "  %x = load %X[ %i ] fill 0.0 : tile< (B) , f32 >\n"
                           "}\n";

static const char *LOOSE_CANON = "kernel loose\n"
                                 "tunables {\n"
                                 "  B = 4 in [4, 8]\n"
                                 "}\n"
                                 "constraints {\n"
                                 "  B % 4 == 0\n"
                                 "  B % 4 == 0 && B % B == 0\n"
                                 "}\n"
                                 "args (%X: tensor<f32>[N], n: i32)\n"
                                 "grid (cdiv(N, B))\n"
                                 "{\n"
                                 "  %i = program_id 0 : i32\n"
                                 "  %f = const 1.0 : f32\n"
                                 "  %g = const 25.0 : f32\n"
                                 "  %h = const -1 : i32\n"
                                 "  %x = load %X[%i] fill 0.0 : tile<B, f32>\n"
                                 "}\n";

static void inline_kernels(void) {
  canonical(AXPY);
  canonical(SINK);
  canonical(MINIMAL);
  prints_as(LOOSE, LOOSE_CANON);
  /* Names: region names may be reused after their region; results named like inner values. */
  canonical("kernel scopes\n"
            "args ()\n"
            "grid (1)\n"
            "{\n"
            "  %c = const 1 : i1\n"
            "  %a = if %c : i32 {\n"
            "    %a = const 1 : i32\n"
            "    yield %a\n"
            "  } else {\n"
            "    %a = const 2 : i32\n"
            "    yield %a\n"
            "  }\n"
            "  %n.1 = const 3 : i32\n"
            "  %0 = const 4 : i32\n"
            "}\n");
}

/* ---- expressions ---------------------------------------------------------------------- */

/* Prints the kernel's constraint for `expr` with tunables a, b, c, d. */
static void expr_prints(const char *text, const char *want) {
  char src[1024];
  snprintf(src, sizeof src,
           "kernel e\ntunables {\n  a = 1 in [1]\n  b = 1 in [1]\n  c = 1 in [1]\n"
           "  d = 1 in [1]\n}\nconstraints {\n  %s\n}\nargs ()\ngrid (1)\n{\n}\n",
           text);
  ir_kernel *k = parse(src, strlen(src), "expr.tile");
  if (!k)
    return;
  char buf[512];
  ir_expr_print(k, k->constraints[0], buf, sizeof buf);
  CHECK_EQ_STR(want, buf);
  /* The print parses to the same tree. */
  snprintf(src, sizeof src,
           "kernel e\ntunables {\n  a = 1 in [1]\n  b = 1 in [1]\n  c = 1 in [1]\n"
           "  d = 1 in [1]\n}\nconstraints {\n  %s\n}\nargs ()\ngrid (1)\n{\n}\n",
           buf);
  ir_kernel *k2 = parse(src, strlen(src), "expr2.tile");
  if (k2 && !CHECK(ir_expr_equal(k->constraints[0], k2->constraints[0])))
    fprintf(stderr, "  tree of '%s' changed after printing\n", text);
  ir_kernel_free(k2);
  ir_kernel_free(k);
}

static void expressions(void) {
  expr_prints("a + b * c", "a + b * c");
  expr_prints("(a + b) * c", "(a + b) * c");
  expr_prints("a - (b - c)", "a - (b - c)");
  expr_prints("(a - b) - c", "a - b - c");
  expr_prints("a / (b * c)", "a / (b * c)");
  expr_prints("(a * b) % c", "a * b % c");
  expr_prints("a % (b / c)", "a % (b / c)");
  expr_prints("a < b == c > d", "a < b == c > d");
  expr_prints("(a == b) < c", "(a == b) < c");
  expr_prints("a || b && c", "a || b && c");
  expr_prints("(a || b) && c", "(a || b) && c");
  expr_prints("a && (b || c) || d", "a && (b || c) || d");
  expr_prints("a != b <= c >= d", "a != b <= c >= d");
  expr_prints("a != (b != c)", "a != (b != c)");
  expr_prints("!(a < b)", "!(a < b)");
  expr_prints("!!a", "!!a");
  expr_prints("-(a + b)", "-(a + b)");
  expr_prints("-a * -b", "-a * -b");
  expr_prints("- -a", "--a");
  expr_prints("- -5", "--5");
  expr_prints("a - -5", "a - -5");
  expr_prints("-5 - a", "-5 - a");
  expr_prints("-9223372036854775808", "-9223372036854775808");
  expr_prints("9223372036854775807", "9223372036854775807");
  expr_prints("cdiv(a + 1, max(b, -c)) * min(1, d)", "cdiv(a + 1, max(b, -c)) * min(1, d)");
  expr_prints("a*2.5", "a * 2.5");
  expr_prints("a * -inf + nan", "a * -inf + nan");
  /* A '-' before 0 or nan stays an operator: folded, it would print without the '-'. */
  expr_prints("-0", "-0");
  expr_prints("- -0", "--0");
  expr_prints("a - -0", "a - -0");
  expr_prints("-nan", "-nan");
  expr_prints("- - nan", "--nan");
  expr_prints("((((a))))", "a");
}

/* Float literals print in a form that reads back to the same double. */
static void floats(void) {
  static const double vals[] = {0.0,
                                -0.0,
                                1.0,
                                -1.0,
                                0.1,
                                1.0 / 3.0,
                                1e-300,
                                5e-324,
                                1e300,
                                1e15,
                                999999999999999.0,
                                1e16,
                                123456789012345678.0,
                                2.5e-5,
                                1.7976931348623157e308,
                                -2.2250738585072014e-308,
                                3.0e-8,
                                1024.5};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    char src[512];
    snprintf(src, sizeof src, "kernel f\nargs ()\ngrid (1)\n{\n  %%c = const %.17e : f64\n}\n",
             vals[i]);
    ir_kernel *k = parse(src, strlen(src), "float.tile");
    if (!k)
      continue;
    char *p = ir_print(k);
    ir_kernel *k2 = p ? parse(p, strlen(p), "float2.tile") : NULL;
    if (k2) {
      double a = k->body->first->ex[0]->f, b = k2->body->first->ex[0]->f;
      if (!CHECK(memcmp(&a, &b, sizeof a) == 0))
        fprintf(stderr, "  %.17g printed as\n%s", vals[i], p);
      CHECK(k2->body->first->ex[0]->kind == EX_FLOAT);
    }
    ir_kernel_free(k2);
    ir_kernel_free(k);
    free(p);
  }
  /* Spot checks of the shortest forms. */
  expr_prints("0.1", "0.1");
  expr_prints("1e15", "1e+15");
  expr_prints("123456789012345.0", "123456789012345.0");
  expr_prints("1e16", "1e+16");
  expr_prints("1.0e-7", "1e-07");
  expr_prints("-0.0", "-0.0");
  expr_prints("3.0", "3.0");
}

/* ---- a kernel built through irb_* -------------------------------------------------------- */

static void built(void) {
  ir_builder *b = irb_new("built", "built.c");
  ir_arena *a = irb_arena(b);
  const ir_type *i32 = ir_scalar_type(IR_I32), *f32 = ir_scalar_type(IR_F32);
  int bm = irb_tunable(b, "BM", 64, (const int64_t[]){64, 128}, 2);
  ir_value *x = irb_tensor_arg(b, "X", ARG_IN, f32, 1, (const char *const[]){"N"});
  int n = ir_sym_find(irb_kernel(b), "N", 1);
  irb_grid(b, 1,
           (ir_expr *const[]){ir_expr_bin(a, EXO_CDIV, ir_expr_sym(a, n), ir_expr_sym(a, bm))});
  ir_value *none[1] = {NULL};
  ir_op *pid = irb_op(b, IR_OP_PROGRAM_ID, none, 0, &i32, 1);
  ir_op *c = irb_op(b, IR_OP_CONST, none, 0, &i32, 1);
  c->ex[0] = ir_expr_sym(a, bm);
  irb_name(b, c->results[0], "v1"); /* the name the printer would invent for pid's result */
  ir_value *ops[2] = {pid->results[0], c->results[0]};
  ir_op *off = irb_op(b, IR_OP_MUL, ops, 2, &i32, 1);
  ir_expr *d[1] = {ir_expr_sym(a, bm)};
  const ir_type *tile = ir_type_tile(a, f32, 1, d);
  ir_value *lops[2] = {x, off->results[0]};
  ir_op *ld = irb_op(b, IR_OP_LOAD, lops, 2, &tile, 1);
  ir_op *loop =
      irb_for(b, pid->results[0], off->results[0], c->results[0], &ld->results[0], 1, &tile);
  ir_value *y = loop->regions[0]->args[1];
  irb_op(b, IR_OP_YIELD, &y, 1, NULL, 0);
  irb_end(b);
  ir_kernel *k = NULL;
  ir_diag diag;
  if (!CHECK(irb_finish(b, &k, &diag) == IR_OK)) {
    fprintf(stderr, "  %s\n", diag.msg);
    return;
  }
  char *p = ir_print(k);
  CHECK_EQ_STR("kernel built\n"
               "tunables {\n"
               "  BM = 64 in [64, 128]\n"
               "}\n"
               "args (%X: tensor<f32>[N])\n"
               "grid (cdiv(N, BM))\n"
               "{\n"
               "  %v1_1 = program_id 0 : i32\n"
               "  %v1 = const BM : i32\n"
               "  %v3 = mul %v1_1, %v1 : i32\n"
               "  %v4 = load %X[%v3] : tile<BM, f32>\n"
               "  %v5 = for %v6 = %v1_1 to %v3 step %v1 iter(%v7 = %v4) : tile<BM, f32> {\n"
               "    yield %v7\n"
               "  }\n"
               "}\n",
               p);
  if (p)
    free(roundtrip(p, strlen(p), "built.tile"));
  free(p);

  char buf[64];
  ir_type_print(k, k->args[0].value->ty, buf, sizeof buf);
  CHECK_EQ_STR("tensor<f32>[N]", buf);
  ir_type_print(k, ir_type_ptr(k->arena, tile), buf, sizeof buf);
  CHECK_EQ_STR("ptr<tile<BM, f32>>", buf);
  ir_type_print(k, tile, buf, 8); /* truncated, still terminated */
  CHECK_EQ_STR("tile<BM", buf);
  ir_expr_print(k, k->grid[0], buf, sizeof buf);
  CHECK_EQ_STR("cdiv(N, BM)", buf);
  ir_kernel_free(k);
}

/* The parsed kernel has the structure the text describes (a spot check of the builder calls). */
static void structure(void) {
  ir_kernel *k = parse(SINK, strlen(SINK), "sink.tile");
  if (!k)
    return;
  CHECK_EQ_INT(2, k->ntvars);
  CHECK_EQ_INT(6, k->nconstraints);
  CHECK_EQ_INT(10, k->nargs);
  CHECK_EQ_INT(3, k->ngrid);
  CHECK(k->source != NULL && strcmp(k->source, SINK) == 0);
  CHECK_EQ_STR("sink.tile", k->file);
  int causal = ir_sym_find(k, "causal", 6);
  if (CHECK(causal >= 0)) {
    CHECK_EQ_INT(SYM_CONST, k->syms[causal].kind);
    CHECK(k->syms[causal].has_default);
  }
  CHECK_EQ_INT(SYM_DIM, k->syms[ir_sym_find(k, "B2", 2)].kind);
  CHECK_EQ_INT(SYM_TUNABLE, k->syms[ir_sym_find(k, "NEG", 3)].kind);
  CHECK_EQ_INT(-1, k->syms[ir_sym_find(k, "NEG", 3)].def.i);
  const ir_op *op = k->body->first;
  CHECK_EQ_INT(IR_OP_PROGRAM_ID, op->code);
  CHECK_EQ_INT(23, op->loc.line); /* located at the keyword */
  CHECK_EQ_INT(9, op->loc.col);
  int nfor = 0;
  for (; op; op = op->next)
    if (op->code == IR_OP_FOR && nfor++ == 0) {
      CHECK_EQ_INT(5, op->nopnd);
      CHECK_EQ_INT(2, op->nres);
      CHECK_EQ_INT(3, op->regions[0]->nargs);
      CHECK_EQ_STR("k", op->regions[0]->args[0]->name);
      CHECK_EQ_STR("a", op->regions[0]->args[1]->name);
      CHECK_EQ_STR("acc", op->results[0]->name);
      CHECK_EQ_INT(IR_OP_YIELD, op->regions[0]->last->code);
    } else if (op->code == IR_OP_LOAD_PTR && op->nopnd == 3) {
      CHECK_EQ_STR("lp3", op->results[0]->name);
    } else if (op->code == IR_OP_CMP) {
      CHECK(op->sub >= IR_CMP_EQ && op->sub <= IR_CMP_GE);
    }
  CHECK_EQ_INT(1, nfor);
  ir_kernel_free(k);
}

int main(int argc, char **argv) {
  const char *root = argc > 1 ? argv[1] : getenv("TILEC_SOURCE_DIR");
  if (!root)
    root = TILEC_SOURCE_DIR;
  files(root);
  inline_kernels();
  expressions();
  floats();
  built();
  structure();
  TEST_MAIN_END();
}
