//! The repository in the TUF layout: `GET /metadata/<name>` from the in-memory cache (and the
//! transparency log's proofs, `log-proof.<leaf>.<from>.json`, see `log.rs`) and
//! `GET /targets/<path>` streamed from disk. Both answer a bare 404 for what they don't hold, as a
//! static file server would: TUF clients need nothing more.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;

use super::Registry;
use super::metrics::{add, count};

/// `GET /metadata/<name>`.
pub(crate) async fn metadata(State(registry): State<Arc<Registry>>, UrlPath(name): UrlPath<String>) -> Response {
    count(&registry.metrics.metadata_requests);
    let bytes = match registry.cached(&name) {
        Some(bytes) => Some(bytes),
        None if name.starts_with("log-") => {
            let dir = registry.repo_dir.clone();
            tokio::task::spawn_blocking(move || super::log::proof_by_name(&dir, &name)).await.ok().flatten()
        }
        None => None,
    };
    match bytes {
        Some(bytes) => {
            add(&registry.metrics.http_metadata_bytes, bytes.len() as u64);
            ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
        }
        None => {
            count(&registry.metrics.not_found);
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

/// Targets up to this size are read whole and answered in one piece.
const SMALL_TARGET: u64 = 64 << 10;

/// `GET /targets/<path>`.
pub(crate) async fn target(State(registry): State<Arc<Registry>>, UrlPath(path): UrlPath<String>) -> Response {
    count(&registry.metrics.target_requests);
    let Some(rel) = safe_relative(&path) else { return StatusCode::NOT_FOUND.into_response() };
    let full = registry.repo_dir.join("targets").join(rel);
    // A small file (a manifest) is read whole in one go: a sync asks for thousands of them.
    let small = {
        let full = full.clone();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&full)?;
            if file.metadata()?.len() > SMALL_TARGET {
                return Ok(None);
            }
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(file, SMALL_TARGET + 1), &mut bytes)?;
            Ok::<_, std::io::Error>(Some(bytes))
        })
        .await
    };
    if let Ok(Ok(Some(bytes))) = small {
        add(&registry.metrics.http_target_bytes, bytes.len() as u64);
        return ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response();
    }
    match tokio::fs::File::open(&full).await {
        Ok(file) => {
            let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
            // Counted as it is sent: a client that hangs up early is charged what it received.
            let counted = registry.clone();
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).inspect(move |chunk| {
                if let Ok(c) = chunk {
                    add(&counted.metrics.http_target_bytes, c.len() as u64);
                }
            });
            let body = Body::from_stream(stream);
            ([(header::CONTENT_TYPE, "application/octet-stream"), (header::CONTENT_LENGTH, &len.to_string())], body)
                .into_response()
        }
        Err(_) => {
            count(&registry.metrics.not_found);
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

/// A target path is served only if every part is a plain name (no `..`, nothing hidden).
fn safe_relative(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.split('/') {
        if part.is_empty() || part.starts_with('.') || part.contains('\\') {
            return None;
        }
        out.push(part);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::safe_relative;

    #[test]
    fn only_plain_names_are_served() {
        assert_eq!(safe_relative("apps/notes/1.0.0.json"), Some("apps/notes/1.0.0.json".into()));
        for path in ["../keys/timestamp.key", "apps/.hidden", "apps//x", "a\\b", ""] {
            assert_eq!(safe_relative(path), None, "{path}");
        }
    }
}
