/* autotune/db.h — the tuning database: one SQLite file of measured configs and compiled cubins.
 *
 * A row holds the outcome of one config for one key (device, toolchain, kernel, IR hash,
 * problem bucket): status, timing statistics, clocks, resources, when. The winner of a key is a
 * query (the ok row with the least median), so adding configs to a search space never
 * invalidates a row. Compiled images are stored with their SHA-256 and size and checked on every
 * read; a mismatch is a miss. The file is shared safely by many processes (WAL, busy timeout,
 * BEGIN IMMEDIATE writes) and survives `kill -9` at any moment (every change is one
 * transaction). The schema version is `PRAGMA user_version`; older files are migrated on open,
 * newer ones refused. docs/tuning.md describes the file, the CLI and sharded sweeps.
 *
 * Strings passed in are the caller's and are copied; strings returned live in the at_rows (or
 * other result) they came with. Every fallible call returns an at_status and fills e.
 */
#ifndef TILEC_AUTOTUNE_DB_H
#define TILEC_AUTOTUNE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "autotune/at.h"
#include "autotune/json.h"
#include "autotune/sha256.h"

typedef struct at_db at_db;

/* The schema this build writes; files with a higher user_version are refused (AT_ERR_SCHEMA). */
enum { AT_DB_SCHEMA_VERSION = 4 };

enum {
  /* Never writes: the file is opened with SQLITE_OPEN_READONLY; nothing is created, migrated
   * or repaired (a damaged blob is a miss but stays). A missing or empty file is AT_MISS, a
   * file that needs a migration AT_ERR_SCHEMA. The main file is never modified. Like every
   * SQLite reader of a WAL file, the handle uses the -wal and -shm files beside it: where the
   * directory is writable SQLite creates them (empty) when absent and leaves them; where it is
   * not and they are absent, the file is still read (all committed, checkpointed changes).
   * A file whose writer died mid-transaction leaving a rollback journal (only while a new file
   * is switched to WAL) cannot be opened read-only: AT_ERR_PERM, until one read-write open
   * lets SQLite roll it back. */
  AT_DB_READONLY = 1,
};

/* TILEC_DB, else $XDG_CACHE_HOME/tilec/tilec.db (an absolute XDG_CACHE_HOME only, as the XDG
 * spec says), else $HOME/.cache/tilec/tilec.db. When create_dir, creates the database's
 * directory 0700 (and missing parents 0700) when missing. The directory holding the file, when
 * it exists, is then checked with at_db_check_dir (refused: AT_ERR_PERM with the path and the
 * reason). A path given to at_db_open or `--db` is the caller's choice and is not checked.
 * *path is malloc'd; the caller frees it. */
at_status at_db_default_path(char **path, bool create_dir, at_err *e);

/* Refuses a directory to keep the database in: AT_ERR_PERM when dir is a symbolic link, not a
 * directory, world-writable (even with the sticky bit, like /tmp), or owned by a uid other than
 * owner (pass geteuid(); tests pass another uid to simulate a foreign owner). AT_ERR_IO when it
 * cannot be examined (missing). */
at_status at_db_check_dir(const char *dir, uid_t owner, at_err *e);

/* Opens (read-write: creating when missing, file mode 0600) the database at path (NULL: the
 * default path, directory created and checked). Sets WAL mode, synchronous=NORMAL, a 10 s busy
 * timeout, then creates or migrates the schema in one BEGIN IMMEDIATE transaction.
 * Errors: AT_ERR_CORRUPT (not a SQLite file, or a SQLite file of something else), AT_ERR_SCHEMA
 * (newer user_version), AT_ERR_BUSY, AT_ERR_PERM/AT_ERR_IO (cannot open; see AT_DB_READONLY),
 * AT_MISS (read-only and missing). *out is closed with at_db_close. A handle is used by one thread
 * at a time and never across fork(): open another one in the child. */
at_status at_db_open(const char *path, unsigned flags, at_db **out, at_err *e);
void at_db_close(at_db *db); /* NULL is a no-op */

