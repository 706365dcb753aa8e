//! The level-triggered reconciler: converges the engine to the desired state of every installed
//! app, on start, on engine events and on an interval.
//!
//! Rules (docs/orchestrator.md, "Reconciler"):
//! - objects are found by label (`archy.managed`, `archy.node`, `archy.app`, `archy.role`,
//!   `archy.shared`), whatever their name, so objects an older node named differently are
//!   adopted: containers are renamed to their render-plan name, volumes and networks keep
//!   theirs; an existing container whose `archy.spec` matches is adopted as it is, so a
//!   restarted node never creates a duplicate (names are unique on the engine, too);
//! - before anything is created, the render-plan names of the objects still missing are
//!   claimed: one taken by an object labelled as another app's or another node's is refused
//!   ([`Error::OwnedElsewhere`]) and nothing is changed;
//! - a desired container that is missing is created; one whose spec differs is recreated on the
//!   same volumes; a container archy created that is no longer desired is removed;
//! - volumes are never removed here (only `uninstall --purge` removes data);
//! - an install or update interrupted by a crash (phase `installing`/`updating`) is finished,
//!   including the health wait and the rollback of a failed update.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::{ContainerStateStatusEnum, HealthStatusEnum, Network, Volume};
use catalog::manifest::{
    ContainerPlan, Image, LABEL_APP, LABEL_MANAGED, LABEL_ROLE, LABEL_SHARED, Manifest, Mount, Namespace, RenderPlan,
    RestartPolicy, VolumePlan,
};
use futures_util::StreamExt as _;
use serde::Serialize;

use super::docker::{Engine, ObservedContainer};
use super::facts::HostFacts;
use super::secrets::SecretStore;
use super::spec::{ApplyContext, container_body};
use super::state::{AppRecord, Phase, RunState};
use super::status::container_for;
use super::{Error, LABEL_NODE, LABEL_SPEC, Orchestrator, Owner, VerifiedManifest, policy, tar, test_pause};

/// What the engine holds of this node's objects (each carries `archy.node=<this node>`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    pub(crate) containers: Vec<ObservedContainer>,
    pub(crate) networks: Vec<Network>,
    pub(crate) volumes: Vec<Volume>,
}

impl Observed {
    pub(crate) fn of_app<'a>(&'a self, app: &'a str) -> impl Iterator<Item = &'a ObservedContainer> + 'a {
        self.containers.iter().filter(move |c| c.labels.get(LABEL_APP).is_some_and(|a| a == app))
    }
}

/// An installed app: its record, its verified manifest, and the plan rendered from it.
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    pub(crate) record: AppRecord,
    pub(crate) manifest: VerifiedManifest,
    pub(crate) plan: RenderPlan,
}

/// What one reconcile pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Apps looked at.
    pub apps: usize,
    /// Containers created (missing or recreated).
    pub created: usize,
    /// Containers started.
    pub started: usize,
    /// Containers and networks removed because nothing desires them.
    pub removed: usize,
    /// Apps that could not be converged, with the reason.
    pub failed: Vec<(String, String)>,
    /// The pass was skipped: another process held the lock.
    pub skipped: bool,
}

/// Counts of what converging one app changed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Changes {
    pub(crate) created: usize,
    pub(crate) started: usize,
    pub(crate) removed: usize,
}

impl Orchestrator {
    /// Lists this node's containers and networks (of `app` only, when given) and its volumes
    /// (of every app: a shared volume is labelled with the app that created it).
    pub(crate) async fn observe(&self, app: Option<&str>) -> Result<Observed, Error> {
        let node = self.node_id.as_str();
        let mut labels = vec![(LABEL_MANAGED, "true"), (LABEL_NODE, node)];
        if let Some(app) = app {
            labels.push((LABEL_APP, app));
        }
        let volume_labels = [(LABEL_MANAGED, "true"), (LABEL_NODE, node)];
        let (containers, networks, volumes) = tokio::try_join!(
            self.engine.containers(&labels),
            self.engine.networks(&labels),
            self.engine.volumes(&volume_labels),
        )?;
        Ok(Observed { containers, networks, volumes })
    }

