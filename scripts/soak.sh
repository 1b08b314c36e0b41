#!/usr/bin/env bash
# Runs the randomized failure harness (tests/chaos_harness_test.cc) with fresh seeds until the
# time is up and prints each failing seed with the command that replays it.
#   scripts/soak.sh [--minutes=N] [--runs-per-round=N]     (default: 10 minutes, 8 runs a round)
# Builds first (build/, or $SLUICE_BUILD_DIR). Exits non-zero if any seed failed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
minutes=10
per_round=8
for arg in "$@"; do
  case "$arg" in
    --minutes=*) minutes="${arg#--minutes=}" ;;
    --runs-per-round=*) per_round="${arg#--runs-per-round=}" ;;
    *) echo "soak: unknown argument '$arg' (use --minutes=N, --runs-per-round=N)" >&2; exit 2 ;;
  esac
done
bash "$root/scripts/build.sh" >/dev/null
build="${SLUICE_BUILD_DIR:-$root/build}"
harness="$build/tests/chaos_harness_test"
deadline=$(( $(date +%s) + minutes * 60 ))
runs=0
failed=()
log="$(mktemp -t sluice-soak.XXXXXX)"
trap 'rm -f "$log"' EXIT
while [ "$(date +%s)" -lt "$deadline" ]; do
  SLUICE_HARNESS_RUNS="$per_round" "$harness" >"$log" 2>&1 || true
  runs=$(( runs + $(grep -c '^harness: seed [0-9]* \(passed\|FAILED\)' "$log" || true) ))
  while read -r seed; do
    failed+=("$seed")
    echo "soak: FAILED seed $seed; replay: SLUICE_HARNESS_SEED=$seed $harness"
  done < <(sed -n 's/^harness: seed \([0-9]*\) FAILED.*/\1/p' "$log")
  grep '^harness: seed [0-9]* kept its files' "$log" | sed 's/^harness:/soak:/' || true
  if grep -q '^\[  FAILED  \]' "$log" && ! grep -q '^harness: seed [0-9]* FAILED' "$log"; then
    echo "soak: the harness failed outside a seed:"; tail -40 "$log"; exit 1
  fi
done
echo "soak: $runs runs in $minutes minutes, ${#failed[@]} failed"
echo "$(( runs - ${#failed[@]} )) passed, ${#failed[@]} failed"
[ "${#failed[@]}" -eq 0 ]
