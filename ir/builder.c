/* ir/builder.c — the one way to construct IR: used by the parser, the specializer and C callers.
 *
 * The builder owns an arena and a kernel under construction, plus a stack of open regions.
 * The first error is recorded (with the current location) and turns every later call into a
 * no-op, so a caller checks once, at irb_finish.
 */
#include "ir.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_CONSTRAINTS = IR_MAX_SYMS };

struct ir_builder {
  ir_arena *arena;
  ir_kernel *k;
  ir_loc loc;
  ir_diag diag;
  bool failed;
  ir_block *stack[IR_MAX_DEPTH + 1]; /* open blocks; stack[0] = kernel body */
  int depth;
};

ir_builder *irb_new(const char *kernel_name, const char *file) {
  ir_builder *b = calloc(1, sizeof *b);
  if (!b)
    return NULL;
  b->arena = ir_arena_new();
  ir_kernel *k = ir_alloc(b->arena, sizeof *k);
  k->arena = b->arena;
  k->name = ir_strdup(b->arena, kernel_name ? kernel_name : "kernel");
  k->file = ir_strdup(b->arena, file ? file : "<builder>");
  k->syms = ir_alloc(b->arena, sizeof(ir_sym) * IR_MAX_SYMS);
  k->tvars = ir_alloc(b->arena, sizeof(ir_tvar) * IR_MAX_SYMS);
  k->constraints = ir_alloc(b->arena, sizeof(ir_expr *) * MAX_CONSTRAINTS);
  k->args = ir_alloc(b->arena, sizeof(ir_arg) * IR_MAX_ARGS);
  k->body = ir_alloc(b->arena, sizeof(ir_block));
  b->k = k;
  b->stack[0] = k->body;
  b->loc.file = k->file;
  return b;
}

void irb_at(ir_builder *b, ir_loc loc) {
  b->loc = loc;
  if (!b->loc.file)
    b->loc.file = b->k->file;
}

void irb_source(ir_builder *b, const char *text, size_t len) {
  b->k->source = ir_strndup(b->arena, text, len);
}

const char *irb_source_text(const ir_builder *b) { return b->k->source; }

ir_arena *irb_arena(ir_builder *b) { return b->arena; }

const ir_kernel *irb_kernel(const ir_builder *b) { return b->k; }

bool irb_failed(const ir_builder *b) { return b->failed; }

#if defined(__GNUC__)
__attribute__((format(printf, 3, 0)))
#endif
static void
vfail(ir_builder *b, ir_status s, const char *fmt, va_list ap) {
  if (b->failed)
    return;
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  ir_error(&b->diag, s, b->loc, b->k->source, "%s", msg);
  b->failed = true;
}

void irb_fail(ir_builder *b, ir_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(b, s, fmt, ap);
  va_end(ap);
}

static bool name_taken(ir_builder *b, const char *name) {
  size_t n = strlen(name);
  if (ir_sym_find(b->k, name, n) >= 0 || ir_tvar_find(b->k, name, n) >= 0) {
    irb_fail(b, IR_ERR_PARSE, "'%s' is already declared", name);
    return true;
  }
  if (ir_kind_from_name(name, n) != IR_VOID) {
    irb_fail(b, IR_ERR_PARSE, "'%s' is a type name", name);
    return true;
  }
  if (n == 0 || n > IR_MAX_NAME) {
    irb_fail(b, IR_ERR_LIMIT, "name length %zu is outside 1..%d", n, IR_MAX_NAME);
    return true;
  }
  return false;
}

static ir_sym *new_sym(ir_builder *b, const char *name, ir_sym_kind kind, ir_kind ty) {
  if (b->failed || name_taken(b, name))
    return NULL;
  if (b->k->nsyms >= IR_MAX_SYMS) {
    irb_fail(b, IR_ERR_LIMIT, "more than %d symbols", IR_MAX_SYMS);
    return NULL;
  }
  ir_sym *s = &b->k->syms[b->k->nsyms++];
  s->name = ir_strdup(b->arena, name);
  s->kind = kind;
  s->ty = ty;
  s->arg = -1;
  s->loc = b->loc;
  return s;
}

