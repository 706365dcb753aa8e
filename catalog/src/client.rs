//! The TUF client update workflow (TUF 1.0 spec §5, "Detailed client workflow"), as pure code.
//!
//! Bytes come from a [`Remote`] (HTTP, iroh, a test fake) and trusted metadata is kept in a
//! [`LocalStore`]; the update start time is a parameter fixed for the whole update (§5.1). The
//! steps run in the spec's order:
//!
//! 1. §5.2 load the trusted root from the local store (it must be signed by its own threshold);
//! 2. §5.3 update root: fetch `N+1.root.json` until 404/403, each signed by a threshold of the
//!    old *and* the new root's keys and exactly one version newer, at most
//!    [`Config::max_root_rotations`] steps; then the final root must not be expired;
//! 3. §5.4 timestamp: signed by the root's timestamp keys, version not older than the trusted one
//!    (equal means "nothing new"), snapshot version not older, not expired;
//! 4. §5.5 snapshot: length and hashes as the timestamp says, signed by the snapshot keys, no
//!    targets role's version may go back or disappear, version equal to the timestamp's, not expired;
//! 5. §5.6 targets: length, hashes and version as the snapshot says, signed by the delegating
//!    role's keys, not expired; delegations searched in pre-order depth first (§5.6.7), honouring
//!    `terminating`, visiting at most [`Config::max_delegations`] roles.
//!
//! Fast-forward recovery (§5.3.11) needs no special case: after a key rotation, locally stored
//! timestamp or snapshot metadata no longer verifies against the new root and is not used as the
//! rollback reference.
//!
//! Every file read is bounded: by the length signed for it, or by a [`Config`] limit when no length
//! is signed (§5.4.1 "the client MUST download up to some X number of bytes").

pub mod local;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::hash::HashError;
use crate::keys::PublicKey;
use crate::metadata::{
    DelegationIndex, MetaFile, MetadataError, Role, Root, SignedMetadata, Snapshot, TargetFile, Targets, Timestamp,
};

/// The bound on a targets role's metadata file when the snapshot signs no length (5 MB, the value
/// python-tuf uses): [`Config::targets_max_length`] by default, and the largest `metadata` part an
/// origin takes in a submission, so it never accepts a role nodes would refuse to fetch.
pub const TARGETS_MAX_LENGTH: u64 = 5_000_000;

/// Limits and knobs of the update workflow. The defaults are the values python-tuf uses.
#[derive(Clone, Debug)]
pub struct Config {
    /// Most root versions fetched in one update (§5.3.3).
    pub max_root_rotations: u64,
    /// Most delegated roles visited in one target search (§5.6.7).
    pub max_delegations: usize,
    /// Bound on `root.json` bytes.
    pub root_max_length: u64,
    /// Bound on `timestamp.json` bytes (it carries no signed length).
    pub timestamp_max_length: u64,
    /// Bound on `snapshot.json` when the timestamp signs no length.
    pub snapshot_max_length: u64,
    /// Bound on targets metadata when the snapshot signs no length.
    pub targets_max_length: u64,
    /// Prefix target file names with their hash when consistent snapshots are on (§5.7.3).
    pub prefix_targets_with_hash: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_root_rotations: 256,
            max_delegations: 32,
            root_max_length: 512_000,
            timestamp_max_length: 16_384,
            snapshot_max_length: 2_000_000,
            targets_max_length: TARGETS_MAX_LENGTH,
            prefix_targets_with_hash: true,
        }
    }
}

/// Why a fetch failed. `NotFound` (HTTP 404/403) ends the root rotation loop normally (§5.3.3).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// The file does not exist at the remote.
    #[error("not found")]
    NotFound,
    /// The remote sent more than the allowed bytes.
    #[error("more than {limit} bytes")]
    TooLarge {
        /// The bound that was exceeded.
        limit: u64,
    },
    /// Nothing (or not all of it) arrived in time.
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// Any other failure (connection, server error).
    #[error("{0}")]
    Other(String),
}

