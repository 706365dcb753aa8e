//! Hosts of the swarm tests and benchmark: the origin (`archy-registry serve`) and nodes
//! (`archy-node run`), each in a network namespace of its own ([`super::netns`]), driven through
//! their binaries; the adversary of `node/examples/swarm_adversary.rs`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use archy_net::PeerAddr;
use chrono::Utc;

use super::netns::{Host, Lab};
use super::origin::{Origin, wait_for_json};
use super::{node_bin, registry_bin};

/// The large archive of app-a.
pub const ARCHIVE: &str = "images/app-a/app-a-big.tar";

/// Deterministic bytes that do not compress (an image archive's worth of noise).
pub fn payload(len: usize) -> Vec<u8> {
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
pub fn adversary_bin() -> PathBuf {
    let path = node_bin().parent().expect("bin dir").join("examples").join("swarm_adversary");
    assert!(path.exists(), "{} is missing: `cargo test` builds the node's examples", path.display());
    path
}

/// Starts the adversary `command` (`adversary_bin()` with its arguments) and waits until it
/// serves: its endpoint id and its process.
pub fn start_adversary(mut command: Command) -> (String, KillOnDrop) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn the adversary");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().expect("stdout")), &mut line)
        .expect("ready line");
    let id =
        line.trim().strip_prefix("ready ").and_then(|a| a.split('@').next()).expect("ready <id>@<addr>").to_owned();
    (id, KillOnDrop(child))
}

/// The origin in its host, serving a catalog with a large archive.
pub struct OriginHost {
    pub host: Host,
    pub origin: Origin,
    process: Option<Child>,
    pub iroh: Option<PeerAddr>,
    /// The archive's BLAKE3.
    pub archive: blake3::Hash,
    /// The archive's length.
    pub payload: usize,
}

impl OriginHost {
    pub fn new(lab: &mut Lab, payload_len: usize) -> Self {
        Self::with_archives(lab, payload_len, &[])
    }

    /// The origin with [`ARCHIVE`] of `payload_len` bytes and more archives of app-a (`images/app-a/<name>`,
    /// different bytes of the same length).
    pub fn with_archives(lab: &mut Lab, payload_len: usize, more: &[&str]) -> Self {
        let host = lab.host("o");
        let mut origin = Origin::new();
        let bytes = payload(payload_len);
        let archive = blake3::hash(&bytes);
        let mut files = vec![(ARCHIVE.to_owned(), bytes, "image".to_owned())];
        for (i, name) in more.iter().enumerate() {
            let mut other = payload(payload_len);
            other[0] = i as u8 + 1;
            files.push((format!("images/app-a/{name}"), other, "image".to_owned()));
        }
        origin.repo.add_publisher_targets("acme", files, &origin.publisher, Utc::now()).expect("add the archives");
        origin.repo.snapshot_and_timestamp(&origin.snapshot_key, &origin.timestamp_key, Utc::now()).expect("publish");
        origin.write();
        let mut me = Self { host, origin, process: None, iroh: None, archive, payload: payload_len };
        me.start();
        me
    }

    pub fn url(&self) -> String {
        format!("http://{}:8480", self.host.ip)
    }

    #[allow(dead_code, reason = "used by the swarm benchmark (node/benches/swarm.rs)")]
    /// The origin's HTTP URL of `target` (the consistent-snapshot name), as a plain HTTP mirror
    /// would serve it.
    pub fn target_url(&self, target: &str) -> String {
        let role = self.origin.repo.delegated("acme").expect("acme");
        let sha = role.targets[target].hashes["sha256"].as_str().expect("sha256").to_owned();
        let (dir, name) = target.rsplit_once('/').expect("a path");
        format!("{}/targets/{dir}/{sha}.{name}", self.url())
    }

