//! Incremental sync: the bytes a node downloads when one app of a 10,000-app catalog changes,
//! divided by the bytes of a full catalog download. Target: at most 1 %.
//!
//! Run: `cargo bench -p archy-bench --bench incremental_sync`
//!
//! For each catalog shape (50 publisher roles × 200 apps, then 1,000 roles × 10 apps):
//! 1. a repository is built in-process with `catalog::repo` (one envelope per app, signed by its
//!    publisher's key; each publisher role, the snapshot and the timestamp signed as `archy repo`
//!    signs them) and written with `write_dir`;
//! 2. the origin's own HTTP service (`registry::server::Registry` + `serve_http`) serves it on
//!    127.0.0.1, behind a byte-counting TCP relay that also sees HTTP headers;
//! 3. a fresh node (`archy-node init` with the first root and the relay's URL) runs
//!    `node::sync::sync_once`: the full download;
//! 4. one app publishes a new version: its publisher re-signs its role with the new envelope
//!    added, the origin signs a new snapshot and timestamp, `write_dir` writes them and the origin
//!    reloads them (as it does on its re-sign check);
//! 5. the same node runs `sync_once` again: the incremental download.
//!
//! The figure is `SyncReport::bytes_downloaded` (payload bytes of metadata and manifests) of
//! step 5 over step 3. It is checked against the sizes of the files the node needed, and the
//! bytes on the wire (with HTTP headers) are printed beside it.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use archy_bench::{build_origin, envelope, key};

use catalog::repo::{Expiry, Repository};
use chrono::Utc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

// The allocator the node binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Target: incremental bytes / full bytes.
const TARGET: f64 = 0.01;

/// Publisher 0 publishes version 0.2.0 of its first app: a new envelope in a new version of its
/// role, then a new snapshot and timestamp. Returns the sizes of the files a node that has the
/// previous catalog needs: timestamp, snapshot, the publisher's role and the new envelope.
fn publish_one_change(dir: &Path) -> [(&'static str, u64); 4] {
    let now = Utc::now();
    let repo_dir = dir.join("repository");
    // As `archy repo` does: no other writer (the origin's re-signing) between load and write.
    let _writers = catalog::repo::lock_writers(&repo_dir).expect("writer lock");
    let mut repo = Repository::load(&repo_dir, Expiry::default()).expect("load");
    let publisher = key(9, 0);
    let (path, bytes) = envelope("app-0-0", &publisher, "0.2.0");
    let envelope_len = bytes.len() as u64;
    repo.add_publisher_target("publisher-0", &path, bytes, "manifest", &publisher, now).expect("add target");
    repo.snapshot_and_timestamp(&key(3, 0), &key(4, 0), now).expect("publish");
    let files = repo.metadata_files();
    let size = |suffix: &str| files.iter().find(|(name, _)| name.ends_with(suffix)).map_or(0, |(_, b)| b.len() as u64);
    let sizes = [
        ("timestamp", size("timestamp.json")),
        ("snapshot", size(".snapshot.json")),
        ("changed role", size(".publisher-0.json")),
        ("new envelope", envelope_len),
    ];
    repo.write_dir(&repo_dir).expect("write_dir");
    sizes
}

/// A TCP relay in front of the origin that counts the bytes it passes each way (so HTTP
/// headers and framing are counted too).
#[derive(Default)]
struct Wire {
    down: AtomicU64,
    up: AtomicU64,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: Arc<Wire>,
    down: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let counter = if down { &count.down } else { &count.up };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

async fn relay(upstream: SocketAddr, wire: Arc<Wire>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let wire = wire.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else { return };
                // Each read is passed on as it comes: without this, Nagle's algorithm holds a
                // response's second segment until the client's delayed ACK (~40 ms a request).
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::join!(pump(sr, cw, wire.clone(), true), pump(cr, sw, wire, false));
            });
        }
    });
    addr
}

