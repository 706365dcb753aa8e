//! `archy-node apps`: what can be installed, the origin's catalog and Nostr apart.

use std::process::ExitCode;

use super::{DataArg, init_logs};
use crate::sources::Source;

/// `archy-node apps`.
#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    data: DataArg,
    /// Which apps: the origin's catalog, Nostr announcements, or both (shown apart).
    #[arg(long, value_enum, default_value_t)]
    source: Source,
    /// Print JSON (one list; each entry's `source` says where it comes from).
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logs("warn");
    super::nostr::apps(&args.data.dir(), args.source, args.json)
}
