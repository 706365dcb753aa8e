//! The Nostr parts of `archy-node`'s commands: `apps --source`, `trust`, and the Nostr lines of
//! `sync`. Text for people by default, `--json` for scripts.

use std::process::ExitCode;

use archy_nostr::event::bech32_npub;
use archy_nostr::nostr_sdk::PublicKey;
use catalog::trust::Explanation;
use serde::Serialize;

use crate::catalog::NodeCatalog;
use crate::data_dir::DataDir;
use crate::nostr::policy::{self, format_score};
use crate::nostr::read::ReadReport;
use crate::nostr::trust::npub_of;
use crate::nostr::view::NostrView;
use crate::sources::Source;

/// `archy-node apps [--source all|origin|nostr] [--json]`.
pub(super) fn apps(data: &DataDir, source: Source, json: bool) -> anyhow::Result<ExitCode> {
    let origin = match source {
        Source::Nostr => None,
        // Only the origin asked for: no catalog is an error, as it always was.
        Source::Origin => Some(Ok(NodeCatalog::open(data)?.apps())),
        Source::All => Some(NodeCatalog::open(data).map(|c| c.apps())),
    };
    let nostr = match source {
        Source::Origin => None,
        Source::Nostr | Source::All => Some(NostrView::load(data, &data.config()?)?.apps()),
    };
    if json {
        let mut out: Vec<serde_json::Value> = Vec::new();
        if let Some(Ok(apps)) = &origin {
            out.extend(apps.iter().map(|a| serde_json::to_value(a).unwrap_or_default()));
        }
        for a in nostr.iter().flatten() {
            out.push(serde_json::to_value(a)?);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(origin) = &origin {
        println!("Origin catalog");
        match origin {
            Ok(apps) if apps.is_empty() => println!("  (no apps)"),
            Ok(apps) => {
                println!("{:<20} {:<12} {:<10} {:<30} PUBLISHER", "APP", "VERSION", "FROM", "TITLE");
                for a in apps {
                    // A peer is shown by the first characters of its endpoint id.
                    let from: String = a.source.chars().take(10).collect();
                    let revoked = if a.revoked.is_some() { "  REVOKED: not installable" } else { "" };
                    println!(
                        "{:<20} {:<12} {:<10} {:<30} {}{revoked}",
                        a.id,
                        a.version.to_string(),
                        from,
                        a.title,
                        a.publisher
                    );
                }
            }
            Err(e) => println!("  none: {e:#}"),
        }
    }
    if let Some(nostr) = &nostr {
        if origin.is_some() {
            println!();
        }
        println!("Nostr (verified announcements; scores from your trust seeds)");
        if nostr.is_empty() {
            println!("  (no apps; configure relays with `archy-node init --relay ws://…` and run `archy-node sync`)");
        } else {
            println!("{:<20} {:<12} {:>7}  {:<30} PUBLISHER / NPUB", "APP", "VERSION", "SCORE", "TITLE");
            for a in nostr {
                println!(
                    "{:<20} {:<12} {:>7}  {:<30} {}",
                    a.id,
                    a.version.to_string(),
                    format_score(a.score),
                    a.title,
                    a.publisher
                );
                println!("{:<74}{}", "", a.npub);
                if let Some(why) = &a.held_back {
                    println!("{:<20} held back: {why}", "");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One key's explanation, in JSON.
#[derive(Debug, Serialize)]
struct KeyJson {
    npub: String,
    score: f64,
    seed: Option<String>,
    paths: Vec<PathJson>,
    endorsers: Vec<(String, f64)>,
    reporters: Vec<(String, f64)>,
}

#[derive(Debug, Serialize)]
struct PathJson {
    keys: Vec<String>,
    contribution: f64,
}

/// `archy-node trust --json` output.
#[derive(Debug, Serialize)]
struct TrustJson {
    subject: String,
    did: Option<String>,
    score: f64,
    policy: String,
    keys: Vec<KeyJson>,
    seeds: Vec<(String, String)>,
    /// The DID's standing under the publisher key statements (and the origin's record of it).
    key_standing: Option<String>,
}

fn key_json(view: &NostrView, key: &PublicKey, max_paths: usize) -> KeyJson {
    let trust = view.trust();
    let explanation: Option<Explanation> = trust.explain(key, max_paths);
    let pairs = |v: &[(catalog::trust::PublicKey, f64)]| v.iter().map(|(k, s)| (npub_of(k), *s)).collect();
    KeyJson {
        npub: bech32_npub(key),
        score: trust.score_of(key),
        seed: trust.seed_reason(key).map(ToString::to_string),
        paths: explanation
            .as_ref()
            .map(|e| {
                e.paths
                    .iter()
                    .map(|p| PathJson { keys: p.keys.iter().map(npub_of).collect(), contribution: p.contribution })
                    .collect()
            })
            .unwrap_or_default(),
        endorsers: explanation.as_ref().map(|e| pairs(&e.endorsers)).unwrap_or_default(),
        reporters: explanation.as_ref().map(|e| pairs(&e.reporters)).unwrap_or_default(),
    }
}

/// `archy-node trust <did|npub> [--paths N] [--json]`: the score and why.
pub(super) fn explain(data: &DataDir, subject: &str, max_paths: usize, json: bool) -> anyhow::Result<ExitCode> {
    let view = NostrView::load(data, &data.config()?)?;
    let (did, keys) = view.subject_keys(subject)?;
    let keys_json: Vec<KeyJson> = keys.iter().map(|k| key_json(&view, k, max_paths)).collect();
    let score = keys_json.iter().map(|k| k.score).fold(0.0, f64::max);
    let policy = match &did {
        Some(did) => match view.check_policy(did) {
            Ok(policy::Admitted::Allowed) => "installable: on nostr_policy.allow".to_owned(),
            Ok(policy::Admitted::Score) => "installable: the score reaches nostr_policy.min_score".to_owned(),
            Err(refusal) => refusal.to_string(),
        },
        None => match view.state().discovery().dids_of(&keys[0]).as_slice() {
            [] => "not bound to any publisher DID".to_owned(),
            dids => format!("bound to {}", dids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
        },
    };
    let seeds = view.trust().seeds().iter().map(|s| (bech32_npub(&s.key), s.reason.to_string())).collect();
    let key_standing = did.as_ref().map(|did| {
        let origin = crate::catalog::NodeCatalog::open(data)
            .map(|c| c.state().publisher_keys.clone())
            .unwrap_or_default()
            .into_iter()
            .find(|k| k.dids.contains(&did.to_string()))
            .map(|k| format!("; on the origin: {}", k.describe()))
            .unwrap_or_default();
        let standing = view.state().discovery().lineage().standing(did);
        format!("{}{origin}", crate::key_standing::standing_text(&standing))
    });
    let out = TrustJson {
        subject: subject.to_owned(),
        did: did.as_ref().map(ToString::to_string),
        score,
        policy,
        keys: keys_json,
        seeds,
        key_standing,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render(&out));
    Ok(ExitCode::SUCCESS)
}

fn render(t: &TrustJson) -> String {
    let mut s = String::new();
    let mut line = |text: String| {
        s.push_str(&text);
        s.push('\n');
    };
    match &t.did {
        Some(did) if t.keys.is_empty() => {
            line(format!("publisher {did}: score 0.0"));
            line("  no verified binding ties a Nostr key to this DID, so no trust can reach it".into());
        }
        Some(did) => line(format!(
            "publisher {did}: score {} (the best of {} bound Nostr key{})",
            format_score(t.score),
            t.keys.len(),
            if t.keys.len() == 1 { "" } else { "s" }
        )),
        None => {}
    }
    if let Some(standing) = &t.key_standing {
        line(format!("  key: {standing}"));
    }
    line(format!("  install policy: {}", t.policy));
    if t.seeds.is_empty() {
        line(
            "  no trust seeds: add your keys with `archy-node init --trust npub1…`, or sync an origin catalog whose \
             publishers are bound on Nostr"
                .into(),
        );
    }
    for k in &t.keys {
        let seed = k.seed.as_ref().map(|r| format!(" — a seed ({r})")).unwrap_or_default();
        line(format!("{}: score {}{seed}", k.npub, format_score(k.score)));
        if k.paths.is_empty() && k.seed.is_none() {
            line("  no trusted key follows or endorses it".into());
        } else if !k.paths.is_empty() {
            line("  strongest paths from your seeds (each arrow: follows or endorses):".into());
            for p in &k.paths {
                let hops: Vec<String> = p
                    .keys
                    .iter()
                    .map(|n| match t.seeds.iter().find(|(s, _)| s == n) {
                        Some((_, why)) => format!("{n} ({why})"),
                        None => n.clone(),
                    })
                    .collect();
                line(format!("    +{:<8} {}", format_score(p.contribution), hops.join(" -> ")));
            }
        }
        let people = |v: &[(String, f64)]| {
            v.iter().map(|(n, sc)| format!("{n} (score {})", format_score(*sc))).collect::<Vec<_>>().join(", ")
        };
        if !k.endorsers.is_empty() {
            line(format!("  endorsed by: {}", people(&k.endorsers)));
        }
        if !k.reporters.is_empty() {
            line(format!("  reported by: {}", people(&k.reporters)));
        }
    }
    s
}

/// `archy-node trust --publish`.
pub(super) async fn publish(data: &DataDir, json: bool) -> anyhow::Result<ExitCode> {
    let report = crate::nostr::publish::publish_assertions(data, &data.config()?).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{} trust assertions (NIP-85) signed by {}", report.assertions, report.signer);
        for (url, result) in &report.relays {
            match result {
                Ok(n) => println!("  {url}: {n} stored"),
                Err(e) => println!("  {url}: failed: {e}"),
            }
        }
    }
    let failed = report.relays.iter().all(|(_, r)| r.is_err());
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The Nostr lines of `archy-node sync`'s text output.
pub(super) fn sync_lines(report: &ReadReport) -> Vec<String> {
    let mut out = Vec::new();
    let accepted: u64 = report.counts.accepted.values().sum();
    out.push(format!(
        "nostr: {} relays read; {} events accepted, {} dropped; holding {} releases ({} more held back), {} bindings, {} revocations, {} follow lists, {} labels",
        report.relays.iter().filter(|r| r.error.is_none()).count(),
        accepted,
        report.counts.dropped_total(),
        report.held.releases,
        report.held.held_back,
        report.held.bindings,
        report.held.revocations,
        report.held.follow_lists,
        report.held.labels,
    ));
    for r in &report.relays {
        if let Some(e) = &r.error {
            out.push(format!("  - relay {}: {e}", r.url));
        }
    }
    for (reason, n) in &report.counts.dropped {
        out.push(format!("  - dropped {n} × {reason}"));
    }
    out
}
