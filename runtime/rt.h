/* runtime/rt.h — internal interface of the CUDA runtime layer (runtime/): the driver API, NVRTC
 * and nvJitLink opened with dlopen; device identity; contexts, modules, memory, launches and
 * event timing; kernel argument packing; the NVRTC reference kernels.
 *
 * runtime/ is the only folder that includes cuda.h, nvrtc.h and nvJitLink.h. This header uses
 * plain C types only (opaque handles, uint64_t device addresses, void * for CUDA handles owned
 * by a caller), so no CUDA type leaks out. No CUDA library is linked at build time: each one is
 * opened on first use, once per process (thread-safe), and stays open for the process lifetime.
 * Every fallible call returns an rt_status and, when e != NULL, one line in e->msg that carries
 * the library's own error name and string. Nothing here prints, exits or aborts.
 * docs/runtime.md: the API, library search order, kernel ABI, device key, error translation.
 */
#ifndef TILEC_RUNTIME_RT_H
#define TILEC_RUNTIME_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"
#include "kernels/mask.h"

/* ---- status and errors ------------------------------------------------------------------ */

typedef enum {
  RT_OK = 0,
  RT_ERR_NO_DRIVER,  /* libcuda.so.1 missing or unusable (missing symbol, stub, too old) */
  RT_ERR_NO_DEVICE,  /* no CUDA device, or the ordinal is out of range */
  RT_ERR_NO_LIBRARY, /* NVRTC or nvJitLink missing or unusable */
  RT_ERR_OOM,        /* device memory (or host memory for a runtime buffer) exhausted */
  RT_ERR_LAUNCH,     /* a launch was rejected, or a kernel faulted (seen at the next sync) */
  RT_ERR_MODULE,     /* a cubin or PTX image could not be loaded (JIT error log attached) */
  RT_ERR_COMPILE,    /* NVRTC or nvJitLink rejected its input (its log attached) */
  RT_ERR_ARG,        /* a bad argument from the caller (packing mismatch, size, NULL) */
  RT_ERR_CUDA,       /* any other driver error */
} rt_status;

/* The enum name without the prefix: "ok", "no_driver", ... (static string). */
const char *rt_status_name(rt_status s);

/* True for environment problems (no driver, no device, no NVRTC/nvJitLink): the CLI exits 2. */
bool rt_status_is_env(rt_status s);

/* The error of the last failed call: its status and one line (long JIT or compiler logs are cut
 * to fit, ending in "..."). Callers own it, usually on the stack. */
typedef struct rt_err {
  rt_status status;
  int code; /* the driver's CUresult behind a driver failure; 0 for every other failure */
  char msg[4096];
} rt_err;

/* What a failed launch (or the synchronization after it) means for the process that made it. */
typedef enum {
  RT_LAUNCH_OTHER = 0, /* not a launch problem, or one the classes below do not cover */
  RT_LAUNCH_RESOURCES, /* rejected before running: registers, shared memory, block size; the
                          context is intact and the next launch may go ahead */
  RT_LAUNCH_FAULT,     /* the kernel faulted (illegal address, trap, misaligned access, ...):
                          the error is sticky, the context is lost for this process */
} rt_launch_class;

/* Classifies e (filled by rt_launch, rt_ctx_sync, rt_func_set_dynamic_smem, ...) by the driver
 * code it carries: CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, and CUDA_ERROR_INVALID_VALUE from
 * cuLaunchKernel or cuFuncSetAttribute (the driver's answer to a block or a shared-memory size
 * over the limits) are RESOURCES; the sticky kernel errors are FAULT. Pure. */
rt_launch_class rt_err_launch_class(const rt_err *e);

/* ---- libraries -------------------------------------------------------------------------- */

typedef enum { RT_LIB_CUDA, RT_LIB_NVRTC, RT_LIB_NVJITLINK } rt_lib;

