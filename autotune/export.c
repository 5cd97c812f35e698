/* autotune/export.c — `tilec export`: the winners of a tuning database as a C source and header
 * that an engine compiles into itself (export.h, docs/export.md).
 *
 * For every winner: the kernel (built-in or given) is parsed and its at_kernel_hash compared
 * with the row's ir_hash; the row's config plus what the bucket fixes (dtype, const parameters:
 * kn_problem_config) is specialized, which gives the argument list to pack and the grid to
 * compute; the cubin is read through at_db_get_blob (size and SHA-256 checked). The generator
 * then prints C99: the cubins as byte arrays, a select function per kernel that computes the
 * problem's bucket as at_bucket_key does and picks the entry, a packer per entry that follows
 * rt_params_pack byte for byte, and a launcher over the CUDA driver API.
 */
#include "autotune/export.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/compile.h"
#include "ir/ir.h"
#include "kernels/builtin_sources.h"
#include "kernels/problem.h"
#include "runtime/rt.h"

enum { MAX_FIELDS = 64, MAX_C_STRING = 4000 };

/* One bucket value of an entry, parsed from its text. */
typedef enum { V_ABSENT = -1, V_RAW = 0, V_POW2 = 1, V_MULT = 2, V_ANY = 3, V_STR = 4 } vtag;

typedef struct item {
  vtag tag;
  int64_t arg, v; /* V_MULT: the step; V_RAW, V_POW2, V_MULT: the number */
  const char *text;
} item;

/* F_INT: an int64_t member, bucketed at run time by the kernel's rule; F_STR: a const char *
 * member compared as text; F_ANY: no member (every value is one bucket). */
typedef enum { F_INT, F_STR, F_ANY } fkind;

typedef struct field {
  char name[64];
  fkind kind;
  bool fixing;      /* changes the code (dtype, const parameters, non-problem keys) */
  int rule;         /* F_INT: 0 exact, 1 pow2, 2 multiple */
  int64_t rule_arg; /* multiple: the step */
} field;

/* A cubin and what loading and launching it needs (its blob's meta). */
typedef struct image {
  unsigned char *cubin;
  size_t size;
  char *entry_name;
  int threads, smem;
} image;

typedef struct entry {
  const at_result *row;
  ir_kernel *spec;
  image img;         /* the row's cubin */
  bool aligned;      /* img is the aligned variant (the row measured it) */
  image generic;     /* aligned entries: the same config's generic code when the database holds it
                        (cubin NULL otherwise): what arguments that break the promise launch */
  char *bucket_copy; /* the bucket text split in place: items point into it */
  char *keys[MAX_FIELDS];
  item vals[MAX_FIELDS];
  int nkeys;
  item at[MAX_FIELDS]; /* by field of the kernel */
} entry;

typedef struct kern {
  const char *name;
  ir_kernel *k;
  bool file; /* its text came from --kernel-file, even under a built-in's name */
  int first, n;
  field f[MAX_FIELDS];
  int nf;
} kern;

typedef struct gen {
  const at_export_opts *o;
  const char *P; /* the prefix */
  at_rows rows;
  entry *e;
  int ne;
  kern *ks;
  int nk;
  at_buf *c, *h;
  at_err *err;
  int nimages; /* entries' cubins and the generic cubins of aligned entries */
} gen;

/* ---- checks on names and texts -------------------------------------------------------------- */

static bool is_ident(const char *s) {
  if (!s || !(isalpha((unsigned char)*s) || *s == '_') || strlen(s) > 60)
    return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_')
      return false;
  return true;
}

static bool is_keyword(const char *s) {
  static const char *const kw[] = {
      "auto",     "break",  "case",   "char",     "const",     "continue", "default",  "do",
      "double",   "else",   "enum",   "extern",   "float",     "for",      "goto",     "if",
      "inline",   "int",    "long",   "register", "restrict",  "return",   "short",    "signed",
      "sizeof",   "static", "struct", "switch",   "typedef",   "union",    "unsigned", "void",
      "volatile", "while",  "_Bool",  "_Complex", "_Imaginary"};
  for (size_t i = 0; i < sizeof kw / sizeof *kw; i++)
    if (!strcmp(s, kw[i]))
      return true;
  return false;
}

/* A name usable as a C member or as part of an identifier. */
static at_status check_name(gen *g, const char *what, const char *s) {
  if (!is_ident(s) || is_keyword(s))
    return at_fail(g->err, AT_ERR_ARG, "%s '%s' is not usable as a C name", what, s ? s : "");
  return AT_OK;
}

/* Appends s as a C string literal: printable ASCII as is (with \" \\ \? escaped; \? keeps
 * trigraphs out), every other byte as a three-digit octal escape. */
static void c_string(at_buf *b, const char *s) {
  at_buf_puts(b, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\' || *p == '?')
      at_buf_printf(b, "\\%c", *p);
    else if (*p >= 0x20 && *p < 0x7f)
      at_buf_put(b, (const char *)p, 1);
    else
      at_buf_printf(b, "\\%03o", *p);
  }
  at_buf_puts(b, "\"");
}

static at_status check_text(gen *g, const char *what, const char *s) {
  if (strlen(s) > MAX_C_STRING)
    return at_fail(g->err, AT_ERR_ARG, "%s is longer than %d bytes", what, MAX_C_STRING);
  return AT_OK;
}

/* ---- bucket texts ---------------------------------------------------------------------------- */

static bool parse_int(const char *s, int64_t *v) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || end == s || *end || isspace((unsigned char)*s))
    return false;
  *v = x;
  return true;
}

/* The bucket value text as at_bucket_key writes it: any, pow2:N, multiple(A):N, N, or text. */
static item parse_value(const char *text) {
  item it = {.tag = V_STR, .text = text};
  int64_t a, v;
  if (!strcmp(text, "any"))
    it.tag = V_ANY;
  else if (!strncmp(text, "pow2:", 5) && parse_int(text + 5, &v))
    it = (item){V_POW2, 0, v, text};
  else if (!strncmp(text, "multiple(", 9)) {
    const char *close = strstr(text, "):");
    char num[32];
    size_t n = close ? (size_t)(close - text - 9) : 0;
    if (close && n > 0 && n < sizeof num) {
      memcpy(num, text + 9, n);
      num[n] = 0;
      if (parse_int(num, &a) && parse_int(close + 2, &v))
        it = (item){V_MULT, a, v, text};
    }
  } else if (parse_int(text, &v))
    it = (item){V_RAW, 0, v, text};
  return it;
}

static at_status split_bucket(gen *g, entry *en) {
  en->bucket_copy = strdup(en->row->key.bucket);
  if (!en->bucket_copy)
    return at_fail(g->err, AT_ERR_OOM, "out of memory");
  for (char *s = en->bucket_copy; *s;) {
    char *part = s, *comma = strchr(s, ',');
    if (comma) {
      *comma = 0;
      s = comma + 1;
    } else
      s += strlen(s);
    char *eq = strchr(part, '=');
    if (!eq || eq == part || en->nkeys == MAX_FIELDS)
      return at_fail(g->err, AT_ERR_ARG, "kernel '%s': bucket '%s' is not a bucket text",
                     en->row->key.kernel, en->row->key.bucket);
    *eq = 0;
    en->keys[en->nkeys] = part;
    en->vals[en->nkeys++] = parse_value(eq + 1);
  }
  return AT_OK;
}

/* ---- loading: kernels, specialization, cubins -------------------------------------------------
 */

static const char *kernel_text(gen *g, const char *name, const char **file, bool *given) {
  *given = false;
  for (int i = 0; i < g->o->nsources; i++)
    if (g->o->sources[i].name && g->o->sources[i].text && !strcmp(g->o->sources[i].name, name)) {
      *file = g->o->sources[i].file ? g->o->sources[i].file : name;
      *given = true;
      return g->o->sources[i].text;
    }
  for (const struct tilec_builtin_source *s = tilec_builtin_sources; s->name; s++)
    if (!strcmp(s->name, name)) {
      *file = s->name;
      return s->text;
    }
  return NULL;
}