struct Figures {
    full: u64,
    full_expected: u64,
    full_metadata: u64,
    full_wire: u64,
    full_secs: f64,
    incremental: u64,
    incremental_expected: u64,
    incremental_wire: u64,
    incremental_secs: f64,
    parts: [(&'static str, u64); 4],
    apps: usize,
}

async fn run_shape(work: &Path, publishers: usize, apps: usize) -> Figures {
    let origin = work.join("origin");
    let node = node::DataDir::new(work.join("node"));
    let t = Instant::now();
    let (full_metadata, full_envelopes) = build_origin(&origin, publishers, apps);
    let full_expected = full_metadata + full_envelopes;
    println!("  built and wrote the repository in {:.1} s", t.elapsed().as_secs_f64());

    // The origin's HTTP service, as `archy-registry serve` runs it (iroh is not needed here:
    // the node syncs from the origin's HTTP URL).
    let mut config = registry::server::Config::new(origin.clone());
    config.iroh = None;
    let registry = Arc::new(registry::server::Registry::open(config).expect("open registry"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin_addr = listener.local_addr().unwrap();
    let server = tokio::spawn(registry::server::serve_http(listener, registry.clone(), std::future::pending()));
    let wire = Arc::new(Wire::default());
    let relay_addr = relay(origin_addr, wire.clone()).await;

    let root = origin.join("repository/metadata/1.root.json");
    node::init::init(&node::init::InitArgs {
        data: &node,
        root: &root,
        minisig: None,
        minisign_key: None,
        origin: Some(format!("http://{relay_addr}")),
        origin_iroh: None,
        peers: Vec::new(),
        force: false,
        nostr: Default::default(),
    })
    .expect("init");

    let t = Instant::now();
    let config = node.config().expect("config");
    let first = node::sync::sync_once(&node, &config, None).await.expect("full sync");
    let full_secs = t.elapsed().as_secs_f64();
    assert!(first.ok() && first.changed, "full sync failed: {:?}", first.errors);
    assert_eq!(first.apps, publishers * apps, "apps after the full sync");
    let full_wire = wire.down.swap(0, Ordering::Relaxed);

    let parts = publish_one_change(&origin);
    let incremental_expected = parts.iter().map(|(_, n)| n).sum();
    // The origin re-reads its metadata on its periodic re-sign check; run that check now.
    let reg = registry.clone();
    tokio::task::spawn_blocking(move || reg.resign_if_due(Utc::now())).await.unwrap().expect("reload");

    let t = Instant::now();
    let second = node::sync::sync_once(&node, &config, None).await.expect("incremental sync");
    let incremental_secs = t.elapsed().as_secs_f64();
    assert!(second.ok() && second.changed, "incremental sync failed: {:?}", second.errors);
    assert_eq!(second.apps, publishers * apps + 1, "apps after the incremental sync");
    let incremental_wire = wire.down.swap(0, Ordering::Relaxed);
    server.abort();
    Figures {
        full: first.bytes_downloaded,
        full_expected,
        full_metadata,
        full_wire,
        full_secs,
        incremental: second.bytes_downloaded,
        incremental_expected,
        incremental_wire,
        incremental_secs,
        parts,
        apps: second.apps,
    }
}

fn check(measured: u64, expected: u64) -> &'static str {
    if measured == expected { "= file sizes" } else { "!= FILE SIZES" }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let shapes = [(50, 200), (1_000, 10)];
    let mut rows = Vec::new();
    println!("incremental sync: one app of the catalog publishes a new version (target <= {:.0} %)", TARGET * 100.0);
    for (publishers, apps) in shapes {
        let work: PathBuf = tempfile::tempdir().unwrap().keep();
        println!("{publishers} publisher roles x {apps} apps, in {}", work.display());
        let f = runtime.block_on(run_shape(&work, publishers, apps));
        let _ = std::fs::remove_dir_all(&work);
        let ratio = f.incremental as f64 / f.full as f64;
        let wire_ratio = f.incremental_wire as f64 / f.full_wire as f64;
        println!("{publishers} roles x {apps} apps ({} app versions after the change)", f.apps);
        println!(
            "  full sync:        {:>11} B payload ({}), {:>11} B on the wire, {:.1} s",
            f.full,
            check(f.full, f.full_expected),
            f.full_wire,
            f.full_secs
        );
        println!(
            "    of which metadata {} B, {} envelopes {} B",
            f.full_metadata,
            publishers * apps,
            f.full_expected - f.full_metadata
        );
        println!(
            "  incremental sync: {:>11} B payload ({}), {:>11} B on the wire, {:.2} s",
            f.incremental,
            check(f.incremental, f.incremental_expected),
            f.incremental_wire,
            f.incremental_secs
        );
        let parts: Vec<String> = f.parts.iter().map(|(name, n)| format!("{name} {n}")).collect();
        println!("    of which {} B", parts.join(" B, "));
        println!(
            "  incremental / full: {:.3} % (payload), {:.3} % (wire)  target <= {:.0} %: {}",
            ratio * 100.0,
            wire_ratio * 100.0,
            TARGET * 100.0,
            if ratio <= TARGET { "met" } else { "MISSED" }
        );
        rows.push((publishers, apps, ratio));
    }
    for (publishers, apps, ratio) in rows {
        println!(
            "result: incremental sync {publishers} roles x {apps} apps: {:.3} % of a full download (target <= 1 %) {}",
            ratio * 100.0,
            if ratio <= TARGET { "met" } else { "MISSED" }
        );
    }
}
