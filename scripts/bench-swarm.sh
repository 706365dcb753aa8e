#!/usr/bin/env bash
# The swarm benchmark: N = 4, 8, 16 nodes and the origin on separate hosts (network namespaces
# on a private switch; root needed), the origin's uplink at 100 Mbit/s and each node's at
# 20 Mbit/s (tc tbf). For each N it prints the origin's egress over N x payload, the time until
# every node holds a new 200 MB archive over the swarm against every node downloading it from
# the origin's HTTP, and what nodes joining 10 s apart take from the origin (node/benches/swarm.rs).
# Then the cold sync of a 10,000-app catalog from the origin alone
# (cargo bench -p archy-bench --bench incremental_sync, its "full sync" lines), and archy's TUF
# client against python-tuf downloading 10,000 targets (scripts/bench-tuf-client.sh).
#   bash scripts/bench-swarm.sh
#   ARCHY_BENCH_SWARM_NODES=4 ARCHY_BENCH_SWARM_BYTES=50000000 bash scripts/bench-swarm.sh   (a quick run)
# About 25 minutes after the release build. Not part of CI. Nothing leaves the machine: the
# hosts' addresses (10.213.0.0/16) exist only inside their namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-common.sh
need_packages curl:curl tc:iproute2 iptables:iptables

step "building the release binaries"
cargo build -q --release -p archy-node -p archy-registry -p archy-publisher --bins

step "a 10,000-app catalog (50 publishers x 200 apps) for the cold sync"
CATALOG=$(mktemp -d /tmp/archy-bench-catalog.XXXXXX)
trap 'rm -rf "$CATALOG"' EXIT
cargo run -q --release -p archy-bench --example write_catalog -- "$CATALOG" 50 200

step "the swarm against the origin's HTTP; the cold sync with and without warm peers"
ARCHY_BENCH_CATALOG="$CATALOG" cargo bench -q -p archy-node --bench swarm

step "cold sync of 10,000 apps from the origin alone"
cargo bench -q -p archy-bench --bench incremental_sync | grep -E "roles x|full sync|result:"

step "archy's TUF client against python-tuf, 10,000 targets"
bash scripts/bench-tuf-client.sh
