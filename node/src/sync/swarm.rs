//! The node in its catalog's swarm: who to ask for a file's bytes, in which order, and what each
//! provider sent (docs/protocol.md, "The swarm").
//!
//! A [`Fetcher`] fetches a file named by the verified catalog (its BLAKE3 and length are signed):
//! - **peers first**: those that announced the file, then those trusting the same catalog version
//!   (for manifest envelopes, which every holder of that catalog has), then `[[peers]]`;
//! - **the origin last**: its HTTP, then its iroh endpoint.
//!
//! A file larger than [`RANGES_FROM`] is fetched in verified ranges from several providers at
//! once ([`archy_net::fetch_ranges`]) into the node's iroh-blobs store, which serves the ranges
//! it has to other nodes while it arrives; smaller files come whole from one provider at a time.
//! A provider that sends bytes that do not verify, can't serve what it announced, or does not
//! answer is dropped and reported to the swarm's table ([`archy_net::swarm::Offence`]).
//!
//! `archy-node run` keeps one fetcher with its gossip membership and its store; one-shot commands
//! (`fetch`, `install`, `update`) make their own from the provider table the running node keeps
//! at `<data>/swarm/providers.json`, with a store in memory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use archy_net::swarm::{Offence, ProviderTable};
use archy_net::{PeerAddr, Provider, Swarm};
use iroh::{Endpoint, EndpointId};
use serde::{Deserialize, Serialize};

use crate::catalog::CatalogFile;
use crate::config::Config;
use crate::data_dir::DataDir;
use crate::sync::{FetchProgress, ProviderFailure, ProviderFailureKind, Refusal};

/// Files larger than this come in ranges from several providers at once.
pub const RANGES_FROM: u64 = 2 * archy_net::ranges::PIECE;
/// Files up to this length are not fsynced one by one (see [`fetch_file`]).
pub const SMALL_FILE: u64 = 64 << 10;
/// Most peers tried, one after another, for a small file before the origin.
const PEERS_PER_SMALL_FILE: usize = 3;

/// Bytes received, by provider kind and provider.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Received {
    /// From the origin (HTTP or iroh).
    pub from_origin: u64,
    /// From other nodes.
    pub from_peers: u64,
    /// By provider: `origin` or a peer's endpoint id.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub by_provider: std::collections::BTreeMap<String, u64>,
}

impl Received {
    /// Adds `bytes` from `provider` (`None`: the origin).
    pub fn add(&mut self, provider: Option<&EndpointId>, bytes: u64) {
        match provider {
            Some(id) => {
                self.from_peers += bytes;
                *self.by_provider.entry(id.to_string()).or_default() += bytes;
            }
            None => {
                self.from_origin += bytes;
                *self.by_provider.entry("origin".into()).or_default() += bytes;
            }
        }
    }

    /// Adds `other` to this.
    pub fn merge(&mut self, other: &Self) {
        self.from_origin += other.from_origin;
        self.from_peers += other.from_peers;
        for (k, v) in &other.by_provider {
            *self.by_provider.entry(k.clone()).or_default() += v;
        }
    }
}

/// Where the fetches of one process get their providers and keep partial files.
#[derive(Clone, Debug)]
pub struct Fetcher {
    endpoint: Endpoint,
    store: iroh_blobs::api::Store,
    /// The running node's swarm; `None` for a one-shot command.
    swarm: Option<Swarm>,
    /// A one-shot command's copy of the running node's table.
    table: Arc<Mutex<ProviderTable>>,
    /// Everything received through this fetcher since it was made.
    total: Arc<Mutex<Received>>,
    /// The blob store of a one-shot command, kept alive with it.
    _mem: Option<Arc<iroh_blobs::store::mem::MemStore>>,
    /// Open iroh-blobs connections, by provider: many small files take one connection each.
    conns: Arc<Mutex<HashMap<EndpointId, iroh::endpoint::Connection>>>,
}

/// The fetchers of running nodes in this process, by data folder.
static RUNNING: RwLock<Option<HashMap<PathBuf, Fetcher>>> = RwLock::new(None);

impl Fetcher {
    /// The running node's fetcher: its endpoint, store and swarm. Registered for `data`, so that
    /// fetches in the same process (the orchestrator's) use it.
    pub fn for_daemon(data: &DataDir, endpoint: Endpoint, store: iroh_blobs::api::Store, swarm: Swarm) -> Self {
        let fetcher = Self {
            endpoint,
            store,
            swarm: Some(swarm),
            table: Arc::default(),
            total: Arc::default(),
            _mem: None,
            conns: Arc::default(),
        };
        let mut running = RUNNING.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        running.get_or_insert_with(HashMap::new).insert(data.root().to_owned(), fetcher.clone());
        fetcher
    }

