//! The repository side: create, extend and sign an archy catalog as a TUF repository, and write it
//! as a consistent-snapshot directory tree (TUF 1.0 spec §7).
//!
//! Layout of a repository directory:
//!
//! ```text
//! metadata/1.root.json, 2.root.json, …   every root version, for the client's rotation chain (§5.3)
//! metadata/root.json                     the newest root (bootstrap copy)
//! metadata/<V>.targets.json              top-level targets: the origin's curation and delegations
//! metadata/<V>.<publisher>.json          one delegated targets role per publisher
//! metadata/<V>.snapshot.json
//! metadata/timestamp.json                written last: the switch to a new catalog version
//! targets/apps/<id>/<sha256>.<version>.json        signed manifest envelopes
//! targets/images/<id>/<sha256>.<file>            image archives (manifest `archive.target` = `<id>/<file>`)
//! ```
//!
//! Every file except `timestamp.json` and `root.json` is named by version or hash and never
//! rewritten with other bytes; `timestamp.json` is replaced atomically after everything it
//! references exists, so a reader sees either the old or the new catalog, never a mix.
//!
//! Target files carry `hashes.sha256` (what every TUF client checks) and archy's BLAKE3 content
//! address in `custom.archy.blake3` (signed just the same; see docs/repository.md for why it is
//! not in `hashes`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};
use sha2::Digest as _;

use crate::did::DidKey;
use crate::keylife::{ROLE_STATE_FIELD, RoleKeyState, RoleState};
use crate::keys::{PublicKey, SigningKey};
use crate::metadata::{
    DelegatedRole, Delegations, MetaFile, MetadataError, RoleKeys, Root, SPEC_VERSION, SignedMetadata, Snapshot,
    TOP_LEVEL_ROLES, TargetFile, Targets, Timestamp,
};

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// Metadata could not be built, parsed or verified.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// Filesystem access failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A key does not belong to the role it is used for.
    #[error("key {keyid} is not a {role} key of this repository")]
    WrongKey {
        /// The role.
        role: String,
        /// The offered key.
        keyid: String,
    },
    /// No publisher role with this name or key.
    #[error("no publisher role {0} in this repository; add it with `archy repo add-publisher`")]
    UnknownPublisher(String),
    /// The role's key was rotated or revoked: the origin accepts nothing more from it.
    #[error("publisher role `{role}` is {}: the origin accepts no new version from its key{}", state.state_word(), state.successor.as_ref().map(|s| format!("; publish with the key of role `{s}`")).unwrap_or_default())]
    Retired {
        /// The role.
        role: String,
        /// Its recorded state.
        state: RoleKeyState,
    },
    /// A target path outside what the role was delegated.
    #[error("role `{role}` is not delegated target path `{path}`")]
    PathNotDelegated {
        /// The role.
        role: String,
        /// The path.
        path: String,
    },
    /// A target's SHA-256 is not 64 hex digits. The file is stored and served under a name made
    /// from it (`<dir>/<sha256>.<name>`, [`consistent_target_path`]), so any other value would
    /// name another file.
    #[error("target `{path}` does not give its SHA-256 as 64 hex digits")]
    BadTargetHash {
        /// The target path.
        path: String,
    },
    /// A role's new version does not move forward.
    #[error("role `{role}` version {new} does not move forward from {current}")]
    VersionNotIncreasing {
        /// The role.
        role: String,
        /// Current version.
        current: u64,
        /// Offered version.
        new: u64,
    },
    /// A versioned file already exists with other bytes: consistent snapshots never rewrite.
    #[error("{0} already exists with different content; versioned files are immutable")]
    Immutable(PathBuf),
    /// The repository directory is incomplete or inconsistent.
    #[error("repository at {path}: {reason}")]
    Layout {
        /// The directory.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// An invalid argument (role name, threshold, path).
    #[error("{0}")]
    Invalid(String),
}

/// How long each role's metadata stays valid after it is signed.
#[derive(Clone, Debug)]
pub struct Expiry {
    /// Root: rarely re-signed, by offline keys.
    pub root: TimeDelta,
    /// Top-level targets.
    pub targets: TimeDelta,
    /// Publisher roles.
    pub delegated: TimeDelta,
    /// Snapshot.
    pub snapshot: TimeDelta,
    /// Timestamp: short, so a frozen catalog is noticed quickly (re-signed by the origin).
    pub timestamp: TimeDelta,
}

impl Default for Expiry {
    fn default() -> Self {
        Self {
            root: TimeDelta::days(365),
            targets: TimeDelta::days(90),
            delegated: TimeDelta::days(90),
            snapshot: TimeDelta::days(7),
            timestamp: TimeDelta::days(1),
        }
    }
}

/// The initial keys of a new repository.
pub struct InitKeys<'a> {
    /// Root keys (offline).
    pub root: Vec<&'a SigningKey>,
    /// How many root keys must sign.
    pub root_threshold: u64,
    /// Targets key.
    pub targets: &'a SigningKey,
    /// Snapshot key (online).
    pub snapshot: &'a SigningKey,
    /// Timestamp key (online).
    pub timestamp: &'a SigningKey,
    /// The transparency log's name (its checkpoints' origin line) and key (online), when the
    /// catalog keeps one ([`crate::tlog`]); the root names it.
    pub log: Option<(&'a str, &'a SigningKey)>,
}

/// A repository in memory: the newest metadata of every role plus files not yet written.
pub struct Repository {
    new_roots: Vec<SignedMetadata<Root>>,
    root: SignedMetadata<Root>,
    targets: SignedMetadata<Targets>,
    delegated: BTreeMap<String, SignedMetadata<Targets>>,
    snapshot: SignedMetadata<Snapshot>,
    timestamp: SignedMetadata<Timestamp>,
    pending_files: BTreeMap<String, Vec<u8>>,
    expiry: Expiry,
    /// The log key, when the root names a log ([`Repository::set_log_key`]).
    log_key: Option<SigningKey>,
}

fn trunc(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// The target path of a manifest envelope.
pub fn envelope_target_path(app_id: &str, version: &semver::Version) -> String {
    format!("apps/{app_id}/{version}.json")
}

/// The delegation path patterns that give a publisher an app id.
pub fn app_paths(app_id: &str) -> [String; 2] {
    [format!("apps/{app_id}/*"), format!("images/{app_id}/*")]
}

/// The TUF target path of an image archive a manifest names as `<app-id>/<file>`.
pub fn image_target_path(archive_target: &str) -> String {
    format!("images/{archive_target}")
}

/// The image types an app icon may have, by file extension, with their media types.
pub const ICON_TYPES: [(&str, &str); 5] = [
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("webp", "image/webp"),
];

/// The TUF target path of an app version's icon, from the icon file's name (its extension,
/// lower-cased, must be one of [`ICON_TYPES`]): `images/<app>/icon-<version>.<ext>`. Under
/// `images/`, so nodes fetch it only when something asks for it; the marketplace serves it.
pub fn icon_target_path(app_id: &str, version: &semver::Version, icon_file: &str) -> Option<String> {
    let ext = std::path::Path::new(icon_file).extension()?.to_str()?.to_ascii_lowercase();
    ICON_TYPES.iter().any(|(e, _)| *e == ext).then(|| format!("images/{app_id}/icon-{version}.{ext}"))
}

/// The media type of an icon target path (`None` for anything else).
pub fn icon_media_type(target_path: &str) -> Option<&'static str> {
    let ext = target_path.rsplit_once('.')?.1;
    ICON_TYPES.iter().find(|(e, _)| *e == ext).map(|(_, t)| *t)
}

