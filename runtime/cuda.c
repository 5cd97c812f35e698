/* runtime/cuda.c — the CUDA driver API through dlopen: library loading, error translation, device
 * identity, contexts, memory, modules, launches and event timing.
 *
 * libcuda.so.1 is opened once per process (pthread_once) and its functions are resolved by their
 * versioned names (the names cuda.h maps the API to, e.g. cuMemAlloc_v2) into one table; every
 * pointer's type is taken from cuda.h's own prototype, so a signature cannot drift. cuInit runs
 * once, on the first call that needs a device. Every CUresult is translated here, once, into an
 * rt_status plus "<call> failed: <CUDA_ERROR_NAME> (<driver's string>)".
 * Without cuda.h at build time (TILEC_HAVE_CUDA_H unset) every entry point reports that.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_impl.h"

/* ---- pure helpers (no driver needed) ---------------------------------------------------- */

void rt_device_key(const rt_device_info *d, char *buf, size_t cap) {
  if (!buf || !cap)
    return;
  char name[sizeof d->name];
  size_t n = 0;
  for (const char *p = d->name; *p && n + 1 < sizeof name; p++) {
    unsigned char ch = (unsigned char)*p;
    name[n++] = ch == '|' || ch < 0x20 || ch == 0x7f ? '_' : (char)ch;
  }
  while (n > 0 && name[n - 1] == ' ')
    n--;
  name[n] = 0;
  const char *start = name;
  while (*start == ' ')
    start++;
  /* Whole GiB, rounded down: absorbs the few MiB a driver may reserve differently. */
  unsigned long long gib = (unsigned long long)(d->total_mem >> 30);
  snprintf(buf, cap, "%s|sm_%d%d|%dsm|%lluGiB", *start ? start : "unknown", d->cc_major,
           d->cc_minor, d->sm_count, gib);
}

#if TILEC_HAVE_CUDA_H

#include <cuda.h>

/* ---- the function table ------------------------------------------------------------------ */

/* X(symbol, fallback symbol or NULL): every driver function tilec calls. */
#define CUDA_FUNCS(X)                                                                              \
  X(cuGetErrorName, NULL)                                                                          \
  X(cuGetErrorString, NULL)                                                                        \
  X(cuInit, NULL)                                                                                  \
  X(cuDriverGetVersion, NULL)                                                                      \
  X(cuDeviceGetCount, NULL)                                                                        \
  X(cuDeviceGet, NULL)                                                                             \
  X(cuDeviceGetName, NULL)                                                                         \
  X(cuDeviceGetAttribute, NULL)                                                                    \
  X(cuDeviceTotalMem_v2, NULL)                                                                     \
  X(cuDevicePrimaryCtxRetain, NULL)                                                                \
  X(cuDevicePrimaryCtxRelease_v2, NULL)                                                            \
  X(cuCtxGetCurrent, NULL)                                                                         \
  X(cuCtxSetCurrent, NULL)                                                                         \
  X(cuCtxPushCurrent_v2, NULL)                                                                     \
  X(cuCtxPopCurrent_v2, NULL)                                                                      \
  X(cuCtxGetDevice, NULL)                                                                          \
  X(cuModuleLoadDataEx, NULL)                                                                      \
  X(cuModuleUnload, NULL)                                                                          \
  X(cuModuleGetFunction, NULL)                                                                     \
  X(cuFuncSetAttribute, NULL)                                                                      \
  X(cuFuncGetAttribute, NULL)                                                                      \
  X(cuLaunchKernel, NULL)                                                                          \
  X(cuMemAlloc_v2, NULL)                                                                           \
  X(cuMemFree_v2, NULL)                                                                            \
  X(cuMemcpyHtoD_v2, NULL)                                                                         \
  X(cuMemcpyDtoH_v2, NULL)                                                                         \
  X(cuMemsetD8_v2, NULL)                                                                           \
  X(cuMemsetD32Async, NULL)                                                                        \
  X(cuDeviceGetPCIBusId, NULL)                                                                     \
  X(cuStreamCreate, NULL)                                                                          \
  X(cuStreamDestroy_v2, NULL)                                                                      \
  X(cuStreamSynchronize, NULL)                                                                     \
  X(cuEventCreate, NULL)                                                                           \
  X(cuEventRecord, NULL)                                                                           \
  X(cuEventSynchronize, NULL)                                                                      \
  X(cuEventElapsedTime_v2, "cuEventElapsedTime")                                                   \
  X(cuEventDestroy_v2, NULL)

static struct {
  rt_status status; /* of the load */
  char error[1024];
  char path[512];
  void *lib;
#define FIELD(sym, alt) __typeof__(sym) *sym;
  CUDA_FUNCS(FIELD)
#undef FIELD
} drv;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CUresult init_result;

