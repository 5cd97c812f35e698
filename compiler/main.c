/* compiler/main.c — the `tilec` command line (contract: docs/cli.md, DESIGN §8).
 *
 * Each subcommand is a small function over the library: load a kernel (a built-in name or a
 * .tile file), parse, verify, specialize, and print, interpret or check it. Exit codes: 0 ok,
 * 1 failed check or invalid input, 2 environment problem (no GPU, no driver, missing tool).
 * Messages go to stderr; --json prints exactly one JSON object on stdout.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "autotune/db.h"
#include "codegen/codegen.h"
#include "compiler/cli_bench.h"
#include "compiler/cli_db.h"
#include "compiler/cli_export.h"
#include "compiler/cli_gpu.h"
#include "compiler/cli_tune.h"
#include "compiler/cli_util.h"
#include "compiler/cli_worker.h"
#include "compiler/gpu.h"
#include "ir/ir.h"
#include "ir/version.h"
#include "kernels/builtin_sources.h"
#include "kernels/problem.h"
#include "runtime/rt.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_ENV = 2 };

/* Above this many flops, --check after a GPU run would keep the CPU reference busy too long. */
#define MAX_CPU_CHECK_FLOPS 2e10

static int usage(FILE *f) {
  fputs("usage: tilec <command> [options]\n"
        "\n"
        "  info                                   versions, targets, cache path\n"
        "  check FILE.tile                        parse and verify; diagnostics\n"
        "  print KERNEL|FILE.tile                 canonical text\n"
        "  compile KERNEL|FILE.tile [--set K=V,...] [--shape K=V,...] [--dtype T]\n"
        "          [--arch sm_XX] [--opt o3|llvm-o3|fast|none] [--aligned] --emit "
        "ir|spec|gpu|llvm|ptx|cubin\n"
        "          [-o OUT]\n"
        "  run KERNEL|FILE.tile --shape K=V,... [--set K=V,...] [--dtype bf16|f16]\n"
        "          [--interp | --gpu [--arch sm_XX] [--reps N]] [--check] [--seed N]\n"
        "          [--threads N] [--json] [--save DIR]\n"
        "  tune KERNEL|FILE.tile --shape K=V,... [--strategy exhaustive|random|model]\n"
        "          [--budget N | --time S] [--db PATH] [--shard I/N] [--restart] [--json]\n"
        "          [--compile-only [--arch sm_XX]] (tilec tune --help for all options)\n"
        "                                         search the fastest config; tuning DB\n"
        "  export --device KEY -o OUT.c [--db PATH] [--kernels K,...] [--kernel-file N=PATH]\n"
        "                                         tuned cubins as C for an engine (+ OUT.h)\n"
        "  bench compile KERNEL|FILE.tile [--set ...] [--arch sm_XX] [--opt o3|llvm-o3|fast|none] "
        "[--aligned]\n"
        "          [--reps N]\n"
        "                                         median time of each compile phase\n"
        "  bench launch KERNEL|FILE.tile --shape ... [--set ...] [--reps N]\n"
        "                                         host cost per launch vs cuLaunchKernel\n"
        "  bench matmul [--shapes MxNxK,...] [--set ...] [--dtype bf16|f16] [--reps N] [--json]\n"
        "                                         tilec matmul vs cuBLASLt, same process\n"
        "  db list|show|export|import|merge|prune|check [--db PATH] ...\n"
        "                                         the tuning database (tilec db --help)\n"
        "\n"
        "Built-in kernels: matmul, attention, bsattention, bsmatmul. See docs/cli.md.\n",
        f);
  return f == stderr ? EXIT_FAIL : EXIT_OK;
}

/* ---- loading kernels ------------------------------------------------------------------- */

static const char *builtin_text(const char *name) {
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (strcmp(s->name, name) == 0)
      return s->text;
  return NULL;
}

