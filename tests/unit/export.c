/* unit.export — `tilec export`'s generator (autotune/export.c) without a GPU.
 *
 * A database is written with the at_db API: matmul winners at three buckets (decode M=16,
 * prefill M=4096, and f16), attention at two (D=128 causal, D=64), each beside slower and
 * faster-but-wrong rows, with stand-in cubins. The generated tuned.c must compile with
 * cc -std=c99 -Wall -Wextra -Werror -pedantic; tests/export/driver.c runs its select, pack and
 * launch (through tests/export/cuda_stub.c) and every answer is compared with the oracle:
 * select with at_bucket_key (exact) and at_bucket_distance (nearest compatible bucket), the
 * packed bytes and grid with rt_params_pack for the same problem, the launched image with the
 * stored blob. Then the refusals: a stale ir_hash, a damaged cubin, an unknown kernel.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autotune/bucket.h"
#include "autotune/compile.h"
#include "autotune/db.h"
#include "autotune/export.h"
#include "kernels/builtin_sources.h"
#include "kernels/problem.h"
#include "runtime/rt.h"
#include "tests/unit/check.h"
#include "tests/unit/db_test.h"
#include "tests/unit/files.h"

static const char *DEV = "NVIDIA H200|sm_90|132sm|140GiB";
static const char *TC = "tilec test|llvm 19|nvjitlink 13.0|driver 13.0";

static char dir[256], dbpath[300];

/* A kernel given as a file (--kernel-file): a pointer, scalars of every ABI width, a const
 * parameter and a two-dimensional grid over cdiv, min, max and %. */
static const char *SCAL =
    "kernel scal\ntunables {\n  BLOCK = 128 in [64, 128]\n}\n"
    "args (%X: tensor<f32>[N], %P: ptr<f32>, n2: i32, h: f16, flag: i1, s: f64, c: const i32 = "
    "3)\ngrid (cdiv(N, BLOCK) * c, max(n2, 1) - min(n2, 0) % 7)\nbuckets {\n  N = pow2\n}\n{\n}\n";

static ir_kernel *builtin(const char *name) {
  if (!strcmp(name, "scal")) {
    ir_kernel *k = NULL;
    ir_diag d;
    REQUIRE(ir_parse(SCAL, strlen(SCAL), "scal.tile", &k, &d) == IR_OK);
    return k;
  }
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, name)) {
      ir_kernel *k = NULL;
      ir_diag d;
      REQUIRE(ir_parse(s->text, strlen(s->text), name, &k, &d) == IR_OK);
      REQUIRE(ir_verify(k, &d) == IR_OK);
      return k;
    }
  REQUIRE(!"no such built-in");
  return NULL;
}

/* The shape keys of a problem and its dtype, "M=16,N=4096,K=4096" + "bf16". */
typedef struct problem {
  const char *kernel, *shape, *dtype;
} problem;

static char *bucket_of(const problem *p) {
  ir_kernel *k = builtin(p->kernel);
  kn_shape sh;
  char err[256];
  REQUIRE(kn_shape_parse(p->shape, &sh, err, sizeof err) == 0);
  char *b = NULL;
  at_err e;
  REQUIRE(at_bucket_key(k, &sh, p->dtype, &b, &e) == AT_OK);
  ir_kernel_free(k);
  return b;
}

/* A stand-in cubin: an ELF magic, then bytes that depend on the config (every value 0..255). */
static size_t fake_cubin(const char *config, unsigned char *out, size_t cap) {
  size_t n = 300 + strlen(config) * 7 % 200;
  REQUIRE(n <= cap);
  memcpy(out,
         "\x7f"
         "ELF",
         4);
  unsigned h = 2166136261u;
  for (const char *c = config; *c; c++)
    h = (h ^ (unsigned char)*c) * 16777619u;
  for (size_t i = 4; i < n; i++) {
    h = h * 1103515245u + 12345u;
    out[i] = (unsigned char)(h >> 16);
  }
  return n;
}

/* The text a row's compile key covers (at_code_config), built as the tuner builds it: the items
 * of the problem it measured (prob: "M=..,dtype=bf16"; built-in kernels) and the row's config. */
static void code_of(const char *kernel, const char *prob, const char *config, char out[1024]) {
  ir_kernel *k = builtin(kernel);
  ir_config cfg = {0};
  char text[256], err[256];
  const char *dtype = NULL;
  snprintf(text, sizeof text, "%s", prob);
  char *dt = strstr(text, "dtype=");
  if (dt) {
    dtype = dt + 6;
    dt[dt > text ? -1 : 0] = 0;
  }
  if (kn_is_builtin(kernel)) {
    kn_shape shape;
    REQUIRE(!kn_shape_parse(text, &shape, err, sizeof err));
    REQUIRE(!kn_problem_config(kernel, &shape, dtype, &cfg, err, sizeof err));
  }
  ir_diag d;
  REQUIRE(!ir_config_parse(&cfg, config, &d));
  REQUIRE(!at_code_config(k, &cfg, out, 1024, NULL));
  ir_kernel_free(k);
}

/* How a row's code was stored: the generic code; the aligned variant with the generic code of
 * the same config beside it (as `tilec tune` stores a winner); the aligned variant alone. */
typedef enum { V_GENERIC, V_ALIGNED_TWIN, V_ALIGNED_ONLY } variant;

