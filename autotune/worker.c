/* autotune/worker.c — the parent's side of the measuring worker (see worker.h), the wire format
 * both sides speak, and the statistics of timed samples.
 *
 * Invariants: the parent never loads libcuda; every child it spawns is reaped (waitpid) before
 * its at_worker forgets it; every pipe end is O_CLOEXEC, so a worker does not inherit another
 * worker's pipes; writes never raise SIGPIPE; every read and write has a deadline, so no worker
 * can hang the parent. docs/tuning-worker.md describes the protocol and the failure handling.
 */
#define _GNU_SOURCE /* pipe2, F_DUPFD_CLOEXEC */
#include "autotune/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- statistics ----------------------------------------------------------------------------- */

double at_quantile(const double *sorted, int n, double q) {
  if (n <= 0)
    return NAN;
  q = q < 0 ? 0 : q > 1 ? 1 : q;
  double pos = q * (n - 1);
  int lo = (int)floor(pos), hi = (int)ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void at_sample_stats(double *v, int n, at_stats *out) {
  out->n = n > 0 ? n : 0;
  if (n <= 0) {
    out->median = out->p20 = out->p80 = out->min = out->max = NAN;
    return;
  }
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  out->median = at_quantile(v, n, 0.5);
  out->p20 = at_quantile(v, n, 0.2);
  out->p80 = at_quantile(v, n, 0.8);
  out->min = v[0];
  out->max = v[n - 1];
}

double at_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- messages ------------------------------------------------------------------------------- */

void at_msg_init(at_msg *m, const char *type) {
  memset(m, 0, sizeof *m);
  size_t n = type ? strlen(type) : 0;
  n = n < sizeof m->type ? n : sizeof m->type - 1;
  memcpy(m->type, type ? type : "", n);
  m->type[n] = 0;
}

void at_msg_free(at_msg *m) {
  for (int i = 0; i < m->n; i++)
    free(m->f[i].data);
  m->n = 0;
}

static bool valid_name(const char *s, size_t n) {
  if (n == 0 || n > AT_MSG_MAX_NAME)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
      return false;
  return true;
}

at_status at_msg_add(at_msg *m, const char *name, const void *data, size_t len, at_err *e) {
  if (!name || !valid_name(name, strlen(name)))
    return at_fail(e, AT_ERR_ARG, "message field name '%s' is not [A-Za-z0-9_]{1,31}",
                   name ? name : "(null)");
  if (m->n == AT_MSG_MAX_FIELDS || len > AT_MSG_MAX_FIELD_BYTES || (len && !data))
    return at_fail(e, AT_ERR_ARG, "message %s: field %s does not fit (%d fields, %zu bytes)",
                   m->type, name, m->n, len);
  char *copy = malloc(len + 1);
  if (!copy)
    return at_fail(e, AT_ERR_OOM, "out of host memory");
  if (len)
    memcpy(copy, data, len);
  copy[len] = 0;
  snprintf(m->f[m->n].name, sizeof m->f[m->n].name, "%s", name);
  m->f[m->n].data = copy;
  m->f[m->n].len = len;
  m->n++;
  return AT_OK;
}

at_status at_msg_addf(at_msg *m, at_err *e, const char *name, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0)
    return at_fail(e, AT_ERR_INTERNAL, "message field %s: formatting failed", name);
  return at_msg_add(m, name, buf, strlen(buf), e);
}

const char *at_msg_get(const at_msg *m, const char *name, size_t *len) {
  for (int i = 0; i < m->n; i++)
    if (!strcmp(m->f[i].name, name)) {
      if (len)
        *len = m->f[i].len;
      return m->f[i].data;
    }
  return NULL;
}

long long at_msg_int(const at_msg *m, const char *name, long long def) {
  const char *s = at_msg_get(m, name, NULL);
  char *end;
  if (!s || !*s)
    return def;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  return *end || errno ? def : v;
}

double at_msg_num(const at_msg *m, const char *name, double def) {
  const char *s = at_msg_get(m, name, NULL);
  char *end;
  if (!s || !*s)
    return def;
  double v = strtod(s, &end);
  return *end ? def : v;
}

/* One header line of at most cap bytes at buf[*pos ..): returns its length without the '\n'
 * and advances *pos past it; 0 when incomplete; -1 when it is too long to be a header. */
static long header_line(const char *buf, size_t len, size_t *pos, size_t cap) {
  size_t i = *pos;
  for (; i < len && i - *pos < cap; i++)
    if (buf[i] == '\n') {
      long n = (long)(i - *pos);
      *pos = i + 1;
      return n;
    }
  return i - *pos >= cap ? -1 : 0;
}