static at_status load_kernel(gen *g, kern *kn) {
  const char *file = NULL, *text = kernel_text(g, kn->name, &file, &kn->file);
  if (!text)
    return at_fail(g->err, AT_ERR_ARG,
                   "kernel '%s' is not built in: give its text with --kernel-file %s=PATH",
                   kn->name, kn->name);
  ir_diag d;
  if (ir_parse(text, strlen(text), file, &kn->k, &d) || ir_verify(kn->k, &d))
    return at_fail(g->err, AT_ERR_ARG, "kernel '%s': %s", kn->name, d.msg);
  if (strcmp(kn->k->name, kn->name))
    return at_fail(g->err, AT_ERR_ARG, "%s holds kernel '%s', not '%s'", file, kn->k->name,
                   kn->name);
  char hash[65];
  at_status s = at_kernel_hash(kn->k, hash, g->err);
  if (s)
    return s;
  for (int i = kn->first; i < kn->first + kn->n; i++)
    if (strcmp(g->e[i].row->key.ir_hash, hash))
      return at_fail(g->err, AT_ERR_ARG,
                     "kernel '%s' bucket '%s': the database row was tuned for ir_hash %.16s..., "
                     "but this kernel's text hashes to %.16s...; tune it again, or give the text "
                     "it was tuned with (--kernel-file %s=PATH)",
                     kn->name, g->e[i].row->key.bucket, g->e[i].row->key.ir_hash, hash, kn->name);
  return AT_OK;
}

static bool has_item(const ir_config *c, const char *name) {
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->items[i].name, name))
      return true;
  return false;
}

/* The full config of an entry: the row's, then --set items it lacks, then what the bucket
 * fixes: the type variables it names, and what kn_problem_config (built-in kernels) or
 * kn_file_config (file kernels: const parameters, dtype) makes of it. */
static at_status entry_config(gen *g, const kern *kn, entry *en, ir_config *cfg) {
  ir_diag d;
  const at_result *r = en->row;
  cfg->n = 0;
  if (ir_config_parse(cfg, r->config, &d))
    return at_fail(g->err, AT_ERR_ARG, "kernel '%s' bucket '%s': config '%s': %s", kn->name,
                   r->key.bucket, r->config, d.msg);
  if (g->o->set) {
    ir_config *set = calloc(1, sizeof *set);
    if (!set)
      return at_fail(g->err, AT_ERR_OOM, "out of memory");
    if (ir_config_parse(set, g->o->set, &d)) {
      free(set);
      return at_fail(g->err, AT_ERR_ARG, "--set: %s", d.msg);
    }
    for (int i = 0; i < set->n; i++) {
      const char *nm = set->items[i].name;
      bool known =
          ir_sym_find(kn->k, nm, strlen(nm)) >= 0 || ir_tvar_find(kn->k, nm, strlen(nm)) >= 0;
      if (known && !has_item(cfg, nm) && cfg->n < IR_MAX_SYMS)
        cfg->items[cfg->n++] = set->items[i];
    }
    free(set);
  }
  /* The bucket as the problem it was made from (keys and dtype). Keys that name a type variable
   * bind it (the tuner puts --set items that fix one in the bucket); the rest is the problem's,
   * bound as tilec tune and its worker bind it. */
  kn_shape shape = {0};
  const char *dtype = NULL;
  for (int i = 0; i < en->nkeys; i++) {
    const char *nm = en->keys[i], *val = en->vals[i].text;
    if (!strcmp(nm, "dtype")) {
      dtype = val;
      continue;
    }
    if (ir_tvar_find(kn->k, nm, strlen(nm)) >= 0 && !has_item(cfg, nm)) {
      ir_kind kd = ir_kind_from_name(val, strlen(val));
      if (kd == IR_VOID || cfg->n == IR_MAX_SYMS)
        return at_fail(g->err, AT_ERR_ARG, "kernel '%s' bucket '%s': '%s=%s' binds no type",
                       kn->name, r->key.bucket, nm, val);
      cfg->items[cfg->n] = (ir_config_item){.kind = kd};
      snprintf(cfg->items[cfg->n++].name, sizeof cfg->items[0].name, "%s", nm);
    }
    if (shape.n == KN_MAX_KEYS)
      break;
    snprintf(shape.kv[shape.n].key, sizeof shape.kv[shape.n].key, "%s", nm);
    snprintf(shape.kv[shape.n].val, sizeof shape.kv[shape.n].val, "%s", val);
    shape.n++;
  }
  bool builtin = !kn->file && kn_is_builtin(kn->name); /* as tilec tune and its worker decide */
  char msg[512];
  if (builtin ? kn_problem_config(kn->name, &shape, dtype, cfg, msg, sizeof msg)
              : kn_file_config(kn->k, &shape, dtype, cfg, msg, sizeof msg))
    return at_fail(g->err, AT_ERR_ARG, "kernel '%s' bucket '%s': %s", kn->name, r->key.bucket, msg);
  return AT_OK;
}

/* Reads the meta JSON of a blob (`tilec tune`'s store: entry, threads, smem_bytes; and arch
 * since the tuner records it) into im, and arch (cap 16, "" when absent). */
static at_status parse_meta(gen *g, const entry *en, const char *meta, image *im, char *arch) {
  const at_result *r = en->row;
  at_json *j = NULL;
  at_err je = {0};
  if (!meta || at_json_parse(meta, strlen(meta), &j, &je))
    return at_fail(g->err, AT_ERR_ARG,
                   "kernel '%s' bucket '%s': the cubin's metadata is missing or not JSON%s%s",
                   r->key.kernel, r->key.bucket, meta ? ": " : "", meta ? je.msg : "");
  const at_json *ent = at_json_get(j, "entry"), *th = at_json_get(j, "threads"),
                *sm = at_json_get(j, "smem_bytes"), *ar = at_json_get(j, "arch");
  at_status s = AT_OK;
  snprintf(arch, 16, "%s", ar && ar->kind == AT_JSON_STR && strlen(ar->str) < 16 ? ar->str : "");
  if (!ent || ent->kind != AT_JSON_STR || !th || th->kind != AT_JSON_NUM || !sm ||
      sm->kind != AT_JSON_NUM || !(th->num >= 1 && th->num <= 1024) ||
      !(sm->num >= 0 && sm->num <= 16 << 20) || !ent->str[0])
    s = at_fail(g->err, AT_ERR_ARG,
                "kernel '%s' bucket '%s': the cubin's metadata lacks entry, threads (1..1024) "
                "or smem_bytes: %s",
                r->key.kernel, r->key.bucket, meta);
  else if (!(im->entry_name = strdup(ent->str)))
    s = at_fail(g->err, AT_ERR_OOM, "out of memory");
  else {
    im->threads = (int)th->num;
    im->smem = (int)sm->num;
    s = check_text(g, "the entry name", im->entry_name);
  }
  at_json_free(j);
  return s;
}

/* An aligned entry's generic code: the blob of the same IR, config, target and toolchain
 * without the variant (`tilec tune` stores the winner's; an API miss stores what it compiled).
 * None stored is not an error: the entry then refuses arguments that break the promise. */
static at_status load_generic(gen *g, at_db *db, entry *en, const char *code, const char *arch) {
  const at_result *r = en->row;
  char key[65], arch2[16];
  void *data = NULL;
  char *meta = NULL;
  at_err be = {0};
  at_status s = at_compile_key(r->key.ir_hash, code, arch, r->key.toolchain, key, g->err);
  if (s)
    return s;
  s = at_db_get_blob(db, key, &data, &en->generic.size, &meta, &be);
  if (s == AT_MISS) {
    free(meta);
    return AT_OK;
  }
  if (s) {
    free(meta);
    return at_fail(g->err, s, "kernel '%s' bucket '%s' config '%s': the generic cubin: %s",
                   r->key.kernel, r->key.bucket, r->config, be.msg);
  }
  en->generic.cubin = data;
  s = parse_meta(g, en, meta, &en->generic, arch2);
  free(meta);
  return s;
}

