/* tests/unit/worker_wire.c — the pure parts of the measuring worker: sample statistics (median,
 * p20, p80 on known samples), the L2-flush sizing rule, and the wire format between tuner and
 * worker (round trips of binary fields, malformed frames, end of file, deadlines, a dead reader
 * that must give EPIPE and not SIGPIPE).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <unistd.h>

#include "autotune/worker.h"
#include "runtime/rt.h"
#include "tests/unit/check.h"

static void test_stats(void) {
  double v[] = {5, 1, 4, 2, 3};
  at_stats st;
  at_sample_stats(v, 5, &st);
  CHECK_EQ_INT(5, st.n);
  CHECK_NEAR(3.0, st.median, 0);
  CHECK_NEAR(1.8, st.p20, 1e-12); /* rank 0.2 * 4 = 0.8: 1 + 0.8 * (2 - 1) */
  CHECK_NEAR(4.2, st.p80, 1e-12); /* rank 3.2: 4 + 0.2 * (5 - 4) */
  CHECK_NEAR(1.0, st.min, 0);
  CHECK_NEAR(5.0, st.max, 0);
  CHECK(v[0] == 1 && v[4] == 5); /* sorted in place */

  double even[] = {10, 40, 20, 30};
  at_sample_stats(even, 4, &st);
  CHECK_NEAR(25.0, st.median, 1e-12);
  CHECK_NEAR(16.0, st.p20, 1e-12); /* rank 0.6 between 10 and 20 */
  CHECK_NEAR(34.0, st.p80, 1e-12); /* rank 2.4 between 30 and 40 */

  double one = 7.5;
  at_sample_stats(&one, 1, &st);
  CHECK(st.median == 7.5 && st.p20 == 7.5 && st.p80 == 7.5 && st.min == 7.5);
  at_sample_stats(NULL, 0, &st);
  CHECK(st.n == 0 && isnan(st.median) && isnan(st.p20) && isnan(st.min));

  /* An outlier moves neither the median nor p80 of 10 samples much. */
  double noisy[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 100};
  at_sample_stats(noisy, 10, &st);
  CHECK_NEAR(1.0, st.median, 0);
  CHECK_NEAR(1.0, st.p80, 0);
  CHECK_NEAR(100.0, st.max, 0);

  double sorted[] = {0, 10};
  CHECK_NEAR(2.5, at_quantile(sorted, 2, 0.25), 1e-12);
  CHECK_NEAR(0.0, at_quantile(sorted, 2, -1), 0); /* clamped */
  CHECK_NEAR(10.0, at_quantile(sorted, 2, 2), 0);
  CHECK(isnan(at_quantile(sorted, 0, 0.5)));
}

static void test_flush_size(void) {
  CHECK_EQ_INT(100663296, rt_l2_flush_bytes(50331648)); /* H100/H200: 2 x 48 MiB */
  CHECK_EQ_INT(8 << 20, rt_l2_flush_bytes(0));          /* unknown L2: 8 MiB */
  CHECK_EQ_INT(8 << 20, rt_l2_flush_bytes(-1));
  CHECK_EQ_INT(8 << 20, rt_l2_flush_bytes(2 << 20)); /* small L2: the 8 MiB floor */
  CHECK_EQ_INT(12 << 20, rt_l2_flush_bytes(6 << 20));
  CHECK_EQ_INT(10002432, rt_l2_flush_bytes(5000000)); /* 10^7 rounded up to 4 KiB */
  CHECK_EQ_INT(0, rt_l2_flush_bytes(40 << 20) % 4096);
}

