/* compiler/cli_worker.c — `tilec __worker`: validates and times candidates for the autotuner in
 * a process of its own, so that a faulting, hanging or crashing candidate never harms the tuner.
 *
 * Requests come on fd 3, replies go to fd 4 (autotune/worker.h: the frames; docs/tuning-worker.md:
 * the messages). PROBLEM opens device 0 (primary context, default stream), parses the kernel and
 * builds the problem once (host inputs, device buffers, the CPU reference). MEASURE re-specializes
 * the kernel for the config (the argument ABI, the grid) and lowers it without optimizing (threads,
 * shared memory: cheap), loads the parent's cubin, poisons the outputs, launches once, validates,
 * then times warm-up and `reps` launches with CUDA events, each after an L2 flush and on the next
 * copy of the inputs when the working set fits in the L2. A sticky CUDA error (illegal address,
 * ...) means a dead context: the worker replies `fault` and exits. With TILEC_TEST_HOOKS,
 * TILEC_WORKER_FAKE names a script of outcomes and no CUDA call is made (tests of the fault
 * isolation).
 */
#define _GNU_SOURCE /* prctl */
#include "compiler/cli_worker.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "autotune/worker.h"
#include "codegen/codegen.h"
#include "compiler/gpu.h"
#include "kernels/builtin_sources.h"
#include "kernels/problem.h"
#include "runtime/rt.h"

enum { IN_FD = 3, OUT_FD = 4, MAX_COPIES = 8 };

/* Above this many flops (by default) the reference is computed on the GPU: the CPU reference
 * would hold the start of a sweep too long. */
#define MAX_CPU_CHECK_FLOPS 2e10

/* One scripted outcome of the test mode (TILEC_WORKER_FAKE). */
typedef enum {
  FK_OK,
  FK_WRONG,
  FK_CRASH,
  FK_HANG,
  FK_RESOURCES,
  FK_EXIT,
  FK_SLOW,
  FK_REBUILD
} fake_action;

typedef struct fake_line {
  char *config;
  fake_action action;
  double ms, sleep_s;
} fake_line;

typedef struct worker {
  at_reader rd;
  /* the problem */
  bool has_problem, builtin, check, flush, rotate;
  ir_kernel *k;
  char kernel[64], dtype[32], arch[16];
  char set[1024]; /* PROBLEM's set: items every candidate is specialized with first */
  kn_shape shape;
  uint64_t seed;
  int reps, warmup;
  double cpu_check_flops;
  /* the device */
  rt_ctx *ctx;
  rt_device_info dev;
  bool have_dev;
  rt_flusher fl;
  rt_refs refs; /* NVRTC reference kernels, loaded on first use */
  bool have_refs;
  /* the problem's data: host buffers and reference, device copies of every buffer */
  kn_problem prob;
  bool have_prob;
  bool keyed;     /* prob was built for data_key() == key */
  bool measuring; /* inside a MEASURE */
  bool rebuilt;   /* this MEASURE rebuilt the problem (PROGRESS "problem" was sent) */
  char key[64];
  int ncopies;
  uint64_t dptr[MAX_COPIES][KN_MAX_BUFS];
  /* test mode */
  bool fake;
  bool fake_aligned; /* the host-built problem keeps the aligned promise */
  fake_line *lines;
  int nlines;
} worker;

/* snprintf into a buffer that may cut long runtime messages (no truncation warning: cutting is
 * intended). */
__attribute__((format(printf, 3, 4))) static void put(char *dst, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst, cap, fmt, ap);
  va_end(ap);
}

/* ---- replies ------------------------------------------------------------------------------ */

static void send_or_die(const at_msg *m) {
  at_err e;
  if (at_msg_write(OUT_FD, m, -1, &e)) {
    fprintf(stderr, "tilec __worker: %s\n", e.msg);
    _exit(1);
  }
}

static void reply_error(at_status s, const char *msg) {
  at_msg m;
  at_msg_init(&m, "ERROR");
  if (at_msg_add(&m, "status", at_status_name(s), strlen(at_status_name(s)), NULL) ||
      at_msg_add(&m, "message", msg, strlen(msg), NULL)) {
    at_msg_free(&m);
    at_msg_init(&m, "ERROR"); /* out of memory: the bare type still tells the parent */
  }
  send_or_die(&m);
  at_msg_free(&m);
}

/* A PROGRESS frame inside a MEASURE: "problem" before rebuilding the problem's data and
 * reference (the parent's start limit applies), "candidate" when the candidate's own time
 * starts again. */
static void progress(const char *phase) {
  at_msg m;
  at_msg_init(&m, "PROGRESS");
  if (!at_msg_add(&m, "phase", phase, strlen(phase), NULL))
    send_or_die(&m);
  at_msg_free(&m);
}

/* A READY or DEVICE reply: the device's fields; READY also says whether the problem's
 * arguments keep the aligned variant's promise (aligned 0 or 1; -1 leaves it out). */
static void reply_device(const char *type, const at_gpu_info *d, int aligned) {
  at_msg m;
  at_msg_init(&m, type);
  if (at_device_encode(d, &m, NULL) ||
      (aligned >= 0 && at_msg_addf(&m, NULL, "aligned", "%d", aligned)))
    reply_error(AT_ERR_OOM, "out of host memory");
  else
    send_or_die(&m);
  at_msg_free(&m);
}

typedef struct result {
  at_run status;
  double *samples;
  int n;
  double max_err;
  int sm_mhz, mem_mhz;
  char detail[512];
} result;

static void reply_result(const result *r) {
  at_msg m;
  at_msg_init(&m, "RESULT");
  const char *st = at_run_name(r->status);
  bool bad =
      at_msg_add(&m, "status", st, strlen(st), NULL) ||
      at_msg_add(&m, "detail", r->detail, strlen(r->detail), NULL) ||
      at_msg_addf(&m, NULL, "max_err", "%.17g", r->max_err) ||
      at_msg_addf(&m, NULL, "sm_mhz", "%d", r->sm_mhz) ||
      at_msg_addf(&m, NULL, "mem_mhz", "%d", r->mem_mhz) ||
      (r->n > 0 && at_msg_add(&m, "samples", r->samples, (size_t)r->n * sizeof(double), NULL));
  if (bad) {
    at_msg_free(&m);
    reply_error(AT_ERR_OOM, "out of host memory while replying");
    return;
  }
  send_or_die(&m);
  at_msg_free(&m);
}

