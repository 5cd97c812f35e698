/* autotune/json.c — JSON text for the tuning database's export files (see json.h): a buffer
 * writer with lossless byte-string escapes, and a recursive-descent reader that builds a tree
 * with line and column in its error messages. */
#include "autotune/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer ------------------------------------------------------------------------------- */

static bool reserve(at_buf *b, size_t more) {
  if (b->oom)
    return false;
  if (b->n + more + 1 <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->n + more + 1)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  b->p = p;
  b->cap = cap;
  return true;
}

void at_buf_put(at_buf *b, const char *s, size_t n) {
  if (!reserve(b, n))
    return;
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

void at_buf_puts(at_buf *b, const char *s) { at_buf_put(b, s, strlen(s)); }

void at_buf_printf(at_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !reserve(b, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)n;
}

void at_buf_free(at_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when s[0] does not start one. Overlong
 * forms, surrogates and code points above U+10FFFF are invalid. */
static int utf8_len(const unsigned char *s) {
  unsigned c = s[0];
  int n;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    n = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    n = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    n = 4, cp = c & 0x07;
  else
    return 0;
  for (int i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

void at_json_str(at_buf *b, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  at_buf_put(b, "\"", 1);
  while (*p) {
    int n = utf8_len(p);
    if (n == 0) {
      at_buf_printf(b, "\\udc%02x", *p);
      p++;
    } else if (*p == '"' || *p == '\\') {
      at_buf_printf(b, "\\%c", *p);
      p++;
    } else if (*p < 0x20) {
      at_buf_printf(b, "\\u%04x", *p);
      p++;
    } else {
      at_buf_put(b, (const char *)p, (size_t)n);
      p += n;
    }
  }
  at_buf_put(b, "\"", 1);
}

void at_json_num(at_buf *b, double v) {
  if (!isfinite(v)) {
    at_buf_puts(b, "null");
    return;
  }
  char s[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(s, sizeof s, "%.*g", prec, v);
    if (strtod(s, NULL) == v)
      break;
  }
  at_buf_puts(b, s);
}

/* ---- reader ------------------------------------------------------------------------------- */

typedef struct {
  const char *s, *end, *p;
  at_err *e;
  at_status st; /* first error */
} reader;

enum { MAX_DEPTH = 64 };

static bool fail(reader *r, const char *what) {
  if (r->st == AT_OK) {
    int line = 1, col = 1;
    for (const char *q = r->s; q < r->p && q < r->end; q++, col++)
      if (*q == '\n')
        line++, col = 0;
    r->st = at_fail(r->e, AT_ERR_ARG, "line %d, column %d: %s", line, col, what);
  }
  return false;
}

static bool oom(reader *r) {
  if (r->st == AT_OK)
    r->st = at_fail(r->e, AT_ERR_OOM, "out of memory reading JSON");
  return false;
}

static void skip_ws(reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
    r->p++;
}

static int hex4(reader *r) {
  if (r->end - r->p < 4)
    return -1;
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = r->p[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0)
      return -1;
    v = v * 16 + d;
  }
  r->p += 4;
  return v;
}

static void put_utf8(at_buf *b, uint32_t cp) {
  char u[4];
  size_t n;
  if (cp < 0x80)
    u[0] = (char)cp, n = 1;
  else if (cp < 0x800)
    u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
  else if (cp < 0x10000)
    u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
    u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
  else
    u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
  at_buf_put(b, u, n);
}

/* Reads a string after its opening quote into a malloc'd NUL-terminated copy. */
static char *read_string(reader *r) {
  at_buf b = {0};
  at_buf_put(&b, "", 0);
  for (;;) {
    if (r->p >= r->end) {
      fail(r, "unterminated string");
      goto fail;
    }
    unsigned char c = (unsigned char)*r->p;
    if (c == '"') {
      r->p++;
      break;
    }
    if (c < 0x20) {
      fail(r, "control character in a string");
      goto fail;
    }
    if (c != '\\') {
      at_buf_put(&b, r->p++, 1);
      continue;
    }
    r->p++;
    char esc = r->p < r->end ? *r->p++ : 0;
    const char *simple = strchr("\"\\/bfnrt", esc);
    if (esc && simple) {
      static const char to[] = "\"\\/\b\f\n\r\t";
      at_buf_put(&b, &to[simple - "\"\\/bfnrt"], 1);
      continue;
    }
    if (esc != 'u') {
      fail(r, "unknown escape in a string");
      goto fail;
    }
    int u = hex4(r);
    if (u < 0) {
      fail(r, "bad \\u escape");
      goto fail;
    }
    if (u == 0) {
      fail(r, "\\u0000 in a string (keys never hold NUL)");
      goto fail;
    }
    if (u >= 0xdc80 && u <= 0xdcff) { /* an escaped raw byte (see json.h) */
      char byte = (char)(u - 0xdc00);
      at_buf_put(&b, &byte, 1);
      continue;
    }
    uint32_t cp = (uint32_t)u;
    if (u >= 0xd800 && u <= 0xdbff) {
      int lo = -1;
      if (r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u') {
        r->p += 2;
        lo = hex4(r);
      }
      if (lo < 0xdc00 || lo > 0xdfff) {
        fail(r, "unpaired surrogate in a string");
        goto fail;
      }
      cp = 0x10000 + (((uint32_t)u - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
    } else if (u >= 0xdc00 && u <= 0xdfff) {
      fail(r, "unpaired surrogate in a string");
      goto fail;
    }
    put_utf8(&b, cp);
  }
  if (b.oom) {
    oom(r);
    goto fail;
  }
  return b.p;
fail:
  at_buf_free(&b);
  return NULL;
}

static bool parse_value(reader *r, at_json *v, int depth);

/* Parses the items of an array or object after its opening bracket. */
static bool parse_items(reader *r, at_json *v, bool object, int depth) {
  int cap = 0;
  char close = object ? '}' : ']';
  skip_ws(r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    return true;
  }
  for (;;) {
    if (v->n == cap) {
      cap = cap ? cap * 2 : 8;
      at_json *items = realloc(v->items, (size_t)cap * sizeof *items);
      if (!items)
        return oom(r);
      v->items = items;
      if (object) {
        char **keys = realloc(v->keys, (size_t)cap * sizeof *keys);
        if (!keys)
          return oom(r);
        v->keys = keys;
      }
    }
    at_json *item = &v->items[v->n];
    memset(item, 0, sizeof *item);
    skip_ws(r);
    if (object) {
      if (r->p >= r->end || *r->p != '"')
        return fail(r, "expected a member name");
      r->p++;
      char *key = read_string(r);
      if (!key)
        return false;
      v->keys[v->n] = key;
      skip_ws(r);
      if (r->p >= r->end || *r->p != ':') {
        v->n++; /* so the key is freed */
        return fail(r, "expected ':'");
      }
      r->p++;
    }
    v->n++;
    if (!parse_value(r, item, depth + 1))
      return false;
    skip_ws(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      continue;
    }
    if (r->p < r->end && *r->p == close) {
      r->p++;
      return true;
    }
    return fail(r, object ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static bool literal(reader *r, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
    return fail(r, "unexpected character");
  r->p += n;
  return true;
}

static bool parse_value(reader *r, at_json *v, int depth) {
  if (depth > MAX_DEPTH)
    return fail(r, "nested too deeply");
  skip_ws(r);
  if (r->p >= r->end)
    return fail(r, "unexpected end of input");
  char c = *r->p;
  if (c == '{' || c == '[') {
    r->p++;
    v->kind = c == '{' ? AT_JSON_OBJ : AT_JSON_ARR;
    return parse_items(r, v, c == '{', depth);
  }
  if (c == '"') {
    r->p++;
    v->kind = AT_JSON_STR;
    v->str = read_string(r);
    return v->str != NULL;
  }
  if (c == 't' || c == 'f') {
    v->kind = AT_JSON_BOOL;
    v->b = c == 't';
    return literal(r, v->b ? "true" : "false");
  }
  if (c == 'n') {
    v->kind = AT_JSON_NULL;
    return literal(r, "null");
  }
  /* A number, checked against the JSON grammar before strtod reads it. */
  const char *q = r->p;
  if (q < r->end && *q == '-')
    q++;
  if (q >= r->end || !(*q >= '0' && *q <= '9'))
    return fail(r, "unexpected character");
  if (*q == '0')
    q++;
  else
    while (q < r->end && *q >= '0' && *q <= '9')
      q++;
  if (q < r->end && *q == '.') {
    q++;
    if (q >= r->end || !(*q >= '0' && *q <= '9'))
      return fail(r, "bad number");
    while (q < r->end && *q >= '0' && *q <= '9')
      q++;
  }
  if (q < r->end && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < r->end && (*q == '+' || *q == '-'))
      q++;
    if (q >= r->end || !(*q >= '0' && *q <= '9'))
      return fail(r, "bad number");
    while (q < r->end && *q >= '0' && *q <= '9')
      q++;
  }
  char tmp[64];
  size_t n = (size_t)(q - r->p);
  if (n >= sizeof tmp)
    return fail(r, "number too long");
  memcpy(tmp, r->p, n);
  tmp[n] = 0;
  v->kind = AT_JSON_NUM;
  v->num = strtod(tmp, NULL);
  r->p = q;
  return true;
}

static void free_value(at_json *v) {
  free(v->str);
  for (int i = 0; i < v->n; i++) {
    free_value(&v->items[i]);
    if (v->keys)
      free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
}

void at_json_free(at_json *j) {
  if (!j)
    return;
  free_value(j);
  free(j);
}

at_status at_json_parse(const char *text, size_t len, at_json **out, at_err *e) {
  *out = NULL;
  reader r = {.s = text, .end = text + len, .p = text, .e = e, .st = AT_OK};
  at_json *root = calloc(1, sizeof *root);
  if (!root)
    return at_fail(e, AT_ERR_OOM, "out of memory reading JSON");
  if (parse_value(&r, root, 0)) {
    skip_ws(&r);
    if (r.p != r.end)
      fail(&r, "text after the JSON value");
  }
  if (r.st != AT_OK) {
    at_json_free(root);
    return r.st;
  }
  *out = root;
  return AT_OK;
}

const at_json *at_json_get(const at_json *obj, const char *key) {
  if (!obj || obj->kind != AT_JSON_OBJ)
    return NULL;
  for (int i = 0; i < obj->n; i++)
    if (!strcmp(obj->keys[i], key))
      return &obj->items[i];
  return NULL;
}
