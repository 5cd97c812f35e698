/* kernels/problem.c — host side of `tilec run`: shape keys → buffers → references → verdict.
 *
 * Each built-in kernel has a setup function that reads its --shape keys, creates one buffer per
 * launch argument (matched to the specialized kernel's arguments by name, so a kernel edit that
 * renames an argument is an error here, not silent garbage) and a check function that runs the
 * double-precision reference of ref.c. Inputs are random normals rounded to the tensor's dtype;
 * the reference sees exactly those rounded values. Outputs start as NaN so an element the kernel
 * never wrote fails the check.
 */
#include "kernels/problem.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/fail.h"
#include "kernels/npy.h"
#include "kernels/ref.h"
#include "kernels/rng.h"

typedef struct {
  kn_problem *p;
  const ir_kernel *k;
  const kn_shape *shape;
  bool used[KN_MAX_KEYS];
  kn_rng rng;
  char *err;
  size_t cap;
} setup;

static const char *builtins[] = {"matmul", "attention", "bsattention", "bsmatmul"};

bool kn_is_builtin(const char *name) {
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
    if (strcmp(name, builtins[i]) == 0)
      return true;
  return false;
}

int kn_shape_parse(const char *spec, kn_shape *out, char *err, size_t errcap) {
  memset(out, 0, sizeof *out);
  const char *p = spec ? spec : "";
  while (*p) {
    size_t len = strcspn(p, ",");
    const char *eq = memchr(p, '=', len);
    if (!eq && out->n > 0) { /* "mask=causal,document:3+5": a comma inside a value */
      char *v = out->kv[out->n - 1].val;
      size_t vl = strlen(v);
      if (vl + 1 + len >= sizeof out->kv[0].val)
        return kn_fail(err, errcap, "--shape: value of '%s' is too long", out->kv[out->n - 1].key);
      v[vl] = ',';
      memcpy(v + vl + 1, p, len);
      v[vl + 1 + len] = 0;
    } else {
      if (!eq || eq == p)
        return kn_fail(err, errcap, "--shape: expected KEY=VALUE, got '%.*s'", (int)len, p);
      size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
      if (out->n >= KN_MAX_KEYS || klen >= sizeof out->kv[0].key || vlen >= sizeof out->kv[0].val ||
          vlen == 0)
        return kn_fail(err, errcap, "--shape: bad or too long item '%.*s'", (int)len, p);
      for (int i = 0; i < out->n; i++)
        if (strlen(out->kv[i].key) == klen && memcmp(out->kv[i].key, p, klen) == 0)
          return kn_fail(err, errcap, "--shape: key '%.*s' given twice", (int)klen, p);
      memcpy(out->kv[out->n].key, p, klen);
      memcpy(out->kv[out->n].val, eq + 1, vlen);
      out->n++;
    }
    p += len;
    if (*p == ',')
      p++;
  }
  return 0;
}

static const char *key(setup *s, const char *name) {
  for (int i = 0; i < s->shape->n; i++)
    if (strcmp(s->shape->kv[i].key, name) == 0) {
      s->used[i] = true;
      return s->shape->kv[i].val;
    }
  return NULL;
}

/* An integer key in [lo, hi]; def < 0 makes the key required. */
static int key_int(setup *s, const char *name, int64_t def, int64_t lo, int64_t hi, int64_t *out) {
  const char *v = key(s, name);
  if (!v) {
    if (def < 0)
      return kn_fail(s->err, s->cap, "--shape needs %s=<integer> for %s", name, s->p->kernel);
    *out = def;
    return 0;
  }
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno || *end || end == v || x < lo || x > hi)
    return kn_fail(s->err, s->cap, "--shape %s=%s: expected an integer in [%lld, %lld]", name, v,
                   (long long)lo, (long long)hi);
  *out = x;
  return 0;
}

static int key_double(setup *s, const char *name, double def, double *out) {
  const char *v = key(s, name);
  if (!v) {
    *out = def;
    return 0;
  }
  char *end;
  double x = strtod(v, &end);
  if (*end || end == v || !isfinite(x))
    return kn_fail(s->err, s->cap, "--shape %s=%s: expected a finite number", name, v);
  *out = x;
  return 0;
}

static int unused_keys(setup *s, const char *valid) {
  for (int i = 0; i < s->shape->n; i++)
    if (!s->used[i])
      return kn_fail(s->err, s->cap, "unknown --shape key '%s' for %s (keys: %s)",
                     s->shape->kv[i].key, s->p->kernel, valid);
  return 0;
}

