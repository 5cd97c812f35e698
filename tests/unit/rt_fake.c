/* tests/unit/rt_fake.c — runtime/cuda.c against a fake libcuda (tests/fakecuda/fakecuda.c).
 *
 * The driver is loaded once per process, so each scenario runs in a forked child with its own
 * environment (TILEC_LIBCUDA, FAKECUDA_FAIL): a missing library, a library missing a symbol,
 * cuInit failing (no device; the toolkit's stub), racing first calls, and the working path — device
 * identity and key, contexts, memory, modules and JIT logs, launches with packed parameters, event
 * timing, the reference kernels' launch geometry — with every failure mode the fake can inject.
 * Each child ends with exit(), so LeakSanitizer checks it; the fake also counts its live objects.
 * CMake passes the fake's paths as FAKECUDA_LIB and FAKECUDA_NOLAUNCH_LIB.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/builtin_sources.h"
#include "runtime/rt.h"
#include "tests/unit/check.h"

#ifndef FAKECUDA_LIB
int main(void) { TEST_SKIP("the fake libcuda is not built (no cuda.h)"); }
#else

/* Runs fn in a child process with TILEC_LIBCUDA=lib and FAKECUDA_FAIL=fail (NULL: unset);
 * checks that every CHECK in the child passed. */
static void run(const char *what, const char *lib, const char *fail, void (*fn)(void)) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    check_total = check_failed = 0; /* count this scenario's checks only */
    setenv("TILEC_LIBCUDA", lib, 1);
    if (fail)
      setenv("FAKECUDA_FAIL", fail, 1);
    else
      unsetenv("FAKECUDA_FAIL");
    fn();
    fprintf(stderr, "scenario '%s': %d checks, %d failed\n", what, check_total, check_failed);
    exit(check_failed ? 1 : 0); /* exit, not _exit: LeakSanitizer runs at exit */
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok)
    fprintf(stderr, "scenario '%s' failed (status %d)\n", what, status);
  CHECK(ok);
}

/* ---- the fake's test hooks --------------------------------------------------------------- */

static long (*live)(const char *);
static const unsigned char *(*last_launch)(unsigned *, const char **, int *, size_t *);

static void hooks(void) {
  void *h = dlopen(FAKECUDA_LIB, RTLD_NOW | RTLD_NOLOAD); /* the library rt_cuda_load opened */
  REQUIRE(h != NULL);
  void *a = dlsym(h, "fakecuda_live"), *b = dlsym(h, "fakecuda_last_launch");
  REQUIRE(a && b);
  memcpy(&live, &a, sizeof a);
  memcpy(&last_launch, &b, sizeof b);
  dlclose(h); /* drops the NOLOAD reference only; runtime/ keeps its own */
}

/* ---- scenarios without a working driver -------------------------------------------------- */

static void missing_library(void) {
  rt_err e = {0};
  CHECK_EQ_INT(RT_ERR_NO_DRIVER, rt_cuda_init(&e));
  CHECK(!strncmp(e.msg, "no CUDA driver: libcuda.so.1 not found (", 39));
  CHECK_CONTAINS(e.msg, "/nonexistent/libcuda.so.1");
  CHECK(rt_status_is_env(e.status));
  int n = -1;
  CHECK_EQ_INT(RT_ERR_NO_DRIVER, rt_device_count(&n, &e));
  CHECK_EQ_INT(0, n);
  rt_ctx *c = (rt_ctx *)1;
  CHECK_EQ_INT(RT_ERR_NO_DRIVER, rt_ctx_open(0, 0, &c, &e));
  CHECK(c == NULL);
  CHECK(!strncmp(e.msg, "no CUDA driver: libcuda.so.1 not found (", 39));
  rt_lib_info info;
  rt_lib_query(RT_LIB_CUDA, &info);
  CHECK(!info.loaded);
  CHECK(!strncmp(info.error, "no CUDA driver: libcuda.so.1 not found (", 39));
  /* NVRTC and nvJitLink: absent, and a library without the symbols. */
  setenv("TILEC_LIBNVRTC", "/nonexistent/libnvrtc.so.13", 1);
  setenv("TILEC_LIBNVJITLINK", FAKECUDA_LIB, 1);
  rt_blob b;
  CHECK_EQ_INT(RT_ERR_NO_LIBRARY, rt_nvrtc_compile("", "x.cu", "sm_90", NULL, 0, &b, &e));
  CHECK_CONTAINS(e.msg, "no NVRTC: TILEC_LIBNVRTC cannot be opened (/nonexistent/libnvrtc.so.13");
  CHECK(rt_status_is_env(e.status));
  CHECK_EQ_INT(RT_ERR_NO_LIBRARY, rt_nvjitlink_ptx("x", 1, "sm_90", NULL, 0, &b, &e));
  CHECK_CONTAINS(e.msg, "no usable nvJitLink: ");
  CHECK_CONTAINS(e.msg, "has none of __nvJitLinkCreate_13_0, __nvJitLinkCreate_12_0, "
                        "nvJitLinkCreate");
  rt_refs refs;
  CHECK_EQ_INT(RT_ERR_NO_LIBRARY, rt_refs_load(NULL, "sm_90", &refs, &e));
  CHECK(refs.module == NULL);
  char *text = rt_info_text();
  CHECK_CONTAINS(text, "cuda driver: not available: no CUDA driver: libcuda.so.1 not found (");
  CHECK_CONTAINS(text, "nvrtc: not available: no NVRTC: TILEC_LIBNVRTC cannot be opened");
  CHECK_CONTAINS(text, "\ndevices: none (no CUDA driver: libcuda.so.1 not found (");
  free(text);
}

