/* unit.db_concurrency — the tuning database under several processes and under kill -9.
 *
 * Writers: 8 forked processes open one new file at the same moment (racing to create the
 * schema) and each writes every config of the same key (single puts, put_many batches, and
 * blob + row pairs in one transaction), reading the winner as they go. Afterwards each process
 * reads the winner again: all must name the same config, the expected one; integrity_check ok.
 *
 * Crash: a forked writer commits transactions of (cubin blob, row pointing at it) as fast as
 * it can and is killed with SIGKILL after a random delay, 200 times (one kill in four timed
 * from the writer's start, so it may land in open, WAL recovery or schema creation; the
 * others timed from its first commit). After every kill the file
 * must pass quick_check, every row that names a blob must find it whole (size and SHA-256) and
 * holding the bytes written with that row, and the last transaction the writer reported as
 * committed must be there. Checked through a read-only handle, which never repairs anything.
 */
#include "autotune/db.h"
#include "tests/unit/check.h"
#include "tests/unit/db_test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { NPROC = 8, NCONF = 48, NCRASH = 200, NSLOT = 40 };

static const at_key key = {"NVIDIA H200|sm_90|132sm|141GiB", "tilec 0.1|llvm 19.1.7", "matmul",
                           "3f1c0e", "K=4096,M=pow2:4096,N=4096,TA=bf16"};

/* Config c's time: distinct for every c, least for c = 0. */
static double conf_ms(int c) { return 1.0 + (double)((c * 37) % NCONF) / 100.0; }

static void conf_name(int c, char out[32]) { snprintf(out, 32, "BM=%d,BN=%d", 16 + c, 64 + c); }

/* The blob bytes of a crash-test transaction: a pure function of seq, size 1..64 KiB. */
static size_t crash_blob(uint32_t seq, unsigned char *buf) {
  uint32_t x = seq * 2654435761u + 12345u;
  size_t n = 1 + (x % 65536);
  for (size_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    buf[i] = (unsigned char)(x >> 16);
  }
  return n;
}

/* ---- 8 writers ---------------------------------------------------------------------------- */

static int writer(const char *path, int id, int go_fd, int done_fd, int read_fd, int out_fd) {
  char b;
  if (read(go_fd, &b, 1) != 0) /* EOF: the parent released everyone at once */
    return 10;
  at_db *db;
  at_err e;
  if (at_db_open(path, 0, &db, &e)) {
    fprintf(stderr, "writer %d: open: %s\n", id, e.msg);
    return 11;
  }
  char names[NCONF][32];
  at_result batch[4];
  int nb = 0;
  for (int j = 0; j < NCONF; j++) {
    int c = (j * 7 + id * 13) % NCONF;
    conf_name(c, names[c]);
    at_result r = db_test_row(names[c], AT_RUN_OK, conf_ms(c), 1000 + c);
    at_status s = AT_OK;
    if (c % 3 == 0) {
      s = at_db_put(db, &key, &r, &e);
    } else if (c % 3 == 1) {
      char ck[65];
      unsigned char blob[256];
      memset(blob, c, sizeof blob);
      at_compile_key(key.ir_hash, names[c], "sm_90a", key.toolchain, ck, NULL);
      r.compile_key = ck;
      if (!(s = at_db_begin(db, &e)) &&
          !(s = at_db_put_blob(db, ck, blob, sizeof blob, NULL, &e)) &&
          !(s = at_db_put(db, &key, &r, &e)))
        s = at_db_commit(db, &e);
      else
        at_db_rollback(db);
    } else {
      batch[nb++] = r;
      if (nb == 4 || j == NCONF - 1) {
        s = at_db_put_many(db, &key, batch, nb, &e);
        nb = 0;
      }
    }
    if (s) {
      fprintf(stderr, "writer %d: write %d: %s\n", id, j, e.msg);
      return 12;
    }
    at_rows w;
    if (j % 4 == 3 && at_db_winner(db, &key, &w, &e) != AT_OK) {
      fprintf(stderr, "writer %d: winner while writing: %s\n", id, e.msg);
      return 13;
    }
    if (j % 4 == 3)
      at_rows_free(&w);
  }
  if (nb && at_db_put_many(db, &key, batch, nb, &e)) {
    fprintf(stderr, "writer %d: last batch: %s\n", id, e.msg);
    return 14;
  }
  at_db_close(db);
  if (write(done_fd, "D", 1) != 1 || read(read_fd, &b, 1) != 0)
    return 15;
  /* Everyone is done: read the winner through a read-only handle. */
  char msg[64] = {0};
  if (at_db_open(path, AT_DB_READONLY, &db, &e)) {
    fprintf(stderr, "writer %d: read-only open: %s\n", id, e.msg);
    return 16;
  }
  at_rows w;
  if (at_db_winner(db, &key, &w, &e) || w.n != 1) {
    fprintf(stderr, "writer %d: winner: %s\n", id, e.msg);
    return 17;
  }
  snprintf(msg, sizeof msg, "%s", w.r[0].config);
  at_rows_free(&w);
  at_db_close(db);
  return write(out_fd, msg, sizeof msg) == (ssize_t)sizeof msg ? 0 : 18;
}

