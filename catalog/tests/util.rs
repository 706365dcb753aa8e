//! Shared helpers for catalog integration tests: an in-memory remote and store, and a small
//! repository built with archy's own repository code.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::path::Path;

use catalog::client::{Config, Updater};
use catalog::keys::SigningKey;
use catalog::repo::{Expiry, InitKeys, Repository};
use chrono::{DateTime, TimeZone as _, Utc};

pub use catalog::client::local::{DirRemote, MemoryStore as MemStore};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("date")
}

/// Keys of a test repository, deterministic so fixtures are reproducible.
pub struct TestKeys {
    pub root: SigningKey,
    pub targets: SigningKey,
    pub snapshot: SigningKey,
    pub timestamp: SigningKey,
    pub publisher: SigningKey,
}

impl TestKeys {
    pub fn new() -> Self {
        Self {
            root: SigningKey::from_seed([1; 32]),
            targets: SigningKey::from_seed([2; 32]),
            snapshot: SigningKey::from_seed([3; 32]),
            timestamp: SigningKey::from_seed([4; 32]),
            publisher: SigningKey::from_seed([5; 32]),
        }
    }

    pub fn create(&self, now: DateTime<Utc>) -> Repository {
        Repository::create(
            &InitKeys {
                root: vec![&self.root],
                root_threshold: 1,
                targets: &self.targets,
                snapshot: &self.snapshot,
                timestamp: &self.timestamp,
            },
            now,
            Expiry::default(),
        )
        .expect("create repository")
    }

    pub fn publish(&self, repo: &mut Repository, now: DateTime<Utc>) {
        repo.snapshot_and_timestamp(&self.snapshot, &self.timestamp, now).expect("snapshot and timestamp");
    }
}

/// A repository with one publisher (`alice`, app `hello-web`) and one target.
pub fn repo_with_target(dir: &Path, keys: &TestKeys, body: &[u8]) -> Repository {
    let mut repo = keys.create(t0());
    repo.add_publisher("alice", &keys.publisher.did(), &["hello-web"], &keys.targets, t0()).expect("add publisher");
    repo.add_publisher_target("alice", "apps/hello-web/1.0.0.json", body.to_vec(), "manifest", &keys.publisher, t0())
        .expect("add target");
    keys.publish(&mut repo, t0());
    repo.write_dir(dir).expect("write");
    repo
}

/// A client store trusting the repository's version-1 root.
pub fn bootstrap(dir: &Path) -> MemStore {
    MemStore::with_root(std::fs::read(dir.join("metadata/1.root.json")).expect("1.root.json"))
}

pub fn updater(dir: &Path, store: MemStore, now: DateTime<Utc>) -> Updater<DirRemote, MemStore> {
    Updater::new(DirRemote::new(dir), store, now, Config::default()).expect("updater")
}