static void missing_symbol(void) {
  rt_err e = {0};
  CHECK_EQ_INT(RT_ERR_NO_DRIVER, rt_cuda_load(&e));
  CHECK_CONTAINS(e.msg, "has no symbol cuLaunchKernel");
  CHECK_CONTAINS(e.msg, "fakecuda_nolaunch");
  CHECK_EQ_INT(RT_ERR_NO_DRIVER, rt_cuda_init(&e));
}

static void init_no_device(void) {
  rt_err e = {0};
  CHECK_EQ_INT(RT_OK, rt_cuda_load(&e));
  int v = 0;
  CHECK_EQ_INT(RT_OK, rt_driver_version(&v, &e)); /* needs no cuInit */
  CHECK_EQ_INT(13000, v);
  CHECK_EQ_INT(RT_ERR_NO_DEVICE, rt_cuda_init(&e));
  CHECK_EQ_STR("cuInit failed: CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)", e.msg);
  CHECK(rt_status_is_env(e.status));
  rt_device_info d;
  CHECK_EQ_INT(RT_ERR_NO_DEVICE, rt_device_query(0, &d, &e));
  CHECK_CONTAINS(e.msg, "CUDA_ERROR_NO_DEVICE");
  rt_lib_info info;
  rt_lib_query(RT_LIB_CUDA, &info);
  CHECK(info.loaded);
  CHECK_CONTAINS(info.path, "libtilec_fakecuda");
  CHECK_EQ_INT(13, info.version_major);
  CHECK_EQ_INT(0, info.version_minor);
}

static void init_stub(void) {
  rt_err e = {0};
  CHECK_EQ_INT(RT_ERR_NO_DRIVER, rt_cuda_init(&e));
  CHECK_CONTAINS(e.msg, "cuInit failed: CUDA_ERROR_STUB_LIBRARY");
  CHECK_CONTAINS(e.msg, "is the toolkit's stub, not the driver's libcuda.so.1");
}

/* Eight threads race to the first call: the driver is loaded and initialized once. */
static void *first_call(void *arg) {
  rt_device_info *d = arg;
  rt_err e;
  return rt_device_query(0, d, &e) == RT_OK ? d : NULL;
}

static void concurrent_init(void) {
  pthread_t t[8];
  static rt_device_info d[8];
  for (int i = 0; i < 8; i++)
    REQUIRE(pthread_create(&t[i], NULL, first_call, &d[i]) == 0);
  for (int i = 0; i < 8; i++) {
    void *r = NULL;
    pthread_join(t[i], &r);
    CHECK(r == &d[i]);
    CHECK_EQ_STR("Fake GPU|sm_90|132sm|140GiB", d[i].key);
  }
}

/* ---- the working path -------------------------------------------------------------------- */

