#!/usr/bin/env bash
# Fails (naming each file and line) when a tracked C++ file differs from .clang-format's layout.
# Fix with: git ls-files '*.cc' '*.h' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror
