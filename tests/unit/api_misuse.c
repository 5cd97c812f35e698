/* tests/unit/api_misuse.c — the public API refuses misuse with the right status and a useful
 * message, and never crashes: NULL handles and pointers, wrong struct sizes, unknown kernels,
 * bad shapes and configs, wrong launch arguments, a missing driver. Also the IR builder (a
 * built kernel equals its parsed text) and layouts on a NO_GPU context. No driver is loaded:
 * TILEC_LIBCUDA points nowhere, so this runs the same on GPU machines. Run under ASan by the
 * sanitizer CI job: no leaks.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/unit/api_check.h"
#include "tests/unit/check.h"
#include "tilec/tilec.h"

static tilec_context *nogpu(unsigned flags) {
  tilec_context_opts o;
  tilec_context_opts_init(&o);
  o.flags = TILEC_CONTEXT_NO_GPU | TILEC_CONTEXT_NO_DB | flags;
  o.arch = "sm_90";
  tilec_context *c = NULL;
  CHECK_STATUS(TILEC_OK, tilec_context_create(&o, &c));
  return c;
}

static void test_basics(void) {
  CHECK_EQ_STR(TILEC_VERSION_STRING, tilec_version());
  CHECK_EQ_STR("ok", tilec_status_name(TILEC_OK));
  CHECK_EQ_STR("not_found", tilec_status_name(TILEC_ERR_NOT_FOUND));
  CHECK_EQ_STR("internal", tilec_status_name(TILEC_ERR_INTERNAL));
  CHECK_EQ_STR("unknown", tilec_status_name((tilec_status)999));
  /* destroy(NULL) is a no-op everywhere */
  tilec_context_destroy(NULL);
  tilec_kernel_release(NULL);
  tilec_layout_destroy(NULL);
  tilec_ir_destroy(NULL);
  tilec_builder_abort(NULL);
  tilec_tuner_destroy(NULL);
  CHECK(tilec_kernel_retain(NULL) == NULL);
}

static void test_context_misuse(void) {
  tilec_context *c = (tilec_context *)1;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_context_create(NULL, NULL));
  tilec_context_opts o;
  tilec_context_opts_init(&o);
  o.size = 8; /* a struct from nowhere */
  CHECK_STATUS(TILEC_ERR_ARG, tilec_context_create(&o, &c));
  CHECK(c == NULL);
  CHECK_CONTAINS(tilec_errmsg(NULL), "size is 8");
  tilec_context_opts_init(&o);
  o.size = sizeof o + 64; /* a newer header than this library */
  CHECK_STATUS(TILEC_ERR_ARG, tilec_context_create(&o, &c));
  tilec_context_opts_init(&o);
  o.flags = 1u << 20;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_context_create(&o, &c));
  CHECK_CONTAINS(tilec_errmsg(NULL), "unknown flags");
  tilec_context_opts_init(&o);
  o.flags = TILEC_CONTEXT_NO_GPU; /* without an arch */
  CHECK_STATUS(TILEC_ERR_ARG, tilec_context_create(&o, &c));
  CHECK_CONTAINS(tilec_errmsg(NULL), "arch");
  o.arch = "sm_12";
  o.flags |= TILEC_CONTEXT_NO_DB;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_context_create(&o, &c));
  CHECK_CONTAINS(tilec_errmsg(NULL), "sm_12");
  tilec_context_opts_init(&o);
  o.cache_capacity = -1;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_context_create(&o, &c));
  tilec_context_opts_init(&o);
  o.tune = TILEC_TUNE_SYNC;
  o.flags = TILEC_CONTEXT_READONLY;
  CHECK_STATUS(TILEC_ERR_READONLY, tilec_context_create(&o, &c));
  CHECK_CONTAINS(tilec_errmsg(NULL), "read-only");
  /* no driver: TILEC_LIBCUDA points nowhere */
  tilec_context_opts_init(&o);
  o.flags = TILEC_CONTEXT_NO_DB;
  CHECK_STATUS(TILEC_ERR_NO_DRIVER, tilec_context_create(&o, &c));
  CHECK_CONTAINS(tilec_errmsg(NULL), "no CUDA driver");
  o.flags = TILEC_CONTEXT_NO_DB | TILEC_CONTEXT_ADOPT;
  CHECK_STATUS(TILEC_ERR_NO_DRIVER, tilec_context_create(&o, &c));
  o.device = -3;
  CHECK_STATUS(TILEC_ERR_NO_DEVICE, tilec_context_create(&o, &c));

  CHECK_STATUS(TILEC_ERR_ARG, tilec_context_set_cache_capacity(NULL, 4));
  CHECK_STATUS(TILEC_ERR_ARG, tilec_context_info_get(NULL, NULL));
  tilec_context *ctx = nogpu(0);
  if (!ctx)
    return;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_context_set_cache_capacity(ctx, 0));
  tilec_context_info info = {0};
  CHECK_STATUS(TILEC_ERR_ARG, tilec_context_info_get(ctx, &info)); /* size 0 */
  info.size = sizeof info;
  CHECK_STATUS(TILEC_OK, tilec_context_info_get(ctx, &info));
  CHECK_EQ_STR("compile-only|sm_90", info.device);
  CHECK_EQ_STR("sm_90", info.arch);
  CHECK_CONTAINS(info.toolchain, "tilec " TILEC_VERSION_STRING "|llvm ");
  CHECK_EQ_STR("", info.db_path);
  CHECK_EQ_INT(1, info.readonly);
  tilec_context_destroy(ctx);
}

