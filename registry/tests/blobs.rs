//! `POST /v1/blobs`: the origin hosts signed envelopes for Nostr announcements, and refuses
//! anything else with a reason. Requests go through the real router (`tower::ServiceExt::oneshot`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use catalog::envelope::MAX_ENVELOPE_BYTES;
use catalog::keys::SigningKey;
use serde_json::Value;

use crate::util::{call, envelope, registry};

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
