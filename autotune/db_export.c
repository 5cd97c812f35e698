/* autotune/db_export.c — the tuning database as JSON files (`tilec db export|import`, see
 * db.h). Export reads rows through at_db_rows, so its order is the database's byte order of
 * the keys; import checks a whole file before it writes any row and then offers each row
 * (at_db_offer: ok beats other statuses, then the newer row wins), so importing an old export
 * never replaces newer measurements. */
#include "autotune/db.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char format_name[] = "tilec-tuning-export";

static void field_str(at_buf *b, const char *name, const char *v) {
  at_buf_printf(b, ", \"%s\": ", name);
  at_json_str(b, v);
}

static void field_num(at_buf *b, const char *name, double v) {
  at_buf_printf(b, ", \"%s\": ", name);
  at_json_num(b, v);
}

void at_db_row_json(at_buf *b, const at_result *r, bool with_key) {
  at_buf_puts(b, "{");
  if (with_key) {
    at_buf_puts(b, "\"kernel\": ");
    at_json_str(b, r->key.kernel);
    field_str(b, "device", r->key.device);
    at_buf_puts(b, ", ");
  }
  at_buf_puts(b, "\"toolchain\": ");
  at_json_str(b, r->key.toolchain);
  field_str(b, "ir_hash", r->key.ir_hash);
  field_str(b, "bucket", r->key.bucket);
  field_str(b, "config", r->config);
  field_str(b, "status", at_run_name(r->status));
  field_num(b, "median_ms", r->median_ms);
  field_num(b, "p20_ms", r->p20_ms);
  field_num(b, "p80_ms", r->p80_ms);
  field_num(b, "min_ms", r->min_ms);
  at_buf_printf(b,
                ", \"reps\": %d, \"regs\": %d, \"spills\": %d, \"smem_bytes\": %d,"
                " \"sm_clock_mhz\": %d, \"mem_clock_mhz\": %d",
                r->reps, r->regs, r->spills, r->smem_bytes, r->sm_clock_mhz, r->mem_clock_mhz);
  field_str(b, "problem", r->problem);
  field_str(b, "detail", r->detail);
  field_str(b, "compile_key", r->compile_key);
  if (r->variant && r->variant[0]) /* absent: the generic code (files of older versions) */
    field_str(b, "variant", r->variant);
  at_buf_printf(b, ", \"time_unix\": %lld}", r->time_unix);
}

at_status at_db_export_json(at_db *db, const at_key *pattern, at_buf *out, at_err *e) {
  if (!db || !pattern || !pattern->kernel || !pattern->device || !out)
    return at_fail(e, AT_ERR_ARG, "at_db_export_json: needs a kernel and a device");
  at_rows rows;
  at_status s = at_db_rows(db, pattern, &rows, e);
  if (s)
    return s;
  if (rows.n == 0) {
    at_rows_free(&rows);
    return at_fail(e, AT_MISS, "no rows for kernel '%.200s' on device '%.200s'", pattern->kernel,
                   pattern->device);
  }
  at_buf_printf(out, "{\"format\": \"%s\", \"version\": %d,\n \"kernel\": ", format_name,
                AT_DB_EXPORT_VERSION);
  at_json_str(out, pattern->kernel);
  at_buf_puts(out, ",\n \"device\": ");
  at_json_str(out, pattern->device);
  at_buf_puts(out, ",\n \"rows\": [\n");
  for (int i = 0; i < rows.n; i++) {
    at_buf_puts(out, "  ");
    at_db_row_json(out, &rows.r[i], false);
    at_buf_puts(out, i + 1 < rows.n ? ",\n" : "\n");
  }
  at_buf_puts(out, " ]}\n");
  at_rows_free(&rows);
  if (out->oom)
    return at_fail(e, AT_ERR_OOM, "out of memory exporting kernel '%.200s'", pattern->kernel);
  return AT_OK;
}

void at_db_export_name(const char *kernel, const char *device, char *out) {
  size_t n = 0;
  for (const char *p = kernel; *p && n < 64; p++) {
    char c = *p;
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-' || (c == '.' && n > 0);
    out[n++] = keep ? c : '_';
  }
  at_sha256_ctx c;
  at_sha256_init(&c);
  at_sha256_update(&c, kernel, strlen(kernel) + 1);
  at_sha256_update(&c, device, strlen(device));
  unsigned char d[32];
  at_sha256_final(&c, d);
  char hex[65];
  at_hex32(d, hex);
  snprintf(out + n, AT_DB_EXPORT_NAME - n, ".%.16s.json", hex);
}

