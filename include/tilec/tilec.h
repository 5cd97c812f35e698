/* tilec/tilec.h — the public C API of tilec, the only header an engine includes.
 *
 * An inference engine creates a context on a GPU (or on its own current CUDA context), asks it
 * for a kernel by (kernel name or IR, problem shape, dtype) and launches what it gets on its own
 * stream. A lookup answers from an in-memory LRU of loaded kernels (microseconds), else from the
 * tuning database's winner for this device (a cubin load), else from a heuristic config that it
 * compiles (milliseconds; needs nvJitLink). No Python and no LLVM run on the hot path.
 *
 * Conventions (docs/api.md is the full reference and the embedding guide):
 * - Every fallible call returns a tilec_status; TILEC_OK is 0. On failure, tilec_errmsg()
 *   returns one line saying why, kept per thread until that thread's next failing call.
 * - Handles are opaque. X_create / X_destroy (or _release) pair up; destroy(NULL) is a no-op.
 *   A call that returns a handle through `out` sets *out to NULL when it fails.
 * - Option structs start with `size_t size`: set it to sizeof the struct you compiled against
 *   (the *_init functions do), so later versions can add fields at the end without breaking
 *   callers. A size smaller than the first version's struct, or larger than this library's, is
 *   TILEC_ERR_ARG.
 * - Strings passed in are copied or only read during the call; strings returned are owned by
 *   the handle they came from (or static) unless a comment says the caller frees them.
 * - The library never prints, exits or aborts on user error. Host out-of-memory inside the IR
 *   arena aborts (documented in docs/ir.md); every other allocation failure is TILEC_ERR_OOM.
 */
#ifndef TILEC_TILEC_H
#define TILEC_TILEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TILEC_API __attribute__((visibility("default")))
#else
#define TILEC_API
#endif

/* ---- version ----------------------------------------------------------------------------- */

#define TILEC_VERSION_MAJOR 0
#define TILEC_VERSION_MINOR 1
#define TILEC_VERSION_PATCH 0
#define TILEC_VERSION_STRING "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH of the header an engine compiled against. */
#define TILEC_VERSION_NUMBER                                                                       \
  (TILEC_VERSION_MAJOR * 10000 + TILEC_VERSION_MINOR * 100 + TILEC_VERSION_PATCH)

/* The library's version text ("0.1.0"), static. Compare with TILEC_VERSION_STRING to detect a
 * header/library mismatch. Thread-safe. */
TILEC_API const char *tilec_version(void);

/* ---- status ------------------------------------------------------------------------------ */

typedef enum tilec_status {
  TILEC_OK = 0,
  TILEC_ERR_ARG,          /* NULL handle or pointer, wrong struct size, malformed text */
  TILEC_ERR_NOT_FOUND,    /* unknown kernel name, unknown tunable, no such entry */
  TILEC_ERR_SHAPE,        /* a problem or launch arguments that do not fit the kernel */
  TILEC_ERR_NO_DRIVER,    /* libcuda.so.1 missing or unusable */
  TILEC_ERR_NO_DEVICE,    /* no CUDA device, or the ordinal is out of range */
  TILEC_ERR_NO_TOOLCHAIN, /* a miss must compile and nvJitLink is missing */
  TILEC_ERR_COMPILE,      /* the code generator or nvJitLink rejected the kernel */
  TILEC_ERR_LAUNCH,       /* the driver rejected a launch */
  TILEC_ERR_CUDA,         /* any other driver error (module load, memory) */
  TILEC_ERR_DB,           /* the tuning database could not be opened or read */
  TILEC_ERR_READONLY,     /* the call would write the database of a read-only context */
  TILEC_ERR_BUSY,         /* a tuner is still running, or a TILEC_KERNEL_NOWAIT kernel is
                             still being compiled */
  TILEC_ERR_OOM,          /* host or device memory exhausted */
  TILEC_ERR_INTERNAL,     /* a broken invariant: please report it */
} tilec_status;

/* "ok", "arg", "not_found", ... (static); "unknown" for a value outside the enum. */
TILEC_API const char *tilec_status_name(tilec_status s);

typedef struct tilec_context tilec_context;

