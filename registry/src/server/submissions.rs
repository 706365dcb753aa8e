//! Publisher submissions: `POST /v1/submissions` (multipart: `role`, `metadata`, then one `file`
//! part per new target) and `GET /v1/publishers/<did>` (the role, paths and current metadata a
//! publisher builds its next version on).
//!
//! A submission is streamed to `<data>/registry/incoming/` (each file bounded by the length its
//! metadata signs), then checked and applied under the write lock ([`apply_submission`]); the
//! uploads of a refused one are removed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::multipart::MultipartError;
use axum::extract::{Multipart, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use catalog::envelope::{EnvelopeError, SignedEnvelope};
use catalog::manifest::Limits;
use catalog::metadata::{SignedMetadata, TargetFile, Targets};
use catalog::repo::consistent_target_path;
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;

use super::Registry;
use super::error::ApiError;
use super::metrics::count;

/// A file of a submission, received into a temporary file and described by what was hashed.
struct Upload {
    temp: PathBuf,
    length: u64,
    sha256: String,
    blake3: String,
}

impl Upload {
    /// Whether the received bytes are the ones `file` signs: length, SHA-256 and BLAKE3.
    fn matches(&self, file: &TargetFile) -> bool {
        let sha_ok =
            file.hashes.get("sha256").and_then(|v| v.as_str()).is_some_and(|h| h.eq_ignore_ascii_case(&self.sha256));
        let b3_ok = file.blake3().is_some_and(|b| hex::encode(b) == self.blake3);
        file.length == self.length && sha_ok && b3_ok
    }
}

/// A submission as parsed from the request.
struct Submission {
    role: String,
    metadata: Vec<u8>,
    files: BTreeMap<String, Upload>,
    _dir: TempDir,
}

/// A directory removed on drop (uploads of refused submissions leave nothing behind).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `POST /v1/submissions`: the answer is `{"accepted", "role", "version", "snapshot_version",
/// "timestamp_version"}`, a refusal `{"error", "reason"}`.
pub(crate) async fn submit(State(registry): State<Arc<Registry>>, multipart: Multipart) -> Response {
    let result = async {
        let sub = read_submission(&registry, multipart).await?;
        let reg = registry.clone();
        let accepted = tokio::task::spawn_blocking(move || apply_submission(&reg, &sub, Utc::now()))
            .await
            .map_err(ApiError::internal)??;
        if let Err(e) = registry.publish_blobs().await {
            tracing::warn!("adding files to the blob store: {e:#}");
        }
        Ok::<_, ApiError>(accepted)
    }
    .await;
    match result {
        Ok(body) => {
            count(&registry.metrics.submissions_accepted);
            tracing::info!(%body, "submission accepted");
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(error) => {
            count(&registry.metrics.submissions_refused);
            tracing::info!(code = error.code(), reason = %error.reason(), "submission refused");
            error.into_response()
        }
    }
}

async fn read_submission(registry: &Registry, mut multipart: Multipart) -> Result<Submission, ApiError> {
    let incoming = registry.config.data.join("registry/incoming");
    let dir = incoming.join(format!("{:016x}", super::rand_u64()));
    tokio::fs::create_dir_all(&dir).await.map_err(ApiError::internal)?;
    let guard = TempDir(dir.clone());
    let mut role = None;
    let mut metadata: Option<Vec<u8>> = None;
    let mut files = BTreeMap::new();
    let bad_part = |e: MultipartError| ApiError::bad("bad_request", format!("multipart: {e}"));
    while let Some(mut field) = multipart.next_field().await.map_err(bad_part)? {
        match field.name().unwrap_or("") {
            "role" => role = Some(field.text().await.map_err(bad_part)?),
            "metadata" => metadata = Some(field.bytes().await.map_err(bad_part)?.to_vec()),
            "file" => {
                let path = field
                    .file_name()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::bad("bad_request", "a `file` part needs a filename (its target path)"))?;
                // The metadata comes first, so each file is bounded by its signed length.
                let md = metadata
                    .as_deref()
                    .ok_or_else(|| ApiError::bad("bad_request", "send the `metadata` part before the files"))?;
                let signed: SignedMetadata<Targets> =
                    SignedMetadata::from_slice(md, role.as_deref().unwrap_or("publisher"))
                        .map_err(|e| ApiError::bad("bad_metadata", e.to_string()))?;
                let target = signed.signed.targets.get(&path).ok_or_else(|| {
                    ApiError::bad("file_not_in_metadata", format!("`{path}` is not a target of the submitted metadata"))
                })?;
                let temp = dir.join(format!("{}", files.len()));
                let mut out = tokio::fs::File::create(&temp).await.map_err(ApiError::internal)?;
                let (mut sha, mut b3, mut length) = (sha2::Sha256::new(), blake3::Hasher::new(), 0u64);
                while let Some(chunk) = field.chunk().await.map_err(bad_part)? {
                    length += chunk.len() as u64;
                    if length > target.length {
                        return Err(ApiError::bad(
                            "file_too_large",
                            format!("`{path}` is longer than the {} bytes its metadata signs", target.length),
                        ));
                    }
                    sha.update(&chunk);
                    b3.update(&chunk);
                    out.write_all(&chunk).await.map_err(ApiError::internal)?;
                }
                out.sync_all().await.map_err(ApiError::internal)?;
                let upload = Upload {
                    temp,
                    length,
                    sha256: hex::encode(sha.finalize()),
                    blake3: b3.finalize().to_hex().to_string(),
                };
                files.insert(path, upload);
            }
            other => return Err(ApiError::bad("bad_request", format!("unknown part `{other}`"))),
        }
    }
    let role = role.ok_or_else(|| ApiError::bad("bad_request", "missing the `role` part (the publisher role name)"))?;
    let metadata = metadata.ok_or_else(|| ApiError::bad("bad_request", "missing the `metadata` part"))?;
    Ok(Submission { role, metadata, files, _dir: guard })
}

/// Applies a submission: checks, stores, signs a new snapshot and timestamp, writes.
fn apply_submission(registry: &Registry, sub: &Submission, now: DateTime<Utc>) -> Result<serde_json::Value, ApiError> {
    let _guard = registry.write_lock.lock().map_err(|_| ApiError::internal(anyhow::anyhow!("write lock poisoned")))?;
    let _writers = catalog::repo::lock_writers(&registry.repo_dir).map_err(ApiError::internal)?;
    let mut repo = registry.load_repo().map_err(ApiError::internal)?;
    let role = sub.role.as_str();
    let md = SignedMetadata::<Targets>::from_slice(&sub.metadata, role)
        .map_err(|e| ApiError::bad("bad_metadata", e.to_string()))?;
    let previous: BTreeMap<String, TargetFile> = repo.delegated(role).map(|t| t.targets.clone()).unwrap_or_default();
    // Signature (TUF §5.6.3, from the repository side), forward version, delegated paths only,
    // immutable published paths: all in `accept_publisher_targets`.
    repo.accept_publisher_targets(role, md.clone())?;
    let delegation = repo
        .publisher_role(role)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("role `{role}` vanished after it was accepted")))?
        .clone();
    let targets_dir = registry.repo_dir.join("targets");
    let mut placed = Vec::new();
    for (path, file) in &md.signed.targets {
        if previous.contains_key(path) {
            continue;
        }
        let dest = targets_dir.join(consistent_target_path(path, file));
        let upload = sub.files.get(path);
        if let Some(upload) = upload {
            if !upload.matches(file) {
                return Err(ApiError::bad(
                    "hash_mismatch",
                    format!("`{path}`: the uploaded bytes do not match the length and hashes the metadata signs"),
                ));
            }
        } else if !dest.exists() {
            return Err(ApiError::bad("missing_file", format!("`{path}` is new in this version but was not uploaded")));
        }
        if path.starts_with("apps/") {
            // A manifest is checked as a node would: envelope signature, schema, and the
            // placement rule (the manifest of this path, in a role delegated to its publisher).
            let bytes = match upload {
                Some(u) => std::fs::read(&u.temp).map_err(ApiError::internal)?,
                None => std::fs::read(&dest).map_err(ApiError::internal)?,
            };
            let verified = SignedEnvelope::from_slice(&bytes)
                .and_then(|e| e.verify(&Limits::default()))
                .map_err(|e| ApiError::bad("bad_manifest", format!("`{path}`: {e}")))?;
            let m = verified.manifest();
            match verified.check_placement(path, role, &delegation.keyids) {
                Ok(()) => {}
                Err(EnvelopeError::WrongPath { expected, .. }) => {
                    return Err(ApiError::bad(
                        "bad_manifest",
                        format!("`{path}` holds {} {}; its path must be `{expected}`", m.id, m.version),
                    ));
                }
                Err(EnvelopeError::WrongRoleKey { .. }) => {
                    return Err(ApiError::refused(
                        StatusCode::FORBIDDEN,
                        "wrong_publisher",
                        format!("`{path}` is signed by {}, not by the key of role `{role}`", m.publisher),
                    ));
                }
                Err(e) => return Err(ApiError::bad("bad_manifest", format!("`{path}`: {e}"))),
            }
        }
        if let Some(upload) = upload {
            placed.push((upload.temp.clone(), dest));
        }
    }
    // Files first (content-addressed, so placing them early is harmless), metadata after,
    // `timestamp.json` last (inside write_dir).
    for (temp, dest) in placed {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(ApiError::internal)?;
        }
        if !dest.exists() {
            std::fs::rename(&temp, &dest).map_err(ApiError::internal)?;
        }
    }
    repo.snapshot_and_timestamp(&registry.snapshot_key, &registry.timestamp_key, now)?;
    repo.write_dir(&registry.repo_dir)?;
    registry.reload_cache().map_err(ApiError::internal)?;
    Ok(json!({
        "accepted": true,
        "role": role,
        "version": md.signed.version,
        "snapshot_version": repo.snapshot().version,
        "timestamp_version": repo.timestamp().version,
    }))
}

