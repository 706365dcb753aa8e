//! The manifest an import builds, before it is written and validated, and its `archy.toml` text.
//!
//! A draft holds what the source said, translated but not checked: a draft may well not
//! validate (an image without a digest, a missing license). [`Draft::to_toml`] writes it in the
//! layout of `catalog::manifest::example_toml`, and the command then runs the same validation as
//! `archy app validate` on the written folder.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use catalog::manifest::{Charset, HostFact, Permission, Protocol, RestartPolicy};

/// The app's manifest, as far as the source tells it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Draft {
    pub(crate) id: String,
    pub(crate) version: String,
    pub(crate) publisher: String,
    pub(crate) title: String,
    pub(crate) summary: String,
    pub(crate) description: String,
    pub(crate) icon: Option<String>,
    pub(crate) categories: Vec<String>,
    /// `None` when neither the source nor `--license` says; the manifest then lacks the field.
    pub(crate) license: Option<String>,
    /// `None` when neither the source nor `--source` says.
    pub(crate) source: Option<String>,
    pub(crate) min_node_version: String,
    pub(crate) volumes: Vec<String>,
    pub(crate) secrets: Vec<DraftSecret>,
    pub(crate) permissions: Vec<Permission>,
    pub(crate) containers: Vec<DraftContainer>,
}

/// A generated secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DraftSecret {
    pub(crate) name: String,
    pub(crate) length: u32,
    pub(crate) charset: Charset,
}

/// One container.
#[derive(Debug, Clone, Default)]
pub(crate) struct DraftContainer {
    pub(crate) name: String,
    pub(crate) image: String,
    pub(crate) command: Option<Vec<String>>,
    pub(crate) entrypoint: Option<Vec<String>>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) derived_env: BTreeMap<String, HostFact>,
    pub(crate) secret_env: BTreeMap<String, String>,
    pub(crate) ports: Vec<(u16, u16, Protocol)>,
    pub(crate) volumes: Vec<(String, String, bool)>,
    pub(crate) tmpfs: Vec<(String, Option<u64>)>,
    pub(crate) binds: Vec<(String, String, bool)>,
    pub(crate) devices: Vec<String>,
    pub(crate) user: Option<String>,
    pub(crate) healthcheck: Option<DraftHealthcheck>,
    pub(crate) restart: Option<RestartPolicy>,
    pub(crate) memory_mib: Option<u64>,
    pub(crate) cpus_milli: Option<u32>,
    pub(crate) depends_on: Vec<String>,
    pub(crate) privileged: bool,
    pub(crate) host_network: bool,
    /// Capabilities added, in the manifest's spelling.
    pub(crate) cap_add: Vec<String>,
}

/// A healthcheck in whole seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DraftHealthcheck {
    pub(crate) command: Vec<String>,
    pub(crate) interval_secs: Option<u32>,
    pub(crate) timeout_secs: Option<u32>,
    pub(crate) start_period_secs: Option<u32>,
    pub(crate) retries: Option<u32>,
}

impl Draft {
    /// Requests `permission` once.
    pub(crate) fn request(&mut self, permission: Permission) {
        if !self.permissions.contains(&permission) {
            self.permissions.push(permission);
        }
    }

    /// Declares volume `name` once.
    pub(crate) fn volume(&mut self, name: &str) {
        if !self.volumes.iter().any(|v| v == name) {
            self.volumes.push(name.to_owned());
        }
    }

    /// Declares secret `secret` once (the first declaration's shape wins).
    pub(crate) fn secret(&mut self, secret: DraftSecret) {
        if !self.secrets.iter().any(|s| s.name == secret.name) {
            self.secrets.push(secret);
        }
    }