static void test_kernel_misuse(void) {
  tilec_context *ctx = nogpu(0);
  if (!ctx)
    return;
  tilec_kernel *k = (tilec_kernel *)1;
  tilec_kernel_request r;
  tilec_kernel_request_init(&r);
  CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_get(ctx, &r, NULL));
  CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_get(NULL, &r, &k));
  CHECK(k == NULL);
  CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_get(ctx, NULL, &k));
  CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_get(ctx, &r, &k)); /* no kernel at all */
  CHECK_CONTAINS(tilec_errmsg(ctx), "exactly one of kernel, source and ir");
  r.kernel = "matmul";
  r.source = "kernel x";
  CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_get(ctx, &r, &k));
  r.source = NULL;
  r.size = 3;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_get(ctx, &r, &k));
  r.size = sizeof r;
  r.kernel = "matmool";
  CHECK_STATUS(TILEC_ERR_NOT_FOUND, tilec_kernel_get(ctx, &r, &k));
  CHECK_CONTAINS(tilec_errmsg(ctx), "'matmool' is not a built-in");
  r.kernel = "matmul";
  r.shape = "M=64,N=64,K";
  CHECK_STATUS(TILEC_ERR_SHAPE, tilec_kernel_get(ctx, &r, &k));
  CHECK_CONTAINS(tilec_errmsg(ctx), "shape");
  r.shape = "M=64,N=64,K=64";
  r.dtype = "complex128";
  CHECK_STATUS(TILEC_ERR_SHAPE, tilec_kernel_get(ctx, &r, &k));
  r.dtype = NULL;
  r.config = "BM=100";
  CHECK_STATUS(TILEC_ERR_SHAPE, tilec_kernel_get(ctx, &r, &k));
  CHECK_CONTAINS(tilec_errmsg(ctx), "BM");
  r.config = "BM=";
  CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_get(ctx, &r, &k));
  r.config = "BM=256,BN=256,WARPS=1";
  CHECK_STATUS(TILEC_ERR_SHAPE, tilec_kernel_get(ctx, &r, &k));
  CHECK_CONTAINS(tilec_errmsg(ctx), "constraint");
  r.config = NULL;
  r.kernel = NULL;
  r.source = "kernel broken {";
  CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_get(ctx, &r, &k));
  CHECK_CONTAINS(tilec_errmsg(ctx), "<source>:1:");
  CHECK(k == NULL);

  /* info, values, launches of a good kernel */
  tilec_kernel_request_init(&r);
  r.kernel = "matmul";
  r.shape = "M=64,N=64,K=64";
  r.config = "BM=64,BN=64,BK=32,WARPS=4,STAGES=2,GROUP_M=1";
  tilec_status s = tilec_kernel_get(ctx, &r, &k);
  if (s == TILEC_ERR_NO_TOOLCHAIN) {
    fprintf(stderr, "  (no nvJitLink: compile paths not checked: %s)\n", tilec_errmsg(ctx));
    tilec_context_destroy(ctx);
    return;
  }
  CHECK_STATUS(TILEC_OK, s);
  if (s == TILEC_OK) {
    tilec_kernel_info ki = {.size = 1};
    CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_info_get(k, &ki));
    CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_info_get(NULL, &ki));
    ki.size = sizeof ki;
    CHECK_STATUS(TILEC_OK, tilec_kernel_info_get(k, &ki));
    CHECK_EQ_STR("matmul", ki.name);
    CHECK_CONTAINS(ki.config, "BM=64");
    CHECK_EQ_INT(3, ki.nargs);
    CHECK_EQ_INT(128, ki.threads);
    CHECK_EQ_INT(TILEC_ORIGIN_EXPLICIT, ki.origin);
    int64_t v = 0;
    CHECK_STATUS(TILEC_OK, tilec_kernel_value(k, "BN", &v));
    CHECK_EQ_INT(64, (int)v);
    CHECK_STATUS(TILEC_ERR_NOT_FOUND, tilec_kernel_value(k, "QQ", &v));
    CHECK_STATUS(TILEC_ERR_NOT_FOUND, tilec_kernel_value(k, "B", &v)); /* a prefix of BM */
    CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_value(k, NULL, &v));
    int64_t shp[2] = {64, 64};
    tilec_arg args[3] = {tilec_arg_tensor(0x1000, 2, shp), tilec_arg_tensor(0x2000, 2, shp),
                         tilec_arg_tensor(0x3000, 2, shp)};
    uint32_t grid[3];
    CHECK_STATUS(TILEC_OK, tilec_kernel_grid(k, args, 3, grid));
    CHECK_EQ_INT(1, (int)grid[0]);
    CHECK_STATUS(TILEC_ERR_SHAPE, tilec_kernel_grid(k, args, 2, grid));
    CHECK_CONTAINS(tilec_errmsg(ctx), "takes 3 launch arguments, got 2");
    args[1].shape[0] = 65; /* K differs between A and B */
    CHECK_STATUS(TILEC_ERR_SHAPE, tilec_kernel_grid(k, args, 3, grid));
    CHECK_CONTAINS(tilec_errmsg(ctx), "tensor 'B'");
    args[1].shape[0] = 64;
    args[2].rank = 7;
    CHECK_STATUS(TILEC_ERR_SHAPE, tilec_kernel_grid(k, args, 3, grid));
    args[2] = tilec_arg_int(5);
    CHECK_STATUS(TILEC_ERR_SHAPE, tilec_kernel_grid(k, args, 3, grid));
    CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_grid(k, NULL, 3, grid));
    /* launches on a context without a GPU, or on another context */
    CHECK_STATUS(TILEC_ERR_NO_DRIVER, tilec_launch(ctx, k, args, 3, NULL));
    CHECK_STATUS(TILEC_ERR_ARG, tilec_launch(NULL, k, args, 3, NULL));
    CHECK_STATUS(TILEC_ERR_ARG, tilec_launch(ctx, NULL, args, 3, NULL));
    tilec_context *other = nogpu(0);
    CHECK_STATUS(TILEC_ERR_ARG, tilec_launch(other, k, args, 3, NULL));
    CHECK_CONTAINS(tilec_errmsg(ctx), "another context");
    tilec_context_destroy(other);
    /* the same request again is a hit, and the same kernel */
    tilec_kernel *k2 = NULL;
    CHECK_STATUS(TILEC_OK, tilec_kernel_get(ctx, &r, &k2));
    CHECK(k2 == k);
    tilec_kernel_release(k2);
    /* released after its context: the context lives until then */
    tilec_context_destroy(ctx);
    tilec_kernel_release(k);
    return;
  }
  tilec_context_destroy(ctx);
}

