/* ir/print.c — the canonical text form of a kernel (the inverse of ir/parse.c).
 *
 * Used for IR dumps between passes (`tilec compile --emit ...`), golden tests and diagnostics.
 * The output is deterministic and canonical: parse(print(k)) prints the same text. Layout
 * follows docs/ir.md: header sections with one item per line indented by 2, `args (...)` and
 * `grid (...)` on one line, the body between `{` and `}` with 2 spaces per region level.
 * Expressions get the fewest parentheses that keep their tree (C precedence, left-associative
 * binary operators); floats print in the shortest form that reads back to the same double.
 * Values keep their names; an unnamed value (built through irb_*) prints as %v<id>, made unique
 * against the kernel's other names.
 */
#include "ir.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* A growing string; after a failed allocation it stays as it was and oom is set. */
typedef struct sbuf {
  char *s;
  size_t n, cap;
  bool oom;
} sbuf;

static void putn(sbuf *o, const char *s, size_t n) {
  if (o->oom)
    return;
  if (o->n + n + 1 > o->cap) {
    size_t cap = o->cap ? o->cap : 256;
    while (o->n + n + 1 > cap)
      cap *= 2;
    char *q = realloc(o->s, cap);
    if (!q) {
      o->oom = true;
      return;
    }
    o->s = q;
    o->cap = cap;
  }
  memcpy(o->s + o->n, s, n);
  o->n += n;
  o->s[o->n] = '\0';
}

static void put(sbuf *o, const char *s) { putn(o, s, strlen(s)); }