    /// Reads the desired state of one record: its stored manifest, verified again.
    pub(crate) fn desired(&self, record: AppRecord) -> Result<Desired, Error> {
        let manifest = self.state.stored_manifest(&record.app, &record.version, Some(&record.manifest_hash))?;
        let plan = catalog::manifest::render_in(manifest.manifest(), &self.config().prefix());
        Ok(Desired { record, manifest, plan })
    }

    /// One reconcile pass over every installed app. With `wait_for_lock` false the pass is
    /// skipped when another process is changing apps (it will converge on the next pass).
    pub async fn reconcile_once(&self, wait_for_lock: bool) -> Result<ReconcileReport, Error> {
        let _guard = if wait_for_lock {
            self.lock().await?
        } else {
            match self.try_lock().await? {
                Some(g) => g,
                None => return Ok(ReconcileReport { skipped: true, ..Default::default() }),
            }
        };
        self.reconcile_locked().await
    }

    pub(crate) async fn reconcile_locked(&self) -> Result<ReconcileReport, Error> {
        let (records, damaged) = self.state.load_each()?;
        let observed = self.observe(None).await?;
        let facts = HostFacts::detect(&self.config().host);
        let mut report = ReconcileReport { apps: records.len() + damaged.len(), ..Default::default() };
        // An app whose desired state can't be read is left as it is (its containers are not
        // orphans) and reported; the others are converged.
        let mut wanted: HashSet<&str> = records.iter().map(|r| r.app.as_str()).collect();
        for (app, e) in &damaged {
            tracing::warn!(app = %app, "not converged: {e}");
            wanted.insert(app.as_str());
            report.failed.push((app.clone(), e.to_string()));
        }

        // Orphans first, so a removed app's ports are free for the others.
        for c in &observed.containers {
            let app = c.labels.get(LABEL_APP).map(String::as_str).unwrap_or_default();
            if !wanted.contains(app) {
                tracing::info!(container = %c.name, "removing container no installed app desires");
                self.engine.remove(&c.id).await?;
                report.removed += 1;
            }
        }
        for n in &observed.networks {
            let app = n.labels.as_ref().and_then(|l| l.get(LABEL_APP)).map(String::as_str).unwrap_or_default();
            if !wanted.contains(app) {
                self.engine.remove_network(n.id.as_deref().unwrap_or_default()).await?;
                report.removed += 1;
            }
        }

        for record in records {
            let app = record.app.clone();
            let result = match record.phase.clone() {
                Phase::Ready => match self.desired(record) {
                    Ok(desired) => self.converge(&desired, &observed, &facts, false).await.map(|changes| {
                        report.created += changes.created;
                        report.started += changes.started;
                        report.removed += changes.removed;
                    }),
                    Err(e) => Err(e),
                },
                // An install or update a crash interrupted: finish it, with its health wait
                // and, for an update, its rollback.
                Phase::Installing => self.finish_install(record, &facts).await.map(|_| ()),
                Phase::Updating { from, snapshot } => {
                    self.finish_update(record, from, snapshot, &facts).await.map(|_| ())
                }
            };
            if let Err(e) = result {
                tracing::warn!(%app, error = %e, "app not converged");
                report.failed.push((app, e.to_string()));
            }
        }
        Ok(report)
    }

