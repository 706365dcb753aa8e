//! The manifest document's shape, as read from TOML or JSON before validation.
//!
//! Names, versions, paths and enums are plain strings here, and most fields are optional, so
//! reading fails only when the document's *shape* is wrong (an unknown field, a string where a
//! number belongs). Everything else is left to validation, which reports every problem at once.
//! The same types, serialized, are the manifest's JSON form.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}

/// The whole document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    pub(crate) schema: Option<u32>,
    pub(crate) id: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) publisher: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) summary: Option<String>,
    pub(crate) description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) icon: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) categories: Vec<String>,
    pub(crate) license: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) min_node_version: Option<String>,
    #[serde(default)]
    pub(crate) containers: Vec<RawContainer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) volumes: Vec<RawVolume>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) secrets: Vec<RawSecret>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) dependencies: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) permissions: Vec<RawPermission>,
}

/// One `[[containers]]` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContainer {
    pub(crate) name: Option<String>,
    pub(crate) image: Option<RawImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) derived_env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) secret_env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) ports: Vec<RawPort>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) volumes: Vec<RawMount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tmpfs: Vec<RawTmpfs>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) binds: Vec<RawBind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) devices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) data_uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) healthcheck: Option<RawHealthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) restart: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) memory_mib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cpus_milli: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) privileged: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) host_network: bool,
    // Added after the first releases: left out of the JSON form when empty or unset, so every
    // manifest that does not use them keeps its signed bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pids_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) no_new_privileges: Option<bool>,
}

/// `image = "name@sha256:…"` or `image = { target = "…", image_id = "sha256:…" }`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum RawImage {
    Reference(String),
    Archive(RawArchive),
}

/// The table form of `image`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawArchive {
    pub(crate) target: Option<String>,
    pub(crate) image_id: Option<String>,
}

impl<'de> Deserialize<'de> for RawImage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ImageVisitor;

        impl<'de> Visitor<'de> for ImageVisitor {
            type Value = RawImage;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an image reference `name@sha256:<64 hex>` or a table { target = \"…\", image_id = \"sha256:…\" }",
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawImage, E> {
                Ok(RawImage::Reference(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawImage, A::Error> {
                RawArchive::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawImage::Archive)
            }
        }

        d.deserialize_any(ImageVisitor)
    }
}

/// One `ports` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPort {
    pub(crate) host: Option<u32>,
    pub(crate) container: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) protocol: Option<String>,
}

/// One container `volumes` entry: a named app volume mounted at a target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMount {
    pub(crate) volume: Option<String>,
    pub(crate) target: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) read_only: bool,
}

/// One `tmpfs` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTmpfs {
    pub(crate) target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) size_mib: Option<u64>,
}

/// One `binds` entry: a host path mounted into the container (needs a permission).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBind {
    pub(crate) host: Option<String>,
    pub(crate) target: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) read_only: bool,
}

/// The `healthcheck` table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealthcheck {
    pub(crate) command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) interval_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timeout_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) start_period_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retries: Option<u32>,
}

/// One `[[volumes]]` declaration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVolume {
    pub(crate) name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shared: Option<String>,
}

/// One `[[secrets]]` declaration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecret {
    pub(crate) name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) charset: Option<String>,
}

/// One requested permission; which other fields apply depends on `kind`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPermission {
    pub(crate) kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) read_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max: Option<u32>,
}
