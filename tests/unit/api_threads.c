/* tests/unit/api_threads.c — many threads on one context: 16 threads x 10 000 lookups of hot
 * kernels (with releases and info reads), then threads that miss on the same kernels at once
 * while a small capacity evicts (concurrent compiles, duplicate loads dropped, evicted kernels
 * freed with their last reference), then threads that ask with TILEC_KERNEL_NOWAIT until their
 * kernel is ready (background compiles, one per request however many threads ask). The oracle is
 * ThreadSanitizer (TILEC_SANITIZE=thread): no report; in a plain build it checks the counters and
 * that every lookup got the kernel its request names. NO_GPU + NO_DB: no driver or database is
 * touched, only the API's own state.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/unit/check.h"
#include "tilec/tilec.h"

enum { THREADS = 16, LOOKUPS = 10000, NREQ = 4 };

static tilec_context *ctx;
static const char *shapes[NREQ] = {"M=64,N=64,K=64", "M=128,N=64,K=64", "M=64,N=128,K=64",
                                   "M=64,N=64,K=128"};
static const char *configs[NREQ] = {
    "BM=32,BN=32,BK=32,WARPS=4,STAGES=2,GROUP_M=1", "BM=64,BN=32,BK=32,WARPS=4,STAGES=2,GROUP_M=1",
    "BM=32,BN=64,BK=32,WARPS=4,STAGES=2,GROUP_M=1", "BM=64,BN=64,BK=32,WARPS=4,STAGES=2,GROUP_M=1"};
static tilec_kernel *expect[NREQ];

typedef struct job {
  int id, n;
  bool hot;
  int errors, wrong;
} job;

static tilec_status lookup(int i, tilec_kernel **k) {
  tilec_kernel_request r;
  tilec_kernel_request_init(&r);
  r.kernel = "matmul";
  r.shape = shapes[i];
  r.config = configs[i];
  return tilec_kernel_get(ctx, &r, k);
}

/* Lookups of request (id + n) % NREQ. Hot (every kernel cached): each must return the very
 * handle of the warm-up, and every 1000th also reads the infos. Churn (a capacity below NREQ):
 * misses, compiles and evictions; each kernel must carry its request's config. */
static void *lookups(void *arg) {
  job *j = arg;
  for (int n = 0; n < j->n; n++) {
    int i = (j->id + n) % NREQ;
    tilec_kernel *k = NULL;
    if (lookup(i, &k)) {
      j->errors++;
      continue;
    }
    int64_t bm = 0;
    if (j->hot && k != expect[i])
      j->wrong++;
    if (!j->hot || n % 1000 == 0) {
      tilec_kernel_info ki = {.size = sizeof ki};
      tilec_context_info ci = {.size = sizeof ci};
      if (tilec_kernel_info_get(k, &ki) || tilec_context_info_get(ctx, &ci) ||
          tilec_kernel_value(k, "BM", &bm) || bm != (i == 1 || i == 3 ? 64 : 32) ||
          !strstr(ki.config, configs[i]))
        j->wrong++;
    }
    tilec_kernel_release(k);
  }
  return NULL;
}

/* NOWAIT: asks for request id % NREQ with STAGES=3 until it is not BUSY (60 s at most). */
static void *nowait_asks(void *arg) {
  job *j = arg;
  int i = j->id % NREQ;
  char config[128]; /* STAGES=3: code not compiled before */
  snprintf(config, sizeof config, "%s", configs[i]);
  memcpy(strstr(config, "STAGES=2"), "STAGES=3", 8);
  tilec_kernel_request r;
  tilec_kernel_request_init(&r);
  r.kernel = "matmul", r.shape = shapes[i], r.config = config, r.flags = TILEC_KERNEL_NOWAIT;
  tilec_kernel *k = NULL;
  tilec_status s = TILEC_ERR_BUSY;
  for (int tries = 0; s == TILEC_ERR_BUSY && tries < 60000; tries++) {
    if ((s = tilec_kernel_get(ctx, &r, &k)) == TILEC_ERR_BUSY) {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
  }
  int64_t bm = 0;
  if (s)
    j->errors++;
  else if (tilec_kernel_value(k, "BM", &bm) || bm != (i == 1 || i == 3 ? 64 : 32))
    j->wrong++;
  tilec_kernel_release(k);
  return NULL;
}

static void run_with(void *(*fn)(void *), bool hot, int nthreads, int n) {
  pthread_t t[THREADS];
  job jobs[THREADS];
  for (int i = 0; i < nthreads; i++) {
    jobs[i] = (job){.id = i, .n = n, .hot = hot};
    REQUIRE(pthread_create(&t[i], NULL, fn, &jobs[i]) == 0);
  }
  int errors = 0, wrong = 0;
  for (int i = 0; i < nthreads; i++) {
    pthread_join(t[i], NULL);
    errors += jobs[i].errors;
    wrong += jobs[i].wrong;
  }
  CHECK_EQ_INT(0, errors);
  CHECK_EQ_INT(0, wrong);
}

static void run(bool hot, int nthreads, int n) { run_with(lookups, hot, nthreads, n); }

int main(void) {
  tilec_context_opts o;
  tilec_context_opts_init(&o);
  o.flags = TILEC_CONTEXT_NO_GPU | TILEC_CONTEXT_NO_DB;
  o.arch = "sm_90";
  o.cache_capacity = 16;
  REQUIRE(tilec_context_create(&o, &ctx) == TILEC_OK);
  /* the warm-up: all four misses at once, compiled on four threads (tilec_kernel_get_many) */
  tilec_kernel_request r[NREQ];
  const tilec_kernel_request *rp[NREQ];
  for (int i = 0; i < NREQ; i++) {
    tilec_kernel_request_init(&r[i]);
    r[i].kernel = "matmul", r[i].shape = shapes[i], r[i].config = configs[i];
    rp[i] = &r[i];
  }
  int failed;
  tilec_status s = tilec_kernel_get_many(ctx, rp, NREQ, expect, NREQ, &failed);
  if (s == TILEC_ERR_NO_TOOLCHAIN)
    TEST_SKIP("no nvJitLink: %s", tilec_errmsg(ctx));
  REQUIRE(s == TILEC_OK);
  run(true, THREADS, LOOKUPS);
  tilec_context_info ci = {.size = sizeof ci};
  CHECK_EQ_INT(TILEC_OK, tilec_context_info_get(ctx, &ci));
  CHECK_EQ_INT(THREADS * LOOKUPS, (int)ci.hits);
  CHECK_EQ_INT(NREQ, (int)ci.misses);
  for (int i = 0; i < NREQ; i++)
    tilec_kernel_release(expect[i]);

  /* capacity 2 over 4 kernels: every round misses, compiles and evicts */
  CHECK_EQ_INT(TILEC_OK, tilec_context_set_cache_capacity(ctx, 2));
  run(false, 4, 3);
  CHECK_EQ_INT(TILEC_OK, tilec_context_info_get(ctx, &ci));
  CHECK(ci.cache_size <= 2);
  CHECK(ci.evictions >= 2);

  /* 8 threads, two per request, asking without waiting: each request compiled once */
  CHECK_EQ_INT(TILEC_OK, tilec_context_set_cache_capacity(ctx, 16));
  uint64_t before = ci.compiles;
  run_with(nowait_asks, false, 2 * NREQ, 1);
  CHECK_EQ_INT(TILEC_OK, tilec_context_info_get(ctx, &ci));
  CHECK_EQ_INT(NREQ, (int)(ci.compiles - before));
  tilec_context_destroy(ctx);
  return TEST_MAIN_END();
}
