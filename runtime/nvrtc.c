/* runtime/nvrtc.c — NVRTC (CUDA C++ -> PTX or cubin) and nvJitLink (PTX -> cubin), both opened
 * with dlopen, plus the parser of nvJitLink's -verbose info log.
 *
 * Neither library needs a GPU, so everything here runs on a CPU-only machine. Each library is
 * opened once per process (pthread_once), searched as docs/runtime.md says, and kept open.
 * nvJitLink.h declares its API as static inline wrappers around versioned symbols
 * (__nvJitLinkCreate_13_0, ...): the table resolves one consistent family of those names, the
 * first of _13_0, _12_0 (every 12.x library exports it) and the plain names that the library
 * exports. The autotuner reads registers and spills per kernel from rt_parse_link_log.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_impl.h"

/* ---- the nvJitLink info log (pure) ------------------------------------------------------- */

/* Extracts a kernel name after `key` in line: quoted ('k') or up to a space, ':' or the end. */
static bool name_after(const char *line, const char *key, char *name, size_t cap) {
  const char *p = strstr(line, key);
  if (!p)
    return false;
  p += strlen(key);
  while (*p == ' ')
    p++;
  const char *end;
  if (*p == '\'') {
    end = strchr(++p, '\'');
    if (!end)
      return false;
  } else {
    end = p;
    while (*end && *end != ' ' && *end != ':' && *end != '\n' && *end != '\r')
      end++;
  }
  size_t n = (size_t)(end - p);
  if (n == 0 || n >= cap)
    return false;
  memcpy(name, p, n);
  name[n] = 0;
  return true;
}

/* The stats of kernel `name`: found among out[0 .. *n), or appended; NULL when out is full. */
static rt_kernel_stats *stats_for(const char *name, rt_kernel_stats *out, int cap, int *n) {
  for (int i = 0; i < *n; i++)
    if (!strcmp(out[i].name, name))
      return &out[i];
  if (*n >= cap)
    return NULL;
  rt_kernel_stats *k = &out[(*n)++];
  memset(k, 0, sizeof *k);
  snprintf(k->name, sizeof k->name, "%s", name);
  k->registers = k->barriers = k->stack_bytes = k->spill_store_bytes = k->spill_load_bytes =
      k->smem_bytes = k->cmem_bytes = -1;
  return k;
}

/* Sets *field to v unless an earlier line reported it: ptxas's own report comes before the
 * linker's summary, and wins (the summary's smem includes the 1 KiB the system reserves). */
static void set_once(int *field, long v) {
  if (*field < 0)
    *field = v > 0x7fffffff ? 0x7fffffff : (int)v;
}

/* One comma-separated item such as "Used 32 registers", "400 bytes stack frame", "0 bytes spill
 * stores", "4096 bytes smem", "540 bytes cmem[0]", "400 stack". */
static void parse_item(const char *item, const char *end, rt_kernel_stats *k) {
  const char *p = item;
  while (p < end && !isdigit((unsigned char)*p))
    p++;
  if (p == end)
    return;
  char *after;
  long v = strtol(p, &after, 10);
  if (after > end)
    return;
  char rest[64];
  const char *r = after;
  while (r < end && *r == ' ')
    r++;
  size_t n = (size_t)(end - r) < sizeof rest - 1 ? (size_t)(end - r) : sizeof rest - 1;
  memcpy(rest, r, n);
  rest[n] = 0;
  while (n > 0 && (rest[n - 1] == ' ' || rest[n - 1] == '\r'))
    rest[--n] = 0;
  if (!strcmp(rest, "registers"))
    set_once(&k->registers, v);
  else if (!strcmp(rest, "barriers"))
    set_once(&k->barriers, v);
  else if (!strcmp(rest, "bytes stack frame") || !strcmp(rest, "stack"))
    set_once(&k->stack_bytes, v);
  else if (!strcmp(rest, "bytes spill stores"))
    set_once(&k->spill_store_bytes, v);
  else if (!strcmp(rest, "bytes spill loads"))
    set_once(&k->spill_load_bytes, v);
  else if (!strcmp(rest, "bytes smem"))
    set_once(&k->smem_bytes, v);
  else if (!strcmp(rest, "bytes cmem[0]"))
    set_once(&k->cmem_bytes, v);
}

