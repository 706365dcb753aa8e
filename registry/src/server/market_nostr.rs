//! The marketplace's Nostr apps: releases announced on the origin's relay (the embedded one, and
//! any `--market-relay`), checked the way a node checks them ([`archy_nostr::discovery`]: the
//! Nostr signature, the DID↔npub binding, the DID signature over the release, versions only
//! forward, revocations, publisher key statements), and shown only when the origin hosts the
//! envelope (`POST /v1/blobs`) and it verifies on its own. Nothing is fetched from an event's
//! locations: the page shows what this server holds and checked.
//!
//! Each publisher is ranked by web-of-trust scores ([`catalog::trust`]) from the operator's seeds
//! (`--market-seed npub1…`) and the Nostr keys bound to the origin's own publishers, over the
//! follow lists (NIP-02) of the seeds and the keys they follow, and the archy endorsements and
//! reports (NIP-32 labels); each score comes with the strongest path that gives it.
//!
//! The relays are read every [`READ_EVERY`] (and at start), each query bounded by
//! [`QUERY_LIMIT`] events and [`TIMEOUT`]; a relay that fails leaves the previous view in place
//! and the failure is logged. An app a read does not see again (a flood of other events can push
//! it out of a bounded query) stays listed for [`KEEP_UNSEEN`] unless that read saw its
//! publisher revoke it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use archy_nostr::discovery::{Checked, Discovery};
use archy_nostr::event::{KIND_APP_DATA, TOPIC_APP, TOPIC_BIND, TOPIC_KEY, TOPIC_REVOKE, bech32_npub};
use archy_nostr::nostr_sdk::{Event, Filter, JsonUtil as _, PublicKey};
use archy_nostr::social::{KIND_LABEL, LABEL_NAMESPACE, TrustInputs, graph_key, nostr_key};
use catalog::DidKey;
use catalog::manifest::{Limits, Manifest};
use catalog::trust::{GraphBuilder, Params};

use super::Registry;

/// How often the relays are read again.
pub(crate) const READ_EVERY: Duration = Duration::from_secs(30);
/// Most events one query takes.
pub(crate) const QUERY_LIMIT: usize = 5000;
/// How long a relay may take to connect and to answer each query.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Most keys whose follow lists are read (the seeds and the keys they follow).
const MAX_FOLLOW_AUTHORS: usize = 1000;
/// How long an app no read sees again stays listed.
const KEEP_UNSEEN: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// One Nostr app: the newest release of the best-ranked publisher offering it.
#[derive(Debug, Clone)]
pub(crate) struct NostrApp {
    /// The verified manifest of the hosted envelope.
    pub manifest: Manifest,
    /// BLAKE3 of the envelope file (the bytes the release announces).
    pub envelope_blake3: String,
    /// The Nostr key that announced it.
    pub npub: String,
    /// The publisher's trust score, `0..=100`.
    pub score: f64,
    /// Why: the strongest path from a seed, or why there is none.
    pub why: String,
    /// The release event.
    pub event: String,
    /// When a read last saw it.
    pub seen: chrono::DateTime<chrono::Utc>,
}

/// What the relays offered at the last read.
#[derive(Debug, Default)]
pub(crate) struct NostrMarket {
    /// By app id.
    pub apps: BTreeMap<String, NostrApp>,
    /// The Nostr key bound to each publisher DID of the origin's catalog (by a verified binding),
    /// for the origin's cards.
    pub bound: HashMap<String, String>,
    /// Versions the read saw revoked: (publisher DID, app id, version).
    revoked: HashSet<(String, String, String)>,
}

impl NostrMarket {
    /// This read's view, with the apps of `previous` it did not see kept for [`KEEP_UNSEEN`]
    /// (unless it saw them revoked).
    fn carry_over(mut self, previous: Option<&NostrMarket>, now: chrono::DateTime<chrono::Utc>) -> Self {
        for (id, app) in previous.map(|p| &p.apps).into_iter().flatten() {
            let m = &app.manifest;
            let revoked = self.revoked.contains(&(m.publisher.to_string(), id.clone(), m.version.to_string()));
            if !self.apps.contains_key(id) && !revoked && now - app.seen < KEEP_UNSEEN {
                self.apps.insert(id.clone(), app.clone());
            }
        }
        self
    }
}

impl NostrMarket {
    /// Apps matching the list's filters (the same rules as the origin's apps).
    pub(crate) fn matching<'a>(&'a self, q: &'a str, category: &'a str) -> impl Iterator<Item = &'a NostrApp> + 'a {
        self.apps.values().filter(move |a| {
            let m = &a.manifest;
            let text = q.is_empty()
                || m.id.as_str().contains(q)
                || m.title.to_lowercase().contains(q)
                || m.summary.to_lowercase().contains(q);
            text && (category.is_empty() || m.categories.iter().any(|c| c == category))
        })
    }
}

