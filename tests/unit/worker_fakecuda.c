/* tests/unit/worker_fakecuda.c — the real worker path (tilec __worker: device, problem,
 * reference, module load, poison, launch, validation, L2-flushed event timing) against the fake
 * driver of tests/fakecuda, selected for the worker only through TILEC_LIBCUDA.
 *
 * The fake computes nothing, so a validated candidate is `wrong` (its poisoned outputs are
 * non-finite); FAKECUDA_FAIL injects a launch failure (`fault`, the worker is replaced) and an
 * out-of-resources launch (`resources`, the same worker goes on); no driver or no device gives
 * AT_ERR_ENV with the driver's message. The timing path runs with no_check (fake launches take
 * 1, 3, 2 ms in turn) and NVML's clocks come from the fake too. The test process itself never
 * maps a driver.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autotune/worker.h"
#include "tests/unit/check.h"
#include "tests/unit/worker_util.h"

#ifndef FAKECUDA_LIB
int main(void) { TEST_SKIP("the fake libcuda is not built (no cuda.h)"); }
#else

static const char *exe;

static const at_problem_desc problem = {
    .kernel = "matmul", .shape = "M=64,N=64,K=64", .seed = 3, .reps = 9, .warmup = 1};

static char *compile_for(const char *kernel, const char *shape, const char *config) {
  return compile_candidate(kernel, shape, config, "sm_90a");
}

static char *compile(const char *config) { return compile_for("matmul", problem.shape, config); }

static at_worker *start(const char *lib, const char *fail, const at_problem_desc *p, at_status want,
                        at_err *e) {
  setenv("TILEC_LIBCUDA", lib, 1);
  if (fail)
    setenv("FAKECUDA_FAIL", fail, 1);
  else
    unsetenv("FAKECUDA_FAIL");
  at_worker_opts o = {.exe = exe, .timeout_s = 60, .start_timeout_s = 120};
  at_worker *w = NULL;
  at_status s = at_worker_start(&o, p, &w, e);
  if (!CHECK(s == want))
    fprintf(stderr, "  start (%s, %s): %s: %s\n", lib, fail ? fail : "-", at_status_name(s),
            e->msg);
  return w;
}

static void test_env_errors(void) {
  at_err e = {0};
  start("/nonexistent/libcuda.so.1", NULL, &problem, AT_ERR_ENV, &e);
  CHECK_CONTAINS(e.msg, "no CUDA driver: libcuda.so.1 not found");
  start(FAKECUDA_LIB, "cuInit", &problem, AT_ERR_ENV, &e);
  CHECK_CONTAINS(e.msg, "cuInit failed: CUDA_ERROR_NO_DEVICE");
  /* Device-only workers report the same through DEVICE. */
  at_worker *w = start("/nonexistent/libcuda.so.1", NULL, NULL, AT_OK, &e);
  at_gpu_info d;
  CHECK_EQ_INT(AT_ERR_ENV, at_worker_device(w, &d, &e));
  CHECK_CONTAINS(e.msg, "no CUDA driver");
  at_worker_stop(w);
  /* A bad problem is the caller's error. */
  at_problem_desc bad = problem;
  bad.shape = "M=64,N=64,K=64,Q=1";
  start(FAKECUDA_LIB, NULL, &bad, AT_ERR_ARG, &e);
  CHECK_CONTAINS(e.msg, "unknown --shape key");
  bad = problem;
  bad.kernel = "nosuchkernel";
  start(FAKECUDA_LIB, NULL, &bad, AT_ERR_ARG, &e);
  CHECK_CONTAINS(e.msg, "not a built-in kernel");
}

static void test_measure(const char *ptx) {
  at_err e = {0};
  at_worker *w = start(FAKECUDA_LIB, NULL, &problem, AT_OK, &e);
  if (!w)
    return;
  at_gpu_info d;
  CHECK_EQ_INT(AT_OK, at_worker_device(w, &d, &e));
  CHECK_EQ_STR("Fake GPU|sm_90|132sm|140GiB", d.key);
  CHECK_EQ_STR("sm_90a", d.arch);
  CHECK_EQ_INT(50331648, d.l2_bytes);
  CHECK_EQ_INT(132, d.sm_count);

  /* The fake computes nothing: the poisoned output fails validation. */
  at_outcome out;
  CHECK_EQ_INT(AT_OK, at_worker_measure(w, "BM=64,BN=64", ptx, strlen(ptx) + 1, &out, &e));
  CHECK(out.status == AT_RUN_WRONG);
  CHECK_CONTAINS(out.detail, "output C");
  CHECK_CONTAINS(out.detail, "4096 non-finite");
  CHECK(isinf(out.max_err));
  CHECK(isnan(out.median_ms));
  CHECK_EQ_INT(-1, out.sm_clock_mhz); /* not timed */

  /* An image the driver rejects is a compile error, and the worker goes on. */
  int pid = at_worker_pid(w);
  const char bad[] = "// FAKECUDA_BAD_PTX\n.version 8.0\n";
  CHECK_EQ_INT(AT_OK, at_worker_measure(w, "BM=64,BN=64", bad, sizeof bad, &out, &e));
  CHECK(out.status == AT_RUN_COMPILE);
  CHECK_CONTAINS(out.detail, "fake syntax error");
  /* A config the kernel rejects is the caller's error. */
  CHECK_EQ_INT(AT_ERR_ARG, at_worker_measure(w, "BM=100", ptx, strlen(ptx) + 1, &out, &e));
  CHECK_CONTAINS(e.msg, "BM");
  CHECK_EQ_INT(pid, at_worker_pid(w));
  CHECK_EQ_INT(0, at_worker_restarts(w));
  at_worker_stop(w);
}

