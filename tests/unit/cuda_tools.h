/* tests/unit/cuda_tools.h — finding the CUDA toolkit's command-line tools from a test.
 *
 * Header-only (each test is one translation unit). Order: the environment variable CTest sets
 * (TILEC_PTXAS), then $CUDA_HOME/bin, then /usr/local/cuda/bin.
 */
#ifndef TILEC_TESTS_CUDA_TOOLS_H
#define TILEC_TESTS_CUDA_TOOLS_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The ptxas to run, or NULL when there is none (the caller skips what needs it). The result
 * is env's value, buf, or a static string. */
static inline const char *find_ptxas(char *buf, size_t cap) {
  const char *env = getenv("TILEC_PTXAS"), *home = getenv("CUDA_HOME");
  if (env && *env && access(env, X_OK) == 0)
    return env;
  if (home && *home) {
    snprintf(buf, cap, "%s/bin/ptxas", home);
    if (access(buf, X_OK) == 0)
      return buf;
  }
  return access("/usr/local/cuda/bin/ptxas", X_OK) == 0 ? "/usr/local/cuda/bin/ptxas" : NULL;
}

#endif
