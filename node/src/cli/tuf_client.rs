//! `archy-node tuf-client`: the client protocol of the TUF conformance suite.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::init_logs;

/// `archy-node tuf-client`.
#[derive(clap::Args)]
pub(super) struct Args {
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
    action: Action,
}

#[derive(Subcommand)]
enum Action {
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

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logs(if args.verbose > 0 { "debug" } else { "warn" });
    let need = |v: Option<String>, flag: &str| v.ok_or_else(|| anyhow::anyhow!("{flag} is required"));
    match args.action {
        Action::Init { trusted_root } => crate::tuf_client::init(&args.metadata_dir, &trusted_root)?,
        Action::Refresh => crate::tuf_client::refresh(&args.metadata_dir, &need(args.metadata_url, "--metadata-url")?)?,
        Action::Download => crate::tuf_client::download(
            &args.metadata_dir,
            &need(args.metadata_url, "--metadata-url")?,
            &args.target_names,
            &need(args.target_base_url, "--target-base-url")?,
            &args.target_dir.ok_or_else(|| anyhow::anyhow!("--target-dir is required"))?,
        )?,
    }
    Ok(ExitCode::SUCCESS)
}
