#!/usr/bin/env bash
# Runs the public TUF conformance suite (theupdateframework/tuf-conformance) against archy's TUF
# client, `archy-node tuf-client`, which implements the suite's client-under-test CLI
# (init / refresh / download, see CLIENT-CLI.md in the suite).
#
#   tests/tuf-conformance.sh [path/to/archy-node] [pytest args…]
#   tests/tuf-conformance.sh --check         # exit 0 if the suite is available, 3 if not
#
# e.g.  tests/tuf-conformance.sh "" -k test_basic -x
#       TUF_CONFORMANCE_ARGS="-k rollback -rA" tests/tuf-conformance.sh
#
# The binary defaults to $CARGO_TARGET_DIR/debug/archy-node (CARGO_TARGET_DIR defaults to
# ~/.cache/archy-target); an empty first argument or one starting with "-" also means the default.
# Extra pytest arguments come from the trailing arguments and from $TUF_CONFORMANCE_ARGS.
#
# The suite is third-party code and is never committed here. It is taken from
#   - $TUF_CONFORMANCE_DIR, a checkout of https://github.com/theupdateframework/tuf-conformance, or
#   - a bare git mirror at $TUF_CONFORMANCE_GIT (default
#     /work/.mirror/theupdateframework+tuf-conformance/repo), extracted into
#     ~/.cache/archy-tuf-conformance/src.
# Needs faketime (installed with apt-get if missing) and python3 with venv; the suite and its
# pinned Python packages (python-tuf, pytest, …) go into ~/.cache/archy-tuf-conformance/venv.
#
# Expected failures: the suite marks as xfail (strict) the tests named in "<entrypoint>.xfails".
# The entrypoint here is a generated wrapper, and tests/tuf-conformance.xfails (if present) is
# copied beside it, so that file is the place for archy's expected failures.
#
# For checking this script itself: ARCHY_TUF_ENTRYPOINT=python-tuf runs the suite against its
# own reference client (clients/python-tuf/python_tuf.py, with its own .xfails); any other value
# is used verbatim as the --entrypoint string.
#
# Exit status: pytest's (0 = everything passed or failed as expected); 2 no binary; 3 no suite.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${ARCHY_TUF_CONFORMANCE_CACHE:-$HOME/.cache/archy-tuf-conformance}"
git_dir="${TUF_CONFORMANCE_GIT:-/work/.mirror/theupdateframework+tuf-conformance/repo}"

say() { printf 'tuf-conformance: %s\n' "$*" >&2; }

# --- the suite ----------------------------------------------------------------------------------
suite="${TUF_CONFORMANCE_DIR:-}"
if [ -n "$suite" ]; then
  suite="$(cd "$suite" && pwd)"
elif git --git-dir="$git_dir" rev-parse -q --verify HEAD >/dev/null 2>&1; then
  suite="$cache/src"
  rev="$(git --git-dir="$git_dir" rev-parse HEAD)"
  if [ "$(cat "$suite/.archy-rev" 2>/dev/null)" != "$rev" ]; then
    say "extracting suite $rev from $git_dir into $suite"
    rm -rf "$suite"
    mkdir -p "$suite"
    git --git-dir="$git_dir" archive "$rev" | tar -x -C "$suite"
    echo "$rev" >"$suite/.archy-rev"
  fi
fi
if [ -z "$suite" ] || [ ! -f "$suite/pyproject.toml" ] || [ ! -d "$suite/tuf_conformance" ]; then
  cat >&2 <<EOF
tuf-conformance: the TUF conformance suite was not found (it is not part of this repository).
  Get it with:  git clone https://github.com/theupdateframework/tuf-conformance <dir>
  then run:     TUF_CONFORMANCE_DIR=<dir> $0 [archy-node] [pytest args…]
  (or provide a bare git mirror at \$TUF_CONFORMANCE_GIT, default $git_dir)
EOF
  exit 3
fi
[ "${1:-}" = "--check" ] && exit 0

