/* ir/exec.c — execution helpers shared by the interpreter and the GPU-IR simulator.
 *
 * Moved out of ir/interp.c unchanged in behaviour: element conversions and rounding, buffer
 * element access in storage form, pointer cells, the elementwise op kernels and the binding of
 * launch arguments to symbols. See ir/exec.h.
 */
#include "exec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- scalar conversions --------------------------------------------------------------- */

static bool isf(ir_kind k) { return ir_kind_is_float(k); }
static bool isi(ir_kind k) { return ir_kind_is_int(k); }

static int width(ir_kind k) { return k == IR_I1 ? 1 : ir_kind_bits(k); }

/* Wraps to the width of an integer kind (two's complement; gcc and clang define the narrowing
 * conversions as modular). */
int64_t ir_exec_wrap(ir_kind k, int64_t v) {
  switch (k) {
  case IR_I1:
    return v & 1;
  case IR_I8:
    return (int8_t)v;
  case IR_I16:
    return (int16_t)v;
  case IR_I32:
    return (int32_t)v;
  default:
    return v;
  }
}

/* Float to integer kind: truncates, NaN -> 0, saturates beyond int64, wraps (i1: x != 0). */
static int64_t f2i(ir_kind k, double x) {
  double t = ir_round_to(k, x);
  return t >= 0x1p63 ? INT64_MAX : t < -0x1p63 ? INT64_MIN : (int64_t)t;
}

/* Integer to float kind, rounded once: beyond 2^53 the double is formed with a sticky bit
 * (round to odd) so that rounding it again to a narrower kind is still exact. */
double ir_exec_i2f(ir_kind k, int64_t v) {
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  if (k == IR_F64 || u <= (UINT64_C(1) << 53))
    return ir_round_to(k, (double)v);
  int sh = 64 - __builtin_clzll(u) - 53;
  uint64_t m = u >> sh;
  if (u & ((UINT64_C(1) << sh) - 1))
    m |= 1;
  double d = ldexp((double)m, sh);
  return ir_round_to(k, v < 0 ? -d : d);
}

/* One element converted from kind `from` to kind `to` (the cast op's rules). */
ir_cell ir_exec_conv(ir_kind from, ir_kind to, ir_cell c) {
  ir_cell r = c;
  if (isf(from) && isf(to))
    r.f = ir_round_to(to, c.f);
  else if (isf(from) && isi(to))
    r.i = f2i(to, c.f);
  else if (isi(from) && isf(to))
    r.f = ir_exec_i2f(to, c.i);
  else if (isi(from) && isi(to))
    r.i = to == IR_I1 ? c.i != 0 : ir_exec_wrap(to, c.i);
  return r;
}

ir_cell ir_exec_from_num(ir_kind k, ir_num v) {
  return v.isf ? ir_exec_conv(IR_F64, k, (ir_cell){.f = v.f})
               : ir_exec_conv(IR_I64, k, (ir_cell){.i = v.i});
}

void ir_exec_round(ir_kind k, ir_cell *r, int64_t n) {
  switch (k) {
  case IR_F64:
    return;
  case IR_F32:
    for (int64_t i = 0; i < n; i++)
      r[i].f = (float)r[i].f;
    return;
  default:
    for (int64_t i = 0; i < n; i++)
      r[i].f = ir_round_to(k, r[i].f);
    return;
  }
}

void ir_exec_wrap_cells(ir_kind k, ir_cell *r, int64_t n) {
  switch (k) {
  case IR_I1:
    for (int64_t i = 0; i < n; i++)
      r[i].i &= 1;
    return;
  case IR_I8:
    for (int64_t i = 0; i < n; i++)
      r[i].i = (int8_t)r[i].i;
    return;
  case IR_I16:
    for (int64_t i = 0; i < n; i++)
      r[i].i = (int16_t)r[i].i;
    return;
  case IR_I32:
    for (int64_t i = 0; i < n; i++)
      r[i].i = (int32_t)r[i].i;
    return;
  default:
    return;
  }
}

