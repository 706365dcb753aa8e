//! The node's configuration, `<data>/config.toml`.
//!
//! ```toml
//! [origin]
//! url = "http://127.0.0.1:8480"          # HTTP base of the origin (TUF layout under it)
//! iroh = "<endpoint id>@127.0.0.1:4919"  # and/or the origin's iroh endpoint
//!
//! [[peers]]
//! iroh = "<endpoint id>@10.0.0.7:4919"   # other nodes (untrusted mirrors)
//!
//! [sync]
//! interval_secs = 300   # `archy-node run` syncs this often, and on demand
//! timeout_secs = 10     # a provider silent this long is given up on
//!
//! [swarm]
//! announce_secs = 30    # `run` tells its catalog's swarm what it holds this often (and on change)
//!
//! [log]                 # the origin's transparency log, when its root names one
//! witnesses = ["w1+0a1b2c3d+BM…"]   # witnesses' verifier keys (another node's: its `status`)
//! min_witnesses = 0     # how many of them must cosign before anything is installed
//!
//! [serve]
//! iroh = "127.0.0.1:0"   # where `run` serves its verified files to other nodes
//! api = "127.0.0.1:7780" # the local HTTP API of `run` (bearer token in <data>/api.token),
//!                        # or "unix:/run/archy-node/api.sock" (a 0600 socket: no token)
//!
//! [nostr]
//! relays = ["wss://relay.example.org"]   # read by `sync`, subscribed to by `run`
//! timeout_secs = 10                       # a relay silent this long is given up on
//! serve_relay = "127.0.0.1:7447"          # `run` also runs the embedded relay here (events in <data>/relay/)
//!
//! [nostr.limits]           # how much the node holds from Nostr; the least trusted goes first
//! labels = 100000          # archy labels
//! bound_keys = 20000       # Nostr keys with a DID binding
//! held_back = 1000         # releases of publishers the policy does not admit (no envelope fetched)
//! follow_list_mib = 64     # follow lists
//! events_per_relay = 50000 # from one relay per full read, and per hour live
//!
//! [trust]
//! seeds = ["npub1…"]   # the operator's trusted Nostr keys (the origin's publishers are added)
//!
//! [nostr_policy]      # who may be installed from Nostr (apps outside the origin catalog)
//! min_score = 1.0     # lowest trust score, 0–100
//! allow = ["did:key:z6Mk…", "npub1…"]   # installable whatever their score
//! deny = ["did:key:z6Mk…", "npub1…"]    # never installable (checked first)
//! ```

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use archy_net::PeerAddr;
use serde::{Deserialize, Serialize};

/// Where the origin is.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// HTTP base URL (`/metadata/…`, `/targets/…` under it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The origin's iroh endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iroh: Option<PeerAddr>,
}

/// Another node.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Its iroh endpoint.
    pub iroh: PeerAddr,
}

/// Sync timing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Sync {
    /// Seconds between syncs in `archy-node run`.
    pub interval_secs: u64,
    /// Seconds a provider may stay silent before it is given up on.
    pub timeout_secs: u64,
}

impl Default for Sync {
    fn default() -> Self {
        Self { interval_secs: 300, timeout_secs: 10 }
    }
}

/// The origin's transparency log (`[log]`), when the root names one.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Witnesses named by the operator: C2SP verifier keys `<name>+<id>+<base64(0x04 ‖ key)>`
    /// (another node's is printed by its `archy-node status`).
    pub witnesses: Vec<String>,
    /// How many of `witnesses` must have cosigned the kept checkpoint before the node installs
    /// from the catalog (0: a single node works alone).
    pub min_witnesses: usize,
}

/// The node in its catalog's swarm (`[swarm]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SwarmSettings {
    /// Seconds between announcements of what the node holds (it also announces on change).
    pub announce_secs: u64,
}

impl Default for SwarmSettings {
    fn default() -> Self {
        Self { announce_secs: 30 }
    }
}

/// What `archy-node run` listens on.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Serve {
    /// iroh endpoint for other nodes (blobs and metadata).
    pub iroh: SocketAddr,
    /// Local HTTP API.
    pub api: ApiAddr,
}

impl Default for Serve {
    fn default() -> Self {
        Self {
            iroh: SocketAddr::from(([127, 0, 0, 1], 0)),
            api: ApiAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 7780))),
        }
    }
}

/// Where the local API listens: a TCP address (callers send the token of `<data>/api.token`) or
/// `unix:<path>`, a Unix socket whose 0600 permissions are the authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiAddr {
    /// `ip:port`.
    Tcp(SocketAddr),
    /// `unix:<path>`.
    Unix(std::path::PathBuf),
}

impl std::fmt::Display for ApiAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(addr) => addr.fmt(f),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl std::str::FromStr for ApiAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("unix:") {
            Some("") => Err("`unix:` needs a socket path, e.g. unix:/run/archy-node/api.sock".into()),
            Some(path) => Ok(Self::Unix(path.into())),
            None => s.parse().map(Self::Tcp).map_err(|e| format!("`{s}` is neither ip:port nor unix:<path>: {e}")),
        }
    }
}

impl Serialize for ApiAddr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ApiAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The Nostr relays the node reads (`[nostr]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Nostr {
    /// Relay URLs (`ws://` or `wss://`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relays: Vec<String>,
    /// Seconds a relay (or an envelope location) may stay silent before it is given up on.
    pub timeout_secs: u64,
    /// Where `archy-node run` serves the embedded relay, if anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serve_relay: Option<SocketAddr>,
    /// How much the node holds from Nostr.
    #[serde(skip_serializing_if = "NostrLimits::is_default")]
    pub limits: NostrLimits,
}

