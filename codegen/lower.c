/* lower.c - the LLVM lowering: GPU IR (a specialized kernel whose tiles have layouts) -> LLVM IR
 * -> PTX, through the LLVM C API only.
 *
 * Every tile value becomes an array of LLVM values, one per register of its layout, fully
 * unrolled; a scalar is one value, computed redundantly by every thread. Index arithmetic comes
 * from the affine form of each layout (ly_linear): the thread part is computed once from %tid.x
 * in the entry block, the register part is a compile-time constant. Register-level ops
 * (broadcast, expand_dims, trans, and conversions that turn out to be renamings) pick registers;
 * other conversions, reshapes, cross-warp reductions and dot operands that are not in registers
 * move through dynamic shared memory (store, bar.sync, load, bar.sync); dot operands go through
 * swizzled buffers read with ldmatrix. Loops whose loads feed a dot are software-pipelined
 * STAGES deep with cp.async into rings of such buffers. The algorithms are those of
 * docs/codegen.md, which the GPU-IR simulator (compiler/gpusim.c) implements as well (all but
 * ldmatrix, the swizzle and the pipelining, which only change where data waits).
 * Pipeline: cc_gpu_build -> cg_lower: lower -> LLVMVerifyModule -> O3 (o3_passes) -> NVPTX -> PTX.
 */
#include "codegen.h"
#include "lower.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "compiler/gpu.h"
#include "compiler/layout.h"
#include "ir/ir.h"

enum {
  SMEM_ALIGN = 16,              /* every shared-memory region starts at a multiple of this */
  MAX_UNROLLED_LOADS = 1 << 16, /* limit of the shared-memory reduction fallback */
};

/* ---- state ------------------------------------------------------------------------------ */

/* A layout applied to one shape, with its affine form and the LLVM values of its thread part. */
typedef struct linfo linfo;
struct linfo {
  const ly_layout *l;
  int rank;
  int64_t shape[IR_MAX_RANK];
  ly_affine a;
  bool wrap[IR_MAX_RANK]; /* register + thread part may reach the shape: needs `mod` */
  bool anywrap;
  LLVMValueRef t[IR_MAX_RANK]; /* thread part per dim (i32, entry block); NULL until used */
  LLVMValueRef w[IR_MAX_RANK]; /* warp part (lane bits cleared), as t */
  int *dup;                    /* anywrap: earlier register of the same coordinate, or -1 */
  LLVMValueRef own;            /* tid bits that move no coordinate are 0 (entry block) */
  bool own_done;
  linfo *next;
};

/* The LLVM form of one IR value: registers in the layout's order (a scalar has one). */
typedef struct tv {
  LLVMValueRef *r;
  int n;
  bool splat;            /* every register of every thread is r[0] (a scalar splatted) */
  const ir_value *defer; /* convert_layout left to its dot: the tile the dot moves itself */
  const struct sbuf *sm; /* a tile that is in shared memory only (a stage of a pipelined loop) */
} tv;

/* The kernel parameters of one launch argument. */
typedef struct argp {
  LLVMValueRef ptr;                 /* TENSOR, PTR */
  LLVMValueRef shape[IR_MAX_RANK];  /* TENSOR: i32 */
  LLVMValueRef stride[IR_MAX_RANK]; /* TENSOR: i64, in elements */
  LLVMValueRef scalar;              /* SCALAR (not const) */
} argp;

typedef struct lw {
  const cc_gpu *g;
  const ir_kernel *k;
  ir_arena *arena;
  ir_diag *d;
  bool failed;
  LLVMContextRef c;
  LLVMModuleRef m;
  LLVMBuilderRef b;  /* where the current op goes */
  LLVMBuilderRef pb; /* the entry block: thread parts, parameters, expressions */
  LLVMValueRef fn, smem, tid, tid0;
  LLVMTypeRef i1, i8, i16, i32, i64, f16, bf16, f32, f64, p1, vd;
  argp *args;
  LLVMValueRef *sym; /* by symbol: i64 or double, NULL until used */
  bool *symf;
  tv *vals;           /* by value id */
  int *uses;          /* by value id */
  const ir_op **user; /* by value id: the last op using it */
  linfo *infos;
  int threads, nbits;
  int64_t smem_bytes;
  int mma, barriers, ldmatrix, cpasync;
  int sm;      /* the target's SM version (89 for sm_89) */
  bool f8_mma; /* an f8 mma was emitted: the PTX needs ISA 8.4 */
  bool no_swizzle;
  bool aligned;      /* CG_ALIGNED: the tensor arguments keep the alignment promise */
  int64_t sbase;     /* shared memory below this holds the rings of enclosing pipelined loops */
  struct pipe *pipe; /* the pipelined loop whose body is being lowered, or NULL */
  int stages;        /* the kernel's STAGES tunable (1: no pipelining) */
} lw;

static bool fail(lw *L, ir_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool fail(lw *L, ir_loc loc, const char *fmt, ...) {
  if (L->failed)
    return false;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!loc.file)
    loc.file = L->k->file;
  ir_error(L->d, IR_ERR_CONFIG, loc, L->k->source, "%s", msg);
  L->failed = true;
  return false;
}

static void *alloc(lw *L, size_t n) { return ir_alloc(L->arena, n ? n : 1); }

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int64_t gcd(int64_t a, int64_t b) {
  a = a < 0 ? -a : a;
  b = b < 0 ? -b : b;
  while (b) {
    int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* ---- types and constants ---------------------------------------------------------------- */

static bool istile(const ir_value *v) { return v->ty->kind == IR_TILE; }

static ir_kind ekind(const ir_value *v) {
  const ir_type *e = ir_type_elem(v->ty);
  return e->kind;
}

static bool isflt(ir_kind k) { return ir_kind_is_float(k); }

static LLVMTypeRef ty(lw *L, ir_kind k) {
  switch (k) {
  case IR_I1:
    return L->i1;
  case IR_I8:
    return L->i8;
  case IR_I16:
    return L->i16;
  case IR_I32:
    return L->i32;
  case IR_I64:
    return L->i64;
  case IR_F16:
    return L->f16;
  case IR_BF16:
    return L->bf16;
  case IR_F32:
    return L->f32;
  case IR_F64:
    return L->f64;
  case IR_PTR:
    return L->p1;
  case IR_F8E4M3:
  case IR_F8E5M2:
    return L->i8; /* f8 values are their bits: loaded, stored, moved and fed to mma only */
  default:
    return NULL;
  }
}

static bool isf8(ir_kind k) { return k == IR_F8E4M3 || k == IR_F8E5M2; }

/* K elements per b32 mma operand register: 4 for f8 (mma.m16n8k32), 2 for f16/bf16. */
static int kwidth(ir_kind k) { return isf8(k) ? 4 : 2; }

/* The type an element has in memory: i1 is a byte. */
static LLVMTypeRef memty(lw *L, ir_kind k) { return k == IR_I1 ? L->i8 : ty(L, k); }

static int esize(ir_kind k) { return k == IR_PTR ? 8 : ir_kind_bits(k) / 8; }

static LLVMValueRef ci32(lw *L, int64_t v) {
  return LLVMConstInt(L->i32, (unsigned long long)v, 1);
}
static LLVMValueRef ci64(lw *L, int64_t v) {
  return LLVMConstInt(L->i64, (unsigned long long)v, 1);
}

static LLVMValueRef tomem(lw *L, LLVMValueRef v, ir_kind k) {
  return k == IR_I1 ? LLVMBuildZExt(L->b, v, L->i8, "") : v;
}

static LLVMValueRef frommem(lw *L, LLVMValueRef v, ir_kind k) {
  return k == IR_I1 ? LLVMBuildICmp(L->b, LLVMIntNE, v, LLVMConstNull(L->i8), "") : v;
}

/* The vector <n x memty(k)> of registers r[0 .. n). Where consecutive registers are all the
 * elements of one vector in order (the paired conversions give <2 x half/bfloat>), that vector
 * is reused and the pieces concatenated (shufflevector), not rebuilt element by element: the
 * optimizer and instruction selection would spend time undoing the extract/insert pairs. */
static LLVMValueRef vec_of(lw *L, LLVMValueRef *r, int n, ir_kind k) {
  LLVMTypeRef et = k == IR_I1 ? L->i8 : ty(L, k);
  LLVMValueRef piece[16];
  int m = 0, w = 0;
  for (int i = 0; i < n && n <= 16 && m >= 0;) {
    LLVMValueRef src = LLVMIsAExtractElementInst(r[i]) ? LLVMGetOperand(r[i], 0) : NULL;
    int sw = src ? (int)LLVMGetVectorSize(LLVMTypeOf(src)) : 0;
    if (!src || LLVMTypeOf(r[i]) != et || (w && sw != w) || i + sw > n) {
      m = -1;
      break;
    }
    for (int j = 0; j < sw && m >= 0; j++) {
      LLVMValueRef e = r[i + j], ix = LLVMIsAExtractElementInst(e) ? LLVMGetOperand(e, 1) : NULL;
      if (!ix || LLVMGetOperand(e, 0) != src || !LLVMIsAConstantInt(ix) ||
          LLVMConstIntGetZExtValue(ix) != (unsigned long long)j)
        m = -1;
    }
    if (m >= 0)
      piece[m++] = src, w = sw, i += sw;
  }
  if (m > 0 && !(m & (m - 1))) {
    for (; m > 1; m /= 2, w *= 2) {
      LLVMValueRef mask[16];
      for (int j = 0; j < 2 * w; j++)
        mask[j] = ci32(L, j);
      for (int j = 0; j < m / 2; j++)
        piece[j] = LLVMBuildShuffleVector(L->b, piece[2 * j], piece[2 * j + 1],
                                          LLVMConstVector(mask, (unsigned)(2 * w)), "");
    }
    return piece[0];
  }
  LLVMValueRef v = LLVMGetUndef(LLVMVectorType(et, (unsigned)n));
  for (int j = 0; j < n; j++)
    v = LLVMBuildInsertElement(L->b, v, tomem(L, r[j], k), ci32(L, j), "");
  return v;
}

/* A lower bound on the trailing zero bits of integer v (how many low bits are surely 0), from
 * constants, multiplications, shifts, additions, extensions and loop counters (a phi whose
 * other incoming values are the phi plus or minus something); 0 when unknown. */
static int known_tz(LLVMValueRef v, int depth) {
  if (LLVMIsAConstantInt(v)) {
    unsigned long long c = LLVMConstIntGetZExtValue(v);
    return c ? __builtin_ctzll(c) : 64;
  }
  if (depth > 8 || !LLVMIsAInstruction(v))
    return 0;
  LLVMValueRef a = LLVMGetNumOperands(v) > 0 ? LLVMGetOperand(v, 0) : NULL;
  LLVMValueRef b = LLVMGetNumOperands(v) > 1 ? LLVMGetOperand(v, 1) : NULL;
  int x, y;
  switch (LLVMGetInstructionOpcode(v)) {
  case LLVMMul:
    x = known_tz(a, depth + 1) + known_tz(b, depth + 1);
    return x < 64 ? x : 64;
  case LLVMShl:
    if (!LLVMIsAConstantInt(b))
      return 0;
    x = known_tz(a, depth + 1) + (int)LLVMConstIntGetZExtValue(b);
    return x < 64 ? x : 64;
  case LLVMAdd:
  case LLVMSub:
  case LLVMOr:
    x = known_tz(a, depth + 1), y = known_tz(b, depth + 1);
    return x < y ? x : y;
  case LLVMZExt:
  case LLVMSExt:
    return known_tz(a, depth + 1);
  case LLVMPHI: {
    int m = 64;
    for (unsigned i = 0; i < LLVMCountIncoming(v) && m; i++) {
      LLVMValueRef in = LLVMGetIncomingValue(v, i);
      LLVMOpcode op = LLVMIsAInstruction(in) ? LLVMGetInstructionOpcode(in) : LLVMRet;
      if ((op == LLVMAdd || op == LLVMSub) && LLVMGetOperand(in, 0) == v)
        x = known_tz(LLVMGetOperand(in, 1), depth + 1);
      else if (op == LLVMAdd && LLVMGetOperand(in, 1) == v)
        x = known_tz(LLVMGetOperand(in, 0), depth + 1);
      else
        x = known_tz(in, depth + 1);
      m = x < m ? x : m;
    }
    return m;
  }
  default:
    return 0;
  }
}

/* A call of the intrinsic `name`, overloaded on ovl[0 .. novl). */
static LLVMValueRef intr(lw *L, LLVMBuilderRef b, const char *name, LLVMTypeRef *ovl, int novl,
                         LLVMValueRef *args, int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  assert(id != 0 && "unknown LLVM intrinsic");
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(L->m, id, ovl, (size_t)novl);
  LLVMTypeRef ft = LLVMIntrinsicGetType(L->c, id, ovl, (size_t)novl);
  return LLVMBuildCall2(b, ft, f, args, (unsigned)nargs, "");
}

static LLVMValueRef intr1(lw *L, const char *name, LLVMTypeRef t, LLVMValueRef x) {
  return intr(L, L->b, name, t ? &t : NULL, t ? 1 : 0, &x, 1);
}

static LLVMValueRef intr2(lw *L, const char *name, LLVMTypeRef t, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef a[2] = {x, y};
  return intr(L, L->b, name, t ? &t : NULL, t ? 1 : 0, a, 2);
}

/* Inline PTX with side effects (kept in order with every other memory access). */
static LLVMValueRef inline_asm(lw *L, LLVMTypeRef ret, const char *text, const char *cons,
                               LLVMValueRef *args, int n) {
  LLVMTypeRef at[8];
  for (int i = 0; i < n; i++)
    at[i] = LLVMTypeOf(args[i]);
  LLVMTypeRef ft = LLVMFunctionType(ret, at, (unsigned)n, 0);
  LLVMValueRef a = LLVMGetInlineAsm(ft, (char *)text, strlen(text), (char *)cons, strlen(cons), 1,
                                    0, LLVMInlineAsmDialectATT, 0);
  return LLVMBuildCall2(L->b, ft, a, args, (unsigned)n, "");
}

static void barrier(lw *L) {
  intr(L, L->b, "llvm.nvvm.barrier0", NULL, 0, NULL, 0);
  L->barriers++;
}

static LLVMValueRef sreg(lw *L, const char *name) { return intr(L, L->pb, name, NULL, 0, NULL, 0); }

/* ---- values ----------------------------------------------------------------------------- */

static const ly_layout *layout(lw *L, const ir_value *v) { return cc_layout(L->g, v); }

static int64_t shape_of(const ir_value *v, int *rank, int64_t *shape) {
  int64_t n = ir_type_shape(v->ty, rank, shape);
  if (!istile(v))
    *rank = 0;
  return n;
}

static int nregs(lw *L, const ir_value *v) {
  if (!istile(v))
    return 1;
  int rank;
  int64_t s[IR_MAX_RANK];
  shape_of(v, &rank, s);
  return ly_nregs(layout(L, v), s);
}

static tv *get(lw *L, const ir_value *v) { return &L->vals[v->id]; }

/* Creates the (empty) register array of v. */
static tv *def(lw *L, const ir_value *v) {
  tv *t = &L->vals[v->id];
  t->n = nregs(L, v);
  t->r = alloc(L, sizeof(LLVMValueRef) * (size_t)t->n);
  t->splat = false;
  t->defer = NULL;
  t->sm = NULL;
  return t;
}

/* Register i of operand v: a scalar is splatted over every register. */
static LLVMValueRef reg(lw *L, const ir_value *v, int i) {
  tv *t = get(L, v);
  return istile(v) ? t->r[i] : t->r[0];
}

/* ---- layouts: affine form, thread parts, coordinates ------------------------------------ */

/* sum over set bits b of tid of w[b] (i32), grouping runs of doubling weights into one
 * shift-and-mask. */
static LLVMValueRef bitsum(lw *L, LLVMBuilderRef b, const int64_t *w) {
  LLVMValueRef acc = NULL;
  for (int i = 0; i < L->nbits;) {
    if (!w[i]) {
      i++;
      continue;
    }
    int e = i + 1;
    while (e < L->nbits && w[e] == 2 * w[e - 1])
      e++;
    LLVMValueRef v = L->tid;
    if (i)
      v = LLVMBuildLShr(b, v, ci32(L, i), "");
    if (e < L->nbits)
      v = LLVMBuildAnd(b, v, ci32(L, (1 << (e - i)) - 1), "");
    if (w[i] != 1) {
      if ((w[i] & (w[i] - 1)) == 0)
        v = LLVMBuildShl(b, v, ci32(L, __builtin_ctzll((unsigned long long)w[i])), "");
      else
        v = LLVMBuildMul(b, v, ci32(L, w[i]), "");
    }
    acc = acc ? LLVMBuildAdd(b, acc, v, "") : v;
    i = e;
  }
  return acc ? acc : ci32(L, 0);
}

static linfo *info(lw *L, const ly_layout *l, int rank, const int64_t *shape, ir_loc loc) {
  for (linfo *li = L->infos; li; li = li->next)
    if (li->rank == rank && ly_equal(li->l, l) &&
        !memcmp(li->shape, shape, sizeof(int64_t) * (size_t)rank))
      return li;
  char buf[256];
  if (!l || l->rank != rank) {
    fail(L, loc, "internal error: a tile of rank %d has no layout of its rank", rank);
    return NULL;
  }
  if (ly_warps(l) * LY_WARP != L->threads) {
    ly_print(l, buf, sizeof buf);
    fail(L, loc, "internal error: layout %s is for %d warps, the kernel has %d", buf, ly_warps(l),
         L->threads / LY_WARP);
    return NULL;
  }
  linfo *li = alloc(L, sizeof *li);
  li->l = l;
  li->rank = rank;
  memcpy(li->shape, shape, sizeof(int64_t) * (size_t)rank);
  if (!ly_linear(l, shape, &li->a)) {
    ly_print(l, buf, sizeof buf);
    fail(L, loc, "layout %s has no affine form for this shape; the lowering needs one", buf);
    return NULL;
  }
  li->next = L->infos;
  L->infos = li;
  for (int d = 0; d < rank; d++) {
    int64_t lo = INT64_MAX, hi = INT64_MIN, thi = 0;
    for (int r = 0; r < li->a.nregs; r++) {
      int64_t v = li->a.reg[(size_t)r * IR_MAX_RANK + d];
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
    for (int b = 0; b < li->a.nbits; b++) {
      int64_t w = li->a.bit[b][d];
      if (w < 0) {
        ly_print(l, buf, sizeof buf);
        fail(L, loc, "layout %s decreases with the thread id; not supported", buf);
        return NULL;
      }
      thi += w;
    }
    if (lo < 0) {
      ly_print(l, buf, sizeof buf);
      fail(L, loc, "layout %s has negative coordinates; not supported", buf);
      return NULL;
    }
    li->wrap[d] = hi + thi >= shape[d];
    li->anywrap |= li->wrap[d];
  }
  return li;
}

static linfo *info_of(lw *L, const ir_value *v, ir_loc loc) {
  int rank;
  int64_t s[IR_MAX_RANK];
  shape_of(v, &rank, s);
  return info(L, layout(L, v), rank, s, loc);
}

static int64_t rpart(const linfo *li, int r, int d) {
  return li->a.reg[(size_t)r * IR_MAX_RANK + d];
}

static LLVMValueRef tpart(lw *L, linfo *li, int d) {
  if (!li->t[d]) {
    int64_t w[16];
    for (int b = 0; b < li->a.nbits; b++)
      w[b] = li->a.bit[b][d];
    li->t[d] = bitsum(L, L->pb, w);
  }
  return li->t[d];
}

/* Coordinate d of register r of the current thread (i32). */
static LLVMValueRef coord(lw *L, linfo *li, int r, int d) {
  LLVMValueRef v = tpart(L, li, d);
  int64_t c = rpart(li, r, d);
  if (c)
    v = LLVMBuildAdd(L->b, v, ci32(L, c), "");
  if (li->wrap[d])
    v = LLVMBuildURem(L->b, v, ci32(L, li->shape[d]), "");
  return v;
}

/* Compile-time coordinate of register r in thread t. */
static void ccoord(const linfo *li, int t, int r, int64_t *c) {
  for (int d = 0; d < li->rank; d++) {
    int64_t v = rpart(li, r, d);
    for (int b = 0; b < li->a.nbits; b++)
      if (t >> b & 1)
        v += li->a.bit[b][d];
    c[d] = v % li->shape[d];
  }
}

static int64_t numel(int rank, const int64_t *shape) {
  int64_t n = 1;
  for (int d = 0; d < rank; d++)
    n *= shape[d];
  return n;
}

static int64_t ravel(int rank, const int64_t *shape, const int64_t *c) {
  int64_t lin = 0;
  for (int d = 0; d < rank; d++)
    lin = lin * shape[d] + c[d];
  return lin;
}

static void rowmajor(int rank, const int64_t *shape, int64_t *st) {
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; d--) {
    st[d] = s;
    s *= shape[d];
  }
}

/* Registers of a wrapping layout that repeat an earlier register's coordinate (the same in
 * every thread: coordinates are congruent modulo the shape). NULL when nothing repeats. */
static const int *dups(lw *L, linfo *li) {
  if (!li->anywrap)
    return NULL;
  if (li->dup)
    return li->dup;
  int64_t n = numel(li->rank, li->shape);
  int *first = malloc(sizeof(int) * (size_t)n);
  li->dup = alloc(L, sizeof(int) * (size_t)li->a.nregs);
  if (!first)
    abort(); /* ok: host out of memory aborts, as in the IR arena (docs/ir.md, Limits) */
  for (int64_t i = 0; i < n; i++)
    first[i] = -1;
  for (int r = 0; r < li->a.nregs; r++) {
    int64_t c[IR_MAX_RANK];
    ccoord(li, 0, r, c);
    int64_t lin = ravel(li->rank, li->shape, c);
    li->dup[r] = first[lin];
    if (first[lin] < 0)
      first[lin] = r;
  }
  free(first);
  return li->dup;
}

/* Whether register r of this thread is the one copy of its element that stores it (NULL: every
 * copy may). Layouts give every (thread, register) a distinct raw coordinate except along
 * thread-id bits that move nothing; the owner is the copy whose raw coordinate lies inside the
 * shape and whose such bits are 0. Replicas must not store: with an inout tensor a replica may
 * load after the owner stored, and would store a value computed from the new data. */
static LLVMValueRef owner(lw *L, linfo *li, int r) {
  if (!li->own_done) {
    int64_t zero = 0;
    for (int b = 0; b < li->a.nbits; b++) {
      bool moves = false;
      for (int d = 0; d < li->rank; d++)
        moves |= li->a.bit[b][d] != 0;
      zero |= moves ? 0 : (int64_t)1 << b;
    }
    if (zero)
      li->own = LLVMBuildICmp(L->pb, LLVMIntEQ, LLVMBuildAnd(L->pb, L->tid, ci32(L, zero), ""),
                              ci32(L, 0), "");
    li->own_done = true;
  }
  LLVMValueRef own = li->own;
  for (int d = 0; d < li->rank; d++) {
    if (!li->wrap[d])
      continue;
    LLVMValueRef raw = LLVMBuildAdd(L->b, tpart(L, li, d), ci32(L, rpart(li, r, d)), "");
    LLVMValueRef in = LLVMBuildICmp(L->b, LLVMIntULT, raw, ci32(L, li->shape[d]), "");
    own = own ? LLVMBuildAnd(L->b, own, in, "") : in;
  }
  return own;
}

/* tid == 0: the thread that stores scalars (every thread computes them, and a replica may have
 * computed its copy from data the store itself changed). */
static LLVMValueRef thread0(lw *L) {
  if (!L->tid0)
    L->tid0 = LLVMBuildICmp(L->pb, LLVMIntEQ, L->tid, ci32(L, 0), "");
  return L->tid0;
}

/* How the coordinate of a destination element gives the source element it reads. */
typedef enum { MAP_SAME, MAP_BCAST, MAP_EXPAND, MAP_TRANS, MAP_RESHAPE, MAP_DROP } mapk;

static void mapc(mapk k, int axis, const linfo *src, const linfo *dst, const int64_t *dc,
                 int64_t *sc) {
  switch (k) {
  case MAP_SAME:
    memcpy(sc, dc, sizeof(int64_t) * (size_t)dst->rank);
    return;
  case MAP_BCAST:
    for (int d = 0; d < dst->rank; d++) {
      int sd = d - (dst->rank - src->rank);
      if (sd >= 0)
        sc[sd] = src->shape[sd] == 1 ? 0 : dc[d];
    }
    return;
  case MAP_EXPAND: /* dst is the expanded tile's source: drop `axis` of the result */
    for (int d = 0, j = 0; d < dst->rank; d++)
      if (d != axis)
        sc[j++] = dc[d];
    return;
  case MAP_DROP: /* reduce: the input register's output coordinate */
    for (int d = 0, j = 0; d < dst->rank; d++)
      if (d != axis)
        sc[j++] = dc[d];
    return;
  case MAP_TRANS:
    sc[0] = dc[1];
    sc[1] = dc[0];
    return;
  case MAP_RESHAPE: {
    int64_t lin = ravel(dst->rank, dst->shape, dc);
    for (int d = src->rank - 1; d >= 0; d--) {
      sc[d] = lin % src->shape[d];
      lin /= src->shape[d];
    }
    return;
  }
  }
}

/* For every register r of dst, the register of the same thread in src that holds map(coord):
 * found[r]. True when it exists and is the same register in every thread (a renaming). */
static bool findregs(lw *L, const linfo *src, const linfo *dst, mapk k, int axis, int *found) {
  int64_t n = numel(src->rank, src->shape);
  int *tab = malloc(sizeof(int) * (size_t)n);
  if (!tab)
    abort(); /* ok: host out of memory aborts, as in the IR arena (docs/ir.md, Limits) */
  for (int64_t i = 0; i < n; i++)
    tab[i] = -1;
  bool ok = true;
  int64_t c[IR_MAX_RANK], sc[IR_MAX_RANK];
  for (int t = 0; t < L->threads && ok; t++) {
    for (int r = src->a.nregs - 1; r >= 0; r--) {
      ccoord(src, t, r, c);
      tab[ravel(src->rank, src->shape, c)] = r;
    }
    for (int r = 0; r < dst->a.nregs && ok; r++) {
      ccoord(dst, t, r, c);
      mapc(k, axis, src, dst, c, sc);
      int j = tab[ravel(src->rank, src->shape, sc)];
      if (t == 0)
        found[r] = j;
      ok = j >= 0 && j == found[r];
    }
    for (int r = 0; r < src->a.nregs; r++) {
      ccoord(src, t, r, c);
      tab[ravel(src->rank, src->shape, c)] = -1;
    }
  }
  free(tab);
  return ok;
}

/* ---- shared memory ---------------------------------------------------------------------- */

/* Element index of each register in a shared buffer: index = sum over d of coord_d * st[d]. With
 * no wrapping dim it is an LLVM thread part plus a constant per register, and runs of registers
 * at consecutive indices become vector accesses. */
typedef struct splan {
  linfo *li;
  int64_t st[IR_MAX_RANK];
  bool affine;
  LLVMValueRef tl; /* affine: thread part */
  int64_t align;   /* affine: every thread part is a multiple of it (0: all zero) */
} splan;

static void plan(lw *L, splan *p, linfo *li, const int64_t *st) {
  p->li = li;
  memcpy(p->st, st, sizeof(int64_t) * (size_t)li->rank);
  p->affine = true;
  for (int d = 0; d < li->rank; d++)
    if (li->wrap[d] && st[d])
      p->affine = false;
  if (!p->affine)
    return;
  int64_t w[16] = {0};
  p->align = 0;
  for (int b = 0; b < li->a.nbits; b++) {
    for (int d = 0; d < li->rank; d++)
      w[b] += li->a.bit[b][d] * st[d];
    p->align = gcd(p->align, w[b]);
  }
  p->tl = bitsum(L, L->b, w);
}

static int64_t plc(const splan *p, int r) {
  int64_t c = 0;
  for (int d = 0; d < p->li->rank; d++)
    c += rpart(p->li, r, d) * p->st[d];
  return c;
}

static LLVMValueRef pidx(lw *L, splan *p, int r) {
  if (p->affine) {
    int64_t c = plc(p, r);
    return c ? LLVMBuildAdd(L->b, p->tl, ci32(L, c), "") : p->tl;
  }
  LLVMValueRef idx = NULL;
  for (int d = 0; d < p->li->rank; d++) {
    if (!p->st[d])
      continue;
    LLVMValueRef v = coord(L, p->li, r, d);
    if (p->st[d] != 1)
      v = LLVMBuildMul(L->b, v, ci32(L, p->st[d]), "");
    idx = idx ? LLVMBuildAdd(L->b, idx, v, "") : v;
  }
  return idx ? idx : ci32(L, 0);
}

/* vwidth of a plan that is not affine (a wrapped dim with a stride): the index of register
 * r + j must be that of register r plus j, and the index of r a multiple of v, in every thread
 * (checked for each one, as ccoord wraps them). */
static int64_t cindex(const splan *p, int t, int r) {
  int64_t c[IR_MAX_RANK], x = 0;
  ccoord(p->li, t, r, c);
  for (int d = 0; d < p->li->rank; d++)
    x += c[d] * p->st[d];
  return x;
}

static int vwidth_wrap(const splan *p, int r, int left, ir_kind k, int64_t base, const bool *skip) {
  int threads = 1 << p->li->a.nbits;
  for (int v = 16 / esize(k); v >= 2; v /= 2) {
    bool ok = v <= left;
    for (int j = 1; j < v && ok; j++)
      ok = !(skip && skip[r + j]);
    for (int t = 0; t < threads && ok; t++) {
      int64_t x = cindex(p, t, r);
      ok = (base + x) % v == 0;
      for (int j = 1; j < v && ok; j++)
        ok = cindex(p, t, r + j) == x + j;
    }
    if (ok)
      return v;
  }
  return 1;
}

/* Registers r .. r+v-1 form one aligned vector access (largest v of at most 16 bytes). */
static int vwidth(const splan *p, int r, int left, ir_kind k, int64_t base, const bool *skip) {
  if (k == IR_PTR)
    return 1;
  if (!p->affine)
    return vwidth_wrap(p, r, left, k, base, skip);
  int64_t c0 = plc(p, r);
  for (int v = 16 / esize(k); v >= 2; v /= 2) {
    if (v > left || (c0 + base) % v || p->align % v)
      continue;
    bool ok = true;
    for (int j = 1; j < v && ok; j++)
      ok = plc(p, r + j) == c0 + j && !(skip && skip[r + j]);
    if (ok)
      return v;
  }
  return 1;
}

/* Shared memory of the ops being lowered starts at L->sbase: below it are the rings of the
 * pipelined loops that enclose them. */
static LLVMValueRef sptr(lw *L, LLVMTypeRef et, int64_t byte_off, LLVMValueRef idx) {
  LLVMValueRef base = L->smem;
  byte_off += L->sbase;
  if (byte_off) {
    LLVMValueRef o = ci32(L, byte_off);
    base = LLVMBuildInBoundsGEP2(L->b, L->i8, base, &o, 1, "");
  }
  return LLVMBuildInBoundsGEP2(L->b, et, base, &idx, 1, "");
}

static void need_smem(lw *L, int64_t bytes) {
  bytes += L->sbase;
  if (bytes > L->smem_bytes)
    L->smem_bytes = bytes;
}

/* Stores registers [first, first+count) of regs (except skipped ones) at their plan indices. */
static void sstore(lw *L, splan *p, LLVMValueRef *regs, const bool *skip, ir_kind k,
                   int64_t byte_off, int first, int count) {
  LLVMTypeRef et = memty(L, k);
  int64_t base = byte_off / esize(k);
  for (int r = first; r < first + count;) {
    if (skip && skip[r]) {
      r++;
      continue;
    }
    int v = vwidth(p, r, first + count - r, k, base, skip);
    LLVMValueRef ptr = sptr(L, et, byte_off, pidx(L, p, r)), val, st;
    val = v == 1 ? tomem(L, regs[r], k) : vec_of(L, regs + r, v, k);
    st = LLVMBuildStore(L->b, val, ptr);
    LLVMSetAlignment(st, (unsigned)(v * esize(k)));
    r += v;
  }
}

/* Loads registers [first, first+count) of out from their plan indices. */
static void sload(lw *L, splan *p, LLVMValueRef *out, ir_kind k, int64_t byte_off, int first,
                  int count) {
  LLVMTypeRef et = memty(L, k);
  int64_t base = byte_off / esize(k);
  for (int r = first; r < first + count;) {
    int v = vwidth(p, r, first + count - r, k, base, NULL);
    LLVMValueRef ptr = sptr(L, et, byte_off, pidx(L, p, r));
    LLVMTypeRef lt = v == 1 ? et : LLVMVectorType(et, (unsigned)v);
    LLVMValueRef ld = LLVMBuildLoad2(L->b, lt, ptr, "");
    LLVMSetAlignment(ld, (unsigned)(v * esize(k)));
    if (v == 1)
      out[r] = frommem(L, ld, k);
    else
      for (int j = 0; j < v; j++)
        out[r + j] = frommem(L, LLVMBuildExtractElement(L->b, ld, ci32(L, j), ""), k);
    r += v;
  }
}

/* skip[] of the registers that repeat an earlier one (they need not be stored). */
static bool *skips(lw *L, linfo *li) {
  const int *dup = dups(L, li);
  if (!dup)
    return NULL;
  bool *s = alloc(L, sizeof(bool) * (size_t)li->a.nregs);
  for (int r = 0; r < li->a.nregs; r++)
    s[r] = dup[r] >= 0;
  return s;
}

/* ---- expressions (entry block) ---------------------------------------------------------- */

typedef struct num {
  LLVMValueRef v; /* i64 or double */
  bool f;
} num;

static num symval(lw *L, int s) {
  if (L->sym[s])
    return (num){L->sym[s], L->symf[s]};
  const ir_sym *sy = &L->k->syms[s];
  LLVMBuilderRef b = L->pb;
  num r = {NULL, false};
  if (sy->kind == SYM_DIM) {
    r.v = LLVMBuildSExt(b, L->args[sy->arg].shape[sy->argdim], L->i64, sy->name);
  } else if (sy->kind == SYM_PARAM) {
    LLVMValueRef p = L->args[sy->arg].scalar;
    if (sy->ty == IR_I1)
      r.v = LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntNE, p, LLVMConstNull(L->i8), ""), L->i64, "");
    else if (ir_kind_is_int(sy->ty))
      r.v = sy->ty == IR_I64 ? p : LLVMBuildSExt(b, p, L->i64, "");
    else
      r = (num){sy->ty == IR_F64 ? p : LLVMBuildFPExt(b, p, L->f64, ""), true};
  } else if (sy->def.isf) {
    r = (num){LLVMConstReal(L->f64, sy->def.f), true};
  } else {
    r.v = ci64(L, sy->def.i);
  }
  L->sym[s] = r.v;
  L->symf[s] = r.f;
  return r;
}

