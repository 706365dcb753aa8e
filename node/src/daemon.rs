//! `archy-node run`: keeps the catalog fresh and mirrors it to other nodes.
//!
//! - Syncs every `sync.interval_secs`, and on demand (`POST /v1/sync` on the local API).
//! - Serves every verified file it holds over iroh-blobs (by BLAKE3) and its trusted metadata
//!   over the metadata protocol ([`archy_net::META_ALPN`]), so every node is a mirror.
//! - With Nostr relays configured: reads them fully on each sync, and keeps a live
//!   subscription to each in between ([`crate::nostr::read::NostrDaemon`]).
//! - Local HTTP API on `serve.api` (loopback by default, or a 0600 Unix socket), every request
//!   checked by [`crate::local_api`] first (Host, cross-site, the bearer token of
//!   `<data>/api.token`, JSON bodies): `GET /v1/status`, `GET /v1/apps?source=all|origin|nostr`,
//!   `POST /v1/sync`.
//! - Runs the orchestrator's reconciler and serves its lifecycle API (`/v1/installed…`,
//!   [`crate::orchestrator::api`]) once a container engine answers: an engine that is not up
//!   when the node starts (normal at boot) is tried again every 1 s, doubling to 60 s; until
//!   then those routes answer 503 saying why, and `GET /v1/status` reports `lifecycle`.
//! - Writes `<data>/node.json` with its API URL and iroh address.

mod dashboard;
mod openapi;

use std::sync::Arc;

use anyhow::Context as _;
use archy_net::MetaServer;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::catalog::{GenerationMeta, NodeCatalog};
use crate::config::ApiAddr;
use crate::data_dir::DataDir;
use crate::local_api::{ApiToken, Guard};
use crate::node_info::NodeInfo;
use crate::orchestrator::api::ApiError;
use crate::round::RoundReport;
use crate::sources::{NodeSource, Source};
use crate::sync::swarm::Fetcher;
use crate::sync::sync_once;

struct Daemon {
    data: DataDir,
    nostr: Arc<crate::nostr::read::NostrDaemon>,
    /// The node's endpoint, blob store and swarm, for every fetch of this process.
    fetcher: Fetcher,
    store: iroh_blobs::store::fs::FsStore,
    imported: Mutex<archy_net::FolderBlobs>,
    round: Mutex<()>,
    lifecycle: std::sync::RwLock<Lifecycle>,
    /// The container engine's reachability, as the watcher last saw it.
    engine: std::sync::RwLock<Option<crate::engine_watch::EngineReport>>,
    /// This node as a witness of the origin's log.
    witness: Arc<crate::sync::witness::Witness>,
}

/// The app lifecycle side of the local API: its routes once the container engine answers.
enum Lifecycle {
    /// The engine did not answer yet (normal at boot); why, as last seen.
    Waiting(String),
    /// The orchestrator's routes, and the orchestrator (for the dashboard's pages).
    Ready(axum::Router, Arc<crate::orchestrator::Orchestrator>),
}

