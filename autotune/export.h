/* autotune/export.h — ahead-of-time export of tuned kernels: a C source and header that embed
 * the winning cubins of a tuning database and dispatch a problem to its tuned entry.
 *
 * `tilec export` (compiler/cli_export.c) calls at_export; the engine compiles the generated
 * files into itself and needs only the CUDA driver API at run time (no LLVM, SQLite or tilec).
 * For each winner (at_db_winners) of the chosen device the kernel's text is found (built-in or
 * given), its at_kernel_hash checked against the row's ir_hash, the row's config specialized,
 * and the cubin read and verified (at_db_get_blob). docs/export.md describes the output.
 */
#ifndef TILEC_AUTOTUNE_EXPORT_H
#define TILEC_AUTOTUNE_EXPORT_H

#include "autotune/at.h"
#include "autotune/db.h"
#include "autotune/json.h"

/* A kernel given as text (`--kernel-file NAME=PATH`): its rows are exported against it. */
typedef struct at_export_source {
  const char *name; /* the kernel name in the database */
  const char *text; /* NUL-terminated .tile text */
  const char *file; /* for diagnostics */
} at_export_source;

typedef struct at_export_opts {
  const char *device;         /* required: the device key of the rows to export */
  const char *toolchain;      /* NULL: the rows must all have one toolchain */
  const char *prefix;         /* a C identifier: names become tuned_<prefix>_...; NULL: "db" */
  const char *header;         /* the name the source #includes ("tuned.h"); NULL: "tuned.h" */
  const char *const *kernels; /* NULL (nkernels 0): every kernel of the device */
  int nkernels;
  const at_export_source *sources; /* kernels that are not built-in (or override one) */
  int nsources;
  const char *set; /* config items the rows do not record (tunables pinned with `tune --set`),
                      applied to every kernel that has the name; NULL: none */
} at_export_opts;

typedef struct at_export_stats {
  int kernels, entries;
  size_t cubin_bytes;          /* every embedded cubin, generic ones of aligned entries too */
  int aligned;                 /* entries whose row measured the aligned variant */
  int aligned_without_generic; /* of them, entries without generic code in the database: their
                                  launches refuse tensors that break the promise */
} at_export_stats;

/* Generates the C source (appended to c_out) and header (h_out) for the winners of o->device.
 * A winner that measured the aligned variant embeds its cubin and, when the database holds
 * it, the same config's generic cubin (by at_compile_key with the arch its meta records); its
 * launches test the arguments against the promise and take the one that fits.
 * Output is deterministic: entries sorted by kernel, then bucket (byte order). Errors, each
 * naming the kernel, bucket and config: AT_ERR_ARG (bad options; no winner; a kernel that is
 * neither built-in nor given; an ir_hash that differs from the kernel's; a config that no
 * longer specializes; a grid that is not integer arithmetic; a name that is not a C
 * identifier; several toolchains without o->toolchain), AT_MISS (a winner without a cubin, or
 * whose cubin fails its size/SHA-256 check: never exported), AT_ERR_OOM. st may be NULL. The
 * caller frees both buffers with at_buf_free, also on error. */
at_status at_export(at_db *db, const at_export_opts *o, at_buf *c_out, at_buf *h_out,
                    at_export_stats *st, at_err *e);

#endif