/* Parses and verifies a built-in kernel or a file; prints the diagnostic on failure. */
static int load(const char *what, ir_kernel **k) {
  const char *text = builtin_text(what);
  char *owned = NULL, err[512];
  size_t len;
  char file[512];
  if (text && access(what, F_OK) != 0) {
    len = strlen(text);
    snprintf(file, sizeof file, "<builtin>/%s.tile", what);
  } else {
    owned = cli_read_file(what, &len, err, sizeof err);
    if (!owned) {
      if (!strchr(what, '/') && !strstr(what, ".tile"))
        return cli_die(EXIT_FAIL,
                       "'%s' is neither a built-in kernel (matmul, attention, "
                       "bsattention, bsmatmul) nor a readable file",
                       what);
      return cli_die(EXIT_FAIL, "%s", err);
    }
    text = owned;
    snprintf(file, sizeof file, "%s", what);
  }
  ir_diag d;
  ir_status s = ir_parse(text, len, file, k, &d);
  free(owned);
  if (!s && (s = ir_verify(*k, &d))) {
    ir_kernel_free(*k);
    *k = NULL;
  }
  if (s) {
    fprintf(stderr, "%s\n", d.msg);
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

/* ---- options ------------------------------------------------------------------------------ */

typedef struct {
  const char *kernel, *set, *shape, *dtype, *emit, *out, *save, *arch, *opt;
  bool check, json, interp, gpu, aligned;
  uint64_t seed;
  int threads;
  int reps;      /* timed GPU launches, or compilations of `bench compile` */
  bool reps_set; /* --reps given */
} opts;

static int parse_opts(int argc, char **argv, opts *o) {
  memset(o, 0, sizeof *o);
  o->seed = 1;
  o->reps = 50;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (!strcmp(a, "--set"))
      slot = &o->set;
    else if (!strcmp(a, "--shape"))
      slot = &o->shape;
    else if (!strcmp(a, "--dtype"))
      slot = &o->dtype;
    else if (!strcmp(a, "--emit"))
      slot = &o->emit;
    else if (!strcmp(a, "-o"))
      slot = &o->out;
    else if (!strcmp(a, "--save"))
      slot = &o->save;
    else if (!strcmp(a, "--arch"))
      slot = &o->arch;
    else if (!strcmp(a, "--opt"))
      slot = &o->opt;
    else if (!strcmp(a, "--check"))
      o->check = true;
    else if (!strcmp(a, "--json"))
      o->json = true;
    else if (!strcmp(a, "--interp"))
      o->interp = true;
    else if (!strcmp(a, "--gpu"))
      o->gpu = true;
    else if (!strcmp(a, "--aligned"))
      o->aligned = true;
    else if (!strcmp(a, "--seed") || !strcmp(a, "--threads") || !strcmp(a, "--reps")) {
      char *end;
      if (i + 1 >= argc)
        return cli_die(EXIT_FAIL, "%s needs a value", a);
      errno = 0;
      unsigned long long v = strtoull(argv[++i], &end, 0);
      bool threads = a[2] == 't', reps = a[2] == 'r';
      if (*end || errno || end == argv[i] || argv[i][0] == '-' || (threads && (v < 1 || v > 256)) ||
          (reps && v > 100000))
        return cli_die(EXIT_FAIL, "%s %s: expected %s", a, argv[i],
                       threads ? "a thread count in 1..256"
                       : reps  ? "a repetition count in 0..100000"
                               : "a non-negative integer");
      if (threads)
        o->threads = (int)v;
      else if (reps) {
        o->reps = (int)v;
        o->reps_set = true;
      } else
        o->seed = v;
    } else if (a[0] == '-' && a[1])
      return cli_die(EXIT_FAIL, "unknown option '%s' (tilec --help)", a);
    else if (!o->kernel)
      o->kernel = a;
    else
      return cli_die(EXIT_FAIL, "unexpected argument '%s'", a);
    if (slot) {
      if (i + 1 >= argc)
        return cli_die(EXIT_FAIL, "%s needs a value", a);
      *slot = argv[++i];
    }
  }
  return EXIT_OK;
}

/* The effective config: every tunable and type variable of k with its bound value. */
static void config_text(const ir_kernel *k, const ir_config *cfg, bool json, char *buf,
                        size_t cap) {
  size_t n = 0;
  buf[0] = 0;
  if (json)
    n += (size_t)snprintf(buf + n, cap - n, "{");
  int items = 0;
  for (int pass = 0; pass < 2; pass++) {
    int count = pass ? k->nsyms : k->ntvars;
    for (int i = 0; i < count && n < cap; i++) {
      const char *name = pass ? k->syms[i].name : k->tvars[i].name;
      if (pass && k->syms[i].kind != SYM_TUNABLE && k->syms[i].kind != SYM_CONST)
        continue;
      char val[64];
      if (pass)
        snprintf(val, sizeof val, "%lld", (long long)k->syms[i].def.i);
      else
        snprintf(val, sizeof val, json ? "\"%s\"" : "%s", ir_kind_name(k->tvars[i].choices[0]));
      for (int j = 0; j < cfg->n; j++)
        if (!strcmp(cfg->items[j].name, name)) {
          if (cfg->items[j].kind != IR_VOID)
            snprintf(val, sizeof val, json ? "\"%s\"" : "%s", ir_kind_name(cfg->items[j].kind));
          else
            snprintf(val, sizeof val, "%lld", (long long)cfg->items[j].value.i);
        }
      n += (size_t)snprintf(buf + n, cap - n, json ? "%s\"%s\": %s" : "%s%s=%s",
                            items++ ? (json ? ", " : ",") : "", name, val);
    }
  }
  if (json && n < cap)
    snprintf(buf + n, cap - n, "}");
}

/* ---- commands ---------------------------------------------------------------------------- */

static int cmd_info(void) {
  char llvm[64];
  cg_llvm_version(llvm, sizeof llvm);
  printf("tilec %s\n", TILEC_VERSION_STRING);
  printf("llvm: %s (linked in; NVPTX targets sm_80 sm_86 sm_89 sm_90 sm_90a)\n", llvm);
  char *db = NULL;
  at_err e;
  if (at_db_default_path(&db, false, &e) == AT_OK) /* the same rules as `tilec tune` */
    printf("tuning db: %s%s\n", db, getenv("TILEC_DB") && *getenv("TILEC_DB") ? " (TILEC_DB)" : "");
  else
    printf("tuning db: unusable: %s\n", e.msg);
  free(db);
  printf("built-in kernels:");
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    printf(" %s", s->name);
  printf("\n");
  char *rt = rt_info_text(); /* CUDA libraries found (or why not) and devices */
  if (rt)
    fputs(rt, stdout);
  free(rt);
  return EXIT_OK;
}

static int cmd_check(const opts *o) {
  ir_kernel *k;
  int rc = load(o->kernel, &k);
  if (rc)
    return rc;
  printf("%s: kernel '%s' ok (%d ops, %d tunables)\n", o->kernel, k->name, k->nops,
         k->nsyms ? k->nsyms : 0);
  ir_kernel_free(k);
  return EXIT_OK;
}

static int write_text(const char *path, const char *text) {
  if (!path) {
    fputs(text, stdout);
    return EXIT_OK;
  }
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0) {
    if (f)
      fclose(f);
    return cli_die(EXIT_FAIL, "cannot write %s: %s", path, strerror(errno));
  }
  return fclose(f) ? cli_die(EXIT_FAIL, "cannot write %s: %s", path, strerror(errno)) : EXIT_OK;
}

