/* tests/unit/search.c — the search strategies in replay mode, and replay tables.
 *
 * A synthetic table stands in for the GPU: every live point of the matmul space (4096^3, bf16,
 * sm_90a) gets a time from a cost function that is not the model's (a bowl in log2 of the
 * tunables around a hidden optimum, a decoy basin, a tile-per-warp term, +-1.5 % deterministic
 * noise) and some points fail (fault, compile_error, wrong). The tests check that exhaustive finds
 * the table's best, random is reproducible per seed, model gets within 2 % of the best with a small
 * budget, a run stopped half-way and resumed from a cache makes the same calls and ends with the
 * same winner, and the shards of a sweep partition it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autotune/replay.h"
#include "autotune/search.h"
#include "autotune/space.h"
#include "check.h"
#include "kernels/builtin_sources.h"

#define HIDDEN_BEST "BM=128,BN=256,BK=64,WARPS=8,STAGES=4,GROUP_M=8"

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

static double bowl(const int64_t *v, const double *opt, double floor) {
  static const double w[6] = {0.30, 0.25, 0.20, 0.15, 0.12, 0.06};
  double c = floor;
  for (int t = 0; t < 6; t++) {
    double d = log2((double)v[t]) - log2(opt[t]);
    c += w[t] * d * d;
  }
  return c;
}

/* The synthetic cost in ms of point v (BM BN BK WARPS STAGES GROUP_M); not the model: a bowl in
 * log2 of the tunables around opt, with the decoy the better of it and a second bowl 8 % worse
 * around BM=64,BN=64,BK=32,WARPS=4,STAGES=3,GROUP_M=8; a tile-per-warp term; +-1.5 % noise. */
static double synth_ms(const double *opt, bool decoy, const int64_t *v, int idx) {
  static const double at_defaults[6] = {64, 64, 32, 4, 3, 8};
  double c = bowl(v, opt, 1);
  if (decoy)
    c = fmin(c, bowl(v, at_defaults, 1.08));
  c += 0.05 * fabs(log2((double)(v[0] * v[1]) / ((double)v[3] * 4096.0)));
  double noise = (double)(mix((uint64_t)idx + 1) % 3001) / 3000.0 * 0.03 - 0.015;
  return 0.8 * c * (1 + noise);
}

typedef struct fixture {
  double opt[6]; /* the bowl's centre: BM BN BK WARPS STAGES GROUP_M */
  bool decoy;    /* add the decoy basin */
  ir_kernel *k;
  at_space s;
  at_replay *table;
  int best; /* the table's fastest ok row */
  double best_ms;
} fixture;

static void build_fixture(fixture *f, const double *opt, bool decoy) {
  memset(f, 0, sizeof *f);
  memcpy(f->opt, opt, sizeof f->opt);
  f->decoy = decoy;
  for (const struct tilec_builtin_source *b = tilec_builtin_sources; b->name; b++)
    if (strcmp(b->name, "matmul") == 0) {
      ir_diag d;
      REQUIRE(ir_parse(b->text, strlen(b->text), "matmul", &f->k, &d) == IR_OK);
    }
  REQUIRE(f->k != NULL);
  kn_shape shape;
  ir_config fixed = {0};
  char err[128];
  REQUIRE(kn_shape_parse("M=4096,N=4096,K=4096", &shape, err, sizeof err) == 0);
  REQUIRE(kn_problem_config("matmul", &shape, "bf16", &fixed, err, sizeof err) == 0);
  at_device dev;
  at_err e;
  REQUIRE(at_device_for_arch("sm_90a", &dev, &e) == AT_OK);
  REQUIRE(at_space_build(f->k, &fixed, &shape, &dev, &f->s, &e) == AT_OK);
  REQUIRE(at_replay_new(&f->table, &e) == AT_OK);
  char text[128];
  snprintf(text, sizeof text, "BM=%g,BN=%g,BK=%g,WARPS=%g,STAGES=%g,GROUP_M=%g", opt[0], opt[1],
           opt[2], opt[3], opt[4], opt[5]);
  int hidden = at_space_find(&f->s, text);
  REQUIRE(hidden >= 0 && !f->s.c[hidden].pruned);
  f->best = -1;
  for (int i = 0; i < f->s.n; i++) {
    if (f->s.c[i].pruned)
      continue;
    uint64_t h = mix((uint64_t)i * 7919 + 3);
    at_run st = AT_RUN_OK;
    if (i != hidden)
      st = h % 37 == 0   ? AT_RUN_FAULT
           : h % 41 == 1 ? AT_RUN_COMPILE
           : h % 53 == 2 ? AT_RUN_WRONG
                         : AT_RUN_OK;
    double ms = synth_ms(opt, decoy, f->s.c[i].v, i);
    REQUIRE(at_replay_add(f->table, f->s.c[i].config, st, st == AT_RUN_OK ? ms : NAN, &e) == AT_OK);
    if (st == AT_RUN_OK && (f->best < 0 || ms < f->best_ms)) {
      f->best = i;
      f->best_ms = ms;
    }
  }
  CHECK_EQ_INT(f->s.nlive, at_replay_count(f->table));
  CHECK(f->best >= 0);
}

