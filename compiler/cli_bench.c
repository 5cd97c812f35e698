/* compiler/cli_bench.c — `tilec bench matmul`: tilec's matmul against cuBLASLt in the same
 * process, on the same device buffers and stream, for a table of shapes.
 *
 * Per shape: A and B filled on the device with random values in [-1, 1) (rt_ref_fill; no host
 * copy of 8192² matrices), both outputs poisoned, one launch of each, both outputs copied back
 * and compared with each other (every element written, relative difference), then each timed
 * with CUDA events (warm-up, median of --reps). TFLOP/s count 2·M·N·K. docs/cli.md, PERF.md.
 */
#include "compiler/cli_bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "compiler/cli_util.h"
#include "compiler/gpu.h"
#include "kernels/builtin_sources.h"
#include "runtime/rt.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_ENV = 2, MAX_SHAPES = 16 };

static const char default_shapes[] = "8192x8192x8192,4096x14336x4096,16x14336x4096,128x14336x4096";

typedef struct shape3 {
  int64_t m, n, k;
} shape3;

typedef struct row {
  shape3 s;
  double tilec_ms, cublas_ms;
  double max_rel; /* max |tilec - cublas| / max |cublas| */
  int64_t unwritten;
} row;

typedef struct bench {
  const char *set, *dtype, *arch, *shapes;
  int reps;
  bool json;
  ir_kind kind;
  rt_ctx *ctx;
  rt_refs refs;
  rt_module *mod;
  rt_func *fn;
  ir_kernel *k, *spec;
  cg_output out;
  char arch_used[16], device[256], key[192], cublas[600], config[512];
} bench;

static int fail_rt(rt_status s, const rt_err *e) {
  fprintf(stderr, "tilec bench matmul: %s\n", e->msg);
  return rt_status_is_env(s) ? EXIT_ENV : EXIT_FAIL;
}

static int fail(const char *msg, const char *arg) {
  fprintf(stderr, "tilec bench matmul: %s%s\n", msg, arg ? arg : "");
  return EXIT_FAIL;
}

static int parse_shapes(const char *text, shape3 *out, int *n) {
  *n = 0;
  const char *p = text;
  while (*p) {
    long long m, nn, k;
    int used = 0;
    if (*n == MAX_SHAPES || sscanf(p, "%lldx%lldx%lld%n", &m, &nn, &k, &used) != 3 || m < 1 ||
        nn < 1 || k < 1 || m > (1 << 20) || nn > (1 << 20) || k > (1 << 20))
      return fail("--shapes: expected up to 16 MxNxK items, each in 1..1048576, at ", p);
    out[(*n)++] = (shape3){m, nn, k};
    p += used;
    if (*p == ',')
      p++;
    else if (*p)
      return fail("--shapes: expected ',' at ", p);
  }
  return *n ? EXIT_OK : fail("--shapes: empty", NULL);
}

static int parse(int argc, char **argv, bench *b) {
  b->reps = 50;
  b->shapes = default_shapes;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    const char **slot = !strcmp(a, "--set")      ? &b->set
                        : !strcmp(a, "--dtype")  ? &b->dtype
                        : !strcmp(a, "--arch")   ? &b->arch
                        : !strcmp(a, "--shapes") ? &b->shapes
                                                 : NULL;
    if (slot || !strcmp(a, "--reps")) {
      if (!v)
        return fail("option needs a value: ", a);
      i++;
      if (slot)
        *slot = v;
      else {
        char *end;
        errno = 0;
        long r = strtol(v, &end, 10);
        if (*end || errno || r < 1 || r > 100000)
          return fail("--reps: expected 1..100000, got ", v);
        b->reps = (int)r;
      }
    } else if (!strcmp(a, "--json"))
      b->json = true;
    else
      return fail(
          "unknown argument (usage: tilec bench matmul [--shapes MxNxK,...] [--set K=V,...] "
          "[--dtype bf16|f16] [--reps N] [--arch sm_XX] [--json]): ",
          a);
  }
  b->kind = b->dtype ? ir_kind_from_name(b->dtype, strlen(b->dtype)) : IR_BF16;
  if (b->kind != IR_BF16 && b->kind != IR_F16)
    return fail("--dtype: expected bf16 or f16, got ", b->dtype);
  return EXIT_OK;
}

/* Specializes the built-in matmul (A, B and C of the bench's dtype) and compiles it for the
 * device: one module for every shape (the shapes are launch arguments). */
