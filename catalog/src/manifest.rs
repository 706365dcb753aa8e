//! App manifests, schema v1: what an app is, who publishes it, and exactly what a node runs for it.
//!
//! An app is authored as a folder `apps/<id>/` holding `archy.toml` plus the files it references
//! (an icon). [`Manifest::from_dir`] reads such a folder, [`Manifest::from_toml_str`] reads the
//! TOML text, and [`Manifest::from_json_value`] reads the JSON form that is signed and travels in
//! the catalog ([`Manifest::to_json_value`]). All three run the same validation, which reports
//! *every* problem with the field path and a fix ([`ManifestErrors`]), and all input is bounded
//! by a [`Limits`].
//!
//! [`render`] turns a manifest into the exact Docker objects a node creates for it
//! ([`RenderPlan`]), without talking to Docker. The field-by-field reference is `docs/manifest.md`.
//!
//! ```
//! use catalog::DidKey;
//! use catalog::manifest::{render, Limits, Manifest};
//!
//! let publisher: DidKey = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp".parse().unwrap();
//! let toml = catalog::manifest::example_toml("hello-web", &publisher);
//! let manifest = Manifest::from_toml_str(&toml, &Limits::default()).expect("valid");
//! let again = Manifest::from_json_value(manifest.to_json_value(), &Limits::default()).expect("valid");
//! assert_eq!(manifest, again);
//! let plan = render(&manifest);
//! assert_eq!(plan.network.name, "archy_hello-web");
//! assert_eq!(plan.containers[0].name, "archy_hello-web_web");
//! ```

mod capability;
mod engine_name;
mod error;
mod example;
mod image;
mod limits;
mod names;
mod paths;
mod raw;
mod render;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::did::DidKey;

pub use capability::{Capability, CapabilityError};
pub use engine_name::{EngineObject, EnginePrefix, Namespace};
pub use error::{ManifestErrors, ManifestProblem};
pub use example::example_toml;
pub use image::{Image, ImageError, PinnedImage, Sha256Digest};
pub use limits::Limits;
pub use names::{AppId, MAX_NAME_LEN, Name, NameError};
pub use render::{
    ContainerPlan, HealthcheckPlan, LABEL_APP, LABEL_MANAGED, LABEL_ROLE, LABEL_SHARED, LABEL_VERSION, Mount,
    NetworkPlan, PortPlan, RenderPlan, VolumePlan, render, render_in,
};

/// The manifest schema version this crate reads and writes (the top-level `schema` field).
pub const SCHEMA_VERSION: u32 = 1;

/// The most processes a container runs at once unless its manifest raises `pids_limit` (with
/// the `pids_limit` permission): a fork bomb stops there, not at the host's limit.
pub const DEFAULT_PIDS_LIMIT: u32 = 1024;

/// The highest `pids_limit` a manifest may set: Linux's own ceiling on process ids.
pub const MAX_PIDS_LIMIT: u32 = 4_194_304;

/// The file name of a manifest inside an app folder.
pub const MANIFEST_FILE: &str = "archy.toml";

/// A validated app manifest.
///
/// Every value of this type passed validation: build one with [`Manifest::from_toml_str`],
/// [`Manifest::from_dir`] or [`Manifest::from_json_value`]. The fields are public for reading;
/// code that changes them must run the result through [`Manifest::from_json_value`] again before
/// trusting it. `Serialize` writes the JSON form ([`Manifest::to_json_value`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Schema version; always [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The app's id, unique in a catalog.
    pub id: AppId,
    /// The app's version (semver). Updates must increase it.
    pub version: semver::Version,
    /// The publisher's identity; the manifest must be signed by this key.
    pub publisher: DidKey,
    /// Display name, one line.
    pub title: String,
    /// One-line description for lists.
    pub summary: String,
    /// Longer description (Markdown).
    pub description: String,
    /// The app's icon, if any.
    pub icon: Option<Icon>,
    /// Categories for browsing (lowercase slugs such as `media`, `files`).
    pub categories: Vec<String>,
    /// The app's license as an SPDX license expression, e.g. `AGPL-3.0-only`.
    pub license: String,
    /// Where the app's source code is (an `https://` URL).
    pub source: String,
    /// The oldest archy node version that can run this manifest.
    pub min_node_version: semver::Version,
    /// The containers of the app; never empty, names unique.
    pub containers: Vec<Container>,
    /// The app's named volumes; names unique.
    pub volumes: Vec<Volume>,
    /// Secrets the node generates once per install and injects as environment variables.
    pub secrets: Vec<Secret>,
    /// Other apps this app needs, with the versions it accepts.
    pub dependencies: BTreeMap<AppId, semver::VersionReq>,
    /// Permissions the app requests; a node refuses to run what the operator did not grant.
    pub permissions: Vec<Permission>,
}

