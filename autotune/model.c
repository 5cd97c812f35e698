/* autotune/model.c — analytic checks and the roofline/occupancy prior (see model.h).
 *
 * at_model_new walks the kernel body once: every dot with its operand tiles (traced back through
 * trans/cast/convert_layout/reshape to the load that produced them, to know whether the operand
 * streams through the dot's loop), every load, and the loops around them. The per-config calls
 * then only evaluate tile-dim expressions with the config's symbol values.
 *
 * The prior is a plain model, not a simulator: a CTA's time is its tensor-core flops at the
 * share of lanes its warp tile keeps busy and the warps resident per SM (or the shared-memory
 * reads of its warps' operand fragments, when slower), plus the exposed load latency the
 * pipeline depth does not hide; waves over the SMs come from the occupancy (threads, estimated
 * shared memory, estimated registers); memory time comes from the operand bytes fetched from L2
 * and the DRAM bytes after the L2 reuse of the CTAs in flight (GROUP_M for matmul); the kernel
 * time is the larger of compute and memory plus a part of the smaller. Its constants are round
 * numbers, not fitted to a GPU: it ranks configs, the measurements decide.
 */
#include "autotune/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/space.h"

enum { MAX_DOTS = 16, MAX_LOADS = 64 };

/* Round constants of the model (docs/tuning-search.md). */
#define LOAD_LATENCY_S 0.7e-6 /* global load latency a pipeline stage must hide */
#define LAUNCH_S 4e-6         /* launch and tail of one kernel */
#define VEC_RATIO 16.0        /* tensor-core peak / fp32 vector peak */
#define UNKNOWN_DIM 1024      /* a dim the problem does not give */
#define SMEM_FLOP_PER_BYTE 20 /* tensor-core flops per byte of shared-memory bandwidth, per SM */
#define L2_OVER_DRAM 3.0      /* L2 bandwidth / DRAM bandwidth */

typedef struct dot_info {
  const ir_op *op;
  const ir_type *a, *b, *c; /* operand and accumulator types */
  bool a_pipe, b_pipe;      /* the operand is loaded inside the dot's own loop */
  const ir_op *loop;        /* innermost enclosing for, or NULL */
} dot_info;

typedef struct load_info {
  const ir_type *t;
  const ir_op *loop;
} load_info;

struct at_model {
  const ir_kernel *k;
  const at_device *dev;
  at_model_kind kind;
  ir_num vals[IR_MAX_SYMS];
  bool set[IR_MAX_SYMS];
  ir_kind tv[IR_MAX_SYMS]; /* bound type variables */
  dot_info dots[MAX_DOTS];
  int ndots;
  load_info loads[MAX_LOADS];
  int nloads;
  int s_warps, s_stages; /* symbol indices or -1 */
  double density;        /* bsmatmul density=, bsattention share of visible blocks */
  bool bs_causal;        /* bsattention: the mask is causal */
  int64_t bs_window;     /* bsattention: sliding window (0: none) */
};

const char *at_model_kind_name(at_model_kind k) {
  static const char *const names[] = {"generic", "matmul", "attention", "bsattention", "bsmatmul"};
  return (unsigned)k < sizeof names / sizeof *names ? names[k] : "unknown";
}

at_model_kind at_model_which(const at_model *m) { return m->kind; }
const ir_num *at_model_values(const at_model *m) { return m->vals; }
const bool *at_model_set(const at_model *m) { return m->set; }

/* ---- analysis of the kernel -------------------------------------------------------------- */

static const ir_op *enclosing_loop(const ir_op *op) {
  for (const ir_block *b = op->parent; b && b->parent; b = b->parent->parent)
    if (b->parent->code == IR_OP_FOR)
      return b->parent;
  return NULL;
}

/* The load an operand comes from (through layout-only and element-wise conversions), or NULL. */
static const ir_op *source_load(const ir_value *v) {
  for (int hops = 0; v && v->def && hops < 8; hops++) {
    const ir_op *d = v->def;
    if (d->code == IR_OP_LOAD || d->code == IR_OP_LOAD_PTR)
      return d;
    if (d->code != IR_OP_TRANS && d->code != IR_OP_CAST && d->code != IR_OP_CONVERT &&
        d->code != IR_OP_RESHAPE)
      return NULL;
    v = d->operands[0];
  }
  return NULL;
}

