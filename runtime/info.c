/* runtime/info.c — the runtime's part of `tilec info`: which CUDA libraries were found where,
 * their versions, and the devices with their tuning-DB keys, as text for the CLI to print.
 */
#include <stdio.h>
#include <stdlib.h>

#include "runtime/rt_impl.h"

static void lib_line(FILE *f, const char *label, rt_lib lib) {
  rt_lib_info li;
  rt_lib_query(lib, &li);
  if (li.loaded)
    fprintf(f, "%s: %d.%d (%s)\n", label, li.version_major, li.version_minor, li.path);
  else
    fprintf(f, "%s: not available: %s\n", label, li.error);
}

char *rt_info_text(void) {
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  if (!f)
    return NULL;
  lib_line(f, "cuda driver", RT_LIB_CUDA);
  lib_line(f, "nvrtc", RT_LIB_NVRTC);
  lib_line(f, "nvjitlink", RT_LIB_NVJITLINK);
  rt_err e = {0};
  int n = 0;
  if (rt_device_count(&n, &e)) {
    fprintf(f, "devices: none (%s)\n", e.msg);
  } else {
    fprintf(f, "devices: %d\n", n);
    for (int i = 0; i < n; i++) {
      rt_device_info d;
      if (rt_device_query(i, &d, &e)) {
        fprintf(f, "  %d: %s\n", i, e.msg);
        continue;
      }
      /* Peak bandwidth: two transfers per memory clock over the whole bus. */
      double tbs = 2.0 * d.mem_clock_khz * 1e3 * (d.mem_bus_width / 8.0) / 1e12;
      fprintf(f,
              "  %d: %s, %s, %d SMs, %.1f GiB, %.2f TB/s peak (%d-bit, %d MHz), "
              "%d KiB shared memory per block; key \"%s\"\n",
              i, d.name, d.arch, d.sm_count, (double)d.total_mem / (1u << 30), tbs, d.mem_bus_width,
              d.mem_clock_khz / 1000, d.smem_per_block_optin / 1024, d.key);
    }
  }
  if (fclose(f)) {
    free(text);
    return NULL;
  }
  return text;
}