static at_status load_entry(gen *g, at_db *db, const kern *kn, entry *en) {
  const at_result *r = en->row;
  at_status s = split_bucket(g, en);
  if (s)
    return s;
  ir_config *cfg = calloc(1, sizeof *cfg);
  if (!cfg)
    return at_fail(g->err, AT_ERR_OOM, "out of memory");
  ir_diag d;
  char code[1024];
  if (!(s = entry_config(g, kn, en, cfg)) && ir_specialize(kn->k, cfg, &en->spec, &d))
    s = at_fail(g->err, AT_ERR_ARG, "kernel '%s' bucket '%s' config '%s': %s", kn->name,
                r->key.bucket, r->config, d.msg);
  if (!s)
    s = at_code_config(kn->k, cfg, code, sizeof code, g->err);
  free(cfg);
  if (s)
    return s;
  if (!r->compile_key || !r->compile_key[0])
    return at_fail(g->err, AT_MISS,
                   "kernel '%s' bucket '%s' config '%s': the winner has no stored cubin", kn->name,
                   r->key.bucket, r->config);
  void *data = NULL;
  char *meta = NULL;
  at_err be = {0};
  s = at_db_get_blob(db, r->compile_key, &data, &en->img.size, &meta, &be);
  if (s) {
    free(meta);
    return at_fail(g->err, s, "kernel '%s' bucket '%s' config '%s': the cubin: %s", kn->name,
                   r->key.bucket, r->config, be.msg);
  }
  en->img.cubin = data;
  char arch[16];
  s = parse_meta(g, en, meta, &en->img, arch);
  free(meta);
  if (s)
    return s;
  if ((s = check_text(g, "a bucket", r->key.bucket)) || (s = check_text(g, "a config", r->config)))
    return s;
  en->aligned = r->variant && !strcmp(r->variant, "aligned");
  if (!arch[0])
    return AT_OK;
  /* The cubin must be this problem's code: its key is the whole binding's (at_code_config). */
  char key[65];
  if ((s = at_compile_key_variant(r->key.ir_hash, code, arch, r->key.toolchain,
                                  en->aligned ? "aligned" : NULL, key, g->err)))
    return s;
  if (strcmp(key, r->compile_key))
    return at_fail(g->err, AT_ERR_CORRUPT,
                   "kernel '%s' bucket '%s' config '%s': the stored cubin is not the code of "
                   "this problem (its compile key differs); run tilec tune on it again",
                   kn->name, r->key.bucket, r->config);
  return en->aligned ? load_generic(g, db, en, code, arch) : AT_OK;
}

/* ---- the fields of a kernel's problem struct ------------------------------------------------- */

static const ir_bucket *bucket_rule(const ir_kernel *k, int sym) {
  for (int i = 0; i < k->nbuckets; i++)
    if (k->buckets[i].sym == sym)
      return &k->buckets[i];
  return NULL;
}

static int field_index(const kern *kn, const char *name) {
  for (int i = 0; i < kn->nf; i++)
    if (!strcmp(kn->f[i].name, name))
      return i;
  return -1;
}

static int field_cmp(const void *a, const void *b) {
  return strcmp(((const field *)a)->name, ((const field *)b)->name);
}

static at_status make_fields(gen *g, kern *kn) {
  for (int i = kn->first; i < kn->first + kn->n; i++)
    for (int j = 0; j < g->e[i].nkeys; j++) {
      const char *key = g->e[i].keys[j];
      if (field_index(kn, key) >= 0)
        continue;
      if (kn->nf == MAX_FIELDS)
        return at_fail(g->err, AT_ERR_ARG, "kernel '%s': more than %d bucket keys", kn->name,
                       MAX_FIELDS);
      at_status s = check_name(g, "bucket key", key);
      if (s)
        return s;
      snprintf(kn->f[kn->nf++].name, sizeof kn->f[0].name, "%s", key);
    }
  qsort(kn->f, (size_t)kn->nf, sizeof *kn->f, field_cmp);
  for (int fi = 0; fi < kn->nf; fi++) {
    field *f = &kn->f[fi];
    int sym = ir_sym_find(kn->k, f->name, strlen(f->name));
    const ir_sym *sy = sym >= 0 ? &kn->k->syms[sym] : NULL;
    bool runtime = sy && (sy->kind == SYM_DIM || sy->kind == SYM_PARAM);
    const ir_bucket *b = sy && runtime ? bucket_rule(kn->k, sym) : NULL;
    bool all_int = true;
    for (int i = kn->first; i < kn->first + kn->n; i++) {
      entry *en = &g->e[i];
      en->at[fi] = (item){.tag = V_ABSENT};
      for (int j = 0; j < en->nkeys; j++)
        if (!strcmp(en->keys[j], f->name))
          en->at[fi] = en->vals[j];
      all_int &= en->at[fi].tag != V_STR && en->at[fi].tag != V_ANY;
    }
    f->fixing = !runtime;
    if (b && b->kind == IR_BUCKET_ANY)
      f->kind = F_ANY;
    else if (!strcmp(f->name, "dtype"))
      f->kind = F_STR;
    else if (runtime && ir_kind_is_int(sy->ty))
      f->kind = F_INT;
    else
      f->kind = all_int ? F_INT : F_STR;
    f->rule = !b || b->kind == IR_BUCKET_EXACT ? 0 : b->kind == IR_BUCKET_POW2 ? 1 : 2;
    f->rule_arg = b && b->kind == IR_BUCKET_MULTIPLE ? b->arg : 0;
  }
  return AT_OK;
}

/* ---- C for the grid and the argument checks ----------------------------------------------------
 */

/* Prints e (a specialized kernel's integer expression) as C over the bound variables v_NAME;
 * arithmetic goes through the checked helpers, which set *bad on overflow or division by zero,
 * as ir_expr_eval reports them. */
static at_status c_expr(gen *g, const kern *kn, const ir_kernel *k, const ir_expr *e, at_buf *b,
                        int depth) {
  if (!e || depth > IR_MAX_DEPTH)
    return at_fail(g->err, AT_ERR_ARG, "kernel '%s': a grid expression is too deep", kn->name);
  switch (e->kind) {
  case EX_INT:
    if (e->i == INT64_MIN)
      at_buf_puts(b, "(-INT64_C(9223372036854775807) - 1)");
    else
      at_buf_printf(b, "INT64_C(%lld)", (long long)e->i);
    return AT_OK;
  case EX_SYM: {
    const ir_sym *sy = e->sym >= 0 && e->sym < k->nsyms ? &k->syms[e->sym] : NULL;
    if (sy && sy->kind != SYM_DIM && sy->kind != SYM_PARAM && sy->has_default && !sy->def.isf) {
      at_buf_printf(b, "INT64_C(%lld)", (long long)sy->def.i); /* a bound const or tunable */
      return AT_OK;
    }
    if (!sy || (sy->kind != SYM_DIM && sy->kind != SYM_PARAM) || !ir_kind_is_int(sy->ty))
      return at_fail(g->err, AT_ERR_ARG,
                     "kernel '%s': the grid uses '%s', which is not an integer problem value",
                     kn->name, sy ? sy->name : "?");
    at_buf_printf(b, "v_%s", sy->name);
    return AT_OK;
  }
  case EX_FLOAT:
    return at_fail(g->err, AT_ERR_ARG, "kernel '%s': the grid uses floating point", kn->name);
  case EX_UNARY:
    at_buf_puts(b, e->op == '!' ? "(int64_t)!(" : "neg_(bad, ");
    break;
  case EX_BINARY:
  case EX_CALL: {
    const char *fn = NULL, *cmp = NULL;
    switch (e->op) {
    case '+':
      fn = "add_";
      break;
    case '-':
      fn = "sub_";
      break;
    case '*':
      fn = "mul_";
      break;
    case '/':
      fn = "div_";
      break;
    case '%':
      fn = "mod_";
      break;
    case EXO_CDIV:
      fn = "cdiv_";
      break;
    case EXO_MIN:
      fn = "min_";
      break;
    case EXO_MAX:
      fn = "max_";
      break;
    case '<':
      cmp = " < ";
      break;
    case '>':
      cmp = " > ";
      break;
    case EXO_LE:
      cmp = " <= ";
      break;
    case EXO_GE:
      cmp = " >= ";
      break;
    case EXO_EQ:
      cmp = " == ";
      break;
    case EXO_NE:
      cmp = " != ";
      break;
    case EXO_AND:
      cmp = " != 0 && ";
      break;
    case EXO_OR:
      cmp = " != 0 || ";
      break;
    default:
      return at_fail(g->err, AT_ERR_ARG, "kernel '%s': unknown operator in the grid", kn->name);
    }
    at_status s;
    if (fn) {
      at_buf_printf(b, "%s(bad, ", fn);
      if ((s = c_expr(g, kn, k, e->a, b, depth + 1)))
        return s;
      at_buf_puts(b, ", ");
    } else {
      at_buf_puts(b, "(int64_t)((");
      if ((s = c_expr(g, kn, k, e->a, b, depth + 1)))
        return s;
      at_buf_printf(b, ")%s(", cmp);
    }
    if ((s = c_expr(g, kn, k, e->b, b, depth + 1)))
      return s;
    at_buf_puts(b, fn ? ")" : (e->op == EXO_AND || e->op == EXO_OR) ? ") != 0)" : "))");
    return AT_OK;
  }
  default:
    return at_fail(g->err, AT_ERR_ARG, "kernel '%s': unknown expression in the grid", kn->name);
  }
  at_status s = c_expr(g, kn, k, e->a, b, depth + 1);
  at_buf_puts(b, ")");
  return s;
}

