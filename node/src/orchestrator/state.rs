//! The orchestrator's files under the node's data dir: desired state, the signed manifests of
//! installed versions, the node id and the lock that keeps two writers apart.
//!
//! ```text
//! <data>/orchestrator/
//!   node-id                          this node's id on the Docker engine (label archy.node)
//!   lock                             held (flock) by whoever changes desired state or Docker
//!   apps/<id>/state.json             desired state of an installed app (replaced atomically)
//!   apps/<id>/manifests/<v>.archy.json  signed envelopes of the versions installed so far
//!   secrets/<id>/<name>              generated secrets, 0600 in a 0700 folder
//! ```
//!
//! Desired state is written atomically before anything is applied, so a process killed at any
//! point leaves either the old or
//! the new record, never a torn one, and the reconciler converges Docker to it.

use std::path::{Path, PathBuf};

use catalog::envelope::{SignedEnvelope, VerifiedManifest};
use catalog::manifest::Limits;
use serde::{Deserialize, Serialize};

use super::Error;

/// Whether an installed app's containers should be running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Started, and kept started by the reconciler.
    Running,
    /// Stopped by the operator; the reconciler leaves the containers stopped.
    Stopped,
}

/// Where an app is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// First install under way: containers are being created and must become healthy.
    Installing,
    /// Update from `from` under way: if the new version is not healthy within its grace
    /// period, the orchestrator goes back to `from`.
    Updating {
        /// The version to roll back to.
        from: semver::Version,
        /// The snapshot of the volumes taken before the update, put back by a rollback (none
        /// when the app has no volume, or in a state written before snapshots existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snapshot: Option<String>,
    },
    /// Installed; the reconciler keeps Docker matching this record.
    Ready,
}

/// The outcome of the last update, shown by `ps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UpdateOutcome {
    /// Version before the update.
    #[schema(value_type = String)]
    pub from: semver::Version,
    /// Version the update tried.
    #[schema(value_type = String)]
    pub to: semver::Version,
    /// `None` when the update succeeded; the reason when it was rolled back.
    pub rolled_back: Option<String>,
}

/// The desired state of one installed app (`apps/<id>/state.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    /// The app id.
    pub app: String,
    /// The version that should run.
    pub version: semver::Version,
    /// BLAKE3 (hex) of that version's signed manifest; checked when the envelope is read back.
    pub manifest_hash: String,
    /// Running or stopped.
    pub run: RunState,
    /// Lifecycle phase.
    #[serde(flatten)]
    pub phase: Phase,
    /// Why the last apply failed, if it did (cleared by the next success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The last update and whether it was rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update: Option<UpdateOutcome>,
}

/// The orchestrator's folder in the node data dir.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// Ids must be valid app ids before they become path parts (no `..`, no `/`).
fn checked(id: &str) -> Result<&str, Error> {
    id.parse::<catalog::manifest::AppId>().map_err(|e| Error::BadAppId { id: id.to_owned(), reason: e.to_string() })?;
    Ok(id)
}

/// An installed app whose desired state can't be read, with why.
pub type Damaged = (String, Error);

