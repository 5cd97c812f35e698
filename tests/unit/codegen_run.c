/* codegen_run.c - runs the LLVM IR of the lowering on the CPU and checks the kernels' outputs.
 *
 * No GPU is needed: a small SIMT interpreter executes the unoptimized LLVM IR that cg_lower
 * builds (CG_NO_OPT), one CTA at a time, its threads meeting at the collective points: bar.sync,
 * shfl.sync.bfly, mma.sync and ldmatrix, whose fragment semantics are written here from the PTX
 * ISA, independently of compiler/layout.c. cp.async copies land only at their wait_group, and
 * shared-memory writes become visible to other threads only at a bar.sync: an access that
 * relies on a missing wait or barrier is an error (pending()); warps run ahead of each other to
 * their next barrier to expose it. Global memory is the host buffers of kn_problem, passed
 * through rt_params_pack (so the kernel ABI is checked too); every memory access is checked
 * against the buffers and the dynamic shared memory the lowering reported. The outputs are
 * compared with the double-precision references (kn_problem_check), at odd shapes and several
 * configs of each built-in kernel; bank conflicts of ldmatrix and cp.async are counted.
 * ex2/lg2/rsqrt are exact here (approximations on the GPU).
 */
#include "codegen/codegen.h"
#include "compiler/gpu.h"
#include "ir/ir.h"
#include "kernels/builtin_sources.h"
#include "kernels/problem.h"
#include "runtime/rt.h"
#include "tests/unit/check.h"
#include "tests/unit/files.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <llvm-c/Core.h>
#include <llvm-c/IRReader.h>

/* ---- decoded program ------------------------------------------------------------------- */

typedef struct V {
  unsigned char b[16];
} V;

typedef enum { T_VOID, T_INT, T_HALF, T_BF16, T_F32, T_F64, T_PTR, T_VEC, T_STRUCT } tkind;

typedef struct tdesc {
  tkind k;
  int bits;  /* T_INT */
  int n;     /* T_VEC lanes */
  tkind ek;  /* T_VEC element kind */
  int ebits; /* T_VEC element bits (ints) */
  int size;  /* bytes */
} tdesc;

typedef struct opd {
  int slot; /* -1: constant c */
  V c;
} opd;

enum {
  C_NONE,
  C_TID,
  C_CTAID,
  C_NCTAID,
  C_BAR,
  C_SHFL,
  C_MMA_BF16,
  C_MMA_F16,
  C_MMA_F8, /* inline PTX mma.m16n8k32 .e4m3/.e5m2: axis = A kind, width = B kind */
  C_MAXIMUM,
  C_MINIMUM,
  C_MAXNUM,
  C_MINNUM,
  C_SMAX,
  C_SMIN,
  C_UMAX,
  C_UMIN,
  C_ABS,
  C_FABS,
  C_SQRT,
  C_CEIL,
  C_EX2,
  C_LG2,
  C_RSQRT,
  C_FPTOSI_SAT,
  C_CVT2, /* cvt.rn.{b}f16x2.f32 d, hi, lo: element 0 of the result is lo */
  C_LDG,
  C_STG,
  C_LDM,
  C_CPASYNC,
  C_COMMIT,
  C_WAIT,
};

typedef struct ins {
  LLVMOpcode op;
  int dst;
  int n;
  opd *o;
  tdesc t, t0;
  int pred;
  int call, axis, width;
  unsigned idx;
  int64_t esize;
  int ibits; /* GEP: index bits */
  int succ[2];
  int *inb;
} ins;

typedef struct prog {
  ins *ins;
  int nins;
  int *bfirst; /* first instruction of each block */
  int nblk;
  int nslots, nparams;
  tdesc *ptype;
  LLVMValueRef *keys; /* hash: value -> slot or block */
  int *vals;
  size_t cap;
  uint64_t smem;
  int64_t frame; /* bytes of local memory per thread (the allocas, 16-aligned each) */
  char err[512];
} prog;

static size_t hslot(prog *P, LLVMValueRef k) {
  size_t h = ((uintptr_t)k >> 4) * 0x9E3779B97F4A7C15ull;
  for (size_t i = h % P->cap;; i = (i + 1) % P->cap)
    if (P->keys[i] == k || !P->keys[i])
      return i;
}

static void hput(prog *P, LLVMValueRef k, int v) {
  size_t i = hslot(P, k);
  P->keys[i] = k;
  P->vals[i] = v;
}

static int hget(prog *P, LLVMValueRef k) {
  size_t i = hslot(P, k);
  return P->keys[i] ? P->vals[i] : -1;
}

static int tbytes(int bits) { return bits <= 8 ? 1 : bits / 8; }

static tdesc desc(LLVMTypeRef t) {
  tdesc d = {T_VOID, 0, 0, T_VOID, 0, 0};
  switch (LLVMGetTypeKind(t)) {
  case LLVMIntegerTypeKind:
    d.k = T_INT;
    d.bits = (int)LLVMGetIntTypeWidth(t);
    d.size = tbytes(d.bits);
    break;
  case LLVMHalfTypeKind:
    d.k = T_HALF, d.size = 2;
    break;
  case LLVMBFloatTypeKind:
    d.k = T_BF16, d.size = 2;
    break;
  case LLVMFloatTypeKind:
    d.k = T_F32, d.size = 4;
    break;
  case LLVMDoubleTypeKind:
    d.k = T_F64, d.size = 8;
    break;
  case LLVMPointerTypeKind:
    d.k = T_PTR, d.size = 8, d.bits = 64;
    break;
  case LLVMVectorTypeKind: {
    tdesc e = desc(LLVMGetElementType(t));
    d.k = T_VEC;
    d.n = (int)LLVMGetVectorSize(t);
    d.ek = e.k;
    d.ebits = e.bits;
    d.size = d.n * e.size;
    break;
  }
  case LLVMStructTypeKind:
    d.k = T_STRUCT, d.size = 16;
    break;
  default:
    break;
  }
  return d;
}

static uint64_t mask(uint64_t x, int bits) { return bits >= 64 ? x : x & ((1ull << bits) - 1); }

static uint64_t geti(const V *v, int bits) {
  uint64_t x = 0;
  memcpy(&x, v->b, (size_t)tbytes(bits));
  return mask(x, bits);
}

static int64_t gets(const V *v, int bits) {
  uint64_t x = geti(v, bits);
  if (bits < 64 && (x >> (bits - 1) & 1))
    x |= ~0ull << bits;
  return (int64_t)x;
}

static void seti(V *v, uint64_t x, int bits) {
  memset(v, 0, sizeof *v);
  x = mask(x, bits);
  memcpy(v->b, &x, (size_t)tbytes(bits));
}

static double getf_raw(const unsigned char *p, tkind k) {
  uint16_t h;
  float f;
  double d;
  switch (k) {
  case T_HALF:
    memcpy(&h, p, 2);
    return ir_f16_bits_to_f64(h);
  case T_BF16:
    memcpy(&h, p, 2);
    return ir_bf16_bits_to_f32(h);
  case T_F32:
    memcpy(&f, p, 4);
    return f;
  default:
    memcpy(&d, p, 8);
    return d;
  }
}

/* Stores x rounded once (to nearest even) to kind k. */
static void setf_raw(unsigned char *p, double x, tkind k) {
  uint16_t h;
  float f;
  switch (k) {
  case T_HALF:
    h = ir_f64_to_f16_bits(x);
    memcpy(p, &h, 2);
    return;
  case T_BF16:
    h = ir_f32_to_bf16_bits((float)ir_round_to(IR_BF16, x));
    memcpy(p, &h, 2);
    return;
  case T_F32:
    f = (float)x;
    memcpy(p, &f, 4);
    return;
  default:
    memcpy(p, &x, 8);
    return;
  }
}

static double getf(const V *v, tkind k) { return getf_raw(v->b, k); }

static void setf(V *v, double x, tkind k) {
  memset(v, 0, sizeof *v);
  setf_raw(v->b, x, k);
}

static bool cval(prog *P, LLVMValueRef c, V *out);

static bool fail_decode(prog *P, LLVMValueRef v, const char *what) {
  char *s = LLVMPrintValueToString(v);
  snprintf(P->err, sizeof P->err, "interpreter: %s: %.300s", what, s);
  LLVMDisposeMessage(s);
  return false;
}

static bool cval(prog *P, LLVMValueRef c, V *out) {
  memset(out, 0, sizeof *out);
  tdesc d = desc(LLVMTypeOf(c));
  if (LLVMIsAConstantInt(c)) {
    seti(out, LLVMConstIntGetZExtValue(c), d.bits);
    return true;
  }
  if (LLVMIsAConstantFP(c)) {
    LLVMBool loses;
    setf(out, LLVMConstRealGetDouble(c, &loses), d.k);
    return true;
  }
  if (LLVMIsAConstantPointerNull(c) || LLVMIsAUndefValue(c) || LLVMIsAConstantAggregateZero(c))
    return true;
  if (LLVMIsAGlobalVariable(c)) {
    memcpy(out->b, &P->smem, 8);
    return true;
  }
  if (LLVMIsAConstantDataVector(c) || LLVMIsAConstantVector(c)) {
    int es = d.size / d.n;
    for (int i = 0; i < d.n; i++) {
      V e;
      if (!cval(P, LLVMGetAggregateElement(c, (unsigned)i), &e))
        return false;
      memcpy(out->b + i * es, e.b, (size_t)es);
    }
    return true;
  }
  if (LLVMIsAConstantExpr(c) && LLVMGetConstOpcode(c) == LLVMGetElementPtr &&
      LLVMGetNumOperands(c) == 2) {
    V base, idx;
    if (!cval(P, LLVMGetOperand(c, 0), &base) || !cval(P, LLVMGetOperand(c, 1), &idx))
      return false;
    tdesc it = desc(LLVMTypeOf(LLVMGetOperand(c, 1))), et = desc(LLVMGetGEPSourceElementType(c));
    uint64_t a = geti(&base, 64) + (uint64_t)(gets(&idx, it.bits) * et.size);
    memcpy(out->b, &a, 8);
    return true;
  }
  return fail_decode(P, c, "unsupported constant");
}

static bool operand(prog *P, LLVMValueRef v, opd *o) {
  int s = hget(P, v);
  if (s >= 0 && !LLVMIsABasicBlock(v)) {
    o->slot = s;
    return true;
  }
  o->slot = -1;
  return cval(P, v, &o->c);
}

static const struct {
  const char *prefix;
  int code, axis;
} intrinsics[] = {
    {"llvm.nvvm.read.ptx.sreg.tid.x", C_TID, 0},
    {"llvm.nvvm.read.ptx.sreg.ctaid.x", C_CTAID, 0},
    {"llvm.nvvm.read.ptx.sreg.ctaid.y", C_CTAID, 1},
    {"llvm.nvvm.read.ptx.sreg.ctaid.z", C_CTAID, 2},
    {"llvm.nvvm.read.ptx.sreg.nctaid.x", C_NCTAID, 0},
    {"llvm.nvvm.read.ptx.sreg.nctaid.y", C_NCTAID, 1},
    {"llvm.nvvm.read.ptx.sreg.nctaid.z", C_NCTAID, 2},
    {"llvm.nvvm.barrier0", C_BAR, 0},
    {"llvm.nvvm.shfl.sync.bfly.", C_SHFL, 0},
    {"llvm.nvvm.mma.m16n8k16.row.col.bf16", C_MMA_BF16, 0},
    {"llvm.nvvm.mma.m16n8k16.row.col.f32.f32", C_MMA_F16, 0},
    {"llvm.maximum.", C_MAXIMUM, 0},
    {"llvm.minimum.", C_MINIMUM, 0},
    {"llvm.maxnum.", C_MAXNUM, 0},
    {"llvm.minnum.", C_MINNUM, 0},
    {"llvm.smax.", C_SMAX, 0},
    {"llvm.smin.", C_SMIN, 0},
    {"llvm.umax.", C_UMAX, 0},
    {"llvm.umin.", C_UMIN, 0},
    {"llvm.abs.", C_ABS, 0},
    {"llvm.fabs.", C_FABS, 0},
    {"llvm.sqrt.", C_SQRT, 0},
    {"llvm.ceil.", C_CEIL, 0},
    {"llvm.nvvm.ex2.approx.", C_EX2, 0},
    {"llvm.nvvm.lg2.approx.", C_LG2, 0},
    {"llvm.nvvm.rsqrt.approx.", C_RSQRT, 0},
    {"llvm.fptosi.sat.", C_FPTOSI_SAT, 0},
    {"llvm.nvvm.ff2bf16x2.rn", C_CVT2, 0},
    {"llvm.nvvm.ff2f16x2.rn", C_CVT2, 0},
};