static void test_writers(const char *dir) {
  char path[300];
  snprintf(path, sizeof path, "%s/shared.db", dir);
  int go[2], done[2], rd[2], out[2];
  REQUIRE(pipe(go) == 0 && pipe(done) == 0 && pipe(rd) == 0 && pipe(out) == 0);
  pid_t pids[NPROC];
  for (int i = 0; i < NPROC; i++) {
    pids[i] = fork();
    REQUIRE(pids[i] >= 0);
    if (pids[i] == 0) {
      close(go[1]);
      close(rd[1]);
      close(done[0]);
      close(out[0]);
      int rc = writer(path, i, go[0], done[1], rd[0], out[1]);
      if (rc && rc < 15 && write(done[1], "F", 1) != 1) /* else the parent would wait */
        rc = 19;
      _exit(rc);
    }
  }
  close(go[0]);
  close(rd[0]);
  close(done[1]);
  close(out[1]);
  close(go[1]); /* go */
  int ndone = 0;
  char b;
  for (int got = 0; got < NPROC && read(done[0], &b, 1) == 1; got++)
    ndone += b == 'D';
  CHECK_EQ_INT(NPROC, ndone);
  close(rd[1]); /* everyone reads the winner */
  char want[32];
  conf_name(0, want);
  int same = 0;
  char msg[64];
  while (read(out[0], msg, sizeof msg) == (ssize_t)sizeof msg) {
    msg[63] = 0;
    if (!strcmp(msg, want))
      same++;
    else
      fprintf(stderr, "a process saw winner '%s', not '%s'\n", msg, want);
  }
  CHECK_EQ_INT(NPROC, same);
  for (int i = 0; i < NPROC; i++) {
    int status;
    CHECK(waitpid(pids[i], &status, 0) == pids[i]);
    if (!CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0))
      fprintf(stderr, "writer %d: exit status %d\n", i, WEXITSTATUS(status));
  }
  close(done[0]);
  close(out[0]);
  at_db *db;
  at_err e;
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  CHECK_EQ_INT(AT_OK, at_db_check(db, false, &e));
  at_rows rows;
  CHECK_EQ_INT(AT_OK, at_db_list(db, &key, &rows, &e));
  CHECK_EQ_INT(NCONF, rows.n);
  int blobs = 0;
  for (int i = 0; i < rows.n; i++)
    if (*rows.r[i].compile_key) {
      void *data;
      size_t n;
      CHECK_EQ_INT(AT_OK, at_db_get_blob(db, rows.r[i].compile_key, &data, &n, NULL, &e));
      free(data);
      blobs++;
    }
  CHECK_EQ_INT(NCONF / 3, blobs); /* configs c with c % 3 == 1 */
  at_rows_free(&rows);
  at_db_close(db);
}

/* ---- kill -9 ------------------------------------------------------------------------------ */

static void crash_writer(const char *path, int fd) {
  at_db *db;
  if (at_db_open(path, 0, &db, NULL))
    _exit(1);
  static unsigned char buf[65536];
  uint32_t seq;
  at_rows last;
  /* Continue after the last committed sequence number (rows store it as their median). */
  seq = 0;
  if (at_db_rows(db, NULL, &last, NULL) == AT_OK) {
    for (int i = 0; i < last.n; i++)
      if (last.r[i].median_ms + 1 > seq)
        seq = (uint32_t)last.r[i].median_ms + 1;
    at_rows_free(&last);
  }
  for (;; seq++) {
    size_t n = crash_blob(seq, buf);
    char ck[32], cfg[32];
    snprintf(ck, sizeof ck, "ck-%u", seq % NSLOT);
    snprintf(cfg, sizeof cfg, "cfg-%u", seq % NSLOT);
    at_result r = db_test_row(cfg, AT_RUN_OK, (double)seq, 0);
    r.compile_key = ck;
    if (at_db_begin(db, NULL) || at_db_put_blob(db, ck, buf, n, NULL, NULL) ||
        at_db_put(db, &key, &r, NULL) || at_db_commit(db, NULL))
      _exit(2);
    if (write(fd, &seq, sizeof seq) != sizeof seq)
      _exit(3);
  }
}

static int recoveries; /* read-only opens that needed a read-write open first */

