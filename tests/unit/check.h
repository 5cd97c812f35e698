/* check.h - the assertion kit of tilec's unit tests (tests/unit/NAME.c).
 *
 * A unit test is one C file with a main() that calls CHECK macros and ends with
 * TEST_MAIN_END(). A failed check prints `file:line:` plus the expression (and both values for
 * the _EQ forms) and the test goes on; TEST_MAIN_END() exits with 1 if any check failed, so
 * CTest marks the test failed. A test that cannot run here (no ptxas, no GPU) calls TEST_SKIP(...),
 * which exits with 77, the code CTest reports as "skipped". Header-only: each test is one
 * translation unit, so the counters are static.
 */
#ifndef TILEC_TESTS_CHECK_H
#define TILEC_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_SKIP_CODE 77

__attribute__((unused)) static int check_failed;
__attribute__((unused)) static int check_total;

/* Records one check; prints the location and message when it failed. Returns ok. */
static inline int check_note(int ok, const char *file, int line, const char *what) {
  check_total++;
  if (!ok) {
    check_failed++;
    fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
  }
  return ok;
}

/* Prints the summary. Any failure ends the program with status 1 here; otherwise returns 0, so
 * both `TEST_MAIN_END();` and `return TEST_MAIN_END();` end main() correctly. */
static inline int check_report(const char *file) {
  if (check_failed) {
    fprintf(stderr, "%s: %d of %d checks failed\n", file, check_failed, check_total);
    exit(1);
  }
  fprintf(stderr, "%s: all %d checks passed\n", file, check_total);
  return 0;
}

/* CHECK(cond): cond must be true. Evaluates to cond's truth, so it can guard later code:
 * `if (CHECK(p != NULL)) use(p);` */
#define CHECK(cond) check_note((cond) ? 1 : 0, __FILE__, __LINE__, "CHECK(" #cond ")")

/* REQUIRE(cond): like CHECK, but a failure ends the test at once (later code depends on it). */
#define REQUIRE(cond)                                                                              \
  do {                                                                                             \
    if (!CHECK(cond))                                                                              \
      check_report(__FILE__);                                                                      \
  } while (0)

/* CHECK_EQ_INT(expected, actual): integers compared as long long. */
#define CHECK_EQ_INT(exp, act)                                                                     \
  do {                                                                                             \
    long long check_e_ = (long long)(exp), check_a_ = (long long)(act);                            \
    if (!check_note(check_e_ == check_a_, __FILE__, __LINE__, "CHECK_EQ_INT(" #exp ", " #act ")")) \
      fprintf(stderr, "  expected: %lld\n  actual:   %lld\n", check_e_, check_a_);                 \
  } while (0)

/* Prints a string value on a failure line: quoted, or NULL. */
static inline void check_print_str(const char *label, const char *s) {
  if (s)
    fprintf(stderr, "  %s\"%s\"\n", label, s);
  else
    fprintf(stderr, "  %sNULL\n", label);
}

/* CHECK_EQ_STR(expected, actual): C strings compared with strcmp; NULL equals only NULL. */
#define CHECK_EQ_STR(exp, act)                                                                     \
  do {                                                                                             \
    const char *check_e_ = (exp), *check_a_ = (act);                                               \
    int check_ok_ = check_e_ && check_a_ ? strcmp(check_e_, check_a_) == 0 : check_e_ == check_a_; \
    if (!check_note(check_ok_, __FILE__, __LINE__, "CHECK_EQ_STR(" #exp ", " #act ")")) {          \
      check_print_str("expected: ", check_e_);                                                     \
      check_print_str("actual:   ", check_a_);                                                     \
    }                                                                                              \
  } while (0)

/* CHECK_CONTAINS(haystack, needle): the string haystack contains needle. On failure prints the
 * needle and the first 2000 characters of the haystack. */
#define CHECK_CONTAINS(hay, needle)                                                                \
  do {                                                                                             \
    const char *check_h_ = (hay), *check_n_ = (needle);                                            \
    if (!check_note(check_h_ && check_n_ && strstr(check_h_, check_n_) != NULL, __FILE__,          \
                    __LINE__, "CHECK_CONTAINS(" #hay ", " #needle ")"))                            \
      fprintf(stderr, "  needle:   \"%s\"\n  haystack: \"%.2000s\"\n",                             \
              check_n_ ? check_n_ : "NULL", check_h_ ? check_h_ : "NULL");                         \
  } while (0)

/* CHECK_NEAR(expected, actual, tol): |expected - actual| <= tol, as doubles (NaN never passes). */
#define CHECK_NEAR(exp, act, tol)                                                                  \
  do {                                                                                             \
    double check_e_ = (double)(exp), check_a_ = (double)(act), check_t_ = (double)(tol);           \
    double check_d_ = check_e_ > check_a_ ? check_e_ - check_a_ : check_a_ - check_e_;             \
    if (!check_note(check_d_ <= check_t_, __FILE__, __LINE__,                                      \
                    "CHECK_NEAR(" #exp ", " #act ", " #tol ")"))                                   \
      fprintf(stderr, "  expected: %.17g\n  actual:   %.17g\n  |diff|:   %.17g > %.17g\n",         \
              check_e_, check_a_, check_d_, check_t_);                                             \
  } while (0)

/* TEST_SKIP("no ptxas"): the test cannot run here; CTest reports it as skipped. */
#define TEST_SKIP(...)                                                                             \
  do {                                                                                             \
    fprintf(stderr, "%s: SKIPPED: ", __FILE__);                                                    \
    fprintf(stderr, __VA_ARGS__);                                                                  \
    fputc('\n', stderr);                                                                           \
    exit(TEST_SKIP_CODE);                                                                          \
  } while (0)

/* The end of a test's main(): `TEST_MAIN_END();` or `return TEST_MAIN_END();`. Exits with 1
 * if any check failed, else evaluates to 0. */
#define TEST_MAIN_END() check_report(__FILE__)

#endif