/* What `tilec info` prints about one library. */
typedef struct rt_lib_info {
  bool loaded;
  char path[512];    /* the file the loader opened (absolute when it can tell) */
  int version_major; /* libcuda: the driver's CUDA version (13 for 13000); else its own */
  int version_minor; /* 0 when unknown */
  char error[1024];  /* !loaded: why (the same message the load call returns) */
} rt_lib_info;

/* Loads the library if it is not loaded yet (cheap afterwards) and describes it. Never fails;
 * never calls cuInit. Environment overrides: TILEC_LIBCUDA, TILEC_LIBNVRTC, TILEC_LIBNVJITLINK
 * name the exact file to open (no search). */
void rt_lib_query(rt_lib lib, rt_lib_info *out);

/* What `tilec info` shows of the runtime, one line per item: each library's version and path
 * (or why it is missing), then the devices with their keys. Calls cuInit when the driver loads.
 * Returns malloc'd text (the caller frees it), or NULL on host out-of-memory. */
char *rt_info_text(void);

/* ---- driver and devices ----------------------------------------------------------------- */

/* Opens libcuda.so.1 and resolves every driver function tilec uses; does not call cuInit.
 * Fails with RT_ERR_NO_DRIVER and `no CUDA driver: libcuda.so.1 not found (<dlerror>)`, or a
 * message naming the missing symbol. The result is computed once per process. */
rt_status rt_cuda_load(rt_err *e);

/* rt_cuda_load, then cuInit(0) once per process (its result is remembered). Every call below
 * that touches a device calls it first. */
rt_status rt_cuda_init(rt_err *e);

/* The driver's CUDA version, e.g. 13000 for 13.0 (cuDriverGetVersion; needs no cuInit). */
rt_status rt_driver_version(int *version, rt_err *e);

/* Number of CUDA devices (0 is not an error here). */
rt_status rt_device_count(int *count, rt_err *e);

enum { RT_DEVICE_KEY_MAX = 192 };

/* One device, as the tuning DB and the launch-size checks need it. */
typedef struct rt_device_info {
  int ordinal;
  char name[256];         /* "NVIDIA H200" */
  int cc_major, cc_minor; /* compute capability 9.0 */
  char arch[16];          /* "sm_90" (the codegen may pick the "sm_90a" variant) */
  int sm_count;           /* multiprocessors */
  uint64_t total_mem;     /* bytes */
  int mem_clock_khz;      /* peak memory clock */
  int mem_bus_width;      /* bits */
  int sm_clock_khz;       /* typical SM clock */
  int l2_bytes;
  int smem_per_block_optin; /* largest static + dynamic shared memory of one block */
  int smem_per_sm;
  int regs_per_sm;
  int max_threads_per_block;
  int warp_size;
  int driver_version;          /* 13000 */
  char key[RT_DEVICE_KEY_MAX]; /* rt_device_key() of the above */
} rt_device_info;

/* Fills *out for device `ordinal` (0-based). RT_ERR_NO_DEVICE when out of range. */
rt_status rt_device_query(int ordinal, rt_device_info *out, rt_err *e);

/* The tuning DB's device key: `<name>|sm_<cc>|<N>sm|<G>GiB` (e.g. `NVIDIA H200|sm_90|132sm|
 * 140GiB`), with '|' and control characters in the name replaced by '_'. The same model gives
 * the same key on every machine and driver; H100 and H200 (or a MIG slice) differ. Pure. */
void rt_device_key(const rt_device_info *d, char *buf, size_t cap);

/* ---- contexts and streams --------------------------------------------------------------- */

typedef struct rt_ctx rt_ctx;

enum {
  RT_CTX_OWN_STREAM = 1, /* rt_ctx_open: create a non-blocking stream instead of the default */
};

/* Retains the primary context of device `ordinal` and works on its default (legacy) stream, or
 * on a new non-blocking stream with RT_CTX_OWN_STREAM. The caller owns *out (rt_ctx_close).
 * The calling thread's current context is left as it was: calls push the context when it is
 * not current and pop it before returning. */