    /// Converges one app. `wait` also waits for every container to be healthy (installs,
    /// updates); otherwise only containers that others depend on are waited for.
    pub(crate) async fn converge(
        &self,
        desired: &Desired,
        observed: &Observed,
        facts: &HostFacts,
        wait: bool,
    ) -> Result<Changes, Error> {
        let m = desired.manifest.manifest();
        let app = m.id.as_str();
        let plan = &desired.plan;
        let run = desired.record.run;
        let mine: Vec<&ObservedContainer> = observed.of_app(app).collect();
        let mut changes = Changes::default();

        // Rule (policy gate): checked again at every apply, so a permission the operator
        // revokes in config.toml takes effect: the app's containers are stopped.
        let mut refusals = policy::refusals(m, self.config().grants(app), self.engine.socket());
        let real_binds = if refusals.is_empty() {
            policy::resolve_binds(m, self.config().grants(app), self.engine.socket()).unwrap_or_else(|r| {
                refusals = r;
                Default::default()
            })
        } else {
            Default::default()
        };
        if !refusals.is_empty() {
            for c in mine.iter().filter(|c| c.state == bollard::models::ContainerSummaryStateEnum::RUNNING) {
                self.engine.stop(&c.id, 30).await?;
            }
            return Err(Error::PolicyRefused { app: app.to_owned(), refusals });
        }

        // The app's objects on this node, found by label whatever their name (an older node
        // joined ids with `-`), matched to the plan. No network for an app whose containers all
        // use the host's (engines allot few bridge networks from their default address pools).
        let uses_network = plan.containers.iter().any(|c| c.network != "host");
        let networks = if uses_network { app_networks(app, &plan.network.name, observed) } else { Vec::new() };
        let volumes: Vec<Option<&Volume>> = plan.volumes.iter().map(|v| app_volume(app, v, observed)).collect();
        let matched: Vec<Option<&ObservedContainer>> =
            plan.containers.iter().map(|c| container_for(mine.iter().copied(), c)).collect();

        // Rule (engine names are claimed, never taken over): every name still to be created or
        // renamed to must be free or already this app's on this node, checked before anything
        // is changed, so another app's or node's object is never adopted, chowned or mounted.
        if uses_network && networks.is_empty() {
            self.claim(Namespace::Networks, &plan.network.name, app, None).await?;
        }
        for (v, found) in plan.volumes.iter().zip(&volumes) {
            if found.is_none() {
                self.claim(Namespace::Volumes, &v.name, app, v.shared.as_ref().map(|s| s.as_str())).await?;
            }
        }
        for (c, found) in plan.containers.iter().zip(&matched) {
            if found.is_none_or(|o| o.name != c.name) {
                self.claim(Namespace::Containers, &c.name, app, None).await?;
            }
        }

        let network_id = if uses_network { self.ensure_network(plan, &networks).await? } else { String::new() };
        let (mut resolved, data_dir) = self.ensure_volumes(plan, &volumes).await?;
        // Binds mount the real paths that were checked, not paths a symlink could redirect.
        for c in &mut resolved.containers {
            for mount in &mut c.mounts {
                if let catalog::manifest::Mount::Bind { source, .. } = mount
                    && let Some(real) = real_binds.get(source.as_str())
                {
                    source.clone_from(real);
                }
            }
        }
        let plan = &resolved;
        let data_dir = data_dir.unwrap_or(self.state.app_dir(app)?);
        let ledger = self.state.app_dir(app)?.join("secrets.generated");
        let secrets = SecretStore::with_ledger(self.state.secrets_dir(app)?, ledger).ensure(&m.secrets)?;
        let config = self.config();
        let cx = ApplyContext {
            node_id: &self.node_id,
            network_id: &network_id,
            publish_ip: config.publish_ip_for(app),
            secrets: &secrets,
        };
        let bodies: Vec<_> = plan
            .containers
            .iter()
            .map(|c| {
                let derived = facts.resolve(m, &c.derived_env, &data_dir);
                let body = container_body(c, &derived, &cx);
                let hash = body.labels.as_ref().and_then(|l| l.get(LABEL_SPEC)).cloned().unwrap_or_default();
                (c, body, hash)
            })
            .collect();

        // Containers no longer in the plan (a role a new version dropped) go first.
        for o in &mine {
            if !matched.iter().flatten().any(|m| m.id == o.id) {
                self.engine.remove(&o.id).await?;
                changes.removed += 1;
            }
        }

        let stale = |found: &Option<&ObservedContainer>, hash: &str| match found {
            None => true,
            Some(o) => o.labels.get(LABEL_SPEC).map(String::as_str) != Some(hash),
        };
        if bodies.iter().zip(&matched).any(|((_, _, hash), found)| stale(found, hash)) {
            // Every image of the version first: nothing is removed or recreated until all of
            // them are on the engine (an update whose image is missing changes nothing).
            self.ensure_images(m).await?;
        }

        for ((c, body, hash), existing) in bodies.into_iter().zip(&matched) {
            let start = match existing {
                Some(o) if o.labels.get(LABEL_SPEC) == Some(&hash) => {
                    if o.name != c.name {
                        // Made by an older node under its old name: same container, new name.
                        tracing::info!(from = %o.name, to = %c.name, "renaming container");
                        self.engine.rename(&o.id, &c.name).await?;
                    }
                    run == RunState::Running && should_start(o, c.restart)
                }
                other => {
                    if let Some(o) = other {
                        tracing::info!(container = %c.name, "recreating container whose spec changed");
                        self.engine.remove(&o.id).await?;
                    }
                    self.progress.report(app, "create", c.name.as_str(), None);
                    self.create_container(c, body, plan).await?;
                    changes.created += 1;
                    test_pause(&format!("after-create:{}", c.name));
                    run == RunState::Running
                }
            };
            if start {
                for dep in &c.depends_on {
                    if let Some(d) = plan.containers.iter().find(|p| p.role == *dep) {
                        self.wait_healthy(app, d).await?;
                    }
                }
                self.progress.report(app, "start", c.name.as_str(), None);
                self.engine.start(&c.name).await?;
                changes.started += 1;
            }
        }

        if run == RunState::Stopped {
            for (c, found) in plan.containers.iter().zip(&matched).rev() {
                if let Some(o) = found
                    && o.state == bollard::models::ContainerSummaryStateEnum::RUNNING
                {
                    self.engine.stop(&c.name, 30).await?;
                }
            }
        } else if wait {
            for c in &plan.containers {
                self.wait_healthy(app, c).await?;
            }
        }
        Ok(changes)
    }

