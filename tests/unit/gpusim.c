/* tests/unit/gpusim.c — the GPU-IR simulator (compiler/gpusim.c) against the interpreter.
 *
 * Every built-in kernel × configs (smallest tiles, largest, default, WARPS = 1/2/4/8, odd
 * mixes) × small and odd shapes (masks, GQA, causal, block sizes) is specialized, given layouts
 * by cc_gpu_build and run on the same inputs by the interpreter and by the simulator. The
 * simulator's outputs must pass the C reference check and equal the interpreter's within two
 * ulps of a bf16/f16 output dtype (four of f32: LSE goes through log2 of a row sum), relative
 * to the largest output: the two differ only in the f32 accumulation order of sums. The worst
 * difference per kernel is printed. Hand-written kernels sweep every power-of-two tile shape
 * and warp count through reductions, broadcasts, transposes, reshapes, loops, branches and dot
 * (replicated layouts included). Negative tests break one layout of a valid GPU IR (an
 * elementwise operand, a broadcast source, a reduce result, dot operands and accumulator) and
 * expect the simulator's located error. Seeds are printed; TILEC_SEED=N replays a run.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "compiler/gpu.h"
#include "compiler/gpusim.h"
#include "compiler/layout.h"
#include "ir/ir.h"
#include "kernels/builtin_sources.h"
#include "kernels/problem.h"
#include "kernels/rng.h"

typedef struct worst {
  double ulps;      /* max |sim - interp| in ulps (of the output dtype) of the largest output */
  int64_t differ;   /* output elements where sim and interp are not identical */
  int64_t elements; /* output elements compared */
  int cases;
  cc_sim_stats st; /* summed; smem_bytes: the largest */
} worst;

typedef struct ctx {
  uint64_t seed;
  worst w[4];
} ctx;

static const char *const kernels[4] = {"matmul", "attention", "bsattention", "bsmatmul"};

static bool output(const ir_arg *a) { return a->kind == ARG_PTR || a->dir != ARG_IN; }

static ir_kernel *parse(const char *name, const char *text) {
  ir_kernel *k = NULL;
  ir_diag d;
  if (ir_parse(text, strlen(text), name, &k, &d) || ir_verify(k, &d)) {
    fprintf(stderr, "%s\n", d.msg);
    ir_kernel_free(k);
    return NULL;
  }
  return k;
}

static ir_kernel *builtin(const char *name) {
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, name))
      return parse(name, s->text);
  return NULL;
}

static int mantissa_bits(ir_kind k) {
  return k == IR_BF16 ? 7 : k == IR_F16 ? 10 : k == IR_F32 ? 23 : 52;
}

static int kernel_index(const char *kernel) {
  for (int i = 0; i < 4; i++)
    if (!strcmp(kernels[i], kernel))
      return i;
  return 0;
}

/* Runs one built-in kernel problem on the interpreter and on the simulator. */
static void sim_case(ctx *c, const char *kernel, const char *set, const char *shape_spec,
                     const char *dtype) {
  char err[1024], what[512];
  snprintf(what, sizeof what, "%s --set %s --shape %s --dtype %s (seed %llu)", kernel,
           set ? set : "-", shape_spec, dtype ? dtype : "-", (unsigned long long)c->seed);
  ir_diag d = {0};
  kn_shape shape;
  ir_config cfg = {0};
  kn_problem p;
  memset(&p, 0, sizeof p);
  cc_gpu g = {0};
  ir_kernel *k = builtin(kernel), *spec = NULL;
  double *ref[KN_MAX_BUFS] = {0};
  bool ok = false;
  if (!k)
    goto done;
  err[0] = 0;
  if (kn_shape_parse(shape_spec, &shape, err, sizeof err) ||
      (set && ir_config_parse(&cfg, set, &d)) ||
      kn_problem_config(kernel, &shape, dtype, &cfg, err, sizeof err)) {
    fprintf(stderr, "setup: %s%s\n", err, d.msg);
    goto done;
  }
  if (ir_specialize(k, &cfg, &spec, &d) || ir_verify(spec, &d) || cc_gpu_build(spec, &g, &d)) {
    fprintf(stderr, "specialize/layouts: %s\n", d.msg);
    goto done;
  }
  if (kn_problem_build(&p, kernel, spec, &shape, c->seed++, err, sizeof err)) {
    fprintf(stderr, "build: %s\n", err);
    goto done;
  }
  ir_interp_opts io = {.nthreads = 2};
  if (ir_interp_run(spec, p.args, p.nargs, &io, &d)) {
    fprintf(stderr, "interp: %s\n", d.msg);
    goto done;
  }
  /* keep the interpreter's outputs, poison the buffers again */
  for (int i = 0; i < p.nbufs; i++) {
    kn_buf *b = &p.bufs[i];
    if (!b->output)
      continue;
    ref[i] = malloc(sizeof(double) * (size_t)(b->count ? b->count : 1));
    for (int64_t e = 0; e < b->count; e++) {
      ref[i][e] = ir_buf_get(b->kind, b->data, e);
      ir_buf_set(b->kind, b->data, e, ir_kind_is_float(b->kind) ? NAN : -1);
    }
  }
  cc_sim_stats st;
  cc_sim_opts so = {.nthreads = 2, .stats = &st, .strict = true};
  if (cc_sim_run(&g, p.args, p.nargs, &so, &d)) {
    fprintf(stderr, "sim: %s\n", d.msg);
    goto done;
  }
  if (kn_problem_check(&p, err, sizeof err)) {
    fprintf(stderr, "check: %s\n", err);
    goto done;
  }
  ok = true;
  for (int i = 0; i < p.nchecks; i++)
    if (!p.checks[i].r.pass) {
      ok = false;
      fprintf(stderr, "  reference check of %s: err %.3g tol %.3g nonfinite %lld\n",
              p.checks[i].name, p.checks[i].r.err, p.checks[i].r.tol,
              (long long)p.checks[i].r.n_nonfinite);
    }
  worst *w = &c->w[kernel_index(kernel)];
  for (int i = 0; i < p.nbufs; i++) {
    kn_buf *b = &p.bufs[i];
    if (!ref[i] || !ir_kind_is_float(b->kind))
      continue;
    kn_cmp_result r;
    int mb = mantissa_bits(b->kind);
    kn_compare(b->exact, ref[i], b->count, (b->kind == IR_F32 ? 4 : 2) * ldexp(1.0, -mb), &r);
    for (int64_t e = 0; e < b->count; e++)
      w->differ += !(b->exact[e] == ref[i][e] || (isnan(b->exact[e]) && isnan(ref[i][e])));
    w->elements += b->count;
    if (getenv("GPUSIM_VERBOSE"))
      fprintf(stderr, "  %s %s: %.3f ulps of max (max %g)\n", what, b->name, ldexp(r.err, mb),
              r.max_abs_ref);
    if (ldexp(r.err, mb) > w->ulps)
      w->ulps = ldexp(r.err, mb);
    if (!r.pass) {
      ok = false;
      fprintf(stderr,
              "  %s differs from the interpreter: err %.3g (tol %.3g), %lld non-finite, worst "
              "at %lld: %.9g vs %.9g\n",
              b->name, r.err, r.tol, (long long)r.n_nonfinite, (long long)r.worst,
              r.worst >= 0 ? b->exact[r.worst] : 0.0, r.worst >= 0 ? ref[i][r.worst] : 0.0);
    }
  }
  w->cases++;
  w->st.programs += st.programs;
  w->st.mmas += st.mmas;
  w->st.shuffles += st.shuffles;
  w->st.barriers += st.barriers;
  if (st.smem_bytes > w->st.smem_bytes)
    w->st.smem_bytes = st.smem_bytes;
done:
  if (!check_note(ok, __FILE__, __LINE__, "simulator equals interpreter and reference"))
    fprintf(stderr, "  case: %s\n", what);
  for (int i = 0; i < KN_MAX_BUFS; i++)
    free(ref[i]);
  kn_problem_free(&p);
  cc_gpu_free(&g);
  ir_kernel_free(spec);
  ir_kernel_free(k);
}

