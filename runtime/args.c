/* runtime/args.c — the kernel ABI: packing the launch arguments of a specialized tile kernel into
 * the parameter list its PTX declares, and evaluating its grid.
 *
 * Pure CPU code (no driver): the same checks as the interpreter's argument binding (kinds, ranks,
 * dims shared between tensors, literal and const dims, scalar ranges), then one parameter per
 * pointer, shape entry, stride entry and runtime scalar, each at its natural alignment. The ABI
 * is written down in docs/runtime.md; codegen/ emits kernels whose .param lists follow it.
 */
#include <math.h>
#include <string.h>

#include "runtime/rt_impl.h"

/* Appends one parameter of `size` bytes (1, 2, 4 or 8; aligned to its size). */
static rt_status put(rt_params *p, const void *v, size_t size, const ir_arg *a, rt_err *e) {
  size_t off = (p->size + size - 1) & ~(size - 1);
  if (p->count >= RT_MAX_PARAMS || off + size > RT_MAX_PARAM_BYTES)
    return rt_fail(e, RT_ERR_ARG, "argument '%s': the kernel's parameters exceed %d bytes", a->name,
                   RT_MAX_PARAM_BYTES);
  memcpy(p->buf + off, v, size);
  p->offset[p->count] = (uint16_t)off;
  p->psize[p->count] = (uint8_t)size;
  p->count++;
  p->size = off + size;
  return RT_OK;
}

/* The bit pattern of scalar v as kind k, in *bits (size in *size). Checks integer ranges. */
static rt_status encode_scalar(const ir_sym *s, ir_num v, uint64_t *bits, size_t *size, rt_err *e) {
  ir_kind k = s->ty;
  if (ir_kind_is_int(k)) {
    if (v.isf) {
      if (v.f != trunc(v.f) || !(fabs(v.f) < 0x1p62))
        return rt_fail(e, RT_ERR_ARG, "parameter '%s' is an integer, got %g", s->name, v.f);
      v = (ir_num){.i = (int64_t)v.f};
    }
    int bits_n = k == IR_I1 ? 1 : ir_kind_bits(k);
    bool fits = k == IR_I1 ? (v.i == 0 || v.i == 1)
                : bits_n == 64
                    ? true
                    : v.i >= -(INT64_C(1) << (bits_n - 1)) && v.i < (INT64_C(1) << (bits_n - 1));
    if (!fits)
      return rt_fail(e, RT_ERR_ARG, "parameter '%s' = %lld does not fit %s", s->name,
                     (long long)v.i, ir_kind_name(k));
    *bits = (uint64_t)v.i;
    *size = k == IR_I1 ? 1 : (size_t)bits_n / 8;
    return RT_OK;
  }
  double x = v.isf ? v.f : (double)v.i;
  switch (k) {
  case IR_F64:
    memcpy(bits, &x, 8);
    *size = 8;
    return RT_OK;
  case IR_F32: {
    float f = (float)x;
    uint32_t u;
    memcpy(&u, &f, 4);
    *bits = u;
    *size = 4;
    return RT_OK;
  }
  case IR_F16:
    *bits = ir_f64_to_f16_bits(x);
    *size = 2;
    return RT_OK;
  case IR_BF16:
    /* ir_round_to gives the exact bf16 value, which converts to f32 and to bits exactly. */
    *bits = ir_f32_to_bf16_bits((float)ir_round_to(IR_BF16, x));
    *size = 2;
    return RT_OK;
  case IR_F8E4M3:
  case IR_F8E5M2:
    *bits = ir_f64_to_f8_bits(k, x);
    *size = 1;
    return RT_OK;
  default:
    return rt_fail(e, RT_ERR_ARG, "parameter '%s' has type %s, which has no kernel ABI", s->name,
                   ir_kind_name(k));
  }
}

/* Writes the little-endian low `size` bytes of bits as one parameter. */
static rt_status put_bits(rt_params *p, uint64_t bits, size_t size, const ir_arg *a, rt_err *e) {
  unsigned char b[8];
  for (size_t i = 0; i < 8; i++)
    b[i] = (unsigned char)(bits >> (8 * i));
  return put(p, b, size, a, e);
}