impl Manifest {
    /// Parses and validates a manifest from `archy.toml` text.
    ///
    /// A document that cannot be read into the schema's shape (TOML syntax error, unknown field,
    /// wrong type) yields that one problem; otherwise every validation problem is reported.
    pub fn from_toml_str(s: &str, limits: &Limits) -> Result<Manifest, ManifestErrors> {
        if s.len() > limits.max_manifest_bytes {
            return Err(oversize_error(s.len(), limits));
        }
        let de = toml::Deserializer::parse(s).map_err(|e| toml_error(&e, s))?;
        let raw: raw::RawManifest = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            shape_error(&path, &toml_message(e.inner(), s))
        })?;
        validate::validate(raw, limits)
    }

    /// Reads `<dir>/archy.toml` (at most `limits.max_manifest_bytes`), validates it, and checks
    /// that the local files it references (the icon) are regular files inside `dir`: no `..`,
    /// no absolute path, and no symlink leading out of the folder.
    pub fn from_dir(dir: &Path, limits: &Limits) -> Result<Manifest, ManifestErrors> {
        let text = read_bounded(&dir.join(MANIFEST_FILE), limits)?;
        let manifest = Self::from_toml_str(&text, limits)?;
        if let Some(Icon::Path(icon)) = &manifest.icon {
            if let Err((problem, fix)) = check_local_file(dir, icon, limits.max_icon_bytes) {
                return Err(ManifestErrors::single("icon", problem, fix));
            }
            // The icon travels in the catalog as an image a browser shows (docs/repository.md §5.1).
            if crate::repo::icon_target_path(manifest.id.as_str(), &manifest.version, icon).is_none() {
                let types: Vec<&str> = crate::repo::ICON_TYPES.iter().map(|(e, _)| *e).collect();
                return Err(ManifestErrors::single(
                    "icon",
                    format!("`{icon}` is not an image type the catalog carries"),
                    format!("use a {} file", types.join(", ")),
                ));
            }
        }
        Ok(manifest)
    }

    /// Validates a manifest in its JSON form (as produced by [`Manifest::to_json_value`]).
    pub fn from_json_value(v: serde_json::Value, limits: &Limits) -> Result<Manifest, ManifestErrors> {
        // Bound the document before looking at it; the JSON text length is the measure.
        let size = serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(usize::MAX);
        Self::from_json_value_sized(&v, size, limits)
    }

    /// [`Manifest::from_json_value`] when the caller already knows the document's encoded size
    /// (the envelope has its canonical bytes at hand).
    pub(crate) fn from_json_value_sized(
        v: &serde_json::Value,
        size: usize,
        limits: &Limits,
    ) -> Result<Manifest, ManifestErrors> {
        if size > limits.max_manifest_bytes {
            return Err(oversize_error(size, limits));
        }
        // Fast path: read the document directly; only a document that fails to read is read
        // again with path tracking, to name the field in the error.
        use serde::Deserialize as _;
        let raw = match raw::RawManifest::deserialize(v) {
            Ok(raw) => raw,
            Err(_) => serde_path_to_error::deserialize(v)
                .map_err(|e| shape_error(&e.path().to_string(), &e.inner().to_string()))?,
        };
        validate::validate(raw, limits)
    }

    /// The manifest's JSON form: the bytes that are signed (after canonical encoding) and that
    /// travel in the catalog.
    ///
    /// Holds only strings, integers, booleans, arrays and objects — no floats, no nulls — so
    /// canonical JSON encodes it. Fields at their default (empty lists, `false`, absent options)
    /// are left out.
    pub fn to_json_value(&self) -> serde_json::Value {
        // Serializing plain structs of strings, integers and string-keyed maps cannot fail.
        serde_json::to_value(validate::to_raw(self))
            .unwrap_or_else(|e| unreachable!("manifest JSON form always serializes: {e}"))
    }

    /// The container named `name`, if any.
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.name.as_str() == name)
    }

    /// The generated secret named `name`, if any.
    pub fn secret(&self, name: &str) -> Option<&Secret> {
        self.secrets.iter().find(|s| s.name.as_str() == name)
    }
}

