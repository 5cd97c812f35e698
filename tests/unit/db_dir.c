/* unit.db_dir — where the tuning database lives: TILEC_DB, XDG_CACHE_HOME and HOME in that
 * order; the directory is created 0700; world-writable (also sticky, like /tmp), symlinked,
 * non-directory and foreign-owned directories are refused with the path and the reason, and so
 * is a database file that is a symbolic link.
 *
 * What is simulated: a directory owned by someone else cannot be made without root's chown to
 * another user, so the owner rule is checked through at_db_check_dir's owner argument (the uid
 * the caller expects: another uid than the directory's), and, when the test does not run as
 * root, against "/" (owned by root). World-writable and symlinked directories are real. */
#include "autotune/db.h"
#include "tests/unit/check.h"
#include "tests/unit/db_test.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

/* out = a "/" b (buffers of 512 bytes; test paths are short). */
static void join(char *out, const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  REQUIRE(na + 1 + nb < 512);
  memcpy(out, a, na);
  out[na] = '/';
  memcpy(out + na + 1, b, nb + 1);
}

static void set_env(const char *tilec_db, const char *xdg, const char *home) {
  if (tilec_db)
    setenv("TILEC_DB", tilec_db, 1);
  else
    unsetenv("TILEC_DB");
  if (xdg)
    setenv("XDG_CACHE_HOME", xdg, 1);
  else
    unsetenv("XDG_CACHE_HOME");
  if (home)
    setenv("HOME", home, 1);
  else
    unsetenv("HOME");
}

