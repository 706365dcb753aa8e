//! The NIP-82 mirror that `archy publish --relay` posts after the archy events
//! ([`archy_nostr::nip82`]): a kind 3063 asset for the envelope (and for each image archive in
//! `<app-dir>/dist/`), the kind 30063 release naming them and the kind 32267 application.
//!
//! The mirror is for app-store clients; nodes never read it. So a relay that refuses it, or
//! fails, does not fail the command: its answers are reported, with a warning, beside the archy
//! events' answers. A relay that already holds the mirrored release of this version is left as
//! it is, so running a publish again posts no second set of assets.

use std::path::Path;

use anyhow::Context as _;
use archy_nostr::client::{RelayConnection, RelayError};
use archy_nostr::nip82::{self, Asset, KIND_APPLICATION, Mirror};
use archy_nostr::nostr_sdk::{Event, Keys};
use catalog::envelope::VerifiedManifest;
use catalog::manifest::AppId;

use crate::relays::{self, Answer};

/// The image archives the app folder holds (`<app-dir>/dist/<file>`, as for `archy publish
/// --registry`), hashed for their assets.
pub(super) fn image_assets(verified: &VerifiedManifest, app: &Path) -> anyhow::Result<Vec<Asset>> {
    let mut assets = Vec::new();
    for (_, path) in crate::commands::publish::archives(verified.manifest(), app, &[])? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        assets.push(Asset::image_archive(&name, file).with_context(|| format!("reading {}", path.display()))?);
    }
    Ok(assets)
}

fn label(what: &str) -> &'static str {
    match what {
        "asset" => "NIP-82 asset",
        "release" => "NIP-82 release",
        _ => "NIP-82 application",
    }
}

fn failed(relay: &RelayConnection, what: &'static str, reason: String) -> Answer {
    Answer { relay: relay.url(), what, id: String::new(), result: Err(RelayError::Failed { url: relay.url(), reason }) }
}

/// Posts the mirror of the release to every relay that does not hold it yet. `posted` is the
/// archy release event just posted; `held` names the relays that already held this very release
/// and the event they hold, which their mirror points at instead.
pub(super) async fn announce(
    connections: &[RelayConnection],
    posted: &Event,
    held: &[(String, Event)],
    verified: &VerifiedManifest,
    images: &[Asset],
    page: Option<&str>,
    keys: &Keys,
) -> anyhow::Result<Vec<Answer>> {
    let m = verified.manifest();
    let mut answers = Vec::new();
    // One mirror per archy release event the relays hold (one, unless a relay held it already).
    let mut groups: Vec<(&Event, Vec<&RelayConnection>)> = Vec::new();
    for relay in connections {
        match relay.query(nip82::release_filter(&keys.public_key(), m.id.as_str(), &m.version)).await {
            Err(e) => {
                answers.push(Answer { relay: relay.url(), what: "NIP-82 mirror", id: String::new(), result: Err(e) });
                continue;
            }
            Ok(found) if !found.is_empty() => {
                let id = found[0].id.to_hex();
                answers.push(Answer { relay: relay.url(), what: "NIP-82 release (already held)", id, result: Ok(()) });
                continue;
            }
            Ok(_) => {}
        }
        let archy = held.iter().find(|(url, _)| *url == relay.url()).map_or(posted, |(_, event)| event);
        match groups.iter_mut().find(|(event, _)| event.id == archy.id) {
            Some((_, group)) => group.push(relay),
            None => groups.push((archy, vec![relay])),
        }
    }
    for (archy, group) in groups {
        // The application event replaces the one an earlier publish posted: date it after that
        // one, or a relay keeps the older (NIP-01 addressable events).
        let mut newest = None;
        for relay in &group {
            if let Ok(at) = relays::newest_at(relay, keys, KIND_APPLICATION, m.id.as_str()).await {
                newest = newest.max(at.map(|at| (at, relay.url())));
            }
        }
        if let Some((at, url)) = newest
            && let Err(e) = relays::wait_until_after(at, &url).await
        {
            answers.extend(group.iter().map(|relay| failed(relay, "NIP-82 mirror", format!("{e:#}"))));
            continue;
        }
        let mut mirror = Mirror::new(verified, archy).relay_hint(group[0].url());
        for image in images {
            mirror = mirror.image(image.clone());
        }
        if let Some(page) = page {
            mirror = mirror.page(page);
        }
        let events = mirror.sign(keys)?;
        for relay in group {
            for (what, event) in events.in_order() {
                let answer = relays::post(relay, label(what), event).await;
                let refused = answer.result.is_err();
                answers.push(answer);
                // A release naming assets the relay refused would point at nothing.
                if refused {
                    break;
                }
            }
        }
    }
    Ok(answers)
}

/// Asks every relay holding the mirrored release of `version` to delete it and its assets
/// (NIP-09). The application event stays: the app's other versions are still listed.
pub(super) async fn revoke(
    connections: &[RelayConnection],
    app: &AppId,
    version: &semver::Version,
    reason: &str,
    keys: &Keys,
) -> anyhow::Result<Vec<Answer>> {
    let mut answers = Vec::new();
    for relay in connections {
        let found = match relay.query(nip82::release_filter(&keys.public_key(), app.as_str(), version)).await {
            Ok(found) => found,
            Err(e) => {
                answers.push(Answer { relay: relay.url(), what: "NIP-82 deletion", id: String::new(), result: Err(e) });
                continue;
            }
        };
        for release in found {
            let deletion = nip82::deletion_request(&release, reason, keys)?;
            answers.push(relays::post(relay, "NIP-82 deletion", &deletion).await);
        }
    }
    Ok(answers)
}

/// The human lines for the mirror's answers, and a warning on stderr for each relay that did
/// not take part of it.
pub(super) fn report(answers: &[Answer]) -> String {
    for a in answers.iter().filter(|a| a.result.is_err()) {
        eprintln!("warning: {}: {} not taken: {} (nodes never read the NIP-82 mirror)", a.relay, a.what, a.text());
    }
    if answers.is_empty() {
        return String::new();
    }
    format!("NIP-82 mirror for app-store clients:\n{}\n", relays::lines(answers))
}
