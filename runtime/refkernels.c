/* runtime/refkernels.c — reference kernels in CUDA C, compiled by NVRTC at run time, that check
 * tilec's kernels on the GPU at sizes where the CPU reference (kernels/ref.c) is too slow.
 *
 * Plain code computing in f32 with one rounding to the output type: a shared-memory tiled
 * matmul (any strides, k ascending), attention (two passes per query row: the row maximum, then
 * the exponentials and the weighted sum of V) with kn_mask's element predicate copied verbatim,
 * and BSR matmul. The source includes no header: 16-bit types are read and written as bits
 * with the PTX cvt instructions (sm_80+), so NVRTC needs nothing from the toolkit's include
 * directory. Host helpers below check sizes, pick the grid and launch.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "runtime/rt_impl.h"

static const char ref_common[] =
    "/* tilec reference kernels (runtime/refkernels.c), f32 math. */\n"
    "typedef unsigned long long u64;\n"
    "typedef long long i64;\n"
    "\n"
    "/* Element i of a buffer of type dt (0 f32, 1 f16, 2 bf16). */\n"
    "__device__ __forceinline__ float ld(const void *p, i64 i, int dt) {\n"
    "  if (dt == 0)\n"
    "    return ((const float *)p)[i];\n"
    "  unsigned short b = ((const unsigned short *)p)[i];\n"
    "  if (dt == 2)\n"
    "    return __uint_as_float((unsigned)b << 16);\n"
    "  float f;\n"
    "  asm(\"cvt.f32.f16 %0, %1;\" : \"=f\"(f) : \"h\"(b));\n"
    "  return f;\n"
    "}\n"
    "\n"
    "/* Stores x rounded to nearest even into element i of a buffer of type dt. */\n"
    "__device__ __forceinline__ void st(void *p, i64 i, int dt, float x) {\n"
    "  if (dt == 0) {\n"
    "    ((float *)p)[i] = x;\n"
    "    return;\n"
    "  }\n"
    "  unsigned short b;\n"
    "  if (dt == 1)\n"
    "    asm(\"cvt.rn.f16.f32 %0, %1;\" : \"=h\"(b) : \"f\"(x));\n"
    "  else\n"
    "    asm(\"cvt.rn.bf16.f32 %0, %1;\" : \"=h\"(b) : \"f\"(x));\n"
    "  ((unsigned short *)p)[i] = b;\n"
    "}\n"
    "\n";

/* The source is kept in pieces: ISO C caps a string literal at 4095 characters. */
static const char ref_matmul[] =
    "/* C(m,n) = sum_k A(m,k) B(k,n), k ascending; 16x16 threads per 16x16 tile of C. */\n"
    "extern \"C\" __global__ void __launch_bounds__(256)\n"
    "tilec_ref_matmul(const void *A, const void *B, void *C, i64 M, i64 N, i64 K, i64 sam,\n"
    "                 i64 sak, i64 sbk, i64 sbn, i64 scm, i64 scn, int ta, int tb, int tc) {\n"
    "  __shared__ float as[16][17], bs[16][17];\n"
    "  int tx = threadIdx.x, ty = threadIdx.y;\n"
    "  i64 m0 = (i64)blockIdx.y * 16, n0 = (i64)blockIdx.x * 16;\n"
    "  i64 m = m0 + ty, n = n0 + tx;\n"
    "  float acc = 0.0f;\n"
    "  for (i64 k0 = 0; k0 < K; k0 += 16) {\n"
    "    i64 ka = k0 + tx, kb = k0 + ty;\n"
    "    as[ty][tx] = m < M && ka < K ? ld(A, m * sam + ka * sak, ta) : 0.0f;\n"
    "    bs[ty][tx] = kb < K && n < N ? ld(B, kb * sbk + n * sbn, tb) : 0.0f;\n"
    "    __syncthreads();\n"
    "    for (int kk = 0; kk < 16; kk++)\n"
    "      acc += as[ty][kk] * bs[kk][tx];\n"
    "    __syncthreads();\n"
    "  }\n"
    "  if (m < M && n < N)\n"
    "    st(C, m * scm + n * scn, tc, acc);\n"
    "}\n"
    "\n";

