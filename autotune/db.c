/* autotune/db.c — the tuning database on SQLite (see db.h and docs/tuning.md).
 *
 * Two tables: `result`, one row per (device, toolchain, kernel, ir_hash, bucket, config), and
 * `blob`, compiled images by compile key with their SHA-256, size and meta in the same row.
 * Every change runs in one BEGIN IMMEDIATE transaction (or in the caller's, see at_db_begin), so
 * a process killed at any moment leaves the last committed state; WAL with synchronous=NORMAL
 * keeps committed transactions across process kills. SQL text is always a literal; values are
 * bound. The schema version is PRAGMA user_version, the file is marked with application_id;
 * migrations run in order inside one transaction on open.
 *
 * Schema history: v1 (the first layout): result without p20_ms, p80_ms, mem_clock_mhz, detail
 * and compile_key; blob without meta and time_unix. v2: those columns, an index for the winner
 * query, an index of rows by compile key, application_id. v3 (current): result.variant, the
 * code variant a row measured ('' generic, 'aligned').
 */
#include "autotune/db.h"
#include "autotune/json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct at_db {
  sqlite3 *h;
  char *path;
  bool ro;
  int depth; /* nesting of at_db_begin */
  int busy_ms;
};

enum { DEFAULT_BUSY_MS = 10000, APPLICATION_ID = 0x74696c63 /* "tilc" */ };
#define MAX_BLOB_BYTES ((size_t)512 << 20) /* below SQLite's default SQLITE_MAX_LENGTH */

/* ---- errors and statements ---------------------------------------------------------------- */

/* Translates a SQLite result code into an at_status with "PATH: what: sqlite's message". */
static at_status sq_fail(at_db *db, int rc, at_err *e, const char *what) {
  at_status s;
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    s = AT_ERR_BUSY;
    break;
  case SQLITE_NOTADB:
  case SQLITE_CORRUPT:
    s = AT_ERR_CORRUPT;
    break;
  case SQLITE_READONLY:
  case SQLITE_PERM:
  case SQLITE_AUTH:
    s = AT_ERR_PERM;
    break;
  case SQLITE_CANTOPEN:
  case SQLITE_IOERR:
  case SQLITE_FULL:
  case SQLITE_PROTOCOL:
    s = AT_ERR_IO;
    break;
  case SQLITE_NOMEM:
    s = AT_ERR_OOM;
    break;
  case SQLITE_TOOBIG:
    s = AT_ERR_ARG;
    break;
  default:
    s = AT_ERR_INTERNAL;
  }
  const char *msg = db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc);
  if (rc == SQLITE_READONLY_ROLLBACK || rc == SQLITE_READONLY_RECOVERY ||
      rc == SQLITE_READONLY_CANTINIT)
    return at_fail(e, AT_ERR_PERM,
                   "%s: a writer died in the middle of a transaction, and a read-only handle "
                   "cannot recover the file; open it once read-write (`tilec db check` does) and "
                   "SQLite rolls the unfinished transaction back",
                   db->path);
  if (s == AT_ERR_CORRUPT && (rc & 0xff) == SQLITE_NOTADB)
    return at_fail(e, s, "%s: not a SQLite database (%s)", db->path, msg);
  if (s == AT_ERR_BUSY)
    return at_fail(e, s, "%s: %s: still locked by another process after %d ms (%s)", db->path, what,
                   db->busy_ms, msg);
  return at_fail(e, s, "%s: %s: %s", db->path, what, msg);
}

static at_status prep(at_db *db, const char *sql, sqlite3_stmt **st, at_err *e) {
  int rc = sqlite3_prepare_v2(db->h, sql, -1, st, NULL);
  if (rc != SQLITE_OK) {
    *st = NULL;
    return sq_fail(db, rc, e, "prepare");
  }
  return AT_OK;
}

