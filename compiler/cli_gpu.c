/* compiler/cli_gpu.c — `tilec run --gpu`: GPU IR → PTX → cubin → launch on device 0 → timing.
 *
 * The same host buffers the interpreter uses (kernels/problem.c) are copied to the device, so
 * the verdict of --check is computed by the same C references. Outputs are poisoned with all
 * bits set before the first launch, so an element the kernel never writes reads back as NaN
 * and fails the check. Every device resource is released through one cleanup path.
 */
#include "compiler/cli_gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/codegen.h"
#include "runtime/rt.h"

typedef struct {
  rt_ctx *ctx;
  rt_func *fn;
  rt_launch_cfg cfg;
  rt_params params;
} launch_state;

static rt_status launch_once(void *user, rt_err *e) {
  launch_state *s = user;
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

int cli_gpu_run(const cc_gpu *g, kn_problem *p, const char *arch, int reps, cli_gpu_result *r,
                char *err, size_t errcap) {
  memset(r, 0, sizeof *r);
  launch_state st = {0};
  rt_module *mod = NULL;
  uint64_t dptr[KN_MAX_BUFS] = {0};
  cg_output out = {0};
  rt_blob cubin = {0};
  rt_err e = {0};
  rt_status s;
  int rc = 1;
  rt_device_info dev;
  if ((s = rt_ctx_open(0, 0, &st.ctx, &e)) || (s = rt_device_query(0, &dev, &e))) {
    rc = rt_fail(s, &e, err, errcap);
    goto done;
  }
  snprintf(r->device, sizeof r->device, "%s", dev.name);
  snprintf(r->key, sizeof r->key, "%s", dev.key);
  char want[sizeof dev.arch + 2];
  snprintf(want, sizeof want, "%s%s", dev.arch, dev.cc_major == 9 ? "a" : ""); /* sm_90 -> sm_90a */
  if (!arch)
    arch = want;
  if (strlen(arch) >= sizeof r->arch) {
    snprintf(err, errcap, "--arch %s: unknown target", arch);
    goto done;
  }
  memcpy(r->arch, arch, strlen(arch) + 1);
  if (!cg_target_find(r->arch)) {
    snprintf(err, errcap, "device %s (%s) is not a target of this build", dev.name, r->arch);
    goto done;
  }
  double t0 = now_ms();
  if (cg_lower(g, r->arch, CG_EMIT_PTX, &out, err, errcap))
    goto done;
  if ((s = rt_nvjitlink_ptx(out.ptx, strlen(out.ptx), r->arch, NULL, 0, &cubin, &e))) {
    rc = rt_fail(s, &e, err, errcap);
    goto done;
  }
  r->compile_ms = now_ms() - t0;
  if ((s = rt_module_load(st.ctx, cubin.data, cubin.size, &mod, &e)) ||
      (s = rt_module_func(mod, out.name, &st.fn, &e)) ||
      (s = rt_func_set_dynamic_smem(st.ctx, st.fn, (unsigned)out.stats.smem_bytes, &e))) {
    rc = rt_fail(s, &e, err, errcap);
    goto done;
  }
  rt_func_attrs attrs;
  if (!rt_func_attrs_get(st.ctx, st.fn, &attrs, &e)) {
    r->regs = attrs.num_regs;
    r->local_bytes = attrs.local_bytes;
  }
  /* device buffers: inputs copied, outputs poisoned */
  rt_argval args[IR_MAX_ARGS];
  memset(args, 0, sizeof args);
  for (int i = 0; i < p->nargs; i++) {
    args[i].kind = p->args[i].kind;
    args[i].scalar = p->args[i].scalar;
    args[i].rank = p->args[i].rank;
    for (int d = 0; d < p->args[i].rank; d++) {
      args[i].shape[d] = p->args[i].shape[d];
      args[i].stride[d] = p->args[i].stride[d];
    }
  }
  for (int b = 0; b < p->nbufs; b++) {
    const kn_buf *kb = &p->bufs[b];
    size_t bytes = buf_bytes(kb);
    if ((s = rt_mem_alloc(st.ctx, bytes, &dptr[b], &e)) ||
        (s = kb->output ? rt_memset8(st.ctx, dptr[b], 0xff, bytes, &e)
                        : rt_memcpy_htod(st.ctx, dptr[b], kb->data, bytes, &e))) {
      rc = rt_fail(s, &e, err, errcap);
      goto done;
    }
    for (int i = 0; i < p->nargs; i++) /* the argument whose host data is this buffer */
      if (p->args[i].kind != ARG_SCALAR && p->args[i].data == kb->data)
        args[i].dptr = dptr[b];
  }
  if ((s = rt_params_pack(g->k, args, p->nargs, &st.params, &e))) {
    rc = rt_fail(s, &e, err, errcap);
    goto done;
  }
  memcpy(st.cfg.grid, st.params.grid, sizeof st.cfg.grid);
  st.cfg.block[0] = (uint32_t)out.stats.threads;
  st.cfg.block[1] = st.cfg.block[2] = 1;
  st.cfg.smem = (uint32_t)out.stats.smem_bytes;
  r->threads = out.stats.threads;
  r->smem_bytes = out.stats.smem_bytes;
  if ((s = launch_once(&st, &e)) || (s = rt_ctx_sync(st.ctx, &e))) {
    rc = rt_fail(s, &e, err, errcap);
    goto done;
  }
  for (int b = 0; b < p->nbufs; b++)
    if (p->bufs[b].output &&
        (s = rt_memcpy_dtoh(st.ctx, p->bufs[b].data, dptr[b], buf_bytes(&p->bufs[b]), &e))) {
      rc = rt_fail(s, &e, err, errcap);
      goto done;
    }
  if (reps > 0) {
    rt_timing t;
    if ((s = rt_time(st.ctx, launch_once, &st, reps < 10 ? 1 : 5, reps, &t, &e))) {
      rc = rt_fail(s, &e, err, errcap);
      goto done;
    }
    r->median_ms = t.median_ms;
    r->min_ms = t.min_ms;
    r->max_ms = t.max_ms;
    r->reps = t.reps;
  }
  rc = 0;
done:
  for (int b = 0; b < KN_MAX_BUFS; b++)
    if (dptr[b])
      rt_mem_free(st.ctx, dptr[b]);
  rt_module_unload(mod);
  rt_blob_free(&cubin);
  cg_output_free(&out);
  rt_ctx_close(st.ctx);
  return rc;
}
