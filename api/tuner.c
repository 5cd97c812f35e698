/* api/tuner.c — tuning sweeps from the API: at_tune (autotune/tune.h) on the context's
 * database, on the calling thread or a background thread.
 *
 * The sweep measures in a worker process (the `tilec` executable, TILEC_WORKER_EXE), so a
 * faulting candidate never harms the engine. When a background sweep ends, the context forgets
 * its request memo, so the next lookup of the problem asks the database again and finds the
 * winner. The sweep opens its own database handle (at_tune does): ctx->db is not shared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "autotune/tune.h"

void tilec_tune_opts_init(tilec_tune_opts *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
}

static void *run(void *arg) {
  tilec_tuner *t = arg;
  tilec_context *ctx = t->ctx;
  at_tune_opts o = {.kernel = t->kernel,
                    .source = t->source,
                    .shape = t->shape,
                    .dtype = t->dtype,
                    .arch = ctx->arch,
                    .budget = t->budget,
                    .time_s = t->time_s,
                    .jobs = t->jobs,
                    .variant = t->aligned ? AT_VARIANT_ALIGNED : AT_VARIANT_GENERIC,
                    .db_path = ctx->db_path};
  at_tune_report r;
  at_err e = {0};
  at_status st = at_tune(&o, &r, &e);
  at_tune_report_free(&r);
  t->status = st ? api_from_at(st) : TILEC_OK;
  snprintf(t->msg, sizeof t->msg, "%s", st ? e.msg : "");
  pthread_mutex_lock(&ctx->mu); /* the next lookups ask the database again */
  api_req_clear_locked(ctx);
  pthread_mutex_unlock(&ctx->mu);
  atomic_store(&t->done, true);
  return NULL;
}

static char *dup_or_null(const char *s, bool *oom) {
  char *d = s ? strdup(s) : NULL;
  if (s && !d)
    *oom = true;
  return d;
}

static void tuner_free(tilec_tuner *t) {
  free(t->kernel), free(t->source), free(t->shape), free(t->dtype), free(t->rkey);
  if (t->ctx)
    api_ctx_release(t->ctx);
  free(t);
}

tilec_status api_tuner_launch(tilec_context *ctx, const tilec_kernel_request *req,
                              const tilec_tune_opts *o, bool background, const char *rkey,
                              tilec_tuner **out) {
  if (!ctx->db || (ctx->flags & (TILEC_CONTEXT_READONLY | TILEC_CONTEXT_NO_DB)))
    return api_fail(TILEC_ERR_READONLY,
                    "tuning writes the database; this context is read-only or has none");
  if (!ctx->rt)
    return api_fail(TILEC_ERR_NO_DEVICE, "tuning measures on a GPU; this context has none");
  if (req->ir)
    return api_fail(TILEC_ERR_ARG, "tuning takes a built-in kernel or kernel text; print the "
                                   "IR (tilec_ir_print) and pass it as source");
  tilec_tuner *t = calloc(1, sizeof *t);
  if (!t)
    return api_fail(TILEC_ERR_OOM, "out of memory");
  bool oom = false;
  t->kernel = dup_or_null(req->kernel ? req->kernel : "<source>", &oom);
  t->source = dup_or_null(req->source, &oom);
  t->shape = dup_or_null(req->shape ? req->shape : "", &oom);
  t->dtype = dup_or_null(req->dtype, &oom);
  t->rkey = dup_or_null(rkey, &oom);
  if (oom) {
    tuner_free(t);
    return api_fail(TILEC_ERR_OOM, "out of memory");
  }
  t->budget = o->budget, t->jobs = o->jobs, t->time_s = o->time_s;
  t->aligned = api_req_flags(req) & TILEC_KERNEL_ALIGNED;
  t->ctx = ctx;
  api_ctx_retain(ctx);
  if (!background) {
    run(t);
    t->joined = true;
    *out = t;
    return t->status ? api_fail(t->status, "tune: %s", t->msg) : TILEC_OK;
  }
  if (pthread_create(&t->thread, NULL, run, t)) {
    tuner_free(t);
    return api_fail(TILEC_ERR_OOM, "tune: cannot start a thread");
  }
  t->started = true;
  *out = t;
  return TILEC_OK;
}

tilec_status tilec_tuner_start(tilec_context *ctx, const tilec_kernel_request *req,
                               const tilec_tune_opts *opts, tilec_tuner **out) {
  if (!out)
    return api_fail(TILEC_ERR_ARG, "tilec_tuner_start: out is NULL");
  *out = NULL;
  if (!ctx || !req)
    return api_fail(TILEC_ERR_ARG, "tilec_tuner_start: ctx and req are required");
  tilec_status s = api_check_size("tilec_kernel_request", req->size,
                                  offsetof(tilec_kernel_request, flags), sizeof *req);
  if (s)
    return s;
  if (api_req_flags(req) & ~API_KERNEL_FLAGS) /* NOWAIT has no effect on a sweep */
    return api_fail(TILEC_ERR_ARG, "tilec_tuner_start: unknown flags %#x",
                    api_req_flags(req) & ~API_KERNEL_FLAGS);
  tilec_tune_opts o;
  tilec_tune_opts_init(&o);
  if (opts) {
    if ((s = api_check_size("tilec_tune_opts", opts->size, sizeof o, sizeof o)))
      return s;
    o = *opts;
  }
  if (!!req->kernel + !!req->source + !!req->ir != 1)
    return api_fail(TILEC_ERR_ARG, "tilec_tuner_start: set exactly one of kernel, source, ir");
  if (o.budget < 0 || o.jobs < 0 || o.time_s < 0)
    return api_fail(TILEC_ERR_ARG, "tilec_tuner_start: budget, jobs and time_s must be >= 0");
  return api_tuner_launch(ctx, req, &o, o.background != 0, NULL, out);
}

tilec_status tilec_tuner_wait(tilec_tuner *t) {
  if (!t)
    return api_fail(TILEC_ERR_ARG, "tilec_tuner_wait: tuner is NULL");
  if (t->started && !t->joined) {
    pthread_join(t->thread, NULL);
    t->joined = true;
  }
  return t->status ? api_fail(t->status, "tune: %s", t->msg) : TILEC_OK;
}

tilec_status tilec_tuner_poll(tilec_tuner *t) {
  if (!t)
    return api_fail(TILEC_ERR_ARG, "tilec_tuner_poll: tuner is NULL");
  if (!atomic_load(&t->done))
    return api_fail(TILEC_ERR_BUSY, "the sweep is still running");
  return tilec_tuner_wait(t);
}

void tilec_tuner_destroy(tilec_tuner *t) {
  if (!t)
    return;
  if (t->started && !t->joined)
    pthread_join(t->thread, NULL);
  tuner_free(t);
}
