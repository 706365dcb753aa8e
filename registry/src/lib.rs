//! The archy origin registry.
//!
//! The origin curates the catalog and signs it as a TUF repository: [`catalog::repo`] builds and
//! signs it (exposed to operators as `archy repo …`), [`server`] runs it as a service
//! (`archy-registry serve`: submissions, timestamp re-signing, HTTP and iroh serving). What
//! origins and nodes speak to each other over iroh is the `archy-net` crate.

pub mod server;

pub use catalog::repo;

// The protocols the origin serves.
use archy_net as net;
