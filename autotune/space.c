/* autotune/space.c — device defaults and the enumeration of a kernel's search space (space.h).
 *
 * The enumeration never specializes: for each point it binds the tunables in a copy of the
 * model's symbol values, evaluates the kernel's constraint expressions (ir_expr_eval) and the
 * model's analytic checks, and asks the model for a prior. The matmul space (8000 points) builds
 * in a few milliseconds (docs/tuning-search.md has the measurement).
 */
#include "autotune/space.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/model.h"

/* ---- devices -------------------------------------------------------------------------------- */

static const at_device devices[] = {
    /* A100 SXM 80 GB: 164 KiB shared per SM, 163 KiB opt-in per block */
    {"sm_80", 108, 166912, 167936, 65536, 2048, 312.0, 2039.0},
    /* RTX 3090: 100 KiB per SM, 99 KiB per block, 1536 threads; mma f32-accumulate peak */
    {"sm_86", 82, 101376, 102400, 65536, 1536, 71.0, 936.0},
    /* L40S: as sm_86 for shared memory and threads */
    {"sm_89", 142, 101376, 102400, 65536, 1536, 362.0, 864.0},
    /* H200: 228 KiB per SM, 227 KiB per block; mma.sync reaches about 2/3 of the wgmma peak */
    {"sm_90", 132, 232448, 233472, 65536, 2048, 660.0, 4800.0},
    {"sm_90a", 132, 232448, 233472, 65536, 2048, 660.0, 4800.0},
};

at_status at_device_for_arch(const char *arch, at_device *out, at_err *e) {
  if (!out)
    return at_fail(e, AT_ERR_ARG, "at_device_for_arch: no output");
  for (size_t i = 0; arch && i < sizeof devices / sizeof *devices; i++)
    if (strcmp(arch, devices[i].arch) == 0) {
      *out = devices[i];
      return AT_OK;
    }
  return at_fail(e, AT_ERR_ARG, "unknown arch '%s' (known: sm_80 sm_86 sm_89 sm_90 sm_90a)",
                 arch ? arch : "(null)");
}

/* ---- building ------------------------------------------------------------------------------- */

typedef struct builder {
  const ir_kernel *k;
  at_space *s;
  int sym[AT_MAX_TUN]; /* symbol index of each free tunable */
  ir_num vals[IR_MAX_SYMS];
  bool set[IR_MAX_SYMS];
  char (*ctext)[120]; /* each constraint as written */
} builder;

/* Checks fixed against k; binds pinned tunables and marks them not free. */
static at_status check_fixed(const ir_kernel *k, const ir_config *fixed, bool *pinned, at_err *e) {
  for (int i = 0; fixed && i < fixed->n; i++) {
    const ir_config_item *it = &fixed->items[i];
    size_t len = strlen(it->name);
    if (ir_tvar_find(k, it->name, len) >= 0 && it->kind != IR_VOID)
      continue;
    int s = ir_sym_find(k, it->name, len);
    if (s < 0 || it->kind != IR_VOID ||
        (k->syms[s].kind != SYM_TUNABLE && k->syms[s].kind != SYM_CONST))
      return at_fail(e, AT_ERR_ARG,
                     "'%s' is not a tunable, const parameter or type variable of '%s'", it->name,
                     k->name);
    if (k->syms[s].kind != SYM_TUNABLE)
      continue;
    bool in = false;
    for (int j = 0; j < k->syms[s].ndomain; j++)
      in |= !it->value.isf && k->syms[s].domain[j] == it->value.i;
    if (!in)
      return at_fail(e, AT_ERR_ARG, "%s=%lld is not in the domain of '%s'", it->name,
                     (long long)it->value.i, it->name);
    pinned[s] = true;
  }
  return AT_OK;
}

/* The decimal digits of v into out (no NUL); returns their count (at most 20). */
static size_t decimal(int64_t v, char *out) {
  char tmp[24];
  size_t n = 0, len = 0;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do
    tmp[n++] = (char)('0' + u % 10);
  while (u /= 10);
  if (v < 0)
    out[len++] = '-';
  while (n)
    out[len++] = tmp[--n];
  return len;
}

