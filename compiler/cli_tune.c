/* compiler/cli_tune.c — `tilec tune`: option parsing, the progress line, the result table and
 * --json / --log-jsonl around at_tune (autotune/tune.h). docs/cli.md, docs/tuning.md.
 *
 * Progress goes to stderr: one line rewritten in place on a terminal, one plain line per
 * candidate otherwise; stdout carries the table, or exactly one JSON object with --json.
 */
#include "compiler/cli_tune.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autotune/tune.h"
#include "compiler/cli_util.h"
#include "kernels/problem.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_ENV = 2 };

static int die(int code, const char *msg, const char *arg) {
  fprintf(stderr, "tilec tune: %s%s%s\n", msg, arg ? " " : "", arg ? arg : "");
  return code;
}

static const char usage_text[] =
    "usage: tilec tune KERNEL|FILE.tile --shape K=V,... [--set K=V,...] [--dtype bf16|f16]\n"
    "         [--strategy exhaustive|random|model] [--budget N | --time SECONDS] [--seed N]\n"
    "         [--db PATH] [--shard I/N] [--resume | --restart] [--arch sm_XX]\n"
    "         [--compile-only] [--jobs N] [--reps N] [--timeout SECONDS] [--retime N]\n"
    "         [--allow-spills] [--variant auto|generic|aligned] [--top N] [--json]\n"
    "         [--log-jsonl FILE]\n";

typedef struct cli {
  at_tune_opts o;
  bool json, tty;
  int top;
  const char *log_path;
  FILE *log;
  FILE *err;
} cli;

static bool num(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end || errno || !(v >= lo && v <= hi))
    return false;
  *out = v;
  return true;
}

