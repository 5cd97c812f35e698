/* lower.h - what the files of codegen/ share among themselves, in LLVM-C types.
 *
 * Included only by the files of codegen/ (the rest of tilec sees codegen.h, which has no LLVM
 * type). target.c owns the NVPTX registration and the target machines; lower.c builds modules and
 * hands them to a target machine made here.
 */
#ifndef TILEC_CODEGEN_LOWER_H
#define TILEC_CODEGEN_LOWER_H

#include <stddef.h>

#include <llvm-c/TargetMachine.h>

#include "codegen.h"

/* Creates the NVPTX target machine of t (default code generation level, t's PTX ISA), registering
 * the NVPTX back end on first use. Returns NULL and writes a message into err on failure. The
 * caller disposes of it (LLVMDisposeTargetMachine). */
LLVMTargetMachineRef cg_target_machine(const struct cg_target *t, char *err, size_t errcap);

/* The calling thread's target machine for t (cg_target_machine's, created on its first use in
 * this thread and disposed of when the thread exits). Borrowed: the caller must not dispose of
 * it, nor hand it to another thread. Returns NULL and writes a message into err on failure. */
LLVMTargetMachineRef cg_thread_target_machine(const struct cg_target *t, char *err, size_t errcap);

/* The target triple of every module tilec builds ("nvptx64-nvidia-cuda"); static. */
const char *cg_triple(void);

#endif
