/* tests/export/driver.c — runs the select, pack and launch functions of a generated tuned.c
 * (prefix "t", kernels matmul, attention and the file kernel scal, made by unit.export) on the
 * commands of stdin and prints what they return, one line per command; unit.export compares the
 * lines with its oracle (at_bucket_key / at_bucket_distance, rt_params_pack). Launches go to
 * cuda_stub.c.
 *
 *   sel matmul M N K DTYPE                      -> "EXACT NEAREST" entry indices
 *   sel attention B H HKV S SKV D CAUSAL DTYPE  -> same
 *   pack matmul ENTRY M N K [AOFF]              -> rc, parameters, grid (A's address AOFF bytes
 *                                                  past its allocation's)
 *   pack attention ENTRY B H HKV S SKV D SCALE  -> same
 *   pack scal ENTRY N N2                        -> same (h = 1.5, flag = 1, s = -0.25)
 *   launch ...                                  -> as pack, then the stub's record
 *   check ALLOW                                 -> rc of tuned_t_check_device(0, ALLOW)
 *   info ENTRY                                  -> the entry's variant and generic cubin size
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/export/cuda_stub.h"
#include "tuned.h"

static void contiguous(tuned_t_tensor *t, unsigned long long ptr, int rank,
                       const long long *shape) {
  long long s = 1;
  int i;
  t->ptr = (CUdeviceptr)ptr;
  for (i = rank - 1; i >= 0; i--) {
    t->shape[i] = shape[i];
    t->stride[i] = s;
    s *= shape[i];
  }
}

static void print_pack(CUresult r, const tuned_t_params *p) {
  const unsigned char *b = (const unsigned char *)p->words;
  int i, j;
  printf("rc=%d", (int)r);
  if (r) {
    printf("\n");
    return;
  }
  printf(" n=%d size=%u grid=%u,%u,%u", p->count, (unsigned)p->size, p->grid[0], p->grid[1],
         p->grid[2]);
  for (i = 0; i < p->count; i++) {
    printf(" %u:%u:", p->offset[i], p->psize[i]);
    for (j = 0; j < p->psize[i]; j++)
      printf("%02x", b[p->offset[i] + j]);
  }
  printf("\n");
}

static unsigned long long fnv(const unsigned char *p, size_t n) {
  unsigned long long h = 1469598103934665603ull;
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static void print_launch(CUresult r, int entry, int launches_before) {
  size_t i;
  const tuned_t_entry_info *info = tuned_t_entry(entry);
  printf("launch rc=%d", (int)r);
  if (r || stub.launches == launches_before) {
    printf(" launched=%d\n", stub.launches - launches_before);
    return;
  }
  /* unit.export names an aligned entry's generic cubin "generic_SIZE" */
  printf(
      " grid=%u,%u,%u block=%u,%u,%u smem=%u name=%s image=%016llx loads=%d params=", stub.dims[0],
      stub.dims[1], stub.dims[2], stub.dims[3], stub.dims[4], stub.dims[5], stub.dims[6], stub.name,
      fnv(stub.last_image,
          strncmp(stub.name, "generic_", 8) ? info->cubin_size : info->generic_cubin_size),
      stub.loads);
  for (i = 0; i < stub.params_size; i++)
    printf("%02x", stub.params[i]);
  printf("\n");
}

