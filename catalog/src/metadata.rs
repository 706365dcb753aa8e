//! TUF 1.0 metadata: the four top-level roles, delegations, and the signed envelope.
//!
//! Every file is `{"signed": {...}, "signatures": [{"keyid", "sig"}]}` (TUF 1.0 spec §4.2). The
//! signature covers the OLPC canonical JSON of the `signed` object *as it was received*: parsing
//! keeps those bytes, and every struct keeps fields it does not know (`unknown`), so metadata
//! written by newer tools still verifies and re-serializes without loss.
//!
//! Parsing ([`SignedMetadata::from_slice`]) checks only structure. Signatures are checked by
//! [`SignedMetadata::verify_role`], the threshold rule of §5 ("verify that the metadata is signed by
//! a threshold of keys"), which the update workflow in [`crate::client`] applies at each step.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest as _;

use crate::canonical;
use crate::keys::{KeyId, PublicKey, SigningKey};

/// The TUF specification version archy writes.
pub const SPEC_VERSION: &str = "1.0.31";

/// The names of the four top-level roles (TUF 1.0 §2.1).
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "timestamp", "snapshot", "targets"];

/// Why a metadata file is malformed or fails verification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataError {
    /// Not JSON, or a field has the wrong shape.
    #[error("{role} metadata is malformed: {reason}")]
    Malformed {
        /// The role the file claims or was expected to be.
        role: String,
        /// What is wrong.
        reason: String,
    },
    /// `_type` is not the expected role type.
    #[error("expected {expected} metadata but `_type` is `{found}`")]
    WrongType {
        /// Expected `_type`.
        expected: String,
        /// Found `_type`.
        found: String,
    },
    /// Two signatures carry the same key id (TUF 1.0 §4.2: signatures are keyed by key id).
    #[error("{role} metadata has more than one signature for key {keyid}")]
    DuplicateSignatures {
        /// The role.
        role: String,
        /// The repeated key id.
        keyid: String,
    },
    /// Fewer valid signatures from the role's keys than its threshold (TUF 1.0 §5.3.4, §5.4.2,
    /// §5.5.3, §5.6.3).
    #[error("{role} metadata has {valid} valid signature(s) from its keys; threshold is {threshold}")]
    ThresholdNotMet {
        /// The role.
        role: String,
        /// Valid signatures counted.
        valid: u64,
        /// Required threshold.
        threshold: u64,
    },
    /// The delegating metadata names no role with this name.
    #[error("no delegation names role `{role}`")]
    NotDelegated {
        /// The role.
        role: String,
    },
}

fn malformed(role: &str, reason: impl std::fmt::Display) -> MetadataError {
    MetadataError::Malformed { role: role.to_owned(), reason: reason.to_string() }
}

/// `expires` timestamps are `YYYY-MM-DDTHH:MM:SSZ` (TUF 1.0 §4.2, ISO 8601 UTC).
pub mod expires_format {
    use super::*;

    const FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

    /// Parses a TUF `expires` string.
    pub fn parse(s: &str) -> Option<DateTime<Utc>> {
        let t = NaiveDateTime::parse_from_str(s, FORMAT).ok()?.and_utc();
        // Only the zero-padded form: `2030-1-1T1:1:1Z` would be rewritten differently and break
        // the signature over re-serialized metadata.
        (format(&t) == s).then_some(t)
    }

    /// Formats a TUF `expires` string.
    pub fn format(t: &DateTime<Utc>) -> String {
        t.format(FORMAT).to_string()
    }

    pub(crate) fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom(format!("expires `{s}` is not YYYY-MM-DDTHH:MM:SSZ")))
    }
}

/// One signature of a metadata file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The key id of the signing key.
    pub keyid: KeyId,
    /// The hex signature over the canonical `signed` bytes.
    pub sig: String,
    /// Fields this version of archy does not know, kept verbatim.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// The key ids and threshold of a role (TUF 1.0 §4.3 `ROLE`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// Key ids that may sign for the role.
    pub keyids: Vec<KeyId>,
    /// How many of them must sign.
    pub threshold: u64,
    /// Fields this version of archy does not know, kept verbatim.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// Common accessors of the four metadata types.
