//! The transparency log over HTTP (`catalog::tlog`):
//! - `GET /log/checkpoint`: the newest signed checkpoint (C2SP tlog-checkpoint in a C2SP
//!   signed-note, `text/plain`);
//! - `GET /metadata/log-proof.<hex leaf hash>.<from>.json`: that checkpoint with the leaf's
//!   inclusion proof and the consistency proof from the tree of `from` leaves
//!   ([`catalog::tlog::LogProof`]), what a node asks before it takes a new timestamp. It is a
//!   metadata name so that it travels like metadata: over HTTP and over the iroh metadata
//!   protocol (`endpoint.rs`);
//! - `GET /metadata/log-consistency.<old>.<new>.json`: the consistency proof between two sizes;
//! - `GET /metadata/log-leaves.<start>.<count>.json`: up to 512 leaf hashes
//!   ([`catalog::repo::LogLeaves`]), for nodes that keep a copy of the log.
//!
//! A catalog whose root names no log answers 404.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::Registry;
use super::error::ApiError;
use super::metrics::add;

/// `GET /log/checkpoint`.
pub(crate) async fn checkpoint(State(registry): State<Arc<Registry>>) -> Result<Response, ApiError> {
    let dir = registry.repo_dir.clone();
    let note = tokio::task::spawn_blocking(move || catalog::repo::log_checkpoint(&dir))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::refused(StatusCode::NOT_FOUND, "no_log", "this catalog keeps no transparency log"))?;
    add(&registry.metrics.http_metadata_bytes, note.len() as u64);
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

/// What a metadata name of the log asks for, as JSON ([`catalog::repo::log_answer`]); `None`
/// when `name` is not one, or there is no log, or the log can't give it.
/// `log-proof.<hex leaf>.<from>.json` is a [`catalog::tlog::LogProof`];
/// `log-consistency.<old>.<new>.json` the consistency proof between two tree sizes
/// ([`catalog::tlog::Consistency`]), what a witness asks when a gossiped checkpoint is smaller
/// than the one it keeps; `log-leaves.<start>.<count>.json` up to 512 leaf hashes, which nodes
/// copy so that they can answer the same names while the origin is away.
pub(crate) fn proof_by_name(repo_dir: &std::path::Path, name: &str) -> Option<Bytes> {
    match catalog::repo::log_answer(repo_dir, name) {
        Ok(answer) => answer.map(Bytes::from),
        Err(e) => {
            tracing::info!("log answer {name}: {e}");
            None
        }
    }
}
