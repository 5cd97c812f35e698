/* ir/verify.c — the verifier: types, shapes, SSA dominance, regions, symbols.
 *
 * Runs on symbolic kernels (after parsing or building) and on specialized ones. Symbolic tile
 * dims are compared only when both sides are literals (the specialized kernel is verified again
 * with every dim literal), so a kernel that verifies symbolically may still fail for one config.
 * Every error names the op's location.
 */
#include "ir.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const ir_kernel *k;
  ir_diag *d;
  bool *visible; /* by value id: defined and dominating the current point */
} vctx;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static ir_status
err(vctx *c, ir_loc loc, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ir_error(c->d, IR_ERR_VERIFY, loc, c->k->source, "%s", msg);
}

static const char *tname(vctx *c, const ir_type *t, char *buf) {
  ir_type_print(c->k, t, buf, 128);
  return buf;
}

static const char *vn(const ir_value *v) { return v->name ? v->name : "(unnamed)"; }

static bool is_tile(const ir_type *t) { return t->kind == IR_TILE; }

/* The scalar kind of a type's elements (IR_TVAR and IR_PTR are returned as such). */
static ir_kind ekind(const ir_type *t) { return ir_type_elem(t)->kind; }

static bool is_num(ir_kind k) { return ir_kind_is_int(k) || ir_kind_is_float(k) || k == IR_TVAR; }

/* Dims equal, or unknown until specialization. */
static bool dim_eq(const ir_expr *a, const ir_expr *b) {
  int64_t x, y;
  if (ir_expr_is_int(a, &x) && ir_expr_is_int(b, &y))
    return x == y;
  return true;
}

static bool shape_eq(const ir_type *a, const ir_type *b) {
  int ra = is_tile(a) ? a->rank : 0, rb = is_tile(b) ? b->rank : 0;
  if (ra != rb)
    return false;
  for (int i = 0; i < ra; i++)
    if (!dim_eq(a->dims[i], b->dims[i]))
      return false;
  return true;
}

/* Same type up to deferred symbolic dims. */
static bool same(const ir_type *a, const ir_type *b) {
  return shape_eq(a, b) && ir_type_equal(ir_type_elem(a), ir_type_elem(b));
}

static bool uses_runtime(const ir_kernel *k, const ir_expr *e) {
  if (!e)
    return false;
  if (e->kind == EX_SYM)
    return k->syms[e->sym].kind == SYM_PARAM || k->syms[e->sym].kind == SYM_DIM;
  return uses_runtime(k, e->a) || uses_runtime(k, e->b);
}

static ir_status check_type(vctx *c, ir_loc loc, const ir_type *t) {
  char buf[128];
  if (!t)
    return err(c, loc, "missing type");
  if (t->kind == IR_TVAR && (t->tvar < 0 || t->tvar >= c->k->ntvars))
    return err(c, loc, "bad type variable");
  if (t->kind == IR_TENSOR)
    return err(c, loc, "tensor types are only allowed for arguments");
  if (t->kind == IR_PTR)
    return check_type(c, loc, t->elem);
  if (t->kind != IR_TILE)
    return t->kind == IR_VOID ? err(c, loc, "value of type void") : IR_OK;
  if (t->rank < 1 || t->rank > IR_MAX_RANK)
    return err(c, loc, "tile rank must be 1..4 in %s", tname(c, t, buf));
  if (t->elem->kind == IR_TILE || t->elem->kind == IR_TENSOR || t->elem->kind == IR_VOID)
    return err(c, loc, "bad tile element type in %s", tname(c, t, buf));
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) {
    int64_t v;
    if (uses_runtime(c->k, t->dims[i]))
      return err(c, loc, "tile dims must be compile-time: %s", tname(c, t, buf));
    if (ir_expr_is_int(t->dims[i], &v)) {
      if (v < 1)
        return err(c, loc, "tile dims must be positive: %s", tname(c, t, buf));
      if (v > IR_MAX_TILE_ELEMS || (n *= v) > IR_MAX_TILE_ELEMS)
        return ir_error(c->d, IR_ERR_LIMIT, loc, c->k->source, "tile %s has more than %d elements",
                        tname(c, t, buf), IR_MAX_TILE_ELEMS);
    } else if (c->k->specialized) {
      return err(c, loc, "specialized kernel has a symbolic dim in %s", tname(c, t, buf));
    }
  }
  return check_type(c, loc, t->elem);
}