static void free_fixture(fixture *f) {
  at_replay_free(f->table);
  at_space_free(&f->s);
  ir_kernel_free(f->k);
}

/* A measure callback over the table that records the calls, may stop after a number of
 * candidates, and may answer from (and fill) a cache, as the database does when resuming. */
typedef struct recorder {
  at_replay_ctx rp;
  int *seq;
  int nseq, cap;
  int stop_after; /* 0: never */
  at_measured *cache;
  unsigned char *cached;
  int hits;
  int calls;
} recorder;

static int record_measure(void *ctx, const at_space *s, const int *idx, int n, at_measured *out) {
  recorder *r = ctx;
  r->calls++;
  if (r->stop_after && r->nseq + n > r->stop_after)
    return 1;
  if (r->nseq + n > r->cap) {
    r->cap = (r->nseq + n) * 2;
    r->seq = realloc(r->seq, sizeof(int) * (size_t)r->cap);
    REQUIRE(r->seq != NULL);
  }
  for (int i = 0; i < n; i++) {
    r->seq[r->nseq++] = idx[i];
    if (r->cache && r->cached[idx[i]]) {
      out[i] = r->cache[idx[i]];
      r->hits++;
      continue;
    }
    if (at_replay_measure(&r->rp, s, &idx[i], 1, &out[i]))
      return 1;
    if (r->cache) {
      r->cache[idx[i]] = out[i];
      r->cached[idx[i]] = 1;
    }
  }
  return 0;
}

static at_search_result search(fixture *f, at_search_opts o, recorder *r) {
  at_search_result res;
  at_err e;
  r->rp.table = f->table;
  at_status st = at_search_run(&f->s, &o, record_measure, r, &res, &e);
  if (!CHECK(st == AT_OK))
    fprintf(stderr, "  %s\n", e.msg);
  CHECK_EQ_INT(0, r->rp.missing);
  int sum = 0;
  for (int i = 0; i < AT_RUN_COUNT; i++)
    sum += res.count[i];
  CHECK_EQ_INT(res.measured, sum);
  return res;
}

static bool same_seq(const recorder *a, const recorder *b) {
  return a->nseq == b->nseq && memcmp(a->seq, b->seq, sizeof(int) * (size_t)a->nseq) == 0;
}

static void test_exhaustive(fixture *f) {
  recorder r = {0};
  at_search_result res =
      search(f, (at_search_opts){.strategy = AT_STRATEGY_EXHAUSTIVE, .batch = 8}, &r);
  CHECK_EQ_INT(f->s.nlive, res.measured);
  CHECK_EQ_INT(f->best, res.best);
  CHECK_NEAR(f->best_ms, res.best_ms, 0);
  CHECK(res.count[AT_RUN_FAULT] > 0 && res.count[AT_RUN_COMPILE] > 0 &&
        res.count[AT_RUN_WRONG] > 0);
  CHECK_EQ_INT(0, res.count[AT_RUN_PRUNED]);
  CHECK(!res.stopped);
  CHECK_EQ_INT((f->s.nlive + 7) / 8, r.calls);
  int ordered = 1;
  for (int i = 1; i < r.nseq; i++)
    ordered &= r.seq[i] > r.seq[i - 1];
  CHECK(ordered); /* the space's order */
  free(r.seq);
}