/* Binds every symbol's value: dims from tensor shapes, parameters from scalars, tunables and
 * consts from their (specialized) defaults. */
static rt_status bind(const ir_kernel *k, const rt_argval *args, ir_num *vals, bool *set,
                      rt_err *e) {
  for (int s = 0; s < k->nsyms; s++) {
    const ir_sym *sy = &k->syms[s];
    if (sy->kind == SYM_DIM) {
      if (sy->arg < 0 || sy->arg >= k->nargs || args[sy->arg].kind != ARG_TENSOR ||
          sy->argdim < 0 || sy->argdim >= args[sy->arg].rank)
        return rt_fail(e, RT_ERR_ARG, "dim '%s' is not bound to a tensor", sy->name);
      vals[s] = (ir_num){.i = args[sy->arg].shape[sy->argdim]};
      set[s] = true;
    } else if (sy->kind == SYM_PARAM) {
      if (sy->arg < 0 || sy->arg >= k->nargs || args[sy->arg].kind != ARG_SCALAR)
        return rt_fail(e, RT_ERR_ARG, "parameter '%s' is not a scalar argument", sy->name);
      ir_num v = args[sy->arg].scalar;
      if (ir_kind_is_int(sy->ty) && v.isf) /* range-checked when packed */
        v = (ir_num){.i = fabs(v.f) < 0x1p62 ? (int64_t)v.f : 0};
      else if (ir_kind_is_float(sy->ty) && !v.isf)
        v = (ir_num){.isf = true, .f = (double)v.i};
      vals[s] = v;
      set[s] = true;
    } else if (sy->has_default) {
      vals[s] = sy->def;
      set[s] = true;
    }
  }
  return RT_OK;
}

static rt_status check_tensor(const ir_kernel *k, int a, const rt_argval *v, const ir_num *vals,
                              const bool *set, rt_err *e) {
  const ir_arg *ka = &k->args[a];
  const ir_type *t = ka->value ? ka->value->ty : NULL;
  if (!t || t->kind != IR_TENSOR)
    return rt_fail(e, RT_ERR_ARG, "argument '%s' is not a tensor in the kernel", ka->name);
  if (v->rank != t->rank)
    return rt_fail(e, RT_ERR_ARG, "tensor '%s' has rank %d; the kernel expects %d", ka->name,
                   v->rank, t->rank);
  for (int i = 0; i < t->rank; i++) {
    if (v->shape[i] < 0 || v->shape[i] > INT32_MAX)
      return rt_fail(e, RT_ERR_ARG, "tensor '%s' dim %d is %lld, outside 0 .. 2^31-1", ka->name, i,
                     (long long)v->shape[i]);
    ir_num want;
    ir_diag d;
    if (!t->dims[i] || ir_expr_eval(k, t->dims[i], vals, set, &want, &d) || want.isf)
      return rt_fail(e, RT_ERR_ARG, "tensor '%s' dim %d has no value", ka->name, i);
    if (want.i != v->shape[i]) {
      if (t->dims[i]->kind == EX_SYM)
        return rt_fail(e, RT_ERR_ARG, "tensor '%s' dim %d is %lld but %s = %lld", ka->name, i,
                       (long long)v->shape[i], k->syms[t->dims[i]->sym].name, (long long)want.i);
      return rt_fail(e, RT_ERR_ARG, "tensor '%s' dim %d is %lld; the kernel expects %lld", ka->name,
                     i, (long long)v->shape[i], (long long)want.i);
    }
  }
  return RT_OK;
}

int rt_elem_bytes(ir_kind k) { return k == IR_I1 ? 1 : ir_kind_bits(k) / 8; }

bool rt_args_aligned(const ir_kernel *k, const rt_argval *args, int nargs, int *bad) {
  int dummy;
  bad = bad ? bad : &dummy;
  *bad = -1;
  if (!k || !args || nargs != k->nargs)
    return false;
  for (int a = 0; a < nargs; a++) {
    const rt_argval *x = &args[a];
    if (x->kind != k->args[a].kind) {
      *bad = -1;
      return false;
    }
    *bad = a;
    if (x->kind != ARG_TENSOR)
      continue;
    const ir_type *t = k->args[a].value->ty;
    int64_t es = rt_elem_bytes(t->elem->kind);
    int r = x->rank;
    if (r < 1 || r > IR_MAX_RANK || x->dptr % 16 || x->stride[r - 1] != 1 ||
        x->shape[r - 1] * es % 16)
      return false;
    for (int d = 0; d < r - 1; d++)
      if (x->stride[d] * es % 16)
        return false;
  }
  *bad = -1;
  return true;
}