    /// The `archy.toml` text. `header` lines become comments at the top.
    pub(crate) fn to_toml(&self, header: &[String]) -> String {
        let mut t = String::new();
        t.push_str("# archy app manifest, schema v1. Field reference: docs/manifest.md\n");
        for line in header {
            let _ = writeln!(t, "# {line}");
        }
        t.push_str("schema = 1\n");
        let _ = writeln!(t, "id = {}", q(&self.id));
        let _ = writeln!(t, "version = {}", q(&self.version));
        let _ = writeln!(t, "publisher = {}", q(&self.publisher));
        let _ = writeln!(t, "title = {}", q(&self.title));
        let _ = writeln!(t, "summary = {}", q(&self.summary));
        let _ = writeln!(t, "description = {}", multiline(&self.description));
        if let Some(icon) = &self.icon {
            let _ = writeln!(t, "icon = {}", q(icon));
        }
        let _ = writeln!(t, "categories = {}", list(&self.categories));
        match &self.license {
            Some(license) => {
                let _ = writeln!(t, "license = {}", q(license));
            }
            None => {
                t.push_str("# license = \"…\"  # the source does not say: write the app's SPDX license expression\n")
            }
        }
        match &self.source {
            Some(source) => {
                let _ = writeln!(t, "source = {}", q(source));
            }
            None => t.push_str("# source = \"https://…\"  # the source does not say: the app's source code URL\n"),
        }
        let _ = writeln!(t, "min_node_version = {}", q(&self.min_node_version));
        if !self.permissions.is_empty() {
            t.push_str("\n# Permissions the operator must grant before the app runs.\npermissions = [\n");
            for p in &self.permissions {
                let _ = writeln!(t, "  {},", permission(p));
            }
            t.push_str("]\n");
        }
        for v in &self.volumes {
            let _ = write!(t, "\n[[volumes]]\nname = {}\n", q(v));
        }
        for s in &self.secrets {
            let _ = write!(
                t,
                "\n[[secrets]]\nname = {}\nlength = {}\ncharset = {}\n",
                q(&s.name),
                s.length,
                q(s.charset.as_str())
            );
        }
        for c in &self.containers {
            container(&mut t, c);
        }
        t
    }
}

fn container(t: &mut String, c: &DraftContainer) {
    let _ = write!(t, "\n[[containers]]\nname = {}\nimage = {}\n", q(&c.name), q(&c.image));
    if let Some(cmd) = &c.entrypoint {
        let _ = writeln!(t, "entrypoint = {}", list(cmd));
    }
    if let Some(cmd) = &c.command {
        let _ = writeln!(t, "command = {}", list(cmd));
    }
    if let Some(user) = &c.user {
        let _ = writeln!(t, "user = {}", q(user));
    }
    if let Some(restart) = c.restart {
        let _ = writeln!(t, "restart = {}", q(restart.as_str()));
    }
    if let Some(m) = c.memory_mib {
        let _ = writeln!(t, "memory_mib = {m}");
    }
    if let Some(cpu) = c.cpus_milli {
        let _ = writeln!(t, "cpus_milli = {cpu}");
    }
    if c.privileged {
        t.push_str("privileged = true\n");
    }
    if c.host_network {
        t.push_str("host_network = true\n");
    }
    if !c.cap_add.is_empty() {
        let _ = writeln!(t, "cap_add = {}", list(&c.cap_add));
    }
    if !c.depends_on.is_empty() {
        let _ = writeln!(t, "depends_on = {}", list(&c.depends_on));
    }
    let items = |t: &mut String, key: &str, items: Vec<String>| {
        if !items.is_empty() {
            let _ = writeln!(t, "{key} = [\n  {},\n]", items.join(",\n  "));
        }
    };
    items(
        t,
        "ports",
        c.ports
            .iter()
            .map(|(h, p, proto)| format!("{{ host = {h}, container = {p}, protocol = {} }}", q(proto.as_str())))
            .collect(),
    );
    items(
        t,
        "volumes",
        c.volumes
            .iter()
            .map(|(v, target, ro)| format!("{{ volume = {}, target = {}{} }}", q(v), q(target), ro_field(*ro)))
            .collect(),
    );
    items(
        t,
        "tmpfs",
        c.tmpfs
            .iter()
            .map(|(target, size)| match size {
                Some(s) => format!("{{ target = {}, size_mib = {s} }}", q(target)),
                None => format!("{{ target = {} }}", q(target)),
            })
            .collect(),
    );
    items(
        t,
        "binds",
        c.binds
            .iter()
            .map(|(h, target, ro)| format!("{{ host = {}, target = {}{} }}", q(h), q(target), ro_field(*ro)))
            .collect(),
    );
    items(t, "devices", c.devices.iter().map(|d| q(d)).collect());
    let table = |t: &mut String, name: &str, entries: Vec<(String, String)>| {
        if !entries.is_empty() {
            let _ = writeln!(t, "\n[containers.{name}]");
            for (k, v) in entries {
                let _ = writeln!(t, "{} = {}", key(&k), q(&v));
            }
        }
    };
    table(t, "env", c.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    table(t, "derived_env", c.derived_env.iter().map(|(k, v)| (k.clone(), v.as_str().to_owned())).collect());
    table(t, "secret_env", c.secret_env.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    if let Some(h) = &c.healthcheck {
        let _ = write!(t, "\n[containers.healthcheck]\ncommand = {}\n", list(&h.command));
        for (k, v) in [
            ("interval_secs", h.interval_secs),
            ("timeout_secs", h.timeout_secs),
            ("start_period_secs", h.start_period_secs),
            ("retries", h.retries),
        ] {
            if let Some(v) = v {
                let _ = writeln!(t, "{k} = {v}");
            }
        }
    }
}

fn ro_field(read_only: bool) -> &'static str {
    if read_only { ", read_only = true" } else { "" }
}

fn permission(p: &Permission) -> String {
    match p {
        Permission::HostPath { host, target, read_only } => {
            format!("{{ kind = \"host_path\", host = {}, target = {}, read_only = {read_only} }}", q(host), q(target))
        }
        Permission::Device { path } => format!("{{ kind = \"device\", path = {} }}", q(path)),
        Permission::SharedVolume { name } => format!("{{ kind = \"shared_volume\", name = {} }}", q(name.as_str())),
        Permission::Capability { name } => format!("{{ kind = \"capability\", name = {} }}", q(&name.to_string())),
        Permission::PidsLimit { max } => format!("{{ kind = \"pids_limit\", max = {max} }}"),
        other => format!("{{ kind = {} }}", q(other.kind())),
    }
}

/// A TOML basic string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML key: bare when it can be, quoted otherwise.
fn key(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        s.to_owned()
    } else {
        q(s)
    }
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|s| q(s)).collect::<Vec<_>>().join(", "))
}