rt_status rt_ctx_open(int ordinal, unsigned flags, rt_ctx **out, rt_err *e);

/* Works inside a context and stream that the caller owns (a CUcontext and a CUstream, as void
 * *): cu_context NULL adopts the calling thread's current context, cu_stream NULL its default
 * stream. rt_ctx_close then releases nothing of theirs. The caller owns *out. */
rt_status rt_ctx_adopt(void *cu_context, void *cu_stream, rt_ctx **out, rt_err *e);

/* Releases what rt_ctx_open acquired (stream, primary context) and frees c. Modules and memory
 * must be released before. NULL is a no-op. */
void rt_ctx_close(rt_ctx *c);

int rt_ctx_ordinal(const rt_ctx *c);
void *rt_ctx_stream(const rt_ctx *c); /* the CUstream launches go to (NULL: default stream) */

/* Waits for the context's stream; a kernel fault shows up here as RT_ERR_LAUNCH. */
rt_status rt_ctx_sync(rt_ctx *c, rt_err *e);

/* ---- device memory ---------------------------------------------------------------------- */

/* Allocates bytes of device memory; *dptr = 0 for bytes == 0 (no allocation). Caller frees. */
rt_status rt_mem_alloc(rt_ctx *c, size_t bytes, uint64_t *dptr, rt_err *e);
/* Frees an allocation of rt_mem_alloc; 0 is a no-op. Errors (a context already faulted) are
 * ignored: there is nothing a caller could do about them. */
void rt_mem_free(rt_ctx *c, uint64_t dptr);
/* Synchronous copies and fill; each waits for the context's stream first. */
rt_status rt_memcpy_htod(rt_ctx *c, uint64_t dst, const void *src, size_t bytes, rt_err *e);
rt_status rt_memcpy_dtoh(rt_ctx *c, void *dst, uint64_t src, size_t bytes, rt_err *e);
rt_status rt_memset8(rt_ctx *c, uint64_t dst, uint8_t value, size_t bytes, rt_err *e);

/* ---- modules and kernels ---------------------------------------------------------------- */

typedef struct rt_module rt_module;
typedef struct rt_func rt_func; /* a kernel of a loaded module; valid until the module unloads */

/* Loads a cubin (preferred), a fatbin, or PTX text (JIT-compiled by the driver; it need not be
 * NUL-terminated) into c. The JIT's error log goes into the error message, its info log is kept
 * (rt_module_log). The caller owns *out (rt_module_unload); c must outlive it. */
rt_status rt_module_load(rt_ctx *c, const void *image, size_t size, rt_module **out, rt_err *e);

/* The driver JIT's info log ("" when it wrote none). Owned by m. */
const char *rt_module_log(const rt_module *m);

/* Unloads m and frees it. NULL is a no-op. */
void rt_module_unload(rt_module *m);

/* Looks up kernel `name` (the PTX .entry name). */
rt_status rt_module_func(rt_module *m, const char *name, rt_func **out, rt_err *e);

typedef struct rt_func_attrs {
  int num_regs;          /* registers per thread */
  int local_bytes;       /* local memory (stack, spills) per thread */
  int static_smem_bytes; /* statically declared shared memory */
  int const_bytes;
  int max_threads;      /* largest block this kernel can launch with */
  int max_dynamic_smem; /* current dynamic shared-memory limit */
  int ptx_version;      /* virtual architecture of its PTX: 90 for compute_90 */
  int binary_version;   /* SASS target, 90 for sm_90 */
} rt_func_attrs;

rt_status rt_func_attrs_get(rt_ctx *c, rt_func *f, rt_func_attrs *out, rt_err *e);

/* Lets f launch with `bytes` of dynamic shared memory: above 48 KiB this sets
 * CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES (once per kernel is enough); at or below it
 * does nothing. */
rt_status rt_func_set_dynamic_smem(rt_ctx *c, rt_func *f, unsigned bytes, rt_err *e);

/* ---- launches --------------------------------------------------------------------------- */