static const char ref_mask[] =
    "/* splitmix64's output function (kernels/rng.c kn_mix64). */\n"
    "__device__ __forceinline__ u64 mix64(u64 x) {\n"
    "  u64 z = x + 0x9e3779b97f4a7c15ull;\n"
    "  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;\n"
    "  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;\n"
    "  return z ^ (z >> 31);\n"
    "}\n"
    "\n"
    "/* kn_mask_visible (kernels/mask.h), term by term. */\n"
    "__device__ bool visible(int causal, i64 window, i64 prefix, const int *doc, double density,\n"
    "                        u64 seed, int rbm, int rbn, int b, int h, i64 q, i64 k) {\n"
    "  if (density > 0.0) {\n"
    "    u64 x = mix64(seed);\n"
    "    x = mix64(x ^ (u64)(i64)b);\n"
    "    x = mix64(x ^ (u64)(i64)h);\n"
    "    x = mix64(x ^ (u64)(q / rbm));\n"
    "    x = mix64(x ^ (u64)(k / rbn));\n"
    "    if (!((double)(x >> 11) * (1.0 / 9007199254740992.0) < density))\n"
    "      return false;\n"
    "  }\n"
    "  if (doc && doc[q] != doc[k])\n"
    "    return false;\n"
    "  if (k < prefix)\n"
    "    return true;\n"
    "  if (causal && k > q)\n"
    "    return false;\n"
    "  return window <= 0 || q - k < window;\n"
    "}\n"
    "\n";

