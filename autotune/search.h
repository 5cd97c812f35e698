/* autotune/search.h — the search strategies over a space (space.h).
 *
 * at_search_run decides which candidates to measure and in which order; the caller measures
 * them through a callback (compile on threads, run in the worker, or answer from the database
 * when resuming; in tests, from a replay table: replay.h). Every choice depends only on the
 * space, the options and the answers, never on time, so a sweep killed and restarted with a
 * callback that answers the finished candidates from the database makes the same calls and ends
 * with the same winner. docs/tuning-search.md describes the strategies, sharding and budgets.
 */
#ifndef TILEC_AUTOTUNE_SEARCH_H
#define TILEC_AUTOTUNE_SEARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "autotune/at.h"
#include "autotune/space.h"

typedef enum { AT_STRATEGY_EXHAUSTIVE, AT_STRATEGY_RANDOM, AT_STRATEGY_MODEL } at_strategy;

/* "exhaustive", "random", "model" → *out; false for any other name (or NULL). */
bool at_strategy_parse(const char *name, at_strategy *out);

/* The name of a strategy ("unknown" outside the enum); static. */
const char *at_strategy_name(at_strategy s);

/* The outcome of one candidate: a status and, for AT_RUN_OK, its time in milliseconds. */
typedef struct at_measured {
  at_run status;
  double ms;
} at_measured;

/* Measures candidates idx[0..n) of s and fills out[i] for each. Returns 0, or nonzero to stop
 * the search (interrupted, time up): the search then returns what it has, and the answers of
 * the call that asked to stop are not used (those candidates count as not measured). */
typedef int (*at_measure_fn)(void *ctx, const at_space *s, const int *idx, int n, at_measured *out);

typedef struct at_search_opts {
  at_strategy strategy;
  uint64_t seed; /* random: the permutation */
  int budget;    /* candidates to measure over all shards, 0 = no limit (model: 4 climbs) */
  int topk;      /* model: measured before the local search (0 = a default: 16, or budget/2) */
  int batch;     /* candidates per measure call (compile parallelism), >= 1 */
  int shard_i, shard_n;    /* this shard of the candidate order (0/1 = everything) */
  const char *const *warm; /* configs to measure first (warm start), may be NULL */
  int nwarm;
} at_search_opts;

typedef struct at_search_result {
  int best;                /* index of the fastest ok candidate, -1 when none */
  double best_ms;          /* its time; NaN when none */
  int measured;            /* candidates measured (or answered) */
  int count[AT_RUN_COUNT]; /* outcomes by status */
  bool stopped;            /* the measure callback asked to stop */
  int warm_skipped;        /* warm configs not in the space or pruned */
} at_search_result;

/* Runs the strategy o->strategy over the live candidates of s, calling fn with at most o->batch
 * candidates at a time, and fills r. Ties between equal times go to the lower candidate index.
 * Errors: AT_ERR_ARG for a NULL argument, batch < 1, a bad shard, a negative budget or topk, or
 * a callback answer that is not a run status (or an ok without a finite time >= 0); AT_ERR_OOM.
 * A callback that asks to stop is not an error (r->stopped). */
at_status at_search_run(const at_space *s, const at_search_opts *o, at_measure_fn fn, void *ctx,
                        at_search_result *r, at_err *e);

#endif
