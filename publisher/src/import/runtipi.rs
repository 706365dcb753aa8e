//! Runtipi apps: `config.json` (the metadata and the form fields the user fills in at install)
//! and `docker-compose.json`, Runtipi's own service format, or a `docker-compose.yml` with
//! `x-runtipi`. `metadata/description.md` and `metadata/logo.jpg` are the description and icon.
//!
//! `docker-compose.json` is rewritten into Compose's shape (`addPorts` → `ports`, `hostPath` →
//! `source`, `capAdd` → `cap_add`…) keeping every line, so the common mapper does the rest and the
//! report names Runtipi's own keys.

use std::collections::BTreeMap;

use catalog::manifest::Charset;

use super::compose::{Compose, Service};
use super::draft::DraftSecret;
use super::vars::{FormField, secret_name};
use super::yaml::{Key, Node, Value};
use super::{IconSource, ImportError, State, WebPort, category, semver_of, unmapped_meta};

const META: &str = "config.json";
const DYNAMIC: &str = "docker-compose.json";

/// Reads `config.json` into the draft and returns the services.
pub(crate) fn read(state: &mut State, compose_file: &str) -> Result<Compose, ImportError> {
    let meta = state.load(META)?;
    state.meta_file = META.to_owned();
    let mut port = None;
    let mut tipi_version = None;
    for (key, v) in meta.as_map().unwrap_or(&[]) {
        let text = v.as_str().map(str::to_owned);
        match (key.text.as_str(), text) {
            ("$schema" | "dynamic_config", _) => {}
            ("id", Some(s)) => state.draft.id = s,
            ("name", Some(s)) => state.draft.title = s,
            ("short_desc", Some(s)) => state.draft.summary = s,
            ("description", Some(s)) => {
                if state.draft.description.is_empty() {
                    state.draft.description = s;
                }
            }
            ("version", Some(s)) => match semver_of(&s) {
                Some(v) => state.draft.version = v,
                None => unmapped_meta(
                    state,
                    META,
                    key,
                    &format!("`{s}` is not a semantic version; write `version` as one (1.2.3)"),
                ),
            },
            ("tipi_version", Some(s)) => tipi_version = Some((s, key.line)),
            ("categories", _) => {
                for c in v.as_seq().unwrap_or(&[]) {
                    state.draft.categories.extend(c.as_str().and_then(category));
                }
            }
            ("port", Some(s)) => match s.parse::<u16>() {
                Ok(p) if p > 0 => port = Some((p, key.line)),
                _ => unmapped_meta(state, META, key, "not a port number"),
            },
            ("source", Some(s)) if s.starts_with("https://") => state.draft.source = Some(s),
            ("website", Some(s)) => state.links.push(format!("Website: <{s}>")),
            ("author", Some(s)) => state.links.push(format!("By {s}.")),
            ("form_fields", _) => form_fields(state, v),
            ("exposable" | "https" | "url_suffix" | "force_expose", _) => unmapped_meta(
                state,
                META,
                key,
                "Runtipi's reverse proxy and domains have no counterpart: a node publishes the app's port",
            ),
            ("supported_architectures", _) => unmapped_meta(
                state,
                META,
                key,
                "a node runs the image for its own architecture; pin a digest of a multi-architecture image",
            ),
            _ => unmapped_meta(state, META, key, "Runtipi store data without a counterpart in the manifest"),
        }
    }
    if state.draft.version.is_empty()
        && let Some((t, line)) = tipi_version
    {
        let origin = state.origin(META, line);
        state.note(origin, format!("tipi_version {t} is Runtipi's package revision, not the app's version"));
    }
    if let Ok(text) = std::fs::read_to_string(state.src.join("metadata/description.md"))
        && !text.trim().is_empty()
    {
        state.draft.description = text.trim().to_owned();
    }
    if state.src.join("metadata/logo.jpg").is_file() {
        state.icon = Some(IconSource::File("metadata/logo.jpg".into()));
    }
    state.vars.web_port = port.map(|p| p.0);
    let compose =
        if state.src.join(DYNAMIC).is_file() && !compose_file.ends_with(".yml") && !compose_file.ends_with(".yaml") {
            let root = state.load(DYNAMIC)?;
            dynamic(state, &root)?
        } else {
            let root = state.load(compose_file)?;
            if let Some((k, v)) = root.entry("x-runtipi") {
                let before = state.unmapped_len();
                for (opt, _) in v.as_map().unwrap_or(&[]) {
                    if opt.text != "schema_version" {
                        let origin = state.origin(compose_file, opt.line);
                        state.unmapped(origin, format!("x-runtipi.{}", opt.text), OVERRIDES);
                    }
                }
                let _ = k;
                state.count(state.unmapped_len() == before);
            }
            let mut compose = super::top_level(state, compose_file, &root)?;
            for s in &mut compose.services {
                if let Some(x) = s.node.get("x-runtipi")
                    && x.get("is_main").and_then(Node::as_bool) == Some(true)
                    && let Some(p) = x.get_str("internal_port").and_then(|p| p.parse().ok())
                {
                    main_port(state, &s.name, p, compose_file, x.line, port);
                }
            }
            compose
        };
    Ok(compose)
}

