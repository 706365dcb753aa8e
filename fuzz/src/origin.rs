//! The origin side: a repository folder as `archy repo init` and `archy repo add-publisher`
//! make it (role [`ROLE`] delegated to the publisher's DID for app [`APP`]), opened as a
//! [`Registry`] and served by its real router on a tokio runtime; and the inputs of the
//! `submission` target, a `POST /v1/submissions` each.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use catalog::metadata::{SignedMetadata, Targets};
use catalog::repo::consistent_target_path;
use catalog::testing::TestKeys;
use chrono::{TimeZone as _, Utc};
use registry::server::{Config, Registry};
use tower::ServiceExt as _;

use crate::nostr::{APP, PUBLISHER};

/// The publisher's role at the origin.
pub const ROLE: &str = "acme";

/// Expiry of the seeds' publisher metadata (2036-01-01), far enough that the committed seeds
/// stay valid: a publisher chooses it, the origin takes any.
pub fn seed_expiry() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2036, 1, 1, 0, 0, 0).single().expect("a valid date")
}

/// An origin folder and the registry serving it.
struct Served {
    dir: tempfile::TempDir,
    registry: Arc<Registry>,
}

impl Served {
    /// A fresh origin: the fixed keys of `catalog::testing`, the publisher delegated, no
    /// submission yet.
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let keys = TestKeys::fixed();
        let now = Utc::now();
        let mut repo = keys.init_folder(dir.path(), now);
        repo.add_publisher(ROLE, &PUBLISHER.did.did(), &[APP], &keys.targets, now).expect("add the publisher");
        keys.publish(&mut repo, now);
        repo.write_dir(&dir.path().join("repository")).expect("write the repository");
        let mut config = Config::new(dir.path().to_owned());
        config.iroh = None;
        let registry = Arc::new(Registry::open(config).expect("open the origin"));
        Self { dir, registry }
    }
}

/// The origin every input is sent to, on a current-thread runtime.
pub struct Origin {
    runtime: tokio::runtime::Runtime,
    served: Mutex<Served>,
}

static ORIGIN: LazyLock<Origin> = LazyLock::new(|| Origin {
    runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime"),
    served: Mutex::new(Served::new()),
});

impl Origin {
    /// The origin of this process.
    pub fn get() -> &'static Self {
        &ORIGIN
    }

    /// Sends a submission through the registry's router: `(status, body)`. The body is handed
    /// to the server in chunks of `chunk` bytes (`None`: in one piece).
    pub fn submit(&self, content_type: Option<&[u8]>, body: &[u8], chunk: Option<usize>) -> (StatusCode, Vec<u8>) {
        let registry = self.served.lock().expect("origin lock").registry.clone();
        let chunks: Vec<Result<Bytes, std::io::Error>> = match chunk {
            Some(n) => body.chunks(n).map(|c| Ok(Bytes::copy_from_slice(c))).collect(),
            None => vec![Ok(Bytes::copy_from_slice(body))],
        };
        let mut request = Request::post("/v1/submissions");
        if let Some(value) = content_type.and_then(|v| header::HeaderValue::from_bytes(v).ok()) {
            request = request.header(header::CONTENT_TYPE, value);
        }
        let request =
            request.body(Body::from_stream(n0_future::stream::iter(chunks))).expect("a request to a fixed path");
        self.runtime.block_on(async {
            let response = registry::server::router(registry).oneshot(request).await.expect("the router is infallible");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("a response body");
            (status, body.to_vec())
        })
    }

    /// The entries of the origin's `registry/incoming/` (where files of submissions in progress
    /// are received).
    pub fn incoming(&self) -> Vec<PathBuf> {
        let dir = self.served.lock().expect("origin lock").dir.path().join("registry/incoming");
        match std::fs::read_dir(&dir) {
            Ok(entries) => entries.map(|e| e.expect("an entry of registry/incoming").path()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("reading {}: {e}", dir.display()),
        }
    }

    /// After an accepted submission: every target of the role's new metadata is a file inside
    /// `repository/targets/`, at its consistent path, holding the bytes the metadata signs (what
    /// nodes will fetch).
    fn check_stored(&self, answer: &serde_json::Value) {
        let role = answer["role"].as_str().expect("an acceptance names the role");
        let version = answer["version"].as_u64().expect("an acceptance names the version");
        let repository = self.served.lock().expect("origin lock").dir.path().join("repository");
        let name = format!("{version}.{}.json", catalog::client::encode_role_name(role));
        let bytes = std::fs::read(repository.join("metadata").join(&name)).expect("the accepted metadata is written");
        let md = SignedMetadata::<Targets>::from_slice(&bytes, role).expect("the accepted metadata parses");
        for (path, file) in &md.signed.targets {
            let stored = consistent_target_path(path, file);
            let plain = stored.split('/').all(|p| !p.is_empty() && !p.starts_with('.') && !p.contains('\\'));
            assert!(plain, "`{path}` is stored at `{stored}`, which is not a plain path under targets/");
            let bytes = std::fs::read(repository.join("targets").join(&stored))
                .unwrap_or_else(|e| panic!("`{path}` is listed but `targets/{stored}` can't be read: {e}"));
            if let Err(e) = file.verify_bytes(&bytes) {
                panic!("`targets/{stored}` does not hold the bytes `{path}` signs: {e}");
            }
        }
    }

    /// Replaces the origin by a fresh one (after an accepted submission, so the next input
    /// meets the same state).
    pub fn reset(&self) {
        *self.served.lock().expect("origin lock") = Served::new();
    }
}

