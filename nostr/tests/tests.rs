//! The Nostr crate's integration tests, one binary with one module per area.

mod client;
mod discovery;
