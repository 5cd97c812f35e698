/* ir/type.c — scalar kinds, type constructors and queries, and the op table.
 *
 * Scalar types are static singletons; ptr/tile/tvar types are built in a kernel's arena and
 * compared structurally. The op table is generated from ops.def.
 */
#include "ir.h"

#include <string.h>

static const struct {
  const char *name;
  int bits;
} kinds[IR_NSCALAR] = {
    [IR_VOID] = {"void", 0}, [IR_I1] = {"i1", 8},         [IR_I8] = {"i8", 8},
    [IR_I16] = {"i16", 16},  [IR_I32] = {"i32", 32},      [IR_I64] = {"i64", 64},
    [IR_F16] = {"f16", 16},  [IR_BF16] = {"bf16", 16},    [IR_F32] = {"f32", 32},
    [IR_F64] = {"f64", 64},  [IR_F8E4M3] = {"f8e4m3", 8}, [IR_F8E5M2] = {"f8e5m2", 8},
};

static const ir_type scalars[IR_NSCALAR] = {
#define S(k) [k] = {.kind = k}
    S(IR_VOID), S(IR_I1),   S(IR_I8),  S(IR_I16), S(IR_I32),    S(IR_I64),
    S(IR_F16),  S(IR_BF16), S(IR_F32), S(IR_F64), S(IR_F8E4M3), S(IR_F8E5M2),
#undef S
};

const ir_type *ir_scalar_type(ir_kind k) { return k < IR_NSCALAR ? &scalars[k] : NULL; }

const char *ir_kind_name(ir_kind k) {
  switch (k) {
  case IR_PTR:
    return "ptr";
  case IR_TILE:
    return "tile";
  case IR_TENSOR:
    return "tensor";
  case IR_TVAR:
    return "tvar";
  default:
    return k < IR_NSCALAR ? kinds[k].name : "?";
  }
}

bool ir_kind_is_float(ir_kind k) {
  return k == IR_F16 || k == IR_BF16 || k == IR_F32 || k == IR_F64 || k == IR_F8E4M3 ||
         k == IR_F8E5M2;
}

bool ir_kind_is_int(ir_kind k) { return k >= IR_I1 && k <= IR_I64; }

int ir_kind_bits(ir_kind k) { return k < IR_NSCALAR ? kinds[k].bits : 64; }

ir_kind ir_kind_from_name(const char *name, size_t len) {
  for (int k = IR_I1; k < IR_NSCALAR; k++)
    if (strlen(kinds[k].name) == len && memcmp(kinds[k].name, name, len) == 0)
      return (ir_kind)k;
  return IR_VOID;
}

const ir_type *ir_type_ptr(ir_arena *a, const ir_type *elem) {
  ir_type *t = ir_alloc(a, sizeof *t);
  t->kind = IR_PTR;
  t->elem = elem;
  return t;
}

const ir_type *ir_type_tile(ir_arena *a, const ir_type *elem, int rank, ir_expr *const *dims) {
  ir_type *t = ir_alloc(a, sizeof *t);
  t->kind = IR_TILE;
  t->elem = elem;
  t->rank = rank;
  for (int i = 0; i < rank && i < IR_MAX_RANK; i++)
    t->dims[i] = dims[i];
  return t;
}

const ir_type *ir_type_tvar(ir_arena *a, int tvar) {
  ir_type *t = ir_alloc(a, sizeof *t);
  t->kind = IR_TVAR;
  t->tvar = tvar;
  return t;
}

const ir_type *ir_type_elem(const ir_type *t) { return t->kind == IR_TILE ? t->elem : t; }

bool ir_type_equal(const ir_type *a, const ir_type *b) {
  if (a == b)
    return true;
  if (!a || !b || a->kind != b->kind)
    return false;
  switch (a->kind) {
  case IR_PTR:
    return ir_type_equal(a->elem, b->elem);
  case IR_TVAR:
    return a->tvar == b->tvar;
  case IR_TILE:
  case IR_TENSOR:
    if (a->rank != b->rank || !ir_type_equal(a->elem, b->elem))
      return false;
    for (int i = 0; i < a->rank; i++)
      if (!ir_expr_equal(a->dims[i], b->dims[i]))
        return false;
    return true;
  default:
    return true; /* same scalar kind */
  }
}

int64_t ir_type_shape(const ir_type *t, int *rank, int64_t shape[IR_MAX_RANK]) {
  if (t->kind != IR_TILE) {
    *rank = 0;
    return 1;
  }
  int64_t n = 1;
  *rank = t->rank;
  for (int i = 0; i < t->rank; i++) {
    if (!ir_expr_is_int(t->dims[i], &shape[i]))
      return -1;
    n *= shape[i];
  }
  return n;
}

const ir_opinfo ir_ops[IR_NOPS] = {
#define OP(e, kw, syn, nres, meaning) [IR_OP_##e] = {kw, syn, nres, meaning},
#include "ops.def"
#undef OP
};

ir_opcode ir_opcode_from_name(const char *name, size_t len) {
  for (int i = 0; i < IR_NOPS; i++)
    if (strlen(ir_ops[i].keyword) == len && memcmp(ir_ops[i].keyword, name, len) == 0)
      return (ir_opcode)i;
  return IR_NOPS;
}

const char *ir_cmp_name(int c) {
  static const char *n[] = {"eq", "ne", "lt", "le", "gt", "ge"};
  return c >= 0 && c < 6 ? n[c] : "?";
}

const char *ir_red_name(int r) {
  static const char *n[] = {"sum", "max", "min"};
  return r >= 0 && r < 3 ? n[r] : "?";
}
