/* examples/export/engine.c — an "engine" that runs tuned matmul kernels exported by
 * `tilec export --prefix example` (tuned.c / tuned.h), with the CUDA driver API alone: no
 * tilec, LLVM or SQLite at run time.
 *
 *   ./engine [M N K]        (default 16 256 256)
 *
 * Checks the GPU against the tuned device key (TILEC_ALLOW_OTHER_GPU=1 to run anyway), picks
 * the entry for the problem, launches it on bf16 inputs and compares C with a CPU reference.
 * Exit code 0: the result matches; 1: it does not, or no entry fits; 2: no usable GPU.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tuned.h"

static uint16_t to_bf16(float x) { /* round to nearest even; inputs here are finite */
  uint32_t u;
  memcpy(&u, &x, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float x;
  memcpy(&x, &u, 4);
  return x;
}

static int fail(const char *what, CUresult r) {
  const char *s = NULL;
  cuGetErrorString(r, &s);
  fprintf(stderr, "engine: %s: %s\n", what, s ? s : "unknown error");
  return 2;
}

int main(int argc, char **argv) {
  long long M = 16, N = 256, K = 256;
  if (argc == 4) {
    M = atoll(argv[1]), N = atoll(argv[2]), K = atoll(argv[3]);
  }
  if (M < 1 || N < 1 || K < 1 || M * K > (1 << 26) || K * N > (1 << 26) || M * N > (1 << 26)) {
    fprintf(stderr, "usage: engine [M N K] (each >= 1, products up to 2^26)\n");
    return 1;
  }
  CUdevice dev;
  CUcontext ctx;
  CUresult r;
  if ((r = cuInit(0)) || (r = cuDeviceGet(&dev, 0)))
    return fail("no GPU", r);
  if ((r = tuned_example_check_device(dev, getenv("TILEC_ALLOW_OTHER_GPU") != NULL))) {
    fprintf(stderr,
            "engine: this GPU is not the tuned one (%s); TILEC_ALLOW_OTHER_GPU=1 runs anyway\n",
            tuned_example_device);
    return 2;
  }
  if ((r = cuDevicePrimaryCtxRetain(&ctx, dev)) || (r = cuCtxSetCurrent(ctx)))
    return fail("context", r);

  tuned_example_matmul_problem prob;
  memset(&prob, 0, sizeof prob);
  prob.M = M, prob.N = N, prob.K = K;
#ifdef TUNED_EXAMPLE_MATMUL_HAS_dtype
  prob.dtype = "bf16";
#endif
  int entry = tuned_example_matmul_select(&prob, 0);
  if (entry < 0) {
    fprintf(stderr, "engine: no tuned entry fits M=%lld N=%lld K=%lld\n", M, N, K);
    return 1;
  }
  const tuned_example_entry_info *info = tuned_example_entry(entry);
  printf("M=%lld N=%lld K=%lld: entry %d, bucket %s, config %s\n", M, N, K, entry, info->bucket,
         info->config);

  size_t na = (size_t)(M * K), nb = (size_t)(K * N), nc = (size_t)(M * N);
  uint16_t *a = malloc(na * 2), *b = malloc(nb * 2), *c = malloc(nc * 2);
  if (!a || !b || !c)
    return fail("host memory", CUDA_ERROR_OUT_OF_MEMORY);
  unsigned seed = 1;
  for (size_t i = 0; i < na; i++)
    a[i] = to_bf16((float)((seed = seed * 1103515245u + 12345u) >> 16 & 0xff) / 128.0f - 1.0f);
  for (size_t i = 0; i < nb; i++)
    b[i] = to_bf16((float)((seed = seed * 1103515245u + 12345u) >> 16 & 0xff) / 128.0f - 1.0f);
  CUdeviceptr da, db, dc;
  if ((r = cuMemAlloc(&da, na * 2)) || (r = cuMemAlloc(&db, nb * 2)) ||
      (r = cuMemAlloc(&dc, nc * 2)) || (r = cuMemcpyHtoD(da, a, na * 2)) ||
      (r = cuMemcpyHtoD(db, b, nb * 2)) || (r = cuMemsetD8(dc, 0xff, nc * 2)))
    return fail("device memory", r);

  tuned_example_matmul_args args;
  memset(&args, 0, sizeof args);
  args.A.ptr = da, args.A.shape[0] = M, args.A.shape[1] = K, args.A.stride[0] = K,
  args.A.stride[1] = 1;
  args.B.ptr = db, args.B.shape[0] = K, args.B.shape[1] = N, args.B.stride[0] = N,
  args.B.stride[1] = 1;
  args.C.ptr = dc, args.C.shape[0] = M, args.C.shape[1] = N, args.C.stride[0] = N,
  args.C.stride[1] = 1;
  if ((r = tuned_example_matmul_launch(entry, &args, NULL)) || (r = cuCtxSynchronize()))
    return fail("launch", r);
  if ((r = cuMemcpyDtoH(c, dc, nc * 2)))
    return fail("copy back", r);

  double worst = 0;
  for (long long i = 0; i < M; i++)
    for (long long j = 0; j < N; j++) {
      double ref = 0;
      for (long long k = 0; k < K; k++)
        ref += (double)from_bf16(a[i * K + k]) * from_bf16(b[k * N + j]);
      double err = fabs(from_bf16(c[i * N + j]) - ref) / (1.0 + fabs(ref));
      if (!(err <= worst))
        worst = err; /* NaN (an unwritten output) stays the worst */
    }
  printf("max relative error %.3g: %s\n", worst, worst <= 1e-2 ? "ok" : "WRONG");
  tuned_example_unload();
  cuMemFree(da), cuMemFree(db), cuMemFree(dc);
  cuDevicePrimaryCtxRelease(dev);
  free(a), free(b), free(c);
  return worst <= 1e-2 ? 0 : 1;
}
