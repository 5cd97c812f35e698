/* api/context.c — contexts, status codes and messages, and the LRU of loaded kernels.
 *
 * A context owns the CUDA side (rt_ctx), the device identity and database keys, the database
 * handle, and two maps under one mutex: request key -> kernel key (the memo that lets a hit
 * skip parsing and the database), and kernel key (IR hash, arch, full config) -> loaded
 * kernel, whose entries form the LRU. Kernels are reference-counted; so is the context (one
 * reference per live kernel), so eviction and destroy never free what a caller still holds.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "autotune/compile.h"
#include "ir/version.h"

_Static_assert(TILEC_VERSION_MAJOR * 10000 + TILEC_VERSION_MINOR * 100 + TILEC_VERSION_PATCH ==
                   TILEC_VERSION_NUMBER,
               "tilec.h and ir/version.h disagree on the version");

static _Thread_local char msg[2048];

const char *tilec_version(void) { return TILEC_VERSION_STRING; }

const char *tilec_status_name(tilec_status s) {
  static const char *const names[] = {"ok",        "arg",       "not_found",    "shape",
                                      "no_driver", "no_device", "no_toolchain", "compile",
                                      "launch",    "cuda",      "db",           "readonly",
                                      "busy",      "oom",       "internal"};
  if ((unsigned)s >= sizeof names / sizeof names[0])
    return "unknown";
  return names[s];
}

const char *tilec_errmsg(const tilec_context *ctx) {
  (void)ctx;
  return msg;
}

tilec_status api_fail(tilec_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return s;
}

char *api_msgbuf(size_t *cap) {
  *cap = sizeof msg;
  return msg;
}

tilec_status api_from_rt(rt_status s) {
  switch (s) {
  case RT_OK:
    return TILEC_OK;
  case RT_ERR_NO_DRIVER:
    return TILEC_ERR_NO_DRIVER;
  case RT_ERR_NO_DEVICE:
    return TILEC_ERR_NO_DEVICE;
  case RT_ERR_NO_LIBRARY:
    return TILEC_ERR_NO_TOOLCHAIN;
  case RT_ERR_OOM:
    return TILEC_ERR_OOM;
  case RT_ERR_LAUNCH:
    return TILEC_ERR_LAUNCH;
  case RT_ERR_COMPILE:
    return TILEC_ERR_COMPILE;
  case RT_ERR_ARG:
    return TILEC_ERR_SHAPE;
  default:
    return TILEC_ERR_CUDA;
  }
}

tilec_status api_from_at(at_status s) {
  switch (s) {
  case AT_OK:
    return TILEC_OK;
  case AT_ERR_ARG:
    return TILEC_ERR_ARG;
  case AT_ERR_OOM:
    return TILEC_ERR_OOM;
  case AT_ERR_ENV:
    return TILEC_ERR_NO_TOOLCHAIN;
  case AT_ERR_PERM:
    return TILEC_ERR_READONLY;
  case AT_ERR_INTERNAL:
    return TILEC_ERR_INTERNAL;
  default:
    return TILEC_ERR_DB;
  }
}

uint64_t api_hash(const void *p, size_t n, uint64_t h) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

tilec_status api_check_size(const char *what, size_t size, size_t min, size_t max) {
  if (size < min || size > max)
    return api_fail(TILEC_ERR_ARG,
                    "%s: size is %zu; set it to sizeof the struct (%zu in this library; the "
                    "oldest accepted is %zu)",
                    what, size, max, min);
  return TILEC_OK;
}

/* ---- contexts -------------------------------------------------------------------------- */

void tilec_context_opts_init(tilec_context_opts *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->cache_capacity = API_DEFAULT_CAPACITY;
}

static tilec_status open_gpu(tilec_context *c, const tilec_context_opts *o) {
  rt_err e = {0};
  rt_status s;
  if (o->flags & TILEC_CONTEXT_ADOPT)
    s = rt_ctx_adopt(o->cu_context, o->cu_stream, &c->rt, &e);
  else
    s = rt_ctx_open(o->device, 0, &c->rt, &e);
  if (s)
    return api_fail(api_from_rt(s), "%s", e.msg);
  c->stream = o->cu_stream;
  if ((s = rt_device_query(rt_ctx_ordinal(c->rt), &c->dev, &e)))
    return api_fail(api_from_rt(s), "%s", e.msg);
  snprintf(c->device_key, sizeof c->device_key, "%s", c->dev.key);
  snprintf(c->arch, sizeof c->arch, "%s", o->arch ? o->arch : c->dev.arch);
  return TILEC_OK;
}

