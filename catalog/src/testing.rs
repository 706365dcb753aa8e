//! Builders for tests of archy and the crates built on it: deterministic keys, the example
//! manifest at any id and version, signed envelopes and a TUF repository's role keys.
//!
//! Compiled only for this crate's unit tests and with the `testing` feature, which other
//! crates enable in their `[dev-dependencies]`:
//!
//! ```toml
//! archy-catalog = { workspace = true, features = ["testing"] }
//! ```
//!
//! Every helper panics on failure instead of returning an error: a test that cannot build its
//! input has nothing left to check.
//!
//! ```
//! use catalog::manifest::Limits;
//! use catalog::testing::{TestApp, key};
//!
//! let publisher = key(7);
//! let bytes = TestApp::new("notes").version("1.2.0").envelope(&publisher);
//! let verified = catalog::envelope::SignedEnvelope::from_slice(&bytes)
//!     .and_then(|e| e.verify(&Limits::default()))
//!     .expect("verifies");
//! assert_eq!(verified.manifest().version.to_string(), "1.2.0");
//! assert_eq!(verified.publisher(), &publisher.did());
//! ```

use std::path::Path;

use chrono::{DateTime, TimeZone as _, Utc};

use crate::did::DidKey;
use crate::envelope::{SignedEnvelope, VerifiedManifest};
use crate::keys::SigningKey;
use crate::manifest::{Limits, Manifest, example_toml};
use crate::repo::{Expiry, InitKeys, Repository};

/// The version [`example_toml`] writes, which [`TestApp::version`] replaces.
const EXAMPLE_VERSION: &str = "0.1.0";

/// A deterministic signing key: the Ed25519 key whose seed is 32 bytes of `n`. The same `n`
/// gives the same key (and did:key) in every run, so fixtures are reproducible.
pub fn key(n: u8) -> SigningKey {
    SigningKey::from_seed([n; 32])
}

/// A fixed start time for tests that need one: 2026-01-01T00:00:00Z.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("2026-01-01 is a valid date")
}

/// Signs `manifest` with `key` and verifies the envelope again: the legitimate way to a
/// [`VerifiedManifest`]. `key` must be the manifest's publisher for the verification to pass.
pub fn verified(manifest: &Manifest, key: &SigningKey) -> VerifiedManifest {
    SignedEnvelope::sign(manifest, key).expect("sign").verify(&Limits::default()).expect("verify")
}

/// The example manifest of an app ([`example_toml`], what `archy app new` writes) at a chosen
/// version, ready to be written out, parsed or signed by a publisher key.
#[derive(Debug, Clone)]
pub struct TestApp {
    id: String,
    version: String,
}

impl TestApp {
    /// The example manifest of app `id` (a valid [`AppId`](crate::manifest::AppId)) at version
    /// `0.1.0`.
    pub fn new(id: &str) -> Self {
        Self { id: id.to_owned(), version: EXAMPLE_VERSION.to_owned() }
    }

    /// The same manifest at `version` (a semantic version).
    pub fn version(mut self, version: &str) -> Self {
        version.clone_into(&mut self.version);
        self
    }

    /// The `archy.toml` text, published by `publisher`.
    pub fn toml(&self, publisher: &DidKey) -> String {
        let text = example_toml(&self.id, publisher);
        if self.version == EXAMPLE_VERSION {
            return text;
        }
        // The first `version = "…"` line is the app's own; `min_node_version` comes later.
        text.replacen(&format!("version = \"{EXAMPLE_VERSION}\""), &format!("version = \"{}\"", self.version), 1)
    }

    /// Writes `<dir>/archy.toml` published by `publisher`, creating `dir`.
    pub fn write(&self, dir: &Path, publisher: &DidKey) {
        std::fs::create_dir_all(dir).expect("create the app folder");
        std::fs::write(dir.join(crate::manifest::MANIFEST_FILE), self.toml(publisher)).expect("write archy.toml");
    }

    /// The validated manifest, published by `publisher`'s did:key.
    pub fn manifest(&self, publisher: &SigningKey) -> Manifest {
        Manifest::from_toml_str(&self.toml(&publisher.did()), &Limits::default()).expect("the example manifest")
    }

    /// The manifest signed by `publisher`.
    pub fn sign(&self, publisher: &SigningKey) -> SignedEnvelope {
        SignedEnvelope::sign(&self.manifest(publisher), publisher).expect("sign")
    }