/* The f8 kind a PTX type name at s stands for ("e4m3", "e5m2"), or 0. */
static int f8_kind(const char *s) {
  return !strncmp(s, "e4m3", 4) ? IR_F8E4M3 : !strncmp(s, "e5m2", 4) ? IR_F8E5M2 : 0;
}

/* The f8 mma the lowering emits as inline PTX, recognized in full:
 * mma.sync.aligned.m16n8k32.row.col.f32.<A>.<B>.f32 with A, B in {e4m3, e5m2}, outputs $0..$3
 * (f32), A $4..$7, B $8, $9 (b32), C $10..$13 (f32). */
static bool decode_mma_f8(const char *s, size_t len, ins *I) {
  static const char pre[] = "mma.sync.aligned.m16n8k32.row.col.f32.";
  static const char ops[] = ".f32 {$0, $1, $2, $3}, {$4, $5, $6, $7}, {$8, $9}, "
                            "{$10, $11, $12, $13};";
  size_t n = strlen(pre);
  if (len != n + 9 + strlen(ops) || strncmp(s, pre, n) || s[n + 4] != '.' ||
      strncmp(s + n + 9, ops, strlen(ops)))
    return false;
  I->axis = f8_kind(s + n);
  I->width = f8_kind(s + n + 5);
  I->call = C_MMA_F8;
  return I->axis && I->width && I->n == 10;
}

static bool decode_call(prog *P, LLVMValueRef in, ins *I) {
  LLVMValueRef f = LLVMGetCalledValue(in);
  if (LLVMIsAInlineAsm(f)) {
    size_t len;
    const char *s = LLVMGetInlineAsmAsmString(f, &len);
    if (!strncmp(s, "mma.", 4))
      return decode_mma_f8(s, len, I) ? true : fail_decode(P, in, "unknown mma inline asm");
    /* predicated global accesses: ld (addr, pred, fill...) / st (addr, value..., pred) of
     * .b8 .. .b64 or .v2/.v4.b32; one access wider than the GEP's element is a vector */
    const char *ld = strstr(s, "ld.global."), *st = strstr(s, "st.global.");
    const char *w = ld ? ld + 10 : st ? st + 10 : NULL;
    if (!w)
      return fail_decode(P, in, "unknown inline asm");
    I->call = ld ? C_LDG : C_STG;
    I->axis = 1; /* words */
    if (w[0] == 'v') {
      I->axis = atoi(w + 1);
      w += 3;
    }
    I->width = I->axis * (atoi(w + 1) / 8);
    if (I->width <= 0 || I->width > 16 || I->n != I->axis + 2)
      return fail_decode(P, in, "bad global access inline asm");
    LLVMValueRef addr = LLVMGetOperand(in, 0);
    if (LLVMIsAGetElementPtrInst(addr))
      I->idx = I->width > desc(LLVMGetGEPSourceElementType(addr)).size; /* a vector */
    return true;
  }
  size_t len;
  const char *name = LLVMGetValueName2(f, &len);
  static const char cpa[] = "llvm.nvvm.cp.async.cg.shared.global.16";
  if (!strncmp(name, cpa, strlen(cpa))) { /* (dst, src [, src-size]) */
    I->call = C_CPASYNC;
    return true;
  }
  if (!strcmp(name, "llvm.nvvm.cp.async.commit.group")) {
    I->call = C_COMMIT;
    return true;
  }
  if (!strcmp(name, "llvm.nvvm.cp.async.wait.group")) {
    I->call = C_WAIT;
    return true;
  }
  static const char ldm[] = "llvm.nvvm.ldmatrix.sync.aligned.m8n8.x";
  if (!strncmp(name, ldm, strlen(ldm))) { /* .x{1,2,4}[.trans].b16 */
    I->call = C_LDM;
    I->width = atoi(name + strlen(ldm));
    I->axis = strstr(name, ".trans.") != NULL;
    return I->width == 1 || I->width == 2 || I->width == 4 ? true
                                                           : fail_decode(P, in, "bad ldmatrix");
  }
  for (size_t i = 0; i < sizeof intrinsics / sizeof intrinsics[0]; i++)
    if (!strncmp(name, intrinsics[i].prefix, strlen(intrinsics[i].prefix))) {
      I->call = intrinsics[i].code;
      I->axis = intrinsics[i].axis;
      return true;
    }
  return fail_decode(P, in, "unknown call");
}

static bool decode(prog *P, LLVMValueRef fn) {
  int nins = 0, nblk = 0;
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(fn); b; b = LLVMGetNextBasicBlock(b), nblk++)
    for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i))
      nins++;
  P->nparams = (int)LLVMCountParams(fn);
  P->cap = (size_t)(nins + nblk + P->nparams) * 2 + 16;
  P->keys = calloc(P->cap, sizeof *P->keys);
  P->vals = calloc(P->cap, sizeof *P->vals);
  P->ins = calloc((size_t)nins, sizeof *P->ins);
  P->bfirst = calloc((size_t)nblk + 1, sizeof *P->bfirst);
  P->ptype = calloc((size_t)P->nparams + 1, sizeof *P->ptype);
  P->nins = nins;
  P->nblk = nblk;
  int slot = 0;
  for (int i = 0; i < P->nparams; i++) {
    LLVMValueRef p = LLVMGetParam(fn, (unsigned)i);
    P->ptype[i] = desc(LLVMTypeOf(p));
    hput(P, p, slot++);
  }
  int bi = 0, ii = 0;
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(fn); b; b = LLVMGetNextBasicBlock(b), bi++) {
    hput(P, LLVMBasicBlockAsValue(b), bi);
    P->bfirst[bi] = ii;
    for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i), ii++) {
      P->ins[ii].dst = -1;
      if (LLVMGetTypeKind(LLVMTypeOf(i)) != LLVMVoidTypeKind) {
        P->ins[ii].dst = slot;
        hput(P, i, slot++);
      }
    }
  }
  P->bfirst[nblk] = ii;
  P->nslots = slot;
  ii = 0;
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(fn); b; b = LLVMGetNextBasicBlock(b))
    for (LLVMValueRef in = LLVMGetFirstInstruction(b); in; in = LLVMGetNextInstruction(in), ii++) {
      ins *I = &P->ins[ii];
      I->op = LLVMGetInstructionOpcode(in);
      I->t = desc(LLVMTypeOf(in));
      int n = LLVMGetNumOperands(in);
      if (I->op == LLVMCall)
        n = (int)LLVMGetNumArgOperands(in);
      if (I->op == LLVMBr) {
        if (LLVMIsConditional(in)) {
          I->n = 1;
          I->o = calloc(1, sizeof *I->o);
          if (!operand(P, LLVMGetCondition(in), &I->o[0]))
            return false;
          I->succ[0] = hget(P, LLVMBasicBlockAsValue(LLVMGetSuccessor(in, 0)));
          I->succ[1] = hget(P, LLVMBasicBlockAsValue(LLVMGetSuccessor(in, 1)));
        } else {
          I->succ[0] = I->succ[1] = hget(P, LLVMBasicBlockAsValue(LLVMGetSuccessor(in, 0)));
        }
        continue;
      }
      if (I->op == LLVMPHI) {
        n = (int)LLVMCountIncoming(in);
        I->n = n;
        I->o = calloc((size_t)n, sizeof *I->o);
        I->inb = calloc((size_t)n, sizeof *I->inb);
        for (int k = 0; k < n; k++) {
          if (!operand(P, LLVMGetIncomingValue(in, (unsigned)k), &I->o[k]))
            return false;
          I->inb[k] = hget(P, LLVMBasicBlockAsValue(LLVMGetIncomingBlock(in, (unsigned)k)));
        }
        continue;
      }
      I->n = n;
      I->o = calloc((size_t)(n ? n : 1), sizeof *I->o);
      for (int k = 0; k < n; k++)
        if (!operand(P, LLVMGetOperand(in, (unsigned)k), &I->o[k]))
          return false;
      if (n)
        I->t0 = desc(LLVMTypeOf(LLVMGetOperand(in, 0)));
      switch (I->op) {
      case LLVMICmp:
        I->pred = (int)LLVMGetICmpPredicate(in);
        break;
      case LLVMFCmp:
        I->pred = (int)LLVMGetFCmpPredicate(in);
        break;
      case LLVMGetElementPtr:
        if (n != 2)
          return fail_decode(P, in, "GEP with several indices");
        I->esize = desc(LLVMGetGEPSourceElementType(in)).size;
        I->ibits = desc(LLVMTypeOf(LLVMGetOperand(in, 1))).bits;
        break;
      case LLVMExtractValue:
        I->idx = LLVMGetIndices(in)[0];
        break;
      case LLVMCall:
        if (!decode_call(P, in, I))
          return false;
        break;
      case LLVMLoad:
      case LLVMStore:
      case LLVMAdd:
      case LLVMSub:
      case LLVMMul:
      case LLVMSDiv:
      case LLVMUDiv:
      case LLVMSRem:
      case LLVMURem:
      case LLVMShl:
      case LLVMLShr:
      case LLVMAShr:
      case LLVMAnd:
      case LLVMOr:
      case LLVMXor:
      case LLVMFAdd:
      case LLVMFSub:
      case LLVMFMul:
      case LLVMFDiv:
      case LLVMFRem:
      case LLVMFNeg:
      case LLVMSelect:
      case LLVMTrunc:
      case LLVMZExt:
      case LLVMSExt:
      case LLVMFPTrunc:
      case LLVMFPExt:
      case LLVMSIToFP:
      case LLVMUIToFP:
      case LLVMFPToSI:
      case LLVMBitCast:
      case LLVMPtrToInt:
      case LLVMIntToPtr:
      case LLVMInsertElement:
      case LLVMExtractElement:
      case LLVMRet:
        break;
      case LLVMShuffleVector: { /* the mask in inb (-1: undefined element) */
        int m = (int)LLVMGetNumMaskElements(in);
        I->inb = calloc((size_t)m, sizeof *I->inb);
        for (int e = 0; e < m; e++) {
          int x = LLVMGetMaskValue(in, (unsigned)e);
          I->inb[e] = x == LLVMGetUndefMaskElem() ? -1 : x;
        }
        break;
      }
      case LLVMAlloca: { /* [n x T] or T in this thread's frame: I->idx = offset */
        LLVMTypeRef at = LLVMGetAllocatedType(in);
        int64_t size = LLVMGetTypeKind(at) == LLVMArrayTypeKind
                           ? (int64_t)LLVMGetArrayLength2(at) * desc(LLVMGetElementType(at)).size
                           : desc(at).size;
        if (size <= 0)
          return fail_decode(P, in, "alloca of an unsupported type");
        I->idx = (unsigned)P->frame;
        P->frame += (size + 15) / 16 * 16;
        break;
      }
      default:
        return fail_decode(P, in, "unsupported instruction");
      }
    }
  return true;
}

static void prog_free(prog *P) {
  for (int i = 0; i < P->nins; i++) {
    free(P->ins[i].o);
    free(P->ins[i].inb);
  }
  free(P->ins);
  free(P->bfirst);
  free(P->ptype);
  free(P->keys);
  free(P->vals);
}

/* ---- execution ------------------------------------------------------------------------- */

enum { RUN, WAIT, DONE };

typedef struct thr {
  int blk, prev, pc, state;
  V *r;
} thr;

typedef struct range {
  uint64_t lo, hi;
} range;

typedef struct sim {
  prog *P;
  int threads;
  uint32_t ctaid[3], nctaid[3];
  range mem[IR_MAX_ARGS + 2]; /* the arguments, shared memory, local memory */
  int nmem;
  char err[512];
  long long steps;
  V *phitmp; /* one entry per instruction */
  uint64_t smem_bytes;
  long long ldm_accesses, ldm_conflicts; /* 8x8 matrices read, extra bank-group wavefronts */
  long long cp_accesses, cp_conflicts;   /* cp.async of 8 lanes, extra bank-group wavefronts */
  long long gvec;                        /* vector loads/stores of global memory */
  int *shadow; /* per shared-memory byte: 0, PENDING | tid, LANDED | tid (written, unpublished) */
  struct cpy *cps; /* cp.async copies not yet landed */
  int ncps, capcps;
  int *groups;          /* per thread: cp.async groups committed so far */
  unsigned char *local; /* threads x P->frame bytes: each thread's allocas */
} sim;

