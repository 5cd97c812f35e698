/* compiler/cli_worker.h — `tilec __worker`: the measuring worker process of the autotuner.
 *
 * Hidden subcommand, started by autotune/worker.c (posix_spawn) with its requests on fd 3 and
 * its replies on fd 4; it speaks the protocol of autotune/worker.h (docs/tuning-worker.md).
 * Part of the tilec command line, not of the library: it needs the whole pipeline (parse,
 * specialize, GPU IR, lowering for the launch geometry) plus the runtime and the problems.
 */
#ifndef TILEC_COMPILER_CLI_WORKER_H
#define TILEC_COMPILER_CLI_WORKER_H

/* Serves requests until QUIT or end of file on fd 3; returns the process exit code (0, or 1
 * when the pipes are unusable). A candidate that faults the CUDA context ends the process right
 * after its reply (the parent restarts a fresh worker). argv: nothing is expected. */
int cli_worker_main(int argc, char **argv);

#endif