static int argi(setup *s, const char *name, ir_arg_kind kind) {
  for (int i = 0; i < s->k->nargs; i++)
    if (strcmp(s->k->args[i].name, name) == 0 && s->k->args[i].kind == kind)
      return i;
  return kn_fail(s->err, s->cap, "kernel '%s' has no %s argument '%s'", s->k->name,
                 kind == ARG_TENSOR ? "tensor"
                 : kind == ARG_PTR  ? "pointer"
                                    : "scalar",
                 name);
}

static ir_kind arg_kind(const ir_kernel *k, int i) {
  const ir_type *t = k->args[i].value ? k->args[i].value->ty : NULL;
  if (!t)
    return k->syms[k->args[i].sym].ty;
  return t->elem->kind;
}

static size_t kind_bytes(ir_kind k) { return (size_t)ir_kind_bits(k) / 8; }

/* Creates the buffer of argument `name` with the given storage shape; the launch view is
 * contiguous unless the caller overrides args[i] afterwards. Inputs are filled with random
 * normals (scaled by amp) rounded to the dtype; outputs are poisoned. */
static kn_buf *buffer(setup *s, const char *name, ir_arg_kind kind, int rank, const int64_t *shape,
                      bool output, double amp) {
  kn_problem *p = s->p;
  int i = argi(s, name, kind);
  if (i < 0)
    return NULL;
  if (p->nbufs >= KN_MAX_BUFS) {
    kn_fail(s->err, s->cap, "too many buffers");
    return NULL;
  }
  kn_buf *b = &p->bufs[p->nbufs++];
  snprintf(b->name, sizeof b->name, "%s", name);
  b->kind = arg_kind(s->k, i);
  b->rank = rank;
  b->count = 1;
  for (int d = 0; d < rank; d++) {
    b->shape[d] = shape[d];
    b->count *= shape[d];
  }
  size_t n = (size_t)(b->count ? b->count : 1);
  b->data = calloc(n, kind_bytes(b->kind));
  b->exact = calloc(n, sizeof(double));
  if (!b->data || !b->exact) {
    kn_fail(s->err, s->cap, "out of memory for '%s' (%lld elements)", name, (long long)b->count);
    return NULL;
  }
  b->output = output;
  bool isf = ir_kind_is_float(b->kind);
  for (int64_t e = 0; e < b->count; e++) {
    double v = output ? (isf ? NAN : -1) : amp * kn_rng_normal(&s->rng);
    ir_buf_set(b->kind, b->data, e, v);
    b->exact[e] = ir_buf_get(b->kind, b->data, e);
  }
  ir_argval *a = &p->args[i];
  a->kind = kind;
  a->data = b->data;
  a->count = b->count;
  if (kind == ARG_TENSOR) {
    a->rank = rank;
    int64_t st = 1;
    for (int d = rank - 1; d >= 0; d--) {
      a->shape[d] = shape[d];
      a->stride[d] = st;
      st *= shape[d];
    }
  }
  return b;
}

/* An int32 index array argument holding n values. */
static kn_buf *indices(setup *s, const char *name, const int32_t *v, int64_t n) {
  int64_t shape[1] = {n};
  kn_buf *b = buffer(s, name, ARG_PTR, 1, shape, false, 0);
  if (!b)
    return NULL;
  if (b->kind != IR_I32) {
    kn_fail(s->err, s->cap, "argument '%s' must be ptr<i32>", name);
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) {
    ((int32_t *)b->data)[i] = v[i];
    b->exact[i] = v[i];
  }
  return b;
}

static int scalar(setup *s, const char *name, ir_num v) {
  int i = argi(s, name, ARG_SCALAR);
  if (i < 0)
    return -1;
  s->p->args[i].kind = ARG_SCALAR;
  s->p->args[i].scalar = v;
  return 0;
}

static int64_t tunable(const ir_kernel *k, const char *name) {
  int i = ir_sym_find(k, name, strlen(name));
  return i >= 0 ? k->syms[i].def.i : 0;
}

static double *ref_for(kn_problem *p, kn_buf *b) {
  p->ref_buf[p->nref] = (int)(b - p->bufs);
  p->ref[p->nref] = calloc((size_t)(b->count ? b->count : 1), sizeof(double));
  return p->ref[p->nref++];
}

/* ---- matmul --------------------------------------------------------------------------- */

