/* ir/interp.c — the CPU interpreter: runs a specialized kernel over its whole grid.
 *
 * The reference semantics of the tile IR (docs/ir.md): a launch binds the symbols (dims from
 * tensor shapes, parameters from scalar arguments, tunables and consts from their defaults),
 * evaluates the grid and runs every program, one after another or on a few threads. Each
 * program executes whole tiles: every value is a dense row-major array of 8-byte cells (a scalar
 * is one cell). Floats are doubles that always hold an exactly rounded value of their kind
 * (rounded after every op); integers, i1 and pointers are int64. A pointer cell encodes
 * (argument, element offset) as ((arg + 1) << 48) + offset with |offset| < 2^47, so loads and
 * stores through pointers are checked against the argument's element count.
 *
 * Before running, the kernel is flattened into a plan: ops in preorder with links to the next
 * op of their block and the first op of each region, plus, per op, the values whose last use it
 * is (measured in the block that defines them). A value's buffer goes back to a per-thread pool
 * after its last use, so loop bodies reuse memory instead of allocating. Errors (out-of-bounds
 * pointer access, integer division by zero, bad arguments) are located diagnostics; with several
 * threads the error of the lowest failing program is reported, as a sequential run would.
 * Element arithmetic, buffer access, pointer cells and argument binding live in ir/exec.c,
 * shared with the GPU-IR simulator.
 */
#include "ir.h"
#include "exec.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One element of a value: which member is live follows from the value's kind. */
typedef ir_cell cell;

#define PTR_BIAS IR_EXEC_PTR_BIAS /* offsets of a pointer lie in [-PTR_BIAS, PTR_BIAS) */
#define MAX_DIM IR_EXEC_MAX_DIM
#define MAX_TRIPS IR_EXEC_MAX_TRIPS
enum { MAX_THREADS = 256 };

/* Static facts of one value, from its type. */
typedef struct vinfo {
  int rank; /* 0 for scalars and pointers */
  int64_t shape[IR_MAX_RANK];
  int64_t n;    /* element count */
  ir_kind ek;   /* element kind: a scalar kind, IR_PTR or IR_TENSOR (tensor arguments) */
  ir_kind ptee; /* IR_PTR: the pointee kind */
} vinfo;

/* One op of the plan. */
typedef struct xop {
  const ir_op *op;
  int next;      /* next op of the same block, -1 at its end */
  int first[2];  /* first op of each region, -1 when empty or absent */
  int rel, nrel; /* rel[rel .. rel+nrel-1]: values whose last use is this op */
} xop;

/* What all programs of a launch share (read-only while programs run, except the atomics). */
typedef struct launch {
  const ir_kernel *k;
  const ir_argval *args;
  ir_kind *argkind; /* element kind of each tensor/pointer argument */
  ir_num *symv;
  bool *symset;
  int64_t grid[3], nprog;
  vinfo *vi; /* by value id */
  xop *xops;
  int nxops, root;
  int *rel;
  _Atomic int64_t next; /* next program to claim */
  _Atomic int64_t stop; /* programs with a larger index are abandoned */
} launch;

/* The storage of one value in one thread: heap cells, or the inline cell for scalars. */
typedef struct slot {
  cell *buf;
  int64_t cap; /* heap capacity in cells */
  cell inl;
} slot;

typedef struct pooled {
  cell *p;
  int64_t cap;
} pooled;

/* One thread: its slots, its pool of free buffers, the program it runs, its first error. */
typedef struct prog {
  launch *L;
  slot *s;
  pooled *pool;
  int npool, cappool;
  int64_t index, pid[3];
  bool abandoned;
  ir_diag d;
  int64_t errprog; /* lowest program that failed on this thread, or nprog */
  ir_diag err;
  pthread_t thread;
} prog;

/* ---- diagnostics --------------------------------------------------------------------- */

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

/* ---- storage -------------------------------------------------------------------------- */

static void pool_put(prog *P, cell *p, int64_t cap) {
  if (P->npool == P->cappool) {
    int nc = P->cappool ? 2 * P->cappool : 16;
    pooled *np = realloc(P->pool, sizeof *np * (size_t)nc);
    if (!np) {
      free(p);
      return;
    }
    P->pool = np;
    P->cappool = nc;
  }
  P->pool[P->npool++] = (pooled){p, cap};
}

/* A buffer of at least n cells: the best fit from the pool, or a new one. */
static cell *pool_get(prog *P, int64_t n, int64_t *cap) {
  int best = -1;
  for (int i = 0; i < P->npool; i++)
    if (P->pool[i].cap >= n && (best < 0 || P->pool[i].cap < P->pool[best].cap))
      best = i;
  if (best >= 0 && P->pool[best].cap <= 4 * n + 1024) {
    cell *p = P->pool[best].p;
    *cap = P->pool[best].cap;
    P->pool[best] = P->pool[--P->npool];
    return p;
  }
  *cap = n;
  return malloc(sizeof(cell) * (size_t)n);
}

static void release(prog *P, int id) {
  slot *s = &P->s[id];
  if (s->buf && s->buf != &s->inl)
    pool_put(P, s->buf, s->cap);
  s->buf = NULL;
}

/* Storage for a new value of v (contents undefined); NULL on host out-of-memory. */
static cell *def(prog *P, const ir_value *v) {
  slot *s = &P->s[v->id];
  int64_t n = P->L->vi[v->id].n;
  if (n <= 1) {
    release(P, v->id);
    return s->buf = &s->inl;
  }
  if (s->buf && s->buf != &s->inl && s->cap >= n)
    return s->buf;
  release(P, v->id);
  return s->buf = pool_get(P, n, &s->cap);
}

static cell *val(prog *P, const ir_value *v) { return P->s[v->id].buf; }
static const vinfo *info(prog *P, const ir_value *v) { return &P->L->vi[v->id]; }

