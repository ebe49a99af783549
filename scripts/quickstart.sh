#!/bin/sh
# Quick start: install dependencies, build, and run the main job.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
[ -d build ] || meson setup build
ninja -C build
exec build/examples/cnnlite-train "$@"