static int setup_matmul(setup *s) {
  int64_t M, N, K, tb;
  if (key_int(s, "M", -1, 1, 1 << 20, &M) || key_int(s, "N", -1, 1, 1 << 20, &N) ||
      key_int(s, "K", -1, 1, 1 << 20, &K) || key_int(s, "transb", 0, 0, 1, &tb) ||
      unused_keys(s, "M, N, K, transb"))
    return -1;
  kn_buf *a = buffer(s, "A", ARG_TENSOR, 2, (int64_t[]){M, K}, false, 1);
  kn_buf *b =
      a ? buffer(s, "B", ARG_TENSOR, 2, tb ? (int64_t[]){N, K} : (int64_t[]){K, N}, false, 1)
        : NULL;
  kn_buf *c = b ? buffer(s, "C", ARG_TENSOR, 2, (int64_t[]){M, N}, true, 0) : NULL;
  if (!c)
    return -1;
  s->p->transb = tb != 0;
  if (tb) { /* B stored [N][K], seen by the kernel as [K, N] with strides (1, K) */
    ir_argval *v = &s->p->args[argi(s, "B", ARG_TENSOR)];
    v->shape[0] = K;
    v->shape[1] = N;
    v->stride[0] = 1;
    v->stride[1] = K;
  }
  s->p->flops = 2.0 * (double)M * (double)N * (double)K;
  snprintf(s->p->summary, sizeof s->p->summary, "M=%lld N=%lld K=%lld%s", (long long)M,
           (long long)N, (long long)K, tb ? " transb" : "");
  return 0;
}

static void ref_matmul(kn_problem *p) {
  kn_buf *a = &p->bufs[0], *b = &p->bufs[1], *c = &p->bufs[2];
  int64_t M = a->shape[0], K = a->shape[1], N = c->shape[1];
  double *r = ref_for(p, c);
  if (p->transb)
    kn_ref_matmul(M, N, K, a->exact, K, 1, b->exact, 1, K, r);
  else
    kn_ref_matmul(M, N, K, a->exact, K, 1, b->exact, N, 1, r);
}

/* ---- attention and bsattention ---------------------------------------------------------- */

typedef struct {
  int64_t B, H, HKV, S, SKV, D, causal;
  double scale;
} attn_shape;

static int attn_keys(setup *s, attn_shape *a, bool with_causal) {
  if (key_int(s, "B", 1, 1, 1 << 16, &a->B) || key_int(s, "H", -1, 1, 1 << 12, &a->H) ||
      key_int(s, "HKV", a->H, 1, 1 << 12, &a->HKV) || key_int(s, "S", -1, 1, 1 << 24, &a->S) ||
      key_int(s, "SKV", a->S, 1, 1 << 24, &a->SKV) || key_int(s, "D", 64, 64, 128, &a->D))
    return -1;
  a->causal = 0;
  if (with_causal && key_int(s, "causal", 0, 0, 1, &a->causal))
    return -1;
  if (a->H % a->HKV)
    return kn_fail(s->err, s->cap, "--shape: HKV=%lld must divide H=%lld", (long long)a->HKV,
                   (long long)a->H);
  if (a->D != 64 && a->D != 128)
    return kn_fail(s->err, s->cap, "--shape: D must be 64 or 128");
  return key_double(s, "scale", 1.0 / sqrt((double)a->D), &a->scale);
}

static int attn_buffers(setup *s, const attn_shape *a) {
  int64_t q[4] = {a->B, a->H, a->S, a->D}, kv[4] = {a->B, a->HKV, a->SKV, a->D};
  if (!buffer(s, "Q", ARG_TENSOR, 4, q, false, 1) || !buffer(s, "K", ARG_TENSOR, 4, kv, false, 1) ||
      !buffer(s, "V", ARG_TENSOR, 4, kv, false, 1) || !buffer(s, "O", ARG_TENSOR, 4, q, true, 0) ||
      !buffer(s, "LSE", ARG_TENSOR, 3, q, true, 0))
    return -1;
  s->p->scale = a->scale;
  return scalar(s, "scale", (ir_num){.isf = true, .f = a->scale});
}

static void attn_summary(kn_problem *p, const attn_shape *a, const char *extra) {
  snprintf(p->summary, sizeof p->summary, "B=%lld H=%lld HKV=%lld S=%lld SKV=%lld D=%lld%s",
           (long long)a->B, (long long)a->H, (long long)a->HKV, (long long)a->S, (long long)a->SKV,
           (long long)a->D, extra);
}

