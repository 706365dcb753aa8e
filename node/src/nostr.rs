//! The node on Nostr: apps announced by publishers on
//! Nostr relays, verified event by event, ranked by web-of-trust scores, installed under the
//! node's Nostr install policy. `docs/nostr.md` ("The node on Nostr") describes it for operators.
//!
//! - [`relay`]: a small NIP-01 client (query until `EOSE`, live subscriptions, publishing).
//! - [`read`]: a full read of the configured relays (`archy-node sync`) and the live
//!   subscription of `archy-node run`.
//! - [`state`]: every event through [`archy_nostr::discovery::Discovery`]'s ordered checks or
//!   [`archy_nostr::social::TrustInputs`]; dropped events logged and counted by reason.
//! - `store`: the verified events on disk, checked again whenever they are read back.
//! - `admission`: whose envelopes are fetched (the install policy's verdict now) and which
//!   data goes first when a cap of `[nostr.limits]` is reached (the least trusted).
//! - `fetch`: envelopes by hash from a release's URL or iroh locations.
//! - `trust`: the seeds (operator keys and the origin's publishers) and the scores.
//! - [`policy`]: `deny`, then `allow`, then `min_score`.
//! - `view`: what `apps`, `trust` and `install` see (the `sources` module hands it to the
//!   orchestrator).
//! - `keys` and `publish`: the node's own Nostr key and its NIP-85 assertions.

pub(crate) mod admission;
pub(crate) mod fetch;
pub(crate) mod keys;
pub mod policy;
pub(crate) mod publish;
pub mod read;
pub mod relay;
pub mod state;
pub(crate) mod store;
pub(crate) mod trust;
pub(crate) mod view;

pub(crate) use view::NostrView;
