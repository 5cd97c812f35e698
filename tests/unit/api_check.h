/* tests/unit/api_check.h — CHECK_STATUS for the public API's tests: the call's status must be
 * the expected one; on failure both status names and tilec's message are printed. */
#ifndef TILEC_TESTS_API_CHECK_H
#define TILEC_TESTS_API_CHECK_H

#include "tests/unit/check.h"
#include "tilec/tilec.h"

#define CHECK_STATUS(exp, call)                                                                    \
  do {                                                                                             \
    tilec_status s_ = (call);                                                                      \
    if (!CHECK(s_ == (exp)))                                                                       \
      fprintf(stderr, "  expected %s, got %s: %s\n", tilec_status_name(exp),                       \
              tilec_status_name(s_), tilec_errmsg(NULL));                                          \
  } while (0)

#endif