/* Runs a literal statement that returns no rows we need. */
static at_status exec1(at_db *db, const char *sql, at_err *e) {
  sqlite3_stmt *st;
  at_status s = prep(db, sql, &st, e);
  if (s)
    return s;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    ;
  if (rc != SQLITE_DONE)
    s = sq_fail(db, rc, e, sql);
  sqlite3_finalize(st);
  return s;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs a literal statement that takes a lock, retrying SQLITE_BUSY until the busy timeout (the
 * busy handler covers most waits; this covers the ones SQLite returns at once). */
static at_status exec_retry(at_db *db, const char *sql, at_err *e) {
  double deadline = now_s() + db->busy_ms / 1e3;
  for (unsigned pause_us = 1000;; pause_us = pause_us < 32000 ? pause_us * 2 : pause_us) {
    at_status s = exec1(db, sql, e);
    if (s != AT_ERR_BUSY || now_s() >= deadline)
      return s;
    usleep(pause_us);
  }
}

/* ---- transactions ------------------------------------------------------------------------- */

at_status at_db_begin(at_db *db, at_err *e) {
  if (!db)
    return at_fail(e, AT_ERR_ARG, "at_db_begin: no database");
  if (db->ro)
    return at_fail(e, AT_ERR_PERM, "%s: opened read-only; not writing", db->path);
  if (db->depth > 0) {
    db->depth++;
    return AT_OK;
  }
  at_status s = exec_retry(db, "BEGIN IMMEDIATE", e);
  if (s == AT_OK)
    db->depth = 1;
  return s;
}

at_status at_db_commit(at_db *db, at_err *e) {
  if (!db || db->depth == 0)
    return at_fail(e, AT_ERR_ARG, "at_db_commit: no transaction is open");
  if (--db->depth > 0)
    return AT_OK;
  at_status s = exec_retry(db, "COMMIT", e);
  if (s) {
    db->depth = 1;
    at_db_rollback(db);
  }
  return s;
}

void at_db_rollback(at_db *db) {
  if (!db || db->depth == 0)
    return;
  db->depth = 0;
  if (!sqlite3_get_autocommit(db->h))
    exec1(db, "ROLLBACK", NULL);
}

/* Ends a write started with at_db_begin: commits on success; on failure rolls back when this
 * call began the transaction, else leaves the caller's transaction to the caller. */
static at_status finish(at_db *db, at_status s, at_err *e) {
  if (s == AT_OK)
    return at_db_commit(db, e);
  if (db->depth == 1)
    at_db_rollback(db);
  else if (db->depth > 1)
    db->depth--;
  return s;
}

/* ---- the cache directory ------------------------------------------------------------------ */

at_status at_db_check_dir(const char *dir, uid_t owner, at_err *e) {
  struct stat sb;
  if (!dir)
    return at_fail(e, AT_ERR_ARG, "at_db_check_dir: no directory");
  if (lstat(dir, &sb) != 0)
    return at_fail(e, AT_ERR_IO, "tuning database directory %s: %s", dir, strerror(errno));
  const char *why = NULL;
  char buf[96];
  if (S_ISLNK(sb.st_mode))
    why = "it is a symbolic link";
  else if (!S_ISDIR(sb.st_mode))
    why = "it is not a directory";
  else if (sb.st_mode & S_IWOTH) {
    snprintf(buf, sizeof buf, "it is world-writable (mode %04o)", (unsigned)(sb.st_mode & 07777));
    why = buf;
  } else if (sb.st_uid != owner) {
    snprintf(buf, sizeof buf, "it is owned by uid %u, not by uid %u", (unsigned)sb.st_uid,
             (unsigned)owner);
    why = buf;
  }
  if (why)
    return at_fail(e, AT_ERR_PERM,
                   "refusing tuning database directory %s: %s (use a private directory, or set "
                   "TILEC_DB to a file in one)",
                   dir, why);
  return AT_OK;
}

/* mkdir -p with mode 0700 for the components that are missing. */
static at_status make_dirs(char *dir, at_err *e) {
  for (char *p = dir + 1;; p++) {
    if (*p != '/' && *p != 0)
      continue;
    char c = *p;
    *p = 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
      at_status s = at_fail(e, AT_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
      *p = c;
      return s;
    }
    *p = c;
    if (!c)
      return AT_OK;
  }
}

at_status at_db_default_path(char **path, bool create_dir, at_err *e) {
  *path = NULL;
  const char *env = getenv("TILEC_DB");
  char *dir = NULL, *file = NULL;
  at_status s = AT_ERR_OOM;
  if (env && *env) {
    file = strdup(env);
    const char *slash = strrchr(env, '/');
    dir = slash ? strndup(env, slash == env ? 1 : (size_t)(slash - env)) : strdup(".");
  } else {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    at_buf b = {0};
    if (xdg && xdg[0] == '/')
      at_buf_printf(&b, "%s/tilec", xdg);
    else {
      if (!home || !*home) {
        struct passwd *pw = getpwuid(geteuid());
        home = pw ? pw->pw_dir : NULL;
      }
      if (!home || !*home)
        return at_fail(e, AT_ERR_ENV,
                       "no location for the tuning database: HOME and XDG_CACHE_HOME are unset "
                       "(set TILEC_DB)");
      at_buf_printf(&b, "%s/.cache/tilec", home);
    }
    dir = b.p;
    if (dir)
      file = malloc(strlen(dir) + sizeof "/tilec.db");
    if (file)
      sprintf(file, "%s/tilec.db", dir);
  }
  if (!file || !dir) {
    at_fail(e, s, "out of memory");
    goto fail;
  }
  struct stat sb;
  if (create_dir && lstat(dir, &sb) != 0 && (s = make_dirs(dir, e)) != AT_OK)
    goto fail;
  if (lstat(dir, &sb) == 0 && (s = at_db_check_dir(dir, geteuid(), e)) != AT_OK)
    goto fail;
  free(dir);
  *path = file;
  return AT_OK;
fail:
  free(dir);
  free(file);
  return s;
}

/* ---- schema ------------------------------------------------------------------------------- */

static const char *const schema_v4[] = {
    "CREATE TABLE result ("
    " device TEXT NOT NULL, toolchain TEXT NOT NULL, kernel TEXT NOT NULL,"
    " ir_hash TEXT NOT NULL, bucket TEXT NOT NULL, config TEXT NOT NULL,"
    " status TEXT NOT NULL, problem TEXT NOT NULL,"
    " median_ms REAL, p20_ms REAL, p80_ms REAL, min_ms REAL, reps INTEGER NOT NULL,"
    " regs INTEGER NOT NULL, spills INTEGER NOT NULL, smem_bytes INTEGER NOT NULL,"
    " sm_clock_mhz INTEGER NOT NULL, mem_clock_mhz INTEGER NOT NULL, detail TEXT NOT NULL,"
    " compile_key TEXT NOT NULL, time_unix INTEGER NOT NULL, variant TEXT NOT NULL DEFAULT '',"
    " UNIQUE (device, toolchain, kernel, ir_hash, bucket, config))",
    "CREATE TABLE blob (compile_key TEXT PRIMARY KEY, sha256 TEXT NOT NULL,"
    " size INTEGER NOT NULL, meta TEXT, data BLOB NOT NULL, time_unix INTEGER NOT NULL)",
    "CREATE INDEX result_winner ON result"
    " (device, toolchain, kernel, ir_hash, bucket, status, median_ms)",
    "CREATE INDEX result_blob ON result (compile_key) WHERE compile_key <> ''",
    "PRAGMA application_id = 1953066083",
    "PRAGMA user_version = 4",
    NULL,
};

/* From v1: the columns v2 added, with values that mean "unknown". */
static const char *const migrate_v1_v2[] = {
    "ALTER TABLE result ADD COLUMN p20_ms REAL",
    "ALTER TABLE result ADD COLUMN p80_ms REAL",
    "ALTER TABLE result ADD COLUMN mem_clock_mhz INTEGER NOT NULL DEFAULT -1",
    "ALTER TABLE result ADD COLUMN detail TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE result ADD COLUMN compile_key TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE blob ADD COLUMN meta TEXT",
    "ALTER TABLE blob ADD COLUMN time_unix INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX result_winner ON result"
    " (device, toolchain, kernel, ir_hash, bucket, status, median_ms)",
    "CREATE INDEX result_blob ON result (compile_key) WHERE compile_key <> ''",
    "PRAGMA application_id = 1953066083",
    "PRAGMA user_version = 2",
    NULL,
};

/* From v2: the variant column; every older row measured the generic code. */
static const char *const migrate_v2_v3[] = {
    "ALTER TABLE result ADD COLUMN variant TEXT NOT NULL DEFAULT ''",
    "PRAGMA user_version = 3",
    NULL,
};

/* From v3: compile keys of version 2 (at_compile_key). A v1 key covered the tunables without
 * the problem's dtype and const parameters, so the blob a row names may hold another problem's
 * code; every row forgets its key (the blobs become orphans for `db prune --orphan-blobs`), and
 * the next compile or `tilec tune` stores the code under its v2 key. */
static const char *const migrate_v3_v4[] = {
    "UPDATE result SET compile_key = '' WHERE compile_key <> ''",
    "PRAGMA user_version = 4",
    NULL,
};

static at_status exec_all(at_db *db, const char *const *sql, at_err *e) {
  for (; *sql; sql++) {
    at_status s = exec1(db, *sql, e);
    if (s)
      return s;
  }
  return AT_OK;
}

/* Reads user_version and says whether the file is ours: AT_OK with *version, AT_ERR_CORRUPT
 * for a file of something else, AT_ERR_SCHEMA for a newer version. *empty: no tables at all. */
static at_status read_version(at_db *db, long long *version, bool *empty, at_err *e) {
  /* One statement, so one read transaction: another process creating the schema at this
   * moment is seen entirely or not at all. */
  sqlite3_stmt *st;
  at_status s = prep(db,
                     "SELECT (SELECT user_version FROM pragma_user_version),"
                     " (SELECT application_id FROM pragma_application_id),"
                     " (SELECT count(*) FROM sqlite_master WHERE type = 'table'),"
                     " (SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                     " AND name IN ('result', 'blob'))",
                     &st, e);
  if (s)
    return s;
  int rc = sqlite3_step(st);
  long long app = 0, tables = 0, ours = 0;
  if (rc == SQLITE_ROW) {
    *version = sqlite3_column_int64(st, 0);
    app = sqlite3_column_int64(st, 1);
    tables = sqlite3_column_int64(st, 2);
    ours = sqlite3_column_int64(st, 3);
  } else
    s = sq_fail(db, rc, e, "reading the schema version");
  sqlite3_finalize(st);
  if (s)
    return s;
  *empty = tables == 0;
  if ((app != 0 && app != APPLICATION_ID) || (tables > 0 && ours != 2) ||
      (*version == 0 && tables > 0))
    return at_fail(e, AT_ERR_CORRUPT,
                   "%s: a SQLite database, but not a tilec tuning database (application_id "
                   "%lld, user_version %lld, %lld tables)",
                   db->path, app, *version, tables);
  if (*version > AT_DB_SCHEMA_VERSION)
    return at_fail(e, AT_ERR_SCHEMA,
                   "%s: schema version %lld is newer than this tilec's (%d); use a newer tilec "
                   "or another file (TILEC_DB)",
                   db->path, *version, AT_DB_SCHEMA_VERSION);
  return AT_OK;
}

