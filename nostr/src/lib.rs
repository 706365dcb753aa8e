//! archy on Nostr: app announcements that carry their publisher's did:key signature, the
//! DID↔Nostr-key bindings that let a node tie an `npub` to a DID, revocations, the inputs of the
//! trust scores, interop events for ordinary Nostr clients, and the embedded relay.
//!
//! The Nostr signature of an event proves only which Nostr key posted it (NIP-01). What a node
//! trusts about an app comes from the DID: the binding event proves the `npub` speaks for the DID
//! (signed by both keys), the announcement's DID signature names the exact envelope bytes by
//! BLAKE3 hash and size, and the envelope fetched by that hash must verify on its own
//! ([`catalog::envelope`]). Every event shape is described in `docs/nostr.md`.
//!
//! - [`event`]: building and parsing archy's kind 30078 events (NIP-78) and the DID statements.
//! - [`discovery`]: the ordered checks a node runs on each incoming event, with a named reason
//!   for every event it drops.
//! - [`social`]: trust inputs (kind 3 follows, NIP-32 `archy` labels) and NIP-85 assertions.
//! - [`interop`]: the NIP-89 handler.
//! - [`nip82`]: the NIP-82 mirror of each release, for Nostr app-store clients (never read by
//!   nodes).
//! - [`client`]: posting to and querying one relay at a time, each answer naming its relay.
//! - [`relay`]: the embedded relay (nostr-relay-builder) with a persistent event log; [`cli`]
//!   runs it as `archy-relay`.

pub mod cli;
pub mod client;
pub mod discovery;
pub mod event;
pub mod interop;
pub mod nip82;
pub mod relay;
pub mod social;

pub use nostr_sdk;
