//! `POST /v1/submissions` and `GET /v1/publishers/<did>`: a publisher's signed role metadata and
//! its files land in the catalog, and a manifest placed where the catalog's placement rule
//! forbids is refused with a reason.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use catalog::keys::SigningKey;
use catalog::metadata::SignedMetadata;
use catalog::repo::{Expiry, Repository};
use registry::server::Registry;
use serde_json::Value;

use crate::util::{call, envelope, origin};

/// Submits `files` as the next version of `role`, signed by `key`: `(status, JSON body)`.
async fn submit(
    registry: &Arc<Registry>,
    dir: &std::path::Path,
    role: &str,
    key: &SigningKey,
    files: &[(&str, Vec<u8>)],
) -> (StatusCode, Value) {
    let repo = Repository::load(&dir.join("repository"), Expiry::default()).unwrap();
    let listed = files.iter().map(|(path, bytes)| ((*path).to_owned(), catalog::repo::target_file(bytes, "manifest")));
    let next = repo.next_publisher_targets(role, listed, chrono::Utc::now()).unwrap();
    let metadata = SignedMetadata::sign(next, &[key]).unwrap().to_bytes();

    let boundary = "archy-test-boundary";
    let mut body = Vec::new();
    let mut part = |disposition: String, bytes: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    };
    part("form-data; name=\"role\"".into(), role.as_bytes());
    part("form-data; name=\"metadata\"".into(), &metadata);
    for (path, bytes) in files {
        part(format!("form-data; name=\"file\"; filename=\"{path}\""), bytes);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let request = Request::post("/v1/submissions")
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from(body))
        .unwrap();
    let (status, body) = call(registry, request).await;
    (status, serde_json::from_slice(&body).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body))))
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
