/* tests/fuzz/codegen.c — libFuzzer target over the code generator: any kernel text that parses,
 * verifies and specializes with its defaults must go through layout assignment (cc_gpu_build)
 * and the LLVM lowering to PTX (cg_lower, both code variants, sm_80 or sm_90a by the input's
 * first byte) to PTX or to an error with a message — never a crash, an abort, a hang or a
 * sanitizer report, since an engine compiles user kernels in its own process. ptxas is not run
 * (the tuner and the API report its errors as statuses).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "compiler/gpu.h"
#include "ir/ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_TEXT = 8192 }; /* larger kernels only make each run slower */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0 || size > MAX_TEXT)
    return 0;
  ir_kernel *k = NULL, *spec = NULL;
  ir_diag d;
  if (ir_parse((const char *)data, size, "fuzz.tile", &k, &d) == IR_OK &&
      ir_verify(k, &d) == IR_OK) {
    ir_config cfg = {0};
    if (ir_specialize(k, &cfg, &spec, &d) == IR_OK) {
      cc_gpu g = {0};
      if (cc_gpu_build(spec, &g, &d) == 0) {
        const char *arch = data[0] & 1 ? "sm_80" : "sm_90a";
        for (unsigned v = 0; v < 2; v++) {
          cg_output o = {0};
          char err[512];
          if (cg_lower(&g, arch, CG_EMIT_PTX | (v ? CG_ALIGNED : 0), &o, err, sizeof err) == 0 &&
              (!o.ptx || !strstr(o.ptx, ".entry")))
            __builtin_trap(); /* success means PTX with the kernel's entry */
          cg_output_free(&o);
        }
      }
      cc_gpu_free(&g);
    }
  }
  ir_kernel_free(spec);
  ir_kernel_free(k);
  return 0;
}