/* The message of the calling thread's last failed tilec call (on any context: messages are
 * thread-local, so threads never see each other's), "" when none failed yet. ctx is accepted
 * for symmetry with SQLite's sqlite3_errmsg and may be NULL. Valid until the thread's next
 * tilec call. */
TILEC_API const char *tilec_errmsg(const tilec_context *ctx);

/* ---- contexts ---------------------------------------------------------------------------- */

enum {
  TILEC_CONTEXT_READONLY = 1u << 0, /* never write the database (no blobs, no tuning); lookups
                                       are then a pure function of the file: every process and
                                       rank gets the same kernel */
  TILEC_CONTEXT_NO_DB = 1u << 1,    /* no database at all: heuristic configs only */
  TILEC_CONTEXT_ADOPT = 1u << 2,    /* work in the caller's CUDA context (cu_context, or the
                                       thread's current one when NULL) instead of the primary
                                       context of `device` */
  TILEC_CONTEXT_NO_GPU = 1u << 3,   /* no driver is touched: lookups compile and resolve but
                                       nothing loads or launches (arch must be set); for
                                       ahead-of-time builds and tests */
};

typedef enum tilec_tune_policy {
  TILEC_TUNE_NEVER = 0,  /* a DB miss uses the heuristic config (default) */
  TILEC_TUNE_SYNC,       /* a DB miss tunes now (seconds to minutes), then uses the winner */
  TILEC_TUNE_BACKGROUND, /* a DB miss returns the heuristic config and starts a tuner; once it
                            finishes, lookups of that problem return the winner */
} tilec_tune_policy;

typedef struct tilec_context_opts {
  size_t size;            /* sizeof(tilec_context_opts) */
  int device;             /* CUDA ordinal (without TILEC_CONTEXT_ADOPT) */
  unsigned flags;         /* TILEC_CONTEXT_* */
  void *cu_context;       /* TILEC_CONTEXT_ADOPT: a CUcontext, NULL for the current one */
  void *cu_stream;        /* the default stream of launches (a CUstream of that context; NULL: the
                             legacy default stream) */
  const char *db_path;    /* NULL: TILEC_DB, else ~/.cache/tilec/tilec.db */
  int cache_capacity;     /* loaded kernels kept in the LRU; 0: 256 */
  tilec_tune_policy tune; /* what a DB miss does */
  const char *arch;       /* NULL: the device's ("sm_90"); required with NO_GPU */
  int tune_budget;        /* candidates per sweep of the tune policy; 0: 16 */
  /* Later field (a struct from before it, by its size, reads as 0): */
  double nearest; /* a problem without a winner takes the winner of the nearest tuned bucket of
                     the same kernel within this bucket distance (TILEC_ORIGIN_NEAREST; distance:
                     docs/api.md); 0: 2.0; negative: never (the heuristic config) */
} tilec_context_opts;

/* Fills o with the defaults (device 0, no flags, default database, capacity 256, never tune,
 * 16 candidates per policy sweep, nearest bucket within 2.0) and o->size. */
TILEC_API void tilec_context_opts_init(tilec_context_opts *o);

/* Creates a context: opens the driver and the device (or adopts the caller's context), reads
 * the device identity, opens the database (read-only when asked; a missing database is then
 * simply empty). opts NULL means the defaults. The caller owns *out (tilec_context_destroy).
 * Errors: ARG (bad opts), NO_DRIVER, NO_DEVICE, CUDA, DB (the file exists but cannot be read),
 * OOM. Thread-safety: any thread may create contexts. */
TILEC_API tilec_status tilec_context_create(const tilec_context_opts *opts, tilec_context **out);

/* Drops the caller's reference. Waits for the context's background tuners and running NOWAIT
 * compiles (queued ones are dropped), and frees the context once every kernel got from it is
 * released as well. Must not race with other calls on ctx. NULL is a no-op. */
TILEC_API void tilec_context_destroy(tilec_context *ctx);

/* Changes the LRU's capacity (>= 1). Kernels over the new capacity are evicted at once, least
 * recently used first; an evicted kernel that the caller still holds stays valid until its
 * release. Thread-safe. */
TILEC_API tilec_status tilec_context_set_cache_capacity(tilec_context *ctx, int capacity);