static void walk(at_model *m, const ir_block *b) {
  for (const ir_op *op = b ? b->first : NULL; op; op = op->next) {
    if (op->code == IR_OP_DOT && m->ndots < MAX_DOTS && op->nopnd == 3) {
      dot_info *d = &m->dots[m->ndots++];
      d->op = op;
      d->a = op->operands[0]->ty;
      d->b = op->operands[1]->ty;
      d->c = op->results[0]->ty;
      d->loop = enclosing_loop(op);
      const ir_op *la = source_load(op->operands[0]), *lb = source_load(op->operands[1]);
      d->a_pipe = la && d->loop && enclosing_loop(la) == d->loop;
      d->b_pipe = lb && d->loop && enclosing_loop(lb) == d->loop;
    }
    if ((op->code == IR_OP_LOAD || op->code == IR_OP_LOAD_PTR) && op->nres == 1 &&
        op->results[0]->ty->kind == IR_TILE && m->nloads < MAX_LOADS)
      m->loads[m->nloads++] = (load_info){op->results[0]->ty, enclosing_loop(op)};
    for (int r = 0; r < op->nregions; r++)
      walk(m, op->regions[r]);
    if (op == b->last)
      break;
  }
}

static int sym(const at_model *m, const char *name) {
  return ir_sym_find(m->k, name, strlen(name));
}

static bool has_syms(const at_model *m, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (sym(m, names[i]) < 0)
      return false;
  return true;
}

static at_model_kind classify(const at_model *m) {
  const char *n = m->k->name ? m->k->name : "";
  if (strcmp(n, "matmul") == 0 && has_syms(m, (const char *[]){"BM", "BN", "BK", "M", "N", "K"}, 6))
    return AT_MODEL_MATMUL;
  if (strcmp(n, "attention") == 0 &&
      has_syms(m, (const char *[]){"BM", "BN", "B", "H", "S", "SKV", "D"}, 7))
    return AT_MODEL_ATTENTION;
  if (strcmp(n, "bsattention") == 0 &&
      has_syms(m, (const char *[]){"BM", "BN", "B", "H", "S", "SKV", "D"}, 7))
    return AT_MODEL_BSATTENTION;
  if (strcmp(n, "bsmatmul") == 0 && has_syms(m, (const char *[]){"BM", "BS", "M", "N", "K"}, 5))
    return AT_MODEL_BSMATMUL;
  return AT_MODEL_GENERIC;
}

static const char *shape_key(const kn_shape *s, const char *key) {
  for (int i = 0; s && i < s->n; i++)
    if (strcmp(s->kv[i].key, key) == 0)
      return s->kv[i].val;
  return NULL;
}

static void bind_default(at_model *m, const char *name, int64_t v) {
  int i = sym(m, name);
  if (i >= 0 && !m->set[i]) {
    m->vals[i] = (ir_num){.i = v};
    m->set[i] = true;
  }
}

static int64_t value_of(const at_model *m, const char *name, int64_t def) {
  int i = sym(m, name);
  return i >= 0 && m->set[i] && !m->vals[i].isf ? m->vals[i].i : def;
}

