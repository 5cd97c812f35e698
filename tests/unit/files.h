/* tests/unit/files.h — reading a test's input files. Header-only (each test is one unit). */
#ifndef TILEC_TESTS_FILES_H
#define TILEC_TESTS_FILES_H

#include <stdio.h>
#include <stdlib.h>

/* The whole file as a NUL-terminated string (caller frees), or NULL when it cannot be read. */
static inline char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  if (buf)
    buf[n] = 0;
  fclose(f);
  return buf;
}

#endif
