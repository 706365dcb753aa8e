//! `POST /v1/blobs`: the origin hosts signed envelopes for Nostr announcements, and refuses
//! anything else with a reason. Requests go through the real router (`tower::ServiceExt::oneshot`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use catalog::envelope::MAX_ENVELOPE_BYTES;
use catalog::keys::SigningKey;
use registry::server::{BlobQuota, Config};
use serde_json::Value;

use crate::util::{call, envelope, folder_size, open, origin_with, registry};

/// An envelope of app `notes` at `version`, signed by a new publisher key.
fn envelope_by_anyone(version: &str) -> Vec<u8> {
    envelope(&SigningKey::generate(), "notes", version)
}

async fn post(registry: &Arc<registry::server::Registry>, body: Vec<u8>) -> (StatusCode, Value) {
    let request = Request::post("/v1/blobs")
        .header(header::HOST, "origin.test:8480")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let (status, body) = call(registry, request).await;
    (status, serde_json::from_slice(&body).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body))))
}

async fn get(registry: &Arc<registry::server::Registry>, path: &str) -> (StatusCode, Vec<u8>) {
    call(registry, Request::get(path).body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn a_verified_envelope_is_hosted_by_its_blake3() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let bytes = envelope_by_anyone("1.0.0");
    let hex = blake3::hash(&bytes).to_hex().to_string();

    let (status, answer) = post(&registry, bytes.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["blake3"], hex);
    assert_eq!(answer["size"], bytes.len());
    assert_eq!(answer["url"], format!("http://origin.test:8480/v1/blobs/{hex}"));
    assert_eq!(answer["iroh"], Value::Null, "no iroh endpoint, no ticket");
    assert_eq!(std::fs::read(dir.path().join("registry/envelopes").join(&hex)).unwrap(), bytes);

    let (status, served) = get(&registry, &format!("/v1/blobs/{hex}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, bytes);

    // The same bytes again: the same answer, stored once.
    let (status, again) = post(&registry, bytes).await;
    assert_eq!((status, again), (StatusCode::OK, answer));
}

#[tokio::test]
async fn bytes_that_are_not_an_envelope_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let (status, body) = post(&registry, b"{\"hello\":\"world\"}".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "not_an_envelope", "{body}");
    assert!(body["reason"].as_str().unwrap().contains("`archy_envelope` is not 1"), "{body}");

    let (status, body) = post(&registry, b"\x00\x01 not json".to_vec()).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &Value::from("not_an_envelope")), "{body}");
    assert!(body["reason"].as_str().unwrap().starts_with("malformed envelope"), "{body}");
    assert!(!dir.path().join("registry/envelopes").exists(), "nothing stored");
}

#[tokio::test]
async fn an_envelope_whose_signature_does_not_verify_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let mut tampered: Value = serde_json::from_slice(&envelope_by_anyone("1.0.0")).unwrap();
    tampered["manifest"]["title"] = "Not what was signed".into();
    let (status, body) = post(&registry, serde_json::to_vec(&tampered).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "bad_envelope", "{body}");
    assert!(body["reason"].as_str().unwrap().contains("does not verify over the manifest hash"), "{body}");

    // Signed by someone other than the manifest's publisher.
    let mut resigned: Value = serde_json::from_slice(&envelope_by_anyone("1.0.0")).unwrap();
    resigned["signature"] = serde_json::from_slice::<Value>(&envelope_by_anyone("1.0.0")).unwrap()["signature"].clone();
    let (status, body) = post(&registry, serde_json::to_vec(&resigned).unwrap()).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &Value::from("bad_envelope")), "{body}");
    assert!(body["reason"].as_str().unwrap().contains("does not verify"), "{body}");
    assert!(!dir.path().join("registry/envelopes").exists(), "nothing stored");
}

#[tokio::test]
async fn a_body_larger_than_an_envelope_may_be_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let (status, body) = post(&registry, vec![b' '; MAX_ENVELOPE_BYTES + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"], "too_large", "{body}");
    assert!(body["reason"].as_str().unwrap().contains(&MAX_ENVELOPE_BYTES.to_string()), "{body}");
}

#[tokio::test]
async fn unknown_and_malformed_blob_names_are_answered_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let (status, body) = get(&registry, &format!("/v1/blobs/{}", "ab".repeat(32))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["error"], "not_found");
    let (status, body) = get(&registry, "/v1/blobs/..%2F..%2Fkeys%2Ftimestamp.key").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["error"], "bad_request");
}