/* What the context knows. Strings are owned by the context. */
typedef struct tilec_context_info {
  size_t size;           /* set by the caller: sizeof(tilec_context_info) */
  const char *device;    /* the database's device key ("NVIDIA H200|sm_90|132sm|140GiB") */
  const char *arch;      /* the compile target ("sm_90") */
  const char *toolchain; /* the database's toolchain key */
  const char *db_path;   /* "" without a database */
  int readonly;          /* 1 when the database is never written */
  int cache_size, cache_capacity;
  uint64_t hits, misses, compiles, db_loads, evictions; /* counters since creation */
  int pending; /* TILEC_KERNEL_NOWAIT gets queued or running (a later field: a size without it
                  is accepted and the field left alone) */
} tilec_context_info;

/* Fills *info (which must have size set). Thread-safe. */
TILEC_API tilec_status tilec_context_info_get(tilec_context *ctx, tilec_context_info *info);

/* ---- kernel IR: built from C or parsed from text ----------------------------------------- */

typedef struct tilec_ir tilec_ir;

/* Parses and verifies one kernel in the tile IR text form (docs/ir.md). name names the text in
 * messages (NULL: "<text>"). The caller owns *out (tilec_ir_destroy). Errors: ARG with
 * `file:line:col: message`. Thread-safe. */
TILEC_API tilec_status tilec_ir_parse(const char *text, size_t len, const char *name,
                                      tilec_ir **out);

/* The canonical text of the kernel; the caller frees it with free(). NULL on host OOM or a
 * NULL ir. */
TILEC_API char *tilec_ir_print(const tilec_ir *ir);

/* The kernel's name (owned by ir). */
TILEC_API const char *tilec_ir_name(const tilec_ir *ir);

/* Frees the IR. Kernels already got for it stay valid. NULL is a no-op. */
TILEC_API void tilec_ir_destroy(tilec_ir *ir);

/* The builder: the same IR, built by calls. A builder belongs to one thread at a time.
 * Every builder call records the first error; later calls do nothing and return NULL, and
 * tilec_builder_finish reports that first error. So a sequence of calls needs one check. */
typedef struct tilec_builder tilec_builder;
typedef struct tilec_value tilec_value; /* an SSA value (owned by the builder, then the IR) */
typedef struct tilec_expr tilec_expr;   /* a compile-time expression (shape, grid, constant) */
typedef struct tilec_type tilec_type;   /* a type */

typedef enum tilec_arg_dir { TILEC_IN = 0, TILEC_OUT = 1, TILEC_INOUT = 2 } tilec_arg_dir;

/* Starts a kernel named name. The caller owns *out until tilec_builder_finish or
 * tilec_builder_abort. Errors: ARG (NULL or empty name), OOM. */
TILEC_API tilec_status tilec_builder_create(const char *name, tilec_builder **out);
/* Frees an unfinished builder. NULL is a no-op. */
TILEC_API void tilec_builder_abort(tilec_builder *b);
/* Verifies the kernel and turns it into an IR handle (caller owns); the builder is freed in
 * every case. Errors: ARG with the first recorded or verifier error. */
TILEC_API tilec_status tilec_builder_finish(tilec_builder *b, tilec_ir **out);

/* Expressions: integers, floats, symbols (tunables, parameters, dims declared before), and
 * binary operators "+ - * / % < > <= >= == != && ||" or calls "cdiv min max". */
TILEC_API tilec_expr *tilec_expr_int(tilec_builder *b, int64_t v);
TILEC_API tilec_expr *tilec_expr_float(tilec_builder *b, double v);
TILEC_API tilec_expr *tilec_expr_sym(tilec_builder *b, const char *name);
TILEC_API tilec_expr *tilec_expr_op(tilec_builder *b, const char *op, tilec_expr *l, tilec_expr *r);

/* Types: a scalar by name ("f32", "bf16", "i32", or a type variable declared before), a
 * pointer to a scalar, a tile of rank 1..4 with expression dims. */
TILEC_API const tilec_type *tilec_type_scalar(tilec_builder *b, const char *name);
TILEC_API const tilec_type *tilec_type_ptr(tilec_builder *b, const tilec_type *elem);
TILEC_API const tilec_type *tilec_type_tile(tilec_builder *b, const tilec_type *elem, int rank,
                                            tilec_expr *const *dims);

