/* autotune/compile.c — a tuning candidate from config to cubin (see compile.h).
 *
 * The same chain as `tilec compile --emit cubin`: ir_specialize (domains and constraints),
 * cc_gpu_build (layouts), cg_lower (LLVM → PTX), rt_nvjitlink_ptx (PTX → cubin, -verbose), and
 * ptxas's report parsed for registers, spills and static shared memory. Only nvJitLink is
 * opened from the CUDA toolkit, never the driver.
 */
#include "autotune/compile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autotune/sha256.h"
#include "codegen/codegen.h"
#include "compiler/gpu.h"
#include "ir/version.h"
#include "runtime/rt.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The first line of a multi-line diagnostic (the caret lines are for terminals). */
static void first_line(char *dst, size_t cap, const char *msg) {
  size_t n = strcspn(msg, "\n");
  if (n >= cap)
    n = cap - 1;
  memcpy(dst, msg, n);
  dst[n] = 0;
}

static void set(at_compiled *c, at_run status, const char *msg) {
  c->status = status;
  first_line(c->detail, sizeof c->detail, msg);
}

at_status at_compile(const ir_kernel *k, const ir_config *cfg, const char *arch, int smem_limit,
                     at_compiled *out, at_err *e) {
  return at_compile_flags(k, cfg, arch, smem_limit, 0, out, e);
}

at_status at_compile_flags(const ir_kernel *k, const ir_config *cfg, const char *arch,
                           int smem_limit, unsigned cg_flags, at_compiled *out, at_err *e) {
  memset(out, 0, sizeof *out);
  out->regs = out->spills = -1;
  if (!k || !cfg || !arch)
    return at_fail(e, AT_ERR_ARG, "at_compile: kernel, config and arch are required");
  double t0 = now_ms();
  ir_kernel *spec = NULL;
  cc_gpu g = {0};
  cg_output o = {0};
  rt_blob cubin = {0};
  at_status st = AT_OK;
  ir_diag d;
  char err[1024];
  ir_status is = ir_specialize(k, cfg, &spec, &d);
  if (is) {
    set(out, is == IR_ERR_CONFIG ? AT_RUN_PRUNED : AT_RUN_COMPILE, d.msg);
    goto done;
  }
  if (cc_gpu_build(spec, &g, &d)) {
    set(out, AT_RUN_COMPILE, d.msg);
    goto done;
  }
  if (cg_lower(&g, arch, CG_EMIT_PTX | (cg_flags & CG_ALIGNED), &o, err, sizeof err)) {
    set(out, AT_RUN_COMPILE, err);
    goto done;
  }
  out->threads = o.stats.threads;
  out->smem_bytes = o.stats.smem_bytes;
  snprintf(out->entry, sizeof out->entry, "%s", o.name);
  if (smem_limit > 0 && o.stats.smem_bytes > smem_limit) {
    char msg[160];
    snprintf(msg, sizeof msg, "needs %d bytes of shared memory per CTA, the target allows %d",
             o.stats.smem_bytes, smem_limit);
    set(out, AT_RUN_PRUNED, msg);
    goto done;
  }
  rt_err re = {0};
  rt_status rs = rt_nvjitlink_ptx(o.ptx, strlen(o.ptx), arch, NULL, 0, &cubin, &re);
  if (rs) {
    if (rt_status_is_env(rs)) {
      st = at_fail(e, AT_ERR_ENV, "%s", re.msg);
      set(out, AT_RUN_COMPILE, re.msg);
    } else
      set(out, rs == RT_ERR_OOM ? AT_RUN_RESOURCES : AT_RUN_COMPILE, re.msg);
    goto done;
  }
  rt_kernel_stats ks[4];
  int nk = rt_parse_link_log(cubin.log, ks, 4);
  for (int i = 0; i < nk; i++)
    if (!strcmp(ks[i].name, o.name)) {
      out->regs = ks[i].registers;
      if (ks[i].spill_store_bytes >= 0 && ks[i].spill_load_bytes >= 0)
        out->spills = ks[i].spill_store_bytes + ks[i].spill_load_bytes;
      if (ks[i].smem_bytes > 0)
        out->smem_bytes += ks[i].smem_bytes;
    }
  out->cubin = cubin.data; /* ownership moves to out */
  out->cubin_size = cubin.size;
  cubin.data = NULL;
  out->status = AT_RUN_COMPILED;
done:
  out->compile_ms = now_ms() - t0;
  rt_blob_free(&cubin);
  cg_output_free(&o);
  cc_gpu_free(&g);
  ir_kernel_free(spec);
  return st;
}

