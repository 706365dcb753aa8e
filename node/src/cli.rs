//! `archy-node`'s commands: one module per subcommand with its `Args` and `run`, and what they
//! share: the data folder option, one logging setup, one runtime, one shutdown signal, one
//! output helper and one exit-code rule (0 ok, 1 the user's input or a verification failure,
//! 2 unexpected).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::data_dir::DataDir;

mod api;
mod apps;
mod fetch;
mod init;
mod lifecycle;
mod nostr;
mod run;
mod service;
mod status;
mod sync;
mod trust;
mod trust_origin;
mod tuf_client;

#[derive(Parser)]
#[command(name = "archy-node", version, about = "The archy node: a verified catalog and the apps installed from it")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--data DIR`, the node's data directory.
#[derive(clap::Args, Clone, Debug)]
struct DataArg {
    /// The node's data directory [default: $ARCHY_NODE_DATA, else $XDG_DATA_HOME/archy-node, else ~/.local/share/archy-node].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

impl DataArg {
    fn dir(&self) -> DataDir {
        DataDir::from_arg_or_env(self.data.clone())
    }
}

#[derive(Subcommand)]
enum Command {
    /// Pin the trust root and name the origin (and peers) in <data>/config.toml.
    Init(init::Args),
    /// One sync round: origin first, peers when it is unreachable.
    Sync(sync::Args),
    /// Keep the catalog fresh and serve it to other nodes (until SIGINT/SIGTERM).
    Run(run::Args),
    /// Installable apps: the origin's verified catalog and verified Nostr announcements.
    Apps(apps::Args),
    /// A publisher's trust score and why (strongest paths from your seeds, endorsers,
    /// reporters); or, with --publish, post the node's scores as NIP-85 assertions.
    Trust(trust::Args),
    /// Catalog version and expiry, origin reachability, peers, equivocation evidence.
    Status(status::Args),
    /// After the origin's log showed a split view: show the proof, and with --yes take catalogs
    /// from the origin again.
    TrustOriginAgain(trust_origin::Args),
    /// Fetch a target file (e.g. an image archive) into the node, verified.
    Fetch(fetch::Args),
    /// TUF client following the tuf-conformance client protocol (init, refresh, download).
    TufClient(tuf_client::Args),
    /// Print the local API's bearer token (<data>/api.token, created 0600 if missing).
    ApiToken(api::TokenArgs),
    /// One request to the running node's local API (the token or the socket used for you).
    Api(api::Args),
    /// Print a one-time link that signs a browser into the running node's dashboard.
    Dashboard(api::DashboardArgs),
    /// The systemd unit that starts `archy-node run` at boot: install or print it.
    Service(service::Args),
    /// App lifecycle: install, start, stop, restart, update, uninstall, ps, logs, reconcile.
    #[command(flatten)]
    Lifecycle(lifecycle::AppCommand),
}

/// Runs the command line and prints an error with its cause chain: `error: …`.
pub fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Init(args) => init::run(args),
        Command::Sync(args) => sync::run(args),
        Command::Run(args) => run::run(args),
        Command::Apps(args) => apps::run(args),
        Command::Trust(args) => trust::run(args),
        Command::Status(args) => status::run(args),
        Command::TrustOriginAgain(args) => trust_origin::run(args),
        Command::Fetch(args) => fetch::run(args),
        Command::TufClient(args) => tuf_client::run(args),
        Command::ApiToken(args) => api::token(args),
        Command::Api(args) => api::run(args),
        Command::Dashboard(args) => api::dashboard(args),
        Command::Service(args) => service::run(args),
        Command::Lifecycle(command) => lifecycle::run(command),
    }
}

/// The exit-code rule: 1 for what the user can fix or what failed verification (the default:
/// bad input, refused metadata, unreachable origin), 2 for what nobody asked for — a failed
/// task, or a system error reading or writing the node's own files.
fn exit_code(err: &anyhow::Error) -> u8 {
    use std::io::ErrorKind;
    let unexpected = err.chain().any(|cause| {
        cause.is::<tokio::task::JoinError>()
            || cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
                matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::OutOfMemory | ErrorKind::ReadOnlyFilesystem)
            })
    });
    if unexpected { 2 } else { 1 }
}

/// One logging setup for every command: `$ARCHY_LOG` (a tracing filter) or `default`, to stderr.
fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARCHY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).try_init();
}

/// The runtime commands run their async work on.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// Prints `value` as pretty JSON on stdout (`--json`).
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
