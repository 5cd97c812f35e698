/* codegen.h - internal interface of the LLVM back end (codegen/).
 *
 * codegen/ is the only folder that includes LLVM-C headers; everything it offers the rest of
 * tilec is declared here in plain C types, so callers never see an LLVM type. Functions carry
 * the cg_ prefix and hidden visibility (the library is built with -fvisibility=hidden).
 * Errors are returned as -1 plus a message copied into a caller buffer; LLVM's own error
 * strings are translated once, where they come out of LLVM.
 */
#ifndef TILEC_CODEGEN_H
#define TILEC_CODEGEN_H

#include <stdbool.h>
#include <stddef.h>

/* One NVPTX target tilec knows: the LLVM CPU name and the PTX ISA feature it is compiled with. */
struct cg_target {
  const char *arch;        /* "sm_90a": the LLVM CPU name and the `.target` in the PTX */
  int sm;                  /* 90 for sm_90 and sm_90a */
  const char *ptx_feature; /* "+ptx80": PTX ISA version requested from LLVM */
  int has_wgmma;           /* arch-specific sm_90a features (wgmma, setmaxnreg) */
};

/* Looks up a target by name ("sm_80", "sm_90a", ...). Returns NULL for an unknown name.
 * The returned description is static and never freed. */
const struct cg_target *cg_target_find(const char *arch);

/* Writes the version of the linked LLVM ("19.1.7") into buf. Returns 0, or -1 when cap is too
 * small (buf then holds a truncated, terminated string when cap > 0). */
int cg_llvm_version(char *buf, size_t cap);

/* Passes LLVM's own command-line options (space-separated, e.g. "-time-passes") to the linked
 * LLVM, for developers measuring or experimenting with the compiler (the CLI reads them from
 * TILEC_LLVM_ARGS; docs/codegen.md). Call it at most once, before any compilation. The options
 * are process-wide and LLVM's C API ignores, without a word, one it does not know ("-help"
 * prints and exits), so the library never calls this itself. Returns 0, or -1 with a message in
 * err when args has more than 63 options. */
int cg_llvm_options(const char *args, char *err, size_t errcap);

/* Builds a one-store probe kernel `tilec_probe(ptr addrspace(1))` with the LLVM C API, verifies
 * it and emits PTX for `arch`. Proves the NVPTX back end is linked and working. On success
 * returns 0 and stores a malloc'd, NUL-terminated PTX text in *ptx_out (the caller frees it);
 * on failure returns -1, sets *ptx_out to NULL and writes a message into err. */
int cg_emit_test_ptx(const char *arch, char **ptx_out, char *err, size_t errcap);

/* ---- lowering of the GPU IR (lower.c) -------------------------------------------------- */

struct cc_gpu;

enum {
  CG_EMIT_LLVM = 1,    /* fill cg_output.llvm with the module's text */
  CG_EMIT_PTX = 2,     /* fill cg_output.ptx */
  CG_NO_OPT = 4,       /* skip the optimizer (the LLVM text is then the lowering's own) */
  CG_OPT_FAST = 8,     /* a short pass list instead of O3: ~2.5x less optimizer work, +2-7% SASS */
  CG_NO_SWIZZLE = 16,  /* plain row-major dot operand buffers (tests: bank conflicts come back) */
  CG_OPT_LLVM_O3 = 32, /* LLVM's whole default<O3> instead of tilec's trimmed O3 (comparisons) */
  CG_ALIGNED = 64,     /* the aligned variant: see below */
};

/* CG_ALIGNED compiles the variant for arguments that keep the alignment promise (cg_aligned):
 * every tensor argument's base address is a multiple of 16 bytes, its last stride is 1, and
 * its other strides and its last extent are multiples of 16 bytes (8 bf16/f16, 4 f32, 16 f8
 * elements). Its block loads and stores then need no run-time alignment test and no fallback
 * path (only a tile index not provably a multiple of the vector width keeps its test): about
 * a fifth to a half less code and compile time. Launching it with arguments that break the
 * promise gives misaligned accesses (a fault) or wrong results: check with cg_aligned first. */

/* What a compiled kernel needs at launch, and where the compile time went. */
typedef struct cg_stats {
  int threads;    /* CTA size: 32 * warps (the kernel's maxntid) */
  int smem_bytes; /* dynamic shared memory per CTA; the launch must pass at least this */
  int mma;        /* mma.sync instructions emitted (static count, loops not unrolled) */
  int barriers;   /* bar.sync instructions emitted (static count) */
  int ldmatrix;   /* ldmatrix instructions emitted (static count) */
  int cpasync;    /* cp.async instructions emitted (static count) */
  double lower_ms, opt_ms, emit_ms; /* GPU IR -> LLVM IR (verified), optimizer, NVPTX emission */
  int ir_lowered, ir_optimized;     /* LLVM instructions in the module after lowering, after opt */
} cg_stats;

/* The products of cg_lower: malloc'd, NUL-terminated texts (NULL when not requested). */
typedef struct cg_output {
  char *llvm;
  char *ptx;
  char name[128]; /* the kernel's PTX entry name */
  cg_stats stats;
} cg_output;

/* Lowers the GPU IR g (cc_gpu_build's result: a specialized kernel with a layout for every tile
 * value) to LLVM IR through the LLVM C API, verifies it, optimizes it at O3 (unless CG_NO_OPT)
 * and emits PTX for `arch` ("sm_80" ... "sm_90a"). flags: CG_EMIT_*. Returns 0 and fills *out
 * (the caller frees it with cg_output_free), or -1 with a message in err (located at the
 * offending op when there is one); *out is then empty. g is not changed. Thread-safe: every
 * call owns its LLVM context. f8 (e4m3/e5m2) values may be loaded, stored, moved and fed to dot
 * (mma.m16n8k32 on sm_89+; such kernels get PTX ISA 8.4). Unsupported for now (a clear error):
 * f8 arithmetic and casts, f8 dot before sm_89, dot other than bf16/f16/f8 with an f32
 * accumulator, dot with K not a multiple of 16 (32 for f8) or M/N not multiples of 16/8,
 * transcendental f64 ops (docs/codegen.md). */
int cg_lower(const struct cc_gpu *g, const char *arch, unsigned flags, cg_output *out, char *err,
             size_t errcap);

/* ---- TILEC_DUMP (dump.c) ------------------------------------------------------------------ */

/* Whether TILEC_DUMP asks for `stage` (gpu, llvm, opt, ptx; or all of them with `all`). */
bool cg_dump_wanted(const char *stage);

/* The number of the next dumped compilation in this process; 0 when TILEC_DUMP is unset. */
unsigned long cg_dump_next(void);

/* Writes text as TILEC_DUMP_DIR/<kernel>.<pid>-<n>.{gpu.txt,llvm.ll,opt.ll,ptx} (default folder
 * tilec-dump) when the stage is wanted; a failure is reported once per process on stderr. */
void cg_dump(const char *kernel, unsigned long n, const char *stage, const char *text);

/* Frees the texts of o and clears it. NULL is a no-op. */
void cg_output_free(cg_output *o);

#endif