    pub fn start(&mut self) {
        let (child, iroh) = serve(&self.host, &self.origin.registry_folder());
        self.process = Some(child);
        self.iroh = Some(iroh);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Publishes another app version and restarts the origin on it.
    pub fn publish_and_restart(&mut self, id: &str, version: &str) {
        self.stop();
        self.origin.publish(id, version);
        self.start();
    }

    pub fn timestamp_version(&self) -> u64 {
        let ts: serde_json::Value = serde_json::from_slice(&self.origin.metadata("timestamp.json")).expect("json");
        ts["signed"]["version"].as_u64().expect("version")
    }

    /// `archy_registry_bytes_served_total` for `kind`, over both protocols.
    pub fn served(&self, kind: &str) -> u64 {
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

/// `archy-registry serve` of the origin folder `folder` in `host` (HTTP on port 8480, iroh on
/// 4919 of its address): the process and its iroh address, once it listens.
pub fn serve(host: &Host, folder: &Path) -> (Child, PeerAddr) {
    serve_with(host, folder, &[])
}

/// [`serve`] with more arguments to `archy-registry serve`.
pub fn serve_with(host: &Host, folder: &Path, args: &[&str]) -> (Child, PeerAddr) {
    let info = folder.join("registry/endpoint.json");
    let _ = std::fs::remove_file(&info);
    let log = std::fs::File::create(folder.join("registry.log")).expect("log");
    let child = host
        .command(registry_bin())
        .args(["serve", "--data"])
        .arg(folder)
        .args(["--http", &format!("{}:8480", host.ip), "--iroh", &format!("{}:4919", host.ip)])
        .args(args)
        .env("ARCHY_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn archy-registry");
    let v = wait_for_json(&info, Duration::from_secs(60)).expect("archy-registry did not start");
    (child, v["iroh"].as_str().expect("iroh").parse().expect("iroh addr"))
}

/// A node in its host.
pub struct NetNode {
    pub host: Host,
    pub data: tempfile::TempDir,
    daemon: Option<Child>,
}

impl NetNode {
    pub fn new(lab: &mut Lab, name: &str, origin: &OriginHost) -> Self {
        let iroh = origin.iroh.as_ref().expect("origin started").to_string();
        Self::with_origin(lab, name, &origin.origin.root_v1(), &origin.url(), &iroh)
    }

    /// A running node trusting `root`, with the origin at `url` and `iroh`.
    pub fn with_origin(lab: &mut Lab, name: &str, root: &Path, url: &str, iroh: &str) -> Self {
        let mut node = Self::configured(lab, name, root, url, iroh, &[]);
        node.start();
        node
    }

    /// A node trusting `root`, with the origin at `url` and `iroh` and `peers` configured, not
    /// started.
    pub fn configured(lab: &mut Lab, name: &str, root: &Path, url: &str, iroh: &str, peers: &[String]) -> Self {
        let host = lab.host(name);
        let data = tempfile::tempdir().expect("tempdir");
        let out = Command::new(node_bin())
            .args(["init", "--data"])
            .arg(data.path())
            .arg("--root")
            .arg(root)
            .args(["--origin", url, "--origin-iroh", iroh])
            .args(peers.iter().flat_map(|p| ["--peer", p.as_str()]))
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
        Self { host, data, daemon: None }
    }

    #[allow(dead_code, reason = "the swarm benchmark's (node/benches/swarm.rs)")]
    /// Its iroh address, from `node.json` (while it runs).
    pub fn iroh(&self) -> String {
        let info = wait_for_json(&self.path().join("node.json"), Duration::from_secs(10)).expect("node.json");
        info["iroh"].as_str().expect("iroh").to_owned()
    }

    #[allow(dead_code, reason = "the swarm benchmark's (node/benches/swarm.rs)")]
    /// `archy-node sync --json` in its host (a one-shot round, no running node needed): the report.
    pub fn sync_once(&self) -> serde_json::Value {
        let out =
            self.host.command(node_bin()).args(["sync", "--json", "--data"]).arg(self.path()).output().expect("sync");
        assert!(out.status.success(), "{}: sync: {}", self.host.name, String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    }

    pub fn path(&self) -> &Path {
        self.data.path()
    }

    pub fn start(&mut self) {
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
    pub fn kill(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `archy-node api METHOD PATH` in the node's host: the body, or a panic with the error.
    pub fn api(&self, method: &str, path: &str) -> serde_json::Value {
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
    pub fn sync(&self) -> serde_json::Value {
        self.api("POST", "/v1/sync")
    }

    /// `archy-node fetch` of `target` in the node's host (asks the running node).
    pub fn fetch(&self, target: &str) -> Child {
        self.host
            .command(node_bin())
            .args(["fetch", "--data"])
            .arg(self.path())
            .arg(target)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("archy-node fetch")
    }

    pub fn status(&self) -> serde_json::Value {
        let out =
            Command::new(node_bin()).args(["status", "--json", "--data"]).arg(self.path()).output().expect("status");
        serde_json::from_slice(&out.stdout).expect("status json")
    }

    pub fn peers_known(&self) -> usize {
        self.status()["swarm"]["peers"].as_array().map_or(0, Vec::len)
    }

    /// Whether the archive is stored, whole and verified.
    pub fn holds(&self, hash: &blake3::Hash) -> bool {
        std::fs::read(self.path().join("files").join(hash.to_hex().as_str())).is_ok_and(|b| &blake3::hash(&b) == hash)
    }

    /// Every stored file hashes to its name, and nothing half-fetched is left in `files/`.
    pub fn assert_only_verified_files(&self) {
        for entry in std::fs::read_dir(self.path().join("files")).expect("files").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "{}: a partial file is left in files/: {name}", self.host.name);
            let bytes = std::fs::read(entry.path()).expect("read");
            assert_eq!(blake3::hash(&bytes).to_hex().as_str(), name, "{}: unverified bytes in files/", self.host.name);
        }
    }

    pub fn banned(&self) -> Vec<(String, String)> {
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
pub fn wait_for_swarm(nodes: &[NetNode], n: usize) {
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
pub fn finish(name: &str, child: Child) -> (String, String) {
    let out = child.wait_with_output().expect("fetch");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{name}: archy-node fetch failed: {stderr}");
    (stdout, stderr)
}

/// `N bytes from the origin, M from peers` as `archy-node fetch` prints it.
pub fn split(stderr: &str) -> (u64, u64) {
    let number_before = |label: &str| -> u64 {
        let at = stderr.find(label).unwrap_or_else(|| panic!("no `{label}` in {stderr}"));
        stderr[..at].split_whitespace().last().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{stderr}"))
    };
    (number_before(" bytes from the origin"), number_before(" from peers"))
}

/// A child process killed when the test ends.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
