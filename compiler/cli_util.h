/* compiler/cli_util.h — what the `tilec` commands share: reading a kernel file, JSON writers. */
#ifndef TILEC_COMPILER_CLI_UTIL_H
#define TILEC_COMPILER_CLI_UTIL_H

#include <stddef.h>
#include <stdio.h>

/* Reads a whole file (at most IR_MAX_FILE_BYTES; longer files are cut there and the parser
 * reports the limit). Returns a malloc'd NUL-terminated buffer and its length, or NULL with a
 * message in err. */
char *cli_read_file(const char *path, size_t *len, char *err, size_t cap);

/* Prints "tilec: <message>" and a newline on stderr; returns code (an exit code). */
int cli_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes s as a JSON string: quotes, backslashes and control characters escaped; other bytes
 * (UTF-8) as they are. NULL writes null. */
void cli_json_str(FILE *f, const char *s);

/* Writes v with 6 significant digits, or null when it is not finite. */
void cli_json_num(FILE *f, double v);

#endif
