//! The origin's state: its configuration, online keys, write lock and the metadata it serves
//! from memory, and the timestamp schedule.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use catalog::keys::SigningKey;
use catalog::metadata::{Delegations, SignedMetadata, Snapshot, Targets};
use catalog::repo::{Expiry, Repository};
use chrono::{DateTime, Utc};

use super::hosted::{BlobQuota, HostedIndex};
use super::metrics::Metrics;
use archy_net::{MetaSource, PeerAddr};

/// How the origin runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The repository folder (`repository/`, `keys/`), as `archy repo init` made it.
    pub data: PathBuf,
    /// HTTP listen address.
    pub http: SocketAddr,
    /// iroh listen address (`None`: no iroh endpoint).
    pub iroh: Option<SocketAddr>,
    /// Lifetime of each timestamp it signs.
    pub timestamp_lifetime: chrono::TimeDelta,
    /// How often it checks whether the timestamp needs re-signing.
    pub resign_check: Duration,
    /// Largest accepted submission body.
    pub max_submission: u64,
    /// Most submissions read at once; one more is answered 429 (`busy`).
    pub max_concurrent_submissions: usize,
    /// Most bytes the files of the submissions in progress may take under
    /// `<data>/registry/incoming/`, reserved at each file's signed length before any of it is
    /// read; a file beyond is answered 507 (`incoming_full`).
    pub max_incoming: u64,
    /// What `/v1/blobs` keeps: per DID, in total, for how long.
    pub blobs: BlobQuota,
    /// Listen address of the embedded Nostr relay (`None`: no relay). Its events persist in
    /// `<data>/relay/`.
    pub relay: Option<SocketAddr>,
    /// Base URL that `POST /v1/blobs` answers name (`None`: `http://` and the request's `Host`).
    pub public_url: Option<String>,
    /// Where the marketplace finds Nostr apps and whom it trusts to rank them.
    pub market: super::market_nostr::NostrMarketConfig,
}

impl Config {
    /// Defaults for a repository folder: HTTP on 127.0.0.1:8480, iroh on 127.0.0.1:0, daily
    /// timestamps checked every minute, 1 GiB submissions, 4 at once, 2 GiB of them in progress,
    /// and the default [`BlobQuota`].
    pub fn new(data: PathBuf) -> Self {
        Self {
            data,
            http: SocketAddr::from(([127, 0, 0, 1], 8480)),
            iroh: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            timestamp_lifetime: Expiry::default().timestamp,
            resign_check: Duration::from_secs(60),
            max_submission: 1 << 30,
            max_concurrent_submissions: 4,
            max_incoming: 2 << 30,
            blobs: BlobQuota::default(),
            relay: None,
            public_url: None,
            market: super::market_nostr::NostrMarketConfig::default(),
        }
    }
}

/// Metadata files kept in memory for serving (they are small; targets are streamed from disk).
#[derive(Default, Debug)]
pub(crate) struct MetaCache {
    /// The files of `metadata/`, by name.
    pub(crate) files: HashMap<String, Bytes>,
    /// Version of the served timestamp (0: none).
    pub(crate) timestamp_version: u64,
    /// Version of the snapshot the served timestamp names (0: none).
    pub(crate) snapshot_version: u64,
    /// When the served timestamp expires.
    pub(crate) timestamp_expires: Option<DateTime<Utc>>,
    /// The publisher roles as the served metadata delegates them.
    pub(crate) roles: Arc<Roles>,
}

/// The delegations of the served top-level targets and the role versions of the served snapshot:
/// what a submission is checked against before any of its files is read.
#[derive(Default, Debug)]
pub(crate) struct Roles {
    /// The top-level targets' delegations (`None`: no publisher yet).
    pub(crate) delegations: Option<Delegations>,
    /// `<role>.json` → version, from the snapshot.
    pub(crate) versions: HashMap<String, u64>,
}

impl Roles {
    /// Reads the served snapshot `<snapshot_version>.snapshot.json` and the top-level targets it
    /// names, from the files of `metadata/`.
    fn of(files: &HashMap<String, Bytes>, snapshot_version: u64) -> anyhow::Result<Self> {
        let Some(bytes) = files.get(&format!("{snapshot_version}.snapshot.json")) else {
            return Ok(Self::default());
        };
        let snapshot = SignedMetadata::<Snapshot>::from_slice(bytes, "snapshot")?;
        let versions: HashMap<String, u64> =
            snapshot.signed.meta.iter().map(|(name, meta)| (name.clone(), meta.version)).collect();
        let delegations = match versions.get("targets.json").and_then(|v| files.get(&format!("{v}.targets.json"))) {
            Some(bytes) => SignedMetadata::<Targets>::from_slice(bytes, "targets")?.signed.delegations,
            None => None,
        };
        Ok(Self { delegations, versions })
    }
}

