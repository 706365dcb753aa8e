//! The node's verified catalog on disk, and what it offers to install.
//!
//! ```text
//! <data>/catalog/current -> gen-000007   symlink, replaced atomically (rename) after each sync
//! <data>/catalog/gen-000007/
//!     root.json timestamp.json snapshot.json targets.json <role>.json   trusted metadata
//!     roots/<N>.root.json   every root version verified so far (peers walk the chain from it)
//!     state.json            where it came from, when, and the verified app index
//! <data>/files/<blake3>     verified target files (manifest envelopes, image archives)
//! ```
//!
//! A generation is written completely (every file fsynced, then the directory) before `current`
//! is switched to it, so a node killed at any moment restarts with its last complete verified
//! catalog, never a mix of two. Files under `files/` are named by their BLAKE3 hash and written
//! only after verification (temporary file, fsync, rename).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use catalog::client::LocalStore;
use catalog::envelope::{SignedEnvelope, VerifiedManifest};
use catalog::manifest::Limits;
use catalog::metadata::{SignedMetadata, Snapshot};
use serde::{Deserialize, Serialize};

use crate::data_dir::DataDir;
use crate::files::{FileError, FileStore};

/// One installable app version in the catalog.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CatalogApp {
    /// App id.
    pub id: String,
    /// Version.
    pub version: semver::Version,
    /// The publisher's did:key.
    pub publisher: String,
    /// Where the catalog came from (`origin` or `peer <endpoint id>`).
    pub source: String,
    /// Title, for listings.
    pub title: String,
    /// Target path of the envelope.
    pub path: String,
    /// The publisher role listing it.
    pub role: String,
    /// BLAKE3 of the envelope (its file under `files/`).
    pub blake3: String,
    /// Length of the envelope.
    pub length: u64,
    /// Why the node will not install it: the origin revoked the key of the role listing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<String>,
}

/// A publisher role whose key the origin retired or revoked, as the trusted top-level targets
/// record it (`archy_key` in the role's delegation, signed by the targets key).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublisherKey {
    /// The role.
    pub role: String,
    /// The DIDs of the role's keys.
    pub dids: Vec<String>,
    /// What the origin recorded.
    #[serde(flatten)]
    pub record: catalog::keylife::RoleKeyState,
}

impl PublisherKey {
    /// The records of every publisher role with one, from the top-level targets metadata.
    pub fn from_targets(targets: &catalog::metadata::Targets) -> Vec<Self> {
        let Some(delegations) = &targets.delegations else { return Vec::new() };
        delegations
            .roles
            .iter()
            .flatten()
            .filter_map(|role| {
                let record = catalog::keylife::RoleKeyState::of(role)?;
                let dids = role
                    .keyids
                    .iter()
                    .filter_map(|id| delegations.keys.get(id)?.as_ed25519())
                    .map(|k| catalog::DidKey::from_public_key(&k).to_string())
                    .collect();
                Some(Self { role: role.name.clone(), dids, record })
            })
            .collect()
    }

    /// Whether the origin revoked this role's key.
    pub fn is_revoked(&self) -> bool {
        self.record.state == catalog::keylife::RoleState::Revoked
    }

    /// What happened, for listings: `publisher role `a` revoked by the origin on …`.
    pub fn describe(&self) -> String {
        let successor =
            self.record.successor.as_ref().map(|s| format!("; continued by role `{s}`")).unwrap_or_default();
        format!(
            "publisher role `{}` {} by the origin on {}{successor}",
            self.role,
            self.record.state_word(),
            self.record.since
        )
    }
}

/// A target file the signed metadata names (an image archive, a manifest).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CatalogFile {
    /// Target path.
    pub path: String,
    /// BLAKE3 content address.
    pub blake3: String,
    /// Signed length.
    pub length: u64,
    /// SHA-256 (for HTTP consistent-snapshot names).
    pub sha256: String,
}

/// `state.json` of a generation.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct GenerationState {
    /// Generation number.
    pub generation: u64,
    /// `origin` or `peer <endpoint id>`.
    pub source: String,
    /// When it was verified.
    pub synced_at: chrono::DateTime<chrono::Utc>,
    /// Timestamp version.
    pub timestamp_version: u64,
    /// Snapshot version.
    pub snapshot_version: u64,
    /// Timestamp expiry.
    pub expires: Option<chrono::DateTime<chrono::Utc>>,
    /// Root version.
    pub root_version: u64,
    /// Installable apps.
    pub apps: Vec<CatalogApp>,
    /// Every target file (for fetching archives and serving peers).
    pub files: Vec<CatalogFile>,
    /// The publisher roles whose key the origin retired or revoked.
    #[serde(default)]
    pub publisher_keys: Vec<PublisherKey>,
}