/* One cp.async in flight: issued by tid, in commit group `group` (-1: not committed yet). */
struct cpy {
  uint64_t dst, src;
  int srcsize, tid, group;
};

enum { PENDING = 1 << 20, LANDED = 2 << 20, TIDMASK = (1 << 20) - 1 };

static const V *val(thr *T, const opd *o) { return o->slot >= 0 ? &T->r[o->slot] : &o->c; }

static bool mem_ok(sim *S, uint64_t a, int size) {
  for (int i = 0; i < S->nmem; i++)
    if (a >= S->mem[i].lo && a + (uint64_t)size <= S->mem[i].hi)
      return true;
  return false;
}

/* Whether a is in global memory (not shared, not a thread's local array). */
static bool is_global(const sim *S, uint64_t a) {
  uint64_t lo = (uint64_t)(uintptr_t)S->local;
  uint64_t hi = lo + (uint64_t)S->threads * (uint64_t)S->P->frame;
  return (a < S->P->smem || a >= S->P->smem + S->smem_bytes) && (a < lo || a >= hi);
}

/* A failed access: outside every buffer, or not aligned to its size (a fault on the GPU). */
static int memfail(sim *S, uint64_t a, int size, const char *what) {
  snprintf(S->err, sizeof S->err, "%s of %d bytes at %#llx is %s", what, size,
           (unsigned long long)a,
           size > 0 && a % (uint64_t)size ? "not aligned to its size" : "outside every buffer");
  return -1;
}

static double fmaxnan(double a, double b, bool max) {
  if (isnan(a) || isnan(b))
    return NAN;
  return max ? (a > b ? a : b) : (a < b ? a : b);
}

static bool fcmp(int p, double a, double b) {
  bool uno = isnan(a) || isnan(b);
  switch ((LLVMRealPredicate)p) {
  case LLVMRealOEQ:
    return !uno && a == b;
  case LLVMRealOGT:
    return !uno && a > b;
  case LLVMRealOGE:
    return !uno && a >= b;
  case LLVMRealOLT:
    return !uno && a < b;
  case LLVMRealOLE:
    return !uno && a <= b;
  case LLVMRealONE:
    return !uno && a != b;
  case LLVMRealUNE:
    return uno || a != b;
  case LLVMRealUEQ:
    return uno || a == b;
  default:
    return false;
  }
}

static bool icmp(int p, const V *x, const V *y, int bits) {
  uint64_t a = geti(x, bits), b = geti(y, bits);
  int64_t sa = gets(x, bits), sb = gets(y, bits);
  switch ((LLVMIntPredicate)p) {
  case LLVMIntEQ:
    return a == b;
  case LLVMIntNE:
    return a != b;
  case LLVMIntUGT:
    return a > b;
  case LLVMIntUGE:
    return a >= b;
  case LLVMIntULT:
    return a < b;
  case LLVMIntULE:
    return a <= b;
  case LLVMIntSGT:
    return sa > sb;
  case LLVMIntSGE:
    return sa >= sb;
  case LLVMIntSLT:
    return sa < sb;
  case LLVMIntSLE:
    return sa <= sb;
  }
  return false;
}

static void enter(sim *S, thr *T, int blk) {
  prog *P = S->P;
  T->prev = T->blk;
  T->blk = blk;
  T->pc = P->bfirst[blk];
  V *tmp = S->phitmp;
  int n = 0;
  for (int i = T->pc; i < P->bfirst[blk + 1] && P->ins[i].op == LLVMPHI; i++, n++) {
    const ins *I = &P->ins[i];
    int k = 0;
    while (k < I->n && I->inb[k] != T->prev)
      k++;
    tmp[n] = k < I->n ? *val(T, &I->o[k]) : (V){{0}};
  }
  for (int j = 0; j < n; j++)
    T->r[P->ins[T->pc + j].dst] = tmp[j];
  T->pc += n;
}

/* cp.async lands in shared memory only at the wait_group that covers it; what it landed, and
 * what a st.shared wrote, is visible to the other threads only after the next bar.sync. A read
 * of bytes still in flight, or written by another thread with no barrier since, is an error
 * (tid -1: a warp-collective read such as ldmatrix, which hands the data to other lanes); so is
 * any access to bytes in flight. A store (store: true) may overwrite another thread's unpublished
 * bytes: replicated registers store the same value from several threads. */
static int pending(sim *S, uint64_t a, int size, int tid, bool store) {
  if (!S->shadow || a < S->P->smem || a >= S->P->smem + S->smem_bytes)
    return 0;
  for (int i = 0; i < size && a + (uint64_t)i < S->P->smem + S->smem_bytes; i++) {
    int st = S->shadow[a + (uint64_t)i - S->P->smem];
    if (st & PENDING) {
      snprintf(S->err, sizeof S->err,
               "shared memory at offset %llu is accessed while the cp.async of thread %d to it "
               "is in flight (missing cp.async.wait_group)",
               (unsigned long long)(a + (uint64_t)i - S->P->smem), st & TIDMASK);
      return -1;
    }
    if ((st & LANDED) && (st & TIDMASK) != tid && !store) {
      snprintf(S->err, sizeof S->err,
               "shared memory at offset %llu, written by thread %d, is read by %s with no "
               "bar.sync in between",
               (unsigned long long)(a + (uint64_t)i - S->P->smem), st & TIDMASK,
               tid < 0 ? "a warp (ldmatrix)" : "another thread");
      return -1;
    }
  }
  return 0;
}

/* cp.async.cg.shared.global.16 [dst], [src], src-size: queued, lands at its wait_group. */
static int cp_issue(sim *S, int tid, uint64_t dst, uint64_t src, int srcsize) {
  if (dst % 16 || src % 16 || dst < S->P->smem || dst + 16 > S->P->smem + S->smem_bytes) {
    snprintf(S->err, sizeof S->err,
             "cp.async: shared %#llx / global %#llx is misaligned or outside shared memory",
             (unsigned long long)dst, (unsigned long long)src);
    return -1;
  }
  if (srcsize < 0 || srcsize > 16 || (srcsize && !mem_ok(S, src, srcsize)))
    return memfail(S, src, srcsize, "cp.async source");
  if (pending(S, dst, 16, tid, false))
    return -1;
  if (S->ncps == S->capcps) {
    S->capcps = S->capcps ? 2 * S->capcps : 256;
    S->cps = realloc(S->cps, sizeof *S->cps * (size_t)S->capcps);
    if (!S->cps)
      abort();
  }
  S->cps[S->ncps++] = (struct cpy){dst, src, srcsize, tid, -1};
  for (int i = 0; i < 16; i++)
    S->shadow[dst + (uint64_t)i - S->P->smem] = PENDING | tid;
  return 0;
}

static void cp_commit(sim *S, int tid) {
  for (int i = 0; i < S->ncps; i++)
    if (S->cps[i].tid == tid && S->cps[i].group < 0)
      S->cps[i].group = S->groups[tid];
  S->groups[tid]++;
}

/* cp.async.wait_group n: the copies of every group of tid but the n most recent land. */
static void cp_wait(sim *S, int tid, int n) {
  int j = 0;
  for (int i = 0; i < S->ncps; i++) {
    struct cpy *c = &S->cps[i];
    if (c->tid == tid && c->group >= 0 && c->group < S->groups[tid] - n) {
      unsigned char buf[16] = {0};
      memcpy(buf, (const void *)(uintptr_t)c->src, (size_t)c->srcsize);
      memcpy((void *)(uintptr_t)c->dst, buf, 16);
      for (int b = 0; b < 16; b++)
        S->shadow[c->dst + (uint64_t)b - S->P->smem] = LANDED | tid;
    } else {
      S->cps[j++] = *c;
    }
  }
  S->ncps = j;
}

/* bar.sync: what landed becomes visible to every thread. */
static void cp_publish(sim *S) {
  if (!S->shadow)
    return;
  for (uint64_t i = 0; i < S->smem_bytes; i++)
    if (S->shadow[i] & LANDED)
      S->shadow[i] = 0;
}

static double call1(int code, double x) {
  switch (code) {
  case C_FABS:
    return fabs(x);
  case C_SQRT:
    return sqrt(x);
  case C_CEIL:
    return ceil(x);
  case C_EX2:
    return exp2(x);
  case C_LG2:
    return log2(x);
  default: /* C_RSQRT */
    return 1 / sqrt(x);
  }
}

/* A call that one thread executes alone. */
static int call(sim *S, thr *T, const ins *I, V *r, int tid) {
  const V *a = I->n > 0 ? val(T, &I->o[0]) : NULL, *b = I->n > 1 ? val(T, &I->o[1]) : NULL;
  int bits = I->t.bits;
  switch (I->call) {
  case C_CVT2:
    memset(r, 0, sizeof *r);
    setf_raw(r->b, getf(b, T_F32), I->t.ek);
    setf_raw(r->b + 2, getf(a, T_F32), I->t.ek);
    return 0;
  case C_TID:
    seti(r, (uint64_t)tid, 32);
    return 0;
  case C_CTAID:
    seti(r, S->ctaid[I->axis], 32);
    return 0;
  case C_NCTAID:
    seti(r, S->nctaid[I->axis], 32);
    return 0;
  case C_MAXIMUM:
  case C_MINIMUM:
    setf(r, fmaxnan(getf(a, I->t.k), getf(b, I->t.k), I->call == C_MAXIMUM), I->t.k);
    return 0;
  case C_MAXNUM:
    setf(r, fmax(getf(a, I->t.k), getf(b, I->t.k)), I->t.k);
    return 0;
  case C_MINNUM:
    setf(r, fmin(getf(a, I->t.k), getf(b, I->t.k)), I->t.k);
    return 0;
  case C_SMAX:
  case C_SMIN: {
    int64_t x = gets(a, bits), y = gets(b, bits);
    seti(r, (uint64_t)((I->call == C_SMAX) == (x > y) ? x : y), bits);
    return 0;
  }
  case C_UMAX:
  case C_UMIN: {
    uint64_t x = geti(a, bits), y = geti(b, bits);
    seti(r, (I->call == C_UMAX) == (x > y) ? x : y, bits);
    return 0;
  }
  case C_ABS: {
    int64_t x = gets(a, bits);
    seti(r, (uint64_t)(x < 0 ? -x : x), bits);
    return 0;
  }
  case C_FPTOSI_SAT: {
    double x = getf(a, I->t0.k);
    int64_t v = isnan(x) ? 0 : x >= 0x1p63 ? INT64_MAX : x < -0x1p63 ? INT64_MIN : (int64_t)x;
    seti(r, (uint64_t)v, bits);
    return 0;
  }
  case C_LDG: { /* (addr, pred, fill...): words of 4 bytes side by side (struct fields) */
    uint64_t addr = geti(a, 64);
    int ws = I->width / I->axis;
    memset(r, 0, sizeof *r);
    for (int j = 0; j < I->axis; j++)
      memcpy(r->b + j * ws, val(T, &I->o[2 + j])->b, (size_t)ws);
    if (geti(b, 1)) {
      if (!mem_ok(S, addr, I->width) || addr % (uint64_t)I->width)
        return memfail(S, addr, I->width, "global load");
      memset(r, 0, sizeof *r);
      memcpy(r->b, (const void *)(uintptr_t)addr, (size_t)I->width);
      S->gvec += I->idx;
    }
    return 0;
  }
  case C_COMMIT:
    cp_commit(S, tid);
    return 0;
  case C_WAIT:
    cp_wait(S, tid, (int)geti(a, 32));
    return 0;
  case C_STG: { /* (addr, value..., pred) */
    uint64_t addr = geti(a, 64);
    int ws = I->width / I->axis;
    if (geti(val(T, &I->o[1 + I->axis]), 1)) {
      if (!mem_ok(S, addr, I->width) || addr % (uint64_t)I->width)
        return memfail(S, addr, I->width, "global store");
      for (int j = 0; j < I->axis; j++)
        memcpy((void *)(uintptr_t)(addr + (uint64_t)(j * ws)), val(T, &I->o[1 + j])->b, (size_t)ws);
      S->gvec += I->idx;
    }
    return 0;
  }
  default:
    setf(r, call1(I->call, getf(a, I->t.k)), I->t.k);
    return 0;
  }
}

