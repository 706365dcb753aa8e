#!/usr/bin/env bash
# Blob transfer benchmark: a 200 MB image archive fetched by a node over iroh on loopback,
# against the same file from nginx over HTTPS (curl) and a bare iroh-blobs fetch, in one run.
# Targets: archy / nginx >= 0.5, archy's overhead over bare iroh-blobs <= 10 %.
#
# Usage: bash scripts/bench-blob-transfer.sh     (a few minutes after the release build)
# Installs nginx, openssl and curl from Debian when missing; writes 200 MB of random bytes and
# a self-signed certificate for 127.0.0.1 into a temporary folder; starts nginx with TLS on
# 127.0.0.1 serving that file; then runs `cargo bench -p archy-bench --bench blob_transfer`,
# which measures all three (see bench/benches/blob_transfer.rs) and prints the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-common.sh

need_packages nginx:nginx openssl:openssl curl:curl
WORK=$(mktemp -d /tmp/archy-bench-blob.XXXXXX)
NGINX_PID=""
cleanup() {
  if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "200 MB of random bytes and a self-signed certificate for 127.0.0.1"
mkdir -p "$WORK/www"
head -c 200000000 /dev/urandom >"$WORK/www/image.tar"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null

step "nginx with TLS on 127.0.0.1"
PORT=$(free_port)
nginx_conf "$WORK/nginx" "server {
    listen 127.0.0.1:$PORT ssl;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.3;
    root $WORK/www;
  }"
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX_PID=$!
URL="https://127.0.0.1:$PORT/image.tar"
wait_http "$URL" --cacert "$WORK/cert.pem" --range 0-0

step "cargo bench -p archy-bench --bench blob_transfer (release)"
ARCHY_BENCH_BLOB="$WORK/www/image.tar" ARCHY_BENCH_NGINX_URL="$URL" ARCHY_BENCH_CACERT="$WORK/cert.pem" \
  TMPDIR="$WORK" cargo bench -q -p archy-bench --bench blob_transfer
