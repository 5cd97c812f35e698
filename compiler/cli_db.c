/* compiler/cli_db.c — `tilec db list|show|best|export|import|merge|prune|check`: the tuning
 * database from the command line (contract: docs/cli.md, docs/tuning.md).
 *
 * A thin layer over autotune/db.h: list, show, best and export open the database read-only (they
 * never create or change a file); import, merge, prune and check open it read-write (check
 * never creates one). Exit codes:
 * 0 ok, 1 bad input (options, files to import, source databases to merge), 2 environment (the
 * database path is unusable: unsafe directory, not a tuning database, newer schema, locked).
 */
#include "compiler/cli_db.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "autotune/db.h"
#include "autotune/json.h"
#include "autotune/lookup.h"
#include "compiler/cli_util.h"
#include "kernels/builtin_sources.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_ENV = 2 };

typedef struct {
  const char *sub, *db, *out, *status, *shape, *dtype;
  at_key pattern;
  bool json, orphan_blobs, bad_blobs, no_vacuum;
  double older_than_days; /* < 0: not given */
  int nfiles;
  char **files; /* positional arguments: files to import, databases to merge */
} db_opts;

static int usage(void) {
  fputs("usage: tilec db list|show [--kernel K] [--device D] [--bucket B] [--json]\n"
        "       tilec db best KERNEL|FILE.tile --shape K=V,... [--dtype T] [--device D]\n"
        "                     [--toolchain T] [--json]\n"
        "       tilec db export -o DIR [--kernel K] [--device D] [--bucket B]\n"
        "       tilec db import FILE.json...\n"
        "       tilec db merge SRC.db...\n"
        "       tilec db prune [--older-than DAYS] [--status NAME] [--kernel K] [--device D]\n"
        "                      [--bucket B] [--orphan-blobs] [--bad-blobs] [--no-vacuum]\n"
        "       tilec db check\n"
        "  every command takes --db PATH (default: TILEC_DB, else the cache directory)\n",
        stderr);
  return EXIT_FAIL;
}

/* The exit code of a failed call on the target database. */
static int env_code(at_status s) { return s == AT_ERR_ARG ? EXIT_FAIL : EXIT_ENV; }

static int parse(int argc, char **argv, db_opts *o) {
  memset(o, 0, sizeof *o);
  o->older_than_days = -1;
  if (argc < 1)
    return usage();
  o->sub = argv[0];
  o->files = calloc((size_t)argc, sizeof *o->files);
  if (!o->files)
    return cli_die(EXIT_ENV, "out of memory");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (!strcmp(a, "--db"))
      slot = &o->db;
    else if (!strcmp(a, "-o"))
      slot = &o->out;
    else if (!strcmp(a, "--kernel"))
      slot = &o->pattern.kernel;
    else if (!strcmp(a, "--device"))
      slot = &o->pattern.device;
    else if (!strcmp(a, "--bucket"))
      slot = &o->pattern.bucket;
    else if (!strcmp(a, "--toolchain"))
      slot = &o->pattern.toolchain;
    else if (!strcmp(a, "--ir-hash"))
      slot = &o->pattern.ir_hash;
    else if (!strcmp(a, "--status"))
      slot = &o->status;
    else if (!strcmp(a, "--shape"))
      slot = &o->shape;
    else if (!strcmp(a, "--dtype"))
      slot = &o->dtype;
    else if (!strcmp(a, "--json"))
      o->json = true;
    else if (!strcmp(a, "--orphan-blobs"))
      o->orphan_blobs = true;
    else if (!strcmp(a, "--bad-blobs"))
      o->bad_blobs = true;
    else if (!strcmp(a, "--no-vacuum"))
      o->no_vacuum = true;
    else if (!strcmp(a, "--older-than")) {
      char *end;
      if (i + 1 >= argc)
        return cli_die(EXIT_FAIL, "--older-than needs a number of days");
      errno = 0;
      o->older_than_days = strtod(argv[++i], &end);
      if (*end || errno || end == argv[i] || !(o->older_than_days >= 0) || o->older_than_days > 1e6)
        return cli_die(EXIT_FAIL, "--older-than %s: expected a number of days (0..1e6)", argv[i]);
    } else if (a[0] == '-' && a[1])
      return cli_die(EXIT_FAIL, "unknown option '%s' for tilec db %s (tilec db --help)", a, o->sub);
    else
      o->files[o->nfiles++] = argv[i];
    if (slot) {
      if (i + 1 >= argc)
        return cli_die(EXIT_FAIL, "%s needs a value", a);
      *slot = argv[++i];
    }
  }
  return EXIT_OK;
}