impl Serialize for Manifest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        validate::to_raw(self).serialize(s)
    }
}

fn oversize_error(size: usize, limits: &Limits) -> ManifestErrors {
    ManifestErrors::single(
        MANIFEST_FILE,
        format!("manifest is {size} bytes, over the limit of {} bytes", limits.max_manifest_bytes),
        "shorten the description or move large content out of the manifest",
    )
}

/// A problem from reading the document's shape (serde), with the field path when known.
fn shape_error(path: &str, message: &str) -> ManifestErrors {
    let path = if path == "?" { "." } else { path };
    // serde reports unknown and missing fields at their parent; name the field itself.
    for (marker, fix) in [
        ("unknown field `", "remove the field or correct its spelling (see docs/manifest.md)"),
        ("missing field `", "add the field (see docs/manifest.md)"),
    ] {
        if let Some(rest) = message.split_once(marker).map(|(_, r)| r)
            && let Some((name, _)) = rest.split_once('`')
        {
            let field = if path == "." {
                name.to_owned()
            } else if path.ends_with(&format!(".{name}")) || path == name {
                path.to_owned()
            } else {
                format!("{path}.{name}")
            };
            return ManifestErrors::single(field, message, fix);
        }
    }
    ManifestErrors::single(path, message, "write the value with the type docs/manifest.md gives for it")
}

fn toml_error(e: &toml::de::Error, text: &str) -> ManifestErrors {
    ManifestErrors::single(MANIFEST_FILE, toml_message(e, text), "fix the TOML syntax")
}

/// The TOML error's message with its line and column.
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{message} (line {line}, column {column})")
        }
        None => message.to_owned(),
    }
}

fn read_bounded(path: &Path, limits: &Limits) -> Result<String, ManifestErrors> {
    let io_error = |e: std::io::Error| {
        ManifestErrors::single(
            MANIFEST_FILE,
            format!("cannot read {}: {e}", path.display()),
            "run this in an app folder that holds archy.toml",
        )
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    let max = limits.max_manifest_bytes;
    file.take(max as u64 + 1).read_to_end(&mut bytes).map_err(io_error)?;
    if bytes.len() > max {
        return Err(ManifestErrors::single(
            MANIFEST_FILE,
            format!("{} is over the limit of {max} bytes", path.display()),
            "shorten the description or move large content out of the manifest",
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| ManifestErrors::single(MANIFEST_FILE, "archy.toml is not valid UTF-8", "save it as UTF-8"))
}

/// Checks that `rel` (already a clean relative path) names a regular file inside `dir`.
fn check_local_file(dir: &Path, rel: &str, max_bytes: u64) -> Result<(), (String, String)> {
    let fix = || format!("put the file at `{rel}` inside the app folder");
    let root = dir.canonicalize().map_err(|e| (format!("cannot open the app folder: {e}"), fix()))?;
    let full =
        root.join(rel).canonicalize().map_err(|_| (format!("`{rel}` does not exist in the app folder"), fix()))?;
    if !full.starts_with(&root) {
        return Err((format!("`{rel}` leads outside the app folder (through a symlink)"), fix()));
    }
    let meta = std::fs::metadata(&full).map_err(|e| (format!("cannot read `{rel}`: {e}"), fix()))?;
    if !meta.is_file() {
        return Err((format!("`{rel}` is not a regular file"), fix()));
    }
    if meta.len() > max_bytes {
        return Err((
            format!("`{rel}` is {} bytes, over the limit of {max_bytes} bytes", meta.len()),
            "use a smaller icon (an SVG or a 256×256 PNG)".to_owned(),
        ));
    }
    Ok(())
}

/// An app icon: a file in the app folder or an `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Icon {
    /// A path relative to the app folder, e.g. `icon.svg`.
    Path(String),
    /// An `https://` URL.
    Url(String),
}

impl Icon {
    /// The icon as written in the manifest.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Path(s) | Self::Url(s) => s,
        }
    }
}

