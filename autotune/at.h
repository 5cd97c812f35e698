/* autotune/at.h — what every part of the autotuner shares: the status of a call, its error
 * message, and the outcome of one tuning candidate.
 *
 * autotune/ holds the search (space.h, search.h), the measuring worker process (worker.h) and
 * the SQLite tuning database (db.h; the only folder that includes sqlite3.h). Every fallible
 * call returns an at_status and, when e != NULL, fills e with the status and one line of text.
 * Nothing in autotune/ prints unless asked, exits or aborts on user error.
 */
#ifndef TILEC_AUTOTUNE_AT_H
#define TILEC_AUTOTUNE_AT_H

#include <stdbool.h>

/* The status of a call. */
typedef enum {
  AT_OK = 0,
  AT_MISS,        /* a lookup found nothing usable (no row, or a stored blob failed its check) */
  AT_ERR_ARG,     /* a bad argument from the caller (NULL, malformed text, unknown name) */
  AT_ERR_IO,      /* a file or pipe could not be read or written */
  AT_ERR_PERM,    /* a refused location: unsafe cache directory, read-only database */
  AT_ERR_BUSY,    /* the database stayed locked past the busy timeout */
  AT_ERR_CORRUPT, /* the database file is damaged or not a tilec database */
  AT_ERR_SCHEMA,  /* the database was written by a newer tilec (user_version too high) */
  AT_ERR_OOM,     /* host memory exhausted */
  AT_ERR_ENV,     /* an environment problem: no driver, no GPU, no worker executable */
  AT_ERR_INTERNAL /* a broken invariant or an unexpected library error */
} at_status;

/* The error of the last failed call. Callers own it, usually on the stack. */
typedef struct at_err {
  at_status status;
  char msg[1024];
} at_err;

/* "ok", "miss", "arg", "io", "perm", "busy", "corrupt", "schema", "oom", "env", "internal". */
const char *at_status_name(at_status s);

/* Fills e (when not NULL) with s and a printf-style message; returns s. */
at_status at_fail(at_err *e, at_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The outcome of one candidate config. Stored in the database as its name. Only AT_RUN_OK rows
 * carry a time and can win. */
typedef enum {
  AT_RUN_OK = 0,    /* validated against the reference, then timed */
  AT_RUN_WRONG,     /* ran, but its output differs from the reference (never selected) */
  AT_RUN_FAULT,     /* illegal address, trap or crash of the worker */
  AT_RUN_TIMEOUT,   /* did not finish within the wall-clock limit; the worker was killed */
  AT_RUN_RESOURCES, /* rejected at launch: registers, shared memory or threads */
  AT_RUN_COMPILE,   /* the code generator, ptxas or nvJitLink rejected it */
  AT_RUN_PRUNED,    /* rejected before compiling by a constraint or an analytic check */
  AT_RUN_COMPILED,  /* compile-only sweeps: compiled, resource usage recorded, not run */
} at_run;

enum { AT_RUN_COUNT = AT_RUN_COMPILED + 1 };

/* "ok", "wrong", "fault", "timeout", "resources", "compile_error", "pruned", "compiled". */
const char *at_run_name(at_run r);

/* The inverse of at_run_name; false for an unknown name. */
bool at_run_parse(const char *name, at_run *out);

#endif
