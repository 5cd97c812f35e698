/* tests/unit/api_fake.c — the public API end to end on the fake driver (tests/fakecuda): miss
 * (heuristic config, compile, module load), hit, launch on the caller's stream with the
 * grid, block and shared memory the kernel needs, the database's winner and its stored cubin,
 * read-only contexts that never write, LRU eviction of a kernel still held, layouts in device
 * memory, driver failures as statuses, and nothing left loaded or allocated at the end.
 * Prints the host costs docs/api.md records (hit lookup, launch, miss).
 */
#include <dlfcn.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "autotune/bucket.h"
#include "autotune/compile.h"
#include "autotune/db.h"
#include "kernels/builtin_sources.h"
#include "runtime/rt.h"
#include "tests/unit/api_check.h"
#include "tests/unit/check.h"
#include "tilec/tilec.h"

static long (*live)(const char *);
static const unsigned char *(*last_launch)(unsigned *, const char **, int *, size_t *);
static void *stream; /* a CUstream of the fake, as an engine would create it */
static char dir[] = "/tmp/tilec_api_fake.XXXXXX";
static char db[256];

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static tilec_context *open_ctx(unsigned flags, int capacity) {
  tilec_context_opts o;
  tilec_context_opts_init(&o);
  o.flags = flags;
  o.db_path = db;
  o.cache_capacity = capacity;
  o.cu_stream = stream; /* the engine's stream */
  tilec_context *c = NULL;
  CHECK_STATUS(TILEC_OK, tilec_context_create(&o, &c));
  return c;
}

static tilec_context_info info_of(tilec_context *c) {
  tilec_context_info i = {.size = sizeof i};
  CHECK_STATUS(TILEC_OK, tilec_context_info_get(c, &i));
  return i;
}

static tilec_kernel_info kinfo(const tilec_kernel *k) {
  tilec_kernel_info i = {.size = sizeof i};
  CHECK_STATUS(TILEC_OK, tilec_kernel_info_get(k, &i));
  return i;
}

static tilec_kernel *get(tilec_context *c, const char *kernel, const char *shape,
                         const char *config) {
  tilec_kernel_request r;
  tilec_kernel_request_init(&r);
  r.kernel = kernel;
  r.shape = shape;
  r.config = config;
  tilec_kernel *k = NULL;
  CHECK_STATUS(TILEC_OK, tilec_kernel_get(c, &r, &k));
  return k;
}

static void matmul_args(tilec_arg *a, int64_t m, int64_t n, int64_t kk) {
  int64_t sa[2] = {m, kk}, sb[2] = {kk, n}, sc[2] = {m, n};
  a[0] = tilec_arg_tensor(0x100000, 2, sa);
  a[1] = tilec_arg_tensor(0x200000, 2, sb);
  a[2] = tilec_arg_tensor(0x300000, 2, sc);
}

/* Miss, hit, launch; the heuristic's cubin goes into the (writable) database. */
static void test_miss_hit_launch(void) {
  tilec_context *c = open_ctx(0, 0);
  if (!c)
    return;
  tilec_kernel *k = get(c, "matmul", "M=512,N=256,K=128", NULL);
  if (!k) {
    tilec_context_destroy(c);
    return;
  }
  tilec_kernel_info ki = kinfo(k);
  CHECK_EQ_INT(TILEC_ORIGIN_HEURISTIC, ki.origin);
  CHECK_CONTAINS(ki.bucket, "M=");
  tilec_context_info ci = info_of(c);
  CHECK_EQ_INT(1, (int)ci.misses);
  CHECK_EQ_INT(1, (int)ci.compiles);
  CHECK_EQ_INT(1, ci.cache_size);
  CHECK_EQ_INT(1, (int)live("module"));
  fprintf(stderr, "miss (heuristic config %s, compile + load): %.1f ms\n", ki.config, ki.load_ms);

  tilec_arg a[3];
  matmul_args(a, 512, 256, 128);
  long before = live("launches");
  CHECK_STATUS(TILEC_OK, tilec_launch(c, k, a, 3, NULL));
  CHECK_EQ_INT((int)before + 1, (int)live("launches"));
  unsigned dims[7];
  const char *name;
  int np;
  size_t sz;
  last_launch(dims, &name, &np, &sz);
  int64_t bm = 0, bn = 0;
  CHECK_STATUS(TILEC_OK, tilec_kernel_value(k, "BM", &bm));
  CHECK_STATUS(TILEC_OK, tilec_kernel_value(k, "BN", &bn));
  CHECK_EQ_INT((int)(((512 + bm - 1) / bm) * ((256 + bn - 1) / bn)), (int)dims[0]);
  CHECK_EQ_INT(ki.threads, (int)dims[3]);
  CHECK_EQ_INT(ki.smem_bytes, (int)dims[6]);
  CHECK_EQ_STR(ki.entry, name);
  a[2].shape[1] = 255; /* C does not match N */
  CHECK_STATUS(TILEC_ERR_SHAPE, tilec_launch(c, k, a, 3, NULL));
  CHECK_CONTAINS(tilec_errmsg(c), "tensor 'C'");
  CHECK_EQ_INT((int)before + 1, (int)live("launches"));
  a[2].shape[1] = 256;

  /* hit: the same kernel, no new module; the costs */
  tilec_kernel *k2 = get(c, "matmul", "M=512,N=256,K=128", NULL);
  CHECK(k2 == k);
  tilec_kernel_release(k2);
  enum { N = 100000 };
  tilec_kernel_request r;
  tilec_kernel_request_init(&r);
  r.kernel = "matmul";
  r.shape = "M=512,N=256,K=128";
  double t0 = now_us();
  for (int i = 0; i < N; i++) {
    tilec_kernel *h = NULL;
    tilec_kernel_get(c, &r, &h);
    tilec_kernel_release(h);
  }
  double t1 = now_us();
  for (int i = 0; i < N; i++)
    tilec_launch(c, k, a, 3, NULL);
  double t2 = now_us();
  fprintf(stderr, "hit lookup + release: %.3f us; launch (pack + cuLaunchKernel): %.3f us\n",
          (t1 - t0) / N, (t2 - t1) / N);
  ci = info_of(c);
  CHECK_EQ_INT(N + 1, (int)ci.hits);
  CHECK_EQ_INT(1, (int)live("module"));

  /* a driver failure is a status with the driver's words */
  setenv("FAKECUDA_FAIL", "cuLaunchKernel", 1);
  CHECK_STATUS(TILEC_ERR_LAUNCH, tilec_launch(c, k, a, 3, NULL));
  CHECK_CONTAINS(tilec_errmsg(c), "cuLaunchKernel");
  setenv("FAKECUDA_FAIL", "cuModuleLoadDataEx", 1);
  tilec_kernel_request_init(&r);
  r.kernel = "matmul";
  r.shape = "M=8,N=8,K=8";
  r.config = "BM=64,BN=64,BK=32,WARPS=4,STAGES=2,GROUP_M=1";
  tilec_kernel *bad = NULL;
  CHECK_STATUS(TILEC_ERR_CUDA, tilec_kernel_get(c, &r, &bad));
  CHECK(bad == NULL);
  unsetenv("FAKECUDA_FAIL");
  tilec_kernel_release(k);
  tilec_context_destroy(c);
  CHECK_EQ_INT(0, (int)live("module"));
}

