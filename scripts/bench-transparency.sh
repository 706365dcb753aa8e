#!/usr/bin/env bash
# The transparency log's benchmark: the log data a node fetches per sync round against a full
# download of a 10,000-app catalog, and the origin's CPU per checkpoint and per proof for logs of
# 1,000 to 1,000,000 catalog states (bench/benches/tlog.rs); then a malicious origin showing two
# halves of N = 8 and 16 nodes two histories, on separate hosts (network namespaces on a private
# switch; root needed): the time until every node holds the proof (node/benches/transparency.rs).
#   bash scripts/bench-transparency.sh
#   ARCHY_BENCH_SPLIT_NODES=8 bash scripts/bench-transparency.sh   (a quick run)
# Not part of CI. Nothing leaves the machine: the hosts' addresses (10.213.0.0/16) exist only
# inside their namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-common.sh
need_packages curl:curl tc:iproute2 iptables:iptables

step "building the release binaries"
cargo build -q --release -p archy-node -p archy-registry --bins

step "log data per round, the origin's CPU per checkpoint and per proof"
cargo bench -q -p archy-bench --bench tlog

step "a split view shown to two halves of the nodes, on separate hosts"
cargo bench -q -p archy-node --bench transparency
