/* compiler/cli_gpu.c — `tilec run --gpu` and `tilec bench launch`: GPU IR → PTX → cubin →
 * launches on device 0.
 *
 * One session (open, compile, load, upload, pack) serves both commands. The same host buffers
 * the interpreter uses (kernels/problem.c) are copied to the device, so the verdict of --check
 * is computed by the same C references. Outputs are poisoned with all bits set before the first
 * launch, so an element the kernel never writes reads back as NaN and fails the check. Every
 * device resource is released by session_close.
 */
#include "compiler/cli_gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/codegen.h"
#include "runtime/rt.h"

typedef struct session {
  rt_ctx *ctx;
  rt_module *mod;
  rt_func *fn;
  rt_launch_cfg cfg;
  rt_params params;
  rt_argval args[IR_MAX_ARGS];
  int nargs;
  uint64_t dptr[KN_MAX_BUFS];
  const ir_kernel *k;
} session;

static rt_status launch_once(void *user, rt_err *e) {
  session *s = user;
  return rt_launch_params(s->ctx, s->fn, &s->cfg, &s->params, e);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}

static size_t buf_bytes(const kn_buf *b) {
  return (size_t)(b->count ? b->count : 1) * (size_t)(ir_kind_bits(b->kind) / 8);
}

/* The exit code of a runtime failure: 2 for what the machine lacks, else 1. */
static int rt_fail(rt_status s, const rt_err *e, char *err, size_t cap) {
  snprintf(err, cap, "%s", e->msg);
  return rt_status_is_env(s) ? 2 : 1;
}

static void session_close(session *s) {
  for (int b = 0; b < KN_MAX_BUFS; b++)
    if (s->dptr[b])
      rt_mem_free(s->ctx, s->dptr[b]);
  rt_module_unload(s->mod);
  rt_ctx_close(s->ctx);
  memset(s, 0, sizeof *s);
}

/* Opens device 0, compiles g for it (or for arch), loads the cubin, uploads p's inputs,
 * poisons its outputs and packs the launch. Fills the description part of r. Returns 0, or
 * the exit code of cli_gpu_run with a message; s is then closed already. */
static int session_open(session *s, const cc_gpu *g, kn_problem *p, const char *arch,
                        cli_gpu_result *r, char *err, size_t errcap) {
  memset(s, 0, sizeof *s);
  s->k = g->k;
  cg_output out = {0};
  rt_blob cubin = {0};
  rt_err e = {0};
  rt_status st;
  int rc = 1;
  rt_device_info dev;
  if ((st = rt_ctx_open(0, 0, &s->ctx, &e)) || (st = rt_device_query(0, &dev, &e))) {
    rc = rt_fail(st, &e, err, errcap);
    goto fail;
  }
  snprintf(r->device, sizeof r->device, "%s", dev.name);
  snprintf(r->key, sizeof r->key, "%s", dev.key);
  char want[sizeof dev.arch + 2];
  snprintf(want, sizeof want, "%s%s", dev.arch, dev.cc_major == 9 ? "a" : ""); /* sm_90a */
  if (!arch)
    arch = want;
  if (strlen(arch) >= sizeof r->arch || !cg_target_find(arch)) {
    snprintf(err, errcap, "target %s (device %s) is not a target of this build", arch, dev.name);
    goto fail;
  }
  memcpy(r->arch, arch, strlen(arch) + 1);
  s->nargs = p->nargs;
  for (int i = 0; i < p->nargs; i++) {
    s->args[i].kind = p->args[i].kind;
    s->args[i].scalar = p->args[i].scalar;
    s->args[i].rank = p->args[i].rank;
    for (int d = 0; d < p->args[i].rank; d++) {
      s->args[i].shape[d] = p->args[i].shape[d];
      s->args[i].stride[d] = p->args[i].stride[d];
    }
  }
  /* device allocations are 256-byte aligned: the shapes and strides decide the variant */
  r->aligned = rt_args_aligned(g->k, s->args, s->nargs, NULL);
  double t0 = now_ms();
  if (cg_lower(g, r->arch, CG_EMIT_PTX | (r->aligned ? CG_ALIGNED : 0), &out, err, errcap))
    goto fail;
  if ((st = rt_nvjitlink_ptx(out.ptx, strlen(out.ptx), r->arch, NULL, 0, &cubin, &e))) {
    rc = rt_fail(st, &e, err, errcap);
    goto fail;
  }
  r->compile_ms = now_ms() - t0;
  if ((st = rt_module_load(s->ctx, cubin.data, cubin.size, &s->mod, &e)) ||
      (st = rt_module_func(s->mod, out.name, &s->fn, &e)) ||
      (st = rt_func_set_dynamic_smem(s->ctx, s->fn, (unsigned)out.stats.smem_bytes, &e))) {
    rc = rt_fail(st, &e, err, errcap);
    goto fail;
  }
  rt_func_attrs attrs;
  if (!rt_func_attrs_get(s->ctx, s->fn, &attrs, &e)) {
    r->regs = attrs.num_regs;
    r->local_bytes = attrs.local_bytes;
  }
  for (int b = 0; b < p->nbufs; b++) { /* inputs copied, outputs poisoned */
    const kn_buf *kb = &p->bufs[b];
    size_t bytes = buf_bytes(kb);
    if ((st = rt_mem_alloc(s->ctx, bytes, &s->dptr[b], &e)) ||
        (st = kb->output ? rt_memset8(s->ctx, s->dptr[b], 0xff, bytes, &e)
                         : rt_memcpy_htod(s->ctx, s->dptr[b], kb->data, bytes, &e))) {
      rc = rt_fail(st, &e, err, errcap);
      goto fail;
    }
    for (int i = 0; i < p->nargs; i++) /* the argument whose host data is this buffer */
      if (p->args[i].kind != ARG_SCALAR && p->args[i].data == kb->data)
        s->args[i].dptr = s->dptr[b];
  }
  if (r->aligned && !rt_args_aligned(g->k, s->args, s->nargs, NULL)) {
    snprintf(err, errcap, "internal error: a device allocation is not 16-byte aligned");
    goto fail;
  }
  if ((st = rt_params_pack(g->k, s->args, s->nargs, &s->params, &e))) {
    rc = rt_fail(st, &e, err, errcap);
    goto fail;
  }
  memcpy(s->cfg.grid, s->params.grid, sizeof s->cfg.grid);
  s->cfg.block[0] = (uint32_t)out.stats.threads;
  s->cfg.block[1] = s->cfg.block[2] = 1;
  s->cfg.smem = (uint32_t)out.stats.smem_bytes;
  r->threads = out.stats.threads;
  r->smem_bytes = out.stats.smem_bytes;
  rt_blob_free(&cubin);
  cg_output_free(&out);
  return 0;
fail:
  rt_blob_free(&cubin);
  cg_output_free(&out);
  session_close(s);
  return rc;
}

