//! Compose services → manifest containers, key by key.
//!
//! Every key of every service is one compose key of the report's figure. A key counts as mapped
//! when everything in it was carried into the manifest; anything in it that was not (one
//! environment variable, one volume option) is listed with its line, and the key then counts as
//! not mapped. `docs/import.md` has the table of what each key becomes.

use std::collections::{BTreeMap, BTreeSet};

use catalog::manifest::{HostFact, Permission, Protocol, RestartPolicy};

use super::State;
use super::draft::{DraftContainer, DraftHealthcheck};
use super::vars::{Meaning, Piece, pieces};
use super::yaml::{Key, Node, Value};

/// One service of the source, in Compose's shape.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    /// The service's name in the source.
    pub(crate) name: String,
    /// The line of its name.
    pub(crate) line: usize,
    /// Its keys, in Compose's names.
    pub(crate) node: Node,
    /// Keys whose spelling in the source differs from Compose's (Runtipi's `docker-compose.json`
    /// writes `capAdd` for `cap_add`): Compose name → as written.
    pub(crate) spelled: BTreeMap<String, String>,
    /// Keys the store's reader already handled (counted as mapped).
    pub(crate) handled: Vec<Key>,
}

/// The Compose document of an import: its file name, its services, and its top-level keys.
#[derive(Debug, Clone)]
pub(crate) struct Compose {
    /// The file, relative to the source folder.
    pub(crate) file: String,
    /// The services in source order (without the ones the store's reader dropped).
    pub(crate) services: Vec<Service>,
    /// The top-level `volumes` mapping, if any.
    pub(crate) volumes: Option<Node>,
    /// The top-level `networks` mapping, if any.
    pub(crate) networks: Option<Node>,
}

/// Paths whose bind gives the container the Docker engine's socket (the same list as the
/// manifest's `docker_socket` permission).
const DOCKER_SOCKET_PATHS: [&str; 6] = ["/var/run/docker.sock", "/run/docker.sock", "/", "/run", "/var", "/var/run"];

/// Maps every service of `compose` into `state.draft`.
pub(crate) fn map(state: &mut State, compose: &Compose) {
    let names: BTreeMap<String, String> = compose
        .services
        .iter()
        .map(|s| (s.name.clone(), super::name(&s.name).unwrap_or_else(|| "app".to_owned())))
        .collect();
    let healthy: BTreeSet<String> = compose
        .services
        .iter()
        .filter(|s| {
            s.node.get("healthcheck").is_some_and(|h| {
                h.get("disable").and_then(Node::as_bool) != Some(true)
                    && h.get("test").and_then(Node::as_seq).and_then(|t| t.first()).and_then(Node::as_str)
                        != Some("NONE")
            })
        })
        .map(|s| s.name.clone())
        .collect();
    let mut m = Mapper { state, file: compose.file.clone(), names, healthy, compose, volume_sources: BTreeMap::new() };
    for service in &compose.services {
        m.service(service);
    }
}

struct Mapper<'a> {
    state: &'a mut State,
    file: String,
    /// Service name → container name.
    names: BTreeMap<String, String>,
    /// Services with a healthcheck.
    healthy: BTreeSet<String>,
    compose: &'a Compose,
    /// Volume name → what it was made from, so two different sources never share a name.
    volume_sources: BTreeMap<String, String>,
}

/// How a key's handling went: `Err` holds why the whole key is not mapped.
type Outcome = Result<(), String>;

