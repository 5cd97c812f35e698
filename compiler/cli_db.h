/* compiler/cli_db.h — `tilec db ...`: list, show, export, import, merge, prune and check the
 * tuning database (autotune/db.h). Part of the command line, not of the library. */
#ifndef TILEC_COMPILER_CLI_DB_H
#define TILEC_COMPILER_CLI_DB_H

/* Runs `tilec db` with argv[0] the db command ("list", ...) and the rest its options. Prints
 * to stdout (results) and stderr (messages); returns the exit code: 0 ok, 1 bad input, 2 an
 * unusable database path. */
int cli_db_main(int argc, char **argv);

#endif
