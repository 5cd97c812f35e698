/* ir/expr.c — symbolic integer/float expressions: construction, comparison, evaluation.
 *
 * Expressions describe tile dims, constraints, the grid and const ops. They are evaluated by
 * the specializer (compile-time symbols) and at launch (runtime dims and parameters); integer
 * overflow and division by zero are located errors, never undefined behaviour.
 */
#include "ir.h"

#include <math.h>

static ir_expr *mk(ir_arena *a, ir_expr_kind kind) {
  ir_expr *e = ir_alloc(a, sizeof *e);
  e->kind = kind;
  e->sym = -1;
  return e;
}

ir_expr *ir_expr_int(ir_arena *a, int64_t v) {
  ir_expr *e = mk(a, EX_INT);
  e->i = v;
  return e;
}

ir_expr *ir_expr_float(ir_arena *a, double v) {
  ir_expr *e = mk(a, EX_FLOAT);
  e->f = v;
  return e;
}

ir_expr *ir_expr_sym(ir_arena *a, int sym) {
  ir_expr *e = mk(a, EX_SYM);
  e->sym = sym;
  return e;
}

ir_expr *ir_expr_bin(ir_arena *a, int op, ir_expr *l, ir_expr *r) {
  bool call = op == EXO_CDIV || op == EXO_MIN || op == EXO_MAX;
  ir_expr *e = mk(a, call ? EX_CALL : r ? EX_BINARY : EX_UNARY);
  e->op = op;
  e->a = l;
  e->b = r;
  if (l)
    e->loc = l->loc;
  return e;
}

bool ir_expr_equal(const ir_expr *a, const ir_expr *b) {
  if (a == b)
    return true;
  if (!a || !b || a->kind != b->kind)
    return false;
  switch (a->kind) {
  case EX_INT:
    return a->i == b->i;
  case EX_FLOAT:
    return a->f == b->f || (isnan(a->f) && isnan(b->f));
  case EX_SYM:
    return a->sym == b->sym;
  default:
    return a->op == b->op && ir_expr_equal(a->a, b->a) && ir_expr_equal(a->b, b->b);
  }
}

bool ir_expr_is_int(const ir_expr *e, int64_t *v) {
  if (!e || e->kind != EX_INT)
    return false;
  if (v)
    *v = e->i;
  return true;
}

static double asf(ir_num n) { return n.isf ? n.f : (double)n.i; }

static ir_num inum(int64_t v) { return (ir_num){.i = v}; }
static ir_num fnum(double v) { return (ir_num){.isf = true, .f = v}; }

typedef struct {
  const ir_kernel *k;
  const ir_num *vals;
  const bool *set;
  ir_diag *d;
} evalctx;

static ir_status fail(evalctx *c, const ir_expr *e, const char *msg) {
  return ir_error(c->d, IR_ERR_CONFIG, e->loc, c->k ? c->k->source : NULL, "%s", msg);
}