/// One container of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Name, unique in the app; the Docker container is `archy-<app>-<name>`.
    pub name: Name,
    /// Where the image comes from.
    pub image: Image,
    /// Replaces the image's `CMD` (exec form), if set.
    pub command: Option<Vec<String>>,
    /// Replaces the image's `ENTRYPOINT` (exec form), if set.
    pub entrypoint: Option<Vec<String>>,
    /// Plain environment variables.
    pub env: BTreeMap<String, String>,
    /// Environment variables whose values the node fills in from facts about the host.
    pub derived_env: BTreeMap<String, HostFact>,
    /// Environment variables set to a generated secret: variable name → secret name.
    pub secret_env: BTreeMap<String, Name>,
    /// Published ports.
    pub ports: Vec<Port>,
    /// Named app volumes mounted into the container.
    pub volumes: Vec<VolumeMount>,
    /// In-memory file systems.
    pub tmpfs: Vec<Tmpfs>,
    /// Host paths mounted into the container; each needs a `host_path` (or `docker_socket`)
    /// permission.
    pub binds: Vec<Bind>,
    /// Host devices (`/dev/…`) passed into the container; each needs a `device` permission.
    pub devices: Vec<String>,
    /// The user the container runs as, if not the image's default.
    pub user: Option<User>,
    /// The uid that must own this container's volumes; the node sets ownership of a new volume
    /// to `data_uid:data_uid` before the first start.
    pub data_uid: Option<u32>,
    /// How the node and Docker tell the container is healthy.
    pub healthcheck: Option<Healthcheck>,
    /// What Docker does when the container stops.
    pub restart: RestartPolicy,
    /// Memory limit in MiB.
    pub memory_mib: Option<u64>,
    /// CPU limit in thousandths of a CPU (`500` = half a CPU).
    pub cpus_milli: Option<u32>,
    /// Containers of the same app that must be started (and healthy, if they have a
    /// healthcheck) before this one.
    pub depends_on: Vec<Name>,
    /// Runs the container privileged; needs the `privileged` permission.
    pub privileged: bool,
    /// Uses the host's network stack; needs the `host_network` permission.
    pub host_network: bool,
    /// Capabilities added to the node's default set, each covered by a `capability`
    /// permission; empty for a privileged container (it has them all).
    pub cap_add: Vec<Capability>,
    /// Most processes at once, in place of [`DEFAULT_PIDS_LIMIT`]; a value above it needs a
    /// `pids_limit` permission whose `max` covers it.
    pub pids_limit: Option<u32>,
    /// Whether the container runs with `no-new-privileges` (the default, `true`); `false` lets
    /// setuid programs in the image gain privileges and needs the `new_privileges` permission.
    pub no_new_privileges: bool,
}

/// Facts about the host a node fills into [`Container::derived_env`].
///
/// A closed list: a manifest naming any other fact is refused, because a node could not fill it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HostFact {
    /// The host's LAN IP address, e.g. `192.168.1.20`.
    HostIp,
    /// The host's name, e.g. `homeserver`.
    Hostname,
    /// The app's id.
    AppId,
    /// The app's installed version.
    AppVersion,
    /// The URL at which the app is reached from the LAN, e.g. `http://homeserver.local:8080`.
    AppUrl,
    /// The folder on the host that holds this app's data.
    DataDir,
    /// The host's IANA time zone, e.g. `Europe/Berlin`.
    Timezone,
    /// The archy node's version.
    NodeVersion,
}

impl HostFact {
    /// Every known fact, in documentation order.
    pub const ALL: [HostFact; 8] = [
        Self::HostIp,
        Self::Hostname,
        Self::AppId,
        Self::AppVersion,
        Self::AppUrl,
        Self::DataDir,
        Self::Timezone,
        Self::NodeVersion,
    ];

