//! `archy-relay`'s command line: the embedded Nostr relay as a program of its own.
//!
//! ```text
//! archy-relay --listen 127.0.0.1:7447 --data DIR
//! ```
//!
//! Prints `relay ws://…` once it listens, then serves until SIGINT or SIGTERM. Exit codes: 0 ok,
//! 1 when the relay can't start (the address is taken, the event log can't be read), 2 for a bad
//! flag (clap's usage error).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser as _;

/// The embedded archy Nostr relay (NIP-01, NIP-09, NIP-33), persisted to `<data>/events.jsonl`.
#[derive(Debug, clap::Parser)]
#[command(name = "archy-relay", version)]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:7447")]
    listen: SocketAddr,
    /// Directory of the event log; without it events are kept in memory only.
    #[arg(long)]
    data: Option<PathBuf>,
}

/// Runs `archy-relay` and prints an error with its cause chain: `error: …`.
pub fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARCHY_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    tokio::runtime::Runtime::new()?.block_on(async {
        let relay = crate::relay::EmbeddedRelay::start(args.listen, args.data.as_deref()).await?;
        println!("relay {}", relay.url());
        shutdown_signal().await;
        relay.shutdown();
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