/// Where metadata and target bytes come from.
pub trait Remote {
    /// Fetches metadata file `name` (`timestamp.json`, `3.root.json`, `2.snapshot.json`,
    /// `5.<role>.json`, with the role name percent-encoded) reading at most `max_length` bytes.
    fn fetch_metadata(&mut self, name: &str, max_length: u64) -> Result<Vec<u8>, FetchError>;
    /// Fetches a target file by its (possibly hash-prefixed) path, reading at most `max_length`.
    fn fetch_target(&mut self, path: &str, max_length: u64) -> Result<Vec<u8>, FetchError>;
}

/// Where trusted metadata is kept between updates. Names are role names (`root`, `timestamp`,
/// a delegated role's name); the store decides how to name files (archy percent-encodes them).
pub trait LocalStore {
    /// The last trusted bytes of a role, if any.
    fn load(&self, role: &str) -> Option<Vec<u8>>;
    /// Replaces the stored bytes of a role; must be atomic (write, fsync, rename).
    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), String>;
}

/// Why an update or a target download failed. Each refusal is its own variant and names the role
/// or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// No trusted root in the local store.
    #[error("no trusted root.json in the local metadata store; initialize with a root first")]
    NoTrustedRoot,
    /// Structure or signature problems.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A fetch failed.
    #[error("fetching {file}: {source}")]
    Fetch {
        /// The file.
        file: String,
        /// The failure.
        source: FetchError,
    },
    /// Metadata is past its expiry at the update start time (§5.3.10, §5.4.5, §5.5.6, §5.6.6).
    #[error("{role} metadata expired at {expires}")]
    Expired {
        /// The role.
        role: String,
        /// Its expiry.
        expires: DateTime<Utc>,
    },
    /// A version went backwards (§5.4.3, §5.4.4, §5.5.5): a rollback attack.
    #[error("rollback: {role} version {new} is older than the trusted version {trusted}")]
    Rollback {
        /// The role (or `snapshot.json` entry).
        role: String,
        /// Trusted version.
        trusted: u64,
        /// Offered version.
        new: u64,
    },
    /// A version is not the one the referencing metadata names (§5.3.5, §5.5.4, §5.6.4).
    #[error("{role} has version {found}; expected {expected}")]
    VersionMismatch {
        /// The role.
        role: String,
        /// Version required.
        expected: u64,
        /// Version found.
        found: u64,
    },
    /// A role listed in trusted snapshot metadata is missing from the new one (§5.5.5).
    #[error("new snapshot drops `{0}`, which the trusted snapshot lists")]
    SnapshotDropsRole(String),
    /// A delegated role is not listed in the snapshot (§5.6.1): mix-and-match.
    #[error("role `{0}` is not listed in the trusted snapshot")]
    NotInSnapshot(String),
    /// Length or hash mismatch of a metadata or target file.
    #[error("{file}: {source}")]
    Hash {
        /// The file.
        file: String,
        /// The mismatch.
        source: HashError,
    },
    /// The root chain is longer than the rotation cap allows in one update (§5.3.3).
    #[error("root rotation stopped after {0} new versions; run the update again")]
    TooManyRootRotations(u64),
    /// Storing trusted metadata failed.
    #[error("storing {role}: {reason}")]
    Store {
        /// The role.
        role: String,
        /// Why.
        reason: String,
    },
    /// The update order was violated by the caller.
    #[error("{0}")]
    Order(&'static str),
}

/// A target whose description was found through a verified chain of targets metadata.
///
/// Only [`Updater::target_info`] makes one: holding it proves the length and hashes come from
/// metadata that passed every check of §5.
#[derive(Clone, Debug)]
pub struct VerifiedTarget {
    path: String,
    file: TargetFile,
    role: String,
    role_keyids: Vec<crate::keys::KeyId>,
}

impl VerifiedTarget {
    /// The target path.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The signed description (length, hashes, custom).
    pub fn file(&self) -> &TargetFile {
        &self.file
    }
    /// The role whose metadata lists the target.
    pub fn role(&self) -> &str {
        &self.role
    }
    /// The key ids that role's metadata was verified with (its delegation's keys).
    pub fn role_keyids(&self) -> &[crate::keys::KeyId] {
        &self.role_keyids
    }
    /// Checks bytes against the signed length and every hash (§5.7.3).
    pub fn verify(&self, data: &[u8]) -> Result<(), UpdateError> {
        self.file.verify_bytes(data).map_err(|source| UpdateError::Hash { file: self.path.clone(), source })
    }
}

