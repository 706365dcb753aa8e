//! `archy app import`: an app folder of the Umbrel, Runtipi or CasaOS stores, or a bare Docker
//! Compose file, converted into an archy app folder.
//!
//! [`import`] reads the source and returns the manifest text and a [`Report`]; [`write`] writes
//! the app folder (the manifest and the icon). The command then validates the folder with the
//! same code as `archy app validate`. Reading touches only the source folder: nothing is
//! downloaded (an icon known only by URL is referenced, an image without a digest is reported
//! with the command that pins it).
//!
//! The steps, in order:
//! 1. detect the format ([`detect`]) unless it is given;
//! 2. the store's reader takes the metadata (`umbrel-app.yml`, `config.json`, `x-casaos`) and
//!    rewrites the store's conventions (Umbrel's `app_proxy`, Runtipi's `docker-compose.json`)
//!    into Compose services;
//! 3. [`compose::map`] maps every service key into a container, a volume, a secret or a
//!    permission, or lists it as not mapped with its file and line;
//! 4. the store's web port is published, the icon placed, and the draft written as TOML.
//!
//! ```no_run
//! use publisher::import::{import, write, Options};
//! let imported = import(&Options::new("store/apps/photos", "did:key:z6Mk…")).expect("readable source");
//! println!("{}", imported.report);
//! write(&imported, std::path::Path::new("apps/photos")).expect("written");
//! ```

mod casaos;
mod compose;
mod draft;
mod report;
mod runtipi;
mod umbrel;
mod vars;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use catalog::manifest::Protocol;
use serde::Serialize;

pub use report::{IconOutcome, Note, Origin, Pin, Report, Unmapped};

use compose::Compose;
use draft::Draft;
use vars::Vars;
use yaml::{Key, Node};

/// Largest source file read, in bytes.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The compose file names looked for in a folder, in order.
const COMPOSE_FILES: [&str; 4] = ["docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml"];

/// The kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A bare Docker Compose file.
    Compose,
    /// An Umbrel app folder: `umbrel-app.yml` and `docker-compose.yml`.
    Umbrel,
    /// A Runtipi app folder: `config.json` and `docker-compose.json` (or a `docker-compose.yml`
    /// with `x-runtipi`).
    Runtipi,
    /// A CasaOS app: a compose file with an `x-casaos` block.
    Casaos,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Compose => "compose",
            Self::Umbrel => "umbrel",
            Self::Runtipi => "runtipi",
            Self::Casaos => "casaos",
        })
    }
}

/// A source that cannot be read, with the file, what is wrong and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// A file or folder cannot be read.
    #[error("cannot read {}: {source} — check the path", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file the format needs is not there.
    #[error("{}: no {file} — {fix}", dir.display())]
    Missing {
        /// The source folder.
        dir: PathBuf,
        /// The file looked for.
        file: String,
        /// What to do.
        fix: String,
    },
    /// A file is not YAML (or JSON).
    #[error("{file}:{line}:{column}: not valid YAML: {message} — fix the syntax; the store's own tools refuse it too")]
    Yaml {
        /// The file.
        file: String,
        /// The line.
        line: usize,
        /// The column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A file is YAML but not of the shape the format has.
    #[error("{file}:{line}: `{what}` {problem} — {fix}")]
    Shape {
        /// The file.
        file: String,
        /// The line.
        line: usize,
        /// The key.
        what: String,
        /// What is wrong.
        problem: String,
        /// What to do.
        fix: String,
    },
    /// A file is over [`MAX_FILE_BYTES`].
    #[error("{}: over {MAX_FILE_BYTES} bytes — this is not an app definition; point the import at the app's folder", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The app folder to write already holds a manifest.
    #[error("{} already exists — choose another --out folder, or remove it to import again", path.display())]
    Exists {
        /// The manifest path.
        path: PathBuf,
    },
    /// Writing the app folder failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What to import and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The source: a store's app folder, a compose file, or a folder holding one.
    pub src: PathBuf,
    /// The format; detected when `None`.
    pub format: Option<Format>,
    /// The app id; the store's (or the compose project's, or the folder's name) when `None`.
    pub id: Option<String>,
    /// The SPDX license expression; the stores do not carry one.
    pub license: Option<String>,
    /// The source code URL, when the store does not give one.
    pub source: Option<String>,
    /// The publisher's `did:key`.
    pub publisher: String,
}

