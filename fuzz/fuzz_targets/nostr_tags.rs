//! archy's tag parsers, reached past the Nostr signature: each line of the input is an event
//! template (NIP-01 JSON; `id` and `sig` ignored), signed by the publisher's or the stranger's
//! Nostr key (`archy_fuzz::nostr::sign_template`, which also signs the DID statement when a
//! `did-sig` tag holds `sign`), and the events are checked in order by one node
//! (`archy_fuzz::nostr::Checks`), so bindings, parked events, replays, conflicts and
//! revocations meet each other. At most 8 events per input.
#![no_main]

use archy_fuzz::nostr::{Checks, sign_template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut checks = Checks::new();
    for line in data.split(|&b| b == b'\n').take(8) {
        if let Some(event) = sign_template(line) {
            checks.event(&event);
        }
    }
});