    /// The fact's name as written in manifests, e.g. `host_ip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HostIp => "host_ip",
            Self::Hostname => "hostname",
            Self::AppId => "app_id",
            Self::AppVersion => "app_version",
            Self::AppUrl => "app_url",
            Self::DataDir => "data_dir",
            Self::Timezone => "timezone",
            Self::NodeVersion => "node_version",
        }
    }
}

impl FromStr for HostFact {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| UnknownValue(s.to_owned()))
    }
}

impl fmt::Display for HostFact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not one of a closed list's values (host fact, protocol, restart policy…).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value `{0}`")]
pub struct UnknownValue(pub String);

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

impl FromStr for Protocol {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Self::Tcp),
            "udp" => Ok(Self::Udp),
            _ => Err(UnknownValue(s.to_owned())),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A published port: `host` on the node forwards to `container` in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Port {
    /// Port on the host (1–65535); unique per protocol across the app.
    pub host: u16,
    /// Port inside the container (1–65535).
    pub container: u16,
    /// `tcp` or `udp`.
    pub protocol: Protocol,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.host, self.container, self.protocol)
    }
}

/// A named app volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeMount {
    /// The name of a volume declared in [`Manifest::volumes`].
    pub volume: Name,
    /// Absolute path in the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// An in-memory file system mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tmpfs {
    /// Absolute path in the container.
    pub target: String,
    /// Size limit in MiB; Docker's default (half the RAM) when absent.
    pub size_mib: Option<u64>,
}

/// A host path mounted into a container; covered by a `host_path` or `docker_socket` permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bind {
    /// Absolute path on the host.
    pub host: String,
    /// Absolute path in the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// A numeric `uid[:gid]` a container runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct User {
    /// User id.
    pub uid: u32,
    /// Group id, if given.
    pub gid: Option<u32>,
}

impl FromStr for User {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let number = |p: &str| {
            if !p.is_empty() && p.len() <= 10 && p.bytes().all(|b| b.is_ascii_digit()) {
                p.parse::<u32>().ok()
            } else {
                None
            }
        };
        let bad = || UnknownValue(s.to_owned());
        match s.split_once(':') {
            Some((uid, gid)) => Ok(Self { uid: number(uid).ok_or_else(bad)?, gid: Some(number(gid).ok_or_else(bad)?) }),
            None => Ok(Self { uid: number(s).ok_or_else(bad)?, gid: None }),
        }
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.gid {
            Some(gid) => write!(f, "{}:{gid}", self.uid),
            None => write!(f, "{}", self.uid),
        }
    }
}

impl Serialize for User {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A container healthcheck, run inside the container in exec form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    /// Command and arguments; exit status 0 means healthy.
    pub command: Vec<String>,
    /// Seconds between checks (default 30).
    pub interval_secs: u32,
    /// Seconds before a check counts as failed (default 10).
    pub timeout_secs: u32,
    /// Seconds after start during which failures do not count (default 0).
    pub start_period_secs: u32,
    /// Consecutive failures before the container is unhealthy (default 3).
    pub retries: u32,
}

impl Healthcheck {
    /// Default seconds between checks.
    pub const DEFAULT_INTERVAL_SECS: u32 = 30;
    /// Default seconds before a check times out.
    pub const DEFAULT_TIMEOUT_SECS: u32 = 10;
    /// Default start period in seconds.
    pub const DEFAULT_START_PERIOD_SECS: u32 = 0;
    /// Default consecutive failures before unhealthy.
    pub const DEFAULT_RETRIES: u32 = 3;
}

/// What Docker does when a container stops (Docker's restart policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart.
    No,
    /// Restart when the container exits with a non-zero status.
    OnFailure,
    /// Always restart.
    Always,
    /// Restart unless an operator stopped it (the default).
    #[default]
    UnlessStopped,
}

impl RestartPolicy {
    /// The policy's name as Docker and manifests spell it, e.g. `unless-stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::OnFailure => "on-failure",
            Self::Always => "always",
            Self::UnlessStopped => "unless-stopped",
        }
    }
}