    async fn create_container(
        &self,
        c: &ContainerPlan,
        body: bollard::models::ContainerCreateBody,
        plan: &RenderPlan,
    ) -> Result<(), Error> {
        if let Err(e) = self.engine.create(&c.name, body).await {
            // A name taken since it was claimed, by something that is not this app's.
            let app = plan.app.as_str();
            if let Some(labels) = self.engine.labels_of(Namespace::Containers, &c.name).await? {
                return Err(self.refusal("container", &c.name, &labels, app, None));
            }
            return Err(e);
        }
        // Rule (manifest `data_uid`): the root of each volume the container mounts belongs to
        // data_uid:data_uid before the container first starts. Done on every create, which is
        // idempotent and survives a crash between volume creation and this step.
        for mount in &c.mounts {
            if let Mount::Volume { source, target, .. } = mount
                && let Some(uid) = plan.volumes.iter().find(|v| v.name == *source).and_then(|v| v.owner_uid)
            {
                // The engine does not apply the metadata of a `./` entry to the folder it
                // extracts into, so the entry names the mount point from its parent folder.
                let (parent, last) = target.rsplit_once('/').unwrap_or(("", target));
                let parent = if parent.is_empty() { "/" } else { parent };
                if last.len() >= 99 {
                    tracing::warn!(container = %c.name, %target, "mount point name too long to set its owner");
                    continue;
                }
                let archive = tar::build(&[tar::Entry::dir(&format!("{last}/"), 0o755).owned(uid, uid)]);
                self.engine.upload(&c.name, parent, archive).await?;
            }
        }
        Ok(())
    }

    /// Refuses `name` in `ns` if an object of that name exists and is not app `app`'s on this
    /// node (for a shared volume: not share `share`'s on this node).
    pub(crate) async fn claim(&self, ns: Namespace, name: &str, app: &str, share: Option<&str>) -> Result<(), Error> {
        let Some(labels) = self.engine.labels_of(ns, name).await? else { return Ok(()) };
        if self.owns(&labels, app, share) {
            return Ok(());
        }
        let kind = match ns {
            Namespace::Networks => "network",
            Namespace::Containers => "container",
            Namespace::Volumes => "volume",
        };
        Err(self.refusal(kind, name, &labels, app, share))
    }

