//! Rendering: the exact Docker objects a node creates for a manifest, computed without Docker.
//!
//! Naming (stable, relied on by the node's reconciler to adopt objects by name and
//! label after a restart; the scheme and why it never gives two objects one name are in
//! [`EngineObject`]):
//! - network `archy_<app>`;
//! - containers `archy_<app>_<container>`;
//! - volumes `archy_<app>_<volume>`, or `archy_shared.<share>` for a volume shared by opt-in;
//! - labels on every object: `archy.managed=true`, `archy.app=<id>`, `archy.version=<version>`,
//!   and `archy.role=<container name>` on containers / `<volume name>` on volumes (plus
//!   `archy.shared=<share>` on shared volumes).
//!
//! Secret values never appear in a plan: secret environment variables name the secret only.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{
    AppId, Capability, EngineObject, EnginePrefix, HostFact, Image, Manifest, Name, Permission, Port, RestartPolicy,
    Secret, User,
};

/// Label marking an object as managed by archy (`true`).
pub const LABEL_MANAGED: &str = "archy.managed";
/// Label holding the app id.
pub const LABEL_APP: &str = "archy.app";
/// Label holding the app version.
pub const LABEL_VERSION: &str = "archy.version";
/// Label holding the container's name in the manifest (containers) or the volume's (volumes).
pub const LABEL_ROLE: &str = "archy.role";
/// Label holding the share name of a shared volume.
pub const LABEL_SHARED: &str = "archy.shared";

/// Everything a node creates for one app, in the order it starts containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderPlan {
    /// The app's id.
    pub app: AppId,
    /// The app's version.
    pub version: semver::Version,
    /// The app's own network.
    pub network: NetworkPlan,
    /// The volumes, in declaration order.
    pub volumes: Vec<VolumePlan>,
    /// The containers, in start order (every container after the ones it depends on).
    pub containers: Vec<ContainerPlan>,
    /// Secrets the node generates on first install (names and shapes only, never values).
    pub secrets: Vec<Secret>,
    /// Permissions the operator must grant before anything runs.
    pub permissions: Vec<Permission>,
}

/// The app's Docker network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkPlan {
    /// Docker network name, `archy_<app>`.
    pub name: String,
    /// Labels on the network.
    pub labels: BTreeMap<String, String>,
}

/// One Docker volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumePlan {
    /// Docker volume name: `archy_<app>_<volume>`, or `archy_shared.<share>`.
    pub name: String,
    /// The volume's name in the manifest.
    pub volume: Name,
    /// The share name, for a shared volume.
    pub shared: Option<Name>,
    /// The uid (and gid) that must own the volume's root, from the mounting containers' `data_uid`.
    pub owner_uid: Option<u32>,
    /// Labels on the volume.
    pub labels: BTreeMap<String, String>,
}

/// One mount in a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Mount {
    /// A Docker volume.
    Volume {
        /// Docker volume name.
        source: String,
        /// Path in the container.
        target: String,
        /// Mounted read-only.
        read_only: bool,
    },
    /// A host path (covered by a granted permission).
    Bind {
        /// Path on the host.
        source: String,
        /// Path in the container.
        target: String,
        /// Mounted read-only.
        read_only: bool,
    },
    /// An in-memory file system.
    Tmpfs {
        /// Path in the container.
        target: String,
        /// Size limit in bytes, if any.
        size_bytes: Option<u64>,
    },
}

impl fmt::Display for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ro = |r: bool| if r { " (read-only)" } else { "" };
        match self {
            Self::Volume { source, target, read_only } => {
                write!(f, "volume {source} -> {target}{}", ro(*read_only))
            }
            Self::Bind { source, target, read_only } => {
                write!(f, "host {source} -> {target}{}", ro(*read_only))
            }
            Self::Tmpfs { target, size_bytes: Some(size) } => write!(f, "tmpfs {target} ({size} bytes)"),
            Self::Tmpfs { target, size_bytes: None } => write!(f, "tmpfs {target}"),
        }
    }
}

/// A published port, as Docker's `host:container/protocol`.
pub type PortPlan = Port;

/// A container healthcheck as Docker takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthcheckPlan {
    /// Docker's `Test`: `["CMD", program, args…]`.
    pub test: Vec<String>,
    /// Seconds between checks.
    pub interval_secs: u32,
    /// Seconds before a check counts as failed.
    pub timeout_secs: u32,
    /// Seconds after start during which failures do not count.
    pub start_period_secs: u32,
    /// Consecutive failures before the container is unhealthy.
    pub retries: u32,
}

