//! `archy repo init|add-publisher|rotate-publisher|revoke-publisher|add|sign|rotate|timestamp|verify`: an
//! origin repository on disk.
//!
//! A repository folder holds `repository/` (what the origin serves: `metadata/`, `targets/`) and
//! `keys/` (0700; each key 0600): `root-<n>.key` (offline: move them off the server after
//! `init`), `targets.key`, `snapshot.key`, `timestamp.key`, and `log.key` (online) for a catalog
//! that keeps a transparency log (`init --log NAME`; its leaves and checkpoint in `repository/log/`). `--keys DIR` points elsewhere.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use catalog::client::local::{DirRemote, MemoryStore};
use catalog::client::{Config, Updater};
use catalog::keys::SigningKey;
use catalog::manifest::Limits;
use catalog::repo::{Expiry, InitKeys, Repository};
use chrono::Utc;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::cli::KeyPath;
use crate::output::{Output, user_error};

/// `archy repo`.
#[derive(Args, Debug)]
pub struct RepoArgs {
    #[command(subcommand)]
    action: RepoAction,
}

#[derive(Args, Debug, Clone)]
struct RepoDir {
    /// The repository folder (holds repository/ and keys/).
    dir: PathBuf,
    /// Folder of the role keys [default: <dir>/keys].
    #[arg(long)]
    keys: Option<PathBuf>,
}

impl RepoDir {
    fn keys_dir(&self) -> PathBuf {
        self.keys.clone().unwrap_or_else(|| self.dir.join("keys"))
    }
    fn served(&self) -> PathBuf {
        self.dir.join("repository")
    }
    fn key(&self, name: &str) -> anyhow::Result<SigningKey> {
        let path = self.keys_dir().join(format!("{name}.key"));
        if !path.exists() {
            return Err(user_error(format!("{name} key not found at {}", path.display())));
        }
        Ok(catalog::keyfile::read(&path)?)
    }
    fn root_keys(&self) -> anyhow::Result<Vec<SigningKey>> {
        let dir = self.keys_dir();
        let mut keys = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut names: Vec<String> =
                entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            for name in names.iter().filter(|n| n.starts_with("root-") && n.ends_with(".key")) {
                keys.push(catalog::keyfile::read(&dir.join(name))?);
            }
        }
        Ok(keys)
    }
    /// Loads the repository, with the log key (`keys/log.key`) when there is one.
    fn load(&self) -> anyhow::Result<Repository> {
        let mut r = Repository::load(&self.served(), Expiry::default())?;
        if self.keys_dir().join("log.key").exists() {
            r.set_log_key(self.key("log")?);
        }
        Ok(r)
    }
}

