/* autotune/space.h — the search space of one kernel for one problem on one device.
 *
 * A space is the product of the domains of the kernel's tunables that the caller did not fix
 * (--set pins a tunable; the problem fixes const parameters and dtypes). Sparsity-layout choices
 * and launch options are tunables of the kernels (bsattention's BN is its KV block granularity,
 * WARPS the CTA size), so they join the product like any other. Every point is kept, in
 * lexicographic order of the domains as written (the first tunable varies slowest); points that
 * violate a kernel constraint or an analytic check (model.h: threads, estimated shared memory per
 * block, mma.sync shapes) are marked pruned with the reason. The model then gives every live point
 * a prior time. Pipeline: at_space_build → at_search_run (search.h) → the lead's compile/measure.
 */
#ifndef TILEC_AUTOTUNE_SPACE_H
#define TILEC_AUTOTUNE_SPACE_H

#include <stdbool.h>
#include <stdint.h>

#include "autotune/at.h"
#include "ir/ir.h"
#include "kernels/problem.h"

enum {
  AT_MAX_TUN = 16,
  AT_MAX_POINTS = 1 << 17 /* about 70 MB of candidates; pin tunables for larger spaces */
};

/* What the analytic checks and the model need to know of a GPU. */
typedef struct at_device {
  char arch[16]; /* "sm_90a" */
  int sm_count, smem_per_block, smem_per_sm, regs_per_sm, max_threads_per_sm;
  double peak_tflops; /* dense bf16/f16 tensor-core peak for mma.sync */
  double mem_gbs;     /* DRAM bandwidth */
} at_device;

/* Defaults for an arch when no GPU is present: sm_80 (A100 SXM), sm_86 (RTX 3090), sm_89 (L40S),
 * sm_90 and sm_90a (H200). The numbers and their sources are in docs/tuning-search.md; peak_tflops
 * is what mma.sync reaches, below the wgmma peak on sm_90. Errors: AT_ERR_ARG for an unknown arch
 * (the message lists the known ones). */
at_status at_device_for_arch(const char *arch, at_device *out, at_err *e);

/* One point of the space. */
typedef struct at_cand {
  int64_t v[AT_MAX_TUN]; /* tunable values, in the space's order */
  char config[256];      /* canonical text "BM=128,BN=64,BK=32,WARPS=4,STAGES=3,GROUP_M=8" */
  bool pruned;
  char why[160];   /* pruned: the violated constraint as written, or the analytic check */
  double prior_ms; /* the model's estimate (NaN when it has none; INFINITY: cannot fit an SM) */
} at_cand;

typedef struct at_space {
  int ntun;
  char names[AT_MAX_TUN][IR_MAX_NAME + 1]; /* tunables not fixed by the caller, kernel order */
  int n;
  at_cand *c; /* every point of the product, pruned ones included */
  int nlive;  /* points not pruned */
  int ndomain[AT_MAX_TUN];
  int64_t domain[AT_MAX_TUN][IR_MAX_DOMAIN]; /* the domains, as written in the kernel */
  char model[16];                            /* the model used: at_model_kind_name */
} at_space;

/* Builds the space of k (the parsed, unspecialized kernel) for the problem. fixed: the items the
 * problem fixes (dtype, const params) and any tunable the user pinned with --set; may be NULL.
 * shape: the problem's --shape keys, for the model (may be NULL: dims then count as 1024).
 * Enumerates the product of the free tunables' domains, checks the constraints (with the fixed and
 * default values of everything else) and the analytic rules, and runs the model on live points.
 * On success the caller owns out (at_space_free); on failure out is empty. Errors: AT_ERR_ARG (a
 * NULL argument, a fixed item that names nothing in k, a pinned value outside its domain, more
 * than AT_MAX_TUN free tunables, more than AT_MAX_POINTS points), AT_ERR_OOM. */
at_status at_space_build(const ir_kernel *k, const ir_config *fixed, const kn_shape *shape,
                         const at_device *dev, at_space *out, at_err *e);

/* The full config of candidate i: fixed (when not NULL) followed by its tunable values, ready
 * for ir_specialize. i must be in [0, s->n). */
void at_space_config(const at_space *s, int i, const ir_config *fixed, ir_config *out);

/* The index of the candidate whose canonical text is config, or -1. Items may come in any order
 * and with spaces around them ("WARPS=4, BM=128, ..."); every tunable of the space must be given
 * once and nothing else. */
int at_space_find(const at_space *s, const char *config);

void at_space_free(at_space *s); /* frees the candidates and clears s; NULL is a no-op */

#endif
