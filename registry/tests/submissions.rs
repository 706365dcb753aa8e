//! `POST /v1/submissions` and `GET /v1/publishers/<did>`: a publisher's signed role metadata and
//! its files land in the catalog, and a manifest placed where the catalog's placement rule
//! forbids is refused with a reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use catalog::keys::SigningKey;
use catalog::metadata::{SignedMetadata, TargetFile};
use catalog::repo::{Expiry, Repository};
use registry::server::Registry;
use serde_json::Value;

use crate::util::{call, envelope, folder_size, origin, origin_with, post_submission};

/// Submits `files` as the next version of `role`, signed by `key`: `(status, JSON body)`.
async fn submit(
    registry: &Arc<Registry>,
    dir: &std::path::Path,
    role: &str,
    key: &SigningKey,
    files: &[(&str, Vec<u8>)],
) -> (StatusCode, Value) {
    submit_described(registry, dir, role, key, files, |bytes| catalog::repo::target_file(bytes, "manifest")).await
}

/// [`submit`] with each file listed as `describe` describes its bytes.
async fn submit_described(
    registry: &Arc<Registry>,
    dir: &std::path::Path,
    role: &str,
    key: &SigningKey,
    files: &[(&str, Vec<u8>)],
    describe: impl Fn(&[u8]) -> TargetFile,
) -> (StatusCode, Value) {
    let repo = Repository::load(&dir.join("repository"), Expiry::default()).unwrap();
    let listed = files.iter().map(|(path, bytes)| ((*path).to_owned(), describe(bytes)));
    let next = repo.next_publisher_targets(role, listed, chrono::Utc::now()).unwrap();
    let metadata = SignedMetadata::sign(next, &[key]).unwrap().to_bytes();
    post_submission(registry, role, &metadata, files).await
}

async fn get(registry: &Arc<Registry>, path: &str) -> (StatusCode, Vec<u8>) {
    call(registry, Request::get(path).body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn a_signed_submission_lands_in_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let registry = origin(dir.path(), &[("acme", &key.did(), &["notes"])]);

    let files = [("apps/notes/1.0.0.json", envelope(&key, "notes", "1.0.0"))];
    let (status, answer) = submit(&registry, dir.path(), "acme", &key, &files).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!((&answer["accepted"], &answer["role"], &answer["version"]), (&true.into(), &"acme".into(), &1.into()));

    let (status, _) = get(&registry, "/metadata/1.acme.json").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get(&registry, &format!("/v1/publishers/{}", key.did())).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["role"], "acme", "{body}");
    assert_eq!(body["current"]["signed"]["version"], 1, "{body}");
}

#[tokio::test]
async fn a_manifest_at_the_path_of_another_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let registry = origin(dir.path(), &[("acme", &key.did(), &["notes"])]);

    let files = [("apps/notes/2.0.0.json", envelope(&key, "notes", "1.0.0"))];
    let (status, body) = submit(&registry, dir.path(), "acme", &key, &files).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "bad_manifest", "{body}");
    assert!(body["reason"].as_str().unwrap().contains("its path must be `apps/notes/1.0.0.json`"), "{body}");
    let (status, _) = get(&registry, "/metadata/1.acme.json").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was written");
}

#[tokio::test]
async fn a_manifest_by_another_publisher_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let registry = origin(dir.path(), &[("acme", &key.did(), &["notes"])]);

    // acme signs its role, but the manifest in it is someone else's.
    let other = SigningKey::generate();
    let files = [("apps/notes/1.0.0.json", envelope(&other, "notes", "1.0.0"))];
    let (status, body) = submit(&registry, dir.path(), "acme", &key, &files).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "wrong_publisher", "{body}");
    assert!(body["reason"].as_str().unwrap().contains("not by the key of role `acme`"), "{body}");
}

