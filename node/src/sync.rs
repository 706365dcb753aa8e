//! One sync round: bring the verified catalog up to date, origin first.
//!
//! The rules (docs/protocol.md, "Origin always wins"):
//! 1. The origin is asked first (HTTP, then its iroh endpoint if both are configured).
//! 2. If the origin answers, its answer decides the round: a catalog that verifies is taken;
//!    one that does not is refused and the node keeps what it has. Peers are not asked.
//! 3. Only when the origin can't be reached are peers asked: `[[peers]]` in order, then up to
//!    four swarm peers, the highest announced catalog version first. A peer's
//!    metadata goes through the same TUF 1.0 §5 workflow against the node's trusted root, so it
//!    is taken only if it verifies, is not expired, and is not older than what the node has
//!    (§5.4.3, §5.5.5 rollback checks).
//! 4. Once the origin answers again, its metadata is used as in rule 2: a peer's catalog never
//!    outranks it.
//! 5. Everything signed metadata pins by hash comes from peers first and the origin last: the
//!    snapshot during the update ([`pinned`]: checked against the length and SHA-256 the
//!    timestamp signs before the update reads it), file bytes (manifests, archives) after it
//!    ([`swarm`]: BLAKE3 verified streaming). A provider that sends bad bytes or stalls is
//!    dropped for the next; the origin is always the last one asked.
//! 6. A timestamp that verifies under the trusted root, has the same version as the trusted one
//!    but different bytes, is equivocation: both are kept under `<data>/evidence/` and reported.
//! 7. When the trusted root names a transparency log, a new timestamp is taken only with a proof
//!    that it is in a checkpoint consistent with the newest one this node has seen ([`log`]);
//!    a proof of a split view refuses every new catalog until the operator trusts the origin
//!    again.

pub mod log;
mod pinned;
pub mod swarm;
pub mod witness;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use archy_net::PeerAddr;
use catalog::client::{Config as TufConfig, FetchError, Remote, Updater};
use catalog::envelope::SignedEnvelope;
use catalog::manifest::Limits;
use catalog::metadata::{SignedMetadata, Targets, Timestamp};
use chrono::Utc;
use iroh::Endpoint;
use serde::{Deserialize, Serialize};

use crate::catalog::{
    CatalogApp, CatalogFile, GenerationState, GenerationStore, NodeCatalog, PublisherKey, commit_generation,
};
use crate::config::Config;
use crate::data_dir::DataDir;
use crate::files::FileStore;
use crate::sync::swarm::{Fetcher, Received};
use archy_net::swarm::ProviderTable;

/// Swarm peers asked for metadata (after `[[peers]]`) when the origin is unreachable.
const METADATA_PEERS: usize = 4;

/// Files fetched at once in a round.
const FETCH_CONCURRENCY: usize = 16;

/// Most targets roles a node loads from one catalog.
const MAX_ROLES: usize = 100_000;

/// What one round did (also written to `<data>/status.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncReport {
    /// When the round ran.
    pub at: Option<chrono::DateTime<Utc>>,
    /// Whether the origin answered.
    pub origin_reachable: bool,
    /// Where the catalog of this round came from (`origin`, `peer <id>`), if one was taken.
    pub source: Option<String>,
    /// Whether a new generation was written.
    pub changed: bool,
    /// Catalog versions after the round.
    pub timestamp_version: u64,
    /// Snapshot version after the round.
    pub snapshot_version: u64,
    /// Installable app versions after the round.
    pub apps: usize,
    /// Bytes received this round (metadata and files).
    pub bytes_downloaded: u64,
    /// The same bytes by provider kind (origin, peers) and provider.
    #[serde(default)]
    pub received: crate::sync::swarm::Received,
    /// Peers the node knew in its swarm when the round ended.
    #[serde(default)]
    pub peers_known: usize,
    /// Why the round (or a provider in it) failed, one line each.
    pub errors: Vec<String>,
    /// Equivocation evidence written this round.
    pub equivocation: Vec<PathBuf>,
    /// Providers dropped while fetching file bytes this round, each with the file and why.
    #[serde(default)]
    pub provider_failures: Vec<ProviderFailure>,
    /// What was refused this round, each with the rule that refused it.
    #[serde(default)]
    pub refusals: Vec<Refusal>,
}

/// Something a round refused (or could not reach), with the rule: a candidate's metadata, a
/// target's bytes, an envelope, or the round's files as a whole.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Refusal {
    /// `origin` or `peer <endpoint id>`.
    pub source: String,
    /// The rule.
    pub kind: RefusalKind,
    /// The role (`timestamp`, `acme`, `acme.json`…) or target path the rule is about; empty when
    /// it is about the whole candidate.
    pub subject: String,
    /// The refusal, for people.
    pub detail: String,
}

