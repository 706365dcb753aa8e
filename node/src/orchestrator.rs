//! The orchestrator: installs verified apps through the Docker Engine API and keeps them as the
//! operator wants them.
//!
//! - Only [`VerifiedManifest`]s reach it (from an [`AppSource`]: the node's verified catalog, or
//!   a folder of signed envelopes), and what it stores it verifies again when reading it back.
//! - Names and labels come from the render plan (`catalog::manifest::render`), plus two labels of
//!   its own: [`LABEL_NODE`] (which node on this engine owns the object) and [`LABEL_SPEC`] (hash
//!   of the exact create request, so a changed container is recreated and an unchanged one kept).
//! - Desired state ([`state::AppRecord`]) is written atomically before it is applied; the
//!   reconciler ([`reconcile`]) converges the engine to it and adopts what is already there, so a
//!   process killed at any point converges on its next run without duplicates.
//! - The policy gate ([`policy`]) runs before anything is created.
//!
//! The user-facing description (data dir layout, states, labels, policy, update and rollback,
//! reconciler rules) is `docs/orchestrator.md`.
//!
//! ```no_run
//! # async fn demo(manifest: catalog::envelope::VerifiedManifest, archive: std::path::PathBuf) -> Result<(), node::orchestrator::Error> {
//! use std::sync::Arc;
//! use node::orchestrator::{MemorySource, Orchestrator};
//!
//! let source = MemorySource::default();
//! source.add(manifest, [("hello-web/hello-web-0.1.0.tar".to_owned(), archive)]);
//! let orch = Orchestrator::open(&node::DataDir::new("/var/lib/archy-node"), Arc::new(source)).await?;
//! orch.install("hello-web", None).await?;
//! for app in orch.status().await? {
//!     println!("{} {} {}", app.app, app.version, app.state);
//! }
//! # Ok(()) }
//! ```

pub mod api;
pub mod archive;
pub mod backup;
pub mod config;
pub mod docker;
pub mod facts;
mod lifecycle;
pub mod policy;
pub mod progress;
pub mod reconcile;
pub mod secrets;
pub mod snapshot;
pub mod source;
pub mod spec;
pub mod state;
pub mod status;
pub mod tar;

use std::path::PathBuf;

use crate::data_dir::DataDir;
use std::sync::Arc;

pub use catalog::envelope::VerifiedManifest;
pub use lifecycle::{InstallReport, UpdateReport};
pub use reconcile::{ReconcileReport, run_reconciler};
pub use source::{AppSource, DirSource, MemorySource};
pub use status::{AppState, AppStatus, ContainerStatus};

use config::NodeConfig;
use docker::Engine;
use state::{StateDir, StateLock};

/// Label naming the archy node (on this engine) that owns a container, network or volume.
pub const LABEL_NODE: &str = "archy.node";
/// Label holding the hash of the request a container was created with.
pub const LABEL_SPEC: &str = "archy.spec";

