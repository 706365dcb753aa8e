#!/usr/bin/env bash
# Origin benchmark: requests/s for `GET /metadata/timestamp.json` under wrk on loopback,
# archy-registry against nginx serving the same file. Target: archy / nginx >= 0.5.
#
# Usage: bash scripts/bench-origin.sh      (about a minute after the release build)
# Installs wrk, nginx and curl from Debian when missing; builds archy and archy-registry in
# release; makes a repository with `archy repo init`; serves it with `archy-registry serve` and
# its metadata/ folder with nginx over plain HTTP, both on 127.0.0.1; runs
# `wrk -t2 -c64 -d10s` against each, alternating, three times each after a short warm-up, and
# prints the median requests/s of each and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-common.sh

need_packages wrk:wrk nginx:nginx curl:curl
step "building archy and archy-registry (release)"
cargo build -q --release -p archy-node -p archy-registry -p archy-publisher

bench_workdir origin

step "repository (archy repo init) and the two servers"
"$RELEASE/archy" repo init "$WORK/origin" >/dev/null
ARCHY_LOG=warn "$RELEASE/archy-registry" serve --data "$WORK/origin" --http 127.0.0.1:0 >"$WORK/registry.log" 2>&1 &
PIDS+=($!)
wait_file "$WORK/origin/registry/endpoint.json" "$WORK/registry.log"
ARCHY_URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$WORK/origin/registry/endpoint.json")

NGINX_PORT=$(free_port)
nginx_conf "$WORK/nginx" "server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/origin/repository;
    location /metadata/ { }
  }"
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
PIDS+=($!)
NGINX_URL="http://127.0.0.1:$NGINX_PORT"

PATH_TS=/metadata/timestamp.json
wait_http "$ARCHY_URL$PATH_TS"
wait_http "$NGINX_URL$PATH_TS"
curl -fs "$ARCHY_URL$PATH_TS" >"$WORK/a.json"
curl -fs "$NGINX_URL$PATH_TS" >"$WORK/n.json"
cmp -s "$WORK/a.json" "$WORK/n.json" || { echo "error: the two servers answer different bytes" >&2; exit 1; }
echo "same file from both: $PATH_TS, $(wc -c <"$WORK/a.json") bytes" >&2

# rps URL DURATION — wrk's requests/s against URL; fails, saying why, when wrk does or prints none.
rps() {
  local out r
  out=$(wrk -t2 -c64 -d"$2" "$1") || { echo "error: wrk against $1 failed" >&2; return 1; }
  r=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  if [ -z "$r" ]; then
    printf 'error: no Requests/sec in the output of wrk against %s:\n%s\n' "$1" "$out" >&2
    return 1
  fi
  echo "$r"
}
step "warm-up (2 s each)"
rps "$ARCHY_URL$PATH_TS" 2s >/dev/null
rps "$NGINX_URL$PATH_TS" 2s >/dev/null
A=(); N=()
for round in 1 2 3; do
  step "round $round: wrk -t2 -c64 -d10s"
  a=$(rps "$ARCHY_URL$PATH_TS" 10s); A+=("$a"); echo "  archy-registry: $a requests/s" >&2
  n=$(rps "$NGINX_URL$PATH_TS" 10s); N+=("$n"); echo "  nginx:          $n requests/s" >&2
done

python3 - "${A[*]}" "${N[*]}" <<'PY'
import statistics, sys
a = statistics.median(float(x) for x in sys.argv[1].split())
n = statistics.median(float(x) for x in sys.argv[2].split())
r = a / n
print("origin: GET /metadata/timestamp.json, wrk -t2 -c64 -d10s on 127.0.0.1, median of 3 runs")
print(f"  archy-registry: {a:>10.0f} requests/s")
print(f"  nginx:          {n:>10.0f} requests/s")
print(f"  ratio archy / nginx: {r:.2f}  (target >= 0.50: {'met' if r >= 0.5 else 'MISSED'})")
print(f"result: origin rps ratio {r:.2} (archy {a:.0f}/s, nginx {n:.0f}/s; target >= 0.5) {'met' if r >= 0.5 else 'MISSED'}")
PY
