/* tests/export/cuda_stub.c — the few CUDA driver calls a `tilec export` source makes, recorded
 * instead of run, for tests/export/driver.c (unit.export). The device is an "NVIDIA H200", sm_90,
 * with STUB_SMS SMs (default 132); STUB_FAIL=load makes cuModuleLoadData fail. */
#include "tests/export/cuda_stub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct CUmod_st {
  const void *image;
};
struct CUfunc_st {
  const void *image; /* of its module */
  char name[128];
  int max_dyn_smem;
};

stub_state stub;

static int expect_count;
static unsigned char expect_size[1024];

void stub_expect_params(int count, const unsigned char *psize) {
  expect_count = count;
  memcpy(expect_size, psize, (size_t)count);
}

CUresult cuModuleLoadData(CUmodule *module, const void *image) {
  const char *f = getenv("STUB_FAIL");
  if (f && !strcmp(f, "load"))
    return CUDA_ERROR_INVALID_IMAGE;
  struct CUmod_st *m = calloc(1, sizeof *m);
  if (!m)
    return CUDA_ERROR_OUT_OF_MEMORY;
  m->image = image;
  stub.loads++;
  stub.live_modules++;
  *module = m;
  return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name) {
  if (!hmod || !name)
    return CUDA_ERROR_INVALID_VALUE;
  struct CUfunc_st *f = calloc(1, sizeof *f);
  if (!f)
    return CUDA_ERROR_OUT_OF_MEMORY;
  snprintf(f->name, sizeof f->name, "%s", name);
  f->image = hmod->image;
  f->max_dyn_smem = 48 * 1024;
  *hfunc = f; /* leaked on purpose: a test process */
  return CUDA_SUCCESS;
}

CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc) {
  if (!hfunc)
    return CUDA_ERROR_INVALID_HANDLE;
  *pi = attrib == CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES ? 0 : 0;
  return CUDA_SUCCESS;
}

CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value) {
  if (!hfunc || attrib != CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES || value > 232448)
    return CUDA_ERROR_INVALID_VALUE;
  hfunc->max_dyn_smem = value;
  stub.set_smem = value;
  return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule hmod) {
  if (!hmod)
    return CUDA_ERROR_INVALID_HANDLE;
  free(hmod);
  stub.live_modules--;
  return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                        unsigned int bx, unsigned int by, unsigned int bz, unsigned int smem,
                        CUstream hStream, void **kernelParams, void **extra) {
  (void)hStream;
  if (!f || extra || !kernelParams || (int)smem > f->max_dyn_smem)
    return CUDA_ERROR_INVALID_VALUE;
  stub.launches++;
  unsigned d[7] = {gx, gy, gz, bx, by, bz, smem};
  memcpy(stub.dims, d, sizeof d);
  snprintf(stub.name, sizeof stub.name, "%s", f->name);
  stub.last_image = f->image;
  stub.nparams = expect_count;
  size_t n = 0;
  for (int i = 0; i < expect_count && n + expect_size[i] <= sizeof stub.params; i++) {
    memcpy(stub.params + n, kernelParams[i], expect_size[i]);
    n += expect_size[i];
  }
  stub.params_size = n;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice dev) {
  if (dev != 0 || len < 1)
    return CUDA_ERROR_INVALID_DEVICE;
  snprintf(name, (size_t)len, "NVIDIA H200");
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev) {
  const char *sms = getenv("STUB_SMS");
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  switch (attrib) {
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
    *pi = 9;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
    *pi = 0;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
    *pi = sms ? atoi(sms) : 132;
    return CUDA_SUCCESS;
  default:
    return CUDA_ERROR_INVALID_VALUE;
  }
}
