//! The swarm against a plain HTTP origin, on separate hosts (`scripts/bench-swarm.sh`; release
//! build; needs root for network namespaces).
//!
//! For each N (4, 8, 16 by default): the origin and N nodes, each in a network namespace of its
//! own on a private switch, the origin's uplink shaped to 100 Mbit/s and each node's to 20 Mbit/s
//! with `tc tbf`. Every node has synced the catalog and found its peers on the swarm topic. Then:
//!
//! 1. **swarm, all at once**: every node fetches a new 200 MB archive at the same moment
//!    (`archy-node fetch`, through its running node). Printed: the origin's egress for it
//!    (`archy_registry_bytes_served_total{kind="target"}`, and the bytes its link sent) over
//!    N × payload, and the time until every node holds the verified file.
//! 2. **HTTP, all at once**: every node downloads the same file from the origin's HTTP with curl,
//!    as from a plain mirror, in the same setup; the time until all have it (then checked
//!    against its BLAKE3). Printed: swarm time / HTTP time.
//! 3. **joining one by one**: another 200 MB archive, the nodes starting their fetch 10 s apart.
//!    Printed: what each node took from the origin.
//!
//! Then, with `ARCHY_BENCH_CATALOG` naming an origin folder (`scripts/bench-swarm.sh` writes one
//! of 10,000 apps with `cargo run -p archy-bench --example write_catalog`): the cold sync of that
//! catalog (`archy-node sync`) by a fresh node from the origin alone, then by a fresh node that
//! knows 4 warm running nodes (time, and bytes from the origin and from peers).
//!
//! `ARCHY_BENCH_SWARM_NODES=4,8` and `ARCHY_BENCH_SWARM_BYTES=50000000` change the run
//! (`ARCHY_BENCH_SWARM_NODES=` runs only the cold sync).
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

// The parts of the test harness (`node/tests/util/`) the benchmark runs on.
#[path = "../tests/util/docker.rs"]
mod docker;
#[path = "../tests/util/netns.rs"]
mod netns;
#[path = "../tests/util/origin.rs"]
mod origin;
#[path = "../tests/util/swarm_hosts.rs"]
mod swarm_hosts;

/// The `archy-node` binary of this build.
fn node_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_archy-node"))
}

/// `archy-registry`, built beside it (`scripts/bench-swarm.sh` builds it).
fn registry_bin() -> std::path::PathBuf {
    node_bin().with_file_name("archy-registry")
}

use std::process::Child;
use std::time::{Duration, Instant};

use netns::Lab;
use swarm_hosts::{ARCHIVE, NetNode, OriginHost, finish, split, wait_for_swarm};

const JOIN: &str = "app-a-join.tar";

/// A comma-separated list of numbers from the environment (an empty one is no number).
fn env_list(name: &str, default: &str) -> Vec<usize> {
    let list = std::env::var(name).unwrap_or_else(|_| default.into());
    list.split(',').filter(|n| !n.trim().is_empty()).map(|n| n.trim().parse().expect("a number")).collect()
}

fn main() {
    let counts = env_list("ARCHY_BENCH_SWARM_NODES", "4,8,16");
    let payload = env_list("ARCHY_BENCH_SWARM_BYTES", "200000000").first().copied().unwrap_or(200_000_000);
    println!(
        "swarm benchmark: {:.0} MB archives; origin uplink 100 Mbit/s, node uplinks 20 Mbit/s (tc tbf), separate hosts",
        payload as f64 / 1e6
    );
    let mut results = Vec::new();
    for n in counts {
        results.push(run(n, payload));
    }
    let cold = std::env::var_os("ARCHY_BENCH_CATALOG").map(|dir| cold_sync(std::path::Path::new(&dir)));
    println!();
    if let Some(c) = &cold {
        println!(
            "result: cold sync of {} apps: origin alone {:.2} s ({} B from the origin); with 4 warm peers {:.2} s ({} B from the origin, {} B from peers)",
            c.apps, c.alone_secs, c.alone_origin, c.peers_secs, c.peers_origin, c.peers_peers
        );
    }
    for r in &results {
        println!(
            "result: N={:>2}  origin egress / (N x payload) {:>5.1} % (target at N=16 <= 10 %)  swarm {:>6.1} s  HTTP {:>6.1} s  swarm/HTTP {:.2} (target at N=16 <= 0.5)  joining one by one: origin sent {:.1} % of N x payload, {:.1} % to the last half",
            r.n,
            r.egress_ratio * 100.0,
            r.swarm_secs,
            r.http_secs,
            r.swarm_secs / r.http_secs,
            r.join_ratio * 100.0,
            r.join_late_ratio * 100.0
        );
    }
}

struct Figures {
    n: usize,
    egress_ratio: f64,
    swarm_secs: f64,
    http_secs: f64,
    join_ratio: f64,
    join_late_ratio: f64,
}