static void load_driver(void) {
  static const char *const names[] = {"libcuda.so.1", NULL};
  char why[512];
  drv.lib = rt_dl_search("TILEC_LIBCUDA", names, drv.path, sizeof drv.path, why, sizeof why);
  if (!drv.lib) {
    drv.status = RT_ERR_NO_DRIVER;
    snprintf(drv.error, sizeof drv.error, "no CUDA driver: libcuda.so.1 not found (%s)", why);
    return;
  }
  /* The pointer is stored through memcpy: ISO C has no cast from void * to a function pointer. */
#define RESOLVE(sym, alt)                                                                          \
  {                                                                                                \
    void *p = dlsym(drv.lib, #sym);                                                                \
    const char *fallback = alt;                                                                    \
    if (!p && fallback)                                                                            \
      p = dlsym(drv.lib, fallback);                                                                \
    if (!p) {                                                                                      \
      drv.status = RT_ERR_NO_DRIVER;                                                               \
      snprintf(drv.error, sizeof drv.error,                                                        \
               "no usable CUDA driver: %s has no symbol %s (the driver is too old for tilec)",     \
               drv.path, #sym);                                                                    \
      return;                                                                                      \
    }                                                                                              \
    memcpy(&drv.sym, &p, sizeof p);                                                                \
  }
  CUDA_FUNCS(RESOLVE)
#undef RESOLVE
  drv.status = RT_OK;
}

rt_status rt_cuda_load(rt_err *e) {
  pthread_once(&load_once, load_driver);
  if (drv.status)
    return rt_fail(e, drv.status, "%s", drv.error);
  return RT_OK;
}

/* ---- error translation ------------------------------------------------------------------- */

/* The status class of a CUresult; `dflt` for errors without one of their own. */
static rt_status classify(CUresult r, rt_status dflt) {
  switch (r) {
  case CUDA_ERROR_OUT_OF_MEMORY:
    return RT_ERR_OOM;
  case CUDA_ERROR_NO_DEVICE:
  case CUDA_ERROR_INVALID_DEVICE:
  case CUDA_ERROR_DEVICE_UNAVAILABLE:
    return RT_ERR_NO_DEVICE;
  case CUDA_ERROR_STUB_LIBRARY:
  case CUDA_ERROR_SYSTEM_DRIVER_MISMATCH:
  case CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE:
  case CUDA_ERROR_SYSTEM_NOT_READY:
    return RT_ERR_NO_DRIVER;
  case CUDA_ERROR_LAUNCH_FAILED:
  case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES:
  case CUDA_ERROR_LAUNCH_TIMEOUT:
  case CUDA_ERROR_ILLEGAL_ADDRESS:
  case CUDA_ERROR_ILLEGAL_INSTRUCTION:
  case CUDA_ERROR_MISALIGNED_ADDRESS:
  case CUDA_ERROR_INVALID_ADDRESS_SPACE:
  case CUDA_ERROR_INVALID_PC:
  case CUDA_ERROR_HARDWARE_STACK_ERROR:
  case CUDA_ERROR_ASSERT:
    return RT_ERR_LAUNCH;
  case CUDA_ERROR_INVALID_PTX:
  case CUDA_ERROR_INVALID_IMAGE:
  case CUDA_ERROR_NO_BINARY_FOR_GPU:
  case CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
  case CUDA_ERROR_JIT_COMPILER_NOT_FOUND:
  case CUDA_ERROR_JIT_COMPILATION_DISABLED:
    return RT_ERR_MODULE;
  default:
    return dflt;
  }
}

/* Formats "<call> failed: NAME (string)" into e and returns the status class of r. */
static rt_status cu_fail(rt_err *e, CUresult r, rt_status dflt, const char *call) {
  const char *name = NULL, *str = NULL;
  if (drv.cuGetErrorName(r, &name) != CUDA_SUCCESS || !name)
    name = NULL;
  if (drv.cuGetErrorString(r, &str) != CUDA_SUCCESS || !str)
    str = "unknown error";
  rt_status s = classify(r, dflt);
  if (name)
    rt_fail(e, s, "%s failed: %s (%s)", call, name, str);
  else
    rt_fail(e, s, "%s failed: CUDA error %d (%s)", call, (int)r, str);
  if (e)
    e->code = (int)r;
  if (e && r == CUDA_ERROR_STUB_LIBRARY)
    snprintf(e->msg + strlen(e->msg), sizeof e->msg - strlen(e->msg),
             "; %s is the toolkit's stub, not the driver's libcuda.so.1", drv.path);
  return s;
}

static void init_driver(void) { init_result = drv.cuInit(0); }

rt_status rt_cuda_init(rt_err *e) {
  rt_status s = rt_cuda_load(e);
  if (s)
    return s;
  pthread_once(&init_once, init_driver);
  if (init_result != CUDA_SUCCESS)
    return cu_fail(e, init_result, RT_ERR_NO_DRIVER, "cuInit");
  return RT_OK;
}

void rt_lib_query_cuda(rt_lib_info *out) {
  memset(out, 0, sizeof *out);
  rt_err e;
  if (rt_cuda_load(&e)) {
    rt_copy(out->error, sizeof out->error, e.msg);
    return;
  }
  out->loaded = true;
  snprintf(out->path, sizeof out->path, "%s", drv.path);
  int v = 0;
  if (drv.cuDriverGetVersion(&v) == CUDA_SUCCESS) {
    out->version_major = v / 1000;
    out->version_minor = v % 1000 / 10;
  }
}

rt_status rt_driver_version(int *version, rt_err *e) {
  *version = 0;
  rt_status s = rt_cuda_load(e);
  if (s)
    return s;
  CUresult r = drv.cuDriverGetVersion(version);
  return r ? cu_fail(e, r, RT_ERR_CUDA, "cuDriverGetVersion") : RT_OK;
}

/* ---- devices ----------------------------------------------------------------------------- */

rt_status rt_device_count(int *count, rt_err *e) {
  *count = 0;
  rt_status s = rt_cuda_init(e);
  if (s)
    return s;
  CUresult r = drv.cuDeviceGetCount(count);
  return r ? cu_fail(e, r, RT_ERR_CUDA, "cuDeviceGetCount") : RT_OK;
}

/* Resolves ordinal to a CUdevice, with a clear message when it is out of range. */
static rt_status get_device(int ordinal, CUdevice *dev, rt_err *e) {
  int n = 0;
  rt_status s = rt_device_count(&n, e);
  if (s)
    return s;
  if (n == 0)
    return rt_fail(e, RT_ERR_NO_DEVICE, "no CUDA device: the driver (%s) reports none", drv.path);
  if (ordinal < 0 || ordinal >= n)
    return rt_fail(e, RT_ERR_NO_DEVICE, "no CUDA device %d (this machine has %d)", ordinal, n);
  CUresult r = drv.cuDeviceGet(dev, ordinal);
  return r ? cu_fail(e, r, RT_ERR_NO_DEVICE, "cuDeviceGet") : RT_OK;
}

rt_status rt_device_query(int ordinal, rt_device_info *out, rt_err *e) {
  memset(out, 0, sizeof *out);
  CUdevice dev;
  rt_status s = get_device(ordinal, &dev, e);
  if (s)
    return s;
  out->ordinal = ordinal;
  CUresult r = drv.cuDeviceGetName(out->name, (int)sizeof out->name, dev);
  if (r)
    return cu_fail(e, r, RT_ERR_CUDA, "cuDeviceGetName");
  out->name[sizeof out->name - 1] = 0;
  size_t bytes = 0;
  if ((r = drv.cuDeviceTotalMem_v2(&bytes, dev)))
    return cu_fail(e, r, RT_ERR_CUDA, "cuDeviceTotalMem");
  out->total_mem = bytes;
  static const struct {
    CUdevice_attribute attr;
    size_t offset;
  } attrs[] = {
      {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, offsetof(rt_device_info, cc_major)},
      {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, offsetof(rt_device_info, cc_minor)},
      {CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, offsetof(rt_device_info, sm_count)},
      {CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, offsetof(rt_device_info, mem_clock_khz)},
      {CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, offsetof(rt_device_info, mem_bus_width)},
      {CU_DEVICE_ATTRIBUTE_CLOCK_RATE, offsetof(rt_device_info, sm_clock_khz)},
      {CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, offsetof(rt_device_info, l2_bytes)},
      {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
       offsetof(rt_device_info, smem_per_block_optin)},
      {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR,
       offsetof(rt_device_info, smem_per_sm)},
      {CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, offsetof(rt_device_info, regs_per_sm)},
      {CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, offsetof(rt_device_info, max_threads_per_block)},
      {CU_DEVICE_ATTRIBUTE_WARP_SIZE, offsetof(rt_device_info, warp_size)},
  };
  for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
    int v = 0;
    if ((r = drv.cuDeviceGetAttribute(&v, attrs[i].attr, dev)))
      return cu_fail(e, r, RT_ERR_CUDA, "cuDeviceGetAttribute");
    memcpy((char *)out + attrs[i].offset, &v, sizeof v);
  }
  if ((r = drv.cuDriverGetVersion(&out->driver_version)))
    return cu_fail(e, r, RT_ERR_CUDA, "cuDriverGetVersion");
  snprintf(out->arch, sizeof out->arch, "sm_%d%d", out->cc_major, out->cc_minor);
  rt_device_key(out, out->key, sizeof out->key);
  return RT_OK;
}

/* ---- contexts ---------------------------------------------------------------------------- */

struct rt_ctx {
  CUcontext cu;
  CUstream stream; /* NULL: the context's default stream */
  CUdevice dev;
  int ordinal;
  bool primary;    /* retained by rt_ctx_open: released by rt_ctx_close */
  bool own_stream; /* created by rt_ctx_open: destroyed by rt_ctx_close */
};

/* Makes c's context current for one call: pushes it when another one is current (then *pushed
 * is set and leave() pops it), so the caller's thread state is what it was afterwards. */
static rt_status enter(const rt_ctx *c, bool *pushed, rt_err *e) {
  CUcontext cur = NULL;
  *pushed = false;
  CUresult r = drv.cuCtxGetCurrent(&cur);
  if (r)
    return cu_fail(e, r, RT_ERR_CUDA, "cuCtxGetCurrent");
  if (cur == c->cu)
    return RT_OK;
  if ((r = drv.cuCtxPushCurrent_v2(c->cu)))
    return cu_fail(e, r, RT_ERR_CUDA, "cuCtxPushCurrent");
  *pushed = true;
  return RT_OK;
}

static void leave(bool pushed) {
  if (pushed) {
    CUcontext popped;
    drv.cuCtxPopCurrent_v2(&popped);
  }
}

rt_status rt_ctx_enter(const rt_ctx *c, bool *pushed, rt_err *e) { return enter(c, pushed, e); }

void rt_ctx_leave(bool pushed) { leave(pushed); }

rt_status rt_ctx_open(int ordinal, unsigned flags, rt_ctx **out, rt_err *e) {
  *out = NULL;
  CUdevice dev;
  rt_status s = get_device(ordinal, &dev, e);
  if (s)
    return s;
  rt_ctx *c = calloc(1, sizeof *c);
  if (!c)
    return rt_fail(e, RT_ERR_OOM, "out of host memory");
  c->dev = dev;
  c->ordinal = ordinal;
  CUresult r = drv.cuDevicePrimaryCtxRetain(&c->cu, dev);
  if (r) {
    s = cu_fail(e, r, RT_ERR_CUDA, "cuDevicePrimaryCtxRetain");
    goto fail;
  }
  c->primary = true;
  if (flags & RT_CTX_OWN_STREAM) {
    bool pushed;
    if ((s = enter(c, &pushed, e)))
      goto fail;
    r = drv.cuStreamCreate(&c->stream, CU_STREAM_NON_BLOCKING);
    leave(pushed);
    if (r) {
      s = cu_fail(e, r, RT_ERR_CUDA, "cuStreamCreate");
      goto fail;
    }
    c->own_stream = true;
  }
  *out = c;
  return RT_OK;
fail:
  rt_ctx_close(c);
  return s;
}

rt_status rt_ctx_adopt(void *cu_context, void *cu_stream, rt_ctx **out, rt_err *e) {
  *out = NULL;
  rt_status s = rt_cuda_init(e);
  if (s)
    return s;
  CUcontext cu = (CUcontext)cu_context;
  CUresult r;
  if (!cu) {
    if ((r = drv.cuCtxGetCurrent(&cu)))
      return cu_fail(e, r, RT_ERR_CUDA, "cuCtxGetCurrent");
    if (!cu)
      return rt_fail(e, RT_ERR_ARG, "no current CUDA context to adopt on this thread");
  }
  rt_ctx *c = calloc(1, sizeof *c);
  if (!c)
    return rt_fail(e, RT_ERR_OOM, "out of host memory");
  c->cu = cu;
  c->stream = (CUstream)cu_stream;
  bool pushed;
  if ((s = enter(c, &pushed, e)))
    goto fail;
  r = drv.cuCtxGetDevice(&c->dev);
  leave(pushed);
  if (r) {
    s = cu_fail(e, r, RT_ERR_CUDA, "cuCtxGetDevice");
    goto fail;
  }
  c->ordinal = (int)c->dev; /* a CUdevice is its ordinal */
  *out = c;
  return RT_OK;
fail:
  free(c);
  return s;
}

void rt_ctx_close(rt_ctx *c) {
  if (!c)
    return;
  if (c->own_stream) {
    bool pushed;
    if (enter(c, &pushed, NULL) == RT_OK) {
      drv.cuStreamDestroy_v2(c->stream);
      leave(pushed);
    }
  }
  if (c->primary)
    drv.cuDevicePrimaryCtxRelease_v2(c->dev);
  free(c);
}

int rt_ctx_ordinal(const rt_ctx *c) { return c->ordinal; }

void *rt_ctx_stream(const rt_ctx *c) { return c->stream; }

rt_status rt_ctx_sync(rt_ctx *c, rt_err *e) {
  bool pushed;
  rt_status s = enter(c, &pushed, e);
  if (s)
    return s;
  CUresult r = drv.cuStreamSynchronize(c->stream);
  leave(pushed);
  return r ? cu_fail(e, r, RT_ERR_CUDA, "cuStreamSynchronize") : RT_OK;
}

/* ---- memory ------------------------------------------------------------------------------ */

rt_status rt_mem_alloc(rt_ctx *c, size_t bytes, uint64_t *dptr, rt_err *e) {
  *dptr = 0;
  if (bytes == 0)
    return RT_OK;
  bool pushed;
  rt_status s = enter(c, &pushed, e);
  if (s)
    return s;
  CUdeviceptr p = 0;
  CUresult r = drv.cuMemAlloc_v2(&p, bytes);
  leave(pushed);
  if (r) {
    s = cu_fail(e, r, RT_ERR_CUDA, "cuMemAlloc");
    if (e)
      snprintf(e->msg + strlen(e->msg), sizeof e->msg - strlen(e->msg), " allocating %zu bytes",
               bytes);
    return s;
  }
  *dptr = (uint64_t)p;
  return RT_OK;
}

void rt_mem_free(rt_ctx *c, uint64_t dptr) {
  bool pushed;
  if (!dptr || enter(c, &pushed, NULL))
    return;
  drv.cuMemFree_v2((CUdeviceptr)dptr);
  leave(pushed);
}

/* The copies are synchronous with respect to the legacy stream only: wait for c's stream. */
static rt_status sync_stream(const rt_ctx *c, rt_err *e) {
  if (!c->stream)
    return RT_OK;
  CUresult r = drv.cuStreamSynchronize(c->stream);
  return r ? cu_fail(e, r, RT_ERR_CUDA, "cuStreamSynchronize") : RT_OK;
}

rt_status rt_memcpy_htod(rt_ctx *c, uint64_t dst, const void *src, size_t bytes, rt_err *e) {
  if (bytes == 0)
    return RT_OK;
  bool pushed;
  rt_status s = enter(c, &pushed, e);
  if (s)
    return s;
  if (!(s = sync_stream(c, e))) {
    CUresult r = drv.cuMemcpyHtoD_v2((CUdeviceptr)dst, src, bytes);
    if (r)
      s = cu_fail(e, r, RT_ERR_CUDA, "cuMemcpyHtoD");
  }
  leave(pushed);
  return s;
}

rt_status rt_memcpy_dtoh(rt_ctx *c, void *dst, uint64_t src, size_t bytes, rt_err *e) {
  if (bytes == 0)
    return RT_OK;
  bool pushed;
  rt_status s = enter(c, &pushed, e);
  if (s)
    return s;
  if (!(s = sync_stream(c, e))) {
    CUresult r = drv.cuMemcpyDtoH_v2(dst, (CUdeviceptr)src, bytes);
    if (r)
      s = cu_fail(e, r, RT_ERR_CUDA, "cuMemcpyDtoH");
  }
  leave(pushed);
  return s;
}

rt_status rt_memset8(rt_ctx *c, uint64_t dst, uint8_t value, size_t bytes, rt_err *e) {
  if (bytes == 0)
    return RT_OK;
  bool pushed;
  rt_status s = enter(c, &pushed, e);
  if (s)
    return s;
  if (!(s = sync_stream(c, e))) {
    CUresult r = drv.cuMemsetD8_v2((CUdeviceptr)dst, value, bytes);
    if (r)
      s = cu_fail(e, r, RT_ERR_CUDA, "cuMemsetD8");
  }
  leave(pushed);
  return s;
}

/* ---- modules and kernels ----------------------------------------------------------------- */

struct rt_module {
  CUmodule mod;
  rt_ctx *ctx;
  char *log; /* the JIT info log */
};

enum { JIT_LOG_BYTES = 16384 };

/* Cubins and fatbins start with a magic number; anything else is taken for PTX text. */
static bool is_binary(const unsigned char *p, size_t n) {
  static const unsigned char elf[4] = {0x7f, 'E', 'L', 'F'};
  static const unsigned char fatbin[4] = {0x50, 0xed, 0x55, 0xba}; /* 0xba55ed50 */
  static const unsigned char fatbin_wrap[4] = {0xb1, 0x43, 0x62, 0x46};
  return n >= 4 && (!memcmp(p, elf, 4) || !memcmp(p, fatbin, 4) || !memcmp(p, fatbin_wrap, 4));
}

rt_status rt_module_load(rt_ctx *c, const void *image, size_t size, rt_module **out, rt_err *e) {
  *out = NULL;
  if (!c || !image || size == 0)
    return rt_fail(e, RT_ERR_ARG, "rt_module_load: no image");
  rt_status s = RT_OK;
  char *text = NULL, *info = NULL, *error = NULL;
  rt_module *m = calloc(1, sizeof *m);
  info = malloc(JIT_LOG_BYTES);
  error = malloc(JIT_LOG_BYTES);
  if (!m || !info || !error) {
    s = rt_fail(e, RT_ERR_OOM, "out of host memory");
    goto fail;
  }
  info[0] = error[0] = 0;
  const unsigned char *img = image;
  if (!is_binary(img, size) && img[size - 1] != 0) { /* PTX must be NUL-terminated */
    if (!(text = malloc(size + 1))) {
      s = rt_fail(e, RT_ERR_OOM, "out of host memory");
      goto fail;
    }
    memcpy(text, image, size);
    text[size] = 0;
    img = (const unsigned char *)text;
  }
  CUjit_option opts[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
                         CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                         CU_JIT_LOG_VERBOSE};
  void *vals[] = {info, (void *)(uintptr_t)JIT_LOG_BYTES, error, (void *)(uintptr_t)JIT_LOG_BYTES,
                  (void *)(uintptr_t)1};
  bool pushed;
  if ((s = enter(c, &pushed, e)))
    goto fail;
  CUresult r =
      drv.cuModuleLoadDataEx(&m->mod, img, (unsigned)(sizeof opts / sizeof opts[0]), opts, vals);
  leave(pushed);
  info[JIT_LOG_BYTES - 1] = error[JIT_LOG_BYTES - 1] = 0;
  if (r) {
    s = cu_fail(e, r, RT_ERR_MODULE, "cuModuleLoadDataEx");
    rt_err_append_log(e, error);
    goto fail;
  }
  m->ctx = c;
  m->log = info;
  free(error);
  free(text);
  *out = m;
  return RT_OK;
fail:
  free(info);
  free(error);
  free(text);
  free(m);
  return s;
}

const char *rt_module_log(const rt_module *m) { return m && m->log ? m->log : ""; }

void rt_module_unload(rt_module *m) {
  if (!m)
    return;
  bool pushed;
  if (enter(m->ctx, &pushed, NULL) == RT_OK) {
    drv.cuModuleUnload(m->mod);
    leave(pushed);
  }
  free(m->log);
  free(m);
}

rt_status rt_module_func(rt_module *m, const char *name, rt_func **out, rt_err *e) {
  *out = NULL;
  CUfunction f = NULL;
  bool pushed;
  rt_status s = enter(m->ctx, &pushed, e);
  if (s)
    return s;
  CUresult r = drv.cuModuleGetFunction(&f, m->mod, name);
  leave(pushed);
  if (r) {
    s = cu_fail(e, r, RT_ERR_MODULE, "cuModuleGetFunction");
    if (e)
      snprintf(e->msg + strlen(e->msg), sizeof e->msg - strlen(e->msg), ": no kernel '%s'", name);
    return s;
  }
  *out = (rt_func *)f;
  return RT_OK;
}

rt_status rt_func_attrs_get(rt_ctx *c, rt_func *f, rt_func_attrs *out, rt_err *e) {
  memset(out, 0, sizeof *out);
  static const struct {
    CUfunction_attribute attr;
    size_t offset;
  } attrs[] = {
      {CU_FUNC_ATTRIBUTE_NUM_REGS, offsetof(rt_func_attrs, num_regs)},
      {CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, offsetof(rt_func_attrs, local_bytes)},
      {CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, offsetof(rt_func_attrs, static_smem_bytes)},
      {CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES, offsetof(rt_func_attrs, const_bytes)},
      {CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, offsetof(rt_func_attrs, max_threads)},
      {CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, offsetof(rt_func_attrs, max_dynamic_smem)},
      {CU_FUNC_ATTRIBUTE_PTX_VERSION, offsetof(rt_func_attrs, ptx_version)},
      {CU_FUNC_ATTRIBUTE_BINARY_VERSION, offsetof(rt_func_attrs, binary_version)},
  };
  bool pushed;
  rt_status s = enter(c, &pushed, e);
  if (s)
    return s;
  for (size_t i = 0; i < sizeof attrs / sizeof attrs[0] && !s; i++) {
    int v = 0;
    CUresult r = drv.cuFuncGetAttribute(&v, attrs[i].attr, (CUfunction)f);
    if (r)
      s = cu_fail(e, r, RT_ERR_CUDA, "cuFuncGetAttribute");
    memcpy((char *)out + attrs[i].offset, &v, sizeof v);
  }
  leave(pushed);
  return s;
}

rt_status rt_func_set_dynamic_smem(rt_ctx *c, rt_func *f, unsigned bytes, rt_err *e) {
  if (bytes <= 48 * 1024)
    return RT_OK;
  bool pushed;
  rt_status s = enter(c, &pushed, e);
  if (s)
    return s;
  CUresult r = drv.cuFuncSetAttribute((CUfunction)f,
                                      CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)bytes);
  leave(pushed);
  if (r) {
    s = cu_fail(e, r, RT_ERR_LAUNCH, "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");
    if (e)
      snprintf(e->msg + strlen(e->msg), sizeof e->msg - strlen(e->msg),
               " for %u bytes of dynamic shared memory", bytes);
  }
  return s;
}