typedef struct rt_launch_cfg {
  uint32_t grid[3];  /* blocks; a zero dimension launches nothing (RT_OK) */
  uint32_t block[3]; /* threads */
  uint32_t smem;     /* dynamic shared memory bytes (rt_func_set_dynamic_smem above 48 KiB) */
} rt_launch_cfg;

/* cuLaunchKernel on the context's stream; params is the driver's kernelParams array (one
 * pointer to each parameter's value). Launch-time errors are RT_ERR_LAUNCH with the grid and
 * block in the message; faults of the running kernel appear at rt_ctx_sync. */
rt_status rt_launch(rt_ctx *c, rt_func *f, const rt_launch_cfg *cfg, void **params, rt_err *e);

/* rt_launch on `stream` (a CUstream of c's context; NULL is the legacy default stream) instead
 * of the context's own: the public API launches on the caller's stream of each call. */
rt_status rt_launch_on(rt_ctx *c, void *stream, rt_func *f, const rt_launch_cfg *cfg, void **params,
                       rt_err *e);

/* ---- kernel arguments (the ABI of compiled tile kernels; docs/runtime.md) ---------------- */

enum {
  RT_MAX_PARAMS = IR_MAX_ARGS * (1 + 2 * IR_MAX_RANK), /* kernel parameters after expansion */
  RT_MAX_PARAM_BYTES = 4096,                           /* the classic CUDA parameter limit */
};

/* One launch argument of a specialized kernel, in the kernel's argument order: the same shape
 * as the interpreter's ir_argval, with a device address instead of host data. */
typedef struct rt_argval {
  ir_arg_kind kind;
  uint64_t dptr;               /* TENSOR, PTR: device address */
  int rank;                    /* TENSOR */
  int64_t shape[IR_MAX_RANK];  /* TENSOR: each in 0 .. 2^31-1 */
  int64_t stride[IR_MAX_RANK]; /* TENSOR: in elements */
  ir_num scalar;               /* SCALAR (ignored for const parameters) */
} rt_argval;

/* The packed parameters of one launch: parameter i has psize[i] bytes at buf + offset[i], each
 * at its natural alignment, so buf is also the layout of CU_LAUNCH_PARAM_BUFFER_POINTER.
 * grid is the kernel's grid for these arguments (a dimension may be 0 for an empty problem). */
typedef struct rt_params {
  int count;
  size_t size;
  uint16_t offset[RT_MAX_PARAMS];
  uint8_t psize[RT_MAX_PARAMS];
  _Alignas(8) unsigned char buf[RT_MAX_PARAM_BYTES];
  uint32_t grid[3];
} rt_params;

/* Checks args against the specialized kernel k (kinds, ranks, dims shared between tensors,
 * literal and const dims, scalar ranges) and packs them per the ABI: tensor -> pointer (u64),
 * shape[rank] (i32 each), stride[rank] (i64 each, elements); pointer -> u64; scalar -> its own
 * type (f16/bf16/f8 as their bits, i1 as one byte); const parameters -> nothing. Evaluates the
 * grid. Pure CPU; RT_ERR_ARG with a message naming the argument on a mismatch. */
rt_status rt_params_pack(const ir_kernel *k, const rt_argval *args, int nargs, rt_params *out,
                         rt_err *e);

/* Whether the arguments keep the alignment promise of kernels compiled with CG_ALIGNED (the
 * "aligned variant", codegen.h): every tensor argument's address is a multiple of 16 bytes, its
 * last stride is 1 and its other strides and its last extent are multiples of 16 bytes. False
 * for malformed arguments (nargs or kinds not the kernel's); *bad (when not NULL) is then the
 * first argument that breaks the promise (-1 for malformed ones). Pure CPU, no allocation. */
bool rt_args_aligned(const ir_kernel *k, const rt_argval *args, int nargs, int *bad);
/* The bytes of one element of kind k as the promise counts them (i1: 1): 1, 2, 4 or 8.
 * `tilec export` writes the same test into generated C. */
