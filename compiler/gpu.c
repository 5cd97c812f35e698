/* compiler/gpu.c — layout assignment and conversion insertion (specialized IR → GPU IR).
 *
 * Two phases. Analysis gives every tile result a layout from its operands' layouts (rules in
 * docs/codegen.md: dot results are MMA, dot operands want DOTOP, elementwise ops follow their
 * operands preferring MMA, reductions slice, expand_dims un-slices, loads are BLOCKED with
 * 16-byte vectors); loop-carried values iterate to a fixed point so that the layout a loop body
 * yields is the layout it receives. Rewriting then inserts `convert_layout` before every use
 * whose operand layout differs from the layout the use requires.
 */
#include "compiler/gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  cc_gpu *g;
  ir_diag *d;
} actx;

static int64_t shape_of(const ir_value *v, int *rank, int64_t *shape) {
  return ir_type_shape(v->ty, rank, shape);
}

static bool is_tile(const ir_value *v) { return v->ty->kind == IR_TILE; }

static const ly_layout *get(const cc_gpu *g, const ir_value *v) {
  return v->id < g->nlay ? g->lay[v->id] : NULL;
}

static void set(cc_gpu *g, const ir_value *v, const ly_layout *l) {
  if (v->id < g->nlay)
    g->lay[v->id] = is_tile(v) ? l : NULL;
}

static const ly_layout *keep(cc_gpu *g, ly_layout l) {
  ly_layout *p = ir_alloc(g->k->arena, sizeof *p);
  *p = l;
  return p;
}

static int elem_bits(const ir_value *v) {
  ir_kind k = ir_type_elem(v->ty)->kind;
  return k == IR_PTR ? 64 : ir_kind_bits(k);
}

static const ly_layout *blocked_for(cc_gpu *g, const ir_value *v) {
  int rank;
  int64_t shape[IR_MAX_RANK];
  shape_of(v, &rank, shape);
  return keep(g, ly_blocked(rank, shape, elem_bits(v), g->warps));
}

/* A 2-D blocked layout with its dims swapped (trans is then a register renaming). */
static const ly_layout *transposed(cc_gpu *g, const ly_layout *l) {
  if (l->kind != LY_BLOCKED || l->rank != 2)
    return NULL;
  ly_layout t = *l;
  for (int d = 0; d < 2; d++) {
    t.spt[d] = l->spt[1 - d];
    t.tpw[d] = l->tpw[1 - d];
    t.wpc[d] = l->wpc[1 - d];
    t.order[d] = 1 - l->order[d];
  }
  return keep(g, t);
}

static bool elementwise(ir_opcode c) {
  return (c >= IR_OP_ADD && c <= IR_OP_SHR) || (c >= IR_OP_NEG && c <= IR_OP_RSQRT) ||
         c == IR_OP_CMP || c == IR_OP_SELECT || c == IR_OP_CAST || c == IR_OP_ADDPTR ||
         c == IR_OP_LOAD_PTR || c == IR_OP_STORE_PTR;
}

/* How much an elementwise op prefers to compute in l: in the MMA accumulator layout, then in
 * a slice of it (rows of attention scores), then anything else; moving MMA tiles costs most. */
static int weight(const ly_layout *l) {
  if (l->kind == LY_MMA)
    return 3;
  while (l->kind == LY_SLICE)
    l = l->parent;
  return l->kind == LY_MMA ? 2 : 1;
}

/* The layout an elementwise op computes in: the heaviest of its tile operands' layouts, the
 * first on ties. */
static const ly_layout *common(const cc_gpu *g, const ir_op *op) {
  const ly_layout *pick = NULL;
  for (int i = 0; i < op->nopnd; i++) {
    const ly_layout *l = is_tile(op->operands[i]) ? get(g, op->operands[i]) : NULL;
    if (l && (!pick || weight(l) > weight(pick)))
      pick = l;
  }
  return pick;
}

/* K elements per 32-bit register of a dot operand: 4 for 8-bit types (mma.m16n8k32), else 2. */
static int dot_kw(const ir_value *v) { return elem_bits(v) == 8 ? 4 : 2; }

/* The layout operand i of op must have (NULL: any). */
static const ly_layout *want(cc_gpu *g, const ir_op *op, int i) {
  const ir_value *v = op->operands[i];
  if (!is_tile(v))
    return NULL;
  const ly_layout *r = op->nres ? get(g, op->results[0]) : NULL;
  switch (op->code) {
  case IR_OP_DOT:
    return i == 2 ? r : keep(g, ly_dotop(r, i, dot_kw(v)));
  case IR_OP_EXPAND_DIMS:
    return keep(g, ly_slice(r, (int)op->attr[0]));
  case IR_OP_TRANS:
    return get(g, v)->kind == LY_BLOCKED ? NULL : transposed(g, r);
  case IR_OP_STORE_PTR:
    return get(g, op->operands[0]);
  default:
    return elementwise(op->code) ? (r ? r : common(g, op)) : NULL;
  }
}