static void test_random(fixture *f) {
  at_search_opts o = {.strategy = AT_STRATEGY_RANDOM, .seed = 42, .budget = 300, .batch = 16};
  recorder a = {0}, b = {0}, c = {0}, all = {0};
  at_search_result ra = search(f, o, &a), rb = search(f, o, &b);
  CHECK_EQ_INT(300, ra.measured);
  CHECK(same_seq(&a, &b));
  CHECK_EQ_INT(ra.best, rb.best);
  o.seed = 43;
  search(f, o, &c);
  CHECK(!same_seq(&a, &c));
  o.seed = 42;
  o.budget = 0;
  at_search_result rall = search(f, o, &all);
  CHECK_EQ_INT(f->best, rall.best);
  CHECK_EQ_INT(f->s.nlive, rall.measured);
  CHECK(memcmp(a.seq, all.seq, sizeof(int) * 300) == 0); /* a budget cuts the same order */
  free(a.seq);
  free(b.seq);
  free(c.seq);
  free(all.seq);
}

static void test_model(fixture *f) {
  at_search_opts o = {.strategy = AT_STRATEGY_MODEL, .budget = 200, .batch = 8};
  recorder r = {0};
  at_search_result res = search(f, o, &r);
  fprintf(stderr, "model, budget 200 of %d live: best %s %.4f ms (table best %.4f ms)\n",
          f->s.nlive, res.best >= 0 ? f->s.c[res.best].config : "-", res.best_ms, f->best_ms);
  CHECK(res.measured <= 200);
  CHECK(res.best >= 0 && res.best_ms <= f->best_ms * 1.02);
  int rank = 0, when = -1;
  for (int i = 0; i < f->s.n; i++)
    rank += !f->s.c[i].pruned && f->s.c[i].prior_ms < f->s.c[f->best].prior_ms;
  for (int i = 0; i < r.nseq && when < 0; i++)
    if (r.seq[i] == f->best)
      when = i;
  fprintf(stderr, "the table's best is #%d by the prior; model measured it %dth\n", rank + 1,
          when + 1);
  /* batching changes how calls are cut, not what is measured */
  recorder r1 = {0};
  o.batch = 1;
  at_search_result res1 = search(f, o, &r1);
  CHECK(same_seq(&r, &r1));
  CHECK_EQ_INT(res.best, res1.best);
  /* without a budget it stops at a local optimum */
  recorder r0 = {0};
  o.budget = 0;
  o.batch = 8;
  at_search_result res0 = search(f, o, &r0);
  fprintf(stderr, "model, no budget: %d measured, best %.4f ms\n", res0.measured, res0.best_ms);
  CHECK(res0.measured < f->s.nlive / 4);
  CHECK(res0.best_ms <= f->best_ms * 1.02);
  /* a budget as large as the space: the restarts reach every live candidate */
  recorder ra = {0};
  o.budget = f->s.nlive;
  at_search_result resa = search(f, o, &ra);
  CHECK_EQ_INT(f->s.nlive, resa.measured);
  CHECK_EQ_INT(f->best, resa.best);
  free(r.seq);
  free(r1.seq);
  free(r0.seq);
  free(ra.seq);
}

/* A run stopped half-way, then resumed with the first run's answers in a cache, makes the same
 * calls as one uninterrupted run and ends with the same winner. */
static void test_resume(fixture *f, at_strategy strategy) {
  at_search_opts o = {.strategy = strategy, .seed = 9, .budget = 150, .batch = 4};
  recorder full = {0};
  at_search_result rf = search(f, o, &full);
  size_t n = (size_t)f->s.n;
  recorder part = {
      .stop_after = 70, .cache = calloc(n, sizeof(at_measured)), .cached = calloc(n, 1)};
  REQUIRE(part.cache && part.cached);
  at_search_result rp = search(f, o, &part);
  CHECK(rp.stopped);
  CHECK(rp.measured <= 70);
  recorder resumed = {.cache = part.cache, .cached = part.cached};
  at_search_result rr = search(f, o, &resumed);
  CHECK(!rr.stopped);
  CHECK(same_seq(&full, &resumed));
  CHECK_EQ_INT(rp.measured, resumed.hits);
  CHECK_EQ_INT(rf.best, rr.best);
  CHECK_NEAR(rf.best_ms, rr.best_ms, 0);
  free(full.seq);
  free(part.seq);
  free(resumed.seq);
  free(part.cache);
  free(part.cached);
}

