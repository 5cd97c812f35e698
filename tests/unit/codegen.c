/* codegen.c - the LLVM lowering compiles every built-in kernel, for every target, to PTX that
 * ptxas accepts.
 *
 * For each built-in kernel, configs from its space (smallest, largest that fits, default, odd
 * mixes, WARPS 1..8) are lowered with cg_lower for sm_80 sm_86 sm_89 sm_90 sm_90a (the largest
 * configs for sm_80 and sm_90a only, to keep the run short) and, when ptxas is found
 * ($TILEC_PTXAS, $CUDA_HOME/bin, /usr/local/cuda/bin), assembled with `ptxas -v -arch=<target>`.
 * The PTX of every kernel with a dot contains mma.sync and ldmatrix, and cp.async with
 * cp.async.wait_group exactly when STAGES > 1 (every built-in loop feeds its dot from loads); the
 * default config of each kernel has no spill stores or loads on sm_90a. Items run on worker threads
 * (cg_lower is thread-safe); the checks run on the main thread. Also: the errors of what is not
 * lowered, and the IR->PTX time of the default matmul config (median of 20, printed). The sweep is
 * split into parts so that each stays well within the unit-test timeout on a loaded
 * machine: each config names its part, codegen_PART.c (unit.codegen_PART) defines CODEGEN_PART
 * "PART" and includes this file to sweep that part's configs; this file (unit.codegen) sweeps the
 * configs of part "" (matmul and bsmatmul) and runs the other checks, among them that every
 * built-in kernel has at least 6 configs and every part its test.
 */
#include "codegen/codegen.h"
#include "compiler/gpu.h"
#include "ir/ir.h"
#include "kernels/builtin_sources.h"
#include "tests/unit/check.h"
#include "tests/unit/cuda_tools.h"
#include "tests/unit/files.h"

#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The part of the sweep this test runs: unit.codegen_PART sweeps the configs whose part is PART;
 * unit.codegen (PART "") sweeps the rest and runs every other check. */
#ifndef CODEGEN_PART
#define CODEGEN_PART ""
#endif

static const char *const all_targets[] = {"sm_80", "sm_86", "sm_89", "sm_90", "sm_90a", NULL};
static const char *const few_targets[] = {"sm_80", "sm_90a", NULL};

/* One config of one kernel; `big` configs are compiled for few_targets only. `part` names the
 * test that sweeps it (see CODEGEN_PART): the parts take a similar time (20-40 s of CPU each). */
typedef struct config {
  const char *kernel, *set;
  bool big, is_default;
  const char *part;
} config;

static const config configs[] = {
    {"matmul", "BM=16,BN=16,BK=16,WARPS=1,STAGES=1", false, false, ""},
    {"matmul", "", false, true, ""},
    {"matmul", "BM=16,BN=128,BK=32,WARPS=2", false, false, ""},
    {"matmul", "BM=256,BN=32,BK=16,WARPS=4,TA=f16,TC=f32", false, false, ""},
    {"matmul", "BM=64,BN=64,BK=64,WARPS=8,TC=f16", false, false, ""},
    {"matmul", "BM=256,BN=128,BK=32,WARPS=8", true, false, ""},
    {"matmul", "BM=128,BN=256,BK=32,WARPS=8,TA=f16", true, false, ""},
    {"attention", "BM=16,BN=16,WARPS=1,STAGES=1", false, false, "attention"},
    {"attention", "", false, true, "attention"},
    {"attention", "BM=128,BN=64,WARPS=4,causal=1", false, false, "attention"},
    {"attention", "BM=32,BN=128,WARPS=2,D=128,T=f16", true, false, "attention"}, /* 128 KiB rings */
    {"attention", "BM=64,BN=32,WARPS=8", false, false, "attention"},
    {"attention", "BM=128,BN=128,WARPS=8,D=128,STAGES=1", true, false, "attention"},
    {"bsattention", "BM=16,BN=16,WARPS=1,STAGES=1", false, false, "bsattention"},
    {"bsattention", "", false, true, "bsattention"},
    {"bsattention", "BM=128,BN=32,WARPS=4,T=f16", false, false, "bsattention"},
    {"bsattention", "BM=32,BN=64,WARPS=2,D=128", false, false, "bsattention_d128"},
    {"bsattention", "BM=64,BN=128,WARPS=8", false, false, "bsattention"},
    {"bsattention", "BM=128,BN=128,WARPS=8,D=128,STAGES=1", true, false, "bsattention_d128"},
    {"bsmatmul", "BM=16,WARPS=1,BS=16,STAGES=1", false, false, ""},
    {"bsmatmul", "", false, true, ""},
    {"bsmatmul", "BM=32,BS=64,WARPS=2,TC=f32", false, false, ""},
    {"bsmatmul", "BM=128,BS=16,WARPS=4,T=f16", false, false, ""},
    {"bsmatmul", "BM=64,BS=128,WARPS=8", false, false, ""},
    {"bsmatmul", "BM=128,BS=128,WARPS=8,STAGES=1", true, false, ""},
};