/// The rule behind a [`Refusal`] (the TUF sections are those of `catalog::client::UpdateError`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefusalKind {
    /// Nothing answered (connection refused, no answer in time).
    Unreachable,
    /// Too few valid signatures from the role's keys, or one key signing twice (§5.3.4, §5.4.2,
    /// §5.5.3, §5.6.3).
    Signatures,
    /// The metadata is past its expiry (§5.3.10, §5.4.5, §5.5.6, §5.6.6): a freeze attack.
    Expired,
    /// A version older than the trusted one (§5.4.3, §5.4.4, §5.5.5): a rollback attack.
    Rollback,
    /// A version other than the one the referencing metadata names (§5.3.5, §5.5.4, §5.6.4).
    VersionMismatch,
    /// A role the trusted snapshot does not list, or one the new snapshot drops (§5.5.5,
    /// §5.6.1): mix-and-match.
    NotInSnapshot,
    /// Bytes whose length or hashes differ from the signed ones (§5.7).
    Hash,
    /// More bytes than the limit or the signed length (endless data).
    TooLarge,
    /// Malformed metadata, the wrong `_type`, or a role nobody delegates.
    Malformed,
    /// A fetch failed after the candidate had answered.
    Fetch,
    /// An envelope that does not verify, or is not the manifest of its path signed by its role's
    /// key: left out of the catalog.
    Envelope,
    /// Manifests no provider delivered: the catalog was not updated.
    FilesUnavailable,
    /// No valid proof that the timestamp is in the transparency log the root names.
    Log,
    /// The log showed a split view (two inconsistent checkpoints); the origin is refused until
    /// the operator trusts it again.
    SplitView,
    /// Anything else (the local store, the root rotation cap).
    Other,
}

impl Refusal {
    pub(crate) fn new(source: &str, kind: RefusalKind, subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { source: source.to_owned(), kind, subject: subject.into(), detail: detail.into() }
    }

    /// The refusal of a TUF update error from `source`.
    fn of_update(source: &str, e: &catalog::client::UpdateError) -> Self {
        use catalog::client::UpdateError as U;
        use catalog::metadata::MetadataError as M;
        let (kind, subject) = match e {
            U::Metadata(M::ThresholdNotMet { role, .. } | M::DuplicateSignatures { role, .. }) => {
                (RefusalKind::Signatures, role.clone())
            }
            U::Metadata(M::Malformed { role, .. } | M::NotDelegated { role }) => (RefusalKind::Malformed, role.clone()),
            U::Metadata(M::WrongType { expected, .. }) => (RefusalKind::Malformed, expected.clone()),
            U::Fetch { file, source: FetchError::TooLarge { .. } } => (RefusalKind::TooLarge, file.clone()),
            U::Fetch { file, .. } => (RefusalKind::Fetch, file.clone()),
            U::Expired { role, .. } => (RefusalKind::Expired, role.clone()),
            U::Rollback { role, .. } => (RefusalKind::Rollback, role.clone()),
            U::VersionMismatch { role, .. } => (RefusalKind::VersionMismatch, role.clone()),
            U::SnapshotDropsRole(role) | U::NotInSnapshot(role) => (RefusalKind::NotInSnapshot, role.clone()),
            U::Hash { file, .. } => (RefusalKind::Hash, file.clone()),
            _ => (RefusalKind::Other, String::new()),
        };
        Self::new(source, kind, subject, format!("{source}: {e}"))
    }
}

/// A provider of file bytes that was dropped for one file (the next provider was tried).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProviderFailure {
    /// The provider's iroh address (`<endpoint id>@<ip:port>`).
    pub provider: String,
    /// The target path of the file.
    pub file: String,
    /// What went wrong.
    pub kind: ProviderFailureKind,
    /// The provider's error, for people.
    pub detail: String,
}

/// Why a provider was dropped for a file.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProviderFailureKind {
    /// It could not be reached (or refused the connection or request).
    Unreachable,
    /// It went silent for longer than the provider timeout, or did not deliver the whole file by
    /// its deadline (`archy_net::deadline`: slower than `archy_net::MIN_RATE`).
    Timeout,
    /// Its bytes did not verify against the signed BLAKE3 hash or length.
    BadData,
    /// Writing the bytes locally failed.
    LocalIo,
}