impl Options {
    /// Options for `src` published by `publisher`, everything else detected.
    pub fn new(src: impl Into<PathBuf>, publisher: impl Into<String>) -> Self {
        Self { src: src.into(), format: None, id: None, license: None, source: None, publisher: publisher.into() }
    }
}

/// The result of an import: the manifest text, the icon to copy and the report.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The report.
    pub report: Report,
    /// The `archy.toml` text.
    pub toml: String,
    /// The icon file to copy (source path, file name in the app folder).
    pub icon: Option<(PathBuf, String)>,
}

/// The host port of the app's web UI as the store names it (Umbrel's `port` and `app_proxy`,
/// Runtipi's `port` and main service).
#[derive(Debug, Clone)]
pub(crate) struct WebPort {
    pub(crate) service: String,
    pub(crate) host: u16,
    pub(crate) container: u16,
    pub(crate) origin: Origin,
    pub(crate) how: String,
}

/// Where an icon comes from.
#[derive(Debug, Clone)]
pub(crate) enum IconSource {
    /// A file in the source folder (relative path).
    File(String),
    /// A URL.
    Url(String),
}

/// Everything an import collects on its way.
pub(crate) struct State {
    pub(crate) src: PathBuf,
    pub(crate) format: Format,
    pub(crate) draft: Draft,
    pub(crate) vars: Vars,
    pub(crate) web: Option<WebPort>,
    /// Services the store's reader dropped (Umbrel's `app_proxy`).
    pub(crate) dropped: BTreeSet<String>,
    pub(crate) icon: Option<IconSource>,
    /// Lines appended to the description (website, support, developer).
    pub(crate) links: Vec<String>,
    /// The file the metadata came from (the compose file when the store has no other).
    pub(crate) meta_file: String,
    unmapped: Vec<Unmapped>,
    notes: Vec<Note>,
    pins: Vec<Pin>,
    mapped: usize,
    total: usize,
}

impl State {
    pub(crate) fn origin(&self, file: &str, line: usize) -> Origin {
        Origin { file: file.to_owned(), line }
    }

    pub(crate) fn unmapped(&mut self, origin: Origin, what: impl Into<String>, reason: impl Into<String>) {
        self.unmapped.push(Unmapped { origin, what: what.into(), reason: reason.into() });
    }

    pub(crate) fn note(&mut self, origin: Origin, message: impl Into<String>) {
        self.notes.push(Note { origin, message: message.into() });
    }

    pub(crate) fn pin(&mut self, origin: Origin, container: &str, image: &str) {
        self.pins.push(Pin::new(origin, container, image));
    }

    /// Counts one compose key, mapped or not.
    pub(crate) fn count(&mut self, mapped: bool) {
        self.total += 1;
        if mapped {
            self.mapped += 1;
        }
    }

    pub(crate) fn unmapped_len(&self) -> usize {
        self.unmapped.len()
    }

    /// Reads `file` of the source folder as YAML (JSON is YAML too).
    pub(crate) fn load(&self, file: &str) -> Result<Node, ImportError> {
        load(&self.src.join(file), file)
    }
}

/// Detects the format of the folder `dir`: `umbrel-app.yml` → umbrel; `config.json` with
/// `docker-compose.json` (or a compose file with `x-runtipi`) → runtipi; a compose file with
/// `x-casaos` → casaos; any other compose file → compose. The reason says what was seen.
pub fn detect(dir: &Path) -> Result<(Format, String), ImportError> {
    if dir.join("umbrel-app.yml").is_file() {
        return Ok((Format::Umbrel, "detected: umbrel-app.yml is present".into()));
    }
    let compose = find_compose(dir);
    if dir.join("config.json").is_file() {
        if dir.join("docker-compose.json").is_file() {
            return Ok((Format::Runtipi, "detected: config.json and docker-compose.json are present".into()));
        }
        if let Some(file) = &compose
            && load(&dir.join(file), file)?.get("x-runtipi").is_some()
        {
            return Ok((Format::Runtipi, format!("detected: config.json is present and {file} has `x-runtipi`")));
        }
    }
    let Some(file) = compose else {
        return Err(ImportError::Missing {
            dir: dir.to_owned(),
            file: "umbrel-app.yml, config.json + docker-compose.json, or docker-compose.yml".into(),
            fix: "point the import at an app folder of a store, or at a compose file".into(),
        });
    };
    if load(&dir.join(&file), &file)?.get("x-casaos").is_some() {
        return Ok((Format::Casaos, format!("detected: {file} has `x-casaos`")));
    }
    Ok((Format::Compose, format!("detected: {file} without a store's metadata")))
}

