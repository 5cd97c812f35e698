/* compiler/cli_bench.h — `tilec bench matmul` (tilec's matmul vs cuBLASLt on one device). */
#ifndef TILEC_COMPILER_CLI_BENCH_H
#define TILEC_COMPILER_CLI_BENCH_H

/* Runs the benchmark with the arguments after `bench matmul`. Returns the exit code: 0 ok, 1 bad
 * input or the two results disagree, 2 environment (no driver, GPU or cuBLASLt). */
int cli_bench_matmul(int argc, char **argv);

#endif