/* TILEC_KERNEL_ALIGNED: the aligned variant is its own kernel and cubin (stored under its own
 * compile key, loaded by the next context); launches that break the promise fail before the
 * driver; an old-sized request (no flags field) is the generic kernel. */
static void test_aligned(void) {
  tilec_context *c = open_ctx(0, 0);
  if (!c)
    return;
  static const char shape[] = "M=96,N=64,K=64", cfg[] = "BM=32,BN=32,BK=32,WARPS=1,STAGES=2";
  tilec_kernel_request r;
  tilec_kernel_request_init(&r);
  r.kernel = "matmul", r.shape = shape, r.config = cfg, r.flags = TILEC_KERNEL_ALIGNED;
  tilec_kernel *ka = NULL, *kg = get(c, "matmul", shape, cfg);
  CHECK_STATUS(TILEC_OK, tilec_kernel_get(c, &r, &ka));
  if (!ka || !kg) {
    tilec_kernel_release(ka), tilec_kernel_release(kg), tilec_context_destroy(c);
    return;
  }
  CHECK(ka != kg);
  CHECK_EQ_INT(TILEC_KERNEL_ALIGNED, (int)kinfo(ka).flags);
  CHECK_EQ_INT(0, (int)kinfo(kg).flags);
  CHECK_EQ_INT(2, (int)info_of(c).compiles);
  tilec_arg a[3];
  matmul_args(a, 96, 64, 64);
  long before = live("launches");
  CHECK_STATUS(TILEC_OK, tilec_launch(c, ka, a, 3, NULL));
  a[1].ptr += 8; /* B 8 bytes off */
  CHECK_STATUS(TILEC_ERR_ARG, tilec_launch(c, ka, a, 3, NULL));
  CHECK_CONTAINS(tilec_errmsg(c), "tensor 'B' breaks its promise");
  CHECK_STATUS(TILEC_OK, tilec_launch(c, kg, a, 3, NULL)); /* the generic kernel takes anything */
  a[1].ptr -= 8;
  a[2].stride[0] = 68, a[2].stride[1] = 1; /* C's rows 136 bytes apart */
  a[0].stride[0] = 64, a[0].stride[1] = 1, a[1].stride[0] = 64, a[1].stride[1] = 1;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_launch(c, ka, a, 3, NULL));
  CHECK_CONTAINS(tilec_errmsg(c), "tensor 'C'");
  CHECK_EQ_INT((int)before + 2, (int)live("launches"));
  tilec_kernel_release(ka);
  tilec_kernel_release(kg);
  tilec_context_destroy(c);

  /* the next context loads the aligned cubin from the database, and an old-sized request is
   * the generic kernel (also from the database) */
  c = open_ctx(0, 0);
  ka = NULL;
  CHECK_STATUS(TILEC_OK, tilec_kernel_get(c, &r, &ka));
  r.size = offsetof(tilec_kernel_request, flags);
  kg = NULL;
  CHECK_STATUS(TILEC_OK, tilec_kernel_get(c, &r, &kg));
  CHECK_EQ_INT(0, (int)info_of(c).compiles);
  if (ka && kg) {
    CHECK_EQ_INT(TILEC_KERNEL_ALIGNED, (int)kinfo(ka).flags);
    CHECK_EQ_INT(0, (int)kinfo(kg).flags);
  }
  r.size = sizeof r, r.flags = 1u << 8;
  tilec_kernel *bad = NULL;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_get(c, &r, &bad));
  CHECK_CONTAINS(tilec_errmsg(c), "unknown flags");
  tilec_kernel_release(ka);
  tilec_kernel_release(kg);
  tilec_context_destroy(c);
}