/// One Docker container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerPlan {
    /// Docker container name, `archy_<app>_<container>`.
    pub name: String,
    /// The container's name in the manifest; also its DNS alias on the app network.
    pub role: Name,
    /// The image to run.
    pub image: Image,
    /// `CMD` override.
    pub command: Option<Vec<String>>,
    /// `ENTRYPOINT` override.
    pub entrypoint: Option<Vec<String>>,
    /// Plain environment variables.
    pub env: BTreeMap<String, String>,
    /// Environment variables the node fills from host facts: variable → fact.
    pub derived_env: BTreeMap<String, HostFact>,
    /// Environment variables set from generated secrets: variable → secret name (never the value).
    pub secret_env: BTreeMap<String, Name>,
    /// Published ports.
    pub ports: Vec<PortPlan>,
    /// Mounts: volumes, binds and tmpfs.
    pub mounts: Vec<Mount>,
    /// Host devices passed in.
    pub devices: Vec<String>,
    /// The user to run as.
    pub user: Option<User>,
    /// Restart policy.
    pub restart: RestartPolicy,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU limit in billionths of a CPU (Docker's `NanoCpus`).
    pub nano_cpus: Option<u64>,
    /// Healthcheck.
    pub healthcheck: Option<HealthcheckPlan>,
    /// Roles of the containers started (and healthy, when they have a healthcheck) before this one.
    pub depends_on: Vec<Name>,
    /// Privileged mode.
    pub privileged: bool,
    /// Capabilities added to the node's default set (and taken off its drop list).
    pub cap_add: Vec<Capability>,
    /// The process limit, when the manifest sets one in place of the node's default.
    pub pids_limit: Option<u32>,
    /// Whether the container runs with `no-new-privileges` (always, unless the manifest turns it
    /// off with the `new_privileges` permission; a privileged container goes without).
    pub no_new_privileges: bool,
    /// The network the container joins: the app network, or `host`.
    pub network: String,
    /// Labels on the container.
    pub labels: BTreeMap<String, String>,
}

/// The Docker objects a node creates for `manifest`, in start order.
pub fn render(manifest: &Manifest) -> RenderPlan {
    render_in(manifest, &EnginePrefix::default())
}

/// Like [`render`], for a node whose engine names start with `prefix` (its `engine_prefix`).
pub fn render_in(manifest: &Manifest, prefix: &EnginePrefix) -> RenderPlan {
    let app = manifest.id.as_str();
    let version = manifest.version.to_string();
    let labels = |role: Option<&str>| {
        let mut l = BTreeMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_APP.to_owned(), app.to_owned()),
            (LABEL_VERSION.to_owned(), version.clone()),
        ]);
        if let Some(role) = role {
            l.insert(LABEL_ROLE.to_owned(), role.to_owned());
        }
        l
    };
    let network =
        NetworkPlan { name: EngineObject::Network { app: manifest.id.clone() }.name_in(prefix), labels: labels(None) };
    let volume_name = |v: &Name| match manifest.volumes.iter().find(|d| d.name == *v).and_then(|d| d.shared.as_ref()) {
        Some(share) => EngineObject::SharedVolume { share: share.clone() }.name_in(prefix),
        None => EngineObject::Volume { app: manifest.id.clone(), volume: v.clone() }.name_in(prefix),
    };
    let volumes = manifest
        .volumes
        .iter()
        .map(|v| {
            let mut l = labels(Some(v.name.as_str()));
            if let Some(share) = &v.shared {
                l.insert(LABEL_SHARED.to_owned(), share.to_string());
            }
            VolumePlan {
                name: volume_name(&v.name),
                volume: v.name.clone(),
                shared: v.shared.clone(),
                owner_uid: manifest
                    .containers
                    .iter()
                    .filter(|c| c.volumes.iter().any(|m| m.volume == v.name))
                    .find_map(|c| c.data_uid),
                labels: l,
            }
        })
        .collect();
    let containers = start_order(manifest)
        .into_iter()
        .map(|c| {
            let mut mounts: Vec<Mount> = c
                .volumes
                .iter()
                .map(|m| Mount::Volume {
                    source: volume_name(&m.volume),
                    target: m.target.clone(),
                    read_only: m.read_only,
                })
                .collect();
            mounts.extend(c.binds.iter().map(|b| Mount::Bind {
                source: b.host.clone(),
                target: b.target.clone(),
                read_only: b.read_only,
            }));
            mounts.extend(c.tmpfs.iter().map(|t| Mount::Tmpfs {
                target: t.target.clone(),
                size_bytes: t.size_mib.map(|m| m.saturating_mul(1024 * 1024)),
            }));
            ContainerPlan {
                name: EngineObject::Container { app: manifest.id.clone(), container: c.name.clone() }.name_in(prefix),
                role: c.name.clone(),
                image: c.image.clone(),
                command: c.command.clone(),
                entrypoint: c.entrypoint.clone(),
                env: c.env.clone(),
                derived_env: c.derived_env.clone(),
                secret_env: c.secret_env.clone(),
                ports: c.ports.clone(),
                mounts,
                devices: c.devices.clone(),
                user: c.user,
                restart: c.restart,
                memory_bytes: c.memory_mib.map(|m| m.saturating_mul(1024 * 1024)),
                nano_cpus: c.cpus_milli.map(|m| u64::from(m) * 1_000_000),
                healthcheck: c.healthcheck.as_ref().map(|h| HealthcheckPlan {
                    test: std::iter::once("CMD".to_owned()).chain(h.command.iter().cloned()).collect(),
                    interval_secs: h.interval_secs,
                    timeout_secs: h.timeout_secs,
                    start_period_secs: h.start_period_secs,
                    retries: h.retries,
                }),
                depends_on: c.depends_on.clone(),
                privileged: c.privileged,
                cap_add: c.cap_add.clone(),
                pids_limit: c.pids_limit,
                no_new_privileges: c.no_new_privileges && !c.privileged,
                network: if c.host_network { "host".to_owned() } else { network.name.clone() },
                labels: labels(Some(c.name.as_str())),
            }
        })
        .collect();
    RenderPlan {
        app: manifest.id.clone(),
        version: manifest.version.clone(),
        network,
        volumes,
        containers,
        secrets: manifest.secrets.clone(),
        permissions: manifest.permissions.clone(),
    }
}