static ir_status eval(evalctx *c, const ir_expr *e, ir_num *out, int depth) {
  if (depth > 4 * IR_MAX_DEPTH)
    return ir_error(c->d, IR_ERR_LIMIT, e->loc, NULL, "expression nested too deeply");
  switch (e->kind) {
  case EX_INT:
    *out = inum(e->i);
    return IR_OK;
  case EX_FLOAT:
    *out = fnum(e->f);
    return IR_OK;
  case EX_SYM:
    if (!c->set || !c->set[e->sym]) {
      const char *name =
          c->k && e->sym >= 0 && e->sym < c->k->nsyms ? c->k->syms[e->sym].name : "?";
      return ir_error(c->d, IR_ERR_CONFIG, e->loc, c->k ? c->k->source : NULL,
                      "symbol '%s' has no value here", name);
    }
    *out = c->vals[e->sym];
    return IR_OK;
  default:
    break;
  }
  ir_num a, b = {0};
  ir_status s = eval(c, e->a, &a, depth + 1);
  if (s)
    return s;
  if (e->kind == EX_UNARY) {
    if (e->op == '!')
      *out = inum(a.isf ? a.f == 0 : a.i == 0);
    else if (a.isf)
      *out = fnum(-a.f);
    else if (a.i == INT64_MIN)
      return fail(c, e, "integer overflow in expression");
    else
      *out = inum(-a.i);
    return IR_OK;
  }
  /* short-circuit logic */
  if (e->op == EXO_AND || e->op == EXO_OR) {
    bool av = a.isf ? a.f != 0 : a.i != 0;
    if (e->op == EXO_AND && !av) {
      *out = inum(0);
      return IR_OK;
    }
    if (e->op == EXO_OR && av) {
      *out = inum(1);
      return IR_OK;
    }
    if ((s = eval(c, e->b, &b, depth + 1)))
      return s;
    *out = inum(b.isf ? b.f != 0 : b.i != 0);
    return IR_OK;
  }
  if ((s = eval(c, e->b, &b, depth + 1)))
    return s;
  if (a.isf || b.isf) {
    double x = asf(a), y = asf(b);
    switch (e->op) {
    case '+':
      *out = fnum(x + y);
      return IR_OK;
    case '-':
      *out = fnum(x - y);
      return IR_OK;
    case '*':
      *out = fnum(x * y);
      return IR_OK;
    case '/':
      *out = fnum(x / y);
      return IR_OK;
    case '%':
      *out = fnum(fmod(x, y));
      return IR_OK;
    case '<':
      *out = inum(x < y);
      return IR_OK;
    case '>':
      *out = inum(x > y);
      return IR_OK;
    case EXO_LE:
      *out = inum(x <= y);
      return IR_OK;
    case EXO_GE:
      *out = inum(x >= y);
      return IR_OK;
    case EXO_EQ:
      *out = inum(x == y);
      return IR_OK;
    case EXO_NE:
      *out = inum(x != y);
      return IR_OK;
    case EXO_MIN:
      *out = fnum(fmin(x, y));
      return IR_OK;
    case EXO_MAX:
      *out = fnum(fmax(x, y));
      return IR_OK;
    case EXO_CDIV:
      *out = fnum(ceil(x / y));
      return IR_OK;
    default:
      return fail(c, e, "bad expression operator");
    }
  }
  int64_t x = a.i, y = b.i, r;
  switch (e->op) {
  case '+':
    if (__builtin_add_overflow(x, y, &r))
      return fail(c, e, "integer overflow in expression");
    break;
  case '-':
    if (__builtin_sub_overflow(x, y, &r))
      return fail(c, e, "integer overflow in expression");
    break;
  case '*':
    if (__builtin_mul_overflow(x, y, &r))
      return fail(c, e, "integer overflow in expression");
    break;
  case '/':
  case '%':
  case EXO_CDIV:
    if (y == 0)
      return fail(c, e, "division by zero in expression");
    if (x == INT64_MIN && y == -1)
      return fail(c, e, "integer overflow in expression");
    if (e->op == '/')
      r = x / y;
    else if (e->op == '%')
      r = x % y;
    else
      r = x / y + ((x % y != 0) && ((x < 0) == (y < 0)));
    break;
  case '<':
    r = x < y;
    break;
  case '>':
    r = x > y;
    break;
  case EXO_LE:
    r = x <= y;
    break;
  case EXO_GE:
    r = x >= y;
    break;
  case EXO_EQ:
    r = x == y;
    break;
  case EXO_NE:
    r = x != y;
    break;
  case EXO_MIN:
    r = x < y ? x : y;
    break;
  case EXO_MAX:
    r = x > y ? x : y;
    break;
  default:
    return fail(c, e, "bad expression operator");
  }
  *out = inum(r);
  return IR_OK;
}

ir_status ir_expr_eval(const ir_kernel *k, const ir_expr *e, const ir_num *vals, const bool *set,
                       ir_num *out, ir_diag *d) {
  evalctx c = {k, vals, set, d};
  return eval(&c, e, out, 0);
}
