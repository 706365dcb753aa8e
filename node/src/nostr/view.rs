//! The Nostr side of the node as commands see it: the stored events checked again, the trust
//! scores over them, the apps they offer and the install policy.

use crate::data_dir::DataDir;

use archy_nostr::event::bech32_npub;
use archy_nostr::nostr_sdk::PublicKey;
use catalog::DidKey;
use catalog::envelope::VerifiedManifest;
use serde::Serialize;

use super::admission::Admission;
use super::policy::{Admitted, Refusal};
use super::state::{HeldBack, NostrRelease, NostrState};
use super::trust::{self, TrustScores};
use crate::config::Config;

/// An app version found on Nostr, as `archy-node apps` lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct NostrApp {
    /// App id.
    pub id: String,
    /// Version.
    pub version: semver::Version,
    /// Title.
    pub title: String,
    /// The publisher's DID.
    pub publisher: String,
    /// The Nostr key that announced it.
    pub npub: String,
    /// The publisher's trust score (the best of its bound keys), `0..=100`.
    pub score: f64,
    /// Always `nostr` (origin entries say `origin` or `peer …`).
    pub source: String,
    /// BLAKE3 of the envelope.
    pub blake3: String,
    /// Envelope size.
    pub length: u64,
    /// The release event's id.
    pub event: String,
    /// Why the node holds only the announcement, not the envelope (the install policy did not
    /// admit the publisher when the relays were read, or the envelope is gone); absent when the
    /// envelope is held and verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_back: Option<String>,
}

/// Why a Nostr app cannot be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ResolveError {
    /// Nothing on Nostr offers it.
    #[error("{0}")]
    NotFound(String),
    /// The install policy refused every publisher offering it.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The policy admits the publisher now, but the envelope was not fetched when the relays
    /// were read.
    #[error(
        "{app} {version} by {did} was held back when the relays were last read, so its envelope is not here; run `archy-node sync` to fetch it"
    )]
    NotFetched {
        /// The app.
        app: String,
        /// The version.
        version: String,
        /// The publisher.
        did: String,
    },
    /// Several admitted publishers offer it: none is chosen.
    #[error(
        "refused: {app} is offered on Nostr by several publishers the policy admits ({publishers}); add all but the one you want to nostr_policy.deny"
    )]
    Ambiguous {
        /// The app.
        app: String,
        /// Their DIDs.
        publishers: String,
    },
}

/// The stored Nostr events, checked again, with scores.
#[derive(Debug)]
pub(crate) struct NostrView {
    state: NostrState,
    admission: Admission,
}

impl NostrView {
    /// Loads and checks the stored events of `data`, then computes the scores from the seeds
    /// `config` names.
    pub(crate) fn load(data: &DataDir, config: &Config) -> anyhow::Result<Self> {
        let state = NostrState::load(data);
        let admission = Admission::compute(data, config, &state)?;
        Ok(Self { state, admission })
    }

    /// The checked state.
    pub(crate) fn state(&self) -> &NostrState {
        &self.state
    }

    /// The scores.
    pub(crate) fn trust(&self) -> &TrustScores {
        self.admission.scores()
    }

    fn listing(&self, r: &NostrRelease) -> NostrApp {
        let m = r.manifest.manifest();
        NostrApp {
            id: m.id.to_string(),
            version: m.version.clone(),
            title: m.title.clone(),
            publisher: m.publisher.to_string(),
            npub: bech32_npub(&r.npub()),
            score: self.trust().publisher_score(&self.state, r.did()).0,
            source: "nostr".into(),
            blake3: r.hash.to_hex().to_string(),
            length: r.size,
            event: r.event.id.to_hex(),
            held_back: None,
        }
    }

    fn held_listing(&self, h: &HeldBack) -> NostrApp {
        let why = match self.check_policy(&h.release.did) {
            Err(refusal) => format!("{refusal}; its envelope was not fetched"),
            Ok(_) => "its envelope is not here yet; `archy-node sync` fetches it".to_owned(),
        };
        NostrApp {
            id: h.release.app.to_string(),
            version: h.release.version.clone(),
            title: h.title.clone(),
            publisher: h.release.did.to_string(),
            npub: bech32_npub(&h.event.pubkey),
            score: self.trust().publisher_score(&self.state, &h.release.did).0,
            source: "nostr".into(),
            blake3: h.release.hash.to_hex().to_string(),
            length: h.release.size,
            event: h.event.id.to_hex(),
            held_back: Some(why),
        }
    }

    /// Every unrevoked app version, by id, then newest first, then highest score.
    pub(crate) fn apps(&self) -> Vec<NostrApp> {
        let mut apps: Vec<NostrApp> = self.state.releases().map(|r| self.listing(r)).collect();
        apps.extend(self.state.held_back().map(|h| self.held_listing(h)));
        apps.sort_by(|a, b| a.id.cmp(&b.id).then(b.version.cmp(&a.version)).then(b.score.total_cmp(&a.score)));
        apps
    }

