/* unit.db_api — the tuning database's calls: put/get/list/winner/winners/rows/keys, the offer
 * rule of merge and import, transactions, blobs and their checks, read-only mode, merge and
 * prune. */
#include "autotune/db.h"
#include "tests/unit/check.h"
#include "tests/unit/db_test.h"
#include "tests/unit/files.h"

#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static at_key key_of(const char *bucket) {
  return (at_key){"NVIDIA H200|sm_90|132sm|141GiB", "tilec 0.1|llvm 19.1.7", "matmul", "ab12cd",
                  bucket};
}

static void test_rows(at_db *db) {
  at_err e;
  at_key k = key_of("K=4096,M=pow2:4096,N=4096,TA=bf16");
  at_rows rows;
  CHECK_EQ_INT(AT_MISS, at_db_winner(db, &k, &rows, &e));
  CHECK_EQ_INT(0, rows.n);
  at_result r[5] = {
      db_test_row("BM=128,BN=128", AT_RUN_OK, 0.50, 1000),
      db_test_row("BM=64,BN=128", AT_RUN_OK, 0.40, 1000),
      db_test_row("BM=64,BN=64", AT_RUN_WRONG, NAN, 1000),
      db_test_row("BM=32,BN=32", AT_RUN_OK, 0.40, 1000), /* ties 0.40: config text decides */
      db_test_row("BM=256,BN=256", AT_RUN_RESOURCES, NAN, 1000),
  };
  CHECK_EQ_INT(AT_OK, at_db_put_many(db, &k, r, 5, &e));
  CHECK_EQ_INT(AT_OK, at_db_winner(db, &k, &rows, &e));
  if (CHECK(rows.n == 1)) {
    CHECK_EQ_STR("BM=32,BN=32", rows.r[0].config);
    CHECK_EQ_STR("matmul", rows.r[0].key.kernel);
    CHECK_NEAR(0.40, rows.r[0].median_ms, 0);
    CHECK_NEAR(0.40 * 0.99, rows.r[0].p20_ms, 0);
    CHECK_EQ_INT(1980, rows.r[0].sm_clock_mhz);
    CHECK_EQ_INT(2619, rows.r[0].mem_clock_mhz);
    CHECK_EQ_INT(1000, rows.r[0].time_unix);
  }
  at_rows_free(&rows);

  CHECK_EQ_INT(AT_OK, at_db_list(db, &k, &rows, &e));
  const char *order[] = {"BM=32,BN=32", "BM=64,BN=128", "BM=128,BN=128", "BM=256,BN=256",
                         "BM=64,BN=64"};
  CHECK_EQ_INT(5, rows.n);
  for (int i = 0; i < rows.n && i < 5; i++)
    CHECK_EQ_STR(order[i], rows.r[i].config);
  if (rows.n == 5) {
    CHECK(isnan(rows.r[4].median_ms));
    CHECK_EQ_INT(AT_RUN_WRONG, rows.r[4].status);
    CHECK_EQ_STR("illegal address", rows.r[4].detail);
  }
  at_rows_free(&rows);

  /* A wrong result for the former winner replaces it: the winner moves on. */
  at_result w = db_test_row("BM=32,BN=32", AT_RUN_WRONG, NAN, 1001);
  CHECK_EQ_INT(AT_OK, at_db_put(db, &k, &w, &e));
  CHECK_EQ_INT(AT_OK, at_db_winner(db, &k, &rows, &e));
  if (CHECK(rows.n == 1))
    CHECK_EQ_STR("BM=64,BN=128", rows.r[0].config);
  at_rows_free(&rows);
  CHECK_EQ_INT(AT_OK, at_db_get(db, &k, "BM=32,BN=32", &rows, &e));
  if (CHECK(rows.n == 1))
    CHECK_EQ_INT(AT_RUN_WRONG, rows.r[0].status);
  at_rows_free(&rows);
  CHECK_EQ_INT(AT_MISS, at_db_get(db, &k, "BM=1", &rows, &e));

  /* Adding configs (a larger space) leaves existing rows alone. */
  at_result more = db_test_row("BM=64,BN=128,STAGES=4", AT_RUN_OK, 0.45, 1002);
  CHECK_EQ_INT(AT_OK, at_db_put(db, &k, &more, &e));
  CHECK_EQ_INT(AT_OK, at_db_get(db, &k, "BM=64,BN=128", &rows, &e));
  if (CHECK(rows.n == 1))
    CHECK_NEAR(0.40, rows.r[0].median_ms, 0);
  at_rows_free(&rows);

  /* Bad rows are refused and change nothing. */
  at_result bad = db_test_row("BM=8", AT_RUN_OK, NAN, 0);
  CHECK_EQ_INT(AT_ERR_ARG, at_db_put(db, &k, &bad, &e));
  CHECK_CONTAINS(e.msg, "finite median");
  bad.median_ms = 1;
  bad.status = (at_run)42;
  CHECK_EQ_INT(AT_ERR_ARG, at_db_put(db, &k, &bad, &e));
  at_result two[2] = {db_test_row("BM=9", AT_RUN_OK, 1, 0),
                      db_test_row("BM=10", AT_RUN_OK, NAN, 0)};
  CHECK_EQ_INT(AT_ERR_ARG, at_db_put_many(db, &k, two, 2, &e));
  CHECK_EQ_INT(AT_MISS, at_db_get(db, &k, "BM=9", &rows, &e));
  at_key nul = k;
  nul.bucket = NULL;
  CHECK_EQ_INT(AT_ERR_ARG, at_db_put(db, &nul, &more, &e));

  /* time_unix 0 means now. */
  at_result now = db_test_row("BM=16,BN=16", AT_RUN_PRUNED, NAN, 0);
  CHECK_EQ_INT(AT_OK, at_db_put(db, &k, &now, &e));
  CHECK_EQ_INT(AT_OK, at_db_get(db, &k, "BM=16,BN=16", &rows, &e));
  if (CHECK(rows.n == 1))
    CHECK(llabs(rows.r[0].time_unix - (long long)time(NULL)) < 60);
  at_rows_free(&rows);

  /* Other buckets: winners by pattern (warm start) and keys. */
  at_key k2 = key_of("K=1024,M=pow2:1024,N=1024,TA=bf16");
  at_result r2 = db_test_row("BM=64,BN=64", AT_RUN_OK, 0.05, 1000);
  CHECK_EQ_INT(AT_OK, at_db_put(db, &k2, &r2, &e));
  at_key k3 = key_of("K=8,M=pow2:8,N=8,TA=bf16"); /* no ok row */
  at_result r3 = db_test_row("BM=16", AT_RUN_TIMEOUT, NAN, 1000);
  CHECK_EQ_INT(AT_OK, at_db_put(db, &k3, &r3, &e));
  at_key pat = {k.device, k.toolchain, k.kernel, k.ir_hash, NULL};
  CHECK_EQ_INT(AT_OK, at_db_winners(db, &pat, &rows, &e));
  CHECK_EQ_INT(2, rows.n);
  if (rows.n == 2) {
    CHECK_EQ_STR(k2.bucket, rows.r[0].key.bucket); /* byte order of buckets */
    CHECK_EQ_STR("BM=64,BN=64", rows.r[0].config);
    CHECK_EQ_STR(k.bucket, rows.r[1].key.bucket);
    CHECK_EQ_STR("BM=64,BN=128", rows.r[1].config);
  }
  at_rows_free(&rows);
  pat.kernel = "attention";
  CHECK_EQ_INT(AT_OK, at_db_winners(db, &pat, &rows, &e));
  CHECK_EQ_INT(0, rows.n);
  at_rows_free(&rows);
  CHECK_EQ_INT(AT_OK, at_db_rows(db, NULL, &rows, &e));
  CHECK_EQ_INT(9, rows.n);
  at_rows_free(&rows);

  at_key_list kl;
  CHECK_EQ_INT(AT_OK, at_db_keys(db, NULL, &kl, &e));
  CHECK_EQ_INT(3, kl.n);
  if (kl.n == 3) {
    CHECK_EQ_STR(k2.bucket, kl.k[0].key.bucket);
    CHECK_EQ_INT(1, kl.k[0].rows);
    CHECK_EQ_STR(k.bucket, kl.k[1].key.bucket);
    CHECK_EQ_INT(7, kl.k[1].rows);
    CHECK_EQ_INT(3, kl.k[1].ok);
    CHECK_EQ_STR("BM=64,BN=128", kl.k[1].winner_config);
    CHECK_NEAR(0.40, kl.k[1].winner_ms, 0);
    CHECK_EQ_STR(k3.bucket, kl.k[2].key.bucket);
    CHECK(kl.k[2].winner_config == NULL);
    CHECK(isnan(kl.k[2].winner_ms));
    CHECK_EQ_INT(0, kl.k[2].ok);
  }
  at_key_list_free(&kl);
}