static const char ref_attention[] =
    "#define ATT_THREADS 128\n"
    "#define ATT_DIMS 8 /* D <= ATT_THREADS * ATT_DIMS */\n"
    "\n"
    "/* One block per query row (blockIdx.x = q, blockIdx.y = b * H + h). Dynamic shared memory:\n"
    " * (D + 2 * ATT_THREADS) floats. */\n"
    "extern \"C\" __global__ void __launch_bounds__(ATT_THREADS)\n"
    "tilec_ref_attention(const void *Q, const void *K, const void *V, void *O, float *LSE,\n"
    "                    int tin, int tout, int H, int HKV, i64 S, i64 SKV, int D, float scale,\n"
    "                    int causal, i64 window, i64 prefix, const int *doc, double density,\n"
    "                    u64 seed, int rbm, int rbn) {\n"
    "  extern __shared__ float sh[];\n"
    "  float *qs = sh, *ps = sh + D, *red = ps + ATT_THREADS;\n"
    "  int t = threadIdx.x;\n"
    "  i64 q = blockIdx.x;\n"
    "  int bh = blockIdx.y, b = bh / H, h = bh % H, hk = h / (H / HKV);\n"
    "  i64 qoff = ((i64)bh * S + q) * D;\n"
    "  i64 kv = ((i64)b * HKV + hk) * SKV * D;\n"
    "  for (int d = t; d < D; d += ATT_THREADS)\n"
    "    qs[d] = ld(Q, qoff + d, tin);\n"
    "  __syncthreads();\n"
    "\n"
    "  float mx = -__int_as_float(0x7f800000);\n"
    "  for (i64 k = t; k < SKV; k += ATT_THREADS) {\n"
    "    if (!visible(causal, window, prefix, doc, density, seed, rbm, rbn, b, h, q, k))\n"
    "      continue;\n"
    "    float s = 0.0f;\n"
    "    for (int d = 0; d < D; d++)\n"
    "      s += qs[d] * ld(K, kv + k * D + d, tin);\n"
    "    mx = fmaxf(mx, s * scale);\n"
    "  }\n"
    "  red[t] = mx;\n"
    "  __syncthreads();\n"
    "  for (int w = ATT_THREADS / 2; w > 0; w >>= 1) {\n"
    "    if (t < w)\n"
    "      red[t] = fmaxf(red[t], red[t + w]);\n"
    "    __syncthreads();\n"
    "  }\n"
    "  mx = red[0];\n"
    "  __syncthreads();\n"
    "  if (mx == -__int_as_float(0x7f800000)) { /* no visible key */\n"
    "    for (int d = t; d < D; d += ATT_THREADS)\n"
    "      st(O, qoff + d, tout, 0.0f);\n"
    "    if (t == 0 && LSE)\n"
    "      LSE[(i64)bh * S + q] = mx;\n"
    "    return;\n"
    "  }\n"
    "\n"
    "  float acc[ATT_DIMS], l = 0.0f;\n"
    "  for (int i = 0; i < ATT_DIMS; i++)\n"
    "    acc[i] = 0.0f;\n"
    "  for (i64 k0 = 0; k0 < SKV; k0 += ATT_THREADS) {\n"
    "    i64 k = k0 + t;\n"
    "    float p = 0.0f;\n"
    "    if (k < SKV && visible(causal, window, prefix, doc, density, seed, rbm, rbn, b, h, q, k)) "
    "{\n"
    "      float s = 0.0f;\n"
    "      for (int d = 0; d < D; d++)\n"
    "        s += qs[d] * ld(K, kv + k * D + d, tin);\n"
    "      p = expf(s * scale - mx);\n"
    "    }\n"
    "    ps[t] = p;\n"
    "    l += p;\n"
    "    __syncthreads();\n"
    "    int nk = SKV - k0 < ATT_THREADS ? (int)(SKV - k0) : ATT_THREADS;\n"
    "    for (int j = 0; j < nk; j++) {\n"
    "      float pj = ps[j];\n"
    "      if (pj == 0.0f)\n"
    "        continue;\n"
    "      i64 row = kv + (k0 + j) * D;\n"
    "#pragma unroll\n"
    "      for (int i = 0; i < ATT_DIMS; i++) {\n"
    "        int d = t + i * ATT_THREADS;\n"
    "        if (d < D)\n"
    "          acc[i] += pj * ld(V, row + d, tin);\n"
    "      }\n"
    "    }\n"
    "    __syncthreads();\n"
    "  }\n"
    "  red[t] = l;\n"
    "  __syncthreads();\n"
    "  for (int w = ATT_THREADS / 2; w > 0; w >>= 1) {\n"
    "    if (t < w)\n"
    "      red[t] += red[t + w];\n"
    "    __syncthreads();\n"
    "  }\n"
    "  l = red[0];\n"
    "#pragma unroll\n"
    "  for (int i = 0; i < ATT_DIMS; i++) {\n"
    "    int d = t + i * ATT_THREADS;\n"
    "    if (d < D)\n"
    "      st(O, qoff + d, tout, acc[i] / l);\n"
    "  }\n"
    "  if (t == 0 && LSE)\n"
    "    LSE[(i64)bh * S + q] = mx + logf(l);\n"
    "}\n"
    "\n";