/* Problem dims and parameters from the --shape keys, then the built-in kernels' defaults. */
static void bind_problem(at_model *m, const kn_shape *shape) {
  const ir_kernel *k = m->k;
  for (int i = 0; shape && i < shape->n; i++) {
    int s = sym(m, shape->kv[i].key);
    if (s < 0 || (k->syms[s].kind != SYM_DIM && k->syms[s].kind != SYM_PARAM))
      continue;
    char *end;
    long long v = strtoll(shape->kv[i].val, &end, 10);
    if (*end == 0 && end != shape->kv[i].val) {
      m->vals[s] = (ir_num){.i = v};
      m->set[s] = true;
      continue;
    }
    double f = strtod(shape->kv[i].val, &end);
    if (*end == 0 && end != shape->kv[i].val && isfinite(f)) {
      m->vals[s] = (ir_num){.isf = true, .f = f};
      m->set[s] = true;
    }
  }
  if (m->kind == AT_MODEL_ATTENTION || m->kind == AT_MODEL_BSATTENTION) {
    bind_default(m, "B", 1);
    bind_default(m, "HKV", value_of(m, "H", 1));
    bind_default(m, "SKV", value_of(m, "S", UNKNOWN_DIM));
  }
  for (int i = 0; i < k->nsyms; i++)
    if (k->syms[i].kind == SYM_DIM && !m->set[i]) {
      m->vals[i] = (ir_num){.i = UNKNOWN_DIM};
      m->set[i] = true;
    }
  m->density = 1;
  if (m->kind == AT_MODEL_BSMATMUL) {
    const char *d = shape_key(shape, "density");
    m->density = d ? strtod(d, NULL) : 0.25;
    if (!(m->density > 0) || m->density > 1)
      m->density = 0.25;
  }
  if (m->kind == AT_MODEL_BSATTENTION) {
    const char *mask = shape_key(shape, "mask");
    if (!mask)
      mask = "causal";                        /* kn_problem_build's default */
    const char *w = strstr(mask, "sliding:"); /* k <= q && q - k < W */
    m->bs_causal = strstr(mask, "causal") != NULL || w != NULL;
    m->bs_window = w ? strtoll(w + 8, NULL, 10) : 0;
    const char *r = strstr(mask, "random:");
    if (r) {
      double p = strtod(r + 7, NULL);
      if (p > 0 && p <= 1)
        m->density = p;
    }
  }
}

at_status at_model_new(const ir_kernel *k, const ir_config *fixed, const kn_shape *shape,
                       const at_device *dev, at_model **out, at_err *e) {
  if (!out)
    return at_fail(e, AT_ERR_ARG, "at_model_new: no output");
  *out = NULL;
  if (!k || !dev)
    return at_fail(e, AT_ERR_ARG, "at_model_new: no kernel or device");
  at_model *m = calloc(1, sizeof *m);
  if (!m)
    return at_fail(e, AT_ERR_OOM, "out of memory");
  m->k = k;
  m->dev = dev;
  for (int i = 0; i < k->nsyms; i++)
    if (k->syms[i].has_default) {
      m->vals[i] = k->syms[i].def;
      m->set[i] = true;
    }
  for (int i = 0; i < k->ntvars; i++)
    m->tv[i] = k->tvars[i].nchoices > 0 ? k->tvars[i].choices[0] : IR_BF16;
  for (int i = 0; fixed && i < fixed->n; i++) {
    const ir_config_item *it = &fixed->items[i];
    int t = ir_tvar_find(k, it->name, strlen(it->name));
    if (t >= 0 && it->kind != IR_VOID) {
      m->tv[t] = it->kind;
      continue;
    }
    int s = ir_sym_find(k, it->name, strlen(it->name));
    if (s >= 0 && it->kind == IR_VOID) {
      m->vals[s] = it->value;
      m->set[s] = true;
    }
  }
  m->kind = classify(m);
  m->s_warps = sym(m, "WARPS");
  m->s_stages = sym(m, "STAGES");
  bind_problem(m, shape);
  walk(m, k->body);
  *out = m;
  return AT_OK;
}

void at_model_free(at_model *m) { free(m); }

/* ---- per-config evaluation ----------------------------------------------------------------- */

static int64_t ev(const at_model *m, const ir_num *vals, const ir_expr *e) {
  ir_num r;
  ir_diag d;
  if (!e || ir_expr_eval(m->k, e, vals, m->set, &r, &d) != IR_OK)
    return -1;
  return r.isf ? (int64_t)r.f : r.i;
}

static int elem_bytes(const at_model *m, const ir_type *t) {
  const ir_type *el = ir_type_elem(t);
  ir_kind k = el->kind == IR_TVAR && el->tvar >= 0 && el->tvar < m->k->ntvars ? m->tv[el->tvar]
              : el->kind == IR_PTR                                            ? IR_I64
                                                                              : el->kind;
  int bits = k < IR_NSCALAR ? ir_kind_bits(k) : 32;
  return bits >= 8 ? bits / 8 : 1;
}