/* Shards 0/3, 1/3, 2/3 of an exhaustive or random sweep take every third position of the
 * unsharded order; merged, they have its winner. */
static void test_shards(fixture *f, at_strategy strategy, int budget) {
  at_search_opts o = {.strategy = strategy, .seed = 5, .budget = budget, .batch = 8};
  recorder full = {0};
  at_search_result rf = search(f, o, &full);
  int merged = -1, total = 0;
  double merged_ms = INFINITY;
  bool partition = true;
  for (int i = 0; i < 3; i++) {
    recorder r = {0};
    o.shard_i = i;
    o.shard_n = 3;
    at_search_result rs = search(f, o, &r);
    total += rs.measured;
    for (int p = 0; p < r.nseq; p++)
      partition &= 3 * p + i < full.nseq && r.seq[p] == full.seq[3 * p + i];
    if (rs.best >= 0 && (rs.best_ms < merged_ms || (rs.best_ms == merged_ms && rs.best < merged))) {
      merged = rs.best;
      merged_ms = rs.best_ms;
    }
    free(r.seq);
  }
  CHECK(partition);
  CHECK_EQ_INT(rf.measured, total);
  CHECK_EQ_INT(rf.best, merged);
  free(full.seq);
}

/* model shards split the budget; each searches on its own (docs/tuning-search.md). */
static void test_model_shards(fixture *f) {
  at_search_opts o = {.strategy = AT_STRATEGY_MODEL, .budget = 200, .batch = 8, .shard_n = 3};
  int total = 0;
  double best = INFINITY;
  for (int i = 0; i < 3; i++) {
    recorder r = {0};
    o.shard_i = i;
    at_search_result rs = search(f, o, &r);
    CHECK(rs.measured <= 200 / 3 + 1);
    total += rs.measured;
    best = fmin(best, rs.best_ms);
    free(r.seq);
  }
  fprintf(stderr, "model, 3 shards of budget 200: %d measured, merged best %.4f ms\n", total, best);
  CHECK(total <= 200);
  CHECK(best <= f->best_ms * 1.05);
}

/* Warm configs come first; unknown and pruned ones are skipped and counted. */
static void test_warm(fixture *f) {
  int pruned = -1;
  for (int i = 0; i < f->s.n && pruned < 0; i++)
    if (f->s.c[i].pruned)
      pruned = i;
  const char *warm[] = {"BM=64,BN=64,BK=32,WARPS=4,STAGES=3,GROUP_M=8", f->s.c[pruned].config,
                        "BM=1", HIDDEN_BEST, "BM=64,BN=64,BK=32,WARPS=4,STAGES=3,GROUP_M=8"};
  at_search_opts o = {
      .strategy = AT_STRATEGY_MODEL, .budget = 20, .batch = 3, .warm = warm, .nwarm = 5};
  recorder r = {0};
  at_search_result res = search(f, o, &r);
  REQUIRE(r.nseq >= 2);
  CHECK_EQ_INT(at_space_find(&f->s, warm[0]), r.seq[0]);
  CHECK_EQ_INT(f->best, r.seq[1]);
  CHECK_EQ_INT(2, res.warm_skipped);
  CHECK_EQ_INT(f->best, res.best);
  free(r.seq);
}

static int answer_nan(void *ctx, const at_space *s, const int *idx, int n, at_measured *out) {
  (void)ctx, (void)s, (void)idx;
  for (int i = 0; i < n; i++)
    out[i] = (at_measured){AT_RUN_OK, NAN};
  return 0;
}

static int answer_bad(void *ctx, const at_space *s, const int *idx, int n, at_measured *out) {
  (void)ctx, (void)s, (void)idx;
  for (int i = 0; i < n; i++)
    out[i] = (at_measured){(at_run)99, 1};
  return 0;
}

