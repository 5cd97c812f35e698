/* autotune/model.h — what the autotuner can say about a config before compiling it.
 *
 * An at_model is built once per (kernel, fixed items, problem, device). It holds a small
 * analysis of the unspecialized kernel (its dots, the loads that feed them, its loops, the
 * WARPS/STAGES tunables) and answers, for one binding of the symbols:
 *   - the analytic pruning checks of the space (threads, estimated shared memory per block
 *     against the device, mma.sync shape rules), with the reason text when a check fails;
 *   - a prior time estimate in milliseconds: a roofline/occupancy model for the built-in kernels
 *     (matmul, attention, bsattention, bsmatmul) and a generic fallback for user kernels
 *     (docs/tuning-search.md). The prior only ranks configs; it is not calibrated on a GPU.
 * space.c calls it for every point of a space; nothing here compiles or touches a GPU.
 */
#ifndef TILEC_AUTOTUNE_MODEL_H
#define TILEC_AUTOTUNE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autotune/at.h"
#include "ir/ir.h"
#include "kernels/problem.h"

struct at_device;
typedef struct at_model at_model;

/* Which estimate at_model_estimate uses. */
typedef enum {
  AT_MODEL_GENERIC,     /* user kernels: dots and loads of the body, loop trips, grid, occupancy */
  AT_MODEL_MATMUL,      /* kernels/matmul.tile */
  AT_MODEL_ATTENTION,   /* kernels/attention.tile */
  AT_MODEL_BSATTENTION, /* kernels/bsattention.tile (density from the mask= key) */
  AT_MODEL_BSMATMUL,    /* kernels/bsmatmul.tile (density from the density= key) */
} at_model_kind;

/* "generic", "matmul", "attention", "bsattention", "bsmatmul". */
const char *at_model_kind_name(at_model_kind k);

/* Analyses k and binds what does not vary over the space: const parameters and type variables
 * from fixed (else their defaults), problem dims and parameters from shape (integer keys whose
 * name is a dim or parameter of k; the built-in kernels' own key defaults otherwise, and 1024 for
 * a dim nobody gives). dev must outlive the model. The caller owns *out (at_model_free).
 * Errors: AT_ERR_ARG for a NULL argument, AT_ERR_OOM. */
at_status at_model_new(const ir_kernel *k, const ir_config *fixed, const kn_shape *shape,
                       const struct at_device *dev, at_model **out, at_err *e);

void at_model_free(at_model *m); /* NULL is a no-op */

at_model_kind at_model_which(const at_model *m);

/* The symbol values the model bound at creation (consts, dims, parameters; tunables hold their
 * defaults), indexed like k->syms, and which of them are set. Callers copy them, overwrite the
 * tunables of one config and pass the copy to the calls below. */
const ir_num *at_model_values(const at_model *m);
const bool *at_model_set(const at_model *m);

/* The analytic checks of one config (vals: every symbol, as above). Returns true when the config
 * passes; false with the reason in why ("shared memory: ~...", "mma shape: ...", "threads: ...").
 */
bool at_model_check(const at_model *m, const ir_num *vals, char *why, size_t cap);

/* Estimated dynamic shared memory of one CTA in bytes: the operand tiles of every dot, STAGES
 * copies of those loaded inside the dot's loop, or the largest accumulator tile when that is
 * bigger (the epilogue's conversion reuses the buffer). -1 when a tile dim cannot be evaluated. */
int64_t at_model_smem(const at_model *m, const ir_num *vals);

/* The prior: estimated kernel time in milliseconds for the problem, or INFINITY when one CTA
 * cannot fit on an SM, NaN when the model cannot evaluate the config. */
double at_model_estimate(const at_model *m, const ir_num *vals);

#endif