/* READY says whether the problem keeps the aligned variant's promise; a MEASURE of the aligned
 * variant on arguments that break it is refused before anything is launched. */
static void test_aligned(const char *ptx) {
  at_err e = {0};
  at_worker *w = start(FAKECUDA_LIB, NULL, &problem, AT_OK, &e);
  if (!w)
    return;
  CHECK_EQ_INT(1, at_worker_problem_aligned(w));
  at_worker_set_aligned(w, true);
  at_outcome out;
  CHECK_EQ_INT(AT_OK, at_worker_measure(w, "BM=64,BN=64", ptx, strlen(ptx) + 1, &out, &e));
  CHECK(out.status == AT_RUN_WRONG); /* launched: the fake computes nothing */
  at_worker_stop(w);
  at_problem_desc odd = problem;
  odd.shape = "M=64,N=64,K=60"; /* A's rows are 120 bytes apart */
  w = start(FAKECUDA_LIB, NULL, &odd, AT_OK, &e);
  if (!w)
    return;
  CHECK_EQ_INT(0, at_worker_problem_aligned(w));
  CHECK_EQ_INT(AT_OK, at_worker_measure(w, "BM=64,BN=64", ptx, strlen(ptx) + 1, &out, &e));
  at_worker_set_aligned(w, true);
  CHECK_EQ_INT(AT_ERR_ARG, at_worker_measure(w, "BM=64,BN=64", ptx, strlen(ptx) + 1, &out, &e));
  CHECK_CONTAINS(e.msg, "argument 'A' breaks its promise");
  CHECK_EQ_INT(0, at_worker_restarts(w));
  at_worker_stop(w);
}