enum { NCONFIGS = sizeof configs / sizeof configs[0], MAX_ITEMS = NCONFIGS * 5 };

/* One (config, target) compilation and what came of it. */
typedef struct item {
  const config *c;
  const char *arch;
  int lower_rc;
  char err[2048];
  bool has_dot, has_mma, has_ldm, has_cp, has_wait, has_target;
  int smem;
  int ptxas_rc; /* -2: not run */
  int regs, spill_stores, spill_loads;
  char ptxas_out[1024];
} item;

typedef struct queue {
  item *items;
  int n, next;
  const char *ptxas;
  pthread_mutex_t mu;
} queue;

static const char *source(const char *name) {
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, name))
      return s->text;
  return NULL;
}

/* Parses, specializes and builds the GPU IR of a built-in kernel with `set`. The caller frees
 * *k, *spec (ir_kernel_free) and g (cc_gpu_free) when this returns 0. */
static int build_gpu(const char *kernel, const char *set, ir_kernel **k, ir_kernel **spec,
                     cc_gpu *g, char *err, size_t cap) {
  const char *text = source(kernel);
  ir_diag d;
  ir_config cfg = {0};
  *k = *spec = NULL;
  if (!text) {
    snprintf(err, cap, "no built-in kernel %s", kernel);
    return -1;
  }
  if (ir_parse(text, strlen(text), kernel, k, &d) || ir_config_parse(&cfg, set, &d) ||
      ir_specialize(*k, &cfg, spec, &d) || cc_gpu_build(*spec, g, &d)) {
    snprintf(err, cap, "%s", d.msg);
    ir_kernel_free(*spec);
    ir_kernel_free(*k);
    *k = *spec = NULL;
    return -1;
  }
  return 0;
}

static bool has_op(const ir_block *b, ir_opcode code) {
  for (const ir_op *op = b->first; op; op = op->next) {
    if (op->code == code)
      return true;
    for (int r = 0; r < op->nregions; r++)
      if (op->regions[r] && has_op(op->regions[r], code))
        return true;
  }
  return false;
}

