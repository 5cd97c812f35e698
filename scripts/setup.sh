#!/usr/bin/env bash
# setup.sh - installs what tilec needs, then configures and builds build/.
#
# Idempotent and fast on a second run: packages are installed only when missing (apt, Debian
# or Ubuntu), `apt-get update` runs only when something must be installed, and the build is
# incremental. The CUDA toolkit is optional: without ptxas the PTX tests only skip that step.
#
# Environment: BUILD_DIR (default build), CC, TILEC_CMAKE_ARGS (extra -D flags),
#              TILEC_SKIP_INSTALL=1 (configure and build only), CUDA_HOME.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}

say() { printf 'setup: %s\n' "$*"; }
die() {
  printf 'setup: error: %s\n' "$*" >&2
  exit 1
}

# Debian packages and, for each, a command or a file (glob) that shows it is there.
PACKAGES=(
  "cmake:cmake"
  "ninja-build:ninja"
  "gcc:gcc"
  "clang:clang"
  "llvm-19-dev:/usr/lib/llvm-19/include/llvm-c/Core.h"
  "libsqlite3-dev:/usr/include/sqlite3.h"
  "clang-format:clang-format"
  "libclang-rt-14-dev:/usr/lib/llvm-14/lib/clang/14*/lib/linux/libclang_rt.fuzzer-x86_64.a"
  "libzstd-dev:/usr/include/zstd.h"
  "zlib1g-dev:/usr/include/zlib.h"
  "python3:python3"
)

present() {
  case "$1" in
  /*) compgen -G "$1" >/dev/null ;;
  *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

install_packages() {
  local missing=() entry pkg probe
  for entry in "${PACKAGES[@]}"; do
    pkg=${entry%%:*}
    probe=${entry#*:}
    present "$probe" || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    say "packages: all present"
    return
  fi
  say "installing: ${missing[*]}"
  command -v apt-get >/dev/null 2>&1 ||
    die "apt-get not found; install these packages by hand: ${missing[*]}"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo; install: ${missing[*]}"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq || die "apt-get update failed (network or sources?)"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    die "apt-get install failed for: ${missing[*]} (llvm-19-dev needs Debian 12+ or apt.llvm.org)"
}

install_numpy() {
  if python3 -c 'import numpy' >/dev/null 2>&1; then
    say "numpy: present"
    return
  fi
  say "installing numpy"
  if python3 -m pip install --quiet numpy >/dev/null 2>&1; then
    return
  fi
  # A distribution python refuses pip installs (PEP 668): use its package.
  if command -v apt-get >/dev/null 2>&1; then
    local sudo=()
    ((EUID != 0)) && sudo=(sudo)
    "${sudo[@]}" apt-get install -y -qq python3-numpy >/dev/null 2>&1 ||
      { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq python3-numpy; } ||
      die "could not install numpy (pip and apt python3-numpy both failed)"
  else
    die "could not install numpy with pip; install it for $(command -v python3)"
  fi
  python3 -c 'import numpy' >/dev/null 2>&1 ||
    die "numpy installed but $(command -v python3) cannot import it"
}

# nvdisasm reads the SASS of emitted cubins (tests/cli/sass_check.sh); PyPI ships it.
install_nvdisasm() {
  if [[ -x $CUDA_HOME/bin/nvdisasm ]] ||
    python3 -c 'import nvidia, os, sys; sys.exit(not any(os.path.exists(os.path.join(p, "cu13/bin/nvdisasm")) for p in nvidia.__path__))' >/dev/null 2>&1; then
    say "nvdisasm: present"
    return
  fi
  say "installing nvidia-cuda-nvdisasm (PyPI)"
  python3 -m pip install --quiet nvidia-cuda-nvdisasm >/dev/null 2>&1 ||
    say "warning: could not install nvidia-cuda-nvdisasm; the SASS test will be skipped"
}

check_cuda() {
  if [[ -x $CUDA_HOME/bin/ptxas ]]; then
    say "CUDA toolkit: $CUDA_HOME ($("$CUDA_HOME"/bin/ptxas --version | tail -1))"
  else
    say "warning: no ptxas in $CUDA_HOME/bin (set CUDA_HOME); tests will not assemble PTX"
  fi
}

configure_and_build() {
  local cache=$BUILD_DIR/CMakeCache.txt
  if [[ -f $cache ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$cache"; then
    die "$BUILD_DIR was configured with another generator; remove it (rm -rf $BUILD_DIR)"
  fi
  mkdir -p "$BUILD_DIR"
  # shellcheck disable=SC2086 # TILEC_CMAKE_ARGS is a list of flags
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTILEC_WERROR=ON \
    ${TILEC_CMAKE_ARGS:-} >"$BUILD_DIR/configure.log" 2>&1 ||
    {
      cat "$BUILD_DIR/configure.log" >&2
      die "cmake configure failed (log above, in $BUILD_DIR/configure.log)"
    }
  cmake --build "$BUILD_DIR" || die "build failed"
}

if [[ ${TILEC_SKIP_INSTALL:-0} != 1 ]]; then
  install_packages
  install_numpy
  install_nvdisasm
fi
check_cuda
configure_and_build
say "built $BUILD_DIR/. Run the tests with: scripts/test.sh" \
  "(= ctest --test-dir $BUILD_DIR --output-on-failure -j2)"
