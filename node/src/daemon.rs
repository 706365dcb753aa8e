//! `archy-node run`: keeps the catalog fresh and mirrors it to other nodes.
//!
//! - Syncs every `sync.interval_secs`, and on demand (`POST /v1/sync` on the local API).
//! - Serves every verified file it holds over iroh-blobs (by BLAKE3) and its trusted metadata
//!   over the metadata protocol ([`archy_net::META_ALPN`]), so every node is a mirror.
//! - With Nostr relays configured: reads them fully on each sync, and keeps a live
//!   subscription to each in between ([`crate::nostr::read::NostrDaemon`]).
//! - Local HTTP API on `serve.api` (loopback by default): `GET /v1/status`,
//!   `GET /v1/apps?source=all|origin|nostr`, `POST /v1/sync`.
//! - Runs the orchestrator's reconciler and serves its lifecycle API (`/v1/installed…`,
//!   [`crate::orchestrator::api`]) when a container engine answers.
//! - Writes `<data>/node.json` with its API URL and iroh address.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use archy_net::{MetaServer, MetaSource, PeerAddr};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use catalog::metadata::{SignedMetadata, Snapshot};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::catalog::{NodeCatalog, current_generation, files_dir};
use crate::config::Config;
use crate::sync::{SyncReport, sync_once};

/// Serves the current generation's metadata to peers.
#[derive(Debug)]
struct GenerationMeta {
    data: PathBuf,
}

