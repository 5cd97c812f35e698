/* autotune/tune.c — one tuning sweep (see tune.h), and the order of its steps:
 *
 *   kernel text ─ parse, verify, hash ─┐
 *   --shape/--dtype/--set ─ fixed config, bucket ─┤
 *   worker (device key, arch) or compile-only arch ─┴─> space (enumerate, prune, model)
 *   search ──batch of candidates──> measure():  DB row? ─yes─> answer (resume)
 *                                        │no
 *                        compile pool (jobs threads) ──cubin──> worker measures ──> DB row
 *   finalists re-timed interleaved ──> DB rows ──> winner = the database's query
 *
 * Rows are written as each candidate finishes, one transaction each, so a sweep killed at any
 * moment loses at most the candidate in flight and resumes from the database. Cubins go into the
 * database under their compile key (kernel hash, config, arch, toolchain) for the finalists'
 * re-time and for later loads.
 */
#include "autotune/tune.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "autotune/bucket.h"
#include "autotune/compile.h"
#include "autotune/space.h"
#include "autotune/worker.h"
#include "codegen/codegen.h"
#include "kernels/builtin_sources.h"
#include "kernels/problem.h"
#include "runtime/rt.h"

enum { MAX_JOBS = 64, MAX_FINALISTS = 8, AT_CONFIG_MAX = 1024 };

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char *sdup(const char *s) {
  if (!s)
    return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

/* ---- the sweep's state ------------------------------------------------------------------- */

typedef struct tune {
  const at_tune_opts *o;
  at_tune_report *r;
  ir_kernel *k;
  ir_config fixed;
  char pinned[1024]; /* the --set items naming const parameters or type variables ("D=32") */
  at_space space;
  at_device dev;
  at_db *db;
  at_worker *w;
  at_key key;
  char arch[16];
  bool aligned;        /* measuring the aligned variant (CG_ALIGNED) */
  const char *variant; /* what its rows record: "aligned" or "" */
  double t0;
  int total;
  double best_ms;
  char best_config[256];
  at_err fatal; /* an error that ends the sweep (database, toolchain) */
  bool failed;
} tune;

/* ---- the compile pool: jobs threads compile a batch while the caller measures in order ---- */

typedef struct pool {
  tune *t;
  const int *idx;
  int n;
  at_compiled *out;
  bool *ready;
  int next;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  at_err env; /* the toolchain is missing (first seen) */
  bool env_failed;
} pool;

static void *pool_thread(void *arg) {
  pool *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    int j = p->next < p->n ? p->next++ : -1;
    pthread_mutex_unlock(&p->mu);
    if (j < 0)
      return NULL;
    ir_config cfg;
    at_space_config(&p->t->space, p->idx[j], &p->t->fixed, &cfg);
    at_err e = {0};
    at_status st = at_compile_flags(p->t->k, &cfg, p->t->arch, p->t->dev.smem_per_block,
                                    p->t->aligned ? CG_ALIGNED : 0, &p->out[j], &e);
    pthread_mutex_lock(&p->mu);
    if (st && !p->env_failed) {
      p->env = e;
      p->env_failed = true;
    }
    p->ready[j] = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
}

/* ---- rows and events --------------------------------------------------------------------- */

static void count(tune *t, at_run s) {
  if ((unsigned)s < AT_RUN_COUNT)
    t->r->count[s]++;
}

static void emit(tune *t, const at_result *row, bool cached, bool retimed) {
  if (row->status == AT_RUN_OK && isfinite(row->median_ms) &&
      (!isfinite(t->best_ms) || row->median_ms < t->best_ms)) {
    t->best_ms = row->median_ms;
    snprintf(t->best_config, sizeof t->best_config, "%s", row->config);
  }
  if (!t->o->on_event)
    return;
  at_tune_event ev = {
      .done = t->r->considered,
      .total = t->total,
      .config = row->config,
      .status = row->status,
      .cached = cached,
      .retimed = retimed,
      .ms = row->status == AT_RUN_OK ? row->median_ms : NAN,
      .p20_ms = row->p20_ms,
      .p80_ms = row->p80_ms,
      .regs = row->regs,
      .spills = row->spills,
      .smem_bytes = row->smem_bytes,
      .detail = row->detail ? row->detail : "",
      .best_ms = t->best_ms,
      .best_config = t->best_config,
      .elapsed_s = now_s() - t->t0,
  };
  memcpy(ev.count, t->r->count, sizeof ev.count);
  t->o->on_event(t->o->event_ctx, &ev);
}

static void row_init(tune *t, at_result *row, const char *config) {
  *row = at_result_empty();
  row->config = config;
  row->problem = t->r->problem;
  row->variant = t->variant;
}

static void row_from_compile(at_result *row, const at_compiled *c) {
  row->status = c->status;
  row->regs = c->regs;
  row->spills = c->spills;
  row->smem_bytes = c->status == AT_RUN_PRUNED && !c->smem_bytes ? -1 : c->smem_bytes;
  row->detail = c->detail;
}

static void row_from_outcome(at_result *row, const at_outcome *m) {
  row->status = m->status;
  row->median_ms = m->median_ms;
  row->p20_ms = m->p20_ms;
  row->p80_ms = m->p80_ms;
  row->min_ms = m->min_ms;
  row->reps = m->reps;
  row->sm_clock_mhz = m->sm_clock_mhz;
  row->mem_clock_mhz = m->mem_clock_mhz;
  row->detail = m->detail;
}

static void fatal(tune *t, const at_err *e) {
  t->fatal = *e;
  t->failed = true;
}

/* The full config text of candidate ci: every tunable of the kernel in declaration order with
 * its value (the candidate's, a pinned one from --set, else the default). This is what rows
 * store and what the worker specializes, so a row never depends on the space it came from. */
static void full_config(const tune *t, int ci, char *buf, size_t cap) {
  ir_config cfg;
  at_space_config(&t->space, ci, &t->fixed, &cfg);
  size_t n = 0;
  buf[0] = 0;
  for (int i = 0; i < t->k->nsyms && n < cap; i++) {
    const ir_sym *sym = &t->k->syms[i];
    if (sym->kind != SYM_TUNABLE)
      continue;
    int64_t v = sym->def.i;
    for (int j = 0; j < cfg.n; j++) /* a later item wins, as in ir_specialize */
      if (!strcmp(cfg.items[j].name, sym->name))
        v = cfg.items[j].value.i;
    n += (size_t)snprintf(buf + n, cap - n, "%s%s=%lld", n ? "," : "", sym->name, (long long)v);
  }
}

static bool row_config(const tune *t, const char *config, ir_config *cfg);

/* The compile key of a row's config text in variant (NULL or "": the generic code): over the
 * whole binding, the problem's items included (at_code_config). */
static at_status code_key(const tune *t, const char *config, const char *variant, char out[65],
                          at_err *e) {
  ir_config cfg;
  char text[1024];
  if (!row_config(t, config, &cfg))
    return at_fail(e, AT_ERR_ARG, "the config '%.300s' does not parse", config);
  at_status st = at_code_config(t->k, &cfg, text, sizeof text, e);
  return st ? st
            : at_compile_key_variant(t->r->ir_hash, text, t->arch, t->r->toolchain, variant, out,
                                     e);
}

static bool compile_key(tune *t, const char *config, char out[65]) {
  at_err e = {0};
  if (code_key(t, config, t->variant, out, &e)) {
    fatal(t, &e);
    return false;
  }
  return true;
}

/* The meta JSON stored with the image of config: what a loader needs (entry, threads,
 * smem_bytes), the resources, the target and variant it was compiled for, and for aligned code
 * the compile key of its generic twin (`db prune` keeps that blob while the aligned row lives). */
static void image_meta(const tune *t, const at_compiled *c, const char *config, bool aligned,
                       char *buf, size_t cap) {
  char twin[65] = "";
  if (aligned && code_key(t, config, NULL, twin, NULL))
    twin[0] = 0;
  int n = snprintf(buf, cap,
                   "{\"entry\": \"%s\", \"threads\": %d, \"smem_bytes\": %d, \"regs\": %d, "
                   "\"spills\": %d, \"arch\": \"%s\", \"variant\": \"%s\"",
                   c->entry, c->threads, c->smem_bytes, c->regs, c->spills, t->arch,
                   aligned ? "aligned" : "generic");
  if (n > 0 && (size_t)n < cap)
    snprintf(buf + n, cap - (size_t)n, "%s%s%s}", twin[0] ? ", \"generic_key\": \"" : "", twin,
             twin[0] ? "\"" : "");
}

/* Stores the row, and with it (same transaction: never a row pointing at a missing or partial
 * blob) the compiled image with its resources when there is one. */
static bool store(tune *t, at_result *row, const at_compiled *c) {
  char key[65], meta[512];
  at_err e = {0};
  if (c && c->cubin) {
    if (!compile_key(t, row->config, key))
      return false;
    image_meta(t, c, row->config, t->aligned, meta, sizeof meta);
    row->compile_key = key;
    if (at_db_begin(t->db, &e) || at_db_put_blob(t->db, key, c->cubin, c->cubin_size, meta, &e) ||
        at_db_put(t->db, &t->key, row, &e) || at_db_commit(t->db, &e)) {
      at_db_rollback(t->db);
      row->compile_key = NULL;
      fatal(t, &e);
      return false;
    }
    row->compile_key = NULL;
    return true;
  }
  if (at_db_put(t->db, &t->key, row, &e)) {
    fatal(t, &e);
    return false;
  }
  return true;
}

/* ---- the measure callback of the search ------------------------------------------------ */

/* Answers candidates already in the database (a resumed sweep walks the same path). */
static bool answer_cached(tune *t, int ci, at_measured *m) {
  at_rows rows = {0};
  at_err e = {0};
  char config[AT_CONFIG_MAX];
  full_config(t, ci, config, sizeof config);
  at_status st = at_db_get(t->db, &t->key, config, &rows, &e);
  if (st == AT_MISS)
    return false;
  if (st) {
    fatal(t, &e);
    return false;
  }
  const at_result *row = &rows.r[0];
  if (strcmp(row->variant, t->variant)) { /* it measured the other code: measure again */
    at_rows_free(&rows);
    return false;
  }
  m->status = row->status;
  m->ms = row->status == AT_RUN_OK ? row->median_ms : NAN;
  t->r->considered++;
  count(t, row->status);
  emit(t, row, true, false);
  at_rows_free(&rows);
  return true;
}

static int measure(void *ctx, const at_space *s, const int *idx, int n, at_measured *out) {
  tune *t = ctx;
  (void)s; /* t->space */
  if (t->failed)
    return 1;
  if (t->o->time_s > 0 && now_s() - t->t0 >= t->o->time_s) {
    t->r->stopped = true;
    return 1;
  }
  int *todo = malloc(sizeof *todo * (size_t)n), *slot = malloc(sizeof *slot * (size_t)n);
  at_compiled *comp = calloc((size_t)n, sizeof *comp);
  bool *ready = calloc((size_t)n, sizeof *ready);
  if (!todo || !slot || !comp || !ready) {
    free(todo), free(slot), free(comp), free(ready);
    at_fail(&t->fatal, AT_ERR_OOM, "out of memory");
    t->failed = true;
    return 1;
  }
  int m = 0;
  for (int i = 0; i < n; i++) {
    out[i] = (at_measured){.status = AT_RUN_PRUNED, .ms = NAN};
    if (!answer_cached(t, idx[i], &out[i]) && !t->failed) {
      slot[m] = i;
      todo[m++] = idx[i];
    }
  }
  pool p = {.t = t, .idx = todo, .n = m, .out = comp, .ready = ready};
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  pthread_t th[MAX_JOBS];
  int nth = 0, jobs = t->o->jobs > 0 ? t->o->jobs : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (jobs < 1)
    jobs = 1;
  if (jobs > MAX_JOBS)
    jobs = MAX_JOBS;
  for (; nth < jobs && nth < m; nth++)
    if (pthread_create(&th[nth], NULL, pool_thread, &p))
      break;
  if (m > 0 && nth == 0) /* no thread could start: compile here */
    pool_thread(&p);
  for (int j = 0; j < m && !t->failed; j++) {
    pthread_mutex_lock(&p.mu);
    while (!ready[j])
      pthread_cond_wait(&p.cv, &p.mu);
    bool env = p.env_failed;
    pthread_mutex_unlock(&p.mu);
    if (env) {
      t->fatal = p.env;
      t->failed = true;
      break;
    }
    at_compiled *cc = &comp[j];
    at_result row;
    char config[AT_CONFIG_MAX];
    full_config(t, todo[j], config, sizeof config);
    row_init(t, &row, config);
    row_from_compile(&row, cc);
    if (cc->status == AT_RUN_COMPILED && cc->spills > 0 && !t->o->allow_spills) {
      row.status = AT_RUN_PRUNED;
      char why[96];
      snprintf(why, sizeof why, "ptxas reports %d bytes of spills (--allow-spills keeps it)",
               cc->spills);
      snprintf(cc->detail, sizeof cc->detail, "%s", why);
      row.detail = cc->detail;
    }
    at_outcome mo;
    if (row.status == AT_RUN_COMPILED) {
      if (!t->o->compile_only) {
        at_err e = {0};
        at_status st = at_worker_measure(t->w, config, cc->cubin, cc->cubin_size, &mo, &e);
        if (st) {
          fatal(t, &e);
          break;
        }
        row_from_outcome(&row, &mo);
      }
    }
    if (!store(t, &row, row.status == AT_RUN_PRUNED ? NULL : cc))
      break;
    out[slot[j]].status = row.status;
    out[slot[j]].ms = row.status == AT_RUN_OK ? row.median_ms : NAN;
    t->r->considered++;
    t->r->measured++;
    count(t, row.status);
    emit(t, &row, false, false);
    at_compiled_free(cc);
  }
  pthread_mutex_lock(&p.mu); /* stop the pool early when the sweep failed */
  p.n = p.next;
  pthread_mutex_unlock(&p.mu);
  for (int i = 0; i < nth; i++)
    pthread_join(th[i], NULL);
  for (int j = 0; j < m; j++)
    at_compiled_free(&comp[j]);
  pthread_mutex_destroy(&p.mu);
  pthread_cond_destroy(&p.cv);
  free(todo), free(slot), free(comp), free(ready);
  if (!t->failed && t->o->time_s > 0 && now_s() - t->t0 >= t->o->time_s) {
    t->r->stopped = true;
    return 1;
  }
  return t->failed ? 1 : 0;
}

/* ---- finalists ---------------------------------------------------------------------------- */

/* The config of a row's full config text: the problem's items, then the row's. */
static bool row_config(const tune *t, const char *config, ir_config *cfg) {
  ir_diag d;
  ir_config row_cfg;
  row_cfg.n = 0; /* ir_config_parse appends */
  *cfg = t->fixed;
  if (ir_config_parse(&row_cfg, config, &d) || cfg->n + row_cfg.n > IR_MAX_SYMS)
    return false;
  for (int j = 0; j < row_cfg.n; j++)
    cfg->items[cfg->n++] = row_cfg.items[j];
  return true;
}

/* Re-times the best few ok rows interleaved (one launch batch each per round, rotating), so a
 * winner is not declared from measurements taken minutes apart under other clocks. */
static void retime(tune *t) {
  int want = t->o->retime == 0 ? 3 : t->o->retime;
  if (want < 0 || t->o->compile_only)
    return;
  if (want > MAX_FINALISTS)
    want = MAX_FINALISTS;
  at_rows rows = {0};
  at_err e = {0};
  if (at_db_list(t->db, &t->key, &rows, &e)) {
    fatal(t, &e);
    return;
  }
  /* the best ok rows of this sweep's variant (rows of the other one keep their times) */
  int n = 0;
  for (int i = 0; i < rows.n && n < want && rows.r[i].status == AT_RUN_OK; i++)
    if (!strcmp(rows.r[i].variant, t->variant))
      rows.r[n++] = rows.r[i];
  if (n < 2) {
    at_rows_free(&rows);
    return;
  }
  const char *configs[MAX_FINALISTS];
  const void *images[MAX_FINALISTS] = {0};
  size_t sizes[MAX_FINALISTS] = {0};
  at_outcome outs[MAX_FINALISTS];
  bool ok = true;
  for (int i = 0; i < n && ok; i++) {
    configs[i] = rows.r[i].config;
    char key[65];
    if (!compile_key(t, configs[i], key)) {
      ok = false;
      break;
    }
    void *img = NULL;
    size_t size = 0;
    char *meta = NULL;
    at_status st = at_db_get_blob(t->db, key, &img, &size, &meta, &e);
    free(meta);
    if (st == AT_MISS) { /* not stored (another process measured it) or damaged: compile */
      ir_config cfg;
      at_compiled c;
      if (!row_config(t, configs[i], &cfg)) {
        ok = false;
        break;
      }
      st = at_compile_flags(t->k, &cfg, t->arch, t->dev.smem_per_block, t->aligned ? CG_ALIGNED : 0,
                            &c, &e);
      if (!st && c.status == AT_RUN_COMPILED) {
        img = c.cubin;
        size = c.cubin_size;
        c.cubin = NULL;
      } else
        ok = false;
      at_compiled_free(&c);
    } else if (st) {
      ok = false;
    }
    images[i] = img;
    sizes[i] = size;
  }
  if (ok && !at_worker_retime(t->w, configs, images, sizes, n, 3, outs, &e)) {
    for (int i = 0; i < n; i++) {
      at_result row = rows.r[i];
      row.key = (at_key){0};
      row.time_unix = 0;
      row_from_outcome(&row, &outs[i]);
      if (!store(t, &row, NULL))
        break;
      emit(t, &row, false, true);
    }
  }
  for (int i = 0; i < n; i++)
    free((void *)images[i]);
  at_rows_free(&rows);
}

/* After a sweep of the aligned variant: the generic code of the winner, stored by its compile
 * key (no row points at it), so that a generic request (API, `tilec export`'s fallback for
 * arguments that break the promise) finds it without compiling. Best effort: a failure is
 * reported as a note, the sweep's result stands. */
static void store_generic_twin(tune *t, const char *config) {
  char key[65], meta[512];
  at_err e = {0};
  void *img = NULL;
  size_t size = 0;
  if (code_key(t, config, NULL, key, &e))
    return;
  if (!at_db_get_blob(t->db, key, &img, &size, NULL, &e)) { /* already there */
    free(img);
    return;
  }
  ir_config cfg;
  at_compiled c = {0};
  if (!row_config(t, config, &cfg)) {
    snprintf(t->r->note, sizeof t->r->note, "the winner's config '%.300s' does not parse", config);
    return;
  }
  if (!at_compile_flags(t->k, &cfg, t->arch, t->dev.smem_per_block, 0, &c, &e) &&
      c.status == AT_RUN_COMPILED) {
    image_meta(t, &c, config, false, meta, sizeof meta);
    if (at_db_put_blob(t->db, key, c.cubin, c.cubin_size, meta, &e))
      snprintf(t->r->note, sizeof t->r->note, "the winner's generic code was not stored: %.400s",
               e.msg);
  } else
    snprintf(t->r->note, sizeof t->r->note, "the winner's generic code did not compile: %.400s",
             e.msg[0] ? e.msg : c.detail);
  at_compiled_free(&c);
}

/* After a sweep: the winner's code, stored under its compile key and named by its row, when the
 * row names none (a row from before schema v4, or merged or imported without its cubin): what
 * the API loads and `tilec export` embeds. Best effort, reported as a note. Returns whether the
 * row changed. */
static bool store_winner_code(tune *t, const at_result *w) {
  char key[65], meta[512];
  at_err e = {0};
  if ((w->compile_key && w->compile_key[0]) || strcmp(w->variant, t->variant) ||
      code_key(t, w->config, t->variant, key, &e))
    return false;
  void *img = NULL;
  size_t size = 0;
  at_compiled c = {0};
  bool have = !at_db_get_blob(t->db, key, &img, &size, NULL, &e);
  free(img);
  ir_config cfg;
  if (!have && (!row_config(t, w->config, &cfg) ||
                at_compile_flags(t->k, &cfg, t->arch, t->dev.smem_per_block,
                                 t->aligned ? CG_ALIGNED : 0, &c, &e) ||
                c.status != AT_RUN_COMPILED)) {
    snprintf(t->r->note, sizeof t->r->note, "the winner's code did not compile: %.400s",
             e.msg[0] ? e.msg : c.detail);
    at_compiled_free(&c);
    return false;
  }
  at_result row = *w;
  row.compile_key = key;
  if (!have)
    image_meta(t, &c, w->config, t->aligned, meta, sizeof meta);
  if (at_db_begin(t->db, &e) ||
      (!have && at_db_put_blob(t->db, key, c.cubin, c.cubin_size, meta, &e)) ||
      at_db_put(t->db, &t->key, &row, &e) || at_db_commit(t->db, &e)) {
    at_db_rollback(t->db);
    snprintf(t->r->note, sizeof t->r->note, "the winner's code was not stored: %.400s", e.msg);
    at_compiled_free(&c);
    return false;
  }
  at_compiled_free(&c);
  return true;
}

/* Which code the sweep measures: o->variant against what the worker said of the arguments. */
static at_status choose_variant(tune *t, at_err *e) {
  const at_tune_opts *o = t->o;
  int args_ok = o->compile_only ? -1 : at_worker_problem_aligned(t->w);
  switch (o->variant) {
  case AT_VARIANT_AUTO:
    t->aligned = args_ok == 1;
    break;
  case AT_VARIANT_GENERIC:
    t->aligned = false;
    break;
  case AT_VARIANT_ALIGNED:
    if (args_ok == 0)
      return at_fail(e, AT_ERR_ARG,
                     "--variant aligned: the problem's arguments break the aligned variant's "
                     "promise (16-byte aligned tensors, last stride 1, other strides and the "
                     "last extent multiples of 16 bytes)");
    if (args_ok < 0 && !o->compile_only)
      return at_fail(e, AT_ERR_ENV,
                     "--variant aligned: the worker did not say whether the "
                     "problem's arguments keep the promise (an older worker?)");
    t->aligned = true;
    break;
  default:
    return at_fail(e, AT_ERR_ARG, "at_tune: unknown variant %d", (int)o->variant);
  }
  t->variant = t->aligned ? "aligned" : "";
  t->r->aligned = t->aligned;
  at_worker_set_aligned(t->w, t->aligned);
  return AT_OK;
}

/* ---- setup -------------------------------------------------------------------------------- */

static const char *builtin_text(const char *name) {
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, name))
      return s->text;
  return NULL;
}

