/* api/builder.c — the public IR: parsing text, and the C builder over ir/'s irb_* calls.
 *
 * Public handles are the IR's own objects behind opaque names (tilec_value is an ir_value,
 * tilec_expr an ir_expr, tilec_type an ir_type); they live in the builder's arena and then in
 * the finished kernel. Errors follow irb_*'s rule: the first one is recorded and later calls do
 * nothing, so the caller checks once, at tilec_builder_finish.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "autotune/compile.h"

struct tilec_builder {
  ir_builder *b;
};

#define V(x) ((ir_value *)(x))
#define E(x) ((ir_expr *)(x))
#define T(x) ((const ir_type *)(x))

static tilec_status finish_ir(ir_kernel *k, tilec_ir **out) {
  ir_diag d;
  if (ir_verify(k, &d)) {
    ir_kernel_free(k);
    return api_fail(TILEC_ERR_ARG, "%s", d.msg);
  }
  tilec_ir *ir = calloc(1, sizeof *ir);
  at_err e = {0};
  if (!ir || at_kernel_hash(k, ir->hash, &e)) {
    free(ir);
    ir_kernel_free(k);
    return api_fail(TILEC_ERR_OOM, "out of memory");
  }
  ir->k = k;
  *out = ir;
  return TILEC_OK;
}

tilec_status tilec_ir_parse(const char *text, size_t len, const char *name, tilec_ir **out) {
  if (!out)
    return api_fail(TILEC_ERR_ARG, "tilec_ir_parse: out is NULL");
  *out = NULL;
  if (!text)
    return api_fail(TILEC_ERR_ARG, "tilec_ir_parse: text is NULL");
  ir_kernel *k = NULL;
  ir_diag d;
  if (ir_parse(text, len, name ? name : "<text>", &k, &d))
    return api_fail(TILEC_ERR_ARG, "%s", d.msg);
  return finish_ir(k, out);
}

char *tilec_ir_print(const tilec_ir *ir) { return ir ? ir_print(ir->k) : NULL; }

const char *tilec_ir_name(const tilec_ir *ir) { return ir ? ir->k->name : NULL; }

void tilec_ir_destroy(tilec_ir *ir) {
  if (!ir)
    return;
  ir_kernel_free(ir->k);
  free(ir);
}

tilec_status tilec_builder_create(const char *name, tilec_builder **out) {
  if (!out)
    return api_fail(TILEC_ERR_ARG, "tilec_builder_create: out is NULL");
  *out = NULL;
  if (!name || !*name)
    return api_fail(TILEC_ERR_ARG, "tilec_builder_create: a kernel name is required");
  tilec_builder *b = calloc(1, sizeof *b);
  if (!b || !(b->b = irb_new(name, "<builder>"))) {
    free(b);
    return api_fail(TILEC_ERR_OOM, "out of memory");
  }
  *out = b;
  return TILEC_OK;
}

void tilec_builder_abort(tilec_builder *b) {
  if (!b)
    return;
  irb_abort(b->b);
  free(b);
}

tilec_status tilec_builder_finish(tilec_builder *b, tilec_ir **out) {
  if (!out) {
    tilec_builder_abort(b);
    return api_fail(TILEC_ERR_ARG, "tilec_builder_finish: out is NULL");
  }
  *out = NULL;
  if (!b)
    return api_fail(TILEC_ERR_ARG, "tilec_builder_finish: builder is NULL");
  ir_kernel *k = NULL;
  ir_diag d;
  ir_status s = irb_finish(b->b, &k, &d);
  free(b);
  if (s)
    return api_fail(TILEC_ERR_ARG, "%s", d.msg);
  return finish_ir(k, out);
}

/* Whether the builder can take another call; a NULL builder or argument records nothing (there
 * is no builder to record in) and the call returns NULL / ARG. */
static bool usable(tilec_builder *b) { return b && !irb_failed(b->b); }

static tilec_status recorded(tilec_builder *b, const char *what) {
  if (!b)
    return api_fail(TILEC_ERR_ARG, "%s: builder is NULL", what);
  if (irb_failed(b->b))
    return api_fail(TILEC_ERR_ARG, "%s: an earlier builder call failed", what);
  return TILEC_OK;
}

tilec_expr *tilec_expr_int(tilec_builder *b, int64_t v) {
  return usable(b) ? (tilec_expr *)ir_expr_int(irb_arena(b->b), v) : NULL;
}

tilec_expr *tilec_expr_float(tilec_builder *b, double v) {
  return usable(b) ? (tilec_expr *)ir_expr_float(irb_arena(b->b), v) : NULL;
}