static int setup_attention(setup *s) {
  attn_shape a;
  if (attn_keys(s, &a, true) || unused_keys(s, "B, H, HKV, S, SKV, D, causal, scale") ||
      attn_buffers(s, &a))
    return -1;
  a.causal = tunable(s->k, "causal"); /* the kernel's bound value (--set or --shape) */
  s->p->mask.causal = a.causal != 0;
  double pairs = 0;
  for (int64_t q = 0; q < a.S; q++)
    pairs += a.causal ? (double)(q + 1 < a.SKV ? q + 1 : a.SKV) : (double)a.SKV;
  s->p->flops = 4.0 * (double)a.D * pairs * (double)(a.B * a.H);
  attn_summary(s->p, &a, a.causal ? " causal" : "");
  return 0;
}

/* Whether the mask spec names its random block size explicitly (random:P:BMxBN). */
static bool random_block_given(const char *spec) {
  const char *r = strstr(spec, "random:");
  return r && memchr(r + 7, ':', strcspn(r + 7, ",")) != NULL;
}

static int setup_bsattention(setup *s) {
  attn_shape a;
  int64_t block_unused;
  if (attn_keys(s, &a, false) || key_int(s, "block", 0, 0, 1 << 12, &block_unused))
    return -1;
  const char *spec = key(s, "mask");
  if (!spec)
    spec = "causal";
  if (unused_keys(s, "B, H, HKV, S, SKV, D, scale, mask, block") || attn_buffers(s, &a))
    return -1;
  kn_problem *p = s->p;
  int64_t bm = tunable(s->k, "BM"), bn = tunable(s->k, "BN");
  if (kn_mask_parse(spec, a.S, a.SKV, kn_rng_u64(&s->rng), &p->mask, s->err, s->cap))
    return -1;
  if (p->mask.density > 0) {
    if (!random_block_given(spec)) {
      p->mask.rblock_m = (int32_t)bm;
      p->mask.rblock_n = (int32_t)bn;
    } else if (p->mask.rblock_m % bm || p->mask.rblock_n % bn) {
      return kn_fail(s->err, s->cap,
                     "random mask blocks %dx%d must be multiples of the kernel blocks %lldx%lld",
                     p->mask.rblock_m, p->mask.rblock_n, (long long)bm, (long long)bn);
    }
  }
  if (kn_layout_build(&p->mask, (int32_t)a.B, (int32_t)a.H, a.S, a.SKV, (int32_t)bm, (int32_t)bn,
                      &p->layout, s->err, s->cap))
    return -1;
  kn_layout *l = &p->layout;
  int64_t rows = (int64_t)l->L * l->n_qblocks;
  int64_t n = (a.S > a.SKV ? a.S : a.SKV);
  int32_t *doc = calloc((size_t)n, sizeof *doc);
  if (!doc)
    return kn_fail(s->err, s->cap, "out of memory");
  for (int64_t i = 0; i < p->mask.ndoc_tokens && i < n; i++)
    doc[i] = p->mask.doc[i];
  bool ok = indices(s, "full_ptr", l->full_ptr, rows + 1) &&
            indices(s, "full_idx", l->full_idx, l->n_full ? l->n_full : 1) &&
            indices(s, "part_ptr", l->part_ptr, rows + 1) &&
            indices(s, "part_idx", l->part_idx, l->n_part ? l->n_part : 1) &&
            indices(s, "doc", doc, n);
  free(doc);
  if (!ok || scalar(s, "lrow_mul", (ir_num){.i = l->L == 1 ? 0 : 1}) ||
      scalar(s, "causal", (ir_num){.i = p->mask.causal}) ||
      scalar(s, "window", (ir_num){.i = p->mask.window}) ||
      scalar(s, "prefix", (ir_num){.i = p->mask.prefix}))
    return -1;
  /* useful work: the visible (q, k) pairs; counted exactly for small problems, else the
   * pairs of the blocks the layout visits */
  double pairs = 0;
  if ((double)a.B * (double)a.H * (double)a.S * (double)a.SKV <= 5e7) {
    for (int b = 0; b < a.B; b++)
      for (int h = 0; h < a.H; h++)
        for (int64_t q = 0; q < a.S; q++)
          for (int64_t k = 0; k < a.SKV; k++)
            pairs += kn_mask_visible(&p->mask, b, h, q, k);
  } else {
    pairs = (double)(l->n_full + l->n_part) * (double)(bm * bn) * (double)(a.B * a.H) / l->L;
  }
  p->flops = 4.0 * (double)a.D * pairs;
  char extra[160];
  snprintf(extra, sizeof extra, " mask=%s blocks=%lldx%lld full=%lld partial=%lld", spec,
           (long long)bm, (long long)bn, (long long)l->n_full, (long long)l->n_part);
  attn_summary(p, &a, extra);
  return 0;
}