/* Executes one instruction of T (tid: its thread index). Returns 0, or -1 with S->err. */
static int step(sim *S, thr *T, int tid) {
  prog *P = S->P;
  const ins *I = &P->ins[T->pc];
  V r;
  memset(&r, 0, sizeof r);
  const V *a = I->n > 0 ? val(T, &I->o[0]) : NULL, *b = I->n > 1 ? val(T, &I->o[1]) : NULL;
  int bits = I->t.bits;
  S->steps++;
  switch (I->op) {
  case LLVMRet:
    T->state = DONE;
    return 0;
  case LLVMAlloca:
    seti(&r, (uint64_t)(uintptr_t)(S->local + (size_t)tid * (size_t)P->frame + I->idx), 64);
    break;
  case LLVMBr:
    enter(S, T, I->succ[I->n && !geti(a, 1) ? 1 : 0]);
    return 0;
  case LLVMAdd:
    seti(&r, geti(a, bits) + geti(b, bits), bits);
    break;
  case LLVMSub:
    seti(&r, geti(a, bits) - geti(b, bits), bits);
    break;
  case LLVMMul:
    seti(&r, geti(a, bits) * geti(b, bits), bits);
    break;
  case LLVMSDiv:
  case LLVMSRem: {
    int64_t x = gets(a, bits), y = gets(b, bits);
    int64_t q = y == 0 || y == -1 ? 0 : I->op == LLVMSDiv ? x / y : x % y;
    seti(&r, (uint64_t)q, bits);
    break;
  }
  case LLVMUDiv:
  case LLVMURem: {
    uint64_t x = geti(a, bits), y = geti(b, bits);
    seti(&r, y == 0 ? 0 : I->op == LLVMUDiv ? x / y : x % y, bits);
    break;
  }
  case LLVMShl:
  case LLVMLShr:
  case LLVMAShr: {
    uint64_t sh = geti(b, bits);
    if (sh >= (uint64_t)bits)
      seti(&r, 0, bits);
    else if (I->op == LLVMShl)
      seti(&r, geti(a, bits) << sh, bits);
    else if (I->op == LLVMLShr)
      seti(&r, geti(a, bits) >> sh, bits);
    else
      seti(&r, (uint64_t)(gets(a, bits) >> sh), bits);
    break;
  }
  case LLVMAnd:
    seti(&r, geti(a, bits) & geti(b, bits), bits);
    break;
  case LLVMOr:
    seti(&r, geti(a, bits) | geti(b, bits), bits);
    break;
  case LLVMXor:
    seti(&r, geti(a, bits) ^ geti(b, bits), bits);
    break;
  case LLVMFAdd:
    setf(&r, getf(a, I->t.k) + getf(b, I->t.k), I->t.k);
    break;
  case LLVMFSub:
    setf(&r, getf(a, I->t.k) - getf(b, I->t.k), I->t.k);
    break;
  case LLVMFMul:
    setf(&r, getf(a, I->t.k) * getf(b, I->t.k), I->t.k);
    break;
  case LLVMFDiv:
    setf(&r, getf(a, I->t.k) / getf(b, I->t.k), I->t.k);
    break;
  case LLVMFRem:
    setf(&r, fmod(getf(a, I->t.k), getf(b, I->t.k)), I->t.k);
    break;
  case LLVMFNeg:
    setf(&r, -getf(a, I->t.k), I->t.k);
    break;
  case LLVMICmp:
    seti(&r, icmp(I->pred, a, b, I->t0.bits), 1);
    break;
  case LLVMFCmp:
    seti(&r, fcmp(I->pred, getf(a, I->t0.k), getf(b, I->t0.k)), 1);
    break;
  case LLVMSelect:
    r = geti(a, 1) ? *b : *val(T, &I->o[2]);
    break;
  case LLVMTrunc:
  case LLVMZExt:
    seti(&r, geti(a, I->t0.bits), bits);
    break;
  case LLVMSExt:
    seti(&r, (uint64_t)gets(a, I->t0.bits), bits);
    break;
  case LLVMFPTrunc:
  case LLVMFPExt:
    if (I->t.k == T_VEC) { /* elementwise (the paired f32 -> f16/bf16 conversion) */
      int es0 = I->t0.size / I->t0.n, es = I->t.size / I->t.n;
      for (int e = 0; e < I->t.n; e++)
        setf_raw(r.b + e * es, getf_raw(a->b + e * es0, I->t0.ek), I->t.ek);
    } else {
      setf(&r, getf(a, I->t0.k), I->t.k);
    }
    break;
  case LLVMSIToFP:
    setf(&r, (double)gets(a, I->t0.bits), I->t.k);
    break;
  case LLVMUIToFP:
    setf(&r, (double)geti(a, I->t0.bits), I->t.k);
    break;
  case LLVMFPToSI:
    seti(&r, (uint64_t)(int64_t)getf(a, I->t0.k), bits);
    break;
  case LLVMBitCast:
  case LLVMPtrToInt:
  case LLVMIntToPtr:
    memcpy(r.b, a->b, (size_t)I->t.size);
    break;
  case LLVMGetElementPtr:
    seti(&r, geti(a, 64) + (uint64_t)(gets(b, I->ibits) * I->esize), 64);
    break;
  case LLVMLoad: {
    uint64_t addr = geti(a, 64);
    if (!mem_ok(S, addr, I->t.size) || addr % (uint64_t)I->t.size)
      return memfail(S, addr, I->t.size, "load");
    if (pending(S, addr, I->t.size, tid, false))
      return -1;
    S->gvec += I->t.k == T_VEC && is_global(S, addr);
    memcpy(r.b, (const void *)(uintptr_t)addr, (size_t)I->t.size);
    break;
  }
  case LLVMStore: {
    uint64_t addr = geti(b, 64);
    if (!mem_ok(S, addr, I->t0.size) || addr % (uint64_t)I->t0.size)
      return memfail(S, addr, I->t0.size, "store");
    if (pending(S, addr, I->t0.size, tid, true))
      return -1;
    bool shared = addr >= P->smem && addr < P->smem + S->smem_bytes;
    S->gvec += I->t0.k == T_VEC && is_global(S, addr);
    for (int i = 0; shared && i < I->t0.size; i++)
      S->shadow[addr + (uint64_t)i - P->smem] = LANDED | tid;
    memcpy((void *)(uintptr_t)addr, a->b, (size_t)I->t0.size);
    break;
  }
  case LLVMInsertElement: {
    int es = I->t.size / I->t.n;
    r = *a;
    memcpy(r.b + geti(val(T, &I->o[2]), 32) * (uint64_t)es, b->b, (size_t)es);
    break;
  }
  case LLVMExtractElement: {
    int es = I->t0.size / I->t0.n;
    memcpy(r.b, a->b + geti(b, 32) * (uint64_t)es, (size_t)es);
    break;
  }
  case LLVMShuffleVector: {
    int es = I->t.size / I->t.n, n0 = I->t0.n;
    memset(r.b, 0, sizeof r.b);
    for (int e = 0; e < I->t.n; e++)
      if (I->inb[e] >= 0)
        memcpy(r.b + e * es, (I->inb[e] < n0 ? a : b)->b + (I->inb[e] % n0) * es, (size_t)es);
    break;
  }
  case LLVMExtractValue:
    memcpy(r.b, a->b + I->idx * 4, 4);
    break;
  case LLVMCall:
    if (I->call == C_BAR || I->call == C_SHFL || I->call == C_MMA_BF16 || I->call == C_MMA_F16 ||
        I->call == C_MMA_F8 || I->call == C_LDM || I->call == C_CPASYNC) {
      T->state = WAIT; /* the scheduler completes it for the whole warp or CTA */
      return 0;
    }
    if (call(S, T, I, &r, tid))
      return -1;
    break;
  default:
    snprintf(S->err, sizeof S->err, "opcode %d not interpreted", (int)I->op);
    return -1;
  }
  if (I->dst >= 0)
    T->r[I->dst] = r;
  T->pc++;
  return 0;
}

/* D = A B + C of one m16n8kK mma (A 16 x K row-major, B K x 8 row-major), summed in double and
 * rounded once to f32, into the D fragments of the 32 lanes (register i of lane l = 4g + t holds
 * row g + 8 (i >> 1), column 2t + (i & 1)). */
static void mma_store(thr *W, const ins *I, const double *A, const double *B, double C[16][8],
                      int K) {
  for (int l = 0; l < 32; l++) {
    int g = l / 4, t = l % 4;
    V r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 4; i++) {
      int row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
      double s = C[row][col];
      for (int kk = 0; kk < K; kk++)
        s += A[row * K + kk] * B[kk * 8 + col];
      setf_raw(r.b + 4 * i, s, T_F32);
    }
    W[l].r[I->dst] = r;
  }
}

/* mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}: the fragments of the 32 lanes of a warp as
 * the PTX ISA defines them (groupID g = lane / 4, threadID_in_group t = lane % 4). */
static void mma(sim *S, thr *W, const ins *I) {
  double A[16][16], B[16][8], C[16][8];
  tkind k = I->call == C_MMA_BF16 ? T_BF16 : T_HALF;
  for (int l = 0; l < 32; l++) {
    int g = l / 4, t = l % 4;
    for (int p = 0; p < 4; p++) {
      const V *v = val(&W[l], &I->o[p]);
      int row = g + 8 * (p & 1), col = 2 * t + 8 * (p >> 1);
      A[row][col] = getf_raw(v->b, k);
      A[row][col + 1] = getf_raw(v->b + 2, k);
    }
    for (int p = 0; p < 2; p++) {
      const V *v = val(&W[l], &I->o[4 + p]);
      B[2 * t + 8 * p][g] = getf_raw(v->b, k);
      B[2 * t + 8 * p + 1][g] = getf_raw(v->b + 2, k);
    }
    for (int i = 0; i < 4; i++)
      C[g + 8 * (i >> 1)][2 * t + (i & 1)] = getf(val(&W[l], &I->o[6 + i]), T_F32);
  }
  mma_store(W, I, &A[0][0], &B[0][0], C, 16);
  (void)S;
}

/* mma.sync.aligned.m16n8k32.row.col.f32.{e4m3,e5m2}.{e4m3,e5m2}.f32, the fragments as the PTX
 * ISA defines them for 8-bit types (g = lane / 4, t = lane % 4; byte j of a register is its
 * element j): A 16x32, register p of lane l holds row g + 8 (p & 1), columns 4t + 16 (p >> 1)
 * + j; B 32x8, register p holds rows 4t + 16p + j of column g; C/D as for m16n8k16. The 32
 * products are exact in double; their sum is rounded once to f32. */
static void mma_f8(thr *W, const ins *I) {
  double A[16][32], B[32][8], C[16][8];
  for (int l = 0; l < 32; l++) {
    int g = l / 4, t = l % 4;
    for (int p = 0; p < 4; p++) {
      const V *v = val(&W[l], &I->o[p]);
      for (int j = 0; j < 4; j++)
        A[g + 8 * (p & 1)][4 * t + 16 * (p >> 1) + j] = ir_f8_bits_to_f64(I->axis, v->b[j]);
    }
    for (int p = 0; p < 2; p++) {
      const V *v = val(&W[l], &I->o[4 + p]);
      for (int j = 0; j < 4; j++)
        B[4 * t + 16 * p + j][g] = ir_f8_bits_to_f64(I->width, v->b[j]);
    }
    for (int i = 0; i < 4; i++)
      C[g + 8 * (i >> 1)][2 * t + (i & 1)] = getf(val(&W[l], &I->o[6 + i]), T_F32);
  }
  mma_store(W, I, &A[0][0], &B[0][0], C, 32);
}

/* ldmatrix.sync.aligned.m8n8.x{n}[.trans].b16, as the PTX ISA defines it: lane 8i + j gives
 * the address of row j of matrix i (16 bytes, 16-byte aligned, in shared memory); without
 * .trans lane l receives, in its register i, elements 2(l%4) and 2(l%4)+1 of row l/4 of matrix
 * i; with .trans elements l/4 of rows 2(l%4) and 2(l%4)+1. Also counts bank conflicts: each
 * matrix is one access of 8 rows x 16 bytes, conflict-free when the rows lie in 8 distinct
 * 16-byte bank groups (address / 16 mod 8). */
