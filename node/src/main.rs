//! `archy-node`: the node daemon's command line.

use std::path::PathBuf;
use std::process::ExitCode;

// JSON-heavy verification is allocation-bound; mimalloc makes it markedly faster.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "archy-node", version, about = "The archy node: a verified catalog and the apps installed from it")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// TUF client following the tuf-conformance client protocol (init, refresh, download).
    TufClient(TufClientArgs),
    /// App lifecycle: install, start, stop, restart, update, uninstall, ps, logs, reconcile.
    #[command(flatten)]
    Apps(node::orchestrator::cli::AppCommand),
}

#[derive(clap::Args)]
struct TufClientArgs {
    /// Directory holding the trusted metadata (root.json, timestamp.json, …).
    #[arg(long)]
    metadata_dir: PathBuf,
    /// Base URL of the repository's metadata.
    #[arg(long)]
    metadata_url: Option<String>,
    /// Target path to download; repeat to download several in order.
    #[arg(long = "target-name")]
    target_names: Vec<String>,
    /// Base URL of the repository's targets.
    #[arg(long)]
    target_base_url: Option<String>,
    /// Directory to store verified targets in.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Print debug logs.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    action: TufAction,
}

#[derive(Subcommand)]
enum TufAction {
    /// Trust this root.json (copied to the metadata directory).
    Init {
        /// The bootstrap root.json.
        trusted_root: PathBuf,
    },
    /// Update the top-level metadata.
    Refresh,
    /// Update, then download each --target-name.
    Download,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Apps(command) => {
            let filter = std::env::var("ARCHY_LOG").unwrap_or_else(|_| "warn".to_owned());
            tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
            return node::orchestrator::cli::run(command);
        }
        Command::TufClient(args) => {
            let level = if args.verbose > 0 { "debug" } else { "warn" };
            tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(level).init();
            let need = |v: Option<String>, flag: &str| v.ok_or_else(|| anyhow::anyhow!("{flag} is required"));
            match args.action {
                TufAction::Init { trusted_root } => node::tuf_client::init(&args.metadata_dir, &trusted_root)?,
                TufAction::Refresh => {
                    node::tuf_client::refresh(&args.metadata_dir, &need(args.metadata_url, "--metadata-url")?)?
                }
                TufAction::Download => node::tuf_client::download(
                    &args.metadata_dir,
                    &need(args.metadata_url, "--metadata-url")?,
                    &args.target_names,
                    &need(args.target_base_url, "--target-base-url")?,
                    &args.target_dir.ok_or_else(|| anyhow::anyhow!("--target-dir is required"))?,
                )?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
