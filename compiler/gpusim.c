/* compiler/gpusim.c — the GPU-IR simulator: one CTA per program, thread by thread, on the CPU.
 *
 * A program is a CTA of T = 32 * warps threads. A tile value is stored as every thread's
 * registers (T x ly_nregs cells, thread-major: cell t * nregs + r is register r of thread t); a
 * scalar is one uniform cell. Control flow is uniform, so running each op for all threads
 * before the next is the order a GPU's lockstep warps produce. Each op runs the algorithm the
 * LLVM lowering emits (docs/codegen.md, "Algorithms"), element arithmetic comes from ir/exec.c
 * (the interpreter's), and floats are rounded to their kind after every op.
 *
 * Whatever depends only on layouts and shapes is planned once per launch, before any program
 * runs: the coordinate table of every (layout, shape) (ly_coord is slow for slices), the source
 * register of every result register of broadcast / expand_dims / trans (ly_find in the same
 * thread), the reduction schedule (per-thread groups, butterfly lane masks, cross-warp
 * partials), and the check of every mma fragment element against the PTX ISA tables. Planning
 * rejects layouts the algorithms cannot run on with an error naming the op, the thread and the
 * element (IR_ERR_VERIFY): those are layout-pass bugs. The one exception mirrors the lowering: a
 * reduction whose layouts defeat the shuffle algorithm (tiles that are not powers of two wrap
 * onto partly overlapping lanes) runs through shared memory instead, counted in the statistics,
 * or is an error in strict runs. At run time, replicated registers that disagree when written
 * to shared or global memory are reported as layout errors too.
 *
 * Rounding model (where results may differ from the interpreter's in the last f32 bits):
 * reductions round after every combine (to f32 for f16/bf16 tiles, which are rounded to their
 * kind at the end, as the lowering does; to the element kind otherwise), in the order
 * per-thread registers, then butterfly steps 16, 8, 4, 2, 1, then warps (or, in the
 * shared-memory fallback, along the line); each mma.m16n8k16 (m16n8k32 for f8) adds its 16
 * (32) exact products in double to the f32 accumulator element and rounds once to f32 (the
 * interpreter sums a whole row in double and rounds once). max/min propagate NaN and order -0
 * below +0 so that both lanes of a butterfly agree.
 */
#include "compiler/gpusim.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/exec.h"

typedef ir_cell cell;

enum {
  MAX_HOST_THREADS = 256,
  MAX_CELLS = 1 << 26, /* registers of one tile value over the whole CTA */
  NMASKS = 5,          /* butterfly lane masks 16, 8, 4, 2, 1 */
};

/* ---- launch state ----------------------------------------------------------------------- */

/* The coordinates of one (layout, shape): register r of thread t holds the element whose
 * row-major index is lin[t * nregs + r] and whose coordinates are crd[(t * nregs + r) * rank ..].
 */
typedef struct tab {
  const ly_layout *ly;
  int rank;
  int64_t shape[IR_MAX_RANK];
  int64_t n; /* elements of the tile */
  int nregs;
  int32_t *lin;
  int32_t *crd;
  struct tab *next;
} tab;

/* Static facts of one value. */
typedef struct vinfo {
  bool tile;
  int rank;
  int64_t shape[IR_MAX_RANK];
  int64_t n;     /* elements; 1 for scalars */
  ir_kind ek;    /* element kind: a scalar kind, IR_PTR, or IR_TENSOR for tensor arguments */
  ir_kind ptee;  /* IR_PTR: the pointee kind */
  int64_t cells; /* T * nregs for tiles, 1 otherwise */
  const tab *t;  /* tiles: the coordinates of its layout */
} vinfo;

/* The schedule of one reduce (docs/codegen.md): groups are (thread, output element) pairs. */
typedef struct rplan {
  int ngroups;
  int *gstart;   /* [T + 1]: the groups of thread t are gstart[t] .. gstart[t + 1] - 1 */
  int *grep;     /* [ngroups]: the cell of the group's first register */
  int32_t *gout; /* [ngroups]: the output element (row-major index) */
  int nsteps;    /* step 1: gval[sgrp[i]] = op(gval[sgrp[i]], cell scell[i]), in order */
  int *sgrp, *scell;
  int masks[NMASKS]; /* step 2: lane masks of the butterflies that combine */
  int nmasks;
  bool xwarp;      /* step 3: combine per-warp partials through shared memory */
  int *xstart;     /* [nout elements + 1]: for output element o, the groups whose partials */
  int *xsrc;       /* xsrc[xstart[o] .. xstart[o + 1]) are combined, one per warp, in order */
  int32_t *outsrc; /* [result cells]: the group each result register takes */
  int64_t smem;    /* step 3's (or the fallback's) shared-memory bytes */
  bool fallback;   /* the register algorithm cannot run: the whole tile goes through shared
                      memory and every result register combines its line in index order */
} rplan;

/* One op of the plan, in preorder. */
typedef struct xop {
  const ir_op *op;
  int next;     /* next op of the same block, -1 at its end */
  int first[2]; /* first op of each region, -1 when empty or absent */
  int32_t *map; /* broadcast, expand_dims, trans: the source cell of every result cell */
  rplan *red;   /* reduce */
  int64_t smem; /* convert_layout, reshape: shared-memory bytes */
} xop;

/* What all programs of a launch share (read-only while they run, except the atomics). */
typedef struct launch {
  const cc_gpu *g;
  const ir_kernel *k;
  const ir_argval *args;
  ir_kind *argkind;
  ir_num *symv;
  bool *symset;
  int64_t grid[3], nprog;
  int T;
  vinfo *vi; /* by value id */
  xop *xops;
  int nxops, capxops, root;
  tab *tabs;
  int64_t maxn;         /* elements of the largest tile: the shared-memory scratch */
  int64_t maxgroups;    /* groups of the largest reduction */
  bool strict;          /* a reduction needing the shared-memory fallback is an error */
  _Atomic int64_t next; /* next program to claim */
  _Atomic int64_t stop; /* programs with a larger index are abandoned */
} launch;

/* One host thread: value storage, scratch, the program it runs, its first error. */
typedef struct prog {
  launch *L;
  cell **s;        /* by value id; allocated at the first definition, reused after */
  cell *smem;      /* [maxn] shared memory (and a store's record of written elements) */
  uint32_t *stamp; /* [maxn] the epoch of the last write of each element */
  int32_t *writer; /* [maxn] the thread that wrote it */
  uint32_t epoch;
  cell *gval, *gtmp; /* [maxgroups] reduction partials */
  int64_t index, pid[3];
  bool abandoned;
  cc_sim_stats st;
  ir_diag d;
  int64_t errprog; /* lowest program that failed on this thread, or nprog */
  ir_diag err;
  pthread_t thread;
} prog;

/* ---- diagnostics ------------------------------------------------------------------------ */

static ir_status vfail(ir_diag *d, ir_status st, const ir_kernel *k, const ir_op *op,
                       const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 0)))
#endif
    ;

static ir_status vfail(ir_diag *d, ir_status st, const ir_kernel *k, const ir_op *op,
                       const char *fmt, va_list ap) {
  char msg[1536];
  vsnprintf(msg, sizeof msg, fmt, ap);
  ir_loc loc = op ? op->loc : (ir_loc){k->file, 0, 0};
  return ir_error(d, st, loc, k->source, "%s", msg);
}