/* Runs `ptxas -v -arch=<arch> src -o obj`, its output into log[]; returns its exit status. */
static int run_ptxas(const char *ptxas, const char *arch, const char *ptx, char *log, size_t cap) {
  char src[] = "/tmp/tilec_codegen_XXXXXX.ptx", obj[64], out[64], archflag[32];
  int fd = mkstemps(src, 4), status = -1;
  if (fd < 0)
    return -1;
  size_t len = strlen(ptx);
  bool ok = write(fd, ptx, len) == (ssize_t)len;
  close(fd);
  snprintf(obj, sizeof obj, "%s.cubin", src);
  snprintf(out, sizeof out, "%s.log", src);
  snprintf(archflag, sizeof archflag, "-arch=%s", arch);
  char *argv[] = {(char *)ptxas, (char *)"-v", archflag, src, (char *)"-o", obj, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  if (ok && posix_spawn(&pid, ptxas, &fa, NULL, argv, environ) == 0 &&
      waitpid(pid, &status, 0) == pid)
    status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  else
    status = -1;
  posix_spawn_file_actions_destroy(&fa);
  log[0] = 0;
  FILE *f = fopen(out, "r");
  if (f) {
    size_t n = fread(log, 1, cap - 1, f);
    log[n] = 0;
    fclose(f);
  }
  unlink(src);
  unlink(obj);
  unlink(out);
  return status;
}

static int after(const char *log, const char *key) {
  const char *p = strstr(log, key);
  return p ? atoi(p + strlen(key)) : -1;
}

/* The number just before `key` in log ("16 bytes spill stores"), or -1. */
static int before(const char *log, const char *key) {
  const char *p = strstr(log, key);
  if (!p)
    return -1;
  while (p > log && p[-1] == ' ')
    p--;
  while (p > log && p[-1] >= '0' && p[-1] <= '9')
    p--;
  return atoi(p);
}

static void run_item(item *it, const char *ptxas) {
  ir_kernel *k, *spec;
  cc_gpu g;
  cg_output out;
  it->ptxas_rc = -2;
  it->lower_rc = build_gpu(it->c->kernel, it->c->set, &k, &spec, &g, it->err, sizeof it->err);
  if (it->lower_rc)
    return;
  it->has_dot = has_op(spec->body, IR_OP_DOT);
  it->lower_rc = cg_lower(&g, it->arch, CG_EMIT_PTX, &out, it->err, sizeof it->err);
  cc_gpu_free(&g);
  ir_kernel_free(spec);
  ir_kernel_free(k);
  if (it->lower_rc)
    return;
  char target[32];
  snprintf(target, sizeof target, ".target %s", it->arch);
  it->has_target = strstr(out.ptx, target) != NULL;
  it->has_mma = strstr(out.ptx, "mma.sync.aligned.m16n8k16") != NULL;
  it->has_ldm = strstr(out.ptx, "ldmatrix.sync.aligned.m8n8") != NULL;
  it->has_cp = strstr(out.ptx, "cp.async.cg.shared.global") != NULL;
  it->has_wait = strstr(out.ptx, "cp.async.wait_group") != NULL;
  it->smem = out.stats.smem_bytes;
  if (ptxas) {
    char log[8192];
    it->ptxas_rc = run_ptxas(ptxas, it->arch, out.ptx, log, sizeof log);
    it->regs = after(log, "Used ");
    it->spill_stores = before(log, "bytes spill stores");
    it->spill_loads = before(log, "bytes spill loads");
    snprintf(it->ptxas_out, sizeof it->ptxas_out, "%.1000s", log);
  }
  cg_output_free(&out);
}

static void *worker(void *arg) {
  queue *q = arg;
  for (;;) {
    pthread_mutex_lock(&q->mu);
    int i = q->next < q->n ? q->next++ : -1;
    pthread_mutex_unlock(&q->mu);
    if (i < 0)
      return NULL;
    run_item(&q->items[i], q->ptxas);
  }
}

static void check_items(item *items, int n) {
  for (int i = 0; i < n; i++) {
    item *it = &items[i];
    const char *set = it->c->set[0] ? it->c->set : "(default)";
    if (!CHECK(it->lower_rc == 0)) {
      fprintf(stderr, "  %s %s %s: %s\n", it->c->kernel, set, it->arch, it->err);
      continue;
    }
    CHECK(it->has_target);
    if (it->has_dot && !CHECK(it->has_mma))
      fprintf(stderr, "  %s %s %s: no mma.sync in the PTX\n", it->c->kernel, set, it->arch);
    if (it->has_dot && !CHECK(it->has_ldm))
      fprintf(stderr, "  %s %s %s: no ldmatrix in the PTX\n", it->c->kernel, set, it->arch);
    /* every built-in kernel's loop feeds its dot from loads: pipelined unless STAGES=1 */
    bool piped = !strstr(it->c->set, "STAGES=1");
    if (!CHECK(it->has_cp == piped && it->has_wait == piped))
      fprintf(stderr, "  %s %s %s: cp.async %d, wait_group %d, expected %d\n", it->c->kernel, set,
              it->arch, it->has_cp, it->has_wait, piped);
    if (it->ptxas_rc != -2 && !CHECK(it->ptxas_rc == 0))
      fprintf(stderr, "  %s %s %s: ptxas failed:\n%.1000s\n", it->c->kernel, set, it->arch,
              it->ptxas_out);
    if (it->ptxas_rc == 0 && it->c->is_default && !strcmp(it->arch, "sm_90a")) {
      CHECK_EQ_INT(0, it->spill_stores);
      CHECK_EQ_INT(0, it->spill_loads);
    }
    if (it->ptxas_rc == 0 && (!strcmp(it->arch, "sm_90a")))
      fprintf(stderr, "  %-11s %-42s %-6s %3d registers, spills %d/%d bytes, smem %d bytes\n",
              it->c->kernel, set, it->arch, it->regs, it->spill_stores, it->spill_loads, it->smem);
  }
}

/* Every built-in kernel has at least 6 configs in the table, and every part named in the table
 * has its test, tests/unit/codegen_PART.c, that selects it (so every config is swept). */
static void check_parts(void) {
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++) {
    int n = 0;
    for (int c = 0; c < NCONFIGS; c++)
      n += strcmp(configs[c].kernel, s->name) == 0;
    if (!CHECK(n >= 6))
      fprintf(stderr, "  %s: %d configs in the sweep, want at least 6\n", s->name, n);
  }
  for (int c = 0; c < NCONFIGS; c++) {
    const char *part = configs[c].part;
    bool seen = false;
    for (int e = 0; e < c && !seen; e++)
      seen = strcmp(configs[e].part, part) == 0;
    if (seen || !part[0])
      continue;
    char path[512], want[128];
    snprintf(path, sizeof path, "%s/tests/unit/codegen_%s.c", TILEC_SOURCE_DIR, part);
    snprintf(want, sizeof want, "#define CODEGEN_PART \"%s\"", part);
    char *text = slurp(path);
    if (!CHECK(text && strstr(text, want)))
      fprintf(stderr, "  part %s is not swept: %s lacks '%s'\n", part, path, want);
    free(text);
  }
}