/* ---- test mode ------------------------------------------------------------------------------ */

#ifdef TILEC_TEST_HOOKS
static int fake_load(worker *w, const char *path, char *err, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f)
    return put(err, cap, "TILEC_WORKER_FAKE: cannot open %s: %s", path, strerror(errno)), -1;
  char line[4096];
  int lineno = 0, rc = 0;
  while (!rc && fgets(line, sizeof line, f)) {
    lineno++;
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0] || line[0] == '#')
      continue;
    char *tab = strchr(line, '\t');
    fake_line fl = {0};
    char verb[16] = "", extra;
    int got = tab ? sscanf(tab + 1, "%15s %lf %lf %c", verb, &fl.ms, &fl.sleep_s, &extra) : 0;
    static const char *const verbs[] = {"ok",        "wrong", "crash", "hang",
                                        "resources", "exit",  "slow",  "rebuild"};
    static const int args[] = {1, 0, 0, 0, 0, 0, 2, 2};
    enum { NVERBS = sizeof verbs / sizeof verbs[0] };
    int v = 0;
    while (v < NVERBS && strcmp(verb, verbs[v]))
      v++;
    if (!tab || v == NVERBS || got != 1 + args[v] || fl.ms < 0 || fl.sleep_s < 0) {
      rc = -1;
      put(err, cap,
          "TILEC_WORKER_FAKE %s:%d: expected 'CONFIG<TAB>ok MS | wrong | crash | hang | "
          "resources | exit | slow MS SECONDS | rebuild MS SECONDS'",
          path, lineno);
      break;
    }
    *tab = 0;
    fake_line *grown = realloc(w->lines, (size_t)(w->nlines + 1) * sizeof *grown);
    if (!grown || !(fl.config = strdup(line))) {
      if (grown)
        w->lines = grown;
      rc = -1;
      put(err, cap, "out of host memory");
      break;
    }
    fl.action = (fake_action)v;
    w->lines = grown;
    w->lines[w->nlines++] = fl;
  }
  fclose(f);
  return rc;
}

/* The fixed device of the test mode (the key says it is fake). */
static void fake_device(at_gpu_info *d) {
  memset(d, 0, sizeof *d);
  put(d->key, sizeof d->key, "fake|sm_90a|132sm|141GiB");
  put(d->name, sizeof d->name, "fake (TILEC_WORKER_FAKE)");
  put(d->arch, sizeof d->arch, "sm_90a");
  d->cc_major = 9;
  d->sm_count = 132;
  d->smem_per_block_optin = 232448;
  d->smem_per_sm = 233472;
  d->l2_bytes = 50331648;
  d->regs_per_sm = 65536;
  d->max_threads_per_block = 1024;
  d->mem_clock_khz = 3201000;
  d->mem_bus_width = 6144;
  d->sm_clock_khz = 1980000;
  d->total_mem = 141ull << 30;
  d->driver_version = 13000;
}

static void fake_measure(worker *w, const char *config) {
  const fake_line *fl = NULL;
  for (int i = 0; i < w->nlines && !fl; i++)
    if (!strcmp(w->lines[i].config, config))
      fl = &w->lines[i];
  if (!fl) {
    char msg[1024];
    put(msg, sizeof msg, "TILEC_WORKER_FAKE: config '%.900s' is not in the script", config);
    reply_error(AT_ERR_ARG, msg);
    return;
  }
  result r = {.status = AT_RUN_OK, .max_err = 0, .sm_mhz = -1, .mem_mhz = -1};
  switch (fl->action) {
  case FK_CRASH:
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
    _exit(70); /* not reached */
  case FK_HANG:
    for (;;)
      pause();
  case FK_EXIT: {
    static const char partial[] = AT_WIRE_MAGIC " RESULT 5\nstatus 2\nok";
    if (write(OUT_FD, partial, sizeof partial - 1) < 0)
      _exit(4);
    _exit(3);
  }
  case FK_WRONG:
    r.status = AT_RUN_WRONG;
    r.max_err = 1.0;
    put(r.detail, sizeof r.detail, "fake: output differs from the reference");
    break;
  case FK_RESOURCES:
    r.status = AT_RUN_RESOURCES;
    put(r.detail, sizeof r.detail, "fake: too many resources requested for launch");
    break;
  case FK_REBUILD: /* like a MEASURE that rebuilds the problem's data for SECONDS */
  case FK_SLOW: {
    if (fl->action == FK_REBUILD)
      progress("problem");
    struct timespec t = {(time_t)fl->sleep_s, (long)((fl->sleep_s - floor(fl->sleep_s)) * 1e9)};
    while (nanosleep(&t, &t) && errno == EINTR) {
    }
    if (fl->action == FK_REBUILD)
      progress("candidate");
  }
    __attribute__((fallthrough));
  case FK_OK: {
    /* reps samples spread over ms * 0.98 .. 1.02 in steps of 1 %: median ms for reps % 5 == 0 */
    r.n = w->reps;
    r.samples = malloc((size_t)r.n * sizeof *r.samples);
    if (!r.samples) {
      reply_error(AT_ERR_OOM, "out of host memory");
      return;
    }
    for (int i = 0; i < r.n; i++)
      r.samples[i] = fl->ms * (0.98 + 0.01 * (i % 5));
    put(r.detail, sizeof r.detail, "fake: scripted time");
    break;
  }
  }
  reply_result(&r);
  free(r.samples);
}
#endif

/* ---- the problem -------------------------------------------------------------------------- */

static size_t buf_bytes(const kn_buf *b) {
  return (size_t)(b->count ? b->count : 1) * (size_t)(ir_kind_bits(b->kind) / 8);
}

static void free_device_data(worker *w) {
  for (int c = 0; c < MAX_COPIES; c++)
    for (int b = 0; b < KN_MAX_BUFS; b++)
      if (w->dptr[c][b]) {
        rt_mem_free(w->ctx, w->dptr[c][b]);
        w->dptr[c][b] = 0;
      }
  w->ncopies = 0;
}