static at_status load_kernel(tune *t, at_err *e) {
  const at_tune_opts *o = t->o;
  const char *text = o->source ? o->source : builtin_text(o->kernel);
  if (!text)
    return at_fail(e, AT_ERR_ARG,
                   "'%s' is not a built-in kernel (matmul, attention, bsattention, "
                   "bsmatmul) and no kernel text was given",
                   o->kernel);
  char file[300];
  snprintf(file, sizeof file, o->source ? "%s" : "<builtin>/%s.tile", o->kernel);
  ir_diag d;
  if (ir_parse(text, strlen(text), file, &t->k, &d) || ir_verify(t->k, &d))
    return at_fail(e, AT_ERR_ARG, "%s", d.msg);
  char hash[65];
  at_status st = at_kernel_hash(t->k, hash, e);
  if (st)
    return st;
  t->r->ir_hash = sdup(hash);
  t->r->kernel = sdup(t->k->name);
  return t->r->ir_hash && t->r->kernel ? AT_OK : at_fail(e, AT_ERR_OOM, "out of memory");
}

static at_status problem(tune *t, kn_shape *shape, at_err *e) {
  const at_tune_opts *o = t->o;
  char err[512];
  if (!o->shape || kn_shape_parse(o->shape, shape, err, sizeof err))
    return at_fail(e, AT_ERR_ARG, "--shape: %s", o->shape ? err : "a problem shape is required");
  ir_diag d;
  t->fixed.n = 0;
  if (o->set && ir_config_parse(&t->fixed, o->set, &d))
    return at_fail(e, AT_ERR_ARG, "--set: %s", d.msg);
  /* --set items that fix a const parameter or a type variable define another problem, not a
   * narrower space: the worker specializes every candidate with them (t->pinned), and the
   * bucket and the problem text name them, so sweeps that differ in them never share rows. */
  kn_shape keyed = *shape;
  size_t np = 0;
  t->pinned[0] = 0;
  for (int i = 0; i < t->fixed.n; i++) {
    const ir_config_item *it = &t->fixed.items[i];
    size_t len = strlen(it->name);
    int sym = ir_sym_find(t->k, it->name, len);
    bool tvar = ir_tvar_find(t->k, it->name, len) >= 0, later = false;
    for (int j = i + 1; j < t->fixed.n; j++) /* the last item of a name binds it */
      later |= !strcmp(t->fixed.items[j].name, it->name);
    if (later || (!tvar && (sym < 0 || t->k->syms[sym].kind != SYM_CONST)))
      continue;
    char val[64];
    if (tvar)
      snprintf(val, sizeof val, "%s", ir_kind_name(it->kind));
    else if (it->value.isf)
      snprintf(val, sizeof val, "%.17g", it->value.f);
    else
      snprintf(val, sizeof val, "%lld", (long long)it->value.i);
    for (int j = 0; j < shape->n; j++)
      if (!strcmp(shape->kv[j].key, it->name))
        return at_fail(e, AT_ERR_ARG, "'%s' is given by both --shape and --set", it->name);
    if (keyed.n == KN_MAX_KEYS)
      return at_fail(e, AT_ERR_ARG, "--shape and --set: more than %d problem keys", KN_MAX_KEYS);
    snprintf(keyed.kv[keyed.n].key, sizeof keyed.kv[keyed.n].key, "%s", it->name);
    snprintf(keyed.kv[keyed.n].val, sizeof keyed.kv[keyed.n].val, "%s", val);
    keyed.n++;
    np += (size_t)snprintf(t->pinned + np, sizeof t->pinned - np, "%s%s=%s", np ? "," : "",
                           it->name, val);
    if (np >= sizeof t->pinned)
      return at_fail(e, AT_ERR_ARG, "--set: too long");
  }
  bool builtin = !o->source && kn_is_builtin(t->k->name); /* as the worker decides it */
  if (builtin && kn_problem_config(t->k->name, shape, o->dtype, &t->fixed, err, sizeof err))
    return at_fail(e, AT_ERR_ARG, "%s", err);
  /* A file kernel's const parameters named by --shape keys are bound from them (the bucket has
   * them already; the worker binds them from the shape it gets). */
  if (!builtin && kn_file_config(t->k, shape, NULL, &t->fixed, err, sizeof err))
    return at_fail(e, AT_ERR_ARG, "--shape: %s", err);
  if (!builtin && o->dtype) { /* the first type variable, as the API binds it */
    int before = t->fixed.n;
    if (kn_file_dtype(t->k, o->dtype, &t->fixed, err, sizeof err))
      return at_fail(e, AT_ERR_ARG, "--dtype: %s", err);
    if (t->fixed.n == before)
      return at_fail(e, AT_ERR_ARG, "--dtype and --set both bind %s", t->k->tvars[0].name);
    const ir_config_item *it = &t->fixed.items[before]; /* the worker gets it as a pinned item */
    if (np + strlen(it->name) + 24 >= sizeof t->pinned)
      return at_fail(e, AT_ERR_ARG, "--set: too long");
    np += (size_t)snprintf(t->pinned + np, sizeof t->pinned - np, "%s%s=%s", np ? "," : "",
                           it->name, ir_kind_name(it->kind));
  }
  char *bucket = NULL;
  at_status st = at_bucket_key(t->k, &keyed, o->dtype, &bucket, e);
  if (st)
    return st;
  t->r->bucket = bucket;
  char prob[2048];
  snprintf(prob, sizeof prob, "%s%s%s%s%s", o->shape, o->dtype ? ",dtype=" : "",
           o->dtype ? o->dtype : "", t->pinned[0] ? "," : "", t->pinned);
  t->r->problem = sdup(prob);
  return t->r->problem ? AT_OK : at_fail(e, AT_ERR_OOM, "out of memory");
}