/* x / y and x % y of signed integers, defined for every y: y == 0 (an error in the
 * interpreter) divides by 1, y == -1 negates (no overflow trap). */
static LLVMValueRef sdivrem(LLVMBuilderRef b, LLVMValueRef x, LLVMValueRef y, bool rem) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef one = LLVMConstInt(t, 1, 0), m1 = LLVMConstAllOnes(t), z = LLVMConstNull(t);
  LLVMValueRef ism1 = LLVMBuildICmp(b, LLVMIntEQ, y, m1, "");
  LLVMValueRef bad = LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntEQ, y, z, ""), ism1, "");
  LLVMValueRef ys = LLVMBuildSelect(b, bad, one, y, "");
  LLVMValueRef q = rem ? LLVMBuildSRem(b, x, ys, "") : LLVMBuildSDiv(b, x, ys, "");
  return LLVMBuildSelect(b, ism1, rem ? z : LLVMBuildSub(b, z, x, ""), q, "");
}

/* ceil(x / y) for signed integers (as the interpreter: rounds up when the signs agree). */
static LLVMValueRef scdiv(LLVMBuilderRef b, LLVMValueRef x, LLVMValueRef y) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef z = LLVMConstNull(t);
  LLVMValueRef q = sdivrem(b, x, y, false), m = sdivrem(b, x, y, true);
  LLVMValueRef xneg = LLVMBuildICmp(b, LLVMIntSLT, x, z, ""); /* one per statement: C leaves */
  LLVMValueRef yneg = LLVMBuildICmp(b, LLVMIntSLT, y, z, ""); /* argument order unspecified */
  LLVMValueRef same = LLVMBuildICmp(b, LLVMIntEQ, xneg, yneg, "");
  LLVMValueRef up = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntNE, m, z, ""), same, "");
  return LLVMBuildAdd(b, q, LLVMBuildZExt(b, up, t, ""), "");
}

static num ex(lw *L, const ir_expr *e);

static num flt(lw *L, num a) {
  if (!a.f)
    a = (num){LLVMBuildSIToFP(L->pb, a.v, L->f64, ""), true};
  return a;
}

static LLVMValueRef truth(lw *L, num a) {
  return a.f ? LLVMBuildFCmp(L->pb, LLVMRealUNE, a.v, LLVMConstReal(L->f64, 0), "")
             : LLVMBuildICmp(L->pb, LLVMIntNE, a.v, ci64(L, 0), "");
}

static num inum(lw *L, LLVMValueRef bit) { return (num){LLVMBuildZExt(L->pb, bit, L->i64, ""), 0}; }

static num ex(lw *L, const ir_expr *e) {
  LLVMBuilderRef b = L->pb;
  switch (e->kind) {
  case EX_INT:
    return (num){ci64(L, e->i), false};
  case EX_FLOAT:
    return (num){LLVMConstReal(L->f64, e->f), true};
  case EX_SYM:
    return symval(L, e->sym);
  case EX_UNARY: {
    num a = ex(L, e->a);
    if (e->op == '!')
      return inum(L, LLVMBuildNot(b, truth(L, a), ""));
    return a.f ? (num){LLVMBuildFNeg(b, a.v, ""), true} : (num){LLVMBuildNeg(b, a.v, ""), false};
  }
  default:
    break;
  }
  num a = ex(L, e->a), c = ex(L, e->b);
  if (e->op == EXO_AND)
    return inum(L, LLVMBuildAnd(b, truth(L, a), truth(L, c), ""));
  if (e->op == EXO_OR)
    return inum(L, LLVMBuildOr(b, truth(L, a), truth(L, c), ""));
  if (a.f || c.f) {
    LLVMValueRef x = flt(L, a).v, y = flt(L, c).v;
    LLVMRealPredicate p = LLVMRealOEQ;
    switch (e->op) {
    case '+':
      return (num){LLVMBuildFAdd(b, x, y, ""), true};
    case '-':
      return (num){LLVMBuildFSub(b, x, y, ""), true};
    case '*':
      return (num){LLVMBuildFMul(b, x, y, ""), true};
    case '/':
      return (num){LLVMBuildFDiv(b, x, y, ""), true};
    case '%':
      return (num){LLVMBuildFRem(b, x, y, ""), true};
    case EXO_CDIV: {
      LLVMValueRef q = LLVMBuildFDiv(b, x, y, "");
      return (num){intr(L, b, "llvm.ceil", &L->f64, 1, &q, 1), true};
    }
    case EXO_MIN:
    case EXO_MAX: {
      LLVMValueRef xy[2] = {x, y};
      return (num){intr(L, b, e->op == EXO_MIN ? "llvm.minnum" : "llvm.maxnum", &L->f64, 1, xy, 2),
                   true};
    }
    case '<':
      p = LLVMRealOLT;
      break;
    case '>':
      p = LLVMRealOGT;
      break;
    case EXO_LE:
      p = LLVMRealOLE;
      break;
    case EXO_GE:
      p = LLVMRealOGE;
      break;
    case EXO_EQ:
      p = LLVMRealOEQ;
      break;
    case EXO_NE:
      p = LLVMRealUNE;
      break;
    default:
      break;
    }
    return inum(L, LLVMBuildFCmp(b, p, x, y, ""));
  }
  LLVMValueRef x = a.v, y = c.v;
  LLVMIntPredicate p = LLVMIntEQ;
  switch (e->op) {
  case '+':
    return (num){LLVMBuildAdd(b, x, y, ""), false};
  case '-':
    return (num){LLVMBuildSub(b, x, y, ""), false};
  case '*':
    return (num){LLVMBuildMul(b, x, y, ""), false};
  case '/':
    return (num){sdivrem(b, x, y, false), false};
  case '%':
    return (num){sdivrem(b, x, y, true), false};
  case EXO_CDIV:
    return (num){scdiv(b, x, y), false};
  case EXO_MIN:
  case EXO_MAX: {
    LLVMValueRef xy[2] = {x, y};
    return (num){intr(L, b, e->op == EXO_MIN ? "llvm.smin" : "llvm.smax", &L->i64, 1, xy, 2),
                 false};
  }
  case '<':
    p = LLVMIntSLT;
    break;
  case '>':
    p = LLVMIntSGT;
    break;
  case EXO_LE:
    p = LLVMIntSLE;
    break;
  case EXO_GE:
    p = LLVMIntSGE;
    break;
  case EXO_EQ:
    p = LLVMIntEQ;
    break;
  case EXO_NE:
    p = LLVMIntNE;
    break;
  default:
    break;
  }
  return inum(L, LLVMBuildICmp(b, p, x, y, ""));
}

/* ---- element conversions and arithmetic -------------------------------------------------- */

/* v of kind `from` as kind `to`, with the cast op's rules: floats round to nearest even, floats
 * to integers truncate (saturating, NaN -> 0) and wrap to the width, i1 is x != 0. */
static LLVMValueRef conv(lw *L, LLVMBuilderRef b, LLVMValueRef v, ir_kind from, ir_kind to) {
  if (from == to || from == IR_PTR || to == IR_PTR)
    return v;
  bool ff = isflt(from), ft = isflt(to);
  if (ff && ft) {
    int bf = ir_kind_bits(from), bt = ir_kind_bits(to);
    if (bf == bt) /* f16 <-> bf16: exactly through f32 */
      return LLVMBuildFPTrunc(b, LLVMBuildFPExt(b, v, L->f32, ""), ty(L, to), "");
    return bt > bf ? LLVMBuildFPExt(b, v, ty(L, to), "") : LLVMBuildFPTrunc(b, v, ty(L, to), "");
  }
  if (!ff && ft)
    return from == IR_I1 ? LLVMBuildUIToFP(b, v, ty(L, to), "")
                         : LLVMBuildSIToFP(b, v, ty(L, to), "");
  if (ff) {
    if (to == IR_I1)
      return LLVMBuildFCmp(b, LLVMRealUNE, v, LLVMConstNull(ty(L, from)), "");
    if (from == IR_F16 || from == IR_BF16)
      v = LLVMBuildFPExt(b, v, L->f32, "");
    LLVMTypeRef ovl[2] = {L->i64, LLVMTypeOf(v)};
    v = intr(L, b, "llvm.fptosi.sat", ovl, 2, &v, 1);
    return to == IR_I64 ? v : LLVMBuildTrunc(b, v, ty(L, to), "");
  }
  if (to == IR_I1)
    return LLVMBuildICmp(b, LLVMIntNE, v, LLVMConstNull(ty(L, from)), "");
  if (from == IR_I1)
    return LLVMBuildZExt(b, v, ty(L, to), "");
  return ir_kind_bits(to) > ir_kind_bits(from) ? LLVMBuildSExt(b, v, ty(L, to), "")
                                               : LLVMBuildTrunc(b, v, ty(L, to), "");
}

static bool half(ir_kind k) { return k == IR_F16 || k == IR_BF16; }

/* f16/bf16 compute in f32 and round once (the interpreter computes exactly and rounds once). */
static LLVMValueRef up(lw *L, LLVMValueRef v, ir_kind k) {
  return half(k) ? LLVMBuildFPExt(L->b, v, L->f32, "") : v;
}

static LLVMValueRef down(lw *L, LLVMValueRef v, ir_kind k) {
  return half(k) ? LLVMBuildFPTrunc(L->b, v, ty(L, k), "") : v;
}

static LLVMValueRef fbinary(lw *L, const ir_op *op, LLVMValueRef x, LLVMValueRef y, ir_kind k) {
  LLVMBuilderRef b = L->b;
  LLVMTypeRef ct = k == IR_F64 ? L->f64 : L->f32;
  x = up(L, x, k);
  y = up(L, y, k);
  LLVMValueRef r;
  switch (op->code) {
  case IR_OP_ADD:
    r = LLVMBuildFAdd(b, x, y, "");
    break;
  case IR_OP_SUB:
    r = LLVMBuildFSub(b, x, y, "");
    break;
  case IR_OP_MUL:
    r = LLVMBuildFMul(b, x, y, "");
    break;
  case IR_OP_DIV:
    r = LLVMBuildFDiv(b, x, y, "");
    break;
  case IR_OP_REM:
    r = LLVMBuildFRem(b, x, y, "");
    break;
  case IR_OP_CDIV:
    r = intr1(L, "llvm.ceil", ct, LLVMBuildFDiv(b, x, y, ""));
    break;
  case IR_OP_MAX:
    r = intr2(L, "llvm.maximum", ct, x, y);
    break;
  case IR_OP_MIN:
    r = intr2(L, "llvm.minimum", ct, x, y);
    break;
  default:
    fail(L, op->loc, "'%s' needs integer operands", ir_ops[op->code].keyword);
    return NULL;
  }
  return down(L, r, k);
}

