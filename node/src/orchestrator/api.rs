//! The node's local HTTP API for lifecycle operations (merged into `archy-node run`'s API).
//!
//! | method and path | does |
//! |---|---|
//! | `GET /v1/installed` | every installed app's status (JSON list, as `archy-node ps --json`) |
//! | `POST /v1/installed/{app}` | install; body `{"version": "1.2.3"}` optional |
//! | `POST /v1/installed/{app}/start`, `/stop`, `/restart` | lifecycle |
//! | `POST /v1/installed/{app}/update` | update; body `{"to": "1.3.0"}` optional |
//! | `DELETE /v1/installed/{app}` | uninstall (volumes and secrets kept) |
//! | `DELETE /v1/installed/{app}?purge=true&confirm={app}` | purge; `confirm` must repeat the app id |
//! | `GET /v1/installed/{app}/logs?tail=100&container=web` | logs, `text/plain` |
//! | `POST /v1/reconcile` | one reconcile pass |
//! | `GET /v1/events` | live progress of lifecycle operations, `text/event-stream` ([`super::progress`]) |
//!
//! Errors are `{"error": "..."}` with 400 (bad input), 403 (policy gate, or the Nostr install
//! policy: the message names the `nostr_policy` rule), 404 (unknown app or
//! version), 409 (conflict: dependency, port, a name held by another app or node, downgrade,
//! rolled-back update), 422 (image or health failure), 503 (engine unreachable) or 500, whose body hides the details (they are
//! logged; [`ApiError`], shared with the daemon's routes). This router does not authenticate:
//! `archy-node run` serves it behind the `local_api` guard (bearer token or 0600 socket,
//! Host and cross-site checks, JSON bodies). Request bodies are limited to 16 KiB.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use serde::Deserialize;

use super::{Error, Orchestrator};

/// The router over `orchestrator`.
pub fn router(orchestrator: Arc<Orchestrator>) -> Router {
    Router::new()
        .route("/v1/installed", get(list))
        .route("/v1/installed/{app}", post(install).delete(uninstall))
        .route("/v1/installed/{app}/start", post(start))
        .route("/v1/installed/{app}/stop", post(stop))
        .route("/v1/installed/{app}/restart", post(restart))
        .route("/v1/installed/{app}/update", post(update))
        .route("/v1/installed/{app}/logs", get(logs))
        .route("/v1/reconcile", post(reconcile))
        .route("/v1/events", get(events))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(orchestrator)
}

/// An error as the node's local API answers it (the lifecycle routes here and the daemon's
/// `/v1/sync`, `/v1/status`, `/v1/apps`): `{"error": "…"}` with a status by kind. A 500 never
/// shows its cause to the client; the cause is logged.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// An operation failed.
    Op(Error),
    /// The request itself is malformed (400).
    BadRequest(String),
    /// The caller may not do this (403, the message says why).
    Forbidden(String),
    /// What was asked for is not there yet, e.g. no verified catalog (503, the message says why).
    Unavailable(String),
    /// Something nobody asked for failed (500; logged, not shown).
    Internal(anyhow::Error),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self::Op(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = match self {
            Self::Op(e) => e,
            Self::BadRequest(message) => return answer(StatusCode::BAD_REQUEST, message),
            Self::Forbidden(message) => return answer(StatusCode::FORBIDDEN, message),
            Self::Unavailable(message) => return answer(StatusCode::SERVICE_UNAVAILABLE, message),
            Self::Internal(cause) => {
                tracing::error!("local API request failed: {cause:#}");
                return answer(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL.to_owned());
            }
        };
        let status = match &error {
            Error::BadAppId { .. } => StatusCode::BAD_REQUEST,
            Error::PolicyRefused { .. } | Error::NostrPolicy(_) => StatusCode::FORBIDDEN,
            Error::NotInstalled(_) | Error::NotAvailable(_) => StatusCode::NOT_FOUND,
            Error::Dependency { .. }
            | Error::NeededBy { .. }
            | Error::PortTaken { .. }
            | Error::NameConflict { .. }
            | Error::OwnedElsewhere { .. }
            | Error::NotNewer { .. }
            | Error::OtherPublisher { .. }
            | Error::NodeTooOld { .. }
            | Error::RolledBack { .. }
            | Error::CatalogExpired(_)
            | Error::SecretLost { .. } => StatusCode::CONFLICT,
            Error::ImageMismatch { .. } | Error::ImageUnavailable { .. } | Error::Unhealthy { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Error::EngineUnreachable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "lifecycle API request failed");
            INTERNAL.to_owned()
        } else {
            error.to_string()
        };
        answer(status, message)
    }
}

/// The body of every 500.
const INTERNAL: &str = "internal error; see the node's log";

