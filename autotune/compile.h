/* autotune/compile.h — one candidate from config to cubin, on any thread, without a GPU:
 * specialize → GPU IR → LLVM → PTX → nvJitLink, with the resources from ptxas's report.
 *
 * The tuner runs many of these at once on a pool of CPU threads while the worker process
 * measures; everything here is thread-safe (each call owns its arena and LLVM context) and
 * never touches the CUDA driver.
 */
#ifndef TILEC_AUTOTUNE_COMPILE_H
#define TILEC_AUTOTUNE_COMPILE_H

#include <stddef.h>

#include "autotune/at.h"
#include "ir/ir.h"

/* A compiled candidate, or why it is not one. */
typedef struct at_compiled {
  at_run status; /* AT_RUN_COMPILED, or AT_RUN_PRUNED / AT_RUN_COMPILE with detail */
  char detail[512];
  unsigned char *cubin; /* malloc'd image (status COMPILED) */
  size_t cubin_size;
  char entry[128];   /* the kernel's entry name in the image */
  int threads;       /* CTA size */
  int smem_bytes;    /* dynamic + static shared memory per CTA */
  int regs, spills;  /* from ptxas's report (spills: store + load bytes); -1 unknown */
  double compile_ms; /* wall time of the whole chain */
} at_compiled;

/* Compiles kernel k (parsed, verified, not specialized) with cfg for arch. The outcome of the
 * candidate is in out->status; the return value is AT_OK unless the toolchain itself is missing
 * (AT_ERR_ENV: nvJitLink not found — then no candidate can compile) or memory ran out. A config
 * that violates a constraint is PRUNED; smem_limit > 0 prunes one that needs more shared memory
 * per CTA. The caller frees out with at_compiled_free. */
at_status at_compile(const ir_kernel *k, const ir_config *cfg, const char *arch, int smem_limit,
                     at_compiled *out, at_err *e);

/* at_compile with code generator flags: CG_ALIGNED builds the aligned variant (codegen.h; its
 * launches must keep the alignment promise, rt_args_aligned); other bits are ignored. */
at_status at_compile_flags(const ir_kernel *k, const ir_config *cfg, const char *arch,
                           int smem_limit, unsigned cg_flags, at_compiled *out, at_err *e);

void at_compiled_free(at_compiled *c); /* NULL-safe; leaves c zeroed */

/* The kernel's identity in the tuning database (hex SHA-256, out has 65 bytes): its canonical
 * printed text without what selects configs rather than defines code — the type variables'
 * choices, the tunables' defaults and domains (their names stay), the constraints and the
 * buckets. Adding a value to a domain, or a dtype to a type variable, keeps every stored row;
 * any change to the arguments, grid or body is a new kernel. */
at_status at_kernel_hash(const ir_kernel *k, char out[65], at_err *e);

/* The canonical text of what a binding fixes in k's code (out: cap bytes): each type variable's
 * kind, then each const parameter's and tunable's value, in declaration order, as ir_specialize
 * binds them (the last item of a name in cfg wins; an unbound one takes its default, "?" when it
 * has none): "TA=bf16,D=64,causal=0,BM=64,BN=64,WARPS=4,STAGES=2". A compile key covers this text,
 * not the tunables alone: problems that differ in dtype or a const parameter (attention's D)
 * get different code from the same tunables. Errors: AT_ERR_ARG (NULL argument, text longer
 * than cap). */
at_status at_code_config(const ir_kernel *k, const ir_config *cfg, char *out, size_t cap,
                         at_err *e);

/* The toolchain part of a database key: "tilec VERSION|llvm X|nvjitlink A.B|driver C.D" for the
 * driver version driver_version (13000 for 13.0; 0 when no driver is involved). Loads nvJitLink
 * to read its version (0.0 when absent). Every writer and reader of the database builds its key
 * here, so `tilec tune` rows are found by the public API's lookups. Never fails. */
void at_toolchain_key(int driver_version, char *buf, size_t cap);

#endif