int rt_elem_bytes(ir_kind k);

/* Fills ptrs[0 .. p->count) with pointers into p->buf: the kernelParams of rt_launch (valid while
 * p is neither moved nor changed). */
void rt_params_pointers(rt_params *p, void **ptrs);

/* rt_launch with packed parameters. */
rt_status rt_launch_params(rt_ctx *c, rt_func *f, const rt_launch_cfg *cfg, rt_params *p,
                           rt_err *e);

/* ---- timing ----------------------------------------------------------------------------- */

/* One timed repetition: enqueue work on the context's stream (e.g. one rt_launch). */
typedef rt_status (*rt_timed_fn)(void *user, rt_err *e);

typedef struct rt_timing {
  int reps;
  double median_ms, min_ms, max_ms, mean_ms;
} rt_timing;

/* Runs fn `warmup` times, then `reps` times (1 .. 100000) each between two CUDA events on the
 * context's stream, all enqueued before one synchronization; reports the statistics of the
 * per-repetition event times. */
rt_status rt_time(rt_ctx *c, rt_timed_fn fn, void *user, int warmup, int reps, rt_timing *out,
                  rt_err *e);

/* The median of v[0 .. n) (sorts v in place); 0 for n == 0. Pure. */
double rt_median(double *v, int n);

/* Runs fn `warmup` times, then `reps` times (1 .. 100000) each between two CUDA events, all
 * enqueued before one synchronization, and stores each repetition's event time in ms[i].
 * before (NULL: none) is enqueued ahead of every repetition, warm-ups included, outside the
 * timed region (an L2 flush, the switch to the next copy of the inputs). */
rt_status rt_time_samples(rt_ctx *c, rt_timed_fn fn, rt_timed_fn before, void *user, int warmup,
                          int reps, double *ms, rt_err *e);

/* ---- L2 flush and clocks (runtime/flush.c) ----------------------------------------------- */

/* Bytes to write between timed repetitions so that none of the previous repetition's data is
 * left in an L2 of l2_bytes: twice the L2 (it is not a strict LRU), at least 8 MiB (also when
 * the device reports 0), rounded up to 4 KiB. Pure. */
size_t rt_l2_flush_bytes(int l2_bytes);

/* A device buffer that flushes the L2 by being overwritten (cuMemsetD32Async on c's stream). */
typedef struct rt_flusher {
  uint64_t dptr;
  size_t bytes;
  uint32_t round; /* the value written changes every flush, so no write can be skipped */
} rt_flusher;

/* Allocates `bytes` (rt_l2_flush_bytes) of device memory into f. The caller releases it with
 * rt_flusher_close(c, f). */
rt_status rt_flusher_open(rt_ctx *c, size_t bytes, rt_flusher *f, rt_err *e);
/* Enqueues one flush on c's stream (asynchronous). */
rt_status rt_flush_l2(rt_ctx *c, rt_flusher *f, rt_err *e);
void rt_flusher_close(rt_ctx *c, rt_flusher *f); /* frees the buffer; an empty f is a no-op */

/* The current SM and memory clocks of CUDA device `ordinal` in MHz, from NVML
 * (libnvidia-ml.so.1, opened with dlopen once per process, TILEC_LIBNVML overrides the file;
 * the device is matched by its PCI bus id). -1 for each clock NVML cannot give: library absent,
 * no permission, unknown device. Never fails. */
void rt_clocks_mhz(int ordinal, int *sm_mhz, int *mem_mhz);

/* ---- NVRTC and nvJitLink ---------------------------------------------------------------- */

/* A compiler output: data (PTX text NUL-terminated, size without the NUL; or a cubin) and the
 * compiler's log, both malloc'd and owned by the holder (rt_blob_free). */
typedef struct rt_blob {
  unsigned char *data;
  size_t size;
  char *log; /* never NULL after a successful call ("" when empty) */
} rt_blob;

