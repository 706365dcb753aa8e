//! The origin under test and requests to it.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use catalog::did::DidKey;
use catalog::envelope::MAX_ENVELOPE_BYTES;
use catalog::keys::SigningKey;
use catalog::testing::{TestApp, TestKeys};
use registry::server::{Config, Registry};
use tower::ServiceExt as _;

/// A repository folder as `archy repo init` makes it, opened as a registry (no iroh).
pub(crate) fn registry(dir: &Path) -> Arc<Registry> {
    origin(dir, &[])
}

/// [`registry`] with publishers delegated: `(role, did, app ids)`, as `archy repo add-publisher`
/// does.
pub(crate) fn origin(dir: &Path, publishers: &[(&str, &DidKey, &[&str])]) -> Arc<Registry> {
    origin_with(dir, publishers, |_| {})
}

/// [`origin`] with its configuration changed by `configure` (limits set small for a test).
pub(crate) fn origin_with(
    dir: &Path,
    publishers: &[(&str, &DidKey, &[&str])],
    configure: impl FnOnce(&mut Config),
) -> Arc<Registry> {
    init_folder(dir, publishers);
    open(dir, configure)
}

/// Opens the repository folder `dir` (no iroh), with `configure` applied to the defaults.
pub(crate) fn open(dir: &Path, configure: impl FnOnce(&mut Config)) -> Arc<Registry> {
    let mut config = Config::new(dir.to_owned());
    config.iroh = None;
    configure(&mut config);
    Arc::new(Registry::open(config).unwrap())
}

/// Writes a repository folder as `archy repo init` and `archy repo add-publisher` make it.
pub(crate) fn init_folder(dir: &Path, publishers: &[(&str, &DidKey, &[&str])]) {
    let keys = TestKeys::generate();
    let now = chrono::Utc::now();
    let mut repo = keys.init_folder(dir, now);
    for (role, did, apps) in publishers {
        repo.add_publisher(role, did, apps, &keys.targets, now).unwrap();
    }
    repo.snapshot_and_timestamp(&keys.snapshot, &keys.timestamp, now).unwrap();
    repo.write_dir(&dir.join("repository")).unwrap();
}

/// The bytes of every file under `dir` (0 when it does not exist).
pub(crate) fn folder_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .map(|e| e.unwrap())
        .map(|e| if e.file_type().unwrap().is_dir() { folder_size(&e.path()) } else { e.metadata().unwrap().len() })
        .sum()
}

/// The envelope of app `id` at `version`, signed by `key` (its manifest's publisher).
pub(crate) fn envelope(key: &SigningKey, id: &str, version: &str) -> Vec<u8> {
    TestApp::new(id).version(version).envelope(key)
}

/// Sends `request` through the registry's router: `(status, body)`.
pub(crate) async fn call(registry: &Arc<Registry>, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = registry::server::router(registry.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 4 * MAX_ENVELOPE_BYTES).await.unwrap();
    (status, body.to_vec())
}

/// `POST /v1/submissions` of `metadata` for `role` with `files`: `(status, JSON body)`.
pub(crate) async fn post_submission(
    registry: &Arc<Registry>,
    role: &str,
    metadata: &[u8],
    files: &[(&str, Vec<u8>)],
) -> (StatusCode, serde_json::Value) {
    let boundary = "archy-test-boundary";
    let mut body = Vec::new();
    let mut part = |disposition: String, bytes: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    };
    part("form-data; name=\"role\"".into(), role.as_bytes());
    part("form-data; name=\"metadata\"".into(), metadata);
    for (path, bytes) in files {
        part(format!("form-data; name=\"file\"; filename=\"{path}\""), bytes);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let request = Request::post("/v1/submissions")
        .header(axum::http::header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from(body))
        .unwrap();
    let (status, body) = call(registry, request).await;
    (status, serde_json::from_slice(&body).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body))))
}

