//! Publisher submissions: `POST /v1/submissions` (multipart: `role`, `metadata`, then one `file`
//! part per new target) and `GET /v1/publishers/<did>` (the role, paths and current metadata a
//! publisher builds its next version on).
//!
//! A submission is read part by part, in the order `role`, `metadata`, files:
//! 1. `role` (at most 64 bytes) and `metadata` (at most [`catalog::client::TARGETS_MAX_LENGTH`])
//!    are read chunk by chunk and refused with 413 as soon as they pass their bound;
//! 2. the metadata must be signed by the key(s) the served delegations give the role, and be newer
//!    than its served version, and name every target's SHA-256 as a digest ([`check_signed`]),
//!    before any file part is read (403 / 409 / 400);
//! 3. each file is streamed to `<data>/registry/incoming/<random>/`, bounded by the length the
//!    verified metadata signs and by the bytes reserved for submissions in progress
//!    ([`Config::max_incoming`](super::Config::max_incoming), 507);
//! 4. everything is checked again and applied under the write lock ([`apply_submission`]).
//!
//! The uploads of a refused or failed submission are removed (the folder is dropped with it),
//! and at most [`Config::max_concurrent_submissions`](super::Config::max_concurrent_submissions)
//! are read at once (429).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest as _, Multipart, Path as UrlPath, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use catalog::envelope::{EnvelopeError, SignedEnvelope};
use catalog::manifest::Limits;
use catalog::metadata::{SignedMetadata, TargetFile, Targets};
use catalog::repo::consistent_target_path;
use chrono::{DateTime, Utc};
use n0_future::Stream;
use serde_json::json;
use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;

use super::Registry;
use super::error::ApiError;
use super::metrics::count;

/// A file of a submission, received into a temporary file and described by what was hashed:
/// every algorithm `catalog::hash` understands.
struct Upload {
    temp: PathBuf,
    length: u64,
    sha256: String,
    sha512: String,
    blake3: String,
}

impl Upload {
    /// The hex digest of the received bytes under `algorithm`, if it is one nodes understand.
    fn digest(&self, algorithm: &str) -> Option<&str> {
        match algorithm {
            "sha256" => Some(&self.sha256),
            "sha512" => Some(&self.sha512),
            "blake3" => Some(&self.blake3),
            _ => None,
        }
    }

    /// Whether the received bytes are the ones `file` signs, as nodes check them
    /// (`TargetFile::verify_bytes`, TUF 1.0 §5.7.3): the length, every listed hash (one of an
    /// algorithm nodes don't understand fails), archy's `custom.archy.blake3` when given, and a
    /// BLAKE3 to fetch the file by.
    fn matches(&self, file: &TargetFile) -> bool {
        let same = |expected: Option<&str>, actual: Option<&str>| {
            expected.zip(actual).is_some_and(|(e, a)| e.eq_ignore_ascii_case(a))
        };
        let listed = file.hashes.iter().all(|(algorithm, hash)| same(hash.as_str(), self.digest(algorithm)));
        let custom = file.custom.as_ref().and_then(|c| c.get("archy")?.get("blake3"));
        let custom_ok = custom.is_none_or(|b3| same(b3.as_str(), Some(&self.blake3)));
        let b3_ok = file.blake3().is_some_and(|b| hex::encode(b) == self.blake3);
        file.length == self.length && listed && custom_ok && b3_ok
    }
}

/// A submission as parsed from the request.
struct Submission {
    role: String,
    metadata: Vec<u8>,
    files: BTreeMap<String, Upload>,
    // Dropped in this order: the uploads' folder is removed, then its bytes are given back.
    _dir: Option<TempDir>,
    _reserved: Vec<Reservation>,
}

/// A directory removed on drop (uploads of refused submissions leave nothing behind).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Bytes of `registry/incoming/` held for one file of a submission in progress
/// ([`Config::max_incoming`](super::Config::max_incoming)); given back on drop.
struct Reservation {
    counter: Arc<AtomicU64>,
    bytes: u64,
}

impl Reservation {
    /// Holds `bytes` of `counter` if the total stays within `max`.
    fn take(counter: &Arc<AtomicU64>, max: u64, bytes: u64) -> Option<Self> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| held.checked_add(bytes).filter(|t| *t <= max))
            .ok()
            .map(|_| Self { counter: counter.clone(), bytes })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Largest `role` part: a role name is 1-64 bytes (`catalog::repo::check_role_name`).
const MAX_ROLE_PART: u64 = 64;

/// Largest `metadata` part: the bound nodes put on a targets role file whose length the snapshot
/// does not sign, so the origin never takes a role its nodes would refuse.
const MAX_METADATA_PART: u64 = catalog::client::TARGETS_MAX_LENGTH;