static void test_offer_and_tx(at_db *db) {
  at_err e;
  at_key k = key_of("offer");
  at_result old_ok = db_test_row("C", AT_RUN_OK, 1.0, 100);
  bool taken;
  CHECK_EQ_INT(AT_OK, at_db_offer(db, &k, &old_ok, &taken, &e));
  CHECK(taken);
  at_result new_fault = db_test_row("C", AT_RUN_FAULT, NAN, 200); /* ok beats newer fault */
  CHECK_EQ_INT(AT_OK, at_db_offer(db, &k, &new_fault, &taken, &e));
  CHECK(!taken);
  at_result newer_ok = db_test_row("C", AT_RUN_OK, 2.0, 300); /* then the newer wins */
  CHECK_EQ_INT(AT_OK, at_db_offer(db, &k, &newer_ok, &taken, &e));
  CHECK(taken);
  at_result same_time = db_test_row("C", AT_RUN_OK, 3.0, 300); /* a tie keeps the stored row */
  CHECK_EQ_INT(AT_OK, at_db_offer(db, &k, &same_time, &taken, &e));
  CHECK(!taken);
  at_rows rows;
  CHECK_EQ_INT(AT_OK, at_db_get(db, &k, "C", &rows, &e));
  if (CHECK(rows.n == 1))
    CHECK_NEAR(2.0, rows.r[0].median_ms, 0);
  at_rows_free(&rows);
  at_result fault = db_test_row("D", AT_RUN_FAULT, NAN, 100);
  at_result newer_fault = db_test_row("D", AT_RUN_TIMEOUT, NAN, 150);
  CHECK_EQ_INT(AT_OK, at_db_offer(db, &k, &fault, &taken, &e));
  CHECK_EQ_INT(AT_OK, at_db_offer(db, &k, &newer_fault, &taken, &e));
  CHECK(taken);

  /* A rolled-back transaction leaves nothing; nested pairs join the outer one. */
  CHECK_EQ_INT(AT_OK, at_db_begin(db, &e));
  at_result t1 = db_test_row("T1", AT_RUN_OK, 1, 0);
  CHECK_EQ_INT(AT_OK, at_db_put(db, &k, &t1, &e));
  CHECK_EQ_INT(AT_OK, at_db_put_blob(db, "ck-t1", "abc", 3, NULL, &e));
  at_db_rollback(db);
  CHECK_EQ_INT(AT_MISS, at_db_get(db, &k, "T1", &rows, &e));
  void *data;
  size_t n;
  CHECK_EQ_INT(AT_MISS, at_db_get_blob(db, "ck-t1", &data, &n, NULL, &e));
  CHECK_EQ_INT(AT_OK, at_db_begin(db, &e));
  CHECK_EQ_INT(AT_OK, at_db_begin(db, &e));
  CHECK_EQ_INT(AT_OK, at_db_put(db, &k, &t1, &e));
  CHECK_EQ_INT(AT_OK, at_db_commit(db, &e));
  CHECK_EQ_INT(AT_OK, at_db_commit(db, &e));
  CHECK_EQ_INT(AT_ERR_ARG, at_db_commit(db, &e));
  CHECK_EQ_INT(AT_OK, at_db_get(db, &k, "T1", &rows, &e));
  at_rows_free(&rows);
}