int irb_tvar(ir_builder *b, const char *name, const ir_kind *choices, int n) {
  if (b->failed || name_taken(b, name))
    return -1;
  if (n < 1 || n >= IR_NSCALAR) {
    irb_fail(b, IR_ERR_PARSE, "type variable '%s' needs 1 to %d choices", name, IR_NSCALAR - 1);
    return -1;
  }
  if (b->k->ntvars >= IR_MAX_SYMS) {
    irb_fail(b, IR_ERR_LIMIT, "more than %d type variables", IR_MAX_SYMS);
    return -1;
  }
  ir_tvar *t = &b->k->tvars[b->k->ntvars];
  t->name = ir_strdup(b->arena, name);
  for (int i = 0; i < n; i++) {
    if (choices[i] <= IR_VOID || choices[i] >= IR_NSCALAR) {
      irb_fail(b, IR_ERR_PARSE, "type variable '%s': choice %d is not a scalar type", name, i);
      return -1;
    }
    for (int j = 0; j < i; j++)
      if (choices[j] == choices[i]) {
        irb_fail(b, IR_ERR_PARSE, "type variable '%s' lists %s twice", name,
                 ir_kind_name(choices[i]));
        return -1;
      }
    t->choices[i] = choices[i];
  }
  t->nchoices = n;
  t->loc = b->loc;
  return b->k->ntvars++;
}

int irb_tunable(ir_builder *b, const char *name, int64_t def, const int64_t *domain, int n) {
  if (b->failed)
    return -1;
  if (n > IR_MAX_DOMAIN) {
    irb_fail(b, IR_ERR_LIMIT, "tunable '%s' has %d values; the limit is %d", name, n,
             IR_MAX_DOMAIN);
    return -1;
  }
  if (n < 1) {
    irb_fail(b, IR_ERR_PARSE, "tunable '%s' has an empty domain", name);
    return -1;
  }
  bool found = false;
  for (int i = 0; i < n; i++) {
    found |= domain[i] == def;
    for (int j = 0; j < i; j++)
      if (domain[j] == domain[i]) {
        irb_fail(b, IR_ERR_PARSE, "tunable '%s' lists %lld twice", name, (long long)domain[i]);
        return -1;
      }
  }
  if (!found) {
    irb_fail(b, IR_ERR_PARSE, "default %lld of tunable '%s' is not in its domain", (long long)def,
             name);
    return -1;
  }
  ir_sym *s = new_sym(b, name, SYM_TUNABLE, IR_I32);
  if (!s)
    return -1;
  s->has_default = true;
  s->def = (ir_num){.i = def};
  s->domain = ir_alloc(b->arena, sizeof(int64_t) * (size_t)n);
  memcpy(s->domain, domain, sizeof(int64_t) * (size_t)n);
  s->ndomain = n;
  return (int)(s - b->k->syms);
}

static ir_arg *new_arg(ir_builder *b, const char *name) {
  if (b->k->nargs >= IR_MAX_ARGS) {
    irb_fail(b, IR_ERR_LIMIT, "more than %d arguments", IR_MAX_ARGS);
    return NULL;
  }
  for (int i = 0; i < b->k->nargs; i++)
    if (strcmp(b->k->args[i].name, name) == 0) {
      irb_fail(b, IR_ERR_PARSE, "argument '%s' is declared twice", name);
      return NULL;
    }
  ir_arg *a = &b->k->args[b->k->nargs++];
  a->name = ir_strdup(b->arena, name);
  a->loc = b->loc;
  a->sym = -1;
  return a;
}

int irb_param(ir_builder *b, const char *name, ir_kind ty, bool is_const, const ir_num *def) {
  if (b->failed)
    return -1;
  if (ty <= IR_VOID || ty >= IR_NSCALAR) {
    irb_fail(b, IR_ERR_PARSE, "parameter '%s' must have a scalar type", name);
    return -1;
  }
  if (is_const && !ir_kind_is_int(ty)) {
    irb_fail(b, IR_ERR_PARSE, "const parameter '%s' must be an integer", name);
    return -1;
  }
  if (def && !is_const) {
    irb_fail(b, IR_ERR_PARSE, "only const parameters take a default ('%s')", name);
    return -1;
  }
  ir_sym *s = new_sym(b, name, is_const ? SYM_CONST : SYM_PARAM, ty);
  if (!s)
    return -1;
  int sym = (int)(s - b->k->syms);
  if (def) {
    s->has_default = true;
    s->def = *def;
    if (def->isf) {
      irb_fail(b, IR_ERR_PARSE, "default of integer parameter '%s' is a float", name);
      return -1;
    }
  }
  ir_arg *a = new_arg(b, name);
  if (!a)
    return -1;
  a->kind = ARG_SCALAR;
  a->sym = sym;
  s->arg = (int)(a - b->k->args);
  return sym;
}

