/* api/kernel.c — tilec_kernel_get (lookup, database, heuristic, compile, load) and tilec_launch.
 *
 *   request ──key──> memo ──kernel key──> LRU  (hit: microseconds, no parsing, no database)
 *      │ miss
 *      parse/verify/hash ─> problem config + bucket ─> DB winner? ─no─> tune policy / heuristic
 *      ─> specialize ─> kernel key in LRU? (another request, same code) ─no─> cubin from the DB
 *      (by compile key) or at_compile ─> module load ─> insert (evicting the LRU tail)
 *
 * The cache lock is taken twice on a miss (find, insert) and never held across the slow steps.
 * A launch packs arguments with rt_params_pack and enqueues cuLaunchKernel; it takes no lock.
 */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api_impl.h"
#include "autotune/bucket.h"
#include "autotune/compile.h"
#include "codegen/codegen.h"
#include "kernels/builtin_sources.h"
#include "kernels/problem.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

void tilec_kernel_request_init(tilec_kernel_request *r) {
  if (!r)
    return;
  memset(r, 0, sizeof *r);
  r->size = sizeof *r;
}

static const char *builtin_text(const char *name) {
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, name))
      return s->text;
  return NULL;
}

unsigned api_req_flags(const tilec_kernel_request *r) {
  return API_HAS_FIELD(r, tilec_kernel_request, flags) ? r->flags : 0;
}

/* The request's memo key: what identifies the kernel, then the problem and the config. */
static tilec_status request_key(const tilec_kernel_request *r, char *buf, size_t cap, uint64_t *h) {
  int n;
  const char *shape = r->shape ? r->shape : "", *dtype = r->dtype ? r->dtype : "",
             *cfg = r->config ? r->config : "";
  if (r->kernel)
    n = snprintf(buf, cap, "b:%s", r->kernel);
  else if (r->source)
    n = snprintf(buf, cap, "s:%016llx:%zu",
                 (unsigned long long)api_hash(r->source, strlen(r->source), API_HASH_SEED),
                 strlen(r->source));
  else
    n = snprintf(buf, cap, "i:%s", r->ir->hash);
  if (n < 0 || (size_t)n >= cap)
    return api_fail(TILEC_ERR_ARG, "tilec_kernel_get: kernel name too long");
  /* NOWAIT changes how a miss is answered, not which kernel: not part of the key */
  int m = snprintf(buf + n, cap - (size_t)n, "|%s|%s|%s|%x", shape, dtype, cfg,
                   api_req_flags(r) & ~(unsigned)TILEC_KERNEL_NOWAIT);
  if (m < 0 || (size_t)(n + m) >= cap)
    return api_fail(TILEC_ERR_ARG, "tilec_kernel_get: shape, dtype and config too long");
  *h = api_hash(buf, (size_t)(n + m), API_HASH_SEED);
  return TILEC_OK;
}

static tilec_status check_request(const tilec_context *ctx, const tilec_kernel_request *r,
                                  tilec_kernel **out) {
  if (!out)
    return api_fail(TILEC_ERR_ARG, "tilec_kernel_get: out is NULL");
  *out = NULL;
  if (!ctx || !r)
    return api_fail(TILEC_ERR_ARG, "tilec_kernel_get: ctx and req are required");
  tilec_status s = api_check_size("tilec_kernel_request", r->size,
                                  offsetof(tilec_kernel_request, flags), sizeof *r);
  if (s)
    return s;
  if (api_req_flags(r) & ~API_KERNEL_FLAGS)
    return api_fail(TILEC_ERR_ARG, "tilec_kernel_get: unknown flags %#x",
                    api_req_flags(r) & ~API_KERNEL_FLAGS);
  int n = !!r->kernel + !!r->source + !!r->ir;
  if (n != 1)
    return api_fail(TILEC_ERR_ARG,
                    "tilec_kernel_get: set exactly one of kernel, source and ir (%d are set)", n);
  return TILEC_OK;
}

/* Everything a miss works out before loading. */
typedef struct miss {
  ir_kernel *own; /* parsed here (NULL when the request's IR is used) */
  const ir_kernel *k;
  char hash[65];
  kn_shape shape;
  ir_config fixed, cfg;
  char *bucket;
  char tun[512]; /* the tunables' config text (the database's config column) */
  bool aligned;  /* TILEC_KERNEL_ALIGNED: the aligned variant */
  tilec_kernel_origin origin;
  ir_kernel *spec;
  char kkey[2048];
} miss;

static void miss_free(miss *m) {
  ir_kernel_free(m->own);
  ir_kernel_free(m->spec);
  free(m->bucket);
}

