/* api/nowait.c — misses that do not wait (TILEC_KERNEL_NOWAIT): the compile runs on a
 * background thread and the caller asks again.
 *
 * A NOWAIT request that misses the LRU gets TILEC_ERR_BUSY at once. The first such call queues a
 * job (one per request key: callers on many threads share it); up to a few detached threads take
 * queued jobs and run the ordinary blocking tilec_kernel_get on a copy of the request, which
 * puts the kernel in the LRU and the request map, so the next call is a hit. A failed get leaves
 * its status and message in the job until the next NOWAIT call of that request returns them (and
 * forgets the job, so the call after tries again). Threads end when the queue is empty;
 * tilec_context_destroy starts nothing new and waits for the running compiles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_impl.h"

enum { MAX_JOB_THREADS = 8 };

static void job_free(api_job *j) {
  if (!j)
    return;
  for (int i = 0; i < 5; i++)
    free(j->strs[i]);
  free(j->rkey);
  free(j);
}

/* A job for req: its strings copied, NOWAIT cleared (the thread's get blocks). NULL: out of
 * memory. */
static api_job *job_new(const tilec_kernel_request *req, const char *rkey, uint64_t rh) {
  api_job *j = calloc(1, sizeof *j);
  if (!j)
    return NULL;
  const char *src[5] = {req->kernel, req->source, req->shape, req->dtype, req->config};
  bool oom = !(j->rkey = strdup(rkey));
  for (int i = 0; i < 5; i++)
    if (src[i] && !(j->strs[i] = strdup(src[i])))
      oom = true;
  if (oom) {
    job_free(j);
    return NULL;
  }
  tilec_kernel_request_init(&j->req);
  j->req.kernel = j->strs[0], j->req.source = j->strs[1], j->req.shape = j->strs[2];
  j->req.dtype = j->strs[3], j->req.config = j->strs[4];
  j->req.flags = api_req_flags(req) & ~(unsigned)TILEC_KERNEL_NOWAIT;
  j->rh = rh;
  j->state = API_JOB_QUEUED;
  return j;
}

static void unlink_locked(tilec_context *ctx, api_job *j) {
  for (api_job **p = &ctx->jobs; *p; p = &(*p)->next)
    if (*p == j) {
      *p = j->next;
      return;
    }
}

static void *job_thread(void *arg) {
  tilec_context *ctx = arg;
  pthread_mutex_lock(&ctx->mu);
  for (;;) {
    api_job *j = ctx->jobs;
    while (j && j->state != API_JOB_QUEUED)
      j = j->next;
    if (!j || ctx->closing)
      break;
    j->state = API_JOB_RUNNING;
    pthread_mutex_unlock(&ctx->mu);
    tilec_kernel *k = NULL;
    tilec_status s = tilec_kernel_get(ctx, &j->req, &k);
    if (s)
      snprintf(j->msg, sizeof j->msg, "%s", tilec_errmsg(ctx));
    tilec_kernel_release(k); /* the LRU holds it */
    pthread_mutex_lock(&ctx->mu);
    if (s) {
      j->st = s;
      j->state = API_JOB_FAILED;
    } else {
      unlink_locked(ctx, j);
      job_free(j);
    }
  }
  ctx->job_threads--;
  pthread_cond_broadcast(&ctx->job_cv);
  pthread_mutex_unlock(&ctx->mu);
  return NULL;
}

tilec_status api_nowait_miss(tilec_context *ctx, const tilec_kernel_request *req, const char *rkey,
                             uint64_t rh) {
  if (req->ir)
    return api_fail(TILEC_ERR_ARG, "tilec_kernel_get: TILEC_KERNEL_NOWAIT takes a built-in kernel "
                                   "or kernel text, not an IR handle (whose lifetime is the "
                                   "caller's); print it (tilec_ir_print) and pass it as source");
  api_job *fresh = job_new(req, rkey, rh);
  pthread_mutex_lock(&ctx->mu);
  api_job *j = ctx->jobs;
  while (j && !(j->rh == rh && !strcmp(j->rkey, rkey)))
    j = j->next;
  if (j && j->state == API_JOB_FAILED) { /* report it once; the next call tries again */
    unlink_locked(ctx, j);
    pthread_mutex_unlock(&ctx->mu);
    tilec_status s = api_fail(j->st, "%s", j->msg);
    job_free(j);
    job_free(fresh);
    return s;
  }
  if (!j) {
    if (!fresh) {
      pthread_mutex_unlock(&ctx->mu);
      return api_fail(TILEC_ERR_OOM, "tilec_kernel_get: out of memory");
    }
    fresh->next = ctx->jobs;
    ctx->jobs = fresh;
    fresh = NULL;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int max = cpus < 1 ? 1 : cpus > MAX_JOB_THREADS ? MAX_JOB_THREADS : (int)cpus;
    if (ctx->job_threads < max) {
      pthread_attr_t at;
      pthread_t t;
      pthread_attr_init(&at);
      pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
      if (!pthread_create(&t, &at, job_thread, ctx))
        ctx->job_threads++;
      pthread_attr_destroy(&at);
    }
    if (ctx->job_threads == 0) { /* no thread could start: nothing would ever run it */
      api_job *mine = ctx->jobs;
      unlink_locked(ctx, mine);
      pthread_mutex_unlock(&ctx->mu);
      job_free(mine);
      return api_fail(TILEC_ERR_OOM, "tilec_kernel_get: cannot start a compile thread");
    }
  }
  pthread_mutex_unlock(&ctx->mu);
  job_free(fresh);
  return api_fail(TILEC_ERR_BUSY, "tilec_kernel_get: the kernel is being compiled in the "
                                  "background (TILEC_KERNEL_NOWAIT); ask again");
}

void api_jobs_close(tilec_context *ctx) {
  pthread_mutex_lock(&ctx->mu);
  ctx->closing = true;
  while (ctx->job_threads > 0)
    pthread_cond_wait(&ctx->job_cv, &ctx->mu);
  api_job *j = ctx->jobs;
  ctx->jobs = NULL;
  pthread_mutex_unlock(&ctx->mu);
  while (j) {
    api_job *n = j->next;
    job_free(j);
    j = n;
  }
}
