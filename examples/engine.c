/* examples/engine.c — a toy inference engine on tilec's public API.
 *
 * It does what an engine does: owns its CUDA context and stream, creates a tilec context inside
 * them (TILEC_CONTEXT_ADOPT), gets matmul and attention kernels for a few shapes with one call
 * each, and launches them on its own stream, timing the lookups (miss, then hit) and the
 * kernels (CUDA events). Only tilec/tilec.h is included; the engine's own CUDA calls go
 * through dlopen("libcuda.so.1") (TILEC_LIBCUDA names another file, e.g. the fake driver of
 * tests/fakecuda, so this runs on a CPU-only machine, where the times mean nothing).
 *
 *   tilec_engine [--db PATH] [--writable] [--reps N] [--nowait]
 * The database is opened read-only unless --writable: lookups then never change it. --nowait
 * asks as a serving loop would (TILEC_KERNEL_NOWAIT): a miss answers at once and the loop keeps
 * running its fallback, asking again each step (a 1 ms sleep here), until the kernel is ready.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tilec/tilec.h>

/* ---- the engine's own CUDA (a few driver calls, no cuda.h needed) ------------------------- */

static struct {
  int (*Init)(unsigned);
  int (*DevicePrimaryCtxRetain)(void **, int);
  int (*DevicePrimaryCtxRelease)(int);
  int (*CtxPushCurrent)(void *);
  int (*CtxPopCurrent)(void **);
  int (*StreamCreate)(void **, unsigned);
  int (*StreamDestroy)(void *);
  int (*StreamSynchronize)(void *);
  int (*MemAlloc)(uint64_t *, size_t);
  int (*MemFree)(uint64_t);
  int (*MemsetD8)(uint64_t, unsigned char, size_t);
  int (*EventCreate)(void **, unsigned);
  int (*EventRecord)(void *, void *);
  int (*EventSynchronize)(void *);
  int (*EventElapsedTime)(float *, void *, void *);
  int (*EventDestroy)(void *);
} cu;

static int load_cuda(void) {
  const char *path = getenv("TILEC_LIBCUDA") ? getenv("TILEC_LIBCUDA") : "libcuda.so.1";
  void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
  if (!h) {
    fprintf(stderr, "engine: no CUDA driver: %s\n", dlerror());
    return -1;
  }
  struct {
    const char *name, *alt;
    void *slot;
  } syms[] = {
      {"cuInit", NULL, &cu.Init},
      {"cuDevicePrimaryCtxRetain", NULL, &cu.DevicePrimaryCtxRetain},
      {"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease", &cu.DevicePrimaryCtxRelease},
      {"cuCtxPushCurrent_v2", NULL, &cu.CtxPushCurrent},
      {"cuCtxPopCurrent_v2", NULL, &cu.CtxPopCurrent},
      {"cuStreamCreate", NULL, &cu.StreamCreate},
      {"cuStreamDestroy_v2", NULL, &cu.StreamDestroy},
      {"cuStreamSynchronize", NULL, &cu.StreamSynchronize},
      {"cuMemAlloc_v2", NULL, &cu.MemAlloc},
      {"cuMemFree_v2", NULL, &cu.MemFree},
      {"cuMemsetD8_v2", NULL, &cu.MemsetD8},
      {"cuEventCreate", NULL, &cu.EventCreate},
      {"cuEventRecord", NULL, &cu.EventRecord},
      {"cuEventSynchronize", NULL, &cu.EventSynchronize},
      {"cuEventElapsedTime_v2", "cuEventElapsedTime", &cu.EventElapsedTime},
      {"cuEventDestroy_v2", NULL, &cu.EventDestroy}};
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    void *f = dlsym(h, syms[i].name);
    if (!f && syms[i].alt)
      f = dlsym(h, syms[i].alt);
    if (!f) {
      fprintf(stderr, "engine: %s lacks %s\n", path, syms[i].name);
      return -1;
    }
    memcpy(syms[i].slot, &f, sizeof f);
  }
  return 0;
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* ---- one workload ---------------------------------------------------------------------------- */

typedef struct work {
  const char *kernel, *shape, *dtype;
  int rank[6]; /* tensors' ranks, 0 for a scalar (attention's scale) */
  int64_t dims[6][4];
  int nargs;
  double flops;
} work;