static void drop_problem(worker *w) {
  free_device_data(w);
  if (w->have_prob)
    kn_problem_free(&w->prob);
  w->have_prob = false;
}

/* Whether a and b (built by kn_problem_build from the same shape and seed) describe the same
 * launch data: same buffers with the same input bytes, same scalars and tensor geometry. */
static bool same_data(const kn_problem *a, const kn_problem *b) {
  if (a->nargs != b->nargs || a->nbufs != b->nbufs)
    return false;
  for (int i = 0; i < a->nbufs; i++) {
    const kn_buf *x = &a->bufs[i], *y = &b->bufs[i];
    if (x->kind != y->kind || x->count != y->count || x->output != y->output ||
        x->rank != y->rank || memcmp(x->shape, y->shape, sizeof x->shape) ||
        (!x->output && memcmp(x->data, y->data, buf_bytes(x))))
      return false;
  }
  for (int i = 0; i < a->nargs; i++) {
    const ir_argval *x = &a->args[i], *y = &b->args[i];
    if (x->kind != y->kind || x->rank != y->rank ||
        memcmp(&x->scalar, &y->scalar, sizeof x->scalar) ||
        memcmp(x->shape, y->shape, sizeof x->shape) ||
        memcmp(x->stride, y->stride, sizeof x->stride))
      return false;
  }
  return true;
}

/* How many copies of the buffers to rotate through: enough that their sum covers twice the L2
 * when one copy is smaller than the L2, at most MAX_COPIES; 1 when rotation is off. */
static int copies_for(size_t working_set, int l2_bytes, bool rotate) {
  if (!rotate || l2_bytes <= 0 || working_set == 0 || working_set >= (size_t)l2_bytes)
    return 1;
  size_t n = (2 * (size_t)l2_bytes + working_set - 1) / working_set;
  return n > MAX_COPIES ? MAX_COPIES : (int)n;
}

/* Uploads w->prob: copy 0 (inputs; outputs are poisoned per measurement) and the rotation
 * copies. */
static rt_status upload(worker *w, rt_err *e) {
  size_t ws = 0;
  for (int b = 0; b < w->prob.nbufs; b++)
    ws += buf_bytes(&w->prob.bufs[b]);
  w->ncopies = copies_for(ws, w->dev.l2_bytes, w->rotate);
  rt_status s;
  for (int c = 0; c < w->ncopies; c++)
    for (int b = 0; b < w->prob.nbufs; b++) {
      const kn_buf *kb = &w->prob.bufs[b];
      size_t bytes = buf_bytes(kb);
      if ((s = rt_mem_alloc(w->ctx, bytes, &w->dptr[c][b], e)) ||
          (s = kb->output ? rt_memset8(w->ctx, w->dptr[c][b], 0xff, bytes, e)
                          : rt_memcpy_htod(w->ctx, w->dptr[c][b], kb->data, bytes, e)))
        return s;
    }
  return RT_OK;
}

/* The index of buffer `name` in p, or -1. */
static int buf_index(const kn_problem *p, const char *name) {
  for (int b = 0; b < p->nbufs; b++)
    if (!strcmp(p->bufs[b].name, name))
      return b;
  return -1;
}

/* Runs the NVRTC reference of the built-in kernel on the uploaded inputs (copy 0) into f32
 * device buffers and stores the results as the problem's references (p->ref), in the order and
 * layout of the CPU references, so that kn_problem_check compares with them. */