/// `POST /v1/submissions`: the answer is `{"accepted", "role", "version", "snapshot_version",
/// "timestamp_version"}`, a refusal `{"error", "reason"}`.
///
/// At most [`Config::max_concurrent_submissions`](super::Config::max_concurrent_submissions) are
/// read at once; one more is answered 429 `busy` before any of its body is read.
pub(crate) async fn submit(State(registry): State<Arc<Registry>>, request: Request) -> Response {
    let result = async {
        let _slot = registry.submission_slots.clone().try_acquire_owned().map_err(|_| {
            ApiError::refused(
                StatusCode::TOO_MANY_REQUESTS,
                "busy",
                format!(
                    "the origin is reading {} submissions, as many as it takes at once (its \
                     --max-concurrent-submissions); try again shortly",
                    registry.config.max_concurrent_submissions
                ),
            )
        })?;
        // The multipart parser buffers whatever the body stream has ready; handing it one chunk
        // per poll keeps what it holds to about one chunk past what the reader took.
        let request =
            request.map(|body| Body::from_stream(OneChunkPerPoll { inner: body.into_data_stream(), yielded: false }));
        let multipart = Multipart::from_request(request, &()).await.map_err(|e| {
            ApiError::bad("bad_request", format!("not a multipart/form-data submission: {}", e.body_text()))
        })?;
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

/// A body stream that answers `Pending` (and wakes at once) after each chunk it yields, so a
/// consumer that reads "everything ready" takes one chunk at a time.
struct OneChunkPerPoll<S> {
    inner: S,
    yielded: bool,
}

impl<S: Stream + Unpin> Stream for OneChunkPerPoll<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.yielded {
            self.yielded = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let item = std::task::ready!(Pin::new(&mut self.inner).poll_next(cx));
        self.yielded = item.is_some();
        Poll::Ready(item)
    }
}

/// A multipart error: 413 when the body is over the route's limit, 400 otherwise.
fn bad_part(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the submission is larger than the origin takes (its --max-submission-mib): {e}"),
        )
    } else {
        ApiError::bad("bad_request", format!("multipart: {e}"))
    }
}

/// The next part, which must be named `name` (the order is `role`, `metadata`, then the files).
async fn expect_part<'a>(multipart: &'a mut Multipart, name: &str, after: &str) -> Result<Field<'a>, ApiError> {
    match multipart.next_field().await.map_err(bad_part)? {
        Some(field) if field.name() == Some(name) => Ok(field),
        Some(field) => Err(ApiError::bad(
            "bad_order",
            format!(
                "expected the `{name}` part {after}, got `{}`; the parts are `role`, `metadata`, then the files",
                field.name().unwrap_or("")
            ),
        )),
        None => Err(ApiError::bad("bad_request", format!("missing the `{name}` part"))),
    }
}

