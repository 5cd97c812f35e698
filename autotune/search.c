/* autotune/search.c — exhaustive, random and model-guided search over a space (search.h).
 *
 * Every strategy is a list of candidate indices handed to one measuring routine that skips
 * pruned and already measured candidates, cuts the list into batches for the callback, keeps
 * the budget and the best. exhaustive and random build their whole order up front (warm configs
 * first, then the space order or a seeded permutation), cut it at the budget and keep this
 * shard's positions, so the shards of a sweep partition the unsharded sweep. model measures the
 * prior's top-k, then climbs best-first: it takes the fastest candidate of the climb that still
 * has unmeasured neighbours (one tunable set to another value of its domain first, then two
 * tunables each moved one step) and measures the most promising of them by the prior. A climb
 * that stalls or reaches a local optimum restarts from a point far from the earlier climbs
 * (alternately the prior's best and a seeded random one), so that one basin near the prior's
 * favourites cannot hold the whole budget.
 */
#include "autotune/search.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const strategy_names[] = {"exhaustive", "random", "model"};

bool at_strategy_parse(const char *name, at_strategy *out) {
  for (int i = 0; name && i < 3; i++)
    if (strcmp(name, strategy_names[i]) == 0) {
      *out = (at_strategy)i;
      return true;
    }
  return false;
}

const char *at_strategy_name(at_strategy s) {
  return (unsigned)s < 3 ? strategy_names[s] : "unknown";
}

enum {
  DEFAULT_TOPK = 16,   /* model: candidates measured in prior order before the local search */
  EXPAND_MIN = 8,      /* neighbours measured per expansion (or the batch, when larger) */
  PATIENCE = 5,        /* expansions without a faster candidate before a climb restarts */
  RANDOM_TRIES = 256,  /* random draws for a far restart point */
  CLIMBS_UNLIMITED = 4 /* climbs (the first and its restarts) of a model search without a budget */
};

typedef struct run {
  const at_space *s;
  const at_search_opts *o;
  at_measure_fn fn;
  void *ctx;
  at_search_result *r;
  at_err *e;
  unsigned char *done;  /* measured in this run */
  unsigned char *spent; /* model: every live neighbour measured */
  at_measured *res;
  int *ok; /* measured ok candidates, fastest first */
  int nok;
  int *climb_of; /* model: the climb in which a candidate was measured */
  int climb;
  int *anchor; /* model: starts and bests of the climbs so far */
  int nanchor;
  int *live; /* model: every live candidate, warm configs first, then by prior */
  int nlive;
  int far_cursor, any_cursor; /* model: where the scans for restart points resume */
  int limit;                  /* measurements this shard may make */
  int *pend;                  /* the batch being filled */
  int npend;
  at_measured *out;
  at_status st;
} run;

/* ---- measuring ------------------------------------------------------------------------------ */

static bool faster(const run *u, int a, int b) {
  return u->res[a].ms < u->res[b].ms || (u->res[a].ms == u->res[b].ms && a < b);
}

static void record(run *u, int i, at_measured m) {
  at_search_result *r = u->r;
  u->done[i] = 1;
  u->res[i] = m;
  u->climb_of[i] = u->climb;
  r->measured++;
  r->count[m.status]++;
  if (m.status != AT_RUN_OK)
    return;
  int p = u->nok++;
  while (p > 0 && faster(u, i, u->ok[p - 1])) {
    u->ok[p] = u->ok[p - 1];
    p--;
  }
  u->ok[p] = i;
  r->best = u->ok[0];
  r->best_ms = u->res[u->ok[0]].ms;
}

/* Hands the pending batch to the callback. False when the search must end (stop or error). */
static bool flush(run *u) {
  if (u->npend == 0)
    return true;
  int n = u->npend;
  u->npend = 0;
  for (int i = 0; i < n; i++)
    u->out[i] = (at_measured){AT_RUN_FAULT, NAN};
  if (u->fn(u->ctx, u->s, u->pend, n, u->out) != 0) {
    u->r->stopped = true;
    return false;
  }
  for (int i = 0; i < n; i++) {
    at_measured m = u->out[i];
    if ((unsigned)m.status >= AT_RUN_COUNT ||
        (m.status == AT_RUN_OK && !(isfinite(m.ms) && m.ms >= 0))) {
      u->st = at_fail(u->e, AT_ERR_ARG, "the measure callback answered %s for '%s' %s",
                      at_run_name(m.status), u->s->c[u->pend[i]].config,
                      m.status == AT_RUN_OK ? "without a finite time" : "(not a run status)");
      return false;
    }
    record(u, u->pend[i], m);
  }
  return true;
}

/* Measures the live, not yet measured candidates of idx[0..n) in order, within the limit.
 * False when the search must end. */
