#!/bin/sh
# install-test.sh BUILD_DIR TEST_SRC_DIR SANITIZE CC CXX
# Installs the build into a temporary DESTDIR and builds, links and runs a C and a C++ program
# using only `pkg-config --cflags --libs cnnlite`, then the C program again through CMake's
# find_package(cnnlite) (skipped when cmake is absent). The installed headers must match the
# installed library's version, and find_package must refuse another major version.
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

if ! command -v cmake >/dev/null 2>&1; then
  echo "cmake not found: CMake consumer not checked"
  exit 0
fi
prefix=$(dirname "$(dirname "$libdir")")
[ -f "$libdir/cmake/cnnlite/cnnliteConfig.cmake" ] || { echo "cnnliteConfig.cmake was not installed"; exit 1; }
[ -f "$libdir/cmake/cnnlite/cnnliteConfigVersion.cmake" ] || { echo "cnnliteConfigVersion.cmake was not installed"; exit 1; }
mkdir "$tmp/cmake-src"
cp "$srcdir/consumer.c" "$tmp/cmake-src/"
version=$(pkg-config --modversion cnnlite)
major=${version%%.*}
cat >"$tmp/cmake-src/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(cnnlite_consumer C)
find_package(cnnlite $version REQUIRED)
if(NOT TARGET cnnlite::cnnlite)
  message(FATAL_ERROR "find_package(cnnlite) defined no cnnlite::cnnlite target")
endif()
add_executable(consumer_cmake consumer.c)
set_property(TARGET consumer_cmake PROPERTY C_STANDARD 11)
target_compile_options(consumer_cmake PRIVATE -Wall -Wextra -Werror -pedantic)
target_link_libraries(consumer_cmake PRIVATE cnnlite::cnnlite)
CMAKE
cmake -S "$tmp/cmake-src" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS="$extra" -DCMAKE_EXE_LINKER_FLAGS="$extra" >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; exit 1; }
cmake --build "$tmp/cmake-build" >>"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; exit 1; }
LD_LIBRARY_PATH="$libdir" "$tmp/cmake-build/consumer_cmake"
echo "find_package(cnnlite $version): consumer built and ran"

# Another major version must not be found.
sed -i "s/find_package(cnnlite $version REQUIRED)/find_package(cnnlite $((major + 1)).0 REQUIRED)/" \
  "$tmp/cmake-src/CMakeLists.txt"
if cmake -S "$tmp/cmake-src" -B "$tmp/cmake-build2" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
     >"$tmp/cmake2.log" 2>&1; then
  echo "find_package(cnnlite $((major + 1)).0) accepted version $version"
  exit 1
fi
grep -q "compatible with requested version" "$tmp/cmake2.log" || { cat "$tmp/cmake2.log"; exit 1; }
echo "find_package(cnnlite $((major + 1)).0) refused version $version, as it should"