static LLVMValueRef ibinary(lw *L, const ir_op *op, LLVMValueRef x, LLVMValueRef y, ir_kind k) {
  LLVMBuilderRef b = L->b;
  LLVMTypeRef t = ty(L, k);
  int w = k == IR_I1 ? 1 : ir_kind_bits(k);
  switch (op->code) {
  case IR_OP_ADD:
    return LLVMBuildAdd(b, x, y, "");
  case IR_OP_SUB:
    return LLVMBuildSub(b, x, y, "");
  case IR_OP_MUL:
    return LLVMBuildMul(b, x, y, "");
  case IR_OP_DIV:
    return sdivrem(b, x, y, false);
  case IR_OP_REM:
    return sdivrem(b, x, y, true);
  case IR_OP_CDIV:
    return scdiv(b, x, y);
  case IR_OP_MAX: /* i1 holds 0 and 1 (unsigned), the other kinds are signed */
    return intr2(L, k == IR_I1 ? "llvm.umax" : "llvm.smax", t, x, y);
  case IR_OP_MIN:
    return intr2(L, k == IR_I1 ? "llvm.umin" : "llvm.smin", t, x, y);
  case IR_OP_AND:
    return LLVMBuildAnd(b, x, y, "");
  case IR_OP_OR:
    return LLVMBuildOr(b, x, y, "");
  case IR_OP_XOR:
    return LLVMBuildXor(b, x, y, "");
  case IR_OP_SHL:
  case IR_OP_SHR: { /* shifts by the width or more: 0, or the sign for shr */
    LLVMValueRef big = LLVMBuildICmp(b, LLVMIntUGE, y, LLVMConstInt(t, (unsigned)w, 0), "");
    if (op->code == IR_OP_SHL)
      return LLVMBuildSelect(b, big, LLVMConstNull(t), LLVMBuildShl(b, x, y, ""), "");
    LLVMValueRef sign = LLVMBuildAShr(b, x, LLVMConstInt(t, (unsigned)(w - 1), 0), "");
    return LLVMBuildSelect(b, big, sign, LLVMBuildAShr(b, x, y, ""), "");
  }
  default:
    fail(L, op->loc, "'%s' needs float operands", ir_ops[op->code].keyword);
    return NULL;
  }
}

static LLVMValueRef unary(lw *L, const ir_op *op, LLVMValueRef x, ir_kind k) {
  LLVMBuilderRef b = L->b;
  if (!isflt(k)) {
    if (op->code == IR_OP_NEG)
      return LLVMBuildNeg(b, x, "");
    if (op->code == IR_OP_ABS)
      return intr2(L, "llvm.abs", ty(L, k), x, LLVMConstInt(L->i1, 0, 0));
    fail(L, op->loc, "'%s' needs a float operand", ir_ops[op->code].keyword);
    return NULL;
  }
  bool dbl = k == IR_F64;
  LLVMTypeRef ct = dbl ? L->f64 : L->f32;
  x = up(L, x, k);
  LLVMValueRef r;
  switch (op->code) {
  case IR_OP_NEG:
    r = LLVMBuildFNeg(b, x, "");
    break;
  case IR_OP_ABS:
    r = intr1(L, "llvm.fabs", ct, x);
    break;
  case IR_OP_SQRT:
    r = intr1(L, "llvm.sqrt", ct, x);
    break;
  case IR_OP_RSQRT:
    r = intr1(L, dbl ? "llvm.nvvm.rsqrt.approx.d" : "llvm.nvvm.rsqrt.approx.f", NULL, x);
    break;
  case IR_OP_EXP:
  case IR_OP_EXP2:
  case IR_OP_LOG:
  case IR_OP_LOG2:
    if (dbl) {
      fail(L, op->loc, "'%s' of f64 is not lowered (only the f32 approximations exist)",
           ir_ops[op->code].keyword);
      return NULL;
    }
    if (op->code == IR_OP_EXP)
      x = LLVMBuildFMul(b, x, LLVMConstReal(L->f32, 1.4426950408889634), "");
    if (op->code == IR_OP_EXP || op->code == IR_OP_EXP2) {
      r = intr1(L, "llvm.nvvm.ex2.approx.f", NULL, x);
    } else {
      r = intr1(L, "llvm.nvvm.lg2.approx.f", NULL, x);
      if (op->code == IR_OP_LOG)
        r = LLVMBuildFMul(b, r, LLVMConstReal(L->f32, 0.6931471805599453), "");
    }
    break;
  default:
    fail(L, op->loc, "internal error: unary op '%s'", ir_ops[op->code].keyword);
    return NULL;
  }
  return down(L, r, k);
}

static LLVMValueRef compare(lw *L, int pred, LLVMValueRef x, LLVMValueRef y, ir_kind k) {
  if (isflt(k)) {
    static const LLVMRealPredicate fp[] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT,
                                           LLVMRealOLE, LLVMRealOGT, LLVMRealOGE};
    LLVMValueRef ux = up(L, x, k), uy = up(L, y, k);
    return LLVMBuildFCmp(L->b, fp[pred], ux, uy, "");
  }
  static const LLVMIntPredicate sp[] = {LLVMIntEQ,  LLVMIntNE,  LLVMIntSLT,
                                        LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
  static const LLVMIntPredicate up_[] = {LLVMIntEQ,  LLVMIntNE,  LLVMIntULT,
                                         LLVMIntULE, LLVMIntUGT, LLVMIntUGE};
  return LLVMBuildICmp(L->b, (k == IR_I1 || k == IR_PTR ? up_ : sp)[pred], x, y, "");
}

/* The pointee type of a pointer value (or pointer tile). */
static LLVMTypeRef pointee(lw *L, const ir_value *p) {
  return memty(L, ir_type_elem(p->ty)->elem->kind);
}

/* One element of an elementwise op; a[] are the operands' registers. */
static LLVMValueRef element(lw *L, const ir_op *op, LLVMValueRef *a) {
  ir_kind rk = ekind(op->results[0]);
  ir_kind k0 = ekind(op->operands[0]);
  switch (op->code) {
  case IR_OP_CMP:
    return compare(L, op->sub, a[0], a[1], k0);
  case IR_OP_SELECT:
    return LLVMBuildSelect(L->b, a[0], a[1], a[2], "");
  case IR_OP_CAST:
    return conv(L, L->b, a[0], k0, rk);
  case IR_OP_ADDPTR: {
    LLVMValueRef off = conv(L, L->b, a[1], ekind(op->operands[1]), IR_I64);
    return LLVMBuildGEP2(L->b, pointee(L, op->operands[0]), a[0], &off, 1, "");
  }
  default:
    break;
  }
  if (op->code >= IR_OP_NEG && op->code <= IR_OP_RSQRT)
    return unary(L, op, a[0], rk);
  return isflt(rk) ? fbinary(L, op, a[0], a[1], rk) : ibinary(L, op, a[0], a[1], rk);
}

static bool same_layout(lw *L, const ir_op *op, const ir_value *v, const ir_value *res) {
  if (!istile(v) || ly_equal(layout(L, v), layout(L, res)))
    return true;
  return fail(L, op->loc, "internal error: an operand of '%s' is not in its result's layout",
              ir_ops[op->code].keyword);
}

static bool lower_elementwise(lw *L, const ir_op *op) {
  const ir_value *res = op->results[0];
  for (int j = 0; j < op->nopnd; j++)
    if (!same_layout(L, op, op->operands[j], res))
      return false;
  tv *out = def(L, res);
  LLVMValueRef a[3];
  if (op->code == IR_OP_CAST && ekind(op->operands[0]) == IR_F32 && half(ekind(res)) &&
      out->n % 2 == 0) {
    /* f32 -> f16/bf16 two registers at a time: one cvt.rn.{b}f16x2.f32 d, hi, lo (sm_80+;
     * the intrinsic rather than an fptrunc of a built vector: fewer instructions to optimize
     * and select) */
    const char *cvt = ekind(res) == IR_BF16 ? "llvm.nvvm.ff2bf16x2.rn" : "llvm.nvvm.ff2f16x2.rn";
    for (int i = 0; i < out->n; i += 2) {
      LLVMValueRef hl[2] = {reg(L, op->operands[0], i + 1), reg(L, op->operands[0], i)};
      LLVMValueRef h = intr(L, L->b, cvt, NULL, 0, hl, 2);
      for (int j = 0; j < 2; j++)
        out->r[i + j] = LLVMBuildExtractElement(L->b, h, ci32(L, j), "");
    }
    return true;
  }
  for (int i = 0; i < out->n; i++) {
    for (int j = 0; j < op->nopnd && j < 3; j++)
      a[j] = reg(L, op->operands[j], i);
    if (!(out->r[i] = element(L, op, a)))
      return false;
  }
  return true;
}

/* ---- constants, grid, arange ------------------------------------------------------------ */

/* res = the scalar v in every register of every thread. */
static void splat(lw *L, const ir_value *res, LLVMValueRef v) {
  tv *out = def(L, res);
  for (int i = 0; i < out->n; i++)
    out->r[i] = v;
  out->splat = true;
}

static LLVMValueRef expr_as(lw *L, const ir_expr *e, ir_kind k) {
  num n = ex(L, e);
  return conv(L, L->pb, n.v, n.f ? IR_F64 : IR_I64, k);
}

static bool lower_arange(lw *L, const ir_op *op) {
  const ir_value *res = op->results[0];
  linfo *li = info_of(L, res, op->loc);
  if (!li)
    return false;
  ir_kind k = ekind(res);
  LLVMValueRef lo = expr_as(L, op->ex[0], IR_I32);
  tv *out = def(L, res);
  for (int i = 0; i < out->n; i++)
    out->r[i] = conv(L, L->b, LLVMBuildAdd(L->b, lo, coord(L, li, i, 0), ""), IR_I32, k);
  return true;
}

/* ---- global memory ---------------------------------------------------------------------- */

/* The PTX register class and width of a global access of kind k. */
static void gclass(lw *L, ir_kind k, LLVMTypeRef *it, const char **ld, const char **cl) {
  int bits = k == IR_I1 ? 8 : k == IR_PTR ? 64 : ir_kind_bits(k);
  switch (bits) {
  case 8:
    *it = L->i32, *ld = "u8", *cl = "r";
    return;
  case 16:
    *it = L->i16, *ld = "b16", *cl = "h";
    return;
  case 32:
    *it = L->i32, *ld = "b32", *cl = "r";
    return;
  default:
    *it = L->i64, *ld = "b64", *cl = "l";
    return;
  }
}

static LLVMValueRef tobits(lw *L, LLVMValueRef v, ir_kind k, LLVMTypeRef it) {
  if (k == IR_PTR)
    return LLVMBuildPtrToInt(L->b, v, it, "");
  if (isflt(k) && !isf8(k))
    return LLVMBuildBitCast(L->b, v, it, "");
  if (LLVMGetIntTypeWidth(LLVMTypeOf(v)) < LLVMGetIntTypeWidth(it))
    return LLVMBuildZExt(L->b, v, it, "");
  return v;
}

static LLVMValueRef frombits(lw *L, LLVMValueRef v, ir_kind k) {
  if (k == IR_PTR)
    return LLVMBuildIntToPtr(L->b, v, L->p1, "");
  if (isflt(k) && !isf8(k))
    return LLVMBuildBitCast(L->b, v, ty(L, k), "");
  if (k == IR_I1)
    return LLVMBuildICmp(L->b, LLVMIntNE, v, LLVMConstNull(LLVMTypeOf(v)), "");
  if (k == IR_I8 || isf8(k))
    return LLVMBuildTrunc(L->b, v, L->i8, "");
  return v;
}

/* pred ? *addr : fill, as one predicated PTX load (a masked-off lane touches no memory). */
static LLVMValueRef gload(lw *L, LLVMValueRef addr, LLVMValueRef pred, ir_kind k,
                          LLVMValueRef fill) {
  LLVMTypeRef it;
  const char *w, *cl;
  char text[64], cons[32];
  gclass(L, k, &it, &w, &cl);
  snprintf(text, sizeof text, "@$2 ld.global.%s $0, [$1];", w);
  snprintf(cons, sizeof cons, "=%s,l,b,0", cl);
  LLVMValueRef a[3] = {addr, pred, tobits(L, fill, k, it)};
  return frombits(L, inline_asm(L, it, text, cons, a, 3), k);
}

/* if (pred) *addr = v, as one predicated PTX store. */
static void gstore(lw *L, LLVMValueRef addr, LLVMValueRef pred, ir_kind k, LLVMValueRef v) {
  LLVMTypeRef it;
  const char *w, *cl;
  char text[64], cons[32];
  gclass(L, k, &it, &w, &cl);
  if (!strcmp(w, "u8")) { /* bytes come from a 16-bit register */
    it = L->i16, w = "b8", cl = "h";
  }
  snprintf(text, sizeof text, "@$2 st.global.%s [$0], $1;", w);
  snprintf(cons, sizeof cons, "l,%s,b", cl);
  LLVMValueRef bits = tobits(L, v, k, it);
  if (LLVMGetIntTypeWidth(LLVMTypeOf(bits)) > LLVMGetIntTypeWidth(it))
    bits = LLVMBuildTrunc(L->b, bits, it, "");
  LLVMValueRef a[3] = {addr, bits, pred};
  inline_asm(L, L->vd, text, cons, a, 3);
}

static LLVMValueRef int_scalar(lw *L, const ir_value *v) {
  return conv(L, L->b, get(L, v)->r[0], ekind(v), IR_I64);
}

/* Run length for vector global accesses of layout li (elements of kind k): the largest v with
 * 2 <= v, v * esize in {4, 8, 16}, such that every run of v registers starting at a multiple
 * of v holds v consecutive elements of one row, starting at a multiple of v in every thread;
 * 1 when there is none (or the layout wraps). */
static int gvec(const linfo *li, ir_kind k) {
  int r = li->rank - 1, es = esize(k);
  if (li->anywrap || k == IR_I1 || k == IR_PTR)
    return 1;
  for (int v = 16 / es; v >= 2; v /= 2) {
    if (v * es < 4 || li->a.nregs % v)
      continue;
    bool ok = true;
    for (int b = 0; b < li->a.nbits && ok; b++)
      ok = li->a.bit[b][r] % v == 0;
    for (int i = 0; i < li->a.nregs && ok; i += v) {
      ok = rpart(li, i, r) % v == 0;
      for (int j = 1; j < v && ok; j++)
        for (int d = 0; d <= r && ok; d++)
          ok = rpart(li, i + j, d) == rpart(li, i, d) + (d == r ? j : 0);
    }
    if (ok)
      return v;
  }
  return 1;
}

/* ---- block loads and stores ---------------------------------------------------------- */

/* pred ? *addr : fill, or if (pred) *addr = val, for a run of v elements of kind k as one
 * predicated vector access of 4, 8 or 16 bytes (ld/st.global[.v2|.v4].b32). A load also gives
 * the run as one <v x memty> vector in *run when run is not NULL. */
static void gvec_access(lw *L, LLVMValueRef addr, LLVMValueRef pred, ir_kind k, int v, bool store,
                        LLVMValueRef *vals, LLVMValueRef *run) {
  LLVMBuilderRef b = L->b;
  LLVMTypeRef et = memty(L, k);
  int words = v * esize(k) / 4;
  LLVMTypeRef vt = LLVMVectorType(et, (unsigned)v);
  LLVMTypeRef wt = words > 1 ? LLVMVectorType(L->i32, (unsigned)words) : L->i32;
  static const char *const vsuf[] = {"", "", ".v2", "", ".v4"};
  char text[96], cons[64], *tp = text, *cp = cons;
  LLVMValueRef args[8], vec = vec_of(L, vals, v, k); /* a load's values where pred is false */
  LLVMValueRef w = LLVMBuildBitCast(b, vec, wt, "");
  const char *open = words > 1 ? "{" : "", *close = words > 1 ? "}" : "";
  if (store) {
    tp += sprintf(tp, "@$%d st.global%s.b32 [$0], %s", words + 1, vsuf[words], open);
    cp += sprintf(cp, "l");
    args[0] = addr;
    for (int j = 0; j < words; j++) {
      tp += sprintf(tp, "%s$%d", j ? ", " : "", j + 1);
      cp += sprintf(cp, ",r");
      args[1 + j] = words > 1 ? LLVMBuildExtractElement(b, w, ci32(L, j), "") : w;
    }
    sprintf(tp, "%s;", close);
    sprintf(cp, ",b");
    args[words + 1] = pred;
    inline_asm(L, L->vd, text, cons, args, words + 2);
    return;
  }
  tp += sprintf(tp, "@$%d ld.global%s.b32 %s", words + 1, vsuf[words], open);
  LLVMTypeRef rt[4];
  for (int j = 0; j < words; j++) {
    tp += sprintf(tp, "%s$%d", j ? ", " : "", j);
    cp += sprintf(cp, "%s=r", j ? "," : "");
    rt[j] = L->i32;
  }
  sprintf(tp, "%s, [$%d];", close, words);
  cp += sprintf(cp, ",l,b");
  args[0] = addr;
  args[1] = pred;
  for (int j = 0; j < words; j++) { /* masked lanes keep the fill */
    cp += sprintf(cp, ",%d", j);
    args[2 + j] = words > 1 ? LLVMBuildExtractElement(b, w, ci32(L, j), "") : w;
  }
  LLVMTypeRef ret = words > 1 ? LLVMStructTypeInContext(L->c, rt, (unsigned)words, 0) : L->i32;
  LLVMValueRef r = inline_asm(L, ret, text, cons, args, words + 2);
  LLVMValueRef got = r;
  if (words > 1) {
    got = LLVMGetUndef(wt);
    for (int j = 0; j < words; j++)
      got = LLVMBuildInsertElement(b, got, LLVMBuildExtractValue(b, r, (unsigned)j, ""), ci32(L, j),
                                   "");
  }
  got = LLVMBuildBitCast(b, got, vt, "");
  if (run)
    *run = got;
  for (int j = 0; j < v; j++)
    vals[j] = frommem(L, LLVMBuildExtractElement(b, got, ci32(L, j), ""), k);
}

/* The addressing of one block access. Coordinates are thread part + register part, so the
 * position idx + coord of each tile dim and its bounds test are built once per distinct
 * register part, and each row (the register parts of all dims but the last) gets one pointer
 * and one predicate; a register adds its column to its row. In the vector path the row pointer
 * includes the last dim's thread part (unit stride) and a column is a constant offset. */
typedef struct brow {
  int64_t key[IR_MAX_RANK];
  LLVMValueRef ptr, pred; /* pred NULL: always in bounds */
} brow;

typedef struct bacc {
  const argp *A;
  linfo *li;
  int R, r; /* tensor rank, tile rank */
  const LLVMValueRef *idx, *ext;
  LLVMValueRef ok, off; /* the leading (selecting) dims: predicate (or NULL) and offset */
  LLVMTypeRef et;
  bool vec;
  LLVMValueRef *pos[IR_MAX_RANK], *in[IR_MAX_RANK]; /* by register part; NULL until built */
  brow *rows;
  int nrows;
} bacc;

static void bacc_init(lw *L, bacc *G, const argp *A, linfo *li, int R, const LLVMValueRef *idx,
                      const LLVMValueRef *ext, LLVMValueRef ok, LLVMValueRef off, ir_kind k,
                      bool vec) {
  memset(G, 0, sizeof *G);
  G->A = A, G->li = li, G->R = R, G->r = li->rank, G->idx = idx, G->ext = ext;
  G->ok = ok, G->off = off, G->et = memty(L, k), G->vec = vec;
  for (int j = 0; j < li->rank; j++) {
    int64_t span = 1;
    for (int i = 0; i < li->a.nregs; i++)
      span = rpart(li, i, j) + 1 > span ? rpart(li, i, j) + 1 : span;
    G->pos[j] = alloc(L, sizeof(LLVMValueRef) * (size_t)span);
    G->in[j] = alloc(L, sizeof(LLVMValueRef) * (size_t)span);
  }
  G->rows = alloc(L, sizeof(brow) * (size_t)li->a.nregs);
}

/* Position (i64) and bounds test of tile dim j at register part c. */
static void bpos(lw *L, bacc *G, int j, int64_t c) {
  if (G->pos[j][c])
    return;
  LLVMBuilderRef b = L->b;
  int td = G->R - G->r + j;
  LLVMValueRef v = tpart(L, G->li, j);
  if (c)
    v = LLVMBuildAdd(b, v, ci32(L, c), "");
  if (G->li->wrap[j])
    v = LLVMBuildURem(b, v, ci32(L, G->li->shape[j]), "");
  G->pos[j][c] = LLVMBuildAdd(b, G->idx[td], LLVMBuildZExt(b, v, L->i64, ""), "");
  G->in[j][c] = LLVMBuildICmp(b, LLVMIntULT, G->pos[j][c], G->ext[td], "");
}

static LLVMValueRef band(lw *L, LLVMValueRef a, LLVMValueRef c) {
  return a && c ? LLVMBuildAnd(L->b, a, c, "") : a ? a : c;
}

/* The row of register i: its pointer and predicate, built on first use. */
static const brow *brow_of(lw *L, bacc *G, int i) {
  int last = G->r - 1;
  int64_t key[IR_MAX_RANK] = {0};
  for (int j = 0; j < last; j++)
    key[j] = rpart(G->li, i, j);
  for (int n = 0; n < G->nrows; n++)
    if (!memcmp(G->rows[n].key, key, sizeof key))
      return &G->rows[n];
  brow *w = &G->rows[G->nrows++];
  memcpy(w->key, key, sizeof key);
  LLVMValueRef o = G->off, p = G->ok;
  for (int j = 0; j < last; j++) {
    bpos(L, G, j, key[j]);
    int td = G->R - G->r + j;
    o = LLVMBuildAdd(L->b, o, LLVMBuildMul(L->b, G->pos[j][key[j]], G->A->stride[td], ""), "");
    p = band(L, p, G->in[j][key[j]]);
  }
  if (G->vec) {
    bpos(L, G, last, 0);
    o = LLVMBuildAdd(L->b, o, G->pos[last][0], "");
  }
  w->ptr = LLVMBuildGEP2(L->b, G->et, G->A->ptr, &o, 1, "");
  w->pred = p;
  return w;
}

/* The vector path: runs of v registers, each one predicated vector access (a run is wholly
 * inside or outside the tensor: the runtime test guarantees v-aligned positions and a last
 * extent that is a multiple of v). A load also gives run i / v as vector runs[i / v]. */
static void vec_access(lw *L, bacc *G, bool store, tv *t, int v, ir_kind k, LLVMValueRef *runs) {
  int last = G->r - 1;
  for (int i = 0; i < t->n; i += v) {
    const brow *w = brow_of(L, G, i);
    int64_t c = rpart(G->li, i, last);
    bpos(L, G, last, c);
    LLVMValueRef co = ci64(L, c);
    LLVMValueRef ptr = c ? LLVMBuildGEP2(L->b, G->et, w->ptr, &co, 1, "") : w->ptr;
    gvec_access(L, ptr, band(L, w->pred, G->in[last][c]), k, v, store, t->r + i,
                runs ? &runs[i / v] : NULL);
  }
}

