/* unit.kernel_hash — at_kernel_hash (autotune/compile.h): what a kernel's identity in the tuning
 * database covers. Extending a domain, a type variable's choices, a default, the constraints or
 * the buckets keeps the hash (stored rows stay valid); any change of arguments, grid or body
 * changes it. */
#include <stdlib.h>
#include <string.h>

#include "autotune/compile.h"
#include "kernels/builtin_sources.h"
#include "tests/unit/check.h"

static const char *builtin(const char *name) {
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, name))
      return s->text;
  return NULL;
}

/* The text with the first occurrence of `from` replaced by `to` (the test's edit), or NULL. */
static char *edit(const char *text, const char *from, const char *to) {
  const char *at = strstr(text, from);
  if (!at)
    return NULL;
  size_t n = strlen(text) + strlen(to) + 1, pre = (size_t)(at - text);
  char *out = malloc(n);
  if (!out)
    return NULL;
  memcpy(out, text, pre);
  strcpy(out + pre, to);
  strcat(out, at + strlen(from));
  return out;
}

/* Hash of a kernel text; "" when it does not parse (a CHECK fails then). */
static void hash_of(const char *text, char out[65]) {
  ir_kernel *k = NULL;
  ir_diag d;
  at_err e;
  out[0] = 0;
  bool ok = text && !ir_parse(text, strlen(text), "t.tile", &k, &d) && !ir_verify(k, &d);
  CHECK(ok);
  if (ok)
    CHECK_EQ_INT(AT_OK, at_kernel_hash(k, out, &e));
  ir_kernel_free(k);
}

static void same(const char *base, const char *from, const char *to, bool expect_same) {
  char a[65], b[65];
  char *t = edit(base, from, to);
  CHECK(t != NULL);
  hash_of(base, a);
  hash_of(t, b);
  CHECK_EQ_INT(64, (int)strlen(a));
  if (expect_same)
    CHECK_EQ_STR(a, b);
  else if (!check_note(strcmp(a, b) != 0, __FILE__, __LINE__, "hash changed"))
    fprintf(stderr, "  edit '%s' -> '%s' kept the hash\n", from, to);
  free(t);
}

int main(void) {
  const char *mm = builtin("matmul");
  REQUIRE(mm != NULL);
  /* what selects configs: same identity */
  same(mm, "BM = 128 in [16, 32, 64, 128, 256]", "BM = 128 in [16, 32, 64, 128, 256, 512]", true);
  same(mm, "BK = 32 in", "BK = 64 in", true);
  same(mm, "TA in [bf16, f16]", "TA in [bf16]", true);
  same(mm, "BM * BN <= WARPS * 32 * 128", "BM * BN <= WARPS * 32 * 64", true);
  same(mm, "M = pow2", "M = exact", true);
  /* what defines code: a new identity */
  same(mm, "%gsize = min %left, %gm : i32", "%gsize = max %left, %gm : i32", false);
  same(mm, "grid (cdiv(M, BM) * cdiv(N, BN))", "grid (cdiv(N, BN) * cdiv(M, BM))", false);
  same(mm, "%bm = const BM : i32", "%bm = const BN : i32", false);
  /* every built-in has a distinct identity */
  char h[4][65];
  const char *names[4] = {"matmul", "attention", "bsattention", "bsmatmul"};
  for (int i = 0; i < 4; i++) {
    hash_of(builtin(names[i]), h[i]);
    for (int j = 0; j < i; j++)
      CHECK(strcmp(h[i], h[j]) != 0);
  }
  at_err e;
  char out[65];
  CHECK_EQ_INT(AT_ERR_ARG, at_kernel_hash(NULL, out, &e));
  return TEST_MAIN_END();
}