/* Elements of a tile type with vals bound; -1 when a dim cannot be evaluated. */
static int64_t elems(const at_model *m, const ir_num *vals, const ir_type *t) {
  if (t->kind != IR_TILE)
    return 1;
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) {
    int64_t d = ev(m, vals, t->dims[i]);
    if (d < 0 || (d > 0 && n > INT64_MAX / 4 / d))
      return -1;
    n *= d;
  }
  return n;
}

static int64_t sym_val(const at_model *m, const ir_num *vals, int s, int64_t def) {
  return s >= 0 && m->set[s] ? (vals[s].isf ? (int64_t)vals[s].f : vals[s].i) : def;
}

int64_t at_model_smem(const at_model *m, const ir_num *vals) {
  int64_t stages = sym_val(m, vals, m->s_stages, 1), total = 0, acc = 0;
  if (stages < 1)
    stages = 1;
  for (int i = 0; i < m->ndots; i++) {
    const dot_info *d = &m->dots[i];
    int64_t a = elems(m, vals, d->a), b = elems(m, vals, d->b), c = elems(m, vals, d->c);
    if (a < 0 || b < 0 || c < 0)
      return -1;
    total += a * elem_bytes(m, d->a) * (d->a_pipe ? stages : 1);
    total += b * elem_bytes(m, d->b) * (d->b_pipe ? stages : 1);
    if (c * elem_bytes(m, d->c) > acc)
      acc = c * elem_bytes(m, d->c);
  }
  return total > acc ? total : acc;
}

bool at_model_check(const at_model *m, const ir_num *vals, char *why, size_t cap) {
  int64_t w = sym_val(m, vals, m->s_warps, 4);
  if (w < 1 || w > 32 || (w & (w - 1)) || w * 32 > m->dev->max_threads_per_sm) {
    snprintf(why, cap, "threads: WARPS=%lld (a power of two up to 32, at most %d threads)",
             (long long)w, m->dev->max_threads_per_sm);
    return false;
  }
  for (int i = 0; i < m->ndots; i++) {
    const dot_info *d = &m->dots[i];
    if (d->a->kind != IR_TILE || d->b->kind != IR_TILE || d->a->rank != 2 || d->b->rank != 2)
      continue;
    int64_t M = ev(m, vals, d->a->dims[0]), K = ev(m, vals, d->a->dims[1]);
    int64_t N = ev(m, vals, d->b->dims[1]);
    if (M % 16 || N % 8 || K % 16) {
      snprintf(why, cap,
               "mma shape: the dot at line %d is %lldx%lldx%lld (MxNxK); mma.sync m16n8k16 "
               "needs M %% 16 == 0, N %% 8 == 0, K %% 16 == 0",
               d->op->loc.line, (long long)M, (long long)N, (long long)K);
      return false;
    }
  }
  int64_t smem = at_model_smem(m, vals);
  if (smem > m->dev->smem_per_block) {
    snprintf(why, cap, "shared memory: ~%lld bytes (estimate) > %d per block on %s",
             (long long)smem, m->dev->smem_per_block, m->dev->arch);
    return false;
  }
  return true;
}

/* ---- the prior ----------------------------------------------------------------------------- */

/* What one kernel launch does, in the terms the timing model needs. */
typedef struct work {
  double tiles;      /* CTAs */
  double flops_tile; /* tensor-core flops of one CTA (padded tiles) */
  double vec_tile;   /* other arithmetic of one CTA (softmax, masks), flops */
  double ksteps;     /* iterations of the pipelined loop per CTA */
  double mma_m;      /* the main dot's M and N per CTA */
  double mma_n;
  double regs_elems;    /* 32-bit register values per CTA (accumulators, fragments) */
  double elem_bytes;    /* operand element size */
  double l2_bytes_tile; /* operand bytes one CTA fetches (from L2 or DRAM) */
  double dram_bytes;    /* filled after the occupancy is known */
} work;

static double cdivd(double a, double b) { return ceil(a / b); }