static int ldm(sim *S, thr *W, const ins *I) {
  uint16_t m[4][8][8];
  for (int i = 0; i < I->width; i++) {
    bool group[8] = {false};
    int extra = 0;
    for (int j = 0; j < 8; j++) {
      uint64_t a = geti(val(&W[8 * i + j], &I->o[0]), 64);
      if (a % 16 || a < S->P->smem || a + 16 > S->P->smem + S->smem_bytes) {
        snprintf(S->err, sizeof S->err,
                 "ldmatrix: row address %#llx (lane %d) is misaligned or outside shared memory",
                 (unsigned long long)a, 8 * i + j);
        return -1;
      }
      if (pending(S, a, 16, -1, false))
        return -1;
      memcpy(m[i][j], (const void *)(uintptr_t)a, 16);
      int g = (int)(a / 16 % 8);
      extra += group[g];
      group[g] = true;
    }
    S->ldm_accesses++;
    S->ldm_conflicts += extra;
  }
  for (int l = 0; l < 32; l++) {
    V r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < I->width; i++) {
      uint16_t e[2];
      for (int h = 0; h < 2; h++)
        e[h] = I->axis ? m[i][2 * (l % 4) + h][l / 4] : m[i][l / 4][2 * (l % 4) + h];
      memcpy(r.b + 4 * i, e, 4);
    }
    W[l].r[I->dst] = r;
  }
  return 0;
}

/* cp.async.cg.shared.global.16 of a warp (a collective here only to count bank conflicts: every
 * lane's copy is its own). 16-byte accesses go in 4 wavefronts of 8 lanes, conflict-free when
 * the 8 destinations lie in distinct 16-byte bank groups. */
static int cpasync(sim *S, thr *W, const ins *I, int w) {
  for (int q = 0; q < 4; q++) {
    bool group[8] = {false};
    for (int j = 0; j < 8; j++) {
      int l = 8 * q + j;
      uint64_t dst = geti(val(&W[l], &I->o[0]), 64), src = geti(val(&W[l], &I->o[1]), 64);
      int size = I->n > 2 ? (int)geti(val(&W[l], &I->o[2]), 32) : 16;
      if (cp_issue(S, 32 * w + l, dst, src, size))
        return -1;
      int g = (int)(dst / 16 % 8);
      S->cp_conflicts += group[g];
      group[g] = true;
    }
    S->cp_accesses++;
  }
  return 0;
}

/* Completes the collective warp w waits at, if all its lanes wait at the same one. */
static int collective(sim *S, thr *W, int w, bool *done) {
  const ins *I = &S->P->ins[W[0].pc];
  *done = false;
  for (int l = 0; l < 32; l++)
    if (W[l].state != WAIT || W[l].pc != W[0].pc || I->call == C_BAR)
      return 0;
  if (I->call == C_SHFL) {
    V in[32];
    for (int l = 0; l < 32; l++)
      in[l] = *val(&W[l], &I->o[1]);
    int m = (int)geti(val(&W[0], &I->o[2]), 32);
    for (int l = 0; l < 32; l++)
      W[l].r[I->dst] = in[(l ^ m) & 31];
  } else if (I->call == C_LDM) {
    if (ldm(S, W, I))
      return -1;
  } else if (I->call == C_CPASYNC) {
    if (cpasync(S, W, I, w))
      return -1;
  } else if (I->call == C_MMA_F8) {
    mma_f8(W, I);
  } else {
    mma(S, W, I);
  }
  for (int l = 0; l < 32; l++) {
    W[l].state = RUN;
    W[l].pc++;
  }
  *done = true;
  return 0;
}

/* Runs one CTA to completion. Warps run one after another, each as far as it can (to its next
 * bar.sync), in alternating order between barriers, so that a warp runs ahead of the others as
 * far as the program allows: a missing barrier shows up as a read of shared memory that another
 * warp has not written yet, or as a cp.async hazard (pending()). */
static int run_cta(sim *S, thr *th, const V *params) {
  prog *P = S->P;
  for (int t = 0; t < S->threads; t++) {
    memset(th[t].r, 0, sizeof(V) * (size_t)P->nslots);
    memcpy(th[t].r, params, sizeof(V) * (size_t)P->nparams);
    th[t].blk = 0;
    th[t].prev = -1;
    th[t].pc = P->bfirst[0];
    th[t].state = RUN;
  }
  int nw = S->threads / 32;
  for (int phase = 0;; phase++) {
    for (int k = 0; k < nw; k++) {
      int w = phase % 2 ? nw - 1 - k : k;
      thr *W = &th[w * 32];
      for (bool again = true; again;) {
        for (int l = 0; l < 32; l++)
          while (W[l].state == RUN)
            if (step(S, &W[l], w * 32 + l))
              return -1;
        if (collective(S, W, w, &again))
          return -1;
      }
    }
    bool all_done = true, all_bar = true;
    for (int t = 0; t < S->threads; t++) {
      all_done &= th[t].state == DONE;
      all_bar &= th[t].state == DONE || (th[t].state == WAIT && P->ins[th[t].pc].call == C_BAR);
    }
    if (all_done)
      return 0;
    if (!all_bar) {
      snprintf(S->err, sizeof S->err, "deadlock: threads wait at different collectives");
      return -1;
    }
    cp_publish(S);
    for (int t = 0; t < S->threads; t++)
      if (th[t].state == WAIT) {
        th[t].state = RUN;
        th[t].pc++;
      }
  }
}

/* Shared-memory accesses of ldmatrix and cp.async, and their bank conflicts, summed over the
 * kernels run since the last reset. */
static struct {
  long long ldm_accesses, ldm_conflicts, cp_accesses, cp_conflicts, gvec;
  long long elem_loops; /* element-path loops (the vector path's fallback) in the lowered IR */
} bank;

/* Runs the kernel (LLVM IR text ll, entry `name`) over its grid on p's host buffers. */
/* The problem's arguments as launch arguments (host addresses as device ones). */
static void rt_args(const kn_problem *p, rt_argval *av) {
  memset(av, 0, sizeof(rt_argval) * IR_MAX_ARGS);
  for (int a = 0; a < p->nargs; a++) {
    const ir_argval *x = &p->args[a];
    av[a].kind = x->kind;
    av[a].dptr = (uint64_t)(uintptr_t)x->data;
    av[a].rank = x->rank;
    memcpy(av[a].shape, x->shape, sizeof x->shape);
    memcpy(av[a].stride, x->stride, sizeof x->stride);
    av[a].scalar = x->scalar;
  }
}

/* The aligned variant's tests must keep its promise (rt_args_aligned). */
static void check_promise(const ir_kernel *spec, const kn_problem *p, const char *what) {
  rt_argval av[IR_MAX_ARGS];
  rt_args(p, av);
  if (!CHECK(rt_args_aligned(spec, av, p->nargs, NULL)))
    fprintf(stderr, "  %s: the test's arguments break the alignment promise\n", what);
}

static int run_kernel(const char *ll, const char *name, const ir_kernel *k, kn_problem *p,
                      int threads, int smem_bytes, char *err, size_t cap) {
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMMemoryBufferRef mb = LLVMCreateMemoryBufferWithMemoryRangeCopy(ll, strlen(ll), "k.ll");
  LLVMModuleRef mod = NULL;
  char *msg = NULL;
  prog P;
  sim S;
  thr *th = NULL;
  unsigned char *smem = NULL;
  int rc = -1;
  memset(&P, 0, sizeof P);
  memset(&S, 0, sizeof S);
  if (LLVMParseIRInContext(ctx, mb, &mod, &msg)) {
    snprintf(err, cap, "cannot parse the LLVM IR: %s", msg);
    goto done;
  }
  LLVMValueRef fn = LLVMGetNamedFunction(mod, name);
  smem = calloc((size_t)smem_bytes + 16, 1);
  P.smem = (uint64_t)(uintptr_t)smem;
  if (!fn || !decode(&P, fn)) {
    snprintf(err, cap, "%s", fn ? P.err : "no kernel function");
    goto done;
  }
  rt_argval av[IR_MAX_ARGS];
  rt_args(p, av);
  S.nmem = 0;
  for (int a = 0; a < p->nargs; a++) {
    const ir_argval *x = &p->args[a];
    if (x->kind != ARG_SCALAR) {
      const ir_type *t = k->args[a].value->ty;
      int64_t es = t->elem->kind == IR_I1 ? 1 : ir_kind_bits(t->elem->kind) / 8;
      S.mem[S.nmem++] = (range){av[a].dptr, av[a].dptr + (uint64_t)(x->count * es)};
    }
  }
  S.mem[S.nmem++] = (range){P.smem, P.smem + (uint64_t)smem_bytes};
  rt_params rp;
  rt_err e;
  if (rt_params_pack(k, av, p->nargs, &rp, &e)) {
    snprintf(err, cap, "rt_params_pack: %.1000s", e.msg);
    goto done;
  }
  if (rp.count != P.nparams) {
    snprintf(err, cap, "ABI: the runtime packs %d parameters, the kernel takes %d", rp.count,
             P.nparams);
    goto done;
  }
  V params[IR_MAX_ARGS * 9];
  for (int i = 0; i < rp.count; i++) {
    if (rp.psize[i] != P.ptype[i].size) {
      snprintf(err, cap, "ABI: parameter %d is %d bytes in the runtime, %d in the kernel", i,
               rp.psize[i], P.ptype[i].size);
      goto done;
    }
    memset(&params[i], 0, sizeof params[i]);
    memcpy(params[i].b, rp.buf + rp.offset[i], rp.psize[i]);
  }
  S.P = &P;
  S.threads = threads;
  S.smem_bytes = (uint64_t)smem_bytes;
  S.shadow = calloc((size_t)smem_bytes + 1, sizeof(int));
  S.local = calloc((size_t)threads * (size_t)P.frame + 1, 1);
  S.mem[S.nmem++] = (range){(uint64_t)(uintptr_t)S.local,
                            (uint64_t)(uintptr_t)S.local + (uint64_t)threads * (uint64_t)P.frame};
  S.groups = calloc((size_t)threads, sizeof(int));
  S.phitmp = calloc((size_t)P.nins + 1, sizeof(V));
  th = calloc((size_t)threads, sizeof *th);
  for (int t = 0; t < threads; t++)
    th[t].r = calloc((size_t)P.nslots, sizeof(V));
  for (int i = 0; i < 3; i++)
    S.nctaid[i] = rp.grid[i];
  for (uint32_t z = 0; z < rp.grid[2]; z++)
    for (uint32_t y = 0; y < rp.grid[1]; y++)
      for (uint32_t x = 0; x < rp.grid[0]; x++) {
        S.ctaid[0] = x, S.ctaid[1] = y, S.ctaid[2] = z;
        S.ncps = 0;
        memset(S.shadow, 0, sizeof(int) * (size_t)smem_bytes);
        memset(S.groups, 0, sizeof(int) * (size_t)threads);
        if (run_cta(&S, th, params)) {
          snprintf(err, cap, "CTA (%u,%u,%u): %s", x, y, z, S.err);
          goto done;
        }
      }
  rc = 0;
  bank.ldm_accesses += S.ldm_accesses;
  bank.ldm_conflicts += S.ldm_conflicts;
  bank.cp_accesses += S.cp_accesses;
  bank.cp_conflicts += S.cp_conflicts;
  bank.gvec += S.gvec;
done:
  if (th)
    for (int t = 0; t < threads; t++)
      free(th[t].r);
  free(th);
  free(S.phitmp);
  free(S.shadow);
  free(S.local);
  free(S.groups);
  free(S.cps);
  free(smem);
  prog_free(&P);
  if (msg)
    LLVMDisposeMessage(msg);
  if (mod)
    LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  return rc;
}

/* ---- the cases -------------------------------------------------------------------------- */

static const char *source(const char *name) {
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, name))
      return s->text;
  return NULL;
}

/* Compiles kernel with set (and what the shape implies), runs it on the problem `shape` and
 * checks every output against the reference. */