/* Declarations, in the order the text form has them: type variables (choices: scalar names,
 * the first is the default), tunables (default and domain), parameters (is_const: bound at
 * specialization; def may be NULL), constraints, arguments (dims: symbol names, a new one
 * declares a runtime dim, or decimal integers), the grid (1..3 expressions). */
TILEC_API tilec_status tilec_builder_type_var(tilec_builder *b, const char *name,
                                              const char *const *choices, int n);
TILEC_API tilec_status tilec_builder_tunable(tilec_builder *b, const char *name, int64_t def,
                                             const int64_t *domain, int n);
TILEC_API tilec_status tilec_builder_param(tilec_builder *b, const char *name, const char *dtype,
                                           int is_const, const double *def);
TILEC_API tilec_status tilec_builder_constraint(tilec_builder *b, tilec_expr *e);
TILEC_API tilec_value *tilec_builder_tensor_arg(tilec_builder *b, const char *name,
                                                tilec_arg_dir dir, const tilec_type *elem, int rank,
                                                const char *const *dims);
TILEC_API tilec_value *tilec_builder_ptr_arg(tilec_builder *b, const char *name,
                                             const tilec_type *elem);
TILEC_API tilec_status tilec_builder_grid(tilec_builder *b, int n, tilec_expr *const *dims);

/* One op (docs/ir.md lists them: keyword, operands, attributes). For a tensor op (load,
 * store) operands[0] is the tensor argument and the rest its indices. */
typedef struct tilec_op {
  size_t size;                  /* sizeof(tilec_op) */
  const char *keyword;          /* "add", "load", "dot", "reduce", "yield", ... */
  tilec_value *const *operands; /* noperands values */
  int noperands;
  const tilec_type *type; /* the result's type; NULL for ops without a result */
  const char *sub;        /* cmp predicate ("lt") or reduce kind ("sum"); else NULL */
  int64_t attr[2];        /* integer attributes in syntax order (program_id axis, ...) */
  tilec_expr *expr[2];    /* expression attributes (const value, arange bounds, fill) */
} tilec_op;

/* Appends op to the current block; returns its result (NULL for ops without one, and on
 * error). */
TILEC_API tilec_value *tilec_builder_op(tilec_builder *b, const tilec_op *op);

/* Regions. for: creates the loop with ninit loop-carried values and enters its body;
 * body_args receives the induction variable then the ninit iteration values, results the
 * loop's ninit results (both may be NULL when ninit is 0 and the iv is unused). if: enters the
 * then-block; else switches to the else-block; end leaves the region, which must have ended
 * with a "yield" op. */
TILEC_API tilec_status tilec_builder_for(tilec_builder *b, tilec_value *lo, tilec_value *hi,
                                         tilec_value *step, tilec_value *const *init, int ninit,
                                         const tilec_type *const *types, tilec_value **body_args,
                                         tilec_value **results);
TILEC_API tilec_status tilec_builder_if(tilec_builder *b, tilec_value *cond,
                                        const tilec_type *const *types, int nres,
                                        tilec_value **results);
TILEC_API tilec_status tilec_builder_else(tilec_builder *b);
TILEC_API tilec_status tilec_builder_end(tilec_builder *b);
/* The name a value prints with (without '%'). */
TILEC_API tilec_status tilec_builder_name(tilec_builder *b, tilec_value *v, const char *name);

/* ---- kernels ----------------------------------------------------------------------------- */

typedef struct tilec_kernel tilec_kernel;

/* What kernel, for which problem. Exactly one of kernel, source and ir is set. */
typedef struct tilec_kernel_request {
  size_t size;        /* sizeof(tilec_kernel_request) */
  const char *kernel; /* a built-in: "matmul", "attention", "bsattention", "bsmatmul" */
  const char *source; /* or kernel text (parsed on a miss; cached by its content) */
  const tilec_ir *ir; /* or an IR handle (cached by its identity hash) */
  const char *shape;  /* the problem: "M=4096,N=4096,K=4096" (tilec tune's --shape keys) */
  const char *dtype;  /* NULL: the kernel's default type ("bf16", "f16", ...) */
  const char *config; /* NULL: the DB winner, else the heuristic; or exactly these tunables
                         ("BM=128,BN=128"), bypassing the database */
  unsigned flags;     /* TILEC_KERNEL_* (a later field: a size without it reads as 0) */
} tilec_kernel_request;

