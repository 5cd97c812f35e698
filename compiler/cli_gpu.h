/* compiler/cli_gpu.h — `tilec run --gpu`: compile a kernel, run it on device 0, time it.
 *
 * Part of the tilec command line (not of the library): it glues the code generator
 * (codegen/), the runtime (runtime/) and the host-side problems (kernels/problem.h).
 */
#ifndef TILEC_COMPILER_CLI_GPU_H
#define TILEC_COMPILER_CLI_GPU_H

#include <stddef.h>

#include "compiler/gpu.h"
#include "kernels/problem.h"

typedef struct cli_gpu_result {
  char device[256]; /* "NVIDIA H200" */
  char key[192];    /* the tuning-DB device key */
  char arch[16];    /* the target the kernel was compiled for */
  int threads, smem_bytes, regs, local_bytes;
  bool aligned;      /* the aligned variant (CG_ALIGNED): the problem's tensors keep its promise */
  double compile_ms; /* GPU IR -> PTX -> cubin */
  double median_ms, min_ms, max_ms;
  int reps;
} cli_gpu_result;

/* Compiles g for device 0 (arch NULL: the device's own, sm_90a on compute capability 9.0; the
 * aligned variant when the problem's tensors keep its promise, rt_args_aligned), copies p's inputs
 * to the device, poisons its outputs (all bits set: NaN for floats), launches once, copies the
 * outputs back into p's buffers (so kn_problem_check judges the GPU result), then times `reps`
 * launches with CUDA events after a warm-up (median, min, max). Returns 0, 2 for an environment
 * problem (no driver, no device, no nvJitLink) or 1 for any other failure, with a message in err.
 */
int cli_gpu_run(const cc_gpu *g, kn_problem *p, const char *arch, int reps, cli_gpu_result *r,
                char *err, size_t errcap);

/* Host cost of one launch, in microseconds of wall time per launch issued (launches are
 * asynchronous: this is the time the caller's thread spends, not the kernel's). */
typedef struct cli_launch_cost {
  int launches;
  double raw_us;   /* cuLaunchKernel with a parameter array built once */
  double tilec_us; /* packing the arguments from tensor descriptors, then the launch */
} cli_launch_cost;

/* `tilec bench launch`: compiles and loads g like cli_gpu_run, then issues n launches each way
 * (twice; the second round is reported). Same return codes as cli_gpu_run. */
int cli_gpu_bench_launch(const cc_gpu *g, kn_problem *p, const char *arch, int n,
                         cli_launch_cost *c, char *err, size_t errcap);

#endif
