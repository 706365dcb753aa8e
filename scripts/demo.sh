#!/usr/bin/env bash
# archy end to end on this machine, with nothing outside it:
#   an origin repository is created (TUF root, targets, snapshot and timestamp keys) and the origin
#   registry serves it over HTTP and iroh on 127.0.0.1, with the embedded Nostr relay; a publisher
#   signs the sample apps in apps/ and submits them (`archy publish`); a third-party publisher,
#   unknown to the origin, announces an app on the relay (`archy publish --relay`) and the origin's
#   publisher endorses it; a node pins the root, syncs the verified catalog, discovers the Nostr
#   app (binding, DID signature and envelope checked), shows its trust score and why, and installs
#   hello-web through Docker; a second node mirrors the catalog from the first over iroh while the
#   origin is down, and the origin wins again when it is back.
# The registry, the relay, node 1 and hello-web keep running at the end; the last lines say how
# to open the app and how to stop everything:
#   bash scripts/demo.sh          run it (work folder: $ARCHY_DEMO_DIR or a new temporary one)
#   bash scripts/demo.sh stop     stop what the last run left running and remove hello-web
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/archy-target}"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
STATE="$HOME/.cache/archy-demo"
BIN="$CARGO_TARGET_DIR/debug"

# Stops what a run left running (its pids and work folder are under $STATE) and removes hello-web.
stop_demo() {
  [ -d "$STATE" ] || return 0
  if [ -f "$STATE/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$STATE/pids"
  fi
  local work
  work=$(cat "$STATE/work" 2>/dev/null || true)
  if [ -n "$work" ] && [ -d "$work/node1/orchestrator" ] && [ -x "$BIN/archy-node" ]; then
    "$BIN/archy-node" uninstall hello-web --purge --yes --data "$work/node1" >/dev/null 2>&1 || true
  fi
  rm -rf "$STATE"
}
if [ "${1:-}" = stop ]; then
  stop_demo
  echo "stopped the demo's registry, relay and node, and removed hello-web"
  exit 0
fi
stop_demo # a previous run still holding the ports

step "building archy, archy-registry (with the embedded Nostr relay) and archy-node"
cargo build -q -p archy-publisher -p archy-registry -p archy-node
ARCHY="$BIN/archy"
WORK="${ARCHY_DEMO_DIR:-$(mktemp -d /tmp/archy-demo.XXXXXX)}"
mkdir -p "$WORK"
export ARCHY_KEY="$WORK/publisher.key"
export ARCHY_LOG=warn
echo "work folder: $WORK"
mkdir -p "$STATE"
echo "$WORK" >"$STATE/work"
: >"$STATE/pids"
# A background process that outlives this script; its pid is kept for `demo.sh stop`.
keep() {
  "$@" &
  LAST=$!
  echo "$LAST" >>"$STATE/pids"
}
# On failure everything is stopped; on success the registry, node 1 and hello-web keep running.
cleanup() { [ "$1" -eq 0 ] || stop_demo; }
trap 'cleanup $?' EXIT
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

step "origin registry on 127.0.0.1 (HTTP + iroh, iroh relays off) with the embedded Nostr relay"
HTTP_PORT=$(free_port)
RELAY_PORT=$(free_port)
keep "$BIN/archy-registry" serve --data "$WORK/origin" --http "127.0.0.1:$HTTP_PORT" \
  --relay "127.0.0.1:$RELAY_PORT" >"$WORK/registry.log" 2>&1
REGISTRY=$LAST
wait_file "$WORK/origin/registry/endpoint.json"
cat "$WORK/registry.log"
ORIGIN="http://127.0.0.1:$HTTP_PORT"
RELAY="ws://127.0.0.1:$RELAY_PORT"

step "the publisher builds hello-web's image (busybox-static, FROM scratch) as an archive"
rm -rf "$WORK/apps"; mkdir -p "$WORK/apps"
for id in "${APPS[@]}"; do cp -r "apps/$id" "$WORK/apps/$id"; done
if [ ! -x /bin/busybox ]; then
  echo "installing Debian's busybox-static"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
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

step "a third-party publisher, unknown to the origin, announces an app on the relay (NIP-78)"
THIRD="$WORK/third-party"
mkdir -p "$THIRD"
third() { ARCHY_KEY="$THIRD/publisher.key" ARCHY_NOSTR_KEY="$THIRD/nostr.key" "$ARCHY" "$@"; }
third key new >/dev/null
third app new guestbook --template registry-image --dir "$THIRD" >/dev/null
sed -i 's|^title = .*|title = "Guestbook"|; s|^summary = .*|summary = "A guestbook for your home server, announced on Nostr."|' \
  "$THIRD/guestbook/archy.toml"
third identity bind --relay "$RELAY"
third publish "$THIRD/guestbook" --relay "$RELAY" --upload "$ORIGIN"
THIRD_DID=$(third --json key show | python3 -c 'import json,sys; print(json.load(sys.stdin)["did"])')

step "the origin's publisher binds its Nostr key and endorses the third party (NIP-32 label)"
export ARCHY_NOSTR_KEY="$WORK/nostr.key"
"$ARCHY" identity bind --relay "$RELAY"
"$ARCHY" trust endorse "$THIRD_DID" --relay "$RELAY" --reason "reviewed guestbook 0.1.0"

step "node 1: pin the root (its minisign signature checked), sync the catalog and the relay, list"
MINISIGN_KEY=$("$ARCHY" --json key show --key "$WORK/origin/keys/root-1.key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["minisign_public_key"])')
rm -rf "$WORK/node1" "$WORK/node2"
"$BIN/archy-node" init --data "$WORK/node1" --root "$WORK/origin/repository/metadata/1.root.json" \
  --minisig "$WORK/origin/repository/metadata/1.root.json.minisig" --minisign-key "$MINISIGN_KEY" --origin "$ORIGIN" \
  --relay "$RELAY"
"$BIN/archy-node" sync --data "$WORK/node1"
"$BIN/archy-node" apps --data "$WORK/node1"

step "node 1: why the third-party publisher has its trust score (seeded by the origin's publisher)"
"$BIN/archy-node" trust "$THIRD_DID" --data "$WORK/node1"

step "node 1 installs hello-web through Docker: archive fetched and verified, image id checked"
"$BIN/archy-node" install hello-web --data "$WORK/node1"
"$BIN/archy-node" ps --data "$WORK/node1"
for _ in $(seq 50); do curl -sf http://127.0.0.1:8090/ >/dev/null && break; sleep 0.2; done
if ! PAGE=$(curl -sf http://127.0.0.1:8090/); then
  echo "error: hello-web does not answer on http://127.0.0.1:8090/ (see: $BIN/archy-node ps --data $WORK/node1)" >&2
  exit 1
fi
echo "GET http://127.0.0.1:8090/ ->"; sed -n 1,5p <<<"$PAGE"

step "node 1 runs as a mirror (iroh-blobs + metadata protocol)"
API_PORT=$(free_port)
sed -i "s|^api = .*|api = \"127.0.0.1:$API_PORT\"|" "$WORK/node1/config.toml"
keep "$BIN/archy-node" run --data "$WORK/node1" >"$WORK/node1.log" 2>&1
wait_file "$WORK/node1/node.json"
PEER=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["iroh"])' "$WORK/node1/node.json")
echo "node 1 serves at $PEER"

step "the origin goes down; node 2 gets the catalog from node 1, verified against the origin's root"
kill "$REGISTRY"
while kill -0 "$REGISTRY" 2>/dev/null; do sleep 0.1; done
"$BIN/archy-node" init --data "$WORK/node2" --root "$WORK/origin/repository/metadata/1.root.json" --origin "$ORIGIN" --peer "$PEER" \
  --relay "$RELAY"
"$BIN/archy-node" sync --data "$WORK/node2"
"$BIN/archy-node" status --data "$WORK/node2"

step "the origin is back with a new release; its catalog wins"
keep "$BIN/archy-registry" serve --data "$WORK/origin" --http "127.0.0.1:$HTTP_PORT" \
  --relay "127.0.0.1:$RELAY_PORT" >>"$WORK/registry.log" 2>&1
for _ in $(seq 100); do curl -sf "$ORIGIN/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$ORIGIN/healthz" >/dev/null 2>&1 || { echo "error: the origin registry did not come back (see $WORK/registry.log)" >&2; exit 1; }
sed -i 's|^version = "2.8.0"|version = "2.9.0"|' "$WORK/apps/wiki/archy.toml"
"$ARCHY" publish "$WORK/apps/wiki" --registry "$ORIGIN"
"$BIN/archy-node" sync --data "$WORK/node2"
"$BIN/archy-node" apps --data "$WORK/node2"

step "node 1 fetches hello-web's image archive through its running node (from the origin) and announces it"
"$BIN/archy-node" fetch images/hello-web/hello-web-0.1.0.tar --data "$WORK/node1"

step "node 2 runs too and fetches the same archive while the origin is up: peers first, so from node 1, verified"
API2_PORT=$(free_port)
sed -i "s|^api = .*|api = \"127.0.0.1:$API2_PORT\"|" "$WORK/node2/config.toml"
keep "$BIN/archy-node" run --data "$WORK/node2" >"$WORK/node2.log" 2>&1
NODE2=$LAST
wait_file "$WORK/node2/node.json"
"$BIN/archy-node" api POST /v1/sync --data "$WORK/node2" >/dev/null
# Prints where the bytes came from: "… N bytes from the origin, M from peers".
"$BIN/archy-node" fetch images/hello-web/hello-web-0.1.0.tar --data "$WORK/node2"
"$BIN/archy-node" status --data "$WORK/node2" | sed -n '/^swarm:/,/^equivocation/p' | sed '$d'
kill "$NODE2"

step "done: the origin registry and its relay, node 1 and hello-web keep running"
API=$(sed -n 's|^api = "\(.*\)"|\1|p' "$WORK/node1/config.toml")
curl -sf "$ORIGIN/" >/dev/null || { echo "error: the marketplace does not answer on $ORIGIN/" >&2; exit 1; }
# The marketplace reads its relay when it starts and every 30 s: the guestbook is listed apart.
for _ in $(seq 100); do curl -sf "$ORIGIN/" | grep -q '/nostr/guestbook' && break; sleep 0.2; done
curl -sf "$ORIGIN/" | grep -q '/nostr/guestbook' ||
  { echo "error: the marketplace does not list the Nostr app guestbook (see $WORK/registry.log)" >&2; exit 1; }
curl -sf "http://$API/login" >/dev/null || { echo "error: node 1's dashboard does not answer on http://$API/login" >&2; exit 1; }
# A one-time link that signs a browser into node 1's dashboard (valid 10 minutes; after that
# `archy-node dashboard` makes another, or sign in with the API token).
LINK=$("$BIN/archy-node" dashboard --data "$WORK/node1" 2>/dev/null) ||
  { echo "error: archy-node dashboard failed" >&2; exit 1; }
echo "  open the app:        http://127.0.0.1:8090/"
echo "  origin registry:     $ORIGIN    Nostr relay: $RELAY"
echo "  node 1's local API:  http://$API (token: archy-node api-token --data $WORK/node1)"
echo "                       e.g. $BIN/archy-node api GET /v1/apps --data $WORK/node1"
echo "  work folder:         $WORK"
echo "  stop everything:     bash scripts/demo.sh stop"
echo "  marketplace:         $ORIGIN/   (the origin's catalog, and apart the Nostr apps it hosts)"
echo "  node 1's dashboard:  $LINK"
echo "                       (signs in once, within 10 minutes; a new link: $BIN/archy-node dashboard --data $WORK/node1)"