/* The element path: one predicated access per register. A register in the same row as the
 * previous one (a larger last coordinate by d) addresses previous + d * stride, so no
 * per-register offset is loop-invariant (LICM would keep one 64-bit offset per column live
 * across a loop); registers a wrapping layout repeats are loaded once; in a replicated layout
 * only the owner copy stores. */
static void elem_access(lw *L, bacc *G, bool store, tv *t, ir_kind k, LLVMValueRef fill) {
  linfo *li = G->li;
  int last = G->r - 1;
  const int *dup = dups(L, li);
  LLVMValueRef prev = NULL;
  const brow *prow = NULL;
  for (int i = 0; i < t->n; i++) {
    if (!store && dup && dup[i] >= 0) {
      t->r[i] = t->r[dup[i]];
      continue;
    }
    const brow *w = brow_of(L, G, i);
    int64_t c = rpart(li, i, last), d = i ? c - rpart(li, i - 1, last) : 0;
    bpos(L, G, last, c);
    LLVMValueRef ptr, p = band(L, w->pred, G->in[last][c]);
    if (w == prow && prev && !li->anywrap && d > 0) {
      LLVMValueRef step = G->A->stride[G->R - 1];
      if (d != 1)
        step = LLVMBuildMul(L->b, step, ci64(L, d), "");
      ptr = LLVMBuildGEP2(L->b, G->et, prev, &step, 1, "");
    } else {
      LLVMValueRef o = LLVMBuildMul(L->b, G->pos[last][c], G->A->stride[G->R - 1], "");
      ptr = LLVMBuildGEP2(L->b, G->et, w->ptr, &o, 1, "");
    }
    prev = ptr, prow = w;
    if (store) {
      gstore(L, ptr, band(L, p, owner(L, li, i)), k, t->r[i]);
    } else {
      t->r[i] = gload(L, ptr, p, k, fill);
    }
  }
}

/* Marks the loop whose latch branch is br as not to be unrolled (llvm.loop.unroll.disable):
 * a rarely taken path kept small. */
static void no_unroll(lw *L, LLVMValueRef br) {
  static const char dis[] = "llvm.loop.unroll.disable";
  LLVMMetadataRef name = LLVMMDStringInContext2(L->c, dis, sizeof dis - 1);
  LLVMMetadataRef opt = LLVMMDNodeInContext2(L->c, &name, 1);
  LLVMMetadataRef self = LLVMTemporaryMDNode(L->c, NULL, 0);
  LLVMMetadataRef ops[2] = {self, opt};
  LLVMMetadataRef id = LLVMMDNodeInContext2(L->c, ops, 2);
  LLVMMetadataReplaceAllUsesWith(self, id); /* the loop ID refers to itself; frees self */
  LLVMSetMetadata(br, LLVMGetMDKindIDInContext(L->c, "llvm.loop", 9),
                  LLVMMetadataAsValue(L->c, id));
}

/* A counted loop i = 0, 1, ... (not unrolled), for rarely taken code kept small: loop_begin
 * opens it at the builder (entered only if `enter`, when not NULL) and returns i (i32);
 * loop_end closes it after iteration i when i + 1 reaches n and leaves the builder after it. */
typedef struct cloop {
  LLVMBasicBlockRef pre, body, done;
  LLVMValueRef i;
} cloop;

static LLVMValueRef loop_begin(lw *L, cloop *c, const char *name, LLVMValueRef enter) {
  LLVMBuilderRef b = L->b;
  char done[64];
  snprintf(done, sizeof done, "%s.done", name);
  c->pre = LLVMGetInsertBlock(b);
  c->body = LLVMAppendBasicBlockInContext(L->c, L->fn, name);
  c->done = LLVMAppendBasicBlockInContext(L->c, L->fn, done);
  if (enter)
    LLVMBuildCondBr(b, enter, c->body, c->done);
  else
    LLVMBuildBr(b, c->body);
  LLVMPositionBuilderAtEnd(b, c->body);
  return c->i = LLVMBuildPhi(b, L->i32, "i");
}

static void loop_end(lw *L, cloop *c, LLVMValueRef n) {
  LLVMBuilderRef b = L->b;
  LLVMValueRef i1 = LLVMBuildAdd(b, c->i, ci32(L, 1), "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(b);
  no_unroll(L, LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, i1, n, ""), c->body, c->done));
  LLVMValueRef zero = ci32(L, 0);
  LLVMAddIncoming(c->i, &zero, &c->pre, 1);
  LLVMAddIncoming(c->i, &i1, &latch, 1);
  LLVMPositionBuilderAtEnd(b, c->done);
}

/* Whether register parts are linear in the bits of the register index (rpart of register i =
 * the sum of rpart of 1 << b over the set bits b of i), as in blocked and MMA layouts. */
static bool rlinear(const linfo *li) {
  int n = li->a.nregs;
  if (n < 2 || (n & (n - 1)))
    return false;
  for (int i = 0; i < n; i++)
    for (int d = 0; d < li->rank; d++) {
      int64_t v = 0;
      for (int b = 0; 1 << b < n; b++)
        v += (i >> b & 1) ? rpart(li, 1 << b, d) : 0;
      if (v != rpart(li, i, d))
        return false;
    }
  return true;
}

/* The element path as a loop over the registers, for the fallback of the vector path (a tensor
 * not aligned for it: rare, so code size matters more than speed): the registers go through a
 * local array, and iteration i computes register i's coordinates from the bits of i (rlinear)
 * and makes one predicated access. Unrolled, this path was a quarter of matmul's code. */
static void elem_loop(lw *L, bacc *G, bool store, tv *t, ir_kind k, LLVMValueRef fill) {
  linfo *li = G->li;
  LLVMBuilderRef b = L->b;
  LLVMTypeRef et = memty(L, k);
  int n = t->n;
  LLVMValueRef buf = LLVMBuildAlloca(L->pb, LLVMArrayType(et, (unsigned)n), "regs");
  LLVMSetAlignment(buf, 16);
  int vw = 16 / esize(k) < n ? 16 / esize(k) : n; /* 16-byte stores into the array */
  for (int i = 0; store && i < n; i += vw) {
    LLVMValueRef ci = ci32(L, i), v = vec_of(L, t->r + i, vw, k);
    LLVMSetAlignment(LLVMBuildStore(b, v, LLVMBuildGEP2(b, et, buf, &ci, 1, "")),
                     (unsigned)(vw * esize(k)));
  }
  cloop cl;
  LLVMValueRef i = loop_begin(L, &cl, "elem.loop", NULL);
  LLVMValueRef o = G->off, p = G->ok;
  for (int j = 0; j < G->r; j++) {
    LLVMValueRef c = tpart(L, li, j);
    for (int bit = 0; 1 << bit < n; bit++) {
      int64_t w = rpart(li, 1 << bit, j);
      if (!w)
        continue;
      LLVMValueRef on = LLVMBuildAnd(b, LLVMBuildLShr(b, i, ci32(L, bit), ""), ci32(L, 1), "");
      c = LLVMBuildAdd(b, c, LLVMBuildMul(b, on, ci32(L, w), ""), "");
    }
    int td = G->R - G->r + j;
    LLVMValueRef pos = LLVMBuildAdd(b, G->idx[td], LLVMBuildZExt(b, c, L->i64, ""), "");
    p = band(L, p, LLVMBuildICmp(b, LLVMIntULT, pos, G->ext[td], ""));
    o = LLVMBuildAdd(b, o, LLVMBuildMul(b, pos, G->A->stride[td], ""), "");
  }
  LLVMValueRef ptr = LLVMBuildGEP2(b, et, G->A->ptr, &o, 1, "");
  LLVMValueRef slot = LLVMBuildGEP2(b, et, buf, &i, 1, "");
  if (store) {
    LLVMValueRef v = frommem(L, LLVMBuildLoad2(b, et, slot, ""), k);
    gstore(L, ptr, band(L, p, owner(L, li, 0)), k, v);
  } else {
    LLVMBuildStore(b, tomem(L, gload(L, ptr, p, k, fill), k), slot);
  }
  loop_end(L, &cl, ci32(L, n));
  for (int r = 0; !store && r < n; r++) {
    LLVMValueRef cr = ci32(L, r);
    t->r[r] = frommem(L, LLVMBuildLoad2(b, et, LLVMBuildGEP2(b, et, buf, &cr, 1, ""), ""), k);
  }
}

/* Whether the vector path applies at run time (uniform over the CTA): unit last stride; base,
 * other strides, the last index and the last extent v-aligned. Edges are masked per run. */
static LLVMValueRef vec_cond(lw *L, const argp *A, int R, int v, ir_kind k, const LLVMValueRef *idx,
                             const LLVMValueRef *ext) {
  LLVMBuilderRef b = L->b;
  LLVMValueRef vm = ci64(L, v - 1);
  if (L->aligned) /* base, strides and extent keep the promise: only the index is left */
    return LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildAnd(b, idx[R - 1], vm, ""), ci64(L, 0), "");
  LLVMValueRef pi = LLVMBuildPtrToInt(b, A->ptr, L->i64, "");
  LLVMValueRef m = LLVMBuildAnd(b, pi, ci64(L, v * esize(k) - 1), "");
  LLVMValueRef c = LLVMBuildICmp(b, LLVMIntEQ, A->stride[R - 1], ci64(L, 1), "");
  m = LLVMBuildOr(b, m, LLVMBuildAnd(b, idx[R - 1], vm, ""), "");
  m = LLVMBuildOr(b, m, LLVMBuildAnd(b, ext[R - 1], vm, ""), "");
  for (int d = 0; d < R - 1; d++)
    m = LLVMBuildOr(b, m, LLVMBuildAnd(b, A->stride[d], vm, ""), "");
  return LLVMBuildAnd(b, c, LLVMBuildICmp(b, LLVMIntEQ, m, ci64(L, 0), ""), "");
}

/* Block load/store on a tensor argument: register i addresses base + sum over the tensor's
 * last dims of (index_d + coord_d) * stride_d and is in bounds when 0 <= index + coord < shape
 * for every dim (leading indices select and are checked the same way). When the layout holds
 * runs of v consecutive elements along the last dim (and replicates nothing), a uniform branch
 * takes the vector path wherever the tensor is aligned for it (vec_cond), the element path
 * otherwise. */
static bool lower_block_access(lw *L, const ir_op *op, bool store) {
  const ir_value *tens = op->operands[0];
  const ir_value *tile = store ? op->operands[op->nopnd - 1] : op->results[0];
  int a = tens->argno, R = tens->ty->rank, r;
  int64_t sh[IR_MAX_RANK];
  shape_of(tile, &r, sh);
  if (a < 0 || a >= L->k->nargs || L->k->args[a].kind != ARG_TENSOR || tens->def ||
      op->nopnd != 1 + R + store || r > R)
    return fail(L, op->loc, "internal error: malformed block %s", store ? "store" : "load");
  const argp *A = &L->args[a];
  ir_kind k = ekind(tile);
  LLVMBuilderRef b = L->b;
  LLVMValueRef *idx = alloc(L, sizeof(LLVMValueRef) * IR_MAX_RANK);
  LLVMValueRef *ext = alloc(L, sizeof(LLVMValueRef) * IR_MAX_RANK), ok = NULL, off = ci64(L, 0);
  for (int d = 0; d < R; d++) {
    idx[d] = int_scalar(L, op->operands[1 + d]);
    ext[d] = LLVMBuildZExt(b, A->shape[d], L->i64, "");
  }
  for (int d = 0; d < R - r; d++) {
    ok = band(L, ok, LLVMBuildICmp(b, LLVMIntULT, idx[d], ext[d], ""));
    off = LLVMBuildAdd(b, off, LLVMBuildMul(b, idx[d], A->stride[d], ""), "");
  }
  LLVMValueRef fill = LLVMConstNull(ty(L, k));
  if (!store && op->ex[1])
    fill = expr_as(L, op->ex[1], k);
  if (r == 0) {
    LLVMValueRef ptr = LLVMBuildGEP2(b, memty(L, k), A->ptr, &off, 1, "");
    if (store)
      gstore(L, ptr, band(L, ok, thread0(L)), k, get(L, tile)->r[0]);
    else
      def(L, tile)->r[0] = gload(L, ptr, ok, k, fill);
    return true;
  }
  linfo *li = info_of(L, tile, op->loc);
  if (!li)
    return false;
  tv *t = store ? get(L, tile) : def(L, tile);
  int v = gvec(li, k);
  if (v > 1 && store && owner(L, li, 0))
    v = 1; /* replicated: only owners store, element by element */
  bacc G;
  if (v == 1) {
    bacc_init(L, &G, A, li, R, idx, ext, ok, off, k, false);
    elem_access(L, &G, store, t, k, fill);
    return true;
  }
  if (L->aligned && known_tz(idx[R - 1], 0) >= __builtin_ctz((unsigned)v)) {
    bacc_init(L, &G, A, li, R, idx, ext, ok, off, k, true); /* always the vector path */
    if (!store)
      for (int i = 0; i < t->n; i++)
        t->r[i] = fill;
    vec_access(L, &G, store, t, v, k, NULL);
    return true;
  }
  LLVMValueRef *vout = alloc(L, sizeof(LLVMValueRef) * (size_t)t->n);
  LLVMValueRef *runs = store ? NULL : alloc(L, sizeof(LLVMValueRef) * (size_t)(t->n / v));
  if (!store)
    for (int i = 0; i < t->n; i++)
      vout[i] = fill;
  LLVMBasicBlockRef vbb = LLVMAppendBasicBlockInContext(L->c, L->fn, "vec");
  LLVMBasicBlockRef sbb = LLVMAppendBasicBlockInContext(L->c, L->fn, "elem");
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(L->c, L->fn, "vec.join");
  LLVMBuildCondBr(b, vec_cond(L, A, R, v, k, idx, ext), vbb, sbb);
  LLVMPositionBuilderAtEnd(b, vbb);
  bacc_init(L, &G, A, li, R, idx, ext, ok, off, k, true);
  tv vt = *t;
  vt.r = store ? t->r : vout;
  vec_access(L, &G, store, &vt, v, k, runs);
  vbb = LLVMGetInsertBlock(b);
  LLVMBuildBr(b, join);
  LLVMPositionBuilderAtEnd(b, sbb);
  bacc_init(L, &G, A, li, R, idx, ext, ok, off, k, false);
  if (t->n >= 64 && !li->anywrap && rlinear(li))
    elem_loop(L, &G, store, t, k, fill);
  else
    elem_access(L, &G, store, t, k, fill);
  /* A loaded run joins as one vector phi (what the SLP vectorizer made of per-element phis:
   * the run stays in its 32-bit registers through the join). */
  LLVMTypeRef rt = LLVMVectorType(memty(L, k), (unsigned)v);
  LLVMValueRef *eruns = store ? NULL : alloc(L, sizeof(LLVMValueRef) * (size_t)(t->n / v));
  for (int i = 0; i < t->n && !store; i += v)
    eruns[i / v] = vec_of(L, t->r + i, v, k);
  sbb = LLVMGetInsertBlock(b);
  LLVMBuildBr(b, join);
  LLVMPositionBuilderAtEnd(b, join);
  for (int i = 0; i < t->n && !store; i += v) {
    LLVMValueRef in[2] = {runs[i / v], eruns[i / v]};
    LLVMBasicBlockRef from[2] = {vbb, sbb};
    runs[i / v] = LLVMBuildPhi(b, rt, "");
    LLVMAddIncoming(runs[i / v], in, from, 2);
  }
  for (int i = 0; i < t->n && !store; i++)
    t->r[i] = frommem(L, LLVMBuildExtractElement(b, runs[i / v], ci32(L, i % v), ""), k);
  return true;
}

/* load_ptr %p [, %mask [, %other]]: unmasked accesses are plain loads, masked ones predicated. */
static bool lower_load_ptr(lw *L, const ir_op *op) {
  const ir_value *p = op->operands[0], *res = op->results[0];
  const ir_value *mask = op->nopnd > 1 ? op->operands[1] : NULL;
  const ir_value *other = op->nopnd > 2 ? op->operands[2] : NULL;
  for (int j = 0; j < op->nopnd; j++)
    if (!same_layout(L, op, op->operands[j], res))
      return false;
  ir_kind k = ekind(res);
  tv *out = def(L, res);
  for (int i = 0; i < out->n; i++) {
    LLVMValueRef addr = reg(L, p, i);
    if (!mask) {
      LLVMValueRef ld = LLVMBuildLoad2(L->b, memty(L, k), addr, "");
      LLVMSetAlignment(ld, (unsigned)esize(k));
      out->r[i] = frommem(L, ld, k);
    } else {
      LLVMValueRef fill = other ? reg(L, other, i) : LLVMConstNull(ty(L, k));
      out->r[i] = gload(L, addr, reg(L, mask, i), k, fill);
    }
  }
  return true;
}

static bool lower_store_ptr(lw *L, const ir_op *op) {
  const ir_value *p = op->operands[0], *v = op->operands[1];
  const ir_value *mask = op->nopnd > 2 ? op->operands[2] : NULL;
  const ir_value *shape = p;
  if (!istile(p) && (istile(v) || (mask && istile(mask))))
    return fail(L, op->loc, "store_ptr of a tile through a scalar pointer is not lowered");
  for (int j = 0; j < op->nopnd; j++)
    if (!same_layout(L, op, op->operands[j], shape))
      return false;
  ir_kind k = ekind(v);
  int n = nregs(L, shape);
  linfo *li = istile(shape) ? info_of(L, shape, op->loc) : NULL;
  if (istile(shape) && !li)
    return false;
  for (int i = 0; i < n; i++) {
    LLVMValueRef addr = reg(L, p, i), val = reg(L, v, i);
    LLVMValueRef own = li ? owner(L, li, i) : thread0(L), m = mask ? reg(L, mask, i) : NULL;
    if (own && m)
      m = LLVMBuildAnd(L->b, m, own, "");
    else if (own)
      m = own;
    if (!m) {
      LLVMValueRef st = LLVMBuildStore(L->b, tomem(L, val, k), addr);
      LLVMSetAlignment(st, (unsigned)esize(k));
    } else {
      gstore(L, addr, m, k, val);
    }
  }
  return true;
}

/* ---- register moves and shared-memory conversions ---------------------------------------- */

/* Moves a tile between layouts through shared memory: every thread stores its registers at the
 * row-major index of their coordinates, bar.sync, every thread loads its output registers from
 * the index sum_d coord_d * ld[d], bar.sync. */
static void smem_move(lw *L, const ir_value *src, linfo *lin, linfo *lout, tv *out,
                      const int64_t *ld) {
  ir_kind k = ekind(src);
  int64_t st[IR_MAX_RANK];
  rowmajor(lin->rank, lin->shape, st);
  need_smem(L, numel(lin->rank, lin->shape) * esize(k == IR_I1 ? IR_I8 : k));
  splan ps, pl;
  plan(L, &ps, lin, st);
  sstore(L, &ps, get(L, src)->r, skips(L, lin), k, 0, 0, lin->a.nregs);
  barrier(L);
  plan(L, &pl, lout, ld);
  sload(L, &pl, out->r, k, 0, 0, lout->a.nregs);
  barrier(L);
}

/* Whether a convert_layout result may be left to the dot that is its only user. */
static bool deferrable(lw *L, const ir_op *op) {
  const ir_value *res = op->results[0];
  const ir_op *u = L->user[res->id];
  return layout(L, res)->kind == LY_DOTOP && L->uses[res->id] == 1 && u && u->code == IR_OP_DOT &&
         u->parent == op->parent && (u->operands[0] == res || u->operands[1] == res);
}

static bool sm_move(lw *L, const ir_op *op, const tv *in);
static bool dotop_move(lw *L, const ir_op *op, linfo *lin, linfo *lout, tv *out);

/* broadcast, expand_dims, trans, reshape, convert_layout: a register renaming when the layouts
 * allow one (checked over every thread), else a move through shared memory. */
static bool lower_move(lw *L, const ir_op *op) {
  const ir_value *x = op->operands[0], *res = op->results[0];
  if (!istile(x)) {
    splat(L, res, get(L, x)->r[0]);
    return true;
  }
  if (!istile(res))
    return fail(L, op->loc, "internal error: '%s' to a scalar", ir_ops[op->code].keyword);
  linfo *lin = info_of(L, x, op->loc), *lout = info_of(L, res, op->loc);
  if (!lin || !lout)
    return false;
  tv *in = get(L, x);
  if (in->splat) { /* a splat (zeros, full) is the same in every layout */
    splat(L, res, in->r[0]);
    return true;
  }
  if (in->sm) /* a stage of a pipelined loop: only trans and the dot's conversion reach here */
    return sm_move(L, op, in);
  mapk mk = MAP_SAME;
  int axis = 0;
  switch (op->code) {
  case IR_OP_BROADCAST:
    mk = MAP_BCAST;
    break;
  case IR_OP_EXPAND_DIMS:
    mk = MAP_EXPAND;
    axis = (int)op->attr[0];
    break;
  case IR_OP_TRANS:
    mk = MAP_TRANS;
    break;
  case IR_OP_RESHAPE:
    mk = MAP_RESHAPE;
    break;
  default:
    break;
  }
  tv *out = def(L, res);
  int *src = alloc(L, sizeof(int) * (size_t)out->n);
  if (findregs(L, lin, lout, mk, axis, src)) {
    for (int i = 0; i < out->n; i++)
      out->r[i] = in->r[src[i]];
    return true;
  }
  if (op->code == IR_OP_CONVERT && deferrable(L, op)) {
    out->defer = x;
    return true;
  }
  if (op->code == IR_OP_CONVERT && lout->l->kind == LY_DOTOP &&
      (half(ekind(x)) || isf8(ekind(x))) && lin->rank == 2 && out->n % kwidth(ekind(x)) == 0)
    return dotop_move(L, op, lin, lout, out);
  /* load strides: the row-major index of the source element each output element reads */
  int64_t sst[IR_MAX_RANK], ld[IR_MAX_RANK];
  rowmajor(lin->rank, lin->shape, sst);
  switch (mk) {
  case MAP_SAME:
    memcpy(ld, sst, sizeof ld);
    break;
  case MAP_RESHAPE:
    rowmajor(lout->rank, lout->shape, ld);
    break;
  case MAP_BCAST:
    for (int d = 0; d < lout->rank; d++) {
      int sd = d - (lout->rank - lin->rank);
      ld[d] = sd < 0 || lin->shape[sd] == 1 ? 0 : sst[sd];
    }
    break;
  case MAP_EXPAND:
    for (int d = 0; d < lout->rank; d++)
      ld[d] = d == axis ? 0 : sst[d < axis ? d : d - 1];
    break;
  case MAP_TRANS:
    ld[0] = sst[1];
    ld[1] = sst[0];
    break;
  case MAP_DROP:
    break;
  }
  smem_move(L, x, lin, lout, out, ld);
  return true;
}

