//! Validation: from the raw document to a [`Manifest`], recording every problem on the way;
//! and back from a [`Manifest`] to the raw document (the JSON form, [`raw_form`]).
//!
//! Each check names the rule it enforces in its problem text; `docs/manifest.md` lists them all.
//! The checks are grouped by the part of the manifest they read: [`metadata`] (the descriptive
//! fields), [`permissions`], [`dependencies`], [`env`] (secrets and environment variables),
//! [`containers`], [`ports`], [`mounts`] (volumes, binds, devices) and [`privileges`] (what a
//! container relaxes of the node's defaults).

mod containers;
mod dependencies;
mod env;
mod metadata;
mod mounts;
mod permissions;
mod ports;
mod privileges;
mod raw_form;

use std::collections::BTreeSet;

use super::error::Problems;
use super::names::NAME_FIX;
use super::raw::RawManifest;
use super::{AppId, Container, Limits, Manifest, ManifestErrors, Name, Permission, SCHEMA_VERSION};
use crate::did::DidKey;

pub(crate) use raw_form::to_raw;

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
}
