//! `archy-registry serve`: the origin.
//!
//! It holds the repository folder `archy repo init` made (`repository/`, `keys/`) and only the
//! online keys from it (timestamp, snapshot); root keys stay offline. It
//! - accepts publisher submissions (`POST /v1/submissions`): the publisher's next delegated
//!   targets metadata, signed on the publisher's machine, plus the files it names;
//! - re-signs the timestamp before it expires ([`Registry::resign_if_due`]);
//! - keeps the transparency log when the root names one: every timestamp it signs is a leaf,
//!   in a signed checkpoint before it is served (`catalog::repo::Repository::write_dir`);
//! - serves the repository over HTTP in the TUF layout and over iroh (blobs by BLAKE3 and the
//!   metadata protocol of `archy_net`);
//! - hosts signed envelopes for publishers who announce their apps on Nostr (`POST /v1/blobs`,
//!   served back at `GET /v1/blobs/<blake3>` and over iroh-blobs);
//! - can run the embedded Nostr relay beside it ([`Config::relay`]);
//! - reports health and Prometheus metrics.
//!
//! Every change to the repository happens under one lock and ends with `write_dir`, which writes
//! `timestamp.json` last and atomically: a reader sees the old catalog or the new one.
//!
//! A refused request is answered 4xx with `{"error": <code>, "reason": <for the publisher>}`; a
//! failure of the origin itself is answered 500 `{"error": "internal", …}` with a generic reason,
//! its cause goes to the origin's log.
//!
//! The parts, each in its own module:
//! - `state`: [`Config`], [`Registry`] (keys, the write lock, the metadata cache) and the
//!   timestamp schedule;
//! - `service`: [`serve`] (HTTP, iroh, the relay, the re-signing task, graceful shutdown),
//!   [`serve_http`], [`router`] and [`Listening`];
//! - `endpoint`: the iroh endpoint and its blob store;
//! - `files`: the TUF layout, `/metadata/` and `/targets/`;
//! - `submissions`: `POST /v1/submissions` and `GET /v1/publishers/<did>`;
//! - `blobs`: hosted envelopes, `/v1/blobs`;
//! - `hosted`: the envelopes kept and their quota ([`BlobQuota`]);
//! - `log`: the transparency log, `/log/checkpoint` and its proofs by metadata name;
//! - `metrics`: `/healthz` and `/metrics`;
//! - `error`: the one error type of every handler.

mod blobs;
mod endpoint;
mod error;
mod files;
mod hosted;
mod log;
mod market;
mod market_nostr;
mod metrics;
mod pages;
mod service;
mod state;
mod submissions;

pub use self::hosted::BlobQuota;
pub use self::market_nostr::NostrMarketConfig;
pub use self::service::{Listening, read_listening, router, serve, serve_http};
pub(crate) use self::state::WrongOnlineKey;
pub use self::state::{Config, Registry};

/// A random suffix for temporary names (uploads, envelopes being written).
fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}
