/* tests/unit/rt_nvrtc.c — NVRTC and nvJitLink through runtime/ (no GPU needed).
 *
 * NVRTC compiles every reference kernel (runtime/refkernels.c) to PTX for sm_80 and sm_90 and to
 * a cubin for sm_90; nvJitLink links that PTX to cubins and its -verbose log gives registers per
 * kernel; the code generator's probe PTX links for sm_90a. Compiler and linker errors come back
 * as RT_ERR_COMPILE with the library's log. Skipped only when NVRTC cannot be found.
 */
#include <string.h>

#include "codegen/codegen.h"
#include "runtime/rt.h"
#include "tests/unit/check.h"

static bool is_elf(const rt_blob *b) {
  return b->size > 4 && !memcmp(b->data,
                                "\x7f"
                                "ELF",
                                4);
}

static void check_entries(const char *ptx) {
  for (const char *const *n = rt_ref_kernel_names; *n; n++) {
    char entry[128];
    snprintf(entry, sizeof entry, ".entry %s(", *n);
    CHECK_CONTAINS(ptx, entry);
  }
}

/* Links ptx for arch and checks that every reference kernel got registers. */
static void link_refs(const rt_blob *ptx, const char *arch) {
  rt_blob cubin = {0};
  rt_err e = {0};
  rt_status s = rt_nvjitlink_ptx((const char *)ptx->data, ptx->size, arch, NULL, 0, &cubin, &e);
  CHECK_EQ_STR("", s ? e.msg : "");
  if (s)
    return;
  CHECK(is_elf(&cubin));
  rt_kernel_stats st[8];
  int n = rt_parse_link_log(cubin.log, st, 8);
  int nnames = 0;
  while (rt_ref_kernel_names[nnames])
    nnames++;
  CHECK_EQ_INT(nnames, n);
  for (const char *const *name = rt_ref_kernel_names; *name; name++) {
    bool found = false;
    for (int i = 0; i < n; i++)
      if (!strcmp(st[i].name, *name)) {
        found = true;
        CHECK(st[i].registers > 0 && st[i].registers <= 255);
        CHECK_EQ_INT(0, st[i].spill_store_bytes);
        CHECK(st[i].stack_bytes >= 0);
      }
    if (!found)
      fprintf(stderr, "kernel %s missing from the %s link log:\n%s\n", *name, arch, cubin.log);
    CHECK(found);
  }
  rt_blob_free(&cubin);
}

int main(void) {
  rt_err e = {0};
  if (rt_nvrtc_load(&e) == RT_ERR_NO_LIBRARY)
    TEST_SKIP("%s", e.msg);
  rt_lib_info info;
  rt_lib_query(RT_LIB_NVRTC, &info);
  CHECK(info.loaded);
  CHECK(info.path[0] != 0);
  CHECK(info.version_major >= 12);
  fprintf(stderr, "nvrtc %d.%d: %s\n", info.version_major, info.version_minor, info.path);

  REQUIRE(rt_nvjitlink_load(&e) == RT_OK);
  rt_lib_query(RT_LIB_NVJITLINK, &info);
  CHECK(info.loaded);
  CHECK(info.version_major >= 12);
  fprintf(stderr, "nvJitLink %d.%d: %s\n", info.version_major, info.version_minor, info.path);

  /* Every reference kernel, to PTX for sm_80 and sm_90, then linked by nvJitLink. */
  static const char *const archs[][2] = {{"compute_80", "sm_80"}, {"compute_90", "sm_90"}};
  for (int a = 0; a < 2; a++) {
    rt_blob ptx = {0};
    rt_status s = rt_nvrtc_compile(rt_ref_source(), "refs.cu", archs[a][0], NULL, 0, &ptx, &e);
    CHECK_EQ_STR("", s ? e.msg : "");
    if (s)
      continue;
    CHECK_EQ_INT(strlen((const char *)ptx.data), ptx.size);
    CHECK(ptx.log != NULL);
    check_entries((const char *)ptx.data);
    link_refs(&ptx, archs[a][1]);
    rt_blob_free(&ptx);
  }

  /* A cubin straight from NVRTC. */
  rt_blob cubin = {0};
  rt_status s = rt_nvrtc_compile(rt_ref_source(), "refs.cu", "sm_90", NULL, 0, &cubin, &e);
  CHECK_EQ_STR("", s ? e.msg : "");
  CHECK(s || is_elf(&cubin));
  rt_blob_free(&cubin);

  /* The code generator's PTX links for sm_90a. */
  char *probe = NULL, err[512];
  if (CHECK(cg_emit_test_ptx("sm_90a", &probe, err, sizeof err) == 0)) {
    rt_blob bin = {0};
    s = rt_nvjitlink_ptx(probe, strlen(probe), "sm_90a", NULL, 0, &bin, &e);
    CHECK_EQ_STR("", s ? e.msg : "");
    if (!s) {
      CHECK(is_elf(&bin));
      rt_kernel_stats st[2];
      CHECK_EQ_INT(1, rt_parse_link_log(bin.log, st, 2));
      CHECK_EQ_STR("tilec_probe", st[0].name);
      CHECK(st[0].registers >= 1);
    }
    rt_blob_free(&bin);
  }
  free(probe);

  /* NVRTC errors carry the compiler's log. */
  s = rt_nvrtc_compile("extern \"C\" __global__ void k() { undeclared_thing = 1; }\n", "bad.cu",
                       "compute_90", NULL, 0, &cubin, &e);
  CHECK_EQ_INT(RT_ERR_COMPILE, s);
  CHECK_EQ_INT(RT_ERR_COMPILE, e.status);
  CHECK_CONTAINS(e.msg, "nvrtcCompileProgram failed for bad.cu");
  CHECK_CONTAINS(e.msg, "NVRTC_ERROR_COMPILATION");
  CHECK_CONTAINS(e.msg, "undeclared_thing");
  CHECK(cubin.data == NULL && cubin.log == NULL);
  CHECK_EQ_INT(RT_ERR_ARG, rt_nvrtc_compile("", "x.cu", "gfx90a", NULL, 0, &cubin, &e));

  /* nvJitLink errors carry ptxas's message. */
  static const char bad_ptx[] = ".version 8.0\n.target sm_90\n.address_size 64\n"
                                ".visible .entry k() { bogus.instruction; ret; }\n";
  s = rt_nvjitlink_ptx(bad_ptx, sizeof bad_ptx - 1, "sm_90", NULL, 0, &cubin, &e);
  CHECK_EQ_INT(RT_ERR_COMPILE, s);
  CHECK_CONTAINS(e.msg, "failed for sm_90: NVJITLINK_ERROR_PTX_COMPILE");
  CHECK_CONTAINS(e.msg, "bogus");
  CHECK(cubin.data == NULL && cubin.log == NULL);
  s = rt_nvjitlink_ptx(bad_ptx, sizeof bad_ptx - 1, "sm_90", (const char *const[]){"-nonsense"}, 1,
                       &cubin, &e);
  CHECK_EQ_INT(RT_ERR_COMPILE, s);
  CHECK_CONTAINS(e.msg,
                 "NVJITLINK_ERROR_UNRECOGNIZED_OPTION (options: -arch=sm_90 -verbose -nonsense)");
  return TEST_MAIN_END();
}