# --- the client under test ----------------------------------------------------------------------
bin=""
if [ $# -gt 0 ] && [ "${1:0:1}" != "-" ]; then
  bin="$1"
  shift
fi
[ -n "$bin" ] || bin="${CARGO_TARGET_DIR:-$HOME/.cache/archy-target}/debug/archy-node"
override="${ARCHY_TUF_ENTRYPOINT:-}"
if [ -z "$override" ]; then
  [ -x "$bin" ] || { say "no archy-node binary at $bin (build it: cargo build -p archy-node)"; exit 2; }
  bin="$(realpath "$bin")"
fi

# --- tools --------------------------------------------------------------------------------------
if ! command -v faketime >/dev/null 2>&1; then
  say "installing faketime (Debian package)"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -qq faketime >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq faketime >/dev/null
  fi
  command -v faketime >/dev/null 2>&1 || { say "faketime is required (apt-get install faketime)"; exit 4; }
fi

# Like the suite's Makefile (`pip install -e .`): the suite plus its pinned dependencies. The venv
# is rebuilt when the suite's location or pyproject.toml (the pins) changes, or it is broken.
venv="$cache/venv"
stamp="$venv/.archy-suite"
want="$(printf '# suite: %s\n' "$suite"; cat "$suite/pyproject.toml")"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$venv/bin/pytest" ] ||
  ! "$venv/bin/python" -c 'import tuf_conformance, tuf.ngclient' >/dev/null 2>&1; then
  say "creating python venv $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$suite"
  printf '%s\n' "$want" >"$stamp"
fi

# --- entrypoint ---------------------------------------------------------------------------------
# The suite splits --entrypoint on single spaces (no shell quoting) and reads the expected
# failures from "<entrypoint>.xfails" (the whole string, spaces included). A one-word wrapper in a
# fresh temp dir avoids both problems: the client may live anywhere, and the .xfails file is
# copied beside the wrapper under its plain name.
work="$(mktemp -d "${TMPDIR:-/tmp}/archy-tuf-conformance.XXXXXX")"
trap 'rm -rf "$work"' EXIT
case "$override" in
  "")
    command=("$bin" tuf-client)
    xfails="${ARCHY_TUF_XFAILS:-$here/tuf-conformance.xfails}"
    label="archy-node tuf-client ($bin)"
    ;;
  python-tuf)
    command=("$venv/bin/python" "$suite/clients/python-tuf/python_tuf.py")
    xfails="$suite/clients/python-tuf/python_tuf.py.xfails"
    label="python-tuf reference client"
    ;;
  *)
    command=()
    label="$override"
    ;;
esac
if ((${#command[@]})); then
  entrypoint="$work/client"
  { echo '#!/usr/bin/env bash'; printf 'exec'; printf ' %q' "${command[@]}"; echo ' "$@"'; } >"$entrypoint"
  chmod +x "$entrypoint"
  if [ -f "$xfails" ]; then
    cp "$xfails" "$entrypoint.xfails"
    say "expected failures ($(grep -cvE '^[[:space:]]*(#|$)' "$xfails" || true)) from $xfails"
  fi
else
  entrypoint="$override" # verbatim; the suite looks for "$override.xfails" itself
fi

extra=()
# Split on whitespace, without glob expansion; read -d '' returns 1 at the end of its input.
if [ -n "${TUF_CONFORMANCE_ARGS:-}" ]; then read -r -d '' -a extra <<<"$TUF_CONFORMANCE_ARGS" || true; fi

report="$work/report.json"
log="$work/pytest.log"
json_args=()
# pytest-json-report is one of the suite's pinned dependencies; older checkouts may lack it.
if "$venv/bin/python" -c 'import pytest_jsonreport' >/dev/null 2>&1; then
  json_args=(--json-report --json-report-file="$report" --json-report-omit collectors log streams traceback)
fi
say "suite $suite"
say "client $label"
cd "$suite"
start=$(date +%s)
set +e
"$venv/bin/pytest" tuf_conformance \
  --entrypoint "$entrypoint" \
  -p no:cacheprovider -q -rfEX \
  ${json_args[@]+"${json_args[@]}"} ${extra[@]+"${extra[@]}"} "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
elapsed=$(($(date +%s) - start))

if [ -f "$report" ]; then
  # A report that cannot be read must not end the script before it exits with pytest's status.
  summary="$("$venv/bin/python" - "$report" <<'EOF' || echo "no summary (unreadable $report)"
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
order = ["passed", "failed", "error", "xfailed", "xpassed", "skipped", "deselected"]
parts = [f"{s.get(k, 0)} {k}" for k in order if s.get(k, 0) or k in ("passed", "failed")]
print(", ".join(parts) + f" (of {s.get('collected', s.get('total', 0))} collected)")
EOF
)"
else
  # `|| true`: no summary line makes grep fail, which under pipefail would end the script here.
  summary="$({ grep -E '(passed|failed|error|no tests ran)' "$log" || true; } | tail -n 1 | tr -d '=' | sed 's/^ *//; s/ *$//')"
  [ -n "$summary" ] || summary="no summary (see output above)"
fi
echo "==== tuf-conformance [$label]: $summary; ${elapsed}s; exit $status ===="
exit "$status"