static tilec_status load_ir(const tilec_kernel_request *r, miss *m) {
  ir_diag d;
  if (r->ir) {
    m->k = r->ir->k;
    memcpy(m->hash, r->ir->hash, sizeof m->hash);
    return TILEC_OK;
  }
  const char *text = r->source;
  char file[160];
  if (r->kernel) {
    if (!(text = builtin_text(r->kernel)))
      return api_fail(TILEC_ERR_NOT_FOUND,
                      "kernel '%s' is not a built-in (matmul, attention, bsattention, bsmatmul)",
                      r->kernel);
    snprintf(file, sizeof file, "<builtin>/%s.tile", r->kernel);
  } else
    snprintf(file, sizeof file, "<source>");
  if (ir_parse(text, strlen(text), file, &m->own, &d) || ir_verify(m->own, &d))
    return api_fail(r->kernel ? TILEC_ERR_INTERNAL : TILEC_ERR_ARG, "%s", d.msg);
  m->k = m->own;
  at_err e = {0};
  if (at_kernel_hash(m->k, m->hash, &e))
    return api_fail(api_from_at(e.status), "%s", e.msg);
  return TILEC_OK;
}

/* The items a problem fixes: built-ins through kernels/problem.c; other kernels bind shape keys
 * that name const parameters, and dtype to their first type variable. */
static tilec_status problem(const tilec_kernel_request *r, miss *m) {
  char err[512];
  if (kn_shape_parse(r->shape ? r->shape : "", &m->shape, err, sizeof err))
    return api_fail(TILEC_ERR_SHAPE, "shape: %s", err);
  const ir_kernel *k = m->k;
  m->fixed.n = 0;
  if (kn_is_builtin(k->name) && !r->ir && !r->source) {
    if (kn_problem_config(k->name, &m->shape, r->dtype, &m->fixed, err, sizeof err))
      return api_fail(TILEC_ERR_SHAPE, "%s", err);
  } else {
    for (int i = 0; i < m->shape.n; i++) {
      const char *key = m->shape.kv[i].key;
      if (ir_sym_find(k, key, strlen(key)) < 0)
        return api_fail(TILEC_ERR_SHAPE, "shape key '%s' names nothing in kernel '%s'", key,
                        k->name);
    }
    if (kn_file_config(k, &m->shape, r->dtype, &m->fixed, err, sizeof err))
      return api_fail(TILEC_ERR_SHAPE, "%s", err);
  }
  at_err e = {0};
  at_status st = at_bucket_key(k, &m->shape, r->dtype, &m->bucket, &e);
  if (st)
    return api_fail(st == AT_ERR_ARG ? TILEC_ERR_SHAPE : api_from_at(st), "%s", e.msg);
  return TILEC_OK;
}

/* The database's winner for this device, toolchain, kernel and bucket. */
static tilec_status db_winner(tilec_context *ctx, miss *m, bool *found) {
  *found = false;
  if (!ctx->db)
    return TILEC_OK;
  at_key key = {ctx->device_key, ctx->toolchain, m->k->name, m->hash, m->bucket};
  at_rows rows = {0};
  at_err e = {0};
  pthread_mutex_lock(&ctx->db_mu);
  at_status st = at_db_winner(ctx->db, &key, &rows, &e);
  pthread_mutex_unlock(&ctx->db_mu);
  if (st == AT_MISS)
    return TILEC_OK;
  if (st)
    return api_fail(TILEC_ERR_DB, "database lookup: %s", e.msg);
  snprintf(m->tun, sizeof m->tun, "%s", rows.r[0].config);
  at_rows_free(&rows);
  *found = true;
  return TILEC_OK;
}

/* The model's best live point of sp (tilec tune's prior); the kernel's defaults (an empty
 * config text) when sp is NULL (it could not be built) or has no live point. */
static void heuristic(const at_space *sp, miss *m) {
  m->tun[0] = 0;
  int best = -1;
  for (int i = 0; sp && i < sp->n; i++) {
    const at_cand *c = &sp->c[i];
    if (c->pruned || isinf(c->prior_ms))
      continue;
    if (best < 0 || (!isnan(c->prior_ms) &&
                     (isnan(sp->c[best].prior_ms) || c->prior_ms < sp->c[best].prior_ms)))
      best = i;
  }
  if (best >= 0)
    snprintf(m->tun, sizeof m->tun, "%s", sp->c[best].config);
}

/* Configs of the nearest tuned buckets a miss considers. */
enum { API_NEAREST_MAX = 8 };

/* Whether config (a row's tunables) specializes for this problem: its constraints hold with the
 * problem's items. (A winner ran on this device, so its resources fit; only the problem
 * changed.) Cheaper than the space, which the nearest bucket's miss then never builds. */