fn answer(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

type Result<T> = std::result::Result<T, ApiError>;

/// Reports how an operation on `app` ended to the progress listeners, and passes its outcome on.
fn ended<T>(o: &Orchestrator, app: &str, op: &str, outcome: std::result::Result<T, Error>) -> Result<T> {
    match &outcome {
        Ok(_) => o.progress().report(app, "done", op, None),
        Err(e) => o.progress().report(app, "failed", format!("{op}: {e}"), None),
    }
    Ok(outcome?)
}

/// Live progress as server-sent events: one `progress` event (JSON, [`super::progress::Event`])
/// per step, a `lagged` event saying how many a slow reader missed, a comment every 15 s.
#[utoipa::path(get, path = "/v1/events", tag = "apps",
    summary = "Live progress of lifecycle operations (server-sent events)",
    description = "One `progress` event per step (JSON, the `Event` schema): `fetch`, `fetched`, `load`, `loaded`, `create`, `start`, `health`, `healthy`, then `done` or `failed`. A reader that falls behind gets a `lagged` event with how many it missed.",
    responses((status = 200, description = "An event stream", body = super::progress::Event, content_type = "text/event-stream")))]
async fn events(State(o): State<Arc<Orchestrator>>) -> Response {
    use axum::response::sse::{Event as Sse, KeepAlive};
    use tokio::sync::broadcast::error::RecvError;
    let stream = futures_util::stream::unfold(o.progress().subscribe(), |mut rx| async move {
        let event = match rx.recv().await {
            Ok(e) => Sse::default().event("progress").json_data(e).unwrap_or_default(),
            Err(RecvError::Lagged(n)) => Sse::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(event), rx))
    });
    axum::response::Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response()
}

#[utoipa::path(get, path = "/v1/installed", tag = "apps",
    summary = "Every installed app's status (as `archy-node ps --json`)",
    responses((status = 200, description = "The installed apps", body = Vec<crate::orchestrator::AppStatus>), Refusals))]
async fn list(State(o): State<Arc<Orchestrator>>) -> Result<Response> {
    Ok(Json(o.status().await?).into_response())
}

/// Body of `install`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct InstallBody {
    /// The version to install (the newest when absent).
    #[schema(value_type = Option<String>)]
    version: Option<semver::Version>,
}

/// An optional JSON body: empty means the defaults.
fn optional_body<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("request body: {e}")))
}

#[utoipa::path(post, path = "/v1/installed/{app}", tag = "apps",
    summary = "Install an app (its dependencies first)",
    description = "Fetches and verifies the image archives, checks the policy gate, creates the containers and waits for them to be healthy. Progress is streamed on `GET /v1/events`.",
    params(("app" = String, Path, description = "The app id")),
    request_body(content = Option<InstallBody>, description = "Optional; empty for the newest version"),
    responses((status = 200, description = "Installed", body = crate::orchestrator::InstallReport), Refusals))]
async fn install(
    State(o): State<Arc<Orchestrator>>,
    Path(app): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let version = optional_body::<InstallBody>(&body)?.version;
    let outcome = o.install(&app, version.as_ref()).await;
    Ok(Json(ended(&o, &app, "install", outcome)?).into_response())
}

#[utoipa::path(post, path = "/v1/installed/{app}/start", tag = "apps", summary = "Start a stopped app",
    params(("app" = String, Path, description = "The app id")), responses((status = 200, description = "Started", body = Done), Refusals))]
async fn start(State(o): State<Arc<Orchestrator>>, Path(app): Path<String>) -> Result<Response> {
    let outcome = o.start(&app).await;
    ended(&o, &app, "start", outcome)?;
    Ok(ok())
}

#[utoipa::path(post, path = "/v1/installed/{app}/stop", tag = "apps", summary = "Stop an app (it stays stopped)",
    params(("app" = String, Path, description = "The app id")), responses((status = 200, description = "Stopped", body = Done), Refusals))]
async fn stop(State(o): State<Arc<Orchestrator>>, Path(app): Path<String>) -> Result<Response> {
    let outcome = o.stop(&app).await;
    ended(&o, &app, "stop", outcome)?;
    Ok(ok())
}

#[utoipa::path(post, path = "/v1/installed/{app}/restart", tag = "apps", summary = "Restart an app",
    params(("app" = String, Path, description = "The app id")), responses((status = 200, description = "Restarted", body = Done), Refusals))]
async fn restart(State(o): State<Arc<Orchestrator>>, Path(app): Path<String>) -> Result<Response> {
    let outcome = o.restart(&app).await;
    ended(&o, &app, "restart", outcome)?;
    Ok(ok())
}

/// Body of `update`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    /// The version to update to (the newest when absent).
    #[schema(value_type = Option<String>)]
    to: Option<semver::Version>,
}

#[utoipa::path(post, path = "/v1/installed/{app}/update", tag = "apps",
    summary = "Update an app; rolled back if the new version is not healthy",
    description = "A snapshot of the app's volumes is taken first. An update never changes the publisher unless the origin's signed rotation or a key succession proves the new key continues the old one.",
    params(("app" = String, Path, description = "The app id")),
    request_body(content = Option<UpdateBody>, description = "Optional; empty for the newest version"),
    responses((status = 200, description = "Updated (or already at that version)", body = crate::orchestrator::UpdateReport), Refusals))]
