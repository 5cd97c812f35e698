/* ir/specialize.c — binds a config to a kernel and folds it into a concrete kernel.
 *
 * A config names tunables, const parameters and type variables. The specializer checks
 * domains and constraints (an error quotes the violated constraint), then rebuilds the kernel
 * through the builder with every compile-time symbol replaced by its value, constant
 * expressions folded, tile shapes made literal and `if`s on constant conditions resolved.
 * The result is verified before it is returned. Runtime symbols (dims, parameters) remain.
 */
#include "ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const ir_kernel *src;
  ir_builder *b;
  ir_num vals[IR_MAX_SYMS];
  bool set[IR_MAX_SYMS]; /* compile-time bound */
  ir_kind tv[IR_MAX_SYMS];
  int symmap[IR_MAX_SYMS];
  ir_value **vmap;
  ir_diag *d;
  ir_status st;
} sctx;

static bool compile_time(const ir_sym *s) { return s->kind == SYM_TUNABLE || s->kind == SYM_CONST; }

static void num_str(ir_num v, char *buf, size_t cap) {
  if (v.isf)
    snprintf(buf, cap, "%g", v.f);
  else
    snprintf(buf, cap, "%lld", (long long)v.i);
}

static ir_status bind(sctx *c, const ir_config *cfg) {
  const ir_kernel *k = c->src;
  ir_loc none = {k->file, 0, 0};
  for (int i = 0; i < k->nsyms; i++)
    if (compile_time(&k->syms[i]) && k->syms[i].has_default) {
      c->vals[i] = k->syms[i].def;
      c->set[i] = true;
    }
  for (int i = 0; i < k->ntvars; i++)
    c->tv[i] = k->tvars[i].choices[0];
  for (int i = 0; cfg && i < cfg->n; i++) {
    const char *name = cfg->items[i].name;
    int t = ir_tvar_find(k, name, strlen(name));
    if (t >= 0) {
      bool ok = false;
      for (int j = 0; j < k->tvars[t].nchoices; j++)
        ok |= k->tvars[t].choices[j] == cfg->items[i].kind;
      if (!ok)
        return ir_error(c->d, IR_ERR_CONFIG, none, NULL, "type %s=%s is not allowed for '%s'", name,
                        ir_kind_name(cfg->items[i].kind), k->name);
      c->tv[t] = cfg->items[i].kind;
      continue;
    }
    int s = ir_sym_find(k, name, strlen(name));
    if (s < 0 || !compile_time(&k->syms[s]))
      return ir_error(c->d, IR_ERR_CONFIG, none, NULL,
                      "'%s' is not a tunable, const parameter or type variable of '%s'", name,
                      k->name);
    const ir_sym *sym = &k->syms[s];
    ir_num v = cfg->items[i].value;
    if (v.isf || cfg->items[i].kind != IR_VOID)
      return ir_error(c->d, IR_ERR_CONFIG, none, NULL, "'%s' needs an integer value", name);
    if (sym->kind == SYM_TUNABLE) {
      bool in = false;
      for (int j = 0; j < sym->ndomain; j++)
        in |= sym->domain[j] == v.i;
      if (!in) {
        char dom[512];
        size_t n = 0;
        for (int j = 0; j < sym->ndomain && n < sizeof dom - 24; j++)
          n += (size_t)snprintf(dom + n, sizeof dom - n, "%s%lld", j ? ", " : "",
                                (long long)sym->domain[j]);
        return ir_error(c->d, IR_ERR_CONFIG, none, NULL, "%s=%lld is not in its domain [%s]", name,
                        (long long)v.i, dom);
      }
    }
    c->vals[s] = v;
    c->set[s] = true;
  }
  for (int i = 0; i < k->nsyms; i++)
    if (k->syms[i].kind == SYM_CONST && !c->set[i])
      return ir_error(c->d, IR_ERR_CONFIG, none, NULL, "const parameter '%s' of '%s' needs a value",
                      k->syms[i].name, k->name);
  return IR_OK;
}

/* Lists "NAME=value" for the compile-time symbols an expression uses. */
static void used_syms(const sctx *c, const ir_expr *e, char *buf, size_t cap, bool *seen) {
  if (!e)
    return;
  if (e->kind == EX_SYM && c->set[e->sym] && !seen[e->sym]) {
    seen[e->sym] = true;
    size_t n = strlen(buf);
    char v[64];
    num_str(c->vals[e->sym], v, sizeof v);
    snprintf(buf + n, cap - n, "%s%s=%s", n ? ", " : "", c->src->syms[e->sym].name, v);
  }
  used_syms(c, e->a, buf, cap, seen);
  used_syms(c, e->b, buf, cap, seen);
}