void at_compiled_free(at_compiled *c) {
  if (!c)
    return;
  free(c->cubin);
  memset(c, 0, sizeof *c);
}

at_status at_kernel_hash(const ir_kernel *k, char out[65], at_err *e) {
  char *text = k ? ir_print(k) : NULL;
  if (!text)
    return at_fail(e, k ? AT_ERR_OOM : AT_ERR_ARG,
                   k ? "out of memory" : "at_kernel_hash: no kernel");
  /* Line by line over the printer's fixed layout: a section opens with "NAME {" at column 0 and
   * closes with "}"; its items are indented two spaces. */
  size_t w = 0;
  enum { KEEP, NAMES, DROP } mode = KEEP;
  for (char *line = text, *next; *line; line = next) {
    size_t len = strcspn(line, "\n");
    next = line + len + (line[len] == '\n');
    if (mode != KEEP && line[0] == '}') {
      mode = KEEP;
      continue;
    }
    if (mode == KEEP && (!strncmp(line, "types {", 7) || !strncmp(line, "tunables {", 10)))
      mode = NAMES;
    else if (mode == KEEP &&
             (!strncmp(line, "constraints {", 13) || !strncmp(line, "buckets {", 9))) {
      mode = DROP;
      continue;
    } else if (mode == DROP)
      continue;
    else if (mode == NAMES && line[0] == ' ')
      len = 2 + strcspn(line + 2, " "); /* "  BM = 128 in [...]" -> "  BM" */
    memmove(text + w, line, len);
    w += len;
    text[w++] = '\n';
  }
  at_sha256_hex(text, w, out);
  free(text);
  return AT_OK;
}

/* The item of cfg that binds name: the last one, as in ir_specialize; NULL when none does. */
static const ir_config_item *bound(const ir_config *cfg, const char *name) {
  for (int i = cfg ? cfg->n - 1 : -1; i >= 0; i--)
    if (!strcmp(cfg->items[i].name, name))
      return &cfg->items[i];
  return NULL;
}

at_status at_code_config(const ir_kernel *k, const ir_config *cfg, char *out, size_t cap,
                         at_err *e) {
  if (!k || !out || cap == 0)
    return at_fail(e, AT_ERR_ARG, "at_code_config: a NULL argument");
  size_t n = 0;
  out[0] = 0;
  for (int i = 0; i < k->ntvars && n < cap; i++) {
    const ir_tvar *tv = &k->tvars[i];
    const ir_config_item *it = bound(cfg, tv->name);
    ir_kind kd = it && it->kind != IR_VOID ? it->kind : tv->choices[0];
    n += (size_t)snprintf(out + n, cap - n, "%s%s=%s", n ? "," : "", tv->name, ir_kind_name(kd));
  }
  for (int i = 0; i < k->nsyms && n < cap; i++) {
    const ir_sym *sym = &k->syms[i];
    if (sym->kind != SYM_CONST && sym->kind != SYM_TUNABLE)
      continue;
    const ir_config_item *it = bound(cfg, sym->name);
    const ir_num *v = it ? &it->value : sym->has_default ? &sym->def : NULL;
    const char *sep = n ? "," : "";
    if (!v)
      n += (size_t)snprintf(out + n, cap - n, "%s%s=?", sep, sym->name);
    else if (v->isf)
      n += (size_t)snprintf(out + n, cap - n, "%s%s=%.17g", sep, sym->name, v->f);
    else
      n += (size_t)snprintf(out + n, cap - n, "%s%s=%lld", sep, sym->name, (long long)v->i);
  }
  if (n >= cap) {
    out[0] = 0;
    return at_fail(e, AT_ERR_ARG, "kernel '%s': its config text is longer than %zu bytes", k->name,
                   cap - 1);
  }
  return AT_OK;
}

void at_toolchain_key(int driver_version, char *buf, size_t cap) {
  char llvm[64] = "?";
  cg_llvm_version(llvm, sizeof llvm);
  rt_lib_info li;
  rt_lib_query(RT_LIB_NVJITLINK, &li);
  snprintf(buf, cap, "tilec %s|llvm %s|nvjitlink %d.%d|driver %d.%d", TILEC_VERSION_STRING, llvm,
           li.loaded ? li.version_major : 0, li.loaded ? li.version_minor : 0,
           driver_version / 1000, driver_version % 1000 / 10);
}
