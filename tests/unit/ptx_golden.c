/* tests/unit/ptx_golden.c — CHECK-line tests of emitted PTX, and the PTX replay of kernels/.
 *
 * Part 1: every tests/ptx/NAME.tile is compiled (default config, `# arch: sm_XX`) and its PTX
 * must contain each `# CHECK: text` line in order (FileCheck style: each match starts after the
 * previous one), and no `# CHECK-NOT: text` after the last CHECK's match.
 * Part 2 ("process replay"): the PTX of every built-in kernel's default config for sm_80 and
 * sm_90a is hashed (64-bit FNV-1a) and compared with tests/ptx/replay.txt, so a refactor that
 * changes generated code fails here. After a deliberate change: TILEC_UPDATE_GOLDEN=1, then
 * review the new hashes with the diff of the PTX.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "compiler/gpu.h"
#include "ir/ir.h"
#include "kernels/builtin_sources.h"
#include "tests/unit/check.h"
#include "tests/unit/files.h"

/* PTX of a kernel's default config for arch; NULL (and a message) on failure. */
static char *ptx_of(const char *text, const char *name, const char *arch) {
  ir_kernel *k = NULL, *spec = NULL;
  ir_diag d;
  ir_config cfg = {0};
  cg_output out = {0};
  char *ptx = NULL, err[1024];
  cc_gpu g = {0};
  if (ir_parse(text, strlen(text), name, &k, &d) || ir_verify(k, &d) ||
      ir_specialize(k, &cfg, &spec, &d) || cc_gpu_build(spec, &g, &d)) {
    fprintf(stderr, "%s: %s\n", name, d.msg);
    goto done;
  }
  if (cg_lower(&g, arch, CG_EMIT_PTX, &out, err, sizeof err)) {
    fprintf(stderr, "%s: %s\n", name, err);
    goto done;
  }
  ptx = out.ptx;
  out.ptx = NULL;
done:
  cg_output_free(&out);
  cc_gpu_free(&g);
  ir_kernel_free(spec);
  ir_kernel_free(k);
  return ptx;
}

/* The text after `# KEY: ` on line `line`, trimmed, into buf; false when the line is not one. */
static bool directive(const char *line, const char *key, char *buf, size_t cap) {
  char pre[32];
  snprintf(pre, sizeof pre, "# %s: ", key);
  if (strncmp(line, pre, strlen(pre)) != 0)
    return false;
  const char *v = line + strlen(pre);
  size_t n = strcspn(v, "\r\n");
  snprintf(buf, cap, "%.*s", (int)n, v);
  return true;
}

static void check_file(const char *dir, const char *name) {
  char path[2048], arch[32] = "sm_90a", want[256];
  if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
    return;
  char *text = slurp(path);
  if (!CHECK(text != NULL))
    return;
  for (const char *l = text; l && *l == '#'; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
    directive(l, "arch", arch, sizeof arch);
  char *ptx = ptx_of(text, name, arch);
  if (!check_note(ptx != NULL, __FILE__, __LINE__, name)) {
    free(text);
    return;
  }
  const char *pos = ptx;
  int checks = 0;
  for (const char *l = text; l && *l == '#'; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    if (directive(l, "CHECK", want, sizeof want)) {
      const char *hit = strstr(pos, want);
      if (!check_note(hit != NULL, __FILE__, __LINE__, name))
        fprintf(stderr, "  %s: 'CHECK: %s' not found after offset %td\n", name, want, pos - ptx);
      else
        pos = hit + strlen(want);
      checks++;
    } else if (directive(l, "CHECK-NOT", want, sizeof want)) {
      if (!check_note(strstr(pos, want) == NULL, __FILE__, __LINE__, name))
        fprintf(stderr, "  %s: 'CHECK-NOT: %s' found\n", name, want);
    }
  }
  CHECK(checks > 0);
  free(ptx);
  free(text);
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

static void replay(const char *root) {
  char path[1024], line[256];
  snprintf(path, sizeof path, "%s/tests/ptx/replay.txt", root);
  bool update = getenv("TILEC_UPDATE_GOLDEN") != NULL;
  char *golden = update ? NULL : slurp(path);
  FILE *out = update ? fopen(path, "w") : NULL;
  if (!CHECK(update ? out != NULL : golden != NULL))
    return;
  if (out)
    fputs("# kernel arch fnv1a64-of-ptx (default config); regenerate: TILEC_UPDATE_GOLDEN=1\n",
          out);
  const char *archs[] = {"sm_80", "sm_90a"};
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    for (int a = 0; a < 2; a++) {
      char *ptx = ptx_of(s->text, s->name, archs[a]);
      if (!check_note(ptx != NULL, __FILE__, __LINE__, s->name))
        continue;
      snprintf(line, sizeof line, "%s %s %016" PRIx64 "\n", s->name, archs[a], fnv1a(ptx));
      if (out)
        fputs(line, out);
      else if (!check_note(strstr(golden, line) != NULL, __FILE__, __LINE__, s->name))
        fprintf(stderr,
                "  the PTX of %s for %s changed: now %s  (TILEC_UPDATE_GOLDEN=1 after "
                "reviewing the change)\n",
                s->name, archs[a], line);
      free(ptx);
    }
  if (out)
    fclose(out);
  free(golden);
}

int main(void) {
  const char *root = getenv("TILEC_SOURCE_DIR") ? getenv("TILEC_SOURCE_DIR") : TILEC_SOURCE_DIR;
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/ptx", root);
  DIR *dp = opendir(dir);
  REQUIRE(dp != NULL);
  struct dirent *e;
  int n = 0;
  while ((e = readdir(dp))) {
    size_t len = strlen(e->d_name);
    if (len > 5 && !strcmp(e->d_name + len - 5, ".tile")) {
      check_file(dir, e->d_name);
      n++;
    }
  }
  closedir(dp);
  CHECK(n >= 3);
  replay(root);
  return TEST_MAIN_END();
}