static tilec_status open_model(tilec_context *c) {
  at_err e = {0};
  if (at_device_for_arch(c->arch, &c->model, &e))
    return api_fail(TILEC_ERR_ARG, "arch: %s", e.msg);
  if (c->rt) { /* the real device's limits, as tilec tune uses them */
    c->model.sm_count = c->dev.sm_count;
    if (c->dev.smem_per_block_optin > 0)
      c->model.smem_per_block = c->dev.smem_per_block_optin;
    if (c->dev.smem_per_sm > 0)
      c->model.smem_per_sm = c->dev.smem_per_sm;
  }
  return TILEC_OK;
}

static tilec_status open_db(tilec_context *c, const tilec_context_opts *o) {
  if (c->flags & TILEC_CONTEXT_NO_DB)
    return TILEC_OK;
  at_err e = {0};
  char *path = NULL;
  if (o->db_path)
    snprintf(c->db_path, sizeof c->db_path, "%s", o->db_path);
  else {
    at_status st = at_db_default_path(&path, !(c->flags & TILEC_CONTEXT_READONLY), &e);
    if (st)
      return api_fail(api_from_at(st), "database: %s", e.msg);
    snprintf(c->db_path, sizeof c->db_path, "%s", path);
    free(path);
  }
  bool ro = c->flags & TILEC_CONTEXT_READONLY;
  at_status st = at_db_open(c->db_path, ro ? AT_DB_READONLY : 0, &c->db, &e);
  if (st == AT_MISS && ro) { /* a read-only context over no file: an empty database */
    c->db = NULL;
    return TILEC_OK;
  }
  if (st)
    return api_fail(TILEC_ERR_DB, "database %s: %s", c->db_path, e.msg);
  return TILEC_OK;
}

tilec_status tilec_context_create(const tilec_context_opts *opts, tilec_context **out) {
  if (!out)
    return api_fail(TILEC_ERR_ARG, "tilec_context_create: out is NULL");
  *out = NULL;
  tilec_context_opts def;
  tilec_context_opts_init(&def);
  tilec_context_opts o = def;
  if (opts) {
    tilec_status s = api_check_size("tilec_context_opts", opts->size,
                                    offsetof(tilec_context_opts, nearest), sizeof o);
    if (s)
      return s;
    memcpy(&o, opts, opts->size); /* a struct from before a later field keeps its default */
  }
  if (isnan(o.nearest))
    return api_fail(TILEC_ERR_ARG, "tilec_context_create: nearest is NaN");
  if (o.cache_capacity < 0 || o.tune_budget < 0)
    return api_fail(TILEC_ERR_ARG,
                    "tilec_context_create: cache_capacity %d and tune_budget %d must be >= 0",
                    o.cache_capacity, o.tune_budget);
  if ((unsigned)o.tune > TILEC_TUNE_BACKGROUND)
    return api_fail(TILEC_ERR_ARG, "tilec_context_create: unknown tune policy %d", (int)o.tune);
  if (o.flags & ~(unsigned)(TILEC_CONTEXT_READONLY | TILEC_CONTEXT_NO_DB | TILEC_CONTEXT_ADOPT |
                            TILEC_CONTEXT_NO_GPU))
    return api_fail(TILEC_ERR_ARG, "tilec_context_create: unknown flags 0x%x", o.flags);
  if ((o.flags & TILEC_CONTEXT_NO_GPU) && !o.arch)
    return api_fail(TILEC_ERR_ARG, "tilec_context_create: a NO_GPU context needs an arch");
  if (o.device < 0)
    return api_fail(TILEC_ERR_NO_DEVICE, "tilec_context_create: device %d is negative", o.device);
  if (o.tune != TILEC_TUNE_NEVER && (o.flags & (TILEC_CONTEXT_READONLY | TILEC_CONTEXT_NO_DB)))
    return api_fail(TILEC_ERR_READONLY,
                    "tilec_context_create: tuning writes the database; a read-only context or "
                    "one without a database cannot tune");
  tilec_context *c = calloc(1, sizeof *c);
  if (!c)
    return api_fail(TILEC_ERR_OOM, "out of memory");
  atomic_init(&c->refs, 1);
  c->flags = o.flags;
  c->tune = o.tune;
  c->tune_budget = o.tune_budget > 0 ? o.tune_budget : API_DEFAULT_TUNE_BUDGET;
  c->nearest = o.nearest == 0 ? API_DEFAULT_NEAREST : o.nearest;
  c->capacity = o.cache_capacity ? o.cache_capacity : API_DEFAULT_CAPACITY;
  pthread_mutex_init(&c->mu, NULL);
  pthread_mutex_init(&c->db_mu, NULL);
  pthread_cond_init(&c->job_cv, NULL);
  tilec_status s = TILEC_OK;
  if (o.flags & TILEC_CONTEXT_NO_GPU) {
    snprintf(c->arch, sizeof c->arch, "%s", o.arch);
    snprintf(c->device_key, sizeof c->device_key, "compile-only|%s", o.arch);
  } else if ((s = open_gpu(c, &o)))
    goto fail;
  if ((s = open_model(c)) || (s = open_db(c, &o)))
    goto fail;
  at_toolchain_key(c->rt ? c->dev.driver_version : 0, c->toolchain, sizeof c->toolchain);
  *out = c;
  return TILEC_OK;
fail:
  at_db_close(c->db);
  rt_ctx_close(c->rt);
  pthread_mutex_destroy(&c->mu);
  pthread_mutex_destroy(&c->db_mu);
  free(c);
  return s;
}