/* CTAs resident per SM, 0 when one does not fit. */
static double occupancy(const at_model *m, double warps, double smem, double regs_elems) {
  const at_device *d = m->dev;
  double threads = 32 * warps;
  double regs = 32 + regs_elems / threads;
  if (regs > 255)
    return 0;
  double occ = floor(d->max_threads_per_sm / threads);
  if (smem > 0)
    occ = fmin(occ, floor(d->smem_per_sm / (smem + 1024))); /* 1 KiB reserved per CTA */
  occ = fmin(occ, floor(d->regs_per_sm / (ceil(regs / 8) * 8 * threads)));
  return fmin(occ, 32);
}

/* The warp grid of an mma_m x mma_n tile, as ly_mma lays it out (rows first, 32 rows a warp at
 * least); fills the warp tile. Returns the share of lanes doing useful work (a warp tile smaller
 * than m16n8 wastes the rest). */
static double warp_tile(double warps, double mm, double mn, double *tm, double *tn) {
  double wm = 1;
  while (wm * 2 <= warps && 32 * wm <= mm)
    wm *= 2;
  *tm = mm / wm;
  *tn = mn / (warps / wm);
  double useful = fmin(1, *tm / 16) * fmin(1, *tn / 8);
  *tm = fmax(*tm, 16);
  *tn = fmax(*tn, 8);
  return useful;
}

/* Seconds of one launch. Per CTA: tensor-core time (or the shared-memory reads of the warps'
 * operand fragments, when slower) plus vector work, sharing the SM with the other resident CTAs;
 * per pipelined step the load latency the stages and the other CTAs do not hide; waves over the
 * SMs. Then the roofline against L2 (operand tiles fetched by all CTAs) and DRAM bytes. */
static double kernel_seconds(const at_model *m, const work *w, double warps, double stages,
                             double occ) {
  const at_device *d = m->dev;
  double peak_sm = d->peak_tflops * 1e12 / d->sm_count;
  double warps_sm = occ * warps;
  double sched = fmin(1, warps_sm / 4) * (0.75 + 0.25 * fmin(1, warps_sm / 16));
  double tm, tn, useful = warp_tile(warps, w->mma_m, w->mma_n, &tm, &tn);
  double t_mma = w->flops_tile * occ / (peak_sm * useful * sched);
  double smem_rd = w->flops_tile / (2 * w->mma_m * w->mma_n) * warps * (tm + tn) * w->elem_bytes;
  double t_smem = smem_rd * occ / (peak_sm / SMEM_FLOP_PER_BYTE);
  double t_tile = fmax(t_mma, t_smem) + w->vec_tile * occ / (peak_sm / VEC_RATIO * sched);
  double steps = fmax(1, w->ksteps), t_step = t_tile / steps;
  double overlap = (stages - 1) + (occ - 1) * 0.5;
  double step = overlap <= 0 ? t_step + LOAD_LATENCY_S : fmax(t_step, LOAD_LATENCY_S / overlap);
  double waves = cdivd(w->tiles, d->sm_count * occ);
  double t_compute = waves * steps * step;
  double t_l2 = w->tiles * w->l2_bytes_tile / (d->mem_gbs * 1e9 * L2_OVER_DRAM);
  double t_mem = fmax(t_l2, w->dram_bytes / (d->mem_gbs * 1e9));
  return fmax(t_compute, t_mem) + 0.25 * fmin(t_compute, t_mem) + LAUNCH_S;
}

static double num(const at_model *m, const ir_num *vals, const char *name, double def) {
  int s = sym(m, name);
  if (s < 0 || !m->set[s])
    return def;
  return vals[s].isf ? vals[s].f : (double)vals[s].i;
}

static int tv_bytes(const at_model *m, const char *name) {
  int t = ir_tvar_find(m->k, name, strlen(name));
  return t >= 0 ? ir_kind_bits(m->tv[t]) / 8 : 2;
}

/* The work of a tiled GEMM: CTAs that each compute a bm x bn tile over `steps` steps of bk. */
static work gemm_work(double tiles, double bm, double bn, double bk, double steps, double es) {
  return (work){.tiles = tiles,
                .flops_tile = 2 * bm * bn * bk * steps,
                .ksteps = steps,
                .mma_m = bm,
                .mma_n = bn,
                .regs_elems = bm * bn + (bm + bn) * 16 * es / 4,
                .elem_bytes = es,
                .l2_bytes_tile = (bm + bn) * bk * steps * es};
}

