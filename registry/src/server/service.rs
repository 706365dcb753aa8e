//! Running the origin: the HTTP routes, the listeners (HTTP, iroh, the embedded relay), the
//! timestamp re-signing task and graceful shutdown.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use catalog::envelope::MAX_ENVELOPE_BYTES;
use chrono::Utc;

use super::{Config, Registry, blobs, endpoint, files, log, metrics, pages, submissions};
use archy_net::PeerAddr;

/// Largest body of a route that takes no upload.
const MAX_REQUEST: usize = 64 * 1024;

/// The HTTP API: TUF layout under `/metadata/` and `/targets/`, submissions under `/v1/`, and the
/// marketplace's pages (`/`, `/apps/<id>`, `/style.css`).
///
/// Every route that takes a body is bounded: submissions by [`Config::max_submission`], hosted
/// envelopes by [`MAX_ENVELOPE_BYTES`], everything else by 64 KiB.
pub fn router(registry: Arc<Registry>) -> Router {
    let limit = usize::try_from(registry.config.max_submission).unwrap_or(usize::MAX);
    Router::new()
        .route("/", get(pages::list))
        .route("/apps/{id}", get(pages::app))
        .route("/nostr/{id}", get(pages::nostr_app))
        .route("/icons/{id}/{version}", get(pages::icon_file))
        .route("/a/{naddr}", get(pages::naddr))
        .route("/style.css", get(pages::style))
        .route("/metadata/{name}", get(files::metadata))
        .route("/targets/{*path}", get(files::target))
        .route("/log/checkpoint", get(log::checkpoint))
        .route("/v1/submissions", post(submissions::submit).layer(DefaultBodyLimit::max(limit)))
        .route("/v1/publishers/{did}", get(submissions::publisher))
        .route("/v1/blobs", post(blobs::put_blob).layer(DefaultBodyLimit::max(MAX_ENVELOPE_BYTES)))
        .route("/v1/blobs/{hash}", get(blobs::get_blob))
        .route("/healthz", get(metrics::health))
        .route("/metrics", get(metrics::metrics))
        .layer(DefaultBodyLimit::max(MAX_REQUEST))
        .with_state(registry)
}

/// What a running origin listens on (also written to `<data>/registry/endpoint.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Listening {
    /// Base URL of the HTTP API.
    pub http: String,
    /// The iroh address, `<endpoint id>@<ip:port>`.
    pub iroh: Option<PeerAddr>,
    /// The embedded Nostr relay, `ws://ip:port`, when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
}

/// Runs the origin until `shutdown` resolves.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let mut registry = Registry::open(config.clone())?;
    let state_dir = config.data.join("registry");
    std::fs::create_dir_all(&state_dir)?;
    let _ = std::fs::remove_dir_all(state_dir.join("incoming"));
    // Re-sign at start if due, so a registry that was down for a while serves fresh metadata.
    registry.resign_if_due(Utc::now())?;

    let iroh_router = match config.iroh {
        Some(bind) => Some(endpoint::start(&mut registry, bind, &state_dir).await?),
        None => None,
    };
    let registry = Arc::new(registry);
    registry.publish_blobs().await?;

    let listener =
        tokio::net::TcpListener::bind(config.http).await.with_context(|| format!("binding HTTP on {}", config.http))?;
    let http = format!("http://{}", listener.local_addr()?);
    let relay = match config.relay {
        Some(addr) => Some(
            archy_nostr::relay::EmbeddedRelay::start(addr, Some(&config.data.join("relay")))
                .await
                .with_context(|| format!("starting the Nostr relay on {addr}"))?,
        ),
        None => None,
    };
    let listening = Listening {
        http: http.clone(),
        iroh: registry.iroh_addr.clone(),
        relay: relay.as_ref().map(|r| r.url().to_owned()),
    };
    catalog::repo::write_atomic(&state_dir.join("endpoint.json"), &serde_json::to_vec_pretty(&listening)?)?;
    println!("archy-registry: serving {}", registry.repo_dir.display());
    println!("  http: {http}");
    if let Some(addr) = &registry.iroh_addr {
        println!("  iroh: {addr}");
    }
    if let Some(relay) = &relay {
        println!("  relay: {}", relay.url());
    }

    // The marketplace's Nostr apps, from the embedded relay and any other configured.
    let mut market_relays = config.market.relays.clone();
    market_relays.extend(relay.as_ref().map(|r| r.url().to_owned()));
    let market_seeds = super::market_nostr::parse_seeds(&config.market.seeds)?;
    let nostr_market = (!market_relays.is_empty()).then(|| {
        tokio::spawn(super::market_nostr::keep_fresh(
            registry.clone(),
            market_relays,
            market_seeds,
            config.market.every,
        ))
    });
    let resigner = tokio::spawn(resign_on_schedule(registry.clone()));
    serve_http(listener, registry.clone(), shutdown).await?;
    resigner.abort();
    if let Some(task) = nostr_market {
        task.abort();
    }
    if let Some(relay) = relay {
        relay.shutdown();
    }
    if let Some(router) = iroh_router {
        // Router::shutdown also shuts the blob store down.
        router.shutdown().await.map_err(|e| anyhow::anyhow!("iroh shutdown: {e}"))?;
    }
    tracing::info!("archy-registry stopped");
    Ok(())
}

/// Every [`Config::resign_check`], re-signs the timestamp if due
/// ([`Registry::resign_if_due`]) and adds what changed to the blob store. Runs until aborted.
async fn resign_on_schedule(registry: Arc<Registry>) {
    let mut tick = tokio::time::interval(registry.config.resign_check);
    loop {
        tick.tick().await;
        let reg = registry.clone();
        match tokio::task::spawn_blocking(move || reg.resign_if_due(Utc::now())).await {
            Ok(Ok(true)) => {
                if let Err(e) = registry.publish_blobs().await {
                    tracing::warn!("blob store: {e:#}");
                }
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::error!("re-signing the timestamp: {e:#}"),
            Err(e) => tracing::error!("re-signing task: {e}"),
        }
    }
}

/// Serves [`router`] on `listener` until `shutdown` resolves, with `TCP_NODELAY` on every
/// connection: a target is sent as headers then body chunks, and without it Nagle's algorithm
/// holds the body until the client's delayed ACK, about 40 ms per request (a node's full sync
/// of 10,000 manifests took 392 s instead of 11 s on loopback).
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, router(registry)).with_graceful_shutdown(shutdown).await
}

/// Reads `<data>/registry/endpoint.json` of a running origin.
pub fn read_listening(data: &Path) -> anyhow::Result<Listening> {
    let path = data.join("registry/endpoint.json");
    Ok(serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)?)
}