/* Asks with TILEC_KERNEL_NOWAIT until the answer is not BUSY (at most 120 s). */
static tilec_status poll_get(tilec_context *c, const tilec_kernel_request *r, tilec_kernel **k,
                             int *busy) {
  tilec_status s = TILEC_ERR_BUSY;
  *busy = 0;
  for (double t0 = now_us(); s == TILEC_ERR_BUSY && now_us() - t0 < 120e6;) {
    s = tilec_kernel_get(c, r, k);
    if (s == TILEC_ERR_BUSY) {
      (*busy)++;
      struct timespec ts = {0, 5000000};
      nanosleep(&ts, NULL);
    }
  }
  return s;
}

/* TILEC_KERNEL_NOWAIT: a miss answers BUSY at once and compiles in the background; asking
 * again gets the kernel, the same handle as a blocking get's, compiled once; a failing request
 * reports its error once and then tries again; an IR request is refused; destroying the context
 * with a compile running waits for it. */
static void test_nowait(void) {
  tilec_context *c = open_ctx(TILEC_CONTEXT_NO_DB, 0);
  if (!c)
    return;
  tilec_kernel_request r;
  tilec_kernel_request_init(&r);
  r.kernel = "matmul", r.shape = "M=64,N=64,K=64", r.config = "BM=32,BN=32,BK=32,WARPS=1,STAGES=2";
  r.flags = TILEC_KERNEL_NOWAIT;
  tilec_kernel *k = NULL, *k2 = NULL;
  CHECK_STATUS(TILEC_ERR_BUSY, tilec_kernel_get(c, &r, &k));
  CHECK(k == NULL);
  CHECK_CONTAINS(tilec_errmsg(c), "background");
  CHECK_EQ_INT(1, info_of(c).pending); /* queued or running: a compile takes far longer */
  int busy = 0;
  CHECK_STATUS(TILEC_OK, poll_get(c, &r, &k, &busy));
  CHECK_EQ_INT(1, (int)info_of(c).compiles);
  CHECK_EQ_INT(0, info_of(c).pending);
  tilec_context_info old = {.size = offsetof(tilec_context_info, pending), .pending = 7};
  CHECK_STATUS(TILEC_OK, tilec_context_info_get(c, &old)); /* a caller from before the field */
  CHECK_EQ_INT(7, old.pending);
  r.flags = 0; /* a blocking get of the same request: a hit */
  CHECK_STATUS(TILEC_OK, tilec_kernel_get(c, &r, &k2));
  CHECK(k && k == k2);
  CHECK_EQ_INT(1, (int)info_of(c).compiles);
  if (k) {
    tilec_arg a[3];
    matmul_args(a, 64, 64, 64);
    CHECK_STATUS(TILEC_OK, tilec_launch(c, k, a, 3, NULL));
  }
  tilec_kernel_release(k), tilec_kernel_release(k2);

  /* a config the kernel refuses: BUSY, then its error once, then a new attempt */
  r.flags = TILEC_KERNEL_NOWAIT, r.config = "BM=100";
  k = NULL;
  CHECK_STATUS(TILEC_ERR_BUSY, tilec_kernel_get(c, &r, &k));
  tilec_status s = poll_get(c, &r, &k, &busy);
  CHECK(s != TILEC_OK && s != TILEC_ERR_BUSY && k == NULL);
  CHECK_CONTAINS(tilec_errmsg(c), "BM");
  CHECK_STATUS(TILEC_ERR_BUSY, tilec_kernel_get(c, &r, &k));
  CHECK(poll_get(c, &r, &k, &busy) == s);

  tilec_ir *ir = NULL;
  static const char text[] = "kernel k\nargs (%A: tensor<f32>[M])\ngrid (M)\n{\n}\n";
  CHECK_STATUS(TILEC_OK, tilec_ir_parse(text, sizeof text - 1, "k.tile", &ir));
  tilec_kernel_request ri;
  tilec_kernel_request_init(&ri);
  ri.ir = ir, ri.shape = "M=16", ri.flags = TILEC_KERNEL_NOWAIT;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_get(c, &ri, &k));
  CHECK_CONTAINS(tilec_errmsg(c), "source");
  tilec_ir_destroy(ir);

  /* get_many of NOWAIT requests: a prefetch — BUSY at once, both got in the background */
  tilec_kernel_request pr[2];
  const tilec_kernel_request *pp[2] = {&pr[0], &pr[1]};
  tilec_kernel *pk[2];
  for (int i = 0; i < 2; i++) {
    tilec_kernel_request_init(&pr[i]);
    pr[i].kernel = "matmul", pr[i].shape = "M=64,N=64,K=64", pr[i].flags = TILEC_KERNEL_NOWAIT;
    pr[i].config = i ? "BM=32,BN=64,BK=32,WARPS=1,STAGES=2" : "BM=64,BN=64,BK=32,WARPS=1,STAGES=2";
  }
  int failed = -1;
  CHECK_STATUS(TILEC_ERR_BUSY, tilec_kernel_get_many(c, pp, 2, pk, 1, &failed));
  CHECK(failed == 0 && !pk[0] && !pk[1]);
  for (int i = 0; i < 2; i++) {
    CHECK_STATUS(TILEC_OK, poll_get(c, &pr[i], &pk[i], &busy));
    tilec_kernel_release(pk[i]);
  }

  /* destroyed while a compile runs: waits for it, leaks nothing (ASan), leaves no module */
  r.config = "BM=64,BN=32,BK=32,WARPS=2,STAGES=2";
  CHECK_STATUS(TILEC_ERR_BUSY, tilec_kernel_get(c, &r, &k));
  tilec_context_destroy(c);
  CHECK_EQ_INT(0, (int)live("module"));
}

