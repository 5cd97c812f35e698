/* api/api_impl.h — what the files of api/ share: the structs behind the public handles, the
 * per-thread error message, and status translation from the internal layers.
 *
 * api/ implements include/tilec/tilec.h on top of ir/, kernels/, runtime/ and autotune/. Only
 * the tilec_* functions are exported from libtilec.so; everything here is hidden.
 * Locks: ctx->mu guards the two maps, the LRU and the background jobs (never held across a
 * compile, a database read or a module load); ctx->db_mu serializes the database handle (one
 * thread at a time, as autotune/db.h requires).
 */
#ifndef TILEC_API_IMPL_H
#define TILEC_API_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "autotune/at.h"
#include "autotune/db.h"
#include "autotune/space.h"
#include "ir/ir.h"
#include "runtime/rt.h"
#include "tilec/tilec.h"

enum { API_BUCKETS = 4096, API_DEFAULT_CAPACITY = 256, API_DEFAULT_TUNE_BUDGET = 16 };
#define API_DEFAULT_NEAREST 2.0

struct tilec_ir {
  ir_kernel *k; /* verified, not specialized */
  char hash[65];
};

struct tilec_kernel {
  atomic_int refs; /* the cache's reference (while cached) + the callers' */
  tilec_context *ctx;
  /* cache links (under ctx->mu) */
  char *key;
  uint64_t h;
  struct tilec_kernel *hnext, *lprev, *lnext;
  bool cached;
  /* what was loaded */
  ir_kernel *spec;
  rt_module *mod;
  rt_func *fn;
  rt_launch_cfg launch;         /* block and dynamic shared memory; grid per launch */
  int nuser;                    /* launch arguments from the caller (const parameters left out) */
  int8_t user_arg[IR_MAX_ARGS]; /* spec argument i is user argument user_arg[i], or -1 */
  char *name, *config, *bucket;
  char entry[128];
  tilec_kernel_origin origin;
  double load_ms;
  bool aligned; /* the aligned variant: launches check rt_args_aligned */
};

/* A request key's kernel key (the request memo). */
typedef struct api_req {
  char *key;
  uint64_t h;
  char *kkey;
  struct api_req *next;
} api_req;

struct tilec_tuner;

/* A TILEC_KERNEL_NOWAIT miss being compiled in the background (api/nowait.c): the request
 * (strings copied, NOWAIT cleared), then its outcome until the next NOWAIT call of the same
 * request collects a failure (a success is in the LRU, and the job is gone). */
typedef struct api_job {
  char *rkey; /* the request's memo key */
  uint64_t rh;
  tilec_kernel_request req;
  char *strs[5]; /* owned copies of req's kernel, source, shape, dtype, config */
  enum { API_JOB_QUEUED, API_JOB_RUNNING, API_JOB_FAILED } state;
  tilec_status st; /* API_JOB_FAILED: the get's status and message */
  char msg[1024];
  struct api_job *next;
} api_job;

struct tilec_context {
  atomic_int refs; /* the creator's + one per live kernel */
  unsigned flags;
  tilec_tune_policy tune;
  int tune_budget;
  double nearest; /* opts.nearest: the largest bucket distance of a stand-in winner; < 0 none */
  rt_ctx *rt;     /* NULL with TILEC_CONTEXT_NO_GPU */
  void *stream;
  rt_device_info dev;
  at_device model; /* for the heuristic config */
  char arch[16];
  char device_key[RT_DEVICE_KEY_MAX];
  char toolchain[512];
  char db_path[1024];
  at_db *db; /* NULL without a database */
  pthread_mutex_t db_mu;