void rt_blob_free(rt_blob *b); /* frees both buffers and zeroes b; NULL is a no-op */

/* Opens NVRTC (libnvrtc.so.13, .12, libnvrtc.so; on the loader path, then $CUDA_HOME/lib64, then
 * /usr/local/cuda/lib64), once per process. RT_ERR_NO_LIBRARY when absent. */
rt_status rt_nvrtc_load(rt_err *e);

/* Compiles CUDA C++ `source` (file name `name` in diagnostics) for `arch`: "compute_90" gives
 * PTX, "sm_90" a cubin; opts are extra NVRTC options. On success the caller owns *out (its log
 * holds NVRTC's warnings). A compile error is RT_ERR_COMPILE with NVRTC's log in the message,
 * and *out is left empty. */
rt_status rt_nvrtc_compile(const char *source, const char *name, const char *arch,
                           const char *const *opts, int nopts, rt_blob *out, rt_err *e);

/* Opens nvJitLink (libnvJitLink.so.13, .12, unversioned; same search as NVRTC), once. */
rt_status rt_nvjitlink_load(rt_err *e);

/* Links PTX (size bytes, NUL-terminated or not) into a cubin for `arch` ("sm_90a"), with
 * -verbose so that out->log holds ptxas's per-kernel report (rt_parse_link_log). opts are extra
 * nvJitLink options ("-O3", "-lineinfo"). The caller owns *out. */
rt_status rt_nvjitlink_ptx(const char *ptx, size_t size, const char *arch, const char *const *opts,
                           int nopts, rt_blob *out, rt_err *e);

/* Resources of one kernel, from the nvJitLink -verbose info log. -1: not reported. */
typedef struct rt_kernel_stats {
  char name[256];
  int registers;
  int barriers;
  int stack_bytes;       /* stack frame per thread */
  int spill_store_bytes; /* bytes of spill stores per thread */
  int spill_load_bytes;
  int smem_bytes; /* static shared memory */
  int cmem_bytes; /* constant bank 0 */
} rt_kernel_stats;

/* Parses the info log of rt_nvjitlink_ptx: one entry per kernel, in the order kernels first
 * appear, at most cap (later kernels are left out). Returns the number filled. Pure. */
int rt_parse_link_log(const char *log, rt_kernel_stats *out, int cap);

/* ---- reference kernels (CUDA C, compiled by NVRTC at run time) --------------------------- */

/* Element types of the reference kernels' buffers (a runtime argument of each kernel). */
typedef enum { RT_DT_F32 = 0, RT_DT_F16 = 1, RT_DT_BF16 = 2 } rt_dtype;

/* The rt_dtype of an IR scalar kind; -1 for kinds the references do not read. */
int rt_dtype_of(ir_kind k);

/* The CUDA C source of every reference kernel (one translation unit, no #include), and the
 * NULL-terminated list of its extern "C" entry points. Static strings. */
const char *rt_ref_source(void);
extern const char *const rt_ref_kernel_names[];

typedef struct rt_refs {
  rt_module *module;
  rt_func *matmul, *attention, *bsmatmul, *fill;
} rt_refs;

/* Compiles rt_ref_source() with NVRTC for `arch` ("sm_90"; PTX for compute_XX when NVRTC cannot
 * emit that cubin) and loads it into c. The caller owns *out (rt_refs_unload). */
rt_status rt_refs_load(rt_ctx *c, const char *arch, rt_refs *out, rt_err *e);
void rt_refs_unload(rt_refs *r); /* NULL or an empty struct is a no-op */

/* C(m, n) = sum_k A(m, k) * B(k, n) in f32, k ascending, rounded once to C's type. Strides are in
 * elements: A(m, k) = A[m * sa_m + k * sa_k], likewise B and C (so transposed operands work). */
typedef struct rt_ref_matmul_args {
  int64_t M, N, K;
  uint64_t A, B, C;
  int64_t sa_m, sa_k, sb_k, sb_n, sc_m, sc_n;
  rt_dtype ta, tb, tc;
} rt_ref_matmul_args;

