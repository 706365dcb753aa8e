//! Where the node's installs come from: [`CatalogSource`] (the origin's verified catalog),
//! [`NostrSource`] (apps found on Nostr), and [`NodeSource`], which asks the origin's catalog
//! first.
//!
//! Both hand the orchestrator [`VerifiedManifest`]s only: a Nostr app's manifest comes from an
//! envelope that passed every check of [`crate::nostr::state`] (re-run on the stored events each
//! time the source is asked), and the install policy ([`crate::nostr::policy`]) runs before it is
//! handed out. A refusal is [`SourceError::Refused`], so callers can tell it from "not found".

use std::path::PathBuf;
use std::sync::Arc;

use catalog::envelope::VerifiedManifest;

use crate::catalog::NodeCatalog;
use crate::data_dir::DataDir;
use crate::nostr::view::{NostrView, ResolveError};
use crate::orchestrator::source::{AppSource, BoxFuture, SourceError};
use crate::sync::{NoProgress, fetch_target};

/// Where `install`, `update` and `apps` look for apps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Source {
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
pub(crate) struct NostrSource {
    data: DataDir,
}

impl NostrSource {
    /// The Nostr apps of the node whose data dir is `data`.
    pub(crate) fn new(data: &DataDir) -> Self {
        Self { data: data.clone() }
    }

    /// Why the key statements on Nostr refuse `did`, if they do.
    fn refusal(&self, did: &catalog::DidKey) -> Option<String> {
        let state = crate::nostr::state::NostrState::load(&self.data);
        state.discovery().lineage().standing(did).refusal(did)
    }

    /// The stored events checked again, with the scores of the seeds `config.toml` names now.
    fn view(&self) -> Result<NostrView, SourceError> {
        let config = self.data.config().map_err(|e| SourceError::Io(format!("{e:#}")))?;
        NostrView::load(&self.data, &config).map_err(|e| SourceError::Io(format!("{e:#}")))
    }
}

fn no_archives(target: &str) -> SourceError {
    SourceError::NotFound(format!(
        "image archive `{target}`: apps found on Nostr carry no signed metadata for archives, so their \
         images must be named by digest"
    ))
}

impl AppSource for NostrSource {
    fn versions(&self, id: &str) -> Result<Vec<semver::Version>, SourceError> {
        Ok(self.view()?.versions(id))
    }

    fn manifest(&self, id: &str, version: Option<&semver::Version>) -> Result<VerifiedManifest, SourceError> {
        self.view()?.resolve(id, version).map_err(|e| match e {
            ResolveError::Refused(refusal) => SourceError::Refused(refusal.to_string()),
            e @ ResolveError::NotFound(_) => SourceError::NotFound(e.to_string()),
            e @ ResolveError::NotFetched { .. } => SourceError::NotFetched(e.to_string()),
            other => SourceError::Invalid(other.to_string()),
        })
    }

    fn fetch_archive<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<PathBuf, SourceError>> {
        Box::pin(async move { Err(no_archives(target)) })
    }

    /// A key succession (or a revocation naming its successor) leads from `installed` to
    /// `offered`, and nothing on the way is refused.
    fn continues(&self, _id: &str, installed: &catalog::DidKey, offered: &catalog::DidKey) -> bool {
        self.view().is_ok_and(|v| v.state().discovery().lineage().lineage_of(offered).contains(installed))
    }
}

/// The node's apps: the origin's verified catalog first, Nostr for apps it does not have (or
/// only one of them, by [`Source`]).
#[derive(Debug, Clone)]
pub(crate) struct NodeSource {
    origin: CatalogSource,
    nostr: NostrSource,
    source: Source,
}

impl NodeSource {
    /// The apps of the node whose data dir is `data`, from `source`.
    pub(crate) fn new(data: &DataDir, source: Source) -> Self {
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
    fn versions(&self, id: &str) -> Result<Vec<semver::Version>, SourceError> {
        if self.use_origin(id) { self.origin.versions(id) } else { self.nostr.versions(id) }
    }

    fn manifest(&self, id: &str, version: Option<&semver::Version>) -> Result<VerifiedManifest, SourceError> {
        if self.use_origin(id) {
            let manifest = self.origin.manifest(id, version)?;
            // A key its owner revoked on Nostr is refused wherever its manifests come from.
            if let Some(why) = self.nostr.refusal(manifest.publisher()) {
                return Err(SourceError::Refused(format!("{id} {}: {why}", manifest.manifest().version)));
            }
            return Ok(manifest);
        }
        match self.nostr.manifest(id, version) {
            Err(e) if self.source == Source::All && e.is_not_found() => {
                let what = version.map_or_else(|| id.to_owned(), |v| format!("{id} {v}"));
                Err(SourceError::NotFound(format!(
                    "{what} is neither in the origin's verified catalog nor offered on Nostr"
                )))
            }
            other => other,
        }
    }

    fn fetch_archive<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<PathBuf, SourceError>> {
        // Archives are named `<app>/<file>`: the app decides the source.
        let app = target.split('/').next().unwrap_or_default();
        if self.use_origin(app) { self.origin.fetch_archive(target) } else { self.nostr.fetch_archive(target) }
    }

    fn continues(&self, id: &str, installed: &catalog::DidKey, offered: &catalog::DidKey) -> bool {
        if self.use_origin(id) {
            self.origin.continues(id, installed, offered)
        } else {
            self.nostr.continues(id, installed, offered)
        }
    }
}

/// The node's synced, verified catalog ([`NodeCatalog`]), opened afresh on each
/// call so a sync that lands meanwhile is seen. Archives are fetched through the node's sync and
/// verified against their signed length and BLAKE3 before they are handed out.
#[derive(Debug, Clone)]
pub(crate) struct CatalogSource {
    data: DataDir,
}

impl CatalogSource {
    /// The catalog of the node whose data dir is `data`.
    pub(crate) fn new(data: &DataDir) -> Self {
        Self { data: data.clone() }
    }