/* Creates or migrates the schema. Read-write only; re-checks inside the write transaction,
 * so processes that open a new file at once create it once. */
static at_status setup_schema(at_db *db, at_err *e) {
  long long v;
  bool empty;
  at_status s = read_version(db, &v, &empty, e);
  if (s || v == AT_DB_SCHEMA_VERSION)
    return s;
  if ((s = at_db_begin(db, e)))
    return s;
  s = read_version(db, &v, &empty, e);
  if (!s && v == 0 && empty)
    s = exec_all(db, schema_v4, e);
  else if (!s && v >= 1 && v <= 3) {
    if (v == 1)
      s = exec_all(db, migrate_v1_v2, e);
    if (!s && v <= 2)
      s = exec_all(db, migrate_v2_v3, e);
    if (!s)
      s = exec_all(db, migrate_v3_v4, e);
  }
  return finish(db, s, e);
}

/* ---- open and close ----------------------------------------------------------------------- */

at_status at_db_open(const char *path, unsigned flags, at_db **out, at_err *e) {
  *out = NULL;
  at_db *db = calloc(1, sizeof *db);
  if (!db)
    return at_fail(e, AT_ERR_OOM, "out of memory");
  db->ro = flags & AT_DB_READONLY;
  db->busy_ms = DEFAULT_BUSY_MS;
  at_status s = AT_OK;
  if (path)
    db->path = strdup(path);
  else if ((s = at_db_default_path(&db->path, !db->ro, e)))
    goto fail;
  if (!db->path) {
    s = at_fail(e, AT_ERR_OOM, "out of memory");
    goto fail;
  }
  struct stat sb;
  if (db->ro && stat(db->path, &sb) != 0) {
    s = at_fail(e, AT_MISS, "no tuning database at %s", db->path);
    goto fail;
  }
  if (!db->ro) {
    /* Create it owner-only (SQLite gives -wal and -shm the same mode); never through a link. */
    int fd = open(db->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      s = at_fail(e, errno == EACCES || errno == ELOOP || errno == EROFS ? AT_ERR_PERM : AT_ERR_IO,
                  "cannot open the tuning database %s: %s", db->path,
                  errno == ELOOP ? "it is a symbolic link" : strerror(errno));
      goto fail;
    }
    close(fd);
  }
  int oflags = (db->ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(db->path, &db->h, oflags, NULL);
  if (rc != SQLITE_OK) {
    s = sq_fail(db, rc, e, "open");
    goto fail;
  }
  sqlite3_extended_result_codes(db->h, 1);
  sqlite3_busy_timeout(db->h, db->busy_ms);
  long long v;
  bool empty;
  /* Whose file is it? Asked before anything is written (WAL mode changes the header). */
  if ((s = read_version(db, &v, &empty, e)))
    goto fail;
  if (db->ro) {
    if (v == 0) {
      s = at_fail(e, AT_MISS, "%s: an empty database (no tuning results)", db->path);
      goto fail;
    }
    if (v < AT_DB_SCHEMA_VERSION) {
      s = at_fail(e, AT_ERR_SCHEMA,
                  "%s: schema version %lld needs a migration to %d; open it once without "
                  "read-only mode",
                  db->path, v, AT_DB_SCHEMA_VERSION);
      goto fail;
    }
  } else {
    sqlite3_stmt *st;
    if ((s = prep(db, "PRAGMA journal_mode = WAL", &st, e)))
      goto fail;
    double deadline = now_s() + db->busy_ms / 1e3;
    while ((rc = sqlite3_step(st)) == SQLITE_BUSY && now_s() < deadline) {
      sqlite3_reset(st);
      usleep(2000);
    }
    bool wal = rc == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
    if (rc != SQLITE_ROW)
      s = sq_fail(db, rc, e, "setting WAL mode");
    else if (!wal)
      s = at_fail(e, AT_ERR_IO, "%s: the file system does not support WAL mode", db->path);
    sqlite3_finalize(st);
    if (s || (s = exec1(db, "PRAGMA synchronous = NORMAL", e)) || (s = setup_schema(db, e)))
      goto fail;
  }
  *out = db;
  return AT_OK;
fail:
  at_db_close(db);
  return s;
}

void at_db_close(at_db *db) {
  if (!db)
    return;
  if (db->h) {
    at_db_rollback(db);
    sqlite3_close_v2(db->h);
  }
  free(db->path);
  free(db);
}

const char *at_db_path(const at_db *db) { return db ? db->path : NULL; }

void at_db_set_busy_timeout(at_db *db, int ms) {
  if (!db)
    return;
  db->busy_ms = ms < 0 ? 0 : ms;
  sqlite3_busy_timeout(db->h, db->busy_ms);
}

/* ---- rows --------------------------------------------------------------------------------- */

/* A bump allocator for the strings of a result set. */
typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  char data[];
} chunk;

static char *arena_dup(chunk **head, const char *s, size_t n) {
  chunk *c = *head;
  if (!c || c->cap - c->used < n + 1) {
    size_t cap = n + 1 > 16384 ? n + 1 : 16384;
    c = malloc(sizeof *c + cap);
    if (!c)
      return NULL;
    c->next = *head;
    c->used = 0;
    c->cap = cap;
    *head = c;
  }
  char *p = c->data + c->used;
  memcpy(p, s, n);
  p[n] = 0;
  c->used += n + 1;
  return p;
}

static void arena_free(chunk *c) {
  while (c) {
    chunk *next = c->next;
    free(c);
    c = next;
  }
}