pub trait Role: Serialize + DeserializeOwned + Clone {
    /// The `_type` value, which for top-level roles is also the role name.
    const TYPE: &'static str;
    /// `_type` as found in the file.
    fn kind(&self) -> &str;
    /// `spec_version`.
    fn spec_version(&self) -> &str;
    /// `version`.
    fn version(&self) -> u64;
    /// `expires`.
    fn expires(&self) -> DateTime<Utc>;
    /// Role-specific structural rules, applied after parsing.
    fn validate(&self, _role: &str) -> Result<(), MetadataError> {
        Ok(())
    }
    /// Whether the metadata has expired at `now` (TUF 1.0 §5.3.10: expired when `expires` is
    /// not later than the fixed update start time).
    fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires() <= now
    }
}

macro_rules! role_common {
    ($t:ty, $name:literal) => {
        impl Role for $t {
            const TYPE: &'static str = $name;
            fn kind(&self) -> &str {
                &self.kind
            }
            fn spec_version(&self) -> &str {
                &self.spec_version
            }
            fn version(&self) -> u64 {
                self.version
            }
            fn expires(&self) -> DateTime<Utc> {
                self.expires
            }
            fn validate(&self, role: &str) -> Result<(), MetadataError> {
                self.validate_specific(role)
            }
        }
    };
}

/// Root metadata (TUF 1.0 §4.3): the keys and thresholds of the top-level roles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Root {
    /// Always `root`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// Spec version the file was written for.
    pub spec_version: String,
    /// Monotonic version.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// Whether files are addressed by version/hash (TUF 1.0 §7, consistent snapshots).
    #[serde(default)]
    pub consistent_snapshot: bool,
    /// All keys of the top-level roles, by key id.
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// Key ids and threshold of each top-level role.
    pub roles: BTreeMap<String, RoleKeys>,
    /// Fields this version of archy does not know, kept verbatim.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}
role_common!(Root, "root");

impl Root {
    fn validate_specific(&self, role: &str) -> Result<(), MetadataError> {
        let names: HashSet<&str> = self.roles.keys().map(String::as_str).collect();
        if names != TOP_LEVEL_ROLES.into_iter().collect() {
            return Err(malformed(role, "`roles` must name exactly root, timestamp, snapshot and targets"));
        }
        for (name, keys) in &self.roles {
            validate_role_keys(role, name, keys)?;
        }
        Ok(())
    }

    /// The keys and threshold of a top-level role.
    pub fn role(&self, name: &str) -> Option<&RoleKeys> {
        self.roles.get(name)
    }

    /// The transparency log this root requires, if it names one: the verifier key string at
    /// `custom.archy.log` (see [`crate::tlog`]). A root without it has no log, and nodes require
    /// none.
    pub fn log(&self) -> Result<Option<crate::tlog::NoteKey>, MetadataError> {
        let Some(log) = self.unknown.get("custom").and_then(|c| c.get("archy")).and_then(|a| a.get("log")) else {
            return Ok(None);
        };
        let vkey = log.as_str().ok_or_else(|| malformed("root", "`custom.archy.log` is a verifier key string"))?;
        crate::tlog::NoteKey::from_vkey(vkey)
            .map(Some)
            .map_err(|e| malformed("root", format!("`custom.archy.log`: {e}")))
    }

    /// Names `log` as the transparency log every later catalog state must be in.
    pub fn set_log(&mut self, log: &crate::tlog::NoteKey) {
        let custom = self.unknown.entry("custom").or_insert_with(|| Value::Object(Map::new()));
        if !custom.is_object() {
            *custom = Value::Object(Map::new());
        }
        let archy = custom.as_object_mut().map(|c| c.entry("archy").or_insert_with(|| Value::Object(Map::new())));
        if let Some(archy) = archy {
            if !archy.is_object() {
                *archy = Value::Object(Map::new());
            }
            if let Some(a) = archy.as_object_mut() {
                a.insert("log".into(), Value::String(log.to_vkey()));
            }
        }
    }
}