static int ref_attention(kn_problem *p, char *err, size_t cap) {
  kn_buf *q = &p->bufs[0], *k = &p->bufs[1], *v = &p->bufs[2], *o = &p->bufs[3], *lse = &p->bufs[4];
  double *ro = ref_for(p, o), *rl = ref_for(p, lse);
  if (!ro || !rl)
    return kn_fail(err, cap, "out of memory");
  return kn_ref_attention(q->shape[0], q->shape[1], k->shape[1], q->shape[2], k->shape[2],
                          q->shape[3], q->exact, k->exact, v->exact, p->scale, &p->mask, ro, rl,
                          err, cap);
}

/* ---- bsmatmul ------------------------------------------------------------------------- */

static int setup_bsmatmul(setup *s) {
  int64_t M, N, K, block;
  double density;
  if (key_int(s, "M", -1, 1, 1 << 20, &M) || key_int(s, "N", -1, 1, 1 << 20, &N) ||
      key_int(s, "K", -1, 1, 1 << 20, &K) || key_int(s, "block", 32, 16, 128, &block) ||
      key_double(s, "density", 0.25, &density) || unused_keys(s, "M, N, K, block, density"))
    return -1;
  if (!(density > 0 && density <= 1))
    return kn_fail(s->err, s->cap, "--shape: density must be in (0, 1]");
  kn_problem *p = s->p;
  if (kn_bsr_random(N, K, (int32_t)block, density, kn_rng_u64(&s->rng), &p->bsr, s->err, s->cap))
    return -1;
  kn_bsr *w = &p->bsr;
  if (!buffer(s, "X", ARG_TENSOR, 2, (int64_t[]){M, K}, false, 1))
    return -1;
  kn_buf *wb =
      buffer(s, "W", ARG_TENSOR, 3, (int64_t[]){w->nnzb ? w->nnzb : 1, block, block}, false, 0);
  if (!wb)
    return -1;
  for (int64_t e = 0; e < (int64_t)w->nnzb * block * block; e++) {
    ir_buf_set(wb->kind, wb->data, e, w->values[e]);
    w->values[e] = wb->exact[e] = ir_buf_get(wb->kind, wb->data, e);
  }
  if (!indices(s, "row_ptr", w->row_ptr, w->nbrows + 1) ||
      !indices(s, "col_idx", w->col_idx, w->nnzb ? w->nnzb : 1) ||
      !buffer(s, "Y", ARG_TENSOR, 2, (int64_t[]){M, N}, true, 0))
    return -1;
  p->w_dense = calloc((size_t)(N * K), sizeof(double));
  if (!p->w_dense)
    return kn_fail(s->err, s->cap, "out of memory");
  kn_bsr_to_dense(w, p->w_dense);
  p->flops = 2.0 * (double)M * (double)w->nnzb * (double)(block * block);
  snprintf(p->summary, sizeof p->summary, "M=%lld N=%lld K=%lld block=%lld density=%g nnzb=%d",
           (long long)M, (long long)N, (long long)K, (long long)block, density, w->nnzb);
  return 0;
}

static void ref_bsmatmul(kn_problem *p) {
  kn_buf *x = &p->bufs[0], *y = &p->bufs[p->nbufs - 1];
  double *r = ref_for(p, y);
  kn_ref_bsmatmul(x->shape[0], y->shape[1], x->shape[1], x->exact, p->w_dense, r);
}

/* ---- generic kernels (files) -------------------------------------------------------------- */