static void test_blobs(at_db *db) {
  at_err e;
  char ck[65], ck2[65];
  CHECK_EQ_INT(AT_OK, at_compile_key("ab12", "BM=64", "sm_90a", "tilec 0.1", ck, &e));
  CHECK_EQ_INT(64, strlen(ck));
  CHECK_EQ_INT(AT_OK, at_compile_key("ab12", "BM=64", "sm_90", "tilec 0.1", ck2, &e));
  CHECK(strcmp(ck, ck2) != 0);
  CHECK_EQ_INT(AT_OK, at_compile_key("ab1", "2BM=64", "sm_90a", "tilec 0.1", ck2, &e));
  CHECK(strcmp(ck, ck2) != 0); /* the separator keeps fields apart */
  CHECK_EQ_INT(AT_ERR_ARG, at_compile_key(NULL, "", "", "", ck2, &e));
  /* variants: the generic code keeps at_compile_key's key, "aligned" has its own */
  CHECK_EQ_INT(AT_OK, at_compile_key_variant("ab12", "BM=64", "sm_90a", "tilec 0.1", "", ck2, &e));
  CHECK_EQ_STR(ck, ck2);
  CHECK_EQ_INT(AT_OK,
               at_compile_key_variant("ab12", "BM=64", "sm_90a", "tilec 0.1", NULL, ck2, &e));
  CHECK_EQ_STR(ck, ck2);
  CHECK_EQ_INT(AT_OK,
               at_compile_key_variant("ab12", "BM=64", "sm_90a", "tilec 0.1", "aligned", ck2, &e));
  CHECK(strcmp(ck, ck2) != 0);

  unsigned char cubin[3000];
  for (int i = 0; i < 3000; i++)
    cubin[i] = (unsigned char)(i * 31 + 7);
  CHECK_EQ_INT(AT_OK, at_db_put_blob(db, ck, cubin, sizeof cubin, "{\"regs\": 96}", &e));
  void *data;
  size_t n;
  char *meta;
  CHECK_EQ_INT(AT_OK, at_db_get_blob(db, ck, &data, &n, &meta, &e));
  CHECK_EQ_INT(3000, n);
  CHECK(data && memcmp(data, cubin, 3000) == 0);
  CHECK_EQ_STR("{\"regs\": 96}", meta);
  free(data);
  free(meta);
  CHECK_EQ_INT(AT_OK, at_db_put_blob(db, ck, cubin, 10, NULL, &e)); /* replaces */
  CHECK_EQ_INT(AT_OK, at_db_get_blob(db, ck, &data, &n, &meta, &e));
  CHECK_EQ_INT(10, n);
  CHECK(meta == NULL);
  free(data);
  CHECK_EQ_INT(AT_ERR_ARG, at_db_put_blob(db, ck, cubin, 0, NULL, &e));
  CHECK_EQ_INT(AT_MISS, at_db_get_blob(db, "nope", &data, &n, NULL, &e));
  CHECK(data == NULL);
}