static int parse(int argc, char **argv, cli *c) {
  at_tune_opts *o = &c->o;
  o->strategy = AT_STRATEGY_MODEL;
  o->seed = 1;
  c->top = 10;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool takes = !strcmp(a, "--shape") || !strcmp(a, "--set") || !strcmp(a, "--dtype") ||
                 !strcmp(a, "--strategy") || !strcmp(a, "--budget") || !strcmp(a, "--time") ||
                 !strcmp(a, "--seed") || !strcmp(a, "--db") || !strcmp(a, "--shard") ||
                 !strcmp(a, "--arch") || !strcmp(a, "--jobs") || !strcmp(a, "--reps") ||
                 !strcmp(a, "--timeout") || !strcmp(a, "--retime") || !strcmp(a, "--top") ||
                 !strcmp(a, "--log-jsonl") || !strcmp(a, "--variant");
    if (takes && !v)
      return die(EXIT_FAIL, "option needs a value:", a);
    double d;
    if (!strcmp(a, "--shape"))
      o->shape = v;
    else if (!strcmp(a, "--set"))
      o->set = v;
    else if (!strcmp(a, "--dtype"))
      o->dtype = v;
    else if (!strcmp(a, "--variant")) {
      if (!strcmp(v, "auto"))
        o->variant = AT_VARIANT_AUTO;
      else if (!strcmp(v, "generic"))
        o->variant = AT_VARIANT_GENERIC;
      else if (!strcmp(v, "aligned"))
        o->variant = AT_VARIANT_ALIGNED;
      else
        return die(EXIT_FAIL, "--variant: expected auto, generic or aligned, got", v);
    } else if (!strcmp(a, "--db"))
      o->db_path = v;
    else if (!strcmp(a, "--arch"))
      o->arch = v;
    else if (!strcmp(a, "--log-jsonl"))
      c->log_path = v;
    else if (!strcmp(a, "--strategy")) {
      if (!at_strategy_parse(v, &o->strategy))
        return die(EXIT_FAIL, "--strategy: expected exhaustive, random or model, got", v);
    } else if (!strcmp(a, "--budget")) {
      if (!num(v, 1, 1e7, &d))
        return die(EXIT_FAIL, "--budget: expected a count of candidates >= 1, got", v);
      o->budget = (int)d;
    } else if (!strcmp(a, "--time")) {
      if (!num(v, 0.001, 1e7, &d))
        return die(EXIT_FAIL, "--time: expected seconds > 0, got", v);
      o->time_s = d;
    } else if (!strcmp(a, "--seed")) {
      char *end;
      errno = 0;
      o->seed = strtoull(v, &end, 0);
      if (*end || errno || v[0] == '-' || end == v)
        return die(EXIT_FAIL, "--seed: expected a non-negative integer, got", v);
    } else if (!strcmp(a, "--shard")) {
      int si, sn;
      char tail;
      if (sscanf(v, "%d/%d%c", &si, &sn, &tail) != 2 || sn < 1 || sn > 100000 || si < 0 || si >= sn)
        return die(EXIT_FAIL, "--shard: expected I/N with 0 <= I < N, got", v);
      o->shard_i = si;
      o->shard_n = sn;
    } else if (!strcmp(a, "--jobs")) {
      if (!num(v, 1, 64, &d))
        return die(EXIT_FAIL, "--jobs: expected 1..64, got", v);
      o->jobs = (int)d;
    } else if (!strcmp(a, "--reps")) {
      if (!num(v, 1, 100000, &d))
        return die(EXIT_FAIL, "--reps: expected 1..100000, got", v);
      o->reps = (int)d;
    } else if (!strcmp(a, "--timeout")) {
      if (!num(v, 0.05, 86400, &d))
        return die(EXIT_FAIL, "--timeout: expected seconds in 0.05..86400, got", v);
      o->timeout_s = d;
    } else if (!strcmp(a, "--retime")) {
      if (!num(v, 0, 8, &d))
        return die(EXIT_FAIL, "--retime: expected 0..8 finalists, got", v);
      o->retime = d == 0 ? -1 : (int)d;
    } else if (!strcmp(a, "--top")) {
      if (!num(v, 1, 1000, &d))
        return die(EXIT_FAIL, "--top: expected 1..1000 rows, got", v);
      c->top = (int)d;
    } else if (!strcmp(a, "--compile-only"))
      o->compile_only = true;
    else if (!strcmp(a, "--restart"))
      o->restart = true;
    else if (!strcmp(a, "--resume"))
      o->restart = false;
    else if (!strcmp(a, "--allow-spills"))
      o->allow_spills = true;
    else if (!strcmp(a, "--json"))
      c->json = true;
    else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_text, stdout);
      return -1;
    } else if (a[0] == '-' && a[1])
      return die(EXIT_FAIL, "unknown option (tilec tune --help):", a);
    else if (!o->kernel)
      o->kernel = a;
    else
      return die(EXIT_FAIL, "unexpected argument", a);
    if (takes)
      i++;
  }
  if (!o->kernel)
    return die(EXIT_FAIL, "which kernel? (tilec tune --help)", NULL);
  if (!o->shape)
    return die(EXIT_FAIL, "--shape is required (the problem to tune for)", NULL);
  if (o->budget && o->time_s > 0)
    return die(EXIT_FAIL, "--budget and --time exclude each other", NULL);
  return EXIT_OK;
}

/* ---- progress and the log ------------------------------------------------------------------ */

static void counts(FILE *f, const int *n) {
  static const at_run shown[] = {AT_RUN_OK, AT_RUN_WRONG, AT_RUN_FAULT, AT_RUN_TIMEOUT,
                                 AT_RUN_RESOURCES};
  for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
    fprintf(f, " %s %d", at_run_name(shown[i]), n[shown[i]]);
  if (n[AT_RUN_PRUNED] + n[AT_RUN_COMPILE])
    fprintf(f, " pruned %d compile_error %d", n[AT_RUN_PRUNED], n[AT_RUN_COMPILE]);
  if (n[AT_RUN_COMPILED])
    fprintf(f, " compiled %d", n[AT_RUN_COMPILED]);
}

static void log_event(FILE *f, const at_tune_event *ev) {
  fputs("{\"config\": ", f);
  cli_json_str(f, ev->config);
  fprintf(f, ", \"status\": \"%s\", \"cached\": %s, \"retimed\": %s, \"ms\": ",
          at_run_name(ev->status), ev->cached ? "true" : "false", ev->retimed ? "true" : "false");
  cli_json_num(f, ev->ms);
  fputs(", \"p20_ms\": ", f);
  cli_json_num(f, ev->p20_ms);
  fputs(", \"p80_ms\": ", f);
  cli_json_num(f, ev->p80_ms);
  fprintf(f, ", \"regs\": %d, \"spills\": %d, \"smem_bytes\": %d, \"detail\": ", ev->regs,
          ev->spills, ev->smem_bytes);
  cli_json_str(f, ev->detail);
  fprintf(f, ", \"done\": %d, \"total\": %d, \"elapsed_s\": ", ev->done, ev->total);
  cli_json_num(f, ev->elapsed_s);
  fputs("}\n", f);
  fflush(f);
}