/// Why an orchestrator operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The container engine does not answer.
    #[error(
        "cannot reach the container engine at {socket}: {reason} (is Docker running? set `docker_socket` in config.toml for Podman)"
    )]
    EngineUnreachable {
        /// Socket path.
        socket: String,
        /// What failed.
        reason: String,
    },
    /// An engine call failed.
    #[error("{context}: {source}")]
    Docker {
        /// What was being done.
        context: String,
        /// The engine's error.
        source: Box<bollard::errors::Error>,
    },
    /// Not an app id.
    #[error("`{id}` is not an app id: {reason}")]
    BadAppId {
        /// The text.
        id: String,
        /// Why.
        reason: String,
    },
    /// The app is not installed.
    #[error("app `{0}` is not installed")]
    NotInstalled(String),
    /// The source has no such app or version.
    #[error("{0}")]
    NotAvailable(String),
    /// The verified catalog's timestamp has expired; the message names the expiry.
    #[error("{0}")]
    CatalogExpired(String),
    /// The Nostr install policy (`[nostr_policy]`) refused the app's publisher; the message
    /// names the rule.
    #[error("{0}")]
    NostrPolicy(String),
    /// The policy gate refused the app.
    #[error("{}", policy_message(.app, .refusals))]
    PolicyRefused {
        /// The app.
        app: String,
        /// Every refused use.
        refusals: Vec<policy::Refusal>,
    },
    /// A dependency is missing or at a version the app does not accept.
    #[error("app `{app}` depends on `{dependency}` {requirement}: {problem}")]
    Dependency {
        /// The app.
        app: String,
        /// The app it depends on.
        dependency: String,
        /// The version requirement.
        requirement: String,
        /// What is wrong.
        problem: String,
    },
    /// Another installed app depends on this one.
    #[error("app `{app}` is needed by {dependents}; uninstall those first")]
    NeededBy {
        /// The app.
        app: String,
        /// The apps that depend on it.
        dependents: String,
    },
    /// The manifest needs a newer node.
    #[error("app `{app}` {version} needs archy node {needed} or newer; this node is {ours}")]
    NodeTooOld {
        /// The app.
        app: String,
        /// Its version.
        version: String,
        /// The minimum node version.
        needed: String,
        /// This node's version.
        ours: String,
    },
    /// An update whose manifest comes from another publisher than the installed one.
    #[error(
        "app `{app}` is installed from {installed}; the version offered is by {offered}: an update never changes \
         publisher unless a signed rotation or succession says the new key continues the old one (uninstall it \
         first to switch)"
    )]
    OtherPublisher {
        /// The app.
        app: String,
        /// Publisher of the installed version.
        installed: String,
        /// Publisher of the offered version.
        offered: String,
    },
    /// An update to an older (or the same) version.
    #[error("app `{app}` is at {installed}; {requested} is not newer (downgrades are refused)")]
    NotNewer {
        /// The app.
        app: String,
        /// Installed version.
        installed: String,
        /// Requested version.
        requested: String,
    },
    /// A host port is already published by another installed app.
    #[error("app `{app}` publishes host port {port}, which app `{other}` already publishes")]
    PortTaken {
        /// The app.
        app: String,
        /// `8080/tcp`.
        port: String,
        /// The other app.
        other: String,
    },
    /// An image archive did not hold the image the manifest names.
    #[error(
        "image archive `{target}` of app `{app}` did not load image {expected} (the engine reported: {loaded}); nothing was created"
    )]
    ImageMismatch {
        /// The app.
        app: String,
        /// The archive's target path.
        target: String,
        /// The manifest's image id.
        expected: String,
        /// What the engine said it loaded.
        loaded: String,
    },
    /// The image could not be obtained.
    #[error("image {reference} of app `{app}` is not on this engine and could not be pulled: {reason}")]
    ImageUnavailable {
        /// The app.
        app: String,
        /// The reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// A container of the app did not become healthy.
    #[error("container {container} of app `{app}` {problem}")]
    Unhealthy {
        /// The app.
        app: String,
        /// Container name.
        container: String,
        /// What went wrong (`is unhealthy: <last check output>`, `exited with code 1`…).
        problem: String,
    },
    /// An object with the name archy wants belongs to something else.
    #[error("{kind} {name} already exists and is not managed by this archy node ({owner}); remove or rename it")]
    NameConflict {
        /// `container`, `network`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// Who owns it.
        owner: String,
    },
    /// An engine object under a name this node wants for an app is labelled as another app's
    /// or another node's: it is neither adopted nor changed, and nothing else is created.
    #[error(
        "{kind} {name} belongs to {owner}, not to {claimant}: refused, nothing was changed (remove the {kind} \
         if it is stale)"
    )]
    OwnedElsewhere {
        /// `container`, `network`, `volume`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// Who its labels say owns it.
        owner: Box<Owner>,
        /// The app (and node) that wanted the name.
        claimant: Box<Owner>,
    },
    /// An update failed and the previous version runs again.
    #[error("update of `{app}` to {to} failed ({reason}); rolled back to {from}")]
    RolledBack {
        /// The app.
        app: String,
        /// The version that runs again.
        from: String,
        /// The version that failed.
        to: String,
        /// Why it failed.
        reason: String,
    },
    /// The operation needs the app stopped.
    #[error("app `{app}` is running: stop it first (`archy-node stop {app}`), then {doing}")]
    MustBeStopped {
        /// The app.
        app: String,
        /// What was asked.
        doing: String,
    },
    /// A stored secret is missing.
    #[error("generated secret {} is missing", .path.display())]
    MissingSecret {
        /// Where it should be.
        path: PathBuf,
    },
    /// A secret generated for the app before is gone; a new value would not open the data made
    /// with the old one, so the app is not started.
    #[error(
        "refusing to start: the generated secret `{name}` ({}) is gone, and a new value would not match the data \
         made with it. Restore the file (mode 0600) from a backup, or delete the app's data for good with \
         `archy-node uninstall {app} --purge --yes` and install it again",
        .path.display()
    )]
    SecretLost {
        /// The app.
        app: String,
        /// The secret's name.
        name: String,
        /// Where it was.
        path: PathBuf,
    },
    /// `config.toml` is invalid.
    #[error("{}: {reason}", .path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A state file is unreadable or does not verify.
    #[error("state file {} is unusable: {reason}", .path.display())]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The app source failed.
    #[error("{0}")]
    Source(#[from] source::SourceError),
    /// A file operation failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Something that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Who an engine object belongs to, as its `archy.app`, `archy.shared` and `archy.node` labels say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The app (`archy.app`), if labelled.
    pub app: Option<String>,
    /// The share (`archy.shared`) of a shared volume.
    pub share: Option<String>,
    /// The node (`archy.node`), if labelled.
    pub node: Option<String>,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.share, &self.app) {
            (Some(share), _) => write!(f, "share `{share}`")?,
            (None, Some(app)) => write!(f, "app `{app}`")?,
            (None, None) => f.write_str("no app")?,
        }
        match &self.node {
            Some(node) => write!(f, " of archy node {node}"),
            None => f.write_str(" of no archy node"),
        }
    }
}

