//! The one error type of the HTTP handlers.
//!
//! A refusal is the client's to fix: a 4xx status and `{"error": <code>, "reason": <text>}`, the
//! body publishers (`archy publish`) parse and show. A failure of the origin itself answers 500
//! with the same shape, `{"error": "internal"}` and a generic reason: its cause (paths, I/O
//! errors, lock state) is logged with `tracing::error!`, never sent to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use catalog::repo::RepoError;
use serde_json::json;

/// Why a request was not served.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// The request is refused: the client sees `status`, `code` and `reason`.
    Refused {
        /// A 4xx status.
        status: StatusCode,
        /// Machine-readable code (`"error"` in the body).
        code: &'static str,
        /// What went wrong, for the publisher (`"reason"` in the body).
        reason: String,
    },
    /// The origin failed; the cause is logged, not sent.
    Internal(anyhow::Error),
}

/// The reason a client is given for a 500.
const INTERNAL_REASON: &str = "the origin failed to handle this request; its log has the cause";

impl ApiError {
    /// A refusal with status 400 Bad Request.
    pub(crate) fn bad(code: &'static str, reason: impl Into<String>) -> Self {
        Self::refused(StatusCode::BAD_REQUEST, code, reason)
    }

    /// A refusal with any 4xx status.
    pub(crate) fn refused(status: StatusCode, code: &'static str, reason: impl Into<String>) -> Self {
        Self::Refused { status, code, reason: reason.into() }
    }

    /// A failure of the origin itself.
    pub(crate) fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    /// The code the client sees.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Refused { code, .. } => code,
            Self::Internal(_) => "internal",
        }
    }

    /// The reason the client sees.
    pub(crate) fn reason(&self) -> &str {
        match self {
            Self::Refused { reason, .. } => reason,
            Self::Internal(_) => INTERNAL_REASON,
        }
    }
}

impl From<RepoError> for ApiError {
    /// A submission the repository refuses keeps the repository's reason; any other repository
    /// error is the origin's failure.
    fn from(e: RepoError) -> Self {
        let (status, code) = match &e {
            RepoError::UnknownPublisher(_) => (StatusCode::FORBIDDEN, "unknown_publisher"),
            RepoError::PathNotDelegated { .. } => (StatusCode::FORBIDDEN, "path_not_delegated"),
            RepoError::BadTargetHash { .. } => (StatusCode::BAD_REQUEST, "bad_target_hash"),
            RepoError::VersionNotIncreasing { .. } => (StatusCode::CONFLICT, "version_not_increasing"),
            RepoError::Metadata(_) => (StatusCode::FORBIDDEN, "bad_signature_or_metadata"),
            RepoError::Invalid(_) => (StatusCode::CONFLICT, "invalid"),
            RepoError::Retired { .. } => (StatusCode::FORBIDDEN, "publisher_key_retired"),
            _ => return Self::internal(e),
        };
        Self::refused(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Refused { status, .. } => *status,
            Self::Internal(cause) => {
                tracing::error!("internal error: {cause:#}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, axum::Json(json!({ "error": self.code(), "reason": self.reason() }))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[tokio::test]
    async fn a_refusal_tells_the_client_why() {
        let response =
            ApiError::refused(StatusCode::CONFLICT, "invalid", "`apps/a/1.json` is published").into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(body(response).await, json!({ "error": "invalid", "reason": "`apps/a/1.json` is published" }));
    }

    #[tokio::test]
    async fn an_internal_error_hides_its_cause() {
        let cause = std::io::Error::other("/srv/origin/registry/incoming: disk full");
        let response = ApiError::internal(cause).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body(response).await;
        assert_eq!(body["error"], "internal");
        assert!(!body["reason"].as_str().expect("reason").contains("/srv/origin"), "{body}");
    }
}
