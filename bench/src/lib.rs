//! Benchmarks that run an archy origin and nodes together, each printing its figure:
//!
//! - `cargo bench -p archy-bench --bench incremental_sync`: the bytes a node downloads when one
//!   app of a 10,000-app catalog changes, over a full download;
//! - `cargo bench -p archy-bench --bench blob_transfer`: a 200 MB archive over iroh against nginx
//!   over HTTPS and bare iroh-blobs (`bash scripts/bench-blob-transfer.sh` sets nginx up).
//!
//! They live apart from the crates they measure so that the node does not depend on the origin
//! server. The library builds their catalogs ([`build_origin`]); `cargo run -p archy-bench
//! --example write_catalog` writes one for the scripts (`scripts/bench-swarm.sh`).

use std::path::Path;

use catalog::keys::SigningKey;
use catalog::testing::{TestApp, TestKeys};
use chrono::Utc;

/// Deterministic keys, so runs are comparable.
pub fn key(n: u8, i: usize) -> SigningKey {
    let mut seed = [n; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SigningKey::from_seed(seed)
}

/// The target path of app `id`'s envelope at `version`.
pub fn envelope_path(id: &str, version: &str) -> String {
    catalog::repo::envelope_target_path(id, &version.parse().expect("semver"))
}

/// The envelope of app `id` at `version` signed by `publisher`, with its target path.
pub fn envelope(id: &str, publisher: &SigningKey, version: &str) -> (String, Vec<u8>) {
    let app = TestApp::new(id).version(version);
    (envelope_path(id, version), app.envelope(publisher))
}

/// Builds the origin folder (`repository/`, `keys/`) with `publishers` × `apps` envelopes.
/// Returns the payload bytes a fresh node needs: the metadata it fetches (everything but the
/// root it already pins) and every envelope.
pub fn build_origin(dir: &Path, publishers: usize, apps: usize) -> (u64, u64) {
    build_origin_with(dir, publishers, apps, false).1
}

/// [`build_origin`], keeping a transparency log when `log` (its key in `keys/log.key`); also
/// returns the repository as written.
pub fn build_origin_with(
    dir: &Path,
    publishers: usize,
    apps: usize,
    log: bool,
) -> (catalog::repo::Repository, (u64, u64)) {
    let now = Utc::now();
    let keys = TestKeys {
        root: key(1, 0),
        targets: key(2, 0),
        snapshot: key(3, 0),
        timestamp: key(4, 0),
        publisher: key(9, 0),
        log: log.then(|| key(6, 0)),
    };
    if let Some(k) = &keys.log {
        catalog::keyfile::write_new(&dir.join("keys/log.key"), k).expect("key");
    }
    let mut repo = keys.create(now);
    let TestKeys { targets, snapshot, timestamp, .. } = keys;
    for p in 0..publishers {
        let publisher = key(9, p);
        let ids: Vec<String> = (0..apps).map(|i| format!("app-{p}-{i}")).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let role = format!("publisher-{p}");
        repo.add_publisher(&role, &publisher.did(), &id_refs, &targets, now).expect("add publisher");
        let batch = ids
            .iter()
            .map(|id| {
                let (path, bytes) = envelope(id, &publisher, "0.1.0");
                (path, bytes, "manifest".to_owned())
            })
            .collect();
        repo.add_publisher_targets(&role, batch, &publisher, now).expect("add targets");
    }
    repo.snapshot_and_timestamp(&snapshot, &timestamp, now).expect("publish");
    let envelopes: u64 = repo.pending_target_files().values().map(|b| b.len() as u64).sum();
    let metadata: u64 = repo
        .metadata_files()
        .iter()
        .filter(|(name, _)| !name.ends_with("root.json"))
        .map(|(_, b)| b.len() as u64)
        .sum();
    repo.write_dir(&dir.join("repository")).expect("write_dir");
    catalog::keyfile::write_new(&dir.join("keys/snapshot.key"), &snapshot).expect("key");
    catalog::keyfile::write_new(&dir.join("keys/timestamp.key"), &timestamp).expect("key");
    (repo, (metadata, envelopes))
}