/* ---- the built-in kernels ------------------------------------------------------------------ */

static void matmul_cases(ctx *c) {
  const char *configs[] = {
      "BM=16,BN=16,BK=16,WARPS=1",
      "BM=16,BN=16,BK=16,WARPS=8", /* warps replicate */
      NULL,
      "BM=32,BN=16,BK=32,WARPS=2,GROUP_M=4",
      "BM=16,BN=64,BK=16,WARPS=8,GROUP_M=1",
      "BM=64,BN=32,BK=64,WARPS=4,TC=f32",
      "BM=32,BN=64,BK=16,WARPS=1",
      "BM=128,BN=256,BK=32,WARPS=8",
      "BM=256,BN=16,BK=128,WARPS=1,STAGES=1",
  };
  const char *shapes[] = {"M=33,N=17,K=45", "M=1,N=1,K=1", "M=20,N=40,K=16,transb=1"};
  for (size_t i = 0; i < sizeof configs / sizeof *configs; i++)
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
      sim_case(c, "matmul", configs[i], shapes[s], (i + s) % 2 ? "f16" : "bf16");
}

static void attention_cases(ctx *c) {
  const char *configs[] = {"BM=16,BN=16,WARPS=1", "BM=16,BN=16,WARPS=8", NULL,
                           "BM=32,BN=16,WARPS=2", "BM=16,BN=64,WARPS=8", "BM=128,BN=128,WARPS=8"};
  const char *shapes[] = {"B=1,H=2,S=33,D=64,causal=1", "B=1,H=4,HKV=2,S=65,SKV=33,D=64",
                          "B=1,H=1,S=17,D=128,causal=1"};
  for (size_t i = 0; i < sizeof configs / sizeof *configs; i++)
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
      sim_case(c, "attention", configs[i], shapes[s], (i + s) % 2 ? "f16" : "bf16");
}

static void bsattention_cases(ctx *c) {
  const char *masks[] = {"causal",     "document:10+30+17", "sliding:9",
                         "random:0.5", "prefix:13",         "causal,document:20+37"};
  const char *configs[] = {"BM=16,BN=16,WARPS=1", "BM=32,BN=16,WARPS=4", "BM=16,BN=32,WARPS=2",
                           NULL};
  for (size_t m = 0; m < sizeof masks / sizeof *masks; m++)
    for (size_t i = 0; i < 2; i++) {
      char shape[256];
      snprintf(shape, sizeof shape, "B=1,H=2,HKV=1,S=57,D=64,mask=%s", masks[m]);
      sim_case(c, "bsattention", configs[(m + 2 * i) % 4], shape, (m + i) % 2 ? "f16" : "bf16");
    }
  sim_case(c, "bsattention", "BM=16,BN=16,WARPS=8", "B=1,H=1,S=40,D=64,mask=sliding:16", NULL);
  sim_case(c, "bsattention", "BM=16,WARPS=2", "B=1,H=1,S=50,D=128,mask=causal,block=32", NULL);
  /* rows past SKV + W - 1 see no key: O = 0, LSE = -inf in both executors */
  sim_case(c, "bsattention", "BM=16,BN=16", "B=1,H=1,S=60,SKV=20,D=64,mask=sliding:8", NULL);
}