static void put_variant_row(at_db *db, const problem *p, const char *ir_hash, const char *config,
                            at_run st, double ms, int threads, int smem, variant v) {
  char *bucket = bucket_of(p);
  at_key key = {DEV, TC, p->kernel, ir_hash, bucket};
  at_result r = db_test_row(config, st, ms, 0);
  char prob[256];
  snprintf(prob, sizeof prob, "%s%s%s", p->shape, p->dtype ? ",dtype=" : "",
           p->dtype ? p->dtype : "");
  r.problem = prob;
  char ck[65], gk[65], meta[256], code[1024];
  unsigned char cubin[600];
  at_err e = {0};
  code_of(p->kernel, prob, config, code);
  REQUIRE(at_compile_key_variant(ir_hash, code, "sm_90a", TC, v ? "aligned" : NULL, ck, &e) ==
          AT_OK);
  size_t n = fake_cubin(config, cubin, sizeof cubin);
  snprintf(meta, sizeof meta,
           "{\"entry\": \"%s_%d\", \"threads\": %d, \"smem_bytes\": %d, \"regs\": 128, "
           "\"spills\": 0, \"arch\": \"sm_90a\"}",
           p->kernel, (int)n, threads, smem);
  r.compile_key = ck;
  r.variant = v ? "aligned" : "";
  REQUIRE(at_db_begin(db, &e) == AT_OK);
  REQUIRE(at_db_put_blob(db, ck, cubin, n, meta, &e) == AT_OK);
  REQUIRE(at_db_put(db, &key, &r, &e) == AT_OK);
  if (v == V_ALIGNED_TWIN) { /* its generic code: other bytes, entry "generic_SIZE" */
    char gconfig[300];
    snprintf(gconfig, sizeof gconfig, "%s|generic", config);
    n = fake_cubin(gconfig, cubin, sizeof cubin);
    snprintf(meta, sizeof meta,
             "{\"entry\": \"generic_%d\", \"threads\": %d, \"smem_bytes\": %d, \"arch\": "
             "\"sm_90a\"}",
             (int)n, threads, smem + 16);
    REQUIRE(at_compile_key(ir_hash, code, "sm_90a", TC, gk, &e) == AT_OK);
    REQUIRE(at_db_put_blob(db, gk, cubin, n, meta, &e) == AT_OK);
  }
  REQUIRE(at_db_commit(db, &e) == AT_OK);
  free(bucket);
}

static void put_row(at_db *db, const problem *p, const char *ir_hash, const char *config, at_run st,
                    double ms, int threads, int smem) {
  put_variant_row(db, p, ir_hash, config, st, ms, threads, smem, V_GENERIC);
}

static const problem MM_DECODE = {"matmul", "M=16,N=4096,K=4096", "bf16"};
static const problem MM_PREFILL = {"matmul", "M=4096,N=4096,K=4096", "bf16"};
static const problem MM_F16 = {"matmul", "M=4096,N=4096,K=4096", "f16"};
static const problem AT_128 = {"attention", "B=1,H=32,HKV=8,S=4096,SKV=4096,D=128,causal=1",
                               "bf16"};
static const problem SC_1 = {"scal", "N=1000,n2=5", NULL};
static const problem SC_2 = {"scal", "N=100000,n2=-4", NULL};
static const problem AT_64 = {"attention", "B=4,H=16,HKV=16,S=1024,SKV=1024,D=64,causal=0", "bf16"};

static void make_db(const char *mm_hash, const char *at_hash, const char *sc_hash) {
  at_db *db = NULL;
  at_err e;
  REQUIRE(at_db_open(dbpath, 0, &db, &e) == AT_OK);
  /* decode: the winner is BM=16; a faster wrong row never wins */
  put_row(db, &MM_DECODE, mm_hash, "BM=16,BN=64,BK=64,WARPS=4,STAGES=4,GROUP_M=1", AT_RUN_OK, 0.05,
          128, 40960);
  put_row(db, &MM_DECODE, mm_hash, "BM=64,BN=64,BK=64,WARPS=4,STAGES=3,GROUP_M=8", AT_RUN_OK, 0.08,
          128, 49152);
  put_row(db, &MM_DECODE, mm_hash, "BM=16,BN=16,BK=64,WARPS=1,STAGES=2,GROUP_M=1", AT_RUN_WRONG,
          0.01, 32, 8192);
  put_variant_row(db, &MM_PREFILL, mm_hash, "BM=128,BN=256,BK=32,WARPS=8,STAGES=3,GROUP_M=8",
                  AT_RUN_OK, 1.2, 256, 147456, V_ALIGNED_TWIN);
  put_row(db, &MM_PREFILL, mm_hash, "BM=128,BN=128,BK=32,WARPS=4,STAGES=3,GROUP_M=8", AT_RUN_OK,
          1.5, 128, 98304);
  put_variant_row(db, &MM_F16, mm_hash, "BM=128,BN=128,BK=64,WARPS=8,STAGES=2,GROUP_M=4", AT_RUN_OK,
                  1.4, 256, 131072, V_ALIGNED_ONLY);
  put_row(db, &AT_128, at_hash, "BM=128,BN=64,WARPS=8,STAGES=2", AT_RUN_OK, 2.0, 256, 131072);
  put_row(db, &AT_128, at_hash, "BM=64,BN=64,WARPS=4,STAGES=2", AT_RUN_OK, 2.5, 128, 98304);
  put_row(db, &AT_64, at_hash, "BM=64,BN=32,WARPS=4,STAGES=1", AT_RUN_OK, 0.3, 128, 16384);
  put_row(db, &SC_1, sc_hash, "BLOCK=64", AT_RUN_OK, 0.01, 64, 0);
  put_row(db, &SC_2, sc_hash, "BLOCK=128", AT_RUN_OK, 0.02, 128, 0);
  /* another device's rows are not exported */
  at_key other = {"NVIDIA H100|sm_90|132sm|79GiB", TC, "matmul", mm_hash, "M=pow2:16"};
  at_result r = db_test_row("BM=32", AT_RUN_OK, 0.01, 0);
  REQUIRE(at_db_put(db, &other, &r, &e) == AT_OK);
  at_db_close(db);
}

