#!/usr/bin/env bash
# The test command: installs what the tests need (idempotently), then runs every test.
#   bash tests/run.sh
# - Debian packages: minisign (interop of .minisig files), faketime (TUF conformance suite),
#   busybox-static (the orchestrator tests build their image from /bin/busybox), docker-registry
#   (a container registry on 127.0.0.1 serving the digest-pinned image of a Nostr app), systemd
#   (systemd-analyze verifies the shipped units), docker.io and fuse-overlayfs (tests start
#   engines of their own to kill and restart), xfsprogs (an engine on an XFS filesystem with
#   reflinks, in a loop-mounted file, for snapshots that share blocks), chromium and
#   chromium-driver (the marketplace and the node's dashboard are tested in a real browser),
#   iproute2, iptables and curl (the swarm tests run the origin and each node as a host of its
#   own: network namespaces, veth, tc tbf, iptables DROP; they need root).
# - A running Docker engine (the orchestrator tests use it for real): a missing socket fails the
#   run here, unless ARCHY_NO_DOCKER=1 says this machine has no Docker (CI must not set it).
# - python-tuf, pynostr and selenium in ~/.cache/archy-interop-venv (interop: python-tuf reads
#   archy repositories, pynostr checks archy's Nostr events, selenium drives chromium).
# - nostr-rs-relay, an independent Nostr relay, built once into ~/.cache/archy-tools.
# - cargo test --workspace.
# - The public TUF conformance suite against `archy-node tuf-client`, when it is available
#   (see tests/tuf-conformance.sh; the suite itself is never committed).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/archy-target}"

missing=()
command -v minisign >/dev/null 2>&1 || missing+=(minisign)
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
[ -x /bin/busybox ] || missing+=(busybox-static)
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
# systemd-analyze checks the systemd units archy ships; dockerd and fuse-overlayfs run the
# engines the engine-restart and power-cut tests own.
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v fuse-overlayfs >/dev/null 2>&1 || missing+=(fuse-overlayfs)
# mkfs.xfs makes the reflink-capable filesystem a snapshot test runs an engine on.
command -v mkfs.xfs >/dev/null 2>&1 || missing+=(xfsprogs)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
{ command -v ip && command -v tc; } >/dev/null 2>&1 || missing+=(iproute2)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

docker_socket="${DOCKER_HOST:-/var/run/docker.sock}"
docker_socket="${docker_socket#unix://}"
if [ ! -S "$docker_socket" ]; then
  if [ "${ARCHY_NO_DOCKER:-}" = 1 ]; then
    echo "ARCHY_NO_DOCKER=1: the orchestrator tests that need Docker are skipped"
  else
    echo "error: the Docker engine socket $docker_socket is missing; the orchestrator tests need a running Docker engine" >&2
    echo "       (set ARCHY_NO_DOCKER=1 only on a machine without Docker)" >&2
    exit 1
  fi
fi

ARCHY_INTEROP_PYTHON="$(bash tests/interop/setup-venv.sh)" ||
  { echo "error: tests/interop/setup-venv.sh failed (see above)" >&2; exit 1; }
export ARCHY_INTEROP_PYTHON
# An independent relay implementation for the Nostr interop tests (built once, ~10 min).
ARCHY_NOSTR_RS_RELAY="$(bash tests/interop/nostr-rs-relay.sh --print-path)" ||
  { echo "error: tests/interop/nostr-rs-relay.sh failed (see above)" >&2; exit 1; }
export ARCHY_NOSTR_RS_RELAY

cargo test --workspace

if bash tests/tuf-conformance.sh --check >/dev/null 2>&1; then
  cargo build -q -p archy-node
  bash tests/tuf-conformance.sh "$CARGO_TARGET_DIR/debug/archy-node"
else
  echo "TUF conformance suite not available here: see tests/tuf-conformance.sh to run it"
fi