/// The envelopes stored under `registry/envelopes/`.
fn stored(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("registry/envelopes")) else { return Vec::new() };
    entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

#[tokio::test]
async fn blob_posts_from_fresh_dids_stop_at_the_total_quota() {
    let dir = tempfile::tempdir().unwrap();
    let size = envelope_by_anyone("1.0.0").len() as u64;
    // Room for five envelopes of this size (they differ by a few bytes at most).
    let max_bytes = 5 * size + size / 2;
    let quota = |c: &mut Config| c.blobs = BlobQuota { max_bytes, ..BlobQuota::default() };
    let registry = origin_with(dir.path(), &[], quota);

    let mut accepted = 0;
    let refusal = loop {
        let (status, body) = post(&registry, envelope_by_anyone("1.0.0")).await;
        match status {
            StatusCode::OK => accepted += 1,
            _ => break (status, body),
        }
        assert!(accepted <= 5, "more than the quota was stored");
    };
    assert_eq!(accepted, 5);
    let (status, body) = refusal;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["error"], "blobs_full", "{body}");
    assert!(body["reason"].as_str().unwrap().contains(&format!("at most {max_bytes} bytes")), "{body}");
    assert!(body["reason"].as_str().unwrap().contains("--blobs-max-mib"), "{body}");
    assert_eq!(stored(dir.path()).len(), 5);
    assert!(folder_size(&dir.path().join("registry/envelopes")) <= max_bytes);

    // The origin restarted on the same folder counts what it holds.
    drop(registry);
    let registry = open(dir.path(), quota);
    let (status, body) = post(&registry, envelope_by_anyone("1.0.0")).await;
    assert_eq!((status, &body["error"]), (StatusCode::INSUFFICIENT_STORAGE, &Value::from("blobs_full")), "{body}");
    assert_eq!(stored(dir.path()).len(), 5);
}

#[tokio::test]
async fn a_did_over_its_quota_loses_its_own_oldest_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let registry = origin_with(dir.path(), &[], |c| c.blobs = BlobQuota { per_did: 2, ..BlobQuota::default() });
    let (publisher, other) = (SigningKey::generate(), SigningKey::generate());
    let theirs = envelope(&other, "other", "1.0.0");
    let mut hashes = Vec::new();
    for bytes in
        [theirs.clone()].into_iter().chain(["1.0.0", "1.1.0", "1.2.0"].map(|v| envelope(&publisher, "notes", v)))
    {
        let (status, body) = post(&registry, bytes).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        hashes.push(body["blake3"].as_str().unwrap().to_owned());
    }
    let mut kept = stored(dir.path());
    kept.sort();
    let mut expected = vec![hashes[0].clone(), hashes[2].clone(), hashes[3].clone()];
    expected.sort();
    assert_eq!(kept, expected, "the publisher's 1.0.0 made room for its 1.2.0; the other DID's stays");
    let (status, _) = get(&registry, &format!("/v1/blobs/{}", hashes[1])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, served) = get(&registry, &format!("/v1/blobs/{}", hashes[0])).await;
    assert_eq!((status, served), (StatusCode::OK, theirs));
}

#[tokio::test]
async fn an_envelope_not_posted_again_expires() {
    let dir = tempfile::tempdir().unwrap();
    let expire_now = |c: &mut Config| c.blobs = BlobQuota { expire_after: Duration::ZERO, ..BlobQuota::default() };
    let registry = origin_with(dir.path(), &[], expire_now);
    let (status, first) = post(&registry, envelope_by_anyone("1.0.0")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, second) = post(&registry, envelope_by_anyone("1.0.0")).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(stored(dir.path()), vec![second["blake3"].as_str().unwrap().to_owned()], "the first expired");
    let (status, _) = get(&registry, &format!("/v1/blobs/{}", first["blake3"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
