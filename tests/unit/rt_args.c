/* tests/unit/rt_args.c — the CPU-only parts of runtime/: kernel argument packing (the ABI of
 * docs/runtime.md) on the built-in kernels, the device key, the nvJitLink log parser, error
 * formatting helpers, the median, and the reference kernels' source.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/builtin_sources.h"
#include "runtime/rt.h"
#include "runtime/rt_impl.h"
#include "tests/unit/check.h"

/* ---- packing ----------------------------------------------------------------------------- */

/* The built-in kernel `name` specialized with `set` (caller frees). */
static ir_kernel *builtin(const char *name, const char *set) {
  const char *text = NULL;
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, name))
      text = s->text;
  REQUIRE(text != NULL);
  ir_kernel *k = NULL, *spec = NULL;
  ir_diag d = {0};
  static ir_config cfg;
  memset(&cfg, 0, sizeof cfg);
  REQUIRE(ir_parse(text, strlen(text), name, &k, &d) == IR_OK);
  if (set)
    REQUIRE(ir_config_parse(&cfg, set, &d) == IR_OK);
  ir_status s = ir_specialize(k, &cfg, &spec, &d);
  if (s)
    fprintf(stderr, "%s\n", d.msg);
  REQUIRE(s == IR_OK);
  ir_kernel_free(k);
  return spec;
}

static rt_argval tensor(uint64_t p, int rank, const int64_t *shape) {
  rt_argval v = {.kind = ARG_TENSOR, .dptr = p, .rank = rank};
  int64_t stride = 1;
  for (int i = rank - 1; i >= 0; i--) {
    v.shape[i] = shape[i];
    v.stride[i] = stride;
    stride *= shape[i];
  }
  return v;
}

static rt_argval scalar_i(int64_t i) { return (rt_argval){.kind = ARG_SCALAR, .scalar = {.i = i}}; }
static rt_argval scalar_f(double f) {
  return (rt_argval){.kind = ARG_SCALAR, .scalar = {.isf = true, .f = f}};
}
static rt_argval ptr(uint64_t p) { return (rt_argval){.kind = ARG_PTR, .dptr = p}; }

static uint64_t get(const rt_params *p, int i) {
  uint64_t v = 0;
  memcpy(&v, p->buf + p->offset[i], p->psize[i]); /* little-endian */
  return v;
}