/// Reads the source and builds the manifest and the report; writes nothing.
pub fn import(opts: &Options) -> Result<Imported, ImportError> {
    let meta = std::fs::metadata(&opts.src).map_err(|source| ImportError::Read { path: opts.src.clone(), source })?;
    // A file is a compose file; its folder is the source folder.
    let (dir, file) = if meta.is_file() {
        let dir = opts.src.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let name = opts.src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        (dir, Some(name))
    } else {
        (opts.src.clone(), None)
    };
    let (format, detected) = match (opts.format, &file) {
        (Some(f), _) => (f, "given with --format".to_owned()),
        (None, Some(file)) => {
            if load(&opts.src, file)?.get("x-casaos").is_some() {
                (Format::Casaos, format!("detected: {file} has `x-casaos`"))
            } else {
                (Format::Compose, format!("detected: {file} is a compose file"))
            }
        }
        (None, None) => detect(&dir)?,
    };
    let mut state = State {
        src: dir.clone(),
        format,
        draft: Draft {
            publisher: opts.publisher.clone(),
            min_node_version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Draft::default()
        },
        vars: Vars { format, app_id: String::new(), web_port: None, form: BTreeMap::new() },
        web: None,
        dropped: BTreeSet::new(),
        icon: None,
        links: Vec::new(),
        meta_file: String::new(),
        unmapped: Vec::new(),
        notes: Vec::new(),
        pins: Vec::new(),
        mapped: 0,
        total: 0,
    };
    let compose_file = match file {
        Some(f) => f,
        None if format == Format::Umbrel || format == Format::Runtipi && dir.join("docker-compose.json").is_file() => {
            String::new()
        }
        None => find_compose(&dir).ok_or_else(|| ImportError::Missing {
            dir: dir.clone(),
            file: COMPOSE_FILES.join(" or "),
            fix: format!("a {format} app needs its compose file"),
        })?,
    };
    let mut compose = match format {
        Format::Umbrel => umbrel::read(&mut state)?,
        Format::Runtipi => runtipi::read(&mut state, &compose_file)?,
        Format::Casaos => casaos::read(&mut state, &compose_file)?,
        Format::Compose => {
            let root = state.load(&compose_file)?;
            let c = top_level(&mut state, &compose_file, &root)?;
            if let Some(n) = root.get_str("name") {
                state.draft.id = n.to_owned();
            }
            c
        }
    };
    if state.meta_file.is_empty() {
        state.meta_file.clone_from(&compose.file);
    }
    settle_id(&mut state, opts, &dir, &compose);
    state.vars.app_id.clone_from(&state.draft.id);
    if state.vars.web_port.is_none() {
        state.vars.web_port = state.web.as_ref().map(|w| w.host);
    }
    compose.services.retain(|s| !state.dropped.contains(&s.name));
    compose::map(&mut state, &compose);
    publish_web_port(&mut state);
    settle_metadata(&mut state, opts);
    let icon = place_icon(&mut state);
    let draft = &state.draft;
    let header = vec![
        format!("Imported by `archy app import` (format {format}, from {}).", compose.file),
        format!("{} of {} compose keys mapped; review the import report before publishing.", state.mapped, state.total),
    ];
    let toml = draft.to_toml(&header);
    let report = Report {
        format,
        detected,
        id: draft.id.clone(),
        mapped: state.mapped,
        total: state.total,
        unmapped: state.unmapped,
        notes: state.notes,
        pins: state.pins,
        icon: icon.0,
        permissions: draft.permissions.iter().map(ToString::to_string).collect(),
    };
    Ok(Imported { report, toml, icon: icon.1 })
}

/// Writes the app folder: `out/archy.toml` and the icon. Refuses a folder that already holds a
/// manifest.
pub fn write(imported: &Imported, out: &Path) -> Result<PathBuf, ImportError> {
    let manifest = out.join(catalog::manifest::MANIFEST_FILE);
    if manifest.exists() {
        return Err(ImportError::Exists { path: manifest });
    }
    std::fs::create_dir_all(out).map_err(|source| ImportError::Write { path: out.to_owned(), source })?;
    std::fs::write(&manifest, &imported.toml)
        .map_err(|source| ImportError::Write { path: manifest.clone(), source })?;
    if let Some((from, to)) = &imported.icon {
        let dest = out.join(to);
        std::fs::copy(from, &dest).map_err(|source| ImportError::Write { path: dest, source })?;
    }
    Ok(manifest)
}

