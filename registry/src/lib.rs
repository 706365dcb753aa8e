//! The archy origin registry.
//!
//! The origin curates the catalog and signs it as a TUF repository. Today the repository is
//! built and signed with [`catalog::repo`] (exposed to operators as `archy repo …`); the network
//! server that accepts submissions and serves the catalog over HTTP and iroh builds on it.

pub use catalog::repo;