/* Writes text to dir/name through dir/.name.tmp and rename. */
static at_status write_file(const char *dir, const char *name, const at_buf *text, at_err *e) {
  at_buf path = {0}, tmp = {0};
  at_buf_printf(&path, "%s/%s", dir, name);
  at_buf_printf(&tmp, "%s/.%s.tmp", dir, name);
  at_status s = AT_OK;
  if (path.oom || tmp.oom) {
    s = at_fail(e, AT_ERR_OOM, "out of memory");
    goto done;
  }
  FILE *f = fopen(tmp.p, "wb");
  bool ok = f && fwrite(text->p, 1, text->n, f) == text->n;
  if (f && fclose(f) != 0)
    ok = false;
  if (!ok || rename(tmp.p, path.p) != 0) {
    s = at_fail(e, AT_ERR_IO, "cannot write %s: %s", path.p, strerror(errno));
    unlink(tmp.p);
  }
done:
  at_buf_free(&path);
  at_buf_free(&tmp);
  return s;
}

at_status at_db_export_dir(at_db *db, const at_key *pattern, const char *dir, int *files,
                           at_err *e) {
  if (files)
    *files = 0;
  if (!db || !dir)
    return at_fail(e, AT_ERR_ARG, "at_db_export_dir: a NULL argument");
  at_key_list keys;
  at_key any = {0};
  const at_key *pat = pattern ? pattern : &any;
  at_status s = at_db_keys(db, pat, &keys, e);
  if (s)
    return s;
  for (int i = 0; i < keys.n && !s; i++) {
    const at_key *k = &keys.k[i].key;
    if (i > 0 && !strcmp(k->kernel, keys.k[i - 1].key.kernel) &&
        !strcmp(k->device, keys.k[i - 1].key.device))
      continue; /* keys come sorted by kernel, then device */
    at_key one = *pat;
    one.kernel = k->kernel;
    one.device = k->device;
    at_buf text = {0};
    char name[AT_DB_EXPORT_NAME];
    at_db_export_name(k->kernel, k->device, name);
    if (!(s = at_db_export_json(db, &one, &text, e)) && !(s = write_file(dir, name, &text, e)) &&
        files)
      (*files)++;
    at_buf_free(&text);
  }
  at_key_list_free(&keys);
  return s;
}

/* ---- import ------------------------------------------------------------------------------- */

typedef struct {
  const char *name;
  int row; /* 1-based, for messages */
  at_err *e;
} ctx;

static at_status bad(const ctx *c, const char *field, const char *what) {
  if (c->row)
    return at_fail(c->e, AT_ERR_ARG, "%s: row %d: \"%s\" %s", c->name, c->row, field, what);
  return at_fail(c->e, AT_ERR_ARG, "%s: \"%s\" %s", c->name, field, what);
}

static at_status get_str(const ctx *c, const at_json *o, const char *field, const char **out) {
  const at_json *v = at_json_get(o, field);
  if (!v)
    return bad(c, field, "is missing");
  if (v->kind != AT_JSON_STR)
    return bad(c, field, "is not a string");
  *out = v->str;
  return AT_OK;
}

static at_status get_ms(const ctx *c, const at_json *o, const char *field, double *out) {
  const at_json *v = at_json_get(o, field);
  if (!v)
    return bad(c, field, "is missing");
  if (v->kind == AT_JSON_NULL) {
    *out = NAN;
    return AT_OK;
  }
  if (v->kind != AT_JSON_NUM || !isfinite(v->num) || v->num < 0)
    return bad(c, field, "is not a time in ms (a number >= 0, or null)");
  *out = v->num;
  return AT_OK;
}

static at_status get_int(const ctx *c, const at_json *o, const char *field, long long lo,
                         long long hi, long long *out) {
  const at_json *v = at_json_get(o, field);
  if (!v)
    return bad(c, field, "is missing");
  if (v->kind != AT_JSON_NUM || v->num != floor(v->num) || v->num < (double)lo ||
      v->num > (double)hi)
    return bad(c, field, "is not an integer in range");
  *out = (long long)v->num;
  return AT_OK;
}

