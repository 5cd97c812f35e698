#!/usr/bin/env bash
# tests/cli/sass_f8.sh TILEC SRCDIR — the f8 dot's SASS per target (nvdisasm; skipped, 77,
# without it). tests/ptx/dot_f8.tile (e4m3 x e5m2, 4 mma.m16n8k32) must become, on sm_89, the
# native f8 tensor-core instruction QMMA.16832.F32.E4M3.E5M2 (4 of them). Hopper has no f8
# mma.sync unit (its f8 path is wgmma): ptxas converts the operands to f16 (F2FP ... UNPACK_B)
# and issues two HMMA.16816.F32 per mma, so sm_90/sm_90a must show HMMA and F2FP and no QMMA.
set -euo pipefail
tilec=$1
src=$2
# shellcheck source=tests/cli/nvdisasm.sh
source "$(dirname "$0")/nvdisasm.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for arch in sm_89 sm_90 sm_90a; do
  "$tilec" compile "$src/tests/ptx/dot_f8.tile" --arch "$arch" --emit cubin -o "$tmp/k.cubin" 2>"$tmp/log"
  "$nvdisasm" "$tmp/k.cubin" >"$tmp/sass"
  q=$(grep -c "QMMA.16832.F32.E4M3.E5M2" "$tmp/sass" || true)
  h=$(grep -c "HMMA.16816.F32" "$tmp/sass" || true)
  c=$(grep -c "F2FP.F16.E4M3.UNPACK_B" "$tmp/sass" || true)
  echo "dot_f8 $arch: $q QMMA.16832.F32.E4M3.E5M2, $h HMMA.16816.F32, $c F2FP.F16.E4M3.UNPACK_B"
  if [[ $arch == sm_89 ]]; then
    ((q == 4)) || fail=1
  else
    ((q == 0 && h == 8 && c > 0)) || fail=1
  fi
done
exit $fail