tilec_expr *tilec_expr_sym(tilec_builder *b, const char *name) {
  if (!usable(b))
    return NULL;
  int s = name ? ir_sym_find(irb_kernel(b->b), name, strlen(name)) : -1;
  if (s < 0) {
    irb_fail(b->b, IR_ERR_VERIFY, "tilec_expr_sym: '%s' is not a declared symbol",
             name ? name : "(null)");
    return NULL;
  }
  return (tilec_expr *)ir_expr_sym(irb_arena(b->b), s);
}

tilec_expr *tilec_expr_op(tilec_builder *b, const char *op, tilec_expr *l, tilec_expr *r) {
  if (!usable(b))
    return NULL;
  static const struct {
    const char *name;
    int op;
  } ops[] = {{"+", '+'},     {"-", '-'},         {"*", '*'},       {"/", '/'},
             {"%", '%'},     {"<", '<'},         {">", '>'},       {"<=", EXO_LE},
             {">=", EXO_GE}, {"==", EXO_EQ},     {"!=", EXO_NE},   {"&&", EXO_AND},
             {"||", EXO_OR}, {"cdiv", EXO_CDIV}, {"min", EXO_MIN}, {"max", EXO_MAX}};
  if (!l || !r) {
    irb_fail(b->b, IR_ERR_VERIFY, "tilec_expr_op: an operand is NULL");
    return NULL;
  }
  for (size_t i = 0; op && i < sizeof ops / sizeof ops[0]; i++)
    if (!strcmp(op, ops[i].name))
      return (tilec_expr *)ir_expr_bin(irb_arena(b->b), ops[i].op, E(l), E(r));
  irb_fail(b->b, IR_ERR_VERIFY, "tilec_expr_op: unknown operator '%s'", op ? op : "(null)");
  return NULL;
}

const tilec_type *tilec_type_scalar(tilec_builder *b, const char *name) {
  if (!usable(b))
    return NULL;
  size_t n = name ? strlen(name) : 0;
  ir_kind k = name ? ir_kind_from_name(name, n) : IR_VOID;
  if (k != IR_VOID)
    return (const tilec_type *)ir_scalar_type(k);
  int tv = name ? ir_tvar_find(irb_kernel(b->b), name, n) : -1;
  if (tv >= 0)
    return (const tilec_type *)ir_type_tvar(irb_arena(b->b), tv);
  irb_fail(b->b, IR_ERR_VERIFY, "'%s' is neither a scalar type nor a type variable",
           name ? name : "(null)");
  return NULL;
}

const tilec_type *tilec_type_ptr(tilec_builder *b, const tilec_type *elem) {
  if (!usable(b))
    return NULL;
  if (!elem) {
    irb_fail(b->b, IR_ERR_VERIFY, "tilec_type_ptr: elem is NULL");
    return NULL;
  }
  return (const tilec_type *)ir_type_ptr(irb_arena(b->b), T(elem));
}

const tilec_type *tilec_type_tile(tilec_builder *b, const tilec_type *elem, int rank,
                                  tilec_expr *const *dims) {
  if (!usable(b))
    return NULL;
  if (!elem || rank < 1 || rank > IR_MAX_RANK || !dims) {
    irb_fail(b->b, IR_ERR_VERIFY, "tilec_type_tile: needs an element type and 1 .. %d dims",
             IR_MAX_RANK);
    return NULL;
  }
  for (int i = 0; i < rank; i++)
    if (!dims[i]) {
      irb_fail(b->b, IR_ERR_VERIFY, "tilec_type_tile: dim %d is NULL", i);
      return NULL;
    }
  return (const tilec_type *)ir_type_tile(irb_arena(b->b), T(elem), rank, (ir_expr *const *)dims);
}

tilec_status tilec_builder_type_var(tilec_builder *b, const char *name, const char *const *choices,
                                    int n) {
  if (!usable(b) || !name || !choices || n < 1 || n > IR_NSCALAR) {
    if (usable(b))
      irb_fail(b->b, IR_ERR_VERIFY, "tilec_builder_type_var: a name and 1 .. %d choices",
               IR_NSCALAR);
    return recorded(b, "tilec_builder_type_var");
  }
  ir_kind k[IR_NSCALAR];
  for (int i = 0; i < n; i++)
    if (!choices[i] || (k[i] = ir_kind_from_name(choices[i], strlen(choices[i]))) == IR_VOID) {
      irb_fail(b->b, IR_ERR_VERIFY, "type variable %s: '%s' is not a scalar type", name,
               choices[i] ? choices[i] : "(null)");
      return recorded(b, "tilec_builder_type_var");
    }
  irb_tvar(b->b, name, k, n);
  return recorded(b, "tilec_builder_type_var");
}

