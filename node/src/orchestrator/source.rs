//! Where verified manifests and image archives come from.
//!
//! [`AppSource`] is what the orchestrator installs from. [`DirSource`] (a folder of signed
//! envelopes and archives, for offline installs and development) and [`MemorySource`] (tests) are
//! here; the node's synced catalog and its Nostr apps are sources too (`sources`, above
//! this layer, since they need the sync and Nostr code).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;

use catalog::envelope::{SignedEnvelope, VerifiedManifest};
use catalog::manifest::Limits;

/// A boxed future, for the object-safe async method of [`AppSource`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a source could not hand out a manifest or an archive. Callers decide on the variant: a
/// refusal by policy is reported as such (the API answers 403), "not found" lets a caller try
/// another source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The source has no such app, version or archive.
    #[error("{0}")]
    NotFound(String),
    /// The source has it, but an install policy refuses it; the message names the rule.
    #[error("{0}")]
    Refused(String),
    /// What the source holds does not verify (signature, hash, shape).
    #[error("{0}")]
    Invalid(String),
    /// The source's signed metadata has expired: nothing is installed from it until it is
    /// fresh again (a freeze attack never ends otherwise; TUF §5.4.5).
    #[error("{0}")]
    Expired(String),
    /// The source knows the app, but its signed files are not on this node yet (the next
    /// sync fetches them).
    #[error("{0}")]
    NotFetched(String),
    /// Reading or fetching failed.
    #[error("{0}")]
    Io(String),
}

impl SourceError {
    /// Whether the source simply does not have it.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }
}

/// A provider of verified manifests and image archives.
pub trait AppSource: Send + Sync {
    /// The versions of `id` it offers (any order).
    fn versions(&self, id: &str) -> Result<Vec<semver::Version>, SourceError>;

    /// The verified manifest of `id` at `version` (the newest when `None`).
    fn manifest(&self, id: &str, version: Option<&semver::Version>) -> Result<VerifiedManifest, SourceError>;

    /// A local path to the image archive named `target` in a manifest (`<app>/<file>`), its bytes
    /// verified against signed metadata where the source has any.
    fn fetch_archive<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<PathBuf, SourceError>>;

    /// Whether `offered` continues the apps of `installed` for app `id`: the publisher moved to a
    /// new key and the source holds signed proof of it (the origin's rotation of the publisher's
    /// role, or a Nostr key succession). Without proof an update never changes publisher.
    fn continues(&self, id: &str, installed: &catalog::DidKey, offered: &catalog::DidKey) -> bool {
        let _ = (id, installed, offered);
        false
    }
}

/// Manifests and archives held in memory (tests, embedding).
#[derive(Debug, Default)]
pub struct MemorySource {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    manifests: BTreeMap<String, BTreeMap<semver::Version, VerifiedManifest>>,
    archives: BTreeMap<String, PathBuf>,
}

impl MemorySource {
    /// Adds a manifest and the archives (target → path) it needs.
    pub fn add(&self, manifest: VerifiedManifest, archives: impl IntoIterator<Item = (String, PathBuf)>) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let m = manifest.manifest();
        let (id, version) = (m.id.to_string(), m.version.clone());
        inner.manifests.entry(id).or_default().insert(version, manifest);
        inner.archives.extend(archives);
    }
}

impl AppSource for MemorySource {
    fn versions(&self, id: &str) -> Result<Vec<semver::Version>, SourceError> {
        let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(inner.manifests.get(id).map(|m| m.keys().cloned().collect()).unwrap_or_default())
    }

    fn manifest(&self, id: &str, version: Option<&semver::Version>) -> Result<VerifiedManifest, SourceError> {
        let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let versions =
            inner.manifests.get(id).ok_or_else(|| SourceError::NotFound(format!("no app `{id}` is available")))?;
        let found = match version {
            Some(v) => versions.get(v),
            None => versions.values().next_back(),
        };
        found.cloned().ok_or_else(|| match version {
            Some(v) => SourceError::NotFound(format!("app `{id}` has no version {v}")),
            None => SourceError::NotFound(format!("no app `{id}` is available")),
        })
    }

    fn fetch_archive<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<PathBuf, SourceError>> {
        let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = inner.archives.get(target).cloned();
        Box::pin(async move {
            found.ok_or_else(|| SourceError::NotFound(format!("no image archive `{target}` is available")))
        })
    }
}

/// A folder of signed envelopes (`*.archy.json`, any names; `archy app sign` writes
/// `<id>-<version>.archy.json`) and image archives (at their target path, `<app>/<file>`, under
/// the folder). Envelopes under the former name `*.envelope.json` are still read, with a warning
/// to rename them. Every envelope is verified with
/// [`SignedEnvelope::verify`]; archives carry no signed hash here, so the image id check after
/// `docker load` is what binds them to the signed manifest.
#[derive(Debug, Clone)]
pub struct DirSource {
    dir: PathBuf,
}

impl DirSource {
    /// The source reading `dir`.
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }

    fn all(&self) -> Result<Vec<VerifiedManifest>, SourceError> {
        let mut out = Vec::new();
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| SourceError::Io(format!("{}: {e}", self.dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if name.ends_with(".envelope.json") {
                tracing::warn!(
                    file = %path.display(),
                    "signed envelopes are named *.archy.json now; rename this file (its old name is read for now)"
                );
            } else if !name.ends_with(".archy.json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| SourceError::Io(format!("{}: {e}", path.display())))?;
            match SignedEnvelope::from_slice(&bytes).and_then(|e| e.verify(&Limits::default())) {
                Ok(v) => out.push(v),
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "skipping envelope that does not verify"),
            }
        }
        Ok(out)
    }
}

impl AppSource for DirSource {
    fn versions(&self, id: &str) -> Result<Vec<semver::Version>, SourceError> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|m| m.manifest().id.as_str() == id)
            .map(|m| m.manifest().version.clone())
            .collect())
    }

    fn manifest(&self, id: &str, version: Option<&semver::Version>) -> Result<VerifiedManifest, SourceError> {
        let mut matching: Vec<VerifiedManifest> = self
            .all()?
            .into_iter()
            .filter(|m| m.manifest().id.as_str() == id && version.is_none_or(|v| m.manifest().version == *v))
            .collect();
        matching.sort_by(|a, b| a.manifest().version.cmp(&b.manifest().version));
        matching.pop().ok_or_else(|| match version {
            Some(v) => SourceError::NotFound(format!("no verified manifest of `{id}` {v} in {}", self.dir.display())),
            None => SourceError::NotFound(format!("no verified manifest of `{id}` in {}", self.dir.display())),
        })
    }

    fn fetch_archive<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<PathBuf, SourceError>> {
        Box::pin(async move {
            // Target paths are validated relative paths (no `..`), but check again before
            // joining: nothing outside the folder is read.
            if target.split('/').any(|p| p.is_empty() || p == "." || p == "..") || target.starts_with('/') {
                return Err(SourceError::Invalid(format!("bad archive target `{target}`")));
            }
            let path = self.dir.join(target);
            if path.is_file() {
                Ok(path)
            } else {
                Err(SourceError::NotFound(format!("image archive {} not found", path.display())))
            }
        })
    }
}