/* ---- scalar conversions --------------------------------------------------------------- */

static bool isf(ir_kind k) { return ir_kind_is_float(k); }
static bool isi(ir_kind k) { return ir_kind_is_int(k); }

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

/* ---- elementwise ops ------------------------------------------------------------------ */

/* Operand a may be splatted over result r: same element count, or a single element. */
static bool fits(const vinfo *a, const vinfo *r) { return a->n == r->n || a->n == 1; }
static int64_t step_of(const vinfo *a) { return a->n == 1 ? 0 : 1; }

static ir_status binary(prog *P, const ir_op *op) {
  if (op->nopnd != 2 || op->nres != 1)
    return fail(P, op, "malformed op");
  const vinfo *ai = info(P, op->operands[0]), *bi = info(P, op->operands[1]);
  const vinfo *ri = info(P, op->results[0]);
  if (!fits(ai, ri) || !fits(bi, ri))
    return fail(P, op, "operand shapes do not match the result");
  if (ai->ek != ri->ek || bi->ek != ri->ek)
    return fail(P, op, "operand kinds %s and %s do not match the result %s", ir_kind_name(ai->ek),
                ir_kind_name(bi->ek), ir_kind_name(ri->ek));
  const cell *a = val(P, op->operands[0]), *b = val(P, op->operands[1]);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  const char *e = ir_exec_binary(op->code, ri->ek, r, a, step_of(ai), b, step_of(bi), ri->n);
  return e ? fail(P, op, "%s", e) : IR_OK;
}

static ir_status unary(prog *P, const ir_op *op) {
  if (op->nopnd != 1 || op->nres != 1)
    return fail(P, op, "malformed op");
  const vinfo *ai = info(P, op->operands[0]), *ri = info(P, op->results[0]);
  if (!fits(ai, ri) || ai->ek != ri->ek)
    return fail(P, op, "the operand does not match the result");
  const cell *a = val(P, op->operands[0]);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  const char *e = ir_exec_unary(op->code, ri->ek, r, a, step_of(ai), ri->n);
  return e ? fail(P, op, "%s", e) : IR_OK;
}

static ir_status compare(prog *P, const ir_op *op) {
  if (op->nopnd != 2 || op->nres != 1)
    return fail(P, op, "malformed op");
  const vinfo *ai = info(P, op->operands[0]), *bi = info(P, op->operands[1]);
  const vinfo *ri = info(P, op->results[0]);
  if (!fits(ai, ri) || !fits(bi, ri) || ai->ek != bi->ek || ri->ek != IR_I1)
    return fail(P, op, "operands do not match");
  const cell *a = val(P, op->operands[0]), *b = val(P, op->operands[1]);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  const char *e = ir_exec_compare(op->sub, ai->ek, r, a, step_of(ai), b, step_of(bi), ri->n);
  return e ? fail(P, op, "%s", e) : IR_OK;
}

static ir_status select_op(prog *P, const ir_op *op) {
  if (op->nopnd != 3 || op->nres != 1)
    return fail(P, op, "malformed op");
  const vinfo *ci = info(P, op->operands[0]), *ai = info(P, op->operands[1]);
  const vinfo *bi = info(P, op->operands[2]), *ri = info(P, op->results[0]);
  if (!fits(ci, ri) || !fits(ai, ri) || !fits(bi, ri) || ci->ek != IR_I1 || ai->ek != ri->ek ||
      bi->ek != ri->ek)
    return fail(P, op, "operands do not match");
  const cell *c = val(P, op->operands[0]), *a = val(P, op->operands[1]);
  const cell *b = val(P, op->operands[2]);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  ir_exec_select(r, c, step_of(ci), a, step_of(ai), b, step_of(bi), ri->n);
  return IR_OK;
}

static ir_status cast_op(prog *P, const ir_op *op) {
  if (op->nopnd != 1 || op->nres != 1)
    return fail(P, op, "malformed op");
  const vinfo *ai = info(P, op->operands[0]), *ri = info(P, op->results[0]);
  if (!fits(ai, ri))
    return fail(P, op, "the operand does not match the result");
  ir_kind from = ai->ek, to = ri->ek;
  if ((from == IR_PTR) != (to == IR_PTR) || from == IR_TENSOR)
    return fail(P, op, "cannot cast %s to %s", ir_kind_name(from), ir_kind_name(to));
  const cell *a = val(P, op->operands[0]);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  ir_exec_cast(from, to, r, a, step_of(ai), ri->n);
  return IR_OK;
}

/* ---- shape ops ------------------------------------------------------------------------ */

/* Copies a strided 4-D view of a into r (row-major over shape). */
static void gather4(cell *r, const cell *a, const int64_t shape[4], const int64_t st[4]) {
  int64_t o = 0;
  for (int64_t i0 = 0; i0 < shape[0]; i0++)
    for (int64_t i1 = 0; i1 < shape[1]; i1++)
      for (int64_t i2 = 0; i2 < shape[2]; i2++) {
        const cell *src = a + i0 * st[0] + i1 * st[1] + i2 * st[2];
        if (st[3] == 1)
          memcpy(r + o, src, sizeof(cell) * (size_t)shape[3]);
        else
          for (int64_t i3 = 0; i3 < shape[3]; i3++)
            r[o + i3] = src[i3 * st[3]];
        o += shape[3];
      }
}