impl Daemon {
    /// One round. The config is read afresh each round, so an edit of `config.toml` (origin,
    /// peers, relays, seeds) takes effect at the next one.
    async fn sync(&self) -> anyhow::Result<RoundReport> {
        let config = self.data.config()?;
        let catalog = {
            let _one_at_a_time = self.round.lock().await;
            sync_once(&self.data, &config, Some(&self.fetcher)).await?
        };
        if let Some(swarm) = self.fetcher.swarm() {
            swarm.set_catalog_version(catalog.timestamp_version);
            // The image archives it holds whole (fetched before this node ran, too).
            if let Ok(current) = NodeCatalog::open(&self.data) {
                let files = self.data.files();
                for f in
                    current.state().files.iter().filter(|f| f.path.starts_with("images/") && files.contains(&f.blake3))
                {
                    if let Ok(hash) = f.blake3.parse() {
                        swarm.hold(hash, true);
                    }
                }
            }
            // The origin decides what is newest: a peer announcing a catalog version the
            // origin does not have is lying (or serving another catalog) and is dropped.
            if catalog.origin_reachable && catalog.ok() {
                for (peer, version) in swarm.with_table(|t| t.ahead_of(catalog.timestamp_version)) {
                    let detail = format!("version {version}; the origin's is {}", catalog.timestamp_version);
                    swarm.penalize(peer, archy_net::swarm::Offence::CatalogLie, &detail);
                }
            }
        }
        // The kept log checkpoint, cosigned, goes to the swarm (other witnesses compare it).
        match self.witness.cosign_kept() {
            Ok(Some(note)) => {
                if let Some(swarm) = self.fetcher.swarm()
                    && let Err(e) = swarm.broadcast_note(note.as_bytes()).await
                {
                    tracing::debug!("gossiping the checkpoint: {e:#}");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("cosigning the log checkpoint: {e:#}"),
        }
        let mut report = RoundReport { catalog, nostr: None };
        // Outside the round: a slow or hostile relay never holds up the origin's catalog (a full
        // read has its own lock, `<data>/nostr/lock`).
        match self.nostr.full_read(&config).await {
            Ok(nostr) => report.nostr = nostr,
            Err(e) => report.catalog.errors.push(format!("nostr: {e:#}")),
        }
        self.import_files().await?;
        Ok(report)
    }

    /// Makes every verified file servable over iroh-blobs (referenced in place, not copied).
    async fn import_files(&self) -> anyhow::Result<()> {
        self.data.files().serve_into(&self.store, &mut *self.imported.lock().await).await?;
        Ok(())
    }
}

#[utoipa::path(post, path = "/v1/sync", tag = "node",
    summary = "One sync round now: the origin's catalog (peers when the origin is unreachable), then the Nostr relays",
    responses((status = 200, description = "The round's report (`archy-node sync --json`)", body = Object), crate::orchestrator::api::Denied))]
async fn api_sync(State(d): State<Arc<Daemon>>) -> Result<Response, ApiError> {
    // A round that verified nothing is still an answer (its report says why); an error here is
    // the node's own failure.
    Ok(axum::Json(d.sync().await.map_err(ApiError::Internal)?).into_response())
}

/// `POST /v1/fetch` body.
#[derive(Deserialize, utoipa::ToSchema)]
struct FetchRequest {
    /// A target path of the verified catalog, e.g. `images/hello-web/hello-web-0.1.0.tar`.
    target: String,
}

#[utoipa::path(post, path = "/v1/fetch", tag = "node",
    summary = "Fetch a file of the verified catalog into the node, peers first and the origin last (`archy-node fetch`)",
    request_body = FetchRequest,
    responses((status = 200, description = "Where the verified file is, and the bytes each provider kind sent", body = crate::sync::swarm::FetchAnswer),
        (status = 404, description = "Not in the verified catalog"), crate::orchestrator::api::Denied))]
async fn api_fetch(
    State(d): State<Arc<Daemon>>,
    axum::Json(request): axum::Json<FetchRequest>,
) -> Result<Response, ApiError> {
    let config = d.data.config().map_err(ApiError::Internal)?;
    let catalog =
        NodeCatalog::open(&d.data).map_err(|e| ApiError::Unavailable(format!("no verified catalog yet: {e:#}")))?;
    if catalog.file(&request.target).is_none() {
        return Err(ApiError::Op(crate::orchestrator::Error::NotAvailable(format!(
            "`{}` is not in the verified catalog",
            request.target
        ))));
    }
    let progress = Arc::new(crate::sync::NoProgress);
    let fetched = crate::sync::fetch_target(&d.data, &config, &catalog, &request.target, progress)
        .await
        .map_err(|e| ApiError::Unavailable(format!("{e:#}")))?;
    Ok(axum::Json(fetched).into_response())
}

#[utoipa::path(get, path = "/v1/status", tag = "node",
    summary = "Catalog version and expiry, origin reachability, peers, equivocation evidence, Nostr, the container engine (`archy-node status --json`)",
    responses((status = 200, description = "The node's status", body = Object), crate::orchestrator::api::Denied))]
