//! The archy node: keeps a verified copy of the catalog and installs apps from it.
//!
//! Today the node holds the TUF client side of the trust core: [`tuf_client`] drives
//! [`catalog::client::Updater`] over plain HTTP ([`http::HttpRemote`]) with trusted metadata kept
//! in a directory ([`store::MetadataDir`]). `archy-node tuf-client` exposes it through the client
//! protocol of the public TUF conformance suite.
//!
//! [`orchestrator`] installs verified apps through the Docker Engine API and keeps them running:
//! lifecycle operations, a reconciler, and the local HTTP API (`docs/orchestrator.md`).

pub mod http;
pub mod orchestrator;
pub mod store;
pub mod tuf_client;