/// The boundary of the seeds' bodies.
pub const BOUNDARY: &str = "archy-boundary";

/// One input of the `submission` target, as the target reads it from the fuzzer's bytes:
/// a flags byte, the `Content-Type` value up to the first `\n`, then the body.
///
/// Flags: bit 0 set, the `metadata` part is signed again by the publisher's key before it is
/// sent ([`resign`]); bits 1–7, the size of the chunks the body is handed over in (0: one
/// piece).
#[derive(Debug)]
pub struct Input<'a> {
    /// Whether the metadata part is signed again.
    pub resign: bool,
    /// Chunk size of the body stream.
    pub chunk: Option<usize>,
    /// The `Content-Type` header value.
    pub content_type: &'a [u8],
    /// The request body.
    pub body: &'a [u8],
}

impl<'a> Input<'a> {
    /// Splits the fuzzer's bytes.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let (&flags, rest) = data.split_first()?;
        let newline = rest.iter().position(|&b| b == b'\n')?;
        let chunk = usize::from(flags >> 1);
        Some(Self {
            resign: flags & 1 == 1,
            chunk: (chunk > 0).then_some(chunk),
            content_type: &rest[..newline],
            body: &rest[newline + 1..],
        })
    }

    /// The fuzzer's bytes of an input.
    pub fn encode(&self) -> Vec<u8> {
        let chunk = u8::try_from(self.chunk.unwrap_or(0)).ok().filter(|c| *c < 128).expect("a chunk size below 128");
        let mut out = vec![(chunk << 1) | u8::from(self.resign)];
        out.extend_from_slice(self.content_type);
        out.push(b'\n');
        out.extend_from_slice(self.body);
        out
    }
}