fn main_port(state: &mut State, service: &str, container: u16, file: &str, line: usize, port: Option<(u16, usize)>) {
    match port {
        Some((host, _)) => {
            state.web = Some(WebPort {
                service: service.to_owned(),
                host,
                container,
                origin: state.origin(file, line),
                how: "the main service's internal port, config.json's port".into(),
            });
        }
        None => {
            let origin = state.origin(META, 1);
            state.unmapped(
                origin,
                "port",
                "config.json has no `port`, so the web port's host side is unknown; publish it in the service's ports",
            );
        }
    }
}

const OVERRIDES: &str = "architecture overrides: a node runs the image for its own architecture; pin a digest of a multi-architecture image";

/// `form_fields`: a `random` field is a generated secret; the others are settings the user types
/// in, which archy does not have (their defaults are used where the compose file refers to them).
fn form_fields(state: &mut State, v: &Node) {
    for field in v.as_seq().unwrap_or(&[]) {
        let Some(var) = field.get_str("env_variable") else { continue };
        let kind = field.get_str("type").unwrap_or("text").to_owned();
        let label = field.get_str("label").unwrap_or(var).to_owned();
        let secret = (kind == "random").then(|| {
            let min = field.get_str("min").and_then(|m| m.parse::<u32>().ok()).unwrap_or(32);
            let length = min.clamp(catalog::manifest::Secret::MIN_LENGTH, 1024);
            if length != min {
                let origin = state.origin(META, field.line);
                state.note(origin, format!("form field `{var}` asks for {min} characters; archy generates {length}"));
            }
            let charset = match field.get_str("encoding") {
                Some("base64") => Charset::Base64url,
                Some("hex") => Charset::Hex,
                _ => Charset::Alphanumeric,
            };
            DraftSecret { name: secret_name(var), length, charset }
        });
        state.vars.form.insert(
            var.to_owned(),
            FormField { label, kind, default: field.get_str("default").map(str::to_owned), secret },
        );
    }
}

/// `docker-compose.json` rewritten into Compose's shape, line numbers kept.
fn dynamic(state: &mut State, root: &Node) -> Result<Compose, ImportError> {
    let shape = |line: usize, what: &str, problem: &str| ImportError::Shape {
        file: DYNAMIC.into(),
        line,
        what: what.into(),
        problem: problem.into(),
        fix: "write it as Runtipi's dynamic compose format does".into(),
    };
    let mut services = Vec::new();
    for (key, v) in root.as_map().ok_or_else(|| shape(root.line, "(document)", "is not an object"))? {
        match key.text.as_str() {
            "schemaVersion" | "$schema" => {}
            "services" => {
                let list = v.as_seq().ok_or_else(|| shape(key.line, "services", "is not an array"))?;
                for s in list {
                    services.push(service(state, s).ok_or_else(|| shape(s.line, "services[].name", "is missing"))?);
                }
            }
            "overrides" => {
                let origin = state.origin(DYNAMIC, key.line);
                state.unmapped(origin, "overrides", OVERRIDES);
                state.count(false);
            }
            other => {
                let origin = state.origin(DYNAMIC, key.line);
                state.unmapped(origin, other, "not a part of Runtipi's dynamic compose format");
                state.count(false);
            }
        }
    }
    if services.is_empty() {
        return Err(shape(root.line, "services", "is missing or empty"));
    }
    Ok(Compose { file: DYNAMIC.into(), services, volumes: None, networks: None })
}