static void analyze_block(actx *c, const ir_block *b);

static const ly_layout *infer(actx *c, const ir_op *op) {
  cc_gpu *g = c->g;
  const ir_value *res = op->results[0], *x = op->nopnd ? op->operands[0] : NULL;
  if (!is_tile(res))
    return NULL;
  switch (op->code) {
  case IR_OP_DOT: {
    int rank;
    int64_t shape[IR_MAX_RANK];
    shape_of(res, &rank, shape);
    return keep(g, ly_mma(g->warps, shape));
  }
  case IR_OP_REDUCE:
    return keep(g, ly_slice(get(g, x), (int)op->attr[0]));
  case IR_OP_EXPAND_DIMS: {
    const ly_layout *l = get(g, x);
    if (l->kind == LY_SLICE && l->dim == op->attr[0])
      return l->parent;
    return blocked_for(g, res);
  }
  case IR_OP_BROADCAST:
    return is_tile(x) ? get(g, x) : blocked_for(g, res);
  case IR_OP_TRANS: {
    const ly_layout *t = transposed(g, get(g, x));
    return t ? t : blocked_for(g, res);
  }
  case IR_OP_CONVERT:
    return get(g, res); /* set when inserted */
  default:
    if (elementwise(op->code)) {
      const ly_layout *l = common(g, op);
      return l ? l : blocked_for(g, res);
    }
    return blocked_for(g, res); /* zeros, full, arange, load, reshape */
  }
}

static void analyze_for(actx *c, const ir_op *op) {
  cc_gpu *g = c->g;
  const ir_block *body = op->regions[0];
  int n = op->nres;
  for (int i = 0; i < n; i++)
    set(g, body->args[1 + i], get(g, op->operands[3 + i]));
  for (int round = 0; round < 4; round++) {
    analyze_block(c, body);
    bool changed = false;
    for (int i = 0; i < n; i++) {
      const ly_layout *y = get(g, body->last->operands[i]), *a = get(g, body->args[1 + i]);
      if (y && a && !ly_equal(y, a)) {
        set(g, body->args[1 + i], y);
        changed = true;
      }
    }
    if (!changed)
      break;
  }
  for (int i = 0; i < n; i++)
    set(g, op->results[i], get(g, body->args[1 + i]));
}

static void analyze_block(actx *c, const ir_block *b) {
  for (const ir_op *op = b->first; op; op = op->next) {
    if (op->code == IR_OP_FOR) {
      analyze_for(c, op);
    } else if (op->code == IR_OP_IF) {
      for (int r = 0; r < op->nregions; r++)
        if (op->regions[r])
          analyze_block(c, op->regions[r]);
      for (int i = 0; i < op->nres; i++)
        set(c->g, op->results[i], get(c->g, op->regions[0]->last->operands[i]));
    } else if (op->nres == 1) {
      set(c->g, op->results[0], infer(c, op));
    }
  }
}

/* Whether block x is b or nested inside it. */
static bool inside(const ir_block *x, const ir_block *b) {
  for (; x; x = x->parent ? x->parent->parent : NULL)
    if (x == b)
      return true;
  return false;
}

/* Where a conversion of v for a use in op goes: before op, or hoisted out of every loop (and
 * branch) that does not define v, so that a loop-invariant tile is converted once. */
static ir_op *insertion_point(ir_op *op, const ir_value *v) {
  const ir_block *def = v->def ? v->def->parent : v->owner;
  ir_op *ip = op;
  while (ip->parent->parent && !inside(def, ip->parent))
    ip = ip->parent->parent;
  return ip;
}

/* Constant tiles, as cheap to create in any layout as to convert: zeros, splats, aranges. */
static bool leaf(const ir_op *d) {
  return d && (d->code == IR_OP_ZEROS || d->code == IR_OP_FULL || d->code == IR_OP_ARANGE);
}

/* Register-only ops whose result can be recomputed in another layout from their operands. */
static bool cheap(const ir_op *d) {
  return d && d->nres == 1 &&
         (leaf(d) || d->code == IR_OP_EXPAND_DIMS || d->code == IR_OP_BROADCAST ||
          (elementwise(d->code) && d->code != IR_OP_LOAD_PTR && d->code != IR_OP_STORE_PTR));
}