/* One op with up to three operands and one expression attribute. */
static tilec_value *op(tilec_builder *b, const char *kw, const tilec_type *t, tilec_expr *e,
                       tilec_value *a0, tilec_value *a1, tilec_value *a2) {
  tilec_value *v[3] = {a0, a1, a2};
  int n = a2 ? 3 : a1 ? 2 : a0 ? 1 : 0;
  tilec_op o = {.size = sizeof o, .keyword = kw, .operands = v, .noperands = n, .type = t};
  o.expr[0] = e;
  return tilec_builder_op(b, &o);
}

/* axpy.tile, built by calls: prints the same text as the parser's kernel. */
static void test_builder(void) {
  tilec_builder *b = NULL;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_builder_create(NULL, &b));
  CHECK_STATUS(TILEC_ERR_ARG, tilec_builder_create("", &b));
  tilec_ir *none = NULL;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_builder_finish(NULL, &none));
  CHECK_STATUS(TILEC_OK, tilec_builder_create("axpy", &b));
  int64_t dom[] = {128, 256, 512};
  tilec_builder_tunable(b, "BLOCK", 256, dom, 3);
  tilec_builder_constraint(
      b, tilec_expr_op(
             b, "==", tilec_expr_op(b, "%", tilec_expr_sym(b, "BLOCK"), tilec_expr_int(b, 128)),
             tilec_expr_int(b, 0)));
  const tilec_type *f32 = tilec_type_scalar(b, "f32"), *i32 = tilec_type_scalar(b, "i32");
  const char *dims[] = {"N"};
  tilec_value *X = tilec_builder_tensor_arg(b, "X", TILEC_IN, f32, 1, dims);
  tilec_value *Y = tilec_builder_tensor_arg(b, "Y", TILEC_INOUT, f32, 1, dims);
  tilec_builder_param(b, "alpha", "f32", 0, NULL);
  tilec_expr *g = tilec_expr_op(b, "cdiv", tilec_expr_sym(b, "N"), tilec_expr_sym(b, "BLOCK"));
  tilec_builder_grid(b, 1, &g);
  tilec_expr *blk = tilec_expr_sym(b, "BLOCK");
  const tilec_type *tile = tilec_type_tile(b, f32, 1, &blk);
  tilec_value *pid = op(b, "program_id", i32, NULL, NULL, NULL, NULL);
  tilec_value *bs = op(b, "const", i32, tilec_expr_sym(b, "BLOCK"), NULL, NULL, NULL);
  tilec_value *off = op(b, "mul", i32, NULL, pid, bs, NULL);
  tilec_value *x = op(b, "load", tile, NULL, X, off, NULL);
  tilec_value *y = op(b, "load", tile, NULL, Y, off, NULL);
  tilec_value *a = op(b, "const", f32, tilec_expr_sym(b, "alpha"), NULL, NULL, NULL);
  tilec_value *ax = op(b, "mul", tile, NULL, x, a, NULL);
  tilec_value *r = op(b, "add", tile, NULL, ax, y, NULL);
  op(b, "store", NULL, NULL, Y, off, r);
  const char *names[] = {"pid", "bs", "off", "x", "y", "a", "ax", "r"};
  tilec_value *vals[] = {pid, bs, off, x, y, a, ax, r};
  for (int i = 0; i < 8; i++)
    tilec_builder_name(b, vals[i], names[i]);
  tilec_ir *built = NULL, *parsed = NULL;
  CHECK_STATUS(TILEC_OK, tilec_builder_finish(b, &built));
  FILE *f = fopen(TILEC_SOURCE_DIR "/tests/ir/axpy.tile", "rb");
  char text[4096];
  size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
  if (f)
    fclose(f);
  text[n] = 0;
  CHECK_STATUS(TILEC_OK, tilec_ir_parse(text, n, "axpy.tile", &parsed));
  if (built && parsed) {
    char *pb = tilec_ir_print(built), *pp = tilec_ir_print(parsed);
    CHECK_EQ_STR(pp, pb);
    CHECK_EQ_STR("axpy", tilec_ir_name(built));
    free(pb), free(pp);
  }
  /* a built kernel is a kernel like any other: a lookup (NO_GPU: compile only) */
  tilec_context *ctx = nogpu(0);
  if (ctx && built) {
    tilec_kernel_request req;
    tilec_kernel_request_init(&req);
    req.ir = built;
    req.shape = "N=1000";
    tilec_kernel *k = NULL;
    tilec_status s = tilec_kernel_get(ctx, &req, &k);
    CHECK(s == TILEC_OK || s == TILEC_ERR_NO_TOOLCHAIN);
    tilec_kernel_release(k);
    req.shape = "Q=3";
    CHECK_STATUS(TILEC_ERR_SHAPE, tilec_kernel_get(ctx, &req, &k));
    CHECK_CONTAINS(tilec_errmsg(NULL), "'Q' names nothing");
    CHECK(k == NULL); /* a failed get leaves *out NULL */
  }
  tilec_context_destroy(ctx);
  tilec_ir_destroy(built);
  tilec_ir_destroy(parsed);

  /* errors: the first one is kept and reported once */
  CHECK_STATUS(TILEC_OK, tilec_builder_create("bad", &b));
  CHECK(tilec_expr_sym(b, "NOPE") == NULL);
  CHECK(tilec_type_scalar(b, "f32") == NULL); /* later calls do nothing */
  CHECK_STATUS(TILEC_ERR_ARG, tilec_builder_grid(b, 1, NULL));
  CHECK_STATUS(TILEC_ERR_ARG, tilec_builder_finish(b, &built));
  CHECK_CONTAINS(tilec_errmsg(NULL), "'NOPE' is not a declared symbol");
  CHECK_STATUS(TILEC_OK, tilec_builder_create("bad2", &b));
  CHECK(op(b, "frobnicate", NULL, NULL, NULL, NULL, NULL) == NULL);
  CHECK_STATUS(TILEC_ERR_ARG, tilec_builder_finish(b, &built));
  CHECK_CONTAINS(tilec_errmsg(NULL), "'frobnicate' is not an op");
  CHECK_STATUS(TILEC_OK, tilec_builder_create("bad3", &b));
  CHECK(tilec_builder_op(b, &(tilec_op){.size = 4, .keyword = "add"}) == NULL);
  tilec_builder_abort(b);
  CHECK_STATUS(TILEC_ERR_ARG, tilec_ir_parse(NULL, 0, NULL, &parsed));
  CHECK_STATUS(TILEC_ERR_ARG, tilec_ir_parse("kernel", 6, "t.tile", &parsed));
  CHECK_CONTAINS(tilec_errmsg(NULL), "t.tile:1:");
  CHECK(tilec_ir_print(NULL) == NULL);
}