void at_rows_free(at_rows *rows) {
  if (!rows)
    return;
  free(rows->r);
  arena_free(rows->storage);
  memset(rows, 0, sizeof *rows);
}

void at_key_list_free(at_key_list *l) {
  if (!l)
    return;
  free(l->k);
  arena_free(l->storage);
  memset(l, 0, sizeof *l);
}

at_result at_result_empty(void) {
  at_result r;
  memset(&r, 0, sizeof r);
  r.key = (at_key){"", "", "", "", ""};
  r.config = r.problem = r.detail = r.compile_key = r.variant = "";
  r.status = AT_RUN_OK;
  r.median_ms = r.p20_ms = r.p80_ms = r.min_ms = NAN;
  r.regs = r.spills = r.smem_bytes = r.sm_clock_mhz = r.mem_clock_mhz = -1;
  return r;
}

/* The columns of a row, in the order fill_row reads them. */
#define ROW_COLS                                                                                   \
  "device, toolchain, kernel, ir_hash, bucket, config, status, problem, median_ms, p20_ms,"        \
  " p80_ms, min_ms, reps, regs, spills, smem_bytes, sm_clock_mhz, mem_clock_mhz, detail,"          \
  " compile_key, time_unix, variant"

static const char *col_text(sqlite3_stmt *st, int i) {
  const char *s = (const char *)sqlite3_column_text(st, i);
  return s ? s : "";
}

static double col_ms(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* Fills r from the current row of st (ROW_COLS from column 0). The strings point into st and
 * last until its next step. AT_ERR_CORRUPT for a status this build does not know. */
static at_status fill_row(at_db *db, sqlite3_stmt *st, at_result *r, at_err *e) {
  r->key.device = col_text(st, 0);
  r->key.toolchain = col_text(st, 1);
  r->key.kernel = col_text(st, 2);
  r->key.ir_hash = col_text(st, 3);
  r->key.bucket = col_text(st, 4);
  r->config = col_text(st, 5);
  const char *status = col_text(st, 6);
  if (!at_run_parse(status, &r->status))
    return at_fail(e, AT_ERR_CORRUPT, "%s: a row with the unknown status '%.64s'", db->path,
                   status);
  r->problem = col_text(st, 7);
  r->median_ms = col_ms(st, 8);
  r->p20_ms = col_ms(st, 9);
  r->p80_ms = col_ms(st, 10);
  r->min_ms = col_ms(st, 11);
  r->reps = sqlite3_column_int(st, 12);
  r->regs = sqlite3_column_int(st, 13);
  r->spills = sqlite3_column_int(st, 14);
  r->smem_bytes = sqlite3_column_int(st, 15);
  r->sm_clock_mhz = sqlite3_column_int(st, 16);
  r->mem_clock_mhz = sqlite3_column_int(st, 17);
  r->detail = col_text(st, 18);
  r->compile_key = col_text(st, 19);
  r->time_unix = sqlite3_column_int64(st, 20);
  r->variant = col_text(st, 21);
  return AT_OK;
}

/* Copies the strings of r into the arena. */
static bool own_strings(chunk **arena, at_result *r) {
  const char **fields[] = {&r->key.device,  &r->key.toolchain, &r->key.kernel, &r->key.ir_hash,
                           &r->key.bucket,  &r->config,        &r->problem,    &r->detail,
                           &r->compile_key, &r->variant};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (!(*fields[i] = arena_dup(arena, *fields[i], strlen(*fields[i]))))
      return false;
  return true;
}

/* Steps st to the end, collecting every row into out (which it first empties). Finalizes st. */
static at_status read_rows(at_db *db, sqlite3_stmt *st, at_rows *out, at_err *e) {
  memset(out, 0, sizeof *out);
  at_status s = AT_OK;
  int cap = 0, rc;
  chunk *arena = NULL;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (out->n == cap) {
      cap = cap ? 2 * cap : 16;
      at_result *r = realloc(out->r, (size_t)cap * sizeof *r);
      if (!r) {
        s = at_fail(e, AT_ERR_OOM, "out of memory reading %s", db->path);
        goto fail;
      }
      out->r = r;
    }
    at_result *r = &out->r[out->n];
    if ((s = fill_row(db, st, r, e)))
      goto fail;
    if (!own_strings(&arena, r)) {
      s = at_fail(e, AT_ERR_OOM, "out of memory reading %s", db->path);
      goto fail;
    }
    out->n++;
  }
  if (rc != SQLITE_DONE) {
    s = sq_fail(db, rc, e, "reading rows");
    goto fail;
  }
  out->storage = arena;
  sqlite3_finalize(st);
  return AT_OK;
fail:
  sqlite3_finalize(st);
  out->storage = arena;
  at_rows_free(out);
  return s;
}

static bool key_complete(const at_key *k) {
  return k && k->device && k->toolchain && k->kernel && k->ir_hash && k->bucket;
}

/* Binds the five key fields to ?1..?5 (NULL fields as NULL, for patterns). The strings must
 * outlive the statement's use. */
static void bind_key(sqlite3_stmt *st, const at_key *k) {
  const char *f[5] = {k->device, k->toolchain, k->kernel, k->ir_hash, k->bucket};
  for (int i = 0; i < 5; i++)
    if (f[i])
      sqlite3_bind_text(st, i + 1, f[i], -1, SQLITE_STATIC);
    else
      sqlite3_bind_null(st, i + 1);
}

static void bind_ms(sqlite3_stmt *st, int i, double v) {
  if (isnan(v))
    sqlite3_bind_null(st, i);
  else
    sqlite3_bind_double(st, i, v);
}

static at_status check_row(const at_key *k, const at_result *r, at_err *e) {
  if (!key_complete(k))
    return at_fail(e, AT_ERR_ARG, "tuning database: a key with a NULL field");
  if (!r || !r->config)
    return at_fail(e, AT_ERR_ARG, "tuning database: a row without a config");
  if ((unsigned)r->status >= AT_RUN_COUNT)
    return at_fail(e, AT_ERR_ARG, "tuning database: status %d is not a run outcome",
                   (int)r->status);
  if (r->variant && r->variant[0] && strcmp(r->variant, "aligned"))
    return at_fail(e, AT_ERR_ARG, "tuning database: unknown code variant '%.64s'", r->variant);
  if (r->status == AT_RUN_OK && !(isfinite(r->median_ms) && r->median_ms >= 0))
    return at_fail(e, AT_ERR_ARG,
                   "tuning database: an ok row of config '%.200s' without a finite median",
                   r->config);
  return AT_OK;
}

