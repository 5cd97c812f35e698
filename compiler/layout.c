/* compiler/layout.c — construction and coordinate functions of distributed layouts.
 *
 * The register order of each kind is fixed here and nowhere else: BLOCKED enumerates per-dim
 * local indices with `order[0]` fastest; MMA and DOTOP enumerate (repetition, fragment element)
 * with the fragment element fastest, fragment elements numbered as in the PTX ISA (c0..c3,
 * a0..a7, b0..b3). A SLICE numbers the parent registers whose index along the sliced dim is 0.
 */
#include "compiler/layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int pow2_floor(int64_t x) {
  int p = 1;
  while ((int64_t)p * 2 <= x && p < (1 << 20))
    p *= 2;
  return p;
}

ly_layout ly_blocked(int rank, const int64_t *shape, int elem_bits, int warps) {
  ly_layout l = {.kind = LY_BLOCKED, .rank = rank};
  for (int d = 0; d < rank; d++) {
    l.order[d] = rank - 1 - d;
    l.spt[d] = l.tpw[d] = l.wpc[d] = 1;
  }
  int last = rank - 1;
  int vec = elem_bits >= 8 && elem_bits <= 128 ? 128 / elem_bits : 1;
  l.spt[last] = pow2_floor(vec < shape[last] ? vec : shape[last]);
  int lanes = LY_WARP;
  for (int i = 0; i < rank && lanes > 1; i++) {
    int d = l.order[i];
    int want = pow2_floor(cdiv(shape[d], l.spt[d]));
    l.tpw[d] = want < lanes ? want : lanes;
    lanes /= l.tpw[d];
  }
  l.tpw[l.order[rank - 1]] *= lanes; /* leftover lanes replicate along the slowest dim */
  int ws = warps;
  for (int i = 0; i < rank && ws > 1; i++) {
    int d = l.order[i];
    int want = pow2_floor(cdiv(shape[d], (int64_t)l.spt[d] * l.tpw[d]));
    l.wpc[d] = want < ws ? want : ws;
    ws /= l.wpc[d];
  }
  l.wpc[l.order[rank - 1]] *= ws;
  return l;
}

ly_layout ly_mma(int warps, const int64_t shape[2]) {
  ly_layout l = {.kind = LY_MMA, .rank = 2};
  int wm = 1;
  while (wm * 2 <= warps && 16 * (int64_t)wm * 2 <= shape[0])
    wm *= 2;
  l.wpc[0] = wm;
  l.wpc[1] = warps / wm;
  return l;
}

ly_layout ly_dotop(const ly_layout *mma, int opidx, int kw) {
  ly_layout l = {.kind = LY_DOTOP, .rank = 2, .parent = mma, .opidx = opidx, .kw = kw};
  return l;
}

ly_layout ly_slice(const ly_layout *parent, int dim) {
  ly_layout l = {.kind = LY_SLICE, .rank = parent->rank - 1, .parent = parent, .dim = dim};
  return l;
}

int ly_warps(const ly_layout *l) {
  if (l->kind == LY_DOTOP || l->kind == LY_SLICE)
    return ly_warps(l->parent);
  int w = 1;
  for (int d = 0; d < (l->kind == LY_MMA ? 2 : l->rank); d++)
    w *= l->wpc[d];
  return w;
}

bool ly_equal(const ly_layout *a, const ly_layout *b) {
  if (a == b)
    return true;
  if (!a || !b || a->kind != b->kind || a->rank != b->rank)
    return false;
  switch (a->kind) {
  case LY_BLOCKED:
    for (int d = 0; d < a->rank; d++)
      if (a->spt[d] != b->spt[d] || a->tpw[d] != b->tpw[d] || a->wpc[d] != b->wpc[d] ||
          a->order[d] != b->order[d])
        return false;
    return true;
  case LY_MMA:
    return a->wpc[0] == b->wpc[0] && a->wpc[1] == b->wpc[1];
  case LY_DOTOP:
    return a->opidx == b->opidx && a->kw == b->kw && ly_equal(a->parent, b->parent);
  case LY_SLICE:
    return a->dim == b->dim && ly_equal(a->parent, b->parent);
  }
  return false;
}

/* ---- per-kind geometry ---------------------------------------------------------------- */

/* Local (per-thread) index counts per dim, and the register decomposition. */
typedef struct {
  int rank;
  int64_t n[IR_MAX_RANK]; /* local indices per dim */
} geom;