    /// Whether `labels` say the object is app `app`'s (or share `share`'s) on this node.
    fn owns(&self, labels: &std::collections::HashMap<String, String>, app: &str, share: Option<&str>) -> bool {
        let label = |k: &str| labels.get(k).map(String::as_str);
        label(LABEL_MANAGED) == Some("true")
            && label(LABEL_NODE) == Some(self.node_id.as_str())
            && match share {
                Some(share) => label(LABEL_SHARED) == Some(share),
                None => label(LABEL_APP) == Some(app) && label(LABEL_SHARED).is_none(),
            }
    }

    /// The error for an object named `name`, labelled `labels`, that app `app` wanted.
    fn refusal(
        &self,
        kind: &'static str,
        name: &str,
        labels: &std::collections::HashMap<String, String>,
        app: &str,
        share: Option<&str>,
    ) -> Error {
        if labels.get(LABEL_MANAGED).is_none_or(|m| m != "true") {
            return Error::NameConflict { kind, name: name.to_owned(), owner: "not created by archy".to_owned() };
        }
        let owner = Box::new(Owner {
            app: labels.get(LABEL_APP).cloned(),
            share: labels.get(LABEL_SHARED).cloned(),
            node: labels.get(LABEL_NODE).cloned(),
        });
        let claimant = Box::new(Owner {
            app: Some(app.to_owned()),
            share: share.map(str::to_owned),
            node: Some(self.node_id.clone()),
        });
        Error::OwnedElsewhere { kind, name: name.to_owned(), owner, claimant }
    }

    /// The app network's id: the first of `found` (the app's networks on this node, see
    /// [`app_networks`]), removing the others (extra copies an old engine may have allowed under
    /// one name); created under the plan's name if there is none.
    async fn ensure_network(&self, plan: &RenderPlan, found: &[&Network]) -> Result<String, Error> {
        if let Some((keep, extra)) = found.split_first() {
            for n in extra {
                // Best effort: one still in use goes on a later pass.
                let _ = self.engine.remove_network(n.id.as_deref().unwrap_or_default()).await;
            }
            return Ok(keep.id.clone().unwrap_or_default());
        }
        let mut labels: std::collections::HashMap<String, String> =
            plan.network.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        labels.insert(LABEL_NODE.into(), self.node_id.clone());
        self.engine.create_network(&plan.network.name, labels).await
    }

    /// Creates the volumes `found` lacks (`found[i]` is the existing volume of `plan.volumes[i]`,
    /// see [`app_volume`]). Returns the plan with every volume and mount under the name of the
    /// volume actually used (an older node's volume keeps its name: the engine cannot rename
    /// volumes) and the host folder of the first volume.
    async fn ensure_volumes(
        &self,
        plan: &RenderPlan,
        found: &[Option<&Volume>],
    ) -> Result<(RenderPlan, Option<PathBuf>), Error> {
        let mut resolved = plan.clone();
        let mut first = None;
        for (v, existing) in resolved.volumes.iter_mut().zip(found) {
            let (name, mountpoint) = match existing {
                Some(o) => (o.name.clone(), o.mountpoint.clone()),
                None => {
                    let mut labels: std::collections::HashMap<String, String> =
                        v.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    labels.insert(LABEL_NODE.into(), self.node_id.clone());
                    // The engine's create returns an existing volume of that name as it is: one
                    // made by someone else since the name was claimed is refused, unused.
                    let created = self.engine.create_volume(&v.name, labels).await?;
                    let (app, share) = (plan.app.as_str(), v.shared.as_ref().map(|s| s.as_str()));
                    if !self.owns(&created.labels, app, share) {
                        return Err(self.refusal("volume", &v.name, &created.labels, app, share));
                    }
                    (v.name.clone(), created.mountpoint)
                }
            };
            first.get_or_insert(PathBuf::from(mountpoint));
            if name != v.name {
                for c in &mut resolved.containers {
                    for m in &mut c.mounts {
                        if let Mount::Volume { source, .. } = m
                            && *source == v.name
                        {
                            source.clone_from(&name);
                        }
                    }
                }
                v.name = name;
            }
        }
        Ok((resolved, first))
    }

