//! `archy key new|show`: the publisher's Ed25519 key, its did:key, TUF key id and minisign key.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::cli::KeyPath;
use crate::output::Output;

/// `archy key`.
#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    action: KeyAction,
}

#[derive(Subcommand, Debug)]
enum KeyAction {
    /// Generate a new key (written 0600; never overwrites).
    New(KeyPath),
    /// Show the identity of a key.
    Show(KeyPath),
}

/// Runs `archy key`.
pub fn run(args: KeyArgs, out: &Output) -> anyhow::Result<ExitCode> {
    let (key, path, created) = match args.action {
        KeyAction::New(kp) => {
            let path = kp.path();
            let key = catalog::keys::SigningKey::generate();
            catalog::keyfile::write_new(&path, &key)?;
            (key, path, true)
        }
        KeyAction::Show(kp) => (kp.load()?, kp.path(), false),
    };
    let did = key.did().to_string();
    let keyid = key.key_id();
    let minisign = catalog::minisign::public_key_base64(&key);
    let verb = if created { "created" } else { "key" };
    let human = format!("{verb}: {}\ndid: {did}\ntuf keyid: {keyid}\nminisign public key: {minisign}", path.display());
    out.print(
        human,
        &json!({"path": path, "did": did, "keyid": keyid, "minisign_public_key": minisign, "created": created}),
    );
    Ok(ExitCode::SUCCESS)
}