static double est_matmul(const at_model *m, const ir_num *v, double warps, double stages,
                         double smem) {
  double M = num(m, v, "M", 1), N = num(m, v, "N", 1), K = num(m, v, "K", 1);
  double BM = num(m, v, "BM", 64), BN = num(m, v, "BN", 64), BK = num(m, v, "BK", 32);
  double G = num(m, v, "GROUP_M", 1), es = tv_bytes(m, "TA"), eo = tv_bytes(m, "TC");
  double mt = cdivd(M, BM), nt = cdivd(N, BN), kt = cdivd(K, BK);
  work w = gemm_work(mt * nt, BM, BN, BK, kt, es);
  double occ = occupancy(m, warps, smem, w.regs_elems);
  if (occ < 1)
    return INFINITY;
  /* CTAs in flight cover g block rows x (inflight / g) block columns (GROUP_M order): A's block
   * row is read once per window of columns, B's block column once per group of rows. */
  double inflight = fmin(w.tiles, m->dev->sm_count * occ), g = fmin(G, mt);
  double cols = fmax(1, fmin(nt, inflight / g));
  w.dram_bytes = M * K * es * nt / cols + K * N * es * mt / g + M * N * eo;
  return kernel_seconds(m, &w, warps, stages, occ);
}

static double est_attention(const at_model *m, const ir_num *v, double warps, double stages,
                            double smem) {
  double B = num(m, v, "B", 1), H = num(m, v, "H", 1), HKV = num(m, v, "HKV", H);
  double S = num(m, v, "S", 1), SKV = num(m, v, "SKV", S), D = num(m, v, "D", 64);
  double BM = num(m, v, "BM", 64), BN = num(m, v, "BN", 64), es = tv_bytes(m, "T");
  bool causal = m->kind == AT_MODEL_BSATTENTION ? m->bs_causal : num(m, v, "causal", 0) != 0;
  double qb = cdivd(S, BM), span = SKV;
  if (causal) /* the average query block sees keys up to its middle row plus half a block */
    span = fmin(SKV, S / 2 + BM / 2);
  if (m->kind == AT_MODEL_BSATTENTION && m->bs_window > 0)
    span = fmin(span, (double)m->bs_window + BM);
  double steps = fmax(1, ceil(cdivd(span, BN) * m->density));
  double mask_ops = m->kind == AT_MODEL_BSATTENTION ? 24 : 14;
  work w = {.tiles = qb * B * H,
            .flops_tile = 4 * BM * BN * D * steps,
            .vec_tile = mask_ops * BM * BN * steps,
            .ksteps = steps,
            .mma_m = BM,
            .mma_n = BN,
            .regs_elems = BM * D + 2 * BM * BN,
            .elem_bytes = es,
            .l2_bytes_tile = BM * D * es + 2 * BN * D * es * steps};
  double occ = occupancy(m, warps, smem, w.regs_elems);
  if (occ < 1)
    return INFINITY;
  /* the grid runs the query blocks of a head, then the next head: the qb * (H / HKV) CTAs that
   * share one K/V head are consecutive, so K and V come from DRAM once per window of them */
  double inflight = fmin(w.tiles, m->dev->sm_count * occ);
  double kv = B * HKV * SKV * D * es * 2 * fmax(1, qb * (H / HKV) / inflight);
  w.dram_bytes = 2 * B * H * S * D * es + kv * fmin(1, steps * BN / fmax(1, SKV));
  return kernel_seconds(m, &w, warps, stages, occ);
}

static double est_bsmatmul(const at_model *m, const ir_num *v, double warps, double stages,
                           double smem) {
  double M = num(m, v, "M", 1), N = num(m, v, "N", 1), K = num(m, v, "K", 1);
  double BM = num(m, v, "BM", 64), BS = num(m, v, "BS", 32);
  double es = tv_bytes(m, "T"), eo = tv_bytes(m, "TC");
  double mt = cdivd(M, BM), nt = cdivd(N, BS), kb = cdivd(K, BS);
  double steps = fmax(1, ceil(kb * m->density));
  work w = gemm_work(mt * nt, BM, BS, BS, steps, es);
  double occ = occupancy(m, warps, smem, w.regs_elems);
  if (occ < 1)
    return INFINITY;
  double inflight = fmin(w.tiles, m->dev->sm_count * occ);
  double wbytes = nt * steps * BS * BS * es, xbytes = M * K * es * m->density;
  w.dram_bytes = wbytes * mt / fmin(mt, inflight) + xbytes * nt / fmax(1, fmin(nt, inflight / mt)) +
                 M * N * eo;
  return kernel_seconds(m, &w, warps, stages, occ);
}