static void bsmatmul_cases(ctx *c) {
  const char *shapes[] = {"M=33,N=70,K=50,block=16", "M=20,N=64,K=64,block=32,density=0.5",
                          "M=7,N=64,K=64,block=64,density=0.4"};
  const char *configs[] = {"BM=16,WARPS=1", NULL, "BM=32,WARPS=2", "BM=16,WARPS=8,TC=f32"};
  for (size_t i = 0; i < sizeof configs / sizeof *configs; i++)
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
      sim_case(c, "bsmatmul", configs[i], shapes[s], (i + s) % 2 ? "f16" : "bf16");
  sim_case(c, "bsmatmul", "BM=128,WARPS=8", "M=20,N=130,K=128,block=128,density=0.5", "bf16");
}

/* ---- hand-written kernels ------------------------------------------------------------------ */

/* A hand-written kernel with its launch arguments: tensors of the declared element kind and
 * rank, dims looked up by symbol name; float inputs are positive (0.25 + |normal|) so that sums
 * do not cancel and the f32 accumulation order stays within a few ulps of the largest output;
 * integer inputs in -9..9; outputs and pointer buffers poisoned. */
typedef struct hand {
  ir_kernel *src; /* kept alive: the specialized kernel's op locations point into it */
  ir_kernel *k;
  cc_gpu g;
  ir_argval args[IR_MAX_ARGS];
  void *data[IR_MAX_ARGS];
  double *ref[IR_MAX_ARGS];
} hand;

static void hand_free(hand *h) {
  for (int a = 0; a < IR_MAX_ARGS; a++) {
    free(h->data[a]);
    free(h->ref[a]);
  }
  cc_gpu_free(&h->g);
  ir_kernel_free(h->k);
  ir_kernel_free(h->src);
  memset(h, 0, sizeof *h);
}

/* Parses and specializes text with set, builds the GPU IR and random tensors whose dims are
 * looked up by name in dims ("M=5,N=7"). */
static bool hand_build(hand *h, const char *text, const char *set, const char *dims,
                       uint64_t seed) {
  memset(h, 0, sizeof *h);
  ir_diag d = {0};
  ir_config cfg = {0};
  kn_shape sh;
  char err[256];
  ir_kernel *k = h->src = parse("hand", text);
  if (!k || (set && ir_config_parse(&cfg, set, &d)) || ir_specialize(k, &cfg, &h->k, &d) ||
      cc_gpu_build(h->k, &h->g, &d) || kn_shape_parse(dims, &sh, err, sizeof err)) {
    fprintf(stderr, "hand_build: %s\n", d.msg);
    return false;
  }
  kn_rng rng;
  kn_rng_seed(&rng, seed);
  for (int a = 0; a < h->k->nargs; a++) {
    const ir_arg *ka = &h->k->args[a];
    const ir_type *t = ka->value->ty;
    ir_argval *v = &h->args[a];
    int64_t n = 1;
    v->kind = ka->kind;
    if (ka->kind == ARG_PTR) { /* written through: as many elements as the key of its name */
      for (int j = 0; j < sh.n; j++)
        if (!strcmp(sh.kv[j].key, ka->name))
          n = atoll(sh.kv[j].val);
    } else {
      v->rank = t->rank;
      for (int i = t->rank - 1; i >= 0; i--) {
        const char *dn = h->k->syms[t->dims[i]->sym].name;
        v->shape[i] = 0;
        for (int j = 0; j < sh.n; j++)
          if (!strcmp(sh.kv[j].key, dn))
            v->shape[i] = atoll(sh.kv[j].val);
        v->stride[i] = n;
        n *= v->shape[i];
      }
    }
    v->count = n;
    ir_kind ek = t->elem->kind;
    h->data[a] = v->data = calloc((size_t)(n ? n : 1), 8);
    h->ref[a] = calloc((size_t)(n ? n : 1), sizeof(double));
    for (int64_t e = 0; e < n; e++) {
      double x = ir_kind_is_float(ek) ? 0.25 + fabs(kn_rng_normal(&rng))
                                      : (double)(kn_rng_u64(&rng) % 19) - 9;
      bool in = ka->kind == ARG_TENSOR && ka->dir == ARG_IN;
      ir_buf_set(ek, v->data, e, in ? x : ir_kind_is_float(ek) ? NAN : -77);
    }
  }
  return true;
}

/* Runs h on the interpreter and the simulator; outputs must agree within 32 ulps of the
 * largest output (f32 sums of up to 8192 terms and loops that accumulate them, rounded per
 * combine in the simulator but once in the interpreter; a wrong element is off by far more)
 * and exactly for integers. */