/* tilec_kernel_get_many: every request served (misses compiled on two threads), the first
 * failure reported by index with its message, the other kernels still returned. */
static void test_get_many(void) {
  tilec_context *c = open_ctx(TILEC_CONTEXT_NO_DB, 0);
  if (!c)
    return;
  tilec_kernel_request r[4];
  static const char *const cfgs[] = {"BM=32,BN=32,BK=32,WARPS=1,STAGES=2",
                                     "BM=64,BN=32,BK=32,WARPS=2,STAGES=2",
                                     "BM=32,BN=64,BK=32,WARPS=2,STAGES=2"};
  const tilec_kernel_request *rp[4];
  for (int i = 0; i < 4; i++) {
    tilec_kernel_request_init(&r[i]);
    r[i].kernel = "matmul", r[i].shape = "M=64,N=64,K=64", r[i].config = cfgs[i % 3];
    rp[i] = &r[i];
  }
  r[3].flags = TILEC_KERNEL_ALIGNED;
  tilec_kernel *k[4];
  int failed = 7;
  CHECK_STATUS(TILEC_OK, tilec_kernel_get_many(c, rp, 4, k, 2, &failed));
  CHECK_EQ_INT(-1, failed);
  for (int i = 0; i < 4; i++)
    CHECK(k[i] != NULL);
  CHECK(k[0] != k[1] && k[1] != k[2] && k[0] != k[3]);
  CHECK_EQ_INT(4, (int)info_of(c).compiles);
  for (int i = 0; i < 4; i++)
    tilec_kernel_release(k[i]);

  r[1].kernel = "matmool"; /* a failure in the middle; the others are hits now */
  CHECK_STATUS(TILEC_ERR_NOT_FOUND, tilec_kernel_get_many(c, rp, 4, k, 0, &failed));
  CHECK_EQ_INT(1, failed);
  CHECK_CONTAINS(tilec_errmsg(c), "request 1: ");
  CHECK_CONTAINS(tilec_errmsg(c), "matmool");
  CHECK(k[0] && !k[1] && k[2] && k[3]);
  for (int i = 0; i < 4; i++)
    tilec_kernel_release(k[i]);
  CHECK_STATUS(TILEC_OK, tilec_kernel_get_many(c, rp, 0, NULL, 1, NULL));
  CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_get_many(c, rp, -1, k, 1, NULL));
  CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_get_many(NULL, rp, 4, k, 1, NULL));
  rp[2] = NULL;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_kernel_get_many(c, rp, 4, k, 1, NULL));
  CHECK_CONTAINS(tilec_errmsg(c), "reqs[2]");
  tilec_context_destroy(c);
}

/* A read-only context loads the stored cubin and never writes: what it compiles is compiled
 * again by the next read-only context. */
static void test_readonly(void) {
  struct stat st0, st1;
  REQUIRE(stat(db, &st0) == 0);
  tilec_context *c = open_ctx(TILEC_CONTEXT_READONLY, 0);
  if (!c)
    return;
  tilec_kernel *k = get(c, "matmul", "M=512,N=256,K=128", NULL);
  CHECK_EQ_INT(TILEC_ORIGIN_HEURISTIC, kinfo(k).origin);
  fprintf(stderr, "miss answered by the database's cubin (no compile): %.2f ms\n",
          kinfo(k).load_ms);
  tilec_context_info ci = info_of(c);
  CHECK_EQ_INT(0, (int)ci.compiles); /* the cubin the first context stored */
  CHECK_EQ_INT(1, (int)ci.db_loads);
  CHECK_EQ_INT(1, ci.readonly);
  tilec_kernel_release(k);
  const char *cfg = "BM=32,BN=32,BK=32,WARPS=4,STAGES=2,GROUP_M=1";
  for (int round = 0; round < 2; round++) {
    tilec_context *r = round ? open_ctx(TILEC_CONTEXT_READONLY, 0) : c;
    k = get(r, "matmul", "M=64,N=64,K=64", cfg);
    CHECK_EQ_INT(1, (int)info_of(r).compiles); /* compiled both times: never stored */
    tilec_kernel_release(k);
    if (round)
      tilec_context_destroy(r);
  }
  tilec_context_destroy(c);
  REQUIRE(stat(db, &st1) == 0);
  CHECK(st0.st_size == st1.st_size && st0.st_mtime == st1.st_mtime);
  /* read-only over a missing file: an empty database, heuristic configs */
  char missing[300];
  snprintf(missing, sizeof missing, "%s/none.db", dir);
  tilec_context_opts o;
  tilec_context_opts_init(&o);
  o.flags = TILEC_CONTEXT_READONLY;
  o.db_path = missing;
  CHECK_STATUS(TILEC_OK, tilec_context_create(&o, &c));
  CHECK(access(missing, F_OK) != 0);
  tilec_context_destroy(c);
}

