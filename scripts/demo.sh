#!/usr/bin/env bash
# archy end to end on this machine, with nothing outside it:
#   a publisher key signs the sample apps in apps/ into an origin repository (TUF, consistent
#   snapshots, one delegated role for the publisher), the origin serves it over HTTP on
#   127.0.0.1, and a node-side TUF client verifies the whole chain and downloads an app.
# Usage: bash scripts/demo.sh            (work folder: $ARCHY_DEMO_DIR or a new temporary one)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/archy-target}"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "building archy and archy-node"
cargo build -q -p archy-publisher -p archy-node
ARCHY="$CARGO_TARGET_DIR/debug/archy"
NODE="$CARGO_TARGET_DIR/debug/archy-node"
WORK="${ARCHY_DEMO_DIR:-$(mktemp -d /tmp/archy-demo.XXXXXX)}"
mkdir -p "$WORK"
export ARCHY_KEY="$WORK/publisher.key"
echo "work folder: $WORK"

step "publisher key (did:key = TUF delegation key = minisign key)"
[ -f "$ARCHY_KEY" ] || "$ARCHY" key new >/dev/null
"$ARCHY" key show
DID=$("$ARCHY" --json key show | python3 -c 'import json,sys; print(json.load(sys.stdin)["did"])')

step "origin repository: root, targets, snapshot and timestamp keys"
rm -rf "$WORK/origin"
"$ARCHY" repo init "$WORK/origin"

APPS=()
for dir in apps/*/; do APPS+=("$(basename "$dir")"); done
step "delegating ${APPS[*]} to the publisher"
args=(); for id in "${APPS[@]}"; do args+=(--app "$id"); done
"$ARCHY" repo add-publisher "$WORK/origin" --name demo --did "$DID" "${args[@]}"

step "validating, signing and adding every app"
rm -rf "$WORK/apps"; mkdir -p "$WORK/apps"
for id in "${APPS[@]}"; do
  cp -r "apps/$id" "$WORK/apps/$id"
  # Republish under this machine's key: the manifest's publisher must be the signer.
  sed -i "s|^publisher = .*|publisher = \"$DID\"|" "$WORK/apps/$id/archy.toml"
  "$ARCHY" app validate "$WORK/apps/$id"
  "$ARCHY" repo add "$WORK/origin" "$WORK/apps/$id"
done

step "what a node would create for the photos app"
"$ARCHY" app render "$WORK/apps/photos" | head -20

step "verifying the repository as a client would"
"$ARCHY" repo verify "$WORK/origin"

step "serving the origin over HTTP on 127.0.0.1"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$WORK/origin/repository" >"$WORK/http.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
python3 - "$PORT" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metadata/timestamp.json"); break
    except Exception:
        time.sleep(0.1)
PY
BASE="http://127.0.0.1:$PORT"

step "node: trust root v1, update over HTTP (TUF 1.0 section 5), download hello-web's signed manifest"
rm -rf "$WORK/node"
"$NODE" tuf-client --metadata-dir "$WORK/node/metadata" init "$WORK/origin/repository/metadata/1.root.json"
"$NODE" tuf-client --metadata-dir "$WORK/node/metadata" --metadata-url "$BASE/metadata" refresh
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$WORK/apps/hello-web/archy.toml" | head -1)
"$NODE" tuf-client --metadata-dir "$WORK/node/metadata" --metadata-url "$BASE/metadata" \
  --target-name "apps/hello-web/$VERSION.json" --target-base-url "$BASE/targets/" --target-dir "$WORK/node/targets" download
ls -l "$WORK/node/metadata" "$WORK/node/targets"
python3 - "$WORK/node/targets" <<'PY'
import json, os, sys
d = sys.argv[1]
for name in os.listdir(d):
    env = json.load(open(os.path.join(d, name)))
    m = env["manifest"]
    print(f"verified: {m['id']} {m['version']} — {m['title']}: {m['summary']}")
    print(f"publisher: {env['signature']['did']}")
PY

step "done"
echo "The origin repository is in $WORK/origin/repository; the node's trusted metadata in $WORK/node/metadata."
echo "The HTTP server stops with this script."