/* TILEC_KERNEL_ALIGNED: the caller promises that every launch of the kernel passes tensors
 * whose address is a multiple of 16 bytes, whose last stride is 1 and whose other strides and
 * last extent are multiples of 16 bytes (8 bf16/f16 elements, 4 f32). The kernel is then the
 * aligned variant: no run-time alignment tests or fallback paths — less code, faster to
 * compile, fewer registers. A launch whose arguments break the promise fails with
 * TILEC_ERR_ARG naming the tensor, and launches nothing. Its cubin is cached under its own
 * key; the tuning database's winner config applies to it.
 *
 * TILEC_KERNEL_NOWAIT: a miss does not block. A hit returns the kernel as usual; a miss returns
 * TILEC_ERR_BUSY at once and the kernel is got (database, compile, module load: what a blocking
 * call would do) on a background thread of the context, one job per distinct request however
 * many threads ask; ask again later (the same request, NOWAIT or not) and a finished kernel is
 * a hit. A background get that failed is reported, once, by the next NOWAIT call of that
 * request with its status and message; the call after that tries again. The kernel lives in
 * the LRU: with a capacity smaller than the kernels in use, one may be evicted before it is
 * asked for again. Not with an `ir` request (ARG: pass its text as `source`).
 * tilec_context_destroy waits for the compiles running. Not part of the kernel's identity. */
enum { TILEC_KERNEL_ALIGNED = 1, TILEC_KERNEL_NOWAIT = 2 };

/* Fills r with zeros and r->size. */
TILEC_API void tilec_kernel_request_init(tilec_kernel_request *r);

/* Gets a loaded kernel for the request: the LRU (hit), else the database winner of this
 * device, toolchain, kernel and problem bucket (its cubin from the database, or compiled when
 * the database has none), else the tune policy (heuristic config, compiled, or a tuning sweep).
 * The caller owns a reference (tilec_kernel_release); on failure *out is NULL. Errors: ARG (bad
 * request), NOT_FOUND (unknown built-in), SHAPE (malformed shape, unknown key, values the kernel's
 * constraints refuse), NO_TOOLCHAIN, COMPILE, CUDA (module load), DB, OOM, BUSY
 * (TILEC_KERNEL_NOWAIT). Thread-safe: lookups from many threads run in parallel; the LRU's lock is
 * held for the map operations only, never across a compile, a database read or a module load (two
 * threads missing on the same kernel may both compile it; one result is kept). */
TILEC_API tilec_status tilec_kernel_get(tilec_context *ctx, const tilec_kernel_request *req,
                                        tilec_kernel **out);

/* Gets n kernels at once — what an engine needs at start-up: out[i] for reqs[i], each as
 * tilec_kernel_get would, the misses compiled in parallel on up to `threads` threads (0: one
 * per online CPU; the calling thread is one of them). Returns TILEC_OK when every request
 * succeeded; otherwise the status of the first failing request (lowest index, in *failed when
 * failed is not NULL; else *failed is -1) with its message prefixed by "request i: ". Every
 * out[i] is either a kernel the caller owns (release each) or NULL for a failed request. Errors
 * of its own: ARG (NULL ctx, n < 0, NULL reqs/out/reqs[i] with n > 0), OOM. Thread-safe. */
TILEC_API tilec_status tilec_kernel_get_many(tilec_context *ctx,
                                             const tilec_kernel_request *const *reqs, int n,
                                             tilec_kernel **out, int threads, int *failed);

/* Drops a reference. The kernel is freed (its module unloaded) when the LRU evicted it and no
 * one holds it. Thread-safe. NULL is a no-op. */
TILEC_API void tilec_kernel_release(tilec_kernel *k);

/* Adds a reference (for another owner); returns k. Thread-safe. */
TILEC_API tilec_kernel *tilec_kernel_retain(tilec_kernel *k);