int rt_parse_link_log(const char *log, rt_kernel_stats *out, int cap) {
  int n = 0;
  rt_kernel_stats *cur = NULL;
  if (!log || !out)
    return 0;
  for (const char *line = log; *line;) {
    const char *eol = strchr(line, '\n');
    size_t len = eol ? (size_t)(eol - line) : strlen(line);
    char buf[1024];
    size_t m = len < sizeof buf - 1 ? len : sizeof buf - 1;
    memcpy(buf, line, m);
    buf[m] = 0;
    char name[256];
    if (name_after(buf, "Compiling entry function", name, sizeof name) ||
        name_after(buf, "Function properties for", name, sizeof name)) {
      cur = stats_for(name, out, cap, &n);
    } else if (cur) {
      const char *text = strchr(buf, ':');
      text = text ? text + 1 : buf;
      for (const char *item = text; *item;) {
        const char *comma = strchr(item, ',');
        const char *end = comma ? comma : item + strlen(item);
        parse_item(item, end, cur);
        item = comma ? comma + 1 : end;
      }
    }
    line += len + (eol ? 1 : 0);
  }
  return n;
}

#if TILEC_HAVE_CUDA_H

#include <nvJitLink.h>
#include <nvrtc.h>

/* ---- NVRTC ------------------------------------------------------------------------------- */

#define NVRTC_FUNCS(X)                                                                             \
  X(nvrtcVersion)                                                                                  \
  X(nvrtcGetErrorString)                                                                           \
  X(nvrtcCreateProgram)                                                                            \
  X(nvrtcDestroyProgram)                                                                           \
  X(nvrtcCompileProgram)                                                                           \
  X(nvrtcGetPTXSize)                                                                               \
  X(nvrtcGetPTX)                                                                                   \
  X(nvrtcGetCUBINSize)                                                                             \
  X(nvrtcGetCUBIN)                                                                                 \
  X(nvrtcGetProgramLogSize)                                                                        \
  X(nvrtcGetProgramLog)

static struct {
  rt_status status;
  char error[1024];
  char path[512];
  void *lib;
#define FIELD(sym) __typeof__(sym) *sym;
  NVRTC_FUNCS(FIELD)
#undef FIELD
} nvrtc;

static pthread_once_t nvrtc_once = PTHREAD_ONCE_INIT;