/* What is not lowered fails with a message naming it, at the op. */
static void check_errors(void) {
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"kernel k\nargs (%A: tensor<bf16>[M, 8], %B: tensor<bf16>[8, 16], %C: out tensor<f32>[M, "
       "16])\ngrid (1)\n{\n  %z = const 0 : i32\n  %a = load %A[%z, %z] : tile<16, 8, bf16>\n"
       "  %b = load %B[%z, %z] : tile<8, 16, bf16>\n  %c = zeros : tile<16, 16, f32>\n"
       "  %d = dot %a, %b, %c : tile<16, 16, f32>\n  store %C[%z, %z], %d\n}\n",
       "K = 8 is not a multiple of 16"},
      {"kernel k\nargs (%A: tensor<f32>[N], %C: out tensor<f8e4m3>[N])\ngrid (1)\n{\n"
       "  %z = const 0 : i32\n  %a = load %A[%z] : tile<32, f32>\n"
       "  %c = cast %a : tile<32, f8e4m3>\n  store %C[%z], %c\n}\n",
       "'cast' on f8e4m3 values is not lowered"},
      {"kernel k\nargs (%A: tensor<f8e4m3>[M, 32], %B: tensor<f8e4m3>[32, 8], %C: out "
       "tensor<f32>[M, 8])\ngrid (1)\n{\n  %z = const 0 : i32\n"
       "  %a = load %A[%z, %z] : tile<16, 32, f8e4m3>\n"
       "  %b = load %B[%z, %z] : tile<32, 8, f8e4m3>\n  %c = zeros : tile<16, 8, f32>\n"
       "  %d = dot %a, %b, %c : tile<16, 8, f32>\n  store %C[%z, %z], %d\n}\n",
       "f8 tensor cores need sm_89+"},
      {"kernel k\nargs (%A: tensor<f64>[N], %C: out tensor<f64>[N])\ngrid (1)\n{\n"
       "  %z = const 0 : i32\n  %a = load %A[%z] : tile<32, f64>\n"
       "  %c = exp %a : tile<32, f64>\n  store %C[%z], %c\n}\n",
       "'exp' of f64 is not lowered"},
      {"kernel k\nargs (%A: tensor<f32>[M, N], %C: out tensor<f32>[N, M])\ngrid (1)\n{\n"
       "  %z = const 0 : i32\n  %a = load %A[%z, %z] : tile<256, 256, f32>\n"
       "  %t = trans %a : tile<256, 256, f32>\n  %r = reshape %t : tile<65536, f32>\n"
       "  %s = reshape %r : tile<256, 256, f32>\n  store %C[%z, %z], %s\n}\n",
       "bytes of shared memory; sm_86 allows 101376"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ir_kernel *k = NULL, *spec = NULL;
    ir_diag d;
    ir_config cfg = {0};
    cc_gpu g;
    cg_output out;
    char err[2048];
    if (!CHECK(ir_parse(cases[i].text, strlen(cases[i].text), "err.tile", &k, &d) == IR_OK &&
               ir_verify(k, &d) == IR_OK && ir_specialize(k, &cfg, &spec, &d) == IR_OK &&
               cc_gpu_build(spec, &g, &d) == IR_OK)) {
      fprintf(stderr, "  case %zu: %s\n", i, d.msg);
      ir_kernel_free(spec);
      ir_kernel_free(k);
      continue;
    }
    CHECK_EQ_INT(-1, cg_lower(&g, "sm_86", CG_EMIT_PTX, &out, err, sizeof err));
    CHECK(out.ptx == NULL && out.llvm == NULL);
    CHECK_CONTAINS(err, cases[i].want);
    cc_gpu_free(&g);
    ir_kernel_free(spec);
    ir_kernel_free(k);
  }
}