static void test_launch_failures(const char *ptx) {
  at_err e = {0};
  at_outcome out;
  /* An out-of-resources launch: `resources`, and the worker keeps going. */
  at_worker *w = start(FAKECUDA_LIB, "cuLaunchKernel:701", &problem, AT_OK, &e);
  if (w) {
    int pid = at_worker_pid(w);
    for (int i = 0; i < 2; i++) {
      CHECK_EQ_INT(AT_OK, at_worker_measure(w, "BM=64,BN=64", ptx, strlen(ptx) + 1, &out, &e));
      CHECK(out.status == AT_RUN_RESOURCES);
      CHECK_CONTAINS(out.detail, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES");
    }
    CHECK_EQ_INT(pid, at_worker_pid(w));
    CHECK_EQ_INT(0, at_worker_restarts(w));
    at_worker_stop(w);
  }
  /* A launch failure kills the context: `fault`, the worker exits and the next candidate gets
   * a new one. */
  w = start(FAKECUDA_LIB, "cuLaunchKernel", &problem, AT_OK, &e);
  if (w) {
    int pid = at_worker_pid(w);
    CHECK_EQ_INT(AT_OK, at_worker_measure(w, "BM=64,BN=64", ptx, strlen(ptx) + 1, &out, &e));
    CHECK(out.status == AT_RUN_FAULT);
    CHECK_CONTAINS(out.detail, "CUDA_ERROR_LAUNCH_FAILED");
    CHECK_EQ_INT(-1, at_worker_pid(w)); /* reaped */
    CHECK(kill(pid, 0) == -1 && errno == ESRCH);
    CHECK_EQ_INT(AT_OK, at_worker_measure(w, "BM=64,BN=64", ptx, strlen(ptx) + 1, &out, &e));
    CHECK(out.status == AT_RUN_FAULT);
    CHECK_EQ_INT(1, at_worker_restarts(w));
    at_worker_stop(w);
  }
  unsetenv("FAKECUDA_FAIL");
}

/* Above cpu_check_flops the reference comes from the NVRTC reference kernels (compiled here,
 * launched on the fake driver, which computes nothing: the candidate still cannot pass). */
static void test_gpu_reference(const char *ptx) {
  at_err e = {0};
  at_problem_desc p = problem;
  p.cpu_check_flops = 1;
  at_worker *w = start(FAKECUDA_LIB, NULL, &p, AT_OK, &e);
  if (!w) {
    fprintf(stderr, "  (NVRTC missing? %s)\n", e.msg);
    return;
  }
  at_outcome out;
  CHECK_EQ_INT(AT_OK, at_worker_measure(w, "BM=64,BN=64", ptx, strlen(ptx) + 1, &out, &e));
  CHECK(out.status == AT_RUN_WRONG);
  CHECK_CONTAINS(out.detail, "output C");
  at_worker_stop(w);
  /* A reference kernel that cannot be loaded is an environment problem of the start. */
  start(FAKECUDA_LIB, "cuModuleLoadDataEx", &p, AT_ERR_INTERNAL, &e);
  CHECK_CONTAINS(e.msg, "the GPU reference");
}

/* bsattention's data depend on BM and BN (the block layout): each config gets its own problem,
 * and going back to the first config finds its data again. */
static void test_block_layout(void) {
  static const char *const shape = "H=2,S=128,D=64,mask=causal";
  static const char *const configs[] = {"BM=64,BN=64", "BM=64,BN=32", "BM=64,BN=64"};
  at_err e = {0};
  at_problem_desc p = {.kernel = "bsattention", .shape = shape, .seed = 5, .reps = 3};
  at_worker *w = start(FAKECUDA_LIB, NULL, &p, AT_OK, &e);
  for (int i = 0; w && i < 3; i++) {
    char *ptx = compile_for("bsattention", shape, configs[i]);
    if (!CHECK(ptx != NULL))
      continue;
    at_outcome out;
    CHECK_EQ_INT(AT_OK, at_worker_measure(w, configs[i], ptx, strlen(ptx) + 1, &out, &e));
    CHECK(out.status == AT_RUN_WRONG); /* validated against its own reference: O and LSE */
    CHECK_CONTAINS(out.detail, "output O");
    free(ptx);
  }
  CHECK_EQ_INT(0, at_worker_restarts(w));
  at_worker_stop(w);
}

/* Without validation the candidate is timed: warm-up, then reps launches between events, each
 * after an L2 flush (the fake's launches take 1, 3, 2 ms in turn). */
static void test_timing(const char *ptx) {
  at_err e = {0};
  at_problem_desc p = problem;
  p.no_check = true;
  setenv("TILEC_LIBNVML", FAKECUDA_LIB, 1); /* the fake driver also fakes NVML's clocks */
  at_worker *w = start(FAKECUDA_LIB, NULL, &p, AT_OK, &e);
  unsetenv("TILEC_LIBNVML");
  if (!w)
    return;
  at_outcome out;
  CHECK_EQ_INT(AT_OK, at_worker_measure(w, "BM=64,BN=64", ptx, strlen(ptx) + 1, &out, &e));
  if (CHECK(out.status == AT_RUN_OK)) {
    CHECK_EQ_INT(9, out.reps);
    /* launch 1 (the check run, 1 ms), 2 (warm-up, 3 ms), then 2,1,3,2,1,3,2,1,3 ms */
    CHECK_NEAR(2.0, out.median_ms, 1e-6);
    CHECK_NEAR(1.0, out.min_ms, 1e-6);
    CHECK_NEAR(1.0, out.p20_ms, 1e-6);
    CHECK_NEAR(3.0, out.p80_ms, 1e-6);
    CHECK(isnan(out.max_err));
    CHECK_CONTAINS(out.detail, "not validated");
    CHECK_CONTAINS(out.detail, "L2 flushed");
    CHECK_CONTAINS(out.detail, "rotating copies"); /* 64x64 matrices are far below 48 MiB */
    CHECK_EQ_INT(1755, out.sm_clock_mhz);
    CHECK_EQ_INT(3201, out.mem_clock_mhz);
  } else {
    fprintf(stderr, "  %s\n", out.detail);
  }
  const char *configs[] = {"BM=64,BN=64", "BM=64,BN=64"};
  const void *images[] = {ptx, ptx};
  size_t sizes[] = {strlen(ptx) + 1, strlen(ptx) + 1};
  at_outcome two[2];
  CHECK_EQ_INT(AT_OK, at_worker_retime(w, configs, images, sizes, 2, 2, two, &e));
  CHECK(two[0].status == AT_RUN_OK && two[1].status == AT_RUN_OK);
  CHECK_EQ_INT(18, two[0].reps);
  at_worker_stop(w);
}

int main(void) {
  exe = tilec_exe();
  if (!exe)
    TEST_SKIP("no tilec binary in $TILEC_BINARY_DIR");
  unsetenv("TILEC_WORKER_FAKE");
  unsetenv("TILEC_WORKER_EXE");
  int fds = open_fds();
  char *ptx = compile("BM=64,BN=64");
  REQUIRE(ptx != NULL);
  test_env_errors();
  test_measure(ptx);
  test_aligned(ptx);
  test_launch_failures(ptx);
  test_gpu_reference(ptx);
  test_block_layout();
  test_timing(ptx);
  free(ptx);
  CHECK_EQ_INT(0, zombie_children());
  CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
  CHECK_EQ_INT(fds, open_fds());
  CHECK(!mapped("libcuda.so") &&
        !mapped("libtilec_fakecuda")); /* the parent never loaded a driver */
  return TEST_MAIN_END();
}
#endif