/* The database's winner for this device, toolchain, kernel and bucket is what a lookup gets. */
static void test_db_winner(void) {
  tilec_context *c = open_ctx(0, 0);
  if (!c)
    return;
  tilec_context_info ci = info_of(c);
  const char *text = NULL;
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, "matmul"))
      text = s->text;
  ir_kernel *k = NULL;
  ir_diag d;
  REQUIRE(text && !ir_parse(text, strlen(text), "matmul", &k, &d));
  char hash[65];
  REQUIRE(!at_kernel_hash(k, hash, NULL));
  kn_shape shape;
  char err[256];
  REQUIRE(!kn_shape_parse("M=1000,N=1024,K=1024", &shape, err, sizeof err));
  char *bucket = NULL;
  REQUIRE(!at_bucket_key(k, &shape, NULL, &bucket, NULL));
  at_db *h = NULL;
  REQUIRE(!at_db_open(db, 0, &h, NULL));
  char *device = strdup(ci.device), *toolchain = strdup(ci.toolchain); /* c's, till destroyed */
  char arch[16];
  snprintf(arch, sizeof arch, "%s", ci.arch);
  REQUIRE(device && toolchain);
  at_key key = {device, toolchain, "matmul", hash, bucket};
  at_result row = at_result_empty();
  row.config = "BM=64,BN=128,BK=32,WARPS=4,STAGES=3,GROUP_M=8";
  row.median_ms = 0.25;
  CHECK_EQ_INT(AT_OK, at_db_put(h, &key, &row, NULL));
  at_db_close(h);

  tilec_kernel *kk = get(c, "matmul", "M=1000,N=1024,K=1024", NULL);
  tilec_kernel_info ki = kinfo(kk);
  CHECK_EQ_INT(TILEC_ORIGIN_DB_COMPILED, ki.origin); /* the row has no cubin yet */
  CHECK_CONTAINS(ki.config, "BM=64,BN=128,BK=32,WARPS=4,STAGES=3,GROUP_M=8");
  tilec_kernel_release(kk);
  /* M=1000 and M=1024 share the pow2 bucket: a new request, the same code */
  kk = get(c, "matmul", "M=1024,N=1024,K=1024", NULL);
  CHECK_CONTAINS(kinfo(kk).config, "BN=128");
  CHECK_EQ_INT(1, info_of(c).cache_size);
  tilec_kernel_release(kk);
  tilec_context_destroy(c);
  /* the next process loads the cubin the first one stored */
  c = open_ctx(TILEC_CONTEXT_READONLY, 0);
  kk = get(c, "matmul", "M=1000,N=1024,K=1024", NULL);
  CHECK_EQ_INT(TILEC_ORIGIN_DB, kinfo(kk).origin);
  CHECK_EQ_INT(0, (int)info_of(c).compiles);
  tilec_kernel_release(kk);
  tilec_context_destroy(c);

  /* A faster row that measured the aligned variant: its cubin serves aligned requests; a
   * generic request gets the same config compiled as generic code. */
  REQUIRE(!at_db_open(db, 0, &h, NULL));
  static const char meta[] = "{\"entry\": \"aligned_marker\", \"threads\": 128, "
                             "\"smem_bytes\": 1024}";
  row.config = "BM=128,BN=64,BK=32,WARPS=4,STAGES=3,GROUP_M=8";
  /* stored under the key of the whole binding (the problem's items and the row's), as the
   * tuner stores it */
  ir_config cfg = {0};
  char code[1024], ckey[65];
  REQUIRE(!kn_problem_config("matmul", &shape, NULL, &cfg, err, sizeof err));
  REQUIRE(!ir_config_parse(&cfg, row.config, &d));
  REQUIRE(!at_code_config(k, &cfg, code, sizeof code, NULL));
  REQUIRE(!at_compile_key_variant(hash, code, arch, toolchain, "aligned", ckey, NULL));
  row.median_ms = 0.125, row.variant = "aligned", row.compile_key = ckey;
  static const char image[] = ".version 8.0\n.target sm_90a\n.address_size 64\n"
                              ".visible .entry aligned_marker(.param .u64 p)\n{\n  ret;\n}\n";
  CHECK_EQ_INT(AT_OK, at_db_put_blob(h, row.compile_key, image, sizeof image, meta, NULL));
  CHECK_EQ_INT(AT_OK, at_db_put(h, &key, &row, NULL));
  at_db_close(h);
  c = open_ctx(0, 0);
  tilec_kernel_request r;
  tilec_kernel_request_init(&r);
  r.kernel = "matmul", r.shape = "M=1000,N=1024,K=1024", r.flags = TILEC_KERNEL_ALIGNED;
  kk = NULL;
  CHECK_STATUS(TILEC_OK, tilec_kernel_get(c, &r, &kk));
  ki = kinfo(kk);
  CHECK_EQ_INT(TILEC_ORIGIN_DB, ki.origin);
  CHECK_EQ_STR("aligned_marker", ki.entry ? ki.entry : "");
  CHECK_EQ_INT(0, (int)info_of(c).compiles);
  tilec_kernel_release(kk);
  kk = get(c, "matmul", "M=1000,N=1024,K=1024", NULL);
  ki = kinfo(kk);
  CHECK_EQ_INT(TILEC_ORIGIN_DB_COMPILED, ki.origin);
  CHECK_CONTAINS(ki.config, "BM=128,BN=64");
  CHECK(ki.entry && strcmp(ki.entry, "aligned_marker"));
  tilec_kernel_release(kk);
  tilec_context_destroy(c);
  free(bucket), free(device), free(toolchain);
  ir_kernel_free(k);
}

