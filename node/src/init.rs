//! `archy-node init`: pin the trust root and write the node's config.
//!
//! The root is checked before anything is written: it must parse as TUF root metadata and carry
//! a threshold of signatures by its own root keys (TUF 1.0 §5.2, the bootstrap root is trusted
//! out of band but must still be self-consistent), and, when `--minisig` is given, the minisign
//! signature by the given public key must verify over its exact bytes.

use std::path::Path;

use anyhow::{Context as _, bail};
use catalog::metadata::{Root, SignedMetadata};

use crate::config::{Config, Origin, Peer};
use crate::data_dir::DataDir;

/// What `init` was given.
pub struct InitArgs<'a> {
    /// Data dir.
    pub data: &'a DataDir,
    /// The root.json to trust.
    pub root: &'a Path,
    /// Its minisign signature.
    pub minisig: Option<&'a Path>,
    /// The minisign public key (base64 or a .pub file).
    pub minisign_key: Option<&'a str>,
    /// Origin HTTP URL.
    pub origin: Option<String>,
    /// Origin iroh address.
    pub origin_iroh: Option<String>,
    /// Peers' iroh addresses.
    pub peers: Vec<String>,
    /// Replace an existing root.
    pub force: bool,
    /// Nostr relays, trust seeds and install policy to add.
    pub nostr: NostrArgs,
}

/// The Nostr settings `init` adds to the config (nothing by default).
#[derive(Debug, Clone, Default)]
pub struct NostrArgs {
    /// Nostr relays to add (`ws://` or `wss://`).
    pub relays: Vec<String>,
    /// Trusted Nostr keys to add to `[trust] seeds`.
    pub trust: Vec<String>,
    /// `[nostr_policy] min_score`.
    pub min_score: Option<f64>,
    /// Publishers to add to `[nostr_policy] allow`.
    pub allow: Vec<String>,
    /// Publishers to add to `[nostr_policy] deny`.
    pub deny: Vec<String>,
    /// `[nostr] serve_relay`: where `run` serves the embedded relay.
    pub serve_relay: Option<std::net::SocketAddr>,
}

fn push_new(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Adds the Nostr settings of `args` to `config`, each checked first.
fn nostr_settings(args: &NostrArgs, config: &mut Config) -> anyhow::Result<()> {
    for url in &args.relays {
        crate::nostr::relay::check_url(url).context("--relay")?;
        push_new(&mut config.nostr.relays, url.trim_end_matches('/').to_owned());
    }
    for key in &args.trust {
        let key = crate::nostr::trust::parse_npub(key).context("--trust")?;
        push_new(&mut config.trust.seeds, archy_nostr::event::bech32_npub(&key));
    }
    if let Some(addr) = args.serve_relay {
        config.nostr.serve_relay = Some(addr);
    }
    if let Some(score) = args.min_score {
        if !(0.0..=100.0).contains(&score) {
            bail!("--min-score {score}: a trust score is between 0 and 100");
        }
        config.nostr_policy.min_score = score;
    }
    for (flag, entries, list) in [
        ("--allow", &args.allow, &mut config.nostr_policy.allow),
        ("--deny", &args.deny, &mut config.nostr_policy.deny),
    ] {
        for entry in entries {
            let ok = if entry.starts_with("did:") {
                entry.parse::<catalog::DidKey>().is_ok()
            } else {
                crate::nostr::trust::parse_npub(entry).is_ok()
            };
            if !ok {
                bail!("{flag} {entry}: name a publisher by its did:key or an npub1… key");
            }
            push_new(list, entry.trim().to_owned());
        }
    }
    Ok(())
}

fn minisign_public_key(arg: &str) -> anyhow::Result<String> {
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        // A minisign .pub file: an "untrusted comment:" line, then the base64 key.
        let key = text
            .lines()
            .find(|l| !l.trim().is_empty() && !l.starts_with("untrusted comment:"))
            .with_context(|| format!("{}: no public key line", path.display()))?;
        return Ok(key.trim().to_owned());
    }
    Ok(arg.trim().to_owned())
}

/// Runs `init`; returns a summary line.
pub fn init(args: &InitArgs<'_>) -> anyhow::Result<String> {
    let bytes = std::fs::read(args.root).with_context(|| format!("reading {}", args.root.display()))?;
    if let Some(sig) = args.minisig {
        let key = minisign_public_key(args.minisign_key.context("--minisig needs --minisign-key")?)?;
        let text = std::fs::read_to_string(sig).with_context(|| format!("reading {}", sig.display()))?;
        catalog::minisign::verify(&key, &text, &bytes)
            .with_context(|| format!("{}: minisign signature does not verify", sig.display()))?;
    }
    let root =
        SignedMetadata::<Root>::from_slice(&bytes, "root").with_context(|| format!("{}", args.root.display()))?;
    let role = root.signed.role("root").context("root.json has no root role")?;
    root.verify_role("root", &root.signed.keys, &role.keyids, role.threshold)
        .with_context(|| format!("{}: not signed by a threshold of its own root keys", args.root.display()))?;

    let trust = args.data.trust_root();
    if trust.exists() && !args.force {
        let existing = std::fs::read(&trust)?;
        if existing != bytes {
            bail!("{} already pins another root; pass --force to replace it", trust.display());
        }
    }
    let mut config = args.data.config()?;
    if args.origin.is_some() || args.origin_iroh.is_some() {
        config.origin = Origin {
            url: args.origin.clone(),
            iroh: args.origin_iroh.as_deref().map(str::parse).transpose().context("--origin-iroh")?,
        };
    }
    for p in &args.peers {
        let peer = Peer { iroh: p.parse().with_context(|| format!("--peer {p}"))? };
        if !config.peers.contains(&peer) {
            config.peers.push(peer);
        }
    }
    nostr_settings(&args.nostr, &mut config)?;
    if config.origin.url.is_none() && config.origin.iroh.is_none() {
        bail!("name the origin with --origin URL and/or --origin-iroh ID@ADDR");
    }
    std::fs::create_dir_all(args.data.trust_dir())?;
    if args.force && trust.exists() {
        // A new root replaces the pinned one and the catalog verified under the old one.
        let _ = std::fs::remove_file(args.data.catalog_dir().join("current"));
    }
    catalog::repo::write_atomic(&trust, &bytes)?;
    config.save(&args.data.config_file())?;
    Ok(format!(
        "trusting root v{} ({} root keys, threshold {}); origin {}; {} peers; {} Nostr relays, {} trust seeds; config {}",
        root.signed.version,
        role.keyids.len(),
        role.threshold,
        [config.origin.url.clone(), config.origin.iroh.as_ref().map(ToString::to_string)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" + "),
        config.peers.len(),
        config.nostr.relays.len(),
        config.trust.seeds.len(),
        args.data.config_file().display()
    ))
}