/* ---- launches ---------------------------------------------------------------------------- */

rt_status rt_launch(rt_ctx *c, rt_func *f, const rt_launch_cfg *cfg, void **params, rt_err *e) {
  return rt_launch_on(c, c ? c->stream : NULL, f, cfg, params, e);
}

rt_status rt_launch_on(rt_ctx *c, void *stream, rt_func *f, const rt_launch_cfg *cfg, void **params,
                       rt_err *e) {
  if (!c || !f || !cfg)
    return rt_fail(e, RT_ERR_ARG, "rt_launch: no context, kernel or configuration");
  if (!cfg->grid[0] || !cfg->grid[1] || !cfg->grid[2])
    return RT_OK;
  bool pushed;
  rt_status s = enter(c, &pushed, e);
  if (s)
    return s;
  CUresult r =
      drv.cuLaunchKernel((CUfunction)f, cfg->grid[0], cfg->grid[1], cfg->grid[2], cfg->block[0],
                         cfg->block[1], cfg->block[2], cfg->smem, (CUstream)stream, params, NULL);
  leave(pushed);
  if (r) {
    s = cu_fail(e, r, RT_ERR_LAUNCH, "cuLaunchKernel");
    if (e)
      snprintf(e->msg + strlen(e->msg), sizeof e->msg - strlen(e->msg),
               " (grid %u,%u,%u block %u,%u,%u, %u bytes dynamic shared memory)", cfg->grid[0],
               cfg->grid[1], cfg->grid[2], cfg->block[0], cfg->block[1], cfg->block[2], cfg->smem);
  }
  return s;
}

