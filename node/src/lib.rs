//! The archy node: keeps a verified copy of the catalog and installs apps from it.
//!
//! The crate is drawn in three layers; a module imports only from its own layer's helpers and
//! the layers below it (docs/architecture.md):
//!
//! - **bottom, local state**: [`data_dir`] (the data folder as a typed value, chosen once at
//!   the top), [`config`] (`config.toml`), [`files`] (`files/<blake3>`, the one content-addressed
//!   store of verified files), [`catalog`] (the verified catalog as atomic generations on disk),
//!   `node_info` (where a running node listens), `store` and `http` (the TUF client's
//!   metadata folder and HTTP remote).
//! - **middle, the node's jobs**: [`sync`] (one round of catalog sync, origin first, peers
//!   when the origin is unreachable), [`nostr`] (apps announced on Nostr, checked event by
//!   event, ranked by trust scores), [`orchestrator`] (verified apps through the Docker Engine
//!   API: lifecycle, reconciler, the lifecycle API). Each uses only the bottom.
//! - **top, what people run**: `sources` (the origin's catalog and Nostr as one source of
//!   installs), [`round`] (a sync round and the Nostr read after it), `daemon`
//!   (`archy-node run`), `status`, [`init`], `tuf_client` (the conformance-suite protocol)
//!   and [`cli`] (`archy-node`'s commands, progress drawing, output and exit codes);
//!   [`local_api`] checks every request to the local API (Host, cross-site, token, JSON).

pub mod catalog;
pub mod cli;
pub mod config;
pub(crate) mod daemon;
pub mod data_dir;
pub(crate) mod engine_watch;
pub mod files;
pub(crate) mod http;
pub mod init;
pub(crate) mod key_standing;
pub mod local_api;
pub(crate) mod node_info;
pub mod nostr;
pub mod orchestrator;
pub mod round;
pub(crate) mod sources;
pub(crate) mod status;
pub(crate) mod store;
pub mod sync;
pub(crate) mod tuf_client;

pub use data_dir::DataDir;
