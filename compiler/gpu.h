/* compiler/gpu.h — the GPU IR: a specialized kernel whose every tile value has a layout.
 *
 * cc_gpu_build assigns a distributed layout (compiler/layout.h) to each tile value by a small
 * rule set (docs/codegen.md) and inserts `convert_layout` ops wherever an operand must move to
 * the layout its user needs. The kernel is mutated in place: it stays a valid tile-IR kernel
 * (convert_layout is the identity on values), so the interpreter, the GPU-IR simulator and the
 * LLVM lowering all run the same ops. Pipeline position: specialize → cc_gpu_build → lower.
 */
#ifndef TILEC_COMPILER_GPU_H
#define TILEC_COMPILER_GPU_H

#include "compiler/layout.h"
#include "ir/ir.h"

typedef struct cc_gpu {
  ir_kernel *k;          /* the specialized kernel (mutated; owned by the caller) */
  const ly_layout **lay; /* by value id; NULL for scalars (owned by this struct) */
  int nlay;              /* capacity of lay (>= k->nvalues) */
  int warps;             /* from the tunable WARPS, else 4 */
  int nconverts;         /* convert_layout ops inserted */
  int nremat;            /* constant tiles (zeros, full, arange) re-created in another layout */
} cc_gpu;

/* Assigns layouts and inserts conversions. k must be specialized and verified; it is verified
 * again afterwards. On success the caller owns g's contents (cc_gpu_free). */
ir_status cc_gpu_build(ir_kernel *k, cc_gpu *g, ir_diag *d);

/* The kernel's text with each tile result's layout as a trailing comment (`--emit gpu`).
 * Caller frees the string. */
char *cc_gpu_print(const cc_gpu *g);

/* The layout of a tile value (NULL for scalars). */
const ly_layout *cc_layout(const cc_gpu *g, const ir_value *v);

void cc_gpu_free(cc_gpu *g); /* frees the layout table, not the kernel; NULL-safe */

#endif