/// The current generation's directory, if any.
pub fn current_generation(data: &DataDir) -> Option<PathBuf> {
    let dir = data.catalog_dir();
    let target = std::fs::read_link(dir.join("current")).ok()?;
    Some(dir.join(target))
}

/// Trusted metadata by role, loaded from a generation and collecting what an update persists.
/// Nothing reaches disk until [`commit_generation`].
#[derive(Debug, Default, Clone)]
pub struct GenerationStore {
    /// Role name → bytes.
    pub roles: BTreeMap<String, Vec<u8>>,
    /// Root versions seen (version → bytes).
    pub roots: BTreeMap<u64, Vec<u8>>,
}

impl GenerationStore {
    /// Loads the current generation, or starts from the pinned bootstrap root.
    pub fn load(data: &DataDir) -> anyhow::Result<Self> {
        let mut store = Self::default();
        if let Some(dir) = current_generation(data) {
            for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(role) = name.strip_suffix(".json").filter(|_| name != "state.json") {
                    store.roles.insert(percent_decode(role), std::fs::read(entry.path())?);
                }
            }
            if let Ok(entries) = std::fs::read_dir(dir.join("roots")) {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if let Some(v) = name.strip_suffix(".root.json").and_then(|v| v.parse().ok()) {
                        store.roots.insert(v, std::fs::read(entry.path())?);
                    }
                }
            }
        } else {
            let root = data.trust_root();
            let bytes = std::fs::read(&root).with_context(|| {
                format!("{}: no trusted root; run `archy-node init --root root.json`", root.display())
            })?;
            store.remember_root(&bytes);
            store.roles.insert("root".into(), bytes);
        }
        Ok(store)
    }

    fn remember_root(&mut self, bytes: &[u8]) {
        if let Ok(md) = SignedMetadata::<catalog::metadata::Root>::from_slice(bytes, "root") {
            self.roots.insert(md.signed.version, bytes.to_vec());
        }
    }
}

