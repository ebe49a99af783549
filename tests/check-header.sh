#!/bin/sh
# check-header.sh LANG HEADER INCLUDE_DIR COMPILER [GENERATED_INCLUDE_DIR]: compile HEADER
# alone with strict flags (the generated directory holds cnnlite/version.h).
set -eu
lang=$1 header=$2 incdir=$3 compiler=$4 genincdir=${5:-$3}
name=$(basename "$header")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$lang" = c ]; then
  src=$tmp/t.c
  std=-std=c11
else
  src=$tmp/t.cpp
  std=-std=c++17
fi
printf '#include <cnnlite/%s>\n#include <cnnlite/%s>\nint main(void) { return 0; }\n' "$name" "$name" > "$src"
"$compiler" $std -Wall -Wextra -Werror -pedantic -I"$incdir" -I"$genincdir" -c "$src" -o "$tmp/t.o"
echo "$name compiles alone as $lang ($std)"