/* Prune by status and age, orphan blobs; merge of two files. */
static void test_merge_prune(const char *dir) {
  at_err e;
  char a_path[300], b_path[300];
  snprintf(a_path, sizeof a_path, "%s/a.db", dir);
  snprintf(b_path, sizeof b_path, "%s/b.db", dir);
  at_db *a, *b;
  REQUIRE(at_db_open(a_path, 0, &a, &e) == AT_OK);
  REQUIRE(at_db_open(b_path, 0, &b, &e) == AT_OK);
  at_key k = key_of("merge");
  at_result ra[3] = {db_test_row("X", AT_RUN_OK, 1.0, 100),
                     db_test_row("Y", AT_RUN_FAULT, NAN, 100),
                     db_test_row("Z", AT_RUN_OK, 3.0, 100)};
  at_result rb[3] = {db_test_row("X", AT_RUN_OK, 0.5, 50), db_test_row("Y", AT_RUN_OK, 2.0, 60),
                     db_test_row("W", AT_RUN_OK, 4.0, 100)};
  ra[0].compile_key = "ck-x";
  CHECK_EQ_INT(AT_OK, at_db_put_many(a, &k, ra, 3, &e));
  CHECK_EQ_INT(AT_OK, at_db_put_many(b, &k, rb, 3, &e));
  CHECK_EQ_INT(AT_OK, at_db_put_blob(a, "ck-x", "xx", 2, NULL, &e));
  CHECK_EQ_INT(AT_OK, at_db_put_blob(b, "ck-w", "www", 3, NULL, &e));
  CHECK_EQ_INT(AT_OK, at_db_put_blob(b, "ck-x", "other", 5, NULL, &e));
  at_merge_stats ms;
  CHECK_EQ_INT(AT_OK, at_db_merge(a, b, &ms, &e));
  CHECK_EQ_INT(3, ms.rows_seen);
  CHECK_EQ_INT(2, ms.rows_taken); /* Y (ok beats fault), W (new); X: a's is newer */
  CHECK_EQ_INT(2, ms.blobs_seen);
  CHECK_EQ_INT(1, ms.blobs_taken); /* ck-w; a keeps its sound ck-x */
  at_rows rows;
  CHECK_EQ_INT(AT_OK, at_db_list(a, &k, &rows, &e));
  const char *want[] = {"X", "Y", "Z", "W"};
  CHECK_EQ_INT(4, rows.n);
  for (int i = 0; i < rows.n && i < 4; i++)
    CHECK_EQ_STR(want[i], rows.r[i].config);
  at_rows_free(&rows);

  /* Prune: faults... none left; by age: rows before 80 (none); by status ok and age < 101. */
  at_prune p = {.by_status = true, .status = AT_RUN_FAULT};
  at_prune_stats ps;
  CHECK_EQ_INT(AT_OK, at_db_prune(a, &p, &ps, &e));
  CHECK_EQ_INT(0, ps.rows);
  p = (at_prune){.older_than_unix = 100};
  CHECK_EQ_INT(AT_OK, at_db_prune(a, &p, &ps, &e));
  CHECK_EQ_INT(1, ps.rows); /* Y from b, time 60 */
  p = (at_prune){.by_status = true,
                 .status = AT_RUN_OK,
                 .older_than_unix = 101,
                 .pattern = {.kernel = "other"}};
  CHECK_EQ_INT(AT_OK, at_db_prune(a, &p, &ps, &e));
  CHECK_EQ_INT(0, ps.rows);
  p = (at_prune){.orphan_blobs = true, .bad_blobs = true, .vacuum = true};
  CHECK_EQ_INT(AT_OK, at_db_prune(a, &p, &ps, &e));
  CHECK_EQ_INT(1, ps.blobs); /* ck-w: no row points at it */
  void *data;
  size_t n;
  CHECK_EQ_INT(AT_OK, at_db_get_blob(a, "ck-x", &data, &n, NULL, &e));
  free(data);
  CHECK_EQ_INT(AT_OK, at_db_check(a, false, &e));
  at_db_close(a);
  at_db_close(b);
}