static ir_status check_constraints(sctx *c) {
  const ir_kernel *k = c->src;
  for (int i = 0; i < k->nconstraints; i++) {
    ir_num v;
    ir_status s = ir_expr_eval(k, k->constraints[i], c->vals, c->set, &v, c->d);
    if (s)
      return s;
    if (v.isf ? v.f != 0 : v.i != 0)
      continue;
    char text[512], vals[512] = "";
    bool seen[IR_MAX_SYMS] = {0};
    ir_expr_print(k, k->constraints[i], text, sizeof text);
    used_syms(c, k->constraints[i], vals, sizeof vals, seen);
    return ir_error(c->d, IR_ERR_CONFIG, k->constraints[i]->loc, k->source,
                    "config violates constraint '%s' (%s)", text, vals);
  }
  return IR_OK;
}

static void fail(sctx *c, ir_status s, ir_loc loc, const char *msg) {
  if (!c->st)
    c->st = ir_error(c->d, s, loc, c->src->source, "%s", msg);
}

/* Substitutes compile-time symbols and folds constant subtrees. */
static ir_expr *fold(sctx *c, const ir_expr *e) {
  if (!e || c->st)
    return NULL;
  ir_arena *a = irb_arena(c->b);
  ir_expr *r;
  switch (e->kind) {
  case EX_INT:
    r = ir_expr_int(a, e->i);
    break;
  case EX_FLOAT:
    r = ir_expr_float(a, e->f);
    break;
  case EX_SYM:
    if (c->set[e->sym])
      r = c->vals[e->sym].isf ? ir_expr_float(a, c->vals[e->sym].f)
                              : ir_expr_int(a, c->vals[e->sym].i);
    else
      r = ir_expr_sym(a, c->symmap[e->sym]);
    break;
  default: {
    ir_expr *l = fold(c, e->a), *rr = e->b ? fold(c, e->b) : NULL;
    if (c->st)
      return NULL;
    r = ir_expr_bin(a, e->op, l, rr);
    r->kind = e->kind;
    bool lit = (l->kind == EX_INT || l->kind == EX_FLOAT) &&
               (!rr || rr->kind == EX_INT || rr->kind == EX_FLOAT);
    if (lit) {
      ir_num v;
      ir_diag d;
      if (ir_expr_eval(c->src, r, NULL, NULL, &v, &d)) {
        fail(c, IR_ERR_CONFIG, e->loc,
             strstr(d.msg, "error: ") ? strstr(d.msg, "error: ") + 7 : d.msg);
        return NULL;
      }
      r = v.isf ? ir_expr_float(a, v.f) : ir_expr_int(a, v.i);
    }
  }
  }
  r->loc = e->loc;
  r->loc.file = irb_kernel(c->b)->file;
  return r;
}

static const ir_type *subst(sctx *c, const ir_type *t, ir_loc loc) {
  if (!t || c->st)
    return NULL;
  ir_arena *a = irb_arena(c->b);
  switch (t->kind) {
  case IR_TVAR:
    return ir_scalar_type(c->tv[t->tvar]);
  case IR_PTR:
    return ir_type_ptr(a, subst(c, t->elem, loc));
  case IR_TILE: {
    ir_expr *dims[IR_MAX_RANK];
    for (int i = 0; i < t->rank; i++) {
      dims[i] = fold(c, t->dims[i]);
      if (c->st)
        return NULL;
      if (dims[i]->kind != EX_INT) {
        fail(c, IR_ERR_CONFIG, loc, "tile dim is not a compile-time integer");
        return NULL;
      }
      if (dims[i]->i < 1 || dims[i]->i > IR_MAX_TILE_ELEMS) {
        char m[128];
        snprintf(m, sizeof m, "tile dim %lld is outside 1..%d for this config",
                 (long long)dims[i]->i, IR_MAX_TILE_ELEMS);
        fail(c, IR_ERR_CONFIG, loc, m);
        return NULL;
      }
    }
    return ir_type_tile(a, subst(c, t->elem, loc), t->rank, dims);
  }
  default:
    return t; /* scalars are static singletons */
  }
}

