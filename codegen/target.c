/* target.c - the NVPTX targets tilec compiles for, and the LLVM set-up they share.
 *
 * Sits at the end of the pipeline: lowering (elsewhere in codegen/) hands an LLVM module to a
 * target machine made here, which emits PTX. The target table is the one place that says which
 * GPUs exist and which PTX ISA each is compiled with. The NVPTX back end is registered once per
 * process (pthread_once); every compilation then owns its own LLVMContext and module, and borrows
 * its thread's target machine for the arch (created on first use, kept until the thread exits:
 * creating one costs more than a small kernel's lowering), so compilations may run on several
 * threads at once.
 */
#include "codegen.h"
#include "lower.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

static const char nvptx_triple[] = "nvptx64-nvidia-cuda";

/* PTX ISA 8.0 (CUDA 12.0) for every target: the lowest that has sm_90a, and one ISA for all
 * targets keeps their PTX comparable. It needs a CUDA 12 driver to JIT. */
static const struct cg_target targets[] = {
    {"sm_80", 80, "+ptx80", 0}, {"sm_86", 86, "+ptx80", 0}, {"sm_87", 87, "+ptx80", 0},
    {"sm_89", 89, "+ptx80", 0}, {"sm_90", 90, "+ptx80", 0}, {"sm_90a", 90, "+ptx80", 1},
};

static pthread_once_t nvptx_once = PTHREAD_ONCE_INIT;

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t cap, const char *fmt,
                                                         ...) {
  va_list ap;
  if (!err || cap == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
}

const struct cg_target *cg_target_find(const char *arch) {
  size_t i;
  if (!arch)
    return NULL;
  for (i = 0; i < sizeof targets / sizeof targets[0]; i++)
    if (strcmp(targets[i].arch, arch) == 0)
      return &targets[i];
  return NULL;
}

int cg_llvm_version(char *buf, size_t cap) {
  unsigned major, minor, patch;
  int n;
  LLVMGetVersion(&major, &minor, &patch);
  n = snprintf(buf, cap, "%u.%u.%u", major, minor, patch);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Marks fn as a kernel entry point (`.entry` rather than `.func`). LLVM 19 reads this from
 * nvvm.annotations; LLVM 20 and later also accept the ptx_kernel calling convention. */
static void mark_kernel(LLVMContextRef ctx, LLVMModuleRef mod, LLVMValueRef fn) {
  LLVMMetadataRef ops[3];
  ops[0] = LLVMValueAsMetadata(fn);
  ops[1] = LLVMMDStringInContext2(ctx, "kernel", 6);
  ops[2] = LLVMValueAsMetadata(LLVMConstInt(LLVMInt32TypeInContext(ctx), 1, 0));
  LLVMAddNamedMetadataOperand(mod, "nvvm.annotations",
                              LLVMMetadataAsValue(ctx, LLVMMDNodeInContext2(ctx, ops, 3)));
}

/* One target machine per target per thread: an LLVMTargetMachine is not safe to share between
 * threads that emit at once, but one thread may reuse it for module after module. The key's
 * destructor disposes of a thread's machines when the thread exits; the main thread's live until
 * the process ends. */
#define NTARGETS (sizeof targets / sizeof targets[0])
static pthread_key_t tm_key;
static int tm_key_ok;

static void free_tms(void *p) {
  LLVMTargetMachineRef *tms = p;
  for (size_t i = 0; i < NTARGETS; i++)
    if (tms[i])
      LLVMDisposeTargetMachine(tms[i]);
  free(tms);
}

/* LLVM creates some process-wide objects lazily (the timer groups' lock, on the first pass
 * pipeline or code generation): an empty module through both, once, before any thread
 * compiles, so that threads compiling at once from a cold process never race to create them
 * (ThreadSanitizer reported it: LLVM's own synchronization is not instrumented). Best effort:
 * a failure here only means the first real compile creates them. */
static void warm_llvm(void) {
  LLVMContextRef c = LLVMContextCreate();
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("tilec_warm", c);
  LLVMTargetRef target;
  char *msg = NULL;
  LLVMSetTarget(m, nvptx_triple);
  if (LLVMGetTargetFromTriple(nvptx_triple, &target, &msg)) {
    LLVMDisposeMessage(msg);
  } else {
    LLVMTargetMachineRef tm =
        LLVMCreateTargetMachine(target, nvptx_triple, "sm_80", "+ptx80", LLVMCodeGenLevelDefault,
                                LLVMRelocDefault, LLVMCodeModelDefault);
    if (tm) {
      LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
      LLVMErrorRef e = LLVMRunPasses(m, "verify", tm, po);
      if (e)
        LLVMConsumeError(e);
      LLVMDisposePassBuilderOptions(po);
      LLVMMemoryBufferRef buf = NULL;
      if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMAssemblyFile, &msg, &buf))
        LLVMDisposeMessage(msg);
      else
        LLVMDisposeMemoryBuffer(buf);
      LLVMDisposeTargetMachine(tm);
    }
  }
  LLVMDisposeModule(m);
  LLVMContextDispose(c);
}

static void register_nvptx(void) {
  LLVMInitializeNVPTXTargetInfo();
  LLVMInitializeNVPTXTarget();
  LLVMInitializeNVPTXTargetMC();
  LLVMInitializeNVPTXAsmPrinter();
  tm_key_ok = pthread_key_create(&tm_key, free_tms) == 0;
  warm_llvm();
}

static char *llvm_options_text; /* cg_llvm_options' strings, alive for the process */

