//! Validation: from the raw document to a [`Manifest`], recording every problem on the way;
//! and back from a [`Manifest`] to the raw document (the JSON form).
//!
//! Each check names the rule it enforces in its problem text; `docs/manifest.md` lists them all.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::error::Problems;
use super::names::NAME_FIX;
use super::raw::{
    RawArchive, RawBind, RawContainer, RawHealthcheck, RawImage, RawManifest, RawMount, RawPermission, RawPort,
    RawSecret, RawTmpfs, RawVolume,
};
use super::{
    AppId, Bind, Charset, Container, Healthcheck, HostFact, Icon, Image, Limits, Manifest, ManifestErrors, Name,
    Permission, PinnedImage, Port, Protocol, RestartPolicy, SCHEMA_VERSION, Secret, Tmpfs, User, Volume, VolumeMount,
    paths,
};
use crate::did::DidKey;

const IMAGE_FIX: &str =
    "use name@sha256:<64 hex> or an archive target { target = \"<TUF target path>\", image_id = \"sha256:<64 hex>\" }";
/// A container's `env`, `derived_env` and `secret_env`, each `None` when it had a problem.
type EnvMaps = (Option<BTreeMap<String, String>>, Option<BTreeMap<String, HostFact>>, Option<BTreeMap<String, Name>>);

const ENV_FIX: &str = "use letters, digits and `_`, not starting with a digit (e.g. DATABASE_URL)";
const SEMVER_FIX: &str = "use a semantic version like 1.2.3";

/// Validates a raw document against every rule; the manifest, or every problem found.
pub(crate) fn validate(raw: RawManifest, limits: &Limits) -> Result<Manifest, ManifestErrors> {
    let mut v = Validator { p: Problems::default(), limits };
    v.run(raw)
}

struct Validator<'a> {
    p: Problems,
    limits: &'a Limits,
}

/// What the container checks need to know about the rest of the manifest.
struct Context<'a> {
    container_names: &'a [Option<Name>],
    volumes: &'a BTreeSet<Name>,
    secrets: &'a BTreeSet<Name>,
    permissions: &'a [Permission],
}