static int setup_generic(setup *s) {
  const ir_kernel *k = s->k;
  for (int i = 0; i < k->nsyms; i++) { /* const keys bound the specialization (kn_file_config) */
    const ir_sym *sym = &k->syms[i];
    const char *txt = sym->kind == SYM_CONST ? key(s, sym->name) : NULL;
    if (txt && !sym->def.isf && strtoll(txt, NULL, 10) != sym->def.i)
      return kn_fail(s->err, s->cap, "--shape %s=%s, but the kernel was specialized with %s=%lld",
                     sym->name, txt, sym->name, (long long)sym->def.i);
  }
  for (int i = 0; i < k->nargs; i++) {
    const ir_arg *a = &k->args[i];
    if (a->kind == ARG_PTR)
      return kn_fail(s->err, s->cap,
                     "pointer argument '%s' needs a built-in problem; tilec run can only create "
                     "tensors and scalars for kernels from files",
                     a->name);
    if (a->kind == ARG_SCALAR) {
      const ir_sym *sym = &k->syms[a->sym];
      ir_num v = sym->def;
      if (sym->kind == SYM_PARAM) {
        const char *txt = key(s, sym->name);
        if (!txt)
          return kn_fail(s->err, s->cap, "--shape needs a value for parameter '%s'", sym->name);
        char *end;
        v.isf = ir_kind_is_float(sym->ty);
        if (v.isf)
          v.f = strtod(txt, &end);
        else
          v.i = strtoll(txt, &end, 10);
        if (*end || end == txt)
          return kn_fail(s->err, s->cap, "--shape %s=%s is not a number", sym->name, txt);
      }
      s->p->args[i].kind = ARG_SCALAR;
      s->p->args[i].scalar = v;
      continue;
    }
    const ir_type *t = a->value->ty;
    int64_t shape[IR_MAX_RANK];
    for (int d = 0; d < t->rank; d++) {
      if (t->dims[d]->kind == EX_INT) {
        shape[d] = t->dims[d]->i;
        continue;
      }
      const ir_sym *sym = &k->syms[t->dims[d]->sym];
      if (sym->kind == SYM_CONST) {
        shape[d] = sym->def.i;
        continue;
      }
      if (key_int(s, sym->name, -1, 1, 1 << 30, &shape[d]))
        return -1;
    }
    if (!buffer(s, a->name, ARG_TENSOR, t->rank, shape, a->dir != ARG_IN, 1))
      return -1;
    if (a->dir == ARG_INOUT) { /* inout tensors start from random values too */
      kn_buf *b = &s->p->bufs[s->p->nbufs - 1];
      for (int64_t e = 0; e < b->count; e++) {
        ir_buf_set(b->kind, b->data, e, kn_rng_normal(&s->rng));
        b->exact[e] = ir_buf_get(b->kind, b->data, e);
      }
    }
  }
  for (int i = 0; i < s->shape->n; i++)
    if (!s->used[i])
      return kn_fail(s->err, s->cap, "--shape key '%s' is not a dim or parameter of '%s'",
                     s->shape->kv[i].key, k->name);
  snprintf(s->p->summary, sizeof s->p->summary, "%s", "generic problem");
  return 0;
}

/* ---- public entry points ---------------------------------------------------------------- */

static int add_item(ir_config *cfg, const char *name, ir_num v, ir_kind kind) {
  for (int i = 0; i < cfg->n; i++)
    if (strcmp(cfg->items[i].name, name) == 0)
      return 0; /* the user's --set wins */
  if (cfg->n >= IR_MAX_SYMS)
    return -1;
  ir_config_item *it = &cfg->items[cfg->n++];
  memset(it, 0, sizeof *it);
  snprintf(it->name, sizeof it->name, "%s", name);
  it->value = v;
  it->kind = kind;
  return 0;
}

int kn_file_dtype(const ir_kernel *k, const char *dtype, ir_config *cfg, char *err, size_t errcap) {
  if (k->ntvars == 0)
    return kn_fail(err, errcap, "kernel '%s' has no type variable for dtype %s", k->name, dtype);
  ir_kind kd = ir_kind_from_name(dtype, strlen(dtype));
  if (kd == IR_VOID)
    return kn_fail(err, errcap, "dtype '%s' is not a scalar type", dtype);
  if (add_item(cfg, k->tvars[0].name, (ir_num){0}, kd))
    return kn_fail(err, errcap, "too many settings");
  return 0;
}

int kn_file_config(const ir_kernel *k, const kn_shape *shape, const char *dtype, ir_config *cfg,
                   char *err, size_t errcap) {
  for (int i = 0; shape && i < shape->n; i++) {
    const char *name = shape->kv[i].key, *txt = shape->kv[i].val;
    int sym = ir_sym_find(k, name, strlen(name));
    if (sym < 0 || k->syms[sym].kind != SYM_CONST)
      continue;
    char *end;
    ir_num v = {.isf = ir_kind_is_float(k->syms[sym].ty)};
    if (v.isf)
      v.f = strtod(txt, &end);
    else
      v.i = strtoll(txt, &end, 10);
    if (end == txt || *end)
      return kn_fail(err, errcap, "shape key '%s': '%s' is not a number", name, txt);
    if (add_item(cfg, name, v, IR_VOID))
      return kn_fail(err, errcap, "too many settings");
  }
  return dtype ? kn_file_dtype(k, dtype, cfg, err, errcap) : 0;
}

