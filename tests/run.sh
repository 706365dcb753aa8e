#!/usr/bin/env bash
# The test command: installs what the tests need (idempotently), then runs every test.
#   bash tests/run.sh
# - Debian packages: minisign (interop of .minisig files), faketime (TUF conformance suite).
# - python-tuf in ~/.cache/archy-interop-venv (interop: python-tuf reads archy repositories).
# - cargo test --workspace.
# - The public TUF conformance suite against `archy-node tuf-client`, when it is available
#   (see tests/tuf-conformance.sh; the suite itself is never committed).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/archy-target}"

missing=()
command -v minisign >/dev/null 2>&1 || missing+=(minisign)
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

ARCHY_INTEROP_PYTHON="$(bash tests/interop/setup-venv.sh)"
export ARCHY_INTEROP_PYTHON

cargo test --workspace

if bash tests/tuf-conformance.sh --check >/dev/null 2>&1; then
  cargo build -q -p archy-node
  bash tests/tuf-conformance.sh "$CARGO_TARGET_DIR/debug/archy-node"
else
  echo "TUF conformance suite not available here: see tests/tuf-conformance.sh to run it"
fi
