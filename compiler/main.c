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

#include "codegen/codegen.h"
#include "compiler/gpu.h"
#include "ir/ir.h"
#include "kernels/builtin_sources.h"
#include "kernels/problem.h"

#define TILEC_VERSION "0.1.0"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_ENV = 2 };

static int usage(FILE *f) {
  fputs("usage: tilec <command> [options]\n"
        "\n"
        "  info                                   versions, targets, cache path\n"
        "  check FILE.tile                        parse and verify; diagnostics\n"
        "  print KERNEL|FILE.tile                 canonical text\n"
        "  compile KERNEL|FILE.tile [--set K=V,...] [--shape K=V,...] [--dtype T]\n"
        "          --emit ir|spec|gpu [-o OUT]    the kernel, its specialization, its layouts\n"
        "  run KERNEL|FILE.tile --shape K=V,... [--set K=V,...] [--dtype bf16|f16]\n"
        "          [--interp] [--check] [--seed N] [--threads N] [--json] [--save DIR]\n"
        "\n"
        "Built-in kernels: matmul, attention, bsattention, bsmatmul. See docs/cli.md.\n",
        f);
  return f == stderr ? EXIT_FAIL : EXIT_OK;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
die(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("tilec: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return code;
}

/* ---- loading kernels ------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len, char *err, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  size_t max = IR_MAX_FILE_BYTES + 1, n = 0;
  char *buf = malloc(max + 1);
  if (buf)
    n = fread(buf, 1, max, f);
  bool bad = !buf || ferror(f);
  fclose(f);
  if (bad) {
    snprintf(err, cap, "cannot read %s", path);
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

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
    owned = read_file(what, &len, err, sizeof err);
    if (!owned) {
      if (!strchr(what, '/') && !strstr(what, ".tile"))
        return die(EXIT_FAIL,
                   "'%s' is neither a built-in kernel (matmul, attention, "
                   "bsattention, bsmatmul) nor a readable file",
                   what);
      return die(EXIT_FAIL, "%s", err);
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
  const char *kernel, *set, *shape, *dtype, *emit, *out, *save;
  bool check, json, interp, gpu;
  uint64_t seed;
  int threads;
} opts;

static int parse_opts(int argc, char **argv, opts *o) {
  memset(o, 0, sizeof *o);
  o->seed = 1;
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
    else if (!strcmp(a, "--arch") && i + 1 < argc) {
      i++; /* accepted for forward compatibility; only used by code generation */
      continue;
    } else if (!strcmp(a, "--check"))
      o->check = true;
    else if (!strcmp(a, "--json"))
      o->json = true;
    else if (!strcmp(a, "--interp"))
      o->interp = true;
    else if (!strcmp(a, "--gpu"))
      o->gpu = true;
    else if (!strcmp(a, "--seed") || !strcmp(a, "--threads")) {
      char *end;
      if (i + 1 >= argc)
        return die(EXIT_FAIL, "%s needs a value", a);
      errno = 0;
      unsigned long long v = strtoull(argv[++i], &end, 0);
      if (*end || errno || end == argv[i] || (a[2] == 't' && (v < 1 || v > 256)))
        return die(EXIT_FAIL, "%s %s: expected a %s", a, argv[i],
                   a[2] == 't' ? "thread count in 1..256" : "non-negative integer");
      if (a[2] == 's')
        o->seed = v;
      else
        o->threads = (int)v;
    } else if (a[0] == '-' && a[1])
      return die(EXIT_FAIL, "unknown option '%s' (tilec --help)", a);
    else if (!o->kernel)
      o->kernel = a;
    else
      return die(EXIT_FAIL, "unexpected argument '%s'", a);
    if (slot) {
      if (i + 1 >= argc)
        return die(EXIT_FAIL, "%s needs a value", a);
      *slot = argv[++i];
    }
  }
  return EXIT_OK;
}