void api_ctx_retain(tilec_context *ctx) { atomic_fetch_add(&ctx->refs, 1); }

void api_ctx_release(tilec_context *ctx) {
  if (atomic_fetch_sub(&ctx->refs, 1) != 1)
    return;
  for (int i = 0; i < API_BUCKETS; i++)
    for (api_req *r = ctx->rmap[i], *n; r; r = n) {
      n = r->next;
      free(r->key), free(r->kkey), free(r);
    }
  at_db_close(ctx->db);
  rt_ctx_close(ctx->rt);
  pthread_cond_destroy(&ctx->job_cv);
  pthread_mutex_destroy(&ctx->mu);
  pthread_mutex_destroy(&ctx->db_mu);
  free(ctx);
}

void tilec_context_destroy(tilec_context *ctx) {
  if (!ctx)
    return;
  pthread_mutex_lock(&ctx->mu);
  struct tilec_tuner *t = ctx->tuners;
  ctx->tuners = NULL;
  pthread_mutex_unlock(&ctx->mu);
  while (t) {
    struct tilec_tuner *n = t->next;
    tilec_tuner_destroy(t);
    t = n;
  }
  api_jobs_close(ctx); /* waits for background compiles (TILEC_KERNEL_NOWAIT) */
  /* Drop the cache's references; kernels held by callers live on (and keep ctx alive). */
  pthread_mutex_lock(&ctx->mu);
  tilec_kernel *k = ctx->lru_head;
  ctx->lru_head = ctx->lru_tail = NULL;
  memset(ctx->kmap, 0, sizeof ctx->kmap);
  ctx->size = 0;
  pthread_mutex_unlock(&ctx->mu);
  while (k) {
    tilec_kernel *n = k->lnext;
    k->cached = false;
    tilec_kernel_release(k);
    k = n;
  }
  api_ctx_release(ctx);
}

/* ---- the maps ---------------------------------------------------------------------------- */

static void lru_unlink(tilec_context *ctx, tilec_kernel *k) {
  if (k->lprev)
    k->lprev->lnext = k->lnext;
  else
    ctx->lru_head = k->lnext;
  if (k->lnext)
    k->lnext->lprev = k->lprev;
  else
    ctx->lru_tail = k->lprev;
  k->lprev = k->lnext = NULL;
}

static void lru_push(tilec_context *ctx, tilec_kernel *k) {
  k->lprev = NULL;
  k->lnext = ctx->lru_head;
  if (ctx->lru_head)
    ctx->lru_head->lprev = k;
  ctx->lru_head = k;
  if (!ctx->lru_tail)
    ctx->lru_tail = k;
}

void api_lru_touch_locked(tilec_context *ctx, tilec_kernel *k) {
  if (ctx->lru_head == k)
    return;
  lru_unlink(ctx, k);
  lru_push(ctx, k);
}

tilec_kernel *api_cache_find_locked(tilec_context *ctx, const char *kkey, uint64_t h) {
  for (tilec_kernel *k = ctx->kmap[h % API_BUCKETS]; k; k = k->hnext)
    if (k->h == h && !strcmp(k->key, kkey))
      return k;
  return NULL;
}

/* Unlinks the least recently used kernels until size <= capacity; returns them chained by
 * lnext, for the caller to release outside the lock. */
