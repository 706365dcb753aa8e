//! The archy origin registry.
//!
//! The origin curates the catalog and signs it as a TUF repository: [`catalog::repo`] builds and
//! signs it (exposed to operators as `archy repo …`), [`server`] runs it as a service
//! (`archy-registry serve`: submissions, timestamp re-signing, HTTP and iroh serving). What
//! origins and nodes speak to each other over iroh is the `archy-net` crate. [`cli`] is the
//! `archy-registry` command line; its binary only parses arguments and maps errors to exit codes.
//!
//! Running an origin in-process, as the benches and tests do:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let mut config = registry::server::Config::new("origin".into());
//! config.iroh = None;
//! registry::server::serve(config, async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(())
//! # }
//! ```

pub mod cli;
pub mod server;

pub use catalog::repo;