    /// Forgets the running node's fetcher of `data` (it stopped).
    pub fn unregister(data: &DataDir) {
        let mut running = RUNNING.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(map) = running.as_mut() {
            map.remove(data.root());
        }
    }

    /// The running node's fetcher for `data` in this process, or a one-shot one: a fresh endpoint,
    /// a store in memory, and the provider table the running node keeps on disk.
    pub async fn for_data(data: &DataDir, config: &Config) -> anyhow::Result<Self> {
        let root = std::path::absolute(data.root()).unwrap_or_else(|_| data.root().to_owned());
        if let Some(f) =
            RUNNING.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().and_then(|m| m.get(&root))
        {
            return Ok(f.clone());
        }
        let endpoint = crate::config::client_endpoint(config).await?;
        let mem = Arc::new(iroh_blobs::store::mem::MemStore::new());
        let table = ProviderTable::load(&data.swarm_table(), std::time::SystemTime::now());
        Ok(Self {
            endpoint,
            store: (*mem).clone().into(),
            swarm: None,
            table: Arc::new(Mutex::new(table)),
            total: Arc::default(),
            _mem: Some(mem),
            conns: Arc::default(),
        })
    }

    /// An open iroh-blobs connection to `provider` (kept for the next file).
    async fn connection(
        &self,
        provider: &PeerAddr,
        stall: std::time::Duration,
    ) -> Result<iroh::endpoint::Connection, archy_net::BlobError> {
        let cached = self.conns.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&provider.id).cloned();
        if let Some(c) = cached
            && c.close_reason().is_none()
        {
            return Ok(c);
        }
        let c = archy_net::blobs::connect(&self.endpoint, provider, stall).await?;
        self.conns.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(provider.id, c.clone());
        Ok(c)
    }

    /// One whole file from one provider over a kept connection (dropped from the cache when the
    /// fetch fails).
    async fn fetch_whole(
        &self,
        provider: &PeerAddr,
        hash: blake3::Hash,
        length: u64,
        dest: &Path,
        stall: std::time::Duration,
        progress: impl FnMut(u64) + Send,
    ) -> Result<(), archy_net::BlobError> {
        let connection = self.connection(provider, stall).await?;
        let sync = length > SMALL_FILE;
        let result = archy_net::fetch_blob_over(&connection, hash, length, dest, stall, sync, progress).await;
        if result.is_err() {
            self.conns.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&provider.id);
            connection.close(0u32.into(), b"dropped");
        }
        result
    }

    /// A running node serves a large file it fetched whole at once (its blob store references
    /// it in place) and announces it; the rest of `files/` is added after each round.
    async fn serve_fetched(&self, path: &Path, hash: blake3::Hash, length: u64) {
        let Some(swarm) = &self.swarm else { return };
        if length <= SMALL_FILE {
            return;
        }
        let added = self
            .store
            .blobs()
            .add_path_with_opts(iroh_blobs::api::blobs::AddPathOptions {
                path: path.to_owned(),
                format: iroh_blobs::BlobFormat::Raw,
                mode: iroh_blobs::api::blobs::ImportMode::TryReference,
            })
            .with_tag()
            .await;
        match added {
            Ok(_) => swarm.hold(hash, true),
            Err(e) => tracing::warn!(file = %path.display(), "blob store: {e}"),
        }
    }

    /// The endpoint fetches go out from.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The swarm, for a running node.
    pub fn swarm(&self) -> Option<&Swarm> {
        self.swarm.as_ref()
    }

    /// Everything received through this fetcher so far.
    pub fn total(&self) -> Received {
        self.total.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Peers that may have `hash`, best first, then the configured `[[peers]]`; never the origin.
    pub fn peers_for(&self, config: &Config, hash: &blake3::Hash, catalog_version: Option<u64>) -> Vec<PeerAddr> {
        let mut out = match &self.swarm {
            Some(swarm) => swarm.providers(hash, catalog_version),
            None => {
                self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).providers(hash, catalog_version)
            }
        };
        let banned = |id: &EndpointId| match &self.swarm {
            Some(s) => s.with_table(|t| t.is_banned(id)),
            None => self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_banned(id),
        };
        for p in &config.peers {
            if !out.iter().any(|o| o.id == p.iroh.id) && !banned(&p.iroh.id) {
                out.push(p.iroh.clone());
            }
        }
        let origin = config.origin.iroh.as_ref().map(|o| o.id);
        out.retain(|p| Some(p.id) != origin && p.id != self.endpoint.id());
        out
    }

    /// Up to `n` swarm peers to ask for metadata when the origin is unreachable: the highest
    /// catalog version they announce first, never a banned one.
    pub fn metadata_peers(&self, n: usize) -> Vec<PeerAddr> {
        let pick = |t: &ProviderTable| {
            let mut peers: Vec<_> = t.peers().filter(|p| !t.is_banned(&p.id) && !p.addrs.is_empty()).collect();
            peers.sort_by_key(|p| std::cmp::Reverse(p.catalog_version));
            peers.into_iter().take(n).map(|p| PeerAddr { id: p.id, addr: p.addrs[0] }).collect::<Vec<_>>()
        };
        match &self.swarm {
            Some(s) => s.with_table(|t| pick(t)),
            None => pick(&self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)),
        }
    }

    /// Up to `n` peers, not banned, that announce catalog `version`: they serve its snapshot and
    /// roles (`crate::catalog::GenerationMeta`).
    pub fn metadata_peers_at(&self, version: u64, n: usize) -> Vec<PeerAddr> {
        let pick = |t: &ProviderTable| {
            t.peers()
                .filter(|p| p.catalog_version == version && !t.is_banned(&p.id) && !p.addrs.is_empty())
                .take(n)
                .map(|p| PeerAddr { id: p.id, addr: p.addrs[0] })
                .collect::<Vec<_>>()
        };
        match &self.swarm {
            Some(s) => s.with_table(|t| pick(t)),
            None => pick(&self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)),
        }
    }

    /// Whether `id` is banned.
    pub fn is_banned(&self, id: &EndpointId) -> bool {
        match &self.swarm {
            Some(s) => s.with_table(|t| t.is_banned(id)),
            None => self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_banned(id),
        }
    }

    /// Whether any peer trusts catalog `version` (and so holds its envelopes).
    pub fn peers_at(&self, version: u64) -> bool {
        let has = |t: &ProviderTable| t.peers().any(|p| p.catalog_version == version);
        match &self.swarm {
            Some(s) => s.with_table(|t| has(t)),
            None => has(&self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)),
        }
    }

    fn claims_complete(&self, id: &EndpointId, hash: &blake3::Hash) -> bool {
        match &self.swarm {
            Some(s) => s.with_table(|t| t.claims_complete(id, hash)),
            None => self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).claims_complete(id, hash),
        }
    }

    pub(crate) fn penalize(&self, id: EndpointId, offence: Offence, detail: &str) {
        match &self.swarm {
            Some(s) => s.penalize(id, offence, detail),
            None => self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).penalize(
                id,
                offence,
                detail,
                std::time::SystemTime::now(),
            ),
        }
    }

    /// Adds bytes received outside [`fetch_file`] (a round's metadata) to [`Fetcher::total`].
    pub fn count(&self, received: &Received) {
        self.total.lock().unwrap_or_else(std::sync::PoisonError::into_inner).merge(received);
    }
}

