/* tests/unit/worker.c — fault isolation of the measuring worker, with the scripted worker of
 * the test mode (TILEC_WORKER_FAKE; no CUDA anywhere).
 *
 * A sweep over 20 configs mixing ok, wrong, crash (SIGSEGV), hang, resources, exit mid-reply
 * and slow candidates runs to the end under a 0.5 s timeout: every status is the scripted one,
 * hangs are killed on time, each death costs exactly one restart, no child is left a zombie, no
 * file descriptor leaks, and the test process never maps a CUDA driver. Also: a config missing
 * from the script, interleaved re-timing, the fake device, a bad script, a missing executable,
 * TILEC_WORKER_EXE.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autotune/worker.h"
#include "tests/unit/check.h"
#include "tests/unit/worker_util.h"

#ifndef TILEC_TEST_HOOKS
int main(void) { TEST_SKIP("tilec is built without TILEC_TEST_HOOKS (no scripted worker)"); }
#else

static const char *exe;
static char script[256];

static void write_script(const char *text) {
  FILE *f = fopen(script, "w");
  REQUIRE(f != NULL);
  fputs(text, f);
  fclose(f);
  setenv("TILEC_WORKER_FAKE", script, 1);
}

static const at_problem_desc problem = {
    .kernel = "matmul", .shape = "M=256,N=256,K=256", .seed = 1, .reps = 20, .warmup = 2};

typedef struct {
  const char *config;
  at_run want;
  double ms; /* for ok */
} row;