fn run(n: usize, payload: usize) -> Figures {
    println!("\nN = {n}");
    let mut lab = Lab::new(&format!("bs{n}"));
    let origin = OriginHost::with_archives(&mut lab, payload, &[JOIN]);
    origin.host.shape_uplink(100);
    let nodes: Vec<NetNode> = (1..=n).map(|i| NetNode::new(&mut lab, &format!("n{i}"), &origin)).collect();
    for node in &nodes {
        node.host.shape_uplink(20);
        let report = node.sync();
        assert_eq!(report["source"], "origin", "{}: {report}", node.host.name);
    }
    wait_for_swarm(&nodes, n - 1);
    let total = (n * payload) as f64;

    // 1. The swarm, every node at once.
    let (served0, tx0) = (origin.served("target"), origin.host.tx_bytes());
    let t = Instant::now();
    let fetches: Vec<Child> = nodes.iter().map(|node| node.fetch(ARCHIVE)).collect();
    for (node, child) in nodes.iter().zip(fetches) {
        finish(&node.host.name, child);
        assert!(node.holds(&origin.archive), "{}: no verified archive", node.host.name);
    }
    let swarm_secs = t.elapsed().as_secs_f64();
    let served = origin.served("target") - served0;
    let link = origin.host.tx_bytes() - tx0;
    println!(
        "  swarm, all at once: {swarm_secs:.1} s; origin served {served} B ({:.1} % of N x payload), its link sent {link} B ({:.1} %)",
        served as f64 * 100.0 / total,
        link as f64 * 100.0 / total
    );

    // 2. Every node from the origin's HTTP, as from a plain mirror.
    let url = origin.target_url(ARCHIVE);
    let t = Instant::now();
    let downloads: Vec<Child> = nodes
        .iter()
        .map(|node| {
            node.host
                .command("curl")
                .args(["-sf", "-o"])
                .arg(node.path().join("http.out"))
                .arg(&url)
                .spawn()
                .expect("curl")
        })
        .collect();
    for (node, mut child) in nodes.iter().zip(downloads) {
        assert!(child.wait().expect("curl").success(), "{}: curl failed", node.host.name);
    }
    let http_secs = t.elapsed().as_secs_f64();
    for node in &nodes {
        let bytes = std::fs::read(node.path().join("http.out")).expect("http.out");
        assert_eq!(blake3::hash(&bytes), origin.archive, "{}: HTTP download differs", node.host.name);
        std::fs::remove_file(node.path().join("http.out")).expect("rm");
    }
    println!("  HTTP from the origin, all at once: {http_secs:.1} s; swarm / HTTP = {:.2}", swarm_secs / http_secs);

    // 3. Nodes joining one by one, 10 s apart.
    let target = format!("images/app-a/{JOIN}");
    let start = Instant::now();
    let mut joined = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let at = Duration::from_secs(10 * i as u64);
        if let Some(wait) = at.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        joined.push(node.fetch(&target));
    }
    let mut from_origin = Vec::new();
    for (node, child) in nodes.iter().zip(joined) {
        let (_, stderr) = finish(&node.host.name, child);
        from_origin.push(split(&stderr).0);
    }
    let sum: u64 = from_origin.iter().sum();
    let late: u64 = from_origin[n / 2..].iter().sum();
    println!(
        "  joining 10 s apart: the origin sent {:?} B to the nodes in turn ({:.1} % of N x payload; the last half {:.1} % of theirs)",
        from_origin,
        sum as f64 * 100.0 / total,
        late as f64 * 100.0 / (payload * (n - n / 2)) as f64
    );
    Figures {
        n,
        egress_ratio: served as f64 / total,
        swarm_secs,
        http_secs,
        join_ratio: sum as f64 / total,
        join_late_ratio: late as f64 / (payload * (n - n / 2)) as f64,
    }
}

struct Cold {
    apps: u64,
    alone_secs: f64,
    alone_origin: u64,
    peers_secs: f64,
    peers_origin: u64,
    peers_peers: u64,
}

/// A timed one-shot round of `node` (`archy-node sync`): seconds, apps, bytes from the origin
/// and from peers.
fn timed_sync(node: &NetNode) -> (f64, u64, u64, u64) {
    let t = Instant::now();
    let report = node.sync_once();
    let secs = t.elapsed().as_secs_f64();
    assert!(report["source"].is_string(), "{}: {report}", node.host.name);
    let received = &report["received"];
    (
        secs,
        report["apps"].as_u64().unwrap_or(0),
        received["from_origin"].as_u64().unwrap_or(0),
        received["from_peers"].as_u64().unwrap_or(0),
    )
}

fn cold_sync(folder: &std::path::Path) -> Cold {
    println!("\ncold sync of the catalog in {}", folder.display());
    let mut lab = Lab::new("bcold");
    let origin = lab.host("o");
    let (registry, iroh) = swarm_hosts::serve(&origin, folder);
    let _registry = swarm_hosts::KillOnDrop(registry);
    let (url, iroh) = (format!("http://{}:8480", origin.ip), iroh.to_string());
    let root = folder.join("repository/metadata/1.root.json");
    // A fresh node, the origin alone.
    let alone = NetNode::configured(&mut lab, "a", &root, &url, &iroh, &[]);
    let (alone_secs, apps, alone_origin, _) = timed_sync(&alone);
    println!("  fresh node, origin alone: {alone_secs:.2} s, {apps} apps, {alone_origin} B from the origin");
    // Four warm nodes running (each synced at start), and a fresh node that knows them.
    let mut warm = Vec::new();
    for i in 1..=4 {
        let mut node = NetNode::configured(&mut lab, &format!("w{i}"), &root, &url, &iroh, &[]);
        node.start();
        let until = Instant::now() + Duration::from_secs(120);
        while node.status()["last_sync"]["source"].as_str().is_none() {
            assert!(Instant::now() < until, "w{i} did not sync");
            std::thread::sleep(Duration::from_millis(200));
        }
        warm.push(node);
    }
    let peers: Vec<String> = warm.iter().map(NetNode::iroh).collect();
    let fresh = NetNode::configured(&mut lab, "f", &root, &url, &iroh, &peers);
    let (peers_secs, _, peers_origin, peers_peers) = timed_sync(&fresh);
    println!(
        "  fresh node, 4 warm peers: {peers_secs:.2} s, {peers_origin} B from the origin, {peers_peers} B from peers"
    );
    Cold { apps, alone_secs, alone_origin, peers_secs, peers_origin, peers_peers }
}
