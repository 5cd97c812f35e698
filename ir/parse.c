/* ir/parse.c — the parser of the tile IR text form: text -> ir_kernel (docs/ir.md).
 *
 * First step of the pipeline: ir_parse reads one kernel and builds it through the irb_* builder
 * (the one way to make IR), then ir_verify checks it. The parser is recursive descent with a
 * small token lookahead; it handles syntax, name resolution and the limits against hostile
 * input; types, shapes and dominance beyond lexical scoping are the verifier's job.
 *
 * Design notes for a first-time reader:
 *  - Errors: the first error is formatted into the caller's ir_diag (file:line:col, source line,
 *    caret) and the parser unwinds with longjmp to ir_parse, which frees everything (as Lua's
 *    parser does). Errors the builder detects are reported by irb_finish.
 *  - Newlines end statements inside `{ }` sections. Inside ( ), [ ] and < > they are skipped:
 *    p->nest counts the open brackets and tok() drops TK_NL while it is positive.
 *  - Ops are parsed generically from the syntax string of ir_ops[] (ops.def); only `for` and
 *    `if` have hand-written parsers.
 *  - Value names are scoped lexically: a region sees the names defined before it in enclosing
 *    blocks; its own names vanish at its '}'; a name may not be redefined while visible. The
 *    scope is a hash table whose entries are popped in LIFO order at the end of a region.
 *  - Symbols in constraints may name `const` parameters declared later in `args`; such names
 *    are recorded as fixups and resolved once the args are known.
 *  - Recursion is bounded: regions and parentheses nest at most IR_MAX_DEPTH deep, binary
 *    operators recurse once per precedence level, and unary prefixes are parsed in a loop.
 *    Expression trees are at most EXPR_MAX_HEIGHT high (ir_expr_eval's own limit).
 */
#include "lex.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

enum {
  LOOKAHEAD = 4,                     /* tokens buffered; the parser peeks at most 2 ahead */
  EXPR_MAX_HEIGHT = 4 * IR_MAX_DEPTH /* operator nesting of one expression */
};

/* A name as written: points into the source (without '%' for values). */
typedef struct nameref {
  const char *s;
  int len;
  int line, col;
} nameref;

/* One visible value name. */
typedef struct scopeent {
  nameref name;
  ir_value *v;
  unsigned hash;
  int next; /* next entry in the same bucket, -1 at the end */
} scopeent;

typedef struct scope {
  scopeent *e;
  int n, cap;
  int *heads; /* bucket -> newest entry, -1 when empty */
  unsigned mask;
} scope;

/* A symbol in a constraint that was unknown when parsed; resolved after `args`. */
typedef struct fixup {
  ir_expr *e;
  nameref name;
} fixup;

/* An expression and the height of its tree. */
typedef struct xr {
  ir_expr *e;
  int h;
} xr;

typedef struct parser {
  ir_lexer lx;
  ir_token la[LOOKAHEAD];
  int nla;
  int nest; /* open ( [ < : newlines are skipped while > 0 */
  const char *src;
  size_t len;
  const char *file;
  ir_diag *d;
  jmp_buf jb;
  bool bfail; /* unwound because the builder recorded an error */
  ir_builder *b;
  ir_arena *a;
  const char *kfile; /* the kernel's copy of file, for stored locations */
  scope vals;
  fixup *fix;
  int nfix, capfix;
  ir_expr **cons; /* constraints, held until their fixups are resolved */
  nameref *conloc;
  int ncons, capcons;
  nameref *names; /* stack of result / iter names of the statements being parsed */
  int nnames, capnames;
  ir_value **vs; /* stack of for-loop inits */
  int nvs, capvs;
  const ir_type **ts; /* stack of region result types */
  int nts, capts;
  int depth;  /* open regions */
  int parens; /* open parentheses in the current expression */
  int nops;
  int want;   /* values a yield in the current region passes; -1 in the kernel body */
  bool defer; /* unknown symbols become fixups (constraints) */
  ir_value *opnd[IR_MAX_OPERANDS];
} parser;

/* ---- errors --------------------------------------------------------------------------- */

static _Noreturn void bail(parser *p) { longjmp(p->jb, 1); }

static _Noreturn PRINTF_LIKE(5, 6) void errat(parser *p, ir_status s, int line, int col,
                                              const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ir_error(p->d, s, (ir_loc){p->file, line, col}, p->src, "%s", msg);
  bail(p);
}

#define err(p, t, ...) errat(p, IR_ERR_PARSE, (t)->line, (t)->col, __VA_ARGS__)
#define limit(p, t, ...) errat(p, IR_ERR_LIMIT, (t)->line, (t)->col, __VA_ARGS__)

static void checkb(parser *p) {
  if (irb_failed(p->b)) {
    p->bfail = true;
    bail(p);
  }
}

static void *grow(parser *p, void *ptr, int *cap, int need, size_t size) {
  if (need <= *cap)
    return ptr;
  int nc = *cap ? *cap : 16;
  while (nc < need)
    nc *= 2;
  void *q = realloc(ptr, (size_t)nc * size);
  if (!q)
    errat(p, IR_ERR_LIMIT, 0, 0, "out of memory");
  *cap = nc;
  return q;
}

/* ---- tokens --------------------------------------------------------------------------- */

/* The k-th token ahead (k < LOOKAHEAD - 1), skipping newlines while brackets are open. */
static ir_token *tok(parser *p, int k) {
  for (int i = 0;;) {
    while (p->nla <= i) {
      if (ir_lex_next(&p->lx, &p->la[p->nla]) != IR_OK)
        bail(p);
      p->nla++;
    }
    if (p->nest > 0 && p->la[i].kind == TK_NL) {
      memmove(&p->la[i], &p->la[i + 1], sizeof p->la[0] * (size_t)(p->nla - i - 1));
      p->nla--;
      continue;
    }
    if (i == k)
      return &p->la[i];
    i++;
  }
}

static ir_token take(parser *p) {
  ir_token t = *tok(p, 0);
  memmove(&p->la[0], &p->la[1], sizeof p->la[0] * (size_t)(p->nla - 1));
  p->nla--;
  return t;
}

static bool is(parser *p, int kind) { return tok(p, 0)->kind == kind; }

static bool accept(parser *p, int kind) {
  if (!is(p, kind))
    return false;
  take(p);
  return true;
}

static ir_token expect(parser *p, int kind, const char *msg) {
  if (!is(p, kind))
    err(p, tok(p, 0), "%s", msg);
  return take(p);
}