typedef enum tilec_kernel_origin {
  TILEC_ORIGIN_DB = 0,      /* the database's winner, cubin loaded from the database */
  TILEC_ORIGIN_DB_COMPILED, /* the database's winner, compiled here (no stored cubin) */
  TILEC_ORIGIN_HEURISTIC,   /* no winner: the model's best guess, compiled here or loaded */
  TILEC_ORIGIN_EXPLICIT,    /* the request's config */
  TILEC_ORIGIN_TUNED,       /* a sweep made for this request (TILEC_TUNE_SYNC) */
  TILEC_ORIGIN_NEAREST,     /* no winner: the winner of the nearest tuned bucket (opts.nearest),
                               its cubin loaded when the database holds this binding's */
} tilec_kernel_origin;

typedef struct tilec_kernel_info {
  size_t size;        /* set by the caller */
  const char *name;   /* kernel name */
  const char *config; /* every bound item: "TA=bf16,TC=bf16,BM=128,..." */
  const char *bucket; /* the database bucket of the problem */
  const char *entry;  /* the cubin's entry point */
  tilec_kernel_origin origin;
  int nargs;      /* launch arguments expected (const parameters excluded) */
  int threads;    /* CTA size */
  int smem_bytes; /* dynamic shared memory per CTA */
  double load_ms; /* what the miss that loaded it cost (compile and/or module load) */
  unsigned flags; /* the request's TILEC_KERNEL_* that shaped the code (a later field) */
} tilec_kernel_info;

/* Describes k (strings owned by k). Thread-safe. */
TILEC_API tilec_status tilec_kernel_info_get(const tilec_kernel *k, tilec_kernel_info *info);

/* The value of tunable or const parameter `name` in k's config (e.g. "BM", to build a layout
 * at the kernel's block size). Errors: NOT_FOUND. */
TILEC_API tilec_status tilec_kernel_value(const tilec_kernel *k, const char *name, int64_t *out);

/* ---- launches ---------------------------------------------------------------------------- */

typedef enum tilec_arg_kind {
  TILEC_ARG_TENSOR = 0, /* device pointer + shape + strides (elements) */
  TILEC_ARG_PTR,        /* device pointer (index arrays, layouts) */
  TILEC_ARG_SCALAR,     /* a number: i for integer parameters, f for float ones */
} tilec_arg_kind;

enum { TILEC_MAX_RANK = 4, TILEC_MAX_ARGS = 64 };

typedef struct tilec_arg {
  tilec_arg_kind kind;
  uint64_t ptr; /* TENSOR, PTR: a device address (CUdeviceptr) */
  int rank;     /* TENSOR */
  int64_t shape[TILEC_MAX_RANK];
  int64_t stride[TILEC_MAX_RANK]; /* in elements; all 0: contiguous row-major */
  int is_float;                   /* SCALAR: f is the value, else i */
  int64_t i;
  double f;
} tilec_arg;

/* Convenience constructors. tilec_arg_tensor's strides are row-major contiguous. */
TILEC_API tilec_arg tilec_arg_tensor(uint64_t ptr, int rank, const int64_t *shape);
TILEC_API tilec_arg tilec_arg_ptr(uint64_t ptr);
TILEC_API tilec_arg tilec_arg_int(int64_t v);
TILEC_API tilec_arg tilec_arg_float(double v);

/* Launches k with args (in the kernel's argument order, const parameters left out) on stream
 * (a CUstream of the context's CUDA context; NULL: the context's default stream). Checks the
 * arguments against the kernel (kinds, ranks, dims shared between tensors, ranges), packs them
 * and calls cuLaunchKernel; returns when the launch is enqueued (faults show at the caller's
 * next synchronization). Errors: ARG (NULL, nargs), SHAPE (an argument the kernel refuses,
 * named in the message), LAUNCH, NO_DRIVER (a NO_GPU context). Thread-safe, and takes no lock:
 * launches of one kernel from many threads run in parallel. */
TILEC_API tilec_status tilec_launch(tilec_context *ctx, tilec_kernel *k, const tilec_arg *args,
                                    int nargs, void *stream);

/* The grid a launch with args would use (for engines that size work). */
TILEC_API tilec_status tilec_kernel_grid(const tilec_kernel *k, const tilec_arg *args, int nargs,
                                         uint32_t grid[3]);

