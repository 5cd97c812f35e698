/* runtime/cublaslt.c — cuBLASLt opened with dlopen: the baseline `tilec bench matmul` measures
 * tilec's matmul against, in the same process, on the same buffers and stream.
 *
 * Row-major C[M][N] = A[M][K] · B[K][N] is cuBLAS's column-major Cᵀ = Bᵀ · Aᵀ, so the plan passes
 * B as the first operand (N × K, ld N) and A as the second (K × M, ld K), both untransposed;
 * a B stored [N][K] (transb) is the first operand transposed. The algorithm is cuBLASLt's own
 * heuristic choice (its best, with a 32 MiB workspace), what an application calling cuBLAS gets.
 * Nothing is linked at build time; only this file knows cuBLASLt's types.
 */
#include <cublasLt.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_impl.h"

#define CUBLASLT_FUNCS(X)                                                                          \
  X(cublasLtCreate)                                                                                \
  X(cublasLtDestroy)                                                                               \
  X(cublasLtGetVersion)                                                                            \
  X(cublasLtGetStatusName)                                                                         \
  X(cublasLtGetStatusString)                                                                       \
  X(cublasLtMatmulDescCreate)                                                                      \
  X(cublasLtMatmulDescDestroy)                                                                     \
  X(cublasLtMatmulDescSetAttribute)                                                                \
  X(cublasLtMatrixLayoutCreate)                                                                    \
  X(cublasLtMatrixLayoutDestroy)                                                                   \
  X(cublasLtMatmulPreferenceCreate)                                                                \
  X(cublasLtMatmulPreferenceDestroy)                                                               \
  X(cublasLtMatmulPreferenceSetAttribute)                                                          \
  X(cublasLtMatmulAlgoGetHeuristic)                                                                \
  X(cublasLtMatmul)

static struct {
#define FIELD(name) __typeof__(&name) name;
  CUBLASLT_FUNCS(FIELD)
#undef FIELD
  rt_status status;
  char path[512];
  char why[1024];
} lt;

static pthread_once_t lt_once = PTHREAD_ONCE_INIT;

static void load_lt(void) {
  static const char *const names[] = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so",
                                      NULL};
  void *h =
      rt_dl_search("TILEC_LIBCUBLASLT", names, lt.path, sizeof lt.path, lt.why, sizeof lt.why);
  if (!h) {
    lt.status = RT_ERR_NO_LIBRARY;
    return;
  }
  /* Stored through memcpy: ISO C has no cast from void * to a function pointer. */
