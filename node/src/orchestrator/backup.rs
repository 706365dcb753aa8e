//! Backups of one app, to move it to another node or keep it off the machine:
//! `archy-node backup <app> FILE` and `archy-node restore --backup FILE`.
//!
//! The file is a tar (0600, written whole or not at all) holding
//! - `archy-backup.json`: app, version, when, the volumes and the names of the secrets;
//! - `envelope.archy.json`: the publisher's signed envelope of the installed version, verified
//!   again on restore (the backup carries no trust of its own);
//! - `secrets/<name>`: the generated secrets (the data was made with them);
//! - `volumes/<volume>.tar`: each volume, as a snapshot copies it (owners and modes kept).
//!
//! A running app is stopped for the copy and started again. Restoring refuses an app this node
//! has installed, or has data or secrets of; it takes the images from the node's sources as an
//! install does, writes the secrets (0600) and volumes, then installs the verified envelope,
//! which finds them.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use catalog::envelope::{SignedEnvelope, VerifiedManifest};
use catalog::manifest::{Limits, Name};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::lifecycle::InstallReport;
use super::secrets::SecretStore;
use super::snapshot::{Copy, Reason, VolumeCopy};
use super::state::create_private_dir;
use super::{Error, LABEL_NODE, Orchestrator};
use catalog::manifest::Namespace;

/// The format name in `archy-backup.json`.
const FORMAT: &str = "archy-app-backup-1";
/// Largest `archy-backup.json`, envelope or secret read from a backup.
const SMALL_FILE_LIMIT: u64 = 4 << 20;

/// `archy-backup.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupInfo {
    /// [`FORMAT`].
    pub format: String,
    /// The app.
    pub app: String,
    /// Its version.
    pub version: semver::Version,
    /// When the copy was made.
    pub taken_at: DateTime<Utc>,
    /// The volumes, each in `volumes/<file>`.
    pub volumes: Vec<VolumeCopy>,
    /// The generated secrets, each in `secrets/<name>`.
    pub secrets: Vec<String>,
}

