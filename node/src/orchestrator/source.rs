//! Where verified manifests and image archives come from.
//!
//! The node's synced catalog ([`CatalogSource`] over [`crate::catalog::NodeCatalog`]) is one
//! [`AppSource`]; so are [`DirSource`] (a folder of signed
//! envelopes and archives, for offline installs and development) and [`MemorySource`] (tests).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;

use catalog::envelope::{SignedEnvelope, VerifiedManifest};
use catalog::manifest::Limits;

/// A boxed future, for the object-safe async method of [`AppSource`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A provider of verified manifests and image archives.
pub trait AppSource: Send + Sync {
    /// The versions of `id` it offers (any order).
    fn versions(&self, id: &str) -> anyhow::Result<Vec<semver::Version>>;

    /// The verified manifest of `id` at `version` (the newest when `None`).
    fn manifest(&self, id: &str, version: Option<&semver::Version>) -> anyhow::Result<VerifiedManifest>;

    /// A local path to the image archive named `target` in a manifest (`<app>/<file>`), its bytes
    /// verified against signed metadata where the source has any.
    fn fetch_archive<'a>(&'a self, target: &'a str) -> BoxFuture<'a, anyhow::Result<PathBuf>>;
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
    fn versions(&self, id: &str) -> anyhow::Result<Vec<semver::Version>> {
        let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(inner.manifests.get(id).map(|m| m.keys().cloned().collect()).unwrap_or_default())
    }

    fn manifest(&self, id: &str, version: Option<&semver::Version>) -> anyhow::Result<VerifiedManifest> {
        let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let versions = inner.manifests.get(id).ok_or_else(|| anyhow::anyhow!("no app `{id}` is available"))?;
        let found = match version {
            Some(v) => versions.get(v),
            None => versions.values().next_back(),
        };
        found.cloned().ok_or_else(|| match version {
            Some(v) => anyhow::anyhow!("app `{id}` has no version {v}"),
            None => anyhow::anyhow!("no app `{id}` is available"),
        })
    }

    fn fetch_archive<'a>(&'a self, target: &'a str) -> BoxFuture<'a, anyhow::Result<PathBuf>> {
        let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = inner.archives.get(target).cloned();
        Box::pin(async move { found.ok_or_else(|| anyhow::anyhow!("no image archive `{target}` is available")) })
    }
}

/// A folder of signed envelopes (`*.archy.json`, any names) and image archives (at their target
/// path, `<app>/<file>`, under the folder). Every envelope is verified with
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

    fn all(&self) -> anyhow::Result<Vec<VerifiedManifest>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| anyhow::anyhow!("{}: {e}", self.dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".archy.json")) {
                continue;
            }
            let bytes = std::fs::read(&path)?;
            match SignedEnvelope::from_slice(&bytes).and_then(|e| e.verify(&Limits::default())) {
                Ok(v) => out.push(v),
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "skipping envelope that does not verify"),
            }
        }
        Ok(out)
    }
}

impl AppSource for DirSource {
    fn versions(&self, id: &str) -> anyhow::Result<Vec<semver::Version>> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|m| m.manifest().id.as_str() == id)
            .map(|m| m.manifest().version.clone())
            .collect())
    }

    fn manifest(&self, id: &str, version: Option<&semver::Version>) -> anyhow::Result<VerifiedManifest> {
        let mut matching: Vec<VerifiedManifest> = self
            .all()?
            .into_iter()
            .filter(|m| m.manifest().id.as_str() == id && version.is_none_or(|v| m.manifest().version == *v))
            .collect();
        matching.sort_by(|a, b| a.manifest().version.cmp(&b.manifest().version));
        matching.pop().ok_or_else(|| match version {
            Some(v) => anyhow::anyhow!("no verified manifest of `{id}` {v} in {}", self.dir.display()),
            None => anyhow::anyhow!("no verified manifest of `{id}` in {}", self.dir.display()),
        })
    }

    fn fetch_archive<'a>(&'a self, target: &'a str) -> BoxFuture<'a, anyhow::Result<PathBuf>> {
        Box::pin(async move {
            // Target paths are validated relative paths (no `..`), but check again before
            // joining: nothing outside the folder is read.
            if target.split('/').any(|p| p.is_empty() || p == "." || p == "..") || target.starts_with('/') {
                anyhow::bail!("bad archive target `{target}`");
            }
            let path = self.dir.join(target);
            if path.is_file() { Ok(path) } else { anyhow::bail!("image archive {} not found", path.display()) }
        })
    }
}

/// The node's synced, verified catalog ([`crate::catalog::NodeCatalog`]), opened afresh on each
/// call so a sync that lands meanwhile is seen. Archives are fetched through the node's sync and
/// verified against their signed length and BLAKE3 before they are handed out.
#[derive(Debug, Clone)]
pub struct CatalogSource {
    data: PathBuf,
}

impl CatalogSource {
    /// The catalog of the node whose data dir is `data`.
    pub fn new(data: &Path) -> Self {
        Self { data: data.to_owned() }
    }

    fn open(&self) -> anyhow::Result<crate::catalog::NodeCatalog> {
        crate::catalog::NodeCatalog::open(&self.data)
    }
}

impl AppSource for CatalogSource {
    fn versions(&self, id: &str) -> anyhow::Result<Vec<semver::Version>> {
        Ok(self.open()?.apps().into_iter().filter(|a| a.id == id).map(|a| a.version).collect())
    }

    fn manifest(&self, id: &str, version: Option<&semver::Version>) -> anyhow::Result<VerifiedManifest> {
        self.open()?.manifest(id, version)
    }

    fn fetch_archive<'a>(&'a self, target: &'a str) -> BoxFuture<'a, anyhow::Result<PathBuf>> {
        Box::pin(async move {
            // A manifest names `<app>/<file>`; the catalog holds it as `images/<app>/<file>`.
            let catalog = self.open()?;
            catalog.fetch_target(&catalog::repo::image_target_path(target)).await
        })
    }
}