static void hand_compare(hand *h, const char *what, bool strict, cc_sim_stats *st) {
  ir_diag d = {0};
  cc_sim_opts so = {.stats = st, .strict = strict};
  bool ok = true;
  if (ir_interp_run(h->k, h->args, h->k->nargs, NULL, &d)) {
    fprintf(stderr, "interp: %s\n", d.msg);
    ok = false;
  }
  for (int a = 0; a < h->k->nargs && ok; a++) {
    ir_kind ek = h->k->args[a].value->ty->elem->kind;
    if (!output(&h->k->args[a]))
      continue;
    for (int64_t e = 0; e < h->args[a].count; e++) {
      h->ref[a][e] = ir_buf_get(ek, h->data[a], e);
      ir_buf_set(ek, h->data[a], e, ir_kind_is_float(ek) ? NAN : -77);
    }
  }
  if (ok && cc_sim_run(&h->g, h->args, h->k->nargs, &so, &d)) {
    fprintf(stderr, "sim: %s\n", d.msg);
    ok = false;
  }
  for (int a = 0; a < h->k->nargs && ok; a++) {
    ir_kind ek = h->k->args[a].value->ty->elem->kind;
    if (!output(&h->k->args[a]))
      continue;
    double *out = malloc(sizeof(double) * (size_t)h->args[a].count);
    for (int64_t e = 0; e < h->args[a].count; e++)
      out[e] = ir_buf_get(ek, h->data[a], e);
    kn_cmp_result r;
    kn_compare(out, h->ref[a], h->args[a].count,
               ir_kind_is_float(ek) ? 32 * ldexp(1.0, -mantissa_bits(ek)) : 0, &r);
    if (!r.pass) {
      fprintf(stderr, "  %s: output %s differs: err %.3g, worst at %lld: %g vs %g\n", what,
              h->k->args[a].name, r.err, (long long)r.worst, r.worst >= 0 ? out[r.worst] : 0.0,
              r.worst >= 0 ? h->ref[a][r.worst] : 0.0);
      ok = false;
    }
    free(out);
  }
  if (!check_note(ok, __FILE__, __LINE__, "hand-written kernel: simulator equals interpreter"))
    fprintf(stderr, "  case: %s\n", what);
}

static const char *reduce_text =
    "kernel red\n"
    "tunables {\n"
    "  BM = 16 in [1, 2, 3, 4, 5, 8, 12, 16, 24, 32, 40, 64, 128]\n"
    "  BN = 16 in [1, 2, 3, 4, 5, 8, 12, 16, 24, 32, 40, 64, 128]\n"
    "  WARPS = 4 in [1, 2, 4, 8]\n"
    "}\n"
    "args (%X: tensor<f32>[M, N], %I: tensor<i32>[M, N], %R0: out tensor<f32>[M], %R1: out "
    "tensor<f32>[N], %R2: out tensor<i32>[M], %R3: out tensor<i32>[N], %O: out tensor<f32>[M, N], "
    "%T: out tensor<f32>[N, M], %Q: out tensor<f32>[N, M], %S: out tensor<f32>[K], %SI: out "
    "tensor<i32>[K], %RB: out tensor<bf16>[M])\n"
    "grid (1)\n"
    "{\n"
    "  %z = const 0 : i32\n"
    "  %x = load %X[%z, %z] : tile<BM, BN, f32>\n"
    "  %s1 = reduce sum %x, 1 : tile<BM, f32>\n"
    "  store %R0[%z], %s1\n"
    "  %m0 = reduce max %x, 0 : tile<BN, f32>\n"
    "  %n0 = reduce min %x, 0 : tile<BN, f32>\n"
    "  %mn = add %m0, %n0 : tile<BN, f32>\n"
    "  store %R1[%z], %mn\n"
    "  %i = load %I[%z, %z] : tile<BM, BN, i32>\n"
    "  %is = reduce sum %i, 1 : tile<BM, i32>\n"
    "  store %R2[%z], %is\n"
    "  %im = reduce max %i, 0 : tile<BN, i32>\n"
    "  store %R3[%z], %im\n"
    "  %s2 = expand_dims %s1, 1 : tile<BM, 1, f32>\n"
    "  %sb = broadcast %s2 : tile<BM, BN, f32>\n"
    "  %m2 = expand_dims %m0, 0 : tile<1, BN, f32>\n"
    "  %mb = broadcast %m2 : tile<BM, BN, f32>\n"
    "  %o1 = sub %x, %sb : tile<BM, BN, f32>\n"
    "  %o = mul %o1, %mb : tile<BM, BN, f32>\n"
    "  store %O[%z, %z], %o\n"
    "  %t = trans %o : tile<BN, BM, f32>\n"
    "  store %T[%z, %z], %t\n"
    "  %q = reshape %x : tile<BN, BM, f32>\n"
    "  store %Q[%z, %z], %q\n"
    "  %a1 = abs %s1 : tile<BM, f32>\n"
    "  %all = reduce max %a1, 0 : f32\n"
    "  %allt = full %all : tile<BM, f32>\n"
    "  store %S[%z], %allt\n"
    "  %isall = reduce sum %is, 0 : i32\n"
    "  %isallt = full %isall : tile<BM, i32>\n"
    "  store %SI[%z], %isallt\n"
    "  %xb = cast %x : tile<BM, BN, bf16>\n"
    "  %sbf = reduce sum %xb, 1 : tile<BM, bf16>\n"
    "  store %RB[%z], %sbf\n"
    "}\n";

