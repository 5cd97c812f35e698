/* autotune/worker.h — the autotuner's measuring worker process: fault isolation for candidates.
 *
 * The tuner (the parent) never initialises CUDA. It spawns a worker (`tilec __worker`, the code
 * is compiler/cli_worker.c) connected by two pipes, describes the problem once, then sends one
 * MEASURE per candidate (its config text and the cubin the parent compiled) and gets a RESULT:
 * validated against the reference, then timed with CUDA events around L2-flushed repetitions.
 * A candidate that faults, hangs or kills the worker costs only the worker: the parent records
 * fault/timeout, restarts it and goes on. The wire format (length-prefixed fields, versioned)
 * and the measurement rules are in docs/tuning-worker.md; the encoder and decoder below are
 * shared by both sides.
 */
#ifndef TILEC_AUTOTUNE_WORKER_H
#define TILEC_AUTOTUNE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autotune/at.h"

/* ---- the parent's API ----------------------------------------------------------------------- */

typedef struct at_worker at_worker;

typedef struct at_worker_opts {
  const char *exe;        /* NULL: $TILEC_WORKER_EXE, else /proc/self/exe (the running tilec) */
  double timeout_s;       /* per MEASURE wall-clock limit; <= 0: 10 s */
  double start_timeout_s; /* for the PROBLEM reply (device, problem and reference); <= 0: 300 s */
} at_worker_opts;

typedef struct at_problem_desc {
  const char *kernel;               /* built-in name, or a display name when source != NULL */
  const char *source;               /* kernel text for file kernels, else NULL */
  const char *shape, *dtype, *arch; /* --shape text; dtype (NULL: default); target arch (NULL:
                                       the device's own, sm_90a on compute capability 9.0) */
  const char *set; /* items every candidate is specialized with before its config (the --set
                      items that name const parameters or type variables), or NULL */
  uint64_t seed;
  int reps, warmup;       /* timed repetitions (<= 0: 50), warm-up launches (< 0: 5) */
  bool no_flush;          /* do not flush the L2 between repetitions */
  bool no_rotate;         /* never rotate between copies of the inputs */
  bool no_check;          /* time without validating (no reference: kernels under development) */
  double cpu_check_flops; /* above this many flops the reference is computed on the GPU (NVRTC
                             reference kernels) instead of the CPU; <= 0: 2e10 */
} at_problem_desc;

enum { AT_MAX_SAMPLES = 100000 };

typedef struct at_outcome {
  at_run status;
  double median_ms, p20_ms, p80_ms, min_ms; /* NaN unless status is AT_RUN_OK */
  int reps;                                 /* samples behind the statistics */
  int sm_clock_mhz, mem_clock_mhz;          /* -1 unknown */
  double max_err; /* normalized error vs the reference (kn_cmp_result.err); NaN when not checked */
  char detail[512];
} at_outcome;

/* What the device looks like, asked of the worker so that the parent learns it without
 * initialising CUDA. In test mode (TILEC_WORKER_FAKE) a fixed fake device whose key starts
 * with "fake|". */
typedef struct at_gpu_info {
  char key[192];  /* the tuning DB's device key (rt_device_key) */
  char name[256]; /* "NVIDIA H200" */
  char arch[16];  /* the target the worker uses when the problem names none: "sm_90a" */
  int cc_major, cc_minor, sm_count;
  int smem_per_block_optin, smem_per_sm, l2_bytes, regs_per_sm, max_threads_per_block;
  int mem_clock_khz, mem_bus_width, sm_clock_khz; /* peak memory clock, bus bits, SM clock */
  uint64_t total_mem;
  int driver_version;
} at_gpu_info;

/* Spawns a worker and, when p is not NULL, sends it the problem and waits until it has built
 * it (host and device buffers, the reference). p == NULL starts a device-only worker (only
 * at_worker_device works). AT_ERR_ENV when the worker cannot start or finds no driver or GPU
 * (the driver's message), AT_ERR_ARG for a bad problem (its message). The caller owns *out
 * (at_worker_stop); p's strings are copied. */
at_status at_worker_start(const at_worker_opts *o, const at_problem_desc *p, at_worker **out,
                          at_err *e);

/* Measures one candidate: config is the --set text ("BM=128,BN=64,..."), cubin the image the
 * parent compiled for the problem's arch (a cubin, or PTX text the driver JIT-compiles). The
 * outcome is in *out: AT_OK means the worker answered or its failure was classified (fault,
 * timeout, resources, ...). A dead worker is restarted first, transparently. Errors: AT_ERR_ARG
 * (the worker rejected the config: its message), AT_ERR_ENV (no worker could be restarted). */
at_status at_worker_measure(at_worker *w, const char *config, const void *cubin, size_t n,
                            at_outcome *out, at_err *e);

/* Interleaved re-timing of a few finalists: `rounds` rounds, each measuring every config once,
 * round r starting at config r % n (so no config always runs first or last). out[i] pools the
 * samples of all rounds of config i; a config that failed in any round keeps that status. */