impl BackupInfo {
    /// Bytes of the volumes' copies.
    pub fn bytes(&self) -> u64 {
        self.volumes.iter().map(|v| v.bytes).sum()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

impl Orchestrator {
    /// Writes a backup of installed `app` to `file` (which must not exist).
    pub async fn backup(&self, app: &str, file: &Path) -> Result<BackupInfo, Error> {
        if file.exists() {
            return Err(Error::NotAvailable(format!("{} exists; a backup never replaces a file", file.display())));
        }
        let (desired, snapshot) = self.copy_now(app, Reason::Manual, Copy::Tar).await?;
        if let Some(skipped) = snapshot.as_ref().and_then(|s| s.volumes.iter().find(|v| v.skipped.is_some())) {
            if let Some(s) = &snapshot {
                let _ = std::fs::remove_dir_all(self.snapshot_path(s)?);
            }
            return Err(Error::NotAvailable(format!(
                "volume `{}` of `{app}` is {}: raise snapshot_max_mib in config.toml to back it up",
                skipped.volume,
                skipped.skipped.as_deref().unwrap_or("not copied")
            )));
        }
        let m = desired.manifest.manifest();
        let store =
            SecretStore::with_ledger(self.state.secrets_dir(app)?, self.state.app_dir(app)?.join("secrets.generated"));
        let secrets = store.read_all(&m.secrets)?;
        let info = BackupInfo {
            format: FORMAT.into(),
            app: app.to_owned(),
            version: desired.record.version.clone(),
            taken_at: snapshot.as_ref().map_or_else(Utc::now, |s| s.taken_at),
            volumes: snapshot.as_ref().map(|s| s.volumes.clone()).unwrap_or_default(),
            secrets: secrets.keys().cloned().collect(),
        };
        let folder = match &snapshot {
            Some(s) => Some(self.snapshot_path(s)?),
            None => None,
        };
        let json = serde_json::to_vec_pretty(&info).map_err(|e| Error::Internal(e.to_string()))?;
        let envelope = desired.manifest.envelope().to_bytes();
        let values: Vec<(String, Vec<u8>)> =
            secrets.iter().map(|(k, v)| (k.clone(), v.expose().as_bytes().to_vec())).collect();
        let volumes = info.volumes.clone();
        let target = file.to_owned();
        let written = tokio::task::spawn_blocking(move || {
            write_backup(&target, &json, &envelope, &values, folder.as_deref(), &volumes)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        // The snapshot was only the way into the file.
        if let Some(s) = &snapshot {
            let _ = std::fs::remove_dir_all(self.snapshot_path(s)?);
        }
        written?;
        Ok(info)
    }

    /// Restores the backup in `file` on this node and installs the app from it.
    pub async fn restore_backup(&self, file: &Path) -> Result<(BackupInfo, InstallReport), Error> {
        let work = self.state.tmp_dir()?.join(format!("restore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        create_private_dir(&work)?;
        let result = self.restore_backup_from(file, &work).await;
        let _ = std::fs::remove_dir_all(&work);
        result
    }

    async fn restore_backup_from(&self, file: &Path, work: &Path) -> Result<(BackupInfo, InstallReport), Error> {
        let (file_owned, work_owned) = (file.to_owned(), work.to_owned());
        let (info, envelope, secrets) = tokio::task::spawn_blocking(move || read_backup(&file_owned, &work_owned))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let bad = |why: String| Error::NotAvailable(format!("{}: not a usable archy backup: {why}", file.display()));
        // The envelope is checked as any other: the publisher's signature over the manifest.
        let manifest: VerifiedManifest = SignedEnvelope::from_slice(&envelope)
            .and_then(|e| e.verify(&Limits::default()))
            .map_err(|e| bad(format!("envelope.archy.json does not verify: {e}")))?;
        let m = manifest.manifest().clone();
        if m.id.as_str() != info.app || m.version != info.version {
            return Err(bad(format!(
                "archy-backup.json names {} {}, the envelope {} {}",
                info.app, info.version, m.id, m.version
            )));
        }
        let app = info.app.clone();
        let _guard = self.lock().await?;
        if self.state.load(&app)?.is_some() {
            return Err(Error::NotAvailable(format!(
                "app `{app}` is installed on this node; a backup is restored only where it is not \
                 (`archy-node uninstall {app} --purge` first, if its data here may go)"
            )));
        }
        let observed = self.observe(Some(&app)).await?;
        let secrets_dir = self.state.secrets_dir(&app)?;
        let leftover_secrets = std::fs::read_dir(&secrets_dir).map(|d| d.count() > 0).unwrap_or(false);
        if !observed.volumes.is_empty() || leftover_secrets {
            let names: Vec<&str> = observed.volumes.iter().map(|v| v.name.as_str()).collect();
            return Err(Error::NotAvailable(format!(
                "this node keeps data of `{app}` from an earlier install (volumes: {}; secrets in {}): restoring \
                 would mix the two; `archy-node uninstall {app} --purge` deletes them first",
                if names.is_empty() { "none".into() } else { names.join(", ") },
                secrets_dir.display()
            )));
        }
        // Everything that can refuse does so before anything is written: the node's policy
        // and ports, the names in the backup, the engine names (one another app or node holds
        // is never filled), the images.
        self.preflight(&m)?;
        if let Some((name, _)) = secrets.iter().find(|(name, _)| !m.secrets.iter().any(|s| s.name.as_str() == name)) {
            return Err(bad(format!("secret `{name}` is not one the manifest declares")));
        }
        let plan = catalog::manifest::render_in(&m, &self.config().prefix());
        let mut fills = Vec::new();
        for copy in &info.volumes {
            let Some(v) = plan.volumes.iter().find(|v| v.volume.as_str() == copy.volume && v.shared.is_none()) else {
                return Err(bad(format!("volume `{}` is not one of the app's own volumes", copy.volume)));
            };
            let Some((image, target)) = Self::copy_route(&plan, v) else { continue };
            self.claim(Namespace::Volumes, &v.name, &app, None).await?;
            fills.push((v, image, target, work.join("volumes").join(&copy.file)));
        }
        self.ensure_images(&m).await?;

        // From here on things are written; if the app does not end up installed, they are
        // taken back, so a refused or failed restore leaves this node as it was.
        let mut report = InstallReport { installed: Vec::new(), already_installed: false };
        let written: Result<(), Error> = async {
            let store =
                SecretStore::with_ledger(secrets_dir.clone(), self.state.app_dir(&app)?.join("secrets.generated"));
            for (name, value) in secrets {
                store.put(&name, value)?;
            }
            for (v, image, target, file) in &fills {
                let mut labels: std::collections::HashMap<String, String> =
                    v.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                labels.insert(LABEL_NODE.into(), self.node_id.clone());
                self.engine.create_volume(&v.name, labels).await?;
                self.fill_volume(&app, image, &v.name, target, file).await?;
            }
            self.install_locked(manifest, &mut Vec::new(), &mut report).await
        }
        .await;
        if let Err(e) = written {
            if self.state.load(&app)?.is_none() {
                for (v, ..) in &fills {
                    let _ = self.engine.remove_volume(&v.name).await;
                }
                let _ = self.state.purge(&app);
            }
            return Err(e);
        }
        Ok((info, report))
    }
}

/// Writes the backup tar to `file` through `<file>.part` (0600, fsynced, renamed).
fn write_backup(
    file: &Path,
    json: &[u8],
    envelope: &[u8],
    secrets: &[(String, Vec<u8>)],
    folder: Option<&Path>,
    volumes: &[VolumeCopy],
) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let part = PathBuf::from(format!("{}.part", file.display()));
    let out = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&part).map_err(io(&part))?;
    let written = (|| -> std::io::Result<std::fs::File> {
        let mut tar = tar::Builder::new(out);
        let mut add = |name: &str, bytes: &[u8], mode: u32| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(mode);
            header.set_mtime(0);
            header.set_cksum();
            tar.append_data(&mut header, name, bytes)
        };
        add("archy-backup.json", json, 0o600)?;
        add("envelope.archy.json", envelope, 0o600)?;
        for (name, value) in secrets {
            add(&format!("secrets/{name}"), value, 0o600)?;
        }
        if let Some(folder) = folder {
            for v in volumes {
                let mut f = std::fs::File::open(folder.join(&v.file))?;
                tar.append_file(format!("volumes/{}", v.file), &mut f)?;
            }
        }
        let file = tar.into_inner()?;
        file.sync_all()?;
        Ok(file)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&part);
        return Err(io(&part)(e));
    }
    std::fs::rename(&part, file).map_err(io(file))
}

/// What a backup holds: its info, the envelope's bytes and the secrets; the volumes' tars are
/// unpacked into `work/volumes/`. Only the names the format has are accepted (a secret or volume
/// file name must be a manifest name), as regular files, so a crafted backup writes nowhere else.
type Unpacked = (BackupInfo, Vec<u8>, Vec<(String, String)>);

fn read_backup(file: &Path, work: &Path) -> Result<Unpacked, Error> {
    let bad = |why: String| Error::NotAvailable(format!("{}: not a usable archy backup: {why}", file.display()));
    let f = std::fs::File::open(file).map_err(io(file))?;
    let mut archive = tar::Archive::new(f);
    let (mut info, mut envelope, mut secrets) = (None, None, Vec::new());
    create_private_dir(&work.join("volumes"))?;
    for entry in archive.entries().map_err(io(file))? {
        let mut entry = entry.map_err(io(file))?;
        let path = entry.path().map_err(io(file))?.to_string_lossy().into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad(format!("`{path}` is not a regular file")));
        }
        let small = |entry: &mut tar::Entry<'_, std::fs::File>| -> Result<Vec<u8>, Error> {
            let mut bytes = Vec::new();
            entry.by_ref().take(SMALL_FILE_LIMIT + 1).read_to_end(&mut bytes).map_err(io(file))?;
            if bytes.len() as u64 > SMALL_FILE_LIMIT {
                return Err(bad(format!("`{path}` is larger than {SMALL_FILE_LIMIT} bytes")));
            }
            Ok(bytes)
        };
        if path == "archy-backup.json" {
            let parsed: BackupInfo =
                serde_json::from_slice(&small(&mut entry)?).map_err(|e| bad(format!("archy-backup.json: {e}")))?;
            if parsed.format != FORMAT {
                return Err(bad(format!("format `{}` (this node reads `{FORMAT}`)", parsed.format)));
            }
            info = Some(parsed);
        } else if path == "envelope.archy.json" {
            envelope = Some(small(&mut entry)?);
        } else if let Some(name) = path.strip_prefix("secrets/") {
            name.parse::<Name>().map_err(|e| bad(format!("`{path}`: {e}")))?;
            let value = String::from_utf8(small(&mut entry)?).map_err(|_| bad(format!("`{path}` is not text")))?;
            secrets.push((name.to_owned(), value));
        } else if let Some(tar_name) = path.strip_prefix("volumes/") {
            let volume = tar_name.strip_suffix(".tar").ok_or_else(|| bad(format!("`{path}` is not a .tar")))?;
            volume.parse::<Name>().map_err(|e| bad(format!("`{path}`: {e}")))?;
            let to = work.join("volumes").join(tar_name);
            let mut out = std::fs::File::create(&to).map_err(io(&to))?;
            std::io::copy(&mut entry, &mut out).map_err(io(&to))?;
        } else {
            return Err(bad(format!("unexpected entry `{path}`")));
        }
    }
    let info = info.ok_or_else(|| bad("no archy-backup.json".into()))?;
    let envelope = envelope.ok_or_else(|| bad("no envelope.archy.json".into()))?;
    for v in &info.volumes {
        if v.skipped.is_some() || v.file != format!("{}.tar", v.volume) || !work.join("volumes").join(&v.file).is_file()
        {
            return Err(bad(format!("volume `{}`'s copy is missing", v.volume)));
        }
    }
    for name in &info.secrets {
        if !secrets.iter().any(|(n, _)| n == name) {
            return Err(bad(format!("secret `{name}` is missing")));
        }
    }
    Ok((info, envelope, secrets))
}