/* Capacity 2: the third kernel evicts the least recently used, which stays valid while held. */
/* A problem without a winner takes the winner of the nearest tuned bucket within opts.nearest
 * (test_db_winner's rows: M=pow2:1024, winner BM=128,BN=64, its generic code stored): M=2000 is
 * one bucket away and loads that code without compiling; M=64 is four away and gets the
 * heuristic; nearest < 0 turns the stand-in off; an options struct from before the field gets
 * the default. */
static void test_nearest(void) {
  tilec_context_opts o;
  for (int v = 0; v < 3; v++) {
    tilec_context_opts_init(&o);
    o.db_path = db;
    o.cu_stream = stream;
    o.flags = TILEC_CONTEXT_READONLY;
    if (v == 1)
      o.nearest = -1;
    if (v == 2)
      o.size = offsetof(tilec_context_opts, nearest), o.nearest = -1; /* not read */
    tilec_context *c = NULL;
    CHECK_STATUS(TILEC_OK, tilec_context_create(&o, &c));
    if (!c)
      return;
    double t0 = now_us();
    tilec_kernel *k = get(c, "matmul", "M=2000,N=1024,K=1024", NULL);
    if (v == 0)
      printf("miss answered by the nearest tuned bucket's cubin: %.2f ms\n", (now_us() - t0) / 1e3);
    tilec_kernel_info ki = kinfo(k);
    if (v == 1) {
      CHECK_EQ_INT(TILEC_ORIGIN_HEURISTIC, ki.origin);
    } else {
      CHECK_EQ_INT(TILEC_ORIGIN_NEAREST, ki.origin);
      CHECK_CONTAINS(ki.config, "BM=128,BN=64,BK=32,WARPS=4,STAGES=3,GROUP_M=8");
      CHECK_EQ_INT(0, (int)info_of(c).compiles);
      CHECK_EQ_INT(1, (int)info_of(c).db_loads);
    }
    tilec_kernel_release(k);
    if (v == 0) {
      k = get(c, "matmul", "M=64,N=1024,K=1024", NULL);
      CHECK_EQ_INT(TILEC_ORIGIN_HEURISTIC, kinfo(k).origin);
      tilec_kernel_release(k);
    }
    tilec_context_destroy(c);
  }
  tilec_context_opts_init(&o);
  o.flags = TILEC_CONTEXT_NO_DB;
  o.nearest = NAN;
  tilec_context *c = NULL;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_context_create(&o, &c));
}

/* Problems that share the tunables but not the code (attention's D, matmul's dtype) never share
 * a stored cubin: the compile key covers the whole binding. (With keys over the tunables alone,
 * D=128 loaded the D=64 code the first context stored.) */
static void test_problem_items(void) {
  static const char *const kernels[2] = {"attention", "matmul"};
  static const char *const shapes[2][2] = {{"B=1,H=2,S=256,D=64", "B=1,H=2,S=256,D=128"},
                                           {"M=256,N=256,K=256", "M=256,N=256,K=256"}};
  static const char *const dtypes[2][2] = {{NULL, NULL}, {"bf16", "f16"}};
  static const char *const configs[2] = {"BM=64,BN=64,WARPS=4,STAGES=2",
                                         "BM=64,BN=64,BK=32,WARPS=4,STAGES=2,GROUP_M=8"};
  for (int i = 0; i < 2; i++) {
    for (int j = 0; j < 2; j++) { /* each in a fresh context: only the database is shared */
      tilec_context *c = open_ctx(0, 0);
      if (!c)
        return;
      tilec_kernel_request r;
      tilec_kernel_request_init(&r);
      r.kernel = kernels[i], r.shape = shapes[i][j], r.dtype = dtypes[i][j], r.config = configs[i];
      tilec_kernel *k = NULL;
      CHECK_STATUS(TILEC_OK, tilec_kernel_get(c, &r, &k));
      if (!CHECK(info_of(c).compiles == 1))
        fprintf(stderr, "  %s %s %s: no compile (another problem's cubin?)\n", kernels[i],
                shapes[i][j], dtypes[i][j] ? dtypes[i][j] : "");
      tilec_kernel_release(k);
      tilec_context_destroy(c);
    }
    tilec_context *c = open_ctx(0, 0); /* the first problem again: its own stored cubin */
    if (!c)
      return;
    tilec_kernel_request r;
    tilec_kernel_request_init(&r);
    r.kernel = kernels[i], r.shape = shapes[i][0], r.dtype = dtypes[i][0], r.config = configs[i];
    tilec_kernel *k = NULL;
    CHECK_STATUS(TILEC_OK, tilec_kernel_get(c, &r, &k));
    CHECK_EQ_INT(0, (int)info_of(c).compiles);
    CHECK_EQ_INT(1, (int)info_of(c).db_loads);
    tilec_kernel_release(k);
    tilec_context_destroy(c);
  }
}

