/* codegen_threads.c - cg_lower reuses one target machine per thread and target (codegen/target.c):
 * the PTX must not depend on which thread compiles, nor on how many compilations that thread's
 * machine already emitted, nor on other threads compiling at the same time.
 *
 * The oracle is the PTX of a first compilation on the main thread. Four threads then compile the
 * same kernel for two targets, three times each, all at once, and every text must equal the
 * reference of its target byte for byte. Also: the optimizer's IR counts (cg_stats.ir_lowered and
 * ir_optimized), which `tilec bench compile` prints: O3 shrinks the lowered module, CG_NO_OPT
 * leaves it as it is, and both see the same lowered module.
 */
#include "codegen/codegen.h"
#include "compiler/gpu.h"
#include "ir/ir.h"
#include "kernels/builtin_sources.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { NTHREADS = 4, NREPS = 3, NARCH = 2 };

static const char *const arches[NARCH] = {"sm_80", "sm_90a"};

typedef struct job {
  const cc_gpu *g;
  char *ref[NARCH];
  int mismatches, failures;
  char err[1024];
} job;

static void *compile_all(void *p) {
  job *j = p;
  for (int r = 0; r < NREPS; r++)
    for (int a = 0; a < NARCH; a++) {
      cg_output out;
      if (cg_lower(j->g, arches[a], CG_EMIT_PTX, &out, j->err, sizeof j->err)) {
        j->failures++;
        continue;
      }
      if (strcmp(out.ptx, j->ref[a]))
        j->mismatches++;
      cg_output_free(&out);
    }
  return NULL;
}

static int build(const char *name, const char *set, ir_kernel **k, ir_kernel **spec, cc_gpu *g) {
  const char *text = NULL;
  ir_diag d;
  ir_config cfg = {0};
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, name))
      text = s->text;
  *k = *spec = NULL;
  if (!text || ir_parse(text, strlen(text), name, k, &d) || ir_config_parse(&cfg, set, &d) ||
      ir_specialize(*k, &cfg, spec, &d) || cc_gpu_build(*spec, g, &d)) {
    fprintf(stderr, "  %s: %s\n", name, text ? d.msg : "no such built-in kernel");
    ir_kernel_free(*spec);
    ir_kernel_free(*k);
    *k = *spec = NULL;
    return -1;
  }
  return 0;
}

/* Same PTX from every thread, every repetition, while the threads run at once. */
static void test_threads_same_ptx(void) {
  ir_kernel *k, *spec;
  cc_gpu g;
  job jobs[NTHREADS];
  pthread_t th[NTHREADS];
  char *ref[NARCH] = {NULL, NULL};
  char err[1024];
  if (!CHECK(build("bsmatmul", "", &k, &spec, &g) == 0))
    return;
  for (int a = 0; a < NARCH; a++) {
    cg_output out;
    if (!CHECK(cg_lower(&g, arches[a], CG_EMIT_PTX, &out, err, sizeof err) == 0)) {
      fprintf(stderr, "  %s: %s\n", arches[a], err);
      goto done;
    }
    ref[a] = out.ptx; /* taken over from out */
    CHECK_CONTAINS(ref[a], arches[a]);
  }
  for (int i = 0; i < NTHREADS; i++) {
    jobs[i] = (job){.g = &g, .ref = {ref[0], ref[1]}};
    CHECK(pthread_create(&th[i], NULL, compile_all, &jobs[i]) == 0);
  }
  for (int i = 0; i < NTHREADS; i++) {
    pthread_join(th[i], NULL);
    CHECK_EQ_INT(0, jobs[i].failures);
    CHECK_EQ_INT(0, jobs[i].mismatches);
    if (jobs[i].failures)
      fprintf(stderr, "  thread %d: %s\n", i, jobs[i].err);
  }
  /* and the main thread's machines, used again after the others exited */
  for (int a = 0; a < NARCH; a++) {
    cg_output out;
    if (CHECK(cg_lower(&g, arches[a], CG_EMIT_PTX, &out, err, sizeof err) == 0))
      CHECK(strcmp(out.ptx, ref[a]) == 0);
    cg_output_free(&out);
  }
done:
  free(ref[0]);
  free(ref[1]);
  cc_gpu_free(&g);
  ir_kernel_free(spec);
  ir_kernel_free(k);
}

/* The instruction counts: lowered > optimized under O3; equal without the optimizer. */
static void test_ir_counts(void) {
  ir_kernel *k, *spec;
  cc_gpu g;
  cg_output o3 = {0}, none = {0};
  char err[1024];
  if (!CHECK(build("matmul", "BM=64,BN=64", &k, &spec, &g) == 0))
    return;
  if (CHECK(cg_lower(&g, "sm_90a", CG_EMIT_PTX, &o3, err, sizeof err) == 0) &&
      CHECK(cg_lower(&g, "sm_90a", CG_EMIT_PTX | CG_NO_OPT, &none, err, sizeof err) == 0)) {
    CHECK(o3.stats.ir_lowered > 100);
    CHECK(o3.stats.ir_optimized > 0);
    CHECK(o3.stats.ir_optimized < o3.stats.ir_lowered);
    CHECK_EQ_INT(o3.stats.ir_lowered, none.stats.ir_lowered);
    CHECK_EQ_INT(none.stats.ir_lowered, none.stats.ir_optimized);
    CHECK_CONTAINS(none.ptx, "mma.sync");
  } else
    fprintf(stderr, "  %s\n", err);
  cg_output_free(&o3);
  cg_output_free(&none);
  cc_gpu_free(&g);
  ir_kernel_free(spec);
  ir_kernel_free(k);
}

int main(void) {
  test_threads_same_ptx();
  test_ir_counts();
  return TEST_MAIN_END();
}
