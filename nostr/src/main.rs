//! `archy-relay`: the embedded Nostr relay as a program of its own.
//!
//! ```text
//! archy-relay --listen 127.0.0.1:7447 --data DIR
//! ```
//!
//! Prints `relay ws://…` once it listens, then serves until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// The embedded archy Nostr relay (NIP-01, NIP-09, NIP-33), persisted to `<data>/events.jsonl`.
#[derive(Debug, Parser)]
#[command(name = "archy-relay", version)]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:7447")]
    listen: SocketAddr,
    /// Directory of the event log; without it events are kept in memory only.
    #[arg(long)]
    data: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let relay = archy_nostr::relay::EmbeddedRelay::start(args.listen, args.data.as_deref()).await?;
    println!("relay {}", relay.url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    relay.shutdown();
    Ok(())
}
