//! The node's configuration, `<data>/config.toml`: the container engine's socket, the permissions
//! the operator grants to apps, and a few facts about the host when detection is not wanted.
//!
//! ```toml
//! docker_socket = "/run/user/1000/podman/podman.sock"   # default /var/run/docker.sock (or $DOCKER_HOST)
//! publish_ip = "127.0.0.1"        # host address ports are published on (the default: loopback
//!                                 # only; an app granted `lan_ports` is published on all addresses)
//! engine_prefix = "archy"         # first piece of the engine names (`archy_<app>_<container>`);
//!                                 # another value only for a second node on the same engine
//! reconcile_interval_secs = 30    # `archy-node run` converges the apps this often, and on
//!                                 # every event of the engine
//! snapshots_keep = 3              # volume snapshots kept per app (one is taken before every
//!                                 # update); 0 keeps none once an update is over
//! snapshot_max_mib = 4096         # a larger volume is not copied into snapshots
//!
//! [host]                          # optional overrides of detected host facts
//! ip = "192.168.1.20"
//! hostname = "homeserver"
//! timezone = "Europe/Berlin"
//!
//! [apps.media]                    # permissions granted to the app `media`
//! permissions = [
//!   { kind = "host_path", host = "/srv/media", target = "/media", read_only = true },
//!   { kind = "device", path = "/dev/dri" },
//!   { kind = "lan_ports" },                    # reachable from the LAN, not only this host
//!   { kind = "low_ports" },                    # may publish host ports below 1024
//! ]
//!
//! [apps.vpn]
//! permissions = [
//!   { kind = "capability", name = "NET_ADMIN" }, # one capability the manifest adds (cap_add)
//!   { kind = "pids_limit", max = 4096 },         # pids_limit up to 4096 (default 1024)
//!   { kind = "new_privileges" },                 # no_new_privileges = false (setuid helpers)
//! ]
//! ```
//!
//! The file is shared with the node's sync settings (`[origin]`, `[[peers]]`, `[sync]`,
//! `[serve]`, see [`crate::config`]), so unknown top-level keys are left to them; inside the
//! orchestrator's own tables unknown fields are errors, so a misspelt grant never silently
//! grants nothing.

use std::collections::BTreeMap;
use std::path::Path;

use catalog::manifest::{Capability, EnginePrefix};
use serde::Deserialize;

use super::Error;

/// Where ports are published when `publish_ip` is not set: this host only.
pub const LOOPBACK: &str = "127.0.0.1";

/// Default path of the Docker engine socket.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// The orchestrator's part of `<data>/config.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeConfig {
    /// Path (or `unix://` URL) of the Docker-compatible engine socket.
    #[serde(default)]
    pub docker_socket: Option<String>,
    /// Host address published ports bind to; [`LOOPBACK`] when absent. Apps granted
    /// [`Grant::LanPorts`] are published on every address instead.
    #[serde(default)]
    pub publish_ip: Option<String>,
    /// Overrides of detected host facts.
    #[serde(default)]
    pub host: HostOverrides,
    /// Per-app settings, by app id.
    #[serde(default)]
    pub apps: BTreeMap<String, AppConfig>,
    /// The first piece of this node's engine names; `archy` when absent.
    #[serde(default, deserialize_with = "engine_prefix")]
    pub engine_prefix: Option<EnginePrefix>,
    /// Seconds between the reconciler's passes in `archy-node run` (besides the passes the
    /// engine's events start); [`DEFAULT_RECONCILE_SECS`] when absent.
    #[serde(default)]
    pub reconcile_interval_secs: Option<u64>,
    /// Volume snapshots kept per app; [`super::snapshot::DEFAULT_KEEP`] when absent.
    #[serde(default)]
    pub snapshots_keep: Option<usize>,
    /// Volumes whose copy would be larger are not snapshotted;
    /// [`super::snapshot::DEFAULT_MAX_MIB`] when absent.
    #[serde(default)]
    pub snapshot_max_mib: Option<u64>,
}

/// Seconds between two reconciler passes when `reconcile_interval_secs` is not set.
pub const DEFAULT_RECONCILE_SECS: u64 = 30;