static char *kernel_hash(const char *name) {
  ir_kernel *k = builtin(name);
  char h[65];
  at_err e;
  REQUIRE(at_kernel_hash(k, h, &e) == AT_OK);
  ir_kernel_free(k);
  return strdup(h);
}

static at_status run_export(const char *prefix, at_buf *c, at_buf *h, at_err *e) {
  at_db *db = NULL;
  REQUIRE(at_db_open(dbpath, AT_DB_READONLY, &db, e) == AT_OK);
  at_export_source src = {"scal", SCAL, "scal.tile"};
  at_export_opts o = {
      .device = DEV, .prefix = prefix, .header = "tuned.h", .sources = &src, .nsources = 1};
  at_export_stats st;
  at_status s = at_export(db, &o, c, h, &st, e);
  if (!s) {
    CHECK_EQ_INT(3, st.kernels);
    CHECK_EQ_INT(7, st.entries);
  }
  at_db_close(db);
  return s;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  REQUIRE(f);
  fputs(text, f);
  fclose(f);
}

/* ---- the oracle ---------------------------------------------------------------------------- */

/* The entries in export order (kernel, bucket), with their rows. */
static at_rows winners;

static int expected_select(const problem *p, bool exact_only, const char *const *fixing,
                           int nfixing) {
  char *b = bucket_of(p);
  int best = -1;
  double best_d = INFINITY;
  for (int i = 0; i < winners.n; i++) {
    const at_result *r = &winners.r[i];
    if (strcmp(r->key.kernel, p->kernel))
      continue;
    if (!strcmp(r->key.bucket, b)) {
      free(b);
      return i;
    }
    bool same = true; /* code-fixing keys equal */
    for (int f = 0; f < nfixing; f++) {
      char want[64];
      snprintf(want, sizeof want, "%s=", fixing[f]);
      const char *x = strstr(b, want), *y = strstr(r->key.bucket, want);
      size_t lx = x ? strcspn(x, ",") : 0, ly = y ? strcspn(y, ",") : 0;
      same &= x && y && lx == ly && !strncmp(x, y, lx);
    }
    double d = at_bucket_distance(b, r->key.bucket);
    if (same && d < best_d) {
      best_d = d;
      best = i;
    }
  }
  free(b);
  return exact_only ? -1 : best;
}

static void hex(char *out, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", p[i]);
}

/* The pack line the driver must print for entry i and problem p (pointers as the driver's). */
static void expected_pack(int i, const problem *p, char *out, size_t cap, char *params_hex) {
  const at_result *r = &winners.r[i];
  ir_kernel *k = builtin(p->kernel);
  ir_config *cfg = calloc(1, sizeof *cfg);
  ir_diag d;
  REQUIRE(ir_config_parse(cfg, r->config, &d) == IR_OK);
  kn_shape sh;
  char err[256];
  REQUIRE(kn_shape_parse(p->shape, &sh, err, sizeof err) == 0);
  REQUIRE(!kn_is_builtin(p->kernel) ||
          kn_problem_config(p->kernel, &sh, p->dtype, cfg, err, sizeof err) == 0);
  ir_kernel *spec = NULL;
  REQUIRE(ir_specialize(k, cfg, &spec, &d) == IR_OK);
  rt_argval a[IR_MAX_ARGS];
  memset(a, 0, sizeof a);
  const char *names[] = {"M", "N", "K", "B", "H", "HKV", "S", "SKV", "D", "n2", "N"};
  int64_t val[11] = {0};
  for (int j = 0; j < sh.n; j++)
    for (int n = 0; n < 11; n++)
      if (!strcmp(sh.kv[j].key, names[n]))
        val[n] = atoll(sh.kv[j].val);
  uint64_t base = 0x7f0000100000ull;
  int t = 0;
  for (int ai = 0; ai < spec->nargs; ai++) {
    a[ai].kind = spec->args[ai].kind;
    if (a[ai].kind == ARG_SCALAR) {
      const ir_sym *sy = &spec->syms[spec->args[ai].sym];
      a[ai].scalar = sy->kind == SYM_CONST ? sy->def : (ir_num){.isf = true, .f = 0.125};
      if (!strcmp(sy->name, "n2")) /* scal's scalars: the values the driver passes */
        a[ai].scalar = (ir_num){.i = val[9]};
      else if (!strcmp(sy->name, "h"))
        a[ai].scalar = (ir_num){.isf = true, .f = 1.5};
      else if (!strcmp(sy->name, "flag"))
        a[ai].scalar = (ir_num){.i = 1};
      else if (!strcmp(sy->name, "s"))
        a[ai].scalar = (ir_num){.isf = true, .f = -0.25};
      continue;
    }
    if (a[ai].kind == ARG_PTR) {
      a[ai].dptr = 0x7f0000600000ull;
      continue;
    }
    int64_t shp[4];
    int rank = 0;
    if (!strcmp(p->kernel, "scal")) {
      rank = 1;
      shp[0] = val[10];
    } else if (!strcmp(p->kernel, "matmul")) {
      rank = 2;
      int64_t M = val[0], N = val[1], K = val[2];
      int64_t s3[3][2] = {{M, K}, {K, N}, {M, N}};
      memcpy(shp, s3[t], sizeof s3[t]);
    } else {
      int64_t B = val[3], H = val[4], HKV = val[5], S = val[6], SKV = val[7], D = val[8];
      int64_t s5[5][4] = {
          {B, H, S, D}, {B, HKV, SKV, D}, {B, HKV, SKV, D}, {B, H, S, D}, {B, H, S, 0}};
      rank = t == 4 ? 3 : 4;
      memcpy(shp, s5[t], sizeof s5[t]);
    }
    a[ai].dptr = base + 0x100000ull * (uint64_t)t;
    a[ai].rank = rank;
    int64_t s = 1;
    for (int dd = rank - 1; dd >= 0; dd--) {
      a[ai].shape[dd] = shp[dd];
      a[ai].stride[dd] = s;
      s *= shp[dd];
    }
    t++;
  }
  rt_params *pp = calloc(1, sizeof *pp);
  rt_err re;
  rt_status rs = rt_params_pack(spec, a, spec->nargs, pp, &re);
  if (rs) {
    fprintf(stderr, "rt_params_pack: %s\n", re.msg);
    REQUIRE(!"rt_params_pack failed");
  }
  size_t n = (size_t)snprintf(out, cap, "rc=0 n=%d size=%zu grid=%u,%u,%u", pp->count, pp->size,
                              pp->grid[0], pp->grid[1], pp->grid[2]);
  params_hex[0] = 0;
  for (int j = 0; j < pp->count; j++) {
    char h[20];
    hex(h, pp->buf + pp->offset[j], pp->psize[j]);
    n += (size_t)snprintf(out + n, cap - n, " %u:%u:%s", pp->offset[j], pp->psize[j], h);
    strcat(params_hex, h);
  }
  free(pp);
  free(cfg);
  ir_kernel_free(spec);
  ir_kernel_free(k);
}