static bool iskw(const ir_token *t, const char *kw) {
  return t->kind == TK_IDENT && (size_t)t->len == strlen(kw) &&
         memcmp(t->s, kw, (size_t)t->len) == 0;
}

static void skipnl(parser *p) {
  while (is(p, TK_NL))
    take(p);
}

/* Ends a line item: a newline, or nothing before '}' / the end of the file. */
static void endline(parser *p, const char *what) {
  ir_token *t = tok(p, 0);
  if (t->kind == TK_NL) {
    take(p);
    return;
  }
  if (t->kind == '}' || t->kind == TK_EOF)
    return;
  err(p, t, "expected end of line after %s", what);
}

static ir_loc locof(parser *p, int line, int col) { return (ir_loc){p->kfile, line, col}; }

static nameref nameof(const ir_token *t) {
  int skip = t->kind == TK_VALUE ? 1 : 0;
  return (nameref){t->s + skip, t->len - skip, t->line, t->col};
}

/* A NUL-terminated copy of a name in buf (names are at most IR_MAX_NAME bytes). */
static const char *cstr(const nameref *n, char buf[IR_MAX_NAME + 1]) {
  int len = n->len < IR_MAX_NAME ? n->len : IR_MAX_NAME;
  memcpy(buf, n->s, (size_t)len);
  buf[len] = '\0';
  return buf;
}

/* "%128" after an operand means modulo 128: re-lex the value token as '%' and what follows. */
static void splitmod(parser *p) {
  ir_token t = *tok(p, 0);
  ir_lex_seek(&p->lx, (size_t)(t.s - p->src) + 1, t.line, t.col + 1);
  t.kind = '%';
  t.len = 1;
  p->la[0] = t;
  p->nla = 1;
}

/* ---- value scope ---------------------------------------------------------------------- */

