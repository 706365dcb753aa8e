//! Blob transfer: a 200 MB image archive fetched by a node over iroh on loopback, against the
//! same file from nginx over HTTPS and against a bare iroh-blobs fetch, all in one run.
//! Targets: archy ≥ 0.5 × nginx; archy's overhead over bare iroh-blobs ≤ 10 %.
//!
//! Run: `bash scripts/bench-blob-transfer.sh` (installs nginx, makes the file and a
//! self-signed certificate, starts nginx with TLS on 127.0.0.1, then runs
//! `cargo bench -p archy-bench --bench blob_transfer`). Run alone, the bench makes its own file
//! and skips nginx.
//!
//! Each round fetches the file once with each of:
//! - **archy**: an `archy-registry` origin (`registry::server::serve` in a child process, its
//!   iroh-blobs store holding the file as a target of the signed catalog) and a node that has
//!   synced that catalog; the timed part is `node::sync::swarm::fetch_file` for the archive's catalog
//!   entry, the node's own code path: iroh connection, BLAKE3-verified streaming into
//!   `files/.<hash>.part`, fsync, rename into `files/<blake3>`;
//! - **bare iroh-blobs**: a provider child process with the file in an iroh-blobs `MemStore`
//!   behind `BlobsProtocol`, and iroh-blobs' own download, `store.remote().fetch(connection,
//!   hash)`, into a fresh `MemStore`; both endpoints from `archy_net::bind_endpoint`, as
//!   archy's are;
//! - **floor**: iroh-blobs' get state machine for the hash, verifying every chunk and keeping
//!   nothing (no store, no disk), from the same MemStore provider: the cheapest verified fetch,
//!   and what the archy overhead target is judged against. The same client is also run against
//!   the archy origin, which splits archy's time over the floor into the provider's part and
//!   the node's part;
//! - **nginx**: `curl` (OpenSSL, TLS 1.3, certificate checked against the self-signed CA)
//!   fetching `https://127.0.0.1:<port>/<file>` from nginx, writing it to a file on the same
//!   disk as the node's files (`curl_time_total`); and the same to `/dev/null` for reference.
//!
//! Every client runs in this process and every provider in its own process, so each transfer
//! has the machine's two cores to itself. Rounds are interleaved; the figures are medians.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use archy_net::PeerAddr;
use catalog::testing::{self, TestApp, TestKeys};
use chrono::Utc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 9;
const SIZE: usize = 200 * 1000 * 1000;
const IMAGE_PATH: &str = "images/app-0/app-0.tar";
/// Set in a child process started by this bench: which provider to run.
const CHILD_ENV: &str = "ARCHY_BENCH_BLOB_CHILD";

/// The origin folder: one publisher with one app whose image archive is the file.
fn build_origin(dir: &Path, blob: &[u8]) {
    let now = Utc::now();
    // Deterministic keys, so runs are comparable.
    let keys = TestKeys { publisher: testing::key(9), ..TestKeys::fixed() };
    let mut repo = keys.create(now);
    let TestKeys { targets, snapshot, timestamp, publisher, .. } = keys;
    repo.add_publisher("publisher-0", &publisher.did(), &["app-0"], &targets, now).expect("add publisher");
    let app = TestApp::new("app-0");
    let manifest = app.manifest(&publisher);
    let envelope = app.envelope(&publisher);
    let files = vec![
        (catalog::repo::envelope_target_path("app-0", &manifest.version), envelope, "manifest".to_owned()),
        (IMAGE_PATH.to_owned(), blob.to_vec(), "image".to_owned()),
    ];
    repo.add_publisher_targets("publisher-0", files, &publisher, now).expect("targets");
    repo.snapshot_and_timestamp(&snapshot, &timestamp, now).expect("publish");
    repo.write_dir(&dir.join("repository")).expect("write_dir");
    catalog::keyfile::write_new(&dir.join("keys/snapshot.key"), &snapshot).expect("key");
    catalog::keyfile::write_new(&dir.join("keys/timestamp.key"), &timestamp).expect("key");
}

/// Resolves when the parent closes our stdin.
async fn parent_gone() {
    use tokio::io::AsyncReadExt as _;
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
}

/// Child process: the archy origin (`archy-registry serve`'s code) on 127.0.0.1.
async fn child_registry(data: PathBuf) {
    let mut config = registry::server::Config::new(data);
    config.http = "127.0.0.1:0".parse().unwrap();
    registry::server::serve(config, parent_gone()).await.expect("registry");
}