/// A compose document's top-level keys: `services` becomes the list of services, `volumes` and
/// `networks` are kept for the services to consult, the rest is counted.
pub(crate) fn top_level(state: &mut State, file: &str, root: &Node) -> Result<Compose, ImportError> {
    let shape = |line: usize, what: &str, problem: &str| ImportError::Shape {
        file: file.to_owned(),
        line,
        what: what.to_owned(),
        problem: problem.to_owned(),
        fix: "write it as the Compose specification does".to_owned(),
    };
    let entries = root.as_map().ok_or_else(|| shape(root.line, "(document)", "is not a mapping"))?;
    let mut services = Vec::new();
    let mut volumes = None;
    let mut networks = None;
    for (key, value) in entries {
        match key.text.as_str() {
            "version" => {} // obsolete in the Compose specification: not counted
            "services" => {
                let list = value.as_map().ok_or_else(|| shape(key.line, "services", "is not a mapping of services"))?;
                for (k, v) in list {
                    services.push(compose::Service {
                        name: k.text.clone(),
                        line: k.line,
                        node: v.clone(),
                        spelled: BTreeMap::new(),
                        handled: Vec::new(),
                    });
                }
            }
            "name" => state.count(true),
            "volumes" => {
                let before = state.unmapped_len();
                for (k, v) in value.as_map().unwrap_or(&[]) {
                    for (opt, _) in v.as_map().unwrap_or(&[]) {
                        if opt.text != "external" && opt.text != "name" {
                            let origin = state.origin(file, opt.line);
                            state.unmapped(
                                origin,
                                format!("volumes.{}.{}", k.text, opt.text),
                                "a node creates plain local volumes",
                            );
                        }
                    }
                }
                state.count(state.unmapped_len() == before);
                volumes = Some(value.clone());
            }
            "networks" => {
                let before = state.unmapped_len();
                for (k, v) in value.as_map().unwrap_or(&[]) {
                    for (opt, _) in v.as_map().unwrap_or(&[]) {
                        if opt.text != "external" {
                            let origin = state.origin(file, opt.line);
                            state.unmapped(
                                origin,
                                format!("networks.{}.{}", k.text, opt.text),
                                "a node gives every app one bridge network of its own",
                            );
                        }
                    }
                }
                state.count(state.unmapped_len() == before);
                networks = Some(value.clone());
            }
            "x-casaos" | "x-runtipi" => {}         // counted by the store's reader
            other if other.starts_with("x-") => {} // extension fields: anchors, expanded where used
            other => {
                let reason = match other {
                    "secrets" | "configs" => {
                        "Compose secrets and configs are files; archy injects generated secrets as environment variables (`secret_env`)"
                    }
                    "include" => "write the included file's services into this one",
                    _ => "not a part of the Compose specification archy reads",
                };
                let origin = state.origin(file, key.line);
                state.unmapped(origin, other, reason);
                state.count(false);
            }
        }
    }
    if services.is_empty() {
        return Err(shape(root.line, "services", "is missing or empty"));
    }
    Ok(Compose { file: file.to_owned(), services, volumes, networks })
}

fn settle_id(state: &mut State, opts: &Options, dir: &Path, compose: &Compose) {
    let origin = state.origin(&compose.file, 1);
    let raw = match &opts.id {
        Some(id) => id.clone(),
        None if !state.draft.id.is_empty() => state.draft.id.clone(),
        None => {
            let folder = dir.canonicalize().ok().and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
            folder.unwrap_or_else(|| "app".into())
        }
    };
    let id = name(&raw).unwrap_or_else(|| "app".to_owned());
    if id != raw {
        state.note(origin, format!("the app id is `{id}` (from `{raw}`)"));
    }
    state.draft.id = id;
}

/// Publishes the store's web port on its container, unless the compose file already does.
fn publish_web_port(state: &mut State) {
    let Some(web) = state.web.clone() else { return };
    let container = name(&web.service).unwrap_or_default();
    let Some(c) = state.draft.containers.iter_mut().find(|c| c.name == container) else {
        state.unmapped(web.origin, "web port", format!("service `{}` is not in the compose file", web.service));
        return;
    };
    if c.host_network {
        let msg =
            format!("container `{container}` uses the host's network: its web port {} is the host's", web.container);
        state.note(web.origin, msg);
        return;
    }
    if c.ports.iter().any(|p| p.0 == web.host && p.2 == Protocol::Tcp) {
        return;
    }
    c.ports.insert(0, (web.host, web.container, Protocol::Tcp));
    let msg = format!("web port: host {} → container `{container}` port {} ({})", web.host, web.container, web.how);
    state.note(web.origin, msg);
}

