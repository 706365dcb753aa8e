//! A small NIP-01 relay client: `REQ` until `EOSE`, live subscriptions, and `EVENT` publishing.
//!
//! The node speaks to relays itself rather than through nostr-sdk's pool, so that it sees every
//! frame a relay sends: an event that is not JSON, not an event, or badly signed is handed to the
//! caller as raw text and dropped there with its named reason ([`archy_nostr::event::Rejected`]),
//! instead of vanishing inside a library. Every read is bounded: frames by
//! [`MAX_FRAME_BYTES`], silence by the caller's timeout, a query by [`MAX_EVENTS_PER_QUERY`].

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use archy_nostr::nostr_sdk::{Event, JsonUtil as _};

/// Largest websocket frame (and message) read from a relay. Larger than any event the node
/// accepts ([`archy_nostr::event::MAX_FOLLOW_LIST_BYTES`]), so an oversized event arrives and is
/// dropped with its size named, rather than breaking the connection.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024 + 4096;
/// Most events one query reads before it stops.
pub const MAX_EVENTS_PER_QUERY: usize = 20_000;
/// A query ends after this many times the silence timeout, however steadily the relay sends
/// (and never sooner than [`MIN_QUERY_SECS`]).
pub const QUERY_DEADLINE_FACTOR: u32 = 12;
/// The shortest whole-query deadline, in seconds.
pub const MIN_QUERY_SECS: u64 = 60;

/// Why talking to a relay failed: the same error as the publisher's relay client.
pub use archy_nostr::client::RelayError;

/// A frame from a relay (NIP-01 relay-to-client messages).
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `["EVENT", <sub>, <event>]`: the event as raw JSON text, not yet checked.
    Event {
        /// Subscription id.
        sub: String,
        /// The event's JSON.
        json: String,
    },
    /// `["EOSE", <sub>]`: stored events end here.
    Eose(String),
    /// `["CLOSED", <sub>, <message>]`.
    Closed(String, String),
    /// `["NOTICE", <message>]`.
    Notice(String),
    /// `["OK", <event id>, <accepted>, <message>]`.
    Ok {
        /// Event id.
        id: String,
        /// Whether the relay stored it.
        accepted: bool,
        /// Its message.
        message: String,
    },
    /// Something that is not a NIP-01 message: the reason, for the caller to count.
    Garbage(String),
}

impl Frame {
    /// Parses one text frame.
    pub fn parse(text: &str) -> Self {
        let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(text) else {
            return Self::Garbage("relay message is not a JSON array".into());
        };
        let s = |i: usize| items.get(i).and_then(|v| v.as_str()).map(str::to_owned);
        match (s(0).as_deref(), items.len()) {
            (Some("EVENT"), 3) => match s(1) {
                Some(sub) => Self::Event { sub, json: items[2].to_string() },
                None => Self::Garbage("EVENT message without a subscription id".into()),
            },
            (Some("EOSE"), _) => Self::Eose(s(1).unwrap_or_default()),
            (Some("CLOSED"), _) => Self::Closed(s(1).unwrap_or_default(), s(2).unwrap_or_default()),
            (Some("NOTICE"), _) => Self::Notice(s(1).unwrap_or_default()),
            (Some("OK"), _) => Self::Ok {
                id: s(1).unwrap_or_default(),
                accepted: items.get(2).and_then(serde_json::Value::as_bool).unwrap_or(false),
                message: s(3).unwrap_or_default(),
            },
            (Some("EVENT"), n) => Self::Garbage(format!("EVENT message with {n} elements instead of 3")),
            (Some(other), _) => Self::Garbage(format!(
                "unknown relay message `{}`",
                other.escape_default().take(32).collect::<String>()
            )),
            (None, _) => Self::Garbage("relay message does not start with a message type".into()),
        }
    }
}