/* Attention forward as kernels/ref.h's kn_ref_attention, in f32: Q, O contiguous [B][H][S][D],
 * K, V [B][HKV][SKV][D], LSE f32 [B][H][S] (0: not written). The element mask is kn_mask's
 * predicate: its fields below, doc a device array of S int32 document ids (0: no document
 * mask). A row with no visible key gives O = 0 and LSE = -inf. D <= 1024. */
typedef struct rt_ref_attention_args {
  int32_t B, H, HKV;
  int64_t S, SKV;
  int32_t D;
  uint64_t Q, K, V, O, LSE;
  rt_dtype tin, tout;
  float scale;
  int32_t causal;
  int64_t window, prefix;
  uint64_t doc;
  double density;
  uint64_t seed;
  int32_t rblock_m, rblock_n;
} rt_ref_attention_args;

/* Copies the mask fields of m into a (doc_dptr: the device copy of m->doc, or 0). */
void rt_ref_attention_mask(rt_ref_attention_args *a, const kn_mask *m, uint64_t doc_dptr);

/* Y[M][N] = X[M][K] . W^T with W (N x K) in BSR form (kernels/bsr.h: row_ptr[cdiv(N, block)+1],
 * col_idx[nnzb], values[nnzb][block][block] of type tw), f32 accumulation. X row stride ldx and
 * Y row stride ldy in elements. */
typedef struct rt_ref_bsmatmul_args {
  int64_t M, N, K;
  int32_t block;
  uint64_t X, row_ptr, col_idx, values, Y;
  int64_t ldx, ldy;
  rt_dtype tx, tw, ty;
} rt_ref_bsmatmul_args;

/* Each launches one reference kernel on c's stream (asynchronously: rt_ctx_sync to wait). */
rt_status rt_ref_matmul(rt_ctx *c, const rt_refs *r, const rt_ref_matmul_args *a, rt_err *e);
rt_status rt_ref_attention(rt_ctx *c, const rt_refs *r, const rt_ref_attention_args *a, rt_err *e);
rt_status rt_ref_bsmatmul(rt_ctx *c, const rt_refs *r, const rt_ref_bsmatmul_args *a, rt_err *e);

/* Fills n elements of type dt at dptr with values uniform in [lo, hi), a hash of (seed, index)
 * rounded to dt: random device inputs for problems too large to build on the host. Async. */
rt_status rt_ref_fill(rt_ctx *c, const rt_refs *r, uint64_t dptr, int64_t n, rt_dtype dt,
                      uint64_t seed, float lo, float hi, rt_err *e);

/* ---- cuBLASLt (the baseline of `tilec bench matmul`) ------------------------------------- */

/* Opens libcublasLt (.so.13, .so.12, unversioned; TILEC_LIBCUBLASLT names the exact file;
 * same search as NVRTC), once. version (may be NULL) receives "13.1.0 (<path>)".
 * RT_ERR_NO_LIBRARY when absent. */
rt_status rt_cublaslt_load(char *version, size_t cap, rt_err *e);

/* A planned row-major C[M][N] = A[M][K] . B[K][N] (B[N][K] when transb) with f32 accumulation:
 * cuBLASLt's heuristic algorithm for the shape, its workspace allocated in c. */
typedef struct rt_gemm rt_gemm;

/* tab: bf16 or f16 inputs; tc: the same or f32. The caller owns *out (rt_gemm_free). */
rt_status rt_gemm_plan(rt_ctx *c, int64_t M, int64_t N, int64_t K, ir_kind tab, ir_kind tc,
                       bool transb, rt_gemm **out, rt_err *e);

/* Enqueues one product on the plan's context stream (asynchronous). */
rt_status rt_gemm_run(rt_gemm *g, uint64_t A, uint64_t B, uint64_t C, rt_err *e);

void rt_gemm_free(rt_gemm *g); /* frees the plan and its workspace; NULL is a no-op */

#endif
