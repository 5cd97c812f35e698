/* tests/unit/parse_errors.c — ir_parse rejects malformed text with the expected located error.
 *
 * Part 1 runs every tests/errors/NAME.tile (see tests/errors/README.md for the convention: the
 * first line is `# expect: LINE:COL: MESSAGE`, an optional second line `# status: limit` or
 * `# status: verify` — the text parses and ir_verify must reject it).
 * Part 2 builds hostile inputs in memory: deep region nesting, deep parentheses and operator
 * chains, oversized sources, too many ops/operands, names at the length limit.
 * Usage: unit_parse_errors [SOURCE_ROOT] (default: $TILEC_SOURCE_DIR, then TILEC_SOURCE_DIR).
 */
#define _POSIX_C_SOURCE 200809L
#include "ir.h"
#include "check.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TILEC_SOURCE_DIR
#define TILEC_SOURCE_DIR "."
#endif

/* ---- helpers -------------------------------------------------------------------------- */

static char *readfile(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      char *q = realloc(buf, cap *= 2);
      if (!q) {
        free(buf);
        buf = NULL;
      }
      buf = q;
    }
  }
  fclose(f);
  if (buf)
    buf[n < cap ? n : cap - 1] = '\0';
  *len = n;
  return buf;
}

/* A growing string for generated sources. */
typedef struct gen {
  char *s;
  size_t n, cap;
} gen;

static void add(gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(gen *g, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[512];
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (g->n + (size_t)n + 1 > g->cap) {
    g->cap = (g->cap + (size_t)n + 1) * 2;
    g->s = realloc(g->s, g->cap);
    REQUIRE(g->s != NULL);
  }
  memcpy(g->s + g->n, tmp, (size_t)n + 1);
  g->n += (size_t)n;
}

/* "LINE:COL: MESSAGE" from the first line of a diagnostic "FILE:LINE:COL: error: MESSAGE". */
static void shortmsg(const char *diag, const char *file, char *out, size_t cap) {
  size_t fl = strlen(file);
  const char *s = diag;
  if (strncmp(s, file, fl) == 0 && s[fl] == ':')
    s += fl + 1;
  size_t n = strcspn(s, "\n");
  char line[1024];
  snprintf(line, sizeof line, "%.*s", (int)n, s);
  char *e = strstr(line, ": error: ");
  if (e)
    memmove(e + 2, e + 9, strlen(e + 9) + 1);
  snprintf(out, cap, "%s", line);
}

/* Parses text (expecting failure) and returns the short message in out. */
static ir_status parse_fail(const char *text, size_t len, char *out, size_t cap) {
  ir_kernel *k = NULL;
  ir_diag d;
  ir_status s = ir_parse(text, len, "gen.tile", &k, &d);
  if (s == IR_OK) {
    ir_kernel_free(k);
    snprintf(out, cap, "(parsed without error)");
    return s;
  }
  CHECK(k == NULL);
  shortmsg(d.msg, "gen.tile", out, cap);
  return s;
}

static int cmpname(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- part 1: the files tests/errors/NAME.tile ---------------------------------------- */

static void one_file(const char *dir, const char *name) {
  char path[4096], file[4200];
  if (!CHECK(snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path &&
             snprintf(file, sizeof file, "tests/errors/%s", name) < (int)sizeof file))
    return;
  size_t len;
  char *text = readfile(path, &len);
  if (!CHECK(text != NULL)) {
    fprintf(stderr, "  cannot read %s\n", path);
    return;
  }
  const char *tag = "# expect: ";
  if (!CHECK(strncmp(text, tag, strlen(tag)) == 0)) {
    fprintf(stderr, "  %s: first line must be '# expect: LINE:COL: MESSAGE'\n", path);
    free(text);
    return;
  }
  char want[1024];
  size_t wn = strcspn(text + strlen(tag), "\r\n");
  snprintf(want, sizeof want, "%.*s", (int)wn, text + strlen(tag));
  const char *second = strchr(text, '\n');
  bool verify = second && strncmp(second + 1, "# status: verify", 16) == 0;
  ir_status want_status = verify ? IR_ERR_VERIFY
                          : second && strncmp(second + 1, "# status: limit", 15) == 0
                              ? IR_ERR_LIMIT
                              : IR_ERR_PARSE;

  ir_kernel *k = NULL;
  ir_diag d;
  ir_status s = ir_parse(text, len, file, &k, &d);
  if (verify && s == IR_OK) /* well-formed text that the verifier must reject */
    s = ir_verify(k, &d);
  char got[1024];
  if (s == IR_OK)
    snprintf(got, sizeof got, "(parsed without error)");
  else
    shortmsg(d.msg, file, got, sizeof got);
  bool ok = s == want_status && strcmp(want, got) == 0;
  if (!CHECK(ok))
    fprintf(stderr, "  %s\n  expected: [%d] %s\n  actual:   [%d] %s\n", path, want_status, want, s,
            got);
  /* A located diagnostic shows the source line and a caret under the column. */
  if (s != IR_OK && ok)
    CHECK(strchr(d.msg, '\n') != NULL && strchr(d.msg, '^') != NULL);
  ir_kernel_free(k);
  free(text);
}

static void error_files(const char *root) {
  char dir[4096];
  REQUIRE(snprintf(dir, sizeof dir, "%s/tests/errors", root) < (int)sizeof dir);
  DIR *dp = opendir(dir);
  REQUIRE(dp != NULL);
  char **names = NULL;
  int n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(dp)) != NULL) {
    size_t l = strlen(de->d_name);
    if (l < 6 || strcmp(de->d_name + l - 5, ".tile") != 0)
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      names = realloc(names, sizeof *names * (size_t)cap);
      REQUIRE(names != NULL);
    }
    names[n] = malloc(l + 1);
    REQUIRE(names[n] != NULL);
    memcpy(names[n++], de->d_name, l + 1);
  }
  closedir(dp);
  qsort(names, (size_t)n, sizeof *names, cmpname);
  CHECK(n >= 30);
  for (int i = 0; i < n; i++) {
    one_file(dir, names[i]);
    free(names[i]);
  }
  free(names);
  fprintf(stderr, "parse_errors: %d error files\n", n);
}