/* The device: asked of the worker (which owns CUDA), or the arch's table for compile-only. */
static at_status device(tune *t, at_err *e) {
  const at_tune_opts *o = t->o;
  char key[512], name[256];
  int driver = 0;
  if (o->compile_only) {
    const char *arch = o->arch ? o->arch : "sm_90a";
    at_status st = at_device_for_arch(arch, &t->dev, e);
    if (st)
      return st;
    snprintf(t->arch, sizeof t->arch, "%s", arch);
    snprintf(key, sizeof key, "compile-only|%s", arch);
    snprintf(name, sizeof name, "%s (compile only)", arch);
  } else {
    at_worker_opts wo = {.timeout_s = o->timeout_s > 0 ? o->timeout_s : 20};
    at_problem_desc pd = {.kernel = o->kernel,
                          .source = o->source,
                          .shape = o->shape,
                          .dtype = !o->source && kn_is_builtin(o->kernel) ? o->dtype : NULL,
                          .set = t->pinned,
                          .arch = o->arch,
                          .seed = o->seed ? o->seed : 1,
                          .reps = o->reps > 0 ? o->reps : 50,
                          .warmup = o->warmup > 0 ? o->warmup : 5};
    at_status st = at_worker_start(&wo, &pd, &t->w, e);
    if (st)
      return st;
    at_gpu_info wd;
    if ((st = at_worker_device(t->w, &wd, e)))
      return st;
    const char *arch = o->arch ? o->arch : wd.arch;
    if ((st = at_device_for_arch(arch, &t->dev, e)))
      return st;
    t->dev.sm_count = wd.sm_count;
    if (wd.smem_per_block_optin > 0)
      t->dev.smem_per_block = wd.smem_per_block_optin;
    if (wd.smem_per_sm > 0)
      t->dev.smem_per_sm = wd.smem_per_sm;
    snprintf(t->arch, sizeof t->arch, "%s", arch);
    driver = wd.driver_version;
    snprintf(key, sizeof key, "%s", wd.key);
    snprintf(name, sizeof name, "%s", wd.name);
  }
  if (!cg_target_find(t->arch))
    return at_fail(e, AT_ERR_ARG,
                   "target %s is not one of this build (sm_80 sm_86 sm_89 sm_90 "
                   "sm_90a)",
                   t->arch);
  char tool[512];
  at_toolchain_key(driver, tool, sizeof tool);
  t->r->device = sdup(key);
  t->r->device_name = sdup(name);
  t->r->arch = sdup(t->arch);
  t->r->toolchain = sdup(tool);
  if (!t->r->device || !t->r->device_name || !t->r->arch || !t->r->toolchain)
    return at_fail(e, AT_ERR_OOM, "out of memory");
  return AT_OK;
}

