//! What `archy identity` and `archy publish --relay` do with relays: connect to each one (an
//! unreachable relay stops the command before anything is posted), read what this Nostr key
//! already posted there, post events and report each relay's answer.

use std::time::Duration;

use anyhow::Context as _;
use archy_nostr::client::{RelayConnection, RelayError, binding_filter, release_filter};
use archy_nostr::event::{self, Announcement, KIND_APP_DATA, Release};
use archy_nostr::nostr_sdk::{Event, Filter, Keys, Kind, SingleLetterTag, Timestamp};
use catalog::DidKey;
use serde_json::json;

use crate::output::user_error;

/// How long each relay may take to connect, answer `OK` or `EOSE`.
pub const RELAY_TIMEOUT: Duration = archy_nostr::client::DEFAULT_TIMEOUT;

/// A runtime for the async relay clients (the rest of `archy` is blocking).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

/// Connects to every relay (the first one that can't be reached is the error), runs `work`
/// with the connections, and closes them whatever `work` returned.
pub async fn with_relays<T>(
    urls: &[String],
    work: impl AsyncFnOnce(&[RelayConnection]) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if urls.is_empty() {
        return Err(user_error("name at least one relay with --relay ws://…"));
    }
    let mut connections = Vec::with_capacity(urls.len());
    for url in urls {
        match RelayConnection::connect(url, RELAY_TIMEOUT).await {
            Ok(connection) => connections.push(connection),
            Err(e) => {
                disconnect_all(&connections).await;
                return Err(relay_error(e));
            }
        }
    }
    let result = work(&connections).await;
    disconnect_all(&connections).await;
    result
}

async fn disconnect_all(connections: &[RelayConnection]) {
    for c in connections {
        c.disconnect().await;
    }
}

/// A relay error as an `anyhow::Error`: a refusal or a bad URL is the user's to fix (exit 1).
pub fn relay_error(e: RelayError) -> anyhow::Error {
    match e {
        RelayError::Refused { .. } | RelayError::BadUrl { .. } => user_error(e.to_string()),
        other => anyhow::Error::new(other),
    }
}

/// Whether `relay` holds a binding event by `keys` for `did` whose DID signature verifies.
pub async fn has_binding(relay: &RelayConnection, keys: &Keys, did: &DidKey) -> anyhow::Result<bool> {
    let events = relay.query(binding_filter(&keys.public_key(), did)).await.map_err(relay_error)?;
    Ok(events.iter().any(|e| {
        e.pubkey == keys.public_key()
            && matches!(event::parse(e), Ok(Announcement::Binding(b)) if &b.did == did && b.verify(&e.pubkey).is_ok())
    }))
}

/// The newest release event of `app` by `keys` on `relay` that parses as one (the relay
/// should hold one at most: NIP-01 addressable events).
pub async fn current_release(
    relay: &RelayConnection,
    keys: &Keys,
    app: &str,
) -> anyhow::Result<Option<(Event, Release)>> {
    let events = relay.query(release_filter(&keys.public_key(), app)).await.map_err(relay_error)?;
    Ok(events
        .into_iter()
        .filter(|e| e.pubkey == keys.public_key())
        .filter_map(|e| match event::parse(&e) {
            Ok(Announcement::Release(r)) if r.app.as_str() == app => Some((e, r)),
            _ => None,
        })
        .max_by(|(a, _), (b, _)| a.created_at.cmp(&b.created_at)))
}

/// The versions of `app` that `keys` revoked on `relay` (revocation events whose DID
/// signature verifies for `did`).
pub async fn revoked_versions(
    relay: &RelayConnection,
    keys: &Keys,
    did: &DidKey,
    app: &str,
) -> anyhow::Result<Vec<semver::Version>> {
    let filter = Filter::new()
        .kind(Kind::from_u16(KIND_APP_DATA))
        .author(keys.public_key())
        .hashtag(archy_nostr::event::TOPIC_REVOKE);
    let events = relay.query(filter).await.map_err(relay_error)?;
    let mut versions: Vec<semver::Version> = events
        .iter()
        .filter(|e| e.pubkey == keys.public_key())
        .filter_map(|e| match event::parse(e) {
            Ok(Announcement::Revocation(r))
                if r.app.as_str() == app && &r.did == did && r.verify(&e.pubkey).is_ok() =>
            {
                Some(r.version)
            }
            _ => None,
        })
        .collect();
    versions.sort();
    Ok(versions)
}