static tilec_kernel *evict_locked(tilec_context *ctx) {
  tilec_kernel *out = NULL;
  while (ctx->size > ctx->capacity && ctx->lru_tail) {
    tilec_kernel *k = ctx->lru_tail;
    lru_unlink(ctx, k);
    tilec_kernel **pp = &ctx->kmap[k->h % API_BUCKETS];
    while (*pp != k)
      pp = &(*pp)->hnext;
    *pp = k->hnext;
    k->hnext = NULL;
    k->cached = false;
    ctx->size--;
    ctx->evictions++;
    k->lnext = out;
    out = k;
  }
  return out;
}

void api_release_chain(tilec_kernel *k) {
  while (k) {
    tilec_kernel *n = k->lnext;
    k->lnext = NULL;
    tilec_kernel_release(k);
    k = n;
  }
}

tilec_kernel *api_cache_insert_locked(tilec_context *ctx, tilec_kernel *k) {
  k->cached = true;
  atomic_fetch_add(&k->refs, 1);
  k->hnext = ctx->kmap[k->h % API_BUCKETS];
  ctx->kmap[k->h % API_BUCKETS] = k;
  lru_push(ctx, k);
  ctx->size++;
  return evict_locked(ctx); /* k is at the head: never evicted (capacity >= 1) */
}

const char *api_req_find_locked(tilec_context *ctx, const char *rkey, uint64_t h) {
  for (api_req *r = ctx->rmap[h % API_BUCKETS]; r; r = r->next)
    if (r->h == h && !strcmp(r->key, rkey))
      return r->kkey;
  return NULL;
}

void api_req_clear_locked(tilec_context *ctx) {
  for (int i = 0; i < API_BUCKETS; i++) {
    for (api_req *r = ctx->rmap[i], *n; r; r = n) {
      n = r->next;
      free(r->key), free(r->kkey), free(r);
    }
    ctx->rmap[i] = NULL;
  }
  ctx->nreq = 0;
}

void api_req_put_locked(tilec_context *ctx, const char *rkey, uint64_t h, const char *kkey) {
  if (api_req_find_locked(ctx, rkey, h))
    return;
  if (ctx->nreq >= 16 * ctx->capacity + 1024) /* bounded: start over rather than grow */
    api_req_clear_locked(ctx);
  api_req *r = calloc(1, sizeof *r);
  char *k = strdup(rkey), *kk = strdup(kkey);
  if (!r || !k || !kk) { /* the memo is an optimization: a lost entry is a slower lookup */
    free(r), free(k), free(kk);
    return;
  }
  r->key = k, r->kkey = kk, r->h = h;
  r->next = ctx->rmap[h % API_BUCKETS];
  ctx->rmap[h % API_BUCKETS] = r;
  ctx->nreq++;
}

tilec_status tilec_context_set_cache_capacity(tilec_context *ctx, int capacity) {
  if (!ctx)
    return api_fail(TILEC_ERR_ARG, "tilec_context_set_cache_capacity: ctx is NULL");
  if (capacity < 1)
    return api_fail(TILEC_ERR_ARG, "tilec_context_set_cache_capacity: capacity %d < 1", capacity);
  pthread_mutex_lock(&ctx->mu);
  ctx->capacity = capacity;
  tilec_kernel *ev = evict_locked(ctx);
  pthread_mutex_unlock(&ctx->mu);
  api_release_chain(ev);
  return TILEC_OK;
}

tilec_status tilec_context_info_get(tilec_context *ctx, tilec_context_info *info) {
  if (!ctx || !info)
    return api_fail(TILEC_ERR_ARG, "tilec_context_info_get: ctx and info are required");
  tilec_status s = api_check_size("tilec_context_info", info->size,
                                  offsetof(tilec_context_info, pending), sizeof *info);
  if (s)
    return s;
  info->device = ctx->device_key;
  info->arch = ctx->arch;
  info->toolchain = ctx->toolchain;
  info->db_path = ctx->db ? ctx->db_path : "";
  info->readonly = (ctx->flags & (TILEC_CONTEXT_READONLY | TILEC_CONTEXT_NO_DB)) != 0;
  pthread_mutex_lock(&ctx->mu);
  info->cache_size = ctx->size;
  info->cache_capacity = ctx->capacity;
  info->hits = ctx->hits;
  info->misses = ctx->misses;
  info->compiles = ctx->compiles;
  info->db_loads = ctx->db_loads;
  info->evictions = ctx->evictions;
  if (API_HAS_FIELD(info, tilec_context_info, pending)) {
    int n = 0;
    for (const api_job *j = ctx->jobs; j; j = j->next)
      n += j->state != API_JOB_FAILED;
    info->pending = n;
  }
  pthread_mutex_unlock(&ctx->mu);
  return TILEC_OK;
}