int cg_llvm_options(const char *args, char *err, size_t errcap) {
  enum { MAXARGS = 64 };
  const char *argv[MAXARGS];
  char *copy = strdup(args ? args : ""), *save = NULL;
  int argc = 0;
  if (!copy) {
    seterr(err, errcap, "out of memory (LLVM options)");
    return -1;
  }
  argv[argc++] = "tilec";
  for (char *a = strtok_r(copy, " \t", &save); a; a = strtok_r(NULL, " \t", &save)) {
    if (argc == MAXARGS) {
      seterr(err, errcap, "more than %d LLVM options", MAXARGS - 1);
      free(copy);
      return -1;
    }
    argv[argc++] = a;
  }
  pthread_once(&nvptx_once, register_nvptx); /* the NVPTX back end's options exist from here */
  LLVMParseCommandLineOptions(argc, argv, "tilec (TILEC_LLVM_ARGS)");
  llvm_options_text = copy; /* LLVM keeps pointers into the strings of some options */
  atexit(LLVMShutdown);     /* prints what -time-passes measured in the code generator */
  return 0;
}

LLVMTargetMachineRef cg_target_machine(const struct cg_target *t, char *err, size_t errcap) {
  LLVMTargetRef target;
  LLVMTargetMachineRef tm;
  char *msg = NULL;

  pthread_once(&nvptx_once, register_nvptx);
  if (LLVMGetTargetFromTriple(nvptx_triple, &target, &msg)) {
    seterr(err, errcap, "LLVM has no NVPTX target: %s", msg ? msg : "?");
    LLVMDisposeMessage(msg);
    return NULL;
  }
  /* CodeGenOpt Default, not Aggressive: the same SASS for the built-in kernels (docs/PERF.md)
   * with ~7% less NVPTX emission work; None (O0) costs registers and spills. */
  tm = LLVMCreateTargetMachine(target, nvptx_triple, t->arch, t->ptx_feature,
                               LLVMCodeGenLevelDefault, LLVMRelocDefault, LLVMCodeModelDefault);
  if (!tm)
    seterr(err, errcap, "LLVM could not create a target machine for %s", t->arch);
  return tm;
}

LLVMTargetMachineRef cg_thread_target_machine(const struct cg_target *t, char *err, size_t errcap) {
  LLVMTargetMachineRef *tms;
  size_t i = (size_t)(t - targets);

  pthread_once(&nvptx_once, register_nvptx);
  if (i >= NTARGETS || !tm_key_ok) {
    seterr(err, errcap, "internal error: no per-thread target machine for %s", t->arch);
    return NULL;
  }
  tms = pthread_getspecific(tm_key);
  if (!tms) {
    tms = calloc(NTARGETS, sizeof *tms);
    if (!tms || pthread_setspecific(tm_key, tms)) {
      free(tms);
      seterr(err, errcap, "out of memory (target machine cache)");
      return NULL;
    }
  }
  if (!tms[i])
    tms[i] = cg_target_machine(t, err, errcap);
  return tms[i];
}

const char *cg_triple(void) { return nvptx_triple; }

int cg_emit_test_ptx(const char *arch, char **ptx_out, char *err, size_t errcap) {
  const struct cg_target *t = cg_target_find(arch);
  LLVMTargetMachineRef tm = NULL;
  LLVMTargetDataRef layout = NULL;
  LLVMContextRef ctx = NULL;
  LLVMModuleRef mod = NULL;
  LLVMBuilderRef b = NULL;
  LLVMMemoryBufferRef buf = NULL;
  LLVMTypeRef gptr, fty;
  LLVMValueRef fn;
  char *msg = NULL, *ptx;
  size_t n;
  int rc = -1;

  *ptx_out = NULL;
  if (!t) {
    seterr(err, errcap, "unknown target '%s' (known: sm_80 sm_86 sm_87 sm_89 sm_90 sm_90a)",
           arch ? arch : "(null)");
    return -1;
  }
  tm = cg_target_machine(t, err, errcap);
  if (!tm)
    goto fail;

  ctx = LLVMContextCreate();
  mod = LLVMModuleCreateWithNameInContext("tilec_probe", ctx);
  LLVMSetTarget(mod, nvptx_triple);
  layout = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(mod, layout);

  gptr = LLVMPointerTypeInContext(ctx, 1);
  fty = LLVMFunctionType(LLVMVoidTypeInContext(ctx), &gptr, 1, 0);
  fn = LLVMAddFunction(mod, "tilec_probe", fty);
  b = LLVMCreateBuilderInContext(ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
  LLVMBuildStore(b, LLVMConstReal(LLVMFloatTypeInContext(ctx), 1.0), LLVMGetParam(fn, 0));
  LLVMBuildRetVoid(b);
  mark_kernel(ctx, mod, fn);

  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
    seterr(err, errcap, "invalid LLVM module: %s", msg ? msg : "?");
    goto fail;
  }
  LLVMDisposeMessage(msg);
  msg = NULL;

  if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMAssemblyFile, &msg, &buf)) {
    seterr(err, errcap, "PTX emission for %s failed: %s", t->arch, msg ? msg : "?");
    goto fail;
  }
  n = LLVMGetBufferSize(buf);
  ptx = malloc(n + 1);
  if (!ptx) {
    seterr(err, errcap, "out of memory (%zu bytes of PTX)", n);
    goto fail;
  }
  memcpy(ptx, LLVMGetBufferStart(buf), n);
  ptx[n] = '\0';
  *ptx_out = ptx;
  rc = 0;

fail:
  if (msg)
    LLVMDisposeMessage(msg);
  if (buf)
    LLVMDisposeMemoryBuffer(buf);
  if (b)
    LLVMDisposeBuilder(b);
  if (mod)
    LLVMDisposeModule(mod);
  if (layout)
    LLVMDisposeTargetData(layout);
  if (ctx)
    LLVMContextDispose(ctx);
  if (tm)
    LLVMDisposeTargetMachine(tm);
  return rc;
}