static ir_status broadcast_op(prog *P, const ir_op *op) {
  if (op->nopnd != 1 || op->nres != 1)
    return fail(P, op, "malformed op");
  const vinfo *ai = info(P, op->operands[0]), *ri = info(P, op->results[0]);
  if (ai->ek != ri->ek || ai->rank > ri->rank)
    return fail(P, op, "the operand does not match the result");
  int64_t shape[4] = {1, 1, 1, 1}, st[4] = {0, 0, 0, 0}, astride = 1;
  for (int d = ri->rank - 1; d >= 0; d--) {
    int pd = d + 4 - ri->rank, sd = d - (ri->rank - ai->rank);
    shape[pd] = ri->shape[d];
    if (sd < 0)
      continue;
    if (ai->shape[sd] == ri->shape[d])
      st[pd] = astride;
    else if (ai->shape[sd] != 1)
      return fail(P, op, "cannot broadcast dim %d of size %lld to %lld", sd,
                  (long long)ai->shape[sd], (long long)ri->shape[d]);
    astride *= ai->shape[sd];
  }
  const cell *a = val(P, op->operands[0]);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  gather4(r, a, shape, st);
  return IR_OK;
}

static ir_status copy_op(prog *P, const ir_op *op) { /* expand_dims, reshape */
  if (op->nopnd != 1 || op->nres != 1)
    return fail(P, op, "malformed op");
  const vinfo *ai = info(P, op->operands[0]), *ri = info(P, op->results[0]);
  if (ai->ek != ri->ek || ai->n != ri->n)
    return fail(P, op, "the operand does not match the result");
  const cell *a = val(P, op->operands[0]);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  memcpy(r, a, sizeof(cell) * (size_t)ri->n);
  return IR_OK;
}

static ir_status trans_op(prog *P, const ir_op *op) {
  if (op->nopnd != 1 || op->nres != 1)
    return fail(P, op, "malformed op");
  const vinfo *ai = info(P, op->operands[0]), *ri = info(P, op->results[0]);
  if (ai->ek != ri->ek || ai->rank != 2 || ri->rank != 2 || ai->shape[0] != ri->shape[1] ||
      ai->shape[1] != ri->shape[0])
    return fail(P, op, "the operand does not match the result");
  const cell *a = val(P, op->operands[0]);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  int64_t shape[4] = {1, 1, ai->shape[1], ai->shape[0]}, st[4] = {0, 0, 1, ai->shape[1]};
  gather4(r, a, shape, st);
  return IR_OK;
}

/* ---- constants -------------------------------------------------------------------------- */

static ir_status put_num(prog *P, const ir_op *op, ir_num v) {
  const vinfo *ri = info(P, op->results[0]);
  if (!isf(ri->ek) && !isi(ri->ek))
    return fail(P, op, "numeric result expected");
  cell c = ir_exec_from_num(ri->ek, v);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  for (int64_t i = 0; i < ri->n; i++)
    r[i] = c;
  return IR_OK;
}

static ir_status eval(prog *P, const ir_op *op, const ir_expr *e, ir_num *out) {
  if (!e)
    return fail(P, op, "missing expression");
  const launch *L = P->L;
  if (ir_expr_eval(L->k, e, L->symv, L->symset, out, &P->d))
    return P->d.status = IR_ERR_RUNTIME;
  return IR_OK;
}

static ir_status full_op(prog *P, const ir_op *op) {
  if (op->nopnd != 1 || op->nres != 1)
    return fail(P, op, "malformed op");
  const vinfo *ai = info(P, op->operands[0]), *ri = info(P, op->results[0]);
  if (ai->n != 1 || (ai->ek == IR_PTR) != (ri->ek == IR_PTR) || ai->ek == IR_TENSOR)
    return fail(P, op, "the operand does not match the result");
  cell c = ir_exec_conv(ai->ek, ri->ek, val(P, op->operands[0])[0]);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  for (int64_t i = 0; i < ri->n; i++)
    r[i] = c;
  return IR_OK;
}

static ir_status arange_op(prog *P, const ir_op *op) {
  ir_num lo, hi;
  ir_status s;
  if ((s = eval(P, op, op->ex[0], &lo)) || (s = eval(P, op, op->ex[1], &hi)))
    return s;
  const vinfo *ri = info(P, op->results[0]);
  if (lo.isf || hi.isf || !isi(ri->ek) || ri->rank != 1 || lo.i < -MAX_DIM || lo.i > MAX_DIM ||
      hi.i < -MAX_DIM || hi.i > MAX_DIM || hi.i - lo.i != ri->n)
    return fail(P, op, "bounds %lld..%lld do not match the result", (long long)lo.i,
                (long long)hi.i);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  for (int64_t i = 0; i < ri->n; i++)
    r[i].i = ir_exec_wrap(ri->ek, lo.i + i);
  return IR_OK;
}

/* ---- memory --------------------------------------------------------------------------- */

/* Scalar integer operand i of op. */
static ir_status int_operand(prog *P, const ir_op *op, int i, int64_t *v) {
  const vinfo *vi = info(P, op->operands[i]);
  if (vi->n != 1 || !isi(vi->ek))
    return fail(P, op, "operand %d must be an integer scalar", i);
  *v = val(P, op->operands[i])[0].i;
  return IR_OK;
}

/* Block load/store: the tile covers the last `rank` dims of the tensor from the given offsets;
 * leading indices select. Out-of-bounds elements read fill / are dropped. */
