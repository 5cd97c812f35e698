/* tests/fuzz/parse.c — libFuzzer target over parse → verify → specialize → print → re-parse.
 *
 * Any input must give a status, never a crash, hang or sanitizer report. A kernel that parses
 * and verifies must print to text that parses again and prints identically (the printer's
 * fixed point), and its default config must specialize or fail with a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ir_kernel *k = NULL, *k2 = NULL, *spec = NULL;
  ir_diag d;
  if (ir_parse((const char *)data, size, "fuzz.tile", &k, &d) != IR_OK)
    return 0;
  if (ir_verify(k, &d) == IR_OK) {
    char *text = ir_print(k);
    if (!text || ir_parse(text, strlen(text), "fuzz2.tile", &k2, &d) != IR_OK)
      __builtin_trap(); /* printed text must parse */
    char *text2 = ir_print(k2);
    if (!text2 || strcmp(text, text2) != 0)
      __builtin_trap(); /* print -> parse -> print must be a fixed point */
    free(text);
    free(text2);
    ir_config cfg = {0};
    if (ir_specialize(k, &cfg, &spec, &d) == IR_OK && ir_verify(spec, &d) != IR_OK)
      __builtin_trap(); /* a specialized kernel is verified before it is returned */
  }
  ir_kernel_free(spec);
  ir_kernel_free(k2);
  ir_kernel_free(k);
  return 0;
}