/* The INSERT of at_db_put and at_db_offer: ?1..?5 the key, ?6..?22 the row. */
#define INSERT_ROW                                                                                 \
  "INSERT INTO result (" ROW_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"   \
  " ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"                                             \
  " ON CONFLICT (device, toolchain, kernel, ir_hash, bucket, config) DO UPDATE SET"                \
  " status = excluded.status, problem = excluded.problem, median_ms = excluded.median_ms,"         \
  " p20_ms = excluded.p20_ms, p80_ms = excluded.p80_ms, min_ms = excluded.min_ms,"                 \
  " reps = excluded.reps, regs = excluded.regs, spills = excluded.spills,"                         \
  " smem_bytes = excluded.smem_bytes, sm_clock_mhz = excluded.sm_clock_mhz,"                       \
  " mem_clock_mhz = excluded.mem_clock_mhz, detail = excluded.detail,"                             \
  " compile_key = excluded.compile_key, time_unix = excluded.time_unix,"                           \
  " variant = excluded.variant"

/* Binds and runs one insert statement (reset first, so it can be reused); *changed: a row was
 * written. */
static at_status put_row(at_db *db, sqlite3_stmt *st, const at_key *k, const at_result *r,
                         bool *changed, at_err *e) {
  sqlite3_reset(st);
  bind_key(st, k);
  sqlite3_bind_text(st, 6, r->config, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 7, at_run_name(r->status), -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 8, r->problem ? r->problem : "", -1, SQLITE_STATIC);
  bind_ms(st, 9, r->median_ms);
  bind_ms(st, 10, r->p20_ms);
  bind_ms(st, 11, r->p80_ms);
  bind_ms(st, 12, r->min_ms);
  const int ints[] = {r->reps,       r->regs,         r->spills,
                      r->smem_bytes, r->sm_clock_mhz, r->mem_clock_mhz};
  for (int i = 0; i < 6; i++)
    sqlite3_bind_int(st, 13 + i, ints[i]);
  sqlite3_bind_text(st, 19, r->detail ? r->detail : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 20, r->compile_key ? r->compile_key : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 21, r->time_unix ? r->time_unix : (long long)time(NULL));
  sqlite3_bind_text(st, 22, r->variant ? r->variant : "", -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE)
    return sq_fail(db, rc, e, "writing a row");
  if (changed)
    *changed = sqlite3_changes(db->h) > 0;
  return AT_OK;
}

/* Writes n rows of key k in one transaction with the given insert statement text. */
static at_status write_rows(at_db *db, const char *sql, const at_key *k, const at_result *r, int n,
                            bool *taken, at_err *e) {
  if (!db)
    return at_fail(e, AT_ERR_ARG, "tuning database: no database");
  if (n < 0 || (n > 0 && !r))
    return at_fail(e, AT_ERR_ARG, "tuning database: bad row count %d", n);
  for (int i = 0; i < n; i++) {
    at_status s = check_row(k, &r[i], e);
    if (s)
      return s;
  }
  at_status s = at_db_begin(db, e);
  if (s)
    return s;
  sqlite3_stmt *st;
  if (!(s = prep(db, sql, &st, e))) {
    for (int i = 0; i < n && !s; i++)
      s = put_row(db, st, k, &r[i], taken, e);
    sqlite3_finalize(st);
  }
  return finish(db, s, e);
}

at_status at_db_put(at_db *db, const at_key *k, const at_result *r, at_err *e) {
  return write_rows(db, INSERT_ROW, k, r, 1, NULL, e);
}

at_status at_db_put_many(at_db *db, const at_key *k, const at_result *r, int n, at_err *e) {
  return write_rows(db, INSERT_ROW, k, r, n, NULL, e);
}

/* at_db_offer's rule in SQL: ok beats not-ok, then the newer time wins. */
#define OFFER_ROW                                                                                  \
  INSERT_ROW " WHERE (excluded.status = 'ok') > (result.status = 'ok')"                            \
             " OR ((excluded.status = 'ok') = (result.status = 'ok')"                              \
             " AND excluded.time_unix > result.time_unix)"

at_status at_db_offer(at_db *db, const at_key *k, const at_result *r, bool *taken, at_err *e) {
  bool t = false;
  at_status s = write_rows(db, OFFER_ROW, k, r, 1, &t, e);
  if (taken)
    *taken = s == AT_OK && t;
  return s;
}

/* Prepares sql, binds the key (and config to ?6 when not NULL) and reads every row. */
static at_status select_rows(at_db *db, const char *sql, const at_key *k, const char *config,
                             at_rows *out, at_err *e) {
  memset(out, 0, sizeof *out);
  if (!db)
    return at_fail(e, AT_ERR_ARG, "tuning database: no database");
  sqlite3_stmt *st;
  at_status s = prep(db, sql, &st, e);
  if (s)
    return s;
  bind_key(st, k);
  if (config)
    sqlite3_bind_text(st, 6, config, -1, SQLITE_STATIC);
  return read_rows(db, st, out, e);
}

#define KEY_EQ "device = ?1 AND toolchain = ?2 AND kernel = ?3 AND ir_hash = ?4 AND bucket = ?5"
at_status at_db_forget(at_db *db, const at_key *k, int *removed, at_err *e) {
  if (removed)
    *removed = 0;
  if (!db || !k || !key_complete(k))
    return at_fail(e, AT_ERR_ARG, "tuning database: forget needs a database and a complete key");
  at_status s = at_db_begin(db, e);
  if (s)
    return s;
  sqlite3_stmt *st;
  if (!(s = prep(db, "DELETE FROM result WHERE " KEY_EQ, &st, e))) {
    bind_key(st, k);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
      s = sq_fail(db, rc, e, "forgetting a problem's rows");
    else if (removed)
      *removed = sqlite3_changes(db->h);
    sqlite3_finalize(st);
  }
  return finish(db, s, e);
}

#define KEY_LIKE                                                                                   \
  "(?1 IS NULL OR device = ?1) AND (?2 IS NULL OR toolchain = ?2) AND (?3 IS NULL OR kernel = ?3)" \
  " AND (?4 IS NULL OR ir_hash = ?4) AND (?5 IS NULL OR bucket = ?5)"
#define KEY_ORDER "kernel, device, toolchain, ir_hash, bucket"

at_status at_db_get(at_db *db, const at_key *k, const char *config, at_rows *out, at_err *e) {
  memset(out, 0, sizeof *out);
  if (!key_complete(k) || !config)
    return at_fail(e, AT_ERR_ARG, "at_db_get: a NULL key field or config");
  at_status s = select_rows(db, "SELECT " ROW_COLS " FROM result WHERE " KEY_EQ " AND config = ?6",
                            k, config, out, e);
  if (!s && out->n == 0)
    s = at_fail(e, AT_MISS, "no row for config '%.200s' of kernel '%.200s'", config, k->kernel);
  return s;
}

at_status at_db_list(at_db *db, const at_key *k, at_rows *out, at_err *e) {
  memset(out, 0, sizeof *out);
  if (!key_complete(k))
    return at_fail(e, AT_ERR_ARG, "at_db_list: a key with a NULL field");
  return select_rows(db,
                     "SELECT " ROW_COLS " FROM result WHERE " KEY_EQ
                     " ORDER BY status <> 'ok', CASE WHEN status = 'ok' THEN median_ms END, config",
                     k, NULL, out, e);
}