static ir_status block_access(prog *P, const ir_op *op, bool store) {
  const launch *L = P->L;
  if (op->nopnd < 1 + store)
    return fail(P, op, "malformed op");
  const ir_value *tv = op->operands[0];
  int argno = tv->argno;
  if (info(P, tv)->ek != IR_TENSOR || tv->def || tv->owner || argno < 0 || argno >= L->k->nargs)
    return fail(P, op, "operand 0 must be a tensor argument");
  const ir_argval *A = &L->args[argno];
  ir_kind ek = L->argkind[argno];
  int R = A->rank;
  const ir_value *tile = store ? op->operands[op->nopnd - 1] : op->results[0];
  if ((store && op->nres != 0) || (!store && op->nres != 1))
    return fail(P, op, "malformed op");
  const vinfo *ti = info(P, tile);
  int r = ti->rank;
  if (op->nopnd != 1 + R + store || r > R)
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
    if (idx[d] < -MAX_DIM) /* far outside any tensor; keeps idx + i from overflowing */
      idx[d] = -MAX_DIM;
    if (idx[d] > MAX_DIM)
      idx[d] = MAX_DIM;
  }
  cell fillv = {0};
  if (!store && op->ex[1]) {
    ir_num f;
    ir_status s = eval(P, op, op->ex[1], &f);
    if (s)
      return s;
    fillv = ir_exec_from_num(ek, f);
  }
  cell *t = store ? val(P, tile) : def(P, tile);
  if (!t)
    return fail(P, op, "out of host memory");
  /* Leading dims select fixed positions. */
  bool inside = true;
  int64_t base = 0;
  for (int d = 0; d < R - r; d++) {
    inside &= idx[d] >= 0 && idx[d] < A->shape[d];
    base += idx[d] * A->stride[d];
  }
  /* The tile's dims, padded to 4 with leading 1s; origin, tensor extent and stride per dim. */
  int64_t ts[4] = {1, 1, 1, 1}, org[4] = {0, 0, 0, 0}, ext[4] = {1, 1, 1, 1}, st[4] = {0, 0, 0, 0};
  for (int d = 0; d < r; d++) {
    int pd = 4 - r + d, td = R - r + d;
    ts[pd] = ti->shape[d];
    org[pd] = idx[td];
    ext[pd] = A->shape[td];
    st[pd] = A->stride[td];
  }
  int64_t lo = org[3] < 0 ? -org[3] : 0, hi = ext[3] - org[3];
  if (hi > ts[3])
    hi = ts[3];
  cell *row = t;
  for (int64_t i0 = 0; i0 < ts[0]; i0++)
    for (int64_t i1 = 0; i1 < ts[1]; i1++)
      for (int64_t i2 = 0; i2 < ts[2]; i2++, row += ts[3]) {
        int64_t o0 = org[0] + i0, o1 = org[1] + i1, o2 = org[2] + i2;
        bool in = inside && o0 >= 0 && o0 < ext[0] && o1 >= 0 && o1 < ext[1] && o2 >= 0 &&
                  o2 < ext[2] && lo < hi;
        if (in) {
          int64_t e = base + o0 * st[0] + o1 * st[1] + o2 * st[2] + (org[3] + lo) * st[3];
          if (store)
            ir_exec_write(ek, A->data, e, st[3], hi - lo, row + lo);
          else
            ir_exec_read(ek, A->data, e, st[3], hi - lo, row + lo);
        }
        if (!store)
          for (int64_t i3 = 0; i3 < ts[3]; i3++)
            if (!in || i3 < lo || i3 >= hi)
              row[i3] = fillv;
      }
  return IR_OK;
}

static ir_status addptr_op(prog *P, const ir_op *op) {
  if (op->nopnd != 2 || op->nres != 1)
    return fail(P, op, "malformed op");
  const vinfo *pi = info(P, op->operands[0]), *oi = info(P, op->operands[1]);
  const vinfo *ri = info(P, op->results[0]);
  if (pi->ek != IR_PTR || ri->ek != IR_PTR || !isi(oi->ek) || !fits(pi, ri) || !fits(oi, ri))
    return fail(P, op, "operands do not match");
  const cell *p = val(P, op->operands[0]), *o = val(P, op->operands[1]);
  int64_t sp = step_of(pi), so = step_of(oi);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  for (int64_t i = 0; i < ri->n; i++) {
    int64_t off, sum;
    int a = ir_exec_ptr_arg(p[i * sp].i, &off);
    if (__builtin_add_overflow(off, o[i * so].i, &sum) || sum < -PTR_BIAS || sum >= PTR_BIAS)
      return fail(P, op, "pointer offset overflows");
    r[i].i = ir_exec_ptr_make(a, sum);
  }
  return IR_OK;
}

static ir_status load_ptr_op(prog *P, const ir_op *op) {
  if (op->nopnd < 1 || op->nopnd > 3 || op->nres != 1)
    return fail(P, op, "malformed op");
  const vinfo *pi = info(P, op->operands[0]), *ri = info(P, op->results[0]);
  const vinfo *mi = op->nopnd > 1 ? info(P, op->operands[1]) : NULL;
  const vinfo *xi = op->nopnd > 2 ? info(P, op->operands[2]) : NULL;
  if (pi->ek != IR_PTR || pi->ptee != ri->ek || !fits(pi, ri) || (mi && !fits(mi, ri)) ||
      (mi && mi->ek != IR_I1) || (xi && (!fits(xi, ri) || xi->ek != ri->ek)))
    return fail(P, op, "operands do not match");
  const cell *p = val(P, op->operands[0]);
  const cell *m = mi ? val(P, op->operands[1]) : NULL, *x = xi ? val(P, op->operands[2]) : NULL;
  int64_t sp = step_of(pi), sm = mi ? step_of(mi) : 0, sx = xi ? step_of(xi) : 0;
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  for (int64_t i = 0; i < ri->n; i++) {
    if (m && !m[i * sm].i) {
      r[i] = x ? x[i * sx] : (cell){0};
      continue;
    }
    int a;
    int64_t off = ptr_check(P, op, p[i * sp].i, ri->ek, false, &a);
    if (off < 0)
      return P->d.status;
    ir_exec_read(ri->ek, P->L->args[a].data, off, 1, 1, &r[i]);
  }
  return IR_OK;
}