/// Where the Nostr apps come from and who the operator trusts.
#[derive(Debug, Clone)]
pub struct NostrMarketConfig {
    /// Relays to read (`ws://…`); the embedded relay is added when it runs.
    pub relays: Vec<String>,
    /// The operator's trust seeds, `npub1…` or 64 hex digits.
    pub seeds: Vec<String>,
    /// How often the relays are read ([`READ_EVERY`]).
    pub every: Duration,
}

impl Default for NostrMarketConfig {
    fn default() -> Self {
        Self { relays: Vec::new(), seeds: Vec::new(), every: READ_EVERY }
    }
}

/// The operator's seeds, parsed (a bad one is a configuration error at start).
pub(crate) fn parse_seeds(seeds: &[String]) -> anyhow::Result<Vec<PublicKey>> {
    seeds
        .iter()
        .map(|s| {
            use archy_nostr::nostr_sdk::FromBech32 as _;
            PublicKey::from_bech32(s)
                .or_else(|_| PublicKey::from_hex(s))
                .map_err(|_| anyhow::anyhow!("--market-seed `{s}` is not an npub (or 64 hex digits)"))
        })
        .collect()
}

/// Reads `relays` now and every `every`, replacing the registry's Nostr market each time.
pub(crate) async fn keep_fresh(registry: Arc<Registry>, relays: Vec<String>, seeds: Vec<PublicKey>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match read(&registry, &relays, &seeds).await {
            Ok(market) => {
                tracing::debug!(apps = market.apps.len(), "marketplace: Nostr apps read");
                if let Ok(mut slot) = registry.nostr_market.write() {
                    let market = market.carry_over(slot.as_deref(), chrono::Utc::now());
                    *slot = Some(Arc::new(market));
                }
            }
            Err(e) => tracing::warn!("marketplace: reading the Nostr relays failed, the last view stays: {e:#}"),
        }
    }
}

/// The events of every relay that match `filter` (a relay that fails is an error).
async fn query(relays: &[String], filter: &serde_json::Value) -> anyhow::Result<Vec<Event>> {
    let filter = Filter::from_json(filter.to_string())?;
    let mut out = Vec::new();
    for url in relays {
        let relay = archy_nostr::client::RelayConnection::connect(url, TIMEOUT).await?;
        let events = relay.query(filter.clone()).await;
        relay.disconnect().await;
        out.extend(events?);
    }
    Ok(out)
}