/// One `docker-compose.json` service as a Compose service.
fn service(state: &mut State, s: &Node) -> Option<Service> {
    let (name_key, name) = s.entry("name")?;
    let name = name.as_str()?.to_owned();
    let mut handled = vec![name_key.clone()];
    let mut spelled = BTreeMap::new();
    let mut entries: Vec<(Key, Node)> = Vec::new();
    let is_main = s.get("isMain").and_then(Node::as_bool) == Some(true);
    for (key, v) in s.as_map().unwrap_or(&[]) {
        let renamed = |to: &str| Key { text: to.to_owned(), line: key.line };
        let (k, node) = match key.text.as_str() {
            "name" => continue,
            "isMain" | "internalPort" => {
                handled.push(key.clone());
                if key.text == "internalPort"
                    && is_main
                    && let Some(p) = v.as_str().and_then(|p| p.parse().ok())
                {
                    let port = state.vars.web_port.map(|p| (p, 0));
                    main_port(state, &name, p, DYNAMIC, key.line, port);
                }
                continue;
            }
            "environment" => (renamed("environment"), environment(v)),
            "addPorts" => (renamed("ports"), ports(v)),
            "volumes" => (renamed("volumes"), volumes(v)),
            "healthCheck" => (
                renamed("healthcheck"),
                rename_keys(v, &[("startPeriod", "start_period"), ("startInterval", "start_interval")]),
            ),
            other => {
                let compose = match other {
                    "dependsOn" => "depends_on",
                    "networkMode" => "network_mode",
                    "capAdd" => "cap_add",
                    "capDrop" => "cap_drop",
                    "extraHosts" => "extra_hosts",
                    "workingDir" => "working_dir",
                    "shmSize" => "shm_size",
                    "readOnly" => "read_only",
                    "securityOpt" => "security_opt",
                    "stopSignal" => "stop_signal",
                    "stopGracePeriod" => "stop_grace_period",
                    "stdinOpen" => "stdin_open",
                    "extraLabels" => "labels",
                    other => other,
                };
                (renamed(compose), v.clone())
            }
        };
        if k.text != key.text {
            spelled.insert(k.text.clone(), key.text.clone());
        }
        entries.push((k, node));
    }
    Some(Service {
        name,
        line: name_key.line,
        node: Node { line: s.line, value: Value::Map(entries) },
        spelled,
        handled,
    })
}

/// v1 writes `environment` as an object, v2 as `[{ "key": …, "value": … }]`.
fn environment(v: &Node) -> Node {
    let Some(items) = v.as_seq() else { return v.clone() };
    let entries = items
        .iter()
        .filter_map(|i| {
            let (k, _) = i.entry("key")?;
            let key = Key { text: i.get_str("key")?.to_owned(), line: k.line };
            Some((key, i.get("value").cloned().unwrap_or_else(|| Node::scalar(k.line, ""))))
        })
        .collect();
    Node { line: v.line, value: Value::Map(entries) }
}

/// `addPorts`: `{ hostPort, containerPort, udp, tcp, interface }` → long-syntax ports, one per
/// protocol (`udp: true` alone is UDP only; `tcp` is on unless only UDP is asked for).
fn ports(v: &Node) -> Node {
    let mut out = Vec::new();
    for p in v.as_seq().unwrap_or(&[]) {
        let udp = p.get("udp").and_then(Node::as_bool) == Some(true);
        let tcp = p.get("tcp").and_then(Node::as_bool).unwrap_or(!udp);
        for (on, proto) in [(tcp, "tcp"), (udp, "udp")] {
            if !on {
                continue;
            }
            let mut e = vec![
                (
                    Key { text: "target".into(), line: p.line },
                    p.get("containerPort").cloned().unwrap_or_else(|| Node::scalar(p.line, "")),
                ),
                (
                    Key { text: "published".into(), line: p.line },
                    p.get("hostPort").cloned().unwrap_or_else(|| Node::scalar(p.line, "")),
                ),
                (Key { text: "protocol".into(), line: p.line }, Node::scalar(p.line, proto)),
            ];
            if let Some(i) = p.get("interface") {
                e.push((Key { text: "host_ip".into(), line: p.line }, i.clone()));
            }
            out.push(Node { line: p.line, value: Value::Map(e) });
        }
    }
    Node { line: v.line, value: Value::Seq(out) }
}

/// `volumes`: `{ hostPath, containerPath, readOnly }` → long-syntax binds.
fn volumes(v: &Node) -> Node {
    let renames = [("hostPath", "source"), ("containerPath", "target"), ("readOnly", "read_only")];
    let items = v
        .as_seq()
        .unwrap_or(&[])
        .iter()
        .map(|item| {
            let mut n = rename_keys(item, &renames);
            if let Value::Map(entries) = &mut n.value {
                entries.insert(0, (Key { text: "type".into(), line: item.line }, Node::scalar(item.line, "bind")));
            }
            n
        })
        .collect();
    Node { line: v.line, value: Value::Seq(items) }
}

fn rename_keys(v: &Node, renames: &[(&str, &str)]) -> Node {
    let Some(entries) = v.as_map() else { return v.clone() };
    let entries = entries
        .iter()
        .map(|(k, val)| {
            let text = renames.iter().find(|(from, _)| *from == k.text).map_or(k.text.as_str(), |(_, to)| to);
            (Key { text: text.to_owned(), line: k.line }, val.clone())
        })
        .collect();
    Node { line: v.line, value: Value::Map(entries) }
}