static void test_matmul(void) {
  ir_kernel *k = builtin("matmul", "BM=16,BN=16");
  rt_argval a[3] = {tensor(0x1000, 2, (int64_t[]){100, 33}), tensor(0x2000, 2, (int64_t[]){33, 70}),
                    tensor(0x3000, 2, (int64_t[]){100, 70})};
  a[1].stride[0] = 1; /* B stored transposed: [N][K] */
  a[1].stride[1] = 33;
  static rt_params p;
  rt_err e = {0};
  rt_status s = rt_params_pack(k, a, 3, &p, &e);
  CHECK_EQ_STR("", s ? e.msg : "");
  CHECK_EQ_INT(15, p.count);
  CHECK_EQ_INT(96, p.size);
  static const uint16_t off[15] = {0, 8, 12, 16, 24, 32, 40, 44, 48, 56, 64, 72, 76, 80, 88};
  static const uint8_t size[15] = {8, 4, 4, 8, 8, 8, 4, 4, 8, 8, 8, 4, 4, 8, 8};
  static const uint64_t val[15] = {0x1000, 100, 33,     33,  1,  0x2000, 33, 70,
                                   1,      33,  0x3000, 100, 70, 70,     1};
  for (int i = 0; i < 15; i++) {
    CHECK_EQ_INT(off[i], p.offset[i]);
    CHECK_EQ_INT(size[i], p.psize[i]);
    CHECK_EQ_INT(val[i], get(&p, i));
  }
  CHECK_EQ_INT(7 * 5, p.grid[0]); /* cdiv(100, 16) * cdiv(70, 16) */
  CHECK_EQ_INT(1, p.grid[1]);
  CHECK_EQ_INT(1, p.grid[2]);

  void *ptrs[RT_MAX_PARAMS];
  rt_params_pointers(&p, ptrs);
  CHECK(ptrs[0] == (void *)p.buf && ptrs[14] == (void *)(p.buf + 88));

  /* Dims shared between tensors must agree; the message names both sides. */
  rt_argval bad[3];
  memcpy(bad, a, sizeof bad);
  bad[1].shape[0] = 34;
  CHECK_EQ_INT(RT_ERR_ARG, rt_params_pack(k, bad, 3, &p, &e));
  CHECK_EQ_STR("tensor 'B' dim 0 is 34 but K = 33", e.msg);
  memcpy(bad, a, sizeof bad);
  bad[2].rank = 1;
  CHECK_EQ_INT(RT_ERR_ARG, rt_params_pack(k, bad, 3, &p, &e));
  CHECK_EQ_STR("tensor 'C' has rank 1; the kernel expects 2", e.msg);
  memcpy(bad, a, sizeof bad);
  bad[0].shape[0] = bad[2].shape[0] = (int64_t)1 << 31;
  CHECK_EQ_INT(RT_ERR_ARG, rt_params_pack(k, bad, 3, &p, &e));
  CHECK_CONTAINS(e.msg, "outside 0 .. 2^31-1");
  bad[0] = ptr(1);
  CHECK_EQ_INT(RT_ERR_ARG, rt_params_pack(k, bad, 3, &p, &e));
  CHECK_EQ_STR("argument 'A' is passed as the wrong kind", e.msg);
  CHECK_EQ_INT(RT_ERR_ARG, rt_params_pack(k, a, 2, &p, &e));
  CHECK_EQ_STR("kernel 'matmul' takes 3 arguments, got 2", e.msg);

  /* An empty problem packs, with a zero grid (rt_launch then launches nothing). */
  rt_argval z[3] = {tensor(0, 2, (int64_t[]){0, 33}), tensor(0x2000, 2, (int64_t[]){33, 70}),
                    tensor(0, 2, (int64_t[]){0, 70})};
  CHECK_EQ_INT(RT_OK, rt_params_pack(k, z, 3, &p, &e));
  CHECK_EQ_INT(0, p.grid[0]);
  ir_kernel_free(k);

  /* An unspecialized kernel is refused. */
  const char *text = NULL;
  for (const struct tilec_builtin_source *b = tilec_builtin_sources; b->name; b++)
    if (!strcmp(b->name, "matmul"))
      text = b->text;
  ir_kernel *raw = NULL;
  ir_diag d;
  if (CHECK(text && ir_parse(text, strlen(text), "matmul", &raw, &d) == IR_OK)) {
    CHECK_EQ_INT(RT_ERR_ARG, rt_params_pack(raw, a, 3, &p, &e));
    CHECK_EQ_STR("kernel 'matmul' is not specialized", e.msg);
  }
  ir_kernel_free(raw);
}