/// One read of the relays.
async fn read(registry: &Arc<Registry>, relays: &[String], seeds: &[PublicKey]) -> anyhow::Result<NostrMarket> {
    let archy = |topics: &[&str]| serde_json::json!({ "kinds": [KIND_APP_DATA], "#t": topics, "limit": QUERY_LIMIT });
    // Bindings and key statements first, so no release waits for its binding.
    let mut discovery = Discovery::new();
    let mut pending = Vec::new();
    let mut revoked = HashSet::new();
    for filter in [archy(&[TOPIC_BIND, TOPIC_KEY]), archy(&[TOPIC_APP, TOPIC_REVOKE])] {
        for event in query(relays, &filter).await? {
            check(&mut discovery, &event, &mut pending, &mut revoked);
        }
    }
    // Releases whose envelope this origin hosts, verified.
    let dir = super::blobs::envelope_dir(&registry.config.data);
    let limits = Limits::default();
    let mut accepted = Vec::new();
    for p in pending {
        let Ok(bytes) = std::fs::read(dir.join(p.release.hash.to_hex().as_str())) else { continue };
        match discovery.accept(p, &bytes, &limits) {
            Ok(a) => accepted.push(a),
            Err(e) => tracing::info!("marketplace: a Nostr release was refused: {e}"),
        }
    }

    // Trust: the operator's seeds and the keys bound to the origin's publishers.
    let origin_dids: HashSet<DidKey> = match super::pages::current(registry).await {
        Ok(market) => market.apps.values().flat_map(|a| &a.versions).map(|v| v.manifest.publisher.clone()).collect(),
        Err(_) => HashSet::new(),
    };
    let mut all_seeds: Vec<PublicKey> = seeds.to_vec();
    let mut bound = HashMap::new();
    for did in &origin_dids {
        let npubs = discovery.npubs_of(did);
        if let Some(first) = npubs.first() {
            bound.insert(did.to_string(), bech32_npub(first));
        }
        all_seeds.extend(npubs);
    }
    all_seeds.sort_by_key(PublicKey::to_hex);
    all_seeds.dedup();
    let mut inputs = TrustInputs::new();
    let labels = serde_json::json!({ "kinds": [KIND_LABEL], "#L": [LABEL_NAMESPACE], "limit": QUERY_LIMIT });
    for event in query(relays, &labels).await? {
        let _ = inputs.add(&event);
    }
    // Follow lists of the seeds, then of the keys they follow.
    let mut authors: Vec<PublicKey> = all_seeds.clone();
    let mut read_from: HashSet<PublicKey> = HashSet::new();
    for _ in 0..2 {
        let room = MAX_FOLLOW_AUTHORS.saturating_sub(read_from.len());
        let fresh: Vec<String> =
            authors.iter().filter(|k| read_from.insert(**k)).take(room).map(PublicKey::to_hex).collect();
        if fresh.is_empty() {
            break;
        }
        let filter = serde_json::json!({ "kinds": [3], "authors": fresh, "limit": QUERY_LIMIT });
        let mut next = Vec::new();
        for event in query(relays, &filter).await? {
            if inputs.add(&event).unwrap_or(false) {
                next.extend(event.tags.public_keys().copied());
            }
        }
        authors = next;
    }
    let params = Params::default();
    let mut builder = GraphBuilder::new();
    for seed in &all_seeds {
        builder.seed(graph_key(seed), 1.0);
    }
    inputs.fill(&mut builder);
    let graph = builder.build().ok();
    let scores = graph.as_ref().map(|g| g.compute(&params));
    let ranked: HashMap<PublicKey, f64> = scores
        .as_ref()
        .map(|s| s.ranked().into_iter().filter_map(|(k, v)| Some((nostr_key(&k)?, v))).collect())
        .unwrap_or_default();
    let short = |k: &PublicKey| {
        let npub = bech32_npub(k);
        format!("{}…{}", &npub[..12], &npub[npub.len() - 4..])
    };
    let explain = |key: &PublicKey| -> String {
        if all_seeds.contains(key) {
            return if seeds.contains(key) {
                "a seed of this marketplace's operator".to_owned()
            } else {
                "bound to a publisher of this origin's catalog".to_owned()
            };
        }
        let path = scores.as_ref().and_then(|s| s.explain(&graph_key(key), 1)).and_then(|e| e.paths.into_iter().next());
        match path {
            Some(p) => {
                let keys: Vec<String> = p.keys.iter().filter_map(nostr_key).map(|k| short(&k)).collect();
                format!("trusted along {}", keys.join(" → "))
            }
            None => "no trust reaches this key from the operator's seeds".to_owned(),
        }
    };

    let mut apps: BTreeMap<String, NostrApp> = BTreeMap::new();
    for a in accepted {
        let manifest = a.manifest.manifest().clone();
        let score = ranked.get(&a.event.pubkey).copied().unwrap_or(0.0);
        let id = manifest.id.to_string();
        let better = apps
            .get(&id)
            .is_none_or(|held| score > held.score || (score == held.score && manifest.version > held.manifest.version));
        if better {
            let app = NostrApp {
                envelope_blake3: a.release.hash.to_hex().to_string(),
                npub: bech32_npub(&a.event.pubkey),
                score,
                why: explain(&a.event.pubkey),
                event: a.event.id.to_hex(),
                seen: chrono::Utc::now(),
                manifest,
            };
            apps.insert(id, app);
        }
    }
    Ok(NostrMarket { apps, bound, revoked })
}

/// Takes one event through the checks, collecting the releases that wait for their envelope and
/// the versions revoked.
fn check(
    discovery: &mut Discovery,
    event: &Event,
    pending: &mut Vec<archy_nostr::discovery::PendingRelease>,
    revoked: &mut HashSet<(String, String, String)>,
) {
    let mut queue = vec![event.clone()];
    while let Some(event) = queue.pop() {
        match discovery.check(&event) {
            Ok(Checked::Release(p)) => pending.push(p),
            Ok(Checked::Revocation { did, app, version }) => {
                revoked.insert((did.to_string(), app.to_string(), version.to_string()));
            }
            Ok(Checked::Binding { unparked, .. }) => queue.extend(unparked),
            Ok(_) => {}
            Err(e) => tracing::debug!(event = %event.id, "marketplace: a Nostr event was dropped: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn app(id: &str, seen: chrono::DateTime<chrono::Utc>) -> NostrApp {
        let key = catalog::keys::SigningKey::generate();
        let manifest = catalog::manifest::Manifest::from_toml_str(
            &catalog::manifest::example_toml(id, &key.did()),
            &catalog::manifest::Limits::default(),
        )
        .unwrap();
        NostrApp {
            manifest,
            envelope_blake3: String::new(),
            npub: String::new(),
            score: 0.0,
            why: String::new(),
            event: String::new(),
            seen,
        }
    }

    #[test]
    fn an_app_a_read_misses_stays_a_day_unless_that_read_saw_it_revoked() {
        let now = chrono::Utc::now();
        let mut previous = NostrMarket::default();
        for (id, seen) in [("kept", now), ("old", now - chrono::TimeDelta::hours(25)), ("revoked", now)] {
            previous.apps.insert(id.into(), app(id, seen));
        }
        let r = &previous.apps["revoked"].manifest;
        let mut fresh = NostrMarket::default();
        fresh.revoked.insert((r.publisher.to_string(), "revoked".into(), r.version.to_string()));
        fresh.apps.insert("new".into(), app("new", now));
        let merged = fresh.carry_over(Some(&previous), now);
        let ids: Vec<&str> = merged.apps.keys().map(String::as_str).collect();
        assert_eq!(ids, ["kept", "new"]);
    }
}
