/* unit.dump — TILEC_DUMP (codegen/dump.c): every requested stage of a compilation is written
 * to TILEC_DUMP_DIR with its text; stages not requested are not; each compilation gets its own
 * numbered files. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "compiler/gpu.h"
#include "kernels/builtin_sources.h"
#include "tests/unit/check.h"
#include "tests/unit/files.h"

static char dir[] = "/tmp/tilec-dump-test.XXXXXX";

/* Compiles the built-in bsmatmul's default config for sm_90a (PTX). */
static void compile_once(void) {
  const char *text = NULL;
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, "bsmatmul"))
      text = s->text;
  ir_kernel *k = NULL, *spec = NULL;
  ir_diag d;
  ir_config cfg = {0};
  REQUIRE(text && !ir_parse(text, strlen(text), "bsmatmul.tile", &k, &d) && !ir_verify(k, &d));
  REQUIRE(!ir_specialize(k, &cfg, &spec, &d));
  cc_gpu g;
  REQUIRE(!cc_gpu_build(spec, &g, &d));
  cg_output out;
  char err[512];
  CHECK_EQ_INT(0, cg_lower(&g, "sm_90a", CG_EMIT_PTX, &out, err, sizeof err));
  cg_output_free(&out);
  cc_gpu_free(&g);
  ir_kernel_free(spec);
  ir_kernel_free(k);
}

/* The content of the one file in dir whose name ends with suffix and holds tag ("-1."), or NULL. */
static char *find(const char *tag, const char *suffix) {
  DIR *dd = opendir(dir);
  char *found = NULL;
  for (struct dirent *e; dd && (e = readdir(dd));) {
    size_t n = strlen(e->d_name), m = strlen(suffix);
    if (n > m && !strcmp(e->d_name + n - m, suffix) && strstr(e->d_name, tag) &&
        !strncmp(e->d_name, "bsmatmul.", 9)) {
      char path[512];
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      free(found);
      found = slurp(path);
    }
  }
  if (dd)
    closedir(dd);
  return found;
}

int main(void) {
  REQUIRE(mkdtemp(dir));
  setenv("TILEC_DUMP", "gpu,llvm,ptx", 1); /* read once, at the first compilation */
  setenv("TILEC_DUMP_DIR", dir, 1);
  CHECK(cg_dump_wanted("ptx"));
  CHECK(!cg_dump_wanted("opt"));
  compile_once();
  compile_once();
  char *gpu = find("-1.", ".gpu.txt"), *ll = find("-1.", ".llvm.ll"), *opt = find("-1.", ".opt.ll"),
       *ptx = find("-1.", ".ptx"), *ptx2 = find("-2.", ".ptx");
  CHECK_CONTAINS(gpu, "kernel bsmatmul");
  CHECK_CONTAINS(ll, "define");
  CHECK(opt == NULL); /* not requested */
  CHECK_CONTAINS(ptx, ".entry bsmatmul");
  CHECK(ptx2 != NULL); /* the second compilation has its own files */
  CHECK(ptx && ptx2 && !strcmp(ptx, ptx2));
  free(gpu), free(ll), free(opt), free(ptx), free(ptx2);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK_EQ_INT(0, system(cmd));
  return TEST_MAIN_END();
}
