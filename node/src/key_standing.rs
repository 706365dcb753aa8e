//! Publisher keys the node no longer trusts as they were, from both of its sources, and the
//! installed apps they concern:
//!
//! - the origin's publisher roles whose key was retired or revoked, as the trusted top-level
//!   targets record them ([`PublisherKey`], kept in each catalog generation);
//! - the DIDs that Nostr key statements concern, with their standing under the lineage rules
//!   ([`catalog::keylife`]).
//!
//! An installed app whose publisher is revoked on either side is **flagged**: `archy-node status`
//! names it, and no update or new install from that key is made.

use serde::Serialize;

use crate::catalog::{NodeCatalog, PublisherKey};
use crate::data_dir::DataDir;
use crate::nostr::state::NostrState;
use crate::orchestrator::state::StateDir;

/// A DID some Nostr key statement concerns, with its standing.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NostrKey {
    /// The DID.
    pub did: String,
    /// Its standing.
    #[serde(flatten)]
    pub standing: catalog::keylife::Standing,
}

/// An installed app whose publisher key is revoked.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FlaggedApp {
    /// App id.
    pub app: String,
    /// Installed version.
    pub version: semver::Version,
    /// The publisher DID that signed it.
    pub publisher: String,
    /// Why it is flagged, naming the rule.
    pub reason: String,
}

/// Every non-plain publisher key the node knows of, and the installed apps they flag.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct KeyReport {
    /// The origin's retired and revoked publisher roles.
    pub origin: Vec<PublisherKey>,
    /// DIDs named by Nostr key statements.
    pub nostr: Vec<NostrKey>,
    /// Installed apps signed by a revoked key.
    pub flagged: Vec<FlaggedApp>,
}

impl KeyReport {
    /// Reads the catalog, the Nostr events and the installed apps of `data`.
    pub(crate) fn gather(data: &DataDir) -> Self {
        let origin = NodeCatalog::open(data).map(|c| c.state().publisher_keys.clone()).unwrap_or_default();
        let nostr_state = NostrState::load(data);
        let lineage = nostr_state.discovery().lineage();
        let nostr: Vec<NostrKey> = lineage
            .standings()
            .into_iter()
            .map(|(did, standing)| NostrKey { did: did.to_string(), standing })
            .collect();
        let mut flagged = Vec::new();
        if let Ok(state) = StateDir::open(&data.orchestrator_dir())
            && let Ok(records) = state.load_all()
        {
            for record in records {
                let Ok(manifest) = state.stored_manifest(&record.app, &record.version, None) else { continue };
                let did = manifest.publisher();
                let from_origin = origin
                    .iter()
                    .find(|k| k.is_revoked() && k.dids.contains(&did.to_string()))
                    .map(PublisherKey::describe);
                let reason = from_origin.or_else(|| lineage.standing(did).refusal(did));
                if let Some(reason) = reason {
                    flagged.push(FlaggedApp {
                        app: record.app.clone(),
                        version: record.version.clone(),
                        publisher: did.to_string(),
                        reason,
                    });
                }
            }
        }
        Self { origin, nostr, flagged }
    }

    /// Human-readable lines (empty when there is nothing to say).
    pub(crate) fn render(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for f in &self.flagged {
            lines.push(format!(
                "FLAGGED: {} {} is signed by a revoked publisher key ({}): {}",
                f.app, f.version, f.publisher, f.reason
            ));
        }
        for k in &self.origin {
            lines.push(format!("origin: {} (key {})", k.describe(), k.dids.join(", ")));
        }
        for k in &self.nostr {
            lines.push(format!("nostr: {} {}", k.did, standing_text(&k.standing)));
        }
        lines
    }
}

/// A standing in words.
pub(crate) fn standing_text(standing: &catalog::keylife::Standing) -> String {
    use catalog::keylife::Standing;
    match standing {
        Standing::Active => "stands on its own".into(),
        Standing::Succeeded { by } => format!("succeeded by {by} (its apps continue under that key)"),
        Standing::Revoked { successor: Some(s) } => format!("REVOKED by its own key; its apps continue under {s}"),
        Standing::Revoked { successor: None } => "REVOKED by its own key".into(),
        Standing::SuccessorOfRevoked { from } => {
            format!("REFUSED: holds its standing only through a succession from the revoked key {from}")
        }
        Standing::ChainTooLong => "REFUSED: descends from a longer chain of successions than a node follows".into(),
        Standing::Conflicting { successors } => {
            format!("named {} different successors; none is followed", successors.len())
        }
    }
}