static void test_readonly(const char *dir) {
  at_err e;
  char path[300];
  snprintf(path, sizeof path, "%s/ro.db", dir);
  at_db *db;
  CHECK_EQ_INT(AT_MISS, at_db_open(path, AT_DB_READONLY, &db, &e));
  CHECK(db == NULL);
  CHECK(access(path, F_OK) != 0); /* nothing created */
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  struct stat sb;
  CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
  at_key k = key_of("ro");
  at_result r = db_test_row("A", AT_RUN_OK, 1, 5);
  CHECK_EQ_INT(AT_OK, at_db_put(db, &k, &r, &e));
  CHECK_EQ_INT(AT_OK, at_db_put_blob(db, "ck", "data", 4, NULL, &e));
  at_db_close(db);
  CHECK(stat(path, &sb) == 0);
  char *before = slurp(path);
  if (at_db_open(path, AT_DB_READONLY, &db, &e))
    fprintf(stderr, "%s\n", e.msg);
  REQUIRE(db != NULL);
  at_rows rows;
  CHECK_EQ_INT(AT_OK, at_db_winner(db, &k, &rows, &e));
  CHECK_EQ_INT(1, rows.n);
  at_rows_free(&rows);
  CHECK_EQ_INT(AT_ERR_PERM, at_db_put(db, &k, &r, &e));
  CHECK_CONTAINS(e.msg, "read-only");
  CHECK_EQ_INT(AT_ERR_PERM, at_db_put_blob(db, "ck2", "d", 1, NULL, &e));
  at_prune p = {.orphan_blobs = true};
  CHECK_EQ_INT(AT_ERR_PERM, at_db_prune(db, &p, NULL, &e));
  void *data;
  size_t n;
  CHECK_EQ_INT(AT_OK, at_db_get_blob(db, "ck", &data, &n, NULL, &e));
  free(data);
  at_db_close(db);
  /* The read-only handle never wrote: the main file is byte-identical, and the -wal file that
   * SQLite's readers create next to it (the directory is writable here) is empty. */
  char *after = slurp(path);
  CHECK(before && after && memcmp(before, after, (size_t)sb.st_size) == 0);
  free(before);
  free(after);
  char wal[320];
  snprintf(wal, sizeof wal, "%s-wal", path);
  CHECK(stat(wal, &sb) != 0 || sb.st_size == 0);
}

int main(void) {
  char dir[256], path[300];
  db_test_dir(dir);
  snprintf(path, sizeof path, "%s/t.db", dir);
  at_err e;
  at_db *db;
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  CHECK_EQ_STR(path, at_db_path(db));
  test_rows(db);
  test_offer_and_tx(db);
  test_blobs(db);
  CHECK_EQ_INT(AT_OK, at_db_check(db, true, &e));
  at_db_close(db);
  at_db_close(NULL);
  at_rows_free(NULL);
  test_merge_prune(dir);
  test_readonly(dir);
  char cmd[320];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK_EQ_INT(0, system(cmd));
  return TEST_MAIN_END();
}