/* The point's canonical text "A=1,B=2" (what snprintf's "%s=%lld" would print, written by hand:
 * it runs for every point of the space); false when it does not fit. */
static bool config_text(const at_space *s, const int64_t *v, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = 0;
  for (int t = 0; t < s->ntun; t++) {
    char num[24];
    size_t ln = strlen(s->names[t]), nd = decimal(v[t], num);
    if (n + (t > 0) + ln + 1 + nd >= cap)
      return false;
    if (t)
      buf[n++] = ',';
    memcpy(buf + n, s->names[t], ln);
    n += ln;
    buf[n++] = '=';
    memcpy(buf + n, num, nd);
    n += nd;
    buf[n] = 0;
  }
  return true;
}

/* Checks the kernel's constraints for the bound values; false with the reason. */
static bool constraints_hold(builder *b, char *why, size_t cap) {
  for (int i = 0; i < b->k->nconstraints; i++) {
    ir_num r;
    ir_diag d;
    if (ir_expr_eval(b->k, b->k->constraints[i], b->vals, b->set, &r, &d) != IR_OK) {
      snprintf(why, cap, "constraint '%s' cannot be evaluated", b->ctext[i]);
      return false;
    }
    if (r.isf ? r.f == 0 : r.i == 0) {
      snprintf(why, cap, "constraint '%s'", b->ctext[i]);
      return false;
    }
  }
  return true;
}

static at_status enumerate(builder *b, const at_model *m, at_err *e) {
  at_space *s = b->s;
  int64_t pos[AT_MAX_TUN] = {0};
  for (int i = 0; i < s->n; i++) {
    at_cand *c = &s->c[i];
    for (int t = 0; t < s->ntun; t++) {
      c->v[t] = s->domain[t][pos[t]];
      b->vals[b->sym[t]] = (ir_num){.i = c->v[t]};
    }
    if (!config_text(s, c->v, c->config, sizeof c->config))
      return at_fail(e, AT_ERR_ARG, "config text of point %d is longer than %zu bytes", i,
                     sizeof c->config - 1);
    c->prior_ms = NAN;
    c->pruned = !constraints_hold(b, c->why, sizeof c->why) ||
                !at_model_check(m, b->vals, c->why, sizeof c->why);
    if (!c->pruned) {
      c->prior_ms = at_model_estimate(m, b->vals);
      s->nlive++;
    }
    for (int t = s->ntun - 1; t >= 0; t--) { /* odometer: the last tunable varies fastest */
      if (++pos[t] < s->ndomain[t])
        break;
      pos[t] = 0;
    }
  }
  return AT_OK;
}

