/* builtin_sources.h - the built-in kernels' .tile sources, embedded into the library.
 *
 * The build turns every kernels/NAME.tile into one entry {"NAME", text} of this table (see
 * cmake/embed_tiles.cmake; the generated file is <build>/gen/builtin_sources.c). Entries are
 * sorted by name and the table ends with {NULL, NULL}. Texts are NUL-terminated and static.
 */
#ifndef TILEC_BUILTIN_SOURCES_H
#define TILEC_BUILTIN_SOURCES_H

#include <stddef.h>

struct tilec_builtin_source {
  const char *name; /* "matmul" for kernels/matmul.tile */
  const char *text; /* the file's bytes, NUL-terminated */
};

extern const struct tilec_builtin_source tilec_builtin_sources[];

#endif