/// A multipart body with `parts` as `(Content-Disposition, bytes)`, as the publisher sends it.
pub fn multipart(boundary: &str, parts: &[(String, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (disposition, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// The publisher's first targets metadata listing `files` (path, bytes), signed by its key: what
/// `archy publish` sends for a fresh origin.
pub fn first_metadata(files: &[(&str, &[u8])]) -> Vec<u8> {
    let keys = TestKeys::fixed();
    let now = Utc::now();
    let mut repo = keys.create(now);
    repo.add_publisher(ROLE, &PUBLISHER.did.did(), &[APP], &keys.targets, now).expect("add the publisher");
    let kind = |path: &str| if path.starts_with("apps/") { "manifest" } else { "image" };
    let listed = files.iter().map(|(path, bytes)| ((*path).to_owned(), catalog::repo::target_file(bytes, kind(path))));
    let mut next = repo.next_publisher_targets(ROLE, listed, now).expect("files in the publisher's paths");
    next.expires = seed_expiry();
    SignedMetadata::sign(next, &[&PUBLISHER.did]).expect("sign").to_bytes()
}

/// The span of the content of the first part whose headers hold `name="<name>"`.
fn part_content(body: &[u8], name: &str) -> Option<(usize, usize)> {
    let needle = format!("name=\"{name}\"");
    let at = find(body, needle.as_bytes(), 0)?;
    let start = find(body, b"\r\n\r\n", at)? + 4;
    let end = find(body, b"\r\n--", start)?;
    Some((start, end))
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// The `(filename, content)` of every part with a `filename="…"` in its headers.
fn file_parts(body: &[u8]) -> Vec<(String, &[u8])> {
    let mut files = Vec::new();
    let mut at = 0;
    while let Some(name) = find(body, b"filename=\"", at).map(|p| p + b"filename=\"".len()) {
        let Some(quote) = find(body, b"\"", name) else { break };
        let Some(start) = find(body, b"\r\n\r\n", quote).map(|p| p + 4) else { break };
        let Some(end) = find(body, b"\r\n--", start) else { break };
        files.push((String::from_utf8_lossy(&body[name..quote]).into_owned(), &body[start..end]));
        at = end;
    }
    files
}

/// Lists `bytes` as the content of `path` in `targets` (length, SHA-256, BLAKE3), if `path` is
/// one of its targets.
fn relist(targets: &mut Targets, path: &str, bytes: &[u8]) {
    let Some(file) = targets.targets.get_mut(path) else { return };
    let fresh = catalog::repo::target_file(bytes, "");
    file.length = fresh.length;
    file.hashes.extend(fresh.hashes);
    let archy = file.custom.as_mut().and_then(|c| c.get_mut("archy")).and_then(serde_json::Value::as_object_mut);
    if let Some(archy) = archy {
        archy.insert("blake3".into(), blake3::hash(bytes).to_hex().to_string().into());
    }
}

/// `body` with its `metadata` part signed again by the publisher's key, as `archy publish`
/// signs it, when that part parses as targets metadata (for the role the `role` part names);
/// otherwise `body` unchanged. Before signing, each uploaded file the metadata lists is listed
/// with its length and hashes as uploaded. This lets changes to the metadata and to the files
/// reach the checks after the signature and the hashes (the manifest checks of
/// `apply_submission`).
pub fn resign(body: &[u8]) -> Vec<u8> {
    let role = part_content(body, "role").map_or(ROLE.as_bytes(), |(s, e)| &body[s..e]);
    let role = String::from_utf8_lossy(role);
    let Some((start, end)) = part_content(body, "metadata") else { return body.to_vec() };
    let Ok(mut md) = SignedMetadata::<Targets>::from_slice(&body[start..end], &role) else { return body.to_vec() };
    for (path, bytes) in file_parts(body) {
        relist(&mut md.signed, &path, bytes);
    }
    let Ok(signed) = SignedMetadata::sign(md.signed, &[&PUBLISHER.did]) else { return body.to_vec() };
    let mut out = body[..start].to_vec();
    out.extend_from_slice(&signed.to_bytes());
    out.extend_from_slice(&body[end..]);
    out
}

/// One input of the `submission` target: sends it and asserts what must hold of the answer.
/// Every answer is a refusal (4xx, or 507 `incoming_full`, the documented answer when a file
/// does not fit in the bytes kept for submissions in progress) or an acceptance, never a
/// failure of the origin (500); a refusal has `{"error", "reason"}`; nothing is left in
/// `registry/incoming/` after the answer; after an acceptance every target the role lists is
/// stored in `targets/` with the bytes it signs. Then the origin is replaced by a fresh
/// one, so each input meets the same state. `None` for bytes that are no input.
pub fn submission(data: &[u8]) -> Option<(StatusCode, serde_json::Value)> {
    let input = Input::parse(data)?;
    let body = if input.resign { resign(input.body) } else { input.body.to_vec() };
    let origin = Origin::get();
    let (status, answer) = origin.submit(Some(input.content_type), &body, input.chunk);
    let answer: serde_json::Value = serde_json::from_slice(&answer)
        .unwrap_or_else(|e| panic!("{status}: the answer is not JSON ({e}): {}", String::from_utf8_lossy(&answer)));
    if status == StatusCode::OK {
        assert_eq!(answer["accepted"], true, "{answer}");
    } else {
        let full = status == StatusCode::INSUFFICIENT_STORAGE && answer["error"] == "incoming_full";
        assert!(status.is_client_error() || full, "{status}: {answer}");
        assert!(answer["error"].is_string() && answer["reason"].is_string(), "{status}: {answer}");
    }
    let left = origin.incoming();
    assert!(left.is_empty(), "{status} {answer}: registry/incoming/ holds {left:?}");
    if status == StatusCode::OK {
        origin.check_stored(&answer);
        origin.reset();
    }
    Some((status, answer))
}
