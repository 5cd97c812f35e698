/* autotune/sha256.h — SHA-256 (FIPS 180-4), written here so that the tuning database checks its
 * stored cubins without another dependency. Streaming form for large inputs, one-shot helpers
 * for the common case. */
#ifndef TILEC_AUTOTUNE_SHA256_H
#define TILEC_AUTOTUNE_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* A running hash; plain data, callers own it (usually on the stack). */
typedef struct at_sha256_ctx {
  uint32_t h[8];
  uint64_t bytes; /* message length so far */
  unsigned char buf[64];
  size_t nbuf; /* bytes waiting in buf */
} at_sha256_ctx;

void at_sha256_init(at_sha256_ctx *c);
void at_sha256_update(at_sha256_ctx *c, const void *data, size_t n);
/* Writes the 32-byte digest; c must be initialized again before reuse. */
void at_sha256_final(at_sha256_ctx *c, unsigned char out[32]);

/* One-shot digest of data[0..n) (data may be NULL when n is 0). */
void at_sha256(const void *data, size_t n, unsigned char out[32]);
/* The same digest as 64 lower-case hex digits and a NUL. */
void at_sha256_hex(const void *data, size_t n, char out[65]);
/* Writes the 32 bytes of d as 64 lower-case hex digits and a NUL. */
void at_hex32(const unsigned char d[32], char out[65]);

#endif