#[tokio::test]
async fn an_upload_is_checked_against_every_hash_nodes_will_check() {
    // SHA-256 and BLAKE3 match in each case; nodes verify every listed hash (one of an algorithm
    // they don't know fails) and archy's BLAKE3, so each listing would be a file no node takes.
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let registry = origin(dir.path(), &[("acme", &key.did(), &["notes"])]);
    let files = [("apps/notes/1.0.0.json", envelope(&key, "notes", "1.0.0"))];
    let wrong = "ab".repeat(32);
    type Spoil = fn(&mut TargetFile, &str);
    let cases: [(&str, Spoil); 4] = [
        ("an unknown algorithm", |f, _| drop(f.hashes.insert("shna256".into(), "00".into()))),
        ("a wrong SHA-512", |f, wrong| drop(f.hashes.insert("sha512".into(), wrong.repeat(2).into()))),
        ("a hash that is no string", |f, _| drop(f.hashes.insert("sha512".into(), 7.into()))),
        ("a wrong archy BLAKE3 beside a right one", |f, wrong| {
            let b3 = hex::encode(f.blake3().unwrap());
            f.hashes.insert("blake3".into(), b3.into());
            f.custom = Some(serde_json::json!({"archy": {"blake3": wrong, "kind": "manifest"}}));
        }),
    ];
    for (case, spoil) in cases {
        let describe = |bytes: &[u8]| {
            let mut file = catalog::repo::target_file(bytes, "manifest");
            spoil(&mut file, &wrong);
            file
        };
        let (status, body) = submit_described(&registry, dir.path(), "acme", &key, &files, describe).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
        assert_eq!(body["error"], "hash_mismatch", "{case}: {body}");
    }
    // A right SHA-512 is checked and taken.
    let describe = |bytes: &[u8]| {
        let mut file = catalog::repo::target_file(bytes, "manifest");
        file.hashes.insert("sha512".into(), catalog::hash::digest_hex("sha512", bytes).unwrap().into());
        file
    };
    let (status, body) = submit_described(&registry, dir.path(), "acme", &key, &files, describe).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_target_whose_sha256_is_not_a_sha256_is_refused_and_no_file_is_looked_up_by_it() {
    // The origin keeps a target as `targets/<dir>/<sha256>.<name>`. Once the publisher's folders
    // exist under `targets/`, these "hashes" name files outside it that exist (the origin's
    // timestamp key, its metadata), so a listing without an upload would pass as a file already
    // stored, or be read as a manifest.
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let registry = origin(dir.path(), &[("acme", &key.did(), &["notes"])]);
    let files = [
        ("apps/notes/1.0.0.json", envelope(&key, "notes", "1.0.0")),
        ("images/notes/notes.tar", b"an image archive".to_vec()),
    ];
    let (status, body) = submit(&registry, dir.path(), "acme", &key, &files).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let boundary = "archy-test-boundary";
    for (path, sha256) in [
        ("images/notes/key", "../../../../keys/timestamp"),
        ("apps/notes/json", "../../../../repository/metadata/timestamp"),
        ("images/notes/notes-2.tar", ""),
        ("images/notes/notes-2.tar", &"ab".repeat(31)),
    ] {
        let repo = Repository::load(&dir.path().join("repository"), Expiry::default()).unwrap();
        let mut file = catalog::repo::target_file(b"any bytes", "image");
        file.hashes.insert("sha256".into(), sha256.into());
        let next = repo.next_publisher_targets("acme", [(path.to_owned(), file)], chrono::Utc::now()).unwrap();
        let metadata = SignedMetadata::sign(next, &[&key]).unwrap().to_bytes();
        let mut body = part_head(boundary, "form-data; name=\"role\"");
        body.extend_from_slice(b"acme\r\n");
        body.extend(part_head(boundary, "form-data; name=\"metadata\""));
        body.extend_from_slice(&metadata);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let (status, body) = call(&registry, multipart_request(boundary, Body::from(body))).await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {sha256:?}: {body}");
        assert_eq!(body["error"], "bad_target_hash", "{path} {sha256:?}: {body}");
        assert!(body["reason"].as_str().unwrap().contains(path), "{body}");
    }
    let (status, _) = get(&registry, "/metadata/2.acme.json").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was written");
}

#[tokio::test]
async fn publishers_are_looked_up_by_their_did() {
    let dir = tempfile::tempdir().unwrap();
    let registry = origin(dir.path(), &[]);
    let (status, body) = get(&registry, "/v1/publishers/not-a-did").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["error"], "bad_request");
    let (status, body) = get(&registry, &format!("/v1/publishers/{}", SigningKey::generate().did())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["error"], "unknown_publisher");
}