/* ---- running the generated code -------------------------------------------------------------- */

static char *run_driver(const char *commands, const char *env) {
  char path[400], cmd[1200];
  snprintf(path, sizeof path, "%s/cmds.txt", dir);
  write_text(path, commands);
  snprintf(cmd, sizeof cmd, "cd %s && %s ./driver < cmds.txt > out.txt 2>&1", dir, env);
  CHECK_EQ_INT(0, system(cmd));
  snprintf(path, sizeof path, "%s/out.txt", dir);
  return slurp(path);
}

/* The n-th line of text (0-based) in out. */
static void line_of(const char *text, int n, char *out, size_t cap) {
  const char *p = text;
  for (int i = 0; i < n && p; i++)
    p = strchr(p, '\n'), p = p ? p + 1 : NULL;
  size_t len = p ? strcspn(p, "\n") : 0;
  snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), p ? p : "");
}

/* Runs a compile command; on failure prints the compiler's messages (dir/NAME). */
static bool compiles(const char *cmd, const char *name) {
  int rc = system(cmd);
  CHECK_EQ_INT(0, rc);
  if (rc) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *t = slurp(p);
    fprintf(stderr, "%s\n", t ? t : "");
    free(t);
  }
  return rc == 0;
}

/* The image a launch of entry took, from a driver's launch line: "row" (the row's blob),
 * "generic" (the blob of the same config's generic compile key) or "none" (not launched);
 * compared byte for byte through their hashes. */
static const char *launched_image(int entry, const char *line) {
  if (strstr(line, "launched=0"))
    return "none";
  const at_result *r = &winners.r[entry];
  at_db *db = NULL;
  at_err e;
  char gk[65], want[64], code[1024];
  REQUIRE(at_db_open(dbpath, AT_DB_READONLY, &db, &e) == AT_OK);
  code_of(r->key.kernel, r->problem, r->config, code);
  REQUIRE(at_compile_key(r->key.ir_hash, code, "sm_90a", TC, gk, &e) == AT_OK);
  const char *keys[2] = {r->compile_key, gk}, *names[2] = {"row", "generic"}, *res = "?";
  for (int i = 0; i < 2 && !strcmp(res, "?"); i++) { /* a generic row's key is gk itself */
    void *blob = NULL;
    size_t n = 0;
    if (at_db_get_blob(db, keys[i], &blob, &n, NULL, &e) != AT_OK)
      continue;
    unsigned long long h = 1469598103934665603ull;
    for (size_t j = 0; j < n; j++)
      h = (h ^ ((unsigned char *)blob)[j]) * 1099511628211ull;
    snprintf(want, sizeof want, "image=%016llx", h);
    if (strstr(line, want))
      res = names[i];
    free(blob);
  }
  at_db_close(db);
  return res;
}

/* Entries of the aligned variant: a launch whose tensors keep the promise takes the aligned
 * cubin; an A 2 bytes off, or rows of 4004 bf16 (8008 bytes), the generic one when the entry
 * has it and CUDA_ERROR_INVALID_VALUE when it has not; a generic entry takes anything. */