#define RESOLVE(name)                                                                              \
  {                                                                                                \
    void *p = dlsym(h, #name);                                                                     \
    if (!p) {                                                                                      \
      snprintf(lt.why, sizeof lt.why, "%s has no %s", lt.path, #name);                             \
      lt.status = RT_ERR_NO_LIBRARY;                                                               \
      return;                                                                                      \
    }                                                                                              \
    memcpy(&lt.name, &p, sizeof p);                                                                \
  }
  CUBLASLT_FUNCS(RESOLVE)
#undef RESOLVE
  lt.status = RT_OK;
}

rt_status rt_cublaslt_load(char *version, size_t cap, rt_err *e) {
  pthread_once(&lt_once, load_lt);
  if (lt.status)
    return rt_fail(e, lt.status, "no cuBLASLt: %s", lt.why);
  if (version) {
    size_t v = lt.cublasLtGetVersion(); /* e.g. 130100 for 13.1.0 */
    snprintf(version, cap, "%zu.%zu.%zu (%s)", v / 10000, v / 100 % 100, v % 100, lt.path);
  }
  return RT_OK;
}

static rt_status lt_fail(rt_err *e, cublasStatus_t s, const char *call) {
  /* NOT_INITIALIZED: cuBLASLt found no usable driver or device (an environment problem) */
  rt_status st = s == CUBLAS_STATUS_ALLOC_FAILED      ? RT_ERR_OOM
                 : s == CUBLAS_STATUS_NOT_INITIALIZED ? RT_ERR_NO_LIBRARY
                                                      : RT_ERR_CUDA;
  return rt_fail(e, st, "%s: %s (%s)", call, lt.cublasLtGetStatusName(s),
                 lt.cublasLtGetStatusString(s));
}

enum { WORKSPACE_BYTES = 32 << 20 };

struct rt_gemm {
  rt_ctx *ctx;
  cublasLtHandle_t handle;
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t a, b, c;
  cublasLtMatmulPreference_t pref;
  cublasLtMatmulAlgo_t algo;
  uint64_t workspace;
};

static cudaDataType_t data_type(ir_kind k) {
  return k == IR_BF16 ? CUDA_R_16BF : k == IR_F16 ? CUDA_R_16F : CUDA_R_32F;
}

void rt_gemm_free(rt_gemm *g) {
  if (!g)
    return;
  if (lt.status == RT_OK) {
    if (g->pref)
      lt.cublasLtMatmulPreferenceDestroy(g->pref);
    if (g->c)
      lt.cublasLtMatrixLayoutDestroy(g->c);
    if (g->b)
      lt.cublasLtMatrixLayoutDestroy(g->b);
    if (g->a)
      lt.cublasLtMatrixLayoutDestroy(g->a);
    if (g->op)
      lt.cublasLtMatmulDescDestroy(g->op);
    if (g->handle)
      lt.cublasLtDestroy(g->handle);
  }
  rt_mem_free(g->ctx, g->workspace);
  free(g);
}

rt_status rt_gemm_plan(rt_ctx *c, int64_t M, int64_t N, int64_t K, ir_kind tab, ir_kind tc,
                       bool transb, rt_gemm **out, rt_err *e) {
  *out = NULL;
  rt_status s = rt_cublaslt_load(NULL, 0, e);
  if (s)
    return s;
  if (M < 1 || N < 1 || K < 1 || M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
    return rt_fail(e, RT_ERR_ARG, "cuBLASLt matmul: bad sizes %lld x %lld x %lld", (long long)M,
                   (long long)N, (long long)K);
  if ((tab != IR_BF16 && tab != IR_F16) || (tc != tab && tc != IR_F32))
    return rt_fail(e, RT_ERR_ARG,
                   "cuBLASLt matmul: inputs must be bf16 or f16, the output the "
                   "same type or f32");
  rt_gemm *g = calloc(1, sizeof *g);
  if (!g)
    return rt_fail(e, RT_ERR_OOM, "out of host memory");
  g->ctx = c;
  bool pushed = false;
  if ((s = rt_ctx_enter(c, &pushed, e))) {
    free(g);
    return s;
  }
  cublasStatus_t r;
  cublasOperation_t opa = transb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = CUBLAS_OP_N;
  uint64_t ws = WORKSPACE_BYTES;
  int returned = 0;
  cublasLtMatmulHeuristicResult_t best;
  const char *call = "cublasLtCreate";
  if ((r = lt.cublasLtCreate(&g->handle)))
    goto lt_error;
  call = "cublasLtMatmulDescCreate";
  if ((r = lt.cublasLtMatmulDescCreate(&g->op, CUBLAS_COMPUTE_32F, CUDA_R_32F)) ||
      (r = lt.cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa,
                                             sizeof opa)) ||
      (r = lt.cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb)))
    goto lt_error;
  call = "cublasLtMatrixLayoutCreate";
  /* first operand: B as N x K column-major (ld N), or its transpose stored K x N (ld K) */
  if ((r = transb
               ? lt.cublasLtMatrixLayoutCreate(&g->a, data_type(tab), (uint64_t)K, (uint64_t)N, K)
               : lt.cublasLtMatrixLayoutCreate(&g->a, data_type(tab), (uint64_t)N, (uint64_t)K,
                                               N)) ||
      (r = lt.cublasLtMatrixLayoutCreate(&g->b, data_type(tab), (uint64_t)K, (uint64_t)M, K)) ||
      (r = lt.cublasLtMatrixLayoutCreate(&g->c, data_type(tc), (uint64_t)N, (uint64_t)M, N)))
    goto lt_error;
  call = "cublasLtMatmulPreferenceCreate";
  if ((r = lt.cublasLtMatmulPreferenceCreate(&g->pref)) ||
      (r = lt.cublasLtMatmulPreferenceSetAttribute(
           g->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws)))
    goto lt_error;
  call = "cublasLtMatmulAlgoGetHeuristic";
  if ((r = lt.cublasLtMatmulAlgoGetHeuristic(g->handle, g->op, g->a, g->b, g->c, g->c, g->pref, 1,
                                             &best, &returned)))
    goto lt_error;
  rt_ctx_leave(pushed);
  if (returned < 1) {
    rt_gemm_free(g);
    return rt_fail(e, RT_ERR_CUDA, "cuBLASLt has no algorithm for %lld x %lld x %lld", (long long)M,
                   (long long)N, (long long)K);
  }
  g->algo = best.algo;
  if ((s = rt_mem_alloc(c, WORKSPACE_BYTES, &g->workspace, e))) {
    rt_gemm_free(g);
    return s;
  }
  *out = g;
  return RT_OK;
lt_error:
  rt_ctx_leave(pushed);
  s = lt_fail(e, r, call);
  rt_gemm_free(g);
  return s;
}

rt_status rt_gemm_run(rt_gemm *g, uint64_t A, uint64_t B, uint64_t C, rt_err *e) {
  bool pushed = false;
  rt_status s = rt_ctx_enter(g->ctx, &pushed, e);
  if (s)
    return s;
  float alpha = 1.0f, beta = 0.0f;
  cublasStatus_t r = lt.cublasLtMatmul(
      g->handle, g->op, &alpha, (const void *)(uintptr_t)B, g->a, (const void *)(uintptr_t)A, g->b,
      &beta, (const void *)(uintptr_t)C, g->c, (void *)(uintptr_t)C, g->c, &g->algo,
      (void *)(uintptr_t)g->workspace, WORKSPACE_BYTES, (cudaStream_t)rt_ctx_stream(g->ctx));
  rt_ctx_leave(pushed);
  return r ? lt_fail(e, r, "cublasLtMatmul") : RT_OK;
}