static bool measure(run *u, const int *idx, int n) {
  for (int i = 0; i < n; i++) {
    int c = idx[i];
    if (u->r->measured + u->npend >= u->limit)
      break;
    if (u->s->c[c].pruned || u->done[c])
      continue;
    bool dup = false;
    for (int j = 0; j < u->npend; j++)
      dup |= u->pend[j] == c;
    if (dup)
      continue;
    u->pend[u->npend++] = c;
    if (u->npend == u->o->batch && !flush(u))
      return false;
  }
  return flush(u);
}

/* ---- candidate orders ----------------------------------------------------------------------- */

/* splitmix64: a fixed, portable generator, so a seed means the same order everywhere. */
static uint64_t next_random(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* A candidate and its prior, sorted lower prior first, NaN after everything, ties by index. */
typedef struct keyed {
  double prior;
  int idx;
} keyed;

static int keyed_cmp(const void *x, const void *y) {
  const keyed *a = x, *b = y;
  bool na = isnan(a->prior), nb = isnan(b->prior);
  if (na != nb)
    return na ? 1 : -1;
  if (!na && a->prior != b->prior)
    return a->prior < b->prior ? -1 : 1;
  return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Sorts idx[0..n) by prior; false on host OOM. */
static bool sort_by_prior(const at_space *s, int *idx, int n) {
  keyed *k = malloc(sizeof *k * (size_t)(n ? n : 1));
  if (!k)
    return false;
  for (int i = 0; i < n; i++)
    k[i] = (keyed){s->c[idx[i]].prior_ms, idx[i]};
  qsort(k, (size_t)n, sizeof *k, keyed_cmp);
  for (int i = 0; i < n; i++)
    idx[i] = k[i].idx;
  free(k);
  return true;
}

/* Appends the warm configs that are live candidates of s (each once) to order; returns the
 * new length. */
static int warm_first(run *u, int *order, unsigned char *seen) {
  int n = 0;
  for (int i = 0; u->o->warm && i < u->o->nwarm; i++) {
    int c = at_space_find(u->s, u->o->warm[i]);
    if (c < 0 || u->s->c[c].pruned) {
      u->r->warm_skipped++;
      continue;
    }
    if (!seen[c]) {
      seen[c] = 1;
      order[n++] = c;
    }
  }
  return n;
}

/* The strategy's base order of the live candidates after the warm ones; returns the length, or
 * -1 on host OOM. */
static int base_order(run *u, int *order, int n, unsigned char *seen) {
  const at_space *s = u->s;
  int first = n;
  for (int i = 0; i < s->n; i++)
    if (!s->c[i].pruned && !seen[i]) {
      seen[i] = 1;
      order[n++] = i;
    }
  if (u->o->strategy == AT_STRATEGY_RANDOM) {
    uint64_t x = u->o->seed;
    for (int i = n - 1; i > first; i--) {
      int j = first + (int)(next_random(&x) % (uint64_t)(i - first + 1));
      int t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
  } else if (u->o->strategy == AT_STRATEGY_MODEL && !sort_by_prior(s, order + first, n - first)) {
    u->st = at_fail(u->e, AT_ERR_OOM, "out of memory");
    return -1;
  }
  return n;
}

/* Keeps the positions p < cut with p % shard_n == shard_i; returns the new length. */
static int shard(const at_search_opts *o, int *order, int n, int cut) {
  int m = 0;
  for (int p = 0; p < n && p < cut; p++)
    if (p % o->shard_n == o->shard_i)
      order[m++] = order[p];
  return m;
}

/* ---- model: best-first local search ---------------------------------------------------------- */

/* Keeps the live, unmeasured candidates of nb[0..n) in order; returns how many. */
static int unmeasured(const run *u, int *nb, int n) {
  int m = 0;
  for (int i = 0; i < n; i++)
    if (!u->s->c[nb[i]].pruned && !u->done[nb[i]])
      nb[m++] = nb[i];
  return m;
}

/* The live neighbours of c not yet measured: first those that change one tunable (*n1 of them),
 * then those that move two tunables one step each, each group best prior first. Returns how
 * many, -1 on host OOM. */
static int neighbours(const run *u, int c, int *nb, int *n1) {
  const at_space *s = u->s;
  int stride[AT_MAX_TUN], pos[AT_MAX_TUN], n = 0;
  int st = 1;
  for (int t = s->ntun - 1; t >= 0; t--) {
    stride[t] = st;
    pos[t] = (c / st) % s->ndomain[t];
    st *= s->ndomain[t];
  }
  for (int t = 0; t < s->ntun; t++)
    for (int j = 0; j < s->ndomain[t]; j++)
      if (j != pos[t])
        nb[n++] = c + (j - pos[t]) * stride[t];
  n = *n1 = unmeasured(u, nb, n);
  for (int t = 0; t < s->ntun; t++)
    for (int v = t + 1; v < s->ntun; v++)
      for (int dt = -1; dt <= 1; dt += 2)
        for (int dv = -1; dv <= 1; dv += 2) {
          int a = pos[t] + dt, b = pos[v] + dv;
          if (a >= 0 && a < s->ndomain[t] && b >= 0 && b < s->ndomain[v])
            nb[n++] = c + dt * stride[t] + dv * stride[v];
        }
  n = *n1 + unmeasured(u, nb + *n1, n - *n1);
  return sort_by_prior(s, nb, *n1) && sort_by_prior(s, nb + *n1, n - *n1) ? n : -1;
}

/* The number of tunables in which candidates a and b differ. */
static int hamming(const at_space *s, int a, int b) {
  int d = 0;
  for (int t = s->ntun - 1; t >= 0; t--) {
    d += a % s->ndomain[t] != b % s->ndomain[t];
    a /= s->ndomain[t];
    b /= s->ndomain[t];
  }
  return d;
}

/* Whether c differs from every anchor (start and best of earlier climbs) in at least half of the
 * tunables. */
static bool far_from_anchors(const run *u, int c) {
  int need = u->s->ntun / 2 > 1 ? u->s->ntun / 2 : 1;
  for (int i = 0; i < u->nanchor; i++)
    if (hamming(u->s, c, u->anchor[i]) < need)
      return false;
  return true;
}

/* The start of the next climb: for odd climbs the best-prior, for even ones a random (seeded)
 * unmeasured live candidate far from the anchors; failing that any unmeasured one; -1 when every
 * live candidate is measured. */
static int restart_point(run *u, uint64_t *rng) {
  /* Candidates before a cursor were measured or near an anchor when it passed them; both stay
   * true (measurements and anchors only grow), so each scan resumes there. */
  if (u->climb % 2 == 1) {
    for (; u->far_cursor < u->nlive; u->far_cursor++) {
      int c = u->live[u->far_cursor];
      if (!u->done[c] && far_from_anchors(u, c))
        return c;
    }
  } else {
    for (int tries = 0; tries < RANDOM_TRIES && u->nlive > 0; tries++) {
      int c = u->live[next_random(rng) % (uint64_t)u->nlive];
      if (!u->done[c] && far_from_anchors(u, c))
        return c;
    }
  }
  for (; u->any_cursor < u->nlive; u->any_cursor++)
    if (!u->done[u->live[u->any_cursor]])
      return u->live[u->any_cursor];
  return -1;
}

/* The fastest candidate measured in the current climb, or -1. */
static int climb_best(const run *u) {
  for (int i = 0; i < u->nok; i++)
    if (u->climb_of[u->ok[i]] == u->climb)
      return u->ok[i];
  return -1;
}

/* The fastest candidate of the current climb with unmeasured neighbours (written to nb: *n of
 * them, the first *n1 one-tunable moves), or -1; -2 on host OOM. */
static int next_node(run *u, int *nb, int *n, int *n1) {
  for (int i = 0; i < u->nok; i++) {
    int c = u->ok[i];
    if (u->spent[c] || u->climb_of[c] != u->climb)
      continue;
    if ((*n = neighbours(u, c, nb, n1)) < 0)
      return -2;
    if (*n > 0)
      return c;
    u->spent[c] = 1;
  }
  return -1;
}

/* Best-first climbs: the first from the candidates measured so far, each later one from a restart
 * point far from the earlier climbs. With a budget a climb ends when it stalls (PATIENCE
 * expansions without a faster candidate, and every one-tunable move of its best measured) or its
 * best is a local optimum (every neighbour measured), and climbs go on until the budget is spent.
 * Without a budget each climb ends at a local optimum and the search after CLIMBS_UNLIMITED
 * climbs. False when the search must end (stop or error). */
static bool local_search(run *u) {
  const at_space *s = u->s;
  int cap = 1;
  for (int t = 0; t < s->ntun; t++)
    cap += s->ndomain[t] + 2 * s->ntun;
  int *nb = malloc(sizeof(int) * (size_t)cap);
  if (!nb) {
    u->st = at_fail(u->e, AT_ERR_OOM, "out of memory");
    return false;
  }
  int step = u->o->batch > EXPAND_MIN ? u->o->batch : EXPAND_MIN;
  uint64_t rng = u->o->seed ^ 0x6d6f64656cull; /* "model" */
  int best = climb_best(u), stall = 0;
  bool go = true;
  while (go && u->r->measured < u->limit) {
    int n = 0, n1 = 0, node = next_node(u, nb, &n, &n1);
    if (node == -2) {
      u->st = at_fail(u->e, AT_ERR_OOM, "out of memory");
      go = false;
      break;
    }
    bool converged = node < 0 || node != best; /* the climb's best is a local optimum */
    bool stalled = stall >= PATIENCE && !(node == best && n1 > 0);
    if (u->o->budget == 0 ? converged : converged || stalled) {
      if (u->o->budget == 0 && u->climb + 1 >= CLIMBS_UNLIMITED)
        break;
      if (best >= 0)
        u->anchor[u->nanchor++] = best;
      u->climb++;
      int start = restart_point(u, &rng);
      if (start < 0)
        break;
      u->anchor[u->nanchor++] = start;
      go = measure(u, &start, 1);
      best = climb_best(u);
      stall = 0;
      continue;
    }
    go = measure(u, nb, n < step ? n : step);
    int now = climb_best(u);
    stall = now == best ? stall + 1 : 0;
    best = now;
  }
  free(nb);
  return go;
}

/* ---- entry ---------------------------------------------------------------------------------- */

static at_status check_args(const at_space *s, const at_search_opts *o, at_measure_fn fn,
                            at_search_result *r, at_err *e) {
  if (!s || !o || !fn || !r)
    return at_fail(e, AT_ERR_ARG, "at_search_run: NULL argument");
  if ((unsigned)o->strategy > AT_STRATEGY_MODEL)
    return at_fail(e, AT_ERR_ARG, "unknown strategy %d", (int)o->strategy);
  if (o->batch < 1)
    return at_fail(e, AT_ERR_ARG, "batch must be >= 1 (got %d)", o->batch);
  if (o->budget < 0 || o->topk < 0 || o->nwarm < 0)
    return at_fail(e, AT_ERR_ARG, "budget, topk and the warm count must be >= 0");
  if (o->shard_n < 0 || o->shard_i < 0 || o->shard_i >= (o->shard_n ? o->shard_n : 1))
    return at_fail(e, AT_ERR_ARG, "bad shard %d/%d", o->shard_i, o->shard_n);
  return AT_OK;
}

at_status at_search_run(const at_space *s, const at_search_opts *opts, at_measure_fn fn, void *ctx,
                        at_search_result *r, at_err *e) {
  at_status st = check_args(s, opts, fn, r, e);
  if (st)
    return st;
  at_search_opts o = *opts;
  if (o.shard_n == 0)
    o.shard_n = 1;
  memset(r, 0, sizeof *r);
  r->best = -1;
  r->best_ms = NAN;
  run u = {.s = s, .o = &o, .fn = fn, .ctx = ctx, .r = r, .e = e, .limit = INT_MAX};
  if (o.budget > 0)
    u.limit = o.budget / o.shard_n + (o.shard_i < o.budget % o.shard_n);
  size_t n = (size_t)s->n + 1;
  u.done = calloc(n, 1);
  u.spent = calloc(n, 1);
  unsigned char *seen = calloc(n, 1);
  u.res = calloc(n, sizeof *u.res);
  u.ok = calloc(n, sizeof *u.ok);
  u.climb_of = calloc(n, sizeof *u.climb_of);
  u.anchor = calloc(2 * n + 2, sizeof *u.anchor);
  u.live = calloc(n, sizeof *u.live);
  u.pend = calloc((size_t)o.batch, sizeof *u.pend);
  u.out = calloc((size_t)o.batch, sizeof *u.out);
  int *order = calloc(n, sizeof *order);
  if (!u.done || !u.spent || !seen || !u.res || !u.ok || !u.climb_of || !u.anchor || !u.live ||
      !u.pend || !u.out || !order) {
    st = at_fail(e, AT_ERR_OOM, "out of memory for a search over %d candidates", s->n);
    goto done;
  }
  int nw = warm_first(&u, order, seen);
  int len = base_order(&u, order, nw, seen);
  if (len < 0) {
    st = u.st;
    goto done;
  }
  if (o.strategy == AT_STRATEGY_MODEL) {
    int topk = o.topk ? o.topk : DEFAULT_TOPK;
    if (!o.topk && o.budget > 0 && o.budget / 2 < topk)
      topk = o.budget / 2 > 0 ? o.budget / 2 : 1;
    memcpy(u.live, order, sizeof *order * (size_t)len);
    u.nlive = len;
    len = shard(&o, order, len, topk > INT_MAX - nw ? INT_MAX : nw + topk);
    if (measure(&u, order, len))
      local_search(&u);
  } else {
    len = shard(&o, order, len, o.budget > 0 ? o.budget : INT_MAX);
    measure(&u, order, len);
  }
  st = u.st;
done:
  free(u.done);
  free(u.spent);
  free(seen);
  free(u.res);
  free(u.ok);
  free(u.climb_of);
  free(u.anchor);
  free(u.live);
  free(u.pend);
  free(u.out);
  free(order);
  return st;
}