fn policy_message(app: &str, refusals: &[policy::Refusal]) -> String {
    let mut s = format!("app `{app}` is refused by this node's policy:");
    for r in refusals {
        s.push_str(&format!("\n  - {} needs permission `{}`, not granted to `{app}`", r.subject, r.permission));
    }
    s.push_str(&format!("\nto grant, add to config.toml:\n  [apps.{app}]\n  permissions = ["));
    let grants: Vec<&str> = refusals.iter().map(|r| r.grant_toml.as_str()).collect();
    s.push_str(&grants.join(", "));
    s.push(']');
    s
}

impl Error {
    /// Whether the error is the user's to fix (bad input, refused, not installed…) rather than an
    /// unexpected failure: the CLI exits 1 for these and 2 otherwise.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Self::Docker { .. } | Self::Io { .. } | Self::Internal(_) | Self::CorruptState { .. })
    }
}

/// The orchestrator of one node: its data dir, configuration, engine and app source.
pub struct Orchestrator {
    data_dir: DataDir,
    state: StateDir,
    /// Read again from `config_file` each time the lock is taken (the grants may change while
    /// the node runs); the engine socket and the engine prefix stay as they were at open.
    config: std::sync::RwLock<Arc<NodeConfig>>,
    /// Where the configuration came from (`None`: given by the caller, never read again).
    config_file: Option<PathBuf>,
    engine: Engine,
    source: Arc<dyn AppSource>,
    node_id: String,
    local: tokio::sync::Mutex<()>,
    progress: progress::Progress,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator").field("data_dir", &self.data_dir).field("node_id", &self.node_id).finish()
    }
}

/// Held while desired state or the engine is being changed: the in-process mutex and the
/// cross-process file lock.
pub(crate) struct Guard<'a> {
    _local: tokio::sync::MutexGuard<'a, ()>,
    _file: StateLock,
}

impl Orchestrator {
    /// Opens the orchestrator of the node whose data dir is `data_dir`, reading
    /// `config.toml` and connecting to the engine it names.
    pub async fn open(data_dir: &DataDir, source: Arc<dyn AppSource>) -> Result<Self, Error> {
        let config = NodeConfig::load(&data_dir.config_file())?;
        let mut orchestrator = Self::with_config(data_dir, config, source).await?;
        orchestrator.config_file = Some(data_dir.config_file());
        Ok(orchestrator)
    }

    /// Like [`Orchestrator::open`] with an explicit configuration.
    pub async fn with_config(
        data_dir: &DataDir,
        config: NodeConfig,
        source: Arc<dyn AppSource>,
    ) -> Result<Self, Error> {
        let state = StateDir::open(&data_dir.orchestrator_dir())?;
        let node_id = state.node_id()?;
        let engine = Engine::connect(&config.socket()).await?;
        Ok(Self {
            data_dir: data_dir.clone(),
            state,
            config: std::sync::RwLock::new(Arc::new(config)),
            config_file: None,
            engine,
            source,
            node_id,
            local: tokio::sync::Mutex::new(()),
            progress: progress::Progress::default(),
        })
    }

    /// The engine connection.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// This node's id (the `archy.node` label value).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The node data dir.
    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }

    /// The orchestrator's files.
    pub fn state_dir(&self) -> &StateDir {
        &self.state
    }

    /// Live progress of lifecycle operations.
    pub fn progress(&self) -> &progress::Progress {
        &self.progress
    }

    /// The configuration in use.
    pub fn config(&self) -> Arc<NodeConfig> {
        self.config.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Reads the configuration file again (its grants and app settings; the engine socket and
    /// prefix stay). A file that does not parse leaves the configuration as it was.
    fn reload_config(&self) {
        let Some(path) = &self.config_file else { return };
        match NodeConfig::load(path) {
            Ok(mut fresh) => {
                let mut current = self.config.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                fresh.docker_socket.clone_from(&current.docker_socket);
                fresh.engine_prefix.clone_from(&current.engine_prefix);
                *current = Arc::new(fresh);
            }
            Err(e) => tracing::warn!("{}: {e}; the configuration read before stays in use", path.display()),
        }
    }

    /// Waits for the lock.
    pub(crate) async fn lock(&self) -> Result<Guard<'_>, Error> {
        let local = self.local.lock().await;
        let path = self.state.lock_path();
        let file = tokio::task::spawn_blocking(move || StateLock::acquire(&path))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        self.reload_config();
        Ok(Guard { _local: local, _file: file })
    }

    /// Takes the lock if it is free.
    pub(crate) async fn try_lock(&self) -> Result<Option<Guard<'_>>, Error> {
        let Ok(local) = self.local.try_lock() else { return Ok(None) };
        let guard = StateLock::try_acquire(&self.state.lock_path())?.map(|file| Guard { _local: local, _file: file });
        if guard.is_some() {
            self.reload_config();
        }
        Ok(guard)
    }
}

/// Test-only pause points, so tests can kill the process at a named step
/// (`ARCHY_TEST_PAUSE_AT=<step>`: the process prints `paused at <step>` on stderr and sleeps).
/// Steps: `after-desired-state`, `after-create:<container name>`.
pub(crate) fn test_pause(step: &str) {
    if std::env::var("ARCHY_TEST_PAUSE_AT").is_ok_and(|s| s == step) {
        eprintln!("paused at {step}");
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