impl StateDir {
    /// The folder `root` (`<data>/orchestrator`; created, 0700, if missing).
    pub fn open(root: &Path) -> Result<Self, Error> {
        let root = root.to_owned();
        create_private_dir(&root)?;
        Ok(Self { root })
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The lock file.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// The folder holding everything about installed app `id`.
    pub fn app_dir(&self, id: &str) -> Result<PathBuf, Error> {
        Ok(self.root.join("apps").join(checked(id)?))
    }

    /// A private folder for files being prepared (`<data>/orchestrator/tmp`, created 0700).
    pub fn tmp_dir(&self) -> Result<PathBuf, Error> {
        let dir = self.root.join("tmp");
        create_private_dir(&dir)?;
        Ok(dir)
    }

    /// The folder of app `id`'s generated secrets.
    pub fn secrets_dir(&self, id: &str) -> Result<PathBuf, Error> {
        Ok(self.root.join("secrets").join(checked(id)?))
    }

    /// This node's id on the Docker engine, created once (16 random bytes, hex).
    pub fn node_id(&self) -> Result<String, Error> {
        let path = self.root.join("node-id");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let id = text.trim();
            if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(id.to_owned());
            }
        }
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::Io { path: path.clone(), source: std::io::Error::other(e.to_string()) })?;
        let id = hex::encode(bytes);
        write_atomic(&path, id.as_bytes())?;
        Ok(id)
    }

    /// The desired state of `id`, if it is installed.
    pub fn load(&self, id: &str) -> Result<Option<AppRecord>, Error> {
        let path = self.app_dir(id)?.join("state.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::CorruptState { path, reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// Every installed app's desired state, sorted by id, and apart the apps whose desired
    /// state can't be read (each with why): one damaged `state.json` stops nothing else.
    pub fn load_each(&self) -> Result<(Vec<AppRecord>, Vec<Damaged>), Error> {
        let dir = self.root.join("apps");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
            Err(source) => return Err(Error::Io { path: dir, source }),
        };
        let (mut records, mut damaged) = (Vec::new(), Vec::new());
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.parse::<catalog::manifest::AppId>().is_err() {
                continue;
            }
            match self.load(&name) {
                Ok(Some(record)) => records.push(record),
                Ok(None) => {}
                Err(e) => damaged.push((name, e)),
            }
        }
        records.sort_by(|a, b| a.app.cmp(&b.app));
        damaged.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((records, damaged))
    }

    /// Every installed app's desired state that can be read, sorted by id (the damaged ones are
    /// logged and left out; see [`StateDir::load_each`]).
    pub fn load_all(&self) -> Result<Vec<AppRecord>, Error> {
        let (records, damaged) = self.load_each()?;
        for (app, e) in &damaged {
            tracing::warn!(app = %app, "left alone: {e}");
        }
        Ok(records)
    }

    /// Writes `record` atomically (temporary file, fsync, rename, fsync of the folder).
    pub fn save(&self, record: &AppRecord) -> Result<(), Error> {
        let path = self.app_dir(&record.app)?.join("state.json");
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| Error::Internal(e.to_string()))?;
        write_atomic(&path, &bytes)
    }

    /// Forgets `id`'s desired state (uninstall); its stored manifests stay for a later purge.
    pub fn remove(&self, id: &str) -> Result<(), Error> {
        let path = self.app_dir(id)?.join("state.json");
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// Deletes everything stored about `id`: state, manifests and secrets (purge).
    pub fn purge(&self, id: &str) -> Result<(), Error> {
        for dir in [self.app_dir(id)?, self.secrets_dir(id)?] {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::Io { path: dir, source }),
            }
        }
        Ok(())
    }

    fn envelope_path(&self, id: &str, version: &semver::Version) -> Result<PathBuf, Error> {
        Ok(self.app_dir(id)?.join("manifests").join(format!("{version}.archy.json")))
    }

    /// Stores the signed envelope of a manifest about to be installed.
    pub fn store_manifest(&self, manifest: &VerifiedManifest) -> Result<(), Error> {
        let m = manifest.manifest();
        let path = self.envelope_path(m.id.as_str(), &m.version)?;
        write_atomic(&path, &manifest.envelope().to_bytes())
    }

    /// Reads back and verifies again the stored manifest of `id` at `version`; its hash must be
    /// `expected_hash` (hex) when given. Nothing reaches Docker from these files unverified.
    pub fn stored_manifest(
        &self,
        id: &str,
        version: &semver::Version,
        expected_hash: Option<&str>,
    ) -> Result<VerifiedManifest, Error> {
        let path = self.envelope_path(id, version)?;
        let bytes = std::fs::read(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        let verified = SignedEnvelope::from_slice(&bytes)
            .and_then(|e| e.verify(&Limits::default()))
            .map_err(|e| Error::CorruptState { path: path.clone(), reason: e.to_string() })?;
        let m = verified.manifest();
        if m.id.as_str() != id || m.version != *version {
            return Err(Error::CorruptState {
                path,
                reason: format!("holds {} {}, not {id} {version}", m.id, m.version),
            });
        }
        if let Some(expected) = expected_hash
            && verified.manifest_hash().to_hex().as_str() != expected
        {
            return Err(Error::CorruptState { path, reason: "manifest hash differs from the desired state".into() });
        }
        Ok(verified)
    }

    /// The newest stored manifest of `id` (used by purge after an uninstall).
    pub fn newest_stored_manifest(&self, id: &str) -> Result<Option<VerifiedManifest>, Error> {
        let dir = self.app_dir(id)?.join("manifests");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(None) };
        let newest = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".archy.json")?.parse::<semver::Version>().ok())
            .max();
        match newest {
            Some(v) => self.stored_manifest(id, &v, None).map(Some),
            None => Ok(None),
        }
    }
}

/// Creates `dir` (and parents) with mode 0700 for the last part.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let io = |source| Error::Io { path: dir.to_owned(), source };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
        }
        Err(e) => Err(io(e)),
    }
}

/// Atomic replace of `path` (see [`catalog::repo::write_atomic`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    catalog::repo::write_atomic(path, bytes)
        .map_err(|e| Error::Io { path: path.to_owned(), source: std::io::Error::other(e) })
}

/// The exclusive lock on the orchestrator's state: one writer at a time across processes
/// (flock on `<data>/orchestrator/lock`; released by the kernel when the holder dies, so a
/// SIGKILLed process never leaves it stuck).
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

impl StateLock {
    /// Takes the lock, waiting for another holder to finish.
    pub fn acquire(path: &Path) -> Result<Self, Error> {
        let file = Self::open(path)?;
        match file.try_lock() {
            Ok(()) => return Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::info!(lock = %path.display(), "another archy-node process is changing apps; waiting for it");
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(Error::Io { path: path.to_owned(), source }),
        }
        file.lock().map_err(|source| Error::Io { path: path.to_owned(), source })?;
        Ok(Self { _file: file })
    }

    /// Takes the lock if nobody holds it.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>, Error> {
        let file = Self::open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(source)) => Err(Error::Io { path: path.to_owned(), source }),
        }
    }

    fn open(path: &Path) -> Result<std::fs::File, Error> {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| Error::Io { path: path.to_owned(), source })
    }
}