impl LocalStore for GenerationStore {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        self.roles.get(role).cloned()
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), String> {
        if role == "root" {
            self.remember_root(bytes);
        }
        self.roles.insert(role.to_owned(), bytes.to_vec());
        Ok(())
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Writes a new generation from `store` and `state`, then switches `current` to it atomically.
/// Keeps the previous generation; older ones are removed.
pub fn commit_generation(data: &DataDir, store: &GenerationStore, state: &mut GenerationState) -> anyhow::Result<()> {
    let dir = data.catalog_dir();
    std::fs::create_dir_all(&dir)?;
    let previous = current_generation(data);
    let number =
        previous.as_ref().and_then(|p| p.file_name()?.to_str()?.strip_prefix("gen-")?.parse::<u64>().ok()).unwrap_or(0)
            + 1;
    state.generation = number;
    let name = format!("gen-{number:06}");
    let gen_dir = dir.join(&name);
    let _ = std::fs::remove_dir_all(&gen_dir);
    std::fs::create_dir_all(gen_dir.join("roots"))?;
    for (role, bytes) in &store.roles {
        write_synced(&gen_dir.join(format!("{}.json", catalog::client::encode_role_name(role))), bytes)?;
    }
    for (version, bytes) in &store.roots {
        write_synced(&gen_dir.join(format!("roots/{version}.root.json")), bytes)?;
    }
    write_synced(&gen_dir.join("state.json"), &serde_json::to_vec_pretty(state)?)?;
    fsync_dir(&gen_dir.join("roots"))?;
    fsync_dir(&gen_dir)?;
    // The switch: a new symlink renamed over `current` (rename is atomic), then the directory
    // entry made durable.
    let tmp = dir.join("current.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&name, &tmp)?;
    std::fs::rename(&tmp, dir.join("current"))?;
    fsync_dir(&dir)?;
    // Keep the current and the previous generation only.
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let path = entry.path();
        let fname = entry.file_name().to_string_lossy().into_owned();
        if fname.starts_with("gen-") && Some(&path) != previous.as_ref() && path != gen_dir {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
    Ok(())
}

/// The node's last complete verified catalog.
#[derive(Debug, Clone)]
pub struct NodeCatalog {
    files: FileStore,
    state: GenerationState,
}

impl NodeCatalog {
    /// Opens the node's last complete verified catalog under `data`.
    pub fn open(data: &DataDir) -> anyhow::Result<Self> {
        let dir = current_generation(data)
            .with_context(|| format!("{data}: no verified catalog yet; run `archy-node sync`"))?;
        let path = dir.join("state.json");
        let state: GenerationState =
            serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)
                .with_context(|| format!("{}", path.display()))?;
        Ok(Self { files: data.files(), state })
    }

    /// The generation's state (versions, expiry, source).
    pub fn state(&self) -> &GenerationState {
        &self.state
    }

    /// Installable apps, sorted by id then newest version first.
    pub fn apps(&self) -> Vec<CatalogApp> {
        let mut apps = self.state.apps.clone();
        apps.sort_by(|a, b| a.id.cmp(&b.id).then(b.version.cmp(&a.version)));
        apps
    }

    /// The verified manifest for `id` at `version` (newest when `None`), re-verified from the
    /// stored bytes: BLAKE3 against the signed catalog entry, then the envelope's signature.
    pub fn manifest(&self, id: &str, version: Option<&semver::Version>) -> anyhow::Result<VerifiedManifest> {
        let app =
            self.apps().into_iter().find(|a| a.id == id && version.is_none_or(|v| &a.version == v)).with_context(
                || match version {
                    Some(v) => format!("{id} {v} is not in the verified catalog"),
                    None => format!("{id} is not in the verified catalog"),
                },
            )?;
        // Re-hashed on every read: a file that changed on disk is removed and fetched again.
        let bytes = self.files.get(&app.blake3, app.length).map_err(|e| match e {
            FileError::Damaged { path } => anyhow::anyhow!(
                "{}: stored manifest of {id} {} changed on disk; run `archy-node sync`",
                path.display(),
                app.version
            ),
            other => anyhow::Error::new(other),
        })?;
        let verified = SignedEnvelope::from_slice(&bytes)?.verify(&Limits::default())?;
        if verified.manifest().id.as_str() != id || verified.manifest().version != app.version {
            bail!("{}: the envelope is not {id} {}", self.files.path(&app.blake3).display(), app.version);
        }
        Ok(verified)
    }

    /// A target file the signed metadata names, by path.
    pub fn file(&self, target_path: &str) -> Option<&CatalogFile> {
        self.state.files.iter().find(|f| f.path == target_path)
    }
}

/// Serves the current generation's metadata to peers over the metadata protocol
/// ([`archy_net::META_ALPN`]): `timestamp.json`, every verified root, and the snapshot and role
/// files only at the versions the trusted snapshot names; and the transparency log's proofs and
/// leaves from the node's copy of the log.
#[derive(Debug)]
pub struct GenerationMeta {
    data: DataDir,
}

impl GenerationMeta {
    /// Serves the catalog of `data`.
    pub fn new(data: DataDir) -> Self {
        Self { data }
    }
}

impl archy_net::MetaSource for GenerationMeta {
    fn meta(&self, name: &str) -> Option<Bytes> {
        if name.starts_with("log-") {
            // From the kept checkpoint and the copy of the leaves (`<data>/log/`), as the origin
            // answers them; `None` while the copy is not complete. A peer checks what it takes
            // against the log's signature, as anything from the origin.
            return catalog::repo::log_answer(self.data.root(), name).ok().flatten().map(Bytes::from);
        }
        let dir = current_generation(&self.data)?;
        let read = |p: PathBuf| std::fs::read(p).ok().map(Bytes::from);
        if name == "timestamp.json" {
            return read(dir.join("timestamp.json"));
        }
        let (version, rest) = name.split_once('.')?;
        let version: u64 = version.parse().ok()?;
        if rest == "root.json" {
            return read(dir.join("roots").join(name));
        }
        let snapshot_bytes = std::fs::read(dir.join("snapshot.json")).ok()?;
        let snapshot = SignedMetadata::<Snapshot>::from_slice(&snapshot_bytes, "snapshot").ok()?;
        if rest == "snapshot.json" {
            return (snapshot.signed.version == version).then(|| Bytes::from(snapshot_bytes));
        }
        // `<V>.<role>.json`: served only when it is the version the trusted snapshot names.
        let role = rest.strip_suffix(".json")?;
        let meta = snapshot.signed.meta.get(&format!("{}.json", percent_decode(role)))?;
        (meta.version == version).then(|| read(dir.join(rest))).flatten()
    }
}