    /// The bytes of the manifest's envelope signed by `publisher`: what the catalog and Nostr
    /// carry.
    pub fn envelope(&self, publisher: &SigningKey) -> Vec<u8> {
        self.sign(publisher).to_bytes()
    }

    /// The manifest signed by `publisher` and verified again (see [`verified`]).
    pub fn verified(&self, publisher: &SigningKey) -> VerifiedManifest {
        verified(&self.manifest(publisher), publisher)
    }
}

/// The keys of a test repository: one key for each top-level role, and one publisher key for
/// the delegated role of a single publisher.
#[derive(Debug)]
pub struct TestKeys {
    /// The root key (threshold 1).
    pub root: SigningKey,
    /// The targets key, which signs delegations.
    pub targets: SigningKey,
    /// The snapshot key.
    pub snapshot: SigningKey,
    /// The timestamp key.
    pub timestamp: SigningKey,
    /// A publisher's key, for the repository's delegations.
    pub publisher: SigningKey,
    /// The transparency log's key, when the repository keeps a log named [`TEST_LOG`].
    pub log: Option<SigningKey>,
}

/// The name (checkpoint origin line) of the log of [`TestKeys::with_log`].
pub const TEST_LOG: &str = "archy.test/log";

impl TestKeys {
    /// Deterministic keys: [`key`]`(1)` to `key(4)` for root, targets, snapshot and timestamp,
    /// `key(5)` for the publisher.
    pub fn fixed() -> Self {
        Self { root: key(1), targets: key(2), snapshot: key(3), timestamp: key(4), publisher: key(5), log: None }
    }

    /// These keys with a log key ([`key`]`(6)`): repositories they create keep a transparency log.
    pub fn with_log(mut self) -> Self {
        self.log = Some(key(6));
        self
    }

    /// Fresh random keys.
    pub fn generate() -> Self {
        Self {
            root: SigningKey::generate(),
            targets: SigningKey::generate(),
            snapshot: SigningKey::generate(),
            timestamp: SigningKey::generate(),
            publisher: SigningKey::generate(),
            log: None,
        }
    }

    /// The keys [`Repository::create`] takes: one root key with threshold 1.
    pub fn init_keys(&self) -> InitKeys<'_> {
        InitKeys {
            root: vec![&self.root],
            root_threshold: 1,
            targets: &self.targets,
            snapshot: &self.snapshot,
            timestamp: &self.timestamp,
            log: self.log.as_ref().map(|k| (TEST_LOG, k)),
        }
    }

    /// A new repository signed with these keys at `now`, with the default expiry periods.
    pub fn create(&self, now: DateTime<Utc>) -> Repository {
        Repository::create(&self.init_keys(), now, Expiry::default()).expect("create repository")
    }

    /// Signs a new snapshot and timestamp of `repo` at `now`.
    pub fn publish(&self, repo: &mut Repository, now: DateTime<Utc>) {
        repo.snapshot_and_timestamp(&self.snapshot, &self.timestamp, now).expect("snapshot and timestamp");
    }

    /// Makes the folder `archy repo init` makes at `now`: the repository's metadata in
    /// `<dir>/repository/` and the role keys in `<dir>/keys/` (`root-1.key`, `targets.key`,
    /// `snapshot.key`, `timestamp.key`, and `log.key` with a log). Returns the repository.
    pub fn init_folder(&self, dir: &Path, now: DateTime<Utc>) -> Repository {
        for (name, key) in [
            ("root-1", &self.root),
            ("targets", &self.targets),
            ("snapshot", &self.snapshot),
            ("timestamp", &self.timestamp),
        ] {
            crate::keyfile::write_new(&dir.join(format!("keys/{name}.key")), key).expect("write key file");
        }
        if let Some(log) = &self.log {
            crate::keyfile::write_new(&dir.join("keys/log.key"), log).expect("write key file");
        }
        let mut repo = self.create(now);
        repo.write_dir(&dir.join("repository")).expect("write repository");
        repo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_app_at_a_version_validates_with_that_version() {
        let publisher = key(9);
        let manifest = TestApp::new("notes").version("2.3.4").manifest(&publisher);
        assert_eq!(manifest.version.to_string(), "2.3.4");
        assert_eq!(manifest.min_node_version.to_string(), EXAMPLE_VERSION);
        assert_eq!(manifest.publisher, publisher.did());
    }

    #[test]
    fn fixed_keys_are_the_same_every_time() {
        assert_eq!(TestKeys::fixed().root.did(), key(1).did());
        assert_eq!(TestKeys::fixed().publisher.did(), TestKeys::fixed().publisher.did());
    }
}
