//! `archy-node trust --publish`: the node's scores as NIP-85 trusted assertions (kind 30382),
//! one per publisher key it knows, signed by the node's own Nostr key ([`super::keys`]) and
//! posted to every configured relay.

use crate::data_dir::DataDir;
use std::time::Duration;

use archy_nostr::event::bech32_npub;
use archy_nostr::social::assertion_event;
use serde::Serialize;

use super::read::relay_urls;
use super::view::NostrView;
use crate::config::Config;

/// What `trust --publish` did.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct PublishReport {
    /// The node's public key (`npub1…`) that signed the assertions.
    pub signer: String,
    /// Assertions built.
    pub assertions: usize,
    /// Per relay: how many it stored, or why it failed.
    pub relays: Vec<(String, Result<usize, String>)>,
}

/// Signs an assertion for every Nostr key bound to a publisher with an app on Nostr, and posts
/// them to the configured relays.
pub(crate) async fn publish_assertions(data: &DataDir, config: &Config) -> anyhow::Result<PublishReport> {
    let urls = relay_urls(config)?;
    anyhow::ensure!(!urls.is_empty(), "no relay configured: add one with `archy-node init --relay ws://…`");
    let (d, c) = (data.clone(), config.clone());
    let view = tokio::task::spawn_blocking(move || NostrView::load(&d, &c)).await??;
    let keys = super::keys::load_or_create(&data.nostr_key())?;
    let mut subjects: Vec<_> =
        view.state().releases().flat_map(|r| view.state().discovery().npubs_of(r.did())).collect();
    subjects.sort();
    subjects.dedup();
    let events =
        subjects.iter().map(|k| assertion_event(&keys, k, view.trust().score_of(k))).collect::<Result<Vec<_>, _>>()?;
    let timeout = Duration::from_secs(config.nostr.timeout_secs.max(1));
    let mut report =
        PublishReport { signer: bech32_npub(&keys.public_key()), assertions: events.len(), relays: Vec::new() };
    for url in urls {
        let stored = super::relay::publish_all(&url, &events, timeout).await.map_err(|e| e.to_string());
        report.relays.push((url, stored));
    }
    Ok(report)
}