impl ProviderFailureKind {
    pub(crate) fn of_blob(e: &archy_net::BlobError) -> Self {
        match e {
            archy_net::BlobError::Connect(_) => Self::Unreachable,
            archy_net::BlobError::Timeout(_) | archy_net::BlobError::TooSlow { .. } => Self::Timeout,
            // Only bytes that fail verification are bad data; a provider that resets the stream
            // (it does not have the file, or failed on its side) is unreachable for this file.
            archy_net::BlobError::Verify(_) => Self::BadData,
            archy_net::BlobError::Transfer(_) => Self::Unreachable,
            archy_net::BlobError::Size { .. } => Self::BadData,
            archy_net::BlobError::Io(_) => Self::LocalIo,
        }
    }
}

/// Download progress of one file, drawn by whoever runs the fetch (the CLI draws a bar; the
/// daemon draws nothing).
pub trait FetchProgress: Send + Sync {
    /// A download of `length` bytes of `name` starts (or restarts with the next provider).
    fn start(&self, _name: &str, _length: u64) {}
    /// `n` bytes have been received.
    fn set(&self, _n: u64) {}
    /// The download ended, with the file stored (`true`) or not.
    fn finish(&self, _ok: bool) {}
}

/// No progress drawn.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl FetchProgress for NoProgress {}

impl SyncReport {
    /// Records a provider dropped for a file (and a line for people in `errors`).
    fn dropped(&mut self, failure: ProviderFailure) {
        self.errors.push(format!("provider {} dropped for {}: {}", failure.provider, failure.file, failure.detail));
        self.provider_failures.push(failure);
    }

    /// Whether the round ended with a verified catalog taken (or confirmed).
    pub fn ok(&self) -> bool {
        self.source.is_some()
    }
}

/// A remote that remembers whether anything answered and keeps the timestamp bytes it returned
/// (for the equivocation check); its [`pinned::Pinned`] counts the bytes.
struct Counting<R> {
    inner: pinned::Pinned<R>,
    answered: bool,
    timestamp: Option<Vec<u8>>,
}

impl<R: Remote> Remote for Counting<R> {
    fn fetch_metadata(&mut self, name: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let result = self.inner.fetch_metadata(name, max_length);
        match &result {
            Ok(bytes) => {
                self.answered = true;
                if name == "timestamp.json" {
                    self.timestamp = Some(bytes.clone());
                }
            }
            Err(FetchError::NotFound | FetchError::TooLarge { .. }) => self.answered = true,
            Err(_) => {}
        }
        result
    }

    fn fetch_target(&mut self, path: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        self.inner.fetch_target(path, max_length)
    }
}

/// Metadata from a peer (or the origin) over the iroh metadata protocol.
struct IrohRemote {
    handle: tokio::runtime::Handle,
    endpoint: Endpoint,
    peer: PeerAddr,
    connection: Option<iroh::endpoint::Connection>,
    timeout: Duration,
}

impl IrohRemote {
    fn connection(&mut self) -> Result<iroh::endpoint::Connection, FetchError> {
        if let Some(c) = &self.connection {
            return Ok(c.clone());
        }
        let (endpoint, addr, timeout) = (self.endpoint.clone(), self.peer.endpoint_addr(), self.timeout);
        let conn = self
            .handle
            .block_on(async move { tokio::time::timeout(timeout, endpoint.connect(addr, archy_net::META_ALPN)).await })
            .map_err(|_| FetchError::Timeout(timeout))?
            .map_err(|e| FetchError::Other(format!("{}: {e}", self.peer)))?;
        self.connection = Some(conn.clone());
        Ok(conn)
    }
}

impl Remote for IrohRemote {
    fn fetch_metadata(&mut self, name: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let conn = self.connection()?;
        let (name, timeout) = (name.to_owned(), self.timeout);
        self.handle.block_on(async move { archy_net::fetch_meta(&conn, &name, max_length, timeout).await })
    }

    fn fetch_target(&mut self, _path: &str, _max_length: u64) -> Result<Vec<u8>, FetchError> {
        Err(FetchError::Other("targets travel over iroh-blobs, not the metadata protocol".into()))
    }
}

/// The outcome of one candidate's update.
struct Attempt {
    store: GenerationStore,
    state: GenerationState,
    /// Manifests that still have to be fetched (as files) before the generation can be written.
    missing: Vec<CatalogFile>,
    /// The signed entries of the manifest envelopes.
    envelopes: Vec<catalog::client::VerifiedTarget>,
    /// The metadata's bytes, by provider.
    received: Received,
    /// Peers dropped for a metadata file.
    failures: Vec<ProviderFailure>,
}

