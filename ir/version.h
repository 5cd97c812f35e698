/* ir/version.h — the version of tilec, one place for the CLI, the toolchain key of the tuning
 * database and (later) the public header. */
#ifndef TILEC_IR_VERSION_H
#define TILEC_IR_VERSION_H

#define TILEC_VERSION_MAJOR 0
#define TILEC_VERSION_MINOR 1
#define TILEC_VERSION_PATCH 0
#define TILEC_VERSION_STRING "0.1.0"

#endif
