//! The policy gate: runs before anything is created for an app, and again on every apply.
//!
//! Rule: privileged containers, the host network, host-path mounts, devices, the engine socket,
//! host ports below 1024, and each relaxation of the container defaults (a capability added
//! with `cap_add`, a `pids_limit` above the default, `no_new_privileges = false`) are refused
//! unless the operator granted that permission to that app in `config.toml` (ports are published on loopback only unless the app is granted
//! `lan_ports`, see `NodeConfig::publish_ip_for`). The gate looks at what the containers *use*, not only at what the
//! manifest requests, so a manifest cannot use more than it asked for even if validation were
//! bypassed. A bind of the configured engine socket (e.g. Podman's), of `/var/run/docker.sock`,
//! `/run/docker.sock`, or of a folder holding one, needs `docker_socket` — a `host_path` grant
//! never covers it.

use std::path::Path;

use catalog::manifest::{DEFAULT_PIDS_LIMIT, Manifest};

use super::config::Grant;

/// A use the gate refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The container that uses it (or the volume).
    pub subject: String,
    /// The permission, as `ps` and errors show it (`host_path /srv -> /data (read-write)`).
    pub permission: String,
    /// The grant that would allow it.
    pub grant: Grant,
    /// Its `config.toml` entry ([`Grant::to_toml`]).
    pub grant_toml: String,
}

impl Refusal {
    fn new(subject: String, permission: String, grant: Grant) -> Self {
        Self { subject, permission, grant_toml: grant.to_toml(), grant }
    }
}

/// Every use in `manifest` that `grants` do not cover; empty when the app may run.
pub fn refusals(manifest: &Manifest, grants: &[Grant], engine_socket: &str) -> Vec<Refusal> {
    let mut out = Vec::new();
    let mut refuse = |subject: String, permission: String, grant: Grant| {
        out.push(Refusal::new(subject, permission, grant));
    };
    let has = |g: &Grant| grants.contains(g);
    for c in &manifest.containers {
        let subject = format!("container {}", c.name);
        if c.privileged && !has(&Grant::Privileged) {
            refuse(subject.clone(), "privileged".into(), Grant::Privileged);
        }
        if c.host_network && !has(&Grant::HostNetwork) {
            refuse(subject.clone(), "host_network".into(), Grant::HostNetwork);
        }
        for b in &c.binds {
            if exposes_socket(&b.host, engine_socket) {
                if !has(&Grant::DockerSocket) {
                    refuse(subject.clone(), format!("docker_socket (bind of {})", b.host), Grant::DockerSocket);
                }
                continue;
            }
            let covered = grants.iter().any(|g| match g {
                Grant::HostPath { host, read_only, .. } => under(&b.host, host) && (!read_only || b.read_only),
                _ => false,
            });
            if !covered {
                let mode = if b.read_only { "read-only" } else { "read-write" };
                refuse(
                    subject.clone(),
                    format!("host_path {} -> {} ({mode})", b.host, b.target),
                    Grant::HostPath { host: b.host.clone(), target: Some(b.target.clone()), read_only: b.read_only },
                );
            }
        }
        for p in c.ports.iter().filter(|p| p.host < 1024) {
            if !has(&Grant::LowPorts) {
                refuse(subject.clone(), format!("low_ports (host port {}/{})", p.host, p.protocol), Grant::LowPorts);
            }
        }
        for d in &c.devices {
            let covered = grants.iter().any(|g| matches!(g, Grant::Device { path } if under(d, path)));
            if !covered {
                refuse(subject.clone(), format!("device {d}"), Grant::Device { path: d.clone() });
            }
        }
        // Each capability is granted by name; one grant never covers another (decision D24).
        for cap in &c.cap_add {
            if !has(&Grant::Capability { name: *cap }) {
                refuse(subject.clone(), format!("capability {cap}"), Grant::Capability { name: *cap });
            }
        }
        if let Some(n) = c.pids_limit.filter(|n| *n > DEFAULT_PIDS_LIMIT) {
            let covered = grants.iter().any(|g| matches!(g, Grant::PidsLimit { max } if *max >= n));
            if !covered {
                refuse(subject.clone(), format!("pids_limit {n}"), Grant::PidsLimit { max: n });
            }
        }
        if !c.no_new_privileges && !has(&Grant::NewPrivileges) {
            refuse(subject.clone(), "new_privileges".into(), Grant::NewPrivileges);
        }
    }
    for v in &manifest.volumes {
        if let Some(share) = &v.shared {
            let covered = grants.iter().any(|g| matches!(g, Grant::SharedVolume { name } if name == share.as_str()));
            if !covered {
                refuse(
                    format!("volume {}", v.name),
                    format!("shared_volume {share}"),
                    Grant::SharedVolume { name: share.to_string() },
                );
            }
        }
    }
    out
}

