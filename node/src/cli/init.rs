//! `archy-node init`: pin the trust root, name the origin, peers and Nostr settings.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{DataArg, init_logs};
use crate::init::{InitArgs, NostrArgs, init};

/// `archy-node init`.
#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    data: DataArg,
    /// The origin's root.json (version 1, or any version you trust).
    #[arg(long)]
    root: PathBuf,
    /// Its minisign signature (root.json.minisig); checked before anything is written.
    #[arg(long, requires = "minisign_key")]
    minisig: Option<PathBuf>,
    /// The minisign public key: the base64 line (RW…) or a minisign .pub file.
    #[arg(long)]
    minisign_key: Option<String>,
    /// The origin's HTTP URL.
    #[arg(long)]
    origin: Option<String>,
    /// The origin's iroh address, <endpoint id>@<ip:port>.
    #[arg(long)]
    origin_iroh: Option<String>,
    /// Another node to mirror from when the origin is unreachable (repeatable).
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// Replace an existing trust root.
    #[arg(long)]
    force: bool,
    /// A Nostr relay to read apps, bindings, follows and labels from (repeatable).
    #[arg(long = "relay", value_name = "ws://…")]
    relays: Vec<String>,
    /// A Nostr key you trust, seeding the trust scores (repeatable).
    #[arg(long = "trust", value_name = "npub1…")]
    trust: Vec<String>,
    /// Lowest trust score (0–100) a Nostr publisher needs to be installable [default: 1.0].
    #[arg(long)]
    min_score: Option<f64>,
    /// A publisher (did:key or npub) installable from Nostr whatever its score (repeatable).
    #[arg(long = "allow", value_name = "DID|NPUB")]
    allow: Vec<String>,
    /// A publisher (did:key or npub) never installable from Nostr (repeatable).
    #[arg(long = "deny", value_name = "DID|NPUB")]
    deny: Vec<String>,
    /// `archy-node run` also runs the embedded Nostr relay on this address (its events kept
    /// under <data>/relay/).
    #[arg(long, value_name = "IP:PORT")]
    serve_relay: Option<std::net::SocketAddr>,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logs("warn");
    let data = args.data.dir();
    let summary = init(&InitArgs {
        data: &data,
        root: &args.root,
        minisig: args.minisig.as_deref(),
        minisign_key: args.minisign_key.as_deref(),
        origin: args.origin,
        origin_iroh: args.origin_iroh,
        peers: args.peers,
        force: args.force,
        nostr: NostrArgs {
            relays: args.relays,
            trust: args.trust,
            min_score: args.min_score,
            allow: args.allow,
            deny: args.deny,
            serve_relay: args.serve_relay,
        },
    })?;
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}
