//! Hosted envelopes: `POST /v1/blobs` and `GET /v1/blobs/<blake3>`, for publishers who announce
//! their apps on Nostr (the release event's `url` and `iroh` locations). What is kept, and for how
//! long, is the quota of [`super::hosted`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use catalog::envelope::{MAX_ENVELOPE_BYTES, SignedEnvelope};
use catalog::manifest::Limits;
use serde_json::json;

use super::Registry;
use super::error::ApiError;
use super::hosted::HostError;
use super::metrics::count;

/// Where hosted envelopes live: `<data>/registry/envelopes/<blake3 hex>`.
pub(crate) fn envelope_dir(data: &Path) -> PathBuf {
    data.join("registry/envelopes")
}

/// The iroh-blobs tag that keeps a hosted envelope in the blob store (deleted on eviction).
fn envelope_tag(hex: &str) -> String {
    format!("envelope/{hex}")
}

/// `POST /v1/blobs`: hosts a signed envelope.
///
/// The body is at most [`MAX_ENVELOPE_BYTES`] and must verify on its own
/// ([`SignedEnvelope::verify`]: signed by the manifest's publisher, a valid manifest), so the
/// origin hosts envelopes and nothing else. It is kept content-addressed by BLAKE3 (the same
/// bytes twice are stored once) under the quota of [`super::hosted`] (per DID, in total, in
/// time) and, when the origin runs iroh, added to its blob store. The answer is `{"blake3",
/// "size", "url", "iroh"}` (`iroh`: a blob ticket, or null); a refusal is `{"error", "reason"}`:
/// `too_large` (413), `not_an_envelope` or `bad_envelope` (400), `blobs_full` (507, the total
/// quota; the reason names it).
pub(crate) async fn put_blob(
    State(registry): State<Arc<Registry>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match host(&registry, &headers, body).await {
        Ok(answer) => {
            count(&registry.metrics.blobs_accepted);
            (StatusCode::OK, axum::Json(answer)).into_response()
        }
        Err(error) => {
            count(&registry.metrics.blobs_refused);
            tracing::info!(code = error.code(), reason = %error.reason(), "envelope refused");
            error.into_response()
        }
    }
}

/// Verifies, stores and (with iroh) adds to the blob store one envelope; the answer of
/// [`put_blob`].
async fn host(
    registry: &Arc<Registry>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<serde_json::Value, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is larger than {MAX_ENVELOPE_BYTES} bytes, the largest envelope accepted"),
            )
        } else {
            ApiError::bad("bad_request", e.body_text())
        }
    })?;
    let bytes = body.clone();
    let verified = tokio::task::spawn_blocking(move || {
        let envelope =
            SignedEnvelope::from_slice(&bytes).map_err(|e| ApiError::bad("not_an_envelope", e.to_string()))?;
        envelope.verify(&Limits::default()).map_err(|e| ApiError::bad("bad_envelope", e.to_string()))
    })
    .await
    .map_err(ApiError::internal)??;
    let hash = blake3::hash(&body);
    let hex = hash.to_hex().to_string();
    let did = verified.manifest().publisher.to_string();
    // Kept under the quota of D20: per DID (its own oldest make room), in total (refused when
    // full), in time (expired envelopes go).
    let (reg, name, bytes) = (registry.clone(), hex.clone(), body.clone());
    let stored = tokio::task::spawn_blocking(move || {
        let mut hosted = reg.hosted.lock().map_err(|_| ApiError::internal(anyhow::anyhow!("hosted index poisoned")))?;
        hosted.store(&reg.config.blobs, &did, &name, &bytes, std::time::SystemTime::now()).map_err(|e| match e {
            HostError::Full { .. } => ApiError::refused(StatusCode::INSUFFICIENT_STORAGE, "blobs_full", e.to_string()),
            HostError::Io(e) => ApiError::internal(e),
        })
    })
    .await
    .map_err(ApiError::internal)??;
    let iroh = match (&registry.blobs, &registry.iroh_addr) {
        (Some(store), Some(addr)) => {
            for old in &stored.removed {
                store.tags().delete(envelope_tag(old)).await.map_err(ApiError::internal)?;
            }
            store
                .blobs()
                .add_bytes(body.clone())
                .with_named_tag(envelope_tag(&hex))
                .await
                .map_err(ApiError::internal)?;
            let ticket = iroh_blobs::ticket::BlobTicket::new(
                addr.endpoint_addr(),
                iroh_blobs::Hash::from(hash),
                iroh_blobs::BlobFormat::Raw,
            );
            Some(ticket.to_string())
        }
        _ => None,
    };
    let base = match (&registry.config.public_url, headers.get(header::HOST).and_then(|h| h.to_str().ok())) {
        (Some(base), _) => base.trim_end_matches('/').to_owned(),
        (None, Some(host)) => format!("http://{host}"),
        (None, None) => format!("http://{}", registry.config.http),
    };
    let m = verified.manifest();
    tracing::info!(app = %m.id, version = %m.version, publisher = %m.publisher, blake3 = %hex, "envelope hosted");
    Ok(json!({
        "blake3": hex,
        "size": body.len(),
        "url": format!("{base}/v1/blobs/{hex}"),
        "iroh": iroh,
    }))
}

/// `GET /v1/blobs/<blake3>`: a hosted envelope, by the lowercase hex BLAKE3 of its bytes.
pub(crate) async fn get_blob(State(registry): State<Arc<Registry>>, UrlPath(hash): UrlPath<String>) -> Response {
    count(&registry.metrics.target_requests);
    let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return ApiError::bad("bad_request", "a blob is named by the 64 lowercase hex digits of its BLAKE3 hash")
            .into_response();
    }
    match tokio::fs::read(envelope_dir(&registry.config.data).join(&hash)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => {
            count(&registry.metrics.not_found);
            ApiError::refused(StatusCode::NOT_FOUND, "not_found", format!("no envelope {hash} here")).into_response()
        }
    }
}