async fn api_status(State(d): State<Arc<Daemon>>) -> Result<Response, ApiError> {
    let mut status =
        serde_json::to_value(crate::status::Status::gather(&d.data)).map_err(|e| ApiError::Internal(e.into()))?;
    status["lifecycle"] = match &*d.lifecycle.read().unwrap_or_else(std::sync::PoisonError::into_inner) {
        Lifecycle::Ready(..) => "ready".into(),
        Lifecycle::Waiting(why) => format!("waiting for the container engine: {why}").into(),
    };
    let engine = d.engine.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    status["engine"] = serde_json::to_value(engine).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(axum::Json(status).into_response())
}

/// `GET /metrics` (Prometheus text): bytes received by provider kind since the node started, the
/// swarm's peers, bans and dropped announcements, the catalog version.
async fn metrics(State(d): State<Arc<Daemon>>) -> Response {
    let total = d.fetcher.total();
    let mut out = String::new();
    out.push_str(
        "# HELP archy_node_bytes_received_total Bytes received (metadata and files) since start, by provider kind.\n",
    );
    out.push_str("# TYPE archy_node_bytes_received_total counter\n");
    out.push_str(&format!("archy_node_bytes_received_total{{provider=\"origin\"}} {}\n", total.from_origin));
    out.push_str(&format!("archy_node_bytes_received_total{{provider=\"peer\"}} {}\n", total.from_peers));
    if let Some(swarm) = d.fetcher.swarm() {
        let (peers, bans, mut dropped) = swarm.with_table(|t| {
            (t.peers().count(), t.bans().count(), t.dropped_total.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>())
        });
        dropped.sort();
        out.push_str(
            "# HELP archy_node_swarm_peers Peers known in the catalog's swarm.\n# TYPE archy_node_swarm_peers gauge\n",
        );
        out.push_str(&format!("archy_node_swarm_peers {peers}\n"));
        out.push_str("# HELP archy_node_swarm_banned Peers banned (bad data, lies, floods).\n# TYPE archy_node_swarm_banned gauge\n");
        out.push_str(&format!("archy_node_swarm_banned {bans}\n"));
        out.push_str("# HELP archy_node_announcements_dropped_total Swarm announcements dropped, by reason.\n");
        out.push_str("# TYPE archy_node_announcements_dropped_total counter\n");
        for (reason, n) in dropped {
            out.push_str(&format!("archy_node_announcements_dropped_total{{reason=\"{reason}\"}} {n}\n"));
        }
    }
    let version = NodeCatalog::open(&d.data).map(|c| c.state().timestamp_version).unwrap_or(0);
    out.push_str("# HELP archy_node_catalog_timestamp_version Version of the trusted timestamp.\n");
    out.push_str(&format!(
        "# TYPE archy_node_catalog_timestamp_version gauge\narchy_node_catalog_timestamp_version {version}\n"
    ));
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// `/v1/installed…` and `/v1/reconcile`: the orchestrator's routes, or 503 (saying why) while
/// the container engine does not answer.
async fn api_lifecycle(State(d): State<Arc<Daemon>>, request: axum::extract::Request) -> Result<Response, ApiError> {
    use tower::ServiceExt as _;
    if let Some(engine) = &*d.engine.read().unwrap_or_else(std::sync::PoisonError::into_inner)
        && !engine.reachable
    {
        return Err(ApiError::Unavailable(format!(
            "app lifecycle is not available: the container engine does not answer since {} ({}); retrying",
            engine.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            engine.error.as_deref().unwrap_or("no answer")
        )));
    }
    let routes = match &*d.lifecycle.read().unwrap_or_else(std::sync::PoisonError::into_inner) {
        Lifecycle::Ready(routes, _) => routes.clone(),
        Lifecycle::Waiting(why) => {
            return Err(ApiError::Unavailable(format!(
                "app lifecycle is not available yet: the container engine does not answer ({why}); retrying"
            )));
        }
    };
    // A fresh request: the extensions of this route's match (its path parameters) would
    // confuse the orchestrator's own routes.
    let (parts, body) = request.into_parts();
    let mut fresh = axum::extract::Request::new(body);
    *fresh.method_mut() = parts.method;
    *fresh.uri_mut() = parts.uri;
    *fresh.version_mut() = parts.version;
    *fresh.headers_mut() = parts.headers;
    Ok(routes.oneshot(fresh).await.into_response())
}

/// Query of `GET /v1/apps`.
#[derive(Debug, Default, Deserialize)]
struct AppsQuery {
    #[serde(default)]
    source: Option<String>,
}

/// The origin's apps, Nostr's, or both in one list (each entry's `source` says which).
#[utoipa::path(get, path = "/v1/apps", tag = "node",
    summary = "Installable apps: the origin's verified catalog and verified Nostr announcements (`archy-node apps --json`)",
    params(("source" = Option<String>, Query, description = "`all` (default), `origin` or `nostr`")),
    responses((status = 200, description = "Every app version, each with its `source`", body = Vec<Object>), crate::orchestrator::api::Denied))]
