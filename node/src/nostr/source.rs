//! Installing apps found on Nostr: [`NostrSource`], and [`NodeSource`], which asks the origin's
//! catalog first.
//!
//! Both hand the orchestrator [`VerifiedManifest`]s only: a Nostr app's manifest comes from an
//! envelope that passed every check of [`super::state`] (re-run on the stored events each time
//! the source is asked), and the install policy ([`super::policy`]) runs before it is handed
//! out. A refusal is a [`super::policy::Refusal`] inside the error, so callers can tell it from
//! "not found".

use std::path::{Path, PathBuf};

use catalog::envelope::VerifiedManifest;

use super::view::{NostrView, ResolveError};
use crate::orchestrator::source::{AppSource, BoxFuture, CatalogSource};

/// Where `install`, `update` and `apps` look for apps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The origin's catalog first; Nostr for apps the catalog does not have.
    #[default]
    All,
    /// Only the origin's verified catalog.
    Origin,
    /// Only apps found on Nostr (subject to `[nostr_policy]`).
    Nostr,
}

/// Verified apps found on Nostr, subject to the install policy.
#[derive(Debug, Clone)]
pub struct NostrSource {
    data: PathBuf,
}

impl NostrSource {
    /// The Nostr apps of the node whose data dir is `data`.
    pub fn new(data: &Path) -> Self {
        Self { data: data.to_owned() }
    }

    fn view(&self) -> anyhow::Result<NostrView> {
        NostrView::load(&self.data)
    }
}

fn no_archives(target: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "image archive `{target}`: apps found on Nostr carry no signed metadata for archives, so their \
         images must be named by digest"
    )
}

impl AppSource for NostrSource {
    fn versions(&self, id: &str) -> anyhow::Result<Vec<semver::Version>> {
        Ok(self.view()?.versions(id))
    }

    fn manifest(&self, id: &str, version: Option<&semver::Version>) -> anyhow::Result<VerifiedManifest> {
        match self.view()?.resolve(id, version) {
            Ok(m) => Ok(m),
            Err(ResolveError::Refused(refusal)) => Err(anyhow::Error::new(refusal)),
            Err(e) => Err(anyhow::Error::new(e)),
        }
    }

    fn fetch_archive<'a>(&'a self, target: &'a str) -> BoxFuture<'a, anyhow::Result<PathBuf>> {
        Box::pin(async move { Err(no_archives(target)) })
    }
}

/// The node's apps: the origin's verified catalog first, Nostr for apps it does not have (or
/// only one of them, by [`Source`]).
#[derive(Debug, Clone)]
pub struct NodeSource {
    origin: CatalogSource,
    nostr: NostrSource,
    source: Source,
}

impl NodeSource {
    /// The apps of the node whose data dir is `data`, from `source`.
    pub fn new(data: &Path, source: Source) -> Self {
        Self { origin: CatalogSource::new(data), nostr: NostrSource::new(data), source }
    }

    /// Whether the origin's catalog has any version of `id` (without a catalog, it has none).
    fn origin_has(&self, id: &str) -> bool {
        self.origin.versions(id).is_ok_and(|v| !v.is_empty())
    }

    fn use_origin(&self, id: &str) -> bool {
        match self.source {
            Source::Origin => true,
            Source::Nostr => false,
            Source::All => self.origin_has(id),
        }
    }
}

impl AppSource for NodeSource {
    fn versions(&self, id: &str) -> anyhow::Result<Vec<semver::Version>> {
        if self.use_origin(id) { self.origin.versions(id) } else { self.nostr.versions(id) }
    }

    fn manifest(&self, id: &str, version: Option<&semver::Version>) -> anyhow::Result<VerifiedManifest> {
        if self.use_origin(id) {
            return self.origin.manifest(id, version);
        }
        let found = self.nostr.manifest(id, version);
        match found {
            Err(e)
                if self.source == Source::All
                    && e.downcast_ref::<ResolveError>().is_some_and(ResolveError::is_not_found) =>
            {
                let what = version.map_or_else(|| id.to_owned(), |v| format!("{id} {v}"));
                Err(anyhow::anyhow!("{what} is neither in the origin's verified catalog nor offered on Nostr"))
            }
            other => other,
        }
    }

    fn fetch_archive<'a>(&'a self, target: &'a str) -> BoxFuture<'a, anyhow::Result<PathBuf>> {
        // Archives are named `<app>/<file>`: the app decides the source.
        let app = target.split('/').next().unwrap_or_default();
        if self.use_origin(app) { self.origin.fetch_archive(target) } else { self.nostr.fetch_archive(target) }
    }
}