enum AttemptError {
    /// Nothing answered: try the next candidate.
    Unreachable(String),
    /// Something answered and was refused.
    Refused(Refusal),
}

fn target_record(target: &catalog::client::VerifiedTarget) -> Option<CatalogFile> {
    let file = target.file();
    Some(CatalogFile {
        path: target.path().to_owned(),
        blake3: hex::encode(file.blake3()?),
        length: file.length,
        sha256: file.hashes.get("sha256").and_then(|v| v.as_str()).unwrap_or_default().to_owned(),
    })
}

/// Runs the TUF update against one candidate and collects the verified catalog.
fn attempt<R: Remote>(
    data: &DataDir,
    start: &GenerationStore,
    remote: pinned::Pinned<R>,
    source: &str,
    report: &mut SyncReport,
) -> Result<Attempt, AttemptError> {
    let now = Utc::now();
    let counting = Counting { inner: remote, answered: false, timestamp: None };
    let mut updater = Updater::new(counting, start.clone(), now, TufConfig::default()).map_err(|e| {
        let mut refusal = Refusal::of_update(source, &e);
        refusal.detail = format!("trusted root: {e}");
        AttemptError::Refused(refusal)
    })?;
    let refreshed = updater.refresh();
    check_equivocation(data, start, &updater, report);
    if let Err(e) = refreshed {
        // A refused candidate's bytes were still received this round.
        drain(&mut updater, report);
        let answered = updater.remote_mut().answered;
        return Err(if answered {
            AttemptError::Refused(Refusal::of_update(source, &e))
        } else {
            AttemptError::Unreachable(format!("{source}: {e}"))
        });
    }
    if let Err(refusal) = check_log(data, start, &mut updater, source, report) {
        drain(&mut updater, report);
        return Err(AttemptError::Refused(refusal));
    }
    let targets = match updater.all_targets(MAX_ROLES) {
        Ok(targets) => targets,
        Err(e) => {
            drain(&mut updater, report);
            return Err(AttemptError::Refused(Refusal::of_update(source, &e)));
        }
    };
    let mut files = Vec::new();
    let mut missing = Vec::new();
    let mut envelopes = Vec::new();
    for target in &targets {
        let Some(record) = target_record(target) else {
            report.errors.push(format!("{}: no BLAKE3 content address in its signed entry; skipped", target.path()));
            continue;
        };
        if target.path().starts_with("apps/") {
            // Fetched after this, many at once, peers first and the origin last.
            if !data.files().contains(&record.blake3) {
                missing.push(record.clone());
            }
            envelopes.push(target.clone());
        }
        files.push(record);
    }
    let ts = updater.trusted_timestamp().cloned();
    let snap_version = updater.trusted_snapshot().map_or(0, |s| s.version);
    let root_version = updater.trusted_root().version;
    let pinned = &mut updater.remote_mut().inner;
    let (received, failures) = (std::mem::take(&mut pinned.received), std::mem::take(&mut pinned.failures));
    let store = updater.store().clone();
    let publisher_keys = store
        .roles
        .get("targets")
        .and_then(|bytes| SignedMetadata::<Targets>::from_slice(bytes, "targets").ok())
        .map(|md| PublisherKey::from_targets(&md.signed))
        .unwrap_or_default();
    let state = GenerationState {
        generation: 0,
        source: source.to_owned(),
        synced_at: now,
        timestamp_version: ts.as_ref().map_or(0, |t| t.version),
        snapshot_version: snap_version,
        expires: ts.as_ref().map(|t| t.expires),
        root_version,
        apps: Vec::new(),
        files,
        publisher_keys,
    };
    // Apps are indexed once their envelopes are present (`index_apps`).
    Ok(Attempt { store, state, missing, envelopes, received, failures })
}

/// Adds what a refused candidate's round received, and the peers it dropped, to `report`.
fn drain<R: Remote>(updater: &mut Updater<Counting<R>, GenerationStore>, report: &mut SyncReport) {
    let pinned = &mut updater.remote_mut().inner;
    report.bytes_downloaded += pinned.received.from_origin + pinned.received.from_peers;
    report.received.merge(&std::mem::take(&mut pinned.received));
    for failure in std::mem::take(&mut pinned.failures) {
        report.dropped(failure);
    }
}