at_status at_db_winner(at_db *db, const at_key *k, at_rows *out, at_err *e) {
  memset(out, 0, sizeof *out);
  if (!key_complete(k))
    return at_fail(e, AT_ERR_ARG, "at_db_winner: a key with a NULL field");
  at_status s = select_rows(db,
                            "SELECT " ROW_COLS " FROM result WHERE " KEY_EQ
                            " AND status = 'ok' AND median_ms IS NOT NULL"
                            " ORDER BY median_ms, config LIMIT 1",
                            k, NULL, out, e);
  if (!s && out->n == 0)
    s = at_fail(e, AT_MISS, "no ok row for kernel '%.200s' in bucket '%.200s'", k->kernel,
                k->bucket);
  return s;
}

static const at_key any_key;

at_status at_db_winners(at_db *db, const at_key *pattern, at_rows *out, at_err *e) {
  /* The window sorts rowids only; the rows are read once they are chosen. */
  return select_rows(db,
                     "SELECT " ROW_COLS " FROM result WHERE rowid IN (SELECT id FROM (SELECT"
                     " rowid AS id, row_number() OVER (PARTITION BY device, toolchain, kernel,"
                     " ir_hash, bucket ORDER BY median_ms, config) AS rank FROM result"
                     " WHERE status = 'ok' AND median_ms IS NOT NULL AND " KEY_LIKE
                     ") WHERE rank = 1) ORDER BY " KEY_ORDER,
                     pattern ? pattern : &any_key, NULL, out, e);
}

at_status at_db_rows(at_db *db, const at_key *pattern, at_rows *out, at_err *e) {
  return select_rows(
      db, "SELECT " ROW_COLS " FROM result WHERE " KEY_LIKE " ORDER BY " KEY_ORDER ", config",
      pattern ? pattern : &any_key, NULL, out, e);
}

at_status at_db_keys(at_db *db, const at_key *pattern, at_key_list *out, at_err *e) {
  memset(out, 0, sizeof *out);
  if (!db)
    return at_fail(e, AT_ERR_ARG, "at_db_keys: no database");
  sqlite3_stmt *st;
  at_status s =
      prep(db,
           "WITH k AS (SELECT device, toolchain, kernel, ir_hash, bucket, count(*) AS n,"
           " sum(status = 'ok') AS nok, max(time_unix) AS newest FROM result WHERE " KEY_LIKE
           " GROUP BY device, toolchain, kernel, ir_hash, bucket),"
           " w AS (SELECT device, toolchain, kernel, ir_hash, bucket, config, median_ms,"
           " row_number() OVER (PARTITION BY device, toolchain, kernel, ir_hash, bucket"
           " ORDER BY median_ms, config) AS rank FROM result"
           " WHERE status = 'ok' AND median_ms IS NOT NULL AND " KEY_LIKE ")"
           " SELECT k.device, k.toolchain, k.kernel, k.ir_hash, k.bucket, k.n, k.nok, k.newest,"
           " w.config, w.median_ms FROM k LEFT JOIN w ON w.rank = 1 AND w.device = k.device"
           " AND w.toolchain = k.toolchain AND w.kernel = k.kernel AND w.ir_hash = k.ir_hash"
           " AND w.bucket = k.bucket ORDER BY k.kernel, k.device, k.toolchain, k.ir_hash, k.bucket",
           &st, e);
  if (s)
    return s;
  bind_key(st, pattern ? pattern : &any_key);
  int cap = 0, rc;
  chunk *arena = NULL;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (out->n == cap) {
      cap = cap ? 2 * cap : 16;
      at_key_info *k = realloc(out->k, (size_t)cap * sizeof *k);
      if (!k)
        goto oom;
      out->k = k;
    }
    at_key_info *ki = &out->k[out->n];
    const char **f[5] = {&ki->key.device, &ki->key.toolchain, &ki->key.kernel, &ki->key.ir_hash,
                         &ki->key.bucket};
    for (int i = 0; i < 5; i++) {
      const char *t = col_text(st, i);
      if (!(*f[i] = arena_dup(&arena, t, strlen(t))))
        goto oom;
    }
    ki->rows = sqlite3_column_int(st, 5);
    ki->ok = sqlite3_column_int(st, 6);
    ki->newest_unix = sqlite3_column_int64(st, 7);
    ki->winner_config = NULL;
    if (sqlite3_column_type(st, 8) != SQLITE_NULL &&
        !(ki->winner_config = arena_dup(&arena, col_text(st, 8), strlen(col_text(st, 8)))))
      goto oom;
    ki->winner_ms = col_ms(st, 9);
    out->n++;
  }
  out->storage = arena;
  if (rc != SQLITE_DONE) {
    s = sq_fail(db, rc, e, "listing keys");
    at_key_list_free(out);
  }
  sqlite3_finalize(st);
  return s;
oom:
  sqlite3_finalize(st);
  out->storage = arena;
  at_key_list_free(out);
  return at_fail(e, AT_ERR_OOM, "out of memory listing %s", db->path);
}

/* ---- blobs -------------------------------------------------------------------------------- */

at_status at_compile_key(const char *ir_hash, const char *config, const char *arch,
                         const char *toolchain, char out[65], at_err *e) {
  return at_compile_key_variant(ir_hash, config, arch, toolchain, NULL, out, e);
}

at_status at_compile_key_variant(const char *ir_hash, const char *config, const char *arch,
                                 const char *toolchain, const char *variant, char out[65],
                                 at_err *e) {
  out[0] = 0;
  if (!ir_hash || !config || !arch || !toolchain)
    return at_fail(e, AT_ERR_ARG, "at_compile_key: a NULL argument");
  static const char tag[] = "tilec compile key v2";
  const char *parts[] = {tag, ir_hash, config, arch, toolchain, variant};
  int n = variant && variant[0] ? 6 : 5;
  at_sha256_ctx c;
  at_sha256_init(&c);
  for (int i = 0; i < n; i++)
    at_sha256_update(&c, parts[i], strlen(parts[i]) + 1); /* with the NUL: a separator */
  unsigned char d[32];
  at_sha256_final(&c, d);
  at_hex32(d, out);
  return AT_OK;
}

at_status at_db_put_blob(at_db *db, const char *compile_key, const void *data, size_t n,
                         const char *meta, at_err *e) {
  if (!db || !compile_key || !data)
    return at_fail(e, AT_ERR_ARG, "at_db_put_blob: a NULL argument");
  if (n == 0 || n > MAX_BLOB_BYTES)
    return at_fail(e, AT_ERR_ARG, "at_db_put_blob: %zu bytes (1 byte .. 512 MiB)", n);
  char sha[65];
  at_sha256_hex(data, n, sha);
  at_status s = at_db_begin(db, e);
  if (s)
    return s;
  sqlite3_stmt *st;
  if (!(s = prep(db,
                 "INSERT INTO blob (compile_key, sha256, size, meta, data, time_unix)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (compile_key) DO UPDATE SET"
                 " sha256 = excluded.sha256, size = excluded.size, meta = excluded.meta,"
                 " data = excluded.data, time_unix = excluded.time_unix",
                 &st, e))) {
    sqlite3_bind_text(st, 1, compile_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sha, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)n);
    if (meta)
      sqlite3_bind_text(st, 4, meta, -1, SQLITE_STATIC);
    else
      sqlite3_bind_null(st, 4);
    sqlite3_bind_blob64(st, 5, data, (sqlite3_uint64)n, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)time(NULL));
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
      s = sq_fail(db, rc, e, "writing a blob");
    sqlite3_finalize(st);
  }
  return finish(db, s, e);
}

