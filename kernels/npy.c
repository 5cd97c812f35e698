/* kernels/npy.c — the .npy v1.0 writer behind `tilec run --dump` style outputs.
 *
 * Format (numpy.lib.format): "\x93NUMPY", version 1 0, a little-endian uint16 header length,
 * then a Python dict literal {'descr': ..., 'fortran_order': False, 'shape': (...), } padded
 * with spaces and ended by '\n' so that the data starts at a multiple of 64 bytes. Elements are
 * encoded little-endian byte by byte, so the output does not depend on the host's byte order.
 */
#include "kernels/npy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kernels/fail.h"

enum { CHUNK = 1024 }; /* elements converted per fwrite */

/* Encodes n elements of data starting at element i into buf as little-endian bytes; returns
 * the byte count. f64src: data holds doubles to be written as float32. */
static size_t encode(unsigned char *buf, const void *data, kn_npy_dtype dt, bool f64src, size_t i,
                     size_t n) {
  size_t w = dt == KN_NPY_F64 ? 8 : 4;
  for (size_t e = 0; e < n; e++) {
    uint64_t bits = 0;
    if (f64src) {
      float f = (float)((const double *)data)[i + e];
      uint32_t u;
      memcpy(&u, &f, 4);
      bits = u;
    } else if (w == 8) {
      memcpy(&bits, (const unsigned char *)data + (i + e) * 8, 8);
    } else {
      uint32_t u;
      memcpy(&u, (const unsigned char *)data + (i + e) * 4, 4);
      bits = u;
    }
    for (size_t b = 0; b < w; b++)
      buf[e * w + b] = (unsigned char)(bits >> (8 * b));
  }
  return n * w;
}

static int write_npy(const char *path, const void *data, kn_npy_dtype dt, bool f64src, int ndim,
                     const int64_t *shape, char *err, size_t cap) {
  static const char *const descr[] = {"<f4", "<f8", "<i4"};
  if (!path || (int)dt < 0 || dt > KN_NPY_I32 || ndim < 0 || ndim > 16 || (ndim && !shape))
    return kn_fail(err, cap, "npy: bad arguments");
  char hdr[1024];
  int len =
      snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr[dt]);
  size_t count = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0 || (shape[d] > 0 && count > SIZE_MAX / 8 / (size_t)shape[d]))
      return kn_fail(err, cap, "npy: %s: bad shape", path);
    count *= (size_t)shape[d];
    if (ndim == 1)
      len += snprintf(hdr + len, sizeof hdr - (size_t)len, "%lld,", (long long)shape[d]);
    else
      len += snprintf(hdr + len, sizeof hdr - (size_t)len, "%s%lld", d ? ", " : "",
                      (long long)shape[d]);
  }
  len += snprintf(hdr + len, sizeof hdr - (size_t)len, "), }");
  while ((10 + len + 1) % 64 != 0)
    hdr[len++] = ' ';
  hdr[len++] = '\n';
  if (!data && count > 0)
    return kn_fail(err, cap, "npy: %s: no data", path);

  errno = 0;
  FILE *f = fopen(path, "wb");
  if (!f)
    return kn_fail(err, cap, "npy: cannot open %s: %s", path, strerror(errno));
  unsigned char pre[10] = {
      0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(len & 0xff), (unsigned char)(len >> 8)};
  bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)len, f) == (size_t)len;
  unsigned char buf[CHUNK * 8];
  for (size_t i = 0; ok && i < count; i += CHUNK) {
    size_t n = count - i < CHUNK ? count - i : CHUNK;
    size_t bytes = encode(buf, data, dt, f64src, i, n);
    ok = fwrite(buf, 1, bytes, f) == bytes;
  }
  int saved = errno;
  if (fclose(f) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    remove(path);
    return kn_fail(err, cap, "npy: cannot write %s: %s", path,
                   saved ? strerror(saved) : "short write");
  }
  return 0;
}

int kn_npy_write(const char *path, const void *data, kn_npy_dtype dtype, int ndim,
                 const int64_t *shape, char *err, size_t errcap) {
  return write_npy(path, data, dtype, false, ndim, shape, err, errcap);
}

int kn_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, char *err,
                     size_t errcap) {
  return write_npy(path, data, KN_NPY_F32, false, ndim, shape, err, errcap);
}

int kn_npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape,
                     char *err, size_t errcap) {
  return write_npy(path, data, KN_NPY_I32, false, ndim, shape, err, errcap);
}

int kn_npy_write_f64_as_f32(const char *path, const double *data, int ndim, const int64_t *shape,
                            char *err, size_t errcap) {
  return write_npy(path, data, KN_NPY_F32, true, ndim, shape, err, errcap);
}