async fn update(
    State(o): State<Arc<Orchestrator>>,
    Path(app): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let to = optional_body::<UpdateBody>(&body)?.to;
    let outcome = o.update(&app, to.as_ref()).await;
    Ok(Json(ended(&o, &app, "update", outcome)?).into_response())
}

/// Query of `uninstall`.
#[derive(Debug, Default, Deserialize)]
struct UninstallQuery {
    #[serde(default)]
    purge: bool,
    confirm: Option<String>,
}

#[utoipa::path(delete, path = "/v1/installed/{app}", tag = "apps",
    summary = "Uninstall an app (volumes and secrets kept), or purge it",
    params(("app" = String, Path, description = "The app id"),
        ("purge" = Option<bool>, Query, description = "Also delete the app's volumes and secrets for good"),
        ("confirm" = Option<String>, Query, description = "With purge: the app id again")),
    responses((status = 200, description = "Uninstalled", body = Done), Refusals))]
async fn uninstall(
    State(o): State<Arc<Orchestrator>>,
    Path(app): Path<String>,
    Query(q): Query<UninstallQuery>,
) -> Result<Response> {
    // Purging deletes data for good: the request must name the app a second time.
    if q.purge && q.confirm.as_deref() != Some(app.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "purge needs confirm={app}: it deletes the app's volumes and secrets for good"
        )));
    }
    let outcome = o.uninstall(&app, q.purge).await;
    ended(&o, &app, if q.purge { "purge" } else { "uninstall" }, outcome)?;
    Ok(ok())
}

/// Query of `logs`.
#[derive(Debug, Default, Deserialize)]
struct LogsQuery {
    tail: Option<u64>,
    container: Option<String>,
}

#[utoipa::path(get, path = "/v1/installed/{app}/logs", tag = "apps", summary = "An app's container logs",
    params(("app" = String, Path, description = "The app id"),
        ("tail" = Option<u64>, Query, description = "Lines from the end of each container's log (200)"),
        ("container" = Option<String>, Query, description = "One container's name in the manifest")),
    responses((status = 200, description = "The log lines", body = String, content_type = "text/plain"), Refusals))]
async fn logs(
    State(o): State<Arc<Orchestrator>>,
    Path(app): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response> {
    let stream = o.logs(&app, q.container.as_deref(), Some(q.tail.unwrap_or(200)), false).await?;
    let lines: Vec<String> = stream.filter_map(|l| async move { l.ok() }).collect().await;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], lines.concat()).into_response())
}

#[utoipa::path(post, path = "/v1/reconcile", tag = "apps", summary = "One reconcile pass over every installed app",
    responses((status = 200, description = "What the pass did", body = Object), Refusals))]
async fn reconcile(State(o): State<Arc<Orchestrator>>) -> Result<Response> {
    Ok(Json(o.reconcile_once(true).await?).into_response())
}

/// `{"ok": true}`: the operation was done.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct Done {
    /// Always true.
    ok: bool,
}

/// Every error: `{"error": "…"}`, saying why (a 500 hides its cause, which is logged).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    /// Why.
    error: String,
}

/// The refusals of the node's other routes, by status (for the OpenAPI document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum Denied {
    /// Bad input.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No token or session.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// A cross-site request, or a session request without its CSRF token.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// What is asked for is not there yet (no verified catalog, the engine does not answer).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The refusals of the lifecycle routes, by status (for the OpenAPI document; [`ApiError`]
/// makes them).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum Refusals {
    /// Bad input.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No token or session.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Refused by the node's policy gate, the Nostr install policy, a cross-site rule or a
    /// missing CSRF token.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Unknown app or version.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// A conflict: dependency, port, name held elsewhere, downgrade, rolled-back update, expired
    /// catalog.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// An image or health failure.
    #[response(status = 422)]
    Unprocessable(ErrorBody),
    /// The container engine does not answer.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

fn ok() -> Response {
    Json(serde_json::json!({ "ok": true })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nostr_policy_refusal_is_forbidden_and_names_the_rule() {
        let refusal = "refused by nostr_policy.min_score: publisher did:key:z6Mk… scores 0.3 < 1.0";
        let response = ApiError::Op(Error::NostrPolicy(refusal.into())).into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn a_name_held_by_another_app_is_a_conflict_and_the_cli_exits_1() {
        let owner =
            |app: &str, node: &str| super::super::Owner { app: Some(app.into()), share: None, node: Some(node.into()) };
        let error = Error::OwnedElsewhere {
            kind: "volume",
            name: "archy_b_data".into(),
            owner: Box::new(owner("a", "n1")),
            claimant: Box::new(owner("b", "n2")),
        };
        let message = error.to_string();
        assert!(
            message.contains("app `a` of archy node n1") && message.contains("app `b` of archy node n2"),
            "{message}"
        );
        assert!(error.is_user_error(), "exit code 1");
        assert_eq!(ApiError::Op(error).into_response().status(), StatusCode::CONFLICT);
    }
}
