#!/usr/bin/env bash
# Smoke test of the Nostr interop tools, without archy: installs nostr-rs-relay and the interop venv
# (idempotently), starts the relay on a free 127.0.0.1 port, publishes sample archy events made by
# nostr_sample.py (pynostr + Ed25519), reads them back and checks them with nostr_check.py, checks
# that a corrupted DID signature is caught, and stops the relay.
#   bash tests/interop/nostr-smoke.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="$(bash "$here/setup-venv.sh")"
relay="$(bash "$here/nostr-rs-relay.sh" --print-path)"
tmp="$(mktemp -d)"
port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$relay" -c "$(bash "$here/nostr-rs-relay.sh" --config "$tmp" "$port")" >"$tmp/relay.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
url="ws://127.0.0.1:$port"
passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
ko() { echo "FAILED: $1"; failed=$((failed + 1)); }
if "$py" "$here/nostr_sample.py" --publish "$url" --url http://127.0.0.1:9/e --iroh t >"$tmp/s.jsonl" &&
  "$py" "$here/nostr_check.py" --relay "$url" --min-events 2 >"$tmp/c.jsonl"; then
  ok "published samples verify from the relay"
else ko "published samples verify from the relay"; fi
"$py" "$here/nostr_sample.py" --bad-did-sig >"$tmp/bad.jsonl"
if "$py" "$here/nostr_check.py" --events "$tmp/bad.jsonl" >/dev/null 2>&1; then
  ko "a bad DID signature is caught"
else ok "a bad DID signature is caught"; fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