static void parent_shape(const ly_layout *l, const int64_t *shape, int64_t *ps) {
  for (int d = 0, j = 0; d < l->parent->rank; d++)
    ps[d] = d == l->dim ? 1 : shape[j++];
}

/* Fragment repetition counts of MMA/DOTOP layouts: [dim0 reps, dim1 reps, elements]. */
static void frag(const ly_layout *l, const int64_t *shape, int64_t *r0, int64_t *r1, int *elems) {
  const ly_layout *m = l->kind == LY_MMA ? l : l->parent;
  if (l->kind == LY_MMA) {
    *r0 = cdiv(shape[0], 16 * (int64_t)m->wpc[0]);
    *r1 = cdiv(shape[1], 8 * (int64_t)m->wpc[1]);
    *elems = 4;
  } else if (l->opidx == 0) {
    *r0 = cdiv(shape[0], 16 * (int64_t)m->wpc[0]);
    *r1 = cdiv(shape[1], 8 * (int64_t)l->kw);
    *elems = 4 * l->kw;
  } else {
    *r0 = cdiv(shape[0], 8 * (int64_t)l->kw);
    *r1 = cdiv(shape[1], 8 * (int64_t)m->wpc[1]);
    *elems = 2 * l->kw;
  }
}

static int regdim(const ly_layout *l, const int64_t *shape, int reg, int d);

/* The parent register behind slice register s (the s-th parent register whose index along the
 * sliced dim is 0), or -1. */
static int slice_parent_reg(const ly_layout *l, const int64_t *shape, int s) {
  int64_t ps[IR_MAX_RANK] = {0};
  parent_shape(l, shape, ps);
  int n = ly_nregs(l->parent, ps);
  for (int r = 0; r < n; r++)
    if (regdim(l->parent, ps, r, l->dim) == 0 && s-- == 0)
      return r;
  return -1;
}

/* The local index along dim d of register reg. */
static int regdim(const ly_layout *l, const int64_t *shape, int reg, int d) {
  switch (l->kind) {
  case LY_BLOCKED:
    for (int i = 0; i < l->rank; i++) {
      int dd = l->order[i];
      int64_t cta = (int64_t)l->spt[dd] * l->tpw[dd] * l->wpc[dd];
      int n = (int)(cdiv(shape[dd], cta) * l->spt[dd]);
      if (dd == d)
        return reg % n;
      reg /= n;
    }
    return 0;
  case LY_MMA:
  case LY_DOTOP: {
    int64_t r0, r1;
    int e;
    frag(l, shape, &r0, &r1, &e);
    int i = reg % e, q = reg / e;
    int rep1 = (int)(q % r1), rep0 = (int)(q / r1);
    if (l->kind == LY_MMA)
      return d == 0 ? rep0 * 2 + (i >> 1) : rep1 * 2 + (i & 1);
    int kw = l->kw;
    if (l->opidx == 0)
      return d == 0 ? rep0 * 2 + ((i / kw) & 1) : rep1 * 2 * kw + i % kw + kw * (i / (2 * kw));
    return d == 0 ? rep0 * 2 * kw + i % kw + kw * (i / kw) : rep1;
  }
  case LY_SLICE: {
    int64_t ps[IR_MAX_RANK] = {0};
    parent_shape(l, shape, ps);
    return regdim(l->parent, ps, slice_parent_reg(l, shape, reg), d < l->dim ? d : d + 1);
  }
  }
  return 0;
}

int ly_nregs(const ly_layout *l, const int64_t *shape) {
  switch (l->kind) {
  case LY_BLOCKED: {
    int64_t n = 1;
    for (int d = 0; d < l->rank; d++) {
      int64_t cta = (int64_t)l->spt[d] * l->tpw[d] * l->wpc[d];
      n *= cdiv(shape[d], cta) * l->spt[d];
    }
    return (int)n;
  }
  case LY_MMA:
  case LY_DOTOP: {
    int64_t r0, r1;
    int e;
    frag(l, shape, &r0, &r1, &e);
    return (int)(r0 * r1 * e);
  }
  case LY_SLICE: {
    int64_t ps[IR_MAX_RANK] = {0};
    parent_shape(l, shape, ps);
    int n = ly_nregs(l->parent, ps), count = 0;
    for (int r = 0; r < n; r++)
      count += regdim(l->parent, ps, r, l->dim) == 0;
    return count;
  }
  }
  return 0;
}