#[derive(Subcommand, Debug)]
enum RepoAction {
    /// Create a repository: role keys, version 1 of every role, root.json.minisig.
    Init {
        #[command(flatten)]
        repo: RepoDir,
        /// Number of root keys to generate.
        #[arg(long, default_value_t = 1)]
        root_keys: u64,
        /// How many root keys must sign a root.
        #[arg(long, default_value_t = 1)]
        root_threshold: u64,
        /// Keep a transparency log of every catalog state, under this name (its checkpoints'
        /// origin line, e.g. `registry.example.org/log`); nodes then require it.
        #[arg(long, value_name = "NAME")]
        log: Option<String>,
    },
    /// Delegate app ids to a publisher's did:key as a terminating targets role.
    AddPublisher {
        #[command(flatten)]
        repo: RepoDir,
        /// Role name (lowercase letters, digits, hyphens).
        #[arg(long)]
        name: String,
        /// The publisher's did:key.
        #[arg(long)]
        did: String,
        /// App id the publisher may publish (repeat for several).
        #[arg(long = "app", required = true)]
        apps: Vec<String>,
    },
    /// Move a publisher role to a new key: the old role keeps what it published and accepts
    /// nothing more; a new role for the new key takes its apps from the next version on.
    RotatePublisher {
        #[command(flatten)]
        repo: RepoDir,
        /// The publisher role to rotate.
        #[arg(long)]
        name: String,
        /// The publisher's new did:key.
        #[arg(long)]
        did: String,
        /// The new role's name [default: <name>-2, or the next free number].
        #[arg(long)]
        new_name: Option<String>,
        /// The old key is compromised: nodes refuse to install what it signed and flag installed
        /// apps (its versions stay listed).
        #[arg(long)]
        revoke_old: bool,
    },
    /// Revoke a publisher role: the origin accepts nothing more from its key, nodes refuse to
    /// install its versions and flag installed ones.
    RevokePublisher {
        #[command(flatten)]
        repo: RepoDir,
        /// The publisher role.
        #[arg(long)]
        name: String,
        /// Also take the role's versions out of the catalog.
        #[arg(long)]
        yank: bool,
    },
    /// Sign an app folder's manifest with the publisher key and add it to the publisher's role.
    Add {
        #[command(flatten)]
        repo: RepoDir,
        /// The app folder holding archy.toml.
        app: PathBuf,
        /// Also add an image archive the manifest names (`archive.target = "<id>/<file>"`); it is
        /// stored as the TUF target `images/<id>/<file>`.
        #[arg(long)]
        file: Vec<PathBuf>,
        #[command(flatten)]
        key: KeyPath,
    },
    /// Sign a new snapshot and timestamp for the repository's current state.
    Sign {
        #[command(flatten)]
        repo: RepoDir,
    },
    /// Start a transparency log for a repository made without one: root N+1 names the log
    /// (signed by the root keys), and every timestamp from then on is logged; nodes that take the
    /// new root require the log's proofs.
    AddLog {
        #[command(flatten)]
        repo: RepoDir,
        /// The log's name (its checkpoints' origin line, e.g. `registry.example.org/log`).
        #[arg(long)]
        name: String,
    },
    /// Replace the keys of a top-level role (root N → N+1, signed by old and new root keys).
    Rotate {
        #[command(flatten)]
        repo: RepoDir,
        /// root, targets, snapshot or timestamp.
        #[arg(long)]
        role: String,
        /// New key file(s); generated into the keys folder when omitted.
        #[arg(long = "new-key")]
        new_keys: Vec<PathBuf>,
        /// Threshold of the new keys.
        #[arg(long, default_value_t = 1)]
        threshold: u64,
    },
    /// Re-sign the timestamp with a fresh expiry.
    Timestamp {
        #[command(flatten)]
        repo: RepoDir,
    },
    /// Verify the whole repository as a client would, from a trusted root.
    Verify {
        /// The repository folder (holds repository/).
        dir: PathBuf,
        /// Trusted root to start from [default: repository/metadata/1.root.json].
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

/// Runs `archy repo`.
pub fn run(args: RepoArgs, out: &Output) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    // Every command that loads and rewrites the repository holds the writers' lock, shared with
    // a running `archy-registry serve`.
    let _lock = match &args.action {
        RepoAction::AddPublisher { repo, .. }
        | RepoAction::RotatePublisher { repo, .. }
        | RepoAction::RevokePublisher { repo, .. }
        | RepoAction::Add { repo, .. }
        | RepoAction::Sign { repo }
        | RepoAction::Rotate { repo, .. }
        | RepoAction::AddLog { repo, .. }
        | RepoAction::Timestamp { repo } => Some(catalog::repo::lock_writers(&repo.served())?),
        _ => None,
    };
    match args.action {
        RepoAction::Init { repo, root_keys, root_threshold, log } => {
            init(&repo, root_keys, root_threshold, log.as_deref(), out)?;
        }
        RepoAction::AddPublisher { repo, name, did, apps } => {
            let did: catalog::DidKey = did.parse().map_err(|e| user_error(format!("--did: {e}")))?;
            for app in &apps {
                app.parse::<catalog::manifest::AppId>().map_err(|e| user_error(format!("--app {app}: {e}")))?;
            }
            let mut r = repo.load()?;
            let app_refs: Vec<&str> = apps.iter().map(String::as_str).collect();
            r.add_publisher(&name, &did, &app_refs, &repo.key("targets")?, now)?;
            r.snapshot_and_timestamp(&repo.key("snapshot")?, &repo.key("timestamp")?, now)?;
            r.write_dir(&repo.served())?;
            out.print(
                format!("publisher `{name}` ({did}) may publish: {}", apps.join(", ")),
                &json!({"role": name, "did": did.to_string(), "apps": apps, "targets_version": r.targets().version}),
            );
        }
        RepoAction::RotatePublisher { repo, name, did, new_name, revoke_old } => {
            let did: catalog::DidKey = did.parse().map_err(|e| user_error(format!("--did: {e}")))?;
            let mut r = repo.load()?;
            let new_role =
                r.rotate_publisher(&name, &did, new_name.as_deref(), revoke_old, &repo.key("targets")?, now)?;
            r.snapshot_and_timestamp(&repo.key("snapshot")?, &repo.key("timestamp")?, now)?;
            r.write_dir(&repo.served())?;
            let state = if revoke_old { "revoked" } else { "retired" };
            out.print(
                format!(
                    "publisher role `{name}` is {state}: it keeps what it published and accepts nothing more
                     role `{new_role}` ({did}) publishes its apps from the next version on"
                ),
                &json!({"role": name, "state": state, "new_role": new_role, "did": did.to_string(),
                        "targets_version": r.targets().version}),
            );
        }
        RepoAction::RevokePublisher { repo, name, yank } => {
            let mut r = repo.load()?;
            r.revoke_publisher(&name, yank, &repo.key("targets")?, now)?;
            r.snapshot_and_timestamp(&repo.key("snapshot")?, &repo.key("timestamp")?, now)?;
            r.write_dir(&repo.served())?;
            let what = if yank { "its versions left the catalog" } else { "its versions stay listed, not installable" };
            out.print(
                format!("publisher role `{name}` is revoked: {what}"),
                &json!({"role": name, "state": "revoked", "yanked": yank, "targets_version": r.targets().version}),
            );
        }
        RepoAction::Add { repo, app, file, key } => add(&repo, &app, &file, &key, out)?,
        RepoAction::Sign { repo } => {
            let mut r = repo.load()?;
            r.snapshot_and_timestamp(&repo.key("snapshot")?, &repo.key("timestamp")?, now)?;
            r.write_dir(&repo.served())?;
            let (s, t) = (r.snapshot().version, r.timestamp().version);
            out.print(
                format!("snapshot v{s}, timestamp v{t}"),
                &json!({"snapshot_version": s, "timestamp_version": t}),
            );
        }
        RepoAction::Rotate { repo, role, new_keys, threshold } => rotate(&repo, &role, &new_keys, threshold, out)?,
        RepoAction::AddLog { repo, name } => add_log(&repo, &name, out)?,
        RepoAction::Timestamp { repo } => {
            let mut r = repo.load()?;
            r.refresh_timestamp(&repo.key("timestamp")?, now)?;
            r.write_dir(&repo.served())?;
            let t = r.timestamp();
            out.print(
                format!("timestamp v{} expires {}", t.version, t.expires),
                &json!({"timestamp_version": t.version, "expires": catalog::metadata::expires_format::format(&t.expires)}),
            );
        }
        RepoAction::Verify { dir, root } => return verify(&dir, root.as_deref(), out),
    }
    Ok(ExitCode::SUCCESS)
}

fn init(repo: &RepoDir, root_keys: u64, root_threshold: u64, log: Option<&str>, out: &Output) -> anyhow::Result<()> {
    if repo.served().join("metadata").exists() {
        return Err(user_error(format!("{} already holds a repository", repo.dir.display())));
    }
    if root_keys < 1 || root_threshold < 1 || root_threshold > root_keys {
        return Err(user_error(format!("--root-threshold {root_threshold} needs 1..={root_keys} root keys")));
    }
    // A bad log name is refused before any key is written (a refused init leaves nothing behind).
    let log_key = SigningKey::generate();
    if let Some(name) = log {
        catalog::tlog::NoteKey::log(name, log_key.verifying_key()).map_err(|e| user_error(format!("--log: {e}")))?;
    }
    let keys_dir = repo.keys_dir();
    std::fs::create_dir_all(&keys_dir).with_context(|| format!("creating {}", keys_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&keys_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let roots: Vec<SigningKey> = (0..root_keys).map(|_| SigningKey::generate()).collect();
    let (targets, snapshot, timestamp) = (SigningKey::generate(), SigningKey::generate(), SigningKey::generate());
    for (i, k) in roots.iter().enumerate() {
        catalog::keyfile::write_new(&keys_dir.join(format!("root-{}.key", i + 1)), k)?;
    }
    catalog::keyfile::write_new(&keys_dir.join("targets.key"), &targets)?;
    catalog::keyfile::write_new(&keys_dir.join("snapshot.key"), &snapshot)?;
    catalog::keyfile::write_new(&keys_dir.join("timestamp.key"), &timestamp)?;
    if log.is_some() {
        catalog::keyfile::write_new(&keys_dir.join("log.key"), &log_key)?;
    }
    let init = InitKeys {
        root: roots.iter().collect(),
        root_threshold,
        targets: &targets,
        snapshot: &snapshot,
        timestamp: &timestamp,
        log: log.map(|name| (name, &log_key)),
    };
    let mut r = Repository::create(&init, Utc::now(), Expiry::default())?;
    r.write_dir(&repo.served())?;
    let log_vkey = r.root().log()?.map(|l| l.to_vkey());
    let root_file = repo.served().join("metadata/1.root.json");
    let sig = crate::commands::sign::sign_file(&roots[0], &root_file, Some("archy bootstrap root v1".into()))?;
    let minisign_key = catalog::minisign::public_key_base64(&roots[0]);
    out.print(
        format!(
            "created repository {}\nkeys in {} (move root-*.key offline)\nbootstrap root: {} (minisign: {})\nroot minisign public key: {minisign_key}{}",
            repo.served().display(),
            keys_dir.display(),
            root_file.display(),
            sig.display(),
            log_vkey.as_ref().map(|v| format!("\ntransparency log: {v} (checkpoints at /log/checkpoint)")).unwrap_or_default()
        ),
        &json!({"repository": repo.served(), "keys": keys_dir, "root": root_file, "root_minisig": sig, "root_minisign_public_key": minisign_key, "log": log_vkey}),
    );
    Ok(())
}

fn add(repo: &RepoDir, app: &Path, files: &[PathBuf], key: &KeyPath, out: &Output) -> anyhow::Result<()> {
    let now = Utc::now();
    let publisher = key.load()?;
    let manifest = crate::commands::app::load(app)?;
    let mut r = repo.load()?;
    let role = r.role_of_did(&publisher.did()).ok_or_else(|| {
        user_error(format!("{} is not a publisher of this repository; run `archy repo add-publisher`", publisher.did()))
    })?;
    let envelope = catalog::envelope::SignedEnvelope::sign(&manifest, &publisher)?;
    let bytes = envelope.to_bytes();
    envelope.verify(&Limits::default())?;
    let path = catalog::repo::envelope_target_path(manifest.id.as_str(), &manifest.version);
    let mut added = vec![path.clone()];
    let archives: Vec<&str> = manifest
        .containers
        .iter()
        .filter_map(|c| match &c.image {
            catalog::manifest::Image::Archive { target, .. } => Some(target.as_str()),
            catalog::manifest::Image::Pinned(_) => None,
        })
        .collect();
    let mut batch = Vec::new();
    for file in files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let archive = archives
            .iter()
            .find(|t| t.rsplit('/').next() == Some(name.as_str()))
            .ok_or_else(|| user_error(format!("{}: the manifest names no archive image `{name}`", file.display())))?;
        if archive.split('/').next() != Some(manifest.id.as_str()) {
            return Err(user_error(format!("archive target `{archive}` must be `{}/<file>`", manifest.id)));
        }
        let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let target = catalog::repo::image_target_path(archive);
        batch.push((target.clone(), data, "image".to_owned()));
        added.push(target);
    }
    // The manifest first: a refusal names it rather than a file that goes with it.
    batch.insert(0, (path.clone(), bytes, "manifest".to_owned()));
    if let Some((target, file)) = crate::commands::publish::icon(&manifest, app)? {
        let data = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        batch.push((target.clone(), data, "icon".to_owned()));
        added.push(target);
    }
    r.add_publisher_targets(&role, batch, &publisher, now)?;
    r.snapshot_and_timestamp(&repo.key("snapshot")?, &repo.key("timestamp")?, now)?;
    r.write_dir(&repo.served())?;
    out.print(
        format!("added {} to role `{role}`; snapshot v{}", added.join(", "), r.snapshot().version),
        &json!({"role": role, "targets": added, "snapshot_version": r.snapshot().version}),
    );
    Ok(())
}

fn rotate(repo: &RepoDir, role: &str, new_key_files: &[PathBuf], threshold: u64, out: &Output) -> anyhow::Result<()> {
    let now = Utc::now();
    let mut r = repo.load()?;
    let old_roots = repo.root_keys()?;
    let new_keys: Vec<SigningKey> = if new_key_files.is_empty() {
        (0..threshold).map(|_| SigningKey::generate()).collect()
    } else {
        new_key_files.iter().map(|p| catalog::keyfile::read(p)).collect::<Result<_, _>>()?
    };
    let publics: Vec<_> = new_keys.iter().map(SigningKey::public_key).collect();
    let mut signers: Vec<&SigningKey> = old_roots.iter().collect();
    if role == "root" {
        signers.extend(new_keys.iter());
    }
    r.rotate(role, &publics, threshold, &signers, now)?;
    // Store generated keys, retire replaced ones (kept, renamed, never deleted).
    let keys_dir = repo.keys_dir();
    let version = r.root().version;
    let retire = |name: &str| -> anyhow::Result<()> {
        let from = keys_dir.join(name);
        std::fs::rename(&from, keys_dir.join(format!("{name}.retired-v{version}")))
            .with_context(|| format!("retiring {}", from.display()))
    };
    match role {
        "root" => {
            for entry in std::fs::read_dir(&keys_dir)?.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("root-") && name.ends_with(".key") {
                    retire(&name)?;
                }
            }
            for (i, k) in new_keys.iter().enumerate() {
                catalog::keyfile::write_new(&keys_dir.join(format!("root-{}.key", i + 1)), k)?;
            }
        }
        _ => {
            retire(&format!("{role}.key"))?;
            let first = new_keys.first().ok_or_else(|| user_error("no new key"))?;
            catalog::keyfile::write_new(&keys_dir.join(format!("{role}.key")), first)?;
        }
    }
    if role == "targets" {
        r.resign_targets(&repo.key("targets")?, now)?;
    }
    r.snapshot_and_timestamp(&repo.key("snapshot")?, &repo.key("timestamp")?, now)?;
    r.write_dir(&repo.served())?;
    out.print(
        format!("rotated {role}: root v{version}, threshold {threshold}"),
        &json!({"role": role, "root_version": version, "keyids": publics.iter().map(|k| k.key_id()).collect::<Vec<_>>()}),
    );
    Ok(())
}

fn add_log(repo: &RepoDir, name: &str, out: &Output) -> anyhow::Result<()> {
    let now = Utc::now();
    let mut r = repo.load()?;
    if let Some(log) = r.root().log()? {
        return Err(user_error(format!("the root already names the transparency log `{}`", log.name())));
    }
    // A key left by an attempt that stopped before the root was written is used again.
    let key_file = repo.keys_dir().join("log.key");
    let key = if key_file.exists() { repo.key("log")? } else { SigningKey::generate() };
    catalog::tlog::NoteKey::log(name, key.verifying_key()).map_err(|e| user_error(format!("--name: {e}")))?;
    let roots = repo.root_keys()?;
    let signers: Vec<&SigningKey> = roots.iter().collect();
    let log = r.start_log(name, &key, &signers, now)?;
    r.snapshot_and_timestamp(&repo.key("snapshot")?, &repo.key("timestamp")?, now)?;
    if !key_file.exists() {
        catalog::keyfile::write_new(&key_file, &key)?;
    }
    r.write_dir(&repo.served())?;
    let version = r.root().version;
    out.print(
        format!(
            "root v{version} names the transparency log: {}
every timestamp from now on is logged (checkpoints at /log/checkpoint)",
            log.to_vkey()
        ),
        &json!({"root_version": version, "log": log.to_vkey()}),
    );
    Ok(())
}

fn verify(dir: &Path, root: Option<&Path>, out: &Output) -> anyhow::Result<ExitCode> {
    let served = dir.join("repository");
    let root_path = root.map(Path::to_owned).unwrap_or_else(|| served.join("metadata/1.root.json"));
    let root_bytes = std::fs::read(&root_path).with_context(|| format!("reading {}", root_path.display()))?;
    let mut updater =
        Updater::new(DirRemote::new(&served), MemoryStore::with_root(root_bytes), Utc::now(), Config::default())?;
    updater.refresh()?;
    let snapshot = updater.trusted_snapshot().cloned().ok_or_else(|| user_error("no snapshot"))?;
    let mut paths: Vec<String> =
        updater.trusted_targets().map(|t| t.targets.keys().cloned().collect()).unwrap_or_default();
    let repo = Repository::load(&served, Expiry::default())?;
    for file in snapshot.meta.keys() {
        let role = file.strip_suffix(".json").unwrap_or(file);
        if let Some(t) = repo.delegated(role) {
            paths.extend(t.targets.keys().cloned());
        }
    }
    let mut apps = Vec::new();
    for path in &paths {
        let target = updater
            .target_info(path)?
            .ok_or_else(|| user_error(format!("{path} is listed but not reachable through its delegation")))?;
        let bytes = updater.download_target(&target)?;
        if path.starts_with("apps/") {
            let verified = catalog::envelope::SignedEnvelope::from_slice(&bytes)
                .and_then(|e| e.verify(&Limits::default()))
                .and_then(|v| v.check_catalog_entry(&target).map(|()| v))
                .with_context(|| format!("envelope {path}"))?;
            let m = verified.manifest();
            apps.push(json!({"id": m.id.as_str(), "version": m.version.to_string(), "publisher": m.publisher.to_string(), "role": target.role()}));
        }
    }
    let root_v = updater.trusted_root().version;
    let ts_v = updater.trusted_timestamp().map_or(0, |t| t.version);
    let mut human = format!(
        "ok: root v{root_v}, timestamp v{ts_v}, snapshot v{}, {} target(s) verified",
        snapshot.version,
        paths.len()
    );
    for app in &apps {
        human.push_str(
            &format!("\n  {} {} by {} (role {})", app["id"], app["version"], app["publisher"], app["role"])
                .replace('"', ""),
        );
    }
    out.print(
        human,
        &json!({"root_version": root_v, "timestamp_version": ts_v, "snapshot_version": snapshot.version, "targets": paths, "apps": apps}),
    );
    Ok(ExitCode::SUCCESS)
}