static int gpu_reference(worker *w, rt_err *e, char *err, size_t cap) {
  kn_problem *p = &w->prob;
  const char *outs[2] = {NULL, NULL};
  if (!strcmp(p->kernel, "matmul"))
    outs[0] = "C";
  else if (!strcmp(p->kernel, "bsmatmul"))
    outs[0] = "Y";
  else
    outs[0] = "O", outs[1] = "LSE";
  int nout = outs[1] ? 2 : 1, ob[2] = {buf_index(p, outs[0]), outs[1] ? buf_index(p, outs[1]) : 0};
  uint64_t ref[2] = {0, 0}, doc = 0;
  float *host = NULL;
  int rc = -1;
  rt_status s = RT_OK;
  if (ob[0] < 0 || ob[1] < 0)
    return put(err, cap, "no GPU reference for the buffers of %s", p->kernel), -1;
  if (!w->have_refs) {
    if ((s = rt_refs_load(w->ctx, w->dev.arch, &w->refs, e)))
      goto fail;
    w->have_refs = true;
  }
  for (int i = 0; i < nout; i++)
    if ((s = rt_mem_alloc(w->ctx, (size_t)p->bufs[ob[i]].count * sizeof(float), &ref[i], e)))
      goto fail;
#define DPTR(name) w->dptr[0][buf_index(p, name) < 0 ? 0 : buf_index(p, name)]
#define DT(name)                                                                                   \
  (rt_dtype) rt_dtype_of(p->bufs[buf_index(p, name) < 0 ? 0 : buf_index(p, name)].kind)
  if (!strcmp(p->kernel, "matmul")) {
    const kn_buf *a = &p->bufs[buf_index(p, "A")], *c = &p->bufs[ob[0]];
    int64_t M = a->shape[0], K = a->shape[1], N = c->shape[1];
    rt_ref_matmul_args m = {.M = M,
                            .N = N,
                            .K = K,
                            .A = DPTR("A"),
                            .B = DPTR("B"),
                            .C = ref[0],
                            .sa_m = K,
                            .sa_k = 1,
                            .sb_k = p->transb ? 1 : N,
                            .sb_n = p->transb ? K : 1,
                            .sc_m = N,
                            .sc_n = 1,
                            .ta = DT("A"),
                            .tb = DT("B"),
                            .tc = RT_DT_F32};
    s = rt_ref_matmul(w->ctx, &w->refs, &m, e);
  } else if (!strcmp(p->kernel, "bsmatmul")) {
    const kn_buf *x = &p->bufs[buf_index(p, "X")], *y = &p->bufs[ob[0]];
    rt_ref_bsmatmul_args m = {.M = x->shape[0],
                              .N = y->shape[1],
                              .K = x->shape[1],
                              .block = p->bsr.block,
                              .X = DPTR("X"),
                              .row_ptr = DPTR("row_ptr"),
                              .col_idx = DPTR("col_idx"),
                              .values = DPTR("W"),
                              .Y = ref[0],
                              .ldx = x->shape[1],
                              .ldy = y->shape[1],
                              .tx = DT("X"),
                              .tw = DT("W"),
                              .ty = RT_DT_F32};
    s = rt_ref_bsmatmul(w->ctx, &w->refs, &m, e);
  } else {
    const kn_buf *q = &p->bufs[buf_index(p, "Q")], *k = &p->bufs[buf_index(p, "K")];
    if (p->mask.ndoc_tokens > 0 &&
        ((s = rt_mem_alloc(w->ctx, (size_t)p->mask.ndoc_tokens * 4, &doc, e)) ||
         (s = rt_memcpy_htod(w->ctx, doc, p->mask.doc, (size_t)p->mask.ndoc_tokens * 4, e))))
      goto fail;
    rt_ref_attention_args a = {.B = (int32_t)q->shape[0],
                               .H = (int32_t)q->shape[1],
                               .HKV = (int32_t)k->shape[1],
                               .S = q->shape[2],
                               .SKV = k->shape[2],
                               .D = (int32_t)q->shape[3],
                               .Q = DPTR("Q"),
                               .K = DPTR("K"),
                               .V = DPTR("V"),
                               .O = ref[0],
                               .LSE = ref[1],
                               .tin = DT("Q"),
                               .tout = RT_DT_F32,
                               .scale = (float)p->scale};
    rt_ref_attention_mask(&a, &p->mask, doc);
    s = rt_ref_attention(w->ctx, &w->refs, &a, e);
  }
#undef DPTR
#undef DT
  if (s || (s = rt_ctx_sync(w->ctx, e)))
    goto fail;
  for (int i = 0; i < nout; i++) {
    const kn_buf *b = &p->bufs[ob[i]];
    double *r = malloc((size_t)(b->count ? b->count : 1) * sizeof *r);
    free(host);
    host = malloc((size_t)(b->count ? b->count : 1) * sizeof *host);
    if (!r || !host) {
      free(r);
      put(err, cap, "out of host memory");
      goto done;
    }
    p->ref[p->nref] = r; /* owned by the problem from here on (kn_problem_free) */
    p->ref_buf[p->nref++] = ob[i];
    if ((s = rt_memcpy_dtoh(w->ctx, host, ref[i], (size_t)b->count * sizeof *host, e)))
      goto fail;
    for (int64_t j = 0; j < b->count; j++)
      r[j] = host[j];
  }
  rc = 0;
  goto done;
fail:
  put(err, cap, "the GPU reference: %s", e->msg);
done:
  if (rc)
    for (int i = 0; i < p->nref; i++) { /* no half-made reference stays behind */
      free(p->ref[i]);
      p->ref[i] = NULL;
    }
  if (rc)
    p->nref = 0;
  free(host);
  for (int i = 0; i < 2; i++)
    rt_mem_free(w->ctx, ref[i]);
  rt_mem_free(w->ctx, doc);
  return rc;
}

/* Builds the problem of the specialized kernel spec, reusing the current one (its device data
 * and reference) when the data are the same. Returns 0, or nonzero with a message. */
/* What the data of a built-in problem depend on besides the shape, dtype and seed (fixed per
 * worker): kernels/problem.c reads only bsattention's BM and BN (its block layout). "" for the
 * other built-in kernels; false for file kernels, whose data are rebuilt and compared. */
static bool data_key(const worker *w, const ir_kernel *spec, char *buf, size_t cap) {
  buf[0] = 0;
  if (!w->builtin)
    return false;
  if (!strcmp(w->kernel, "bsattention")) {
    int bm = ir_sym_find(spec, "BM", 2), bn = ir_sym_find(spec, "BN", 2);
    snprintf(buf, cap, "BM=%lld,BN=%lld", bm < 0 ? -1LL : (long long)spec->syms[bm].def.i,
             bn < 0 ? -1LL : (long long)spec->syms[bn].def.i);
  }
  return true;
}

static at_status use_problem(worker *w, const ir_kernel *spec, rt_err *e, char *err, size_t cap) {
  char key[64];
  bool keyed = data_key(w, spec, key, sizeof key);
  if (w->have_prob && keyed && w->keyed && !strcmp(key, w->key))
    return AT_OK;                    /* the same data: no rebuild */
  if (w->measuring && !w->rebuilt) { /* the parent allows the start limit for this */
    progress("problem");
    w->rebuilt = true;
  }
  kn_problem np;
  if (kn_problem_build(&np, w->builtin ? w->kernel : "", spec, &w->shape, w->seed, err, cap)) {
    kn_problem_free(&np);
    return AT_ERR_ARG;
  }
  if (w->have_prob && same_data(&w->prob, &np)) {
    kn_problem_free(&np);
    w->keyed = keyed;
    snprintf(w->key, sizeof w->key, "%s", key);
    return AT_OK;
  }
  drop_problem(w);
  w->prob = np;
  w->have_prob = true;
  w->keyed = keyed;
  snprintf(w->key, sizeof w->key, "%s", key);
  at_status s = AT_OK;
  e->status = RT_OK;
  if (upload(w, e))
    put(err, cap, "%s", e->msg);
  else if (w->check && w->builtin && w->prob.flops > w->cpu_check_flops) { /* the reference */
    if (gpu_reference(w, e, err, cap) && !e->status)
      s = AT_ERR_INTERNAL;
  } else if (w->check && w->builtin && kn_problem_check(&w->prob, err, cap))
    s = AT_ERR_ARG;
  if (e->status)
    s = rt_status_is_env(e->status) ? AT_ERR_ENV : AT_ERR_INTERNAL;
  if (!s && w->check && w->builtin && w->prob.nref == 0) {
    put(err, cap, "the reference of %s was not computed", w->prob.kernel);
    s = AT_ERR_INTERNAL;
  }
  if (s) /* never keep data whose upload or reference is incomplete */
    drop_problem(w);
  return s;
}