static void test_lru(void) {
  tilec_context *c = open_ctx(TILEC_CONTEXT_NO_DB, 2);
  if (!c)
    return;
  const char *cfg[3] = {"BM=32,BN=32,BK=32,WARPS=4,STAGES=2,GROUP_M=1",
                        "BM=64,BN=32,BK=32,WARPS=4,STAGES=2,GROUP_M=1",
                        "BM=32,BN=64,BK=32,WARPS=4,STAGES=2,GROUP_M=1"};
  tilec_kernel *k0 = get(c, "matmul", "M=64,N=64,K=64", cfg[0]);
  tilec_kernel *k1 = get(c, "matmul", "M=64,N=64,K=64", cfg[1]);
  tilec_kernel_release(k1);
  tilec_kernel *k2 = get(c, "matmul", "M=64,N=64,K=64", cfg[2]);
  tilec_kernel_release(k2);
  tilec_context_info ci = info_of(c);
  CHECK_EQ_INT(2, ci.cache_size);
  CHECK_EQ_INT(1, (int)ci.evictions);
  CHECK_EQ_INT(3, (int)live("module")); /* k0 evicted but held */
  tilec_arg a[3];
  matmul_args(a, 64, 64, 64);
  CHECK_STATUS(TILEC_OK, tilec_launch(c, k0, a, 3, NULL));
  tilec_kernel_release(k0);
  CHECK_EQ_INT(2, (int)live("module")); /* freed with its last reference */
  CHECK_STATUS(TILEC_OK, tilec_context_set_cache_capacity(c, 1));
  CHECK_EQ_INT(1, (int)live("module"));
  CHECK_EQ_INT(1, info_of(c).cache_size);
  tilec_context_destroy(c);
  CHECK_EQ_INT(0, (int)live("module"));
}

/* Attention and a causal layout in device memory. */
static void test_attention_layout(void) {
  tilec_context *c = open_ctx(TILEC_CONTEXT_NO_DB, 0);
  if (!c)
    return;
  tilec_kernel *k = get(c, "attention", "B=1,H=2,S=256,D=64", NULL);
  if (k) {
    int64_t q[4] = {1, 2, 256, 64}, lse[3] = {1, 2, 256};
    tilec_arg a[6] = {tilec_arg_tensor(0x1000, 4, q),   tilec_arg_tensor(0x2000, 4, q),
                      tilec_arg_tensor(0x3000, 4, q),   tilec_arg_tensor(0x4000, 4, q),
                      tilec_arg_tensor(0x5000, 3, lse), tilec_arg_float(0.125)};
    CHECK_EQ_INT(6, kinfo(k).nargs);
    CHECK_STATUS(TILEC_OK, tilec_launch(c, k, a, 6, stream));
    unsigned dims[7];
    const char *name;
    int np;
    size_t sz;
    last_launch(dims, &name, &np, &sz);
    int64_t bm = 0;
    CHECK_STATUS(TILEC_OK, tilec_kernel_value(k, "BM", &bm));
    CHECK_EQ_INT((int)((256 + bm - 1) / bm), (int)dims[0]);
    CHECK_EQ_INT(2, (int)dims[1]);
    tilec_kernel_release(k);
  }
  long mem0 = live("mem");
  tilec_mask_desc d;
  tilec_mask_desc_init(&d);
  d.mask = "causal";
  d.S = 1024;
  d.block_m = d.block_n = 128;
  tilec_layout *l = NULL;
  CHECK_STATUS(TILEC_OK, tilec_layout_create(c, &d, &l));
  tilec_layout_info li = {.size = sizeof li};
  CHECK_STATUS(TILEC_OK, tilec_layout_info_get(l, &li));
  CHECK(li.d_full_ptr && li.d_full_idx && li.d_part_ptr && li.d_part_idx && li.d_doc);
  CHECK_EQ_INT(28, (int)li.n_full);
  /* fake device memory is host memory: the copy is readable */
  CHECK(!memcmp((const void *)(uintptr_t)li.d_full_idx, li.full_idx, 28 * sizeof(int32_t)));
  CHECK_EQ_INT((int)mem0 + 5, (int)live("mem"));
  tilec_layout_destroy(l);
  CHECK_EQ_INT((int)mem0, (int)live("mem"));
  tilec_context_destroy(c);
}

/* Sweeps from the API: a background tuner, and the SYNC policy on a DB miss, each with a budget
 * of one candidate measured by a real worker (the tilec executable) on the fake driver. The
 * fake computes nothing, so the candidate is `wrong`: its row is stored, nothing wins, and the
 * lookup falls back to the heuristic config. */
static int rows_variant(const char *device, const char *needle, const char *variant) {
  at_db *h = NULL;
  at_rows rows = {0};
  at_key pat = {.device = device, .kernel = "matmul"};
  int n = 0;
  if (at_db_open(db, AT_DB_READONLY, &h, NULL) || at_db_rows(h, &pat, &rows, NULL)) {
    at_db_close(h);
    return -1;
  }
  for (int i = 0; i < rows.n; i++)
    n += strstr(rows.r[i].key.bucket, needle) && rows.r[i].status == AT_RUN_WRONG &&
         (!variant || !strcmp(rows.r[i].variant, variant));
  at_rows_free(&rows);
  at_db_close(h);
  return n;
}