static void on_event(void *ctx, const at_tune_event *ev) {
  cli *c = ctx;
  if (c->log)
    log_event(c->log, ev);
  FILE *f = c->err;
  double rate = ev->elapsed_s > 0 ? ev->done / ev->elapsed_s : 0;
  if (c->tty) { /* one line, rewritten */
    fprintf(f, "\r\033[K[%d/%d] %.1f cfg/s", ev->done, ev->total, rate);
    if (isfinite(ev->best_ms))
      fprintf(f, "  best %.4g ms %s", ev->best_ms, ev->best_config);
    fputs(" |", f);
    counts(f, ev->count);
    fflush(f);
    return;
  }
  if (ev->retimed)
    fprintf(f, "retime %s: %.4g ms (p20 %.4g, p80 %.4g)\n", ev->config, ev->ms, ev->p20_ms,
            ev->p80_ms);
  else {
    fprintf(f, "[%d/%d] %s %s", ev->done, ev->total, ev->config, at_run_name(ev->status));
    if (ev->status == AT_RUN_OK)
      fprintf(f, " %.4g ms", ev->ms);
    if (ev->cached)
      fputs(" (from the database)", f);
    else if (ev->status != AT_RUN_OK && ev->detail && *ev->detail)
      fprintf(f, ": %s", ev->detail);
    if (isfinite(ev->best_ms))
      fprintf(f, " | best %.4g ms", ev->best_ms);
    fputc('\n', f);
  }
}

/* ---- results ----------------------------------------------------------------------------- */

static void print_table(const cli *c, const at_tune_report *r) {
  printf("kernel %s  problem %s  bucket %s\n", r->kernel, r->problem, r->bucket);
  printf("device %s  (%s, %s)  code %s\n", r->device_name, r->device, r->arch,
         r->aligned ? "aligned variant" : "generic");
  printf("space %d points, %d after pruning; %d considered (%d measured now) in %.1f s%s\n",
         r->space, r->live, r->considered, r->measured, r->elapsed_s,
         r->stopped ? " (time limit)" : "");
  printf("outcomes:");
  counts(stdout, r->count);
  printf("\n\n");
  int shown = 0;
  for (int i = 0; i < r->top.n && shown < c->top; i++) {
    const at_result *row = &r->top.r[i];
    if (row->status != AT_RUN_OK && row->status != AT_RUN_COMPILED)
      continue;
    if (!shown++)
      printf("%4s  %-10s %-10s %-10s %5s %8s  %s\n", "rank",
             row->status == AT_RUN_OK ? "median_ms" : "status", "p20_ms", "p80_ms", "regs", "smem",
             "config");
    if (row->status == AT_RUN_OK)
      printf("%4d  %-10.4g %-10.4g %-10.4g %5d %8d  %s\n", shown, row->median_ms, row->p20_ms,
             row->p80_ms, row->regs, row->smem_bytes, row->config);
    else
      printf("%4d  %-10s %-10s %-10s %5d %8d  %s\n", shown, "compiled", "-", "-", row->regs,
             row->smem_bytes, row->config);
  }
  if (!shown)
    printf("no candidate %s\n", c->o.compile_only ? "compiled" : "passed validation");
  if (r->have_winner)
    printf("\nwinner: %s  %.4g ms  (database %s)\n", r->top.r[0].config, r->top.r[0].median_ms,
           r->db_path ? r->db_path : "?");
  if (r->note[0])
    printf("note: %s\n", r->note);
}

