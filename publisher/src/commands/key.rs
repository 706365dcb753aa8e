//! `archy key new|show|rotate|revoke|publish`: the publisher's Ed25519 key, its did:key, TUF key
//! id and minisign key, and the statements that carry a publisher over a key change:
//!
//! - `rotate` makes a new key and a succession statement signed by the old and the new key;
//! - `revoke --prepare` writes a revocation of the current key, signed by it, to keep offline for
//!   the day the key is lost or stolen; `revoke` without `--prepare` posts it now;
//! - `publish FILE` posts a statement file (needs no publisher key: the statement is signed).
//!
//! Statements are posted to Nostr relays as archy key events (docs/nostr.md); the origin's side of
//! a rotation is `archy repo rotate-publisher`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use archy_nostr::event::key_statement_event;
use catalog::keylife::{Revocation, Statement, Succession};
use catalog::keys::SigningKey;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::cli::{KeyPath, NostrKeyPath};
use crate::output::{Output, user_error};
use crate::relays;

/// `archy key`.
#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    action: KeyAction,
}

/// `--relay URL`, repeatable.
#[derive(Args, Debug, Clone)]
struct RelayArgs {
    /// A relay to post to (ws://… or wss://…); repeat for several.
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
}

/// The publisher key a statement is signed with, and where and with which Nostr key it is posted.
#[derive(Args, Debug, Clone)]
struct Signer {
    #[command(flatten)]
    key: KeyPath,
    #[command(flatten)]
    nostr_key: NostrKeyPath,
    #[command(flatten)]
    relays: RelayArgs,
}

