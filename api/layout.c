/* api/layout.c — block-sparse attention layouts for engines: a mask description in, the CSR
 * layout of kernels/mask.h out, on the host and in device memory of the context, with the
 * element-mask parameters bsattention takes beside it.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "kernels/mask.h"

struct tilec_layout {
  tilec_context *ctx; /* holds a reference while device memory is live */
  kn_layout l;
  kn_mask m;
  int32_t *doc;  /* S document ids (zeros without a document mask) */
  uint64_t d[5]; /* full_ptr, full_idx, part_ptr, part_idx, doc */
};

void tilec_mask_desc_init(tilec_mask_desc *d) {
  if (!d)
    return;
  memset(d, 0, sizeof *d);
  d->size = sizeof *d;
  d->mask = "none";
  d->B = d->H = 1;
  d->block_m = d->block_n = 64;
}

void tilec_layout_destroy(tilec_layout *l) {
  if (!l)
    return;
  for (int i = 0; i < 5 && l->ctx && l->ctx->rt; i++)
    rt_mem_free(l->ctx->rt, l->d[i]);
  if (l->ctx)
    api_ctx_release(l->ctx);
  kn_layout_free(&l->l);
  kn_mask_free(&l->m);
  free(l->doc);
  free(l);
}

static tilec_status upload(tilec_layout *l) {
  rt_ctx *rt = l->ctx->rt;
  const kn_layout *y = &l->l;
  size_t rows = (size_t)y->L * (size_t)y->n_qblocks + 1;
  const void *src[5] = {y->full_ptr, y->full_idx, y->part_ptr, y->part_idx, l->doc};
  size_t n[5] = {rows, y->n_full > 0 ? (size_t)y->n_full : 1, rows,
                 y->n_part > 0 ? (size_t)y->n_part : 1, (size_t)y->S};
  rt_err e = {0};
  for (int i = 0; i < 5; i++) {
    rt_status s = rt_mem_alloc(rt, n[i] * sizeof(int32_t), &l->d[i], &e);
    if (!s)
      s = rt_memcpy_htod(rt, l->d[i], src[i], n[i] * sizeof(int32_t), &e);
    if (s)
      return api_fail(s == RT_ERR_OOM ? TILEC_ERR_OOM : TILEC_ERR_CUDA, "layout: %s", e.msg);
  }
  return TILEC_OK;
}

tilec_status tilec_layout_create(tilec_context *ctx, const tilec_mask_desc *desc,
                                 tilec_layout **out) {
  if (!out)
    return api_fail(TILEC_ERR_ARG, "tilec_layout_create: out is NULL");
  *out = NULL;
  if (!ctx || !desc)
    return api_fail(TILEC_ERR_ARG, "tilec_layout_create: ctx and desc are required");
  tilec_status s = api_check_size("tilec_mask_desc", desc->size, sizeof *desc, sizeof *desc);
  if (s)
    return s;
  int64_t skv = desc->SKV ? desc->SKV : desc->S;
  if (desc->B < 1 || desc->H < 1 || desc->S < 1 || skv < 1 || desc->block_m < 1 ||
      desc->block_n < 1)
    return api_fail(TILEC_ERR_SHAPE,
                    "tilec_layout_create: B, H, S, SKV and the block sizes must be >= 1 (B=%d "
                    "H=%d S=%lld SKV=%lld block %dx%d)",
                    desc->B, desc->H, (long long)desc->S, (long long)skv, desc->block_m,
                    desc->block_n);
  tilec_layout *l = calloc(1, sizeof *l);
  if (!l)
    return api_fail(TILEC_ERR_OOM, "out of memory");
  char err[512];
  if (kn_mask_parse(desc->mask ? desc->mask : "none", desc->S, skv, desc->seed, &l->m, err,
                    sizeof err) ||
      kn_layout_build(&l->m, desc->B, desc->H, desc->S, skv, desc->block_m, desc->block_n, &l->l,
                      err, sizeof err)) {
    s = api_fail(TILEC_ERR_SHAPE, "mask '%s': %s", desc->mask ? desc->mask : "none", err);
    goto fail;
  }
  if (!(l->doc = calloc((size_t)desc->S, sizeof *l->doc))) {
    s = api_fail(TILEC_ERR_OOM, "out of memory");
    goto fail;
  }
  if (l->m.ndoc_tokens)
    memcpy(l->doc, l->m.doc, (size_t)desc->S * sizeof *l->doc);
  if (ctx->rt) {
    l->ctx = ctx;
    api_ctx_retain(ctx);
    if ((s = upload(l)))
      goto fail;
  }
  *out = l;
  return TILEC_OK;
fail:
  tilec_layout_destroy(l);
  return s;
}

tilec_status tilec_layout_info_get(const tilec_layout *l, tilec_layout_info *info) {
  if (!l || !info)
    return api_fail(TILEC_ERR_ARG, "tilec_layout_info_get: layout and info are required");
  tilec_status s = api_check_size("tilec_layout_info", info->size, sizeof *info, sizeof *info);
  if (s)
    return s;
  const kn_layout *y = &l->l;
  info->rows = y->L;
  info->n_qblocks = y->n_qblocks;
  info->n_kvblocks = y->n_kvblocks;
  info->lrow_mul = y->L > 1;
  info->n_full = y->n_full;
  info->n_part = y->n_part;
  info->full_ptr = y->full_ptr, info->full_idx = y->full_idx;
  info->part_ptr = y->part_ptr, info->part_idx = y->part_idx;
  info->doc = l->doc;
  info->d_full_ptr = l->d[0], info->d_full_idx = l->d[1];
  info->d_part_ptr = l->d[2], info->d_part_idx = l->d[3], info->d_doc = l->d[4];
  info->causal = l->m.causal;
  info->window = l->m.window;
  info->prefix = l->m.prefix;
  return TILEC_OK;
}
