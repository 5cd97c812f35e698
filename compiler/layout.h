/* compiler/layout.h — distributed layouts: which thread holds which element of a tile.
 *
 * Every tile value of the GPU IR has a layout. A layout maps (thread id, register index) to a
 * tile coordinate; the same function drives the GPU-IR simulator (compiler/gpusim.c) and the
 * LLVM lowering (codegen/), so a layout bug shows up in CI on the CPU. Kinds (docs/codegen.md):
 *
 *   BLOCKED  each thread holds spt[d] consecutive elements per dim, threads of a warp tile tpw[d],
 *            warps tile wpc[d]; `order` lists dims fastest first. The CTA tile (spt*tpw*wpc)
 *            repeats over larger shapes and wraps (replicates) over smaller ones.
 *   MMA      the accumulator of mma.sync.m16n8: per 16x8 instruction tile, lane l holds rows
 *            l/4 and l/4+8, columns 2*(l%4)+{0,1}; warps tile wpc[0] x wpc[1].
 *   DOTOP    an MMA operand: A (op 0, 16 x 8kw per instruction) or B (op 1, 8kw x 8), as the PTX
 *            ISA defines the fragments of mma.m16n8k16 for 16-bit types (kw = 2 elements of K
 *            per 32-bit register) and of mma.m16n8k32 for 8-bit types (kw = 4).
 *   SLICE    the parent layout with dim `dim` removed (the result of a reduction along it).
 *
 * Register counts and coordinates are compile-time functions of the layout and the shape.
 */
#ifndef TILEC_COMPILER_LAYOUT_H
#define TILEC_COMPILER_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

typedef enum { LY_BLOCKED = 1, LY_MMA, LY_DOTOP, LY_SLICE } ly_kind;

enum { LY_WARP = 32, LY_MAX_WARPS = 32, LY_MAX_THREADS = LY_WARP * LY_MAX_WARPS };

typedef struct ly_layout ly_layout;
struct ly_layout {
  ly_kind kind;
  int rank;                /* rank of the tiles it describes */
  int spt[IR_MAX_RANK];    /* BLOCKED: elements per thread per dim */
  int tpw[IR_MAX_RANK];    /* BLOCKED: threads per warp per dim (product 32) */
  int wpc[IR_MAX_RANK];    /* BLOCKED, MMA: warps per CTA per dim (product = warps) */
  int order[IR_MAX_RANK];  /* BLOCKED: dims, fastest varying first */
  const ly_layout *parent; /* DOTOP: the MMA layout; SLICE: the sliced layout */
  int opidx;               /* DOTOP: 0 = A [M, K], 1 = B [K, N] */
  int kw;                  /* DOTOP: K elements per 32-bit register: 2 (16-bit), 4 (8-bit) */
  int dim;                 /* SLICE: the removed dim of the parent */
};

/* Layouts are small values; these return them by value (parents must outlive children). */
ly_layout ly_blocked(int rank, const int64_t *shape, int elem_bits, int warps);
ly_layout ly_mma(int warps, const int64_t shape[2]);
ly_layout ly_dotop(const ly_layout *mma, int opidx, int kw);
ly_layout ly_slice(const ly_layout *parent, int dim);

int ly_warps(const ly_layout *l);
bool ly_equal(const ly_layout *a, const ly_layout *b);

/* Registers per thread for a tile of the given shape (rank = l->rank). Identical for every
 * thread. Registers that map to the same coordinate in one thread (wrapping) are allowed. */
int ly_nregs(const ly_layout *l, const int64_t *shape);

/* The coordinate of register reg of thread tid (0 <= tid < 32 * warps) for a tile of shape. */
void ly_coord(const ly_layout *l, const int64_t *shape, int tid, int reg, int64_t *coord);

/* The register of thread tid that holds coord, or -1 when the thread holds none. */
int ly_find(const ly_layout *l, const int64_t *shape, int tid, const int64_t *coord);

/* The affine form of a layout, which the lowering turns into index arithmetic:
 *   coord[d](tid, reg) = (reg[reg][d] + sum over set bits b of tid of bit[b][d]) mod shape[d]
 * reg[] is compile-time per register, bit[][] per thread-id bit. Every layout kind here has
 * this form; ly_linear verifies it for every thread and register and fails otherwise. */
typedef struct ly_affine {
  int rank, nregs, nbits;       /* nbits = log2(threads) */
  int64_t bit[16][IR_MAX_RANK]; /* per thread-id bit */
  int64_t *reg;                 /* [nregs][IR_MAX_RANK], malloc'd */
} ly_affine;
bool ly_linear(const ly_layout *l, const int64_t *shape, ly_affine *out);
void ly_affine_free(ly_affine *a); /* NULL-safe */

/* Writes a short description ("#blocked<spt=[1,8],tpw=[4,8],wpc=[4,1],order=[1,0]>"). */
void ly_print(const ly_layout *l, char *buf, size_t cap);

/* Checks that every element of the shape is held by some thread (a layout covers its tile).
 * Returns false and names a missing coordinate in msg otherwise. Used by tests and asserts. */
bool ly_covers(const ly_layout *l, const int64_t *shape, char *msg, size_t cap);

#endif