/* Parses a frame from buf[0 .. len): 1 complete (*m filled when m != NULL, *used its size), 0
 * more bytes are needed, -1 malformed (message in e). */
static int parse_frame(const char *buf, size_t len, at_msg *m, size_t *used, at_err *e) {
  size_t pos = 0;
  long hl = header_line(buf, len, &pos, 64);
  char line[80], type[32];
  int nfields;
  if (hl <= 0) {
    if (hl < 0)
      at_fail(e, AT_ERR_IO, "worker protocol: no frame header (expected '" AT_WIRE_MAGIC " ...')");
    return (int)hl;
  }
  memcpy(line, buf, (size_t)hl);
  line[hl] = 0;
  char extra;
  if (strncmp(line, AT_WIRE_MAGIC " ", 4) ||
      sscanf(line + 4, "%15s %d%c", type, &nfields, &extra) != 2 || nfields < 0 ||
      nfields > AT_MSG_MAX_FIELDS) {
    at_fail(e, AT_ERR_IO, "worker protocol: bad frame header '%.64s' (this side speaks %s)", line,
            AT_WIRE_MAGIC);
    return -1;
  }
  if (m)
    at_msg_init(m, type);
  for (int i = 0; i < nfields; i++) {
    size_t start = pos;
    hl = header_line(buf, len, &pos, AT_MSG_MAX_NAME + 16);
    if (hl <= 0) {
      if (hl < 0)
        at_fail(e, AT_ERR_IO, "worker protocol: bad field header in %s", type);
      goto partial;
    }
    char name[48]; /* %47s below */
    unsigned long long flen;
    memcpy(line, buf + start, (size_t)hl);
    line[hl] = 0;
    if (sscanf(line, "%47s %llu%c", name, &flen, &extra) != 2 || !valid_name(name, strlen(name)) ||
        flen > AT_MSG_MAX_FIELD_BYTES) {
      at_fail(e, AT_ERR_IO, "worker protocol: bad field header '%.48s' in %s", line, type);
      hl = -1;
      goto partial;
    }
    if (len - pos < flen + 1) {
      hl = 0;
      goto partial;
    }
    if (buf[pos + flen] != '\n') {
      at_fail(e, AT_ERR_IO, "worker protocol: field %s of %s is not followed by a newline", name,
              type);
      hl = -1;
      goto partial;
    }
    if (m && at_msg_add(m, name, buf + pos, (size_t)flen, e)) {
      hl = -1;
      goto partial;
    }
    pos += flen + 1;
  }
  *used = pos;
  return 1;
partial:
  if (m)
    at_msg_free(m);
  return (int)hl;
}

void at_reader_init(at_reader *r, int fd) {
  memset(r, 0, sizeof *r);
  r->fd = fd;
}

void at_reader_free(at_reader *r) {
  free(r->buf);
  r->buf = NULL;
  r->len = r->cap = 0;
}

/* Milliseconds left until deadline for poll (-1: forever; 0 when passed). */
static int ms_left(double deadline) {
  if (deadline < 0)
    return -1;
  double left = deadline - at_now();
  return left <= 0 ? 0 : (int)(left * 1e3) + 1;
}

at_status at_msg_read(at_reader *r, double deadline, at_msg *m, at_err *e) {
  at_msg_init(m, "");
  for (;;) {
    size_t used = 0;
    int got = parse_frame(r->buf, r->len, NULL, &used, e);
    if (got < 0)
      return AT_ERR_IO;
    if (got > 0) {
      if (parse_frame(r->buf, r->len, m, &used, e) != 1)
        return e && e->status == AT_ERR_OOM ? AT_ERR_OOM : AT_ERR_IO;
      memmove(r->buf, r->buf + used, r->len - used);
      r->len -= used;
      return AT_OK;
    }
    if (r->cap - r->len < 65536) {
      size_t cap = r->cap ? 2 * r->cap : 131072;
      if (cap > (size_t)AT_MSG_MAX_FIELD_BYTES * 2 + 65536)
        return at_fail(e, AT_ERR_IO, "worker protocol: frame larger than %d MiB",
                       2 * (AT_MSG_MAX_FIELD_BYTES >> 20));
      char *nb = realloc(r->buf, cap);
      if (!nb)
        return at_fail(e, AT_ERR_OOM, "out of host memory");
      r->buf = nb;
      r->cap = cap;
    }
    struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
    int pr = poll(&pfd, 1, ms_left(deadline));
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr < 0)
      return at_fail(e, AT_ERR_IO, "worker pipe: poll failed: %s", strerror(errno));
    if (pr == 0)
      return at_fail(e, AT_ERR_BUSY, "no reply before the deadline");
    ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n < 0)
      return at_fail(e, AT_ERR_IO, "worker pipe: read failed: %s", strerror(errno));
    if (n == 0)
      return r->len ? at_fail(e, AT_ERR_IO, "worker pipe: end of file inside a frame")
                    : at_fail(e, AT_MISS, "worker pipe: end of file");
    r->len += (size_t)n;
  }
}

