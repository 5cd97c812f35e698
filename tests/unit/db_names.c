/* unit.db_names — hostile and unusual names round-trip unchanged: quotes, semicolons, SQL
 * fragments, backslashes, control characters, non-ASCII UTF-8, bytes that are not UTF-8 and
 * 4 KiB lengths, in every key field, config, problem and detail; through put/get/list/winners,
 * and through JSON export and import into a fresh database (whose export is byte-identical). */
#include "autotune/db.h"
#include "autotune/json.h"
#include "tests/unit/check.h"
#include "tests/unit/db_test.h"
#include "tests/unit/files.h"

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

enum { NNAMES = 9 };
static char *names[NNAMES];

static void make_names(void) {
  const char *fixed[] = {
      "it's \"quoted\"",
      "a; DROP TABLE result; --",
      "'); DELETE FROM blob; SELECT ('",
      "back\\slash\ttab\nnewline\x01\x1f",
      "naïve ✓ 日本語 😀 Ωmega",
      "\xff\xfe invalid \xc3\x28 utf-8 \xed\xa0\x80 \xc0\xaf",
      "%s%n%x{}[]:,",
  };
  for (int i = 0; i < 7; i++)
    names[i] = strdup(fixed[i]);
  /* 4 KiB: a multi-byte pattern with a quote and a semicolon in it. */
  const char *unit = "é'\";x";
  size_t ul = strlen(unit);
  for (int i = 7; i < NNAMES; i++) {
    names[i] = malloc(4096 + 8);
    size_t n = 0;
    while (n + ul <= 4096)
      memcpy(names[i] + n, unit, ul), n += ul;
    names[i][n++] = (char)('A' + i);
    names[i][n] = 0;
  }
}

static at_key key_at(int i) {
  return (at_key){names[i % NNAMES], names[(i + 1) % NNAMES], names[(i + 2) % NNAMES],
                  names[(i + 3) % NNAMES], names[(i + 4) % NNAMES]};
}

static bool same_row(const at_result *a, const at_key *k, const at_result *b) {
  return !strcmp(a->key.device, k->device) && !strcmp(a->key.toolchain, k->toolchain) &&
         !strcmp(a->key.kernel, k->kernel) && !strcmp(a->key.ir_hash, k->ir_hash) &&
         !strcmp(a->key.bucket, k->bucket) && !strcmp(a->config, b->config) &&
         !strcmp(a->problem, b->problem) && !strcmp(a->detail, b->detail) &&
         !strcmp(a->compile_key, b->compile_key) && !strcmp(a->variant, b->variant) &&
         a->status == b->status &&
         (a->median_ms == b->median_ms || (isnan(a->median_ms) && isnan(b->median_ms))) &&
         a->time_unix == b->time_unix && a->regs == b->regs;
}

/* Row j of every key: config names[j], ok or fault, awkward times, names in every text. */
static at_result row_of(int j) {
  at_result r = db_test_row(names[j], j % 3 ? AT_RUN_OK : AT_RUN_FAULT, 0.1 + j / 7.0, 1000 + j);
  r.problem = names[(j + 5) % NNAMES];
  r.detail = names[(j + 6) % NNAMES];
  r.compile_key = names[(j + 7) % NNAMES];
  r.variant = j % 2 ? "aligned" : "";
  return r;
}

/* The rows every test puts: one per (key i, config j). */
static void put_all(at_db *db) {
  at_err e;
  for (int i = 0; i < NNAMES; i++) {
    at_key k = key_at(i);
    for (int j = 0; j < NNAMES; j++) {
      at_result r = row_of(j);
      CHECK_EQ_INT(AT_OK, at_db_put(db, &k, &r, &e));
    }
  }
}