/// Rule 7: a new timestamp under a root that names a log must be in it ([`log::check`]); the
/// proof is asked of the same candidate, as a metadata name.
fn check_log<R: Remote>(
    data: &DataDir,
    start: &GenerationStore,
    updater: &mut Updater<Counting<R>, GenerationStore>,
    source: &str,
    report: &mut SyncReport,
) -> Result<(), Refusal> {
    let log = updater
        .trusted_root()
        .log()
        .map_err(|e| Refusal::new(source, RefusalKind::Malformed, "root", format!("{source}: {e}")))?;
    let Some(log) = log else { return Ok(()) };
    // While a split view is held, no round takes anything from the origin (not even what the
    // node has already).
    if let Some(view) = log::split_view(data) {
        let detail = format!("{source}: {}", log::refused_while(&view));
        return Err(Refusal::new(source, RefusalKind::SplitView, "timestamp", detail));
    }
    let Some(timestamp) = updater.store().roles.get("timestamp").cloned() else { return Ok(()) };
    if start.roles.get("timestamp") == Some(&timestamp) {
        return Ok(());
    }
    let remote = updater.remote_mut();
    let mut ask = |name: &str| remote.fetch_metadata(name, log::MAX_PROOF_BYTES).map_err(|e| e.to_string());
    log::check(data, &log, &timestamp, source, &mut ask, &mut report.equivocation)
        .map_err(|(kind, detail)| Refusal::new(source, kind, "timestamp", format!("{source}: {detail}")))
}

/// §5.4.3 says an equal version changes nothing; two *different* timestamps that both verify
/// with the same version mean the origin's timestamp key signed two histories. Keep both.
fn check_equivocation<R: Remote>(
    data: &DataDir,
    start: &GenerationStore,
    updater: &Updater<Counting<R>, GenerationStore>,
    report: &mut SyncReport,
) {
    let Some(old_bytes) = start.roles.get("timestamp") else { return };
    let Some(new_bytes) = updater_remote_timestamp(updater) else { return };
    if &new_bytes == old_bytes {
        return;
    }
    let (Ok(old), Ok(new)) = (
        SignedMetadata::<Timestamp>::from_slice(old_bytes, "timestamp"),
        SignedMetadata::<Timestamp>::from_slice(&new_bytes, "timestamp"),
    ) else {
        return;
    };
    if old.signed.version != new.signed.version {
        return;
    }
    let root = updater.trusted_root();
    let Some(role) = root.role("timestamp") else { return };
    if new.verify_role("timestamp", &root.keys, &role.keyids, role.threshold).is_err() {
        return;
    }
    let dir = data.evidence_dir();
    let path = dir.join(format!(
        "equivocation-timestamp-v{}-{}.json",
        new.signed.version,
        &blake3::hash(&new_bytes).to_hex()[..16]
    ));
    let evidence = serde_json::json!({
        "kind": "equivocation",
        "role": "timestamp",
        "version": new.signed.version,
        "trusted": serde_json::from_slice::<serde_json::Value>(old_bytes).unwrap_or_default(),
        "conflicting": serde_json::from_slice::<serde_json::Value>(&new_bytes).unwrap_or_default(),
        "seen_at": Utc::now().to_rfc3339(),
    });
    if std::fs::create_dir_all(&dir).is_ok()
        && catalog::repo::write_atomic(&path, &serde_json::to_vec_pretty(&evidence).unwrap_or_default()).is_ok()
    {
        tracing::warn!(version = new.signed.version, evidence = %path.display(), "equivocation: two signed timestamps with the same version");
        report.equivocation.push(path);
    }
}

fn updater_remote_timestamp<R: Remote>(updater: &Updater<Counting<R>, GenerationStore>) -> Option<Vec<u8>> {
    // `remote_mut` needs `&mut`; the counting remote is read through a shared borrow instead.
    updater.remote().timestamp.clone()
}