static void device_identity(void) {
  rt_err e = {0};
  int n = 0;
  CHECK_EQ_INT(RT_OK, rt_device_count(&n, &e));
  CHECK_EQ_INT(1, n);
  rt_device_info d;
  rt_status s = rt_device_query(0, &d, &e);
  CHECK_EQ_STR("", s ? e.msg : "");
  CHECK_EQ_STR("Fake GPU", d.name);
  CHECK_EQ_INT(9, d.cc_major);
  CHECK_EQ_INT(0, d.cc_minor);
  CHECK_EQ_STR("sm_90", d.arch);
  CHECK_EQ_INT(132, d.sm_count);
  CHECK_EQ_INT((uint64_t)143771 << 20, d.total_mem);
  CHECK_EQ_INT(3201000, d.mem_clock_khz);
  CHECK_EQ_INT(6144, d.mem_bus_width);
  CHECK_EQ_INT(232448, d.smem_per_block_optin);
  CHECK_EQ_INT(13000, d.driver_version);
  CHECK_EQ_STR("Fake GPU|sm_90|132sm|140GiB", d.key);
  CHECK_EQ_INT(RT_ERR_NO_DEVICE, rt_device_query(5, &d, &e));
  CHECK_EQ_STR("no CUDA device 5 (this machine has 1)", e.msg);
  CHECK_EQ_INT(RT_ERR_NO_DEVICE, rt_device_query(-1, &d, &e));
  setenv("FAKECUDA_DEVICES", "0", 1);
  CHECK_EQ_INT(RT_ERR_NO_DEVICE, rt_device_query(0, &d, &e));
  CHECK_CONTAINS(e.msg, "no CUDA device: the driver (");
  CHECK_CONTAINS(e.msg, "libtilec_fakecuda.so) reports none");
  unsetenv("FAKECUDA_DEVICES");
}

static void memory(rt_ctx *c) {
  rt_err e = {0};
  uint64_t p = 0;
  CHECK_EQ_INT(RT_OK, rt_mem_alloc(c, 0, &p, &e));
  CHECK_EQ_INT(0, p);
  rt_mem_free(c, 0);
  CHECK_EQ_INT(RT_OK, rt_mem_alloc(c, 1024, &p, &e));
  CHECK(p != 0);
  CHECK_EQ_INT(1, live("mem"));
  unsigned char in[1024], out[1024];
  for (int i = 0; i < 1024; i++)
    in[i] = (unsigned char)(i * 7);
  CHECK_EQ_INT(RT_OK, rt_memcpy_htod(c, p, in, sizeof in, &e));
  CHECK_EQ_INT(RT_OK, rt_memcpy_dtoh(c, out, p, sizeof out, &e));
  CHECK(!memcmp(in, out, sizeof in));
  CHECK_EQ_INT(RT_OK, rt_memset8(c, p, 0xab, 16, &e));
  CHECK_EQ_INT(RT_OK, rt_memcpy_dtoh(c, out, p, 32, &e));
  CHECK(out[0] == 0xab && out[15] == 0xab && out[16] == in[16]);
  rt_mem_free(c, p);
  CHECK_EQ_INT(0, live("mem"));
  CHECK_EQ_INT(0, live("depth")); /* every call left the thread's context stack as it was */

  setenv("FAKECUDA_FAIL", "cuMemAlloc_v2", 1);
  p = 1;
  CHECK_EQ_INT(RT_ERR_OOM, rt_mem_alloc(c, 1 << 20, &p, &e));
  CHECK_EQ_STR("cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory) allocating 1048576 "
               "bytes",
               e.msg);
  CHECK_EQ_INT(RT_ERR_OOM, e.status);
  CHECK_EQ_INT(0, p);
  setenv("FAKECUDA_FAIL", "cuMemcpyDtoH_v2:999", 1);
  CHECK_EQ_INT(RT_ERR_CUDA, rt_memcpy_dtoh(c, out, 0x10, 4, &e));
  CHECK_EQ_STR("cuMemcpyDtoH failed: CUDA_ERROR_UNKNOWN (unknown error)", e.msg);
  setenv("FAKECUDA_FAIL", "cuMemcpyDtoH_v2:12345", 1); /* a code the driver has no name for */
  CHECK_EQ_INT(RT_ERR_CUDA, rt_memcpy_dtoh(c, out, 0x10, 4, &e));
  CHECK_EQ_STR("cuMemcpyDtoH failed: CUDA error 12345 (unknown error)", e.msg);
  unsetenv("FAKECUDA_FAIL");
  CHECK_EQ_INT(0, live("depth"));
}