static bool config_fits(const miss *m, const char *config) {
  ir_config cfg = m->fixed;
  ir_diag d;
  ir_kernel *spec = NULL;
  bool ok = !ir_config_parse(&cfg, config, &d) && !ir_specialize(m->k, &cfg, &spec, &d);
  ir_kernel_free(spec);
  return ok;
}

/* A stand-in for a missing winner: the winner of the nearest tuned bucket of the same kernel
 * (device, toolchain and IR as the request) within ctx->nearest (at_bucket_distance) whose
 * config specializes for this problem. Database errors only mean no stand-in. */
static bool nearest_winner(tilec_context *ctx, miss *m) {
  if (!ctx->db || ctx->nearest < 0)
    return false;
  at_key pat = {ctx->device_key, ctx->toolchain, m->k->name, m->hash, NULL};
  at_rows rows = {0};
  pthread_mutex_lock(&ctx->db_mu);
  at_status st = at_db_winners(ctx->db, &pat, &rows, NULL);
  pthread_mutex_unlock(&ctx->db_mu);
  at_bucket_winner *pairs = !st && rows.n > 0 ? calloc((size_t)rows.n, sizeof *pairs) : NULL;
  const char *out[API_NEAREST_MAX];
  int np = 0, nout = 0;
  bool found = false;
  for (int i = 0; pairs && i < rows.n; i++)
    pairs[np++] = (at_bucket_winner){rows.r[i].key.bucket, rows.r[i].config};
  if (np > 0 && !at_bucket_nearest(m->bucket, pairs, np, API_NEAREST_MAX, out, &nout, NULL)) {
    for (int i = 0; i < nout && !found; i++) {
      double d = INFINITY; /* of the nearest bucket this config won */
      for (int j = 0; j < np; j++)
        if (!strcmp(pairs[j].config, out[i]))
          d = fmin(d, at_bucket_distance(m->bucket, pairs[j].bucket));
      if (d > ctx->nearest)
        break; /* out is ordered by that distance */
      if (config_fits(m, out[i])) {
        snprintf(m->tun, sizeof m->tun, "%s", out[i]);
        found = true;
      }
    }
  }
  free(pairs);
  at_rows_free(&rows);
  return found;
}

/* Whether a background sweep of this request was started already (running or done: one per
 * request and context, so a sweep that finds no winner is not restarted by every later miss).
 * Joins the threads of finished sweeps on the way. */
static bool tuned_before(tilec_context *ctx, const char *rkey) {
  bool seen = false;
  pthread_mutex_lock(&ctx->mu);
  for (tilec_tuner *t = ctx->tuners; t; t = t->next) {
    if (t->started && !t->joined && atomic_load(&t->done)) {
      pthread_join(t->thread, NULL); /* done is its last step: this returns at once */
      t->joined = true;
    }
    seen |= t->rkey && !strcmp(t->rkey, rkey);
  }
  pthread_mutex_unlock(&ctx->mu);
  return seen;
}

static tilec_status choose_config(tilec_context *ctx, const tilec_kernel_request *r,
                                  const char *rkey, miss *m) {
  if (r->config) {
    snprintf(m->tun, sizeof m->tun, "%s", r->config);
    m->origin = TILEC_ORIGIN_EXPLICIT;
    return TILEC_OK;
  }
  bool found;
  tilec_status s = db_winner(ctx, m, &found);
  if (s)
    return s;
  if (found) {
    m->origin = TILEC_ORIGIN_DB;
    return TILEC_OK;
  }
  if (ctx->tune == TILEC_TUNE_SYNC) {
    tilec_tune_opts o;
    tilec_tune_opts_init(&o);
    o.budget = ctx->tune_budget;
    tilec_tuner *t = NULL;
    if ((s = api_tuner_launch(ctx, r, &o, false, NULL, &t)))
      return s;
    tilec_tuner_destroy(t);
    if ((s = db_winner(ctx, m, &found)))
      return s;
    if (found) {
      m->origin = TILEC_ORIGIN_TUNED;
      return TILEC_OK;
    }
  } else if (ctx->tune == TILEC_TUNE_BACKGROUND && !tuned_before(ctx, rkey)) {
    tilec_tune_opts o;
    tilec_tune_opts_init(&o);
    o.budget = ctx->tune_budget;
    tilec_tuner *t = NULL;
    if (!api_tuner_launch(ctx, r, &o, true, rkey, &t)) { /* owned by ctx->tuners */
      pthread_mutex_lock(&ctx->mu);
      t->next = ctx->tuners;
      ctx->tuners = t;
      pthread_mutex_unlock(&ctx->mu);
    }
  }
  if (nearest_winner(ctx, m)) {
    m->origin = TILEC_ORIGIN_NEAREST;
    return TILEC_OK;
  }
  at_space sp = {0};
  bool have_space = !at_space_build(m->k, &m->fixed, &m->shape, &ctx->model, &sp, NULL);
  heuristic(have_space ? &sp : NULL, m);
  m->origin = TILEC_ORIGIN_HEURISTIC;
  at_space_free(&sp);
  return TILEC_OK;
}