// ---- Intake limits: what the origin reads, holds and stores before a submission is accepted.

/// One multipart part's head.
fn part_head(boundary: &str, disposition: &str) -> Vec<u8> {
    format!("--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n").into_bytes()
}

/// The metadata of `role`'s next version listing `images/notes/big.tar` with a signed length of
/// `length` bytes (none of which the test holds), signed by `keys` (none: unsigned).
fn claiming(dir: &std::path::Path, role: &str, length: u64, keys: &[&SigningKey]) -> Vec<u8> {
    let repo = Repository::load(&dir.join("repository"), Expiry::default()).unwrap();
    let mut file = catalog::repo::target_file(b"a placeholder", "image");
    file.length = length;
    let next =
        repo.next_publisher_targets(role, [("images/notes/big.tar".to_owned(), file)], chrono::Utc::now()).unwrap();
    SignedMetadata::sign(next, keys).unwrap().to_bytes()
}

/// A request body made of `head` and then `endless` bytes of spaces, generated as they are read;
/// `produced` counts what the server pulled.
fn generated_body(head: Vec<u8>, endless: u64, produced: Arc<AtomicU64>) -> Body {
    const CHUNK: usize = 64 * 1024;
    let stream = n0_future::stream::unfold((Some(head), endless), move |(head, left)| {
        let produced = produced.clone();
        async move {
            let chunk = match head {
                Some(head) => bytes::Bytes::from(head),
                None if left == 0 => return None,
                None => bytes::Bytes::from(vec![b' '; CHUNK.min(left as usize)]),
            };
            produced.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            let left = left - if chunk.first() == Some(&b' ') { chunk.len() as u64 } else { 0 };
            Some((Ok::<_, std::io::Error>(chunk), (None, left)))
        }
    });
    Body::from_stream(stream)
}

fn multipart_request(boundary: &str, body: Body) -> Request<Body> {
    Request::post("/v1/submissions")
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .unwrap()
}

#[tokio::test]
async fn a_submission_not_signed_by_the_delegated_key_is_refused_before_its_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let registry = origin(dir.path(), &[("acme", &key.did(), &["notes"])]);
    let incoming = dir.path().join("registry/incoming");
    let boundary = "archy-test-boundary";
    const GIB: u64 = 1 << 30;

    let stranger = SigningKey::generate();
    for (case, keys) in [("unsigned", vec![]), ("signed by a key not delegated to acme", vec![&stranger])] {
        let metadata = claiming(dir.path(), "acme", GIB, &keys);
        let mut head = part_head(boundary, "form-data; name=\"role\"");
        head.extend_from_slice(b"acme\r\n");
        head.extend(part_head(boundary, "form-data; name=\"metadata\""));
        head.extend_from_slice(&metadata);
        head.extend_from_slice(b"\r\n");
        head.extend(part_head(boundary, "form-data; name=\"file\"; filename=\"images/notes/big.tar\""));
        let head_len = head.len() as u64;
        let produced = Arc::new(AtomicU64::new(0));
        let request = multipart_request(boundary, generated_body(head, GIB, produced.clone()));

        let (status, body) = call(&registry, request).await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{case}: {body}");
        assert_eq!(body["error"], "bad_signature_or_metadata", "{case}: {body}");
        assert!(body["reason"].as_str().unwrap().contains("threshold is 1"), "{case}: {body}");
        // The 1 GiB file was not read (at most what was in flight with the metadata) and
        // nothing of it was written.
        let read = produced.load(Ordering::Relaxed);
        assert!(read < head_len + (1 << 20), "{case}: the origin read {read} bytes");
        assert_eq!(folder_size(&incoming), 0, "{case}: registry/incoming/ holds bytes");
    }
    let (status, _) = get(&registry, "/metadata/1.acme.json").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was written");
}

#[tokio::test]
async fn a_file_part_before_the_metadata_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let registry = origin(dir.path(), &[("acme", &key.did(), &["notes"])]);
    let boundary = "archy-test-boundary";
    let mut body = part_head(boundary, "form-data; name=\"role\"");
    body.extend_from_slice(b"acme\r\n");
    body.extend(part_head(boundary, "form-data; name=\"file\"; filename=\"images/notes/big.tar\""));
    body.extend_from_slice(b"bytes before any signature\r\n");
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let (status, body) = call(&registry, multipart_request(boundary, Body::from(body))).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "bad_order", "{body}");
    assert!(body["reason"].as_str().unwrap().contains("`role`, `metadata`, then the files"), "{body}");
    assert_eq!(folder_size(&dir.path().join("registry/incoming")), 0);
}