/// Validates a publisher role name: it becomes a file name and a URL path segment.
pub fn check_role_name(name: &str) -> Result<(), RepoError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !TOP_LEVEL_ROLES.contains(&name);
    if ok {
        Ok(())
    } else {
        Err(RepoError::Invalid(format!("publisher name `{name}` must be 1-64 of [a-z0-9-] and not a top-level role")))
    }
}

/// The TUF file description of `bytes`: length, `sha256`, and `custom.archy.blake3`.
pub fn target_file(bytes: &[u8], kind: &str) -> TargetFile {
    let mut hashes = Map::new();
    hashes.insert("sha256".into(), Value::String(hex::encode(sha2::Sha256::digest(bytes))));
    TargetFile {
        length: bytes.len() as u64,
        hashes,
        custom: Some(serde_json::json!({"archy": {"blake3": blake3::hash(bytes).to_hex().to_string(), "kind": kind}})),
        unknown: Map::new(),
    }
}

/// Where a target is stored under `targets/` with consistent snapshots: `<dir>/<sha256>.<name>`.
pub fn consistent_target_path(path: &str, file: &TargetFile) -> String {
    let hash = file.hashes.get("sha256").and_then(Value::as_str).unwrap_or_default();
    match path.rsplit_once('/') {
        Some((dir, base)) => format!("{dir}/{hash}.{base}"),
        None => format!("{hash}.{path}"),
    }
}

/// Checks that every target of `targets` gives its SHA-256 as 64 hex digits (TUF 1.0 §4.5:
/// `HASHES` are hex digests), as [`consistent_target_path`] names the stored file after it
/// (§5.7.3): any other value, such as `../../../../keys/timestamp`, would name a file outside the
/// role's folder of `targets/`.
pub fn check_target_hashes(targets: &Targets) -> Result<(), RepoError> {
    let is_digest = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
    for (path, file) in &targets.targets {
        if !file.hashes.get("sha256").and_then(Value::as_str).is_some_and(is_digest) {
            return Err(RepoError::BadTargetHash { path: path.clone() });
        }
    }
    Ok(())
}

fn check_key(role: &str, root: &Root, key: &SigningKey) -> Result<(), RepoError> {
    let keyid = key.key_id();
    if root.role(role).is_some_and(|r| r.keyids.contains(&keyid)) {
        Ok(())
    } else {
        Err(RepoError::WrongKey { role: role.into(), keyid })
    }
}

impl Repository {
    /// A new repository: version 1 of every top-level role, consistent snapshots on.
    pub fn create(keys: &InitKeys<'_>, now: DateTime<Utc>, expiry: Expiry) -> Result<Self, RepoError> {
        let now = trunc(now);
        if keys.root.is_empty() || keys.root_threshold < 1 || keys.root_threshold > keys.root.len() as u64 {
            return Err(RepoError::Invalid(format!(
                "root threshold {} needs 1..={} root keys",
                keys.root_threshold,
                keys.root.len()
            )));
        }
        let mut all_keys = BTreeMap::new();
        let mut role = |name: &str, ks: &[&SigningKey], threshold: u64| {
            let keyids = ks.iter().map(|k| {
                all_keys.insert(k.key_id(), k.public_key());
                k.key_id()
            });
            (name.to_owned(), RoleKeys { keyids: keyids.collect(), threshold, unknown: Map::new() })
        };
        let roles: BTreeMap<String, RoleKeys> = [
            role("root", &keys.root, keys.root_threshold),
            role("targets", &[keys.targets], 1),
            role("snapshot", &[keys.snapshot], 1),
            role("timestamp", &[keys.timestamp], 1),
        ]
        .into_iter()
        .collect();
        let mut root = Root {
            kind: "root".into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            expires: now + expiry.root,
            consistent_snapshot: true,
            keys: all_keys,
            roles,
            unknown: Map::new(),
        };
        if let Some((name, key)) = keys.log {
            let log = crate::tlog::NoteKey::log(name, key.verifying_key())
                .map_err(|e| RepoError::Invalid(format!("the log name: {e}")))?;
            root.set_log(&log);
        }
        let root = SignedMetadata::sign(root, &keys.root)?;
        let targets = SignedMetadata::sign(
            Targets {
                kind: "targets".into(),
                spec_version: SPEC_VERSION.into(),
                version: 1,
                expires: now + expiry.targets,
                targets: BTreeMap::new(),
                delegations: Some(Delegations {
                    keys: BTreeMap::new(),
                    roles: Some(Vec::new()),
                    succinct_roles: None,
                    unknown: Map::new(),
                }),
                unknown: Map::new(),
            },
            &[keys.targets],
        )?;
        let placeholder_snapshot = SignedMetadata::sign(
            Snapshot {
                kind: "snapshot".into(),
                spec_version: SPEC_VERSION.into(),
                version: 0,
                expires: now,
                meta: BTreeMap::new(),
                unknown: Map::new(),
            },
            &[],
        )?;
        let placeholder_timestamp = SignedMetadata::sign(
            Timestamp {
                kind: "timestamp".into(),
                spec_version: SPEC_VERSION.into(),
                version: 0,
                expires: now,
                meta: [(
                    "snapshot.json".to_owned(),
                    MetaFile { version: 0, length: None, hashes: None, unknown: Map::new() },
                )]
                .into_iter()
                .collect(),
                unknown: Map::new(),
            },
            &[],
        )?;
        let mut repo = Self {
            new_roots: vec![root.clone()],
            root,
            targets,
            delegated: BTreeMap::new(),
            snapshot: placeholder_snapshot,
            timestamp: placeholder_timestamp,
            pending_files: BTreeMap::new(),
            expiry,
            log_key: keys.log.map(|(_, k)| k.clone()),
        };
        repo.snapshot_and_timestamp(keys.snapshot, keys.timestamp, now)?;
        Ok(repo)
    }

