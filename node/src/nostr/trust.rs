//! Publisher trust scores as the node computes them (`docs/trust.md` has the rules).
//!
//! Seeds, each with weight 1:
//! - the operator's keys, `[trust] seeds` in `config.toml`;
//! - the origin's key, taken as the Nostr keys bound (by a verified binding event) to the DIDs
//!   the origin's verified TUF catalog delegates to: the publisher roles of the node's current
//!   catalog generation (decision D14 in `docs/decisions.md`).
//!
//! The graph is the verified follow lists and `archy` labels the node holds. A publisher DID's
//! score is the highest score of the Nostr keys bound to it.

use crate::data_dir::DataDir;
use std::collections::{BTreeSet, HashMap};

use anyhow::Context as _;
use archy_nostr::event::bech32_npub;
use archy_nostr::nostr_sdk::PublicKey;
use archy_nostr::social::{graph_key, nostr_key};
use catalog::DidKey;
use catalog::metadata::{Root, SignedMetadata, Targets};
use catalog::trust::{Explanation, Graph, GraphBuilder, Params};
use serde::Serialize;

use super::state::NostrState;
use crate::config::Config;

/// Why a key is a seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub(crate) enum SeedReason {
    /// Listed in `[trust] seeds`.
    Operator,
    /// Bound to a publisher the origin's catalog delegates to.
    Origin {
        /// The publisher's DID.
        did: String,
    },
}

impl std::fmt::Display for SeedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Operator => f.write_str("your seed"),
            Self::Origin { did } => write!(f, "origin publisher {did}"),
        }
    }
}

/// A seed key and why it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seed {
    /// The key.
    pub key: PublicKey,
    /// Why.
    pub reason: SeedReason,
}

/// Parses a Nostr public key: `npub1…` or 64 hex digits.
pub(crate) fn parse_npub(text: &str) -> anyhow::Result<PublicKey> {
    let text = text.trim();
    if !(text.starts_with("npub1") || (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))) {
        anyhow::bail!("`{text}` is not an npub1… key or 64 hex digits");
    }
    PublicKey::parse(text).map_err(|e| anyhow::anyhow!("`{text}` is not a Nostr public key: {e}"))
}

/// The DIDs the origin's verified catalog delegates to: the Ed25519 keys of the publisher
/// roles in the current generation's `targets.json`, whose signature is checked again against
/// the generation's `root.json`. Empty when the node has no catalog yet.
pub(crate) fn origin_publishers(data: &DataDir) -> anyhow::Result<Vec<DidKey>> {
    let Some(dir) = crate::catalog::current_generation(data) else { return Ok(Vec::new()) };
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let root = SignedMetadata::<Root>::from_slice(&read("root.json")?, "root")?;
    let targets = SignedMetadata::<Targets>::from_slice(&read("targets.json")?, "targets")?;
    let role = root.signed.role("targets").context("the trusted root has no targets role")?;
    targets
        .verify_role("targets", &root.signed.keys, &role.keyids, role.threshold)
        .with_context(|| format!("{}: targets.json does not verify against root.json", dir.display()))?;
    let mut dids = BTreeSet::new();
    if let Some(delegations) = &targets.signed.delegations {
        for role in delegations.roles.iter().flatten() {
            for keyid in &role.keyids {
                if let Some(key) = delegations.keys.get(keyid).and_then(|k| k.as_ed25519()) {
                    dids.insert(DidKey::from_public_key(&key));
                }
            }
        }
    }
    Ok(dids.into_iter().collect())
}

/// The seeds: the operator's keys, then the keys bound to the origin's publishers.
pub(crate) fn seeds(config: &Config, state: &NostrState, origin_dids: &[DidKey]) -> anyhow::Result<Vec<Seed>> {
    let mut out: Vec<Seed> = Vec::new();
    for (i, text) in config.trust.seeds.iter().enumerate() {
        let key = parse_npub(text).with_context(|| format!("config.toml: trust.seeds[{i}]"))?;
        if !out.iter().any(|s| s.key == key) {
            out.push(Seed { key, reason: SeedReason::Operator });
        }
    }
    for did in origin_dids {
        for key in state.discovery().npubs_of(did) {
            if !out.iter().any(|s| s.key == key) {
                out.push(Seed { key, reason: SeedReason::Origin { did: did.to_string() } });
            }
        }
    }
    Ok(out)
}

/// Scores of every key the node knows, from one set of seeds.
#[derive(Debug)]
pub(crate) struct TrustScores {
    graph: Option<Graph>,
    scores: HashMap<PublicKey, f64>,
    seeds: Vec<Seed>,
    params: Params,
}

impl TrustScores {
    /// Builds the graph from `state`'s follows and labels and computes every score. Without
    /// seeds every score is 0.
    pub(crate) fn compute(state: &NostrState, seeds: Vec<Seed>) -> Self {
        let params = Params::default();
        let mut builder = GraphBuilder::new();
        for seed in &seeds {
            builder.seed(graph_key(&seed.key), 1.0);
        }
        state.inputs().fill(&mut builder);
        let graph = builder.build().ok();
        let scores = graph
            .as_ref()
            .map(|g| g.compute(&params).ranked().into_iter().filter_map(|(k, s)| Some((nostr_key(&k)?, s))).collect())
            .unwrap_or_default();
        Self { graph, scores, seeds, params }
    }

    /// A key's score, `0..=100`.
    pub(crate) fn score_of(&self, key: &PublicKey) -> f64 {
        self.scores.get(key).copied().unwrap_or(0.0)
    }

    /// The seeds used.
    pub(crate) fn seeds(&self) -> &[Seed] {
        &self.seeds
    }

    /// Why `key` is a seed, if it is one.
    pub(crate) fn seed_reason(&self, key: &PublicKey) -> Option<&SeedReason> {
        self.seeds.iter().find(|s| s.key == *key).map(|s| &s.reason)
    }

    /// A publisher's score: the highest of the keys bound to `did` or to a key it succeeded
    /// (scores carry over a succession), with that key.
    pub(crate) fn publisher_score(&self, state: &NostrState, did: &DidKey) -> (f64, Option<PublicKey>) {
        state
            .lineage_npubs(did)
            .into_iter()
            .map(|k| (self.score_of(&k), Some(k)))
            .fold((0.0, None), |best, next| if next.0 > best.0 || best.1.is_none() { next } else { best })
    }

    /// The strongest paths to `key`, its endorsers and reporters.
    pub(crate) fn explain(&self, key: &PublicKey, max_paths: usize) -> Option<Explanation> {
        let graph = self.graph.as_ref()?;
        graph.compute(&self.params).explain(&graph_key(key), max_paths)
    }
}

/// `npub1…` of a graph key.
pub(crate) fn npub_of(key: &catalog::trust::PublicKey) -> String {
    nostr_key(key).map_or_else(|| key.to_string(), |k| bech32_npub(&k))
}
