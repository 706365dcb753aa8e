#!/usr/bin/env bash
# archy end to end on this machine, with nothing outside it:
#   an origin repository is created (TUF root, targets, snapshot and timestamp keys), the origin
#   registry serves it over HTTP and iroh on 127.0.0.1, a publisher signs the sample apps in apps/
#   on its own machine and submits them (`archy publish`), a node pins the root and syncs the
#   verified catalog, a second node mirrors it from the first over iroh while the origin is down,
#   and the origin wins again when it is back. Node 1 also installs hello-web through Docker.
# Usage: bash scripts/demo.sh            (work folder: $ARCHY_DEMO_DIR or a new temporary one)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/archy-target}"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "building archy, archy-registry and archy-node"
cargo build -q -p archy-publisher -p archy-registry -p archy-node
BIN="$CARGO_TARGET_DIR/debug"
ARCHY="$BIN/archy"
WORK="${ARCHY_DEMO_DIR:-$(mktemp -d /tmp/archy-demo.XXXXXX)}"
mkdir -p "$WORK"
export ARCHY_KEY="$WORK/publisher.key"
export ARCHY_LOG=warn
echo "work folder: $WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  # Nothing the demo installed outlives it, even when a step fails.
  [ -d "$WORK/node1/orchestrator" ] && "$BIN/archy-node" uninstall hello-web --purge --yes --data "$WORK/node1" >/dev/null 2>&1 || true
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_file() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "timed out waiting for $1" >&2; exit 1; }

step "publisher key (did:key = TUF delegation key = minisign key)"
[ -f "$ARCHY_KEY" ] || "$ARCHY" key new >/dev/null
"$ARCHY" key show
DID=$("$ARCHY" --json key show | python3 -c 'import json,sys; print(json.load(sys.stdin)["did"])')

step "origin repository: offline root key, online snapshot and timestamp keys"
rm -rf "$WORK/origin"
"$ARCHY" repo init "$WORK/origin"
APPS=()
for dir in apps/*/; do APPS+=("$(basename "$dir")"); done
args=(); for id in "${APPS[@]}"; do args+=(--app "$id"); done
"$ARCHY" repo add-publisher "$WORK/origin" --name demo --did "$DID" "${args[@]}"

step "origin registry on 127.0.0.1 (HTTP + iroh, relays off)"
HTTP_PORT=$(free_port)
"$BIN/archy-registry" serve --data "$WORK/origin" --http "127.0.0.1:$HTTP_PORT" >"$WORK/registry.log" 2>&1 &
PIDS+=($!); REGISTRY=$!
wait_file "$WORK/origin/registry/endpoint.json"
cat "$WORK/registry.log"
ORIGIN="http://127.0.0.1:$HTTP_PORT"

step "the publisher builds hello-web's image (busybox-static, FROM scratch) as an archive"
rm -rf "$WORK/apps"; mkdir -p "$WORK/apps"
for id in "${APPS[@]}"; do cp -r "apps/$id" "$WORK/apps/$id"; done
if [ ! -x /bin/busybox ]; then
  echo "installing Debian's busybox-static"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
"$WORK/apps/hello-web/build.sh"

step "the publisher signs each app on its machine and submits it: archy publish"
for id in "${APPS[@]}"; do
  # Republish under this machine's key: the manifest's publisher must be the signer.
  sed -i "s|^publisher = .*|publisher = \"$DID\"|" "$WORK/apps/$id/archy.toml"
  "$ARCHY" publish "$WORK/apps/$id" --registry "$ORIGIN"
done

step "a refused submission says why (an app id not delegated to this publisher)"
cp -r "$WORK/apps/wiki" "$WORK/apps/not-mine"
sed -i 's|^id = .*|id = "not-mine"|' "$WORK/apps/not-mine/archy.toml"
"$ARCHY" publish "$WORK/apps/not-mine" --registry "$ORIGIN" || true

step "node 1: pin the root (its minisign signature checked), sync, list"
MINISIGN_KEY=$("$ARCHY" --json key show --key "$WORK/origin/keys/root-1.key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["minisign_public_key"])')
rm -rf "$WORK/node1" "$WORK/node2"
"$BIN/archy-node" init --data "$WORK/node1" --root "$WORK/origin/repository/metadata/1.root.json" \
  --minisig "$WORK/origin/repository/metadata/1.root.json.minisig" --minisign-key "$MINISIGN_KEY" --origin "$ORIGIN"
"$BIN/archy-node" sync --data "$WORK/node1"
"$BIN/archy-node" apps --data "$WORK/node1"

step "node 1 installs hello-web through Docker: archive fetched and verified, image id checked"
"$BIN/archy-node" install hello-web --data "$WORK/node1"
"$BIN/archy-node" ps --data "$WORK/node1"
for _ in $(seq 50); do curl -sf http://127.0.0.1:8090/ >/dev/null && break; sleep 0.2; done
echo "GET http://127.0.0.1:8090/ ->"; curl -sf http://127.0.0.1:8090/ | head -5

step "node 1 runs as a mirror (iroh-blobs + metadata protocol)"
sed -i "s|^api = .*|api = \"127.0.0.1:$(free_port)\"|" "$WORK/node1/config.toml"
"$BIN/archy-node" run --data "$WORK/node1" >"$WORK/node1.log" 2>&1 &
PIDS+=($!)
wait_file "$WORK/node1/node.json"
PEER=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["iroh"])' "$WORK/node1/node.json")
echo "node 1 serves at $PEER"

step "the origin goes down; node 2 gets the catalog from node 1, verified against the origin's root"
kill "$REGISTRY"; wait "$REGISTRY" 2>/dev/null || true
"$BIN/archy-node" init --data "$WORK/node2" --root "$WORK/origin/repository/metadata/1.root.json" --origin "$ORIGIN" --peer "$PEER"
"$BIN/archy-node" sync --data "$WORK/node2"
"$BIN/archy-node" status --data "$WORK/node2"

step "the origin is back with a new release; its catalog wins"
"$BIN/archy-registry" serve --data "$WORK/origin" --http "127.0.0.1:$HTTP_PORT" >>"$WORK/registry.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "$ORIGIN/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
sed -i 's|^version = "2.8.0"|version = "2.9.0"|' "$WORK/apps/wiki/archy.toml"
"$ARCHY" publish "$WORK/apps/wiki" --registry "$ORIGIN"
"$BIN/archy-node" sync --data "$WORK/node2"
"$BIN/archy-node" apps --data "$WORK/node2"

step "removing hello-web from node 1 (volumes and secrets too)"
"$BIN/archy-node" uninstall hello-web --purge --yes --data "$WORK/node1"

step "done"
echo "Origin repository: $WORK/origin/repository   nodes: $WORK/node1, $WORK/node2"
echo "Everything this script started has been stopped."
