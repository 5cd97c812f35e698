/* tests/fakecuda/fakecuda.c — a fake libcuda.so.1 for testing runtime/cuda.c without a GPU.
 *
 * Built as a shared library (tests only; tests/unit/rt_fake.c opens it through TILEC_LIBCUDA).
 * It implements the driver functions runtime/ resolves, with the prototypes of cuda.h, and
 * reports one "Fake GPU" (sm_90, 132 SMs, 143771 MiB). Device memory is host memory, so copies
 * round-trip; a kernel named fake_store runs on the host (it stores its u32 parameter at its
 * u64 pointer parameter). Launch parameters are sized from the PTX .entry declaration and
 * captured, like the real driver reads them through kernelParams. Controlled by environment
 * variables, read at every call:
 *   FAKECUDA_FAIL=name[:code],...  the named function returns the error code (default per
 *                                  function: cuInit NO_DEVICE, cuMemAlloc_v2 OUT_OF_MEMORY,
 *                                  cuLaunchKernel LAUNCH_FAILED, cuStreamSynchronize
 *                                  ILLEGAL_ADDRESS, cuModuleLoadDataEx INVALID_PTX, else UNKNOWN)
 *   FAKECUDA_DEVICES=n             device count (default 1)
 * PTX text containing FAKECUDA_BAD_PTX fails to load with a JIT error log. Built with
 * -DFAKECUDA_NO_LAUNCH it lacks cuLaunchKernel (a driver missing a symbol).
 * fakecuda_live() and fakecuda_last_launch() let tests check for leaks and launches. The three
 * NVML calls runtime/measure.c makes are here too (TILEC_LIBNVML=this library): SM 1755 MHz,
 * memory 3201 MHz for the device at PCI bus id 0000:3b:00.0 (the fake's cuDeviceGetPCIBusId).
 */
#include <cuda.h>
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_SMEM_OPTIN 232448
#define FAKE_TOTAL_MEM (143771ull << 20)

/* ---- state ------------------------------------------------------------------------------- */

struct CUctx_st {
  int refcount;
};
static struct CUctx_st primary;

enum { MAX_PARAMS = 600, MAX_FUNCS = 16, MAX_STACK = 16 };

struct CUfunc_st {
  char name[128];
  int nparams; /* -1: unknown (cubin) */
  unsigned char psize[MAX_PARAMS];
  int max_dyn_smem;
};

struct CUmod_st {
  unsigned char *image;
  size_t size;
  int is_ptx;
  struct CUfunc_st funcs[MAX_FUNCS];
  int nfuncs;
};

struct CUstream_st {
  int magic;
};
struct CUevent_st {
  double t_ms;
};

/* A live device allocation. */
struct alloc {
  void *p;
  struct alloc *next;
};

static int initialized;
static struct alloc *allocs;
/* atomic: the API loads modules on several threads at once (get_many, NOWAIT jobs) */
static _Atomic int live_mem, live_modules, live_streams, live_events;
static _Thread_local CUcontext stack[MAX_STACK];
static _Thread_local int depth;
static double clock_ms;
static _Atomic long launches, memsets;

static struct {
  unsigned dims[7]; /* grid x y z, block x y z, smem */
  char name[128];
  int nparams;
  unsigned char params[4096];
  size_t size;
} last;

/* ---- failure injection ------------------------------------------------------------------- */

/* The error FAKECUDA_FAIL asks `fn` to return, or CUDA_SUCCESS. */
static CUresult injected(const char *fn, CUresult dflt) {
  const char *spec = getenv("FAKECUDA_FAIL");
  if (!spec)
    return CUDA_SUCCESS;
  size_t n = strlen(fn);
  for (const char *p = spec; *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len >= n && !strncmp(p, fn, n) && (len == n || p[n] == ':'))
      return len == n ? dflt : (CUresult)atoi(p + n + 1);
    p += len + (end ? 1 : 0);
  }
  return CUDA_SUCCESS;
}

#define FAIL_IF(fn, dflt)                                                                          \
  do {                                                                                             \
    CUresult r_ = injected(fn, dflt);                                                              \
    if (r_)                                                                                        \
      return r_;                                                                                   \
  } while (0)