/* Reads one row object into r and k (strings point into the JSON tree). */
static at_status read_row(const ctx *c, const at_json *o, at_key *k, at_result *r) {
  if (o->kind != AT_JSON_OBJ)
    return at_fail(c->e, AT_ERR_ARG, "%s: row %d is not an object", c->name, c->row);
  *r = at_result_empty();
  const char *status;
  at_status s;
  if ((s = get_str(c, o, "toolchain", &k->toolchain)) ||
      (s = get_str(c, o, "ir_hash", &k->ir_hash)) || (s = get_str(c, o, "bucket", &k->bucket)) ||
      (s = get_str(c, o, "config", &r->config)) || (s = get_str(c, o, "status", &status)) ||
      (s = get_str(c, o, "problem", &r->problem)) || (s = get_str(c, o, "detail", &r->detail)) ||
      (s = get_str(c, o, "compile_key", &r->compile_key)) ||
      (s = get_ms(c, o, "median_ms", &r->median_ms)) || (s = get_ms(c, o, "p20_ms", &r->p20_ms)) ||
      (s = get_ms(c, o, "p80_ms", &r->p80_ms)) || (s = get_ms(c, o, "min_ms", &r->min_ms)))
    return s;
  if (at_json_get(o, "variant") && (s = get_str(c, o, "variant", &r->variant)))
    return s;
  if (r->variant[0] && strcmp(r->variant, "aligned"))
    return bad(c, "variant", "is not a code variant (\"\" or \"aligned\")");
  if (!at_run_parse(status, &r->status))
    return bad(c, "status",
               "is not a run outcome (ok, wrong, fault, timeout, resources, "
               "compile_error, pruned, compiled)");
  if (r->status == AT_RUN_OK && isnan(r->median_ms))
    return bad(c, "median_ms", "is null in an ok row");
  struct {
    const char *name;
    long long lo;
    int *out;
  } ints[] = {{"reps", 0, &r->reps},
              {"regs", -1, &r->regs},
              {"spills", -1, &r->spills},
              {"smem_bytes", -1, &r->smem_bytes},
              {"sm_clock_mhz", -1, &r->sm_clock_mhz},
              {"mem_clock_mhz", -1, &r->mem_clock_mhz}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    long long v;
    if ((s = get_int(c, o, ints[i].name, ints[i].lo, INT_MAX, &v)))
      return s;
    *ints[i].out = (int)v;
  }
  long long t;
  if ((s = get_int(c, o, "time_unix", 1, (long long)1 << 52, &t)))
    return s;
  r->time_unix = t;
  return AT_OK;
}

at_status at_db_import_json(at_db *db, const char *name, const char *text, size_t len,
                            at_merge_stats *stats, at_err *e) {
  at_merge_stats local;
  at_merge_stats *st = stats ? stats : &local;
  memset(st, 0, sizeof *st);
  if (!db || !text)
    return at_fail(e, AT_ERR_ARG, "at_db_import_json: a NULL argument");
  ctx c = {name ? name : "<import>", 0, e};
  at_json *root = NULL;
  at_key *keys = NULL;
  at_result *rows = NULL;
  at_err pe;
  at_status s = at_json_parse(text, len, &root, &pe);
  if (s) {
    at_fail(e, s, "%s: %s", c.name, pe.msg);
    goto done;
  }
  const char *format, *kernel, *device;
  const at_json *version = at_json_get(root, "version"), *list = at_json_get(root, "rows");
  if (root->kind != AT_JSON_OBJ) {
    s = at_fail(e, AT_ERR_ARG, "%s: not a JSON object", c.name);
    goto done;
  }
  if ((s = get_str(&c, root, "format", &format)))
    goto done;
  if (strcmp(format, format_name) != 0) {
    s = bad(&c, "format", "is not \"tilec-tuning-export\"");
    goto done;
  }
  if (!version || version->kind != AT_JSON_NUM ||
      (version->num != AT_DB_EXPORT_VERSION && version->num != 1)) {
    s = bad(&c, "version", "is not 1 or 2 (written by another tilec version?)");
    goto done;
  }
  if ((s = get_str(&c, root, "kernel", &kernel)) || (s = get_str(&c, root, "device", &device)))
    goto done;
  if (!list || list->kind != AT_JSON_ARR) {
    s = bad(&c, "rows", "is not an array");
    goto done;
  }
  keys = calloc((size_t)list->n + 1, sizeof *keys);
  rows = calloc((size_t)list->n + 1, sizeof *rows);
  if (!keys || !rows) {
    s = at_fail(e, AT_ERR_OOM, "out of memory");
    goto done;
  }
  for (int i = 0; i < list->n; i++) {
    c.row = i + 1;
    keys[i].kernel = kernel;
    keys[i].device = device;
    if ((s = read_row(&c, &list->items[i], &keys[i], &rows[i])))
      goto done;
    if (version->num == 1) /* v1 compile keys may name another problem's code (db.h) */
      rows[i].compile_key = "";
  }
  if ((s = at_db_begin(db, e)))
    goto done;
  for (int i = 0; i < list->n && !s; i++) {
    bool taken;
    if (!(s = at_db_offer(db, &keys[i], &rows[i], &taken, e))) {
      st->rows_seen++;
      st->rows_taken += taken;
    }
  }
  if (s)
    at_db_rollback(db);
  else
    s = at_db_commit(db, e);
done:
  free(keys);
  free(rows);
  at_json_free(root);
  return s;
}