at_status at_tune(const at_tune_opts *o, at_tune_report *r, at_err *e) {
  memset(r, 0, sizeof *r);
  if (!o || !o->kernel)
    return at_fail(e, AT_ERR_ARG, "at_tune: a kernel is required");
  tune t = {.o = o, .r = r, .variant = "", .best_ms = NAN, .t0 = now_s()};
  kn_shape shape;
  at_status st;
  if ((st = load_kernel(&t, e)) || (st = problem(&t, &shape, e)) || (st = device(&t, e)) ||
      (st = choose_variant(&t, e)))
    goto done;
  if ((st = at_space_build(t.k, &t.fixed, &shape, &t.dev, &t.space, e)))
    goto done;
  r->space = t.space.n;
  r->live = t.space.nlive;
  if ((st = at_db_open(o->db_path, 0, &t.db, e)))
    goto done;
  char *path = NULL;
  if (o->db_path)
    r->db_path = sdup(o->db_path);
  else if (!at_db_default_path(&path, false, NULL))
    r->db_path = path;
  t.key = (at_key){.device = r->device,
                   .toolchain = r->toolchain,
                   .kernel = r->kernel,
                   .ir_hash = r->ir_hash,
                   .bucket = r->bucket};
  if (o->restart && (st = at_db_forget(t.db, &t.key, NULL, e)))
    goto done;
  at_search_opts so = {
      .strategy = o->compile_only ? AT_STRATEGY_EXHAUSTIVE : o->strategy,
      .seed = o->seed,
      .budget = o->budget,
      .batch = o->jobs > 0 ? 2 * o->jobs : 8,
      .shard_i = o->shard_i,
      .shard_n = o->shard_n > 0 ? o->shard_n : 1,
  };
  at_rows warm = {0};
  at_bucket_winner *pairs = NULL;
  const char *warm_cfg[4];
  if (!o->compile_only && !o->restart) { /* warm start: winners of the nearest tuned buckets */
    at_key pat = t.key;
    pat.bucket = NULL;
    if (!at_db_winners(t.db, &pat, &warm, NULL) && warm.n > 0 &&
        (pairs = calloc((size_t)warm.n, sizeof *pairs))) {
      int np = 0;
      for (int i = 0; i < warm.n; i++)
        if (strcmp(warm.r[i].key.bucket, r->bucket)) /* this bucket's rows are the resume */
          pairs[np++] = (at_bucket_winner){warm.r[i].key.bucket, warm.r[i].config};
      int nw = 0;
      if (np && !at_bucket_nearest(r->bucket, pairs, np, 2, warm_cfg, &nw, NULL) && nw > 0) {
        so.warm = warm_cfg;
        so.nwarm = nw;
      }
    }
  }
  int live_in_shard = (t.space.nlive + so.shard_n - 1 - so.shard_i) / so.shard_n;
  t.total = o->budget > 0 && o->budget < live_in_shard ? o->budget : live_in_shard;
  at_search_result sr;
  st = at_search_run(&t.space, &so, measure, &t, &sr, e);
  free(pairs);
  at_rows_free(&warm);
  if (t.failed) {
    if (e)
      *e = t.fatal;
    st = t.fatal.status ? t.fatal.status : AT_ERR_INTERNAL;
    goto done;
  }
  if (st)
    goto done;
  retime(&t);
  if (t.failed) {
    if (e)
      *e = t.fatal;
    st = t.fatal.status ? t.fatal.status : AT_ERR_INTERNAL;
    goto done;
  }
  if (o->compile_only)
    st = at_db_list(t.db, &t.key, &r->top, e);
  else {
    st = at_db_list(t.db, &t.key, &r->top, e);
    r->have_winner = !st && r->top.n > 0 && r->top.r[0].status == AT_RUN_OK;
    if (r->have_winner && store_winner_code(&t, &r->top.r[0])) {
      at_rows_free(&r->top);
      st = at_db_list(t.db, &t.key, &r->top, e);
      r->have_winner = !st && r->top.n > 0 && r->top.r[0].status == AT_RUN_OK;
    }
    if (r->have_winner && t.aligned)
      store_generic_twin(&t, r->top.r[0].config);
  }
done:
  r->elapsed_s = now_s() - t.t0;
  at_worker_stop(t.w);
  at_db_close(t.db);
  at_space_free(&t.space);
  ir_kernel_free(t.k);
  return st;
}

void at_tune_report_free(at_tune_report *r) {
  if (!r)
    return;
  free(r->db_path), free(r->device), free(r->device_name), free(r->arch), free(r->toolchain);
  free(r->kernel), free(r->ir_hash), free(r->bucket), free(r->problem);
  at_rows_free(&r->top);
  memset(r, 0, sizeof *r);
}