fn engine_prefix<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<EnginePrefix>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

/// Host facts the operator sets instead of letting the node detect them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostOverrides {
    /// The host's LAN address.
    pub ip: Option<String>,
    /// The host's name.
    pub hostname: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
}

/// Settings for one app.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Permissions granted to the app.
    #[serde(default)]
    pub permissions: Vec<Grant>,
}

/// A permission the operator grants, written like the manifest's `permissions` entries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Grant {
    /// `privileged = true` containers.
    Privileged,
    /// `host_network = true` containers.
    HostNetwork,
    /// Binds that expose the engine socket.
    DockerSocket,
    /// Binds of `host` or anything under it; read-only grants cover only read-only binds.
    HostPath {
        /// Host folder or file.
        host: String,
        /// Where the manifest mounts it (informational; the host side is what is granted).
        #[serde(default)]
        target: Option<String>,
        /// Whether only read-only binds are granted.
        #[serde(default)]
        read_only: bool,
    },
    /// The app's ports are published on every host address (reachable from the LAN), not only
    /// on `publish_ip`.
    LanPorts,
    /// The app may publish host ports below 1024.
    LowPorts,
    /// Devices at `path` or under it.
    Device {
        /// Device path under `/dev/`.
        path: String,
    },
    /// The shared volume `archy-shared-<name>`.
    SharedVolume {
        /// Share name.
        name: String,
    },
    /// Containers that add the capability `name` (`cap_add`). Written as manifests write it
    /// (`NET_ADMIN`); another spelling, `ALL` or a host-level capability is a config error.
    Capability {
        /// The capability.
        name: Capability,
    },
    /// Containers whose `pids_limit` is at most `max`.
    PidsLimit {
        /// The highest process limit granted.
        max: u32,
    },
    /// Containers without `no-new-privileges` (`no_new_privileges = false`).
    NewPrivileges,
}

impl Grant {
    /// The `config.toml` entry of this grant, as an inline table (`{ kind = "device", path =
    /// "/dev/dri" }`), every string escaped: what it says is exactly this grant and no other.
    pub fn to_toml(&self) -> String {
        use toml_edit::{InlineTable, Value};
        let mut t = InlineTable::new();
        let mut put = |key: &str, value: Value| {
            t.insert(key, value);
        };
        let kind = match self {
            Self::Privileged => "privileged",
            Self::HostNetwork => "host_network",
            Self::DockerSocket => "docker_socket",
            Self::HostPath { .. } => "host_path",
            Self::LanPorts => "lan_ports",
            Self::LowPorts => "low_ports",
            Self::Device { .. } => "device",
            Self::SharedVolume { .. } => "shared_volume",
            Self::Capability { .. } => "capability",
            Self::PidsLimit { .. } => "pids_limit",
            Self::NewPrivileges => "new_privileges",
        };
        put("kind", kind.into());
        match self {
            Self::HostPath { host, target, read_only } => {
                put("host", host.as_str().into());
                if let Some(target) = target {
                    put("target", target.as_str().into());
                }
                put("read_only", (*read_only).into());
            }
            Self::Device { path } => put("path", path.as_str().into()),
            Self::SharedVolume { name } => put("name", name.as_str().into()),
            Self::Capability { name } => put("name", name.to_string().into()),
            Self::PidsLimit { max } => put("max", i64::from(*max).into()),
            _ => {}
        }
        t.fmt();
        t.to_string().trim().to_owned()
    }

    /// Reads one `config.toml` grant entry (an inline table).
    pub fn from_toml(entry: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct One {
            grant: Grant,
        }
        toml::from_str::<One>(&format!("grant = {entry}")).map(|o| o.grant).map_err(|e| e.to_string())
    }
}

