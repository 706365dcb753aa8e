//! The harness of the catalog's integration tests: a repository with one delegated target
//! built with archy's own repository code, read back through an in-memory client store.

use std::path::Path;

use catalog::client::local::{DirRemote, MemoryStore};
use catalog::client::{Config, Updater};
use catalog::repo::Repository;
use catalog::testing::{TestKeys, t0};
use chrono::{DateTime, Utc};

/// A repository with one publisher (`alice`, app `hello-web`) and one target, written to `dir`.
pub(crate) fn repo_with_target(dir: &Path, keys: &TestKeys, body: &[u8]) -> Repository {
    let mut repo = keys.create(t0());
    repo.add_publisher("alice", &keys.publisher.did(), &["hello-web"], &keys.targets, t0()).expect("add publisher");
    repo.add_publisher_target("alice", "apps/hello-web/1.0.0.json", body.to_vec(), "manifest", &keys.publisher, t0())
        .expect("add target");
    keys.publish(&mut repo, t0());
    repo.write_dir(dir).expect("write");
    repo
}

/// A client store trusting the repository's version-1 root.
pub(crate) fn bootstrap(dir: &Path) -> MemoryStore {
    MemoryStore::with_root(std::fs::read(dir.join("metadata/1.root.json")).expect("1.root.json"))
}

/// A client of the repository in `dir` at time `now`.
pub(crate) fn updater(dir: &Path, store: MemoryStore, now: DateTime<Utc>) -> Updater<DirRemote, MemoryStore> {
    Updater::new(DirRemote::new(dir), store, now, Config::default()).expect("updater")
}
