/* ir/lex.h — tokens of the tile IR text form (internal to ir/: the parser is the only user).
 *
 * The lexer turns source bytes into tokens on demand, one call per token, tracking line and
 * column (1-based, columns count bytes). Newlines are tokens (a run of newlines, blank lines and
 * comments is one TK_NL) because they end statements inside `{ }` sections; the parser decides
 * where they are insignificant. Errors (bad bytes, NUL, malformed numbers, overlong names) are
 * reported through ir_error with their location.
 */
#ifndef TILEC_IR_LEX_H
#define TILEC_IR_LEX_H

#include "ir.h"

/* Token kinds: a single punctuation character is its own kind ('(' ')' '[' ']' '{' '}' '<' '>'
 * ',' ':' '=' '+' '-' '*' '/' '%' '!'); everything else is numbered from 256. */
enum {
  TK_EOF = 256,
  TK_NL,    /* one or more line ends (with any comments and blank lines between them) */
  TK_IDENT, /* [A-Za-z_][A-Za-z0-9_]* */
  TK_VALUE, /* %name, name = [A-Za-z0-9_.]+ ; s points at '%' */
  TK_INT,   /* decimal integer, value in u (at most 2^63, so that -2^63 can be written) */
  TK_FLOAT, /* decimal with '.' or exponent, value in f */
  TK_LE,    /* <= */
  TK_GE,    /* >= */
  TK_EQ,    /* == */
  TK_NE,    /* != */
  TK_AND,   /* && */
  TK_OR,    /* || */
};

typedef struct ir_token {
  int kind;
  const char *s; /* first byte in the source */
  int len;       /* bytes */
  int line, col;
  uint64_t u; /* TK_INT */
  double f;   /* TK_FLOAT */
} ir_token;

typedef struct ir_lexer {
  const char *src; /* NUL-terminated copy of the text (for diagnostics) */
  size_t len;      /* bytes of text, not counting the terminator; NUL bytes inside are errors */
  size_t pos;
  int line, col;
  const char *file;
  ir_diag *d;
} ir_lexer;

/* Starts lexing src[0..len); src[len] must be '\0'. Errors go to d with file as location. */
void ir_lex_init(ir_lexer *lx, const char *src, size_t len, const char *file, ir_diag *d);

/* Reads the next token into t. Returns IR_OK, or the status of a located error written to the
 * lexer's diag (IR_ERR_PARSE, or IR_ERR_LIMIT for overlong names and numbers). */
ir_status ir_lex_next(ir_lexer *lx, ir_token *t);

/* Restarts lexing at byte pos, which is at line:col (used to split "%128" into '%' and 128). */
void ir_lex_seek(ir_lexer *lx, size_t pos, int line, int col);

/* Describes t for messages: "'foo'", "'%x'", "end of line", ... (truncated); returns buf. */
const char *ir_tok_describe(const ir_token *t, char *buf, size_t cap);

#endif
