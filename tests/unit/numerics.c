/* tests/unit/numerics.c — every built-in kernel on the interpreter against its C reference.
 *
 * Kernels × configs (smallest, default, odd mixes) × odd shapes (1, 7, 33, 257, non-multiples
 * of every tile) × dtypes, with fresh random inputs per run (the seed is printed so a failure
 * can be replayed with TILEC_SEED=N). The checker itself must reject an all-zero output, a sign
 * flip and a 1.05× scaled output. Block-sparse attention is checked for every mask kind
 * against dense attention with the same element mask (the reference), and against the dense
 * attention kernel for a causal mask.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "ir/ir.h"
#include "kernels/builtin_sources.h"
#include "kernels/problem.h"

static uint64_t seed;

static ir_kernel *builtin(const char *name) {
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, name)) {
      ir_kernel *k = NULL;
      ir_diag d;
      if (ir_parse(s->text, strlen(s->text), name, &k, &d) || ir_verify(k, &d)) {
        fprintf(stderr, "%s\n", d.msg);
        ir_kernel_free(k);
        return NULL;
      }
      return k;
    }
  return NULL;
}

/* Runs kernel on the interpreter; leaves the checked problem in p (caller frees). */
static bool run(const char *kernel, const char *set, const char *shape_spec, const char *dtype,
                kn_problem *p) {
  char err[1024];
  ir_diag d;
  kn_shape shape;
  ir_config cfg = {0};
  ir_kernel *k = builtin(kernel), *spec = NULL;
  bool ok = false;
  memset(p, 0, sizeof *p);
  if (!CHECK(k != NULL))
    return false;
  if (kn_shape_parse(shape_spec, &shape, err, sizeof err) ||
      (set && ir_config_parse(&cfg, set, &d)) ||
      kn_problem_config(kernel, &shape, dtype, &cfg, err, sizeof err)) {
    fprintf(stderr, "setup %s %s: %s%s\n", kernel, shape_spec, err, d.msg);
    goto done;
  }
  if (ir_specialize(k, &cfg, &spec, &d) || ir_verify(spec, &d)) {
    fprintf(stderr, "specialize %s [%s]: %s\n", kernel, set ? set : "", d.msg);
    goto done;
  }
  if (kn_problem_build(p, kernel, spec, &shape, seed++, err, sizeof err)) {
    fprintf(stderr, "build %s %s: %s\n", kernel, shape_spec, err);
    goto done;
  }
  ir_interp_opts io = {.nthreads = 2};
  if (ir_interp_run(spec, p->args, p->nargs, &io, &d)) {
    fprintf(stderr, "run %s %s [%s]: %s\n", kernel, shape_spec, set ? set : "", d.msg);
    goto done;
  }
  if (kn_problem_check(p, err, sizeof err)) {
    fprintf(stderr, "check %s: %s\n", kernel, err);
    goto done;
  }
  ok = true;
  for (int i = 0; i < p->nchecks; i++)
    if (!p->checks[i].r.pass) {
      ok = false;
      fprintf(stderr, "MISMATCH %s %s [%s] %s: %s err %.3g tol %.3g nonfinite %lld (seed %llu)\n",
              kernel, shape_spec, set ? set : "", dtype ? dtype : "", p->checks[i].name,
              p->checks[i].r.err, p->checks[i].r.tol, (long long)p->checks[i].r.n_nonfinite,
              (unsigned long long)(seed - 1));
    }
done:
  ir_kernel_free(spec);
  ir_kernel_free(k);
  return ok;
}

static void expect_pass(const char *kernel, const char *set, const char *shape, const char *dtype) {
  kn_problem p;
  bool ok = run(kernel, set, shape, dtype, &p);
  check_note(ok, __FILE__, __LINE__, kernel);
  if (!ok)
    fprintf(stderr, "  case: %s --set %s --shape %s --dtype %s\n", kernel, set ? set : "-", shape,
            dtype ? dtype : "-");
  kn_problem_free(&p);
}

/* Corrupts the first output of a passing run in three ways; each must fail the check. */
static void checker_rejects(const char *kernel, const char *shape) {
  kn_problem p;
  char err[256];
  if (!CHECK(run(kernel, NULL, shape, NULL, &p))) {
    kn_problem_free(&p);
    return;
  }
  kn_buf *out = &p.bufs[p.ref_buf[0]];
  double *saved = malloc(sizeof(double) * (size_t)out->count);
  for (int64_t e = 0; e < out->count; e++)
    saved[e] = ir_buf_get(out->kind, out->data, e);
  for (int mode = 0; mode < 4; mode++) {
    for (int64_t e = 0; e < out->count; e++) {
      double v = mode == 0 ? 0 : mode == 1 ? -saved[e] : mode == 2 ? 1.05 * saved[e] : saved[e];
      if (mode == 3 && e == out->count / 2)
        v = NAN;
      ir_buf_set(out->kind, out->data, e, v);
    }
    CHECK(kn_problem_check(&p, err, sizeof err) == 0);
    if (!CHECK(!p.checks[0].r.pass))
      fprintf(stderr, "  %s: corruption %d passed the checker (err %.3g tol %.3g)\n", kernel, mode,
              p.checks[0].r.err, p.checks[0].r.tol);
  }
  free(saved);
  kn_problem_free(&p);
}