/* The C type and ABI size of a runtime scalar of kind k (f16/bf16/f8 as their bits). */
static const char *scalar_ctype(ir_kind k, int *size) {
  switch (k) {
  case IR_I1:
    *size = 1;
    return "uint8_t";
  case IR_I8:
    *size = 1;
    return "int8_t";
  case IR_I16:
    *size = 2;
    return "int16_t";
  case IR_I32:
    *size = 4;
    return "int32_t";
  case IR_I64:
    *size = 8;
    return "int64_t";
  case IR_F16:
  case IR_BF16:
    *size = 2;
    return "uint16_t";
  case IR_F32:
    *size = 4;
    return "float";
  case IR_F64:
    *size = 8;
    return "double";
  case IR_F8E4M3:
  case IR_F8E5M2:
    *size = 1;
    return "uint8_t";
  default:
    *size = 0;
    return NULL;
  }
}

static bool runtime_scalar(const ir_kernel *k, const ir_arg *a) {
  return a->kind == ARG_SCALAR && k->syms[a->sym].kind == SYM_PARAM;
}

/* The packer of entry i: the checks of rt_params_pack, then its parameters, then the grid. */
static at_status emit_pack(gen *g, const kern *kn, int i) {
  at_buf *c = g->c;
  const ir_kernel *k = g->e[i].spec;
  const char *P = g->P, *K = kn->name;
  at_buf_printf(c, "static CUresult pack_%d(const tuned_%s_%s_args *a, tuned_%s_params *p) {\n", i,
                P, K, P);
  at_buf_puts(c, "  int bad_flag = 0, *bad = &bad_flag;\n  int64_t g_ = 0;\n");
  for (int s = 0; s < k->nsyms; s++) {
    const ir_sym *sy = &k->syms[s];
    if (sy->kind == SYM_DIM)
      at_buf_printf(c, "  int64_t v_%s = a->%s.shape[%d];\n", sy->name, k->args[sy->arg].name,
                    sy->argdim);
    else if (sy->kind == SYM_PARAM && ir_kind_is_int(sy->ty))
      at_buf_printf(c, "  int64_t v_%s = (int64_t)a->%s;\n", sy->name, sy->name);
    else
      continue;
    at_buf_printf(c, "  (void)v_%s;\n", sy->name);
  }
  at_buf_puts(c, "  (void)bad;\n  (void)g_;\n");
  for (int ai = 0; ai < k->nargs; ai++) {
    const ir_arg *a = &k->args[ai];
    if (a->kind != ARG_TENSOR)
      continue;
    const ir_type *t = a->value->ty;
    for (int d = 0; d < t->rank; d++) {
      at_buf_printf(c, "  if (a->%s.shape[%d] < 0 || a->%s.shape[%d] > INT32_MAX", a->name, d,
                    a->name, d);
      const ir_expr *de = t->dims[d];
      if (de->kind == EX_INT)
        at_buf_printf(c, " || a->%s.shape[%d] != INT64_C(%lld)", a->name, d, (long long)de->i);
      else if (de->kind == EX_SYM && k->syms[de->sym].kind == SYM_DIM)
        at_buf_printf(c, " || a->%s.shape[%d] != v_%s", a->name, d, k->syms[de->sym].name);
      else if (de->kind == EX_SYM && k->syms[de->sym].has_default && !k->syms[de->sym].def.isf)
        at_buf_printf(c, " || a->%s.shape[%d] != INT64_C(%lld)", a->name, d,
                      (long long)k->syms[de->sym].def.i);
      else
        return at_fail(g->err, AT_ERR_ARG, "kernel '%s': tensor '%s' has a computed dim", K,
                       a->name);
      at_buf_puts(c, ")\n    return CUDA_ERROR_INVALID_VALUE;\n");
    }
  }
  at_buf_puts(c, "  p->size = 0;\n  p->count = 0;\n");
  for (int ai = 0; ai < k->nargs; ai++) {
    const ir_arg *a = &k->args[ai];
    if (a->kind == ARG_TENSOR) {
      int rank = a->value->ty->rank;
      at_buf_printf(c, "  put_(p, (uint64_t)a->%s.ptr, 8);\n", a->name);
      at_buf_printf(c,
                    "  for (int d = 0; d < %d; d++)\n"
                    "    put_(p, (uint64_t)(uint32_t)a->%s.shape[d], 4);\n"
                    "  for (int d = 0; d < %d; d++)\n"
                    "    put_(p, (uint64_t)a->%s.stride[d], 8);\n",
                    rank, a->name, rank, a->name);
    } else if (a->kind == ARG_PTR) {
      at_buf_printf(c, "  put_(p, (uint64_t)a->%s, 8);\n", a->name);
    } else if (runtime_scalar(k, a)) {
      const ir_sym *sy = &k->syms[a->sym];
      int size;
      scalar_ctype(sy->ty, &size);
      if (sy->ty == IR_I1)
        at_buf_printf(c, "  if (a->%s > 1)\n    return CUDA_ERROR_INVALID_VALUE;\n", sy->name);
      if (sy->ty == IR_F32)
        at_buf_printf(c,
                      "  {\n    uint32_t u;\n    memcpy(&u, &a->%s, 4);\n    put_(p, u, 4);\n  }\n",
                      sy->name);
      else if (sy->ty == IR_F64)
        at_buf_printf(c,
                      "  {\n    uint64_t u;\n    memcpy(&u, &a->%s, 8);\n    put_(p, u, 8);\n  }\n",
                      sy->name);
      else if (ir_kind_is_int(sy->ty))
        at_buf_printf(c, "  put_(p, (uint64_t)(int64_t)a->%s, %d);\n", sy->name, size);
      else
        at_buf_printf(c, "  put_(p, (uint64_t)a->%s, %d);\n", sy->name, size);
    }
  }
  static const char *const limit[3] = {"INT32_MAX", "65535", "65535"};
  for (int d = 0; d < 3; d++) {
    if (d >= k->ngrid) {
      at_buf_printf(c, "  p->grid[%d] = 1;\n", d);
      continue;
    }
    at_buf_puts(c, "  g_ = ");
    at_status s = c_expr(g, kn, k, k->grid[d], c, 0);
    if (s)
      return s;
    at_buf_printf(c,
                  ";\n  if (bad_flag || g_ < 0 || g_ > %s)\n    return CUDA_ERROR_INVALID_VALUE;\n"
                  "  p->grid[%d] = (uint32_t)g_;\n",
                  limit[d], d);
  }
  at_buf_puts(
      c,
      "  return p->size <= TUNED_PARAM_BYTES_ ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;\n}\n\n");
  return AT_OK;
}

/* The image a launch of entry i takes: the row's cubin, or for an aligned entry whose
 * arguments break the promise (rt_args_aligned's test) its generic cubin, or -1. */
static void emit_image_choice(gen *g, const kern *kn) {
  at_buf *c = g->c;
  const char *P = g->P, *K = kn->name;
  for (int i = kn->first; i < kn->first + kn->n; i++) {
    const ir_kernel *k = g->e[i].spec;
    if (!g->e[i].aligned)
      continue;
    at_buf_printf(c,
                  "/* Whether a keeps the promise entry %d's aligned cubin was compiled for. */\n"
                  "static int promise_%d(const tuned_%s_%s_args *a) {\n",
                  i, i, P, K);
    for (int ai = 0; ai < k->nargs; ai++) {
      const ir_arg *a = &k->args[ai];
      if (a->kind != ARG_TENSOR)
        continue;
      const ir_type *t = a->value->ty;
      int es = rt_elem_bytes(t->elem->kind), r = t->rank; /* 1, 2, 4 or 8: divides 16 */
      /* stride * es % 16 == 0 written as stride % (16 / es): no overflow */
      at_buf_printf(c, "  if (a->%s.ptr %% 16 || a->%s.stride[%d] != 1 || a->%s.shape[%d] %% %d",
                    a->name, a->name, r - 1, a->name, r - 1, 16 / es);
      for (int d = 0; d < r - 1; d++)
        at_buf_printf(c, " ||\n      a->%s.stride[%d] %% %d", a->name, d, 16 / es);
      at_buf_puts(c, ")\n    return 0;\n");
    }
    at_buf_puts(c, "  return 1;\n}\n\n");
  }
  at_buf_printf(c, "static int image_%s_(int entry, const tuned_%s_%s_args *a) {\n", K, P, K);
  at_buf_puts(c, "  (void)a;\n  switch (entry) {\n");
  for (int i = kn->first; i < kn->first + kn->n; i++)
    if (g->e[i].aligned)
      at_buf_printf(c, "  case %d:\n    return promise_%d(a) ? %d : generic_image_[%d];\n", i, i, i,
                    i);
  at_buf_puts(c, "  default:\n    return entry;\n  }\n}\n\n");
}