async fn api_apps(State(d): State<Arc<Daemon>>, Query(q): Query<AppsQuery>) -> Result<Response, ApiError> {
    let source = match q.source.as_deref() {
        None | Some("all") => Source::All,
        Some("origin") => Source::Origin,
        Some("nostr") => Source::Nostr,
        Some(other) => return Err(ApiError::BadRequest(format!("source `{other}`: expected all, origin or nostr"))),
    };
    let data = d.data.clone();
    let listed = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        if source != Source::Nostr {
            match NodeCatalog::open(&data) {
                Ok(c) => out.extend(c.apps().iter().map(serde_json::to_value).collect::<Result<Vec<_>, _>>()?),
                Err(e) if source == Source::Origin => return Err(e),
                Err(_) => {}
            }
        }
        if source != Source::Origin {
            let view = crate::nostr::NostrView::load(&data, &data.config()?)?;
            out.extend(view.apps().iter().map(serde_json::to_value).collect::<Result<Vec<_>, _>>()?);
        }
        Ok(out)
    })
    .await;
    match listed {
        Ok(Ok(apps)) => Ok(axum::Json(apps).into_response()),
        // No catalog yet, or Nostr state that can't be read: the message says which.
        Ok(Err(e)) => Err(ApiError::Unavailable(format!("{e:#}"))),
        Err(e) => Err(ApiError::Internal(e.into())),
    }
}

/// The local API routes of the sync side.
fn router(d: Arc<Daemon>) -> axum::Router {
    axum::Router::new()
        .route("/v1/sync", post(api_sync))
        .route("/v1/fetch", post(api_fetch))
        .route("/v1/status", get(api_status))
        .route("/v1/apps", get(api_apps))
        .route("/v1/installed", any(api_lifecycle))
        .route("/v1/installed/{*rest}", any(api_lifecycle))
        .route("/v1/reconcile", any(api_lifecycle))
        .route("/v1/events", any(api_lifecycle))
        .route("/v1/openapi.json", get(openapi::document))
        .route("/metrics", get(metrics))
        .with_state(d)
}