static void test_attention(void) {
  ir_kernel *k = builtin("attention", "BM=32,BN=32,D=64,causal=1");
  int64_t q[4] = {2, 8, 100, 64}, kv[4] = {2, 2, 120, 64}, lse[3] = {2, 8, 100};
  rt_argval a[8] = {scalar_i(64),           scalar_i(1),           tensor(0xa000, 4, q),
                    tensor(0xb000, 4, kv),  tensor(0xc000, 4, kv), tensor(0xd000, 4, q),
                    tensor(0xe000, 3, lse), scalar_f(0.125)};
  static rt_params p;
  rt_err e = {0};
  rt_status s = rt_params_pack(k, a, 8, &p, &e);
  CHECK_EQ_STR("", s ? e.msg : "");
  /* D and causal are const: not passed. 4 rank-4 tensors, 1 rank-3, then scale. */
  CHECK_EQ_INT(4 * 9 + 7 + 1, p.count);
  CHECK_EQ_INT(0xa000, get(&p, 0));
  CHECK_EQ_INT(2, get(&p, 1));
  CHECK_EQ_INT(64, get(&p, 4));
  CHECK_EQ_INT(100 * 64 * 8, get(&p, 5)); /* Q's batch stride */
  CHECK_EQ_INT(1, get(&p, 8));
  CHECK_EQ_INT(0xb000, get(&p, 9));
  CHECK_EQ_INT(0xe000, get(&p, 36));
  int last = p.count - 1;
  CHECK_EQ_INT(4, p.psize[last]);
  float scale;
  memcpy(&scale, p.buf + p.offset[last], 4);
  CHECK(scale == 0.125f);
  CHECK_EQ_INT(p.offset[last] + 4, p.size);
  CHECK_EQ_INT(4, p.grid[0]);  /* cdiv(100, 32) */
  CHECK_EQ_INT(16, p.grid[1]); /* B * H */

  /* The const dim D = 64 is checked against the tensors. */
  a[2].shape[3] = 32;
  CHECK_EQ_INT(RT_ERR_ARG, rt_params_pack(k, a, 8, &p, &e));
  CHECK_EQ_STR("tensor 'Q' dim 3 is 32 but D = 64", e.msg);
  ir_kernel_free(k);
}

static void test_bsattention(void) {
  ir_kernel *k = builtin("bsattention", "BM=16,BN=16,D=128,T=f16");
  int64_t q[4] = {1, 4, 50, 128}, lse[3] = {1, 4, 50};
  rt_argval a[17] = {scalar_i(128),   tensor(1, 4, q),   tensor(2, 4, q), tensor(3, 4, q),
                     tensor(4, 4, q), tensor(5, 3, lse), scalar_f(0.5),   ptr(0x10),
                     ptr(0x20),       ptr(0x30),         ptr(0x40),       ptr(0x50),
                     scalar_i(0),     scalar_i(1),       scalar_i(-7),    scalar_i(3)};
  REQUIRE(k->nargs == 16);
  static rt_params p;
  rt_err e = {0};
  rt_status s = rt_params_pack(k, a, 16, &p, &e);
  CHECK_EQ_STR("", s ? e.msg : "");
  CHECK_EQ_INT(4 * 9 + 7 + 1 + 5 + 4, p.count);
  CHECK_EQ_INT(0x10, get(&p, 44));
  CHECK_EQ_INT(8, p.psize[44]);
  CHECK_EQ_INT(0x50, get(&p, 48));
  CHECK_EQ_INT(4, p.psize[50]);
  CHECK_EQ_INT(1, get(&p, 50));                      /* causal */
  CHECK_EQ_INT((uint32_t)-7, (uint32_t)get(&p, 51)); /* window, as i32 bits */
  CHECK_EQ_INT(p.offset[52] + 4, p.size);
  /* Integer parameters are range-checked. */
  a[12] = scalar_i((int64_t)1 << 40);
  CHECK_EQ_INT(RT_ERR_ARG, rt_params_pack(k, a, 16, &p, &e));
  CHECK_EQ_STR("parameter 'lrow_mul' = 1099511627776 does not fit i32", e.msg);
  a[12] = scalar_f(1.5);
  CHECK_EQ_INT(RT_ERR_ARG, rt_params_pack(k, a, 16, &p, &e));
  CHECK_EQ_STR("parameter 'lrow_mul' is an integer, got 1.5", e.msg);
  ir_kernel_free(k);
}