    fn open(&self) -> Result<NodeCatalog, SourceError> {
        // No catalog yet: it has nothing.
        NodeCatalog::open(&self.data).map_err(|e| SourceError::NotFound(format!("{e:#}")))
    }

    /// The catalog, refused once its timestamp has expired: TUF §5.4.5 makes an update stop at
    /// expired metadata, and the same holds for what is installed from it, or a freeze (an
    /// attacker or a dead origin keeping the node on an old catalog) would never end.
    fn fresh(&self) -> Result<NodeCatalog, SourceError> {
        let catalog = self.open()?;
        // The transparency log: no install after a split view, nor before the witnesses required.
        let config = self.data.config().map_err(|e| SourceError::Refused(format!("{e:#}")))?;
        crate::sync::witness::install_gate(&self.data, &config).map_err(SourceError::Refused)?;
        match catalog.state().expires {
            Some(expires) if expires <= chrono::Utc::now() => Err(SourceError::Expired(format!(
                "the verified catalog expired at {} (timestamp v{}); run `archy-node sync` to get a fresh one",
                expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                catalog.state().timestamp_version
            ))),
            _ => Ok(catalog),
        }
    }
}

impl AppSource for CatalogSource {
    fn versions(&self, id: &str) -> Result<Vec<semver::Version>, SourceError> {
        Ok(self.open()?.apps().into_iter().filter(|a| a.id == id).map(|a| a.version).collect())
    }

    fn manifest(&self, id: &str, version: Option<&semver::Version>) -> Result<VerifiedManifest, SourceError> {
        let catalog = self.fresh()?;
        let listed: Vec<_> =
            catalog.apps().into_iter().filter(|a| a.id == id && version.is_none_or(|v| &a.version == v)).collect();
        // Newest first; a version whose publisher key the origin revoked is never installed,
        // so without a version asked for, the newest one not revoked is taken.
        let Some(chosen) = listed.iter().find(|a| a.revoked.is_none()) else {
            return Err(match listed.first() {
                Some(app) => SourceError::Refused(format!(
                    "{id} {}: {} (the origin no longer vouches for what that key signed)",
                    app.version,
                    app.revoked.as_deref().unwrap_or_default()
                )),
                None => SourceError::NotFound(match version {
                    Some(v) => format!("{id} {v} is not in the verified catalog"),
                    None => format!("{id} is not in the verified catalog"),
                }),
            });
        };
        catalog.manifest(id, Some(&chosen.version)).map_err(|e| SourceError::Invalid(format!("{e:#}")))
    }

    fn fetch_archive<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<PathBuf, SourceError>> {
        Box::pin(async move {
            // A manifest names `<app>/<file>`; the catalog holds it as `images/<app>/<file>`.
            let catalog = self.fresh()?;
            let config = self.data.config().map_err(|e| SourceError::Io(format!("{e:#}")))?;
            let path = catalog::repo::image_target_path(target);
            if catalog.file(&path).is_none() {
                return Err(SourceError::NotFound(format!("`{path}` is not in the catalog")));
            }
            fetch_target(&self.data, &config, &catalog, &path, Arc::new(NoProgress))
                .await
                .map(|fetched| fetched.path)
                .map_err(|e| SourceError::Io(format!("{e:#}")))
        })
    }

    /// The origin rotated the role of `installed` to the role of `offered` (following
    /// successors, signed by the targets key in the trusted top-level targets).
    fn continues(&self, _id: &str, installed: &catalog::DidKey, offered: &catalog::DidKey) -> bool {
        let Ok(catalog) = self.open() else { return false };
        let keys = &catalog.state().publisher_keys;
        let (installed, offered) = (installed.to_string(), offered.to_string());
        let mut role = keys.iter().find(|k| k.dids.contains(&installed)).map(|k| k.record.clone());
        for _ in 0..catalog::keylife::MAX_CHAIN {
            let Some(next) = role.as_ref().and_then(|r| r.successor.clone()) else { return false };
            if catalog.apps().iter().any(|a| a.role == next && a.publisher == offered) {
                return true;
            }
            role = keys.iter().find(|k| k.role == next).map(|k| k.record.clone());
        }
        false
    }
}