/* ---- buffers -------------------------------------------------------------------------- */

static void st_int(ir_kind k, unsigned char *p, int64_t e, int64_t v) {
  switch (k) {
  case IR_I1:
    p[e] = v != 0;
    break;
  case IR_I8:
    p[e] = (unsigned char)v;
    break;
  case IR_I16: {
    int16_t w = (int16_t)v;
    memcpy(p + 2 * e, &w, 2);
    break;
  }
  case IR_I32: {
    int32_t w = (int32_t)v;
    memcpy(p + 4 * e, &w, 4);
    break;
  }
  default:
    memcpy(p + 8 * e, &v, 8);
    break;
  }
}

/* Reads n elements of kind k at element offsets e, e+st, ... into out. */
void ir_exec_read(ir_kind k, const void *base, int64_t e, int64_t st, int64_t n, ir_cell *out) {
  const unsigned char *p = base;
  switch (k) {
  case IR_F32:
    for (int64_t i = 0; i < n; i++) {
      float v;
      memcpy(&v, p + 4 * (e + i * st), 4);
      out[i].f = v;
    }
    return;
  case IR_F64:
    for (int64_t i = 0; i < n; i++)
      memcpy(&out[i].f, p + 8 * (e + i * st), 8);
    return;
  case IR_BF16:
    for (int64_t i = 0; i < n; i++) {
      uint16_t b;
      memcpy(&b, p + 2 * (e + i * st), 2);
      uint32_t u = (uint32_t)b << 16;
      float v;
      memcpy(&v, &u, 4);
      out[i].f = v;
    }
    return;
  case IR_F16:
    for (int64_t i = 0; i < n; i++) {
      uint16_t b;
      memcpy(&b, p + 2 * (e + i * st), 2);
      out[i].f = ir_f16_bits_to_f64(b);
    }
    return;
  case IR_F8E4M3:
  case IR_F8E5M2:
    for (int64_t i = 0; i < n; i++)
      out[i].f = ir_f8_bits_to_f64(k, p[e + i * st]);
    return;
  default:
    for (int64_t i = 0; i < n; i++)
      out[i].i = ir_buf_get_int(k, p, e + i * st);
    return;
  }
}

/* Writes n elements (exact values of kind k) at element offsets e, e+st, ... */
void ir_exec_write(ir_kind k, void *base, int64_t e, int64_t st, int64_t n, const ir_cell *in) {
  unsigned char *p = base;
  switch (k) {
  case IR_F32:
    for (int64_t i = 0; i < n; i++) {
      float v = (float)in[i].f;
      memcpy(p + 4 * (e + i * st), &v, 4);
    }
    return;
  case IR_F64:
    for (int64_t i = 0; i < n; i++)
      memcpy(p + 8 * (e + i * st), &in[i].f, 8);
    return;
  case IR_BF16:
    for (int64_t i = 0; i < n; i++) {
      uint16_t b = ir_f32_to_bf16_bits((float)in[i].f);
      memcpy(p + 2 * (e + i * st), &b, 2);
    }
    return;
  case IR_F16:
    for (int64_t i = 0; i < n; i++) {
      uint16_t b = ir_f64_to_f16_bits(in[i].f);
      memcpy(p + 2 * (e + i * st), &b, 2);
    }
    return;
  case IR_F8E4M3:
  case IR_F8E5M2:
    for (int64_t i = 0; i < n; i++)
      p[e + i * st] = ir_f64_to_f8_bits(k, in[i].f);
    return;
  default:
    for (int64_t i = 0; i < n; i++)
      st_int(k, p, e + i * st, in[i].i);
    return;
  }
}

/* ---- pointers ------------------------------------------------------------------------- */

int64_t ir_exec_ptr_make(int arg, int64_t off) {
  return (int64_t)(((uint64_t)(arg + 1) << 48) + (uint64_t)off);
}