/* "TA=bf16,D=64,BM=128,..." of every item of c, in order; returns the length it needed (a
 * value >= cap means the text was cut). */
static int config_text(const ir_config *c, char *buf, size_t cap) {
  int n = 0;
  buf[0] = 0;
  for (int i = 0; i < c->n && (size_t)n < cap; i++) {
    const ir_config_item *it = &c->items[i];
    const char *sep = i ? "," : "";
    if (it->kind != IR_VOID)
      n += snprintf(buf + n, cap - (size_t)n, "%s%s=%s", sep, it->name, ir_kind_name(it->kind));
    else if (it->value.isf)
      n += snprintf(buf + n, cap - (size_t)n, "%s%s=%.17g", sep, it->name, it->value.f);
    else
      n += snprintf(buf + n, cap - (size_t)n, "%s%s=%lld", sep, it->name, (long long)it->value.i);
  }
  return n;
}

/* Binds the config and specializes; the kernel key names the code: IR hash, arch, items. */
static tilec_status specialize(tilec_context *ctx, miss *m) {
  ir_diag d;
  m->cfg = m->fixed;
  if (m->tun[0] && ir_config_parse(&m->cfg, m->tun, &d))
    return api_fail(TILEC_ERR_ARG, "config: %s", d.msg);
  ir_status is = ir_specialize(m->k, &m->cfg, &m->spec, &d);
  if (is)
    return api_fail(is == IR_ERR_CONFIG || is == IR_ERR_LIMIT ? TILEC_ERR_SHAPE : TILEC_ERR_COMPILE,
                    "%s", d.msg);
  int n = snprintf(m->kkey, sizeof m->kkey, "%s|%s%s|", m->hash, ctx->arch,
                   m->aligned ? "|aligned" : "");
  n += config_text(&m->cfg, m->kkey + n, sizeof m->kkey - (size_t)n);
  if (n >= (int)sizeof m->kkey)
    return api_fail(TILEC_ERR_ARG, "config too long");
  return TILEC_OK;
}

/* The image's entry point, CTA size and shared memory, from the blob's meta JSON. */
static bool parse_meta(const char *meta, char *entry, size_t cap, int *threads, int *smem) {
  const char *p = meta ? strstr(meta, "\"entry\": \"") : NULL;
  if (!p)
    return false;
  p += 10;
  size_t n = strcspn(p, "\"");
  if (n == 0 || n >= cap)
    return false;
  memcpy(entry, p, n);
  entry[n] = 0;
  const char *t = strstr(meta, "\"threads\": "), *s = strstr(meta, "\"smem_bytes\": ");
  return t && s && sscanf(t + 11, "%d", threads) == 1 && sscanf(s + 14, "%d", smem) == 1 &&
         *threads > 0;
}

/* The cubin: the database's under the compile key of this code (the whole binding and the
 * variant: what `tilec tune` stored for the row, or an earlier miss), else compiled now and, on
 * a writable database, stored for the next process. */
static tilec_status get_image(tilec_context *ctx, miss *m, tilec_kernel *k, void **image,
                              size_t *size, int *threads, int *smem, bool *compiled) {
  at_err e = {0};
  char key[65] = "", code[1024];
  *compiled = false;
  if (at_code_config(m->k, &m->cfg, code, sizeof code, &e) ||
      at_compile_key_variant(m->hash, code, ctx->arch, ctx->toolchain,
                             m->aligned ? "aligned" : NULL, key, &e))
    return api_fail(api_from_at(e.status), "%s", e.msg);
  if (ctx->db) {
    char *meta = NULL;
    pthread_mutex_lock(&ctx->db_mu);
    at_status st = at_db_get_blob(ctx->db, key, image, size, &meta, &e);
    pthread_mutex_unlock(&ctx->db_mu);
    if (st == AT_OK) {
      bool ok = parse_meta(meta, k->entry, sizeof k->entry, threads, smem);
      free(meta);
      if (ok)
        return TILEC_OK;
      free(*image);
      *image = NULL;
    } else if (st != AT_MISS)
      return api_fail(TILEC_ERR_DB, "database blob: %s", e.msg);
  }
  at_compiled c;
  at_status st = at_compile_flags(m->k, &m->cfg, ctx->arch, ctx->model.smem_per_block,
                                  m->aligned ? CG_ALIGNED : 0, &c, &e);
  if (st) {
    at_compiled_free(&c);
    return api_fail(api_from_at(st), "%s", e.msg);
  }
  if (c.status != AT_RUN_COMPILED) {
    tilec_status s = api_fail(c.status == AT_RUN_PRUNED ? TILEC_ERR_SHAPE : TILEC_ERR_COMPILE,
                              "kernel '%s' config %s: %s", m->k->name, m->tun, c.detail);
    at_compiled_free(&c);
    return s;
  }
  snprintf(k->entry, sizeof k->entry, "%s", c.entry);
  *threads = c.threads;
  *smem = c.smem_bytes;
  *image = c.cubin;
  *size = c.cubin_size;
  *compiled = true;
  if (ctx->db && !(ctx->flags & TILEC_CONTEXT_READONLY)) {
    char meta[384];
    snprintf(meta, sizeof meta,
             "{\"entry\": \"%s\", \"threads\": %d, \"smem_bytes\": %d, \"regs\": %d, "
             "\"spills\": %d}",
             c.entry, c.threads, c.smem_bytes, c.regs, c.spills);
    pthread_mutex_lock(&ctx->db_mu);
    at_db_put_blob(ctx->db, key, c.cubin, c.cubin_size, meta, NULL); /* a cache: best effort */
    pthread_mutex_unlock(&ctx->db_mu);
  }
  c.cubin = NULL; /* moved to *image */
  at_compiled_free(&c);
  return TILEC_OK;
}