/* Pointer ops the built-in kernels do not use (masked store_ptr of a tile, an unmasked scalar
 * store_ptr, a masked load_ptr without `other`) compile and assemble for every target. */
static void check_pointer_ops(const char *ptxas) {
  static const char text[] = "kernel ptrs\n"
                             "args (%P: ptr<f32>, %Q: ptr<i32>, n: i32)\n"
                             "grid (1)\n"
                             "{\n"
                             "  %i = arange 0, 256 : tile<256, i32>\n"
                             "  %nn = const n : i32\n"
                             "  %m = cmp lt %i, %nn : tile<256, i1>\n"
                             "  %p = addptr %P, %i : tile<256, ptr<f32>>\n"
                             "  %x = load_ptr %p, %m : tile<256, f32>\n"
                             "  %y = mul %x, %x : tile<256, f32>\n"
                             "  store_ptr %p, %y, %m\n"
                             "  %s = reduce sum %i, 0 : i32\n"
                             "  store_ptr %Q, %s\n"
                             "}\n";
  ir_kernel *k = NULL, *spec = NULL;
  ir_diag d;
  ir_config cfg = {0};
  cc_gpu g;
  if (!CHECK(ir_parse(text, strlen(text), "ptrs.tile", &k, &d) == IR_OK &&
             ir_verify(k, &d) == IR_OK && ir_specialize(k, &cfg, &spec, &d) == IR_OK &&
             cc_gpu_build(spec, &g, &d) == IR_OK)) {
    fprintf(stderr, "  %s\n", d.msg);
    ir_kernel_free(spec);
    ir_kernel_free(k);
    return;
  }
  for (const char *const *t = all_targets; *t; t++) {
    cg_output out;
    char err[2048], log[8192];
    if (!CHECK(cg_lower(&g, *t, CG_EMIT_PTX, &out, err, sizeof err) == 0)) {
      fprintf(stderr, "  ptrs %s: %s\n", *t, err);
      continue;
    }
    CHECK_CONTAINS(out.ptx, "st.global");
    if (ptxas && !CHECK(run_ptxas(ptxas, *t, out.ptx, log, sizeof log) == 0))
      fprintf(stderr, "  ptrs %s: ptxas failed:\n%.1000s\n", *t, log);
    cg_output_free(&out);
  }
  cc_gpu_free(&g);
  ir_kernel_free(spec);
  ir_kernel_free(k);
}

/* tests/ptx/matmul_f8.tile (f8 matmul) for every f8 kind pair and several configs on sm_89,
 * sm_90 and sm_90a (the default on all three, the others on one each, to keep the test short):
 * the PTX has ISA 8.4, ldmatrix, cp.async (A pipelined, unless STAGES=1) and the f8 mma with
 * the operand kinds, and ptxas accepts it; a
 * bf16 matmul for sm_89 keeps ISA 8.0 (8.4 only where f8 mma needs it). */
