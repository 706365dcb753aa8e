//! Storage and host access: the app's `[[volumes]]`, and a container's volume mounts, tmpfs,
//! binds and devices, each checked against the permissions the manifest requests.

use std::collections::{BTreeSet, HashMap};

use super::{Context, Validator};
use crate::manifest::names::NAME_FIX;
use crate::manifest::raw::{RawBind, RawContainer, RawMount, RawTmpfs, RawVolume};
use crate::manifest::{Bind, Name, Permission, Tmpfs, Volume, VolumeMount, paths};

impl Validator<'_> {
    pub(super) fn volumes(&mut self, raw: &[RawVolume], perms: &[Permission]) -> (Vec<Volume>, BTreeSet<Name>) {
        if raw.len() > self.limits.max_volumes {
            self.p.push(
                "volumes",
                format!("{} volumes, over the limit of {}", raw.len(), self.limits.max_volumes),
                "use fewer volumes with sub-folders",
            );
        }
        let mut out = Vec::new();
        let mut names = BTreeSet::new();
        let mut shares = BTreeSet::new();
        for (k, r) in raw.iter().enumerate() {
            let name = self.name(&format!("volumes[{k}].name"), &r.name, "volume");
            let shared = match &r.shared {
                None => None,
                Some(s) => match s.parse::<Name>() {
                    Err(e) => {
                        self.p.push(
                            format!("volumes[{k}].shared"),
                            format!("{e}, so it is not a valid share name"),
                            NAME_FIX,
                        );
                        None
                    }
                    Ok(share) => {
                        let requested =
                            perms.iter().any(|p| matches!(p, Permission::SharedVolume { name } if *name == share));
                        if !requested {
                            self.p.push(
                                format!("volumes[{k}].shared"),
                                format!("volume is shared as `{share}` but the manifest does not request the `shared_volume` permission for it"),
                                format!("add {{ kind = \"shared_volume\", name = \"{share}\" }} to permissions, or remove shared"),
                            );
                        } else if !shares.insert(share.clone()) {
                            self.p.push(
                                format!("volumes[{k}].shared"),
                                format!("share `{share}` is used by two volumes"),
                                "declare each share once",
                            );
                        }
                        Some(share)
                    }
                },
            };
            let Some(name) = name else { continue };
            if !names.insert(name.clone()) {
                self.p.push(
                    format!("volumes[{k}].name"),
                    format!("volume name `{name}` is declared twice"),
                    "give each volume its own name",
                );
                continue;
            }
            out.push(Volume { name, shared });
        }
        (out, names)
    }

    /// Rule: a mount target is a clean absolute path, used once per container.
    fn target(
        &mut self,
        field: &str,
        target: &Option<String>,
        targets: &mut HashMap<String, String>,
    ) -> Option<String> {
        let t = self.required(field, target, "add target = \"/path/in/container\"")?;
        if !self.absolute(field, t) {
            return None;
        }
        if let Some(other) = targets.insert(t.to_owned(), field.to_owned()) {
            self.p.push(field, format!("`{t}` is already a mount target ({other})"), "mount one thing per target");
            return None;
        }
        Some(t.to_owned())
    }

    pub(super) fn mounts(
        &mut self,
        base: &str,
        raw: &[RawMount],
        cx: &Context<'_>,
        targets: &mut HashMap<String, String>,
    ) -> Option<Vec<VolumeMount>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (j, m) in raw.iter().enumerate() {
            let field = format!("{base}.volumes[{j}]");
            let volume = self.name(&format!("{field}.volume"), &m.volume, "volume").filter(|v| {
                let declared = cx.volumes.contains(v);
                if !declared {
                    self.p.push(
                        format!("{field}.volume"),
                        format!("volume `{v}` is not declared in [[volumes]]"),
                        format!("add a [[volumes]] entry with name = \"{v}\""),
                    );
                }
                declared
            });
            let target = self.target(&format!("{field}.target"), &m.target, targets);
            match (volume, target) {
                (Some(volume), Some(target)) => out.push(VolumeMount { volume, target, read_only: m.read_only }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    pub(super) fn tmpfs(
        &mut self,
        base: &str,
        raw: &[RawTmpfs],
        targets: &mut HashMap<String, String>,
    ) -> Option<Vec<Tmpfs>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (j, t) in raw.iter().enumerate() {
            let field = format!("{base}.tmpfs[{j}]");
            if t.size_mib == Some(0) {
                self.p.push(
                    format!("{field}.size_mib"),
                    "a tmpfs of 0 MiB holds nothing",
                    "give a size in MiB, or leave it out",
                );
                ok = false;
            }
            match self.target(&format!("{field}.target"), &t.target, targets) {
                Some(target) => out.push(Tmpfs { target, size_mib: t.size_mib }),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Rules: a bind's host path is clean and absolute; binding the Docker socket (or a folder
    /// holding it) needs `docker_socket`; any other bind needs a `host_path` permission with the
    /// same host and target, and a read-only permission allows only read-only binds.
    pub(super) fn binds(
        &mut self,
        base: &str,
        raw: &[RawBind],
        cx: &Context<'_>,
        targets: &mut HashMap<String, String>,
    ) -> Option<Vec<Bind>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (j, b) in raw.iter().enumerate() {
            let field = format!("{base}.binds[{j}]");
            let host_field = format!("{field}.host");
            let host = self
                .required(&host_field, &b.host, "add host = \"/absolute/host/path\"")
                .filter(|h| self.absolute(&host_field, h))
                .map(str::to_owned);
            let target = self.target(&format!("{field}.target"), &b.target, targets);
            let (Some(host), Some(target)) = (host, target) else {
                ok = false;
                continue;
            };
            if paths::exposes_docker_socket(&host) {
                if !cx.permissions.contains(&Permission::DockerSocket) {
                    self.p.push(
                        &host_field,
                        format!("binding `{host}` exposes the Docker socket (control of the host) but the manifest does not request the `docker_socket` permission"),
                        "add { kind = \"docker_socket\" } to permissions, or remove the bind",
                    );
                    ok = false;
                }
            } else {
                let grant = cx.permissions.iter().find_map(|p| match p {
                    Permission::HostPath { host: h, target: t, read_only } if *h == host && *t == target => {
                        Some(*read_only)
                    }
                    _ => None,
                });
                match grant {
                    None => {
                        self.p.push(
                            &host_field,
                            format!("host path `{host}` is mounted but the manifest does not request a `host_path` permission for it"),
                            format!("add {{ kind = \"host_path\", host = \"{host}\", target = \"{target}\", read_only = {} }} to permissions", b.read_only),
                        );
                        ok = false;
                    }
                    Some(true) if !b.read_only => {
                        self.p.push(
                            format!("{field}.read_only"),
                            format!("the `host_path` permission for `{host}` is read-only but the bind is read-write"),
                            "set read_only = true on the bind, or request the permission with read_only = false",
                        );
                        ok = false;
                    }
                    Some(_) => {}
                }
            }
            out.push(Bind { host, target, read_only: b.read_only });
        }
        ok.then_some(out)
    }

    /// Rule: each device is under /dev/ and covered by a `device` permission for the same path.
    pub(super) fn devices(&mut self, base: &str, raw: &[String], cx: &Context<'_>) -> Option<Vec<String>> {
        let mut ok = true;
        for (j, d) in raw.iter().enumerate() {
            let field = format!("{base}.devices[{j}]");
            if !self.device_path(&field, d) {
                ok = false;
            } else if !cx.permissions.iter().any(|p| matches!(p, Permission::Device { path } if path == d)) {
                self.p.push(
                    &field,
                    format!("device `{d}` is used but the manifest does not request a `device` permission for it"),
                    format!("add {{ kind = \"device\", path = \"{d}\" }} to permissions"),
                );
                ok = false;
            }
        }
        ok.then(|| raw.to_vec())
    }

    /// Rule: containers sharing a volume agree on its owner (`data_uid`).
    pub(super) fn data_uid_conflicts(&mut self, containers: &[RawContainer]) {
        let mut owner: HashMap<&str, (usize, u32)> = HashMap::new();
        for (i, c) in containers.iter().enumerate() {
            let Some(uid) = c.data_uid else { continue };
            for m in &c.volumes {
                let Some(volume) = m.volume.as_deref() else { continue };
                match owner.get(volume) {
                    Some(&(first, other)) if other != uid => self.p.push(
                        format!("containers[{i}].data_uid"),
                        format!(
                            "volume `{volume}` is owned by uid {other} for containers[{first}] but by uid {uid} here"
                        ),
                        "use one data_uid for all containers that mount the volume",
                    ),
                    Some(_) => {}
                    None => {
                        owner.insert(volume, (i, uid));
                    }
                }
            }
        }
    }
}