/// The bytes of a part, read chunk by chunk and refused (413) as soon as they pass `cap`: no
/// more than `cap` bytes of it are ever held.
async fn read_capped(field: &mut Field<'_>, name: &str, cap: u64, what: &str) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_part)? {
        if (out.len() + chunk.len()) as u64 > cap {
            return Err(ApiError::refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the `{name}` part is longer than {cap} bytes, {what}"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Reads a submission part by part: `role`, then `metadata`, which must be signed by the key(s)
/// the served delegations give that role ([`check_signed`]) before any file part is read; then
/// each file, streamed to `registry/incoming/<random>/` and bounded by the length the verified
/// metadata signs for it.
async fn read_submission(registry: &Registry, mut multipart: Multipart) -> Result<Submission, ApiError> {
    let mut field = expect_part(&mut multipart, "role", "first").await?;
    let role = read_capped(&mut field, "role", MAX_ROLE_PART, "the longest role name").await?;
    drop(field);
    let role = String::from_utf8(role).map_err(|_| ApiError::bad("bad_request", "the `role` part is not UTF-8"))?;
    let mut field = expect_part(&mut multipart, "metadata", "after `role`").await?;
    let metadata = read_capped(
        &mut field,
        "metadata",
        MAX_METADATA_PART,
        "the largest targets metadata nodes accept without a signed length",
    )
    .await?;
    drop(field);
    let signed = check_signed(registry, &role, &metadata)?;

    let mut files = BTreeMap::new();
    let mut dir = None;
    let mut reserved = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(bad_part)? {
        if field.name() != Some("file") {
            return Err(ApiError::bad(
                "bad_order",
                format!(
                    "unexpected part `{}` after the metadata; the parts are `role`, `metadata`, then the files",
                    field.name().unwrap_or("")
                ),
            ));
        }
        let path = field
            .file_name()
            .map(str::to_owned)
            .ok_or_else(|| ApiError::bad("bad_request", "a `file` part needs a filename (its target path)"))?;
        let target = signed.signed.targets.get(&path).ok_or_else(|| {
            ApiError::bad("file_not_in_metadata", format!("`{path}` is not a target of the submitted metadata"))
        })?;
        if files.contains_key(&path) {
            return Err(ApiError::bad("duplicate_file", format!("`{path}` is uploaded twice")));
        }
        let max = registry.config.max_incoming;
        let reservation = Reservation::take(&registry.incoming_reserved, max, target.length).ok_or_else(|| {
            ApiError::refused(
                StatusCode::INSUFFICIENT_STORAGE,
                "incoming_full",
                format!(
                    "`{path}` ({} bytes) does not fit in the {max} bytes the origin keeps for submissions in \
                     progress (its --max-incoming-mib); try again later",
                    target.length
                ),
            )
        })?;
        reserved.push(reservation);
        let dir = match &dir {
            Some(TempDir(dir)) => dir.clone(),
            None => {
                let path = registry.config.data.join("registry/incoming").join(format!("{:016x}", super::rand_u64()));
                tokio::fs::create_dir_all(&path).await.map_err(ApiError::internal)?;
                dir = Some(TempDir(path.clone()));
                path
            }
        };
        let temp = dir.join(format!("{}", files.len()));
        let mut out = tokio::fs::File::create(&temp).await.map_err(ApiError::internal)?;
        let (mut sha, mut sha512, mut b3) = (sha2::Sha256::new(), sha2::Sha512::new(), blake3::Hasher::new());
        let mut length = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(bad_part)? {
            length += chunk.len() as u64;
            if length > target.length {
                return Err(ApiError::bad(
                    "file_too_large",
                    format!("`{path}` is longer than the {} bytes its metadata signs", target.length),
                ));
            }
            sha.update(&chunk);
            sha512.update(&chunk);
            b3.update(&chunk);
            out.write_all(&chunk).await.map_err(ApiError::internal)?;
        }
        out.sync_all().await.map_err(ApiError::internal)?;
        let upload = Upload {
            temp,
            length,
            sha256: hex::encode(sha.finalize()),
            sha512: hex::encode(sha512.finalize()),
            blake3: b3.finalize().to_hex().to_string(),
        };
        files.insert(path, upload);
    }
    Ok(Submission { role, metadata, files, _dir: dir, _reserved: reserved })
}

/// The submitted metadata, parsed and checked against the served delegations before any file is
/// read: the role is delegated (403 `unknown_publisher`) and not retired or revoked (403
/// `publisher_key_retired`), signed by a threshold of its keys (TUF
/// 1.0 §5.6.3 from the repository side; 403 `bad_signature_or_metadata`) and newer than the
/// served version (409 `version_not_increasing`), and gives every target's SHA-256 as a digest
/// (400 `bad_target_hash`). [`apply_submission`] checks it all again, and the rest, under the
/// write lock against the repository on disk.
fn check_signed(registry: &Registry, role: &str, metadata: &[u8]) -> Result<SignedMetadata<Targets>, ApiError> {
    let md = SignedMetadata::<Targets>::from_slice(metadata, role)
        .map_err(|e| ApiError::bad("bad_metadata", e.to_string()))?;
    let roles =
        registry.cache.0.read().map_err(|_| ApiError::internal(anyhow::anyhow!("cache lock poisoned")))?.roles.clone();
    let unknown = || ApiError::from(catalog::repo::RepoError::UnknownPublisher(role.to_owned()));
    let delegations = roles.delegations.as_ref().ok_or_else(unknown)?;
    let delegation = delegations.roles.iter().flatten().find(|r| r.name == role).ok_or_else(unknown)?;
    // A rotated or revoked role accepts nothing more (403 `publisher_key_retired`, naming the
    // role that continues it).
    if let Some(state) = catalog::keylife::RoleKeyState::of(delegation) {
        return Err(ApiError::from(catalog::repo::RepoError::Retired { role: role.into(), state }));
    }
    md.verify_role(role, &delegations.keys, &delegation.keyids, delegation.threshold)
        .map_err(|e| ApiError::from(catalog::repo::RepoError::Metadata(e)))?;
    let current = roles.versions.get(&format!("{}.json", catalog::client::encode_role_name(role))).copied();
    let current = current.unwrap_or(0);
    if md.signed.version <= current {
        return Err(ApiError::from(catalog::repo::RepoError::VersionNotIncreasing {
            role: role.into(),
            current,
            new: md.signed.version,
        }));
    }
    // Each target's file is received and stored under a name made from its SHA-256: only a real
    // digest may name one (400 `bad_target_hash`).
    catalog::repo::check_target_hashes(&md.signed)?;
    Ok(md)
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