void irb_constraint(ir_builder *b, ir_expr *e) {
  if (b->failed)
    return;
  if (b->k->nconstraints >= MAX_CONSTRAINTS) {
    irb_fail(b, IR_ERR_LIMIT, "more than %d constraints", MAX_CONSTRAINTS);
    return;
  }
  b->k->constraints[b->k->nconstraints++] = e;
}

static ir_value *new_value(ir_builder *b, const ir_type *ty) {
  ir_value *v = ir_alloc(b->arena, sizeof *v);
  v->id = b->k->nvalues++;
  v->ty = ty;
  v->argno = -1;
  return v;
}

static ir_value *pointer_arg(ir_builder *b, const char *name, const ir_type *ty, ir_arg_kind kind) {
  ir_arg *a = new_arg(b, name);
  if (!a)
    return NULL;
  a->kind = kind;
  ir_value *v = new_value(b, ty);
  v->name = a->name;
  v->argno = (int)(a - b->k->args);
  a->value = v;
  return v;
}

ir_value *irb_tensor_arg(ir_builder *b, const char *name, ir_arg_dir dir, const ir_type *elem,
                         int rank, const char *const *dims) {
  if (b->failed)
    return NULL;
  if (rank < 1 || rank > IR_MAX_RANK) {
    irb_fail(b, IR_ERR_LIMIT, "tensor '%s' has rank %d; ranks 1..%d are supported", name, rank,
             IR_MAX_RANK);
    return NULL;
  }
  if (elem->kind == IR_TILE || elem->kind == IR_TENSOR || elem->kind == IR_PTR) {
    irb_fail(b, IR_ERR_PARSE, "tensor '%s' must hold scalars", name);
    return NULL;
  }
  ir_type *t = ir_alloc(b->arena, sizeof *t);
  t->kind = IR_TENSOR;
  t->elem = elem;
  t->rank = rank;
  int argno = b->k->nargs;
  for (int i = 0; i < rank; i++) {
    const char *d = dims[i];
    char *end;
    long long v = strtoll(d, &end, 10);
    if (*d && *end == 0 && d[0] != '+' && d[0] != ' ') {
      if (v < 1) {
        irb_fail(b, IR_ERR_PARSE, "tensor '%s' dim %d must be positive", name, i);
        return NULL;
      }
      t->dims[i] = ir_expr_int(b->arena, v);
      continue;
    }
    int s = ir_sym_find(b->k, d, strlen(d));
    if (s < 0) {
      ir_sym *sym = new_sym(b, d, SYM_DIM, IR_I32);
      if (!sym)
        return NULL;
      sym->arg = argno;
      sym->argdim = i;
      s = (int)(sym - b->k->syms);
    } else if (b->k->syms[s].kind != SYM_DIM && b->k->syms[s].kind != SYM_CONST) {
      irb_fail(b, IR_ERR_PARSE, "dim '%s' of tensor '%s' is not a dim or const parameter", d, name);
      return NULL;
    }
    t->dims[i] = ir_expr_sym(b->arena, s);
    t->dims[i]->loc = b->loc;
  }
  ir_value *v = pointer_arg(b, name, t, ARG_TENSOR);
  if (v)
    b->k->args[argno].dir = dir;
  return v;
}

ir_value *irb_ptr_arg(ir_builder *b, const char *name, const ir_type *elem) {
  if (b->failed)
    return NULL;
  if (elem->kind == IR_TILE || elem->kind == IR_TENSOR) {
    irb_fail(b, IR_ERR_PARSE, "pointer '%s' must point to scalars", name);
    return NULL;
  }
  return pointer_arg(b, name, ir_type_ptr(b->arena, elem), ARG_PTR);
}

void irb_grid(ir_builder *b, int n, ir_expr *const *dims) {
  if (b->failed)
    return;
  if (n < 1 || n > 3) {
    irb_fail(b, IR_ERR_PARSE, "grid has %d dims; 1 to 3 are allowed", n);
    return;
  }
  for (int i = 0; i < n; i++)
    b->k->grid[i] = dims[i];
  b->k->ngrid = n;
}

const char *ir_bucket_kind_name(ir_bucket_kind k) {
  switch (k) {
  case IR_BUCKET_POW2:
    return "pow2";
  case IR_BUCKET_MULTIPLE:
    return "multiple";
  case IR_BUCKET_ANY:
    return "any";
  default:
    return "exact";
  }
}