static void test_default_locations(void) {
  char xdg[512], home[512], want[512], tdir[512], tdb[512];
  join(xdg, dir, "xdg");
  join(home, dir, "home");
  at_err e;
  char *path;

  /* XDG_CACHE_HOME: created (with its parents) 0700. */
  set_env(NULL, xdg, home);
  CHECK_EQ_INT(AT_OK, at_db_default_path(&path, true, &e));
  join(want, xdg, "tilec/tilec.db");
  CHECK_EQ_STR(want, path);
  free(path);
  struct stat sb;
  join(want, xdg, "tilec");
  CHECK(stat(want, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700);
  CHECK(stat(xdg, &sb) == 0 && (sb.st_mode & 0777) == 0700);

  /* HOME when XDG_CACHE_HOME is unset or relative (the XDG spec ignores relative paths). */
  set_env(NULL, "relative/cache", home);
  CHECK_EQ_INT(AT_OK, at_db_default_path(&path, true, &e));
  join(want, home, ".cache/tilec/tilec.db");
  CHECK_EQ_STR(want, path);
  free(path);
  join(want, home, ".cache/tilec");
  CHECK(stat(want, &sb) == 0 && (sb.st_mode & 0777) == 0700);

  /* Without create_dir nothing is created, and a read-only open of the default is a miss. */
  char other[512];
  join(other, dir, "other");
  set_env(NULL, other, home);
  CHECK_EQ_INT(AT_OK, at_db_default_path(&path, false, &e));
  free(path);
  at_db *db;
  CHECK_EQ_INT(AT_MISS, at_db_open(NULL, AT_DB_READONLY, &db, &e));
  CHECK(access(other, F_OK) != 0);
  /* A read-write open of the default creates the directory and the file. */
  CHECK_EQ_INT(AT_OK, at_db_open(NULL, 0, &db, &e));
  join(want, other, "tilec/tilec.db");
  CHECK_EQ_STR(want, at_db_path(db));
  at_db_close(db);
  CHECK(stat(want, &sb) == 0 && (sb.st_mode & 0777) == 0600);

  /* TILEC_DB overrides both, and its directory is created and checked the same way. */
  join(tdir, dir, "explicit/sub");
  join(tdb, tdir, "tune.db");
  set_env(tdb, xdg, home);
  CHECK_EQ_INT(AT_OK, at_db_default_path(&path, true, &e));
  CHECK_EQ_STR(tdb, path);
  free(path);
  CHECK(stat(tdir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
  set_env(NULL, NULL, NULL);
  CHECK_EQ_INT(AT_OK, at_db_default_path(&path, false, &e)); /* the passwd entry's home */
  free(path);
}

static void test_refused(void) {
  char cache[512], tdir[512], link[512], want[512];
  at_err e;
  char *path;
  at_db *db;
  join(cache, dir, "hostile");
  join(tdir, cache, "tilec");
  REQUIRE(mkdir(cache, 0700) == 0 && mkdir(tdir, 0700) == 0);
  set_env(NULL, cache, NULL);

  /* World-writable, with and without the sticky bit. */
  REQUIRE(chmod(tdir, 0777) == 0);
  CHECK_EQ_INT(AT_ERR_PERM, at_db_default_path(&path, true, &e));
  CHECK(path == NULL);
  CHECK_CONTAINS(e.msg, tdir);
  CHECK_CONTAINS(e.msg, "world-writable (mode 0777)");
  REQUIRE(chmod(tdir, 01777) == 0);
  CHECK_EQ_INT(AT_ERR_PERM, at_db_open(NULL, 0, &db, &e));
  CHECK_CONTAINS(e.msg, "world-writable (mode 1777)");
  CHECK_EQ_INT(AT_ERR_PERM, at_db_open(NULL, AT_DB_READONLY, &db, &e));
  join(want, tdir, "tilec.db");
  CHECK(access(want, F_OK) != 0); /* nothing was created in it */
  REQUIRE(chmod(tdir, 0700) == 0);
  CHECK_EQ_INT(AT_OK, at_db_default_path(&path, true, &e));
  free(path);

  /* A symbolic link to a private directory. */
  char real[512];
  join(real, dir, "real");
  REQUIRE(mkdir(real, 0700) == 0);
  join(link, real, "tilec");
  REQUIRE(mkdir(link, 0700) == 0);
  char lcache[512];
  join(lcache, dir, "linked");
  REQUIRE(mkdir(lcache, 0700) == 0);
  join(want, lcache, "tilec");
  REQUIRE(symlink(link, want) == 0);
  set_env(NULL, lcache, NULL);
  CHECK_EQ_INT(AT_ERR_PERM, at_db_default_path(&path, true, &e));
  CHECK_CONTAINS(e.msg, "symbolic link");
  CHECK_CONTAINS(e.msg, want);

  /* A file where the directory should be. */
  char fcache[512];
  join(fcache, dir, "filed");
  REQUIRE(mkdir(fcache, 0700) == 0);
  join(want, fcache, "tilec");
  FILE *f = fopen(want, "w");
  REQUIRE(f != NULL);
  fclose(f);
  set_env(NULL, fcache, NULL);
  CHECK_EQ_INT(AT_ERR_PERM, at_db_default_path(&path, true, &e));
  CHECK_CONTAINS(e.msg, "not a directory");

  /* Another owner (simulated through the expected uid; see the top of the file). */
  uid_t me = geteuid();
  CHECK_EQ_INT(AT_OK, at_db_check_dir(tdir, me, &e));
  CHECK_EQ_INT(AT_ERR_PERM, at_db_check_dir(tdir, me + 1, &e));
  CHECK_CONTAINS(e.msg, "owned by uid");
  if (me != 0) {
    CHECK_EQ_INT(AT_ERR_PERM, at_db_check_dir("/", me, &e));
    CHECK_CONTAINS(e.msg, "owned by uid 0");
  } else
    fprintf(stderr, "db_dir: running as root: the real foreign-owner case (\"/\") is not "
                    "checked, only the simulated one\n");
  CHECK_EQ_INT(AT_ERR_IO, at_db_check_dir("/nonexistent/tilec", me, &e));

  /* TILEC_DB in /tmp itself (world-writable and sticky on every usual system). */
  struct stat sb;
  if (stat("/tmp", &sb) == 0 && (sb.st_mode & S_IWOTH)) {
    set_env("/tmp/tilec-test-refused.db", NULL, NULL);
    CHECK_EQ_INT(AT_ERR_PERM, at_db_open(NULL, 0, &db, &e));
    CHECK_CONTAINS(e.msg, "refusing tuning database directory /tmp");
    CHECK(access("/tmp/tilec-test-refused.db", F_OK) != 0);
  }

  /* The database file itself as a symbolic link: refused by a read-write open. */
  char target[512], dbl[512];
  join(target, real, "target.db");
  join(dbl, real, "link.db");
  REQUIRE(at_db_open(target, 0, &db, &e) == AT_OK);
  at_db_close(db);
  REQUIRE(symlink(target, dbl) == 0);
  CHECK_EQ_INT(AT_ERR_PERM, at_db_open(dbl, 0, &db, &e));
  CHECK_CONTAINS(e.msg, "symbolic link");
}

int main(void) {
  db_test_dir(dir);
  test_default_locations();
  test_refused();
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s'; rm -rf '%s'", dir, dir);
  CHECK_EQ_INT(0, system(cmd));
  return TEST_MAIN_END();
}
