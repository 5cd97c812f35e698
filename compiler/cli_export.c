/* compiler/cli_export.c — `tilec export --db PATH --device KEY [--kernels a,b] -o tuned.c`.
 *
 * Reads the database read-only, asks at_export for the source and header, and writes both
 * through a temporary name and rename (tuned.c and tuned.h beside it), so a failed export never
 * leaves half a file. The generator is in autotune/export.c.
 */
#include "compiler/cli_export.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autotune/db.h"
#include "autotune/export.h"
#include "compiler/cli_util.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_ENV = 2, MAX_LIST = 64 };

static int usage(void) {
  fputs("usage: tilec export --device KEY -o OUT.c [--db PATH] [--kernels K1,K2]\n"
        "                    [--kernel-file NAME=PATH]... [--toolchain T] [--prefix NAME]\n"
        "                    [--set NAME=V,...]\n"
        "  writes OUT.c and OUT.h: the winners of KEY with their cubins, a select and a\n"
        "  launch function per kernel (docs/export.md)\n",
        stderr);
  return EXIT_FAIL;
}

/* Writes text to path through path.tmp and rename; false with errno set on failure. */
static bool write_file(const char *path, const at_buf *text) {
  size_t n = strlen(path) + 5;
  char *tmp = malloc(n);
  if (!tmp)
    return false;
  snprintf(tmp, n, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  bool ok = f && fwrite(text->p, 1, text->n, f) == text->n;
  if (f && fclose(f))
    ok = false;
  if (!ok || rename(tmp, path)) {
    unlink(tmp);
    ok = false;
  }
  free(tmp);
  return ok;
}

typedef struct opts {
  const char *db, *out, *device, *toolchain, *prefix, *set;
  char *kernels_copy;
  const char *kernels[MAX_LIST];
  int nkernels;
  at_export_source src[MAX_LIST];
  int nsrc;
} opts;

static void opts_free(opts *o) {
  free(o->kernels_copy);
  for (int i = 0; i < o->nsrc; i++) {
    free((char *)o->src[i].name);
    free((char *)o->src[i].text);
  }
}

static int kernel_file(opts *o, const char *spec) {
  const char *eq = strchr(spec, '=');
  if (!eq || eq == spec || !eq[1])
    return cli_die(EXIT_FAIL, "--kernel-file %s: expected NAME=PATH", spec);
  if (o->nsrc == MAX_LIST)
    return cli_die(EXIT_FAIL, "more than %d --kernel-file options", MAX_LIST);
  char err[512];
  size_t len;
  char *text = cli_read_file(eq + 1, &len, err, sizeof err);
  if (!text)
    return cli_die(EXIT_FAIL, "--kernel-file %s: %s", spec, err);
  char *name = strndup(spec, (size_t)(eq - spec));
  if (!name) {
    free(text);
    return cli_die(EXIT_ENV, "out of memory");
  }
  o->src[o->nsrc++] = (at_export_source){name, text, eq + 1};
  return EXIT_OK;
}

static int parse(int argc, char **argv, opts *o) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h"))
      return usage();
    if (a[0] != '-' || !a[1])
      return cli_die(EXIT_FAIL, "unexpected argument '%s' (tilec export --help)", a);
    if (i + 1 >= argc)
      return cli_die(EXIT_FAIL, "%s needs a value", a);
    const char *v = argv[++i];
    int rc = EXIT_OK;
    if (!strcmp(a, "--db"))
      o->db = v;
    else if (!strcmp(a, "-o"))
      o->out = v;
    else if (!strcmp(a, "--device"))
      o->device = v;
    else if (!strcmp(a, "--toolchain"))
      o->toolchain = v;
    else if (!strcmp(a, "--prefix"))
      o->prefix = v;
    else if (!strcmp(a, "--set"))
      o->set = v;
    else if (!strcmp(a, "--kernel-file"))
      rc = kernel_file(o, v);
    else if (!strcmp(a, "--kernels")) {
      free(o->kernels_copy);
      o->nkernels = 0;
      if (!(o->kernels_copy = strdup(v)))
        return cli_die(EXIT_ENV, "out of memory");
      for (char *s = strtok(o->kernels_copy, ","); s; s = strtok(NULL, ","))
        if (o->nkernels < MAX_LIST)
          o->kernels[o->nkernels++] = s;
      if (!o->nkernels)
        return cli_die(EXIT_FAIL, "--kernels needs at least one name");
    } else
      return cli_die(EXIT_FAIL, "unknown option '%s' for tilec export (tilec export --help)", a);
    if (rc)
      return rc;
  }
  if (!o->device || !o->out)
    return cli_die(EXIT_FAIL, "tilec export needs --device KEY and -o OUT.c (tilec export --help)");
  size_t n = strlen(o->out);
  if (n < 3 || strcmp(o->out + n - 2, ".c"))
    return cli_die(EXIT_FAIL, "-o %s: the output name must end in .c (the header gets .h)", o->out);
  return EXIT_OK;
}

int cli_export(int argc, char **argv) {
  opts o = {0};
  int rc = parse(argc, argv, &o);
  at_db *db = NULL;
  at_buf c = {0}, h = {0};
  char *hpath = NULL;
  if (rc)
    goto done;
  at_err e = {0};
  at_status s = at_db_open(o.db, AT_DB_READONLY, &db, &e);
  if (s) {
    rc = cli_die(s == AT_ERR_ARG ? EXIT_FAIL : EXIT_ENV, "%s", e.msg);
    goto done;
  }
  hpath = strdup(o.out);
  if (!hpath) {
    rc = cli_die(EXIT_ENV, "out of memory");
    goto done;
  }
  hpath[strlen(hpath) - 1] = 'h';
  const char *base = strrchr(hpath, '/');
  at_export_opts eo = {.device = o.device,
                       .toolchain = o.toolchain,
                       .prefix = o.prefix,
                       .header = base ? base + 1 : hpath,
                       .kernels = o.nkernels ? o.kernels : NULL,
                       .nkernels = o.nkernels,
                       .sources = o.src,
                       .nsources = o.nsrc,
                       .set = o.set};
  at_export_stats st;
  if ((s = at_export(db, &eo, &c, &h, &st, &e))) {
    rc = cli_die(s == AT_ERR_OOM ? EXIT_ENV : EXIT_FAIL, "export: %s", e.msg);
    goto done;
  }
  if (!write_file(hpath, &h) || !write_file(o.out, &c)) {
    rc = cli_die(EXIT_ENV, "cannot write %s / %s", o.out, hpath);
    goto done;
  }
  fprintf(stderr, "tilec: wrote %s and %s: %d entries of %d kernels, %zu bytes of cubins\n", o.out,
          hpath, st.entries, st.kernels, st.cubin_bytes);
  if (st.aligned)
    fprintf(stderr,
            "tilec: %d entr%s the aligned variant; %d without generic code (their "
            "launches refuse tensors that break the alignment promise)\n",
            st.aligned, st.aligned == 1 ? "y is" : "ies are", st.aligned_without_generic);
done:
  at_buf_free(&c);
  at_buf_free(&h);
  free(hpath);
  at_db_close(db);
  opts_free(&o);
  return rc;
}
