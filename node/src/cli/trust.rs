//! `archy-node trust`: a publisher's score and why, or `--publish` the node's scores (NIP-85).

use std::process::ExitCode;

use super::{DataArg, init_logs, runtime};

/// `archy-node trust`.
#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    data: DataArg,
    /// A publisher's did:key or a Nostr key (npub1… or hex).
    #[arg(required_unless_present = "publish")]
    subject: Option<String>,
    /// How many paths to show.
    #[arg(long, default_value_t = 3)]
    paths: usize,
    /// Sign the scores of the publishers' keys with the node's Nostr key (<data>/nostr.key)
    /// and post them to the configured relays.
    #[arg(long, conflicts_with = "subject")]
    publish: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logs("warn");
    let data = args.data.dir();
    match args.subject {
        Some(subject) if !args.publish => super::nostr::explain(&data, &subject, args.paths, args.json),
        _ => runtime()?.block_on(super::nostr::publish(&data, args.json)),
    }
}