static int compile(bench *b) {
  const char *text = NULL;
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, "matmul"))
      text = s->text;
  ir_diag d;
  ir_config cfg = {0};
  char items[600];
  snprintf(items, sizeof items, "%s%sTA=%s,TC=%s", b->set ? b->set : "", b->set ? "," : "",
           ir_kind_name(b->kind), ir_kind_name(b->kind));
  if (!text || ir_parse(text, strlen(text), "<builtin>/matmul.tile", &b->k, &d) ||
      ir_verify(b->k, &d) || ir_config_parse(&cfg, items, &d) ||
      ir_specialize(b->k, &cfg, &b->spec, &d)) {
    fprintf(stderr, "%s\n", text ? d.msg : "no built-in matmul");
    return EXIT_FAIL;
  }
  snprintf(b->config, sizeof b->config, "%s", b->set ? b->set : "defaults");
  cc_gpu g;
  char err[1024];
  if (cc_gpu_build(b->spec, &g, &d)) {
    fprintf(stderr, "%s\n", d.msg);
    return EXIT_FAIL;
  }
  int rc = cg_lower(&g, b->arch_used, CG_EMIT_PTX, &b->out, err, sizeof err);
  cc_gpu_free(&g);
  if (rc)
    return fail(err, NULL);
  rt_blob cubin = {0};
  rt_err e = {0};
  rt_status s;
  if ((s = rt_nvjitlink_ptx(b->out.ptx, strlen(b->out.ptx), b->arch_used, NULL, 0, &cubin, &e)) ||
      (s = rt_module_load(b->ctx, cubin.data, cubin.size, &b->mod, &e)) ||
      (s = rt_module_func(b->mod, b->out.name, &b->fn, &e)) ||
      (s = rt_func_set_dynamic_smem(b->ctx, b->fn, (unsigned)b->out.stats.smem_bytes, &e))) {
    rt_blob_free(&cubin);
    return fail_rt(s, &e);
  }
  rt_blob_free(&cubin);
  return EXIT_OK;
}

typedef struct launch_tilec {
  bench *b;
  rt_params *p;
  rt_launch_cfg cfg;
} launch_tilec;

static rt_status run_tilec(void *user, rt_err *e) {
  launch_tilec *l = user;
  return rt_launch_params(l->b->ctx, l->b->fn, &l->cfg, l->p, e);
}

typedef struct launch_cublas {
  rt_gemm *g;
  uint64_t a, bb, c;
} launch_cublas;

static rt_status run_cublas(void *user, rt_err *e) {
  launch_cublas *l = user;
  return rt_gemm_run(l->g, l->a, l->bb, l->c, e);
}

/* Compares the two outputs on the host: elements still poisoned (all bits set: NaN) in either
 * are unwritten; the difference is relative to cuBLAS's largest magnitude. */
static void compare(const uint16_t *t, const uint16_t *c, int64_t n, ir_kind k, row *r) {
  double maxref = 0, maxdiff = 0;
  r->unwritten = 0;
  for (int64_t i = 0; i < n; i++) {
    if (t[i] == 0xffff || c[i] == 0xffff) {
      r->unwritten++;
      continue;
    }
    double x = ir_buf_get(k, t, i), y = ir_buf_get(k, c, i);
    maxref = fmax(maxref, fabs(y));
    maxdiff = fmax(maxdiff, fabs(x - y));
  }
  r->max_rel = maxref > 0 ? maxdiff / maxref : (maxdiff > 0 ? INFINITY : 0);
}