impl MetaSource for GenerationMeta {
    fn meta(&self, name: &str) -> Option<Bytes> {
        let dir = current_generation(&self.data)?;
        let read = |p: PathBuf| std::fs::read(p).ok().map(Bytes::from);
        if name == "timestamp.json" {
            return read(dir.join("timestamp.json"));
        }
        let (version, rest) = name.split_once('.')?;
        let version: u64 = version.parse().ok()?;
        if rest == "root.json" {
            return read(dir.join("roots").join(name));
        }
        let snapshot_bytes = std::fs::read(dir.join("snapshot.json")).ok()?;
        let snapshot = SignedMetadata::<Snapshot>::from_slice(&snapshot_bytes, "snapshot").ok()?;
        if rest == "snapshot.json" {
            return (snapshot.signed.version == version).then(|| Bytes::from(snapshot_bytes));
        }
        // `<V>.<role>.json`: served only when it is the version the trusted snapshot names.
        let role = rest.strip_suffix(".json")?;
        let meta = snapshot.signed.meta.get(&format!("{}.json", percent_decode(role)))?;
        (meta.version == version).then(|| read(dir.join(rest))).flatten()
    }
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 3 <= b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where a running node listens (`<data>/node.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Local API base URL.
    pub api: String,
    /// iroh address other nodes use as a peer.
    pub iroh: PeerAddr,
    /// Process id.
    pub pid: u32,
    /// The embedded Nostr relay's URL, when `[nostr] serve_relay` runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
}

/// Reads `<data>/node.json` of a running (or last run) node.
pub fn read_node_info(data: &Path) -> Option<NodeInfo> {
    serde_json::from_slice(&std::fs::read(data.join("node.json")).ok()?).ok()
}

struct Daemon {
    data: PathBuf,
    nostr: Arc<crate::nostr::read::NostrDaemon>,
    endpoint: iroh::Endpoint,
    store: iroh_blobs::store::fs::FsStore,
    imported: Mutex<archy_net::FolderBlobs>,
    round: Mutex<()>,
}

impl Daemon {
    async fn sync(&self) -> anyhow::Result<SyncReport> {
        let mut report = {
            let _one_at_a_time = self.round.lock().await;
            sync_once(&self.data, Some(&self.endpoint)).await?
        };
        // Outside the round: a slow or hostile relay never holds up the origin's catalog (a full
        // read has its own lock, `<data>/nostr/lock`).
        match self.nostr.full_read().await {
            Ok(nostr) => report.nostr = nostr,
            Err(e) => report.errors.push(format!("nostr: {e:#}")),
        }
        self.import_files().await?;
        Ok(report)
    }

    /// Makes every verified file servable over iroh-blobs (referenced in place, not copied).
    async fn import_files(&self) -> anyhow::Result<()> {
        self.imported.lock().await.import_new(&self.store, &files_dir(&self.data)).await?;
        Ok(())
    }
}

fn json_error(status: axum::http::StatusCode, e: impl std::fmt::Display) -> Response {
    (status, axum::Json(serde_json::json!({ "error": e.to_string() }))).into_response()
}

async fn api_sync(State(d): State<Arc<Daemon>>) -> Response {
    match d.sync().await {
        Ok(report) => axum::Json(report).into_response(),
        Err(e) => json_error(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    }
}

async fn api_status(State(d): State<Arc<Daemon>>) -> Response {
    axum::Json(crate::status::Status::gather(&d.data)).into_response()
}

/// Query of `GET /v1/apps`.
#[derive(Debug, Default, Deserialize)]
struct AppsQuery {
    #[serde(default)]
    source: Option<String>,
}

/// The origin's apps, Nostr's, or both in one list (each entry's `source` says which).
async fn api_apps(State(d): State<Arc<Daemon>>, Query(q): Query<AppsQuery>) -> Response {
    let source = match q.source.as_deref() {
        None | Some("all") => crate::nostr::Source::All,
        Some("origin") => crate::nostr::Source::Origin,
        Some("nostr") => crate::nostr::Source::Nostr,
        Some(other) => {
            return json_error(
                axum::http::StatusCode::BAD_REQUEST,
                format!("source `{other}`: expected all, origin or nostr"),
            );
        }
    };
    let data = d.data.clone();
    let listed = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        if source != crate::nostr::Source::Nostr {
            match NodeCatalog::open(&data) {
                Ok(c) => out.extend(c.apps().iter().map(serde_json::to_value).collect::<Result<Vec<_>, _>>()?),
                Err(e) if source == crate::nostr::Source::Origin => return Err(e),
                Err(_) => {}
            }
        }
        if source != crate::nostr::Source::Origin {
            let view = crate::nostr::NostrView::load(&data)?;
            out.extend(view.apps().iter().map(serde_json::to_value).collect::<Result<Vec<_>, _>>()?);
        }
        Ok(out)
    })
    .await;
    match listed {
        Ok(Ok(apps)) => axum::Json(apps).into_response(),
        Ok(Err(e)) => json_error(axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
        Err(e) => json_error(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// The local API routes of the sync side.
fn router(d: Arc<Daemon>) -> axum::Router {
    axum::Router::new()
        .route("/v1/sync", post(api_sync))
        .route("/v1/status", get(api_status))
        .route("/v1/apps", get(api_apps))
        .with_state(d)
}

/// Runs the node until `shutdown` resolves.
pub async fn run(data: &Path, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let data = std::path::absolute(data)?;
    let config = Config::load(&data)?;
    let store = iroh_blobs::store::fs::FsStore::load(data.join("iroh-blobs"))
        .await
        .map_err(|e| anyhow::anyhow!("opening the blob store: {e}"))?;
    let secret = archy_net::load_or_create_secret(&data.join("iroh.key"))?;
    let endpoint = archy_net::bind_endpoint(secret, config.serve.iroh).await?;
    let iroh_addr = archy_net::local_peer_addr(&endpoint)?;
    let iroh_router = iroh::protocol::Router::builder(endpoint.clone())
        .accept(iroh_blobs::ALPN, iroh_blobs::BlobsProtocol::new(&store, None))
        .accept(archy_net::META_ALPN, MetaServer::new(Arc::new(GenerationMeta { data: data.clone() })))
        .spawn();
    // The embedded relay first, so that a node configured to read its own relay finds it up.
    let relay = match config.nostr.serve_relay {
        Some(addr) => Some(archy_nostr::relay::EmbeddedRelay::start(addr, Some(&data.join("relay"))).await?),
        None => None,
    };
    let nostr = crate::nostr::read::NostrDaemon::open(&data).await?;
    let live = tokio::spawn({
        let nostr = nostr.clone();
        async move {
            if let Err(e) = nostr.live().await {
                tracing::error!("nostr: {e:#}");
            }
        }
    });
    let daemon = Arc::new(Daemon {
        data: data.clone(),
        nostr,
        endpoint,
        store,
        imported: Mutex::new(archy_net::FolderBlobs::default()),
        round: Mutex::new(()),
    });
    daemon.import_files().await?;

    let listener = tokio::net::TcpListener::bind(config.serve.api)
        .await
        .with_context(|| format!("binding the local API on {}", config.serve.api))?;
    let info = NodeInfo {
        api: format!("http://{}", listener.local_addr()?),
        iroh: iroh_addr,
        pid: std::process::id(),
        relay: relay.as_ref().map(|r| r.url().to_owned()),
    };
    catalog::repo::write_atomic(&data.join("node.json"), &serde_json::to_vec_pretty(&info)?)?;
    println!("archy-node: running on {}", data.display());
    println!("  api:  {}", info.api);
    println!("  iroh: {}", info.iroh);
    if let Some(relay) = &info.relay {
        println!("  relay: {relay}");
    }

    let syncer = {
        let daemon = daemon.clone();
        let every = std::time::Duration::from_secs(config.sync.interval_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match daemon.sync().await {
                    Ok(r) if r.ok() => tracing::info!(
                        source = r.source.as_deref().unwrap_or(""),
                        timestamp = r.timestamp_version,
                        apps = r.apps,
                        changed = r.changed,
                        "sync"
                    ),
                    Ok(r) => tracing::warn!(errors = ?r.errors, "sync kept the current catalog"),
                    Err(e) => tracing::error!("sync: {e:#}"),
                }
            }
        })
    };

    // The orchestrator's lifecycle API and reconciler, when a container engine answers.
    let source = Arc::new(crate::nostr::NodeSource::new(&data, crate::nostr::Source::All));
    let (api, reconciler) = match crate::orchestrator::Orchestrator::open(&data, source).await {
        Ok(o) => {
            let o = Arc::new(o);
            let every = std::time::Duration::from_secs(30);
            let reconciler =
                tokio::spawn(crate::orchestrator::run_reconciler(o.clone(), every, std::future::pending()));
            (router(daemon.clone()).merge(crate::orchestrator::api::router(o)), Some(reconciler))
        }
        Err(e) => {
            tracing::warn!("app lifecycle disabled: {e}");
            (router(daemon.clone()), None)
        }
    };
    axum::serve(listener, api).with_graceful_shutdown(shutdown).await?;
    if let Some(r) = reconciler {
        r.abort();
    }
    syncer.abort();
    live.abort();
    if let Some(relay) = relay {
        relay.shutdown();
    }
    iroh_router.shutdown().await.map_err(|e| anyhow::anyhow!("iroh shutdown: {e}"))?;
    let _ = std::fs::remove_file(data.join("node.json"));
    Ok(())
}
