#!/usr/bin/env bash
# archy's TUF client against python-tuf (the reference client) in the same run: a fresh client
# initialises from the root and downloads every target of a 10,000-target catalog (50
# delegations x 200 envelopes of about 1.4 KB) from nginx on 127.0.0.1 (plain HTTP).
#   archy:      archy-node tuf-client (the conformance suite's client protocol), init + download
#   python-tuf: tests/interop/python_tuf_client.py (tuf.ngclient), the same targets
# Prints both times and archy / python-tuf (target <= 0.1). About 4 minutes (python-tuf takes
# most of it). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-common.sh
need_packages nginx:nginx curl:curl
PY=$(bash tests/interop/setup-venv.sh)
WORK=$(mktemp -d /tmp/archy-bench-tuf.XXXXXX)
NGINX_PID=""
cleanup() {
  if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "building archy-node and the catalog writer (release)"
cargo build -q --release -p archy-node --bin archy-node
cargo build -q --release -p archy-bench --example write_catalog
"$RELEASE/examples/write_catalog" "$WORK/origin" 50 200

PORT=$(free_port)
nginx_conf "$WORK/nginx" "server {
    listen 127.0.0.1:$PORT;
    root $WORK/origin/repository;
  }"
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX_PID=$!
BASE="http://127.0.0.1:$PORT"
wait_http "$BASE/metadata/timestamp.json"
ROOT="$WORK/origin/repository/metadata/1.root.json"
mapfile -t NAMES <"$WORK/origin/target-names.txt"
archy_args=()
py_args=()
for name in "${NAMES[@]}"; do
  archy_args+=(--target-name "$name")
  py_args+=(--target "$name")
done

# Seconds (with fractions) a command takes.
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.2f}')"
}

run_archy() {
  rm -rf "$WORK/a-md" "$WORK/a-out"
  "$RELEASE/archy-node" tuf-client --metadata-dir "$WORK/a-md" init "$ROOT"
  "$RELEASE/archy-node" tuf-client --metadata-dir "$WORK/a-md" --metadata-url "$BASE/metadata" \
    --target-base-url "$BASE/targets" --target-dir "$WORK/a-out" "${archy_args[@]}" download
}
run_python() {
  rm -rf "$WORK/p-out"
  "$PY" tests/interop/python_tuf_client.py --metadata-url "$BASE/metadata" --target-base-url "$BASE/targets" \
    --root "$ROOT" --out "$WORK/p-out" "${py_args[@]}"
}

# python-tuf takes minutes for this catalog, so one round each.
step "download of ${#NAMES[@]} targets by fresh clients"
best_a=$(seconds run_archy)
best_p=$(seconds run_python)
[ "$(find "$WORK/a-out" -type f | wc -l)" -eq "${#NAMES[@]}" ] || { echo "error: archy did not write every target" >&2; exit 1; }
[ "$(find "$WORK/p-out" -type f | wc -l)" -eq "${#NAMES[@]}" ] || { echo "error: python-tuf did not write every target" >&2; exit 1; }
ratio=$(python3 -c "print(f'{$best_a / $best_p:.3f}')")
met=$(python3 -c "print('met' if $best_a / $best_p <= 0.1 else 'MISSED')")
echo "result: tuf-client ${#NAMES[@]} targets: archy $best_a s, python-tuf $best_p s, archy / python-tuf $ratio  target <= 0.1: $met"