static PRINTF_LIKE(2, 3) void putf(sbuf *o, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0)
    putn(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* ---- expressions ---------------------------------------------------------------------- */

enum { PREC_UNARY = 7, PREC_PRIMARY = 8 };

/* Expression operators: ir_expr op, spelling, C precedence of binary ones (0: call/unary). */
static const struct {
  int op;
  const char *name;
  int prec;
} ops[] = {{EXO_OR, "||", 1},  {EXO_AND, "&&", 2}, {EXO_EQ, "==", 3},     {EXO_NE, "!=", 3},
           {'<', "<", 4},      {'>', ">", 4},      {EXO_LE, "<=", 4},     {EXO_GE, ">=", 4},
           {'+', "+", 5},      {'-', "-", 5},      {'*', "*", 6},         {'/', "/", 6},
           {'%', "%", 6},      {'!', "!", 0},      {EXO_CDIV, "cdiv", 0}, {EXO_MIN, "min", 0},
           {EXO_MAX, "max", 0}};

static int opindex(int op) {
  for (int i = 0; i < (int)(sizeof ops / sizeof ops[0]); i++)
    if (ops[i].op == op)
      return i;
  return -1;
}

static int opprec(int op) {
  int i = opindex(op);
  return i >= 0 && ops[i].prec ? ops[i].prec : PREC_PRIMARY;
}

static const char *opname(int op) {
  int i = opindex(op);
  return i >= 0 ? ops[i].name : "?";
}

/* The binding strength of e as printed: a negative literal prints like a unary minus. */
static int prec(const ir_expr *e) {
  switch (e->kind) {
  case EX_INT:
    return e->i < 0 ? PREC_UNARY : PREC_PRIMARY;
  case EX_FLOAT:
    return signbit(e->f) && !isnan(e->f) ? PREC_UNARY : PREC_PRIMARY;
  case EX_UNARY:
    return PREC_UNARY;
  case EX_BINARY:
    return opprec(e->op);
  default:
    return PREC_PRIMARY;
  }
}

/* Shortest decimal that reads back as v, always with a '.' or an exponent (or inf/nan). */
static void fmtfloat(double v, char *buf, size_t cap) {
  if (isnan(v)) {
    snprintf(buf, cap, "nan");
    return;
  }
  if (isinf(v)) {
    snprintf(buf, cap, "%s", v < 0 ? "-inf" : "inf");
    return;
  }
  if (v == floor(v) && fabs(v) < 1e15) {
    snprintf(buf, cap, "%.1f", v);
    return;
  }
  for (int digits = 1; digits <= 17; digits++) {
    snprintf(buf, cap, "%.*g", digits, v);
    if (strtod(buf, NULL) == v)
      break;
  }
  if (!strpbrk(buf, ".e") && strlen(buf) + 3 <= cap)
    strcat(buf, ".0");
}

static void expr(sbuf *o, const ir_kernel *k, const ir_expr *e, int ctx) {
  if (!e) {
    put(o, "<null>");
    return;
  }
  int pr = prec(e);
  if (pr < ctx)
    put(o, "(");
  char num[64];
  switch (e->kind) {
  case EX_INT:
    putf(o, "%lld", (long long)e->i);
    break;
  case EX_FLOAT:
    fmtfloat(e->f, num, sizeof num);
    put(o, num);
    break;
  case EX_SYM:
    if (k && e->sym >= 0 && e->sym < k->nsyms)
      put(o, k->syms[e->sym].name);
    else
      putf(o, "<sym %d>", e->sym);
    break;
  case EX_UNARY:
    put(o, opname(e->op));
    expr(o, k, e->a, PREC_UNARY);
    break;
  case EX_BINARY:
    expr(o, k, e->a, pr);
    putf(o, " %s ", opname(e->op));
    expr(o, k, e->b, pr + 1);
    break;
  case EX_CALL:
    put(o, opname(e->op));
    put(o, "(");
    expr(o, k, e->a, 0);
    put(o, ", ");
    expr(o, k, e->b, 0);
    put(o, ")");
    break;
  }
  if (pr < ctx)
    put(o, ")");
}

/* ---- types ---------------------------------------------------------------------------- */

static void type(sbuf *o, const ir_kernel *k, const ir_type *t) {
  if (!t) {
    put(o, "<null>");
    return;
  }
  switch (t->kind) {
  case IR_PTR:
    put(o, "ptr<");
    type(o, k, t->elem);
    put(o, ">");
    break;
  case IR_TILE:
    put(o, "tile<");
    for (int i = 0; i < t->rank && i < IR_MAX_RANK; i++) {
      expr(o, k, t->dims[i], PREC_PRIMARY);
      put(o, ", ");
    }
    type(o, k, t->elem);
    put(o, ">");
    break;
  case IR_TENSOR:
    put(o, "tensor<");
    type(o, k, t->elem);
    put(o, ">[");
    for (int i = 0; i < t->rank && i < IR_MAX_RANK; i++) {
      if (i)
        put(o, ", ");
      expr(o, k, t->dims[i], PREC_PRIMARY);
    }
    put(o, "]");
    break;
  case IR_TVAR:
    if (k && t->tvar >= 0 && t->tvar < k->ntvars)
      put(o, k->tvars[t->tvar].name);
    else
      putf(o, "<tvar %d>", t->tvar);
    break;
  default:
    put(o, ir_kind_name(t->kind));
  }
}

/* ---- value names ---------------------------------------------------------------------- */

typedef struct printer {
  sbuf o;
  const ir_kernel *k;
  const char **taken; /* sorted names given in the kernel */
  int ntaken, captaken;
  char **gen; /* by value id: invented names of unnamed values */
  char tmp[32];
  ir_note_fn note; /* optional: a trailing `# note` per op result */
  void *note_ctx;
} printer;

static int cmpstr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool taken(const printer *pr, const char *name) {
  return pr->ntaken &&
         bsearch(&name, pr->taken, (size_t)pr->ntaken, sizeof *pr->taken, cmpstr) != NULL;
}

static void collect(printer *pr, const ir_value *v) {
  if (!v || !v->name)
    return;
  if (pr->ntaken == pr->captaken) {
    int cap = pr->captaken ? 2 * pr->captaken : 64;
    const char **q = realloc(pr->taken, sizeof *q * (size_t)cap);
    if (!q) {
      pr->o.oom = true;
      return;
    }
    pr->taken = q;
    pr->captaken = cap;
  }
  pr->taken[pr->ntaken++] = v->name;
}

static void invent(printer *pr, const ir_value *v) {
  if (!v || v->name || !pr->gen || v->id < 0 || v->id >= pr->k->nvalues || pr->gen[v->id])
    return;
  char buf[48];
  snprintf(buf, sizeof buf, "v%d", v->id);
  for (int i = 1; taken(pr, buf); i++)
    snprintf(buf, sizeof buf, "v%d_%d", v->id, i);
  pr->gen[v->id] = malloc(strlen(buf) + 1);
  if (!pr->gen[v->id]) {
    pr->o.oom = true;
    return;
  }
  strcpy(pr->gen[v->id], buf);
}

static void eachvalue(printer *pr, const ir_block *b, void (*fn)(printer *, const ir_value *)) {
  if (!b)
    return;
  for (int i = 0; i < b->nargs; i++)
    fn(pr, b->args[i]);
  for (const ir_op *op = b->first; op; op = op->next) {
    for (int i = 0; i < op->nres; i++)
      fn(pr, op->results[i]);
    for (int r = 0; r < op->nregions && r < 2; r++)
      eachvalue(pr, op->regions[r], fn);
  }
}

static void eachkernelvalue(printer *pr, void (*fn)(printer *, const ir_value *)) {
  for (int i = 0; i < pr->k->nargs; i++)
    fn(pr, pr->k->args[i].value);
  eachvalue(pr, pr->k->body, fn);
}

static const char *valname(printer *pr, const ir_value *v) {
  if (!v)
    return "<null>";
  if (v->name)
    return v->name;
  if (pr->gen && v->id >= 0 && v->id < pr->k->nvalues && pr->gen[v->id])
    return pr->gen[v->id];
  snprintf(pr->tmp, sizeof pr->tmp, "v%d", v->id);
  return pr->tmp;
}

static void val(printer *pr, const ir_value *v) {
  put(&pr->o, "%");
  put(&pr->o, valname(pr, v));
}

/* ---- ops ------------------------------------------------------------------------------ */

static void block(printer *pr, const ir_block *b, int ind);

static void indent(printer *pr, int ind) {
  for (int i = 0; i < ind; i++)
    put(&pr->o, " ");
}

static void restypes(printer *pr, const ir_op *op) {
  put(&pr->o, " : ");
  for (int i = 0; i < op->nres; i++) {
    if (i)
      put(&pr->o, ", ");
    type(&pr->o, pr->k, op->results[i]->ty);
  }
}

static const ir_value *opnd(const ir_op *op, int i) {
  return i < op->nopnd ? op->operands[i] : NULL;
}

static void simple(printer *pr, const ir_op *op) {
  const ir_opinfo *info = &ir_ops[op->code];
  sbuf *o = &pr->o;
  put(o, info->keyword);
  int oi = 0, na = 0, ne = 0;
  bool first = true, nosep = false;
  for (const char *c = info->syntax; *c; c++) {
    if (*c == 'f') {
      if (op->ex[1]) {
        put(o, " fill ");
        expr(o, pr->k, op->ex[1], 0);
      }
      continue;
    }
    if (*c == '*') {
      for (; oi < op->nopnd; oi++) {
        put(o, first ? " " : ", ");
        val(pr, op->operands[oi]);
        first = false;
      }
      continue;
    }
    put(o, first || nosep ? " " : ", ");
    first = false;
    nosep = false;
    switch (*c) {
    case 'v':
      val(pr, opnd(op, oi++));
      break;
    case 'i':
      putf(o, "%lld", (long long)op->attr[na++ & 1]);
      break;
    case 'e':
      expr(o, pr->k, op->ex[ne++ & 1], 0);
      break;
    case 's':
      put(o, op->code == IR_OP_REDUCE ? ir_red_name(op->sub) : ir_cmp_name(op->sub));
      nosep = true;
      break;
    case 'T': {
      int after = 0; /* value items after T take operands from the end */
      for (const char *s = c + 1; *s; s++)
        after += *s == 'v';
      val(pr, opnd(op, oi++));
      put(o, "[");
      for (int n = 0; oi < op->nopnd - after; n++, oi++) {
        if (n)
          put(o, ", ");
        val(pr, op->operands[oi]);
      }
      put(o, "]");
      break;
    }
    default:
      break;
    }
  }
  if (op->nres > 0)
    restypes(pr, op);
}

static void forop(printer *pr, const ir_op *op, int ind) {
  sbuf *o = &pr->o;
  const ir_block *body = op->nregions > 0 ? op->regions[0] : NULL;
  put(o, "for ");
  val(pr, body && body->nargs > 0 ? body->args[0] : NULL);
  put(o, " = ");
  val(pr, opnd(op, 0));
  put(o, " to ");
  val(pr, opnd(op, 1));
  put(o, " step ");
  val(pr, opnd(op, 2));
  int n = op->nopnd - 3;
  if (n > 0) {
    put(o, " iter(");
    for (int i = 0; i < n; i++) {
      if (i)
        put(o, ", ");
      val(pr, body && i + 1 < body->nargs ? body->args[i + 1] : NULL);
      put(o, " = ");
      val(pr, op->operands[3 + i]);
    }
    put(o, ")");
  }
  if (op->nres > 0)
    restypes(pr, op);
  put(o, " {\n");
  block(pr, body, ind + 2);
  indent(pr, ind);
  put(o, "}");
}

static void ifop(printer *pr, const ir_op *op, int ind) {
  sbuf *o = &pr->o;
  put(o, "if ");
  val(pr, opnd(op, 0));
  if (op->nres > 0)
    restypes(pr, op);
  put(o, " {\n");
  block(pr, op->nregions > 0 ? op->regions[0] : NULL, ind + 2);
  indent(pr, ind);
  put(o, "}");
  if (op->nregions > 1 && op->regions[1]) {
    put(o, " else {\n");
    block(pr, op->regions[1], ind + 2);
    indent(pr, ind);
    put(o, "}");
  }
}

static void opline(printer *pr, const ir_op *op, int ind) {
  indent(pr, ind);
  if (op->code >= IR_NOPS) {
    put(&pr->o, "<bad op>");
    return;
  }
  for (int i = 0; i < op->nres; i++) {
    if (i)
      put(&pr->o, ", ");
    val(pr, op->results[i]);
  }
  if (op->nres > 0)
    put(&pr->o, " = ");
  if (op->code == IR_OP_FOR)
    forop(pr, op, ind);
  else if (op->code == IR_OP_IF)
    ifop(pr, op, ind);
  else
    simple(pr, op);
}

static void block(printer *pr, const ir_block *b, int ind) {
  if (!b)
    return;
  for (const ir_op *op = b->first; op; op = op->next) {
    opline(pr, op, ind);
    if (pr->note && op->nres > 0 && op->code != IR_OP_FOR && op->code != IR_OP_IF) {
      char buf[512] = "";
      pr->note(pr->note_ctx, op->results[0], buf, sizeof buf);
      if (buf[0])
        putf(&pr->o, "  # %s", buf);
    }
    put(&pr->o, "\n");
  }
}

/* ---- header --------------------------------------------------------------------------- */

static void num(sbuf *o, ir_num v) {
  if (v.isf) {
    char buf[64];
    fmtfloat(v.f, buf, sizeof buf);
    put(o, buf);
  } else {
    putf(o, "%lld", (long long)v.i);
  }
}

static void arg(printer *pr, const ir_arg *a) {
  sbuf *o = &pr->o;
  const ir_kernel *k = pr->k;
  if (a->kind == ARG_SCALAR) {
    const ir_sym *s = a->sym >= 0 && a->sym < k->nsyms ? &k->syms[a->sym] : NULL;
    put(o, s ? s->name : a->name);
    put(o, ": ");
    if (!s)
      return;
    if (s->kind == SYM_CONST)
      put(o, "const ");
    put(o, ir_kind_name(s->ty));
    if (s->kind == SYM_CONST && s->has_default) {
      put(o, " = ");
      num(o, s->def);
    }
    return;
  }
  put(o, "%");
  put(o, a->value ? valname(pr, a->value) : a->name);
  put(o, ": ");
  if (a->kind == ARG_TENSOR && a->dir == ARG_OUT)
    put(o, "out ");
  if (a->kind == ARG_TENSOR && a->dir == ARG_INOUT)
    put(o, "inout ");
  type(o, k, a->value ? a->value->ty : NULL);
}

static void header(printer *pr) {
  sbuf *o = &pr->o;
  const ir_kernel *k = pr->k;
  putf(o, "kernel %s\n", k->name ? k->name : "kernel");
  if (k->ntvars > 0) {
    put(o, "types {\n");
    for (int i = 0; i < k->ntvars; i++) {
      putf(o, "  %s in [", k->tvars[i].name);
      for (int j = 0; j < k->tvars[i].nchoices; j++)
        putf(o, "%s%s", j ? ", " : "", ir_kind_name(k->tvars[i].choices[j]));
      put(o, "]\n");
    }
    put(o, "}\n");
  }
  bool any = false;
  for (int i = 0; i < k->nsyms; i++) {
    const ir_sym *s = &k->syms[i];
    if (s->kind != SYM_TUNABLE)
      continue;
    if (!any)
      put(o, "tunables {\n");
    any = true;
    putf(o, "  %s = ", s->name);
    num(o, s->def);
    put(o, " in [");
    for (int j = 0; j < s->ndomain; j++)
      putf(o, "%s%lld", j ? ", " : "", (long long)s->domain[j]);
    put(o, "]\n");
  }
  if (any)
    put(o, "}\n");
  if (k->nconstraints > 0) {
    put(o, "constraints {\n");
    for (int i = 0; i < k->nconstraints; i++) {
      put(o, "  ");
      expr(o, k, k->constraints[i], 0);
      put(o, "\n");
    }
    put(o, "}\n");
  }
  put(o, "args (");
  for (int i = 0; i < k->nargs; i++) {
    if (i)
      put(o, ", ");
    arg(pr, &k->args[i]);
  }
  put(o, ")\ngrid (");
  for (int i = 0; i < k->ngrid && i < 3; i++) {
    if (i)
      put(o, ", ");
    expr(o, k, k->grid[i], 0);
  }
  put(o, ")\n");
  if (k->nbuckets > 0) {
    put(o, "buckets {\n");
    for (int i = 0; i < k->nbuckets; i++) {
      const ir_bucket *bk = &k->buckets[i];
      putf(o, "  %s = %s", k->syms[bk->sym].name, ir_bucket_kind_name(bk->kind));
      if (bk->kind == IR_BUCKET_MULTIPLE)
        putf(o, "(%lld)", (long long)bk->arg);
      put(o, "\n");
    }
    put(o, "}\n");
  }
}

char *ir_print(const ir_kernel *k) { return ir_print_notes(k, NULL, NULL); }

char *ir_print_notes(const ir_kernel *k, ir_note_fn note, void *ctx) {
  printer pr = {.k = k, .note = note, .note_ctx = ctx};
  if (!k)
    return NULL;
  if (k->nvalues > 0) {
    pr.gen = calloc((size_t)k->nvalues, sizeof *pr.gen);
    if (!pr.gen)
      return NULL;
  }
  eachkernelvalue(&pr, collect);
  if (pr.ntaken)
    qsort(pr.taken, (size_t)pr.ntaken, sizeof *pr.taken, cmpstr);
  eachkernelvalue(&pr, invent);
  header(&pr);
  put(&pr.o, "{\n");
  block(&pr, k->body, 2);
  put(&pr.o, "}\n");
  for (int i = 0; pr.gen && i < k->nvalues; i++)
    free(pr.gen[i]);
  free(pr.gen);
  free(pr.taken);
  if (pr.o.oom) {
    free(pr.o.s);
    return NULL;
  }
  return pr.o.s;
}

static void copyout(sbuf *o, char *buf, size_t cap) {
  if (!cap) {
    free(o->s);
    return;
  }
  size_t n = o->s && !o->oom ? o->n : 0;
  if (n >= cap)
    n = cap - 1;
  if (n)
    memcpy(buf, o->s, n);
  buf[n] = '\0';
  free(o->s);
}

void ir_expr_print(const ir_kernel *k, const ir_expr *e, char *buf, size_t cap) {
  sbuf o = {0};
  expr(&o, k, e, 0);
  copyout(&o, buf, cap);
}

void ir_type_print(const ir_kernel *k, const ir_type *t, char *buf, size_t cap) {
  sbuf o = {0};
  type(&o, k, t);
  copyout(&o, buf, cap);
}