#define NEED_INIT()                                                                                \
  do {                                                                                             \
    if (!initialized)                                                                              \
      return CUDA_ERROR_NOT_INITIALIZED;                                                           \
  } while (0)

static int device_count(void) {
  const char *n = getenv("FAKECUDA_DEVICES");
  return n ? atoi(n) : 1;
}

/* ---- errors ------------------------------------------------------------------------------ */

static const struct {
  CUresult code;
  const char *name, *str;
} errors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_STUB_LIBRARY, "CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_INVALID_PTX, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS",
     "an illegal memory access was encountered"},
    {CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
     "too many resources requested for launch"},
    {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

CUresult cuGetErrorName(CUresult error, const char **pStr) {
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (errors[i].code == error) {
      *pStr = errors[i].name;
      return CUDA_SUCCESS;
    }
  *pStr = NULL;
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult error, const char **pStr) {
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (errors[i].code == error) {
      *pStr = errors[i].str;
      return CUDA_SUCCESS;
    }
  *pStr = NULL;
  return CUDA_ERROR_INVALID_VALUE;
}

/* ---- init and devices -------------------------------------------------------------------- */

CUresult cuInit(unsigned int Flags) {
  FAIL_IF("cuInit", CUDA_ERROR_NO_DEVICE);
  if (Flags)
    return CUDA_ERROR_INVALID_VALUE;
  initialized = 1;
  return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *driverVersion) {
  FAIL_IF("cuDriverGetVersion", CUDA_ERROR_UNKNOWN);
  *driverVersion = 13000;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count) {
  NEED_INIT();
  FAIL_IF("cuDeviceGetCount", CUDA_ERROR_UNKNOWN);
  *count = device_count();
  return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *device, int ordinal) {
  NEED_INIT();
  if (ordinal < 0 || ordinal >= device_count())
    return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice dev) {
  NEED_INIT();
  if (dev < 0 || dev >= device_count() || len < 1)
    return CUDA_ERROR_INVALID_VALUE;
  snprintf(name, (size_t)len, "Fake GPU");
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev) {
  NEED_INIT();
  if (dev < 0 || dev >= device_count() || len < 1)
    return CUDA_ERROR_INVALID_VALUE;
  snprintf(pciBusId, (size_t)len, "0000:%02x:00.0", 0x3b + dev);
  return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) {
  NEED_INIT();
  if (dev < 0 || dev >= device_count())
    return CUDA_ERROR_INVALID_DEVICE;
  *bytes = (size_t)FAKE_TOTAL_MEM;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev) {
  NEED_INIT();
  FAIL_IF("cuDeviceGetAttribute", CUDA_ERROR_UNKNOWN);
  if (dev < 0 || dev >= device_count())
    return CUDA_ERROR_INVALID_DEVICE;
  switch (attrib) {
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
    *pi = 9;
    break;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
    *pi = 0;
    break;
  case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
    *pi = 132;
    break;
  case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE:
    *pi = 3201000;
    break;
  case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH:
    *pi = 6144;
    break;
  case CU_DEVICE_ATTRIBUTE_CLOCK_RATE:
    *pi = 1980000;
    break;
  case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE:
    *pi = 50331648;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN:
    *pi = FAKE_SMEM_OPTIN;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR:
    *pi = 233472;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR:
    *pi = 65536;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
    *pi = 1024;
    break;
  case CU_DEVICE_ATTRIBUTE_WARP_SIZE:
    *pi = 32;
    break;
  default:
    *pi = 0;
    break;
  }
  return CUDA_SUCCESS;
}

/* ---- contexts ---------------------------------------------------------------------------- */

CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev) {
  NEED_INIT();
  FAIL_IF("cuDevicePrimaryCtxRetain", CUDA_ERROR_UNKNOWN);
  if (dev < 0 || dev >= device_count())
    return CUDA_ERROR_INVALID_DEVICE;
  primary.refcount++;
  *pctx = &primary;
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  NEED_INIT();
  if (dev < 0 || dev >= device_count() || primary.refcount <= 0)
    return CUDA_ERROR_INVALID_CONTEXT;
  primary.refcount--;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *pctx) {
  NEED_INIT();
  *pctx = depth ? stack[depth - 1] : NULL;
  return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
  NEED_INIT();
  if (!ctx) {
    if (depth)
      depth--;
    return CUDA_SUCCESS;
  }
  if (!depth)
    depth = 1;
  stack[depth - 1] = ctx;
  return CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent_v2(CUcontext ctx) {
  NEED_INIT();
  if (!ctx || depth == MAX_STACK)
    return CUDA_ERROR_INVALID_CONTEXT;
  stack[depth++] = ctx;
  return CUDA_SUCCESS;
}

CUresult cuCtxPopCurrent_v2(CUcontext *pctx) {
  NEED_INIT();
  if (!depth)
    return CUDA_ERROR_INVALID_CONTEXT;
  CUcontext c = stack[--depth];
  if (pctx)
    *pctx = c;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice *device) {
  NEED_INIT();
  if (!depth)
    return CUDA_ERROR_INVALID_CONTEXT;
  *device = 0;
  return CUDA_SUCCESS;
}

#define NEED_CTX()                                                                                 \
  do {                                                                                             \
    NEED_INIT();                                                                                   \
    if (!depth || !stack[depth - 1] || primary.refcount <= 0)                                      \
      return CUDA_ERROR_INVALID_CONTEXT;                                                           \
  } while (0)

/* ---- memory ------------------------------------------------------------------------------ */

CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
  NEED_CTX();
  FAIL_IF("cuMemAlloc_v2", CUDA_ERROR_OUT_OF_MEMORY);
  if (!bytesize)
    return CUDA_ERROR_INVALID_VALUE;
  struct alloc *a = malloc(sizeof *a);
  void *p = malloc(bytesize);
  if (!a || !p) {
    free(a);
    free(p);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  a->p = p;
  a->next = allocs;
  allocs = a;
  live_mem++;
  *dptr = (CUdeviceptr)(uintptr_t)p;
  return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr dptr) {
  NEED_CTX();
  for (struct alloc **pa = &allocs; *pa; pa = &(*pa)->next)
    if ((CUdeviceptr)(uintptr_t)(*pa)->p == dptr) {
      struct alloc *a = *pa;
      *pa = a->next;
      free(a->p);
      free(a);
      live_mem--;
      return CUDA_SUCCESS;
    }
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount) {
  NEED_CTX();
  FAIL_IF("cuMemcpyHtoD_v2", CUDA_ERROR_UNKNOWN);
  memcpy((void *)(uintptr_t)dstDevice, srcHost, ByteCount);
  return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount) {
  NEED_CTX();
  FAIL_IF("cuMemcpyDtoH_v2", CUDA_ERROR_UNKNOWN);
  memcpy(dstHost, (const void *)(uintptr_t)srcDevice, ByteCount);
  return CUDA_SUCCESS;
}

CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N) {
  NEED_CTX();
  FAIL_IF("cuMemsetD8_v2", CUDA_ERROR_UNKNOWN);
  memset((void *)(uintptr_t)dstDevice, uc, N);
  return CUDA_SUCCESS;
}

CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream) {
  NEED_CTX();
  FAIL_IF("cuMemsetD32Async", CUDA_ERROR_UNKNOWN);
  if (hStream && hStream->magic != 0x5713)
    return CUDA_ERROR_INVALID_HANDLE;
  uint32_t *p = (uint32_t *)(uintptr_t)dstDevice;
  for (size_t i = 0; i < N; i++)
    p[i] = ui;
  memsets++;
  return CUDA_SUCCESS;
}

/* ---- modules ----------------------------------------------------------------------------- */

/* Writes text into a JIT log buffer given through the options (size option: in and out). */
static void jit_log(unsigned n, CUjit_option *options, void **values, CUjit_option buf_opt,
                    CUjit_option size_opt, const char *text) {
  char *buf = NULL;
  size_t cap = 0;
  int size_index = -1;
  for (unsigned i = 0; i < n; i++) {
    if (options[i] == buf_opt)
      buf = values[i];
    if (options[i] == size_opt) {
      cap = (size_t)(uintptr_t)values[i];
      size_index = (int)i;
    }
  }
  if (!buf || !cap)
    return;
  snprintf(buf, cap, "%s", text);
  if (size_index >= 0)
    values[size_index] = (void *)(uintptr_t)(strlen(buf) + 1);
}

/* The extent of an ELF64 image: the furthest of its header tables and section contents. */
static size_t elf_size(const unsigned char *img) {
  Elf64_Ehdr eh;
  memcpy(&eh, img, sizeof eh);
  size_t end = sizeof eh;
  if (eh.e_shoff + (size_t)eh.e_shnum * eh.e_shentsize > end)
    end = eh.e_shoff + (size_t)eh.e_shnum * eh.e_shentsize;
  if (eh.e_phoff + (size_t)eh.e_phnum * eh.e_phentsize > end)
    end = eh.e_phoff + (size_t)eh.e_phnum * eh.e_phentsize;
  for (unsigned i = 0; i < eh.e_shnum; i++) {
    Elf64_Shdr sh;
    memcpy(&sh, img + eh.e_shoff + (size_t)i * eh.e_shentsize, sizeof sh);
    if (sh.sh_type != SHT_NOBITS && sh.sh_offset + sh.sh_size > end)
      end = sh.sh_offset + sh.sh_size;
  }
  return end;
}

CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions,
                            CUjit_option *options, void **optionValues) {
  NEED_CTX();
  const unsigned char *img = image;
  int is_elf = !memcmp(img,
                       "\x7f"
                       "ELF",
                       4);
  size_t size = 0;
  if (is_elf)
    size = elf_size(img);
  else
    size = strlen(image) + 1;
  CUresult r = injected("cuModuleLoadDataEx", CUDA_ERROR_INVALID_PTX);
  if (!r && !is_elf && strstr(image, "FAKECUDA_BAD_PTX"))
    r = CUDA_ERROR_INVALID_PTX;
  if (r) {
    jit_log(numOptions, options, optionValues, CU_JIT_ERROR_LOG_BUFFER,
            CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
            "ptxas application ptx input, line 3; error   : fake syntax error\n"
            "ptxas fatal   : Ptx assembly aborted due to errors\n");
    return r;
  }
  struct CUmod_st *m = calloc(1, sizeof *m);
  if (!m || !(m->image = malloc(size))) {
    free(m);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  memcpy(m->image, image, size);
  m->size = size;
  m->is_ptx = !is_elf;
  jit_log(numOptions, options, optionValues, CU_JIT_INFO_LOG_BUFFER,
          CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, is_elf ? "" : "fake JIT: compiled for sm_90\n");
  live_modules++;
  *module = m;
  return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule hmod) {
  NEED_CTX();
  if (!hmod)
    return CUDA_ERROR_INVALID_HANDLE;
  free(hmod->image);
  free(hmod);
  live_modules--;
  return CUDA_SUCCESS;
}

/* Sizes of the parameters of `.entry name(...)` in PTX text: `.param .u64 x` is 8 bytes, and
 * `.param .align 2 .b8 x[2]` (how LLVM declares f16/bf16) is 2. Returns the count, or -1. */
static int ptx_params(const char *ptx, const char *name, unsigned char *psize) {
  char key[160];
  snprintf(key, sizeof key, ".entry %s(", name);
  const char *p = strstr(ptx, key);
  if (!p)
    return -1;
  p += strlen(key);
  const char *end = strchr(p, ')');
  int n = 0;
  while (end && (p = strstr(p, ".param")) && p < end && n < MAX_PARAMS) {
    p += 6;
    while (*p == ' ')
      p++;
    if (!strncmp(p, ".align", 6)) {
      p += 6;
      while (*p == ' ' || (*p >= '0' && *p <= '9'))
        p++;
    }
    int bits = *p == '.' && strchr("usbf", p[1]) ? atoi(p + 2) : 0;
    const char *q = p;
    while (q < end && *q != ',' && *q != '[')
      q++;
    int count = *q == '[' ? atoi(q + 1) : 1;
    psize[n++] = (unsigned char)(bits / 8 * count);
  }
  return n;
}

CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name) {
  NEED_CTX();
  for (int i = 0; i < hmod->nfuncs; i++)
    if (!strcmp(hmod->funcs[i].name, name)) {
      *hfunc = &hmod->funcs[i];
      return CUDA_SUCCESS;
    }
  struct CUfunc_st f = {.max_dyn_smem = 48 * 1024};
  if (strlen(name) >= sizeof f.name || hmod->nfuncs == MAX_FUNCS)
    return CUDA_ERROR_NOT_FOUND;
  snprintf(f.name, sizeof f.name, "%s", name);
  if (hmod->is_ptx) {
    f.nparams = ptx_params((const char *)hmod->image, name, f.psize);
    if (f.nparams < 0)
      return CUDA_ERROR_NOT_FOUND;
  } else {
    f.nparams = -1;
    int found = 0;
    for (size_t i = 0; i + strlen(name) <= hmod->size && !found; i++)
      found = !memcmp(hmod->image + i, name, strlen(name));
    if (!found)
      return CUDA_ERROR_NOT_FOUND;
  }
  hmod->funcs[hmod->nfuncs] = f;
  *hfunc = &hmod->funcs[hmod->nfuncs++];
  return CUDA_SUCCESS;
}

CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value) {
  NEED_CTX();
  if (attrib != CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)
    return CUDA_SUCCESS;
  if (value < 0 || value > FAKE_SMEM_OPTIN)
    return CUDA_ERROR_INVALID_VALUE;
  hfunc->max_dyn_smem = value;
  return CUDA_SUCCESS;
}

CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc) {
  NEED_CTX();
  switch (attrib) {
  case CU_FUNC_ATTRIBUTE_NUM_REGS:
    *pi = 32;
    break;
  case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
    *pi = 1024;
    break;
  case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
    *pi = hfunc->max_dyn_smem;
    break;
  case CU_FUNC_ATTRIBUTE_PTX_VERSION:
    *pi = 90;
    break;
  case CU_FUNC_ATTRIBUTE_BINARY_VERSION:
    *pi = 90;
    break;
  default:
    *pi = 0;
    break;
  }
  return CUDA_SUCCESS;
}

/* ---- streams, events, launches ----------------------------------------------------------- */

CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags) {
  NEED_CTX();
  (void)Flags;
  struct CUstream_st *s = malloc(sizeof *s);
  if (!s)
    return CUDA_ERROR_OUT_OF_MEMORY;
  s->magic = 0x5713;
  live_streams++;
  *phStream = s;
  return CUDA_SUCCESS;
}

CUresult cuStreamDestroy_v2(CUstream hStream) {
  NEED_CTX();
  if (!hStream || hStream->magic != 0x5713)
    return CUDA_ERROR_INVALID_HANDLE;
  hStream->magic = 0;
  free(hStream);
  live_streams--;
  return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream hStream) {
  NEED_CTX();
  FAIL_IF("cuStreamSynchronize", CUDA_ERROR_ILLEGAL_ADDRESS);
  if (hStream && hStream->magic != 0x5713)
    return CUDA_ERROR_INVALID_HANDLE;
  return CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags) {
  NEED_CTX();
  (void)Flags;
  FAIL_IF("cuEventCreate", CUDA_ERROR_UNKNOWN);
  struct CUevent_st *e = calloc(1, sizeof *e);
  if (!e)
    return CUDA_ERROR_OUT_OF_MEMORY;
  live_events++;
  *phEvent = e;
  return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent hEvent, CUstream hStream) {
  NEED_CTX();
  if (hStream && hStream->magic != 0x5713)
    return CUDA_ERROR_INVALID_HANDLE;
  hEvent->t_ms = clock_ms;
  return CUDA_SUCCESS;
}

CUresult cuEventSynchronize(CUevent hEvent) {
  NEED_CTX();
  (void)hEvent;
  return CUDA_SUCCESS;
}

CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd) {
  NEED_CTX();
  *pMilliseconds = (float)(hEnd->t_ms - hStart->t_ms);
  return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent hEvent) {
  NEED_CTX();
  free(hEvent);
  live_events--;
  return CUDA_SUCCESS;
}

