//! The container engine as the running node sees it: answering or not, and since when.
//!
//! `archy-node run` asks the engine every few seconds (`GET /_ping`) and writes each change to
//! `<data>/orchestrator/engine.json`, which `archy-node status` and `GET /v1/status` show
//! ("engine unreachable since …"). While the engine does not answer, the lifecycle routes answer
//! 503 naming the time, instead of failing each request on its own.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::data_dir::DataDir;
use crate::orchestrator::docker::Engine;

/// How often the engine is asked.
const EVERY: Duration = Duration::from_secs(3);

/// The engine's reachability, as last seen by the running node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct EngineReport {
    /// The engine's socket.
    pub socket: String,
    /// Whether it answered the last time it was asked.
    pub reachable: bool,
    /// Since when it has (or has not) answered.
    pub since: DateTime<Utc>,
    /// Why it did not answer.
    pub error: Option<String>,
}

impl EngineReport {
    fn path(data: &DataDir) -> std::path::PathBuf {
        data.orchestrator_dir().join("engine.json")
    }

    /// The report the running node wrote last, if any.
    pub(crate) fn last(data: &DataDir) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(Self::path(data)).ok()?).ok()
    }

    fn write(&self, data: &DataDir) {
        let written = std::fs::create_dir_all(data.orchestrator_dir())
            .map_err(anyhow::Error::from)
            .and_then(|()| Ok(serde_json::to_vec_pretty(self)?))
            .and_then(|bytes| Ok(catalog::repo::write_atomic(&Self::path(data), &bytes)?));
        if let Err(e) = written {
            tracing::warn!("cannot write {}: {e:#}", Self::path(data).display());
        }
    }

    /// One line for people: `reachable since …` or `UNREACHABLE since …: why`.
    pub(crate) fn describe(&self) -> String {
        let since = self.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match (&self.reachable, &self.error) {
            (true, _) => format!("engine {}: reachable since {since}", self.socket),
            (false, Some(why)) => format!("engine {}: UNREACHABLE since {since}: {why}", self.socket),
            (false, None) => format!("engine {}: UNREACHABLE since {since}", self.socket),
        }
    }
}

/// Watches the engine behind `socket` for as long as the returned future runs, calling
/// `changed` (and writing the report) each time it starts or stops answering. The first check
/// is made before the first call, so `changed` always sees a real observation.
pub(crate) async fn watch(data: DataDir, socket: String, changed: impl Fn(&EngineReport) + Send + 'static) {
    let mut engine: Option<Engine> = None;
    let mut last: Option<EngineReport> = None;
    loop {
        let answer = match &engine {
            Some(e) => e.ping().await,
            None => match Engine::connect(&socket).await {
                Ok(e) => {
                    engine = Some(e);
                    Ok(())
                }
                Err(e) => Err(e),
            },
        };
        let (reachable, error) = match answer {
            Ok(()) => (true, None),
            Err(e) => (false, Some(e.to_string())),
        };
        if last.as_ref().is_none_or(|l| l.reachable != reachable) {
            let report = EngineReport { socket: socket.clone(), reachable, since: Utc::now(), error };
            if reachable {
                tracing::info!("{}", report.describe());
            } else {
                tracing::warn!("{}", report.describe());
            }
            report.write(&data);
            changed(&report);
            last = Some(report);
        }
        tokio::time::sleep(EVERY).await;
    }
}