static ir_status block(vctx *c, const ir_block *b, const ir_type *const *yield_types, int nyield);

static const ir_type *opnd(const ir_op *op, int i) { return op->operands[i]->ty; }

/* Binary elementwise rule: same type, or scalar of the element type with a tile. Returns the
 * tile-or-scalar type the result must have (shape-wise). */
static const ir_type *binary_type(const ir_op *op) {
  const ir_type *a = opnd(op, 0), *b = opnd(op, 1);
  if (same(a, b))
    return a;
  if (is_tile(a) && !is_tile(b) && ir_type_equal(a->elem, b))
    return a;
  if (is_tile(b) && !is_tile(a) && ir_type_equal(b->elem, a))
    return b;
  return NULL;
}

static bool is_int_op(ir_opcode c) {
  return c == IR_OP_REM || c == IR_OP_CDIV || c == IR_OP_AND || c == IR_OP_OR || c == IR_OP_XOR ||
         c == IR_OP_SHL || c == IR_OP_SHR;
}

static bool is_float_op(ir_opcode c) {
  return c == IR_OP_EXP || c == IR_OP_EXP2 || c == IR_OP_LOG || c == IR_OP_LOG2 ||
         c == IR_OP_SQRT || c == IR_OP_RSQRT;
}

static bool kind_ok(ir_kind k, bool want_int, bool want_float) {
  if (k == IR_TVAR)
    return true;
  if (want_int)
    return ir_kind_is_int(k);
  if (want_float)
    return ir_kind_is_float(k);
  return is_num(k);
}