static void run_case(const char *kernel, const char *shape_spec, const char *set, const char *dtype,
                     unsigned flags) {
  char err[4096], what[512];
  snprintf(what, sizeof what, "%s --shape %s --set %s --dtype %s", kernel, shape_spec, set,
           dtype ? dtype : "bf16");
  const char *text = source(kernel);
  ir_kernel *k = NULL, *spec = NULL;
  ir_diag d;
  kn_shape shape;
  ir_config cfg = {0};
  kn_problem p;
  cc_gpu g;
  cg_output out;
  bool have_g = false, have_p = false;
  memset(&out, 0, sizeof out);
  if (!CHECK(text && ir_parse(text, strlen(text), kernel, &k, &d) == IR_OK))
    goto done;
  if (!CHECK(kn_shape_parse(shape_spec, &shape, err, sizeof err) == 0) ||
      !CHECK(ir_config_parse(&cfg, set, &d) == IR_OK) ||
      !CHECK(kn_problem_config(kernel, &shape, dtype, &cfg, err, sizeof err) == 0))
    goto done;
  if (!CHECK(ir_specialize(k, &cfg, &spec, &d) == IR_OK)) {
    fprintf(stderr, "  %s: %s\n", what, d.msg);
    goto done;
  }
  if (!CHECK(cc_gpu_build(spec, &g, &d) == IR_OK)) {
    fprintf(stderr, "  %s: %s\n", what, d.msg);
    goto done;
  }
  have_g = true;
  if (!CHECK(cg_lower(&g, "sm_80", CG_EMIT_LLVM | CG_NO_OPT | flags, &out, err, sizeof err) == 0)) {
    fprintf(stderr, "  %s: %s\n", what, err);
    goto done;
  }
  have_p = true;
  if (!CHECK(kn_problem_build(&p, kernel, spec, &shape, 7, err, sizeof err) == 0)) {
    fprintf(stderr, "  %s: %s\n", what, err);
    goto done;
  }
  for (const char *e = out.llvm; (e = strstr(e, "\nelem.loop")); e++)
    bank.elem_loops++;
  if (flags & CG_ALIGNED) { /* the arguments keep the promise; no fallback path was built */
    check_promise(spec, &p, what);
    if (!CHECK(!strstr(out.llvm, "\nelem") && !strstr(out.llvm, "\ncp.slow")))
      fprintf(stderr, "  %s: the aligned variant has a fallback path\n", what);
  }
  if (!CHECK(run_kernel(out.llvm, out.name, spec, &p, out.stats.threads, out.stats.smem_bytes, err,
                        sizeof err) == 0)) {
    fprintf(stderr, "  %s: %s\n", what, err);
    goto done;
  }
  if (!CHECK(kn_problem_check(&p, err, sizeof err) == 0))
    goto done;
  for (int i = 0; i < p.nchecks; i++) {
    const kn_cmp_result *r = &p.checks[i].r;
    if (!CHECK(r->pass))
      fprintf(stderr, "  %s: output %s: err %.3g (tol %.3g), %lld non-finite (first at %lld)\n",
              what, p.checks[i].name, r->err, r->tol, (long long)r->n_nonfinite,
              (long long)r->first_nonfinite);
  }
done:
  if (have_p)
    kn_problem_free(&p);
  cg_output_free(&out);
  if (have_g)
    cc_gpu_free(&g);
  ir_kernel_free(spec);
  ir_kernel_free(k);
}

/* Compiles a kernel given as text and runs it on generic buffers (kn_problem for files) twice:
 * on the IR interpreter and on the lowering; every output must agree (integers exactly, floats
 * to a relative 1e-5 of the output's largest magnitude). */
static void run_text_case(const char *name, const char *text, const char *shape_spec,
                          const char *set, const char *arch, unsigned flags) {
  char err[4096], what[512];
  snprintf(what, sizeof what, "%s --shape %s --set %s", name, shape_spec, set);
  ir_kernel *k = NULL, *spec = NULL;
  ir_diag d;
  kn_shape shape;
  ir_config cfg = {0};
  kn_problem p1, p2;
  cc_gpu g;
  cg_output out;
  int have = 0;
  memset(&out, 0, sizeof out);
  if (!CHECK(ir_parse(text, strlen(text), name, &k, &d) == IR_OK) ||
      !CHECK(ir_verify(k, &d) == IR_OK)) {
    fprintf(stderr, "  %s\n", d.msg);
    goto done;
  }
  if (!CHECK(kn_shape_parse(shape_spec, &shape, err, sizeof err) == 0) ||
      !CHECK(ir_config_parse(&cfg, set, &d) == IR_OK) ||
      !CHECK(kn_problem_config("", &shape, NULL, &cfg, err, sizeof err) == 0) ||
      !CHECK(ir_specialize(k, &cfg, &spec, &d) == IR_OK)) {
    fprintf(stderr, "  %s: %s\n", what, d.msg);
    goto done;
  }
  if (!CHECK(kn_problem_build(&p1, "", spec, &shape, 3, err, sizeof err) == 0))
    goto done;
  have = 1;
  if (!CHECK(kn_problem_build(&p2, "", spec, &shape, 3, err, sizeof err) == 0))
    goto done;
  have = 2;
  ir_interp_opts io = {.nthreads = 1};
  if (!CHECK(ir_interp_run(spec, p1.args, p1.nargs, &io, &d) == IR_OK)) {
    fprintf(stderr, "  %s: %s\n", what, d.msg);
    goto done;
  }
  if (!CHECK(cc_gpu_build(spec, &g, &d) == IR_OK)) {
    fprintf(stderr, "  %s: %s\n", what, d.msg);
    goto done;
  }
  have = 3;
  if (flags & CG_ALIGNED)
    check_promise(spec, &p2, what);
  if (!CHECK(cg_lower(&g, arch, CG_EMIT_LLVM | CG_NO_OPT | flags, &out, err, sizeof err) == 0) ||
      !CHECK(run_kernel(out.llvm, out.name, spec, &p2, out.stats.threads, out.stats.smem_bytes, err,
                        sizeof err) == 0)) {
    fprintf(stderr, "  %s: %s\n", what, err);
    goto done;
  }
  for (int b = 0; b < p1.nbufs; b++) {
    const kn_buf *x = &p1.bufs[b], *y = &p2.bufs[b];
    if (!x->output)
      continue;
    double big = 0;
    for (int64_t i = 0; i < x->count; i++) {
      double v = fabs(ir_buf_get(x->kind, x->data, i));
      big = isfinite(v) && v > big ? v : big;
    }
    int64_t bad = -1;
    for (int64_t i = 0; i < x->count && bad < 0; i++) {
      double u = ir_buf_get(x->kind, x->data, i), v = ir_buf_get(y->kind, y->data, i);
      bool same = ir_kind_is_float(x->kind)
                      ? (isnan(u) && isnan(v)) || u == v || fabs(u - v) <= 1e-5 * big
                      : u == v;
      if (!same)
        bad = i;
    }
    if (!CHECK(bad < 0))
      fprintf(stderr, "  %s: output %s differs first at element %lld: interpreter %g, lowered %g\n",
              what, x->name, (long long)bad, ir_buf_get(x->kind, x->data, bad),
              ir_buf_get(y->kind, y->data, bad));
  }
done:
  if (have >= 3)
    cc_gpu_free(&g);
  if (have >= 2)
    kn_problem_free(&p2);
  if (have >= 1)
    kn_problem_free(&p1);
  cg_output_free(&out);
  ir_kernel_free(spec);
  ir_kernel_free(k);
}

/* Attention's score block: dot with a transposed operand, index tiles broadcast both ways, a
 * causal mask converted into the MMA layout, a row max through shuffles (and across warps). */
static const char scores_tile[] =
    "kernel scores\n"
    "tunables {\n"
    "  BM = 32 in [16, 32, 64]\n"
    "  BN = 32 in [16, 32, 64]\n"
    "  WARPS = 2 in [1, 2, 4, 8]\n"
    "}\n"
    "args (%Q: tensor<bf16>[S, 64], %K: tensor<bf16>[SKV, 64], %O: out tensor<f32>[S, SKV], "
    "%M: out tensor<f32>[S, NB], %I: out tensor<i32>[S, SKV])\n"
    "grid (cdiv(S, BM), cdiv(SKV, BN))\n"
    "{\n"
    "  %qb = program_id 0 : i32\n"
    "  %kb = program_id 1 : i32\n"
    "  %bm = const BM : i32\n"
    "  %bn = const BN : i32\n"
    "  %zero = const 0 : i32\n"
    "  %m0 = mul %qb, %bm : i32\n"
    "  %n0 = mul %kb, %bn : i32\n"
    "  %q = load %Q[%m0, %zero] : tile<BM, 64, bf16>\n"
    "  %k = load %K[%n0, %zero] : tile<BN, 64, bf16>\n"
    "  %kt = trans %k : tile<64, BN, bf16>\n"
    "  %s0 = zeros : tile<BM, BN, f32>\n"
    "  %qk = dot %q, %kt, %s0 : tile<BM, BN, f32>\n"
    "  %rows = arange 0, BM : tile<BM, i32>\n"
    "  %qidx = add %rows, %m0 : tile<BM, i32>\n"
    "  %qidx2 = expand_dims %qidx, 1 : tile<BM, 1, i32>\n"
    "  %qidxb = broadcast %qidx2 : tile<BM, BN, i32>\n"
    "  %cols = arange 0, BN : tile<BN, i32>\n"
    "  %kidx = add %cols, %n0 : tile<BN, i32>\n"
    "  %kidx2 = expand_dims %kidx, 0 : tile<1, BN, i32>\n"
    "  %kidxb = broadcast %kidx2 : tile<BM, BN, i32>\n"
    "  %before = cmp le %kidxb, %qidxb : tile<BM, BN, i1>\n"
    "  %ninf = const -1000.0 : f32\n"
    "  %ninf_s = full %ninf : tile<BM, BN, f32>\n"
    "  %s = select %before, %qk, %ninf_s : tile<BM, BN, f32>\n"
    "  store %O[%m0, %n0], %s\n"
    "  %mx = reduce max %s, 1 : tile<BM, f32>\n"
    "  store %M[%m0, %kb], %mx\n"
    "  %hundred = const 100 : i32\n"
    "  %qi = mul %qidxb, %hundred : tile<BM, BN, i32>\n"
    "  %idx = add %qi, %kidxb : tile<BM, BN, i32>\n"
    "  store %I[%m0, %n0], %idx\n"
    "}\n";

/* Ops the built-in kernels do not use: integer div/rem/cdiv/shifts/min/max with runtime
 * divisors, casts both ways, exp/log/sqrt/rsqrt/abs/neg, a fill value, an inout tensor whose
 * tile is replicated across warps (BLOCK below the CTA footprint: only one copy may store), a
 * reduction to a scalar, a scalar loop-carried value, and if with results. */
static const char ops1_tile[] =
    "kernel ops1\n"
    "tunables {\n"
    "  BLOCK = 128 in [32, 64, 128, 256]\n"
    "  WARPS = 4 in [1, 2, 4, 8]\n"
    "}\n"
    "args (%X: tensor<f32>[N], %I: tensor<i32>[N], %Y: inout tensor<f32>[N], "
    "%J: out tensor<i32>[N], %F: out tensor<f32>[N], %S: out tensor<f32>[G], alpha: f32, n: i32)\n"
    "grid (cdiv(N, BLOCK))\n"
    "{\n"
    "  %pid = program_id 0 : i32\n"
    "  %bs = const BLOCK : i32\n"
    "  %off = mul %pid, %bs : i32\n"
    "  %x = load %X[%off] fill 1.5 : tile<BLOCK, f32>\n"
    "  %y = load %Y[%off] : tile<BLOCK, f32>\n"
    "  %i = load %I[%off] fill -7 : tile<BLOCK, i32>\n"
    "  %a = const alpha : f32\n"
    "  %ax = mul %x, %a : tile<BLOCK, f32>\n"
    "  %r = add %ax, %y : tile<BLOCK, f32>\n"
    "  store %Y[%off], %r\n"
    "  %seven = const 7 : i32\n"
    "  %one = const 1 : i32\n"
    "  %m = and %i, %seven : tile<BLOCK, i32>\n"
    "  %dv = add %m, %one : tile<BLOCK, i32>\n"
    "  %big = const 1000 : i32\n"
    "  %ib = mul %i, %big : tile<BLOCK, i32>\n"
    "  %q = div %ib, %dv : tile<BLOCK, i32>\n"
    "  %re = rem %ib, %dv : tile<BLOCK, i32>\n"
    "  %cd = cdiv %ib, %dv : tile<BLOCK, i32>\n"
    "  %sh = shl %i, %m : tile<BLOCK, i32>\n"
    "  %sr = shr %ib, %dv : tile<BLOCK, i32>\n"
    "  %t1 = add %q, %re : tile<BLOCK, i32>\n"
    "  %t2 = sub %cd, %sh : tile<BLOCK, i32>\n"
    "  %t3 = max %t1, %t2 : tile<BLOCK, i32>\n"
    "  %t4 = min %t3, %sr : tile<BLOCK, i32>\n"
    "  %t5 = xor %t4, %i : tile<BLOCK, i32>\n"
    "  %t6 = abs %t5 : tile<BLOCK, i32>\n"
    "  %xi = cast %ax : tile<BLOCK, i32>\n"
    "  %t7 = add %t6, %xi : tile<BLOCK, i32>\n"
    "  store %J[%off], %t7\n"
    "  %ab = abs %x : tile<BLOCK, f32>\n"
    "  %l = log %ab : tile<BLOCK, f32>\n"
    "  %e = exp %x : tile<BLOCK, f32>\n"
    "  %sq = sqrt %ab : tile<BLOCK, f32>\n"
    "  %rs = rsqrt %e : tile<BLOCK, f32>\n"
    "  %if = cast %i : tile<BLOCK, f32>\n"
    "  %f1 = add %l, %sq : tile<BLOCK, f32>\n"
    "  %f2 = mul %f1, %rs : tile<BLOCK, f32>\n"
    "  %neg = neg %f2 : tile<BLOCK, f32>\n"
    "  %pos = cmp gt %x, %if : tile<BLOCK, i1>\n"
    "  %f3 = select %pos, %neg, %if : tile<BLOCK, f32>\n"
    "  %h = cast %f3 : tile<BLOCK, bf16>\n"
    "  %hh = add %h, %h : tile<BLOCK, bf16>\n"
    "  %f4 = cast %hh : tile<BLOCK, f32>\n"
    "  store %F[%off], %f4\n"
    "  %sum = reduce sum %r, 0 : f32\n"
    "  %zero = const 0 : i32\n"
    "  %nn = const n : i32\n"
    "  %acc = for %k = %zero to %nn step %one iter(%s = %sum) : f32 {\n"
    "    %kf = cast %k : f32\n"
    "    %s2 = add %s, %kf : f32\n"
    "    yield %s2\n"
    "  }\n"
    "  %odd = rem %pid, %one : i32\n"
    "  %isodd = cmp ne %odd, %zero : i1\n"
    "  %res = if %isodd : f32 {\n"
    "    yield %acc\n"
    "  } else {\n"
    "    %neg2 = neg %acc : f32\n"
    "    yield %neg2\n"
    "  }\n"
    "  store %S[%pid], %res\n"
    "}\n";