/* A module with fake_store(u64 p, u32 v) and kernel `packed` with the ABI of a specialized
 * matmul (3 tensors of rank 2). Not NUL-terminated on purpose: rt_module_load must cope. */
static const char ptx[] = ".version 8.0\n.target sm_90\n.address_size 64\n"
                          ".visible .entry fake_store(.param .u64 p, .param .u32 v) { ret; }\n"
                          ".visible .entry packed(.param .u64 A, .param .u32 A_d0, "
                          ".param .u32 A_d1, .param .u64 A_s0, .param .u64 A_s1, .param .u64 B, "
                          ".param .u32 B_d0, .param .u32 B_d1, .param .u64 B_s0, .param .u64 B_s1, "
                          ".param .u64 C, .param .u32 C_d0, .param .u32 C_d1, .param .u64 C_s0, "
                          ".param .u64 C_s1) { ret; }\n"
                          /* as LLVM 19 declares i1, i8, i16, half, bfloat, i64, float, double */
                          ".visible .entry scalars(.param .u8 a, .param .u8 b, .param .u16 c, "
                          ".param .align 2 .b8 d[2], .param .align 2 .b8 e[2], .param .u64 f, "
                          ".param .f32 g, .param .f64 h, .param .u8 i, .param .u64 X, "
                          ".param .u32 X_d0, .param .u64 X_s0) { ret; }\n";

struct store_args {
  rt_ctx *c;
  rt_func *f;
  uint64_t p;
  uint32_t v;
};

static rt_status launch_store(void *user, rt_err *e) {
  struct store_args *a = user;
  void *params[] = {&a->p, &a->v};
  rt_launch_cfg cfg = {{1, 1, 1}, {32, 1, 1}, 0};
  return rt_launch(a->c, a->f, &cfg, params, e);
}

/* A built-in kernel (or, with name NULL, `text`) specialized with `set`. */
static ir_kernel *specialized(const char *name, const char *text, const char *set) {
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; name && s->name; s++)
    if (!strcmp(s->name, name))
      text = s->text;
  ir_kernel *k = NULL, *spec = NULL;
  ir_diag d;
  static ir_config cfg;
  memset(&cfg, 0, sizeof cfg);
  REQUIRE(text && ir_parse(text, strlen(text), "test.tile", &k, &d) == IR_OK);
  REQUIRE(ir_config_parse(&cfg, set, &d) == IR_OK);
  REQUIRE(ir_specialize(k, &cfg, &spec, &d) == IR_OK);
  ir_kernel_free(k);
  return spec;
}