/// The newest `created_at` of what `keys` posted at the address `d` (kind 30078) and of its
/// deletion requests for that address, on `relay`.
pub async fn newest_at_address(relay: &RelayConnection, keys: &Keys, d: &str) -> anyhow::Result<Option<Timestamp>> {
    newest_at(relay, keys, KIND_APP_DATA, d).await
}

/// The newest `created_at` of what `keys` posted at the address (`kind`, `d`) and of its
/// deletion requests for that address, on `relay`.
pub async fn newest_at(relay: &RelayConnection, keys: &Keys, kind: u16, d: &str) -> anyhow::Result<Option<Timestamp>> {
    let author = keys.public_key();
    let filter = Filter::new().kind(Kind::from_u16(kind)).author(author).identifier(d);
    let posted = relay.query(filter).await.map_err(relay_error)?;
    let address = format!("{kind}:{}:{d}", author.to_hex());
    let deletions = Filter::new()
        .kind(Kind::EventDeletion)
        .author(author)
        .custom_tag(SingleLetterTag::lowercase(archy_nostr::nostr_sdk::Alphabet::A), address);
    let deletions = relay.query(deletions).await.map_err(relay_error)?;
    Ok(posted.iter().chain(&deletions).map(|e| e.created_at).max())
}

/// Waits until the clock is past `at`, so that a new event at the same address replaces the
/// one dated `at` (a relay keeps the older of two addressable events with the same
/// `created_at` when its id sorts first, and refuses events a deletion request covers).
pub async fn wait_until_after(at: Timestamp, relay: &str) -> anyhow::Result<()> {
    let ahead = at.as_secs().saturating_sub(Timestamp::now().as_secs());
    if ahead > 5 {
        return Err(user_error(format!(
            "relay {relay} holds an event of this key dated {ahead} s in the future; check this machine's clock"
        )));
    }
    while Timestamp::now() <= at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// One relay's answer to one event.
pub struct Answer {
    /// The relay.
    pub relay: String,
    /// What was posted (`binding`, `release`, …).
    pub what: &'static str,
    /// The event id.
    pub id: String,
    /// `Ok` or why the relay did not take it.
    pub result: Result<(), RelayError>,
}

impl Answer {
    /// `ok`, or the relay's refusal.
    pub fn text(&self) -> String {
        match &self.result {
            Ok(()) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    /// `{"relay","event","id","ok","message"}`.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "relay": self.relay,
            "event": self.what,
            "id": self.id,
            "ok": self.result.is_ok(),
            "message": self.result.as_ref().err().map(ToString::to_string),
        })
    }
}

/// Posts `event` to `relay`.
pub async fn post(relay: &RelayConnection, what: &'static str, event: &Event) -> Answer {
    Answer { relay: relay.url(), what, id: event.id.to_hex(), result: relay.publish(event).await }
}

/// `Ok` when every relay took every event; otherwise an error naming each relay that did not
/// and what it said (exit 1 when a relay refused, 2 when one failed).
pub fn check(answers: &[Answer]) -> anyhow::Result<()> {
    let failed: Vec<&Answer> = answers.iter().filter(|a| a.result.is_err()).collect();
    if failed.is_empty() {
        return Ok(());
    }
    let mut message = failed.iter().map(|a| format!("{} event: {}", a.what, a.text())).collect::<Vec<_>>().join("; ");
    let accepted: Vec<String> =
        answers.iter().filter(|a| a.result.is_ok()).map(|a| format!("{} event by {}", a.what, a.relay)).collect();
    if !accepted.is_empty() {
        message.push_str(&format!(" (accepted: {})", accepted.join(", ")));
    }
    if failed.iter().any(|a| matches!(a.result, Err(RelayError::Refused { .. }))) {
        Err(user_error(message))
    } else {
        Err(anyhow::anyhow!(message))
    }
}

/// The human lines for a list of answers: `  <relay>: <what> <id>: ok`.
pub fn lines(answers: &[Answer]) -> String {
    answers.iter().map(|a| format!("  {}: {} {}: {}", a.relay, a.what, a.id, a.text())).collect::<Vec<_>>().join("\n")
}
