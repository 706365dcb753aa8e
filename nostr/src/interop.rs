//! Events that let ordinary Nostr clients make sense of archy's kind 30078 events.
//!
//! NIP-89 (recommended application handlers): a kind 31990 handler information event says that
//! archy handles kind 30078 events (`k` tag), with kind 0-style metadata as content and, when
//! the poster has one, a `web` link template for viewing an event (`<bech32>` is replaced by the
//! event's `nevent`/`naddr`).

use nostr_sdk::{Event, EventBuilder, Keys, Kind};

use crate::event::{KIND_APP_DATA, tag};

/// NIP-89 handler information kind.
pub const KIND_HANDLER: u16 = 31990;
/// `d` tag of archy's handler event (one per posting key).
pub const HANDLER_D_TAG: &str = "archy";

/// The NIP-89 handler event for archy's kind 30078 events. `web` is an optional link template
/// containing `<bech32>`.
pub fn handler_event(keys: &Keys, web: Option<&str>) -> Result<Event, nostr_sdk::event::builder::Error> {
    let metadata = serde_json::json!({
        "name": "archy",
        "about": "Signed app registry: kind 30078 events with `d` = archy:app:<app-id> announce app \
                  releases signed by the publisher's did:key. Install with `archy-node install`.",
    });
    let mut tags = vec![
        tag(&["d", HANDLER_D_TAG]),
        tag(&["k", &KIND_APP_DATA.to_string()]),
        tag(&["alt", "archy: handler for archy app release events (kind 30078)"]),
    ];
    if let Some(web) = web {
        tags.push(tag(&["web", web, "naddr"]));
    }
    EventBuilder::new(Kind::from_u16(KIND_HANDLER), metadata.to_string()).tags(tags).sign_with_keys(keys)
}