static void load_nvrtc(void) {
  static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", NULL};
  char why[512];
  nvrtc.lib = rt_dl_search("TILEC_LIBNVRTC", names, nvrtc.path, sizeof nvrtc.path, why, sizeof why);
  const char *override = getenv("TILEC_LIBNVRTC");
  if (!nvrtc.lib && override && override[0]) {
    nvrtc.status = RT_ERR_NO_LIBRARY;
    snprintf(nvrtc.error, sizeof nvrtc.error, "no NVRTC: TILEC_LIBNVRTC cannot be opened (%s)",
             why);
    return;
  }
  if (!nvrtc.lib) {
    nvrtc.status = RT_ERR_NO_LIBRARY;
    snprintf(nvrtc.error, sizeof nvrtc.error,
             "no NVRTC: libnvrtc.so.13, .so.12 or libnvrtc.so not found on the loader path, in "
             "$CUDA_HOME/lib64 or /usr/local/cuda/lib64 (%s)",
             why);
    return;
  }
#define RESOLVE(sym)                                                                               \
  {                                                                                                \
    void *p = dlsym(nvrtc.lib, #sym);                                                              \
    if (!p) {                                                                                      \
      nvrtc.status = RT_ERR_NO_LIBRARY;                                                            \
      snprintf(nvrtc.error, sizeof nvrtc.error, "no usable NVRTC: %s has no symbol %s",            \
               nvrtc.path, #sym);                                                                  \
      return;                                                                                      \
    }                                                                                              \
    memcpy(&nvrtc.sym, &p, sizeof p);                                                              \
  }
  NVRTC_FUNCS(RESOLVE)
#undef RESOLVE
  nvrtc.status = RT_OK;
}

rt_status rt_nvrtc_load(rt_err *e) {
  pthread_once(&nvrtc_once, load_nvrtc);
  return nvrtc.status ? rt_fail(e, nvrtc.status, "%s", nvrtc.error) : RT_OK;
}

void rt_lib_query_nvrtc(rt_lib_info *out) {
  memset(out, 0, sizeof *out);
  rt_err e;
  if (rt_nvrtc_load(&e)) {
    rt_copy(out->error, sizeof out->error, e.msg);
    return;
  }
  out->loaded = true;
  snprintf(out->path, sizeof out->path, "%s", nvrtc.path);
  nvrtc.nvrtcVersion(&out->version_major, &out->version_minor);
}

/* "<call> failed: NVRTC_ERROR_... " with NVRTC's string for r. */
static rt_status nvrtc_fail(rt_err *e, nvrtcResult r, const char *call, const char *name) {
  const char *str = nvrtc.nvrtcGetErrorString(r);
  rt_status s = r == NVRTC_ERROR_OUT_OF_MEMORY ? RT_ERR_OOM : RT_ERR_COMPILE;
  return rt_fail(e, s, "%s failed for %s: %s", call, name, str ? str : "unknown NVRTC error");
}

rt_status rt_nvrtc_compile(const char *source, const char *name, const char *arch,
                           const char *const *opts, int nopts, rt_blob *out, rt_err *e) {
  memset(out, 0, sizeof *out);
  rt_status s = rt_nvrtc_load(e);
  if (s)
    return s;
  if (!source || !name || !arch || nopts < 0 || (nopts > 0 && !opts) || nopts > 60)
    return rt_fail(e, RT_ERR_ARG, "rt_nvrtc_compile: bad arguments");
  bool cubin = !strncmp(arch, "sm_", 3);
  if (!cubin && strncmp(arch, "compute_", 8))
    return rt_fail(e, RT_ERR_ARG, "rt_nvrtc_compile: arch '%s' is neither sm_XX nor compute_XX",
                   arch);
  char archopt[64];
  snprintf(archopt, sizeof archopt, "-arch=%s", arch);
  const char *all[64];
  int n = 0;
  all[n++] = archopt;
  for (int i = 0; i < nopts; i++)
    all[n++] = opts[i];

  nvrtcProgram prog = NULL;
  nvrtcResult r = nvrtc.nvrtcCreateProgram(&prog, source, name, 0, NULL, NULL);
  if (r)
    return nvrtc_fail(e, r, "nvrtcCreateProgram", name);
  nvrtcResult rc = nvrtc.nvrtcCompileProgram(prog, n, all);
  size_t logsize = 0;
  if ((r = nvrtc.nvrtcGetProgramLogSize(prog, &logsize))) {
    s = nvrtc_fail(e, r, "nvrtcGetProgramLogSize", name);
    goto fail;
  }
  if (!(out->log = calloc(logsize + 1, 1))) {
    s = rt_fail(e, RT_ERR_OOM, "out of host memory");
    goto fail;
  }
  if (logsize && (r = nvrtc.nvrtcGetProgramLog(prog, out->log))) {
    s = nvrtc_fail(e, r, "nvrtcGetProgramLog", name);
    goto fail;
  }
  if (rc) {
    s = nvrtc_fail(e, rc, "nvrtcCompileProgram", name);
    if (e)
      snprintf(e->msg + strlen(e->msg), sizeof e->msg - strlen(e->msg), " (%s)", archopt);
    rt_err_append_log(e, out->log);
    goto fail;
  }
  size_t size = 0;
  r = cubin ? nvrtc.nvrtcGetCUBINSize(prog, &size) : nvrtc.nvrtcGetPTXSize(prog, &size);
  if (r) {
    s = nvrtc_fail(e, r, cubin ? "nvrtcGetCUBINSize" : "nvrtcGetPTXSize", name);
    goto fail;
  }
  if (size == 0) {
    s = rt_fail(e, RT_ERR_COMPILE, "NVRTC produced no %s for %s (%s)", cubin ? "cubin" : "PTX",
                name, archopt);
    goto fail;
  }
  if (!(out->data = calloc(size + 1, 1))) {
    s = rt_fail(e, RT_ERR_OOM, "out of host memory");
    goto fail;
  }
  r = cubin ? nvrtc.nvrtcGetCUBIN(prog, (char *)out->data)
            : nvrtc.nvrtcGetPTX(prog, (char *)out->data);
  if (r) {
    s = nvrtc_fail(e, r, cubin ? "nvrtcGetCUBIN" : "nvrtcGetPTX", name);
    goto fail;
  }
  /* NVRTC's PTX size counts the terminating NUL; ours does not. */
  out->size = cubin ? size : strlen((const char *)out->data);
  nvrtc.nvrtcDestroyProgram(&prog);
  return RT_OK;
fail:
  nvrtc.nvrtcDestroyProgram(&prog);
  rt_blob_free(out);
  return s;
}

/* ---- nvJitLink --------------------------------------------------------------------------- */

/* X(field, function name after the prefix): the versioned symbol is
 * __nvJitLink<name><suffix>, the plain one nvJitLink<name>. */
#define JITLINK_FUNCS(X)                                                                           \
  X(create, Create, __nvJitLinkCreate_13_0)                                                        \
  X(destroy, Destroy, __nvJitLinkDestroy_13_0)                                                     \
  X(add_data, AddData, __nvJitLinkAddData_13_0)                                                    \
  X(complete, Complete, __nvJitLinkComplete_13_0)                                                  \
  X(cubin_size, GetLinkedCubinSize, __nvJitLinkGetLinkedCubinSize_13_0)                            \
  X(cubin, GetLinkedCubin, __nvJitLinkGetLinkedCubin_13_0)                                         \
  X(error_log_size, GetErrorLogSize, __nvJitLinkGetErrorLogSize_13_0)                              \
  X(error_log, GetErrorLog, __nvJitLinkGetErrorLog_13_0)                                           \
  X(info_log_size, GetInfoLogSize, __nvJitLinkGetInfoLogSize_13_0)                                 \
  X(info_log, GetInfoLog, __nvJitLinkGetInfoLog_13_0)

static struct {
  rt_status status;
  char error[1024];
  char path[512];
  const char *family; /* "_13_0", "_12_0" or "" (plain names) */
  void *lib;
#define FIELD(field, name, proto) __typeof__(proto) *field;
  JITLINK_FUNCS(FIELD)
#undef FIELD
  nvJitLinkResult (*version)(unsigned *major, unsigned *minor); /* 12.3 and later */
} jl;

static pthread_once_t jl_once = PTHREAD_ONCE_INIT;

/* The address of nvJitLink<name> in the family `suffix` ("" for the plain name). */
static void *jl_sym(const char *name, const char *suffix) {
  char sym[128];
  if (suffix[0])
    snprintf(sym, sizeof sym, "__nvJitLink%s%s", name, suffix);
  else
    snprintf(sym, sizeof sym, "nvJitLink%s", name);
  return dlsym(jl.lib, sym);
}

static void load_jitlink(void) {
  static const char *const names[] = {"libnvJitLink.so.13", "libnvJitLink.so.12", "libnvJitLink.so",
                                      NULL};
  static const char *const families[] = {"_13_0", "_12_0", ""};
  char why[512];
  jl.lib = rt_dl_search("TILEC_LIBNVJITLINK", names, jl.path, sizeof jl.path, why, sizeof why);
  const char *override = getenv("TILEC_LIBNVJITLINK");
  if (!jl.lib && override && override[0]) {
    jl.status = RT_ERR_NO_LIBRARY;
    snprintf(jl.error, sizeof jl.error, "no nvJitLink: TILEC_LIBNVJITLINK cannot be opened (%s)",
             why);
    return;
  }
  if (!jl.lib) {
    jl.status = RT_ERR_NO_LIBRARY;
    snprintf(jl.error, sizeof jl.error,
             "no nvJitLink: libnvJitLink.so.13, .so.12 or libnvJitLink.so not found on the loader "
             "path, in $CUDA_HOME/lib64 or /usr/local/cuda/lib64 (%s)",
             why);
    return;
  }
  for (size_t i = 0; i < sizeof families / sizeof families[0] && !jl.family; i++)
    if (jl_sym("Create", families[i]))
      jl.family = families[i];
  if (!jl.family) {
    jl.status = RT_ERR_NO_LIBRARY;
    snprintf(jl.error, sizeof jl.error,
             "no usable nvJitLink: %s has none of __nvJitLinkCreate_13_0, __nvJitLinkCreate_12_0, "
             "nvJitLinkCreate",
             jl.path);
    return;
  }
#define RESOLVE(field, name, proto)                                                                \
  {                                                                                                \
    void *p = jl_sym(#name, jl.family);                                                            \
    if (!p) {                                                                                      \
      jl.status = RT_ERR_NO_LIBRARY;                                                               \
      snprintf(jl.error, sizeof jl.error, "no usable nvJitLink: %s has no symbol %s%s%s", jl.path, \
               jl.family[0] ? "__nvJitLink" : "nvJitLink", #name, jl.family);                      \
      return;                                                                                      \
    }                                                                                              \
    memcpy(&jl.field, &p, sizeof p);                                                               \
  }
  JITLINK_FUNCS(RESOLVE)
#undef RESOLVE
  void *v = dlsym(jl.lib, "nvJitLinkVersion");
  if (v)
    memcpy(&jl.version, &v, sizeof v);
  jl.status = RT_OK;
}

rt_status rt_nvjitlink_load(rt_err *e) {
  pthread_once(&jl_once, load_jitlink);
  return jl.status ? rt_fail(e, jl.status, "%s", jl.error) : RT_OK;
}

void rt_lib_query_nvjitlink(rt_lib_info *out) {
  memset(out, 0, sizeof *out);
  rt_err e;
  if (rt_nvjitlink_load(&e)) {
    rt_copy(out->error, sizeof out->error, e.msg);
    return;
  }
  out->loaded = true;
  snprintf(out->path, sizeof out->path, "%s", jl.path);
  unsigned major = 0, minor = 0;
  if (jl.version && jl.version(&major, &minor) == NVJITLINK_SUCCESS) {
    out->version_major = (int)major;
    out->version_minor = (int)minor;
  } else if (!strcmp(jl.family, "_12_0")) {
    out->version_major = 12;
  } else if (!strcmp(jl.family, "_13_0")) {
    out->version_major = 13;
  }
}

static const char *jl_result_name(nvJitLinkResult r) {
  switch (r) {
  case NVJITLINK_SUCCESS:
    return "NVJITLINK_SUCCESS";
  case NVJITLINK_ERROR_UNRECOGNIZED_OPTION:
    return "NVJITLINK_ERROR_UNRECOGNIZED_OPTION";
  case NVJITLINK_ERROR_MISSING_ARCH:
    return "NVJITLINK_ERROR_MISSING_ARCH";
  case NVJITLINK_ERROR_INVALID_INPUT:
    return "NVJITLINK_ERROR_INVALID_INPUT";
  case NVJITLINK_ERROR_PTX_COMPILE:
    return "NVJITLINK_ERROR_PTX_COMPILE";
  case NVJITLINK_ERROR_NVVM_COMPILE:
    return "NVJITLINK_ERROR_NVVM_COMPILE";
  case NVJITLINK_ERROR_INTERNAL:
    return "NVJITLINK_ERROR_INTERNAL";
  case NVJITLINK_ERROR_THREADPOOL:
    return "NVJITLINK_ERROR_THREADPOOL";
  case NVJITLINK_ERROR_UNRECOGNIZED_INPUT:
    return "NVJITLINK_ERROR_UNRECOGNIZED_INPUT";
  case NVJITLINK_ERROR_FINALIZE:
    return "NVJITLINK_ERROR_FINALIZE";
  case NVJITLINK_ERROR_NULL_INPUT:
    return "NVJITLINK_ERROR_NULL_INPUT";
  case NVJITLINK_ERROR_INCOMPATIBLE_OPTIONS:
    return "NVJITLINK_ERROR_INCOMPATIBLE_OPTIONS";
  case NVJITLINK_ERROR_INCORRECT_INPUT_TYPE:
    return "NVJITLINK_ERROR_INCORRECT_INPUT_TYPE";
  case NVJITLINK_ERROR_ARCH_MISMATCH:
    return "NVJITLINK_ERROR_ARCH_MISMATCH";
  case NVJITLINK_ERROR_OUTDATED_LIBRARY:
    return "NVJITLINK_ERROR_OUTDATED_LIBRARY";
  case NVJITLINK_ERROR_MISSING_FATBIN:
    return "NVJITLINK_ERROR_MISSING_FATBIN";
  case NVJITLINK_ERROR_UNRECOGNIZED_ARCH:
    return "NVJITLINK_ERROR_UNRECOGNIZED_ARCH";
  case NVJITLINK_ERROR_UNSUPPORTED_ARCH:
    return "NVJITLINK_ERROR_UNSUPPORTED_ARCH";
  case NVJITLINK_ERROR_LTO_NOT_ENABLED:
    return "NVJITLINK_ERROR_LTO_NOT_ENABLED";
  }
  return NULL;
}

/* Reads one of nvJitLink's logs into a malloc'd string ("" when empty; NULL on host OOM). */
static char *jl_log(nvJitLinkHandle h, bool error_log) {
  size_t n = 0;
  nvJitLinkResult r = error_log ? jl.error_log_size(h, &n) : jl.info_log_size(h, &n);
  char *log = calloc(r == NVJITLINK_SUCCESS ? n + 1 : 1, 1);
  if (log && r == NVJITLINK_SUCCESS && n > 0 &&
      (error_log ? jl.error_log(h, log) : jl.info_log(h, log)) != NVJITLINK_SUCCESS)
    log[0] = 0;
  return log;
}

/* "<call> failed: NVJITLINK_ERROR_... (for sm_90a)" plus the error log (or the info log). */
static rt_status jl_fail(rt_err *e, nvJitLinkResult r, const char *call, const char *arch,
                         nvJitLinkHandle h) {
  const char *name = jl_result_name(r);
  rt_status s = RT_ERR_COMPILE;
  if (name)
    rt_fail(e, s, "%s failed for %s: %s", call, arch, name);
  else
    rt_fail(e, s, "%s failed for %s: nvJitLink error %d", call, arch, (int)r);
  if (h && e) {
    char *log = jl_log(h, true);
    if (log && !log[0]) {
      free(log);
      log = jl_log(h, false);
    }
    rt_err_append_log(e, log);
    free(log);
  }
  return s;
}

rt_status rt_nvjitlink_ptx(const char *ptx, size_t size, const char *arch, const char *const *opts,
                           int nopts, rt_blob *out, rt_err *e) {
  memset(out, 0, sizeof *out);
  rt_status s = rt_nvjitlink_load(e);
  if (s)
    return s;
  if (!ptx || !size || !arch || nopts < 0 || (nopts > 0 && !opts) || nopts > 60)
    return rt_fail(e, RT_ERR_ARG, "rt_nvjitlink_ptx: bad arguments");
  char archopt[64];
  snprintf(archopt, sizeof archopt, "-arch=%s", arch);
  const char *all[64];
  uint32_t n = 0;
  all[n++] = archopt;
  all[n++] = "-verbose";
  for (int i = 0; i < nopts; i++)
    all[n++] = opts[i];

  nvJitLinkHandle h = NULL;
  char *text = NULL;
  nvJitLinkResult r = jl.create(&h, n, all);
  if (r) {
    /* nvJitLink hands out a handle even when it refuses the options: it is destroyed below. */
    s = jl_fail(e, r, "nvJitLinkCreate", arch, NULL);
    if (e) {
      size_t len = strlen(e->msg);
      const char *sep = " (options:";
      for (uint32_t i = 0; i < n && len < sizeof e->msg; i++, sep = "")
        len += (size_t)snprintf(e->msg + len, sizeof e->msg - len, "%s %s", sep, all[i]);
      if (len + 1 < sizeof e->msg)
        strcat(e->msg, ")");
    }
    goto fail;
  }
  if (ptx[size - 1] != 0) { /* PTX is text: hand nvJitLink a terminated copy */
    if (!(text = malloc(size + 1))) {
      s = rt_fail(e, RT_ERR_OOM, "out of host memory");
      goto fail;
    }
    memcpy(text, ptx, size);
    text[size] = 0;
    ptx = text;
    size++;
  }
  if ((r = jl.add_data(h, NVJITLINK_INPUT_PTX, ptx, size, "tilec.ptx"))) {
    s = jl_fail(e, r, "nvJitLinkAddData", arch, h);
    goto fail;
  }
  if ((r = jl.complete(h))) {
    s = jl_fail(e, r, "nvJitLinkComplete", arch, h);
    goto fail;
  }
  size_t csize = 0;
  if ((r = jl.cubin_size(h, &csize))) {
    s = jl_fail(e, r, "nvJitLinkGetLinkedCubinSize", arch, h);
    goto fail;
  }
  if (!(out->data = malloc(csize ? csize : 1)) || !(out->log = jl_log(h, false))) {
    s = rt_fail(e, RT_ERR_OOM, "out of host memory");
    goto fail;
  }
  if ((r = jl.cubin(h, out->data))) {
    s = jl_fail(e, r, "nvJitLinkGetLinkedCubin", arch, h);
    goto fail;
  }
  out->size = csize;
  jl.destroy(&h);
  free(text);
  return RT_OK;
fail:
  if (h)
    jl.destroy(&h);
  free(text);
  rt_blob_free(out);
  return s;
}

#else /* !TILEC_HAVE_CUDA_H */

#define NO_HEADERS "tilec was built without the CUDA headers (set CUDA_HOME and rebuild)"

rt_status rt_nvrtc_load(rt_err *e) {
  return rt_fail(e, RT_ERR_NO_LIBRARY, "no NVRTC: " NO_HEADERS);
}
rt_status rt_nvjitlink_load(rt_err *e) {
  return rt_fail(e, RT_ERR_NO_LIBRARY, "no nvJitLink: " NO_HEADERS);
}
void rt_lib_query_nvrtc(rt_lib_info *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->error, sizeof out->error, "no NVRTC: " NO_HEADERS);
}
void rt_lib_query_nvjitlink(rt_lib_info *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->error, sizeof out->error, "no nvJitLink: " NO_HEADERS);
}
rt_status rt_nvrtc_compile(const char *source, const char *name, const char *arch,
                           const char *const *opts, int nopts, rt_blob *out, rt_err *e) {
  (void)source, (void)name, (void)arch, (void)opts, (void)nopts;
  memset(out, 0, sizeof *out);
  return rt_nvrtc_load(e);
}
rt_status rt_nvjitlink_ptx(const char *ptx, size_t size, const char *arch, const char *const *opts,
                           int nopts, rt_blob *out, rt_err *e) {
  (void)ptx, (void)size, (void)arch, (void)opts, (void)nopts;
  memset(out, 0, sizeof *out);
  return rt_nvjitlink_load(e);
}

#endif
