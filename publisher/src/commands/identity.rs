//! `archy identity show|bind`: the publisher's two keys and the Nostr event that ties them.
//!
//! The DID (did:key, Ed25519, the publisher key) signs manifests; the Nostr key (secp256k1,
//! `nostr.key` beside the publisher key) posts events. `bind` posts, to every relay named:
//! - the binding event (kind 30078, `d` = `archy:bind:<did>`), signed by the Nostr key and
//!   carrying the DID's signature over "this npub speaks for this DID": nodes count a release
//!   only when such a binding verifies;
//! - the NIP-89 handler event (kind 31990), so ordinary Nostr clients learn what archy's kind
//!   30078 events are.

use std::process::ExitCode;

use archy_nostr::event::{bech32_npub, bind_d_tag};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::cli::{KeyPath, NostrKeyPath};
use crate::output::Output;
use crate::relays;

/// `archy identity`.
#[derive(Args, Debug)]
pub struct IdentityArgs {
    #[command(subcommand)]
    action: IdentityAction,
}

#[derive(Subcommand, Debug)]
enum IdentityAction {
    /// Print the publisher's DID and its Nostr public key (npub).
    Show {
        #[command(flatten)]
        key: KeyPath,
        #[command(flatten)]
        nostr_key: NostrKeyPath,
    },
    /// Post the DID↔Nostr binding and the NIP-89 handler event to Nostr relays.
    Bind {
        /// A relay to post to (ws://… or wss://…); repeat for several.
        #[arg(long = "relay", value_name = "URL", required = true)]
        relays: Vec<String>,
        /// An origin's marketplace (http(s)://host:port): the handler event then tells Nostr
        /// clients to open releases there (`<URL>/a/<bech32>`, NIP-89 `web`).
        #[arg(long, value_name = "URL")]
        marketplace: Option<String>,
        #[command(flatten)]
        key: KeyPath,
        #[command(flatten)]
        nostr_key: NostrKeyPath,
    },
}

/// Runs `archy identity`.
pub fn run(args: IdentityArgs, out: &Output) -> anyhow::Result<ExitCode> {
    match args.action {
        IdentityAction::Show { key, nostr_key } => show(&key, &nostr_key, out),
        IdentityAction::Bind { relays, marketplace, key, nostr_key } => {
            bind(&relays, marketplace.as_deref(), &key, &nostr_key, out)
        }
    }
}

fn show(key: &KeyPath, nostr_key: &NostrKeyPath, out: &Output) -> anyhow::Result<ExitCode> {
    let did = key.load()?.did().to_string();
    let path = nostr_key.path();
    // `show` never creates a key: it only reports what exists.
    let npub = if path.exists() { Some(bech32_npub(&crate::nostr_key::read(&path)?.public_key())) } else { None };
    let human = match &npub {
        Some(npub) => format!("did: {did}\nnpub: {npub}\nnostr key: {}", path.display()),
        None => format!("did: {did}\nnpub: none yet (`archy identity bind --relay ws://…` creates {})", path.display()),
    };
    out.print(human, &json!({"did": did, "npub": npub, "nostr_key": path}));
    Ok(ExitCode::SUCCESS)
}

fn bind(
    relay_urls: &[String],
    marketplace: Option<&str>,
    key: &KeyPath,
    nostr_key: &NostrKeyPath,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let web = match marketplace {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            Some(format!("{}/a/<bech32>", url.trim_end_matches('/')))
        }
        Some(url) => return Err(crate::output::user_error(format!("--marketplace {url}: not an http(s):// URL"))),
        None => None,
    };
    let signing = key.load()?;
    let did = signing.did();
    let (keys, created) = nostr_key.load_or_create()?;
    let npub = bech32_npub(&keys.public_key());
    let answers = relays::runtime()?.block_on(relays::with_relays(relay_urls, async |connections| {
        let mut answers = Vec::new();
        for relay in connections {
            // A binding at the same second as the one it replaces could lose (NIP-01).
            if let Some(at) = relays::newest_at_address(relay, &keys, &bind_d_tag(&did)).await? {
                relays::wait_until_after(at, &relay.url()).await?;
            }
        }
        let binding = archy_nostr::event::binding_event(&signing, &keys)?;
        let handler = archy_nostr::interop::handler_event(&keys, web.as_deref())?;
        for relay in connections {
            answers.push(relays::post(relay, "binding", &binding).await);
            answers.push(relays::post(relay, "handler", &handler).await);
        }
        Ok(answers)
    }))?;
    relays::check(&answers)?;
    let created_line =
        if created { format!("created Nostr key {}\n", nostr_key.path().display()) } else { String::new() };
    let binding_id = answers.iter().find(|a| a.what == "binding").map(|a| a.id.clone()).unwrap_or_default();
    let handler_id = answers.iter().find(|a| a.what == "handler").map(|a| a.id.clone()).unwrap_or_default();
    out.print(
        format!(
            "{created_line}bound {npub} to {did}\nbinding event: {binding_id}\nhandler event (NIP-89): {handler_id}\n{}",
            relays::lines(&answers)
        ),
        &json!({
            "did": did.to_string(),
            "npub": npub,
            "nostr_key": nostr_key.path(),
            "created": created,
            "binding": binding_id,
            "handler": handler_id,
            "relays": answers.iter().map(relays::Answer::json).collect::<Vec<_>>(),
        }),
    );
    Ok(ExitCode::SUCCESS)
}
