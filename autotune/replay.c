/* autotune/replay.c — replay tables: load, save, look up, and answer a search (replay.h).
 *
 * Rows live in an array in insertion order (for saving) with an open-addressing hash index on
 * the config text (FNV-1a) for lookups.
 */
#include "autotune/replay.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct row {
  char *config;
  at_measured m;
} row;

struct at_replay {
  row *rows;
  int n, cap;
  int *slot; /* hash slots: row index + 1, 0 when empty */
  int nslot; /* a power of two, at least twice n */
};

static uint32_t hash(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* The slot of config: its row's, or the empty one where it would go. */
static int find_slot(const at_replay *t, const char *config) {
  int mask = t->nslot - 1, i = (int)(hash(config) & (uint32_t)mask);
  while (t->slot[i] && strcmp(t->rows[t->slot[i] - 1].config, config) != 0)
    i = (i + 1) & mask;
  return i;
}

static bool rehash(at_replay *t, int nslot) {
  int *slot = calloc((size_t)nslot, sizeof *slot);
  if (!slot)
    return false;
  free(t->slot);
  t->slot = slot;
  t->nslot = nslot;
  for (int r = 0; r < t->n; r++)
    t->slot[find_slot(t, t->rows[r].config)] = r + 1;
  return true;
}

at_status at_replay_new(at_replay **out, at_err *e) {
  if (!out)
    return at_fail(e, AT_ERR_ARG, "at_replay_new: no output");
  at_replay *t = calloc(1, sizeof *t);
  if (!t || !rehash(t, 64)) {
    free(t);
    *out = NULL;
    return at_fail(e, AT_ERR_OOM, "out of memory");
  }
  *out = t;
  return AT_OK;
}

at_status at_replay_add(at_replay *t, const char *config, at_run status, double ms, at_err *e) {
  if (!t || !config || !*config || strpbrk(config, "\t\r\n"))
    return at_fail(e, AT_ERR_ARG, "replay row: empty config or one with a tab or newline");
  if ((unsigned)status >= AT_RUN_COUNT)
    return at_fail(e, AT_ERR_ARG, "replay row '%s': status %d is not a run status", config,
                   (int)status);
  if (status == AT_RUN_OK && !(isfinite(ms) && ms >= 0))
    return at_fail(e, AT_ERR_ARG, "replay row '%s': ok needs a finite time >= 0", config);
  int i = find_slot(t, config);
  if (t->slot[i]) {
    t->rows[t->slot[i] - 1].m = (at_measured){status, ms};
    return AT_OK;
  }
  if (t->n == t->cap) {
    int cap = t->cap ? t->cap * 2 : 256;
    row *r = realloc(t->rows, sizeof *r * (size_t)cap);
    if (!r)
      return at_fail(e, AT_ERR_OOM, "out of memory");
    t->rows = r;
    t->cap = cap;
  }
  char *c = strdup(config);
  if (!c)
    return at_fail(e, AT_ERR_OOM, "out of memory");
  t->rows[t->n++] = (row){c, {status, ms}};
  if (t->n * 2 > t->nslot) {
    if (!rehash(t, t->nslot * 2)) {
      free(t->rows[--t->n].config);
      return at_fail(e, AT_ERR_OOM, "out of memory");
    }
  } else {
    t->slot[i] = t->n;
  }
  return AT_OK;
}

/* Parses one line (without its newline) into the table. */
static at_status load_line(at_replay *t, char *line, const char *path, int ln, at_err *e) {
  char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
  if (!tab2 || strchr(tab2 + 1, '\t'))
    return at_fail(e, AT_ERR_ARG, "%s:%d: expected config<TAB>status<TAB>ms", path, ln);
  *tab1 = *tab2 = 0;
  at_run st;
  if (!at_run_parse(tab1 + 1, &st))
    return at_fail(e, AT_ERR_ARG, "%s:%d: unknown status '%s'", path, ln, tab1 + 1);
  double ms = NAN;
  if (strcmp(tab2 + 1, "-") != 0) {
    char *end;
    ms = strtod(tab2 + 1, &end);
    if (end == tab2 + 1 || *end)
      return at_fail(e, AT_ERR_ARG, "%s:%d: bad time '%s'", path, ln, tab2 + 1);
  }
  at_measured old;
  if (at_replay_lookup(t, line, &old))
    return at_fail(e, AT_ERR_ARG, "%s:%d: config '%s' given twice", path, ln, line);
  at_err row_err;
  at_status s = at_replay_add(t, line, st, ms, &row_err);
  return s ? at_fail(e, s, "%s:%d: %s", path, ln, row_err.msg) : AT_OK;
}

at_status at_replay_load(const char *path, at_replay **out, at_err *e) {
  if (!out || !path)
    return at_fail(e, AT_ERR_ARG, "at_replay_load: NULL argument");
  *out = NULL;
  FILE *f = fopen(path, "r");
  if (!f)
    return at_fail(e, AT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
  at_replay *t = NULL;
  at_status s = at_replay_new(&t, e);
  char line[1024];
  for (int ln = 1; !s && fgets(line, sizeof line, f); ln++) {
    size_t len = strlen(line);
    if (len && line[len - 1] == '\n')
      line[--len] = 0;
    else if (!feof(f))
      s = at_fail(e, AT_ERR_ARG, "%s:%d: line longer than %zu bytes", path, ln, sizeof line - 2);
    if (!s && len && line[0] != '#')
      s = load_line(t, line, path, ln, e);
  }
  if (!s && ferror(f))
    s = at_fail(e, AT_ERR_IO, "cannot read %s", path);
  fclose(f);
  if (s) {
    at_replay_free(t);
    return s;
  }
  *out = t;
  return AT_OK;
}

at_status at_replay_save(const at_replay *t, const char *path, at_err *e) {
  if (!t || !path)
    return at_fail(e, AT_ERR_ARG, "at_replay_save: NULL argument");
  FILE *f = fopen(path, "w");
  if (!f)
    return at_fail(e, AT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
  fprintf(f, "# tilec replay table: config<TAB>status<TAB>ms\n");
  for (int i = 0; i < t->n; i++) {
    const row *r = &t->rows[i];
    if (r->m.status == AT_RUN_OK || isfinite(r->m.ms))
      fprintf(f, "%s\t%s\t%.17g\n", r->config, at_run_name(r->m.status), r->m.ms);
    else
      fprintf(f, "%s\t%s\t-\n", r->config, at_run_name(r->m.status));
  }
  if (fclose(f) != 0)
    return at_fail(e, AT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
  return AT_OK;
}

bool at_replay_lookup(const at_replay *t, const char *config, at_measured *out) {
  if (!t || !config)
    return false;
  int i = find_slot(t, config);
  if (!t->slot[i])
    return false;
  *out = t->rows[t->slot[i] - 1].m;
  return true;
}

int at_replay_count(const at_replay *t) { return t ? t->n : 0; }

void at_replay_free(at_replay *t) {
  if (!t)
    return;
  for (int i = 0; i < t->n; i++)
    free(t->rows[i].config);
  free(t->rows);
  free(t->slot);
  free(t);
}

int at_replay_measure(void *ctx, const at_space *s, const int *idx, int n, at_measured *out) {
  at_replay_ctx *c = ctx;
  c->calls++;
  for (int i = 0; i < n; i++) {
    const char *config = s->c[idx[i]].config;
    if (!at_replay_lookup(c->table, config, &out[i])) {
      c->missing++;
      snprintf(c->missing_config, sizeof c->missing_config, "%s", config);
      return 1;
    }
    c->answered++;
  }
  return 0;
}