/// The [`MetaCache`] shared by HTTP handlers and the iroh metadata protocol.
#[derive(Debug)]
pub(crate) struct Cache(pub(crate) RwLock<MetaCache>);

impl MetaSource for Cache {
    fn meta(&self, name: &str) -> Option<Bytes> {
        self.0.read().ok()?.files.get(name).cloned()
    }
}

/// The origin's shared state.
pub struct Registry {
    pub(crate) config: Config,
    pub(crate) repo_dir: PathBuf,
    pub(crate) timestamp_key: SigningKey,
    pub(crate) snapshot_key: SigningKey,
    /// The transparency log's key (`keys/log.key`), when the root names a log.
    pub(crate) log_key: Option<SigningKey>,
    /// Serialises every change to the repository on disk.
    pub(crate) write_lock: Mutex<()>,
    pub(crate) cache: Arc<Cache>,
    pub(crate) metrics: Arc<Metrics>,
    /// The swarms of this catalog the origin is a member of (kept alive with it).
    pub(crate) swarms: Vec<archy_net::Swarm>,
    pub(crate) blobs: Option<iroh_blobs::store::fs::FsStore>,
    /// Metadata files already in the blob store, by name.
    pub(crate) in_blobs: tokio::sync::Mutex<HashSet<String>>,
    /// The target files already in the blob store.
    pub(crate) targets_in_blobs: tokio::sync::Mutex<archy_net::FolderBlobs>,
    /// The iroh address of this origin, once its endpoint is bound (for blob tickets).
    pub(crate) iroh_addr: Option<PeerAddr>,
    /// One permit per submission being read ([`Config::max_concurrent_submissions`]).
    pub(crate) submission_slots: Arc<tokio::sync::Semaphore>,
    /// Bytes reserved under `registry/incoming/` by the submissions in progress.
    pub(crate) incoming_reserved: Arc<AtomicU64>,
    /// The envelopes hosted at `/v1/blobs`.
    pub(crate) hosted: Mutex<HostedIndex>,
    /// The marketplace's verified index of the catalog, rebuilt when the timestamp changes.
    pub(crate) market: Mutex<Option<Arc<super::market::Market>>>,
    /// Held while the marketplace's index is built (one build at a time).
    pub(crate) market_build: tokio::sync::Mutex<()>,
    /// The marketplace's Nostr apps, as the relays offered them at the last read.
    pub(crate) nostr_market: RwLock<Option<Arc<super::market_nostr::NostrMarket>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("repo_dir", &self.repo_dir).finish_non_exhaustive()
    }
}