static void test_variants(int prefill, int f16, int decode) {
  char cmds[1024];
  snprintf(cmds, sizeof cmds,
           "info %d\ninfo %d\ninfo %d\n"
           "launch matmul %d 4096 4096 4096\nlaunch matmul %d 4096 4096 4096 2\n"
           "launch matmul %d 4096 4096 4004\n"
           "launch matmul %d 4096 4096 4096\nlaunch matmul %d 4096 4096 4096 2\n"
           "launch matmul %d 16 4096 4096 2\n",
           prefill, f16, decode, prefill, prefill, prefill, f16, f16, decode);
  char *out = run_driver(cmds, "");
  REQUIRE(out);
  char line[4096];
  line_of(out, 0, line, sizeof line);
  CHECK(!strncmp(line, "info aligned=1 generic=", 23) && atoi(line + 23) > 0);
  line_of(out, 1, line, sizeof line);
  CHECK_EQ_STR("info aligned=1 generic=0", line);
  line_of(out, 2, line, sizeof line);
  CHECK_EQ_STR("info aligned=0 generic=0", line);
  static const struct {
    int which; /* 0 prefill, 1 f16, 2 decode */
    const char *image, *rc;
  } want[] = {{0, "row", "launch rc=0 "},
              {0, "generic", "launch rc=0 "},
              {0, "generic", "launch rc=0 "},
              {1, "row", "launch rc=0 "},
              {1, "none", "launch rc=1 launched=0"},
              {2, "row", "launch rc=0 "}};
  int entry_of[3] = {prefill, f16, decode};
  for (int i = 0; i < 6; i++) {
    line_of(out, 3 + 2 * i + 1, line, sizeof line); /* pack line, then launch line */
    CHECK_CONTAINS(line, want[i].rc);
    CHECK_EQ_STR(want[i].image, launched_image(entry_of[want[i].which], line));
  }
  CHECK_CONTAINS(out, "name=generic_"); /* the generic cubin's own entry point */
  free(out);
}

