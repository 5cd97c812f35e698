/* llvm_ptx.c - the statically linked LLVM NVPTX back end emits PTX that ptxas accepts.
 *
 * Builds the probe kernel through codegen/ for sm_80 and sm_90a, checks the PTX text, and,
 * when a CUDA toolkit's ptxas is found ($TILEC_PTXAS, $CUDA_HOME/bin, /usr/local/cuda/bin),
 * assembles each PTX with `ptxas -arch=<arch>`. Without ptxas only the text checks run.
 */
#include "codegen/codegen.h"
#include "tests/unit/check.h"
#include "tests/unit/cuda_tools.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Writes ptx to a temporary file and runs ptxas on it; returns ptxas's exit status. */
static int run_ptxas(const char *ptxas, const char *arch, const char *ptx) {
  char src[] = "/tmp/tilec_llvm_ptx_XXXXXX.ptx";
  char obj[sizeof src + 6];
  char archflag[32];
  char *argv[7];
  pid_t pid;
  int fd, status = -1;
  size_t len = strlen(ptx);

  fd = mkstemps(src, 4);
  if (fd < 0)
    return -1;
  if (write(fd, ptx, len) != (ssize_t)len) {
    close(fd);
    unlink(src);
    return -1;
  }
  close(fd);
  snprintf(obj, sizeof obj, "%s.cubin", src);
  snprintf(archflag, sizeof archflag, "-arch=%s", arch);
  argv[0] = (char *)ptxas;
  argv[1] = archflag;
  argv[2] = src;
  argv[3] = (char *)"-o";
  argv[4] = obj;
  argv[5] = NULL;
  if (posix_spawn(&pid, ptxas, NULL, NULL, argv, environ) == 0 && waitpid(pid, &status, 0) == pid)
    status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  else
    status = -1;
  unlink(src);
  unlink(obj);
  return status;
}

int main(void) {
  static const char *const arches[] = {"sm_80", "sm_90a"};
  char version[32], err[512], target_line[32], pathbuf[4096];
  const char *ptxas = find_ptxas(pathbuf, sizeof pathbuf);
  char *ptx = NULL;
  size_t i;

  CHECK_EQ_INT(0, cg_llvm_version(version, sizeof version));
  CHECK_EQ_INT(0, strncmp(version, "19.", 3));
  CHECK_EQ_INT(-1, cg_llvm_version(version, 2));

  for (i = 0; i < sizeof arches / sizeof arches[0]; i++) {
    err[0] = '\0';
    if (!CHECK(cg_emit_test_ptx(arches[i], &ptx, err, sizeof err) == 0)) {
      fprintf(stderr, "  %s: %s\n", arches[i], err);
      continue;
    }
    snprintf(target_line, sizeof target_line, ".target %s", arches[i]);
    CHECK_CONTAINS(ptx, ".entry tilec_probe");
    CHECK_CONTAINS(ptx, target_line);
    CHECK_CONTAINS(ptx, ".version 8.0");
    CHECK_CONTAINS(ptx, "st.global.u32");
    if (ptxas)
      CHECK_EQ_INT(0, run_ptxas(ptxas, arches[i], ptx));
    free(ptx);
    ptx = NULL;
  }
  if (!ptxas)
    fprintf(stderr, "note: no ptxas found; PTX not assembled\n");

  CHECK_EQ_INT(-1, cg_emit_test_ptx("sm_42", &ptx, err, sizeof err));
  CHECK(ptx == NULL);
  CHECK_CONTAINS(err, "unknown target 'sm_42'");
  CHECK(cg_target_find("sm_90a") && cg_target_find("sm_90a")->has_wgmma);
  TEST_MAIN_END();
}