    /// Loads the newest metadata of a repository directory.
    pub fn load(dir: &Path, expiry: Expiry) -> Result<Self, RepoError> {
        let meta_dir = dir.join("metadata");
        let read = |name: &str| -> Result<Vec<u8>, RepoError> {
            let path = meta_dir.join(name);
            std::fs::read(&path).map_err(|source| RepoError::Io { path, source })
        };
        let mut newest_root = 0u64;
        let entries =
            std::fs::read_dir(&meta_dir).map_err(|source| RepoError::Io { path: meta_dir.clone(), source })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(v) = name.strip_suffix(".root.json").and_then(|v| v.parse::<u64>().ok()) {
                newest_root = newest_root.max(v);
            }
        }
        if newest_root == 0 {
            return Err(RepoError::Layout {
                path: dir.to_owned(),
                reason: "no metadata/N.root.json; run `archy repo init`".into(),
            });
        }
        let root = SignedMetadata::<Root>::from_slice(&read(&format!("{newest_root}.root.json"))?, "root")?;
        let timestamp = SignedMetadata::<Timestamp>::from_slice(&read("timestamp.json")?, "timestamp")?;
        let snap_version = timestamp.signed.snapshot_meta().version;
        let snapshot =
            SignedMetadata::<Snapshot>::from_slice(&read(&format!("{snap_version}.snapshot.json"))?, "snapshot")?;
        let mut targets = None;
        let mut delegated = BTreeMap::new();
        for (file, meta) in &snapshot.signed.meta {
            let role = file.strip_suffix(".json").unwrap_or(file);
            let md = SignedMetadata::<Targets>::from_slice(
                &read(&format!("{}.{}.json", meta.version, crate::client::encode_role_name(role)))?,
                role,
            )?;
            if role == "targets" {
                targets = Some(md);
            } else {
                delegated.insert(role.to_owned(), md);
            }
        }
        let targets = targets.ok_or_else(|| RepoError::Layout {
            path: dir.to_owned(),
            reason: "snapshot lists no targets.json".into(),
        })?;
        Ok(Self {
            new_roots: Vec::new(),
            root,
            targets,
            delegated,
            snapshot,
            timestamp,
            pending_files: BTreeMap::new(),
            expiry,
            log_key: None,
        })
    }

    /// Gives the repository the log's key, needed by [`Repository::write_dir`] when the root names
    /// a transparency log.
    pub fn set_log_key(&mut self, key: SigningKey) {
        self.log_key = Some(key);
    }

    /// The newest root.
    pub fn root(&self) -> &Root {
        &self.root.signed
    }
    /// The top-level targets.
    pub fn targets(&self) -> &Targets {
        &self.targets.signed
    }
    /// A publisher's delegated targets, if it has published.
    pub fn delegated(&self, role: &str) -> Option<&Targets> {
        self.delegated.get(role).map(|m| &m.signed)
    }
    /// The snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot.signed
    }
    /// The timestamp.
    pub fn timestamp(&self) -> &Timestamp {
        &self.timestamp.signed
    }

    /// The delegation for a publisher's role name.
    pub fn publisher_role(&self, name: &str) -> Option<&DelegatedRole> {
        self.targets.signed.delegations.as_ref()?.roles.as_ref()?.iter().find(|r| r.name == name)
    }

    /// The publisher role whose key is `did`.
    pub fn role_of_did(&self, did: &DidKey) -> Option<String> {
        let keyid = PublicKey::ed25519(&did.verifying_key()).key_id();
        self.targets
            .signed
            .delegations
            .as_ref()?
            .roles
            .as_ref()?
            .iter()
            .find(|r| r.keyids.contains(&keyid))
            .map(|r| r.name.clone())
    }

    /// Delegates `app_ids` to the publisher `did` as role `name` (signed with the targets key).
    /// An existing role of that name keeps its apps and gains the new ones.
    pub fn add_publisher(
        &mut self,
        name: &str,
        did: &DidKey,
        app_ids: &[&str],
        targets_key: &SigningKey,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        check_role_name(name)?;
        check_key("targets", &self.root.signed, targets_key)?;
        let key = PublicKey::ed25519(&did.verifying_key());
        let keyid = key.key_id();
        let mut targets = self.targets.signed.clone();
        let delegations = targets.delegations.get_or_insert_with(|| Delegations {
            keys: BTreeMap::new(),
            roles: Some(Vec::new()),
            succinct_roles: None,
            unknown: Map::new(),
        });
        let roles = delegations.roles.get_or_insert_with(Vec::new);
        if let Some(other) = roles.iter().find(|r| r.name != name && r.keyids.contains(&keyid)) {
            return Err(RepoError::Invalid(format!("{did} is already publisher role `{}`", other.name)));
        }
        // An app id belongs to one publisher: refuse to delegate it to a second role.
        let index = crate::metadata::DelegationIndex::new(delegations);
        for id in app_ids {
            let probe = format!("apps/{id}/0.json");
            if let Some((owner, _)) =
                delegations.roles_for_target_indexed(&index, &probe).into_iter().find(|(role, _)| role != name)
            {
                return Err(RepoError::Invalid(format!("app `{id}` is already delegated to publisher `{owner}`")));
            }
        }
        let roles = delegations.roles.get_or_insert_with(Vec::new);
        let mut paths: Vec<String> = app_ids.iter().flat_map(|id| app_paths(id)).collect();
        match roles.iter_mut().find(|r| r.name == name) {
            Some(existing) => {
                if let Some(state) = RoleKeyState::of(existing) {
                    return Err(RepoError::Retired { role: name.into(), state });
                }
                if existing.keyids != vec![keyid.clone()] {
                    return Err(RepoError::Invalid(format!(
                        "role `{name}` belongs to another key; rotate it explicitly"
                    )));
                }
                let current = existing.paths.get_or_insert_with(Vec::new);
                paths.retain(|p| !current.contains(p));
                current.extend(paths);
            }
            None => roles.push(DelegatedRole {
                name: name.into(),
                keyids: vec![keyid.clone()],
                threshold: 1,
                // A publisher's paths are its own: a search that reaches its role stops there.
                terminating: true,
                paths: Some(paths),
                path_hash_prefixes: None,
                unknown: Map::new(),
            }),
        }
        delegations.keys.insert(keyid, key);
        self.sign_targets(targets, targets_key, now)
    }

    /// Rotates publisher role `name` to the key `new_did` (signed with the targets key; the
    /// caller then signs a snapshot and timestamp).
    ///
    /// A delegated role's published metadata is signed by its old key, and the origin cannot sign
    /// for a publisher, so the old role is not re-keyed in place (its current version would stop
    /// verifying, and TUF 1.0 §5.5.5 forbids dropping it from the snapshot). Instead:
    ///
    /// - the old role is **frozen**: its delegated `paths` become exactly the target paths it has
    ///   published, its delegation records [`RoleKeyState`] (`retired`, or `revoked` with
    ///   `revoke_old`), and the origin never accepts another version of it, so the snapshot keeps
    ///   naming the version it has (TUF §5.6: the old key's signatures count for nothing newer);
    /// - a **new role** (`new_name`, or `<name>-<n>`) is delegated the old role's app paths under
    ///   `new_did`, after the old one in the delegation order, so published versions resolve to
    ///   the old role (their envelopes stay signed by the key that published them) and every new
    ///   version to the new one.
    ///
    /// Returns the new role's name.
    pub fn rotate_publisher(
        &mut self,
        name: &str,
        new_did: &DidKey,
        new_name: Option<&str>,
        revoke_old: bool,
        targets_key: &SigningKey,
        now: DateTime<Utc>,
    ) -> Result<String, RepoError> {
        check_key("targets", &self.root.signed, targets_key)?;
        let old = self.live_publisher_role(name)?.clone();
        let keyid = PublicKey::ed25519(&new_did.verifying_key()).key_id();
        if let Some(role) = self.role_of_did(new_did) {
            return Err(RepoError::Invalid(format!("{new_did} is already publisher role `{role}`")));
        }
        let new_name = match new_name {
            Some(n) => n.to_owned(),
            None => self.next_role_name(name),
        };
        check_role_name(&new_name)?;
        if self.publisher_role(&new_name).is_some() {
            return Err(RepoError::Invalid(format!("publisher role `{new_name}` already exists")));
        }
        let state = if revoke_old { RoleState::Revoked } else { RoleState::Retired };
        let frozen = self.frozen(&old, state, Some(new_name.clone()), false, now)?;
        let mut targets = self.targets.signed.clone();
        let delegations = targets.delegations.as_mut().ok_or_else(|| RepoError::UnknownPublisher(name.into()))?;
        let roles = delegations.roles.get_or_insert_with(Vec::new);
        for role in roles.iter_mut().filter(|r| r.name == name) {
            *role = frozen.clone();
        }
        roles.push(DelegatedRole {
            name: new_name.clone(),
            keyids: vec![keyid.clone()],
            threshold: 1,
            terminating: true,
            paths: old.paths.clone(),
            path_hash_prefixes: None,
            unknown: Map::new(),
        });
        delegations.keys.insert(keyid, PublicKey::ed25519(&new_did.verifying_key()));
        self.sign_targets(targets, targets_key, now)?;
        Ok(new_name)
    }

    /// Revokes publisher role `name` (signed with the targets key): its delegation records
    /// [`RoleKeyState`] `revoked` and the origin accepts nothing more from it. Without `yank` its
    /// delegated `paths` become exactly what it has published (still listed; nodes refuse to
    /// install them and flag installed ones); with `yank` they become empty, so no target of the
    /// role resolves any more (TUF 1.0 §5.6.7) and the versions leave the catalog. The role's
    /// metadata stays in the snapshot (§5.5.5: a role listed once stays listed), now unreachable.
    /// A retired role may be revoked later; a revoked one may still be yanked.
    pub fn revoke_publisher(
        &mut self,
        name: &str,
        yank: bool,
        targets_key: &SigningKey,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        check_key("targets", &self.root.signed, targets_key)?;
        let role = self.publisher_role(name).ok_or_else(|| RepoError::UnknownPublisher(name.into()))?.clone();
        let previous = RoleKeyState::of(&role);
        if previous.as_ref().is_some_and(|p| p.state == RoleState::Revoked && (p.yanked || !yank)) {
            return Err(RepoError::Invalid(format!("publisher role `{name}` is already revoked")));
        }
        let successor = previous.and_then(|p| p.successor);
        let frozen = self.frozen(&role, RoleState::Revoked, successor, yank, now)?;
        let mut targets = self.targets.signed.clone();
        let delegations = targets.delegations.as_mut().ok_or_else(|| RepoError::UnknownPublisher(name.into()))?;
        for r in delegations.roles.iter_mut().flatten().filter(|r| r.name == name) {
            *r = frozen.clone();
        }
        self.sign_targets(targets, targets_key, now)
    }

    /// The delegation of a role that may still publish.
    fn live_publisher_role(&self, name: &str) -> Result<&DelegatedRole, RepoError> {
        let role = self.publisher_role(name).ok_or_else(|| RepoError::UnknownPublisher(name.into()))?;
        match RoleKeyState::of(role) {
            None => Ok(role),
            Some(state) => Err(RepoError::Retired { role: name.into(), state }),
        }
    }

    /// `role` frozen to the paths it has published (none when yanked), recording `state`.
    fn frozen(
        &self,
        role: &DelegatedRole,
        state: RoleState,
        successor: Option<String>,
        yank: bool,
        now: DateTime<Utc>,
    ) -> Result<DelegatedRole, RepoError> {
        let published: Vec<String> = if yank {
            Vec::new()
        } else {
            self.delegated.get(&role.name).map(|md| md.signed.targets.keys().cloned().collect()).unwrap_or_default()
        };
        // Each path becomes a pattern matching only itself, which needs it to hold no pattern
        // characters (TUF 1.0 §4.5 `PATHPATTERN`); archy's target paths never do.
        if let Some(p) = published.iter().find(|p| p.contains(['*', '?', '[', ']'])) {
            return Err(RepoError::Invalid(format!("target path `{p}` holds pattern characters; it cannot be frozen")));
        }
        let record = RoleKeyState {
            state,
            successor,
            since: trunc(now).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            yanked: yank,
        };
        let mut frozen = role.clone();
        frozen.paths = Some(published);
        frozen.path_hash_prefixes = None;
        frozen.unknown.insert(
            ROLE_STATE_FIELD.into(),
            serde_json::to_value(record).map_err(|e| RepoError::Invalid(e.to_string()))?,
        );
        Ok(frozen)
    }

    /// `<base>-<n>` for the first free `n` from 2, where `base` is `name` without a `-<digits>`
    /// ending.
    fn next_role_name(&self, name: &str) -> String {
        let base = match name.rsplit_once('-') {
            Some((base, n)) if !base.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
            _ => name,
        };
        let base = &base[..base.len().min(56)];
        (2u32..).map(|n| format!("{base}-{n}")).find(|n| self.publisher_role(n).is_none()).unwrap_or_default()
    }

    fn sign_targets(
        &mut self,
        mut targets: Targets,
        targets_key: &SigningKey,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        targets.version += 1;
        targets.expires = trunc(now) + self.expiry.targets;
        self.targets = SignedMetadata::sign(targets, &[targets_key])?;
        Ok(())
    }

    /// The publisher's next delegated targets metadata with `files` added (unsigned content;
    /// the publisher signs it, on its own machine).
    pub fn next_publisher_targets(
        &self,
        role: &str,
        files: impl IntoIterator<Item = (String, TargetFile)>,
        now: DateTime<Utc>,
    ) -> Result<Targets, RepoError> {
        let delegation = self.live_publisher_role(role)?;
        let mut targets = match self.delegated.get(role) {
            Some(md) => md.signed.clone(),
            None => Targets {
                kind: "targets".into(),
                spec_version: SPEC_VERSION.into(),
                version: 0,
                expires: now,
                targets: BTreeMap::new(),
                delegations: None,
                unknown: Map::new(),
            },
        };
        for (path, file) in files {
            if !delegation.is_delegated_path(&path) {
                return Err(RepoError::PathNotDelegated { role: role.into(), path });
            }
            targets.targets.insert(path, file);
        }
        targets.version += 1;
        targets.expires = trunc(now) + self.expiry.delegated;
        Ok(targets)
    }

    /// Accepts a publisher's signed delegated targets metadata (TUF 1.0 §5.6.3 from the
    /// repository side): signed by the delegated key's threshold, version moving forward, and
    /// every target path inside the role's delegated paths.
    pub fn accept_publisher_targets(&mut self, role: &str, md: SignedMetadata<Targets>) -> Result<(), RepoError> {
        let delegations =
            self.targets.signed.delegations.as_ref().ok_or_else(|| RepoError::UnknownPublisher(role.into()))?;
        let delegation = self.live_publisher_role(role)?;
        md.verify_role(role, &delegations.keys, &delegation.keyids, delegation.threshold)?;
        let current = self.delegated.get(role).map_or(0, |m| m.signed.version);
        if md.signed.version <= current {
            return Err(RepoError::VersionNotIncreasing { role: role.into(), current, new: md.signed.version });
        }
        if let Some(path) = md.signed.targets.keys().find(|p| !delegation.is_delegated_path(p)) {
            return Err(RepoError::PathNotDelegated { role: role.into(), path: path.clone() });
        }
        check_target_hashes(&md.signed)?;
        // Every path must resolve to this role (TUF 1.0 §5.6.7 pre-order search): a path an
        // earlier role holds, such as a version a rotated key published, is not this role's.
        // Listing the very same file again (an image archive a new version still uses) changes
        // nothing a client sees, so it is let through.
        let index = crate::metadata::DelegationIndex::new(delegations);
        for (path, file) in &md.signed.targets {
            if let Some((owner, _)) = delegations.roles_for_target_indexed(&index, path).into_iter().next()
                && owner != role
                && !self
                    .delegated
                    .get(&owner)
                    .and_then(|o| o.signed.targets.get(path))
                    .is_some_and(|held| held.length == file.length && held.hashes == file.hashes)
            {
                return Err(RepoError::Invalid(format!("`{path}` is already published by publisher role `{owner}`")));
            }
        }
        // A published file is immutable: the same path never names other bytes (a new app
        // version gets a new path), so a node that verified a manifest once never sees it change.
        // Every role's files count, a yanked role's included: a successor may not reuse a path
        // its predecessor published.
        for held in self.delegated.values() {
            for (path, file) in &md.signed.targets {
                if let Some(old) = held.signed.targets.get(path)
                    && (old.length != file.length || old.hashes != file.hashes)
                {
                    return Err(RepoError::Invalid(format!(
                        "`{path}` is already published with other content; publish a new version instead"
                    )));
                }
            }
        }
        if md.signed.delegations.is_some() {
            return Err(RepoError::Invalid(format!("publisher role `{role}` may not delegate further")));
        }
        self.delegated.insert(role.into(), md);
        Ok(())
    }

    /// Adds a target file to a publisher's role, signing the role with the publisher's key
    /// (for operators who hold that key, and for tests; the registry takes signed roles instead).
    pub fn add_publisher_target(
        &mut self,
        role: &str,
        path: &str,
        bytes: Vec<u8>,
        kind: &str,
        publisher_key: &SigningKey,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        self.add_publisher_targets(role, vec![(path.to_owned(), bytes, kind.to_owned())], publisher_key, now)
    }

    /// Adds many target files `(path, bytes, kind)` to a publisher's role in one new version.
    pub fn add_publisher_targets(
        &mut self,
        role: &str,
        files: Vec<(String, Vec<u8>, String)>,
        publisher_key: &SigningKey,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let described: Vec<(String, TargetFile, Vec<u8>)> =
            files.into_iter().map(|(path, bytes, kind)| (path, target_file(&bytes, &kind), bytes)).collect();
        let targets =
            self.next_publisher_targets(role, described.iter().map(|(p, f, _)| (p.clone(), f.clone())), now)?;
        let md = SignedMetadata::sign(targets, &[publisher_key])?;
        self.accept_publisher_targets(role, md)?;
        for (path, file, bytes) in described {
            self.pending_files.insert(consistent_target_path(&path, &file), bytes);
        }
        Ok(())
    }

    /// Stages target bytes whose description is already in signed metadata (registry uploads).
    pub fn stage_target_file(&mut self, path: &str, file: &TargetFile, bytes: Vec<u8>) -> Result<(), RepoError> {
        file.verify_bytes(&bytes).map_err(|e| RepoError::Invalid(format!("{path}: {e}")))?;
        self.pending_files.insert(consistent_target_path(path, file), bytes);
        Ok(())
    }

    /// Signs a new snapshot naming the current version of every targets role, then a new
    /// timestamp naming that snapshot (with its length and SHA-256).
    pub fn snapshot_and_timestamp(
        &mut self,
        snapshot_key: &SigningKey,
        timestamp_key: &SigningKey,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        check_key("snapshot", &self.root.signed, snapshot_key)?;
        let now = trunc(now);
        let mut meta = BTreeMap::new();
        let entry = |v: u64| MetaFile { version: v, length: None, hashes: None, unknown: Map::new() };
        meta.insert("targets.json".to_owned(), entry(self.targets.signed.version));
        for (role, md) in &self.delegated {
            meta.insert(format!("{role}.json"), entry(md.signed.version));
        }
        let snapshot = Snapshot {
            kind: "snapshot".into(),
            spec_version: SPEC_VERSION.into(),
            version: self.snapshot.signed.version + 1,
            expires: now + self.expiry.snapshot,
            meta,
            unknown: Map::new(),
        };
        self.snapshot = SignedMetadata::sign(snapshot, &[snapshot_key])?;
        self.refresh_timestamp(timestamp_key, now)
    }

    /// Signs a new timestamp for the current snapshot with a fresh expiry.
    pub fn refresh_timestamp(&mut self, timestamp_key: &SigningKey, now: DateTime<Utc>) -> Result<(), RepoError> {
        check_key("timestamp", &self.root.signed, timestamp_key)?;
        let bytes = self.snapshot.to_bytes();
        let mut hashes = Map::new();
        hashes.insert("sha256".into(), Value::String(hex::encode(sha2::Sha256::digest(&bytes))));
        let meta = MetaFile {
            version: self.snapshot.signed.version,
            length: Some(bytes.len() as u64),
            hashes: Some(hashes),
            unknown: Map::new(),
        };
        let timestamp = Timestamp {
            kind: "timestamp".into(),
            spec_version: SPEC_VERSION.into(),
            version: self.timestamp.signed.version + 1,
            expires: trunc(now) + self.expiry.timestamp,
            meta: [("snapshot.json".to_owned(), meta)].into_iter().collect(),
            unknown: Map::new(),
        };
        self.timestamp = SignedMetadata::sign(timestamp, &[timestamp_key])?;
        Ok(())
    }

    /// Replaces the keys of a top-level role with `new_keys` at `threshold`, producing root
    /// version N+1 (TUF 1.0 §5.3.4: the client accepts it only if it is signed by a threshold of
    /// the old root keys *and* of the new root keys). `signers` must hold enough of both; the
    /// result is checked before it is kept.
    pub fn rotate(
        &mut self,
        role: &str,
        new_keys: &[PublicKey],
        threshold: u64,
        signers: &[&SigningKey],
        now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        if !TOP_LEVEL_ROLES.contains(&role) {
            return Err(RepoError::Invalid(format!("`{role}` is not a top-level role")));
        }
        if threshold < 1 || threshold > new_keys.len() as u64 {
            return Err(RepoError::Invalid(format!("threshold {threshold} needs 1..={} keys", new_keys.len())));
        }
        let old = self.root.clone();
        let mut root = old.signed.clone();
        let keyids: Vec<String> = new_keys.iter().map(PublicKey::key_id).collect();
        for (id, key) in keyids.iter().zip(new_keys) {
            root.keys.insert(id.clone(), key.clone());
        }
        root.roles.insert(role.into(), RoleKeys { keyids, threshold, unknown: Map::new() });
        // Drop keys no role uses any more.
        let used: std::collections::HashSet<String> =
            root.roles.values().flat_map(|r| r.keyids.iter().cloned()).collect();
        root.keys.retain(|id, _| used.contains(id));
        root.version += 1;
        root.expires = trunc(now) + self.expiry.root;
        let new = SignedMetadata::sign(root, signers)?;
        let old_role = old.signed.role("root").ok_or_else(|| RepoError::Invalid("root has no root role".into()))?;
        new.verify_role("root", &old.signed.keys, &old_role.keyids, old_role.threshold)?;
        let new_role = new.signed.role("root").ok_or_else(|| RepoError::Invalid("root has no root role".into()))?;
        new.verify_role("root", &new.signed.keys, &new_role.keyids, new_role.threshold)?;
        self.new_roots.push(new.clone());
        self.root = new;
        Ok(())
    }

    /// Starts a transparency log for a catalog whose root names none: root version N+1 names the
    /// log `name` with `key`'s public half (`custom.archy.log`), signed by `signers`, which must
    /// meet the root threshold of the current root (TUF 1.0 §5.3.4: a node takes root N+1 only
    /// signed by a threshold of root N's keys and its own). From then on every timestamp
    /// [`Repository::write_dir`] writes is a leaf of the log, and nodes that take root N+1 require
    /// its proofs. A root that already names a log is refused: another log key would be another
    /// history, which every node that kept the first one refuses.
    pub fn start_log(
        &mut self,
        name: &str,
        key: &SigningKey,
        signers: &[&SigningKey],
        now: DateTime<Utc>,
    ) -> Result<crate::tlog::NoteKey, RepoError> {
        if let Some(log) = self.root.signed.log()? {
            return Err(RepoError::Invalid(format!("the root already names the transparency log `{}`", log.name())));
        }
        let log = crate::tlog::NoteKey::log(name, key.verifying_key())
            .map_err(|e| RepoError::Invalid(format!("the log's name: {e}")))?;
        let old = self.root.clone();
        let mut root = old.signed.clone();
        root.set_log(&log);
        root.version += 1;
        root.expires = trunc(now) + self.expiry.root;
        let new = SignedMetadata::sign(root, signers)?;
        let role = old.signed.role("root").ok_or_else(|| RepoError::Invalid("root has no root role".into()))?;
        new.verify_role("root", &old.signed.keys, &role.keyids, role.threshold)?;
        self.new_roots.push(new.clone());
        self.root = new;
        self.log_key = Some(key.clone());
        Ok(log)
    }

    /// Re-signs the top-level targets with a (possibly new) targets key, bumping its version.
    pub fn resign_targets(&mut self, targets_key: &SigningKey, now: DateTime<Utc>) -> Result<(), RepoError> {
        check_key("targets", &self.root.signed, targets_key)?;
        self.sign_targets(self.targets.signed.clone(), targets_key, now)
    }

    /// Writes new files into `dir`: targets first, then versioned metadata, then `root.json`,
    /// and `timestamp.json` last, each atomically. Existing versioned files are never rewritten
    /// with other bytes. When the root names a transparency log, the timestamp is appended to it
    /// and a checkpoint signed before `timestamp.json` is written; without the log's key
    /// ([`Repository::set_log_key`]) nothing is written.
    pub fn write_dir(&mut self, dir: &Path) -> Result<(), RepoError> {
        let log = self.log_and_key()?.map(|(l, k)| (l, k.clone()));
        let meta_dir = dir.join("metadata");
        let targets_dir = dir.join("targets");
        for (path, bytes) in std::mem::take(&mut self.pending_files) {
            write_immutable(&targets_dir.join(path), &bytes)?;
        }
        for root in std::mem::take(&mut self.new_roots) {
            write_immutable(&meta_dir.join(format!("{}.root.json", root.signed.version)), &root.to_bytes())?;
        }
        write_immutable(
            &meta_dir.join(format!("{}.targets.json", self.targets.signed.version)),
            &self.targets.to_bytes(),
        )?;
        for (role, md) in &self.delegated {
            let name = format!("{}.{}.json", md.signed.version, crate::client::encode_role_name(role));
            write_immutable(&meta_dir.join(name), &md.to_bytes())?;
        }
        write_immutable(
            &meta_dir.join(format!("{}.snapshot.json", self.snapshot.signed.version)),
            &self.snapshot.to_bytes(),
        )?;
        write_atomic(&meta_dir.join("root.json"), &self.root.to_bytes())?;
        let timestamp = self.timestamp.to_bytes();
        // The log takes in the timestamp before anyone can read it: every timestamp served is in
        // a checkpoint.
        if let Some((log, key)) = &log {
            append_log(dir, log, key, &timestamp)?;
        }
        write_atomic(&meta_dir.join("timestamp.json"), &timestamp)
    }

    /// The log the root names and its key, checked before anything is written.
    fn log_and_key(&self) -> Result<Option<(crate::tlog::NoteKey, &SigningKey)>, RepoError> {
        let Some(log) = self.root.signed.log()? else { return Ok(None) };
        let key = self.log_key.as_ref().ok_or_else(|| {
            RepoError::Invalid(format!(
                "the root names the transparency log `{}`: its key (keys/log.key) is needed to publish",
                log.name()
            ))
        })?;
        if key.verifying_key() != *log.public() {
            return Err(RepoError::WrongKey { role: "log".into(), keyid: key.key_id().to_string() });
        }
        Ok(Some((log, key)))
    }

    /// The current metadata files by remote name, as [`Repository::write_dir`] would write them
    /// (for serving from memory and for tests).
    pub fn metadata_files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        files.insert(format!("{}.root.json", self.root.signed.version), self.root.to_bytes());
        files.insert("root.json".into(), self.root.to_bytes());
        files.insert(format!("{}.targets.json", self.targets.signed.version), self.targets.to_bytes());
        for (role, md) in &self.delegated {
            files
                .insert(format!("{}.{}.json", md.signed.version, crate::client::encode_role_name(role)), md.to_bytes());
        }
        files.insert(format!("{}.snapshot.json", self.snapshot.signed.version), self.snapshot.to_bytes());
        files.insert("timestamp.json".into(), self.timestamp.to_bytes());
        files
    }

    /// Target files staged but not yet written, by path under `targets/`.
    pub fn pending_target_files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.pending_files
    }
}