fn validate_role_keys(role: &str, name: &str, keys: &RoleKeys) -> Result<(), MetadataError> {
    if keys.threshold < 1 {
        return Err(malformed(role, format!("role `{name}` has threshold 0")));
    }
    let unique: HashSet<&KeyId> = keys.keyids.iter().collect();
    if unique.len() != keys.keyids.len() {
        return Err(malformed(role, format!("role `{name}` lists a key id twice")));
    }
    Ok(())
}

/// The description of a metadata file in timestamp or snapshot metadata (TUF 1.0 §4.4 `METAFILES`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MetaFile {
    /// The file's metadata version.
    pub version: u64,
    /// Its exact length, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Its hashes, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<Map<String, Value>>,
    /// Fields this version of archy does not know, kept verbatim.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

impl MetaFile {
    fn validate(&self, role: &str, name: &str) -> Result<(), MetadataError> {
        if self.version < 1 {
            return Err(malformed(role, format!("meta `{name}` has version 0")));
        }
        if matches!(&self.hashes, Some(h) if h.is_empty()) {
            return Err(malformed(role, format!("meta `{name}` has an empty `hashes`")));
        }
        Ok(())
    }
}

/// Timestamp metadata (TUF 1.0 §4.6): names the current snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timestamp {
    /// Always `timestamp`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// Spec version the file was written for.
    pub spec_version: String,
    /// Monotonic version.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// Must hold exactly `snapshot.json`.
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields this version of archy does not know, kept verbatim.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}
role_common!(Timestamp, "timestamp");

impl Timestamp {
    fn validate_specific(&self, role: &str) -> Result<(), MetadataError> {
        let meta = self.meta.get("snapshot.json").ok_or_else(|| malformed(role, "`meta` has no snapshot.json"))?;
        if self.meta.len() != 1 {
            return Err(malformed(role, "`meta` must hold only snapshot.json"));
        }
        meta.validate(role, "snapshot.json")
    }

    /// The snapshot this timestamp names.
    pub fn snapshot_meta(&self) -> &MetaFile {
        // Presence is checked by `validate` before any value of this type is handed out.
        self.meta.get("snapshot.json").unwrap_or_else(|| unreachable!("validated timestamp"))
    }
}

/// Snapshot metadata (TUF 1.0 §4.4): the version of every targets metadata file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always `snapshot`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// Spec version the file was written for.
    pub spec_version: String,
    /// Monotonic version.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// `<role>.json` → version (and optionally length and hashes).
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields this version of archy does not know, kept verbatim.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}
role_common!(Snapshot, "snapshot");

impl Snapshot {
    fn validate_specific(&self, role: &str) -> Result<(), MetadataError> {
        for (name, meta) in &self.meta {
            meta.validate(role, name)?;
        }
        Ok(())
    }
}

/// A target file (TUF 1.0 §4.5 `TARGETS`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetFile {
    /// Exact length in bytes.
    pub length: u64,
    /// Hex digests by algorithm.
    pub hashes: Map<String, Value>,
    /// Application data (archy puts the BLAKE3 content address here, see docs/repository.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    /// Fields this version of archy does not know, kept verbatim.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

// `TargetFile` and `MetaFile` are read by hand rather than with `#[serde(flatten)]`: a catalog has
// thousands of them, and flatten buffers every field through serde's generic content type. The
// rules are the same: known fields typed, everything else kept in `unknown`.
fn take<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    map: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<T>, E> {
    map.remove(field).map(|v| serde_json::from_value(v).map_err(E::custom)).transpose()
}