static const char *mma_text =
    "kernel mm\n"
    "tunables {\n"
    "  BM = 16 in [16, 32, 64, 128]\n"
    "  BN = 16 in [8, 16, 32, 64, 128]\n"
    "  BK = 16 in [8, 16, 32, 64]\n"
    "  WARPS = 4 in [1, 2, 4, 8]\n"
    "}\n"
    "args (%A: tensor<bf16>[M, K], %B: tensor<bf16>[K, N], %R: out tensor<f32>[M], %C: out "
    "tensor<f32>[N], %T: out tensor<f32>[N, M], %Q: out tensor<f32>[N, M])\n"
    "grid (1)\n"
    "{\n"
    "  %z = const 0 : i32\n"
    "  %a = load %A[%z, %z] : tile<BM, BK, bf16>\n"
    "  %b = load %B[%z, %z] : tile<BK, BN, bf16>\n"
    "  %c0 = zeros : tile<BM, BN, f32>\n"
    "  %c = dot %a, %b, %c0 : tile<BM, BN, f32>\n"
    "  %r = reduce max %c, 1 : tile<BM, f32>\n"
    "  store %R[%z], %r\n"
    "  %col = reduce sum %c, 0 : tile<BN, f32>\n"
    "  store %C[%z], %col\n"
    "  %t = trans %c : tile<BN, BM, f32>\n"
    "  store %T[%z, %z], %t\n"
    "  %q = reshape %c : tile<BN, BM, f32>\n"
    "  store %Q[%z, %z], %q\n"
    "}\n";

static const char *control_text = "kernel ctl\n"
                                  "tunables {\n"
                                  "  BM = 16 in [1, 2, 4, 8, 16, 32, 64]\n"
                                  "  BN = 32 in [1, 2, 4, 8, 16, 32, 64]\n"
                                  "  WARPS = 4 in [1, 2, 4, 8]\n"
                                  "}\n"
                                  "args (%X: tensor<f32>[M, N], %P: ptr<f32>, %O: out "
                                  "tensor<f32>[M, N], %O3: out tensor<f32>[M])\n"
                                  "grid (2)\n"
                                  "{\n"
                                  "  %z = const 0 : i32\n"
                                  "  %one = const 1 : i32\n"
                                  "  %three = const 3 : i32\n"
                                  "  %pid = program_id 0 : i32\n"
                                  "  %x = load %X[%z, %z] : tile<BM, BN, f32>\n"
                                  "  %row = reduce max %x, 0 : tile<BN, f32>\n"
                                  "  %row2 = expand_dims %row, 0 : tile<1, BN, f32>\n"
                                  "  %rb = broadcast %row2 : tile<BM, BN, f32>\n"
                                  "  %h = const 0.5 : f32\n"
                                  "  %hs = broadcast %h : tile<BM, BN, f32>\n"
                                  "  %acc0 = zeros : tile<BM, BN, f32>\n"
                                  "  %r0 = zeros : tile<BN, f32>\n"
                                  "  %acc, %r = for %i = %z to %three step %one iter(%a = %acc0, "
                                  "%rr = %r0) : tile<BM, BN, f32>, tile<BN, f32> {\n"
                                  "    %t = trans %a : tile<BN, BM, f32>\n"
                                  "    %tt = trans %t : tile<BM, BN, f32>\n"
                                  "    %c = cmp eq %i, %one : i1\n"
                                  "    %y = if %c : tile<BM, BN, f32> {\n"
                                  "      %y1 = add %tt, %rb : tile<BM, BN, f32>\n"
                                  "      yield %y1\n"
                                  "    } else {\n"
                                  "      %y2 = mul %x, %hs : tile<BM, BN, f32>\n"
                                  "      %y3 = add %tt, %y2 : tile<BM, BN, f32>\n"
                                  "      yield %y3\n"
                                  "    }\n"
                                  "    %cs = reduce max %y, 1 : tile<BM, f32>\n"
                                  "    %cs2 = expand_dims %cs, 1 : tile<BM, 1, f32>\n"
                                  "    %csb = broadcast %cs2 : tile<BM, BN, f32>\n"
                                  "    %y4 = sub %y, %csb : tile<BM, BN, f32>\n"
                                  "    %rs = reduce min %y4, 0 : tile<BN, f32>\n"
                                  "    %rr2 = add %rr, %rs : tile<BN, f32>\n"
                                  "    yield %y4, %rr2\n"
                                  "  }\n"
                                  "  store %O[%z, %z], %acc\n"
                                  "  %cols = arange 0, BN : tile<BN, i32>\n"
                                  "  %pp = addptr %P, %cols : tile<BN, ptr<f32>>\n"
                                  "  %lim = const N : i32\n"
                                  "  %m = cmp lt %cols, %lim : tile<BN, i1>\n"
                                  "  %isz = cmp eq %pid, %z : i1\n"
                                  "  if %isz {\n"
                                  "    store_ptr %pp, %r, %m\n"
                                  "    yield\n"
                                  "  }\n"
                                  "  %rows = reduce min %acc, 1 : tile<BM, f32>\n"
                                  "  store %O3[%z], %rows\n"
                                  "}\n";

/* Every power-of-two tile shape from 1 x 1 (all threads replicate every element) to 128 x 64
 * on 1 to 8 warps: reductions along both axes, integer, bf16 (combined in f32) and scalar
 * reductions, expand/broadcast, trans and reshape (red); loops carrying tiles through
 * transposes, if/else yielding tiles computed in different layouts, a scalar broadcast, masked
 * pointer stores under an if, two programs (ctl; its reductions are max/min, exact in both
 * executors, because the loop subtracts row maxima and would magnify the accumulation-order
 * differences of sums). All strict: none may need the shared-memory fallback. */