void irb_bucket(ir_builder *b, const char *name, ir_bucket_kind kind, int64_t arg) {
  if (b->failed)
    return;
  ir_kernel *k = b->k;
  int s = ir_sym_find(k, name, strlen(name));
  if (s < 0) {
    irb_fail(b, IR_ERR_PARSE, "bucket for unknown problem value '%s'", name);
    return;
  }
  if (k->syms[s].kind == SYM_CONST || k->syms[s].kind == SYM_TUNABLE) {
    irb_fail(b, IR_ERR_PARSE,
             "'%s' is a %s: its value changes the code, so it cannot be bucketed (only dims and "
             "runtime parameters can)",
             name, k->syms[s].kind == SYM_CONST ? "const parameter" : "tunable");
    return;
  }
  if (kind == IR_BUCKET_MULTIPLE ? arg < 1 : arg != 0) {
    irb_fail(b, IR_ERR_PARSE, "bucket of '%s': multiple(N) needs N >= 1", name);
    return;
  }
  for (int i = 0; i < k->nbuckets; i++)
    if (k->buckets[i].sym == s) {
      irb_fail(b, IR_ERR_PARSE, "bucket of '%s' declared twice", name);
      return;
    }
  if (!k->buckets)
    k->buckets = ir_alloc(b->arena, sizeof(ir_bucket) * IR_MAX_SYMS);
  k->buckets[k->nbuckets++] = (ir_bucket){.sym = s, .kind = kind, .arg = arg, .loc = b->loc};
}

static ir_block *current(ir_builder *b) { return b->stack[b->depth]; }

static ir_op *append(ir_builder *b, ir_opcode code, ir_value *const *operands, int nopnd,
                     const ir_type *const *result_types, int nres) {
  if (b->failed)
    return NULL;
  if (b->k->nops >= IR_MAX_OPS) {
    irb_fail(b, IR_ERR_LIMIT, "more than %d ops", IR_MAX_OPS);
    return NULL;
  }
  if (nopnd > IR_MAX_OPERANDS || nres > IR_MAX_OPERANDS) {
    irb_fail(b, IR_ERR_LIMIT, "more than %d operands or results", IR_MAX_OPERANDS);
    return NULL;
  }
  for (int i = 0; i < nopnd; i++)
    if (!operands[i]) {
      irb_fail(b, IR_ERR_PARSE, "operand %d of '%s' is missing", i, ir_ops[code].keyword);
      return NULL;
    }
  ir_op *op = ir_alloc(b->arena, sizeof *op);
  op->code = code;
  op->loc = b->loc;
  op->nopnd = nopnd;
  op->operands = ir_alloc(b->arena, sizeof(ir_value *) * (size_t)(nopnd ? nopnd : 1));
  if (nopnd)
    memcpy(op->operands, operands, sizeof(ir_value *) * (size_t)nopnd);
  op->nres = nres;
  op->results = ir_alloc(b->arena, sizeof(ir_value *) * (size_t)(nres ? nres : 1));
  for (int i = 0; i < nres; i++) {
    op->results[i] = new_value(b, result_types[i]);
    op->results[i]->def = op;
  }
  ir_block *blk = current(b);
  op->parent = blk;
  op->prev = blk->last;
  if (blk->last)
    blk->last->next = op;
  else
    blk->first = op;
  blk->last = op;
  b->k->nops++;
  return op;
}

ir_op *irb_op(ir_builder *b, ir_opcode code, ir_value *const *operands, int nopnd,
              const ir_type *const *result_types, int nres) {
  if (!b->failed && (code == IR_OP_FOR || code == IR_OP_IF || code >= IR_NOPS)) {
    irb_fail(b, IR_ERR_PARSE, "irb_op cannot build region ops; use irb_for / irb_if");
    return NULL;
  }
  return append(b, code, operands, nopnd, result_types, nres);
}

static ir_block *new_block(ir_builder *b, ir_op *parent) {
  ir_block *blk = ir_alloc(b->arena, sizeof *blk);
  blk->parent = parent;
  return blk;
}

static bool enter(ir_builder *b, ir_block *blk) {
  if (b->depth >= IR_MAX_DEPTH) {
    irb_fail(b, IR_ERR_LIMIT, "regions nested deeper than %d", IR_MAX_DEPTH);
    return false;
  }
  b->stack[++b->depth] = blk;
  return true;
}