static tilec_status load_module(tilec_context *ctx, tilec_kernel *k, const void *image, size_t size,
                                int threads, int smem) {
  k->launch.block[0] = (uint32_t)threads;
  k->launch.block[1] = k->launch.block[2] = 1;
  k->launch.smem = (uint32_t)(smem > 0 ? smem : 0);
  if (!ctx->rt)
    return TILEC_OK;
  rt_err e = {0};
  rt_status s;
  rt_func_attrs a;
  if ((s = rt_module_load(ctx->rt, image, size, &k->mod, &e)) ||
      (s = rt_module_func(k->mod, k->entry, &k->fn, &e)) ||
      (s = rt_func_attrs_get(ctx->rt, k->fn, &a, &e)))
    return api_fail(api_from_rt(s) == TILEC_ERR_SHAPE ? TILEC_ERR_CUDA : api_from_rt(s), "%s",
                    e.msg);
  /* The stored size counts static shared memory too; launches give the dynamic part. */
  int dyn = smem - (a.static_smem_bytes > 0 ? a.static_smem_bytes : 0);
  k->launch.smem = (uint32_t)(dyn > 0 ? dyn : 0);
  if ((s = rt_func_set_dynamic_smem(ctx->rt, k->fn, k->launch.smem, &e)))
    return api_fail(api_from_rt(s) == TILEC_ERR_SHAPE ? TILEC_ERR_CUDA : api_from_rt(s), "%s",
                    e.msg);
  return TILEC_OK;
}

static char *join_config(const miss *m) {
  char buf[2048];
  config_text(&m->cfg, buf, sizeof buf);
  return strdup(buf);
}

void api_kernel_free(tilec_kernel *k) {
  tilec_context *ctx = k->ctx;
  rt_module_unload(k->mod);
  ir_kernel_free(k->spec);
  free(k->key), free(k->name), free(k->config), free(k->bucket);
  free(k);
  if (ctx)
    api_ctx_release(ctx);
}

static tilec_status build_kernel(tilec_context *ctx, miss *m, tilec_kernel **out) {
  double t0 = now_ms();
  tilec_kernel *k = calloc(1, sizeof *k);
  if (!k)
    return api_fail(TILEC_ERR_OOM, "out of memory");
  atomic_init(&k->refs, 1);
  void *image = NULL;
  size_t size = 0;
  int threads = 0, smem = 0;
  bool compiled = false;
  tilec_status s = get_image(ctx, m, k, &image, &size, &threads, &smem, &compiled);
  if (!s)
    s = load_module(ctx, k, image, size, threads, smem);
  free(image);
  if (s)
    goto fail;
  k->key = strdup(m->kkey);
  k->h = api_hash(m->kkey, strlen(m->kkey), API_HASH_SEED);
  k->name = strdup(m->k->name);
  k->config = join_config(m);
  k->bucket = strdup(m->bucket);
  if (!k->key || !k->name || !k->config || !k->bucket) {
    s = api_fail(TILEC_ERR_OOM, "out of memory");
    goto fail;
  }
  k->origin = m->origin == TILEC_ORIGIN_DB && compiled ? TILEC_ORIGIN_DB_COMPILED : m->origin;
  k->aligned = m->aligned;
  for (int i = 0; i < m->spec->nargs; i++) {
    const ir_arg *a = &m->spec->args[i];
    bool is_const = a->kind == ARG_SCALAR && m->k->syms[m->k->args[i].sym].kind == SYM_CONST;
    k->user_arg[i] = (int8_t)(is_const ? -1 : k->nuser++);
  }
  k->spec = m->spec;
  m->spec = NULL;
  k->ctx = ctx;
  api_ctx_retain(ctx);
  pthread_mutex_lock(&ctx->mu);
  ctx->misses++;
  if (compiled)
    ctx->compiles++;
  else
    ctx->db_loads++;
  pthread_mutex_unlock(&ctx->mu);
  k->load_ms = now_ms() - t0;
  *out = k;
  return TILEC_OK;
fail:
  k->ctx = NULL;
  api_kernel_free(k);
  return s;
}