static ir_status check_op(vctx *c, const ir_op *op) {
  const ir_opinfo *info = &ir_ops[op->code];
  const char *kw = info->keyword;
  ir_loc L = op->loc;
  char b1[128], b2[128];
  if (info->nres >= 0 && op->nres != info->nres)
    return err(c, L, "'%s' must have %s result(s)", kw, info->nres ? "one" : "no");
  for (int i = 0; i < op->nopnd; i++) {
    if (!c->visible[op->operands[i]->id])
      return err(c, L, "operand %%%s of '%s' does not dominate this use", vn(op->operands[i]), kw);
    if (op->operands[i]->ty->kind == IR_TENSOR &&
        !(i == 0 && (op->code == IR_OP_LOAD || op->code == IR_OP_STORE)))
      return err(c, L, "tensor '%%%s' can only be used by load and store", vn(op->operands[i]));
  }
  for (int i = 0; i < op->nres; i++) {
    ir_status s = check_type(c, L, op->results[i]->ty);
    if (s)
      return s;
  }
  const ir_type *r = op->nres == 1 ? op->results[0]->ty : NULL;
  int need = -1; /* exact operand count, when fixed */
  switch (op->code) {
  case IR_OP_PROGRAM_ID:
  case IR_OP_NUM_PROGRAMS:
    need = 0;
    if (op->attr[0] < 0 || op->attr[0] >= c->k->ngrid)
      return err(c, L, "'%s' axis is outside the grid", kw);
    if (r->kind != IR_I32)
      return err(c, L, "'%s' returns i32", kw);
    break;
  case IR_OP_CONST:
    need = 0;
    if (!op->ex[0])
      return err(c, L, "'const' needs an expression");
    if (is_tile(r) || r->kind == IR_PTR || !is_num(r->kind))
      return err(c, L, "'const' makes a scalar number, not %s", tname(c, r, b1));
    break;
  case IR_OP_ZEROS:
    need = 0;
    if (!is_num(ekind(r)))
      return err(c, L, "'zeros' makes numbers, not %s", tname(c, r, b1));
    break;
  case IR_OP_FULL:
    need = 1;
    if (op->nopnd == 1 && (!is_tile(r) || !ir_type_equal(opnd(op, 0), r->elem)))
      return err(c, L, "'full' splats a %s scalar into a tile of it, not into %s",
                 tname(c, opnd(op, 0), b1), tname(c, r, b2));
    break;
  case IR_OP_ARANGE: {
    need = 0;
    int64_t lo, hi, n;
    if (!is_tile(r) || r->rank != 1 || r->elem->kind != IR_I32)
      return err(c, L, "'arange' makes a 1-D i32 tile");
    if (uses_runtime(c->k, op->ex[0]) || uses_runtime(c->k, op->ex[1]))
      return err(c, L, "'arange' bounds must be compile-time");
    if (ir_expr_is_int(op->ex[0], &lo) && ir_expr_is_int(op->ex[1], &hi) &&
        ir_expr_is_int(r->dims[0], &n) && hi - lo != n)
      return err(c, L, "'arange' length does not match %s", tname(c, r, b1));
    break;
  }
  case IR_OP_ADD:
  case IR_OP_SUB:
  case IR_OP_MUL:
  case IR_OP_DIV:
  case IR_OP_REM:
  case IR_OP_CDIV:
  case IR_OP_MAX:
  case IR_OP_MIN:
  case IR_OP_AND:
  case IR_OP_OR:
  case IR_OP_XOR:
  case IR_OP_SHL:
  case IR_OP_SHR: {
    need = 2;
    if (op->nopnd != 2)
      break;
    const ir_type *t = binary_type(op);
    if (!t)
      return err(c, L, "operand types of '%s' differ: %s and %s", kw, tname(c, opnd(op, 0), b1),
                 tname(c, opnd(op, 1), b2));
    if (!kind_ok(ekind(t), is_int_op(op->code), false) || ekind(t) == IR_PTR)
      return err(c, L, "'%s' does not apply to %s", kw, tname(c, t, b1));
    if (!same(t, r))
      return err(c, L, "result of '%s' must be %s", kw, tname(c, t, b1));
    break;
  }
  case IR_OP_NEG:
  case IR_OP_ABS:
  case IR_OP_EXP:
  case IR_OP_EXP2:
  case IR_OP_LOG:
  case IR_OP_LOG2:
  case IR_OP_SQRT:
  case IR_OP_RSQRT:
    need = 1;
    if (op->nopnd != 1)
      break;
    if (!kind_ok(ekind(opnd(op, 0)), false, is_float_op(op->code)) || ekind(opnd(op, 0)) == IR_PTR)
      return err(c, L, "'%s' does not apply to %s", kw, tname(c, opnd(op, 0), b1));
    if (!same(opnd(op, 0), r))
      return err(c, L, "result of '%s' must be %s", kw, tname(c, opnd(op, 0), b1));
    break;
  case IR_OP_CMP: {
    need = 2;
    if (op->nopnd != 2)
      break;
    const ir_type *t = binary_type(op);
    if (op->sub < IR_CMP_EQ || op->sub > IR_CMP_GE)
      return err(c, L, "bad comparison predicate");
    if (!t || ekind(t) == IR_PTR || !is_num(ekind(t)))
      return err(c, L, "'cmp' operands must be numbers of one type");
    if (ekind(r) != IR_I1 || !shape_eq(t, r))
      return err(c, L, "'cmp' result must be i1 shaped like %s", tname(c, t, b1));
    break;
  }
  case IR_OP_SELECT:
    need = 3;
    if (op->nopnd != 3)
      break;
    if (ekind(opnd(op, 0)) != IR_I1)
      return err(c, L, "'select' condition must be i1");
    if (!same(opnd(op, 1), r) || !same(opnd(op, 2), r))
      return err(c, L, "'select' arms must both be %s", tname(c, r, b1));
    if (is_tile(opnd(op, 0)) && !shape_eq(opnd(op, 0), r))
      return err(c, L, "'select' condition shape differs from %s", tname(c, r, b1));
    break;
  case IR_OP_CAST:
    need = 1;
    if (op->nopnd != 1)
      break;
    if (!shape_eq(opnd(op, 0), r) || !is_num(ekind(r)) || !is_num(ekind(opnd(op, 0))))
      return err(c, L, "'cast' converts numbers and keeps the shape: %s to %s",
                 tname(c, opnd(op, 0), b1), tname(c, r, b2));
    break;
  case IR_OP_BROADCAST: {
    need = 1;
    if (op->nopnd != 1)
      break;
    const ir_type *a = opnd(op, 0);
    if (!is_tile(r) || !ir_type_equal(ir_type_elem(a), r->elem))
      return err(c, L, "'broadcast' makes a tile of the same element type");
    if (is_tile(a)) {
      if (a->rank != r->rank)
        return err(c, L, "'broadcast' keeps the rank: %s to %s", tname(c, a, b1), tname(c, r, b2));
      for (int i = 0; i < a->rank; i++) {
        int64_t v;
        if (!(ir_expr_is_int(a->dims[i], &v) && v == 1) && !dim_eq(a->dims[i], r->dims[i]))
          return err(c, L, "'broadcast' can only stretch size-1 dims: %s to %s", tname(c, a, b1),
                     tname(c, r, b2));
      }
    }
    break;
  }
  case IR_OP_EXPAND_DIMS: {
    need = 1;
    if (op->nopnd != 1)
      break;
    const ir_type *a = opnd(op, 0);
    int64_t one;
    if (!is_tile(a) || !is_tile(r) || r->rank != a->rank + 1 || op->attr[0] < 0 ||
        op->attr[0] > a->rank || !ir_type_equal(a->elem, r->elem) ||
        !(ir_expr_is_int(r->dims[op->attr[0]], &one) && one == 1))
      return err(c, L, "'expand_dims' inserts a size-1 dim: %s to %s", tname(c, a, b1),
                 tname(c, r, b2));
    for (int i = 0, j = 0; i < r->rank; i++)
      if (i != op->attr[0] && !dim_eq(a->dims[j++], r->dims[i]))
        return err(c, L, "'expand_dims' keeps the other dims: %s to %s", tname(c, a, b1),
                   tname(c, r, b2));
    break;
  }
  case IR_OP_RESHAPE: {
    need = 1;
    if (op->nopnd != 1)
      break;
    const ir_type *a = opnd(op, 0);
    int ra, rr;
    int64_t sa[IR_MAX_RANK], sr[IR_MAX_RANK];
    if (!is_tile(a) || !is_tile(r) || !ir_type_equal(a->elem, r->elem))
      return err(c, L, "'reshape' maps a tile to a tile of the same element type");
    int64_t na = ir_type_shape(a, &ra, sa), nr = ir_type_shape(r, &rr, sr);
    if (na >= 0 && nr >= 0 && na != nr)
      return err(c, L, "'reshape' keeps the element count: %s to %s", tname(c, a, b1),
                 tname(c, r, b2));
    break;
  }
  case IR_OP_CONVERT:
    need = 1;
    if (op->nopnd == 1 && (!is_tile(opnd(op, 0)) || !same(opnd(op, 0), r)))
      return err(c, L, "'convert_layout' keeps the tile type");
    break;
  case IR_OP_TRANS: {
    need = 1;
    if (op->nopnd != 1)
      break;
    const ir_type *a = opnd(op, 0);
    if (!is_tile(a) || a->rank != 2 || !is_tile(r) || r->rank != 2 ||
        !ir_type_equal(a->elem, r->elem) || !dim_eq(a->dims[0], r->dims[1]) ||
        !dim_eq(a->dims[1], r->dims[0]))
      return err(c, L, "'trans' swaps the dims of a 2-D tile: %s to %s", tname(c, a, b1),
                 tname(c, r, b2));
    break;
  }
  case IR_OP_LOAD:
  case IR_OP_STORE: {
    const ir_type *t = op->nopnd > 0 ? opnd(op, 0) : NULL;
    if (!t || t->kind != IR_TENSOR)
      return err(c, L, "'%s' needs a tensor argument", kw);
    int nidx = op->nopnd - 1 - (op->code == IR_OP_STORE);
    if (nidx != t->rank)
      return err(c, L, "tensor '%%%s' needs one index per dim", vn(op->operands[0]));
    for (int i = 1; i <= nidx; i++)
      if (is_tile(opnd(op, i)) || !ir_kind_is_int(opnd(op, i)->kind))
        return err(c, L, "indices of '%s' must be integer scalars", kw);
    const ir_type *v = op->code == IR_OP_LOAD ? r : opnd(op, op->nopnd - 1);
    if (op->code == IR_OP_STORE) {
      const ir_arg *a = &c->k->args[op->operands[0]->argno];
      if (a->dir == ARG_IN)
        return err(c, L, "store to input tensor '%%%s' (declare it out or inout)", a->name);
    }
    if (!ir_type_equal(ir_type_elem(v), t->elem))
      return err(c, L, "'%s' element type must be %s", kw, tname(c, t->elem, b1));
    if (is_tile(v) && v->rank > t->rank)
      return err(c, L, "tile rank exceeds the rank of tensor '%%%s'", vn(op->operands[0]));
    break;
  }
  case IR_OP_ADDPTR: {
    need = 2;
    if (op->nopnd != 2)
      break;
    const ir_type *p = opnd(op, 0), *o = opnd(op, 1);
    if (ekind(p) != IR_PTR || !ir_kind_is_int(ekind(o)))
      return err(c, L, "'addptr' adds integer offsets to a pointer");
    const ir_type *shape = is_tile(p) ? p : o;
    if (is_tile(p) && is_tile(o) && !shape_eq(p, o))
      return err(c, L, "'addptr' operand shapes differ");
    if (!ir_type_equal(ir_type_elem(r), ir_type_elem(p)) || !shape_eq(shape, r))
      return err(c, L, "result of 'addptr' must be %s", tname(c, shape, b1));
    break;
  }
  case IR_OP_LOAD_PTR: {
    if (op->nopnd < 1 || op->nopnd > 3)
      return err(c, L, "'load_ptr' takes a pointer, an optional mask and other");
    const ir_type *p = opnd(op, 0);
    if (ekind(p) != IR_PTR || !ir_type_equal(ir_type_elem(p)->elem, ir_type_elem(r)) ||
        !shape_eq(p, r))
      return err(c, L, "'load_ptr' of %s gives its pointee type, not %s", tname(c, p, b1),
                 tname(c, r, b2));
    if (op->nopnd >= 2 && (ekind(opnd(op, 1)) != IR_I1 || !shape_eq(opnd(op, 1), r)))
      return err(c, L, "'load_ptr' mask must be i1 shaped like the result");
    if (op->nopnd == 3 && !same(opnd(op, 2), r) && !ir_type_equal(opnd(op, 2), ir_type_elem(r)))
      return err(c, L, "'load_ptr' other must be %s or its element type", tname(c, r, b1));
    break;
  }
  case IR_OP_STORE_PTR: {
    if (op->nopnd < 2 || op->nopnd > 3)
      return err(c, L, "'store_ptr' takes a pointer, a value and an optional mask");
    const ir_type *p = opnd(op, 0), *v = opnd(op, 1);
    if (ekind(p) != IR_PTR || !ir_type_equal(ir_type_elem(p)->elem, ir_type_elem(v)) ||
        !shape_eq(p, v))
      return err(c, L, "'store_ptr' value must match the pointer %s", tname(c, p, b1));
    if (op->nopnd == 3 && (ekind(opnd(op, 2)) != IR_I1 || !shape_eq(opnd(op, 2), v)))
      return err(c, L, "'store_ptr' mask must be i1 shaped like the value");
    break;
  }
  case IR_OP_DOT: {
    need = 3;
    if (op->nopnd != 3)
      break;
    const ir_type *a = opnd(op, 0), *b = opnd(op, 1), *acc = opnd(op, 2);
    if (!is_tile(a) || !is_tile(b) || !is_tile(acc) || a->rank != 2 || b->rank != 2 ||
        acc->rank != 2)
      return err(c, L, "'dot' takes 2-D tiles");
    if (!dim_eq(a->dims[1], b->dims[0]) || !dim_eq(a->dims[0], acc->dims[0]) ||
        !dim_eq(b->dims[1], acc->dims[1]))
      return err(c, L, "'dot' shapes do not match: %s times %s", tname(c, a, b1), tname(c, b, b2));
    if (!kind_ok(ekind(a), false, true) || !kind_ok(ekind(b), false, true) ||
        !kind_ok(ekind(acc), false, true))
      return err(c, L, "'dot' multiplies float tiles");
    if (!same(acc, r))
      return err(c, L, "'dot' result must be the accumulator type %s", tname(c, acc, b1));
    break;
  }
  case IR_OP_REDUCE: {
    need = 1;
    if (op->nopnd != 1)
      break;
    const ir_type *a = opnd(op, 0);
    if (op->sub < IR_RED_SUM || op->sub > IR_RED_MIN)
      return err(c, L, "bad reduction kind");
    if (!is_tile(a) || op->attr[0] < 0 || op->attr[0] >= a->rank || !is_num(ekind(a)))
      return err(c, L, "'reduce' axis must be a dim of a number tile");
    bool ok = ir_type_equal(ir_type_elem(r), a->elem);
    if (a->rank == 1)
      ok = ok && !is_tile(r);
    else if (!is_tile(r) || r->rank != a->rank - 1)
      ok = false;
    else
      for (int i = 0, j = 0; i < a->rank; i++)
        if (i != op->attr[0] && !dim_eq(a->dims[i], r->dims[j++]))
          ok = false;
    if (!ok)
      return err(c, L, "'reduce' removes the axis: %s is not a reduction of %s", tname(c, r, b1),
                 tname(c, a, b2));
    break;
  }
  case IR_OP_FOR: {
    if (op->nopnd < 3 || op->nregions != 1 || !op->regions[0] ||
        op->regions[0]->nargs != op->nopnd - 2 || op->nres != op->nopnd - 3)
      return err(c, L, "malformed 'for'");
    const ir_type *it = opnd(op, 0);
    if (is_tile(it) || !ir_kind_is_int(it->kind) || it->kind == IR_I1 ||
        !ir_type_equal(opnd(op, 1), it) || !ir_type_equal(opnd(op, 2), it))
      return err(c, L, "'for' bounds and step must be integer scalars of one type");
    const ir_block *body = op->regions[0];
    const ir_type *rt[IR_MAX_OPERANDS];
    if (!ir_type_equal(body->args[0]->ty, it))
      return err(c, L, "'for' induction variable must have the bounds' type");
    for (int i = 0; i < op->nres; i++) {
      rt[i] = op->results[i]->ty;
      if (!same(opnd(op, 3 + i), rt[i]) || !same(body->args[1 + i]->ty, rt[i]))
        return err(c, L, "loop-carried value %%%s has type %s", vn(body->args[1 + i]),
                   tname(c, opnd(op, 3 + i), b1));
    }
    for (int i = 0; i < body->nargs; i++)
      c->visible[body->args[i]->id] = true;
    ir_status s = block(c, body, rt, op->nres);
    for (int i = 0; i < body->nargs; i++)
      c->visible[body->args[i]->id] = false;
    return s;
  }
  case IR_OP_IF: {
    if (op->nopnd != 1 || op->nregions < 1 || !op->regions[0])
      return err(c, L, "malformed 'if'");
    if (is_tile(opnd(op, 0)) || opnd(op, 0)->kind != IR_I1)
      return err(c, L, "'if' condition must be an i1 scalar");
    if (op->nres > 0 && (op->nregions < 2 || !op->regions[1]))
      return err(c, L, "'if' with results needs an 'else'");
    const ir_type *rt[IR_MAX_OPERANDS];
    for (int i = 0; i < op->nres; i++)
      rt[i] = op->results[i]->ty;
    for (int i = 0; i < op->nregions; i++) {
      ir_status s = op->regions[i] ? block(c, op->regions[i], rt, op->nres) : IR_OK;
      if (s)
        return s;
    }
    return IR_OK;
  }
  case IR_OP_YIELD:
    break; /* checked by block() */
  default:
    return err(c, L, "unknown op");
  }
  if (need >= 0 && op->nopnd != need)
    return err(c, L, "'%s' takes %s operand(s)", kw,
               need == 0   ? "no"
               : need == 1 ? "one"
               : need == 2 ? "two"
                           : "three");
  return IR_OK;
}

