/* codegen_bsattention_d128.c - the bsattention_d128 part of the ptxas sweep of codegen.c
 * (unit.codegen_bsattention_d128): the bsattention configs with D = 128 x targets lower, contain
 * mma.sync, ldmatrix and (unless STAGES=1) cp.async and pass ptxas (the default config is in
 * unit.codegen_bsattention). The code and the config table are codegen.c's; only the part differs,
 * so that each test fits the unit-test timeout.
 */
#define CODEGEN_PART "bsattention_d128"
#include "codegen.c"
