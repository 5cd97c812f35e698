/* tests/export/cuda_stub.h — what tests/export/cuda_stub.c recorded (unit.export). */
#ifndef TILEC_TESTS_EXPORT_CUDA_STUB_H
#define TILEC_TESTS_EXPORT_CUDA_STUB_H

#include <cuda.h>
#include <stddef.h>

typedef struct stub_state {
  int loads, live_modules, launches, set_smem;
  const void *last_image; /* the image of the last launched function */
  unsigned dims[7];       /* grid xyz, block xyz, dynamic shared memory of the last launch */
  char name[128];
  int nparams;
  unsigned char params[4096]; /* the last launch's parameters, concatenated */
  size_t params_size;
} stub_state;

extern stub_state stub;

/* The parameter sizes the next launch passes (the stub cannot know them from pointers). */
void stub_expect_params(int count, const unsigned char *psize);

#endif