tilec_status tilec_builder_tunable(tilec_builder *b, const char *name, int64_t def,
                                   const int64_t *domain, int n) {
  if (usable(b) && (!name || (n > 0 && !domain) || n < 0 || n > IR_MAX_DOMAIN))
    irb_fail(b->b, IR_ERR_VERIFY, "tilec_builder_tunable: a name and 0 .. %d domain values",
             IR_MAX_DOMAIN);
  if (usable(b))
    irb_tunable(b->b, name, def, domain, n);
  return recorded(b, "tilec_builder_tunable");
}

tilec_status tilec_builder_param(tilec_builder *b, const char *name, const char *dtype,
                                 int is_const, const double *def) {
  ir_kind k = dtype ? ir_kind_from_name(dtype, strlen(dtype)) : IR_VOID;
  if (usable(b) && (!name || k == IR_VOID))
    irb_fail(b->b, IR_ERR_VERIFY, "tilec_builder_param: a name and a scalar dtype ('%s')",
             dtype ? dtype : "(null)");
  if (usable(b)) {
    ir_num v = ir_kind_is_float(k) ? (ir_num){.isf = true, .f = def ? *def : 0}
                                   : (ir_num){.i = def ? (int64_t)*def : 0};
    irb_param(b->b, name, k, is_const != 0, def ? &v : NULL);
  }
  return recorded(b, "tilec_builder_param");
}

tilec_status tilec_builder_constraint(tilec_builder *b, tilec_expr *e) {
  if (usable(b) && !e)
    irb_fail(b->b, IR_ERR_VERIFY, "tilec_builder_constraint: expression is NULL");
  if (usable(b))
    irb_constraint(b->b, E(e));
  return recorded(b, "tilec_builder_constraint");
}

tilec_value *tilec_builder_tensor_arg(tilec_builder *b, const char *name, tilec_arg_dir dir,
                                      const tilec_type *elem, int rank, const char *const *dims) {
  if (!usable(b))
    return NULL;
  if (!name || !elem || rank < 1 || rank > IR_MAX_RANK || !dims || (unsigned)dir > TILEC_INOUT) {
    irb_fail(b->b, IR_ERR_VERIFY,
             "tilec_builder_tensor_arg: name, direction, element type "
             "and 1 .. %d dims are required",
             IR_MAX_RANK);
    return NULL;
  }
  for (int i = 0; i < rank; i++)
    if (!dims[i]) {
      irb_fail(b->b, IR_ERR_VERIFY, "tensor %s: dim %d is NULL", name, i);
      return NULL;
    }
  return (tilec_value *)irb_tensor_arg(b->b, name, (ir_arg_dir)dir, T(elem), rank, dims);
}

tilec_value *tilec_builder_ptr_arg(tilec_builder *b, const char *name, const tilec_type *elem) {
  if (!usable(b))
    return NULL;
  if (!name || !elem) {
    irb_fail(b->b, IR_ERR_VERIFY, "tilec_builder_ptr_arg: name and element type are required");
    return NULL;
  }
  return (tilec_value *)irb_ptr_arg(b->b, name, T(elem));
}

tilec_status tilec_builder_grid(tilec_builder *b, int n, tilec_expr *const *dims) {
  if (usable(b) && (n < 1 || n > 3 || !dims))
    irb_fail(b->b, IR_ERR_VERIFY, "tilec_builder_grid: 1 .. 3 dims");
  for (int i = 0; usable(b) && i < n; i++)
    if (!dims[i])
      irb_fail(b->b, IR_ERR_VERIFY, "tilec_builder_grid: dim %d is NULL", i);
  if (usable(b))
    irb_grid(b->b, n, (ir_expr *const *)dims);
  return recorded(b, "tilec_builder_grid");
}

