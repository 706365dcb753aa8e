# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, not run): package installs, release builds, ports.
# Everything they start listens on 127.0.0.1 only.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/archy-target}"
# shellcheck disable=SC2034 # used by the scripts that source this file (bench-origin.sh, bench-nostr-publish.sh)
RELEASE="$CARGO_TARGET_DIR/release"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

# need_packages CMD:PACKAGE… — installs the Debian packages whose command is missing (idempotent).
need_packages() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "installing ${missing[*]} (Debian packages)"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL [CURL-ARGS…] — waits until URL answers 200 (30 s at most).
wait_http() {
  local url=$1; shift
  for _ in $(seq 300); do
    curl -fs -o /dev/null "$@" "$url" && return 0
    sleep 0.1
  done
  echo "error: $url did not answer" >&2
  return 1
}

# wait_file FILE [LOG] — waits until FILE exists and is not empty (30 s at most); otherwise says
# so, shows LOG (the log of the process that should have written FILE) and fails.
wait_file() {
  for _ in $(seq 300); do
    [ -s "$1" ] && return 0
    sleep 0.1
  done
  echo "error: $1 did not appear within 30 s" >&2
  if [ -n "${2:-}" ] && [ -f "$2" ]; then
    echo "--- $2:" >&2
    tail -n 20 "$2" >&2
  fi
  return 1
}

# nginx_conf PREFIX SERVER-BLOCK — a minimal nginx.conf for a foreground nginx under PREFIX:
# no daemon, its pid, logs and temp files under PREFIX, no access log (archy logs no request
# either), the worker as the invoking user when that is root (the files it serves are root's).
nginx_conf() {
  local prefix=$1 server=$2 user=""
  [ "$(id -u)" -eq 0 ] && user="user root;"
  mkdir -p "$prefix/tmp"
  cat >"$prefix/nginx.conf" <<CONF
$user
worker_processes auto;
daemon off;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $prefix/tmp/body;
  proxy_temp_path $prefix/tmp/proxy;
  fastcgi_temp_path $prefix/tmp/fastcgi;
  uwsgi_temp_path $prefix/tmp/uwsgi;
  scgi_temp_path $prefix/tmp/scgi;
  types { application/json json; application/octet-stream bin; }
  default_type application/octet-stream;
  $server
}
CONF
}

# bench_workdir NAME — sets WORK to a new folder /tmp/archy-bench-NAME.XXXXXX and PIDS to an
# empty list; on exit every pid in PIDS is killed and WORK removed.
bench_workdir() {
  WORK=$(mktemp -d "/tmp/archy-bench-$1.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
}
bench_cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
