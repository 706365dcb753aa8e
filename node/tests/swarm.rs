//! The swarm across separate hosts: the origin (`archy-registry serve`) and every node
//! (`archy-node run`) in a network namespace of its own on a private switch
//! ([`crate::util::netns`]), with uplinks shaped by `tc tbf`, links cut and blocked, and
//! processes killed ([`crate::util::swarm_hosts`]). Nodes find each other on their catalog's
//! gossip topic (no `[[peers]]` is configured), fetch a large archive from each other in verified
//! ranges, and take from the origin only what no peer has.
//!
//! The tests of this file run one at a time ([`ONE_AT_A_TIME`]): each starts a dozen processes on
//! a machine of two cores.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::netns::Lab;
use crate::util::swarm_hosts::{
    ARCHIVE, KillOnDrop, NetNode, OriginHost, adversary_bin, finish, payload, split, wait_for_swarm,
};

use crate::util::netns::ONE_LAB_AT_A_TIME as ONE_AT_A_TIME;

/// The origin with a `payload`-byte archive and `n` nodes that synced from it, uplinks shaped
/// to `origin_mbit` and `node_mbit` (none when 0).
fn world(tag: &str, payload: usize, origin_mbit: u32, n: usize, node_mbit: u32) -> (Lab, OriginHost, Vec<NetNode>) {
    let mut lab = Lab::new(tag);
    let origin = OriginHost::new(&mut lab, payload);
    if origin_mbit > 0 {
        origin.host.shape_uplink(origin_mbit);
    }
    let nodes: Vec<NetNode> = (1..=n).map(|i| NetNode::new(&mut lab, &format!("n{i}"), &origin)).collect();
    for node in &nodes {
        if node_mbit > 0 {
            node.host.shape_uplink(node_mbit);
        }
        let report = node.sync();
        assert_eq!(report["source"], "origin", "{}: {report}", node.host.name);
    }
    (lab, origin, nodes)
}

#[test]
fn eight_nodes_fetch_a_large_release_mostly_from_each_other() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_lab, origin, nodes) = world("sw8", 24 << 20, 40, 8, 40);
    // No `[[peers]]` anywhere: they find each other through the origin's gossip topic.
    wait_for_swarm(&nodes, 7);
    let (before, tx_before) = (origin.served("target"), origin.host.tx_bytes());
    let fetches: Vec<Child> = nodes.iter().map(|n| n.fetch(ARCHIVE)).collect();
    let mut from_peers = 0;
    for (node, child) in nodes.iter().zip(fetches) {
        let (path, stderr) = finish(&node.host.name, child);
        assert!(node.holds(&origin.archive), "{}: the archive at {path} is not the signed one", node.host.name);
        from_peers += split(&stderr).1;
        node.assert_only_verified_files();
    }
    let served = origin.served("target") - before;
    let egress = origin.host.tx_bytes() - tx_before;
    let total = 8 * origin.payload as u64;
    eprintln!(
        "origin served {served} of {total} bytes ({:.1} %; {egress} bytes left its link); peers served {from_peers}",
        served as f64 * 100.0 / total as f64
    );
    assert!(egress < total / 3, "{egress} bytes left the origin's link for {total} bytes fetched");
    assert!(served < total / 3, "the origin served {served} bytes of {total}: the swarm did not share");
    assert!(from_peers > total / 2, "peers served {from_peers} bytes of {total}");
}

#[test]
fn a_partitioned_origin_delays_nobody_and_still_decides_what_is_newest() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_lab, mut origin, nodes) = world("swp", 16 << 20, 20, 6, 40);
    wait_for_swarm(&nodes, 5);
    let (cut, reach) = nodes.split_at(3);
    // Mid-transfer, the origin is cut off from half the nodes, then healed.
    let fetches: Vec<Child> = nodes.iter().map(|n| n.fetch(ARCHIVE)).collect();
    std::thread::sleep(Duration::from_secs(2));
    for n in cut {
        n.host.block(&origin.host);
    }
    // And one node loses its link altogether for a while: the others drop it and go on.
    nodes[5].host.cut();
    std::thread::sleep(Duration::from_secs(4));
    for n in cut {
        n.host.allow(&origin.host);
    }
    nodes[5].host.heal();
    for (node, child) in nodes.iter().zip(fetches) {
        finish(&node.host.name, child);
        assert!(node.holds(&origin.archive), "{}: no verified archive", node.host.name);
    }

    // A new release while half the nodes can't reach the origin: those that can take it from the
    // origin only; the others may take it from peers (their origin is unreachable), verified.
    origin.publish_and_restart("app-b", "1.0.0");
    let newest = origin.timestamp_version();
    for n in cut {
        n.host.block(&origin.host);
    }
    for n in reach {
        let report = n.sync();
        assert_eq!(report["origin_reachable"], true, "{}: {report}", n.host.name);
        assert_eq!(
            report["source"], "origin",
            "{}: took peer metadata while the origin answered: {report}",
            n.host.name
        );
        assert_eq!(report["timestamp_version"], newest, "{}: {report}", n.host.name);
    }
    for n in cut {
        // Once its running node has heard a peer announce the new version (the one-shot sync
        // reads the swarm table the running node writes).
        let deadline = Instant::now() + Duration::from_secs(30);
        while !n.status()["swarm"]["peers"]
            .as_array()
            .is_some_and(|peers| peers.iter().any(|p| p["catalog_version"] == newest))
        {
            assert!(Instant::now() < deadline, "{}: no peer announced version {newest}", n.host.name);
            std::thread::sleep(Duration::from_millis(250));
        }
        let report = n.sync();
        assert_eq!(report["origin_reachable"], false, "{}: {report}", n.host.name);
        assert_eq!(
            report["timestamp_version"], newest,
            "{}: did not converge through its peers: {report}",
            n.host.name
        );
        assert!(report["source"].as_str().is_some_and(|s| s.starts_with("peer ")), "{}: {report}", n.host.name);
    }
    // Healed: the origin's answer decides again, for everyone.
    for n in cut {
        n.host.allow(&origin.host);
    }
    for n in &nodes {
        let report = n.sync();
        assert_eq!(report["source"], "origin", "{}: {report}", n.host.name);
        assert_eq!(report["timestamp_version"], newest, "{}: {report}", n.host.name);
        assert!(n.status()["last_sync"]["origin_reachable"].as_bool().unwrap_or(false));
    }
}