static void test_sweep(void) {
  static const row rows[] = {
      {"BM=64,BN=64", AT_RUN_OK, 1.5},   {"BM=64,BN=128", AT_RUN_WRONG, 0},
      {"BM=128,BN=64", AT_RUN_FAULT, 0}, {"BM=128,BN=128", AT_RUN_OK, 0.75},
      {"BM=16", AT_RUN_TIMEOUT, 0},      {"BM=32", AT_RUN_RESOURCES, 0},
      {"BM=48", AT_RUN_OK, 2.0},         {"BM=80", AT_RUN_FAULT, 0},
      {"BM=96", AT_RUN_OK, 3.0},         {"WARPS=2", AT_RUN_WRONG, 0},
      {"WARPS=4", AT_RUN_TIMEOUT, 0},    {"WARPS=8", AT_RUN_FAULT, 0},
      {"STAGES=2", AT_RUN_OK, 0.9},      {"STAGES=3", AT_RUN_RESOURCES, 0},
      {"STAGES=4", AT_RUN_OK, 0.5},      {"GROUP_M=1", AT_RUN_FAULT, 0},
      {"GROUP_M=4", AT_RUN_TIMEOUT, 0},  {"GROUP_M=8", AT_RUN_OK, 1.25},
      {"BK=32", AT_RUN_OK, 0.6},         {"BK=64", AT_RUN_WRONG, 0},
  };
  enum { N = sizeof rows / sizeof rows[0] };
  write_script("# scripted outcomes of tests/unit/worker.c\n"
               "BM=64,BN=64\tok 1.5\n"
               "BM=64,BN=128\twrong\n"
               "BM=128,BN=64\tcrash\n"
               "BM=128,BN=128\tok 0.75\n"
               "BM=16\thang\n"
               "BM=32\tresources\n"
               "BM=48\tslow 2.0 0.1\n" /* sleeps 0.1 s: under the timeout */
               "BM=80\texit\n"
               "BM=96\tok 3\n"
               "WARPS=2\twrong\n"
               "WARPS=4\tslow 1 3\n" /* sleeps past the timeout */
               "WARPS=8\tcrash\n"
               "STAGES=2\tok 0.9\n"
               "STAGES=3\tresources\n"
               "STAGES=4\tok 0.5\n"
               "GROUP_M=1\texit\n"
               "GROUP_M=4\thang\n"
               "GROUP_M=8\tok 1.25\n"
               "BK=32\trebuild 0.6 1.0\n" /* rebuilds its problem for 1 s: PROGRESS frames */
               "\n"
               "BK=64\twrong\n");
  int fds = open_fds();
  at_worker_opts o = {.exe = exe, .timeout_s = 0.5};
  at_worker *w;
  at_err e = {0};
  REQUIRE(at_worker_start(&o, &problem, &w, &e) == AT_OK);
  double t0 = at_now();
  int deaths = 0;
  for (int i = 0; i < N; i++) {
    at_outcome out;
    at_status s = at_worker_measure(w, rows[i].config, "cubin", 5, &out, &e);
    if (!CHECK(s == AT_OK)) {
      fprintf(stderr, "  %s: %s\n", rows[i].config, e.msg);
      continue;
    }
    if (!CHECK(out.status == rows[i].want))
      fprintf(stderr, "  %s: want %s, got %s (%s)\n", rows[i].config, at_run_name(rows[i].want),
              at_run_name(out.status), out.detail);
    deaths += rows[i].want == AT_RUN_FAULT || rows[i].want == AT_RUN_TIMEOUT;
    if (rows[i].want == AT_RUN_OK) {
      CHECK_NEAR(rows[i].ms, out.median_ms, 1e-9); /* samples ms * 0.98 .. 1.02 */
      CHECK_NEAR(rows[i].ms * 0.98, out.min_ms, 1e-9);
      CHECK(out.p20_ms < out.median_ms && out.median_ms < out.p80_ms);
      CHECK_EQ_INT(problem.reps, out.reps);
      CHECK_EQ_INT(-1, out.sm_clock_mhz);
      CHECK_NEAR(0.0, out.max_err, 0);
    } else {
      CHECK(isnan(out.median_ms));
    }
    if (rows[i].want == AT_RUN_WRONG)
      CHECK_NEAR(1.0, out.max_err, 0);
    if (rows[i].want == AT_RUN_TIMEOUT)
      CHECK_CONTAINS(out.detail, "no reply within 0.5 s");
    if (!strcmp(rows[i].config, "BM=128,BN=64"))
      CHECK_CONTAINS(out.detail, "killed by SIGSEGV");
    if (!strcmp(rows[i].config, "BM=80"))
      CHECK_CONTAINS(out.detail, "exited with status 3");
    CHECK_EQ_INT(0, zombie_children());
  }
  double secs = at_now() - t0;
  CHECK(secs < 15); /* 3 timeouts of 0.5 s, 1 s of rebuild, 7 restarts: a few seconds */
  fprintf(stderr, "sweep of %d configs: %.2f s, %d restarts\n", N, secs, at_worker_restarts(w));
  /* Each fault or timeout killed the worker once; the next candidate restarted it. The last
   * death (GROUP_M=4) was followed by GROUP_M=8, so every death has been restarted. */
  CHECK_EQ_INT(deaths, at_worker_restarts(w));
  CHECK(at_worker_pid(w) > 0);

  /* A config missing from the script: an error reply; the same worker goes on. */
  int pid = at_worker_pid(w);
  at_outcome out;
  CHECK_EQ_INT(AT_ERR_ARG, at_worker_measure(w, "BM=999", "x", 1, &out, &e));
  CHECK_CONTAINS(e.msg, "'BM=999' is not in the script");
  CHECK_EQ_INT(pid, at_worker_pid(w));
  CHECK_EQ_INT(AT_OK, at_worker_measure(w, "BM=96", "x", 1, &out, &e));
  CHECK(out.status == AT_RUN_OK);

  /* A worker that dies while idle (killed from outside): the next candidate is not blamed, a
   * new worker measures it. */
  int restarts = at_worker_restarts(w);
  pid = at_worker_pid(w);
  kill(pid, SIGKILL);
  for (int i = 0; i < 500 && zombie_children() == 0; i++)
    usleep(2000); /* until it is a zombie: its pipes are closed */
  CHECK_EQ_INT(AT_OK, at_worker_measure(w, "BM=96", "x", 1, &out, &e));
  CHECK(out.status == AT_RUN_OK);
  CHECK_EQ_INT(restarts + 1, at_worker_restarts(w));
  CHECK(at_worker_pid(w) != pid);
  CHECK_EQ_INT(0, zombie_children());

  at_gpu_info d;
  CHECK_EQ_INT(AT_OK, at_worker_device(w, &d, &e));
  CHECK_EQ_STR("fake|sm_90a|132sm|141GiB", d.key);
  CHECK_EQ_STR("sm_90a", d.arch);
  CHECK_EQ_INT(50331648, d.l2_bytes);

  at_worker_stop(w);
  CHECK_EQ_INT(0, zombie_children());
  CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD); /* every child reaped */
  CHECK_EQ_INT(fds, open_fds());
  CHECK(kill(pid, 0) == -1 && errno == ESRCH);
}