static void hand_blocked_cases(ctx *c) {
  for (int bm = 1; bm <= 128; bm *= 2)
    for (int bn = 1; bn <= 128 && bm * bn <= 8192; bn *= 2)
      for (int w = 1; w <= 8; w *= 2) {
        char set[128], dims[128], what[256];
        snprintf(set, sizeof set, "BM=%d,BN=%d,WARPS=%d", bm, bn, w);
        snprintf(dims, sizeof dims, "M=%d,N=%d,K=%d,P=%d", bm, bn, bm, bn);
        hand h;
        snprintf(what, sizeof what, "red %s", set);
        if (CHECK(hand_build(&h, reduce_text, set, dims, c->seed++)))
          hand_compare(&h, what, true, NULL);
        hand_free(&h);
        if (bm > 64 || bn > 64)
          continue;
        snprintf(what, sizeof what, "ctl %s", set);
        if (CHECK(hand_build(&h, control_text, set, dims, c->seed++)))
          hand_compare(&h, what, true, NULL);
        hand_free(&h);
      }
}

/* dot at every BM 16..128 x BN 8..128 x BK 8..64 x WARPS 1..8 on tensors 3 rows and 5 columns
 * of K short of the tile, then reductions of the MMA accumulator along both axes, a transpose
 * and a reshape of it. Covers warps that replicate the accumulator (BN = 8 over 8 warps) and K
 * tiles of 8, whose fragments' upper K half wraps onto the tile and must count as zero. */
static void hand_mma_cases(ctx *c) {
  for (int bm = 16; bm <= 128; bm *= 2)
    for (int bn = 8; bn <= 128; bn *= 2)
      for (int bk = 8; bk <= 64; bk *= 2)
        for (int w = 1; w <= 8; w *= 2) {
          char set[128], dims[128], what[256];
          snprintf(set, sizeof set, "BM=%d,BN=%d,BK=%d,WARPS=%d", bm, bn, bk, w);
          snprintf(dims, sizeof dims, "M=%d,N=%d,K=%d", bm - 3, bn, bk - 5);
          snprintf(what, sizeof what, "mm %s", set);
          hand h;
          if (CHECK(hand_build(&h, mma_text, set, dims, c->seed++)))
            hand_compare(&h, what, true, NULL);
          hand_free(&h);
        }
}

/* f8 dots (mma.m16n8k32 fragments, kw = 4), both f8 kinds and a mixed pair, at odd M and K
 * (K past the tile wraps onto real columns and must read as zero). A DOTOP layout with the
 * 16-bit kw must be rejected. */
static const ir_op *find_op(const ir_block *b, ir_opcode code, int nth);

#define MMA_F8_TEXT                                                                                \
  "kernel mm8\n"                                                                                   \
  "tunables {\n"                                                                                   \
  "  BM = 16 in [16, 32, 64, 128]\n"                                                               \
  "  BN = 16 in [8, 16, 32, 64, 128]\n"                                                            \
  "  BK = 32 in [16, 32, 64, 128]\n"                                                               \
  "  WARPS = 4 in [1, 2, 4, 8]\n"                                                                  \
  "}\n"                                                                                            \
  "args (%%A: tensor<%s>[M, K], %%B: tensor<%s>[K, N], %%C: out "                                  \
  "tensor<f32>[M, N])\n"                                                                           \
  "grid (1)\n"                                                                                     \
  "{\n"                                                                                            \
  "  %%z = const 0 : i32\n"                                                                        \
  "  %%a = load %%A[%%z, %%z] : tile<BM, BK, %s>\n"                                                \
  "  %%b = load %%B[%%z, %%z] : tile<BK, BN, %s>\n"                                                \
  "  %%c0 = zeros : tile<BM, BN, f32>\n"                                                           \
  "  %%c = dot %%a, %%b, %%c0 : tile<BM, BN, f32>\n"                                               \
  "  store %%C[%%z, %%z], %%c\n"                                                                   \
  "}\n"

static void hand_f8_cases(ctx *c) {
  static const char *const kinds[3][2] = {
      {"f8e4m3", "f8e4m3"}, {"f8e5m2", "f8e5m2"}, {"f8e4m3", "f8e5m2"}};
  char text[2048];
  int n = 0;
  for (int ki = 0; ki < 3; ki++) {
    snprintf(text, sizeof text, MMA_F8_TEXT, kinds[ki][0], kinds[ki][1], kinds[ki][0],
             kinds[ki][1]);
    for (int bm = 16; bm <= 64; bm *= 2)
      for (int bn = 8; bn <= 64; bn *= 4)
        for (int bk = 16; bk <= 128; bk *= 2)
          for (int w = 1; w <= 8; w *= 2) {
            char set[128], dims[128], what[256];
            snprintf(set, sizeof set, "BM=%d,BN=%d,BK=%d,WARPS=%d", bm, bn, bk, w);
            snprintf(dims, sizeof dims, "M=%d,N=%d,K=%d", bm - 3, bn, bk - 5);
            snprintf(what, sizeof what, "mm8 %s x %s %s", kinds[ki][0], kinds[ki][1], set);
            hand h;
            if (CHECK(hand_build(&h, text, set, dims, c->seed++))) {
              hand_compare(&h, what, true, NULL);
              n++;
            }
            hand_free(&h);
          }
  }
  fprintf(stderr, "gpusim: %d f8 dot cases\n", n);
  hand h;
  snprintf(text, sizeof text, MMA_F8_TEXT, "f8e4m3", "f8e4m3", "f8e4m3", "f8e4m3");
  if (CHECK(hand_build(&h, text, "BM=32,BN=16,BK=64,WARPS=2", "M=32,N=16,K=64", c->seed++))) {
    const ir_op *op = find_op(h.k->body, IR_OP_DOT, 0);
    ly_layout *l = ir_alloc(h.k->arena, sizeof *l);
    *l = *h.g.lay[op->operands[0]->id];
    l->kw = 2;
    h.g.lay[op->operands[0]->id] = l;
    ir_diag d = {0};
    CHECK(cc_sim_run(&h.g, h.args, h.k->nargs, NULL, &d) != IR_OK);
    CHECK_CONTAINS(d.msg, "with kw=4");
  }
  hand_free(&h);
}

