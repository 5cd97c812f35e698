/* tests/unit/golden.c — IR golden tests: tests/ir/NAME.tile against checked-in expected text.
 *
 * NAME.expected holds the canonical print of NAME.tile. A line `# spec: K=V,...` in the .tile
 * adds NAME.spec.expected: the print of the kernel specialized with that config (empty value:
 * the defaults). Every kernel is verified, and the specialized one again. Run with
 * TILEC_UPDATE_GOLDEN=1 to rewrite the expected files, then review the diff.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tests/unit/files.h"
#include "ir/ir.h"

static void compare(const char *path, const char *actual) {
  if (getenv("TILEC_UPDATE_GOLDEN")) {
    FILE *f = fopen(path, "wb");
    if (CHECK(f != NULL)) {
      fputs(actual, f);
      fclose(f);
    }
    return;
  }
  char *expected = slurp(path);
  if (!check_note(expected != NULL, __FILE__, __LINE__, path))
    return;
  if (!check_note(strcmp(expected, actual) == 0, __FILE__, __LINE__, path))
    fprintf(stderr, "  golden %s differs; actual:\n%s\n", path, actual);
  free(expected);
}

/* Checks dir/name against outdir/<name minus .tile>.expected; built-in kernels (always_spec)
 * also get their default specialization checked. */
static void one(const char *dir, const char *name, const char *outdir, bool always_spec) {
  char path[1024], base[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(base, sizeof base, "%s/%.*s", outdir, (int)(strlen(name) - 5), name);
  char *text = slurp(path);
  if (!CHECK(text != NULL))
    return;
  ir_kernel *k = NULL, *spec = NULL;
  ir_diag d;
  if (!check_note(ir_parse(text, strlen(text), path, &k, &d) == IR_OK && ir_verify(k, &d) == IR_OK,
                  __FILE__, __LINE__, path)) {
    fprintf(stderr, "%s\n", d.msg);
    goto done;
  }
  char *printed = ir_print(k), out[1100];
  snprintf(out, sizeof out, "%s.expected", base);
  compare(out, printed);
  free(printed);
  const char *spec_line = strstr(text, "# spec:");
  if (!spec_line && always_spec)
    spec_line = "# spec:";
  if (spec_line) {
    ir_config cfg = {0};
    char set[512];
    size_t n = strcspn(spec_line + 7, "\n");
    snprintf(set, sizeof set, "%.*s", (int)n, spec_line + 7);
    char *s = set;
    while (*s == ' ')
      s++;
    if (!check_note((!*s || ir_config_parse(&cfg, s, &d) == IR_OK) &&
                        ir_specialize(k, &cfg, &spec, &d) == IR_OK && ir_verify(spec, &d) == IR_OK,
                    __FILE__, __LINE__, path)) {
      fprintf(stderr, "%s\n", d.msg);
      goto done;
    }
    printed = ir_print(spec);
    snprintf(out, sizeof out, "%s.spec.expected", base);
    compare(out, printed);
    free(printed);
  }
done:
  ir_kernel_free(spec);
  ir_kernel_free(k);
  free(text);
}

static int each(const char *dir, const char *outdir, bool always_spec) {
  DIR *dp = opendir(dir);
  REQUIRE(dp != NULL);
  struct dirent *e;
  int n = 0;
  while ((e = readdir(dp))) {
    size_t len = strlen(e->d_name);
    if (len > 5 && !strcmp(e->d_name + len - 5, ".tile")) {
      one(dir, e->d_name, outdir, always_spec);
      n++;
    }
  }
  closedir(dp);
  return n;
}

int main(void) {
  const char *root = getenv("TILEC_SOURCE_DIR") ? getenv("TILEC_SOURCE_DIR") : TILEC_SOURCE_DIR;
  char dir[1024], kdir[1024], kout[1024];
  snprintf(dir, sizeof dir, "%s/tests/ir", root);
  snprintf(kdir, sizeof kdir, "%s/kernels", root);
  snprintf(kout, sizeof kout, "%s/tests/ir/builtin", root);
  CHECK(each(dir, dir, false) >= 3);
  CHECK(each(kdir, kout, true) == 4);
  return TEST_MAIN_END();
}