/* ---- reductions ------------------------------------------------------------------------- */

static LLVMValueRef combine(lw *L, int kind, LLVMValueRef a, LLVMValueRef b, ir_kind k) {
  LLVMTypeRef t = ty(L, k);
  if (isflt(k)) {
    if (kind == IR_RED_SUM)
      return LLVMBuildFAdd(L->b, a, b, "");
    return intr2(L, kind == IR_RED_MAX ? "llvm.maximum" : "llvm.minimum", t, a, b);
  }
  if (kind == IR_RED_SUM)
    return LLVMBuildAdd(L->b, a, b, "");
  if (k == IR_I1)
    return intr2(L, kind == IR_RED_MAX ? "llvm.umax" : "llvm.umin", t, a, b);
  return intr2(L, kind == IR_RED_MAX ? "llvm.smax" : "llvm.smin", t, a, b);
}

static LLVMValueRef shfl32(lw *L, LLVMValueRef v, int m) {
  bool f = LLVMTypeOf(v) == L->f32;
  LLVMValueRef a[4] = {ci32(L, -1), v, ci32(L, m), ci32(L, 31)};
  return intr(L, L->b, f ? "llvm.nvvm.shfl.sync.bfly.f32" : "llvm.nvvm.shfl.sync.bfly.i32", NULL, 0,
              a, 4);
}

/* The value of lane (lane ^ m) of this warp. */
static LLVMValueRef shfl(lw *L, LLVMValueRef v, int m, ir_kind k) {
  LLVMBuilderRef b = L->b;
  switch (k) {
  case IR_F32:
  case IR_I32:
    return shfl32(L, v, m);
  case IR_I1:
  case IR_I8:
  case IR_I16:
    return LLVMBuildTrunc(b, shfl32(L, LLVMBuildZExt(b, v, L->i32, ""), m), ty(L, k), "");
  default: { /* 64-bit: two halves */
    LLVMValueRef x = k == IR_F64 ? LLVMBuildBitCast(b, v, L->i64, "") : v;
    LLVMValueRef lo = shfl32(L, LLVMBuildTrunc(b, x, L->i32, ""), m);
    LLVMValueRef hi =
        shfl32(L, LLVMBuildTrunc(b, LLVMBuildLShr(b, x, ci64(L, 32), ""), L->i32, ""), m);
    LLVMValueRef lo64 = LLVMBuildZExt(b, lo, L->i64, "");
    LLVMValueRef r = LLVMBuildOr(
        b, lo64, LLVMBuildShl(b, LLVMBuildZExt(b, hi, L->i64, ""), ci64(L, 32), ""), "");
    return k == IR_F64 ? LLVMBuildBitCast(b, r, L->f64, "") : r;
  }
  }
}

/* The reduction through shared memory, for layouts the register algorithm cannot take: the whole
 * tile is stored, and every output register combines its line in index order. */
static bool reduce_smem(lw *L, const ir_op *op, linfo *lin, linfo *lout, tv *out, ir_kind ck) {
  const ir_value *x = op->operands[0];
  int axis = (int)op->attr[0];
  ir_kind k = ekind(x);
  int64_t len = lin->shape[axis], st[IR_MAX_RANK];
  int64_t lines = lout ? lout->a.nregs : 1;
  if (lines * len > MAX_UNROLLED_LOADS)
    return fail(L, op->loc,
                "reduce: this layout needs the shared-memory fallback, and %lld loads per thread "
                "are too many",
                (long long)(lines * len));
  rowmajor(lin->rank, lin->shape, st);
  need_smem(L, numel(lin->rank, lin->shape) * esize(k == IR_I1 ? IR_I8 : k));
  splan ps;
  plan(L, &ps, lin, st);
  sstore(L, &ps, get(L, x)->r, skips(L, lin), k, 0, 0, lin->a.nregs);
  barrier(L);
  LLVMTypeRef et = memty(L, k);
  for (int j = 0; j < out->n; j++) {
    LLVMValueRef base = ci32(L, 0), acc = NULL;
    for (int d = 0, od = 0; d < lin->rank; d++) {
      if (d == axis)
        continue;
      LLVMValueRef c = coord(L, lout, j, od++);
      base = LLVMBuildAdd(L->b, base, LLVMBuildMul(L->b, c, ci32(L, st[d]), ""), "");
    }
    for (int64_t i = 0; i < len; i++) {
      LLVMValueRef idx = LLVMBuildAdd(L->b, base, ci32(L, i * st[axis]), "");
      LLVMValueRef v = frommem(L, LLVMBuildLoad2(L->b, et, sptr(L, et, 0, idx), ""), k);
      v = conv(L, L->b, v, k, ck);
      acc = acc ? combine(L, op->sub, acc, v, ck) : v;
    }
    out->r[j] = conv(L, L->b, acc, ck, k);
  }
  barrier(L);
  return true;
}

/* reduce (docs/codegen.md): (1) registers of equal output coordinate, in register order; (2) a
 * butterfly shuffle for every lane bit that moves only along the axis; (3) the warp bits that
 * move along the axis combine through shared memory, in warp order. A layout that replicates
 * along the axis in a way these steps would count twice takes the shared-memory fallback. */
static bool lower_reduce(lw *L, const ir_op *op) {
  const ir_value *x = op->operands[0], *res = op->results[0];
  int axis = (int)op->attr[0];
  ir_kind k = ekind(x), ck = half(k) ? IR_F32 : k;
  if (!istile(x)) {
    splat(L, res, get(L, x)->r[0]);
    return true;
  }
  linfo *lin = info_of(L, x, op->loc), *lout = istile(res) ? info_of(L, res, op->loc) : NULL;
  if (!lin || (istile(res) && !lout))
    return false;
  tv *in = get(L, x), *out = def(L, res);
  int nin = lin->a.nregs, nout = out->n;
  int *map = alloc(L, sizeof(int) * (size_t)nin);
  bool ok = true;
  if (lout)
    ok = findregs(L, lout, lin, MAP_DROP, axis, map);
  const int *dup = dups(L, lin);
  /* bits of the thread id: 0 replicates, 1 moves along the axis only, 2 changes the output */
  int kind[16], ncomb = 0;
  int64_t comb[16];
  for (int b = 0; b < lin->a.nbits; b++) {
    bool other = false, along;
    along = lin->a.bit[b][axis] % lin->shape[axis] != 0;
    for (int d = 0; d < lin->rank; d++)
      if (d != axis)
        other |= lin->a.bit[b][d] % lin->shape[d] != 0;
    kind[b] = other ? 2 : along ? 1 : 0;
    if (kind[b] == 1)
      comb[ncomb++] = lin->a.bit[b][axis];
  }
  /* every output register must combine each element of its line exactly once */
  int64_t len = lin->shape[axis];
  unsigned char *seen = malloc((size_t)len);
  if (!seen)
    abort(); /* ok: host out of memory aborts, as in the IR arena (docs/ir.md, Limits) */
  for (int j = 0; j < nout && ok; j++) {
    memset(seen, 0, (size_t)len);
    int64_t count = 0;
    for (int r = 0; r < nin && ok; r++) {
      if ((lout && map[r] != j) || (dup && dup[r] >= 0))
        continue;
      for (int s = 0; s < (1 << ncomb) && ok; s++) {
        int64_t v = rpart(lin, r, axis);
        for (int c = 0; c < ncomb; c++)
          if (s >> c & 1)
            v += comb[c];
        v %= len;
        ok = !seen[v];
        seen[v] = 1;
        count++;
      }
    }
    ok = ok && count == len;
  }
  free(seen);
  if (!ok)
    return reduce_smem(L, op, lin, lout, out, ck);

  LLVMValueRef *acc = alloc(L, sizeof(LLVMValueRef) * (size_t)nout);
  for (int r = 0; r < nin; r++) {
    if (dup && dup[r] >= 0)
      continue;
    int j = lout ? map[r] : 0;
    LLVMValueRef v = conv(L, L->b, in->r[r], k, ck);
    acc[j] = acc[j] ? combine(L, op->sub, acc[j], v, ck) : v;
  }
  for (int b = 4; b >= 0; b--) /* lane masks 16, 8, 4, 2, 1 */
    if (b < lin->a.nbits && kind[b] == 1)
      for (int j = 0; j < nout; j++)
        acc[j] = combine(L, op->sub, acc[j], shfl(L, acc[j], 1 << b, ck), ck);
  int64_t w[16] = {0}, nparts = 1;
  int64_t nel = lout ? numel(lout->rank, lout->shape) : 1;
  for (int b = 5; b < lin->a.nbits; b++)
    if (kind[b] == 1) {
      w[b] = nparts * nel;
      nparts *= 2;
    }
  if (nparts > 1) { /* partials of the warps along the axis: [part][output element] */
    need_smem(L, nparts * nel * esize(ck == IR_I1 ? IR_I8 : ck));
    LLVMValueRef part = bitsum(L, L->b, w);
    LLVMValueRef *lin_out = alloc(L, sizeof(LLVMValueRef) * (size_t)nout);
    splan po;
    int64_t st[IR_MAX_RANK];
    if (lout) {
      rowmajor(lout->rank, lout->shape, st);
      plan(L, &po, lout, st);
    }
    LLVMTypeRef et = memty(L, ck);
    for (int j = 0; j < nout; j++) {
      lin_out[j] = lout ? pidx(L, &po, j) : ci32(L, 0);
      LLVMValueRef idx = LLVMBuildAdd(L->b, part, lin_out[j], "");
      LLVMBuildStore(L->b, tomem(L, acc[j], ck), sptr(L, et, 0, idx));
    }
    barrier(L);
    for (int j = 0; j < nout; j++)
      for (int64_t p = 0; p < nparts; p++) {
        LLVMValueRef idx = LLVMBuildAdd(L->b, lin_out[j], ci32(L, p * nel), "");
        LLVMValueRef v = frommem(L, LLVMBuildLoad2(L->b, et, sptr(L, et, 0, idx), ""), ck);
        acc[j] = p ? combine(L, op->sub, acc[j], v, ck) : v;
      }
    barrier(L);
  }
  for (int j = 0; j < nout; j++)
    out->r[j] = conv(L, L->b, acc[j], ck, k);
  return true;
}

/* ---- dot operands in shared memory: swizzled buffers, ldmatrix ------------------------- */

/* A 2-D tile of es-byte elements (es = 2, or 1 for f8) in shared memory, rows along dim sd,
 * contiguous along dim cd; ce = 16 / es elements make a 16-byte chunk. Element (c[sd], c[cd]) is
 * at element index c[sd] * ld + (q ^ phase) * ce + c[cd] % ce of the buffer, q = c[cd] / ce its
 * chunk and phase = (c[sd] / per) % phases (the swizzle: phases = min(ld / ce, 8), per = max(1,
 * 8 / (ld / ce)), both powers of two). Any 8 consecutive rows of one chunk column, which is what
 * one 8x8 matrix of ldmatrix reads and what 8 lanes of a 16-byte store write, then lie in 8
 * distinct 16-byte bank groups. phases = 1: no swizzle. The buffer starts at byte off, plus dyn
 * (i32) for a stage of a ring. */
typedef struct sbuf {
  int64_t off;
  LLVMValueRef dyn;
  int sd, cd;
  int64_t ld, rows;
  int per, phases;
  int es, ce;
} sbuf;

static void sb_init(lw *L, sbuf *s, const int64_t *shape, int cd, int64_t off, int es) {
  s->off = off;
  s->dyn = NULL;
  s->cd = cd;
  s->sd = 1 - cd;
  s->ld = shape[cd];
  s->rows = shape[s->sd];
  s->per = s->phases = 1;
  s->es = es;
  s->ce = 16 / es;
  int64_t chunks = s->ld / s->ce;
  if (!L->no_swizzle && s->ld % s->ce == 0 && (chunks & (chunks - 1)) == 0) {
    s->phases = (int)(chunks < 8 ? chunks : 8);
    s->per = (int)(chunks < 8 ? 8 / chunks : 1);
  }
}

static int64_t sb_bytes(const sbuf *s) {
  return cdiv(s->ld * s->rows * s->es, SMEM_ALIGN) * SMEM_ALIGN;
}

/* The element index of (row, col) (i32 values) in s. */
static LLVMValueRef sb_index(lw *L, const sbuf *s, LLVMValueRef row, LLVMValueRef col) {
  LLVMBuilderRef b = L->b;
  LLVMValueRef base = LLVMBuildMul(b, row, ci32(L, s->ld), "");
  if (s->phases == 1)
    return LLVMBuildAdd(b, base, col, "");
  LLVMValueRef ph = row;
  if (s->per > 1)
    ph = LLVMBuildLShr(b, ph, ci32(L, __builtin_ctz((unsigned)s->per)), "");
  ph = LLVMBuildAnd(b, ph, ci32(L, s->phases - 1), "");
  LLVMValueRef sh = ci32(L, __builtin_ctz((unsigned)s->ce));
  LLVMValueRef q = LLVMBuildXor(b, LLVMBuildLShr(b, col, sh, ""), ph, "");
  LLVMValueRef in = LLVMBuildAnd(b, col, ci32(L, s->ce - 1), "");
  q = LLVMBuildOr(b, LLVMBuildShl(b, q, sh, ""), in, "");
  return LLVMBuildAdd(b, base, q, "");
}

static LLVMValueRef sb_ptr(lw *L, const sbuf *s, LLVMTypeRef et, LLVMValueRef idx) {
  LLVMValueRef base = L->smem;
  if (s->off) {
    LLVMValueRef o = ci32(L, s->off);
    base = LLVMBuildInBoundsGEP2(L->b, L->i8, base, &o, 1, "");
  }
  if (s->dyn)
    base = LLVMBuildInBoundsGEP2(L->b, L->i8, base, (LLVMValueRef *)&s->dyn, 1, "");
  return LLVMBuildInBoundsGEP2(L->b, et, base, &idx, 1, "");
}

/* The element index of (row, col) in s at compile time (sb_index). */
static int64_t sb_cindex(const sbuf *s, int64_t row, int64_t col) {
  if (s->phases == 1)
    return row * s->ld + col;
  int64_t ph = (row / s->per) % s->phases;
  return row * s->ld + (((col / s->ce) ^ ph) * s->ce) + col % s->ce;
}

/* Shared addresses already built, with every thread's byte offset: an access whose offsets
 * differ from an earlier one's by the same constant in every thread reuses its pointer plus an
 * immediate (ldmatrix of the next M rep, cp.async of the next round). Keeps one base register
 * where LICM would otherwise hoist one 64-bit address per access out of the loop. */
typedef struct acache {
  LLVMValueRef ptr[32];
  int64_t *a[32];
  int n;
} acache;

static LLVMValueRef reuse(lw *L, acache *c, const int64_t *a) {
  for (int i = 0; i < c->n; i++) {
    int64_t d = a[0] - c->a[i][0];
    bool ok = true;
    for (int t = 1; t < L->threads && ok; t++)
      ok = a[t] - c->a[i][t] == d;
    if (!ok)
      continue;
    if (!d)
      return c->ptr[i];
    LLVMValueRef o = ci32(L, d);
    return LLVMBuildInBoundsGEP2(L->b, L->i8, c->ptr[i], &o, 1, "");
  }
  return NULL;
}

static void remember(lw *L, acache *c, LLVMValueRef ptr, int64_t *a) {
  if (c->n < 32) {
    c->ptr[c->n] = ptr;
    c->a[c->n++] = a;
  }
  (void)L;
}

/* Registers r .. r+v-1 of li are v consecutive elements of one row of s, starting at a multiple
 * of v in every thread (so one aligned vector access): the largest such v <= ce, or 1. */
static int sb_vec(const sbuf *s, const linfo *li, int r, int left, const bool *skip) {
  if (li->anywrap)
    return 1;
  for (int v = s->ce; v >= 2; v /= 2) {
    bool ok = v <= left && rpart(li, r, s->cd) % v == 0;
    for (int b = 0; b < li->a.nbits && ok; b++)
      ok = li->a.bit[b][s->cd] % v == 0;
    for (int j = 1; j < v && ok; j++)
      ok = rpart(li, r + j, s->cd) == rpart(li, r, s->cd) + j &&
           rpart(li, r + j, s->sd) == rpart(li, r, s->sd) && !(skip && skip[r + j]);
    if (ok)
      return v;
  }
  return 1;
}

/* Stores the registers of a tile in layout li (elements of kind k, s->es bytes) into s. */
static void sb_store(lw *L, const sbuf *s, linfo *li, LLVMValueRef *regs, const bool *skip,
                     ir_kind k) {
  LLVMTypeRef et = ty(L, k);
  for (int r = 0; r < li->a.nregs;) {
    if (skip && skip[r]) {
      r++;
      continue;
    }
    int v = sb_vec(s, li, r, li->a.nregs - r, skip);
    LLVMValueRef row = coord(L, li, r, s->sd), col = coord(L, li, r, s->cd);
    LLVMValueRef idx = sb_index(L, s, row, col), val = regs[r];
    if (v > 1)
      val = vec_of(L, regs + r, v, k);
    LLVMValueRef st = LLVMBuildStore(L->b, val, sb_ptr(L, s, et, idx));
    LLVMSetAlignment(st, (unsigned)(s->es * v));
    r += v;
  }
}

/* Register r of layout li (element kind k) loaded from s. */
static LLVMValueRef sb_load(lw *L, const sbuf *s, linfo *li, int r, ir_kind k) {
  LLVMValueRef row = coord(L, li, r, s->sd), col = coord(L, li, r, s->cd);
  LLVMValueRef idx = sb_index(L, s, row, col);
  LLVMValueRef ld = LLVMBuildLoad2(L->b, ty(L, k), sb_ptr(L, s, ty(L, k), idx), "");
  LLVMSetAlignment(ld, (unsigned)s->es);
  return ld;
}

/* kwidth(k) registers r[0..] as one b32 operand of mma: <2 x half> for f16, i32 for bf16 and f8
 * (4 bytes, the first in the low byte). */
static LLVMValueRef pack(lw *L, LLVMValueRef *r, ir_kind k) {
  LLVMValueRef v = vec_of(L, r, kwidth(k), k);
  return k == IR_F16 ? v : LLVMBuildBitCast(L->b, v, L->i32, "");
}

/* Whether the register groups p[i] .. p[i] + kw - 1 (kw = 4 / es elements of 32 bits), i < n, of
 * layout li are what one ldmatrix.m8n8.x{n} from s gives every lane: group i is 8x8 matrix i
 * of b16 units, whose row j (16 bytes of s at row origin_sd + j, columns origin_cd .. + ce - 1,
 * origin_cd a multiple of ce) lane 8i + j addresses. Without .trans lane l receives row l/4,
 * bytes 4(l%4) .. 4(l%4)+3 of each matrix (kw elements from column kw(l%4)); with .trans
 * (16-bit only) rows 2(l%4), 2(l%4)+1 of column l/4 (PTX ISA, ldmatrix). Checked for every
 * thread; *trans says which form fits. */
static bool ldm_fits(lw *L, const linfo *li, const sbuf *s, const int *p, int n, bool *trans) {
  int kw = 4 / s->es;
  if (s->ld % s->ce || s->off % 16)
    return false;
  for (int t = 0; t <= (kw == 2); t++) {
    bool ok = true;
    for (int i = 0; i < n && ok; i++)
      for (int w = 0; w < L->threads / LY_WARP && ok; w++) {
        int64_t o[IR_MAX_RANK], c0[IR_MAX_RANK], c1[IR_MAX_RANK];
        ccoord(li, w * LY_WARP, p[i], o);
        ok = o[s->cd] % s->ce == 0;
        for (int l = 0; l < LY_WARP && ok; l++) {
          ccoord(li, w * LY_WARP + l, p[i], c0);
          ccoord(li, w * LY_WARP + l, p[i] + 1, c1);
          int64_t dr = c0[s->sd] - o[s->sd], dc = c0[s->cd] - o[s->cd];
          if (!t) {
            ok = dr == l / 4 && dc == kw * (l % 4);
            for (int j = 1; j < kw && ok; j++) {
              ccoord(li, w * LY_WARP + l, p[i] + j, c1);
              ok = c1[s->sd] == c0[s->sd] && c1[s->cd] == c0[s->cd] + j;
            }
          } else
            ok = dr == 2 * (l % 4) && dc == l / 4 && c1[s->sd] == c0[s->sd] + 1 &&
                 c1[s->cd] == c0[s->cd];
        }
      }
    if (ok) {
      *trans = t;
      return true;
    }
  }
  return false;
}

/* The warp part of dim d of li: the thread part with the lane bits cleared (entry block). */
static LLVMValueRef wpart(lw *L, linfo *li, int d) {
  if (!li->w[d]) {
    int64_t w[16] = {0};
    for (int b = 5; b < li->a.nbits; b++)
      w[b] = li->a.bit[b][d];
    li->w[d] = bitsum(L, L->pb, w);
  }
  return li->w[d];
}

/* Coordinate d of the origin of matrix i (pair p[i]) in this lane's warp. */
static LLVMValueRef ldm_origin(lw *L, linfo *li, int r, int d) {
  LLVMValueRef v = LLVMBuildAdd(L->b, wpart(L, li, d), ci32(L, rpart(li, r, d)), "");
  return li->wrap[d] ? LLVMBuildURem(L->b, v, ci32(L, li->shape[d]), "") : v;
}

/* The row address this lane gives ldmatrix.x{n} for pairs p[0..n): matrix (lane / 8) % n, row
 * lane % 8. */
static LLVMValueRef ldm_addr(lw *L, linfo *li, const sbuf *s, const int *p, int n) {
  LLVMBuilderRef b = L->b;
  LLVMValueRef j = LLVMBuildAnd(b, L->tid, ci32(L, 7), "");
  LLVMValueRef b3 = LLVMBuildTrunc(b, LLVMBuildLShr(b, L->tid, ci32(L, 3), ""), L->i1, "");
  LLVMValueRef b4 = LLVMBuildTrunc(b, LLVMBuildLShr(b, L->tid, ci32(L, 4), ""), L->i1, "");
  LLVMValueRef at[2];
  int dims[2] = {s->sd, s->cd};
  for (int e = 0; e < 2; e++) {
    LLVMValueRef o[4];
    for (int i = 0; i < n; i++)
      o[i] = ldm_origin(L, li, p[i], dims[e]);
    LLVMValueRef v = o[0];
    if (n >= 2)
      v = LLVMBuildSelect(b, b3, o[1], o[0], "");
    if (n == 4)
      v = LLVMBuildSelect(b, b4, LLVMBuildSelect(b, b3, o[3], o[2], ""), v, "");
    at[e] = v;
  }
  LLVMValueRef row = LLVMBuildAdd(b, at[0], j, "");
  return sb_ptr(L, s, s->es == 1 ? L->i8 : L->i16, sb_index(L, s, row, at[1]));
}