/* ---- timing ------------------------------------------------------------------------------ */

rt_status rt_time_samples(rt_ctx *c, rt_timed_fn fn, rt_timed_fn before, void *user, int warmup,
                          int reps, double *ms, rt_err *e) {
  if (!c || !fn || !ms || reps < 1 || reps > 100000 || warmup < 0)
    return rt_fail(e, RT_ERR_ARG, "rt_time: reps must be in 1..100000 (got %d), warmup >= 0", reps);
  CUevent *ev = calloc(2 * (size_t)reps, sizeof *ev);
  bool pushed = false, entered = false;
  rt_status s = RT_OK;
  CUresult r;
  if (!ev) {
    s = rt_fail(e, RT_ERR_OOM, "out of host memory");
    goto done;
  }
  if ((s = enter(c, &pushed, e)))
    goto done;
  entered = true;
  for (int i = 0; i < 2 * reps; i++)
    if ((r = drv.cuEventCreate(&ev[i], CU_EVENT_DEFAULT))) {
      s = cu_fail(e, r, RT_ERR_CUDA, "cuEventCreate");
      goto done;
    }
  for (int i = 0; i < warmup; i++)
    if ((before && (s = before(user, e))) || (s = fn(user, e)))
      goto done;
  for (int i = 0; i < reps; i++) {
    if (before && (s = before(user, e)))
      goto done;
    if ((r = drv.cuEventRecord(ev[2 * i], c->stream))) {
      s = cu_fail(e, r, RT_ERR_CUDA, "cuEventRecord");
      goto done;
    }
    if ((s = fn(user, e)))
      goto done;
    if ((r = drv.cuEventRecord(ev[2 * i + 1], c->stream))) {
      s = cu_fail(e, r, RT_ERR_CUDA, "cuEventRecord");
      goto done;
    }
  }
  if ((r = drv.cuEventSynchronize(ev[2 * reps - 1]))) {
    s = cu_fail(e, r, RT_ERR_CUDA, "cuEventSynchronize");
    goto done;
  }
  for (int i = 0; i < reps; i++) {
    float t = 0;
    if ((r = drv.cuEventElapsedTime_v2(&t, ev[2 * i], ev[2 * i + 1]))) {
      s = cu_fail(e, r, RT_ERR_CUDA, "cuEventElapsedTime");
      goto done;
    }
    ms[i] = t;
  }
done:
  if (ev)
    for (int i = 0; i < 2 * reps; i++)
      if (ev[i])
        drv.cuEventDestroy_v2(ev[i]);
  if (entered)
    leave(pushed);
  free(ev);
  return s;
}