/* ---- part 2: generated hostile inputs ------------------------------------------------- */

static const char *HEAD = "kernel k\nargs ()\ngrid (1)\n{\n  %c = const 1 : i1\n";

/* 40 nested ifs: the 33rd region is over IR_MAX_DEPTH; no stack overflow. */
static void deep_regions(void) {
  gen g = {0};
  add(&g, "%s", HEAD);
  for (int i = 0; i < 40; i++)
    add(&g, "if %%c {\n");
  for (int i = 0; i < 40; i++)
    add(&g, "yield\n}\n");
  add(&g, "}\n");
  char got[1024];
  CHECK_EQ_INT(IR_ERR_LIMIT, parse_fail(g.s, g.n, got, sizeof got));
  CHECK_EQ_STR("38:1: regions nested deeper than 32", got);
  /* Exactly 32 levels are fine. */
  g.n = 0;
  add(&g, "%s", HEAD);
  for (int i = 0; i < 32; i++)
    add(&g, "if %%c {\n");
  for (int i = 0; i < 32; i++)
    add(&g, "yield\n}\n");
  add(&g, "}\n");
  ir_kernel *k = NULL;
  ir_diag d;
  CHECK_EQ_INT(IR_OK, ir_parse(g.s, g.n, "gen.tile", &k, &d));
  ir_kernel_free(k);
  free(g.s);
}

static void deep_expressions(void) {
  gen g = {0};
  char got[1024];
  /* 33 parentheses. */
  add(&g, "kernel k\nargs ()\ngrid (");
  for (int i = 0; i < 33; i++)
    add(&g, "(");
  add(&g, "1");
  for (int i = 0; i < 33; i++)
    add(&g, ")");
  add(&g, ")\n{\n}\n");
  CHECK_EQ_INT(IR_ERR_LIMIT, parse_fail(g.s, g.n, got, sizeof got));
  CHECK_EQ_STR("3:39: parentheses nested deeper than 32", got);
  /* 100000 unary minus signs: parsed in a loop, stopped by the height limit. */
  g.n = 0;
  add(&g, "kernel k\nargs ()\ngrid (");
  for (int i = 0; i < 100000; i++)
    add(&g, "-");
  add(&g, "x)\n{\n}\n");
  CHECK_EQ_INT(IR_ERR_LIMIT, parse_fail(g.s, g.n, got, sizeof got));
  CHECK_EQ_STR("3:135: expression nested deeper than 128", got);
  /* A chain of 100000 additions is a left-deep tree: over the height limit too. */
  g.n = 0;
  add(&g, "kernel k\nargs ()\ngrid (1");
  for (int i = 0; i < 100000; i++)
    add(&g, " + 1");
  add(&g, ")\n{\n}\n");
  CHECK_EQ_INT(IR_ERR_LIMIT, parse_fail(g.s, g.n, got, sizeof got));
  CHECK_EQ_STR("3:517: expression nested deeper than 128", got);
  free(g.s);
}