static void modules_and_launches(rt_ctx *c) {
  rt_err e = {0};
  rt_module *m = NULL;
  rt_status s = rt_module_load(c, ptx, sizeof ptx - 1, &m, &e);
  CHECK_EQ_STR("", s ? e.msg : "");
  if (s)
    return;
  CHECK_EQ_INT(1, live("module"));
  CHECK_CONTAINS(rt_module_log(m), "fake JIT: compiled for sm_90");
  rt_func *f = NULL, *g = NULL;
  CHECK_EQ_INT(RT_OK, rt_module_func(m, "fake_store", &f, &e));
  CHECK_EQ_INT(RT_ERR_MODULE, rt_module_func(m, "nope", &g, &e));
  CHECK_EQ_STR("cuModuleGetFunction failed: CUDA_ERROR_NOT_FOUND (named symbol not found): no "
               "kernel 'nope'",
               e.msg);
  CHECK(g == NULL);

  /* A launch runs fake_store on "device" memory. */
  struct store_args a = {c, f, 0, 0x1234abcd};
  CHECK_EQ_INT(RT_OK, rt_mem_alloc(c, 64, &a.p, &e));
  CHECK_EQ_INT(RT_OK, launch_store(&a, &e));
  CHECK_EQ_INT(RT_OK, rt_ctx_sync(c, &e));
  uint32_t got = 0;
  CHECK_EQ_INT(RT_OK, rt_memcpy_dtoh(c, &got, a.p, 4, &e));
  CHECK_EQ_INT(0x1234abcd, got);
  unsigned dims[7];
  const char *name;
  int nparams;
  size_t size;
  last_launch(dims, &name, &nparams, &size);
  CHECK_EQ_STR("fake_store", name);
  CHECK_EQ_INT(2, nparams);
  CHECK(dims[0] == 1 && dims[3] == 32 && dims[6] == 0);

  /* A zero grid launches nothing. */
  long before = live("launches");
  rt_launch_cfg empty = {{0, 1, 1}, {32, 1, 1}, 0};
  CHECK_EQ_INT(RT_OK, rt_launch(c, f, &empty, NULL, &e));
  CHECK_EQ_INT(before, live("launches"));

  /* Launch errors: rejected launches and faults seen at the next synchronization. */
  setenv("FAKECUDA_FAIL", "cuLaunchKernel", 1);
  CHECK_EQ_INT(RT_ERR_LAUNCH, launch_store(&a, &e));
  CHECK_EQ_STR("cuLaunchKernel failed: CUDA_ERROR_LAUNCH_FAILED (unspecified launch failure) "
               "(grid 1,1,1 block 32,1,1, 0 bytes dynamic shared memory)",
               e.msg);
  setenv("FAKECUDA_FAIL", "cuStreamSynchronize", 1);
  CHECK_EQ_INT(RT_ERR_LAUNCH, rt_ctx_sync(c, &e));
  CHECK_EQ_STR("cuStreamSynchronize failed: CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access "
               "was encountered)",
               e.msg);
  unsetenv("FAKECUDA_FAIL");

  /* Dynamic shared memory above 48 KiB needs the attribute. */
  rt_launch_cfg big = {{1, 1, 1}, {32, 1, 1}, 100000};
  void *params[] = {&a.p, &a.v};
  CHECK_EQ_INT(RT_ERR_LAUNCH, rt_launch(c, f, &big, params, &e));
  CHECK_CONTAINS(e.msg, "CUDA_ERROR_INVALID_VALUE");
  CHECK_CONTAINS(e.msg, "100000 bytes dynamic shared memory");
  CHECK_EQ_INT(RT_OK, rt_func_set_dynamic_smem(c, f, 100000, &e));
  CHECK_EQ_INT(RT_OK, rt_launch(c, f, &big, params, &e));
  CHECK_EQ_INT(RT_OK, rt_func_set_dynamic_smem(c, f, 1000, &e)); /* <= 48 KiB: nothing to do */
  rt_func_attrs at;
  CHECK_EQ_INT(RT_OK, rt_func_attrs_get(c, f, &at, &e));
  CHECK_EQ_INT(100000, at.max_dynamic_smem);
  CHECK_EQ_INT(32, at.num_regs);
  CHECK_EQ_INT(90, at.binary_version);
  CHECK_EQ_INT(RT_ERR_LAUNCH, rt_func_set_dynamic_smem(c, f, 300000, &e));
  CHECK_EQ_STR("cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES) failed: "
               "CUDA_ERROR_INVALID_VALUE (invalid argument) for 300000 bytes of dynamic shared "
               "memory",
               e.msg);

  /* Timing: the fake's launches take 1, 3, 2, 1, 3, 2, ... ms. */
  rt_timing t;
  CHECK_EQ_INT(RT_OK, rt_time(c, launch_store, &a, 2, 3, &t, &e));
  CHECK_EQ_INT(3, t.reps);
  CHECK(t.median_ms == 2.0 && t.min_ms == 1.0 && t.max_ms == 3.0 && t.mean_ms == 2.0);
  CHECK_EQ_INT(0, live("event"));
  setenv("FAKECUDA_FAIL", "cuLaunchKernel", 1);
  CHECK_EQ_INT(RT_ERR_LAUNCH, rt_time(c, launch_store, &a, 0, 5, &t, &e));
  unsetenv("FAKECUDA_FAIL");
  CHECK_EQ_INT(0, live("event")); /* destroyed on the failure path too */
  CHECK_EQ_INT(RT_ERR_ARG, rt_time(c, launch_store, &a, 0, 0, &t, &e));

  /* Packed parameters arrive as the kernel's .param list declares them. */
  ir_kernel *k = specialized("matmul", NULL, "BM=64,BN=32");
  rt_argval args[3] = {{.kind = ARG_TENSOR, .dptr = 0x100, .rank = 2, .shape = {100, 33}},
                       {.kind = ARG_TENSOR, .dptr = 0x200, .rank = 2, .shape = {33, 70}},
                       {.kind = ARG_TENSOR, .dptr = 0x300, .rank = 2, .shape = {100, 70}}};
  for (int i = 0; i < 3; i++) {
    args[i].stride[0] = args[i].shape[1];
    args[i].stride[1] = 1;
  }
  static rt_params p;
  rt_func *packed = NULL;
  CHECK_EQ_INT(RT_OK, rt_params_pack(k, args, 3, &p, &e));
  CHECK_EQ_INT(RT_OK, rt_module_func(m, "packed", &packed, &e));
  rt_launch_cfg cfg = {{p.grid[0], p.grid[1], p.grid[2]}, {128, 1, 1}, 0};
  s = rt_launch_params(c, packed, &cfg, &p, &e);
  CHECK_EQ_STR("", s ? e.msg : "");
  const unsigned char *got_params = last_launch(dims, &name, &nparams, &size);
  CHECK_EQ_STR("packed", name);
  CHECK_EQ_INT(p.count, nparams);
  CHECK_EQ_INT(p.size, size);
  CHECK(!memcmp(got_params, p.buf, p.size));
  CHECK_EQ_INT(2 * 3, dims[0]); /* cdiv(100, 64) * cdiv(70, 32) */
  ir_kernel_free(k);

  /* Every scalar type, against the .param list LLVM emits for it. */
  static const char scalars[] = "kernel scalars\n"
                                "args (a: i1, b: i8, c: i16, d: f16, e: bf16, f: i64, g: f32, "
                                "h: f64, i: f8e4m3, %X: tensor<f32>[N])\n"
                                "grid (N)\n{\n}\n";
  k = specialized(NULL, scalars, "");
  rt_argval sv[10] = {{.kind = ARG_SCALAR, .scalar = {.i = 1}},
                      {.kind = ARG_SCALAR, .scalar = {.i = -2}},
                      {.kind = ARG_SCALAR, .scalar = {.i = 300}},
                      {.kind = ARG_SCALAR, .scalar = {.isf = true, .f = 0.5}},
                      {.kind = ARG_SCALAR, .scalar = {.isf = true, .f = -3.0}},
                      {.kind = ARG_SCALAR, .scalar = {.i = INT64_C(1) << 50}},
                      {.kind = ARG_SCALAR, .scalar = {.isf = true, .f = 2.5}},
                      {.kind = ARG_SCALAR, .scalar = {.isf = true, .f = 1e300}},
                      {.kind = ARG_SCALAR, .scalar = {.isf = true, .f = 2.0}},
                      {.kind = ARG_TENSOR, .dptr = 0x400, .rank = 1, .shape = {9}, .stride = {1}}};
  CHECK_EQ_INT(RT_OK, rt_params_pack(k, sv, 10, &p, &e));
  CHECK_EQ_INT(RT_OK, rt_module_func(m, "scalars", &packed, &e));
  rt_launch_cfg one = {{p.grid[0], p.grid[1], p.grid[2]}, {32, 1, 1}, 0};
  s = rt_launch_params(c, packed, &one, &p, &e);
  CHECK_EQ_STR("", s ? e.msg : "");
  got_params = last_launch(dims, &name, &nparams, &size);
  CHECK_EQ_STR("scalars", name);
  CHECK_EQ_INT(12, nparams);
  CHECK_EQ_INT(p.size, size);
  CHECK(!memcmp(got_params, p.buf, p.size));
  CHECK_EQ_INT(9, dims[0]);
  ir_kernel_free(k);

  rt_mem_free(c, a.p);
  rt_module_unload(m);
  CHECK_EQ_INT(0, live("module"));

  /* A JIT error comes with the driver's log. */
  static const char bad[] = ".version 8.0\n.target sm_90\nFAKECUDA_BAD_PTX\n";
  CHECK_EQ_INT(RT_ERR_MODULE, rt_module_load(c, bad, sizeof bad, &m, &e));
  CHECK(m == NULL);
  CHECK_EQ_STR("cuModuleLoadDataEx failed: CUDA_ERROR_INVALID_PTX (a PTX JIT compilation failed): "
               "ptxas application ptx input, line 3; error   : fake syntax error; ptxas fatal   : "
               "Ptx assembly aborted due to errors",
               e.msg);
  CHECK_EQ_INT(RT_ERR_ARG, rt_module_load(c, bad, 0, &m, &e));
  CHECK_EQ_INT(0, live("module"));
  CHECK_EQ_INT(0, live("depth"));
}