/* One ldmatrix.sync.aligned.m8n8.x{n}[.trans].b16 for the groups p[0..n) (ldm_fits holds); the
 * b32 operand words of mma (k: f16, bf16 or f8) into words[0..n). */
static void ldm_emit(lw *L, linfo *li, const sbuf *s, const int *p, int n, bool trans, ir_kind k,
                     acache *ac, LLVMValueRef *words) {
  LLVMBuilderRef b = L->b;
  int64_t *ca = alloc(L, sizeof(int64_t) * (size_t)L->threads), o[IR_MAX_RANK];
  for (int t = 0; t < L->threads; t++) {
    int l = t % LY_WARP, i = (l >> 3) & (n - 1);
    ccoord(li, t - l, p[i], o);
    ca[t] = s->es * sb_cindex(s, o[s->sd] + (l & 7), o[s->cd]);
  }
  LLVMValueRef ptr = reuse(L, ac, ca);
  if (!ptr)
    ptr = ldm_addr(L, li, s, p, n);
  remember(L, ac, ptr, ca);
  char name[64];
  snprintf(name, sizeof name, "llvm.nvvm.ldmatrix.sync.aligned.m8n8.x%d%s.b16", n,
           trans ? ".trans" : "");
  LLVMTypeRef pt = LLVMTypeOf(ptr);
  LLVMValueRef res = intr(L, b, name, &pt, 1, &ptr, 1);
  for (int i = 0; i < n; i++) {
    LLVMValueRef w = n == 1 ? res : LLVMBuildExtractValue(b, res, (unsigned)i, "");
    words[i] = k != IR_F16 ? w : LLVMBuildBitCast(b, w, LLVMVectorType(L->f16, 2), "");
  }
  L->ldmatrix++;
}

/* A dot operand: registers, or (deferred) a tile in shared memory read per K step. */
typedef struct operand {
  tv *regs;
  bool deferred, stored; /* stored: by the dot itself (then barriers around it) */
  sbuf sb;
  linfo *lf;  /* the DOTOP layout of the fragments */
  acache *ac; /* ldmatrix addresses built so far */
} operand;

/* Stores the registers of a tile (layout ls, kind k) that becomes a dot operand with K along dim
 * kdim into a swizzled buffer at *off (relative to L->sbase), K contiguous unless the tile's
 * fastest dim is the other one and k is 16-bit (ldmatrix .trans); f8 is always stored K
 * contiguous (ldmatrix has no 8-bit transpose before sm_100), transposing an N- or M-contiguous
 * tile element by element; *off moves past it. */
static void stage_tile(lw *L, sbuf *sb, linfo *ls, LLVMValueRef *regs, ir_kind k, int kdim,
                       int64_t *off) {
  bool kfast = isf8(k) || !(ls->l->kind == LY_BLOCKED && ls->l->order[0] != kdim);
  sb_init(L, sb, ls->shape, kfast ? kdim : 1 - kdim, L->sbase + *off, esize(k));
  *off += sb_bytes(sb);
  sb_store(L, sb, ls, regs, skips(L, ls), k);
}

/* Stores a deferred operand's source tile into shared memory at *off (K contiguous unless the
 * source's fastest dim is the other one: kdim is K's dim in the operand, 1 for A, 0 for B). */
static bool stage_operand(lw *L, const ir_op *op, const ir_value *v, int kdim, operand *o,
                          int64_t *off) {
  tv *t = get(L, v);
  o->deferred = t->defer != NULL;
  o->regs = t;
  o->stored = false;
  o->ac = alloc(L, sizeof *o->ac);
  if (!o->deferred)
    return true;
  const ir_value *src = t->defer;
  o->lf = info_of(L, v, op->loc);
  if (!o->lf)
    return false;
  o->stored = !get(L, src)->sm;
  if (!o->stored) { /* already in shared memory: a stage of a pipelined loop */
    o->sb = *get(L, src)->sm;
    return true;
  }
  linfo *ls = info_of(L, src, op->loc);
  if (!ls)
    return false;
  stage_tile(L, &o->sb, ls, get(L, src)->r, ekind(v), kdim, off);
  return true;
}

/* The mma operand words of the register groups p[0..count) of o (kwidth(k) registers each):
 * ldmatrix.x4 (x2, x1 for the rest) where the fragment layout fits it, element loads
 * otherwise. */
static void frag_words(lw *L, operand *o, const int *p, int count, ir_kind k, LLVMValueRef *w) {
  for (int i = 0; i < count;) {
    if (!o->deferred) {
      w[i] = pack(L, o->regs->r + p[i], k);
      i++;
      continue;
    }
    int n = count - i >= 4 ? 4 : count - i >= 2 ? 2 : 1;
    bool trans;
    if (ldm_fits(L, o->lf, &o->sb, p + i, n, &trans)) {
      ldm_emit(L, o->lf, &o->sb, p + i, n, trans, k, o->ac, w + i);
      i += n;
      continue;
    }
    LLVMValueRef e[4];
    for (int j = 0; j < kwidth(k); j++)
      e[j] = sb_load(L, &o->sb, o->lf, p[i] + j, k);
    w[i] = pack(L, e, k);
    i++;
  }
}

/* A conversion into a dot operand layout that is not left to its dot (one hoisted out of a loop:
 * attention's Q): through a swizzled buffer read with ldmatrix, as the dot would, then the
 * words unpacked into the registers. */
static bool dotop_move(lw *L, const ir_op *op, linfo *lin, linfo *lout, tv *out) {
  ir_kind k = ekind(op->results[0]);
  operand o = {.regs = out, .deferred = true, .lf = lout, .ac = alloc(L, sizeof(acache))};
  int64_t off = 0;
  stage_tile(L, &o.sb, lin, get(L, op->operands[0])->r, k, lout->l->opidx == 0 ? 1 : 0, &off);
  need_smem(L, off);
  barrier(L);
  int kw = kwidth(k), np = out->n / kw;
  int *p = alloc(L, sizeof(int) * (size_t)np);
  LLVMValueRef *w = alloc(L, sizeof(LLVMValueRef) * (size_t)np);
  for (int i = 0; i < np; i++)
    p[i] = kw * i;
  frag_words(L, &o, p, np, k, w);
  for (int i = 0; i < np; i++) {
    LLVMValueRef v = k == IR_F16
                         ? w[i]
                         : LLVMBuildBitCast(L->b, w[i], LLVMVectorType(ty(L, k), (unsigned)kw), "");
    for (int j = 0; j < kw; j++)
      out->r[kw * i + j] = LLVMBuildExtractElement(L->b, v, ci32(L, j), "");
  }
  barrier(L);
  return true;
}

/* One mma.sync.aligned.m16n8k32.row.col.f32.{e4m3,e5m2}.{e4m3,e5m2}.f32 as inline PTX: LLVM 19
 * has no intrinsic for f8 mma (its NVPTX back end knows the integer m16n8k32 forms only). a: 4
 * b32 words, b: 2, c: 4 floats; returns {float x 4}. Without side effects: it only computes. */
static LLVMValueRef mma_f8(lw *L, ir_kind ka, ir_kind kb, LLVMValueRef *args) {
  char text[160];
  snprintf(text, sizeof text,
           "mma.sync.aligned.m16n8k32.row.col.f32.%s.%s.f32 {$0, $1, $2, $3}, {$4, $5, $6, $7}, "
           "{$8, $9}, {$10, $11, $12, $13};",
           ka == IR_F8E4M3 ? "e4m3" : "e5m2", kb == IR_F8E4M3 ? "e4m3" : "e5m2");
  static const char cons[] = "=f,=f,=f,=f,r,r,r,r,r,r,f,f,f,f";
  LLVMTypeRef at[10], ft4[4] = {L->f32, L->f32, L->f32, L->f32};
  for (int i = 0; i < 10; i++)
    at[i] = LLVMTypeOf(args[i]);
  LLVMTypeRef ft = LLVMFunctionType(LLVMStructTypeInContext(L->c, ft4, 4, 0), at, 10, 0);
  LLVMValueRef a = LLVMGetInlineAsm(ft, text, strlen(text), (char *)cons, strlen(cons), 0, 0,
                                    LLVMInlineAsmDialectATT, 0);
  return LLVMBuildCall2(L->b, ft, a, args, 10, "");
}

/* dot: for each K step of ks (16; 32 for f8), M repetition and N repetition, one mma.sync
 * (m16n8k16 for f16/bf16, m16n8k32 for e4m3/e5m2 on sm_89+) with the fragments taken from the
 * DOTOP and MMA register numbering (compiler/layout.c). Operands left in shared memory by their
 * convert_layout are loaded one K step at a time (ldmatrix). */
static bool lower_dot(lw *L, const ir_op *op) {
  const ir_value *A = op->operands[0], *B = op->operands[1], *C = op->operands[2];
  const ir_value *res = op->results[0];
  ir_kind ka = ekind(A), kb = ekind(B), kc = ekind(C), kr = ekind(res);
  bool f8 = isf8(ka) && isf8(kb);
  if (!((ka == kb && half(ka)) || f8) || kc != IR_F32 || kr != IR_F32)
    return fail(L, op->loc,
                "dot of %s x %s -> %s: only bf16 x bf16 and f16 x f16 (mma.m16n8k16) and "
                "f8e4m3/f8e5m2 x f8e4m3/f8e5m2 (mma.m16n8k32) with an f32 accumulator are lowered",
                ir_kind_name(ka), ir_kind_name(kb), ir_kind_name(kr));
  if (f8 && L->sm < 89)
    return fail(L, op->loc,
                "dot of %s x %s: f8 tensor cores need sm_89+ (mma.m16n8k32 with e4m3/e5m2); "
                "the target is sm_%d",
                ir_kind_name(ka), ir_kind_name(kb), L->sm);
  int ra, rb, ks = f8 ? 32 : 16, kw = kwidth(ka);
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  shape_of(A, &ra, sa);
  shape_of(B, &rb, sb);
  int64_t M = sa[0], K = sa[1], N = sb[1];
  if (K % ks)
    return fail(L, op->loc,
                "dot: K = %lld is not a multiple of %d; mma.m16n8k%d would need zero padding, "
                "which is not lowered",
                (long long)K, ks, ks);
  if (M % 16 || N % 8)
    return fail(L, op->loc, "dot: M = %lld and N = %lld must be multiples of 16 and 8",
                (long long)M, (long long)N);
  const ly_layout *ml = layout(L, res);
  ly_layout da = ly_dotop(ml, 0, kw), db = ly_dotop(ml, 1, kw);
  if (ml->kind != LY_MMA || (istile(C) && !ly_equal(layout(L, C), ml)) ||
      !ly_equal(layout(L, A), &da) || !ly_equal(layout(L, B), &db))
    return fail(L, op->loc, "internal error: dot operands are not in the MMA and DOTOP layouts");
  int wm = ml->wpc[0], wn = ml->wpc[1];
  int rm = (int)cdiv(M, 16 * wm), rn = (int)cdiv(N, 8 * wn), rk = (int)(K / ks);
  operand oa, ob;
  int64_t off = 0;
  if (!stage_operand(L, op, A, 1, &oa, &off) || !stage_operand(L, op, B, 0, &ob, &off))
    return false;
  bool stored = (oa.deferred && oa.stored) || (ob.deferred && ob.stored);
  if (stored) {
    need_smem(L, off);
    barrier(L);
  }
  tv *out = def(L, res);
  for (int i = 0; i < out->n; i++)
    out->r[i] = reg(L, C, i);
  bool bf = ka == IR_BF16;
  const char *name =
      bf ? "llvm.nvvm.mma.m16n8k16.row.col.bf16" : "llvm.nvvm.mma.m16n8k16.row.col.f32.f32";
  LLVMValueRef *aw = alloc(L, sizeof(LLVMValueRef) * (size_t)rm * 4);
  LLVMValueRef *bw = alloc(L, sizeof(LLVMValueRef) * (size_t)rn * 2);
  int *pa = alloc(L, sizeof(int) * (size_t)rm * 4), *pb = alloc(L, sizeof(int) * (size_t)rn * 2);
  for (int kk = 0; kk < rk; kk++) {
    for (int m = 0; m < rm; m++)
      for (int p = 0; p < 4; p++)
        pa[m * 4 + p] = (m * rk + kk) * 4 * kw + kw * p;
    for (int n = 0; n < rn; n++)
      for (int p = 0; p < 2; p++)
        pb[n * 2 + p] = (kk * rn + n) * 2 * kw + kw * p;
    frag_words(L, &oa, pa, rm * 4, ka, aw);
    frag_words(L, &ob, pb, rn * 2, kb, bw);
    for (int m = 0; m < rm; m++)
      for (int n = 0; n < rn; n++) {
        int c = (m * rn + n) * 4;
        LLVMValueRef args[10] = {aw[m * 4],     aw[m * 4 + 1], aw[m * 4 + 2], aw[m * 4 + 3],
                                 bw[n * 2],     bw[n * 2 + 1], out->r[c],     out->r[c + 1],
                                 out->r[c + 2], out->r[c + 3]};
        LLVMValueRef d = f8 ? mma_f8(L, ka, kb, args) : intr(L, L->b, name, NULL, 0, args, 10);
        for (int i = 0; i < 4; i++)
          out->r[c + i] = LLVMBuildExtractValue(L->b, d, (unsigned)i, "");
        L->mma++;
        L->f8_mma |= f8;
      }
  }
  if (stored)
    barrier(L);
  return true;
}

/* ---- control flow ----------------------------------------------------------------------- */

static bool lower_block(lw *L, const ir_block *b);
static bool lower_op(lw *L, const ir_op *op);

static const ir_op *yield_of(const ir_block *b) {
  return b && b->last && b->last->code == IR_OP_YIELD ? b->last : NULL;
}

/* Phis for value v (one per register) at the start of the current block. */
static tv *phis(lw *L, const ir_value *v) {
  tv *t = def(L, v);
  LLVMTypeRef et = ty(L, ekind(v));
  for (int i = 0; i < t->n; i++)
    t->r[i] = LLVMBuildPhi(L->b, et, "");
  return t;
}

static bool incoming(lw *L, const ir_op *op, tv *phi, const ir_value *from, LLVMBasicBlockRef bb) {
  tv *src = get(L, from);
  if (src->defer || (istile(from) && src->n != phi->n))
    return fail(L, op->loc, "internal error: a carried value changes its layout");
  for (int i = 0; i < phi->n; i++) {
    LLVMValueRef v = reg(L, from, i);
    LLVMAddIncoming(phi->r[i], &v, &bb, 1);
  }
  return true;
}

/* ---- software pipelining: cp.async into rings of shared buffers --------------------------
 *
 * A `for` whose body loads 2-D 16-bit tiles that reach a dot only through an optional trans and
 * the dot's operand conversion is pipelined STAGES deep: each such load gets a ring of STAGES
 * swizzled buffers (sbuf) below L->sbase, and
 *
 *   prologue:   for s < STAGES-1: if (lo + s*step < hi) copy tiles of iteration s into stage s;
 *               commit_group
 *   iteration i (stage r = i % STAGES):
 *               wait_group STAGES-2; bar.sync      -- stage r has landed for every thread, and
 *                                                     every thread is done with stage r-1
 *               if (iv + (STAGES-1)*step < hi) copy tiles of iteration i+STAGES-1 into stage
 *               r-1; commit_group
 *               the body, whose loads are stage r (ldmatrix reads it directly)
 *   after:      wait_group 0; bar.sync
 *
 * A copy is 16-byte cp.async.cg with src-size: out-of-bounds rows and columns copy 0 bytes and
 * zero-fill. It needs 16-byte aligned global addresses, which the runtime shapes decide: the
 * loop-invariant part (base pointer % 16, last stride 1, other strides % 8) is computed once,
 * the column index % 8 per copy; when it fails, the tile is loaded with the predicated element
 * loads of lower_block_access and stored into the stage (same ring, same schedule). The scalar
 * ops the loads' indices depend on (the slice: index arrays of bsmatmul, bsattention) are
 * lowered again with the induction variable of the iteration being fetched. */

/* A load the pipelined loop copies into a ring. */
typedef struct pload {
  const ir_op *op;
  sbuf sb;           /* stage 0; dyn set per use */
  int64_t bytes;     /* one stage */
  LLVMValueRef fast; /* loop-invariant part of the cp.async condition (entry block) */
  sbuf cur;          /* the stage the body reads in the current iteration */
} pload;

typedef struct pipe {
  int stages;
  pload ld[8];
  int nld;
  const ir_op **slice; /* body ops the loads' indices depend on, in order */
  int nslice;
  int64_t ring; /* bytes of all rings */
} pipe;

static bool is_body_op(const ir_value *v, const ir_block *body) {
  return v->def && v->def->parent == body;
}

/* The dot operand conversion a load reaches through an optional trans (single uses), or NULL. */
static const ir_op *load_to_dot(lw *L, const ir_op *ld, const ir_block *body) {
  const ir_value *v = ld->results[0];
  if (L->uses[v->id] != 1)
    return NULL;
  const ir_op *u = L->user[v->id];
  if (u->code == IR_OP_TRANS && u->parent == body) {
    v = u->results[0];
    if (L->uses[v->id] != 1)
      return NULL;
    u = L->user[v->id];
  }
  if (u->code != IR_OP_CONVERT || u->parent != body || !deferrable(L, u))
    return NULL;
  return u;
}

/* Whether op can be lowered again for a later iteration: a scalar op without regions or stores. */
static bool sliceable(const ir_op *op) {
  if (op->nregions || op->nres != 1 || istile(op->results[0]))
    return false;
  switch (op->code) {
  case IR_OP_STORE:
  case IR_OP_STORE_PTR:
  case IR_OP_DOT:
  case IR_OP_REDUCE:
    return false;
  default:
    return true;
  }
}

/* Finds the loads of the for op that can be pipelined and the slice of their indices; false
 * (nothing to pipeline) otherwise. */
static bool plan_pipe(lw *L, const ir_op *op, pipe *P) {
  const ir_block *body = op->regions[0];
  memset(P, 0, sizeof *P);
  P->stages = L->stages;
  if (P->stages < 2 || L->pipe)
    return false;
  for (const ir_op *o = body->first; o; o = o->next) {
    if (o->code != IR_OP_LOAD || P->nld == (int)(sizeof P->ld / sizeof P->ld[0]))
      continue;
    const ir_value *t = o->results[0], *tens = o->operands[0];
    int rank;
    int64_t sh[IR_MAX_RANK];
    shape_of(t, &rank, sh);
    int a = tens->argno, es = esize(ekind(t)), ce = 16 / es;
    const ir_op *cv = load_to_dot(L, o, body);
    if (rank != 2 || !(half(ekind(t)) || isf8(ekind(t))) || o->ex[1] || tens->def || a < 0 ||
        L->k->args[a].kind != ARG_TENSOR || tens->ty->rank < 2 || sh[1] % ce ||
        (sh[0] * sh[1] / ce) % LY_WARP || !cv)
      continue;
    /* f8 operands are read K-contiguous (there is no 8-bit ldmatrix.trans): the ring, which
     * keeps the tensor's row-major orientation, must have K along its rows */
    bool trans = L->user[t->id]->code == IR_OP_TRANS;
    if (isf8(ekind(t)) && (layout(L, cv->results[0])->opidx == 0) == trans)
      continue;
    pload *p = &P->ld[P->nld++];
    memset(p, 0, sizeof *p);
    p->op = o;
    sb_init(L, &p->sb, sh, 1, 0, es);
    p->bytes = sb_bytes(&p->sb);
  }
  if (!P->nld)
    return false;
  /* the slice: scalar body ops the indices need, transitively */
  bool *need = alloc(L, sizeof(bool) * (size_t)L->k->nvalues);
  int nops = 0;
  for (const ir_op *o = body->first; o; o = o->next)
    nops++;
  const ir_op **ops = alloc(L, sizeof(ir_op *) * (size_t)nops);
  nops = 0;
  for (const ir_op *o = body->first; o; o = o->next)
    ops[nops++] = o;
  for (int i = 0; i < P->nld; i++)
    for (int j = 1; j < P->ld[i].op->nopnd; j++)
      need[P->ld[i].op->operands[j]->id] = true;
  P->slice = alloc(L, sizeof(ir_op *) * (size_t)nops);
  bool *in = alloc(L, sizeof(bool) * (size_t)nops);
  for (int i = nops - 1; i >= 0; i--) {
    const ir_op *o = ops[i];
    bool needed = false;
    for (int r = 0; r < o->nres; r++)
      needed |= need[o->results[r]->id];
    if (!needed)
      continue;
    if (!sliceable(o))
      return false;
    in[i] = true;
    for (int j = 0; j < o->nopnd; j++)
      if (is_body_op(o->operands[j], body))
        need[o->operands[j]->id] = true;
  }
  for (int i = 0; i < nops; i++)
    if (in[i])
      P->slice[P->nslice++] = ops[i];
  int64_t off = L->sbase;
  for (int i = 0; i < P->nld; i++) {
    P->ld[i].sb.off = off;
    off += P->ld[i].bytes * P->stages;
  }
  P->ring = off - L->sbase;
  return true;
}

/* The loop-invariant part of the cp.async condition of load p: 16-byte aligned base, unit
 * last stride, other strides multiples of 16 bytes (entry block). */
static LLVMValueRef fast_part(lw *L, const pload *p) {
  if (L->aligned)
    return LLVMConstInt(L->i1, 1, 0);
  const argp *A = &L->args[p->op->operands[0]->argno];
  int R = p->op->operands[0]->ty->rank;
  LLVMBuilderRef b = L->pb;
  LLVMValueRef pi = LLVMBuildPtrToInt(b, A->ptr, L->i64, "");
  LLVMValueRef ok =
      LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildAnd(b, pi, ci64(L, 15), ""), ci64(L, 0), "");
  ok = LLVMBuildAnd(b, ok, LLVMBuildICmp(b, LLVMIntEQ, A->stride[R - 1], ci64(L, 1), ""), "");
  for (int d = 0; d < R - 1; d++) {
    LLVMValueRef m = LLVMBuildAnd(b, A->stride[d], ci64(L, p->sb.ce - 1), "");
    ok = LLVMBuildAnd(b, ok, LLVMBuildICmp(b, LLVMIntEQ, m, ci64(L, 0), ""), "");
  }
  return ok;
}

/* if (c) { then() } as blocks; returns the join block's builder position (the caller goes on). */
static LLVMBasicBlockRef branch_if(lw *L, LLVMValueRef c, const char *name) {
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(L->c, L->fn, name);
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(L->c, L->fn, "join");
  LLVMBuildCondBr(L->b, c, then, join);
  LLVMPositionBuilderAtEnd(L->b, then);
  return join;
}

