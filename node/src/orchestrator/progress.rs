//! Live progress of lifecycle operations: what an install, update or other operation is doing
//! right now (fetching the image archive, loading it, creating containers, waiting for health),
//! for the dashboard's progress view (`GET /v1/events`, server-sent events).
//!
//! Progress is a broadcast: nobody listening costs nothing, a slow listener misses events (and
//! is told how many) rather than holding up an operation, and nothing here is stored.

use serde::Serialize;
use tokio::sync::broadcast;

/// How many events a listener may fall behind before it misses some.
const BACKLOG: usize = 256;

/// One step of an operation on an app.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Event {
    /// The app.
    pub app: String,
    /// What happens: `fetch`, `fetched`, `load`, `loaded`, `create`, `start`, `health`,
    /// `healthy`, then `done` (with the operation in `detail`) or `failed` (with the error).
    pub step: &'static str,
    /// Human-readable detail (a file name, a container, an error).
    pub detail: String,
    /// Bytes, where the step moved some (`fetched`: the verified archive's size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// When (RFC 3339, UTC).
    pub at: String,
}

/// The sender side, held by the orchestrator.
#[derive(Debug, Clone)]
pub struct Progress(broadcast::Sender<Event>);

impl Default for Progress {
    fn default() -> Self {
        Self(broadcast::channel(BACKLOG).0)
    }
}

impl Progress {
    /// Reports one step (dropped when nobody listens).
    pub fn report(&self, app: &str, step: &'static str, detail: impl Into<String>, bytes: Option<u64>) {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let _ = self.0.send(Event { app: app.to_owned(), step, detail: detail.into(), bytes, at });
    }

    /// A new listener: it sees every step reported from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}