/* ---- negative tests: a broken layout must be reported ------------------------------------ */

static const ir_op *find_op(const ir_block *b, ir_opcode code, int nth) {
  for (const ir_op *op = b->first; op; op = op->next) {
    if (op->code == code && nth-- == 0)
      return op;
    for (int r = 0; r < op->nregions; r++)
      if (op->regions[r]) {
        const ir_op *x = find_op(op->regions[r], code, nth);
        if (x)
          return x;
      }
  }
  return NULL;
}

/* Replaces the layout of one value of h's GPU IR: operand `operand` (or the result, -1) of the
 * first op with the given code, by a layout chosen by `how`. False when there is no such op. */
static bool break_layout(hand *h, ir_opcode code, int operand, int how) {
  const ir_op *op = find_op(h->k->body, code, 0);
  if (!op)
    return false;
  const ir_value *v = operand >= 0 ? op->operands[operand] : op->results[0];
  int rank;
  int64_t shape[IR_MAX_RANK];
  ir_type_shape(v->ty, &rank, shape);
  const ly_layout *old = h->g.lay[v->id];
  ly_layout *l = ir_alloc(h->k->arena, sizeof *l);
  ly_layout *parent = ir_alloc(h->k->arena, sizeof *parent);
  switch (how) {
  case 0: /* a BLOCKED layout of the value's shape */
    *l = ly_blocked(rank, shape, 32, h->g.warps);
    break;
  case 1: /* a BLOCKED layout of the transposed shape (2-D): other threads hold the elements */
  {
    int64_t ts[2] = {shape[1], shape[0]};
    *l = ly_blocked(2, ts, 32, h->g.warps);
    for (int i = 0; i < 2; i++)
      l->order[i] = 1 - l->order[i];
    int t = l->tpw[0];
    l->tpw[0] = l->tpw[1];
    l->tpw[1] = t;
    break;
  }
  case 2: /* the same operand kind with a parent MMA of other warp shape */
    *parent = *old->parent;
    parent->wpc[0] = old->parent->wpc[1];
    parent->wpc[1] = old->parent->wpc[0];
    *l = ly_dotop(parent, old->opidx, old->kw);
    break;
  default: /* the slice along the other dim */
    *l = *old;
    l->dim = 1 - old->dim;
    break;
  }
  h->g.lay[v->id] = l;
  return true;
}

/* Builds the kernel, breaks one layout and expects a strict cc_sim_run to fail with a message
 * containing want. */
static void expect_error(ctx *c, const char *text, const char *set, const char *dims,
                         ir_opcode code, int operand, int how, const char *want) {
  hand h;
  ir_diag d = {0};
  /* the intact GPU IR runs */
  if (CHECK(hand_build(&h, text, set, dims, c->seed++)) &&
      CHECK(cc_sim_run(&h.g, h.args, h.k->nargs, NULL, &d) == IR_OK) &&
      CHECK(break_layout(&h, code, operand, how))) {
    cc_sim_opts so = {.strict = true};
    ir_status s = cc_sim_run(&h.g, h.args, h.k->nargs, &so, &d);
    if (!CHECK(s == IR_ERR_VERIFY) || !CHECK(strstr(d.msg, want) != NULL))
      fprintf(stderr, "  wanted \"%s\", got: %s\n", want, s ? d.msg : "success");
  }
  hand_free(&h);
}

static const char *ew_text = "kernel ew\n"
                             "tunables {\n"
                             "  WARPS = 4 in [1, 2, 4, 8]\n"
                             "}\n"
                             "args (%X: tensor<f32>[M, N], %Y: out tensor<f32>[M, N])\n"
                             "grid (1)\n"
                             "{\n"
                             "  %z = const 0 : i32\n"
                             "  %x = load %X[%z, %z] : tile<32, 16, f32>\n"
                             "  %c = load %X[%z, %z] : tile<32, 1, f32>\n"
                             "  %cb = broadcast %c : tile<32, 16, f32>\n"
                             "  %r = reduce sum %x, 1 : tile<32, f32>\n"
                             "  %r2 = expand_dims %r, 1 : tile<32, 1, f32>\n"
                             "  %rb = broadcast %r2 : tile<32, 16, f32>\n"
                             "  %w = load %X[%z, %z] : tile<32, 16, f32>\n"
                             "  %y = add %w, %rb : tile<32, 16, f32>\n"
                             "  %y2 = mul %y, %cb : tile<32, 16, f32>\n"
                             "  store %Y[%z, %z], %y2\n"
                             "}\n";