/// Adds `files` (`(path, bytes, kind)`) to `role` signed by `key`, signs a snapshot and timestamp
/// with the folder's online keys and writes the repository in `dir`, as `archy repo add` does:
/// for catalogs too large to submit one file at a time.
pub(crate) fn publish_direct(dir: &Path, role: &str, key: &SigningKey, files: Vec<(String, Vec<u8>, String)>) {
    let served = dir.join("repository");
    let mut repo = catalog::repo::Repository::load(&served, catalog::repo::Expiry::default()).unwrap();
    let now = chrono::Utc::now();
    repo.add_publisher_targets(role, files, key, now).unwrap();
    repo.snapshot_and_timestamp(&folder_key(dir, "snapshot"), &folder_key(dir, "timestamp"), now).unwrap();
    repo.write_dir(&served).unwrap();
}

/// The role key `name` of the repository folder `dir` (`keys/<name>.key`).
pub(crate) fn folder_key(dir: &Path, name: &str) -> SigningKey {
    catalog::keyfile::read(&dir.join(format!("keys/{name}.key"))).unwrap()
}

/// A running `serve` (HTTP on a free port, the embedded relay, no iroh) and its addresses.
pub(crate) struct Served {
    pub http: String,
    pub relay: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Served {
    /// Serves the repository folder `dir`, with `configure` applied to the defaults.
    pub(crate) async fn start(dir: &Path, configure: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::new(dir.to_owned());
        config.iroh = None;
        config.http = "127.0.0.1:0".parse().unwrap();
        config.relay = Some("127.0.0.1:0".parse().unwrap());
        configure(&mut config);
        let _ = std::fs::remove_file(dir.join("registry/endpoint.json"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(registry::server::serve(config, async move {
            let _ = stopped.await;
        }));
        for _ in 0..200 {
            if let Ok(l) = registry::server::read_listening(dir) {
                return Self { http: l.http, relay: l.relay.expect("the relay runs"), stop: Some(stop), task };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the origin did not start");
    }

    /// Stops it.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// `GET path`: the status and the body.
    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        let (status, answer) = self.request_full("GET", path, &[]).await;
        (status, answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
    }

    /// `GET path`: the status and the whole answer (headers too).
    pub(crate) async fn get_full(&self, path: &str) -> (u16, String) {
        self.request_full("GET", path, &[]).await
    }

    /// One HTTP/1.1 request with `body`: the status and the body.
    pub(crate) async fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let (status, answer) = self.request_full(method, path, body).await;
        (status, answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
    }

    async fn request_full(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let addr = self.http.strip_prefix("http://").unwrap();
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap();
        (status, answer)
    }
}

/// A third-party publisher on Nostr: its DID key and Nostr key, bound.
pub(crate) struct NostrPublisher {
    pub did: SigningKey,
    pub nostr: archy_nostr::nostr_sdk::Keys,
}

impl NostrPublisher {
    pub(crate) fn new() -> Self {
        Self { did: SigningKey::generate(), nostr: archy_nostr::nostr_sdk::Keys::generate() }
    }

    /// Posts the binding and the release of `toml` (signed by the DID) on `relay`; with `host`,
    /// the envelope is posted to the origin's `/v1/blobs` first. Returns the release event.
    pub(crate) async fn announce(
        &self,
        relay: &str,
        toml: &str,
        host: Option<&Served>,
    ) -> archy_nostr::nostr_sdk::Event {
        let manifest = catalog::manifest::Manifest::from_toml_str(toml, &catalog::manifest::Limits::default()).unwrap();
        let verified = catalog::testing::verified(&manifest, &self.did);
        let bytes = verified.envelope().to_bytes();
        if let Some(origin) = host {
            let (status, body) = origin.request("POST", "/v1/blobs", &bytes).await;
            assert!((200..300).contains(&status), "hosting the envelope: {status} {body}");
        }
        let location =
            archy_nostr::event::Location::Url(format!("http://127.0.0.1:1/v1/blobs/{}", blake3::hash(&bytes).to_hex()));
        let events = [
            archy_nostr::event::binding_event(&self.did, &self.nostr).unwrap(),
            archy_nostr::event::release_event(&verified, &[location], &self.did, &self.nostr).unwrap(),
        ];
        let connection =
            archy_nostr::client::RelayConnection::connect(relay, std::time::Duration::from_secs(10)).await.unwrap();
        for e in &events {
            connection.publish(e).await.unwrap();
        }
        connection.disconnect().await;
        events[1].clone()
    }
}