/// Fills what the source did not say: version from the image tag, title from the id, a summary
/// and description saying where the app came from, license and source from the options.
fn settle_metadata(state: &mut State, opts: &Options) {
    let origin = state.origin(&state.meta_file, 1);
    let d = &mut state.draft;
    if let Some(l) = &opts.license {
        d.license = Some(l.clone());
    }
    if let Some(s) = &opts.source {
        d.source = Some(s.clone());
    }
    let mut notes = Vec::new();
    if d.version.is_empty() {
        let tag = d.containers.first().and_then(|c| image_tag(&c.image)).and_then(|t| semver_of(&t));
        d.version = match tag {
            Some(v) => {
                notes.push(format!("version `{v}` is the first image's tag; the source has no version"));
                v
            }
            None => {
                notes.push(
                    "version `0.1.0`: the source has no version and the first image's tag is not one; set `version`"
                        .to_owned(),
                );
                "0.1.0".to_owned()
            }
        };
    }
    if d.title.is_empty() {
        d.title = title_of(&d.id);
    }
    d.title = one_line(&d.title);
    if d.summary.is_empty() {
        d.summary = format!("{}, imported from a Docker Compose file.", d.title);
        notes.push("the summary says only where the app came from; write what the app does".to_owned());
    }
    d.summary = one_line(&d.summary);
    if d.description.trim().is_empty() {
        d.description = d.summary.clone();
    }
    if !state.links.is_empty() {
        d.description = format!("{}\n\n{}", d.description.trim_end(), state.links.join("\n"));
    }
    if d.license.is_none() {
        notes.push("the source has no license: pass `--license <SPDX>` or write `license` in archy.toml".to_owned());
    }
    if d.source.is_none() {
        notes.push(
            "the source has no source code URL: pass `--source https://…` or write `source` in archy.toml".to_owned(),
        );
    }
    let mut seen = BTreeSet::new();
    d.categories.retain(|c| seen.insert(c.clone()));
    for n in notes {
        state.note(origin.clone(), n);
    }
}

fn place_icon(state: &mut State) -> (IconOutcome, Option<(PathBuf, String)>) {
    let found = state.icon.clone().or_else(|| {
        ["icon.svg", "icon.png", "logo.svg", "logo.png", "logo.jpg", "metadata/logo.jpg", "metadata/logo.png"]
            .into_iter()
            .find(|f| state.src.join(f).is_file())
            .map(|f| IconSource::File(f.to_owned()))
    });
    match found {
        Some(IconSource::File(rel)) => {
            // The path comes from the store's metadata: only a regular file inside the source
            // folder, within the manifest's icon size limit, is copied.
            let root = state.src.canonicalize().ok();
            let from = state.src.join(&rel);
            let inside = root.zip(from.canonicalize().ok()).is_some_and(|(root, full)| full.starts_with(root));
            let size = std::fs::metadata(&from).ok().filter(|m| m.is_file()).map(|m| m.len());
            let limit = catalog::manifest::Limits::default().max_icon_bytes;
            if !inside || size.is_none_or(|s| s > limit) {
                let origin = state.origin(&state.meta_file, 1);
                state.unmapped(
                    origin,
                    "icon",
                    format!("`{rel}` is not a file of at most {limit} bytes inside the app's folder; put an icon file in the app folder and set `icon`"),
                );
                return (IconOutcome::None, None);
            }
            let ext = Path::new(&rel)
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_else(|| "png".into());
            let to = format!("icon.{ext}");
            state.draft.icon = Some(to.clone());
            (IconOutcome::Copied { from: rel, to: to.clone() }, Some((from, to)))
        }
        Some(IconSource::Url(url)) => {
            let used = url.starts_with("https://");
            if used {
                state.draft.icon = Some(url.clone());
            }
            (IconOutcome::Url { url, used }, None)
        }
        None => (IconOutcome::None, None),
    }
}

fn find_compose(dir: &Path) -> Option<String> {
    COMPOSE_FILES.into_iter().find(|f| dir.join(f).is_file()).map(str::to_owned)
}