/// `GET /v1/publishers/<did>`: `{"role", "paths", "current"}` for the role delegated to this
/// did:key (`current`: its whole signed targets metadata, or null before its first submission).
pub(crate) async fn publisher(State(registry): State<Arc<Registry>>, UrlPath(did): UrlPath<String>) -> Response {
    let did: catalog::did::DidKey = match did.parse() {
        Ok(did) => did,
        Err(e) => return ApiError::bad("bad_request", format!("{:#}", anyhow::Error::new(e))).into_response(),
    };
    let reg = registry.clone();
    let found = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<serde_json::Value>> {
        let repo = reg.load_repo()?;
        let Some(role) = repo.role_of_did(&did) else { return Ok(None) };
        let paths = repo.publisher_role(&role).and_then(|r| r.paths.clone()).unwrap_or_default();
        // The whole signed file, so the publisher can check its own signature before building
        // the next version on top of it (a registry must not slip targets into it).
        let current = match repo.delegated(&role) {
            Some(t) => {
                let name = format!("{}.{}.json", t.version, catalog::client::encode_role_name(&role));
                let bytes = reg.cached(&name).with_context(|| format!("metadata/{name} is missing"))?;
                Some(serde_json::from_slice::<serde_json::Value>(&bytes)?)
            }
            None => None,
        };
        Ok(Some(json!({ "role": role, "paths": paths, "current": current })))
    })
    .await;
    match found {
        Ok(Ok(Some(body))) => axum::Json(body).into_response(),
        Ok(Ok(None)) => ApiError::refused(
            StatusCode::NOT_FOUND,
            "unknown_publisher",
            "no role is delegated to this DID; ask the origin operator to run `archy repo add-publisher`",
        )
        .into_response(),
        Ok(Err(e)) => ApiError::internal(e).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}