fn write_immutable(path: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    match std::fs::read(path) {
        Ok(existing) if existing == bytes => Ok(()),
        Ok(_) => Err(RepoError::Immutable(path.to_owned())),
        Err(_) => write_atomic(path, bytes),
    }
}

/// The leaf hashes of the repository's transparency log (`<dir>/log/leaves`, 32 bytes each, in
/// order; empty when there is no log). A record torn by a crash is not counted.
pub fn log_leaves(dir: &Path) -> Result<Vec<crate::tlog::Hash>, RepoError> {
    let path = dir.join("log/leaves");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(RepoError::Io { path, source }),
    };
    Ok(bytes.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect())
}

/// The log's newest signed checkpoint (`<dir>/log/checkpoint`), if there is one.
pub fn log_checkpoint(dir: &Path) -> Result<Option<Vec<u8>>, RepoError> {
    let path = dir.join("log/checkpoint");
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RepoError::Io { path, source }),
    }
}

/// The proof that `leaf` is in the repository's log, in its newest checkpoint, consistent with
/// the tree of its first `from` leaves. `Ok(None)` when the repository keeps no log.
pub fn log_proof(dir: &Path, leaf: &crate::tlog::Hash, from: u64) -> Result<Option<crate::tlog::LogProof>, RepoError> {
    let Some(note) = log_checkpoint(dir)? else { return Ok(None) };
    let note = String::from_utf8(note).map_err(|_| RepoError::Invalid("log/checkpoint is not UTF-8".into()))?;
    with_log(dir, |tree| crate::tlog::LogProof::of(tree, note, leaf, from))?
        .map(Some)
        .map_err(|e| RepoError::Invalid(e.to_string()))
}