/* Why the blob in the current row of st (columns sha256, size, data at i, i+1, i+2) fails its
 * check, or NULL when it passes. */
static const char *blob_problem(sqlite3_stmt *st, int i) {
  const void *data = sqlite3_column_blob(st, i + 2);
  sqlite3_int64 size = sqlite3_column_int64(st, i + 1);
  int n = sqlite3_column_bytes(st, i + 2);
  if (sqlite3_column_type(st, i + 2) != SQLITE_BLOB || !data || n <= 0)
    return "no data";
  if ((sqlite3_int64)n != size)
    return "its size does not match";
  char sha[65];
  at_sha256_hex(data, (size_t)n, sha);
  if (strcmp(sha, col_text(st, i)) != 0)
    return "its SHA-256 does not match";
  return NULL;
}

/* Deletes a damaged blob and makes the rows that pointed at it forget it. */
static at_status drop_blob(at_db *db, const char *compile_key, at_err *e) {
  at_status s = at_db_begin(db, e);
  if (s)
    return s;
  static const char *const sql[] = {
      "DELETE FROM blob WHERE compile_key = ?1",
      "UPDATE result SET compile_key = '' WHERE compile_key = ?1",
  };
  for (int i = 0; i < 2 && !s; i++) {
    sqlite3_stmt *st;
    if ((s = prep(db, sql[i], &st, e)))
      break;
    sqlite3_bind_text(st, 1, compile_key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
      s = sq_fail(db, rc, e, "deleting a damaged blob");
    sqlite3_finalize(st);
  }
  return finish(db, s, e);
}

at_status at_db_get_blob(at_db *db, const char *compile_key, void **data, size_t *n, char **meta,
                         at_err *e) {
  *data = NULL;
  *n = 0;
  if (meta)
    *meta = NULL;
  if (!db || !compile_key)
    return at_fail(e, AT_ERR_ARG, "at_db_get_blob: a NULL argument");
  sqlite3_stmt *st;
  at_status s =
      prep(db, "SELECT sha256, size, data, meta FROM blob WHERE compile_key = ?1", &st, e);
  if (s)
    return s;
  sqlite3_bind_text(st, 1, compile_key, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    s = at_fail(e, AT_MISS, "no cubin stored for compile key %.80s", compile_key);
    goto done;
  }
  if (rc != SQLITE_ROW) {
    s = sq_fail(db, rc, e, "reading a blob");
    goto done;
  }
  const char *bad = blob_problem(st, 0);
  if (bad) {
    s = at_fail(e, AT_MISS, "stored cubin for compile key %.80s is damaged: %s%s", compile_key, bad,
                db->ro ? " (left in place: read-only)" : "; deleted");
    sqlite3_finalize(st);
    st = NULL;
    if (!db->ro)
      drop_blob(db, compile_key, NULL);
    goto done;
  }
  size_t len = (size_t)sqlite3_column_bytes(st, 2);
  *data = malloc(len);
  const char *m = sqlite3_column_type(st, 3) == SQLITE_NULL ? NULL : col_text(st, 3);
  if (meta && m)
    *meta = strdup(m);
  if (!*data || (meta && m && !*meta)) {
    free(*data);
    *data = NULL;
    if (meta) {
      free(*meta);
      *meta = NULL;
    }
    s = at_fail(e, AT_ERR_OOM, "out of memory reading a blob of %zu bytes", len);
    goto done;
  }
  memcpy(*data, sqlite3_column_blob(st, 2), len);
  *n = len;
done:
  sqlite3_finalize(st);
  return s;
}

/* Whether dst holds a sound blob under the key of the current row of src_st (column 0). */
static at_status dst_has_blob(at_db *dst, const char *key, bool *has, at_err *e) {
  sqlite3_stmt *st;
  at_status s = prep(dst, "SELECT sha256, size, data FROM blob WHERE compile_key = ?1", &st, e);
  if (s)
    return s;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  *has = rc == SQLITE_ROW && !blob_problem(st, 0);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    s = sq_fail(dst, rc, e, "reading a blob");
  sqlite3_finalize(st);
  return s;
}

static at_status merge_blobs(at_db *dst, at_db *src, at_merge_stats *st, at_err *e) {
  sqlite3_stmt *q, *ins = NULL;
  at_status s = prep(src,
                     "SELECT sha256, size, data, compile_key, meta, time_unix FROM blob"
                     " ORDER BY compile_key",
                     &q, e);
  if (s)
    return s;
  if ((s = prep(dst,
                "INSERT OR REPLACE INTO blob (compile_key, sha256, size, meta, data, time_unix)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &ins, e)))
    goto done;
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    st->blobs_seen++;
    if (blob_problem(q, 0)) {
      st->blobs_bad++;
      continue;
    }
    const char *key = col_text(q, 3);
    bool has;
    if ((s = dst_has_blob(dst, key, &has, e)))
      goto done;
    if (has)
      continue;
    sqlite3_reset(ins);
    sqlite3_bind_text(ins, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, col_text(q, 0), -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, sqlite3_column_int64(q, 1));
    if (sqlite3_column_type(q, 4) == SQLITE_NULL)
      sqlite3_bind_null(ins, 4);
    else
      sqlite3_bind_text(ins, 4, col_text(q, 4), -1, SQLITE_STATIC);
    sqlite3_bind_blob(ins, 5, sqlite3_column_blob(q, 2), sqlite3_column_bytes(q, 2), SQLITE_STATIC);
    sqlite3_bind_int64(ins, 6, sqlite3_column_int64(q, 5));
    if ((rc = sqlite3_step(ins)) != SQLITE_DONE) {
      s = sq_fail(dst, rc, e, "writing a blob");
      goto done;
    }
    st->blobs_taken++;
  }
  if (rc != SQLITE_DONE)
    s = sq_fail(src, rc, e, "reading blobs");
done:
  sqlite3_finalize(ins);
  sqlite3_finalize(q);
  return s;
}

/* The start of at_db_merge and at_db_prune: zeroes their statistics (size bytes at stats), fails
 * with AT_ERR_ARG and null_msg unless args_ok, and begins the transaction on db. */
static at_status begin_counted(at_db *db, bool args_ok, const char *null_msg, void *stats,
                               size_t size, at_err *e) {
  memset(stats, 0, size);
  if (!args_ok)
    return at_fail(e, AT_ERR_ARG, "%s", null_msg);
  return at_db_begin(db, e);
}

at_status at_db_merge(at_db *dst, at_db *src, at_merge_stats *stats, at_err *e) {
  at_merge_stats local;
  at_merge_stats *st = stats ? stats : &local;
  at_status s = begin_counted(dst, dst && src, "at_db_merge: no database", st, sizeof *st, e);
  if (s)
    return s;
  sqlite3_stmt *q = NULL, *ins = NULL;
  if ((s = prep(src, "SELECT " ROW_COLS " FROM result ORDER BY " KEY_ORDER ", config", &q, e)) ||
      (s = prep(dst, OFFER_ROW, &ins, e)))
    goto done;
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    at_result r;
    bool taken = false;
    st->rows_seen++;
    if ((s = fill_row(src, q, &r, e)) || (s = check_row(&r.key, &r, e)) ||
        (s = put_row(dst, ins, &r.key, &r, &taken, e)))
      goto done;
    st->rows_taken += taken;
  }
  if (rc != SQLITE_DONE) {
    s = sq_fail(src, rc, e, "reading rows");
    goto done;
  }
  s = merge_blobs(dst, src, st, e);
done:
  sqlite3_finalize(ins);
  sqlite3_finalize(q);
  return finish(dst, s, e);
}

/* ---- maintenance -------------------------------------------------------------------------- */

/* Deletes every blob that fails its check (and the rows' references to it). */
static at_status prune_bad_blobs(at_db *db, int *removed, at_err *e) {
  sqlite3_stmt *q;
  at_status s = prep(db, "SELECT sha256, size, data, compile_key FROM blob", &q, e);
  if (s)
    return s;
  char **bad = NULL;
  int nbad = 0, rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    if (!blob_problem(q, 0))
      continue;
    char **grown = realloc(bad, (size_t)(nbad + 1) * sizeof *bad);
    if (!grown || !(grown[nbad] = strdup(col_text(q, 3)))) {
      bad = grown ? grown : bad;
      s = at_fail(e, AT_ERR_OOM, "out of memory");
      break;
    }
    bad = grown;
    nbad++;
  }
  if (!s && rc != SQLITE_DONE)
    s = sq_fail(db, rc, e, "reading blobs");
  sqlite3_finalize(q);
  for (int i = 0; i < nbad; i++) {
    if (!s && !(s = drop_blob(db, bad[i], e)))
      (*removed)++;
    free(bad[i]);
  }
  free(bad);
  return s;
}

/* Fills temp.keep with the compile keys of the generic code stored beside aligned rows (by
 * `tilec tune` after a sweep of the aligned variant; no row points at it), which the aligned
 * blob's meta names ("generic_key"). Such blobs are the fallback of an exported aligned entry,
 * so prune keeps them while their aligned row lives. */
static at_status keep_generic_twins(at_db *db, at_err *e) {
  sqlite3_stmt *q = NULL, *ins = NULL;
  at_status s;
  if ((s = exec1(db, "CREATE TEMP TABLE IF NOT EXISTS keep (k TEXT PRIMARY KEY)", e)) ||
      (s = exec1(db, "DELETE FROM temp.keep", e)) ||
      (s = prep(db,
                "SELECT b.meta FROM result r JOIN blob b"
                " ON b.compile_key = r.compile_key WHERE r.variant = 'aligned'",
                &q, e)) ||
      (s = prep(db, "INSERT OR IGNORE INTO temp.keep (k) VALUES (?1)", &ins, e)))
    goto done;
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    const char *meta = col_text(q, 0);
    at_json *j = NULL;
    at_err je = {0};
    if (at_json_parse(meta, strlen(meta), &j, &je) == AT_OK) {
      const at_json *twin = at_json_get(j, "generic_key");
      if (twin && twin->kind == AT_JSON_STR) {
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, twin->str, -1, SQLITE_TRANSIENT);
        if ((rc = sqlite3_step(ins)) != SQLITE_DONE) {
          at_json_free(j);
          s = sq_fail(db, rc, e, "noting generic cubins to keep");
          goto done;
        }
      }
    }
    at_json_free(j);
  }
  if (rc != SQLITE_DONE)
    s = sq_fail(db, rc, e, "reading aligned rows");