static void test_errors(fixture *f) {
  at_search_result res;
  at_err e;
  at_search_opts o = {.strategy = AT_STRATEGY_EXHAUSTIVE, .batch = 0};
  CHECK_EQ_INT(AT_ERR_ARG, at_search_run(&f->s, &o, answer_nan, NULL, &res, &e));
  CHECK_CONTAINS(e.msg, "batch");
  o.batch = 1;
  o.shard_i = 3;
  o.shard_n = 3;
  CHECK_EQ_INT(AT_ERR_ARG, at_search_run(&f->s, &o, answer_nan, NULL, &res, &e));
  CHECK_CONTAINS(e.msg, "shard 3/3");
  o.shard_i = 0;
  o.budget = -1;
  CHECK_EQ_INT(AT_ERR_ARG, at_search_run(&f->s, &o, answer_nan, NULL, &res, &e));
  o.budget = 0;
  o.strategy = (at_strategy)7;
  CHECK_EQ_INT(AT_ERR_ARG, at_search_run(&f->s, &o, answer_nan, NULL, &res, &e));
  o.strategy = AT_STRATEGY_EXHAUSTIVE;
  CHECK_EQ_INT(AT_ERR_ARG, at_search_run(&f->s, &o, answer_nan, NULL, &res, &e));
  CHECK_CONTAINS(e.msg, "without a finite time");
  CHECK_EQ_INT(AT_ERR_ARG, at_search_run(&f->s, &o, answer_bad, NULL, &res, &e));
  CHECK_CONTAINS(e.msg, "not a run status");
  CHECK_EQ_INT(AT_ERR_ARG, at_search_run(NULL, &o, answer_nan, NULL, &res, &e));
  CHECK_EQ_INT(AT_ERR_ARG, at_search_run(&f->s, &o, NULL, NULL, &res, &e));
  at_strategy st;
  CHECK(at_strategy_parse("model", &st) && st == AT_STRATEGY_MODEL);
  CHECK(at_strategy_parse("exhaustive", &st) && st == AT_STRATEGY_EXHAUSTIVE);
  CHECK(at_strategy_parse("random", &st) && st == AT_STRATEGY_RANDOM);
  CHECK(!at_strategy_parse("grid", &st) && !at_strategy_parse(NULL, &st));
  CHECK_EQ_STR("random", at_strategy_name(AT_STRATEGY_RANDOM));
  CHECK_EQ_STR("unknown", at_strategy_name((at_strategy)9));
}

static void write_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  REQUIRE(fp != NULL);
  fputs(text, fp);
  fclose(fp);
}

static void test_replay_files(fixture *f) {
  char path[256];
  snprintf(path, sizeof path, "/tmp/tilec_replay_%d.tsv", (int)getpid());
  at_err e;
  REQUIRE(at_replay_save(f->table, path, &e) == AT_OK);
  at_replay *t = NULL;
  REQUIRE(at_replay_load(path, &t, &e) == AT_OK);
  CHECK_EQ_INT(at_replay_count(f->table), at_replay_count(t));
  int same = 0;
  for (int i = 0; i < f->s.n; i++) {
    at_measured a, b;
    bool ha = at_replay_lookup(f->table, f->s.c[i].config, &a);
    bool hb = at_replay_lookup(t, f->s.c[i].config, &b);
    same += ha == hb && (!ha || (a.status == b.status && (a.status != AT_RUN_OK || a.ms == b.ms)));
  }
  CHECK_EQ_INT(f->s.n, same);
  at_replay_free(t);

  write_file(path, "# comment\n\nBM=16\tok\t1.5\nBM=32\tfault\t-\nBM=64\tcompile_error\tnan\n");
  REQUIRE(at_replay_load(path, &t, &e) == AT_OK);
  at_measured m;
  CHECK(at_replay_lookup(t, "BM=16", &m) && m.status == AT_RUN_OK && m.ms == 1.5);
  CHECK(at_replay_lookup(t, "BM=64", &m) && m.status == AT_RUN_COMPILE);
  CHECK(!at_replay_lookup(t, "BM=128", &m));
  at_replay_free(t);
  const char *bad[][2] = {{"BM=16\tok\n", ":1: expected config<TAB>status<TAB>ms"},
                          {"BM=16\tfast\t1\n", ":1: unknown status 'fast'"},
                          {"#\nBM=16\tok\tx\n", ":2: bad time 'x'"},
                          {"BM=16\tok\t-\n", ":1: replay row 'BM=16': ok needs a finite time"},
                          {"BM=16\tok\t1\nBM=16\tok\t2\n", ":2: config 'BM=16' given twice"}};
  for (int i = 0; i < 5; i++) {
    write_file(path, bad[i][0]);
    CHECK_EQ_INT(AT_ERR_ARG, at_replay_load(path, &t, &e));
    CHECK(t == NULL);
    CHECK_CONTAINS(e.msg, bad[i][1]);
  }
  remove(path);
  CHECK_EQ_INT(AT_ERR_IO, at_replay_load(path, &t, &e));
  /* a table without a row stops the search and says which */
  REQUIRE(at_replay_new(&t, &e) == AT_OK);
  at_replay_ctx c = {.table = t};
  at_search_opts o = {.strategy = AT_STRATEGY_EXHAUSTIVE, .batch = 2};
  at_search_result res;
  CHECK_EQ_INT(AT_OK, at_search_run(&f->s, &o, at_replay_measure, &c, &res, &e));
  CHECK(res.stopped);
  CHECK_EQ_INT(0, res.measured);
  CHECK_EQ_INT(1, c.missing);
  CHECK_EQ_STR(f->s.c[0].pruned ? c.missing_config : f->s.c[0].config, c.missing_config);
  CHECK_EQ_INT(AT_ERR_ARG, at_replay_add(t, "a\tb", AT_RUN_OK, 1, &e));
  CHECK_EQ_INT(AT_ERR_ARG, at_replay_add(t, "a", (at_run)50, 1, &e));
  at_replay_free(t);
}

