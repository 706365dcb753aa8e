//! What `archy-node ps` shows: each installed app's state and, for failures, the reason.

use std::fmt;

use bollard::models::ContainerSummaryStateEnum as S;
use catalog::manifest::{ContainerPlan, LABEL_ROLE, RenderPlan};
use serde::Serialize;

use super::docker::ObservedContainer;
use super::state::{AppRecord, Phase, RunState, UpdateOutcome};

/// An app's state as the operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppState {
    /// Every container runs; none has a healthcheck that passed yet (or none has one).
    Running,
    /// Every container runs and every healthcheck passes.
    Healthy,
    /// A container runs but its healthcheck fails.
    Unhealthy,
    /// Stopped by the operator.
    Stopped,
    /// Something is wrong; the reason says what.
    Failed,
}

impl fmt::Display for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        })
    }
}

/// One container of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ContainerStatus {
    /// Engine name (`archy_<app>_<role>`).
    pub name: String,
    /// Name in the manifest.
    pub role: String,
    /// Engine state (`running`, `exited`…, or `missing`).
    pub state: String,
    /// `healthy`, `unhealthy`, `starting`, or absent without a healthcheck.
    pub health: Option<String>,
    /// The engine's status text.
    pub status: String,
}

/// One installed app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AppStatus {
    /// App id.
    pub app: String,
    /// Installed version.
    pub version: String,
    /// State.
    pub state: AppState,
    /// Why, for `failed`, `unhealthy`, and a stop the operator did not ask for.
    pub reason: Option<String>,
    /// An install or update still under way (`installing`, `updating from 1.0.0`).
    pub pending: Option<String>,
    /// The last update, and the reason it was rolled back if it was.
    pub last_update: Option<UpdateOutcome>,
    /// The containers in start order.
    pub containers: Vec<ContainerStatus>,
}

/// The container of `observed` (one app's, on this node) that plays plan container `c`: the one
/// under its plan name, else the one labelled with its role (an older node named it otherwise).
pub(crate) fn container_for<'a>(
    observed: impl Iterator<Item = &'a ObservedContainer> + Clone,
    c: &ContainerPlan,
) -> Option<&'a ObservedContainer> {
    observed.clone().find(|o| o.name == c.name).or_else(|| {
        let mut by_role = observed.filter(|o| o.labels.get(LABEL_ROLE).is_some_and(|r| r == c.role.as_str()));
        by_role.next()
    })
}

/// The status of `record`, whose plan is `plan`, given the engine's containers of the app.
pub fn app_status(record: &AppRecord, plan: &RenderPlan, observed: &[ObservedContainer]) -> AppStatus {
    let mut containers = Vec::new();
    let mut failure: Option<String> = None;
    let mut unhealthy: Option<String> = None;
    let mut stopped: Option<String> = None;
    let (mut with_check, mut healthy) = (0, 0);
    for c in &plan.containers {
        let Some(o) = container_for(observed.iter(), c) else {
            failure.get_or_insert_with(|| format!("container {} is missing (the reconciler recreates it)", c.name));
            containers.push(ContainerStatus {
                name: c.name.clone(),
                role: c.role.to_string(),
                state: "missing".into(),
                health: None,
                status: String::new(),
            });
            continue;
        };
        let health = o.health();
        if c.healthcheck.is_some() {
            with_check += 1;
        }
        match o.state {
            S::RUNNING => match health {
                Some("healthy") => healthy += 1,
                Some("unhealthy") => {
                    unhealthy.get_or_insert_with(|| format!("container {} is unhealthy", c.name));
                }
                _ => {}
            },
            S::RESTARTING => {
                failure.get_or_insert_with(|| format!("container {} keeps restarting ({})", c.name, o.status));
            }
            S::EXITED | S::DEAD if record.run == RunState::Running => match o.exit_code() {
                Some(0) => {
                    stopped.get_or_insert_with(|| format!("container {} exited (code 0)", c.name));
                }
                Some(code) => {
                    failure.get_or_insert_with(|| format!("container {} exited with code {code}", c.name));
                }
                None => {
                    failure.get_or_insert_with(|| format!("container {} is {}", c.name, o.status));
                }
            },
            S::CREATED if record.run == RunState::Running => {
                stopped.get_or_insert_with(|| format!("container {} was created but not started", c.name));
            }
            _ => {}
        }
        containers.push(ContainerStatus {
            name: c.name.clone(),
            role: c.role.to_string(),
            state: o.state.to_string(),
            health: health.map(str::to_owned),
            status: o.status.clone(),
        });
    }
    let (state, reason) = if let Some(e) = &record.last_error {
        (AppState::Failed, Some(e.clone()))
    } else if let Some(f) = failure {
        (AppState::Failed, Some(f))
    } else if record.run == RunState::Stopped {
        (AppState::Stopped, None)
    } else if let Some(s) = stopped {
        (AppState::Stopped, Some(s))
    } else if let Some(u) = unhealthy {
        (AppState::Unhealthy, Some(u))
    } else if with_check > 0 && healthy == with_check {
        (AppState::Healthy, None)
    } else {
        (AppState::Running, None)
    };
    let pending = match &record.phase {
        Phase::Installing => Some("installing".to_owned()),
        Phase::Updating { from, .. } => Some(format!("updating from {from}")),
        Phase::Ready => None,
    };
    AppStatus {
        app: record.app.clone(),
        version: record.version.to_string(),
        state,
        reason,
        pending,
        last_update: record.last_update.clone(),
        containers,
    }
}