static void test_generated(const char *cc, const char *cuda_inc) {
  char cmd[2000];
  /* the generated file on its own: C99, every warning an error */
  snprintf(cmd, sizeof cmd,
           "cd %s && %s -std=c99 -Wall -Wextra -Werror -pedantic -Wshadow -Wstrict-prototypes "
           "-Wmissing-prototypes -I%s -c tuned.c -o tuned.o 2> cc1.txt",
           dir, cc, cuda_inc);
  if (!compiles(cmd, "cc1.txt"))
    return;
  snprintf(cmd, sizeof cmd,
           "cd %s && %s -std=c11 -Wall -Wextra -Werror -I. -I%s -isystem %s "
           "%s/tests/export/driver.c %s/tests/export/cuda_stub.c tuned.o -o driver 2> cc2.txt",
           dir, cc, TILEC_SOURCE_DIR, cuda_inc, TILEC_SOURCE_DIR, TILEC_SOURCE_DIR);
  if (!compiles(cmd, "cc2.txt"))
    return;

  /* select: every recorded problem, and unseen shapes of the same and of other buckets */
  static const problem sel[] = {
      {"matmul", "M=16,N=4096,K=4096", "bf16"},   /* recorded: decode */
      {"matmul", "M=4096,N=4096,K=4096", "bf16"}, /* recorded: prefill */
      {"matmul", "M=4096,N=4096,K=4096", "f16"},  /* recorded: f16 */
      {"matmul", "M=9,N=4000,K=3900", "bf16"},    /* unseen, same bucket as decode */
      {"matmul", "M=3000,N=3841,K=4096", "bf16"}, /* unseen, same bucket as prefill */
      {"matmul", "M=64,N=4096,K=4096", "bf16"},   /* no bucket: nearest is decode */
      {"matmul", "M=1024,N=4096,K=4096", "bf16"}, /* no bucket: nearest is prefill */
      {"matmul", "M=64,N=4096,K=4096", "f16"},    /* nearest with the same dtype only */
      {"matmul", "M=64,N=4096,K=4096", "f32"},    /* no entry of that dtype: -1 */
      {"matmul", "M=0,N=4096,K=4096", "bf16"},    /* raw value bucket */
      {"attention", "B=1,H=32,HKV=8,S=4096,SKV=4096,D=128,causal=1", "bf16"},
      {"attention", "B=4,H=16,HKV=16,S=1024,SKV=1024,D=64,causal=0", "bf16"},
      {"attention", "B=1,H=32,HKV=8,S=3000,SKV=2049,D=128,causal=1", "bf16"}, /* same bucket */
      {"attention", "B=2,H=32,HKV=8,S=512,SKV=512,D=128,causal=1", "bf16"},   /* nearest */
      {"attention", "B=1,H=32,HKV=8,S=4096,SKV=4096,D=128,causal=0", "bf16"}, /* causal differs */
      {"attention", "B=1,H=32,HKV=8,S=4096,SKV=4096,D=64,causal=0", "bf16"},  /* nearest: D=64 */
  };
  static const char *const mm_fix[] = {"dtype"};
  static const char *const at_fix[] = {"dtype", "D", "causal"};
  int nsel = (int)(sizeof sel / sizeof *sel);
  char cmds[8192] = "", *c = cmds;
  for (int i = 0; i < nsel; i++) {
    kn_shape sh;
    char err[128];
    REQUIRE(kn_shape_parse(sel[i].shape, &sh, err, sizeof err) == 0);
    c += sprintf(c, "sel %s", sel[i].kernel);
    static const char *const mk[] = {"M", "N", "K"};
    static const char *const ak[] = {"B", "H", "HKV", "S", "SKV", "D", "causal"};
    bool mm = !strcmp(sel[i].kernel, "matmul");
    for (int k = 0; k < (mm ? 3 : 7); k++)
      for (int j = 0; j < sh.n; j++)
        if (!strcmp(sh.kv[j].key, mm ? mk[k] : ak[k]))
          c += sprintf(c, " %s", sh.kv[j].val);
    c += sprintf(c, " %s\n", sel[i].dtype);
  }
  char *out = run_driver(cmds, "");
  REQUIRE(out);
  int nonexact = 0, none = 0;
  for (int i = 0; i < nsel; i++) {
    bool mm = !strcmp(sel[i].kernel, "matmul");
    int ex = expected_select(&sel[i], true, mm ? mm_fix : at_fix, mm ? 1 : 3);
    int ne = expected_select(&sel[i], false, mm ? mm_fix : at_fix, mm ? 1 : 3);
    if (ex < 0)
      ex = -1;
    char want[64], got[64];
    snprintf(want, sizeof want, "%d %d", ex, ne);
    line_of(out, i, got, sizeof got);
    if (strcmp(want, got))
      fprintf(stderr, "select %s %s %s\n", sel[i].kernel, sel[i].shape, sel[i].dtype);
    CHECK_EQ_STR(want, got);
    nonexact += ex < 0 && ne >= 0;
    none += ne < 0;
  }
  CHECK(nonexact >= 3); /* the fallback was exercised */
  CHECK(none >= 1);     /* and the refusal of another dtype */
  /* known answers, independent of the oracle: decode and prefill differ, entries sorted */
  CHECK_EQ_STR("K=multiple(256):4096,M=pow2:16,N=multiple(256):4096,dtype=bf16",
               winners.r[2].key.bucket);
  free(out);

  /* pack and launch: every entry with a problem of its bucket and one outside */
  const problem packs[] = {MM_DECODE, MM_PREFILL, MM_F16,
                           AT_128,    AT_64,      {"matmul", "M=100,N=200,K=300", "bf16"},
                           SC_1,      SC_2};
  static const int pack_entry[] = {-1, -1, -1, -1, -1, -2, -1, -1}; /* -2: the decode entry */
  int npack = (int)(sizeof packs / sizeof *packs);
  c = cmds;
  int entries[10];
  for (int i = 0; i < npack; i++) {
    entries[i] = pack_entry[i] == -2 ? entries[0] : expected_select(&packs[i], false, NULL, 0);
    kn_shape sh;
    char err[128];
    REQUIRE(kn_shape_parse(packs[i].shape, &sh, err, sizeof err) == 0);
    bool mm = !strcmp(packs[i].kernel, "matmul");
    c += sprintf(c, "launch %s %d", packs[i].kernel, entries[i]);
    if (!strcmp(packs[i].kernel, "scal")) { /* N n2 */
      c += sprintf(c, " %s %s\n", sh.kv[0].val, sh.kv[1].val);
      continue;
    }
    static const char *const mk[] = {"M", "N", "K"};
    static const char *const ak[] = {"B", "H", "HKV", "S", "SKV", "D"};
    for (int k = 0; k < (mm ? 3 : 6); k++)
      for (int j = 0; j < sh.n; j++)
        if (!strcmp(sh.kv[j].key, mm ? mk[k] : ak[k]))
          c += sprintf(c, " %s", sh.kv[j].val);
    c += sprintf(c, "%s\n", mm ? "" : " 0.125");
  }
  c += sprintf(c, "launch matmul %d 16 4096 4096\n", entries[0]); /* loaded once */
  c += sprintf(c, "pack matmul %d 16 4096 4096\n", entries[3]);   /* an attention entry */
  c += sprintf(c, "pack matmul %d 16 4096 -1\n", entries[0]);     /* a negative dim */
  c += sprintf(c, "pack attention %d 1 32 8 4096 4096 64 0.125\n", entries[3]); /* D=64 on D=128 */
  c += sprintf(c, "launch matmul %d 0 4096 4096\n", entries[0]); /* empty: nothing launched */
  c += sprintf(c, "check 0\n");
  out = run_driver(cmds, "");
  REQUIRE(out);
  at_db *db = NULL;
  at_err e;
  REQUIRE(at_db_open(dbpath, AT_DB_READONLY, &db, &e) == AT_OK);
  for (int i = 0; i < npack; i++) {
    char want[4096], params[4096], got[4096], lgot[4096];
    expected_pack(entries[i], &packs[i], want, sizeof want, params);
    line_of(out, 2 * i, got, sizeof got);
    CHECK_EQ_STR(want, got);
    line_of(out, 2 * i + 1, lgot, sizeof lgot);
    const at_result *r = &winners.r[entries[i]];
    void *blob = NULL;
    size_t n = 0;
    char *meta = NULL;
    REQUIRE(at_db_get_blob(db, r->compile_key, &blob, &n, &meta, &e) == AT_OK);
    unsigned long long h = 1469598103934665603ull;
    for (size_t j = 0; j < n; j++)
      h = (h ^ ((unsigned char *)blob)[j]) * 1099511628211ull;
    int threads = 0, smem = 0;
    const char *te = strstr(meta, "\"threads\": "), *se = strstr(meta, "\"smem_bytes\": ");
    REQUIRE(te && se);
    threads = atoi(te + 11);
    smem = atoi(se + 14);
    const char *grid = strstr(want, "grid=") + 5;
    char lwant[4096];
    snprintf(lwant, sizeof lwant,
             "launch rc=0 grid=%.*s block=%d,1,1 smem=%d name=%s_%zu image=%016llx loads=%d "
             "params=%s",
             (int)strcspn(grid, " "), grid, threads, smem, r->key.kernel, n, h,
             i < 5    ? i + 1
             : i == 5 ? 5 /* entry 0 was loaded by the first launch */
                      : i,
             params);
    CHECK_EQ_STR(lwant, lgot);
    free(blob);
    free(meta);
  }
  at_db_close(db);
  char got[4096];
  line_of(out, 2 * npack + 1, got, sizeof got);
  CHECK_CONTAINS(got, "loads=7 ");
  line_of(out, 2 * npack + 2, got, sizeof got);
  CHECK_EQ_STR("rc=1", got); /* CUDA_ERROR_INVALID_VALUE */
  line_of(out, 2 * npack + 3, got, sizeof got);
  CHECK_EQ_STR("rc=1", got);
  line_of(out, 2 * npack + 4, got, sizeof got);
  CHECK_EQ_STR("rc=1", got);
  line_of(out, 2 * npack + 6, got, sizeof got);
  CHECK_EQ_STR("launch rc=0 launched=0", got);
  line_of(out, 2 * npack + 7, got, sizeof got);
  CHECK_EQ_STR("check rc=0", got);
  line_of(out, 2 * npack + 8, got, sizeof got);
  CHECK_EQ_STR("unload rc=0 live=0", got);
  free(out);

  /* the device check: another SM count is refused unless allowed; a failed load is reported */
  out = run_driver("check 0\ncheck 1\n", "STUB_SMS=114");
  REQUIRE(out);
  CHECK_CONTAINS(out, "check rc=101\ncheck rc=0\n"); /* CUDA_ERROR_INVALID_DEVICE */
  free(out);
  char one[64];
  snprintf(one, sizeof one, "launch matmul %d 16 4096 4096\n", entries[0]);
  out = run_driver(one, "STUB_FAIL=load");
  REQUIRE(out);
  CHECK_CONTAINS(out, "launch rc=200 launched=0"); /* CUDA_ERROR_INVALID_IMAGE */
  free(out);
  test_variants(entries[1], entries[2], entries[0]);
}