impl<'de> Deserialize<'de> for TargetFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = Map::deserialize(d)?;
        let length = take(&mut map, "length")?.ok_or_else(|| serde::de::Error::missing_field("length"))?;
        let hashes = take(&mut map, "hashes")?.ok_or_else(|| serde::de::Error::missing_field("hashes"))?;
        let custom = map.remove("custom");
        Ok(Self { length, hashes, custom, unknown: map })
    }
}

impl<'de> Deserialize<'de> for MetaFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = Map::deserialize(d)?;
        let version = take(&mut map, "version")?.ok_or_else(|| serde::de::Error::missing_field("version"))?;
        let length = take(&mut map, "length")?;
        let hashes = take(&mut map, "hashes")?;
        Ok(Self { version, length, hashes, unknown: map })
    }
}

impl TargetFile {
    /// The BLAKE3 content address of the file: `hashes.blake3`, or archy's `custom.archy.blake3`.
    pub fn blake3(&self) -> Option<[u8; 32]> {
        let hex_str = self
            .hashes
            .get("blake3")
            .and_then(Value::as_str)
            .or_else(|| self.custom.as_ref()?.get("archy")?.get("blake3")?.as_str())?;
        hex::decode(hex_str).ok()?.try_into().ok()
    }

    /// Checks length, every listed hash, and archy's signed BLAKE3 address when present.
    pub fn verify_bytes(&self, data: &[u8]) -> Result<(), crate::hash::HashError> {
        crate::hash::verify_length(self.length, data)?;
        crate::hash::verify_hashes(&self.hashes, data)?;
        if let Some(expected) = self.custom.as_ref().and_then(|c| c.get("archy")?.get("blake3")?.as_str()) {
            let actual = blake3::hash(data).to_hex();
            if !actual.as_str().eq_ignore_ascii_case(expected) {
                return Err(crate::hash::HashError::HashMismatch {
                    algorithm: "blake3".into(),
                    expected: expected.to_owned(),
                    actual: actual.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// A delegation to another targets role (TUF 1.0 §4.5 `DELEGATIONS`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedRole {
    /// The delegated role's name; also its metadata file name (`<name>.json`).
    pub name: String,
    /// Key ids that may sign for it.
    pub keyids: Vec<KeyId>,
    /// How many must sign.
    pub threshold: u64,
    /// If true, a search that reaches this role stops here (TUF 1.0 §5.6.7.2.1).
    pub terminating: bool,
    /// Shell-style path patterns the role is trusted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Alternatively, hex prefixes of SHA-256(target path) the role is trusted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    /// Fields this version of archy does not know, kept verbatim.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

impl DelegatedRole {
    /// Whether this role is trusted for `target` (TUF 1.0 §4.5 `PATHPATTERN`, `PATH_HASH_PREFIXES`).
    pub fn is_delegated_path(&self, target: &str) -> bool {
        if let Some(prefixes) = &self.path_hash_prefixes {
            let digest = hex::encode(sha2::Sha256::digest(target.as_bytes()));
            return prefixes.iter().any(|p| digest.starts_with(p.as_str()));
        }
        self.paths.as_ref().is_some_and(|paths| paths.iter().any(|p| crate::pattern::path_matches(p, target)))
    }
}

/// Hash-bin delegation in compact form (TAP 15 "succinct hash bin delegations").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccinctRoles {
    /// Key ids that may sign for every bin.
    pub keyids: Vec<KeyId>,
    /// How many must sign.
    pub threshold: u64,
    /// Number of leading bits of SHA-256(target path) that select the bin (1..=32).
    pub bit_length: u32,
    /// Bin role names are `<name_prefix>-<bin in hex>`.
    pub name_prefix: String,
    /// Fields this version of archy does not know, kept verbatim.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

impl SuccinctRoles {
    fn suffix_len(&self) -> usize {
        format!("{:x}", (1u64 << self.bit_length) - 1).len()
    }

    /// The bin role responsible for `target`.
    pub fn role_for_target(&self, target: &str) -> String {
        let digest = sha2::Sha256::digest(target.as_bytes());
        let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        let bin = if self.bit_length >= 32 { first } else { first >> (32 - self.bit_length) };
        format!("{}-{:0width$x}", self.name_prefix, bin, width = self.suffix_len())
    }

    /// Whether `name` is one of the bins.
    pub fn is_delegated_role(&self, name: &str) -> bool {
        let Some(suffix) = name.strip_prefix(&format!("{}-", self.name_prefix)) else {
            return false;
        };
        suffix.len() == self.suffix_len()
            && u64::from_str_radix(suffix, 16).is_ok_and(|bin| bin < (1u64 << self.bit_length))
    }
}

/// The delegations of a targets role (TUF 1.0 §4.5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegations {
    /// Keys of the delegated roles, by key id.
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// Delegated roles, in priority order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    /// Hash-bin delegations (TAP 15), instead of `roles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
    /// Fields this version of archy does not know, kept verbatim.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

impl Delegations {
    /// The delegated roles trusted for `target`, in order, with their terminating flag.
    pub fn roles_for_target(&self, target: &str) -> Vec<(String, bool)> {
        if let Some(succinct) = &self.succinct_roles {
            return vec![(succinct.role_for_target(target), true)];
        }
        self.roles
            .iter()
            .flatten()
            .filter(|r| r.is_delegated_path(target))
            .map(|r| (r.name.clone(), r.terminating))
            .collect()
    }

    /// Like [`Delegations::roles_for_target`], but using a prebuilt [`DelegationIndex`] so a
    /// role with thousands of path patterns answers in time proportional to the path length.
    pub fn roles_for_target_indexed(&self, index: &DelegationIndex, target: &str) -> Vec<(String, bool)> {
        if let Some(succinct) = &self.succinct_roles {
            return vec![(succinct.role_for_target(target), true)];
        }
        let Some(roles) = &self.roles else { return Vec::new() };
        // A pattern can match only if its literal prefix is a prefix of the target, so checking
        // just those patterns gives the same answer as checking every pattern of every role.
        let mut matched: Vec<usize> =
            index.always.iter().copied().filter(|&i| roles[i].is_delegated_path(target)).collect();
        for (k, _) in target.char_indices().chain(std::iter::once((target.len(), ' '))) {
            for &(role, pattern) in index.by_prefix.get(&target[..k]).into_iter().flatten() {
                let paths = roles[role].paths.as_deref().unwrap_or_default();
                if crate::pattern::path_matches(&paths[pattern], target) {
                    matched.push(role);
                }
            }
        }
        matched.sort_unstable();
        matched.dedup();
        matched.into_iter().map(|i| (roles[i].name.clone(), roles[i].terminating)).collect()
    }

    /// The key ids and threshold that `name` must be signed with, if it is delegated here.
    pub fn role_keys(&self, name: &str) -> Option<(Vec<KeyId>, u64)> {
        if let Some(succinct) = &self.succinct_roles {
            return succinct.is_delegated_role(name).then(|| (succinct.keyids.clone(), succinct.threshold));
        }
        self.roles.iter().flatten().find(|r| r.name == name).map(|r| (r.keyids.clone(), r.threshold))
    }
}

/// An index of delegation path patterns by their literal prefix (the part before the first
/// `*`, `?` or `[`). It only narrows the candidates; every candidate is still checked with the
/// full pattern rule, so the index never changes which roles are trusted for a path.
#[derive(Clone, Debug, Default)]
pub struct DelegationIndex {
    by_prefix: std::collections::HashMap<String, Vec<(usize, usize)>>,
    always: Vec<usize>,
}

impl DelegationIndex {
    /// Indexes the path patterns of `delegations`.
    pub fn new(delegations: &Delegations) -> Self {
        let mut index = Self::default();
        for (i, role) in delegations.roles.iter().flatten().enumerate() {
            match (&role.paths, &role.path_hash_prefixes) {
                (Some(paths), None) => {
                    for (j, p) in paths.iter().enumerate() {
                        let literal = p.find(['*', '?', '[']).map_or(p.as_str(), |end| &p[..end]);
                        index.by_prefix.entry(literal.to_owned()).or_default().push((i, j));
                    }
                }
                _ => index.always.push(i),
            }
        }
        index
    }
}

/// Targets metadata (TUF 1.0 §4.5): target files and delegations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// Always `targets`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// Spec version the file was written for.
    pub spec_version: String,
    /// Monotonic version.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// Target path → file description.
    pub targets: BTreeMap<String, TargetFile>,
    /// Roles this role delegates to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    /// Fields this version of archy does not know, kept verbatim.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}
role_common!(Targets, "targets");

impl Targets {
    fn validate_specific(&self, role: &str) -> Result<(), MetadataError> {
        let Some(delegations) = &self.delegations else { return Ok(()) };
        match (&delegations.roles, &delegations.succinct_roles) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(malformed(role, "delegations need exactly one of `roles` and `succinct_roles`"));
            }
            (None, Some(s)) => {
                if !(1..=32).contains(&s.bit_length) {
                    return Err(malformed(role, "succinct_roles.bit_length must be 1..=32"));
                }
            }
            (Some(roles), None) => {
                let mut seen = HashSet::new();
                for r in roles {
                    if TOP_LEVEL_ROLES.contains(&r.name.as_str()) {
                        return Err(malformed(role, format!("delegated role may not be named `{}`", r.name)));
                    }
                    if !seen.insert(r.name.as_str()) {
                        return Err(malformed(role, format!("delegated role `{}` appears twice", r.name)));
                    }
                    if r.paths.is_some() == r.path_hash_prefixes.is_some() {
                        return Err(malformed(
                            role,
                            format!(
                                "delegated role `{}` needs exactly one of `paths` and `path_hash_prefixes`",
                                r.name
                            ),
                        ));
                    }
                    let keys = RoleKeys { keyids: r.keyids.clone(), threshold: r.threshold, unknown: Map::new() };
                    validate_role_keys(role, &r.name, &keys)?;
                }
            }
        }
        Ok(())
    }

    /// The keys this targets role uses for its delegations.
    pub fn delegation_keys(&self) -> Option<&BTreeMap<KeyId, PublicKey>> {
        self.delegations.as_ref().map(|d| &d.keys)
    }
}

/// A parsed metadata file whose signatures have not been checked yet.
#[derive(Clone, Debug)]
pub struct SignedMetadata<T> {
    /// The signed content.
    pub signed: T,
    /// The signatures, in file order.
    pub signatures: Vec<Signature>,
    /// Canonical JSON of `signed` exactly as received: the bytes the signatures cover.
    canonical: Vec<u8>,
}

impl<T: Role> SignedMetadata<T> {
    /// Parses a metadata file, checking its structure (not its signatures).
    ///
    /// `role` names the role the caller expects, for error messages; the `_type` must be
    /// `T::TYPE` (TUF 1.0 §5.3.x: "the type of the metadata is correct").
    pub fn from_slice(bytes: &[u8], role: &str) -> Result<Self, MetadataError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| malformed(role, e))?;
        Self::from_value(value, role)
    }

    /// Parses an already-decoded metadata document.
    pub fn from_value(value: Value, role: &str) -> Result<Self, MetadataError> {
        let Value::Object(mut top) = value else {
            return Err(malformed(role, "top level is not an object"));
        };
        let signed_value = top.remove("signed").ok_or_else(|| malformed(role, "no `signed` object"))?;
        let signatures_value = top.remove("signatures").ok_or_else(|| malformed(role, "no `signatures` list"))?;
        if let Some(extra) = top.keys().next() {
            return Err(malformed(role, format!("unexpected top-level field `{extra}`")));
        }
        let found = signed_value.get("_type").and_then(Value::as_str).unwrap_or_default().to_owned();
        if found != T::TYPE {
            return Err(MetadataError::WrongType { expected: T::TYPE.into(), found });
        }
        let canonical = canonical::to_canonical(&signed_value).map_err(|e| malformed(role, e))?;
        let signed: T = serde_json::from_value(signed_value).map_err(|e| malformed(role, e))?;
        let signatures: Vec<Signature> = serde_json::from_value(signatures_value).map_err(|e| malformed(role, e))?;
        let mut seen = HashSet::new();
        for sig in &signatures {
            if !seen.insert(sig.keyid.as_str()) {
                return Err(MetadataError::DuplicateSignatures { role: role.into(), keyid: sig.keyid.clone() });
            }
        }
        check_spec_version(role, signed.spec_version())?;
        if signed.version() < 1 {
            return Err(malformed(role, "version must be at least 1"));
        }
        signed.validate(role)?;
        Ok(Self { signed, signatures, canonical })
    }

    /// The canonical bytes the signatures cover.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.canonical
    }

    /// Counts valid signatures by distinct keys of `keyids` and checks them against `threshold`.
    ///
    /// TUF 1.0 §5.3.4/§5.4.2/§5.5.3/§5.6.3: only keys listed for the role count, each key at
    /// most once, and a signature by a key missing from `keys` or of an unsupported scheme
    /// counts for nothing.
    pub fn verify_role(
        &self,
        role: &str,
        keys: &BTreeMap<KeyId, PublicKey>,
        keyids: &[KeyId],
        threshold: u64,
    ) -> Result<(), MetadataError> {
        let mut valid = 0u64;
        let mut counted = HashSet::new();
        for keyid in keyids {
            if !counted.insert(keyid) {
                continue;
            }
            let (Some(key), Some(sig)) = (keys.get(keyid), self.signatures.iter().find(|s| &s.keyid == keyid)) else {
                continue;
            };
            if key.verifier().and_then(|v| v.verify_hex(&self.canonical, &sig.sig)).is_ok() {
                valid += 1;
            }
        }
        if valid < threshold {
            return Err(MetadataError::ThresholdNotMet { role: role.into(), valid, threshold });
        }
        Ok(())
    }
}

impl<T: Role> SignedMetadata<T> {
    /// Signs `signed` with `keys` (each an Ed25519 key) and returns the metadata document.
    pub fn sign(signed: T, keys: &[&SigningKey]) -> Result<Self, MetadataError> {
        let value = serde_json::to_value(&signed).map_err(|e| malformed(T::TYPE, e))?;
        let canonical = canonical::to_canonical(&value).map_err(|e| malformed(T::TYPE, e))?;
        let signatures = keys
            .iter()
            .map(|k| Signature { keyid: k.key_id(), sig: hex::encode(k.sign(&canonical)), unknown: Map::new() })
            .collect();
        Ok(Self { signed, signatures, canonical })
    }

