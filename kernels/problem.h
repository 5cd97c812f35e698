/* kernels/problem.h — problems for the built-in kernels: inputs, layouts, references, checks.
 *
 * `tilec run` describes a problem with --shape keys (M=..,N=..). This module turns those keys
 * into the config items a kernel needs before specialization (const parameters, dtypes), then
 * into host buffers for every launch argument (random inputs, poisoned outputs, sparse layouts),
 * and after the run compares the outputs with the double-precision references of ref.c.
 * Kernels given as files get generic buffers (tensors from dim keys) and no reference.
 */
#ifndef TILEC_KERNELS_PROBLEM_H
#define TILEC_KERNELS_PROBLEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"
#include "kernels/bsr.h"
#include "kernels/check.h"
#include "kernels/mask.h"

enum { KN_MAX_KEYS = 32, KN_MAX_BUFS = IR_MAX_ARGS, KN_MAX_OUTS = 4 };

/* --shape keys, as given. */
typedef struct kn_shape {
  int n;
  struct {
    char key[32];
    char val[256];
  } kv[KN_MAX_KEYS];
} kn_shape;

/* Parses "M=128,N=64,mask=document:3+5" (values may contain ':' '+' but not ','). Returns 0, or
 * nonzero with a message in err. */
int kn_shape_parse(const char *spec, kn_shape *out, char *err, size_t errcap);

/* One launch argument's host buffer. */
typedef struct kn_buf {
  char name[IR_MAX_NAME + 1];
  ir_kind kind; /* storage kind of the elements */
  int rank;
  int64_t shape[IR_MAX_RANK];
  int64_t count;
  void *data;    /* elements in storage form (what the kernel reads and writes) */
  double *exact; /* inputs: the exact element values; outputs: filled by kn_problem_check */
  bool output;
} kn_buf;

typedef struct kn_output_check {
  char name[IR_MAX_NAME + 1];
  kn_cmp_result r;
} kn_output_check;

typedef struct kn_problem {
  char kernel[64];
  bool builtin;
  ir_argval args[IR_MAX_ARGS]; /* launch arguments for ir_interp_run, in kernel order */
  int nargs;
  kn_buf bufs[KN_MAX_BUFS];
  int nbufs;
  double flops; /* useful floating-point operations (2 per multiply-add), for throughput */
  kn_mask mask;
  kn_layout layout;
  kn_bsr bsr;
  double *w_dense; /* bsmatmul: W expanded, for --save */
  double scale;    /* attention kernels: softmax scale */
  bool transb;     /* matmul: B stored [N][K] */
  double *ref[KN_MAX_OUTS];
  int ref_buf[KN_MAX_OUTS];
  int nref;
  kn_output_check checks[KN_MAX_OUTS];
  int nchecks;
  char summary[256]; /* "M=.. N=.. K=.. dtype=bf16" */
} kn_problem;

/* Whether name is a built-in kernel (matmul, attention, bsattention, bsmatmul). */
bool kn_is_builtin(const char *name);

/* Adds to cfg what the problem fixes before specialization: the dtype (type variables; NULL
 * keeps the kernel's default), const parameters from shape keys (D, causal, block), and block
 * sizes requested by keys (bsattention block=). Items already in cfg win. */
int kn_problem_config(const char *kernel, const kn_shape *shape, const char *dtype, ir_config *cfg,
                      char *err, size_t errcap);

/* What a problem fixes in a kernel from a file (or built with the IR builder): every shape key
 * that names a const parameter binds it (`D=32`; a float parameter takes a float), and dtype
 * (may be NULL) binds the first type variable (kn_file_dtype). Items already in cfg win. Keys
 * that name other things are left to the problem builder. Returns 0, or nonzero with a message
 * (a value that is not a number, no type variable, an unknown dtype). The CLI, the tuner, its
 * worker and the C API all bind a file kernel's problem through this. */
int kn_file_config(const ir_kernel *k, const kn_shape *shape, const char *dtype, ir_config *cfg,
                   char *err, size_t errcap);

/* A file kernel's dtype (the public API's `dtype`, `--dtype` of the CLI): binds k's first type
 * variable to the scalar type named dtype, appending to cfg. Returns 0, or nonzero with a
 * message when k has no type variable or dtype names no scalar type. */
int kn_file_dtype(const ir_kernel *k, const char *dtype, ir_config *cfg, char *err, size_t errcap);

/* Allocates and fills every argument of the specialized kernel k for the problem: random
 * inputs from seed (never all zero), outputs poisoned with NaN (integers with -1), layouts and
 * BSR data built on the host. p is overwritten; free it with kn_problem_free (also on error). */
int kn_problem_build(kn_problem *p, const char *kernel, const ir_kernel *k, const kn_shape *shape,
                     uint64_t seed, char *err, size_t errcap);

/* Computes the references (built-in kernels only) and compares every output; fills p->checks.
 * Returns 0 when the comparison ran (see p->checks[i].r.pass), nonzero on error. */
int kn_problem_check(kn_problem *p, char *err, size_t errcap);

/* Writes every argument as dir/<name>.npy (float tensors as float32 holding the exact values;
 * index arrays as int32), extra arrays (bsmatmul W_dense, bsattention layout) and
 * dir/problem.json describing shapes and dtypes. Creates dir if needed. */
int kn_problem_save(const kn_problem *p, const char *dir, const char *config_json, char *err,
                    size_t errcap);

void kn_problem_free(kn_problem *p);

#endif