at_status at_worker_retime(at_worker *w, const char *const *configs, const void *const *cubins,
                           const size_t *sizes, int n, int rounds, at_outcome *out, at_err *e);

/* Whether the problem's launch arguments, as the worker built them for the default config,
 * keep the aligned variant's promise (rt_args_aligned): 1 yes, 0 no, -1 unknown (no problem,
 * or a worker that did not say). */
int at_worker_problem_aligned(const at_worker *w);

/* From now on every MEASURE says that its image is the aligned variant: the worker checks the
 * arguments against the promise before launching and rejects the candidate (AT_ERR_ARG) when
 * they break it, so a misaligned access never reaches the GPU. */
void at_worker_set_aligned(at_worker *w, bool aligned);

/* The worker's device (cached after the first call). */
at_status at_worker_device(at_worker *w, at_gpu_info *out, at_err *e);

/* Restarts so far (a fault, a timeout or a death each cost one). */
int at_worker_restarts(const at_worker *w);

/* The running worker's process id, or -1 when none is running (tests look for leftovers). */
int at_worker_pid(const at_worker *w);

/* Asks the worker to quit, kills it after a short grace period, reaps it, closes the pipes and
 * frees w. NULL is a no-op. */
void at_worker_stop(at_worker *w);

/* ---- statistics ----------------------------------------------------------------------------- */

typedef struct at_stats {
  double median, p20, p80, min, max;
  int n;
} at_stats;

/* The q-quantile (0 <= q <= 1) of sorted[0 .. n): linear interpolation between the samples at
 * ranks floor(q (n-1)) and ceil(q (n-1)) (NumPy's default). NaN for n == 0. Pure. */
double at_quantile(const double *sorted, int n, double q);

/* Sorts v[0 .. n) in place and fills *out (median = 0.5-quantile, p20, p80, min, max); all NaN
 * for n == 0. */
void at_sample_stats(double *v, int n, at_stats *out);

/* ---- the wire format (shared by the parent and compiler/cli_worker.c) ------------------------ */

enum {
  AT_MSG_MAX_FIELDS = 32,
  AT_MSG_MAX_NAME = 31,
  AT_MSG_MAX_FIELD_BYTES = 256 << 20, /* a field (a cubin, kernel text, samples) */
};

#define AT_WIRE_MAGIC "TW1" /* the protocol version: a frame starts "TW1 <TYPE> <nfields>\n" */

/* One message: a type ("PROBLEM", "MEASURE", "RESULT", ...) and named byte-string fields. */
typedef struct at_msg {
  char type[16];
  int n;
  struct {
    char name[AT_MSG_MAX_NAME + 1];
    char *data; /* malloc'd, NUL-terminated after len bytes (text fields read as C strings) */
    size_t len;
  } f[AT_MSG_MAX_FIELDS];
} at_msg;

void at_msg_init(at_msg *m, const char *type);
void at_msg_free(at_msg *m); /* frees the fields; m stays initialised and empty */
/* Appends a field (copied). AT_ERR_ARG for a bad name or too many fields, AT_ERR_OOM. */
at_status at_msg_add(at_msg *m, const char *name, const void *data, size_t len, at_err *e);
at_status at_msg_addf(at_msg *m, at_err *e, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The field `name` (NULL when absent); *len its size when len != NULL. Owned by m. */
const char *at_msg_get(const at_msg *m, const char *name, size_t *len);
/* Integer and floating field values; def when absent or malformed. */
long long at_msg_int(const at_msg *m, const char *name, long long def);
double at_msg_num(const at_msg *m, const char *name, double def);

/* Buffered reader of frames from a file descriptor. */
typedef struct at_reader {
  int fd;
  char *buf;
  size_t len, cap;
} at_reader;

void at_reader_init(at_reader *r, int fd);
void at_reader_free(at_reader *r);

/* Reads one frame into *m (initialised here; the caller frees it). deadline: a CLOCK_MONOTONIC
 * time in seconds (at_now()), or < 0 to wait forever. AT_MISS at end of file before any byte of
 * a frame; AT_ERR_IO for a read error, a malformed frame or end of file inside one; AT_ERR_BUSY
 * when the deadline passes. */
at_status at_msg_read(at_reader *r, double deadline, at_msg *m, at_err *e);

/* Writes one frame (all of it, or an error). SIGPIPE is blocked for the calling thread during
 * the write, so a dead reader gives AT_ERR_IO (EPIPE) instead of killing the process. A
 * non-blocking fd is waited for with poll until deadline (< 0: forever); AT_ERR_BUSY after it. */
at_status at_msg_write(int fd, const at_msg *m, double deadline, at_err *e);

/* The device as fields of a message (READY, DEVICE) and back. decode: false when a field is
 * missing. */
at_status at_device_encode(const at_gpu_info *d, at_msg *m, at_err *e);
bool at_device_decode(const at_msg *m, at_gpu_info *d);

/* Seconds on CLOCK_MONOTONIC. */
double at_now(void);

#endif