/* The argument a pointer ir_cell refers to (-1 for none) and its element offset. */
int ir_exec_ptr_arg(int64_t p, int64_t *off) {
  uint64_t a = ((uint64_t)p + (uint64_t)IR_EXEC_PTR_BIAS) >> 48;
  *off = (int64_t)((uint64_t)p - (a << 48));
  return a >= 1 && a <= IR_MAX_ARGS ? (int)a - 1 : -1;
}

/* ---- elementwise kernels -------------------------------------------------------------- */

#define LOOP2(dst, expr)                                                                           \
  for (int64_t i = 0; i < n; i++) {                                                                \
    x = a[i * sa].dst;                                                                             \
    y = b[i * sb].dst;                                                                             \
    r[i].dst = (expr);                                                                             \
  }

static const char *fbinary(ir_opcode code, ir_cell *r, const ir_cell *a, int64_t sa,
                           const ir_cell *b, int64_t sb, int64_t n) {
  double x, y;
  switch (code) {
  case IR_OP_ADD:
    LOOP2(f, x + y);
    break;
  case IR_OP_SUB:
    LOOP2(f, x - y);
    break;
  case IR_OP_MUL:
    LOOP2(f, x * y);
    break;
  case IR_OP_DIV:
    LOOP2(f, x / y);
    break;
  case IR_OP_REM:
    LOOP2(f, fmod(x, y));
    break;
  case IR_OP_CDIV:
    LOOP2(f, ceil(x / y));
    break;
  case IR_OP_MAX:
    LOOP2(f, isnan(x) || isnan(y) ? NAN : x > y ? x : y);
    break;
  case IR_OP_MIN:
    LOOP2(f, isnan(x) || isnan(y) ? NAN : x < y ? x : y);
    break;
  default:
    return "integer operands expected";
  }
  return NULL;
}

static const char *ibinary(ir_opcode code, ir_kind k, ir_cell *r, const ir_cell *a, int64_t sa,
                           const ir_cell *b, int64_t sb, int64_t n) {
  int64_t x, y;
  uint64_t w = (uint64_t)width(k);
  switch (code) {
  case IR_OP_ADD:
    LOOP2(i, (int64_t)((uint64_t)x + (uint64_t)y));
    break;
  case IR_OP_SUB:
    LOOP2(i, (int64_t)((uint64_t)x - (uint64_t)y));
    break;
  case IR_OP_MUL:
    LOOP2(i, (int64_t)((uint64_t)x * (uint64_t)y));
    break;
  case IR_OP_MAX:
    LOOP2(i, x > y ? x : y);
    break;
  case IR_OP_MIN:
    LOOP2(i, x < y ? x : y);
    break;
  case IR_OP_AND:
    LOOP2(i, x & y);
    break;
  case IR_OP_OR:
    LOOP2(i, x | y);
    break;
  case IR_OP_XOR:
    LOOP2(i, x ^ y);
    break;
  case IR_OP_SHL:
    LOOP2(i, (uint64_t)y >= w ? 0 : (int64_t)((uint64_t)x << y));
    break;
  case IR_OP_SHR:
    LOOP2(i, (uint64_t)y >= w ? (x < 0 ? -1 : 0) : x < 0 ? ~(~x >> y) : x >> y);
    break;
  case IR_OP_DIV:
  case IR_OP_REM:
  case IR_OP_CDIV:
    for (int64_t i = 0; i < n; i++) {
      x = a[i * sa].i;
      y = b[i * sb].i;
      if (y == 0)
        return "integer division by zero";
      int64_t q = y == -1 ? (int64_t)(0 - (uint64_t)x) : x / y; /* no INT64_MIN / -1 trap */
      int64_t m = y == -1 ? 0 : x % y;
      if (code == IR_OP_REM)
        q = m;
      else if (code == IR_OP_CDIV && m != 0 && (x < 0) == (y < 0))
        q++;
      r[i].i = q;
    }
    break;
  default:
    return "unsupported operands";
  }
  return NULL;
}

