/* ir/lex.c — the lexer of the tile IR text form (first step of ir_parse).
 *
 * Tokens are made on demand: the parser asks for one at a time and keeps a small lookahead.
 * The lexer never allocates; tokens point into the source. Whitespace is space, tab and CR;
 * `#` starts a comment that runs to the end of the line; any byte outside comments that cannot
 * start a token (non-ASCII, control bytes, `$`, a lone `&`...) is a located error, and a NUL
 * byte is an error anywhere. Numbers are decimal: `12`, `1.5`, `1e-3`, `2.5E+10`; `inf` and
 * `nan` are identifiers that the expression parser treats as floats.
 */
#include "lex.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_NUMBER_BYTES = 128 }; /* longest numeric literal; %.17g needs about 25 */

void ir_lex_init(ir_lexer *lx, const char *src, size_t len, const char *file, ir_diag *d) {
  lx->src = src;
  lx->len = len;
  lx->pos = 0;
  lx->line = 1;
  lx->col = 1;
  lx->file = file;
  lx->d = d;
}

void ir_lex_seek(ir_lexer *lx, size_t pos, int line, int col) {
  lx->pos = pos;
  lx->line = line;
  lx->col = col;
}

static bool isdigitc(int c) { return c >= '0' && c <= '9'; }
static bool isalphac(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool isidentc(int c) { return isalphac(c) || isdigitc(c); }
static bool isnamec(int c) { return isidentc(c) || c == '.'; }

/* The byte at pos + k, or 0 past the end (the copy is NUL-terminated anyway). */
static int at(const ir_lexer *lx, size_t k) {
  return lx->pos + k < lx->len ? (unsigned char)lx->src[lx->pos + k] : 0;
}

static void advance(ir_lexer *lx, size_t n) {
  lx->pos += n;
  lx->col += (int)n;
}

static ir_status fail(ir_lexer *lx, ir_status s, int line, int col, const char *msg) {
  ir_loc loc = {lx->file, line, col};
  return ir_error(lx->d, s, loc, lx->src, "%s", msg);
}

/* Skips spaces and comments; stops at a newline, a token, the end, or a bad byte. Returns the
 * column of the first comment passed over (0 if none) so a TK_NL can point at it. */
static int skipspace(ir_lexer *lx) {
  int comment = 0;
  for (;;) {
    int c = at(lx, 0);
    if (lx->pos >= lx->len)
      return comment;
    if (c == ' ' || c == '\t' || c == '\r') {
      advance(lx, 1);
    } else if (c == '#') {
      if (!comment)
        comment = lx->col;
      while (lx->pos < lx->len && lx->src[lx->pos] != '\n' && lx->src[lx->pos] != '\0')
        advance(lx, 1);
    } else {
      return comment;
    }
  }
}

/* A run of newlines, blanks and comments, from the '\n' at pos. */
static ir_status lexnl(ir_lexer *lx, ir_token *t) {
  t->kind = TK_NL;
  while (lx->pos < lx->len && lx->src[lx->pos] == '\n') {
    lx->pos++;
    lx->line++;
    lx->col = 1;
    skipspace(lx);
  }
  t->len = (int)(lx->src + lx->pos - t->s);
  return IR_OK;
}

static ir_status lexnumber(ir_lexer *lx, ir_token *t) {
  size_t n = 0;
  bool isf = false;
  while (isdigitc(at(lx, n)))
    n++;
  if (at(lx, n) == '.' && isdigitc(at(lx, n + 1))) {
    isf = true;
    n++;
    while (isdigitc(at(lx, n)))
      n++;
  }
  if (at(lx, n) == 'e' || at(lx, n) == 'E') {
    size_t k = n + 1;
    if (at(lx, k) == '+' || at(lx, k) == '-')
      k++;
    if (isdigitc(at(lx, k))) {
      isf = true;
      n = k;
      while (isdigitc(at(lx, n)))
        n++;
    }
  }
  if (isnamec(at(lx, n)))
    return fail(lx, IR_ERR_PARSE, t->line, t->col, "malformed number");
  if (n > MAX_NUMBER_BYTES)
    return fail(lx, IR_ERR_LIMIT, t->line, t->col, "number longer than 128 bytes");
  t->len = (int)n;
  if (isf) {
    char buf[MAX_NUMBER_BYTES + 1];
    memcpy(buf, t->s, n);
    buf[n] = '\0';
    errno = 0;
    t->kind = TK_FLOAT;
    t->f = strtod(buf, NULL);
    if (errno == ERANGE && (t->f > 1.0 || t->f < -1.0))
      return fail(lx, IR_ERR_PARSE, t->line, t->col, "float literal out of range");
  } else {
    uint64_t v = 0;
    const uint64_t lim = (uint64_t)1 << 63;
    for (size_t i = 0; i < n; i++) {
      unsigned dig = (unsigned)(t->s[i] - '0');
      if (v > (lim - dig) / 10)
        return fail(lx, IR_ERR_PARSE, t->line, t->col, "integer literal out of range");
      v = v * 10 + dig;
    }
    t->kind = TK_INT;
    t->u = v;
  }
  advance(lx, n);
  return IR_OK;
}

static ir_status lexname(ir_lexer *lx, ir_token *t, int kind, size_t start) {
  size_t n = start;
  while (kind == TK_VALUE ? isnamec(at(lx, n)) : isidentc(at(lx, n)))
    n++;
  if (n - start > IR_MAX_NAME)
    return fail(lx, IR_ERR_LIMIT, t->line, t->col,
                kind == TK_VALUE ? "value name longer than 128 bytes"
                                 : "identifier longer than 128 bytes");
  t->kind = kind;
  t->len = (int)n;
  advance(lx, n);
  return IR_OK;
}

/* Two-character operators, then single characters that are tokens by themselves. */
static int punct2(int c0, int c1) {
  static const struct {
    char a, b;
    int kind;
  } ops[] = {{'<', '=', TK_LE}, {'>', '=', TK_GE},  {'=', '=', TK_EQ},
             {'!', '=', TK_NE}, {'&', '&', TK_AND}, {'|', '|', TK_OR}};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (ops[i].a == c0 && ops[i].b == c1)
      return ops[i].kind;
  return 0;
}

ir_status ir_lex_next(ir_lexer *lx, ir_token *t) {
  int comment = skipspace(lx);
  memset(t, 0, sizeof *t);
  t->s = lx->src + lx->pos;
  t->line = lx->line;
  t->col = lx->col;
  if (lx->pos >= lx->len) {
    t->kind = TK_EOF;
    return IR_OK;
  }
  int c = at(lx, 0);
  if (c == '\n') {
    if (comment) {
      t->col = comment;
      t->s = lx->src + lx->pos - (lx->col - comment);
    }
    return lexnl(lx, t);
  }
  if (c == 0)
    return fail(lx, IR_ERR_PARSE, t->line, t->col, "NUL byte in source");
  if (isdigitc(c))
    return lexnumber(lx, t);
  if (isalphac(c))
    return lexname(lx, t, TK_IDENT, 0);
  if (c == '%' && isnamec(at(lx, 1)))
    return lexname(lx, t, TK_VALUE, 1);
  int k2 = punct2(c, at(lx, 1));
  if (k2) {
    t->kind = k2;
    t->len = 2;
    advance(lx, 2);
    return IR_OK;
  }
  if (strchr("()[]{}<>,:=+-*/%!", c)) {
    t->kind = c;
    t->len = 1;
    advance(lx, 1);
    return IR_OK;
  }
  char msg[40];
  if (c > ' ' && c < 127)
    snprintf(msg, sizeof msg, "invalid character '%c'", c);
  else
    snprintf(msg, sizeof msg, "invalid byte 0x%02x", (unsigned)c);
  return fail(lx, IR_ERR_PARSE, t->line, t->col, msg);
}

const char *ir_tok_describe(const ir_token *t, char *buf, size_t cap) {
  switch (t->kind) {
  case TK_EOF:
    snprintf(buf, cap, "end of file");
    break;
  case TK_NL:
    snprintf(buf, cap, "end of line");
    break;
  default:
    if (t->len > 32)
      snprintf(buf, cap, "'%.32s...'", t->s);
    else
      snprintf(buf, cap, "'%.*s'", t->len, t->s);
  }
  return buf;
}