static ir_status store_ptr_op(prog *P, const ir_op *op) {
  if (op->nopnd < 2 || op->nopnd > 3 || op->nres != 0)
    return fail(P, op, "malformed op");
  const vinfo *pi = info(P, op->operands[0]), *vi = info(P, op->operands[1]);
  const vinfo *mi = op->nopnd > 2 ? info(P, op->operands[2]) : NULL;
  int64_t n = pi->n > vi->n ? pi->n : vi->n;
  if (mi && mi->n > n)
    n = mi->n;
  const vinfo shape = {.n = n};
  if (pi->ek != IR_PTR || pi->ptee != vi->ek || !fits(pi, &shape) || !fits(vi, &shape) ||
      (mi && (!fits(mi, &shape) || mi->ek != IR_I1)))
    return fail(P, op, "operands do not match");
  const cell *p = val(P, op->operands[0]), *v = val(P, op->operands[1]);
  const cell *m = mi ? val(P, op->operands[2]) : NULL;
  int64_t sp = step_of(pi), sv = step_of(vi), sm = mi ? step_of(mi) : 0;
  for (int64_t i = 0; i < n; i++) {
    if (m && !m[i * sm].i)
      continue;
    int a;
    int64_t off = ptr_check(P, op, p[i * sp].i, vi->ek, true, &a);
    if (off < 0)
      return P->d.status;
    ir_exec_write(vi->ek, P->L->args[a].data, off, 1, 1, &v[i * sv]);
  }
  return IR_OK;
}

/* ---- compute -------------------------------------------------------------------------- */

static ir_status dot_op(prog *P, const ir_op *op) {
  if (op->nopnd != 3 || op->nres != 1)
    return fail(P, op, "malformed op");
  const vinfo *ai = info(P, op->operands[0]), *bi = info(P, op->operands[1]);
  const vinfo *ci = info(P, op->operands[2]), *ri = info(P, op->results[0]);
  if (ai->rank != 2 || bi->rank != 2 || ri->rank != 2 || ai->shape[1] != bi->shape[0] ||
      ri->shape[0] != ai->shape[0] || ri->shape[1] != bi->shape[1] || !fits(ci, ri) ||
      ci->ek != ri->ek)
    return fail(P, op, "shapes do not match: [%lld x %lld] . [%lld x %lld]",
                (long long)ai->shape[0], (long long)ai->shape[1], (long long)bi->shape[0],
                (long long)bi->shape[1]);
  bool fl = isf(ai->ek) && isf(bi->ek) && isf(ri->ek);
  if (!fl && !(isi(ai->ek) && isi(bi->ek) && isi(ri->ek)))
    return fail(P, op, "operands must be all floats or all integers");
  int64_t M = ai->shape[0], K = ai->shape[1], N = bi->shape[1], sc = step_of(ci);
  const cell *a = val(P, op->operands[0]), *b = val(P, op->operands[1]);
  const cell *c = val(P, op->operands[2]);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  if (fl) {
    /* i-k-j order: a row of sums in the result row, k outer, vectorizable inner loop */
    for (int64_t m = 0; m < M; m++) {
      cell *s = r + m * N;
      for (int64_t n = 0; n < N; n++)
        s[n].f = 0;
      for (int64_t k = 0; k < K; k++) {
        double av = a[m * K + k].f;
        const cell *brow = b + k * N;
        for (int64_t n = 0; n < N; n++)
          s[n].f += av * brow[n].f;
      }
      for (int64_t n = 0; n < N; n++)
        s[n].f = c[(m * N + n) * sc].f + s[n].f;
    }
    ir_exec_round(ri->ek, r, ri->n);
  } else {
    for (int64_t m = 0; m < M; m++) {
      cell *s = r + m * N;
      for (int64_t n = 0; n < N; n++)
        s[n].i = c[(m * N + n) * sc].i;
      for (int64_t k = 0; k < K; k++) {
        uint64_t av = (uint64_t)a[m * K + k].i;
        const cell *brow = b + k * N;
        for (int64_t n = 0; n < N; n++)
          s[n].i = (int64_t)((uint64_t)s[n].i + av * (uint64_t)brow[n].i);
      }
    }
    ir_exec_wrap_cells(ri->ek, r, ri->n);
  }
  return IR_OK;
}

static ir_status reduce_op(prog *P, const ir_op *op) {
  if (op->nopnd != 1 || op->nres != 1)
    return fail(P, op, "malformed op");
  const vinfo *ai = info(P, op->operands[0]), *ri = info(P, op->results[0]);
  int64_t axis = op->attr[0];
  if (axis < 0 || axis >= ai->rank || ai->ek != ri->ek || ai->shape[axis] < 1 ||
      ri->n * ai->shape[axis] != ai->n || !(isf(ri->ek) || isi(ri->ek)))
    return fail(P, op, "axis %lld does not match the operand and result", (long long)axis);
  int64_t outer = 1, len = ai->shape[axis], inner = 1;
  for (int d = 0; d < axis; d++)
    outer *= ai->shape[d];
  for (int d = (int)axis + 1; d < ai->rank; d++)
    inner *= ai->shape[d];
  const cell *a = val(P, op->operands[0]);
  cell *r = def(P, op->results[0]);
  if (!r)
    return fail(P, op, "out of host memory");
  bool fl = isf(ri->ek);
  for (int64_t o = 0; o < outer; o++) {
    cell *dst = r + o * inner;
    const cell *src = a + o * len * inner;
    memcpy(dst, src, sizeof(cell) * (size_t)inner);
    for (int64_t l = 1; l < len; l++) {
      const cell *s = src + l * inner;
      switch (op->sub * 2 + fl) {
      case IR_RED_SUM * 2 + 1:
        for (int64_t j = 0; j < inner; j++)
          dst[j].f += s[j].f;
        break;
      case IR_RED_MAX * 2 + 1:
        for (int64_t j = 0; j < inner; j++)
          dst[j].f = s[j].f > dst[j].f || isnan(s[j].f) ? s[j].f : dst[j].f;
        break;
      case IR_RED_MIN * 2 + 1:
        for (int64_t j = 0; j < inner; j++)
          dst[j].f = s[j].f < dst[j].f || isnan(s[j].f) ? s[j].f : dst[j].f;
        break;
      case IR_RED_SUM * 2:
        for (int64_t j = 0; j < inner; j++)
          dst[j].i = (int64_t)((uint64_t)dst[j].i + (uint64_t)s[j].i);
        break;
      case IR_RED_MAX * 2:
        for (int64_t j = 0; j < inner; j++)
          dst[j].i = s[j].i > dst[j].i ? s[j].i : dst[j].i;
        break;
      case IR_RED_MIN * 2:
        for (int64_t j = 0; j < inner; j++)
          dst[j].i = s[j].i < dst[j].i ? s[j].i : dst[j].i;
        break;
      default:
        return fail(P, op, "unknown reduction");
      }
    }
  }
  if (fl)
    ir_exec_round(ri->ek, r, ri->n);
  else
    ir_exec_wrap_cells(ri->ek, r, ri->n);
  return IR_OK;
}

