/* codegen_attention.c - the attention part of the ptxas sweep of codegen.c
 * (unit.codegen_attention): every config x target lowers, contains mma.sync, ldmatrix and
 * (unless STAGES=1) cp.async, passes ptxas, and the defaults do not spill on sm_90a. The code is
 * codegen.c's; only the kernels differ, so that each test fits the unit-test timeout.
 */
#define CODEGEN_ATTENTION 1
#include "codegen.c"