impl NodeConfig {
    /// Reads the node's config file (`<data>/config.toml`); a missing file is the default
    /// configuration (nothing granted).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let path = path.to_owned();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| Error::Config { path, reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// The engine socket: the configured one, else `$DOCKER_HOST` when it is a `unix://` URL,
    /// else [`DEFAULT_DOCKER_SOCKET`].
    pub fn socket(&self) -> String {
        let raw = self
            .docker_socket
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| h.starts_with("unix://")));
        raw.map(|s| s.trim_start_matches("unix://").to_owned()).unwrap_or_else(|| DEFAULT_DOCKER_SOCKET.to_owned())
    }

    /// The host address `app`'s ports are published on: every address (`None`) when the app
    /// is granted [`Grant::LanPorts`], else `publish_ip` or [`LOOPBACK`].
    pub fn publish_ip_for(&self, app: &str) -> Option<&str> {
        if self.grants(app).contains(&Grant::LanPorts) {
            None
        } else {
            Some(self.publish_ip.as_deref().unwrap_or(LOOPBACK))
        }
    }

    /// The first piece of this node's engine names.
    pub fn prefix(&self) -> EnginePrefix {
        self.engine_prefix.clone().unwrap_or_default()
    }

    /// The permissions granted to `app`.
    pub fn grants(&self, app: &str) -> &[Grant] {
        self.apps.get(app).map_or(&[], |a| a.permissions.as_slice())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_grants_and_refuses_typos() {
        let c: NodeConfig = toml::from_str(
            r#"
docker_socket = "unix:///run/podman/podman.sock"
[apps.media]
permissions = [{ kind = "host_path", host = "/srv/media", read_only = true }, { kind = "privileged" }]
"#,
        )
        .unwrap();
        assert_eq!(c.socket(), "/run/podman/podman.sock");
        assert_eq!(c.grants("media").len(), 2);
        assert!(c.grants("other").is_empty());
        assert!(toml::from_str::<NodeConfig>("[apps.media]\npermission = []").is_err());
        assert!(
            toml::from_str::<NodeConfig>("[origin]\nurl = \"http://127.0.0.1:1\"\n[sync]\ninterval_secs = 5").is_ok()
        );
        assert!(toml::from_str::<NodeConfig>("[apps.media]\npermissions = [{ kind = \"root\" }]").is_err());
    }

    #[test]
    fn capability_grants_take_the_manifest_spelling_only() {
        let c: NodeConfig = toml::from_str(
            "[apps.vpn]\npermissions = [{ kind = \"capability\", name = \"NET_ADMIN\" }, { kind = \"pids_limit\", max = 4096 }, { kind = \"new_privileges\" }]",
        )
        .unwrap();
        assert_eq!(
            c.grants("vpn"),
            [
                Grant::Capability { name: "NET_ADMIN".parse().unwrap() },
                Grant::PidsLimit { max: 4096 },
                Grant::NewPrivileges
            ]
        );
        for name in ["CAP_NET_ADMIN", "ALL", "SYS_ADMIN", "NET_ADMINS"] {
            let text = format!("[apps.vpn]\npermissions = [{{ kind = \"capability\", name = \"{name}\" }}]");
            let err = toml::from_str::<NodeConfig>(&text).expect_err(name).to_string();
            assert!(err.contains(&format!("`{name}`")), "{err}");
        }
    }

    #[test]
    fn a_grant_entry_says_exactly_its_grant_whatever_its_strings_hold() {
        // A manifest path written to break out of its string: the entry escapes it, and reads
        // back as the very same grant (not `host = "/"`, read-write).
        let hostile =
            Grant::HostPath { host: "/\", read_only = false } #".into(), target: Some("/t".into()), read_only: true };
        let entry = hostile.to_toml();
        assert_eq!(Grant::from_toml(&entry).unwrap(), hostile, "{entry}");
        let device = Grant::Device { path: "/dev/\" } #".into() };
        assert_eq!(Grant::from_toml(&device.to_toml()).unwrap(), device);
        assert_eq!(Grant::LanPorts.to_toml(), r#"{ kind = "lan_ports" }"#);
        assert_eq!(
            Grant::HostPath { host: "/srv/media".into(), target: Some("/media".into()), read_only: true }.to_toml(),
            r#"{ kind = "host_path", host = "/srv/media", target = "/media", read_only = true }"#
        );
        assert!(Grant::from_toml(r#"{ kind = "root_please" }"#).is_err());
    }
}
