#!/bin/sh
# Usage: check-symbols.sh LIBRARY INCLUDE_DIR... (the source and the generated include folders)
# The shared library must export exactly the functions declared with CNNL_API in the public
# headers, every one under the CNNLITE_0 version node, and nothing else (no internal cnnl__*
# helpers, no ifunc resolvers, no symbols of bundled code).
set -eu
lib=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm=${NM:-nm}
command -v "$nm" >/dev/null || { echo "nm not found"; exit 77; }

for inc in "$@"; do cat "$inc"/cnnlite/*.h; done | grep -v '^ *#'  | grep -oE 'CNNL_API[^(;]*\(' | grep -oE '[A-Za-z_][A-Za-z0-9_]* *\($' | tr -d ' (' | sort -u >"$tmp/declared"
"$nm" -D --defined-only "$lib" | awk '$2 != "A" {print $3}' | sort -u >"$tmp/exported"
sed 's/@.*//' "$tmp/exported" | sort -u >"$tmp/names"

n=$(wc -l <"$tmp/declared")
if [ "$n" -lt 50 ]; then
  echo "only $n declarations found in $*: the header scan is broken"
  exit 1
fi
status=0
if ! diff -u "$tmp/declared" "$tmp/names" >"$tmp/diff"; then
  echo "exported symbols differ from the public declarations (- declared only, + exported only):"
  grep -E '^[-+][^-+]' "$tmp/diff" || true
  status=1
fi
unversioned=$(grep -vE '@@?CNNLITE_[0-9.]+$' "$tmp/exported" || true)
if [ -n "$unversioned" ]; then
  echo "exported without a CNNLITE_ version node:"
  echo "$unversioned"
  status=1
fi
[ $status -eq 0 ] && echo "$n public functions exported, each under a CNNLITE_ version node, nothing else"
exit $status
