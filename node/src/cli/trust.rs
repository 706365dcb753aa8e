//! `archy-node trust`: a publisher's score and why, or `--publish` the node's scores (NIP-85).

use std::process::ExitCode;

use super::{DataArg, init_logs, runtime};

/// `archy-node trust`.
#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    data: DataArg,
    /// A publisher's did:key or a Nostr key (npub1… or hex).
    #[arg(required_unless_present_any = ["publish", "keys"])]
    subject: Option<String>,
    /// List the publisher keys that are not plainly trusted: the origin's retired and revoked
    /// publisher roles, every DID a Nostr key statement names (succeeded, revoked, refused), and
    /// the installed apps signed by a revoked key.
    #[arg(long, conflicts_with_all = ["subject", "publish"])]
    keys: bool,
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
    if args.keys {
        let report = crate::key_standing::KeyReport::gather(&data);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            let lines = report.render();
            if lines.is_empty() {
                println!("no publisher key is retired, revoked or succeeded");
            }
            for l in lines {
                println!("{l}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.subject {
        Some(subject) if !args.publish => super::nostr::explain(&data, &subject, args.paths, args.json),
        _ => runtime()?.block_on(super::nostr::publish(&data, args.json)),
    }
}