#[test]
fn a_node_killed_mid_transfer_resumes_and_its_peers_carry_on() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_lab, origin, mut nodes) = world("swk", 24 << 20, 20, 4, 20);
    wait_for_swarm(&nodes, 3);
    let mut fetches: Vec<Option<Child>> = nodes.iter().map(|n| Some(n.fetch(ARCHIVE))).collect();
    // Some ranges arrive, then node 1 is killed outright.
    std::thread::sleep(Duration::from_secs(4));
    nodes[0].kill();
    if let Some(mut child) = fetches[0].take() {
        let _ = child.wait();
    }
    for (node, child) in nodes.iter().zip(fetches.iter_mut()).skip(1) {
        finish(&node.host.name, child.take().expect("a fetch"));
        assert!(node.holds(&origin.archive), "{}: no verified archive after its peer died", node.host.name);
    }
    // Restarted, it keeps the verified ranges it had and fetches only the rest.
    nodes[0].start();
    let (_, stderr) = finish("n1", nodes[0].fetch(ARCHIVE));
    assert!(nodes[0].holds(&origin.archive), "n1: no verified archive after restart");
    let (from_origin, from_peers) = split(&stderr);
    assert!(
        from_origin + from_peers < origin.payload as u64,
        "n1 fetched {from_origin} + {from_peers} bytes again after restart, the whole file is {}: it did not resume ({stderr})",
        origin.payload
    );
    nodes[0].assert_only_verified_files();
}

#[test]
fn hostile_peers_are_dropped_with_their_reason_and_every_honest_node_completes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (mut lab, origin, nodes) = world("swh", 16 << 20, 40, 3, 0);
    let version = origin.timestamp_version();
    // The archive's bytes for the adversaries (the corrupting one serves them flipped).
    let file = origin.origin.dir.path().join("adversary-archive");
    std::fs::write(&file, payload(origin.payload)).expect("write");
    let mut adversaries = Vec::new();
    for (name, mode) in [("a1", "corrupt"), ("a2", "phantom"), ("a3", "flood"), ("a4", "liar")] {
        let host = lab.host(name);
        let mut child = host
            .command(adversary_bin())
            .args(["--mode", mode, "--root"])
            .arg(origin.origin.root_v1())
            .args(["--bind", &format!("{}:4919", host.ip)])
            .args(["--bootstrap", &origin.iroh.as_ref().expect("iroh").to_string()])
            .arg("--file")
            .arg(&file)
            .args(["--version", &version.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the adversary");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().expect("stdout")), &mut line)
            .expect("ready line");
        let id =
            line.trim().strip_prefix("ready ").and_then(|a| a.split('@').next()).expect("ready <id>@<addr>").to_owned();
        adversaries.push((mode, id, KillOnDrop(child)));
    }
    wait_for_swarm(&nodes, 2 + 3);
    let fetches: Vec<Child> = nodes.iter().map(|n| n.fetch(ARCHIVE)).collect();
    for (node, child) in nodes.iter().zip(fetches) {
        finish(&node.host.name, child);
        assert!(node.holds(&origin.archive), "{}: no verified archive", node.host.name);
        node.assert_only_verified_files();
    }
    // A round with the origin exposes the catalog version nobody has.
    for n in &nodes {
        assert_eq!(n.sync()["source"], "origin");
    }
    let reasons = [
        ("corrupt", "do not verify"),
        ("phantom", "does not have"),
        ("flood", "flooding"),
        ("liar", "catalog the origin does not have"),
    ];
    // What each node has written down; a flood is banned as the gossip delivers it, so this waits
    // for it a while.
    let missing = || {
        let mut missing = Vec::new();
        for n in &nodes {
            let banned = n.banned();
            for (mode, id, _) in &adversaries {
                let want = reasons.iter().find(|(m, _)| m == mode).expect("a reason").1;
                // Only a node that asked the corrupting or the phantom peer for ranges finds it out.
                if (*mode == "corrupt" || *mode == "phantom") && !banned.iter().any(|(b, _)| b == id) {
                    continue;
                }
                if !banned.iter().any(|(b, reason)| b == id && reason.contains(want)) {
                    missing.push(format!(
                        "{}: the {mode} peer {id} is not banned for `{want}`: {banned:?}; dropped: {}",
                        n.host.name,
                        n.status()["swarm"]["dropped"]
                    ));
                }
            }
        }
        missing
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let missing = missing();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{}", missing.join("\n"));
        std::thread::sleep(Duration::from_secs(1));
    }
    // Every node met the corrupting and the phantom peer through some node: each is banned by at
    // least one honest node, for the right reason.
    for mode in ["corrupt", "phantom"] {
        let (_, id, _) = adversaries.iter().find(|(m, _, _)| *m == mode).expect("adversary");
        let want = reasons.iter().find(|(m, _)| *m == mode).expect("reason").1;
        assert!(
            nodes.iter().any(|n| n.banned().iter().any(|(b, r)| b == id && r.contains(want))),
            "no honest node dropped the {mode} peer for `{want}`"
        );
    }
}