static void check_f8(const char *ptxas) {
  static const struct {
    const char *set, *targets[3];
  } cases[] = {
      {"TA=f8e4m3,TB=f8e4m3", {"sm_89", "sm_90", "sm_90a"}},
      {"TA=f8e5m2,TB=f8e5m2,BM=128,BN=128,BK=128,WARPS=8", {"sm_90a"}},
      {"TA=f8e4m3,TB=f8e5m2,BM=16,BN=16,BK=32,WARPS=1", {"sm_89"}},
      {"TA=f8e5m2,TB=f8e4m3,BM=32,BN=128,BK=64,WARPS=2", {"sm_90"}},
      {"TA=f8e4m3,TB=f8e4m3,STAGES=1", {"sm_89"}},
  };
  char *text = slurp(TILEC_SOURCE_DIR "/tests/ptx/matmul_f8.tile");
  if (!CHECK(text != NULL))
    return;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *set = cases[i].set;
    ir_kernel *k = NULL, *spec = NULL;
    ir_diag d;
    ir_config cfg = {0};
    cc_gpu g;
    if (!CHECK(ir_parse(text, strlen(text), "matmul_f8.tile", &k, &d) == IR_OK &&
               ir_config_parse(&cfg, set, &d) == IR_OK &&
               ir_specialize(k, &cfg, &spec, &d) == IR_OK && cc_gpu_build(spec, &g, &d) == IR_OK)) {
      fprintf(stderr, "  matmul_f8 %s: %s\n", set, d.msg);
      ir_kernel_free(spec);
      ir_kernel_free(k);
      continue;
    }
    char want[96];
    snprintf(want, sizeof want, "mma.sync.aligned.m16n8k32.row.col.f32.%s.%s.f32",
             strstr(set, "TA=f8e4m3") ? "e4m3" : "e5m2",
             strstr(set, "TB=f8e4m3") ? "e4m3" : "e5m2");
    for (const char *const *t = cases[i].targets; t < cases[i].targets + 3 && *t; t++) {
      cg_output out;
      char err[2048], log[8192];
      if (!CHECK(cg_lower(&g, *t, CG_EMIT_PTX, &out, err, sizeof err) == 0)) {
        fprintf(stderr, "  matmul_f8 %s %s: %s\n", set, *t, err);
        continue;
      }
      CHECK_CONTAINS(out.ptx, ".version 8.4");
      CHECK_CONTAINS(out.ptx, "ldmatrix.sync.aligned");
      CHECK_CONTAINS(out.ptx, want);
      /* A (K-contiguous) is pipelined with cp.async unless STAGES=1 */
      if (!CHECK((strstr(set, "STAGES=1") == NULL) ==
                 (strstr(out.ptx, "cp.async.cg.shared.global") != NULL)))
        fprintf(stderr, "  matmul_f8 %s %s: cp.async %s\n", set, *t,
                strstr(set, "STAGES=1") ? "where STAGES=1" : "missing");
      if (ptxas && !CHECK(run_ptxas(ptxas, *t, out.ptx, log, sizeof log) == 0))
        fprintf(stderr, "  matmul_f8 %s %s: ptxas failed:\n%.1000s\n", set, *t, log);
      cg_output_free(&out);
    }
    cc_gpu_free(&g);
    ir_kernel_free(spec);
    ir_kernel_free(k);
  }
  free(text);
  char err[256];
  cg_output out;
  ir_kernel *k, *spec;
  cc_gpu g;
  if (CHECK(build_gpu("matmul", "BM=32,BN=32,WARPS=1", &k, &spec, &g, err, sizeof err) == 0)) {
    if (CHECK(cg_lower(&g, "sm_89", CG_EMIT_PTX, &out, err, sizeof err) == 0))
      CHECK_CONTAINS(out.ptx, ".version 8.0");
    cg_output_free(&out);
    cc_gpu_free(&g);
    ir_kernel_free(spec);
    ir_kernel_free(k);
  }
}

/* The number of lines of s. */
static int lines(const char *s) {
  int n = 0;
  for (; s && *s; s++)
    n += *s == '\n';
  return n;
}

/* The aligned variant (CG_ALIGNED) of every default: ptxas accepts it without spills, it is
 * smaller than the generic one (no fallback paths) and needs at most 8 more registers. */
static void check_aligned(const char *ptxas) {
  static const char *const kernels[] = {"matmul", "attention", "bsattention", "bsmatmul"};
  static const char *const arches[] = {"sm_80", "sm_89", "sm_90a"};
  for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
    char err[256], log[2][8192];
    ir_kernel *k, *spec;
    cc_gpu g;
    if (!CHECK(build_gpu(kernels[i], "", &k, &spec, &g, err, sizeof err) == 0)) {
      fprintf(stderr, "  %s: %s\n", kernels[i], err);
      continue;
    }
    for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++) {
      cg_output out[2];
      bool ok = true;
      for (int v = 0; v < 2; v++)
        if (!CHECK(cg_lower(&g, arches[a], CG_EMIT_PTX | (v ? CG_ALIGNED : 0), &out[v], err,
                            sizeof err) == 0)) {
          fprintf(stderr, "  %s %s: %s\n", kernels[i], arches[a], err);
          ok = false;
        }
      if (ok && !CHECK(lines(out[1].ptx) < lines(out[0].ptx)))
        fprintf(stderr, "  %s %s: aligned %d PTX lines, generic %d\n", kernels[i], arches[a],
                lines(out[1].ptx), lines(out[0].ptx));
      if (ok && ptxas) {
        for (int v = 0; v < 2; v++)
          CHECK_EQ_INT(0, run_ptxas(ptxas, arches[a], out[v].ptx, log[v], sizeof log[v]));
        int r0 = after(log[0], "Used "), r1 = after(log[1], "Used ");
        int s1 = before(log[1], "bytes spill stores");
        if (!CHECK(r1 > 0 && r1 <= r0 + 8 && s1 == 0))
          fprintf(stderr, "  %s %s: aligned %d registers, %d spill bytes; generic %d\n", kernels[i],
                  arches[a], r1, s1, r0);
      }
      for (int v = 0; v < 2; v++)
        cg_output_free(&out[v]);
    }
    cc_gpu_free(&g);
    ir_kernel_free(spec);
    ir_kernel_free(k);
  }
}