/// Makes the app lifecycle available once the orchestrator opens (retrying every 1 s, doubling to
/// 60 s, while the engine does not answer), then runs its reconciler. The outcome of the first
/// try is in place before the API serves (no request sees "not tried yet").
fn lifecycle(
    daemon: Arc<Daemon>,
    first: Result<crate::orchestrator::Orchestrator, crate::orchestrator::Error>,
) -> impl Future<Output = ()> + Send + 'static {
    let set = |daemon: &Daemon, state: Lifecycle| {
        *daemon.lifecycle.write().unwrap_or_else(std::sync::PoisonError::into_inner) = state;
    };
    let mut attempt = first.map(Arc::new);
    match &attempt {
        Ok(o) => set(&daemon, Lifecycle::Ready(crate::orchestrator::api::router(o.clone()), o.clone())),
        Err(e) => set(&daemon, Lifecycle::Waiting(e.to_string())),
    }
    async move {
        let mut pause = std::time::Duration::from_secs(1);
        let orchestrator = loop {
            match attempt {
                Ok(o) => break o,
                Err(e) => {
                    tracing::warn!("app lifecycle waits for the container engine: {e} (next try in {pause:?})");
                    set(&daemon, Lifecycle::Waiting(e.to_string()));
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(60));
                    let source = Arc::new(NodeSource::new(&daemon.data, Source::All));
                    attempt = crate::orchestrator::Orchestrator::open(&daemon.data, source).await.map(Arc::new);
                    if let Ok(o) = &attempt {
                        tracing::info!("app lifecycle ready");
                        set(&daemon, Lifecycle::Ready(crate::orchestrator::api::router(o.clone()), o.clone()));
                    }
                }
            }
        };
        let every = orchestrator
            .config()
            .reconcile_interval_secs
            .unwrap_or(crate::orchestrator::config::DEFAULT_RECONCILE_SECS)
            .max(1);
        let every = std::time::Duration::from_secs(every);
        if let Err(e) = crate::orchestrator::run_reconciler(orchestrator, every, std::future::pending()).await {
            tracing::error!("the reconciler stopped: {e}");
        }
    }
}

/// The local API's listener.
enum ApiListener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, std::path::PathBuf),
}

impl ApiListener {
    /// Binds `addr` and makes the guard that goes with it: the token of `<data>/api.token` on
    /// TCP; on a Unix socket, the socket itself, created 0600 (made in a private folder beside
    /// it and renamed into place, so it is never reachable with looser permissions).
    async fn bind(addr: &ApiAddr, data: &DataDir) -> anyhow::Result<(Self, Guard)> {
        match addr {
            ApiAddr::Tcp(addr) => {
                let token = ApiToken::load_or_create(&data.api_token())?;
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the local API on {addr}"))?;
                let guard = Guard::tcp(listener.local_addr()?, token);
                Ok((Self::Tcp(listener), guard))
            }
            ApiAddr::Unix(path) => {
                use std::os::unix::fs::PermissionsExt as _;
                let dir = path.parent().unwrap_or(std::path::Path::new("."));
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                let private = dir.join(format!(".archy-api-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&private);
                std::fs::create_dir(&private).with_context(|| format!("creating {}", private.display()))?;
                std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700))?;
                let staged = private.join("api.sock");
                let listener = tokio::net::UnixListener::bind(&staged)
                    .with_context(|| format!("binding the local API on {}", staged.display()))?;
                std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
                // A socket left by a node that did not stop cleanly is replaced; anything else at
                // that path is the operator's and is left alone (a clear error instead).
                use std::os::unix::fs::FileTypeExt as _;
                match std::fs::symlink_metadata(path) {
                    Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
                    Ok(_) => {
                        let _ = std::fs::remove_dir_all(&private);
                        anyhow::bail!("serve.api: {} exists and is not a socket; choose another path", path.display());
                    }
                    Err(_) => {}
                }
                std::fs::rename(&staged, path).with_context(|| format!("placing the socket at {}", path.display()))?;
                let _ = std::fs::remove_dir(&private);
                Ok((Self::Unix(listener, path.clone()), Guard::unix()))
            }
        }
    }

    /// How clients reach it (`<data>/node.json`): `http://ip:port` or `unix:<path>`.
    fn url(&self) -> anyhow::Result<String> {
        Ok(match self {
            Self::Tcp(l) => format!("http://{}", l.local_addr()?),
            Self::Unix(_, path) => format!("unix:{}", path.display()),
        })
    }
}