/* 2-D shape ops: trans, reshape twice, reductions along both axes (integer max, and a sum whose
 * axis the warps split), f16 arithmetic, expand_dims/broadcast of a reduced row. */
static const char ops2_tile[] =
    "kernel ops2\n"
    "tunables {\n"
    "  WARPS = 4 in [1, 2, 4, 8]\n"
    "}\n"
    "args (%A: tensor<f32>[M, K], %O: out tensor<f32>[K, M], %R0: out tensor<f32>[K], "
    "%R1: out tensor<i32>[M], %H: out tensor<f16>[M, K], %B: out tensor<f32>[M, K])\n"
    "grid (1)\n"
    "{\n"
    "  %z = const 0 : i32\n"
    "  %a = load %A[%z, %z] : tile<64, 16, f32>\n"
    "  %t = trans %a : tile<16, 64, f32>\n"
    "  store %O[%z, %z], %t\n"
    "  %r0 = reduce sum %a, 0 : tile<16, f32>\n"
    "  store %R0[%z], %r0\n"
    "  %ten = const 10.0 : f32\n"
    "  %a10 = mul %a, %ten : tile<64, 16, f32>\n"
    "  %ai = cast %a10 : tile<64, 16, i32>\n"
    "  %r1 = reduce max %ai, 1 : tile<64, i32>\n"
    "  store %R1[%z], %r1\n"
    "  %rs = reshape %a : tile<32, 32, f32>\n"
    "  %rs2 = reshape %rs : tile<64, 16, f32>\n"
    "  %h = cast %rs2 : tile<64, 16, f16>\n"
    "  %h2 = mul %h, %h : tile<64, 16, f16>\n"
    "  store %H[%z, %z], %h2\n"
    "  %mn = reduce min %a, 1 : tile<64, f32>\n"
    "  %mn2 = expand_dims %mn, 1 : tile<64, 1, f32>\n"
    "  %mnb = broadcast %mn2 : tile<64, 16, f32>\n"
    "  %d = sub %a, %mnb : tile<64, 16, f32>\n"
    "  store %B[%z, %z], %d\n"
    "}\n";

/* A load at an index the compiler cannot prove aligned (pid * BLOCK + s): in the aligned variant
 * it keeps its run-time test and element path. s = 3 must take that path (a vector load there
 * is misaligned, which the simulator reports as the GPU would fault); s = 8 may not. */
static const char shift_tile[] = "kernel shift\n"
                                 "tunables {\n"
                                 "  BLOCK = 128 in [64, 128]\n"
                                 "  WARPS = 1 in [1, 2]\n"
                                 "}\n"
                                 "args (%X: tensor<f32>[N], %Y: out tensor<f32>[N], s: i32)\n"
                                 "grid (cdiv(N, BLOCK))\n"
                                 "{\n"
                                 "  %pid = program_id 0 : i32\n"
                                 "  %bs = const BLOCK : i32\n"
                                 "  %off = mul %pid, %bs : i32\n"
                                 "  %sh = const s : i32\n"
                                 "  %src = add %off, %sh : i32\n"
                                 "  %x = load %X[%src] fill 2.5 : tile<BLOCK, f32>\n"
                                 "  store %Y[%off], %x\n"
                                 "}\n";

static const char axpy_tile[] = "kernel axpy\n"
                                "tunables {\n"
                                "  BLOCK = 128 in [128, 256, 512]\n"
                                "}\n"
                                "args (%X: tensor<f32>[N], %Y: inout tensor<f32>[N], alpha: f32)\n"
                                "grid (cdiv(N, BLOCK))\n"
                                "{\n"
                                "  %pid = program_id 0 : i32\n"
                                "  %bs = const BLOCK : i32\n"
                                "  %off = mul %pid, %bs : i32\n"
                                "  %x = load %X[%off] : tile<BLOCK, f32>\n"
                                "  %y = load %Y[%off] : tile<BLOCK, f32>\n"
                                "  %a = const alpha : f32\n"
                                "  %ax = mul %x, %a : tile<BLOCK, f32>\n"
                                "  %r = add %ax, %y : tile<BLOCK, f32>\n"
                                "  store %Y[%off], %r\n"
                                "}\n";

/* tests/ptx/matmul_f8.tile (mm8: B [K, N], N contiguous, which the dot stores transposed into its
 * K-contiguous buffer) with B given as [N, K] (K contiguous) and transposed in registers. */
static const char mm8t_tile[] =
    "kernel mm8t\n"
    "types {\n"
    "  TA in [f8e4m3, f8e5m2]\n"
    "  TB in [f8e4m3, f8e5m2]\n"
    "}\n"
    "tunables {\n"
    "  BM = 64 in [16, 32, 64, 128]\n"
    "  BN = 64 in [16, 32, 64, 128]\n"
    "  BK = 64 in [32, 64, 128]\n"
    "  WARPS = 4 in [1, 2, 4, 8]\n"
    "  STAGES = 3 in [1, 2, 3, 4]\n"
    "}\n"
    "args (%A: tensor<TA>[M, K], %B: tensor<TB>[N, K], %C: out tensor<f32>[M, N])\n"
    "grid (cdiv(M, BM) * cdiv(N, BN))\n"
    "{\n"
    "  %pid = program_id 0 : i32\n"
    "  %nb = const cdiv(N, BN) : i32\n"
    "  %pm = div %pid, %nb : i32\n"
    "  %pn = rem %pid, %nb : i32\n"
    "  %bm = const BM : i32\n"
    "  %bn = const BN : i32\n"
    "  %m0 = mul %pm, %bm : i32\n"
    "  %n0 = mul %pn, %bn : i32\n"
    "  %acc0 = zeros : tile<BM, BN, f32>\n"
    "  %lo = const 0 : i32\n"
    "  %hi = const K : i32\n"
    "  %step = const BK : i32\n"
    "  %acc = for %k = %lo to %hi step %step iter(%acc_i = %acc0) : tile<BM, BN, f32> {\n"
    "    %a = load %A[%m0, %k] : tile<BM, BK, TA>\n"
    "    %b = load %B[%n0, %k] : tile<BN, BK, TB>\n"
    "    %bt = trans %b : tile<BK, BN, TB>\n"
    "    %d = dot %a, %bt, %acc_i : tile<BM, BN, f32>\n"
    "    yield %d\n"
    "  }\n"
    "  store %C[%m0, %n0], %acc\n"
    "}\n";

/* One f8 A tile times two B tiles: A's conversion to its operand layout has two users, so it
 * is not left to a dot but done once (dotop_move: swizzled buffer, ldmatrix, words unpacked). */
static const char dual8_tile[] =
    "kernel dual8\n"
    "tunables {\n"
    "  BM = 32 in [16, 32, 64]\n"
    "  BN = 32 in [16, 32, 64]\n"
    "  WARPS = 2 in [1, 2, 4]\n"
    "}\n"
    "args (%A: tensor<f8e4m3>[M, 64], %B: tensor<f8e5m2>[64, N], %D: tensor<f8e4m3>[64, N], "
    "%C: out tensor<f32>[M, N], %E: out tensor<f32>[M, N])\n"
    "grid (1)\n"
    "{\n"
    "  %z = const 0 : i32\n"
    "  %a = load %A[%z, %z] : tile<BM, 64, f8e4m3>\n"
    "  %b = load %B[%z, %z] : tile<64, BN, f8e5m2>\n"
    "  %d = load %D[%z, %z] : tile<64, BN, f8e4m3>\n"
    "  %c0 = zeros : tile<BM, BN, f32>\n"
    "  %c = dot %a, %b, %c0 : tile<BM, BN, f32>\n"
    "  %e = dot %a, %d, %c0 : tile<BM, BN, f32>\n"
    "  store %C[%z, %z], %c\n"
    "  store %E[%z, %z], %e\n"
    "}\n";

/* f8 matmuls (mma.m16n8k32 inline PTX, executed by mma_f8 above) against the IR interpreter,
 * for sm_89 and sm_90a, every pair of f8 kinds, several configs and odd shapes. */
static void f8_cases(void) {
  char *mm8_tile = slurp(TILEC_SOURCE_DIR "/tests/ptx/matmul_f8.tile");
  if (!CHECK(mm8_tile != NULL))
    return;
  /* cp: the copies of the K-contiguous operands go through cp.async (K a multiple of 16,
   * 16-byte aligned rows); odd K takes the element-copy loop into the same rings */
  const struct {
    const char *tile, *name, *shape, *set, *arch;
    bool cp;
  } fc[] = {
      {mm8_tile, "mm8", "M=70,N=50,K=100", "TA=f8e4m3,TB=f8e4m3", "sm_89", false},
      {mm8_tile, "mm8", "M=70,N=50,K=96", "TA=f8e5m2,TB=f8e5m2,BM=32,BN=32,BK=32,WARPS=2", "sm_90a",
       true},
      {mm8_tile, "mm8", "M=33,N=72,K=160", "TA=f8e4m3,TB=f8e5m2,BM=16,BN=64,BK=128,WARPS=1",
       "sm_90", true},
      {mm8_tile, "mm8", "M=130,N=20,K=64", "TA=f8e5m2,TB=f8e4m3,BM=128,BN=16,WARPS=8,STAGES=1",
       "sm_89", false},
      {mm8t_tile, "mm8t", "M=70,N=50,K=100", "TA=f8e4m3,TB=f8e4m3", "sm_90a", false},
      {mm8t_tile, "mm8t", "M=70,N=50,K=112", "TA=f8e4m3,TB=f8e4m3,STAGES=4", "sm_90a", true},
      {dual8_tile, "dual8", "M=30,N=40", "", "sm_89", false},
      {dual8_tile, "dual8", "M=64,N=64", "BM=64,BN=64,WARPS=4", "sm_90", false},
      {mm8t_tile, "mm8t", "M=45,N=64,K=96", "TA=f8e4m3,TB=f8e5m2,BM=32,BN=64,BK=32,WARPS=2",
       "sm_89", true},
  };
  for (size_t i = 0; i < sizeof fc / sizeof fc[0]; i++) {
    memset(&bank, 0, sizeof bank);
    run_text_case(fc[i].name, fc[i].tile, fc[i].shape, fc[i].set, fc[i].arch, 0);
    if (!CHECK(fc[i].cp == (bank.cp_accesses > 0)))
      fprintf(stderr, "  %s %s %s: %lld cp.async accesses, expected %s\n", fc[i].name, fc[i].shape,
              fc[i].set, bank.cp_accesses, fc[i].cp ? "some" : "none");
  }
  free(mm8_tile);
}

