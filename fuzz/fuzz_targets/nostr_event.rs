//! What a relay hands a node: arbitrary text as one event, through `event_from_json` (size
//! limit, NIP-01 id, BIP-340 signature), then every check a node runs on it
//! (`archy_fuzz::nostr::Checks`: `event::parse`, `Discovery::check` against a node that holds
//! the publisher's verified binding, `accept` of a release with the publisher's envelope,
//! `TrustInputs::add` and `label_of`). An accepted event must come back equal from its JSON.
//! The seeds are real signed events by the fixture's keys, so mutations that keep the id and
//! signature (whitespace, key order, escapes) reach the checks after them.
#![no_main]

use archy_fuzz::nostr::Checks;
use archy_nostr::event;
use archy_nostr::nostr_sdk::JsonUtil as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else { return };
    let Ok(event) = event::event_from_json(json) else { return };
    let again = event::event_from_json(&event.as_json()).expect("a re-serialized event is accepted");
    assert_eq!(again, event, "event changed in its JSON round trip");
    Checks::new().event(&event);
});
