/* autotune/tune.h — one tuning sweep: space → search → compile on CPU threads → measure in the
 * worker process → database; then the finalists re-timed and the winner read back.
 *
 * This is the autotuner's front door, used by `tilec tune` and later by the public API. It ties
 * the search (space.h, search.h), the code generator (specialize → GPU IR → PTX → nvJitLink),
 * the measuring worker (worker.h) and the database (db.h). The calling process never initialises
 * CUDA: the worker does, so a faulting candidate cannot harm the caller. docs/tuning.md.
 */
#ifndef TILEC_AUTOTUNE_TUNE_H
#define TILEC_AUTOTUNE_TUNE_H

#include <stdbool.h>
#include <stdint.h>

#include "autotune/at.h"
#include "autotune/db.h"
#include "autotune/search.h"

struct at_tune_event;

/* Which code a sweep measures (codegen.h, CG_ALIGNED). */
typedef enum at_variant {
  AT_VARIANT_AUTO = 0, /* the aligned variant when the problem's arguments keep its promise (as
                          the worker built them), else the generic code; compile-only sweeps,
                          which build no arguments: the generic code */
  AT_VARIANT_GENERIC,  /* the generic code, whatever the arguments */
  AT_VARIANT_ALIGNED,  /* the aligned variant; AT_ERR_ARG when the arguments break its promise */
} at_variant;

/* What to tune and how. Strings are the caller's and only read during at_tune. */
typedef struct at_tune_opts {
  const char *kernel; /* a built-in name, or a display name (the file path) when source is set */
  const char *source; /* kernel text of a file kernel; NULL for a built-in */
  const char *shape;  /* the problem, as --shape keys ("M=4096,N=4096,K=4096") */
  const char *dtype;  /* NULL: the kernel's default */
  const char *set;    /* tunables pinned by the user ("WARPS=4"), NULL for none */
  const char *arch;   /* NULL: the device's own (compile-only: sm_90a) */
  bool compile_only;  /* no GPU: compile and prune the whole space, record resources */
  at_strategy strategy;
  uint64_t seed;
  int budget;           /* candidates to consider (measured or answered from the DB); 0: all */
  double time_s;        /* stop after this many seconds; 0: no limit */
  int shard_i, shard_n; /* this shard of the candidate order; 0/1 (or 0/0) = everything */
  bool restart;         /* forget this problem's rows first (default: resume) */
  int jobs;             /* compile threads; 0: the number of online CPUs */
  int reps, warmup;     /* timed and warm-up launches per candidate (0: 50 and 5) */
  double timeout_s;     /* wall-clock limit per candidate in the worker (0: 20 s) */
  int retime;           /* finalists re-timed interleaved (0: 3; -1: none) */
  bool allow_spills;    /* keep candidates whose ptxas report shows spills */
  at_variant variant;   /* the code measured (rows record it; a winner serves both) */
  const char *db_path;  /* NULL: the default database (TILEC_DB, XDG cache) */
  /* Called after every candidate (and once per finalist re-time) on the calling thread. */
  void (*on_event)(void *ctx, const struct at_tune_event *ev);
  void *event_ctx;
} at_tune_opts;

/* One finished candidate, as the progress line and --log-jsonl show it. */
typedef struct at_tune_event {
  int done, total;    /* candidates finished so far / planned (budget or live space) */
  const char *config; /* canonical config text */
  at_run status;
  bool cached;  /* answered from the database (resume), not measured now */
  bool retimed; /* a finalist's interleaved re-time */
  double ms;    /* median time (NaN unless ok) */
  double p20_ms, p80_ms;
  int regs, spills, smem_bytes; /* -1 unknown */
  const char *detail;           /* why, for outcomes other than ok ("" otherwise) */
  double best_ms;               /* best so far in this sweep (NaN: none yet) */
  const char *best_config;
  int count[AT_RUN_COUNT]; /* outcomes so far */
  double elapsed_s;
} at_tune_event;

/* What a sweep did. Strings are owned by the report (at_tune_report_free). */
typedef struct at_tune_report {
  char *db_path;
  char *device;      /* the device key the rows were stored under */
  char *device_name; /* "NVIDIA H200", or the arch for compile-only sweeps */
  char *arch;        /* the target the candidates were compiled for */
  char *toolchain;
  char *kernel;
  char *ir_hash;
  char *bucket;
  char *problem;   /* the exact problem */
  bool aligned;    /* the sweep measured the aligned variant (rows' variant "aligned") */
  int space, live; /* points of the space, and those left after pruning before compiling */
  int considered;  /* candidates the search went through */
  int measured;    /* of them, measured or compiled now (not answered from the DB) */
  int count[AT_RUN_COUNT];
  bool stopped; /* the time limit stopped the search */
  double elapsed_s;
  at_rows top;      /* the problem's rows from the database, best first (ok rows) */
  bool have_winner; /* top.r[0] is the winner */
  char note[512];   /* "" or something that went wrong after the sweep (its result stands) */
} at_tune_report;

/* Runs a sweep. Returns AT_OK when the sweep ran to its end (a sweep with no ok candidate is
 * still AT_OK: have_winner says whether one won); AT_ERR_ENV when no GPU, driver or worker is
 * usable; AT_ERR_ARG for a bad kernel, shape or option (message located when it comes from
 * the kernel text); database errors as db.h returns them. r is filled as far as the sweep got
 * and must be freed with at_tune_report_free in every case. */
at_status at_tune(const at_tune_opts *o, at_tune_report *r, at_err *e);

void at_tune_report_free(at_tune_report *r); /* NULL-safe; leaves r zeroed */

#endif