/* The launch arguments of one copy of the problem's data: the host problem's shapes, strides
 * and scalars, and dptr[b] for the data of buffer b. */
static void launch_args(const kn_problem *p, const uint64_t *dptr, rt_argval *args) {
  memset(args, 0, sizeof *args * IR_MAX_ARGS);
  for (int i = 0; i < p->nargs; i++) {
    args[i].kind = p->args[i].kind;
    args[i].scalar = p->args[i].scalar;
    args[i].rank = p->args[i].rank;
    memcpy(args[i].shape, p->args[i].shape, sizeof args[i].shape);
    memcpy(args[i].stride, p->args[i].stride, sizeof args[i].stride);
    for (int b = 0; b < p->nbufs; b++)
      if (p->args[i].kind != ARG_SCALAR && p->args[i].data == p->bufs[b].data)
        args[i].dptr = dptr[b];
  }
}

/* Whether the arguments of p with the buffer addresses dptr keep the aligned variant's promise
 * for spec (rt_args_aligned); *bad names the first argument that breaks it. */
static bool args_aligned(const kn_problem *p, const ir_kernel *spec, const uint64_t *dptr,
                         const char **bad) {
  rt_argval args[IR_MAX_ARGS];
  launch_args(p, dptr, args);
  int b = -1;
  bool ok = rt_args_aligned(spec, args, p->nargs, &b);
  *bad = ok ? NULL : b >= 0 && b < spec->nargs ? spec->args[b].name : "(the argument list)";
  return ok;
}

/* args_aligned for every copy of the device data. */
static bool data_aligned(const worker *w, const ir_kernel *spec, const char **bad) {
  for (int c = 0; c < w->ncopies; c++)
    if (!args_aligned(&w->prob, spec, w->dptr[c], bad))
      return false;
  return true;
}

/* The error of a MEASURE of the aligned variant whose arguments break its promise. */
static void reply_misaligned(const char *config, const char *bad) {
  char msg[1024];
  put(msg, sizeof msg,
      "config '%.600s': the image is the aligned variant and argument '%s' breaks its promise "
      "(16-byte aligned address, last stride 1, other strides and the last extent multiples "
      "of 16 bytes); not launched",
      config, bad);
  reply_error(AT_ERR_ARG, msg);
}

/* Parses the kernel of a PROBLEM: a built-in name, or the text in `source`. */
static int load_kernel(worker *w, const char *name, const char *source, char *err, size_t cap) {
  const char *text = source;
  char file[256];
  if (!source) {
    for (const struct tilec_builtin_source *b = tilec_builtin_sources; b->name && !text; b++)
      if (!strcmp(b->name, name))
        text = b->text;
    if (!text)
      return put(err, cap, "'%s' is not a built-in kernel and no source was given", name), -1;
    snprintf(file, sizeof file, "<builtin>/%s.tile", name);
  } else {
    snprintf(file, sizeof file, "%s", name);
  }
  ir_diag d;
  if (ir_parse(text, strlen(text), file, &w->k, &d) || ir_verify(w->k, &d)) {
    ir_kernel_free(w->k);
    w->k = NULL;
    return put(err, cap, "%s", d.msg), -1;
  }
  return 0;
}

/* Specializes the kernel for config (--set text) the way `tilec run` does. */
static int specialize(worker *w, const char *config, ir_kernel **spec, char *err, size_t cap) {
  ir_config cfg = {0};
  ir_diag d;
  if (w->set[0] && ir_config_parse(&cfg, w->set, &d))
    return put(err, cap, "set '%s': %s", w->set, d.msg), -1;
  if (config[0] && ir_config_parse(&cfg, config, &d))
    return put(err, cap, "config '%s': %s", config, d.msg), -1;
  if ((!w->builtin && kn_file_config(w->k, &w->shape, NULL, &cfg, err, cap)) ||
      kn_problem_config(w->builtin ? w->kernel : "", &w->shape, w->dtype[0] ? w->dtype : NULL, &cfg,
                        err, cap))
    return -1;
  if (ir_specialize(w->k, &cfg, spec, &d))
    return put(err, cap, "config '%s': %s", config, d.msg), -1;
  return 0;
}

static void device_of(const worker *w, at_gpu_info *d) {
  memset(d, 0, sizeof *d);
  const rt_device_info *x = &w->dev;
  put(d->key, sizeof d->key, "%s", x->key);
  put(d->name, sizeof d->name, "%s", x->name);
  put(d->arch, sizeof d->arch, "%s%s", x->arch, x->cc_major == 9 ? "a" : "");
  d->cc_major = x->cc_major;
  d->cc_minor = x->cc_minor;
  d->sm_count = x->sm_count;
  d->smem_per_block_optin = x->smem_per_block_optin;
  d->smem_per_sm = x->smem_per_sm;
  d->l2_bytes = x->l2_bytes;
  d->regs_per_sm = x->regs_per_sm;
  d->max_threads_per_block = x->max_threads_per_block;
  d->mem_clock_khz = x->mem_clock_khz;
  d->mem_bus_width = x->mem_bus_width;
  d->sm_clock_khz = x->sm_clock_khz;
  d->total_mem = x->total_mem;
  d->driver_version = x->driver_version;
}

/* Opens device 0 once: AT_ERR_ENV with the driver's message when there is none. */
static at_status open_device(worker *w, char *err, size_t cap) {
  if (w->have_dev)
    return AT_OK;
  rt_err e = {0};
  rt_status s;
  /* The legacy default stream: the synchronous poison memset and copies are ordered with the
   * launches (a non-blocking stream would not wait for them). */
  if ((s = rt_ctx_open(0, 0, &w->ctx, &e)) || (s = rt_device_query(0, &w->dev, &e))) {
    put(err, cap, "%s", e.msg);
    return rt_status_is_env(s) ? AT_ERR_ENV : AT_ERR_INTERNAL;
  }
  w->have_dev = true;
  return AT_OK;
}

