//! What a container may relax of the node's defaults, each only with the matching requested
//! permission: `privileged`, `host_network`, `cap_add`, `pids_limit` and
//! `no_new_privileges = false`.

use super::{Context, Validator};
use crate::manifest::raw::RawContainer;
use crate::manifest::{Capability, CapabilityError, DEFAULT_PIDS_LIMIT, MAX_PIDS_LIMIT, Permission};

/// A container's relaxations, validated.
pub(super) struct Relaxations {
    pub(super) cap_add: Vec<Capability>,
    pub(super) pids_limit: Option<u32>,
    pub(super) no_new_privileges: bool,
}

impl Validator<'_> {
    /// Rule: every relaxation of the container defaults is covered by a requested permission,
    /// and a privileged container (which has them all) lists none of the finer ones.
    pub(super) fn relaxations(&mut self, base: &str, c: &RawContainer, cx: &Context<'_>) -> Option<Relaxations> {
        let requested = |p: &Permission| cx.permissions.contains(p);
        if c.privileged && !requested(&Permission::Privileged) {
            self.p.push(
                format!("{base}.privileged"),
                "container is privileged but the manifest does not request the `privileged` permission",
                "add { kind = \"privileged\" } to permissions, or remove privileged = true",
            );
        }
        if c.host_network && !requested(&Permission::HostNetwork) {
            self.p.push(
                format!("{base}.host_network"),
                "container uses the host network but the manifest does not request the `host_network` permission",
                "add { kind = \"host_network\" } to permissions, or remove host_network = true",
            );
        }
        let cap_add = self.cap_add(base, c, cx);

        let field = format!("{base}.pids_limit");
        let pids_limit = match c.pids_limit {
            None => Some(None),
            Some(n) if n == 0 || n > MAX_PIDS_LIMIT => {
                self.p.push(
                    &field,
                    format!("{n} is outside 1..={MAX_PIDS_LIMIT}"),
                    format!("use a number of processes, or leave it out for the default of {DEFAULT_PIDS_LIMIT}"),
                );
                None
            }
            Some(n) => {
                let covered = cx.permissions.iter().any(|p| matches!(p, Permission::PidsLimit { max } if *max >= n));
                if n > DEFAULT_PIDS_LIMIT && !covered {
                    self.p.push(
                        &field,
                        format!(
                            "pids_limit {n} is above the default of {DEFAULT_PIDS_LIMIT} but the manifest does not \
                             request the `pids_limit` permission up to {n}"
                        ),
                        format!(
                            "add {{ kind = \"pids_limit\", max = {n} }} to permissions, or lower pids_limit to \
                             {DEFAULT_PIDS_LIMIT}"
                        ),
                    );
                }
                Some(Some(n))
            }
        };

        let field = format!("{base}.no_new_privileges");
        let no_new_privileges = c.no_new_privileges.unwrap_or(true);
        if !no_new_privileges {
            if c.privileged {
                self.p.push(
                    &field,
                    "a privileged container already runs without no-new-privileges",
                    "remove no_new_privileges = false",
                );
            } else if !requested(&Permission::NewPrivileges) {
                self.p.push(
                    &field,
                    "container runs without no-new-privileges but the manifest does not request the \
                     `new_privileges` permission",
                    "add { kind = \"new_privileges\" } to permissions, or remove no_new_privileges = false",
                );
            }
        }

        Some(Relaxations { cap_add: cap_add?, pids_limit: pids_limit?, no_new_privileges })
    }

    /// Rule: `cap_add` names Linux capabilities in their one spelling, each once and each
    /// requested as a `capability` permission; never `ALL` or one that amounts to control of the
    /// host (decision D24).
    fn cap_add(&mut self, base: &str, c: &RawContainer, cx: &Context<'_>) -> Option<Vec<Capability>> {
        if c.privileged && !c.cap_add.is_empty() {
            self.p.push(
                format!("{base}.cap_add"),
                "a privileged container already has every capability",
                "remove cap_add, or privileged = true",
            );
        }
        let mut out: Vec<Capability> = Vec::new();
        let mut ok = true;
        for (j, name) in c.cap_add.iter().enumerate() {
            let field = format!("{base}.cap_add[{j}]");
            let Some(cap) = self.capability(&field, name) else {
                ok = false;
                continue;
            };
            if out.contains(&cap) {
                self.p.push(&field, format!("`{cap}` is listed twice"), "remove the duplicate");
                ok = false;
                continue;
            }
            if !c.privileged && !cx.permissions.contains(&Permission::Capability { name: cap }) {
                self.p.push(
                    &field,
                    format!("container adds capability `{cap}` but the manifest does not request it"),
                    format!(
                        "add {{ kind = \"capability\", name = \"{cap}\" }} to permissions, or remove it from cap_add"
                    ),
                );
            }
            out.push(cap);
        }
        ok.then_some(out)
    }

    /// A capability name as `cap_add` and `capability` permissions write it.
    pub(super) fn capability(&mut self, field: &str, name: &str) -> Option<Capability> {
        if !self.string(field, name) {
            return None;
        }
        match name.parse::<Capability>() {
            Ok(cap) => Some(cap),
            Err(e) => {
                let fix = match &e {
                    CapabilityError::NotCanonical { canonical, .. } => format!("write `{canonical}`"),
                    CapabilityError::All | CapabilityError::HostLevel { .. } => {
                        "set privileged = true and request { kind = \"privileged\" } if the app truly needs it, \
                         so the operator grants what it amounts to; or list the capabilities it needs"
                            .to_owned()
                    }
                    _ => "use a capability from capabilities(7) without the CAP_ prefix, e.g. NET_ADMIN".to_owned(),
                };
                self.p.push(field, e.to_string(), fix);
                None
            }
        }
    }
}