static void branch_end(lw *L, LLVMBasicBlockRef join) {
  LLVMBuildBr(L->b, join);
  LLVMPositionBuilderAtEnd(L->b, join);
}

/* The slow path of copy_tile (any strides and base): a loop over this thread's elements,
 * t = ce j + e for chunk q = tid + j * threads of ce = 16 / size elements (row q / cpr, column
 * ce (q % cpr) + e), each a predicated element load (0 outside the tensor) and an element
 * store to shared memory. Not unrolled: it
 * only runs when the tensor is not aligned for cp.async, and unrolled it was most of the
 * kernel's code. */
static void copy_slow(lw *L, const pload *p, const sbuf *st, const LLVMValueRef *idx,
                      LLVMValueRef off, LLVMValueRef lead, LLVMValueRef rows, LLVMValueRef cols) {
  const ir_op *op = p->op;
  const argp *A = &L->args[op->operands[0]->argno];
  int R = op->operands[0]->ty->rank;
  ir_kind k = ekind(op->results[0]);
  LLVMTypeRef et = memty(L, k);
  LLVMBuilderRef b = L->b;
  int ce = st->ce, lce = __builtin_ctz((unsigned)ce);
  int64_t cpr = st->ld / ce, chunks = st->ld * st->rows / ce;
  /* this thread's chunks: ceil((chunks - tid) / threads), 0 when tid >= chunks */
  LLVMValueRef mine = LLVMBuildUDiv(
      b, LLVMBuildSub(b, ci32(L, chunks + L->threads - 1), L->tid, ""), ci32(L, L->threads), "");
  LLVMValueRef n = LLVMBuildMul(b, mine, ci32(L, ce), "");
  cloop cl;
  LLVMValueRef t =
      loop_begin(L, &cl, "cp.slow.loop", LLVMBuildICmp(b, LLVMIntULT, ci32(L, 0), n, ""));
  LLVMValueRef j = LLVMBuildLShr(b, t, ci32(L, lce), "");
  LLVMValueRef e = LLVMBuildAnd(b, t, ci32(L, ce - 1), "");
  LLVMValueRef q = LLVMBuildAdd(b, L->tid, LLVMBuildMul(b, j, ci32(L, L->threads), ""), "");
  LLVMValueRef row = LLVMBuildUDiv(b, q, ci32(L, cpr), "");
  LLVMValueRef col = LLVMBuildAdd(
      b, LLVMBuildMul(b, LLVMBuildURem(b, q, ci32(L, cpr), ""), ci32(L, ce), ""), e, "");
  LLVMValueRef grow = LLVMBuildAdd(b, idx[R - 2], LLVMBuildZExt(b, row, L->i64, ""), "");
  LLVMValueRef gcol = LLVMBuildAdd(b, idx[R - 1], LLVMBuildZExt(b, col, L->i64, ""), "");
  LLVMValueRef rin = LLVMBuildICmp(b, LLVMIntULT, grow, rows, "");
  LLVMValueRef in = LLVMBuildAnd(b, rin, LLVMBuildICmp(b, LLVMIntULT, gcol, cols, ""), "");
  in = band(L, in, lead);
  LLVMValueRef o = LLVMBuildAdd(b, off, LLVMBuildMul(b, grow, A->stride[R - 2], ""), "");
  o = LLVMBuildAdd(b, o, LLVMBuildMul(b, gcol, A->stride[R - 1], ""), "");
  LLVMValueRef x =
      gload(L, LLVMBuildGEP2(b, et, A->ptr, &o, 1, ""), in, k, LLVMConstNull(ty(L, k)));
  LLVMValueRef dst = sb_ptr(L, st, et, sb_index(L, st, row, col));
  LLVMSetAlignment(LLVMBuildStore(b, x, dst), (unsigned)esize(k));
  loop_end(L, &cl, n);
}

/* Copies the tile of load p (its index operands lowered for the iteration being fetched) into
 * the stage at byte offset dyn of its ring, in 16-byte chunks of ce = 16 / size elements of a
 * row: chunk q = tid + j * threads is row q / (cols / ce), columns ce (q % (cols / ce)) + 0..
 * ce-1. When the
 * addresses allow (fast), each chunk is one cp.async with src-size = the bytes inside the
 * tensor (0: zero fill); otherwise copy_slow (any strides, masked elements are 0). */
static bool copy_tile(lw *L, pload *p, LLVMValueRef dyn) {
  const ir_op *op = p->op;
  const ir_value *tens = op->operands[0], *tile = op->results[0];
  const argp *A = &L->args[tens->argno];
  int R = tens->ty->rank;
  ir_kind k = ekind(tile);
  LLVMBuilderRef b = L->b;
  sbuf st = p->sb;
  st.dyn = dyn;
  LLVMValueRef idx[IR_MAX_RANK];
  for (int d = 0; d < R; d++)
    idx[d] = int_scalar(L, op->operands[1 + d]);
  LLVMValueRef off = ci64(L, 0), lead = NULL;
  for (int d = 0; d < R - 2; d++) {
    LLVMValueRef e = LLVMBuildZExt(b, A->shape[d], L->i64, "");
    lead = band(L, lead, LLVMBuildICmp(b, LLVMIntULT, idx[d], e, ""));
    off = LLVMBuildAdd(b, off, LLVMBuildMul(b, idx[d], A->stride[d], ""), "");
  }
  LLVMValueRef rows = LLVMBuildZExt(b, A->shape[R - 2], L->i64, "");
  LLVMValueRef cols = LLVMBuildZExt(b, A->shape[R - 1], L->i64, "");
  int ce = st.ce, es = st.es;
  LLVMBasicBlockRef join = NULL;
  if (!L->aligned || known_tz(idx[R - 1], 0) < __builtin_ctz((unsigned)ce)) {
    LLVMValueRef cmis = LLVMBuildAnd(b, idx[R - 1], ci64(L, ce - 1), "");
    LLVMValueRef fast =
        LLVMBuildAnd(b, p->fast, LLVMBuildICmp(b, LLVMIntEQ, cmis, ci64(L, 0), ""), "");
    LLVMBasicBlockRef cpb = LLVMAppendBasicBlockInContext(L->c, L->fn, "cp.async");
    LLVMBasicBlockRef slow = LLVMAppendBasicBlockInContext(L->c, L->fn, "cp.slow");
    join = LLVMAppendBasicBlockInContext(L->c, L->fn, "cp.join");
    LLVMBuildCondBr(b, fast, cpb, slow);
    LLVMPositionBuilderAtEnd(b, slow);
    copy_slow(L, p, &st, idx, off, lead, rows, cols);
    LLVMBuildBr(b, join);
    LLVMPositionBuilderAtEnd(b, cpb);
  } /* else the aligned variant with a 16-byte aligned index: cp.async only */
  int64_t cpr = st.ld / ce, chunks = st.ld * st.rows / ce;
  LLVMTypeRef et = memty(L, k);
  acache *ac = alloc(L, sizeof *ac);
  for (int64_t first = 0; first < chunks; first += L->threads) {
    LLVMBasicBlockRef skip = NULL;
    if (chunks - first < L->threads) /* whole warps: chunks is a multiple of 32 */
      skip = branch_if(L, LLVMBuildICmp(b, LLVMIntULT, L->tid, ci32(L, chunks - first), ""),
                       "cp.part");
    LLVMValueRef q = LLVMBuildAdd(b, L->tid, ci32(L, first), "");
    LLVMValueRef row = LLVMBuildUDiv(b, q, ci32(L, cpr), "");
    LLVMValueRef col = LLVMBuildMul(b, LLVMBuildURem(b, q, ci32(L, cpr), ""), ci32(L, ce), "");
    LLVMValueRef grow = LLVMBuildAdd(b, idx[R - 2], LLVMBuildZExt(b, row, L->i64, ""), "");
    LLVMValueRef gcol = LLVMBuildAdd(b, idx[R - 1], LLVMBuildZExt(b, col, L->i64, ""), "");
    LLVMValueRef in = band(L, LLVMBuildICmp(b, LLVMIntULT, grow, rows, ""), lead);
    LLVMValueRef o = LLVMBuildAdd(b, off, LLVMBuildMul(b, grow, A->stride[R - 2], ""), "");
    int64_t *ca = alloc(L, sizeof(int64_t) * (size_t)L->threads);
    for (int t = 0; t < L->threads; t++) {
      int64_t cq = t + first < chunks ? t + first : first; /* idle lanes: any chunk */
      ca[t] = es * sb_cindex(&st, cq / cpr, cq % cpr * ce);
    }
    LLVMValueRef dst = reuse(L, ac, ca);
    if (!dst)
      dst = sb_ptr(L, &st, et, sb_index(L, &st, row, col));
    remember(L, ac, dst, ca);
    /* bytes inside the row: 16, or fewer at the end of a row not a multiple of ce long */
    in = LLVMBuildAnd(b, in, LLVMBuildICmp(b, LLVMIntULT, gcol, cols, ""), "");
    LLVMValueRef left = LLVMBuildMul(b, LLVMBuildSub(b, cols, gcol, ""), ci64(L, es), "");
    left = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntULT, left, ci64(L, 16), ""), left,
                           ci64(L, 16), "");
    LLVMValueRef size = LLVMBuildSelect(b, in, LLVMBuildTrunc(b, left, L->i32, ""), ci32(L, 0), "");
    o = LLVMBuildSelect(b, in, LLVMBuildAdd(b, o, gcol, ""), ci64(L, 0), ""); /* any address */
    LLVMValueRef args[3] = {dst, LLVMBuildGEP2(b, et, A->ptr, &o, 1, ""), size};
    intr(L, b, "llvm.nvvm.cp.async.cg.shared.global.16.s", NULL, 0, args, 3);
    L->cpasync++;
    if (skip)
      branch_end(L, skip);
  }
  if (join) {
    LLVMBuildBr(b, join);
    LLVMPositionBuilderAtEnd(b, join);
  }
  return true;
}

static void cp_commit(lw *L) { intr(L, L->b, "llvm.nvvm.cp.async.commit.group", NULL, 0, NULL, 0); }

static void cp_wait(lw *L, int n) {
  LLVMValueRef a = ci32(L, n);
  intr(L, L->b, "llvm.nvvm.cp.async.wait.group", NULL, 0, &a, 1);
}

/* If iv < hi: the slice lowered for iteration iv, then the copies of its tiles into the stage
 * at ring position `stage` (i32); then commit_group in any case. */
static bool fetch(lw *L, pipe *P, const ir_value *ivv, LLVMValueRef iv, LLVMValueRef hi,
                  LLVMValueRef stage) {
  LLVMBasicBlockRef join = branch_if(L, LLVMBuildICmp(L->b, LLVMIntSLT, iv, hi, ""), "fetch");
  tv *t = get(L, ivv), saved = *t;
  t->n = 1;
  t->r = alloc(L, sizeof(LLVMValueRef));
  t->r[0] = iv;
  t->splat = false;
  t->sm = NULL;
  t->defer = NULL;
  bool ok = true;
  for (int i = 0; i < P->nslice && ok; i++)
    ok = lower_op(L, P->slice[i]);
  for (int i = 0; i < P->nld && ok; i++)
    ok = copy_tile(L, &P->ld[i], LLVMBuildMul(L->b, stage, ci32(L, P->ld[i].bytes), ""));
  *t = saved;
  if (!ok)
    return false;
  branch_end(L, join);
  cp_commit(L);
  return true;
}

/* Before a pipelined loop: its rings go below L->sbase, and the first STAGES-1 iterations'
 * tiles are fetched: by a loop over the stages (not unrolled) when there are several, so the
 * copy code exists twice (here and in the loop) whatever STAGES is. */
static bool pipe_prologue(lw *L, pipe *P, const ir_value *iv, LLVMValueRef lo, LLVMValueRef hi,
                          LLVMValueRef step) {
  for (int i = 0; i < P->nld; i++)
    P->ld[i].fast = fast_part(L, &P->ld[i]);
  need_smem(L, P->ring);
  L->sbase += P->ring;
  if (P->stages == 2)
    return fetch(L, P, iv, lo, hi, ci32(L, 0));
  cloop cl;
  LLVMValueRef s = loop_begin(L, &cl, "prologue", NULL);
  LLVMValueRef ivs = LLVMBuildNSWAdd(L->b, lo, LLVMBuildMul(L->b, step, s, ""), "");
  if (!fetch(L, P, iv, ivs, hi, s))
    return false;
  loop_end(L, &cl, ci32(L, P->stages - 1));
  return true;
}

/* The top of an iteration that reads ring position `stage`: wait for it, one barrier, fetch the
 * iteration STAGES-1 ahead into the position read last iteration; the body's loads become the
 * current stage. Returns the next iteration's position (NULL on failure). */
static LLVMValueRef pipe_top(lw *L, pipe *P, const ir_value *iv, LLVMValueRef ivv, LLVMValueRef hi,
                             LLVMValueRef step, LLVMValueRef stage) {
  int S = P->stages;
  cp_wait(L, S - 2);
  barrier(L);
  LLVMValueRef s1 = LLVMBuildAdd(L->b, stage, ci32(L, 1), "");
  LLVMValueRef wrap = LLVMBuildICmp(L->b, LLVMIntEQ, s1, ci32(L, S), "");
  LLVMValueRef next = LLVMBuildSelect(L->b, wrap, ci32(L, 0), s1, "");
  LLVMValueRef prev = LLVMBuildSub(L->b, stage, ci32(L, 1), "");
  LLVMValueRef first = LLVMBuildICmp(L->b, LLVMIntEQ, stage, ci32(L, 0), "");
  LLVMValueRef wstage = LLVMBuildSelect(L->b, first, ci32(L, S - 1), prev, "");
  LLVMValueRef ahead = LLVMBuildMul(L->b, step, ci32(L, S - 1), "");
  if (!fetch(L, P, iv, LLVMBuildNSWAdd(L->b, ivv, ahead, ""), hi, wstage))
    return NULL;
  for (int i = 0; i < P->nld; i++) {
    P->ld[i].cur = P->ld[i].sb;
    P->ld[i].cur.dyn = LLVMBuildMul(L->b, stage, ci32(L, P->ld[i].bytes), "");
  }
  return next;
}

/* for: lo < hi guards entry; the body's block ends with iv += step and iv < hi. With P (loads
 * to pipeline, plan_pipe), the prologue, the top of each iteration and the drain of the
 * software pipeline go around it. */
static bool lower_for(lw *L, const ir_op *op, pipe *P) {
  const ir_block *body = op->regions[0];
  const ir_op *y = yield_of(body);
  int n = op->nres;
  if (!y || y->nopnd != n || body->nargs != n + 1)
    return fail(L, op->loc, "internal error: malformed for");
  const ir_value *iv = body->args[0];
  LLVMValueRef lo = get(L, op->operands[0])->r[0], hi = get(L, op->operands[1])->r[0];
  LLVMValueRef step = get(L, op->operands[2])->r[0], stage = NULL, next_stage = NULL;
  int64_t sbase = L->sbase;
  if (P && !pipe_prologue(L, P, iv, lo, hi, step))
    return false;
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(L->b);
  LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(L->c, L->fn, "loop");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(L->c, L->fn, "loop.end");
  LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, lo, hi, ""), loop, done);
  LLVMPositionBuilderAtEnd(L->b, loop);
  tv *ivp = phis(L, iv);
  if (P)
    stage = LLVMBuildPhi(L->b, L->i32, "stage");
  tv **carried = alloc(L, sizeof(tv *) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++)
    carried[i] = phis(L, body->args[1 + i]);
  if (P && !(next_stage = pipe_top(L, P, iv, ivp->r[0], hi, step, stage)))
    return false;
  L->pipe = P;
  bool ok = lower_block(L, body);
  L->pipe = NULL;
  if (!ok)
    return false;
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(L->b);
  LLVMValueRef next = LLVMBuildNSWAdd(L->b, ivp->r[0], step, "");
  LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, next, hi, ""), loop, done);
  LLVMAddIncoming(ivp->r[0], &lo, &pre, 1);
  LLVMAddIncoming(ivp->r[0], &next, &latch, 1);
  if (P) {
    LLVMValueRef zero = ci32(L, 0);
    LLVMAddIncoming(stage, &zero, &pre, 1);
    LLVMAddIncoming(stage, &next_stage, &latch, 1);
  }
  for (int i = 0; i < n; i++)
    if (!incoming(L, op, carried[i], op->operands[3 + i], pre) ||
        !incoming(L, op, carried[i], y->operands[i], latch))
      return false;
  LLVMPositionBuilderAtEnd(L->b, done);
  for (int i = 0; i < n; i++) {
    tv *r = phis(L, op->results[i]);
    if (!incoming(L, op, r, op->operands[3 + i], pre) || !incoming(L, op, r, y->operands[i], latch))
      return false;
  }
  if (P) { /* drain: nothing may still land in the rings, which later ops reuse */
    cp_wait(L, 0);
    barrier(L);
    L->sbase = sbase;
  }
  return true;
}

/* A load of the pipelined loop's body: its tile is the current stage of its ring. */
static bool piped_load(lw *L, const ir_op *op) {
  if (!L->pipe)
    return false;
  for (int i = 0; i < L->pipe->nld; i++)
    if (L->pipe->ld[i].op == op) {
      tv *t = def(L, op->results[0]);
      t->sm = &L->pipe->ld[i].cur;
      return true;
    }
  return false;
}

/* trans of a tile in shared memory swaps the roles of its dims; the dot's conversion of one
 * is deferred to the dot, which reads the buffer with ldmatrix. */
static bool sm_move(lw *L, const ir_op *op, const tv *in) {
  tv *out = def(L, op->results[0]);
  if (op->code == IR_OP_TRANS) {
    sbuf *s = alloc(L, sizeof *s);
    *s = *in->sm;
    s->sd = in->sm->cd;
    s->cd = in->sm->sd;
    out->sm = s;
    return true;
  }
  if (op->code == IR_OP_CONVERT && deferrable(L, op)) {
    out->defer = op->operands[0];
    return true;
  }
  return fail(L, op->loc, "internal error: '%s' of a pipelined tile", ir_ops[op->code].keyword);
}

static bool lower_if(lw *L, const ir_op *op) {
  LLVMValueRef cond = get(L, op->operands[0])->r[0];
  const ir_block *tb = op->regions[0], *eb = op->nregions > 1 ? op->regions[1] : NULL;
  const ir_op *ty_ = yield_of(tb), *ey = eb ? yield_of(eb) : NULL;
  if (!ty_ || (eb && !ey) || (op->nres && !eb))
    return fail(L, op->loc, "internal error: malformed if");
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(L->c, L->fn, "then");
  LLVMBasicBlockRef els = eb ? LLVMAppendBasicBlockInContext(L->c, L->fn, "else") : NULL;
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(L->c, L->fn, "endif");
  LLVMBuildCondBr(L->b, cond, then, els ? els : join);
  LLVMPositionBuilderAtEnd(L->b, then);
  if (!lower_block(L, tb))
    return false;
  LLVMBasicBlockRef tend = LLVMGetInsertBlock(L->b), eend = NULL;
  LLVMBuildBr(L->b, join);
  if (eb) {
    LLVMPositionBuilderAtEnd(L->b, els);
    if (!lower_block(L, eb))
      return false;
    eend = LLVMGetInsertBlock(L->b);
    LLVMBuildBr(L->b, join);
  }
  LLVMPositionBuilderAtEnd(L->b, join);
  for (int i = 0; i < op->nres; i++) {
    tv *r = phis(L, op->results[i]);
    if (!incoming(L, op, r, ty_->operands[i], tend) || !incoming(L, op, r, ey->operands[i], eend))
      return false;
  }
  return true;
}

/* ---- ops -------------------------------------------------------------------------------- */

static bool lower_op(lw *L, const ir_op *op) {
  const ir_value *res = op->nres ? op->results[0] : NULL;
  switch (op->code) {
  case IR_OP_PROGRAM_ID:
  case IR_OP_NUM_PROGRAMS: {
    static const char *const ids[] = {"llvm.nvvm.read.ptx.sreg.ctaid.x",
                                      "llvm.nvvm.read.ptx.sreg.ctaid.y",
                                      "llvm.nvvm.read.ptx.sreg.ctaid.z"};
    static const char *const nids[] = {"llvm.nvvm.read.ptx.sreg.nctaid.x",
                                       "llvm.nvvm.read.ptx.sreg.nctaid.y",
                                       "llvm.nvvm.read.ptx.sreg.nctaid.z"};
    int ax = (int)op->attr[0];
    if (ax < 0 || ax > 2)
      return fail(L, op->loc, "grid axis %d is not 0, 1 or 2", ax);
    LLVMValueRef v = sreg(L, (op->code == IR_OP_PROGRAM_ID ? ids : nids)[ax]);
    splat(L, res, conv(L, L->pb, v, IR_I32, ekind(res)));
    return true;
  }
  case IR_OP_CONST:
    splat(L, res, expr_as(L, op->ex[0], ekind(res)));
    return true;
  case IR_OP_ZEROS:
    splat(L, res, LLVMConstNull(ty(L, ekind(res))));
    return true;
  case IR_OP_FULL:
    splat(L, res, conv(L, L->b, get(L, op->operands[0])->r[0], ekind(op->operands[0]), ekind(res)));
    return true;
  case IR_OP_ARANGE:
    return lower_arange(L, op);
  case IR_OP_BROADCAST:
  case IR_OP_EXPAND_DIMS:
  case IR_OP_RESHAPE:
  case IR_OP_TRANS:
  case IR_OP_CONVERT:
    return lower_move(L, op);
  case IR_OP_LOAD:
    return piped_load(L, op) || lower_block_access(L, op, false);
  case IR_OP_STORE:
    return lower_block_access(L, op, true);
  case IR_OP_LOAD_PTR:
    return lower_load_ptr(L, op);
  case IR_OP_STORE_PTR:
    return lower_store_ptr(L, op);
  case IR_OP_DOT:
    return lower_dot(L, op);
  case IR_OP_REDUCE:
    return lower_reduce(L, op);
  case IR_OP_FOR: {
    pipe P;
    return lower_for(L, op, plan_pipe(L, op, &P) ? &P : NULL);
  }
  case IR_OP_IF:
    return lower_if(L, op);
  case IR_OP_YIELD:
    return true;
  default:
    if (op->nres == 1)
      return lower_elementwise(L, op);
    return fail(L, op->loc, "internal error: op '%s' is not lowered", ir_ops[op->code].keyword);
  }
}

static bool lower_block(lw *L, const ir_block *b) {
  for (const ir_op *op = b->first; op; op = op->next)
    if (!lower_op(L, op))
      return false;
  return true;
}

/* ---- the kernel ------------------------------------------------------------------------- */