static int run(tilec_context *ctx, void *stream, const work *w, int reps, bool nowait) {
  tilec_kernel_request r;
  tilec_kernel_request_init(&r);
  r.kernel = w->kernel;
  r.shape = w->shape;
  r.dtype = w->dtype;
  /* every tensor is a whole cuMemAlloc buffer (256-byte aligned), contiguous, with a last dim
   * of a multiple of 8 elements: the aligned variant's promise holds, so ask for it */
  r.flags = TILEC_KERNEL_ALIGNED | (nowait ? TILEC_KERNEL_NOWAIT : 0);
  tilec_kernel *k = NULL, *again = NULL;
  double t0 = now_us();
  tilec_status s = tilec_kernel_get(ctx, &r, &k);
  double first = now_us() - t0;
  int steps = 0; /* serving steps run on the engine's fallback while tilec's kernel was busy */
  for (; s == TILEC_ERR_BUSY; steps++) {
    struct timespec ms1 = {0, 1000000};
    nanosleep(&ms1, NULL);
    s = tilec_kernel_get(ctx, &r, &k);
  }
  double t1 = now_us();
  if (s) {
    fprintf(stderr, "engine: %s %s: %s: %s\n", w->kernel, w->shape, tilec_status_name(s),
            tilec_errmsg(ctx));
    return -1;
  }
  tilec_kernel_get(ctx, &r, &again); /* the hot path: a hit */
  double t2 = now_us();
  tilec_kernel_release(again);
  tilec_kernel_info ki = {.size = sizeof ki};
  tilec_kernel_info_get(k, &ki);
  static const char *const origin[] = {"db",       "db+compile", "heuristic",
                                       "explicit", "tuned",      "nearest"};

  tilec_arg args[6];
  uint64_t bufs[6] = {0};
  int rc = 0;
  for (int i = 0; i < w->nargs; i++) {
    if (!w->rank[i]) {
      args[i] = tilec_arg_float(0.125);
      continue;
    }
    size_t n = 1;
    for (int d = 0; d < w->rank[i]; d++)
      n *= (size_t)w->dims[i][d];
    size_t bytes = n * 4; /* f32 is the widest element of these kernels */
    if (cu.MemAlloc(&bufs[i], bytes) || cu.MemsetD8(bufs[i], 0, bytes)) {
      fprintf(stderr, "engine: cannot allocate %zu bytes\n", bytes);
      rc = -1;
      goto done;
    }
    args[i] = tilec_arg_tensor(bufs[i], w->rank[i], w->dims[i]);
  }
  void *ev[2] = {NULL, NULL};
  cu.EventCreate(&ev[0], 0);
  cu.EventCreate(&ev[1], 0);
  double h0 = now_us();
  cu.EventRecord(ev[0], stream);
  for (int i = 0; i < reps && !s; i++)
    s = tilec_launch(ctx, k, args, w->nargs, stream);
  cu.EventRecord(ev[1], stream);
  double h1 = now_us();
  cu.EventSynchronize(ev[1]);
  float ms = 0;
  cu.EventElapsedTime(&ms, ev[0], ev[1]);
  cu.EventDestroy(ev[0]);
  cu.EventDestroy(ev[1]);
  if (s) {
    fprintf(stderr, "engine: launch %s: %s\n", w->kernel, tilec_errmsg(ctx));
    rc = -1;
    goto done;
  }
  double per = ms / reps;
  if (nowait)
    printf("%-10s %-28s first answer %.1f us, ready after %d fallback steps\n", w->kernel, w->shape,
           first, steps);
  printf("%-10s %-28s %-10s miss %8.1f ms  hit %6.2f us  launch %5.2f us  kernel %8.4f ms  "
         "%7.1f TFLOP/s  [%s]\n",
         w->kernel, w->shape,
         (unsigned)ki.origin < sizeof origin / sizeof *origin ? origin[ki.origin] : "?",
         (t1 - t0) / 1e3, t2 - t1, (h1 - h0) / reps, per,
         per > 0 ? w->flops / (per * 1e-3) / 1e12 : 0.0, ki.config);
done:
  for (int i = 0; i < w->nargs; i++)
    if (bufs[i])
      cu.MemFree(bufs[i]);
  tilec_kernel_release(k);
  return rc;
}