at_status at_space_build(const ir_kernel *k, const ir_config *fixed, const kn_shape *shape,
                         const at_device *dev, at_space *out, at_err *e) {
  if (!out)
    return at_fail(e, AT_ERR_ARG, "at_space_build: no output");
  memset(out, 0, sizeof *out);
  if (!k || !dev)
    return at_fail(e, AT_ERR_ARG, "at_space_build: no kernel or device");
  bool pinned[IR_MAX_SYMS] = {false};
  at_status st = check_fixed(k, fixed, pinned, e);
  if (st)
    return st;
  builder b = {.k = k, .s = out};
  int64_t n = 1;
  for (int i = 0; i < k->nsyms; i++) {
    const ir_sym *sy = &k->syms[i];
    if (sy->kind != SYM_TUNABLE || pinned[i])
      continue;
    if (out->ntun == AT_MAX_TUN)
      return at_fail(e, AT_ERR_ARG, "'%s' has more than %d free tunables; pin some with --set",
                     k->name, AT_MAX_TUN);
    int t = out->ntun++;
    b.sym[t] = i;
    snprintf(out->names[t], sizeof out->names[t], "%s", sy->name);
    out->ndomain[t] = sy->ndomain;
    memcpy(out->domain[t], sy->domain, sizeof(int64_t) * (size_t)sy->ndomain);
    n *= sy->ndomain;
    if (n > AT_MAX_POINTS) {
      memset(out, 0, sizeof *out);
      return at_fail(e, AT_ERR_ARG,
                     "the space of '%s' has more than %d points; pin some with --set", k->name,
                     AT_MAX_POINTS);
    }
  }
  at_model *m = NULL;
  if ((st = at_model_new(k, fixed, shape, dev, &m, e)))
    goto fail;
  snprintf(out->model, sizeof out->model, "%s", at_model_kind_name(at_model_which(m)));
  memcpy(b.vals, at_model_values(m), sizeof b.vals);
  memcpy(b.set, at_model_set(m), sizeof b.set);
  for (int i = 0; i < k->nsyms; i++)
    if (k->syms[i].kind == SYM_CONST && !b.set[i]) {
      st = at_fail(e, AT_ERR_ARG, "const parameter '%s' of '%s' needs a value", k->syms[i].name,
                   k->name);
      goto fail;
    }
  out->n = (int)n;
  out->c = calloc((size_t)n, sizeof *out->c);
  b.ctext = calloc((size_t)k->nconstraints + 1, sizeof *b.ctext);
  if (!out->c || !b.ctext) {
    st = at_fail(e, AT_ERR_OOM, "out of memory for %lld candidates", (long long)n);
    goto fail;
  }
  for (int i = 0; i < k->nconstraints; i++)
    ir_expr_print(k, k->constraints[i], b.ctext[i], sizeof b.ctext[i]);
  if ((st = enumerate(&b, m, e)))
    goto fail;
  free(b.ctext);
  at_model_free(m);
  return AT_OK;
fail:
  free(b.ctext);
  at_model_free(m);
  at_space_free(out);
  return st;
}

void at_space_config(const at_space *s, int i, const ir_config *fixed, ir_config *out) {
  memset(out, 0, sizeof *out);
  int room = IR_MAX_SYMS - s->ntun;
  for (int j = 0; fixed && j < fixed->n && out->n < room; j++)
    out->items[out->n++] = fixed->items[j];
  for (int t = 0; t < s->ntun; t++) {
    ir_config_item *it = &out->items[out->n++];
    snprintf(it->name, sizeof it->name, "%s", s->names[t]);
    it->value = (ir_num){.i = s->c[i].v[t]};
    it->kind = IR_VOID;
  }
}

int at_space_find(const at_space *s, const char *config) {
  if (!s || !config || s->n == 0)
    return -1;
  int pos[AT_MAX_TUN];
  for (int t = 0; t < s->ntun; t++)
    pos[t] = -1;
  const char *p = config;
  while (*p) {
    while (isspace((unsigned char)*p))
      p++;
    size_t len = strcspn(p, "=, ");
    int t = 0;
    while (t < s->ntun && (strlen(s->names[t]) != len || memcmp(s->names[t], p, len) != 0))
      t++;
    p += len;
    while (isspace((unsigned char)*p))
      p++;
    if (t == s->ntun || pos[t] >= 0 || *p++ != '=')
      return -1;
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (end == p || errno)
      return -1;
    for (int j = 0; j < s->ndomain[t] && pos[t] < 0; j++)
      if (s->domain[t][j] == v)
        pos[t] = j;
    if (pos[t] < 0)
      return -1;
    p = end;
    while (isspace((unsigned char)*p))
      p++;
    if (*p && *p++ != ',')
      return -1;
  }
  int64_t idx = 0;
  for (int t = 0; t < s->ntun; t++) {
    if (pos[t] < 0)
      return -1;
    idx = idx * s->ndomain[t] + pos[t];
  }
  return (int)idx;
}

void at_space_free(at_space *s) {
  if (!s)
    return;
  free(s->c);
  memset(s, 0, sizeof *s);
}