static ir_value *map(sctx *c, const ir_value *v) { return c->vmap[v->id]; }

/* Locations of the new kernel name its own copy of the file name: the source kernel may be
 * freed first. */
static void at(sctx *c, ir_loc loc) {
  loc.file = NULL; /* irb_at substitutes the kernel's file */
  irb_at(c->b, loc);
}

static void clone_block(sctx *c, const ir_block *blk);

static void name(sctx *c, ir_value *nv, const ir_value *ov) {
  if (nv && ov->name)
    irb_name(c->b, nv, ov->name);
}

/* An `if` whose condition folded to a constant: inline the taken arm. */
static bool fold_if(sctx *c, const ir_op *op) {
  const ir_op *def = map(c, op->operands[0])->def;
  int64_t v;
  if (!def || def->code != IR_OP_CONST || !ir_expr_is_int(def->ex[0], &v))
    return false;
  const ir_block *arm = op->regions[v ? 0 : 1];
  if (!arm)
    return true; /* no else, no results */
  for (const ir_op *o = arm->first; o; o = o->next) {
    if (o->code != IR_OP_YIELD) {
      clone_block(c, &(ir_block){.first = (ir_op *)o, .last = (ir_op *)o});
      continue;
    }
    for (int i = 0; i < o->nopnd; i++)
      c->vmap[op->results[i]->id] = map(c, o->operands[i]);
  }
  return true;
}

static void clone_op(sctx *c, const ir_op *op) {
  ir_value *ops[IR_MAX_OPERANDS];
  const ir_type *rt[IR_MAX_OPERANDS];
  at(c, op->loc);
  for (int i = 0; i < op->nopnd; i++)
    ops[i] = map(c, op->operands[i]);
  for (int i = 0; i < op->nres; i++)
    rt[i] = subst(c, op->results[i]->ty, op->loc);
  if (c->st)
    return;
  ir_op *n;
  if (op->code == IR_OP_FOR) {
    n = irb_for(c->b, ops[0], ops[1], ops[2], ops + 3, op->nopnd - 3, rt);
    if (!n)
      return;
    const ir_block *ob = op->regions[0];
    for (int i = 0; i < ob->nargs; i++) {
      c->vmap[ob->args[i]->id] = n->regions[0]->args[i];
      name(c, n->regions[0]->args[i], ob->args[i]);
    }
    clone_block(c, ob);
    irb_end(c->b);
  } else if (op->code == IR_OP_IF) {
    if (fold_if(c, op))
      return;
    n = irb_if(c->b, ops[0], rt, op->nres);
    if (!n)
      return;
    clone_block(c, op->regions[0]);
    if (op->regions[1]) {
      irb_else(c->b);
      clone_block(c, op->regions[1]);
    }
    irb_end(c->b);
  } else {
    n = irb_op(c->b, op->code, ops, op->nopnd, rt, op->nres);
    if (!n)
      return;
    n->sub = op->sub;
    n->attr[0] = op->attr[0];
    n->attr[1] = op->attr[1];
    n->ex[0] = fold(c, op->ex[0]);
    n->ex[1] = fold(c, op->ex[1]);
  }
  for (int i = 0; i < op->nres; i++) {
    c->vmap[op->results[i]->id] = n->results[i];
    name(c, n->results[i], op->results[i]);
  }
}

static void clone_block(sctx *c, const ir_block *blk) {
  for (const ir_op *op = blk->first; op && !c->st && !irb_failed(c->b); op = op->next) {
    clone_op(c, op);
    if (op == blk->last)
      break;
  }
}

