/* autotune/json.h — the small JSON writer and reader behind `tilec db export|import`.
 *
 * Strings are byte strings without NUL. Valid UTF-8 is written as is (control characters,
 * quotes and backslashes escaped); a byte that is not part of valid UTF-8 is written as the lone
 * surrogate escape \udcXX (XX = the byte, 80..ff, as Python's "surrogateescape" does), which the
 * reader turns back into the byte: any key the database holds survives export and import.
 * Numbers are written in the shortest form that reads back to the same double.
 */
#ifndef TILEC_AUTOTUNE_JSON_H
#define TILEC_AUTOTUNE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "autotune/at.h"

/* A growing text buffer. Zero-initialize it; after any failed allocation `oom` stays set and
 * further writes are dropped. p is NUL-terminated when not NULL; at_buf_free releases it. */
typedef struct at_buf {
  char *p;
  size_t n, cap;
  bool oom;
} at_buf;

void at_buf_put(at_buf *b, const char *s, size_t n);
void at_buf_puts(at_buf *b, const char *s);
void at_buf_printf(at_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void at_buf_free(at_buf *b);

/* Appends s as a quoted JSON string (see the header comment for the escapes). */
void at_json_str(at_buf *b, const char *s);
/* Appends v in its shortest round-trip form; null when v is not finite. */
void at_json_num(at_buf *b, double v);

typedef enum {
  AT_JSON_NULL,
  AT_JSON_BOOL,
  AT_JSON_NUM,
  AT_JSON_STR,
  AT_JSON_ARR,
  AT_JSON_OBJ
} at_json_kind;

/* A parsed value. Arrays and objects hold n items (objects also n keys, in file order). The
 * whole tree is owned by its root and freed by at_json_free. */
typedef struct at_json {
  at_json_kind kind;
  bool b;
  double num;
  char *str;
  int n;
  struct at_json *items;
  char **keys;
} at_json;

/* Parses text[0..len) (one value, surrounding white space allowed, nesting up to 64 levels).
 * On error returns AT_ERR_ARG with "line L, column C: what" in e, or AT_ERR_OOM. *out is the
 * caller's to free with at_json_free. */
at_status at_json_parse(const char *text, size_t len, at_json **out, at_err *e);
void at_json_free(at_json *j); /* NULL is a no-op */

/* The member named key of an object, or NULL (also when obj is not an object). */
const at_json *at_json_get(const at_json *obj, const char *key);

#endif