static void on_device(worker *w) {
  at_gpu_info d;
  char err[1024];
#ifdef TILEC_TEST_HOOKS
  if (getenv("TILEC_WORKER_FAKE")) {
    fake_device(&d);
    goto reply;
  }
#endif
  at_status s = open_device(w, err, sizeof err);
  if (s) {
    reply_error(s, err);
    return;
  }
  device_of(w, &d);
#ifdef TILEC_TEST_HOOKS
reply:;
#endif
  reply_device("DEVICE", &d, -1);
}

#ifdef TILEC_TEST_HOOKS
/* The test mode's answer to "aligned": the problem of the default config built on the host
 * only, its buffers placed at 256-byte aligned addresses as cuMemAlloc places them. */
static bool fake_problem_aligned(worker *w) {
  char err[512];
  ir_kernel *spec = NULL;
  kn_problem p;
  memset(&p, 0, sizeof p);
  bool ok =
      !specialize(w, "", &spec, err, sizeof err) &&
      !kn_problem_build(&p, w->builtin ? w->kernel : "", spec, &w->shape, w->seed, err, sizeof err);
  if (ok) {
    uint64_t dptr[KN_MAX_BUFS];
    for (int b = 0; b < KN_MAX_BUFS; b++)
      dptr[b] = 256 * (uint64_t)(b + 1);
    const char *bad;
    ok = args_aligned(&p, spec, dptr, &bad);
  }
  kn_problem_free(&p);
  ir_kernel_free(spec);
  return ok;
}
#endif

static void on_problem(worker *w, const at_msg *m) {
  char err[2048];
  at_status s = AT_OK;
  int aligned = 0;
  const char *kernel = at_msg_get(m, "kernel", NULL), *shape = at_msg_get(m, "shape", NULL);
  const char *dtype = at_msg_get(m, "dtype", NULL), *arch = at_msg_get(m, "arch", NULL);
  const char *set = at_msg_get(m, "set", NULL);
  if (w->has_problem) {
    reply_error(AT_ERR_ARG, "this worker has a problem already (one PROBLEM per worker)");
    return;
  }
  if (!kernel || strlen(kernel) >= sizeof w->kernel ||
      (dtype && strlen(dtype) >= sizeof w->dtype) || (arch && strlen(arch) >= sizeof w->arch) ||
      (set && strlen(set) >= sizeof w->set)) {
    reply_error(AT_ERR_ARG,
                "PROBLEM: missing kernel, or a kernel, dtype, arch or set text too long");
    return;
  }
  w->has_problem = true;
  put(w->kernel, sizeof w->kernel, "%s", kernel);
  put(w->dtype, sizeof w->dtype, "%s", dtype ? dtype : "");
  put(w->arch, sizeof w->arch, "%s", arch ? arch : "");
  put(w->set, sizeof w->set, "%s", set ? set : "");
  w->seed = (uint64_t)at_msg_int(m, "seed", 1);
  w->reps = (int)at_msg_int(m, "reps", 50);
  w->warmup = (int)at_msg_int(m, "warmup", 5);
  w->flush = at_msg_int(m, "flush", 1) != 0;
  w->rotate = at_msg_int(m, "rotate", 1) != 0;
  w->check = at_msg_int(m, "check", 1) != 0;
  w->cpu_check_flops = at_msg_num(m, "cpu_check_flops", MAX_CPU_CHECK_FLOPS);
  if (w->reps < 1 || w->reps > AT_MAX_SAMPLES || w->warmup < 0 || w->warmup > 10000) {
    reply_error(AT_ERR_ARG, "PROBLEM: reps must be in 1..100000 and warmup in 0..10000");
    return;
  }
  at_gpu_info d;
  const char *source = at_msg_get(m, "source", NULL);
  w->builtin = !source && kn_is_builtin(kernel);
  if (load_kernel(w, kernel, source, err, sizeof err) ||
      kn_shape_parse(shape, &w->shape, err, sizeof err)) {
    reply_error(AT_ERR_ARG, err);
    return;
  }
#ifdef TILEC_TEST_HOOKS
  const char *fake = getenv("TILEC_WORKER_FAKE");
  if (fake) { /* the kernel and shape are checked as usual; nothing else touches a device */
    w->fake = true;
    if (fake_load(w, fake, err, sizeof err)) {
      reply_error(AT_ERR_ARG, err);
      return;
    }
    fake_device(&d);
    aligned = w->fake_aligned = fake_problem_aligned(w);
    goto ready;
  }
#endif
  if ((s = open_device(w, err, sizeof err))) {
    reply_error(s, err);
    return;
  }
  device_of(w, &d);
  if (!w->arch[0])
    put(w->arch, sizeof w->arch, "%s", d.arch);
  if (!cg_target_find(w->arch)) {
    put(err, sizeof err, "target %s (device %s) is not a target of this build", w->arch,
        w->dev.name);
    reply_error(AT_ERR_ARG, err);
    return;
  }
  rt_err e = {0};
  if (w->flush && rt_flusher_open(w->ctx, rt_l2_flush_bytes(w->dev.l2_bytes), &w->fl, &e)) {
    reply_error(AT_ERR_ENV, e.msg);
    return;
  }
  /* The problem of the default config: inputs, device data and the reference, built once. */
  ir_kernel *spec = NULL;
  if (!specialize(w, "", &spec, err, sizeof err) &&
      (s = use_problem(w, spec, &e, err, sizeof err))) {
    ir_kernel_free(spec);
    reply_error(s, err);
    return;
  }
  const char *bad;
  aligned = spec && w->have_prob && data_aligned(w, spec, &bad);
  ir_kernel_free(spec);
#ifdef TILEC_TEST_HOOKS
ready:;
#endif
  reply_device("READY", &d, aligned);
}

/* ---- one measurement ---------------------------------------------------------------------- */

typedef struct launch_state {
  worker *w;
  rt_func *fn;
  rt_launch_cfg cfg;
  rt_params params[MAX_COPIES];
  int copy; /* the copy the next launch uses */
} launch_state;

static rt_status launch_next(void *user, rt_err *e) {
  launch_state *ls = user;
  return rt_launch_params(ls->w->ctx, ls->fn, &ls->cfg, &ls->params[ls->copy], e);
}

