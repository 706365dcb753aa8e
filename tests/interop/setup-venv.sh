#!/usr/bin/env bash
# Creates (once) a virtualenv for the interop tests (python-tuf; pynostr, websocket-client, base58,
# blake3 and cryptography for tests/interop/nostr_*.py; selenium for tests/interop/browser_*.py)
# and prints its python on stdout (everything else goes to stderr):
#   ARCHY_INTEROP_PYTHON="$(bash tests/interop/setup-venv.sh)"
# The venv ($ARCHY_INTEROP_VENV, default ~/.cache/archy-interop-venv) is rebuilt only when
# requirements.txt changes or the venv is broken.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${ARCHY_INTEROP_VENV:-$HOME/.cache/archy-interop-venv}"
stamp="$venv/.requirements"
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null ||
  ! "$venv/bin/python" -c 'import tuf.ngclient, pynostr.event, websocket, base58, blake3, cryptography, selenium' \
    >/dev/null 2>&1; then
  echo "setting up the interop venv in $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$stamp"
fi
echo "$venv/bin/python"
