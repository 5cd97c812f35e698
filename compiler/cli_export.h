/* compiler/cli_export.h — `tilec export`: the tuned winners of a database as a C source and
 * header an engine compiles into itself (autotune/export.h, docs/export.md). */
#ifndef TILEC_COMPILER_CLI_EXPORT_H
#define TILEC_COMPILER_CLI_EXPORT_H

/* Runs `tilec export` with argv its options. Writes the files named by -o (and the header
 * beside it); messages on stderr. Returns the exit code: 0 ok, 1 bad input (options, kernels,
 * rows, a damaged cubin), 2 an unusable database or output path. */
int cli_export(int argc, char **argv);

#endif