impl Registry {
    /// Opens the repository folder and its online keys.
    pub fn open(mut config: Config) -> anyhow::Result<Self> {
        config.data = std::path::absolute(&config.data)?;
        let repo_dir = config.data.join("repository");
        let keys = config.data.join("keys");
        let read_key = |name: &str| {
            let path = keys.join(format!("{name}.key"));
            catalog::keyfile::read(&path).with_context(|| format!("the {name} key (online key of the origin)"))
        };
        let mut hosted = HostedIndex::load(&super::blobs::envelope_dir(&config.data))
            .context("reading the hosted envelopes (registry/envelopes/)")?;
        hosted.expire(&config.blobs, std::time::SystemTime::now(), &mut Vec::new())?;
        let registry = Self {
            submission_slots: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_submissions.max(1))),
            incoming_reserved: Arc::new(AtomicU64::new(0)),
            hosted: Mutex::new(hosted),
            market: Mutex::new(None),
            market_build: tokio::sync::Mutex::new(()),
            nostr_market: RwLock::new(None),
            timestamp_key: read_key("timestamp")?,
            snapshot_key: read_key("snapshot")?,
            log_key: if keys.join("log.key").exists() { Some(read_key("log")?) } else { None },
            repo_dir,
            write_lock: Mutex::new(()),
            cache: Arc::new(Cache(RwLock::new(MetaCache::default()))),
            metrics: Arc::default(),
            swarms: Vec::new(),
            blobs: None,
            in_blobs: Default::default(),
            targets_in_blobs: Default::default(),
            iroh_addr: None,
            config,
        };
        let repo = registry.load_repo()?;
        // Refuse to start with keys that can't sign this repository's timestamp.
        if !catalog::client::role_has_key(
            repo.root(),
            "timestamp",
            &catalog::keys::PublicKey::ed25519(&registry.timestamp_key.verifying_key()),
        ) {
            return Err(anyhow::Error::new(WrongOnlineKey));
        }
        // A root that names a log needs its key: every timestamp signed goes into the log.
        if let Some(log) = repo.root().log()? {
            match &registry.log_key {
                Some(k) if k.verifying_key() == *log.public() => {}
                Some(_) => anyhow::bail!("keys/log.key is not the key of the log `{}` the root names", log.name()),
                None => anyhow::bail!("the root names the transparency log `{}`: keys/log.key is missing", log.name()),
            }
        }
        registry.reload_cache()?;
        Ok(registry)
    }

    fn expiry(&self) -> Expiry {
        Expiry { timestamp: self.config.timestamp_lifetime, ..Expiry::default() }
    }

    /// Loads and verifies the repository on disk.
    pub(crate) fn load_repo(&self) -> anyhow::Result<Repository> {
        let mut repo = Repository::load(&self.repo_dir, self.expiry())
            .with_context(|| format!("loading the repository at {}", self.repo_dir.display()))?;
        if let Some(key) = &self.log_key {
            repo.set_log_key(key.clone());
        } else if repo.root().log()?.is_some() {
            // `archy repo add-log` started a log while this registry runs: its key is read now
            // (`write_dir` still refuses a key that is not the one the root names).
            let path = self.config.data.join("keys/log.key");
            repo.set_log_key(catalog::keyfile::read(&path).with_context(|| {
                format!("the root now names a transparency log: its key {} is needed", path.display())
            })?);
        }
        Ok(repo)
    }

    /// Re-reads every metadata file from disk into the serving cache.
    pub(crate) fn reload_cache(&self) -> anyhow::Result<()> {
        let meta_dir = self.repo_dir.join("metadata");
        let mut files = HashMap::new();
        for entry in std::fs::read_dir(&meta_dir).with_context(|| format!("reading {}", meta_dir.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if archy_net::valid_meta_name(&name) {
                files.insert(name, Bytes::from(std::fs::read(entry.path())?));
            }
        }
        let ts = files
            .get("timestamp.json")
            .map(|b| SignedMetadata::<catalog::metadata::Timestamp>::from_slice(b, "timestamp"))
            .transpose()?;
        let snapshot_version = ts.as_ref().map_or(0, |t| t.signed.snapshot_meta().version);
        let roles = Arc::new(Roles::of(&files, snapshot_version).context("reading the served delegations")?);
        let mut cache = self.cache.0.write().map_err(|_| anyhow::anyhow!("cache lock poisoned"))?;
        cache.timestamp_version = ts.as_ref().map_or(0, |t| t.signed.version);
        cache.snapshot_version = snapshot_version;
        cache.roles = roles;
        cache.timestamp_expires = ts.as_ref().map(|t| t.signed.expires);
        cache.files = files;
        Ok(())
    }

    /// A metadata file as served, by name.
    pub(crate) fn cached(&self, name: &str) -> Option<Bytes> {
        self.cache.meta(name)
    }

    /// Re-signs the timestamp when less than half of its lifetime is left (or it changed on disk
    /// behind our back, e.g. an operator ran `archy repo timestamp`): nodes must never see a
    /// frozen catalog (TUF 1.0 §5.4.4 makes them refuse an expired timestamp).
    pub fn resign_if_due(&self, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let _guard = self.write_lock.lock().map_err(|_| anyhow::anyhow!("write lock poisoned"))?;
        let _writers = catalog::repo::lock_writers(&self.repo_dir)?;
        self.reload_cache()?;
        let expires = self.cache.0.read().map_err(|_| anyhow::anyhow!("cache lock poisoned"))?.timestamp_expires;
        // Due when half of the lifetime is gone, or when the served timestamp outlives the
        // configured lifetime (the operator shortened it).
        let lifetime = self.config.timestamp_lifetime;
        let due = match expires {
            Some(e) => e - now < lifetime / 2 || e - now > lifetime + chrono::TimeDelta::seconds(1),
            None => true,
        };
        if !due {
            return Ok(false);
        }
        let mut repo = self.load_repo()?;
        repo.refresh_timestamp(&self.timestamp_key, now)?;
        repo.write_dir(&self.repo_dir)?;
        self.reload_cache()?;
        self.metrics.timestamp_resigns.fetch_add(1, Ordering::Relaxed);
        tracing::info!(version = repo.timestamp().version, expires = %repo.timestamp().expires, "timestamp re-signed");
        Ok(true)
    }
}

/// `keys/timestamp.key` is not a timestamp key of the repository's root: the origin could not
/// sign a timestamp that nodes accept.
#[derive(Debug, thiserror::Error)]
#[error("keys/timestamp.key is not the timestamp key of this repository's root")]
pub(crate) struct WrongOnlineKey;