static void negative_cases(ctx *c) {
  /* an elementwise operand in another layout than the result */
  expect_error(c, ew_text, "WARPS=4", "M=32,N=16", IR_OP_ADD, 0, 1, "layout mismatch at 'add'");
  /* a broadcast whose source is held by other threads */
  expect_error(c, ew_text, "WARPS=2", "M=32,N=16", IR_OP_BROADCAST, 0, 1,
               "does not hold element (8, 0) of %c for 'broadcast'");
  /* an expand_dims whose source is held by other threads */
  expect_error(c, ew_text, "WARPS=2", "M=32,N=16", IR_OP_EXPAND_DIMS, -1, 1, "for 'expand_dims'");
  /* a reduce result sliced along the wrong dim */
  expect_error(c, ew_text, "WARPS=4", "M=32,N=16", IR_OP_REDUCE, -1, 3, "for 'reduce'");
  /* dot operands: BLOCKED instead of DOTOP, and DOTOP of an MMA layout of other warp shape */
  expect_error(c, mma_text, "BM=32,BN=32,BK=32,WARPS=4", "M=32,N=32,K=32", IR_OP_DOT, 0, 0,
               "must be in a DOTOP layout");
  expect_error(c, mma_text, "BM=32,BN=32,BK=32,WARPS=4", "M=32,N=32,K=32", IR_OP_DOT, 1, 0,
               "must be in a DOTOP layout");
  expect_error(c, mma_text, "BM=64,BN=32,BK=32,WARPS=4", "M=64,N=32,K=32", IR_OP_DOT, 0, 2,
               "DOTOP layout disagrees with the mma fragment");
  expect_error(c, mma_text, "BM=64,BN=64,BK=16,WARPS=4", "M=64,N=64,K=16", IR_OP_DOT, 1, 2,
               "DOTOP layout disagrees with the mma fragment");
  /* the accumulator in a BLOCKED layout */
  expect_error(c, mma_text, "BM=32,BN=32,BK=32,WARPS=2", "M=32,N=32,K=32", IR_OP_DOT, 2, 0,
               "layout mismatch at 'dot'");
}

/* Reductions the register algorithm cannot do run through the lowering's shared-memory
 * fallback when the run is not strict, and still equal the interpreter: a reduce result sliced
 * along the wrong dim, and tiles whose sizes are not powers of two (their layouts wrap onto
 * partly overlapping lanes, which butterflies would count twice). */
static void fallback_cases(ctx *c) {
  hand h;
  cc_sim_stats st = {0};
  const char *text = "kernel fb\n"
                     "args (%X: tensor<f32>[M, N], %Y: out tensor<f32>[M])\n"
                     "grid (1)\n"
                     "{\n"
                     "  %z = const 0 : i32\n"
                     "  %x = load %X[%z, %z] : tile<32, 16, f32>\n"
                     "  %r = reduce sum %x, 1 : tile<32, f32>\n"
                     "  store %Y[%z], %r\n"
                     "}\n";
  if (CHECK(hand_build(&h, text, NULL, "M=32,N=16", c->seed++)) &&
      CHECK(break_layout(&h, IR_OP_REDUCE, -1, 3))) {
    hand_compare(&h, "ew with a broken reduce layout", false, &st);
    CHECK(st.reduce_fallbacks == 1);
  }
  hand_free(&h);
  const int shapes[][2] = {{3, 5}, {24, 40}, {40, 24}, {5, 128}, {12, 1}};
  int64_t fallbacks = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
    for (int w = 1; w <= 8; w *= 4) {
      char set[128], dims[128], what[256];
      snprintf(set, sizeof set, "BM=%d,BN=%d,WARPS=%d", shapes[s][0], shapes[s][1], w);
      snprintf(dims, sizeof dims, "M=%d,N=%d,K=%d", shapes[s][0], shapes[s][1], shapes[s][0]);
      snprintf(what, sizeof what, "red %s", set);
      if (CHECK(hand_build(&h, reduce_text, set, dims, c->seed++))) {
        hand_compare(&h, what, false, &st);
        fallbacks += st.reduce_fallbacks;
      }
      hand_free(&h);
    }
  CHECK(fallbacks > 0);
}

/* mma counts: a 16 x 16 x 16 product on one warp is two m16n8k16 instructions. */
static void stats_cases(ctx *c) {
  hand h;
  if (CHECK(hand_build(&h, mma_text, "BM=16,BN=16,BK=16,WARPS=1", "M=16,N=16,K=16", c->seed++))) {
    cc_sim_stats st;
    cc_sim_opts o = {.stats = &st};
    ir_diag d;
    if (CHECK(cc_sim_run(&h.g, h.args, h.k->nargs, &o, &d) == IR_OK)) {
      CHECK_EQ_INT(2, (int)st.mmas);
      CHECK_EQ_INT(1, (int)st.programs);
      CHECK(st.shuffles > 0 && st.smem_bytes > 0 && st.barriers > 0);
    }
  }
  hand_free(&h);
}

int main(void) {
  const char *env = getenv("TILEC_SEED");
  ctx c = {.seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL)};
  fprintf(stderr, "gpusim: seed %llu (replay with TILEC_SEED=%llu)\n", (unsigned long long)c.seed,
          (unsigned long long)c.seed);
  clock_t t0 = clock();
  stats_cases(&c);
  negative_cases(&c);
  fallback_cases(&c);
  hand_blocked_cases(&c);
  hand_mma_cases(&c);
  hand_f8_cases(&c);
  matmul_cases(&c);
  attention_cases(&c);
  bsattention_cases(&c);
  bsmatmul_cases(&c);
  for (int i = 0; i < 4; i++)
    fprintf(stderr,
            "gpusim: %-11s %2d cases: max |sim - interp| %.3f ulps of the largest output, %lld of "
            "%lld elements differ; %lld CTAs, %lld mma, %lld shfl, %lld bar.sync, smem <= %lld B\n",
            kernels[i], c.w[i].cases, c.w[i].ulps, (long long)c.w[i].differ,
            (long long)c.w[i].elements, (long long)c.w[i].st.programs, (long long)c.w[i].st.mmas,
            (long long)c.w[i].st.shuffles, (long long)c.w[i].st.barriers,
            (long long)c.w[i].st.smem_bytes);
  fprintf(stderr, "gpusim: %.2f s CPU\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
  return TEST_MAIN_END();
}
