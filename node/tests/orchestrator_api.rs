//! The local lifecycle API (`orchestrator::api::router`), driven with in-process requests
//! against the real Docker engine.

use std::sync::Arc;

use crate::util::docker::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

async fn call(app: &axum::Router, method: &str, uri: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_over_the_local_api() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("api");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let source = source_with(vec![verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port))]).await;
    let data = data_dir("");
    let app = node::orchestrator::api::router(Arc::new(orchestrator(data.path(), source).await));

    let (status, body) = call(&app, "POST", &format!("/v1/installed/{id}"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(http_get(port, "/").as_deref(), Some("hello from archy\n"));
    let (status, body) = call(&app, "GET", "/v1/installed", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["app"], id.as_str());
    assert_eq!(body[0]["state"], "healthy");

    let (status, _) = call(&app, "POST", &format!("/v1/installed/{id}/stop"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(http_get(port, "/"), None);
    let (status, body) = call(&app, "POST", "/v1/installed/no-such-app/start", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("no-such-app"), "{body}");
    let (status, _) = call(&app, "POST", &format!("/v1/installed/{id}"), r#"{"version": "7.0.0"}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Purge needs the app id repeated; without it nothing is deleted.
    let (status, body) = call(&app, "DELETE", &format!("/v1/installed/{id}?purge=true"), "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(containers_of(&docker, &id).await.len(), 1);
    let (status, _) = call(&app, "DELETE", &format!("/v1/installed/{id}?purge=true&confirm={id}"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(containers_of(&docker, &id).await.is_empty());
    assert!(volumes_of(&docker, &id).await.is_empty());
    let big = format!(r#"{{"version": "{}"}}"#, "1".repeat(20_000));
    let (status, _) = call(&app, "POST", &format!("/v1/installed/{id}"), &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}