tilec_status tilec_kernel_get(tilec_context *ctx, const tilec_kernel_request *req,
                              tilec_kernel **out) {
  tilec_status s = check_request(ctx, req, out);
  if (s)
    return s;
  char rkey[4096];
  uint64_t rh = 0;
  if ((s = request_key(req, rkey, sizeof rkey, &rh)))
    return s;
  pthread_mutex_lock(&ctx->mu);
  const char *kkey = api_req_find_locked(ctx, rkey, rh);
  tilec_kernel *k =
      kkey ? api_cache_find_locked(ctx, kkey, api_hash(kkey, strlen(kkey), API_HASH_SEED)) : NULL;
  if (k) {
    atomic_fetch_add(&k->refs, 1);
    api_lru_touch_locked(ctx, k);
    ctx->hits++;
    pthread_mutex_unlock(&ctx->mu);
    *out = k;
    return TILEC_OK;
  }
  pthread_mutex_unlock(&ctx->mu);
  if (api_req_flags(req) & TILEC_KERNEL_NOWAIT)
    return api_nowait_miss(ctx, req, rkey, rh);

  miss m = {0};
  m.aligned = api_req_flags(req) & TILEC_KERNEL_ALIGNED;
  if ((s = load_ir(req, &m)) || (s = problem(req, &m)) || (s = choose_config(ctx, req, rkey, &m)) ||
      (s = specialize(ctx, &m)))
    goto done;
  uint64_t kh = api_hash(m.kkey, strlen(m.kkey), API_HASH_SEED);
  pthread_mutex_lock(&ctx->mu); /* the same code loaded for another request? */
  if ((k = api_cache_find_locked(ctx, m.kkey, kh))) {
    atomic_fetch_add(&k->refs, 1);
    api_lru_touch_locked(ctx, k);
    api_req_put_locked(ctx, rkey, rh, m.kkey);
    ctx->hits++;
    pthread_mutex_unlock(&ctx->mu);
    *out = k;
    goto done;
  }
  pthread_mutex_unlock(&ctx->mu);
  if ((s = build_kernel(ctx, &m, &k)))
    goto done;
  pthread_mutex_lock(&ctx->mu);
  tilec_kernel *evicted = NULL, *other = api_cache_find_locked(ctx, m.kkey, kh);
  if (other) { /* another thread loaded it meanwhile: keep theirs */
    atomic_fetch_add(&other->refs, 1);
    api_lru_touch_locked(ctx, other);
  } else
    evicted = api_cache_insert_locked(ctx, k);
  api_req_put_locked(ctx, rkey, rh, m.kkey);
  pthread_mutex_unlock(&ctx->mu);
  api_release_chain(evicted);
  if (other) {
    tilec_kernel_release(k);
    k = other;
  }
  *out = k;
done:
  miss_free(&m);
  return s;
}

tilec_kernel *tilec_kernel_retain(tilec_kernel *k) {
  if (k)
    atomic_fetch_add(&k->refs, 1);
  return k;
}

/* ---- many at once ---------------------------------------------------------------------------- */

typedef struct many {
  tilec_context *ctx;
  const tilec_kernel_request *const *reqs;
  tilec_kernel **out;
  tilec_status *st;
  char (*msg)[512]; /* each failure's message (tilec_errmsg is per thread) */
  atomic_int next;
  int n;
} many;

static void *many_worker(void *arg) {
  many *w = arg;
  for (int i; (i = atomic_fetch_add(&w->next, 1)) < w->n;) {
    w->st[i] = tilec_kernel_get(w->ctx, w->reqs[i], &w->out[i]);
    if (w->st[i])
      snprintf(w->msg[i], sizeof w->msg[i], "%s", tilec_errmsg(w->ctx));
  }
  return NULL;
}

