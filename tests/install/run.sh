#!/bin/sh
# tests/install/run.sh BUILD_DIR CC — installs the build into a fresh prefix with
# `cmake --install`, then builds tests/install/consumer.c against it twice, outside the tree:
# with `pkg-config --cflags --libs tilec` and with find_package(tilec) (tilec::tilec), and
# runs both. Also checks that libtilec.so exports the public API only, and its SONAME.
set -eu
build=$1
cc=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
lib=$(dirname "$(find "$prefix" -name libtilec.so -print | head -n 1)")
test -f "$lib/libtilec.a"
test -f "$prefix/include/tilec/tilec.h"
soname=$(readelf -d "$lib/libtilec.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
test "$soname" = libtilec.so.0 || { echo "SONAME is '$soname'"; exit 1; }
others=$(nm -D --defined-only "$lib/libtilec.so" | awk '{print $3}' | grep -v '^tilec_' || true)
test -z "$others" || { echo "libtilec.so exports more than tilec_*: $others" | head -5; exit 1; }

# pkg-config
export PKG_CONFIG_PATH=$lib/pkgconfig
flags=$(pkg-config --cflags --libs tilec)
# shellcheck disable=SC2086
"$cc" -std=c99 -Wall -Werror -o "$work/consumer_pc" "$here/consumer.c" $flags -Wl,-rpath,"$lib"
"$work/consumer_pc"

# find_package(tilec)
cmake -S "$here" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" >/dev/null
cmake --build "$work/cm" >/dev/null
"$work/cm/consumer"
echo "install: pkg-config and find_package(tilec) consumers ok"