/* Opens the target database (read-only when ro). On failure prints the reason and returns the
 * exit code in *rc; AT_MISS (read-only, no file) is reported as a note with *rc = 0. */
static at_db *open_target(const db_opts *o, bool ro, int *rc) {
  at_db *db;
  at_err e;
  at_status s = at_db_open(o->db, ro ? AT_DB_READONLY : 0, &db, &e);
  *rc = EXIT_OK;
  if (s == AT_MISS) {
    fprintf(stderr, "tilec: %s\n", e.msg);
    return NULL;
  }
  if (s) {
    *rc = cli_die(env_code(s), "%s", e.msg);
    return NULL;
  }
  return db;
}

/* Prints s with control characters escaped (keys may hold any byte but NUL). */
static void put_text(const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f)
      printf("\\x%02x", c);
    else
      putchar(c);
  }
}

static void put_time(long long t) {
  time_t tt = (time_t)t;
  struct tm tm;
  char buf[32];
  if (t > 0 && gmtime_r(&tt, &tm) && strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm))
    fputs(buf, stdout);
  else
    fputs("-", stdout);
}

static void put_ms(double v) {
  if (isnan(v))
    printf("%9s", "-");
  else
    printf("%9.4f", v);
}

static int flush_json(at_buf *b) {
  if (b->oom)
    return cli_die(EXIT_ENV, "out of memory");
  fputs(b->p ? b->p : "", stdout);
  return EXIT_OK;
}

/* The start of `db list` and `db show`: the keys matching o->pattern into *kl, and *b (JSON
 * output) opened with json_head when o->json. Returns EXIT_OK, and then the caller ends with
 * end_listing, or the exit code after printing the error (nothing to free). */
static int begin_listing(const db_opts *o, at_db *db, const char *json_head, at_key_list *kl,
                         at_buf *b) {
  at_err e;
  at_status s = at_db_keys(db, &o->pattern, kl, &e);
  if (s)
    return cli_die(env_code(s), "%s", e.msg);
  *b = (at_buf){0};
  if (o->json)
    at_buf_puts(b, json_head);
  return EXIT_OK;
}

/* The end of `db list` and `db show`: when o->json and rc is EXIT_OK, closes the JSON array
 * (empty unless `any`) and prints it. Frees kl and b; returns rc, or the exit code of a failed
 * print. */
static int end_listing(const db_opts *o, int rc, bool any, at_key_list *kl, at_buf *b) {
  if (o->json && rc == EXIT_OK) {
    at_buf_puts(b, any ? "\n]}\n" : "]}\n");
    rc = flush_json(b);
  }
  at_buf_free(b);
  at_key_list_free(kl);
  return rc;
}

static int cmd_list(const db_opts *o, at_db *db) {
  at_key_list kl;
  at_buf b;
  int rc = begin_listing(o, db, "{\"keys\": [", &kl, &b);
  if (rc)
    return rc;
  for (int i = 0; i < kl.n; i++) {
    const at_key_info *k = &kl.k[i];
    if (o->json) {
      at_buf_puts(&b, i ? ",\n  {\"kernel\": " : "\n  {\"kernel\": ");
      at_json_str(&b, k->key.kernel);
      const char *names[] = {"device", "toolchain", "ir_hash", "bucket"};
      const char *vals[] = {k->key.device, k->key.toolchain, k->key.ir_hash, k->key.bucket};
      for (int j = 0; j < 4; j++) {
        at_buf_printf(&b, ", \"%s\": ", names[j]);
        at_json_str(&b, vals[j]);
      }
      at_buf_printf(&b, ", \"rows\": %d, \"ok\": %d, \"winner\": ", k->rows, k->ok);
      if (k->winner_config)
        at_json_str(&b, k->winner_config);
      else
        at_buf_puts(&b, "null");
      at_buf_puts(&b, ", \"winner_ms\": ");
      at_json_num(&b, k->winner_ms);
      at_buf_printf(&b, ", \"newest_unix\": %lld}", k->newest_unix);
      continue;
    }
    put_text(k->key.kernel);
    printf("  ir=%.8s  ", k->key.ir_hash);
    put_text(k->key.device);
    fputs("  ", stdout);
    put_text(k->key.bucket);
    printf("  %d row%s (%d ok)  ", k->rows, k->rows == 1 ? "" : "s", k->ok);
    if (k->winner_config) {
      fputs("winner ", stdout);
      put_text(k->winner_config);
      printf(" %.4f ms", k->winner_ms);
    } else
      fputs("no winner", stdout);
    putchar('\n');
  }
  return end_listing(o, EXIT_OK, kl.n > 0, &kl, &b);
}