/* The file the handle uses (owned by db). */
const char *at_db_path(const at_db *db);
/* Changes the busy timeout (milliseconds, >= 0): how long a call waits for another writer
 * before it returns AT_ERR_BUSY. */
void at_db_set_busy_timeout(at_db *db, int ms);

typedef struct at_key {  /* caller-owned strings, any bytes but NUL, any length */
  const char *device;    /* runtime device key, e.g. "NVIDIA H200|sm_90|132sm|141GiB";
                            compile-only sweeps use "compile-only|sm_90a" */
  const char *toolchain; /* e.g. "tilec 0.1|llvm 19.1.7|nvjitlink 13.0|driver 13.0" */
  const char *kernel;    /* kernel name */
  const char *ir_hash;   /* hex SHA-256 of the kernel's canonical printed text */
  const char *bucket;    /* canonical problem bucket, e.g. "K=4096,M=pow2:4096,N=4096,TA=bf16" */
} at_key;

typedef struct at_result { /* one row */
  at_key key;              /* reads fill it; at_db_put ignores it (key passed separately) */
  const char *config;      /* canonical config text "BM=128,BN=128,BK=32,..." */
  at_run status;
  const char *problem; /* the exact problem measured ("M=4000,N=4096,K=4096,dtype=bf16");
                          NULL on put: "" */
  double median_ms, p20_ms, p80_ms, min_ms; /* NaN when not timed; an ok row needs a finite
                                               median >= 0 */
  int reps;
  int regs, spills, smem_bytes;    /* -1 unknown */
  int sm_clock_mhz, mem_clock_mhz; /* -1 unknown */
  const char *detail;              /* why, for rows that are not ok ("" when none; NULL on put) */
  long long time_unix;             /* 0 on put: now */
  const char *compile_key;         /* the blob of this config's cubin, "" (or NULL on put) when
                                      none; see at_compile_key_variant */
  const char *variant; /* the code the row measured and compile_key names: "" (or NULL on put)
                          the generic code, "aligned" the aligned variant (CG_ALIGNED); the
                          config is the same for both, so a winner serves either */
} at_result;

/* A result set. r[i]'s strings live in storage; at_rows_free releases everything. */
typedef struct at_rows {
  int n;
  at_result *r;
  void *storage;
} at_rows;
void at_rows_free(at_rows *rows); /* leaves rows empty; NULL is a no-op */

/* A result with every number unknown (NaN times, -1 counts), status AT_RUN_OK, "" strings;
 * a starting point for callers that fill in what they measured. */
at_result at_result_empty(void);

/* Upserts the row (k, r->config): replaces every column of an existing row. AT_ERR_ARG for a
 * NULL key field or config, an unknown status, or an ok row without a finite median. */
at_status at_db_put(at_db *db, const at_key *k, const at_result *r, at_err *e);
/* at_db_put of r[0..n) in one transaction: all or nothing. */
at_status at_db_put_many(at_db *db, const at_key *k, const at_result *r, int n, at_err *e);
/* Keeps the better of r and the stored row of (k, r->config): an ok row beats any other, then
 * the newer time_unix wins (a tie keeps the stored row). *taken (may be NULL) says whether r
 * was written. This is the rule of `tilec db merge` and `import`. */
at_status at_db_offer(at_db *db, const at_key *k, const at_result *r, bool *taken, at_err *e);

/* Deletes every row of key k (a sweep started again with --restart); cubins stay until
 * `prune` removes orphans. *removed (may be NULL): rows deleted. AT_ERR_ARG for an incomplete
 * key, AT_ERR_PERM on a read-only handle. */
at_status at_db_forget(at_db *db, const at_key *k, int *removed, at_err *e);