static unsigned hashname(const char *s, int len) {
  unsigned h = 2166136261u;
  for (int i = 0; i < len; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

static int scope_find(const scope *sc, const char *s, int len) {
  if (!sc->heads)
    return -1;
  for (int i = sc->heads[hashname(s, len) & sc->mask]; i >= 0; i = sc->e[i].next)
    if (sc->e[i].name.len == len && memcmp(sc->e[i].name.s, s, (size_t)len) == 0)
      return i;
  return -1;
}

static void scope_pop(scope *sc, int mark) {
  while (sc->n > mark) {
    scopeent *e = &sc->e[--sc->n];
    sc->heads[e->hash & sc->mask] = e->next;
  }
}

/* Errors if n is visible already (also checked before a region so the error comes early). */
static void checkfresh(parser *p, const nameref *n) {
  int old = scope_find(&p->vals, n->s, n->len);
  if (old >= 0)
    err(p, n, "'%%%.*s' redefined (first defined at %d:%d)", n->len, n->s, p->vals.e[old].name.line,
        p->vals.e[old].name.col);
}

/* Makes a name visible for v (and gives v that name); a visible name of the same spelling is an
 * error: names are never shadowed. */
static void define(parser *p, const nameref *n, ir_value *v) {
  scope *sc = &p->vals;
  checkfresh(p, n);
  sc->e = grow(p, sc->e, &sc->cap, sc->n + 1, sizeof *sc->e);
  scopeent *e = &sc->e[sc->n];
  e->name = *n;
  e->v = v;
  e->hash = hashname(n->s, n->len);
  e->next = sc->heads[e->hash & sc->mask];
  sc->heads[e->hash & sc->mask] = sc->n++;
  char buf[IR_MAX_NAME + 1];
  irb_name(p->b, v, cstr(n, buf));
}

/* The value a %name token names. */
static ir_value *value(parser *p) {
  ir_token *t = tok(p, 0);
  if (t->kind != TK_VALUE)
    err(p, t, "expected a value");
  nameref n = nameof(t);
  int i = scope_find(&p->vals, n.s, n.len);
  if (i < 0)
    err(p, t, "use of undefined value '%.*s'", t->len, t->s);
  take(p);
  return p->vals.e[i].v;
}

/* ---- symbols -------------------------------------------------------------------------- */

static const ir_kernel *kern(parser *p) { return irb_kernel(p->b); }

static bool reserved(const nameref *n) {
  static const char *const words[] = {"ptr", "tile", "tensor", "inf", "nan"};
  if (ir_kind_from_name(n->s, (size_t)n->len) != IR_VOID)
    return true;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strlen(words[i]) == (size_t)n->len && memcmp(words[i], n->s, (size_t)n->len) == 0)
      return true;
  return false;
}

/* A new symbol or type variable name must be unreserved and unused. */
static void checknew(parser *p, const nameref *n) {
  if (reserved(n))
    err(p, n, "'%.*s' is a reserved name", n->len, n->s);
  int s = ir_sym_find(kern(p), n->s, (size_t)n->len);
  int t = ir_tvar_find(kern(p), n->s, (size_t)n->len);
  if (s >= 0 || t >= 0) {
    ir_loc l = s >= 0 ? kern(p)->syms[s].loc : kern(p)->tvars[t].loc;
    err(p, n, "'%.*s' redefined (first defined at %d:%d)", n->len, n->s, l.line, l.col);
  }
}

/* ---- expressions ---------------------------------------------------------------------- */

static xr parse_bin(parser *p, int minprec);

static bool isnum(const ir_token *t) {
  return t->kind == TK_INT || t->kind == TK_FLOAT || iskw(t, "inf") || iskw(t, "nan");
}

/* A numeric literal, negated when neg (the '-' is the current token then). */
static xr number(parser *p, bool neg) {
  ir_token first = *tok(p, 0);
  if (neg)
    take(p);
  ir_token t = take(p);
  ir_expr *e;
  if (t.kind == TK_INT) {
    if (!neg && t.u > (uint64_t)INT64_MAX)
      err(p, &t, "integer literal out of range");
    int64_t v = t.u > (uint64_t)INT64_MAX ? INT64_MIN : (int64_t)t.u;
    e = ir_expr_int(p->a, neg && v != INT64_MIN ? -v : v);
  } else {
    double f = t.kind == TK_FLOAT ? t.f : iskw(&t, "inf") ? INFINITY : NAN;
    e = ir_expr_float(p->a, neg ? -f : f);
  }
  e->loc = locof(p, first.line, first.col);
  return (xr){e, 1};
}

static xr node(parser *p, int op, xr l, xr r, const ir_token *at) {
  int h = (l.h > r.h ? l.h : r.h) + 1;
  if (h > EXPR_MAX_HEIGHT)
    limit(p, at, "expression nested deeper than %d", EXPR_MAX_HEIGHT);
  return (xr){ir_expr_bin(p->a, op, l.e, r.e), h};
}

static void openparen(parser *p, const ir_token *t) {
  if (++p->parens > IR_MAX_DEPTH)
    limit(p, t, "parentheses nested deeper than %d", IR_MAX_DEPTH);
  p->nest++;
}

static void closeparen(parser *p, const char *msg) {
  expect(p, ')', msg);
  p->nest--;
  p->parens--;
}

static xr call(parser *p) {
  ir_token name = take(p);
  int op = iskw(&name, "cdiv")  ? EXO_CDIV
           : iskw(&name, "min") ? EXO_MIN
           : iskw(&name, "max") ? EXO_MAX
                                : 0;
  if (!op)
    err(p, &name, "unknown function '%.*s'", name.len, name.s);
  openparen(p, tok(p, 0));
  take(p);
  xr a = parse_bin(p, 1);
  expect(p, ',', "expected ',' between call arguments");
  xr b = parse_bin(p, 1);
  closeparen(p, "expected ')' after call arguments");
  xr x = node(p, op, a, b, &name);
  x.e->loc = locof(p, name.line, name.col);
  return x;
}

static xr symbol(parser *p) {
  ir_token t = take(p);
  nameref n = nameof(&t);
  int s = ir_sym_find(kern(p), t.s, (size_t)t.len);
  if (s < 0 && ir_tvar_find(kern(p), t.s, (size_t)t.len) >= 0)
    err(p, &t, "type variable '%.*s' used as a value", t.len, t.s);
  if (s < 0 && !p->defer)
    err(p, &t, "unknown symbol '%.*s'", t.len, t.s);
  ir_expr *e = ir_expr_sym(p->a, s);
  e->loc = locof(p, t.line, t.col);
  if (s < 0) {
    p->fix = grow(p, p->fix, &p->capfix, p->nfix + 1, sizeof *p->fix);
    p->fix[p->nfix++] = (fixup){e, n};
  }
  return (xr){e, 1};
}

/* primary: number | symbol | call | '(' expr ')' */
static xr parse_primary(parser *p) {
  ir_token *t = tok(p, 0);
  if (isnum(t))
    return number(p, false);
  if (t->kind == TK_IDENT)
    return tok(p, 1)->kind == '(' ? call(p) : symbol(p);
  if (t->kind == '(') {
    openparen(p, t);
    take(p);
    xr x = parse_bin(p, 1);
    closeparen(p, "expected ')'");
    return x;
  }
  if (t->kind == TK_VALUE)
    err(p, t, "value '%.*s' used in an expression", t->len, t->s);
  err(p, t, "expected an expression");
}

/* Whether '-' before literal t folds into it: not before 0 or nan, whose negation prints without
 * the '-' and would not read back as the same tree. */
static bool foldsneg(const ir_token *t) {
  return isnum(t) && !(t->kind == TK_INT && t->u == 0) && !iskw(t, "nan");
}

/* unary: ('-' | '!')* primary, with '-' directly before a number folded into the literal. */
static xr parse_unary(parser *p) {
  struct {
    int op, line, col;
  } pre[EXPR_MAX_HEIGHT];
  int n = 0;
  for (;;) {
    ir_token *t = tok(p, 0);
    if (t->kind != '-' && t->kind != '!')
      break;
    if (t->kind == '-' && foldsneg(tok(p, 1)))
      break;
    if (n == EXPR_MAX_HEIGHT)
      limit(p, t, "expression nested deeper than %d", EXPR_MAX_HEIGHT);
    pre[n].op = t->kind;
    pre[n].line = t->line;
    pre[n].col = t->col;
    n++;
    take(p);
  }
  xr x = is(p, '-') ? number(p, true) : parse_primary(p);
  while (n-- > 0) {
    ir_token at = {.line = pre[n].line, .col = pre[n].col};
    x = node(p, pre[n].op, x, (xr){NULL, 0}, &at);
    x.e->loc = locof(p, at.line, at.col);
  }
  return x;
}

/* Binary operators: token, ir_expr op, C precedence (higher binds tighter). */
static const struct {
  int tok, op, prec;
} binops[] = {{TK_OR, EXO_OR, 1}, {TK_AND, EXO_AND, 2}, {TK_EQ, EXO_EQ, 3}, {TK_NE, EXO_NE, 3},
              {'<', '<', 4},      {'>', '>', 4},        {TK_LE, EXO_LE, 4}, {TK_GE, EXO_GE, 4},
              {'+', '+', 5},      {'-', '-', 5},        {'*', '*', 6},      {'/', '/', 6},
              {'%', '%', 6}};

/* The precedence of a binary operator token (0 if it is none); *op receives its ir_expr op. */
static int binop(int kind, int *op) {
  for (size_t i = 0; i < sizeof binops / sizeof binops[0]; i++)
    if (binops[i].tok == kind) {
      *op = binops[i].op;
      return binops[i].prec;
    }
  return 0;
}

/* Precedence climbing; binary operators are left-associative (C precedence). */
static xr parse_bin(parser *p, int minprec) {
  xr l = parse_unary(p);
  for (;;) {
    if (is(p, TK_VALUE))
      splitmod(p);
    int op = 0, prec = binop(tok(p, 0)->kind, &op);
    if (!prec || prec < minprec)
      return l;
    ir_token t = take(p);
    xr r = parse_bin(p, prec + 1);
    ir_loc loc = l.e->loc;
    l = node(p, op, l, r, &t);
    l.e->loc = loc;
  }
}

static ir_expr *parse_expr(parser *p) { return parse_bin(p, 1).e; }

/* An integer literal with an optional '-' (tunable values, op attributes). */
static int64_t intlit(parser *p, const char *msg, ir_token *first) {
  *first = *tok(p, 0);
  bool neg = accept(p, '-');
  ir_token t = *tok(p, 0);
  if (t.kind != TK_INT)
    err(p, &t, "%s", msg);
  take(p);
  if (t.u > (uint64_t)INT64_MAX) {
    if (!neg)
      err(p, &t, "integer literal out of range");
    return INT64_MIN;
  }
  return neg ? -(int64_t)t.u : (int64_t)t.u;
}

/* ---- types ---------------------------------------------------------------------------- */

/* A scalar type or a type variable. */
static const ir_type *parse_base(parser *p, const char *what) {
  ir_token *t = tok(p, 0);
  if (t->kind != TK_IDENT)
    err(p, t, "expected %s", what);
  ir_kind k = ir_kind_from_name(t->s, (size_t)t->len);
  int tv = ir_tvar_find(kern(p), t->s, (size_t)t->len);
  if (k == IR_VOID && tv < 0) {
    if (iskw(t, "ptr") || iskw(t, "tile") || iskw(t, "tensor"))
      err(p, t, "expected %s, found '%.*s'", what, t->len, t->s);
    err(p, t, "unknown type '%.*s'", t->len, t->s);
  }
  take(p);
  return k != IR_VOID ? ir_scalar_type(k) : ir_type_tvar(p->a, tv);
}

static const ir_type *parse_ptr(parser *p) {
  take(p);
  expect(p, '<', "expected '<' after 'ptr'");
  p->nest++;
  const ir_type *elem = parse_base(p, "a pointer element type");
  expect(p, '>', "expected '>' after pointer element type");
  p->nest--;
  return ir_type_ptr(p->a, elem);
}

/* tile<D0, ..., E>: dims are primary expressions, E a scalar, a type variable or a ptr<>. */
static const ir_type *parse_tile(parser *p) {
  take(p);
  expect(p, '<', "expected '<' after 'tile'");
  p->nest++;
  ir_expr *dims[IR_MAX_RANK];
  int rank = 0;
  const ir_type *elem;
  for (;;) {
    ir_token *t = tok(p, 0);
    int next = tok(p, 1)->kind;
    if (t->kind == TK_IDENT && (next == '>' || (iskw(t, "ptr") && next == '<'))) {
      if (rank == 0)
        err(p, t, "tile type needs at least one dimension");
      if (next == '>' && ir_sym_find(kern(p), t->s, (size_t)t->len) >= 0)
        err(p, tok(p, 1), "missing element type in tile type");
      elem = iskw(t, "ptr") ? parse_ptr(p) : parse_base(p, "an element type");
      break;
    }
    if (rank == IR_MAX_RANK)
      limit(p, t, "tile rank exceeds %d", IR_MAX_RANK);
    dims[rank++] = parse_primary(p).e;
    if (!accept(p, ',')) {
      if (is(p, '>'))
        err(p, tok(p, 0), "missing element type in tile type");
      err(p, tok(p, 0), "expected ',' after tile dimension");
    }
  }
  expect(p, '>', "expected '>' after tile element type");
  p->nest--;
  return ir_type_tile(p->a, elem, rank, dims);
}

static const ir_type *parse_type(parser *p) {
  ir_token *t = tok(p, 0);
  if (iskw(t, "tile"))
    return parse_tile(p);
  if (iskw(t, "ptr"))
    return parse_ptr(p);
  if (iskw(t, "tensor"))
    err(p, t, "tensor types appear only in args");
  return parse_base(p, "a type");
}

/* A comma-separated list of types pushed on p->ts; returns how many. */
static int typelist(parser *p) {
  int n = 0;
  do {
    if (n == IR_MAX_OPERANDS)
      limit(p, tok(p, 0), "more than %d result types", IR_MAX_OPERANDS);
    const ir_type *t = parse_type(p);
    p->ts = grow(p, p->ts, &p->capts, p->nts + 1, sizeof *p->ts);
    p->ts[p->nts++] = t;
    n++;
  } while (accept(p, ','));
  return n;
}

/* ---- ops ------------------------------------------------------------------------------ */

static void parse_block(parser *p, bool region);

static void addop(parser *p, int *n, ir_value *v, const ir_token *at) {
  if (*n == IR_MAX_OPERANDS)
    limit(p, at, "more than %d operands", IR_MAX_OPERANDS);
  p->opnd[(*n)++] = v;
}

static void operand(parser *p, int *n) {
  ir_token t = *tok(p, 0);
  addop(p, n, value(p), &t);
}

/* The error for a missing ',' before syntax item c of op code. */
static _Noreturn void noseparator(parser *p, ir_opcode code, char c) {
  const char *syn = ir_ops[code].syntax;
  if (c == 'v' || c == 'T' || c == '*') {
    int nv = 0;
    for (const char *s = syn; *s; s++)
      nv += *s == 'v' || *s == 'T';
    err(p, tok(p, 0), "'%s' expects %s%d operand%s", ir_ops[code].keyword,
        strchr(syn, '*') ? "at least " : "", nv, nv == 1 ? "" : "s");
  }
  err(p, tok(p, 0), "expected ',' before %s", c == 'i' ? "integer attribute" : "expression");
}

static int subkw(parser *p, ir_opcode code) {
  bool red = code == IR_OP_REDUCE;
  ir_token *t = tok(p, 0);
  if (t->kind != TK_IDENT)
    err(p, t, red ? "expected reduction kind" : "expected comparison predicate");
  int n = red ? 3 : 6;
  for (int i = 0; i < n; i++) {
    const char *name = red ? ir_red_name(i) : ir_cmp_name(i);
    if (iskw(t, name)) {
      take(p);
      return i;
    }
  }
  err(p, t, red ? "unknown reduction '%.*s'" : "unknown comparison '%.*s'", t->len, t->s);
}

/* An op whose items follow its ops.def syntax string; results are names[base..base+nres). */
static void parse_simple(parser *p, ir_opcode code, const ir_token *optok, int base, int nres) {
  const ir_opinfo *info = &ir_ops[code];
  if (info->nres == 1 && nres == 0)
    err(p, optok, "missing result name for '%s'", info->keyword);
  if (info->nres == 1 && nres > 1)
    err(p, &p->names[base + 1], "'%s' has one result", info->keyword);
  if (info->nres == 0 && nres > 0)
    err(p, &p->names[base], "'%s' has no result", info->keyword);
  int n = 0, na = 0, ne = 0, sub = 0; /* ops.def has at most two 'i' and two 'e' items */
  int64_t attr[2] = {0, 0};
  ir_expr *ex[2] = {NULL, NULL};
  bool first = true, nosep = false;
  for (const char *c = info->syntax; *c; c++) {
    if (*c == 'f') {
      if (iskw(tok(p, 0), "fill")) {
        take(p);
        ex[1] = parse_expr(p);
      }
      continue;
    }
    if (*c == '*') {
      bool more = first ? is(p, TK_VALUE) : accept(p, ',');
      while (more) {
        operand(p, &n);
        more = accept(p, ',');
      }
      continue;
    }
    if (!first && !nosep && !accept(p, ','))
      noseparator(p, code, *c);
    first = false;
    nosep = false;
    ir_token t;
    switch (*c) {
    case 'v':
      operand(p, &n);
      break;
    case 'i':
      attr[na++ & 1] = intlit(p, "expected an integer", &t);
      break;
    case 'e':
      ex[ne++ & 1] = parse_expr(p);
      break;
    case 's':
      sub = subkw(p, code);
      nosep = true;
      break;
    case 'T':
      if (!is(p, TK_VALUE))
        err(p, tok(p, 0), "expected a tensor operand");
      operand(p, &n);
      expect(p, '[', "expected '[' after tensor operand");
      p->nest++;
      do
        operand(p, &n);
      while (accept(p, ','));
      expect(p, ']', "expected ',' or ']' after index");
      p->nest--;
      break;
    default:
      err(p, optok, "op '%s' has an unknown syntax item '%c'", info->keyword, *c);
    }
  }
  if (is(p, ',')) {
    if (strchr(info->syntax, '*')) /* only an empty list can leave a ',' behind */
      err(p, tok(p, 0), "expected a value before ','");
    noseparator(p, code, 'v');
  }
  const ir_type *rt = NULL;
  if (info->nres == 1) {
    expect(p, ':', "expected ':' before result type");
    rt = parse_type(p);
  }
  if (code == IR_OP_YIELD) {
    if (p->want < 0)
      err(p, optok, "'yield' outside a region");
    if (n != p->want)
      err(p, optok, "'yield' passes %d value%s, expected %d", n, n == 1 ? "" : "s", p->want);
  }
  endline(p, "op");
  irb_at(p->b, locof(p, optok->line, optok->col));
  ir_op *op = irb_op(p->b, code, p->opnd, n, &rt, info->nres);
  checkb(p);
  op->sub = sub;
  op->attr[0] = attr[0];
  op->attr[1] = attr[1];
  op->ex[0] = ex[0];
  op->ex[1] = ex[1];
  if (info->nres == 1)
    define(p, &p->names[base], op->results[0]);
}

static void enterregion(parser *p, const ir_token *optok) {
  if (++p->depth > IR_MAX_DEPTH)
    limit(p, optok, "regions nested deeper than %d", IR_MAX_DEPTH);
}

/* Result names must be fresh and distinct; checked before the region is parsed. */
static void checkresults(parser *p, int base, int nres) {
  for (int i = 0; i < nres; i++) {
    nameref *n = &p->names[base + i];
    checkfresh(p, n);
    for (int j = 0; j < i; j++)
      if (p->names[base + j].len == n->len && !memcmp(p->names[base + j].s, n->s, (size_t)n->len))
        err(p, n, "'%%%.*s' redefined (first defined at %d:%d)", n->len, n->s,
            p->names[base + j].line, p->names[base + j].col);
  }
}

static void pushname(parser *p, const ir_token *t) {
  p->names = grow(p, p->names, &p->capnames, p->nnames + 1, sizeof *p->names);
  p->names[p->nnames++] = nameof(t);
}

/* Parses the region's statements and its '}', with yields passing want values. */
static void region(parser *p, int want) {
  int mark = p->vals.n, saved = p->want;
  p->want = want;
  parse_block(p, true);
  p->want = saved;
  scope_pop(&p->vals, mark);
}

/* %r.. = for %iv = %lo to %hi step %st [iter(%a = %x, ...) : T, ...] { ... } */
static void parse_for(parser *p, const ir_token *optok, int base, int nres) {
  ir_token iv = expect(p, TK_VALUE, "expected induction variable after 'for'");
  expect(p, '=', "expected '=' after induction variable");
  ir_value *lo = value(p);
  if (!iskw(tok(p, 0), "to"))
    err(p, tok(p, 0), "expected 'to' after lower bound");
  take(p);
  ir_value *hi = value(p);
  if (!iskw(tok(p, 0), "step"))
    err(p, tok(p, 0), "expected 'step' after upper bound");
  take(p);
  ir_value *st = value(p);
  int nbase = p->nnames, vbase = p->nvs, tbase = p->nts, ni = 0;
  pushname(p, &iv);
  if (iskw(tok(p, 0), "iter")) {
    take(p);
    expect(p, '(', "expected '(' after 'iter'");
    p->nest++;
    do {
      if (ni == IR_MAX_OPERANDS - 3)
        limit(p, tok(p, 0), "more than %d loop-carried values", IR_MAX_OPERANDS - 3);
      ir_token n = expect(p, TK_VALUE, "expected iter value name");
      pushname(p, &n);
      expect(p, '=', "expected '=' after iter value name");
      ir_value *init = value(p);
      p->vs = grow(p, p->vs, &p->capvs, p->nvs + 1, sizeof *p->vs);
      p->vs[p->nvs++] = init;
      ni++;
    } while (accept(p, ','));
    expect(p, ')', "expected ',' or ')' in iter list");
    p->nest--;
  }
  if (ni > 0) {
    ir_token colon = expect(p, ':', "expected ':' before result types");
    int nt = typelist(p);
    if (nt != ni)
      err(p, &colon, "'for' has %d iter value%s but %d result type%s", ni, ni == 1 ? "" : "s", nt,
          nt == 1 ? "" : "s");
  } else if (is(p, ':')) {
    err(p, tok(p, 0), "'for' without iter values has no result types");
  }
  if (nres != ni)
    err(p, optok, "'for' has %d iter value%s but %d result%s", ni, ni == 1 ? "" : "s", nres,
        nres == 1 ? "" : "s");
  checkresults(p, base, nres);
  enterregion(p, optok);
  expect(p, '{', "expected '{' to open the loop body");
  irb_at(p->b, locof(p, optok->line, optok->col));
  ir_op *op = irb_for(p->b, lo, hi, st, ni ? &p->vs[vbase] : NULL, ni, ni ? &p->ts[tbase] : NULL);
  checkb(p);
  p->nvs = vbase;
  p->nts = tbase;
  int mark = p->vals.n;
  for (int i = 0; i <= ni; i++)
    define(p, &p->names[nbase + i], op->regions[0]->args[i]);
  region(p, ni);
  scope_pop(&p->vals, mark);
  p->nnames = nbase;
  irb_end(p->b);
  checkb(p);
  p->depth--;
  for (int i = 0; i < nres; i++)
    define(p, &p->names[base + i], op->results[i]);
  endline(p, "'}'");
}

/* %r.. = if %c [: T, ...] { ... } [else { ... }] */
static void parse_if(parser *p, const ir_token *optok, int base, int nres) {
  if (!is(p, TK_VALUE))
    err(p, tok(p, 0), "expected a condition value after 'if'");
  ir_value *cond = value(p);
  int tbase = p->nts, nt = 0;
  if (accept(p, ':'))
    nt = typelist(p);
  if (nres > 0 && nt == 0)
    err(p, tok(p, 0), "expected ':' before result types");
  if (nt != nres)
    err(p, optok, "'if' has %d result type%s but %d result%s", nt, nt == 1 ? "" : "s", nres,
        nres == 1 ? "" : "s");
  checkresults(p, base, nres);
  enterregion(p, optok);
  expect(p, '{', "expected '{' to open the 'if' region");
  irb_at(p->b, locof(p, optok->line, optok->col));
  ir_op *op = irb_if(p->b, cond, nt ? &p->ts[tbase] : NULL, nt);
  checkb(p);
  p->nts = tbase;
  region(p, nt);
  if (iskw(tok(p, 0), "else")) {
    take(p);
    expect(p, '{', "expected '{' after 'else'");
    irb_else(p->b);
    checkb(p);
    region(p, nt);
  } else if (nt > 0) {
    err(p, optok, "'if' with results needs an 'else'");
  }
  irb_end(p->b);
  checkb(p);
  p->depth--;
  for (int i = 0; i < nres; i++)
    define(p, &p->names[base + i], op->results[i]);
  endline(p, "'}'");
}

/* One statement: [%r, ... =] KEYWORD ITEMS [: TYPE]. Returns its opcode. */
static ir_opcode parse_stmt(parser *p) {
  int base = p->nnames, nres = 0;
  if (is(p, TK_VALUE)) {
    do {
      ir_token t = expect(p, TK_VALUE, "expected result name");
      if (nres == IR_MAX_OPERANDS)
        limit(p, &t, "more than %d results", IR_MAX_OPERANDS);
      pushname(p, &t);
      nres++;
    } while (accept(p, ','));
    expect(p, '=', "expected '=' after result names");
  }
  ir_token optok = *tok(p, 0);
  if (optok.kind != TK_IDENT)
    err(p, &optok, nres ? "expected op name after '='" : "expected an op");
  if (iskw(&optok, "else"))
    err(p, &optok, "'else' must follow '}' on the same line");
  ir_opcode code = ir_opcode_from_name(optok.s, (size_t)optok.len);
  if (code == IR_NOPS)
    err(p, &optok, "unknown op '%.*s'", optok.len, optok.s);
  if (++p->nops > IR_MAX_OPS)
    limit(p, &optok, "more than %d ops", IR_MAX_OPS);
  take(p);
  if (code == IR_OP_FOR)
    parse_for(p, &optok, base, nres);
  else if (code == IR_OP_IF)
    parse_if(p, &optok, base, nres);
  else
    parse_simple(p, code, &optok, base, nres);
  p->nnames = base;
  return code;
}

/* Statements up to and including the closing '}' (the '{' is taken). */
static void parse_block(parser *p, bool region) {
  bool yielded = false;
  for (;;) {
    skipnl(p);
    ir_token *t = tok(p, 0);
    if (t->kind == '}')
      break;
    if (t->kind == TK_EOF)
      err(p, t, region ? "missing '}' at end of region" : "missing '}' at end of kernel body");
    if (yielded)
      err(p, t, "'yield' must be the last op of its region");
    yielded = parse_stmt(p) == IR_OP_YIELD;
  }
  if (region && !yielded)
    err(p, tok(p, 0), "region must end with 'yield'");
  take(p);
}

/* ---- header sections ------------------------------------------------------------------ */

/* types { T in [k, ...] ... } */
static void parse_types(parser *p) {
  expect(p, '{', "expected '{' after 'types'");
  for (;;) {
    skipnl(p);
    if (accept(p, '}'))
      break;
    ir_token name = expect(p, TK_IDENT, "expected type variable name");
    nameref n = nameof(&name);
    checknew(p, &n);
    if (!iskw(tok(p, 0), "in"))
      err(p, tok(p, 0), "expected 'in' after type variable name");
    take(p);
    expect(p, '[', "expected '[' before type choices");
    p->nest++;
    ir_kind ch[IR_NSCALAR];
    int nch = 0;
    do {
      ir_token c = expect(p, TK_IDENT, "expected a scalar type");
      ir_kind k = ir_kind_from_name(c.s, (size_t)c.len);
      if (k == IR_VOID)
        err(p, &c, "unknown scalar type '%.*s'", c.len, c.s);
      for (int i = 0; i < nch; i++)
        if (ch[i] == k)
          err(p, &c, "'%.*s' listed twice", c.len, c.s);
      ch[nch++] = k;
    } while (accept(p, ','));
    expect(p, ']', "expected ',' or ']' in type choices");
    p->nest--;
    char buf[IR_MAX_NAME + 1];
    irb_at(p->b, locof(p, n.line, n.col));
    irb_tvar(p->b, cstr(&n, buf), ch, nch);
    checkb(p);
    endline(p, "type variable");
  }
  endline(p, "'}'");
}

/* tunables { NAME = DEFAULT in [V, ...] ... } */
static void parse_tunables(parser *p) {
  expect(p, '{', "expected '{' after 'tunables'");
  for (;;) {
    skipnl(p);
    if (accept(p, '}'))
      break;
    ir_token name = expect(p, TK_IDENT, "expected tunable name");
    nameref n = nameof(&name);
    checknew(p, &n);
    expect(p, '=', "expected '=' after tunable name");
    ir_token deft, vt;
    int64_t def = intlit(p, "expected integer default", &deft);
    if (!iskw(tok(p, 0), "in"))
      err(p, tok(p, 0), "expected 'in' after tunable default");
    take(p);
    expect(p, '[', "expected '[' before tunable domain");
    p->nest++;
    int64_t dom[IR_MAX_DOMAIN];
    int nd = 0;
    bool found = false;
    do {
      if (nd == IR_MAX_DOMAIN)
        limit(p, tok(p, 0), "tunable domain has more than %d values", IR_MAX_DOMAIN);
      int64_t v = intlit(p, "expected integer in tunable domain", &vt);
      for (int i = 0; i < nd; i++)
        if (dom[i] == v)
          err(p, &vt, "%lld listed twice in domain", (long long)v);
      found |= v == def;
      dom[nd++] = v;
    } while (accept(p, ','));
    expect(p, ']', "expected ',' or ']' in tunable domain");
    p->nest--;
    if (!found)
      err(p, &deft, "default %lld is not in the domain of '%.*s'", (long long)def, n.len, n.s);
    char buf[IR_MAX_NAME + 1];
    irb_at(p->b, locof(p, n.line, n.col));
    irb_tunable(p->b, cstr(&n, buf), def, dom, nd);
    checkb(p);
    endline(p, "tunable");
  }
  endline(p, "'}'");
}

/* constraints { EXPR ... }: symbols may be const parameters declared later, in args. */
static void parse_constraints(parser *p) {
  expect(p, '{', "expected '{' after 'constraints'");
  for (;;) {
    skipnl(p);
    if (accept(p, '}'))
      break;
    p->defer = true;
    ir_expr *e = parse_expr(p);
    p->defer = false;
    p->cons = grow(p, p->cons, &p->capcons, p->ncons + 1, sizeof *p->cons);
    p->cons[p->ncons++] = e;
    endline(p, "constraint");
  }
  endline(p, "'}'");
}

static void resolve_constraints(parser *p) {
  for (int i = 0; i < p->nfix; i++) {
    nameref *n = &p->fix[i].name;
    int s = ir_sym_find(kern(p), n->s, (size_t)n->len);
    if (s < 0)
      err(p, n, "unknown symbol '%.*s'", n->len, n->s);
    p->fix[i].e->sym = s;
  }
  for (int i = 0; i < p->ncons; i++) {
    irb_at(p->b, p->cons[i]->loc);
    irb_constraint(p->b, p->cons[i]);
    checkb(p);
  }
}

static void tensor_arg(parser *p, const nameref *n, ir_arg_dir dir) {
  take(p);
  expect(p, '<', "expected '<' after 'tensor'");
  p->nest++;
  const ir_type *elem = parse_base(p, "a tensor element type");
  expect(p, '>', "expected '>' after tensor element type");
  p->nest--;
  expect(p, '[', "expected '[' after tensor type");
  p->nest++;
  char dimbuf[IR_MAX_RANK][IR_MAX_NAME + 1];
  const char *dims[IR_MAX_RANK];
  int rank = 0;
  do {
    ir_token *t = tok(p, 0);
    if (rank == IR_MAX_RANK)
      limit(p, t, "tensor rank exceeds %d", IR_MAX_RANK);
    if (t->kind == TK_IDENT) {
      nameref dn = nameof(t);
      if (reserved(&dn))
        err(p, t, "'%.*s' is a reserved name", t->len, t->s);
      if (ir_tvar_find(kern(p), t->s, (size_t)t->len) >= 0)
        err(p, t, "type variable '%.*s' used as a dim", t->len, t->s);
      dims[rank] = cstr(&dn, dimbuf[rank]);
    } else if (t->kind == TK_INT) {
      snprintf(dimbuf[rank], sizeof dimbuf[rank], "%llu", (unsigned long long)t->u);
      dims[rank] = dimbuf[rank];
    } else {
      err(p, t, "tensor dim must be a symbol or an integer");
    }
    rank++;
    take(p);
  } while (accept(p, ','));
  expect(p, ']', "expected ',' or ']' after tensor dim");
  p->nest--;
  char buf[IR_MAX_NAME + 1];
  irb_at(p->b, locof(p, n->line, n->col));
  ir_value *v = irb_tensor_arg(p->b, cstr(n, buf), dir, elem, rank, dims);
  checkb(p);
  define(p, n, v);
}

/* %A: [out|inout] tensor<T>[D, ...] | %p: ptr<T> | name: [const] T [= V] */
static void parse_arg(parser *p) {
  ir_token t = *tok(p, 0);
  nameref n = nameof(&t);
  if (t.kind == TK_VALUE) {
    take(p);
    checkfresh(p, &n);
    expect(p, ':', "expected ':' after argument name");
    ir_arg_dir dir = ARG_IN;
    if (iskw(tok(p, 0), "out") || iskw(tok(p, 0), "inout")) {
      dir = iskw(tok(p, 0), "out") ? ARG_OUT : ARG_INOUT;
      take(p);
      if (!iskw(tok(p, 0), "tensor"))
        err(p, tok(p, 0), "expected 'tensor' after direction");
    }
    if (iskw(tok(p, 0), "tensor")) {
      tensor_arg(p, &n, dir);
    } else if (iskw(tok(p, 0), "ptr")) {
      const ir_type *pt = parse_ptr(p);
      char buf[IR_MAX_NAME + 1];
      irb_at(p->b, locof(p, n.line, n.col));
      ir_value *v = irb_ptr_arg(p->b, cstr(&n, buf), pt->elem);
      checkb(p);
      define(p, &n, v);
    } else {
      err(p, tok(p, 0), "expected 'tensor' or 'ptr' type");
    }
    return;
  }
  if (t.kind != TK_IDENT)
    err(p, &t, "expected an argument");
  take(p);
  checknew(p, &n);
  expect(p, ':', "expected ':' after parameter name");
  bool isconst = iskw(tok(p, 0), "const");
  if (isconst)
    take(p);
  ir_token ty = *tok(p, 0);
  ir_kind k = ty.kind == TK_IDENT ? ir_kind_from_name(ty.s, (size_t)ty.len) : IR_VOID;
  if (k == IR_VOID)
    err(p, &ty, "expected a scalar type for parameter '%.*s'", n.len, n.s);
  take(p);
  ir_num def = {0};
  bool hasdef = false;
  if (is(p, '=')) {
    if (!isconst)
      err(p, tok(p, 0), "only const parameters take a default");
    take(p);
    bool neg = is(p, '-');
    if (!isnum(tok(p, neg ? 1 : 0)))
      err(p, tok(p, neg ? 1 : 0), "expected a number after '='");
    ir_expr *e = number(p, neg).e;
    def = e->kind == EX_INT ? (ir_num){.i = e->i} : (ir_num){.isf = true, .f = e->f};
    hasdef = true;
  }
  char buf[IR_MAX_NAME + 1];
  irb_at(p->b, locof(p, n.line, n.col));
  irb_param(p->b, cstr(&n, buf), k, isconst, hasdef ? &def : NULL);
  checkb(p);
}

static void parse_args(parser *p) {
  expect(p, '(', "expected '(' after 'args'");
  p->nest++;
  if (!is(p, ')')) {
    do
      parse_arg(p);
    while (accept(p, ','));
  }
  expect(p, ')', "expected ',' or ')' after argument");
  p->nest--;
  endline(p, "args");
}

static void parse_grid(parser *p, const ir_token *kw) {
  expect(p, '(', "expected '(' after 'grid'");
  p->nest++;
  ir_expr *g[3];
  int n = 0;
  do {
    if (n == 3)
      err(p, tok(p, 0), "grid has more than 3 dimensions");
    g[n++] = parse_expr(p);
  } while (accept(p, ','));
  expect(p, ')', "expected ',' or ')' in grid");
  p->nest--;
  irb_at(p->b, locof(p, kw->line, kw->col));
  irb_grid(p->b, n, g);
  checkb(p);
  endline(p, "grid");
}

/* buckets { NAME = exact | pow2 | multiple(N) | any ... }: NAME is a dim or runtime parameter. */
static void parse_buckets(parser *p) {
  expect(p, '{', "expected '{' after 'buckets'");
  for (;;) {
    skipnl(p);
    if (accept(p, '}'))
      break;
    ir_token name = expect(p, TK_IDENT, "expected a dim or parameter name");
    nameref n = nameof(&name);
    expect(p, '=', "expected '=' after bucket name");
    ir_token kind = expect(p, TK_IDENT, "expected exact, pow2, multiple(N) or any");
    ir_bucket_kind bk;
    int64_t arg = 0;
    if (iskw(&kind, "exact")) {
      bk = IR_BUCKET_EXACT;
    } else if (iskw(&kind, "pow2")) {
      bk = IR_BUCKET_POW2;
    } else if (iskw(&kind, "any")) {
      bk = IR_BUCKET_ANY;
    } else if (iskw(&kind, "multiple")) {
      bk = IR_BUCKET_MULTIPLE;
      expect(p, '(', "expected '(' after 'multiple'");
      p->nest++;
      ir_token at;
      arg = intlit(p, "expected the integer step of multiple(N)", &at);
      if (arg < 1)
        err(p, &at, "multiple(N) needs N >= 1");
      expect(p, ')', "expected ')' after the step");
      p->nest--;
    } else {
      err(p, &kind, "unknown bucket '%.*s' (expected exact, pow2, multiple(N) or any)", kind.len,
          kind.s);
    }
    char buf[IR_MAX_NAME + 1];
    irb_at(p->b, locof(p, n.line, n.col));
    irb_bucket(p->b, cstr(&n, buf), bk, arg);
    checkb(p);
    endline(p, "bucket");
  }
  endline(p, "'}'");
}

static const char *const section_names[] = {"types", "tunables", "constraints",
                                            "args",  "grid",     "buckets"};
enum { NSECTIONS = 6, SEC_ARGS = 3, SEC_GRID = 4, SEC_BUCKETS = 5 };

static int sectionof(const ir_token *t) {
  for (int i = 0; i < NSECTIONS; i++)
    if (iskw(t, section_names[i]))
      return i;
  return -1;
}

static void parse_kernel(parser *p) {
  skipnl(p);
  if (!iskw(tok(p, 0), "kernel"))
    err(p, tok(p, 0), "expected 'kernel' at start of file");
  take(p);
  ir_token name = expect(p, TK_IDENT, "expected kernel name after 'kernel'");
  char buf[IR_MAX_NAME + 1];
  nameref n = nameof(&name);
  p->b = irb_new(cstr(&n, buf), p->file);
  if (!p->b)
    errat(p, IR_ERR_LIMIT, 0, 0, "out of memory");
  irb_source(p->b, p->src, p->len);
  p->a = irb_arena(p->b);
  p->kfile = kern(p)->file;
  endline(p, "kernel name");
  bool seen[NSECTIONS] = {false};
  ir_token *t;
  for (;;) {
    skipnl(p);
    t = tok(p, 0);
    int s = sectionof(t);
    if (s < 0)
      break;
    if (seen[s])
      err(p, t, "duplicate '%s' section", section_names[s]);
    for (int j = s + 1; j < NSECTIONS; j++)
      if (seen[j])
        err(p, t, "'%s' section must come before '%s'", section_names[s], section_names[j]);
    if (s == SEC_GRID && !seen[SEC_ARGS])
      err(p, t, "expected 'args' section before 'grid'");
    if (s == SEC_BUCKETS && !seen[SEC_GRID])
      err(p, t, "expected 'grid' section before 'buckets'");
    seen[s] = true;
    ir_token kw = take(p);
    switch (s) {
    case 0:
      parse_types(p);
      break;
    case 1:
      parse_tunables(p);
      break;
    case 2:
      parse_constraints(p);
      break;
    case SEC_ARGS:
      parse_args(p);
      resolve_constraints(p);
      break;
    case SEC_GRID:
      parse_grid(p, &kw);
      break;
    default:
      parse_buckets(p);
      break;
    }
  }
  if (!seen[SEC_ARGS])
    err(p, t, "expected 'args' section");
  if (!seen[SEC_GRID])
    err(p, t, "expected 'grid' section");
  expect(p, '{', "expected '{' before kernel body");
  parse_block(p, false);
  skipnl(p);
  if (!is(p, TK_EOF)) {
    char what[48];
    err(p, tok(p, 0), "unexpected %s after kernel body",
        ir_tok_describe(tok(p, 0), what, sizeof what));
  }
}

static void freeparser(parser *p) {
  free(p->vals.e);
  free(p->vals.heads);
  free(p->fix);
  free(p->cons);
  free(p->names);
  free(p->vs);
  free(p->ts);
  free((char *)p->src);
  free(p);
}

/* Parses the kernel; errors unwind to here. Nothing but p is live across setjmp. */
static ir_status run(parser *p, ir_kernel **out) {
  if (setjmp(p->jb) == 0) {
    parse_kernel(p);
    return irb_finish(p->b, out, p->d);
  }
  if (p->bfail)
    return irb_finish(p->b, out, p->d);
  irb_abort(p->b);
  return p->d->status;
}

ir_status ir_parse(const char *text, size_t len, const char *file, ir_kernel **out, ir_diag *d) {
  ir_diag local;
  if (!d)
    d = &local;
  d->status = IR_OK;
  d->msg[0] = '\0';
  *out = NULL;
  if (!file)
    file = "<input>";
  if (len > IR_MAX_FILE_BYTES)
    return ir_error(d, IR_ERR_LIMIT, (ir_loc){file, 1, 1}, NULL, "source larger than %d bytes",
                    IR_MAX_FILE_BYTES);
  parser *p = calloc(1, sizeof *p);
  char *src = malloc(len + 1);
  unsigned nb = 64;
  while (nb < len / 16 && nb < (1u << 16))
    nb *= 2;
  int *heads = malloc(sizeof(int) * nb);
  if (!p || !src || !heads) {
    free(p);
    free(src);
    free(heads);
    return ir_error(d, IR_ERR_LIMIT, (ir_loc){file, 0, 0}, NULL, "out of memory");
  }
  if (len)
    memcpy(src, text, len);
  src[len] = '\0';
  for (unsigned i = 0; i < nb; i++)
    heads[i] = -1;
  p->vals.heads = heads;
  p->vals.mask = nb - 1;
  p->src = src;
  p->len = len;
  p->file = file;
  p->d = d;
  p->want = -1;
  ir_lex_init(&p->lx, src, len, file, d);
  ir_status st = run(p, out);
  freeparser(p);
  return st;
}