    /// The install policy's verdict on a publisher.
    pub(crate) fn check_policy(&self, did: &DidKey) -> Result<Admitted, Refusal> {
        self.admission.admits(&self.state, did)
    }

    /// The versions of `id` on Nostr (any publisher).
    pub(crate) fn versions(&self, id: &str) -> Vec<semver::Version> {
        let mut v: Vec<_> = self
            .state
            .releases()
            .filter(|r| r.manifest.manifest().id.as_str() == id)
            .map(|r| r.manifest.manifest().version.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The manifest to install for `id` (at `version`, else the newest): among the publishers
    /// that offer it, those the policy admits, the highest-scoring one.
    pub(crate) fn resolve(
        &self,
        id: &str,
        version: Option<&semver::Version>,
    ) -> Result<VerifiedManifest, ResolveError> {
        let offers: Vec<&NostrRelease> = self
            .state
            .releases()
            .filter(|r| {
                let m = r.manifest.manifest();
                m.id.as_str() == id && version.is_none_or(|v| &m.version == v)
            })
            .collect();
        let held: Vec<&HeldBack> = self
            .state
            .held_back()
            .filter(|h| h.release.app.as_str() == id && version.is_none_or(|v| &h.release.version == v))
            .collect();
        if offers.is_empty()
            && held.is_empty()
            && let Some(why) = self.state.key_refused(id)
        {
            return Err(ResolveError::Refused(Refusal {
                rule: super::policy::KEY_RULE,
                detail: format!("the releases of {id} on Nostr were dropped: {why}"),
            }));
        }
        if offers.is_empty() && held.is_empty() {
            return Err(ResolveError::NotFound(match version {
                Some(v) => format!("{id} {v} is not offered on Nostr"),
                None => format!("{id} is not offered on Nostr"),
            }));
        }
        let mut admitted = Vec::new();
        let mut refused = Vec::new();
        for r in offers {
            let score = self.trust().publisher_score(&self.state, r.did()).0;
            match self.check_policy(r.did()) {
                Ok(_) => admitted.push((score, r)),
                Err(refusal) => refused.push((score, refusal)),
            }
        }
        // One admitted publisher per app id: when several offer it, none is chosen (a publisher
        // admitted for its own apps would otherwise take over another's id by announcing a
        // higher version); the operator decides with `deny` (or `allow` and `min_score`).
        // Held-back releases whose publisher the policy admits now count too (the next read
        // fetches them).
        let mut not_fetched = Vec::new();
        for h in held {
            let score = self.trust().publisher_score(&self.state, &h.release.did).0;
            match self.check_policy(&h.release.did) {
                Ok(_) => not_fetched.push(h),
                Err(refusal) => refused.push((score, refusal)),
            }
        }
        // A publisher that moved to a new key is still one publisher: its old and new DIDs count
        // as the key that speaks for its apps now (the lineage's head).
        let lineage = self.state.discovery().lineage();
        let speaker = |did: &DidKey| lineage.head(did).unwrap_or_else(|| did.clone()).to_string();
        let mut publishers: Vec<String> = admitted
            .iter()
            .map(|(_, r)| speaker(r.did()))
            .chain(not_fetched.iter().map(|h| speaker(&h.release.did)))
            .collect();
        publishers.sort();
        publishers.dedup();
        if publishers.len() > 1 {
            return Err(ResolveError::Ambiguous { app: id.to_owned(), publishers: publishers.join(", ") });
        }
        // The newest version of the one admitted publisher.
        admitted.sort_by(|a, b| b.1.manifest.manifest().version.cmp(&a.1.manifest.manifest().version));
        if let Some((_, best)) = admitted.first() {
            return Ok(best.manifest.clone());
        }
        if let Some(h) = not_fetched.first() {
            return Err(ResolveError::NotFetched {
                app: id.to_owned(),
                version: h.release.version.to_string(),
                did: h.release.did.to_string(),
            });
        }
        refused.sort_by(|a, b| b.0.total_cmp(&a.0));
        Err(ResolveError::Refused(refused.remove(0).1))
    }

    /// The stored key of `text`: an npub or a DID's best-scoring bound key.
    pub(crate) fn subject_keys(&self, text: &str) -> anyhow::Result<(Option<DidKey>, Vec<PublicKey>)> {
        if text.starts_with("did:") {
            let did: DidKey = text.parse().map_err(|e| anyhow::anyhow!("`{text}` is not a did:key: {e}"))?;
            let keys = self.state.discovery().npubs_of(&did);
            return Ok((Some(did), keys));
        }
        let key = trust::parse_npub(text)?;
        Ok((None, vec![key]))
    }
}