/* The row (k, config) in out (n = 1); AT_MISS when there is none. */
at_status at_db_get(at_db *db, const at_key *k, const char *config, at_rows *out, at_err *e);
/* All rows of one key: status ok first by median then config; others by config. n may be 0. */
at_status at_db_list(at_db *db, const at_key *k, at_rows *out, at_err *e);
/* The winner: the ok row with the least median (ties: config text). AT_MISS when none. */
at_status at_db_winner(at_db *db, const at_key *k, at_rows *out, at_err *e);
/* Winners of every key that matches the pattern (NULL fields match anything), one row per key,
 * ordered by kernel, device, toolchain, ir_hash, bucket (byte order): warm start (same
 * device/toolchain/kernel/ir_hash, other buckets), export. n may be 0. */
at_status at_db_winners(at_db *db, const at_key *pattern, at_rows *out, at_err *e);
/* Every row of every key matching the pattern (NULL fields match anything), ordered by kernel,
 * device, toolchain, ir_hash, bucket, config (byte order): show, export, merge. n may be 0. */
at_status at_db_rows(at_db *db, const at_key *pattern, at_rows *out, at_err *e);

/* One key of the database with its row counts and winner (`tilec db list`). */
typedef struct at_key_info {
  at_key key;
  int rows, ok;              /* rows of the key, rows with status ok */
  const char *winner_config; /* NULL when no row is ok */
  double winner_ms;          /* NaN when no row is ok */
  long long newest_unix;     /* the latest time_unix of the key's rows */
} at_key_info;
typedef struct at_key_list {
  int n;
  at_key_info *k;
  void *storage;
} at_key_list;
void at_key_list_free(at_key_list *l); /* NULL is a no-op */
/* The keys matching the pattern, in at_db_winners' order. n may be 0. */
at_status at_db_keys(at_db *db, const at_key *pattern, at_key_list *out, at_err *e);

/* Groups writes: calls between at_db_begin and at_db_commit form one transaction (BEGIN
 * IMMEDIATE, waiting up to the busy timeout), so a row and the blob it points at are stored
 * together or not at all. Nested begin/commit pairs join the outer transaction. at_db_rollback
 * undoes everything since the outermost begin. AT_ERR_PERM on a read-only handle. */
at_status at_db_begin(at_db *db, at_err *e);
at_status at_db_commit(at_db *db, at_err *e);
void at_db_rollback(at_db *db);

/* The compile key of a cubin: hex SHA-256 over a versioned, NUL-separated encoding of the IR
 * hash, the code's config text, the target arch ("sm_90a") and the toolchain key (tilec, LLVM,
 * nvJitLink and driver versions). config must be at_code_config's text (every type variable,
 * const parameter and tunable: the whole binding, not a row's tunables). Version 2 of the
 * encoding; version 1 covered the tunables alone, so one key could name the code of two
 * problems (attention D=64 and D=128), and schema 4 dropped every row's v1 key. AT_ERR_ARG for a
 * NULL argument. */
at_status at_compile_key(const char *ir_hash, const char *config, const char *arch,
                         const char *toolchain, char out[65], at_err *e);

/* The compile key of a variant of the code ("aligned": CG_ALIGNED); NULL or "" is the generic
 * code, whose key is at_compile_key's. */
at_status at_compile_key_variant(const char *ir_hash, const char *config, const char *arch,
                                 const char *toolchain, const char *variant, char out[65],
                                 at_err *e);

/* Compiled images: stored with SHA-256 and size (and meta, and the time) in one row, so the
 * data and its metadata are written in the same transaction; replaces an existing entry. A
 * read verifies size and hash and returns AT_MISS (the message says why) on any mismatch — the
 * bad entry is then deleted, and rows pointing at it forget it, unless the db is read-only.
 * n must be 1 byte .. 512 MiB. */
at_status at_db_put_blob(at_db *db, const char *compile_key, const void *data, size_t n,
                         const char *meta /* e.g. JSON of regs/spills/smem, may be NULL */,
                         at_err *e);
/* *data (malloc'd, n bytes) and *meta (malloc'd, NULL when none stored; meta may be NULL when
 * not wanted) are the caller's to free. */
at_status at_db_get_blob(at_db *db, const char *compile_key, void **data, size_t *n, char **meta,
                         at_err *e);

