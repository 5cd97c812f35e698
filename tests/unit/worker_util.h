/* tests/unit/worker_util.h — what the worker tests check about the test process itself: open
 * file descriptors, zombie children, whether a CUDA driver was loaded, and where the tilec
 * binary (the worker executable) is. Header-only (each test is one translation unit).
 */
#ifndef TILEC_TESTS_WORKER_UTIL_H
#define TILEC_TESTS_WORKER_UTIL_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

#endif
