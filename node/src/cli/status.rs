//! `archy-node status`: catalog version and expiry, origin, peers, evidence, the daemon, Nostr.

use std::process::ExitCode;

use super::{DataArg, print_json};
use crate::status::Status;

/// `archy-node status`.
#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    data: DataArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let status = Status::gather(&args.data.dir());
    if args.json {
        print_json(&status)?;
    } else {
        print!("{}", status.render());
    }
    Ok(ExitCode::SUCCESS)
}