impl Mapper<'_> {
    fn unmapped(&mut self, line: usize, what: impl Into<String>, reason: impl Into<String>) {
        let origin = self.state.origin(&self.file, line);
        self.state.unmapped(origin, what, reason);
    }

    fn note(&mut self, line: usize, message: impl Into<String>) {
        let origin = self.state.origin(&self.file, line);
        self.state.note(origin, message);
    }

    fn service(&mut self, svc: &Service) {
        let name = self.names[&svc.name].clone();
        if name != svc.name {
            self.note(svc.line, format!("service `{}` is container `{name}`", svc.name));
        }
        let mut c = DraftContainer { name, ..DraftContainer::default() };
        for _ in &svc.handled {
            self.state.count(true);
        }
        c.host_network = svc.node.get_str("network_mode") == Some("host");
        let Some(entries) = svc.node.as_map() else {
            self.unmapped(svc.line, &svc.name, "the service is not a mapping of Compose keys");
            return;
        };
        for (key, value) in entries {
            let spelled = svc.spelled.get(&key.text).cloned().unwrap_or_else(|| key.text.clone());
            let before = self.state.unmapped_len();
            if let Err(reason) = self.key(&mut c, svc, key, value) {
                self.unmapped(key.line, &spelled, reason);
            }
            let mapped = self.state.unmapped_len() == before;
            self.state.count(mapped);
        }
        if c.image.is_empty() {
            self.unmapped(
                svc.line,
                format!("services.{}", svc.name),
                "the service has no `image`; every container needs one",
            );
        }
        self.state.draft.containers.push(c);
    }

    fn key(&mut self, c: &mut DraftContainer, svc: &Service, key: &Key, v: &Node) -> Outcome {
        match key.text.as_str() {
            "image" => self.image(c, v),
            "command" => {
                c.command = Some(self.args("command", v)?);
                Ok(())
            }
            "entrypoint" => {
                c.entrypoint = Some(self.args("entrypoint", v)?);
                Ok(())
            }
            "environment" => self.environment(c, v),
            "ports" => self.ports(c, v),
            "expose" => Ok(()), // containers on the app network reach every port of each other
            "volumes" => self.volumes(c, v),
            "tmpfs" => self.tmpfs(c, v),
            "shm_size" => {
                let mib = mib(v).ok_or("the size is not a number of bytes (`64m`, `1g`)")?;
                c.tmpfs.push(("/dev/shm".to_owned(), Some(mib)));
                self.note(key.line, format!("`shm_size` is a {mib} MiB tmpfs at /dev/shm"));
                Ok(())
            }
            "user" => self.user(c, v),
            "healthcheck" => self.healthcheck(c, v),
            "depends_on" => self.depends_on(c, svc, v),
            "restart" => self.restart(c, v),
            "deploy" => self.deploy(c, v),
            "mem_limit" => {
                c.memory_mib = Some(mib(v).ok_or("the limit is not a number of bytes (`512m`, `1g`)")?);
                Ok(())
            }
            "cpus" => {
                c.cpus_milli = Some(milli(v).ok_or("the limit is not a number of CPUs (`0.5`, `2`)")?);
                Ok(())
            }
            "privileged" => match v.as_bool() {
                Some(true) => {
                    c.privileged = true;
                    self.state.draft.request(Permission::Privileged);
                    Ok(())
                }
                Some(false) => Ok(()),
                None => Err("the value is not true or false".into()),
            },
            "network_mode" => match v.as_str().unwrap_or("") {
                "host" => {
                    self.state.draft.request(Permission::HostNetwork);
                    Ok(())
                }
                "bridge" | "default" => Ok(()),
                "none" => Err("archy always attaches a container to the app's network".into()),
                other => Err(format!(
                    "`{other}`: archy gives every container its own network stack on the app's network; reach the other container by its name"
                )),
            },
            "networks" => self.networks(v),
            "devices" => self.devices(c, v),
            "cap_add" => self.cap_add(c, v),
            "labels" => self.labels(v),
            "links" => self.links(v),
            "x-casaos" => self.casaos_service(v),
            "x-runtipi" => {
                if let Some((k, _)) = v.entry("add_to_main_network") {
                    self.unmapped(k.line, "x-runtipi.add_to_main_network", "Runtipi's network shared by all apps has no counterpart: archy apps are isolated from each other");
                }
                Ok(())
            }
            other => Err(unmapped_reason(other)),
        }
    }

    fn image(&mut self, c: &mut DraftContainer, v: &Node) -> Outcome {
        let raw = v.as_str().ok_or("the image is not a string")?;
        let (image, notes) = self.state.vars.literal(raw)?;
        for n in notes {
            self.note(v.line, n);
        }
        if !image.contains("@sha256:") {
            let origin = self.state.origin(&self.file, v.line);
            self.state.pin(origin, &c.name, &image);
        }
        c.image = image;
        Ok(())
    }

    /// A command or entrypoint in exec form: a list as it is, a string split into words the way
    /// Compose splits it (shell quoting rules, no shell).
    fn args(&mut self, key: &str, v: &Node) -> Result<Vec<String>, String> {
        let words: Vec<String> = match &v.value {
            Value::Scalar { .. } => {
                let text = v.as_str().unwrap_or("");
                shlex::split(text).ok_or_else(|| format!("`{text}` has an unclosed quote"))?
            }
            Value::Seq(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned).ok_or("an item is not a string"))
                .collect::<Result<_, _>>()?,
            Value::Map(_) => return Err(format!("`{key}` is a mapping, not a string or a list")),
        };
        if words.is_empty() {
            return Err(format!("an empty `{key}` clears the image's; archy can replace it but not clear it"));
        }
        let mut out = Vec::new();
        for w in words {
            let (word, notes) = self.state.vars.literal(&w).map_err(|reason| {
                format!(
                    "{reason}; set the value in `env`/`secret_env` and read it from the environment (`[\"sh\", \"-c\", \"exec … \\\"$VAR\\\"\"]`)"
                )
            })?;
            for n in notes {
                self.note(v.line, n);
            }
            out.push(word);
        }
        Ok(out)
    }

    fn environment(&mut self, c: &mut DraftContainer, v: &Node) -> Outcome {
        if matches!(v.value, Value::Scalar { .. }) {
            return Err("`environment` is neither a mapping nor a list".into());
        }
        for (name, value, line) in env_entries(v) {
            match value {
                None => self.unmapped(
                    line,
                    format!("environment.{name}"),
                    "the value comes from the shell that runs Compose; write the value",
                ),
                Some(value) => self.env_value(c, &name, &value, line),
            }
        }
        Ok(())
    }

    fn env_value(&mut self, c: &mut DraftContainer, name: &str, value: &str, line: usize) {
        let what = format!("environment.{name}");
        let Some(parts) = pieces(value) else {
            self.unmapped(line, what, format!("`{value}` has a `${{` without its `}}`"));
            return;
        };
        if let [Piece::Var { name: var, default }] = parts.as_slice() {
            match self.state.vars.meaning(var, default.as_deref()) {
                Meaning::Value { value, note } => {
                    c.env.insert(name.to_owned(), value);
                    if let Some(n) = note {
                        self.note(line, n);
                    }
                }
                Meaning::Fact(fact) => {
                    c.derived_env.insert(name.to_owned(), fact);
                    self.note(line, format!("`{name}` = `${{{var}}}` is the host fact `{fact}`"));
                }
                Meaning::Secret(secret) => {
                    self.note(
                        line,
                        format!(
                            "`{name}` = `${{{var}}}` is the generated secret `{}` ({} {} characters)",
                            secret.name,
                            secret.length,
                            secret.charset.as_str()
                        ),
                    );
                    c.secret_env.insert(name.to_owned(), secret.name.clone());
                    self.state.draft.secret(secret);
                }
                Meaning::DataDir => {
                    c.derived_env.insert(name.to_owned(), HostFact::DataDir);
                    self.note(line, format!("`{name}` = `${{{var}}}` is the host fact `data_dir`"));
                }
                Meaning::Domain => self.unmapped(
                    line,
                    what,
                    format!("`${{{var}}}` is the store's host name; archy offers the host's name (`hostname`) or the app's URL (`app_url`): set one in `derived_env`"),
                ),
                Meaning::Unknown(reason) => self.unmapped(line, what, reason),
            }
            return;
        }
        if self.is_app_url(&parts) {
            c.derived_env.insert(name.to_owned(), HostFact::AppUrl);
            self.note(
                line,
                format!("`{name}` = `{value}` is the host fact `app_url`, the URL the node serves the app at"),
            );
            return;
        }
        match self.state.vars.literal(value) {
            Ok((text, notes)) => {
                c.env.insert(name.to_owned(), text);
                for n in notes {
                    self.note(line, n);
                }
            }
            Err(reason) => {
                self.unmapped(line, what, format!("{reason}; the app must read that value from a variable of its own"))
            }
        }
    }

    /// `http://${DEVICE_DOMAIN_NAME}:<web port>`, `${APP_PROTOCOL}://${APP_DOMAIN}` and the like:
    /// the URL of the app's web port.
    fn is_app_url(&self, parts: &[Piece]) -> bool {
        let mut text = String::new();
        let mut host = 0;
        for p in parts {
            match p {
                Piece::Text(t) => text.push_str(t),
                Piece::Var { name, default } => match self.state.vars.meaning(name, default.as_deref()) {
                    Meaning::Domain | Meaning::Fact(HostFact::Hostname) if host == 0 => {
                        host += 1;
                        text.push('\u{0}');
                    }
                    Meaning::Value { value, .. } => text.push_str(&value),
                    _ => return false,
                },
            }
        }
        let Some(rest) = text.strip_prefix("http://").or_else(|| text.strip_prefix("https://")) else {
            return false;
        };
        let Some(rest) = rest.strip_prefix('\u{0}') else {
            return false;
        };
        let rest = rest.trim_end_matches('/');
        match rest.strip_prefix(':') {
            None => rest.is_empty(),
            Some(port) => self.state.vars.web_port.is_some_and(|p| p.to_string() == port),
        }
    }

    fn ports(&mut self, c: &mut DraftContainer, v: &Node) -> Outcome {
        let items = v.as_seq().ok_or("`ports` is not a list")?;
        if c.host_network {
            self.note(
                v.line,
                format!(
                    "container `{}` uses the host's network, so its `ports` are the host's own and are not published",
                    c.name
                ),
            );
            return Ok(());
        }
        for item in items {
            match self.port(item) {
                Ok(list) => c.ports.extend(list),
                Err(reason) => self.unmapped(item.line, format!("ports {}", show(item)), reason),
            }
        }
        Ok(())
    }

    fn port(&mut self, item: &Node) -> Result<Vec<(u16, u16, Protocol)>, String> {
        let (host_ip, host, container, protocol) = match &item.value {
            Value::Scalar { .. } => {
                let (s, _) = self.state.vars.literal(item.as_str().unwrap_or(""))?;
                let (spec, proto) = match s.rsplit_once('/') {
                    Some((spec, proto)) => (spec.to_owned(), proto.to_owned()),
                    None => (s.clone(), "tcp".to_owned()),
                };
                let (ip, spec) = match spec.strip_prefix('[') {
                    Some(rest) => {
                        let (ip, rest) = rest.split_once("]:").ok_or("an IPv6 host address without `]:`")?;
                        (Some(ip.to_owned()), rest.to_owned())
                    }
                    None => (None, spec),
                };
                let parts: Vec<&str> = spec.split(':').collect();
                match (ip, parts.as_slice()) {
                    (None, [container]) => (None, None, container.to_string(), proto),
                    (None, [host, container]) => (None, Some(host.to_string()), container.to_string(), proto),
                    (None, [ip, host, container]) => {
                        (Some(ip.to_string()), Some(host.to_string()), container.to_string(), proto)
                    }
                    (Some(ip), [host, container]) => (Some(ip), Some(host.to_string()), container.to_string(), proto),
                    _ => return Err(format!("`{s}` is not `[host_ip:][host:]container[/protocol]`")),
                }
            }
            Value::Map(_) => {
                let text = |k: &str| -> Result<Option<String>, String> {
                    match item.get_str(k) {
                        Some(s) => self.state.vars.literal(s).map(|r| Some(r.0)),
                        None => Ok(None),
                    }
                };
                let container = text("target")?.ok_or("the port has no `target`")?;
                (text("host_ip")?, text("published")?, container, text("protocol")?.unwrap_or_else(|| "tcp".into()))
            }
            Value::Seq(_) => return Err("a port is a string or a mapping".into()),
        };
        let protocol: Protocol =
            protocol.parse().map_err(|_| format!("protocol `{protocol}`: archy publishes tcp and udp"))?;
        let host = match host.filter(|h| !h.is_empty()) {
            Some(h) => h,
            None => {
                return Err(
                    "published on a random host port; archy publishes fixed host ports: write `host:container`".into(),
                );
            }
        };
        if let Some(ip) = host_ip.filter(|ip| !ip.is_empty() && ip != "127.0.0.1" && ip != "::1") {
            self.note(item.line, format!("host address `{ip}` is dropped: a node publishes on loopback until its operator opens the app to the LAN"));
        }
        let hosts = range(&host).ok_or_else(|| format!("host port `{host}` is not a port or a range"))?;
        let containers =
            range(&container).ok_or_else(|| format!("container port `{container}` is not a port or a range"))?;
        if hosts.len() != containers.len() {
            return Err("the host and container ranges have different lengths".into());
        }
        Ok(hosts.into_iter().zip(containers).map(|(h, c)| (h, c, protocol)).collect())
    }

    fn volumes(&mut self, c: &mut DraftContainer, v: &Node) -> Outcome {
        let items = v.as_seq().ok_or("`volumes` is not a list")?;
        for item in items {
            if let Err(reason) = self.volume(c, item) {
                self.unmapped(item.line, format!("volumes {}", show(item)), reason);
            }
        }
        Ok(())
    }

    fn volume(&mut self, c: &mut DraftContainer, item: &Node) -> Outcome {
        let (kind, source, target, read_only) = match &item.value {
            Value::Scalar { .. } => {
                let s = item.as_str().unwrap_or("");
                let parts: Vec<&str> = s.split(':').collect();
                let (source, target, mode) = match parts.as_slice() {
                    [target] => (None, target.to_string(), None),
                    [source, target] => (Some(source.to_string()), target.to_string(), None),
                    [source, target, mode] => (Some(source.to_string()), target.to_string(), Some(mode.to_string())),
                    _ => return Err(format!("`{s}` is not `source:target[:mode]`")),
                };
                let mut read_only = false;
                for opt in mode.iter().flat_map(|m| m.split(',')) {
                    match opt {
                        "ro" => read_only = true,
                        "rw" => {}
                        other => {
                            self.unmapped(item.line, format!("volumes {s} mode `{other}`"), volume_option_reason(other))
                        }
                    }
                }
                let kind = match &source {
                    None => "volume",
                    Some(s) if s.starts_with('/') || s.starts_with('.') || s.starts_with('~') || s.starts_with('$') => {
                        "bind"
                    }
                    Some(_) => "volume",
                };
                (kind.to_owned(), source, target, read_only)
            }
            Value::Map(entries) => {
                let kind = item.get_str("type").unwrap_or("volume").to_owned();
                for (k, val) in entries {
                    match k.text.as_str() {
                        "type" | "source" | "target" | "read_only" => {}
                        "tmpfs" if kind == "tmpfs" => {}
                        "bind" if val.as_map().is_some_and(|m| m.iter().all(|(o, _)| o.text == "create_host_path")) => {
                        }
                        other => self.unmapped(k.line, format!("volumes.{other}"), volume_option_reason(other)),
                    }
                }
                let target = item.get_str("target").ok_or("the volume has no `target`")?.to_owned();
                let read_only = item.get("read_only").and_then(Node::as_bool).unwrap_or(false);
                if kind == "tmpfs" {
                    let size = item.get("tmpfs").and_then(|t| t.get("size")).and_then(mib);
                    c.tmpfs.push((target, size));
                    return Ok(());
                }
                (kind, item.get_str("source").map(str::to_owned), target, read_only)
            }
            Value::Seq(_) => return Err("a volume is a string or a mapping".into()),
        };
        let (target, _) = self.state.vars.literal(&target)?;
        match kind.as_str() {
            "volume" => {
                let name = match &source {
                    Some(s) => s.clone(),
                    None => {
                        self.note(
                            item.line,
                            format!("the anonymous volume at `{target}` is a named app volume, kept across updates"),
                        );
                        target.trim_matches('/').replace('/', "-")
                    }
                };
                if let Some(top) = self.compose.volumes.as_ref().and_then(|t| t.get(&name))
                    && top.get("external").and_then(Node::as_bool) == Some(true)
                {
                    return Err(format!(
                        "volume `{name}` is external (made outside the app); archy apps own their volumes, or share one by opt-in (`shared`)"
                    ));
                }
                let volume = self.volume_name(&name, &format!("volume:{name}"));
                c.volumes.push((volume, target, read_only));
                Ok(())
            }
            "bind" => self.bind(c, item.line, source.as_deref().unwrap_or(""), target, read_only),
            other => Err(format!("mount type `{other}`: archy mounts volumes, binds and tmpfs")),
        }
    }

    /// A bind: the store's data folder becomes an app volume; the Docker socket and any other host
    /// path stay binds and are requested as permissions.
    fn bind(&mut self, c: &mut DraftContainer, line: usize, source: &str, target: String, read_only: bool) -> Outcome {
        let parts = pieces(source).ok_or_else(|| format!("`{source}` has a `${{` without its `}}`"))?;
        // `${APP_DATA_DIR}/…`: the app's own data.
        if let Some(Piece::Var { name, default }) = parts.first()
            && self.state.vars.meaning(name, default.as_deref()) == Meaning::DataDir
        {
            let rest: String = parts[1..]
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => Ok(t.clone()),
                    Piece::Var { .. } => Err(()),
                })
                .collect::<Result<_, _>>()
                .map_err(|()| format!("`{source}` has a variable after the data folder"))?;
            return self.data_volume(c, line, source, &rest, target, read_only);
        }
        let (host, _) = self.state.vars.literal(source)?;
        if host.starts_with("./") || host.starts_with("../") || host == "." || host.starts_with('~') {
            if self.state.format != super::Format::Compose || host.starts_with("../") || host.starts_with('~') {
                return Err(format!(
                    "`{host}` is a path relative to the store's folder; mount an app volume or an absolute host path instead"
                ));
            }
            let rest = host.trim_start_matches('.').to_owned();
            return self.data_volume(c, line, source, &rest, target, read_only);
        }
        if let Some(rest) = host.strip_prefix("/DATA/AppData/")
            && self.state.format == super::Format::Casaos
        {
            let rest = rest.split_once('/').map(|(_, r)| format!("/{r}")).unwrap_or_default();
            return self.data_volume(c, line, source, &rest, target, read_only);
        }
        if !host.starts_with('/') {
            return Err(format!("host path `{host}` is not absolute"));
        }
        let clean = host.trim_end_matches('/');
        let clean = if clean.is_empty() { "/" } else { clean };
        if DOCKER_SOCKET_PATHS.contains(&clean) {
            self.state.draft.request(Permission::DockerSocket);
            self.note(
                line,
                format!("`{host}` gives the container the Docker engine: the app requests `docker_socket`"),
            );
        } else {
            self.state.draft.request(Permission::HostPath {
                host: clean.to_owned(),
                target: target.clone(),
                read_only,
            });
            self.note(line, format!("host path `{clean}` is a bind: the app requests `host_path` for it"));
        }
        c.binds.push((clean.to_owned(), target, read_only));
        Ok(())
    }

    /// A folder under the app's data folder (`rest` is the path below it) as an app volume.
    fn data_volume(
        &mut self,
        c: &mut DraftContainer,
        line: usize,
        source: &str,
        rest: &str,
        target: String,
        read_only: bool,
    ) -> Outcome {
        let rel = rest.trim_matches('/');
        if !rel.is_empty() && self.state.src.join(rel).is_file() {
            return Err(format!(
                "`{source}` is a file shipped with the app; archy mounts no files from the app folder: build it into the image"
            ));
        }
        let base = if rel.is_empty() { "data".to_owned() } else { rel.replace('/', "-") };
        let volume = self.volume_name(&base, &format!("data:{rel}"));
        self.note(line, format!("`{source}` is the app volume `{volume}`"));
        c.volumes.push((volume, target, read_only));
        Ok(())
    }

    /// The volume name for `base` made from `source`; a different source gets a `-2`… suffix.
    fn volume_name(&mut self, base: &str, source: &str) -> String {
        let base = super::name(base).unwrap_or_else(|| "data".to_owned());
        let mut candidate = base.clone();
        let mut n = 2;
        loop {
            match self.volume_sources.get(&candidate) {
                Some(s) if s == source => break,
                Some(_) => {
                    candidate = format!("{base}-{n}");
                    n += 1;
                }
                None => {
                    self.volume_sources.insert(candidate.clone(), source.to_owned());
                    break;
                }
            }
        }
        self.state.draft.volume(&candidate);
        candidate
    }

    fn tmpfs(&mut self, c: &mut DraftContainer, v: &Node) -> Outcome {
        let items: Vec<&Node> = match &v.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Scalar { .. } => vec![v],
            Value::Map(_) => return Err("`tmpfs` is not a path or a list of paths".into()),
        };
        for item in items {
            let s = item.as_str().ok_or("a tmpfs entry is not a path")?;
            let (target, opts) = s.split_once(':').unwrap_or((s, ""));
            let mut size = None;
            for opt in opts.split(',').filter(|o| !o.is_empty()) {
                match opt.strip_prefix("size=") {
                    Some(bytes) => size = mib(&Node::scalar(item.line, bytes)),
                    None => {
                        self.unmapped(item.line, format!("tmpfs {s} option `{opt}`"), "archy sets a tmpfs's size only")
                    }
                }
            }
            c.tmpfs.push((target.to_owned(), size));
        }
        Ok(())
    }

    fn user(&mut self, c: &mut DraftContainer, v: &Node) -> Outcome {
        let raw = v.as_str().ok_or("`user` is not a string")?;
        let (user, notes) = self.state.vars.literal(raw)?;
        for n in notes {
            self.note(v.line, n);
        }
        if user.parse::<catalog::manifest::User>().is_err() {
            let name = user.split(':').next().unwrap_or(&user);
            return Err(format!(
                "`{user}` is not numeric; archy takes `uid[:gid]`: find the ids with `docker run --rm --entrypoint id {} {name}`",
                if c.image.is_empty() { "IMAGE" } else { &c.image }
            ));
        }
        c.user = Some(user);
        Ok(())
    }

    fn healthcheck(&mut self, c: &mut DraftContainer, v: &Node) -> Outcome {
        if v.get("disable").and_then(Node::as_bool) == Some(true) {
            return Err("archy cannot switch off an image's own healthcheck".into());
        }
        let test = v.get("test").ok_or("the healthcheck has no `test`")?;
        let command: Vec<String> = match &test.value {
            Value::Scalar { .. } => vec!["/bin/sh".into(), "-c".into(), test.as_str().unwrap_or("").to_owned()],
            Value::Seq(items) => {
                let words: Vec<String> = items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned).ok_or("a test item is not a string"))
                    .collect::<Result<_, _>>()?;
                match words.split_first() {
                    Some((first, rest)) if first == "CMD" => rest.to_vec(),
                    Some((first, rest)) if first == "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), rest.join(" ")],
                    Some((first, _)) if first == "NONE" => {
                        return Err("archy cannot switch off an image's own healthcheck".into());
                    }
                    _ => words,
                }
            }
            Value::Map(_) => return Err("`test` is not a string or a list".into()),
        };
        let mut words = Vec::new();
        for w in command {
            words.push(self.state.vars.literal(&w)?.0);
        }
        if words.is_empty() || words.iter().all(String::is_empty) {
            return Err("the test is empty".into());
        }
        let mut h = DraftHealthcheck {
            command: words,
            interval_secs: None,
            timeout_secs: None,
            start_period_secs: None,
            retries: None,
        };
        for (k, val) in v.as_map().unwrap_or(&[]) {
            let secs = |min: u32| -> Result<Option<u32>, String> {
                let s = val.as_str().ok_or("the duration is not a string")?;
                let (secs, exact) =
                    duration_secs(s).ok_or_else(|| format!("`{s}` is not a duration like `30s` or `1m30s`"))?;
                let _ = exact;
                Ok(Some(secs.max(min)))
            };
            match k.text.as_str() {
                "test" | "disable" => {}
                "interval" => h.interval_secs = secs(1)?,
                "timeout" => h.timeout_secs = secs(1)?,
                "start_period" => h.start_period_secs = secs(0)?,
                "retries" => {
                    h.retries =
                        Some(val.as_str().and_then(|s| s.parse().ok()).ok_or("`retries` is not a whole number")?);
                }
                other => self.unmapped(
                    k.line,
                    format!("healthcheck.{other}"),
                    "archy's healthcheck has command, interval, timeout, start period and retries",
                ),
            }
            if matches!(k.text.as_str(), "interval" | "timeout" | "start_period")
                && let Some(s) = val.as_str()
                && duration_secs(s).is_some_and(|(_, exact)| !exact)
            {
                self.note(k.line, format!("healthcheck `{}` `{s}` is rounded up to whole seconds", k.text));
            }
        }
        c.healthcheck = Some(h);
        Ok(())
    }

    fn depends_on(&mut self, c: &mut DraftContainer, svc: &Service, v: &Node) -> Outcome {
        let mut deps: Vec<(String, usize, Option<&Node>)> = Vec::new();
        match &v.value {
            Value::Seq(items) => {
                for i in items {
                    deps.push((i.as_str().ok_or("an item is not a service name")?.to_owned(), i.line, None));
                }
            }
            Value::Map(entries) => {
                for (k, val) in entries {
                    deps.push((k.text.clone(), k.line, Some(val)));
                }
            }
            Value::Scalar { .. } => return Err("`depends_on` is not a list or a mapping".into()),
        }
        for (dep, line, options) in deps {
            let Some(container) = self.names.get(&dep).cloned() else {
                if self.state.dropped.contains(&dep) {
                    continue;
                }
                self.unmapped(line, format!("depends_on.{dep}"), format!("there is no service `{dep}`"));
                continue;
            };
            if dep == svc.name {
                self.unmapped(line, format!("depends_on.{dep}"), "a service cannot depend on itself");
                continue;
            }
            let condition = options.and_then(|o| o.get_str("condition")).unwrap_or("service_started");
            let has_health = self.healthy.contains(&dep);
            match condition {
                "service_healthy" if has_health => {}
                "service_healthy" => self.unmapped(
                    line,
                    format!("depends_on.{dep}.condition"),
                    format!("`{dep}` has no healthcheck here, so archy waits only for it to start; give `{dep}` a healthcheck"),
                ),
                "service_started" if has_health => {
                    self.note(line, format!("archy also waits for `{dep}` to be healthy, since it has a healthcheck"));
                }
                "service_started" => {}
                "service_completed_successfully" => self.unmapped(
                    line,
                    format!("depends_on.{dep}.condition"),
                    "archy has no run-once containers: it starts this container once the other one has started",
                ),
                other => self.unmapped(line, format!("depends_on.{dep}.condition"), format!("unknown condition `{other}`")),
            }
            for (k, val) in options.and_then(Node::as_map).unwrap_or(&[]) {
                match (k.text.as_str(), val.as_bool()) {
                    ("condition", _) | ("required", Some(true)) | ("restart", Some(false)) => {}
                    ("restart", _) => self.unmapped(
                        k.line,
                        format!("depends_on.{dep}.restart"),
                        "archy does not restart a container when the one it depends on restarts",
                    ),
                    ("required", _) => self.unmapped(
                        k.line,
                        format!("depends_on.{dep}.required"),
                        "on archy every dependency is required",
                    ),
                    (other, _) => {
                        self.unmapped(k.line, format!("depends_on.{dep}.{other}"), "not a depends_on option archy has")
                    }
                }
            }
            if !c.depends_on.contains(&container) {
                c.depends_on.push(container);
            }
        }
        Ok(())
    }

    fn restart(&mut self, c: &mut DraftContainer, v: &Node) -> Outcome {
        let s = v.as_str().ok_or("`restart` is not a string")?;
        let (policy, retries) = s.split_once(':').map_or((s, None), |(p, n)| (p, Some(n)));
        c.restart = Some(
            policy
                .parse::<RestartPolicy>()
                .map_err(|_| format!("`{s}` is not no, always, on-failure or unless-stopped"))?,
        );
        if let Some(n) = retries {
            self.unmapped(
                v.line,
                format!("restart {s}"),
                format!("archy's on-failure has no retry count (`{n}`): it restarts without a limit"),
            );
        }
        Ok(())
    }

    fn deploy(&mut self, c: &mut DraftContainer, v: &Node) -> Outcome {
        let entries = v.as_map().ok_or("`deploy` is not a mapping")?;
        for (k, val) in entries {
            match k.text.as_str() {
                "resources" => {
                    for (rk, rv) in val.as_map().unwrap_or(&[]) {
                        match rk.text.as_str() {
                            "limits" => {
                                for (lk, lv) in rv.as_map().unwrap_or(&[]) {
                                    match lk.text.as_str() {
                                        "memory" => match mib(lv) {
                                            Some(m) => c.memory_mib = Some(m),
                                            None => self.unmapped(lk.line, "deploy.resources.limits.memory", "not a number of bytes (`512M`, `1G`)"),
                                        },
                                        "cpus" => match milli(lv) {
                                            Some(m) => c.cpus_milli = Some(m),
                                            None => self.unmapped(lk.line, "deploy.resources.limits.cpus", "not a number of CPUs (`0.5`, `2`)"),
                                        },
                                        other => self.unmapped(lk.line, format!("deploy.resources.limits.{other}"), "archy limits memory and CPU only"),
                                    }
                                }
                            }
                            "reservations" => self.unmapped(
                                rk.line,
                                "deploy.resources.reservations",
                                "archy reserves nothing, it only limits memory and CPU; a GPU is passed as a device (`devices` and a `device` permission)",
                            ),
                            other => self.unmapped(rk.line, format!("deploy.resources.{other}"), "archy limits memory and CPU only"),
                        }
                    }
                }
                "replicas" if val.as_str() == Some("1") => {}
                "restart_policy" => {
                    match val.get_str("condition") {
                        Some("none") => c.restart = Some(RestartPolicy::No),
                        Some("on-failure") => c.restart = Some(RestartPolicy::OnFailure),
                        Some("any") | None => c.restart = Some(RestartPolicy::Always),
                        Some(other) => self.unmapped(
                            k.line,
                            "deploy.restart_policy.condition",
                            format!("unknown condition `{other}`"),
                        ),
                    }
                    for (pk, _) in val.as_map().unwrap_or(&[]) {
                        if pk.text != "condition" {
                            self.unmapped(
                                pk.line,
                                format!("deploy.restart_policy.{}", pk.text),
                                "archy's restart policies have no delay, attempts or window",
                            );
                        }
                    }
                }
                other => self.unmapped(
                    k.line,
                    format!("deploy.{other}"),
                    "Swarm scheduling has no counterpart: a node runs one instance of each container",
                ),
            }
        }
        Ok(())
    }

    fn networks(&mut self, v: &Node) -> Outcome {
        let names: Vec<(String, usize, Option<&Node>)> = match &v.value {
            Value::Seq(items) => {
                items.iter().filter_map(|i| i.as_str().map(|s| (s.to_owned(), i.line, None))).collect()
            }
            Value::Map(entries) => entries.iter().map(|(k, val)| (k.text.clone(), k.line, Some(val))).collect(),
            Value::Scalar { .. } => return Err("`networks` is not a list or a mapping".into()),
        };
        for (net, line, options) in names {
            if self
                .compose
                .networks
                .as_ref()
                .and_then(|n| n.get(&net))
                .and_then(|n| n.get("external"))
                .and_then(Node::as_bool)
                == Some(true)
            {
                self.unmapped(
                    line,
                    format!("networks.{net}"),
                    "an external network joins other projects' containers; archy apps are isolated from each other",
                );
            }
            for (k, _) in options.and_then(Node::as_map).unwrap_or(&[]) {
                let reason = match k.text.as_str() {
                    "ipv4_address" | "ipv6_address" => "archy assigns addresses; containers reach each other by name",
                    "aliases" => "a container's only network name on archy is its manifest name",
                    _ => "archy attaches every container to the app's one network",
                };
                self.unmapped(k.line, format!("networks.{net}.{}", k.text), reason);
            }
        }
        Ok(())
    }

    /// `cap_add` → the container's `cap_add` and one `capability` permission per entry, in the
    /// manifest's spelling (`NET_ADMIN`); `ALL` and the capabilities that amount to control of
    /// the host are left unmapped (archy grants them only as `privileged`).
    fn cap_add(&mut self, c: &mut DraftContainer, v: &Node) -> Outcome {
        let items = v.as_seq().ok_or("`cap_add` is not a list")?;
        let mut refused = Vec::new();
        for item in items {
            let Some(s) = item.as_str() else {
                refused.push("an entry that is not a string".to_owned());
                continue;
            };
            let bare = s.strip_prefix("CAP_").or_else(|| s.strip_prefix("cap_")).unwrap_or(s).to_ascii_uppercase();
            match bare.parse::<catalog::manifest::Capability>() {
                Ok(name) => {
                    if !c.cap_add.contains(&bare) {
                        c.cap_add.push(bare);
                    }
                    self.state.draft.request(Permission::Capability { name });
                }
                Err(e) => refused.push(format!("`{s}`: {e}")),
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(format!("{} (request `privileged` if the app really needs it)", refused.join("; ")))
        }
    }

    fn devices(&mut self, c: &mut DraftContainer, v: &Node) -> Outcome {
        let items = v.as_seq().ok_or("`devices` is not a list")?;
        for item in items {
            let Some(s) = item.as_str() else {
                self.unmapped(item.line, "devices", "a device entry is not a string");
                continue;
            };
            let parts: Vec<&str> = s.split(':').collect();
            let (host, inside, perms) = match parts.as_slice() {
                [h] => (*h, *h, None),
                [h, c] => (*h, *c, None),
                [h, c, p] => (*h, *c, Some(*p)),
                _ => ("", "", None),
            };
            if !host.starts_with("/dev/") {
                self.unmapped(item.line, format!("devices {s}"), "archy passes host devices under /dev/ only");
                continue;
            }
            if inside != host {
                self.unmapped(
                    item.line,
                    format!("devices {s}"),
                    format!(
                        "archy passes a device at its host path; the container sees it at `{host}`, not `{inside}`"
                    ),
                );
                continue;
            }
            if let Some(p) = perms.filter(|p| *p != "rwm") {
                self.unmapped(
                    item.line,
                    format!("devices {s}"),
                    format!("archy passes devices with Docker's default `rwm` access, not `{p}`"),
                );
            }
            c.devices.push(host.to_owned());
            self.state.draft.request(Permission::Device { path: host.to_owned() });
        }
        Ok(())
    }

    fn labels(&mut self, v: &Node) -> Outcome {
        let labels: Vec<(String, String, usize)> = match &v.value {
            Value::Map(entries) => {
                entries.iter().map(|(k, val)| (k.text.clone(), val.as_str().unwrap_or("").to_owned(), k.line)).collect()
            }
            Value::Seq(items) => items
                .iter()
                .filter_map(|i| {
                    i.as_str().map(|s| {
                        let (k, val) = s.split_once('=').unwrap_or((s, ""));
                        (k.to_owned(), val.to_owned(), i.line)
                    })
                })
                .collect(),
            Value::Scalar { .. } => return Err("`labels` is not a mapping or a list".into()),
        };
        for (k, val, line) in labels {
            match k.as_str() {
                "org.opencontainers.image.source" if val.starts_with("https://") => {
                    self.state.draft.source.get_or_insert(val);
                }
                "org.opencontainers.image.licenses" if !val.is_empty() => {
                    self.state.draft.license.get_or_insert(val);
                }
                _ => self.unmapped(
                    line,
                    format!("labels.{k}"),
                    "archy sets its own labels on what it creates; other labels are not carried",
                ),
            }
        }
        Ok(())
    }

    fn links(&mut self, v: &Node) -> Outcome {
        for item in v.as_seq().unwrap_or(&[]) {
            if let Some(s) = item.as_str()
                && let Some((_, alias)) = s.split_once(':')
            {
                self.unmapped(
                    item.line,
                    format!("links {s}"),
                    format!("a container is reached by its manifest name only, not as `{alias}`"),
                );
            }
        }
        Ok(())
    }

    /// A CasaOS service's `x-casaos`: the descriptions of its settings go into the app's
    /// description; the rest is for CasaOS's settings screen.
    fn casaos_service(&mut self, v: &Node) -> Outcome {
        for (k, val) in v.as_map().unwrap_or(&[]) {
            if k.text == "envs" {
                let mut lines = Vec::new();
                for env in val.as_seq().unwrap_or(&[]) {
                    if let Some(var) = env.get_str("container") {
                        let text = env.get("description").map(super::localized).unwrap_or_default();
                        lines.push(format!("- `{var}`: {text}"));
                    }
                }
                if !lines.is_empty() {
                    let d = &mut self.state.draft.description;
                    d.push_str("\n\nEnvironment:\n\n");
                    d.push_str(&lines.join("\n"));
                }
            } else {
                self.unmapped(
                    k.line,
                    format!("x-casaos.{}", k.text),
                    "descriptions for CasaOS's settings screen; archy has no per-setting descriptions",
                );
            }
        }
        Ok(())
    }
}

