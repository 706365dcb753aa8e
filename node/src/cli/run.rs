//! `archy-node run`: the daemon, until SIGINT or SIGTERM.

use std::process::ExitCode;

use super::{DataArg, init_logs, runtime, shutdown_signal};

/// `archy-node run`.
#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    data: DataArg,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logs("info,iroh=warn,iroh_blobs=warn");
    runtime()?.block_on(crate::daemon::run(&args.data.dir(), shutdown_signal()))?;
    Ok(ExitCode::SUCCESS)
}
