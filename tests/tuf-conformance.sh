#!/usr/bin/env bash
# Runs the public TUF conformance suite (theupdateframework/tuf-conformance) against
# `archy-node tuf-client`. The suite is not part of this repository: point TUF_CONFORMANCE_DIR
# at a checkout, or have a git mirror of it at $TUF_CONFORMANCE_GIT
# (default /work/.mirror/theupdateframework+tuf-conformance/repo).
#
#   bash tests/tuf-conformance.sh [path/to/archy-node] [pytest args…]
#   bash tests/tuf-conformance.sh --check      # exit 0 if the suite is available
#
# Needs faketime (Debian package) and Python 3; the suite's Python packages go into a virtualenv
# under ~/.cache/archy-tuf-conformance. Expected-failure names, if any, go in
# tests/tuf-conformance.xfails (archy has none).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="$HOME/.cache/archy-tuf-conformance"
git_dir="${TUF_CONFORMANCE_GIT:-/work/.mirror/theupdateframework+tuf-conformance/repo}"

suite="${TUF_CONFORMANCE_DIR:-}"
if [ -z "$suite" ]; then
  if [ -d "$git_dir" ]; then
    suite="$cache/src"
    rev="$(git --git-dir="$git_dir" rev-parse HEAD)"
    if [ "$(cat "$suite/.archy-rev" 2>/dev/null)" != "$rev" ]; then
      rm -rf "$suite" && mkdir -p "$suite"
      git --git-dir="$git_dir" archive "$rev" | tar -x -C "$suite"
      echo "$rev" > "$suite/.archy-rev"
    fi
  fi
fi
if [ -z "$suite" ] || [ ! -f "$suite/pyproject.toml" ]; then
  echo "tuf-conformance suite not found: set TUF_CONFORMANCE_DIR to a checkout of theupdateframework/tuf-conformance" >&2
  exit 3
fi
[ "${1:-}" = "--check" ] && exit 0

bin="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/archy-target}/debug/archy-node}"
shift || true
[ -x "$bin" ] || { echo "no archy-node binary at $bin (cargo build -p archy-node)" >&2; exit 2; }
command -v faketime >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null
}
venv="$cache/venv"
if ! cmp -s "$suite/pyproject.toml" "$venv/.pyproject" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$suite"
  cp "$suite/pyproject.toml" "$venv/.pyproject"
fi

# The suite splits --entrypoint on spaces and reads "<entrypoint>.xfails" beside it.
entry_dir="$cache/entrypoint"
mkdir -p "$entry_dir"
ln -sf "$(realpath "$bin")" "$entry_dir/archy-node"
rm -f "$entry_dir/archy-node tuf-client.xfails"
[ -f "$here/tuf-conformance.xfails" ] && cp "$here/tuf-conformance.xfails" "$entry_dir/archy-node tuf-client.xfails"

cd "$suite"
set +e
"$venv/bin/pytest" tuf_conformance --entrypoint "$entry_dir/archy-node tuf-client" -p no:cacheprovider -q "$@"
status=$?
set -e
exit $status