const char *ir_exec_binary(ir_opcode code, ir_kind k, ir_cell *r, const ir_cell *a, int64_t sa,
                           const ir_cell *b, int64_t sb, int64_t n) {
  const char *e;
  if (isf(k)) {
    if ((e = fbinary(code, r, a, sa, b, sb, n)))
      return e;
    ir_exec_round(k, r, n);
  } else if (isi(k)) {
    if ((e = ibinary(code, k, r, a, sa, b, sb, n)))
      return e;
    ir_exec_wrap_cells(k, r, n);
  } else {
    return "numeric operands expected";
  }
  return NULL;
}

#define LOOP1(dst, expr)                                                                           \
  for (int64_t i = 0; i < n; i++) {                                                                \
    x = a[i * sa].dst;                                                                             \
    r[i].dst = (expr);                                                                             \
  }

const char *ir_exec_unary(ir_opcode code, ir_kind k, ir_cell *r, const ir_cell *a, int64_t sa,
                          int64_t n) {
  if (isi(k)) {
    int64_t x;
    switch (code) {
    case IR_OP_NEG:
      LOOP1(i, (int64_t)(0 - (uint64_t)x));
      break;
    case IR_OP_ABS:
      LOOP1(i, x < 0 ? (int64_t)(0 - (uint64_t)x) : x);
      break;
    default:
      return "float operand expected";
    }
    ir_exec_wrap_cells(k, r, n);
    return NULL;
  }
  if (!isf(k))
    return "numeric operand expected";
  double x;
  switch (code) {
  case IR_OP_NEG:
    LOOP1(f, -x);
    break;
  case IR_OP_ABS:
    LOOP1(f, fabs(x));
    break;
  case IR_OP_EXP:
    LOOP1(f, exp(x));
    break;
  case IR_OP_EXP2:
    LOOP1(f, exp2(x));
    break;
  case IR_OP_LOG:
    LOOP1(f, log(x));
    break;
  case IR_OP_LOG2:
    LOOP1(f, log2(x));
    break;
  case IR_OP_SQRT:
    LOOP1(f, sqrt(x));
    break;
  case IR_OP_RSQRT:
    LOOP1(f, 1 / sqrt(x));
    break;
  default:
    return "unsupported operand";
  }
  ir_exec_round(k, r, n);
  return NULL;
}

const char *ir_exec_compare(int pred, ir_kind k, ir_cell *r, const ir_cell *a, int64_t sa,
                            const ir_cell *b, int64_t sb, int64_t n) {
#define CMPS(dst)                                                                                  \
  switch (pred) {                                                                                  \
  case IR_CMP_EQ:                                                                                  \
    for (int64_t i = 0; i < n; i++)                                                                \
      r[i].i = a[i * sa].dst == b[i * sb].dst;                                                     \
    break;                                                                                         \
  case IR_CMP_NE:                                                                                  \
    for (int64_t i = 0; i < n; i++)                                                                \
      r[i].i = a[i * sa].dst != b[i * sb].dst;                                                     \
    break;                                                                                         \
  case IR_CMP_LT:                                                                                  \
    for (int64_t i = 0; i < n; i++)                                                                \
      r[i].i = a[i * sa].dst < b[i * sb].dst;                                                      \
    break;                                                                                         \
  case IR_CMP_LE:                                                                                  \
    for (int64_t i = 0; i < n; i++)                                                                \
      r[i].i = a[i * sa].dst <= b[i * sb].dst;                                                     \
    break;                                                                                         \
  case IR_CMP_GT:                                                                                  \
    for (int64_t i = 0; i < n; i++)                                                                \
      r[i].i = a[i * sa].dst > b[i * sb].dst;                                                      \
    break;                                                                                         \
  case IR_CMP_GE:                                                                                  \
    for (int64_t i = 0; i < n; i++)                                                                \
      r[i].i = a[i * sa].dst >= b[i * sb].dst;                                                     \
    break;                                                                                         \
  default:                                                                                         \
    return "unknown predicate";                                                                    \
  }
  if (isf(k)) {
    CMPS(f)
  } else {
    CMPS(i)
  }
#undef CMPS
  return NULL;
}