/* The frame of m as one malloc'd buffer. */
static at_status encode(const at_msg *m, char **out, size_t *outlen, at_err *e) {
  size_t cap = 64;
  for (int i = 0; i < m->n; i++)
    cap += m->f[i].len + AT_MSG_MAX_NAME + 32;
  char *buf = malloc(cap);
  if (!buf)
    return at_fail(e, AT_ERR_OOM, "out of host memory");
  size_t n = (size_t)snprintf(buf, cap, AT_WIRE_MAGIC " %s %d\n", m->type, m->n);
  for (int i = 0; i < m->n; i++) {
    n += (size_t)snprintf(buf + n, cap - n, "%s %zu\n", m->f[i].name, m->f[i].len);
    memcpy(buf + n, m->f[i].data, m->f[i].len);
    n += m->f[i].len;
    buf[n++] = '\n';
  }
  *out = buf;
  *outlen = n;
  return AT_OK;
}

at_status at_msg_write(int fd, const at_msg *m, double deadline, at_err *e) {
  char *buf = NULL;
  size_t len = 0, off = 0;
  at_status s = encode(m, &buf, &len, e);
  if (s)
    return s;
  /* Block SIGPIPE for this thread; a SIGPIPE this write raises is consumed below. */
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigpending(&pending);
  bool was_pending = sigismember(&pending, SIGPIPE);
  while (off < len && !s) {
    ssize_t n = write(fd, buf + off, len - off);
    if (n > 0) {
      off += (size_t)n;
    } else if (n < 0 && errno == EAGAIN) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      int pr = poll(&pfd, 1, ms_left(deadline));
      if (pr == 0)
        s = at_fail(e, AT_ERR_BUSY, "the worker did not read its request before the deadline");
      else if (pr < 0 && errno != EINTR)
        s = at_fail(e, AT_ERR_IO, "worker pipe: poll failed: %s", strerror(errno));
    } else if (n < 0 && errno != EINTR) {
      s = at_fail(e, AT_ERR_IO, "worker pipe: write failed: %s", strerror(errno));
      if (errno == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
      }
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  free(buf);
  return s;
}

/* ---- devices on the wire -------------------------------------------------------------------- */

#define DEVICE_INTS(X)                                                                             \
  X(cc_major)                                                                                      \
  X(cc_minor)                                                                                      \
  X(sm_count)                                                                                      \
  X(smem_per_block_optin)                                                                          \
  X(smem_per_sm)                                                                                   \
  X(l2_bytes)                                                                                      \
  X(regs_per_sm)                                                                                   \
  X(max_threads_per_block) X(mem_clock_khz) X(mem_bus_width) X(sm_clock_khz) X(driver_version)

at_status at_device_encode(const at_gpu_info *d, at_msg *m, at_err *e) {
  at_status s;
  if ((s = at_msg_add(m, "dev_key", d->key, strlen(d->key), e)) ||
      (s = at_msg_add(m, "dev_name", d->name, strlen(d->name), e)) ||
      (s = at_msg_add(m, "dev_arch", d->arch, strlen(d->arch), e)) ||
      (s = at_msg_addf(m, e, "dev_total_mem", "%llu", (unsigned long long)d->total_mem)))
    return s;
#define ADD(f)                                                                                     \
  if ((s = at_msg_addf(m, e, "dev_" #f, "%d", d->f)))                                              \
    return s;
  DEVICE_INTS(ADD)
#undef ADD
  return AT_OK;
}

bool at_device_decode(const at_msg *m, at_gpu_info *d) {
  memset(d, 0, sizeof *d);
  const char *key = at_msg_get(m, "dev_key", NULL), *name = at_msg_get(m, "dev_name", NULL),
             *arch = at_msg_get(m, "dev_arch", NULL);
  if (!key || !name || !arch)
    return false;
  snprintf(d->key, sizeof d->key, "%s", key);
  snprintf(d->name, sizeof d->name, "%s", name);
  snprintf(d->arch, sizeof d->arch, "%s", arch);
  d->total_mem = (uint64_t)at_msg_int(m, "dev_total_mem", 0);
#define GET(f) d->f = (int)at_msg_int(m, "dev_" #f, -1);
  DEVICE_INTS(GET)
#undef GET
  return true;
}

/* ---- the worker process --------------------------------------------------------------------- */

struct at_worker {
  char exe[4096];
  double timeout_s, start_timeout_s;
  bool has_problem;
  at_problem_desc p;
  char *strs[6]; /* owned copies of p's strings */
  pid_t pid;     /* -1: none running */
  int to_fd, from_fd;
  at_reader rd;
  int restarts;
  bool have_dev;
  at_gpu_info dev;
  int problem_aligned; /* READY's "aligned": 1 yes, 0 no, -1 not said */
  bool aligned;        /* MEASUREs carry variant=aligned */
};

/* Moves fd to a number >= 5 (so the child's dup2 onto 3 and 4 never meets it), close-on-exec. */
static int high_fd(int fd) {
  if (fd >= 5)
    return fd;
  int h = fcntl(fd, F_DUPFD_CLOEXEC, 5);
  close(fd);
  return h;
}

/* "killed by SIGSEGV (Segmentation fault)", "exited with status 3". */
static void describe_wait(int status, char *buf, size_t cap) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char *abbrev = sigabbrev_np(sig);
    snprintf(buf, cap, "killed by SIG%s (%s)", abbrev ? abbrev : "?", strsignal(sig));
  } else if (WIFEXITED(status)) {
    snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
  } else {
    snprintf(buf, cap, "ended with wait status %#x", status);
  }
}

/* Closes the pipes and reaps the child; kill: SIGKILL first. Writes how it ended into why. */
static void reap(at_worker *w, bool kill_first, char *why, size_t cap) {
  if (why && cap)
    why[0] = 0;
  if (w->to_fd >= 0)
    close(w->to_fd);
  if (w->from_fd >= 0)
    close(w->from_fd);
  w->to_fd = w->from_fd = -1;
  at_reader_free(&w->rd);
  if (w->pid <= 0)
    return;
  if (kill_first)
    kill(w->pid, SIGKILL);
  int status = 0;
  pid_t r;
  while ((r = waitpid(w->pid, &status, 0)) < 0 && errno == EINTR) {
  }
  if (r == w->pid && why)
    describe_wait(status, why, cap);
  w->pid = -1;
}

static at_status spawn(at_worker *w, at_err *e) {
  int req[2] = {-1, -1}, rep[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  bool fa_ok = false;
  at_status s = AT_OK;
  if (pipe2(req, O_CLOEXEC) || pipe2(rep, O_CLOEXEC)) {
    s = at_fail(e, AT_ERR_ENV, "cannot create the worker's pipes: %s", strerror(errno));
    goto fail;
  }
  for (int i = 0; i < 2; i++)
    if ((req[i] = high_fd(req[i])) < 0 || (rep[i] = high_fd(rep[i])) < 0) {
      s = at_fail(e, AT_ERR_ENV, "cannot move the worker's pipes: %s", strerror(errno));
      goto fail;
    }
  if (posix_spawn_file_actions_init(&fa)) {
    s = at_fail(e, AT_ERR_OOM, "out of host memory");
    goto fail;
  }
  fa_ok = true;
  if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) ||
      posix_spawn_file_actions_adddup2(&fa, 2, 1) || /* stray prints never reach the pipe */
      posix_spawn_file_actions_adddup2(&fa, req[0], 3) ||
      posix_spawn_file_actions_adddup2(&fa, rep[1], 4)) {
    s = at_fail(e, AT_ERR_OOM, "out of host memory");
    goto fail;
  }
  char *argv[] = {w->exe, "__worker", NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, w->exe, &fa, NULL, argv, environ);
  if (rc) {
    s = at_fail(e, AT_ERR_ENV, "cannot start the worker %s: %s", w->exe, strerror(rc));
    goto fail;
  }
  w->pid = pid;
  close(req[0]);
  close(rep[1]);
  w->to_fd = req[1];
  w->from_fd = rep[0];
  fcntl(w->to_fd, F_SETFL, fcntl(w->to_fd, F_GETFL) | O_NONBLOCK);
  fcntl(w->from_fd, F_SETFL, fcntl(w->from_fd, F_GETFL) | O_NONBLOCK);
  at_reader_init(&w->rd, w->from_fd);
  posix_spawn_file_actions_destroy(&fa);
  return AT_OK;
fail:
  if (fa_ok)
    posix_spawn_file_actions_destroy(&fa);
  for (int i = 0; i < 2; i++) {
    if (req[i] >= 0)
      close(req[i]);
    if (rep[i] >= 0)
      close(rep[i]);
  }
  return s;
}

/* The status of a worker's "status" field: what its failure means to the caller. */
static at_status status_of(const char *name) {
  static const at_status all[] = {AT_ERR_ARG, AT_ERR_IO, AT_ERR_OOM, AT_ERR_ENV};
  for (size_t i = 0; name && i < sizeof all / sizeof all[0]; i++)
    if (!strcmp(name, at_status_name(all[i])))
      return all[i];
  return AT_ERR_INTERNAL;
}

/* A reply the worker sent instead of the expected one: ERROR, or a wrong type. */
static at_status unexpected(const at_msg *m, const char *want, at_err *e) {
  const char *msg = at_msg_get(m, "message", NULL);
  if (!strcmp(m->type, "ERROR"))
    return at_fail(e, status_of(at_msg_get(m, "status", NULL)), "%s",
                   msg ? msg : "the worker reported an error without a message");
  return at_fail(e, AT_ERR_IO, "worker protocol: expected %s, got %s", want, m->type);
}

/* The end of a worker that did not answer: its death as a message in e (status s). */
static at_status lost(at_worker *w, at_status s, const char *when, at_err *e, const at_err *why) {
  char how[256];
  bool timed_out = why && why->status == AT_ERR_BUSY;
  reap(w, true, how, sizeof how);
  return at_fail(e, s, "the worker %s %s%s%s", timed_out ? "did not answer" : "died", when,
                 timed_out ? "" : ": ", timed_out ? "" : how);
}

/* Spawns the worker and hands it the problem (when there is one). */
static at_status start(at_worker *w, at_err *e) {
  at_status s = spawn(w, e);
  if (s || !w->has_problem)
    return s;
  at_msg m, r;
  at_msg_init(&m, "PROBLEM");
  const at_problem_desc *p = &w->p;
  if ((s = at_msg_add(&m, "kernel", p->kernel, strlen(p->kernel), e)) ||
      (p->source && (s = at_msg_add(&m, "source", p->source, strlen(p->source), e))) ||
      (p->shape && (s = at_msg_add(&m, "shape", p->shape, strlen(p->shape), e))) ||
      (p->dtype && (s = at_msg_add(&m, "dtype", p->dtype, strlen(p->dtype), e))) ||
      (p->set && p->set[0] && (s = at_msg_add(&m, "set", p->set, strlen(p->set), e))) ||
      (p->arch && (s = at_msg_add(&m, "arch", p->arch, strlen(p->arch), e))) ||
      (s = at_msg_addf(&m, e, "seed", "%llu", (unsigned long long)p->seed)) ||
      (s = at_msg_addf(&m, e, "reps", "%d", p->reps)) ||
      (s = at_msg_addf(&m, e, "warmup", "%d", p->warmup)) ||
      (s = at_msg_addf(&m, e, "flush", "%d", !p->no_flush)) ||
      (s = at_msg_addf(&m, e, "rotate", "%d", !p->no_rotate)) ||
      (s = at_msg_addf(&m, e, "check", "%d", !p->no_check)) ||
      (p->cpu_check_flops > 0 &&
       (s = at_msg_addf(&m, e, "cpu_check_flops", "%.17g", p->cpu_check_flops)))) {
    at_msg_free(&m);
    reap(w, true, NULL, 0);
    return s;
  }
  double deadline = at_now() + w->start_timeout_s;
  at_err why = {0};
  s = at_msg_write(w->to_fd, &m, deadline, &why);
  at_msg_free(&m);
  if (!s)
    s = at_msg_read(&w->rd, deadline, &r, &why);
  if (s)
    return lost(w, AT_ERR_ENV, "while building the problem", e, &why);
  if (strcmp(r.type, "READY")) {
    s = unexpected(&r, "READY", e);
    at_msg_free(&r);
    reap(w, true, NULL, 0);
    return s;
  }
  w->have_dev = at_device_decode(&r, &w->dev);
  w->problem_aligned = (int)at_msg_int(&r, "aligned", -1);
  at_msg_free(&r);
  return AT_OK;
}

/* Restarts the worker when it is not running (counted in restarts). */
static at_status ensure_running(at_worker *w, at_err *e) {
  if (w->pid >= 0)
    return AT_OK;
  at_status s = start(w, e);
  if (!s)
    w->restarts++;
  return s;
}

static char *dup_or_null(const char *s, bool *oom) {
  if (!s)
    return NULL;
  char *d = strdup(s);
  *oom |= !d;
  return d;
}

at_status at_worker_start(const at_worker_opts *o, const at_problem_desc *p, at_worker **out,
                          at_err *e) {
  *out = NULL;
  if (p && !p->kernel)
    return at_fail(e, AT_ERR_ARG, "at_worker_start: the problem names no kernel");
  at_worker *w = calloc(1, sizeof *w);
  if (!w)
    return at_fail(e, AT_ERR_OOM, "out of host memory");
  w->pid = -1;
  w->to_fd = w->from_fd = -1;
  w->problem_aligned = -1;
  w->timeout_s = o && o->timeout_s > 0 ? o->timeout_s : 10.0;
  w->start_timeout_s = o && o->start_timeout_s > 0 ? o->start_timeout_s : 300.0;
  const char *exe = o && o->exe ? o->exe : getenv("TILEC_WORKER_EXE");
  if (exe && *exe) {
    snprintf(w->exe, sizeof w->exe, "%s", exe);
  } else {
    ssize_t n = readlink("/proc/self/exe", w->exe, sizeof w->exe - 1);
    if (n <= 0) {
      free(w);
      return at_fail(e, AT_ERR_ENV, "cannot find the worker executable: /proc/self/exe: %s",
                     strerror(errno));
    }
    w->exe[n] = 0;
  }
  if (p) {
    bool oom = false;
    w->has_problem = true;
    w->p = *p;
    w->p.kernel = w->strs[0] = dup_or_null(p->kernel, &oom);
    w->p.source = w->strs[1] = dup_or_null(p->source, &oom);
    w->p.shape = w->strs[2] = dup_or_null(p->shape, &oom);
    w->p.dtype = w->strs[3] = dup_or_null(p->dtype, &oom);
    w->p.arch = w->strs[4] = dup_or_null(p->arch, &oom);
    w->p.set = w->strs[5] = dup_or_null(p->set, &oom);
    if (w->p.reps <= 0)
      w->p.reps = 50;
    if (w->p.reps > AT_MAX_SAMPLES)
      w->p.reps = AT_MAX_SAMPLES;
    if (w->p.warmup < 0)
      w->p.warmup = 5;
    if (oom) {
      at_worker_stop(w);
      return at_fail(e, AT_ERR_OOM, "out of host memory");
    }
  }
  at_status s = start(w, e);
  if (s) {
    at_worker_stop(w);
    return s;
  }
  *out = w;
  return AT_OK;
}

static void outcome_init(at_outcome *out, at_run status) {
  memset(out, 0, sizeof *out);
  out->status = status;
  out->median_ms = out->p20_ms = out->p80_ms = out->min_ms = NAN;
  out->sm_clock_mhz = out->mem_clock_mhz = -1;
  out->max_err = NAN;
}

/* Fills the statistics of out from samples. */
static void outcome_stats(at_outcome *out, double *v, int n) {
  at_stats st;
  at_sample_stats(v, n, &st);
  out->median_ms = st.median;
  out->p20_ms = st.p20;
  out->p80_ms = st.p80;
  out->min_ms = st.min;
  out->reps = st.n;
}

/* One MEASURE round trip. On AT_OK, *out is the outcome and, for AT_RUN_OK, *samples (malloc'd,
 * the caller frees) holds *ns event times. */
static at_status measure(at_worker *w, const char *config, const void *cubin, size_t n,
                         at_outcome *out, double **samples, int *ns, at_err *e) {
  *samples = NULL;
  *ns = 0;
  outcome_init(out, AT_RUN_FAULT);
  if (!w || !config || (!cubin && n))
    return at_fail(e, AT_ERR_ARG, "at_worker_measure: no worker, config or image");
  if (!w->has_problem)
    return at_fail(e, AT_ERR_ARG, "at_worker_measure: this worker was started without a problem");
  at_status s = ensure_running(w, e);
  if (s)
    return s;
  at_msg m, r;
  at_msg_init(&m, "MEASURE");
  if ((s = at_msg_add(&m, "config", config, strlen(config), e)) ||
      (s = at_msg_add(&m, "cubin", cubin, n, e)) ||
      (w->aligned && (s = at_msg_add(&m, "variant", "aligned", 7, e)))) {
    at_msg_free(&m);
    return s;
  }
  double deadline = at_now() + w->timeout_s;
  at_err why = {0};
  s = at_msg_write(w->to_fd, &m, deadline, &why);
  if (s == AT_ERR_IO) { /* it died idle, before this request (EPIPE): not this candidate's fault */
    reap(w, true, NULL, 0);
    if ((s = start(w, e))) {
      at_msg_free(&m);
      return s;
    }
    w->restarts++;
    deadline = at_now() + w->timeout_s;
    s = at_msg_write(w->to_fd, &m, deadline, &why);
  }
  at_msg_free(&m);
  /* PROGRESS frames move the deadline: "problem" (the worker rebuilds the problem data and the
   * reference: the start limit applies), "candidate" (the candidate's own limit starts now). */
  while (!s && !(s = at_msg_read(&w->rd, deadline, &r, &why)) && !strcmp(r.type, "PROGRESS")) {
    const char *phase = at_msg_get(&r, "phase", NULL);
    deadline = at_now() + (phase && !strcmp(phase, "problem") ? w->start_timeout_s : w->timeout_s);
    at_msg_free(&r);
  }
  if (s == AT_ERR_OOM)
    return at_fail(e, s, "%s", why.msg);
  if (s) {
    char how[256];
    reap(w, true, how, sizeof how);
    if (why.status == AT_ERR_BUSY) {
      out->status = AT_RUN_TIMEOUT;
      snprintf(out->detail, sizeof out->detail,
               "no reply within %.3g s: the worker was killed and will be restarted", w->timeout_s);
    } else {
      out->status = AT_RUN_FAULT;
      snprintf(out->detail, sizeof out->detail, "the worker %s (%.200s)", how, why.msg);
    }
    return AT_OK;
  }
  if (strcmp(r.type, "RESULT")) {
    s = unexpected(&r, "RESULT", e);
    at_msg_free(&r);
    if (s != AT_ERR_ARG) /* a confused worker is not trusted with the next candidate */
      reap(w, true, NULL, 0);
    return s;
  }
  const char *st = at_msg_get(&r, "status", NULL), *detail = at_msg_get(&r, "detail", NULL);
  size_t slen = 0;
  const char *raw = at_msg_get(&r, "samples", &slen);
  if (!st || !at_run_parse(st, &out->status)) {
    at_msg_free(&r);
    reap(w, true, NULL, 0);
    return at_fail(e, AT_ERR_IO, "worker protocol: RESULT with status '%s'", st ? st : "");
  }
  snprintf(out->detail, sizeof out->detail, "%s", detail ? detail : "");
  out->max_err = at_msg_num(&r, "max_err", NAN);
  out->sm_clock_mhz = (int)at_msg_int(&r, "sm_mhz", -1);
  out->mem_clock_mhz = (int)at_msg_int(&r, "mem_mhz", -1);
  if (out->status == AT_RUN_OK) {
    int count = (int)(slen / sizeof(double));
    if (count < 1 || count > AT_MAX_SAMPLES || slen % sizeof(double)) {
      at_msg_free(&r);
      reap(w, true, NULL, 0);
      return at_fail(e, AT_ERR_IO, "worker protocol: RESULT ok with %zu bytes of samples", slen);
    }
    double *v = malloc(slen);
    if (!v) {
      at_msg_free(&r);
      return at_fail(e, AT_ERR_OOM, "out of host memory");
    }
    memcpy(v, raw, slen);
    *samples = v;
    *ns = count;
  }
  at_msg_free(&r);
  if (out->status == AT_RUN_FAULT) /* its context is gone: it exits, and is reaped here */
    reap(w, true, NULL, 0);
  return AT_OK;
}

at_status at_worker_measure(at_worker *w, const char *config, const void *cubin, size_t n,
                            at_outcome *out, at_err *e) {
  double *v;
  int ns;
  at_status s = measure(w, config, cubin, n, out, &v, &ns, e);
  if (!s && out->status == AT_RUN_OK) {
    double *copy = malloc((size_t)ns * sizeof *copy);
    if (!copy) {
      free(v);
      return at_fail(e, AT_ERR_OOM, "out of host memory");
    }
    memcpy(copy, v, (size_t)ns * sizeof *copy);
    outcome_stats(out, copy, ns);
    free(copy);
  }
  free(v);
  return s;
}

at_status at_worker_retime(at_worker *w, const char *const *configs, const void *const *cubins,
                           const size_t *sizes, int n, int rounds, at_outcome *out, at_err *e) {
  if (!w || !configs || !cubins || !sizes || !out || n < 1 || rounds < 1)
    return at_fail(e, AT_ERR_ARG, "at_worker_retime: needs a worker, n >= 1 configs, rounds >= 1");
  double **pool = calloc((size_t)n, sizeof *pool);
  int *count = calloc((size_t)n, sizeof *count);
  at_status s = AT_OK;
  if (!pool || !count) {
    s = at_fail(e, AT_ERR_OOM, "out of host memory");
    goto done;
  }
  for (int i = 0; i < n; i++)
    outcome_init(&out[i], AT_RUN_OK);
  for (int r = 0; r < rounds && !s; r++)
    for (int j = 0; j < n && !s; j++) {
      int i = (r + j) % n;
      if (out[i].status != AT_RUN_OK)
        continue; /* failed in an earlier round: keep that outcome */
      at_outcome one;
      double *v;
      int ns;
      if ((s = measure(w, configs[i], cubins[i], sizes[i], &one, &v, &ns, e)))
        break;
      if (one.status != AT_RUN_OK) {
        out[i] = one;
        continue;
      }
      double *grown = count[i] + ns <= AT_MAX_SAMPLES
                          ? realloc(pool[i], (size_t)(count[i] + ns) * sizeof *grown)
                          : pool[i];
      if (!grown) {
        free(v);
        s = at_fail(e, AT_ERR_OOM, "out of host memory");
        break;
      }
      pool[i] = grown;
      int take = count[i] + ns <= AT_MAX_SAMPLES ? ns : 0;
      memcpy(pool[i] + count[i], v, (size_t)take * sizeof *v);
      count[i] += take;
      free(v);
      out[i].max_err = one.max_err;
      out[i].sm_clock_mhz = one.sm_clock_mhz;
      out[i].mem_clock_mhz = one.mem_clock_mhz;
      snprintf(out[i].detail, sizeof out[i].detail, "re-timed: %d rounds, interleaved", r + 1);
    }
  for (int i = 0; i < n && !s; i++)
    if (out[i].status == AT_RUN_OK)
      outcome_stats(&out[i], pool[i], count[i]);
done:
  for (int i = 0; pool && i < n; i++)
    free(pool[i]);
  free(pool);
  free(count);
  return s;
}

at_status at_worker_device(at_worker *w, at_gpu_info *out, at_err *e) {
  if (!w || !out)
    return at_fail(e, AT_ERR_ARG, "at_worker_device: no worker");
  if (w->have_dev) {
    *out = w->dev;
    return AT_OK;
  }
  at_status s = ensure_running(w, e);
  if (s)
    return s;
  at_msg m, r;
  at_msg_init(&m, "DEVICE");
  double deadline = at_now() + w->start_timeout_s;
  at_err why = {0};
  s = at_msg_write(w->to_fd, &m, deadline, &why);
  if (!s)
    s = at_msg_read(&w->rd, deadline, &r, &why);
  if (s)
    return lost(w, AT_ERR_ENV, "while asked for its device", e, &why);
  if (strcmp(r.type, "DEVICE") || !at_device_decode(&r, &w->dev)) {
    s = strcmp(r.type, "DEVICE") ? unexpected(&r, "DEVICE", e)
                                 : at_fail(e, AT_ERR_IO, "worker protocol: DEVICE without fields");
    at_msg_free(&r);
    return s;
  }
  at_msg_free(&r);
  w->have_dev = true;
  *out = w->dev;
  return AT_OK;
}

int at_worker_restarts(const at_worker *w) { return w ? w->restarts : 0; }

int at_worker_problem_aligned(const at_worker *w) {
  return w && w->has_problem ? w->problem_aligned : -1;
}

void at_worker_set_aligned(at_worker *w, bool aligned) {
  if (w)
    w->aligned = aligned;
}

int at_worker_pid(const at_worker *w) { return w && w->pid > 0 ? (int)w->pid : -1; }

void at_worker_stop(at_worker *w) {
  if (!w)
    return;
  if (w->pid > 0) {
    at_msg m;
    at_msg_init(&m, "QUIT");
    bool asked = at_msg_write(w->to_fd, &m, at_now() + 0.5, NULL) == AT_OK;
    bool gone = false;
    for (double end = at_now() + 1.0; asked && !gone && at_now() < end;) {
      int status;
      pid_t r = waitpid(w->pid, &status, WNOHANG);
      if (r == w->pid || (r < 0 && errno != EINTR)) {
        gone = true;
        w->pid = -1;
      } else {
        struct timespec ms = {0, 2000000};
        nanosleep(&ms, NULL);
      }
    }
  }
  reap(w, true, NULL, 0);
  for (size_t i = 0; i < sizeof w->strs / sizeof w->strs[0]; i++)
    free(w->strs[i]);
  free(w);
}