/* Before each repetition: flush the L2 (outside the events), move on to the next copy. */
static rt_status before_rep(void *user, rt_err *e) {
  launch_state *ls = user;
  ls->copy = (ls->copy + 1) % ls->w->ncopies;
  return ls->w->flush ? rt_flush_l2(ls->w->ctx, &ls->w->fl, e) : RT_OK;
}

/* The outcome of a runtime failure during a measurement; true when the context is lost. */
static bool classify(const rt_err *e, const char *when, result *r) {
  rt_launch_class c = rt_err_launch_class(e);
  r->status = c == RT_LAUNCH_RESOURCES ? AT_RUN_RESOURCES : AT_RUN_FAULT;
  put(r->detail, sizeof r->detail, "%s: %s", when, e->msg);
  return c == RT_LAUNCH_FAULT;
}

/* Validates the outputs read back into w->prob (copy 0). */
static void validate(worker *w, result *r) {
  char err[1024];
  if (w->builtin) {
    if (kn_problem_check(&w->prob, err, sizeof err)) {
      r->status = AT_RUN_FAULT;
      put(r->detail, sizeof r->detail, "validation failed: %s", err);
      return;
    }
    r->max_err = 0;
    for (int i = 0; i < w->prob.nchecks; i++) {
      const kn_cmp_result *c = &w->prob.checks[i].r;
      double err_i = c->n_nonfinite ? INFINITY : c->err;
      if (err_i > r->max_err)
        r->max_err = err_i;
      if (!c->pass && r->status == AT_RUN_OK) {
        r->status = AT_RUN_WRONG;
        put(r->detail, sizeof r->detail,
            "output %s: error %.3g (tolerance %.3g), %lld non-finite elements",
            w->prob.checks[i].name, c->err, c->tol, (long long)c->n_nonfinite);
      }
    }
    return;
  }
  /* No reference for file kernels: every output element must at least have been written. */
  for (int b = 0; b < w->prob.nbufs; b++) {
    const kn_buf *kb = &w->prob.bufs[b];
    size_t esize = (size_t)ir_kind_bits(kb->kind) / 8;
    long long unwritten = 0;
    for (int64_t i = 0; kb->output && i < kb->count; i++) {
      const unsigned char *p = (const unsigned char *)kb->data + (size_t)i * esize;
      size_t j = 0;
      while (j < esize && p[j] == 0xff)
        j++;
      unwritten += j == esize;
    }
    if (unwritten && r->status == AT_RUN_OK) {
      r->status = AT_RUN_WRONG;
      put(r->detail, sizeof r->detail, "output %s: %lld of %lld elements never written", kb->name,
          unwritten, (long long)kb->count);
    }
  }
  if (r->status == AT_RUN_OK)
    put(r->detail, sizeof r->detail,
        "no reference for file kernels: checked that every "
        "output element was written");
}

/* Loads the image, validates and times; returns true when the context is lost. */
static bool run_candidate(worker *w, const ir_kernel *spec, const cg_output *lo, const void *img,
                          size_t n, result *r) {
  rt_err e = {0};
  rt_module *mod = NULL;
  launch_state ls = {.w = w};
  bool lost = false;
  rt_status s;
  if ((s = rt_module_load(w->ctx, img, n, &mod, &e)) ||
      (s = rt_module_func(mod, lo->name, &ls.fn, &e))) {
    r->status = s == RT_ERR_MODULE || s == RT_ERR_CUDA ? AT_RUN_COMPILE : AT_RUN_FAULT;
    put(r->detail, sizeof r->detail, "loading the image: %s", e.msg);
    lost = r->status == AT_RUN_FAULT && rt_err_launch_class(&e) == RT_LAUNCH_FAULT;
    goto done;
  }
  rt_func_attrs attrs;
  if ((s = rt_func_attrs_get(w->ctx, ls.fn, &attrs, &e))) {
    lost = classify(&e, "kernel attributes", r);
    goto done;
  }
  if (lo->stats.threads > attrs.max_threads || lo->stats.smem_bytes > w->dev.smem_per_block_optin) {
    r->status = AT_RUN_RESOURCES;
    put(r->detail, sizeof r->detail,
        "needs %d threads and %d B of shared memory per block; the kernel allows %d threads "
        "(%d registers each), the device %d B",
        lo->stats.threads, lo->stats.smem_bytes, attrs.max_threads, attrs.num_regs,
        w->dev.smem_per_block_optin);
    goto done;
  }
  if ((s = rt_func_set_dynamic_smem(w->ctx, ls.fn, (unsigned)lo->stats.smem_bytes, &e))) {
    lost = classify(&e, "shared memory", r);
    if (r->status == AT_RUN_FAULT && !lost)
      r->status = AT_RUN_RESOURCES;
    goto done;
  }
  for (int c = 0; c < w->ncopies; c++) {
    rt_argval args[IR_MAX_ARGS];
    launch_args(&w->prob, w->dptr[c], args);
    if ((s = rt_params_pack(spec, args, w->prob.nargs, &ls.params[c], &e))) {
      r->status = AT_RUN_FAULT;
      put(r->detail, sizeof r->detail, "packing the arguments: %s", e.msg);
      goto done;
    }
  }
  memcpy(ls.cfg.grid, ls.params[0].grid, sizeof ls.cfg.grid);
  ls.cfg.block[0] = (uint32_t)lo->stats.threads;
  ls.cfg.block[1] = ls.cfg.block[2] = 1;
  ls.cfg.smem = (uint32_t)lo->stats.smem_bytes;
  /* 1. poison the outputs, launch once, read back, validate */
  for (int b = 0; b < w->prob.nbufs; b++)
    if (w->prob.bufs[b].output &&
        (s = rt_memset8(w->ctx, w->dptr[0][b], 0xff, buf_bytes(&w->prob.bufs[b]), &e))) {
      lost = classify(&e, "poisoning the outputs", r);
      goto done;
    }
  if ((s = launch_next(&ls, &e))) {
    lost = classify(&e, "launch", r);
    goto done;
  }
  if ((s = rt_ctx_sync(w->ctx, &e))) {
    lost = classify(&e, "first run", r);
    goto done;
  }
  for (int b = 0; b < w->prob.nbufs; b++)
    if (w->prob.bufs[b].output && (s = rt_memcpy_dtoh(w->ctx, w->prob.bufs[b].data, w->dptr[0][b],
                                                      buf_bytes(&w->prob.bufs[b]), &e))) {
      lost = classify(&e, "reading the outputs", r);
      goto done;
    }
  if (w->check)
    validate(w, r);
  else
    put(r->detail, sizeof r->detail, "not validated (no_check)");
  if (r->status != AT_RUN_OK)
    goto done;
  /* 2. warm-up, then reps timed launches, each after a flush and on the next copy */
  r->samples = malloc((size_t)w->reps * sizeof *r->samples);
  if (!r->samples) {
    r->status = AT_RUN_FAULT;
    put(r->detail, sizeof r->detail, "out of host memory");
    goto done;
  }
  if ((s = rt_time_samples(w->ctx, launch_next, before_rep, &ls, w->warmup, w->reps, r->samples,
                           &e))) {
    free(r->samples);
    r->samples = NULL;
    lost = classify(&e, "timing", r);
    goto done;
  }
  r->n = w->reps;
  rt_clocks_mhz(0, &r->sm_mhz, &r->mem_mhz);
  size_t dlen = strlen(r->detail);
  put(r->detail + dlen, sizeof r->detail - dlen, "; %d reps after %d warm-up, L2 %s, %d %s",
      w->reps, w->warmup, w->flush ? "flushed" : "not flushed", w->ncopies,
      w->ncopies == 1 ? "copy of the inputs" : "rotating copies of the inputs");
done:
  if (!lost)
    rt_module_unload(mod);
  return lost;
}

