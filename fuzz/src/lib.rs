//! What the fuzz targets share with `examples/make_seeds.rs`: fixed keys and the state a target
//! starts each input from, so the seeds committed under `seeds/` are valid against it (a signed
//! seed reaches the checks after the signatures).
//!
//! - [`nostr`]: a publisher whose DID and Nostr key are bound, a stranger, the envelopes they
//!   announce, and the checks every Nostr event goes through ([`nostr::Checks`]).
//! - [`origin`]: an origin repository with one delegated publisher, its router on a tokio
//!   runtime, and the submission bodies `POST /v1/submissions` takes.

pub mod nostr;
pub mod origin;