/* ly_coord before the wrap modulo the shape. */
static void coord_raw(const ly_layout *l, const int64_t *shape, int tid, int reg, int64_t *coord);

void ly_coord(const ly_layout *l, const int64_t *shape, int tid, int reg, int64_t *coord) {
  coord_raw(l, shape, tid, reg, coord);
  for (int d = 0; d < l->rank; d++)
    coord[d] %= shape[d];
}

static void coord_raw(const ly_layout *l, const int64_t *shape, int tid, int reg, int64_t *coord) {
  int lane = tid % LY_WARP, warp = tid / LY_WARP;
  switch (l->kind) {
  case LY_BLOCKED: {
    int ld[IR_MAX_RANK], wd[IR_MAX_RANK];
    for (int i = 0; i < l->rank; i++) {
      int d = l->order[i];
      ld[d] = lane % l->tpw[d];
      lane /= l->tpw[d];
      wd[d] = warp % l->wpc[d];
      warp /= l->wpc[d];
    }
    for (int d = 0; d < l->rank; d++) {
      int64_t cta = (int64_t)l->spt[d] * l->tpw[d] * l->wpc[d];
      int j = regdim(l, shape, reg, d);
      int64_t c =
          (j / l->spt[d]) * cta + ((int64_t)wd[d] * l->tpw[d] + ld[d]) * l->spt[d] + j % l->spt[d];
      coord[d] = c;
    }
    return;
  }
  case LY_MMA:
  case LY_DOTOP: {
    const ly_layout *m = l->kind == LY_MMA ? l : l->parent;
    int64_t r0, r1;
    int e;
    frag(l, shape, &r0, &r1, &e);
    int i = reg % e, q = reg / e;
    int64_t rep1 = q % r1, rep0 = q / r1;
    int g = lane / 4, t = lane % 4, wm = warp % m->wpc[0], wn = warp / m->wpc[0];
    int64_t c0, c1;
    if (l->kind == LY_MMA) {
      c0 = (rep0 * m->wpc[0] + wm) * 16 + g + 8 * (i >> 1);
      c1 = (rep1 * m->wpc[1] + wn) * 8 + 2 * t + (i & 1);
    } else if (l->opidx == 0) { /* a word holds kw consecutive K elements of one row */
      int kw = l->kw;
      c0 = (rep0 * m->wpc[0] + wm) * 16 + g + 8 * ((i / kw) & 1);
      c1 = rep1 * 8 * kw + kw * t + i % kw + 4 * kw * (i / (2 * kw));
    } else {
      int kw = l->kw;
      c0 = rep0 * 8 * kw + kw * t + i % kw + 4 * kw * (i / kw);
      c1 = (rep1 * m->wpc[1] + wn) * 8 + g;
    }
    coord[0] = c0;
    coord[1] = c1;
    return;
  }
  case LY_SLICE: {
    int64_t ps[IR_MAX_RANK] = {0}, pc[IR_MAX_RANK] = {0};
    parent_shape(l, shape, ps);
    coord_raw(l->parent, ps, tid, slice_parent_reg(l, shape, reg), pc);
    for (int d = 0, j = 0; d < l->parent->rank; d++)
      if (d != l->dim)
        coord[j++] = pc[d];
    return;
  }
  }
}

int ly_find(const ly_layout *l, const int64_t *shape, int tid, const int64_t *coord) {
  int n = ly_nregs(l, shape);
  for (int r = 0; r < n; r++) {
    int64_t c[IR_MAX_RANK];
    ly_coord(l, shape, tid, r, c);
    bool eq = true;
    for (int d = 0; d < l->rank && eq; d++)
      eq = c[d] == coord[d];
    if (eq)
      return r;
  }
  return -1;
}

static size_t list(char *buf, size_t cap, const char *name, const int *v, int n) {
  size_t k = (size_t)snprintf(buf, cap, "%s=[", name);
  for (int i = 0; i < n && k < cap; i++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? "," : "", v[i]);
  if (k < cap)
    k += (size_t)snprintf(buf + k, cap - k, "]");
  return k;
}