/* The layout operand i of the cheap op d needs for d's result to have layout l. */
static const ly_layout *operand_layout(cc_gpu *g, const ir_op *d, const ly_layout *l) {
  return d->code == IR_OP_EXPAND_DIMS ? keep(g, ly_slice(l, (int)d->attr[0])) : l;
}

/* Whether v can be recomputed in layout l from values it already has (depth-limited): a chain
 * of cheap ops over constant tiles, scalars and tiles that are in the needed layout already. */
static bool can_remat(cc_gpu *g, const ir_value *v, const ly_layout *l, int depth) {
  const ir_op *d = v->def;
  if (ly_equal(get(g, v), l))
    return true;
  if (depth == 0 || !cheap(d))
    return false;
  if (d->code == IR_OP_EXPAND_DIMS && l->kind == LY_SLICE)
    return false; /* a slice of a slice: keep the conversion */
  for (int i = 0; i < d->nopnd; i++)
    if (is_tile(d->operands[i]) &&
        !can_remat(g, d->operands[i], operand_layout(g, d, l), depth - 1))
      return false;
  return true;
}

/* Links op into ip's block just before ip. */
static void insert_before(ir_op *ip, ir_op *op) {
  op->parent = ip->parent;
  op->prev = ip->prev;
  op->next = ip;
  if (ip->prev)
    ip->prev->next = op;
  else
    ip->parent->first = op;
  ip->prev = op;
}

static ir_value *new_result(cc_gpu *g, ir_op *op, const ir_type *ty, const ly_layout *l) {
  ir_value *nv = ir_alloc(g->k->arena, sizeof *nv);
  nv->id = g->k->nvalues++;
  nv->ty = ty;
  nv->def = op;
  nv->argno = -1;
  op->nres = 1;
  op->results = ir_alloc(g->k->arena, sizeof(ir_value *));
  op->results[0] = nv;
  g->k->nops++;
  set(g, nv, l);
  return nv;
}

/* Recomputes v in layout l before ip (can_remat said it can). */
static ir_value *remat(cc_gpu *g, ir_value *v, const ly_layout *l, ir_op *ip) {
  if (ly_equal(get(g, v), l))
    return v;
  const ir_op *d = v->def;
  ir_op *c = ir_alloc(g->k->arena, sizeof *c);
  *c = *d; /* code, attributes, location */
  c->operands = ir_alloc(g->k->arena, sizeof(ir_value *) * (size_t)(d->nopnd ? d->nopnd : 1));
  for (int i = 0; i < d->nopnd; i++)
    c->operands[i] = is_tile(d->operands[i]) ? remat(g, d->operands[i], operand_layout(g, d, l), ip)
                                             : d->operands[i];
  insert_before(ip, c);
  g->nremat++;
  return new_result(g, c, v->ty, l);
}

/* Makes op's operand i have layout `to`: recomputed there when it is a cheap chain over
 * constants (can_remat), else moved by `%new = convert_layout %v`; either is placed before op,
 * hoisted out of the loops and branches that do not define the value. */
static void convert(cc_gpu *g, ir_op *op, int i, const ly_layout *to) {
  ir_value *v = op->operands[i];
  ir_op *ip = insertion_point(op, v);
  if (can_remat(g, v, to, 8)) {
    op->operands[i] = remat(g, v, to, ip);
    return;
  }
  ir_op *cv = ir_alloc(g->k->arena, sizeof *cv);
  cv->code = IR_OP_CONVERT;
  cv->loc = op->loc;
  cv->nopnd = 1;
  cv->operands = ir_alloc(g->k->arena, sizeof(ir_value *));
  cv->operands[0] = v;
  insert_before(ip, cv);
  op->operands[i] = new_result(g, cv, v->ty, to);
  g->nconverts++;
}

/* Counts the uses of every value (by id) in b and its regions. */
static void count_uses(const ir_block *b, int *uses) {
  for (const ir_op *op = b->first; op; op = op->next) {
    for (int i = 0; i < op->nopnd; i++)
      uses[op->operands[i]->id]++;
    for (int r = 0; r < op->nregions; r++)
      if (op->regions[r])
        count_uses(op->regions[r], uses);
  }
}