/* ---- JSON helpers ------------------------------------------------------------------------ */

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

static void json_num(FILE *f, double v) {
  if (isfinite(v))
    fprintf(f, "%.6g", v);
  else
    fputs("null", f);
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
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  printf("tilec %s\n", TILEC_VERSION);
  printf("llvm: %s (linked in; NVPTX targets sm_80 sm_86 sm_89 sm_90 sm_90a)\n", llvm);
  if (getenv("TILEC_DB"))
    printf("tuning db: %s (TILEC_DB)\n", getenv("TILEC_DB"));
  else if (xdg && *xdg)
    printf("tuning db: %s/tilec/tilec.db\n", xdg);
  else
    printf("tuning db: %s/.cache/tilec/tilec.db\n", home ? home : "~");
  printf("built-in kernels:");
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    printf(" %s", s->name);
  printf("\ndevices: none probed (the CUDA runtime is not part of this build yet)\n");
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
    return die(EXIT_FAIL, "cannot write %s: %s", path, strerror(errno));
  }
  return fclose(f) ? die(EXIT_FAIL, "cannot write %s: %s", path, strerror(errno)) : EXIT_OK;
}

static int print_kernel(const ir_kernel *k, const char *out) {
  char *text = ir_print(k);
  if (!text)
    return die(EXIT_FAIL, "out of memory");
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
  if (kn_problem_config(kn_is_builtin(o->kernel) ? o->kernel : "", shape, o->dtype, cfg, err,
                        sizeof err))
    return die(EXIT_FAIL, "%s", err);
  if (ir_specialize(k, cfg, spec, &d)) {
    fprintf(stderr, "%s\n", d.msg);
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

static int cmd_compile(const opts *o) {
  const char *emit = o->emit ? o->emit : "spec";
  bool gpu = !strcmp(emit, "gpu");
  if (strcmp(emit, "ir") && strcmp(emit, "spec") && !gpu) {
    if (!strcmp(emit, "llvm") || !strcmp(emit, "ptx") || !strcmp(emit, "cubin"))
      return die(EXIT_ENV,
                 "--emit %s: LLVM lowering of tile kernels is not in this build "
                 "yet; --emit ir, spec and gpu are",
                 emit);
    return die(EXIT_FAIL, "--emit %s: expected ir, spec, gpu, llvm, ptx or cubin", emit);
  }
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
      rc = die(EXIT_FAIL, "%s", err);
    else if (!(rc = specialize(o, k, &shape, &cfg, &spec)) && !gpu)
      rc = print_kernel(spec, o->out);
    else if (!rc) {
      cc_gpu g;
      ir_diag d;
      if (cc_gpu_build(spec, &g, &d)) {
        fprintf(stderr, "%s\n", d.msg);
        rc = EXIT_FAIL;
      } else {
        char *text = cc_gpu_print(&g);
        rc = text ? write_text(o->out, text) : die(EXIT_FAIL, "out of memory");
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

static void report(const opts *o, const kn_problem *p, const char *cfg_text, const char *cfg_json,
                   double secs, bool pass) {
  double gflops = p->flops > 0 && secs > 0 ? p->flops / secs * 1e-9 : 0;
  if (o->json) {
    printf("{\"kernel\": ");
    json_str(stdout, o->kernel);
    printf(", \"problem\": ");
    json_str(stdout, p->summary);
    printf(", \"config\": %s, \"mode\": \"interp\", \"seed\": %llu, \"seconds\": ", cfg_json,
           (unsigned long long)o->seed);
    json_num(stdout, secs);
    printf(", \"gflops\": ");
    json_num(stdout, gflops);
    if (o->check) {
      printf(", \"check\": {\"pass\": %s, \"outputs\": [", pass ? "true" : "false");
      for (int i = 0; i < p->nchecks; i++) {
        const kn_cmp_result *r = &p->checks[i].r;
        printf("%s{\"name\": ", i ? ", " : "");
        json_str(stdout, p->checks[i].name);
        printf(", \"pass\": %s, \"err\": ", r->pass ? "true" : "false");
        json_num(stdout, r->err);
        printf(", \"tol\": ");
        json_num(stdout, r->tol);
        printf(", \"max_abs_err\": ");
        json_num(stdout, r->max_abs_err);
        printf(", \"nonfinite\": %lld}", (long long)r->n_nonfinite);
      }
      printf("]}");
    }
    printf("}\n");
    return;
  }
  printf("%s %s\n", o->kernel, p->summary);
  printf("config: %s\n", cfg_text);
  printf("interp: %.3f s (%.3f GFLOP/s on the CPU interpreter)\n", secs, gflops);
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

static int cmd_run(const opts *o) {
  if (o->gpu)
    return die(EXIT_ENV, "--gpu: the CUDA runtime is not in this build yet; use --interp");
  if (!o->shape && kn_is_builtin(o->kernel))
    return die(EXIT_FAIL, "run needs --shape (e.g. --shape M=256,N=256,K=256)");
  ir_kernel *k, *spec = NULL;
  int rc = load(o->kernel, &k);
  if (rc)
    return rc;
  kn_shape shape;
  kn_problem p;
  memset(&p, 0, sizeof p);
  ir_config cfg;
  char err[1024], cfg_text[1024], cfg_json[1024];
  double secs = 0;
  bool pass = true;
  if (kn_shape_parse(o->shape, &shape, err, sizeof err)) {
    rc = die(EXIT_FAIL, "%s", err);
    goto done;
  }
  if ((rc = specialize(o, k, &shape, &cfg, &spec)))
    goto done;
  config_text(k, &cfg, false, cfg_text, sizeof cfg_text);
  config_text(k, &cfg, true, cfg_json, sizeof cfg_json);
  if (kn_problem_build(&p, kn_is_builtin(o->kernel) ? o->kernel : "", spec, &shape, o->seed, err,
                       sizeof err)) {
    rc = die(EXIT_FAIL, "%s", err);
    goto done;
  }
  ir_interp_opts io = {.nthreads = o->threads ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN)};
  ir_diag d;
  double t0 = now();
  if (ir_interp_run(spec, p.args, p.nargs, &io, &d)) {
    fprintf(stderr, "%s\n", d.msg);
    rc = EXIT_FAIL;
    goto done;
  }
  secs = now() - t0;
  if (o->check) {
    if (kn_problem_check(&p, err, sizeof err)) {
      rc = die(EXIT_FAIL, "%s", err);
      goto done;
    }
    for (int i = 0; i < p.nchecks; i++)
      pass = pass && p.checks[i].r.pass;
  }
  if (o->save && kn_problem_save(&p, o->save, cfg_json, err, sizeof err)) {
    rc = die(EXIT_FAIL, "--save: %s", err);
    goto done;
  }
  report(o, &p, cfg_text, cfg_json, secs, pass);
  rc = pass ? EXIT_OK : EXIT_FAIL;
done:
  kn_problem_free(&p);
  ir_kernel_free(spec);
  ir_kernel_free(k);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage(stderr);
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help"))
    return usage(stdout);
  if (!strcmp(cmd, "--version"))
    return printf("tilec %s\n", TILEC_VERSION) < 0;
  opts o;
  if (parse_opts(argc - 2, argv + 2, &o))
    return EXIT_FAIL;
  if (!strcmp(cmd, "info"))
    return cmd_info();
  if (!strcmp(cmd, "check") || !strcmp(cmd, "print") || !strcmp(cmd, "compile") ||
      !strcmp(cmd, "run")) {
    if (!o.kernel)
      return die(EXIT_FAIL, "%s needs a kernel name or a .tile file", cmd);
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
  return die(EXIT_FAIL, "unknown command '%s' (tilec --help)", cmd);
}