/* A kernel with every scalar type: sizes, alignment and encodings. */
static void test_scalars(void) {
  static const char text[] =
      "kernel scalars\n"
      "args (a: i1, b: i8, c: i16, d: f16, e: bf16, f: i64, g: f32, h: f64, i: f8e4m3, "
      "%X: tensor<f32>[N])\n"
      "grid (N)\n"
      "{\n"
      "}\n";
  ir_kernel *k = NULL, *spec = NULL;
  ir_diag d = {0};
  ir_config cfg = {0};
  ir_status st = ir_parse(text, strlen(text), "scalars.tile", &k, &d);
  if (st)
    fprintf(stderr, "%s\n", d.msg);
  REQUIRE(st == IR_OK);
  REQUIRE(ir_specialize(k, &cfg, &spec, &d) == IR_OK);
  rt_argval a[10] = {scalar_i(1),    scalar_i(-2),
                     scalar_i(-3),   scalar_f(1.0),
                     scalar_f(-2.0), scalar_i(INT64_C(1) << 40),
                     scalar_f(0.1),  scalar_f(0.1),
                     scalar_f(1.0),  tensor(9, 1, (int64_t[]){5})};
  static rt_params p;
  rt_err e = {0};
  rt_status s = rt_params_pack(spec, a, 10, &p, &e);
  CHECK_EQ_STR("", s ? e.msg : "");
  static const uint16_t off[] = {0, 1, 2, 4, 6, 8, 16, 24, 32, 40, 48, 56};
  static const uint8_t size[] = {1, 1, 2, 2, 2, 8, 4, 8, 1, 8, 4, 8};
  CHECK_EQ_INT(12, p.count);
  for (int i = 0; i < 12 && i < p.count; i++) {
    CHECK_EQ_INT(off[i], p.offset[i]);
    CHECK_EQ_INT(size[i], p.psize[i]);
  }
  CHECK_EQ_INT(1, get(&p, 0));
  CHECK_EQ_INT(0xfe, get(&p, 1));
  CHECK_EQ_INT(0xfffd, get(&p, 2));
  CHECK_EQ_INT(0x3c00, get(&p, 3)); /* f16 1.0 */
  CHECK_EQ_INT(0xc000, get(&p, 4)); /* bf16 -2.0 */
  CHECK_EQ_INT(INT64_C(1) << 40, get(&p, 5));
  float g;
  double h;
  memcpy(&g, p.buf + 16, 4);
  memcpy(&h, p.buf + 24, 8);
  CHECK(g == 0.1f && h == 0.1);
  CHECK_EQ_INT(0x38, get(&p, 8)); /* f8e4m3 1.0 */
  CHECK_EQ_INT(5, p.grid[0]);
  a[0] = scalar_i(2);
  CHECK_EQ_INT(RT_ERR_ARG, rt_params_pack(spec, a, 10, &p, &e));
  CHECK_EQ_STR("parameter 'a' = 2 does not fit i1", e.msg);
  ir_kernel_free(k);
  ir_kernel_free(spec);
}

/* ---- device key -------------------------------------------------------------------------- */

static void test_device_key(void) {
  rt_device_info d = {.cc_major = 9, .cc_minor = 0, .sm_count = 132};
  snprintf(d.name, sizeof d.name, "NVIDIA H200");
  d.total_mem = (uint64_t)143771 << 20;
  char h200[RT_DEVICE_KEY_MAX], h100[RT_DEVICE_KEY_MAX], buf[RT_DEVICE_KEY_MAX];
  rt_device_key(&d, h200, sizeof h200);
  CHECK_EQ_STR("NVIDIA H200|sm_90|132sm|140GiB", h200);
  /* The same model with a few MiB less (another driver's reservation): the same key. */
  d.total_mem -= (uint64_t)200 << 20;
  rt_device_key(&d, buf, sizeof buf);
  CHECK_EQ_STR(h200, buf);
  snprintf(d.name, sizeof d.name, "NVIDIA H100 80GB HBM3");
  d.total_mem = (uint64_t)81559 << 20;
  rt_device_key(&d, h100, sizeof h100);
  CHECK_EQ_STR("NVIDIA H100 80GB HBM3|sm_90|132sm|79GiB", h100);
  CHECK(strcmp(h100, h200) != 0);
  /* A MIG slice of the same GPU is another key. */
  d.sm_count = 16;
  d.total_mem = (uint64_t)9728 << 20;
  rt_device_key(&d, buf, sizeof buf);
  CHECK_EQ_STR("NVIDIA H100 80GB HBM3|sm_90|16sm|9GiB", buf);
  /* Separators and control characters in a name cannot break the key's fields. */
  snprintf(d.name, sizeof d.name, "  Odd|GPU\tX  ");
  rt_device_key(&d, buf, sizeof buf);
  CHECK_EQ_STR("Odd_GPU_X|sm_90|16sm|9GiB", buf);
  d.name[0] = 0;
  rt_device_key(&d, buf, sizeof buf);
  CHECK_EQ_STR("unknown|sm_90|16sm|9GiB", buf);
  rt_device_key(&d, buf, 8); /* truncated, terminated */
  CHECK_EQ_STR("unknown", buf);
}