tilec_status tilec_kernel_get_many(tilec_context *ctx, const tilec_kernel_request *const *reqs,
                                   int n, tilec_kernel **out, int threads, int *failed) {
  enum { MAX_THREADS = 64 };
  if (failed)
    *failed = -1;
  if (!ctx || n < 0 || (n > 0 && (!reqs || !out)))
    return api_fail(TILEC_ERR_ARG, "tilec_kernel_get_many: ctx is required, n >= 0, and reqs "
                                   "and out when n > 0");
  for (int i = 0; i < n; i++)
    out[i] = NULL;
  for (int i = 0; i < n; i++)
    if (!reqs[i])
      return api_fail(TILEC_ERR_ARG, "tilec_kernel_get_many: reqs[%d] is NULL", i);
  if (n == 0)
    return TILEC_OK;
  if (threads <= 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    threads = cpus > 0 ? (int)(cpus < MAX_THREADS ? cpus : MAX_THREADS) : 1;
  }
  threads = threads < n ? threads : n;
  threads = threads < MAX_THREADS ? threads : MAX_THREADS;
  many w = {.ctx = ctx, .reqs = reqs, .out = out, .n = n};
  atomic_init(&w.next, 0);
  w.st = calloc((size_t)n, sizeof *w.st);
  w.msg = calloc((size_t)n, sizeof *w.msg);
  if (!w.st || !w.msg) {
    free(w.st), free(w.msg);
    return api_fail(TILEC_ERR_OOM, "tilec_kernel_get_many: out of memory");
  }
  pthread_t tid[MAX_THREADS];
  int started = 0;
  while (started + 1 < threads && !pthread_create(&tid[started], NULL, many_worker, &w))
    started++; /* fewer threads when the system refuses more: the work still gets done */
  many_worker(&w);
  for (int t = 0; t < started; t++)
    pthread_join(tid[t], NULL);
  tilec_status s = TILEC_OK;
  for (int i = 0; i < n && !s; i++)
    if (w.st[i]) {
      s = api_fail(w.st[i], "request %d: %s", i, w.msg[i]);
      if (failed)
        *failed = i;
    }
  free(w.st), free(w.msg);
  return s;
}

void tilec_kernel_release(tilec_kernel *k) {
  if (k && atomic_fetch_sub(&k->refs, 1) == 1)
    api_kernel_free(k);
}

tilec_status tilec_kernel_info_get(const tilec_kernel *k, tilec_kernel_info *info) {
  if (!k || !info)
    return api_fail(TILEC_ERR_ARG, "tilec_kernel_info_get: kernel and info are required");
  tilec_status s = api_check_size("tilec_kernel_info", info->size,
                                  offsetof(tilec_kernel_info, flags), sizeof *info);
  if (s)
    return s;
  info->name = k->name;
  info->config = k->config;
  info->bucket = k->bucket;
  info->entry = k->entry;
  info->origin = k->origin;
  info->nargs = k->nuser;
  info->threads = (int)k->launch.block[0];
  info->smem_bytes = (int)k->launch.smem;
  info->load_ms = k->load_ms;
  if (API_HAS_FIELD(info, tilec_kernel_info, flags))
    info->flags = k->aligned ? TILEC_KERNEL_ALIGNED : 0;
  return TILEC_OK;
}

tilec_status tilec_kernel_value(const tilec_kernel *k, const char *name, int64_t *out) {
  if (!k || !name || !out)
    return api_fail(TILEC_ERR_ARG, "tilec_kernel_value: kernel, name and out are required");
  size_t n = strlen(name);
  for (const char *p = k->config; *p;) {
    size_t len = strcspn(p, ",");
    if (len > n && !strncmp(p, name, n) && p[n] == '=') {
      char *end;
      long long v = strtoll(p + n + 1, &end, 10);
      if (end != p + n + 1 && (*end == ',' || !*end)) {
        *out = v;
        return TILEC_OK;
      }
    }
    p += len + (p[len] == ',');
  }
  return api_fail(TILEC_ERR_NOT_FOUND, "kernel '%s' has no integer item '%s' (config %s)", k->name,
                  name, k->config);
}

/* ---- launches ---------------------------------------------------------------------------- */

tilec_arg tilec_arg_tensor(uint64_t ptr, int rank, const int64_t *shape) {
  tilec_arg a = {.kind = TILEC_ARG_TENSOR, .ptr = ptr, .rank = rank};
  for (int i = 0; shape && i < rank && i < TILEC_MAX_RANK; i++)
    a.shape[i] = shape[i];
  return a;
}
tilec_arg tilec_arg_ptr(uint64_t ptr) { return (tilec_arg){.kind = TILEC_ARG_PTR, .ptr = ptr}; }
tilec_arg tilec_arg_int(int64_t v) { return (tilec_arg){.kind = TILEC_ARG_SCALAR, .i = v}; }
tilec_arg tilec_arg_float(double v) {
  return (tilec_arg){.kind = TILEC_ARG_SCALAR, .is_float = 1, .f = v};
}