/* The swizzle of the dot operand buffers: with it, no ldmatrix (and no cp.async) of these
 * configs has a bank conflict; without it (CG_NO_SWIZZLE), rows of 32 bytes or more conflict.
 * The outputs are checked both ways. */
static void bank_conflicts(void) {
  static const struct {
    const char *kernel, *shape, *set;
  } bc[] = {
      {"matmul", "M=64,N=64,K=64", "BM=64,BN=64,BK=32,WARPS=4"},
      {"matmul", "M=64,N=64,K=64", "BM=32,BN=32,BK=64,WARPS=2"},
      {"matmul", "M=32,N=128,K=32", "BM=32,BN=128,BK=16,WARPS=4"},
      {"attention", "H=1,S=64,D=64", "BM=64,BN=64,WARPS=4"},
      {"attention", "H=1,S=64,D=128", "BM=32,BN=32,WARPS=2"},
      {"bsmatmul", "M=64,N=64,K=128,block=64", "BM=64,WARPS=4"},
  };
  for (size_t i = 0; i < sizeof bc / sizeof bc[0]; i++) {
    long long with[4], without[4];
    for (int sw = 0; sw < 2; sw++) {
      memset(&bank, 0, sizeof bank);
      run_case(bc[i].kernel, bc[i].shape, bc[i].set, NULL, sw ? CG_NO_SWIZZLE : 0);
      long long *o = sw ? without : with;
      o[0] = bank.ldm_accesses, o[1] = bank.ldm_conflicts;
      o[2] = bank.cp_accesses, o[3] = bank.cp_conflicts;
    }
    fprintf(stderr,
            "  bank %s %s: ldmatrix %lld accesses, %lld conflicts (%lld unswizzled); cp.async "
            "%lld, %lld (%lld)\n",
            bc[i].kernel, bc[i].set, with[0], with[1], without[1], with[2], with[3], without[3]);
    CHECK(with[0] > 0);
    CHECK_EQ_INT(0, with[1]);
    CHECK_EQ_INT(0, with[3]);
    CHECK(without[1] > 0);
  }
}

/* Pipelined loops: cp.async where the runtime strides and base addresses allow 16-byte copies,
 * the element-load path into the same ring where they do not (odd K, odd N); both at shapes
 * with partial tiles, checked against the references. Likewise vector global loads/stores:
 * tiles inside an aligned tensor, element accesses at the edges and for odd strides. */
static void pipeline_paths(void) {
  static const struct {
    const char *kernel, *shape, *set;
    bool cp, vec; /* the copies go through cp.async; some global accesses are vectors */
  } pc[] = {
      {"matmul", "M=70,N=72,K=48", "BM=32,BN=32,BK=32,WARPS=2,STAGES=3", true, true},
      {"matmul", "M=40,N=48,K=200", "BM=32,BN=16,BK=16,WARPS=2,STAGES=3", true, true},
      {"matmul", "M=40,N=47,K=199", "BM=32,BN=16,BK=16,WARPS=4,STAGES=4", false, false},
      {"matmul", "M=70,N=72,K=48", "BM=16,BN=64,BK=16,WARPS=4,STAGES=5", true, true},
      {"matmul", "M=100,N=70,K=33", "BM=32,BN=32,BK=16,WARPS=2,STAGES=3", false, true},
      {"matmul", "M=37,N=43,K=47", "BM=64,BN=32,BK=16,WARPS=4,STAGES=2", false, false},
      {"matmul", "M=40,N=72,K=48,transb=1", "BM=32,BN=64,BK=16,WARPS=4,STAGES=4", true, true},
      {"matmul", "M=64,N=64,K=64", "BM=32,BN=32,BK=16,WARPS=2,STAGES=1", false, true},
      {"bsmatmul", "M=70,N=64,K=96,block=32", "BM=32,WARPS=2,STAGES=4", true, true},
      /* odd N: B copied by the element loop, C stored by elem_loop (64 registers a thread) */
      {"matmul", "M=64,N=63,K=64", "BM=64,BN=128,BK=32,WARPS=4", true, false},
      /* odd K, not pipelined: A loaded by elem_loop (64 registers a thread), C vectors */
      {"matmul", "M=70,N=64,K=63", "BM=128,BN=64,BK=64,WARPS=4,STAGES=1", false, true},
      {"attention", "H=2,S=70,SKV=90,D=64,causal=1", "BM=32,BN=16,WARPS=2,STAGES=3", true, true},
  };
  long long loops = 0;
  for (size_t i = 0; i < sizeof pc / sizeof pc[0]; i++) {
    memset(&bank, 0, sizeof bank);
    run_case(pc[i].kernel, pc[i].shape, pc[i].set, NULL, 0);
    loops += bank.elem_loops;
    if (!CHECK(pc[i].cp == (bank.cp_accesses > 0)))
      fprintf(stderr, "  %s %s %s: %lld cp.async accesses, expected %s\n", pc[i].kernel,
              pc[i].shape, pc[i].set, bank.cp_accesses, pc[i].cp ? "some" : "none");
    if (!CHECK(pc[i].vec == (bank.gvec > 0)))
      fprintf(stderr, "  %s %s %s: %lld vector global accesses, expected %s\n", pc[i].kernel,
              pc[i].shape, pc[i].set, bank.gvec, pc[i].vec ? "some" : "none");
  }
  CHECK(loops > 0); /* the odd-shape cases above ran the element-path loop (elem_loop) */
}

int main(int argc, char **argv) {
  /* flags CG_ALIGNED: the aligned variant, on arguments whose last extents are multiples of 16
   * bytes (edge tiles in every dim); run_case checks that they keep its promise and that no
   * fallback was built. They run for "aligned", the others for a kernel name (or for all). */
  static const struct {
    const char *kernel, *shape, *set, *dtype;
    unsigned flags;
  } cases[] = {
      {"matmul", "M=70,N=50,K=40", "BM=32,BN=32,BK=16,WARPS=1", NULL, 0},
      {"matmul", "M=70,N=50,K=40", "BM=16,BN=64,BK=32,WARPS=2", "f16", 0},
      {"matmul", "M=100,N=70,K=33", "BM=64,BN=32,BK=16,WARPS=4,TC=f32", NULL, 0},
      {"matmul", "M=40,N=72,K=48,transb=1", "BM=32,BN=64,BK=16,WARPS=8", NULL, 0},
      {"matmul", "M=130,N=100,K=64", "", NULL, 0},
      {"attention", "H=2,S=40,D=64", "BM=16,BN=16,WARPS=1", NULL, 0},
      {"attention", "H=2,HKV=1,S=50,SKV=70,D=64,causal=1", "BM=32,BN=32,WARPS=2", "f16", 0},
      {"attention", "B=2,H=1,S=70,D=128", "BM=64,BN=32,WARPS=4", NULL, 0},
      {"attention", "H=1,S=100,D=64,causal=1", "BM=64,BN=64,WARPS=8", NULL, 0},
      {"bsattention", "H=2,S=70,mask=sliding:32", "BM=32,BN=32,WARPS=2", NULL, 0},
      {"bsattention", "H=1,S=130,mask=causal", "", NULL, 0},
      {"bsmatmul", "M=70,N=64,K=96,block=32", "BM=32,WARPS=2", NULL, 0},
      {"bsmatmul", "M=50,N=40,K=64,block=16", "BM=16,WARPS=1", "f16", 0},
      {"bsmatmul", "M=130,N=100,K=64", "", NULL, 0},
      {"matmul", "M=70,N=56,K=40", "BM=32,BN=32,BK=16,WARPS=1", NULL, CG_ALIGNED},
      {"matmul", "M=100,N=72,K=48", "BM=64,BN=32,BK=16,WARPS=4,TC=f32", "f16", CG_ALIGNED},
      {"matmul", "M=130,N=104,K=64", "", NULL, CG_ALIGNED},
      {"attention", "H=2,S=40,D=64", "BM=16,BN=16,WARPS=1", NULL, CG_ALIGNED},
      {"attention", "H=2,HKV=1,S=56,SKV=72,D=64,causal=1", "BM=32,BN=32,WARPS=2", "f16",
       CG_ALIGNED},
      {"attention", "B=2,H=1,S=72,D=128", "BM=64,BN=32,WARPS=4", NULL, CG_ALIGNED},
      {"bsattention", "H=2,S=72,mask=sliding:32", "BM=32,BN=32,WARPS=2", NULL, CG_ALIGNED},
      {"bsattention", "H=1,S=136,mask=causal", "", NULL, CG_ALIGNED},
      {"bsmatmul", "M=70,N=64,K=96,block=32", "BM=32,WARPS=2", NULL, CG_ALIGNED},
      {"bsmatmul", "M=130,N=104,K=64", "", NULL, CG_ALIGNED},
  };
  if (argc == 5 && !strcmp(argv[1], "--builtin")) { /* codegen_run --builtin KERNEL SHAPE SET */
    run_case(argv[2], argv[3], argv[4], NULL, 0);
    return TEST_MAIN_END();
  }
  if (argc == 4) { /* codegen_run FILE.tile SHAPE SET: one kernel of your own */
    FILE *f = fopen(argv[1], "rb");
    static char text[1 << 16];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
      fclose(f);
    text[n] = 0;
    run_text_case(argv[1], text, argv[2], argv[3], "sm_90a", 0);
    return TEST_MAIN_END();
  }
  static const char *const score_sets[] = {"BM=32,BN=32,WARPS=1", "BM=32,BN=32,WARPS=2",
                                           "BM=64,BN=16,WARPS=4", "BM=16,BN=64,WARPS=8"};
  for (size_t i = 0; i < sizeof score_sets / sizeof score_sets[0]; i++)
    if (argc < 2 || !strcmp(argv[1], "scores"))
      run_text_case("scores", scores_tile, "S=40,SKV=70,NB=3", score_sets[i], "sm_80", 0);
  static const char *const ops1_sets[] = {"BLOCK=32,WARPS=1", "BLOCK=64,WARPS=4",
                                          "BLOCK=128,WARPS=8", "BLOCK=256,WARPS=2"};
  for (size_t i = 0; i < sizeof ops1_sets / sizeof ops1_sets[0]; i++)
    if (argc < 2 || !strcmp(argv[1], "ops"))
      run_text_case("ops1", ops1_tile, "N=300,G=10,alpha=0.75,n=5", ops1_sets[i], "sm_80", 0);
  /* N = 300: the vector path masks the edge runs (their lanes keep the fill); N = 301 is not a
   * multiple of the run, so the element path reads the edge */
  if (argc < 2 || !strcmp(argv[1], "ops"))
    run_text_case("ops1", ops1_tile, "N=301,G=10,alpha=0.75,n=5", "BLOCK=128,WARPS=2", "sm_90a", 0);
  static const char *const ops2_sets[] = {"WARPS=1", "WARPS=2", "WARPS=4", "WARPS=8"};
  for (size_t i = 0; i < sizeof ops2_sets / sizeof ops2_sets[0]; i++)
    if (argc < 2 || !strcmp(argv[1], "ops"))
      run_text_case("ops2", ops2_tile, "M=50,K=13", ops2_sets[i], "sm_80", 0);
  if (argc < 2 || !strcmp(argv[1], "ops"))
    run_text_case("axpy", axpy_tile, "N=1000,alpha=0.5", "BLOCK=128", "sm_80", 0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (argc < 2 || (cases[i].flags & CG_ALIGNED ? !strcmp(argv[1], "aligned")
                                                 : strstr(cases[i].kernel, argv[1]) != NULL))
      run_case(cases[i].kernel, cases[i].shape, cases[i].set, cases[i].dtype, cases[i].flags);
  if (argc < 2 || !strcmp(argv[1], "aligned")) {
    run_text_case("shift", shift_tile, "N=296,s=3", "BLOCK=128", "sm_80", CG_ALIGNED);
    run_text_case("shift", shift_tile, "N=296,s=8", "BLOCK=64", "sm_90a", CG_ALIGNED);
  }
  if (argc < 2 || !strcmp(argv[1], "f8"))
    f8_cases();
  if (argc < 2 || !strcmp(argv[1], "bank"))
    bank_conflicts();
  if (argc < 2 || !strcmp(argv[1], "paths"))
    pipeline_paths();
  return TEST_MAIN_END();
}
