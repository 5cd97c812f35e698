/* tests/install/consumer.c — a program outside the tree that uses an installed tilec: the
 * header from include/tilec/, the library from lib/. It checks that header and library agree,
 * and that the API works without a GPU (a NO_GPU context, the IR parser, a layout). */
#include <stdio.h>
#include <string.h>

#include <tilec/tilec.h>

int main(void) {
  if (strcmp(tilec_version(), TILEC_VERSION_STRING)) {
    fprintf(stderr, "header %s, library %s\n", TILEC_VERSION_STRING, tilec_version());
    return 1;
  }
  tilec_context_opts o;
  tilec_context_opts_init(&o);
  o.flags = TILEC_CONTEXT_NO_GPU | TILEC_CONTEXT_NO_DB;
  o.arch = "sm_90";
  tilec_context *ctx = NULL;
  if (tilec_context_create(&o, &ctx)) {
    fprintf(stderr, "context: %s\n", tilec_errmsg(NULL));
    return 1;
  }
  const char *text = "kernel k\nargs (%X: tensor<f32>[N])\ngrid (1)\n{\n}\n";
  tilec_ir *ir = NULL;
  if (tilec_ir_parse(text, strlen(text), "k.tile", &ir)) {
    fprintf(stderr, "parse: %s\n", tilec_errmsg(ctx));
    return 1;
  }
  tilec_mask_desc d;
  tilec_mask_desc_init(&d);
  d.mask = "causal";
  d.S = 512;
  tilec_layout *l = NULL;
  tilec_layout_info li = {.size = sizeof li};
  if (tilec_layout_create(ctx, &d, &l) || tilec_layout_info_get(l, &li)) {
    fprintf(stderr, "layout: %s\n", tilec_errmsg(ctx));
    return 1;
  }
  printf("tilec %s: kernel %s, causal layout %lld full + %lld partial blocks, status %s\n",
         tilec_version(), tilec_ir_name(ir), (long long)li.n_full, (long long)li.n_part,
         tilec_status_name(TILEC_ERR_SHAPE));
  tilec_layout_destroy(l);
  tilec_ir_destroy(ir);
  tilec_context_destroy(ctx);
  return 0;
}
