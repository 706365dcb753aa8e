//! `archy trust follow|endorse|report <npub|did> --relay …`: the inputs of nodes' trust scores,
//! posted with this user's Nostr key.
//!
//! - `follow` adds the key to this Nostr key's kind 3 follow list (NIP-02). Kind 3 is
//!   replaceable, so the newest list found on the relays is extended, never overwritten with
//!   less.
//! - `endorse` and `report` post a NIP-32 label (kind 1985) in the `archy` namespace.
//!
//! A `did:key` target is resolved to the Nostr keys it is bound to on the relays: only binding
//! events whose DID signature verifies count (the same check a node runs).

use std::process::ExitCode;

use archy_nostr::event::{self, Announcement, KIND_APP_DATA, bech32_npub, bind_d_tag};
use archy_nostr::nostr_sdk::{Event, EventBuilder, Filter, Kind, PublicKey, Tag};
use archy_nostr::social;
use catalog::DidKey;
use catalog::trust::Label;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::cli::NostrKeyPath;
use crate::output::{Output, user_error};
use crate::relays;

/// `archy trust`.
#[derive(Args, Debug)]
pub struct TrustArgs {
    #[command(subcommand)]
    action: TrustAction,
}

#[derive(Subcommand, Debug)]
enum TrustAction {
    /// Follow a publisher: add it to your kind 3 follow list.
    Follow(Target),
    /// Endorse a publisher: a NIP-32 `archy` label `endorse`.
    Endorse(Target),
    /// Report a publisher: a NIP-32 `archy` label `report`, which withdraws trust from it.
    Report(Target),
}

#[derive(Args, Debug)]
struct Target {
    /// The publisher: `npub1…`, a hex Nostr key, or a `did:key:…` (resolved through its
    /// verified binding events on the relays).
    target: String,
    /// A relay to post to; repeat for several.
    #[arg(long = "relay", value_name = "URL", required = true)]
    relays: Vec<String>,
    /// Why (the label's content).
    #[arg(long, default_value = "")]
    reason: String,
    #[command(flatten)]
    nostr_key: NostrKeyPath,
}

/// Runs `archy trust`.
pub fn run(args: TrustArgs, out: &Output) -> anyhow::Result<ExitCode> {
    let (what, target) = match args.action {
        TrustAction::Follow(t) => ("follow", t),
        TrustAction::Endorse(t) => ("endorse", t),
        TrustAction::Report(t) => ("report", t),
    };
    let (keys, _) = target.nostr_key.load_or_create()?;
    let answers = relays::runtime()?.block_on(relays::with_relays(&target.relays, async |connections| {
        let subjects = resolve(&target.target, connections).await?;
        let event = match what {
            "follow" => {
                // The newest list on any relay is the one to extend.
                let mut newest: Option<Event> = None;
                for relay in connections {
                    let filter = Filter::new().kind(Kind::ContactList).author(keys.public_key());
                    for list in relay.query(filter).await.map_err(relays::relay_error)? {
                        // A relay may answer with events the filter did not ask for: only our
                        // own list is ours to extend.
                        if list.pubkey != keys.public_key() || list.kind != Kind::ContactList {
                            continue;
                        }
                        if newest.as_ref().is_none_or(|n| list.created_at > n.created_at) {
                            newest = Some(list);
                        }
                    }
                }
                let mut keys_followed: Vec<PublicKey> =
                    newest.as_ref().map(|e| e.tags.public_keys().copied().collect()).unwrap_or_default();
                if let Some(list) = &newest {
                    // A replacement in the same second could lose (NIP-01 replaceable events).
                    relays::wait_until_after(list.created_at, &connections[0].url()).await?;
                }
                for s in &subjects {
                    if !keys_followed.contains(s) {
                        keys_followed.push(*s);
                    }
                }
                social::follow_list_event(&keys, &keys_followed)?
            }
            _ => {
                let label = if what == "endorse" { Label::Endorse } else { Label::Report };
                let Some(first) = subjects.first() else { unreachable!("resolve returns at least one key") };
                let mut event = social::label_event(&keys, first, label, &target.reason)?;
                if subjects.len() > 1 {
                    // One label event may name several keys (NIP-32): every key bound to the DID.
                    let mut tags: Vec<_> = event.tags.iter().cloned().collect();
                    tags.extend(subjects[1..].iter().map(|k| Tag::public_key(*k)));
                    event = EventBuilder::new(event.kind, event.content.clone()).tags(tags).sign_with_keys(&keys)?;
                }
                event
            }
        };
        let mut answers = Vec::new();
        for relay in connections {
            answers.push(relays::post(relay, what, &event).await);
        }
        Ok((answers, subjects))
    }))?;
    let (answers, subjects) = answers;
    relays::check(&answers)?;
    let npubs: Vec<String> = subjects.iter().map(bech32_npub).collect();
    out.print(
        format!("{what}: {}\n{}", npubs.join(", "), relays::lines(&answers)),
        &json!({
            "action": what,
            "by": bech32_npub(&keys.public_key()),
            "subjects": npubs,
            "relays": answers.iter().map(relays::Answer::json).collect::<Vec<_>>(),
        }),
    );
    Ok(ExitCode::SUCCESS)
}

/// The Nostr keys `target` names: itself for an npub or hex key; for a DID, every key with a
/// verified binding to it on the relays.
async fn resolve(target: &str, relays: &[archy_nostr::client::RelayConnection]) -> anyhow::Result<Vec<PublicKey>> {
    if !target.starts_with("did:") {
        let key = PublicKey::parse(target)
            .map_err(|e| user_error(format!("`{target}` is not an npub, a hex Nostr key or a did:key: {e}")))?;
        return Ok(vec![key]);
    }
    let did: DidKey = target.parse().map_err(|e| user_error(format!("{e}")))?;
    let filter = Filter::new().kind(Kind::from_u16(KIND_APP_DATA)).identifier(bind_d_tag(&did));
    let mut keys = Vec::new();
    for relay in relays {
        for e in relay.query(filter.clone()).await.map_err(relays::relay_error)? {
            let bound =
                matches!(event::parse(&e), Ok(Announcement::Binding(b)) if b.did == did && b.verify(&e.pubkey).is_ok());
            if bound && !keys.contains(&e.pubkey) {
                keys.push(e.pubkey);
            }
        }
    }
    if keys.is_empty() {
        return Err(user_error(format!(
            "no verified binding for {did} on the relays: its publisher has not run `archy identity bind` there"
        )));
    }
    Ok(keys)
}
