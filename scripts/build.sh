#!/usr/bin/env bash
# Configures and builds Sluice into build/ (or $SLUICE_BUILD_DIR) with ccache.
# Extra arguments go to CMake's configure step, e.g. -DSLUICE_ASAN=ON.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${SLUICE_BUILD_DIR:-$root/build}"
# ccache hits across clones only with a base dir and without the directory in the hash.
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=1
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${SLUICE_BUILD_TYPE:-RelWithDebInfo}" "$@"
cmake --build "$build" -j "${SLUICE_JOBS:-2}"