static void test_retime(void) {
  write_script("A\tok 2\nB\tok 1\nC\tok 3\nD\tcrash\n");
  at_worker_opts o = {.exe = exe, .timeout_s = 2};
  at_worker *w;
  at_err e = {0};
  REQUIRE(at_worker_start(&o, &problem, &w, &e) == AT_OK);
  const char *configs[] = {"A", "B", "C", "D"};
  const void *images[] = {"a", "b", "c", "d"};
  size_t sizes[] = {1, 1, 1, 1};
  at_outcome out[4];
  CHECK_EQ_INT(AT_OK, at_worker_retime(w, configs, images, sizes, 4, 3, out, &e));
  CHECK_NEAR(2.0, out[0].median_ms, 1e-9);
  CHECK_NEAR(1.0, out[1].median_ms, 1e-9);
  CHECK_NEAR(3.0, out[2].median_ms, 1e-9);
  for (int i = 0; i < 3; i++) {
    CHECK(out[i].status == AT_RUN_OK);
    CHECK_EQ_INT(3 * problem.reps, out[i].reps); /* three rounds pooled */
    CHECK_CONTAINS(out[i].detail, "interleaved");
  }
  CHECK(out[3].status == AT_RUN_FAULT); /* measured once: a failure is not retried */
  CHECK_EQ_INT(1, at_worker_restarts(w));
  CHECK_EQ_INT(AT_ERR_ARG, at_worker_retime(w, configs, images, sizes, 0, 3, out, &e));
  at_worker_stop(w);
  CHECK_EQ_INT(0, zombie_children());
}

static void test_start_errors(void) {
  at_err e = {0};
  at_worker *w = NULL;
  int fds = open_fds();
  at_worker_opts o = {.exe = "/nonexistent/tilec", .timeout_s = 1};
  CHECK_EQ_INT(AT_ERR_ENV, at_worker_start(&o, &problem, &w, &e));
  CHECK_CONTAINS(e.msg, "cannot start the worker /nonexistent/tilec");
  CHECK(w == NULL);

  write_script("BM=64\tok\n"); /* ok needs a time */
  o.exe = exe;
  CHECK_EQ_INT(AT_ERR_ARG, at_worker_start(&o, &problem, &w, &e));
  CHECK_CONTAINS(e.msg, ":1: expected 'CONFIG<TAB>ok MS");
  setenv("TILEC_WORKER_FAKE", "/nonexistent/script", 1);
  CHECK_EQ_INT(AT_ERR_ARG, at_worker_start(&o, &problem, &w, &e));
  CHECK_CONTAINS(e.msg, "cannot open /nonexistent/script");

  /* The kernel and the shape are checked in test mode too. */
  write_script("X\tok 1\n");
  at_problem_desc bad = problem;
  bad.kernel = "nosuchkernel";
  CHECK_EQ_INT(AT_ERR_ARG, at_worker_start(&o, &bad, &w, &e));
  CHECK_CONTAINS(e.msg, "'nosuchkernel' is not a built-in kernel");
  bad = problem;
  bad.shape = "M=1,M=2";
  CHECK_EQ_INT(AT_ERR_ARG, at_worker_start(&o, &bad, &w, &e));
  CHECK_CONTAINS(e.msg, "key 'M' given twice");

  /* TILEC_WORKER_EXE names the executable when the options do not. */
  write_script("X\tok 1\n");
  setenv("TILEC_WORKER_EXE", "/nonexistent/from-env", 1);
  o.exe = NULL;
  CHECK_EQ_INT(AT_ERR_ENV, at_worker_start(&o, &problem, &w, &e));
  CHECK_CONTAINS(e.msg, "/nonexistent/from-env");
  setenv("TILEC_WORKER_EXE", exe, 1);
  if (CHECK(at_worker_start(&o, &problem, &w, &e) == AT_OK)) {
    at_outcome out;
    CHECK_EQ_INT(AT_OK, at_worker_measure(w, "X", "", 0, &out, &e));
    CHECK(out.status == AT_RUN_OK);
    CHECK_EQ_INT(AT_ERR_ARG, at_worker_measure(w, NULL, "", 0, &out, &e));
    at_worker_stop(w);
  }
  unsetenv("TILEC_WORKER_EXE");

  /* A device-only worker answers DEVICE and refuses MEASURE. */
  o.exe = exe;
  if (CHECK(at_worker_start(&o, NULL, &w, &e) == AT_OK)) {
    at_gpu_info d;
    CHECK_EQ_INT(AT_OK, at_worker_device(w, &d, &e));
    CHECK_CONTAINS(d.key, "fake|");
    at_outcome out;
    CHECK_EQ_INT(AT_ERR_ARG, at_worker_measure(w, "X", "", 0, &out, &e));
    at_worker_stop(w);
  }
  at_worker_stop(NULL);
  CHECK_EQ_INT(0, zombie_children());
  CHECK_EQ_INT(fds, open_fds());
}

int main(void) {
  exe = tilec_exe();
  if (!exe)
    TEST_SKIP("no tilec binary in $TILEC_BINARY_DIR");
  snprintf(script, sizeof script, "/tmp/tilec_worker_test_%d.txt", (int)getpid());
  unsetenv("TILEC_WORKER_EXE");
  test_sweep();
  test_retime();
  test_start_errors();
  CHECK(!mapped("libcuda.so") &&
        !mapped("libtilec_fakecuda")); /* the parent never loaded a driver */
  unlink(script);
  return TEST_MAIN_END();
}
#endif