#[derive(Subcommand, Debug)]
enum KeyAction {
    /// Generate a new key (written 0600; never overwrites).
    New(KeyPath),
    /// Show the identity of a key.
    Show(KeyPath),
    /// Replace the key with a new one and sign a succession statement with both; the old key is
    /// kept beside it as `<key>.retired-<key id>` (0600; delete it once the origin has rotated your
    /// role: whoever holds it could sign a revocation of it). With --relay, the statement and the
    /// new DID's binding to your Nostr key are posted.
    Rotate(Signer),
    /// Revoke the key with a statement signed by it: nodes then refuse everything it signs and
    /// every key it names as successor by rotation. Prepare it now (--prepare) and keep it
    /// offline: once the key is lost you can no longer sign it.
    Revoke {
        #[command(flatten)]
        signer: Signer,
        /// Write the statement without posting it.
        #[arg(long)]
        prepare: bool,
        /// Where to write it [default: statements/revocation-<time>.json beside the key].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The did:key that continues your apps (a backup key you keep apart).
        #[arg(long, value_name = "DID")]
        successor: Option<String>,
        /// Why (printable text, at most 256 bytes).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Post a statement file (a prepared revocation, a succession) to Nostr relays.
    Publish {
        /// The statement file.
        file: PathBuf,
        #[command(flatten)]
        nostr_key: NostrKeyPath,
        #[command(flatten)]
        relays: RelayArgs,
    },
}

/// Runs `archy key`.
pub fn run(args: KeyArgs, out: &Output) -> anyhow::Result<ExitCode> {
    match args.action {
        KeyAction::New(kp) => {
            let path = kp.path();
            let key = SigningKey::generate();
            catalog::keyfile::write_new(&path, &key)?;
            show(&key, &path, true, out);
        }
        KeyAction::Show(kp) => show(&kp.load()?, &kp.path(), false, out),
        KeyAction::Rotate(Signer { key, nostr_key, relays }) => rotate(&key, &nostr_key, &relays.relays, out)?,
        KeyAction::Revoke { signer: Signer { key, nostr_key, relays }, prepare, out: file, successor, reason } => {
            if !prepare && relays.relays.is_empty() {
                return Err(user_error("name at least one relay with --relay ws://…, or write it with --prepare"));
            }
            let signing = key.load()?;
            let successor = successor
                .map(|s| s.parse::<catalog::DidKey>().map_err(|e| user_error(format!("--successor: {e}"))))
                .transpose()?;
            let statement = Statement::Revocation(Revocation::sign(&signing, successor, &reason, chrono::Utc::now())?);
            let path = file.unwrap_or_else(|| statement_path(&key.path(), "revocation"));
            // Whoever holds this file can revoke the key: it is kept like a secret.
            catalog::keyfile::write_secret_new(&path, &statement.to_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            if prepare {
                out.print(
                    format!(
                        "revocation of {} written to {} (0600)\nkeep it offline; on the day the key is lost or \
                         stolen, post it with `archy key publish {} --relay …`",
                        signing.did(),
                        path.display(),
                        path.display()
                    ),
                    &json!({"did": signing.did().to_string(), "statement": path, "posted": false}),
                );
            } else {
                publish(&statement, &path, &nostr_key, &relays.relays, out)?;
            }
        }
        KeyAction::Publish { file, nostr_key, relays } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let statement =
                Statement::from_slice(&bytes).map_err(|e| user_error(format!("{}: {e}", file.display())))?;
            statement.verify().map_err(|e| user_error(format!("{}: {e}", file.display())))?;
            publish(&statement, &file, &nostr_key, &relays.relays, out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(key: &SigningKey, path: &Path, created: bool, out: &Output) {
    let did = key.did().to_string();
    let keyid = key.key_id();
    let minisign = catalog::minisign::public_key_base64(key);
    let verb = if created { "created" } else { "key" };
    let human = format!("{verb}: {}\ndid: {did}\ntuf keyid: {keyid}\nminisign public key: {minisign}", path.display());
    out.print(
        human,
        &json!({"path": path, "did": did, "keyid": keyid, "minisign_public_key": minisign, "created": created}),
    );
}

/// `<key dir>/statements/<kind>-<UTC time>.json`.
fn statement_path(key: &Path, kind: &str) -> PathBuf {
    let dir = key.parent().unwrap_or(Path::new(".")).join("statements");
    dir.join(format!("{kind}-{}.json", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")))
}

/// Makes the new key, signs the succession, posts it (with --relay), then swaps the key files.
/// The new key is written first (`<key>.new`, 0600) and the old one moved aside last, so a
/// rotation interrupted anywhere (a relay down included) leaves the old key in place and is resumed
/// with the same new key.
fn rotate(key: &KeyPath, nostr_key: &NostrKeyPath, relay_urls: &[String], out: &Output) -> anyhow::Result<()> {
    let path = key.path();
    let old = key.load()?;
    let pending = PathBuf::from(format!("{}.new", path.display()));
    let new = if pending.exists() {
        catalog::keyfile::read(&pending)?
    } else {
        let new = SigningKey::generate();
        catalog::keyfile::write_new(&pending, &new)?;
        new
    };
    let now = chrono::Utc::now();
    let statement = Statement::Succession(Succession::sign(&old, &new, now)?);
    let statement_file = statement_path(&path, "succession");
    catalog::repo::write_atomic(&statement_file, &statement.to_bytes())?;
    let posted = if relay_urls.is_empty() { None } else { Some(post(&statement, nostr_key, relay_urls, Some(&new))?) };
    // The old key gets a second name first, then the new key replaces it in one rename: at no
    // moment is there no key at `path`.
    // Named by the old key's id: a resumed rotation finds its link already there.
    let retired = PathBuf::from(format!("{}.retired-{}", path.display(), &old.key_id()[..16]));
    if !(retired.exists() && catalog::keyfile::read(&retired).is_ok_and(|k| k.did() == old.did())) {
        std::fs::hard_link(&path, &retired).with_context(|| format!("keeping the old key as {}", retired.display()))?;
    }
    std::fs::rename(&pending, &path).with_context(|| format!("moving the new key to {}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))?;
    }
    let (posted_text, posted_json) = match posted {
        Some((text, json)) => (format!("\n{text}"), json),
        None => (
            format!("\nnot posted: `archy key publish {} --relay …` posts it", statement_file.display()),
            serde_json::Value::Null,
        ),
    };
    out.print(
        format!(
            "new key: {} ({})\nold key kept at {} ({})\nsuccession statement: {}\non the origin: archy repo \
             rotate-publisher ORIGIN --name <your role> --did {}{posted_text}",
            path.display(),
            new.did(),
            retired.display(),
            old.did(),
            statement_file.display(),
            new.did()
        ),
        &json!({"did": new.did().to_string(), "old_did": old.did().to_string(), "key": path,
                "retired_key": retired, "statement": statement_file, "posted": posted_json}),
    );
    Ok(())
}

fn publish(
    statement: &Statement,
    file: &Path,
    nostr_key: &NostrKeyPath,
    relay_urls: &[String],
    out: &Output,
) -> anyhow::Result<()> {
    let (text, posted) = post(statement, nostr_key, relay_urls, None)?;
    out.print(
        format!("{} of {} ({})\n{text}", statement.kind(), statement.subject(), file.display()),
        &json!({"statement": file, "kind": statement.kind(), "did": statement.subject().to_string(), "posted": posted}),
    );
    Ok(())
}

/// Posts `statement` (and, for a rotation, the new key's binding to the Nostr key, so the
/// publisher's releases keep coming from the same Nostr key) to every relay; what to print.
fn post(
    statement: &Statement,
    nostr_key: &NostrKeyPath,
    relay_urls: &[String],
    bind: Option<&SigningKey>,
) -> anyhow::Result<(String, serde_json::Value)> {
    let (keys, _) = nostr_key.load_or_create()?;
    let event = key_statement_event(statement, &keys)?;
    let binding = bind.map(|k| archy_nostr::event::binding_event(k, &keys)).transpose()?;
    let answers = relays::runtime()?.block_on(relays::with_relays(relay_urls, async |connections| {
        let mut answers = Vec::new();
        for relay in connections {
            answers.push(relays::post(relay, "key statement", &event).await);
            if let Some(binding) = &binding {
                answers.push(relays::post(relay, "binding", binding).await);
            }
        }
        Ok(answers)
    }))?;
    relays::check(&answers)?;
    Ok((
        format!("posted: event {}\n{}", event.id.to_hex(), relays::lines(&answers)),
        json!({"event": event.id.to_hex(), "relays": answers.iter().map(relays::Answer::json).collect::<Vec<_>>()}),
    ))
}
