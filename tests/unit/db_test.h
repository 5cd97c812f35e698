/* tests/unit/db_test.h — shared helpers of the tuning-database tests (unit.db_*): a private
 * temporary directory and a row maker. Header-only (each test is one translation unit). */
#ifndef TILEC_TESTS_DB_TEST_H
#define TILEC_TESTS_DB_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/db.h"

/* A fresh 0700 directory under $TMPDIR (or /tmp); the path is static storage of the caller. */
static inline void db_test_dir(char out[256]) {
  const char *tmp = getenv("TMPDIR");
  snprintf(out, 256, "%s/tilec_db_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(out)) {
    perror("mkdtemp");
    exit(1);
  }
}

/* An ok row of config cfg timed at ms (or a row of another status when st != AT_RUN_OK). */
static inline at_result db_test_row(const char *cfg, at_run st, double ms, long long t) {
  at_result r = at_result_empty();
  r.config = cfg;
  r.status = st;
  r.problem = "M=4000,N=4096,K=4096,dtype=bf16";
  if (st == AT_RUN_OK) {
    r.median_ms = ms;
    r.p20_ms = ms * 0.99;
    r.p80_ms = ms * 1.01;
    r.min_ms = ms * 0.98;
    r.reps = 50;
  } else
    r.detail = "illegal address";
  r.regs = 128;
  r.spills = 0;
  r.smem_bytes = 49152;
  r.sm_clock_mhz = 1980;
  r.mem_clock_mhz = 2619;
  r.time_unix = t;
  return r;
}

#endif