done:
  sqlite3_finalize(q);
  sqlite3_finalize(ins);
  return s;
}

at_status at_db_prune(at_db *db, const at_prune *p, at_prune_stats *stats, at_err *e) {
  at_prune_stats local;
  at_prune_stats *st = stats ? stats : &local;
  at_status s = begin_counted(db, db && p, "at_db_prune: a NULL argument", st, sizeof *st, e);
  if (s)
    return s;
  sqlite3_stmt *q = NULL;
  if (p->older_than_unix > 0 || p->by_status) {
    if ((s = prep(db,
                  "DELETE FROM result WHERE " KEY_LIKE " AND (?6 IS NULL OR time_unix < ?6)"
                  " AND (?7 IS NULL OR status = ?7)",
                  &q, e)))
      goto done;
    bind_key(q, &p->pattern);
    if (p->older_than_unix > 0)
      sqlite3_bind_int64(q, 6, p->older_than_unix);
    if (p->by_status)
      sqlite3_bind_text(q, 7, at_run_name(p->status), -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_DONE) {
      s = sq_fail(db, rc, e, "deleting rows");
      goto done;
    }
    st->rows = sqlite3_changes(db->h);
  }
  if (p->bad_blobs && (s = prune_bad_blobs(db, &st->blobs, e)))
    goto done;
  if (p->orphan_blobs) {
    if ((s = keep_generic_twins(db, e)) ||
        (s = exec1(db,
                   "DELETE FROM blob WHERE compile_key NOT IN"
                   " (SELECT compile_key FROM result WHERE compile_key <> '')"
                   " AND compile_key NOT IN (SELECT k FROM temp.keep)",
                   e)))
      goto done;
    st->blobs += sqlite3_changes(db->h);
  }
done:
  sqlite3_finalize(q);
  s = finish(db, s, e);
  if (!s && p->vacuum && db->depth == 0)
    s = exec_retry(db, "VACUUM", e);
  return s;
}

at_status at_db_check(at_db *db, bool quick, at_err *e) {
  if (!db)
    return at_fail(e, AT_ERR_ARG, "at_db_check: no database");
  sqlite3_stmt *st;
  at_status s = prep(db, quick ? "PRAGMA quick_check" : "PRAGMA integrity_check", &st, e);
  if (s)
    return s;
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW)
    s = sq_fail(db, rc, e, "checking integrity");
  else if (strcmp(col_text(st, 0), "ok") != 0)
    s = at_fail(e, AT_ERR_CORRUPT, "%s: %s: %.300s", db->path,
                quick ? "quick_check" : "integrity_check", col_text(st, 0));
  sqlite3_finalize(st);
  return s;
}
