/* compiler/cli_util.c — file reading and JSON writers shared by the commands (cli_util.h). */
#include "compiler/cli_util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

char *cli_read_file(const char *path, size_t *len, char *err, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  size_t max = IR_MAX_FILE_BYTES + 1, n = 0;
  char *buf = malloc(max + 1);
  if (buf)
    n = fread(buf, 1, max, f);
  bool bad = !buf || ferror(f);
  fclose(f);
  if (bad) {
    snprintf(err, cap, "cannot read %s", path);
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

void cli_json_str(FILE *f, const char *s) {
  if (!s) {
    fputs("null", f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

void cli_json_num(FILE *f, double v) {
  if (isfinite(v))
    fprintf(f, "%.6g", v);
  else
    fputs("null", f);
}

int cli_die(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("tilec: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return code;
}
