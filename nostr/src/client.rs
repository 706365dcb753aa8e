//! Talking to one relay at a time (NIP-01): connect with a deadline, post an event and read the
//! relay's `OK` answer, query stored events until `EOSE`.
//!
//! Each [`RelayConnection`] is its own nostr-sdk client, so every answer and every failure names
//! the relay it came from: a publisher posting to three relays learns which one refused and why.
//! Events read here are not trusted; run them through [`crate::event::parse`] or
//! [`crate::discovery::Discovery`].

use std::time::Duration;

use nostr_sdk::pool::relay::Error as PoolRelayError;
use nostr_sdk::{Client, Event, Filter, Kind, PublicKey, RelayUrl};

use crate::event::{KIND_APP_DATA, bind_d_tag, release_d_tag};

/// How long [`RelayConnection`] waits for a connection, an `OK` or an `EOSE` by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong with one relay; every variant names the relay. The publisher's client here
/// and the node's own NIP-01 client (`node::nostr::relay`) both report with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// Not a `ws://` or `wss://` URL.
    #[error("`{url}` is not a relay URL (ws://host:port or wss://host): {reason}")]
    BadUrl {
        /// What was given.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// No WebSocket connection within the deadline.
    #[error("relay {url} is unreachable: {reason}")]
    Unreachable {
        /// The relay.
        url: String,
        /// The connection error.
        reason: String,
    },
    /// The relay answered `["OK", <id>, false, <message>]` (NIP-01).
    #[error("relay {url} refused event {id}: {message}")]
    Refused {
        /// The relay.
        url: String,
        /// The event id.
        id: String,
        /// The relay's message (NIP-01 machine-readable prefix and text).
        message: String,
    },
    /// The relay stayed silent longer than the deadline.
    #[error("relay {url}: no answer within {timeout:?}")]
    Timeout {
        /// The relay.
        url: String,
        /// The deadline.
        timeout: Duration,
    },
    /// Sending or querying failed otherwise (a lost connection, a closed subscription).
    #[error("relay {url}: {reason}")]
    Failed {
        /// The relay.
        url: String,
        /// What failed.
        reason: String,
    },
}

/// A connection to one relay.
#[derive(Debug, Clone)]
pub struct RelayConnection {
    client: Client,
    url: RelayUrl,
    timeout: Duration,
}

impl RelayConnection {
    /// Connects to `url`, waiting at most `timeout`; the same deadline applies to each later
    /// post (`OK`) and query (`EOSE`).
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, RelayError> {
        let bad = |reason: String| RelayError::BadUrl { url: url.to_owned(), reason };
        let parsed = RelayUrl::parse(url).map_err(|e| bad(e.to_string()))?;
        let client = Client::default();
        client.add_relay(parsed.clone()).await.map_err(|e| bad(e.to_string()))?;
        let name = parsed.to_string().trim_end_matches('/').to_owned();
        client
            .try_connect_relay(parsed.clone(), timeout)
            .await
            .map_err(|e| RelayError::Unreachable { url: name, reason: e.to_string() })?;
        Ok(Self { client, url: parsed, timeout })
    }

    /// The relay URL, as printed (`ws://host:port`).
    pub fn url(&self) -> String {
        self.url.to_string().trim_end_matches('/').to_owned()
    }

    fn failed(&self, reason: impl ToString) -> RelayError {
        RelayError::Failed { url: self.url(), reason: reason.to_string() }
    }

    /// Posts `event` and waits for the relay's `OK`. An `OK false` is [`RelayError::Refused`]
    /// with the relay's message; a relay that already holds the event answers `OK true`
    /// (`duplicate:`), which is success.
    pub async fn publish(&self, event: &Event) -> Result<(), RelayError> {
        let relay = self.client.relay(self.url.clone()).await.map_err(|e| self.failed(e))?;
        match tokio::time::timeout(self.timeout, relay.send_event(event)).await {
            Err(_) => Err(self.failed(format!("no OK for event {} within {:?}", event.id, self.timeout))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(PoolRelayError::RelayMessage(message))) => {
                Err(RelayError::Refused { url: self.url(), id: event.id.to_hex(), message })
            }
            Ok(Err(e)) => Err(self.failed(format!("posting event {}: {e}", event.id))),
        }
    }

    /// The events the relay holds that match `filter`, read until `EOSE` (NIP-01). A relay that
    /// sends no `EOSE` within the timeout, or closes the subscription, is an error: an answer cut
    /// short must never pass for "the relay holds nothing newer". Events that do not match the
    /// filter are left out (a relay may send anything).
    pub async fn query(&self, filter: Filter) -> Result<Vec<Event>, RelayError> {
        use nostr_sdk::filter::MatchEventOptions;
        use nostr_sdk::pool::relay::RelayNotification;
        use nostr_sdk::{RelayMessage, SubscribeOptions, SubscriptionId};
        let relay = self.client.relay(self.url.clone()).await.map_err(|e| self.failed(e))?;
        let mut notifications = relay.notifications();
        let id = SubscriptionId::generate();
        relay
            .subscribe_with_id(id.clone(), filter.clone(), SubscribeOptions::default())
            .await
            .map_err(|e| self.failed(format!("querying: {e}")))?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut events = Vec::new();
        let end = loop {
            let next = tokio::time::timeout_at(deadline, notifications.recv()).await;
            match next {
                Err(_) => break Err(self.failed(format!("no EOSE within {:?}", self.timeout))),
                Ok(Err(e)) => break Err(self.failed(format!("reading the answer: {e}"))),
                // The `Message` form, not `RelayNotification::Event`: the pool sends the latter
                // only for events this client has not seen before, and a second query must see
                // them again. Both come after the pool verified the event's id and signature.
                Ok(Ok(RelayNotification::Message { message: RelayMessage::Event { subscription_id, event } }))
                    if *subscription_id == id =>
                {
                    if filter.match_event(&event, MatchEventOptions::new()) {
                        events.push(event.into_owned());
                    }
                }
                Ok(Ok(RelayNotification::Message { message: RelayMessage::EndOfStoredEvents(sid) })) if *sid == id => {
                    break Ok(());
                }
                Ok(Ok(RelayNotification::Message { message: RelayMessage::Closed { subscription_id, message } }))
                    if *subscription_id == id =>
                {
                    break Err(self.failed(format!("the relay closed the query: {message}")));
                }
                Ok(Ok(RelayNotification::Shutdown)) => break Err(self.failed("the connection was shut down")),
                Ok(Ok(_)) => {}
            }
        };
        let _ = relay.unsubscribe(&id).await;
        end.map(|()| events)
    }

    /// Closes the connection.
    pub async fn disconnect(&self) {
        self.client.shutdown().await;
    }
}

/// Kind 30078 events by `author` with `d` tag `d`: one at most on a relay that keeps only the
/// newest addressable event (NIP-01), possibly several on one that does not.
pub fn addressable_filter(author: &PublicKey, d: &str) -> Filter {
    Filter::new().kind(Kind::from_u16(KIND_APP_DATA)).author(*author).identifier(d)
}

/// The release events of `app` by `author`.
pub fn release_filter(author: &PublicKey, app: &str) -> Filter {
    addressable_filter(author, &release_d_tag(app))
}

/// The binding events by `author` for `did`.
pub fn binding_filter(author: &PublicKey, did: &catalog::DidKey) -> Filter {
    addressable_filter(author, &bind_d_tag(did))
}