static void show_row(const at_result *r) {
  printf("  %-13s", at_run_name(r->status));
  put_ms(r->median_ms);
  put_ms(r->p20_ms);
  put_ms(r->p80_ms);
  put_ms(r->min_ms);
  printf(" %5d %4d %6d %6d %5d/%-5d ", r->reps, r->regs, r->spills, r->smem_bytes, r->sm_clock_mhz,
         r->mem_clock_mhz);
  put_time(r->time_unix);
  fputs("  ", stdout);
  put_text(r->config);
  if (*r->variant)
    printf("  [%s]", r->variant); /* the code variant measured; generic when absent */
  if (*r->detail) {
    fputs("  (", stdout);
    put_text(r->detail);
    fputs(")", stdout);
  }
  putchar('\n');
}

static int cmd_show(const db_opts *o, at_db *db) {
  at_key_list kl;
  at_buf b;
  int rc = begin_listing(o, db, "{\"rows\": [", &kl, &b);
  if (rc)
    return rc;
  int nrows = 0;
  for (int i = 0; i < kl.n && !rc; i++) {
    at_rows rows;
    at_err e;
    at_status s = at_db_list(db, &kl.k[i].key, &rows, &e);
    if (s) {
      rc = cli_die(env_code(s), "%s", e.msg);
      break;
    }
    if (!o->json) {
      const at_key *k = &kl.k[i].key;
      const char *names[] = {"kernel", "device", "toolchain", "ir_hash", "bucket"};
      const char *vals[] = {k->kernel, k->device, k->toolchain, k->ir_hash, k->bucket};
      for (int j = 0; j < 5; j++) {
        printf("%s%s ", j ? "  " : i ? "\n" : "", names[j]);
        put_text(vals[j]);
        putchar('\n');
      }
      printf("  %-13s%9s%9s%9s%9s %5s %4s %6s %6s %11s %-16s  %s\n", "status", "median", "p20",
             "p80", "min", "reps", "regs", "spills", "smem", "clocks", "time (UTC)", "config");
    }
    for (int j = 0; j < rows.n; j++) {
      if (o->json) {
        at_buf_puts(&b, nrows++ ? ",\n  " : "\n  ");
        at_db_row_json(&b, &rows.r[j], true);
      } else
        show_row(&rows.r[j]);
    }
    at_rows_free(&rows);
  }
  return end_listing(o, rc, nrows > 0, &kl, &b);
}

/* `tilec db best KERNEL --shape ...`: the winners of the problem's bucket (one per device and
 * toolchain), else of the nearest tuned bucket, as the public API's lookup finds them. */
static int cmd_best(const db_opts *o, at_db *db) {
  const char *name = o->files[0], *text = NULL;
  char *owned = NULL, err[600];
  size_t len = 0;
  for (const struct tilec_builtin_source *b = tilec_builtin_sources; b->name; b++)
    if (!strcmp(b->name, name))
      text = b->text;
  if (!text || access(name, F_OK) == 0) {
    if (!(owned = cli_read_file(name, &len, err, sizeof err)))
      return cli_die(EXIT_FAIL, "%s", err);
    text = owned;
  }
  ir_kernel *k = NULL;
  ir_diag d;
  kn_shape shape;
  int rc = EXIT_OK;
  if (ir_parse(text, strlen(text), name, &k, &d) || ir_verify(k, &d)) {
    fprintf(stderr, "%s\n", d.msg);
    free(owned);
    ir_kernel_free(k);
    return EXIT_FAIL;
  }
  free(owned);
  if (kn_shape_parse(o->shape, &shape, err, sizeof err)) {
    ir_kernel_free(k);
    return cli_die(EXIT_FAIL, "--shape: %s", err);
  }
  at_lookup l;
  at_err e;
  at_status s =
      at_lookup_best(db, k, &shape, o->dtype, o->pattern.device, o->pattern.toolchain, &l, &e);
  if (s == AT_MISS)
    rc = cli_die(EXIT_FAIL, "%s (bucket %s)", e.msg, l.bucket ? l.bucket : "?");
  else if (s)
    rc = cli_die(env_code(s), "%s", e.msg);
  else if (o->json) {
    at_buf b = {0};
    at_buf_puts(&b, "{\"bucket\": ");
    at_json_str(&b, l.bucket);
    at_buf_puts(&b, l.nearest ? ", \"nearest\": true, \"winners\": ["
                              : ", \"nearest\": false, \"winners\": [");
    for (int i = 0; i < l.rows.n; i++) {
      at_buf_puts(&b, i ? ",\n  " : "\n  ");
      at_db_row_json(&b, &l.rows.r[i], true);
    }
    at_buf_puts(&b, "]}\n");
    rc = flush_json(&b);
    at_buf_free(&b);
  } else {
    printf("problem bucket ");
    put_text(l.bucket);
    printf("\n");
    if (l.nearest) {
      printf("not tuned; the nearest tuned bucket is ");
      put_text(l.rows.r[0].key.bucket);
      printf("\n");
    }
    for (int i = 0; i < l.rows.n; i++) {
      const at_result *r = &l.rows.r[i];
      printf("%s  ", i ? "      " : "best  ");
      put_text(r->config);
      printf("  %.4f ms (%s code)  device ", r->median_ms, *r->variant ? r->variant : "generic");
      put_text(r->key.device);
      printf("  toolchain ");
      put_text(r->key.toolchain);
      putchar('\n');
    }
  }
  at_lookup_free(&l);
  ir_kernel_free(k);
  return rc;
}