rt_status rt_time(rt_ctx *c, rt_timed_fn fn, void *user, int warmup, int reps, rt_timing *out,
                  rt_err *e) {
  memset(out, 0, sizeof *out);
  if (reps < 1 || reps > 100000 || warmup < 0)
    return rt_fail(e, RT_ERR_ARG, "rt_time: reps must be in 1..100000 (got %d), warmup >= 0", reps);
  double *ms = calloc((size_t)reps, sizeof *ms);
  if (!ms)
    return rt_fail(e, RT_ERR_OOM, "out of host memory");
  rt_status s = rt_time_samples(c, fn, NULL, user, warmup, reps, ms, e);
  if (!s) {
    double sum = 0;
    for (int i = 0; i < reps; i++)
      sum += ms[i];
    out->reps = reps;
    out->mean_ms = sum / reps;
    out->median_ms = rt_median(ms, reps); /* sorts ms */
    out->min_ms = ms[0];
    out->max_ms = ms[reps - 1];
  }
  free(ms);
  return s;
}

/* ---- launch errors, L2 flush, PCI identity ---------------------------------------------- */

rt_launch_class rt_err_launch_class(const rt_err *e) {
  if (!e || e->status == RT_OK)
    return RT_LAUNCH_OTHER;
  CUresult r = (CUresult)e->code;
  if (r == CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES)
    return RT_LAUNCH_RESOURCES;
  if (r == CUDA_ERROR_INVALID_VALUE) /* from these two calls: block or shared memory too large */
    return !strncmp(e->msg, "cuLaunchKernel", 14) || !strncmp(e->msg, "cuFuncSetAttribute", 18)
               ? RT_LAUNCH_RESOURCES
               : RT_LAUNCH_OTHER;
  /* every other launch-class error of classify() is a sticky kernel fault */
  if (classify(r, RT_ERR_CUDA) == RT_ERR_LAUNCH || r == CUDA_ERROR_CONTEXT_IS_DESTROYED ||
      r == CUDA_ERROR_ECC_UNCORRECTABLE)
    return RT_LAUNCH_FAULT;
  return RT_LAUNCH_OTHER;
}