    /// Makes sure every image of `m` is on the engine: a pinned reference is pulled if missing;
    /// an archive is fetched from the source (verified there), loaded, and its image id checked
    /// against the manifest before any container is created.
    pub(crate) async fn ensure_images(&self, m: &Manifest) -> Result<(), Error> {
        let app = m.id.as_str();
        let mut seen = HashSet::new();
        for c in &m.containers {
            if !seen.insert(c.image.to_string()) {
                continue;
            }
            match &c.image {
                Image::Pinned(p) => {
                    let reference = p.to_string();
                    if !self.engine.has_image(&reference).await? {
                        self.engine.pull(&reference).await.map_err(|e| Error::ImageUnavailable {
                            app: app.to_owned(),
                            reference: reference.clone(),
                            reason: e.to_string(),
                        })?;
                    }
                }
                Image::Archive { target, image_id } => {
                    let id = image_id.to_string();
                    if self.engine.has_image(&id).await? {
                        continue;
                    }
                    // Install and update fetched it before taking the lock, and reported that.
                    let path = self.source.fetch_archive(target).await.map_err(Error::Source)?;
                    self.progress.report(app, "load", id.as_str(), None);
                    // Checked against the signed image id and stripped of its tags first, so
                    // loading it can't retag an image the operator uses elsewhere.
                    let staged = self.state.tmp_dir()?.join(format!("{app}.archive.tar"));
                    let prepared = super::archive::prepare(&path, &staged, &id, app, target);
                    let loaded = match prepared {
                        Ok(p) => {
                            if !p.tags_dropped.is_empty() {
                                tracing::info!(%app, %target, tags = ?p.tags_dropped, "tags inside the archive not applied");
                            }
                            let loaded = self.engine.load(&staged).await;
                            let _ = std::fs::remove_file(&staged);
                            loaded?
                        }
                        Err(e) => {
                            let _ = std::fs::remove_file(&staged);
                            return Err(e);
                        }
                    };
                    if !self.engine.has_image(&id).await? {
                        // Whatever the archive loaded instead is not kept.
                        for other in loaded.iter().filter_map(|l| l.strip_prefix("Loaded image ID: ")) {
                            self.engine.remove_image(other.trim()).await?;
                        }
                        return Err(Error::ImageMismatch {
                            app: app.to_owned(),
                            target: target.clone(),
                            expected: id,
                            loaded: if loaded.is_empty() { "nothing".into() } else { loaded.join("; ") },
                        });
                    }
                    tracing::info!(%app, %target, image = %id, "image archive loaded and its id checked");
                    self.progress.report(app, "loaded", id.as_str(), None);
                }
            }
        }
        Ok(())
    }