  pthread_mutex_t mu;
  tilec_kernel *kmap[API_BUCKETS];
  api_req *rmap[API_BUCKETS];
  int nreq;
  tilec_kernel *lru_head, *lru_tail; /* head: most recently used */
  int size, capacity;
  uint64_t hits, misses, compiles, db_loads, evictions;
  struct tilec_tuner *tuners; /* background tuners (TILEC_TUNE_BACKGROUND), joined at destroy */
  api_job *jobs;              /* TILEC_KERNEL_NOWAIT misses, queued, running or failed */
  int job_threads;            /* background compile threads running (detached) */
  bool closing;               /* tilec_context_destroy: start no job, wait for the threads */
  pthread_cond_t job_cv;      /* signalled when a job thread ends */
};

struct tilec_tuner {
  tilec_context *ctx;
  pthread_t thread;
  bool started, joined;
  atomic_bool done;
  tilec_status status;
  char msg[1024];
  char *kernel, *source, *shape, *dtype, *rkey;
  int budget, jobs;
  double time_s;
  bool aligned; /* the request's TILEC_KERNEL_ALIGNED: the sweep measures that code */
  struct tilec_tuner *next;
};

/* Sets the calling thread's message and returns s. */
tilec_status api_fail(tilec_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The thread's message buffer (for callers that format in place). */
char *api_msgbuf(size_t *cap);

tilec_status api_from_rt(rt_status s);
tilec_status api_from_at(at_status s);

/* 64-bit FNV-1a of n bytes. */
uint64_t api_hash(const void *p, size_t n, uint64_t h);
#define API_HASH_SEED 14695981039346656037ull

/* An option struct's size check: ARG unless min <= size <= max. */
tilec_status api_check_size(const char *what, size_t size, size_t min, size_t max);

/* The context side of kernels (api/context.c). */
void api_ctx_retain(tilec_context *ctx);
void api_ctx_release(tilec_context *ctx);
/* Frees a kernel whose last reference went (module, spec, strings), and drops its context
 * reference. */
void api_kernel_free(tilec_kernel *k);
/* Request memo and kernel map, under ctx->mu (the caller holds it). */
tilec_kernel *api_cache_find_locked(tilec_context *ctx, const char *kkey, uint64_t h);
/* Inserts k (its key and h set) and takes the cache's reference; returns the kernels evicted
 * over capacity (chained by lnext), which the caller passes to api_release_chain once it has
 * dropped the lock (a last release unloads a module: not under the lock). */
tilec_kernel *api_cache_insert_locked(tilec_context *ctx, tilec_kernel *k);
void api_release_chain(tilec_kernel *k);
const char *api_req_find_locked(tilec_context *ctx, const char *rkey, uint64_t h);
void api_req_put_locked(tilec_context *ctx, const char *rkey, uint64_t h, const char *kkey);
void api_req_clear_locked(tilec_context *ctx);
void api_lru_touch_locked(tilec_context *ctx, tilec_kernel *k);

/* Starts a background sweep of the request (api/tuner.c); rkey is forgotten from the request
 * memo when it finishes. */
/* Whether a size-versioned struct *p (its first member the caller's size) holds `field`: a
 * caller built before a later field was added passes a smaller size. */
#define API_HAS_FIELD(p, type, field) ((p)->size >= offsetof(type, field) + sizeof(p)->field)

/* The TILEC_KERNEL_* flags this build knows. */
#define API_KERNEL_FLAGS ((unsigned)(TILEC_KERNEL_ALIGNED | TILEC_KERNEL_NOWAIT))

/* The request's flags (0 from a caller built before the field existed). */
unsigned api_req_flags(const tilec_kernel_request *r);

/* A TILEC_KERNEL_NOWAIT request that missed the LRU (api/nowait.c): collects a failed job's
 * error, or queues a job (at most one per request key) and returns BUSY. */
tilec_status api_nowait_miss(tilec_context *ctx, const tilec_kernel_request *req, const char *rkey,
                             uint64_t rh);
/* tilec_context_destroy: no new jobs; waits for the job threads; frees the records. */
void api_jobs_close(tilec_context *ctx);

tilec_status api_tuner_launch(tilec_context *ctx, const tilec_kernel_request *req,
                              const tilec_tune_opts *o, bool background, const char *rkey,
                              tilec_tuner **out);

#endif