/* ---- nvJitLink log ----------------------------------------------------------------------- */

static void test_link_log(void) {
  /* nvJitLink 13.0 -verbose, as printed for two kernels (ptxas's report, then the summary). */
  static const char log[] =
      "ptxas info    : 0 bytes gmem\n"
      "ptxas info    : Compiling entry function 'k2' for 'sm_90'\n"
      "ptxas info    : Function properties for k2\n"
      "ptxas         .     400 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads\n"
      "ptxas info    : Used 32 registers, used 1 barriers, 4096 bytes smem\n"
      "ptxas info    : Compile time = 44.794 ms\n"
      "ptxas info    : Compiling entry function 'k1' for 'sm_90'\n"
      "ptxas info    : Function properties for k1\n"
      "ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
      "ptxas info    : Used 10 registers, used 0 barriers\n"
      "ptxas info    : Compile time = 6.647 ms\n"
      "info    : 0 bytes gmem\n"
      "info    : Function properties for 'k1':\n"
      "info    : used 10 registers, used 0 barriers, 0 stack, 0 bytes smem, 540 bytes cmem[0], 0 "
      "bytes lmem\n"
      "info    : Function properties for 'k2':\n"
      "info    : used 32 registers, used 1 barriers, 400 stack, 5120 bytes smem, 540 bytes "
      "cmem[0], 0 bytes lmem\n";
  rt_kernel_stats st[4];
  CHECK_EQ_INT(2, rt_parse_link_log(log, st, 4));
  CHECK_EQ_STR("k2", st[0].name);
  CHECK_EQ_INT(32, st[0].registers);
  CHECK_EQ_INT(1, st[0].barriers);
  CHECK_EQ_INT(400, st[0].stack_bytes);
  CHECK_EQ_INT(8, st[0].spill_store_bytes);
  CHECK_EQ_INT(12, st[0].spill_load_bytes);
  CHECK_EQ_INT(4096, st[0].smem_bytes); /* ptxas's figure, not the summary's 5120 */
  CHECK_EQ_INT(540, st[0].cmem_bytes);
  CHECK_EQ_STR("k1", st[1].name);
  CHECK_EQ_INT(10, st[1].registers);
  CHECK_EQ_INT(0, st[1].smem_bytes); /* from the summary */
  CHECK_EQ_INT(0, st[1].spill_store_bytes);
  /* Older ptxas: cmem on the registers line; kernels beyond cap are left out. */
  static const char old[] = "ptxas info    : Compiling entry function '_Z3fooPf' for 'sm_80'\n"
                            "ptxas info    : Function properties for _Z3fooPf\n"
                            "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
                            "ptxas info    : Used 6 registers, 360 bytes cmem[0]\n"
                            "ptxas info    : Compiling entry function 'bar' for 'sm_80'\n";
  CHECK_EQ_INT(1, rt_parse_link_log(old, st, 1));
  CHECK_EQ_STR("_Z3fooPf", st[0].name);
  CHECK_EQ_INT(6, st[0].registers);
  CHECK_EQ_INT(360, st[0].cmem_bytes);
  CHECK_EQ_INT(-1, st[0].barriers);
  CHECK_EQ_INT(-1, st[0].smem_bytes);
  CHECK_EQ_INT(0, rt_parse_link_log("", st, 4));
  CHECK_EQ_INT(0, rt_parse_link_log(NULL, st, 4));
}