/// A service's `environment`, written as a mapping or as a list of `NAME=value`: each variable's
/// name, value (`None` when Compose takes it from the shell) and line.
pub(crate) fn env_entries(v: &Node) -> Vec<(String, Option<String>, usize)> {
    match &v.value {
        Value::Map(entries) => {
            entries.iter().map(|(k, val)| (k.text.clone(), val.as_str().map(str::to_owned), k.line)).collect()
        }
        Value::Seq(items) => items
            .iter()
            .filter_map(|item| {
                let s = item.as_str()?;
                Some(match s.split_once('=') {
                    Some((k, val)) => (k.to_owned(), Some(val.to_owned()), item.line),
                    None => (s.to_owned(), None, item.line),
                })
            })
            .collect(),
        Value::Scalar { .. } => Vec::new(),
    }
}

/// Why a Compose key archy has no field for is not mapped, with what to do instead.
fn unmapped_reason(key: &str) -> String {
    match key {
        "build" => "archy runs a pinned image or an image archive: build the image, push it and pin its digest".into(),
        "container_name" => "archy names the container `archy_<app>_<name>`; other containers reach it by its manifest name".into(),
        "hostname" | "domainname" => "a container's network name on archy is its manifest name".into(),
        "stop_grace_period" => "the manifest has no stop timeout: a node stops a container with Docker's default of 10 seconds before it kills it; make sure the app shuts down within that".into(),
        "stop_signal" => "a node stops containers with SIGTERM".into(),
        "cap_drop" => "archy has no field to drop capabilities; the container keeps Docker's default set".into(),
        "security_opt" => "archy keeps Docker's default security profile".into(),
        "sysctls" => "archy sets no kernel parameters".into(),
        "ulimits" | "pids_limit" => "archy limits memory and CPU only".into(),
        "mem_reservation" | "memswap_limit" | "mem_swappiness" | "cpu_shares" | "cpu_quota" | "cpu_period" | "cpuset" | "cpu_count" | "cpu_percent" | "blkio_config" | "oom_score_adj" | "oom_kill_disable" => {
            "archy limits memory (`memory_mib`) and CPU (`cpus_milli`) only".into()
        }
        "extra_hosts" => "archy writes no /etc/hosts entries".into(),
        "dns" | "dns_search" | "dns_opt" => "containers use Docker's DNS on the app's network".into(),
        "working_dir" => "archy uses the image's working directory; set it in the image, or run the command through `sh -c 'cd … && exec …'`".into(),
        "init" => "archy runs no init process; use an image that has one (tini)".into(),
        "logging" => "the node keeps Docker's default logging".into(),
        "env_file" => "write the file's variables into `environment`".into(),
        "platform" => "a node runs the image for its own architecture; pin a digest of a multi-architecture image".into(),
        "pull_policy" => "a node pulls an image by its digest".into(),
        "read_only" => "archy has no read-only root file system".into(),
        "tty" | "stdin_open" => "archy runs containers without a terminal".into(),
        "pid" | "ipc" | "uts" | "userns_mode" | "cgroup" | "cgroup_parent" => "archy keeps each container's own namespaces".into(),
        "profiles" => "archy runs every container of the app".into(),
        "secrets" | "configs" => "Compose secrets and configs are files; archy injects generated secrets as environment variables (`secret_env`)".into(),
        "extends" => "write the extended service's keys into this one".into(),
        "group_add" => "archy sets the user as `uid[:gid]` only".into(),
        "runtime" | "isolation" | "storage_opt" | "mac_address" | "device_cgroup_rules" | "annotations" | "attach" | "scale" => {
            "the manifest has no field for it".into()
        }
        other => format!("`{other}` has no counterpart in the manifest"),
    }
}

