//! `/healthz` and `/metrics` (Prometheus text format), and the counters behind them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use super::Registry;

/// Counters of what the origin served and accepted.
#[derive(Default, Debug)]
pub(crate) struct Metrics {
    pub(crate) metadata_requests: AtomicU64,
    pub(crate) target_requests: AtomicU64,
    pub(crate) not_found: AtomicU64,
    pub(crate) submissions_accepted: AtomicU64,
    pub(crate) submissions_refused: AtomicU64,
    pub(crate) blobs_accepted: AtomicU64,
    pub(crate) blobs_refused: AtomicU64,
    pub(crate) timestamp_resigns: AtomicU64,
    /// Bytes served: HTTP metadata, HTTP targets, iroh metadata, iroh blobs.
    pub(crate) http_metadata_bytes: AtomicU64,
    pub(crate) http_target_bytes: AtomicU64,
    pub(crate) iroh_metadata_bytes: AtomicU64,
    pub(crate) iroh_target_bytes: AtomicU64,
}

/// Adds `n` bytes to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Adds one to a counter.
pub(crate) fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// `GET /healthz`: 200 while the served timestamp is unexpired, 503 otherwise.
pub(crate) async fn health(State(registry): State<Arc<Registry>>) -> Response {
    let (version, expires) =
        registry.cache.0.read().map(|c| (c.timestamp_version, c.timestamp_expires)).unwrap_or_default();
    let fresh = expires.is_some_and(|e| e > Utc::now());
    let status = if fresh { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        axum::Json(
            json!({ "ok": fresh, "timestamp_version": version, "timestamp_expires": expires.map(|e| e.to_rfc3339()) }),
        ),
    )
        .into_response()
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(registry): State<Arc<Registry>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics_text(&registry)).into_response()
}

fn metrics_text(registry: &Registry) -> String {
    let m = &registry.metrics;
    let (ts, snap, expires) = registry
        .cache
        .0
        .read()
        .map(|c| (c.timestamp_version, c.snapshot_version, c.timestamp_expires.map_or(0, |e| e.timestamp())))
        .unwrap_or_default();
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let slots = registry.config.max_concurrent_submissions.max(1);
    let in_flight = slots.saturating_sub(registry.submission_slots.available_permits());
    let reserved = load(&registry.incoming_reserved);
    let hosted = registry.hosted.lock().map(|h| h.total()).unwrap_or_default();
    format!(
        "# HELP archy_registry_requests_total HTTP requests served, by kind.\n\
         # TYPE archy_registry_requests_total counter\n\
         archy_registry_requests_total{{kind=\"metadata\"}} {}\n\
         archy_registry_requests_total{{kind=\"target\"}} {}\n\
         archy_registry_requests_total{{kind=\"not_found\"}} {}\n\
         # HELP archy_registry_bytes_served_total Bytes the origin sent, by protocol and kind (metadata: TUF metadata; target: manifests, archives, icons).\n\
         # TYPE archy_registry_bytes_served_total counter\n\
         archy_registry_bytes_served_total{{proto=\"http\",kind=\"metadata\"}} {}\n\
         archy_registry_bytes_served_total{{proto=\"http\",kind=\"target\"}} {}\n\
         archy_registry_bytes_served_total{{proto=\"iroh\",kind=\"metadata\"}} {}\n\
         archy_registry_bytes_served_total{{proto=\"iroh\",kind=\"target\"}} {}\n\
         # HELP archy_registry_submissions_total Publisher submissions, by outcome.\n\
         # TYPE archy_registry_submissions_total counter\n\
         archy_registry_submissions_total{{outcome=\"accepted\"}} {}\n\
         archy_registry_submissions_total{{outcome=\"refused\"}} {}\n\
         # HELP archy_registry_submissions_in_flight Submissions being read now.\n\
         # TYPE archy_registry_submissions_in_flight gauge\n\
         archy_registry_submissions_in_flight {in_flight}\n\
         # HELP archy_registry_incoming_reserved_bytes Bytes reserved under registry/incoming/ by submissions in progress.\n\
         # TYPE archy_registry_incoming_reserved_bytes gauge\n\
         archy_registry_incoming_reserved_bytes {reserved}\n\
         # HELP archy_registry_hosted_envelope_bytes Bytes of envelopes hosted at /v1/blobs.\n\
         # TYPE archy_registry_hosted_envelope_bytes gauge\n\
         archy_registry_hosted_envelope_bytes {hosted}\n\
         # HELP archy_registry_blobs_total Envelopes posted to /v1/blobs, by outcome.\n\
         # TYPE archy_registry_blobs_total counter\n\
         archy_registry_blobs_total{{outcome=\"accepted\"}} {}\n\
         archy_registry_blobs_total{{outcome=\"refused\"}} {}\n\
         # HELP archy_registry_timestamp_resigns_total Timestamps re-signed on schedule.\n\
         # TYPE archy_registry_timestamp_resigns_total counter\n\
         archy_registry_timestamp_resigns_total {}\n\
         # HELP archy_registry_timestamp_version Version of the served timestamp.\n\
         # TYPE archy_registry_timestamp_version gauge\n\
         archy_registry_timestamp_version {ts}\n\
         # HELP archy_registry_snapshot_version Version of the served snapshot.\n\
         # TYPE archy_registry_snapshot_version gauge\n\
         archy_registry_snapshot_version {snap}\n\
         # HELP archy_registry_timestamp_expires_seconds Unix time the served timestamp expires.\n\
         # TYPE archy_registry_timestamp_expires_seconds gauge\n\
         archy_registry_timestamp_expires_seconds {expires}\n",
        load(&m.metadata_requests),
        load(&m.target_requests),
        load(&m.not_found),
        load(&m.http_metadata_bytes),
        load(&m.http_target_bytes),
        load(&m.iroh_metadata_bytes),
        load(&m.iroh_target_bytes),
        load(&m.submissions_accepted),
        load(&m.submissions_refused),
        load(&m.blobs_accepted),
        load(&m.blobs_refused),
        load(&m.timestamp_resigns),
    )
}