static int one_shape(bench *b, row *r) {
  const shape3 s = r->s;
  int64_t esz = 2, na = s.m * s.k, nb = s.k * s.n, nc = s.m * s.n;
  uint64_t A = 0, B = 0, CT = 0, CC = 0;
  rt_gemm *g = NULL;
  uint16_t *ht = NULL, *hc = NULL;
  rt_err e = {0};
  rt_status st;
  int rc = EXIT_FAIL;
  rt_dtype dt = (rt_dtype)rt_dtype_of(b->kind);
  rt_params *p = malloc(sizeof *p);
  if (!p)
    return fail("out of memory", NULL);
  if ((st = rt_mem_alloc(b->ctx, (size_t)(na * esz), &A, &e)) ||
      (st = rt_mem_alloc(b->ctx, (size_t)(nb * esz), &B, &e)) ||
      (st = rt_mem_alloc(b->ctx, (size_t)(nc * esz), &CT, &e)) ||
      (st = rt_mem_alloc(b->ctx, (size_t)(nc * esz), &CC, &e)) ||
      (st = rt_ref_fill(b->ctx, &b->refs, A, na, dt, 1, -1.0f, 1.0f, &e)) ||
      (st = rt_ref_fill(b->ctx, &b->refs, B, nb, dt, 2, -1.0f, 1.0f, &e)) ||
      (st = rt_memset8(b->ctx, CT, 0xff, (size_t)(nc * esz), &e)) ||
      (st = rt_memset8(b->ctx, CC, 0xff, (size_t)(nc * esz), &e)) ||
      (st = rt_gemm_plan(b->ctx, s.m, s.n, s.k, b->kind, b->kind, false, &g, &e)))
    goto rt_error;
  rt_argval args[3] = {
      {.kind = ARG_TENSOR, .dptr = A, .rank = 2, .shape = {s.m, s.k}, .stride = {s.k, 1}},
      {.kind = ARG_TENSOR, .dptr = B, .rank = 2, .shape = {s.k, s.n}, .stride = {s.n, 1}},
      {.kind = ARG_TENSOR, .dptr = CT, .rank = 2, .shape = {s.m, s.n}, .stride = {s.n, 1}},
  };
  if ((st = rt_params_pack(b->spec, args, 3, p, &e)))
    goto rt_error;
  launch_tilec lt = {b,
                     p,
                     {{p->grid[0], p->grid[1], p->grid[2]},
                      {(uint32_t)b->out.stats.threads, 1, 1},
                      (uint32_t)b->out.stats.smem_bytes}};
  launch_cublas lc = {g, A, B, CC};
  ht = malloc((size_t)(nc * esz));
  hc = malloc((size_t)(nc * esz));
  if (!ht || !hc) {
    fail("out of host memory for the outputs", NULL);
    goto done;
  }
  if ((st = run_tilec(&lt, &e)) || (st = run_cublas(&lc, &e)) || (st = rt_ctx_sync(b->ctx, &e)) ||
      (st = rt_memcpy_dtoh(b->ctx, ht, CT, (size_t)(nc * esz), &e)) ||
      (st = rt_memcpy_dtoh(b->ctx, hc, CC, (size_t)(nc * esz), &e)))
    goto rt_error;
  compare(ht, hc, nc, b->kind, r);
  rt_timing tt, tc;
  if ((st = rt_time(b->ctx, run_tilec, &lt, 5, b->reps, &tt, &e)) ||
      (st = rt_time(b->ctx, run_cublas, &lc, 5, b->reps, &tc, &e)))
    goto rt_error;
  r->tilec_ms = tt.median_ms;
  r->cublas_ms = tc.median_ms;
  rc = EXIT_OK;
  goto done;
rt_error:
  rc = fail_rt(st, &e);
done:
  free(ht);
  free(hc);
  free(p);
  rt_gemm_free(g);
  rt_mem_free(b->ctx, A);
  rt_mem_free(b->ctx, B);
  rt_mem_free(b->ctx, CT);
  rt_mem_free(b->ctx, CC);
  return rc;
}

static double tflops(const shape3 *s, double ms) {
  return ms > 0 ? 2.0 * (double)s->m * (double)s->n * (double)s->k / (ms * 1e-3) / 1e12 : NAN;
}

/* bf16/f16 outputs of K-long f32 sums rounded once: two results may differ by an ulp of the
 * output type relative to the largest magnitude; 2^-6 leaves room for summation order. */
#define MAX_REL_DIFF 0.016