rt_status rt_flusher_open(rt_ctx *c, size_t bytes, rt_flusher *f, rt_err *e) {
  memset(f, 0, sizeof *f);
  bytes = (bytes + 3) & ~(size_t)3;
  rt_status s = rt_mem_alloc(c, bytes, &f->dptr, e);
  if (!s)
    f->bytes = bytes;
  return s;
}

rt_status rt_flush_l2(rt_ctx *c, rt_flusher *f, rt_err *e) {
  if (!c || !f || !f->dptr)
    return rt_fail(e, RT_ERR_ARG, "rt_flush_l2: no context or no flush buffer");
  bool pushed;
  rt_status s = enter(c, &pushed, e);
  if (s)
    return s;
  CUresult r = drv.cuMemsetD32Async((CUdeviceptr)f->dptr, ++f->round, f->bytes / 4, c->stream);
  leave(pushed);
  return r ? cu_fail(e, r, RT_ERR_CUDA, "cuMemsetD32Async") : RT_OK;
}

void rt_flusher_close(rt_ctx *c, rt_flusher *f) {
  if (f && f->dptr)
    rt_mem_free(c, f->dptr);
  if (f)
    memset(f, 0, sizeof *f);
}

rt_status rt_device_pci_bus_id(int ordinal, char *buf, size_t cap, rt_err *e) {
  CUdevice dev;
  rt_status s = get_device(ordinal, &dev, e);
  if (s)
    return s;
  CUresult r = drv.cuDeviceGetPCIBusId(buf, (int)cap, dev);
  return r ? cu_fail(e, r, RT_ERR_CUDA, "cuDeviceGetPCIBusId") : RT_OK;
}