/* ---- control flow --------------------------------------------------------------------- */

static ir_status run_block(prog *P, int first, int *yield);

static void release_after(prog *P, int x) {
  const xop *xo = &P->L->xops[x];
  for (int i = 0; i < xo->nrel; i++)
    release(P, P->L->rel[xo->rel + i]);
}

/* dst = src (a splat when src is one element and dst is a tile). */
static ir_status move(prog *P, const ir_op *op, const ir_value *dst, const ir_value *src) {
  const vinfo *di = info(P, dst), *si = info(P, src);
  if (!fits(si, di) || si->ek != di->ek)
    return fail(P, op, "a carried value does not match its type");
  const cell *s = val(P, src);
  if (!s)
    return fail(P, op, "value used before its definition");
  cell *d = def(P, dst);
  if (!d)
    return fail(P, op, "out of host memory");
  if (si->n == di->n)
    memcpy(d, s, sizeof(cell) * (size_t)di->n);
  else
    for (int64_t i = 0; i < di->n; i++)
      d[i] = s[0];
  return IR_OK;
}

/* Copies the operands of yield op y into the results of op, then frees what y used last. */
static ir_status take_yield(prog *P, const ir_op *op, int y) {
  if (y < 0)
    return fail(P, op, "region does not end in yield");
  const ir_op *yo = P->L->xops[y].op;
  if (yo->nopnd != op->nres)
    return fail(P, yo, "yields %d values for %d results", yo->nopnd, op->nres);
  for (int i = 0; i < op->nres; i++) {
    ir_status s = move(P, yo, op->results[i], yo->operands[i]);
    if (s)
      return s;
  }
  release_after(P, y);
  return IR_OK;
}

static ir_status for_op(prog *P, int x) {
  const xop *xo = &P->L->xops[x];
  const ir_op *op = xo->op;
  const ir_block *body = op->regions[0];
  int ninit = op->nopnd - 3;
  if (ninit < 0 || op->nres != ninit || !body || body->nargs != ninit + 1)
    return fail(P, op, "malformed loop");
  int64_t lo, hi, step;
  ir_status s;
  if ((s = int_operand(P, op, 0, &lo)) || (s = int_operand(P, op, 1, &hi)) ||
      (s = int_operand(P, op, 2, &step)))
    return s;
  const ir_value *iv = body->args[0];
  const vinfo *ivi = info(P, iv);
  if (ivi->n != 1 || !isi(ivi->ek))
    return fail(P, op, "the induction variable must be an integer scalar");
  if (step <= 0)
    return fail(P, op, "loop step must be positive, got %lld", (long long)step);
  uint64_t trips = 0;
  if (hi > lo) {
    uint64_t span = (uint64_t)hi - (uint64_t)lo;
    trips = span / (uint64_t)step + (span % (uint64_t)step != 0);
  }
  if (trips > (uint64_t)MAX_TRIPS)
    return fail(P, op, "loop runs %llu times; the limit is 2^31", (unsigned long long)trips);
  for (int i = 0; i < ninit; i++)
    if ((s = move(P, op, op->results[i], op->operands[3 + i])))
      return s;
  for (uint64_t t = 0; t < trips; t++) {
    cell *ivc = def(P, iv);
    ivc->i = ir_exec_wrap(ivi->ek, (int64_t)((uint64_t)lo + t * (uint64_t)step));
    for (int i = 0; i < ninit; i++)
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
  if (op->nopnd != 1 || !op->regions[0] || info(P, op->operands[0])->n != 1 ||
      info(P, op->operands[0])->ek != IR_I1)
    return fail(P, op, "malformed if");
  int r = val(P, op->operands[0])[0].i ? 0 : 1;
  if (r == 1 && !op->regions[1]) {
    if (op->nres)
      return fail(P, op, "'if' with results has no else");
    return IR_OK;
  }
  int y;
  ir_status s = run_block(P, xo->first[r], &y);
  return s ? s : take_yield(P, op, y);
}

static ir_status exec(prog *P, int x) {
  const ir_op *op = P->L->xops[x].op;
  for (int i = 0; i < op->nopnd; i++)
    if (!val(P, op->operands[i]))
      return fail(P, op, "operand %d is used before its definition", i);
  switch (op->code) {
  case IR_OP_PROGRAM_ID:
  case IR_OP_NUM_PROGRAMS: {
    int64_t ax = op->attr[0];
    if (ax < 0 || ax > 2 || op->nres != 1)
      return fail(P, op, "grid axis %lld is not 0, 1 or 2", (long long)ax);
    ir_num v = {.i = op->code == IR_OP_PROGRAM_ID ? P->pid[ax] : P->L->grid[ax]};
    return put_num(P, op, v);
  }
  case IR_OP_CONST: {
    ir_num v;
    ir_status s = op->nres == 1 ? eval(P, op, op->ex[0], &v) : fail(P, op, "malformed op");
    return s ? s : put_num(P, op, v);
  }
  case IR_OP_ZEROS: {
    if (op->nres != 1)
      return fail(P, op, "malformed op");
    return put_num(P, op, (ir_num){0});
  }
  case IR_OP_FULL:
    return full_op(P, op);
  case IR_OP_ARANGE:
    return op->nres == 1 ? arange_op(P, op) : fail(P, op, "malformed op");
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
  case IR_OP_SHR:
    return binary(P, op);
  case IR_OP_NEG:
  case IR_OP_ABS:
  case IR_OP_EXP:
  case IR_OP_EXP2:
  case IR_OP_LOG:
  case IR_OP_LOG2:
  case IR_OP_SQRT:
  case IR_OP_RSQRT:
    return unary(P, op);
  case IR_OP_CMP:
    return compare(P, op);
  case IR_OP_SELECT:
    return select_op(P, op);
  case IR_OP_CAST:
    return cast_op(P, op);
  case IR_OP_BROADCAST:
    return broadcast_op(P, op);
  case IR_OP_EXPAND_DIMS:
  case IR_OP_RESHAPE:
  case IR_OP_CONVERT:
    return copy_op(P, op);
  case IR_OP_TRANS:
    return trans_op(P, op);
  case IR_OP_LOAD:
    return block_access(P, op, false);
  case IR_OP_STORE:
    return block_access(P, op, true);
  case IR_OP_ADDPTR:
    return addptr_op(P, op);
  case IR_OP_LOAD_PTR:
    return load_ptr_op(P, op);
  case IR_OP_STORE_PTR:
    return store_ptr_op(P, op);
  case IR_OP_DOT:
    return dot_op(P, op);
  case IR_OP_REDUCE:
    return reduce_op(P, op);
  case IR_OP_FOR:
    return for_op(P, x);
  case IR_OP_IF:
    return if_op(P, x);
  default:
    return fail(P, op, "unknown op");
  }
}

/* Runs the ops of a block from xop `first`; stops at a yield (its index in *yield, else -1),
 * which the caller consumes. */
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
    release_after(P, x);
  }
  return IR_OK;
}