static int check_all(at_db *db) {
  at_err e;
  int bad = 0;
  for (int i = 0; i < NNAMES; i++) {
    at_key k = key_at(i);
    for (int j = 0; j < NNAMES; j++) {
      at_result want = row_of(j);
      at_rows rows;
      if (at_db_get(db, &k, names[j], &rows, &e) != AT_OK || rows.n != 1 ||
          !same_row(&rows.r[0], &k, &want)) {
        fprintf(stderr, "row (%d, %d) differs or is missing: %s\n", i, j, e.msg);
        bad++;
      }
      at_rows_free(&rows);
    }
    at_rows rows;
    CHECK_EQ_INT(AT_OK, at_db_list(db, &k, &rows, &e));
    CHECK_EQ_INT(NNAMES, rows.n);
    at_rows_free(&rows);
    CHECK_EQ_INT(AT_OK, at_db_winner(db, &k, &rows, &e));
    if (CHECK(rows.n == 1))
      CHECK_EQ_STR(names[1], rows.r[0].config); /* 0.1 + 1/7, the fastest ok row */
    at_rows_free(&rows);
  }
  at_rows rows;
  at_key pat = {.kernel = names[2]};
  CHECK_EQ_INT(AT_OK, at_db_winners(db, &pat, &rows, &e));
  CHECK_EQ_INT(1, rows.n);
  at_rows_free(&rows);
  return bad;
}

/* All files of dir concatenated in name order. */
static char *read_dir(const char *dir, int *nfiles) {
  struct dirent **list;
  int n = scandir(dir, &list, NULL, alphasort);
  at_buf b = {0};
  at_buf_puts(&b, "");
  *nfiles = 0;
  for (int i = 0; i < n; i++) {
    if (list[i]->d_name[0] != '.') {
      char path[1024];
      snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
      char *text = slurp(path);
      at_buf_printf(&b, "== %s\n%s", list[i]->d_name, text ? text : "(unreadable)");
      free(text);
      (*nfiles)++;
    }
    free(list[i]);
  }
  free(list);
  return b.p;
}

static void import_dir(at_db *db, const char *dir) {
  struct dirent **list;
  int n = scandir(dir, &list, NULL, alphasort);
  for (int i = 0; i < n; i++) {
    if (list[i]->d_name[0] != '.') {
      char path[1024];
      snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
      char *text = slurp(path);
      at_err e;
      at_merge_stats st;
      if (CHECK(text != NULL))
        CHECK_EQ_INT(AT_OK, at_db_import_json(db, path, text, strlen(text), &st, &e));
      free(text);
    }
    free(list[i]);
  }
  free(list);
}