rt_status rt_params_pack(const ir_kernel *k, const rt_argval *args, int nargs, rt_params *out,
                         rt_err *e) {
  out->count = 0;
  out->size = 0;
  out->grid[0] = out->grid[1] = out->grid[2] = 1;
  if (!k->specialized)
    return rt_fail(e, RT_ERR_ARG, "kernel '%s' is not specialized", k->name);
  if (nargs != k->nargs)
    return rt_fail(e, RT_ERR_ARG, "kernel '%s' takes %d arguments, got %d", k->name, k->nargs,
                   nargs);
  for (int a = 0; a < nargs; a++)
    if (args[a].kind != k->args[a].kind)
      return rt_fail(e, RT_ERR_ARG, "argument '%s' is passed as the wrong kind", k->args[a].name);
  ir_num vals[IR_MAX_SYMS];
  bool set[IR_MAX_SYMS];
  memset(vals, 0, sizeof vals);
  memset(set, 0, sizeof set);
  if (k->nsyms > IR_MAX_SYMS)
    return rt_fail(e, RT_ERR_ARG, "kernel '%s' has more than %d symbols", k->name, IR_MAX_SYMS);
  rt_status s = bind(k, args, vals, set, e);
  if (s)
    return s;

  for (int a = 0; a < nargs; a++) {
    const ir_arg *ka = &k->args[a];
    const rt_argval *v = &args[a];
    if (ka->kind == ARG_TENSOR) {
      if ((s = check_tensor(k, a, v, vals, set, e)) || (s = put_bits(out, v->dptr, 8, ka, e)))
        return s;
      for (int i = 0; i < v->rank; i++)
        if ((s = put_bits(out, (uint64_t)(uint32_t)v->shape[i], 4, ka, e)))
          return s;
      for (int i = 0; i < v->rank; i++)
        if ((s = put_bits(out, (uint64_t)v->stride[i], 8, ka, e)))
          return s;
    } else if (ka->kind == ARG_PTR) {
      if ((s = put_bits(out, v->dptr, 8, ka, e)))
        return s;
    } else {
      const ir_sym *sy = &k->syms[ka->sym];
      if (sy->kind == SYM_CONST) /* folded into the code: not a parameter */
        continue;
      uint64_t bits = 0;
      size_t size = 0;
      if ((s = encode_scalar(sy, v->scalar, &bits, &size, e)) ||
          (s = put_bits(out, bits, size, ka, e)))
        return s;
    }
  }

  static const int64_t limit[3] = {INT32_MAX, 65535, 65535};
  for (int i = 0; i < k->ngrid && i < 3; i++) {
    ir_num g;
    ir_diag d;
    if (ir_expr_eval(k, k->grid[i], vals, set, &g, &d))
      return rt_fail(e, RT_ERR_ARG, "grid dim %d of kernel '%s' cannot be evaluated: %s", i,
                     k->name, d.msg);
    if (g.isf || g.i < 0 || g.i > limit[i])
      return rt_fail(e, RT_ERR_ARG, "grid dim %d of kernel '%s' is %lld, outside 0 .. %lld", i,
                     k->name, g.isf ? -1LL : (long long)g.i, (long long)limit[i]);
    out->grid[i] = (uint32_t)g.i;
  }
  return RT_OK;
}

void rt_params_pointers(rt_params *p, void **ptrs) {
  for (int i = 0; i < p->count; i++)
    ptrs[i] = p->buf + p->offset[i];
}

rt_status rt_launch_params(rt_ctx *c, rt_func *f, const rt_launch_cfg *cfg, rt_params *p,
                           rt_err *e) {
  void *ptrs[RT_MAX_PARAMS];
  rt_params_pointers(p, ptrs);
  return rt_launch(c, f, cfg, ptrs, e);
}
