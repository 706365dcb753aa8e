//! The swarm across separate hosts: the origin (`archy-registry serve`) and every node
//! (`archy-node run`) in a network namespace of its own on a private switch
//! ([`crate::util::netns`]), with uplinks shaped by `tc tbf`, links cut and blocked, and
//! processes killed ([`crate::util::swarm_hosts`]). Nodes find each other on their catalog's
//! gossip topic (no `[[peers]]` is configured), fetch a large archive from each other in verified
//! ranges, and take from the origin only what no peer has.
//!
//! The tests of this file run one at a time ([`ONE_AT_A_TIME`]): each starts a dozen processes on
//! a machine of two cores.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::util::netns::Lab;
use crate::util::swarm_hosts::{
    ARCHIVE, KillOnDrop, NetNode, OriginHost, adversary_bin, finish, payload, split, start_adversary, wait_for_swarm,
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

/// The adversary `mode` in a host of its own, announcing catalog `version`, joining the swarm
/// through `bootstrap` (the origin when `None`): its endpoint id and its process.
fn adversary(
    lab: &mut Lab,
    name: &str,
    origin: &OriginHost,
    (mode, version): (&str, u64),
    file: &std::path::Path,
    bootstrap: Option<String>,
) -> (String, KillOnDrop) {
    let host = lab.host(name);
    let origin_iroh = origin.iroh.as_ref().expect("iroh").to_string();
    let mut command = host.command(adversary_bin());
    command
        .args(["--mode", mode, "--root"])
        .arg(origin.origin.root_v1())
        .args(["--bind", &format!("{}:4919", host.ip)])
        .args(["--bootstrap", bootstrap.as_deref().unwrap_or(&origin_iroh)])
        .args(["--upstream", &origin_iroh])
        .arg("--file")
        .arg(file)
        .args(["--version", &version.to_string()]);
    start_adversary(command)
}

/// Waits until `node`'s running node has heard `peer` announce catalog `version`.
fn until_heard(node: &NetNode, peer: &str, version: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !node.status()["swarm"]["peers"]
        .as_array()
        .is_some_and(|peers| peers.iter().any(|p| p["id"] == peer && p["catalog_version"] == version))
    {
        assert!(
            Instant::now() < deadline,
            "{}: {peer} did not announce version {version}; the node's swarm: {}",
            node.host.name,
            node.status()["swarm"]
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_snapshot_comes_from_peers_while_the_origin_decides_and_a_tampering_peer_costs_one_request() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (mut lab, mut origin, nodes) = world("swm", 1 << 20, 0, 3, 0);
    wait_for_swarm(&nodes, 2);
    origin.publish_and_restart("app-b", "1.0.0");
    let newest = origin.timestamp_version();
    // A peer that announces the new version and answers every metadata request with the
    // origin's file of that name, one byte changed.
    let file = origin.origin.dir.path().join("adversary-file");
    std::fs::write(&file, b"unused").expect("write");
    // It joins through n1: the restarted origin is not in the swarm's mesh until a node dials it.
    let (tamperer, _tamperer) = adversary(&mut lab, "t1", &origin, ("tamper", newest), &file, Some(nodes[0].iroh()));
    until_heard(&nodes[0], &tamperer, newest);

    // n1: the tamperer is the only peer at the new version, so it is asked first; its snapshot
    // misses the hash the timestamp signs, it is dropped and banned, and the origin serves it.
    let first = nodes[0].sync();
    assert_eq!(first["source"], "origin", "{first}");
    assert_eq!(first["timestamp_version"], newest, "{first}");
    let failures = first["provider_failures"].as_array().expect("failures");
    assert!(
        failures.iter().any(|f| f["provider"].as_str().is_some_and(|p| p.starts_with(&tamperer))
            && f["kind"] == "bad_data"
            && f["file"].as_str().is_some_and(|f| f.ends_with(".snapshot.json"))),
        "the tampering peer was not dropped for its snapshot: {first}"
    );
    assert!(
        nodes[0].banned().iter().any(|(id, reason)| id == &tamperer && reason.contains("do not verify")),
        "{:?}",
        nodes[0].banned()
    );

    // n2, once n1 announces the new version: the snapshot comes from n1 (whatever the tamperer
    // sends is refused on its hash before the update reads it); the origin sends the timestamp
    // and the roles, which the snapshot names by version only. The tamperer takes its files from
    // the origin, so this is the node's count, not the origin's.
    let n1 = nodes[0].iroh().split('@').next().expect("<id>@<addr>").to_owned();
    until_heard(&nodes[1], &n1, newest);
    let second = nodes[1].sync();
    assert_eq!(second["source"], "origin", "{second}");
    assert_eq!(second["timestamp_version"], newest, "{second}");
    // What the origin sent is the timestamp and the roles the new snapshot changed; n1 sent the
    // snapshot (and the new manifest, after the metadata).
    let snapshot_version = second["snapshot_version"].as_u64().expect("snapshot version");
    let meta = |v: u64| -> serde_json::Value {
        let bytes = origin.origin.metadata(&format!("{v}.snapshot.json"));
        serde_json::from_slice::<serde_json::Value>(&bytes).expect("json")["signed"]["meta"].clone()
    };
    let (new_meta, old_meta) = (meta(snapshot_version), meta(snapshot_version - 1));
    let roles: u64 = new_meta
        .as_object()
        .expect("meta")
        .iter()
        .filter(|(file, m)| old_meta[file.as_str()] != **m)
        .map(|(file, m)| {
            let name = format!("{}.{file}", m["version"]);
            origin.origin.metadata(&name).len() as u64
        })
        .sum();
    let timestamp = origin.origin.metadata("timestamp.json").len() as u64;
    assert!(roles > 0);
    assert_eq!(
        second["received"]["from_origin"],
        timestamp + roles,
        "the origin sent more than the timestamp ({timestamp} B) and the changed roles ({roles} B): {second}"
    );
    let snapshot = origin.origin.metadata(&format!("{snapshot_version}.snapshot.json")).len() as u64;
    assert!(
        second["received"]["by_provider"][&n1].as_u64().is_some_and(|b| b >= snapshot),
        "n1 did not serve the snapshot ({snapshot} B): {second}"
    );
    // Only the tamperer was dropped: for the snapshot if it was asked first (bad data), and for
    // a manifest if it was asked for one (it serves no files).
    for failure in second["provider_failures"].as_array().expect("failures") {
        assert!(failure["provider"].as_str().is_some_and(|p| p.starts_with(&tamperer)), "{second}");
        let snapshot_file = failure["file"].as_str().is_some_and(|f| f.ends_with(".snapshot.json"));
        assert_eq!(failure["kind"], if snapshot_file { "bad_data" } else { "unreachable" }, "{second}");
    }
    let apps = nodes[1].api("GET", "/v1/apps");
    assert!(apps.to_string().contains("app-b"), "the new release is not in n2's catalog: {apps}");
    for n in &nodes[..2] {
        n.assert_only_verified_files();
    }
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
        let (id, child) = adversary(&mut lab, name, &origin, (mode, version), &file, None);
        adversaries.push((mode, id, child));
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
