//! The archy node: keeps a verified copy of the catalog and installs apps from it.
//!
//! - [`sync`]: one round of catalog sync, origin first, peers when the origin is unreachable,
//!   over HTTP or iroh; [`catalog`] keeps the verified result on disk as atomic generations.
//! - [`daemon`]: `archy-node run`, syncing on an interval and mirroring to other nodes.
//! - [`tuf_client`]: `archy-node tuf-client`, the client protocol of the TUF conformance suite,
//!   over [`catalog::client::Updater`] with plain HTTP ([`http::HttpRemote`]).
//! - [`nostr`]: apps announced on Nostr, checked event by event, ranked by trust scores and
//!   installed under the node's Nostr policy (`docs/nostr-node.md`).
//! - [`orchestrator`]: installs verified apps through the Docker Engine API and keeps them
//!   running: lifecycle operations, a reconciler, and the local HTTP API (`docs/orchestrator.md`).

pub mod catalog;
pub mod config;
pub mod daemon;
pub mod http;
pub mod init;
pub mod nostr;
pub mod orchestrator;
pub mod status;
pub mod store;
pub mod sync;
pub mod tuf_client;
