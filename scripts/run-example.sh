#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main example job (word count over the
# bundled text) on the embedded mini-cluster, printing `word<TAB>count` lines.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
build="${SLUICE_BUILD_DIR:-$root/build}"
"$build/bin/sluice" run --local "$build/examples/word_count.so" -- \
  --input="$root/examples/data/words.txt" | sort -t$'\t' -k2,2nr -k1,1
