#!/usr/bin/env bash
# The node dashboard's first paint in a real browser: each page (installed apps, catalog, an
# app, trust) loaded 10 times by headless chromium; prints the medians of the server's time to
# the first byte, the first contentful paint and the page's bytes.
#
# Usage: bash scripts/bench-dashboard.sh [LOADS]
#
# It measures the demo's node 1 (debug build, as `bash scripts/demo.sh` leaves it running: six
# origin apps, one Nostr app, hello-web installed), starting the demo first when it does not run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-common.sh
LOADS="${1:-10}"
STATE="$HOME/.cache/archy-demo"
BIN="$CARGO_TARGET_DIR/debug"

need_packages curl:curl chromium:chromium chromedriver:chromium-driver
running() {
  [ -f "$STATE/work" ] && [ -f "$(cat "$STATE/work")/node1/node.json" ] &&
    curl -fs -o /dev/null "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api"])' "$(cat "$STATE/work")/node1/node.json")/login"
}
if ! running; then
  step "the demo is not running: starting it (bash scripts/demo.sh)"
  bash scripts/demo.sh >&2
fi
WORK=$(cat "$STATE/work")
PYTHON="$(bash tests/interop/setup-venv.sh)"
LINK=$("$BIN/archy-node" dashboard --data "$WORK/node1" 2>/dev/null)
"$PYTHON" bench/dashboard_paint.py "$LINK" "$LOADS"