/// A multi-line basic string when the text has line breaks (and no `"""`), else a basic string.
fn multiline(s: &str) -> String {
    let plain = !s.contains("\"\"\"") && !s.contains('\\') && !s.ends_with('"');
    if s.contains('\n') && plain && !s.chars().any(|c| c.is_control() && c != '\n') {
        format!("\"\"\"\n{s}\"\"\"")
    } else {
        q(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_writes_toml_that_the_catalog_reads() {
        let mut d = Draft {
            id: "demo".into(),
            version: "1.0.0".into(),
            publisher: "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp".into(),
            title: "Demo \"quoted\"".into(),
            summary: "A demo.".into(),
            description: "Line one.\nLine two.".into(),
            categories: vec!["web".into()],
            license: Some("MIT".into()),
            source: Some("https://example.org/demo".into()),
            min_node_version: "0.1.0".into(),
            ..Draft::default()
        };
        d.volume("data");
        d.request(Permission::Device { path: "/dev/dri".into() });
        d.containers.push(DraftContainer {
            name: "web".into(),
            image: format!("nginx@sha256:{}", "a".repeat(64)),
            env: BTreeMap::from([("GREETING".into(), "say \"hi\"".into())]),
            ports: vec![(8080, 80, Protocol::Tcp)],
            volumes: vec![("data".into(), "/data".into(), false)],
            devices: vec!["/dev/dri".into()],
            ..DraftContainer::default()
        });
        let toml = d.to_toml(&["imported".into()]);
        let m = catalog::manifest::Manifest::from_toml_str(&toml, &catalog::manifest::Limits::default())
            .unwrap_or_else(|e| panic!("{e}\n{toml}"));
        assert_eq!(m.title, "Demo \"quoted\"");
        assert_eq!(m.description, "Line one.\nLine two.");
        assert_eq!(m.containers[0].env["GREETING"], "say \"hi\"");
    }
}