void ly_print(const ly_layout *l, char *buf, size_t cap) {
  size_t k = 0;
  char sub[256];
  switch (l->kind) {
  case LY_BLOCKED:
    k += (size_t)snprintf(buf, cap, "#blocked<");
    k += list(buf + k, cap - k, "spt", l->spt, l->rank);
    k += list(buf + k, cap - k, ",tpw", l->tpw, l->rank);
    k += list(buf + k, cap - k, ",wpc", l->wpc, l->rank);
    k += list(buf + k, cap - k, ",order", l->order, l->rank);
    if (k < cap)
      snprintf(buf + k, cap - k, ">");
    return;
  case LY_MMA:
    snprintf(buf, cap, "#mma<m16n8,wpc=[%d,%d]>", l->wpc[0], l->wpc[1]);
    return;
  case LY_DOTOP:
    ly_print(l->parent, sub, sizeof sub);
    if (l->kw == 2)
      snprintf(buf, cap, "#dot<op=%d,%s>", l->opidx, sub);
    else
      snprintf(buf, cap, "#dot<op=%d,kw=%d,%s>", l->opidx, l->kw, sub);
    return;
  case LY_SLICE:
    ly_print(l->parent, sub, sizeof sub);
    snprintf(buf, cap, "#slice<dim=%d,%s>", l->dim, sub);
    return;
  }
}

bool ly_covers(const ly_layout *l, const int64_t *shape, char *msg, size_t cap) {
  int64_t total = 1;
  for (int d = 0; d < l->rank; d++)
    total *= shape[d];
  unsigned char *seen = calloc((size_t)total, 1);
  if (!seen) {
    snprintf(msg, cap, "out of memory");
    return false;
  }
  int threads = ly_warps(l) * LY_WARP, n = ly_nregs(l, shape);
  for (int t = 0; t < threads; t++)
    for (int r = 0; r < n; r++) {
      int64_t c[IR_MAX_RANK], idx = 0;
      ly_coord(l, shape, t, r, c);
      for (int d = 0; d < l->rank; d++)
        idx = idx * shape[d] + c[d];
      seen[idx] = 1;
    }
  bool ok = true;
  for (int64_t i = 0; i < total && ok; i++)
    if (!seen[i]) {
      snprintf(msg, cap, "element %lld is held by no thread", (long long)i);
      ok = false;
    }
  free(seen);
  return ok;
}

bool ly_linear(const ly_layout *l, const int64_t *shape, ly_affine *out) {
  int threads = ly_warps(l) * LY_WARP, n = ly_nregs(l, shape);
  memset(out, 0, sizeof *out);
  out->rank = l->rank;
  out->nregs = n;
  out->reg = malloc(sizeof(int64_t) * IR_MAX_RANK * (size_t)(n ? n : 1));
  if (!out->reg)
    return false;
  for (int b = 0; (1 << b) < threads; b++)
    out->nbits = b + 1;
  int64_t base[IR_MAX_RANK], c[IR_MAX_RANK];
  coord_raw(l, shape, 0, 0, base);
  for (int r = 0; r < n; r++)
    coord_raw(l, shape, 0, r, out->reg + (size_t)r * IR_MAX_RANK);
  for (int b = 0; b < out->nbits; b++) {
    coord_raw(l, shape, 1 << b, 0, c);
    for (int d = 0; d < l->rank; d++)
      out->bit[b][d] = c[d] - base[d];
  }
  /* Every thread and register must follow the affine form. coord_raw is a register part plus a
   * thread part by construction (blocked: the register's dim index and the lane/warp split;
   * MMA and dot operands: repetition and fragment index, and lane group/warp; slices: their
   * parent's), so the registers hold by the definition of reg and the threads are checked on
   * register 0; the first, middle and last registers are checked in every thread too, so a
   * layout kind that broke the split would be caught. */
  int check[3] = {0, n / 2, n - 1}, nc = n > 2 ? 3 : n; /* n = 1: {0}; n = 2: {0, 1} */
  if (n == 2)
    check[1] = 1;
  for (int t = 0; t < threads; t++)
    for (int k = 0; k < nc; k++) {
      int r = check[k];
      coord_raw(l, shape, t, r, c);
      for (int d = 0; d < l->rank; d++) {
        int64_t v = out->reg[(size_t)r * IR_MAX_RANK + d];
        for (int b = 0; b < out->nbits; b++)
          if (t >> b & 1)
            v += out->bit[b][d];
        if (v != c[d]) {
          ly_affine_free(out);
          return false;
        }
      }
    }
  return true;
}

void ly_affine_free(ly_affine *a) {
  if (!a)
    return;
  free(a->reg);
  a->reg = NULL;
}