#else /* !TILEC_HAVE_CUDA_H: built without the CUDA headers; every entry point says so. */

#define NO_CUDA_H "no CUDA driver: tilec was built without cuda.h (set CUDA_HOME and rebuild)"

rt_status rt_cuda_load(rt_err *e) { return rt_fail(e, RT_ERR_NO_DRIVER, NO_CUDA_H); }
rt_status rt_cuda_init(rt_err *e) { return rt_cuda_load(e); }

void rt_lib_query_cuda(rt_lib_info *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->error, sizeof out->error, NO_CUDA_H);
}

rt_status rt_driver_version(int *version, rt_err *e) {
  *version = 0;
  return rt_cuda_load(e);
}
rt_status rt_device_count(int *count, rt_err *e) {
  *count = 0;
  return rt_cuda_load(e);
}
rt_status rt_device_query(int ordinal, rt_device_info *out, rt_err *e) {
  (void)ordinal;
  memset(out, 0, sizeof *out);
  return rt_cuda_load(e);
}
rt_status rt_ctx_open(int ordinal, unsigned flags, rt_ctx **out, rt_err *e) {
  (void)ordinal, (void)flags;
  *out = NULL;
  return rt_cuda_load(e);
}
rt_status rt_ctx_adopt(void *cu_context, void *cu_stream, rt_ctx **out, rt_err *e) {
  (void)cu_context, (void)cu_stream;
  *out = NULL;
  return rt_cuda_load(e);
}
void rt_ctx_close(rt_ctx *c) { (void)c; }
int rt_ctx_ordinal(const rt_ctx *c) {
  (void)c;
  return -1;
}
void *rt_ctx_stream(const rt_ctx *c) {
  (void)c;
  return NULL;
}
rt_status rt_ctx_sync(rt_ctx *c, rt_err *e) {
  (void)c;
  return rt_cuda_load(e);
}
rt_status rt_mem_alloc(rt_ctx *c, size_t bytes, uint64_t *dptr, rt_err *e) {
  (void)c, (void)bytes;
  *dptr = 0;
  return rt_cuda_load(e);
}
void rt_mem_free(rt_ctx *c, uint64_t dptr) { (void)c, (void)dptr; }
rt_status rt_memcpy_htod(rt_ctx *c, uint64_t dst, const void *src, size_t bytes, rt_err *e) {
  (void)c, (void)dst, (void)src, (void)bytes;
  return rt_cuda_load(e);
}
rt_status rt_memcpy_dtoh(rt_ctx *c, void *dst, uint64_t src, size_t bytes, rt_err *e) {
  (void)c, (void)dst, (void)src, (void)bytes;
  return rt_cuda_load(e);
}
rt_status rt_memset8(rt_ctx *c, uint64_t dst, uint8_t value, size_t bytes, rt_err *e) {
  (void)c, (void)dst, (void)value, (void)bytes;
  return rt_cuda_load(e);
}
rt_status rt_module_load(rt_ctx *c, const void *image, size_t size, rt_module **out, rt_err *e) {
  (void)c, (void)image, (void)size;
  *out = NULL;
  return rt_cuda_load(e);
}
const char *rt_module_log(const rt_module *m) {
  (void)m;
  return "";
}
void rt_module_unload(rt_module *m) { (void)m; }
rt_status rt_module_func(rt_module *m, const char *name, rt_func **out, rt_err *e) {
  (void)m, (void)name;
  *out = NULL;
  return rt_cuda_load(e);
}
rt_status rt_func_attrs_get(rt_ctx *c, rt_func *f, rt_func_attrs *out, rt_err *e) {
  (void)c, (void)f;
  memset(out, 0, sizeof *out);
  return rt_cuda_load(e);
}
rt_status rt_func_set_dynamic_smem(rt_ctx *c, rt_func *f, unsigned bytes, rt_err *e) {
  (void)c, (void)f, (void)bytes;
  return rt_cuda_load(e);
}
rt_status rt_launch(rt_ctx *c, rt_func *f, const rt_launch_cfg *cfg, void **params, rt_err *e) {
  (void)c, (void)f, (void)cfg, (void)params;
  return rt_cuda_load(e);
}
rt_status rt_launch_on(rt_ctx *c, void *stream, rt_func *f, const rt_launch_cfg *cfg, void **params,
                       rt_err *e) {
  (void)c, (void)stream, (void)f, (void)cfg, (void)params;
  return rt_cuda_load(e);
}
rt_status rt_time(rt_ctx *c, rt_timed_fn fn, void *user, int warmup, int reps, rt_timing *out,
                  rt_err *e) {
  (void)c, (void)fn, (void)user, (void)warmup, (void)reps;
  memset(out, 0, sizeof *out);
  return rt_cuda_load(e);
}

rt_status rt_time_samples(rt_ctx *c, rt_timed_fn fn, rt_timed_fn before, void *user, int warmup,
                          int reps, double *ms, rt_err *e) {
  (void)c, (void)fn, (void)before, (void)user, (void)warmup, (void)reps, (void)ms;
  return rt_cuda_load(e);
}
rt_launch_class rt_err_launch_class(const rt_err *e) {
  (void)e;
  return RT_LAUNCH_OTHER;
}
rt_status rt_flusher_open(rt_ctx *c, size_t bytes, rt_flusher *f, rt_err *e) {
  (void)c, (void)bytes;
  memset(f, 0, sizeof *f);
  return rt_cuda_load(e);
}
rt_status rt_flush_l2(rt_ctx *c, rt_flusher *f, rt_err *e) {
  (void)c, (void)f;
  return rt_cuda_load(e);
}
void rt_flusher_close(rt_ctx *c, rt_flusher *f) { (void)c, (void)f; }
rt_status rt_device_pci_bus_id(int ordinal, char *buf, size_t cap, rt_err *e) {
  (void)ordinal;
  if (cap)
    buf[0] = 0;
  return rt_cuda_load(e);
}

#endif
