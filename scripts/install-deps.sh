#!/bin/sh
# Install the Debian packages libcnnlite needs to build, test and document itself.
# Run as root on Debian 12 (or with sudo). Safe to run again.
set -eu
# One package a line, so that additions merge cleanly.
PACKAGES="
gcc g++ meson ninja-build pkg-config python3 python3-pil
libopenblas-dev libstb-dev libturbojpeg0-dev libcjson-dev libcmocka-dev
libtiff-dev
libdnnl-dev
doxygen valgrind
clang libclang-rt-14-dev libomp-14-dev cmake
libopenmpi-dev openmpi-bin
"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