static const char ref_bsmatmul[] =
    "/* Y[m][n] = sum over the stored blocks j of block row n / bs, k ascending, of\n"
    " * X[m][k] * W_j[n % bs][k % bs]; 16x16 threads per 16x16 tile of Y. */\n"
    "extern \"C\" __global__ void __launch_bounds__(256)\n"
    "tilec_ref_bsmatmul(const void *X, const int *row_ptr, const int *col_idx, const void *W,\n"
    "                   void *Y, i64 M, i64 N, i64 K, int bs, i64 ldx, i64 ldy, int tx,\n"
    "                   int tw, int ty) {\n"
    "  i64 n = (i64)blockIdx.x * 16 + threadIdx.x, m = (i64)blockIdx.y * 16 + threadIdx.y;\n"
    "  if (m >= M || n >= N)\n"
    "    return;\n"
    "  i64 nb = n / bs;\n"
    "  int r = (int)(n % bs);\n"
    "  float acc = 0.0f;\n"
    "  for (int j = row_ptr[nb]; j < row_ptr[nb + 1]; j++) {\n"
    "    i64 k0 = (i64)col_idx[j] * bs, w = ((i64)j * bs + r) * bs;\n"
    "    for (int kk = 0; kk < bs && k0 + kk < K; kk++)\n"
    "      acc += ld(X, m * ldx + k0 + kk, tx) * ld(W, w + kk, tw);\n"
    "  }\n"
    "  st(Y, m * ldy + n, ty, acc);\n"
    "}\n";

static const char ref_fill[] =
    "/* p[i] = lo + (hi - lo) * u(seed, i), u uniform in [0, 1) from a 64-bit mix of i. */\n"
    "extern \"C\" __global__ void tilec_ref_fill(void *p, i64 n, int dt, u64 seed, float lo,\n"
    "                                          float hi) {\n"
    "  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
    "       i += (i64)gridDim.x * blockDim.x) {\n"
    "    u64 x = ((u64)i + 1) * 0x9E3779B97F4A7C15ull ^ seed;\n"
    "    x ^= x >> 33;\n"
    "    x *= 0xff51afd7ed558ccdull;\n"
    "    x ^= x >> 33;\n"
    "    x *= 0xc4ceb9fe1a85ec53ull;\n"
    "    x ^= x >> 33;\n"
    "    st(p, i, dt, lo + (hi - lo) * ((float)(x >> 40) * (1.0f / 16777216.0f)));\n"
    "  }\n"
    "}\n";

const char *const rt_ref_kernel_names[] = {"tilec_ref_matmul", "tilec_ref_attention",
                                           "tilec_ref_bsmatmul", "tilec_ref_fill", NULL};

static char ref_source[sizeof ref_common + sizeof ref_matmul + sizeof ref_mask +
                       sizeof ref_attention + sizeof ref_bsmatmul + sizeof ref_fill];
static pthread_once_t ref_once = PTHREAD_ONCE_INIT;

static void join_source(void) {
  const char *parts[] = {ref_common, ref_matmul, ref_mask, ref_attention, ref_bsmatmul, ref_fill};
  size_t n = 0;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    size_t len = strlen(parts[i]);
    memcpy(ref_source + n, parts[i], len);
    n += len;
  }
  ref_source[n] = 0;
}

const char *rt_ref_source(void) {
  pthread_once(&ref_once, join_source);
  return ref_source;
}

int rt_dtype_of(ir_kind k) {
  switch (k) {
  case IR_F32:
    return RT_DT_F32;
  case IR_F16:
    return RT_DT_F16;
  case IR_BF16:
    return RT_DT_BF16;
  default:
    return -1;
  }
}

rt_status rt_refs_load(rt_ctx *c, const char *arch, rt_refs *out, rt_err *e) {
  memset(out, 0, sizeof *out);
  rt_blob bin = {0};
  rt_status s = rt_nvrtc_compile(rt_ref_source(), "tilec_refs.cu", arch, NULL, 0, &bin, e);
  if (s == RT_ERR_COMPILE && !strncmp(arch, "sm_", 3)) {
    /* An NVRTC older than the GPU cannot emit its cubin: PTX for sm_80 runs on every later
     * GPU through the driver's JIT. A genuine error fails again and is reported as such. */
    s = rt_nvrtc_compile(rt_ref_source(), "tilec_refs.cu", "compute_80", NULL, 0, &bin, NULL);
    if (s) /* e still holds the first error */
      return RT_ERR_COMPILE;
  }
  if (s)
    return s;
  s = rt_module_load(c, bin.data, bin.size, &out->module, e);
  rt_blob_free(&bin);
  if (s)
    return s;
  if ((s = rt_module_func(out->module, "tilec_ref_matmul", &out->matmul, e)) ||
      (s = rt_module_func(out->module, "tilec_ref_attention", &out->attention, e)) ||
      (s = rt_module_func(out->module, "tilec_ref_bsmatmul", &out->bsmatmul, e)) ||
      (s = rt_module_func(out->module, "tilec_ref_fill", &out->fill, e))) {
    rt_refs_unload(out);
    return s;
  }
  return RT_OK;
}