/* ---- block-sparse layouts ---------------------------------------------------------------- */

typedef struct tilec_layout tilec_layout;

/* An attention mask and the granularity of its layout. */
typedef struct tilec_mask_desc {
  size_t size;              /* sizeof(tilec_mask_desc) */
  const char *mask;         /* "none", "causal", "sliding:W", "prefix:P", "document:L1+L2+...",
                               "random:P[:BMxBN]", or a comma-separated combination (docs/api.md) */
  int32_t B, H;             /* batch and heads */
  int64_t S, SKV;           /* query and key lengths (SKV 0: S) */
  int32_t block_m, block_n; /* query and key block sizes (the kernel's BM and BN) */
  uint64_t seed;            /* of random patterns */
} tilec_mask_desc;

TILEC_API void tilec_mask_desc_init(tilec_mask_desc *d);

/* Builds the block-sparse layout of the mask on the host and, unless the context is NO_GPU,
 * copies it to device memory of the context. The caller owns *out (tilec_layout_destroy, before
 * the context). Errors: ARG (NULL, size), SHAPE (a malformed mask or sizes), OOM, CUDA.
 * Thread-safe. */
TILEC_API tilec_status tilec_layout_create(tilec_context *ctx, const tilec_mask_desc *desc,
                                           tilec_layout **out);

/* The layout as bsattention's arguments want it. Host arrays and device pointers are owned by
 * the layout (device pointers are 0 in a NO_GPU context). */
typedef struct tilec_layout_info {
  size_t size;                         /* set by the caller */
  int32_t rows, n_qblocks, n_kvblocks; /* rows: 1 when all heads share the layout, else B*H */
  int32_t lrow_mul;                    /* bsattention's lrow_mul: 0 or 1 */
  int64_t n_full, n_part;
  const int32_t *full_ptr, *full_idx, *part_ptr, *part_idx, *doc; /* host copies */
  uint64_t d_full_ptr, d_full_idx, d_part_ptr, d_part_idx, d_doc; /* device copies */
  int32_t causal;                                                 /* element-mask parameters */
  int64_t window, prefix;
} tilec_layout_info;

TILEC_API tilec_status tilec_layout_info_get(const tilec_layout *l, tilec_layout_info *info);
TILEC_API void tilec_layout_destroy(tilec_layout *l); /* NULL is a no-op */

/* ---- tuners ------------------------------------------------------------------------------ */

typedef struct tilec_tuner tilec_tuner;

typedef struct tilec_tune_opts {
  size_t size;    /* sizeof(tilec_tune_opts) */
  int budget;     /* candidates to try; 0: the whole space */
  double time_s;  /* stop after this long; 0: no limit */
  int jobs;       /* compile threads; 0: the CPUs */
  int background; /* 1: tilec_tuner_start returns at once; 0: it returns when done */
} tilec_tune_opts;

TILEC_API void tilec_tune_opts_init(tilec_tune_opts *o);

/* Tunes the request's problem on the context's device (the sweep of `tilec tune`: measured in
 * a worker process, which is the `tilec` executable named by TILEC_WORKER_EXE) and stores the
 * rows in the context's database; lookups then find the winner. The sweep measures the code
 * the request's flags name (TILEC_KERNEL_ALIGNED: the aligned variant, ARG when the problem
 * breaks its promise; otherwise the generic code). The caller owns *out
 * (tilec_tuner_destroy). Errors: ARG, READONLY or DB (no writable database), and with
 * background 0 every error of the sweep. Thread-safe. */
TILEC_API tilec_status tilec_tuner_start(tilec_context *ctx, const tilec_kernel_request *req,
                                         const tilec_tune_opts *opts, tilec_tuner **out);

/* Waits for the sweep; returns its outcome (TILEC_OK: it ran to its end). */
TILEC_API tilec_status tilec_tuner_wait(tilec_tuner *t);
/* TILEC_ERR_BUSY while running, else tilec_tuner_wait's result. Never blocks. */
TILEC_API tilec_status tilec_tuner_poll(tilec_tuner *t);
/* Waits for the sweep and frees the tuner. NULL is a no-op. */
TILEC_API void tilec_tuner_destroy(tilec_tuner *t);

#ifdef __cplusplus
}
#endif

#endif