/// Runs the node until `shutdown` resolves.
pub(crate) async fn run(data: &DataDir, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let data = DataDir::new(std::path::absolute(data.root())?);
    let config = data.config()?;
    let store = iroh_blobs::store::fs::FsStore::load(data.iroh_blobs())
        .await
        .map_err(|e| anyhow::anyhow!("opening the blob store: {e}"))?;
    let secret = archy_net::load_or_create_secret(&data.iroh_key())?;
    let endpoint = archy_net::bind_endpoint(secret.clone(), config.serve.iroh).await?;
    let iroh_addr = archy_net::local_peer_addr(&endpoint)?;
    let gossip = iroh_gossip::net::Gossip::builder().spawn(endpoint.clone());
    let iroh_router = iroh::protocol::Router::builder(endpoint.clone())
        .accept(iroh_blobs::ALPN, iroh_blobs::BlobsProtocol::new(&store, None))
        .accept(archy_net::META_ALPN, MetaServer::new(Arc::new(GenerationMeta::new(data.clone()))))
        .accept(iroh_gossip::ALPN, gossip.clone())
        .spawn();
    // The catalog's swarm: bootstrapped from the origin's endpoint, the configured peers and the
    // peers seen last time.
    let topic = archy_net::topic_for_root(&std::fs::read(data.trust_root()).context("reading the pinned root")?)?;
    let bootstrap: Vec<_> =
        config.origin.iroh.iter().cloned().chain(config.peers.iter().map(|p| p.iroh.clone())).collect();
    let witness = Arc::new(crate::sync::witness::Witness::new(&data, &secret));
    let (notes, gossiped) = tokio::sync::mpsc::channel(64);
    let swarm = archy_net::Swarm::join(
        &endpoint,
        secret,
        &gossip,
        topic,
        &bootstrap,
        archy_net::SwarmOptions {
            announce_every: std::time::Duration::from_secs(config.swarm.announce_secs.max(1)),
            table_path: Some(data.swarm_table()),
            announce: true,
            notes: Some(notes),
        },
    )
    .await?;
    let witnessing =
        tokio::spawn(witness_gossip(data.clone(), witness.clone(), swarm.clone(), endpoint.clone(), gossiped));
    if let Ok(catalog) = NodeCatalog::open(&data) {
        swarm.set_catalog_version(catalog.state().timestamp_version);
    }
    let fetcher = Fetcher::for_daemon(&data, endpoint.clone(), store.clone().into(), swarm);
    // The embedded relay first, so that a node configured to read its own relay finds it up.
    let relay = match config.nostr.serve_relay {
        Some(addr) => Some(archy_nostr::relay::EmbeddedRelay::start(addr, Some(&data.relay_dir())).await?),
        None => None,
    };
    let nostr = crate::nostr::read::NostrDaemon::open(&data).await?;
    let live = tokio::spawn({
        let (nostr, config) = (nostr.clone(), config.clone());
        async move {
            if let Err(e) = nostr.live(config).await {
                tracing::error!("nostr: {e:#}");
            }
        }
    });
    let daemon = Arc::new(Daemon {
        data: data.clone(),
        nostr,
        fetcher,
        store,
        imported: Mutex::new(archy_net::FolderBlobs::default()),
        round: Mutex::new(()),
        lifecycle: std::sync::RwLock::new(Lifecycle::Waiting("not tried yet".into())),
        engine: std::sync::RwLock::new(None),
        witness,
    });
    daemon.import_files().await?;

    let (listener, guard) = ApiListener::bind(&config.serve.api, &data).await?;
    let info = NodeInfo {
        api: listener.url()?,
        iroh: iroh_addr,
        pid: std::process::id(),
        relay: relay.as_ref().map(|r| r.url().to_owned()),
    };
    catalog::repo::write_atomic(&data.node_info(), &serde_json::to_vec_pretty(&info)?)?;
    println!("archy-node: running on {data}");
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

    // The orchestrator's lifecycle API and reconciler once the container engine answers: tried
    // now, then again with a growing pause (an engine that starts after the node at boot).
    let first = crate::orchestrator::Orchestrator::open(&data, Arc::new(NodeSource::new(&data, Source::All))).await;
    let reconciler = tokio::spawn(lifecycle(daemon.clone(), first));
    // Whether the engine answers, and since when (status, and 503s while it does not).
    let socket = crate::orchestrator::config::NodeConfig::load(&data.config_file())?.socket();
    let watcher = tokio::spawn({
        let d = daemon.clone();
        crate::engine_watch::watch(data.clone(), socket, move |report| {
            *d.engine.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(report.clone());
        })
    });
    let guard = Arc::new(guard);
    let mut api = router(daemon.clone());
    if guard.sessions().is_some() {
        let url = info.api.clone();
        api = api.merge(dashboard::router(Arc::new(dashboard::Dashboard {
            daemon: daemon.clone(),
            guard: guard.clone(),
            url,
        })));
    }
    // Every route behind the guard: Host, cross-site, credentials (token or dashboard session),
    // JSON bodies.
    let api = api.layer(axum::middleware::from_fn_with_state(guard, crate::local_api::guard));
    match listener {
        // With each connection's address: a dashboard session is good only from where it signed in.
        ApiListener::Tcp(l) => {
            axum::serve(l, api.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .with_graceful_shutdown(shutdown)
                .await?;
        }
        ApiListener::Unix(l, path) => {
            axum::serve(l, api).with_graceful_shutdown(shutdown).await?;
            let _ = std::fs::remove_file(path);
        }
    }
    reconciler.abort();
    watcher.abort();
    syncer.abort();
    live.abort();
    witnessing.abort();
    if let Some(relay) = relay {
        relay.shutdown();
    }
    Fetcher::unregister(&data);
    if let Some(swarm) = daemon.fetcher.swarm() {
        swarm.save();
    }
    iroh_router.shutdown().await.map_err(|e| anyhow::anyhow!("iroh shutdown: {e}"))?;
    let _ = std::fs::remove_file(data.node_info());
    Ok(())
}

/// Checks every checkpoint the swarm gossips ([`crate::sync::witness`]), one at a time, and
/// gossips on what that leads to (a merged cosignature, both notes of a split view).
async fn witness_gossip(
    data: DataDir,
    witness: Arc<crate::sync::witness::Witness>,
    swarm: archy_net::Swarm,
    endpoint: iroh::Endpoint,
    mut gossiped: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) {
    let handle = tokio::runtime::Handle::current();
    let every = data.config().map(|c| c.swarm.announce_secs.max(1)).unwrap_or(30);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
    loop {
        let note = tokio::select! {
            note = gossiped.recv() => match note {
                Some(note) => note,
                None => return,
            },
            _ = tick.tick() => {
                // The kept checkpoint again, for members that joined since (gossip drops repeats).
                let kept = tokio::task::spawn_blocking({
                    let witness = witness.clone();
                    move || witness.cosign_kept()
                })
                .await;
                if let Ok(Ok(Some(note))) = kept
                    && let Err(e) = swarm.broadcast_note(note.as_bytes()).await
                {
                    tracing::debug!("gossiping the checkpoint: {e:#}");
                }
                if let Some(proof) = witness.held_proof()
                    && let Err(e) = swarm.broadcast_note(&proof).await
                {
                    tracing::debug!("gossiping the split view: {e:#}");
                }
                continue;
            }
        };
        let (data, witness, endpoint, handle) = (data.clone(), witness.clone(), endpoint.clone(), handle.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            let config = data.config().ok()?;
            let max = crate::sync::log::MAX_PROOF_BYTES;
            let mut ask = |name: &str| crate::sync::witness::ask_origin(&config, &endpoint, &handle, name, max);
            Some(witness.seen(&note, &config, &mut ask))
        })
        .await;
        let Ok(Some((seen, notes))) = outcome else { continue };
        match &seen {
            crate::sync::witness::Seen::Invalid(why) => tracing::debug!("gossiped checkpoint dropped: {why}"),
            crate::sync::witness::Seen::Unchecked(why) => tracing::info!("gossiped checkpoint not checked: {why}"),
            other => tracing::debug!(?other, "gossiped checkpoint"),
        }
        for note in notes {
            if let Err(e) = swarm.broadcast_note(&note).await {
                tracing::debug!("gossiping a checkpoint: {e:#}");
            }
        }
    }
}
