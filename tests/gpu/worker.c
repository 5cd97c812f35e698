/* tests/gpu/worker.c — fault isolation on a real GPU: a sweep through the measuring worker with a
 * correct matmul candidate and hand-written PTX candidates that store through a null pointer
 * (fault), spin forever (timeout), cap the block below the launch's (resources) and write
 * nothing (wrong). The sweep must finish, give exactly those statuses, time the good candidate
 * (median within p20..p80) after each failure, and leave no child behind. Skipped (77) when the
 * worker finds no driver or device; the test process itself never loads the driver.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "autotune/worker.h"
#include "tests/unit/check.h"
#include "tests/unit/worker_util.h"

#define SHAPE "M=512,N=512,K=512"
#define CONFIG "BM=64,BN=64"

static char *compile(const char *arch) { return compile_candidate("matmul", SHAPE, CONFIG, arch); }

/* A PTX module whose kernel `matmul` has no parameters (the driver ignores the extra launch
 * arguments) and the given body. */
static char *bad_ptx(const char *arch, const char *directives, const char *body) {
  char *p = malloc(2048);
  if (p)
    snprintf(p, 2048,
             ".version 8.0\n.target %s\n.address_size 64\n"
             ".visible .entry matmul() %s\n{\n  .reg .b64 %%rd<2>;\n  .reg .b32 %%r<2>;\n"
             "  .reg .pred %%p<2>;\n%s\n  ret;\n}\n",
             arch, directives, body);
  return p;
}

int main(void) {
  const char *exe = tilec_exe();
  if (!exe)
    TEST_SKIP("no tilec binary in $TILEC_BINARY_DIR");
  unsetenv("TILEC_WORKER_FAKE");
  at_err e = {0};
  at_worker *w = NULL;
  at_worker_opts o = {.exe = exe, .timeout_s = 5, .start_timeout_s = 120};
  at_problem_desc p = {.kernel = "matmul", .shape = SHAPE, .seed = 1, .reps = 20, .warmup = 3};
  if (at_worker_start(&o, &p, &w, &e) == AT_ERR_ENV)
    TEST_SKIP("%s", e.msg);
  REQUIRE(w != NULL);
  at_gpu_info dev;
  REQUIRE(at_worker_device(w, &dev, &e) == AT_OK);
  fprintf(stderr, "device %s (%s), L2 %d B\n", dev.key, dev.arch, dev.l2_bytes);
  char *good = compile(dev.arch);
  REQUIRE(good != NULL);
  struct {
    const char *what;
    char *image;
    at_run want;
  } c[] = {
      {"good", good, AT_RUN_OK},
      {"null store",
       bad_ptx(dev.arch, "", "  mov.u64 %rd1, 0;\n  mov.u32 %r1, 7;\n  st.global.u32 [%rd1], %r1;"),
       AT_RUN_FAULT},
      {"good", good, AT_RUN_OK},
      {"spin", bad_ptx(dev.arch, "", "$L_spin:\n  bra.uni $L_spin;"), AT_RUN_TIMEOUT},
      {"good", good, AT_RUN_OK},
      {"block cap", bad_ptx(dev.arch, ".maxntid 32, 1, 1", ""), AT_RUN_RESOURCES},
      {"writes nothing", bad_ptx(dev.arch, "", ""), AT_RUN_WRONG},
      {"good", good, AT_RUN_OK},
  };
  int n = sizeof c / sizeof c[0];
  double t0 = at_now();
  for (int i = 0; i < n; i++) {
    at_outcome out;
    at_status s = c[i].image
                      ? at_worker_measure(w, CONFIG, c[i].image, strlen(c[i].image) + 1, &out, &e)
                      : AT_ERR_OOM;
    if (!CHECK(s == AT_OK)) {
      fprintf(stderr, "  %s: %s\n", c[i].what, e.msg);
      continue;
    }
    fprintf(stderr, "%-15s %-10s median %.4f ms (p20 %.4f, p80 %.4f), SM %d MHz: %s\n", c[i].what,
            at_run_name(out.status), out.median_ms, out.p20_ms, out.p80_ms, out.sm_clock_mhz,
            out.detail);
    CHECK(out.status == c[i].want);
    if (c[i].want == AT_RUN_OK)
      CHECK(out.median_ms > 0 && out.p20_ms <= out.median_ms && out.median_ms <= out.p80_ms &&
            out.max_err < 1e-2);
    CHECK_EQ_INT(0, zombie_children());
  }
  fprintf(stderr, "sweep: %.1f s, %d restarts\n", at_now() - t0, at_worker_restarts(w));
  CHECK_EQ_INT(2, at_worker_restarts(w)); /* the fault and the timeout */
  at_worker_stop(w);
  for (int i = 0; i < n; i++)
    if (c[i].image != good)
      free(c[i].image);
  free(good);
  CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
  CHECK(!mapped("libcuda.so")); /* the parent never loaded the driver */
  return TEST_MAIN_END();
}