/// A fetched file and where its bytes came from.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Where it is stored (`<data>/files/<blake3>`).
    pub path: PathBuf,
    /// Bytes received for it (0 when it was already stored).
    pub received: Received,
    /// Providers dropped on the way.
    pub failures: Vec<ProviderFailure>,
    /// What the origin sent and was refused, with the rule (TUF 1.0 §5.7.3).
    pub refusals: Vec<Refusal>,
}

/// What a fetch of a target answers (`POST /v1/fetch`, `archy-node fetch`).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FetchAnswer {
    /// Where the verified file is stored.
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// What each provider kind sent (nothing when it was already stored).
    #[schema(value_type = Object)]
    pub received: Received,
}

/// A fetch no provider completed: why, and every provider dropped on the way.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FetchFailed {
    /// What happened, naming every provider tried.
    pub message: String,
    /// The providers dropped, with why.
    pub failures: Vec<ProviderFailure>,
    /// What the origin sent and was refused, with the rule.
    pub refusals: Vec<Refusal>,
}

impl FetchFailed {
    fn local(e: impl std::fmt::Display) -> Self {
        Self { message: e.to_string(), failures: Vec::new(), refusals: Vec::new() }
    }
}

fn failure(provider: &PeerAddr, file: &CatalogFile, kind: ProviderFailureKind, detail: String) -> ProviderFailure {
    ProviderFailure { provider: provider.to_string(), file: file.path.clone(), kind, detail }
}

