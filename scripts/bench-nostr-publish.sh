#!/usr/bin/env bash
# Nostr publish-to-listed latency: the time from `archy publish --relay` returning to the new
# version being listed by a node subscribed to the same local relay, over 50 publishes; prints
# p50 and p95. Target: p50 < 300 ms.
#
# Usage: bash scripts/bench-nostr-publish.sh [N]     (N publishes, default 50; ~2 minutes after
#        the release build; ARCHY_BENCH_PROFILE=debug uses the debug binaries instead)
#
# Starts on 127.0.0.1: `archy-registry serve --relay` (the embedded relay, and /v1/blobs for the
# envelopes) and `archy-node run` with that relay configured (its live subscription). A publisher
# binds its keys once, then publishes versions 1.0.0, 1.0.1, … of one app with `--upload`. After
# each `archy publish` exits, the node's local API (`GET /v1/apps?source=nostr`) is polled every
# 2 ms until it lists that version. The clock starts when `archy publish` has returned, so it
# covers: the relay pushing the event to the node, the node's checks (Nostr signature, binding,
# DID signature), fetching the envelope from the registry by hash, verifying it, storing it
# atomically, and listing it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-common.sh
N="${1:-50}"
PROFILE="${ARCHY_BENCH_PROFILE:-release}"

need_packages curl:curl
if [ "$PROFILE" = release ]; then
  step "building archy, archy-registry and archy-node (release)"
  cargo build -q --release -p archy-node -p archy-registry -p archy-publisher
  BIN="$RELEASE"
else
  step "building archy, archy-registry and archy-node (debug)"
  cargo build -q -p archy-node -p archy-registry -p archy-publisher
  BIN="$CARGO_TARGET_DIR/debug"
fi

bench_workdir nostr
export ARCHY_KEY="$WORK/publisher.key" ARCHY_NOSTR_KEY="$WORK/nostr.key" ARCHY_LOG=warn

step "origin registry with the embedded relay"
"$BIN/archy" repo init "$WORK/origin" >/dev/null
"$BIN/archy-registry" serve --data "$WORK/origin" --http 127.0.0.1:0 --no-iroh --relay 127.0.0.1:0 \
  >"$WORK/registry.log" 2>&1 &
PIDS+=($!)
wait_file "$WORK/origin/registry/endpoint.json" "$WORK/registry.log"
# Read in two steps: a failure inside `< <(…)` would go unnoticed (read would just see no input).
endpoint=$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(e["http"], e["relay"])' \
  "$WORK/origin/registry/endpoint.json")
read -r HTTP RELAY <<<"$endpoint"
echo "registry $HTTP, relay $RELAY" >&2

step "node subscribed to the relay (archy-node run)"
API_PORT=$(free_port)
"$BIN/archy-node" init --data "$WORK/node" --root "$WORK/origin/repository/metadata/1.root.json" \
  --origin "$HTTP" --relay "$RELAY" --min-score 0 >/dev/null
sed -i "s|^api = .*|api = \"127.0.0.1:$API_PORT\"|" "$WORK/node/config.toml"
# The local API's token, made before the node starts (which then uses it).
TOKEN=$("$BIN/archy-node" api-token --data "$WORK/node")
"$BIN/archy-node" run --data "$WORK/node" >"$WORK/node.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$API_PORT/v1/status" -H "Authorization: Bearer $TOKEN"

step "publisher: key and binding"
"$BIN/archy" key new >/dev/null
"$BIN/archy" identity bind --relay "$RELAY" >/dev/null
DID=$("$BIN/archy" --json key show | python3 -c 'import json,sys; print(json.load(sys.stdin)["did"])')
"$BIN/archy" app new bench-notes --template registry-image --dir "$WORK" >/dev/null

step "$N publishes, each timed from \`archy publish\` returning to the node listing it"
python3 - "$BIN/archy" "$WORK" "$RELAY" "$HTTP" "http://127.0.0.1:$API_PORT" "$DID" "$N" "$TOKEN" <<'PY'
import json, subprocess, sys, time, urllib.request

archy, work, relay, http, api, did, n, token = sys.argv[1:9]
n = int(n)
toml = open(f"{work}/bench-notes/archy.toml").read()

def listed(version):
    request = urllib.request.Request(f"{api}/v1/apps?source=nostr", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as r:
        apps = json.load(r)
    apps = apps.get("apps", apps) if isinstance(apps, dict) else apps
    return any(a.get("id") == "bench-notes" and a.get("version") == version for a in apps)

latencies = []
for i in range(n):
    version = f"1.0.{i}"
    with open(f"{work}/bench-notes/archy.toml", "w") as f:
        f.write(toml.replace('version = "0.1.0"', f'version = "{version}"', 1))
    out = subprocess.run([archy, "publish", f"{work}/bench-notes", "--relay", relay, "--upload", http],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"archy publish {version} failed: {out.stderr}")
    start = time.perf_counter()
    deadline = start + 30
    while not listed(version):
        if time.perf_counter() > deadline:
            sys.exit(f"the node did not list bench-notes {version} within 30 s")
        time.sleep(0.002)
    latencies.append((time.perf_counter() - start) * 1000)
    print(f"  {version}: {latencies[-1]:.1f} ms", file=sys.stderr)

latencies.sort()
def pct(p):
    return latencies[min(len(latencies) - 1, int(round(p / 100 * len(latencies) + 0.5)) - 1)]
p50, p95 = pct(50), pct(95)
print(f"publish->listed over {n} publishes: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
      f"min {latencies[0]:.1f} ms, max {latencies[-1]:.1f} ms")
print(f"result: p50 {p50:.1f} ms (target < 300 ms), p95 {p95:.1f} ms; "
      f"{'meets' if p50 < 300 else 'MISSES'} the target")
PY