static int rows_of(const char *device, const char *needle) {
  return rows_variant(device, needle, NULL);
}

static void test_tuners(void) {
  setenv("TILEC_WORKER_EXE", TILEC_EXE, 1);
  tilec_context *c = open_ctx(0, 0);
  if (!c)
    return;
  char device[256];
  snprintf(device, sizeof device, "%s", info_of(c).device);
  tilec_kernel_request r;
  tilec_kernel_request_init(&r);
  r.kernel = "matmul";
  r.shape = "M=48,N=64,K=64";
  tilec_tune_opts o;
  tilec_tune_opts_init(&o);
  o.budget = 1;
  o.jobs = 1;
  o.background = 1;
  tilec_tuner *t = NULL;
  CHECK_STATUS(TILEC_OK, tilec_tuner_start(c, &r, &o, &t));
  tilec_status s = tilec_tuner_poll(t);
  CHECK(s == TILEC_OK || s == TILEC_ERR_BUSY);
  CHECK_STATUS(TILEC_OK, tilec_tuner_wait(t));
  CHECK_STATUS(TILEC_OK, tilec_tuner_poll(t));
  tilec_tuner_destroy(t);
  CHECK_EQ_INT(1, rows_variant(device, "M=pow2:64", "")); /* a generic request: generic code */
  /* An aligned request measures the aligned variant; on a problem that breaks its promise the
   * sweep is refused before anything is compiled. */
  r.shape = "M=96,N=64,K=64", r.flags = TILEC_KERNEL_ALIGNED, o.background = 0;
  t = NULL;
  CHECK_STATUS(TILEC_OK, tilec_tuner_start(c, &r, &o, &t));
  tilec_tuner_destroy(t);
  CHECK_EQ_INT(1, rows_variant(device, "M=pow2:128", "aligned"));
  r.shape = "M=96,N=64,K=60";
  t = NULL;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_tuner_start(c, &r, &o, &t));
  CHECK_CONTAINS(tilec_errmsg(c), "promise");
  tilec_tuner_destroy(t);
  r.flags = 4;
  CHECK_STATUS(TILEC_ERR_ARG, tilec_tuner_start(c, &r, &o, &t));
  CHECK_CONTAINS(tilec_errmsg(c), "unknown flags");
  tilec_context_destroy(c);

  tilec_context_opts co;
  tilec_context_opts_init(&co);
  co.db_path = db;
  co.cu_stream = stream;
  co.tune = TILEC_TUNE_SYNC;
  co.tune_budget = 1;
  CHECK_STATUS(TILEC_OK, tilec_context_create(&co, &c));
  tilec_kernel *k = get(c, "matmul", "M=200,N=64,K=64", NULL);
  CHECK_EQ_INT(1, rows_of(device, "M=pow2:256")); /* the sweep ran before the answer */
  if (k)
    CHECK_EQ_INT(TILEC_ORIGIN_HEURISTIC, kinfo(k).origin);
  tilec_kernel_release(k);
  tilec_context_destroy(c);
  unsetenv("TILEC_WORKER_EXE");
}

int main(void) {
  setenv("TILEC_LIBCUDA", FAKECUDA_LIB, 1);
  REQUIRE(mkdtemp(dir) != NULL);
  snprintf(db, sizeof db, "%s/t.db", dir);
  tilec_context_opts o;
  tilec_context_opts_init(&o);
  o.flags = TILEC_CONTEXT_NO_DB;
  tilec_context *probe = NULL;
  REQUIRE(tilec_context_create(&o, &probe) == TILEC_OK); /* loads the fake */
  tilec_context_destroy(probe);
  void *h = dlopen(FAKECUDA_LIB, RTLD_NOW | RTLD_NOLOAD);
  REQUIRE(h != NULL);
  void *a = dlsym(h, "fakecuda_live"), *b = dlsym(h, "fakecuda_last_launch"),
       *sc = dlsym(h, "cuStreamCreate");
  REQUIRE(a && b && sc);
  memcpy(&live, &a, sizeof a);
  memcpy(&last_launch, &b, sizeof b);
  void *rt = dlsym(h, "cuDevicePrimaryCtxRetain"), *pu = dlsym(h, "cuCtxPushCurrent_v2");
  REQUIRE(rt && pu);
  int (*stream_create)(void **, unsigned), (*retain)(void **, int), (*push)(void *);
  memcpy(&stream_create, &sc, sizeof sc);
  memcpy(&retain, &rt, sizeof rt);
  memcpy(&push, &pu, sizeof pu);
  void *cu = NULL; /* the engine's context: the primary one, current on this thread */
  REQUIRE(retain(&cu, 0) == 0 && push(cu) == 0 && stream_create(&stream, 0) == 0);
  dlclose(h);
  rt_lib_info li;
  rt_lib_query(RT_LIB_NVJITLINK, &li);
  if (!li.loaded)
    TEST_SKIP("no nvJitLink: misses cannot compile (%s)", li.error);
  test_miss_hit_launch();
  test_aligned();
  test_get_many();
  test_nowait();
  test_readonly();
  test_db_winner();
  test_nearest();
  test_problem_items();
  test_lru();
  test_attention_layout();
  test_tuners();
  CHECK_EQ_INT(0, (int)live("module"));
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
  return TEST_MAIN_END();
}
