/* tests/unit/bucket.c — bucket keys of problems and the nearest tuned bucket (autotune/bucket.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/bucket.h"
#include "check.h"
#include "kernels/builtin_sources.h"

static ir_kernel *builtin(const char *name) {
  for (const struct tilec_builtin_source *b = tilec_builtin_sources; b->name; b++)
    if (strcmp(b->name, name) == 0) {
      ir_kernel *k = NULL;
      ir_diag d;
      if (ir_parse(b->text, strlen(b->text), name, &k, &d) == IR_OK)
        return k;
    }
  return NULL;
}

/* The key of spec, or NULL (with the status in *st). Caller frees. */
static char *key(const ir_kernel *k, const char *spec, const char *dtype, at_status *st,
                 at_err *e) {
  kn_shape shape;
  char err[128];
  REQUIRE(kn_shape_parse(spec, &shape, err, sizeof err) == 0);
  char *out = NULL;
  *st = at_bucket_key(k, &shape, dtype, &out, e);
  return out;
}

static void check_key(const ir_kernel *k, const char *spec, const char *dtype, const char *want) {
  at_status st;
  at_err e;
  char *got = key(k, spec, dtype, &st, &e);
  if (!CHECK(st == AT_OK))
    fprintf(stderr, "  %s: %s\n", spec, e.msg);
  CHECK_EQ_STR(want, got);
  free(got);
}

static void test_keys(void) {
  ir_kernel *mm = builtin("matmul"), *at = builtin("attention");
  REQUIRE(mm && at);
  check_key(mm, "M=3000,N=14336,K=4000", "bf16",
            "K=multiple(256):4096,M=pow2:4096,N=multiple(256):14336,dtype=bf16");
  /* decode sizes share buckets by powers of two; prefill sizes are far away */
  check_key(mm, "M=9,N=4096,K=4096", "bf16",
            "K=multiple(256):4096,M=pow2:16,N=multiple(256):4096,dtype=bf16");
  check_key(mm, "M=16,N=4096,K=4096", "bf16",
            "K=multiple(256):4096,M=pow2:16,N=multiple(256):4096,dtype=bf16");
  check_key(mm, "M=17,N=4096,K=4096", "bf16",
            "K=multiple(256):4096,M=pow2:32,N=multiple(256):4096,dtype=bf16");
  check_key(mm, "K=256,M=1,N=1", NULL, "K=multiple(256):256,M=pow2:1,N=multiple(256):256");
  /* keys that are no dim of the kernel (transb) stay exact; the order is by key */
  check_key(mm, "transb=1,N=8,M=8,K=8", "f16",
            "K=multiple(256):256,M=pow2:8,N=multiple(256):256,dtype=f16,transb=1");
  /* attention: D and causal change the code and stay exact; scale does not change the speed */
  check_key(at, "B=3,H=32,S=1000,D=128,causal=1,scale=0.1", "bf16",
            "B=pow2:4,D=128,H=32,S=pow2:1024,causal=1,dtype=bf16,scale=any");
  /* a comma inside a value (mask components) becomes ';' */
  ir_kernel *bs = builtin("bsattention");
  REQUIRE(bs);
  check_key(bs, "H=8,S=3000,mask=causal,document:1000+2000", "f16",
            "H=8,S=pow2:4096,dtype=f16,mask=causal;document:1000+2000");
  CHECK_NEAR(8, at_bucket_distance("H=8,mask=causal;document:1000+2000", "H=8,mask=causal"), 0);
  ir_kernel_free(bs);
  at_status st;
  at_err e;
  char *k = key(mm, "M=1e3,N=8,K=8", NULL, &st, &e);
  CHECK(k == NULL);
  CHECK_EQ_INT(AT_ERR_ARG, st);
  CHECK_CONTAINS(e.msg, "--shape M=1e3: the pow2 bucket needs an integer");
  k = key(mm, "M=8,N=8,K=8,dtype=bf16", "f16", &st, &e);
  CHECK_EQ_INT(AT_ERR_ARG, st);
  kn_shape shape = {0};
  char *out = (char *)"x";
  CHECK_EQ_INT(AT_ERR_ARG, at_bucket_key(NULL, &shape, NULL, &out, &e));
  CHECK(out == NULL);
  CHECK_EQ_INT(AT_ERR_ARG, at_bucket_key(mm, NULL, NULL, &out, &e));
  CHECK_EQ_INT(AT_ERR_ARG, at_bucket_key(mm, &shape, NULL, NULL, &e));
  /* a kernel without a buckets section: every value is exact */
  const char *text = "kernel k\nargs (%X: tensor<f32>[N])\ngrid (cdiv(N, 128))\n{\n}\n";
  ir_kernel *plain = NULL;
  ir_diag d;
  REQUIRE(ir_parse(text, strlen(text), "k", &plain, &d) == IR_OK);
  check_key(plain, "N=1000", NULL, "N=1000");
  ir_kernel_free(plain);
  ir_kernel_free(mm);
  ir_kernel_free(at);
}