impl FromStr for RestartPolicy {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::No, Self::OnFailure, Self::Always, Self::UnlessStopped]
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownValue(s.to_owned()))
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named volume declared by the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// Name, unique in the app; the Docker volume is `archy-<app>-<name>` unless shared.
    pub name: Name,
    /// Opt-in sharing: the share's name. The Docker volume is then `archy-shared-<share>`, the
    /// same for every app that declares this share; needs a `shared_volume` permission.
    pub shared: Option<Name>,
}

/// A secret the node generates once per install, keeps across updates, and never shows in plans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Secret {
    /// Name, unique in the app; referenced by [`Container::secret_env`].
    pub name: Name,
    /// Number of characters (default 32, at least 16).
    pub length: u32,
    /// Characters to draw from (default `alphanumeric`).
    pub charset: Charset,
}

impl Secret {
    /// Default length of a generated secret.
    pub const DEFAULT_LENGTH: u32 = 32;
    /// Shortest generated secret a manifest may ask for.
    pub const MIN_LENGTH: u32 = 16;
}

/// The characters a generated secret is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Charset {
    /// `A-Z a-z 0-9` (the default).
    #[default]
    Alphanumeric,
    /// `0-9 a-f`.
    Hex,
    /// `A-Z a-z 0-9 - _` (URL-safe base64 alphabet).
    Base64url,
}

impl Charset {
    /// The charset's name as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alphanumeric => "alphanumeric",
            Self::Hex => "hex",
            Self::Base64url => "base64url",
        }
    }

    /// The characters a generator draws from.
    pub fn alphabet(self) -> &'static str {
        match self {
            Self::Alphanumeric => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            Self::Hex => "0123456789abcdef",
            Self::Base64url => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        }
    }
}

impl FromStr for Charset {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Alphanumeric, Self::Hex, Self::Base64url]
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownValue(s.to_owned()))
    }
}

/// A permission an app requests. A node runs nothing that uses one unless the operator granted
/// it to that app; validation makes sure every use in a container is covered by a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Permission {
    /// Run containers privileged (`privileged = true`).
    Privileged,
    /// Use the host's network stack (`host_network = true`).
    HostNetwork,
    /// Mount the Docker engine socket (full control of the host).
    DockerSocket,
    /// Mount the host path `host` at `target`.
    HostPath {
        /// Absolute path on the host.
        host: String,
        /// Absolute path in the container.
        target: String,
        /// Whether the request is read-only; binds must then be read-only too.
        read_only: bool,
    },
    /// Pass the host device `path` (under `/dev/`) into a container.
    Device {
        /// Absolute device path, e.g. `/dev/dri`.
        path: String,
    },
    /// Use the shared volume `name` (`archy-shared-<name>`), which other apps may also use.
    SharedVolume {
        /// The share's name.
        name: Name,
    },
    /// Add the capability `name` to a container (`cap_add`).
    Capability {
        /// The capability, e.g. `NET_ADMIN`.
        name: Capability,
    },
    /// Run containers with more processes than [`DEFAULT_PIDS_LIMIT`], up to `max`.
    PidsLimit {
        /// The highest `pids_limit` covered.
        max: u32,
    },
    /// Run containers without `no-new-privileges` (`no_new_privileges = false`).
    NewPrivileges,
}

impl Permission {
    /// The permission's kind as written in manifests, e.g. `host_path`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Privileged => "privileged",
            Self::HostNetwork => "host_network",
            Self::DockerSocket => "docker_socket",
            Self::HostPath { .. } => "host_path",
            Self::Device { .. } => "device",
            Self::SharedVolume { .. } => "shared_volume",
            Self::Capability { .. } => "capability",
            Self::PidsLimit { .. } => "pids_limit",
            Self::NewPrivileges => "new_privileges",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HostPath { host, target, read_only } => {
                let mode = if *read_only { "read-only" } else { "read-write" };
                write!(f, "host_path {host} -> {target} ({mode})")
            }
            Self::Device { path } => write!(f, "device {path}"),
            Self::SharedVolume { name } => write!(f, "shared_volume {name}"),
            Self::Capability { name } => write!(f, "capability {name}"),
            Self::PidsLimit { max } => write!(f, "pids_limit {max}"),
            _ => f.write_str(self.kind()),
        }
    }
}
