/* tests/unit/worker_util.h — what the worker tests check about the test process itself: open
 * file descriptors, zombie children, whether a CUDA driver was loaded, and where the tilec
 * binary (the worker executable) is; and the PTX of a candidate, compiled like the tuner does.
 * Header-only (each test is one translation unit).
 */
#ifndef TILEC_TESTS_WORKER_UTIL_H
#define TILEC_TESTS_WORKER_UTIL_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "compiler/gpu.h"
#include "kernels/builtin_sources.h"
#include "kernels/problem.h"

/* Open file descriptors of this process (entries of /proc/self/fd, minus the one listing it). */
static inline int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (!d)
    return -1;
  for (struct dirent *e; (e = readdir(d));)
    n += e->d_name[0] != '.';
  closedir(d);
  return n - 1;
}

/* Children of this process that are zombies (state Z in /proc/PID/stat). */
static inline int zombie_children(void) {
  DIR *d = opendir("/proc");
  int n = 0;
  if (!d)
    return -1;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    const char *close = strrchr(buf, ')'); /* after "pid (comm)": " S ppid ..." */
    char state;
    int ppid;
    if (close && sscanf(close + 1, " %c %d", &state, &ppid) == 2 && ppid == (int)getpid() &&
        state == 'Z')
      n++;
  }
  closedir(d);
  return n;
}

/* Whether a library whose path contains `needle` is mapped into this process. */
static inline bool mapped(const char *needle) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[4096];
  bool found = false;
  while (f && !found && fgets(line, sizeof line, f))
    found = strstr(line, needle) != NULL;
  if (f)
    fclose(f);
  return found;
}

/* $TILEC_BINARY_DIR/tilec (CTest sets the variable), or NULL when it is not there. */
static inline const char *tilec_exe(void) {
  static char path[4096];
  const char *dir = getenv("TILEC_BINARY_DIR");
  if (!dir)
    return NULL;
  snprintf(path, sizeof path, "%s/tilec", dir);
  return access(path, X_OK) == 0 ? path : NULL;
}

/* PTX of a built-in kernel for a --shape and a --set config on arch, compiled as the tuner
 * does (malloc'd; NULL on any failure). */
static inline char *compile_candidate(const char *kernel, const char *shape_text,
                                      const char *config, const char *arch) {
  const char *text = NULL;
  for (const struct tilec_builtin_source *b = tilec_builtin_sources; b->name; b++)
    if (!strcmp(b->name, kernel))
      text = b->text;
  ir_kernel *k = NULL, *spec = NULL;
  ir_diag d;
  ir_config cfg = {0};
  kn_shape shape;
  char err[1024];
  cc_gpu g;
  cg_output out = {0};
  char *ptx = NULL;
  if (text && !ir_parse(text, strlen(text), "kernel.tile", &k, &d) && !ir_verify(k, &d) &&
      !ir_config_parse(&cfg, config, &d) && !kn_shape_parse(shape_text, &shape, err, sizeof err) &&
      !kn_problem_config(kernel, &shape, NULL, &cfg, err, sizeof err) &&
      !ir_specialize(k, &cfg, &spec, &d) && !cc_gpu_build(spec, &g, &d)) {
    if (!cg_lower(&g, arch, CG_EMIT_PTX, &out, err, sizeof err)) {
      ptx = out.ptx;
      out.ptx = NULL;
    }
    cg_output_free(&out);
    cc_gpu_free(&g);
  }
  ir_kernel_free(spec);
  ir_kernel_free(k);
  return ptx;
}

#endif