/* The caller's arguments as the packer's, const parameters filled in. */
static tilec_status to_rt(const tilec_kernel *k, const tilec_arg *args, int nargs, rt_argval *out) {
  if (!args && nargs)
    return api_fail(TILEC_ERR_ARG, "args is NULL");
  if (nargs != k->nuser)
    return api_fail(TILEC_ERR_SHAPE, "kernel '%s' takes %d launch arguments, got %d", k->name,
                    k->nuser, nargs);
  for (int i = 0; i < k->spec->nargs; i++) {
    rt_argval *v = &out[i];
    const ir_arg *ka = &k->spec->args[i];
    if (k->user_arg[i] < 0) {
      *v = (rt_argval){.kind = ARG_SCALAR};
      continue;
    }
    const tilec_arg *a = &args[k->user_arg[i]];
    if ((unsigned)a->kind > TILEC_ARG_SCALAR)
      return api_fail(TILEC_ERR_ARG, "argument '%s': unknown kind %d", ka->name, (int)a->kind);
    *v = (rt_argval){.kind = (ir_arg_kind)a->kind, .dptr = a->ptr};
    if (a->kind == TILEC_ARG_SCALAR)
      v->scalar = a->is_float ? (ir_num){.isf = true, .f = a->f} : (ir_num){.i = a->i};
    if (a->kind != TILEC_ARG_TENSOR)
      continue;
    if (a->rank < 1 || a->rank > TILEC_MAX_RANK)
      return api_fail(TILEC_ERR_SHAPE, "tensor '%s': rank %d is outside 1 .. %d", ka->name, a->rank,
                      TILEC_MAX_RANK);
    v->rank = a->rank;
    bool contiguous = true;
    for (int d = 0; d < a->rank; d++) {
      v->shape[d] = a->shape[d];
      if (a->stride[d])
        contiguous = false;
    }
    int64_t st = 1;
    for (int d = a->rank - 1; d >= 0; d--) {
      v->stride[d] = contiguous ? st : a->stride[d];
      st *= a->shape[d] > 0 ? a->shape[d] : 1;
    }
  }
  return TILEC_OK;
}

/* Checks and packs a launch's arguments (grid included). */
static tilec_status pack(const tilec_kernel *k, const tilec_arg *args, int nargs, rt_params *p) {
  rt_argval v[IR_MAX_ARGS];
  rt_err e = {0};
  tilec_status s = to_rt(k, args, nargs, v);
  if (s)
    return s;
  int bad;
  if (k->aligned && !rt_args_aligned(k->spec, v, k->spec->nargs, &bad))
    return api_fail(TILEC_ERR_ARG,
                    "kernel '%s' is the aligned variant (TILEC_KERNEL_ALIGNED) and tensor '%s' "
                    "breaks its promise: address, strides and last extent must be multiples of "
                    "16 bytes and the last stride 1",
                    k->name, bad >= 0 ? k->spec->args[bad].name : "?");
  rt_status rs = rt_params_pack(k->spec, v, k->spec->nargs, p, &e);
  return rs ? api_fail(api_from_rt(rs), "%s", e.msg) : TILEC_OK;
}

tilec_status tilec_kernel_grid(const tilec_kernel *k, const tilec_arg *args, int nargs,
                               uint32_t grid[3]) {
  if (!k || !grid)
    return api_fail(TILEC_ERR_ARG, "tilec_kernel_grid: kernel and grid are required");
  rt_params p;
  tilec_status s = pack(k, args, nargs, &p);
  if (!s)
    memcpy(grid, p.grid, sizeof p.grid);
  return s;
}

tilec_status tilec_launch(tilec_context *ctx, tilec_kernel *k, const tilec_arg *args, int nargs,
                          void *stream) {
  if (!ctx || !k)
    return api_fail(TILEC_ERR_ARG, "tilec_launch: ctx and kernel are required");
  if (k->ctx != ctx)
    return api_fail(TILEC_ERR_ARG, "tilec_launch: kernel '%s' belongs to another context", k->name);
  if (!ctx->rt)
    return api_fail(TILEC_ERR_NO_DRIVER, "tilec_launch: the context has no GPU (NO_GPU)");
  rt_params p;
  tilec_status s = pack(k, args, nargs, &p);
  if (s)
    return s;
  void *ptrs[RT_MAX_PARAMS];
  rt_params_pointers(&p, ptrs);
  rt_launch_cfg cfg = k->launch;
  memcpy(cfg.grid, p.grid, sizeof cfg.grid);
  rt_err e = {0};
  rt_status rs = rt_launch_on(ctx->rt, stream ? stream : ctx->stream, k->fn, &cfg, ptrs, &e);
  if (rs)
    return api_fail(api_from_rt(rs) == TILEC_ERR_SHAPE ? TILEC_ERR_LAUNCH : api_from_rt(rs), "%s",
                    e.msg);
  return TILEC_OK;
}