static void test_layout(void) {
  tilec_context *ctx = nogpu(0);
  if (!ctx)
    return;
  tilec_layout *l = NULL;
  tilec_mask_desc d;
  tilec_mask_desc_init(&d);
  CHECK_STATUS(TILEC_ERR_ARG, tilec_layout_create(ctx, NULL, &l));
  CHECK_STATUS(TILEC_ERR_ARG, tilec_layout_create(NULL, &d, &l));
  d.S = 0;
  CHECK_STATUS(TILEC_ERR_SHAPE, tilec_layout_create(ctx, &d, &l));
  d.S = 256;
  d.mask = "causal,wobbly";
  CHECK_STATUS(TILEC_ERR_SHAPE, tilec_layout_create(ctx, &d, &l));
  CHECK_CONTAINS(tilec_errmsg(NULL), "wobbly");
  d.mask = "causal";
  CHECK_STATUS(TILEC_OK, tilec_layout_create(ctx, &d, &l));
  tilec_layout_info li = {0};
  CHECK_STATUS(TILEC_ERR_ARG, tilec_layout_info_get(l, &li));
  li.size = sizeof li;
  CHECK_STATUS(TILEC_OK, tilec_layout_info_get(l, &li));
  CHECK_EQ_INT(1, li.rows);
  CHECK_EQ_INT(4, li.n_qblocks);
  CHECK_EQ_INT(0, li.lrow_mul);
  CHECK_EQ_INT(6, (int)li.n_full); /* below the diagonal: 0+1+2+3 */
  CHECK_EQ_INT(4, (int)li.n_part); /* the diagonal */
  CHECK_EQ_INT(1, li.causal);
  CHECK(li.d_full_ptr == 0); /* no GPU: no device copies */
  CHECK_EQ_INT(0, li.full_ptr[0]);
  CHECK_EQ_INT(6, li.full_ptr[4]);
  tilec_layout_destroy(l);
  d.mask = "document:100+156";
  CHECK_STATUS(TILEC_OK, tilec_layout_create(ctx, &d, &l));
  CHECK_STATUS(TILEC_OK, tilec_layout_info_get(l, &li));
  CHECK_EQ_INT(0, li.doc[99]);
  CHECK_EQ_INT(1, li.doc[100]);
  tilec_layout_destroy(l);
  tilec_context_destroy(ctx);
}

