/* codegen/dump.c — TILEC_DUMP: the text of every compilation stage written to a folder.
 *
 * TILEC_DUMP is a comma-separated list of stages, or `all`: gpu (the specialized kernel
 * as GPU IR: its ops and a layout on every tile), llvm (the lowering's LLVM IR, verified), opt
 * (after the optimization pipeline), ptx. Each compilation that passes through cg_lower writes
 * TILEC_DUMP_DIR/<kernel>.<pid>-<n>.{gpu.txt,llvm.ll,opt.ll,ptx} (default folder `tilec-dump`,
 * created when missing); n counts compilations in the process, so threads and processes never
 * clobber each other's files. A file that cannot be written is reported once per process on stderr:
 * the user asked for the dump, so a silent miss would mislead. Without TILEC_DUMP nothing happens.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/codegen.h"

static const char *const stages[] = {"gpu", "llvm", "opt", "ptx"};
static const char *const files[] = {"gpu.txt", "llvm.ll", "opt.ll", "ptx"}; /* suffixes */
enum { NSTAGES = sizeof stages / sizeof stages[0] };

static struct {
  unsigned wanted; /* bit i: stages[i] */
  char dir[512];
} cfg;
static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;
static atomic_ulong seq;
static atomic_bool warned;

static int stage_index(const char *name, size_t n) {
  for (int i = 0; i < NSTAGES; i++)
    if (strlen(stages[i]) == n && !strncmp(stages[i], name, n))
      return i;
  return -1;
}

static void read_env(void) {
  const char *v = getenv("TILEC_DUMP"), *dir = getenv("TILEC_DUMP_DIR");
  snprintf(cfg.dir, sizeof cfg.dir, "%s", dir && *dir ? dir : "tilec-dump");
  for (const char *p = v; p && *p;) {
    size_t n = strcspn(p, ",");
    int i = stage_index(p, n);
    if (n == 3 && !strncmp(p, "all", 3))
      cfg.wanted = (1u << NSTAGES) - 1;
    else if (i >= 0)
      cfg.wanted |= 1u << i;
    else if (n > 0)
      fprintf(stderr, "tilec: TILEC_DUMP: unknown stage '%.*s' (gpu, llvm, opt, ptx, all)\n",
              (int)n, p);
    p += n + (p[n] == ',');
  }
}

bool cg_dump_wanted(const char *stage) {
  pthread_once(&cfg_once, read_env);
  int i = stage_index(stage, strlen(stage));
  return i >= 0 && (cfg.wanted >> i & 1);
}

unsigned long cg_dump_next(void) {
  pthread_once(&cfg_once, read_env);
  return cfg.wanted ? atomic_fetch_add(&seq, 1) + 1 : 0;
}

void cg_dump(const char *kernel, unsigned long n, const char *stage, const char *text) {
  if (!text || !cg_dump_wanted(stage))
    return;
  int i = stage_index(stage, strlen(stage));
  char path[1024], name[128];
  snprintf(name, sizeof name, "%s", kernel && *kernel ? kernel : "kernel");
  for (char *c = name; *c; c++) /* a kernel name is an identifier, but be safe in paths */
    if (*c == '/' || *c == '.')
      *c = '_';
  snprintf(path, sizeof path, "%s/%s.%ld-%lu.%s", cfg.dir, name, (long)getpid(), n, files[i]);
  if (mkdir(cfg.dir, 0755) != 0 && errno != EEXIST)
    goto fail;
  FILE *f = fopen(path, "w");
  if (!f)
    goto fail;
  bool bad = fputs(text, f) < 0;
  if (fclose(f) != 0 || bad)
    goto fail;
  return;
fail:
  if (!atomic_exchange(&warned, true))
    fprintf(stderr, "tilec: TILEC_DUMP: cannot write %s: %s\n", path, strerror(errno));
}