/* Checks the file after a kill; returns the number of problems. */
static int check_after_kill(const char *path, long long last_committed) {
  at_db *db;
  at_err e;
  at_status s = at_db_open(path, AT_DB_READONLY, &db, &e);
  if (s == AT_ERR_PERM && strstr(e.msg, "read-only handle cannot recover")) {
    /* Killed in a transaction that left a hot rollback journal (the switch to WAL of a new
     * file): only a read-write open lets SQLite roll it back. */
    recoveries++;
    if (at_db_open(path, 0, &db, &e) == AT_OK)
      at_db_close(db);
    s = at_db_open(path, AT_DB_READONLY, &db, &e);
  }
  if (s == AT_MISS && last_committed < 0)
    return 0; /* killed before the schema's transaction committed */
  if (s) {
    fprintf(stderr, "after kill: open: %s\n", e.msg);
    return 1;
  }
  int bad = 0;
  if (at_db_check(db, true, &e)) {
    fprintf(stderr, "after kill: %s\n", e.msg);
    bad++;
  }
  at_rows rows;
  if (at_db_list(db, &key, &rows, &e)) {
    fprintf(stderr, "after kill: list: %s\n", e.msg);
    at_db_close(db);
    return bad + 1;
  }
  static unsigned char want[65536];
  bool found_last = last_committed < 0;
  for (int i = 0; i < rows.n; i++) {
    const at_result *r = &rows.r[i];
    uint32_t seq = (uint32_t)r->median_ms;
    if (last_committed >= 0 && (long long)seq % NSLOT == last_committed % NSLOT &&
        (long long)seq >= last_committed)
      found_last = true;
    void *data;
    size_t n;
    if (at_db_get_blob(db, r->compile_key, &data, &n, NULL, &e)) {
      fprintf(stderr, "after kill: row %s -> blob %s: %s\n", r->config, r->compile_key, e.msg);
      bad++;
      continue;
    }
    size_t wn = crash_blob(seq, want);
    if (n != wn || memcmp(data, want, n) != 0) {
      fprintf(stderr, "after kill: blob %s does not hold the bytes of its row's transaction\n",
              r->compile_key);
      bad++;
    }
    free(data);
  }
  if (!found_last) {
    fprintf(stderr, "after kill: committed transaction %lld is missing\n", last_committed);
    bad++;
  }
  at_rows_free(&rows);
  at_db_close(db);
  return bad;
}

static void test_kill9(const char *dir) {
  char path[300];
  snprintf(path, sizeof path, "%s/crash.db", dir);
  unsigned rng = 12345;
  long long last = -1, commits = 0;
  int bad = 0, mid_open = 0;
  for (int it = 0; it < NCRASH && bad == 0; it++) {
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(p[0]);
      crash_writer(path, p[1]);
    }
    close(p[1]);
    /* One kill in four lands anywhere from the start (open, WAL recovery, schema creation);
     * the others after the writer's first commit of this run, among its transactions. */
    rng = rng * 1103515245u + 12345u;
    uint32_t seq;
    long long before = commits;
    if (it % 4 != 0 && read(p[0], &seq, sizeof seq) == sizeof seq) {
      last = seq;
      commits++;
    }
    usleep((rng >> 8) % (it % 4 == 0 ? 20000 : 8000));
    kill(pid, SIGKILL);
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
      fprintf(stderr, "crash writer exited by itself: status %d\n", status);
      bad++;
    }
    while (read(p[0], &seq, sizeof seq) == sizeof seq) {
      last = seq;
      commits++;
    }
    close(p[0]);
    mid_open += commits == before;
    bad += check_after_kill(path, last);
  }
  CHECK_EQ_INT(0, bad);
  fprintf(stderr,
          "kill -9: %d kills, %lld transactions committed, %d kills before a first "
          "commit of their run\n",
          NCRASH, commits, mid_open);
  CHECK(commits > NCRASH); /* the kills did land among writes */
  if (recoveries)
    fprintf(stderr, "kill -9: %d read-only opens needed a read-write open first\n", recoveries);
  at_db *db;
  at_err e;
  REQUIRE(at_db_open(path, 0, &db, &e) == AT_OK);
  CHECK_EQ_INT(AT_OK, at_db_check(db, false, &e));
  at_db_close(db);
}

int main(void) {
  char dir[256];
  db_test_dir(dir);
  struct timespec t0, t1, t2;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  test_writers(dir);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  test_kill9(dir);
  clock_gettime(CLOCK_MONOTONIC, &t2);
  fprintf(stderr, "writers: %.2f s, kill -9: %.2f s\n",
          (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
          (double)(t2.tv_sec - t1.tv_sec) + 1e-9 * (double)(t2.tv_nsec - t1.tv_nsec));
  char cmd[320];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK_EQ_INT(0, system(cmd));
  return TEST_MAIN_END();
}
