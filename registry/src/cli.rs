//! The `archy-registry` command line, one module per subcommand with its `Args` and `run`.
//!
//! `main` parses [`Cli`], sets up logging ([`init_logging`]) and calls [`run`]. Errors print with
//! their cause chain and map to exit codes by class ([`exit_code`]): 0 ok, 1 the user's input or a
//! failed verification (a missing key, a repository that does not verify, a taken address), 2
//! anything unexpected.

pub mod serve;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// `archy-registry`: the origin registry service.
#[derive(Parser, Debug)]
#[command(
    name = "archy-registry",
    version,
    about = "The archy origin: accepts signed submissions, signs and serves the catalog"
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve a repository folder made by `archy repo init` over HTTP and iroh.
    Serve(serve::Args),
}

/// Runs a parsed command line on a new Tokio runtime.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(args)),
    }
}

/// Logs to stderr, filtered by `ARCHY_LOG` (default `info,iroh=warn,iroh_blobs=warn`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ARCHY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,iroh=warn,iroh_blobs=warn")),
        )
        .init();
}

/// Resolves on SIGINT or SIGTERM: the server stops accepting, finishes what is in flight, exits.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// Input the user has to fix (a flag out of range); exits 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

/// The exit code for an error: 1 when any cause is the user's input or a failed verification,
/// 2 otherwise.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    use std::io::ErrorKind;
    let user = err.chain().any(|cause| {
        cause.is::<UserError>()
            || cause.is::<crate::server::WrongOnlineKey>()
            || cause.is::<catalog::repo::RepoError>()
            || cause.is::<catalog::metadata::MetadataError>()
            || cause.is::<catalog::keyfile::KeyFileError>()
            || cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
                matches!(
                    e.kind(),
                    ErrorKind::NotFound
                        | ErrorKind::PermissionDenied
                        | ErrorKind::AddrInUse
                        | ErrorKind::AddrNotAvailable
                )
            })
    });
    ExitCode::from(if user { 1 } else { 2 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_exit_by_class() {
        let user = anyhow::Error::new(UserError("--timestamp-lifetime must be at least 2 seconds".into()));
        assert_eq!(exit_code(&user), ExitCode::from(1));
        let taken = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::AddrInUse)).context("binding HTTP");
        assert_eq!(exit_code(&taken), ExitCode::from(1));
        assert_eq!(exit_code(&anyhow::anyhow!("iroh shutdown: closed")), ExitCode::from(2));
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
