#!/usr/bin/env bash
# Installs (once) nostr-rs-relay, an independent Nostr relay from crates.io, for archy's Nostr
# interop tests (everything but the printed path goes to stderr):
#   relay="$(bash tests/interop/nostr-rs-relay.sh --print-path)"
#   config="$(bash tests/interop/nostr-rs-relay.sh --config DIR PORT)"; "$relay" -c "$config"
# --config also writes DIR/config.toml (relay on 127.0.0.1:PORT, SQLite in DIR/db) and prints its
# path; with no option the script only installs. Installs the Debian package protobuf-compiler if
# protoc is missing (the build needs it). The build (~10 min on 2 cores) goes to $ARCHY_TOOLS
# (default ~/.cache/archy-tools) with its own target dir, so it never locks the project's build.
set -euo pipefail
version=0.8.12
root="${ARCHY_TOOLS:-$HOME/.cache/archy-tools}"
bin="$root/bin/nostr-rs-relay"
# The published source in the cargo cache, if it is there (a fresh machine has none: status 1).
cached_crate() {
  local dir
  for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"nostr-rs-relay-$version"; do
    if [ -f "$dir/Cargo.toml" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}
if ! [ -x "$bin" ] || ! grep -qx "$version" "$root/.nostr-rs-relay-version" 2>/dev/null; then
  if ! command -v protoc >/dev/null 2>&1; then
    echo "installing Debian package protobuf-compiler" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null
  fi
  # Its Cargo.lock pins time 0.3.25, which no longer compiles with Rust >= 1.80 (E0282), so build
  # a copy of the published source with only `time` (and what it pulls) moved to 0.3.36.
  src="$root/src/nostr-rs-relay-$version"
  if ! [ -f "$src/Cargo.toml" ]; then
    crate="$(cached_crate || true)"
    if [ -z "$crate" ]; then # `cargo fetch` of a throwaway manifest downloads the published source
      tmp="$(mktemp -d)"
      mkdir "$tmp/src" && : >"$tmp/src/lib.rs"
      printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nnostr-rs-relay = "=%s"\n' \
        "$version" >"$tmp/Cargo.toml"
      cargo fetch -q --manifest-path "$tmp/Cargo.toml" >&2
      rm -rf "$tmp"
      crate="$(cached_crate)" || {
        echo "error: cargo fetch did not bring nostr-rs-relay $version into ${CARGO_HOME:-$HOME/.cargo}/registry/src" >&2
        exit 1
      }
    fi
    mkdir -p "$root/src" && rm -rf "$src.tmp" && cp -r "$crate" "$src.tmp"
    cargo update -q --manifest-path "$src.tmp/Cargo.toml" -p time@0.3.25 --precise 0.3.36 >&2
    mv "$src.tmp" "$src"
  fi
  echo "building nostr-rs-relay $version into $root (takes ~10 min on 2 cores)" >&2
  CARGO_TARGET_DIR="${ARCHY_TOOLS_TARGET:-$HOME/.cache/archy-tools-target}" RUSTFLAGS=-Awarnings \
    nice -n 10 cargo install -q --locked --path "$src" --root "$root" >&2
  echo "$version" >"$root/.nostr-rs-relay-version"
fi
case "${1:-}" in
--print-path) echo "$bin" ;;
--config)
  [ $# -ge 3 ] || { echo "usage: $0 --config DIR PORT" >&2; exit 2; }
  dir="$(mkdir -p "$2/db" && cd "$2" && pwd)"
  # Defaults worth knowing: every kind is accepted; 30000-39999 are replaced per (pubkey, kind, d)
  # but a new one with the same created_at is dropped (OK true "duplicate:"); the whole
  # ["EVENT",…] message may be 262144 bytes (more gets a NOTICE, no OK); kind 5 deletes by `e` only.
  printf '[network]\naddress = "127.0.0.1"\nport = %s\n[database]\ndata_directory = "%s"\n' \
    "$3" "$dir/db" >"$dir/config.toml"
  echo "$dir/config.toml"
  ;;
"") ;;
*) echo "usage: $0 [--print-path | --config DIR PORT]" >&2 && exit 2 ;;
esac
