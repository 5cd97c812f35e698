/* kernels/npy.h — writing NumPy .npy files (format version 1.0), for dumping inputs, outputs and
 * layouts of `tilec run` so they can be inspected or compared from Python.
 */
#ifndef TILEC_KERNELS_NPY_H
#define TILEC_KERNELS_NPY_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  KN_NPY_F32, /* '<f4' */
  KN_NPY_F64, /* '<f8' */
  KN_NPY_I32, /* '<i4' */
} kn_npy_dtype;

/* Writes data (host-order elements of dtype, C order, prod(shape) of them) to path as a .npy
 * v1.0 file: little-endian, C order, header padded with spaces to a multiple of 64 bytes.
 * 0 <= ndim <= 16, every shape[i] >= 0. Returns 0, or nonzero with a message in err (bad
 * arguments, or an I/O error with strerror text; a partly written file is removed). */
int kn_npy_write(const char *path, const void *data, kn_npy_dtype dtype, int ndim,
                 const int64_t *shape, char *err, size_t errcap);

/* kn_npy_write for float32 data ('<f4'). */
int kn_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, char *err,
                     size_t errcap);

/* kn_npy_write for int32 data ('<i4'), e.g. the index arrays of a layout. */
int kn_npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape,
                     char *err, size_t errcap);

/* Writes double data rounded to float32 ('<f4'), as results are compared in their own dtype. */
int kn_npy_write_f64_as_f32(const char *path, const double *data, int ndim, const int64_t *shape,
                            char *err, size_t errcap);

#endif