int kn_problem_config(const char *kernel, const kn_shape *shape, const char *dtype, ir_config *cfg,
                      char *err, size_t errcap) {
  ir_kind dt = IR_VOID;
  if (dtype) {
    dt = ir_kind_from_name(dtype, strlen(dtype));
    if (dt != IR_BF16 && dt != IR_F16)
      return kn_fail(err, errcap, "--dtype %s: built-in kernels take bf16 or f16", dtype);
  }
  kn_problem tmp = {0};
  setup s = {.p = &tmp, .shape = shape, .err = err, .cap = errcap};
  snprintf(tmp.kernel, sizeof tmp.kernel, "%s", kernel);
  int64_t v;
  if (strcmp(kernel, "matmul") == 0) {
    if (dt && (add_item(cfg, "TA", (ir_num){0}, dt) || add_item(cfg, "TC", (ir_num){0}, dt)))
      return kn_fail(err, errcap, "too many settings");
    return 0;
  }
  if (strcmp(kernel, "bsmatmul") == 0) {
    if (key_int(&s, "block", 32, 16, 128, &v) || add_item(cfg, "BS", (ir_num){.i = v}, 0) ||
        (dt && (add_item(cfg, "T", (ir_num){0}, dt) || add_item(cfg, "TC", (ir_num){0}, dt))))
      return -1;
    return 0;
  }
  if (strcmp(kernel, "attention") == 0 || strcmp(kernel, "bsattention") == 0) {
    if (key_int(&s, "D", 64, 64, 128, &v) || add_item(cfg, "D", (ir_num){.i = v}, 0) ||
        (dt && add_item(cfg, "T", (ir_num){0}, dt)))
      return -1;
    if (kernel[0] == 'a' &&
        (key_int(&s, "causal", 0, 0, 1, &v) || add_item(cfg, "causal", (ir_num){.i = v}, 0)))
      return -1;
    if (kernel[0] == 'b' && key_int(&s, "block", 0, 0, 128, &v) == 0 && v > 0 &&
        add_item(cfg, "BN", (ir_num){.i = v}, 0))
      return -1;
    return 0;
  }
  if (dt)
    return kn_fail(err, errcap,
                   "--dtype applies to built-in kernels; set a file kernel's type "
                   "variables with --set NAME=%s",
                   dtype);
  return 0;
}

int kn_problem_build(kn_problem *p, const char *kernel, const ir_kernel *k, const kn_shape *shape,
                     uint64_t seed, char *err, size_t errcap) {
  memset(p, 0, sizeof *p);
  snprintf(p->kernel, sizeof p->kernel, "%s", kernel);
  p->builtin = kn_is_builtin(kernel);
  p->nargs = k->nargs;
  setup s = {.p = p, .k = k, .shape = shape, .err = err, .cap = errcap};
  kn_rng_seed(&s.rng, seed);
  for (int i = 0; i < k->nargs; i++) /* const parameters carry their bound value */
    if (k->args[i].kind == ARG_SCALAR) {
      p->args[i].kind = ARG_SCALAR;
      p->args[i].scalar = k->syms[k->args[i].sym].def;
    }
  if (strcmp(kernel, "matmul") == 0)
    return setup_matmul(&s);
  if (strcmp(kernel, "attention") == 0)
    return setup_attention(&s);
  if (strcmp(kernel, "bsattention") == 0)
    return setup_bsattention(&s);
  if (strcmp(kernel, "bsmatmul") == 0)
    return setup_bsmatmul(&s);
  return setup_generic(&s);
}

static void readback(kn_problem *p) {
  for (int i = 0; i < p->nbufs; i++)
    if (p->bufs[i].output)
      for (int64_t e = 0; e < p->bufs[i].count; e++)
        p->bufs[i].exact[e] = ir_buf_get(p->bufs[i].kind, p->bufs[i].data, e);
}

static int mantissa_bits(ir_kind k) {
  switch (k) {
  case IR_BF16:
    return 7;
  case IR_F16:
    return 10;
  case IR_F8E4M3:
    return 3;
  case IR_F8E5M2:
    return 2;
  case IR_F64:
    return 52;
  default:
    return 23;
  }
}