static int cmd_export(const db_opts *o, at_db *db) {
  if (mkdir(o->out, 0755) != 0 && errno != EEXIST)
    return cli_die(EXIT_FAIL, "cannot create %s: %s", o->out, strerror(errno));
  int files;
  at_err e;
  at_status s = at_db_export_dir(db, &o->pattern, o->out, &files, &e);
  if (s)
    return cli_die(s == AT_ERR_IO ? EXIT_FAIL : env_code(s), "%s", e.msg);
  printf("wrote %d file%s to %s\n", files, files == 1 ? "" : "s", o->out);
  return EXIT_OK;
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  at_buf b = {0};
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    at_buf_put(&b, chunk, n);
  bool bad = ferror(f) || b.oom;
  fclose(f);
  if (bad || !b.p) {
    at_buf_free(&b);
    if (!bad) /* an empty file */
      return calloc(1, 1);
    return NULL;
  }
  *len = b.n;
  return b.p;
}

static int cmd_import(const db_opts *o, at_db *db) {
  int rc = EXIT_OK;
  for (int i = 0; i < o->nfiles; i++) {
    size_t len = 0;
    char *text = read_all(o->files[i], &len);
    if (!text) {
      rc = cli_die(EXIT_FAIL, "cannot read %s: %s", o->files[i], strerror(errno));
      continue;
    }
    at_merge_stats st;
    at_err e;
    at_status s = at_db_import_json(db, o->files[i], text, len, &st, &e);
    free(text);
    if (s) {
      int code = cli_die(env_code(s), "%s", e.msg);
      rc = rc > code ? rc : code;
      continue;
    }
    printf("%s: %d rows, %d taken\n", o->files[i], st.rows_seen, st.rows_taken);
  }
  return rc;
}

static int cmd_merge(const db_opts *o, at_db *db) {
  int rc = EXIT_OK;
  for (int i = 0; i < o->nfiles; i++) {
    at_db *src;
    at_err e;
    at_status s = at_db_open(o->files[i], AT_DB_READONLY, &src, &e);
    if (s) {
      rc = rc ? rc : cli_die(EXIT_FAIL, "%s", e.msg);
      continue;
    }
    at_merge_stats st;
    s = at_db_merge(db, src, &st, &e);
    at_db_close(src);
    if (s)
      return cli_die(env_code(s), "%s", e.msg);
    printf("%s: %d rows, %d taken; %d blobs, %d taken, %d damaged\n", o->files[i], st.rows_seen,
           st.rows_taken, st.blobs_seen, st.blobs_taken, st.blobs_bad);
  }
  return rc;
}

