#!/bin/sh
# install-test.sh BUILD_DIR TEST_SRC_DIR SANITIZE CC CXX
# Installs the build into a temporary DESTDIR and builds, links and runs a C and a C++ program
# using only `pkg-config --cflags --libs cnnlite`.
set -eu
build=$1 srcdir=$2 sanitize=$3 cc=$4 cxx=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/root" >"$tmp/install.log" 2>&1 || {
  cat "$tmp/install.log"; exit 1; }
pcfile=$(find "$tmp/root" -name cnnlite.pc | head -n 1)
[ -n "$pcfile" ] || { echo "cnnlite.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pcfile")"
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
flags=$(pkg-config --cflags --libs cnnlite)
echo "pkg-config --cflags --libs cnnlite: $flags"
extra=""
if [ "$sanitize" != none ] && [ -n "$sanitize" ]; then
  extra="-fsanitize=$sanitize"
fi
libdir=$(dirname "$(dirname "$pcfile")")
ls "$libdir"/libcnnlite.so.0 >/dev/null
"$cc" -std=c11 -Wall -Wextra -Werror -pedantic $extra "$srcdir/consumer.c" -o "$tmp/consumer_c" $flags
"$cxx" -std=c++17 -Wall -Wextra -Werror -pedantic $extra "$srcdir/consumer.cpp" -o "$tmp/consumer_cxx" $flags
LD_LIBRARY_PATH="$libdir" "$tmp/consumer_c"
LD_LIBRARY_PATH="$libdir" "$tmp/consumer_cxx"