static void on_measure(worker *w, const at_msg *m) {
  const char *config = at_msg_get(m, "config", NULL);
  size_t n = 0;
  const char *img = at_msg_get(m, "cubin", &n);
  if (!w->has_problem || !config || !img) {
    reply_error(AT_ERR_ARG, !w->has_problem ? "MEASURE before PROBLEM"
                                            : "MEASURE needs the fields config and cubin");
    return;
  }
  const char *variant = at_msg_get(m, "variant", NULL);
  bool aligned = variant && !strcmp(variant, "aligned");
  if (variant && !aligned) {
    reply_error(AT_ERR_ARG, "MEASURE: variant must be \"aligned\" when given");
    return;
  }
#ifdef TILEC_TEST_HOOKS
  if (w->fake) {
    if (aligned && !w->fake_aligned)
      reply_misaligned(config, "(the fake problem's)");
    else
      fake_measure(w, config);
    return;
  }
#endif
  char err[2048];
  ir_kernel *spec = NULL;
  cc_gpu g = {0};
  cg_output lo = {0};
  ir_diag d;
  rt_err e = {0};
  result r = {.status = AT_RUN_OK, .max_err = NAN, .sm_mhz = -1, .mem_mhz = -1};
  bool lost = false, built = false;
  at_status as;
  if (specialize(w, config, &spec, err, sizeof err)) {
    reply_error(AT_ERR_ARG, err);
    goto done;
  }
  built = !cc_gpu_build(spec, &g, &d);
  if (!built) {
    r.status = AT_RUN_COMPILE;
    put(r.detail, sizeof r.detail, "%s", d.msg);
  } else if (cg_lower(&g, w->arch, CG_NO_OPT, &lo, err, sizeof err)) {
    r.status = AT_RUN_COMPILE;
    put(r.detail, sizeof r.detail, "%s", err);
  } else {
    w->measuring = true;
    w->rebuilt = false;
    as = use_problem(w, spec, &e, err, sizeof err);
    w->measuring = false;
    if (as) {
      reply_error(as, err);
      goto done;
    }
    if (w->rebuilt)
      progress("candidate");
    const char *bad;
    if (aligned && !data_aligned(w, spec, &bad)) {
      reply_misaligned(config, bad);
      goto done;
    }
    lost = run_candidate(w, spec, &lo, img, n, &r);
  }
  reply_result(&r);
  if (lost) /* the context is gone and so is every resource in it: leave at once */
    _exit(1);
done:
  free(r.samples);
  cg_output_free(&lo);
  if (built)
    cc_gpu_free(&g);
  ir_kernel_free(spec);
}

/* ---- the loop ----------------------------------------------------------------------------- */

int cli_worker_main(int argc, char **argv) {
  (void)argc, (void)argv;
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* a dead tuner leaves no worker behind */
  signal(SIGPIPE, SIG_IGN);
  for (int fd = 5; fd < 1024; fd++) /* nothing the parent leaked stays open */
    close(fd);
  worker w = {0};
  at_reader_init(&w.rd, IN_FD);
#ifdef TILEC_TEST_HOOKS
  if (getenv("TILEC_WORKER_FAKE")) { /* scripted crashes leave no core files */
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
  }
#endif
  int rc = 0;
  for (;;) {
    at_msg m;
    at_err e = {0};
    at_status s = at_msg_read(&w.rd, -1, &m, &e);
    if (s == AT_MISS)
      break;
    if (s) {
      fprintf(stderr, "tilec __worker: %s\n", e.msg);
      rc = 1;
      break;
    }
    bool quit = !strcmp(m.type, "QUIT");
    if (!strcmp(m.type, "PROBLEM"))
      on_problem(&w, &m);
    else if (!strcmp(m.type, "MEASURE"))
      on_measure(&w, &m);
    else if (!strcmp(m.type, "DEVICE"))
      on_device(&w);
    else if (!quit) {
      char msg[64];
      put(msg, sizeof msg, "unknown request '%s'", m.type);
      reply_error(AT_ERR_ARG, msg);
    }
    at_msg_free(&m);
    if (quit)
      break;
  }
  drop_problem(&w);
  if (w.have_refs)
    rt_refs_unload(&w.refs);
  rt_flusher_close(w.ctx, &w.fl);
  rt_ctx_close(w.ctx);
  ir_kernel_free(w.k);
  for (int i = 0; i < w.nlines; i++)
    free(w.lines[i].config);
  free(w.lines);
  at_reader_free(&w.rd);
  return rc;
}