    /// Waits until container `c` runs and, if it has a healthcheck, is healthy — polling the
    /// engine, never a fixed sleep. Fails at once when it turns unhealthy, exits or restarts,
    /// and when its grace period (start period + (interval + timeout) × (retries + 1) + 10 s)
    /// runs out.
    pub(crate) async fn wait_healthy(&self, app: &str, c: &ContainerPlan) -> Result<(), Error> {
        let grace = c.healthcheck.as_ref().map_or(Duration::from_secs(30), |h| {
            let secs = u64::from(h.start_period_secs)
                + (u64::from(h.interval_secs) + u64::from(h.timeout_secs)) * (u64::from(h.retries) + 1)
                + 10;
            Duration::from_secs(secs.min(900))
        });
        let deadline = Instant::now() + grace;
        let fail = |problem: String| Error::Unhealthy { app: app.to_owned(), container: c.name.clone(), problem };
        self.progress.report(app, "health", c.name.as_str(), None);
        let healthy = || self.progress.report(app, "healthy", c.name.as_str(), None);
        loop {
            let Some(info) = self.engine.inspect(&c.name).await? else {
                return Err(fail("was removed".into()));
            };
            let state = info.state.unwrap_or_default();
            let exit = state.exit_code.unwrap_or_default();
            match state.status {
                Some(ContainerStateStatusEnum::RUNNING) => {
                    let health = state.health.as_ref().and_then(|h| h.status);
                    match health {
                        _ if c.healthcheck.is_none() => {
                            healthy();
                            return Ok(());
                        }
                        Some(HealthStatusEnum::HEALTHY) => {
                            healthy();
                            return Ok(());
                        }
                        Some(HealthStatusEnum::UNHEALTHY) => {
                            let output = state
                                .health
                                .and_then(|h| h.log)
                                .and_then(|l| l.last().and_then(|r| r.output.clone()))
                                .unwrap_or_default();
                            let output: String = output.trim().chars().take(300).collect();
                            return Err(fail(format!("is unhealthy (last check: {output:?})")));
                        }
                        _ => {}
                    }
                }
                Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
                    return Err(fail(format!("exited with code {exit}")));
                }
                Some(ContainerStateStatusEnum::RESTARTING) => {
                    return Err(fail(format!("keeps restarting (last exit code {exit})")));
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(fail(format!("did not become healthy within {} s", grace.as_secs())));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The networks of `app` on this node (`observed` holds only this node's), whatever their name:
/// the one named `planned` first, then the oldest.
fn app_networks<'a>(app: &str, planned: &str, observed: &'a Observed) -> Vec<&'a Network> {
    let mut found: Vec<&Network> = observed
        .networks
        .iter()
        .filter(|n| n.labels.as_ref().and_then(|l| l.get(LABEL_APP)).is_some_and(|a| a == app))
        .collect();
    found.sort_by_key(|n| (n.name.as_deref() != Some(planned), n.created.as_ref().map(|c| format!("{c:?}"))));
    found
}

/// The existing volume of plan volume `v` on this node, whatever its name: for a shared volume
/// the one labelled with its share, else the one labelled with `app` and the volume's name (and
/// no share). Should there be several, the oldest, which holds the data.
pub(crate) fn app_volume<'a>(app: &str, v: &VolumePlan, observed: &'a Observed) -> Option<&'a Volume> {
    let label = |o: &'a Volume, k: &str| o.labels.get(k).map(String::as_str);
    observed
        .volumes
        .iter()
        .filter(|o| match &v.shared {
            Some(share) => label(o, LABEL_SHARED) == Some(share.as_str()),
            None => {
                label(o, LABEL_APP) == Some(app)
                    && label(o, LABEL_ROLE) == Some(v.volume.as_str())
                    && label(o, LABEL_SHARED).is_none()
            }
        })
        .min_by_key(|o| (o.created_at.as_ref().map(|c| format!("{c:?}")), o.name.clone()))
}

/// Whether the reconciler starts a container that should run: one never started (created),
/// or one that stopped, unless its restart policy says a stopped container stays stopped.
fn should_start(o: &ObservedContainer, restart: RestartPolicy) -> bool {
    use bollard::models::ContainerSummaryStateEnum as S;
    match o.state {
        S::CREATED => true,
        S::EXITED => match restart {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure => o.exit_code() != Some(0),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        },
        _ => false,
    }
}

/// Runs the reconciler until `shutdown` completes: one pass at once, then a pass after engine
/// events about archy's objects (debounced by half a second) and every `interval`.
/// A pass is skipped while another process holds the lock; the next one catches up.
pub async fn run_reconciler(
    orchestrator: Arc<Orchestrator>,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    tokio::pin!(shutdown);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let events_engine: Engine = orchestrator.engine().clone();
    let watcher = tokio::spawn(async move {
        loop {
            let mut events = Box::pin(events_engine.events());
            while let Some(event) = events.next().await {
                match event {
                    Ok(_) => {
                        let _ = tx.try_send(());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "engine event stream failed; reconnecting");
                        break;
                    }
                }
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => {}
            Some(()) = rx.recv() => {
                // Let a burst of events settle into one pass.
                tokio::time::sleep(Duration::from_millis(500)).await;
                while rx.try_recv().is_ok() {}
            }
        }
        match orchestrator.reconcile_once(false).await {
            Ok(report) if report.skipped => tracing::debug!("reconcile skipped: another process holds the lock"),
            Ok(report) => {
                if report.created + report.started + report.removed > 0 || !report.failed.is_empty() {
                    tracing::info!(?report, "reconciled");
                }
            }
            Err(e) => tracing::warn!(error = %e, "reconcile pass failed"),
        }
    }
    watcher.abort();
    Ok(())
}