static void count_uses(lw *L, const ir_block *b) {
  for (const ir_op *op = b->first; op; op = op->next) {
    for (int i = 0; i < op->nopnd; i++) {
      L->uses[op->operands[i]->id]++;
      L->user[op->operands[i]->id] = op;
    }
    for (int r = 0; r < op->nregions; r++)
      if (op->regions[r])
        count_uses(L, op->regions[r]);
  }
}

/* The f8 kind among v's element kinds (a pointer's pointee included), or 0. */
static ir_kind f8_of(const ir_value *v) {
  const ir_type *e = ir_type_elem(v->ty);
  ir_kind k = e->kind == IR_PTR ? e->elem->kind : e->kind;
  return isf8(k) ? k : 0;
}

/* Rejects what the lowering does not handle before any code is built. f8 values are bytes that
 * block loads (without a fill), block stores, data movement and dot may handle; there is no f8
 * arithmetic or cast yet. */
static bool check_kinds(lw *L, const ir_block *b) {
  for (const ir_op *op = b->first; op; op = op->next) {
    bool moves = (op->code == IR_OP_LOAD && !op->ex[1]) || op->code == IR_OP_STORE ||
                 op->code == IR_OP_CONVERT || op->code == IR_OP_TRANS ||
                 op->code == IR_OP_BROADCAST || op->code == IR_OP_EXPAND_DIMS ||
                 op->code == IR_OP_RESHAPE || op->code == IR_OP_DOT;
    ir_kind k = 0;
    for (int i = 0; i < op->nres && !k; i++)
      k = f8_of(op->results[i]);
    for (int i = 0; i < op->nopnd && !k; i++)
      k = f8_of(op->operands[i]);
    if (k && !moves)
      return fail(L, op->loc,
                  "'%s' on %s values is not lowered: f8 tiles may only be loaded (without a "
                  "fill), stored, moved (convert_layout, trans, broadcast, expand_dims, reshape) "
                  "and multiplied by 'dot' (f32 accumulator, sm_89+)",
                  ir_ops[op->code].keyword, ir_kind_name(k));
    for (int r = 0; r < op->nregions; r++)
      if (op->regions[r] && !check_kinds(L, op->regions[r]))
        return false;
  }
  return true;
}

static void annotate(lw *L, const char *key, int v) {
  LLVMMetadataRef md[3] = {LLVMValueAsMetadata(L->fn),
                           LLVMMDStringInContext2(L->c, key, strlen(key)),
                           LLVMValueAsMetadata(ci32(L, v))};
  LLVMAddNamedMetadataOperand(L->m, "nvvm.annotations",
                              LLVMMetadataAsValue(L->c, LLVMMDNodeInContext2(L->c, md, 3)));
}

/* The kernel function: parameters in the ABI of rt_params_pack (docs/runtime.md). */
static bool signature(lw *L) {
  const ir_kernel *k = L->k;
  LLVMTypeRef pt[IR_MAX_ARGS * (1 + 2 * IR_MAX_RANK)];
  int np = 0;
  for (int a = 0; a < k->nargs; a++) {
    const ir_arg *ka = &k->args[a];
    if (ka->kind == ARG_TENSOR) {
      pt[np++] = L->p1;
      for (int i = 0; i < ka->value->ty->rank; i++)
        pt[np++] = L->i32;
      for (int i = 0; i < ka->value->ty->rank; i++)
        pt[np++] = L->i64;
    } else if (ka->kind == ARG_PTR) {
      pt[np++] = L->p1;
    } else if (k->syms[ka->sym].kind != SYM_CONST) {
      ir_kind sk = k->syms[ka->sym].ty;
      if (sk == IR_F8E4M3 || sk == IR_F8E5M2)
        return fail(L, ka->loc, "f8 parameters are not lowered yet");
      pt[np++] = sk == IR_I1 ? L->i8 : ty(L, sk);
    }
  }
  L->fn = LLVMAddFunction(L->m, k->name, LLVMFunctionType(L->vd, pt, (unsigned)np, 0));
  np = 0;
  char name[IR_MAX_NAME + 32];
  for (int a = 0; a < k->nargs; a++) {
    const ir_arg *ka = &k->args[a];
    argp *p = &L->args[a];
    if (ka->kind == ARG_TENSOR || ka->kind == ARG_PTR) {
      p->ptr = LLVMGetParam(L->fn, (unsigned)np++);
      LLVMSetValueName2(p->ptr, ka->name, strlen(ka->name));
      tv *t = &L->vals[ka->value->id];
      t->n = 1;
      t->r = alloc(L, sizeof(LLVMValueRef));
      t->r[0] = p->ptr;
    }
    if (ka->kind == ARG_TENSOR) {
      int rank = ka->value->ty->rank;
      for (int i = 0; i < rank; i++) {
        p->shape[i] = LLVMGetParam(L->fn, (unsigned)np++);
        snprintf(name, sizeof name, "%s.shape%d", ka->name, i);
        LLVMSetValueName2(p->shape[i], name, strlen(name));
      }
      for (int i = 0; i < rank; i++) {
        p->stride[i] = LLVMGetParam(L->fn, (unsigned)np++);
        snprintf(name, sizeof name, "%s.stride%d", ka->name, i);
        LLVMSetValueName2(p->stride[i], name, strlen(name));
      }
    } else if (ka->kind == ARG_SCALAR && k->syms[ka->sym].kind != SYM_CONST) {
      p->scalar = LLVMGetParam(L->fn, (unsigned)np++);
      LLVMSetValueName2(p->scalar, ka->name, strlen(ka->name));
    }
  }
  annotate(L, "kernel", 1);
  annotate(L, "maxntidx", L->threads);
  /* .minnctapersm 1: without it ptxas trades registers for occupancy it guesses from maxntid,
   * and spills small kernels at ~72 registers */
  annotate(L, "minctasm", 1);
  return true;
}

static bool build(lw *L) {
  const ir_kernel *k = L->k;
  LLVMContextRef c = L->c;
  L->i1 = LLVMInt1TypeInContext(c);
  L->i8 = LLVMInt8TypeInContext(c);
  L->i16 = LLVMInt16TypeInContext(c);
  L->i32 = LLVMInt32TypeInContext(c);
  L->i64 = LLVMInt64TypeInContext(c);
  L->f16 = LLVMHalfTypeInContext(c);
  L->bf16 = LLVMBFloatTypeInContext(c);
  L->f32 = LLVMFloatTypeInContext(c);
  L->f64 = LLVMDoubleTypeInContext(c);
  L->p1 = LLVMPointerTypeInContext(c, 1);
  L->vd = LLVMVoidTypeInContext(c);
  L->threads = L->g->warps * LY_WARP;
  for (L->nbits = 0; (1 << L->nbits) < L->threads; L->nbits++)
    ;
  L->args = alloc(L, sizeof(argp) * (size_t)(k->nargs ? k->nargs : 1));
  L->sym = alloc(L, sizeof(LLVMValueRef) * (size_t)(k->nsyms ? k->nsyms : 1));
  L->symf = alloc(L, sizeof(bool) * (size_t)(k->nsyms ? k->nsyms : 1));
  L->vals = alloc(L, sizeof(tv) * (size_t)k->nvalues);
  L->uses = alloc(L, sizeof(int) * (size_t)k->nvalues);
  L->user = alloc(L, sizeof(ir_op *) * (size_t)k->nvalues);
  if (!k->specialized)
    return fail(L, (ir_loc){0}, "the lowering needs a specialized kernel");
  if (!check_kinds(L, k->body) || !signature(L))
    return false;
  count_uses(L, k->body);
  L->stages = 1;
  for (int i = 0; i < k->nsyms; i++)
    if (k->syms[i].kind == SYM_TUNABLE && !strcmp(k->syms[i].name, "STAGES") && !k->syms[i].def.isf)
      L->stages = (int)k->syms[i].def.i;

  LLVMTypeRef sty = LLVMArrayType(L->i8, 0);
  L->smem = LLVMAddGlobalInAddressSpace(L->m, sty, "tilec_smem", 3);
  LLVMSetLinkage(L->smem, LLVMExternalLinkage);
  LLVMSetAlignment(L->smem, SMEM_ALIGN);
  L->pb = LLVMCreateBuilderInContext(c);
  L->b = LLVMCreateBuilderInContext(c);
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(c, L->fn, "entry");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c, L->fn, "body");
  LLVMPositionBuilderAtEnd(L->pb, entry);
  LLVMPositionBuilderAtEnd(L->b, body);
  L->tid = sreg(L, "llvm.nvvm.read.ptx.sreg.tid.x");
  if (!lower_block(L, k->body))
    return false;
  LLVMBuildRetVoid(L->b);
  LLVMBuildBr(L->pb, body);
  return true;
}

static char *dupmem(const char *p, size_t n) {
  char *s = malloc(n + 1);
  if (s) {
    memcpy(s, p, n);
    s[n] = 0;
  }
  return s;
}

/* The default optimizer: LLVM 19's default<O3> for NVPTX as `opt -print-pipeline-passes` spells
 * it, minus what does nothing for one kernel with no calls (coroutines, OpenMP, call-site and
 * called-value passes, control-height reduction, loop distribution/vectorization/load
 * elimination, float2int, profile and remark passes) and minus 5 of its 8 instcombine runs
 * (the 2nd and the last four): instcombine was 57 % of O3's time on the default matmul. On the
 * default configs of the four kernels it gives the PTX of default<O3> (byte for byte for three,
 * 2 lines apart for bsattention), and the same ptxas registers, spills and SASS count on 27
 * config x target pairs, with 26-30 % less optimizer work (docs/codegen.md, "Compile time").
 * Nor does it run the SLP vectorizer (and the vector-combine after it): it was a third of the
 * optimizer's time, spent on the lowering's build-vectors, and what it found the lowering now
 * emits itself (paired f32 -> f16/bf16 conversions, loaded runs joined as vectors, vector
 * shared-memory accesses of wrapped layouts). */
#define SCFG                                                                                       \
  "simplifycfg<bonus-inst-threshold=1;no-forward-switch-cond;switch-range-to-icmp;"                \
  "no-switch-to-lookup;keep-loops;no-hoist-common-insts;no-sink-common-insts;"                     \
  "speculate-blocks;simplify-cond-branch;no-speculate-unpredictables>"
#define SCFG_EARLY                                                                                 \
  "simplifycfg<bonus-inst-threshold=1;no-forward-switch-cond;"                                     \
  "no-switch-range-to-icmp;no-switch-to-lookup;keep-loops;no-hoist-common-insts;"                  \
  "no-sink-common-insts;speculate-blocks;simplify-cond-branch;"                                    \
  "no-speculate-unpredictables>"
#define SCFG_SINK                                                                                  \
  "simplifycfg<bonus-inst-threshold=1;no-forward-switch-cond;switch-range-to-icmp;"                \
  "no-switch-to-lookup;keep-loops;hoist-common-insts;sink-common-insts;"                           \
  "speculate-blocks;simplify-cond-branch;no-speculate-unpredictables>"
#define SCFG_LATE                                                                                  \
  "simplifycfg<bonus-inst-threshold=1;no-forward-switch-cond;switch-range-to-icmp;"                \
  "no-switch-to-lookup;keep-loops;no-hoist-common-insts;no-sink-common-insts;"                     \
  "speculate-blocks;simplify-cond-branch;speculate-unpredictables>"
#define SCFG_VEC                                                                                   \
  "simplifycfg<bonus-inst-threshold=1;forward-switch-cond;switch-range-to-icmp;"                   \
  "switch-to-lookup;no-keep-loops;hoist-common-insts;sink-common-insts;"                           \
  "speculate-blocks;simplify-cond-branch;no-speculate-unpredictables>"
#define INSTCOMBINE "instcombine<max-iterations=1;no-use-loop-info;no-verify-fixpoint>"

/* LLVM 19's default<O3> for one NVPTX kernel, without the passes that change none of the
 * PTX of tilec's kernels — speculative-execution, jump-threading and tailcallelim (twice each),
 * aggressive-instcombine, constraint-elimination, loop-idiom, mldst-motion, bdce, memcpyopt,
 * dse, move-auto-init, loop-sink (session 11: each removal checked alone on the four defaults,
 * then all together byte-identical PTX on 11 configs x sm_80/sm_89/sm_90a in both variants;
 * correlated-propagation, reassociate and div-rem-pairs do change it) — and of those that do
 * nothing for one kernel without calls (docs/codegen.md). G(...) marks what only the generic
 * variant runs: G = KEEP there, DROP in the aligned variant (below). */
// clang-format off
#define O3_PASSES(G)                                                                               \
  "forceattrs,function(nvvm-reflect,nvvm-intr-range),inferattrs,"                                  \
  "function<eager-inv>(lower-expect," SCFG_EARLY ",sroa<modify-cfg>,early-cse<>),"                 \
  G("ipsccp,") "globalopt,function<eager-inv>(mem2reg," INSTCOMBINE "," SCFG                       \
  "),always-inline,require<globals-aa>,function(invalidate<aa>),"                                  \
  "require<profile-summary>,cgscc(devirt<4>(inline,"                                               \
  "function-attrs<skip-non-recursive-function-attrs>,argpromotion,"                                \
  "function<eager-inv;no-rerun>(sroa<modify-cfg>,early-cse<memssa>,"                               \
  "correlated-propagation," SCFG "," SCFG ",reassociate,loop-mssa(loop-instsimplify,"              \
  "loop-simplifycfg,licm<no-allowspeculation>,"                                                    \
  "loop-rotate<header-duplication;no-prepare-for-lto>,licm<allowspeculation>,"                     \
  "simple-loop-unswitch<nontrivial;trivial>)," SCFG "," INSTCOMBINE                                \
  ",loop(indvars,simple-loop-unswitch<nontrivial;trivial>,loop-deletion,"                          \
  "loop-unroll-full),sroa<modify-cfg>,vector-combine,gvn<>,sccp," G(INSTCOMBINE ",")               \
  "correlated-propagation,adce,loop-mssa(licm<allowspeculation>)," SCFG_SINK                       \
  "),function-attrs,function(require<should-not-run-function-passes>))),"                          \
  "deadargelim,globalopt,globaldce,elim-avail-extern,rpo-function-attrs,"                          \
  "recompute-globalsaa,function<eager-inv>(lower-constant-intrinsics,"                             \
  "loop(loop-rotate<header-duplication;no-prepare-for-lto>,loop-deletion),"                        \
  "inject-tli-mappings,infer-alignment," SCFG_VEC ",loop-unroll<O3>,transform-warning,"            \
  "sroa<preserve-cfg>,infer-alignment,loop-mssa(licm<allowspeculation>),"                          \
  "alignment-from-assumptions,instsimplify,div-rem-pairs," SCFG_LATE                               \
  "),globaldce,constmerge,function(annotation-remarks)"
// clang-format on
#define KEEP(s) s
#define DROP(s) ""

static const char o3_passes[] = O3_PASSES(KEEP);

/* The aligned variant's optimizer also leaves out the third instcombine (after GVN; the same
 * ptxas registers and SASS on the 8 measured configs; in the generic variant it mattered:
 * attention BM=128 +32 SASS instructions without it) and IPSCCP (one kernel, no calls; SCCP
 * runs later; byte-identical PTX of the aligned defaults, while the generic PTX changes with
 * the same counts). */
static const char o3_aligned_passes[] = O3_PASSES(DROP);
/* CG_OPT_FAST: the lowering's IR is straight-line and already unrolled; what it needs is
 * common subexpressions, folding and loop-invariant code motion (measured in docs/codegen.md). */
static const char fast_passes[] =
    "function(sroa,early-cse<memssa>,instcombine,simplifycfg,loop-mssa(licm),gvn,instcombine,"
    "simplifycfg)";

/* Number of LLVM instructions in m (the IR size the optimizer and NVPTX scale with). */
static int count_insts(LLVMModuleRef m) {
  int n = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(f); bb; bb = LLVMGetNextBasicBlock(bb))
      for (LLVMValueRef i = LLVMGetFirstInstruction(bb); i; i = LLVMGetNextInstruction(i))
        n++;
  return n;
}

/* Largest dynamic shared memory of one CTA (opt-in), per SM version. */
static int64_t smem_limit(int sm) {
  if (sm == 86 || sm == 89)
    return 101376;
  if (sm >= 90)
    return 232448;
  return 166912;
}

/* TILEC_DUMP of a module's text at one stage (codegen/dump.c). */
static void dump_module(const char *kernel, unsigned long n, const char *stage, LLVMModuleRef m) {
  if (!n || !cg_dump_wanted(stage))
    return;
  char *text = LLVMPrintModuleToString(m);
  cg_dump(kernel, n, stage, text);
  LLVMDisposeMessage(text);
}

int cg_lower(const struct cc_gpu *g, const char *arch, unsigned flags, cg_output *out, char *err,
             size_t errcap) {
  const struct cg_target *t = cg_target_find(arch);
  lw L;
  ir_diag d;
  LLVMTargetMachineRef tm = NULL, tm84 = NULL; /* tm: the thread's (cached); tm84: ours */
  LLVMTargetDataRef dl = NULL;
  LLVMPassBuilderOptionsRef po = NULL;
  LLVMMemoryBufferRef buf = NULL;
  char *msg = NULL;
  int rc = -1;
  double t0 = now_ms(), t1, t2;

  memset(out, 0, sizeof *out);
  memset(&L, 0, sizeof L);
  if (err && errcap)
    err[0] = 0;
  if (!t) {
    snprintf(err, errcap, "unknown target '%s' (known: sm_80 sm_86 sm_87 sm_89 sm_90 sm_90a)",
             arch ? arch : "(null)");
    return -1;
  }
  if (!(tm = cg_thread_target_machine(t, err, errcap)))
    return -1;
  unsigned long dump_n = cg_dump_next(); /* TILEC_DUMP: 0 when unset */
  if (dump_n && cg_dump_wanted("gpu")) {
    char *text = cc_gpu_print(g);
    cg_dump(g->k->name, dump_n, "gpu", text);
    free(text);
  }
  L.g = g;
  L.k = g->k;
  L.d = &d;
  L.no_swizzle = flags & CG_NO_SWIZZLE;
  L.aligned = flags & CG_ALIGNED;
  L.sm = t->sm;
  L.arena = ir_arena_new();
  L.c = LLVMContextCreate();
  L.m = LLVMModuleCreateWithNameInContext(g->k->name, L.c);
  LLVMSetTarget(L.m, cg_triple());
  dl = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(L.m, dl);
  snprintf(out->name, sizeof out->name, "%s", g->k->name);

  if (!build(&L)) {
    snprintf(err, errcap, "%s", d.msg);
    goto fail;
  }
  if (L.smem_bytes > smem_limit(t->sm)) {
    snprintf(err, errcap,
             "%s: kernel '%s' needs %lld bytes of shared memory; %s allows %lld per block",
             g->k->file ? g->k->file : "<kernel>", g->k->name, (long long)L.smem_bytes, t->arch,
             (long long)smem_limit(t->sm));
    goto fail;
  }
  if (L.f8_mma && strcmp(t->ptx_feature, "+ptx84") < 0) {
    /* mma with .e4m3/.e5m2 needs PTX ISA 8.4 (CUDA 12.4); only kernels that use it get it */
    struct cg_target t84 = *t;
    t84.ptx_feature = "+ptx84";
    if (!(tm84 = cg_target_machine(&t84, err, errcap))) /* rare: not cached per thread */
      goto fail;
    tm = tm84;
  }
  if (LLVMVerifyModule(L.m, LLVMReturnStatusAction, &msg)) {
    snprintf(err, errcap, "internal error: the lowering built an invalid LLVM module: %.1500s",
             msg ? msg : "?");
    goto fail;
  }
  LLVMDisposeMessage(msg);
  msg = NULL;
  t1 = now_ms();
  out->stats.lower_ms = t1 - t0;
  out->stats.ir_lowered = count_insts(L.m);
  dump_module(g->k->name, dump_n, "llvm", L.m);
  if (!(flags & CG_NO_OPT)) {
    po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef perr = LLVMRunPasses(L.m,
                                      flags & CG_OPT_FAST      ? fast_passes
                                      : flags & CG_OPT_LLVM_O3 ? "default<O3>"
                                      : flags & CG_ALIGNED     ? o3_aligned_passes
                                                               : o3_passes,
                                      tm, po);
    if (perr) {
      char *emsg = LLVMGetErrorMessage(perr);
      snprintf(err, errcap, "LLVM O3 pipeline failed: %s", emsg ? emsg : "?");
      LLVMDisposeErrorMessage(emsg);
      goto fail;
    }
  }
  out->stats.ir_optimized = count_insts(L.m);
  if (!(flags & CG_NO_OPT))
    dump_module(g->k->name, dump_n, "opt", L.m);
  t2 = now_ms();
  out->stats.opt_ms = t2 - t1;
  if (flags & CG_EMIT_LLVM) {
    char *text = LLVMPrintModuleToString(L.m);
    out->llvm = dupmem(text, strlen(text));
    LLVMDisposeMessage(text);
    if (!out->llvm) {
      snprintf(err, errcap, "out of memory");
      goto fail;
    }
  }
  if (flags & CG_EMIT_PTX) {
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, L.m, LLVMAssemblyFile, &msg, &buf)) {
      snprintf(err, errcap, "PTX emission for %s failed: %s", t->arch, msg ? msg : "?");
      goto fail;
    }
    out->ptx = dupmem(LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
    if (!out->ptx) {
      snprintf(err, errcap, "out of memory");
      goto fail;
    }
  }
  out->stats.emit_ms = now_ms() - t2;
  if (dump_n && out->ptx)
    cg_dump(g->k->name, dump_n, "ptx", out->ptx);
  out->stats.threads = L.threads;
  out->stats.smem_bytes = (int)L.smem_bytes;
  out->stats.mma = L.mma;
  out->stats.barriers = L.barriers;
  out->stats.ldmatrix = L.ldmatrix;
  out->stats.cpasync = L.cpasync;
  rc = 0;

fail:
  if (rc)
    cg_output_free(out);
  for (linfo *li = L.infos; li; li = li->next)
    ly_affine_free(&li->a);
  if (msg)
    LLVMDisposeMessage(msg);
  if (buf)
    LLVMDisposeMemoryBuffer(buf);
  if (po)
    LLVMDisposePassBuilderOptions(po);
  if (L.b)
    LLVMDisposeBuilder(L.b);
  if (L.pb)
    LLVMDisposeBuilder(L.pb);
  if (L.m)
    LLVMDisposeModule(L.m);
  if (dl)
    LLVMDisposeTargetData(dl);
  if (L.c)
    LLVMContextDispose(L.c);
  if (tm84)
    LLVMDisposeTargetMachine(tm84);
  ir_arena_free(L.arena);
  return rc;
}

void cg_output_free(cg_output *o) {
  if (!o)
    return;
  free(o->llvm);
  free(o->ptx);
  memset(o, 0, sizeof *o);
}
