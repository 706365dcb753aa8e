#!/usr/bin/env bash
# Runs the three sync benchmarks in sequence and prints a summary table:
#   incremental sync  cargo bench -p archy-bench --bench incremental_sync
#   blob transfer     scripts/bench-blob-transfer.sh
#   origin            scripts/bench-origin.sh
# Each prints its own figures as it goes; the table at the end repeats their `result:` lines.
# Takes about 10 minutes on 2 cores after the release build. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-common.sh
OUT=$(mktemp -d /tmp/archy-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

step "building the release binaries"
cargo build -q --release -p archy-node -p archy-registry -p archy-publisher

step "1/3 incremental sync"
cargo bench -q -p archy-bench --bench incremental_sync | tee "$OUT/1"
step "2/3 blob transfer"
bash scripts/bench-blob-transfer.sh | tee "$OUT/2"
step "3/3 origin"
bash scripts/bench-origin.sh | tee "$OUT/3"

printf '\n%-18s %s\n' "benchmark" "result"
printf '%-18s %s\n' "------------------" "------------------------------------------------------------"
for f in 1 2 3; do
  case $f in 1) name="incremental sync" ;; 2) name="blob transfer" ;; *) name="origin" ;; esac
  # grep finds nothing -> status 1, which under pipefail would end the script in the middle of the table.
  if ! grep -q '^result: ' "$OUT/$f"; then
    printf '%-18s %s\n' "$name" "(no result: line in its output)"
    continue
  fi
  grep '^result: ' "$OUT/$f" | sed 's/^result: //' | while IFS= read -r line; do
    printf '%-18s %s\n' "$name" "$line"
  done
done