impl Validator<'_> {
    fn run(&mut self, raw: RawManifest) -> Result<Manifest, ManifestErrors> {
        match raw.schema {
            Some(SCHEMA_VERSION) => {}
            Some(other) => self.p.push(
                "schema",
                format!("schema version {other} is not supported (this archy reads {SCHEMA_VERSION})"),
                format!("set schema = {SCHEMA_VERSION}, or update archy"),
            ),
            None => self.missing("schema", &format!("add schema = {SCHEMA_VERSION}")),
        }
        let id = self.required("id", &raw.id, "add id = \"my-app\"").and_then(|s| match s.parse::<AppId>() {
            Ok(id) => Some(id),
            Err(e) => {
                self.p.push("id", format!("{e}, so it is not a valid app id"), NAME_FIX);
                None
            }
        });
        let version = self.version("version", &raw.version);
        let publisher = self
            .required("publisher", &raw.publisher, "add publisher = \"did:key:z…\" (`archy key show` prints yours)")
            .and_then(|s| match s.parse::<DidKey>() {
                Ok(did) => Some(did),
                Err(e) => {
                    self.p.push("publisher", e.to_string(), "use your did:key (`archy key show` prints it)");
                    None
                }
            });
        let title = self.line("title", &raw.title, self.limits.max_title_len);
        let summary = self.line("summary", &raw.summary, self.limits.max_summary_len);
        let description = self.description(&raw.description);
        let icon = raw.icon.as_deref().and_then(|s| self.icon(s));
        let categories = self.categories(&raw.categories);
        let license = self.license(&raw.license);
        let source = self
            .required("source", &raw.source, "add source = \"https://…\" pointing at the app's source code")
            .filter(|s| self.https_url("source", s))
            .map(str::to_owned);
        let min_node_version = self.version("min_node_version", &raw.min_node_version);

        let permissions = self.permissions(&raw.permissions);
        let (volumes, volume_names) = self.volumes(&raw.volumes, &permissions);
        let (secrets, secret_names) = self.secrets(&raw.secrets);
        let dependencies = self.dependencies(&raw.dependencies, id.as_ref());

        if raw.containers.is_empty() {
            self.p.push("containers", "the app has no containers", "add at least one [[containers]] table");
        }
        if raw.containers.len() > self.limits.max_containers {
            self.p.push(
                "containers",
                format!("{} containers, over the limit of {}", raw.containers.len(), self.limits.max_containers),
                "split the app or merge containers",
            );
        }
        let container_names = self.container_names(&raw.containers);
        let cx = Context {
            container_names: &container_names,
            volumes: &volume_names,
            secrets: &secret_names,
            permissions: &permissions,
        };
        let containers: Vec<Option<Container>> =
            raw.containers.iter().enumerate().map(|(i, c)| self.container(i, c, &cx)).collect();
        self.duplicate_ports(&raw.containers);
        self.depends_on_cycles(&raw.containers, &container_names);
        self.data_uid_conflicts(&raw.containers);

        let containers: Option<Vec<Container>> = containers.into_iter().collect();
        let (
            Some(id),
            Some(version),
            Some(publisher),
            Some(title),
            Some(summary),
            Some(description),
            Some(license),
            Some(source),
            Some(min_node_version),
            Some(containers),
        ) = (id, version, publisher, title, summary, description, license, source, min_node_version, containers)
        else {
            return Err(self.take());
        };
        let manifest = Manifest {
            schema: SCHEMA_VERSION,
            id,
            version,
            publisher,
            title,
            summary,
            description,
            icon,
            categories,
            license,
            source,
            min_node_version,
            containers,
            volumes,
            secrets,
            dependencies,
            permissions,
        };
        std::mem::take(&mut self.p).finish(manifest)
    }

    fn take(&mut self) -> ManifestErrors {
        let p = std::mem::take(&mut self.p);
        debug_assert!(!p.is_empty(), "a part of the manifest failed without a recorded problem");
        p.into_errors()
    }

    fn missing(&mut self, field: &str, fix: &str) {
        self.p.push(field, "required field is missing", fix);
    }

    fn required<'s>(&mut self, field: &str, v: &'s Option<String>, fix: &str) -> Option<&'s str> {
        if v.is_none() {
            self.missing(field, fix);
        }
        v.as_deref()
    }

    /// Rule: strings are bounded by `max_string_len` and hold no NUL.
    fn string(&mut self, field: &str, s: &str) -> bool {
        if s.len() > self.limits.max_string_len {
            self.p.push(
                field,
                format!("{} bytes, over the limit of {}", s.len(), self.limits.max_string_len),
                "shorten the value",
            );
            false
        } else if s.contains('\0') {
            self.p.push(field, "value holds a NUL character", "remove the NUL character");
            false
        } else {
            true
        }
    }

    fn version(&mut self, field: &str, v: &Option<String>) -> Option<semver::Version> {
        let s = self.required(field, v, &format!("add {field} = \"1.0.0\""))?;
        match semver::Version::parse(s) {
            Ok(version) => Some(version),
            Err(e) => {
                self.p.push(field, format!("`{s}` is not a semantic version: {e}"), SEMVER_FIX);
                None
            }
        }
    }

    /// Rule: one-line text fields are non-empty, bounded and free of control characters.
    fn line(&mut self, field: &str, v: &Option<String>, max: usize) -> Option<String> {
        let s = self.required(field, v, &format!("add {field} = \"…\""))?;
        if s.trim().is_empty() {
            self.p.push(field, "value is empty", format!("write a {field}"));
            return None;
        }
        if s.len() > max {
            self.p.push(field, format!("{} bytes, over the limit of {max}", s.len()), format!("shorten the {field}"));
            return None;
        }
        if s.chars().any(char::is_control) {
            self.p.push(field, "value holds a line break or control character", "write it on one line");
            return None;
        }
        Some(s.to_owned())
    }

    fn description(&mut self, v: &Option<String>) -> Option<String> {
        let s = self.required("description", v, "add description = \"\"\"…\"\"\" (Markdown)")?;
        let max = self.limits.max_description_len;
        if s.trim().is_empty() {
            self.p.push("description", "value is empty", "describe the app in a few sentences");
            None
        } else if s.len() > max {
            self.p.push(
                "description",
                format!("{} bytes, over the limit of {max}", s.len()),
                "shorten the description and link to the app's documentation",
            );
            None
        } else if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            self.p.push("description", "value holds a control character", "remove control characters");
            None
        } else {
            Some(s.to_owned())
        }
    }

    /// Rule: an icon is a clean relative path inside the app folder, or an `https://` URL.
    fn icon(&mut self, s: &str) -> Option<Icon> {
        if s.contains("://") {
            return self.https_url("icon", s).then(|| Icon::Url(s.to_owned()));
        }
        if !self.string("icon", s) {
            return None;
        }
        match paths::check_relative(s) {
            Ok(()) => Some(Icon::Path(s.to_owned())),
            Err((problem, _)) => {
                self.p.push("icon", problem, "use a file in the app folder like `icon.svg`, or an https:// URL");
                None
            }
        }
    }

    /// Rule: URLs are `https://` with a host, no spaces or control characters.
    fn https_url(&mut self, field: &str, s: &str) -> bool {
        if !self.string(field, s) {
            return false;
        }
        let host = s.strip_prefix("https://").map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
        let ok = host.is_some_and(|h| !h.is_empty() && !h.contains('@'))
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            self.p.push(
                field,
                format!("`{s}` is not an https:// URL"),
                "use a full https:// URL like https://example.org/app",
            );
        }
        ok
    }

    fn categories(&mut self, list: &[String]) -> Vec<String> {
        if list.len() > self.limits.max_categories {
            self.p.push(
                "categories",
                format!("{} categories, over the limit of {}", list.len(), self.limits.max_categories),
                "keep the most fitting categories",
            );
        }
        let mut seen = BTreeSet::new();
        for (i, c) in list.iter().enumerate() {
            let field = format!("categories[{i}]");
            if let Err(e) = c.parse::<Name>() {
                self.p.push(
                    &field,
                    format!("{e}, so it is not a valid category"),
                    "use a lowercase slug like `media` or `home-automation`",
                );
            } else if !seen.insert(c.as_str()) {
                self.p.push(&field, format!("category `{c}` is listed twice"), "remove the duplicate");
            }
        }
        list.to_vec()
    }

    /// Rule: the license is an SPDX license expression (ids, `AND`/`OR`/`WITH`, parentheses).
    fn license(&mut self, v: &Option<String>) -> Option<String> {
        let s = self.required("license", v, "add license = \"<SPDX id>\", e.g. \"MIT\"")?;
        let token_ok = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.+:".contains(&b));
        let ok = s.len() <= 256 && s.replace(['(', ')'], " ").split_whitespace().all(token_ok) && !s.trim().is_empty();
        if ok {
            Some(s.to_owned())
        } else {
            self.p.push(
                "license",
                format!("`{s}` is not an SPDX license expression"),
                "use an SPDX id like `MIT`, `GPL-3.0-or-later` or `Apache-2.0 OR MIT`",
            );
            None
        }
    }

    fn name(&mut self, field: &str, v: &Option<String>, what: &str) -> Option<Name> {
        let s = self.required(field, v, &format!("add name = \"…\" to the {what}"))?;
        match s.parse::<Name>() {
            Ok(name) => Some(name),
            Err(e) => {
                self.p.push(field, format!("{e}, so it is not a valid {what} name"), NAME_FIX);
                None
            }
        }
    }

    fn permissions(&mut self, raw: &[RawPermission]) -> Vec<Permission> {
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
        let kinds = "privileged, host_network, docker_socket, host_path, device, shared_volume";
        let Some(kind) = r.kind.as_deref() else {
            self.missing(&format!("{base}.kind"), &format!("add kind = \"…\", one of {kinds}"));
            return None;
        };
        let allowed: &[&str] = match kind {
            "privileged" | "host_network" | "docker_socket" => &[],
            "host_path" => &["host", "target", "read_only"],
            "device" => &["path"],
            "shared_volume" => &["name"],
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
            _ => Permission::SharedVolume { name: self.name(&format!("{base}.name"), &r.name, "shared volume")? },
        };
        (!stray).then_some(perm)
    }

    fn absolute(&mut self, field: &str, s: &str) -> bool {
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

    fn device_path(&mut self, field: &str, s: &str) -> bool {
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

    fn volumes(&mut self, raw: &[RawVolume], perms: &[Permission]) -> (Vec<Volume>, BTreeSet<Name>) {
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

    fn secrets(&mut self, raw: &[RawSecret]) -> (Vec<Secret>, BTreeSet<Name>) {
        if raw.len() > self.limits.max_secrets {
            self.p.push(
                "secrets",
                format!("{} secrets, over the limit of {}", raw.len(), self.limits.max_secrets),
                "derive several values from fewer secrets",
            );
        }
        let mut out = Vec::new();
        let mut names = BTreeSet::new();
        for (k, r) in raw.iter().enumerate() {
            let name = self.name(&format!("secrets[{k}].name"), &r.name, "secret");
            let length = r.length.unwrap_or(Secret::DEFAULT_LENGTH);
            let (min, max) = (Secret::MIN_LENGTH, self.limits.max_secret_length);
            let length_ok = (min..=max).contains(&length);
            if !length_ok {
                self.p.push(
                    format!("secrets[{k}].length"),
                    format!("length {length} is outside {min}..={max}"),
                    format!("use a length between {min} and {max}"),
                );
            }
            let charset = match r.charset.as_deref().map(str::parse::<Charset>) {
                None => Some(Charset::default()),
                Some(Ok(c)) => Some(c),
                Some(Err(e)) => {
                    self.p.push(
                        format!("secrets[{k}].charset"),
                        format!("{e} for a charset"),
                        "use alphanumeric, hex or base64url",
                    );
                    None
                }
            };
            let Some(name) = name else { continue };
            if !names.insert(name.clone()) {
                self.p.push(
                    format!("secrets[{k}].name"),
                    format!("secret name `{name}` is declared twice"),
                    "give each secret its own name",
                );
                continue;
            }
            if let (true, Some(charset)) = (length_ok, charset) {
                out.push(Secret { name, length, charset });
            }
        }
        (out, names)
    }

    fn dependencies(
        &mut self,
        raw: &BTreeMap<String, String>,
        app: Option<&AppId>,
    ) -> BTreeMap<AppId, semver::VersionReq> {
        if raw.len() > self.limits.max_dependencies {
            self.p.push(
                "dependencies",
                format!("{} dependencies, over the limit of {}", raw.len(), self.limits.max_dependencies),
                "depend only on the apps this app talks to",
            );
        }
        let mut out = BTreeMap::new();
        for (key, req) in raw {
            let field = format!("dependencies.{key}");
            let id = match key.parse::<AppId>() {
                Ok(id) => id,
                Err(e) => {
                    self.p.push(&field, format!("{e}, so it is not a valid app id"), NAME_FIX);
                    continue;
                }
            };
            if Some(&id) == app {
                self.p.push(&field, "the app depends on itself", "remove the dependency");
                continue;
            }
            match semver::VersionReq::parse(req) {
                Ok(req) => {
                    out.insert(id, req);
                }
                Err(e) => self.p.push(
                    &field,
                    format!("`{req}` is not a version requirement: {e}"),
                    "use a semver requirement like \"^1.2\" or \">=2.0, <3\"",
                ),
            }
        }
        out
    }

    /// Rule: container names are valid and unique in the app.
    fn container_names(&mut self, containers: &[RawContainer]) -> Vec<Option<Name>> {
        let mut seen: HashMap<Name, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, c) in containers.iter().enumerate() {
            let field = format!("containers[{i}].name");
            let name = self.name(&field, &c.name, "container");
            if let Some(name) = &name
                && let Some(first) = seen.insert(name.clone(), i)
            {
                self.p.push(
                    &field,
                    format!("container name `{name}` is already used by containers[{first}]"),
                    "give each container its own name",
                );
                // Keep the first index for later messages.
                seen.insert(name.clone(), first);
            }
            out.push(name);
        }
        out
    }

    fn container(&mut self, i: usize, c: &RawContainer, cx: &Context<'_>) -> Option<Container> {
        let base = format!("containers[{i}]");
        let max_list = self.limits.max_list_entries;
        for (field, len) in [
            ("ports", c.ports.len()),
            ("volumes", c.volumes.len()),
            ("tmpfs", c.tmpfs.len()),
            ("binds", c.binds.len()),
            ("devices", c.devices.len()),
            ("depends_on", c.depends_on.len()),
        ] {
            if len > max_list {
                self.p.push(
                    format!("{base}.{field}"),
                    format!("{len} entries, over the limit of {max_list}"),
                    "use fewer entries",
                );
            }
        }
        let image = self.image(&base, c.image.as_ref());
        let command = self.args(&format!("{base}.command"), c.command.as_deref());
        let entrypoint = self.args(&format!("{base}.entrypoint"), c.entrypoint.as_deref());
        let (env, derived_env, secret_env) = self.env(&base, c, cx);
        let ports = self.ports(&base, &c.ports, c.host_network);
        let mut targets: HashMap<String, String> = HashMap::new();
        let volumes = self.mounts(&base, &c.volumes, cx, &mut targets);
        let tmpfs = self.tmpfs(&base, &c.tmpfs, &mut targets);
        let binds = self.binds(&base, &c.binds, cx, &mut targets);
        let devices = self.devices(&base, &c.devices, cx);
        let user = match c.user.as_deref().map(|u| (u, u.parse::<User>())) {
            None => Some(None),
            Some((_, Ok(user))) => Some(Some(user)),
            Some((u, Err(_))) => {
                self.p.push(
                    format!("{base}.user"),
                    format!("`{u}` is not a numeric uid[:gid]"),
                    "use numbers like \"1000\" or \"1000:1000\"",
                );
                None
            }
        };
        let healthcheck = match &c.healthcheck {
            None => Some(None),
            Some(h) => self.healthcheck(&format!("{base}.healthcheck"), h).map(Some),
        };
        let restart = match c.restart.as_deref().map(|r| (r, r.parse::<RestartPolicy>())) {
            None => Some(RestartPolicy::default()),
            Some((_, Ok(r))) => Some(r),
            Some((r, Err(_))) => {
                self.p.push(
                    format!("{base}.restart"),
                    format!("unknown restart policy `{r}`"),
                    "use no, on-failure, always or unless-stopped",
                );
                None
            }
        };
        let mut limits_ok = true;
        if let Some(mib) = c.memory_mib
            && mib < 6
        {
            self.p.push(
                format!("{base}.memory_mib"),
                format!("{mib} MiB is below Docker's minimum of 6 MiB"),
                "use at least 6, or leave it out",
            );
            limits_ok = false;
        }
        if c.cpus_milli == Some(0) {
            self.p.push(
                format!("{base}.cpus_milli"),
                "a CPU limit of 0 would stop the container",
                "use thousandths of a CPU, e.g. 500 for half a CPU, or leave it out",
            );
            limits_ok = false;
        }
        let depends_on = self.depends_on(&base, i, &c.depends_on, cx);
        // Rule: privileged and host-network containers need the matching requested permission.
        if c.privileged && !cx.permissions.contains(&Permission::Privileged) {
            self.p.push(
                format!("{base}.privileged"),
                "container is privileged but the manifest does not request the `privileged` permission",
                "add { kind = \"privileged\" } to permissions, or remove privileged = true",
            );
        }
        if c.host_network && !cx.permissions.contains(&Permission::HostNetwork) {
            self.p.push(
                format!("{base}.host_network"),
                "container uses the host network but the manifest does not request the `host_network` permission",
                "add { kind = \"host_network\" } to permissions, or remove host_network = true",
            );
        }

        if !limits_ok {
            return None;
        }
        Some(Container {
            name: cx.container_names.get(i).cloned().flatten()?,
            image: image?,
            command: command?,
            entrypoint: entrypoint?,
            env: env?,
            derived_env: derived_env?,
            secret_env: secret_env?,
            ports: ports?,
            volumes: volumes?,
            tmpfs: tmpfs?,
            binds: binds?,
            devices: devices?,
            user: user?,
            data_uid: c.data_uid,
            healthcheck: healthcheck?,
            restart: restart?,
            memory_mib: c.memory_mib,
            cpus_milli: c.cpus_milli,
            depends_on: depends_on?,
            privileged: c.privileged,
            host_network: c.host_network,
        })
    }

    /// Rule: images are pinned by digest, or are archive targets with an image id.
    fn image(&mut self, base: &str, image: Option<&RawImage>) -> Option<Image> {
        let field = format!("{base}.image");
        match image {
            None => {
                self.missing(&field, IMAGE_FIX);
                None
            }
            Some(RawImage::Reference(s)) => {
                if !self.string(&field, s) {
                    return None;
                }
                match s.parse::<PinnedImage>() {
                    Ok(image) => Some(Image::Pinned(image)),
                    Err(super::ImageError::NotPinned(_)) => {
                        self.p.push(&field, format!("image `{s}` is not pinned by digest"), IMAGE_FIX);
                        None
                    }
                    Err(e) => {
                        self.p.push(&field, e.to_string(), IMAGE_FIX);
                        None
                    }
                }
            }
            Some(RawImage::Archive(RawArchive { target, image_id })) => {
                let target_field = format!("{field}.target");
                let target = self
                    .required(
                        &target_field,
                        target,
                        "add target = \"<app-id>/<file>.tar\", the image archive's TUF target path",
                    )
                    .filter(|t| self.string(&target_field, t))
                    .filter(|t| match paths::check_relative(t) {
                        Ok(()) => true,
                        Err((problem, _)) => {
                            self.p.push(
                                &target_field,
                                problem,
                                "use a TUF target path like `hello-web/hello-web.oci.tar`",
                            );
                            false
                        }
                    });
                let id_field = format!("{field}.image_id");
                let image_id = self
                    .required(&id_field, image_id, "add image_id = \"sha256:<64 hex>\" (build.sh prints it)")
                    .and_then(|s| match s.parse() {
                        Ok(d) => Some(d),
                        Err(e) => {
                            self.p.push(
                                &id_field,
                                format!("{e}"),
                                "use the id `docker image inspect --format {{.Id}}` prints",
                            );
                            None
                        }
                    });
                Some(Image::Archive { target: target?.to_owned(), image_id: image_id? })
            }
        }
    }

    fn args(&mut self, field: &str, args: Option<&[String]>) -> Option<Option<Vec<String>>> {
        let Some(args) = args else { return Some(None) };
        let mut ok = true;
        if args.is_empty() {
            self.p.push(field, "the list is empty", "give the program and its arguments, or leave the field out");
            ok = false;
        }
        if args.len() > self.limits.max_args {
            self.p.push(
                field,
                format!("{} arguments, over the limit of {}", args.len(), self.limits.max_args),
                "use fewer arguments",
            );
            ok = false;
        }
        for (j, a) in args.iter().enumerate() {
            ok &= self.string(&format!("{field}[{j}]"), a);
        }
        ok.then(|| Some(args.to_vec()))
    }

    /// Rules: variable names are `[A-Za-z_][A-Za-z0-9_]*`, unique across env, derived_env and
    /// secret_env; derived values name known host facts; secret values name declared secrets.
    fn env(&mut self, base: &str, c: &RawContainer, cx: &Context<'_>) -> EnvMaps {
        let total = c.env.len() + c.derived_env.len() + c.secret_env.len();
        let mut ok = true;
        if total > self.limits.max_env_vars {
            self.p.push(
                format!("{base}.env"),
                format!("{total} environment variables, over the limit of {}", self.limits.max_env_vars),
                "use fewer variables",
            );
            ok = false;
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (table, map) in [("env", &c.env), ("derived_env", &c.derived_env), ("secret_env", &c.secret_env)] {
            for key in map.keys() {
                let field = format!("{base}.{table}.{key}");
                if !env_name_ok(key) {
                    self.p.push(&field, format!("`{key}` is not a valid environment variable name"), ENV_FIX);
                    ok = false;
                } else if let Some(other) = seen.insert(key, table) {
                    self.p.push(
                        &field,
                        format!("`{key}` is also set in {base}.{other}"),
                        "set each variable in one place",
                    );
                    ok = false;
                }
            }
        }
        for (key, value) in &c.env {
            ok &= self.string(&format!("{base}.env.{key}"), value);
        }
        let mut derived = BTreeMap::new();
        for (key, value) in &c.derived_env {
            match value.parse::<HostFact>() {
                Ok(fact) => {
                    derived.insert(key.clone(), fact);
                }
                Err(_) => {
                    let known: Vec<&str> = HostFact::ALL.iter().map(|f| f.as_str()).collect();
                    self.p.push(
                        format!("{base}.derived_env.{key}"),
                        format!("unknown host fact `{value}`"),
                        format!("use one of {}", known.join(", ")),
                    );
                    ok = false;
                }
            }
        }
        let mut secret = BTreeMap::new();
        for (key, value) in &c.secret_env {
            let field = format!("{base}.secret_env.{key}");
            match value.parse::<Name>() {
                Ok(name) if cx.secrets.contains(&name) => {
                    secret.insert(key.clone(), name);
                }
                _ => {
                    self.p.push(
                        &field,
                        format!("secret `{value}` is not declared in [[secrets]]"),
                        format!("add a [[secrets]] entry with name = \"{value}\", or fix the name"),
                    );
                    ok = false;
                }
            }
        }
        if ok { (Some(c.env.clone()), Some(derived), Some(secret)) } else { (None, None, None) }
    }

    fn ports(&mut self, base: &str, raw: &[RawPort], host_network: bool) -> Option<Vec<Port>> {
        if host_network && !raw.is_empty() {
            self.p.push(
                format!("{base}.ports"),
                "ports are not published for a container on the host network",
                "remove ports (the container listens on the host directly) or host_network",
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (j, r) in raw.iter().enumerate() {
            let field = format!("{base}.ports[{j}]");
            let host = self.port_number(&format!("{field}.host"), r.host);
            let container = self.port_number(&format!("{field}.container"), r.container);
            let protocol = match r.protocol.as_deref().map(|p| (p, p.parse::<Protocol>())) {
                None => Some(Protocol::Tcp),
                Some((_, Ok(p))) => Some(p),
                Some((p, Err(_))) => {
                    self.p.push(format!("{field}.protocol"), format!("unknown protocol `{p}`"), "use tcp or udp");
                    None
                }
            };
            match (host, container, protocol) {
                (Some(host), Some(container), Some(protocol)) => out.push(Port { host, container, protocol }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn port_number(&mut self, field: &str, v: Option<u32>) -> Option<u16> {
        match v {
            None => {
                self.missing(field, "add the port number (1-65535)");
                None
            }
            Some(n) => match u16::try_from(n) {
                Ok(p) if p > 0 => Some(p),
                _ => {
                    self.p.push(field, format!("{n} is not a port number"), "use a port between 1 and 65535");
                    None
                }
            },
        }
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

    fn mounts(
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

    fn tmpfs(&mut self, base: &str, raw: &[RawTmpfs], targets: &mut HashMap<String, String>) -> Option<Vec<Tmpfs>> {
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
    fn binds(
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
    fn devices(&mut self, base: &str, raw: &[String], cx: &Context<'_>) -> Option<Vec<String>> {
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

    fn healthcheck(&mut self, field: &str, h: &RawHealthcheck) -> Option<Healthcheck> {
        let command = match self.args(&format!("{field}.command"), h.command.as_deref()) {
            Some(Some(command)) => Some(command),
            Some(None) => {
                self.missing(
                    &format!("{field}.command"),
                    "add command = [\"program\", \"arg\"…]; exit status 0 means healthy",
                );
                None
            }
            None => None,
        };
        let mut secs = |name: &str, v: Option<u32>, default: u32, min: u32| -> Option<u32> {
            let value = v.unwrap_or(default);
            if value < min || value > 86_400 {
                self.p.push(
                    format!("{field}.{name}"),
                    format!("{value} is outside {min}..=86400"),
                    format!("use a whole number between {min} and 86400"),
                );
                None
            } else {
                Some(value)
            }
        };
        let interval_secs = secs("interval_secs", h.interval_secs, Healthcheck::DEFAULT_INTERVAL_SECS, 1);
        let timeout_secs = secs("timeout_secs", h.timeout_secs, Healthcheck::DEFAULT_TIMEOUT_SECS, 1);
        let start_period_secs =
            secs("start_period_secs", h.start_period_secs, Healthcheck::DEFAULT_START_PERIOD_SECS, 0);
        let retries = secs("retries", h.retries, Healthcheck::DEFAULT_RETRIES, 1);
        Some(Healthcheck {
            command: command?,
            interval_secs: interval_secs?,
            timeout_secs: timeout_secs?,
            start_period_secs: start_period_secs?,
            retries: retries?,
        })
    }

    /// Rule: depends_on names other containers of the app, each once.
    fn depends_on(&mut self, base: &str, i: usize, raw: &[String], cx: &Context<'_>) -> Option<Vec<Name>> {
        let mut out: Vec<Name> = Vec::new();
        let mut ok = true;
        for (j, d) in raw.iter().enumerate() {
            let field = format!("{base}.depends_on[{j}]");
            let position = cx.container_names.iter().position(|n| n.as_ref().is_some_and(|n| n.as_str() == d));
            match position {
                None => {
                    self.p.push(
                        &field,
                        format!("there is no container `{d}` in this app"),
                        "name a container of this app",
                    );
                    ok = false;
                }
                Some(p) if p == i => {
                    self.p.push(&field, "a container cannot depend on itself", "remove it");
                    ok = false;
                }
                Some(p) => match cx.container_names[p].clone() {
                    Some(name) if out.contains(&name) => {
                        self.p.push(&field, format!("`{d}` is listed twice"), "remove the duplicate");
                        ok = false;
                    }
                    Some(name) => out.push(name),
                    None => ok = false,
                },
            }
        }
        ok.then_some(out)
    }

    /// Rule: a host port is published once per protocol across the whole app.
    fn duplicate_ports(&mut self, containers: &[RawContainer]) {
        let mut seen: HashMap<(u32, String), String> = HashMap::new();
        for (i, c) in containers.iter().enumerate() {
            for (j, port) in c.ports.iter().enumerate() {
                let Some(host) = port.host else { continue };
                let protocol = port.protocol.clone().unwrap_or_else(|| "tcp".to_owned());
                let field = format!("containers[{i}].ports[{j}].host");
                if let Some(first) = seen.get(&(host, protocol.clone())) {
                    self.p.push(
                        &field,
                        format!("host port {host}/{protocol} is already published by {first}"),
                        "publish each host port once; pick another host port",
                    );
                } else {
                    seen.insert((host, protocol), field);
                }
            }
        }
    }

    /// Rule: depends_on has no cycles (so there is a start order).
    fn depends_on_cycles(&mut self, containers: &[RawContainer], names: &[Option<Name>]) {
        let index = |d: &str| names.iter().position(|n| n.as_ref().is_some_and(|n| n.as_str() == d));
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut state = vec![0u8; containers.len()];
        let mut path: Vec<usize> = Vec::new();
        for start in 0..containers.len() {
            if state[start] == 0 {
                self.visit(start, containers, &index, &mut state, &mut path);
            }
        }
    }

    fn visit(
        &mut self,
        i: usize,
        containers: &[RawContainer],
        index: &dyn Fn(&str) -> Option<usize>,
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) {
        state[i] = 1;
        path.push(i);
        for (j, d) in containers[i].depends_on.iter().enumerate() {
            let Some(next) = index(d) else { continue };
            if next == i {
                continue; // reported as self-dependency
            }
            match state[next] {
                0 => self.visit(next, containers, index, state, path),
                1 => {
                    let from = path.iter().position(|&p| p == next).unwrap_or(0);
                    let name = |k: usize| containers[k].name.clone().unwrap_or_default();
                    let mut cycle: Vec<String> = path[from..].iter().map(|&k| name(k)).collect();
                    cycle.push(name(next));
                    self.p.push(
                        format!("containers[{i}].depends_on[{j}]"),
                        format!("depends_on forms a cycle: {}", cycle.join(" -> ")),
                        "remove one of the dependencies so the containers have a start order",
                    );
                }
                _ => {}
            }
        }
        path.pop();
        state[i] = 2;
    }

    /// Rule: containers sharing a volume agree on its owner (`data_uid`).
    fn data_uid_conflicts(&mut self, containers: &[RawContainer]) {
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

fn env_name_ok(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The raw (JSON) form of a validated manifest; validating it again gives the same manifest.
pub(crate) fn to_raw(m: &Manifest) -> RawManifest {
    RawManifest {
        schema: Some(m.schema),
        id: Some(m.id.to_string()),
        version: Some(m.version.to_string()),
        publisher: Some(m.publisher.to_string()),
        title: Some(m.title.clone()),
        summary: Some(m.summary.clone()),
        description: Some(m.description.clone()),
        icon: m.icon.as_ref().map(|i| i.as_str().to_owned()),
        categories: m.categories.clone(),
        license: Some(m.license.clone()),
        source: Some(m.source.clone()),
        min_node_version: Some(m.min_node_version.to_string()),
        containers: m.containers.iter().map(container_to_raw).collect(),
        volumes: m
            .volumes
            .iter()
            .map(|v| RawVolume { name: Some(v.name.to_string()), shared: v.shared.as_ref().map(Name::to_string) })
            .collect(),
        secrets: m
            .secrets
            .iter()
            .map(|s| RawSecret {
                name: Some(s.name.to_string()),
                length: Some(s.length),
                charset: Some(s.charset.as_str().to_owned()),
            })
            .collect(),
        dependencies: m.dependencies.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        permissions: m.permissions.iter().map(permission_to_raw).collect(),
    }
}

fn container_to_raw(c: &Container) -> RawContainer {
    RawContainer {
        name: Some(c.name.to_string()),
        image: Some(match &c.image {
            Image::Pinned(p) => RawImage::Reference(p.to_string()),
            Image::Archive { target, image_id } => {
                RawImage::Archive(RawArchive { target: Some(target.clone()), image_id: Some(image_id.to_string()) })
            }
        }),
        command: c.command.clone(),
        entrypoint: c.entrypoint.clone(),
        env: c.env.clone(),
        derived_env: c.derived_env.iter().map(|(k, v)| (k.clone(), v.as_str().to_owned())).collect(),
        secret_env: c.secret_env.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
        ports: c
            .ports
            .iter()
            .map(|p| RawPort {
                host: Some(u32::from(p.host)),
                container: Some(u32::from(p.container)),
                protocol: Some(p.protocol.as_str().to_owned()),
            })
            .collect(),
        volumes: c
            .volumes
            .iter()
            .map(|v| RawMount {
                volume: Some(v.volume.to_string()),
                target: Some(v.target.clone()),
                read_only: v.read_only,
            })
            .collect(),
        tmpfs: c.tmpfs.iter().map(|t| RawTmpfs { target: Some(t.target.clone()), size_mib: t.size_mib }).collect(),
        binds: c
            .binds
            .iter()
            .map(|b| RawBind { host: Some(b.host.clone()), target: Some(b.target.clone()), read_only: b.read_only })
            .collect(),
        devices: c.devices.clone(),
        user: c.user.map(|u| u.to_string()),
        data_uid: c.data_uid,
        healthcheck: c.healthcheck.as_ref().map(|h| RawHealthcheck {
            command: Some(h.command.clone()),
            interval_secs: Some(h.interval_secs),
            timeout_secs: Some(h.timeout_secs),
            start_period_secs: Some(h.start_period_secs),
            retries: Some(h.retries),
        }),
        restart: Some(c.restart.as_str().to_owned()),
        memory_mib: c.memory_mib,
        cpus_milli: c.cpus_milli,
        depends_on: c.depends_on.iter().map(Name::to_string).collect(),
        privileged: c.privileged,
        host_network: c.host_network,
    }
}

fn permission_to_raw(p: &Permission) -> RawPermission {
    let mut raw = RawPermission { kind: Some(p.kind().to_owned()), ..RawPermission::default() };
    match p {
        Permission::HostPath { host, target, read_only } => {
            raw.host = Some(host.clone());
            raw.target = Some(target.clone());
            raw.read_only = Some(*read_only);
        }
        Permission::Device { path } => raw.path = Some(path.clone()),
        Permission::SharedVolume { name } => raw.name = Some(name.to_string()),
        Permission::Privileged | Permission::HostNetwork | Permission::DockerSocket => {}
    }
    raw
}
