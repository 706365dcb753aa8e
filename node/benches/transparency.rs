//! A split view caught by the witnesses, on separate hosts (`scripts/bench-transparency.sh`;
//! release build; needs root for network namespaces).
//!
//! For each N (8 and 16 by default): two registries with the origin's keys (a malicious origin),
//! each the origin of half of N nodes, every node in a network namespace of its own on a private
//! switch, all running and on one catalog state. Then both registries fork the history (the same
//! catalog version, two states) and every node runs a round, as its interval would have it.
//! Printed: the time from the fork being served until every node holds the proof of the split
//! view (both signed checkpoints).
//!
//! `ARCHY_BENCH_SPLIT_NODES=8` changes the run.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

#[path = "../tests/util/docker.rs"]
mod docker;
#[path = "../tests/util/netns.rs"]
mod netns;
#[path = "../tests/util/origin.rs"]
mod origin;
#[path = "../tests/util/split_view.rs"]
mod split_view;
#[path = "../tests/util/swarm_hosts.rs"]
mod swarm_hosts;

/// The `archy-node` binary of this build.
fn node_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_archy-node"))
}

/// `archy-registry`, built beside it (`scripts/bench-transparency.sh` builds it).
fn registry_bin() -> std::path::PathBuf {
    node_bin().with_file_name("archy-registry")
}

fn main() {
    let counts: Vec<usize> = std::env::var("ARCHY_BENCH_SPLIT_NODES")
        .unwrap_or_else(|_| "8,16".into())
        .split(',')
        .filter(|n| !n.trim().is_empty())
        .map(|n| n.trim().parse().expect("a number"))
        .collect();
    let mut results = Vec::new();
    for n in counts {
        let mut world = split_view::split_world(&format!("bt{n}"), n);
        // The swarm forms before the fork (each node has heard from every other).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while world.nodes.iter().any(|node| node.peers_known() < n - 1) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        world.fork_now();
        let took = world.until_every_node_holds_the_proof(std::time::Duration::from_secs(300));
        println!("N = {n}: every node held the proof {:.2} s after the fork was served", took.as_secs_f64());
        results.push((n, took));
    }
    for (n, took) in results {
        println!(
            "result: N={n:>2}  from a split view served to every node holding the proof: {:.2} s",
            took.as_secs_f64()
        );
    }
}
