/* ir/ir.h — every type of the tile IR, and the entry points of the ir/ library.
 *
 * A kernel (ir_kernel) is a list of symbols (tunables, problem parameters, tensor dims), type
 * variables, launch arguments, a grid and a body. The body is a block of ops in SSA form; for/if
 * ops own nested blocks. Types may be symbolic (tile<BM, BK, TA>): specialization binds
 * tunables, type variables and const parameters and yields a kernel whose types are concrete.
 * Everything a kernel points to lives in its arena and is freed at once by ir_kernel_free.
 *
 * Pipeline: text --ir_parse--> kernel --ir_verify--> --ir_specialize--> concrete kernel
 *           --ir_interp_run (CPU) / lowering (compiler/, codegen/).
 * ir/ depends on libc only.
 */
#ifndef TILEC_IR_H
#define TILEC_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- status and diagnostics ------------------------------------------------------------ */

typedef enum {
  IR_OK = 0,
  IR_ERR_PARSE,   /* malformed text */
  IR_ERR_VERIFY,  /* well-formed text, invalid kernel (types, shapes, dominance) */
  IR_ERR_CONFIG,  /* a config or problem violates the kernel's domains or constraints */
  IR_ERR_LIMIT,   /* a limit against hostile input was hit */
  IR_ERR_RUNTIME, /* the interpreter met an error (bad argument, out-of-bounds pointer) */
  IR_ERR_IO,      /* a file could not be read or written */
} ir_status;

/* A diagnostic: the first error met, fully formatted ("file:line:col: error: msg\n  src\n
 * ^"). Callers own the struct (usually on the stack); functions fill it when they fail. */
typedef struct ir_diag {
  ir_status status;
  char msg[2048];
} ir_diag;

/* A source location; file points into the kernel's arena (or a static string). */
typedef struct ir_loc {
  const char *file;
  int line, col; /* 1-based; 0 when unknown (built by the C builder) */
} ir_loc;

/* Formats msg into d with the location and, when src is non-NULL, the source line and a caret.
 * Returns status so callers can `return ir_error(...)`. */