static ir_status block(vctx *c, const ir_block *b, const ir_type *const *yield_types, int nyield) {
  ir_status s = IR_OK;
  for (const ir_op *op = b->first; op && !s; op = op->next) {
    if (op->code == IR_OP_YIELD) {
      if (!b->parent)
        s = err(c, op->loc, "'yield' outside a region");
      else if (op->next)
        s = err(c, op->loc, "'yield' must end its region");
      else if (op->nopnd != nyield)
        s = err(c, op->loc,
                "'yield' passes a different number of values than its op has "
                "results");
      for (int i = 0; !s && i < op->nopnd; i++) {
        char b1[128];
        if (!c->visible[op->operands[i]->id])
          s = err(c, op->loc, "yielded value %%%s does not dominate the yield",
                  vn(op->operands[i]));
        else if (!same(op->operands[i]->ty, yield_types[i]))
          s = err(c, op->loc, "yielded value %%%s must have type %s", vn(op->operands[i]),
                  tname(c, yield_types[i], b1));
      }
      continue;
    }
    s = check_op(c, op);
    for (int i = 0; !s && i < op->nres; i++)
      c->visible[op->results[i]->id] = true;
  }
  if (!s && b->parent && (!b->last || b->last->code != IR_OP_YIELD))
    s = err(c, b->parent->loc, "region must end with 'yield'");
  /* leaving the block: its values go out of scope */
  for (const ir_op *op = b->first; op; op = op->next)
    for (int i = 0; i < op->nres; i++)
      c->visible[op->results[i]->id] = false;
  return s;
}