static void clone_header(sctx *c) {
  const ir_kernel *k = c->src;
  for (int i = 0; i < k->nsyms; i++)
    if (k->syms[i].kind == SYM_TUNABLE) {
      at(c, k->syms[i].loc);
      irb_tunable(c->b, k->syms[i].name, c->vals[i].i, &c->vals[i].i, 1);
    }
  for (int i = 0; i < k->nargs; i++) {
    const ir_arg *a = &k->args[i];
    at(c, a->loc);
    if (a->kind == ARG_SCALAR) {
      const ir_sym *s = &k->syms[a->sym];
      irb_param(c->b, s->name, s->ty, s->kind == SYM_CONST,
                s->kind == SYM_CONST ? &c->vals[a->sym] : NULL);
    } else if (a->kind == ARG_PTR) {
      c->vmap[a->value->id] = irb_ptr_arg(c->b, a->name, subst(c, a->value->ty->elem, a->loc));
    } else {
      const ir_type *t = a->value->ty;
      char buf[IR_MAX_RANK][32];
      const char *dims[IR_MAX_RANK];
      for (int j = 0; j < t->rank; j++) {
        if (t->dims[j]->kind == EX_SYM)
          dims[j] = k->syms[t->dims[j]->sym].name;
        else {
          snprintf(buf[j], sizeof buf[j], "%lld", (long long)t->dims[j]->i);
          dims[j] = buf[j];
        }
      }
      c->vmap[a->value->id] =
          irb_tensor_arg(c->b, a->name, a->dir, subst(c, t->elem, a->loc), t->rank, dims);
    }
  }
  const ir_kernel *nk = irb_kernel(c->b);
  for (int i = 0; i < k->nsyms; i++)
    c->symmap[i] = ir_sym_find(nk, k->syms[i].name, strlen(k->syms[i].name));
}

ir_status ir_specialize(const ir_kernel *k, const ir_config *cfg, ir_kernel **out, ir_diag *d) {
  *out = NULL;
  sctx c = {.src = k, .d = d};
  ir_status s = bind(&c, cfg);
  if (!s)
    s = check_constraints(&c);
  if (s)
    return s;
  c.b = irb_new(k->name, k->file);
  c.vmap = calloc((size_t)k->nvalues + 1, sizeof(ir_value *));
  if (!c.b || !c.vmap) {
    irb_abort(c.b);
    free(c.vmap);
    return ir_error(d, IR_ERR_CONFIG, (ir_loc){k->file, 0, 0}, NULL, "out of memory");
  }
  if (k->source)
    irb_source(c.b, k->source, strlen(k->source));
  clone_header(&c);
  ir_expr *grid[3] = {0};
  for (int i = 0; i < k->ngrid; i++)
    grid[i] = fold(&c, k->grid[i]);
  if (!c.st)
    irb_grid(c.b, k->ngrid, grid);
  clone_block(&c, k->body);
  free(c.vmap);
  if (c.st) {
    irb_abort(c.b);
    return c.st;
  }
  ir_kernel *nk;
  if ((s = irb_finish(c.b, &nk, d)))
    return s;
  nk->specialized = true;
  if ((s = ir_verify(nk, d))) {
    ir_kernel_free(nk);
    return s;
  }
  *out = nk;
  return IR_OK;
}

ir_status ir_config_parse(ir_config *cfg, const char *text, ir_diag *d) {
  ir_loc none = {"--set", 0, 0};
  const char *p = text;
  while (p && *p) {
    size_t len = strcspn(p, ",");
    const char *eq = memchr(p, '=', len);
    if (!eq || eq == p || eq + 1 == p + len)
      return ir_error(d, IR_ERR_CONFIG, none, NULL, "expected NAME=VALUE, got '%.*s'", (int)len, p);
    if (cfg->n >= IR_MAX_SYMS)
      return ir_error(d, IR_ERR_LIMIT, none, NULL, "more than %d settings", IR_MAX_SYMS);
    size_t nlen = (size_t)(eq - p), vlen = len - nlen - 1;
    char val[64];
    if (nlen > IR_MAX_NAME || vlen >= sizeof val)
      return ir_error(d, IR_ERR_CONFIG, none, NULL, "setting '%.*s' is too long", (int)len, p);
    memcpy(val, eq + 1, vlen);
    val[vlen] = 0;
    ir_config_item *it = &cfg->items[cfg->n];
    memset(it, 0, sizeof *it);
    memcpy(it->name, p, nlen);
    ir_kind kind = ir_kind_from_name(val, vlen);
    if (kind != IR_VOID) {
      it->kind = kind;
    } else {
      char *end;
      long long v = strtoll(val, &end, 0);
      if (*end != 0 || end == val)
        return ir_error(d, IR_ERR_CONFIG, none, NULL,
                        "value of '%.*s' is not an integer or a "
                        "type: '%s'",
                        (int)nlen, p, val);
      it->value.i = v;
    }
    cfg->n++;
    p += len;
    if (*p == ',')
      p++;
  }
  return IR_OK;
}
