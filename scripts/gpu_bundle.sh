#!/usr/bin/env bash
# scripts/gpu_bundle.sh [BUILD_DIR] — what the device tool carries to the GPU machine: the
# stripped, gzipped `tilec`, GPU test programs, example engine (with libtilec.so.0) and SQLite of a build (LLVM is linked in statically; the
# CUDA libraries are opened at run time there), in gpu-bundle/ (git-ignored), under the device
# tool's 64 MiB carry limit (a build folder with debug info is hundreds of MiB; each stripped
# program is about 32 MiB, gzipped 14). tests/gpu/run.sh unpacks them.
# Then: run(command="BUILD_DIR=gpu-bundle OUT=$OUT tests/gpu/run.sh", carry=["gpu-bundle"]).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
out=gpu-bundle
[[ -x $build/tilec ]] || { echo "gpu_bundle.sh: $build/tilec not found (scripts/setup.sh)" >&2; exit 2; }
rm -rf "$out"
mkdir -p "$out"
for f in "$build"/tilec "$build"/gpu_* "$build"/tilec_engine "$build"/libtilec.so.0; do
  [[ -e $f ]] || continue
  strip -o "$out/$(basename "$f")" "$(readlink -f "$f")"
  gzip -9 "$out/$(basename "$f")"
done
# the shared libraries they need that the GPU machine's image may lack (run.sh puts the bundle
# on LD_LIBRARY_PATH): SQLite
sqlite=$(ldd "$build/tilec" | awk '/libsqlite3\.so/ {print $3}')
if [[ -n $sqlite && -e $sqlite ]]; then
  cp "$(readlink -f "$sqlite")" "$out/libsqlite3.so.0"
  gzip -9 "$out/libsqlite3.so.0"
fi
size=$(du -sm "$out" | cut -f1)
echo "gpu_bundle.sh: $out/ holds $(ls "$out" | tr '\n' ' ')($size MiB)"
if ((size > 60)); then
  echo "gpu_bundle.sh: $size MiB is too close to the 64 MiB carry limit" >&2
  exit 1
fi
