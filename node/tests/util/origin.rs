//! The catalog side of the harness: an origin repository built with archy's repository code, a
//! real HTTP server on loopback that can be told to misbehave, nodes driven through the
//! `archy-node` binary, the `archy-registry` process, and iroh peers (honest, slow or
//! malicious) in the test process.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use archy_net::{MetaServer, MetaSource, PeerAddr};
use bytes::Bytes;
use catalog::keys::SigningKey;
use catalog::repo::Repository;
use catalog::testing::{TestApp, TestKeys};
use chrono::Utc;

use super::{node_bin, registry_bin};

/// An origin repository on disk with one publisher (`acme`, apps `app-a`, `app-b`).
pub struct Origin {
    pub dir: tempfile::TempDir,
    pub repo: Repository,
    pub root_key: SigningKey,
    pub targets_key: SigningKey,
    pub snapshot_key: SigningKey,
    pub timestamp_key: SigningKey,
    pub publisher: SigningKey,
    /// The transparency log's key, when the root names a log ([`Origin::with_log`]).
    pub log_key: Option<SigningKey>,
}

/// The envelope of the example app `id` at `version`, signed by `publisher`.
pub fn envelope(id: &str, version: &str, publisher: &SigningKey) -> Vec<u8> {
    TestApp::new(id).version(version).envelope(publisher)
}

impl Origin {
    pub fn new() -> Self {
        Self::with_keys(TestKeys::generate())
    }

    /// An origin whose root names a transparency log (`catalog::testing::TEST_LOG`).
    pub fn with_log() -> Self {
        Self::with_keys(TestKeys { log: Some(SigningKey::generate()), ..TestKeys::generate() })
    }

    fn with_keys(keys: TestKeys) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Utc::now();
        let mut repo = keys.create(now);
        repo.add_publisher("acme", &keys.publisher.did(), &["app-a", "app-b"], &keys.targets, now).expect("publisher");
        let TestKeys {
            root: root_key,
            targets: targets_key,
            snapshot: snapshot_key,
            timestamp: timestamp_key,
            publisher,
            log: log_key,
        } = keys;
        let mut origin = Self { dir, repo, root_key, targets_key, snapshot_key, timestamp_key, publisher, log_key };
        origin.publish("app-a", "1.0.0");
        origin
    }

    /// The folder a server serves (`metadata/`, `targets/`).
    pub fn served(&self) -> PathBuf {
        self.dir.path().join("repository")
    }

    pub fn root_v1(&self) -> PathBuf {
        self.served().join("metadata/1.root.json")
    }

    /// Publishes an app version (new role version, snapshot, timestamp) and writes it.
    pub fn publish(&mut self, id: &str, version: &str) {
        let path = catalog::repo::envelope_target_path(id, &version.parse().expect("semver"));
        let bytes = envelope(id, version, &self.publisher);
        let now = Utc::now();
        self.repo
            .add_publisher_targets("acme", vec![(path, bytes, "manifest".into())], &self.publisher, now)
            .expect("add target");
        self.repo.snapshot_and_timestamp(&self.snapshot_key, &self.timestamp_key, now).expect("snapshot");
        self.write();
    }

    /// Publishes `id` `version` into another copy of this origin's folder (`folder`, holding
    /// `repository/`), signed `offset_secs` later: a fork of its history with the same keys.
    pub fn publish_into(&self, folder: &Path, id: &str, version: &str, offset_secs: i64) {
        let served = folder.join("repository");
        let mut repo = Repository::load(&served, catalog::repo::Expiry::default()).expect("load the fork");
        if let Some(key) = &self.log_key {
            repo.set_log_key(key.clone());
        }
        let path = catalog::repo::envelope_target_path(id, &version.parse().expect("semver"));
        let now = Utc::now() + chrono::TimeDelta::seconds(offset_secs);
        repo.add_publisher_targets(
            "acme",
            vec![(path, envelope(id, version, &self.publisher), "manifest".into())],
            &self.publisher,
            now,
        )
        .expect("add target");
        repo.snapshot_and_timestamp(&self.snapshot_key, &self.timestamp_key, now).expect("sign");
        repo.write_dir(&served).expect("write");
    }

    /// A copy of this origin's folder (repository and keys), for [`Origin::publish_into`].
    pub fn fork(&self) -> tempfile::TempDir {
        self.registry_folder();
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", self.dir.path().display()))
            .arg(dir.path())
            .status()
            .expect("cp");
        assert!(status.success(), "copying the origin's folder");
        let _ = std::fs::remove_dir_all(dir.path().join("registry"));
        dir
    }

    pub fn write(&mut self) {
        self.repo.write_dir(&self.served()).expect("write");
    }

    pub fn metadata(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.served().join("metadata").join(name)).expect("metadata file")
    }

    /// Writes the repository folder layout `archy-registry serve` and `archy repo` expect (keys/
    /// with the targets and online keys) and returns its path.
    pub fn registry_folder(&self) -> PathBuf {
        let keys = self.dir.path().join("keys");
        for (name, key) in
            [("timestamp", &self.timestamp_key), ("snapshot", &self.snapshot_key), ("targets", &self.targets_key)]
        {
            let path = keys.join(format!("{name}.key"));
            if !path.exists() {
                catalog::keyfile::write_new(&path, key).expect("key file");
            }
        }
        if let Some(key) = &self.log_key
            && !keys.join("log.key").exists()
        {
            catalog::keyfile::write_new(&keys.join("log.key"), key).expect("key file");
        }
        self.dir.path().to_owned()
    }
}