static int cmd_prune(const db_opts *o, at_db *db) {
  at_prune p = {.pattern = o->pattern,
                .orphan_blobs = o->orphan_blobs,
                .bad_blobs = o->bad_blobs,
                .vacuum = !o->no_vacuum};
  if (o->older_than_days >= 0)
    p.older_than_unix = (long long)time(NULL) - (long long)(o->older_than_days * 86400.0);
  if (o->older_than_days == 0)
    p.older_than_unix++; /* "older than 0 days": every row up to now */
  if (o->status) {
    p.by_status = true;
    if (!at_run_parse(o->status, &p.status))
      return cli_die(EXIT_FAIL,
                     "--status %s: expected ok, wrong, fault, timeout, resources, compile_error, "
                     "pruned or compiled",
                     o->status);
  }
  at_prune_stats st;
  at_err e;
  at_status s = at_db_prune(db, &p, &st, &e);
  if (s)
    return cli_die(env_code(s), "%s", e.msg);
  printf("removed %d rows, %d blobs%s\n", st.rows, st.blobs, p.vacuum ? "; vacuumed" : "");
  return EXIT_OK;
}

/* `check` opens read-write (so that SQLite recovers a file a dead writer left behind, and old
 * schemas are migrated) but must not create a database: exit 2 when there is none. */
static int check_exists(const db_opts *o) {
  char *path = NULL;
  at_err e;
  if (!o->db && at_db_default_path(&path, false, &e))
    return cli_die(env_code(e.status), "%s", e.msg);
  struct stat sb;
  const char *p = o->db ? o->db : path;
  int rc = stat(p, &sb) == 0 ? EXIT_OK : cli_die(EXIT_ENV, "no tuning database at %s", p);
  free(path);
  return rc;
}

int cli_db_main(int argc, char **argv) {
  db_opts o;
  int rc = parse(argc, argv, &o);
  if (rc) {
    free(o.files);
    return rc;
  }
  const char *sub = o.sub;
  bool ro = !strcmp(sub, "list") || !strcmp(sub, "show") || !strcmp(sub, "export") ||
            !strcmp(sub, "best");
  bool rw = !strcmp(sub, "import") || !strcmp(sub, "merge") || !strcmp(sub, "prune") ||
            !strcmp(sub, "check");
  if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
    free(o.files);
    usage();
    return EXIT_OK;
  }
  if (!ro && !rw)
    rc = cli_die(EXIT_FAIL,
                 "unknown db command '%s' (list, show, best, export, import, merge, prune, "
                 "check)",
                 sub);
  else if (!strcmp(sub, "best") && (o.nfiles != 1 || !o.shape))
    rc = cli_die(EXIT_FAIL, "tilec db best needs one kernel (a built-in name or a .tile file) and "
                            "--shape");
  else if (o.nfiles && !strcmp(sub, "best"))
    ;
  else if (o.nfiles && (ro || !strcmp(sub, "prune") || !strcmp(sub, "check")))
    rc = cli_die(EXIT_FAIL, "unexpected argument '%s' for tilec db %s", o.files[0], sub);
  else if (!o.nfiles && (!strcmp(sub, "import") || !strcmp(sub, "merge")))
    rc = cli_die(EXIT_FAIL, "tilec db %s needs %s", sub,
                 !strcmp(sub, "import") ? "export files (FILE.json...)" : "databases (SRC.db...)");
  else if (!strcmp(sub, "export") && !o.out)
    rc = cli_die(EXIT_FAIL, "tilec db export needs -o DIR");
  if (rc) {
    free(o.files);
    return rc;
  }
  if (!rc && !strcmp(sub, "check"))
    rc = check_exists(&o);
  if (rc) {
    free(o.files);
    return rc;
  }
  at_db *db = open_target(&o, ro, &rc);
  if (!db) {
    free(o.files);
    if (rc == EXIT_OK && o.json && (!strcmp(sub, "list") || !strcmp(sub, "show")))
      printf("{\"%s\": []}\n", !strcmp(sub, "list") ? "keys" : "rows");
    return rc;
  }
  if (!strcmp(sub, "list"))
    rc = cmd_list(&o, db);
  else if (!strcmp(sub, "show"))
    rc = cmd_show(&o, db);
  else if (!strcmp(sub, "best"))
    rc = cmd_best(&o, db);
  else if (!strcmp(sub, "export"))
    rc = cmd_export(&o, db);
  else if (!strcmp(sub, "import"))
    rc = cmd_import(&o, db);
  else if (!strcmp(sub, "merge"))
    rc = cmd_merge(&o, db);
  else if (!strcmp(sub, "prune"))
    rc = cmd_prune(&o, db);
  else {
    at_err e;
    at_status s = at_db_check(db, false, &e);
    if (s)
      rc = cli_die(env_code(s), "%s", e.msg);
    else
      printf("%s: ok\n", at_db_path(db));
  }
  at_db_close(db);
  free(o.files);
  return rc;
}