void rt_refs_unload(rt_refs *r) {
  if (!r)
    return;
  rt_module_unload(r->module);
  memset(r, 0, sizeof *r);
}

static bool bad_dtype(rt_dtype t) { return t != RT_DT_F32 && t != RT_DT_F16 && t != RT_DT_BF16; }

static uint32_t cdiv16(int64_t n) { return (uint32_t)((n + 15) / 16); }

rt_status rt_ref_matmul(rt_ctx *c, const rt_refs *r, const rt_ref_matmul_args *a, rt_err *e) {
  if (!r || !r->matmul)
    return rt_fail(e, RT_ERR_ARG, "reference matmul: the reference kernels are not loaded");
  if (a->M < 0 || a->N < 0 || a->K < 0 || bad_dtype(a->ta) || bad_dtype(a->tb) || bad_dtype(a->tc))
    return rt_fail(e, RT_ERR_ARG, "reference matmul: bad sizes or element types");
  if ((a->M + 15) / 16 > 65535 || (a->N + 15) / 16 > INT32_MAX)
    return rt_fail(e, RT_ERR_ARG, "reference matmul: %lld x %lld is too large for its grid",
                   (long long)a->M, (long long)a->N);
  int ta = (int)a->ta, tb = (int)a->tb, tc = (int)a->tc;
  rt_ref_matmul_args v = *a; /* kernelParams point at non-const copies */
  void *params[] = {&v.A,    &v.B,    &v.C,    &v.M,    &v.N, &v.K, &v.sa_m, &v.sa_k,
                    &v.sb_k, &v.sb_n, &v.sc_m, &v.sc_n, &ta,  &tb,  &tc};
  rt_launch_cfg cfg = {{cdiv16(a->N), cdiv16(a->M), 1}, {16, 16, 1}, 0};
  return rt_launch(c, r->matmul, &cfg, params, e);
}

void rt_ref_attention_mask(rt_ref_attention_args *a, const kn_mask *m, uint64_t doc_dptr) {
  a->causal = m && m->causal;
  a->window = m ? m->window : 0;
  a->prefix = m ? m->prefix : 0;
  a->doc = m && m->ndoc_tokens > 0 ? doc_dptr : 0;
  a->density = m ? m->density : 0;
  a->seed = m ? m->seed : 0;
  a->rblock_m = m && m->rblock_m > 0 ? m->rblock_m : KN_MASK_RANDOM_BLOCK;
  a->rblock_n = m && m->rblock_n > 0 ? m->rblock_n : KN_MASK_RANDOM_BLOCK;
}