/* ---- the generated files --------------------------------------------------------------------- */

static void upper(at_buf *b, const char *s) {
  for (; *s; s++)
    at_buf_printf(b, "%c", toupper((unsigned char)*s));
}

/* The device key's parts: name|sm_MN|Ssm|...; -1 where the key does not say. */
static void device_parts(const char *key, char *name, size_t cap, int *major, int *minor,
                         int *sms) {
  *major = *minor = *sms = -1;
  const char *bar = strchr(key, '|');
  size_t n = bar ? (size_t)(bar - key) : strlen(key);
  snprintf(name, cap, "%.*s", (int)(n < cap ? n : cap - 1), key);
  for (const char *p = bar; p && *p; p = strchr(p + 1, '|')) {
    const char *s = p + 1, *end = strchr(s, '|');
    size_t len = end ? (size_t)(end - s) : strlen(s);
    char part[32];
    if (len == 0 || len >= sizeof part)
      continue;
    memcpy(part, s, len);
    part[len] = 0;
    int64_t v;
    if (!strncmp(part, "sm_", 3) && parse_int(part + 3, &v) && v >= 10 && v < 10000) {
      *major = (int)(v / 10);
      *minor = (int)(v % 10);
    } else if (len > 2 && !strcmp(part + len - 2, "sm")) {
      part[len - 2] = 0;
      if (parse_int(part, &v) && v > 0 && v < 1000000)
        *sms = (int)v;
    }
  }
}