static void raw_sql(const char *sql) {
  sqlite3 *h;
  REQUIRE(sqlite3_open(dbpath, &h) == SQLITE_OK);
  REQUIRE(sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(h);
}

static void test_refusals(const char *mm_hash, const char *at_hash) {
  at_buf c = {0}, h = {0};
  at_err e = {0};
  at_db *db = NULL;
  REQUIRE(at_db_open(dbpath, AT_DB_READONLY, &db, &e) == AT_OK);
  /* bad options */
  at_export_opts o = {.device = DEV, .prefix = "not an identifier"};
  CHECK_EQ_INT(AT_ERR_ARG, at_export(db, &o, &c, &h, NULL, &e));
  CHECK_CONTAINS(e.msg, "not usable as a C name");
  o = (at_export_opts){.device = "NVIDIA B200|sm_100|148sm|178GiB"};
  CHECK_EQ_INT(AT_ERR_ARG, at_export(db, &o, &c, &h, NULL, &e));
  CHECK_CONTAINS(e.msg, "no tuned winner for device");
  const char *ks[] = {"bsmatmul"};
  o = (at_export_opts){.device = DEV, .kernels = ks, .nkernels = 1};
  CHECK_EQ_INT(AT_ERR_ARG, at_export(db, &o, &c, &h, NULL, &e));
  CHECK_CONTAINS(e.msg, "kernel 'bsmatmul' has no tuned winner");
  /* --kernels selects; a given text whose hash differs from the rows' is refused */
  const char *only[] = {"matmul"};
  at_export_source src = {"matmul", "kernel matmul\nargs (%A: tensor<f32>[M])\ngrid (M)\n{\n}\n",
                          "other.tile"};
  o = (at_export_opts){
      .device = DEV, .kernels = only, .nkernels = 1, .sources = &src, .nsources = 1};
  CHECK_EQ_INT(AT_ERR_ARG, at_export(db, &o, &c, &h, NULL, &e));
  CHECK_CONTAINS(e.msg, "ir_hash");
  CHECK_CONTAINS(e.msg, "--kernel-file matmul=PATH");
  at_export_stats st;
  at_buf_free(&c), at_buf_free(&h);
  c = (at_buf){0}, h = (at_buf){0};
  o.sources = NULL, o.nsources = 0;
  CHECK_EQ_INT(AT_OK, at_export(db, &o, &c, &h, &st, &e));
  CHECK_EQ_INT(3, st.entries);
  CHECK(!strstr(h.p ? h.p : "", "attention"));
  at_db_close(db);
  at_buf_free(&c), at_buf_free(&h);

  /* a row of another kernel text (stale ir_hash) beside the current ones */
  REQUIRE(at_db_open(dbpath, 0, &db, &e) == AT_OK);
  at_key stale = {DEV, TC, "attention", "0123abcd", "B=pow2:1,D=128"};
  at_result r = db_test_row("BM=64", AT_RUN_OK, 1.0, 0);
  REQUIRE(at_db_put(db, &stale, &r, &e) == AT_OK);
  c = (at_buf){0}, h = (at_buf){0};
  o = (at_export_opts){.device = DEV};
  CHECK_EQ_INT(AT_ERR_ARG, at_export(db, &o, &c, &h, NULL, &e));
  CHECK_CONTAINS(e.msg, "ir_hash 0123abcd");
  at_buf_free(&c), at_buf_free(&h);
  int removed = 0;
  REQUIRE(at_db_forget(db, &stale, &removed, &e) == AT_OK);
  at_db_close(db);

  /* a damaged cubin is never exported */
  char sql[512];
  snprintf(sql, sizeof sql,
           "UPDATE blob SET data = zeroblob(size) WHERE compile_key = (SELECT compile_key FROM "
           "result WHERE kernel = 'attention' AND ir_hash = '%s' AND status = 'ok' ORDER BY "
           "median_ms LIMIT 1);",
           at_hash);
  raw_sql(sql);
  REQUIRE(at_db_open(dbpath, AT_DB_READONLY, &db, &e) == AT_OK);
  c = (at_buf){0}, h = (at_buf){0};
  CHECK_EQ_INT(AT_MISS, at_export(db, &o, &c, &h, NULL, &e));
  CHECK_CONTAINS(e.msg, "the cubin");
  at_buf_free(&c), at_buf_free(&h);
  at_db_close(db);

  /* a row naming another problem's code (what compile keys over the tunables alone allowed:
   * D=64's winner with the config of a D=128 row and that row's cubin) is never exported */
  snprintf(sql, sizeof sql,
           "UPDATE result SET config = 'BM=64,BN=64,WARPS=4,STAGES=2', compile_key = (SELECT "
           "compile_key FROM result WHERE kernel = 'attention' AND bucket LIKE '%%D=128%%' AND "
           "config = 'BM=64,BN=64,WARPS=4,STAGES=2') WHERE kernel = 'attention' AND bucket LIKE "
           "'%%D=64%%' AND ir_hash = '%s';",
           at_hash);
  raw_sql(sql);
  REQUIRE(at_db_open(dbpath, AT_DB_READONLY, &db, &e) == AT_OK);
  c = (at_buf){0}, h = (at_buf){0};
  CHECK_EQ_INT(AT_ERR_CORRUPT, at_export(db, &o, &c, &h, NULL, &e));
  CHECK_CONTAINS(e.msg, "not the code of this problem");
  at_buf_free(&c), at_buf_free(&h);
  at_db_close(db);
  (void)mm_hash;
}

int main(void) {
  const char *cuda_inc = getenv("TILEC_CUDA_INCLUDE");
#ifdef TILEC_CUDA_INCLUDE_DIR
  if (!cuda_inc)
    cuda_inc = TILEC_CUDA_INCLUDE_DIR;
#endif
  const char *cc = getenv("CC") ? getenv("CC") : "cc";
  db_test_dir(dir);
  snprintf(dbpath, sizeof dbpath, "%s/t.db", dir);
  char *mm = kernel_hash("matmul"), *at = kernel_hash("attention"), *sc = kernel_hash("scal");
  make_db(mm, at, sc);

  at_db *db = NULL;
  at_err e;
  REQUIRE(at_db_open(dbpath, AT_DB_READONLY, &db, &e) == AT_OK);
  at_key pat = {.device = DEV};
  REQUIRE(at_db_winners(db, &pat, &winners, &e) == AT_OK);
  CHECK_EQ_INT(7, winners.n);
  at_db_close(db);

  at_buf c = {0}, h = {0}, c2 = {0}, h2 = {0};
  at_status s = run_export("t", &c, &h, &e);
  if (s)
    fprintf(stderr, "at_export: %s\n", e.msg);
  REQUIRE(s == AT_OK);
  /* deterministic */
  REQUIRE(run_export("t", &c2, &h2, &e) == AT_OK);
  CHECK(c.n == c2.n && !memcmp(c.p, c2.p, c.n));
  CHECK(h.n == h2.n && !memcmp(h.p, h2.p, h.n));
  CHECK_CONTAINS(h.p,
                 "int tuned_t_matmul_select(const tuned_t_matmul_problem *p, int exact_only);");
  CHECK_CONTAINS(h.p, "CUresult tuned_t_attention_launch(int entry, const tuned_t_attention_args "
                      "*a, CUstream stream);");
  CHECK_CONTAINS(c.p, "const char tuned_t_device[] = \"NVIDIA H200|sm_90|132sm|140GiB\";");
  CHECK(!strstr(c.p, "#include <stdio.h>") && !strstr(c.p, "#include <stdlib.h>"));
  char path[400];
  snprintf(path, sizeof path, "%s/tuned.c", dir);
  write_text(path, c.p);
  snprintf(path, sizeof path, "%s/tuned.h", dir);
  write_text(path, h.p);
  at_buf_free(&c), at_buf_free(&h), at_buf_free(&c2), at_buf_free(&h2);

  if (cuda_inc && *cuda_inc && system("command -v cc >/dev/null 2>&1") == 0)
    test_generated(cc, cuda_inc);
  else
    fprintf(stderr, "note: no cuda.h or no cc: the generated code was not compiled\n");
  test_refusals(mm, at);

  at_rows_free(&winners);
  free(mm);
  free(at);
  free(sc);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd))
    fprintf(stderr, "could not remove %s\n", dir);
  return TEST_MAIN_END();
}