void ir_exec_select(ir_cell *r, const ir_cell *c, int64_t sc, const ir_cell *a, int64_t sa,
                    const ir_cell *b, int64_t sb, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    r[i] = c[i * sc].i ? a[i * sa] : b[i * sb];
}

void ir_exec_cast(ir_kind from, ir_kind to, ir_cell *r, const ir_cell *a, int64_t sa, int64_t n) {
  if (isf(from) && isf(to)) {
    for (int64_t i = 0; i < n; i++)
      r[i].f = a[i * sa].f;
    ir_exec_round(to, r, n);
  } else {
    for (int64_t i = 0; i < n; i++)
      r[i] = ir_exec_conv(from, to, a[i * sa]);
  }
}

/* ---- launch binding ------------------------------------------------------------------- */

static ir_status arg_error(const ir_kernel *k, int a, ir_diag *d, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static ir_status arg_error(const ir_kernel *k, int a, ir_diag *d, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ir_loc loc = a >= 0 ? k->args[a].loc : (ir_loc){k->file, 0, 0};
  return ir_error(d, IR_ERR_RUNTIME, loc, k->source, "%s", msg);
}

ir_status ir_exec_bind(const ir_kernel *k, const ir_argval *args, int nargs, ir_kind *argkind,
                       ir_num *symv, bool *symset, int64_t grid[3], int64_t *nprog, ir_diag *d) {
  if (nargs != k->nargs)
    return arg_error(k, -1, d, "kernel '%s' takes %d arguments, got %d", k->name, k->nargs, nargs);
  if (k->nargs > IR_MAX_ARGS)
    return arg_error(k, -1, d, "more than %d arguments", IR_MAX_ARGS);
  for (int a = 0; a < nargs; a++) {
    const ir_arg *ka = &k->args[a];
    const ir_argval *v = &args[a];
    if (v->kind != ka->kind)
      return arg_error(k, a, d, "argument '%s' is passed as the wrong kind", ka->name);
    if (ka->kind == ARG_SCALAR)
      continue;
    const ir_type *t = ka->value ? ka->value->ty : NULL;
    if (!t || !t->elem || t->elem->kind <= IR_VOID || t->elem->kind >= IR_NSCALAR)
      return arg_error(k, a, d, "argument '%s' has no scalar element type", ka->name);
    argkind[a] = t->elem->kind;
    if (v->count < 0 || (v->count > 0 && !v->data))
      return arg_error(k, a, d, "argument '%s' has no data", ka->name);
    if (ka->kind != ARG_TENSOR)
      continue;
    if (t->kind != IR_TENSOR || v->rank != t->rank || v->rank < 1 || v->rank > IR_MAX_RANK)
      return arg_error(k, a, d, "tensor '%s' has rank %d; the kernel expects %d", ka->name, v->rank,
                       t->rank);
    int64_t lo = 0, hi = 0; /* lowest and highest element offsets the tensor reaches */
    bool empty = false, over = false;
    for (int i = 0; i < v->rank; i++) {
      if (v->shape[i] < 0 || v->shape[i] > IR_EXEC_MAX_DIM)
        return arg_error(k, a, d, "tensor '%s' dim %d is %lld, outside 0..2^48", ka->name, i,
                         (long long)v->shape[i]);
      int64_t span = 0;
      empty |= v->shape[i] == 0;
      over |= __builtin_mul_overflow(v->shape[i] > 0 ? v->shape[i] - 1 : 0, v->stride[i], &span);
      over |=
          span < 0 ? __builtin_add_overflow(lo, span, &lo) : __builtin_add_overflow(hi, span, &hi);
    }
    if (!empty && (over || lo < 0 || hi >= v->count))
      return arg_error(k, a, d, "tensor '%s' reaches elements %lld..%lld but its buffer has %lld",
                       ka->name, (long long)lo, (long long)hi, (long long)v->count);
  }
  for (int s = 0; s < k->nsyms; s++) {
    const ir_sym *sy = &k->syms[s];
    if (sy->kind == SYM_DIM) {
      if (sy->arg < 0 || sy->arg >= nargs || args[sy->arg].kind != ARG_TENSOR || sy->argdim < 0 ||
          sy->argdim >= args[sy->arg].rank)
        return arg_error(k, -1, d, "dim '%s' is not bound to a tensor", sy->name);
      symv[s] = (ir_num){.i = args[sy->arg].shape[sy->argdim]};
      symset[s] = true;
    } else if (sy->kind == SYM_PARAM) {
      if (sy->arg < 0 || sy->arg >= nargs || args[sy->arg].kind != ARG_SCALAR)
        return arg_error(k, -1, d, "parameter '%s' is not a scalar argument", sy->name);
      ir_num v = args[sy->arg].scalar;
      if (isi(sy->ty)) {
        if (v.isf) {
          if (v.f != trunc(v.f) || !(fabs(v.f) < 0x1p62))
            return arg_error(k, sy->arg, d, "parameter '%s' is an integer, got %g", sy->name, v.f);
          v = (ir_num){.i = (int64_t)v.f};
        }
        if (v.i != (sy->ty == IR_I1 ? (v.i != 0) : ir_exec_wrap(sy->ty, v.i)))
          return arg_error(k, sy->arg, d, "parameter '%s' = %lld does not fit %s", sy->name,
                           (long long)v.i, ir_kind_name(sy->ty));
      } else {
        v = (ir_num){.isf = true, .f = v.isf ? v.f : ir_exec_i2f(sy->ty, v.i)};
        v.f = ir_round_to(sy->ty, v.f);
      }
      symv[s] = v;
      symset[s] = true;
    } else if (sy->has_default) {
      symv[s] = sy->def;
      symset[s] = true;
    }
  }
  for (int a = 0; a < nargs; a++) {
    if (k->args[a].kind != ARG_TENSOR)
      continue;
    const ir_type *t = k->args[a].value->ty;
    for (int i = 0; i < t->rank; i++) {
      ir_num want;
      const ir_expr *e = t->dims[i];
      if (!e || ir_expr_eval(k, e, symv, symset, &want, d))
        return arg_error(k, a, d, "tensor '%s' dim %d has no value", k->args[a].name, i);
      if (!want.isf && want.i == args[a].shape[i])
        continue;
      if (e->kind == EX_SYM)
        return arg_error(k, a, d, "tensor '%s' dim %d is %lld but %s = %lld", k->args[a].name, i,
                         (long long)args[a].shape[i], k->syms[e->sym].name, (long long)want.i);
      return arg_error(k, a, d, "tensor '%s' dim %d is %lld but the kernel expects %lld",
                       k->args[a].name, i, (long long)args[a].shape[i], (long long)want.i);
    }
  }
  grid[0] = grid[1] = grid[2] = 1;
  *nprog = 1;
  if (k->ngrid < 1 || k->ngrid > 3)
    return arg_error(k, -1, d, "kernel '%s' has no grid", k->name);
  for (int g = 0; g < k->ngrid; g++) {
    ir_num v;
    if (!k->grid[g] || ir_expr_eval(k, k->grid[g], symv, symset, &v, d))
      return d->status = IR_ERR_RUNTIME;
    if (v.isf || v.i < 0 || v.i > IR_EXEC_MAX_PROGRAMS)
      return ir_error(d, IR_ERR_RUNTIME, k->grid[g]->loc, k->source,
                      "grid dim %d must be an integer in 0..2^31", g);
    grid[g] = v.i;
    *nprog *= v.i;
    if (*nprog > IR_EXEC_MAX_PROGRAMS)
      return ir_error(d, IR_ERR_RUNTIME, k->grid[g]->loc, k->source,
                      "the grid has more than 2^31 programs");
  }
  return IR_OK;
}