/// Trusted metadata of one update, with private fields: values get in only through the checks.
#[derive(Debug, Default)]
struct TrustedSet {
    root: Option<SignedMetadata<Root>>,
    timestamp: Option<SignedMetadata<Timestamp>>,
    snapshot: Option<SignedMetadata<Snapshot>>,
    targets: BTreeMap<String, SignedMetadata<Targets>>,
    /// Path index of each loaded targets role's delegations.
    indexes: BTreeMap<String, DelegationIndex>,
    /// (role, delegator) pairs whose signature check has passed in this update.
    verified_by: std::collections::BTreeSet<(String, String)>,
}

/// A TUF client bound to a remote and a local store, with a fixed update start time.
pub struct Updater<R, S> {
    remote: R,
    store: S,
    now: DateTime<Utc>,
    config: Config,
    trusted: TrustedSet,
}

fn expired<T: Role>(md: &SignedMetadata<T>, role: &str, now: DateTime<Utc>) -> Result<(), UpdateError> {
    if md.signed.is_expired(now) {
        return Err(UpdateError::Expired { role: role.into(), expires: md.signed.expires() });
    }
    Ok(())
}

/// Percent-encodes a role name for use as a file name, like Python's `quote(name, safe="")`.
pub fn encode_role_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl<R: Remote, S: LocalStore> Updater<R, S> {
    /// Loads the trusted root from `store` (§5.2); `now` is the fixed update start time (§5.1).
    pub fn new(remote: R, store: S, now: DateTime<Utc>, config: Config) -> Result<Self, UpdateError> {
        let bytes = store.load("root").ok_or(UpdateError::NoTrustedRoot)?;
        let root = SignedMetadata::<Root>::from_slice(&bytes, "root")?;
        // §5.2: the trusted root is signed by a threshold of its own root keys.
        verify_top_level(&root, &root, "root")?;
        Ok(Self { remote, store, now, config, trusted: TrustedSet { root: Some(root), ..TrustedSet::default() } })
    }

    /// The local store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The remote.
    pub fn remote(&self) -> &R {
        &self.remote
    }

    /// The remote, mutably.
    pub fn remote_mut(&mut self) -> &mut R {
        &mut self.remote
    }

    fn root(&self) -> &SignedMetadata<Root> {
        // `new` always sets the root and nothing removes it.
        self.trusted.root.as_ref().unwrap_or_else(|| unreachable!("root is set in Updater::new"))
    }

    /// The trusted root (after `refresh`, the newest verified one).
    pub fn trusted_root(&self) -> &Root {
        &self.root().signed
    }

    /// The trusted timestamp, once loaded.
    pub fn trusted_timestamp(&self) -> Option<&Timestamp> {
        self.trusted.timestamp.as_ref().map(|m| &m.signed)
    }

    /// The trusted snapshot, once loaded.
    pub fn trusted_snapshot(&self) -> Option<&Snapshot> {
        self.trusted.snapshot.as_ref().map(|m| &m.signed)
    }

    /// The trusted top-level targets, once loaded.
    pub fn trusted_targets(&self) -> Option<&Targets> {
        self.trusted.targets.get("targets").map(|m| &m.signed)
    }

    /// Runs §5.3–§5.6 for the top-level roles.
    pub fn refresh(&mut self) -> Result<(), UpdateError> {
        self.load_root()?;
        self.load_timestamp()?;
        self.load_snapshot()?;
        self.load_targets("targets", "root")?;
        Ok(())
    }

    fn fetch(&mut self, name: String, max: u64) -> Result<Vec<u8>, UpdateError> {
        self.remote.fetch_metadata(&name, max).map_err(|source| UpdateError::Fetch { file: name, source })
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), UpdateError> {
        self.store.persist(role, bytes).map_err(|reason| UpdateError::Store { role: role.into(), reason })
    }

    /// §5.3: the root rotation loop.
    fn load_root(&mut self) -> Result<(), UpdateError> {
        if self.trusted.timestamp.is_some() {
            return Err(UpdateError::Order("root cannot change after the timestamp was loaded"));
        }
        let start = self.root().signed.version;
        let cap = self.config.max_root_rotations;
        for next in start + 1..=start + cap {
            let bytes = match self.fetch(format!("{next}.root.json"), self.config.root_max_length) {
                Ok(bytes) => bytes,
                // §5.3.3: a missing N+1 root means the trusted root is the newest.
                Err(UpdateError::Fetch { source: FetchError::NotFound, .. }) => break,
                Err(e) => return Err(e),
            };
            self.update_root(&bytes)?;
            self.persist("root", &bytes)?;
        }
        // §5.3.10: the final root must not be expired (checked when the timestamp is loaded, so a
        // caller can still see the newest root); §5.3.3 cap reached means more may exist.
        Ok(())
    }

    fn update_root(&mut self, bytes: &[u8]) -> Result<(), UpdateError> {
        let new = SignedMetadata::<Root>::from_slice(bytes, "root")?;
        let trusted = self.root();
        // §5.3.4: signed by a threshold of keys of the trusted root …
        verify_top_level(trusted, &new, "root")?;
        // §5.3.5: … its version is exactly trusted + 1 …
        let expected = trusted.signed.version + 1;
        if new.signed.version != expected {
            return Err(UpdateError::VersionMismatch { role: "root".into(), expected, found: new.signed.version });
        }
        // §5.3.4: … and it is signed by a threshold of its own keys.
        verify_top_level(&new, &new, "root")?;
        self.trusted.root = Some(new);
        Ok(())
    }

    /// §5.4: timestamp.
    fn load_timestamp(&mut self) -> Result<(), UpdateError> {
        // The locally trusted timestamp is the rollback reference, if it still verifies under the
        // current root (after a timestamp key rotation it does not: fast-forward recovery §5.3.11).
        // An expired local timestamp still serves as that reference (it is kept, then reported).
        if let Some(local) = self.store.load("timestamp") {
            let _ = self.update_timestamp(&local);
        }
        let bytes = self.fetch("timestamp.json".into(), self.config.timestamp_max_length)?;
        match self.update_timestamp(&bytes) {
            Ok(true) => self.persist("timestamp", &bytes),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Returns `Ok(false)` when the new timestamp has the trusted version (nothing new).
    fn update_timestamp(&mut self, bytes: &[u8]) -> Result<bool, UpdateError> {
        if self.trusted.snapshot.is_some() {
            return Err(UpdateError::Order("timestamp cannot change after the snapshot was loaded"));
        }
        // §5.3.10: the final root must not be expired.
        expired(self.root(), "root", self.now)?;
        let new = SignedMetadata::<Timestamp>::from_slice(bytes, "timestamp")?;
        // §5.4.2: signed by a threshold of the root's timestamp keys.
        verify_top_level(self.root(), &new, "timestamp")?;
        if let Some(trusted) = &self.trusted.timestamp {
            // §5.4.3: the version must not go back; an equal version changes nothing.
            if new.signed.version < trusted.signed.version {
                return Err(UpdateError::Rollback {
                    role: "timestamp".into(),
                    trusted: trusted.signed.version,
                    new: new.signed.version,
                });
            }
            if new.signed.version == trusted.signed.version {
                return Ok(false);
            }
            // §5.4.4: the snapshot version it names must not go back either.
            let (old_snap, new_snap) = (trusted.signed.snapshot_meta().version, new.signed.snapshot_meta().version);
            if new_snap < old_snap {
                return Err(UpdateError::Rollback { role: "snapshot".into(), trusted: old_snap, new: new_snap });
            }
        }
        // Kept even if expired, so it can serve as the rollback reference; §5.4.5 expiry is then
        // reported as a failure of this update.
        self.trusted.timestamp = Some(new);
        let ts = self.trusted.timestamp.as_ref().unwrap_or_else(|| unreachable!("just set"));
        expired(ts, "timestamp", self.now)?;
        Ok(true)
    }

    /// §5.5: snapshot.
    fn load_snapshot(&mut self) -> Result<(), UpdateError> {
        // A locally trusted snapshot that is still the one the timestamp names is final.
        if let Some(local) = self.store.load("snapshot")
            && self.update_snapshot(&local, true).is_ok()
        {
            return Ok(());
        }
        let ts = self.trusted.timestamp.as_ref().ok_or(UpdateError::Order("snapshot needs a timestamp"))?;
        let meta = ts.signed.snapshot_meta().clone();
        let max = meta.length.unwrap_or(self.config.snapshot_max_length);
        let name = if self.root().signed.consistent_snapshot {
            format!("{}.snapshot.json", meta.version)
        } else {
            "snapshot.json".into()
        };
        let bytes = self.fetch(name, max)?;
        self.update_snapshot(&bytes, false)?;
        self.persist("snapshot", &bytes)
    }

    fn update_snapshot(&mut self, bytes: &[u8], trusted_local: bool) -> Result<(), UpdateError> {
        if !self.trusted.targets.is_empty() {
            return Err(UpdateError::Order("snapshot cannot change after targets were loaded"));
        }
        let ts = self.trusted.timestamp.as_ref().ok_or(UpdateError::Order("snapshot needs a timestamp"))?;
        // §5.4.5: the timestamp in use must not be expired.
        expired(ts, "timestamp", self.now)?;
        let meta = ts.signed.snapshot_meta().clone();
        if !trusted_local {
            // §5.5.2: length and hashes as the timestamp lists them.
            verify_meta_file(&meta, "snapshot.json", bytes)?;
        }
        let new = SignedMetadata::<Snapshot>::from_slice(bytes, "snapshot")?;
        // §5.5.3: signed by a threshold of the root's snapshot keys.
        verify_top_level(self.root(), &new, "snapshot")?;
        if let Some(trusted) = &self.trusted.snapshot {
            // §5.5.5: no targets metadata file may disappear or go back in version.
            for (name, old) in &trusted.signed.meta {
                let Some(current) = new.signed.meta.get(name) else {
                    return Err(UpdateError::SnapshotDropsRole(name.clone()));
                };
                if current.version < old.version {
                    return Err(UpdateError::Rollback {
                        role: name.clone(),
                        trusted: old.version,
                        new: current.version,
                    });
                }
            }
        }
        self.trusted.snapshot = Some(new);
        self.check_final_snapshot()
    }

    /// §5.5.4 version equals the timestamp's; §5.5.6 not expired.
    fn check_final_snapshot(&self) -> Result<(), UpdateError> {
        let snap = self.trusted.snapshot.as_ref().ok_or(UpdateError::Order("no snapshot"))?;
        expired(snap, "snapshot", self.now)?;
        let ts = self.trusted.timestamp.as_ref().ok_or(UpdateError::Order("no timestamp"))?;
        let expected = ts.signed.snapshot_meta().version;
        if snap.signed.version != expected {
            return Err(UpdateError::VersionMismatch { role: "snapshot".into(), expected, found: snap.signed.version });
        }
        Ok(())
    }

    /// §5.6: loads targets metadata of `role`, delegated by `delegator`.
    fn load_targets(&mut self, role: &str, delegator: &str) -> Result<(), UpdateError> {
        if let Some(cached) = self.trusted.targets.get(role) {
            // Already trusted in this update, but re-check against *this* delegator's keys: the
            // same role name reached through another delegation must satisfy that one too.
            let pair = (role.to_owned(), delegator.to_owned());
            if !self.trusted.verified_by.contains(&pair) {
                self.verify_delegated(cached, role, delegator)?;
                self.trusted.verified_by.insert(pair);
            }
            return Ok(());
        }
        if let Some(local) = self.store.load(role)
            && self.update_targets(&local, role, delegator).is_ok()
        {
            return Ok(());
        }
        let snap = self.trusted.snapshot.as_ref().ok_or(UpdateError::Order("targets need a snapshot"))?;
        let meta = snap
            .signed
            .meta
            .get(&format!("{role}.json"))
            .cloned()
            .ok_or_else(|| UpdateError::NotInSnapshot(role.into()))?;
        let max = meta.length.unwrap_or(self.config.targets_max_length);
        let encoded = encode_role_name(role);
        let name = if self.root().signed.consistent_snapshot {
            format!("{}.{encoded}.json", meta.version)
        } else {
            format!("{encoded}.json")
        };
        let bytes = self.fetch(name, max)?;
        self.update_targets(&bytes, role, delegator)?;
        self.persist(role, &bytes)
    }

    fn update_targets(&mut self, bytes: &[u8], role: &str, delegator: &str) -> Result<(), UpdateError> {
        self.check_final_snapshot()?;
        let snap = self.trusted.snapshot.as_ref().ok_or(UpdateError::Order("targets need a snapshot"))?;
        // §5.6.1: the role must be listed in the snapshot (no mix-and-match).
        let meta = snap
            .signed
            .meta
            .get(&format!("{role}.json"))
            .cloned()
            .ok_or_else(|| UpdateError::NotInSnapshot(role.into()))?;
        // §5.6.2: length and hashes as the snapshot lists them.
        verify_meta_file(&meta, &format!("{role}.json"), bytes)?;
        let new = SignedMetadata::<Targets>::from_slice(bytes, role)?;
        // §5.6.3: signed by a threshold of the delegating role's keys for this role.
        self.verify_delegated(&new, role, delegator)?;
        // §5.6.4: version as the snapshot says.
        if new.signed.version != meta.version {
            return Err(UpdateError::VersionMismatch {
                role: role.into(),
                expected: meta.version,
                found: new.signed.version,
            });
        }
        // §5.6.6: not expired.
        expired(&new, role, self.now)?;
        if let Some(delegations) = &new.signed.delegations {
            self.trusted.indexes.insert(role.into(), DelegationIndex::new(delegations));
        }
        self.trusted.verified_by.insert((role.to_owned(), delegator.to_owned()));
        self.trusted.targets.insert(role.into(), new);
        Ok(())
    }

    fn verify_delegated(&self, md: &SignedMetadata<Targets>, role: &str, delegator: &str) -> Result<(), UpdateError> {
        if delegator == "root" {
            return verify_top_level(self.root(), md, role);
        }
        let parent = self
            .trusted
            .targets
            .get(delegator)
            .ok_or(UpdateError::Order("a delegated role is loaded only after its delegator"))?;
        let delegations =
            parent.signed.delegations.as_ref().ok_or_else(|| MetadataError::NotDelegated { role: role.into() })?;
        let (keyids, threshold) =
            delegations.role_keys(role).ok_or_else(|| MetadataError::NotDelegated { role: role.into() })?;
        md.verify_role(role, &delegations.keys, &keyids, threshold)?;
        Ok(())
    }

    /// Finds `path` through the delegation graph (§5.6.7: pre-order depth-first search from the
    /// top-level targets, honouring `terminating`, at most `max_delegations` roles). Refreshes the
    /// top-level metadata first if that has not happened in this update.
    pub fn target_info(&mut self, path: &str) -> Result<Option<VerifiedTarget>, UpdateError> {
        if !self.trusted.targets.contains_key("targets") {
            self.refresh()?;
        }
        let mut to_visit: Vec<(String, String)> = vec![("targets".into(), "root".into())];
        let mut visited: Vec<String> = Vec::new();
        while visited.len() <= self.config.max_delegations {
            let Some((role, parent)) = to_visit.pop() else { break };
            if visited.contains(&role) {
                continue;
            }
            self.load_targets(&role, &parent)?;
            let md = self.trusted.targets.get(&role).ok_or(UpdateError::Order("targets just loaded"))?;
            if let Some(file) = md.signed.targets.get(path) {
                let file = file.clone();
                let role_keyids = self.delegation_keyids(&role, &parent);
                return Ok(Some(VerifiedTarget { path: path.into(), file, role, role_keyids }));
            }
            let mut children = Vec::new();
            if let Some(delegations) = &md.signed.delegations {
                let index = self.trusted.indexes.get(&role).ok_or(UpdateError::Order("index built on load"))?;
                for (child, terminating) in delegations.roles_for_target_indexed(index, path) {
                    children.push((child, role.clone()));
                    if terminating {
                        // §5.6.7.2.1: a terminating delegation ends the search after this subtree.
                        to_visit.clear();
                        break;
                    }
                }
            }
            visited.push(role);
            children.reverse();
            to_visit.extend(children);
        }
        Ok(None)
    }

    /// Every target the repository offers, each as [`Updater::target_info`] resolves it (the
    /// same pre-order search with `terminating` honoured, so a role can't claim a path that the
    /// search would not reach it for). Loads every targets role reachable through delegations,
    /// at most `max_roles` of them, and fails if any of them does not verify; refreshes first if
    /// needed.
    pub fn all_targets(&mut self, max_roles: usize) -> Result<Vec<VerifiedTarget>, UpdateError> {
        if !self.trusted.targets.contains_key("targets") {
            self.refresh()?;
        }
        let mut to_visit: Vec<(String, String)> = vec![("targets".into(), "root".into())];
        let mut seen = std::collections::BTreeSet::new();
        let mut paths = std::collections::BTreeSet::new();
        while let Some((role, parent)) = to_visit.pop() {
            if !seen.insert(role.clone()) {
                continue;
            }
            if seen.len() > max_roles {
                return Err(UpdateError::Order("more targets roles than this client loads"));
            }
            // Every delegated role must verify: a role that fails would otherwise make its apps
            // silently vanish from the catalog (§5.6.3–§5.6.6 apply to each role loaded).
            self.load_targets(&role, &parent)?;
            let md = self.trusted.targets.get(&role).ok_or(UpdateError::Order("targets just loaded"))?;
            paths.extend(md.signed.targets.keys().cloned());
            if let Some(delegations) = &md.signed.delegations {
                for child in delegations.roles.iter().flatten().rev() {
                    to_visit.push((child.name.clone(), role.clone()));
                }
            }
        }
        let mut out = Vec::with_capacity(paths.len());
        for path in paths {
            if let Some(target) = self.target_info(&path)? {
                out.push(target);
            }
        }
        Ok(out)
    }

    /// Names of the targets roles trusted so far in this update.
    pub fn trusted_roles(&self) -> Vec<String> {
        self.trusted.targets.keys().cloned().collect()
    }

    fn delegation_keyids(&self, role: &str, delegator: &str) -> Vec<crate::keys::KeyId> {
        if delegator == "root" {
            return self.root().signed.role(role).map(|r| r.keyids.clone()).unwrap_or_default();
        }
        self.trusted
            .targets
            .get(delegator)
            .and_then(|p| p.signed.delegations.as_ref()?.role_keys(role))
            .map(|(keyids, _)| keyids)
            .unwrap_or_default()
    }

    /// The remote file name of a target: `<dir>/<hash>.<name>` with consistent snapshots (§5.7.3).
    pub fn target_remote_path(&self, target: &VerifiedTarget) -> String {
        let path = target.path();
        if !(self.root().signed.consistent_snapshot && self.config.prefix_targets_with_hash) {
            return path.to_owned();
        }
        let Some(hash) = target.file().hashes.values().next().and_then(|v| v.as_str()) else {
            return path.to_owned();
        };
        match path.rsplit_once('/') {
            Some((dir, base)) => format!("{dir}/{hash}.{base}"),
            None => format!("{hash}.{path}"),
        }
    }

    /// Downloads a target and checks it against its signed length and hashes (§5.7).
    pub fn download_target(&mut self, target: &VerifiedTarget) -> Result<Vec<u8>, UpdateError> {
        let remote_path = self.target_remote_path(target);
        let bytes = self
            .remote
            .fetch_target(&remote_path, target.file().length)
            .map_err(|source| UpdateError::Fetch { file: remote_path.clone(), source })?;
        target.verify(&bytes)?;
        Ok(bytes)
    }
}

fn verify_top_level<T: Role>(
    root: &SignedMetadata<Root>,
    md: &SignedMetadata<T>,
    role: &str,
) -> Result<(), UpdateError> {
    let keys = root.signed.role(role).ok_or_else(|| MetadataError::NotDelegated { role: role.into() })?;
    md.verify_role(role, &root.signed.keys, &keys.keyids, keys.threshold)?;
    Ok(())
}

fn verify_meta_file(meta: &MetaFile, file: &str, bytes: &[u8]) -> Result<(), UpdateError> {
    let err = |source| UpdateError::Hash { file: file.into(), source };
    if let Some(length) = meta.length {
        crate::hash::verify_length(length, bytes).map_err(err)?;
    }
    if let Some(hashes) = &meta.hashes {
        crate::hash::verify_hashes(hashes, bytes).map_err(err)?;
    }
    Ok(())
}

/// Keys are compared by content when a caller needs to know whether a key is in a role.
pub fn role_has_key(root: &Root, role: &str, key: &PublicKey) -> bool {
    let id = key.key_id();
    root.role(role).is_some_and(|r| r.keyids.contains(&id))
}