    /// Adds or replaces the signature of `key`.
    pub fn add_signature(&mut self, key: &SigningKey) {
        let keyid = key.key_id();
        self.signatures.retain(|s| s.keyid != keyid);
        self.signatures.push(Signature { keyid, sig: hex::encode(key.sign(&self.canonical)), unknown: Map::new() });
    }

    /// The file bytes: pretty-printed JSON `{"signatures": [...], "signed": {...}}`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let doc = serde_json::json!({ "signatures": self.signatures, "signed": self.signed });
        let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// `spec_version` must be `1.x` or `1.x.y` with numeric parts (TUF 1.0 §4.2 and §5: a client
/// refuses metadata of a spec major version it does not implement).
fn check_spec_version(role: &str, spec: &str) -> Result<(), MetadataError> {
    let parts: Vec<&str> = spec.split('.').collect();
    let numeric = parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !(2..=3).contains(&parts.len()) || !numeric {
        return Err(malformed(role, format!("spec_version `{spec}` is not X.Y or X.Y.Z")));
    }
    if parts[0] != "1" {
        return Err(malformed(role, format!("unsupported spec_version `{spec}` (this client implements 1.x)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn root_with(key: &SigningKey) -> Root {
        let id = key.key_id();
        let role = RoleKeys { keyids: vec![id.clone()], threshold: 1, unknown: Map::new() };
        Root {
            kind: "root".into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            expires: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().expect("date"),
            consistent_snapshot: true,
            keys: [(id, key.public_key())].into_iter().collect(),
            roles: TOP_LEVEL_ROLES.iter().map(|r| (r.to_string(), role.clone())).collect(),
            unknown: Map::new(),
        }
    }

    #[test]
    fn signed_root_round_trips_and_verifies() {
        let key = SigningKey::from_seed([3; 32]);
        let md = SignedMetadata::sign(root_with(&key), &[&key]).expect("sign");
        let parsed = SignedMetadata::<Root>::from_slice(&md.to_bytes(), "root").expect("parse");
        let role = parsed.signed.role("root").expect("root role").clone();
        assert!(parsed.verify_role("root", &parsed.signed.keys, &role.keyids, 1).is_ok());
    }

    #[test]
    fn unknown_fields_survive_and_stay_signed() {
        let key = SigningKey::from_seed([4; 32]);
        let mut root = root_with(&key);
        root.unknown.insert("x-extension".into(), Value::from("kept"));
        let md = SignedMetadata::sign(root, &[&key]).expect("sign");
        let parsed = SignedMetadata::<Root>::from_slice(&md.to_bytes(), "root").expect("parse");
        assert_eq!(parsed.signed.unknown.get("x-extension"), Some(&Value::from("kept")));
        let ids = parsed.signed.roles["root"].keyids.clone();
        assert!(parsed.verify_role("root", &parsed.signed.keys, &ids, 1).is_ok());
    }

    #[test]
    fn duplicate_signatures_and_bad_types_are_refused() {
        let key = SigningKey::from_seed([5; 32]);
        let mut md = SignedMetadata::sign(root_with(&key), &[&key]).expect("sign");
        md.signatures.push(md.signatures[0].clone());
        assert!(matches!(
            SignedMetadata::<Root>::from_slice(&md.to_bytes(), "root"),
            Err(MetadataError::DuplicateSignatures { .. })
        ));
        let md = SignedMetadata::sign(root_with(&key), &[&key]).expect("sign");
        assert!(matches!(
            SignedMetadata::<Timestamp>::from_slice(&md.to_bytes(), "timestamp"),
            Err(MetadataError::WrongType { .. })
        ));
    }

    #[test]
    fn expires_must_be_zero_padded_utc() {
        assert!(expires_format::parse("2030-01-01T00:00:00Z").is_some());
        for bad in ["2030-1-1T1:1:1Z", "+2030-01-01T00:00:00Z", "2030-01-01T00:00:00+00:00", "2030-01-01 00:00:00Z"] {
            assert!(expires_format::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn spec_version_major_must_be_one() {
        let key = SigningKey::from_seed([6; 32]);
        let mut root = root_with(&key);
        root.spec_version = "2.0.0".into();
        let md = SignedMetadata::sign(root, &[&key]).expect("sign");
        assert!(matches!(
            SignedMetadata::<Root>::from_slice(&md.to_bytes(), "root"),
            Err(MetadataError::Malformed { .. })
        ));
    }

    #[test]
    fn succinct_bins_name_and_recognise_roles() {
        let s = SuccinctRoles {
            keyids: vec![],
            threshold: 1,
            bit_length: 8,
            name_prefix: "bin".into(),
            unknown: Map::new(),
        };
        let name = s.role_for_target("some/target");
        assert!(s.is_delegated_role(&name));
        assert_eq!(name.len(), "bin-00".len());
        assert!(!s.is_delegated_role("bin-100"));
    }
}