/// Verifies every envelope of the attempt and fills in the app index: the stored bytes hash to
/// the signed BLAKE3, the envelope's own signature verifies, and it is the manifest of its path
/// signed by the key of the role that lists it (`check_catalog_entry`). An envelope that fails
/// is left out and reported; the rest of the catalog is still taken.
fn index_apps(files: &FileStore, attempt: &mut Attempt, report: &mut SyncReport) {
    let mut apps = Vec::new();
    for target in &attempt.envelopes {
        let Some(record) = target_record(target) else { continue };
        let checked = (|| -> anyhow::Result<_> {
            let bytes = files.get(&record.blake3, record.length)?;
            let verified = SignedEnvelope::from_slice(&bytes)?.verify(&Limits::default())?;
            verified.check_catalog_entry(target)?;
            Ok(verified)
        })();
        match checked {
            Ok(verified) => {
                let m = verified.manifest();
                apps.push(CatalogApp {
                    id: m.id.as_str().to_owned(),
                    version: m.version.clone(),
                    publisher: m.publisher.to_string(),
                    source: attempt.state.source.clone(),
                    title: m.title.clone(),
                    path: target.path().to_owned(),
                    role: target.role().to_owned(),
                    blake3: record.blake3,
                    length: record.length,
                    // The origin revoked the key of the role listing it: listed, not installed.
                    revoked: attempt
                        .state
                        .publisher_keys
                        .iter()
                        .find(|k| k.role == target.role() && k.is_revoked())
                        .map(PublisherKey::describe),
                });
            }
            Err(e) => {
                let detail = format!("{}: refused: {e:#}", target.path());
                report.errors.push(detail.clone());
                let refusal = Refusal::new(&attempt.state.source, RefusalKind::Envelope, target.path(), detail);
                report.refusals.push(refusal);
            }
        }
    }
    attempt.state.apps = apps;
}

/// Fetches a target named in the verified catalog (an image archive) into `files/`, verified
/// against its signed length and BLAKE3, peers first and the origin last ([`swarm`]); returns
/// the local path and what each provider kind sent.
pub async fn fetch_target(
    data: &DataDir,
    config: &Config,
    catalog: &NodeCatalog,
    target_path: &str,
    progress: Arc<dyn FetchProgress>,
) -> anyhow::Result<swarm::FetchAnswer> {
    let file = catalog.file(target_path).cloned().with_context(|| format!("`{target_path}` is not in the catalog"))?;
    let fetcher = Fetcher::for_data(data, config).await?;
    let version = Some(catalog.state().timestamp_version);
    let fetched = swarm::fetch_file(data, config, &fetcher, &file, version, None, progress)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    if fetched.received != Received::default() {
        tracing::info!(
            file = %file.path,
            from_origin = fetched.received.from_origin,
            from_peers = fetched.received.from_peers,
            "fetched"
        );
    }
    Ok(swarm::FetchAnswer { path: fetched.path, received: fetched.received })
}

/// The target file's name in the consistent-snapshot layout (`<dir>/<sha256>.<name>`).
pub(crate) fn consistent_path(file: &CatalogFile) -> String {
    match file.path.rsplit_once('/') {
        Some((dir, base)) => format!("{dir}/{}.{base}", file.sha256),
        None => format!("{}.{}", file.sha256, file.path),
    }
}

/// Why a file from the origin's HTTP was not taken, by the rule it broke.
#[derive(Debug)]
pub(crate) struct HttpFetchError {
    /// [`RefusalKind::TooLarge`] (more than the signed length), [`RefusalKind::Hash`] (other
    /// bytes), [`RefusalKind::Unreachable`] or [`RefusalKind::Fetch`].
    pub(crate) kind: RefusalKind,
    pub(crate) detail: String,
}

impl std::fmt::Display for HttpFetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// One HTTP agent per provider timeout, kept for the process: its connections are reused, so a
/// round's many small files do not each open one.
fn http_agent(timeout: Duration) -> ureq::Agent {
    static AGENTS: std::sync::Mutex<Vec<(Duration, ureq::Agent)>> = std::sync::Mutex::new(Vec::new());
    let mut agents = AGENTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, agent)) = agents.iter().find(|(t, _)| *t == timeout) {
        return agent.clone();
    }
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout_read(timeout)
        .max_idle_connections_per_host(2 * FETCH_CONCURRENCY)
        .redirects(0)
        .build();
    agents.push((timeout, agent.clone()));
    agent
}

/// Streams a file over HTTP into `tmp`, bounded by the signed length, checking BLAKE3 (a file over
/// `swarm::SMALL_FILE` is fsynced; smaller ones are made durable with their round) (TUF 1.0
/// §5.7.3: the length and hashes of the signed target entry).
pub(crate) fn http_fetch(
    url: &str,
    file: &CatalogFile,
    tmp: &Path,
    timeout: Duration,
    progress: &dyn FetchProgress,
) -> Result<(), HttpFetchError> {
    use std::io::Write as _;
    let err = |kind, detail: String| HttpFetchError { kind, detail: format!("{url}: {detail}") };
    let io = |e: std::io::Error| err(RefusalKind::Fetch, e.to_string());
    // The same overall deadline as over iroh: a server trickling bytes can't hold the fetch.
    let response = http_agent(timeout).get(url).timeout(archy_net::deadline(file.length, timeout)).call().map_err(
        |e| match e {
            ureq::Error::Transport(t) => err(RefusalKind::Unreachable, t.to_string()),
            e => err(RefusalKind::Fetch, e.to_string()),
        },
    )?;
    let mut reader = response.into_reader().take(file.length + 1);
    let mut out = std::fs::File::create(tmp).map_err(io)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; (file.length as usize + 1).clamp(4096, 256 * 1024)];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > file.length {
            return Err(err(RefusalKind::TooLarge, format!("more than the signed {} bytes", file.length)));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io)?;
        progress.set(total);
    }
    if total != file.length {
        return Err(err(RefusalKind::Hash, format!("{total} bytes, the signed length is {}", file.length)));
    }
    if hasher.finalize().to_hex().as_str() != file.blake3 {
        return Err(err(RefusalKind::Hash, "BLAKE3 differs from the signed hash".into()));
    }
    if file.length > swarm::SMALL_FILE {
        out.sync_all().map_err(io)?;
    }
    Ok(())
}