/* The reference kernels: compiled by the real NVRTC, loaded by the fake, launched with the
 * geometry their kernels expect. */
static void references(rt_ctx *c) {
  rt_err e = {0};
  if (rt_nvrtc_load(&e)) {
    fprintf(stderr, "rt_fake: reference kernels not tried: %s\n", e.msg);
    return;
  }
  rt_refs r;
  rt_status s = rt_refs_load(c, "sm_90", &r, &e);
  CHECK_EQ_STR("", s ? e.msg : "");
  if (s)
    return;
  unsigned dims[7];
  const char *name;
  int nparams;
  size_t size;
  rt_ref_matmul_args mm = {.M = 100,
                           .N = 70,
                           .K = 33,
                           .A = 1,
                           .B = 2,
                           .C = 3,
                           .sa_m = 33,
                           .sa_k = 1,
                           .sb_k = 70,
                           .sb_n = 1,
                           .sc_m = 70,
                           .sc_n = 1,
                           .ta = RT_DT_BF16,
                           .tb = RT_DT_BF16,
                           .tc = RT_DT_F32};
  CHECK_EQ_INT(RT_OK, rt_ref_matmul(c, &r, &mm, &e));
  last_launch(dims, &name, &nparams, &size);
  CHECK_EQ_STR("tilec_ref_matmul", name);
  CHECK(dims[0] == 5 && dims[1] == 7 && dims[3] == 16 && dims[4] == 16);
  mm.M = 16 * 65536;
  CHECK_EQ_INT(RT_ERR_ARG, rt_ref_matmul(c, &r, &mm, &e));

  rt_ref_attention_args at = {.B = 2,
                              .H = 8,
                              .HKV = 2,
                              .S = 300,
                              .SKV = 300,
                              .D = 128,
                              .tin = RT_DT_F16,
                              .tout = RT_DT_F16,
                              .scale = 0.1f};
  CHECK_EQ_INT(RT_OK, rt_ref_attention(c, &r, &at, &e));
  last_launch(dims, &name, &nparams, &size);
  CHECK_EQ_STR("tilec_ref_attention", name);
  CHECK(dims[0] == 300 && dims[1] == 16 && dims[3] == 128 && dims[6] == (128 + 256) * 4);
  at.HKV = 3;
  CHECK_EQ_INT(RT_ERR_ARG, rt_ref_attention(c, &r, &at, &e));
  CHECK_CONTAINS(e.msg, "H % HKV == 0");

  rt_ref_bsmatmul_args bs = {.M = 40,
                             .N = 64,
                             .K = 96,
                             .block = 16,
                             .ldx = 96,
                             .ldy = 64,
                             .tx = RT_DT_BF16,
                             .tw = RT_DT_BF16,
                             .ty = RT_DT_BF16};
  CHECK_EQ_INT(RT_OK, rt_ref_bsmatmul(c, &r, &bs, &e));
  last_launch(dims, &name, &nparams, &size);
  CHECK_EQ_STR("tilec_ref_bsmatmul", name);
  CHECK(dims[0] == 4 && dims[1] == 3);
  rt_refs_unload(&r);
  rt_refs_unload(&r); /* twice is harmless */
  CHECK_EQ_INT(0, live("module"));
}