/* Removes constant tiles and conversions left without uses by the rewrite. */
static void remove_dead(cc_gpu *g, ir_block *b, int *uses) {
  for (ir_op *op = b->last, *prev; op; op = prev) {
    prev = op->prev;
    for (int r = 0; r < op->nregions; r++)
      if (op->regions[r])
        remove_dead(g, op->regions[r], uses);
    bool pure = cheap(op) || op->code == IR_OP_CONVERT;
    if (!pure || op->nres != 1 || uses[op->results[0]->id] > 0)
      continue;
    for (int i = 0; i < op->nopnd; i++)
      uses[op->operands[i]->id]--;
    if (op->prev)
      op->prev->next = op->next;
    else
      b->first = op->next;
    if (op->next)
      op->next->prev = op->prev;
    else
      b->last = op->prev;
    g->k->nops--;
  }
}

static void rewrite_block(cc_gpu *g, ir_block *b, const ly_layout *const *yield_want) {
  for (ir_op *op = b->first; op; op = op->next) {
    if (op->code == IR_OP_CONVERT)
      continue;
    if (op->code == IR_OP_YIELD) {
      for (int i = 0; yield_want && i < op->nopnd; i++)
        if (yield_want[i] && !ly_equal(get(g, op->operands[i]), yield_want[i]))
          convert(g, op, i, yield_want[i]);
      continue;
    }
    if (op->code == IR_OP_FOR || op->code == IR_OP_IF) {
      const ly_layout *rl[IR_MAX_OPERANDS];
      for (int i = 0; i < op->nres; i++)
        rl[i] = get(g, op->results[i]);
      if (op->code == IR_OP_FOR)
        for (int i = 0; i < op->nres; i++)
          if (rl[i] && !ly_equal(get(g, op->operands[3 + i]), rl[i]))
            convert(g, op, 3 + i, rl[i]);
      for (int r = 0; r < op->nregions; r++)
        if (op->regions[r])
          rewrite_block(g, op->regions[r], rl);
      continue;
    }
    for (int i = 0; i < op->nopnd; i++) {
      const ly_layout *w = want(g, op, i);
      if (w && !ly_equal(get(g, op->operands[i]), w))
        convert(g, op, i, w);
    }
  }
}

static int count_operands(const ir_block *b) {
  int n = 0;
  for (const ir_op *op = b->first; op; op = op->next) {
    n += op->nopnd;
    for (int r = 0; r < op->nregions; r++)
      if (op->regions[r])
        n += count_operands(op->regions[r]);
  }
  return n;
}

ir_status cc_gpu_build(ir_kernel *k, cc_gpu *g, ir_diag *d) {
  memset(g, 0, sizeof *g);
  g->k = k;
  if (!k->specialized)
    return ir_error(d, IR_ERR_VERIFY, (ir_loc){k->file, 0, 0}, NULL,
                    "layout assignment needs a specialized kernel");
  int w = ir_sym_find(k, "WARPS", 5);
  g->warps = w >= 0 ? (int)k->syms[w].def.i : 4;
  if (g->warps < 1 || g->warps > LY_MAX_WARPS || (g->warps & (g->warps - 1)))
    return ir_error(d, IR_ERR_CONFIG, (ir_loc){k->file, 0, 0}, NULL,
                    "WARPS=%d: a power of two up to %d is needed", g->warps, LY_MAX_WARPS);
  g->nlay = k->nvalues + count_operands(k->body) + 1;
  g->lay = calloc((size_t)g->nlay, sizeof *g->lay);
  if (!g->lay)
    return ir_error(d, IR_ERR_VERIFY, (ir_loc){k->file, 0, 0}, NULL, "out of memory");
  actx c = {g, d};
  analyze_block(&c, k->body);
  rewrite_block(g, k->body, NULL);
  int *uses = calloc((size_t)k->nvalues + 1, sizeof *uses);
  if (!uses) {
    cc_gpu_free(g);
    return ir_error(d, IR_ERR_VERIFY, (ir_loc){k->file, 0, 0}, NULL, "out of memory");
  }
  count_uses(k->body, uses);
  remove_dead(g, k->body, uses);
  free(uses);
  ir_status s = ir_verify(k, d);
  if (s)
    cc_gpu_free(g);
  return s;
}

const ly_layout *cc_layout(const cc_gpu *g, const ir_value *v) { return get(g, v); }

static void note(void *ctx, const ir_value *v, char *buf, size_t cap) {
  const ly_layout *l = get(ctx, v);
  if (l)
    ly_print(l, buf, cap);
}

char *cc_gpu_print(const cc_gpu *g) { return ir_print_notes(g->k, note, (void *)g); }

void cc_gpu_free(cc_gpu *g) {
  if (!g)
    return;
  free(g->lay);
  g->lay = NULL;
  g->nlay = 0;
}
