/* unit.at_names — the autotuner's status and run-outcome names round-trip. */
#include "autotune/at.h"
#include "tests/unit/check.h"

#include <string.h>

int main(void) {
  for (int i = 0; i < AT_RUN_COUNT; i++) {
    at_run r;
    CHECK(at_run_parse(at_run_name((at_run)i), &r));
    CHECK_EQ_INT(i, (int)r);
  }
  at_run r = AT_RUN_OK;
  CHECK(!at_run_parse("bogus", &r));
  CHECK(!at_run_parse(NULL, &r));
  CHECK_EQ_STR("compile_error", at_run_name(AT_RUN_COMPILE));
  CHECK_EQ_STR("unknown", at_run_name((at_run)99));
  CHECK_EQ_STR("corrupt", at_status_name(AT_ERR_CORRUPT));
  CHECK_EQ_STR("unknown", at_status_name((at_status)99));
  at_err e;
  CHECK_EQ_INT(AT_ERR_PERM, at_fail(&e, AT_ERR_PERM, "dir %s is %d", "x", 7));
  CHECK_EQ_INT(AT_ERR_PERM, e.status);
  CHECK_EQ_STR("dir x is 7", e.msg);
  CHECK_EQ_INT(AT_MISS, at_fail(NULL, AT_MISS, "nothing"));
  return TEST_MAIN_END();
}
