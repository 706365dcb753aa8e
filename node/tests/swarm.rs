//! The swarm across separate hosts: the origin (`archy-registry serve`) and every node
//! (`archy-node run`) in a network namespace of its own on a private switch
//! ([`crate::util::netns`]), with uplinks shaped by `tc tbf`, links cut with iptables, and
//! processes killed. Nodes find each other on their catalog's gossip topic (no `[[peers]]` is
//! configured), fetch a large archive from each other in verified ranges, and take from the origin
//! only what no peer has.
//!
//! The tests of this file run one at a time ([`ONE_AT_A_TIME`]): each starts a dozen processes on
//! a machine of two cores.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use archy_net::PeerAddr;
use chrono::Utc;

use crate::util::netns::{Host, Lab};
use crate::util::origin::Origin;
use crate::util::{node_bin, registry_bin};

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const ARCHIVE: &str = "images/app-a/app-a-big.tar";

/// Deterministic bytes that do not compress (an image archive's worth of noise).
fn payload(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = *blake3::hash(b"archy swarm test payload").as_bytes();
    while out.len() < len {
        out.extend_from_slice(&block);
        block = *blake3::hash(&block).as_bytes();
    }
    out.truncate(len);
    out
}

/// The adversary binary (`node/examples/swarm_adversary.rs`), built by `cargo test`.
fn adversary_bin() -> PathBuf {
    let path = node_bin().parent().expect("bin dir").join("examples").join("swarm_adversary");
    assert!(path.exists(), "{} is missing: `cargo test` builds the node's examples", path.display());
    path
}

/// The origin in its host, serving a catalog with a large archive.
struct OriginHost {
    host: Host,
    origin: Origin,
    process: Option<Child>,
    iroh: Option<PeerAddr>,
    archive: blake3::Hash,
    payload: usize,
}

impl OriginHost {
    fn new(lab: &mut Lab, payload_len: usize) -> Self {
        let host = lab.host("o");
        let mut origin = Origin::new();
        let bytes = payload(payload_len);
        let archive = blake3::hash(&bytes);
        origin
            .repo
            .add_publisher_targets("acme", vec![(ARCHIVE.into(), bytes, "image".into())], &origin.publisher, Utc::now())
            .expect("add the archive");
        origin.repo.snapshot_and_timestamp(&origin.snapshot_key, &origin.timestamp_key, Utc::now()).expect("publish");
        origin.write();
        let mut me = Self { host, origin, process: None, iroh: None, archive, payload: payload_len };
        me.start();
        me
    }

    fn url(&self) -> String {
        format!("http://{}:8480", self.host.ip)
    }

    fn start(&mut self) {
        let folder = self.origin.registry_folder();
        let info = folder.join("registry/endpoint.json");
        let _ = std::fs::remove_file(&info);
        let log = std::fs::File::create(folder.join("registry.log")).expect("log");
        let child = self
            .host
            .command(registry_bin())
            .args(["serve", "--data"])
            .arg(&folder)
            .args(["--http", &format!("{}:8480", self.host.ip), "--iroh", &format!("{}:4919", self.host.ip)])
            .env("ARCHY_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn archy-registry");
        self.process = Some(child);
        let v = wait_for_json(&info, Duration::from_secs(30)).expect("archy-registry did not start");
        self.iroh = Some(v["iroh"].as_str().expect("iroh").parse().expect("iroh addr"));
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Publishes another app version and restarts the origin on it.
    fn publish_and_restart(&mut self, id: &str, version: &str) {
        self.stop();
        self.origin.publish(id, version);
        self.start();
    }

    fn timestamp_version(&self) -> u64 {
        let ts: serde_json::Value = serde_json::from_slice(&self.origin.metadata("timestamp.json")).expect("json");
        ts["signed"]["version"].as_u64().expect("version")
    }

    /// `archy_registry_bytes_served_total` for `kind`, over both protocols.
    fn served(&self, kind: &str) -> u64 {
        let out = self.host.command("curl").args(["-sf", &format!("{}/metrics", self.url())]).output().expect("curl");
        assert!(out.status.success(), "metrics: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("archy_registry_bytes_served_total") && l.contains(&format!("kind=\"{kind}\"")))
            .map(|l| l.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()).expect("a counter"))
            .sum()
    }
}