static int cmp_line(const void *x, const void *y) {
  const char *a = *(const char *const *)x, *b = *(const char *const *)y;
  size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
  int c = memcmp(a, b, la < lb ? la : lb);
  return c ? c : (la > lb) - (la < lb);
}

/* The lines of text a, sorted (pointers into a; *n of them; the caller frees). */
static const char **sorted_lines(const char *a, int *n) {
  *n = 0;
  for (const char *p = a; *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] != 0))
    ++*n;
  const char **v = malloc(sizeof *v * (size_t)(*n ? *n : 1));
  int i = 0;
  for (const char *p = a; v && *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] != 0))
    v[i++] = p;
  if (v)
    qsort(v, (size_t)*n, sizeof *v, cmp_line);
  return v;
}

/* How many lines of a have no equal line in b, or of b in a (the larger count): a measure of
 * how far two PTX texts are apart that a moved block or renumbered branch does not inflate. */
static int lines_apart(const char *a, const char *b) {
  int na, nb, only[2] = {0, 0};
  const char **x = sorted_lines(a, &na), **y = sorted_lines(b, &nb);
  if (!x || !y) {
    free(x), free(y);
    return INT_MAX;
  }
  int i = 0, j = 0;
  while (i < na || j < nb) {
    int c = i == na ? 1 : j == nb ? -1 : cmp_line(&x[i], &y[j]);
    only[0] += c<0, only[1] += c> 0;
    i += c <= 0, j += c >= 0;
  }
  free(x), free(y);
  return only[0] > only[1] ? only[0] : only[1];
}

/* tilec's trimmed O3 (the default) against LLVM's whole default<O3> for one variant: for the
 * default config of every built-in kernel on sm_90a, the same registers and spills from ptxas,
 * and at most 16 PTX lines without an equal line in the other text. */
static void check_o3_variant(const char *ptxas, unsigned variant) {
  static const char *const kernels[] = {"matmul", "attention", "bsattention", "bsmatmul"};
  for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
    char err[256], log[2][8192];
    ir_kernel *k, *spec;
    cc_gpu g;
    cg_output out[2];
    if (!CHECK(build_gpu(kernels[i], "", &k, &spec, &g, err, sizeof err) == 0)) {
      fprintf(stderr, "  %s: %s\n", kernels[i], err);
      continue;
    }
    for (int v = 0; v < 2; v++)
      if (!CHECK(cg_lower(&g, "sm_90a", CG_EMIT_PTX | variant | (v ? CG_OPT_LLVM_O3 : 0), &out[v],
                          err, sizeof err) == 0))
        fprintf(stderr, "  %s: %s\n", kernels[i], err);
    int differ = out[0].ptx && out[1].ptx ? lines_apart(out[0].ptx, out[1].ptx) : 0;
    if (!CHECK(differ <= 16))
      fprintf(stderr, "  %s%s: %d PTX lines differ between o3 and llvm-o3\n", kernels[i],
              variant ? " (aligned)" : "", differ);
    if (ptxas && out[0].ptx && out[1].ptx) {
      for (int v = 0; v < 2; v++)
        CHECK_EQ_INT(0, run_ptxas(ptxas, "sm_90a", out[v].ptx, log[v], sizeof log[v]));
      int r0 = after(log[0], "Used "), r1 = after(log[1], "Used ");
      int s0 = before(log[0], "bytes spill stores"), s1 = before(log[1], "bytes spill stores");
      if (!CHECK(r0 > 0 && r0 == r1 && s0 == s1))
        fprintf(stderr, "  %s%s: o3 %d registers, %d spill bytes; llvm-o3 %d, %d\n", kernels[i],
                variant ? " (aligned)" : "", r0, s0, r1, s1);
    }
    for (int v = 0; v < 2; v++)
      cg_output_free(&out[v]);
    cc_gpu_free(&g);
    ir_kernel_free(spec);
    ir_kernel_free(k);
  }
}

