#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
# Pass ctest arguments to narrow it, e.g. `scripts/test.sh -L unit`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
build="${SLUICE_BUILD_DIR:-$root/build}"
cd "$build"
ctest --output-on-failure -j 2 --timeout 600 "$@"