fn volume_option_reason(opt: &str) -> String {
    match opt {
        "z" | "Z" | "selinux" => "archy does not relabel mounts for SELinux".into(),
        "cached" | "delegated" | "consistent" => "a Docker Desktop hint without effect on a node".into(),
        "nocopy" | "volume" => "archy copies the image's files into a new volume, as Docker does by default".into(),
        "bind" => "archy binds with Docker's defaults (no propagation or SELinux options)".into(),
        _ => format!("`{opt}` is not a mount option archy has"),
    }
}

/// A scalar or a Compose long-form item, shown in a report line.
fn show(n: &Node) -> String {
    match &n.value {
        Value::Scalar { text, .. } => text.clone(),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| format!("{}={}", k.text, v.as_str().unwrap_or("…")))
            .collect::<Vec<_>>()
            .join(","),
        Value::Seq(_) => "[…]".into(),
    }
}

/// `8080` or `8080-8082` as ports.
fn range(s: &str) -> Option<Vec<u16>> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a >= 1 && a <= b && b - a < 64).then(|| (a..=b).collect())
}

/// A Go duration (`1m30s`, `500ms`, `1h`) in whole seconds, rounded up; `true` when exact.
pub(crate) fn duration_secs(s: &str) -> Option<(u32, bool)> {
    let mut total_ms: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    if rest.bytes().all(|b| b.is_ascii_digit()) {
        // Compose reads a bare number as seconds.
        return Some((rest.parse().ok()?, true));
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let (unit, tail) = tail.split_at(unit_len);
        let ms_per: f64 = match unit {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1000.0,
            "ms" => 1.0,
            "us" | "µs" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        let n: f64 = number.parse().ok()?;
        total_ms += (n * ms_per).ceil() as u64;
        rest = tail;
    }
    let secs = total_ms.div_ceil(1000);
    Some((u32::try_from(secs).ok()?, total_ms.is_multiple_of(1000)))
}

/// A byte size (`512m`, `1G`, `1.5gb`, `268435456`) in MiB, rounded up.
fn mib(v: &Node) -> Option<u64> {
    let s = v.as_str()?.trim().to_ascii_lowercase();
    let digits = s.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
    let (number, unit) = s.split_at(digits);
    let factor: f64 = match unit.trim().trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number.parse::<f64>().ok()? * factor;
    let mib = (bytes / (1024.0 * 1024.0)).ceil();
    (mib >= 1.0).then_some(mib as u64)
}

/// A CPU count (`0.5`, `2`) in thousandths.
fn milli(v: &Node) -> Option<u32> {
    let s = v.as_str()?.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u32 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac3: String = frac.chars().chain(std::iter::repeat('0')).take(3).collect();
    let milli = whole.checked_mul(1000)? + frac3.parse::<u32>().ok()?;
    (milli > 0).then_some(milli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_sizes_and_cpus() {
        assert_eq!(duration_secs("1m30s"), Some((90, true)));
        assert_eq!(duration_secs("500ms"), Some((1, false)));
        assert_eq!(duration_secs("10"), Some((10, true)));
        assert_eq!(duration_secs("soon"), None);
        let n = |s: &str| Node::scalar(1, s);
        assert_eq!(mib(&n("512M")), Some(512));
        assert_eq!(mib(&n("1.5g")), Some(1536));
        assert_eq!(mib(&n("268435456")), Some(256));
        assert_eq!(mib(&n("1gb")), Some(1024));
        assert_eq!(milli(&n("0.5")), Some(500));
        assert_eq!(milli(&n("2")), Some(2000));
        assert_eq!(milli(&n("0.25")), Some(250));
        assert_eq!(range("6000-6002"), Some(vec![6000, 6001, 6002]));
        assert_eq!(range("0"), None);
    }
}