/* tilec's trimmed O3 against LLVM's whole default<O3>, for the generic and the aligned variant
 * (whose pipeline also leaves out the third instcombine). */
static void check_o3(const char *ptxas) {
  check_o3_variant(ptxas, 0);
  check_o3_variant(ptxas, CG_ALIGNED);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* IR -> PTX time of the default matmul (cg_lower: lowering, O3, emission), median of 20. */
static void time_default_matmul(void) {
  ir_kernel *k, *spec;
  cc_gpu g;
  char err[2048];
  if (!CHECK(build_gpu("matmul", "", &k, &spec, &g, err, sizeof err) == 0))
    return;
  double t[20], lower[20], opt[20], emit[20];
  for (int i = 0; i < 20; i++) {
    cg_output out;
    double t0 = now_ms();
    if (!CHECK(cg_lower(&g, "sm_90a", CG_EMIT_PTX, &out, err, sizeof err) == 0))
      break;
    t[i] = now_ms() - t0;
    lower[i] = out.stats.lower_ms;
    opt[i] = out.stats.opt_ms;
    emit[i] = out.stats.emit_ms;
    cg_output_free(&out);
  }
  qsort(t, 20, sizeof t[0], cmp_double);
  qsort(lower, 20, sizeof t[0], cmp_double);
  qsort(opt, 20, sizeof t[0], cmp_double);
  qsort(emit, 20, sizeof t[0], cmp_double);
  fprintf(stderr,
          "matmul (default config) IR -> PTX for sm_90a, median of 20: %.1f ms (lowering %.1f, "
          "O3 %.1f, NVPTX emission %.1f)\n",
          (t[9] + t[10]) / 2, (lower[9] + lower[10]) / 2, (opt[9] + opt[10]) / 2,
          (emit[9] + emit[10]) / 2);
  cc_gpu_free(&g);
  ir_kernel_free(spec);
  ir_kernel_free(k);
}

int main(void) {
  char buf[4096];
  static item items[MAX_ITEMS];
  queue q = {.items = items, .ptxas = find_ptxas(buf, sizeof buf)};
  pthread_mutex_init(&q.mu, NULL);
  for (int c = 0; c < NCONFIGS; c++)
    for (const char *const *t = configs[c].big ? few_targets : all_targets;
         *t && !strcmp(configs[c].part, CODEGEN_PART); t++)
      items[q.n++] = (item){.c = &configs[c], .arch = *t};
  if (!CHECK(q.n > 0))
    fprintf(stderr, "  no config of the table is in part '%s'\n", CODEGEN_PART);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int nthreads = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (int)ncpu;
  pthread_t th[8];
  for (int i = 0; i < nthreads; i++)
    pthread_create(&th[i], NULL, worker, &q);
  for (int i = 0; i < nthreads; i++)
    pthread_join(th[i], NULL);
  pthread_mutex_destroy(&q.mu);
  check_items(items, q.n);
  if (!q.ptxas)
    fprintf(stderr, "note: no ptxas found; the PTX was not assembled\n");
  if (CODEGEN_PART[0])
    return TEST_MAIN_END();
  check_parts();

  char err[256];
  cg_output out;
  ir_kernel *k, *spec;
  cc_gpu g;
  if (CHECK(build_gpu("bsmatmul", "", &k, &spec, &g, err, sizeof err) == 0)) {
    CHECK_EQ_INT(-1, cg_lower(&g, "sm_42", CG_EMIT_PTX, &out, err, sizeof err));
    CHECK_CONTAINS(err, "unknown target 'sm_42'");
    CHECK_EQ_INT(0, cg_lower(&g, "sm_80", CG_EMIT_LLVM, &out, err, sizeof err));
    CHECK(out.ptx == NULL);
    CHECK_CONTAINS(out.llvm, "!\"maxntidx\", i32 128");
    CHECK_CONTAINS(out.llvm, "@tilec_smem = external");
    CHECK_CONTAINS(out.llvm, "addrspace(3) global [0 x i8], align 16");
    cg_output_free(&out);
    cg_output_free(NULL);
    cc_gpu_free(&g);
    ir_kernel_free(spec);
    ir_kernel_free(k);
  }
  check_errors();
  check_pointer_ops(q.ptxas);
  check_f8(q.ptxas);
  check_o3(q.ptxas);
  check_aligned(q.ptxas);
  time_default_matmul();
  return TEST_MAIN_END();
}