/// Child process: the plainest iroh-blobs provider, the file in a MemStore.
async fn child_bare_provider(file: PathBuf) {
    let store = iroh_blobs::store::mem::MemStore::new();
    let bytes = std::fs::read(&file).unwrap();
    store.blobs().add_bytes(bytes).with_tag().await.unwrap();
    let secret = iroh::SecretKey::from_bytes(&[7u8; 32]);
    let endpoint = archy_net::bind_endpoint(secret, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = archy_net::local_peer_addr(&endpoint).unwrap();
    let router = iroh::protocol::Router::builder(endpoint)
        .accept(iroh_blobs::ALPN, iroh_blobs::BlobsProtocol::new(&store, None))
        .spawn();
    println!("{addr}");
    parent_gone().await;
    let _ = router.shutdown().await;
}

struct Provider {
    child: Child,
}

impl Drop for Provider {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn spawn_child(kind: &str, arg: &Path) -> Provider {
    let child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, kind)
        .arg(arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Provider { child }
}

/// The bare client: iroh-blobs' get state machine for one blob, every chunk verified, nothing
/// kept. Returns the bytes received and the average size of the UDP datagrams that carried them.
async fn bare_fetch(endpoint: &iroh::Endpoint, provider: &PeerAddr, hash: iroh_blobs::Hash) -> (u64, u64) {
    use iroh_blobs::get::fsm;
    let connection = endpoint.connect(provider.endpoint_addr(), iroh_blobs::ALPN).await.unwrap();
    let request = iroh_blobs::protocol::GetRequest::blob(hash);
    let connected = fsm::start(connection.clone(), request, Default::default()).next().await.unwrap();
    let fsm::ConnectedNext::StartRoot(start) = connected.next().await.unwrap() else { panic!("no root") };
    let (mut content, _size) = start.next().next().await.unwrap();
    let mut received = 0u64;
    let end = loop {
        match content.next().await {
            fsm::BlobContentNext::More((next, item)) => {
                if let bao_tree::io::BaoContentItem::Leaf(leaf) = item.unwrap() {
                    received += leaf.data.len() as u64;
                }
                content = next;
            }
            fsm::BlobContentNext::Done(end) => break end,
        }
    };
    let fsm::EndBlobNext::Closing(closing) = end.next() else { panic!("expected the end") };
    closing.next().await.unwrap();
    let udp = connection.stats().udp_rx;
    connection.close(0u32.into(), b"done");
    (received, udp.bytes / udp.datagrams.max(1))
}

/// iroh-blobs' own download: `store.remote().fetch(connection, hash)` into a fresh `MemStore`.
/// Returns the payload bytes read.
async fn store_fetch(endpoint: &iroh::Endpoint, provider: &PeerAddr, hash: iroh_blobs::Hash) -> u64 {
    let store = iroh_blobs::store::mem::MemStore::new();
    let connection = endpoint.connect(provider.endpoint_addr(), iroh_blobs::ALPN).await.unwrap();
    let stats = store.remote().fetch(connection.clone(), hash).await.unwrap();
    connection.close(0u32.into(), b"done");
    store.shutdown().await.unwrap();
    stats.payload_bytes_read
}

/// `curl` from nginx: (seconds of the transfer as curl measures it, bytes).
fn curl(url: &str, cacert: &str, out: &Path) -> (f64, u64) {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--cacert", cacert, "-o"])
        .arg(out)
        .args(["-w", "%{time_total} %{size_download}", url])
        .output()
        .expect("curl");
    assert!(output.status.success(), "curl: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    let mut parts = text.split_whitespace();
    let secs: f64 = parts.next().unwrap().parse().unwrap();
    let bytes: u64 = parts.next().unwrap().parse().unwrap();
    (secs, bytes)
}

/// Seconds of one round's transfers.
struct Round {
    archy: f64,
    store: f64,
    bare: f64,
    bare_origin: f64,
    /// curl from nginx into a file, and to /dev/null.
    nginx: Option<(f64, f64)>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

async fn bench() {
    let work = tempfile::Builder::new().prefix("archy-blob-bench").tempdir_in(std::env::temp_dir()).unwrap().keep();
    // The file: the script's (the one nginx serves), or 200 MB of random bytes made here.
    let blob_path = match std::env::var_os("ARCHY_BENCH_BLOB") {
        Some(p) => PathBuf::from(p),
        None => {
            let mut bytes = vec![0u8; SIZE];
            getrandom::fill(&mut bytes).unwrap();
            let p = work.join("blob.bin");
            std::fs::write(&p, &bytes).unwrap();
            p
        }
    };
    let blob = std::fs::read(&blob_path).unwrap();
    let len = blob.len() as u64;
    let hash = blake3::hash(&blob);
    let origin = work.join("origin");
    build_origin(&origin, &blob);
    drop(blob);

    // The archy origin in its own process; it writes registry/endpoint.json when it listens.
    let _registry = spawn_child("registry", &origin);
    let t = Instant::now();
    let listening = loop {
        if let Ok(l) = registry::server::read_listening(&origin) {
            break l;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "the origin did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let origin_iroh = listening.iroh.expect("the origin's iroh address");

    // The bare provider in its own process; it prints its address when it listens.
    let mut bare = spawn_child("bare", &blob_path);
    let bare_addr: PeerAddr = {
        use std::io::BufRead as _;
        let mut line = String::new();
        std::io::BufReader::new(bare.child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        line.trim().parse().unwrap()
    };

    // A node that trusts the origin's root and syncs the catalog over iroh only.
    let node = node::DataDir::new(work.join("node"));
    node::init::init(&node::init::InitArgs {
        data: &node,
        root: &origin.join("repository/metadata/1.root.json"),
        minisig: None,
        minisign_key: None,
        origin: None,
        origin_iroh: Some(origin_iroh.to_string()),
        peers: Vec::new(),
        force: false,
        nostr: Default::default(),
    })
    .unwrap();
    let config = node.config().unwrap();
    let report = node::sync::sync_once(&node, &config, None).await.unwrap();
    assert!(report.ok(), "sync: {:?}", report.errors);
    let file =
        node::catalog::NodeCatalog::open(&node).unwrap().file(IMAGE_PATH).cloned().expect("image in the catalog");
    assert_eq!(file.length, len);
    let dest = node.files().path(&file.blake3);

    let bare_secret = iroh::SecretKey::from_bytes(&[8u8; 32]);
    let bare_endpoint = archy_net::bind_endpoint(bare_secret, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let bare_hash = iroh_blobs::Hash::from(hash);

    let nginx = std::env::var("ARCHY_BENCH_NGINX_URL").ok();
    let cacert = std::env::var("ARCHY_BENCH_CACERT").unwrap_or_default();
    let curl_out = node.files().dir().join("curl.out");

    println!("blob transfer: {:.1} MB file, {ROUNDS} rounds, loopback, release build", len as f64 / 1e6);
    let mut rounds: Vec<Round> = Vec::new();
    let mut datagram_size = 0;
    // One unmeasured round first: page cache, connections' first use, allocator.
    for round in 0..=ROUNDS {
        let _ = std::fs::remove_file(&dest);
        let t = Instant::now();
        let progress = std::sync::Arc::new(node::sync::NoProgress);
        // A fresh fetcher each round (a one-shot command's: its blob store starts empty).
        let fetcher = node::sync::swarm::Fetcher::for_data(&node, &config).await.unwrap();
        node::sync::swarm::fetch_file(&node, &config, &fetcher, &file, None, None, progress).await.unwrap();
        let archy = t.elapsed().as_secs_f64();
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), len);

        let t = Instant::now();
        assert_eq!(store_fetch(&bare_endpoint, &bare_addr, bare_hash).await, len);
        let store = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let (received, datagram) = bare_fetch(&bare_endpoint, &bare_addr, bare_hash).await;
        let bare = t.elapsed().as_secs_f64();
        assert_eq!(received, len);
        datagram_size = datagram;

        let t = Instant::now();
        assert_eq!(bare_fetch(&bare_endpoint, &origin_iroh, bare_hash).await.0, len);
        let bare_origin = t.elapsed().as_secs_f64();

        let nginx = nginx.as_ref().map(|url| {
            let _ = std::fs::remove_file(&curl_out);
            let (file_secs, bytes) = curl(url, &cacert, &curl_out);
            assert_eq!(bytes, len);
            let (null_secs, _) = curl(url, &cacert, Path::new("/dev/null"));
            (file_secs, null_secs)
        });
        if round == 0 {
            continue;
        }
        let r = Round { archy, store, bare, bare_origin, nginx };
        let rate = |secs: f64| format!("{:.0}", mbps(len, secs));
        println!(
            "  round {round}: archy {} MB/s, iroh-blobs MemStore {} MB/s, floor {} MB/s, floor <- origin {} MB/s, nginx {} MB/s (to /dev/null {})",
            rate(r.archy),
            rate(r.store),
            rate(r.bare),
            rate(r.bare_origin),
            r.nginx.map_or("-".into(), |n| rate(n.0)),
            r.nginx.map_or("-".into(), |n| rate(n.1)),
        );
        rounds.push(r);
    }
    let _ = std::fs::remove_file(&curl_out);
    let rate = |f: fn(&Round) -> f64| median(rounds.iter().map(|r| mbps(len, f(r))).collect());
    // Ratios are medians of the per-round ratios: each round's transfers ran back to back, so
    // pairing them cancels most of the machine's drift between rounds.
    let paired = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    let a = rate(|r| r.archy);
    println!("median of {ROUNDS} rounds:");
    println!("  archy node <- archy-registry over iroh:       {a:>7.1} MB/s");
    println!("  iroh-blobs fetch into a MemStore <- MemStore:   {:>7.1} MB/s", rate(|r| r.store));
    println!("  floor: verify and discard <- MemStore:         {:>7.1} MB/s", rate(|r| r.bare));
    println!("  floor: verify and discard <- archy-registry:   {:>7.1} MB/s", rate(|r| r.bare_origin));
    println!("  (iroh: {datagram_size} bytes per UDP datagram on average, last floor fetch)");
    // The target is judged against the floor, the cheapest verified iroh-blobs fetch there is.
    let overhead = paired(|r| r.archy / r.bare - 1.0);
    let over_store = paired(|r| r.archy / r.store - 1.0);
    let mut nginx_part = "archy/nginx not measured (run scripts/bench-blob-transfer.sh)".to_owned();
    if rounds.iter().all(|r| r.nginx.is_some()) {
        let file_secs = |r: &Round| r.nginx.map_or(f64::NAN, |n| n.0);
        let null_secs = |r: &Round| r.nginx.map_or(f64::NAN, |n| n.1);
        println!("  curl <- nginx over HTTPS, into a file:        {:>7.1} MB/s", rate(file_secs));
        println!("  curl <- nginx over HTTPS, to /dev/null:       {:>7.1} MB/s", rate(null_secs));
        let ratio = paired(|r| r.nginx.map_or(f64::NAN, |n| n.0) / r.archy);
        let ratio_null = paired(|r| r.nginx.map_or(f64::NAN, |n| n.1) / r.archy);
        println!(
            "ratio archy / nginx:            {ratio:.2}  (target >= 0.50: {}; against curl to /dev/null {ratio_null:.2})",
            if ratio >= 0.5 { "met" } else { "MISSED" },
        );
        nginx_part = format!("archy/nginx {ratio:.2} (target >= 0.5) {}", if ratio >= 0.5 { "met" } else { "MISSED" });
    }
    println!(
        "archy overhead over bare iroh-blobs: {:+.1} %  (target <= 10 %: {}; time archy / time of the floor - 1)",
        overhead * 100.0,
        if overhead <= 0.10 { "met" } else { "MISSED" },
    );
    println!(
        "  of which the registry as provider {:+.1} %, the node {:+.1} %; against the MemStore fetch {:+.1} %",
        paired(|r| r.bare_origin / r.bare - 1.0) * 100.0,
        paired(|r| r.archy / r.bare_origin - 1.0) * 100.0,
        over_store * 100.0,
    );
    println!(
        "result: blob transfer {a:.0} MB/s: {nginx_part}; overhead over bare iroh-blobs {:+.1} % (target <= 10 %) {}",
        overhead * 100.0,
        if overhead <= 0.10 { "met" } else { "MISSED" }
    );
    bare_endpoint.close().await;
    drop(bare);
    let _ = std::fs::remove_dir_all(&work);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("registry") => {
            let dir = std::env::args_os().nth(1).unwrap();
            runtime.block_on(child_registry(PathBuf::from(dir)));
        }
        Ok("bare") => {
            let file = std::env::args_os().nth(1).unwrap();
            runtime.block_on(child_bare_provider(PathBuf::from(file)));
        }
        _ => runtime.block_on(bench()),
    }
}
