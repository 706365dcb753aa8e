//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `archy`: publish signed apps and operate an archy origin repository.
#[derive(Parser, Debug)]
#[command(name = "archy", version, about)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and show publisher keys.
    Key(crate::commands::key::KeyArgs),
    /// Write FILE.minisig, a signature the stock `minisign -V` accepts.
    Sign(crate::commands::sign::SignArgs),
    /// Scaffold, validate and render app manifests.
    App(crate::commands::app::AppArgs),
    /// Build and sign an origin repository on disk.
    Repo(crate::commands::repo::RepoArgs),
    /// Show the publisher's DID and Nostr key, and bind them on Nostr relays.
    Identity(crate::commands::identity::IdentityArgs),
    /// Sign an app and submit it to an origin registry, or announce it on Nostr relays.
    Publish(crate::commands::publish::PublishArgs),
    /// Follow, endorse or report a publisher on Nostr: the inputs of nodes' trust scores.
    Trust(crate::commands::trust::TrustArgs),
}

/// `--key PATH`, shared by commands that sign.
#[derive(Args, Debug, Clone)]
pub struct KeyPath {
    /// Publisher key file [default: $ARCHY_KEY or ~/.config/archy/publisher.key].
    #[arg(long = "key", value_name = "PATH")]
    pub key: Option<PathBuf>,
}

impl KeyPath {
    /// The chosen path or the default one.
    pub fn path(&self) -> PathBuf {
        self.key.clone().unwrap_or_else(crate::paths::default_key_path)
    }

    /// Reads the key, with a hint when it does not exist yet.
    pub fn load(&self) -> anyhow::Result<catalog::keys::SigningKey> {
        let path = self.path();
        if !path.exists() {
            return Err(crate::output::user_error(format!(
                "no key at {}; create one with `archy key new`",
                path.display()
            )));
        }
        Ok(catalog::keyfile::read(&path)?)
    }
}

/// `--nostr-key PATH`, shared by commands that post to Nostr relays.
#[derive(Args, Debug, Clone)]
pub struct NostrKeyPath {
    /// Nostr key file, created (0600) on first use [default: $ARCHY_NOSTR_KEY or
    /// ~/.config/archy/nostr.key].
    #[arg(long = "nostr-key", value_name = "PATH")]
    pub nostr_key: Option<PathBuf>,
}

impl NostrKeyPath {
    /// The chosen path or the default one.
    pub fn path(&self) -> PathBuf {
        self.nostr_key.clone().unwrap_or_else(crate::paths::default_nostr_key_path)
    }

    /// Reads the Nostr key, creating it on first use; `true` when it was created now.
    pub fn load_or_create(&self) -> anyhow::Result<(archy_nostr::nostr_sdk::Keys, bool)> {
        Ok(crate::nostr_key::load_or_create(&self.path())?)
    }
}
