#!/usr/bin/env bash
# test.sh - runs the test suite of build/ (BUILD_DIR overrides); arguments go to ctest, e.g.
#   scripts/test.sh -R unit.llvm_ptx      scripts/test.sh -L unit      scripts/test.sh -LE gpu
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j2 "$@"
