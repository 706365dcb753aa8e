//! Volume snapshots: copies of an app's volumes that archy owns, under
//! `<data>/orchestrator/snapshots/<app>/<id>/` (0700; one tar per volume, 0600, and
//! `snapshot.json` naming the app, its version, when and why).
//!
//! - Before an update touches an app, its containers are stopped and its volumes copied
//!   (`before_update`). If the new version fails, what it wrote is set aside as a snapshot of its
//!   own (`failed_update`, kept until pruned: the rollback's message names it), and the volumes
//!   are put back as they were before the update.
//! - `archy-node restore <app> <id>` puts a snapshot back on a stopped app; the data it replaces
//!   is kept as a snapshot first (`before_restore`).
//! - The newest `snapshots_keep` snapshots of each app are kept (config, default 3); purging an
//!   app deletes its snapshots.
//! - A volume whose copy grows past `snapshot_max_mib` (config, default 4096) is not copied: the
//!   snapshot records it as skipped, a rollback leaves it as the failed version left it, and the
//!   rollback's message says so.
//!
//! Copies go through the engine's archive API (`GET`/`PUT /containers/{id}/archive`) of a
//! helper container that mounts the volume and never starts, made from the image of an app
//! container that mounts it, so no helper image is needed and the same code works with Podman
//! and with engines whose volumes the node cannot see on disk. Owners and modes travel in the
//! tar. To restore, the volume is removed and made again (so nothing the failed version created
//! stays), then the tar is extracted into it. A shared volume belongs to several apps and is not
//! copied.
//!
//! A snapshot is written into `<id>.part/` and renamed into place once complete, so a crash
//! never leaves a snapshot that looks whole; leftovers are removed by the next prune.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig, MountType};
use catalog::manifest::{Image, LABEL_APP, LABEL_MANAGED, LABEL_ROLE, Mount, RenderPlan, VolumePlan};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::facts::HostFacts;
use super::reconcile::{Desired, Observed, app_volume};
use super::state::{RunState, create_private_dir};
use super::{Error, LABEL_NODE, Orchestrator};

/// How many snapshots of each app are kept when `snapshots_keep` is not set.
pub const DEFAULT_KEEP: usize = 3;

/// The largest volume copied into a snapshot when `snapshot_max_mib` is not set: a media
/// library of terabytes is not copied before every update.
pub const DEFAULT_MAX_MIB: u64 = 4096;

/// The `archy.role` of helper containers and clone volumes: a value no manifest container or
/// volume name can take, so neither is ever taken for the app's own.
const HELPER_ROLE: &str = ".snapshot";

/// Label naming the snapshot a clone volume belongs to.
const LABEL_SNAPSHOT: &str = "archy.snapshot";

/// How a snapshot copies a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Copy {
    /// A reflink clone into an engine volume where the filesystem can make one (no data is
    /// copied), else a tar through the engine.
    CloneOrTar,
    /// Always a tar (a backup needs the bytes).
    Tar,
}

/// Why a snapshot was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Before an update to `to` touched the app.
    BeforeUpdate {
        /// The version the update went to.
        to: semver::Version,
    },
    /// What a failed update to `to` had written, set aside when its rollback restored the data.
    FailedUpdate {
        /// The version that failed.
        to: semver::Version,
    },
    /// What a restore of snapshot `restored` replaced.
    BeforeRestore {
        /// The snapshot put back.
        restored: String,
    },
    /// Asked for by the operator.
    Manual,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BeforeUpdate { to } => write!(f, "before the update to {to}"),
            Self::FailedUpdate { to } => write!(f, "written by the failed update to {to}"),
            Self::BeforeRestore { restored } => write!(f, "replaced by the restore of {restored}"),
            Self::Manual => f.write_str("taken by the operator"),
        }
    }
}

/// One volume's copy in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeCopy {
    /// The volume's name in the manifest.
    pub volume: String,
    /// The engine volume it was copied from.
    pub engine_volume: String,
    /// The mount point it was copied through (the tar names its last component first).
    pub target: String,
    /// The tar file in the snapshot folder.
    pub file: String,
    /// Its size.
    pub bytes: u64,
    /// Why the volume was not copied (larger than `snapshot_max_mib`); a restore leaves it as
    /// it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The engine volume holding the copy as a reflink clone, when the volume's filesystem
    /// could clone it (then there is no tar file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_volume: Option<String>,
}

