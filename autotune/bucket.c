/* autotune/bucket.c — bucket keys of problems and the nearest tuned bucket (bucket.h). */
#include "autotune/bucket.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_ITEMS = KN_MAX_KEYS + 1, MISMATCH = 8 };

typedef struct item {
  char key[32];
  char text[300];
} item;

static int item_cmp(const void *a, const void *b) {
  return strcmp(((const item *)a)->key, ((const item *)b)->key);
}

static const ir_bucket *bucket_of(const ir_kernel *k, const char *name) {
  int s = ir_sym_find(k, name, strlen(name));
  for (int i = 0; s >= 0 && i < k->nbuckets; i++)
    if (k->buckets[i].sym == s)
      return &k->buckets[i];
  return NULL;
}

/* The bucket text of one value; AT_ERR_ARG when a numeric bucket gets a non-integer. */
static at_status bucket_text(const ir_bucket *b, const char *key, const char *val, char *out,
                             size_t cap, at_err *e) {
  if (!b || b->kind == IR_BUCKET_EXACT) {
    snprintf(out, cap, "%s", val);
    for (char *c = strchr(out, ','); c; c = strchr(c, ','))
      *c = ';'; /* the key is a comma-separated list */
    return AT_OK;
  }
  if (b->kind == IR_BUCKET_ANY) {
    snprintf(out, cap, "any");
    return AT_OK;
  }
  char *end;
  errno = 0;
  long long v = strtoll(val, &end, 10);
  if (errno || end == val || *end)
    return at_fail(e, AT_ERR_ARG, "--shape %s=%s: the %s bucket needs an integer", key, val,
                   ir_bucket_kind_name(b->kind));
  if (b->kind == IR_BUCKET_POW2) {
    if (v < 1 || v > (INT64_C(1) << 62)) {
      snprintf(out, cap, "%lld", v);
      return AT_OK;
    }
    int64_t p = 1;
    while (p < v)
      p <<= 1;
    snprintf(out, cap, "pow2:%lld", (long long)p);
    return AT_OK;
  }
  if (v < 1 || v > INT64_MAX - b->arg) {
    snprintf(out, cap, "%lld", v);
    return AT_OK;
  }
  snprintf(out, cap, "multiple(%lld):%lld", (long long)b->arg,
           (long long)((v + b->arg - 1) / b->arg * b->arg));
  return AT_OK;
}

at_status at_bucket_key(const ir_kernel *k, const kn_shape *shape, const char *dtype, char **out,
                        at_err *e) {
  if (!out)
    return at_fail(e, AT_ERR_ARG, "at_bucket_key: no output");
  *out = NULL;
  if (!k || !shape)
    return at_fail(e, AT_ERR_ARG, "at_bucket_key: no kernel or shape");
  item it[MAX_ITEMS];
  int n = 0;
  for (int i = 0; i < shape->n && i < KN_MAX_KEYS; i++) {
    const char *key = shape->kv[i].key;
    if (dtype && strcmp(key, "dtype") == 0)
      return at_fail(e, AT_ERR_ARG, "--shape key 'dtype' clashes with the dtype");
    snprintf(it[n].key, sizeof it[n].key, "%s", key);
    at_status s =
        bucket_text(bucket_of(k, key), key, shape->kv[i].val, it[n].text, sizeof it[n].text, e);
    if (s)
      return s;
    n++;
  }
  if (dtype) {
    snprintf(it[n].key, sizeof it[n].key, "dtype");
    snprintf(it[n].text, sizeof it[n].text, "%s", dtype);
    n++;
  }
  qsort(it, (size_t)n, sizeof *it, item_cmp);
  size_t len = 1;
  for (int i = 0; i < n; i++)
    len += strlen(it[i].key) + strlen(it[i].text) + 2;
  char *s = malloc(len), *p = s;
  if (!s)
    return at_fail(e, AT_ERR_OOM, "out of memory");
  *p = 0;
  for (int i = 0; i < n; i++)
    p += sprintf(p, "%s%s=%s", i ? "," : "", it[i].key, it[i].text);
  *out = s;
  return AT_OK;
}