/* ---- programs and threads ------------------------------------------------------------- */

static ir_status run_program(prog *P) {
  const launch *L = P->L;
  for (int a = 0; a < L->k->nargs; a++) {
    const ir_value *v = L->k->args[a].value;
    if (!v)
      continue;
    slot *s = &P->s[v->id];
    release(P, v->id);
    s->buf = &s->inl;
    s->inl.i = L->k->args[a].kind == ARG_PTR ? ir_exec_ptr_make(a, 0) : 0;
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
  }
  return NULL;
}

static void prog_free(prog *P, int nvalues) {
  if (P->s)
    for (int id = 0; id < nvalues; id++)
      release(P, id);
  for (int i = 0; i < P->npool; i++)
    free(P->pool[i].p);
  free(P->pool);
  free(P->s);
}

/* ---- launch setup --------------------------------------------------------------------- */

/* Planning: value facts, preorder op list, last uses. */
typedef struct planner {
  launch *L;
  const ir_value **vals; /* by id */
  int *depth;            /* by id: depth of the defining block, -1 until defined */
  int *last;             /* by id: xop index of the last use, -1 for none */
  int anc[IR_MAX_DEPTH + 2];
  int cap;
  ir_diag *d;
} planner;

static ir_status plan_error(planner *p, const ir_op *op, const char *msg) {
  return ir_error(p->d, IR_ERR_RUNTIME, op ? op->loc : (ir_loc){p->L->k->file, 0, 0},
                  p->L->k->source, "%s", msg);
}

static ir_status add_value(planner *p, const ir_value *v, int depth, int last, const ir_op *op) {
  const ir_kernel *k = p->L->k;
  if (!v || v->id < 0 || v->id >= k->nvalues || p->vals[v->id])
    return plan_error(p, op, "malformed kernel: bad value id");
  p->vals[v->id] = v;
  p->depth[v->id] = depth;
  p->last[v->id] = last;
  vinfo *vi = &p->L->vi[v->id];
  const ir_type *t = v->ty;
  if (t && t->kind == IR_TENSOR) {
    vi->ek = IR_TENSOR;
    vi->n = 1;
    return IR_OK;
  }
  const ir_type *e = t ? ir_type_elem(t) : NULL;
  if (!e || e->kind == IR_TVAR ||
      (e->kind != IR_PTR && (e->kind <= IR_VOID || e->kind >= IR_NSCALAR)))
    return plan_error(p, op, "kernel is not specialized: a value has no concrete type");
  vi->ek = e->kind;
  if (e->kind == IR_PTR) {
    if (!e->elem || e->elem->kind <= IR_VOID || e->elem->kind >= IR_NSCALAR)
      return plan_error(p, op, "pointers must point to scalars");
    vi->ptee = e->elem->kind;
  }
  vi->n = 1;
  if (t->kind == IR_TILE) {
    if (t->rank < 0 || t->rank > IR_MAX_RANK)
      return plan_error(p, op, "tile rank out of range");
    vi->rank = t->rank;
    for (int i = 0; i < t->rank; i++) {
      if (!ir_expr_is_int(t->dims[i], &vi->shape[i]))
        return plan_error(p, op, "kernel is not specialized: a tile has a symbolic shape");
      if (vi->shape[i] < 1 || vi->shape[i] > IR_MAX_TILE_ELEMS)
        return plan_error(p, op, "tile dim out of range");
      vi->n *= vi->shape[i];
      if (vi->n > IR_MAX_TILE_ELEMS)
        return plan_error(p, op, "tile has more than 2^20 elements");
    }
  }
  return IR_OK;
}

