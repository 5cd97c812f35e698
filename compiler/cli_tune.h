/* compiler/cli_tune.h — `tilec tune` (autotune/tune.h behind a command line). */
#ifndef TILEC_COMPILER_CLI_TUNE_H
#define TILEC_COMPILER_CLI_TUNE_H

/* Runs `tilec tune` with the arguments after the command name. Returns the exit code: 0 ok, 1
 * bad input or no candidate passed, 2 environment (no GPU, driver or usable database). */
int cli_tune(int argc, char **argv);

#endif
