/* compiler/gpusim.h — the GPU-IR simulator: layout-annotated GPU IR run on the CPU, one CTA per
 * program, thread by thread.
 *
 * It executes what the LLVM lowering will emit (docs/codegen.md, "Algorithms"): every tile value
 * lives in the registers its layout gives each of the CTA's 32 * warps threads; broadcasts and
 * transposes read registers of the same thread, layout conversions go through a simulated
 * shared memory, reductions use butterfly shuffles and shared memory, and `dot` issues
 * mma.sync.m16n8k16 instructions whose fragments are taken from the PTX ISA tables. A layout the
 * algorithms cannot run on (a layout-pass bug) is an error naming the op, thread and element,
 * so layout, shared-memory and masking bugs show up in CI without a GPU. Its outputs equal the
 * interpreter's up to the accumulation order of sums (rounded to f32 per combine and per mma).
 * Pipeline position: specialize → cc_gpu_build → cc_sim_run (tests) / lowering (codegen/).
 */
#ifndef TILEC_COMPILER_GPUSIM_H
#define TILEC_COMPILER_GPUSIM_H

#include <stdint.h>

#include "compiler/gpu.h"
#include "ir/ir.h"

/* What a run did, summed over the CTAs that ran (smem_bytes: the largest single use). */
typedef struct cc_sim_stats {
  int64_t programs;   /* CTAs run to completion */
  int64_t smem_bytes; /* most shared memory one CTA needed at once: one convert_layout, reshape
                         or cross-warp reduction buffer (they never overlap in time) */
  int64_t shuffles;   /* shfl.sync.bfly instructions, one per warp per register per step */
  int64_t mmas;       /* mma.sync.m16n8k16 instructions, one per warp */
  int64_t barriers;   /* bar.sync instructions, one per CTA each */
  int64_t reduce_fallbacks; /* reductions that went through the shared-memory fallback because
                               their layouts defeat the register algorithm, per CTA */
} cc_sim_stats;

typedef struct cc_sim_opts {
  int nthreads;        /* host threads running CTAs in parallel; 0 = 1 */
  cc_sim_stats *stats; /* when non-NULL, receives the statistics (also after an error) */
  bool strict;         /* a reduction the register algorithm (shuffles, cross-warp partials)
                          cannot do is an error instead of the lowering's shared-memory fallback;
                          the layouts cc_gpu_build gives power-of-two tiles never need it */
} cc_sim_opts;

/* Runs the GPU IR g (from cc_gpu_build) over its whole grid with the launch arguments of
 * ir_interp_run (ir/ir.h), writing the output tensors in place. o may be NULL. Errors: the
 * interpreter's runtime errors (out-of-bounds pointers, division by zero, bad arguments) as
 * IR_ERR_RUNTIME, and layouts the algorithms cannot run on (a tile operand in another layout
 * than an elementwise result, an element a thread needs but does not hold, a DOTOP or MMA layout
 * that disagrees with the mma fragments, an incomplete reduction, replicated registers that
 * disagree) as IR_ERR_VERIFY, located at the op. With several threads the error of the lowest
 * failing program is reported. */
ir_status cc_sim_run(const cc_gpu *g, ir_argval *args, int nargs, const cc_sim_opts *o, ir_diag *d);

#endif