#[tokio::test]
async fn a_file_beyond_the_incoming_reserve_is_refused_with_507_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let registry = origin_with(dir.path(), &[("acme", &key.did(), &["notes"])], |c| c.max_incoming = 4096);
    let envelope = envelope(&key, "notes", "1.0.0");
    assert!(envelope.len() < 4096);
    let archive = vec![7u8; 8192];
    let files = [("apps/notes/1.0.0.json", envelope.clone()), ("images/notes/notes.tar", archive)];
    let (status, body) = submit(&registry, dir.path(), "acme", &key, &files).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["error"], "incoming_full", "{body}");
    assert!(body["reason"].as_str().unwrap().contains("--max-incoming-mib"), "{body}");
    assert_eq!(folder_size(&dir.path().join("registry/incoming")), 0, "the envelope already received is removed");

    // The reserve was given back: a submission that fits lands.
    let (status, body) = submit(&registry, dir.path(), "acme", &key, &files[..1]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(folder_size(&dir.path().join("registry/incoming")), 0);
}

#[tokio::test]
async fn submissions_beyond_the_concurrency_cap_are_answered_429() {
    const CAP: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let registry = origin_with(dir.path(), &[("acme", &key.did(), &["notes"])], |c| c.max_concurrent_submissions = CAP);
    let boundary = "archy-test-boundary";

    // CAP submissions whose bodies never arrive hold every slot.
    let mut held = Vec::new();
    for _ in 0..CAP {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
        let stream = n0_future::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
        let request = multipart_request(boundary, Body::from_stream(stream));
        let reg = registry.clone();
        held.push((tx, tokio::spawn(async move { call(&reg, request).await })));
    }
    loop {
        let (_, metrics) = get(&registry, "/metrics").await;
        if String::from_utf8(metrics).unwrap().contains(&format!("archy_registry_submissions_in_flight {CAP}\n")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    for _ in 0..2 {
        let files = [("apps/notes/1.0.0.json", envelope(&key, "notes", "1.0.0"))];
        let (status, body) = submit(&registry, dir.path(), "acme", &key, &files).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"], "busy", "{body}");
        assert!(body["reason"].as_str().unwrap().contains("--max-concurrent-submissions"), "{body}");
    }

    // The held bodies end cut short: those submissions are refused and their slots come back.
    for (tx, task) in held {
        drop(tx);
        let (status, _) = task.await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let files = [("apps/notes/1.0.0.json", envelope(&key, "notes", "1.0.0"))];
    let (status, body) = submit(&registry, dir.path(), "acme", &key, &files).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// `archy-registry serve` on a repository folder, killed on drop.
struct Served {
    child: std::process::Child,
    http: String,
}

impl Served {
    fn start(dir: &std::path::Path) -> Self {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_archy-registry"))
            .args(["serve", "--data"])
            .arg(dir)
            .args(["--http", "127.0.0.1:0", "--no-iroh"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut served = Self { child, http: String::new() };
        // Started once it has written its endpoint file.
        while served.http.is_empty() {
            if let Some(status) = served.child.try_wait().unwrap() {
                panic!("archy-registry exited: {status}");
            }
            match registry::server::read_listening(dir) {
                Ok(listening) => served.http = listening.http,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        served
    }

    /// The process's peak resident memory (`VmHWM`), in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_400_mib_metadata_part_gets_413_while_the_origin_holds_little() {
    use std::io::{Read as _, Write as _};
    const MIB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    crate::util::init_folder(dir.path(), &[("acme", &key.did(), &["notes"])]);
    let served = Served::start(dir.path());
    let before = served.peak_rss();

    let boundary = "archy-test-boundary";
    let mut head = part_head(boundary, "form-data; name=\"role\"");
    head.extend_from_slice(b"acme\r\n");
    head.extend(part_head(boundary, "form-data; name=\"metadata\""));
    let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
    let filler = 400 * MIB;
    let length = head.len() as u64 + filler + tail.len() as u64;
    let addr = served.http.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /v1/submissions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {length}\r\n\r\n"
    )
    .unwrap();
    // The 400 MiB are generated as they are sent, 64 KiB at a time; the writer stops when the
    // origin closes the connection.
    let mut writer = stream.try_clone().unwrap();
    let sent = std::thread::spawn(move || {
        let chunk = vec![b' '; 64 * 1024];
        let mut sent = 0u64;
        if writer.write_all(&head).is_err() {
            return sent;
        }
        while sent < filler {
            let n = chunk.len().min((filler - sent) as usize);
            if writer.write_all(&chunk[..n]).is_err() {
                return sent;
            }
            sent += n as u64;
        }
        let _ = writer.write_all(&tail);
        sent
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Read the status line, headers and JSON body (until the origin closes or the JSON ends).
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&answer);
        if let Some((_, body)) = text.split_once("\r\n\r\n")
            && body.trim_end().ends_with('}')
        {
            break;
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let sent = sent.join().unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let body: Value = serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1.trim()).unwrap();
    assert_eq!(body["error"], "too_large", "{body}");
    let cap = catalog::client::TARGETS_MAX_LENGTH;
    assert!(body["reason"].as_str().unwrap().contains(&format!("longer than {cap} bytes")), "{body}");
    assert!(sent < filler, "the origin read all {sent} bytes");

    let peak = served.peak_rss();
    let report = format!("the origin's peak RSS is {} MiB (it was {} MiB at start)", peak / MIB, before / MIB);
    // The figure, for `cargo test -p archy-registry --test tests a_400_mib -- --nocapture`.
    eprintln!("{report}; it read {} MiB of the {} MiB sent at it", sent / MIB, filler / MIB);
    assert!(peak < 200 * MIB && peak - before < 96 * MIB, "{report}");
    assert_eq!(folder_size(&dir.path().join("registry/incoming")), 0);
}

#[tokio::test]
async fn a_rotated_publishers_old_key_is_refused_and_its_new_role_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let old = SigningKey::generate();
    let registry = origin(dir.path(), &[("acme", &old.did(), &["notes"])]);
    let files = [("apps/notes/1.0.0.json", envelope(&old, "notes", "1.0.0"))];
    let (status, body) = submit(&registry, dir.path(), "acme", &old, &files).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The operator rotates the role (`archy repo rotate-publisher`).
    let new = SigningKey::generate();
    let served = dir.path().join("repository");
    let mut repo = Repository::load(&served, Expiry::default()).unwrap();
    let targets_key = crate::util::folder_key(dir.path(), "targets");
    let snapshot_key = crate::util::folder_key(dir.path(), "snapshot");
    let timestamp_key = crate::util::folder_key(dir.path(), "timestamp");
    let now = chrono::Utc::now();
    let role = repo.rotate_publisher("acme", &new.did(), None, false, &targets_key, now).unwrap();
    repo.snapshot_and_timestamp(&snapshot_key, &timestamp_key, now).unwrap();
    repo.write_dir(&served).unwrap();
    let registry = crate::util::open(dir.path(), |_| {});

    // The old key signs a next version of its role: refused before any file is read.
    let mut next = repo.delegated("acme").unwrap().clone();
    next.version += 1;
    let v2 = envelope(&old, "notes", "2.0.0");
    next.targets.insert("apps/notes/2.0.0.json".into(), catalog::repo::target_file(&v2, "manifest"));
    let metadata = SignedMetadata::sign(next, &[&old]).unwrap().to_bytes();
    let (status, body) = post_submission(&registry, "acme", &metadata, &[("apps/notes/2.0.0.json", v2)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "publisher_key_retired", "{body}");
    assert!(body["reason"].as_str().unwrap().contains("publish with the key of role `acme-2`"), "{body}");

    // The new key publishes the next version under the new role.
    let files = [("apps/notes/2.0.0.json", envelope(&new, "notes", "2.0.0"))];
    let (status, body) = submit(&registry, dir.path(), &role, &new, &files).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = get(&registry, &format!("/v1/publishers/{}", new.did())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["role"], "acme-2");
}