/// What an overridden path answers.
#[derive(Clone)]
pub enum Answer {
    /// These bytes instead of the file.
    Bytes(Vec<u8>),
    /// An endless body (the server streams until the client hangs up).
    Endless,
}

/// A real HTTP/1.1 server on 127.0.0.1 serving a directory, with per-path overrides.
pub struct HttpServer {
    pub addr: SocketAddr,
    overrides: Arc<Mutex<HashMap<String, Answer>>>,
    requested: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl HttpServer {
    pub fn start(root: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let overrides: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let requested: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (o, r, s) = (overrides.clone(), requested.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (root, o, r) = (root.clone(), o.clone(), r.clone());
                std::thread::spawn(move || serve_one(stream, &root, &o, &r));
            }
        });
        Self { addr, overrides, requested, stop }
    }

    /// The paths asked for so far, in order.
    pub fn requested(&self) -> Vec<String> {
        self.requested.lock().unwrap().clone()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `path` (e.g. `/metadata/timestamp.json`) with `answer` from now on.
    pub fn answer(&self, path: &str, answer: Answer) {
        self.overrides.lock().unwrap().insert(path.to_owned(), answer);
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve_one(
    stream: TcpStream,
    root: &Path,
    overrides: &Mutex<HashMap<String, Answer>>,
    requested: &Mutex<Vec<String>>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
    requested.lock().unwrap().push(path.clone());
    let mut stream = stream;
    let answer = overrides.lock().unwrap().get(&path).cloned();
    match answer {
        Some(Answer::Bytes(body)) => respond(&mut stream, 200, &body),
        Some(Answer::Endless) => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n");
            let chunk = vec![b' '; 64 * 1024];
            while stream.write_all(&chunk).is_ok() {}
        }
        None => {
            let rel = path.trim_start_matches('/');
            if rel.split('/').any(|p| p == ".." || p.is_empty()) {
                return respond(&mut stream, 404, b"");
            }
            match std::fs::read(root.join(rel)) {
                Ok(body) => respond(&mut stream, 200, &body),
                Err(_) => respond(&mut stream, 404, b"not found"),
            }
        }
    }
}

fn respond(stream: &mut TcpStream, code: u16, body: &[u8]) {
    let reason = if code == 200 { "OK" } else { "Not Found" };
    let head = format!("HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// A free TCP port on 127.0.0.1 (nothing listens there afterwards: an unreachable origin).
pub fn dead_url() -> String {
    format!("http://127.0.0.1:{}", super::docker::free_port())
}

/// A node driven through the `archy-node` binary.
pub struct Node {
    pub data: tempfile::TempDir,
}

/// The report `archy-node sync --json` prints.
pub use node::round::RoundReport as Report;

impl Node {
    /// `archy-node init` trusting `root`, with an origin URL and peers.
    pub fn init(root: &Path, origin: Option<&str>, peers: &[PeerAddr]) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(node_bin());
        cmd.arg("init").arg("--data").arg(data.path()).arg("--root").arg(root);
        match origin {
            Some(url) => cmd.args(["--origin", url]),
            None => cmd.args(["--origin", &dead_url()]),
        };
        for p in peers {
            cmd.args(["--peer", &p.to_string()]);
        }
        let out = cmd.output().expect("run archy-node init");
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        let node = Self { data };
        // A generous provider timeout (tests run in parallel on a loaded machine); the slow-peer
        // tests shorten it. API on a free port.
        node.edit_config(|c| {
            c.insert(
                "sync".into(),
                toml::toml! { interval_secs = 3600
                timeout_secs = 10 }
                .into(),
            );
            c.insert(
                "serve".into(),
                toml::toml! { iroh = "127.0.0.1:0"
                api = "127.0.0.1:0" }
                .into(),
            );
        });
        node
    }

    pub fn path(&self) -> &Path {
        self.data.path()
    }

    pub fn edit_config(&self, f: impl FnOnce(&mut toml::Table)) {
        let path = self.path().join("config.toml");
        let mut table: toml::Table = std::fs::read_to_string(&path).expect("config").parse().expect("toml");
        f(&mut table);
        std::fs::write(&path, toml::to_string(&table).expect("toml")).expect("write config");
    }

    /// Gives up on a silent provider after `secs`.
    pub fn set_timeout(&self, secs: i64) {
        self.edit_config(|c| {
            c.insert(
                "sync".into(),
                toml::toml! { interval_secs = 3600
                timeout_secs = secs }
                .into(),
            );
        });
    }

    /// Points the origin somewhere else (or nowhere).
    pub fn set_origin(&self, url: &str) {
        self.edit_config(|c| {
            c.insert("origin".into(), toml::toml! { url = url }.into());
        });
    }

    /// Adds a peer after the configured ones.
    pub fn add_peer(&self, peer: &PeerAddr) {
        self.edit_config(|c| {
            let peers = c.entry("peers").or_insert_with(|| toml::Value::Array(Vec::new()));
            peers.as_array_mut().expect("peers array").push(toml::toml! { iroh = (peer.to_string()) }.into());
        });
    }

    /// `archy-node sync --json`: (exit ok, report).
    pub fn sync(&self) -> (bool, Report) {
        let out = Command::new(node_bin())
            .args(["sync", "--json", "--data"])
            .arg(self.path())
            .env("ARCHY_LOG", "warn")
            .output()
            .expect("run archy-node sync");
        let report: Report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "sync printed no report ({e}): stdout {} stderr {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), report)
    }

    /// Everything the node has stored as verified: the current generation and the files.
    pub fn stored(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let current = self.path().join("catalog/current");
        let Ok(link) = std::fs::read_link(&current) else { return out };
        out.insert("current".into(), link.to_string_lossy().into_owned().into_bytes());
        let mut stack = vec![self.path().join("catalog").join(link), self.path().join("files")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let key = p.strip_prefix(self.path()).expect("prefix").to_string_lossy().into_owned();
                    out.insert(key, std::fs::read(&p).expect("read"));
                }
            }
        }
        out
    }

    /// `archy-node apps --json` as (id, version, source).
    pub fn apps(&self) -> Vec<(String, String, String)> {
        let out = Command::new(node_bin()).args(["apps", "--json", "--data"]).arg(self.path()).output().expect("apps");
        if !out.status.success() {
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("apps json");
        v.as_array()
            .expect("array")
            .iter()
            .map(|a| {
                (
                    a["id"].as_str().unwrap().to_owned(),
                    a["version"].as_str().unwrap().to_owned(),
                    a["source"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// `archy-node apps --source origin --json`.
    pub fn apps_json(&self) -> Vec<serde_json::Value> {
        let out = Command::new(node_bin())
            .args(["apps", "--source", "origin", "--json", "--data"])
            .arg(self.path())
            .output()
            .expect("apps");
        assert!(out.status.success(), "apps: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("apps json")
    }

    /// `archy-node status` (text).
    pub fn status(&self) -> std::process::Output {
        Command::new(node_bin()).args(["status", "--data"]).arg(self.path()).output().expect("status")
    }

    pub fn status_json(&self) -> serde_json::Value {
        let out =
            Command::new(node_bin()).args(["status", "--json", "--data"]).arg(self.path()).output().expect("status");
        serde_json::from_slice(&out.stdout).expect("status json")
    }

    /// Starts `archy-node run` on this data dir; returns the process and its iroh address.
    pub fn run(&self) -> Daemon {
        let _ = std::fs::remove_file(self.path().join("node.json"));
        let child = Command::new(node_bin())
            .args(["run", "--data"])
            .arg(self.path())
            .env("ARCHY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn archy-node run");
        let mut daemon = Daemon { child, iroh: None, api: String::new(), token: String::new() };
        let Some(v) = wait_for_json(&self.path().join("node.json"), Duration::from_secs(10)) else {
            panic!("archy-node run did not start")
        };
        daemon.iroh = Some(v["iroh"].as_str().unwrap().parse().expect("peer addr"));
        daemon.api = v["api"].as_str().unwrap().to_owned();
        // On TCP the token exists before node.json is written (a Unix socket needs none).
        daemon.token = std::fs::read_to_string(self.path().join("api.token")).unwrap_or_default().trim().to_owned();
        daemon
    }
}

/// The JSON a starting process writes to `path` once it listens (`None` after `within`).
pub fn wait_for_json(path: &Path, within: Duration) -> Option<serde_json::Value> {
    let until = std::time::Instant::now() + within;
    while std::time::Instant::now() < until {
        if let Ok(bytes) = std::fs::read(path)
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
        {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// A running `archy-node run`.
pub struct Daemon {
    child: Child,
    iroh: Option<PeerAddr>,
    pub api: String,
    /// The local API's bearer token (`<data>/api.token`).
    pub token: String,
}

impl Daemon {
    /// The `Authorization` header value of the local API.
    pub fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// Its iroh address.
    pub fn iroh(&self) -> PeerAddr {
        self.iroh.clone().expect("started")
    }

    /// A dashboard page as a signed-in operator sees it: signs in with the token (the login
    /// form), then `GET path` with the session cookie. The status and the body.
    pub fn dashboard_page(&self, path: &str) -> (u16, String) {
        use std::io::{Read as _, Write as _};
        let addr = self.api.strip_prefix("http://").expect("a TCP API");
        // The dashboard's own host name on loopback.
        let host = format!("localhost:{}", addr.rsplit(':').next().expect("port"));
        let host = host.as_str();
        let exchange = |request: String| {
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            stream.write_all(request.as_bytes()).expect("write");
            let mut answer = String::new();
            stream.read_to_string(&mut answer).expect("read");
            answer
        };
        let form = format!("token={}", self.token);
        let login = exchange(format!(
            "POST /login HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ));
        let cookie = login
            .lines()
            .find_map(|l| {
                l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.trim())
            })
            .and_then(|v| v.split(';').next())
            .unwrap_or_else(|| panic!("no session from the token: {login}"))
            .to_owned();
        let answer =
            exchange(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"));
        let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
        (status, answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `archy-registry serve`.
pub struct RegistryProcess {
    child: Child,
    pub http: String,
    iroh: Option<PeerAddr>,
}

impl RegistryProcess {
    pub fn start(folder: &Path, http: Option<SocketAddr>) -> Self {
        Self::start_with(folder, http, &[])
    }

    /// Starts it with more arguments to `serve`.
    pub fn start_with(folder: &Path, http: Option<SocketAddr>, args: &[&str]) -> Self {
        let _ = std::fs::remove_file(folder.join("registry/endpoint.json"));
        let http = http.map_or("127.0.0.1:0".to_owned(), |a| a.to_string());
        let child = Command::new(registry_bin())
            .args(["serve", "--data"])
            .arg(folder)
            .args(["--http", &http])
            .args(args)
            .env("ARCHY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn archy-registry");
        let mut registry = Self { child, http: String::new(), iroh: None };
        let Some(v) = wait_for_json(&folder.join("registry/endpoint.json"), Duration::from_secs(10)) else {
            panic!("archy-registry did not start")
        };
        registry.http = v["http"].as_str().unwrap().to_owned();
        registry.iroh = Some(v["iroh"].as_str().unwrap().parse().expect("iroh addr"));
        registry
    }

    pub fn iroh(&self) -> PeerAddr {
        self.iroh.clone().expect("started")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("archy-registry did not stop within 5 s of SIGTERM");
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http.trim_start_matches("http://").parse().expect("addr")
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Metadata a test peer serves: the origin's files, with overrides.
#[derive(Debug, Default)]
pub struct FakeMeta {
    pub files: Mutex<HashMap<String, Bytes>>,
    /// Never answer (a slow peer).
    pub silent: AtomicBool,
}

impl MetaSource for FakeMeta {
    fn meta(&self, name: &str) -> Option<Bytes> {
        if self.silent.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_secs(30));
        }
        self.files.lock().unwrap().get(name).cloned()
    }
}

impl FakeMeta {
    /// Every metadata file of an origin folder.
    pub fn from_dir(dir: &Path) -> Arc<Self> {
        let meta = Arc::new(Self::default());
        for entry in std::fs::read_dir(dir.join("metadata")).expect("metadata dir").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            meta.files.lock().unwrap().insert(name, Bytes::from(std::fs::read(entry.path()).expect("read")));
        }
        meta
    }

    pub fn set(&self, name: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(name.to_owned(), Bytes::from(bytes));
    }
}

/// An iroh peer in the test process: metadata from a [`FakeMeta`], blobs from a store (or a
/// custom blobs handler).
pub struct TestPeer {
    pub router: iroh::protocol::Router,
    pub addr: PeerAddr,
    pub store: iroh_blobs::store::mem::MemStore,
}

impl TestPeer {
    pub async fn start(meta: Arc<FakeMeta>) -> Self {
        Self::start_with(meta, None::<iroh_blobs::BlobsProtocol>).await
    }

    pub async fn start_with<H: iroh::protocol::ProtocolHandler>(meta: Arc<FakeMeta>, blobs: Option<H>) -> Self {
        let secret = iroh::SecretKey::from_bytes(&SigningKey::generate().seed());
        let endpoint = archy_net::bind_endpoint(secret, "127.0.0.1:0".parse().unwrap()).await.expect("endpoint");
        let addr = archy_net::local_peer_addr(&endpoint).expect("addr");
        let store = iroh_blobs::store::mem::MemStore::new();
        let builder = iroh::protocol::Router::builder(endpoint).accept(archy_net::META_ALPN, MetaServer::new(meta));
        let router = match blobs {
            Some(h) => builder.accept(iroh_blobs::ALPN, h).spawn(),
            None => builder.accept(iroh_blobs::ALPN, iroh_blobs::BlobsProtocol::new(&store, None)).spawn(),
        };
        Self { router, addr, store }
    }

    /// Adds every target file of an origin folder to the blob store.
    pub async fn add_targets(&self, dir: &Path) {
        let mut stack = vec![dir.join("targets")];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if entry.path().is_dir() {
                    stack.push(entry.path());
                } else {
                    let bytes = std::fs::read(entry.path()).expect("read");
                    self.store.blobs().add_bytes(bytes).with_tag().await.expect("add");
                }
            }
        }
    }
}