static int print_kernel(const ir_kernel *k, const char *out) {
  char *text = ir_print(k);
  if (!text)
    return cli_die(EXIT_FAIL, "out of memory");
  int rc = write_text(out, text);
  free(text);
  return rc;
}

/* Builds the config (--set, then what --shape and --dtype imply) and specializes. */
static int specialize(const opts *o, const ir_kernel *k, const kn_shape *shape, ir_config *cfg,
                      ir_kernel **spec) {
  ir_diag d;
  char err[512];
  cfg->n = 0;
  if (o->set && ir_config_parse(cfg, o->set, &d)) {
    fprintf(stderr, "%s\n", d.msg);
    return EXIT_FAIL;
  }
  bool builtin = kn_is_builtin(o->kernel);
  if ((!builtin && kn_file_config(k, shape, o->dtype, cfg, err, sizeof err)) ||
      kn_problem_config(builtin ? o->kernel : "", shape, builtin ? o->dtype : NULL, cfg, err,
                        sizeof err))
    return cli_die(EXIT_FAIL, "%s", err);
  if (ir_specialize(k, cfg, spec, &d)) {
    fprintf(stderr, "%s\n", d.msg);
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

/* Writes a binary image (a cubin) to path. */
static int write_binary(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, size, f) != size) {
    if (f)
      fclose(f);
    return cli_die(EXIT_FAIL, "cannot write %s: %s", path, strerror(errno));
  }
  return fclose(f) ? cli_die(EXIT_FAIL, "cannot write %s: %s", path, strerror(errno)) : EXIT_OK;
}