static void print(const bench *b, const row *rows, int n) {
  if (b->json) {
    printf("{\"device\": ");
    cli_json_str(stdout, b->device);
    printf(", \"key\": ");
    cli_json_str(stdout, b->key);
    printf(", \"arch\": \"%s\", \"dtype\": \"%s\", \"config\": ", b->arch_used,
           ir_kind_name(b->kind));
    cli_json_str(stdout, b->config);
    printf(", \"cublaslt\": ");
    cli_json_str(stdout, b->cublas);
    printf(", \"reps\": %d, \"shapes\": [", b->reps);
    for (int i = 0; i < n; i++) {
      const row *r = &rows[i];
      printf("%s{\"M\": %lld, \"N\": %lld, \"K\": %lld, \"tilec_ms\": ", i ? ", " : "",
             (long long)r->s.m, (long long)r->s.n, (long long)r->s.k);
      cli_json_num(stdout, r->tilec_ms);
      printf(", \"cublas_ms\": ");
      cli_json_num(stdout, r->cublas_ms);
      printf(", \"tilec_tflops\": ");
      cli_json_num(stdout, tflops(&r->s, r->tilec_ms));
      printf(", \"cublas_tflops\": ");
      cli_json_num(stdout, tflops(&r->s, r->cublas_ms));
      printf(", \"ratio\": ");
      cli_json_num(stdout, r->cublas_ms / r->tilec_ms);
      printf(", \"max_rel_diff\": ");
      cli_json_num(stdout, r->max_rel);
      printf(", \"unwritten\": %lld}", (long long)r->unwritten);
    }
    printf("]}\n");
    return;
  }
  printf("%s (%s), %s, %s, tilec config %s; cuBLASLt %s; median of %d\n", b->device, b->key,
         b->arch_used, ir_kind_name(b->kind), b->config, b->cublas, b->reps);
  printf("%-22s %10s %10s %10s %10s %7s %10s\n", "M x N x K", "tilec ms", "TFLOP/s", "cuBLAS ms",
         "TFLOP/s", "ratio", "max rel");
  for (int i = 0; i < n; i++) {
    const row *r = &rows[i];
    char dims[64];
    snprintf(dims, sizeof dims, "%lldx%lldx%lld", (long long)r->s.m, (long long)r->s.n,
             (long long)r->s.k);
    printf("%-22s %10.4f %10.1f %10.4f %10.1f %7.3f %10.2e%s\n", dims, r->tilec_ms,
           tflops(&r->s, r->tilec_ms), r->cublas_ms, tflops(&r->s, r->cublas_ms),
           r->cublas_ms / r->tilec_ms, r->max_rel,
           r->unwritten                ? "  UNWRITTEN"
           : r->max_rel > MAX_REL_DIFF ? "  MISMATCH"
                                       : "");
  }
}

int cli_bench_matmul(int argc, char **argv) {
  bench b = {0};
  shape3 shapes[MAX_SHAPES];
  row rows[MAX_SHAPES] = {0};
  int n, rc = parse(argc, argv, &b);
  if (rc || (rc = parse_shapes(b.shapes, shapes, &n)))
    return rc;
  rt_err e = {0};
  rt_status st;
  rt_device_info dev;
  if ((st = rt_ctx_open(0, 0, &b.ctx, &e)) || (st = rt_device_query(0, &dev, &e)) ||
      (st = rt_cublaslt_load(b.cublas, sizeof b.cublas, &e))) {
    rc = fail_rt(st, &e);
    goto done;
  }
  snprintf(b.device, sizeof b.device, "%s", dev.name);
  snprintf(b.key, sizeof b.key, "%s", dev.key);
  char want[sizeof dev.arch + 2];
  snprintf(want, sizeof want, "%s%s", dev.arch, dev.cc_major == 9 ? "a" : ""); /* sm_90a */
  const char *arch = b.arch ? b.arch : want;
  if (strlen(arch) >= sizeof b.arch_used || !cg_target_find(arch)) {
    rc = fail("not a target of this build: ", arch);
    goto done;
  }
  memcpy(b.arch_used, arch, strlen(arch) + 1);
  if ((st = rt_refs_load(b.ctx, dev.arch, &b.refs, &e))) {
    rc = fail_rt(st, &e);
    goto done;
  }
  if ((rc = compile(&b)))
    goto done;
  bool bad = false;
  for (int i = 0; i < n && !rc; i++) {
    rows[i].s = shapes[i];
    rc = one_shape(&b, &rows[i]);
    bad |= !rc && (rows[i].unwritten || rows[i].max_rel > MAX_REL_DIFF);
  }
  if (!rc) {
    print(&b, rows, n);
    if (bad)
      rc = fail("tilec and cuBLAS disagree (UNWRITTEN or MISMATCH above)", NULL);
  }
done:
  rt_module_unload(b.mod);
  rt_refs_unload(&b.refs);
  rt_ctx_close(b.ctx);
  cg_output_free(&b.out);
  ir_kernel_free(b.spec);
  ir_kernel_free(b.k);
  return rc;
}
