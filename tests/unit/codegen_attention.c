/* codegen_attention.c - the attention part of the ptxas sweep of codegen.c
 * (unit.codegen_attention): the attention configs x targets lower, contain mma.sync, ldmatrix and
 * (unless STAGES=1) cp.async, pass ptxas, and the defaults do not spill on sm_90a. The code and the
 * config table are codegen.c's; only the part differs, so that each test fits the unit-test
 * timeout.
 */
#define CODEGEN_PART "attention"
#include "codegen.c"