ir_status ir_error(ir_diag *d, ir_status status, ir_loc loc, const char *src, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* ---- limits against hostile input (docs/ir.md, "Limits") -------------------------------- */

enum {
  IR_MAX_FILE_BYTES = 1 << 20, /* 1 MiB of source text */
  IR_MAX_OPS = 100000,         /* ops in one kernel */
  IR_MAX_DEPTH = 32,           /* nested regions and expression parentheses */
  IR_MAX_RANK = 4,             /* tile and tensor rank */
  IR_MAX_TILE_ELEMS = 1 << 20, /* elements of one tile after specialization */
  IR_MAX_SYMS = 256,           /* symbols (tunables, parameters, dims) */
  IR_MAX_ARGS = 64,            /* launch arguments */
  IR_MAX_DOMAIN = 64,          /* values in one tunable domain */
  IR_MAX_OPERANDS = 256,       /* operands of one op (yield, for) */
  IR_MAX_NAME = 128,           /* identifier length */
};

/* ---- arena ------------------------------------------------------------------------------ */

/* Bump allocator; memory is zeroed; everything is freed by ir_arena_free. Host out-of-memory
 * aborts the process (documented in docs/ir.md): the IR cannot continue without memory. */
typedef struct ir_arena ir_arena;
ir_arena *ir_arena_new(void);
void ir_arena_free(ir_arena *a); /* NULL is a no-op */
void *ir_alloc(ir_arena *a, size_t size);
char *ir_strdup(ir_arena *a, const char *s);
char *ir_strndup(ir_arena *a, const char *s, size_t n);

/* ---- types ------------------------------------------------------------------------------ */

/* Scalar kinds first, in this order (tables in ir/type.c index by it). */
typedef enum {
  IR_VOID = 0,
  IR_I1,
  IR_I8,
  IR_I16,
  IR_I32,
  IR_I64,
  IR_F16,
  IR_BF16,
  IR_F32,
  IR_F64,
  IR_F8E4M3,
  IR_F8E5M2,
  IR_NSCALAR,          /* count of the above */
  IR_PTR = IR_NSCALAR, /* ptr<elem> (global memory) */
  IR_TILE,             /* tile<d0, ..., elem>; elem is a scalar or a ptr */
  IR_TENSOR,           /* tensor<elem>[d0, ...]: kernel arguments only */
  IR_TVAR,             /* a type variable of the kernel (types { TA in [...] }) */
} ir_kind;

typedef struct ir_expr ir_expr;

/* Types are immutable once built; share them freely within one arena. */
typedef struct ir_type {
  ir_kind kind;
  const struct ir_type *elem; /* PTR, TILE, TENSOR */
  int rank;                   /* TILE, TENSOR */
  ir_expr *dims[IR_MAX_RANK]; /* TILE: exprs; TENSOR: EX_SYM (a dim symbol) or EX_INT */
  int tvar;                   /* TVAR: index into kernel->tvars */
} ir_type;

/* Singleton scalar types (static storage), indexed by ir_kind < IR_NSCALAR. */
const ir_type *ir_scalar_type(ir_kind k);
const char *ir_kind_name(ir_kind k); /* "bf16", "ptr", "tile", ... */
bool ir_kind_is_float(ir_kind k);
bool ir_kind_is_int(ir_kind k); /* includes i1 */
int ir_kind_bits(ir_kind k);    /* storage bits of a scalar kind: i1 = 8, bf16 = 16, ... */
ir_kind ir_kind_from_name(const char *name, size_t len); /* IR_VOID when not a scalar name */

const ir_type *ir_type_ptr(ir_arena *a, const ir_type *elem);
const ir_type *ir_type_tile(ir_arena *a, const ir_type *elem, int rank, ir_expr *const *dims);
const ir_type *ir_type_tvar(ir_arena *a, int tvar);

/* The element type of a tile, or the type itself for a scalar/ptr. */
const ir_type *ir_type_elem(const ir_type *t);
/* Structural equality (exprs compared structurally). */
bool ir_type_equal(const ir_type *a, const ir_type *b);
/* For concrete tiles: fills shape[] and returns the element count; scalars return 1, rank 0.
 * Returns -1 when a dim is not an integer literal. */
int64_t ir_type_shape(const ir_type *t, int *rank, int64_t shape[IR_MAX_RANK]);

/* ---- expressions (types, grid, constraints, const ops) ---------------------------------- */

typedef enum {
  EX_INT,    /* i */
  EX_FLOAT,  /* f (also inf, nan) */
  EX_SYM,    /* sym: index into kernel->syms */
  EX_UNARY,  /* op: '-' or '!' ; a */
  EX_BINARY, /* op: '+','-','*','/','%','<','>', and EXO_* below; a, b */
  EX_CALL,   /* op: EXO_CDIV, EXO_MIN, EXO_MAX; a, b */
} ir_expr_kind;

enum { EXO_LE = 256, EXO_GE, EXO_EQ, EXO_NE, EXO_AND, EXO_OR, EXO_CDIV, EXO_MIN, EXO_MAX };

struct ir_expr {
  ir_expr_kind kind;
  int op;
  int64_t i;
  double f;
  int sym;
  ir_expr *a, *b;
  ir_loc loc;
};

/* An expression's value: integer unless isf. */
typedef struct ir_num {
  bool isf;
  int64_t i;
  double f;
} ir_num;

ir_expr *ir_expr_int(ir_arena *a, int64_t v);
ir_expr *ir_expr_float(ir_arena *a, double v);
ir_expr *ir_expr_sym(ir_arena *a, int sym);
ir_expr *ir_expr_bin(ir_arena *a, int op, ir_expr *l, ir_expr *r);
bool ir_expr_equal(const ir_expr *a, const ir_expr *b);
/* True when e is an EX_INT; *v receives it. */
bool ir_expr_is_int(const ir_expr *e, int64_t *v);

/* ---- symbols and type variables --------------------------------------------------------- */

typedef enum {
  SYM_TUNABLE, /* compile-time integer with default and domain */
  SYM_CONST,   /* problem parameter fixed at specialization (const i32 causal = 0) */
  SYM_PARAM,   /* runtime scalar launch argument (i32/i64/f32/...) */
  SYM_DIM,     /* runtime tensor dimension, bound from the tensor arguments' shapes */
} ir_sym_kind;

typedef struct ir_sym {
  const char *name;
  ir_sym_kind kind;
  ir_kind ty; /* scalar kind; tunables and dims are i32 */
  bool has_default;
  ir_num def;
  int64_t *domain; /* tunables: allowed values (ndomain > 0) */
  int ndomain;
  int arg;    /* SYM_PARAM: index in kernel->args; SYM_DIM: first tensor argument using it */
  int argdim; /* SYM_DIM: which dim of that tensor */
  ir_loc loc;
} ir_sym;

/* How a tuning lookup groups one problem value (`buckets { }`, docs/ir.md): values of the same
 * bucket share a tuned config. A dim or parameter without a declaration is exact. */
typedef enum {
  IR_BUCKET_EXACT,    /* every value is its own bucket */
  IR_BUCKET_POW2,     /* the smallest power of two >= the value */
  IR_BUCKET_MULTIPLE, /* the smallest multiple of arg >= the value */
  IR_BUCKET_ANY,      /* one bucket for every value: it does not change the speed */
} ir_bucket_kind;

typedef struct ir_bucket {
  int sym; /* a SYM_DIM or SYM_PARAM symbol */
  ir_bucket_kind kind;
  int64_t arg; /* IR_BUCKET_MULTIPLE: the step (>= 1); 0 otherwise */
  ir_loc loc;
} ir_bucket;

/* "exact", "pow2", "multiple", "any". */
const char *ir_bucket_kind_name(ir_bucket_kind k);

typedef struct ir_tvar {
  const char *name;
  ir_kind choices[IR_NSCALAR]; /* allowed scalar kinds; the first is the default */
  int nchoices;
  ir_loc loc;
} ir_tvar;

/* ---- values, ops, blocks ---------------------------------------------------------------- */

typedef struct ir_op ir_op;
typedef struct ir_block ir_block;

typedef struct ir_value {
  int id; /* dense per kernel: 0 .. kernel->nvalues-1 */
  const ir_type *ty;
  const char *name; /* text name without '%'; may be NULL (printer invents one) */
  ir_op *def;       /* defining op, or NULL for arguments and block arguments */
  ir_block *owner;  /* block whose argument this is, or NULL */
  int argno;        /* kernel arg index or block arg index; -1 for op results */
} ir_value;

struct ir_block {
  ir_value **args; /* for: args[0] = induction variable, then one per loop-carried value */
  int nargs;
  ir_op *first, *last;
  ir_op *parent; /* op owning this block, NULL for the kernel body */
};

typedef enum {
#define OP(e, kw, syn, nres, meaning) IR_OP_##e,
#include "ops.def"
#undef OP
  IR_NOPS
} ir_opcode;

/* Sub-keywords (op->sub). */
typedef enum { IR_CMP_EQ, IR_CMP_NE, IR_CMP_LT, IR_CMP_LE, IR_CMP_GT, IR_CMP_GE } ir_cmp;
typedef enum { IR_RED_SUM, IR_RED_MAX, IR_RED_MIN } ir_red;

struct ir_op {
  ir_opcode code;
  ir_loc loc;
  ir_value **operands;
  int nopnd;
  ir_value **results;
  int nres;
  ir_block
      *regions[2]; /* for: [0] = body; if: [0] = then, [1] = else (may be NULL if no results) */
  int nregions;
  int sub;         /* cmp predicate / reduce kind */
  int64_t attr[2]; /* 'i' items in syntax order */
  ir_expr *ex[2];  /* 'e' items in syntax order; load: ex[1] = fill (NULL = 0) */
  ir_op *prev, *next;
  ir_block *parent;
};
/* for op: operands = lo, hi, step, init_0 ... init_{n-1}; results = n loop-carried results;
 *         regions[0]->args = iv, iter_0 ... iter_{n-1}; the body ends in yield of n values.
 * if op:  operands = cond; results = n; both regions end in yield of n values (else may be
 *         absent when n == 0). */

typedef struct ir_opinfo {
  const char *keyword;
  const char *syntax;
  int nres;
  const char *meaning;
} ir_opinfo;
extern const ir_opinfo ir_ops[IR_NOPS];
ir_opcode ir_opcode_from_name(const char *name, size_t len); /* IR_NOPS when unknown */
const char *ir_cmp_name(int c);                              /* "lt", ... */
const char *ir_red_name(int r);                              /* "sum", ... */

/* ---- kernels ---------------------------------------------------------------------------- */

typedef enum { ARG_TENSOR, ARG_PTR, ARG_SCALAR } ir_arg_kind;
typedef enum { ARG_IN = 0, ARG_OUT = 1, ARG_INOUT = 2 } ir_arg_dir;

typedef struct ir_arg {
  ir_arg_kind kind;
  ir_arg_dir dir;   /* tensors */
  const char *name; /* without '%' for tensors and pointers; the symbol name for scalars */
  ir_value *value;  /* TENSOR, PTR: the value used in the body; SCALAR: NULL */
  int sym;          /* SCALAR: the SYM_PARAM symbol */
  ir_loc loc;
} ir_arg;

typedef struct ir_kernel {
  ir_arena *arena; /* owns everything below */
  const char *name;
  const char *file;   /* for diagnostics */
  const char *source; /* the text it was parsed from (NUL-terminated), or NULL */
  ir_sym *syms;
  int nsyms;
  ir_tvar *tvars;
  int ntvars;
  ir_expr **constraints;
  int nconstraints;
  ir_arg *args;
  int nargs;
  ir_expr *grid[3];
  int ngrid;
  ir_bucket *buckets; /* problem buckets for tuning lookups (not kept by ir_specialize) */
  int nbuckets;
  ir_block *body;
  int nvalues; /* ids handed out */
  int nops;
  bool specialized; /* all tile shapes literal, no tvars, tunables and consts folded */
} ir_kernel;

void ir_kernel_free(ir_kernel *k);                                  /* NULL is a no-op */
int ir_sym_find(const ir_kernel *k, const char *name, size_t len);  /* -1 when absent */
int ir_tvar_find(const ir_kernel *k, const char *name, size_t len); /* -1 when absent */

/* ---- builder (C API that builds the same IR as the parser; the parser uses it) ---------- */
/* Every irb_* call records the first error in the builder; later calls become no-ops that
 * return NULL/-1, and irb_finish reports it. Locations are optional (use irb_at). */

typedef struct ir_builder ir_builder;
ir_builder *irb_new(const char *kernel_name, const char *file);
void irb_at(ir_builder *b, ir_loc loc); /* location for the next items */
/* Keeps a copy of the source text in the kernel (for carets in later diagnostics). */
void irb_source(ir_builder *b, const char *text, size_t len);
const char *irb_source_text(const ir_builder *b);
ir_arena *irb_arena(ir_builder *b);
/* The kernel under construction (read-only view: symbols, args declared so far). */
const ir_kernel *irb_kernel(const ir_builder *b);
int irb_tvar(ir_builder *b, const char *name, const ir_kind *choices, int n);
int irb_tunable(ir_builder *b, const char *name, int64_t def, const int64_t *domain, int n);
int irb_param(ir_builder *b, const char *name, ir_kind ty, bool is_const, const ir_num *def);
void irb_constraint(ir_builder *b, ir_expr *e);
/* dims: symbol names (a new name declares a SYM_DIM) or decimal integer strings. */
ir_value *irb_tensor_arg(ir_builder *b, const char *name, ir_arg_dir dir, const ir_type *elem,
                         int rank, const char *const *dims);
ir_value *irb_ptr_arg(ir_builder *b, const char *name, const ir_type *elem);
void irb_grid(ir_builder *b, int n, ir_expr *const *dims);
/* Declares how the problem value `name` (a dim or a runtime parameter declared before) is
 * bucketed; arg is the step of IR_BUCKET_MULTIPLE. A name may be declared once. */
void irb_bucket(ir_builder *b, const char *name, ir_bucket_kind kind, int64_t arg);
/* Appends an op to the current block. results: result types (nres of them). */
ir_op *irb_op(ir_builder *b, ir_opcode code, ir_value *const *operands, int nopnd,
              const ir_type *const *result_types, int nres);
/* Regions: irb_for creates the op and enters its body (block args: iv, iters); irb_if enters
 * the then-block; irb_else switches to the else-block; irb_end leaves the region (the region
 * must have ended with a yield). */
ir_op *irb_for(ir_builder *b, ir_value *lo, ir_value *hi, ir_value *step, ir_value *const *init,
               int ninit, const ir_type *const *result_types);
ir_op *irb_if(ir_builder *b, ir_value *cond, const ir_type *const *result_types, int nres);
void irb_else(ir_builder *b);
void irb_end(ir_builder *b);
void irb_name(ir_builder *b, ir_value *v, const char *name); /* text name for printing */
/* Fails with the recorded error, or returns the kernel (caller owns; ir_kernel_free). The
 * builder is freed in both cases. Does not verify: call ir_verify. */
ir_status irb_finish(ir_builder *b, ir_kernel **out, ir_diag *d);
void irb_abort(ir_builder *b); /* frees an unfinished builder and its arena */
/* Records an error at the builder's current location (used by the parser's semantic checks). */
void irb_fail(ir_builder *b, ir_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
bool irb_failed(const ir_builder *b);

/* ---- text ------------------------------------------------------------------------------- */

/* Parses one kernel. file names the source in diagnostics. The kernel keeps a copy of text. */
ir_status ir_parse(const char *text, size_t len, const char *file, ir_kernel **out, ir_diag *d);
/* Canonical text; caller frees the returned string with free(). NULL only on host OOM. */
char *ir_print(const ir_kernel *k);
/* ir_print with a trailing comment `# NOTE` after every op that has results (except for/if);
 * note writes the text for an op's first result into buf (empty: no comment). The output
 * still parses (comments are ignored). Used by `tilec compile --emit gpu`. */
typedef void (*ir_note_fn)(void *ctx, const ir_value *v, char *buf, size_t cap);
char *ir_print_notes(const ir_kernel *k, ir_note_fn note, void *ctx);
/* Prints one expression into buf (used by printers and diagnostics). */
void ir_expr_print(const ir_kernel *k, const ir_expr *e, char *buf, size_t cap);
void ir_type_print(const ir_kernel *k, const ir_type *t, char *buf, size_t cap);

/* ---- checks and transformations --------------------------------------------------------- */

/* Types, shapes (literal dims compared; symbolic ones when both sides are literal), SSA
 * dominance, region/yield shapes, tunable defaults within domains, grid. */
ir_status ir_verify(const ir_kernel *k, ir_diag *d);

/* Bindings for specialization: by symbol index / tvar index. Unset entries take defaults;
 * a tunable without a value takes its default; a const param without default is an error. */
typedef struct ir_config_item {
  char name[IR_MAX_NAME + 1]; /* tunable, const param or type variable */
  ir_num value;               /* tunables/consts */
  ir_kind kind;               /* type variables (IR_VOID for numbers) */
} ir_config_item;

typedef struct ir_config {
  int n;
  ir_config_item items[IR_MAX_SYMS]; /* a later item for the same name wins */
} ir_config;

/* Parses "BM=128,BN=64,TA=bf16" into cfg (appending). Errors name the bad item. */
ir_status ir_config_parse(ir_config *cfg, const char *text, ir_diag *d);

/* Binds cfg, checks domains and constraints (an error names the violated constraint as
 * written), substitutes tunables/consts/tvars, folds constants; the result is a new kernel
 * (caller owns) with specialized = true. */
ir_status ir_specialize(const ir_kernel *k, const ir_config *cfg, ir_kernel **out, ir_diag *d);

/* Evaluates e with the given symbol values (vals[sym], set[sym]); an unset symbol is an
 * error. Integer arithmetic is 64-bit with overflow and division by zero reported. */
ir_status ir_expr_eval(const ir_kernel *k, const ir_expr *e, const ir_num *vals, const bool *set,
                       ir_num *out, ir_diag *d);

/* ---- floating-point formats (exact GPU conversion semantics) ----------------------------- */

/* Rounds a double to the nearest value of kind k (round to nearest even; f16/bf16 keep inf;
 * f8 formats saturate to their largest finite value, as cvt.rn.satfinite does; NaN stays NaN).
 * For integer kinds: truncates toward zero and wraps to the width (i1: x != 0). */
double ir_round_to(ir_kind k, double x);
/* Storage encodings for buffers: bits of bf16/f16/f8 values (RNE as above). */
uint16_t ir_f32_to_bf16_bits(float x);
float ir_bf16_bits_to_f32(uint16_t b);
uint16_t ir_f64_to_f16_bits(double x);
double ir_f16_bits_to_f64(uint16_t b);
uint8_t ir_f64_to_f8_bits(ir_kind k, double x);
double ir_f8_bits_to_f64(ir_kind k, uint8_t b);
/* Reads/writes element i of a buffer stored as kind k (see docs/ir.md "Buffers"). */
double ir_buf_get(ir_kind k, const void *base, int64_t i);
/* Element i of a buffer of integer kind k (i1 ... i64), exactly (ir_buf_get rounds past 2^53). */
int64_t ir_buf_get_int(ir_kind k, const void *base, int64_t i);
void ir_buf_set(ir_kind k, void *base, int64_t i, double v);

/* ---- CPU interpreter ------------------------------------------------------------------- */

/* One launch argument, in the kernel's argument order. */
typedef struct ir_argval {
  ir_arg_kind kind;
  void *data;    /* TENSOR/PTR: host memory holding elements of the arg's element kind */
  int64_t count; /* TENSOR/PTR: elements addressable from data (bounds for pointer loads) */
  int rank;      /* TENSOR */
  int64_t shape[IR_MAX_RANK];
  int64_t stride[IR_MAX_RANK]; /* in elements */
  ir_num scalar;               /* SCALAR */
} ir_argval;

typedef struct ir_interp_opts {
  int nthreads; /* programs run in parallel on this many threads; 0 = 1 */
} ir_interp_opts;

/* Runs a specialized kernel over its whole grid. Dims are bound from tensor shapes (a
 * mismatch between tensors sharing a dim is an error). Errors: a message naming the op's
 * location (out-of-bounds pointer access, integer division by zero, bad argument). */
ir_status ir_interp_run(const ir_kernel *k, ir_argval *args, int nargs, const ir_interp_opts *o,
                        ir_diag *d);

#endif
