//! `archy-node trust-origin-again`: after the origin's log showed a split view, the operator's
//! decision to take catalogs from it again. Shows the proof first; acts only with `--yes`.

use std::process::ExitCode;

use super::{DataArg, print_json};

/// `archy-node trust-origin-again`.
#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    data: DataArg,
    /// Trust the origin again: forget the proof's block and the kept checkpoint (the proof stays
    /// under evidence/). Without it, the proof is only shown.
    #[arg(long)]
    yes: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let data = args.data.dir();
    let Some(view) = crate::sync::log::split_view(&data) else {
        if args.json {
            print_json(&serde_json::json!({"split_view": null, "trusted_again": false}))?;
        } else {
            println!("no split view is held: the origin is not refused");
        }
        return Ok(ExitCode::SUCCESS);
    };
    if !args.yes {
        if args.json {
            print_json(&serde_json::json!({"split_view": view, "trusted_again": false}))?;
        } else {
            println!("the origin's log ({}) signed two checkpoints that can't both be true: {}", view.log, view.why);
            println!("seen {} from {}\n", view.seen_at.to_rfc3339(), view.from);
            println!("checkpoint this node had:\n{}", view.known);
            println!("checkpoint that contradicts it:\n{}", view.shown);
            println!("run again with --yes to take catalogs from the origin again (the proof stays under evidence/)");
        }
        return Ok(ExitCode::from(1));
    }
    crate::sync::log::trust_again(&data)?;
    if args.json {
        print_json(&serde_json::json!({"split_view": view, "trusted_again": true}))?;
    } else {
        println!("the origin is trusted again; the next round starts its log afresh (the proof stays under evidence/)");
    }
    Ok(ExitCode::SUCCESS)
}
