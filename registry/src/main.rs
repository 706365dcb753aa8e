//! `archy-registry`: the origin registry service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

// JSON-heavy signing and verification is allocation-bound; mimalloc makes it markedly faster.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "archy-registry",
    version,
    about = "The archy origin: accepts signed submissions, signs and serves the catalog"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a repository folder made by `archy repo init` over HTTP and iroh.
    Serve {
        /// The repository folder (holds repository/ and keys/ with timestamp.key and snapshot.key).
        #[arg(long)]
        data: PathBuf,
        /// HTTP listen address.
        #[arg(long, default_value = "127.0.0.1:8480")]
        http: SocketAddr,
        /// iroh listen address (direct connections only; relays are never used).
        #[arg(long, default_value = "127.0.0.1:0")]
        iroh: SocketAddr,
        /// Do not start the iroh endpoint.
        #[arg(long)]
        no_iroh: bool,
        /// Lifetime of each signed timestamp, in seconds (re-signed when half of it is left).
        #[arg(long, default_value_t = 86_400)]
        timestamp_lifetime: i64,
        /// How often to check whether the timestamp needs re-signing, in seconds.
        #[arg(long, default_value_t = 60)]
        resign_check: u64,
        /// Largest accepted submission, in MiB.
        #[arg(long, default_value_t = 1024)]
        max_submission_mib: u64,
        /// Also run the embedded Nostr relay on this address (e.g. 127.0.0.1:7447; port 0 picks
        /// one), persisted under <data>/relay/; its ws:// URL is printed and written to
        /// <data>/registry/endpoint.json.
        #[arg(long, value_name = "ADDR")]
        relay: Option<SocketAddr>,
        /// Base URL that hosted envelopes are announced under (default: http:// and the Host
        /// the publisher used), e.g. https://origin.example.
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ARCHY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,iroh=warn,iroh_blobs=warn")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(Cli::parse())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            data,
            http,
            iroh,
            no_iroh,
            timestamp_lifetime,
            resign_check,
            max_submission_mib,
            relay,
            public_url,
        } => {
            anyhow::ensure!(timestamp_lifetime >= 2, "--timestamp-lifetime must be at least 2 seconds");
            let config = registry::server::Config {
                data,
                http,
                iroh: (!no_iroh).then_some(iroh),
                timestamp_lifetime: chrono::TimeDelta::seconds(timestamp_lifetime),
                resign_check: Duration::from_secs(resign_check.max(1)),
                max_submission: max_submission_mib.saturating_mul(1 << 20),
                relay,
                public_url,
            };
            registry::server::serve(config, shutdown_signal()).await
        }
    }
}

/// Resolves on SIGINT or SIGTERM: the server stops accepting, finishes what is in flight, exits.
async fn shutdown_signal() {
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