/// Runs one sync round (holding `<data>/sync.lock`) and writes `<data>/status.json`.
///
/// `fetcher` is the running node's ([`Fetcher::for_daemon`]); a one-shot round makes its own
/// from the provider table the running node keeps on disk.
pub async fn sync_once(data: &DataDir, config: &Config, fetcher: Option<&Fetcher>) -> anyhow::Result<SyncReport> {
    let data = data.clone();
    let lock_path = data.sync_lock();
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
    let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock)).await??;
    let one_shot = fetcher.is_none();
    let fetcher = match fetcher {
        Some(f) => f.clone(),
        None => Fetcher::for_data(&data, config).await?,
    };
    let endpoint = Some(fetcher.endpoint().clone());
    let mut report = SyncReport { at: Some(Utc::now()), ..SyncReport::default() };
    let start = GenerationStore::load(&data)?;
    let handle = tokio::runtime::Handle::current();
    let timeout = config.provider_timeout();

    // Candidates in order: origin (HTTP, then iroh), then peers.
    enum Candidate {
        Http(String),
        Iroh(PeerAddr, bool),
    }
    let mut candidates = Vec::new();
    if let Some(url) = &config.origin.url {
        candidates.push(Candidate::Http(url.clone()));
    }
    if let Some(addr) = &config.origin.iroh {
        candidates.push(Candidate::Iroh(addr.clone(), true));
    }
    for peer in &config.peers {
        candidates.push(Candidate::Iroh(peer.iroh.clone(), false));
    }
    // Then the swarm's peers, the highest catalog version they announce first (asked only when
    // the origin is unreachable; what they send is verified like anyone's).
    for peer in fetcher.metadata_peers(METADATA_PEERS) {
        if !config.peers.iter().any(|p| p.iroh.id == peer.id) {
            candidates.push(Candidate::Iroh(peer, false));
        }
    }
    anyhow::ensure!(!candidates.is_empty(), "{}: no origin or peer configured", data.config_file().display());

    let mut chosen: Option<(Attempt, Option<PeerAddr>)> = None;
    for candidate in candidates {
        let is_origin = matches!(candidate, Candidate::Http(_) | Candidate::Iroh(_, true));
        if !is_origin && report.origin_reachable {
            break; // Rule 2: the origin answered; peers are not asked.
        }
        let (source, via) = match &candidate {
            Candidate::Http(_) | Candidate::Iroh(_, true) => ("origin".to_owned(), None),
            Candidate::Iroh(addr, false) => (format!("peer {}", addr.id), Some(addr.clone())),
        };
        let (d, s, h, ep) = (data.clone(), start.clone(), handle.clone(), endpoint.clone());
        let src = source.clone();
        let mut r = std::mem::take(&mut report);
        // Rule 5: while the origin is the candidate, what its metadata pins by hash is asked of
        // the peers first.
        let swarm = is_origin.then(|| pinned::Swarm {
            handle: h.clone(),
            fetcher: fetcher.clone(),
            timeout,
            seeds: config.peers.iter().map(|p| p.iroh.clone()).collect(),
        });
        let via_id = via.as_ref().map(|v| v.id);
        let trusted_timestamp = start.roles.get("timestamp").cloned();
        let (result, r) = tokio::task::spawn_blocking(move || {
            let result = match candidate {
                Candidate::Http(url) => {
                    let base = url.trim_end_matches('/');
                    let remote =
                        crate::http::HttpRemote::new(&format!("{base}/metadata"), Some(&format!("{base}/targets")));
                    attempt(&d, &s, pinned::Pinned::new(remote, via_id, swarm, trusted_timestamp), &src, &mut r)
                }
                Candidate::Iroh(addr, _) => match ep {
                    Some(endpoint) => {
                        let remote = IrohRemote { handle: h, endpoint, peer: addr, connection: None, timeout };
                        attempt(&d, &s, pinned::Pinned::new(remote, via_id, swarm, trusted_timestamp), &src, &mut r)
                    }
                    None => Err(AttemptError::Unreachable("no iroh endpoint".into())),
                },
            };
            (result, r)
        })
        .await?;
        report = r;
        match result {
            Ok(a) => {
                if is_origin {
                    report.origin_reachable = true;
                }
                report.bytes_downloaded += a.received.from_origin + a.received.from_peers;
                fetcher.count(&a.received);
                report.received.merge(&a.received);
                for failure in a.failures.iter().cloned() {
                    report.dropped(failure);
                }
                chosen = Some((a, via));
                break;
            }
            Err(AttemptError::Refused(refusal)) => {
                tracing::warn!("{}", refusal.detail);
                report.errors.push(refusal.detail.clone());
                report.refusals.push(refusal);
                if is_origin {
                    report.origin_reachable = true;
                }
            }
            Err(AttemptError::Unreachable(e)) => {
                tracing::info!("unreachable: {e}");
                report.errors.push(format!("unreachable: {e}"));
                report.refusals.push(Refusal::new(&source, RefusalKind::Unreachable, "", e));
            }
        }
    }

    if let Some((mut attempt, via)) = chosen {
        // Manifests not fetched with the metadata: peers first, the origin last, many at once.
        let missing = std::mem::take(&mut attempt.missing);
        let version = Some(attempt.state.timestamp_version);
        let fetched: Vec<_> = {
            use futures_util::StreamExt as _;
            let shared = Arc::new(config.clone());
            let jobs = missing.into_iter().map(|file| {
                let (data, config, fetcher, via) = (data.clone(), shared.clone(), fetcher.clone(), via.clone());
                async move {
                    let progress: Arc<dyn FetchProgress> = Arc::new(NoProgress);
                    swarm::fetch_file(&data, &config, &fetcher, &file, version, via.as_ref(), progress).await
                }
            });
            futures_util::stream::iter(jobs).buffer_unordered(FETCH_CONCURRENCY).collect().await
        };
        // The small files of the batch were moved in without fsyncing the folder: once for all.
        if !fetched.is_empty()
            && let Err(e) = data.files().sync_dir()
        {
            report.errors.push(format!("{e}"));
        }
        let mut fetch_failed = false;
        for result in fetched {
            match result {
                Ok(f) => {
                    report.refusals.extend(f.refusals);
                    report.bytes_downloaded += f.received.from_origin + f.received.from_peers;
                    report.received.merge(&f.received);
                    for failure in f.failures {
                        report.dropped(failure);
                    }
                }
                Err(e) => {
                    report.refusals.extend(e.refusals);
                    for failure in e.failures {
                        report.dropped(failure);
                    }
                    report.errors.push(e.message);
                    fetch_failed = true;
                }
            }
        }
        if fetch_failed {
            let detail = "some manifests could not be fetched; the catalog was not updated";
            report.errors.push(detail.into());
            report.refusals.push(Refusal::new(&attempt.state.source, RefusalKind::FilesUnavailable, "", detail));
        } else {
            index_apps(&data.files(), &mut attempt, &mut report);
            let changed = attempt.store.roles != start.roles || crate::catalog::current_generation(&data).is_none();
            if changed {
                commit_generation(&data, &attempt.store, &mut attempt.state)?;
            }
            report.changed = changed;
            report.source = Some(attempt.state.source.clone());
        }
    }
    if let Ok(catalog) = NodeCatalog::open(&data) {
        report.timestamp_version = catalog.state().timestamp_version;
        report.snapshot_version = catalog.state().snapshot_version;
        report.apps = catalog.state().apps.len();
    }
    report.peers_known = match fetcher.swarm() {
        Some(s) => s.with_table(|t| t.peers().count()),
        None => ProviderTable::load(&data.swarm_table(), std::time::SystemTime::now()).peers().count(),
    };
    catalog::repo::write_atomic(&data.sync_status(), &serde_json::to_vec_pretty(&report)?)?;
    drop(lock);
    if one_shot {
        fetcher.endpoint().close().await;
    }
    Ok(report)
}

/// Reads `<data>/status.json`, the last round's report.
pub fn last_report(data: &DataDir) -> Option<SyncReport> {
    serde_json::from_slice(&std::fs::read(data.sync_status()).ok()?).ok()
}