static void print_json(const cli *c, const at_tune_report *r, const at_err *e, at_status st) {
  const char *names[] = {"kernel", "problem",   "bucket",  "device", "device_name",
                         "arch",   "toolchain", "ir_hash", "db"};
  const char *vals[] = {r->kernel, r->problem,   r->bucket,  r->device, r->device_name,
                        r->arch,   r->toolchain, r->ir_hash, r->db_path};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    printf("%s\"%s\": ", i ? ", " : "{", names[i]);
    cli_json_str(stdout, vals[i]);
  }
  printf(", \"strategy\": \"%s\", \"compile_only\": %s, \"variant\": \"%s\"",
         at_strategy_name(c->o.strategy), c->o.compile_only ? "true" : "false",
         r->aligned ? "aligned" : "generic");
  printf(", \"space\": %d, \"live\": %d, \"considered\": %d, \"measured\": %d, \"stopped\": %s",
         r->space, r->live, r->considered, r->measured, r->stopped ? "true" : "false");
  printf(", \"elapsed_s\": ");
  cli_json_num(stdout, r->elapsed_s);
  printf(", \"counts\": {");
  for (int i = 0; i < AT_RUN_COUNT; i++)
    printf("%s\"%s\": %d", i ? ", " : "", at_run_name((at_run)i), r->count[i]);
  printf("}, \"top\": [");
  int shown = 0;
  for (int i = 0; i < r->top.n && shown < c->top; i++) {
    const at_result *row = &r->top.r[i];
    if (row->status != AT_RUN_OK && row->status != AT_RUN_COMPILED)
      continue;
    printf("%s{\"config\": ", shown++ ? ", " : "");
    cli_json_str(stdout, row->config);
    printf(", \"status\": \"%s\", \"median_ms\": ", at_run_name(row->status));
    cli_json_num(stdout, row->median_ms);
    printf(", \"p20_ms\": ");
    cli_json_num(stdout, row->p20_ms);
    printf(", \"p80_ms\": ");
    cli_json_num(stdout, row->p80_ms);
    printf(", \"regs\": %d, \"spills\": %d, \"smem_bytes\": %d, \"variant\": \"%s\"}", row->regs,
           row->spills, row->smem_bytes, row->variant[0] ? row->variant : "generic");
  }
  printf("], \"winner\": ");
  if (r->have_winner)
    cli_json_str(stdout, r->top.r[0].config);
  else
    printf("null");
  if (r->note[0]) {
    printf(", \"note\": ");
    cli_json_str(stdout, r->note);
  }
  if (st) {
    printf(", \"error\": ");
    cli_json_str(stdout, e->msg);
  }
  printf("}\n");
}

int cli_tune(int argc, char **argv) {
  cli c = {0};
  int rc = parse(argc, argv, &c);
  if (rc)
    return rc < 0 ? EXIT_OK : rc;
  char *source = NULL, err[600];
  size_t len;
  if (!kn_is_builtin(c.o.kernel) || access(c.o.kernel, F_OK) == 0) {
    if (!(source = cli_read_file(c.o.kernel, &len, err, sizeof err)))
      return die(EXIT_FAIL, err, NULL);
    c.o.source = source;
  }
  if (c.log_path && !(c.log = fopen(c.log_path, "a"))) {
    snprintf(err, sizeof err, "--log-jsonl: cannot open %s: %s", c.log_path, strerror(errno));
    free(source);
    return die(EXIT_FAIL, err, NULL);
  }
  c.err = stderr;
  c.tty = isatty(fileno(stderr)) && getenv("TERM") && strcmp(getenv("TERM"), "dumb");
  c.o.on_event = on_event;
  c.o.event_ctx = &c;
  at_tune_report r;
  at_err e = {0};
  at_status st = at_tune(&c.o, &r, &e);
  if (c.tty)
    fputs("\r\033[K", stderr);
  if (c.json)
    print_json(&c, &r, &e, st);
  else if (!st)
    print_table(&c, &r);
  if (st)
    fprintf(stderr, "tilec tune: %s\n", e.msg);
  rc = st == AT_ERR_ENV || st == AT_ERR_PERM                   ? EXIT_ENV
       : st                                                    ? EXIT_FAIL
       : (!c.o.compile_only && !r.have_winner && r.considered) ? EXIT_FAIL
                                                               : EXIT_OK;
  if (!st && !c.o.compile_only && !r.have_winner && !c.json)
    fprintf(stderr, "tilec tune: no candidate passed validation\n");
  at_tune_report_free(&r);
  if (c.log && fclose(c.log) && !rc)
    rc = die(EXIT_FAIL, "--log-jsonl: write failed", c.log_path);
  free(source);
  return rc;
}