/// Checks that `url` is a `ws://` or `wss://` URL.
pub fn check_url(url: &str) -> Result<(), RelayError> {
    let rest = url.strip_prefix("ws://").or_else(|| url.strip_prefix("wss://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
        _ => Err(RelayError::BadUrl { url: url.to_owned(), reason: "the scheme must be ws or wss".into() }),
    }
}

/// One websocket connection to a relay.
pub struct Connection {
    url: String,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("url", &self.url).finish()
    }
}

/// How a query ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryEnd {
    /// The relay sent `EOSE`.
    Eose,
    /// The relay closed the subscription (`CLOSED`), with its message.
    Closed(String),
    /// [`MAX_EVENTS_PER_QUERY`] events were read, or the whole-query deadline passed.
    Truncated,
}

impl Connection {
    /// Connects within `timeout`.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, RelayError> {
        check_url(url)?;
        let config =
            WebSocketConfig::default().max_message_size(Some(MAX_FRAME_BYTES)).max_frame_size(Some(MAX_FRAME_BYTES));
        let connecting = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
        let (ws, _) = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| RelayError::Timeout { url: url.to_owned(), timeout })?
            .map_err(|e| RelayError::Unreachable { url: url.to_owned(), reason: e.to_string() })?;
        Ok(Self { url: url.to_owned(), ws })
    }

    /// The relay's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn send(&mut self, value: serde_json::Value) -> Result<(), RelayError> {
        self.ws
            .send(Message::Text(value.to_string().into()))
            .await
            .map_err(|e| RelayError::Failed { url: self.url.clone(), reason: e.to_string() })
    }

    /// Sends `["REQ", sub, filters…]`.
    pub async fn subscribe(&mut self, sub: &str, filters: &[serde_json::Value]) -> Result<(), RelayError> {
        let mut message = vec![serde_json::json!("REQ"), serde_json::json!(sub)];
        message.extend(filters.iter().cloned());
        self.send(serde_json::Value::Array(message)).await
    }

    /// Sends `["CLOSE", sub]`.
    pub async fn unsubscribe(&mut self, sub: &str) -> Result<(), RelayError> {
        self.send(serde_json::json!(["CLOSE", sub])).await
    }

    /// The next frame, waiting at most `timeout`; `Ok(None)` when the relay closed the
    /// connection.
    pub async fn next_frame(&mut self, timeout: Duration) -> Result<Option<Frame>, RelayError> {
        loop {
            let next = tokio::time::timeout(timeout, self.ws.next())
                .await
                .map_err(|_| RelayError::Timeout { url: self.url.clone(), timeout })?;
            let message = match next {
                None => return Ok(None),
                Some(Ok(m)) => m,
                Some(Err(e)) => return Err(RelayError::Failed { url: self.url.clone(), reason: e.to_string() }),
            };
            match message {
                Message::Text(text) => return Ok(Some(Frame::parse(text.as_str()))),
                Message::Binary(_) => return Ok(Some(Frame::Garbage("binary websocket message".into()))),
                Message::Close(_) => return Ok(None),
                // Pings are answered by tungstenite; pongs and raw frames carry nothing.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }
        }
    }

    /// Runs one query: subscribes, hands every frame of `sub` to `on_frame` until `EOSE` (or
    /// `CLOSED`, [`MAX_EVENTS_PER_QUERY`] events, or the whole-query deadline), then closes the
    /// subscription.
    pub async fn query(
        &mut self,
        sub: &str,
        filters: &[serde_json::Value],
        timeout: Duration,
        mut on_frame: impl FnMut(Frame),
    ) -> Result<QueryEnd, RelayError> {
        self.subscribe(sub, filters).await?;
        let mut events = 0usize;
        let whole = (timeout * QUERY_DEADLINE_FACTOR).max(Duration::from_secs(MIN_QUERY_SECS));
        let deadline = tokio::time::Instant::now() + whole;
        let end = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                tracing::warn!(relay = %self.url, "the query took longer than {whole:?}; reading on next time");
                break QueryEnd::Truncated;
            }
            let Some(frame) = self.next_frame(timeout.min(left)).await? else {
                return Err(RelayError::Failed { url: self.url.clone(), reason: "closed the connection".into() });
            };
            match &frame {
                Frame::Eose(s) if s == sub => break QueryEnd::Eose,
                Frame::Closed(s, message) if s == sub => break QueryEnd::Closed(message.clone()),
                Frame::Event { sub: s, .. } if s != sub => continue,
                Frame::Event { .. } => events += 1,
                Frame::Notice(n) => {
                    tracing::info!(relay = %self.url, "relay notice: {}", crate::nostr::state::printable(n, 200));
                    continue;
                }
                Frame::Eose(_) | Frame::Closed(..) | Frame::Ok { .. } => continue,
                Frame::Garbage(_) => {}
            }
            on_frame(frame);
            if events >= MAX_EVENTS_PER_QUERY {
                break QueryEnd::Truncated;
            }
        };
        if !matches!(end, QueryEnd::Closed(_)) {
            // Best effort: the relay may already have dropped a finished subscription.
            let _ = self.unsubscribe(sub).await;
        }
        Ok(end)
    }

    /// Publishes an event and waits for the relay's `OK`.
    pub async fn publish(&mut self, event: &Event, timeout: Duration) -> Result<(), RelayError> {
        let value: serde_json::Value = serde_json::from_str(&event.as_json())
            .map_err(|e| RelayError::Failed { url: self.url.clone(), reason: e.to_string() })?;
        self.send(serde_json::json!(["EVENT", value])).await?;
        let id = event.id.to_hex();
        loop {
            match self.next_frame(timeout).await? {
                None => {
                    return Err(RelayError::Failed { url: self.url.clone(), reason: "closed the connection".into() });
                }
                Some(Frame::Ok { id: got, accepted, message }) if got == id => {
                    return if accepted {
                        Ok(())
                    } else {
                        Err(RelayError::Refused { url: self.url.clone(), id, message })
                    };
                }
                Some(_) => continue,
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Publishes `events` to the relay at `url`, one after the other; returns how many it stored.
/// A refused event is logged and skipped; a broken connection ends the run with an error.
pub async fn publish_all(url: &str, events: &[Event], timeout: Duration) -> Result<usize, RelayError> {
    let mut conn = Connection::connect(url, timeout).await?;
    let mut stored = 0;
    for event in events {
        match conn.publish(event, timeout).await {
            Ok(()) => stored += 1,
            Err(RelayError::Refused { message, id, .. }) => {
                tracing::warn!(relay = url, event = %id, "relay refused the event: {message}");
            }
            Err(e) => return Err(e),
        }
    }
    conn.close().await;
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_garbage_is_named() {
        assert_eq!(
            Frame::parse(r#"["EVENT","s",{"id":"x"}]"#),
            Frame::Event { sub: "s".into(), json: r#"{"id":"x"}"#.into() }
        );
        assert_eq!(Frame::parse(r#"["EOSE","s"]"#), Frame::Eose("s".into()));
        assert_eq!(
            Frame::parse(r#"["OK","ab",false,"blocked: no"]"#),
            Frame::Ok { id: "ab".into(), accepted: false, message: "blocked: no".into() }
        );
        assert!(matches!(Frame::parse("not json"), Frame::Garbage(_)));
        assert!(matches!(Frame::parse(r#"["EVENT","s"]"#), Frame::Garbage(_)));
        assert!(matches!(Frame::parse(r#"{"EVENT":1}"#), Frame::Garbage(_)));
    }

    #[test]
    fn only_websocket_urls_are_relays() {
        assert!(check_url("ws://127.0.0.1:7447").is_ok());
        assert!(check_url("wss://relay.example.org").is_ok());
        assert!(check_url("http://127.0.0.1:7447").is_err());
        assert!(check_url("ws://").is_err());
    }
}