/// The tree size the log's newest checkpoint in `dir` signs (`None`: no log).
fn log_size(dir: &Path) -> Result<Option<u64>, RepoError> {
    let Some(note) = log_checkpoint(dir)? else { return Ok(None) };
    let checkpoint = crate::tlog::Note::parse(&note)
        .and_then(|n| crate::tlog::Checkpoint::parse_text(&n.text))
        .map_err(|e| RepoError::Invalid(format!("log/checkpoint: {e}")))?;
    Ok(Some(checkpoint.size))
}

/// The size and root of the tree of the log in `dir` (`<dir>/log/leaves`), from this process's
/// cache of it.
pub fn log_tree(dir: &Path) -> Result<(u64, crate::tlog::Hash), RepoError> {
    with_log(dir, |tree| (tree.size() as u64, tree.root()))
}

/// The size and root the log in `dir` would have with `more` leaves appended (nothing is written).
pub fn log_tree_with(dir: &Path, more: &[crate::tlog::Hash]) -> Result<(u64, crate::tlog::Hash), RepoError> {
    with_log(dir, |tree| ((tree.size() + more.len()) as u64, tree.root_with(more)))
}

/// Forgets what this process cached of the log in `dir` (a writer that starts the file again).
pub fn forget_log(dir: &Path) {
    LOGS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&dir.join("log/leaves"));
}

