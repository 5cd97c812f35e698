#!/usr/bin/env bash
# tests/cli/sass_check.sh TILEC — every built-in kernel with a dot compiles to a cubin whose SASS
# has tensor-core instructions (HMMA), for sm_80 and sm_90a (DESIGN §5: a dot without HMMA is on
# the wrong path). nvdisasm comes from the CUDA toolkit or PyPI's nvidia-cuda-nvdisasm; without
# it the test is skipped (77).
set -euo pipefail
tilec=$1
# shellcheck source=tests/cli/nvdisasm.sh
source "$(dirname "$0")/nvdisasm.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for arch in sm_80 sm_90a; do
  for k in matmul attention bsattention bsmatmul; do
    "$tilec" compile "$k" --arch "$arch" --emit cubin -o "$tmp/$k.cubin" 2>"$tmp/log"
    n=$("$nvdisasm" "$tmp/$k.cubin" | grep -c HMMA || true)
    echo "$k $arch: $n HMMA"
    ((n > 0)) || fail=1
  done
done
exit $fail