/// Fetches `file` (named by the verified catalog of version `catalog_version`) into
/// `<data>/files/`, peers first and the origin last (see the module docs). `first` is asked
/// before anyone else (the peer whose catalog a round took).
///
/// A file of at most [`SMALL_FILE`] bytes (a manifest) is not fsynced on its own: a round
/// fetches thousands and makes `files/` durable once at the end (`FileStore::sync_dir`); one a
/// crash damages is re-hashed on its next read, removed and fetched again.
pub async fn fetch_file(
    data: &DataDir,
    config: &Config,
    fetcher: &Fetcher,
    file: &CatalogFile,
    catalog_version: Option<u64>,
    first: Option<&PeerAddr>,
    progress: Arc<dyn FetchProgress>,
) -> Result<Fetched, FetchFailed> {
    let files = data.files();
    if files.contains(&file.blake3) {
        return Ok(Fetched { path: files.path(&file.blake3), ..Fetched::default() });
    }
    let hash: blake3::Hash = file.blake3.parse().map_err(|_| FetchFailed::local("bad BLAKE3 in the catalog"))?;
    let mut peers = fetcher.peers_for(config, &hash, catalog_version);
    if let Some(first) = first {
        peers.retain(|p| p.id != first.id);
        peers.insert(0, first.clone());
    }
    let mut out = Fetched::default();
    let mut errors = Vec::new();
    let tmp = files.part_path(&file.blake3, "part").map_err(FetchFailed::local)?;
    if file.length > RANGES_FROM {
        match fetch_in_ranges(config, fetcher, file, hash, &peers, &tmp, &progress, &mut out).await {
            Ok(()) => {
                out.path = files.commit_part(&tmp, &file.blake3).map_err(FetchFailed::local)?;
                if let Some(s) = fetcher.swarm() {
                    s.hold(hash, true);
                }
                fetcher.count(&out.received);
                progress.finish(true);
                return Ok(out);
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    } else {
        let timeout = config.provider_timeout();
        for provider in peers.iter().take(PEERS_PER_SMALL_FILE) {
            progress.start(&file.path, file.length);
            let p = progress.clone();
            match fetcher.fetch_whole(provider, hash, file.length, &tmp, timeout, move |n| p.set(n)).await {
                Ok(()) => {
                    out.received.add(Some(&provider.id), file.length);
                    out.path = commit(&files, &tmp, file).map_err(FetchFailed::local)?;
                    fetcher.serve_fetched(&out.path, hash, file.length).await;
                    fetcher.count(&out.received);
                    progress.finish(true);
                    return Ok(out);
                }
                Err(e) => {
                    let kind = ProviderFailureKind::of_blob(&e);
                    tracing::warn!(%provider, file = %file.path, "provider dropped: {e}");
                    let offence = match kind {
                        ProviderFailureKind::BadData => Some(Offence::BadData),
                        ProviderFailureKind::Unreachable | ProviderFailureKind::Timeout => Some(Offence::Unreachable),
                        ProviderFailureKind::LocalIo => None,
                    };
                    if let Some(o) = offence {
                        fetcher.penalize(provider.id, o, &format!("{}: {e}", file.path));
                    }
                    errors.push(format!("{provider}: {e}"));
                    out.failures.push(failure(provider, file, kind, e.to_string()));
                }
            }
        }
    }
    // The origin, last.
    match origin_fetch(config, fetcher, file, hash, &tmp, &progress, &mut out).await {
        Ok(()) => {
            out.path = commit(&files, &tmp, file).map_err(FetchFailed::local)?;
            fetcher.serve_fetched(&out.path, hash, file.length).await;
            fetcher.count(&out.received);
            progress.finish(true);
            Ok(out)
        }
        Err(e) => {
            errors.push(e);
            let _ = std::fs::remove_file(&tmp);
            progress.finish(false);
            fetcher.count(&out.received);
            Err(FetchFailed {
                message: format!("no provider delivered {} intact: {}", file.path, errors.join("; ")),
                failures: out.failures,
                refusals: out.refusals,
            })
        }
    }
}

/// Moves a fetched file in: a small one without fsyncing the folder (see [`fetch_file`]).
fn commit(files: &crate::files::FileStore, tmp: &Path, file: &CatalogFile) -> Result<PathBuf, crate::files::FileError> {
    if file.length > SMALL_FILE {
        files.commit_part(tmp, &file.blake3)
    } else {
        files.commit_part_unsynced(tmp, &file.blake3)
    }
}

/// The origin's HTTP, then its iroh endpoint, for a whole file.
async fn origin_fetch(
    config: &Config,
    fetcher: &Fetcher,
    file: &CatalogFile,
    hash: blake3::Hash,
    tmp: &Path,
    progress: &Arc<dyn FetchProgress>,
    out: &mut Fetched,
) -> Result<(), String> {
    let timeout = config.provider_timeout();
    let mut errors = Vec::new();
    if let Some(url) = &config.origin.url {
        let url = format!("{}/targets/{}", url.trim_end_matches('/'), crate::sync::consistent_path(file));
        progress.start(&file.path, file.length);
        let (file_c, tmp_c, p) = (file.clone(), tmp.to_owned(), progress.clone());
        let got = tokio::task::spawn_blocking(move || crate::sync::http_fetch(&url, &file_c, &tmp_c, timeout, &*p))
            .await
            .map_err(|e| e.to_string())?;
        match got {
            Ok(()) => {
                out.received.add(None, file.length);
                return Ok(());
            }
            Err(e) => {
                errors.push(format!("origin http: {e}"));
                out.refusals.push(Refusal::new("origin", e.kind, file.path.clone(), e.detail));
            }
        }
    }
    if let Some(origin) = &config.origin.iroh {
        progress.start(&file.path, file.length);
        let p = progress.clone();
        match fetcher.fetch_whole(origin, hash, file.length, tmp, timeout, move |n| p.set(n)).await {
            Ok(()) => {
                out.received.add(None, file.length);
                return Ok(());
            }
            Err(e) => {
                out.failures.push(failure(origin, file, ProviderFailureKind::of_blob(&e), e.to_string()));
                errors.push(format!("origin {origin}: {e}"));
            }
        }
    }
    if errors.is_empty() {
        errors.push("no origin configured".into());
    }
    Err(errors.join("; "))
}

/// A large file in verified ranges: peers and the origin's iroh endpoint at once, into the
/// fetcher's blob store, then copied out to `tmp`.
#[allow(clippy::too_many_arguments)]
async fn fetch_in_ranges(
    config: &Config,
    fetcher: &Fetcher,
    file: &CatalogFile,
    hash: blake3::Hash,
    peers: &[PeerAddr],
    tmp: &Path,
    progress: &Arc<dyn FetchProgress>,
    out: &mut Fetched,
) -> anyhow::Result<()> {
    let mut providers: Vec<Provider> = peers
        .iter()
        .map(|p| Provider { addr: p.clone(), origin: false, claims_complete: fetcher.claims_complete(&p.id, &hash) })
        .collect();
    if let Some(origin) = &config.origin.iroh {
        providers.push(Provider { addr: origin.clone(), origin: true, claims_complete: true });
    }
    anyhow::ensure!(!providers.is_empty(), "no peer and no origin iroh endpoint to fetch ranges from");
    if let Some(s) = fetcher.swarm() {
        // Announced at once: other nodes fetching it can take the ranges this node has.
        s.hold(hash, false);
    }
    progress.start(&file.path, file.length);
    let p = progress.clone();
    let result = archy_net::fetch_ranges(
        &fetcher.store,
        fetcher.endpoint(),
        hash,
        file.length,
        providers,
        config.provider_timeout(),
        Arc::new(move |n| p.set(n)),
    )
    .await;
    let drops = match &result {
        Ok(outcome) => outcome.dropped.clone(),
        Err(archy_net::ranges::RangesError::Exhausted(drops)) => drops.clone(),
        Err(_) => Vec::new(),
    };
    for d in &drops {
        use archy_net::ranges::DropKind as K;
        let (kind, offence) = match d.kind {
            K::BadData => (ProviderFailureKind::BadData, Offence::BadData),
            K::NotHeld => (ProviderFailureKind::BadData, Offence::NotHeld),
            K::FalseClaim => (ProviderFailureKind::BadData, Offence::FalseClaim),
            K::Timeout => (ProviderFailureKind::Timeout, Offence::Unreachable),
            K::Unreachable => (ProviderFailureKind::Unreachable, Offence::Unreachable),
        };
        if !d.provider.origin {
            fetcher.penalize(d.provider.addr.id, offence, &format!("{}: {}", file.path, d.detail));
        }
        out.failures.push(failure(&d.provider.addr, file, kind, d.detail.clone()));
    }
    let outcome = result?;
    let origin = config.origin.iroh.as_ref().map(|o| o.id);
    for (id, bytes) in &outcome.by_provider {
        out.received.add((Some(*id) != origin).then_some(id), *bytes);
    }
    // Whole and verified in the store: copied out for the file store.
    fetcher
        .store
        .blobs()
        .export(iroh_blobs::Hash::from(hash), std::path::absolute(tmp)?)
        .await
        .map_err(|e| anyhow::anyhow!("copying {} out of the blob store: {e}", file.path))?;
    anyhow::ensure!(
        std::fs::metadata(tmp)?.len() == file.length,
        "{}: the blob store holds another length than the signed one",
        file.path
    );
    Ok(())
}
