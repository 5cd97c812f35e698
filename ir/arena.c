/* ir/arena.c — the bump allocator behind every kernel.
 *
 * A kernel's types, exprs, values, ops and strings live in one arena and are freed together.
 * Chunks grow geometrically; memory is zeroed. Host out-of-memory aborts (docs/ir.md, Limits):
 * the IR has no way to continue without memory and every caller would otherwise need a check.
 */
#include "ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
} chunk;

struct ir_arena {
  chunk *head;
};

static void *xcalloc(size_t n) {
  void *p = calloc(1, n);
  if (!p) {
    fputs("tilec: out of host memory\n", stderr);
    abort(); /* ok: documented arena policy (docs/ir.md, Limits) */
  }
  return p;
}

ir_arena *ir_arena_new(void) { return xcalloc(sizeof(ir_arena)); }

void ir_arena_free(ir_arena *a) {
  if (!a)
    return;
  for (chunk *c = a->head, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  free(a);
}

void *ir_alloc(ir_arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  chunk *c = a->head;
  if (!c || c->cap - c->used < size) {
    size_t cap = c ? c->cap * 2 : 16384;
    if (cap > (1u << 24))
      cap = 1u << 24;
    if (cap < size)
      cap = size;
    chunk *n = xcalloc(sizeof(chunk) + cap);
    n->cap = cap;
    n->next = c;
    a->head = c = n;
  }
  void *p = c->data + c->used;
  c->used += size;
  return p;
}

char *ir_strndup(ir_arena *a, const char *s, size_t n) {
  char *p = ir_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *ir_strdup(ir_arena *a, const char *s) { return ir_strndup(a, s, strlen(s)); }