static ir_status check_header(vctx *c) {
  const ir_kernel *k = c->k;
  for (int i = 0; i < k->nsyms; i++) {
    const ir_sym *s = &k->syms[i];
    if (s->kind == SYM_TUNABLE) {
      bool in = false;
      for (int j = 0; j < s->ndomain; j++)
        in |= s->domain[j] == s->def.i;
      if (!in)
        return err(c, s->loc, "default of tunable '%s' is not in its domain", s->name);
    }
  }
  for (int i = 0; i < k->nconstraints; i++)
    if (uses_runtime(k, k->constraints[i]))
      return err(c, k->constraints[i]->loc,
                 "constraints may use only tunables and const parameters");
  if (k->ngrid < 1 || k->ngrid > 3)
    return err(c, (ir_loc){k->file, 0, 0}, "kernel needs a grid of 1 to 3 dims");
  for (int i = 0; i < k->nbuckets; i++) {
    const ir_bucket *bk = &k->buckets[i];
    if (bk->sym < 0 || bk->sym >= k->nsyms)
      return err(c, bk->loc, "bucket names no symbol");
    const ir_sym *s = &k->syms[bk->sym];
    if (s->kind != SYM_DIM && s->kind != SYM_PARAM)
      return err(c, bk->loc, "bucket of '%s': only dims and runtime parameters can be bucketed",
                 s->name);
    if ((bk->kind == IR_BUCKET_MULTIPLE) != (bk->arg >= 1) || bk->kind > IR_BUCKET_ANY)
      return err(c, bk->loc, "bucket of '%s' is malformed", s->name);
    for (int j = 0; j < i; j++)
      if (k->buckets[j].sym == bk->sym)
        return err(c, bk->loc, "bucket of '%s' declared twice", s->name);
  }
  for (int i = 0; i < k->nargs; i++) {
    const ir_arg *a = &k->args[i];
    if (a->kind == ARG_TENSOR) {
      const ir_type *t = a->value->ty;
      if (t->kind != IR_TENSOR || t->elem->kind == IR_PTR)
        return err(c, a->loc, "tensor argument '%s' is malformed", a->name);
      if (t->elem->kind == IR_TVAR && (t->elem->tvar < 0 || t->elem->tvar >= k->ntvars))
        return err(c, a->loc, "bad type variable in '%s'", a->name);
      c->visible[a->value->id] = true;
    } else if (a->kind == ARG_PTR) {
      ir_status s = check_type(c, a->loc, a->value->ty);
      if (s)
        return s;
      c->visible[a->value->id] = true;
    }
  }
  return IR_OK;
}

ir_status ir_verify(const ir_kernel *k, ir_diag *d) {
  vctx c = {k, d, calloc((size_t)k->nvalues + 1, sizeof(bool))};
  if (!c.visible)
    return ir_error(d, IR_ERR_VERIFY, (ir_loc){k->file, 0, 0}, NULL, "out of memory");
  ir_status s = check_header(&c);
  if (!s)
    s = block(&c, k->body, NULL, 0);
  free(c.visible);
  return s;
}