/* ---- small helpers ----------------------------------------------------------------------- */

static void test_helpers(void) {
  double v[] = {5, 1, 4, 2, 3};
  CHECK(rt_median(v, 5) == 3);
  CHECK(v[0] == 1 && v[4] == 5);
  double w[] = {4, 1, 3, 2};
  CHECK(rt_median(w, 4) == 2.5);
  CHECK(rt_median(w, 0) == 0);

  CHECK_EQ_STR("ok", rt_status_name(RT_OK));
  CHECK_EQ_STR("no_driver", rt_status_name(RT_ERR_NO_DRIVER));
  CHECK_EQ_STR("out_of_memory", rt_status_name(RT_ERR_OOM));
  CHECK(rt_status_is_env(RT_ERR_NO_DRIVER) && rt_status_is_env(RT_ERR_NO_DEVICE) &&
        rt_status_is_env(RT_ERR_NO_LIBRARY));
  CHECK(!rt_status_is_env(RT_ERR_OOM) && !rt_status_is_env(RT_ERR_LAUNCH) &&
        !rt_status_is_env(RT_OK));

  CHECK_EQ_INT(RT_DT_BF16, rt_dtype_of(IR_BF16));
  CHECK_EQ_INT(RT_DT_F16, rt_dtype_of(IR_F16));
  CHECK_EQ_INT(RT_DT_F32, rt_dtype_of(IR_F32));
  CHECK_EQ_INT(-1, rt_dtype_of(IR_I32));

  const char *src = rt_ref_source();
  CHECK(strstr(src, "#include") == NULL);
  for (const char *const *n = rt_ref_kernel_names; *n; n++)
    CHECK_CONTAINS(src, *n);
  CHECK(rt_ref_source() == src);

  /* Library logs are folded into one line and cut with "..." when they do not fit. */
  static rt_err e;
  rt_fail(&e, RT_ERR_COMPILE, "link failed");
  rt_err_append_log(&e, "\n  line one\nline two\n\n");
  CHECK_EQ_STR("link failed: line one; line two", e.msg);
  CHECK_EQ_INT(RT_ERR_COMPILE, e.status);
  rt_err_append_log(&e, " \n ");
  CHECK_EQ_STR("link failed: line one; line two", e.msg);
  static char big[10000];
  memset(big, 'x', sizeof big - 1);
  rt_fail(&e, RT_ERR_COMPILE, "x");
  rt_err_append_log(&e, big);
  CHECK_EQ_INT(sizeof e.msg - 1, strlen(e.msg));
  CHECK(!strcmp(e.msg + sizeof e.msg - 4, "..."));
  CHECK_EQ_INT(RT_ERR_ARG, rt_fail(NULL, RT_ERR_ARG, "no message"));

  rt_blob b = {0};
  rt_blob_free(&b);
  rt_blob_free(NULL);

  /* The reference mask fields come from a kn_mask. */
  kn_mask m;
  char err[256];
  REQUIRE(kn_mask_parse("sliding:64,prefix:8,document:100+28,random:0.5:32x64", 128, 128, 7, &m,
                        err, sizeof err) == 0);
  rt_ref_attention_args a = {0};
  rt_ref_attention_mask(&a, &m, 0x1234);
  CHECK(a.causal == 1 && a.window == 64 && a.prefix == 8 && a.doc == 0x1234);
  CHECK(a.density == 0.5 && a.seed == 7 && a.rblock_m == 32 && a.rblock_n == 64);
  kn_mask_free(&m);
  rt_ref_attention_mask(&a, &m, 0x1234); /* the dense mask: no document array */
  CHECK(a.causal == 0 && a.window == 0 && a.doc == 0 && a.density == 0);
}

int main(void) {
  test_matmul();
  test_attention();
  test_bsattention();
  test_scalars();
  test_device_key();
  test_link_log();
  test_helpers();
  return TEST_MAIN_END();
}
