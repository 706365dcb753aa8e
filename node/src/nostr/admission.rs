//! What the node spends on whom: the install policy's verdict on each publisher, computed once
//! per read from the scores the node holds, decides whose envelopes are fetched, and a key's
//! trust decides what goes first when a cap of `[nostr.limits]` is reached.
//!
//! - A release is fetched only when the policy admits its publisher now (`deny`, `allow`,
//!   `min_score`, as at install). A publisher it does not admit costs the node one verified
//!   event, held back without its envelope, and no outbound request; a denied one costs nothing.
//! - Over a cap, the data of the keys with the lowest score goes first. Never evicted: the
//!   trust seeds, the keys named in `allow` (or bound to a DID named there), and the keys bound to
//!   a publisher whose releases the node holds.

use std::collections::HashSet;

use archy_nostr::nostr_sdk::PublicKey;
use catalog::DidKey;

use super::policy::{self, Admitted, Refusal};
use super::state::NostrState;
use super::trust::{self, TrustScores};
use crate::config::{Config, NostrPolicy};
use crate::data_dir::DataDir;

/// The policy and the scores of one moment.
#[derive(Debug)]
pub(crate) struct Admission {
    scores: TrustScores,
    policy: NostrPolicy,
    protected: HashSet<PublicKey>,
}

impl Admission {
    /// Scores every key `state` knows from the seeds `config` names (and the origin's
    /// publishers in `data`'s catalog).
    pub(crate) fn compute(data: &DataDir, config: &Config, state: &NostrState) -> anyhow::Result<Self> {
        let origin = trust::origin_publishers(data).unwrap_or_else(|e| {
            tracing::warn!("the origin's publishers are not trust seeds: {e:#}");
            Vec::new()
        });
        let seeds = trust::seeds(config, state, &origin)?;
        let mut protected: HashSet<PublicKey> = seeds.iter().map(|s| s.key).collect();
        for entry in &config.nostr_policy.allow {
            let entry = entry.trim();
            if let Ok(did) = entry.parse::<DidKey>() {
                protected.extend(state.discovery().npubs_of(&did));
            } else if let Ok(key) = trust::parse_npub(entry) {
                protected.insert(key);
            }
        }
        let scores = TrustScores::compute(state, seeds);
        Ok(Self { scores, policy: config.nostr_policy.clone(), protected })
    }

    /// The scores.
    pub(crate) fn scores(&self) -> &TrustScores {
        &self.scores
    }

    /// The install policy's verdict on the publisher `did`.
    pub(crate) fn admits(&self, state: &NostrState, did: &DidKey) -> Result<Admitted, Refusal> {
        if let Some(detail) = state.discovery().lineage().standing(did).refusal(did) {
            return Err(Refusal { rule: policy::KEY_RULE, detail });
        }
        let npubs = state.lineage_npubs(did);
        let (score, _) = self.scores.publisher_score(state, did);
        policy::check(&self.policy, did, &npubs, score)
    }

    /// How long `key`'s data is kept when a cap is reached: its score, or `f64::INFINITY` for a
    /// key that is never evicted.
    pub(crate) fn rank(&self, key: &PublicKey) -> f64 {
        if self.protected.contains(key) { f64::INFINITY } else { self.scores.score_of(key) }
    }
}