static void big_inputs(void) {
  char got[1024];
  /* 2 MiB of text: refused before lexing. */
  size_t len = 2u << 20;
  char *big = malloc(len + 1);
  REQUIRE(big != NULL);
  memset(big, '\n', len);
  memcpy(big, "kernel k\n", 9);
  big[len] = '\0';
  CHECK_EQ_INT(IR_ERR_LIMIT, parse_fail(big, len, got, sizeof got));
  CHECK_EQ_STR("1:1: source larger than 1048576 bytes", got);
  /* Exactly 1 MiB of comments after a valid kernel is accepted. */
  const char *kern = "kernel k\nargs ()\ngrid (1)\n{\n}\n#";
  len = 1u << 20;
  memset(big, 'x', len);
  memcpy(big, kern, strlen(kern));
  ir_kernel *k = NULL;
  ir_diag d;
  CHECK_EQ_INT(IR_OK, ir_parse(big, len, "gen.tile", &k, &d));
  ir_kernel_free(k);
  free(big);

  /* 50001 ifs with a yield each: 100002 ops in under 1 MiB. */
  gen g = {0};
  add(&g, "kernel k\nargs ()\ngrid (1)\n{\n%%c = const 1 : i1\n");
  for (int i = 0; i < 50001; i++)
    add(&g, "if %%c {\nyield\n}\n");
  add(&g, "}\n");
  CHECK(g.n < (1u << 20));
  CHECK_EQ_INT(IR_ERR_LIMIT, parse_fail(g.s, g.n, got, sizeof got));
  CHECK_EQ_STR("150004:1: more than 100000 ops", got);

  /* 257 values in one yield. */
  g.n = 0;
  add(&g, "%s  if %%c {\n    yield", HEAD);
  for (int i = 0; i < 257; i++)
    add(&g, "%s %%c", i ? "," : "");
  add(&g, "\n  }\n}\n");
  CHECK_EQ_INT(IR_ERR_LIMIT, parse_fail(g.s, g.n, got, sizeof got));
  CHECK_EQ_STR("7:1035: more than 256 operands", got);
  free(g.s);
}

static void names(void) {
  char name[IR_MAX_NAME + 2];
  memset(name, 'a', sizeof name);
  name[IR_MAX_NAME] = '\0';
  gen g = {0};
  /* A 128-byte kernel name and value name are fine; 129 bytes are not. */
  add(&g, "kernel %s\nargs ()\ngrid (1)\n{\n  %%%s = const 1 : i32\n}\n", name, name);
  ir_kernel *k = NULL;
  ir_diag d;
  CHECK_EQ_INT(IR_OK, ir_parse(g.s, g.n, "gen.tile", &k, &d));
  ir_kernel_free(k);
  name[IR_MAX_NAME] = 'a';
  name[IR_MAX_NAME + 1] = '\0';
  g.n = 0;
  add(&g, "kernel k\nargs ()\ngrid (1)\n{\n  %%%s = const 1 : i32\n}\n", name);
  char got[1024];
  CHECK_EQ_INT(IR_ERR_LIMIT, parse_fail(g.s, g.n, got, sizeof got));
  CHECK_EQ_STR("5:3: value name longer than 128 bytes", got);
  free(g.s);
}

/* Symbol and argument counts are enforced by the builder, at the item the parser points to. */
static void counts(void) {
  char got[1024];
  gen g = {0};
  add(&g, "kernel k\ntunables {\n");
  for (int i = 0; i <= IR_MAX_SYMS; i++)
    add(&g, "  T%d = 1 in [1]\n", i);
  add(&g, "}\nargs ()\ngrid (1)\n{\n}\n");
  CHECK_EQ_INT(IR_ERR_LIMIT, parse_fail(g.s, g.n, got, sizeof got));
  CHECK_EQ_STR("259:3: more than 256 symbols", got);
  g.n = 0;
  add(&g, "kernel k\nargs (");
  for (int i = 0; i <= IR_MAX_ARGS; i++)
    add(&g, "%sp%d: i32", i ? ", " : "", i);
  add(&g, ")\ngrid (1)\n{\n}\n");
  CHECK_EQ_INT(IR_ERR_LIMIT, parse_fail(g.s, g.n, got, sizeof got));
  CHECK_EQ_STR("2:637: more than 64 arguments", got);
  free(g.s);
}

/* Odd calls: empty text, NULL diag, text without a trailing newline. */
static void edges(void) {
  char got[1024];
  CHECK_EQ_INT(IR_ERR_PARSE, parse_fail("", 0, got, sizeof got));
  CHECK_EQ_STR("1:1: expected 'kernel' at start of file", got);
  ir_kernel *k = NULL;
  CHECK_EQ_INT(IR_ERR_PARSE, ir_parse("kernel", 6, NULL, &k, NULL));
  CHECK(k == NULL);
  const char *t = "kernel k\nargs ()\ngrid (1)\n{\n}";
  CHECK_EQ_INT(IR_OK, ir_parse(t, strlen(t), "x", &k, NULL));
  ir_kernel_free(k);
  /* Only len bytes are read: the text need not be NUL-terminated. */
  char buf[64];
  memset(buf, '#', sizeof buf);
  memcpy(buf, t, strlen(t));
  CHECK_EQ_INT(IR_OK, ir_parse(buf, strlen(t), "x", &k, NULL));
  ir_kernel_free(k);
}

int main(int argc, char **argv) {
  const char *root = argc > 1 ? argv[1] : getenv("TILEC_SOURCE_DIR");
  if (!root)
    root = TILEC_SOURCE_DIR;
  error_files(root);
  deep_regions();
  deep_expressions();
  big_inputs();
  names();
  counts();
  edges();
  TEST_MAIN_END();
}