static void contexts(void) {
  rt_err e = {0};
  rt_ctx *c = NULL;
  /* Adopting needs a current context; there is none yet. */
  CHECK_EQ_INT(RT_ERR_ARG, rt_ctx_adopt(NULL, NULL, &c, &e));
  CHECK_EQ_STR("no current CUDA context to adopt on this thread", e.msg);

  rt_status s = rt_ctx_open(0, RT_CTX_OWN_STREAM, &c, &e);
  CHECK_EQ_STR("", s ? e.msg : "");
  CHECK_EQ_INT(1, live("stream"));
  CHECK_EQ_INT(1, live("primary"));
  CHECK(rt_ctx_stream(c) != NULL);
  CHECK_EQ_INT(0, rt_ctx_ordinal(c));
  CHECK_EQ_INT(0, live("depth"));
  rt_ctx_close(c);
  CHECK_EQ_INT(0, live("stream"));
  CHECK_EQ_INT(0, live("primary"));
  CHECK_EQ_INT(RT_ERR_NO_DEVICE, rt_ctx_open(1, 0, &c, &e));
  CHECK(c == NULL);

  /* The working context: memory, modules, launches, references. */
  REQUIRE(rt_ctx_open(0, 0, &c, &e) == RT_OK);
  CHECK(rt_ctx_stream(c) == NULL);
  memory(c);
  modules_and_launches(c);
  references(c);

  /* An engine's own context and stream, adopted: closing releases nothing of theirs. */
  void *drv = dlopen(FAKECUDA_LIB, RTLD_NOW | RTLD_NOLOAD);
  REQUIRE(drv != NULL);
  void *sym = dlsym(drv, "cuCtxPushCurrent_v2"), *pop = dlsym(drv, "cuCtxPopCurrent_v2");
  int (*push_fn)(void *);
  int (*pop_fn)(void **);
  memcpy(&push_fn, &sym, sizeof sym);
  memcpy(&pop_fn, &pop, sizeof pop);
  void *primary = NULL;
  void *retain = dlsym(drv, "cuDevicePrimaryCtxRetain");
  int (*retain_fn)(void **, int);
  memcpy(&retain_fn, &retain, sizeof retain);
  REQUIRE(retain_fn(&primary, 0) == 0);
  REQUIRE(push_fn(primary) == 0);
  rt_ctx *adopted = NULL;
  s = rt_ctx_adopt(NULL, NULL, &adopted, &e);
  CHECK_EQ_STR("", s ? e.msg : "");
  CHECK_EQ_INT(0, rt_ctx_ordinal(adopted));
  uint64_t p = 0;
  CHECK_EQ_INT(RT_OK, rt_mem_alloc(adopted, 8, &p, &e));
  rt_mem_free(adopted, p);
  rt_ctx_close(adopted);
  CHECK_EQ_INT(2, live("primary")); /* ours and the "engine's" */
  CHECK_EQ_INT(1, live("depth"));   /* the engine's context is still current */
  void *popped = NULL;
  pop_fn(&popped);
  CHECK(popped == primary);
  void *release = dlsym(drv, "cuDevicePrimaryCtxRelease_v2");
  int (*release_fn)(int);
  memcpy(&release_fn, &release, sizeof release);
  release_fn(0);
  dlclose(drv);

  rt_ctx_close(c);
  rt_ctx_close(NULL);
  CHECK_EQ_INT(0, live("primary"));
  CHECK_EQ_INT(0, live("mem"));
  CHECK_EQ_INT(0, live("module"));
  CHECK_EQ_INT(0, live("stream"));
  CHECK_EQ_INT(0, live("event"));
  CHECK_EQ_INT(0, live("depth"));
}