/* ---- distance ------------------------------------------------------------------------------- */

typedef struct parsed {
  char *copy;
  const char *key[64], *val[64];
  int n;
} parsed;

/* Splits a bucket text into items; false when malformed (or on host OOM). */
static bool parse(const char *text, parsed *p) {
  p->n = 0;
  p->copy = text ? strdup(text) : NULL;
  if (!p->copy)
    return false;
  for (char *s = p->copy; *s;) {
    char *part = s, *comma = strchr(s, ',');
    if (comma) {
      *comma = 0;
      s = comma + 1;
    } else {
      s += strlen(s);
    }
    char *eq = strchr(part, '=');
    if (!eq || eq == part || p->n == 64) {
      free(p->copy);
      return false;
    }
    *eq = 0;
    p->key[p->n] = part;
    p->val[p->n++] = eq + 1;
  }
  return true;
}

/* The number a bucket value stands for (the part after the last ':'), or NaN. */
static double value(const char *v) {
  const char *c = strrchr(v, ':');
  const char *s = c ? c + 1 : v;
  char *end;
  double x = strtod(s, &end);
  return end != s && *end == 0 && x > 0 && isfinite(x) ? x : NAN;
}

double at_bucket_distance(const char *a, const char *b) {
  parsed pa, pb;
  if (!parse(a, &pa))
    return INFINITY;
  if (!parse(b, &pb)) {
    free(pa.copy);
    return INFINITY;
  }
  double d = 0;
  for (int i = 0; i < pa.n; i++) {
    int j = 0;
    while (j < pb.n && strcmp(pa.key[i], pb.key[j]) != 0)
      j++;
    if (j == pb.n) {
      d += MISMATCH;
      continue;
    }
    if (strcmp(pa.val[i], pb.val[j]) == 0)
      continue;
    double x = value(pa.val[i]), y = value(pb.val[j]);
    d += isnan(x) || isnan(y) ? MISMATCH : fabs(log2(x) - log2(y));
  }
  for (int j = 0; j < pb.n; j++) {
    int i = 0;
    while (i < pa.n && strcmp(pa.key[i], pb.key[j]) != 0)
      i++;
    if (i == pa.n)
      d += MISMATCH;
  }
  free(pa.copy);
  free(pb.copy);
  return d;
}

typedef struct ranked {
  double d;
  const char *bucket;
  int i;
} ranked;

static int ranked_cmp(const void *x, const void *y) {
  const ranked *a = x, *b = y;
  if (a->d != b->d)
    return a->d < b->d ? -1 : 1;
  int c = strcmp(a->bucket, b->bucket);
  return c ? c : (a->i > b->i) - (a->i < b->i);
}

at_status at_bucket_nearest(const char *bucket, const at_bucket_winner *list, int n, int max,
                            const char **out, int *nout, at_err *e) {
  if (!bucket || !out || !nout || n < 0 || max < 0 || (n > 0 && !list))
    return at_fail(e, AT_ERR_ARG, "at_bucket_nearest: bad argument");
  *nout = 0;
  if (isinf(at_bucket_distance(bucket, bucket)))
    return at_fail(e, AT_ERR_ARG, "'%s' is not a bucket text", bucket);
  ranked *r = malloc(sizeof *r * (size_t)(n ? n : 1));
  if (!r)
    return at_fail(e, AT_ERR_OOM, "out of memory");
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (!list[i].bucket || !list[i].config)
      continue;
    double d = at_bucket_distance(bucket, list[i].bucket);
    if (isfinite(d))
      r[m++] = (ranked){d, list[i].bucket, i};
  }
  qsort(r, (size_t)m, sizeof *r, ranked_cmp);
  for (int i = 0; i < m && *nout < max; i++) {
    const char *c = list[r[i].i].config;
    bool dup = false;
    for (int j = 0; j < *nout && !dup; j++)
      dup = strcmp(out[j], c) == 0;
    if (!dup)
      out[(*nout)++] = c;
  }
  free(r);
  return AT_OK;
}
