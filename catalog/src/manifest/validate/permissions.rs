//! The `[[permissions]]` an app requests, and the host paths they name.

use super::Validator;
use crate::manifest::raw::RawPermission;
use crate::manifest::{MAX_PIDS_LIMIT, Permission, paths};

impl Validator<'_> {
    pub(super) fn permissions(&mut self, raw: &[RawPermission]) -> Vec<Permission> {
        if raw.len() > self.limits.max_permissions {
            self.p.push(
                "permissions",
                format!("{} permissions, over the limit of {}", raw.len(), self.limits.max_permissions),
                "request only what the app uses",
            );
        }
        let mut out: Vec<Permission> = Vec::new();
        for (k, r) in raw.iter().enumerate() {
            let Some(perm) = self.permission(k, r) else { continue };
            if out.contains(&perm) {
                self.p.push(
                    format!("permissions[{k}]"),
                    format!("permission `{perm}` is requested twice"),
                    "remove the duplicate",
                );
            } else {
                out.push(perm);
            }
        }
        out
    }

    /// Rule: each permission kind has exactly its own fields, with clean absolute host paths.
    fn permission(&mut self, k: usize, r: &RawPermission) -> Option<Permission> {
        let base = format!("permissions[{k}]");
        let kinds = "privileged, host_network, docker_socket, host_path, device, shared_volume, capability, pids_limit, \
                     new_privileges";
        let Some(kind) = r.kind.as_deref() else {
            self.missing(&format!("{base}.kind"), &format!("add kind = \"…\", one of {kinds}"));
            return None;
        };
        let allowed: &[&str] = match kind {
            "privileged" | "host_network" | "docker_socket" | "new_privileges" => &[],
            "host_path" => &["host", "target", "read_only"],
            "device" => &["path"],
            "shared_volume" | "capability" => &["name"],
            "pids_limit" => &["max"],
            other => {
                self.p.push(
                    format!("{base}.kind"),
                    format!("unknown permission kind `{other}`"),
                    format!("use one of {kinds}"),
                );
                return None;
            }
        };
        let present = [
            ("host", r.host.is_some()),
            ("target", r.target.is_some()),
            ("read_only", r.read_only.is_some()),
            ("path", r.path.is_some()),
            ("name", r.name.is_some()),
            ("max", r.max.is_some()),
        ];
        let mut stray = false;
        for (field, is_set) in present {
            if is_set && !allowed.contains(&field) {
                self.p.push(
                    format!("{base}.{field}"),
                    format!("`{field}` does not apply to a `{kind}` permission"),
                    "remove it",
                );
                stray = true;
            }
        }
        let perm = match kind {
            "privileged" => Permission::Privileged,
            "host_network" => Permission::HostNetwork,
            "docker_socket" => Permission::DockerSocket,
            "host_path" => {
                let host = self.required(&format!("{base}.host"), &r.host, "add host = \"/absolute/host/path\"");
                let target = self.required(&format!("{base}.target"), &r.target, "add target = \"/path/in/container\"");
                let host = host.filter(|h| self.absolute(&format!("{base}.host"), h));
                let target = target.filter(|t| self.absolute(&format!("{base}.target"), t));
                if let Some(h) = host
                    && paths::exposes_docker_socket(h)
                {
                    self.p.push(
                        format!("{base}.host"),
                        format!("host path `{h}` exposes the Docker socket"),
                        "request { kind = \"docker_socket\" } and bind /var/run/docker.sock itself",
                    );
                    return None;
                }
                Permission::HostPath {
                    host: host?.to_owned(),
                    target: target?.to_owned(),
                    read_only: r.read_only.unwrap_or(false),
                }
            }
            "device" => {
                let path = self.required(&format!("{base}.path"), &r.path, "add path = \"/dev/…\"")?;
                if !self.device_path(&format!("{base}.path"), path) {
                    return None;
                }
                Permission::Device { path: path.to_owned() }
            }
            "capability" => {
                let field = format!("{base}.name");
                let name = self.required(&field, &r.name, "add name = \"NET_ADMIN\" (the capability, without CAP_)")?;
                Permission::Capability { name: self.capability(&field, name)? }
            }
            "pids_limit" => {
                let field = format!("{base}.max");
                let Some(max) = r.max else {
                    self.missing(&field, "add max = <the highest pids_limit of the app's containers>");
                    return None;
                };
                if max == 0 || max > MAX_PIDS_LIMIT {
                    self.p.push(
                        &field,
                        format!("{max} is outside 1..={MAX_PIDS_LIMIT}"),
                        "use the highest pids_limit of the app's containers",
                    );
                    return None;
                }
                Permission::PidsLimit { max }
            }
            "new_privileges" => Permission::NewPrivileges,
            _ => Permission::SharedVolume { name: self.name(&format!("{base}.name"), &r.name, "shared volume")? },
        };
        (!stray).then_some(perm)
    }

    pub(super) fn absolute(&mut self, field: &str, s: &str) -> bool {
        if !self.string(field, s) {
            return false;
        }
        match paths::check_absolute(s) {
            Ok(()) => true,
            Err((problem, fix)) => {
                self.p.push(field, problem, fix);
                false
            }
        }
    }

    pub(super) fn device_path(&mut self, field: &str, s: &str) -> bool {
        if !self.absolute(field, s) {
            return false;
        }
        if !s.starts_with("/dev/") {
            self.p.push(
                field,
                format!("`{s}` is not a device under /dev/"),
                "name a device like /dev/dri or /dev/ttyUSB0",
            );
            return false;
        }
        true
    }
}
