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

/* Builds a one-store probe kernel `tilec_probe(ptr addrspace(1))` with the LLVM C API, verifies
 * it and emits PTX for `arch`. Proves the NVPTX back end is linked and working. On success
 * returns 0 and stores a malloc'd, NUL-terminated PTX text in *ptx_out (the caller frees it);
 * on failure returns -1, sets *ptx_out to NULL and writes a message into err. */
int cg_emit_test_ptx(const char *arch, char **ptx_out, char *err, size_t errcap);

#endif