int main(int argc, char **argv) {
  const char *db = NULL;
  int reps = 20;
  bool nowait = false;
  unsigned flags = TILEC_CONTEXT_ADOPT | TILEC_CONTEXT_READONLY;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--db") && i + 1 < argc)
      db = argv[++i];
    else if (!strcmp(argv[i], "--writable"))
      flags &= ~(unsigned)TILEC_CONTEXT_READONLY;
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc && atoi(argv[i + 1]) > 0)
      reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--nowait"))
      nowait = true;
    else {
      fprintf(stderr, "usage: %s [--db PATH] [--writable] [--reps N] [--nowait]\n", argv[0]);
      return 1;
    }
  }
  if (load_cuda())
    return 2;
  void *cuctx = NULL, *stream = NULL;
  if (cu.Init(0) || cu.DevicePrimaryCtxRetain(&cuctx, 0) || cu.CtxPushCurrent(cuctx) ||
      cu.StreamCreate(&stream, 1 /* non-blocking */)) {
    fprintf(stderr, "engine: cannot set up CUDA on device 0\n");
    return 2;
  }
  tilec_context_opts o;
  tilec_context_opts_init(&o);
  o.flags = flags;
  o.cu_stream = stream; /* launches go here unless a call names another stream */
  o.db_path = db;
  tilec_context *ctx = NULL;
  if (tilec_context_create(&o, &ctx)) {
    fprintf(stderr, "engine: %s\n", tilec_errmsg(NULL));
    return 2;
  }
  tilec_context_info ci = {.size = sizeof ci};
  tilec_context_info_get(ctx, &ci);
  printf("tilec %s on %s (%s), database %s%s\n", tilec_version(), ci.device, ci.arch,
         *ci.db_path ? ci.db_path : "(none)", ci.readonly ? " (read-only)" : "");

  const work works[] = {
      {"matmul",
       "M=1024,N=1024,K=1024",
       "bf16",
       {2, 2, 2},
       {{1024, 1024}, {1024, 1024}, {1024, 1024}},
       3,
       2.0 * 1024 * 1024 * 1024},
      {"matmul",
       "M=16,N=4096,K=4096",
       "bf16",
       {2, 2, 2},
       {{16, 4096}, {4096, 4096}, {16, 4096}},
       3,
       2.0 * 16 * 4096 * 4096},
      {"matmul",
       "M=2048,N=2048,K=512",
       "f16",
       {2, 2, 2},
       {{2048, 512}, {512, 2048}, {2048, 2048}},
       3,
       2.0 * 2048 * 2048 * 512},
      {"attention",
       "B=1,H=8,S=1024,D=64",
       NULL,
       {4, 4, 4, 4, 3, 0},
       {{1, 8, 1024, 64}, {1, 8, 1024, 64}, {1, 8, 1024, 64}, {1, 8, 1024, 64}, {1, 8, 1024}},
       6,
       4.0 * 8 * 1024 * 1024 * 64},
      {"attention",
       "B=2,H=16,S=512,D=128",
       NULL,
       {4, 4, 4, 4, 3, 0},
       {{2, 16, 512, 128}, {2, 16, 512, 128}, {2, 16, 512, 128}, {2, 16, 512, 128}, {2, 16, 512}},
       6,
       4.0 * 2 * 16 * 512 * 512 * 128},
  };
  int failed = 0;
  for (size_t i = 0; i < sizeof works / sizeof works[0]; i++)
    failed |= run(ctx, stream, &works[i], reps, nowait) != 0;
  tilec_context_info_get(ctx, &ci);
  printf("lookups: %llu hits, %llu misses (%llu compiled, %llu loaded from the database)\n",
         (unsigned long long)ci.hits, (unsigned long long)ci.misses,
         (unsigned long long)ci.compiles, (unsigned long long)ci.db_loads);
  tilec_context_destroy(ctx);
  cu.StreamSynchronize(stream);
  cu.StreamDestroy(stream);
  void *popped;
  cu.CtxPopCurrent(&popped);
  cu.DevicePrimaryCtxRelease(0);
  return failed ? 1 : 0;
}