int main(void) {
  char line[512], kernel[32], cmd[16], dtype[32];
  while (fgets(line, sizeof line, stdin)) {
    long long v[8] = {0};
    int entry = 0;
    if (sscanf(line, "%15s %31s", cmd, kernel) < 1)
      continue;
    if (!strcmp(cmd, "check")) {
      printf("check rc=%d\n", (int)tuned_t_check_device(0, atoi(kernel)));
    } else if (!strcmp(cmd, "info")) {
      const tuned_t_entry_info *info = tuned_t_entry(atoi(kernel));
      if (info)
        printf("info aligned=%d generic=%u\n", info->aligned, (unsigned)info->generic_cubin_size);
      else
        printf("info none\n");
    } else if (!strcmp(cmd, "sel") && !strcmp(kernel, "matmul") &&
               sscanf(line, "%*s %*s %lld %lld %lld %31s", &v[0], &v[1], &v[2], dtype) == 4) {
      tuned_t_matmul_problem p;
      p.M = v[0], p.N = v[1], p.K = v[2], p.dtype = dtype;
      printf("%d %d\n", tuned_t_matmul_select(&p, 1), tuned_t_matmul_select(&p, 0));
    } else if (!strcmp(cmd, "sel") && !strcmp(kernel, "attention") &&
               sscanf(line, "%*s %*s %lld %lld %lld %lld %lld %lld %lld %31s", &v[0], &v[1], &v[2],
                      &v[3], &v[4], &v[5], &v[6], dtype) == 8) {
      tuned_t_attention_problem p;
      p.B = v[0], p.H = v[1], p.HKV = v[2], p.S = v[3], p.SKV = v[4], p.D = v[5], p.causal = v[6];
      p.dtype = dtype;
      printf("%d %d\n", tuned_t_attention_select(&p, 1), tuned_t_attention_select(&p, 0));
    } else if (!strcmp(kernel, "matmul") && sscanf(line, "%*s %*s %d %lld %lld %lld %lld", &entry,
                                                   &v[0], &v[1], &v[2], &v[3]) >= 4) {
      tuned_t_matmul_args a;
      tuned_t_params p;
      long long sa[2], sb[2], sc[2];
      CUresult r;
      int before = stub.launches;
      sa[0] = v[0], sa[1] = v[2], sb[0] = v[2], sb[1] = v[1], sc[0] = v[0], sc[1] = v[1];
      memset(&a, 0, sizeof a);
      contiguous(&a.A, 0x7f0000100000ull + (unsigned long long)v[3], 2, sa);
      contiguous(&a.B, 0x7f0000200000ull, 2, sb);
      contiguous(&a.C, 0x7f0000300000ull, 2, sc);
      r = tuned_t_matmul_pack(entry, &a, &p);
      print_pack(r, &p);
      if (!strcmp(cmd, "launch")) {
        if (!r)
          stub_expect_params(p.count, p.psize);
        r = tuned_t_matmul_launch(entry, &a, NULL);
        print_launch(r, entry, before);
      }
    } else if (!strcmp(kernel, "attention") &&
               sscanf(line, "%*s %*s %d %lld %lld %lld %lld %lld %lld %31s", &entry, &v[0], &v[1],
                      &v[2], &v[3], &v[4], &v[5], dtype) == 8) {
      tuned_t_attention_args a;
      tuned_t_params p;
      long long q[4], kv[4], lse[3];
      CUresult r;
      int before = stub.launches;
      q[0] = v[0], q[1] = v[1], q[2] = v[3], q[3] = v[5];
      kv[0] = v[0], kv[1] = v[2], kv[2] = v[4], kv[3] = v[5];
      lse[0] = v[0], lse[1] = v[1], lse[2] = v[3];
      memset(&a, 0, sizeof a);
      contiguous(&a.Q, 0x7f0000100000ull, 4, q);
      contiguous(&a.K, 0x7f0000200000ull, 4, kv);
      contiguous(&a.V, 0x7f0000300000ull, 4, kv);
      contiguous(&a.O, 0x7f0000400000ull, 4, q);
      contiguous(&a.LSE, 0x7f0000500000ull, 3, lse);
      a.scale = (float)atof(dtype);
      r = tuned_t_attention_pack(entry, &a, &p);
      print_pack(r, &p);
      if (!strcmp(cmd, "launch")) {
        if (!r)
          stub_expect_params(p.count, p.psize);
        r = tuned_t_attention_launch(entry, &a, NULL);
        print_launch(r, entry, before);
      }
    } else if (!strcmp(kernel, "scal") &&
               sscanf(line, "%*s %*s %d %lld %lld", &entry, &v[0], &v[1]) == 3) {
      tuned_t_scal_args a;
      tuned_t_params p;
      CUresult r;
      int before = stub.launches;
      memset(&a, 0, sizeof a);
      contiguous(&a.X, 0x7f0000100000ull, 1, &v[0]);
      a.P = (CUdeviceptr)0x7f0000600000ull;
      a.n2 = (int32_t)v[1];
      a.h = 0x3e00; /* 1.5 in f16 */
      a.flag = 1;
      a.s = -0.25;
      r = tuned_t_scal_pack(entry, &a, &p);
      print_pack(r, &p);
      if (!strcmp(cmd, "launch")) {
        if (!r)
          stub_expect_params(p.count, p.psize);
        r = tuned_t_scal_launch(entry, &a, NULL);
        print_launch(r, entry, before);
      }
    } else
      printf("bad command: %s", line);
    fflush(stdout);
  }
  CUresult r = tuned_t_unload();
  printf("unload rc=%d live=%d\n", (int)r, stub.live_modules);
  return 0;
}