/// The real paths of `manifest`'s binds (symlinks resolved), checked again against `grants`:
/// the lexical check of [`refusals`] cannot see a symlink an app planted inside a granted
/// folder (`/srv/media/evil -> /etc`), or one that leads to the engine socket. A bind whose real
/// path is outside every grant that covers it, or is an engine socket without `docker_socket`,
/// is refused. Run at every apply; the container is then created with the real path, so the
/// path checked is the path mounted. A bind source that does not exist keeps its path (the
/// engine refuses to mount it).
pub fn resolve_binds(
    manifest: &Manifest,
    grants: &[Grant],
    engine_socket: &str,
) -> Result<std::collections::BTreeMap<String, String>, Vec<Refusal>> {
    let real = |p: &str| std::fs::canonicalize(p).map(|r| r.to_string_lossy().into_owned()).ok();
    let mut resolved = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for c in &manifest.containers {
        for b in &c.binds {
            let Some(actual) = real(&b.host) else { continue };
            if exposes_socket(&actual, engine_socket) || exposes_socket(&b.host, engine_socket) {
                if !grants.contains(&Grant::DockerSocket) {
                    out.push(Refusal::new(
                        format!("container {}", c.name),
                        format!("docker_socket (bind of {} resolves to {actual})", b.host),
                        Grant::DockerSocket,
                    ));
                }
            } else {
                let covered = grants.iter().any(|g| match g {
                    Grant::HostPath { host, read_only, .. } => {
                        let root = real(host).unwrap_or_else(|| host.clone());
                        under(&actual, &root) && (!read_only || b.read_only)
                    }
                    _ => false,
                });
                if !covered {
                    out.push(Refusal::new(
                        format!("container {}", c.name),
                        format!("host_path {} resolves to {actual}, outside what is granted", b.host),
                        Grant::HostPath { host: actual.clone(), target: None, read_only: b.read_only },
                    ));
                }
            }
            resolved.insert(b.host.clone(), actual);
        }
    }
    if out.is_empty() { Ok(resolved) } else { Err(out) }
}

/// `path` is `root` or inside it (both clean absolute paths, as validation guarantees).
fn under(path: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    root.is_empty() || path == root || path.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
}

/// A bind of `host` exposes an engine socket: the configured one or Docker's usual paths, or a
/// folder holding one of them.
fn exposes_socket(host: &str, engine_socket: &str) -> bool {
    let sockets = ["/var/run/docker.sock", "/run/docker.sock", engine_socket];
    sockets.iter().filter(|s| Path::new(s).is_absolute()).any(|s| under(s, host))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use catalog::manifest::Limits;

    const HEX: &str = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

    fn manifest(extra: &str, container_extra: &str) -> Manifest {
        let toml = format!(
            r#"
schema = 1
id = "media"
version = "1.0.0"
publisher = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
title = "Media"
summary = "s"
description = "d"
license = "MIT"
source = "https://example.org/x"
min_node_version = "0.1.0"
{extra}
[[containers]]
name = "server"
image = "docker.io/library/x@sha256:{HEX}"
{container_extra}
"#
        );
        Manifest::from_toml_str(&toml, &Limits::default()).unwrap()
    }

    #[test]
    fn refuses_what_is_not_granted_and_names_it() {
        let m = manifest(
            r#"permissions = [{ kind = "privileged" }, { kind = "host_path", host = "/srv/media", target = "/media", read_only = true }, { kind = "device", path = "/dev/dri" }]"#,
            r#"privileged = true
binds = [{ host = "/srv/media", target = "/media", read_only = true }]
devices = ["/dev/dri"]"#,
        );
        let r = refusals(&m, &[], "/var/run/docker.sock");
        let names: Vec<&str> = r.iter().map(|r| r.permission.as_str()).collect();
        assert_eq!(names, ["privileged", "host_path /srv/media -> /media (read-only)", "device /dev/dri"]);
        let grants = [
            Grant::Privileged,
            Grant::HostPath { host: "/srv".into(), target: None, read_only: true },
            Grant::Device { path: "/dev/dri".into() },
        ];
        assert!(refusals(&m, &grants, "/var/run/docker.sock").is_empty());
    }

    #[test]
    fn each_relaxation_of_the_container_defaults_needs_its_own_grant() {
        let m = manifest(
            r#"permissions = [
  { kind = "capability", name = "NET_ADMIN" },
  { kind = "capability", name = "NET_RAW" },
  { kind = "pids_limit", max = 4096 },
  { kind = "new_privileges" },
]"#,
            "cap_add = [\"NET_ADMIN\", \"NET_RAW\"]\npids_limit = 4096\nno_new_privileges = false",
        );
        let r = refusals(&m, &[], "/var/run/docker.sock");
        let shown: Vec<(&str, &str)> = r.iter().map(|r| (r.permission.as_str(), r.grant_toml.as_str())).collect();
        assert_eq!(
            shown,
            [
                ("capability NET_ADMIN", r#"{ kind = "capability", name = "NET_ADMIN" }"#),
                ("capability NET_RAW", r#"{ kind = "capability", name = "NET_RAW" }"#),
                ("pids_limit 4096", r#"{ kind = "pids_limit", max = 4096 }"#),
                ("new_privileges", r#"{ kind = "new_privileges" }"#),
            ]
        );
        assert!(r.iter().all(|r| r.subject == "container server"));
        // One capability's grant does not cover another; privileged does not stand in for them,
        // and a smaller process limit does not cover a bigger one.
        let partial = [
            Grant::Capability { name: "NET_ADMIN".parse().unwrap() },
            Grant::Privileged,
            Grant::PidsLimit { max: 2048 },
            Grant::NewPrivileges,
        ];
        let left: Vec<String> =
            refusals(&m, &partial, "/var/run/docker.sock").into_iter().map(|r| r.permission).collect();
        assert_eq!(left, ["capability NET_RAW", "pids_limit 4096"]);
        let all = [
            Grant::Capability { name: "NET_ADMIN".parse().unwrap() },
            Grant::Capability { name: "NET_RAW".parse().unwrap() },
            Grant::PidsLimit { max: 8192 },
            Grant::NewPrivileges,
        ];
        assert!(refusals(&m, &all, "/var/run/docker.sock").is_empty());
        // A limit at or below the default needs no grant.
        let low = manifest("", "pids_limit = 1024");
        assert!(refusals(&low, &[], "/var/run/docker.sock").is_empty());
    }

    #[test]
    fn read_only_grant_does_not_cover_read_write_bind() {
        let m = manifest(
            r#"permissions = [{ kind = "host_path", host = "/srv/media", target = "/media" }]"#,
            r#"binds = [{ host = "/srv/media", target = "/media" }]"#,
        );
        let ro = [Grant::HostPath { host: "/srv/media".into(), target: None, read_only: true }];
        assert_eq!(refusals(&m, &ro, "/var/run/docker.sock").len(), 1);
        let rw = [Grant::HostPath { host: "/srv/media".into(), target: None, read_only: false }];
        assert!(refusals(&m, &rw, "/var/run/docker.sock").is_empty());
        let sibling = [Grant::HostPath { host: "/srv/med".into(), target: None, read_only: false }];
        assert_eq!(refusals(&m, &sibling, "/var/run/docker.sock").len(), 1);
    }

    #[test]
    fn engine_socket_needs_docker_socket_even_with_a_host_path_grant() {
        let m = manifest(
            r#"permissions = [{ kind = "docker_socket" }]"#,
            r#"binds = [{ host = "/var/run/docker.sock", target = "/var/run/docker.sock" }]"#,
        );
        let wide = [Grant::HostPath { host: "/".into(), target: None, read_only: false }];
        let r = refusals(&m, &wide, "/var/run/docker.sock");
        assert_eq!(r[0].permission, "docker_socket (bind of /var/run/docker.sock)");
        assert!(refusals(&m, &[Grant::DockerSocket], "/var/run/docker.sock").is_empty());
        // A Podman socket configured for the node counts as the engine socket too.
        assert!(exposes_socket("/run/user/1000/podman", "/run/user/1000/podman/podman.sock"));
    }
}