impl Default for Nostr {
    fn default() -> Self {
        Self { relays: Vec::new(), timeout_secs: 10, serve_relay: None, limits: NostrLimits::default() }
    }
}

/// How much the node holds from Nostr (`[nostr.limits]`). Over a cap, the data of the
/// least-trusted keys goes first (`docs/nostr.md`, "What the node spends on strangers").
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct NostrLimits {
    /// `archy` labels held (one per labelled key).
    pub labels: usize,
    /// Nostr keys with a verified DID binding held.
    pub bound_keys: usize,
    /// Releases of publishers the install policy does not admit, held as events only (their
    /// envelopes are not fetched).
    pub held_back: usize,
    /// Follow lists held, in MiB of event JSON.
    pub follow_list_mib: usize,
    /// Events one relay may hand over in one full read, and in one hour of live subscription.
    pub events_per_relay: usize,
}

impl Default for NostrLimits {
    fn default() -> Self {
        Self { labels: 100_000, bound_keys: 20_000, held_back: 1_000, follow_list_mib: 64, events_per_relay: 50_000 }
    }
}

impl NostrLimits {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Follow lists held, in bytes.
    pub fn follow_list_bytes(&self) -> usize {
        self.follow_list_mib.saturating_mul(1024 * 1024)
    }
}

/// The operator's trust seeds (`[trust]`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Trust {
    /// Trusted Nostr keys, `npub1…` (or 64 hex digits).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<String>,
}

/// The install policy for apps found on Nostr (`[nostr_policy]`), applied in order: `deny`,
/// then `allow` (which bypasses `min_score`), then `min_score`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NostrPolicy {
    /// The lowest trust score (0–100) a publisher needs.
    pub min_score: f64,
    /// Publishers (`did:key:…` or `npub1…`) installable whatever their score.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Publishers (`did:key:…` or `npub1…`) never installable.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// [`NostrPolicy::min_score`] when the config does not set it.
pub const DEFAULT_MIN_SCORE: f64 = 1.0;

impl Default for NostrPolicy {
    fn default() -> Self {
        Self { min_score: DEFAULT_MIN_SCORE, allow: Vec::new(), deny: Vec::new() }
    }
}

/// `<data>/config.toml`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Config {
    /// The origin.
    #[serde(default)]
    pub origin: Origin,
    /// Known peers.
    #[serde(default)]
    pub peers: Vec<Peer>,
    /// Sync timing.
    #[serde(default)]
    pub sync: Sync,
    /// Listening addresses of `run`.
    #[serde(default)]
    pub serve: Serve,
    /// The swarm.
    #[serde(default)]
    pub swarm: SwarmSettings,
    /// The transparency log's witnesses.
    #[serde(default)]
    pub log: LogSettings,
    /// Nostr relays.
    #[serde(default)]
    pub nostr: Nostr,
    /// Trust seeds.
    #[serde(default)]
    pub trust: Trust,
    /// Install policy for apps found on Nostr.
    #[serde(default)]
    pub nostr_policy: NostrPolicy,
    /// Settings of other parts of the node (kept as written).
    #[serde(flatten)]
    pub other: toml::Table,
}

impl Config {
    /// Reads the config file at `path` (defaults when it does not exist).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("{}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes it to `path` atomically.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = toml::to_string_pretty(self)?;
        catalog::repo::write_atomic(path, text.as_bytes())?;
        Ok(())
    }

    /// The timeout of one provider (at least a second).
    pub fn provider_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.sync.timeout_secs.max(1))
    }
}

/// Edits the config file at `path` in place, keeping everything `edit` does not touch (comments
/// and layout included): the edited file must still be a valid configuration (for the sync side,
/// and for whatever else reads it: `check`), else nothing is written. Written atomically; one
/// edit at a time in this process.
pub fn edit_file(
    path: &Path,
    edit: impl FnOnce(&mut toml_edit::DocumentMut) -> anyhow::Result<()>,
    check: impl FnOnce(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // A symlinked file is the operator's arrangement: it is not replaced by a copy.
    let mode = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            anyhow::bail!("{} is a symbolic link; edit the file it points to by hand", path.display())
        }
        Ok(m) => Some(std::os::unix::fs::PermissionsExt::mode(&m.permissions())),
        Err(_) => None,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut doc: toml_edit::DocumentMut = text.parse().with_context(|| format!("{}", path.display()))?;
    edit(&mut doc)?;
    let out = doc.to_string();
    toml::from_str::<Config>(&out).with_context(|| format!("{} as edited", path.display()))?;
    check(&out).with_context(|| format!("{} as edited", path.display()))?;
    catalog::repo::write_atomic(path, out.as_bytes())?;
    // The file keeps the permissions it had.
    if let Some(mode) = mode {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    }
    Ok(())
}

/// A client endpoint for fetching, bound on the address family the node serves on (loopback
/// when it serves on loopback), under a key made for this use.
pub async fn client_endpoint(config: &Config) -> anyhow::Result<iroh::Endpoint> {
    let bind = SocketAddr::new(config.serve.iroh.ip(), 0);
    archy_net::bind_endpoint(iroh::SecretKey::generate(), bind).await
}