/* A layout the algorithms cannot run on (found while planning, or replicas that disagree). */
static ir_status bad(const launch *L, ir_diag *d, const ir_op *op, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static ir_status bad(const launch *L, ir_diag *d, const ir_op *op, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ir_status s = vfail(d, IR_ERR_VERIFY, L->k, op, fmt, ap);
  va_end(ap);
  return s;
}

/* A runtime error, worded as the interpreter words it ("... in 'op'"). */
static ir_status fail(prog *P, const ir_op *op, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static ir_status fail(prog *P, const ir_op *op, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ir_error(&P->d, IR_ERR_RUNTIME, op->loc, P->L->k->source, "%s in '%s'", msg,
                  ir_ops[op->code].keyword);
}

typedef struct name {
  char s[IR_MAX_NAME + 8];
} name;

static name vname(const ir_value *v) {
  name n;
  if (v->name)
    snprintf(n.s, sizeof n.s, "%%%s", v->name);
  else
    snprintf(n.s, sizeof n.s, "%%v%d", v->id);
  return n;
}

typedef struct text {
  char s[320];
} text;

static text lyname(const ly_layout *l) {
  text t;
  if (l)
    ly_print(l, t.s, sizeof t.s);
  else
    snprintf(t.s, sizeof t.s, "no layout");
  return t;
}

/* "(3, 5)" for row-major element lin of a tile of the given shape. */
static text coords(int rank, const int64_t *shape, int64_t lin) {
  int64_t c[IR_MAX_RANK] = {0};
  for (int d = rank - 1; d >= 0; d--) {
    c[d] = lin % shape[d];
    lin /= shape[d];
  }
  text t;
  size_t k = (size_t)snprintf(t.s, sizeof t.s, "(");
  for (int d = 0; d < rank && k < sizeof t.s; d++)
    k += (size_t)snprintf(t.s + k, sizeof t.s - k, "%s%lld", d ? ", " : "", (long long)c[d]);
  if (k < sizeof t.s)
    snprintf(t.s + k, sizeof t.s - k, ")");
  return t;
}

/* ---- small helpers ---------------------------------------------------------------------- */

static bool isf(ir_kind k) { return ir_kind_is_float(k); }
static bool isi(ir_kind k) { return ir_kind_is_int(k); }
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int64_t elem_bytes(ir_kind k) { return k == IR_PTR ? 8 : ir_kind_bits(k) / 8; }

static int64_t linear(int rank, const int64_t *shape, const int64_t *c) {
  int64_t lin = 0;
  for (int d = 0; d < rank; d++)
    lin = lin * shape[d] + c[d];
  return lin;
}

static const vinfo *info(const launch *L, const ir_value *v) { return &L->vi[v->id]; }
static const ly_layout *layout(const launch *L, const ir_value *v) { return cc_layout(L->g, v); }

/* Whether a cell of kind k equals another (NaN equals NaN: replicas of one NaN agree). */
static bool same(ir_kind k, cell a, cell b) {
  return isf(k) ? a.f == b.f || (isnan(a.f) && isnan(b.f)) : a.i == b.i;
}

static text cellstr(ir_kind k, cell c) {
  text t;
  if (isf(k))
    snprintf(t.s, sizeof t.s, "%.9g", c.f);
  else
    snprintf(t.s, sizeof t.s, "%lld", (long long)c.i);
  return t;
}

/* ---- coordinate tables ------------------------------------------------------------------ */

/* The table of (ly, shape), built once per launch and shared by every value with an equal
 * layout and shape. Checks that the layout covers the tile. NULL with a message on failure. */
static const tab *get_tab(launch *L, const ly_layout *ly, int rank, const int64_t *shape, int64_t n,
                          char *why, size_t cap) {
  for (tab *t = L->tabs; t; t = t->next) {
    bool eq = t->rank == rank && ly_equal(t->ly, ly);
    for (int d = 0; d < rank && eq; d++)
      eq = t->shape[d] == shape[d];
    if (eq)
      return t;
  }
  int nregs = ly_nregs(ly, shape);
  if (nregs < 1 || (int64_t)nregs * L->T > MAX_CELLS) {
    snprintf(why, cap, "%s gives %d registers per thread", lyname(ly).s, nregs);
    return NULL;
  }
  tab *t = calloc(1, sizeof *t);
  size_t cells = (size_t)nregs * (size_t)L->T;
  unsigned char *seen = calloc((size_t)n, 1);
  if (t) {
    t->lin = malloc(sizeof(int32_t) * cells);
    t->crd = malloc(sizeof(int32_t) * cells * (size_t)(rank ? rank : 1));
  }
  if (!t || !seen || !t->lin || !t->crd) {
    if (t) {
      free(t->lin);
      free(t->crd);
    }
    free(t);
    free(seen);
    snprintf(why, cap, "out of host memory");
    return NULL;
  }
  t->ly = ly;
  t->rank = rank;
  memcpy(t->shape, shape, sizeof(int64_t) * (size_t)rank);
  t->n = n;
  t->nregs = nregs;
  t->next = L->tabs;
  L->tabs = t;
  for (int th = 0; th < L->T; th++)
    for (int r = 0; r < nregs; r++) {
      int64_t c[IR_MAX_RANK] = {0};
      size_t i = (size_t)th * (size_t)nregs + (size_t)r;
      ly_coord(ly, shape, th, r, c);
      for (int d = 0; d < rank; d++)
        t->crd[i * (size_t)rank + (size_t)d] = (int32_t)c[d];
      t->lin[i] = (int32_t)linear(rank, shape, c);
      seen[t->lin[i]] = 1;
    }
  for (int64_t e = 0; e < n; e++)
    if (!seen[e]) {
      snprintf(why, cap, "%s holds element %s of the tile in no thread", lyname(ly).s,
               coords(rank, shape, e).s);
      free(seen);
      return NULL;
    }
  free(seen);
  return t;
}

/* ---- planning: values ------------------------------------------------------------------- */

static ir_status plan_value(launch *L, const ir_value *v, const ir_op *op, ir_diag *d) {
  const ir_kernel *k = L->k;
  if (!v || v->id < 0 || v->id >= k->nvalues)
    return bad(L, d, op, "malformed kernel: bad value id");
  vinfo *vi = &L->vi[v->id];
  *vi = (vinfo){.n = 1, .cells = 1};
  const ir_type *t = v->ty;
  if (t && t->kind == IR_TENSOR) {
    vi->ek = IR_TENSOR;
    return IR_OK;
  }
  const ir_type *e = t ? ir_type_elem(t) : NULL;
  if (!e || (e->kind != IR_PTR && (e->kind <= IR_VOID || e->kind >= IR_NSCALAR)))
    return bad(L, d, op, "kernel is not specialized: %s has no concrete type", vname(v).s);
  vi->ek = e->kind;
  if (e->kind == IR_PTR) {
    if (!e->elem || e->elem->kind <= IR_VOID || e->elem->kind >= IR_NSCALAR)
      return bad(L, d, op, "pointers must point to scalars");
    vi->ptee = e->elem->kind;
  }
  if (t->kind != IR_TILE)
    return IR_OK;
  vi->tile = true;
  vi->rank = t->rank;
  if (t->rank < 1 || t->rank > IR_MAX_RANK)
    return bad(L, d, op, "tile rank out of range");
  for (int i = 0; i < t->rank; i++) {
    if (!ir_expr_is_int(t->dims[i], &vi->shape[i]) || vi->shape[i] < 1 ||
        vi->shape[i] > IR_MAX_TILE_ELEMS)
      return bad(L, d, op, "kernel is not specialized: %s has a symbolic or bad shape", vname(v).s);
    vi->n *= vi->shape[i];
    if (vi->n > IR_MAX_TILE_ELEMS)
      return bad(L, d, op, "tile has more than 2^20 elements");
  }
  const ly_layout *ly = layout(L, v);
  if (!ly)
    return bad(L, d, op, "%s has no layout", vname(v).s);
  if (ly->rank != vi->rank)
    return bad(L, d, op, "%s is a rank-%d tile but its layout %s has rank %d", vname(v).s, vi->rank,
               lyname(ly).s, ly->rank);
  if (ly_warps(ly) != L->g->warps)
    return bad(L, d, op, "the layout %s of %s spans %d warps; the CTA has %d", lyname(ly).s,
               vname(v).s, ly_warps(ly), L->g->warps);
  char why[1024];
  if (!(vi->t = get_tab(L, ly, vi->rank, vi->shape, vi->n, why, sizeof why)))
    return bad(L, d, op, "%s: %s", vname(v).s, why);
  vi->cells = (int64_t)vi->t->nregs * L->T;
  if (vi->n > L->maxn)
    L->maxn = vi->n;
  return IR_OK;
}

/* ---- planning: register maps ------------------------------------------------------------ */

static bool elementwise(ir_opcode c) {
  return (c >= IR_OP_ADD && c <= IR_OP_SHR) || (c >= IR_OP_NEG && c <= IR_OP_RSQRT) ||
         c == IR_OP_CMP || c == IR_OP_SELECT || c == IR_OP_CAST || c == IR_OP_ADDPTR ||
         c == IR_OP_LOAD_PTR || c == IR_OP_STORE_PTR;
}

/* Elementwise ops: every tile operand in the layout (and shape) of the result, or of the first
 * tile operand when there is no tile result (store_ptr). */
static ir_status plan_elementwise(launch *L, const ir_op *op, ir_diag *d) {
  const ir_value *ref = op->nres == 1 && info(L, op->results[0])->tile ? op->results[0] : NULL;
  for (int i = 0; i < op->nopnd && !ref; i++)
    if (info(L, op->operands[i])->tile)
      ref = op->operands[i];
  if (!ref)
    return IR_OK;
  const vinfo *rv = info(L, ref);
  for (int i = 0; i < op->nopnd; i++) {
    const ir_value *v = op->operands[i];
    const vinfo *vi = info(L, v);
    if (!vi->tile || v == ref)
      continue;
    if (vi->t != rv->t)
      return bad(L, d, op, "layout mismatch at '%s': operand %d (%s) has %s, but %s has %s",
                 ir_ops[op->code].keyword, i, vname(v).s, lyname(layout(L, v)).s,
                 ref == op->results[0] ? "the result" : vname(ref).s, lyname(layout(L, ref)).s);
  }
  return IR_OK;
}

/* broadcast, expand_dims, trans: result register r of thread t reads the register of the same
 * thread that holds the input coordinate (the first such, as ly_find returns). */
static ir_status plan_gather(launch *L, xop *x, ir_diag *d) {
  const ir_op *op = x->op;
  const ir_value *in = op->operands[0], *out = op->results[0];
  const vinfo *iv = info(L, in), *ov = info(L, out);
  if (!ov->tile || (!iv->tile && op->code != IR_OP_BROADCAST))
    return bad(L, d, op, "malformed '%s'", ir_ops[op->code].keyword);
  x->map = calloc((size_t)ov->cells, sizeof(int32_t));
  if (!x->map)
    return bad(L, d, op, "out of host memory");
  if (!iv->tile)
    return IR_OK; /* a scalar splats: every register reads cell 0 */
  int rr = ov->rank, ir = iv->rank;
  if ((op->code == IR_OP_BROADCAST && ir > rr) ||
      (op->code == IR_OP_EXPAND_DIMS && (ir != rr - 1 || op->attr[0] < 0 || op->attr[0] >= rr)) ||
      (op->code == IR_OP_TRANS && (ir != 2 || rr != 2)))
    return bad(L, d, op, "malformed '%s'", ir_ops[op->code].keyword);
  int32_t *pos = malloc(sizeof(int32_t) * (size_t)iv->n);
  if (!pos)
    return bad(L, d, op, "out of host memory");
  for (int64_t e = 0; e < iv->n; e++)
    pos[e] = -1;
  const tab *ti = iv->t, *to = ov->t;
  ir_status s = IR_OK;
  for (int t = 0; t < L->T && !s; t++) {
    const int32_t *ilin = ti->lin + (size_t)t * (size_t)ti->nregs;
    for (int r = ti->nregs - 1; r >= 0; r--)
      pos[ilin[r]] = r; /* ends holding the first register of each element */
    for (int r = 0; r < to->nregs && !s; r++) {
      const int32_t *oc = to->crd + ((size_t)t * (size_t)to->nregs + (size_t)r) * (size_t)rr;
      int64_t ic[IR_MAX_RANK] = {0};
      if (op->code == IR_OP_BROADCAST) {
        for (int sd = 0; sd < ir; sd++)
          ic[sd] = iv->shape[sd] == 1 ? 0 : oc[sd + rr - ir];
      } else if (op->code == IR_OP_EXPAND_DIMS) {
        for (int dd = 0, j = 0; dd < rr; dd++)
          if (dd != op->attr[0])
            ic[j++] = oc[dd];
      } else {
        ic[0] = oc[1];
        ic[1] = oc[0];
      }
      int64_t il = linear(ir, iv->shape, ic);
      if (il < 0 || il >= iv->n || pos[il] < 0)
        s = bad(L, d, op, "thread %d does not hold element %s of %s for '%s' (layout %s)", t,
                coords(ir, iv->shape, il).s, vname(in).s, ir_ops[op->code].keyword,
                lyname(layout(L, in)).s);
      else
        x->map[(size_t)t * (size_t)to->nregs + (size_t)r] = (int32_t)(t * ti->nregs + pos[il]);
    }
    for (int r = 0; r < ti->nregs; r++)
      pos[ilin[r]] = -1;
  }
  free(pos);
  return s;
}

/* convert_layout, reshape: through shared memory (both tiles have the same elements). */
static ir_status plan_exchange(launch *L, xop *x, ir_diag *d) {
  const ir_op *op = x->op;
  const vinfo *iv = info(L, op->operands[0]), *ov = info(L, op->results[0]);
  if (!iv->tile || !ov->tile || iv->n != ov->n || iv->ek != ov->ek)
    return bad(L, d, op, "malformed '%s'", ir_ops[op->code].keyword);
  x->smem = iv->n * elem_bytes(iv->ek);
  return IR_OK;
}

/* ---- planning: reductions --------------------------------------------------------------- */

static void rplan_free(rplan *p) {
  if (!p)
    return;
  free(p->gstart);
  free(p->grep);
  free(p->gout);
  free(p->sgrp);
  free(p->scell);
  free(p->xstart);
  free(p->xsrc);
  free(p->outsrc);
  free(p);
}

typedef uint64_t word;

static bool bits_equal(const word *a, const word *b, int w) {
  return !memcmp(a, b, sizeof *a * (size_t)w);
}

static bool bits_disjoint(const word *a, const word *b, int w) {
  for (int i = 0; i < w; i++)
    if (a[i] & b[i])
      return false;
  return true;
}

static int bits_count(const word *a, int w) {
  int n = 0;
  for (int i = 0; i < w; i++)
    n += __builtin_popcountll(a[i]);
  return n;
}

/* The schedule of a reduction (docs/codegen.md), derived from the layout tables and checked by
 * running it on sets of contributing elements (bitsets over the axis) instead of values:
 * (1) per thread, registers with the same output element combine in register order (a register
 * repeating an element the thread already holds is skipped); (2) lane mask m combines when
 * lanes l and l ^ m hold the same output elements in every register, with disjoint element
 * sets (equal sets are replicas: the step is skipped; a partial overlap is an error); (3) when
 * warps hold disjoint partials of one output element, every thread combines the partials of
 * those warps in warp order through shared memory. Every result register must end with the
 * complete axis, each element counted once. Where this fails (a partial overlap, an incomplete
 * line, a result element its thread does not hold) the reduction takes the shared-memory
 * fallback, as codegen/lower.c does, or is an error when the run is strict. */
static ir_status plan_reduce(launch *L, xop *x, ir_diag *d) {
  const ir_op *op = x->op;
  const ir_value *in = op->operands[0], *out = op->results[0];
  const vinfo *iv = info(L, in), *ov = info(L, out);
  int axis = (int)op->attr[0], T = L->T;
  if (!iv->tile || axis < 0 || axis >= iv->rank || iv->n % iv->shape[axis] ||
      (ov->tile ? ov->n : 1) != iv->n / iv->shape[axis] || ov->ek != iv->ek ||
      !(isf(iv->ek) || isi(iv->ek)))
    return bad(L, d, op, "malformed 'reduce'");
  const tab *ti = iv->t;
  int nin = ti->nregs, A = (int)iv->shape[axis], W = (A + 63) / 64;
  int64_t nout = iv->n / A;
  int64_t oshape[IR_MAX_RANK] = {1};
  for (int dd = 0, j = 0; dd < iv->rank; dd++)
    if (dd != axis)
      oshape[j++] = iv->shape[dd];
  int orank = iv->rank - 1;
  rplan *p = calloc(1, sizeof *p);
  size_t maxg = (size_t)T * (size_t)nin;
  int32_t *opos = malloc(sizeof(int32_t) * (size_t)nout);
  word *bits = calloc(maxg * (size_t)W, sizeof(word));
  word *tmp = calloc(maxg * (size_t)W, sizeof(word));
  int *holder = malloc(sizeof(int) * (size_t)nout * (size_t)(T / LY_WARP));
  x->red = p;
  if (p) {
    p->gstart = malloc(sizeof(int) * ((size_t)T + 1));
    p->grep = malloc(sizeof(int) * maxg);
    p->gout = malloc(sizeof(int32_t) * maxg);
    p->sgrp = malloc(sizeof(int) * maxg);
    p->scell = malloc(sizeof(int) * maxg);
    p->xstart = calloc((size_t)nout + 1, sizeof(int));
    p->xsrc = malloc(sizeof(int) * (size_t)nout * (size_t)(T / LY_WARP));
    p->outsrc = malloc(sizeof(int32_t) * (size_t)(ov->tile ? ov->cells : 1));
  }
  ir_status s = IR_OK;
  if (!p || !opos || !bits || !tmp || !holder || !p->gstart || !p->grep || !p->gout || !p->sgrp ||
      !p->scell || !p->xstart || !p->xsrc || !p->outsrc) {
    s = bad(L, d, op, "out of host memory");
    goto done;
  }
  for (int64_t o = 0; o < nout; o++)
    opos[o] = -1;
  /* (1) groups per thread */
  int ng = 0;
  for (int t = 0; t < T; t++) {
    p->gstart[t] = ng;
    for (int r = 0; r < nin; r++) {
      const int32_t *c = ti->crd + ((size_t)t * (size_t)nin + (size_t)r) * (size_t)iv->rank;
      int64_t oc[IR_MAX_RANK] = {0};
      for (int dd = 0, j = 0; dd < iv->rank; dd++)
        if (dd != axis)
          oc[j++] = c[dd];
      int64_t o = linear(orank, oshape, oc);
      int a = c[axis], gi = opos[o];
      if (gi < 0) {
        gi = opos[o] = ng++;
        p->grep[gi] = t * nin + r;
        p->gout[gi] = (int32_t)o;
      } else if (bits[(size_t)gi * W + (size_t)(a / 64)] >> (a % 64) & 1) {
        continue; /* the thread holds this element twice */
      } else {
        p->sgrp[p->nsteps] = gi;
        p->scell[p->nsteps++] = t * nin + r;
      }
      bits[(size_t)gi * W + (size_t)(a / 64)] |= (word)1 << (a % 64);
    }
    for (int g = p->gstart[t]; g < ng; g++)
      opos[p->gout[g]] = -1;
  }
  p->gstart[T] = ng;
  p->ngroups = ng;
  /* (2) butterflies */
  for (int m = 16; m >= 1; m /= 2) {
    bool aligned = true;
    for (int t = 0; t < T && aligned; t++) {
      int u = t ^ m;
      aligned = p->gstart[t + 1] - p->gstart[t] == p->gstart[u + 1] - p->gstart[u];
      for (int r = 0; r < nin && aligned; r++) {
        const int32_t *a = ti->crd + ((size_t)t * (size_t)nin + (size_t)r) * (size_t)iv->rank;
        const int32_t *b = ti->crd + ((size_t)u * (size_t)nin + (size_t)r) * (size_t)iv->rank;
        for (int dd = 0; dd < iv->rank && aligned; dd++)
          aligned = dd == axis || a[dd] == b[dd];
      }
    }
    if (!aligned)
      continue;
    int ndisjoint = 0, nequal = 0, npairs = 0, bad_t = -1;
    for (int t = 0; t < T; t++)
      for (int g = p->gstart[t]; g < p->gstart[t + 1]; g++) {
        int h = p->gstart[t ^ m] + (g - p->gstart[t]);
        const word *a = bits + (size_t)g * W, *b = bits + (size_t)h * W;
        npairs++;
        if (bits_equal(a, b, W))
          nequal++;
        else if (bits_disjoint(a, b, W))
          ndisjoint++;
        else if (bad_t < 0)
          bad_t = t;
      }
    if (nequal == npairs)
      continue; /* replicas */
    if (ndisjoint != npairs) {
      if (!L->strict) {
        p->fallback = true;
        goto done;
      }
      s = bad(L, d, op,
              "reduce of %s (layout %s): lanes %d and %d hold partly the same elements; a "
              "butterfly by %d would count some twice",
              vname(in).s, lyname(layout(L, in)).s, bad_t < 0 ? 0 : bad_t,
              (bad_t < 0 ? 0 : bad_t) ^ m, m);
      goto done;
    }
    memcpy(tmp, bits, sizeof(word) * (size_t)ng * (size_t)W);
    for (int t = 0; t < T; t++)
      for (int g = p->gstart[t]; g < p->gstart[t + 1]; g++) {
        int h = p->gstart[t ^ m] + (g - p->gstart[t]);
        for (int i = 0; i < W; i++)
          bits[(size_t)g * W + (size_t)i] =
              tmp[(size_t)g * W + (size_t)i] | tmp[(size_t)h * W + (size_t)i];
      }
    p->masks[p->nmasks++] = m;
  }
  /* (3) across warps: per output element, the first holder of each warp; distinct partials */
  int nw = T / LY_WARP;
  for (size_t i = 0; i < (size_t)nout * (size_t)nw; i++)
    holder[i] = -1;
  bool warp_split = false;
  for (int g = 0; g < ng; g++) {
    int t = p->grep[g] / nin, w = t / LY_WARP;
    int *h = &holder[(size_t)p->gout[g] * (size_t)nw + (size_t)w];
    if (*h < 0)
      *h = g;
    else if (!bits_equal(bits + (size_t)*h * W, bits + (size_t)g * W, W))
      warp_split = true; /* lanes of one warp with different partials: reported below */
  }
  int nx = 0;
  for (int64_t o = 0; o < nout; o++) {
    p->xstart[o] = nx;
    for (int w = 0; w < nw; w++) {
      int g = holder[(size_t)o * (size_t)nw + (size_t)w];
      if (g < 0)
        continue;
      bool dup = false;
      for (int j = p->xstart[o]; j < nx && !dup; j++) {
        const word *a = bits + (size_t)p->xsrc[j] * W, *b = bits + (size_t)g * W;
        if (bits_equal(a, b, W))
          dup = true;
        else if (!bits_disjoint(a, b, W)) {
          if (!L->strict) {
            p->fallback = true;
            goto done;
          }
          s = bad(L, d, op,
                  "reduce of %s (layout %s): warps %d and %d hold partly the same elements of "
                  "output element %s",
                  vname(in).s, lyname(layout(L, in)).s, p->grep[p->xsrc[j]] / nin / LY_WARP, w,
                  coords(orank, oshape, o).s);
          goto done;
        }
      }
      if (!dup)
        p->xsrc[nx++] = g;
    }
    if (nx - p->xstart[o] > 1)
      p->xwarp = true;
  }
  p->xstart[nout] = nx;
  /* final sets, and the check that every group ends with the whole axis */
  for (int g = 0; g < ng; g++) {
    int cnt = 0;
    if (p->xwarp && !warp_split) {
      int o = p->gout[g];
      for (int j = p->xstart[o]; j < p->xstart[o + 1]; j++)
        cnt += bits_count(bits + (size_t)p->xsrc[j] * W, W);
    } else {
      cnt = bits_count(bits + (size_t)g * W, W);
    }
    if (cnt != A) {
      int t = p->grep[g] / nin;
      if (!L->strict) {
        p->fallback = true;
        goto done;
      }
      s = bad(L, d, op,
              "reduce of %s (layout %s): thread %d ends with %d of the %d elements of output "
              "element %s; the shuffles and shared memory do not complete the reduction",
              vname(in).s, lyname(layout(L, in)).s, t, cnt, A, coords(orank, oshape, p->gout[g]).s);
      goto done;
    }
  }
  if (p->xwarp)
    p->smem = (int64_t)nw * nout * elem_bytes(iv->ek);
  /* result registers take their thread's group */
  if (ov->tile) {
    const tab *to = ov->t;
    for (int t = 0; t < T && !s; t++) {
      for (int g = p->gstart[t]; g < p->gstart[t + 1]; g++)
        opos[p->gout[g]] = g;
      for (int r = 0; r < to->nregs; r++) {
        int32_t o = to->lin[(size_t)t * (size_t)to->nregs + (size_t)r];
        if (opos[o] < 0 && !L->strict) {
          p->fallback = true;
          goto done;
        }
        if (opos[o] < 0) {
          s = bad(L, d, op, "thread %d does not hold element %s of %s for 'reduce' (layout %s)", t,
                  coords(orank, oshape, o).s, vname(out).s, lyname(layout(L, out)).s);
          break;
        }
        p->outsrc[(size_t)t * (size_t)to->nregs + (size_t)r] = opos[o];
      }
      for (int g = p->gstart[t]; g < p->gstart[t + 1]; g++)
        opos[p->gout[g]] = -1;
    }
  } else {
    p->outsrc[0] = 0; /* a rank-1 tile reduces to a scalar: every group holds it */
  }
  if (ng > L->maxgroups)
    L->maxgroups = ng;
done:
  if (p && p->fallback)
    p->smem = iv->n * elem_bytes(iv->ek);
  free(opos);
  free(bits);
  free(tmp);
  free(holder);
  return s;
}

/* ---- planning: mma fragments ------------------------------------------------------------ */

/* The fragments of mma.m16n8k16 with .bf16/.f16 A and B and an .f32 accumulator, from the PTX
 * ISA ("Matrix Fragments for mma.m16n8k16 with floating point type"), as (row, col) offsets
 * inside the instruction's matrices; g = groupID = lane >> 2, q = threadID_in_group = lane % 4.
 *   A (16x16): a0,a1: (g, 2q+{0,1})  a2,a3: (g+8, 2q+{0,1})  a4,a5: (g, 2q+8+{0,1})
 *              a6,a7: (g+8, 2q+8+{0,1})
 *   B (16x8):  b0,b1: (2q+{0,1}, g)  b2,b3: (2q+8+{0,1}, g)
 *   C, D (16x8): c0,c1: (g, 2q+{0,1})  c2,c3: (g+8, 2q+{0,1}) */
static void frag_a(int lane, int i, int *row, int *col) {
  static const int dr[8] = {0, 0, 8, 8, 0, 0, 8, 8}, dc[8] = {0, 1, 0, 1, 8, 9, 8, 9};
  *row = (lane >> 2) + dr[i];
  *col = 2 * (lane % 4) + dc[i];
}

static void frag_b(int lane, int i, int *row, int *col) {
  static const int dr[4] = {0, 1, 8, 9};
  *row = 2 * (lane % 4) + dr[i];
  *col = lane >> 2;
}

/* mma.m16n8k32 with .e4m3/.e5m2 A and B (PTX ISA, "Matrix Fragments for mma.m16n8k32"):
 *   A (16x32): a0..a3: (g, 4q+{0..3})  a4..a7: (g+8, 4q+{0..3})  a8..a11: (g, 4q+16+{0..3})
 *              a12..a15: (g+8, 4q+16+{0..3})
 *   B (32x8):  b0..b3: (4q+{0..3}, g)  b4..b7: (4q+16+{0..3}, g);  C, D as for m16n8k16. */
static void frag_a8(int lane, int i, int *row, int *col) {
  static const int dr[4] = {0, 8, 0, 8}, dc[4] = {0, 0, 16, 16};
  *row = (lane >> 2) + dr[i / 4];
  *col = 4 * (lane % 4) + dc[i / 4] + i % 4;
}

static void frag_b8(int lane, int i, int *row, int *col) {
  *row = 4 * (lane % 4) + i % 4 + (i >= 4 ? 16 : 0);
  *col = lane >> 2;
}

static void frag_c(int lane, int i, int *row, int *col) {
  static const int dr[4] = {0, 0, 8, 8}, dc[4] = {0, 1, 0, 1};
  *row = (lane >> 2) + dr[i];
  *col = 2 * (lane % 4) + dc[i];
}

/* The instruction grid of a dot: warps tile (M, N) as wm x wn, each warp repeats over reps_m x
 * reps_n output tiles of 16 x 8 and reps_k K steps of ks = 16 (16-bit operands) or 32 (8-bit:
 * m16n8k32), with na = ks / 2 A and nb = ks / 4 B elements per lane and instruction (the
 * register numbering of compiler/layout.c: A ((rm * reps_k + rk) * na + i), B ((rk * reps_n +
 * rn) * nb + i), C/D ((rm * reps_n + rn) * 4 + i)). */
typedef struct mgrid {
  int64_t M, N, K;
  int wm, wn, reps_m, reps_n, reps_k;
  int ks, na, nb;
} mgrid;

/* Fragment element i of A or B of the instruction shape of m. */
static void frag_ab(const mgrid *m, bool b, int lane, int i, int *row, int *col) {
  if (m->ks == 32)
    (b ? frag_b8 : frag_a8)(lane, i, row, col);
  else
    (b ? frag_b : frag_a)(lane, i, row, col);
}

static mgrid dot_grid(const launch *L, const ir_op *op) {
  const vinfo *a = info(L, op->operands[0]), *b = info(L, op->operands[1]);
  const ly_layout *r = layout(L, op->results[0]);
  mgrid m = {a->shape[0], b->shape[1], a->shape[1], r->wpc[0], r->wpc[1], 0, 0, 0, 16, 8, 4};
  if (ir_kind_bits(a->ek) == 8)
    m.ks = 32, m.na = 16, m.nb = 8;
  m.reps_m = (int)cdiv(m.M, 16 * (int64_t)m.wm);
  m.reps_n = (int)cdiv(m.N, 8 * (int64_t)m.wn);
  m.reps_k = (int)cdiv(m.K, m.ks);
  return m;
}

/* Checks one fragment element: register reg of thread t of value v must exist and hold the
 * tile element the ISA assigns to it (instruction origin + table offset, modulo the shape:
 * replicated tiles wrap). */
static ir_status frag_check(const launch *L, ir_diag *d, const ir_op *op, const ir_value *v,
                            const char *what, int t, int reg, char fragname, int i, int64_t row,
                            int64_t col) {
  const vinfo *vi = info(L, v);
  int64_t want[2] = {row % vi->shape[0], col % vi->shape[1]};
  if (reg >= vi->t->nregs)
    return bad(L, d, op,
               "%s layout disagrees with the mma fragment: %s (%s) has %d registers per thread; "
               "fragment %c%d of lane %d needs register %d",
               what, vname(v).s, lyname(layout(L, v)).s, vi->t->nregs, fragname, i, t % LY_WARP,
               reg);
  int64_t have = vi->t->lin[(size_t)t * (size_t)vi->t->nregs + (size_t)reg];
  if (have != linear(2, vi->shape, want))
    return bad(L, d, op,
               "%s layout disagrees with the mma fragment: register %d of thread %d holds "
               "element %s of %s (%s), but the mma fragment %c%d of lane %d is element %s",
               what, reg, t, coords(2, vi->shape, have).s, vname(v).s, lyname(layout(L, v)).s,
               fragname, i, t % LY_WARP, coords(2, vi->shape, linear(2, vi->shape, want)).s);
  return IR_OK;
}

/* dot: A in DOTOP op 0, B in DOTOP op 1, accumulator and result in one MMA layout, and every
 * fragment element of every instruction in the register the ISA tables put it in. */
static ir_status plan_dot(launch *L, const ir_op *op, ir_diag *d) {
  const ir_value *a = op->operands[0], *b = op->operands[1], *c = op->operands[2];
  const ir_value *r = op->results[0];
  const vinfo *av = info(L, a), *bv = info(L, b), *cv = info(L, c), *rv = info(L, r);
  if (!av->tile || !bv->tile || !rv->tile || av->rank != 2 || bv->rank != 2 || rv->rank != 2 ||
      av->shape[1] != bv->shape[0] || rv->shape[0] != av->shape[0] ||
      rv->shape[1] != bv->shape[1] || (cv->tile && cv->t->n != rv->n))
    return bad(L, d, op, "malformed 'dot'");
  bool f8 =
      (av->ek == IR_F8E4M3 || av->ek == IR_F8E5M2) && (bv->ek == IR_F8E4M3 || bv->ek == IR_F8E5M2);
  if (!(((av->ek == IR_BF16 || av->ek == IR_F16) && bv->ek == av->ek) || f8) || rv->ek != IR_F32 ||
      cv->ek != IR_F32)
    return bad(L, d, op,
               "dot: mma.m16n8k16 takes bf16 or f16 operands, mma.m16n8k32 e4m3 or e5m2 ones, "
               "and an f32 accumulator, not %s x %s -> %s",
               ir_kind_name(av->ek), ir_kind_name(bv->ek), ir_kind_name(rv->ek));
  const ly_layout *la = layout(L, a), *lb = layout(L, b), *lr = layout(L, r);
  if (lr->kind != LY_MMA)
    return bad(L, d, op, "dot: the result %s must be in an MMA layout, not %s", vname(r).s,
               lyname(lr).s);
  if (cv->tile && !ly_equal(layout(L, c), lr))
    return bad(L, d, op, "layout mismatch at 'dot': the accumulator %s has %s, the result %s",
               vname(c).s, lyname(layout(L, c)).s, lyname(lr).s);
  int kw = f8 ? 4 : 2;
  if (la->kind != LY_DOTOP || la->opidx != 0 || la->parent->kind != LY_MMA || la->kw != kw)
    return bad(L, d, op,
               "dot: operand A %s must be in a DOTOP layout of operand 0 with kw=%d, not %s",
               vname(a).s, kw, lyname(la).s);
  if (lb->kind != LY_DOTOP || lb->opidx != 1 || lb->parent->kind != LY_MMA || lb->kw != kw)
    return bad(L, d, op,
               "dot: operand B %s must be in a DOTOP layout of operand 1 with kw=%d, not %s",
               vname(b).s, kw, lyname(lb).s);
  mgrid m = dot_grid(L, op);
  ir_status s = IR_OK;
  for (int t = 0; t < L->T && !s; t++) {
    int w = t / LY_WARP, lane = t % LY_WARP, wi = w % m.wm, wj = w / m.wm;
    for (int rm = 0; rm < m.reps_m && !s; rm++)
      for (int rk = 0; rk < m.reps_k && !s; rk++)
        for (int i = 0; i < m.na && !s; i++) {
          int row, col;
          frag_ab(&m, false, lane, i, &row, &col);
          s = frag_check(L, d, op, a, "DOTOP", t, (rm * m.reps_k + rk) * m.na + i, 'a', i,
                         (rm * m.wm + wi) * 16 + row, rk * m.ks + col);
        }
    for (int rk = 0; rk < m.reps_k && !s; rk++)
      for (int rn = 0; rn < m.reps_n && !s; rn++)
        for (int i = 0; i < m.nb && !s; i++) {
          int row, col;
          frag_ab(&m, true, lane, i, &row, &col);
          s = frag_check(L, d, op, b, "DOTOP", t, (rk * m.reps_n + rn) * m.nb + i, 'b', i,
                         rk * m.ks + row, (rn * m.wn + wj) * 8 + col);
        }
    for (int rm = 0; rm < m.reps_m && !s; rm++)
      for (int rn = 0; rn < m.reps_n && !s; rn++)
        for (int i = 0; i < 4 && !s; i++) {
          int row, col;
          frag_c(lane, i, &row, &col);
          s = frag_check(L, d, op, r, "MMA", t, (rm * m.reps_n + rn) * 4 + i, 'c', i,
                         (rm * m.wm + wi) * 16 + row, (rn * m.wn + wj) * 8 + col);
        }
  }
  return s;
}

/* ---- planning: control flow and the op list --------------------------------------------- */

/* A carried or yielded value src flowing into dst: both scalars, both tiles in one layout, or
 * a scalar splatted into a tile. */
static ir_status plan_flow(launch *L, ir_diag *d, const ir_op *op, const ir_value *dst,
                           const ir_value *src) {
  const vinfo *dv = info(L, dst), *sv = info(L, src);
  if (sv->tile && (!dv->tile || dv->t != sv->t))
    return bad(L, d, op, "layout mismatch at '%s': %s has %s, but %s has %s",
               ir_ops[op->code].keyword, vname(src).s, lyname(layout(L, src)).s, vname(dst).s,
               lyname(dv->tile ? layout(L, dst) : NULL).s);
  return IR_OK;
}

static ir_status plan_op(launch *L, xop *x, ir_diag *d) {
  const ir_op *op = x->op;
  ir_opcode c = op->code;
  if (elementwise(c))
    return plan_elementwise(L, op, d);
  switch (c) {
  case IR_OP_BROADCAST:
  case IR_OP_EXPAND_DIMS:
  case IR_OP_TRANS:
    return op->nopnd == 1 && op->nres == 1 ? plan_gather(L, x, d) : bad(L, d, op, "malformed op");
  case IR_OP_CONVERT:
  case IR_OP_RESHAPE:
    return op->nopnd == 1 && op->nres == 1 ? plan_exchange(L, x, d) : bad(L, d, op, "malformed op");
  case IR_OP_REDUCE:
    return op->nopnd == 1 && op->nres == 1 ? plan_reduce(L, x, d) : bad(L, d, op, "malformed op");
  case IR_OP_DOT:
    return op->nopnd == 3 && op->nres == 1 ? plan_dot(L, op, d) : bad(L, d, op, "malformed op");
  case IR_OP_FOR: {
    const ir_block *body = op->regions[0];
    int n = op->nres;
    if (op->nopnd != n + 3 || !body || body->nargs != n + 1 || !body->last ||
        body->last->code != IR_OP_YIELD || body->last->nopnd != n)
      return bad(L, d, op, "malformed loop");
    ir_status s = IR_OK;
    for (int i = 0; i < n && !s; i++)
      if (!(s = plan_flow(L, d, op, op->results[i], op->operands[3 + i])) &&
          !(s = plan_flow(L, d, op, body->args[1 + i], op->results[i])))
        s = plan_flow(L, d, body->last, op->results[i], body->last->operands[i]);
    return s;
  }
  case IR_OP_IF:
    for (int r = 0; r < 2; r++) {
      const ir_block *b = op->regions[r];
      if (!b)
        continue;
      if (!b->last || b->last->code != IR_OP_YIELD || b->last->nopnd != op->nres)
        return bad(L, d, op, "malformed if");
      for (int i = 0; i < op->nres; i++) {
        ir_status s = plan_flow(L, d, b->last, op->results[i], b->last->operands[i]);
        if (s)
          return s;
      }
    }
    return IR_OK;
  default:
    return IR_OK;
  }
}

static ir_status plan_block(launch *L, const ir_block *b, int depth, int *first, ir_diag *d) {
  *first = -1;
  if (depth > IR_MAX_DEPTH + 1)
    return bad(L, d, b->parent, "regions nested too deeply");
  int prev = -1;
  for (const ir_op *op = b->first; op; op = op->next) {
    if (L->nxops >= L->capxops)
      return bad(L, d, op, "malformed kernel: more ops than counted");
    if (op->nopnd < 0 || op->nres < 0 || op->nregions < 0 || op->nregions > 2 ||
        (op->nopnd && !op->operands) || (op->nres && !op->results) || op->code >= IR_NOPS)
      return bad(L, d, op, "malformed op");
    int x = L->nxops++;
    L->xops[x] = (xop){.op = op, .next = -1, .first = {-1, -1}};
    if (prev < 0)
      *first = x;
    else
      L->xops[prev].next = x;
    prev = x;
    for (int i = 0; i < op->nopnd; i++)
      if (!op->operands[i] || op->operands[i]->id < 0 || op->operands[i]->id >= L->k->nvalues)
        return bad(L, d, op, "malformed kernel: bad operand");
    for (int r = 0; r < op->nregions; r++) {
      const ir_block *rb = op->regions[r];
      if (!rb)
        continue;
      for (int i = 0; i < rb->nargs; i++) {
        ir_status s = plan_value(L, rb->args[i], op, d);
        if (s)
          return s;
      }
      int f;
      ir_status s = plan_block(L, rb, depth + 1, &f, d);
      if (s)
        return s;
      L->xops[x].first[r] = f;
    }
    for (int i = 0; i < op->nres; i++) {
      ir_status s = plan_value(L, op->results[i], op, d);
      if (s)
        return s;
    }
    ir_status s = plan_op(L, &L->xops[x], d);
    if (s)
      return s;
  }
  return IR_OK;
}

static int count_ops(const ir_block *b, int depth) {
  int n = 0;
  if (!b || depth > IR_MAX_DEPTH + 1)
    return 0;
  for (const ir_op *op = b->first; op && n <= IR_MAX_OPS; op = op->next) {
    n++;
    for (int r = 0; r < op->nregions && r < 2; r++)
      n += count_ops(op->regions[r], depth + 1);
  }
  return n;
}

static ir_status plan(launch *L, ir_diag *d) {
  const ir_kernel *k = L->k;
  L->capxops = count_ops(k->body, 0) + 1;
  L->xops = calloc((size_t)L->capxops, sizeof *L->xops);
  if (!L->xops)
    return bad(L, d, NULL, "out of host memory");
  for (int a = 0; a < k->nargs; a++)
    if (k->args[a].value) {
      ir_status s = plan_value(L, k->args[a].value, NULL, d);
      if (s)
        return s;
    }
  if (!k->body)
    return bad(L, d, NULL, "kernel has no body");
  return plan_block(L, k->body, 0, &L->root, d);
}

/* ---- execution: storage ----------------------------------------------------------------- */

static cell *val(prog *P, const ir_value *v) { return P->s[v->id]; }

/* The cells of a new value of v (contents undefined); NULL on host out-of-memory. */
static cell *def(prog *P, const ir_value *v) {
  if (!P->s[v->id])
    P->s[v->id] = malloc(sizeof(cell) * (size_t)P->L->vi[v->id].cells);
  return P->s[v->id];
}

/* Starts a new round of writes to the shared-memory scratch (its stamps tell written cells). */
static void next_epoch(prog *P) {
  if (++P->epoch == 0) {
    memset(P->stamp, 0, sizeof(uint32_t) * (size_t)P->L->maxn);
    P->epoch = 1;
  }
}

/* Records that thread t writes value c to element e of the current round; replicated registers
 * must write the same value. Returns false (error set) when they do not. */
static bool record(prog *P, const ir_op *op, const ir_value *v, int64_t e, int t, cell c) {
  const vinfo *vi = info(P->L, v);
  if (P->stamp[e] != P->epoch) {
    P->stamp[e] = P->epoch;
    P->smem[e] = c;
    P->writer[e] = t;
    return true;
  }
  if (same(vi->ek, P->smem[e], c))
    return true;
  bad(P->L, &P->d, op,
      "replicated registers of %s disagree at element %s in '%s': thread %d holds %s, thread %d "
      "holds %s",
      vname(v).s, coords(vi->rank, vi->shape, e).s, ir_ops[op->code].keyword, P->writer[e],
      cellstr(vi->ek, P->smem[e]).s, t, cellstr(vi->ek, c).s);
  return false;
}

/* ---- execution: elementwise ops --------------------------------------------------------- */

static int64_t stride(const vinfo *v) { return v->cells == 1 ? 0 : 1; }

static ir_status elementwise_op(prog *P, const ir_op *op) {
  launch *L = P->L;
  const ir_value *res = op->results[0];
  const vinfo *ri = info(L, res);
  int64_t n = ri->cells;
  cell *r = def(P, res);
  if (!r)
    return fail(P, op, "out of host memory");
  const vinfo *ai = info(L, op->operands[0]);
  const cell *a = val(P, op->operands[0]);
  const char *e = NULL;
  switch (op->code) {
  case IR_OP_CMP:
    e = ir_exec_compare(op->sub, ai->ek, r, a, stride(ai), val(P, op->operands[1]),
                        stride(info(L, op->operands[1])), n);
    break;
  case IR_OP_SELECT:
    ir_exec_select(r, a, stride(ai), val(P, op->operands[1]), stride(info(L, op->operands[1])),
                   val(P, op->operands[2]), stride(info(L, op->operands[2])), n);
    break;
  case IR_OP_CAST:
    if ((ai->ek == IR_PTR) != (ri->ek == IR_PTR) || ai->ek == IR_TENSOR)
      return fail(P, op, "cannot cast %s to %s", ir_kind_name(ai->ek), ir_kind_name(ri->ek));
    ir_exec_cast(ai->ek, ri->ek, r, a, stride(ai), n);
    break;
  default:
    if (op->nopnd == 2) {
      const vinfo *bi = info(L, op->operands[1]);
      if (ai->ek != ri->ek || bi->ek != ri->ek)
        return fail(P, op, "operand kinds %s and %s do not match the result %s",
                    ir_kind_name(ai->ek), ir_kind_name(bi->ek), ir_kind_name(ri->ek));
      e = ir_exec_binary(op->code, ri->ek, r, a, stride(ai), val(P, op->operands[1]), stride(bi),
                         n);
    } else {
      if (ai->ek != ri->ek)
        return fail(P, op, "the operand does not match the result");
      e = ir_exec_unary(op->code, ri->ek, r, a, stride(ai), n);
    }
    break;
  }
  return e ? fail(P, op, "%s", e) : IR_OK;
}

/* ---- execution: memory ------------------------------------------------------------------ */

/* Checks a pointer for an access of kind want; returns the element offset or -1 (error set). */
static int64_t ptr_check(prog *P, const ir_op *op, int64_t p, ir_kind want, bool store, int *arg) {
  const launch *L = P->L;
  int64_t off;
  int a = ir_exec_ptr_arg(p, &off);
  const char *what = store ? "store" : "load";
  if (a < 0 || a >= L->k->nargs || L->args[a].kind == ARG_SCALAR) {
    fail(P, op, "%s through an invalid pointer", what);
    return -1;
  }
  if (off < 0 || off >= L->args[a].count) {
    fail(P, op, "out-of-bounds %s through '%%%s' at element %lld (buffer has %lld)", what,
         L->k->args[a].name, (long long)off, (long long)L->args[a].count);
    return -1;
  }
  if (L->argkind[a] != want) {
    fail(P, op, "%s of %s through '%%%s', which holds %s", what, ir_kind_name(want),
         L->k->args[a].name, ir_kind_name(L->argkind[a]));
    return -1;
  }
  *arg = a;
  return off;
}

static ir_status addptr_op(prog *P, const ir_op *op) {
  const vinfo *pi = info(P->L, op->operands[0]), *oi = info(P->L, op->operands[1]);
  const vinfo *ri = info(P->L, op->results[0]);
  if (pi->ek != IR_PTR || ri->ek != IR_PTR || !isi(oi->ek))
    return fail(P, op, "operands do not match");
  const cell *p = val(P, op->operands[0]), *o = val(P, op->operands[1]);
  int64_t sp = stride(pi), so = stride(oi);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  for (int64_t i = 0; i < ri->cells; i++) {
    int64_t off, sum;
    int a = ir_exec_ptr_arg(p[i * sp].i, &off);
    if (__builtin_add_overflow(off, o[i * so].i, &sum) || sum < -IR_EXEC_PTR_BIAS ||
        sum >= IR_EXEC_PTR_BIAS)
      return fail(P, op, "pointer offset overflows");
    r[i].i = ir_exec_ptr_make(a, sum);
  }
  return IR_OK;
}

static ir_status load_ptr_op(prog *P, const ir_op *op) {
  const launch *L = P->L;
  const vinfo *pi = info(L, op->operands[0]), *ri = info(L, op->results[0]);
  const vinfo *mi = op->nopnd > 1 ? info(L, op->operands[1]) : NULL;
  const vinfo *xi = op->nopnd > 2 ? info(L, op->operands[2]) : NULL;
  if (op->nopnd > 3 || pi->ek != IR_PTR || pi->ptee != ri->ek || (mi && mi->ek != IR_I1) ||
      (xi && xi->ek != ri->ek))
    return fail(P, op, "operands do not match");
  const cell *p = val(P, op->operands[0]);
  const cell *m = mi ? val(P, op->operands[1]) : NULL, *x = xi ? val(P, op->operands[2]) : NULL;
  int64_t sp = stride(pi), sm = mi ? stride(mi) : 0, sx = xi ? stride(xi) : 0;
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  for (int64_t i = 0; i < ri->cells; i++) {
    if (m && !m[i * sm].i) {
      r[i] = x ? x[i * sx] : (cell){0};
      continue;
    }
    int a;
    int64_t off = ptr_check(P, op, p[i * sp].i, ri->ek, false, &a);
    if (off < 0)
      return P->d.status;
    ir_exec_read(ri->ek, L->args[a].data, off, 1, 1, &r[i]);
  }
  return IR_OK;
}

static ir_status store_ptr_op(prog *P, const ir_op *op) {
  const launch *L = P->L;
  const vinfo *pi = info(L, op->operands[0]), *vi = info(L, op->operands[1]);
  const vinfo *mi = op->nopnd > 2 ? info(L, op->operands[2]) : NULL;
  int64_t n = pi->cells > vi->cells ? pi->cells : vi->cells;
  if (mi && mi->cells > n)
    n = mi->cells;
  if (op->nopnd > 3 || pi->ek != IR_PTR || pi->ptee != vi->ek || (mi && mi->ek != IR_I1))
    return fail(P, op, "operands do not match");
  const cell *p = val(P, op->operands[0]), *v = val(P, op->operands[1]);
  const cell *m = mi ? val(P, op->operands[2]) : NULL;
  int64_t sp = stride(pi), sv = stride(vi), sm = mi ? stride(mi) : 0;
  for (int64_t i = 0; i < n; i++) {
    if (m && !m[i * sm].i)
      continue;
    int a;
    int64_t off = ptr_check(P, op, p[i * sp].i, vi->ek, true, &a);
    if (off < 0)
      return P->d.status;
    ir_exec_write(vi->ek, L->args[a].data, off, 1, 1, &v[i * sv]);
  }
  return IR_OK;
}

/* Scalar integer operand i of op. */
static ir_status int_operand(prog *P, const ir_op *op, int i, int64_t *v) {
  const vinfo *vi = info(P->L, op->operands[i]);
  if (vi->cells != 1 || !isi(vi->ek))
    return fail(P, op, "operand %d must be an integer scalar", i);
  *v = val(P, op->operands[i])[0].i;
  return IR_OK;
}

/* Block load/store, per register: the tile covers the last `rank` dims of the tensor from the
 * given offsets, leading indices select; out-of-bounds registers read the fill or skip the
 * store. Replicated registers load the same element; their stores must agree. */
static ir_status block_access(prog *P, const ir_op *op, bool store) {
  const launch *L = P->L;
  if (op->nopnd < 1 + store)
    return fail(P, op, "malformed op");
  const ir_value *tv = op->operands[0];
  int argno = tv->argno;
  if (info(L, tv)->ek != IR_TENSOR || tv->def || tv->owner || argno < 0 || argno >= L->k->nargs)
    return fail(P, op, "operand 0 must be a tensor argument");
  const ir_argval *A = &L->args[argno];
  ir_kind ek = L->argkind[argno];
  int R = A->rank;
  const ir_value *tile = store ? op->operands[op->nopnd - 1] : op->results[0];
  if ((store && op->nres != 0) || (!store && op->nres != 1))
    return fail(P, op, "malformed op");
  const vinfo *ti = info(L, tile);
  int r = ti->rank;
  if (!ti->tile || op->nopnd != 1 + R + store || r > R)
    return fail(P, op, "tensor '%s' of rank %d needs %d indices and a tile of rank <= %d",
                L->k->args[argno].name, R, R, R);
  if (ti->ek != ek)
    return fail(P, op, "tensor '%s' holds %s, not %s", L->k->args[argno].name, ir_kind_name(ek),
                ir_kind_name(ti->ek));
  int64_t idx[IR_MAX_RANK];
  for (int d = 0; d < R; d++) {
    ir_status s = int_operand(P, op, 1 + d, &idx[d]);
    if (s)
      return s;
    if (idx[d] < -IR_EXEC_MAX_DIM)
      idx[d] = -IR_EXEC_MAX_DIM;
    if (idx[d] > IR_EXEC_MAX_DIM)
      idx[d] = IR_EXEC_MAX_DIM;
  }
  cell fillv = {0};
  if (!store && op->ex[1]) {
    ir_num f;
    if (ir_expr_eval(L->k, op->ex[1], L->symv, L->symset, &f, &P->d))
      return P->d.status = IR_ERR_RUNTIME;
    fillv = ir_exec_from_num(ek, f);
  }
  cell *t = store ? val(P, tile) : def(P, tile);
  if (!t)
    return fail(P, op, "out of host memory");
  bool inside = true;
  int64_t base = 0;
  for (int d = 0; d < R - r; d++) {
    inside &= idx[d] >= 0 && idx[d] < A->shape[d];
    base += idx[d] * A->stride[d];
  }
  const tab *tb = ti->t;
  if (store)
    next_epoch(P);
  for (int64_t i = 0; i < ti->cells; i++) {
    const int32_t *c = tb->crd + (size_t)i * (size_t)r;
    bool in = inside;
    int64_t e = base;
    for (int d = 0; d < r && in; d++) {
      int td = R - r + d;
      int64_t o = idx[td] + c[d];
      in = o >= 0 && o < A->shape[td];
      e += o * A->stride[td];
    }
    if (!store) {
      if (in)
        ir_exec_read(ek, A->data, e, 1, 1, &t[i]);
      else
        t[i] = fillv;
    } else if (in) {
      int32_t lin = tb->lin[i];
      bool first = P->stamp[lin] != P->epoch;
      if (!record(P, op, tile, lin, (int)(i / tb->nregs), t[i]))
        return P->d.status;
      if (first)
        ir_exec_write(ek, A->data, e, 1, 1, &t[i]);
    }
  }
  return IR_OK;
}

/* ---- execution: layout ops -------------------------------------------------------------- */

static ir_status gather_op(prog *P, const xop *x) {
  const ir_op *op = x->op;
  const vinfo *ri = info(P->L, op->results[0]);
  const cell *a = val(P, op->operands[0]);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  for (int64_t i = 0; i < ri->cells; i++)
    r[i] = a[x->map[i]];
  return IR_OK;
}

/* convert_layout, reshape: every thread stores its registers at the row-major index of their
 * coordinates, barrier, every thread loads its result registers, barrier. */
static ir_status exchange_op(prog *P, const xop *x) {
  const ir_op *op = x->op;
  const ir_value *in = op->operands[0];
  const vinfo *iv = info(P->L, in), *ov = info(P->L, op->results[0]);
  const cell *a = val(P, in);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  next_epoch(P);
  for (int64_t i = 0; i < iv->cells; i++)
    if (!record(P, op, in, iv->t->lin[i], (int)(i / iv->t->nregs), a[i]))
      return P->d.status;
  for (int64_t i = 0; i < ov->cells; i++)
    r[i] = P->smem[ov->t->lin[i]];
  P->st.barriers += 2;
  if (x->smem > P->st.smem_bytes)
    P->st.smem_bytes = x->smem;
  return IR_OK;
}

/* ---- execution: reduce and dot ---------------------------------------------------------- */

static double fmax_nan(double a, double b) {
  if (isnan(a) || isnan(b))
    return NAN;
  if (a == b)
    return signbit(a) ? b : a;
  return a > b ? a : b;
}

static double fmin_nan(double a, double b) {
  if (isnan(a) || isnan(b))
    return NAN;
  if (a == b)
    return signbit(a) ? a : b;
  return a < b ? a : b;
}

/* The kind a reduction of kind k combines in: f16/bf16 in f32 (rounded to k once at the end,
 * as the lowering does), everything else in k. */
static ir_kind combine_kind(ir_kind k) { return k == IR_F16 || k == IR_BF16 ? IR_F32 : k; }

/* op(a, b) of a reduction, rounded or wrapped to kind k. */
static cell combine(int red, ir_kind k, cell a, cell b) {
  cell r;
  if (isf(k)) {
    if (red == IR_RED_SUM)
      r.f = k == IR_F32 ? (double)(float)(a.f + b.f) : ir_round_to(k, a.f + b.f);
    else
      r.f = red == IR_RED_MAX ? fmax_nan(a.f, b.f) : fmin_nan(a.f, b.f);
  } else {
    if (red == IR_RED_SUM)
      r.i = ir_exec_wrap(k, (int64_t)((uint64_t)a.i + (uint64_t)b.i));
    else
      r.i = red == IR_RED_MAX ? (a.i > b.i ? a.i : b.i) : (a.i < b.i ? a.i : b.i);
  }
  return r;
}

/* The shared-memory fallback: the tile is stored (replicas must agree), barrier, every result
 * register combines the elements of its line in index order, barrier. */
static ir_status reduce_smem(prog *P, const xop *x, ir_kind ck, cell *r) {
  const ir_op *op = x->op;
  const ir_value *in = op->operands[0];
  const vinfo *iv = info(P->L, in), *ov = info(P->L, op->results[0]);
  const cell *a = val(P, in);
  int axis = (int)op->attr[0];
  int64_t len = iv->shape[axis], st = 1;
  for (int d = iv->rank - 1; d > axis; d--)
    st *= iv->shape[d];
  next_epoch(P);
  for (int64_t i = 0; i < iv->cells; i++)
    if (!record(P, op, in, iv->t->lin[i], (int)(i / iv->t->nregs), a[i]))
      return P->d.status;
  for (int64_t i = 0; i < ov->cells; i++) {
    int64_t c[IR_MAX_RANK] = {0}; /* a scalar result (rank-1 input) has the one line at 0 */
    for (int d = 0, j = 0; d < iv->rank && ov->tile; d++)
      if (d != axis)
        c[d] = ov->t->crd[(size_t)i * (size_t)ov->rank + (size_t)j++];
    int64_t base = linear(iv->rank, iv->shape, c);
    cell acc = P->smem[base];
    for (int64_t l = 1; l < len; l++)
      acc = combine(op->sub, ck, acc, P->smem[base + l * st]);
    r[i] = acc;
  }
  P->st.barriers += 2;
  P->st.reduce_fallbacks++;
  if (x->red->smem > P->st.smem_bytes)
    P->st.smem_bytes = x->red->smem;
  return IR_OK;
}

static ir_status reduce_op(prog *P, const xop *x) {
  const ir_op *op = x->op;
  const rplan *p = x->red;
  const vinfo *iv = info(P->L, op->operands[0]), *ov = info(P->L, op->results[0]);
  ir_kind k = iv->ek, ck = combine_kind(k);
  int red = op->sub, T = P->L->T;
  if (red != IR_RED_SUM && red != IR_RED_MAX && red != IR_RED_MIN)
    return fail(P, op, "unknown reduction");
  const cell *a = val(P, op->operands[0]);
  cell *r = def(P, op->results[0]), *gv = P->gval, *gt = P->gtmp;
  if (!r)
    return fail(P, op, "out of host memory");
  if (p->fallback) {
    ir_status s = reduce_smem(P, x, ck, r);
    if (!s && ck != k)
      ir_exec_round(k, r, ov->cells);
    return s;
  }
  for (int g = 0; g < p->ngroups; g++)
    gv[g] = a[p->grep[g]];
  for (int i = 0; i < p->nsteps; i++)
    gv[p->sgrp[i]] = combine(red, ck, gv[p->sgrp[i]], a[p->scell[i]]);
  for (int j = 0; j < p->nmasks; j++) {
    int m = p->masks[j];
    memcpy(gt, gv, sizeof(cell) * (size_t)p->ngroups);
    for (int t = 0; t < T; t++) {
      int n = p->gstart[t + 1] - p->gstart[t], u = p->gstart[t ^ m];
      for (int i = 0; i < n; i++)
        gv[p->gstart[t] + i] = combine(red, ck, gt[p->gstart[t] + i], gt[u + i]);
      if (t % LY_WARP == 0)
        P->st.shuffles += n;
    }
  }
  if (p->xwarp) {
    memcpy(gt, gv, sizeof(cell) * (size_t)p->ngroups);
    for (int g = 0; g < p->ngroups; g++) {
      int o = p->gout[g], j = p->xstart[o];
      cell acc = gt[p->xsrc[j]];
      for (j++; j < p->xstart[o + 1]; j++)
        acc = combine(red, ck, acc, gt[p->xsrc[j]]);
      gv[g] = acc;
    }
    P->st.barriers += 2;
    if (p->smem > P->st.smem_bytes)
      P->st.smem_bytes = p->smem;
  }
  for (int64_t i = 0; i < ov->cells; i++)
    r[i] = gv[p->outsrc[i]];
  if (ck != k)
    ir_exec_round(k, r, ov->cells);
  return IR_OK;
}

/* dot: per warp, M repetition, N repetition and K step, one mma.sync.aligned.m16n8k16.row.col
 * .f32.{bf16,f16}.{bf16,f16}.f32 (or m16n8k32 .e4m3/.e5m2) whose A (16xks), B (ksx8) and C (16x8)
 * matrices are assembled from the lanes' fragment registers by the ISA tables; D = A.B + C with
 * the ks exact products summed in double and rounded once to f32 per element and instruction.
 * Fragment elements whose K index lies past the tile (K not a multiple of ks: the layout wraps
 * them onto real columns) are zero, as the lowering must make them. */
static ir_status dot_op(prog *P, const ir_op *op) {
  const launch *L = P->L;
  const ir_value *av = op->operands[0], *bv = op->operands[1], *cv = op->operands[2];
  const int na = info(L, av)->t->nregs, nb = info(L, bv)->t->nregs;
  const vinfo *ci = info(L, cv), *ri = info(L, op->results[0]);
  const int nr = ri->t->nregs;
  const cell *A = val(P, av), *B = val(P, bv), *C = val(P, cv);
  cell *R = def(P, op->results[0]);
  if (!R)
    return fail(P, op, "out of host memory");
  mgrid m = dot_grid(L, op);
  double am[16][32], bm[32][8], acc[LY_WARP][4];
  for (int w = 0; w < L->T / LY_WARP; w++)
    for (int rm = 0; rm < m.reps_m; rm++)
      for (int rn = 0; rn < m.reps_n; rn++) {
        int creg = (rm * m.reps_n + rn) * 4;
        for (int l = 0; l < LY_WARP; l++)
          for (int i = 0; i < 4; i++)
            acc[l][i] = ci->tile ? C[(w * LY_WARP + l) * nr + creg + i].f : C[0].f;
        for (int rk = 0; rk < m.reps_k; rk++) {
          for (int l = 0; l < LY_WARP; l++) {
            int t = w * LY_WARP + l, row, col;
            for (int i = 0; i < m.na; i++) {
              frag_ab(&m, false, l, i, &row, &col);
              am[row][col] =
                  rk * m.ks + col < m.K ? A[t * na + (rm * m.reps_k + rk) * m.na + i].f : 0;
            }
            for (int i = 0; i < m.nb; i++) {
              frag_ab(&m, true, l, i, &row, &col);
              bm[row][col] =
                  rk * m.ks + row < m.K ? B[t * nb + (rk * m.reps_n + rn) * m.nb + i].f : 0;
            }
          }
          for (int l = 0; l < LY_WARP; l++)
            for (int i = 0; i < 4; i++) {
              int row, col;
              frag_c(l, i, &row, &col);
              double s = 0;
              for (int kk = 0; kk < m.ks; kk++)
                s += am[row][kk] * bm[kk][col];
              acc[l][i] = (float)(acc[l][i] + s);
            }
          P->st.mmas++;
        }
        for (int l = 0; l < LY_WARP; l++)
          for (int i = 0; i < 4; i++)
            R[(w * LY_WARP + l) * nr + creg + i].f = acc[l][i];
      }
  return IR_OK;
}

/* ---- execution: constants and control flow ---------------------------------------------- */

static ir_status put_num(prog *P, const ir_op *op, ir_num v) {
  const vinfo *ri = info(P->L, op->results[0]);
  if (!isf(ri->ek) && !isi(ri->ek))
    return fail(P, op, "numeric result expected");
  cell c = ir_exec_from_num(ri->ek, v), *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  for (int64_t i = 0; i < ri->cells; i++)
    r[i] = c;
  return IR_OK;
}

static ir_status eval(prog *P, const ir_op *op, const ir_expr *e, ir_num *out) {
  if (!e)
    return fail(P, op, "missing expression");
  if (ir_expr_eval(P->L->k, e, P->L->symv, P->L->symset, out, &P->d))
    return P->d.status = IR_ERR_RUNTIME;
  return IR_OK;
}

static ir_status full_op(prog *P, const ir_op *op) {
  const vinfo *ai = info(P->L, op->operands[0]), *ri = info(P->L, op->results[0]);
  if (ai->cells != 1 || (ai->ek == IR_PTR) != (ri->ek == IR_PTR) || ai->ek == IR_TENSOR)
    return fail(P, op, "the operand does not match the result");
  cell c = ir_exec_conv(ai->ek, ri->ek, val(P, op->operands[0])[0]), *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  for (int64_t i = 0; i < ri->cells; i++)
    r[i] = c;
  return IR_OK;
}

static ir_status arange_op(prog *P, const ir_op *op) {
  ir_num lo, hi;
  ir_status s;
  if ((s = eval(P, op, op->ex[0], &lo)) || (s = eval(P, op, op->ex[1], &hi)))
    return s;
  const vinfo *ri = info(P->L, op->results[0]);
  if (lo.isf || hi.isf || !isi(ri->ek) || !ri->tile || ri->rank != 1 || lo.i < -IR_EXEC_MAX_DIM ||
      lo.i > IR_EXEC_MAX_DIM || hi.i < -IR_EXEC_MAX_DIM || hi.i > IR_EXEC_MAX_DIM ||
      hi.i - lo.i != ri->n)
    return fail(P, op, "bounds %lld..%lld do not match the result", (long long)lo.i,
                (long long)hi.i);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  for (int64_t i = 0; i < ri->cells; i++)
    r[i].i = ir_exec_wrap(ri->ek, lo.i + ri->t->lin[i]);
  return IR_OK;
}

/* dst = src (a splat when src is a scalar and dst a tile; layouts were checked by plan_flow). */
static ir_status move(prog *P, const ir_op *op, const ir_value *dst, const ir_value *src) {
  const vinfo *di = info(P->L, dst), *si = info(P->L, src);
  if ((si->cells != di->cells && si->cells != 1) || si->ek != di->ek)
    return fail(P, op, "a carried value does not match its type");
  const cell *s = val(P, src);
  cell *d = def(P, dst);
  if (!s || !d)
    return fail(P, op, !s ? "value used before its definition" : "out of host memory");
  if (si->cells == di->cells)
    memmove(d, s, sizeof(cell) * (size_t)di->cells);
  else
    for (int64_t i = 0; i < di->cells; i++)
      d[i] = s[0];
  return IR_OK;
}

static ir_status take_yield(prog *P, const ir_op *op, int y) {
  if (y < 0)
    return fail(P, op, "region does not end in yield");
  const ir_op *yo = P->L->xops[y].op;
  for (int i = 0; i < op->nres; i++) {
    ir_status s = move(P, yo, op->results[i], yo->operands[i]);
    if (s)
      return s;
  }
  return IR_OK;
}

static ir_status run_block(prog *P, int first, int *yield);

static ir_status for_op(prog *P, int x) {
  const xop *xo = &P->L->xops[x];
  const ir_op *op = xo->op;
  const ir_block *body = op->regions[0];
  int n = op->nres;
  int64_t lo, hi, step;
  ir_status s;
  if ((s = int_operand(P, op, 0, &lo)) || (s = int_operand(P, op, 1, &hi)) ||
      (s = int_operand(P, op, 2, &step)))
    return s;
  const ir_value *iv = body->args[0];
  const vinfo *ivi = info(P->L, iv);
  if (ivi->cells != 1 || !isi(ivi->ek))
    return fail(P, op, "the induction variable must be an integer scalar");
  if (step <= 0)
    return fail(P, op, "loop step must be positive, got %lld", (long long)step);
  uint64_t trips = 0;
  if (hi > lo) {
    uint64_t span = (uint64_t)hi - (uint64_t)lo;
    trips = span / (uint64_t)step + (span % (uint64_t)step != 0);
  }
  if (trips > (uint64_t)IR_EXEC_MAX_TRIPS)
    return fail(P, op, "loop runs %llu times; the limit is 2^31", (unsigned long long)trips);
  for (int i = 0; i < n; i++)
    if ((s = move(P, op, op->results[i], op->operands[3 + i])))
      return s;
  for (uint64_t t = 0; t < trips; t++) {
    cell *ivc = def(P, iv);
    if (!ivc)
      return fail(P, op, "out of host memory");
    ivc->i = ir_exec_wrap(ivi->ek, (int64_t)((uint64_t)lo + t * (uint64_t)step));
    for (int i = 0; i < n; i++)
      if ((s = move(P, op, body->args[1 + i], op->results[i])))
        return s;
    int y;
    if ((s = run_block(P, xo->first[0], &y)) || (s = take_yield(P, op, y)))
      return s;
  }
  return IR_OK;
}

static ir_status if_op(prog *P, int x) {
  const xop *xo = &P->L->xops[x];
  const ir_op *op = xo->op;
  const vinfo *ci = info(P->L, op->operands[0]);
  if (op->nopnd != 1 || !op->regions[0] || ci->cells != 1 || ci->ek != IR_I1)
    return fail(P, op, "malformed if");
  int r = val(P, op->operands[0])[0].i ? 0 : 1;
  if (r == 1 && !op->regions[1])
    return op->nres ? fail(P, op, "'if' with results has no else") : IR_OK;
  int y;
  ir_status s = run_block(P, xo->first[r], &y);
  return s ? s : take_yield(P, op, y);
}

static ir_status exec(prog *P, int x) {
  const xop *xo = &P->L->xops[x];
  const ir_op *op = xo->op;
  for (int i = 0; i < op->nopnd; i++)
    if (!val(P, op->operands[i]))
      return fail(P, op, "operand %d is used before its definition", i);
  switch (op->code) {
  case IR_OP_PROGRAM_ID:
  case IR_OP_NUM_PROGRAMS: {
    int64_t ax = op->attr[0];
    if (ax < 0 || ax > 2 || op->nres != 1)
      return fail(P, op, "grid axis %lld is not 0, 1 or 2", (long long)ax);
    return put_num(P, op,
                   (ir_num){.i = op->code == IR_OP_PROGRAM_ID ? P->pid[ax] : P->L->grid[ax]});
  }
  case IR_OP_CONST: {
    ir_num v;
    ir_status s = op->nres == 1 ? eval(P, op, op->ex[0], &v) : fail(P, op, "malformed op");
    return s ? s : put_num(P, op, v);
  }
  case IR_OP_ZEROS:
    return op->nres == 1 ? put_num(P, op, (ir_num){0}) : fail(P, op, "malformed op");
  case IR_OP_FULL:
    return op->nopnd == 1 && op->nres == 1 ? full_op(P, op) : fail(P, op, "malformed op");
  case IR_OP_ARANGE:
    return op->nres == 1 ? arange_op(P, op) : fail(P, op, "malformed op");
  case IR_OP_BROADCAST:
  case IR_OP_EXPAND_DIMS:
  case IR_OP_TRANS:
    return gather_op(P, xo);
  case IR_OP_CONVERT:
  case IR_OP_RESHAPE:
    return exchange_op(P, xo);
  case IR_OP_LOAD:
    return block_access(P, op, false);
  case IR_OP_STORE:
    return block_access(P, op, true);
  case IR_OP_ADDPTR:
    return op->nopnd == 2 && op->nres == 1 ? addptr_op(P, op) : fail(P, op, "malformed op");
  case IR_OP_LOAD_PTR:
    return op->nopnd >= 1 && op->nres == 1 ? load_ptr_op(P, op) : fail(P, op, "malformed op");
  case IR_OP_STORE_PTR:
    return op->nopnd >= 2 && op->nres == 0 ? store_ptr_op(P, op) : fail(P, op, "malformed op");
  case IR_OP_DOT:
    return dot_op(P, op);
  case IR_OP_REDUCE:
    return reduce_op(P, xo);
  case IR_OP_FOR:
    return for_op(P, x);
  case IR_OP_IF:
    return if_op(P, x);
  default:
    if (elementwise(op->code) && op->nres == 1 && op->nopnd >= 1 && op->nopnd <= 3)
      return elementwise_op(P, op);
    return fail(P, op, "unknown op");
  }
}

/* Runs the ops of a block from xop `first`; stops at a yield (its index in *yield, else -1). */
static ir_status run_block(prog *P, int first, int *yield) {
  const launch *L = P->L;
  *yield = -1;
  for (int x = first; x >= 0; x = L->xops[x].next) {
    if (L->xops[x].op->code == IR_OP_YIELD) {
      *yield = x;
      return IR_OK;
    }
    if (atomic_load_explicit(&P->L->stop, memory_order_relaxed) < P->index) {
      P->abandoned = true;
      return IR_ERR_RUNTIME;
    }
    ir_status s = exec(P, x);
    if (s)
      return s;
  }
  return IR_OK;
}

/* ---- programs and threads --------------------------------------------------------------- */

static ir_status run_program(prog *P) {
  const launch *L = P->L;
  for (int a = 0; a < L->k->nargs; a++) {
    const ir_value *v = L->k->args[a].value;
    if (!v)
      continue;
    cell *c = def(P, v);
    if (!c)
      return ir_error(&P->d, IR_ERR_RUNTIME, (ir_loc){L->k->file, 0, 0}, NULL,
                      "out of host memory");
    c->i = L->k->args[a].kind == ARG_PTR ? ir_exec_ptr_make(a, 0) : 0;
  }
  int y;
  return run_block(P, L->root, &y);
}

static void *worker(void *arg) {
  prog *P = arg;
  launch *L = P->L;
  for (;;) {
    int64_t i = atomic_fetch_add(&L->next, 1);
    if (i >= L->nprog || i > atomic_load(&L->stop))
      break;
    P->index = i;
    P->pid[0] = i % L->grid[0];
    P->pid[1] = i / L->grid[0] % L->grid[1];
    P->pid[2] = i / (L->grid[0] * L->grid[1]);
    P->abandoned = false;
    if (run_program(P) != IR_OK && !P->abandoned) {
      if (i < P->errprog) {
        P->errprog = i;
        P->err = P->d;
      }
      int64_t cur = atomic_load(&L->stop);
      while (i < cur && !atomic_compare_exchange_weak(&L->stop, &cur, i))
        ;
      break;
    }
    if (!P->abandoned)
      P->st.programs++;
  }
  return NULL;
}

static bool prog_init(prog *P, launch *L) {
  *P = (prog){.L = L, .errprog = L->nprog};
  size_t n = (size_t)(L->maxn > 0 ? L->maxn : 1), g = (size_t)(L->maxgroups > 0 ? L->maxgroups : 1);
  P->s = calloc((size_t)(L->k->nvalues > 0 ? L->k->nvalues : 1), sizeof *P->s);
  P->smem = malloc(sizeof(cell) * n);
  P->stamp = calloc(n, sizeof(uint32_t));
  P->writer = malloc(sizeof(int32_t) * n);
  P->gval = malloc(sizeof(cell) * g);
  P->gtmp = malloc(sizeof(cell) * g);
  return P->s && P->smem && P->stamp && P->writer && P->gval && P->gtmp;
}

static void prog_free(prog *P, int nvalues) {
  if (P->s)
    for (int id = 0; id < nvalues; id++)
      free(P->s[id]);
  free(P->s);
  free(P->smem);
  free(P->stamp);
  free(P->writer);
  free(P->gval);
  free(P->gtmp);
}

static void launch_free(launch *L) {
  for (int x = 0; x < L->nxops; x++) {
    free(L->xops[x].map);
    rplan_free(L->xops[x].red);
  }
  while (L->tabs) {
    tab *t = L->tabs;
    L->tabs = t->next;
    free(t->lin);
    free(t->crd);
    free(t);
  }
  free(L->xops);
  free(L->argkind);
  free(L->symv);
  free(L->symset);
  free(L->vi);
}

/* Runs every program of the grid; see gpusim.h. */
ir_status cc_sim_run(const cc_gpu *g, ir_argval *args, int nargs, const cc_sim_opts *o,
                     ir_diag *d) {
  ir_diag scratch;
  if (!d)
    d = &scratch;
  cc_sim_stats total = {0};
  if (o && o->stats)
    *o->stats = total;
  if (!g || !g->k || !g->lay || (nargs > 0 && !args))
    return ir_error(d, IR_ERR_RUNTIME, (ir_loc){0}, NULL, "no GPU IR or arguments");
  const ir_kernel *k = g->k;
  if (g->nlay < k->nvalues || g->warps < 1 || g->warps > LY_MAX_WARPS)
    return ir_error(d, IR_ERR_RUNTIME, (ir_loc){k->file, 0, 0}, NULL,
                    "the GPU IR does not match its kernel");
  int nthreads = o && o->nthreads > 1 ? o->nthreads : 1;
  if (nthreads > MAX_HOST_THREADS)
    nthreads = MAX_HOST_THREADS;
  launch L = {.g = g, .k = k, .args = args, .T = LY_WARP * g->warps, .strict = o && o->strict};
  prog *progs = NULL;
  int nv = k->nvalues > 0 ? k->nvalues : 1, ready = 0;
  L.argkind = calloc((size_t)(k->nargs > 0 ? k->nargs : 1), sizeof *L.argkind);
  L.symv = calloc((size_t)(k->nsyms > 0 ? k->nsyms : 1), sizeof *L.symv);
  L.symset = calloc((size_t)(k->nsyms > 0 ? k->nsyms : 1), sizeof *L.symset);
  L.vi = calloc((size_t)nv, sizeof *L.vi);
  ir_status s = IR_OK;
  if (!L.argkind || !L.symv || !L.symset || !L.vi) {
    s = ir_error(d, IR_ERR_RUNTIME, (ir_loc){k->file, 0, 0}, NULL, "out of host memory");
    goto done;
  }
  if ((s = ir_exec_bind(k, args, nargs, L.argkind, L.symv, L.symset, L.grid, &L.nprog, d)) ||
      (s = plan(&L, d)) || L.nprog == 0)
    goto done;
  if (nthreads > L.nprog)
    nthreads = (int)L.nprog;
  progs = calloc((size_t)nthreads, sizeof *progs);
  if (!progs) {
    s = ir_error(d, IR_ERR_RUNTIME, (ir_loc){k->file, 0, 0}, NULL, "out of host memory");
    goto done;
  }
  atomic_init(&L.next, 0);
  atomic_init(&L.stop, L.nprog);
  for (; ready < nthreads; ready++)
    if (!prog_init(&progs[ready], &L)) {
      ready++;
      s = ir_error(d, IR_ERR_RUNTIME, (ir_loc){k->file, 0, 0}, NULL, "out of host memory");
      goto done;
    }
  int started = 0;
  for (int t = 1; t < nthreads; t++, started++)
    if (pthread_create(&progs[t].thread, NULL, worker, &progs[t]))
      break;
  worker(&progs[0]);
  for (int t = 1; t <= started; t++)
    pthread_join(progs[t].thread, NULL);
  int64_t best = L.nprog;
  for (int t = 0; t < nthreads; t++) {
    if (progs[t].errprog < best) {
      best = progs[t].errprog;
      *d = progs[t].err;
      s = d->status;
    }
    total.programs += progs[t].st.programs;
    total.shuffles += progs[t].st.shuffles;
    total.mmas += progs[t].st.mmas;
    total.barriers += progs[t].st.barriers;
    total.reduce_fallbacks += progs[t].st.reduce_fallbacks;
    if (progs[t].st.smem_bytes > total.smem_bytes)
      total.smem_bytes = progs[t].st.smem_bytes;
  }
done:
  for (int t = 0; t < ready; t++)
    prog_free(&progs[t], nv);
  free(progs);
  launch_free(&L);
  if (o && o->stats)
    *o->stats = total;
  return s;
}
