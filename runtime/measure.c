/* runtime/measure.c — what careful timing needs besides events: the L2 flush size and the
 * clocks a measurement ran at.
 *
 * Clocks come from NVML (libnvidia-ml.so.1), opened with dlopen once per process like every
 * other NVIDIA library here, and entirely optional: without it (containers often lack it, and
 * so does every CPU-only machine) the clocks are -1. NVML has no header in the toolkit we can
 * count on, so the few types it needs are declared here by their documented ABI (nvml.h).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "runtime/rt_impl.h"

size_t rt_l2_flush_bytes(int l2_bytes) {
  size_t min = (size_t)8 << 20;
  size_t n = l2_bytes > 0 ? 2 * (size_t)l2_bytes : min;
  if (n < min)
    n = min;
  return (n + 4095) & ~(size_t)4095;
}

/* ---- NVML ---------------------------------------------------------------------------------- */

typedef int nvml_return;              /* nvmlReturn_t: 0 is NVML_SUCCESS */
typedef struct nvml_dev *nvml_device; /* nvmlDevice_t */
enum { NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2 };

static struct {
  bool ok;
  nvml_return (*init)(void);
  nvml_return (*by_pci)(const char *, nvml_device *);
  nvml_return (*clock)(nvml_device, int, unsigned *);
} nvml;

static pthread_once_t nvml_once = PTHREAD_ONCE_INIT;

static void nvml_load(void) {
  static const char *const names[] = {"libnvidia-ml.so.1", NULL};
  char path[512], why[512];
  void *h = rt_dl_search("TILEC_LIBNVML", names, path, sizeof path, why, sizeof why);
  if (!h)
    return;
  void *p[3] = {dlsym(h, "nvmlInit_v2"), dlsym(h, "nvmlDeviceGetHandleByPciBusId_v2"),
                dlsym(h, "nvmlDeviceGetClockInfo")};
  if (!p[0] || !p[1] || !p[2])
    return;
  memcpy(&nvml.init, &p[0], sizeof p[0]); /* ISO C: no cast from void * to a function pointer */
  memcpy(&nvml.by_pci, &p[1], sizeof p[1]);
  memcpy(&nvml.clock, &p[2], sizeof p[2]);
  nvml.ok = nvml.init() == 0;
}

void rt_clocks_mhz(int ordinal, int *sm_mhz, int *mem_mhz) {
  *sm_mhz = *mem_mhz = -1;
  pthread_once(&nvml_once, nvml_load);
  char bus[64];
  nvml_device dev;
  if (!nvml.ok || rt_device_pci_bus_id(ordinal, bus, sizeof bus, NULL) || nvml.by_pci(bus, &dev))
    return;
  unsigned v;
  if (nvml.clock(dev, NVML_CLOCK_SM, &v) == 0)
    *sm_mhz = (int)v;
  if (nvml.clock(dev, NVML_CLOCK_MEM, &v) == 0)
    *mem_mhz = (int)v;
}
