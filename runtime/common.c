/* runtime/common.c — what every file of runtime/ shares: status names, error formatting, the
 * dlopen search for CUDA libraries, and small pure helpers (median, blobs).
 *
 * Libraries are opened with RTLD_NOW | RTLD_LOCAL and never closed: handles live for the process,
 * so function pointers taken from them stay valid, and LeakSanitizer sees no unloaded code.
 */
#define _GNU_SOURCE /* dlinfo */
#include <dlfcn.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_impl.h"

const char *rt_status_name(rt_status s) {
  switch (s) {
  case RT_OK:
    return "ok";
  case RT_ERR_NO_DRIVER:
    return "no_driver";
  case RT_ERR_NO_DEVICE:
    return "no_device";
  case RT_ERR_NO_LIBRARY:
    return "no_library";
  case RT_ERR_OOM:
    return "out_of_memory";
  case RT_ERR_LAUNCH:
    return "launch";
  case RT_ERR_MODULE:
    return "module";
  case RT_ERR_COMPILE:
    return "compile";
  case RT_ERR_ARG:
    return "argument";
  case RT_ERR_CUDA:
    return "cuda";
  }
  return "unknown";
}

bool rt_status_is_env(rt_status s) {
  return s == RT_ERR_NO_DRIVER || s == RT_ERR_NO_DEVICE || s == RT_ERR_NO_LIBRARY;
}

rt_status rt_fail(rt_err *e, rt_status s, const char *fmt, ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->status = s;
    e->code = 0;
  }
  return s;
}

void rt_copy(char *dst, size_t cap, const char *src) {
  if (!cap)
    return;
  size_t n = strlen(src);
  if (n >= cap)
    n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = 0;
}

void rt_err_append_log(rt_err *e, const char *log) {
  if (!e || !log)
    return;
  while (*log == ' ' || *log == '\n' || *log == '\r' || *log == '\t')
    log++;
  if (!*log)
    return;
  size_t n = strlen(e->msg);
  const size_t cap = sizeof e->msg;
  if (n + 3 >= cap)
    return;
  e->msg[n++] = ':';
  e->msg[n++] = ' ';
  bool newline = false;
  const char *p = log;
  for (; *p; p++) {
    if (*p == '\n' || *p == '\r') {
      newline = true;
      continue;
    }
    if (n + (newline ? 3 : 1) >= cap)
      break;
    if (newline) {
      e->msg[n++] = ';';
      e->msg[n++] = ' ';
      newline = false;
    }
    e->msg[n++] = *p;
  }
  e->msg[n] = 0;
  if (*p && n >= 3) /* cut: say so, so that nobody mistakes it for the whole log */
    memcpy(e->msg + n - 3, "...", 3);
}

/* The path the loader used for handle h (absolute for libraries found on the loader path),
 * else fallback. */
static void opened_path(void *h, const char *fallback, char *path, size_t cap) {
  struct link_map *lm = NULL;
  const char *p = fallback;
  if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && lm->l_name[0])
    p = lm->l_name;
  snprintf(path, cap, "%s", p);
}

static void *try_open(const char *file, char *path, size_t pathcap, char *why, size_t whycap) {
  void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
  if (h) {
    opened_path(h, file, path, pathcap);
    return h;
  }
  if (why && whycap && !why[0]) {
    const char *msg = dlerror();
    snprintf(why, whycap, "%s", msg ? msg : file);
  }
  return NULL;
}

void *rt_dl_search(const char *env, const char *const *names, char *path, size_t pathcap, char *why,
                   size_t whycap) {
  if (why && whycap)
    why[0] = 0;
  if (path && pathcap)
    path[0] = 0;
  const char *override = env ? getenv(env) : NULL;
  if (override && override[0])
    return try_open(override, path, pathcap, why, whycap);
  const char *cuda_home = getenv("CUDA_HOME");
  const char *dirs[3] = {NULL, cuda_home && cuda_home[0] ? cuda_home : NULL, "/usr/local/cuda"};
  for (int d = 0; d < 3; d++) {
    if (d > 0 && !dirs[d])
      continue;
    for (const char *const *n = names; *n; n++) {
      char file[1024];
      if (d == 0)
        snprintf(file, sizeof file, "%s", *n);
      else if (snprintf(file, sizeof file, "%s/lib64/%s", dirs[d], *n) >= (int)sizeof file)
        continue;
      void *h = try_open(file, path, pathcap, why, whycap);
      if (h)
        return h;
    }
  }
  return NULL;
}

void rt_lib_query(rt_lib lib, rt_lib_info *out) {
  switch (lib) {
  case RT_LIB_CUDA:
    rt_lib_query_cuda(out);
    return;
  case RT_LIB_NVRTC:
    rt_lib_query_nvrtc(out);
    return;
  case RT_LIB_NVJITLINK:
    rt_lib_query_nvjitlink(out);
    return;
  }
  memset(out, 0, sizeof *out);
  snprintf(out->error, sizeof out->error, "unknown library %d", (int)lib);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double rt_median(double *v, int n) {
  if (n <= 0)
    return 0;
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void rt_blob_free(rt_blob *b) {
  if (!b)
    return;
  free(b->data);
  free(b->log);
  b->data = NULL;
  b->log = NULL;
  b->size = 0;
}