int cli_gpu_run(const cc_gpu *g, kn_problem *p, const char *arch, int reps, cli_gpu_result *r,
                char *err, size_t errcap) {
  memset(r, 0, sizeof *r);
  session s;
  int rc = session_open(&s, g, p, arch, r, err, errcap);
  if (rc)
    return rc;
  rt_err e = {0};
  rt_status st;
  if ((st = launch_once(&s, &e)) || (st = rt_ctx_sync(s.ctx, &e)))
    goto fail;
  for (int b = 0; b < p->nbufs; b++)
    if (p->bufs[b].output &&
        (st = rt_memcpy_dtoh(s.ctx, p->bufs[b].data, s.dptr[b], buf_bytes(&p->bufs[b]), &e)))
      goto fail;
  if (reps > 0) {
    rt_timing t;
    if ((st = rt_time(s.ctx, launch_once, &s, reps < 10 ? 1 : 5, reps, &t, &e)))
      goto fail;
    r->median_ms = t.median_ms;
    r->min_ms = t.min_ms;
    r->max_ms = t.max_ms;
    r->reps = t.reps;
  }
  session_close(&s);
  return 0;
fail:
  rc = rt_fail(st, &e, err, errcap);
  session_close(&s);
  return rc;
}

int cli_gpu_bench_launch(const cc_gpu *g, kn_problem *p, const char *arch, int n,
                         cli_launch_cost *c, char *err, size_t errcap) {
  memset(c, 0, sizeof *c);
  session s;
  cli_gpu_result r = {0};
  int rc = session_open(&s, g, p, arch, &r, err, errcap);
  if (rc)
    return rc;
  rt_err e = {0};
  rt_status st = RT_OK;
  void *ptrs[RT_MAX_PARAMS];
  rt_params_pointers(&s.params, ptrs);
  if ((st = launch_once(&s, &e)) || (st = rt_ctx_sync(s.ctx, &e)))
    goto fail;
  for (int round = 0; round < 2; round++) { /* the first round warms caches up */
    /* raw: cuLaunchKernel with a kernelParams array built once */
    double t0 = now_ms();
    for (int i = 0; i < n && !st; i++)
      st = rt_launch(s.ctx, s.fn, &s.cfg, ptrs, &e);
    double t1 = now_ms();
    if (st || (st = rt_ctx_sync(s.ctx, &e)))
      goto fail;
    /* tilec: the arguments packed from tensor descriptors for every launch */
    double t2 = now_ms();
    for (int i = 0; i < n && !st; i++)
      if (!(st = rt_params_pack(s.k, s.args, s.nargs, &s.params, &e)))
        st = launch_once(&s, &e);
    double t3 = now_ms();
    if (st || (st = rt_ctx_sync(s.ctx, &e)))
      goto fail;
    c->raw_us = 1e3 * (t1 - t0) / n;
    c->tilec_us = 1e3 * (t3 - t2) / n;
  }
  c->launches = n;
  session_close(&s);
  return 0;
fail:
  rc = rt_fail(st, &e, err, errcap);
  session_close(&s);
  return rc;
}