ir_op *irb_for(ir_builder *b, ir_value *lo, ir_value *hi, ir_value *step, ir_value *const *init,
               int ninit, const ir_type *const *result_types) {
  if (b->failed)
    return NULL;
  if (ninit + 3 > IR_MAX_OPERANDS) {
    irb_fail(b, IR_ERR_LIMIT, "more than %d loop-carried values", IR_MAX_OPERANDS - 3);
    return NULL;
  }
  ir_value *ops[IR_MAX_OPERANDS];
  ops[0] = lo;
  ops[1] = hi;
  ops[2] = step;
  for (int i = 0; i < ninit; i++)
    ops[3 + i] = init[i];
  ir_op *op = append(b, IR_OP_FOR, ops, ninit + 3, result_types, ninit);
  if (!op)
    return NULL;
  ir_block *body = new_block(b, op);
  body->nargs = ninit + 1;
  body->args = ir_alloc(b->arena, sizeof(ir_value *) * (size_t)body->nargs);
  body->args[0] = new_value(b, lo->ty);
  for (int i = 0; i < ninit; i++)
    body->args[1 + i] = new_value(b, result_types[i]);
  for (int i = 0; i < body->nargs; i++) {
    body->args[i]->owner = body;
    body->args[i]->argno = i;
  }
  op->regions[0] = body;
  op->nregions = 1;
  return enter(b, body) ? op : NULL;
}

ir_op *irb_if(ir_builder *b, ir_value *cond, const ir_type *const *result_types, int nres) {
  ir_op *op = append(b, IR_OP_IF, &cond, 1, result_types, nres);
  if (!op)
    return NULL;
  op->regions[0] = new_block(b, op);
  op->nregions = 1;
  return enter(b, op->regions[0]) ? op : NULL;
}

static bool ends_in_yield(ir_builder *b) {
  ir_block *blk = current(b);
  if (!blk->last || blk->last->code != IR_OP_YIELD) {
    irb_fail(b, IR_ERR_PARSE, "region must end with 'yield'");
    return false;
  }
  return true;
}

void irb_else(ir_builder *b) {
  if (b->failed)
    return;
  ir_block *blk = current(b);
  ir_op *op = blk->parent;
  if (!op || op->code != IR_OP_IF || op->nregions != 1 || op->regions[0] != blk) {
    irb_fail(b, IR_ERR_PARSE, "'else' without a matching 'if'");
    return;
  }
  if (!ends_in_yield(b))
    return;
  op->regions[1] = new_block(b, op);
  op->nregions = 2;
  b->stack[b->depth] = op->regions[1];
}

void irb_end(ir_builder *b) {
  if (b->failed)
    return;
  if (b->depth == 0) {
    irb_fail(b, IR_ERR_PARSE, "unbalanced end of region");
    return;
  }
  if (!ends_in_yield(b))
    return;
  ir_op *op = current(b)->parent;
  if (op->code == IR_OP_IF && op->nres > 0 && op->nregions < 2) {
    irb_fail(b, IR_ERR_PARSE, "'if' with results needs an 'else'");
    return;
  }
  b->depth--;
}

void irb_name(ir_builder *b, ir_value *v, const char *name) {
  if (!b->failed && v)
    v->name = ir_strdup(b->arena, name);
}

ir_status irb_finish(ir_builder *b, ir_kernel **out, ir_diag *d) {
  *out = NULL;
  if (!b->failed && b->depth != 0)
    irb_fail(b, IR_ERR_PARSE, "unclosed region at end of kernel");
  if (!b->failed && b->k->ngrid == 0)
    irb_fail(b, IR_ERR_PARSE, "kernel '%s' has no grid", b->k->name);
  if (b->failed) {
    ir_status s = b->diag.status;
    if (d)
      *d = b->diag;
    irb_abort(b);
    return s;
  }
  *out = b->k;
  free(b);
  return IR_OK;
}

void irb_abort(ir_builder *b) {
  if (!b)
    return;
  ir_arena_free(b->arena);
  free(b);
}

void ir_kernel_free(ir_kernel *k) {
  if (k)
    ir_arena_free(k->arena);
}

int ir_sym_find(const ir_kernel *k, const char *name, size_t len) {
  for (int i = 0; i < k->nsyms; i++)
    if (strlen(k->syms[i].name) == len && memcmp(k->syms[i].name, name, len) == 0)
      return i;
  return -1;
}

int ir_tvar_find(const ir_kernel *k, const char *name, size_t len) {
  for (int i = 0; i < k->ntvars; i++)
    if (strlen(k->tvars[i].name) == len && memcmp(k->tvars[i].name, name, len) == 0)
      return i;
  return -1;
}