static void working(void) {
  rt_err e = {0};
  rt_status s = rt_cuda_init(&e);
  CHECK_EQ_STR("", s ? e.msg : "");
  REQUIRE(s == RT_OK);
  hooks();
  rt_lib_info info;
  rt_lib_query(RT_LIB_CUDA, &info);
  CHECK(info.loaded);
  CHECK_CONTAINS(info.path, "libtilec_fakecuda.so");
  device_identity();
  contexts();
  char *text = rt_info_text();
  CHECK_CONTAINS(text, "cuda driver: 13.0 (");
  CHECK_CONTAINS(text, "\ndevices: 1\n  0: Fake GPU, sm_90, 132 SMs, 140.4 GiB, 4.92 TB/s peak "
                       "(6144-bit, 3201 MHz), 227 KiB shared memory per block; key \"Fake "
                       "GPU|sm_90|132sm|140GiB\"\n");
  free(text);
}

int main(void) {
  run("missing library", "/nonexistent/libcuda.so.1", NULL, missing_library);
  run("missing symbol", FAKECUDA_NOLAUNCH_LIB, NULL, missing_symbol);
  run("cuInit: no device", FAKECUDA_LIB, "cuInit", init_no_device);
  run("cuInit: stub library", FAKECUDA_LIB, "cuInit:34", init_stub);
  run("concurrent first calls", FAKECUDA_LIB, NULL, concurrent_init);
  run("working driver", FAKECUDA_LIB, NULL, working);
  return TEST_MAIN_END();
}

#endif