/* Iterations of a for op when its bounds are const ops the bound symbols evaluate; else 1. */
static double trips(const at_model *m, const ir_num *vals, const ir_op *loop) {
  int64_t b[3];
  for (int i = 0; i < 3; i++) {
    const ir_op *d = loop->operands[i]->def;
    if (!d || d->code != IR_OP_CONST || (b[i] = ev(m, vals, d->ex[0])) < 0)
      return 1;
  }
  return b[2] > 0 && b[1] > b[0] ? (double)((b[1] - b[0] + b[2] - 1) / b[2]) : 1;
}

static double nest_trips(const at_model *m, const ir_num *vals, const ir_op *loop) {
  double t = 1;
  for (; loop; loop = enclosing_loop(loop))
    t *= trips(m, vals, loop);
  return t;
}

/* User kernels: programs from the grid, per program the dot flops and load bytes times the trips
 * of their loops, DRAM bytes = every load of every program (no cache reuse assumed). */
static double est_generic(const at_model *m, const ir_num *v, double warps, double stages,
                          double smem) {
  work w = {.tiles = 1, .mma_m = 64, .mma_n = 64, .elem_bytes = 2};
  for (int i = 0; i < m->k->ngrid; i++) {
    int64_t g = ev(m, v, m->k->grid[i]);
    if (g < 1)
      return NAN;
    w.tiles *= (double)g;
  }
  double bytes = 0;
  for (int i = 0; i < m->ndots; i++) {
    const dot_info *d = &m->dots[i];
    double t = nest_trips(m, v, d->loop);
    double a = (double)elems(m, v, d->a), c = (double)elems(m, v, d->c);
    double K = d->a->rank == 2 ? (double)ev(m, v, d->a->dims[1]) : 1;
    if (a < 0 || c < 0 || K < 0)
      return NAN;
    w.flops_tile += 2 * c * K * t;
    w.regs_elems += c + a;
    if (i == 0 && d->c->rank == 2) {
      w.mma_m = (double)ev(m, v, d->c->dims[0]);
      w.mma_n = (double)ev(m, v, d->c->dims[1]);
      w.ksteps = t;
    }
  }
  for (int i = 0; i < m->nloads; i++)
    bytes += (double)elems(m, v, m->loads[i].t) * elem_bytes(m, m->loads[i].t) *
             nest_trips(m, v, m->loads[i].loop);
  if (m->ndots == 0) { /* element-wise kernels: one vector op per loaded element */
    w.vec_tile = bytes / 2;
    w.ksteps = 1;
  }
  double occ = occupancy(m, warps, smem, w.regs_elems);
  if (occ < 1)
    return INFINITY;
  w.l2_bytes_tile = bytes;
  w.dram_bytes = bytes * w.tiles;
  return kernel_seconds(m, &w, warps, stages, occ);
}

double at_model_estimate(const at_model *m, const ir_num *vals) {
  double warps = (double)sym_val(m, vals, m->s_warps, 4);
  double stages = (double)sym_val(m, vals, m->s_stages, 1);
  double smem = (double)at_model_smem(m, vals);
  if (smem < 0 || warps < 1)
    return NAN;
  double s;
  switch (m->kind) {
  case AT_MODEL_MATMUL:
    s = est_matmul(m, vals, warps, stages, smem);
    break;
  case AT_MODEL_ATTENTION:
  case AT_MODEL_BSATTENTION:
    s = est_attention(m, vals, warps, stages, smem);
    break;
  case AT_MODEL_BSMATMUL:
    s = est_bsmatmul(m, vals, warps, stages, smem);
    break;
  default:
    s = est_generic(m, vals, warps, stages, smem);
    break;
  }
  return s * 1e3;
}
