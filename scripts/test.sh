#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
#   scripts/test.sh [--asan|--tsan] [CTEST ARGS]
# --asan builds into build-asan/ with AddressSanitizer+UBSan, --tsan into build-tsan/ with
# ThreadSanitizer (the Kafka tests are left out there: librdkafka's threads crash TSan itself;
# the other uninstrumented libraries are handled by the TSAN_OPTIONS in cmake/SluiceHelpers.cmake).
# Both leave out install_test: it builds a job outside the tree without sanitizer flags against
# what the build installs, and a sanitizer build is not what anyone installs.
# CTest arguments narrow the run, e.g. `scripts/test.sh -L unit` or `scripts/test.sh --asan -L fault`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
sanitizer=""
case "${1:-}" in
  --asan) sanitizer=asan; shift ;;
  --tsan) sanitizer=tsan; shift ;;
esac
bash "$root/scripts/setup.sh"
ctest_extra=()
case "$sanitizer" in
  asan)
    export SLUICE_BUILD_DIR="${SLUICE_BUILD_DIR:-$root/build-asan}"
    bash "$root/scripts/build.sh" -DSLUICE_ASAN=ON -DSLUICE_TSAN=OFF -DSLUICE_BUILD_BENCH=OFF
    ctest_extra=(-E 'install_test') ;;
  tsan)
    export SLUICE_BUILD_DIR="${SLUICE_BUILD_DIR:-$root/build-tsan}"
    bash "$root/scripts/build.sh" -DSLUICE_TSAN=ON -DSLUICE_ASAN=OFF -DSLUICE_BUILD_BENCH=OFF
    ctest_extra=(-E 'kafka|install_test') ;;
  *)
    bash "$root/scripts/build.sh" ;;
esac
build="${SLUICE_BUILD_DIR:-$root/build}"
cd "$build"
ctest --output-on-failure -j 2 --timeout 600 "${ctest_extra[@]}" "$@"