static void test_distance(void) {
  CHECK_NEAR(0, at_bucket_distance("M=pow2:16,N=8", "M=pow2:16,N=8"), 0);
  CHECK_NEAR(1, at_bucket_distance("M=pow2:16,N=8", "M=pow2:32,N=8"), 1e-12);
  CHECK_NEAR(8, at_bucket_distance("M=pow2:16,N=8", "M=pow2:4096,N=8"), 1e-12);
  CHECK_NEAR(8, at_bucket_distance("M=pow2:16,dtype=bf16", "M=pow2:16,dtype=f16"), 0);
  CHECK_NEAR(8, at_bucket_distance("M=pow2:16", "M=pow2:16,N=8"), 0);
  CHECK_NEAR(8, at_bucket_distance("M=pow2:16,N=8", "M=pow2:16"), 0);
  CHECK_NEAR(at_bucket_distance("K=multiple(256):512", "K=multiple(256):4096"),
             at_bucket_distance("K=multiple(256):4096", "K=multiple(256):512"), 0);
  CHECK(isinf(at_bucket_distance("M", "M=1")));
  CHECK(isinf(at_bucket_distance("M=1", NULL)));
}

static void test_nearest(void) {
  const at_bucket_winner list[] = {
      {"K=multiple(256):4096,M=pow2:4096,N=4096,dtype=bf16", "BM=128,BN=128"},
      {"K=multiple(256):4096,M=pow2:16,N=4096,dtype=bf16", "BM=16,BN=64"},
      {"K=multiple(256):4096,M=pow2:16,N=4096,dtype=bf16", "BM=16,BN=128"},
      {"K=multiple(256):4096,M=pow2:32,N=4096,dtype=f16", "BM=32,BN=32"},
      {"not a bucket", "BM=1"},
      {"K=multiple(256):4096,M=pow2:64,N=4096,dtype=bf16", "BM=64,BN=64"},
  };
  const char *out[8];
  int n;
  at_err e;
  /* an unseen M=32 bf16 problem: M=16 and M=64 are one octave away (M=16 sorts first), f16 is
   * another dtype, 4096 is far */
  REQUIRE(at_bucket_nearest("K=multiple(256):4096,M=pow2:32,N=4096,dtype=bf16", list, 6, 8, out, &n,
                            &e) == AT_OK);
  CHECK_EQ_INT(5, n);
  CHECK_EQ_STR("BM=16,BN=64", out[0]);
  CHECK_EQ_STR("BM=16,BN=128", out[1]);
  CHECK_EQ_STR("BM=64,BN=64", out[2]);
  CHECK_EQ_STR("BM=128,BN=128", out[3]); /* 7 octaves, less than a dtype mismatch (8) */
  CHECK_EQ_STR("BM=32,BN=32", out[4]);
  REQUIRE(at_bucket_nearest("K=multiple(256):4096,M=pow2:2048,N=4096,dtype=bf16", list, 6, 1, out,
                            &n, &e) == AT_OK);
  CHECK_EQ_INT(1, n);
  CHECK_EQ_STR("BM=128,BN=128", out[0]);
  REQUIRE(at_bucket_nearest("M=pow2:2", list, 0, 4, out, &n, &e) == AT_OK);
  CHECK_EQ_INT(0, n);
  CHECK_EQ_INT(AT_ERR_ARG, at_bucket_nearest("garbage", list, 6, 4, out, &n, &e));
  CHECK_CONTAINS(e.msg, "not a bucket text");
  CHECK_EQ_INT(AT_ERR_ARG, at_bucket_nearest("M=pow2:2", list, -1, 4, out, &n, &e));
  CHECK_EQ_INT(AT_ERR_ARG, at_bucket_nearest("M=pow2:2", NULL, 3, 4, out, &n, &e));
}

/* The verifier checks buckets of kernels changed after parsing (or built in C). */
static void test_verify(void) {
  ir_kernel *mm = builtin("matmul");
  REQUIRE(mm && mm->nbuckets == 3);
  ir_diag d;
  CHECK_EQ_INT(IR_OK, ir_verify(mm, &d));
  CHECK_EQ_STR("pow2", ir_bucket_kind_name(mm->buckets[0].kind));
  CHECK_EQ_STR("multiple", ir_bucket_kind_name(mm->buckets[1].kind));
  CHECK_EQ_INT(256, mm->buckets[1].arg);
  int saved = mm->buckets[1].sym;
  mm->buckets[1].sym = mm->buckets[0].sym;
  CHECK_EQ_INT(IR_ERR_VERIFY, ir_verify(mm, &d));
  CHECK_CONTAINS(d.msg, "bucket of 'M' declared twice");
  mm->buckets[1].sym = ir_sym_find(mm, "BM", 2);
  CHECK_EQ_INT(IR_ERR_VERIFY, ir_verify(mm, &d));
  CHECK_CONTAINS(d.msg, "only dims and runtime parameters can be bucketed");
  mm->buckets[1].sym = saved;
  mm->buckets[1].arg = 0;
  CHECK_EQ_INT(IR_ERR_VERIFY, ir_verify(mm, &d));
  CHECK_CONTAINS(d.msg, "bucket of 'N' is malformed");
  ir_kernel_free(mm);
}

int main(void) {
  test_keys();
  test_distance();
  test_nearest();
  test_verify();
  return TEST_MAIN_END();
}