static ir_status plan_block(planner *p, const ir_block *b, int depth, int *first) {
  launch *L = p->L;
  *first = -1;
  if (depth > IR_MAX_DEPTH + 1)
    return plan_error(p, b->parent, "regions nested too deeply");
  int prev = -1;
  for (const ir_op *op = b->first; op; op = op->next) {
    if (L->nxops >= p->cap)
      return plan_error(p, op, "malformed kernel: more ops than counted");
    int x = L->nxops++;
    L->xops[x] = (xop){op, -1, {-1, -1}, 0, 0};
    if (prev < 0)
      *first = x;
    else
      L->xops[prev].next = x;
    prev = x;
    p->anc[depth] = x;
    if (op->nopnd < 0 || op->nres < 0 || op->nregions < 0 || op->nregions > 2 ||
        (op->nopnd && !op->operands) || (op->nres && !op->results))
      return plan_error(p, op, "malformed op");
    for (int i = 0; i < op->nopnd; i++) {
      const ir_value *v = op->operands[i];
      if (!v || v->id < 0 || v->id >= L->k->nvalues || p->depth[v->id] < 0 ||
          p->depth[v->id] > depth)
        return plan_error(p, op, "malformed kernel: an operand is used outside its scope");
      int d = p->depth[v->id];
      if (p->last[v->id] != -2 && p->anc[d] > p->last[v->id])
        p->last[v->id] = p->anc[d];
    }
    for (int r = 0; r < op->nregions; r++) {
      const ir_block *rb = op->regions[r];
      if (!rb)
        continue;
      for (int i = 0; i < rb->nargs; i++) {
        ir_status s = add_value(p, rb->args[i], depth + 1, -1, op);
        if (s)
          return s;
      }
      ir_status s = plan_block(p, rb, depth + 1, &L->xops[x].first[r]);
      if (s)
        return s;
    }
    for (int i = 0; i < op->nres; i++) {
      ir_status s = add_value(p, op->results[i], depth, x, op);
      if (s)
        return s;
    }
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
  int nv = k->nvalues;
  planner p = {.L = L, .d = d};
  p.cap = count_ops(k->body, 0) + 1;
  L->xops = calloc((size_t)p.cap, sizeof *L->xops);
  p.vals = calloc((size_t)nv + 1, sizeof *p.vals);
  p.depth = malloc(sizeof(int) * ((size_t)nv + 1));
  p.last = malloc(sizeof(int) * ((size_t)nv + 1));
  ir_status s = IR_OK;
  if (!L->xops || !p.vals || !p.depth || !p.last) {
    s = ir_error(d, IR_ERR_RUNTIME, (ir_loc){k->file, 0, 0}, NULL, "out of host memory");
    goto done;
  }
  for (int i = 0; i < nv; i++)
    p.depth[i] = -1;
  for (int a = 0; a < k->nargs; a++)
    if (k->args[a].value && (s = add_value(&p, k->args[a].value, 0, -2, NULL)))
      goto done;
  if (!k->body) {
    s = plan_error(&p, NULL, "kernel has no body");
    goto done;
  }
  if ((s = plan_block(&p, k->body, 0, &L->root)))
    goto done;
  int total = 0;
  for (int i = 0; i < nv; i++)
    if (p.vals[i] && p.last[i] >= 0)
      L->xops[p.last[i]].nrel++, total++;
  L->rel = malloc(sizeof(int) * ((size_t)total + 1));
  if (!L->rel) {
    s = ir_error(d, IR_ERR_RUNTIME, (ir_loc){k->file, 0, 0}, NULL, "out of host memory");
    goto done;
  }
  int at = 0;
  for (int x = 0; x < L->nxops; x++) {
    L->xops[x].rel = at;
    at += L->xops[x].nrel;
    L->xops[x].nrel = 0;
  }
  for (int i = 0; i < nv; i++)
    if (p.vals[i] && p.last[i] >= 0) {
      xop *xo = &L->xops[p.last[i]];
      L->rel[xo->rel + xo->nrel++] = i;
    }
done:
  free(p.vals);
  free(p.depth);
  free(p.last);
  return s;
}

/* Runs every program of the grid; see ir.h. */
ir_status ir_interp_run(const ir_kernel *k, ir_argval *args, int nargs, const ir_interp_opts *o,
                        ir_diag *d) {
  ir_diag scratch;
  if (!d)
    d = &scratch;
  if (!k || (nargs > 0 && !args))
    return ir_error(d, IR_ERR_RUNTIME, (ir_loc){0}, NULL, "no kernel or arguments");
  int nv = k->nvalues > 0 ? k->nvalues : 1;
  int nthreads = o && o->nthreads > 1 ? o->nthreads : 1;
  if (nthreads > MAX_THREADS)
    nthreads = MAX_THREADS;
  launch L = {.k = k, .args = args};
  prog *progs = NULL;
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
      (s = plan(&L, d)))
    goto done;
  if (L.nprog == 0)
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
  int started = 0;
  for (int t = 0; t < nthreads; t++) {
    progs[t] = (prog){.L = &L, .errprog = L.nprog};
    progs[t].s = calloc((size_t)nv, sizeof(slot));
    if (!progs[t].s) {
      s = ir_error(d, IR_ERR_RUNTIME, (ir_loc){k->file, 0, 0}, NULL, "out of host memory");
      break;
    }
  }
  if (!s) {
    /* thread 0 is this thread; the others are started (fewer if the system refuses) */
    for (int t = 1; t < nthreads; t++, started++)
      if (pthread_create(&progs[t].thread, NULL, worker, &progs[t]))
        break;
    worker(&progs[0]);
    for (int t = 1; t <= started; t++)
      pthread_join(progs[t].thread, NULL);
    int64_t best = L.nprog;
    for (int t = 0; t < nthreads; t++)
      if (progs[t].errprog < best) {
        best = progs[t].errprog;
        *d = progs[t].err;
        s = d->status;
      }
  }
  for (int t = 0; t < nthreads; t++)
    prog_free(&progs[t], nv);
done:
  free(progs);
  free(L.argkind);
  free(L.symv);
  free(L.symset);
  free(L.vi);
  free(L.xops);
  free(L.rel);
  return s;
}
