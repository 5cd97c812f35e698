/* autotune/at.c — names of the autotuner's statuses and run outcomes, and the error filler
 * shared by every file in autotune/ (see at.h). */
#include "autotune/at.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[] = {
    [AT_OK] = "ok",
    [AT_MISS] = "miss",
    [AT_ERR_ARG] = "arg",
    [AT_ERR_IO] = "io",
    [AT_ERR_PERM] = "perm",
    [AT_ERR_BUSY] = "busy",
    [AT_ERR_CORRUPT] = "corrupt",
    [AT_ERR_SCHEMA] = "schema",
    [AT_ERR_OOM] = "oom",
    [AT_ERR_ENV] = "env",
    [AT_ERR_INTERNAL] = "internal",
};

const char *at_status_name(at_status s) {
  if ((unsigned)s < sizeof status_names / sizeof status_names[0] && status_names[s])
    return status_names[s];
  return "unknown";
}

at_status at_fail(at_err *e, at_status s, const char *fmt, ...) {
  if (e) {
    e->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
  }
  return s;
}

static const char *const run_names[AT_RUN_COUNT] = {
    [AT_RUN_OK] = "ok",
    [AT_RUN_WRONG] = "wrong",
    [AT_RUN_FAULT] = "fault",
    [AT_RUN_TIMEOUT] = "timeout",
    [AT_RUN_RESOURCES] = "resources",
    [AT_RUN_COMPILE] = "compile_error",
    [AT_RUN_PRUNED] = "pruned",
    [AT_RUN_COMPILED] = "compiled",
};

const char *at_run_name(at_run r) { return (unsigned)r < AT_RUN_COUNT ? run_names[r] : "unknown"; }

bool at_run_parse(const char *name, at_run *out) {
  for (int i = 0; i < AT_RUN_COUNT; i++)
    if (name && strcmp(name, run_names[i]) == 0) {
      *out = (at_run)i;
      return true;
    }
  return false;
}
