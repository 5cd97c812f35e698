/* kernels/fail.h — the error convention of the host-side kernel code (the .c files of kernels/).
 *
 * Functions that can fail return 0 on success and nonzero on failure, with a message written
 * into a caller buffer `char *err, size_t errcap`; nothing here prints or exits.
 */
#ifndef TILEC_KERNELS_FAIL_H
#define TILEC_KERNELS_FAIL_H

#include <stddef.h>

/* Formats the message into err (when err and cap allow) and returns -1, so a caller can write
 * `return kn_fail(err, cap, "...", ...)` both for statuses and for negative indices. */
int kn_fail(char *err, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