impl Drop for OriginHost {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for_json(path: &Path, within: Duration) -> Option<serde_json::Value> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Ok(bytes) = std::fs::read(path)
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
        {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// A node in its host.
struct NetNode {
    host: Host,
    data: tempfile::TempDir,
    daemon: Option<Child>,
}

impl NetNode {
    fn new(lab: &mut Lab, name: &str, origin: &OriginHost) -> Self {
        let host = lab.host(name);
        let data = tempfile::tempdir().expect("tempdir");
        let iroh = origin.iroh.as_ref().expect("origin started").to_string();
        let out = Command::new(node_bin())
            .args(["init", "--data"])
            .arg(data.path())
            .arg("--root")
            .arg(origin.origin.root_v1())
            .args(["--origin", &origin.url(), "--origin-iroh", &iroh])
            .output()
            .expect("archy-node init");
        assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
        let path = data.path().join("config.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path).expect("config").parse().expect("toml");
        config.insert(
            "sync".into(),
            toml::toml! { interval_secs = 3600
            timeout_secs = 5 }
            .into(),
        );
        let serve = format!("{}:4919", host.ip);
        config.insert(
            "serve".into(),
            toml::toml! { iroh = serve
            api = "127.0.0.1:0" }
            .into(),
        );
        config.insert("swarm".into(), toml::toml! { announce_secs = 1 }.into());
        std::fs::write(&path, toml::to_string(&config).expect("toml")).expect("write config");
        let mut node = Self { host, data, daemon: None };
        node.start();
        node
    }

    fn path(&self) -> &Path {
        self.data.path()
    }

    fn start(&mut self) {
        let info = self.path().join("node.json");
        let _ = std::fs::remove_file(&info);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.path().join("run.log")).expect("log");
        let child = self
            .host
            .command(node_bin())
            .args(["run", "--data"])
            .arg(self.path())
            .env("ARCHY_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn archy-node run");
        self.daemon = Some(child);
        wait_for_json(&info, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{}: archy-node run did not start", self.host.name));
    }

    /// SIGKILL: no chance to clean up.
    fn kill(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `archy-node api METHOD PATH` in the node's host: the body, or a panic with the error.
    fn api(&self, method: &str, path: &str) -> serde_json::Value {
        let out = self
            .host
            .command(node_bin())
            .args(["api", "--data"])
            .arg(self.path())
            .args([method, path])
            .output()
            .expect("api");
        assert!(out.status.success(), "{}: {method} {path}: {}", self.host.name, String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    }

    /// One round of the running node (`POST /v1/sync`): its report.
    fn sync(&self) -> serde_json::Value {
        self.api("POST", "/v1/sync")
    }

    /// `archy-node fetch` of the archive in the node's host (asks the running node).
    fn fetch(&self) -> Child {
        self.host
            .command(node_bin())
            .args(["fetch", "--data"])
            .arg(self.path())
            .arg(ARCHIVE)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("archy-node fetch")
    }

    fn status(&self) -> serde_json::Value {
        let out =
            Command::new(node_bin()).args(["status", "--json", "--data"]).arg(self.path()).output().expect("status");
        serde_json::from_slice(&out.stdout).expect("status json")
    }

    fn peers_known(&self) -> usize {
        self.status()["swarm"]["peers"].as_array().map_or(0, Vec::len)
    }

    /// Whether the archive is stored, whole and verified.
    fn holds(&self, hash: &blake3::Hash) -> bool {
        std::fs::read(self.path().join("files").join(hash.to_hex().as_str())).is_ok_and(|b| &blake3::hash(&b) == hash)
    }

    /// Every stored file hashes to its name, and nothing half-fetched is left in `files/`.
    fn assert_only_verified_files(&self) {
        for entry in std::fs::read_dir(self.path().join("files")).expect("files").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "{}: a partial file is left in files/: {name}", self.host.name);
            let bytes = std::fs::read(entry.path()).expect("read");
            assert_eq!(blake3::hash(&bytes).to_hex().as_str(), name, "{}: unverified bytes in files/", self.host.name);
        }
    }

    fn banned(&self) -> Vec<(String, String)> {
        self.status()["swarm"]["banned"]
            .as_array()
            .map(|bans| {
                bans.iter()
                    .map(|b| {
                        (
                            b["id"].as_str().unwrap_or_default().to_owned(),
                            b["reason"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for NetNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until every node knows at least `n` peers (gossip forms in the background).
fn wait_for_swarm(nodes: &[NetNode], n: usize) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let known: Vec<usize> = nodes.iter().map(NetNode::peers_known).collect();
        if known.iter().all(|k| *k >= n) {
            return;
        }
        assert!(Instant::now() < until, "the swarm did not form: peers known per node {known:?}, want {n}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits for a fetch; its stdout (the path) and stderr (the byte split).
fn finish(name: &str, child: Child) -> (String, String) {
    let out = child.wait_with_output().expect("fetch");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{name}: archy-node fetch failed: {stderr}");
    (stdout, stderr)
}

/// `N bytes from the origin, M from peers` as `archy-node fetch` prints it.
fn split(stderr: &str) -> (u64, u64) {
    let number_before = |label: &str| -> u64 {
        let at = stderr.find(label).unwrap_or_else(|| panic!("no `{label}` in {stderr}"));
        stderr[..at].split_whitespace().last().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{stderr}"))
    };
    (number_before(" bytes from the origin"), number_before(" from peers"))
}

#[test]
fn eight_nodes_fetch_a_large_release_mostly_from_each_other() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut lab = Lab::new("sw8");
    let origin = OriginHost::new(&mut lab, 24 << 20);
    origin.host.shape_uplink(40);
    let nodes: Vec<NetNode> = (1..=8).map(|i| NetNode::new(&mut lab, &format!("n{i}"), &origin)).collect();
    for n in &nodes {
        n.host.shape_uplink(40);
        let report = n.sync();
        assert_eq!(report["source"], "origin", "{}: {report}", n.host.name);
    }
    // No `[[peers]]` anywhere: they find each other through the origin's gossip topic.
    wait_for_swarm(&nodes, 7);
    let (before, tx_before) = (origin.served("target"), origin.host.tx_bytes());
    let fetches: Vec<Child> = nodes.iter().map(NetNode::fetch).collect();
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
    let mut lab = Lab::new("swp");
    let mut origin = OriginHost::new(&mut lab, 16 << 20);
    origin.host.shape_uplink(20);
    let nodes: Vec<NetNode> = (1..=6).map(|i| NetNode::new(&mut lab, &format!("n{i}"), &origin)).collect();
    for n in &nodes {
        n.host.shape_uplink(40);
        assert_eq!(n.sync()["source"], "origin");
    }
    wait_for_swarm(&nodes, 5);
    let (cut, reach) = nodes.split_at(3);
    // Mid-transfer, the origin is cut off from half the nodes, then healed.
    let fetches: Vec<Child> = nodes.iter().map(NetNode::fetch).collect();
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
    let mut lab = Lab::new("swk");
    let origin = OriginHost::new(&mut lab, 24 << 20);
    origin.host.shape_uplink(20);
    let mut nodes: Vec<NetNode> = (1..=4).map(|i| NetNode::new(&mut lab, &format!("n{i}"), &origin)).collect();
    for n in &nodes {
        n.host.shape_uplink(20);
        assert_eq!(n.sync()["source"], "origin");
    }
    wait_for_swarm(&nodes, 3);
    let mut fetches: Vec<Option<Child>> = nodes.iter().map(|n| Some(n.fetch())).collect();
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
    let (_, stderr) = finish("n1", nodes[0].fetch());
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
    let mut lab = Lab::new("swh");
    let origin = OriginHost::new(&mut lab, 16 << 20);
    origin.host.shape_uplink(40);
    let nodes: Vec<NetNode> = (1..=3).map(|i| NetNode::new(&mut lab, &format!("n{i}"), &origin)).collect();
    for n in &nodes {
        assert_eq!(n.sync()["source"], "origin");
    }
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
    let fetches: Vec<Child> = nodes.iter().map(NetNode::fetch).collect();
    for (node, child) in nodes.iter().zip(fetches) {
        finish(&node.host.name, child);
        assert!(node.holds(&origin.archive), "{}: no verified archive", node.host.name);
        node.assert_only_verified_files();
    }
    // A round with the origin exposes the catalog version nobody has.
    for n in &nodes {
        assert_eq!(n.sync()["source"], "origin");
    }
    std::thread::sleep(Duration::from_secs(3));
    let reasons = [
        ("corrupt", "do not verify"),
        ("phantom", "does not have"),
        ("flood", "flooding"),
        ("liar", "catalog the origin does not have"),
    ];
    for n in &nodes {
        let banned = n.banned();
        for (mode, id, _) in &adversaries {
            let want = reasons.iter().find(|(m, _)| m == mode).expect("a reason").1;
            if *mode == "corrupt" || *mode == "phantom" {
                // Only a node that asked it for ranges finds it out.
                let asked = banned.iter().any(|(b, _)| b == id);
                if !asked {
                    continue;
                }
            }
            assert!(
                banned.iter().any(|(b, reason)| b == id && reason.contains(want)),
                "{}: the {mode} peer {id} is not banned for `{want}`: {banned:?}",
                n.host.name
            );
        }
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

/// A child process killed when the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