int kn_problem_check(kn_problem *p, char *err, size_t errcap) {
  if (!p->builtin)
    return kn_fail(err, errcap, "--check needs a built-in kernel (its reference lives in C)");
  readback(p);
  if (p->nref == 0) {
    if (strcmp(p->kernel, "matmul") == 0)
      ref_matmul(p);
    else if (strcmp(p->kernel, "bsmatmul") == 0)
      ref_bsmatmul(p);
    else if (ref_attention(p, err, errcap))
      return -1;
  }
  p->nchecks = 0;
  for (int i = 0; i < p->nref; i++) {
    kn_buf *b = &p->bufs[p->ref_buf[i]];
    if (!p->ref[i])
      return kn_fail(err, errcap, "out of memory");
    kn_output_check *c = &p->checks[p->nchecks++];
    memcpy(c->name, b->name, sizeof c->name);
    kn_compare(b->exact, p->ref[i], b->count, kn_tolerance(mantissa_bits(b->kind)), &c->r);
  }
  return 0;
}

static int save_f64(const char *dir, const char *name, const double *v, int rank,
                    const int64_t *shape, char *err, size_t cap) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.npy", dir, name);
  return kn_npy_write_f64_as_f32(path, v, rank, shape, err, cap);
}

/* mkdir -p */
static int make_dirs(const char *dir, char *err, size_t errcap) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
    return kn_fail(err, errcap, "path too long: %s", dir);
  for (char *c = path + 1;; c++) {
    if (*c != '/' && *c)
      continue;
    char saved = *c;
    *c = 0;
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
      return kn_fail(err, errcap, "cannot create %s: %s", path, strerror(errno));
    if (!saved)
      return 0;
    *c = saved;
  }
}

int kn_problem_save(const kn_problem *p, const char *dir, const char *config_json, char *err,
                    size_t errcap) {
  if (make_dirs(dir, err, errcap))
    return -1;
  readback((kn_problem *)p);
  char path[4096];
  snprintf(path, sizeof path, "%s/problem.json", dir);
  FILE *f = fopen(path, "w");
  if (!f)
    return kn_fail(err, errcap, "cannot write %s: %s", path, strerror(errno));
  fprintf(f, "{\n  \"kernel\": \"%s\",\n  \"problem\": \"%s\",\n  \"config\": %s,\n  \"args\": [",
          p->kernel, p->summary, config_json ? config_json : "{}");
  int rc = 0;
  for (int i = 0; i < p->nbufs && !rc; i++) {
    const kn_buf *b = &p->bufs[i];
    fprintf(f, "%s\n    {\"name\": \"%s\", \"dtype\": \"%s\", \"output\": %s, \"shape\": [",
            i ? "," : "", b->name, ir_kind_name(b->kind), b->output ? "true" : "false");
    for (int d = 0; d < b->rank; d++)
      fprintf(f, "%s%lld", d ? ", " : "", (long long)b->shape[d]);
    fprintf(f, "], \"file\": \"%s.npy\"}", b->name);
    if (b->kind == IR_I32) {
      snprintf(path, sizeof path, "%s/%s.npy", dir, b->name);
      rc = kn_npy_write_i32(path, b->data, b->rank, b->shape, err, errcap);
    } else {
      rc = save_f64(dir, b->name, b->exact, b->rank, b->shape, err, errcap);
    }
  }
  if (!rc && p->w_dense) {
    int64_t shape[2] = {p->bsr.N, p->bsr.K};
    fprintf(f,
            ",\n    {\"name\": \"W_dense\", \"dtype\": \"f32\", \"output\": false, "
            "\"shape\": [%lld, %lld], \"file\": \"W_dense.npy\"}",
            (long long)shape[0], (long long)shape[1]);
    rc = save_f64(dir, "W_dense", p->w_dense, 2, shape, err, errcap);
  }
  fprintf(f, "\n  ]\n}\n");
  if (fclose(f) != 0 && !rc)
    rc = kn_fail(err, errcap, "cannot write %s/problem.json: %s", dir, strerror(errno));
  return rc;
}

void kn_problem_free(kn_problem *p) {
  if (!p)
    return;
  for (int i = 0; i < p->nbufs; i++) {
    free(p->bufs[i].data);
    free(p->bufs[i].exact);
  }
  for (int i = 0; i < p->nref; i++)
    free(p->ref[i]);
  free(p->w_dense);
  kn_mask_free(&p->mask);
  kn_layout_free(&p->layout);
  kn_bsr_free(&p->bsr);
  memset(p, 0, sizeof *p);
}