fn load(path: &Path, file: &str) -> Result<Node, ImportError> {
    let f = std::fs::File::open(path).map_err(|source| ImportError::Read { path: path.to_owned(), source })?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ImportError::Read { path: path.to_owned(), source })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ImportError::TooLarge { path: path.to_owned() });
    }
    let text = String::from_utf8(bytes).map_err(|_| ImportError::Shape {
        file: file.to_owned(),
        line: 1,
        what: file.to_owned(),
        problem: "is not UTF-8".into(),
        fix: "save it as UTF-8".into(),
    })?;
    yaml::parse(&text).map_err(|e| ImportError::Yaml {
        file: file.to_owned(),
        line: e.line,
        column: e.column,
        message: e.message,
    })
}

/// `s` as a manifest name (lowercase letters, digits, single hyphens, ≤ 63): `My_App` → `my-app`.
pub(crate) fn name(s: &str) -> Option<String> {
    let mut out = String::new();
    for ch in s.chars() {
        let c = ch.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(catalog::manifest::MAX_NAME_LEN);
    while out.ends_with('-') {
        out.pop();
    }
    (!out.is_empty()).then_some(out)
}

/// A store's category as an archy category.
pub(crate) fn category(s: &str) -> Option<String> {
    let lower = s.trim().to_ascii_lowercase();
    let mapped = match lower.as_str() {
        "social" | "communication" | "chat" => "communication",
        "automation" | "home automation" | "home-automation" | "smart home" => "home-automation",
        "developer" | "developer tools" | "development" | "dev" => "development",
        "file sync" | "files" | "cloud" | "storage" => "files",
        "photography" | "photos" | "gallery" => "photos",
        "network" | "networking" | "network tools" => "networking",
        "utility" | "utilities" => "utilities",
        "featured" => return None,
        other => other,
    };
    name(mapped)
}

/// A CasaOS text: a string, or a mapping of languages (`en_us` first).
pub(crate) fn localized(n: &Node) -> String {
    if let Some(s) = n.as_str() {
        return s.to_owned();
    }
    for lang in ["en_us", "en_US", "en-us", "en", "en_GB", "en_gb"] {
        if let Some(s) = n.get_str(lang) {
            return s.to_owned();
        }
    }
    n.as_map().and_then(|m| m.iter().find_map(|(_, v)| v.as_str())).unwrap_or("").to_owned()
}

/// A version as semver: `v1.2` → `1.2.0`, `2024.01.5` → `2024.1.5`; `None` for `latest`,
/// `1.2.3.4` and the like.
pub(crate) fn semver_of(s: &str) -> Option<String> {
    let s = s.trim().trim_start_matches(['v', 'V']);
    if let Ok(v) = semver::Version::parse(s) {
        return Some(v.to_string());
    }
    let (core, pre) = s.split_once('-').map_or((s, None), |(c, p)| (c, Some(p)));
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut nums: Vec<String> = parts
        .iter()
        .map(|p| p.trim_start_matches('0'))
        .map(|p| if p.is_empty() { "0" } else { p }.to_owned())
        .collect();
    while nums.len() < 3 {
        nums.push("0".into());
    }
    let text = match pre {
        Some(p) => format!("{}-{p}", nums.join(".")),
        None => nums.join("."),
    };
    semver::Version::parse(&text).ok().map(|v| v.to_string())
}

/// The tag of an image reference (`nginx:1.27@sha256:…` → `1.27`).
fn image_tag(image: &str) -> Option<String> {
    let name = image.split('@').next()?;
    let last = name.rsplit('/').next()?;
    last.split_once(':').map(|(_, t)| t.to_owned())
}

fn title_of(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
        })
        .collect::<Vec<String>>()
        .join(" ")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The keys of a store metadata file that the reader did not use, listed as not mapped.
pub(crate) fn unmapped_meta(state: &mut State, file: &str, key: &Key, reason: &str) {
    let origin = state.origin(file, key.line);
    state.unmapped(origin, &key.text, reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_versions_and_categories() {
        assert_eq!(name("My_App 2").as_deref(), Some("my-app-2"));
        assert_eq!(name("__").as_deref(), None);
        assert_eq!(semver_of("v1.2").as_deref(), Some("1.2.0"));
        assert_eq!(semver_of("2024.01.5").as_deref(), Some("2024.1.5"));
        assert_eq!(semver_of("1.2.3-beta.1").as_deref(), Some("1.2.3-beta.1"));
        assert_eq!(semver_of("latest"), None);
        assert_eq!(semver_of("1.2.3.4"), None);
        assert_eq!(category("Social").as_deref(), Some("communication"));
        assert_eq!(category("featured"), None);
        assert_eq!(image_tag("ghcr.io/a/b:1.2@sha256:00").as_deref(), Some("1.2"));
        assert_eq!(image_tag("localhost:5000/a"), None);
    }
}
