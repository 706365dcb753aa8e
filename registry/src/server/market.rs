//! The marketplace's index: every app version of the origin's catalog, each envelope verified by
//! this server the way a node verifies envelopes (its own signature, the placement rule for its
//! catalog entry, the stored bytes against the signed hashes), kept in memory per catalog version.
//! (The metadata is this server's own; its signatures are what nodes check.)
//!
//! Only what verifies is shown; an entry that does not is left out and counted. A role the origin
//! revoked shows its versions marked (nodes will not install them); a yanked role shows nothing.

use std::collections::BTreeMap;
use std::path::Path;

use catalog::envelope::{MAX_ENVELOPE_BYTES, SignedEnvelope};
use catalog::keylife::RoleKeyState;
use catalog::manifest::{Limits, Manifest};
use catalog::metadata::DelegationIndex;
use catalog::repo::{Expiry, Repository, consistent_target_path};
use chrono::{DateTime, Utc};

/// The largest icon the marketplace serves.
pub(crate) const MAX_ICON_BYTES: u64 = 1024 * 1024;

/// One verified app version.
#[derive(Debug, Clone)]
pub(crate) struct MarketVersion {
    /// The verified manifest.
    pub manifest: Manifest,
    /// BLAKE3 of the manifest's canonical bytes (what the publisher signed).
    pub manifest_hash: String,
    /// The TUF key id of the publisher key.
    pub keyid: String,
    /// The publisher role listing it.
    pub role: String,
    /// That role's metadata version.
    pub role_version: u64,
    /// Set when the origin revoked the role's key: why nodes will not install it.
    pub revoked: Option<String>,
    /// The version's icon in the catalog (`images/<app>/icon-<version>.<ext>`, listed by the same
    /// role): its target path and signed description.
    pub icon: Option<(String, catalog::metadata::TargetFile)>,
    /// When this origin took the version into its catalog (its stored file's time).
    pub added: Option<DateTime<Utc>>,
}

/// Every version of one app, newest first.
#[derive(Debug, Clone)]
pub(crate) struct MarketApp {
    /// Newest first (never empty).
    pub versions: Vec<MarketVersion>,
}

impl MarketApp {
    /// The version the app is shown by: the newest one whose key the origin did not revoke (a
    /// revoked key's last version never speaks for the app), else the newest.
    pub(crate) fn newest(&self) -> &MarketVersion {
        self.versions.iter().find(|v| v.revoked.is_none()).unwrap_or(&self.versions[0])
    }

    /// Whether `query` (lowercase) is in the id, title or summary of the newest version.
    pub(crate) fn matches(&self, query: &str) -> bool {
        let m = &self.newest().manifest;
        query.is_empty()
            || m.id.as_str().contains(query)
            || m.title.to_lowercase().contains(query)
            || m.summary.to_lowercase().contains(query)
    }

    /// Whether the newest version lists `category` (empty: any).
    pub(crate) fn in_category(&self, category: &str) -> bool {
        category.is_empty() || self.newest().manifest.categories.iter().any(|c| c == category)
    }
}

/// The verified catalog, as the marketplace shows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Market {
    /// Apps by id.
    pub apps: BTreeMap<String, MarketApp>,
    /// The timestamp version it was built from.
    pub timestamp_version: u64,
    /// When this server verified it.
    pub verified_at: Option<DateTime<Utc>>,
    /// Entries left out because they did not verify (path: why).
    pub refused: Vec<String>,
    /// Every category of the apps' shown versions, with how many apps list it.
    pub categories: BTreeMap<String, usize>,
}

impl Market {
    /// Reads and verifies every app version of the repository in `repo_dir`.
    pub(crate) fn build(repo_dir: &Path, timestamp_version: u64, now: DateTime<Utc>) -> anyhow::Result<Self> {
        let repo = Repository::load(repo_dir, Expiry::default())?;
        let mut market = Self { timestamp_version, verified_at: Some(now), ..Self::default() };
        let Some(delegations) = repo.targets().delegations.as_ref() else { return Ok(market) };
        let index = DelegationIndex::new(delegations);
        let limits = Limits::default();
        for role in delegations.roles.iter().flatten() {
            let state = RoleKeyState::of(role);
            let Some(md) = repo.delegated(&role.name) else { continue };
            for (path, file) in md.targets.iter().filter(|(p, _)| p.starts_with("apps/")) {
                // Only the role the search reaches for this path (TUF 1.0 §5.6.7) speaks for it;
                // a yanked role reaches nothing.
                let owner = delegations.roles_for_target_indexed(&index, path).into_iter().next();
                if owner.as_ref().map(|(r, _)| r.as_str()) != Some(role.name.as_str()) {
                    continue;
                }
                let stored = repo_dir.join("targets").join(consistent_target_path(path, file));
                let checked = (|| -> anyhow::Result<_> {
                    if file.length > MAX_ENVELOPE_BYTES as u64 {
                        anyhow::bail!("{} bytes is more than an envelope may be", file.length);
                    }
                    let bytes = std::fs::read(&stored)?;
                    file.verify_bytes(&bytes)?;
                    let verified = SignedEnvelope::from_slice(&bytes)?.verify(&limits)?;
                    verified.check_placement(path, &role.name, &role.keyids)?;
                    Ok(verified)
                })();
                match checked {
                    Ok(verified) => {
                        let manifest = verified.manifest().clone();
                        let keyid = catalog::keys::PublicKey::ed25519(&manifest.publisher.verifying_key()).key_id();
                        let revoked =
                            state.as_ref().filter(|s| s.state == catalog::keylife::RoleState::Revoked).map(|s| {
                                format!("the origin revoked the key of publisher role `{}` ({})", role.name, s.since)
                            });
                        // The icon the same role lists for this version, if any.
                        let icon = catalog::repo::ICON_TYPES.iter().find_map(|(ext, _)| {
                            let path = format!("images/{}/icon-{}.{ext}", manifest.id, manifest.version);
                            let owner = delegations.roles_for_target_indexed(&index, &path).into_iter().next();
                            let file = md.targets.get(&path)?;
                            (owner.is_some_and(|(r, _)| r == role.name) && file.length <= MAX_ICON_BYTES)
                                .then(|| (path, file.clone()))
                        });
                        let added =
                            std::fs::metadata(&stored).and_then(|m| m.modified()).ok().map(DateTime::<Utc>::from);
                        let version = MarketVersion {
                            added,
                            icon,
                            manifest_hash: verified.manifest_hash().to_hex().to_string(),
                            manifest,
                            keyid,
                            role: role.name.clone(),
                            role_version: md.version,
                            revoked,
                        };
                        let id = version.manifest.id.to_string();
                        market
                            .apps
                            .entry(id)
                            .or_insert_with(|| MarketApp { versions: Vec::new() })
                            .versions
                            .push(version);
                    }
                    Err(e) => market.refused.push(format!("{path}: {e:#}")),
                }
            }
        }
        for app in market.apps.values_mut() {
            app.versions.sort_by(|a, b| b.manifest.version.cmp(&a.manifest.version));
        }
        for app in market.apps.values() {
            for c in &app.newest().manifest.categories {
                *market.categories.entry(c.clone()).or_default() += 1;
            }
        }
        for refused in &market.refused {
            tracing::warn!("the marketplace leaves out {refused}");
        }
        Ok(market)
    }
}
