/* unit.db_schema — what the tuning database does with files it did not write this session: a
 * hand-made v1 file is migrated (and refused read-only), an empty v0 file gets the schema, a
 * newer user_version is AT_ERR_SCHEMA, a non-database file and another program's database are
 * AT_ERR_CORRUPT (and left untouched); flipped bytes in a stored cubin, or a wrong size, are
 * misses; the busy timeout is honoured against a writer in another process. The test builds
 * its fixtures with SQLite directly (only the product code is limited to autotune/). */
#include "autotune/db.h"
#include "tests/unit/check.h"
#include "tests/unit/db_test.h"
#include "tests/unit/files.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256];

static void path_of(char *out, const char *name) { snprintf(out, 300, "%s/%s", dir, name); }

/* Runs literal SQL statements on a file with SQLite itself. */
static void raw_sql(const char *path, const char *sql) {
  sqlite3 *h;
  REQUIRE(sqlite3_open(path, &h) == SQLITE_OK);
  char *err = NULL;
  if (sqlite3_exec(h, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "raw_sql: %s\n", err);
    CHECK(!"raw_sql failed");
  }
  sqlite3_free(err);
  sqlite3_close(h);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const at_key key = {"dev", "tc", "matmul", "ab", "M=64"};

static void test_v1_migration(void) {
  char path[300];
  path_of(path, "v1.db");
  raw_sql(path,
          "CREATE TABLE result (device TEXT NOT NULL, toolchain TEXT NOT NULL, kernel TEXT NOT "
          "NULL, ir_hash TEXT NOT NULL, bucket TEXT NOT NULL, config TEXT NOT NULL, status TEXT "
          "NOT NULL, problem TEXT NOT NULL, median_ms REAL, min_ms REAL, reps INTEGER NOT NULL, "
          "regs INTEGER NOT NULL, spills INTEGER NOT NULL, smem_bytes INTEGER NOT NULL, "
          "sm_clock_mhz INTEGER NOT NULL, time_unix INTEGER NOT NULL, UNIQUE (device, toolchain, "
          "kernel, ir_hash, bucket, config));"
          "CREATE TABLE blob (compile_key TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER "
          "NOT NULL, data BLOB NOT NULL);"
          "INSERT INTO result VALUES ('dev', 'tc', 'matmul', 'ab', 'M=64', 'BM=32', 'ok', 'M=60', "
          "0.25, 0.24, 20, 90, 0, 8192, 1755, 111);"
          "INSERT INTO result VALUES ('dev', 'tc', 'matmul', 'ab', 'M=64', 'BM=64', 'ok', 'M=60', "
          "0.20, 0.19, 20, 120, 0, 16384, 1755, 112);"
          "INSERT INTO result VALUES ('dev', 'tc', 'matmul', 'ab', 'M=64', 'BM=16', 'timeout', "
          "'M=60', NULL, NULL, 0, -1, -1, -1, -1, 113);"
          /* sha256("abc") */
          "INSERT INTO blob VALUES ('ck1', "
          "'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 3, X'616263');"
          "PRAGMA user_version = 1;");
  at_err e;
  at_db *db;
  CHECK_EQ_INT(AT_ERR_SCHEMA, at_db_open(path, AT_DB_READONLY, &db, &e));
  CHECK_CONTAINS(e.msg, "migration");
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  at_rows rows;
  CHECK_EQ_INT(AT_OK, at_db_winner(db, &key, &rows, &e));
  if (CHECK(rows.n == 1)) {
    CHECK_EQ_STR("BM=64", rows.r[0].config);
    CHECK_NEAR(0.20, rows.r[0].median_ms, 0);
    CHECK(isnan(rows.r[0].p20_ms)); /* columns v1 lacked read as unknown */
    CHECK_EQ_INT(-1, rows.r[0].mem_clock_mhz);
    CHECK_EQ_STR("", rows.r[0].detail);
    CHECK_EQ_INT(1755, rows.r[0].sm_clock_mhz);
    CHECK_EQ_INT(112, rows.r[0].time_unix);
    CHECK_EQ_STR("", rows.r[0].variant); /* v1 and v2 rows measured the generic code */
  }
  at_rows_free(&rows);
  CHECK_EQ_INT(AT_OK, at_db_list(db, &key, &rows, &e));
  CHECK_EQ_INT(3, rows.n);
  at_rows_free(&rows);
  void *data;
  size_t n;
  char *meta;
  CHECK_EQ_INT(AT_OK, at_db_get_blob(db, "ck1", &data, &n, &meta, &e));
  CHECK(n == 3 && data && memcmp(data, "abc", 3) == 0);
  CHECK(meta == NULL);
  free(data);
  at_result r = db_test_row("BM=128", AT_RUN_OK, 0.1, 0);
  CHECK_EQ_INT(AT_OK, at_db_put(db, &key, &r, &e));
  CHECK_EQ_INT(AT_OK, at_db_check(db, false, &e));
  at_db_close(db);
  /* Migrated once: a read-only open now works, and sees the new row. */
  REQUIRE(at_db_open(path, AT_DB_READONLY, &db, &e) == AT_OK);
  CHECK_EQ_INT(AT_OK, at_db_winner(db, &key, &rows, &e));
  if (CHECK(rows.n == 1))
    CHECK_EQ_STR("BM=128", rows.r[0].config);
  at_rows_free(&rows);
  at_db_close(db);
}

/* A v2 file (the v2 schema as v2 created it, one row and its blob) gains the variant column:
 * its row reads as the generic code; new rows keep theirs; an unknown variant is refused. */
static void test_v2_migration(void) {
  char path[300];
  path_of(path, "v2.db");
  raw_sql(path,
          "CREATE TABLE result (device TEXT NOT NULL, toolchain TEXT NOT NULL, kernel TEXT NOT "
          "NULL, ir_hash TEXT NOT NULL, bucket TEXT NOT NULL, config TEXT NOT NULL, status TEXT "
          "NOT NULL, problem TEXT NOT NULL, median_ms REAL, p20_ms REAL, p80_ms REAL, min_ms "
          "REAL, reps INTEGER NOT NULL, regs INTEGER NOT NULL, spills INTEGER NOT NULL, "
          "smem_bytes INTEGER NOT NULL, sm_clock_mhz INTEGER NOT NULL, mem_clock_mhz INTEGER NOT "
          "NULL, detail TEXT NOT NULL, compile_key TEXT NOT NULL, time_unix INTEGER NOT NULL, "
          "UNIQUE (device, toolchain, kernel, ir_hash, bucket, config));"
          "CREATE TABLE blob (compile_key TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER "
          "NOT NULL, meta TEXT, data BLOB NOT NULL, time_unix INTEGER NOT NULL);"
          "CREATE INDEX result_winner ON result (device, toolchain, kernel, ir_hash, bucket, "
          "status, median_ms);"
          "CREATE INDEX result_blob ON result (compile_key) WHERE compile_key <> '';"
          "INSERT INTO result VALUES ('dev', 'tc', 'matmul', 'ab', 'M=64', 'BM=32', 'ok', 'M=60', "
          "0.25, 0.24, 0.26, 0.2, 20, 90, 0, 8192, 1755, 2619, '', 'ck1', 111);"
          "INSERT INTO blob VALUES ('ck1', "
          "'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 3, NULL, "
          "X'616263', 111);"
          "PRAGMA application_id = 1953066083; PRAGMA user_version = 2;");
  at_err e;
  at_db *db;
  CHECK_EQ_INT(AT_ERR_SCHEMA, at_db_open(path, AT_DB_READONLY, &db, &e));
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  at_rows rows;
  CHECK_EQ_INT(AT_OK, at_db_winner(db, &key, &rows, &e));
  if (CHECK(rows.n == 1)) {
    CHECK_EQ_STR("BM=32", rows.r[0].config);
    CHECK_EQ_STR("", rows.r[0].compile_key); /* a v1 compile key is dropped (v3 -> v4) */
    CHECK_EQ_STR("", rows.r[0].variant);
  }
  at_rows_free(&rows);
  at_result r = db_test_row("BM=64", AT_RUN_OK, 0.1, 0);
  r.variant = "aligned";
  CHECK_EQ_INT(AT_OK, at_db_put(db, &key, &r, &e));
  r.variant = "fast";
  CHECK_EQ_INT(AT_ERR_ARG, at_db_put(db, &key, &r, &e));
  CHECK_CONTAINS(e.msg, "variant 'fast'");
  CHECK_EQ_INT(AT_OK, at_db_check(db, false, &e));
  at_db_close(db);
  REQUIRE(at_db_open(path, AT_DB_READONLY, &db, &e) == AT_OK);
  CHECK_EQ_INT(AT_OK, at_db_winner(db, &key, &rows, &e));
  if (CHECK(rows.n == 1)) {
    CHECK_EQ_STR("BM=64", rows.r[0].config);
    CHECK_EQ_STR("aligned", rows.r[0].variant);
  }
  at_rows_free(&rows);
  at_db_close(db);
}

/* A v3 file: rows forget their version-1 compile keys (which may name another problem's
 * code); the blobs stay, as orphans, and rows written after the migration keep theirs. */
static void test_v3_migration(void) {
  char path[300];
  path_of(path, "v3.db");
  at_err e;
  at_db *db;
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  at_result r = db_test_row("BM=32", AT_RUN_OK, 0.25, 0);
  r.compile_key = "ck3";
  CHECK_EQ_INT(AT_OK, at_db_put_blob(db, "ck3", "abc", 3, NULL, &e));
  CHECK_EQ_INT(AT_OK, at_db_put(db, &key, &r, &e));
  at_db_close(db);
  raw_sql(path, "PRAGMA user_version = 3;");
  CHECK_EQ_INT(AT_ERR_SCHEMA, at_db_open(path, AT_DB_READONLY, &db, &e));
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  at_rows rows;
  CHECK_EQ_INT(AT_OK, at_db_winner(db, &key, &rows, &e));
  if (CHECK(rows.n == 1)) {
    CHECK_EQ_STR("BM=32", rows.r[0].config);
    CHECK_EQ_STR("", rows.r[0].compile_key);
  }
  at_rows_free(&rows);
  void *data = NULL;
  size_t n = 0;
  CHECK_EQ_INT(AT_OK, at_db_get_blob(db, "ck3", &data, &n, NULL, &e));
  free(data);
  r = db_test_row("BM=64", AT_RUN_OK, 0.125, 0);
  r.compile_key = "ck3";
  CHECK_EQ_INT(AT_OK, at_db_put(db, &key, &r, &e));
  at_db_close(db);
  REQUIRE(at_db_open(path, AT_DB_READONLY, &db, &e) == AT_OK); /* migrated once */
  CHECK_EQ_INT(AT_OK, at_db_winner(db, &key, &rows, &e));
  if (CHECK(rows.n == 1))
    CHECK_EQ_STR("ck3", rows.r[0].compile_key);
  at_rows_free(&rows);
  at_db_close(db);
}

static void test_v0_and_foreign(void) {
  at_err e;
  at_db *db;
  char path[300];
  /* v0: a SQLite file without tables (and a 0-byte file) gets the schema. */
  path_of(path, "v0.db");
  raw_sql(path, "PRAGMA user_version = 0; VACUUM;");
  CHECK_EQ_INT(AT_MISS, at_db_open(path, AT_DB_READONLY, &db, &e));
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  at_result r = db_test_row("BM=1", AT_RUN_OK, 1, 0);
  CHECK_EQ_INT(AT_OK, at_db_put(db, &key, &r, &e));
  at_db_close(db);
  path_of(path, "zero.db");
  FILE *f = fopen(path, "w");
  REQUIRE(f != NULL);
  fclose(f);
  CHECK_EQ_INT(AT_OK, at_db_open(path, 0, &db, &e));
  at_db_close(db);

  /* Another program's database: refused and not touched. */
  path_of(path, "foreign.db");
  raw_sql(path, "CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('mine');");
  char *before = slurp(path);
  CHECK_EQ_INT(AT_ERR_CORRUPT, at_db_open(path, 0, &db, &e));
  CHECK_CONTAINS(e.msg, "not a tilec tuning database");
  CHECK(db == NULL);
  CHECK_EQ_INT(AT_ERR_CORRUPT, at_db_open(path, AT_DB_READONLY, &db, &e));
  char *after = slurp(path);
  struct stat sb;
  CHECK(stat(path, &sb) == 0 && before && after && !memcmp(before, after, (size_t)sb.st_size));
  free(before);
  free(after);
  path_of(path, "appid.db");
  raw_sql(path, "PRAGMA application_id = 42; PRAGMA user_version = 2; CREATE TABLE result (a);"
                "CREATE TABLE blob (b);");
  CHECK_EQ_INT(AT_ERR_CORRUPT, at_db_open(path, 0, &db, &e));
  CHECK_CONTAINS(e.msg, "application_id 42");

  /* Not a database at all. */
  path_of(path, "text.db");
  f = fopen(path, "w");
  REQUIRE(f != NULL);
  for (int i = 0; i < 200; i++)
    fputs("this is a text file, not a database\n", f);
  fclose(f);
  before = slurp(path);
  CHECK_EQ_INT(AT_ERR_CORRUPT, at_db_open(path, 0, &db, &e));
  CHECK_CONTAINS(e.msg, "not a SQLite database");
  CHECK_CONTAINS(e.msg, path);
  CHECK_EQ_INT(AT_ERR_CORRUPT, at_db_open(path, AT_DB_READONLY, &db, &e));
  after = slurp(path);
  CHECK(before && after && !strcmp(before, after));
  free(before);
  free(after);
}

static void test_newer(void) {
  at_err e;
  at_db *db;
  char path[300];
  path_of(path, "newer.db");
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  at_db_close(db);
  char sql[64], want[64];
  snprintf(sql, sizeof sql, "PRAGMA user_version = %d;", AT_DB_SCHEMA_VERSION + 1);
  snprintf(want, sizeof want, "schema version %d is newer", AT_DB_SCHEMA_VERSION + 1);
  raw_sql(path, sql);
  CHECK_EQ_INT(AT_ERR_SCHEMA, at_db_open(path, 0, &db, &e));
  CHECK_CONTAINS(e.msg, want);
  CHECK_EQ_INT(AT_ERR_SCHEMA, at_db_open(path, AT_DB_READONLY, &db, &e));
}

/* Puts a blob with a marker, closes (the WAL is checkpointed into the file), flips one byte
 * of the stored copy in the file itself. */
static void test_flipped_blob(void) {
  at_err e;
  at_db *db;
  char path[300];
  path_of(path, "flip.db");
  unsigned char cubin[5000];
  for (int i = 0; i < 5000; i++)
    cubin[i] = (unsigned char)(i * 13 + 5);
  memcpy(cubin + 100, "MARKER-tilec-cubin-0123456789", 29);
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  at_result r = db_test_row("BM=1", AT_RUN_OK, 1, 0);
  r.compile_key = "ck-flip";
  CHECK_EQ_INT(AT_OK, at_db_begin(db, &e));
  CHECK_EQ_INT(AT_OK, at_db_put_blob(db, "ck-flip", cubin, sizeof cubin, "{}", &e));
  CHECK_EQ_INT(AT_OK, at_db_put(db, &key, &r, &e));
  CHECK_EQ_INT(AT_OK, at_db_commit(db, &e));
  at_db_close(db);

  struct stat sb;
  REQUIRE(stat(path, &sb) == 0);
  char *file = slurp(path);
  REQUIRE(file != NULL);
  long off = -1;
  for (long i = 0; off < 0 && i + 18 <= (long)sb.st_size; i++)
    if (!memcmp(file + i, "MARKER-tilec-cubin", 18))
      off = i + 20;
  REQUIRE(off >= 0);
  free(file);
  FILE *f = fopen(path, "r+b");
  REQUIRE(f != NULL);
  fseek(f, off, SEEK_SET);
  int c = fgetc(f);
  fseek(f, off, SEEK_SET);
  fputc(c ^ 0x40, f);
  fclose(f);

  void *data = NULL;
  size_t n = 0;
  REQUIRE(at_db_open(path, AT_DB_READONLY, &db, &e) == AT_OK);
  CHECK_EQ_INT(AT_MISS, at_db_get_blob(db, "ck-flip", &data, &n, NULL, &e));
  CHECK_CONTAINS(e.msg, "SHA-256 does not match");
  CHECK_CONTAINS(e.msg, "read-only");
  CHECK(data == NULL && n == 0);
  CHECK_EQ_INT(AT_MISS, at_db_get_blob(db, "ck-flip", &data, &n, NULL, &e));
  CHECK_CONTAINS(e.msg, "damaged"); /* still there: read-only never repairs */
  at_db_close(db);
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  CHECK_EQ_INT(AT_MISS, at_db_get_blob(db, "ck-flip", &data, &n, NULL, &e));
  CHECK_CONTAINS(e.msg, "deleted");
  CHECK_EQ_INT(AT_MISS, at_db_get_blob(db, "ck-flip", &data, &n, NULL, &e));
  CHECK_CONTAINS(e.msg, "no cubin stored");
  at_rows rows;
  CHECK_EQ_INT(AT_OK, at_db_get(db, &key, "BM=1", &rows, &e));
  if (CHECK(rows.n == 1))
    CHECK_EQ_STR("", rows.r[0].compile_key); /* the row forgot the damaged blob */
  at_rows_free(&rows);
  at_db_close(db);

  /* A size that does not match the data (a truncated write would look like this). */
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  CHECK_EQ_INT(AT_OK, at_db_put_blob(db, "ck-size", cubin, sizeof cubin, NULL, &e));
  CHECK_EQ_INT(AT_OK, at_db_put_blob(db, "ck-good", cubin, 10, NULL, &e));
  at_db_close(db);
  raw_sql(path, "UPDATE blob SET size = size + 1 WHERE compile_key = 'ck-size';");
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  at_prune p = {.bad_blobs = true};
  at_prune_stats ps;
  CHECK_EQ_INT(AT_OK, at_db_prune(db, &p, &ps, &e));
  CHECK_EQ_INT(1, ps.blobs);
  CHECK_EQ_INT(AT_MISS, at_db_get_blob(db, "ck-size", &data, &n, NULL, &e));
  CHECK_EQ_INT(AT_OK, at_db_get_blob(db, "ck-good", &data, &n, NULL, &e));
  free(data);
  at_db_close(db);
}

/* A child holds the write lock; the parent's write waits for the busy timeout, then fails
 * with AT_ERR_BUSY; with a longer timeout it waits for the child to finish and succeeds. */
static void test_busy(void) {
  char path[300];
  path_of(path, "busy.db");
  at_err e;
  at_db *db;
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  at_db_close(db);
  int locked[2], release[2];
  REQUIRE(pipe(locked) == 0 && pipe(release) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    at_db *c;
    char b = 0;
    if (at_db_open(path, 0, &c, NULL) || at_db_begin(c, NULL))
      _exit(1);
    if (write(locked[1], "L", 1) != 1 || read(release[0], &b, 1) != 1)
      _exit(1);
    usleep(300 * 1000); /* still holding the lock while the parent waits */
    _exit(at_db_commit(c, NULL) ? 1 : 0);
  }
  char b;
  REQUIRE(read(locked[0], &b, 1) == 1);
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  at_db_set_busy_timeout(db, 400);
  at_result r = db_test_row("BM=1", AT_RUN_OK, 1, 0);
  double t0 = now_s();
  CHECK_EQ_INT(AT_ERR_BUSY, at_db_put(db, &key, &r, &e));
  double waited = now_s() - t0;
  CHECK_CONTAINS(e.msg, "locked by another process after 400 ms");
  CHECK(waited >= 0.39);
  CHECK(waited < 3.0);
  fprintf(stderr, "busy: gave up after %.3f s (timeout 0.4 s)\n", waited);
  at_db_set_busy_timeout(db, 10000);
  CHECK(write(release[1], "R", 1) == 1);
  t0 = now_s();
  CHECK_EQ_INT(AT_OK, at_db_put(db, &key, &r, &e));
  waited = now_s() - t0;
  CHECK(waited >= 0.2); /* it waited for the child's commit */
  fprintf(stderr, "busy: wrote after waiting %.3f s for the other writer\n", waited);
  int status;
  CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  at_db_close(db);
}

int main(void) {
  db_test_dir(dir);
  test_v1_migration();
  test_v2_migration();
  test_v3_migration();
  test_v0_and_foreign();
  test_newer();
  test_flipped_blob();
  test_busy();
  char cmd[320];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK_EQ_INT(0, system(cmd));
  return TEST_MAIN_END();
}