#ifndef FAKECUDA_NO_LAUNCH
CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                        unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                        unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                        void **kernelParams, void **extra) {
  NEED_CTX();
  FAIL_IF("cuLaunchKernel", CUDA_ERROR_LAUNCH_FAILED);
  if (!f || !gridDimX || !gridDimY || !gridDimZ || !blockDimX || !blockDimY || !blockDimZ ||
      (unsigned long long)blockDimX * blockDimY * blockDimZ > 1024 || extra ||
      (int)sharedMemBytes > f->max_dyn_smem || (hStream && hStream->magic != 0x5713))
    return CUDA_ERROR_INVALID_VALUE;
  unsigned d[7] = {gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes};
  memcpy(last.dims, d, sizeof d);
  snprintf(last.name, sizeof last.name, "%s", f->name);
  last.nparams = f->nparams;
  last.size = 0;
  for (int i = 0; i < f->nparams; i++) {
    size_t sz = f->psize[i], off = (last.size + sz - 1) & ~(sz - 1);
    if (!sz || off + sz > sizeof last.params || !kernelParams || !kernelParams[i])
      return CUDA_ERROR_INVALID_VALUE;
    memcpy(last.params + off, kernelParams[i], sz);
    last.size = off + sz;
  }
  if (!strcmp(f->name, "fake_store") && f->nparams == 2) {
    uint64_t p;
    uint32_t v;
    memcpy(&p, kernelParams[0], 8);
    memcpy(&v, kernelParams[1], 4);
    memcpy((void *)(uintptr_t)p, &v, 4);
  }
  static const double durations[3] = {1.0, 3.0, 2.0}; /* ms, in turn */
  clock_ms += durations[launches++ % 3];
  return CUDA_SUCCESS;
}
#endif

/* ---- NVML (the same library stands in for libnvidia-ml.so.1 through TILEC_LIBNVML) ---------- */

int nvmlInit_v2(void);
int nvmlInit_v2(void) { return injected("nvmlInit_v2", CUDA_ERROR_UNKNOWN) ? 1 : 0; }

int nvmlDeviceGetHandleByPciBusId_v2(const char *bus, void **device);
int nvmlDeviceGetHandleByPciBusId_v2(const char *bus, void **device) {
  unsigned b = 0;
  if (sscanf(bus, "0000:%x:00.0", &b) != 1 || b < 0x3b || (int)(b - 0x3b) >= device_count())
    return 6; /* NVML_ERROR_NOT_FOUND */
  *device = &primary;
  return 0;
}

int nvmlDeviceGetClockInfo(void *device, int type, unsigned *clock);
int nvmlDeviceGetClockInfo(void *device, int type, unsigned *clock) {
  if (device != &primary || (type != 1 && type != 2))
    return 2;                       /* NVML_ERROR_INVALID_ARGUMENT */
  *clock = type == 1 ? 1755 : 3201; /* SM, memory (MHz) */
  return 0;
}

/* ---- test hooks -------------------------------------------------------------------------- */

/* Live objects of one kind: "mem", "module", "stream", "event", "primary" (retains), "depth"
 * (this thread's context stack), "launches", "memsets" (cuMemsetD32Async calls: L2 flushes). -1 for
 * an unknown kind. */
long fakecuda_live(const char *what);
long fakecuda_live(const char *what) {
  if (!strcmp(what, "mem"))
    return live_mem;
  if (!strcmp(what, "module"))
    return live_modules;
  if (!strcmp(what, "stream"))
    return live_streams;
  if (!strcmp(what, "event"))
    return live_events;
  if (!strcmp(what, "primary"))
    return primary.refcount;
  if (!strcmp(what, "depth"))
    return depth;
  if (!strcmp(what, "launches"))
    return launches;
  if (!strcmp(what, "memsets"))
    return memsets;
  return -1;
}

/* The last launch: dims[7] = grid xyz, block xyz, dynamic smem; the kernel's name; its
 * parameters as packed at their natural alignment (*size bytes; nparams -1 for a cubin). */
const unsigned char *fakecuda_last_launch(unsigned dims[7], const char **name, int *nparams,
                                          size_t *size);
const unsigned char *fakecuda_last_launch(unsigned dims[7], const char **name, int *nparams,
                                          size_t *size) {
  memcpy(dims, last.dims, sizeof last.dims);
  *name = last.name;
  *nparams = last.nparams;
  *size = last.size;
  return last.params;
}
