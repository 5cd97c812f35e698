/* tests/fuzz/db_import.c — libFuzzer target over `tilec db import`: any text given as an export
 * file (autotune/db_export.c and the JSON reader under it) must give a status, never a crash,
 * hang or sanitizer report. A file that imports must leave a database that passes SQLite's
 * integrity check; importing the same file twice must take no row the second time (at_db_offer's
 * rule: a tie keeps the stored row); and each (kernel, device) must export to text that imports
 * into an empty database and exports again to the same bytes (the importer reads exactly what
 * the exporter writes).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autotune/db.h"
#include "autotune/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

/* Removes the directory and what the last inputs left in it. */
static void cleanup(void) {
  static const char *const names[] = {"f.db",     "g.db",     "f.db-wal",
                                      "g.db-wal", "f.db-shm", "g.db-shm"};
  char path[96];
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
  }
  rmdir(dir);
}

/* A fresh database (file NAME in the target's directory) for each input: nothing an earlier
 * input wrote changes the outcome. */
static at_db *fresh(const char *name) {
  static bool made;
  char path[96];
  if (!made) { /* tmpfs where there is one: its fsync costs nothing */
    snprintf(dir, sizeof dir, "/dev/shm/tilec_fuzz_import.XXXXXX");
    if (!mkdtemp(dir)) {
      snprintf(dir, sizeof dir, "/tmp/tilec_fuzz_import.XXXXXX");
      if (!mkdtemp(dir))
        __builtin_trap();
    }
    made = true;
    atexit(cleanup);
  }
  snprintf(path, sizeof path, "%s/%s", dir, name);
  unlink(path);
  at_db *db = NULL;
  if (at_db_open(path, 0, &db, NULL) != AT_OK)
    __builtin_trap();
  return db;
}

/* Exports pat from db, imports that into an empty database and exports again: the same bytes. */
static void round_trip(at_db *db, const at_key *pat) {
  at_buf a = {0}, b = {0};
  at_err e;
  if (at_db_export_json(db, pat, &a, &e) != AT_OK)
    __builtin_trap();
  at_db *db2 = fresh("g.db");
  at_merge_stats st = {0};
  if (at_db_import_json(db2, "export.json", a.p, a.n, &st, &e) != AT_OK ||
      at_db_export_json(db2, pat, &b, &e) != AT_OK || a.n != b.n || memcmp(a.p, b.p, a.n))
    __builtin_trap();
  at_db_close(db2);
  at_buf_free(&a);
  at_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  at_db *db = fresh("f.db");
  at_merge_stats st = {0}, st2 = {0};
  at_err e;
  if (at_db_import_json(db, "fuzz.json", (const char *)data, size, &st, &e) == AT_OK) {
    if (at_db_check(db, true, &e) != AT_OK)
      __builtin_trap(); /* an import never damages the file */
    if (at_db_import_json(db, "fuzz.json", (const char *)data, size, &st2, &e) != AT_OK ||
        st2.rows_taken != 0)
      __builtin_trap(); /* the same file again takes nothing */
    at_key_list keys = {0};
    if (at_db_keys(db, &(at_key){0}, &keys, &e) != AT_OK)
      __builtin_trap();
    for (int i = 0; i < keys.n; i++)
      round_trip(db, &(at_key){.device = keys.k[i].key.device, .kernel = keys.k[i].key.kernel});
    at_key_list_free(&keys);
  }
  at_db_close(db);
  return 0;
}