int main(void) {
  make_names();
  char dir[256], p1[300], p2[300], x1[300], x2[300];
  db_test_dir(dir);
  snprintf(p1, sizeof p1, "%s/one.db", dir);
  snprintf(p2, sizeof p2, "%s/two.db", dir);
  snprintf(x1, sizeof x1, "%s/x1", dir);
  snprintf(x2, sizeof x2, "%s/x2", dir);
  at_err e;
  at_db *a, *b;
  REQUIRE(at_db_open(p1, 0, &a, &e) == AT_OK);
  put_all(a);
  CHECK_EQ_INT(0, check_all(a));

  /* Export, import into a fresh database, compare, export again: the same bytes. */
  mkdir(x1, 0700);
  mkdir(x2, 0700);
  int files = 0;
  CHECK_EQ_INT(AT_OK, at_db_export_dir(a, NULL, x1, &files, &e));
  CHECK_EQ_INT(NNAMES, files); /* (kernel, device) pairs: all distinct here */
  REQUIRE(at_db_open(p2, 0, &b, &e) == AT_OK);
  import_dir(b, x1);
  CHECK_EQ_INT(0, check_all(b));
  CHECK_EQ_INT(AT_OK, at_db_export_dir(b, NULL, x2, &files, &e));
  int n1, n2;
  char *t1 = read_dir(x1, &n1), *t2 = read_dir(x2, &n2);
  CHECK_EQ_INT(n1, n2);
  CHECK(t1 && t2 && strcmp(t1, t2) == 0);
  CHECK_CONTAINS(t1, "\\udcff\\udcfe invalid \\udcc3("); /* raw bytes escaped, not lost */
  CHECK_CONTAINS(t1, "naïve ✓ 日本語 😀 Ωmega");          /* UTF-8 written as is */
  CHECK_CONTAINS(t1, "\"variant\": \"aligned\"");
  /* A variant this build does not know: the import refuses the file. */
  char *var = strstr(t1, "\"variant\": \"aligned\"");
  if (var) {
    char *fstart = var;
    while (fstart > t1 && strncmp(fstart, "\n== ", 4) && fstart != t1)
      fstart--;
    fstart = strchr(fstart + 1, '\n') + 1; /* past the "== name" line */
    char *fend = strstr(var, "\n== ");
    if (fend)
      *fend = 0;
    memcpy(var + 12, "fast   ", 7);
    at_merge_stats st;
    CHECK_EQ_INT(AT_ERR_ARG, at_db_import_json(b, "var.json", fstart, strlen(fstart), &st, &e));
    CHECK_CONTAINS(e.msg, "\"variant\"");
  }
  free(t1);
  free(t2);

  /* A version 1 file (compile keys of version 1, which may name another problem's code: db.h):
   * its rows are imported without their keys. */
  at_key k0 = key_at(0);
  at_buf j1 = {0};
  CHECK_EQ_INT(AT_OK,
               at_db_export_json(a, &(at_key){.kernel = k0.kernel, .device = k0.device}, &j1, &e));
  char *ver = j1.p ? strstr(j1.p, "\"version\": 2") : NULL;
  if (CHECK(ver != NULL)) {
    ver[11] = '1';
    char p3[300];
    snprintf(p3, sizeof p3, "%s/three.db", dir);
    at_db *c3;
    REQUIRE(at_db_open(p3, 0, &c3, &e) == AT_OK);
    at_merge_stats st;
    CHECK_EQ_INT(AT_OK, at_db_import_json(c3, "v1.json", j1.p, j1.n, &st, &e));
    CHECK_EQ_INT(NNAMES, st.rows_taken);
    at_rows rows;
    CHECK_EQ_INT(AT_OK, at_db_rows(c3, &(at_key){0}, &rows, &e));
    CHECK_EQ_INT(NNAMES, rows.n);
    for (int i = 0; i < rows.n; i++)
      CHECK_EQ_STR("", rows.r[i].compile_key);
    at_rows_free(&rows);
    at_db_close(c3);
  }
  at_buf_free(&j1);

  /* File names are safe whatever the kernel name. */
  char name[AT_DB_EXPORT_NAME];
  at_db_export_name("../../etc/passwd", "x", name);
  CHECK(strchr(name, '/') == NULL);
  CHECK(strncmp(name, "_", 1) == 0);
  at_db_export_name(names[8], names[0], name);
  CHECK_EQ_INT(64 + 1 + 16 + 5, strlen(name));

  /* Bad export files: nothing is written, the message names the file and row. */
  const char *bad_files[] = {
      "{\"format\": \"tilec-tuning-export\", \"version\": 1, \"kernel\": \"k\", \"device\": "
      "\"d\", \"rows\": [{\"toolchain\": \"t\"}]}",
      "{\"format\": \"other\", \"version\": 1}",
      "{\"format\": \"tilec-tuning-export\", \"version\": 3}",
      "[1, 2",
      "{\"format\": \"tilec-tuning-export\", \"version\": 1, \"kernel\": \"k\", \"device\": "
      "\"d\", \"rows\": \"no\"}",
      "{\"a\": \"\\u0000\"}",
  };
  const char *want[] = {
      "row 1: \"ir_hash\" is missing", "\"format\"", "\"version\"", "line 1, column 6",
      "\"rows\" is not an array",      "\\u0000"};
  for (int i = 0; i < 6; i++) {
    at_merge_stats st;
    CHECK_EQ_INT(AT_ERR_ARG,
                 at_db_import_json(b, "bad.json", bad_files[i], strlen(bad_files[i]), &st, &e));
    CHECK_CONTAINS(e.msg, want[i]);
    CHECK_CONTAINS(e.msg, "bad.json");
  }
  at_rows rows;
  at_key kk = {"d", "t", "k", NULL, NULL};
  CHECK_EQ_INT(AT_OK, at_db_rows(b, &kk, &rows, &e));
  CHECK_EQ_INT(0, rows.n);
  at_rows_free(&rows);

  at_db_close(a);
  at_db_close(b);
  for (int i = 0; i < NNAMES; i++)
    free(names[i]);
  char cmd[320];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK_EQ_INT(0, system(cmd));
  return TEST_MAIN_END();
}