/* Other optima of the synthetic cost: without the decoy, model gets within 2 % at budget 200; with
 * it, the optima far from the decoy (where the first climb ends) are found by a restart (at budget
 * 300 when this was written; 200 is not enough), so they get 400. */
static void test_model_optima(void) {
  static const double optima[][6] = {{64, 128, 32, 4, 3, 4},
                                     {256, 128, 32, 8, 2, 16},
                                     {32, 64, 128, 2, 5, 1},
                                     {128, 64, 64, 4, 4, 4},
                                     {16, 256, 64, 4, 3, 8}};
  for (int i = 0; i < 5; i++)
    for (int decoy = 0; decoy < 2; decoy++) {
      int budget = decoy && (i == 2 || i == 4) ? 400 : 200;
      fixture f;
      build_fixture(&f, optima[i], decoy);
      recorder r = {0};
      at_search_opts o = {.strategy = AT_STRATEGY_MODEL, .budget = budget, .batch = 8};
      at_search_result res = search(&f, o, &r);
      fprintf(stderr, "optimum %d%s, budget %d: table best %s %.4f ms, model %s %.4f ms\n", i,
              decoy ? " + decoy" : "", budget, f.s.c[f.best].config, f.best_ms,
              res.best >= 0 ? f.s.c[res.best].config : "-", res.best_ms);
      CHECK(res.best >= 0 && res.best_ms <= f.best_ms * 1.02);
      free(r.seq);
      free_fixture(&f);
    }
}

int main(void) {
  static const double opt[6] = {128, 256, 64, 8, 4, 8};
  fixture f;
  build_fixture(&f, opt, true);
  CHECK_EQ_INT(at_space_find(&f.s, HIDDEN_BEST), f.best);
  fprintf(stderr, "table: %d live points, best %s %.4f ms\n", f.s.nlive, f.s.c[f.best].config,
          f.best_ms);
  test_exhaustive(&f);
  test_random(&f);
  test_model(&f);
  test_resume(&f, AT_STRATEGY_MODEL);
  test_resume(&f, AT_STRATEGY_RANDOM);
  test_resume(&f, AT_STRATEGY_EXHAUSTIVE);
  test_shards(&f, AT_STRATEGY_EXHAUSTIVE, 0);
  test_shards(&f, AT_STRATEGY_RANDOM, 500);
  test_model_shards(&f);
  test_warm(&f);
  test_errors(&f);
  test_replay_files(&f);
  free_fixture(&f);
  test_model_optima();
  return TEST_MAIN_END();
}
