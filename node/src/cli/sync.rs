//! `archy-node sync`: one round, the catalog then the Nostr relays.

use std::process::ExitCode;

use super::{DataArg, init_logs, print_json, runtime};

/// `archy-node sync`.
#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    data: DataArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logs("warn,archy=info");
    let data = args.data.dir();
    let config = data.config()?;
    let report = runtime()?.block_on(crate::round::run_once(&data, &config))?;
    if args.json {
        print_json(&report)?;
    } else {
        match &report.source {
            Some(source) => println!(
                "{}: timestamp v{}, snapshot v{}, {} app versions, {} bytes downloaded (from {source}{})",
                if report.changed { "catalog updated" } else { "catalog up to date" },
                report.timestamp_version,
                report.snapshot_version,
                report.apps,
                report.bytes_downloaded,
                if report.origin_reachable { "" } else { "; origin unreachable" },
            ),
            None => println!("catalog kept: nothing verified this round"),
        }
        for e in &report.errors {
            eprintln!("  - {e}");
        }
        for p in &report.equivocation {
            eprintln!("EQUIVOCATION evidence kept: {}", p.display());
        }
        if let Some(nostr) = &report.nostr {
            for line in super::nostr::sync_lines(nostr) {
                println!("{line}");
            }
        }
    }
    Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