static void test_tuner_misuse(void) {
  tilec_tuner *t = NULL;
  tilec_kernel_request r;
  tilec_kernel_request_init(&r);
  r.kernel = "matmul";
  CHECK_STATUS(TILEC_ERR_ARG, tilec_tuner_start(NULL, &r, NULL, &t));
  tilec_context *ctx = nogpu(0);
  if (!ctx)
    return;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_tuner_start(ctx, NULL, NULL, &t));
  CHECK_STATUS(TILEC_ERR_READONLY, tilec_tuner_start(ctx, &r, NULL, &t));
  CHECK_CONTAINS(tilec_errmsg(NULL), "read-only");
  tilec_tune_opts o = {.size = 2};
  CHECK_STATUS(TILEC_ERR_ARG, tilec_tuner_start(ctx, &r, &o, &t));
  CHECK_STATUS(TILEC_ERR_ARG, tilec_tuner_wait(NULL));
  CHECK_STATUS(TILEC_ERR_ARG, tilec_tuner_poll(NULL));
  tilec_context_destroy(ctx);
}

int main(void) {
  setenv("TILEC_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
  test_basics();
  test_context_misuse();
  test_kernel_misuse();
  test_builder();
  test_layout();
  test_tuner_misuse();
  return TEST_MAIN_END();
}