/// A log's leaves and subtrees as this process last read them, by file: a log only grows (its
/// file is appended to in place; a copy that starts again is a new file), so what was read is
/// extended with what was appended since, and proofs cost O(log n) ([`crate::tlog::Subtrees`])
/// after the first read.
struct CachedLog {
    /// The file's device and inode.
    file: (u64, u64),
    leaves: Vec<crate::tlog::Hash>,
    subtrees: crate::tlog::Subtrees,
}

static LOGS: std::sync::Mutex<BTreeMap<PathBuf, CachedLog>> = std::sync::Mutex::new(BTreeMap::new());

/// Runs `f` on the tree of the log in `dir` (`<dir>/log/leaves`; empty when there is none), with
/// its cached subtrees. A record torn by a crash is not counted.
fn with_log<R>(dir: &Path, f: impl FnOnce(crate::tlog::Tree<'_>) -> R) -> Result<R, RepoError> {
    use std::io::{Read as _, Seek as _};
    let path = dir.join("log/leaves");
    let io = |source| RepoError::Io { path: path.clone(), source };
    // Held while the file is looked at, so no reader acts on a length older than another's.
    let mut logs = LOGS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(f(crate::tlog::Tree::new(&[]))),
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    #[cfg(unix)]
    let id = {
        use std::os::unix::fs::MetadataExt as _;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let id = (0, 0);
    let whole = usize::try_from(meta.len() / 32).unwrap_or(usize::MAX);
    let cached = logs.entry(path.clone()).or_insert_with(|| CachedLog {
        file: id,
        leaves: Vec::new(),
        subtrees: crate::tlog::Subtrees::default(),
    });
    // Another file, a shorter one, or one whose last record read before changed (rewritten in
    // place: not what this code ever does, but what a test of a lying origin does): read again.
    let changed = |cached: &CachedLog, file: &mut std::fs::File| -> std::io::Result<bool> {
        let Some(last) = cached.leaves.last() else { return Ok(false) };
        let mut record = [0u8; 32];
        file.seek(std::io::SeekFrom::Start((cached.leaves.len() as u64 - 1) * 32))?;
        file.read_exact(&mut record)?;
        Ok(&record != last)
    };
    if cached.file != id || cached.leaves.len() > whole || changed(cached, &mut file).map_err(io)? {
        *cached = CachedLog { file: id, leaves: Vec::new(), subtrees: crate::tlog::Subtrees::default() };
    }
    if cached.leaves.len() < whole {
        let held = cached.leaves.len();
        file.seek(std::io::SeekFrom::Start(held as u64 * 32)).map_err(io)?;
        let mut bytes = vec![0u8; (whole - held) * 32];
        file.read_exact(&mut bytes).map_err(io)?;
        cached.leaves.extend(bytes.chunks_exact(32).map(|c| <[u8; 32]>::try_from(c).unwrap_or([0; 32])));
        cached.subtrees.extend(&cached.leaves);
    }
    Ok(f(crate::tlog::Tree::cached(&cached.leaves, &cached.subtrees)))
}

/// The name under which the iroh metadata protocol serves [`log_proof`]:
/// `log-proof.<hex leaf hash>.<from>.json`.
pub fn log_proof_name(leaf: &crate::tlog::Hash, from: u64) -> String {
    format!("log-proof.{}.{from}.json", hex::encode(leaf))
}

/// The leaf and size a [`log_proof_name`] asks for.
pub fn parse_log_proof_name(name: &str) -> Option<(crate::tlog::Hash, u64)> {
    let rest = name.strip_prefix("log-proof.")?.strip_suffix(".json")?;
    let (leaf, from) = rest.split_once('.')?;
    let leaf = hex::decode(leaf).ok()?.try_into().ok()?;
    Some((leaf, from.parse().ok()?))
}

/// The consistency proof between the log's trees of `old` and `new` leaves (`new` at most the
/// size of its newest checkpoint), with the root of the first `old` leaves. `Ok(None)` when there is no log or `new` is
/// past its newest checkpoint.
pub fn log_consistency(dir: &Path, old: u64, new: u64) -> Result<Option<crate::tlog::Consistency>, RepoError> {
    let Some(size) = log_size(dir)? else { return Ok(None) };
    if old > new || new > size {
        return Ok(None);
    }
    let new = usize::try_from(new).unwrap_or(usize::MAX);
    with_log(dir, |tree| (new <= tree.size()).then(|| crate::tlog::Consistency::of(tree.prefix(new), old as usize)))
}

/// The name under which [`log_consistency`] is served: `log-consistency.<old>.<new>.json`.
pub fn log_consistency_name(old: u64, new: u64) -> String {
    format!("log-consistency.{old}.{new}.json")
}

/// The sizes a [`log_consistency_name`] asks for.
pub fn parse_log_consistency_name(name: &str) -> Option<(u64, u64)> {
    two_numbers(name, "log-consistency.")
}

/// `<prefix><a>.<b>.json` → `(a, b)`.
fn two_numbers(name: &str, prefix: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix(prefix)?.strip_suffix(".json")?;
    let (a, b) = rest.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Most leaves one [`log_leaves_answer`] carries (22 KiB of JSON).
pub const MAX_LEAVES_PER_ANSWER: u64 = 512;

/// Leaves `start..start + count` of a log, as served under [`log_leaves_name`]: `leaves` is the
/// base64 of their 32-byte hashes, in order. Nothing in it is trusted: a reader checks that the
/// leaves it holds hash to a root the log signed ([`crate::tlog::root`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLeaves {
    /// The index of the first leaf.
    pub start: u64,
    /// The leaf hashes, concatenated, in base64.
    pub leaves: String,
}

impl LogLeaves {
    /// The leaf hashes, or why they are not 32-byte hashes.
    pub fn hashes(&self) -> Result<Vec<crate::tlog::Hash>, String> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD.decode(&self.leaves).map_err(|e| e.to_string())?;
        if bytes.len() % 32 != 0 {
            return Err(format!("{} bytes of leaves, not a multiple of 32", bytes.len()));
        }
        Ok(bytes.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect())
    }
}

/// The name under which leaves are served: `log-leaves.<start>.<count>.json`.
pub fn log_leaves_name(start: u64, count: u64) -> String {
    format!("log-leaves.{start}.{count}.json")
}

/// The range a [`log_leaves_name`] asks for.
pub fn parse_log_leaves_name(name: &str) -> Option<(u64, u64)> {
    two_numbers(name, "log-leaves.")
}

/// Leaves `start..start + count` of the log in `dir`, up to the size its checkpoint signs;
/// `None` when the range is empty, longer than [`MAX_LEAVES_PER_ANSWER`] or not all held.
pub fn log_leaves_answer(dir: &Path, start: u64, count: u64) -> Result<Option<LogLeaves>, RepoError> {
    use base64::Engine as _;
    let Some(size) = log_size(dir)? else { return Ok(None) };
    let end = start.saturating_add(count);
    if count == 0 || count > MAX_LEAVES_PER_ANSWER || end > size {
        return Ok(None);
    }
    let bytes = with_log(dir, |tree| {
        tree.leaves()
            .get(start as usize..end as usize)
            .map(|range| range.iter().flatten().copied().collect::<Vec<u8>>())
    })?;
    Ok(bytes.map(|bytes| LogLeaves { start, leaves: base64::engine::general_purpose::STANDARD.encode(bytes) }))
}

/// What a metadata name of the log asks for, as JSON, from the log kept in `dir` (an origin's
/// repository, or a node's copy): a [`crate::tlog::LogProof`] for [`log_proof_name`], a
/// [`crate::tlog::Consistency`] for [`log_consistency_name`], a [`LogLeaves`] for
/// [`log_leaves_name`]. `None` when `name` is none of them, there is no log, or the log can't
/// answer it.
pub fn log_answer(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, RepoError> {
    let json = |v: serde_json::Result<Vec<u8>>| v.map_err(|e| RepoError::Invalid(format!("{name}: {e}")));
    if let Some((old, new)) = parse_log_consistency_name(name) {
        return log_consistency(dir, old, new)?.map(|p| json(serde_json::to_vec(&p))).transpose();
    }
    if let Some((start, count)) = parse_log_leaves_name(name) {
        return log_leaves_answer(dir, start, count)?.map(|l| json(serde_json::to_vec(&l))).transpose();
    }
    let Some((leaf, from)) = parse_log_proof_name(name) else { return Ok(None) };
    log_proof(dir, &leaf, from)?.map(|p| json(serde_json::to_vec(&p))).transpose()
}

/// Appends `timestamp` to the log as a leaf (unless it is the last one already) and signs the
/// checkpoint of the new tree. The leaf is on disk (synced) before the checkpoint, and both
/// before the timestamp is published; a torn record left by a crash is cut off first.
fn append_log(dir: &Path, log: &crate::tlog::NoteKey, key: &SigningKey, timestamp: &[u8]) -> Result<(), RepoError> {
    use std::io::Write as _;
    let path = dir.join("log/leaves");
    let io = |source| RepoError::Io { path: path.clone(), source };
    std::fs::create_dir_all(dir.join("log")).map_err(io)?;
    let (count, last) = with_log(dir, |tree| (tree.size(), tree.leaves().last().copied()))?;
    let leaf = crate::tlog::leaf_hash(timestamp);
    if last != Some(leaf) {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
        let whole = count as u64 * 32;
        if file.metadata().map_err(io)?.len() != whole {
            file.set_len(whole).map_err(io)?;
        }
        file.write_all(&leaf).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    let (size, root) = with_log(dir, |tree| (tree.size() as u64, tree.root()))?;
    let checkpoint = crate::tlog::Checkpoint { origin: log.name().to_owned(), size, root };
    let current = log_checkpoint(dir)?
        .and_then(|b| crate::tlog::SignedCheckpoint::open(&b, log).ok())
        .map(|c| c.checkpoint().clone());
    if current.as_ref() != Some(&checkpoint) {
        let note = checkpoint
            .sign(&ed25519_dalek::SigningKey::from_bytes(&key.seed()))
            .map_err(|e| RepoError::Invalid(format!("signing the checkpoint: {e}")))?;
        write_atomic(&dir.join("log/checkpoint"), note.to_text().as_bytes())?;
    }
    Ok(())
}

/// Takes the repository's writer lock (`<dir>/.archy-lock`, an exclusive advisory lock held until
/// the returned file is dropped), so `archy repo` commands and a running `archy-registry` never
/// interleave a load → sign → write cycle. Blocks while another writer holds it.
pub fn lock_writers(dir: &Path) -> Result<std::fs::File, RepoError> {
    let path = dir.join(".archy-lock");
    let io = |source| RepoError::Io { path: path.clone(), source };
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
    file.lock().map_err(io)?;
    Ok(file)
}

/// Writes a file atomically: temporary file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    use std::io::Write as _;
    let io = |source| RepoError::Io { path: path.to_owned(), source };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestKeys, t0};

    #[test]
    fn a_publisher_target_whose_sha256_is_not_a_digest_is_refused() {
        let keys = TestKeys::fixed();
        let mut repo = keys.create(t0());
        repo.add_publisher("acme", &keys.publisher.did(), &["notes"], &keys.targets, t0()).expect("add publisher");
        let digest = hex::encode(sha2::Sha256::digest(b"an image"));
        for sha256 in ["../../../../keys/timestamp", "", &digest[..62], &format!("{}/x", &digest[..62])] {
            let mut file = target_file(b"an image", "image");
            file.hashes.insert("sha256".into(), sha256.into());
            let path = "images/notes/key".to_owned();
            let next = repo.next_publisher_targets("acme", [(path, file)], t0()).expect("next version");
            let md = SignedMetadata::sign(next, &[&keys.publisher]).expect("sign");
            let err = repo.accept_publisher_targets("acme", md).expect_err(sha256);
            assert!(matches!(err, RepoError::BadTargetHash { ref path } if path == "images/notes/key"), "{err}");
        }
        let mut no_sha256 = target_file(b"an image", "image");
        no_sha256.hashes.remove("sha256");
        let next =
            repo.next_publisher_targets("acme", [("images/notes/key".to_owned(), no_sha256)], t0()).expect("next");
        let md = SignedMetadata::sign(next, &[&keys.publisher]).expect("sign");
        assert!(matches!(repo.accept_publisher_targets("acme", md), Err(RepoError::BadTargetHash { .. })));

        let listed = [("images/notes/key".to_owned(), target_file(b"an image", "image"))];
        let next = repo.next_publisher_targets("acme", listed, t0()).expect("next version");
        let md = SignedMetadata::sign(next, &[&keys.publisher]).expect("sign");
        repo.accept_publisher_targets("acme", md).expect("a real digest is taken");
    }
}
