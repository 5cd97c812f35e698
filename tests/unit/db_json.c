/* unit.db_json — the JSON writer and reader of the tuning database's export files: every byte
 * string survives (raw non-UTF-8 bytes as \udcXX), numbers read back exactly, and malformed
 * text (every truncation of a valid document, bad escapes, deep nesting) is an error with a
 * position, never a crash. */
#include "autotune/json.h"
#include "tests/unit/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Writes s as a JSON string, parses it back, returns whether it is the same bytes. */
static bool str_roundtrip(const char *s) {
  at_buf b = {0};
  at_json_str(&b, s);
  at_json *j = NULL;
  at_err e;
  bool ok = !b.oom && at_json_parse(b.p, b.n, &j, &e) == AT_OK && j->kind == AT_JSON_STR &&
            strcmp(j->str, s) == 0;
  at_json_free(j);
  at_buf_free(&b);
  return ok;
}

int main(void) {
  /* Every byte but NUL, alone and in pairs (covers every broken UTF-8 lead/continuation). */
  int bad = 0;
  char s[3] = {0};
  for (int a = 1; a < 256; a++) {
    s[0] = (char)a;
    s[1] = 0;
    bad += !str_roundtrip(s);
    for (int c = 1; c < 256; c++) {
      s[1] = (char)c;
      bad += !str_roundtrip(s);
    }
  }
  CHECK_EQ_INT(0, bad);
  CHECK(str_roundtrip("naïve ✓ 日本語 😀"));
  CHECK(str_roundtrip("\xed\xa0\x80\xed\xb0\x80")); /* an encoded surrogate pair: not UTF-8 */
  at_buf b = {0};
  at_json_str(&b, "é\xff\"\\\n");
  CHECK_EQ_STR("\"é\\udcff\\\"\\\\\\u000a\"", b.p);
  at_buf_free(&b);

  /* Numbers: shortest form, exact round trip, null for non-finite values. */
  const double nums[] = {
      0.1, 1.0 / 3, 0.512, 1e-300, 123456789.123, 5e-324, 1.7976931348623157e308};
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    at_json_num(&b, nums[i]);
    CHECK_EQ_INT(0, b.oom);
    CHECK(strtod(b.p, NULL) == nums[i]);
    at_buf_free(&b);
  }
  at_json_num(&b, 0.512);
  CHECK_EQ_STR("0.512", b.p);
  at_buf_free(&b);
  at_json_num(&b, NAN);
  CHECK_EQ_STR("null", b.p);
  at_buf_free(&b);

  /* A document; then every truncation of it fails cleanly. */
  const char *doc = "{\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\ud83d\\ude00\"], "
                    "\"b\": {\"c\": \"\\udcff\"}}";
  at_json *j;
  at_err e;
  REQUIRE(at_json_parse(doc, strlen(doc), &j, &e) == AT_OK);
  const at_json *a = at_json_get(j, "a");
  if (CHECK(a && a->kind == AT_JSON_ARR && a->n == 6)) {
    CHECK_NEAR(-2500, a->items[1].num, 0);
    CHECK(a->items[2].kind == AT_JSON_BOOL && a->items[2].b);
    CHECK(a->items[4].kind == AT_JSON_NULL);
    CHECK_EQ_STR("xé😀", a->items[5].str);
  }
  const at_json *c = at_json_get(at_json_get(j, "b"), "c");
  CHECK(c && c->str && (unsigned char)c->str[0] == 0xff && c->str[1] == 0);
  CHECK(at_json_get(j, "zz") == NULL);
  CHECK(at_json_get(a, "a") == NULL);
  at_json_free(j);
  int accepted = 0;
  for (size_t n = 0; n < strlen(doc); n++) {
    if (at_json_parse(doc, n, &j, &e) == AT_OK) {
      accepted++;
      at_json_free(j);
    } else if (!strstr(e.msg, "line 1, column"))
      accepted += 100;
  }
  CHECK_EQ_INT(0, accepted);

  const char *bad_docs[] = {"",    "[1,]",   "{\"a\" 1}", "\"\\x\"", "\"\\ud800\"", "\"\\udc00x\"",
                            "01",  "1.",     "-",         "1e",      "[1] [2]",     "\"a\nb\"",
                            "tru", "{1: 2}", "\"\\u12\""};
  for (size_t i = 0; i < sizeof bad_docs / sizeof bad_docs[0]; i++) {
    j = NULL;
    if (!CHECK(at_json_parse(bad_docs[i], strlen(bad_docs[i]), &j, &e) == AT_ERR_ARG))
      fprintf(stderr, "  accepted: %s\n", bad_docs[i]);
    at_json_free(j);
  }
  char deep[200];
  memset(deep, '[', sizeof deep);
  CHECK_EQ_INT(AT_ERR_ARG, at_json_parse(deep, sizeof deep, &j, &e));
  CHECK_CONTAINS(e.msg, "nested too deeply");
  CHECK_EQ_INT(AT_ERR_ARG, at_json_parse("[1,\n 2,\n x]", 11, &j, &e));
  CHECK_CONTAINS(e.msg, "line 3, column 2");
  at_json_free(NULL);
  return TEST_MAIN_END();
}