static void test_round_trip(void) {
  int p[2];
  REQUIRE(pipe(p) == 0);
  at_msg m, r;
  at_err e = {0};
  at_msg_init(&m, "MEASURE");
  const unsigned char bin[] = {0x7f, 'E', 'L', 'F', 0, '\n', 0xff, '\n', 0};
  CHECK_EQ_INT(AT_OK, at_msg_add(&m, "cubin", bin, sizeof bin, &e));
  CHECK_EQ_INT(AT_OK, at_msg_addf(&m, &e, "config", "BM=%d,BN=%d", 128, 64));
  CHECK_EQ_INT(AT_OK, at_msg_add(&m, "empty", "", 0, &e));
  CHECK_EQ_INT(AT_ERR_ARG, at_msg_add(&m, "bad name", "x", 1, &e));
  CHECK_EQ_INT(AT_OK, at_msg_write(p[1], &m, -1, &e));
  CHECK_EQ_INT(AT_OK, at_msg_write(p[1], &m, -1, &e)); /* two frames in the pipe at once */
  at_reader rd;
  at_reader_init(&rd, p[0]);
  for (int i = 0; i < 2; i++) {
    REQUIRE(at_msg_read(&rd, at_now() + 5, &r, &e) == AT_OK);
    CHECK_EQ_STR("MEASURE", r.type);
    size_t n = 0;
    const char *got = at_msg_get(&r, "cubin", &n);
    CHECK(got && n == sizeof bin && !memcmp(got, bin, sizeof bin));
    CHECK_EQ_STR("BM=128,BN=64", at_msg_get(&r, "config", NULL));
    CHECK_EQ_STR("", at_msg_get(&r, "empty", &n));
    CHECK_EQ_INT(0, n);
    CHECK(at_msg_get(&r, "missing", NULL) == NULL);
    at_msg_free(&r);
  }
  /* Numbers, and their defaults for absent or malformed fields. */
  at_msg_free(&m);
  at_msg_init(&m, "RESULT");
  at_msg_addf(&m, &e, "reps", "%d", 50);
  at_msg_addf(&m, &e, "max_err", "%.17g", 0.25);
  at_msg_addf(&m, &e, "junk", "12x");
  CHECK_EQ_INT(50, at_msg_int(&m, "reps", -1));
  CHECK_EQ_INT(-1, at_msg_int(&m, "junk", -1));
  CHECK_EQ_INT(-1, at_msg_int(&m, "absent", -1));
  CHECK_NEAR(0.25, at_msg_num(&m, "max_err", NAN), 0);
  CHECK(isnan(at_msg_num(&m, "junk", NAN)));
  at_msg_free(&m);

  /* A reader waits no longer than its deadline; end of file between frames is AT_MISS. */
  double t0 = at_now();
  CHECK_EQ_INT(AT_ERR_BUSY, at_msg_read(&rd, at_now() + 0.1, &r, &e));
  CHECK(at_now() - t0 < 2.0);
  close(p[1]);
  CHECK_EQ_INT(AT_MISS, at_msg_read(&rd, at_now() + 5, &r, &e));
  at_reader_free(&rd);
  close(p[0]);
}

/* Feeds text to a reader; returns the status of the read. */
static at_status read_text(const char *text, size_t len, at_err *e) {
  int p[2];
  if (pipe(p))
    return AT_ERR_IO;
  if (write(p[1], text, len) != (ssize_t)len)
    return AT_ERR_IO;
  close(p[1]);
  at_reader rd;
  at_msg m;
  at_reader_init(&rd, p[0]);
  at_status s = at_msg_read(&rd, at_now() + 5, &m, e);
  at_msg_free(&m);
  at_reader_free(&rd);
  close(p[0]);
  return s;
}

static void test_malformed(void) {
  static const char *const bad[] = {
      "TW2 RESULT 0\n",                     /* another protocol version */
      "hello\n",                            /* no magic */
      "TW1 RESULT -1\n",                    /* negative field count */
      "TW1 RESULT 99\n",                    /* too many fields */
      "TW1 RESULT 1\nstatus 2\nokX",        /* no newline after the field */
      "TW1 RESULT 1\nsta tus 2\nok\n",      /* bad field header */
      "TW1 RESULT 1\nstatus 99999999999\n", /* field larger than the limit */
      "TW1 RESULT 2\nstatus 2\nok\n",       /* end of file inside the frame */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    at_err e = {0};
    at_status s = read_text(bad[i], strlen(bad[i]), &e);
    if (!CHECK(s == AT_ERR_IO))
      fprintf(stderr, "  frame %zu: status %s (%s)\n", i, at_status_name(s), e.msg);
  }
  char junk[200];
  memset(junk, 'x', sizeof junk); /* a header line that never ends */
  at_err e = {0};
  CHECK_EQ_INT(AT_ERR_IO, read_text(junk, sizeof junk, &e));
  CHECK_CONTAINS(e.msg, "frame header");
  CHECK_EQ_INT(AT_OK, read_text("TW1 QUIT 0\n", 11, &e));
}

/* A dead reader: the write fails with EPIPE, the process lives, and no SIGPIPE stays pending. */
static void test_epipe(void) {
  int p[2];
  REQUIRE(pipe(p) == 0);
  close(p[0]);
  at_msg m;
  at_err e = {0};
  at_msg_init(&m, "PROBLEM");
  at_msg_add(&m, "kernel", "matmul", 6, &e);
  CHECK_EQ_INT(AT_ERR_IO, at_msg_write(p[1], &m, at_now() + 1, &e));
  CHECK_CONTAINS(e.msg, "Broken pipe");
  sigset_t pending;
  sigpending(&pending);
  CHECK(!sigismember(&pending, SIGPIPE));
  at_msg_free(&m);
  close(p[1]);

  /* A reader that never reads: a non-blocking write stops at the deadline. */
  REQUIRE(pipe(p) == 0);
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  static char big[1 << 20];
  at_msg_init(&m, "MEASURE");
  at_msg_add(&m, "cubin", big, sizeof big, &e);
  double t0 = at_now();
  CHECK_EQ_INT(AT_ERR_BUSY, at_msg_write(p[1], &m, at_now() + 0.2, &e));
  CHECK(at_now() - t0 < 2.0);
  at_msg_free(&m);
  close(p[0]);
  close(p[1]);
}

int main(void) {
  test_stats();
  test_flush_size();
  test_round_trip();
  test_malformed();
  test_epipe();
  return TEST_MAIN_END();
}