/* The cg_lower flags of --opt: o3 (the default: tilec's trimmed O3), llvm-o3 (LLVM's whole
 * default<O3>), fast (a short pass list) or none; and of --aligned (CG_ALIGNED). */
static int opt_flags(const opts *o, unsigned *flags) {
  if (!o->opt || !strcmp(o->opt, "o3"))
    *flags = 0;
  else if (!strcmp(o->opt, "llvm-o3"))
    *flags = CG_OPT_LLVM_O3;
  else if (!strcmp(o->opt, "fast"))
    *flags = CG_OPT_FAST;
  else if (!strcmp(o->opt, "none"))
    *flags = CG_NO_OPT;
  else
    return cli_die(EXIT_FAIL, "--opt %s: expected o3, llvm-o3, fast or none", o->opt);
  if (o->aligned)
    *flags |= CG_ALIGNED;
  return EXIT_OK;
}

/* --emit llvm|ptx|cubin of a GPU IR kernel: cg_lower, and nvJitLink for the cubin. */
static int emit_code(const opts *o, const cc_gpu *g, const char *emit) {
  const char *arch = o->arch ? o->arch : "sm_90a";
  bool llvm = !strcmp(emit, "llvm"), cubin = !strcmp(emit, "cubin");
  cg_output out;
  char err[4096];
  unsigned flags;
  if (cubin && !o->out)
    return cli_die(EXIT_FAIL, "--emit cubin needs -o FILE (a cubin is not printed)");
  if (opt_flags(o, &flags))
    return EXIT_FAIL;
  if (cg_lower(g, arch, flags | (llvm ? CG_EMIT_LLVM : CG_EMIT_PTX), &out, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return EXIT_FAIL;
  }
  int rc;
  if (!cubin) {
    rc = write_text(o->out, llvm ? out.llvm : out.ptx);
  } else {
    rt_blob blob;
    rt_err e;
    rt_status s = rt_nvjitlink_ptx(out.ptx, strlen(out.ptx), arch, NULL, 0, &blob, &e);
    if (s)
      rc = cli_die(rt_status_is_env(s) ? EXIT_ENV : EXIT_FAIL, "--emit cubin: %s", e.msg);
    else
      rc = write_binary(o->out, blob.data, blob.size);
    rt_blob_free(&blob);
  }
  if (!rc)
    fprintf(stderr, "%s: %s, %d threads, %d bytes of dynamic shared memory\n", out.name, arch,
            out.stats.threads, out.stats.smem_bytes);
  cg_output_free(&out);
  return rc;
}

static int cmd_compile(const opts *o) {
  const char *emit = o->emit ? o->emit : "spec";
  bool gpu = !strcmp(emit, "gpu");
  bool code = !strcmp(emit, "llvm") || !strcmp(emit, "ptx") || !strcmp(emit, "cubin");
  if (strcmp(emit, "ir") && strcmp(emit, "spec") && !gpu && !code)
    return cli_die(EXIT_FAIL, "--emit %s: expected ir, spec, gpu, llvm, ptx or cubin", emit);
  if (o->arch && !cg_target_find(o->arch))
    return cli_die(EXIT_FAIL, "--arch %s: expected sm_80, sm_86, sm_87, sm_89, sm_90 or sm_90a",
                   o->arch);
  ir_kernel *k, *spec = NULL;
  int rc = load(o->kernel, &k);
  if (rc)
    return rc;
  if (!strcmp(emit, "ir")) {
    rc = print_kernel(k, o->out);
  } else {
    kn_shape shape;
    char err[512];
    ir_config cfg;
    if (kn_shape_parse(o->shape, &shape, err, sizeof err))
      rc = cli_die(EXIT_FAIL, "%s", err);
    else if (!(rc = specialize(o, k, &shape, &cfg, &spec)) && !gpu && !code)
      rc = print_kernel(spec, o->out);
    else if (!rc) {
      cc_gpu g;
      ir_diag d;
      if (cc_gpu_build(spec, &g, &d)) {
        fprintf(stderr, "%s\n", d.msg);
        rc = EXIT_FAIL;
      } else if (code) {
        rc = emit_code(o, &g, emit);
        cc_gpu_free(&g);
      } else {
        char *text = cc_gpu_print(&g);
        rc = text ? write_text(o->out, text) : cli_die(EXIT_FAIL, "out of memory");
        free(text);
        cc_gpu_free(&g);
      }
    }
  }
  ir_kernel_free(spec);
  ir_kernel_free(k);
  return rc;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Prints the result of a run; gr describes a GPU run (NULL for the interpreter). */
static void report(const opts *o, const kn_problem *p, const char *cfg_text, const char *cfg_json,
                   double secs, bool pass, const cli_gpu_result *gr) {
  double gflops = p->flops > 0 && secs > 0 ? p->flops / secs * 1e-9 : 0;
  if (o->json) {
    printf("{\"kernel\": ");
    cli_json_str(stdout, o->kernel);
    printf(", \"problem\": ");
    cli_json_str(stdout, p->summary);
    printf(", \"config\": %s, \"mode\": \"%s\", \"seed\": %llu, \"seconds\": ", cfg_json,
           gr ? "gpu" : "interp", (unsigned long long)o->seed);
    cli_json_num(stdout, secs);
    printf(", \"gflops\": ");
    cli_json_num(stdout, gflops);
    if (gr) {
      printf(", \"gpu\": {\"device\": ");
      cli_json_str(stdout, gr->device);
      printf(", \"key\": ");
      cli_json_str(stdout, gr->key);
      printf(", \"arch\": \"%s\", \"variant\": \"%s\", \"threads\": %d, \"smem_bytes\": %d, "
             "\"regs\": %d, \"local_bytes\": %d, \"compile_ms\": ",
             gr->arch, gr->aligned ? "aligned" : "generic", gr->threads, gr->smem_bytes, gr->regs,
             gr->local_bytes);
      cli_json_num(stdout, gr->compile_ms);
      printf(", \"reps\": %d, \"median_ms\": ", gr->reps);
      cli_json_num(stdout, gr->median_ms);
      printf(", \"min_ms\": ");
      cli_json_num(stdout, gr->min_ms);
      printf(", \"max_ms\": ");
      cli_json_num(stdout, gr->max_ms);
      printf("}");
    }
    if (o->check) {
      printf(", \"check\": {\"pass\": %s, \"outputs\": [", pass ? "true" : "false");
      for (int i = 0; i < p->nchecks; i++) {
        const kn_cmp_result *r = &p->checks[i].r;
        printf("%s{\"name\": ", i ? ", " : "");
        cli_json_str(stdout, p->checks[i].name);
        printf(", \"pass\": %s, \"err\": ", r->pass ? "true" : "false");
        cli_json_num(stdout, r->err);
        printf(", \"tol\": ");
        cli_json_num(stdout, r->tol);
        printf(", \"max_abs_err\": ");
        cli_json_num(stdout, r->max_abs_err);
        printf(", \"nonfinite\": %lld}", (long long)r->n_nonfinite);
      }
      printf("]}");
    }
    printf("}\n");
    return;
  }
  printf("%s %s\n", o->kernel, p->summary);
  printf("config: %s\n", cfg_text);
  if (gr) {
    printf("gpu: %s (%s), %s %s, %d threads, %d B shared, %d registers, %d B local\n", gr->device,
           gr->key, gr->arch, gr->aligned ? "aligned" : "generic", gr->threads, gr->smem_bytes,
           gr->regs, gr->local_bytes);
    printf("time: median %.4f ms (min %.4f, max %.4f, %d reps): %.2f TFLOP/s; compile %.1f ms\n",
           gr->median_ms, gr->min_ms, gr->max_ms, gr->reps, gflops * 1e-3, gr->compile_ms);
  } else {
    printf("interp: %.3f s (%.3f GFLOP/s on the CPU interpreter)\n", secs, gflops);
  }
  for (int i = 0; i < p->nchecks; i++) {
    const kn_cmp_result *r = &p->checks[i].r;
    printf("check %s: %s  err %.3g (tol %.3g, max |err| %.3g, max |ref| %.3g", p->checks[i].name,
           r->pass ? "ok" : "FAILED", r->err, r->tol, r->max_abs_err, r->max_abs_ref);
    if (r->n_nonfinite)
      printf(", %lld non-finite, first at %lld", (long long)r->n_nonfinite,
             (long long)r->first_nonfinite);
    printf(")\n");
  }
}

/* What a run needs: the kernel, its specialization for --set/--shape/--dtype, the effective
 * config as text and JSON, and the problem's host buffers. */
typedef struct prepared {
  ir_kernel *k, *spec;
  kn_problem p;
  ir_config cfg;
  char cfg_text[1024], cfg_json[1024];
} prepared;

static void unprepare(prepared *r) {
  kn_problem_free(&r->p);
  ir_kernel_free(r->spec);
  ir_kernel_free(r->k);
  r->k = r->spec = NULL;
}

/* Loads, specializes and builds the problem of o; on failure prints why and cleans up. */
static int prepare(const opts *o, prepared *r) {
  memset(r, 0, sizeof *r);
  if (!o->shape && kn_is_builtin(o->kernel))
    return cli_die(EXIT_FAIL, "run needs --shape (e.g. --shape M=256,N=256,K=256)");
  int rc = load(o->kernel, &r->k);
  if (rc)
    return rc;
  kn_shape shape;
  char err[1024];
  if (kn_shape_parse(o->shape, &shape, err, sizeof err))
    rc = cli_die(EXIT_FAIL, "%s", err);
  else if (!(rc = specialize(o, r->k, &shape, &r->cfg, &r->spec))) {
    config_text(r->k, &r->cfg, false, r->cfg_text, sizeof r->cfg_text);
    config_text(r->k, &r->cfg, true, r->cfg_json, sizeof r->cfg_json);
    if (kn_problem_build(&r->p, kn_is_builtin(o->kernel) ? o->kernel : "", r->spec, &shape, o->seed,
                         err, sizeof err))
      rc = cli_die(EXIT_FAIL, "%s", err);
  }
  if (rc)
    unprepare(r);
  return rc;
}

static int cmd_run(const opts *o) {
  prepared pr;
  int rc = prepare(o, &pr);
  if (rc)
    return rc;
  ir_kernel *spec = pr.spec;
  kn_problem *pp = &pr.p;
  const char *cfg_text = pr.cfg_text, *cfg_json = pr.cfg_json;
  char err[1024];
  double secs = 0;
  bool pass = true;
  cli_gpu_result gr = {0};
  if (o->gpu) {
    cc_gpu g;
    ir_diag d;
    if (cc_gpu_build(spec, &g, &d)) {
      fprintf(stderr, "%s\n", d.msg);
      rc = EXIT_FAIL;
      goto done;
    }
    rc = cli_gpu_run(&g, pp, o->arch, o->reps, &gr, err, sizeof err);
    cc_gpu_free(&g);
    if (rc) { /* an environment problem is one line of its own (`no CUDA driver: ...`) */
      rc = rc == EXIT_ENV ? cli_die(rc, "%s", err) : cli_die(rc, "--gpu: %s", err);
      goto done;
    }
    secs = gr.median_ms * 1e-3;
    if (o->check && pp->flops > MAX_CPU_CHECK_FLOPS) {
      rc = cli_die(EXIT_FAIL,
                   "--check: this problem (%.3g flops) is too large for the C reference "
                   "on the CPU; check a smaller shape",
                   pp->flops);
      goto done;
    }
  } else {
    ir_interp_opts io = {.nthreads = o->threads ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN)};
    ir_diag d;
    double t0 = now();
    if (ir_interp_run(spec, pp->args, pp->nargs, &io, &d)) {
      fprintf(stderr, "%s\n", d.msg);
      rc = EXIT_FAIL;
      goto done;
    }
    secs = now() - t0;
  }
  if (o->check) {
    if (kn_problem_check(pp, err, sizeof err)) {
      rc = cli_die(EXIT_FAIL, "%s", err);
      goto done;
    }
    for (int i = 0; i < pp->nchecks; i++)
      pass = pass && pp->checks[i].r.pass;
  }
  if (o->save && kn_problem_save(pp, o->save, cfg_json, err, sizeof err)) {
    rc = cli_die(EXIT_FAIL, "--save: %s", err);
    goto done;
  }
  report(o, pp, cfg_text, cfg_json, secs, pass, o->gpu ? &gr : NULL);
  rc = pass ? EXIT_OK : EXIT_FAIL;
done:
  unprepare(&pr);
  return rc;
}

/* `tilec bench launch KERNEL --shape ...`: host cost per launch, tilec's argument packing plus
 * cuLaunchKernel against cuLaunchKernel alone, over --reps launches (default 20000). */
static int cmd_bench_launch(const opts *o) {
  prepared pr;
  int rc = prepare(o, &pr);
  if (rc)
    return rc;
  cc_gpu g;
  ir_diag d;
  char err[1024];
  cli_launch_cost c;
  int n = o->reps_set ? o->reps : 20000;
  if (n < 1)
    rc = cli_die(EXIT_FAIL, "bench launch needs --reps of at least 1");
  else if (cc_gpu_build(pr.spec, &g, &d)) {
    fprintf(stderr, "%s\n", d.msg);
    rc = EXIT_FAIL;
  } else {
    rc = cli_gpu_bench_launch(&g, &pr.p, o->arch, n, &c, err, sizeof err);
    cc_gpu_free(&g);
    if (rc)
      rc = cli_die(rc, "%s", err);
    else
      printf("%s %s: %d launches each\n  raw cuLaunchKernel  %8.3f us/launch\n"
             "  tilec (pack+launch) %8.3f us/launch (+%.3f us)\n",
             o->kernel, pr.p.summary, c.launches, c.raw_us, c.tilec_us, c.tilec_us - c.raw_us);
  }
  unprepare(&pr);
  return rc;
}

/* `tilec bench compile KERNEL`: the time of each compile phase for one config, median of
 * --reps (default 20) compilations in this process. */
static int cmd_bench_compile(const opts *o) {
  enum { SPEC, LAYOUT, LOWER, OPT, EMIT, TOTAL, LINK, NPHASE };
  static const char *names[NPHASE] = {
      "specialize",     "layouts (GPU IR)", "lower to LLVM IR",        "LLVM optimizer",
      "NVPTX emission", "IR -> PTX total",  "PTX -> cubin (nvJitLink)"};
  const char *arch = o->arch ? o->arch : "sm_90a";
  int reps = o->reps_set ? o->reps : 20;
  unsigned flags;
  if (opt_flags(o, &flags))
    return EXIT_FAIL;
  if (reps < 1)
    return cli_die(EXIT_FAIL, "bench compile needs --reps of at least 1");
  if (!cg_target_find(arch))
    return cli_die(EXIT_FAIL, "--arch %s: unknown target", arch);
  ir_kernel *k;
  int rc = load(o->kernel, &k);
  if (rc)
    return rc;
  double *t = calloc((size_t)reps * NPHASE, sizeof *t);
  int ir_lowered = 0, ir_optimized = 0;
  kn_shape shape;
  char err[4096];
  bool linked = true;
  if (!t || kn_shape_parse(o->shape, &shape, err, sizeof err)) {
    rc = cli_die(EXIT_FAIL, "%s", t ? err : "out of memory");
    goto done;
  }
  for (int r = 0; r < reps && !rc; r++) {
    ir_kernel *spec = NULL;
    ir_config cfg;
    cc_gpu g = {0};
    cg_output out = {0};
    ir_diag d;
    double t0 = now();
    if ((rc = specialize(o, k, &shape, &cfg, &spec)))
      break;
    double t1 = now();
    if (cc_gpu_build(spec, &g, &d)) {
      fprintf(stderr, "%s\n", d.msg);
      rc = EXIT_FAIL;
    } else if (cg_lower(&g, arch, flags | CG_EMIT_PTX, &out, err, sizeof err)) {
      rc = cli_die(EXIT_FAIL, "%s", err);
    } else {
      double *row = t + (size_t)r * NPHASE;
      row[SPEC] = 1e3 * (t1 - t0);
      row[LOWER] = out.stats.lower_ms;
      row[OPT] = out.stats.opt_ms;
      row[EMIT] = out.stats.emit_ms;
      row[TOTAL] = 1e3 * (now() - t0);
      row[LAYOUT] = row[TOTAL] - row[SPEC] - row[LOWER] - row[OPT] - row[EMIT];
      ir_lowered = out.stats.ir_lowered;
      ir_optimized = out.stats.ir_optimized;
      rt_blob cubin = {0};
      rt_err e;
      double t2 = now();
      if (linked && rt_nvjitlink_ptx(out.ptx, strlen(out.ptx), arch, NULL, 0, &cubin, &e)) {
        fprintf(stderr, "tilec: nvJitLink: %s (PTX -> cubin not timed)\n", e.msg);
        linked = false;
      }
      row[LINK] = 1e3 * (now() - t2);
      rt_blob_free(&cubin);
    }
    cg_output_free(&out);
    cc_gpu_free(&g);
    ir_kernel_free(spec);
  }
  if (rc)
    goto done;
  printf("%s for %s, --opt %s, median of %d compilations (ms)\n", o->kernel, arch,
         o->opt ? o->opt : "o3", reps);
  double col[1024];
  for (int ph = 0; ph < NPHASE; ph++) {
    if (ph == LINK && !linked)
      continue;
    int n = reps < 1024 ? reps : 1024;
    for (int r = 0; r < n; r++)
      col[r] = t[(size_t)r * NPHASE + ph];
    printf("  %-26s %9.2f\n", names[ph], rt_median(col, n));
  }
  printf("  LLVM instructions: %d lowered, %d optimized\n", ir_lowered, ir_optimized);
done:
  free(t);
  ir_kernel_free(k);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage(stderr);
  const char *cmd = argv[1];
  const char *llvm_args = getenv("TILEC_LLVM_ARGS"); /* developers: docs/codegen.md */
  char err[256];
  if (llvm_args && *llvm_args && cg_llvm_options(llvm_args, err, sizeof err))
    return cli_die(EXIT_FAIL, "TILEC_LLVM_ARGS: %s", err);
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help"))
    return usage(stdout);
  if (!strcmp(cmd, "__worker")) /* the autotuner's measuring process (hidden) */
    return cli_worker_main(argc - 2, argv + 2);
  if (!strcmp(cmd, "--version"))
    return printf("tilec %s\n", TILEC_VERSION_STRING) < 0;
  if (!strcmp(cmd, "bench") && argc >= 3 && !strcmp(argv[2], "matmul"))
    return cli_bench_matmul(argc - 3, argv + 3);
  if (!strcmp(cmd, "db"))
    return cli_db_main(argc - 2, argv + 2);
  if (!strcmp(cmd, "tune"))
    return cli_tune(argc - 2, argv + 2);
  if (!strcmp(cmd, "export"))
    return cli_export(argc - 2, argv + 2);
  opts o;
  bool bench = !strcmp(cmd, "bench");
  if (bench && (argc < 3 || (strcmp(argv[2], "compile") && strcmp(argv[2], "launch"))))
    return cli_die(EXIT_FAIL, "usage: tilec bench compile|launch KERNEL|FILE.tile [--set ...] "
                              "[--shape ...] [--arch sm_XX] [--reps N], or tilec bench matmul "
                              "[--shapes MxNxK,...]");
  if (parse_opts(argc - 2 - bench, argv + 2 + bench, &o))
    return EXIT_FAIL;
  if (bench && !o.kernel)
    return cli_die(EXIT_FAIL, "bench %s needs a kernel", argv[2]);
  if (bench)
    return !strcmp(argv[2], "compile") ? cmd_bench_compile(&o) : cmd_bench_launch(&o);
  if (!strcmp(cmd, "info"))
    return cmd_info();
  if (!strcmp(cmd, "check") || !strcmp(cmd, "print") || !strcmp(cmd, "compile") ||
      !strcmp(cmd, "run")) {
    if (!o.kernel)
      return cli_die(EXIT_FAIL, "%s needs a kernel name or a .tile file", cmd);
    if (!strcmp(cmd, "check"))
      return cmd_check(&o);
    if (!strcmp(cmd, "print")) {
      ir_kernel *k;
      int rc = load(o.kernel, &k);
      if (!rc) {
        rc = print_kernel(k, o.out);
        ir_kernel_free(k);
      }
      return rc;
    }
    return !strcmp(cmd, "compile") ? cmd_compile(&o) : cmd_run(&o);
  }
  return cli_die(EXIT_FAIL, "unknown command '%s' (tilec --help)", cmd);
}
