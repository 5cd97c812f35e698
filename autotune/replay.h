/* autotune/replay.h — a recorded table of (config → outcome) that stands in for the GPU.
 *
 * Replay mode tests the search strategies without a GPU: the table answers what a measurement
 * would have answered. A table file has one line per config, `config<TAB>status<TAB>ms`, where
 * config is the space's canonical text (space.h), status an at_run name ("ok", "wrong", ...) and
 * ms the time (any number, or "-", for a status other than ok). Blank lines and lines starting
 * with '#' are skipped. Tables can also be built in memory and saved (tests build synthetic ones).
 */
#ifndef TILEC_AUTOTUNE_REPLAY_H
#define TILEC_AUTOTUNE_REPLAY_H

#include <stdbool.h>

#include "autotune/at.h"
#include "autotune/search.h"

typedef struct at_replay at_replay;

/* An empty table; the caller owns it (at_replay_free). Errors: AT_ERR_OOM. */
at_status at_replay_new(at_replay **out, at_err *e);

/* Reads a table file. Errors: AT_ERR_IO (cannot open or read), AT_ERR_ARG (a malformed line,
 * named as path:line, or a config given twice), AT_ERR_OOM. The caller owns *out. */
at_status at_replay_load(const char *path, at_replay **out, at_err *e);

/* Adds or replaces the row of config (copied). Errors: AT_ERR_ARG (an empty config or one with a
 * tab or newline, a status out of range, an ok without a finite time >= 0), AT_ERR_OOM. */
at_status at_replay_add(at_replay *t, const char *config, at_run status, double ms, at_err *e);

/* Writes the table in the file format, rows in insertion order. Errors: AT_ERR_IO. */
at_status at_replay_save(const at_replay *t, const char *path, at_err *e);

/* The row of config, when there is one. */
bool at_replay_lookup(const at_replay *t, const char *config, at_measured *out);

int at_replay_count(const at_replay *t); /* rows */

void at_replay_free(at_replay *t); /* NULL is a no-op */

/* The context of at_replay_measure: the table, and what the search asked of it. */
typedef struct at_replay_ctx {
  const at_replay *table;
  int calls;    /* measure calls */
  int answered; /* candidates answered */
  int missing;  /* candidates the table has no row for (the search was stopped) */
  char missing_config[256];
} at_replay_ctx;

/* An at_measure_fn answering from ctx->table (ctx: an at_replay_ctx). A candidate without a row
 * stops the search (returns 1) and is counted in ctx->missing. */
int at_replay_measure(void *ctx, const at_space *s, const int *idx, int n, at_measured *out);

#endif
