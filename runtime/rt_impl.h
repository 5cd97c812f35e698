/* runtime/rt_impl.h — helpers shared by the files of runtime/ only (error formatting, the
 * library search, the per-library halves of rt_lib_query). Other folders use runtime/rt.h.
 */
#ifndef TILEC_RUNTIME_RT_IMPL_H
#define TILEC_RUNTIME_RT_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/rt.h"

/* Formats one line into e (when e != NULL), sets e->status and returns s. */
rt_status rt_fail(rt_err *e, rt_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Copies the string src into dst[cap], cut to fit; always terminated when cap > 0. */
void rt_copy(char *dst, size_t cap, const char *src);

/* Appends a library log to e->msg as ": <log>" with line breaks folded into "; ", cut with "..."
 * when it does not fit. No-op for NULL e, NULL or blank log. */
void rt_err_append_log(rt_err *e, const char *log);

/* Opens a shared library with dlopen(RTLD_NOW | RTLD_LOCAL). When the environment variable
 * `env` is set (non-empty), only that file is tried. Otherwise each of names (NULL-terminated)
 * is tried on the loader path, then as $CUDA_HOME/lib64/<name> and /usr/local/cuda/lib64/<name>.
 * On success returns the handle (kept open for the process lifetime) and stores the opened
 * file's path in path; on failure returns NULL and stores the first loader error in why. */
void *rt_dl_search(const char *env, const char *const *names, char *path, size_t pathcap, char *why,
                   size_t whycap);

/* Makes c's context current on the calling thread for calls into another CUDA library
 * (cuBLASLt): pushes it when another context is current (*pushed tells rt_ctx_leave to pop). */
rt_status rt_ctx_enter(const rt_ctx *c, bool *pushed, rt_err *e);
void rt_ctx_leave(bool pushed);

/* The PCI bus id of CUDA device `ordinal` ("0000:3b:00.0"), to find it in NVML. */
rt_status rt_device_pci_bus_id(int ordinal, char *buf, size_t cap, rt_err *e);

/* rt_lib_query for each library (cuda.c, nvrtc.c). */
void rt_lib_query_cuda(rt_lib_info *out);
void rt_lib_query_nvrtc(rt_lib_info *out);
void rt_lib_query_nvjitlink(rt_lib_info *out);

#endif
