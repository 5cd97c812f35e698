/* ir/exec.h — execution helpers shared by the interpreter (ir/interp.c) and the GPU-IR
 * simulator (compiler/gpusim.c). Internal to tilec.
 *
 * Both executors hold element values in 8-byte cells (floats as doubles holding an exactly
 * rounded value of their kind, integers/i1/pointers as int64), and both call the conversions,
 * buffer accessors, pointer encoding, elementwise kernels and launch binding below, so that
 * their arithmetic and their argument checks cannot drift apart. docs/ir.md states the
 * semantics; these functions are their one implementation.
 */
#ifndef TILEC_IR_EXEC_H
#define TILEC_IR_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include "ir.h"

/* One element of a value: which member is live follows from the value's kind. */
typedef union ir_cell {
  double f;
  int64_t i;
} ir_cell;

#define IR_EXEC_PTR_BIAS (INT64_C(1) << 47)     /* pointer offsets lie in [-2^47, 2^47) */
#define IR_EXEC_MAX_DIM (INT64_C(1) << 48)      /* larger tensor dims are rejected at launch */
#define IR_EXEC_MAX_PROGRAMS (INT64_C(1) << 31) /* programs of one grid */
#define IR_EXEC_MAX_TRIPS (INT64_C(1) << 31)    /* iterations of one loop */

/* Wraps v to the width of integer kind k (two's complement; i1 keeps bit 0). */
int64_t ir_exec_wrap(ir_kind k, int64_t v);
/* Integer to float kind, rounded once (round to odd beyond 2^53 so a second rounding is exact). */
double ir_exec_i2f(ir_kind k, int64_t v);
/* One element converted between kinds by the cast op's rules. */
ir_cell ir_exec_conv(ir_kind from, ir_kind to, ir_cell c);
/* A number (const, fill, parameter) as an element of kind k. */
ir_cell ir_exec_from_num(ir_kind k, ir_num v);
/* Rounds n float cells to kind k / wraps n integer cells to kind k. */
void ir_exec_round(ir_kind k, ir_cell *r, int64_t n);
void ir_exec_wrap_cells(ir_kind k, ir_cell *r, int64_t n);

/* Reads/writes n elements of storage kind k at element offsets e, e+st, ... of base. */
void ir_exec_read(ir_kind k, const void *base, int64_t e, int64_t st, int64_t n, ir_cell *out);
void ir_exec_write(ir_kind k, void *base, int64_t e, int64_t st, int64_t n, const ir_cell *in);

/* Pointer cells encode (argument, element offset) as ((arg + 1) << 48) + offset. ptr_arg
 * returns the argument index (-1 for none) and stores the offset. */
int64_t ir_exec_ptr_make(int arg, int64_t off);
int ir_exec_ptr_arg(int64_t p, int64_t *off);

/* Elementwise kernels over n results: operand x of stride sx (0 splats one cell, 1 walks).
 * Results are rounded (floats) or wrapped (integers) to kind k. The fallible ones return NULL,
 * or the message of the first error ("integer division by zero", ...). */
const char *ir_exec_binary(ir_opcode code, ir_kind k, ir_cell *r, const ir_cell *a, int64_t sa,
                           const ir_cell *b, int64_t sb, int64_t n);
const char *ir_exec_unary(ir_opcode code, ir_kind k, ir_cell *r, const ir_cell *a, int64_t sa,
                          int64_t n);
/* cmp with predicate pred (ir_cmp) over operands of kind k; results are i1. */
const char *ir_exec_compare(int pred, ir_kind k, ir_cell *r, const ir_cell *a, int64_t sa,
                            const ir_cell *b, int64_t sb, int64_t n);
void ir_exec_select(ir_cell *r, const ir_cell *c, int64_t sc, const ir_cell *a, int64_t sa,
                    const ir_cell *b, int64_t sb, int64_t n);
/* cast from kind `from` to kind `to` (the caller has rejected pointer/number mixes). */
void ir_exec_cast(ir_kind from, ir_kind to, ir_cell *r, const ir_cell *a, int64_t sa, int64_t n);

/* Checks the launch arguments against kernel k and binds every symbol: argkind[a] receives the
 * element kind of each tensor/pointer argument, symv/symset the symbol values (dims from
 * shapes, parameters from scalars, tunables and consts from defaults), grid/nprog the grid.
 * The arrays have k->nargs / k->nsyms entries. Errors are located at the argument. */
ir_status ir_exec_bind(const ir_kernel *k, const ir_argval *args, int nargs, ir_kind *argkind,
                       ir_num *symv, bool *symset, int64_t grid[3], int64_t *nprog, ir_diag *d);

#endif