/// Containers in a topological order of `depends_on`; ties keep declaration order.
/// Validation guarantees there is no cycle; were there one, the rest follow in declaration order.
fn start_order(manifest: &Manifest) -> Vec<&super::Container> {
    let mut placed = vec![false; manifest.containers.len()];
    let mut order = Vec::with_capacity(manifest.containers.len());
    while order.len() < manifest.containers.len() {
        let ready = manifest.containers.iter().enumerate().position(|(i, c)| {
            !placed[i]
                && c.depends_on
                    .iter()
                    .all(|d| manifest.containers.iter().position(|o| o.name == *d).is_none_or(|k| placed[k]))
        });
        let next = ready.or_else(|| placed.iter().position(|p| !p)).unwrap_or(0);
        placed[next] = true;
        order.push(&manifest.containers[next]);
    }
    order
}

impl fmt::Display for RenderPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels =
            |l: &BTreeMap<String, String>| l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        writeln!(f, "app {} {}", self.app, self.version)?;
        writeln!(f, "network {}", self.network.name)?;
        writeln!(f, "  labels: {}", labels(&self.network.labels))?;
        for v in &self.volumes {
            writeln!(f, "volume {}", v.name)?;
            if let Some(share) = &v.shared {
                writeln!(f, "  shared as: {share}")?;
            }
            if let Some(uid) = v.owner_uid {
                writeln!(f, "  owner: {uid}:{uid}")?;
            }
            writeln!(f, "  labels: {}", labels(&v.labels))?;
        }
        for s in &self.secrets {
            writeln!(f, "secret {} ({} {} characters, generated on install)", s.name, s.length, s.charset.as_str())?;
        }
        for p in &self.permissions {
            writeln!(f, "permission {p}")?;
        }
        for (n, c) in self.containers.iter().enumerate() {
            writeln!(f, "container {} (start #{})", c.name, n + 1)?;
            writeln!(f, "  image: {}", c.image)?;
            if let Some(e) = &c.entrypoint {
                writeln!(f, "  entrypoint: {e:?}")?;
            }
            if let Some(cmd) = &c.command {
                writeln!(f, "  command: {cmd:?}")?;
            }
            for (k, v) in &c.env {
                writeln!(f, "  env {k}={v}")?;
            }
            for (k, fact) in &c.derived_env {
                writeln!(f, "  env {k}=<host {fact}>")?;
            }
            for (k, secret) in &c.secret_env {
                writeln!(f, "  env {k}=<secret {secret}>")?;
            }
            for p in &c.ports {
                writeln!(f, "  port {p}")?;
            }
            for m in &c.mounts {
                writeln!(f, "  mount {m}")?;
            }
            for d in &c.devices {
                writeln!(f, "  device {d}")?;
            }
            if let Some(u) = c.user {
                writeln!(f, "  user: {u}")?;
            }
            writeln!(f, "  restart: {}", c.restart)?;
            if let Some(m) = c.memory_bytes {
                writeln!(f, "  memory: {} MiB", m / (1024 * 1024))?;
            }
            if let Some(n) = c.nano_cpus {
                writeln!(f, "  cpus: {}.{:03}", n / 1_000_000_000, (n / 1_000_000) % 1000)?;
            }
            if let Some(h) = &c.healthcheck {
                writeln!(
                    f,
                    "  healthcheck: {:?} every {}s, timeout {}s, start period {}s, {} retries",
                    h.test, h.interval_secs, h.timeout_secs, h.start_period_secs, h.retries
                )?;
            }
            if !c.depends_on.is_empty() {
                let deps: Vec<&str> = c.depends_on.iter().map(Name::as_str).collect();
                writeln!(f, "  depends on: {}", deps.join(", "))?;
            }
            if c.privileged {
                writeln!(f, "  privileged")?;
            }
            if !c.cap_add.is_empty() {
                let caps: Vec<&str> = c.cap_add.iter().map(|c| c.as_str()).collect();
                writeln!(f, "  capabilities added: {}", caps.join(", "))?;
            }
            if let Some(n) = c.pids_limit {
                writeln!(f, "  pids limit: {n}")?;
            }
            if !c.privileged && !c.no_new_privileges {
                writeln!(f, "  without no-new-privileges")?;
            }
            writeln!(f, "  network: {}", c.network)?;
            writeln!(f, "  labels: {}", labels(&c.labels))?;
        }
        Ok(())
    }
}