rt_status rt_ref_attention(rt_ctx *c, const rt_refs *r, const rt_ref_attention_args *a, rt_err *e) {
  if (!r || !r->attention)
    return rt_fail(e, RT_ERR_ARG, "reference attention: the reference kernels are not loaded");
  if (a->B < 0 || a->H < 1 || a->HKV < 1 || a->H % a->HKV || a->S < 0 || a->SKV < 0 || a->D < 1 ||
      a->D > 1024 || bad_dtype(a->tin) || bad_dtype(a->tout))
    return rt_fail(e, RT_ERR_ARG,
                   "reference attention: bad sizes (B=%d H=%d HKV=%d S=%lld SKV=%lld D=%d; "
                   "H %% HKV == 0 and D <= 1024 are needed) or element types",
                   a->B, a->H, a->HKV, (long long)a->S, (long long)a->SKV, a->D);
  if ((int64_t)a->B * a->H > 65535 || a->S > INT32_MAX)
    return rt_fail(e, RT_ERR_ARG, "reference attention: B * H = %lld or S = %lld is too large",
                   (long long)a->B * a->H, (long long)a->S);
  if (a->density > 0 && (a->rblock_m < 1 || a->rblock_n < 1))
    return rt_fail(e, RT_ERR_ARG, "reference attention: a random mask needs its block sizes");
  int tin = (int)a->tin, tout = (int)a->tout;
  rt_ref_attention_args v = *a; /* kernelParams point at non-const copies */
  void *params[] = {&v.Q,      &v.K,      &v.V,   &v.O,       &v.LSE,  &tin,        &tout,
                    &v.H,      &v.HKV,    &v.S,   &v.SKV,     &v.D,    &v.scale,    &v.causal,
                    &v.window, &v.prefix, &v.doc, &v.density, &v.seed, &v.rblock_m, &v.rblock_n};
  rt_launch_cfg cfg = {{(uint32_t)a->S, (uint32_t)(a->B * a->H), 1},
                       {128, 1, 1},
                       (uint32_t)(a->D + 2 * 128) * (uint32_t)sizeof(float)};
  return rt_launch(c, r->attention, &cfg, params, e);
}

rt_status rt_ref_bsmatmul(rt_ctx *c, const rt_refs *r, const rt_ref_bsmatmul_args *a, rt_err *e) {
  if (!r || !r->bsmatmul)
    return rt_fail(e, RT_ERR_ARG, "reference bsmatmul: the reference kernels are not loaded");
  if (a->M < 0 || a->N < 0 || a->K < 0 || a->block < 1 || bad_dtype(a->tx) || bad_dtype(a->tw) ||
      bad_dtype(a->ty))
    return rt_fail(e, RT_ERR_ARG, "reference bsmatmul: bad sizes or element types");
  if ((a->M + 15) / 16 > 65535 || (a->N + 15) / 16 > INT32_MAX)
    return rt_fail(e, RT_ERR_ARG, "reference bsmatmul: %lld x %lld is too large for its grid",
                   (long long)a->M, (long long)a->N);
  int tx = (int)a->tx, tw = (int)a->tw, ty = (int)a->ty;
  rt_ref_bsmatmul_args v = *a; /* kernelParams point at non-const copies */
  void *params[] = {&v.X, &v.row_ptr, &v.col_idx, &v.values, &v.Y, &v.M, &v.N,
                    &v.K, &v.block,   &v.ldx,     &v.ldy,    &tx,  &tw,  &ty};
  rt_launch_cfg cfg = {{cdiv16(a->N), cdiv16(a->M), 1}, {16, 16, 1}, 0};
  return rt_launch(c, r->bsmatmul, &cfg, params, e);
}

rt_status rt_ref_fill(rt_ctx *c, const rt_refs *r, uint64_t dptr, int64_t n, rt_dtype dt,
                      uint64_t seed, float lo, float hi, rt_err *e) {
  if (!r || !r->fill)
    return rt_fail(e, RT_ERR_ARG, "fill: the reference kernels are not loaded");
  if (n < 0 || bad_dtype(dt) || !(lo <= hi))
    return rt_fail(e, RT_ERR_ARG, "fill: bad count, element type or range");
  if (n == 0)
    return RT_OK;
  int dti = (int)dt;
  void *params[] = {&dptr, &n, &dti, &seed, &lo, &hi};
  int64_t blocks = (n + 255) / 256;
  rt_launch_cfg cfg = {{(uint32_t)(blocks < 65536 ? blocks : 65536), 1, 1}, {256, 1, 1}, 0};
  return rt_launch(c, r->fill, &cfg, params, e);
}