/* Counts of at_db_merge. */
typedef struct at_merge_stats {
  int rows_seen, rows_taken;              /* rows read from src, rows written into dst */
  int blobs_seen, blobs_taken, blobs_bad; /* bad: failed their check in src, skipped */
} at_merge_stats;
/* Merges src into dst in one transaction: every row through at_db_offer's rule, every blob
 * whose compile key dst lacks (or holds damaged) after checking it. src is only read. */
at_status at_db_merge(at_db *dst, at_db *src, at_merge_stats *st, at_err *e);

/* What at_db_prune removes. A row goes when it matches the key pattern and every given
 * criterion (older_than_unix and/or status); with none given no row is removed. */
typedef struct at_prune {
  at_key pattern;            /* NULL fields match anything */
  long long older_than_unix; /* > 0: rows with time_unix below it */
  bool by_status;
  at_run status;     /* with by_status: rows of this status */
  bool orphan_blobs; /* blobs that no row points at, except the generic code of an aligned
                        row (its key from the row and the arch of its blob's meta) */
  bool bad_blobs;    /* blobs whose size or SHA-256 does not match (checks each one) */
  bool vacuum;       /* VACUUM afterwards (needs the file to itself for a moment) */
} at_prune;
typedef struct at_prune_stats {
  int rows, blobs; /* removed */
} at_prune_stats;
at_status at_db_prune(at_db *db, const at_prune *p, at_prune_stats *st, at_err *e);

/* PRAGMA integrity_check (quick: PRAGMA quick_check): AT_OK when SQLite says "ok", else
 * AT_ERR_CORRUPT with its first message. */
at_status at_db_check(at_db *db, bool quick, at_err *e);

/* ---- export and import (autotune/db_export.c) ---------------------------------------------- */

/* Export files: one JSON file per (kernel, device), rows in at_db_rows' order, one row per
 * line, numbers in their shortest exact form, so that exports diff well and re-exporting an
 * import gives the same bytes. docs/tuning.md shows the format. Blobs are not exported (they
 * are a compile cache; `tilec db merge` carries them). Version 2: rows name cubins by compile
 * keys of version 2 (at_compile_key); an import of a version 1 file drops the rows' keys. */
enum { AT_DB_EXPORT_VERSION = 2 };

/* The export text of the rows of (pattern->kernel, pattern->device), both required, appended
 * to out (see json.h for at_buf); the other pattern fields filter when not NULL. AT_MISS when
 * no row matches. */
at_status at_db_export_json(at_db *db, const at_key *pattern, at_buf *out, at_err *e);
/* Appends r as one JSON object (the row format of export files; with_key: also "kernel" and
 * "device" first), without a trailing newline. */
void at_db_row_json(at_buf *b, const at_result *r, bool with_key);
/* The file name of the export of (kernel, device): the kernel name with every byte outside
 * [A-Za-z0-9_.-] replaced by '_' (at most 64 of them), a dot, the first 16 hex digits of the
 * SHA-256 of kernel NUL device, ".json". out holds at least AT_DB_EXPORT_NAME bytes. */
enum { AT_DB_EXPORT_NAME = 64 + 1 + 16 + 5 + 1 };
void at_db_export_name(const char *kernel, const char *device, char *out);
/* Writes the export of every (kernel, device) matching pattern (NULL: all) into the existing
 * directory dir, each file through a temporary name and rename. *files (may be NULL): how
 * many were written. */
at_status at_db_export_dir(at_db *db, const at_key *pattern, const char *dir, int *files,
                           at_err *e);
/* Imports one export text (name: for messages) in one transaction, each row through
 * at_db_offer's rule. st counts rows_seen and rows_taken (may be NULL). AT_ERR_ARG with
 * "NAME: ..." for text that is not a valid export, and then nothing is written. */
at_status at_db_import_json(at_db *db, const char *name, const char *text, size_t len,
                            at_merge_stats *st, at_err *e);

#endif