static void matmul_cases(void) {
  const char *configs[] = {
      "BM=16,BN=16,BK=16,WARPS=1,STAGES=1,GROUP_M=1",
      NULL, /* the default config */
      "BM=32,BN=16,BK=32,GROUP_M=4",
      "BM=16,BN=64,BK=16,GROUP_M=8",
      "BM=64,BN=32,BK=64,GROUP_M=16",
  };
  const char *shapes[] = {"M=1,N=1,K=1",    "M=7,N=33,K=257",   "M=33,N=7,K=45",
                          "M=65,N=47,K=33", "M=130,N=129,K=31", "M=33,N=65,K=20,transb=1"};
  const char *dtypes[] = {"bf16", "f16"};
  for (size_t c = 0; c < sizeof configs / sizeof *configs; c++)
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
      expect_pass("matmul", configs[c], shapes[s], dtypes[(c + s) % 2]);
  expect_pass("matmul", "TC=f32,BM=16,BN=16,BK=16", "M=17,N=9,K=100", "bf16");
  expect_pass("matmul", "TA=f16,TC=f32,BM=32,BN=32,BK=16", "M=40,N=33,K=77", NULL);
}

static void attention_cases(void) {
  const char *configs[] = {"BM=16,BN=16", NULL, "BM=32,BN=16", "BM=16,BN=64,WARPS=8"};
  const char *shapes[] = {
      "B=1,H=1,S=1,D=64",          "B=1,H=2,S=7,D=64,causal=1",
      "B=2,H=2,HKV=1,S=33,D=64",   "B=1,H=4,HKV=2,S=65,SKV=33,D=64,causal=1",
      "B=1,H=1,S=40,SKV=97,D=128", "B=1,H=2,S=257,D=64,causal=1",
  };
  for (size_t c = 0; c < sizeof configs / sizeof *configs; c++)
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
      expect_pass("attention", configs[c], shapes[s], (c + s) % 2 ? "f16" : "bf16");
}

static void bsattention_cases(void) {
  const char *masks[] = {"causal",    "sliding:9",       "document:10+40+7",
                         "prefix:13", "random:0.5",      "causal,document:20+37",
                         "none",      "random:0.3:32x32"};
  const char *configs[] = {"BM=16,BN=16", "BM=32,BN=16", "BM=16,BN=32"};
  for (size_t m = 0; m < sizeof masks / sizeof *masks; m++)
    for (size_t c = 0; c < sizeof configs / sizeof *configs; c++) {
      char shape[256];
      snprintf(shape, sizeof shape, "B=2,H=2,HKV=1,S=57,D=64,mask=%s", masks[m]);
      expect_pass("bsattention", configs[c], shape, c % 2 ? "f16" : "bf16");
    }
  expect_pass("bsattention", NULL, "B=1,H=1,S=200,SKV=130,D=64,mask=causal", NULL);
  expect_pass("bsattention", "BM=16", "B=1,H=1,S=70,D=128,mask=sliding:20,block=32", NULL);
  /* rows q >= SKV + W - 1 see no key: O = 0 and LSE = -inf, in kernel and reference alike */
  kn_problem p;
  if (CHECK(
          run("bsattention", "BM=16,BN=16", "B=1,H=1,S=60,SKV=20,D=64,mask=sliding:8", NULL, &p))) {
    kn_buf *o = &p.bufs[3], *lse = &p.bufs[4];
    CHECK(lse->exact[59] == -INFINITY && lse->exact[0] > -INFINITY);
    CHECK(o->exact[59 * 64] == 0 && o->exact[59 * 64 + 63] == 0);
  }
  kn_problem_free(&p);
}

/* bsattention with a causal layout computes what the dense causal kernel computes. */
static void bsattention_equals_attention(void) {
  kn_problem a, b;
  uint64_t s0 = seed;
  bool ok1 = run("attention", "BM=16,BN=16", "B=1,H=2,S=50,D=64,causal=1", NULL, &a);
  seed = s0;
  bool ok2 = run("bsattention", "BM=16,BN=16", "B=1,H=2,S=50,D=64,mask=causal", NULL, &b);
  if (CHECK(ok1 && ok2)) {
    kn_buf *oa = &a.bufs[3], *ob = &b.bufs[3];
    double worst = 0;
    for (int64_t e = 0; e < oa->count; e++)
      worst = fmax(worst, fabs(oa->exact[e] - ob->exact[e]));
    CHECK(worst < 2e-2);
  }
  kn_problem_free(&a);
  kn_problem_free(&b);
}

static void bsmatmul_cases(void) {
  const char *shapes[] = {"M=1,N=16,K=16,block=16,density=1", "M=33,N=70,K=50,block=16",
                          "M=65,N=64,K=100,block=32,density=0.5",
                          "M=7,N=130,K=64,block=64,density=0.3",
                          "M=20,N=32,K=32,block=16,density=0.01"};
  const char *configs[] = {"BM=16", NULL, "BM=32,WARPS=2"};
  for (size_t c = 0; c < sizeof configs / sizeof *configs; c++)
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
      expect_pass("bsmatmul", configs[c], shapes[s], (c + s) % 2 ? "f16" : "bf16");
  expect_pass("bsmatmul", "TC=f32", "M=9,N=40,K=40,block=16,density=0.6", "bf16");
}

int main(void) {
  const char *env = getenv("TILEC_SEED");
  seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  fprintf(stderr, "numerics: seed %llu (replay with TILEC_SEED=%llu)\n", (unsigned long long)seed,
          (unsigned long long)seed);
  matmul_cases();
  attention_cases();
  bsattention_cases();
  bsattention_equals_attention();
  bsmatmul_cases();
  checker_rejects("matmul", "M=20,N=30,K=40");
  checker_rejects("attention", "B=1,H=1,S=20,D=64");
  checker_rejects("bsmatmul", "M=20,N=32,K=32,block=16,density=1");
  return TEST_MAIN_END();
}
