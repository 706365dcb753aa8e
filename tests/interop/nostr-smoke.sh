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
pid=""
# `|| true`: set -e applies in the trap too, and `wait` returns the killed relay's status (143),
# which would end the trap before the rm and turn the script's exit status into 143.
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT
port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# The config path first: a failure inside the relay's arguments would go unnoticed.
config="$(bash "$here/nostr-rs-relay.sh" --config "$tmp" "$port")"
"$relay" -c "$config" >"$tmp/relay.log" 2>&1 &
pid=$!
up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
for _ in $(seq 50); do up && break; sleep 0.1; done
if ! up; then
  echo "error: nostr-rs-relay does not listen on 127.0.0.1:$port; its log:" >&2
  tail -n 20 "$tmp/relay.log" >&2
  exit 1
fi
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