tilec_value *tilec_builder_op(tilec_builder *b, const tilec_op *op) {
  if (!usable(b))
    return NULL;
  if (!op || op->size < sizeof *op || op->size > sizeof *op) {
    irb_fail(b->b, IR_ERR_VERIFY,
             "tilec_builder_op: op is NULL or its size is not "
             "sizeof(tilec_op)");
    return NULL;
  }
  ir_opcode code = op->keyword ? ir_opcode_from_name(op->keyword, strlen(op->keyword)) : IR_NOPS;
  if (code == IR_NOPS || code == IR_OP_FOR || code == IR_OP_IF) {
    irb_fail(b->b, IR_ERR_VERIFY,
             "tilec_builder_op: '%s' is not an op (for and if have their "
             "own calls)",
             op->keyword ? op->keyword : "(null)");
    return NULL;
  }
  if (op->noperands < 0 || op->noperands > IR_MAX_OPERANDS || (op->noperands && !op->operands)) {
    irb_fail(b->b, IR_ERR_VERIFY, "%s: bad operand list", op->keyword);
    return NULL;
  }
  for (int i = 0; i < op->noperands; i++)
    if (!op->operands[i]) {
      irb_fail(b->b, IR_ERR_VERIFY, "%s: operand %d is NULL", op->keyword, i);
      return NULL;
    }
  int sub = 0;
  if (op->sub) {
    static const char *const cmp[] = {"eq", "ne", "lt", "le", "gt", "ge"};
    static const char *const red[] = {"sum", "max", "min"};
    bool is_cmp = code == IR_OP_CMP;
    const char *const *names = is_cmp ? cmp : red;
    int n = is_cmp ? 6 : 3;
    sub = -1;
    for (int i = 0; i < n; i++)
      if (!strcmp(op->sub, names[i]))
        sub = i;
    if (sub < 0) {
      irb_fail(b->b, IR_ERR_VERIFY, "%s: unknown sub-keyword '%s'", op->keyword, op->sub);
      return NULL;
    }
  }
  const ir_type *rt = T(op->type);
  int nres = ir_ops[code].nres > 0 ? 1 : 0;
  if (nres && !rt) {
    irb_fail(b->b, IR_ERR_VERIFY, "%s: the result type is required", op->keyword);
    return NULL;
  }
  ir_op *o = irb_op(b->b, code, (ir_value *const *)op->operands, op->noperands, &rt, nres);
  if (!o)
    return NULL;
  o->sub = sub;
  o->attr[0] = op->attr[0];
  o->attr[1] = op->attr[1];
  o->ex[0] = E(op->expr[0]);
  o->ex[1] = E(op->expr[1]);
  return nres ? (tilec_value *)o->results[0] : NULL;
}

tilec_status tilec_builder_for(tilec_builder *b, tilec_value *lo, tilec_value *hi,
                               tilec_value *step, tilec_value *const *init, int ninit,
                               const tilec_type *const *types, tilec_value **body_args,
                               tilec_value **results) {
  if (usable(b) &&
      (!lo || !hi || !step || ninit < 0 || ninit > IR_MAX_OPERANDS || (ninit && (!init || !types))))
    irb_fail(b->b, IR_ERR_VERIFY,
             "tilec_builder_for: bounds, step, and init values with "
             "their types are required");
  if (!usable(b))
    return recorded(b, "tilec_builder_for");
  ir_op *o = irb_for(b->b, V(lo), V(hi), V(step), (ir_value *const *)init, ninit,
                     (const ir_type *const *)types);
  if (!o)
    return recorded(b, "tilec_builder_for");
  for (int i = 0; body_args && i <= ninit; i++)
    body_args[i] = (tilec_value *)o->regions[0]->args[i];
  for (int i = 0; results && i < ninit; i++)
    results[i] = (tilec_value *)o->results[i];
  return TILEC_OK;
}

tilec_status tilec_builder_if(tilec_builder *b, tilec_value *cond, const tilec_type *const *types,
                              int nres, tilec_value **results) {
  if (usable(b) && (!cond || nres < 0 || nres > IR_MAX_OPERANDS || (nres && !types)))
    irb_fail(b->b, IR_ERR_VERIFY, "tilec_builder_if: a condition and the result types");
  if (!usable(b))
    return recorded(b, "tilec_builder_if");
  ir_op *o = irb_if(b->b, V(cond), (const ir_type *const *)types, nres);
  if (!o)
    return recorded(b, "tilec_builder_if");
  for (int i = 0; results && i < nres; i++)
    results[i] = (tilec_value *)o->results[i];
  return TILEC_OK;
}

tilec_status tilec_builder_else(tilec_builder *b) {
  if (usable(b))
    irb_else(b->b);
  return recorded(b, "tilec_builder_else");
}

tilec_status tilec_builder_end(tilec_builder *b) {
  if (usable(b))
    irb_end(b->b);
  return recorded(b, "tilec_builder_end");
}

tilec_status tilec_builder_name(tilec_builder *b, tilec_value *v, const char *name) {
  if (usable(b) && (!v || !name))
    irb_fail(b->b, IR_ERR_VERIFY, "tilec_builder_name: value and name are required");
  if (usable(b))
    irb_name(b->b, V(v), name);
  return recorded(b, "tilec_builder_name");
}