static void emit_header(gen *g) {
  at_buf *h = g->h;
  const char *P = g->P;
  at_buf_printf(
      h, "/* Generated by `tilec export`: tuned kernels for one device, with their cubins.\n"
         " * Do not edit; export again. Needs only the CUDA driver API (docs/export.md). */\n"
         "#ifndef TUNED_");
  upper(h, P);
  at_buf_puts(h, "_H\n#define TUNED_");
  upper(h, P);
  at_buf_puts(h, "_H\n\n/* cuda.h itself is not -pedantic clean in C99 (unnamed unions). */\n"
                 "#if defined(__GNUC__)\n#pragma GCC diagnostic push\n"
                 "#pragma GCC diagnostic ignored \"-Wpedantic\"\n#endif\n#include <cuda.h>\n"
                 "#if defined(__GNUC__)\n#pragma GCC diagnostic pop\n#endif\n"
                 "#include <stddef.h>\n#include <stdint.h>\n\n");
  at_buf_puts(h, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
  at_buf_printf(h, "/* The device key and toolchain the entries were tuned with. */\n");
  at_buf_printf(
      h, "extern const char tuned_%s_device[];\nextern const char tuned_%s_toolchain[];\n", P, P);
  at_buf_printf(h, "enum { TUNED_");
  upper(h, P);
  at_buf_printf(h, "_ENTRIES = %d };\n\n", g->ne);
  at_buf_printf(h,
                "/* A tensor argument: device address, shape and strides (elements), as many as\n"
                " * the argument's rank. */\n"
                "typedef struct tuned_%s_tensor {\n  CUdeviceptr ptr;\n  int64_t shape[4];\n"
                "  int64_t stride[4];\n} tuned_%s_tensor;\n\n",
                P, P);
  at_buf_printf(h,
                "/* The packed parameters of one launch (the tilec kernel ABI): parameter i has\n"
                " * psize[i] bytes at byte offset[i] of words; grid is the launch grid. */\n"
                "typedef struct tuned_%s_params {\n  uint64_t words[512];\n  size_t size;\n"
                "  int count;\n  uint16_t offset[576];\n  uint8_t psize[576];\n"
                "  uint32_t grid[3];\n} tuned_%s_params;\n\n",
                P, P);
  at_buf_printf(
      h,
      "/* What an entry is: kernel, bucket and config as in the database. aligned: the\n"
      " * cubin is the aligned variant, compiled for tensors whose address is a\n"
      " * multiple of 16 bytes, last stride 1, other strides and last extent multiples\n"
      " * of 16 bytes; a launch whose tensors break that takes the entry's generic cubin\n"
      " * (generic_cubin_size bytes), or fails with CUDA_ERROR_INVALID_VALUE when it has\n"
      " * none (generic_cubin_size 0). */\n"
      "typedef struct tuned_%s_entry_info {\n  const char *kernel, *bucket, *config, "
      "*entry;\n  unsigned threads, smem_bytes;\n  size_t cubin_size;\n"
      "  int aligned;\n  size_t generic_cubin_size;\n"
      "} tuned_%s_entry_info;\n\n",
      P, P);
  at_buf_printf(h,
                "/* The entry's description; NULL when entry is out of range. */\n"
                "const tuned_%s_entry_info *tuned_%s_entry(int entry);\n\n"
                "/* Compares dev's name, compute capability and SM count with the device key:\n"
                " * CUDA_ERROR_INVALID_DEVICE on a mismatch unless allow_mismatch. */\n"
                "CUresult tuned_%s_check_device(CUdevice dev, int allow_mismatch);\n\n"
                "/* Unloads every module loaded so far (not while launches may run). */\n"
                "CUresult tuned_%s_unload(void);\n\n",
                P, P, P, P);
  for (int ki = 0; ki < g->nk; ki++) {
    const kern *kn = &g->ks[ki];
    const char *K = kn->name;
    const ir_kernel *k = g->e[kn->first].spec;
    at_buf_printf(h, "/* ---- %s: entries %d .. %d */\n\n", K, kn->first, kn->first + kn->n - 1);
    for (int fi = 0; fi < kn->nf; fi++)
      if (kn->f[fi].kind != F_ANY) {
        at_buf_puts(h, "#define TUNED_");
        upper(h, P);
        at_buf_puts(h, "_");
        upper(h, K);
        at_buf_printf(h, "_HAS_%s 1 /* the problem has this member */\n", kn->f[fi].name);
      }
    at_buf_printf(
        h,
        "/* The problem, as the keys of its tuning bucket (values as given to\n"
        " * `tilec tune --shape`; dtype as --dtype). */\ntypedef struct tuned_%s_%s_problem {\n",
        P, K);
    int members = 0;
    for (int fi = 0; fi < kn->nf; fi++)
      if (kn->f[fi].kind != F_ANY) {
        at_buf_printf(h, "  %s%s;\n", kn->f[fi].kind == F_INT ? "int64_t " : "const char *",
                      kn->f[fi].name);
        members++;
      }
    if (!members)
      at_buf_puts(h, "  int unused_;\n");
    at_buf_printf(h, "} tuned_%s_%s_problem;\n\n", P, K);
    at_buf_printf(h,
                  "/* The launch arguments (const parameters are fixed by the entry). */\n"
                  "typedef struct tuned_%s_%s_args {\n",
                  P, K);
    int nargs = 0;
    for (int ai = 0; ai < k->nargs; ai++) {
      const ir_arg *a = &k->args[ai];
      if (a->kind == ARG_TENSOR)
        at_buf_printf(h, "  tuned_%s_tensor %s; /* rank %d */\n", P, a->name, a->value->ty->rank);
      else if (a->kind == ARG_PTR)
        at_buf_printf(h, "  CUdeviceptr %s;\n", a->name);
      else if (runtime_scalar(k, a)) {
        int size;
        ir_kind ty = k->syms[a->sym].ty;
        at_buf_printf(h, "  %s %s;%s\n", scalar_ctype(ty, &size), a->name,
                      ty == IR_F16 || ty == IR_BF16 || ty == IR_F8E4M3 || ty == IR_F8E5M2
                          ? " /* the value's bits */"
                          : "");
      } else
        continue;
      nargs++;
    }
    if (!nargs)
      at_buf_puts(h, "  int unused_;\n");
    at_buf_printf(h, "} tuned_%s_%s_args;\n\n", P, K);
    at_buf_printf(
        h,
        "/* The entry for p: the one of p's bucket; else, unless exact_only, the nearest\n"
        " * one among the entries with the same code-fixing keys; -1 when none. Pure. */\n"
        "int tuned_%s_%s_select(const tuned_%s_%s_problem *p, int exact_only);\n"
        "/* Checks a against the entry and packs its parameters and grid. Pure. */\n"
        "CUresult tuned_%s_%s_pack(int entry, const tuned_%s_%s_args *a, "
        "tuned_%s_params *out);\n"
        "/* Packs, loads the entry's module on first use (thread-safe) and launches it\n"
        " * on stream in the current context (an aligned entry: the module for a's\n"
        " * alignment, see tuned_%s_entry_info). */\n"
        "CUresult tuned_%s_%s_launch(int entry, const tuned_%s_%s_args *a, "
        "CUstream stream);\n\n",
        P, K, P, K, P, K, P, K, P, P, P, K, P, K);
  }
  at_buf_puts(h, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

/* Helpers every generated source carries: checked int64 arithmetic (ir_expr_eval's rules),
 * parameter packing (rt_params_pack's alignment and byte order), bucket rules and distances. */
static const char *const helpers =
    "#define TUNED_PARAM_BYTES_ 4096\n"
    "#if defined(__GNUC__)\n#define UNUSED_ __attribute__((unused))\n#else\n#define "
    "UNUSED_\n#endif\n\n"
    "UNUSED_ static int64_t add_(int *bad, int64_t x, int64_t y) {\n"
    "  if ((y > 0 && x > INT64_MAX - y) || (y < 0 && x < INT64_MIN - y)) {\n"
    "    *bad = 1;\n    return 0;\n  }\n  return x + y;\n}\n\n"
    "UNUSED_ static int64_t sub_(int *bad, int64_t x, int64_t y) {\n"
    "  if ((y < 0 && x > INT64_MAX + y) || (y > 0 && x < INT64_MIN + y)) {\n"
    "    *bad = 1;\n    return 0;\n  }\n  return x - y;\n}\n\n"
    "UNUSED_ static int64_t neg_(int *bad, int64_t x) { return sub_(bad, 0, x); }\n\n"
    "UNUSED_ static int64_t mul_(int *bad, int64_t x, int64_t y) {\n"
    "  if (x != 0 && y != 0 &&\n"
    "      ((x > 0 && y > 0 && x > INT64_MAX / y) || (x < 0 && y < 0 && x < INT64_MAX / y) ||\n"
    "       (x > 0 && y < 0 && y < INT64_MIN / x) || (x < 0 && y > 0 && x < INT64_MIN / y))) {\n"
    "    *bad = 1;\n    return 0;\n  }\n  return x * y;\n}\n\n"
    "UNUSED_ static int divisible_(int *bad, int64_t x, int64_t y) {\n"
    "  if (y == 0 || (x == INT64_MIN && y == -1)) {\n    *bad = 1;\n    return 0;\n  }\n"
    "  return 1;\n}\n\n"
    "UNUSED_ static int64_t div_(int *bad, int64_t x, int64_t y) {\n"
    "  return divisible_(bad, x, y) ? x / y : 0;\n}\n\n"
    "UNUSED_ static int64_t mod_(int *bad, int64_t x, int64_t y) {\n"
    "  return divisible_(bad, x, y) ? x % y : 0;\n}\n\n"
    "UNUSED_ static int64_t cdiv_(int *bad, int64_t x, int64_t y) {\n"
    "  return divisible_(bad, x, y) ? x / y + ((x % y != 0) && ((x < 0) == (y < 0))) : 0;\n}\n\n"
    "UNUSED_ static int64_t min_(int *bad, int64_t x, int64_t y) {\n  (void)bad;\n"
    "  return x < y ? x : y;\n}\n\n"
    "UNUSED_ static int64_t max_(int *bad, int64_t x, int64_t y) {\n  (void)bad;\n"
    "  return x > y ? x : y;\n}\n\n"
    "/* Appends the low size bytes of bits, little-endian, at the next multiple of size. */\n"
    "UNUSED_ static void put_(TUNED_PARAMS_ *p, uint64_t bits, size_t size) {\n"
    "  size_t off = (p->size + size - 1) & ~(size - 1), i;\n"
    "  unsigned char *b = (unsigned char *)p->words;\n"
    "  if (p->count >= 576 || off + size > TUNED_PARAM_BYTES_) {\n"
    "    p->size = TUNED_PARAM_BYTES_ + 1;\n    return;\n  }\n"
    "  for (i = 0; i < size; i++)\n    b[off + i] = (unsigned char)(bits >> (8 * i));\n"
    "  p->offset[p->count] = (uint16_t)off;\n  p->psize[p->count] = (uint8_t)size;\n"
    "  p->count++;\n  p->size = off + size;\n}\n\n"
    "/* A problem value's bucket under a rule (0 exact, 1 pow2, 2 multiple of arg), as\n"
    " * at_bucket_key computes it: tag 0 raw value, 1 pow2:N, 2 multiple(arg):N. */\n"
    "UNUSED_ static void bucket_(int64_t v, int rule, int64_t arg, int *tag, int64_t *out) {\n"
    "  *tag = 0;\n  *out = v;\n"
    "  if (rule == 1 && v >= 1 && v <= (INT64_C(1) << 62)) {\n"
    "    int64_t p = 1;\n    while (p < v)\n      p <<= 1;\n    *tag = 1;\n    *out = p;\n"
    "  } else if (rule == 2 && v >= 1 && v <= INT64_MAX - arg) {\n"
    "    *tag = 2;\n    *out = (v + arg - 1) / arg * arg;\n  }\n}\n\n"
    "/* 2^distance of one key (at_bucket_distance: |log2 a - log2 b| for numbers, 8 otherwise);\n"
    " * *eq is cleared unless the two bucket values are the same. */\n"
    "UNUSED_ static double dist_int_(int tag, int64_t arg, int64_t v, int etag, int64_t earg, "
    "int64_t ev,\n"
    "                        int *eq) {\n"
    "  double x = (double)v, y = (double)ev;\n"
    "  if (tag == etag && v == ev && (tag != 2 || arg == earg))\n    return 1;\n"
    "  *eq = 0;\n"
    "  if (etag < 0 || etag > 2 || v <= 0 || ev <= 0)\n    return 256;\n"
    "  return x > y ? x / y : y / x;\n}\n\n"
    "/* The same for texts; a ',' in the problem's value stands for ';' in the bucket. */\n"
    "UNUSED_ static double dist_str_(const char *s, const char *es, int *eq) {\n"
    "  if (s && es) {\n"
    "    while (*s && *es && (*s == *es || (*s == ',' && *es == ';'))) {\n"
    "      s++;\n      es++;\n    }\n"
    "    if (!*s && !*es)\n      return 1;\n  }\n"
    "  *eq = 0;\n  return 256;\n}\n\n";

static void emit_bytes(at_buf *c, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    at_buf_printf(c, "%s0x%02x,%s", i % 16 ? " " : "  ", p[i],
                  i % 16 == 15 || i + 1 == n ? "\n" : "");
}

static at_status emit_select(gen *g, const kern *kn) {
  at_buf *c = g->c;
  const char *P = g->P, *K = kn->name;
  int n = kn->n;
  for (int fi = 0; fi < kn->nf; fi++) {
    const field *f = &kn->f[fi];
    if (f->kind == F_STR) {
      at_buf_printf(c, "static const char *const %s__%s_[%d] = {\n", K, f->name, n);
      for (int i = kn->first; i < kn->first + n; i++) {
        at_buf_puts(c, "  ");
        if (g->e[i].at[fi].tag == V_ABSENT)
          at_buf_puts(c, "NULL");
        else
          c_string(c, g->e[i].at[fi].text);
        at_buf_puts(c, ",\n");
      }
      at_buf_puts(c, "};\n");
      continue;
    }
    /* F_INT and F_ANY: tag, step and number of each entry's value (tag -1: no such key). */
    at_buf_printf(c, "static const struct { int tag; int64_t arg, v; } %s__%s_[%d] = {\n", K,
                  f->name, n);
    for (int i = kn->first; i < kn->first + n; i++) {
      const item *it = &g->e[i].at[fi];
      int tag = it->tag == V_ABSENT                    ? -1
                : f->kind == F_ANY                     ? (it->tag == V_ANY ? 0 : -1)
                : it->tag == V_STR || it->tag == V_ANY ? 4
                                                       : (int)it->tag;
      at_buf_printf(c, "  {%d, INT64_C(%lld), INT64_C(%lld)},\n", tag, (long long)it->arg,
                    (long long)it->v);
    }
    at_buf_puts(c, "};\n");
  }
  at_buf_printf(c, "\nint tuned_%s_%s_select(const tuned_%s_%s_problem *p, int exact_only) {\n", P,
                K, P, K);
  at_buf_puts(c, "  int i, best = -1;\n  double best_d = 0;\n");
  for (int fi = 0; fi < kn->nf; fi++)
    if (kn->f[fi].kind == F_INT)
      at_buf_printf(c, "  int t_%s;\n  int64_t b_%s;\n", kn->f[fi].name, kn->f[fi].name);
  at_buf_puts(c, "  if (!p)\n    return -1;\n");
  for (int fi = 0; fi < kn->nf; fi++) {
    const field *f = &kn->f[fi];
    if (f->kind == F_INT)
      at_buf_printf(c, "  bucket_(p->%s, %d, INT64_C(%lld), &t_%s, &b_%s);\n", f->name, f->rule,
                    (long long)f->rule_arg, f->name, f->name);
  }
  at_buf_printf(c,
                "  for (i = 0; i < %d; i++) {\n    int eq = 1, same = 1, fix = 1;\n    double d = "
                "1;\n    (void)fix;\n",
                n);
  for (int fi = 0; fi < kn->nf; fi++) {
    const field *f = &kn->f[fi];
    at_buf_puts(c, "    fix = 1;\n");
    if (f->kind == F_STR)
      at_buf_printf(c, "    d *= dist_str_(p->%s, %s__%s_[i], &fix);\n", f->name, K, f->name);
    else if (f->kind == F_INT)
      at_buf_printf(c,
                    "    d *= dist_int_(t_%s, INT64_C(%lld), b_%s, %s__%s_[i].tag, %s__%s_[i].arg, "
                    "%s__%s_[i].v, &fix);\n",
                    f->name, (long long)f->rule_arg, f->name, K, f->name, K, f->name, K, f->name);
    else
      at_buf_printf(c, "    if (%s__%s_[i].tag != 0) {\n      fix = 0;\n      d *= 256;\n    }\n",
                    K, f->name);
    at_buf_printf(c, "    eq &= fix;\n%s", f->fixing ? "    same &= fix;\n" : "");
  }
  at_buf_printf(c,
                "    if (eq)\n      return %d + i;\n"
                "    if (!exact_only && same && (best < 0 || d < best_d)) {\n"
                "      best = %d + i;\n      best_d = d;\n    }\n  }\n  return best;\n}\n\n",
                kn->first, kn->first);
  return AT_OK;
}

static at_status emit_source(gen *g) {
  at_buf *c = g->c;
  const char *P = g->P;
  at_buf_printf(
      c,
      "/* Generated by `tilec export`: %d tuned entries of %d kernels, with their cubins.\n"
      " * Do not edit; export again. C99; needs only the CUDA driver API. */\n",
      g->ne, g->nk);
  at_buf_printf(c, "#include \"%s\"\n\n#include <string.h>\n\n",
                g->o->header ? g->o->header : "tuned.h");
  at_buf_printf(c, "#define TUNED_PARAMS_ tuned_%s_params\n", P);
  at_buf_puts(c, helpers);
  const char *dev = g->rows.r[0].key.device;
  at_buf_printf(c, "const char tuned_%s_device[] = ", P);
  c_string(c, dev);
  at_buf_printf(c, ";\nconst char tuned_%s_toolchain[] = ", P);
  c_string(c, g->e[0].row->key.toolchain);
  at_buf_puts(c, ";\n\n");
  for (int i = 0; i < g->ne; i++) {
    at_buf_printf(c, "static const unsigned char cubin_%d_[%zu] = {\n", i, g->e[i].img.size);
    emit_bytes(c, g->e[i].img.cubin, g->e[i].img.size);
    at_buf_puts(c, "};\n");
    if (g->e[i].generic.cubin) {
      at_buf_printf(c, "static const unsigned char generic_%d_[%zu] = {\n", i,
                    g->e[i].generic.size);
      emit_bytes(c, g->e[i].generic.cubin, g->e[i].generic.size);
      at_buf_puts(c, "};\n");
    }
  }
  at_buf_printf(c, "\nstatic const tuned_%s_entry_info info_[%d] = {\n", P, g->ne);
  for (int i = 0; i < g->ne; i++) {
    const entry *en = &g->e[i];
    at_buf_puts(c, "  {");
    c_string(c, en->row->key.kernel);
    at_buf_puts(c, ", ");
    c_string(c, en->row->key.bucket);
    at_buf_puts(c, ", ");
    c_string(c, en->row->config);
    at_buf_puts(c, ", ");
    c_string(c, en->img.entry_name);
    at_buf_printf(c, ", %d, %d, %zu, %d, %zu},\n", en->img.threads, en->img.smem, en->img.size,
                  en->aligned, en->generic.cubin ? en->generic.size : 0);
  }
  /* The images: entry i's cubin is image i; the generic cubins of aligned entries follow. */
  int ni = g->ne;
  at_buf_puts(c, "};\n\n/* Every cubin: data, entry point, CTA size, dynamic shared memory. */\n"
                 "static const struct image_ {\n  const unsigned char *data;\n"
                 "  const char *entry;\n  unsigned threads, smem_bytes;\n} images_[] = {\n");
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < g->ne; i++) {
      const image *im = pass ? &g->e[i].generic : &g->e[i].img;
      if (!im->cubin)
        continue;
      at_buf_printf(c, "  {%s_%d_, ", pass ? "generic" : "cubin", i);
      c_string(c, im->entry_name);
      at_buf_printf(c, ", %d, %d},\n", im->threads, im->smem);
      ni += pass;
    }
  at_buf_printf(c,
                "};\n\n/* The image of entry i's generic cubin; -1 when none. */\n"
                "UNUSED_ static const int generic_image_[%d] = {",
                g->ne);
  for (int i = 0, next = g->ne; i < g->ne; i++)
    at_buf_printf(c, "%s%d", i ? ", " : "", g->e[i].generic.cubin ? next++ : -1);
  at_buf_puts(c, "};\n\n");
  g->nimages = ni;
  at_buf_printf(c,
                "const tuned_%s_entry_info *tuned_%s_entry(int entry) {\n"
                "  return entry >= 0 && entry < %d ? &info_[entry] : NULL;\n}\n\n",
                P, P, g->ne);

  char name[256];
  int major, minor, sms;
  device_parts(dev, name, sizeof name, &major, &minor, &sms);
  at_buf_printf(
      c,
      "CUresult tuned_%s_check_device(CUdevice dev, int allow_mismatch) {\n"
      "  char name[256];\n  int major = 0, minor = 0, sms = 0, same;\n"
      "  CUresult r = cuDeviceGetName(name, (int)sizeof name, dev);\n"
      "  if (!r)\n"
      "    r = cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "
      "dev);\n"
      "  if (!r)\n"
      "    r = cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "
      "dev);\n"
      "  if (!r)\n"
      "    r = cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);\n"
      "  if (r)\n    return r;\n  name[sizeof name - 1] = 0;\n  same = strcmp(name, ",
      P);
  c_string(c, name);
  at_buf_printf(
      c,
      ") == 0 && (%d < 0 || (major == %d && minor == %d)) && (%d < 0 || sms == %d);\n"
      "  return same || allow_mismatch ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;\n}\n\n",
      major, major, minor, sms, sms);

  at_buf_printf(c,
                "/* Loaded modules: a function is published with one compare-and-swap, so\n"
                " * threads racing on a first launch each load the module and the losers unload\n"
                " * theirs (no lock, no spinning). */\n"
                "static CUmodule modules_[%d];\nstatic CUfunction functions_[%d];\n"
                "static unsigned dyn_smem_[%d];\n\n",
                g->nimages, g->nimages, g->nimages);
  at_buf_puts(
      c,
      "static CUresult function_(int i, CUfunction *out, unsigned *dyn) {\n"
      "  CUmodule m = NULL;\n  CUfunction f = __atomic_load_n(&functions_[i], __ATOMIC_ACQUIRE), "
      "expected = NULL;\n"
      "  int static_smem = 0;\n  unsigned want;\n  CUresult r;\n"
      "  if (f) {\n    *out = f;\n    *dyn = __atomic_load_n(&dyn_smem_[i], __ATOMIC_RELAXED);\n"
      "    return CUDA_SUCCESS;\n  }\n"
      "  r = cuModuleLoadData(&m, images_[i].data);\n"
      "  if (!r)\n    r = cuModuleGetFunction(&f, m, images_[i].entry);\n"
      "  if (!r)\n    r = cuFuncGetAttribute(&static_smem, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, "
      "f);\n"
      "  want = images_[i].smem_bytes > (unsigned)static_smem ? images_[i].smem_bytes - "
      "(unsigned)static_smem : 0;\n"
      "  if (!r && want > 48 * 1024)\n"
      "    r = cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)want);\n"
      "  if (r) {\n    if (m)\n      cuModuleUnload(m);\n    return r;\n  }\n"
      "  __atomic_store_n(&dyn_smem_[i], want, __ATOMIC_RELAXED);\n"
      "  if (__atomic_compare_exchange_n(&functions_[i], &expected, f, 0, __ATOMIC_ACQ_REL,\n"
      "                                  __ATOMIC_ACQUIRE)) {\n"
      "    __atomic_store_n(&modules_[i], m, __ATOMIC_RELEASE);\n  } else {\n"
      "    cuModuleUnload(m);\n    f = expected;\n  }\n"
      "  *out = f;\n  *dyn = want;\n  return CUDA_SUCCESS;\n}\n\n");
  at_buf_printf(c,
                "CUresult tuned_%s_unload(void) {\n  CUresult first = CUDA_SUCCESS;\n  int i;\n"
                "  for (i = 0; i < %d; i++) {\n"
                "    CUmodule m = __atomic_exchange_n(&modules_[i], NULL, __ATOMIC_ACQ_REL);\n"
                "    __atomic_store_n(&functions_[i], NULL, __ATOMIC_RELEASE);\n"
                "    if (m) {\n      CUresult r = cuModuleUnload(m);\n"
                "      if (r && !first)\n        first = r;\n    }\n  }\n  return first;\n}\n\n",
                P, g->nimages);

  for (int ki = 0; ki < g->nk; ki++) {
    const kern *kn = &g->ks[ki];
    const char *K = kn->name;
    at_buf_printf(c, "/* ---- %s */\n\n", K);
    at_status s = emit_select(g, kn);
    if (s)
      return s;
    for (int i = kn->first; i < kn->first + kn->n; i++)
      if ((s = emit_pack(g, kn, i)))
        return s;
    emit_image_choice(g, kn);
    at_buf_printf(c,
                  "CUresult tuned_%s_%s_pack(int entry, const tuned_%s_%s_args *a, "
                  "tuned_%s_params *out) {\n"
                  "  if (!a || !out)\n    return CUDA_ERROR_INVALID_VALUE;\n"
                  "  switch (entry) {\n",
                  P, K, P, K, P);
    for (int i = kn->first; i < kn->first + kn->n; i++)
      at_buf_printf(c, "  case %d:\n    return pack_%d(a, out);\n", i, i);
    at_buf_puts(c, "  default:\n    return CUDA_ERROR_INVALID_VALUE;\n  }\n}\n\n");
    at_buf_printf(
        c,
        "CUresult tuned_%s_%s_launch(int entry, const tuned_%s_%s_args *a, CUstream stream) {\n"
        "  tuned_%s_params p;\n  void *ptrs[576];\n  CUfunction f;\n  unsigned dyn;\n  int i, "
        "img;\n"
        "  CUresult r = tuned_%s_%s_pack(entry, a, &p);\n"
        "  if (r)\n    return r;\n"
        "  if (!p.grid[0] || !p.grid[1] || !p.grid[2])\n    return CUDA_SUCCESS; /* empty problem "
        "*/\n"
        "  if ((img = image_%s_(entry, a)) < 0)\n"
        "    return CUDA_ERROR_INVALID_VALUE; /* the promise is broken and no generic code */\n"
        "  if ((r = function_(img, &f, &dyn)))\n    return r;\n"
        "  for (i = 0; i < p.count; i++)\n    ptrs[i] = (unsigned char *)p.words + p.offset[i];\n"
        "  return cuLaunchKernel(f, p.grid[0], p.grid[1], p.grid[2], images_[img].threads, 1, 1, "
        "dyn,\n                        stream, ptrs, NULL);\n}\n\n",
        P, K, P, K, P, P, K, K);
  }
  return AT_OK;
}

/* ---- the driver ---------------------------------------------------------------------------------
 */

static bool wanted(const at_export_opts *o, const char *kernel) {
  if (!o->kernels || o->nkernels <= 0)
    return true;
  for (int i = 0; i < o->nkernels; i++)
    if (o->kernels[i] && !strcmp(o->kernels[i], kernel))
      return true;
  return false;
}

static at_status collect(gen *g, at_db *db) {
  const at_export_opts *o = g->o;
  at_key pat = {.device = o->device, .toolchain = o->toolchain};
  at_status s = at_db_winners(db, &pat, &g->rows, g->err);
  if (s)
    return s;
  g->e = calloc((size_t)(g->rows.n ? g->rows.n : 1), sizeof *g->e);
  g->ks = calloc((size_t)(g->rows.n ? g->rows.n : 1), sizeof *g->ks);
  if (!g->e || !g->ks)
    return at_fail(g->err, AT_ERR_OOM, "out of memory");
  const char *tool = NULL;
  for (int i = 0; i < g->rows.n; i++) {
    const at_result *r = &g->rows.r[i];
    if (!wanted(o, r->key.kernel))
      continue;
    if (tool && strcmp(tool, r->key.toolchain))
      return at_fail(g->err, AT_ERR_ARG,
                     "the rows have several toolchains ('%s', '%s'): choose one with --toolchain",
                     tool, r->key.toolchain);
    tool = r->key.toolchain;
    if (!g->nk || strcmp(g->ks[g->nk - 1].name, r->key.kernel))
      g->ks[g->nk++] = (kern){.name = r->key.kernel, .first = g->ne};
    g->ks[g->nk - 1].n++;
    g->e[g->ne++].row = r;
  }
  for (int i = 0; o->kernels && i < o->nkernels; i++) {
    if (!o->kernels[i])
      return at_fail(g->err, AT_ERR_ARG, "at_export: kernel name %d is NULL", i);
    bool found = false;
    for (int j = 0; j < g->nk; j++)
      found |= !strcmp(g->ks[j].name, o->kernels[i]);
    if (!found)
      return at_fail(g->err, AT_ERR_ARG, "kernel '%s' has no tuned winner for device '%s'%s%s",
                     o->kernels[i], o->device, o->toolchain ? " and toolchain " : "",
                     o->toolchain ? o->toolchain : "");
  }
  if (!g->ne)
    return at_fail(g->err, AT_ERR_ARG, "no tuned winner for device '%s'%s%s", o->device,
                   o->toolchain ? " and toolchain " : "", o->toolchain ? o->toolchain : "");
  return AT_OK;
}

at_status at_export(at_db *db, const at_export_opts *o, at_buf *c_out, at_buf *h_out,
                    at_export_stats *st, at_err *e) {
  if (st)
    memset(st, 0, sizeof *st);
  if (!db || !o || !o->device || !c_out || !h_out)
    return at_fail(e, AT_ERR_ARG, "at_export: a database, a device and two buffers are needed");
  gen g = {.o = o, .P = o->prefix ? o->prefix : "db", .c = c_out, .h = h_out, .err = e};
  at_status s = check_name(&g, "the prefix", g.P);
  if (!s && (s = check_text(&g, "the device key", o->device)) == AT_OK)
    s = collect(&g, db);
  if (!s)
    s = check_text(&g, "the toolchain", g.e[0].row->key.toolchain);
  for (int ki = 0; !s && ki < g.nk; ki++) {
    kern *kn = &g.ks[ki];
    if ((s = check_name(&g, "kernel name", kn->name)) || (s = load_kernel(&g, kn)))
      break;
    for (int i = kn->first; !s && i < kn->first + kn->n; i++)
      s = load_entry(&g, db, kn, &g.e[i]);
    if (!s)
      s = make_fields(&g, kn);
    const ir_kernel *k0 = kn->k;
    for (int ai = 0; !s && ai < k0->nargs; ai++) {
      const ir_arg *a = &k0->args[ai];
      int size;
      if (a->kind == ARG_SCALAR && runtime_scalar(k0, a) &&
          !scalar_ctype(k0->syms[a->sym].ty, &size))
        s = at_fail(e, AT_ERR_ARG, "kernel '%s': parameter '%s' has no kernel ABI", kn->name,
                    a->name);
      else
        s = check_name(&g, "argument", a->name);
    }
  }
  if (!s) {
    emit_header(&g);
    s = emit_source(&g);
  }
  if (!s && (c_out->oom || h_out->oom))
    s = at_fail(e, AT_ERR_OOM, "out of memory");
  if (!s && st) {
    st->kernels = g.nk;
    st->entries = g.ne;
    for (int i = 0; i < g.ne; i++) {
      st->cubin_bytes += g.e[i].img.size + (g.e[i].generic.cubin ? g.e[i].generic.size : 0);
      st->aligned += g.e[i].aligned;
      st->aligned_without_generic += g.e[i].aligned && !g.e[i].generic.cubin;
    }
  }
  for (int i = 0; i < g.ne; i++) {
    ir_kernel_free(g.e[i].spec);
    free(g.e[i].img.cubin);
    free(g.e[i].img.entry_name);
    free(g.e[i].generic.cubin);
    free(g.e[i].generic.entry_name);
    free(g.e[i].bucket_copy);
  }
  for (int i = 0; i < g.nk; i++)
    ir_kernel_free(g.ks[i].k);
  free(g.e);
  free(g.ks);
  at_rows_free(&g.rows);
  return s;
}