/// A snapshot of an app's volumes (`snapshot.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `<UTC time>-<version>`, unique per app; sorts by time.
    pub id: String,
    /// The app.
    pub app: String,
    /// The app's version whose data this is.
    pub version: semver::Version,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// Why.
    pub reason: Reason,
    /// The volumes copied.
    pub volumes: Vec<VolumeCopy>,
}

impl Snapshot {
    /// Bytes of all its copies.
    pub fn bytes(&self) -> u64 {
        self.volumes.iter().map(|v| v.bytes).sum()
    }
}

impl Orchestrator {
    fn snapshots_dir(&self, app: &str) -> Result<PathBuf, Error> {
        let app = app
            .parse::<catalog::manifest::AppId>()
            .map_err(|e| Error::BadAppId { id: app.to_owned(), reason: e.to_string() })?;
        Ok(self.state.root().join("snapshots").join(app.as_str()))
    }

    /// The snapshots of `app`, newest first.
    pub fn snapshots(&self, app: &str) -> Result<Vec<Snapshot>, Error> {
        let dir = self.snapshots_dir(app)?;
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(source) => return Err(Error::Io { path: dir, source }),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".part") {
                continue;
            }
            // A damaged snapshot is left alone and reported, never a reason for an update or a
            // listing to fail.
            let file = entry.path().join("snapshot.json");
            let read = std::fs::read(&file)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Snapshot>(&b).map_err(|e| e.to_string()));
            match read {
                Ok(snapshot) => out.push(snapshot),
                Err(why) => tracing::warn!(file = %file.display(), %why, "skipping a snapshot that cannot be read"),
            }
        }
        out.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(out)
    }

    /// Snapshot `id` of `app`.
    pub fn snapshot_of(&self, app: &str, id: &str) -> Result<Snapshot, Error> {
        self.snapshots(app)?.into_iter().find(|s| s.id == id).ok_or_else(|| {
            Error::NotAvailable(format!("app `{app}` has no snapshot `{id}` (`archy-node snapshots {app}` lists them)"))
        })
    }

    /// The folder of a snapshot.
    pub fn snapshot_path(&self, snapshot: &Snapshot) -> Result<PathBuf, Error> {
        Ok(self.snapshots_dir(&snapshot.app)?.join(&snapshot.id))
    }

    /// The image and mount point through which `v` is copied: those of the first container of
    /// the plan that mounts it.
    pub(crate) fn copy_route<'a>(plan: &'a RenderPlan, v: &VolumePlan) -> Option<(&'a Image, &'a str)> {
        plan.containers.iter().find_map(|c| {
            c.mounts.iter().find_map(|m| match m {
                Mount::Volume { source, target, .. } if *source == v.name => Some((&c.image, target.as_str())),
                _ => None,
            })
        })
    }

    /// A created (never started) container of `app` that mounts `volume` at `target`.
    pub(crate) async fn helper(&self, app: &str, image: &Image, volume: &str, target: &str) -> Result<String, Error> {
        let image = match image {
            Image::Pinned(p) => p.to_string(),
            Image::Archive { image_id, .. } => image_id.to_string(),
        };
        let labels = HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_APP.to_owned(), app.to_owned()),
            (LABEL_NODE.to_owned(), self.node_id.clone()),
            (LABEL_ROLE.to_owned(), HELPER_ROLE.to_owned()),
        ]);
        let body = ContainerCreateBody {
            image: Some(image),
            // Never started; a command only because an image may have none.
            cmd: Some(vec!["archy-snapshot-helper".into()]),
            labels: Some(labels),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                mounts: Some(vec![bollard::models::Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(volume.to_owned()),
                    target: Some(target.to_owned()),
                    ..Default::default()
                }]),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.engine.create_unnamed(body).await
    }

    /// Copies the volumes of `desired`'s app (as `observed` holds them) into a new snapshot. The
    /// app's containers must not be running (the caller stops them). `None` when the app has no
    /// volume to copy.
    pub(crate) async fn take_snapshot(
        &self,
        desired: &Desired,
        observed: &Observed,
        reason: Reason,
        how: Copy,
    ) -> Result<Option<Snapshot>, Error> {
        let app = desired.record.app.as_str();
        let version = desired.record.version.clone();
        let mut routes = Vec::new();
        for v in desired.plan.volumes.iter().filter(|v| v.shared.is_none()) {
            if let (Some(found), Some((image, target))) =
                (app_volume(app, v, observed), Self::copy_route(&desired.plan, v))
            {
                routes.push((v.volume.to_string(), found, image, target));
            }
        }
        if routes.is_empty() {
            return Ok(None);
        }
        let dir = self.snapshots_dir(app)?;
        create_private_dir(&dir)?;
        let taken_at = Utc::now();
        let mut id = format!("{}-{version}", taken_at.format("%Y%m%dT%H%M%S%3fZ"));
        while dir.join(&id).exists() || dir.join(format!("{id}.part")).exists() {
            id.push('x');
        }
        let part = dir.join(format!("{id}.part"));
        create_private_dir(&part)?;
        let mut volumes = Vec::new();
        let limit = self.config().snapshot_max_mib.unwrap_or(DEFAULT_MAX_MIB).saturating_mul(1 << 20);
        for (volume, found, image, target) in routes {
            let engine_volume = found.name.clone();
            if how == Copy::CloneOrTar
                && let Some((clone, bytes)) = self.try_clone(app, found, &version, &id).await?
            {
                volumes.push(VolumeCopy {
                    volume,
                    engine_volume,
                    target: target.to_owned(),
                    file: String::new(),
                    bytes,
                    skipped: None,
                    clone_volume: Some(clone),
                });
                continue;
            }
            let file = format!("{volume}.tar");
            let helper = self.helper(app, image, &engine_volume, target).await?;
            let copied = self.engine.download_to_file(&helper, target, &part.join(&file), limit).await;
            self.engine.remove(&helper).await?;
            let (bytes, skipped) = match copied? {
                Some(bytes) => (bytes, None),
                None => {
                    let why = format!("larger than snapshot_max_mib = {} MiB", limit >> 20);
                    tracing::warn!(%app, %volume, "volume not copied into the snapshot: {why}");
                    (0, Some(why))
                }
            };
            volumes.push(VolumeCopy {
                volume,
                engine_volume,
                target: target.to_owned(),
                file,
                bytes,
                skipped,
                clone_volume: None,
            });
        }
        let snapshot = Snapshot { id: id.clone(), app: app.to_owned(), version, taken_at, reason, volumes };
        let json = serde_json::to_vec_pretty(&snapshot).map_err(|e| Error::Internal(e.to_string()))?;
        super::state::write_atomic(&part.join("snapshot.json"), &json)?;
        let done = dir.join(&id);
        std::fs::rename(&part, &done).map_err(|source| Error::Io { path: done.clone(), source })?;
        sync_dir(&dir)?;
        tracing::info!(%app, snapshot = %id, bytes = snapshot.bytes(), "volumes copied");
        Ok(Some(snapshot))
    }

    /// Puts `snapshot` back into the volumes of `desired`'s app: each volume is removed, made
    /// again with its labels, and filled from the copy. The app's containers must be gone (the
    /// caller removes them; the next converge creates them again).
    pub(crate) async fn restore_snapshot(&self, desired: &Desired, snapshot: &Snapshot) -> Result<(), Error> {
        let app = desired.record.app.as_str();
        let folder = self.snapshot_path(snapshot)?;
        for copy in snapshot.volumes.iter().filter(|c| c.skipped.is_none()) {
            let Some(v) = desired.plan.volumes.iter().find(|v| v.volume.as_str() == copy.volume) else {
                tracing::warn!(%app, volume = %copy.volume, "the installed version has no such volume; not restored");
                continue;
            };
            let Some((image, _)) = Self::copy_route(&desired.plan, v) else { continue };
            self.engine.remove_volume(&copy.engine_volume).await?;
            let mut labels: HashMap<String, String> = v.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            labels.insert(LABEL_NODE.into(), self.node_id.clone());
            let made = self.engine.create_volume(&copy.engine_volume, labels).await?;
            if let Some(clone) = &copy.clone_volume {
                let from = self.engine.volume_mountpoint(clone).await?;
                clone_tree(Path::new(&from), Path::new(&made.mountpoint)).await.map_err(|e| {
                    Error::Internal(format!("putting volume {} back from its clone {clone}: {e}", copy.engine_volume))
                })?;
                continue;
            }
            self.fill_volume(app, image, &copy.engine_volume, &copy.target, &folder.join(&copy.file)).await?;
        }
        tracing::info!(%app, snapshot = %snapshot.id, "volumes restored");
        Ok(())
    }

    /// Extracts the tar `file` (copied through mount point `target`) into engine volume
    /// `volume`, through a helper container of `app` made from `image`.
    pub(crate) async fn fill_volume(
        &self,
        app: &str,
        image: &Image,
        volume: &str,
        target: &str,
        file: &Path,
    ) -> Result<(), Error> {
        let helper = self.helper(app, image, volume, target).await?;
        // The tar names the mount point's last component first: extract it into the parent.
        let parent = match target.rsplit_once('/') {
            Some(("", _)) | None => "/",
            Some((parent, _)) => parent,
        };
        let filled = self.engine.upload_file(&helper, parent, file).await;
        self.engine.remove(&helper).await?;
        filled
    }

    /// After a failed update: sets what the failed version (`failed`) wrote aside as a snapshot,
    /// removes its containers, and puts snapshot `id` back for `previous`. Returns the snapshot
    /// set aside.
    pub(crate) async fn put_data_back(
        &self,
        failed: &Desired,
        previous: &Desired,
        id: &str,
    ) -> Result<Option<Snapshot>, Error> {
        let app = failed.record.app.as_str();
        let before = self.snapshot_of(app, id)?;
        let observed = self.observe(Some(app)).await?;
        let mine: Vec<_> = observed.of_app(app).cloned().collect();
        for c in mine.iter().rev() {
            self.engine.stop(&c.id, 30).await?;
        }
        let kept = self
            .take_snapshot(
                failed,
                &observed,
                Reason::FailedUpdate { to: failed.record.version.clone() },
                Copy::CloneOrTar,
            )
            .await?;
        for c in &mine {
            self.engine.remove(&c.id).await?;
        }
        self.restore_snapshot(previous, &before).await?;
        Ok(kept)
    }

    /// Copies the volumes of installed `app` into a new snapshot now. A running app is stopped
    /// for the copy (so the copy is consistent) and started again.
    pub async fn snapshot(&self, app: &str) -> Result<Snapshot, Error> {
        let (_, taken) = self.copy_now(app, Reason::Manual, Copy::CloneOrTar).await?;
        let snapshot = taken.ok_or_else(|| Error::NotAvailable(format!("app `{app}` has no volume to copy")))?;
        self.prune_snapshots(app).await?;
        Ok(snapshot)
    }

    /// Stops installed `app`, copies its volumes, and starts it again if it should run.
    pub(crate) async fn copy_now(
        &self,
        app: &str,
        reason: Reason,
        how: Copy,
    ) -> Result<(Desired, Option<Snapshot>), Error> {
        let _guard = self.lock().await?;
        let desired = self.installed(app)?;
        let observed = self.observe(Some(app)).await?;
        let mine: Vec<_> = observed.of_app(app).cloned().collect();
        for c in mine.iter().rev() {
            self.engine.stop(&c.id, 30).await?;
        }
        let taken = self.take_snapshot(&desired, &observed, reason, how).await;
        if desired.record.run == RunState::Running {
            let observed = self.observe(Some(app)).await?;
            self.converge(&desired, &observed, &HostFacts::detect(&self.config().host), true).await?;
        }
        Ok((desired, taken?))
    }

    /// Puts snapshot `id` back into the volumes of stopped app `app`. The data it replaces is
    /// kept as a snapshot first (returned). The app stays stopped.
    pub async fn restore(&self, app: &str, id: &str) -> Result<Option<Snapshot>, Error> {
        let _guard = self.lock().await?;
        let desired = self.installed(app)?;
        if desired.record.run != RunState::Stopped {
            return Err(Error::MustBeStopped { app: app.to_owned(), doing: format!("restore snapshot {id}") });
        }
        let snapshot = self.snapshot_of(app, id)?;
        if snapshot.version > desired.record.version {
            return Err(Error::NotAvailable(format!(
                "snapshot {id} holds the data of `{app}` {}, newer than the installed {}: an older version may not \
                 read it; update the app first",
                snapshot.version, desired.record.version
            )));
        }
        let observed = self.observe(Some(app)).await?;
        let mine: Vec<_> = observed.of_app(app).cloned().collect();
        for c in mine.iter().rev() {
            self.engine.stop(&c.id, 30).await?;
        }
        let replaced = self
            .take_snapshot(&desired, &observed, Reason::BeforeRestore { restored: id.to_owned() }, Copy::CloneOrTar)
            .await?;
        for c in &mine {
            self.engine.remove(&c.id).await?;
        }
        self.restore_snapshot(&desired, &snapshot).await?;
        let observed = self.observe(Some(app)).await?;
        let result = self.converge(&desired, &observed, &HostFacts::detect(&self.config().host), false).await;
        self.record_result(desired.record, &result)?;
        result?;
        Ok(replaced)
    }

    /// Clones volume `source` into a new engine volume of snapshot `id`, when this node sees
    /// the engine's volumes on disk and their filesystem makes reflink copies (btrfs, XFS): `cp
    /// -a --reflink=always`, which shares the blocks instead of copying them and keeps owners,
    /// modes and links. `None` (and nothing left behind) when it cannot; the caller copies a
    /// tar instead.
    async fn try_clone(
        &self,
        app: &str,
        source: &bollard::models::Volume,
        version: &semver::Version,
        id: &str,
    ) -> Result<Option<(String, u64)>, Error> {
        let from = PathBuf::from(&source.mountpoint);
        if source.mountpoint.is_empty() || !from.is_dir() {
            return Ok(None);
        }
        // `.` never occurs in an app id or a volume name: no object of archy's has this name.
        let name = format!("{}.snap.{id}", source.name);
        let labels = HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_APP.to_owned(), app.to_owned()),
            (LABEL_NODE.to_owned(), self.node_id.clone()),
            (LABEL_ROLE.to_owned(), HELPER_ROLE.to_owned()),
            (catalog::manifest::LABEL_VERSION.to_owned(), version.to_string()),
            (LABEL_SNAPSHOT.to_owned(), id.to_owned()),
        ]);
        let made = self.engine.create_volume(&name, labels).await?;
        match clone_tree(&from, Path::new(&made.mountpoint)).await {
            Ok(()) => {
                let bytes = tokio::task::spawn_blocking(move || dir_bytes(&from)).await.unwrap_or(0);
                Ok(Some((name, bytes)))
            }
            Err(why) => {
                tracing::debug!(%app, volume = %source.name, %why, "no reflink clone; copying a tar instead");
                self.engine.remove_volume(&name).await?;
                Ok(None)
            }
        }
    }

    /// Deletes all but the newest `snapshots_keep` snapshots of `app`, and any unfinished one.
    pub(crate) async fn prune_snapshots(&self, app: &str) -> Result<(), Error> {
        let keep = self.config().snapshots_keep.unwrap_or(DEFAULT_KEEP);
        let dir = self.snapshots_dir(app)?;
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".part") {
                remove_dir(&entry.path())?;
            }
        }
        let snapshots = self.snapshots(app)?;
        for old in snapshots.iter().skip(keep) {
            tracing::info!(%app, snapshot = %old.id, "pruning snapshot");
            self.remove_snapshot(old).await?;
        }
        // Clone volumes whose snapshot.json was never written (a crash mid-snapshot).
        let kept: Vec<&str> = snapshots.iter().take(keep).map(|s| s.id.as_str()).collect();
        let observed = self.observe(Some(app)).await?;
        for v in &observed.volumes {
            if let Some(id) = v.labels.get(LABEL_SNAPSHOT)
                && !kept.contains(&id.as_str())
            {
                self.engine.remove_volume(&v.name).await?;
            }
        }
        Ok(())
    }

    /// Deletes one snapshot: its clone volumes, then its folder.
    pub(crate) async fn remove_snapshot(&self, snapshot: &Snapshot) -> Result<(), Error> {
        for v in &snapshot.volumes {
            if let Some(clone) = &v.clone_volume {
                self.engine.remove_volume(clone).await?;
            }
        }
        remove_dir(&self.snapshot_path(snapshot)?)
    }

    /// Deletes every snapshot of `app` (purge).
    pub(crate) fn delete_snapshots(&self, app: &str) -> Result<(), Error> {
        let dir = self.snapshots_dir(app)?;
        if dir.exists() {
            remove_dir(&dir)?;
        }
        Ok(())
    }
}

/// `cp -a --reflink=always FROM/. TO`, then `sync -f TO` (the clone is on disk before its
/// snapshot counts as taken, as a tar is): fails rather than copying data where the filesystem
/// cannot clone (or the two are not on one filesystem).
async fn clone_tree(from: &Path, to: &Path) -> Result<(), String> {
    let run = |cmd: &mut tokio::process::Command| cmd.output();
    let out =
        run(tokio::process::Command::new("cp").args(["-a", "--reflink=always", "--"]).arg(from.join(".")).arg(to))
            .await
            .map_err(|e| format!("cp: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let out = run(tokio::process::Command::new("sync").arg("-f").arg(to)).await.map_err(|e| format!("sync: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
}

/// The apparent size of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => total += entry.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

fn remove_dir(path: &Path) -> Result<(), Error> {
    std::fs::remove_dir_all(path).map_err(|source| Error::Io { path: path.to_owned(), source })
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    std::fs::File::open(path).and_then(|d| d.sync_all()).map_err(|source| Error::Io { path: path.to_owned(), source })
}
