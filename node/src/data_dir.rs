//! The node's data directory and where each thing lives in it.
//!
//! ```text
//! <data>/config.toml        the node's configuration (crate::config::Config)
//! <data>/trust/root.json    the pinned trust root (`archy-node init`)
//! <data>/catalog/           verified catalog generations (crate::catalog)
//! <data>/files/<blake3>     verified target files (crate::files::FileStore)
//! <data>/evidence/          equivocation evidence
//! <data>/status.json        the last sync round's report
//! <data>/sync.lock          held during a sync round
//! <data>/node.json          what a running `archy-node run` listens on
//! <data>/api.token          the local API's bearer token (0600)
//! <data>/iroh.key           the node's iroh endpoint key (0600)
//! <data>/iroh-blobs/        the iroh-blobs store serving `files/` (and ranges of files arriving) to other nodes
//! <data>/swarm/providers.json  the swarm's provider table, as `run` last saw it
//! <data>/nostr/             Nostr events, status and lock (the `nostr` module)
//! <data>/nostr.key          the node's Nostr key (0600)
//! <data>/relay/             events of the embedded relay, when `run` serves one
//! <data>/orchestrator/      desired state, secrets and node id of installed apps
//! ```
//!
//! The folder is chosen once, at the top (`--data`, `$ARCHY_NODE_DATA`, XDG), and passed down as
//! this typed value: no module below builds a path from a string of its own.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::Config;
use crate::files::FileStore;

/// A node's data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `--data` when given, else `$ARCHY_NODE_DATA`, else `$XDG_DATA_HOME/archy-node`, else
    /// `~/.local/share/archy-node`.
    pub fn from_arg_or_env(arg: Option<PathBuf>) -> Self {
        Self::new(arg.unwrap_or_else(default_root))
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// Reads `config.toml` (defaults when it does not exist).
    pub fn config(&self) -> anyhow::Result<Config> {
        Config::load(&self.config_file())
    }

    /// `trust/`, where the pinned root lives.
    pub fn trust_dir(&self) -> PathBuf {
        self.root.join("trust")
    }

    /// `trust/root.json`, the pinned trust root.
    pub fn trust_root(&self) -> PathBuf {
        self.trust_dir().join("root.json")
    }

    /// `catalog/`, the verified catalog generations.
    pub fn catalog_dir(&self) -> PathBuf {
        self.root.join("catalog")
    }

    /// The content-addressed store of verified files, `files/`.
    pub fn files(&self) -> FileStore {
        FileStore::new(self.root.join("files"))
    }

    /// `evidence/`, equivocation evidence.
    pub fn evidence_dir(&self) -> PathBuf {
        self.root.join("evidence")
    }

    /// The origin's transparency log as this node knows it: `checkpoint` (the newest verified
    /// signed checkpoint), `leaves` (a copy of the log's leaf hashes, for answering peers),
    /// `pending` (a larger checkpoint seen on gossip, to be proven) and `split-view.json` (a proof
    /// of a split view, while the origin is refused).
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }

    /// `status.json`, the last sync round's report.
    pub fn sync_status(&self) -> PathBuf {
        self.root.join("status.json")
    }

    /// `sync.lock`, held during a sync round.
    pub fn sync_lock(&self) -> PathBuf {
        self.root.join("sync.lock")
    }

    /// `node.json`, what a running node listens on.
    pub fn node_info(&self) -> PathBuf {
        self.root.join("node.json")
    }

    /// `api.token`, the local API's bearer token.
    pub fn api_token(&self) -> PathBuf {
        self.root.join("api.token")
    }

    /// `iroh.key`, the node's endpoint key.
    pub fn iroh_key(&self) -> PathBuf {
        self.root.join("iroh.key")
    }

    /// `iroh-blobs/`, the blob store that serves `files/`.
    pub fn iroh_blobs(&self) -> PathBuf {
        self.root.join("iroh-blobs")
    }

    /// `swarm/providers.json`, the swarm's provider table as the running node last saw it
    /// (read by one-shot commands).
    pub fn swarm_table(&self) -> PathBuf {
        self.root.join("swarm").join("providers.json")
    }

    /// `nostr/`, the node's Nostr state.
    pub fn nostr_dir(&self) -> PathBuf {
        self.root.join("nostr")
    }

    /// `nostr.key`, the node's Nostr key.
    pub fn nostr_key(&self) -> PathBuf {
        self.root.join("nostr.key")
    }

    /// `relay/`, the embedded relay's events.
    pub fn relay_dir(&self) -> PathBuf {
        self.root.join("relay")
    }

    /// `orchestrator/`, the state of installed apps.
    pub fn orchestrator_dir(&self) -> PathBuf {
        self.root.join("orchestrator")
    }
}

impl std::fmt::Display for DataDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.root.display().fmt(f)
    }
}

fn default_root() -> PathBuf {
    if let Some(d) = std::env::var_os("ARCHY_NODE_DATA") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("archy-node");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/archy-node")
}

/// Creates a private file (a key, a token) with [`catalog::keyfile::write_secret_new`]: 0600
/// from creation, whole or not at all, never overwriting. `Ok(false)` when the file exists
/// already (another process made it first): read that one instead.
pub fn create_private(path: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
    match catalog::keyfile::write_secret_new(path, bytes) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// Reads a private file made by [`create_private`], refusing one that other users can read
/// (the error names the fix, never the contents).
pub fn read_private(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.permissions().mode();
    if mode & 0o077 != 0 {
        anyhow::bail!("{} is readable by other users (mode {:o}); run `chmod 600` on it", path.display(), mode & 0o777);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
